// Fits every input of the conformance kit (tests/data/conformance, a copy of
// ../shared/conformance) and compares with the independently computed expected.json:
// values to 1e-6 relative, Hessian errors to 1e-5 relative (the reference used finite-difference
// derivatives, see the kit's README), NLL, chi2 and ndf.
#include <cmath>
#include <fstream>
#include <string>

#include <doctest/doctest.h>
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
  lepus::engine::Likelihood lik(lepus::io::ReadFitInput(lepus::test::ConformanceDir() + "/" + file), opt);
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
    CHECK(r.errors[i] == doctest::Approx(e).epsilon(1e-5));
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
