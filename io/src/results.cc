// Fit results as JSON (nlohmann_json stays private to this file) and as an HDF5 file. Layouts
// are documented in docs/format.md ("Results").
#include "lepus/io/results.h"

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "format_util.h"
#include "hdf5_util.h"

#ifndef LEPUS_VERSION_STRING
#define LEPUS_VERSION_STRING "unknown"
#endif

namespace lepus::io {

namespace {

using Json = nlohmann::json;

// JSON has no NaN/Inf: non-finite numbers become null.
Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double At(const Eigen::VectorXd& v, int i) {
  return i < v.size() ? v[i] : std::numeric_limits<double>::quiet_NaN();
}

Json BuildJson(const engine::Likelihood& likelihood, const engine::FitResult& result,
               const RunInfo& info) {
  const auto& params = likelihood.params();
  const auto& model = likelihood.model();
  Json j;
  j["status"] = engine::ToString(result.status);
  j["message"] = result.message;
  j["nll"] = Number(result.nll);
  j["edm"] = Number(result.edm);
  j["iterations"] = result.iterations;
  j["evaluations"] = result.evaluations;
  j["gof"] = {{"chi2", Number(result.gof_chi2)}, {"ndf", result.gof_ndf}, {"p", Number(result.gof_p)}};
  j["covariance_status"] = engine::ToString(result.covariance_status);
  j["hessian_positive_definite"] = result.hessian_positive_definite;

  Json plist = Json::array();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const int k = static_cast<int>(i);
    Json e;
    e["name"] = p.name;
    e["kind"] = engine::ToString(p.kind);
    e["value"] = Number(At(result.values, k));
    e["error"] = Number(At(result.errors, k));
    e["prefit"] = Number(p.prefit);
    e["prefit_error"] = Number(p.prefit_error);
    e["constrained"] = p.constrained;
    e["frozen"] = i < result.frozen.size() ? static_cast<bool>(result.frozen[i]) : false;
    e["scale"] = Number(p.scale);
    e["unit"] = p.unit;
    if (p.scale != 0.0) {
      // Physical units: theta * scale (e.g. a mass shift in MeV).
      e["value_physical"] = Number(At(result.values, k) * p.scale);
      e["error_physical"] = Number(At(result.errors, k) * std::abs(p.scale));
    }
    plist.push_back(e);
  }
  j["parameters"] = plist;
  j["timings"] = {{"total", Number(result.time_total)},
                  {"evaluation", Number(result.time_evaluation)},
                  {"linear_algebra", Number(result.time_linear_algebra)},
                  {"covariance", Number(result.time_covariance)}};
  j["model"] = {{"nbins", model.nbins},
                {"nbins_full", model.nbins_full},
                {"processes", model.num_processes()},
                {"systematics", model.num_systematics()},
                {"pois", model.num_pois()},
                {"systematic_type", engine::ToString(model.systematic_type)},
                {"asymmetric", model.asymmetric}};
  j["input"] = info.input_path;
  j["data"] = info.data_label;
  j["command_line"] = info.command_line;
  j["threads"] = info.num_threads;
  j["lepus_version"] = LEPUS_VERSION_STRING;
  return j;
}

std::vector<double> RowMajor(const Eigen::MatrixXd& m) {
  std::vector<double> out(static_cast<std::size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out[r * m.cols() + c] = m(r, c);
  return out;
}

std::vector<double> Padded(const Eigen::VectorXd& v, std::size_t n) {
  std::vector<double> out(n, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t i = 0; i < n && static_cast<Eigen::Index>(i) < v.size(); ++i) out[i] = v[i];
  return out;
}

void WriteResultsContents(h5::OutputFile& f, const engine::Likelihood& likelihood,
                          const engine::FitResult& result, const RunInfo& info,
                          const std::string& summary) {
  const auto& params = likelihood.params();
  const std::size_t n = params.size();
  const auto ni = static_cast<std::int64_t>(n);

  f.WriteInt64Attribute("/", "lepus_results_version", {detail::kResultsVersion});
  f.WriteStringAttribute("/", "lepus_version", LEPUS_VERSION_STRING);
  f.WriteStringAttribute("/", "status", engine::ToString(result.status));
  f.WriteStringAttribute("/", "message", result.message);
  f.WriteStringAttribute("/", "covariance_status", engine::ToString(result.covariance_status));
  f.WriteDoubleAttribute("/", "nll", result.nll);
  f.WriteDoubleAttribute("/", "edm", result.edm);
  f.WriteDoubleAttribute("/", "gof_chi2", result.gof_chi2);
  f.WriteInt64Attribute("/", "gof_ndf", {result.gof_ndf});
  f.WriteDoubleAttribute("/", "gof_p", result.gof_p);
  f.WriteInt64Attribute("/", "iterations", {result.iterations});
  f.WriteStringAttribute("/", "input", info.input_path);
  f.WriteStringAttribute("/", "data", info.data_label);
  f.WriteStringAttribute("/", "summary_json", summary);

  std::vector<std::string> names, kinds, units;
  std::vector<double> prefit, prefit_errors, scales;
  std::vector<std::int32_t> constrained, frozen;
  for (std::size_t i = 0; i < n; ++i) {
    names.push_back(params[i].name);
    kinds.push_back(engine::ToString(params[i].kind));
    units.push_back(params[i].unit);
    prefit.push_back(params[i].prefit);
    prefit_errors.push_back(params[i].prefit_error);
    scales.push_back(params[i].scale);
    constrained.push_back(params[i].constrained ? 1 : 0);
    frozen.push_back(i < result.frozen.size() && result.frozen[i] ? 1 : 0);
  }
  f.CreateGroup("parameters");
  f.WriteStrings("parameters/names", names);
  f.WriteStrings("parameters/kinds", kinds);
  const auto values = Padded(result.values, n);
  const auto errors = Padded(result.errors, n);
  const auto x = Padded(result.x, n);
  f.WriteDouble("parameters/values", values.data(), {ni});
  f.WriteDouble("parameters/errors", errors.data(), {ni});
  f.WriteDouble("parameters/prefit", prefit.data(), {ni});
  f.WriteDouble("parameters/prefit_errors", prefit_errors.data(), {ni});
  f.WriteDouble("parameters/x_internal", x.data(), {ni});
  f.WriteDouble("parameters/scales", scales.data(), {ni});
  f.WriteStrings("parameters/units", units);
  f.WriteInt32("parameters/constrained", constrained.data(), {ni});
  f.WriteInt32("parameters/frozen", frozen.data(), {ni});

  // Matrices only when they have the full parameter dimension (absent otherwise).
  auto square = [&](const Eigen::MatrixXd& m) { return m.rows() == ni && m.cols() == ni && ni > 0; };
  if (square(result.covariance)) {
    const auto cov = RowMajor(result.covariance);
    f.WriteDouble("covariance", cov.data(), {ni, ni});
    const auto corr = RowMajor(result.Correlation());
    f.WriteDouble("correlation", corr.data(), {ni, ni});
  }
  if (square(result.hessian)) {
    const auto hess = RowMajor(result.hessian);
    f.WriteDouble("hessian", hess.data(), {ni, ni});
  }
}

}  // namespace

std::string ResultsJson(const engine::Likelihood& likelihood, const engine::FitResult& result,
                        const RunInfo& info) {
  return BuildJson(likelihood, result, info).dump(1);
}

void WriteResultsHdf5(const std::string& path, const engine::Likelihood& likelihood,
                      const engine::FitResult& result, const RunInfo& info) {
  const std::string tmp = h5::TempPathBeside(path);
  const std::string summary = ResultsJson(likelihood, result, info);
  try {
    {
      h5::OutputFile f(tmp);
      WriteResultsContents(f, likelihood, result, info, summary);
      f.Close();
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw InputError(path + ": cannot move the written file into place: " + ec.message());
  } catch (const InputError& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    std::string msg = e.what();
    if (msg.rfind(tmp, 0) == 0) msg = path + msg.substr(tmp.size());
    throw InputError(msg);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

}  // namespace lepus::io
