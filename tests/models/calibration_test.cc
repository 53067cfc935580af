// Momentum calibration: the synthetic default, the eigen-decomposition into nuisances (covariance
// reproduced, locality of block-diagonal covariances), the documented signs of the pT shifts,
// data correction, the JSON file (round trip, schema version and key errors).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/io/errors.h"
#include "lepus/models/calibration.h"
#include "test_support.h"

namespace {

using namespace lepus::models;

Eigen::MatrixXd SumOfOuterProducts(const std::vector<MomentumNuisance>& nus, int num_bins) {
  Eigen::MatrixXd s = Eigen::MatrixXd::Zero(3 * num_bins, 3 * num_bins);
  for (const MomentumNuisance& n : nus) {
    if (n.kind != MomentumNuisanceKind::kCalibrationStat) continue;
    Eigen::VectorXd v = Eigen::VectorXd::Zero(3 * num_bins);
    for (int b = n.first_bin; b <= n.last_bin; ++b) {
      const ScaleBias& x = n.shift[b - n.first_bin];
      v(3 * b) = x.A;
      v(3 * b + 1) = x.e;
      v(3 * b + 2) = x.M;
    }
    s += v * v.transpose();
  }
  return s;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("the synthetic calibration is valid with realistic uncertainties") {
  const CalibrationParameters c = SyntheticCalibration();
  std::string error;
  CHECK(c.IsValid(&error));
  CHECK(c.num_bins() == 48);
  CHECK(c.covariance.rows() == 144);
  for (int b = 0; b < 48; ++b) {
    CHECK(c.Uncertainty(b, 0) >= 1e-4);
    CHECK(c.Uncertainty(b, 0) <= 5e-4);
  }
  CHECK(c.Uncertainty(0, 0) > 4 * c.Uncertainty(24, 0));
  // Central values: the default data truth.
  const ScaleTable truth = DetectorParams::DefaultData().scale_bias;
  for (int b = 0; b < 48; ++b) CHECK(c.params[b].A == truth[b].A);
  // A seed fluctuates the centre by about the uncertainty.
  SyntheticCalibrationOptions o;
  o.seed = 5;
  const CalibrationParameters f = SyntheticCalibration(o);
  double chi2 = 0;
  for (int b = 0; b < 48; ++b)
    chi2 += std::pow((f.params[b].A - truth[b].A) / c.Uncertainty(b, 0), 2);
  CHECK(chi2 > 15);
  CHECK(chi2 < 90);
}

TEST_CASE(
    "calibration nuisances reproduce the scaled covariance and are local for a block-diagonal "
    "one") {
  const CalibrationParameters c = SyntheticCalibration();
  const std::vector<MomentumNuisance> nus = MomentumNuisances(c);
  CHECK(nus.size() == 144);
  for (const MomentumNuisance& n : nus) {
    CHECK(n.first_bin == n.last_bin);
    CHECK(n.group == "muonScale");
  }
  const Eigen::MatrixXd s = SumOfOuterProducts(nus, 48);
  const Eigen::MatrixXd expected = 2.1 * 2.1 * c.covariance;
  CHECK(lepus::test::MaxRelDiff(s, expected, 1e-6 * expected.cwiseAbs().maxCoeff()) < 1e-9);
  // Ordering within a block: decreasing size.
  CHECK(nus[0].shift[0].e != 0.0);
  const auto by_bin = NuisancesByEtaBin(nus, 48);
  for (int b = 0; b < 48; ++b) {
    CHECK(by_bin[b].size() == 3);
    for (int k : by_bin[b]) CHECK(nus[k].Touches(b));
  }
  MomentumNuisanceOptions o;
  o.stat_scale = 1.0;
  const Eigen::MatrixXd s1 = SumOfOuterProducts(MomentumNuisances(c, o), 48);
  CHECK(lepus::test::MaxRelDiff(s1, c.covariance, 1e-6 * c.covariance.cwiseAbs().maxCoeff()) <
        1e-9);
}

TEST_CASE("a correlated covariance gives dense nuisances that still reproduce it") {
  CalibrationParameters c = SyntheticCalibration();
  // Correlate neighbouring bins' A (as a J/psi fit over pairs of muons would).
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g;
  Eigen::MatrixXd l = Eigen::MatrixXd::Zero(144, 144);
  for (int i = 0; i < 144; ++i) {
    for (int j = std::max(0, i - 6); j < i; ++j) l(i, j) = 0.3 * g(rng);
    l(i, i) = 1.0;  // well conditioned: every direction keeps a nuisance
  }
  Eigen::VectorXd scale(144);
  for (int i = 0; i < 144; ++i) scale(i) = std::sqrt(c.covariance(i, i));
  c.covariance = scale.asDiagonal() * (l * l.transpose()) * scale.asDiagonal();
  const std::vector<MomentumNuisance> nus = MomentumNuisances(c);
  CHECK(nus.size() == 144);
  CHECK(nus[0].first_bin == 0);
  CHECK(nus[0].last_bin == 47);
  const Eigen::MatrixXd s = SumOfOuterProducts(nus, 48);
  CHECK(lepus::test::MaxRelDiff(s, 4.41 * c.covariance,
                                1e-8 * 4.41 * c.covariance.cwiseAbs().maxCoeff()) < 1e-6);

  // Not positive semi-definite.
  c.covariance(0, 1) = c.covariance(1, 0) = 10 * std::sqrt(c.covariance(0, 0) * c.covariance(1, 1));
  CHECK_THROWS_WITH_AS(MomentumNuisances(c), doctest::Contains("positive semi-definite"),
                       std::invalid_argument);
}

TEST_CASE("pT shifts follow the documented sign conventions") {
  MomentumNuisance n;
  n.first_bin = n.last_bin = 10;
  const double pt = 40.0;
  n.shift = {ScaleBias{1e-3, 0, 0}};
  CHECK(n.ShiftedPt(10, pt, +1) < pt);  // dA > 0 lowers pT for both charges
  CHECK(n.ShiftedPt(10, pt, -1) < pt);
  CHECK(n.ShiftedPt(10, pt, +1, -1) > pt);
  CHECK(n.CurvatureShift(10, pt, +1) == doctest::Approx(1e-3));
  CHECK(n.ShiftedPt(11, pt, +1) == pt);  // other bins untouched
  n.shift = {ScaleBias{0, 0.01, 0}};
  CHECK(n.ShiftedPt(10, pt, +1) > pt);  // de > 0 raises pT, more at low pT
  CHECK(n.ShiftedPt(10, 10.0, +1) / 10.0 > n.ShiftedPt(10, pt, +1) / pt);
  n.shift = {ScaleBias{0, 0, 1e-5}};
  CHECK(n.ShiftedPt(10, pt, +1) < pt);  // dM > 0: mu+ down, mu- up
  CHECK(n.ShiftedPt(10, pt, -1) > pt);
  CHECK(n.CurvatureShift(10, pt, -1) == doctest::Approx(-1e-5 * pt));
  // Consistent with the detector's ApplyScaleShift through ToScaleTable.
  n.shift = {ScaleBias{3e-4, 2e-3, -4e-6}};
  const ScaleTable table = n.ToScaleTable();
  const double eta = ScaleEtaBinCenter(10);
  for (int q : {-1, 1})
    CHECK(ApplyScaleShift(pt, eta, q, table) ==
          doctest::Approx(n.ShiftedPt(10, pt, q)).epsilon(1e-15));
  // Relative pT shift is -dk/k to first order.
  const double rel = n.ShiftedPt(10, pt, 1) / pt - 1.0;
  CHECK(rel == doctest::Approx(-n.CurvatureShift(10, pt, 1)).epsilon(1e-3));
}

TEST_CASE("data correction undoes the measured bias") {
  const CalibrationParameters c = SyntheticCalibration();
  const DetectorModel data(DetectorParams::DefaultData());
  for (double eta : {-2.3, -0.05, 1.1, 2.35})
    for (double pt : {30.0, 45.0})
      for (int q : {-1, 1}) {
        const double measured = ApplyScaleShift(pt, eta, q, data.params().scale_bias);
        const double corrected = c.CorrectPt(eta, measured, q);
        CHECK(std::abs(corrected / pt - 1.0) < 1e-5);  // second order in a few 1e-3
        CHECK(std::abs(corrected / pt - 1.0) < 0.1 * std::abs(measured / pt - 1.0) + 1e-12);
      }
}

TEST_CASE("calibration JSON round trip and errors") {
  SyntheticCalibrationOptions o;
  o.seed = 9;
  CalibrationParameters c = SyntheticCalibration(o);
  c.closure.per_bin.assign(48, ScaleBias{1e-4, 0.0, 1e-6});
  c.resolution_uncertainty.assign(48, 0.02);
  const std::string path = lepus::test::TempPath("calibration", ".json");
  WriteCalibration(path, c);
  const CalibrationParameters r = ReadCalibration(path);
  CHECK(r.num_bins() == 48);
  for (int b = 0; b < 48; ++b) {
    CHECK(r.params[b].A == c.params[b].A);
    CHECK(r.params[b].e == c.params[b].e);
    CHECK(r.params[b].M == c.params[b].M);
    CHECK(r.eta_edges[b] == c.eta_edges[b]);
  }
  CHECK((r.covariance - c.covariance).cwiseAbs().maxCoeff() == 0.0);
  CHECK(r.description == c.description);
  CHECK(r.closure.per_bin.size() == 48);
  CHECK(r.resolution_uncertainty.size() == 48);
  const std::vector<MomentumNuisance> nus = MomentumNuisances(r);
  CHECK(nus.size() == 144 + 48 + 48);
  CHECK(nus[144].name == "muonScaleClosure_eta0");
  CHECK(nus[144 + 48].group == "muonResolution");
  MomentumNuisanceOptions no;
  no.closure = no.resolution = false;
  CHECK(MomentumNuisances(r, no).size() == 144);

  const std::string text = Slurp(path);
  std::remove(path.c_str());
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const auto pos = t.find(from);
    REQUIRE(pos != std::string::npos);
    t.replace(pos, from.size(), to);
    return t;
  };
  using lepus::io::InputError;
  CHECK(text.find("\"schema_version\": 1") != std::string::npos);  // no version-2 content
  CHECK(text.find("closure_global") == std::string::npos);
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(replaced("\"schema_version\": 1", "\"schema_version\": 4"), "f.json"),
      doctest::Contains("f.json: schema_version is 4, but this lepus reads versions 1 to 3 "
                        "(the file is newer: update lepus)"),
      InputError);
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(
          replaced("\"covariance\"",
                   "\"closure_global\": {\"A\": 2e-5, \"e\": 0, \"M\": 0}, \"covariance\""),
          "f.json"),
      doctest::Contains(
          "f.json: \"closure_global\" needs schema_version >= 2, but the file declares version 1"),
      InputError);
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(replaced("\"schema_version\"", "\"schema_versio\""), "f.json"),
      doctest::Contains("unknown key \"schema_versio\""), InputError);
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(replaced("\"eta_edges\": [", "\"eta_edges\": [-2.5, "), "f.json"),
      doctest::Contains("\"A\" has 48 entries, but must have one per eta bin (49)"), InputError);
  CHECK_THROWS_WITH_AS(CalibrationFromJson(replaced("\"A\": [", "\"A\": [\"x\", "), "f.json"),
                       doctest::Contains("\"A\"[0] is string, but must be a number"), InputError);
  CHECK_THROWS_WITH_AS(CalibrationFromJson("{\"schema\": \"lepus-muon-calibration\"}", "f.json"),
                       doctest::Contains("missing key \"schema_version\""), InputError);
  CHECK_THROWS_WITH_AS(CalibrationFromJson("{not json", "f.json"),
                       doctest::Contains("f.json: not valid JSON"), InputError);
  // A number beyond double's range (found by the config_json fuzz target; was uncaught).
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson("{\"A\": [1e400]}", "f.json"),
      doctest::Contains("f.json: a number is beyond the range of a double (at most 1.8e308 "
                        "in magnitude): [json.exception.out_of_range.406] "
                        "number overflow parsing '1e400'"),
      InputError);
  CHECK_THROWS_WITH_AS(ReadCalibration("/nonexistent/cal.json"), doctest::Contains("cannot open"),
                       InputError);
}

