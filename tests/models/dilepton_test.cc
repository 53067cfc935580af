// The dilepton m_Z producer (models/dilepton.h): histograms and variations against brute-force
// loops, identical output at 1 and 2 threads, the resolution and closure nuisances of a
// calibration that has them, closure of the produced fit input (Asimov exactly, pseudo-data with
// a known m_Z shift, generated data with a hidden shift through the biased detector and the
// calibration correction), configuration errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/errors.h"
#include "lepus/models/dilepton.h"
#include "lepus/models/generator.h"

using namespace lepus;
using namespace lepus::models;

namespace {

// A small light configuration: about a second for the whole chain.
DileptonConfig SmallConfig() {
  DileptonConfig c = DileptonConfig::Light();
  c.simulation.events = 600000;
  c.luminosity_pb = 30.0;
  c.chunk_events = 16384;
  return c;
}

bool SameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

const DileptonProduction& SmallProduction() {
  static const DileptonProduction p = ProduceDilepton(SmallConfig(), ProduceOptions{2, {}});
  return p;
}

// Generated simulated Z -> mu mu and Z -> tau tau events with two muons.
EventBatch SimulatedBatch(std::uint64_t events, std::uint64_t seed) {
  GeneratorConfig g;
  g.processes = {Process::kZMuMu, Process::kZTauTau};
  g.num_events = events;
  g.seed = seed;
  g.luminosity_pb = 10.0;
  g.filter = EventFilter{2, 20.0};
  const Generator gen(g);
  EventBatch batch;
  for (Process p : g.processes) gen.Generate(p, 0, gen.NumEvents(p), &batch);
  return batch;
}

// The selection in plain formulas: bin (eta of the more forward muon x mass) and weight, -1 if
// not selected.
int BruteForceBin(const DileptonConfig& c, const EventBatch& b, std::size_t i, double* w) {
  const MuonColumns& m0 = b.muon[0];
  const MuonColumns& m1 = b.muon[1];
  if (m0.charge[i] == 0 || m1.charge[i] == 0 || m0.charge[i] == m1.charge[i]) return -1;
  if (std::abs(m0.eta[i]) >= 2.4 || std::abs(m1.eta[i]) >= 2.4) return -1;
  if (m0.rel_iso[i] >= 0.15 || m1.rel_iso[i] >= 0.15) return -1;
  if (m0.pt[i] < c.pt_min || m1.pt[i] < c.pt_min) return -1;
  const double mass =
      MasslessDimuonMass(m0.pt[i], m0.eta[i], m0.phi[i], m1.pt[i], m1.eta[i], m1.phi[i]);
  const auto& e = c.mass_edges;
  if (mass < e.front() || mass >= e.back()) return -1;
  const int mb = static_cast<int>(std::upper_bound(e.begin(), e.end(), mass) - e.begin()) - 1;
  const double eta = std::abs(m1.eta[i]) > std::abs(m0.eta[i]) ? m1.eta[i] : m0.eta[i];
  const int eb = static_cast<int>(std::floor((eta + 2.4) / (4.8 / c.eta_bins)));
  *w = b.weight[i] * m0.eff_reco[i] * m0.eff_tracking[i] * m0.eff_id[i] * m1.eff_reco[i] *
       m1.eff_tracking[i] * m1.eff_id[i] *
       (1.0 - (1.0 - m0.eff_trigger[i]) * (1.0 - m1.eff_trigger[i]));
  return eb * (static_cast<int>(e.size()) - 1) + mb;
}

double FitNoiMeV(const engine::Model& model, const std::vector<double>* data, double* error) {
  engine::Likelihood lik{engine::Model(model)};
  if (data) lik.SetData(Eigen::Map<const Eigen::VectorXd>(data->data(), data->size()).eval());
  const engine::FitResult r = engine::Fit(lik);
  REQUIRE(r.ok());
  const int i = lik.FindParam(kDileptonNoi);
  REQUIRE(i >= 0);
  CHECK(lik.params()[i].scale == 100.0);
  CHECK(lik.params()[i].unit == "MeV");
  *error = 100.0 * r.errors[i];
  return 100.0 * r.values[i];
}

}  // namespace

