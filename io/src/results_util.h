// Private to io's result writers (results_json.cc, results_hdf5.cc, toys_results.cc): the
// helpers they share — JSON numbers and arrays, the checks that extras belong to the likelihood,
// the parameter and channel lookups, the HDF5 dataset writers and the atomic write.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepus/io/errors.h"
#include "lepus/io/internal/hdf5_util.h"
#include "lepus/io/output.h"
#include "lepus/io/results.h"

namespace lepus::io::detail {

using Json = nlohmann::json;

// JSON has no NaN/Inf: non-finite numbers become null.
inline Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

inline double At(const Eigen::VectorXd& v, int i) {
  return i < v.size() ? v[i] : std::numeric_limits<double>::quiet_NaN();
}

// Which likelihood was fitted (rabbit's fit types; docs/numerics.md "Likelihood variants").
inline Json LikelihoodJson(const engine::Likelihood& lik) {
  Json ext = Json::array();
  for (const auto& e : lik.model().external_terms) ext.push_back(e.name);
  return {
      {"description", lik.Describe()},
      {"data_term", engine::ToString(lik.data_term())},
      {"bin_by_bin_stat", lik.options().bin_by_bin_stat},
      {"bin_by_bin_stat_type", lik.options().bin_by_bin_stat
                                   ? Json(engine::ToString(lik.bin_by_bin_stat_type()))
                                   : Json(nullptr)},
      {"bin_by_bin_stat_mode", lik.options().bin_by_bin_stat
                                   ? Json(engine::ToString(lik.bin_by_bin_stat_mode()))
                                   : Json(nullptr)},
      {"data_variance",
       lik.data_term() == engine::DataTerm::kPoisson
           ? Json(nullptr)
           : Json(lik.options().use_data_var && lik.model().data_var.size() ? "data_var" : "data")},
      {"external_terms", ext}};
}

inline std::vector<double> RowMajor(const Eigen::MatrixXd& m) {
  std::vector<double> out(static_cast<std::size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out[r * m.cols() + c] = m(r, c);
  return out;
}

inline std::vector<double> Padded(const Eigen::VectorXd& v, std::size_t n) {
  std::vector<double> out(n, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t i = 0; i < n && static_cast<Eigen::Index>(i) < v.size(); ++i) out[i] = v[i];
  return out;
}

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] inline void Mismatch(const std::string& what, const std::string& detail) {
  throw std::invalid_argument("results: " + what + " does not belong to this likelihood (" +
                              detail + ")");
}

inline Json NumberArray(const Eigen::VectorXd& v) {
  Json a = Json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) a.push_back(Number(v[i]));
  return a;
}
inline Json NumberArray(const std::vector<double>& v) {
  Json a = Json::array();
  for (double x : v) a.push_back(Number(x));
  return a;
}
inline Json MatrixJson(const Eigen::MatrixXd& m) {  // list of rows
  Json rows = Json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    rows.push_back(NumberArray(Eigen::VectorXd(m.row(r).transpose())));
  return rows;
}

inline const std::string& ParamName(const engine::Likelihood& lik, int i) {
  if (i < 0 || i >= lik.num_params()) Mismatch("a parameter index", std::to_string(i));
  return lik.params()[static_cast<std::size_t>(i)].name;
}

inline bool IsFrozen(const engine::FitResult& r, int i) {
  return i >= 0 && static_cast<std::size_t>(i) < r.frozen.size() &&
         r.frozen[static_cast<std::size_t>(i)];
}

// First bin of each channel (channels are concatenated in order, masked ones last). A model
// without channels is one channel "all" with every bin.
struct ChannelSpan {
  std::string name;
  std::int64_t first = 0, nbins = 0;
  bool masked = false;
  const engine::Channel* channel = nullptr;
};
inline std::vector<ChannelSpan> ChannelSpans(const engine::Model& m) {
  std::vector<ChannelSpan> out;
  std::int64_t offset = 0;
  for (const auto& c : m.channels) {
    out.push_back({c.name, offset, c.nbins, c.masked, &c});
    offset += c.nbins;
  }
  if (out.empty()) out.push_back({"all", 0, m.nbins_full, false, nullptr});
  return out;
}

inline void CheckYields(const engine::Likelihood& lik, const engine::YieldSet& y,
                        const char* what) {
  const auto& m = lik.model();
  const Eigen::Index nb = m.nbins_full, np = m.num_processes(), npar = lik.num_params();
  if (y.total.size() != nb || y.total_error.size() != nb)
    Mismatch(what, "totals have " + std::to_string(y.total.size()) + " bins, the model " +
                       std::to_string(nb));
  if (y.process.size() && (y.process.rows() != nb || y.process.cols() != np ||
                           y.process_error.rows() != nb || y.process_error.cols() != np))
    Mismatch(what, "per-process yields are not [nbins_full x nproc]");
  if (y.total_covariance.size() &&
      (y.total_covariance.rows() != nb || y.total_covariance.cols() != nb))
    Mismatch(what, "the covariance is not [nbins_full x nbins_full]");
  if (y.total_jacobian.rows() != nb || y.total_jacobian.cols() != npar ||
      y.param_covariance.rows() != npar || y.param_covariance.cols() != npar ||
      y.extra_variance.size() != nb)
    Mismatch(what, "Jacobian / parameter covariance sizes");
}

