// The fit input and the fit of the commands that run one (`fit`, `demo`, `scan`, ...): reading
// an input (with the HistFactory workspace flags), the fit flags mapped onto FitOptions, and the
// fit with its outputs written.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"
#include "lepus/io/output.h"
#include "lepus/io/reader.h"
#include "lepus/io/results.h"

namespace CLI {
class App;
}  // namespace CLI

namespace lepus::cli {

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

// Outputs are checked before any work with io::CheckOutputs (lepus/io/output.h: never over an
// input, never two outputs on one file, only regular files in writable directories).

// Writes text to a file atomically (io::WriteFileAtomically; "-" = stdout). Throws
// io::InputError naming the path and the OS reason on failure.
void WriteText(const std::string& path, const std::string& text);

// Runs the fit and writes the outputs (JSON to json_path if not empty, HDF5 results to
// hdf5_path if not empty); prints the report to `report`. Returns kExitOk, or kExitFitFailed
// when the fit did not converge or its covariance is untrusted.
int FitAndWrite(const engine::Likelihood& likelihood, const engine::FitOptions& options,
                const io::RunInfo& info, const std::string& json_path, const std::string& hdf5_path,
                std::ostream& report, engine::FitResult* result_out = nullptr);

}  // namespace lepus::cli
