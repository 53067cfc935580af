// The J/psi muon momentum calibration (`lepus calibrate jpsi`; docs/calibration.md, "J/psi
// calibration: method"): J/psi -> mu mu "data" (the biased detector) and simulation (the nominal
// one) from jpsi.h; the dimuon mass per bin of (eta+, pT+, eta-, pT-); each bin's mass scale
// relative to the simulation; a global least-squares fit of (A, e, M) per eta bin solved with
// Ceres; the result as CalibrationParameters (calibration.h), with the covariance, for the
// producers.
//
// Per bin, the measured scale is s = log(m_data / m_sim) (the data's log-mass distribution is the
// simulation's shifted by s), and the model is
//     s = -1/2 [ log(1 + dk/k(+)) + log(1 + dk/k(-)) ],
//     dk/k(+) = A_i - e_i <1/pT+> + M_i <pT+>,   dk/k(-) = A_j - e_j <1/pT-> - M_j <pT->,
// with i, j the eta bins of the mu+ and mu- and < > the simulation's means in the bin (the
// convention of detector.h: pT_meas = pT_true / (1 + dk/k)); to first order s = -(dk+ + dk-)/2.
// This library links Ceres (lepus::calibration); the rest of lepus::models does not.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lepus/calibration/jpsi.h"
#include "lepus/engine/enum_names.h"
#include "lepus/models/calibration.h"
#include "lepus/models/detector.h"
#include "lepus/models/event_file.h"

namespace lepus::calibration {

using models::CalibrationParameters;
using models::ScaleBias;
using models::ScaleTable;

// Ceres linear solver of the global fit. The normal equations have 3 x (eta bins) unknowns and a
// block structure (a J/psi's muons are close in eta): sparse Cholesky pays for the full 144
// parameters; dense QR is the most robust for small problems.
enum class CalibrationLinearSolver : std::uint8_t {
  kDenseQr,
  kDenseNormalCholesky,
  kSparseNormalCholesky,
};
// "dense_qr", "dense_normal_cholesky", "sparse_normal_cholesky".
inline constexpr engine::EnumName<CalibrationLinearSolver> kCalibrationLinearSolverNames[] = {
    {CalibrationLinearSolver::kDenseQr, "dense_qr"},
    {CalibrationLinearSolver::kDenseNormalCholesky, "dense_normal_cholesky"},
    {CalibrationLinearSolver::kSparseNormalCholesky, "sparse_normal_cholesky"}};
std::string ToString(CalibrationLinearSolver solver);
// Throws std::invalid_argument listing the valid names.
CalibrationLinearSolver CalibrationLinearSolverFromString(const std::string& name);

struct JpsiCalibrationOptions {
  // Eta bins of the calibration (the parameter bins and the mass bins); increasing, within
  // [-2.4, 2.4]. Default: the 48 bins of 0.1 of detector.h.
  std::vector<double> eta_edges = DefaultEtaEdges();
  // Muon pT bins of the mass binning (GeV, increasing; muons outside are not used).
  std::vector<double> pt_edges = {4.0, 5.5, 7.5, 12.0, 60.0};
  // J/psi events generated for the data sample (before acceptance); > 0.
  std::uint64_t num_data_events = 20000000;
  // Simulated events = sim_factor x num_data_events; > 0. The template's statistical
  // fluctuation enters each bin's error.
  double sim_factor = 2.0;
  std::uint64_t seed = 1;  // data use (seed, data key), simulation (seed, simulation key)
  JpsiGeneratorOptions generator;
  DetectorParams data_detector = DetectorParams::DefaultData();  // the hidden truth
  DetectorParams sim_detector = DetectorParams::Simulation();
  // A mass bin is used when both samples have at least this many events in its window; >= 10.
  int min_events_per_bin = 50;
  // Half width of each bin's mass window in units of its robust (MAD) log-mass width; >= 1.
  double window_sigmas = 2.5;
  // Global fit.
  CalibrationLinearSolver linear_solver = CalibrationLinearSolver::kSparseNormalCholesky;
  int max_iterations = 50;               // Ceres iterations; > 0
  double function_tolerance = 1e-12;     // Ceres relative cost change at convergence; > 0
  int num_threads = 0;                   // generation, histogramming and Ceres; 0 = all cores
  std::uint64_t batch_events = 1 << 20;  // events generated per batch (memory bound); > 0
  // Event files (docs/events.md) to read instead of generating: J/psi -> mu mu events with two
  // muons (`lepus generate --process jpsi`). Both empty = generate (num_data_events, sim_factor,
  // seed, the detectors); both non-empty = read (those options are then unused). Each file's
  // attribute "sample" must match its role and its "process" attribute, when present, must be
  // "jpsi"; events without two opposite-charge muons are skipped (counted); weights are ignored
  // (the method uses shapes only).
  std::vector<std::string> data_files;
  std::vector<std::string> sim_files;
  // Resolution: measure the data/simulation curvature-resolution scale per eta bin from the
  // mass widths and fill CalibrationParameters::resolution_uncertainty (see MeasureResolution).
  bool measure_resolution = true;
  // Distributed event loop (`mpirun lepus calibrate jpsi`, docs/scaling.md; the CLI sets these,
  // models knows nothing about MPI): this process is rank `rank` of `ranks`. The batches (the
  // generated ones: data, then simulation, batch_events each; or the files' chunks of
  // batch_events in file order, data files first) are fixed by the input, and batch i belongs to
  // rank i % ranks. A rank other than 0 generates or reads its batches and hands each batch's
  // selected events (DimuonMassHistogram::Selection), as bytes, to send_selection in batch
  // order; rank 0 appends every batch's selection in batch order (its own, or
  // receive_selection(owner) once it has selected its own next batch), exactly as one process
  // adds them, so the calibration is bitwise identical for any number of ranks. Ranks other than
  // 0 return after the event loop, with an empty calibration. Not validated by IsValid.
  int rank = 0, ranks = 1;
  std::function<void(const std::string&)> send_selection;
  std::function<std::string(int owner)> receive_selection;

