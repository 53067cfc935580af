// lepus::engine::Likelihood — the profiled negative log-likelihood of a Model and its exact
// analytic gradient and Hessian (docs/likelihood.md sections 2-5).
//
// Parameter vector x = [POIs (one per signal process, in process order); theta (hsysts order)].
// With LikelihoodOptions::poi_positive the POI entries of x are the square roots of the signal
// strengths (mu = x^2, rabbit's positive parametrisation); otherwise x holds mu directly.
// Barlow-Beeston parameters beta (one per fitted bin, "lite", or one per fitted bin and process,
// "full") are profiled analytically inside every evaluation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "lepus/engine/enum_names.h"
#include "lepus/engine/model.h"

namespace lepus::engine {

// How the Hessian's sums of outer products are assembled. Both give the same matrix up to
// rounding; kAuto picks blocked rank-k updates when rows touch more than a quarter of the
// parameters, per-row scatter otherwise.
enum class HessianAssembly { kAuto, kBlocked, kPerRow };
std::string ToString(HessianAssembly a);

// The data term of the NLL (rabbit's fit types; docs/numerics.md "Likelihood variants").
//   kPoisson:    sum_b L_b - n_b + n_b ln(n_b / L_b)   (saturated Poisson, the default)
//   kChisq:      sum_b (L_b - n_b)^2 / (2 sigma_b^2)    (rabbit --chisqFit; sigma^2 = data variance)
//   kCovariance: (L - n)^T W (L - n) / 2                (rabbit --covarianceFit; W = Model::data_cov_inv,
//                or diag(1 / data variance) when the model has no data_cov_inv)
enum class DataTerm { kPoisson, kChisq, kCovariance };
inline constexpr EnumName<DataTerm> kDataTermNames[] = {{DataTerm::kPoisson, "poisson"},
                                                        {DataTerm::kChisq, "chisq"},
                                                        {DataTerm::kCovariance, "covariance"}};
std::string ToString(DataTerm term);
// Accepts "poisson", "chisq", "covariance"; throws std::invalid_argument otherwise.
DataTerm DataTermFromString(const std::string& text);

// How the Barlow-Beeston-lite parameter beta_b of a fitted bin enters and is constrained (rabbit
// --binByBinStatType); lv = yield of the processes with MC variance, lu = the others, k_b = lv^2 /
// sum_p sumw2, V_b = sum_p sumw2:
//   kGamma:                L = beta lv + lu, constraint k (beta - beta0) - k beta0 ln(beta / beta0)
//   kNormalMultiplicative: L = beta lv + lu, constraint k (beta - beta0)^2 / 2
//   kNormalAdditive:       L = lv + lu + sqrt(V) beta, constraint (beta - beta0)^2 / 2
//   kAutomatic:            normal-additive for kCovariance, normal-multiplicative for kFull,
//                          gamma otherwise (rabbit's "automatic").
enum class BinByBinStatType { kAutomatic, kGamma, kNormalMultiplicative, kNormalAdditive };
inline constexpr EnumName<BinByBinStatType> kBinByBinStatTypeNames[] = {
    {BinByBinStatType::kAutomatic, "automatic"},
    {BinByBinStatType::kGamma, "gamma"},
    {BinByBinStatType::kNormalMultiplicative, "normal-multiplicative"},
    {BinByBinStatType::kNormalAdditive, "normal-additive"}};
std::string ToString(BinByBinStatType type);
// Accepts "automatic", "gamma", "normal-multiplicative", "normal-additive".
BinByBinStatType BinByBinStatTypeFromString(const std::string& text);

// How many Barlow-Beeston parameters (rabbit --binByBinStatMode; docs/numerics.md "Barlow-Beeston
// full"):
//   kLite: one beta_b per fitted bin scaling (or shifting) the bin's processes with MC variance.
//   kFull: one beta_bp per fitted bin and process with sumw2 > 0 and sumw != 0, each with its own
//          k_bp = sumw_bp^2 / sumw2_bp; the betas of a bin are profiled jointly (a scalar equation
//          per bin). Beta vectors (beta0, ProfiledBeta, bb_kstat, the beta0 columns of
//          GlobalObservableDerivatives) then have num_betas() = nbins * nproc entries, index
//          b * nproc + p. kAutomatic resolves to normal-multiplicative (rabbit; normal-additive for
//          covariance fits).
enum class BinByBinStatMode { kLite, kFull };
inline constexpr EnumName<BinByBinStatMode> kBinByBinStatModeNames[] = {
    {BinByBinStatMode::kLite, "lite"}, {BinByBinStatMode::kFull, "full"}};
std::string ToString(BinByBinStatMode mode);
// Accepts "lite", "full".
BinByBinStatMode BinByBinStatModeFromString(const std::string& text);

struct LikelihoodOptions {
  // Barlow-Beeston (betas profiled analytically).
  bool bin_by_bin_stat = true;
  BinByBinStatType bin_by_bin_stat_type = BinByBinStatType::kAutomatic;
  BinByBinStatMode bin_by_bin_stat_mode = BinByBinStatMode::kLite;
  DataTerm data_term = DataTerm::kPoisson;
  // kChisq / kCovariance without data_cov_inv: the variance of the observed data. false (rabbit's
  // choice: its fit passes the observed counts as their own variance, hdata_var is only used to
  // throw toys): data_obs. true: Model::data_var when the model has it (weighted data).
  bool use_data_var = false;
  // Signal strengths parametrised as mu = x^2 (mu >= 0 by construction).
  bool poi_positive = false;
  // Worker threads for evaluations; 0 = all hardware threads. Results do not depend on it.
  int num_threads = 0;
  // Rows per work item; results do not depend on it either (fixed reduction order per slice).
  int grain_rows = 256;
  HessianAssembly hessian_assembly = HessianAssembly::kAuto;

