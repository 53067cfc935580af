// Impacts of nuisance parameters and statistical sources on the parameters of interest
// (docs/inference.md; the "Nominal" and "Global" columns of the CMS W-mass impact tables), with rabbit's
// definitions and names (github WMass/rabbit, rabbit/impacts/; the correspondence table is in
// docs/inference.md).
//
//  * nominal ("traditional", rabbit impacts / impacts_grouped): C_ij / sqrt(C_jj) from the
//    covariance of the fit, no refits; grouped: sqrt(c_G^T C_GG^-1 c_G), c_G = C_{i,G};
//    "stat": sqrt(c_S^T (H_nobbb restricted to S)^-1 c_S), S = the floating POIs and
//    unconstrained systematics (every constrained nuisance fixed), H_nobbb the Hessian with the
//    Barlow-Beeston factors held at their profiled values, c_S the target's coefficients on S
//    (a constrained NOI gets 0, as in rabbit); without bin-by-bin statistics H_nobbb = H;
//    "binByBinStat": sqrt(max(0, c_S^T ((H restricted to S)^-1 - (H_nobbb restricted to S)^-1) c_S))
//    with H the Hessian of the profiled NLL (rabbit's _cov_stat_floating difference).
//    bbstat_fullcov ("binByBinStat_fullcov" in the results): sqrt(C_ii - C_ii[beta fixed]) over
//    all floating parameters: the uncertainty removed by fixing beta with every nuisance
//    profiled (the conditional-uncertainty method applied to the MC statistics).
//  * global (arXiv:2307.04007; rabbit gaussian_global_impacts): the shift of the target per
//    one-sigma shift of each global observable, dx/dg = -H^-1 d2NLL/dx dg times sigma_g: nuisance
//    centres theta0_j (sigma 1/sqrt(cw_j)), observed counts n_b (sigma^2 = n_b), Barlow-Beeston
//    centres beta0_b (sigma^2 = beta_b / k_b). Groups add in quadrature; "stat" = all data bins,
//    "binByBinStat" = all beta0. The squares of all global impacts add up to the target's
//    variance exactly on Asimov data.
//    rabbit's two global tables, alongside (equal to grouped_global except): binByBinStat with
//    sigma^2(beta0_b) = 1/k_b in both; stat = sqrt(C_ii - sum theta0^2 - sum beta0^2) (the
//    remainder) in rabbit's likelihood-based global_impacts, the explicit data sum (ours) in
//    rabbit's gaussian_global_impacts. On Asimov data (beta = 1) all three tables agree.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Core>

#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::engine {

struct ImpactOptions {
  // Targets: parameter indices; empty = every POI and NOI.
  std::vector<int> targets;
  // Extra groups (e.g. from command-line regular expressions), added to the model's groups.
  std::vector<SystematicGroup> extra_groups;
  // Compute global impacts (needs the mixed derivatives: one pass over the data).
  bool global = true;
  // Multiply a target's impacts by its physical scale (ParamInfo::scale, e.g. 100 MeV per unit;
  // for a combination, the common scale of its parameters if they all share one).
  bool physical_units = true;
  // Linear combinations treated as extra targets (after the parameter targets).
  std::vector<LinearCombination> combinations;
};

struct Impacts {
  std::vector<int> targets;               // parameter indices; -1 for a combination
  std::vector<std::string> target_names;  // parameter or combination names
  std::vector<double> target_scale;       // factor applied to each target's numbers (1 or scale)
  std::vector<std::string> target_unit;   // unit after scaling ("" when none)
  Eigen::VectorXd total;                  // sqrt(C_ii), scaled

  // Nominal impacts of every parameter on each target [ntargets x nparams] (own entry = total).
  Eigen::MatrixXd nominal;
  // Groups: the model's and the extra ones, then "stat" and "binByBinStat" (when BB is on).
  std::vector<std::string> group_names;
  Eigen::MatrixXd grouped_nominal;  // [ntargets x ngroups]
  // sqrt(C_ii - C_ii[beta fixed]), all floating parameters (when BB is on; empty otherwise).
  Eigen::VectorXd bbstat_fullcov;

  // Global impacts (signed), when requested.
  bool has_global = false;
  Eigen::MatrixXd global_nuisance;  // [ntargets x nparams]: constrained nuisances (0 otherwise)
  // [ntargets x nbins]; for a covariance fit (correlated data) the columns are the data's
  // independent components (a Cholesky factor of the data covariance), not bins.
  Eigen::MatrixXd global_data;
  Eigen::MatrixXd global_bbstat;   // [ntargets x nbins] (0 in bins without beta)
  Eigen::MatrixXd grouped_global;  // [ntargets x ngroups]
  // External likelihood terms as sources (Model::external_terms, in order) [ntargets x nterms]:
  // sqrt(c^T C P^T H_e P C c), unsigned; included in global_closure.
  std::vector<std::string> external_names;
  Eigen::MatrixXd global_external;
  // Sum of all squared global impacts / C_ii - 1 (0 on Asimov data up to rounding).
  Eigen::VectorXd global_closure;
  // rabbit's global_impacts_grouped and gaussian_global_impacts_grouped [ntargets x ngroups]
  // (same groups; they differ from grouped_global in "stat" / "binByBinStat" only, see above).
  Eigen::MatrixXd rabbit_global_grouped;
  Eigen::MatrixXd rabbit_gaussian_global_grouped;
};

// Throws std::invalid_argument for bad targets/groups; NumericalError (fit.h) when the fit has no
// accurate covariance or a restricted Hessian is not positive definite.
Impacts ComputeImpacts(const Likelihood& likelihood, const FitResult& result,
                       const ImpactOptions& options = {});

// Cross-check of one nominal impact by refits: the nuisance j is fixed at its fitted value
// +- its error and everything else refitted; returns (shift_up, shift_down) of the target in
// reported units (no physical scaling). Throws NumericalError if a refit does not converge.
std::pair<double, double> ImpactByRefit(const Likelihood& likelihood, const FitResult& result,
                                        int target, int nuisance, const FitOptions& options = {});

// The refit behind ImpactByRefit, for every target at once: the nuisance fixed at its fitted
// value + sigmas x its error (internal coordinates), everything else refitted from the best fit
// (no covariance: only the values are used). The returned result's values minus result.values
// are the shifts of every parameter; its status says whether the refit converged. Independent
// refits (one per nuisance and direction) can run anywhere, e.g. on different MPI ranks: each
// is a deterministic function of its inputs. Throws std::invalid_argument for a bad or frozen
// nuisance.
FitResult RefitWithShiftedNuisance(const Likelihood& likelihood, const FitResult& result,
                                   int nuisance, double sigmas, const FitOptions& options = {});

}  // namespace lepus::engine