TEST_CASE("DileptonConfig: presets are valid, light has tens and full about a thousand nuisances") {
  std::string error;
  CHECK(DileptonConfig{}.IsValid(&error));
  CHECK(DileptonConfig::Light().ToJson() == DileptonConfig{}.ToJson());
  CHECK(DileptonConfig::Full().IsValid(&error));
  CHECK(DileptonConfig::Light().mass_edges.size() == 25);
  CHECK(DileptonConfig::Full().mass_edges.size() == 59);
  CHECK(DileptonConfig::Full().mass_edges[10] == 81.5);
  auto count = [](const DileptonProducer& p) {
    int n = static_cast<int>(p.momentum_nuisances().size() + p.efficiency().nuisances().size());
    for (const auto& t : p.theory().nuisances())
      if (t.role != TheoryRole::kAlternative && t.bosons[static_cast<int>(BosonClass::kZ)]) ++n;
    return n;
  };
  const DileptonProducer light(DileptonConfig::Light());
  CHECK(light.fit_space().size() == 12 * 24);
  CHECK(count(light) >= 40);
  CHECK(count(light) <= 99);
  const DileptonProducer full(DileptonConfig::Full());
  CHECK(full.fit_space().size() == 48 * 58);
  CHECK(count(full) >= 800);
  CHECK(count(full) <= 1500);
}

TEST_CASE("DileptonProducer: the histograms equal a brute-force loop over the events") {
  const DileptonConfig c = SmallConfig();
  const DileptonProducer producer(c);
  const EventBatch batch = SimulatedBatch(100000, 5);
  DileptonHistograms h = producer.MakeHistograms();
  producer.FillBatch(batch, SampleKind::kSimulation, &h);
  const int n = producer.fit_space().size();
  std::vector<std::vector<double>> sumw(kDileptonMcSlots, std::vector<double>(n, 0.0));
  auto sumw2 = sumw;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    double w = 0;
    const int k = BruteForceBin(c, batch, i, &w);
    if (k < 0) continue;
    const int s = DileptonSlot(batch.process[i]);
    sumw[s][k] += w;
    sumw2[s][k] += w * w;
  }
  double total = 0;
  for (int s = 0; s < kDileptonMcSlots; ++s)
    for (int k = 0; k < n; ++k) {
      REQUIRE(h.mc[s].sumw(k) == doctest::Approx(sumw[s][k]).epsilon(1e-12));
      REQUIRE(h.mc[s].sumw2(k) == doctest::Approx(sumw2[s][k]).epsilon(1e-12));
      total += sumw[s][k];
    }
  CHECK(total > 0);
  CHECK(h.selected[0] > 10000);
  CHECK(h.sim_events == static_cast<std::int64_t>(batch.size()));

  // An efficiency systematic acting on both muons: the delta is sum w ((1 + r1)(1 + r2) - 1).
  const auto& eff = producer.efficiency();
  int k_id = -1;
  for (std::size_t k = 0; k < eff.nuisances().size(); ++k)
    if (eff.nuisances()[k].name == "effSyst_id") k_id = static_cast<int>(k);
  REQUIRE(k_id >= 0);
  double expected = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    double w = 0;
    if (BruteForceBin(c, batch, i, &w) < 0 || DileptonSlot(batch.process[i]) != 0) continue;
    const double r0 = eff.RelativeChange(k_id, batch.muon[0].eta[i], batch.muon[0].pt[i],
                                         batch.muon[0].charge[i]);
    const double r1 = eff.RelativeChange(k_id, batch.muon[1].eta[i], batch.muon[1].pt[i],
                                         batch.muon[1].charge[i]);
    CHECK(r0 != 0.0);
    expected += w * ((1 + r0) * (1 + r1) - 1);
  }
  const int id = producer.layout().Find("effSyst_id", 0);
  REQUIRE(id >= 0);
  double got = 0;
  for (int k = 0; k < n; ++k) got += h.variations.delta(id, k);
  CHECK(got == doctest::Approx(expected).epsilon(1e-10));
  CHECK(got > 0);
}

