// Template statistics (docs/producers.md, "Template statistics"): the expected attenuation of a
// fitted mass shift (EstimateMassAttenuation) on a toy with a known answer and against toy fits
// with noisy templates (errors in variables), the producer's estimate per mass-like parameter,
// and the recentred mass templates (WMassConfig::mass_center_mev): the default centre gives the
// default fit input, a recentred input describes the default's pseudo-data at the new centre
// with a shift of zero.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/wmass.h"

using namespace lepus;
using namespace lepus::models;

namespace {

// A small W-like configuration (wlike_test.cc): 24 eta bins, 1 M simulated Z events.
WMassConfig SmallWLike(std::uint64_t events = 1000000) {
  WMassConfig c = WMassConfig::WLikeLight();
  c.eta_bins = 24;
  c.simulation.events = events;
  c.luminosity_pb = 200.0;
  c.chunk_events = 32768;
  return c;
}

int Column(const engine::Model& m, const std::string& name) {
  const auto it = std::find(m.pseudodata_names.begin(), m.pseudodata_names.end(), name);
  REQUIRE(it != m.pseudodata_names.end());
  return static_cast<int>(it - m.pseudodata_names.begin());
}

int ProcessIndex(const engine::Model& m, const std::string& name) {
  const auto it = std::find(m.processes.begin(), m.processes.end(), name);
  REQUIRE(it != m.processes.end());
  return static_cast<int>(it - m.processes.begin());
}

// The NOI (MeV) fitted to a data set.
double FitNoi(const engine::Model& model, const Eigen::VectorXd& data, const std::string& noi) {
  engine::Likelihood lik{engine::Model(model)};
  lik.SetData(data);
  const engine::FitResult r = engine::Fit(lik);
  REQUIRE(r.ok());
  return 100.0 * r.values[lik.FindParam(noi)];
}

bool SameBits(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

bool SameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

}  // namespace

TEST_CASE("Attenuation: the estimate of a toy with a known answer") {
  // 100 bins, d = 2, s^2 = 0.5, V = 10: F = 100 (4 - 0.5) / 10 = 35, N = 100 x 0.5 / 10 = 5.
  const std::vector<double> d(100, 2.0), s2(100, 0.5), v(100, 10.0);
  const MassAttenuation a = EstimateMassAttenuation("m", d, s2, v);
  REQUIRE(a.determined);
  CHECK(a.information == doctest::Approx(35.0));
  CHECK(a.noise == doctest::Approx(5.0));
  CHECK(a.r == doctest::Approx(5.0 / 35.0));
  CHECK(a.slope == doctest::Approx(1.0 / (1.0 + 5.0 / 35.0)));
  // Coefficients: a parameter of half the bins (separate) and a difference parameter
  // (+-1/2) see the same ratio here; bins with V <= 0 are skipped.
  std::vector<double> half(100, 0.0), diff(100, 0.5);
  for (int b = 0; b < 50; ++b) half[b] = 1.0, diff[b] = -0.5;
  CHECK(EstimateMassAttenuation("h", d, s2, v, half).r == doctest::Approx(a.r));
  CHECK(EstimateMassAttenuation("d", d, s2, v, diff).information == doctest::Approx(35.0 / 4));
  std::vector<double> v0 = v;
  v0[3] = 0.0;
  CHECK(EstimateMassAttenuation("z", d, s2, v0).noise == doctest::Approx(4.95));
  // A template no larger than its noise: not determined, never a confident number.
  const MassAttenuation bad = EstimateMassAttenuation("b", std::vector<double>(100, 0.5), s2, v);
  CHECK_FALSE(bad.determined);
  CHECK(std::isnan(bad.slope));
  CHECK_THROWS_AS(EstimateMassAttenuation("x", d, s2, std::vector<double>(99, 1.0)),
                  std::invalid_argument);
}

TEST_CASE("Attenuation: toy fits with noisy templates respond with the estimated slope") {
  // Errors in variables, brute force: per toy a simulation of Poisson-many events per bin, each
  // with weight w and a mass weight derivative delta (its bin's mean plus event-to-event spread);
  // the template d^ = sum w delta and its variance sum (w delta)^2 (as the producer fills them).
  // Asimov data at a true shift theta (no data noise) fitted by weighted least squares with the
  // noisy template: theta^ = sum d^ (x - n) / V / sum d^2 / V. Its mean response over toys must
  // equal the mean estimated slope 1 / (1 + r).
  std::mt19937_64 rng(12345);
  const int nbins = 200, toys = 200;
  const double w = 0.2;  // simulation weight: 5 simulated events per expected event
  std::vector<double> mean_delta(nbins), expected(nbins), truth(nbins);
  for (int b = 0; b < nbins; ++b) {
    expected[b] = 200.0 + 100.0 * std::sin(0.05 * b);  // data expectation per bin
    mean_delta[b] = 0.02 * std::cos(0.11 * b);         // true derivative per event
    truth[b] = expected[b] * mean_delta[b];            // the true template d
  }
  // Event-to-event spread of delta (the reweighting's noise): r = w (mu^2 + spread^2) / (V mu^2)
  // per bin, about 0.45 here.
  const double spread = 0.3;
  const double theta = 1.0;
  double response = 0.0, slope = 0.0;
  for (int t = 0; t < toys; ++t) {
    std::vector<double> d(nbins, 0.0), s2(nbins, 0.0), v(nbins);
    for (int b = 0; b < nbins; ++b) {
      std::poisson_distribution<int> pois(expected[b] / w);
      std::normal_distribution<double> gauss(mean_delta[b], spread);
      const int n = pois(rng);
      for (int e = 0; e < n; ++e) {
        const double x = w * gauss(rng);
        d[b] += x;
        s2[b] += x * x;
      }
      v[b] = expected[b];
    }
    double num = 0.0, den = 0.0;
    for (int b = 0; b < nbins; ++b) {
      num += d[b] * theta * truth[b] / v[b];
      den += d[b] * d[b] / v[b];
    }
    response += num / den / theta;
    const MassAttenuation a = EstimateMassAttenuation("toy", d, s2, v);
    REQUIRE(a.determined);
    slope += a.slope;
  }
  response /= toys;
  slope /= toys;
  // The toy is set up for a sizeable attenuation (a test that can fail).
  CHECK(slope < 0.8);
  CHECK(slope > 0.4);
  CHECK(response == doctest::Approx(slope).epsilon(0.02));
}

TEST_CASE(
    "Attenuation: the producer's estimate per mass-like parameter falls with the simulation") {
  const WMassProduction small = ProduceWMass(SmallWLike(500000), ProduceOptions{2, {}});
  const WMassProduction large = ProduceWMass(SmallWLike(2000000), ProduceOptions{2, {}});
  REQUIRE(small.summary.attenuation.size() == 1);
  REQUIRE(large.summary.attenuation.size() == 1);
  const MassAttenuation& s = small.summary.attenuation[0];
  const MassAttenuation& l = large.summary.attenuation[0];
  CHECK(s.parameter == kWLikeNoi);
  REQUIRE(s.determined);
  REQUIRE(l.determined);
  CHECK(s.slope < l.slope);
  CHECK(l.slope < 1.0);
  // r ~ noise / information ~ 1 / N_sim: four times the simulation, a quarter of r.
  CHECK(s.r / l.r == doctest::Approx(4.0).epsilon(0.2));
  const std::string report = small.summary.Report();
  CHECK(report.find("attenuation " + std::string(kWLikeNoi)) != std::string::npos);
  // Above 5% the summary warns with the advice.
  const bool warned = std::any_of(
      small.summary.warnings.begin(), small.summary.warnings.end(),
      [](const std::string& w) { return w.find("more simulated events") != std::string::npos; });
  CHECK(warned == (1.0 - s.slope > kAttenuationWarning));
  CHECK(small.summary.MetadataJson().empty());  // default centre: no producer metadata

  // Split masses: one estimate per parameter. A charge half has about the r of the whole (its
  // noise and its information are both about half).
  WMassConfig c = SmallWLike(500000);
  c.mass_split = MassSplitConfig::FromSpec("charge");
  const WMassProduction split = ProduceWMass(c, ProduceOptions{2, {}});
  REQUIRE(split.summary.attenuation.size() == 2);
  for (const MassAttenuation& a : split.summary.attenuation) {
    REQUIRE(a.determined);
    CHECK(a.r / s.r == doctest::Approx(1.0).epsilon(0.2));
  }
}

TEST_CASE("Mass centre: the simulation's mass gives the default input, and values are checked") {
  WMassConfig c = SmallWLike(300000);
  const WMassProduction def = ProduceWMass(c, ProduceOptions{2, {}});
  // The centre as --print-config writes it (the simulation's m_Z in MeV, read back).
  WMassConfig same = WMassConfigFromJson(c.ToJson(), "print-config", WMassAnalysis::kWLike);
  REQUIRE(same.mass_center_mev == doctest::Approx(c.SimulationMassMev()));
  CHECK(same.MassCenterShiftMev() == 0.0);
  const WMassProduction again = ProduceWMass(same, ProduceOptions{2, {}});
  CHECK(SameBits(def.model.sumw, again.model.sumw));
  CHECK(SameBits(def.model.sumw2, again.model.sumw2));
  CHECK(SameBits(def.model.pseudodata, again.model.pseudodata));
  CHECK(SameBits(def.model.data_obs, again.model.data_obs));
  CHECK(SameBits(def.model.tensor.logk_avg, again.model.tensor.logk_avg));
  CHECK(SameBits(def.model.tensor.logk_halfdiff, again.model.tensor.logk_halfdiff));
  CHECK(def.model.tensor.syst == again.model.tensor.syst);
  CHECK(again.summary.MetadataJson().empty());

  std::string error;
  WMassConfig bad = c;
  bad.mass_center_mev = c.SimulationMassMev() + 1500.0;
  CHECK_FALSE(bad.IsValid(&error));
  CHECK(error.find("mass.center_mev is") != std::string::npos);
  CHECK(error.find("within 1000 MeV of the simulation's m_Z") != std::string::npos);
  CHECK_THROWS_WITH_AS(
      WMassConfigFromJson(
          R"({"lepus_config_version": 1, "systematics": {"mass": {"center_mev": -5}}})", "cfg.json",
          WMassAnalysis::kWLike),
      doctest::Contains("cfg.json: systematics.mass.center_mev is -5"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      WMassConfigFromJson(
          R"({"lepus_config_version": 1, "systematics": {"mass": {"center_mev": "91200"}}})",
          "cfg.json", WMassAnalysis::kWLike),
      doctest::Contains("must be a number"), std::invalid_argument);
}

TEST_CASE("Mass centre: a recentred input sees the default's +30 MeV pseudo-data at zero shift") {
  const WMassConfig c = SmallWLike(1000000);
  WMassConfig rc = c;
  rc.mass_center_mev = c.SimulationMassMev() + 30.0;
  const WMassProduction def = ProduceWMass(c, ProduceOptions{2, {}});
  const WMassProduction cen = ProduceWMass(rc, ProduceOptions{2, {}});
  CHECK(cen.summary.mass_center_mev == doctest::Approx(c.SimulationMassMev() + 30.0));
  const std::string meta = cen.summary.MetadataJson();
  CHECK(meta.find("\"mass_center_mev\"") != std::string::npos);
  CHECK(meta.find("\"attenuation\"") != std::string::npos);
  // The recentred Zmumu nominal is the default's Zmumu at +30 MeV (the same reweighting of the
  // same events): the pseudo-data differ only by Z -> tau tau, which the recentring moves too.
  const engine::Model& d = def.model;
  const engine::Model& r = cen.model;
  const int zt_d = ProcessIndex(d, "Ztautau"), zt_r = ProcessIndex(r, "Ztautau");
  const Eigen::VectorXd def_p30 = d.pseudodata.col(Column(d, "mass_shift_p30MeV"));
  const Eigen::VectorXd cen_0 = r.pseudodata.col(Column(r, "mass_shift_0MeV"));
  const Eigen::VectorXd zmumu_def = def_p30 - d.sumw.col(zt_d).head(d.nbins);
  const Eigen::VectorXd zmumu_cen = cen_0 - r.sumw.col(zt_r).head(r.nbins);
  REQUIRE(zmumu_def.size() == zmumu_cen.size());
  double worst = 0.0;
  for (Eigen::Index b = 0; b < zmumu_def.size(); ++b)
    worst = std::max(
        worst, std::abs(zmumu_cen[b] - zmumu_def[b]) / std::max(1e-12, std::abs(zmumu_def[b])));
  CHECK(worst < 1e-9);
  // The data are the same (their truth is relative to the simulation, not the centre).
  CHECK(SameBits(d.data_obs, r.data_obs));
  // Fitted: the default input on its +30 MeV pseudo-data returns +30, the recentred one returns
  // about 0 relative to its centre (the Z -> tau tau part of the pseudo-data stays at 0, so not
  // exactly); the recentred input on its own -30 MeV set returns -30 (the simulation's mass).
  CHECK(FitNoi(d, def_p30, kWLikeNoi) == doctest::Approx(30.0).epsilon(0.03));
  CHECK(std::abs(FitNoi(r, def_p30, kWLikeNoi)) < 1.5);
  CHECK(FitNoi(r, r.pseudodata.col(Column(r, "mass_shift_m30MeV")), kWLikeNoi) ==
        doctest::Approx(-30.0).epsilon(0.03));
}
