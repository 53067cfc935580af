// lepus::engine::Fit — trust-region Newton minimisation of a Likelihood with the exact Hessian,
// covariance, and saturated goodness of fit. Numerical outcomes are statuses, never exceptions.
#pragma once

#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "lepus/engine/enum_names.h"
#include "lepus/engine/likelihood.h"

namespace lepus::engine {

// kDense: Newton with the dense Hessian (covariance of every parameter). kMatrixFree:
// trust-region Newton-CG with exact Hessian-vector products, for models too large for a dense
// Hessian; covariance rows only for the covariance targets. kAuto: matrix-free above
// FitOptions::matrix_free_threshold floating parameters.
// kCeres / kCeresDogleg: Ceres Solver on the Poisson deviance residuals (a sparse nonlinear least-
// squares problem: Levenberg-Marquardt or dogleg, sparse normal Cholesky with SuiteSparse), then
// polished by the exact Newton fit (dense up to matrix_free_threshold, matrix-free above), so the
// minimum, the EDM and the covariance are the exact ones (docs/numerics.md, "Ceres").
enum class FitMethod { kAuto, kDense, kMatrixFree, kCeres, kCeresDogleg };
inline constexpr EnumName<FitMethod> kFitMethodNames[] = {
    {FitMethod::kAuto, "auto"},
    {FitMethod::kDense, "dense"},
    {FitMethod::kMatrixFree, "matrix_free", "matrix-free"},
    {FitMethod::kCeres, "ceres", "ceres_lm"},
    {FitMethod::kCeresDogleg, "ceres_dogleg", "ceres-dogleg"}};
std::string ToString(FitMethod method);
FitMethod FitMethodFromString(const std::string& text);  // throws std::invalid_argument

// How much of the covariance (inverse Hessian) a dense fit computes (docs/numerics.md, "Selected
// inverse"). kFull: all of it (FitResult::covariance, covariance_internal). kSelected: only the
// variances of every parameter (FitResult::errors) and the full rows of the covariance targets
// (FitOptions::covariance_targets; FitResult::covariance_row_params / covariance_rows, the
// representation of the matrix-free fits), from the factorised Hessian without forming its inverse
// (for the ~4900-parameter CMS-like benchmark ~9x cheaper than the inverse);
// FitResult::covariance and covariance_internal stay empty. Matrix-free fits always compute
// target rows only.
enum class CovarianceExtent { kFull, kSelected };
std::string ToString(CovarianceExtent extent);

struct FitOptions {
  // Convergence when EDM = g^T H^-1 g / 2 (over the floating parameters) is below this. Newton
  // converges quadratically, so after this test one more Newton step is taken: the returned
  // minimum is accurate far beyond the tolerance (see docs/numerics.md).
  double edm_tolerance = 1e-8;
  // Maximum Newton iterations (each one gradient + Hessian evaluation).
  int max_iterations = 200;
  // Initial trust-region radius, in parameters scaled by sqrt(diag H) (i.e. roughly in units of
  // each parameter's uncertainty); > 0.
  double initial_trust_radius = 1.0;
  // Upper bound of the trust-region radius (same units); >= initial_trust_radius.
  double max_trust_radius = 1e6;
  // Starting point [num_params] in internal coordinates; empty = Likelihood::InitialParams().
  Eigen::VectorXd initial_params;
  // Parameters kept fixed at their starting value [num_params]; empty = none frozen.
  std::vector<bool> frozen;
  // Compute the covariance (inverse Hessian) at the minimum.
  bool compute_covariance = true;
  FitMethod method = FitMethod::kAuto;
  // kAuto switches to the matrix-free method above this many floating parameters (> 0).
  int matrix_free_threshold = 20000;
  // Matrix-free: relative residual of the preconditioned CG solves for the final Newton step and
  // the covariance rows (in (0, 1)), and their iteration limit (> 0).
  double cg_tolerance = 1e-10;
  int cg_max_iterations = 5000;
  // Dense fits: the whole covariance (kFull) or the variances and the target rows (kSelected).
  CovarianceExtent covariance_extent = CovarianceExtent::kFull;
  // Matrix-free fits and dense fits with kSelected: parameters whose covariance rows are computed;
  // empty = the floating POIs and NOIs.
  std::vector<int> covariance_targets;
  // The covariance is "accurate" only when the smallest eigenvalue of the Hessian over the
  // floating parameters, Jacobi-scaled to unit diagonal, exceeds this fraction of the largest
  // (docs/numerics.md, "Near-singular Hessians"); otherwise kNearSingular. In (0, 1).
  double singular_ratio = 1e-12;
  // Cancellation: when set, called at the start and before every iteration (from the thread running the fit: the
  // caller's, or a TBB worker's for scan points and toys, possibly concurrently, so it must be
  // thread-safe and cheap, e.g. an atomic flag). Returning true stops the fit with status
  // kFailed and message kCancelledMessage (no covariance); RunToys also skips the toys not yet
  // started. Used by the Python bindings to make Ctrl-C interrupt a long fit; empty = never.
  std::function<bool()> cancel;

