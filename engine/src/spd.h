// Symmetric positive-definite factorisation that exploits the block structure of likelihood
// Hessians (docs/numerics.md, "Structured factorisation").
//
// The Hessian of a binned likelihood couples two parameters only when they act on a common bin
// (docs/likelihood.md section 5). In CMS-like models most nuisances are local (one eta
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
#include <string>
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

  bool ok() const { return ok_; }  // a is positive definite
  bool structured() const;         // the block path was used
  Eigen::Index size() const { return n_; }
  // x = A^-1 b (requires ok()).
  Eigen::VectorXd Solve(const Eigen::VectorXd& b) const;
  // A^-1, symmetric (requires ok()).
  Eigen::MatrixXd Inverse() const;
  // Selected entries of A^-1 without forming it (docs/numerics.md, "Selected inverse"): its
  // diagonal (if `diagonal`) and its columns `cols` (= rows, A^-1 is symmetric) as an
  // n x cols.size() matrix (if `columns`). Structured path: the block formulas, ~ sum_b (n_b^3/3 +
  // n_b^2 g + n_b g^2) + g^3 plus ~ n g per column, instead of the ~ n_local^2 g of the full
  // local x local product (and no n x n result). Dense path: diag from L^-1 (~ n^3/3 instead of
  // 2n^3/3), a solve per column; below the structure-detection size (milliseconds) both come
  // from Inverse(), so they are bitwise those of the full inverse. Every operation has a fixed
  // order (bitwise identical at any thread count). Requires ok(); throws std::invalid_argument for
  // a column index outside [0, n).
  void SelectedInverse(const std::vector<int>& cols, Eigen::VectorXd* diagonal,
                       Eigen::MatrixXd* columns) const;
  Eigen::VectorXd InverseDiagonal() const;                             // diag(A^-1)
  Eigen::MatrixXd InverseColumns(const std::vector<int>& cols) const;  // columns cols of A^-1

 private:
  struct Blocks;
  Eigen::Index n_ = 0;
  bool ok_ = false;
  std::unique_ptr<CholeskyFactor> dense_;
  std::unique_ptr<Blocks> blocks_;
};

// Conditioning of a symmetric positive-definite matrix A (both triangles stored; f its
// factorisation) after Jacobi scaling,
// As = D^-1/2 A D^-1/2 with D = diag(A) (unit diagonal; docs/numerics.md, "Near-singular
// Hessians"). lambda_min is estimated by `steps` inverse-iteration steps with the existing
// factorisation (one Solve each, no new factorisation) from a fixed pseudo-random start, lambda_max
// by as many power-iteration steps (one symmetric matrix-vector product each). Both estimates are
// Rayleigh quotients: lambda_min is approached from above and lambda_max from below, each within a
// small factor after a few steps (exactly when a single direction is nearly singular, the case
// that matters). `direction` is the unit estimate of the lambda_min eigenvector of As.
struct ScaledConditioning {
  double lambda_min = 0.0;
  double lambda_max = 0.0;
  Eigen::VectorXd direction;
  double ratio() const { return lambda_max > 0 ? lambda_min / lambda_max : 0.0; }
};
ScaledConditioning EstimateScaledConditioning(const Eigen::MatrixXd& a, const SpdFactor& f,
                                              int steps = 6);

// "p1 (+0.71), p2 (-0.71)": the components of a unit vector with |v_i| >= 0.1 (at most
// `max_terms`, largest first), sign-normalised so that the largest component is positive.
// names[i] names component i.
std::string DescribeDirection(const Eigen::VectorXd& v, const std::vector<std::string>& names,
                              int max_terms = 5);

}  // namespace lepus::engine::detail
