// The W-mass producer (models/wmass.h): histograms against a brute-force loop, identical output
// at 1 and 2 threads, locality of the per-eta-bin variations, closure of the produced fit input
// (Asimov and pseudo-data with a known mass shift), configuration errors.
#include <doctest/doctest.h>
#include <deque>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/errors.h"
#include "lepus/models/generator.h"
#include "lepus/models/wmass.h"
#include "test_support.h"

using namespace lepus;
using namespace lepus::models;

// models/src/producers/producer_common.h (private): the bytes of a partial of `mpirun lepus produce`.
namespace lepus::models::detail {
std::string PartialBytes(const WMassHistograms& h);
void ReadPartial(const std::string& bytes, WMassHistograms* h);
}  // namespace lepus::models::detail

namespace {

// A small light configuration: seconds for the whole chain.
WMassConfig SmallConfig() {
  WMassConfig c = WMassConfig::Light();
  c.simulation.events = 600000;
  c.luminosity_pb = 20.0;
  c.chunk_events = 16384;
  return c;
}

bool SameBits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// One production shared by the closure tests.
struct Produced {
  WMassProduction prod;
};
const Produced& SmallProduction() {
  static const Produced p{ProduceWMass(SmallConfig(), ProduceOptions{2, {}})};
  return p;
}

}  // namespace

TEST_CASE("WMassConfig: presets are valid; light has tens and full thousands of nuisances") {
  std::string error;
  CHECK(WMassConfig::Light().IsValid(&error));
  CHECK(WMassConfig::Full().IsValid(&error));
  const WMassProducer light(WMassConfig::Light());
  int n_light =
      static_cast<int>(light.momentum_nuisances().size() + light.efficiency().nuisances().size());
  for (const auto& t : light.theory().nuisances())
    if (t.role != TheoryRole::kAlternative) ++n_light;
  CHECK(n_light >= 20);
  CHECK(n_light <= 99);
  const WMassProducer full(WMassConfig::Full());
  int n_full =
      static_cast<int>(full.momentum_nuisances().size() + full.efficiency().nuisances().size());
  for (const auto& t : full.theory().nuisances())
    if (t.role != TheoryRole::kAlternative) ++n_full;
  // Plus the non-prompt smoothing nuisances (48 x 2 x 4 + 3) and the luminosity.
  CHECK(n_full + 388 >= 4000);
  CHECK(n_full + 388 <= 5000);
}

