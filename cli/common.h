// Shared pieces of the `lepus` subcommands: exit codes, input reading, option mapping and the
// human-readable fit report. Conventions (docs: README.md "Command-line reference"):
//   * machine-readable output (JSON) goes to stdout or a file, human logs to stderr;
//   * bad user input throws (io::InputError, std::invalid_argument) and is mapped to exit code 1
//     by main(); numerical outcomes are fit statuses, mapped to exit code 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"
#include "lepus/io/output.h"
#include "lepus/io/reader.h"
#include "lepus/io/results.h"

namespace CLI {
class App;
}
namespace lepus::models {
struct WMassConfig;
}

namespace lepus::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalidInput = 1;  // unreadable/invalid file, bad flags or values
inline constexpr int kExitFitFailed = 2;     // fit not converged or failed (results still written)
inline constexpr int kExitInternal = 3;      // unexpected exception: a bug, please report

std::string Version();

// The command line as one string (recorded in the result files).
std::string JoinCommandLine(int argc, char** argv);

// Reads a fit input (HDF5, or a HistFactory JSON workspace with the options of
// AddWorkspaceFlags), printing the reader's warnings to stderr as "lepus: warning: ...".
// Throws io::InputError naming the file when it is missing, not a regular file or invalid.
engine::Model ReadInput(const std::string& path, io::ReadInfo* info = nullptr,
                        const io::ReadOptions& options = {});

// The workspace flags of every command that reads a fit input: --patch FILE (repeatable),
// --patchset FILE with --patch-name NAME, --measurement NAME, --normsys-interp code1|code4,
// --histosys-interp code0|code4p (docs/histfactory.md "Reading workspaces").
void AddWorkspaceFlags(CLI::App* sub, io::ReadOptions* options);

// Flags shared by the commands that run a fit (`fit`, `demo`).
struct FitFlags {
  std::vector<std::string> freeze;  // regular expressions, full match on parameter names
  std::vector<std::string> set;     // NAME=VALUE, reported coordinates (mu for POIs)
  double edm_tolerance = engine::FitOptions{}.edm_tolerance;
  int max_iterations = engine::FitOptions{}.max_iterations;
  std::string method = "auto";  // auto | dense | matrix_free (engine::FitMethod)
};

// Maps the flags onto FitOptions for this likelihood and validates them. Throws
// std::invalid_argument for a pattern that is not a regex or matches no parameter, an unknown
// --set name, a malformed value, or options that fail FitOptions::IsValid.
engine::FitOptions MakeFitOptions(const engine::Likelihood& likelihood, const FitFlags& flags);

// True when the fit computed a covariance that is not to be trusted (near_singular,
// forced_positive): its errors are not printed and the command exits with kExitFitFailed.
bool CovarianceUntrusted(const engine::FitResult& result);
// Why the fit has no accurate covariance, for messages: "the fit did not converge (...)", "the
// fit's covariance is near_singular (...)", ...
std::string WhyNoCovariance(const engine::FitResult& result);

// The human-readable report: parameter table (POIs and nuisances of interest always; other
// nuisances all when there are at most max_rows, else the max_rows largest |pull|s) and the fit
// quality block. Errors (and constraints) are printed as "-" when CovarianceUntrusted.
void PrintFitReport(std::ostream& os, const engine::Likelihood& likelihood,
                    const engine::FitResult& result, int max_rows = 40);

// "-9.8 +- 5.1 MeV": a nuisance of interest in physical units (value * scale).
std::string FormatPhysical(double value, double error, double scale, const std::string& unit);

// Outputs are checked before any work with io::CheckOutputs (lepus/io/output.h: never over an
// input, never two outputs on one file, only regular files in writable directories).

// Writes text to a file atomically (io::WriteFileAtomically; "-" = stdout). Throws
// io::InputError naming the path and the OS reason on failure.
void WriteText(const std::string& path, const std::string& text);

// Runs the fit and writes the outputs (JSON to json_path if not empty, HDF5 results to
// hdf5_path if not empty); prints the report to `report`. Returns kExitOk, or kExitFitFailed
// when the fit did not converge or its covariance is untrusted.
int FitAndWrite(const engine::Likelihood& likelihood, const engine::FitOptions& options,
                const io::RunInfo& info, const std::string& json_path,
                const std::string& hdf5_path, std::ostream& report,
                engine::FitResult* result_out = nullptr);

