// Shared pieces of the `lepus` subcommands: exit codes, input reading, option mapping and the
// human-readable fit report. Conventions (docs: README.md "Command-line reference"):
//   * machine-readable output (JSON) goes to stdout or a file, human logs to stderr;
//   * bad user input throws (io::InputError, std::invalid_argument) and is mapped to exit code 1
//     by main(); numerical outcomes are fit statuses, mapped to exit code 2.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"
#include "lepus/io/reader.h"
#include "lepus/io/results.h"

namespace CLI {
class App;
}

namespace lepus::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalidInput = 1;  // unreadable/invalid file, bad flags or values
inline constexpr int kExitFitFailed = 2;     // fit not converged or failed (results still written)
inline constexpr int kExitInternal = 3;      // unexpected exception: a bug, please report

std::string Version();

// The command line as one string (recorded in the result files).
std::string JoinCommandLine(int argc, char** argv);

// Reads a fit input, printing the reader's warnings to stderr as "lepus: warning: ...".
// Throws io::InputError naming the file when it is missing, not a regular file or invalid.
engine::Model ReadInput(const std::string& path, io::ReadInfo* info = nullptr);

// Flags shared by the commands that run a fit (`fit`, `demo`).
struct FitFlags {
  std::vector<std::string> freeze;  // regular expressions, full match on parameter names
  std::vector<std::string> set;     // NAME=VALUE, reported coordinates (mu for POIs)
  double edm_tolerance = engine::FitOptions{}.edm_tolerance;
  int max_iterations = engine::FitOptions{}.max_iterations;
};

// Maps the flags onto FitOptions for this likelihood and validates them. Throws
// std::invalid_argument for a pattern that is not a regex or matches no parameter, an unknown
// --set name, a malformed value, or options that fail FitOptions::IsValid.
engine::FitOptions MakeFitOptions(const engine::Likelihood& likelihood, const FitFlags& flags);

// The human-readable report: parameter table (POIs and nuisances of interest always; other
// nuisances all when there are at most max_rows, else the max_rows largest |pull|s) and the fit
// quality block.
void PrintFitReport(std::ostream& os, const engine::Likelihood& likelihood,
                    const engine::FitResult& result, int max_rows = 40);

// "-9.8 +- 5.1 MeV": a nuisance of interest in physical units (value * scale).
std::string FormatPhysical(double value, double error, double scale, const std::string& unit);

// Checks, before a long computation, that an output file can be created: its directory exists.
// "" and "-" (stdout) pass. Throws io::InputError naming the path.
void CheckOutputPath(const std::string& path);

// Writes text to a file ("-" = stdout). Throws io::InputError naming the path on failure.
void WriteText(const std::string& path, const std::string& text);

// Runs the fit and writes the outputs (JSON to json_path if not empty, HDF5 results to
// hdf5_path if not empty); prints the report to `report`. Returns kExitOk or kExitFitFailed.
int FitAndWrite(const engine::Likelihood& likelihood, const engine::FitOptions& options,
                const io::RunInfo& info, const std::string& json_path,
                const std::string& hdf5_path, std::ostream& report,
                engine::FitResult* result_out = nullptr);

// ---- Subcommands (one file each). Add*Command registers the subcommand and its flags on the
// parent app; after a successful parse, main() calls `run` of the subcommand that was selected.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
Command AddFitCommand(CLI::App& parent, const std::string& command_line);
Command AddInspectCommand(CLI::App& parent);
Command AddDemoCommand(CLI::App& parent, const std::string& command_line);

}  // namespace lepus::cli