TEST_CASE("WMassProducer: the fit-channel histograms equal a brute-force loop over the events") {
  WMassConfig c = SmallConfig();
  const WMassProducer producer(c);
  GeneratorConfig g;
  g.processes = {Process::kWplusMuNu, Process::kWminusMuNu, Process::kZMuMu, Process::kTop};
  g.num_events = 60000;
  g.seed = 5;
  g.luminosity_pb = c.luminosity_pb;
  const Generator gen(g);
  EventBatch batch;
  for (Process p : g.processes) gen.Generate(p, 0, gen.NumEvents(p), &batch);
  WMassHistograms h = producer.MakeHistograms();
  producer.FillBatch(batch, SampleKind::kSimulation, &h);

  // Brute force: every muon, every fate of the other muon, plain formulas.
  const int nfit = 48 * 30 * 2;
  std::vector<std::vector<double>> sumw(kWMassMcSlots, std::vector<double>(nfit, 0.0));
  std::vector<std::vector<double>> sumw2 = sumw;
  std::vector<double> noi_var(nfit, 0.0);
  // The MC variance of a bin: per event the square of the event's total weight there (its muon
  // hypotheses are parts of one event). `merged` counts the bins where an event had two parts.
  int merged = 0;
  // The NOI's linear template (up - down) / 2 per unit and event: W events only (Z, top: no W
  // boson). One loop per sign (BreitWignerWeight caches its normalisation for one shift).
  std::vector<double> noi_delta(batch.size(), 0.0);
  for (double sign : {1.0, -1.0})
    for (std::size_t i = 0; i < batch.size(); ++i)
      if ((batch.process[i] == Process::kWplusMuNu || batch.process[i] == Process::kWminusMuNu) &&
          batch.v_mass[i] > 0)
        noi_delta[i] +=
            0.5 * sign * producer.theory().BreitWignerWeight('W', batch.v_mass[i], 0.1 * sign, 0.0);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const int slot = WMassSlot(batch.process[i]);
    std::map<int, std::pair<double, int>> event_bins;  // bin -> (weight, parts)
    for (int m = 0; m < 2; ++m) {
      const MuonColumns& mu = batch.muon[m];
      const MuonColumns& o = batch.muon[1 - m];
      if (mu.charge[i] == 0 || std::abs(mu.eta[i]) >= 2.4) continue;
      if (mu.pt[i] < 26.0 || mu.pt[i] >= 56.0 || mu.rel_iso[i] >= 0.15) continue;
      const double w0 =
          batch.weight[i] * mu.eff_reco[i] * mu.eff_tracking[i] * mu.eff_id[i] * mu.eff_trigger[i];
      double mx = batch.met_pt[i] * std::cos(batch.met_phi[i]);
      double my = batch.met_pt[i] * std::sin(batch.met_phi[i]);
      struct Fate {
        double w, mx, my;
      };
      std::vector<Fate> fates;
      if (o.charge[i] == 0) {
        fates.push_back({w0, mx, my});
      } else {
        const double e = o.eff_reco[i] * o.eff_tracking[i] * o.eff_id[i];
        if (o.pt[i] <= 10.0) fates.push_back({w0 * e, mx, my});
        fates.push_back(
            {w0 * (1 - e), mx + o.pt[i] * std::cos(o.phi[i]), my + o.pt[i] * std::sin(o.phi[i])});
      }
      for (const Fate& f : fates) {
        const double mt =
            TransverseMass(mu.pt[i], mu.phi[i], std::hypot(f.mx, f.my), std::atan2(f.my, f.mx));
        if (!(mt >= 40.0) || f.w == 0.0) continue;
        const int eb = static_cast<int>(std::floor((mu.eta[i] + 2.4) / 0.1));
        const int pb = static_cast<int>(std::floor(mu.pt[i] - 26.0));
        const int k = (eb * 30 + pb) * 2 + (mu.charge[i] > 0 ? 1 : 0);
        sumw[slot][k] += f.w;
        event_bins[k].first += f.w;
        ++event_bins[k].second;
      }
    }
    const double delta = noi_delta[i];
    for (const auto& [k, wp] : event_bins) {
      sumw2[slot][k] += wp.first * wp.first;
      noi_var[k] += wp.first * delta * wp.first * delta;
      merged += wp.second > 1;
    }
  }
  // The MC variance of the NOI template (WMassHistograms::noi_var, the attenuation's input).
  double noi_total = 0.0;
  for (int k = 0; k < nfit; ++k) {
    REQUIRE(h.noi_var[k] == doctest::Approx(noi_var[k]).epsilon(1e-9));
    noi_total += noi_var[k];
  }
  CHECK(noi_total > 0);
  CHECK(merged > 0);  // the test can tell the per-event variance from the sum over the parts
  const int off = producer.signal_region_offset();
  double total = 0.0;
  int nonzero = 0;
  for (int s = 0; s < kWMassMcSlots; ++s) {
    for (int k = 0; k < nfit; ++k) {
      REQUIRE(h.mc[s].sumw(off + k) == doctest::Approx(sumw[s][k]).epsilon(1e-9));
      REQUIRE(h.mc[s].sumw2(off + k) == doctest::Approx(sumw2[s][k]).epsilon(1e-9));
      total += sumw[s][k];
      nonzero += sumw[s][k] > 0;
    }
  }
  CHECK(total > 0);
  CHECK(nonzero > 1000);
  CHECK(h.sim_events == static_cast<std::int64_t>(batch.size()));
}

