// Trust-region subproblem and Newton iteration used by Fit (engine/src/fit.cc).
#pragma once

#include <Eigen/Core>

namespace lepus::engine::detail {

// Solves min_p g.p + p.H.p/2 subject to |p| <= radius (Euclidean) by the Moré-Sorensen
// iteration on lambda with Cholesky factorisations of H + lambda I (Nocedal & Wright, Alg. 4.3).
// Handles indefinite H (lambda above -lambda_min). Returns the step; *lambda_out the shift used.
Eigen::VectorXd TrustRegionStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                                double radius, double* lambda_out);

}  // namespace lepus::engine::detail
