// The structured (bordered block-diagonal) SPD factorisation of engine/src/spd.h: structure
// detection, solve and inverse against a dense LLT, positive-definiteness checks of the local
// blocks and of the Schur complement, and thread-count independence.
#include <algorithm>
#include <random>
#include <vector>

#include <Eigen/Cholesky>
#include <doctest/doctest.h>
#include <tbb/task_arena.h>

#include "../../engine/src/spd.h"

using lepus::engine::detail::BlockStructure;
using lepus::engine::detail::DetectBlockStructure;
using lepus::engine::detail::SpdFactor;

namespace {

// An SPD matrix with `nblocks` local blocks of `nb` indices coupled among themselves and to `g`
// border indices, the indices shuffled (so the structure has to be found, not assumed).
struct Arrow {
  Eigen::MatrixXd a;
  std::vector<int> border;
};

Arrow RandomArrow(int nblocks, int nb, int g, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> gauss;
  const int n = nblocks * nb + g;
  std::vector<int> perm(n);
  for (int i = 0; i < n; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  // A Gram matrix of row vectors whose supports are (own block + border): exactly the pattern.
  const int rows_per_block = nb + g / 4 + 3;
  Eigen::MatrixXd rows = Eigen::MatrixXd::Zero(nblocks * rows_per_block + g, n);
  int r = 0;
  for (int b = 0; b < nblocks; ++b)
    for (int k = 0; k < rows_per_block; ++k, ++r) {
      for (int i = 0; i < nb; ++i) rows(r, perm[b * nb + i]) = gauss(rng);
      for (int i = 0; i < g; ++i) rows(r, perm[nblocks * nb + i]) = 0.3 * gauss(rng);
    }
  for (int i = 0; i < g; ++i, ++r)
    for (int j = 0; j < g; ++j) rows(r, perm[nblocks * nb + j]) = gauss(rng);
  Arrow out;
  out.a = rows.transpose() * rows;
  out.a.diagonal().array() += 0.5;
  for (int i = 0; i < g; ++i) out.border.push_back(perm[nblocks * nb + i]);
  std::sort(out.border.begin(), out.border.end());
  return out;
}

}  // namespace

TEST_CASE("structured SPD: detects the bordered block-diagonal structure of a shuffled matrix") {
  const Arrow m = RandomArrow(40, 20, 30, 1);
  const BlockStructure s = DetectBlockStructure(m.a);
  REQUIRE(s.structured());
  CHECK(s.border == m.border);
  CHECK(s.blocks.size() == 40);
  for (const auto& b : s.blocks) CHECK(b.size() == 20);
  CHECK(s.flops < 0.25 * 830.0 * 830.0 * 830.0 / 3.0);
}

TEST_CASE("structured SPD: a dense matrix and a small one take the dense path") {
  std::mt19937 rng(2);
  std::normal_distribution<double> gauss;
  Eigen::MatrixXd x(600, 600);
  for (int j = 0; j < 600; ++j)
    for (int i = 0; i < 600; ++i) x(i, j) = gauss(rng);
  const Eigen::MatrixXd dense = x * x.transpose() + Eigen::MatrixXd::Identity(600, 600);
  CHECK_FALSE(DetectBlockStructure(dense).structured());
  CHECK_FALSE(SpdFactor(dense).structured());
  const Arrow small = RandomArrow(10, 10, 5, 3);  // n = 105 < the detection threshold
  CHECK_FALSE(SpdFactor(small.a).structured());
  CHECK(SpdFactor(small.a).ok());
}

TEST_CASE("structured SPD: solve and inverse equal the dense factorisation") {
  for (int g : {0, 1, 37}) {
    CAPTURE(g);
    const Arrow m = RandomArrow(30, 17, g, 4 + g);
    const int n = static_cast<int>(m.a.rows());
    SpdFactor f(m.a);
    REQUIRE(f.ok());
    REQUIRE(f.structured());
    Eigen::LLT<Eigen::MatrixXd> ref(m.a);
    const Eigen::VectorXd b = Eigen::VectorXd::LinSpaced(n, -1.0, 2.0);
    const Eigen::VectorXd x = f.Solve(b);
    const Eigen::VectorXd xr = ref.solve(b);
    CHECK((x - xr).cwiseAbs().maxCoeff() < 1e-10 * xr.cwiseAbs().maxCoeff());
    const Eigen::MatrixXd inv = f.Inverse();
    const Eigen::MatrixXd invr = ref.solve(Eigen::MatrixXd::Identity(n, n));
    CHECK((inv - invr).cwiseAbs().maxCoeff() < 1e-10 * invr.cwiseAbs().maxCoeff());
    CHECK((inv - inv.transpose()).cwiseAbs().maxCoeff() == 0.0);
  }
}

TEST_CASE("structured SPD: indefinite local block or Schur complement is reported") {
  Arrow m = RandomArrow(30, 17, 20, 7);
  SpdFactor good(m.a);
  REQUIRE(good.structured());
  REQUIRE(good.ok());
  // A local index: make its diagonal negative (its block fails).
  const BlockStructure s = DetectBlockStructure(m.a);
  Eigen::MatrixXd bad_block = m.a;
  bad_block(s.blocks[3][2], s.blocks[3][2]) = -1.0;
  CHECK_FALSE(SpdFactor(bad_block).ok());
  // A border index: the blocks stay positive definite, the Schur complement does not.
  Eigen::MatrixXd bad_border = m.a;
  bad_border(m.border[5], m.border[5]) = 1e-3;
  Eigen::LLT<Eigen::MatrixXd> ref(bad_border);
  REQUIRE(ref.info() != Eigen::Success);
  SpdFactor f(bad_border);
  CHECK(f.structured());
  CHECK_FALSE(f.ok());
}

TEST_CASE("structured SPD: identical results at 1 and 2 threads") {
  const Arrow m = RandomArrow(50, 25, 60, 9);
  Eigen::MatrixXd i1, i2;
  Eigen::VectorXd s1, s2;
  const Eigen::VectorXd b = Eigen::VectorXd::LinSpaced(m.a.rows(), 0.5, -3.0);
  tbb::task_arena(1).execute([&] { SpdFactor f(m.a); i1 = f.Inverse(); s1 = f.Solve(b); });
  tbb::task_arena(2).execute([&] { SpdFactor f(m.a); i2 = f.Inverse(); s2 = f.Solve(b); });
  CHECK((i1 - i2).cwiseAbs().maxCoeff() == 0.0);
  CHECK((s1 - s2).cwiseAbs().maxCoeff() == 0.0);
}