inline void CheckImpacts(const engine::Likelihood& lik, const engine::Impacts& im) {
  const Eigen::Index nt = static_cast<Eigen::Index>(im.target_names.size());
  const Eigen::Index npar = lik.num_params(), nbins = lik.model().nbins;
  const Eigen::Index ng = static_cast<Eigen::Index>(im.group_names.size());
  if (static_cast<Eigen::Index>(im.targets.size()) != nt ||
      static_cast<Eigen::Index>(im.target_scale.size()) != nt ||
      static_cast<Eigen::Index>(im.target_unit.size()) != nt || im.total.size() != nt)
    Mismatch("impacts", "target lists of different lengths");
  if (im.nominal.rows() != nt || im.nominal.cols() != npar)
    Mismatch("impacts", "nominal is not [targets x params]");
  if (im.grouped_nominal.rows() != nt || im.grouped_nominal.cols() != ng)
    Mismatch("impacts", "grouped_nominal is not [targets x groups]");
  if (im.bbstat_fullcov.size() != 0 && im.bbstat_fullcov.size() != nt)
    Mismatch("impacts", "bbstat_fullcov is not [targets]");
  if (!im.has_global) return;
  if (im.global_nuisance.rows() != nt || im.global_nuisance.cols() != npar ||
      im.global_data.rows() != nt || im.global_data.cols() != nbins ||
      im.global_bbstat.rows() != nt || im.global_bbstat.cols() != lik.num_betas() ||
      im.grouped_global.rows() != nt || im.grouped_global.cols() != ng ||
      im.global_closure.size() != nt || im.rabbit_global_grouped.rows() != nt ||
      im.rabbit_global_grouped.cols() != ng || im.rabbit_gaussian_global_grouped.rows() != nt ||
      im.rabbit_gaussian_global_grouped.cols() != ng)
    Mismatch("impacts", "global impact sizes");
}

inline double ValueOf(const engine::FitResult& r, int i) { return At(r.values, i); }
inline double ErrorOf(const engine::FitResult& r, int i) { return At(r.errors, i); }

struct CorrelationSubset {
  std::vector<int> indices;
  Eigen::MatrixXd matrix;
};
inline std::optional<CorrelationSubset> SelectCorrelation(const engine::Likelihood& lik,
                                                          const engine::FitResult& r,
                                                          const ResultExtras& extras) {
  if (!extras.correlation_regex) return std::nullopt;
  CorrelationSubset out;
  out.indices = SelectParameters(lik, *extras.correlation_regex);
  const auto n = static_cast<Eigen::Index>(lik.num_params());
  const bool full = r.covariance.rows() == n && r.covariance.cols() == n;
  if (!full) {
    // The selected covariance (CovarianceExtent::kSelected) or a matrix-free fit: available when
    // every index has its covariance row.
    for (int i : out.indices)
      if (std::find(r.covariance_row_params.begin(), r.covariance_row_params.end(), i) ==
              r.covariance_row_params.end() ||
          r.covariance_rows.cols() != n)
        return std::nullopt;  // not computed
  }
  out.matrix = r.CorrelationOf(out.indices);
  return out;
}

inline std::vector<std::int32_t> Int32s(const std::vector<int>& v) { return {v.begin(), v.end()}; }

// A group name for an arbitrary label: '/' is the HDF5 path separator and "." is the group
// itself, so they are replaced; a repeated name gets a suffix "_2", "_3", ...
inline std::string GroupName(const std::string& label, std::set<std::string>* used) {
  std::string s = label.empty() ? "_" : label;
  std::replace(s.begin(), s.end(), '/', '_');
  if (s == "." || s == "..") s = "_" + s;
  std::string out = s;
  for (int k = 2; used->count(out); ++k) out = s + "_" + std::to_string(k);
  used->insert(out);
  return out;
}

inline void WriteMatrix(h5::OutputFile& f, const std::string& name, const Eigen::MatrixXd& m) {
  const auto v = RowMajor(m);
  f.WriteDouble(name, v.data(),
                {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())});
}
inline void WriteVector(h5::OutputFile& f, const std::string& name, const std::vector<double>& v) {
  f.WriteDouble(name, v.data(), {static_cast<std::int64_t>(v.size())});
}
inline void WriteVector(h5::OutputFile& f, const std::string& name, const Eigen::VectorXd& v) {
  f.WriteDouble(name, v.data(), {static_cast<std::int64_t>(v.size())});
}
inline void WriteInts(h5::OutputFile& f, const std::string& name, const std::vector<int>& v) {
  const auto w = Int32s(v);
  f.WriteInt32(name, w.data(), {static_cast<std::int64_t>(w.size())});
}

// Writes through `fill` into a temporary file beside `path` and renames it into place
// (io::AtomicOutput: fsync'ed, removed on errors and signals).
template <typename Fill>
inline void WriteAtomically(const std::string& path, Fill fill) {
  AtomicOutput out(path);
  try {
    {
      h5::OutputFile f(out.temp_path());
      fill(f);
      f.Close();
    }
    out.Commit();
  } catch (const InputError& e) {
    out.Discard();
    throw InputError(out.Rename(e.what()));
  }
}

}  // namespace lepus::io::detail
