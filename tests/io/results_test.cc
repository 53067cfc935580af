// Results: the JSON summary (fields, kinds, NaN -> null), the HDF5 results file layout, the
// inference-toolkit extras (real engine results on small models) and the toy-ensemble writer.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "io_test_util.h"
#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/scan.h"
#include "lepus/engine/toys.h"
#include "lepus/engine/yields.h"
#include "lepus/io/results.h"
#include "lepus/models/synthetic.h"
#include "test_support.h"

namespace {

using lepus::engine::Fit;
using lepus::engine::FitResult;
using lepus::engine::Likelihood;
using lepus::engine::Model;
using Json = nlohmann::json;

struct Fitted {
  Likelihood likelihood;
  FitResult result;
};

Fitted MakeFit() {
  Model m = lepus::test::io::RichModel(false, lepus::engine::SystematicType::kLogNormal, 31);
  lepus::engine::LikelihoodOptions opt;
  opt.num_threads = 1;
  Likelihood lik(std::move(m), opt);
  FitResult r = Fit(lik);
  return {std::move(lik), std::move(r)};
}

lepus::io::RunInfo Info() {
  lepus::io::RunInfo info;
  info.input_path = "input.hdf5";
  info.data_label = "asimov";
  info.command_line = "lepus fit input.hdf5";
  info.num_threads = 1;
  return info;
}

}  // namespace

TEST_CASE("results: JSON summary") {
  const Fitted f = MakeFit();
  REQUIRE(f.result.ok());
  const Json j = Json::parse(lepus::io::ResultsJson(f.likelihood, f.result, Info()));
  CHECK(j["status"] == "converged");
  CHECK(j["nll"].get<double>() == f.result.nll);
  CHECK(j["edm"].get<double>() == f.result.edm);
  CHECK(j["gof"]["chi2"].get<double>() == f.result.gof_chi2);
  CHECK(j["gof"]["ndf"].get<int>() == f.result.gof_ndf);
  CHECK(j["gof"]["p"].get<double>() == f.result.gof_p);
  CHECK(j["covariance_status"] == lepus::engine::ToString(f.result.covariance_status));
  CHECK(j["input"] == "input.hdf5");
  CHECK(j["data"] == "asimov");
  CHECK(j["command_line"] == "lepus fit input.hdf5");
  CHECK(j.contains("lepus_version"));
  CHECK(j["timings"].contains("total"));

  const auto& params = f.likelihood.params();
  REQUIRE(j["parameters"].size() == params.size());
  // 2 POIs (sig0, sig1), then syst0 (free NOI, 100 MeV), syst1 (NOI), syst2..5 nuisances.
  const Json& p = j["parameters"];
  CHECK(p[0]["name"] == "sig0");
  CHECK(p[0]["kind"] == "poi");
  CHECK(p[0]["prefit"].get<double>() == 1.0);
  CHECK(p[2]["name"] == "syst0");
  CHECK(p[2]["kind"] == "noi");
  CHECK(p[2]["constrained"] == false);
  CHECK(p[2]["prefit_error"].is_null());  // unconstrained: NaN -> null
  CHECK(p[2]["scale"].get<double>() == 100.0);
  CHECK(p[2]["unit"] == "MeV");
  CHECK(p[2]["value_physical"].get<double>() == doctest::Approx(100.0 * f.result.values[2]));
  CHECK(p[3]["kind"] == "noi");
  CHECK(p[4]["kind"] == "nuisance");
  CHECK(p[4]["prefit_error"].get<double>() == 1.0);
  CHECK(p[7]["prefit_error"].get<double>() == doctest::Approx(2.0));  // cw = 0.25
  for (std::size_t i = 0; i < params.size(); ++i) {
    CHECK(p[i]["value"].get<double>() == f.result.values[static_cast<Eigen::Index>(i)]);
    CHECK(p[i]["error"].get<double>() == f.result.errors[static_cast<Eigen::Index>(i)]);
    CHECK(p[i]["frozen"] == false);
  }
}

TEST_CASE("results: non-finite numbers become null") {
  Fitted f = MakeFit();
  f.result.nll = std::nan("");
  f.result.errors[1] = INFINITY;
  f.result.gof_p = std::nan("");
  const std::string text = lepus::io::ResultsJson(f.likelihood, f.result, Info());
  CHECK(text.find("NaN") == std::string::npos);
  const Json j = Json::parse(text);
  CHECK(j["nll"].is_null());
  CHECK(j["gof"]["p"].is_null());
  CHECK(j["parameters"][1]["error"].is_null());
  CHECK(j["parameters"][1]["value"].is_number());
}