TEST_CASE("DileptonProducer: a momentum-scale template is (up - down) / 2 of both muons shifted") {
  DileptonConfig c = SmallConfig();
  c.muon_scale_regions = 0;
  const DileptonProducer producer(c);
  const EventBatch batch = SimulatedBatch(60000, 7);
  DileptonHistograms h = producer.MakeHistograms();
  producer.FillBatch(batch, SampleKind::kSimulation, &h);
  const auto& nuis = producer.momentum_nuisances();
  REQUIRE(nuis.size() == 144);
  const int n = producer.fit_space().size();
  for (int k : {0, 70, 140}) {
    const MomentumNuisance& nu = nuis[k];
    CAPTURE(nu.name);
    // The template is (up - down) / 2 of the shifts of both muons (written mirrored).
    std::vector<double> expected(n, 0.0);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      double w = 0;
      const int from = BruteForceBin(c, batch, i, &w);
      for (int sign : {+1, -1}) {
        EventBatch one;
        one.Append(batch, i, i + 1);
        for (int j = 0; j < 2; ++j) {
          const int b = ScaleEtaBin(one.muon[j].eta[0]);
          one.muon[j].pt[0] = nu.ShiftedPt(b, one.muon[j].pt[0], one.muon[j].charge[0], sign);
        }
        double w2 = 0;
        const int to = BruteForceBin(c, one, 0, &w2);  // the same efficiency columns: w2 == w
        if (from == to) continue;
        if (from >= 0) expected[from] -= 0.5 * sign * w;
        if (to >= 0) expected[to] += 0.5 * sign * w2;
      }
    }
    const int id = producer.layout().Find(nu.name, 0);
    REQUIRE(id >= 0);
    double moved = 0;
    for (int b = 0; b < n; ++b) {
      REQUIRE(h.variations.delta(id, b) == doctest::Approx(expected[b]).epsilon(1e-9));
      moved += std::abs(h.variations.delta(id, b));
    }
    CHECK(moved > 0);
  }
}

TEST_CASE("DileptonProducer: histograms and fit input are identical at 1 and 2 threads") {
  DileptonConfig c = SmallConfig();
  c.simulation.events = 200000;
  c.luminosity_pb = 10.0;
  const DileptonProducer producer(c);
  const DileptonHistograms h1 = producer.Fill(ProduceOptions{1, {}});
  const DileptonHistograms h2 = producer.Fill(ProduceOptions{2, {}});
  CHECK(h1.sim_events == static_cast<std::int64_t>(c.simulation.events));
  CHECK(h1.data_events == h2.data_events);
  CHECK(h1.data_selected > 0);
  for (int s = 0; s < kDileptonMcSlots; ++s) {
    CHECK(SameBits(h1.mc[s].Sumw(), h2.mc[s].Sumw()));
    CHECK(SameBits(h1.mc[s].Sumw2(), h2.mc[s].Sumw2()));
  }
  CHECK(SameBits(h1.data.Sumw(), h2.data.Sumw()));
  const std::vector<double> zeros(producer.fit_space().size(), 0.0);
  for (int id = 0; id < producer.layout().size(); ++id)
    REQUIRE(SameBits(h1.variations.Varied(id, zeros), h2.variations.Varied(id, zeros)));
  const engine::Model m1 = producer.MakeFitInput(h1).Build();
  const engine::Model m2 = producer.MakeFitInput(h2).Build();
  CHECK(m1.systematics == m2.systematics);
  CHECK(SameBits(m1.tensor.norm, m2.tensor.norm));
  CHECK(SameBits(m1.tensor.logk_avg, m2.tensor.logk_avg));
}

TEST_CASE("DileptonProducer: resolution and closure nuisances of a calibration that has them") {
  CalibrationParameters cal = SyntheticCalibration();
  cal.closure.per_bin.assign(cal.num_bins(), ScaleBias{2e-4, 0.0, 0.0});
  cal.resolution_uncertainty.assign(cal.num_bins(), 0.1);
  cal.closure.global = ScaleBias{2.3e-5, 0.0, 0.0};  // LEP-like: 2.1 MeV / m_Z
  const std::string path = std::string(LEPUS_BINARY_DIR) + "/dilepton_test_calibration.json";
  WriteCalibration(path, cal);
  DileptonConfig c = SmallConfig();
  c.calibration_file = path;
  c.muon_scale_regions = 6;
  c.simulation.events = 300000;
  c.luminosity_pb = 10.0;
  const DileptonProducer producer(c);
  int closure = 0, resolution = 0;
  for (const auto& n : producer.momentum_nuisances()) {
    if (n.kind == MomentumNuisanceKind::kClosure) {
      ++closure;
      CHECK(n.group == "muonScale");
    }
    if (n.kind == MomentumNuisanceKind::kResolution) {
      ++resolution;
      CHECK(n.group == "muonResolution");
    }
  }
  CHECK(closure == 6 + 1);  // per region + the global term
  CHECK(resolution == 6);
  const DileptonHistograms h = producer.Fill(ProduceOptions{2, {}});
  const engine::Model m = producer.MakeFitInput(h).Build();
  std::set<std::string> groups;
  for (const auto& g : m.groups) groups.insert(g.name);
  CHECK(groups.count("muonResolution"));
  // A 10% wider resolution in every region: the peak bins lose events to the tails.
  const int mass_bins = static_cast<int>(c.mass_edges.size()) - 1;
  const auto& edges = c.mass_edges;
  double peak = 0, tails = 0;
  for (const auto& n : producer.momentum_nuisances()) {
    if (n.kind != MomentumNuisanceKind::kResolution) continue;
    const int id = producer.layout().Find(n.name, 0);
    REQUIRE(id >= 0);
    for (int b = 0; b < producer.fit_space().size(); ++b) {
      const int mb = b % mass_bins;
      const double center = 0.5 * (edges[mb] + edges[mb + 1]);
      (std::abs(center - 91.2) < 1.5 ? peak : tails) += h.variations.delta(id, b);
    }
  }
  CHECK(peak < 0);
  CHECK(tails > 0);
  std::remove(path.c_str());
}

