// Fit results as JSON (nlohmann_json stays private to this file) and as an HDF5 file, the
// inference-toolkit extras (impacts, scans, intervals, combinations, yields, per-channel GoF) and
// toy ensembles. Layouts are documented in docs/format.md ("Results").
#include "lepus/io/results.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "format_util.h"
#include "lepus/io/internal/hdf5_util.h"
#include "lepus/io/errors.h"
#include "lepus/io/output.h"

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

// Which likelihood was fitted (rabbit's fit types; docs/numerics.md "Likelihood variants").
Json LikelihoodJson(const engine::Likelihood& lik) {
  Json ext = Json::array();
  for (const auto& e : lik.model().external_terms) ext.push_back(e.name);
  return {{"description", lik.Describe()},
          {"data_term", engine::ToString(lik.data_term())},
          {"bin_by_bin_stat", lik.options().bin_by_bin_stat},
          {"bin_by_bin_stat_type", lik.options().bin_by_bin_stat ? Json(engine::ToString(lik.bin_by_bin_stat_type()))
                                                                  : Json(nullptr)},
          {"bin_by_bin_stat_mode", lik.options().bin_by_bin_stat ? Json(engine::ToString(lik.bin_by_bin_stat_mode()))
                                                                  : Json(nullptr)},
          {"data_variance", lik.data_term() == engine::DataTerm::kPoisson
                                ? Json(nullptr)
                                : Json(lik.options().use_data_var && lik.model().data_var.size() ? "data_var" : "data")},
          {"external_terms", ext}};
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
  j["gof"] = {
      {"chi2", Number(result.gof_chi2)}, {"ndf", result.gof_ndf}, {"p", Number(result.gof_p)}};
  j["covariance_status"] = CovarianceStatusJson(result.covariance_status);
  j["hessian_positive_definite"] = result.hessian_positive_definite;
  j["covariance_message"] = result.covariance_message;
  j["hessian_scaled_ratio"] = Number(result.hessian_scaled_ratio);

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
  j["likelihood"] = LikelihoodJson(likelihood);
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
  f.WriteStringAttribute("/", "covariance_status", CovarianceStatusJson(result.covariance_status));
  f.WriteStringAttribute("/", "covariance_message", result.covariance_message);
  f.WriteDoubleAttribute("/", "hessian_scaled_ratio", result.hessian_scaled_ratio);
  f.WriteDoubleAttribute("/", "nll", result.nll);
  f.WriteDoubleAttribute("/", "edm", result.edm);
  f.WriteDoubleAttribute("/", "gof_chi2", result.gof_chi2);
  f.WriteInt64Attribute("/", "gof_ndf", {result.gof_ndf});
  f.WriteDoubleAttribute("/", "gof_p", result.gof_p);
  f.WriteInt64Attribute("/", "iterations", {result.iterations});
  f.WriteStringAttribute("/", "input", info.input_path);
  f.WriteStringAttribute("/", "data", info.data_label);
  f.WriteStringAttribute("/", "likelihood", likelihood.Describe());
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
  auto square = [&](const Eigen::MatrixXd& m) {
    return m.rows() == ni && m.cols() == ni && ni > 0;
  };
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
  // The data the fit used (observed, Asimov or a pseudo-data set), so that a report can draw
  // them without the fit input.
  const Eigen::VectorXd& data = likelihood.data();
  f.WriteDouble("data", data.data(), {static_cast<std::int64_t>(data.size())});
}

// ---- Extras: shared helpers -------------------------------------------------------------------

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void Mismatch(const std::string& what, const std::string& detail) {
  throw std::invalid_argument("results: " + what + " does not belong to this likelihood (" +
                              detail + ")");
}

Json NumberArray(const Eigen::VectorXd& v) {
  Json a = Json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) a.push_back(Number(v[i]));
  return a;
}
Json NumberArray(const std::vector<double>& v) {
  Json a = Json::array();
  for (double x : v) a.push_back(Number(x));
  return a;
}
Json MatrixJson(const Eigen::MatrixXd& m) {  // list of rows
  Json rows = Json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    rows.push_back(NumberArray(Eigen::VectorXd(m.row(r).transpose())));
  return rows;
}

const std::string& ParamName(const engine::Likelihood& lik, int i) {
  if (i < 0 || i >= lik.num_params()) Mismatch("a parameter index", std::to_string(i));
  return lik.params()[static_cast<std::size_t>(i)].name;
}

