// Pre-fit and post-fit yields per bin and process with uncertainties, projections of a channel
// onto a subset of its axes, and the per-channel saturated goodness of fit.
//
// Uncertainties: J C J^T with J = d yield / d x. Post-fit, C is the fit covariance and the yields
// of the fitted bins include the profiled Barlow-Beeston factors with their dependence on x
// (J includes d beta / d x), plus the betas' own spread at fixed x, g^T H_bb^-1 g (g = d yield /
// d beta, H_bb the betas' Hessian at fixed x): with J C J^T the exact Gaussian propagation of the
// joint (x, beta) covariance, as rabbit's postfit yields (docs/numerics.md "Post-fit yield
// uncertainties"). Pre-fit, C = diag(1/cw) over the constrained nuisances (POIs and unconstrained
// nuisances carry no prefit uncertainty) and, where bin-by-bin statistics are on, the MC variance
// sumw2 of the scaled processes is added (uncorrelated between bins).
#pragma once

#include <string>
#include <vector>

#include <Eigen/Core>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::engine {

struct YieldOptions {
  bool per_process = true;       // values and errors per (bin, process)
  bool full_covariance = false;  // bin-to-bin covariance of the totals [nbins_full^2]
};

struct YieldSet {
  bool postfit = false;
  Eigen::VectorXd total, total_error;      // [nbins_full]
  Eigen::MatrixXd process, process_error;  // [nbins_full x nproc] (empty unless per_process)
  Eigen::MatrixXd total_covariance;        // [nbins_full x nbins_full] (empty unless requested)
  // Kept for projections: J of the totals [nbins_full x num_params] and the parameter
  // covariance it is to be combined with (internal coordinates), plus the extra variance per bin
  // (prefit MC statistics; post-fit the betas' spread) and, when it correlates bins (covariance
  // fits, beta variations), the extra covariance [nbins_full x nbins_full] (else empty).
  Eigen::MatrixXd total_jacobian;
  Eigen::MatrixXd param_covariance;
  Eigen::VectorXd extra_variance;
  Eigen::MatrixXd extra_covariance;
};

// The extra (MC-statistics) variance of the sum of the totals of bins [first, first + n).
double ExtraVarianceOfSum(const YieldSet& yields, std::int64_t first, std::int64_t n);

// Throws NumericalError when the fit did not converge or its covariance is not accurate
// (near_singular, forced_positive) or the Hessian is not positive definite.
YieldSet PostfitYields(const Likelihood& likelihood, const FitResult& result,
                       const YieldOptions& options = {});
YieldSet PrefitYields(const Likelihood& likelihood, const YieldOptions& options = {});

struct ChannelProjection {
  std::string channel;
  std::vector<std::string> axes;   // kept axes, in the channel's order
  std::vector<int> shape;          // bins per kept axis
  Eigen::VectorXd values, errors;  // row-major over the kept axes
  Eigen::MatrixXd covariance;
  Eigen::MatrixXd process;  // [nproj x nproc] when per-process yields are present
};

// Sums a channel's totals over the axes not kept (keep_axes empty = the channel's full binning).
// Throws std::invalid_argument for an unknown channel or axis, or a channel without named axes.
ChannelProjection Project(const Likelihood& likelihood, const YieldSet& yields,
                          const std::string& channel, const std::vector<std::string>& keep_axes);

struct ChannelGof {
  std::string channel;
  double chi2 = 0.0;  // 2 * sum of the channel's bin NLL terms (saturated offset, beta terms)
  int ndf = 0;        // number of bins of the channel (a contribution; the total test subtracts
                      // the unconstrained parameters)
  double p = 0.0;
};
// Unmasked channels only.
std::vector<ChannelGof> ChannelGoodnessOfFit(const Likelihood& likelihood, const FitResult& result);

}  // namespace lepus::engine
