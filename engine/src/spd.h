// Symmetric positive-definite factorisation that exploits the block structure of likelihood
// Hessians (docs/numerics.md, "Structured factorisation").
//
// The Hessian of a binned likelihood couples two parameters only when they act on a common bin
// (likelihood-reference.md section 5). In CMS-like models most nuisances are local (one eta
// region: efficiency, momentum scale, Barlow-Beeston-profiled bins) and a few hundred are global
// (POIs, theory, luminosity). Ordering the global ("border") parameters last gives a bordered
// block-diagonal matrix
//
//       [ D_1           B_1^T ]
//   H = [      ...      ...   ]      D_b: local block b, B_b: its coupling to the border,
//       [           D_k B_k^T ]      A: border x border
//       [ B_1  ...  B_k   A   ]
//
// which is factorised through the Schur complement S = A - sum_b B_b D_b^-1 B_b^T: per block a
// Cholesky factor L_b and W_b = L_b^-1 B_b^T, then S = A - sum_b W_b^T W_b and its Cholesky
// factor. H is positive definite iff every D_b and S are. Cost sum_b (n_b^3/3 + n_b^2 g + n_b g^2)
// + g^3/3 instead of n^3/3 (for the 4926-parameter CMS-like benchmark ~40x less).
//
// The structure is detected from the exact zero pattern of the matrix (entries between parameters
// that never share a bin are exactly 0.0 in the assembled Hessian), so it applies to any input and
// to sub-matrices (frozen parameters, impacts). When no profitable structure exists the dense
// blocked Cholesky of linalg.h is used. Every operation has a fixed order: results are bitwise
// identical at any thread count.
#pragma once

#include <memory>
#include <vector>

#include <Eigen/Core>

#include "linalg.h"

namespace lepus::engine::detail {

// Bordered block-diagonal structure of a symmetric matrix.
struct BlockStructure {
  std::vector<int> border;               // the dense coupling indices, increasing
  std::vector<std::vector<int>> blocks;  // disjoint increasing index sets; zero coupling between
  double flops = 0.0;                    // estimated factorisation cost (dense: n^3 / 3)
  bool structured() const { return !blocks.empty(); }
};

// The cheapest structure found from the zero pattern of a (lower triangle read), or an
// unstructured result (no blocks) when the dense factorisation is about as cheap or n is small.
// Runs in the calling task arena.
BlockStructure DetectBlockStructure(const Eigen::MatrixXd& a);

// Cholesky-type factorisation of a symmetric matrix (lower triangle read), structured when
// DetectBlockStructure finds it worthwhile, dense otherwise. Runs in the calling task arena.
class SpdFactor {
 public:
  explicit SpdFactor(const Eigen::MatrixXd& a);
  ~SpdFactor();
  SpdFactor(SpdFactor&&) noexcept;
  SpdFactor& operator=(SpdFactor&&) noexcept;

  bool ok() const { return ok_; }          // a is positive definite
  bool structured() const;                 // the block path was used
  Eigen::Index size() const { return n_; }
  // x = A^-1 b (requires ok()).
  Eigen::VectorXd Solve(const Eigen::VectorXd& b) const;
  // A^-1, symmetric (requires ok()).
  Eigen::MatrixXd Inverse() const;

 private:
  struct Blocks;
  Eigen::Index n_ = 0;
  bool ok_ = false;
  std::unique_ptr<CholeskyFactor> dense_;
  std::unique_ptr<Blocks> blocks_;
};

}  // namespace lepus::engine::detail