bool IsFrozen(const engine::FitResult& r, int i) {
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
std::vector<ChannelSpan> ChannelSpans(const engine::Model& m) {
  std::vector<ChannelSpan> out;
  std::int64_t offset = 0;
  for (const auto& c : m.channels) {
    out.push_back({c.name, offset, c.nbins, c.masked, &c});
    offset += c.nbins;
  }
  if (out.empty()) out.push_back({"all", 0, m.nbins_full, false, nullptr});
  return out;
}

void CheckYields(const engine::Likelihood& lik, const engine::YieldSet& y, const char* what) {
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

void CheckImpacts(const engine::Likelihood& lik, const engine::Impacts& im) {
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

// ---- Extras: JSON ------------------------------------------------------------------------------

Json ImpactsJson(const engine::Likelihood& lik, const engine::FitResult& result,
                 const engine::Impacts& im) {
  CheckImpacts(lik, im);
  const auto& params = lik.params();
  const int npar = lik.num_params();
  Json j;
  j["targets"] = im.target_names;
  Json total = Json::object(), unit = Json::object(), scale = Json::object();
  Json nominal = Json::object(), grouped_nominal = Json::object();
  Json global = Json::object(), grouped_global = Json::object(), global_data = Json::object(),
       global_bbstat = Json::object(), global_external = Json::object(), closure = Json::object(), bbstat_fullcov = Json::object(),
       rabbit_global = Json::object(), rabbit_gaussian_global = Json::object();
  for (std::size_t k = 0; k < im.target_names.size(); ++k) {
    const auto t = static_cast<Eigen::Index>(k);
    const std::string& name = im.target_names[k];
    total[name] = Number(im.total[t]);
    unit[name] = im.target_unit[k];
    scale[name] = Number(im.target_scale[k]);
    // Sources: every floating parameter except the target itself (frozen ones have no impact).
    Json nom = Json::object();
    for (int i = 0; i < npar; ++i)
      if (i != im.targets[k] && !IsFrozen(result, i))
        nom[params[i].name] = Number(im.nominal(t, i));
    nominal[name] = nom;
    Json gn = Json::object();
    for (std::size_t g = 0; g < im.group_names.size(); ++g)
      gn[im.group_names[g]] = Number(im.grouped_nominal(t, static_cast<Eigen::Index>(g)));
    grouped_nominal[name] = gn;
    if (im.bbstat_fullcov.size()) bbstat_fullcov[name] = Number(im.bbstat_fullcov[t]);
    if (im.has_global) {
      // Global: the constrained floating nuisances (via their global observables); the per-bin
      // sources (data counts, Barlow-Beeston MC counts) as arrays over the fitted bins.
      Json glob = Json::object();
      for (int i = 0; i < npar; ++i)
        if (params[i].constrained && params[i].kind != engine::ParamKind::kPoi &&
            !IsFrozen(result, i))
          glob[params[i].name] = Number(im.global_nuisance(t, i));
      global[name] = glob;
      Json gg = Json::object();
      for (std::size_t g = 0; g < im.group_names.size(); ++g)
        gg[im.group_names[g]] = Number(im.grouped_global(t, static_cast<Eigen::Index>(g)));
      grouped_global[name] = gg;
      global_data[name] = NumberArray(Eigen::VectorXd(im.global_data.row(t).transpose()));
      global_bbstat[name] = NumberArray(Eigen::VectorXd(im.global_bbstat.row(t).transpose()));
      closure[name] = Number(im.global_closure[t]);
      if (!im.external_names.empty()) {
        Json ge = Json::object();
        for (std::size_t e = 0; e < im.external_names.size(); ++e)
          ge[im.external_names[e]] = Number(im.global_external(t, static_cast<Eigen::Index>(e)));
        global_external[name] = ge;
      }
      Json rg = Json::object(), rgg = Json::object();
      for (std::size_t g = 0; g < im.group_names.size(); ++g) {
        rg[im.group_names[g]] = Number(im.rabbit_global_grouped(t, static_cast<Eigen::Index>(g)));
        rgg[im.group_names[g]] =
            Number(im.rabbit_gaussian_global_grouped(t, static_cast<Eigen::Index>(g)));
      }
      rabbit_global[name] = rg;
      rabbit_gaussian_global[name] = rgg;
    }
  }
  j["total"] = total;
  j["unit"] = unit;
  j["scale"] = scale;
  j["groups"] = im.group_names;
  j["nominal"] = nominal;
  j["grouped_nominal"] = grouped_nominal;
  // Not rabbit's binByBinStat (grouped_nominal): sqrt(C_ii - C_ii[beta fixed]), all floating.
  if (im.bbstat_fullcov.size()) j["binByBinStat_fullcov"] = bbstat_fullcov;
  j["has_global"] = im.has_global;
  if (im.has_global) {
    j["global"] = global;
    j["grouped_global"] = grouped_global;
    j["global_data"] = global_data;
    j["global_bbstat"] = global_bbstat;
    j["global_closure"] = closure;
    // External likelihood terms as sources (docs/inference.md).
    if (!im.external_names.empty()) j["global_external"] = global_external;
    // rabbit's global_impacts_grouped / gaussian_global_impacts_grouped (docs/inference.md).
    j["rabbit_global_grouped"] = rabbit_global;
    j["rabbit_gaussian_global_grouped"] = rabbit_gaussian_global;
  }
  return j;
}

double ValueOf(const engine::FitResult& r, int i) { return At(r.values, i); }
double ErrorOf(const engine::FitResult& r, int i) { return At(r.errors, i); }

Json Scan1DJson(const engine::Likelihood& lik, const engine::FitResult& result,
                const engine::Scan1D& s) {
  ParamName(lik, s.param);
  if (s.dnll.size() != s.values.size())
    Mismatch("a 1D scan", "values and dnll of different lengths");
  Json j;
  j["dimension"] = 1;
  j["name"] = s.name;
  j["best_value"] = Number(ValueOf(result, s.param));
  j["hessian_error"] = Number(ErrorOf(result, s.param));
  j["values"] = NumberArray(s.values);
  j["dnll"] = NumberArray(s.dnll);
  j["status"] = s.status;
  return j;
}

Json Scan2DJson(const engine::Likelihood& lik, const engine::FitResult& result,
                const engine::Scan2D& s) {
  ParamName(lik, s.param_x);
  ParamName(lik, s.param_y);
  if (s.dnll.rows() != static_cast<Eigen::Index>(s.values_x.size()) ||
      s.dnll.cols() != static_cast<Eigen::Index>(s.values_y.size()))
    Mismatch("a 2D scan", "dnll is not [values_x x values_y]");
  Json j;
  j["dimension"] = 2;
  j["name_x"] = s.name_x;
  j["name_y"] = s.name_y;
  j["best_x"] = Number(ValueOf(result, s.param_x));
  j["best_y"] = Number(ValueOf(result, s.param_y));
  j["values_x"] = NumberArray(s.values_x);
  j["values_y"] = NumberArray(s.values_y);
  j["dnll"] = MatrixJson(s.dnll);  // dnll[i][j] at (values_x[i], values_y[j])
  return j;
}

Json IntervalJson(const engine::FitResult& result, const engine::Interval& iv) {
  Json j;
  j["cl"] = Number(iv.cl);
  j["q"] = Number(iv.q);
  j["value"] = Number(ValueOf(result, iv.param));
  j["hessian_error"] = Number(ErrorOf(result, iv.param));
  j["lo"] = Number(iv.lo);
  j["hi"] = Number(iv.hi);
  j["err_lo"] = Number(iv.err_lo);
  j["err_hi"] = Number(iv.err_hi);
  j["lo_found"] = iv.lo_found;
  j["hi_found"] = iv.hi_found;
  j["fits"] = iv.fits;
  j["failed_fits"] = iv.failed_fits;
  return j;
}

Json CombinationJson(const engine::Likelihood& lik, const engine::CombinationResult& c) {
  Json j;
  j["name"] = c.name;
  j["expression"] = c.expression;
  j["value"] = Number(c.value);
  j["error"] = Number(c.error);
  Json corr = Json::object();
  for (const auto& [i, rho] : c.correlations) corr[ParamName(lik, i)] = Number(rho);
  j["correlations"] = corr;
  return j;
}

// Per-channel summary of a yield set: the channel sum with its uncertainty (from the kept
// Jacobian and parameter covariance, plus the extra per-bin variance) and the per-process sums.
Json YieldSummaryJson(const engine::Likelihood& lik, const engine::YieldSet& y,
                      const std::vector<engine::ChannelProjection>* projections) {
  const auto& m = lik.model();
  Json channels = Json::array();
  for (const auto& c : ChannelSpans(m)) {
    Json e;
    e["name"] = c.name;
    e["masked"] = c.masked;
    e["nbins"] = c.nbins;
    const Eigen::VectorXd jsum =
        y.total_jacobian.middleRows(c.first, c.nbins).colwise().sum().transpose();
    const double var =
        jsum.dot(y.param_covariance * jsum) + engine::ExtraVarianceOfSum(y, c.first, c.nbins);
    e["total"] = Number(y.total.segment(c.first, c.nbins).sum());
    e["total_error"] = Number(std::sqrt(std::max(var, 0.0)));
    if (y.process.size()) {
      Json procs = Json::object();
      for (int p = 0; p < m.num_processes(); ++p)
        procs[m.processes[static_cast<std::size_t>(p)]] =
            Number(y.process.col(p).segment(c.first, c.nbins).sum());
      e["processes"] = procs;
    }
    channels.push_back(e);
  }
  Json j;
  j["channels"] = channels;
  j["per_process"] = y.process.size() > 0;
  j["covariance"] = y.total_covariance.size() > 0;
  if (projections) {
    Json pl = Json::array();
    for (const auto& p : *projections)
      pl.push_back({{"channel", p.channel}, {"axes", p.axes}, {"shape", p.shape}});
    j["projections"] = pl;
  }
  return j;
}

struct CorrelationSubset {
  std::vector<int> indices;
  Eigen::MatrixXd matrix;
};
std::optional<CorrelationSubset> SelectCorrelation(const engine::Likelihood& lik,
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
              r.covariance_row_params.end() || r.covariance_rows.cols() != n)
        return std::nullopt;  // not computed
  }
  out.matrix = r.CorrelationOf(out.indices);
  return out;
}

void AddExtrasJson(Json& j, const engine::Likelihood& lik, const engine::FitResult& result,
                   const ResultExtras& x) {
  if (x.impacts) j["impacts"] = ImpactsJson(lik, result, *x.impacts);
  if (x.scans || x.scans_2d) {
    Json scans = Json::array();
    if (x.scans)
      for (const auto& s : *x.scans) scans.push_back(Scan1DJson(lik, result, s));
    if (x.scans_2d)
      for (const auto& s : *x.scans_2d) scans.push_back(Scan2DJson(lik, result, s));
    j["scans"] = scans;
  }
  if (x.intervals) {
    Json iv = Json::object();
    for (const auto& i : *x.intervals)
      iv[ParamName(lik, i.param)].push_back(IntervalJson(result, i));
    j["intervals"] = iv;
  }
  if (x.combinations) {
    Json cl = Json::array();
    for (const auto& c : *x.combinations) cl.push_back(CombinationJson(lik, c));
    j["combinations"] = cl;
  }
  if (x.channel_gof) {
    Json ch = Json::array();
    for (const auto& g : *x.channel_gof)
      ch.push_back(
          {{"channel", g.channel}, {"chi2", Number(g.chi2)}, {"ndf", g.ndf}, {"p", Number(g.p)}});
    j["gof"]["channels"] = ch;
  }
  if (x.prefit || x.postfit) {
    Json y = Json::object();
    if (x.prefit) {
      CheckYields(lik, *x.prefit, "the prefit yields");
      y["prefit"] = YieldSummaryJson(lik, *x.prefit, x.prefit_projections);
    }
    if (x.postfit) {
      CheckYields(lik, *x.postfit, "the postfit yields");
      y["postfit"] = YieldSummaryJson(lik, *x.postfit, x.postfit_projections);
    }
    j["yields"] = y;
  }
  if (const auto sub = SelectCorrelation(lik, result, x)) {
    Json names = Json::array();
    for (int i : sub->indices) names.push_back(ParamName(lik, i));
    j["correlation"] = {
        {"regex", *x.correlation_regex}, {"names", names}, {"matrix", MatrixJson(sub->matrix)}};
  }
}

// ---- Extras: HDF5 ------------------------------------------------------------------------------

std::vector<std::int32_t> Int32s(const std::vector<int>& v) { return {v.begin(), v.end()}; }

// A group name for an arbitrary label: '/' is the HDF5 path separator and "." is the group
// itself, so they are replaced; a repeated name gets a suffix "_2", "_3", ...
std::string GroupName(const std::string& label, std::set<std::string>* used) {
  std::string s = label.empty() ? "_" : label;
  std::replace(s.begin(), s.end(), '/', '_');
  if (s == "." || s == "..") s = "_" + s;
  std::string out = s;
  for (int k = 2; used->count(out); ++k) out = s + "_" + std::to_string(k);
  used->insert(out);
  return out;
}

void WriteMatrix(h5::OutputFile& f, const std::string& name, const Eigen::MatrixXd& m) {
  const auto v = RowMajor(m);
  f.WriteDouble(name, v.data(),
                {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())});
}
void WriteVector(h5::OutputFile& f, const std::string& name, const std::vector<double>& v) {
  f.WriteDouble(name, v.data(), {static_cast<std::int64_t>(v.size())});
}
void WriteVector(h5::OutputFile& f, const std::string& name, const Eigen::VectorXd& v) {
  f.WriteDouble(name, v.data(), {static_cast<std::int64_t>(v.size())});
}
void WriteInts(h5::OutputFile& f, const std::string& name, const std::vector<int>& v) {
  const auto w = Int32s(v);
  f.WriteInt32(name, w.data(), {static_cast<std::int64_t>(w.size())});
}

