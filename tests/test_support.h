// Shared helpers for the doctest suite: relative-tolerance comparisons, paths, temp files.
#pragma once

#include <string>

#include <Eigen/Core>

namespace lepus::test {

// |a - b| <= rel * max(|a|, |b|) + abs
bool Close(double a, double b, double rel, double abs = 0.0);
// Largest |a_i - b_i| / (max(|a_i|, |b_i|) + abs_floor) over all entries.
double MaxRelDiff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, double abs_floor);

std::string ConformanceDir();  // copy of ../shared/conformance kept in tests/data/conformance
std::string TestDataDir();     // tests/data
std::string BinaryDir();       // CMake build directory
std::string SourceDir();       // project root
// A fresh path under the system temp directory (file not created), unique per call.
std::string TempPath(const std::string& stem, const std::string& ext);

}  // namespace lepus::test