  // Defaults for tests: 12 eta bins of 0.4, pT bins {4, 6, 60}, 2M data events.
  static JpsiCalibrationOptions Light();
  // The full configuration: the defaults above (48 x 4 pT bins, 2e7 data events).
  static JpsiCalibrationOptions Full();
  static std::vector<double> DefaultEtaEdges();  // 48 bins of 0.1 in [-2.4, 2.4]

  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
};

// One mass bin: (eta bin, pT bin) of the mu+ and the mu-, its measured scale and kinematics.
struct JpsiMassBin {
  int eta_plus = 0, pt_plus = 0, eta_minus = 0, pt_minus = 0;
  std::int64_t n_data = 0, n_sim = 0;  // events in the window
  double scale = 0.0;                  // measured s = log(m_data / m_sim)
  double error = 0.0;                  // its statistical error (data and simulation)
  // Simulation means over the bin: <1/pT> (GeV^-1) and <pT> (GeV) of each muon.
  double inv_pt_plus = 0.0, pt_mean_plus = 0.0, inv_pt_minus = 0.0, pt_mean_minus = 0.0;
  double fitted = 0.0;  // model prediction at the best fit
  // Width: the data's log-mass distribution is the simulation's scaled by sqrt(width_ratio2)
  // about its centre (after the shift); width_ratio2 = var_data / var_sim in matching windows,
  // with its statistical error. res_fraction_plus = the mu+'s share of the simulation's
  // curvature-resolution variance in the bin, <(dk/k)+^2> / (<(dk/k)+^2> + <(dk/k)-^2>), from
  // the generator-level pT (0.5 when the simulation has none).
  double width_ratio2 = 1.0, width_ratio2_error = 0.0;
  double res_fraction_plus = 0.5;
};

enum class CalibrationFitStatus : std::uint8_t {
  kConverged,         // Ceres converged and the covariance is available
  kNotConverged,      // Ceres stopped without convergence (iteration limit, failure)
  kCovarianceFailed,  // converged, but the covariance could not be computed (rank deficient)
};
std::string ToString(CalibrationFitStatus status);  // "converged", "not_converged", ...

struct JpsiCalibrationSummary {
  CalibrationFitStatus status = CalibrationFitStatus::kNotConverged;
  std::string message;                                  // human explanation of the status
  std::string ceres_brief;                              // ceres::Solver::Summary::BriefReport()
  std::string ceres_full;                               // ceres::Solver::Summary::FullReport()
  std::uint64_t data_generated = 0, sim_generated = 0;  // J/psi events generated (or read)
  std::uint64_t data_selected = 0, sim_selected = 0;    // with two muons in the pT bins
  std::uint64_t data_skipped = 0, sim_skipped = 0;      // read, but not two opposite-charge muons
  bool from_files = false;                              // events read from event files
  int bins_total = 0;      // (eta+, pT+, eta-, pT-) bins with any simulated event
  int bins_used = 0;       // passing min_events_per_bin
  int num_parameters = 0;  // 3 x eta bins
  int iterations = -1;     // Ceres iterations
  double initial_cost = -1.0, final_cost = -1.0;  // Ceres cost = chi2 / 2
  double chi2 = -1.0;                             // of the used bins at the best fit
  int ndf = 0;                                    // bins_used - num_parameters
  double generate_seconds = 0.0, scale_fit_seconds = 0.0, global_fit_seconds = 0.0,
         covariance_seconds = 0.0;
  std::vector<JpsiMassBin> bins;  // the used bins
  // Resolution (MeasureResolution; empty when not measured): per eta bin the fitted
  // data/simulation curvature-resolution scale rho = sqrt(1 + eps) and its error (0 +- 0 for
  // a bin without mass bins), and the chi2 of the width fit.
  std::vector<double> resolution_scale, resolution_scale_error;
  double resolution_chi2 = -1.0;
  int resolution_ndf = 0;
  double resolution_seconds = 0.0;