void WriteImpactsHdf5(h5::OutputFile& f, const engine::Impacts& im) {
  f.CreateGroup("impacts");
  f.WriteStrings("impacts/targets", im.target_names);
  WriteInts(f, "impacts/target_index", im.targets);
  f.WriteStrings("impacts/units", im.target_unit);
  WriteVector(f, "impacts/scales", im.target_scale);
  WriteVector(f, "impacts/total", im.total);
  WriteMatrix(f, "impacts/nominal", im.nominal);
  f.WriteStrings("impacts/group_names", im.group_names);
  WriteMatrix(f, "impacts/grouped_nominal", im.grouped_nominal);
  if (im.bbstat_fullcov.size()) WriteVector(f, "impacts/binByBinStat_fullcov", im.bbstat_fullcov);
  f.WriteInt64Attribute("impacts", "has_global", {im.has_global ? 1 : 0});
  if (!im.has_global) return;
  WriteMatrix(f, "impacts/global_nuisance", im.global_nuisance);
  WriteMatrix(f, "impacts/global_data", im.global_data);
  WriteMatrix(f, "impacts/global_bbstat", im.global_bbstat);
  WriteMatrix(f, "impacts/grouped_global", im.grouped_global);
  WriteVector(f, "impacts/global_closure", im.global_closure);
  if (!im.external_names.empty()) {
    f.WriteStrings("impacts/external_names", im.external_names);
    WriteMatrix(f, "impacts/global_external", im.global_external);
  }
  WriteMatrix(f, "impacts/rabbit_global_grouped", im.rabbit_global_grouped);
  WriteMatrix(f, "impacts/rabbit_gaussian_global_grouped", im.rabbit_gaussian_global_grouped);
}