TEST_CASE("WMassProducer: a fill spread over 3 ranks (ProduceOptions::ranks) equals one process") {
  // The MPI protocol of `mpirun lepus produce` in one process: ranks 1 and 2 fill their groups
  // of items ((i / G) % 3) and hand the group sums over in group order; rank 0 takes them from
  // those queues. Groups of 1 item (every partial sent) and of 3 (groups that cut across the
  // processes' chunk ranges); one process must use the same G.
  WMassConfig c = SmallConfig();
  c.simulation.events = 200000;
  c.luminosity_pb = 5.0;
  c.chunk_events = 16384;
  const WMassProducer producer(c);
  for (int group : {1, 3}) {
    CAPTURE(group);
    ProduceOptions single{2, {}};
    single.items_per_group = group;
    const WMassHistograms one = producer.Fill(single);
    std::vector<std::deque<std::string>> sent(3);
    for (int r = 1; r < 3; ++r) {
      ProduceOptions o{1, {}};
      o.items_per_group = group;
      o.rank = r;
      o.ranks = 3;
      o.send_partial = [&sent, r](const std::string& bytes) { sent[r].push_back(bytes); };
      producer.Fill(o);
      CHECK(sent[r].size() > 2);
    }
    ProduceOptions o{2, {}};
    o.items_per_group = group;
    o.ranks = 3;
    std::int64_t last_done = 0;
    o.progress = [&last_done](const ProduceProgress& p) { last_done = p.events_done; };
    o.receive_partial = [&sent](int owner) {
      REQUIRE(!sent[owner].empty());
      std::string bytes = std::move(sent[owner].front());
      sent[owner].pop_front();
      return bytes;
    };
    const WMassHistograms three = producer.Fill(o);
    CHECK(sent[1].empty());
    CHECK(sent[2].empty());
    CHECK(last_done == one.sim_events + one.data_events);  // global progress on rank 0
    CHECK(three.sim_events == one.sim_events);
    CHECK(three.data_events == one.data_events);
    CHECK(three.selected == one.selected);
    for (int s = 0; s < kWMassMcSlots; ++s) {
      CHECK(SameBits(one.mc[s].Sumw(), three.mc[s].Sumw()));
      CHECK(SameBits(one.mc[s].Sumw2(), three.mc[s].Sumw2()));
    }
    CHECK(SameBits(one.data.Sumw(), three.data.Sumw()));
    CHECK(SameBits(one.noi_var, three.noi_var));
    const std::vector<double> zeros(producer.fit_space().size(), 0.0);
    for (int id = 0; id < producer.layout().size(); ++id)
      REQUIRE(SameBits(one.variations.Varied(id, zeros), three.variations.Varied(id, zeros)));
  }
  // Truncated bytes are an error, not a silent zero.
  WMassHistograms scratch = producer.Fill(ProduceOptions{1, {}});
  std::string bytes = detail::PartialBytes(scratch);
  CHECK_THROWS_AS(detail::ReadPartial(bytes.substr(0, bytes.size() / 2), &scratch),
                  std::runtime_error);
}

TEST_CASE("WMassProducer: the histograms and the fit input are identical at 1 and 2 threads") {
  WMassConfig c = SmallConfig();
  c.simulation.events = 300000;
  c.luminosity_pb = 10.0;
  const WMassProducer producer(c);
  const WMassHistograms h1 = producer.Fill(ProduceOptions{1, {}});
  const WMassHistograms h2 = producer.Fill(ProduceOptions{2, {}});
  CHECK(h1.sim_events == static_cast<std::int64_t>(c.simulation.events));
  CHECK(h1.sim_events == h2.sim_events);
  CHECK(h1.data_events == h2.data_events);
  for (int s = 0; s < kWMassMcSlots; ++s) {
    CHECK(SameBits(h1.mc[s].Sumw(), h2.mc[s].Sumw()));
    CHECK(SameBits(h1.mc[s].Sumw2(), h2.mc[s].Sumw2()));
  }
  CHECK(SameBits(h1.data.Sumw(), h2.data.Sumw()));
  CHECK(SameBits(h1.noi_var, h2.noi_var));
  const std::vector<double> zeros(producer.fit_space().size(), 0.0);
  for (int id = 0; id < producer.layout().size(); ++id)
    REQUIRE(SameBits(h1.variations.Varied(id, zeros), h2.variations.Varied(id, zeros)));
  const engine::Model m1 = producer.MakeFitInput(h1).Build();
  const engine::Model m2 = producer.MakeFitInput(h2).Build();
  CHECK(m1.systematics == m2.systematics);
  CHECK(SameBits(m1.tensor.norm, m2.tensor.norm));
  CHECK(SameBits(m1.tensor.logk_avg, m2.tensor.logk_avg));
  CHECK(SameBits(m1.tensor.logk_halfdiff, m2.tensor.logk_halfdiff));
  CHECK(m1.tensor.syst == m2.tensor.syst);
}