TEST_CASE("results: HDF5 results file") {
  const Fitted f = MakeFit();
  const std::string dir = lepus::test::TempPath("results", "");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/fit.hdf5";
  lepus::io::WriteResultsHdf5(path, f.likelihood, f.result, Info());
  const auto n = static_cast<hsize_t>(f.likelihood.num_params());
  lepus::test::io::H5File h(path);
  CHECK(h.ReadStringAttribute("/", "status") == "converged");
  CHECK(h.ReadDoubleAttribute("/", "nll") == f.result.nll);
  CHECK(h.ReadDoubleAttribute("/", "edm") == f.result.edm);
  CHECK(h.ReadDoubleAttribute("/", "gof_chi2") == f.result.gof_chi2);
  CHECK(h.ReadDoubleAttribute("/", "gof_p") == f.result.gof_p);
  const Json summary = Json::parse(h.ReadStringAttribute("/", "summary_json"));
  CHECK(summary["nll"].get<double>() == f.result.nll);

  const auto names = h.ReadVlenStrings("parameters/names");
  REQUIRE(names.size() == n);
  CHECK(names[0] == "sig0");
  CHECK(names[2] == "syst0");
  const auto kinds = h.ReadVlenStrings("parameters/kinds");
  CHECK(kinds[0] == "poi");
  CHECK(kinds[2] == "noi");
  CHECK(kinds[4] == "nuisance");
  const auto values = h.ReadDoubles("parameters/values");
  const auto errors = h.ReadDoubles("parameters/errors");
  for (hsize_t i = 0; i < n; ++i) {
    CHECK(values[i] == f.result.values[static_cast<Eigen::Index>(i)]);
    CHECK(errors[i] == f.result.errors[static_cast<Eigen::Index>(i)]);
  }
  CHECK(h.ReadDoubles("parameters/prefit")[0] == 1.0);
  CHECK(std::isnan(h.ReadDoubles("parameters/prefit_errors")[2]));

  for (const char* name : {"covariance", "correlation", "hessian"})
    CHECK(h.Dims(name) == std::vector<hsize_t>{n, n});
  const auto cov = h.ReadDoubles("covariance");
  const auto corr = h.ReadDoubles("correlation");
  CHECK(cov[1 * n + 0] == f.result.covariance(1, 0));
  CHECK(cov[0 * n + 1] == f.result.covariance(0, 1));
  CHECK(corr[0] == doctest::Approx(1.0));
  CHECK(corr[1 * n + 2] ==
        doctest::Approx(f.result.covariance(1, 2) /
                        std::sqrt(f.result.covariance(1, 1) * f.result.covariance(2, 2))));
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);  // no temporary left behind
}

TEST_CASE("results: unwritable path is an InputError naming the path") {
  const Fitted f = MakeFit();
  const std::string path = lepus::test::TempPath("nodir", "") + "/x/fit.hdf5";
  CHECK_THROWS_WITH_AS(lepus::io::WriteResultsHdf5(path, f.likelihood, f.result, Info()),
                       doctest::Contains((path + ": cannot create the file").c_str()),
                       lepus::io::InputError);
}

// ---- Inference-toolkit extras (impacts, scans, intervals, combinations, yields, GoF, toys) ----

namespace {

using lepus::io::ResultExtras;

// RichModel fitted to its own Asimov data (global impacts close there), without the empty group
// (impacts reject groups without members).
Fitted MakeAsimovFit(bool bbstat = true) {
  Model m = lepus::test::io::RichModel(false, lepus::engine::SystematicType::kLogNormal, 31);
  m.groups.pop_back();  // "empty"
  lepus::engine::LikelihoodOptions opt;
  opt.num_threads = 1;
  opt.bin_by_bin_stat = bbstat;
  Likelihood lik(std::move(m), opt);
  lik.SetData(lepus::engine::AsimovData(lik, lik.InitialParams()));
  FitResult r = Fit(lik);
  return {std::move(lik), std::move(r)};
}

struct TempDir {
  std::string dir;
  explicit TempDir(const std::string& stem) : dir(lepus::test::TempPath(stem, "")) {
    std::filesystem::create_directories(dir);
  }
  std::string File(const std::string& name) const { return dir + "/" + name; }
};

}  // namespace

TEST_CASE("results: default extras leave the summary unchanged") {
  const Fitted f = MakeFit();
  CHECK(lepus::io::ResultsJson(f.likelihood, f.result, Info()) ==
        lepus::io::ResultsJson(f.likelihood, f.result, Info(), ResultExtras{}));
  const Json j = Json::parse(lepus::io::ResultsJson(f.likelihood, f.result, Info()));
  for (const char* key : {"impacts", "scans", "intervals", "combinations", "yields", "correlation"})
    CHECK_FALSE(j.contains(key));
  CHECK_FALSE(j["gof"].contains("channels"));
}