void WriteScansHdf5(h5::OutputFile& f, const engine::FitResult& result, const ResultExtras& x) {
  f.CreateGroup("scans");
  std::set<std::string> used;
  if (x.scans)
    for (const auto& s : *x.scans) {
      const std::string g = "scans/" + GroupName(s.name, &used);
      f.CreateGroup(g);
      f.WriteInt64Attribute(g, "dimension", {1});
      f.WriteStringAttribute(g, "name", s.name);
      f.WriteDoubleAttribute(g, "best_value", ValueOf(result, s.param));
      f.WriteDoubleAttribute(g, "hessian_error", ErrorOf(result, s.param));
      WriteVector(f, g + "/values", s.values);
      WriteVector(f, g + "/dnll", s.dnll);
      f.WriteStrings(g + "/status", s.status);
    }
  if (x.scans_2d)
    for (const auto& s : *x.scans_2d) {
      const std::string g = "scans/" + GroupName(s.name_x + "__" + s.name_y, &used);
      f.CreateGroup(g);
      f.WriteInt64Attribute(g, "dimension", {2});
      f.WriteStringAttribute(g, "name_x", s.name_x);
      f.WriteStringAttribute(g, "name_y", s.name_y);
      f.WriteDoubleAttribute(g, "best_x", ValueOf(result, s.param_x));
      f.WriteDoubleAttribute(g, "best_y", ValueOf(result, s.param_y));
      WriteVector(f, g + "/values_x", s.values_x);
      WriteVector(f, g + "/values_y", s.values_y);
      WriteMatrix(f, g + "/dnll", s.dnll);
    }
}

