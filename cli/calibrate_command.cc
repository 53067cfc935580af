// `lepus calibrate jpsi`: the J/psi muon momentum calibration (models/jpsi_calibration.h,
// docs/calibration.md): generates J/psi -> mu mu "data" with a hidden biased detector and the
// nominal simulation, measures the mass scale per (eta+, pT+, eta-, pT-) bin, fits (A, e, M) per
// eta bin with Ceres and writes the calibration file the producers read (--calibration of
// `lepus produce`). Progress and the summary (Ceres report, per-eta-bin parameters vs the hidden
// truth) on stderr; the file to -o ("-" = stdout). Exit code 2 when the fit did not converge or
// the covariance failed (the file is still written). `--events` / `--data-events` read J/psi
// event files (`lepus generate --process jpsi`) instead of generating.
//
// `lepus calibrate zclosure`: the Z -> mu mu closure of a calibration file (models/zclosure.h):
// Z data corrected with it against the simulation, the residual (A, M) per eta bin with the Z
// and calibration uncertainties, chi2 and p-value against zero; writes the calibration with its
// `closure` uncertainties filled.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <Eigen/Dense>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "lepus/calibration/jpsi_calibration.h"
#include "lepus/calibration/zclosure.h"
#include "lepus/io/output.h"
#include "lepus/models/calibration.h"
#include "mpi.h"

