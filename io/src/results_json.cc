// The JSON of fit results (io::ResultsJson) with the inference-toolkit extras: impacts, scans,
// intervals, combinations, yield summaries, correlations (docs/format.md, "Results").
#include "lepus/io/results.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "format_util.h"
#include "lepus/io/errors.h"
#include "lepus/io/internal/hdf5_util.h"
#include "lepus/io/output.h"
#include "results_util.h"

#ifndef LEPUS_VERSION_STRING
#define LEPUS_VERSION_STRING "unknown"
#endif

namespace lepus::io {

using namespace detail;

namespace {

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
       global_bbstat = Json::object(), global_external = Json::object(), closure = Json::object(),
       bbstat_fullcov = Json::object(), rabbit_global = Json::object(),
       rabbit_gaussian_global = Json::object();
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

Json PseudoDataFitsJson(const engine::Likelihood& lik, const std::vector<PseudoDataFit>& fits) {
  const auto& params = lik.params();
  Json list = Json::array();
  for (const auto& f : fits) {
    const auto& r = f.result;
    Json e;
    e["name"] = f.name;
    e["status"] = engine::ToString(r.status);
    e["message"] = r.message;
    e["nll"] = Number(r.nll);
    e["edm"] = Number(r.edm);
    e["iterations"] = r.iterations;
    e["covariance_status"] = CovarianceStatusJson(r.covariance_status);
    e["gof"] = {{"chi2", Number(r.gof_chi2)}, {"ndf", r.gof_ndf}, {"p", Number(r.gof_p)}};
    Json plist = Json::array();
    for (int i = 0; i < lik.num_params(); ++i) {
      if (params[i].kind == engine::ParamKind::kNuisance) continue;  // the POIs and NOIs
      const double v = r.values.size() == lik.num_params() ? r.values[i] : kNaN;
      const double err = i < r.errors.size() ? r.errors[i] : kNaN;
      Json p = {{"name", params[i].name},
                {"kind", engine::ToString(params[i].kind)},
                {"value", Number(v)},
                {"error", Number(err)}};
      if (params[i].scale != 0.0) {
        p["value_physical"] = Number(v * params[i].scale);
        p["error_physical"] = Number(err * std::abs(params[i].scale));
        p["unit"] = params[i].unit;
      }
      plist.push_back(p);
    }
    e["parameters"] = plist;
    list.push_back(e);
  }
  return list;
}

Json RefitImpactsJson(const engine::Likelihood& lik, const engine::FitResult& r,
                      const std::vector<RefitImpact>& refits) {
  Json list = Json::array();
  for (const auto& c : refits) {
    Json targets = Json::object();
    for (const auto& t : c.targets)
      targets[ParamName(lik, t.param)] = {{"nominal", Number(t.nominal)},
                                          {"refit_up", Number(t.up)},
                                          {"refit_down", Number(t.down)},
                                          {"unit", t.unit}};
    list.push_back({{"nuisance", ParamName(lik, c.nuisance)},
                    {"value", Number(ValueOf(r, c.nuisance))},
                    {"error", Number(ErrorOf(r, c.nuisance))},
                    {"targets", targets}});
  }
  return list;
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
  if (x.pseudodata_fits && !x.pseudodata_fits->empty())
    j["pseudodata_fits"] = PseudoDataFitsJson(lik, *x.pseudodata_fits);
  if (x.impact_refits && !x.impact_refits->empty())
    j["impact_refit"] = RefitImpactsJson(lik, result, *x.impact_refits);
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

}  // namespace lepus::io