void WriteIntervalsHdf5(h5::OutputFile& f, const engine::Likelihood& lik,
                        const engine::FitResult& result, const std::vector<engine::Interval>& ivs) {
  f.CreateGroup("intervals");
  std::vector<std::string> names;
  std::vector<double> cl, q, value, herr, lo, hi, elo, ehi;
  std::vector<int> param, lo_found, hi_found, fits, failed_fits;
  for (const auto& i : ivs) {
    names.push_back(ParamName(lik, i.param));
    param.push_back(i.param);
    cl.push_back(i.cl);
    q.push_back(i.q);
    value.push_back(ValueOf(result, i.param));
    herr.push_back(ErrorOf(result, i.param));
    lo.push_back(i.lo);
    hi.push_back(i.hi);
    elo.push_back(i.err_lo);
    ehi.push_back(i.err_hi);
    lo_found.push_back(i.lo_found ? 1 : 0);
    hi_found.push_back(i.hi_found ? 1 : 0);
    fits.push_back(i.fits);
    failed_fits.push_back(i.failed_fits);
  }
  f.WriteStrings("intervals/names", names);
  WriteInts(f, "intervals/param_index", param);
  WriteVector(f, "intervals/cl", cl);
  WriteVector(f, "intervals/q", q);
  WriteVector(f, "intervals/value", value);
  WriteVector(f, "intervals/hessian_error", herr);
  WriteVector(f, "intervals/lo", lo);
  WriteVector(f, "intervals/hi", hi);
  WriteVector(f, "intervals/err_lo", elo);
  WriteVector(f, "intervals/err_hi", ehi);
  WriteInts(f, "intervals/lo_found", lo_found);
  WriteInts(f, "intervals/hi_found", hi_found);
  WriteInts(f, "intervals/fits", fits);
  WriteInts(f, "intervals/failed_fits", failed_fits);
}

void WriteCombinationsHdf5(h5::OutputFile& f, const engine::Likelihood& lik,
                           const std::vector<engine::CombinationResult>& cs) {
  f.CreateGroup("combinations");
  std::vector<std::string> names, exprs;
  std::vector<double> values, errors;
  std::vector<int> cols;  // union of the correlated parameters, in parameter order
  for (const auto& c : cs) {
    names.push_back(c.name);
    exprs.push_back(c.expression);
    values.push_back(c.value);
    errors.push_back(c.error);
    for (const auto& [i, rho] : c.correlations) {
      ParamName(lik, i);
      if (std::find(cols.begin(), cols.end(), i) == cols.end()) cols.push_back(i);
    }
  }
  std::sort(cols.begin(), cols.end());
  Eigen::MatrixXd corr = Eigen::MatrixXd::Constant(static_cast<Eigen::Index>(cs.size()),
                                                   static_cast<Eigen::Index>(cols.size()), kNaN);
  for (std::size_t k = 0; k < cs.size(); ++k)
    for (const auto& [i, rho] : cs[k].correlations)
      corr(static_cast<Eigen::Index>(k), std::find(cols.begin(), cols.end(), i) - cols.begin()) =
          rho;
  std::vector<std::string> col_names;
  for (int i : cols) col_names.push_back(ParamName(lik, i));
  f.WriteStrings("combinations/names", names);
  f.WriteStrings("combinations/expressions", exprs);
  WriteVector(f, "combinations/values", values);
  WriteVector(f, "combinations/errors", errors);
  f.WriteStrings("combinations/correlation_names", col_names);
  WriteMatrix(f, "combinations/correlations", corr);
}

void WriteChannelGofHdf5(h5::OutputFile& f, const std::vector<engine::ChannelGof>& gs) {
  f.CreateGroup("gof_channels");
  std::vector<std::string> names;
  std::vector<double> chi2, p;
  std::vector<int> ndf;
  for (const auto& g : gs) {
    names.push_back(g.channel);
    chi2.push_back(g.chi2);
    ndf.push_back(g.ndf);
    p.push_back(g.p);
  }
  f.WriteStrings("gof_channels/names", names);
  WriteVector(f, "gof_channels/chi2", chi2);
  WriteInts(f, "gof_channels/ndf", ndf);
  WriteVector(f, "gof_channels/p", p);
}

