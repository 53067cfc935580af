// Reading back the HDF5 results files that lepus writes (io::WriteResultsHdf5, io::WriteToysHdf5;
// layouts in docs/format.md section 5), for reports and other consumers. Plain data, no engine
// objects: every array is row-major with its shape.
//
// Errors are io::InputError naming the file and the dataset: a file that is not HDF5, an HDF5
// file without the `lepus_results_version` attribute ("not a lepus results file"), a toys file
// where a fit results file is expected (and the reverse), a missing required dataset
// (parameters/names, ...) and arrays whose shapes disagree with the parameters or each other.
// Optional groups (impacts, scans, yields, ...) that are absent leave their members empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lepus/io/errors.h"

namespace lepus::io {

// A row-major matrix read from a results file.
struct ResultsMatrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> values;
  bool empty() const { return values.empty(); }
  double operator()(std::int64_t r, std::int64_t c) const {
    return values[static_cast<std::size_t>(r * cols + c)];
  }
};

struct ResultsImpacts {
  std::vector<std::string> targets, units;  // target names and units (after scaling)
  std::vector<int> target_index;            // parameter index, -1 for a combination
  std::vector<double> scales, total;        // [nt]
  ResultsMatrix nominal;                    // [nt x npar]
  std::vector<std::string> group_names;
  ResultsMatrix grouped_nominal;       // [nt x ng]
  std::vector<double> bbstat_fullcov;  // [nt] or empty
  bool has_global = false;
  ResultsMatrix global_nuisance;       // [nt x npar] (with has_global)
  ResultsMatrix grouped_global;        // [nt x ng]
  std::vector<double> global_closure;  // [nt]
};

struct ResultsScan1D {
  std::string name;
  double best_value = 0, hessian_error = 0;
  std::vector<double> values, dnll;
  std::vector<std::string> status;
};

struct ResultsScan2D {
  std::string name_x, name_y;
  double best_x = 0, best_y = 0;
  std::vector<double> values_x, values_y;
  ResultsMatrix dnll;  // [nx x ny]
};

struct ResultsInterval {
  std::string name;
  int param_index = -1;
  double cl = 0, q = 0, value = 0, hessian_error = 0, lo = 0, hi = 0, err_lo = 0, err_hi = 0;
  bool lo_found = false, hi_found = false;
  int fits = 0, failed_fits = 0;
};

struct ResultsChannelGof {
  std::string name;
  double chi2 = 0, p = 0;
  int ndf = 0;
};

struct ResultsAxis {
  std::string name;
  int bins = -1;                    // -1: an axis without edges
  std::vector<double> edges;        // bins + 1, or empty (files before edges were written)
  std::vector<std::string> labels;  // one per bin, or empty
};

struct ResultsChannel {
  std::string name;
  bool masked = false;
  std::int64_t first_bin = 0, nbins = 0;
  std::vector<ResultsAxis> axes;
  std::vector<double> total, total_error;  // [nbins]
  ResultsMatrix process, process_error;    // [nbins x nproc] or empty
};

struct ResultsProjection {
  std::string channel;
  std::vector<std::string> axes;
  std::vector<int> shape;
  std::vector<double> values, errors;  // row-major over the kept axes
  ResultsMatrix process;               // [nproj x nproc] or empty
};

struct ResultsYields {
  bool postfit = false;
  std::vector<std::string> processes;
  std::vector<ResultsChannel> channels;
  std::vector<ResultsProjection> projections;
};

struct ResultsFile {
  std::string path;
  std::int64_t version = 0;
  // Root attributes.
  std::string lepus_version, status, message, covariance_status, covariance_message, input, data,
      likelihood, summary_json;
  double nll = 0, edm = 0, gof_chi2 = 0, gof_p = 0;
  std::int64_t gof_ndf = 0, iterations = 0;
  // parameters/
  std::vector<std::string> names, kinds, units;
  std::vector<double> values, errors, prefit, prefit_errors, scales;
  std::vector<int> constrained, frozen;
  ResultsMatrix correlation;        // [npar x npar] or empty (not computed / not read)
  std::vector<double> data_fitted;  // `data` [nbins]: the data of the fit; empty in older files
  std::optional<ResultsImpacts> impacts;
  std::vector<ResultsScan1D> scans;
  std::vector<ResultsScan2D> scans_2d;
  std::vector<ResultsInterval> intervals;
  std::vector<ResultsChannelGof> channel_gof;
  std::optional<ResultsYields> prefit_yields, postfit_yields;

  int num_params() const { return static_cast<int>(names.size()); }
};

struct ResultsReadOptions {
  bool correlation = true;  // read the [npar x npar] correlation matrix when present
};

// Reads a results file of `lepus fit` / `scan` / `demo`. Throws InputError (see the top).
ResultsFile ReadResultsFile(const std::string& path, const ResultsReadOptions& options = {});

struct ToysFile {
  std::string path;
  std::string mode, input, data;
  std::int64_t ntoys = 0, converged = 0;
  std::vector<std::string> pull_names;
  std::vector<double> pull_truth, pull_mean, pull_width;
  std::vector<int> pull_toys;
  ResultsMatrix pulls;           // [ntoys x npulls], NaN for toys not used
  std::vector<double> gof_chi2;  // [ntoys]
  std::int64_t gof_ndf = 0;
};

// Reads a toys file of `lepus toys`. Throws InputError (see the top).
ToysFile ReadToysFile(const std::string& path);

}  // namespace lepus::io
