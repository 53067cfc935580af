// The W-like Z-mass analysis of the single-muon producer and the charge / eta-split mass
// parameters (models/wmass.h, models/mass_split.h; docs/wlike.md): the parity logic of the W-like
// selection on hand-made events, configuration, closure of the produced fit input (Asimov exact,
// pseudo-data and generated data with known Z-mass offsets, both parities), split-mass
// coefficients, the separate parameters with a combination against the difference parameter,
// differences consistent with zero on unbiased pseudo-data and with an injected difference.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/calibration.h"
#include "lepus/models/mass_split.h"
#include "lepus/models/wmass.h"

using namespace lepus;
using namespace lepus::models;

namespace {

// A small W-like configuration: a few seconds for the whole chain. 24 eta bins: with 48 and
// 1 M simulated events some forward high-pT bins have no simulated event (the fit needs a
// positive expectation in every bin).
WMassConfig SmallWLike() {
  WMassConfig c = WMassConfig::WLikeLight();
  c.eta_bins = 24;
  c.simulation.events = 1000000;
  c.luminosity_pb = 200.0;
  c.chunk_events = 32768;
  return c;
}

// A W-like test event: two muons, back to back in phi, no recoil, unit efficiencies.
void SetMuon(EventBatch* b, std::size_t i, int slot, int charge, double pt, double eta, double phi,
             double rel_iso = 0.01) {
  MuonColumns& m = b->muon[slot];
  m.charge[i] = static_cast<std::int8_t>(charge);
  m.pt[i] = m.gen_pt[i] = pt;
  m.eta[i] = m.gen_eta[i] = eta;
  m.phi[i] = m.gen_phi[i] = phi;
  m.gen_charge[i] = static_cast<std::int8_t>(charge);
  m.rel_iso[i] = rel_iso;
  m.eff_reco[i] = m.eff_tracking[i] = m.eff_id[i] = m.eff_trigger[i] = m.eff_iso[i] = 1.0;
}

EventBatch PairEvents(const std::vector<std::uint64_t>& numbers) {
  EventBatch b;
  b.Resize(numbers.size());
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    b.event_number[i] = numbers[i];
    b.process[i] = Process::kZMuMu;
    b.weight[i] = 1.0;
    b.n_muons[i] = 2;
    // mu+ at eta 0.55 and mu- at eta -1.05, pT 40 GeV each, back to back: m = 107 GeV, the
    // W-like mT = 80 GeV whichever muon is kept. The reconstructed MET balances both muons.
    SetMuon(&b, i, 0, +1, 40.0, 0.55, 0.0);
    SetMuon(&b, i, 1, -1, 40.0, -1.05, M_PI);
    b.met_pt[i] = 0.0;
    b.met_phi[i] = 0.0;
    b.v_mass[i] = 0.0;  // no boson for the theory variations
  }
  return b;
}

// Fit-channel bins of the test muons (eta bins of 0.1 from -2.4, pT bins of 1 GeV from 26).
constexpr int kPtBin = 14;
int FitBin(int eta_bin, int charge) { return (eta_bin * 34 + kPtBin) * 2 + (charge > 0 ? 1 : 0); }
const int kPlusBin = FitBin(29, +1);   // eta 0.55
const int kMinusBin = FitBin(13, -1);  // eta -1.05

double FitValue(const WMassHistograms& h, const WMassProducer& p, int slot, int bin) {
  return h.mc[slot].sumw(p.signal_region_offset() + bin);
}

// The fit of one data set (column of the pseudo-data or the observed data when name is empty).
struct FitOut {
  engine::FitResult result;
  std::unique_ptr<engine::Likelihood> lik;
  double Value(const std::string& name) const { return result.values[lik->FindParam(name)]; }
  double Error(const std::string& name) const { return result.errors[lik->FindParam(name)]; }
};
FitOut FitModel(const engine::Model& model, const std::string& pseudodata = "") {
  FitOut out;
  out.lik = std::make_unique<engine::Likelihood>(engine::Model(model));
  if (!pseudodata.empty()) {
    const auto& names = model.pseudodata_names;
    const auto col = std::find(names.begin(), names.end(), pseudodata) - names.begin();
    REQUIRE(col < static_cast<long>(names.size()));
    out.lik->SetData(model.pseudodata.col(col));
  }
  out.result = engine::Fit(*out.lik);
  REQUIRE(out.result.ok());
  return out;
}

