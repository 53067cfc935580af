// The blocked parallel Cholesky factorisation and inverse against Eigen, and their
// thread-count independence.
#include <random>

#include <doctest/doctest.h>
#include <tbb/task_arena.h>
#include <Eigen/Cholesky>

#include "../../engine/src/linalg.h"

using lepus::engine::detail::CholeskyFactor;

namespace {

Eigen::MatrixXd RandomSpd(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  Eigen::MatrixXd a(n, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) a(i, j) = g(rng);
  Eigen::MatrixXd s = a * a.transpose() / n;
  s.diagonal().array() += 0.1;
  return s;
}

}  // namespace

TEST_CASE(
    "blocked Cholesky: factor, solve and inverse agree with Eigen for sizes around the block") {
  for (int n : {1, 7, 64, 127, 128, 129, 300, 517}) {
    CAPTURE(n);
    const Eigen::MatrixXd a = RandomSpd(n, 3 + n);
    CholeskyFactor c(a, 64);
    REQUIRE(c.ok());
    Eigen::LLT<Eigen::MatrixXd> ref(a);
    const Eigen::MatrixXd l = c.matrixL();
    CHECK((l - Eigen::MatrixXd(ref.matrixL())).cwiseAbs().maxCoeff() < 1e-10);
    const Eigen::VectorXd b = Eigen::VectorXd::LinSpaced(n, -1.0, 2.0);
    CHECK((a * c.Solve(b) - b).cwiseAbs().maxCoeff() < 1e-9);
    const Eigen::MatrixXd inv = c.Inverse();
    CHECK((a * inv - Eigen::MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff() < 1e-9);
    CHECK((inv - inv.transpose()).cwiseAbs().maxCoeff() == 0.0);
  }
}

TEST_CASE("blocked Cholesky: not positive definite is reported") {
  Eigen::MatrixXd a = RandomSpd(200, 9);
  a(150, 150) = -5.0;
  CHECK_FALSE(CholeskyFactor(a, 64).ok());
}

TEST_CASE("blocked Cholesky: identical results at 1 and 2 threads") {
  const Eigen::MatrixXd a = RandomSpd(400, 11);
  Eigen::MatrixXd i1, i2;
  tbb::task_arena(1).execute([&] { i1 = CholeskyFactor(a, 64).Inverse(); });
  tbb::task_arena(2).execute([&] { i2 = CholeskyFactor(a, 64).Inverse(); });
  CHECK((i1 - i2).cwiseAbs().maxCoeff() == 0.0);
}
