// lepus::engine::Model — the in-memory binned model: a (bin, process, systematic) tensor plus
// data, constraints and metadata. Pure data: built by io::ReadFitInput, io::TensorWriter-free
// user code (see examples/embed), or tests. Conventions follow
// docs/likelihood.md and docs/format.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <Eigen/SparseCore>

namespace lepus::engine {

// How a systematic enters the expected yield. Model-wide, as in rabbit.
//   kLogNormal: lambda = r * norm * exp(sum_s e_s(theta_s))
//   kNormal:    lambda = r * norm + sum_s e_s(theta_s)
// with e_s(theta) = theta * (logk_avg + alpha(theta) * logk_halfdiff) (halfdiff = 0 if symmetric).
enum class SystematicType { kLogNormal, kNormal };
std::string ToString(SystematicType type);
// Accepts "log_normal"/"lognormal" and "normal"; throws std::invalid_argument otherwise.
SystematicType SystematicTypeFromString(const std::string& text);

// How one tensor entry (systematic s on a (bin, process) row) enters that row's yield. Rows whose
// entries are all kModel follow the model-wide SystematicType (rabbit); any other kind makes the
// row "general": lambda = (r_N * norm + sum_additive delta_i(theta)) * exp(sum_exponent e_i(theta))
// * prod_factor theta_i (with the POI r as a factor of the whole row for kLogNormal models, of the
// nominal only for kNormal). docs/histfactory.md gives every formula; engine/src/row_kernel.h
// implements them, with exact first and second derivatives.
//   kModel          rabbit: exponent (kLogNormal) or additive (kNormal) theta * (logk_avg +
//                   alpha(theta) * logk_halfdiff)
//   kNormsysCode1   exponent, HistFactory normsys interpolation code 1: factor up^theta (theta >= 0),
//                   down^-theta (theta < 0); entry_up / entry_down are the factors (> 0)
//   kNormsysCode4   exponent, code 4: the code-1 factor for |theta| >= 1, a degree-6 polynomial
//                   matching value, slope and curvature at +-1 inside (pyhf's definition)
//   kHistosysCode0  additive, code 0: theta * up (theta >= 0), -theta * down (theta < 0), where
//                   entry_up = hi - nominal and entry_down = lo - nominal
//   kHistosysCode4p additive, code 4p: code 0 for |theta| > 1, a polynomial in |theta| <= 1
//   kFactor         linear factor: the row's yield is multiplied by theta (normfactor, lumi,
//                   staterror / shapesys / shapefactor gammas)
enum class EntryKind : std::uint8_t {
  kModel = 0,
  kNormsysCode1,
  kNormsysCode4,
  kHistosysCode0,
  kHistosysCode4p,
  kFactor,
};
std::string ToString(EntryKind kind);

// How a systematic is constrained (Model::constraint_kinds).
//   kGaussian: cw (theta - theta0)^2 / 2 with cw = constraint_weights[s] (0: free)
//   kPoisson:  tau (theta - theta0) - tau theta0 ln(theta / theta0), tau = constraint_weights[s]:
//              the saturated -ln Poisson(tau theta0 | tau theta) of HistFactory's shapesys (zero
//              at theta = theta0; the auxiliary count is tau theta0)
enum class ConstraintKind : std::uint8_t { kGaussian = 0, kPoisson };
std::string ToString(ConstraintKind kind);

// Where the tensor came from (informational; the engine always uses the row layout below).
enum class StorageKind { kDense, kSparse };
std::string ToString(StorageKind kind);

struct Axis {
  std::string name;
  std::vector<double> edges;  // nbins + 1, strictly increasing; empty = integer bins
  // Empty, or one label per bin (then edges are set): the categories of a category axis, or
  // the description of each bin of an axis with under/overflow bins (docs/format.md).
  std::vector<std::string> labels = {};
};

struct Channel {
  std::string name;
  std::vector<Axis> axes;  // row-major unrolling, first axis slowest
  std::int64_t nbins = 0;  // product of the axes' bin counts (or given directly)
  bool masked = false;     // masked: yields computed, excluded from the NLL
};

struct SystematicGroup {
  std::string name;
  std::vector<int> members;  // indices into Model::systematics
};

// The tensor in compressed-row form. A "row" is one (bin, process) pair with a non-zero nominal
// yield (or, for kNormal, any non-zero entry); rows are sorted by bin, then process. Row r has
// systematic entries [row_start[r], row_start[r+1]) with column syst[i].
struct Tensor {
  std::vector<std::int32_t> row_bin;    // [nrows], in [0, nbins_full)
  std::vector<std::int32_t> row_proc;   // [nrows], in [0, nproc)
  std::vector<double> norm;             // [nrows] nominal yield
  std::vector<std::int64_t> row_start;  // [nrows + 1]
  std::vector<std::int32_t> syst;       // [nnz] systematic column, increasing within a row
  std::vector<double> logk_avg;         // [nnz] symmetric logk (or the avg plane)
  std::vector<double> logk_halfdiff;    // [nnz] halfdiff plane, empty if the model is symmetric
  // Per-entry kinds [nnz], or empty (every entry kModel). With kinds, entry_up / entry_down [nnz]
  // hold the kinds' two numbers (see EntryKind; 0 for kModel and kFactor), and a row may list a
  // column more than once with different kinds (HistFactory's normsys + histosys of one
  // parameter on one sample); columns are then non-decreasing within a row.
  std::vector<EntryKind> entry_kind;
  std::vector<double> entry_up, entry_down;