// ---- Inference toolkit of `lepus fit` (impacts, combinations): flag parsing and human tables.

// Parses a whole string as a finite number; throws std::invalid_argument
// "<what> is '<text>', but must be a finite number".
double ParseNumber(const std::string& text, const std::string& what);

// `--group NAME=REGEX` items: groups of the systematics whose whole name matches REGEX
// (ECMAScript). Throws std::invalid_argument for a malformed item, an empty name or pattern, an
// invalid regex, a pattern matching no systematic, or a name that is already a group of the model,
// given twice, or one of the reserved rows ("stat", "binByBinStat", "Total").
std::vector<engine::SystematicGroup> ParseGroupFlags(const engine::Model& model,
                                                     const std::vector<std::string>& items);

// `--combine NAME=EXPR` items (engine::ParseCombination). Throws std::invalid_argument for a
// malformed item, an unknown parameter or bad syntax (naming the flag and NAME), and a NAME that
// is given twice or is already a parameter name.
std::vector<engine::LinearCombination> ParseCombineFlags(const engine::Likelihood& likelihood,
                                                         const std::vector<std::string>& items);

// The physical scale shared by every parameter of a combination (e.g. 100 for mass shifts of
// 100 MeV per unit) and its unit; 0 when they have none or different ones.
double CombinationScale(const engine::Likelihood& likelihood,
                        const engine::LinearCombination& combination, std::string* unit);

// The impact table of each target, like the CMS W-mass analysis's: one row per group (the model's and
// extra_groups, omitting a group that contains the target's own parameters), "stat",
// "binByBinStat", sorted by nominal impact, then "Total"; columns Nominal and (when computed)
// Global, in the target's physical units when it has a scale; binByBinStat_fullcov; the global
// closure residual and rabbit's global stat / binByBinStat where they differ; then
// the top_n individual parameters by |nominal impact| with their global impact.
void PrintImpactTable(std::ostream& os, const engine::Likelihood& likelihood,
                      const engine::FitResult& result, const engine::Impacts& impacts,
                      const std::vector<engine::LinearCombination>& combinations,
                      const std::vector<engine::SystematicGroup>& extra_groups, int top_n);

// Combinations: value +- error (physical units where the parameters share a scale) and the
// correlation with each POI and NOI.
void PrintCombinations(std::ostream& os, const engine::Likelihood& likelihood,
                       const std::vector<engine::LinearCombination>& combinations,
                       const std::vector<engine::CombinationResult>& results);

// Correlation matrix of the parameters `indices` (at most max_print of them are printed).
void PrintCorrelationMatrix(std::ostream& os, const engine::Likelihood& likelihood,
                            const engine::FitResult& result, const std::vector<int>& indices,
                            int max_print = 30);

// ---- Subcommands (one file each). Add*Command registers the subcommand and its flags on the
// parent app; after a successful parse, main() calls `run` of the subcommand that was selected.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
Command AddFitCommand(CLI::App& parent, const std::string& command_line);
Command AddInspectCommand(CLI::App& parent);
Command AddDemoCommand(CLI::App& parent, const std::string& command_line);
Command AddReportCommand(CLI::App& parent);

// Writes the HTML report of a results file (report_command.cc; lepus/report/report.h): used by
// `lepus report`, `lepus fit --report` and `lepus demo`. Prints what was written (and what was
// left out) to `log`. Throws io::InputError for unreadable or foreign files.
void WriteHtmlReport(const std::string& results, const std::string& input,
                     const std::vector<std::string>& toys, const std::string& output, int top,
                     const std::string& svg_dir, const std::string& title, std::ostream& log);
// The projections a report draws, as (channel, kept axes): each multi-dimensional channel whose
// axes all have edges onto each axis and, when it has a charge axis ("charge" or "q", 2-3 bins),
// onto (axis, charge) in the channel's axis order. Used by `fit --report` and `demo`.
std::vector<std::pair<std::string, std::vector<std::string>>> ReportProjections(
    const engine::Model& model);