  std::string BriefReport() const;  // one line
  std::string FullReport() const;   // several lines, including the Ceres full report
};

// Progress callback: (stage, done, total), e.g. ("data", 3e6, 2e7); called from the calling
// thread.
using CalibrationProgress =
    std::function<void(const std::string& stage, std::uint64_t done, std::uint64_t total)>;

// The whole calibration: generation, mass scales, global fit. Throws std::invalid_argument for
// invalid options; numerical outcomes are in summary->status. The returned parameters use
// options.eta_edges (their covariance is zero when the covariance failed).
CalibrationParameters CalibrateJpsi(const JpsiCalibrationOptions& options,
                                    JpsiCalibrationSummary* summary,
                                    const CalibrationProgress& progress = {});

// Options of the global (A, e, M) fit, shared by the J/psi calibration and the Z closure.
struct ScaleFitOptions {
  CalibrationLinearSolver linear_solver = CalibrationLinearSolver::kSparseNormalCholesky;
  int max_iterations = 50;            // > 0
  double function_tolerance = 1e-12;  // > 0
  int num_threads = 0;                // 0 = all cores
  // Keep e at 0 (SubsetManifold): for samples whose muons have nearly one pT (Z -> mu mu, pT ~
  // 40 GeV), where e / pT is degenerate with A. Its covariance rows are then 0.
  bool fix_e = false;
};

// The global fit alone, on given mass bins (for tests and for user-made bins): fills
// summary->{status, message, ceres_*, iterations, costs, chi2, ndf, timings, bins (with
// `fitted`)}. eta_edges defines the parameter bins (eta_plus/eta_minus index them).
CalibrationParameters FitScaleParameters(const std::vector<JpsiMassBin>& bins,
                                         const std::vector<double>& eta_edges,
                                         const ScaleFitOptions& options,
                                         JpsiCalibrationSummary* summary);
// The same with the fit options of a J/psi configuration.
CalibrationParameters FitScaleParameters(const std::vector<JpsiMassBin>& bins,
                                         const std::vector<double>& eta_edges,
                                         const JpsiCalibrationOptions& options,
                                         JpsiCalibrationSummary* summary);

// ---- The dimuon mass-scale measurement shared by the J/psi calibration and the Z closure.

// Dimuon events of one sample binned in (eta+, pT+, eta-, pT-): per event the bin and
// log(m / reference_mass) (8 bytes); for the simulation also the per-bin kinematic means and the
// generator-level curvature resolution of each muon. Events are added in order; the result
// depends only on the sequence of events (not on batch sizes).
class DimuonMassHistogram {
 public:
  // eta_edges, pt_edges: increasing (validated by the callers' options); simulation = keep the
  // kinematic sums.
  DimuonMassHistogram(std::vector<double> eta_edges, std::vector<double> pt_edges,
                      double reference_mass, bool simulation);

  // Adds every event of the batch with two opposite-charge muons in the bins; the muon pT are
  // first corrected with correction->CorrectPt when correction is non-null (data). Returns the
  // number of events added; events without two opposite-charge muons are counted in skipped().
  std::uint64_t Add(const EventBatch& batch, const CalibrationParameters* correction = nullptr);