void WriteYieldsHdf5(h5::OutputFile& f, const engine::Likelihood& lik, const std::string& root,
                     const engine::YieldSet& y,
                     const std::vector<engine::ChannelProjection>* projections) {
  const auto& m = lik.model();
  f.CreateGroup(root);
  f.WriteInt64Attribute(root, "postfit", {y.postfit ? 1 : 0});
  f.WriteStrings(root + "/processes", m.processes);
  // The whole bin range (channels concatenated, masked last) ...
  WriteVector(f, root + "/total", y.total);
  WriteVector(f, root + "/total_error", y.total_error);
  if (y.process.size()) {
    WriteMatrix(f, root + "/process", y.process);
    WriteMatrix(f, root + "/process_error", y.process_error);
  }
  if (y.total_covariance.size()) WriteMatrix(f, root + "/total_covariance", y.total_covariance);
  // ... and per channel, shaped by the channel's axes where they all have edges.
  f.CreateGroup(root + "/channels");
  std::set<std::string> used;
  for (const auto& c : ChannelSpans(m)) {
    const std::string g = root + "/channels/" + GroupName(c.name, &used);
    f.CreateGroup(g);
    f.WriteStringAttribute(g, "name", c.name);
    f.WriteInt64Attribute(g, "masked", {c.masked ? 1 : 0});
    f.WriteInt64Attribute(g, "first_bin", {c.first});
    std::vector<std::string> axes;
    std::vector<int> shape;
    if (c.channel)
      for (const auto& a : c.channel->axes) {
        axes.push_back(a.name);
        shape.push_back(a.edges.empty() ? -1 : static_cast<int>(a.edges.size()) - 1);
      }
    f.WriteStrings(g + "/axes", axes);
    WriteInts(f, g + "/shape", shape);
    // Bin edges (and labels) of each axis, for plots: axis_edges_<k>, axis_labels_<k>.
    if (c.channel)
      for (std::size_t k = 0; k < c.channel->axes.size(); ++k) {
        const auto& a = c.channel->axes[k];
        if (!a.edges.empty()) WriteVector(f, g + "/axis_edges_" + std::to_string(k), a.edges);
        if (!a.labels.empty()) f.WriteStrings(g + "/axis_labels_" + std::to_string(k), a.labels);
      }
    WriteVector(f, g + "/total", Eigen::VectorXd(y.total.segment(c.first, c.nbins)));
    WriteVector(f, g + "/total_error", Eigen::VectorXd(y.total_error.segment(c.first, c.nbins)));
    if (y.process.size()) {
      WriteMatrix(f, g + "/process", y.process.middleRows(c.first, c.nbins));
      WriteMatrix(f, g + "/process_error", y.process_error.middleRows(c.first, c.nbins));
    }
    if (y.total_covariance.size())
      WriteMatrix(f, g + "/covariance",
                  y.total_covariance.block(c.first, c.first, c.nbins, c.nbins));
  }
  if (!projections) return;
  f.CreateGroup(root + "/projections");
  std::set<std::string> pused;
  for (const auto& p : *projections) {
    std::string label = p.channel;
    for (const auto& a : p.axes) label += "__" + a;
    const std::string g = root + "/projections/" + GroupName(label, &pused);
    f.CreateGroup(g);
    f.WriteStringAttribute(g, "channel", p.channel);
    f.WriteStrings(g + "/axes", p.axes);
    WriteInts(f, g + "/shape", p.shape);
    WriteVector(f, g + "/values", p.values);
    WriteVector(f, g + "/errors", p.errors);
    if (p.covariance.size()) WriteMatrix(f, g + "/covariance", p.covariance);
    if (p.process.size()) WriteMatrix(f, g + "/process", p.process);
  }
}

void WriteExtrasHdf5(h5::OutputFile& f, const engine::Likelihood& lik,
                     const engine::FitResult& result, const ResultExtras& x) {
  if (x.impacts) WriteImpactsHdf5(f, *x.impacts);
  if (x.scans || x.scans_2d) WriteScansHdf5(f, result, x);
  if (x.intervals) WriteIntervalsHdf5(f, lik, result, *x.intervals);
  if (x.combinations) WriteCombinationsHdf5(f, lik, *x.combinations);
  if (x.channel_gof) WriteChannelGofHdf5(f, *x.channel_gof);
  if (x.prefit) WriteYieldsHdf5(f, lik, "prefit", *x.prefit, x.prefit_projections);
  if (x.postfit) WriteYieldsHdf5(f, lik, "postfit", *x.postfit, x.postfit_projections);
  if (const auto sub = SelectCorrelation(lik, result, x)) {
    f.CreateGroup("correlation_subset");
    f.WriteStringAttribute("correlation_subset", "regex", *x.correlation_regex);
    std::vector<std::string> names;
    for (int i : sub->indices) names.push_back(ParamName(lik, i));
    f.WriteStrings("correlation_subset/names", names);
    WriteInts(f, "correlation_subset/indices", sub->indices);
    WriteMatrix(f, "correlation_subset/matrix", sub->matrix);
  }
}

// ---- Toys -----------------------------------------------------------------------------------

// Status codes of the per-toy status array (HDF5) and their names.
int StatusCode(engine::FitStatus s) {
  switch (s) {
    case engine::FitStatus::kConverged:
      return 0;
    case engine::FitStatus::kNotConverged:
      return 1;
    case engine::FitStatus::kFailed:
      return 2;
  }
  return 2;
}

Json ModelJson(const engine::Model& model) {
  return {{"nbins", model.nbins},
          {"nbins_full", model.nbins_full},
          {"processes", model.num_processes()},
          {"systematics", model.num_systematics()},
          {"pois", model.num_pois()},
          {"systematic_type", engine::ToString(model.systematic_type)},
          {"asymmetric", model.asymmetric}};
}

