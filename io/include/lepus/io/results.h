// Fit results: a JSON summary and an HDF5 results file (layouts in docs/format.md).
#pragma once

#include <string>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/errors.h"

namespace lepus::io {

struct RunInfo {
  std::string input_path;
  std::string data_label = "observed";  // "observed", "asimov", or "pseudodata:<name>"
  std::string command_line;
  int num_threads = 0;
};

// JSON summary: {"status", "message", "nll", "edm", "iterations", "gof": {"chi2","ndf","p"},
// "covariance_status", "parameters": [{"name","kind","value","error","prefit","prefit_error",
// "constrained", "frozen", "scale", "unit"}], "timings": {...}, "input", "data", "lepus_version"}.
// Pretty-printed with 1-space indent.
std::string ResultsJson(const engine::Likelihood& likelihood, const engine::FitResult& result,
                        const RunInfo& info);

// HDF5 results file. Atomic (temporary file + rename); throws InputError on failure.
void WriteResultsHdf5(const std::string& path, const engine::Likelihood& likelihood,
                      const engine::FitResult& result, const RunInfo& info);

}  // namespace lepus::io