TEST_CASE(
    "WMassProducer: a per-eta-bin efficiency or momentum-scale nuisance acts in its eta bin only") {
  WMassConfig c = SmallConfig();
  c.simulation.events = 300000;
  c.luminosity_pb = 10.0;
  c.efficiency_config.eta_group = 1;  // per 0.1 eta bin
  c.efficiency_config.poly_order = 1;
  c.efficiency_config.num_eigen = 1;
  c.muon_scale_regions = 0;  // the calibration's own 48 bins
  c.nonprompt = false;
  const WMassProducer producer(c);
  const WMassHistograms h = producer.Fill(ProduceOptions{2, {}});
  const engine::Model m = producer.MakeFitInput(h).Build();
  const int per_eta = 30 * 2;

  auto check_local = [&](const std::string& name, int eta_bin) {
    CAPTURE(name);
    const int id = producer.layout().Find(name, 0);
    REQUIRE(id >= 0);
    CHECK(producer.layout().support(id).begin == eta_bin * per_eta);
    CHECK(producer.layout().support(id).end == (eta_bin + 1) * per_eta);
    CHECK(h.variations.AbsSum(id) > 0.0);
    // In the fit input: every logk entry of this systematic lies in the eta bin.
    int col = -1;
    for (int s = 0; s < m.num_systematics(); ++s)
      if (m.systematics[s] == name) col = s;
    REQUIRE(col >= 0);
    int entries = 0;
    for (std::int64_t r = 0; r < m.tensor.num_rows(); ++r)
      for (auto e = m.tensor.row_start[r]; e < m.tensor.row_start[r + 1]; ++e)
        if (m.tensor.syst[e] == col) {
          ++entries;
          const int bin = m.tensor.row_bin[r];
          REQUIRE(bin / per_eta == eta_bin);
        }
    CHECK(entries > 0);
  };
  // Efficiency: the statistical nuisances of eta bin 17 (positive charge, first eigenvector).
  const auto& eff = producer.efficiency();
  const int k = eff.StatIndex(EfficiencyKind::kId, 17, +1);
  REQUIRE(k >= 0);
  check_local(eff.nuisances()[k].name, 17);
  // Momentum scale: the nuisances of one calibration bin move events within that bin only.
  int tested = 0;
  for (const auto& n : producer.momentum_nuisances())
    if (n.first_bin == 30 && n.last_bin == 30) {
      check_local(n.name, 30);
      ++tested;
    }
  CHECK(tested == 3);
}