TEST_CASE("results: impacts in JSON and HDF5") {
  const Fitted f = MakeAsimovFit();
  REQUIRE(f.result.ok());
  const auto& lik = f.likelihood;
  lepus::engine::ImpactOptions io;
  io.combinations = {lepus::engine::ParseCombination(lik, "sigdiff", "sig0 - sig1")};
  io.extra_groups = {{"lumiLike", {4}}};
  const lepus::engine::Impacts im = lepus::engine::ComputeImpacts(lik, f.result, io);
  REQUIRE(im.target_names == std::vector<std::string>{"sig0", "sig1", "syst0", "syst1", "sigdiff"});

  ResultExtras extras;
  extras.impacts = &im;
  const Json j = Json::parse(lepus::io::ResultsJson(lik, f.result, Info(), extras));
  const Json& ji = j["impacts"];
  CHECK(ji["targets"] == Json(im.target_names));
  for (std::size_t k = 0; k < im.target_names.size(); ++k) {
    const auto t = static_cast<Eigen::Index>(k);
    const std::string& name = im.target_names[k];
    CHECK(ji["total"][name].get<double>() == im.total[t]);
    CHECK(ji["global_closure"][name].get<double>() == im.global_closure[t]);
    CHECK(std::abs(ji["global_closure"][name].get<double>()) < 1e-6);
    // Nominal: every floating parameter except the target itself.
    const Json& nom = ji["nominal"][name];
    CHECK(nom.size() == static_cast<std::size_t>(lik.num_params() - (im.targets[k] >= 0 ? 1 : 0)));
    CHECK_FALSE(nom.contains(name));
    CHECK(nom["syst3"].get<double>() == im.nominal(t, 5));
    // Global: the constrained nuisances only (syst0 is free, POIs have no global observable).
    const Json& glob = ji["global"][name];
    CHECK_FALSE(glob.contains("syst0"));
    CHECK_FALSE(glob.contains("sig0"));
    CHECK(glob["syst1"].get<double>() == im.global_nuisance(t, 3));
    CHECK(glob.size() == 5u);  // syst1..syst5
    // Groups: the model's, the extra one, stat and binByBinStat in both dicts.
    for (const char* g : {"theory", "experimental", "lumiLike", "stat", "binByBinStat"}) {
      CHECK(ji["grouped_nominal"][name].contains(g));
      CHECK(ji["grouped_global"][name].contains(g));
    }
    CHECK(ji["grouped_global"][name]["stat"].get<double>() ==
          doctest::Approx(im.global_data.row(t).norm()));
    // rabbit's global tables and the full-covariance binByBinStat, keyed like the others.
    for (const char* g : {"theory", "stat", "binByBinStat"}) {
      const auto gi = static_cast<Eigen::Index>(
          std::find(im.group_names.begin(), im.group_names.end(), g) - im.group_names.begin());
      CHECK(ji["rabbit_global_grouped"][name][g].get<double>() == im.rabbit_global_grouped(t, gi));
      CHECK(ji["rabbit_gaussian_global_grouped"][name][g].get<double>() ==
            im.rabbit_gaussian_global_grouped(t, gi));
    }
    CHECK(ji["binByBinStat_fullcov"][name].get<double>() == im.bbstat_fullcov[t]);
    CHECK(ji["global_data"][name].size() == static_cast<std::size_t>(lik.model().nbins));
    CHECK(ji["global_bbstat"][name].size() == static_cast<std::size_t>(lik.model().nbins));
    // Closure from the JSON numbers alone: all squared global impacts add up to total^2.
    double sum2 = 0.0;
    for (const auto& [src, v] : glob.items()) sum2 += v.get<double>() * v.get<double>();
    for (const auto& v : ji["global_data"][name]) sum2 += v.get<double>() * v.get<double>();
    for (const auto& v : ji["global_bbstat"][name]) sum2 += v.get<double>() * v.get<double>();
    const double total = ji["total"][name].get<double>();
    CHECK(sum2 == doctest::Approx(total * total).epsilon(1e-6));
  }
  // syst0 has a physical scale: its impacts are in MeV.
  CHECK(ji["unit"]["syst0"] == "MeV");
  CHECK(ji["scale"]["syst0"].get<double>() == 100.0);
  CHECK(ji["total"]["syst0"].get<double>() == doctest::Approx(100.0 * f.result.errors[2]));
  CHECK(ji["unit"]["sig0"] == "");

  const TempDir d("results_impacts");
  const std::string path = d.File("fit.hdf5");
  lepus::io::WriteResultsHdf5(path, lik, f.result, Info(), extras);
  lepus::test::io::H5File h(path);
  const auto nt = static_cast<hsize_t>(im.target_names.size());
  const auto np = static_cast<hsize_t>(lik.num_params());
  const auto nb = static_cast<hsize_t>(lik.model().nbins);
  const auto ng = static_cast<hsize_t>(im.group_names.size());
  CHECK(h.ReadVlenStrings("impacts/targets") == im.target_names);
  CHECK(h.ReadVlenStrings("impacts/group_names") == im.group_names);
  CHECK(h.ReadInts("impacts/target_index") == std::vector<std::int64_t>{0, 1, 2, 3, -1});
  CHECK(h.Dims("impacts/nominal") == std::vector<hsize_t>{nt, np});
  CHECK(h.Dims("impacts/grouped_nominal") == std::vector<hsize_t>{nt, ng});
  CHECK(h.Dims("impacts/global_nuisance") == std::vector<hsize_t>{nt, np});
  CHECK(h.Dims("impacts/global_data") == std::vector<hsize_t>{nt, nb});
  CHECK(h.Dims("impacts/global_bbstat") == std::vector<hsize_t>{nt, nb});
  CHECK(h.Dims("impacts/grouped_global") == std::vector<hsize_t>{nt, ng});
  CHECK(h.Dims("impacts/rabbit_global_grouped") == std::vector<hsize_t>{nt, ng});
  CHECK(h.Dims("impacts/rabbit_gaussian_global_grouped") == std::vector<hsize_t>{nt, ng});
  CHECK(h.ReadDoubles("impacts/binByBinStat_fullcov")[3] == im.bbstat_fullcov[3]);
  const auto nominal = h.ReadDoubles("impacts/nominal");
  CHECK(nominal[1 * np + 5] == im.nominal(1, 5));  // row-major [target, parameter]
  const auto gdata = h.ReadDoubles("impacts/global_data");
  CHECK(gdata[4 * nb + 7] == im.global_data(4, 7));
  CHECK(h.ReadDoubles("impacts/total")[4] == im.total[4]);
  CHECK(h.ReadVlenStrings("impacts/units")[2] == "MeV");
  // The summary attribute is the same JSON, impacts included.
  CHECK(Json::parse(h.ReadStringAttribute("/", "summary_json"))["impacts"] == ji);
}