// One production's histograms with its producer (the histograms' variation store points to the
// producer's layout), to build fit inputs with different mass splits from the same events.
struct Filled {
  std::unique_ptr<WMassProducer> producer;
  WMassHistograms h;
  explicit Filled(const WMassConfig& c) : producer(std::make_unique<WMassProducer>(c)) {
    h = producer->Fill(ProduceOptions{2, {}});
  }
  engine::Model Build(MassSplitKind kind, MassSplitMode mode) const {
    WMassConfig c = producer->config();
    c.mass_split.kind = kind;
    c.mass_split.mode = mode;
    const WMassProducer p(c);
    return p.MakeFitInput(h).Build();
  }
};

}  // namespace

TEST_CASE("WLike: even event numbers keep the mu-, odd ones the mu+, flip_parity exchanges them") {
  for (bool flip : {false, true}) {
    CAPTURE(flip);
    WMassConfig c = WMassConfig::WLikeLight();
    c.flip_parity = flip;
    const WMassProducer producer(c);
    const EventBatch b = PairEvents({10, 11, 12});
    WMassHistograms h = producer.MakeHistograms();
    producer.FillBatch(b, SampleKind::kSimulation, &h);
    const int zmumu = WMassSlot(Process::kZMuMu);
    // Two even events, one odd: the kept muon's bin gets them.
    CHECK(FitValue(h, producer, zmumu, kMinusBin) == (flip ? 1.0 : 2.0));
    CHECK(FitValue(h, producer, zmumu, kPlusBin) == (flip ? 2.0 : 1.0));
    CHECK(h.selected[zmumu] == 3);
    double total = 0.0;
    for (int i = 0; i < producer.fit_space().size(); ++i) total += FitValue(h, producer, zmumu, i);
    CHECK(total == 3.0);
  }
}

TEST_CASE(
    "WLike: the selection needs an opposite-sign isolated pair in the mass window, mT and a "
    "triggering kept muon") {
  const WMassConfig c = WMassConfig::WLikeLight();
  const WMassProducer producer(c);
  EventBatch b = PairEvents({0, 2, 4, 6, 8, 10, 12});  // even: the mu- (slot 1) is kept
  SetMuon(&b, 1, 1, +1, 40.0, -1.05, M_PI);            // same sign
  b.muon[0].rel_iso[2] = 0.2;                          // the other muon is not isolated
  SetMuon(&b, 3, 0, +1, 20.0, 0.55, 0.0);              // the other muon below pt_min
  SetMuon(&b, 4, 0, +1, 40.0, 0.55, M_PI - 0.3);       // small opening: m < 60 GeV, mT < 45
  b.muon[1].eff_trigger[5] = 0.0;                      // the kept muon did not fire
  b.muon[0].eff_reco[6] = 0.5;                         // the other muon's efficiency weights
  WMassHistograms h = producer.MakeHistograms();
  producer.FillBatch(b, SampleKind::kSimulation, &h);
  const int zmumu = WMassSlot(Process::kZMuMu);
  CHECK(FitValue(h, producer, zmumu, kMinusBin) == doctest::Approx(1.5));  // events 0 and 6
  CHECK(h.selected[zmumu] == 2);

  // Data: the calibration corrects both muons (a few per mille), the same events pass.
  WMassHistograms hd = producer.MakeHistograms();
  EventBatch d = PairEvents({0, 1});
  producer.FillBatch(d, SampleKind::kData, &hd);
  CHECK(hd.data_selected == 2);
  CHECK(hd.data_events == 2);
}