  // What Add keeps of a batch: the selected events' bins and log masses and, for the simulation
  // sums, their (corrected) muon pT and generator-level pT; and the skipped count. Append(
  // Select(b, c)) adds exactly what Add(b, c) adds, in the same order, so a batch selected in
  // another process (an MPI rank) gives the same histogram bit for bit.
  struct Selection {
    std::vector<std::uint32_t> bin;
    std::vector<float> log_mass;
    std::vector<double> pt_plus, pt_minus, gen_pt_plus, gen_pt_minus;  // simulation only
    std::uint64_t skipped = 0;
    std::string Bytes() const;
    // Throws std::runtime_error when the bytes are not those of a Selection.
    static Selection FromBytes(const std::string& bytes);
  };
  Selection Select(const EventBatch& batch,
                   const CalibrationParameters* correction = nullptr) const;
  void Append(const Selection& selection);

  std::uint64_t selected() const noexcept { return bin_.size(); }
  std::uint64_t skipped() const noexcept { return skipped_; }
  int num_bins() const noexcept { return num_bins_; }
  int PopulatedBins() const;  // bins with at least one event

  struct Kinematics {  // simulation sums per bin
    double inv_pt_plus = 0, pt_plus = 0, inv_pt_minus = 0, pt_minus = 0;
    double res2_plus = 0, res2_minus = 0;  // sums of (gen_pt / pt - 1)^2 (finite gen_pt only)
    std::int64_t n = 0, n_res = 0;
  };

 private:
  friend std::vector<JpsiMassBin> MeasureMassScales(const DimuonMassHistogram&,
                                                    const DimuonMassHistogram&, int, double, int);
  std::vector<double> eta_edges_, pt_edges_;
  double reference_mass_;
  bool simulation_;
  int neta_, npt_, num_bins_;
  std::vector<std::uint32_t> bin_;
  std::vector<float> log_mass_;
  std::vector<Kinematics> kin_;
  std::uint64_t skipped_ = 0;
};

// Per bin with at least min_events in both samples' windows: the scale s = log(m_data / m_sim)
// and the width ratio (docs/calibration.md, "Scale of each bin" and "Resolution"), in parallel
// over bins with num_threads (0 = all cores; the result does not depend on it). data and sim
// must have the same binning.
std::vector<JpsiMassBin> MeasureMassScales(const DimuonMassHistogram& data,
                                           const DimuonMassHistogram& sim, int min_events,
                                           double window_sigmas, int num_threads);

// The curvature-resolution scale per eta bin from the bins' width ratios: a linear weighted
// least-squares fit of width_ratio2 - 1 = f+ eps_i + (1 - f+) eps_j (f+ = res_fraction_plus,
// eps = rho^2 - 1 the relative change of the curvature-resolution variance of an eta bin), solved
// exactly with Eigen (a linear problem with one parameter per eta bin). Fills
// summary->resolution_*; returns per eta bin the resolution uncertainty assigned to the
// calibration, max(|rho - 1|, sigma_rho) (0 for a bin without mass bins).
std::vector<double> MeasureResolution(const std::vector<JpsiMassBin>& bins, int num_eta_bins,
                                      JpsiCalibrationSummary* summary);

// Checks an event file given in a role (data or simulation) of a dimuon measurement: attribute
// "sample" must match the role and "process", when present, must be `process` ("jpsi",
// "zmumu"). Throws io::InputError "<file>: ..." naming the attribute, its value and the flag
// (`flag`, e.g. "--data-events") the file was given with.
void CheckDimuonEventFile(const EventFileInfo& info, SampleKind role, const std::string& process,
                          const std::string& flag);

// The model prediction of one bin's scale for parameters (A, e, M) of the two eta bins.
double PredictedScale(const JpsiMassBin& bin, const ScaleBias& plus, const ScaleBias& minus);

// The truth of a detector's scale bias averaged onto coarser eta bins: per bin the mean of the
// 48 fine bins whose centres lie inside (what a calibration in those bins should recover when
// the truth is constant within them; an approximation otherwise).
std::vector<ScaleBias> TruthOnBins(const ScaleTable& truth, const std::vector<double>& eta_edges);

}  // namespace lepus::calibration
