// Results: the JSON summary (fields, kinds, NaN -> null) and the HDF5 results file layout.
#include <cmath>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "io_test_util.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/results.h"
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
