#include "test_support.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>

#include <unistd.h>

namespace lepus::test {

bool Close(double a, double b, double rel, double abs) {
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)) + abs;
}

double MaxRelDiff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, double abs_floor) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return INFINITY;
  double worst = 0.0;
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    for (Eigen::Index j = 0; j < a.cols(); ++j) {
      const double d = std::abs(a(i, j) - b(i, j)) /
                       (std::max(std::abs(a(i, j)), std::abs(b(i, j))) + abs_floor);
      if (!(d <= worst)) worst = d;  // NaN propagates as worst
    }
  return worst;
}

std::string ConformanceDir() { return LEPUS_CONFORMANCE_DIR; }
std::string TestDataDir() { return LEPUS_TEST_DATA_DIR; }
std::string BinaryDir() { return LEPUS_BINARY_DIR; }
std::string SourceDir() { return LEPUS_SOURCE_DIR; }

std::string TempPath(const std::string& stem, const std::string& ext) {
  static std::atomic<int> counter{0};
  const auto dir = std::filesystem::temp_directory_path() / "lepus-tests";
  std::filesystem::create_directories(dir);
  return (dir / (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ext))
      .string();
}

}  // namespace lepus::test