TEST_CASE(
    "DileptonProducer: fitting the Asimov data set of a produced input returns the nominal "
    "values") {
  const engine::Model& model = SmallProduction().model;
  CHECK(SmallProduction().summary.empty_bins == 0);
  engine::Likelihood lik{engine::Model(model)};
  lik.SetData(engine::AsimovData(lik, lik.InitialParams()));
  const engine::FitResult r = engine::Fit(lik);
  REQUIRE(r.ok());
  const auto& params = lik.params();
  for (int i = 0; i < lik.num_params(); ++i) {
    CAPTURE(params[i].name);
    CHECK(std::abs(r.values[i] - params[i].prefit) < 1e-6);
  }
}

TEST_CASE("DileptonProducer: pseudo-data with a known m_Z shift are recovered") {
  const engine::Model& model = SmallProduction().model;
  const auto& names = model.pseudodata_names;
  for (const char* name : {"mass_shift_m30MeV", "mass_shift_0MeV", "mass_shift_p30MeV"}) {
    CAPTURE(name);
    const auto it = std::find(names.begin(), names.end(), name);
    REQUIRE(it != names.end());
    const Eigen::VectorXd col = model.pseudodata.col(it - names.begin());
    const std::vector<double> data(col.data(), col.data() + col.size());
    const double truth = std::string(name) == "mass_shift_m30MeV"   ? -30.0
                         : std::string(name) == "mass_shift_p30MeV" ? 30.0
                                                                    : 0.0;
    double error = 0;
    const double shift = FitNoiMeV(model, &data, &error);
    CAPTURE(shift);
    CAPTURE(error);
    CHECK(std::abs(shift - truth) < error);
    // The +-100 MeV template pair is close to linear.
    CHECK(std::abs(shift - truth) < 1.0);
  }
}

TEST_CASE(
    "DileptonProducer: generated data with a hidden m_Z shift, biased scale and calibration "
    "correction") {
  DileptonConfig c = SmallConfig();
  c.simulation.events = 1500000;
  c.luminosity_pb = 100.0;
  c.data_mz_shift_mev = -40.0;
  c.simulation.seed = 31;
  c.data.seed = 32;
  const DileptonProduction p = ProduceDilepton(c, ProduceOptions{2, {}});
  double error = 0;
  const double shift = FitNoiMeV(p.model, nullptr, &error);
  CAPTURE(shift);
  CAPTURE(error);
  CHECK(error > 3.0);
  CHECK(error < 30.0);
  CHECK(std::abs(shift - c.data_mz_shift_mev) < 2.0 * error);
}

