// The trust-region subproblem solvers of the Newton iteration in Fit (engine/src/fit.cc):
// Moré-Sorensen, dogleg and truncated CG steps.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace lepus::engine::detail {

// Solves min_p g.p + p.H.p/2 subject to |p| <= radius (Euclidean) by the Moré-Sorensen
// iteration on lambda with Cholesky factorisations of H + lambda I (Nocedal & Wright, Alg. 4.3).
// Handles indefinite H (lambda above -lambda_min). Returns the step; *lambda_out the shift used.
Eigen::VectorXd TrustRegionStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                                double radius, double* lambda_out);

// Dogleg step for a positive-definite H with the Newton step already solved, in the variables
// scaled by d (trust region |d * p| <= radius): the Newton step if it fits, else the point where
// the path Cauchy point -> Newton step leaves the region (or the steepest-descent boundary point).
Eigen::VectorXd DoglegStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                           const Eigen::VectorXd& newton, const Eigen::VectorXd& d, double radius);

// Steihaug-Toint truncated conjugate gradients for the trust-region subproblem (Euclidean norm):
// stops at the boundary on negative curvature or when the step leaves the region, or when the
// residual falls below min(0.5, sqrt|g|) |g|. Hessian-vector products only.
Eigen::VectorXd SteihaugStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                             double radius, int max_iterations = 500);

// Inverse of a symmetric positive-definite matrix (linalg.h's blocked parallel Cholesky and
// inverse). Returns false (out untouched) if the matrix is not SPD.
bool InverseSPD(const Eigen::MatrixXd& a, Eigen::MatrixXd* out);

}  // namespace lepus::engine::detail