TEST_CASE("results: nominal-only impacts have no global keys or datasets") {
  const Fitted f = MakeAsimovFit(false);
  lepus::engine::ImpactOptions io;
  io.global = false;
  const auto im = lepus::engine::ComputeImpacts(f.likelihood, f.result, io);
  ResultExtras extras;
  extras.impacts = &im;
  const Json ji =
      Json::parse(lepus::io::ResultsJson(f.likelihood, f.result, Info(), extras))["impacts"];
  CHECK(ji["has_global"] == false);
  for (const char* key :
       {"global", "grouped_global", "global_data", "global_bbstat", "global_closure"})
    CHECK_FALSE(ji.contains(key));
  CHECK(ji["grouped_nominal"]["sig0"].contains("stat"));
  CHECK_FALSE(ji["grouped_nominal"]["sig0"].contains("binByBinStat"));  // BB off
  const TempDir d("results_impacts_nominal");
  lepus::io::WriteResultsHdf5(d.File("fit.hdf5"), f.likelihood, f.result, Info(), extras);
  lepus::test::io::H5File h(d.File("fit.hdf5"));
  CHECK(h.Dims("impacts/nominal").size() == 2);
  CHECK(H5Lexists(h.id(), "impacts/global_data", H5P_DEFAULT) == 0);
}