  bool IsValid(std::string* error) const;
};

enum class ParamKind { kPoi, kNoi, kNuisance };
std::string ToString(ParamKind kind);

struct ParamInfo {
  std::string name;  // POIs are named after their signal process
  ParamKind kind = ParamKind::kNuisance;
  bool constrained = false;  // Gaussian constraint (cw > 0)
  double constraint_weight = 0.0;
  double prefit = 0.0;        // reported prefit value (mu = 1 for POIs; initial value or theta0)
  double prefit_error = 0.0;  // 1/sqrt(cw) for constrained nuisances, NaN when unconstrained
  double scale = 0.0;         // physical value of theta = 1 (0 = none)
  std::string unit;
};

class Likelihood {
 public:
  // The model is copied in (shared, immutable). Throws std::invalid_argument when the model or
  // the options are invalid.
  Likelihood(Model model, LikelihoodOptions options = {});
  Likelihood(std::shared_ptr<const Model> model, LikelihoodOptions options = {});
  ~Likelihood();
  Likelihood(Likelihood&&) noexcept;
  Likelihood& operator=(Likelihood&&) noexcept;
  Likelihood(const Likelihood&) = delete;
  Likelihood& operator=(const Likelihood&) = delete;

  // An independent copy (own data and global observables, same model) evaluating with
  // num_threads threads (0 = all); used to run toys or scan points concurrently.
  Likelihood Clone(int num_threads) const;

  const Model& model() const;
  const LikelihoodOptions& options() const;
  int num_params() const;
  const std::vector<ParamInfo>& params() const;
  // Index of a parameter by exact name, -1 if absent.
  int FindParam(const std::string& name) const;

  // Default starting point: x = 1 for POIs (mu = 1); for systematics Model::initial_values, else
  // the constraint centres theta0.
  Eigen::VectorXd InitialParams() const;

  // Observed data ([nbins]); defaults to model().data_obs. Throws std::invalid_argument on size
  // mismatch or negative / non-finite entries. For kChisq the data variance becomes `data` (as
  // rabbit's set_nobs for Asimov data, pseudo-data and toys); the two-argument form sets it.
  void SetData(const Eigen::VectorXd& data);
  void SetData(const Eigen::VectorXd& data, const Eigen::VectorXd& variance);
  const Eigen::VectorXd& data() const;
  // The variance sigma_b^2 of each fitted bin's data for kChisq (and the diagonal of the data
  // covariance for kCovariance without data_cov_inv); empty for kPoisson.
  const Eigen::VectorXd& data_variance() const;
  // The resolved data term and Barlow-Beeston type (kAutomatic resolved), and a one-line
  // description for reports, e.g. "Poisson, Barlow-Beeston lite (gamma)".
  DataTerm data_term() const;
  BinByBinStatType bin_by_bin_stat_type() const;
  BinByBinStatMode bin_by_bin_stat_mode() const;
  // Size of the beta vectors: nbins (lite) or nbins * nproc (full, index b * nproc + p).
  std::int64_t num_betas() const;
  std::string Describe() const;
  // Global observables: constraint centres theta0 [nsyst] (default 0) and the Barlow-Beeston
  // centres beta0 [num_betas()] (default 1; normal-additive 0).
  void SetGlobalObservables(const Eigen::VectorXd& theta0, const Eigen::VectorXd& beta0);
  const Eigen::VectorXd& theta0() const;
  const Eigen::VectorXd& beta0() const;

  // Profiled NLL with the saturated offset (docs/likelihood.md section 3).
  double Value(const Eigen::VectorXd& x) const;
  // NLL and gradient; grad is resized to num_params().
  double ValueAndGradient(const Eigen::VectorXd& x, Eigen::VectorXd* grad) const;
  // NLL, gradient and the exact Hessian of the profiled NLL.
  double ValueGradientHessian(const Eigen::VectorXd& x, Eigen::VectorXd* grad,
                              Eigen::MatrixXd* hess) const;