TEST_CASE("DileptonConfig: JSON reading with clear errors") {
  auto parse = [](const std::string& text) { return DileptonConfigFromJson(text, "cfg.json"); };
  const DileptonConfig ok = parse(R"({"lepus_config_version": 1, "preset": "full",
      "binning": {"eta_bins": 24, "mass_edges": [70, 80, 90, 100, 110]},
      "simulation": {"events": 1000, "seed": 9}, "data": {"mz_shift_mev": -15},
      "systematics": {"muon_scale": {"regions": 12, "closure": false}, "luminosity": 0.02}})");
  CHECK(ok.preset == DileptonPreset::kFull);
  CHECK(ok.eta_bins == 24);
  CHECK(ok.mass_edges.size() == 5);
  CHECK(ok.simulation.events == 1000);
  CHECK(ok.data_mz_shift_mev == -15.0);
  CHECK(ok.muon_scale_regions == 12);
  CHECK(!ok.muon_closure);
  CHECK(ok.lumi_uncertainty == 0.02);
  CHECK(parse(ok.ToJson()).ToJson() == ok.ToJson());
  CHECK(parse(DileptonConfig::Full().ToJson()).ToJson() == DileptonConfig::Full().ToJson());

  CHECK_THROWS_WITH_AS(parse(R"({"preset": "light"})"),
                       doctest::Contains("cfg.json: missing key 'lepus_config_version'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"({"lepus_config_version": 2})"),
                       doctest::Contains("cfg.json: lepus_config_version is 2, but this lepus "
                                         "reads version 1"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"({"lepus_config_version": 1, "data": {"mw_shift_mev": 3}})"),
                       doctest::Contains("cfg.json: unknown key 'data.mw_shift_mev' (did you "
                                         "mean 'data.mz_shift_mev'?)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "binning": {"mass_edges": [60, "70"]}})"),
      doctest::Contains("cfg.json: binning.mass_edges[1] is \"70\" (string), but must be a number"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "binning": {"mass_edges": [60, 90, 80]}})"),
      doctest::Contains("cfg.json: binning.mass_edges[2] is 80, but must be > "
                        "binning.mass_edges[1] (90)"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"({"lepus_config_version": 1, "binning": {"eta_bins": 5}})"),
                       doctest::Contains("cfg.json: binning.eta_bins is 5, but must divide 48"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "producer": "wmass"})"),
      doctest::Contains("producer is \"wmass\" (string), but must be \"dilepton\""),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse("{not json"), doctest::Contains("cfg.json: not valid JSON"),
                       std::invalid_argument);
  // A number beyond double's range (found by the config_json fuzz target; was uncaught).
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "luminosity_pb": 1e400})"),
      doctest::Contains("cfg.json: a number is beyond the range of a double (at most 1.8e308 "
                        "in magnitude): [json.exception.out_of_range.406] "
                        "number overflow parsing '1e400'"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(ReadDileptonConfig("/nonexistent/dir/cfg.json"),
                       doctest::Contains("/nonexistent/dir/cfg.json: cannot open"), io::InputError);
  DileptonConfig bad;
  bad.theory.mass_boson = 'W';
  std::string error;
  CHECK(!bad.IsValid(&error));
  CHECK(error.find("mass_boson is 'W', but must be 'Z'") != std::string::npos);
  CHECK_THROWS_WITH_AS(DileptonProducer{bad}, doctest::Contains("mass_boson is 'W'"),
                       std::invalid_argument);
}

TEST_CASE("DileptonProducer: unreadable event files fail before any work, naming the file") {
  DileptonConfig c = SmallConfig();
  c.simulation.files = {"/nonexistent/sim.h5"};
  const DileptonProducer producer(c);
  CHECK_THROWS_WITH_AS(producer.Fill(ProduceOptions{1, {}}),
                       doctest::Contains("/nonexistent/sim.h5"), io::InputError);
}

TEST_CASE("DileptonProducer refuses a failed or an all-zero calibration (docs/calibration.md)") {
  CalibrationParameters failed = SyntheticCalibration();
  failed.status = "not_converged";
  failed.status_message = "Ceres did not converge: Maximum number of iterations reached.";
  const std::string failed_path =
      std::string(LEPUS_BINARY_DIR) + "/dilepton_failed_calibration.json";
  WriteCalibration(failed_path, failed);
  CalibrationParameters zero = SyntheticCalibration();
  zero.covariance.setZero();
  const std::string zero_path = std::string(LEPUS_BINARY_DIR) + "/dilepton_zero_calibration.json";
  WriteCalibration(zero_path, zero);
  DileptonConfig c = SmallConfig();
  c.calibration_file = failed_path;
  CHECK_THROWS_WITH_AS(DileptonProducer{c},
                       doctest::Contains((failed_path + ": status is \"not_converged\" (Ceres did "
                                                        "not converge: Maximum number of "
                                                        "iterations reached.), but must be "
                                                        "\"converged\"")
                                             .c_str()),
                       io::InputError);
  c.calibration_file = zero_path;
  CHECK_THROWS_WITH_AS(
      DileptonProducer{c},
      doctest::Contains((zero_path + ": covariance is all zero on its diagonal").c_str()),
      io::InputError);
}
