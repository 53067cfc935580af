#include "linalg.h"

#include <algorithm>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <Eigen/Cholesky>

namespace lepus::engine::detail {

CholeskyFactor::CholeskyFactor(const Eigen::MatrixXd& a, int block)
    : l_(a), block_(std::max(block, 8)) {
  const Eigen::Index n = l_.rows();
  const Eigen::Index nb = block_;
  for (Eigen::Index k = 0; k < n; k += nb) {
    const Eigen::Index kb = std::min(nb, n - k);
    // Diagonal block.
    Eigen::LLT<Eigen::MatrixXd> llt(l_.block(k, k, kb, kb));
    if (llt.info() != Eigen::Success) return;
    l_.block(k, k, kb, kb) = llt.matrixL();
    const Eigen::Index rest = n - k - kb;
    if (rest == 0) break;
    // Panel: A21 <- A21 L11^-T, rows independent.
    const auto l11 = l_.block(k, k, kb, kb).triangularView<Eigen::Lower>();
    tbb::parallel_for(tbb::blocked_range<Eigen::Index>(0, rest, nb),
                      [&](const tbb::blocked_range<Eigen::Index>& r) {
                        auto panel = l_.block(k + kb + r.begin(), k, r.end() - r.begin(), kb);
                        l11.transpose().solveInPlace<Eigen::OnTheRight>(panel);
                      });
    // Trailing update of the lower triangle: A22 -= A21 A21^T, one block column per task.
    tbb::parallel_for(tbb::blocked_range<Eigen::Index>(0, rest, nb),
                      [&](const tbb::blocked_range<Eigen::Index>& r) {
                        const Eigen::Index j0 = r.begin(), jb = r.end() - r.begin();
                        const auto a21 = l_.block(k + kb, k, rest, kb);
                        l_.block(k + kb + j0, k + kb + j0, rest - j0, jb).noalias() -=
                            a21.bottomRows(rest - j0) * a21.middleRows(j0, jb).transpose();
                      });
  }
  l_.triangularView<Eigen::StrictlyUpper>().setZero();
  ok_ = true;
}

Eigen::VectorXd CholeskyFactor::Solve(const Eigen::VectorXd& b) const {
  Eigen::VectorXd x = l_.triangularView<Eigen::Lower>().solve(b);
  l_.triangularView<Eigen::Lower>().transpose().solveInPlace(x);
  return x;
}

Eigen::MatrixXd CholeskyFactor::Inverse() const {
  const Eigen::Index n = l_.rows();
  const Eigen::Index nb = block_;
  // X = L^-1, column blocks independent (column j of X is zero above row j).
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(n, n);
  tbb::parallel_for(
      tbb::blocked_range<Eigen::Index>(0, n, nb), [&](const tbb::blocked_range<Eigen::Index>& r) {
        const Eigen::Index j0 = r.begin(), jb = r.end() - r.begin();
        auto cols = x.block(j0, j0, n - j0, jb);
        cols.topRows(jb).setIdentity();
        l_.block(j0, j0, n - j0, n - j0).triangularView<Eigen::Lower>().solveInPlace(cols);
      });
  // A^-1 = X^T X, lower triangle by block columns: rows i >= j0 of block column J need only
  // k >= j0 (X[k, J] = 0 for k < j0), i.e. (X[j0:, j0:])^T X[j0:, J] (about n^3/3 flops).
  Eigen::MatrixXd out(n, n);
  tbb::parallel_for(
      tbb::blocked_range<Eigen::Index>(0, n, nb), [&](const tbb::blocked_range<Eigen::Index>& r) {
        const Eigen::Index j0 = r.begin(), jb = r.end() - r.begin();
        out.block(j0, j0, n - j0, jb).noalias() =
            x.bottomRightCorner(n - j0, n - j0).transpose() * x.block(j0, j0, n - j0, jb);
      });
  // Symmetrise from the lower triangle (the strict upper part of each diagonal block and the
  // blocks above it are overwritten).
  out.triangularView<Eigen::StrictlyUpper>() = out.transpose();
  return out;
}

}  // namespace lepus::engine::detail