  std::int64_t num_rows() const { return static_cast<std::int64_t>(norm.size()); }
  std::int64_t num_entries() const { return static_cast<std::int64_t>(syst.size()); }

  // Builds the row layout from dense arrays. norm is [nbins_full x nproc] row-major;
  // logk_avg / logk_halfdiff are [nbins_full x nproc x nsyst] row-major (halfdiff may be empty).
  // Zero logk entries are dropped; rows with zero norm and no non-zero logk are dropped.
  static Tensor FromDense(std::int64_t nbins_full, int nproc, int nsyst,
                          const std::vector<double>& norm, const std::vector<double>& logk_avg,
                          const std::vector<double>& logk_halfdiff);
};

// An additive term of the negative log-likelihood on named parameters (an external measurement or
// prior, rabbit's `external_terms`): g^T x_sub + 1/2 x_sub^T H x_sub, where x_sub = x[params] in the
// internal coordinates of the fit (with poi_positive a POI coordinate is sqrt(mu)). The Hessian
// is used symmetrised, (H + H^T) / 2, which leaves the term's value unchanged.
struct ExternalTerm {
  std::string name;
  std::vector<int> params;           // indices into [POIs; systematics], distinct
  Eigen::VectorXd grad;              // [params.size()] or empty (no linear part)
  Eigen::SparseMatrix<double> hess;  // [n x n] or 0 x 0 (no quadratic part)
};

struct Model {
  // Processes, signals first. Each signal process gets one signal strength (POI).
  std::vector<std::string> processes;
  int num_signals = 0;  // processes[0 .. num_signals) are signals

  std::vector<std::string> systematics;
  std::vector<double> constraint_weights;  // [nsyst]: 1 Gaussian(width 1), 1/sigma^2, 0 free
  std::vector<int> noi_indices;            // indices into systematics: nuisances of interest
  // Physical scale of each systematic (value of 1 theta in physical units, e.g. 100 for a mass
  // shift of 100 MeV) and its unit; 0 / "" when not set. [nsyst] or empty.
  std::vector<double> systematic_scales;
  std::vector<std::string> systematic_units;
  std::vector<SystematicGroup> groups;

  SystematicType systematic_type = SystematicType::kLogNormal;
  bool asymmetric = false;  // true when tensor.logk_halfdiff is filled
  StorageKind storage = StorageKind::kDense;

  std::vector<Channel> channels;  // non-masked first, then masked (bins concatenated in order)
  std::int64_t nbins = 0;         // fitted (non-masked) bins
  std::int64_t nbins_full = 0;    // all bins

  Eigen::VectorXd data_obs;  // [nbins]
  Eigen::VectorXd data_var;  // [nbins] or empty: variance of weighted data (chi-square fits)
  Eigen::MatrixXd
      data_cov_inv;  // [nbins x nbins] or empty: inverse data covariance (covariance fits)
  Eigen::MatrixXd pseudodata;  // [nbins x npseudo]
  std::vector<std::string> pseudodata_names;

  Eigen::MatrixXd sumw;   // [nbins_full x nproc] or empty (then norm is used)
  Eigen::MatrixXd sumw2;  // [nbins_full x nproc] MC variance of norm (zeros: no MC stat)

  Tensor tensor;

  std::vector<ExternalTerm> external_terms;  // added to the NLL (likelihood.h)

  // Per-systematic settings beyond rabbit's model (HistFactory workspaces); each is [nsyst] or
  // empty (the default in brackets).
  std::vector<ConstraintKind> constraint_kinds;    // [kGaussian]
  std::vector<double> global_observables;          // constraint centres theta0 [0]
  std::vector<double> initial_values;              // fit starting point [theta0]
  std::vector<double> lower_bounds, upper_bounds;  // [-inf, +inf]; Fit keeps theta inside
  std::vector<char> fixed;                         // held at the initial value by Fit [0]

  // rabbit's hbetavariations, per process [nbins_full x nbins] (empty: none): in Barlow-Beeston
  // full mode the reported yield of (bin i, process p) becomes
  // lambda_ip (1 + sum_j V_p(i, j) sqrt(k_jp) (beta_jp - 1) / norm_ip) where norm_ip > 0 (the
  // nominal yield); V_p(i, j) is the change of bin i per unit pull of beta_jp. Only yields are
  // affected (not the NLL), as in rabbit.
  std::vector<Eigen::MatrixXd> beta_variations;

  int num_processes() const { return static_cast<int>(processes.size()); }
  int num_systematics() const { return static_cast<int>(systematics.size()); }
  int num_pois() const { return num_signals; }
  int num_params() const { return num_signals + num_systematics(); }

  // Checks every invariant (sizes, index ranges, sorted rows, finite values, positive nominal
  // where log-normal logk is non-zero, ...). Returns false and writes a message of the form
  // "<field>[<index>] is <value>, but must be <constraint>" on the first violation.
  bool IsValid(std::string* error) const;

  // Nominal yields as a dense [nbins_full x nproc] matrix (for reports and post-fit).
  Eigen::MatrixXd DenseNorm() const;
};

}  // namespace lepus::engine
