// Fit results: a JSON summary and an HDF5 results file (layouts in docs/format.md, section 5),
// plus the results of the inference toolkit (impacts, scans, intervals, combinations, yields,
// per-channel goodness of fit, correlation subsets) and toy ensembles.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/scan.h"
#include "lepus/engine/toys.h"
#include "lepus/engine/yields.h"
#include "lepus/io/errors.h"

namespace lepus::io {

struct RunInfo {
  std::string input_path;
  std::string data_label = "observed";  // "observed", "asimov", or "pseudodata:<name>"
  std::string command_line;
  int num_threads = 0;
};

// Optional results added to the JSON summary and the HDF5 results file. Non-owning: every
// pointer must outlive the ResultsJson / WriteResultsHdf5 call; nullptr (the default) = absent.
// All results must belong to the likelihood and fit result passed alongside.
// A fit of the same likelihood to one pseudo-data set of the input (`lepus fit
// --all-pseudodata`).
struct PseudoDataFit {
  std::string name;
  engine::FitResult result;
};

// The fix-and-shift refits of one nuisance (`lepus fit --impact-refit`): fixed at its fitted
// value +- its error, everything else refitted; per target (POI / NOI) the nominal impact
// C_tj / sqrt(C_jj) and the two shifts, in the target's physical unit where it has a scale.
struct RefitImpact {
  int nuisance = -1;
  struct Target {
    int param = -1;
    double nominal = 0.0, up = 0.0, down = 0.0;
    std::string unit;
  };
  std::vector<Target> targets;
};

struct ResultExtras {
  // JSON `impacts` (nominal, grouped_nominal, global, grouped_global, global_data,
  // global_bbstat, total, unit, scale, global_closure); HDF5 group `impacts/`.
  const engine::Impacts* impacts = nullptr;
  // JSON `scans` (1D and 2D in one list, `dimension` 1 or 2); HDF5 groups `scans/<k>`.
  const std::vector<engine::Scan1D>* scans = nullptr;
  const std::vector<engine::Scan2D>* scans_2d = nullptr;
  // JSON `intervals`, keyed by parameter name (one entry per confidence level, with the Hessian
  // error next to it); HDF5 group `intervals/`.
  const std::vector<engine::Interval>* intervals = nullptr;
  // JSON `combinations`; HDF5 group `combinations/`.
  const std::vector<engine::CombinationResult>* combinations = nullptr;
  // Per-channel saturated tests: JSON `gof.channels`; HDF5 group `gof_channels/`.
  const std::vector<engine::ChannelGof>* channel_gof = nullptr;
  // Pre-/post-fit yields and projections: HDF5 groups `prefit/`, `postfit/` (JSON: only a
  // `yields` summary of what the file holds, the arrays are too large for a summary).
  const engine::YieldSet* prefit = nullptr;
  const engine::YieldSet* postfit = nullptr;
  const std::vector<engine::ChannelProjection>* prefit_projections = nullptr;
  const std::vector<engine::ChannelProjection>* postfit_projections = nullptr;
  // Correlation matrix restricted to the parameters whose whole name matches this regular
  // expression (ECMAScript): JSON `correlation` {names, matrix}; HDF5 `correlation_subset/`.
  // Use SelectParameters() to validate a pattern before a long computation.
  std::optional<std::string> correlation_regex;
  // JSON `pseudodata_fits`: per set its name, status, message, nll, edm, iterations,
  // covariance_status, gof and the POIs / NOIs (name, kind, value, error and, with a scale,
  // value_physical, error_physical, unit). In the HDF5 file only inside its JSON summary.
  const std::vector<PseudoDataFit>* pseudodata_fits = nullptr;
  // JSON `impact_refit`: per nuisance its name, value, error and the targets' nominal, refit_up,
  // refit_down and unit. In the HDF5 file only inside its JSON summary.
  const std::vector<RefitImpact>* impact_refits = nullptr;
};

// Indices of the parameters whose whole name matches `regex` (ECMAScript), in parameter order.
// Throws std::invalid_argument when the pattern is not a valid regex or matches nothing.
std::vector<int> SelectParameters(const engine::Likelihood& likelihood, const std::string& regex);

// covariance_status in the JSON summary and the HDF5 attribute: engine::ToString, except that
// accurate_selected (CovarianceExtent::kSelected) is "accurate", the quality. The JSON holds values
// and errors, never the covariance matrix, so it is the same whichever extent was computed
// (docs/numerics.md, "Selected inverse"); in the HDF5 file the extent shows as the absence of the
// covariance dataset. The human report names the extent.
std::string CovarianceStatusJson(engine::CovarianceStatus status);

// JSON summary: {"status", "message", "nll", "edm", "iterations", "gof": {"chi2","ndf","p"},
// "covariance_status", "parameters": [{"name","kind","value","error","prefit","prefit_error",
// "constrained", "frozen", "scale", "unit"}], "timings": {...}, "input", "data", "lepus_version"}
// plus the extras that are set. Pretty-printed with 1-space indent. Throws std::invalid_argument
// when an extra does not fit the likelihood (sizes) or the correlation regex is invalid.
std::string ResultsJson(const engine::Likelihood& likelihood, const engine::FitResult& result,
                        const RunInfo& info, const ResultExtras& extras = {});

// HDF5 results file (its root attribute summary_json is ResultsJson(...)). Atomic (temporary
// file + rename); throws InputError on failure.
void WriteResultsHdf5(const std::string& path, const engine::Likelihood& likelihood,
                      const engine::FitResult& result, const RunInfo& info,
                      const ResultExtras& extras = {});

// ---- Toy ensembles (`lepus toys`).

// JSON summary of an ensemble: {"ntoys", "seed", "mode", "poisson", "randomize_constraints",
// "converged", "converged_fraction", "status_counts", "gof": {"mean","width","ndf"},
// "pulls": [{"name","truth","mean","width","mean_error","bias"}], "truth": {name: value},
// "input", "data", "command_line", "threads", "lepus_version", "model"}.
std::string ToysJson(const engine::Likelihood& likelihood, const engine::ToyOptions& options,
                     const engine::ToyResults& toys, const RunInfo& info);

// HDF5 file with the per-toy results (values, errors, status, nll, gof_chi2) and the summary.
// Atomic; throws InputError on failure.
void WriteToysHdf5(const std::string& path, const engine::Likelihood& likelihood,
                   const engine::ToyOptions& options, const engine::ToyResults& toys,
                   const RunInfo& info);

}  // namespace lepus::io
