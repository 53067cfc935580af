// Pieces shared by the commands that prepare a likelihood and run fits (`fit`, `scan`, `toys`,
// `hypotest`): the likelihood, data and fit flags, building the likelihood with the chosen data
// set, and parameter lookup with hints. (The single fit and its outputs are fit_input.h; the
// progress lines are progress.h.)
#pragma once

#include <chrono>
#include <string>

#include "fit_input.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/results.h"
#include "progress.h"

namespace CLI {
class App;
}

namespace lepus::cli {

// rabbit's fit types: --chisq-fit, --covariance-fit, --bin-by-bin-stat-type, --chisq-data-var,
// --bin-by-bin-stat-mode.
struct VariantFlags {
  bool chisq = false;
  bool covariance = false;
  bool use_data_var = false;
  std::string bb_type = "automatic";
  std::string bb_mode = "lite";
};
void AddVariantFlags(CLI::App* sub, VariantFlags* flags);
void ApplyVariantFlags(const VariantFlags& flags, engine::LikelihoodOptions* options);
// Warns (stderr) about inputs of the model that these options leave unused: beta variations
// outside Barlow-Beeston full mode with a multiplicative type (rabbit ignores them there too).
void WarnUnusedInputs(const engine::Model& model, const engine::LikelihoodOptions& options);

// --no-bbstat, --poi-positive, --threads and the VariantFlags.
struct LikelihoodFlags {
  bool no_bbstat = false;
  bool poi_positive = false;
  int threads = 0;  // 0 = all cores
  VariantFlags variant;
  io::ReadOptions read;  // AddWorkspaceFlags (JSON workspaces)
};
void AddLikelihoodFlags(CLI::App* sub, LikelihoodFlags* flags);

// --asimov, --pseudodata NAME (mutually exclusive); neither = the observed data.
struct DataFlags {
  bool asimov = false;
  std::string pseudodata;
};
void AddDataFlags(CLI::App* sub, DataFlags* flags);

// --freeze, --set, --edm-tol, --max-iter, --method (FitFlags of fit_input.h).
void AddFitFlags(CLI::App* sub, FitFlags* flags);

// Reads the input (warnings to stderr), builds the likelihood and sets the data: the observed
// data, the named pseudo-data set, or the Asimov data set at the prefit point (moved to the
// --set values of fflags when given). Fills
// info->input_path, data_label and num_threads. Throws io::InputError / std::invalid_argument
// (unknown pseudo-data name, listing the available ones) for bad input.
engine::Likelihood MakeLikelihood(const std::string& input, const LikelihoodFlags& lflags,
                                  const DataFlags& dflags, io::RunInfo* info,
                                  const FitFlags* fflags = nullptr);

// Index of the parameter `name`; throws std::invalid_argument
// "<flag>: no parameter named '<name>' (similar: ...)" when there is none.
int FindParamOrThrow(const engine::Likelihood& likelihood, const std::string& name,
                     const std::string& flag);

// ---- Subcommands of this family (one file each).
// `hypotest` and `limit` (hypotest_command.cc).

}  // namespace lepus::cli