TEST_CASE("results: scans and intervals") {
  const Fitted f = MakeAsimovFit();
  REQUIRE(f.result.ok());
  const auto& lik = f.likelihood;
  const double best = f.result.values[0], err = f.result.errors[0];
  lepus::engine::ScanOptions so;
  const auto grid = lepus::engine::LinearGrid(best - 2 * err, best + 2 * err, 5);
  const std::vector<lepus::engine::Scan1D> scans = {
      lepus::engine::ScanProfile(lik, f.result, 0, grid, so)};
  const std::vector<lepus::engine::Scan2D> scans2 = {lepus::engine::ScanProfile2D(
      lik, f.result, 0, 2, lepus::engine::LinearGrid(best - err, best + err, 3),
      lepus::engine::LinearGrid(f.result.values[2] - 1.0, f.result.values[2] + 2.0, 4), so)};
  const std::vector<lepus::engine::Interval> intervals = {
      lepus::engine::ProfileInterval(lik, f.result, 0, 0.682689492137, so),
      lepus::engine::ProfileInterval(lik, f.result, 0, 0.95, so),
      lepus::engine::ProfileInterval(lik, f.result, 3, 0.682689492137, so)};

  ResultExtras extras;
  extras.scans = &scans;
  extras.scans_2d = &scans2;
  extras.intervals = &intervals;
  const Json j = Json::parse(lepus::io::ResultsJson(lik, f.result, Info(), extras));
  REQUIRE(j["scans"].size() == 2);
  const Json& s1 = j["scans"][0];
  CHECK(s1["dimension"] == 1);
  CHECK(s1["name"] == "sig0");
  CHECK(s1["best_value"].get<double>() == best);
  CHECK(s1["hessian_error"].get<double>() == err);
  REQUIRE(s1["values"].size() == 5);
  REQUIRE(s1["dnll"].size() == 5);
  CHECK(s1["status"].size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(s1["values"][i].get<double>() == grid[i]);
    CHECK(s1["dnll"][i].get<double>() == scans[0].dnll[i]);
  }
  CHECK(std::abs(s1["dnll"][2].get<double>()) < 1e-8);  // the middle point is the best fit
  // Roughly quadratic: 2 sigma away, dnll ~ 2^2 / 2 (not exactly, the model is Poisson).
  CHECK(s1["dnll"][0].get<double>() > 1.5);
  CHECK(s1["dnll"][0].get<double>() < 3.0);

  const Json& s2 = j["scans"][1];
  CHECK(s2["dimension"] == 2);
  CHECK(s2["name_x"] == "sig0");
  CHECK(s2["name_y"] == "syst0");
  CHECK(s2["values_x"].size() == 3);
  CHECK(s2["values_y"].size() == 4);
  REQUIRE(s2["dnll"].size() == 3);  // rows over x
  REQUIRE(s2["dnll"][0].size() == 4);
  CHECK(s2["dnll"][2][1].get<double>() == scans2[0].dnll(2, 1));

  const Json& iv = j["intervals"];
  REQUIRE(iv["sig0"].size() == 2);
  CHECK(iv["sig0"][0]["cl"].get<double>() == doctest::Approx(0.682689492137));
  CHECK(iv["sig0"][0]["q"].get<double>() == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(iv["sig0"][0]["lo"].get<double>() == intervals[0].lo);
  CHECK(iv["sig0"][0]["hi"].get<double>() == intervals[0].hi);
  CHECK(iv["sig0"][0]["err_lo"].get<double>() == intervals[0].err_lo);
  CHECK(iv["sig0"][0]["err_hi"].get<double>() == intervals[0].err_hi);
  CHECK(iv["sig0"][0]["lo_found"] == true);
  CHECK(iv["sig0"][0]["hi_found"] == true);
  CHECK(iv["sig0"][0]["value"].get<double>() == best);
  CHECK(iv["sig0"][0]["hessian_error"].get<double>() == err);
  // Near-Gaussian likelihood: the 68% interval is close to the Hessian error.
  CHECK(iv["sig0"][0]["err_hi"].get<double>() == doctest::Approx(err).epsilon(0.1));
  CHECK(iv["sig0"][1]["cl"].get<double>() == 0.95);
  CHECK(iv["syst1"].size() == 1);

  const TempDir d("results_scans");
  const std::string path = d.File("scan.hdf5");
  lepus::io::WriteResultsHdf5(path, lik, f.result, Info(), extras);
  lepus::test::io::H5File h(path);
  CHECK(h.ReadDoubles("scans/sig0/values") == grid);
  CHECK(h.ReadDoubles("scans/sig0/dnll") == scans[0].dnll);
  CHECK(h.ReadVlenStrings("scans/sig0/status").size() == 5);
  CHECK(h.ReadStringAttribute("scans/sig0", "name") == "sig0");
  CHECK(h.Dims("scans/sig0__syst0/dnll") == std::vector<hsize_t>{3, 4});
  CHECK(h.ReadDoubles("scans/sig0__syst0/dnll")[2 * 4 + 1] == scans2[0].dnll(2, 1));
  CHECK(h.ReadVlenStrings("intervals/names") == std::vector<std::string>{"sig0", "sig0", "syst1"});
  CHECK(h.ReadDoubles("intervals/lo")[1] == intervals[1].lo);
  CHECK(h.ReadDoubles("intervals/hessian_error")[2] == f.result.errors[3]);
  CHECK(h.ReadInts("intervals/hi_found") == std::vector<std::int64_t>{1, 1, 1});
}

TEST_CASE("results: combinations, channel goodness of fit, correlation subset") {
  const Fitted f = MakeFit();
  REQUIRE(f.result.ok());
  const auto& lik = f.likelihood;
  const std::vector<lepus::engine::CombinationResult> combs = {
      lepus::engine::EvaluateCombination(
          lik, f.result, lepus::engine::ParseCombination(lik, "diff", "sig0 - sig1")),
      lepus::engine::EvaluateCombination(
          lik, f.result, lepus::engine::ParseCombination(lik, "mean", "(sig0 + sig1)/2"))};
  const auto gof = lepus::engine::ChannelGoodnessOfFit(lik, f.result);
  ResultExtras extras;
  extras.combinations = &combs;
  extras.channel_gof = &gof;
  extras.correlation_regex = "sig.*|syst1";
  const Json j = Json::parse(lepus::io::ResultsJson(lik, f.result, Info(), extras));

  REQUIRE(j["combinations"].size() == 2);
  const Json& c = j["combinations"][0];
  CHECK(c["name"] == "diff");
  CHECK(c["expression"] == "sig0 - sig1");
  CHECK(c["value"].get<double>() == doctest::Approx(f.result.values[0] - f.result.values[1]));
  CHECK(c["error"].get<double>() == combs[0].error);
  for (const auto& [i, rho] : combs[0].correlations)
    CHECK(c["correlations"][lik.params()[static_cast<std::size_t>(i)].name].get<double>() == rho);
  CHECK(c["correlations"].contains("syst0"));  // NOIs too

  REQUIRE(j["gof"]["channels"].size() == 1);  // the masked channel has no test
  CHECK(j["gof"]["channels"][0]["channel"] == "ch0");
  CHECK(j["gof"]["channels"][0]["ndf"] == 12);
  CHECK(j["gof"]["channels"][0]["chi2"].get<double>() == gof[0].chi2);
  CHECK(j["gof"].contains("chi2"));  // the total test stays

  const Json& corr = j["correlation"];
  CHECK(corr["names"] == Json({"sig0", "sig1", "syst1"}));
  REQUIRE(corr["matrix"].size() == 3);
  CHECK(corr["matrix"][0][0].get<double>() == doctest::Approx(1.0));
  CHECK(corr["matrix"][1][2].get<double>() == doctest::Approx(f.result.Correlation()(1, 3)));

  const TempDir d("results_comb");
  const std::string path = d.File("fit.hdf5");
  lepus::io::WriteResultsHdf5(path, lik, f.result, Info(), extras);
  lepus::test::io::H5File h(path);
  CHECK(h.ReadVlenStrings("combinations/names") == std::vector<std::string>{"diff", "mean"});
  CHECK(h.ReadVlenStrings("combinations/expressions")[1] == "(sig0 + sig1)/2");
  CHECK(h.ReadDoubles("combinations/errors")[1] == combs[1].error);
  const auto cnames = h.ReadVlenStrings("combinations/correlation_names");
  CHECK(h.Dims("combinations/correlations") == std::vector<hsize_t>{2, cnames.size()});
  CHECK(h.ReadVlenStrings("gof_channels/names") == std::vector<std::string>{"ch0"});
  CHECK(h.ReadInts("gof_channels/ndf") == std::vector<std::int64_t>{12});
  CHECK(h.ReadVlenStrings("correlation_subset/names") ==
        std::vector<std::string>{"sig0", "sig1", "syst1"});
  CHECK(h.ReadInts("correlation_subset/indices") == std::vector<std::int64_t>{0, 1, 3});
  CHECK(h.Dims("correlation_subset/matrix") == std::vector<hsize_t>{3, 3});
}

TEST_CASE("results: parameter selection errors") {
  const Fitted f = MakeFit();
  CHECK(lepus::io::SelectParameters(f.likelihood, "syst[0-2]") == std::vector<int>{2, 3, 4});
  CHECK_THROWS_WITH_AS(lepus::io::SelectParameters(f.likelihood, "("),
                       doctest::Contains("'(' is not a valid regular expression"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(lepus::io::SelectParameters(f.likelihood, "nosuch.*"),
                       doctest::Contains("pattern 'nosuch.*' matches no parameter name"),
                       std::invalid_argument);
  ResultExtras extras;
  extras.correlation_regex = "syst";  // whole-name match: nothing
  CHECK_THROWS_AS(lepus::io::ResultsJson(f.likelihood, f.result, Info(), extras),
                  std::invalid_argument);
  // Results that do not belong to the likelihood are rejected before anything is written.
  lepus::engine::Scan1D bad;
  bad.param = 99;
  const std::vector<lepus::engine::Scan1D> scans = {bad};
  ResultExtras bad_extras;
  bad_extras.scans = &scans;
  const TempDir d("results_bad");
  CHECK_THROWS_WITH_AS(
      lepus::io::WriteResultsHdf5(d.File("x.hdf5"), f.likelihood, f.result, Info(), bad_extras),
      doctest::Contains("does not belong to this likelihood"), std::invalid_argument);
  CHECK_FALSE(std::filesystem::exists(d.File("x.hdf5")));
}

TEST_CASE("results: pre- and post-fit yields with projections") {
  const Fitted f = MakeFit();
  REQUIRE(f.result.ok());
  const auto& lik = f.likelihood;
  const auto& m = lik.model();
  lepus::engine::YieldOptions yo;
  yo.full_covariance = true;
  const auto post = lepus::engine::PostfitYields(lik, f.result, yo);
  const auto pre = lepus::engine::PrefitYields(lik);  // no covariance
  const std::vector<lepus::engine::ChannelProjection> proj = {
      lepus::engine::Project(lik, post, "ch0", {"pt"}),
      lepus::engine::Project(lik, post, "ch0", {})};
  ResultExtras extras;
  extras.prefit = &pre;
  extras.postfit = &post;
  extras.postfit_projections = &proj;
  const Json j = Json::parse(lepus::io::ResultsJson(lik, f.result, Info(), extras));
  const Json& yp = j["yields"]["postfit"];
  REQUIRE(yp["channels"].size() == 2);
  CHECK(yp["channels"][0]["name"] == "ch0");
  CHECK(yp["channels"][1]["name"] == "masked");
  CHECK(yp["channels"][1]["masked"] == true);
  CHECK(yp["channels"][0]["total"].get<double>() == doctest::Approx(post.total.head(12).sum()));
  // The channel-sum error equals the projection onto no axis ... summed: sqrt(1^T Cov 1).
  const double var = post.total_covariance.topLeftCorner(12, 12).sum();
  CHECK(yp["channels"][0]["total_error"].get<double>() ==
        doctest::Approx(std::sqrt(var)).epsilon(1e-9));
  CHECK(yp["channels"][0]["processes"]["sig0"].get<double>() ==
        doctest::Approx(post.process.col(0).head(12).sum()));
  CHECK(yp["covariance"] == true);
  CHECK(yp["projections"][0]["axes"] == Json({"pt"}));
  CHECK(yp["projections"][0]["shape"] == Json({6}));
  CHECK(j["yields"]["prefit"]["covariance"] == false);
  CHECK_FALSE(j["yields"]["prefit"].contains("projections"));

  const TempDir d("results_yields");
  const std::string path = d.File("fit.hdf5");
  lepus::io::WriteResultsHdf5(path, lik, f.result, Info(), extras);
  lepus::test::io::H5File h(path);
  const auto nbf = static_cast<hsize_t>(m.nbins_full);
  const auto np = static_cast<hsize_t>(m.num_processes());
  CHECK(h.ReadVlenStrings("postfit/processes") == m.processes);
  CHECK(h.Dims("postfit/total") == std::vector<hsize_t>{nbf});
  CHECK(h.Dims("postfit/process") == std::vector<hsize_t>{nbf, np});
  CHECK(h.Dims("postfit/total_covariance") == std::vector<hsize_t>{nbf, nbf});
  CHECK(h.Dims("postfit/channels/ch0/process") == std::vector<hsize_t>{12, np});
  CHECK(h.Dims("postfit/channels/ch0/covariance") == std::vector<hsize_t>{12, 12});
  CHECK(h.Dims("postfit/channels/masked/total") == std::vector<hsize_t>{3});
  CHECK(h.ReadDoubles("postfit/channels/masked/total")[1] == post.total[13]);
  CHECK(h.ReadDoubles("postfit/channels/masked/process_error")[1 * np + 2] ==
        post.process_error(13, 2));
  CHECK(h.ReadDoubles("postfit/channels/ch0/covariance")[3 * 12 + 5] ==
        post.total_covariance(3, 5));
  CHECK(h.ReadVlenStrings("postfit/channels/ch0/axes") == std::vector<std::string>{"pt", "eta"});
  CHECK(h.ReadInts("postfit/channels/ch0/shape") == std::vector<std::int64_t>{6, 2});
  CHECK(h.ReadStringAttribute("postfit/channels/masked", "name") == "masked");
  CHECK(h.ReadDoubles("postfit/projections/ch0__pt/values").size() == 6);
  CHECK(h.ReadDoubles("postfit/projections/ch0__pt/errors")[2] == proj[0].errors[2]);
  CHECK(h.Dims("postfit/projections/ch0__pt/covariance") == std::vector<hsize_t>{6, 6});
  CHECK(h.Dims("postfit/projections/ch0__pt__eta/values") == std::vector<hsize_t>{12});
  CHECK(h.ReadDoubles("prefit/total") ==
        std::vector<double>(pre.total.data(), pre.total.data() + pre.total.size()));
  CHECK(H5Lexists(h.id(), "prefit/total_covariance", H5P_DEFAULT) == 0);
  CHECK(H5Lexists(h.id(), "prefit/projections", H5P_DEFAULT) == 0);
}

TEST_CASE("results: toy ensembles") {
  lepus::models::SyntheticSpec spec;
  spec.nbins = 8;
  spec.nsyst = 3;
  spec.nnoi = 1;
  spec.seed = 5;
  lepus::engine::LikelihoodOptions lo;
  lo.num_threads = 1;
  Likelihood lik(lepus::models::MakeSyntheticModel(spec), lo);
  lepus::engine::ToyOptions to;
  to.ntoys = 12;
  to.seed = 77;
  to.num_threads = 2;
  const lepus::engine::ToyResults toys = lepus::engine::RunToys(lik, to);
  lepus::io::RunInfo info = Info();
  info.data_label = "toys";

  const Json j = Json::parse(lepus::io::ToysJson(lik, to, toys, info));
  CHECK(j["kind"] == "toys");
  CHECK(j["ntoys"] == 12);
  CHECK(j["seed"] == 77);
  CHECK(j["mode"] == "expected");
  CHECK(j["poisson"] == true);
  CHECK(j["randomize_constraints"] == true);
  CHECK(j["converged"] == toys.converged);
  CHECK(j["converged_fraction"].get<double>() == doctest::Approx(toys.converged / 12.0));
  CHECK(j["status_counts"]["converged"] == toys.converged);
  CHECK(j["gof"]["ndf"] == toys.gof_ndf);
  CHECK(j["gof"]["mean"].get<double>() == toys.gof_mean);
  CHECK(j["gof"]["width"].get<double>() == toys.gof_width);
  REQUIRE(j["pulls"].size() == toys.pulls.size());
  REQUIRE(toys.pulls.size() == 2);  // the POI and the NOI
  CHECK(j["pulls"][0]["name"] == toys.pulls[0].name);
  CHECK(j["pulls"][0]["kind"] == "poi");
  CHECK(j["pulls"][1]["kind"] == "noi");
  CHECK(j["pulls"][0]["mean"].get<double>() == toys.pulls[0].mean);
  CHECK(j["pulls"][0]["width"].get<double>() == toys.pulls[0].width);
  CHECK(j["pulls"][0]["mean_error"].get<double>() == toys.pulls[0].mean_error);
  CHECK(j["pulls"][0]["toys"] == toys.converged);
  CHECK(j["pulls"][0]["mean_uncertainty"].get<double>() ==
        doctest::Approx(toys.pulls[0].width / std::sqrt(toys.converged)));
  CHECK(j["truth"][lik.params()[0].name].get<double>() == 1.0);
  CHECK(j["input"] == "input.hdf5");
  CHECK(j["data"] == "toys");

  const TempDir d("results_toys");
  const std::string path = d.File("toys.hdf5");
  lepus::io::WriteToysHdf5(path, lik, to, toys, info);
  lepus::test::io::H5File h(path);
  const auto np = static_cast<hsize_t>(lik.num_params());
  CHECK(h.ReadStringAttribute("/", "kind") == "toys");
  CHECK(h.ReadStringAttribute("/", "mode") == "expected");
  CHECK(Json::parse(h.ReadStringAttribute("/", "summary_json")) == j);
  CHECK(h.Dims("toys/values") == std::vector<hsize_t>{12, np});
  CHECK(h.Dims("toys/errors") == std::vector<hsize_t>{12, np});
  const auto values = h.ReadDoubles("toys/values");
  CHECK(values[3 * np + 1] == toys.values(3, 1));
  const auto status = h.ReadInts("toys/status");
  REQUIRE(status.size() == 12);
  for (std::size_t i = 0; i < 12; ++i) {
    const auto st = toys.status[i];
    CHECK(status[i] == (st == lepus::engine::FitStatus::kConverged      ? 0
                        : st == lepus::engine::FitStatus::kNotConverged ? 1
                                                                        : 2));
  }
  CHECK(h.ReadDoubles("toys/nll")[5] == toys.nll[5]);
  CHECK(h.ReadDoubles("toys/gof_chi2")[5] == toys.gof_chi2[5]);
  CHECK(h.ReadVlenStrings("pulls/names").size() == 2);
  CHECK(h.Dims("pulls/values") == std::vector<hsize_t>{12, 2});
  CHECK(h.ReadInts("pulls/toys")[1] == toys.converged);
  const auto pulls = h.ReadDoubles("pulls/values");
  if (toys.status[4] == lepus::engine::FitStatus::kConverged)
    CHECK(pulls[4 * 2 + 0] ==
          doctest::Approx((toys.values(4, 0) - toys.truth[0]) / toys.errors(4, 0)));
  CHECK(h.ReadDoubles("parameters/truth").size() == np);
}