TEST_CASE("WLike: presets, JSON and configuration errors") {
  std::string error;
  for (const WMassConfig& c : {WMassConfig::WLikeLight(), WMassConfig::WLikeFull()}) {
    CHECK(c.IsValid(&error));
    CHECK(c.analysis == WMassAnalysis::kWLike);
    CHECK(c.pt_bins == 34);
    CHECK(c.pt_max == 60.0);
    CHECK(c.mt_cut == 45.0);
    CHECK(std::string(c.Noi()) == "massShiftZ100MeV");
    CHECK(std::string(c.Channel()) == "wlike");
  }
  const WMassConfig j = WMassConfigFromJson(
      R"({"lepus_config_version": 1, "producer": "wlike", "selection": {"flip_parity": true},
          "data": {"mz_shift_mev": 15},
          "systematics": {"mass": {"split": "abs_eta:0,1.2,2.4"}}})",
      "cfg.json", WMassAnalysis::kWLike);
  CHECK(j.flip_parity);
  CHECK(j.data_mz_shift_mev == 15.0);
  CHECK(j.mass_split.kind == MassSplitKind::kAbsEta);
  CHECK(WMassConfigFromJson(j.ToJson(), "x", WMassAnalysis::kWLike).ToJson() == j.ToJson());
  CHECK_THROWS_WITH_AS(
      WMassConfigFromJson(R"({"lepus_config_version": 1, "producer": "wmass"})", "cfg.json",
                          WMassAnalysis::kWLike),
      doctest::Contains("cfg.json: producer is \"wmass\" (string), but must be \"wlike\""),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      WMassConfigFromJson(
          R"({"lepus_config_version": 1, "systematics": {"nonprompt": {"enabled": true}}})",
          "cfg.json", WMassAnalysis::kWLike),
      doctest::Contains("nonprompt.enabled is true, but must be false for the W-like analysis"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      WMassConfigFromJson(
          R"({"lepus_config_version": 1, "systematics": {"mass": {"split": "charges"}}})",
          "cfg.json"),
      doctest::Contains("cfg.json: systematics.mass.split is 'charges', but must be none, charge"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      WMassConfigFromJson(R"({"lepus_config_version": 1, "systematics": {"mass":
          {"split": "abs_eta:0,1.2,2.4", "split_mode": "difference"}}})",
                          "cfg.json"),
      doctest::Contains("mass_split_mode is 'difference', but must be 'separate' for mass_split "
                        "'abs_eta:0,1.2,2.4'"),
      std::invalid_argument);
  WMassConfig bad = WMassConfig::WLikeLight();
  bad.mll_min = 130.0;
  CHECK(!bad.IsValid(&error));
  CHECK(error.find("selection.mll_min, mll_max are 130, 120, but must satisfy") !=
        std::string::npos);
}

