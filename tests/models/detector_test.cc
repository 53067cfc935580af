// The detector model: resolution and bias sizes of the reference, the scale-shift function the
// producers use (consistent with the generator's bias), efficiency ranges, parameter checks.
#include <cmath>
#include <stdexcept>
#include <string>

#include <doctest/doctest.h>

#include "lepus/models/detector.h"

using namespace lepus::models;

TEST_CASE("defaults are valid and invalid fields are named") {
  std::string error;
  CHECK(DetectorParams::Simulation().IsValid(&error));
  CHECK(DetectorParams::DefaultData().IsValid(&error));
  DetectorParams p;
  p.scale_bias[7].M = 0.5;
  CHECK_FALSE(p.IsValid(&error));
  CHECK(error == "scale_bias[7].M is 0.5, but must be in (-1e-3, 1e-3) / GeV");
  p = {};
  p.efficiency_variation[3].offset = -0.9;
  CHECK_FALSE(p.IsValid(&error));
  CHECK(error.find("efficiency_variation[trigger].offset is -0.9") == 0);
  CHECK_THROWS_AS(DetectorModel{p}, std::invalid_argument);
  CHECK(EfficiencyKindFromString("trigger") == EfficiencyKind::kTrigger);
  CHECK(ToString(EfficiencyKind::kIsolation) == "isolation");
}

TEST_CASE("eta bins") {
  CHECK(ScaleEtaBin(-2.4) == 0);
  CHECK(ScaleEtaBin(-2.35) == 0);
  CHECK(ScaleEtaBin(0.0) == 24);
  CHECK(ScaleEtaBin(-0.01) == 23);
  CHECK(ScaleEtaBin(2.39) == 47);
  CHECK(ScaleEtaBin(2.6) == 47);
  CHECK(ScaleEtaBin(-3.0) == 0);
  CHECK(ScaleEtaBinCenter(0) == doctest::Approx(-2.35));
}

TEST_CASE("resolution: about 1% in the barrel at 40 GeV, 2% in the endcaps") {
  const DetectorModel d(DetectorParams::Simulation());
  const double barrel = d.RelativeResolution(40, 0.0);
  const double endcap = d.RelativeResolution(40, 2.3);
  CHECK(barrel > 0.008);
  CHECK(barrel < 0.012);
  CHECK(endcap > 0.015);
  CHECK(endcap < 0.025);
  CHECK(d.RelativeResolution(100, 0.0) > barrel);
  // Smearing is on the curvature: gauss = +1 lowers the pT.
  CHECK(d.SmearPt(40, 0.0, 1, 1.0) == doctest::Approx(40 / (1 + barrel)));
  CHECK(d.SmearPt(40, 0.0, 1, 0.0) == 40.0);
}

TEST_CASE("scale shifts: the producers' function reproduces the generator's bias") {
  DetectorParams p = DetectorParams::DefaultData();
  const DetectorModel d(p);
  for (double eta : {-2.3, -1.05, 0.02, 0.9, 2.2})
    for (int q : {-1, 1})
      for (double pt : {30.0, 45.0}) {
        CAPTURE(eta);
        CAPTURE(q);
        CHECK(d.SmearPt(pt, eta, q, 0.0) ==
              doctest::Approx(ApplyScaleShift(pt, eta, q, p.scale_bias)).epsilon(1e-14));
      }
  // The hidden bias has the reference's size at W momenta: ~5e-4 central, a few 1e-3 forward.
  double central = 0, forward = 0;
  for (int i = 0; i < kScaleEtaBins; ++i) {
    const double eta = ScaleEtaBinCenter(i);
    const double size = std::max(std::abs(CurvatureShift(p.scale_bias[i], 40, 1)),
                                 std::abs(CurvatureShift(p.scale_bias[i], 40, -1)));
    if (std::abs(eta) < 0.5) central = std::max(central, size);
    if (std::abs(eta) > 2.0) forward = std::max(forward, size);
  }
  CHECK(central > 2e-4);
  CHECK(central < 1e-3);
  CHECK(forward > 1e-3);
  CHECK(forward < 5e-3);
  // Alignment-like term: charge antisymmetric, growing with pT.
  const ScaleBias m{0, 0, 1e-5};
  CHECK(CurvatureShift(m, 40, 1) == doctest::Approx(4e-4));
  CHECK(CurvatureShift(m, 40, -1) == doctest::Approx(-4e-4));
  // Energy-loss-like term: charge symmetric, larger at low pT.
  const ScaleBias e{0, 0.02, 0};
  CHECK(CurvatureShift(e, 20, 1) == doctest::Approx(-1e-3));
  CHECK(ApplyScaleShift(40, 0.3, 1, ScaleTable{}) == 40.0);
}

TEST_CASE("efficiencies: smooth, in [0, 1], data lower by per mille to percent") {
  const DetectorModel sim(DetectorParams::Simulation());
  const DetectorModel data(DetectorParams::DefaultData());
  for (int k = 0; k < kNumEfficiencyKinds; ++k) {
    const auto kind = static_cast<EfficiencyKind>(k);
    CAPTURE(ToString(kind));
    for (double eta = -2.35; eta < 2.4; eta += 0.1)
      for (double pt : {26.0, 30.0, 40.0, 55.0})
        for (int q : {-1, 1}) {
          const double es = sim.Efficiency(kind, eta, pt, q);
          const double ed = data.Efficiency(kind, eta, pt, q);
          REQUIRE(es > 0.7);
          REQUIRE(es <= 1.0);
          REQUIRE(es == DetectorModel::NominalEfficiency(kind, eta, pt, q));
          const double ratio = ed / es;
          REQUIRE(ratio > 0.97);
          REQUIRE(ratio < 1.01);
        }
  }
  // Trigger turn-on around 24 GeV.
  CHECK(sim.Efficiency(EfficiencyKind::kTrigger, 0, 20, 1) < 0.05);
  CHECK(sim.Efficiency(EfficiencyKind::kTrigger, 0, 30, 1) > 0.9);
}

TEST_CASE("prompt isolation: pass below the cut, fail above, mean about 0.04 overall") {
  const DetectorModel d(DetectorParams::Simulation());
  double sum = 0;
  const int n = 10000;
  for (int i = 0; i < n; ++i) {
    const double u = (i + 0.5) / n;
    const double pass = d.PromptIsolation(true, u);
    const double fail = d.PromptIsolation(false, u);
    REQUIRE(pass >= 0.0);
    REQUIRE(pass < kIsoCut);
    REQUIRE(fail >= kIsoCut);
    sum += 0.95 * pass + 0.05 * fail;
  }
  CHECK(sum / n > 0.03);
  CHECK(sum / n < 0.06);
}