void CheckToys(const engine::Likelihood& lik, const engine::ToyResults& t) {
  const Eigen::Index npar = lik.num_params();
  const Eigen::Index n = t.values.rows();
  if (t.values.cols() != npar || t.errors.rows() != n || t.errors.cols() != npar ||
      t.truth.size() != npar)
    Mismatch("the toy results", "values / errors / truth sizes");
  if (static_cast<Eigen::Index>(t.status.size()) != n || t.nll.size() != n ||
      t.gof_chi2.size() != n)
    Mismatch("the toy results", "status / nll / gof_chi2 sizes");
  for (const auto& p : t.pulls) ParamName(lik, p.param);
}

// Toys entering the pull summary of parameter p: converged, with a positive error.
int PullCount(const engine::ToyResults& t, int p) {
  int n = 0;
  for (Eigen::Index i = 0; i < t.values.rows(); ++i)
    n += t.status[static_cast<std::size_t>(i)] == engine::FitStatus::kConverged &&
         t.errors(i, p) > 0;
  return n;
}

Json BuildToysJson(const engine::Likelihood& lik, const engine::ToyOptions& opt,
                   const engine::ToyResults& t, const RunInfo& info) {
  CheckToys(lik, t);
  const auto& params = lik.params();
  const auto n = static_cast<int>(t.values.rows());
  Json j;
  j["kind"] = "toys";
  j["ntoys"] = n;
  j["seed"] = opt.seed;
  j["mode"] = engine::ToString(opt.mode);
  j["poisson"] = opt.poisson;
  j["randomize_constraints"] = opt.randomize_constraints;
  j["converged"] = t.converged;
  j["converged_fraction"] = Number(n > 0 ? static_cast<double>(t.converged) / n : kNaN);
  std::map<std::string, int> counts{{"converged", 0}, {"not_converged", 0}, {"failed", 0}};
  for (auto s : t.status) ++counts[engine::ToString(s)];
  j["status_counts"] = counts;
  j["gof"] = {{"mean", Number(t.gof_mean)},
              {"width", Number(t.gof_width)},
              {"ndf", t.gof_ndf},
              {"mean_over_ndf", Number(t.gof_ndf > 0 ? t.gof_mean / t.gof_ndf : kNaN)}};
  Json pulls = Json::array();
  for (const auto& p : t.pulls) {
    const int used = PullCount(t, p.param);
    // Statistical uncertainties of the pull mean and width (Gaussian pulls).
    const double mean_unc = used > 0 ? p.width / std::sqrt(used) : kNaN;
    const double width_unc = used > 1 ? p.width / std::sqrt(2.0 * (used - 1)) : kNaN;
    pulls.push_back({{"name", p.name},
                     {"kind", engine::ToString(params[static_cast<std::size_t>(p.param)].kind)},
                     {"truth", Number(p.truth)},
                     {"toys", used},
                     {"mean", Number(p.mean)},
                     {"mean_uncertainty", Number(mean_unc)},
                     {"width", Number(p.width)},
                     {"width_uncertainty", Number(width_unc)},
                     {"mean_error", Number(p.mean_error)},
                     {"bias", Number(p.bias)}});
  }
  j["pulls"] = pulls;
  Json truth = Json::object();
  for (std::size_t i = 0; i < params.size(); ++i)
    truth[params[i].name] = Number(t.truth[static_cast<Eigen::Index>(i)]);
  j["truth"] = truth;
  j["model"] = ModelJson(lik.model());
  j["likelihood"] = LikelihoodJson(lik);
  j["input"] = info.input_path;
  j["data"] = info.data_label;
  j["command_line"] = info.command_line;
  j["threads"] = info.num_threads;
  j["lepus_version"] = LEPUS_VERSION_STRING;
  return j;
}

