// Toy ensembles as JSON (io::ToysJson) and as an HDF5 file (io::WriteToysHdf5; docs/format.md,
// "Toys").
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

}  // namespace

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
