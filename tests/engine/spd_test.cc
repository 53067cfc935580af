// The structured (bordered block-diagonal) SPD factorisation of engine/src/spd.h: structure
// detection, solve and inverse against a dense LLT, positive-definiteness checks of the local
// blocks and of the Schur complement, and thread-count independence.
#include <algorithm>
#include <random>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>
#include <tbb/task_arena.h>
#include <Eigen/Cholesky>

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
  tbb::task_arena(1).execute([&] {
    SpdFactor f(m.a);
    i1 = f.Inverse();
    s1 = f.Solve(b);
  });
  tbb::task_arena(2).execute([&] {
    SpdFactor f(m.a);
    i2 = f.Inverse();
    s2 = f.Solve(b);
  });
  CHECK((i1 - i2).cwiseAbs().maxCoeff() == 0.0);
  CHECK((s1 - s2).cwiseAbs().maxCoeff() == 0.0);
}

namespace {

// max |a - b| / max |b| (relative to the largest entry of the reference).
double RelDiff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

// The selected diagonal and columns against the full inverse of the same factor (relative to the
// largest entry) and, entry by entry, against its diagonal (relative to each variance).
void CheckSelected(const Eigen::MatrixXd& a, const std::vector<int>& cols) {
  SpdFactor f(a);
  REQUIRE(f.ok());
  const Eigen::MatrixXd inv = f.Inverse();
  Eigen::VectorXd diag;
  Eigen::MatrixXd c;
  f.SelectedInverse(cols, &diag, &c);
  REQUIRE(diag.size() == a.rows());
  REQUIRE(c.rows() == a.rows());
  REQUIRE(c.cols() == static_cast<Eigen::Index>(cols.size()));
  CHECK(((diag - inv.diagonal()).cwiseAbs().array() / inv.diagonal().array()).maxCoeff() < 1e-12);
  for (std::size_t k = 0; k < cols.size(); ++k) {
    CAPTURE(cols[k]);
    CHECK(RelDiff(c.col(k), inv.col(cols[k])) < 1e-12);
  }
  CHECK((f.InverseDiagonal() - diag).cwiseAbs().maxCoeff() == 0.0);
  if (!cols.empty()) CHECK((f.InverseColumns(cols) - c).cwiseAbs().maxCoeff() == 0.0);
}

}  // namespace

TEST_CASE("selected inverse: diagonal and columns equal the full inverse on structured matrices") {
  for (int g : {0, 1, 37}) {
    CAPTURE(g);
    const Arrow m = RandomArrow(30, 17, g, 20 + g);
    REQUIRE(SpdFactor(m.a).structured());
    // Border and local columns, a repeated one, the first and the last index.
    std::vector<int> cols = {0, static_cast<int>(m.a.rows()) - 1, 5, 5, 211};
    for (int b : m.border)
      if (cols.size() < 9) cols.push_back(b);
    CheckSelected(m.a, cols);
    CheckSelected(m.a, {});
  }
  // Against an independent dense factorisation too.
  const Arrow m = RandomArrow(40, 12, 25, 31);
  const int n = static_cast<int>(m.a.rows());
  const Eigen::MatrixXd invr =
      Eigen::LLT<Eigen::MatrixXd>(m.a).solve(Eigen::MatrixXd::Identity(n, n));
  SpdFactor f(m.a);
  REQUIRE(f.structured());
  const std::vector<int> cols = {m.border[0], m.border[24], 3, n / 2};
  const Eigen::MatrixXd c = f.InverseColumns(cols);
  for (std::size_t k = 0; k < cols.size(); ++k) CHECK(RelDiff(c.col(k), invr.col(cols[k])) < 1e-10);
  CHECK(((f.InverseDiagonal() - invr.diagonal()).cwiseAbs().array() / invr.diagonal().array())
            .maxCoeff() < 1e-10);
}

TEST_CASE("selected inverse: dense matrices, below and above the structure-detection size") {
  for (int n : {50, 450}) {
    CAPTURE(n);
    std::mt19937 rng(40 + n);
    std::normal_distribution<double> gauss;
    Eigen::MatrixXd x(n, n);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i) x(i, j) = gauss(rng);
    const Eigen::MatrixXd a = x * x.transpose() + 0.1 * Eigen::MatrixXd::Identity(n, n);
    REQUIRE_FALSE(SpdFactor(a).structured());
    CheckSelected(a, {0, n - 1, n / 3, n / 3});
  }
  // Below the detection size the entries are those of Inverse(), bit for bit.
  const Arrow small = RandomArrow(10, 10, 5, 3);
  SpdFactor f(small.a);
  const Eigen::MatrixXd inv = f.Inverse();
  CHECK((f.InverseDiagonal() - inv.diagonal()).cwiseAbs().maxCoeff() == 0.0);
  CHECK((f.InverseColumns({7}).col(0) - inv.col(7)).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("selected inverse: bad column index is rejected, identical at 1 and 2 threads") {
  const Arrow m = RandomArrow(50, 25, 60, 9);
  SpdFactor f(m.a);
  CHECK_THROWS_AS(f.InverseColumns({-1}), std::invalid_argument);
  CHECK_THROWS_AS(f.InverseColumns({static_cast<int>(m.a.rows())}), std::invalid_argument);
  const std::vector<int> cols = {m.border[3], 17, 400};
  for (bool structured : {true, false}) {
    CAPTURE(structured);
    Eigen::MatrixXd a = m.a;
    if (!structured) a += Eigen::MatrixXd::Constant(a.rows(), a.cols(), 1e-3);  // no zero pattern
    Eigen::VectorXd d1, d2;
    Eigen::MatrixXd c1, c2;
    tbb::task_arena(1).execute([&] {
      SpdFactor g(a);
      REQUIRE(g.structured() == structured);
      g.SelectedInverse(cols, &d1, &c1);
    });
    tbb::task_arena(2).execute([&] {
      SpdFactor g(a);
      g.SelectedInverse(cols, &d2, &c2);
    });
    CHECK((d1 - d2).cwiseAbs().maxCoeff() == 0.0);
    CHECK((c1 - c2).cwiseAbs().maxCoeff() == 0.0);
  }
}