// ---- Producers (produce_command.cc), shared by `produce wmass` and `demo`.

// Flags of `lepus produce wmass` / `lepus produce wlike` that shape the configuration.
struct ProduceFlags {
  bool wlike = false;                   // the analysis: `produce wlike` (else wmass)
  std::string config;                   // --config FILE
  bool light = false, full = false;     // --light / --full
  std::vector<std::string> events;      // --events FILE...
  std::int64_t generate = -1;           // --generate N (-1: not given; else 1 to 1e12)
  std::vector<std::string> data_events; // --data-events FILE...
  double data_mw_shift = std::numeric_limits<double>::quiet_NaN();  // --data-truth-mw-shift
  std::uint64_t seed = 0;               // --seed S, the full unsigned 64-bit range
  bool seed_given = false;              // --seed was given
  double luminosity = std::numeric_limits<double>::quiet_NaN();     // --luminosity PB
  std::string mass_split;               // --mass-split SPEC ("": not given)
  std::string mass_split_mode;          // --mass-split-mode MODE ("": not given)
  bool flip_parity = false;             // --flip-parity (wlike)
  double data_mz_shift = std::numeric_limits<double>::quiet_NaN();  // --data-truth-mz-shift
  int threads = 0;                      // --threads N
  bool print_config = false;            // --print-config
  std::string output;                   // -o FILE
  std::string producer = "wmass";       // the subcommand: "wmass", "helicity" or "dilepton"
};
void AddProduceFlags(CLI::App* sub, ProduceFlags* flags);
// The configuration: --config (or the --light/--full preset of the analysis, flags.wlike) with
// the flags applied on top. Throws std::invalid_argument / io::InputError for a bad file and for
// inconsistent flags (--events with --generate, --data-truth-mw-shift / --data-truth-mz-shift
// with data files, --config with a preset flag).
models::WMassConfig ProduceConfigFromFlags(const ProduceFlags& flags);
// Produces the fit input of the flags' configuration (-o) or prints it (--print-config).
int RunProduce(const ProduceFlags& flags, const models::WMassConfig& config,
               const std::string& command_line);
// `lepus produce helicity` (produce_helicity.cc).
Command AddProduceHelicity(CLI::App* produce, const std::string& command_line);

// "12.3M", "850k", "42".
std::string HumanCount(double value);

// "produce [######......]  25% 1.20M/4.80M events, 2.10M events/s, ETA 2.1 s" on stderr,
// redrawn in place on a terminal (at most 5 times a second), else one line per tenth.
class EventProgressBar {
 public:
  explicit EventProgressBar(std::string label);
  void Update(std::int64_t done, std::int64_t total, double seconds);
  void Finish();

 private:
  std::string label_;
  bool tty_;
  bool drawn_ = false;
  int last_tenth_ = -1;
  std::chrono::steady_clock::time_point last_;
};

// One row of a seed-like impact table: the label printed and the impact groups whose
// impacts are combined in quadrature for it (nominal: of the union's grouped impact when
// the groups are in `impacts`; a group missing from the model is skipped, a row with no
// group present is printed as "-").
struct ImpactRow {
  std::string label;
  std::vector<std::string> groups;
};
// The seed's "Source of uncertainty | Impact (MeV): Nominal, Global" table for one target of
// the impacts, rows in the given order, then "Total uncertainty". Nominal impacts of a row with
// several groups are added in quadrature (exact only for uncorrelated groups: give a single
// group that contains them all when possible); global impacts always add in quadrature.
void PrintSeedImpactTable(std::ostream& os, const engine::Impacts& impacts, int target,
                          const std::vector<ImpactRow>& rows);

Command AddProduceCommand(CLI::App& parent, const std::string& command_line);

// The analyses of `lepus produce`: each adds its subcommand to `produce` and returns it with
// what runs it (Command::app is the subcommand). One file per analysis:
//   produce_command.cc  wmass (and the analyses that share its configuration)
//   produce_dilepton.cc dilepton
Command AddProduceDilepton(CLI::App* produce, const std::string& command_line);

}  // namespace lepus::cli
