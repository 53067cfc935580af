// Private: the Ceres Solver fit (FitMethod::kCeres, kCeresDogleg), called by engine::Fit.
#pragma once

#include "lepus/engine/fit.h"

namespace lepus::engine::detail {

// Minimises the profiled NLL as the nonlinear least-squares problem 1/2 sum r^2 of per-bin
// deviance residuals and constraint residuals with Ceres (Levenberg-Marquardt, or traditional
// dogleg with `dogleg`), sparse normal Cholesky; then polishes with the exact Newton fit from the
// Ceres minimum. Throws std::invalid_argument when the Ceres build lacks a sparse Cholesky.
FitResult FitCeres(const Likelihood& likelihood, const FitOptions& options, bool dogleg);

// Test hook: the least-squares cost 1/2 sum r^2 of the residuals FitCeres gives Ceres, at x, and
// J^T r over all parameters (they equal Likelihood::Value(x) and the gradient). Returns NaN where
// a residual cannot be evaluated (a non-positive yield).
double CeresCostAndGradient(const Likelihood& likelihood, const Eigen::VectorXd& x,
                            Eigen::VectorXd* jtr);

}  // namespace lepus::engine::detail