TEST_CASE("calibration schema 2: the global closure term") {
  CalibrationParameters c = SyntheticCalibration();
  c.closure.per_bin.assign(48, ScaleBias{1e-4, 0.0, 1e-6});
  c.closure.global = ScaleBias{2.1e-3 / 91.1876, 0.0, 0.0};  // LEP: 2.1 MeV on m_Z
  const std::string path = lepus::test::TempPath("calibration_v2", ".json");
  WriteCalibration(path, c);
  const std::string text = Slurp(path);
  CHECK(text.find("\"schema_version\": 2") != std::string::npos);
  const CalibrationParameters r = ReadCalibration(path);
  std::remove(path.c_str());
  CHECK(r.schema_version == 2);
  CHECK(r.closure.global.A == c.closure.global.A);
  CHECK(r.closure.global.e == 0.0);
  const std::vector<MomentumNuisance> nus = MomentumNuisances(r);
  REQUIRE(nus.size() == 144 + 48 + 1);
  const MomentumNuisance& g = nus[144 + 48];
  CHECK(g.name == "muonScaleClosureGlobal");
  CHECK(g.group == "muonScale");
  CHECK(g.kind == MomentumNuisanceKind::kClosure);
  CHECK(g.first_bin == 0);
  CHECK(g.last_bin == 47);
  CHECK(g.CurvatureShift(30, 40.0, -1) == doctest::Approx(c.closure.global.A));
  MomentumNuisanceOptions no;
  no.closure = false;
  CHECK(MomentumNuisances(r, no).size() == 144);
  // Invalid values are named.
  c.closure.global.M = NAN;
  std::string e;
  CHECK_FALSE(c.IsValid(&e));
  CHECK(e == "calibration: closure_global.M is nan, but must be finite");
}