  bool IsValid(int num_params, std::string* error) const;
};

// FitResult::message of a fit stopped by FitOptions::cancel.
inline constexpr const char* kCancelledMessage = "cancelled";

// Numerical trouble in a computation that needs a good fit (impacts on a Hessian that is not
// positive definite or near-singular, refits that do not converge, intervals or toys around a
// failed fit, post-fit yields without an accurate covariance). Not bad input: the CLI maps it to
// exit code 2 with its message (std::invalid_argument stays "bad input", exit code 1).
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class FitStatus { kConverged, kNotConverged, kFailed };
std::string ToString(FitStatus status);

// Covariance quality, after Minuit2's flags.
enum class CovarianceStatus {
  kNotComputed,
  kAccurate,          // Hessian positive definite with a margin (FitOptions::singular_ratio)
  kForcedPositive,    // Hessian not positive definite: eigenvalues clamped (do not trust)
  kTargetsOnly,       // matrix-free fit: covariance rows of the targets only (accurate)
  kAccurateSelected,  // as kAccurate, but CovarianceExtent::kSelected: the errors of every
                      // parameter and the rows of the targets only (no covariance matrix)
  kNearSingular,      // Hessian factorised, but (nearly) singular after scaling, or a
                      // matrix-free covariance row did not converge: numbers not trusted
};
std::string ToString(CovarianceStatus status);

struct FitResult {
  FitStatus status = FitStatus::kFailed;
  std::string message;
  double nll = 0.0;   // profiled NLL with saturated offset at the minimum
  double edm = -1.0;  // g^T H^-1 g / 2 at the minimum (floating parameters)
  int iterations = 0;
  int evaluations = 0;
  bool hessian_positive_definite = false;
  CovarianceStatus covariance_status = CovarianceStatus::kNotComputed;
  // Estimated lambda_min / lambda_max of the Jacobi-scaled Hessian over the floating parameters
  // (dense fits; NaN when not estimated; when not positive definite, the ratio of the unscaled
  // extreme eigenvalues). Matrix-free fits: the
  // smallest ratio of the Lanczos (CG) estimates over the covariance-row solves.
  double hessian_scaled_ratio = std::numeric_limits<double>::quiet_NaN();
  // Why the covariance is not accurate ("" when it is): e.g. "Hessian near-singular
  // (lambda_min/lambda_max = 3e-18 after scaling): direction dominated by sysA (+0.71), sysB (-0.71)".
  std::string covariance_message;

  Eigen::VectorXd x;           // internal coordinates at the minimum [num_params]
  Eigen::VectorXd values;      // reported values: mu for POIs, theta otherwise
  Eigen::VectorXd errors;      // sqrt(diag(covariance)); 0 for frozen parameters
  Eigen::MatrixXd covariance;  // of the reported values (Jacobian-transformed for mu = x^2)
  Eigen::MatrixXd hessian;     // of the NLL in internal coordinates at the minimum
  // H^-1 over the floating parameters in internal coordinates (x; = covariance unless
  // poi_positive), zero rows/columns for frozen ones; empty when not computed.
  Eigen::MatrixXd covariance_internal;
  // Matrix-free fits: covariance is empty; these rows of the reported covariance
  // [targets x num_params] are computed by CG solves (errors of other parameters are NaN).
  // Dense fits with CovarianceExtent::kSelected: covariance is empty, these rows come from the
  // selected inverse, and the errors of every parameter are set (also with the statuses
  // kNearSingular and kForcedPositive, whose numbers are those kFull would give).
  FitMethod method = FitMethod::kDense;
  std::vector<int> covariance_row_params;
  Eigen::MatrixXd covariance_rows;
  int cg_iterations = 0;  // total CG iterations (matrix-free)
  std::vector<bool> frozen;
  // Parameters held at a bound of Model::lower_bounds / upper_bounds by Fit's active set (also
  // marked in frozen: their errors are 0 and the covariance is that of the others).
  std::vector<int> at_bound;

  // Saturated goodness of fit: chi2 = 2 * nll, ndf = nbins - unconstrained floating params.
  double gof_chi2 = 0.0;
  int gof_ndf = 0;
  double gof_p = 0.0;

  // Wall-clock seconds.
  double time_total = 0.0;
  double time_evaluation = 0.0;  // likelihood, gradient, Hessian
  double time_linear_algebra = 0.0;
  double time_covariance = 0.0;

  bool ok() const { return status == FitStatus::kConverged; }
  Eigen::MatrixXd Correlation() const;
  // The correlation matrix of the parameters idx (in that order): Correlation() at idx when
  // covariance is the full matrix, else from covariance_rows (CovarianceExtent::kSelected,
  // matrix-free), which must hold a row for every index (std::invalid_argument naming the first
  // without one, or an index out of range).
  Eigen::MatrixXd CorrelationOf(const std::vector<int>& idx) const;
  std::string BriefReport() const;
};

// Minimises the likelihood. Never throws for numerical trouble (the status says it); throws
// std::invalid_argument when the options are invalid for this likelihood. Parameters fixed by the
// model (Model::fixed) are frozen, and the model's bounds are respected (active set; at_bound).
FitResult Fit(const Likelihood& likelihood, const FitOptions& options = {});

// Chi-square survival function Q(ndf/2, chi2/2) (p-value of the saturated test).
double ChiSquarePValue(double chi2, int ndf);

// The Asimov data set: expected yields of the fitted bins at x (no beta), e.g. the prefit model.
Eigen::VectorXd AsimovData(const Likelihood& likelihood, const Eigen::VectorXd& x);

}  // namespace lepus::engine
