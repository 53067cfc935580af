// Dense symmetric positive-definite linear algebra for the minimiser and the covariance:
// a blocked right-looking Cholesky factorisation and inverse whose block operations run in
// parallel under TBB (in the calling task arena). Every matrix element is computed by one task
// with a fixed operation order, so results are bitwise identical at any thread count.
#pragma once

#include <Eigen/Core>

namespace lepus::engine::detail {

class CholeskyFactor {
 public:
  // Factorises the symmetric matrix a (only its lower triangle is read). ok() tells whether it is
  // positive definite.
  explicit CholeskyFactor(const Eigen::MatrixXd& a, int block = 128);
  bool ok() const { return ok_; }
  Eigen::Index size() const { return l_.rows(); }
  // x = A^-1 b (requires ok()).
  Eigen::VectorXd Solve(const Eigen::VectorXd& b) const;
  // A^-1, symmetric (requires ok()).
  Eigen::MatrixXd Inverse() const;
  // The lower-triangular factor L (A = L L^T); the strict upper triangle is unspecified.
  const Eigen::MatrixXd& matrixL() const { return l_; }

 private:
  Eigen::MatrixXd l_;
  int block_;
  bool ok_ = false;
};

}  // namespace lepus::engine::detail