namespace lepus::cli {
namespace {

struct CalibrateArgs {
  std::int64_t num_events = -1;  // -1: the configuration's default
  std::uint64_t seed = 1;
  bool light = false;
  bool full = false;
  int eta_bins = 0;              // 0: the configuration's
  std::vector<double> pt_edges;  // empty: the configuration's
  double sim_factor = NAN;       // NaN: the configuration's
  int min_events = -1;           // -1: the configuration's
  std::string solver;            // "": the configuration's
  std::string truth = "binned";  // binned, biased, nominal
  int threads = 0;
  std::string output;
  bool quiet = false;
  std::vector<std::string> sim_files, data_files;  // event files instead of generation
  bool truth_given = false;                        // --truth on the command line
  std::string calibration;                         // zclosure: the calibration to test
  double lep_mev = 2.1;                            // zclosure: global closure term
  std::int64_t batch_events = 0;                   // jpsi: 0 = the configuration's
};

// The files a calibration command reads (an output may not be one of them).
std::vector<std::string> InputsOf(const CalibrateArgs& a) {
  std::vector<std::string> files = a.sim_files;
  files.insert(files.end(), a.data_files.begin(), a.data_files.end());
  if (!a.calibration.empty()) files.push_back(a.calibration);
  return files;
}

// "calibrate: data 12.0M/20.0M J/psi (60%)" on stderr: in place on a terminal, else per tenth.
class StageProgress {
 public:
  StageProgress() : tty_(::isatty(STDERR_FILENO) == 1), start_(Clock::now()) {}
  void Update(const std::string& stage, std::uint64_t done, std::uint64_t total) {
    const int tenth = total > 0 ? static_cast<int>(10 * done / total) : 10;
    if (!tty_ && stage == stage_ && tenth == tenth_) return;
    stage_ = stage;
    tenth_ = tenth;
    const double t = std::chrono::duration<double>(Clock::now() - start_).count();
    char buf[160];
    std::snprintf(buf, sizeof(buf), "calibrate: %s %.2fM/%.2fM events (%d%%), %.1f s",
                  stage.c_str(), done / 1e6, total / 1e6,
                  total > 0 ? static_cast<int>(100 * done / total) : 100, t);
    std::cerr << (tty_ ? "\r" : "") << buf << (tty_ ? "\033[K" : "\n") << std::flush;
    drawn_ = true;
  }
  void Finish() {
    if (tty_ && drawn_) std::cerr << "\n";
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool tty_;
  Clock::time_point start_;
  std::string stage_;
  int tenth_ = -1;
  bool drawn_ = false;
};

// The hidden data bias of --truth on the calibration's eta bins: "nominal" none, "biased" the
// smooth default, "binned" the default averaged onto the bins (constant within each, so the
// calibration can recover it exactly; identical to "biased" for 48 bins).
void ApplyTruth(const std::string& truth, const std::vector<double>& eta_edges,
                models::DetectorParams* detector) {
  if (truth == "nominal") {
    detector->scale_bias = models::ScaleTable{};
  } else if (truth == "binned") {
    const std::vector<models::ScaleBias> coarse =
        calibration::TruthOnBins(models::DetectorParams::DefaultData().scale_bias, eta_edges);
    for (int f = 0; f < models::kScaleEtaBins; ++f) {
      const double c = models::ScaleEtaBinCenter(f);
      for (std::size_t b = 0; b + 1 < eta_edges.size(); ++b)
        if (c >= eta_edges[b] && c < eta_edges[b + 1]) detector->scale_bias[f] = coarse[b];
    }
  } else {
    detector->scale_bias = models::DetectorParams::DefaultData().scale_bias;
  }
}

void CheckFiles(const CalibrateArgs& a) {
  if (a.sim_files.empty() != a.data_files.empty())
    throw std::invalid_argument(std::string(a.sim_files.empty() ? "--data-events" : "--events") +
                                " needs " + (a.sim_files.empty() ? "--events" : "--data-events") +
                                " too (read both samples from files or generate both)");
  if (!a.sim_files.empty() && a.num_events != -1)
    throw std::invalid_argument("--generate excludes --events/--data-events (the events are read)");
}

// Prefixes the flag behind an option's field name in an IsValid message.
std::string NameFlag(std::string error) {
  const std::pair<const char*, const char*> flags[] = {{"pt_edges", "--pt-edges"},
                                                       {"num_data_events", "--generate"},
                                                       {"sim_factor", "--sim-factor"},
                                                       {"min_events_per_bin", "--min-events"},
                                                       {"num_threads", "--threads"}};
  for (const auto& [field, flag] : flags)
    if (error.rfind(field, 0) == 0) error = std::string(flag) + ": " + error;
  return error;
}

calibration::JpsiCalibrationOptions MakeOptions(const CalibrateArgs& a) {
  calibration::JpsiCalibrationOptions o = a.light ? calibration::JpsiCalibrationOptions::Light()
                                                  : calibration::JpsiCalibrationOptions::Full();
  if (a.num_events == 0 || a.num_events < -1)
    throw std::invalid_argument("--generate is " + std::to_string(a.num_events) +
                                ", but must be > 0");
  CheckFiles(a);
  o.sim_files = a.sim_files;
  o.data_files = a.data_files;
  if (a.num_events > 0) o.num_data_events = static_cast<std::uint64_t>(a.num_events);
  o.seed = a.seed;
  if (a.eta_bins > 0) {
    if (48 % a.eta_bins != 0)
      throw std::invalid_argument("--eta-bins is " + std::to_string(a.eta_bins) +
                                  ", but must divide 48 (bins aligned with the detector's)");
    o.eta_edges.clear();
    for (int i = 0; i <= a.eta_bins; ++i)
      o.eta_edges.push_back(std::round((-2.4 + 4.8 * i / a.eta_bins) * 1e12) / 1e12);
  }
  if (!a.pt_edges.empty()) o.pt_edges = a.pt_edges;
  if (!std::isnan(a.sim_factor)) o.sim_factor = a.sim_factor;
  if (a.min_events != -1) o.min_events_per_bin = a.min_events;
  if (!a.solver.empty()) o.linear_solver = calibration::CalibrationLinearSolverFromString(a.solver);
  o.num_threads = a.threads;
  if (a.batch_events > 0) o.batch_events = static_cast<std::uint64_t>(a.batch_events);
  ApplyTruth(a.truth, o.eta_edges, &o.data_detector);
  std::string error;
  if (!o.IsValid(&error)) throw std::invalid_argument(NameFlag(error));
  return o;
}

// A failed fit is written for inspection with its "status" (schema version 3), which every
// consumer refuses (CalibrationParameters::IsUsable); say so next to the exit code 2.
void ReportFailedStatus(const models::CalibrationParameters& c, const std::string& output) {
  if (c.status == "converged") return;
  std::cerr << "calibrate: the calibration fit failed (" << c.status_message
            << "): " << (output == "-" ? "the output" : output) << " is marked \"status\": \""
            << c.status << "\" and `lepus produce` and `lepus calibrate zclosure` refuse it\n";
}
int RunCalibrate(const CalibrateArgs& a, const std::string& command_line) {
  calibration::JpsiCalibrationOptions o = MakeOptions(a);
  io::CheckOutputs({{"-o", a.output}}, InputsOf(a));
  const int neta = static_cast<int>(o.eta_edges.size()) - 1;
  const int npt = static_cast<int>(o.pt_edges.size()) - 1;
  const bool files = !o.data_files.empty();
  // The hidden truth is known when generating; with files only if --truth says what it was.
  const bool compare_truth = !files || a.truth_given;
  std::cerr << "calibrate: J/psi, " << (a.light ? "light" : "full") << " configuration: " << neta
            << " eta x " << npt << " pT bins (" << neta * neta * npt * npt << " mass bins, "
            << 3 * neta << " parameters), ";
  if (files)
    std::cerr << o.data_files.size() << " data and " << o.sim_files.size()
              << " simulation event file(s)";
  else
    std::cerr << o.num_data_events << " data + "
              << static_cast<std::uint64_t>(o.sim_factor * o.num_data_events)
              << " simulated J/psi, seed " << o.seed;
  if (compare_truth) std::cerr << ", data truth " << a.truth;
  std::cerr << ", solver " << calibration::ToString(o.linear_solver) << "\n";

  // Under mpirun (docs/scaling.md): batch i on rank i % N; rank 0 appends every batch's
  // selected events in batch order (the calibration is that of one process), fits and writes.
  mpi::CountedReceiver receiver;
  if (mpi::Size() > 1) {
    o.rank = mpi::Rank();
    o.ranks = mpi::Size();
    o.send_selection = [](const std::string& bytes) { mpi::SendToRoot(bytes); };
    o.receive_selection = [&receiver](int owner) { return receiver(owner); };
    std::cerr << "calibrate: " << mpi::Size() << " MPI ranks, batches of " << o.batch_events
              << " events round robin\n";
  }

  StageProgress progress;
  calibration::JpsiCalibrationSummary s;
  const auto t0 = std::chrono::steady_clock::now();
  models::CalibrationParameters c = calibration::CalibrateJpsi(
      o, &s,
      a.quiet ? calibration::CalibrationProgress{}
              : [&progress](const std::string& stage, std::uint64_t d, std::uint64_t t) {
                  progress.Update(stage, d, t);
                });
  progress.Finish();
  if (!mpi::Root()) {
    mpi::FlushSends();
    return kExitOk;  // rank 0 fits and writes
  }
  if (mpi::Size() > 1) std::cerr << "calibrate: " << receiver.Summary("batch selections") << "\n";
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  c.description += " (" + command_line + ")";

  // Summary.
  std::ostringstream os;
  os << s.FullReport();
  os << "  throughput: "
     << (s.data_generated + s.sim_generated) / std::max(s.generate_seconds, 1e-9) / 1e6
     << "M J/psi/s " << (files ? "read" : "generated") << " and binned; total " << seconds
     << " s\n";
  const std::vector<models::ScaleBias> truth =
      calibration::TruthOnBins(o.data_detector.scale_bias, o.eta_edges);
  char line[256];
  std::snprintf(line, sizeof(line), "%4s %13s %22s %8s %22s %8s %22s %8s %15s\n", "bin", "eta", "A",
                "truth", "e [GeV]", "truth", "M [1/GeV]", "truth", "resolution");
  os << line;
  Eigen::VectorXd d(3 * neta);
  for (int b = 0; b < neta; ++b) {
    const models::ScaleBias& p = c.params[b];
    char v[3][40];
    const double val[3] = {p.A, p.e, p.M};
    for (int k = 0; k < 3; ++k)
      std::snprintf(v[k], sizeof(v[k]), "%9.2e +- %8.1e", val[k], c.Uncertainty(b, k));
    char res[40] = "-";
    if (!s.resolution_scale.empty())
      std::snprintf(res, sizeof(res), "%.3f +- %.3f", s.resolution_scale[b],
                    s.resolution_scale_error[b]);
    if (compare_truth)
      std::snprintf(line, sizeof(line), "%4d [%5.2f,%5.2f] %22s %8.1e %22s %8.1e %22s %8.1e %15s\n",
                    b, o.eta_edges[b], o.eta_edges[b + 1], v[0], truth[b].A, v[1], truth[b].e, v[2],
                    truth[b].M, res);
    else
      std::snprintf(line, sizeof(line), "%4d [%5.2f,%5.2f] %22s %8s %22s %8s %22s %8s %15s\n", b,
                    o.eta_edges[b], o.eta_edges[b + 1], v[0], "?", v[1], "?", v[2], "?", res);
    os << line;
    d[3 * b] = p.A - truth[b].A;
    d[3 * b + 1] = p.e - truth[b].e;
    d[3 * b + 2] = p.M - truth[b].M;
  }
  if (!s.resolution_scale.empty())
    os << "  resolution: data/simulation curvature-resolution scale per eta bin (last column); "
          "resolution_uncertainty = max(|rho - 1|, sigma_rho)\n";
  if (s.status == calibration::CalibrationFitStatus::kConverged && compare_truth) {
    const Eigen::LDLT<Eigen::MatrixXd> ldlt(c.covariance);
    if (ldlt.info() == Eigen::Success) {
      os << "  fitted - truth: chi2 = " << d.dot(ldlt.solve(d)) << " for " << 3 * neta
         << " parameters (full covariance)";
      if (a.truth == "biased" && neta != models::kScaleEtaBins)
        os << "; the truth varies within the coarse bins: only approximate";
      os << "\n";
    } else {
      os << "  fitted - truth: chi2 not computed: the covariance is not positive semi-definite "
            "(LDLT failed)\n";
    }
  }
  std::cerr << os.str();

  if (a.output == "-")
    std::cout << models::CalibrationToJson(c) << std::flush;
  else
    models::WriteCalibration(a.output, c);
  std::cerr << "calibrate: wrote " << (a.output == "-" ? "stdout" : a.output) << "\n";
  ReportFailedStatus(c, a.output);
  return s.status == calibration::CalibrationFitStatus::kConverged ? kExitOk : kExitFitFailed;
}

int RunZClosureCommand(const CalibrateArgs& a, const std::string& command_line) {
  if (mpi::Size() > 1)
    throw std::invalid_argument(
        "'calibrate zclosure' does not run on several MPI ranks (this job "
        "has " +
        std::to_string(mpi::Size()) +
        "); run it without mpirun "
        "or with -np 1 ('calibrate jpsi' is distributed)");
  calibration::ZClosureOptions o =
      a.light ? calibration::ZClosureOptions::Light() : calibration::ZClosureOptions{};
  if (a.num_events == 0 || a.num_events < -1)
    throw std::invalid_argument("--generate is " + std::to_string(a.num_events) +
                                ", but must be > 0");
  CheckFiles(a);
  const models::CalibrationParameters calibration = models::ReadCalibration(a.calibration);
  o.sim_files = a.sim_files;
  o.data_files = a.data_files;
  if (a.num_events > 0) o.num_data_events = static_cast<std::uint64_t>(a.num_events);
  o.seed = a.seed;
  if (!a.pt_edges.empty()) o.pt_edges = a.pt_edges;
  if (!std::isnan(a.sim_factor)) o.sim_factor = a.sim_factor;
  if (a.min_events != -1) o.min_events_per_bin = a.min_events;
  if (!a.solver.empty())
    o.fit.linear_solver = calibration::CalibrationLinearSolverFromString(a.solver);
  o.num_threads = a.threads;
  o.lep_mass_uncertainty_mev = a.lep_mev;
  ApplyTruth(a.truth, calibration.eta_edges, &o.data_detector);
  std::string error;
  if (!o.IsValid(&error)) throw std::invalid_argument(NameFlag(error));
  io::CheckOutputs({{"-o", a.output}}, InputsOf(a));
  const bool files = !o.data_files.empty();
  std::cerr << "calibrate: Z -> mu mu closure of " << a.calibration << " ("
            << calibration.num_bins() << " eta bins), ";
  if (files)
    std::cerr << o.data_files.size() << " data and " << o.sim_files.size()
              << " simulation event file(s)";
  else
    std::cerr << o.num_data_events << " data (expected) + "
              << static_cast<std::uint64_t>(o.sim_factor * o.num_data_events)
              << " simulated Z, seeds " << o.seed << " / " << o.seed + 1 << ", data truth "
              << a.truth;
  std::cerr << ", solver " << calibration::ToString(o.fit.linear_solver) << ", e fixed\n";

  StageProgress progress;
  calibration::ZClosureSummary s;
  const auto t0 = std::chrono::steady_clock::now();
  models::CalibrationParameters c = calibration::RunZClosure(
      calibration, o, &s,
      a.quiet ? calibration::CalibrationProgress{}
              : [&progress](const std::string& stage, std::uint64_t d, std::uint64_t t) {
                  progress.Update(stage, d, t);
                });
  progress.Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  c.description += " (" + command_line + ")";
  std::ostringstream os;
  os << s.FullReport(calibration.eta_edges);
  os << "  total " << seconds << " s\n";
  if (s.p_value_total >= 0.0)
    os << "  closure: the residuals are " << (s.p_value_total > 0.01 ? "" : "NOT ")
       << "consistent with zero (p = " << s.p_value_total
       << " with the Z and calibration uncertainties); closure uncertainty per bin = sign(r) "
          "max(sigma_Z, sqrt(r^2 - sigma_cal^2)) for A and M\n";
  if (c.closure.HasGlobal())
    os << "  global closure term: A = " << c.closure.global.A << " (" << o.lep_mass_uncertainty_mev
       << " MeV on m_Z; one coherent nuisance, muonScaleClosureGlobal)\n";
  std::cerr << os.str();
  if (a.output == "-")
    std::cout << models::CalibrationToJson(c) << std::flush;
  else
    models::WriteCalibration(a.output, c);
  std::cerr << "calibrate: wrote " << (a.output == "-" ? "stdout" : a.output) << "\n";
  ReportFailedStatus(c, a.output);
  return s.fit.status == calibration::CalibrationFitStatus::kConverged ? kExitOk : kExitFitFailed;
}

// Options shared by `calibrate jpsi` and `calibrate zclosure`.
void AddSampleOptions(CLI::App* sub, const std::shared_ptr<CalibrateArgs>& a,
                      const std::string& what, const std::string& generate_help) {
  // At most 1e12 data events: generating them takes days already (a few million events/s).
  sub->add_option("-n,--generate", a->num_events, generate_help + " (at most 1e12)")
      ->type_name("N")
      ->transform(IntegerArg(1, 1000000000000));
  sub->add_option("--events", a->sim_files,
                  "simulated " + what +
                      " event files to read instead of generating (with "
                      "--data-events)")
      ->type_name("FILE...");
  sub->add_option("--data-events", a->data_files,
                  "data " + what + " event files to read instead of generating (with --events)")
      ->type_name("FILE...");
  sub->add_option("--seed", a->seed,
                  "random seed, 0 to 2^64 - 1 (data and simulation use independent streams)")
      ->type_name("S")
      ->capture_default_str()
      ->transform(SeedArg());
  sub->add_option("--pt-edges", a->pt_edges, "muon pT bin edges in GeV")
      ->type_name("GEV...")
      ->delimiter(',')
      ->check(NumberArg(0.0, 1e4));
  sub->add_option("--sim-factor", a->sim_factor, "simulated / data events (default 2, at most 100)")
      ->type_name("X")
      ->check(NumberArg(0.0, 100.0, true));
  sub->add_option("--min-events", a->min_events,
                  "events (data and simulation) a mass bin needs to be used (default 50)")
      ->type_name("N")
      ->transform(IntegerArg(10, std::numeric_limits<int>::max()));
  sub->add_option("--threads", a->threads, "worker threads (0 = all cores)")
      ->transform(IntegerArg(0, 4096))
      ->capture_default_str();
  sub->add_flag("-q,--quiet", a->quiet, "no progress lines");
  sub->add_option("-o,--output", a->output, "calibration file (JSON; - = stdout)")
      ->required()
      ->type_name("FILE");
}

}  // namespace

Command AddCalibrateCommand(CLI::App& parent, const std::string& command_line) {
  auto a = std::make_shared<CalibrateArgs>();
  CLI::App* cal = parent.add_subcommand("calibrate", "muon momentum calibration");
  cal->require_subcommand(1);
  CLI::App* sub = cal->add_subcommand(
      "jpsi",
      "J/psi -> mu mu calibration of (A, e, M) per eta bin with Ceres; writes the calibration "
      "file of docs/calibration.md");
  AddSampleOptions(
      sub, a, "J/psi",
      "data J/psi generated (simulation: x --sim-factor); default 2e6 light, 2e7 full");
  auto* light = sub->add_flag("--light", a->light, "light configuration: 12 eta x 2 pT bins");
  auto* full = sub->add_flag("--full", a->full,
                             "full configuration: 48 eta x 4 pT bins, 144 parameters (default)");
  light->excludes(full);
  sub->add_option("--batch-events", a->batch_events,
                  "events generated or read per batch (the unit of work of the threads and of "
                  "the MPI ranks; memory grows with it; default 1048576); the result does not "
                  "depend on it")
      ->type_name("N")
      ->transform(IntegerArg(1, 1LL << 30));
  sub->add_option("--eta-bins", a->eta_bins,
                  "uniform eta bins in [-2.4, 2.4] (a divisor of 48), overrides the configuration")
      ->type_name("N")
      ->transform(IntegerArg(1, 48));
  sub->add_option("--solver", a->solver,
                  "Ceres linear solver (default: dense_qr light, sparse_normal_cholesky full)")
      ->check(CLI::IsMember(engine::Names(calibration::kCalibrationLinearSolverNames)));
  sub->add_option("--truth", a->truth,
                  "hidden data bias: binned (the default data bias averaged on the calibration "
                  "bins), biased (the smooth default), nominal (none); with event files: only "
                  "the truth the report compares with")
      ->check(CLI::IsMember({"binned", "biased", "nominal"}))
      ->capture_default_str()
      ->each([a](const std::string&) { a->truth_given = true; });

  // zclosure: the same sample options, the calibration to test.
  auto z = std::make_shared<CalibrateArgs>();
  CLI::App* zsub = cal->add_subcommand(
      "zclosure",
      "Z -> mu mu closure of a calibration file: residual (A, M) per eta bin of the corrected "
      "data, consistency with zero, closure uncertainties written into the file");
  zsub->add_option("-c,--calibration", z->calibration, "the calibration file to test (JSON)")
      ->required()
      ->type_name("FILE");
  AddSampleOptions(zsub, z, "Z -> mu mu",
                   "data Z -> mu mu expected (simulation: x --sim-factor); default 2e6 light, "
                   "1e7 full");
  zsub->add_option("--lep-mev", z->lep_mev,
                   "global closure term: the reference Z mass uncertainty in MeV as a coherent A "
                   "shift (0 = none)")
      ->type_name("MEV")
      ->check(NumberArg(0.0, 999.0))
      ->capture_default_str();
  zsub->add_flag("--light", z->light, "fewer events (2e6 data Z) and dense QR, for tests");
  zsub->add_option("--solver", z->solver, "Ceres linear solver (default sparse_normal_cholesky)")
      ->check(CLI::IsMember(engine::Names(calibration::kCalibrationLinearSolverNames)));
  zsub->add_option("--truth", z->truth,
                   "hidden data bias of the generated Z data: binned (on the calibration's bins), "
                   "biased, nominal")
      ->check(CLI::IsMember({"binned", "biased", "nominal"}))
      ->capture_default_str();
  return {cal, [a, z, zsub, command_line] {
            return zsub->parsed() ? RunZClosureCommand(*z, command_line)
                                  : RunCalibrate(*a, command_line);
          }};
}

}  // namespace lepus::cli