TEST_CASE("invalid calibrations are named") {
  CalibrationParameters c = SyntheticCalibration();
  std::string error;
  c.covariance(3, 4) += 1e-3;
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("covariance[4][3]") != std::string::npos);
  c = SyntheticCalibration();
  c.eta_edges[5] = c.eta_edges[4];
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("eta_edges[5] is") != std::string::npos);
  c = SyntheticCalibration();
  c.params[2].M = NAN;
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("M[2] is nan, but must be finite") != std::string::npos);
  MomentumNuisanceOptions o;
  o.stat_scale = 0;
  CHECK_THROWS_WITH_AS(MomentumNuisances(SyntheticCalibration(), o),
                       doctest::Contains("stat_scale is 0"), std::invalid_argument);
}

TEST_CASE("momentum nuisance option defaults are valid") {
  std::string error;
  const MomentumNuisanceOptions o;
  CHECK(o.IsValid(&error));
  CHECK(o.stat_scale == 2.1);
}

TEST_CASE("calibration status: a failed or all-zero calibration is written but never used") {
  using lepus::io::InputError;
  // A failed fit (what CalibrateJpsi returns when Ceres stops early) is written with its status
  // in schema version 3.
  CalibrationParameters failed = SyntheticCalibration();
  failed.status = "not_converged";
  failed.status_message = "Ceres did not converge: Maximum number of iterations reached.";
  const std::string path = lepus::test::TempPath("calibration_failed", ".json");
  WriteCalibration(path, failed);
  const std::string text = Slurp(path);
  CHECK(text.find("\"schema_version\": 3") != std::string::npos);
  CHECK(text.find("\"status\": \"not_converged\"") != std::string::npos);
  CHECK_THROWS_WITH_AS(
      ReadCalibration(path),
      doctest::Contains((path + ": status is \"not_converged\" (Ceres did not converge: Maximum "
                                "number of iterations reached.), but must be \"converged\"")
                            .c_str()),
      InputError);
  const CalibrationParameters back = ReadCalibration(path, CalibrationCheck::kStructure);
  CHECK(back.status == "not_converged");
  CHECK(back.status_message == failed.status_message);
  CHECK(back.schema_version == 3);
  std::string error;
  CHECK_FALSE(back.IsUsable(&error));
  std::remove(path.c_str());

  // A converged calibration has no status key: byte-compatible with older lepus (version 1).
  const std::string good = CalibrationToJson(SyntheticCalibration());
  CHECK(good.find("\"status\"") == std::string::npos);
  CHECK(good.find("\"schema_version\": 1") != std::string::npos);
  CHECK(CalibrationFromJson(good, "g.json").status == "converged");

  // An explicit "converged" status (version 3) is fine; an unknown one or an old version is not.
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const auto pos = t.find(from);
    REQUIRE(pos != std::string::npos);
    t.replace(pos, from.size(), to);
    return t;
  };
  CHECK(CalibrationFromJson(
            with("\"schema_version\": 1,", "\"schema_version\": 3, \"status\": \"converged\","),
            "g.json")
            .status == "converged");
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(
          with("\"schema_version\": 1,", "\"schema_version\": 3, \"status\": \"maybe\","),
          "g.json"),
      doctest::Contains("g.json: calibration: status is \"maybe\", but must be \"converged\", "
                        "\"not_converged\" or \"covariance_failed\""),
      InputError);
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(
          with("\"schema_version\": 1,", "\"schema_version\": 2, \"status\": \"converged\","),
          "g.json"),
      doctest::Contains(
          "g.json: \"status\" needs schema_version >= 3, but the file declares version 2"),
      InputError);

  // All-zero: what a failed fit of an older lepus wrote (no status key).
  CalibrationParameters zero = SyntheticCalibration();
  for (auto& p : zero.params) p = ScaleBias{};
  zero.covariance.setZero();
  const std::string zpath = lepus::test::TempPath("calibration_zero", ".json");
  WriteCalibration(zpath, zero);
  CHECK_THROWS_WITH_AS(ReadCalibration(zpath),
                       doctest::Contains((zpath + ": covariance is all zero on its diagonal (144 "
                                                  "parameters), but must have at least one "
                                                  "positive variance")
                                             .c_str()),
                       InputError);
  CHECK_NOTHROW(ReadCalibration(zpath, CalibrationCheck::kStructure));
  std::remove(zpath.c_str());
}
