// Fits every input of the conformance kit (tests/data/conformance, a copy of
// ../shared/conformance) and compares with the independently computed expected.json: values to
// 1e-6 relative, NLL and chi2 to 1e-8, ndf exactly, errors to 5e-5 relative.
//
// Why 5e-5 for the errors: the reference computed its Hessian by finite differences (kit README:
// "~1e-5 relative in errors is what to expect"). Its errors are systematically larger than the
// exact ones, by 1.4e-6 .. 2.3e-5 relative on sym_poi (syst5 is the worst case, measured
// 0.9405686 here vs 0.9405903 there). Our own errors are pinned much tighter by a second check
// below: they must equal the errors from a central finite-difference Hessian of the loaded model
// at the minimum to 1e-6.
#include <cmath>
#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/reader.h"
#include "test_support.h"

namespace {

nlohmann::json Expected() {
  std::ifstream in(lepus::test::ConformanceDir() + "/expected.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

void CheckCase(const std::string& file) {
  CAPTURE(file);
  const nlohmann::json exp = Expected().at(file);
  lepus::engine::LikelihoodOptions opt;
  for (const auto& o : exp.at("options"))
    if (o.get<std::string>() == "--no-bbstat") opt.bin_by_bin_stat = false;
  lepus::engine::Likelihood lik(lepus::io::ReadFitInput(lepus::test::ConformanceDir() + "/" + file),
                                opt);
  const lepus::engine::FitResult r = lepus::engine::Fit(lik);
  REQUIRE(r.status == lepus::engine::FitStatus::kConverged);
  REQUIRE(r.covariance_status == lepus::engine::CovarianceStatus::kAccurate);
  REQUIRE(static_cast<int>(exp.at("parameters").size()) == lik.num_params());
  for (const auto& p : exp.at("parameters")) {
    const std::string name = p.at("name");
    CAPTURE(name);
    const int i = lik.FindParam(name);
    REQUIRE(i >= 0);
    const double v = p.at("value"), e = p.at("error");
    // Values: 1e-6 relative to the value, or to the uncertainty for values near zero.
    CHECK(std::abs(r.values[i] - v) <= 1e-6 * std::max(std::abs(v), e));
    CHECK(r.errors[i] == doctest::Approx(e).epsilon(5e-5));
  }
  // Independent check of the analytic Hessian on this very input: central differences of the
  // gradient (step 1e-5; the gradient itself is checked against NLL differences in
  // tests/engine). Second differences of the NLL with a 1e-3 step are not accurate enough here:
  // the sextic asymmetric interpolation has large higher derivatives (truncation error 4e-4 on
  // asym_noi, falling as step^2).
  const int n = lik.num_params();
  const double h = 1e-5;
  Eigen::MatrixXd hfd(n, n);
  for (int j = 0; j < n; ++j) {
    Eigen::VectorXd a = r.x, b = r.x, ga, gb;
    a[j] += h;
    b[j] -= h;
    lik.ValueAndGradient(a, &ga);
    lik.ValueAndGradient(b, &gb);
    hfd.col(j) = (ga - gb) / (2 * h);
  }
  const Eigen::MatrixXd cfd = hfd.inverse();
  for (int i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(r.errors[i] == doctest::Approx(std::sqrt(cfd(i, i))).epsilon(1e-6));
  }
  CHECK(r.nll == doctest::Approx(exp.at("nll").get<double>()).epsilon(1e-8));
  CHECK(r.gof_chi2 == doctest::Approx(exp.at("chi2").get<double>()).epsilon(1e-8));
  CHECK(r.gof_ndf == exp.at("ndf").get<int>());
}

}  // namespace

TEST_CASE("conformance: sym_poi_dense.hdf5") { CheckCase("sym_poi_dense.hdf5"); }
TEST_CASE("conformance: sym_poi_sparse.hdf5") { CheckCase("sym_poi_sparse.hdf5"); }
TEST_CASE("conformance: bblite_mixed_masked.hdf5") { CheckCase("bblite_mixed_masked.hdf5"); }
TEST_CASE("conformance: asym_noi_dense.hdf5") { CheckCase("asym_noi_dense.hdf5"); }
TEST_CASE("conformance: asym_noi_sparse.hdf5") { CheckCase("asym_noi_sparse.hdf5"); }

TEST_CASE("conformance: dense and sparse storage of the same model give identical fits") {
  for (const char* stem : {"sym_poi", "asym_noi"}) {
    CAPTURE(stem);
    const std::string dir = lepus::test::ConformanceDir() + "/";
    lepus::engine::LikelihoodOptions opt;
    opt.bin_by_bin_stat = std::string(stem) != "sym_poi";
    lepus::engine::Likelihood ld(lepus::io::ReadFitInput(dir + stem + "_dense.hdf5"), opt);
    lepus::engine::Likelihood ls(lepus::io::ReadFitInput(dir + stem + "_sparse.hdf5"), opt);
    const auto rd = lepus::engine::Fit(ld), rs = lepus::engine::Fit(ls);
    REQUIRE(rd.ok());
    REQUIRE(rs.ok());
    CHECK(lepus::test::MaxRelDiff(rd.values, rs.values, 1e-12) < 1e-10);
    CHECK(lepus::test::MaxRelDiff(rd.covariance, rs.covariance, 1e-14) < 1e-10);
    CHECK(rd.nll == doctest::Approx(rs.nll).epsilon(1e-12));
  }
}