  // Expected yields per bin, summed over processes, for all nbins_full bins. With
  // include_beta, the profiled Barlow-Beeston factors are applied (non-masked bins only; in full
  // mode also the model's beta_variations, as rabbit applies them to its reported yields).
  Eigen::VectorXd ExpectedYields(const Eigen::VectorXd& x, bool include_beta) const;
  // Expected yields per (bin, process), [nbins_full x nproc], without beta.
  Eigen::MatrixXd ExpectedYieldsPerProcess(const Eigen::VectorXd& x) const;
  // Profiled betas [num_betas()] (beta0 where there is no MC-stat term; 1 when BB is off).
  Eigen::VectorXd ProfiledBeta(const Eigen::VectorXd& x) const;
  // The Barlow-Beeston effective MC counts [num_betas()] (0 = no beta there).
  const Eigen::VectorXd& bb_kstat() const;
  // Standard deviations of the global observables at x for global impacts ([nbins] and
  // [num_betas()]): of the
  // data (Poisson: sqrt(n); chi-square: sigma) and of beta0 (gamma: sqrt(beta / k);
  // normal-multiplicative: 1 / sqrt(k); normal-additive: 1; 0 where a bin has no beta). For
  // kCovariance the data are correlated: data_factor is a lower-triangular factor F of the data
  // covariance (F F^T = W^-1) and sigma_data is empty; otherwise data_factor is empty.
  void GlobalObservableSigmas(const Eigen::VectorXd& x, Eigen::VectorXd* sigma_data,
                              Eigen::VectorXd* sigma_beta0, Eigen::MatrixXd* data_factor) const;

  // NLL, gradient and Hessian with the Barlow-Beeston factors held at `beta` ([num_betas()]) instead of
  // profiled (the Hessian then lacks the beta-profiling term; used to split off the MC-stat part
  // of the uncertainty).
  double ValueGradientHessianFixedBeta(const Eigen::VectorXd& x, const Eigen::VectorXd& beta,
                                       Eigen::VectorXd* grad, Eigen::MatrixXd* hess) const;

  // Matrix-free second-order information of the profiled NLL (exact; O(non-zero entries) per call,
  // no num_params^2 storage): H v, and the diagonal of H.
  void HessianVectorProduct(const Eigen::VectorXd& x, const Eigen::VectorXd& v,
                            Eigen::VectorXd* hv) const;
  void HessianDiagonal(const Eigen::VectorXd& x, Eigen::VectorXd* diag) const;

  // Mixed second derivatives of the profiled NLL with respect to the parameters and the global
  // observables of the data: d_data(:, b) = d2 NLL / dx dn_b and d_beta0(:, j) = d2 NLL / dx dbeta0_j
  // ([num_params x nbins] and [num_params x num_betas()]; zero columns where there is no beta).
  void GlobalObservableDerivatives(const Eigen::VectorXd& x, Eigen::MatrixXd* d_data,
                                   Eigen::MatrixXd* d_beta0) const;

  // Per fitted bin: the bin's NLL term (saturated Poisson term plus its Barlow-Beeston term at
  // the profiled beta). Sums with the constraint terms to Value(x).
  Eigen::VectorXd BinNll(const Eigen::VectorXd& x) const;
  // Totals per bin [nbins_full] and their Jacobian d total / dx [nbins_full x num_params]; with
  // profile_beta the fitted bins carry the profiled beta and its x-dependence.
  Eigen::MatrixXd TotalYieldJacobian(const Eigen::VectorXd& x, bool profile_beta,
                                     Eigen::VectorXd* totals) const;
  // Per (bin, process) yields [nbins_full x nproc] and their uncertainties sqrt(J C J^T) for the
  // parameter covariance cov (internal coordinates).
  void ProcessYields(const Eigen::VectorXd& x, const Eigen::MatrixXd& cov, bool profile_beta,
                     Eigen::MatrixXd* values, Eigen::MatrixXd* errors) const;

  // The spread of the profiled betas at fixed x in the yields (post-fit yield uncertainties):
  // g^T H_bb^-1 g per (bin, process) yield [nbins_full x nproc] and for the bin totals, with
  // g = d yield / d beta at fixed x (beta variations included) and H_bb the Hessian of the NLL in
  // the betas at fixed x. total_covariance is the totals' [nbins_full x nbins_full] matrix when
  // betas correlate bins (covariance fits, beta variations), else empty (diagonal: total_variance).
  void BetaYieldVariance(const Eigen::VectorXd& x, Eigen::VectorXd* total_variance,
                         Eigen::MatrixXd* total_covariance,
                         Eigen::MatrixXd* process_variance) const;

  // Signal strength from the internal POI coordinate (identity, or x^2 with poi_positive), and
  // its derivative d mu / d x.
  double PoiValue(double x) const;
  double PoiDerivative(double x) const;

  // Implementation detail (engine/src/likelihood_impl.h); not part of the API.
  struct Impl;

 private:
  Likelihood();
  std::unique_ptr<Impl> impl_;
};

}  // namespace lepus::engine