TEST_CASE(
    "WMassProducer: fitting the Asimov data set of a produced input returns the nominal values") {
  const engine::Model& model = SmallProduction().prod.model;
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

TEST_CASE("WMassProducer: fitting pseudo-data with a +30 MeV mass shift recovers it") {
  const engine::Model& model = SmallProduction().prod.model;
  const auto& names = model.pseudodata_names;
  std::set<std::string> have(names.begin(), names.end());
  CHECK(have.count("mass_shift_m30MeV"));
  CHECK(have.count("mass_shift_0MeV"));
  REQUIRE(have.count("mass_shift_p30MeV"));
  engine::Likelihood lik{engine::Model(model)};
  const auto col = std::find(names.begin(), names.end(), "mass_shift_p30MeV") - names.begin();
  lik.SetData(model.pseudodata.col(col));
  const engine::FitResult r = engine::Fit(lik);
  REQUIRE(r.ok());
  const int i = lik.FindParam(kWMassNoi);
  REQUIRE(i >= 0);
  const double shift = 100.0 * r.values[i], error = 100.0 * r.errors[i];
  CAPTURE(shift);
  CAPTURE(error);
  CHECK(std::abs(shift - 30.0) < error);
  // The Breit-Wigner template pair is close to linear: the +30 MeV point within 1 MeV.
  CHECK(std::abs(shift - 30.0) < 1.0);
  CHECK(lik.params()[i].scale == 100.0);
  CHECK(lik.params()[i].unit == "MeV");
}

TEST_CASE(
    "WMassProducer: generated data with a known +30 MeV offset are recovered within the "
    "uncertainty") {
  WMassConfig c = SmallConfig();
  c.simulation.events = 2000000;
  c.luminosity_pb = 50.0;
  c.data_mw_shift_mev = 30.0;
  c.simulation.seed = 21;
  c.data.seed = 22;
  const WMassProduction p = ProduceWMass(c, ProduceOptions{2, {}});
  engine::Likelihood lik{engine::Model(p.model)};
  const engine::FitResult r = engine::Fit(lik);
  REQUIRE(r.ok());
  const int i = lik.FindParam(kWMassNoi);
  const double shift = 100.0 * r.values[i], error = 100.0 * r.errors[i];
  CAPTURE(shift);
  CAPTURE(error);
  CHECK(std::abs(shift - 30.0) < 2.0 * error);
}

TEST_CASE(
    "WMassProducer: prompt-background normalisations scale their processes by exactly 1 + size") {
  CHECK(WMassConfig::Full().background_norms.z == 0.03);
  CHECK(WMassConfig::Full().background_norms.top == 0.06);
  CHECK(WMassConfig::Full().background_norms.diboson == 0.16);
  CHECK(WMassConfig::Light().background_norms.top == 0.0);  // the demo's input is unchanged
  WMassConfig c = SmallConfig();
  c.simulation.events = 300000;
  c.background_norms = {0.03, 0.06, 0.16};
  const WMassProduction p = ProduceWMass(c, ProduceOptions{2, {}});
  const engine::Model& m = p.model;
  const auto group = std::find_if(m.groups.begin(), m.groups.end(),
                                  [](const auto& g) { return g.name == "promptBackground"; });
  REQUIRE(group != m.groups.end());
  CHECK(group->members.size() == 3);
  engine::Likelihood lik{engine::Model(m)};
  const Eigen::VectorXd x0 = lik.InitialParams();
  const Eigen::MatrixXd y0 = lik.ExpectedYieldsPerProcess(x0);
  const std::map<std::string, std::pair<double, std::set<std::string>>> expected = {
      {"normZ", {1.03, {"Zmumu", "Ztautau"}}},
      {"normTop", {1.06, {"top"}}},
      {"normDiboson", {1.16, {"diboson"}}}};
  for (const auto& [name, want] : expected) {
    CAPTURE(name);
    const int j = lik.FindParam(name);
    REQUIRE(j >= 0);
    Eigen::VectorXd x = x0;
    x[j] += 1.0;
    const Eigen::MatrixXd y = lik.ExpectedYieldsPerProcess(x);
    for (std::size_t q = 0; q < m.processes.size(); ++q) {
      CAPTURE(m.processes[q]);
      const double factor = want.second.count(m.processes[q]) ? want.first : 1.0;
      for (Eigen::Index b = 0; b < y.rows(); ++b)
        CHECK(y(b, q) == doctest::Approx(factor * y0(b, q)).epsilon(1e-12));
    }
  }
  // The W-like fit's signal is the Z: no normZ there, top and diboson as in the W fit.
  WMassConfig wl = WMassConfig::WLikeLight();
  wl.background_norms = {0.03, 0.06, 0.16};
  wl.simulation.events = 300000;
  wl.luminosity_pb = 20.0;
  wl.chunk_events = 16384;
  const WMassProduction pw = ProduceWMass(wl, ProduceOptions{2, {}});
  const auto& sw = pw.model.systematics;
  CHECK(std::find(sw.begin(), sw.end(), "normZ") == sw.end());
}

TEST_CASE("WMassConfig: JSON reading with clear errors") {
  auto parse = [](const std::string& text) { return WMassConfigFromJson(text, "cfg.json"); };
  const WMassConfig ok = parse(R"({"lepus_config_version": 1, "preset": "full",
      "binning": {"eta_bins": 24}, "simulation": {"events": 1000, "seed": 9},
      "systematics": {"efficiency": {"num_eigen": 2}, "luminosity": 0.02,
                      "angular_coeffs": {"components": ["A0", "A4"]}}})");
  CHECK(ok.preset == WMassPreset::kFull);
  CHECK(ok.eta_bins == 24);
  CHECK(ok.simulation.events == 1000);
  CHECK(ok.simulation.seed == 9);
  CHECK(ok.efficiency_config.num_eigen == 2);
  CHECK(ok.lumi_uncertainty == 0.02);
  CHECK(ok.theory.helicity_components[1]);
  CHECK(!ok.theory.helicity_components[0]);
  // The JSON of a configuration reads back to the same JSON.
  CHECK(parse(ok.ToJson()).ToJson() == ok.ToJson());
  CHECK(parse(WMassConfig::Light().ToJson()).ToJson() == WMassConfig::Light().ToJson());
  CHECK(ok.background_norms.diboson == 0.16);  // the full preset's
  CHECK(parse(R"({"lepus_config_version": 1,
      "systematics": {"background_norms": {"top": 0.1}}})")
            .background_norms.top == 0.1);
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "systematics": {"background_norms": {"top": 1.5}}})"),
      doctest::Contains("systematics.background_norms.top is 1.5, but must be in [0, 1)"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "systematics": {"background_norms": {"tt": 0.1}}})"),
      doctest::Contains("tt"), std::invalid_argument);

  CHECK_THROWS_WITH_AS(parse(R"({"preset": "light"})"),
                       doctest::Contains("cfg.json: missing key 'lepus_config_version'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"({"lepus_config_version": 2})"),
                       doctest::Contains("cfg.json: lepus_config_version is 2, but this lepus "
                                         "reads version 1"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "systematics": {"efficency": {}}})"),
      doctest::Contains("cfg.json: unknown key 'systematics.efficency' (did you mean "
                        "'systematics.efficiency'?)"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"({"lepus_config_version": 1, "systematics": {"efficiency": {"num_eigen": "4"}}})"),
      doctest::Contains("cfg.json: systematics.efficiency.num_eigen is \"4\" (string), but must "
                        "be an integer"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"({"lepus_config_version": 1, "luminosity_pb": true})"),
                       doctest::Contains("cfg.json: luminosity_pb is true (boolean), but must be "
                                         "a number"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"({"lepus_config_version": 1, "preset": "huge"})"),
                       doctest::Contains("preset is \"huge\" (string), but must be"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"({"lepus_config_version": 1, "binning": {"eta_bins": 5}})"),
                       doctest::Contains("cfg.json: eta_bins is 5, but must divide 48"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(
          R"({"lepus_config_version": 1, "systematics": {"mass": {"pseudodata_shifts_mev": [25]}}})"),
      doctest::Contains("pseudodata_shifts_mev[0] is 25, but must be a multiple of mass.step_mev"),
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
  CHECK_THROWS_WITH_AS(ReadWMassConfig("/nonexistent/dir/cfg.json"),
                       doctest::Contains("/nonexistent/dir/cfg.json: cannot open"), io::InputError);

  WMassConfig bad = WMassConfig::Light();
  bad.simulation.events = 0;
  std::string error;
  CHECK(!bad.IsValid(&error));
  CHECK(error.find("simulation.events is 0") != std::string::npos);
  CHECK_THROWS_WITH_AS(WMassProducer{bad}, doctest::Contains("simulation.events is 0"),
                       std::invalid_argument);
}

TEST_CASE("WMassProducer: unreadable event files fail before any work, naming the file") {
  WMassConfig c = SmallConfig();
  c.simulation.files = {"/nonexistent/sim.h5"};
  const WMassProducer producer(c);
  CHECK_THROWS_WITH_AS(producer.Fill(ProduceOptions{1, {}}),
                       doctest::Contains("/nonexistent/sim.h5"), io::InputError);
}

TEST_CASE("WMassProducer refuses a failed or an all-zero calibration (docs/calibration.md)") {
  CalibrationParameters failed = SyntheticCalibration();
  failed.status = "covariance_failed";
  failed.status_message = "converged, but the covariance could not be computed";
  const std::string failed_path = lepus::test::TempPath("wmass_failed_calibration", ".json");
  WriteCalibration(failed_path, failed);
  CalibrationParameters zero = SyntheticCalibration();
  zero.covariance.setZero();
  const std::string zero_path = lepus::test::TempPath("wmass_zero_calibration", ".json");
  WriteCalibration(zero_path, zero);
  for (WMassAnalysis analysis : {WMassAnalysis::kWMass, WMassAnalysis::kWLike}) {
    WMassConfig c =
        analysis == WMassAnalysis::kWMass ? WMassConfig::Light() : WMassConfig::WLikeLight();
    c.calibration_file = failed_path;
    CHECK_THROWS_WITH_AS(
        WMassProducer{c},
        doctest::Contains((failed_path + ": status is \"covariance_failed\" "
                                         "(converged, but the covariance could "
                                         "not be computed), but must be \"converged\"")
                              .c_str()),
        io::InputError);
    c.calibration_file = zero_path;
    CHECK_THROWS_WITH_AS(
        WMassProducer{c},
        doctest::Contains((zero_path + ": covariance is all zero on its diagonal").c_str()),
        io::InputError);
  }
}
