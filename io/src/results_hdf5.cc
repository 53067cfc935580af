// The HDF5 file of fit results (io::WriteResultsHdf5): the fit, then the extras (impacts,
// scans, intervals, combinations, per-channel GoF, yields and projections, correlations), written
// atomically (docs/format.md, "Results").
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

}  // namespace

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

}  // namespace lepus::io