void WriteToysContents(h5::OutputFile& f, const engine::Likelihood& lik,
                       const engine::ToyOptions& opt, const engine::ToyResults& t,
                       const RunInfo& info, const std::string& summary) {
  const auto& params = lik.params();
  const auto n = static_cast<std::int64_t>(t.values.rows());
  const auto npar = static_cast<std::int64_t>(params.size());
  f.WriteInt64Attribute("/", "lepus_results_version", {detail::kResultsVersion});
  f.WriteStringAttribute("/", "lepus_version", LEPUS_VERSION_STRING);
  f.WriteStringAttribute("/", "kind", "toys");
  f.WriteInt64Attribute("/", "ntoys", {n});
  // The full unsigned 64-bit seed, bit for bit (H5T_STD_U64LE).
  f.WriteUInt64Attribute("/", "seed", {opt.seed});
  f.WriteStringAttribute("/", "mode", engine::ToString(opt.mode));
  f.WriteInt64Attribute("/", "poisson", {opt.poisson ? 1 : 0});
  f.WriteInt64Attribute("/", "randomize_constraints", {opt.randomize_constraints ? 1 : 0});
  f.WriteInt64Attribute("/", "converged", {t.converged});
  f.WriteInt64Attribute("/", "gof_ndf", {t.gof_ndf});
  f.WriteDoubleAttribute("/", "gof_mean", t.gof_mean);
  f.WriteDoubleAttribute("/", "gof_width", t.gof_width);
  f.WriteStringAttribute("/", "input", info.input_path);
  f.WriteStringAttribute("/", "data", info.data_label);
  f.WriteStringAttribute("/", "summary_json", summary);

  std::vector<std::string> names, kinds;
  for (const auto& p : params) {
    names.push_back(p.name);
    kinds.push_back(engine::ToString(p.kind));
  }
  f.CreateGroup("parameters");
  f.WriteStrings("parameters/names", names);
  f.WriteStrings("parameters/kinds", kinds);
  WriteVector(f, "parameters/truth", t.truth);

  f.CreateGroup("toys");
  WriteMatrix(f, "toys/values", t.values);
  WriteMatrix(f, "toys/errors", t.errors);
  std::vector<int> status;
  for (auto s : t.status) status.push_back(StatusCode(s));
  WriteInts(f, "toys/status", status);
  f.WriteStringAttribute("toys/status", "codes", "0 converged, 1 not_converged, 2 failed");
  WriteVector(f, "toys/nll", t.nll);
  WriteVector(f, "toys/gof_chi2", t.gof_chi2);

  f.CreateGroup("pulls");
  std::vector<std::string> pnames;
  std::vector<int> pidx;
  std::vector<double> truth, mean, width, mean_error, bias;
  Eigen::MatrixXd per_toy(n, static_cast<Eigen::Index>(t.pulls.size()));
  for (std::size_t k = 0; k < t.pulls.size(); ++k) {
    const auto& p = t.pulls[k];
    pnames.push_back(p.name);
    pidx.push_back(p.param);
    truth.push_back(p.truth);
    mean.push_back(p.mean);
    width.push_back(p.width);
    mean_error.push_back(p.mean_error);
    bias.push_back(p.bias);
    // (value - truth) / error per toy; NaN for toys that did not converge.
    for (std::int64_t i = 0; i < n; ++i) {
      const double e = t.errors(i, p.param);
      per_toy(i, static_cast<Eigen::Index>(k)) =
          t.status[static_cast<std::size_t>(i)] == engine::FitStatus::kConverged && e > 0
              ? (t.values(i, p.param) - p.truth) / e
              : kNaN;
    }
  }
  f.WriteStrings("pulls/names", pnames);
  WriteInts(f, "pulls/param_index", pidx);
  WriteVector(f, "pulls/truth", truth);
  WriteVector(f, "pulls/mean", mean);
  WriteVector(f, "pulls/width", width);
  WriteVector(f, "pulls/mean_error", mean_error);
  WriteVector(f, "pulls/bias", bias);
  std::vector<int> used;
  for (const auto& p : t.pulls) used.push_back(PullCount(t, p.param));
  WriteInts(f, "pulls/toys", used);
  WriteMatrix(f, "pulls/values", per_toy);
  (void)npar;
}

// Writes through `fill` into a temporary file beside `path` and renames it into place
// (io::AtomicOutput: fsync'ed, removed on errors and signals).
template <typename Fill>
void WriteAtomically(const std::string& path, Fill fill) {
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

}  // namespace

std::vector<int> SelectParameters(const engine::Likelihood& likelihood, const std::string& regex) {
  std::regex re;
  try {
    re = std::regex(regex, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw std::invalid_argument("correlation selection: '" + regex +
                                "' is not a valid regular expression (" + e.what() + ")");
  }
  std::vector<int> out;
  for (int i = 0; i < likelihood.num_params(); ++i)
    if (std::regex_match(likelihood.params()[static_cast<std::size_t>(i)].name, re))
      out.push_back(i);
  if (out.empty())
    throw std::invalid_argument("correlation selection: pattern '" + regex +
                                "' matches no parameter name (it must match a whole name)");
  return out;
}

std::string CovarianceStatusJson(engine::CovarianceStatus status) {
  if (status == engine::CovarianceStatus::kAccurateSelected)
    return engine::ToString(engine::CovarianceStatus::kAccurate);
  return engine::ToString(status);
}

std::string ResultsJson(const engine::Likelihood& likelihood, const engine::FitResult& result,
                        const RunInfo& info, const ResultExtras& extras) {
  Json j = BuildJson(likelihood, result, info);
  AddExtrasJson(j, likelihood, result, extras);
  return j.dump(1);
}

void WriteResultsHdf5(const std::string& path, const engine::Likelihood& likelihood,
                      const engine::FitResult& result, const RunInfo& info,
                      const ResultExtras& extras) {
  // The JSON first: it validates the extras before anything is written.
  const std::string summary = ResultsJson(likelihood, result, info, extras);
  WriteAtomically(path, [&](h5::OutputFile& f) {
    WriteResultsContents(f, likelihood, result, info, summary);
    WriteExtrasHdf5(f, likelihood, result, extras);
  });
}

std::string ToysJson(const engine::Likelihood& likelihood, const engine::ToyOptions& options,
                     const engine::ToyResults& toys, const RunInfo& info) {
  return BuildToysJson(likelihood, options, toys, info).dump(1);
}

void WriteToysHdf5(const std::string& path, const engine::Likelihood& likelihood,
                   const engine::ToyOptions& options, const engine::ToyResults& toys,
                   const RunInfo& info) {
  const std::string summary = ToysJson(likelihood, options, toys, info);
  WriteAtomically(path, [&](h5::OutputFile& f) {
    WriteToysContents(f, likelihood, options, toys, info, summary);
  });
}

}  // namespace lepus::io