TEST_CASE("MassSplit: parameters, names and coefficients") {
  const BinSpace fit({RegularAxis(48, -2.4, 2.4, "eta"), RegularAxis(30, 26, 56, "pt"),
                      RegularAxis(2, -2.0, 2.0, "charge")});
  const int n = fit.size();
  auto params = [&](const std::string& spec, MassSplitMode mode) {
    MassSplitConfig c = MassSplitConfig::FromSpec(spec);
    c.mode = mode;
    return MassSplitParameters(c, "massShiftW100MeV", fit);
  };
  CHECK(params("none", MassSplitMode::kSeparate).empty());
  // Separate: the regions partition the channel.
  for (const char* spec : {"charge", "eta_sign", "abs_eta:0,0.8,1.6,2.4", "charge_abs_eta"}) {
    CAPTURE(spec);
    const auto p = params(spec, MassSplitMode::kSeparate);
    for (int i = 0; i < n; ++i) {
      double sum = 0.0;
      for (const auto& q : p) sum += q.coeff[i];
      REQUIRE(sum == 1.0);
    }
  }
  CHECK(params("charge_abs_eta", MassSplitMode::kSeparate).size() == 48);
  CHECK(params("charge_abs_eta", MassSplitMode::kDifference).size() == 48);
  CHECK(params("abs_eta:0,0.8,1.6,2.4", MassSplitMode::kSeparate).size() == 3);
  const auto sep = params("charge", MassSplitMode::kSeparate);
  CHECK(sep[0].name == "massShiftW100MeV_plus");
  CHECK(sep[1].name == "massShiftW100MeV_minus");
  CHECK(sep[0].coeff[1] == 1.0);  // bin 1: charge +
  CHECK(sep[0].coeff[0] == 0.0);
  // Difference: the common mass and d = m(A) - m(B) with +-1/2.
  const auto dif = params("eta_sign", MassSplitMode::kDifference);
  REQUIRE(dif.size() == 2);
  CHECK(dif[0].name == "massShiftW100MeV");
  CHECK(dif[1].name == "massDiffW100MeV_eta");
  CHECK(dif[1].coeff[0] == -0.5);     // eta bin 0: eta < 0
  CHECK(dif[1].coeff[n - 1] == 0.5);  // last eta bin
  for (int i = 0; i < n; ++i) REQUIRE(dif[0].coeff[i] == 1.0);
  CHECK(params("charge", MassSplitMode::kDifference)[1].name == "massDiffW100MeV_charge");
  CHECK(params("charge_abs_eta", MassSplitMode::kDifference)[1].name ==
        "massDiffW100MeV_charge_absEta0");
  // Templates: symmetric in log space, c times the NOI's symmetrised shift.
  std::vector<double> nom = {100.0, 50.0}, up = {110.0, 40.0}, down = {92.0, 61.0}, pu, pd;
  MassSplitParameter half{"x", "", {0.5, -0.5}};
  MassSplitTemplates(half, nom, up, down, &pu, &pd);
  const double k0 = 0.5 * std::log(110.0 / 92.0), k1 = 0.5 * std::log(40.0 / 61.0);
  CHECK(pu[0] == doctest::Approx(100.0 * std::exp(0.5 * k0)));
  CHECK(pd[0] == doctest::Approx(100.0 * std::exp(-0.5 * k0)));
  CHECK(pu[1] == doctest::Approx(50.0 * std::exp(-0.5 * k1)));
  // Errors: edges off the eta bins, bad specs.
  CHECK_THROWS_WITH_AS(params("abs_eta:0,1.25,2.4", MassSplitMode::kSeparate),
                       doctest::Contains("the |eta| edge 1.25 is not an edge of the fit channel"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(params("abs_eta:0,1.2", MassSplitMode::kSeparate),
                       doctest::Contains("its |eta| edges must run from 0 to 2.4"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      MassSplitConfig::FromSpec("abs_eta:0,x,2.4", "--mass-split"),
      doctest::Contains(
          "--mass-split is 'abs_eta:0,x,2.4', but the |eta| edge 'x' is not a number"),
      std::invalid_argument);
}

TEST_CASE(
    "WLike: closure of the produced fit input (Asimov, pseudo-data, generated data) for both "
    "parities") {
  // Generated data with m_Z shifted by +40 MeV and the default data detector (biased scale,
  // corrected by the calibration; different efficiencies).
  const double truth = 40.0;
  double fitted[2], errors[2];
  for (int flip = 0; flip < 2; ++flip) {
    CAPTURE(flip);
    WMassConfig c = SmallWLike();
    c.flip_parity = flip == 1;
    c.data_mz_shift_mev = truth;
    const WMassProduction p = ProduceWMass(c, ProduceOptions{2, {}});
    CHECK(p.model.channels.at(0).name == "wlike");
    CHECK(p.model.nbins_full == 24 * 34 * 2);
    CHECK(p.model.processes.at(0) == "Zmumu");
    // Asimov: every parameter at its nominal value.
    {
      engine::Likelihood lik{engine::Model(p.model)};
      lik.SetData(engine::AsimovData(lik, lik.InitialParams()));
      const engine::FitResult r = engine::Fit(lik);
      REQUIRE(r.ok());
      for (int i = 0; i < lik.num_params(); ++i) {
        CAPTURE(lik.params()[i].name);
        REQUIRE(std::abs(r.values[i] - lik.params()[i].prefit) < 1e-6);
      }
    }
    // Pseudo-data with the Zmumu template at +30 MeV.
    {
      const FitOut f = FitModel(p.model, "mass_shift_p30MeV");
      const double shift = 100.0 * f.Value(kWLikeNoi);
      CAPTURE(shift);
      CHECK(std::abs(shift - 30.0) < 1.0);
    }
    // Generated data: the hidden +40 MeV within two standard deviations.
    {
      const FitOut f = FitModel(p.model);
      fitted[flip] = 100.0 * f.Value(kWLikeNoi);
      errors[flip] = 100.0 * f.Error(kWLikeNoi);
      CAPTURE(fitted[flip]);
      CAPTURE(errors[flip]);
      CHECK(std::abs(fitted[flip] - truth) < 2.0 * errors[flip]);
      CHECK(errors[flip] < 80.0);
    }
  }
  MESSAGE("W-like m_Z - m_Z(sim), truth +40 MeV: even->mu- "
          << fitted[0] << " +- " << errors[0] << " MeV, flipped " << fitted[1] << " +- "
          << errors[1] << " MeV");
  // The two parities use the other muon of each event: different, nearly independent results.
  CHECK(fitted[0] != fitted[1]);
}

TEST_CASE("MassSplit: separate masses with a combination equal the difference parameters") {
  // W-like: one production, fit inputs with different splits from the same histograms.
  const Filled wl(SmallWLike());
  for (MassSplitKind kind : {MassSplitKind::kCharge, MassSplitKind::kEtaSign}) {
    const bool charge = kind == MassSplitKind::kCharge;
    CAPTURE(charge);
    const engine::Model sep = wl.Build(kind, MassSplitMode::kSeparate);
    const engine::Model dif = wl.Build(kind, MassSplitMode::kDifference);
    const std::string a = std::string(kWLikeNoi) + (charge ? "_plus" : "_etaPlus");
    const std::string b = std::string(kWLikeNoi) + (charge ? "_minus" : "_etaMinus");
    const std::string d = charge ? "massDiffZ100MeV_charge" : "massDiffZ100MeV_eta";
    // Unbiased pseudo-data: the difference is zero, the masses at the injected common shift.
    for (const char* set : {"mass_shift_0MeV", "mass_shift_p30MeV"}) {
      CAPTURE(set);
      const double expected = std::string(set) == "mass_shift_0MeV" ? 0.0 : 30.0;
      const FitOut fs = FitModel(sep, set);
      const FitOut fd = FitModel(dif, set);
      CHECK(std::abs(100.0 * fs.Value(a) - expected) < 1.5);
      CHECK(std::abs(100.0 * fs.Value(b) - expected) < 1.5);
      CHECK(std::abs(100.0 * fd.Value(kWLikeNoi) - expected) < 1.0);
      CHECK(std::abs(100.0 * fd.Value(d)) < 1.0);
      CHECK(std::abs(fd.Value(d)) < 0.05 * fd.Error(d));
    }
    // Generated data: combination of the separate fit vs the difference parameter.
    const FitOut fs = FitModel(sep);
    const FitOut fd = FitModel(dif);
    const engine::LinearCombination comb = engine::ParseCombination(*fs.lik, "diff", a + " - " + b);
    const engine::CombinationResult cr = engine::EvaluateCombination(*fs.lik, fs.result, comb);
    const double dv = fd.Value(d), de = fd.Error(d);
    MESSAGE(std::string(charge ? "W-like m(+) - m(-)" : "W-like m(eta>0) - m(eta<0)")
            << ": combination " << 100 * cr.value << " +- " << 100 * cr.error
            << " MeV, difference parameter " << 100 * dv << " +- " << 100 * de << " MeV");
    CHECK(std::abs(cr.value - dv) < 0.01 * de);
    CHECK(std::abs(cr.error - de) < 0.01 * de);
    // The common mass equals the average of the separate ones.
    CHECK(std::abs(0.5 * (fs.Value(a) + fs.Value(b)) - fd.Value(kWLikeNoi)) < 0.01 * de);
    // Consistent with zero on data generated without a difference.
    CHECK(std::abs(dv) < 2.5 * de);
  }
}

TEST_CASE("MassSplit: an injected m(W+) - m(W-) is recovered, none is found without it") {
  // The fit's response to a true mass shift is attenuated by the statistical noise of the
  // reweighted templates (docs/wlike.md: 0.62 at 1 M simulated events and 48 eta bins, 0.87 at
  // 4 M); 12 eta bins and 2 M events keep it near 0.95 at test cost.
  WMassConfig c = WMassConfig::Light();
  c.eta_bins = 12;
  c.simulation.events = 2000000;
  c.luminosity_pb = 40.0;
  c.chunk_events = 65536;
  c.mass_split.kind = MassSplitKind::kCharge;
  c.mass_split.mode = MassSplitMode::kDifference;
  for (double injected : {0.0, 200.0}) {
    CAPTURE(injected);
    c.data_mw_charge_diff_mev = injected;
    const WMassProduction p = ProduceWMass(c, ProduceOptions{2, {}});
    const FitOut f = FitModel(p.model);
    const double d = 100.0 * f.Value("massDiffW100MeV_charge");
    const double e = 100.0 * f.Error("massDiffW100MeV_charge");
    MESSAGE("W m(+) - m(-), injected " << injected << " MeV: " << d << " +- " << e << " MeV");
    CHECK(std::abs(d - injected) < 2.0 * e);
    CHECK(e < 100.0);
  }
}

TEST_CASE(
    "WMassProducer: resolution nuisances of a calibration widen the smearing about the generated "
    "pT") {
  // A calibration with a 5% resolution uncertainty per eta bin: 48 resolution nuisances.
  CalibrationParameters cal = SyntheticCalibration();
  cal.resolution_uncertainty.assign(cal.num_bins(), 0.05);
  const std::string path = "wlike_test_resolution_calibration.json";
  WriteCalibration(path, cal);
  WMassConfig c = WMassConfig::Light();
  c.calibration_file = path;
  c.muon_scale_regions = 0;
  const WMassProducer producer(c);
  int resolution = 0;
  for (const auto& n : producer.momentum_nuisances())
    resolution += n.kind == MomentumNuisanceKind::kResolution;
  CHECK(resolution == 48);

  // One W+ event in eta bin 30 (eta 0.65): pT 40.99 GeV reconstructed, 39 generated; the
  // resolution nuisance of its bin moves it up to 39 + 1.99 x 1.05 = 41.09 GeV (pT bin
  // 14 -> 15) and down to 39 + 1.99 x 0.95 = 40.89 GeV (stays in bin 14): the template
  // (up - down) / 2 moves half of its weight.
  EventBatch b;
  b.Resize(1);
  b.event_number[0] = 7;
  b.process[0] = Process::kWplusMuNu;
  b.weight[0] = 2.0;
  b.n_muons[0] = 1;
  SetMuon(&b, 0, 0, +1, 40.99, 0.65, 0.0);
  b.muon[0].gen_pt[0] = 39.0;
  b.muon[1].charge[0] = 0;
  b.met_pt[0] = 40.0;
  b.met_phi[0] = M_PI;
  b.v_mass[0] = 0.0;
  WMassHistograms h = producer.MakeHistograms();
  producer.FillBatch(b, SampleKind::kSimulation, &h);
  const int from = (30 * 30 + 14) * 2 + 1, to = (30 * 30 + 15) * 2 + 1;
  CHECK(h.mc[0].sumw(producer.signal_region_offset() + from) == 2.0);
  const int id = producer.layout().Find("muonResolution_eta30", 0);
  REQUIRE(id >= 0);
  CHECK(h.variations.delta(id, from) == -1.0);
  CHECK(h.variations.delta(id, to) == 1.0);
  CHECK(h.variations.AbsSum(id) == 2.0);
  // The other bins' resolution nuisances do not act on it.
  CHECK(h.variations.AbsSum(producer.layout().Find("muonResolution_eta29", 0)) == 0.0);
  std::remove(path.c_str());
}
