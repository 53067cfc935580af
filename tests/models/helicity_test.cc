// The helicity cross-section fit (models/helicity.h, the helicity mode of models/wmass.h): the
// split processes add up to the unsplit signal, the masked channel holds sigma_UL and
// sigma_UL <A_i>, every retained variation acts on every split process and the replaced
// angular-coefficient nuisances on none, Asimov closure (exact), the modified-A_i pseudo-data
// set (exact), and generated data with modified A_i recovered within uncertainties.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <tbb/parallel_for.h>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/generator.h"
#include "lepus/models/helicity.h"
#include "lepus/models/wmass.h"

using namespace lepus;
using namespace lepus::models;

namespace {

// The light helicity configuration on a coarser reco binning, without the data-truth
// differences: seconds for the whole chain.
WMassConfig SmallConfig(bool free) {
  WMassConfig c = WMassConfig::Helicity(WMassPreset::kLight);
  c.eta_bins = 24;
  c.pt_bins = 15;
  c.simulation.events = 1000000;
  c.luminosity_pb = 20.0;
  c.chunk_events = 1 << 15;
  c.nonprompt = false;
  c.data_mw_shift_mev = 0.0;
  c.data_scale_bias = false;
  c.data_efficiency_bias = false;
  c.helicity.free = free;
  return c;
}

const WMassProduction& Production(bool free) {
  static std::map<bool, WMassProduction> cache;
  auto it = cache.find(free);
  if (it == cache.end())
    it = cache.emplace(free, ProduceWMass(SmallConfig(free), ProduceOptions{2, {}})).first;
  return it->second;
}

engine::FitResult FitWith(const engine::Likelihood& lik) {
  engine::FitOptions o;
  return engine::Fit(lik, o);
}

}  // namespace

TEST_CASE("HelicityConfig: presets valid, errors name the field") {
  std::string error;
  CHECK(WMassConfig::Helicity(WMassPreset::kLight).IsValid(&error));
  CHECK(WMassConfig::Helicity(WMassPreset::kFull).IsValid(&error));
  CHECK(HelicitySplit(HelicityConfig::Reference()).num_processes() == 2 * 9 * 8 * 6);
  CHECK(HelicitySplit(HelicityConfig::Light()).num_processes() == 2 * 3 * 2 * 6);
  HelicityConfig h = HelicityConfig::Light();
  h.pt_edges = {0, 10, 5};
  CHECK_FALSE(h.IsValid(&error));
  CHECK(error.find("helicity.pt_edges is [0, 10, 5]") != std::string::npos);
  h = HelicityConfig::Light();
  h.prior_width = 0;
  CHECK_FALSE(h.IsValid(&error));
  CHECK(error.find("helicity.prior_width") != std::string::npos);
  const HelicitySplit s(HelicityConfig::Light());
  const int p = s.Process(s.Cell(+1, 12.0, -1.5), 5);
  CHECK(s.ProcessName(p) == "Wmunu_plus_ptV1_yV1_A4");
  CHECK(s.ChargeOf(p) == 1);
  CHECK(s.PtBinOf(p) == 1);
  CHECK(s.YBinOf(p) == 1);
  CHECK(s.ComponentOf(p) == 5);
  CHECK(s.ProcessName(s.Process(s.Cell(-1, 100.0, 0.1), 0)) == "Wmunu_minus_ptV2_yV0_UL");
  // JSON round trip.
  WMassConfig c = WMassConfig::Helicity(WMassPreset::kLight);
  c.helicity.free = true;
  c.helicity.data_a_scale[4] = 0.8;
  const WMassConfig back = WMassConfigFromJson(c.ToJson(), "test");
  CHECK(back.ToJson() == c.ToJson());
  CHECK(back.helicity.enabled);
  CHECK(back.helicity.free);
  CHECK(back.helicity.data_a_scale[4] == 0.8);
  CHECK_THROWS_WITH_AS(
      WMassConfigFromJson(R"({"lepus_config_version": 1, "helicity": {"free": true}})", "cfg"),
      doctest::Contains("helicity is given, but the producer is \"wmass\""), std::invalid_argument);
}

TEST_CASE("Helicity split: the split processes add up to the signal; the masked channel") {
  const WMassConfig c = SmallConfig(false);
  const WMassProducer producer(c);
  const WMassHistograms h = producer.Fill(ProduceOptions{2, {}});
  const HelicitySplit split(c.helicity);
  REQUIRE(static_cast<int>(h.split.size()) == split.num_processes());
  const int off = producer.signal_region_offset();
  const int n = producer.fit_space().size();
  double total = 0.0, max_rel = 0.0;
  int negative_bins = 0;
  for (int i = 0; i < n; ++i) {
    double sum = 0.0;
    for (const auto& t : h.split) {
      sum += t.sumw(i);
      negative_bins += t.sumw(i) < 0;
    }
    const double ref = h.mc[0].sumw(off + i);
    total += ref;
    if (ref > 0) max_rel = std::max(max_rel, std::abs(sum - ref) / ref);
  }
  CHECK(total > 1000);
  CHECK(max_rel < 1e-9);
  CHECK(negative_bins > 0);  // A_i P_i / D < 0: e.g. A0 at |cos theta| > 1/sqrt(3)
  // Generator-level cross sections: sigma_UL adds up to the W -> mu nu rate, A_i in range.
  double sigma = 0.0;
  for (int cell = 0; cell < split.num_cells(); ++cell) {
    const double ul = h.split_xsec[split.Process(cell, 0)];
    CHECK(ul > 0);
    sigma += ul;
    const double a0 = h.split_xsec[split.Process(cell, 1)] / ul;
    const double a4 = h.split_xsec[split.Process(cell, 5)] / ul;
    CHECK(a0 > 0);
    CHECK(a0 < 0.5);
    CHECK(a4 >= 0);
    CHECK(a4 < 2);
  }
  CHECK(sigma == doctest::Approx(11800.0 + 8800.0).epsilon(0.01));
}

TEST_CASE("Helicity split: per bin, the components' MC variance adds up to the unsplit sumw2") {
  // The components of an event are not independent: the split templates' sumw2 summed over the
  // components is the unsplit signal's sumw2 in every fit bin (docs/helicity.md, "MC-statistics
  // variance"), and no component has a negative variance.
  const WMassConfig c = SmallConfig(false);
  const WMassProducer producer(c);
  const WMassHistograms h = producer.Fill(ProduceOptions{2, {}});
  const int off = producer.signal_region_offset();
  const int n = producer.fit_space().size();
  double max_rel = 0.0, total = 0.0, total_sq = 0.0;
  int negative = 0, filled = 0;
  for (int i = 0; i < n; ++i) {
    double sum = 0.0;
    for (const auto& t : h.split) {
      sum += t.sumw2(i);
      negative += t.sumw2(i) < 0;
    }
    const double ref = h.mc[0].sumw2(off + i);
    if (ref > 0) {
      ++filled;
      max_rel = std::max(max_rel, std::abs(sum - ref) / ref);
    } else {
      CHECK(sum == 0.0);
    }
    total += sum;
    total_sq += ref;
  }
  CHECK(filled > n / 2);
  CHECK(negative == 0);
  CHECK(max_rel < 1e-12);
  CHECK(total == doctest::Approx(total_sq).epsilon(1e-12));
}

TEST_CASE("Helicity fit input: variations on every split process, replaced nuisances dropped") {
  const engine::Model& m = Production(false).model;
  std::map<std::string, int> proc;
  for (int p = 0; p < m.num_processes(); ++p) proc[m.processes[p]] = p;
  const HelicitySplit split(SmallConfig(false).helicity);
  REQUIRE(proc.count("Wmunu") == 0);
  for (int p = 0; p < split.num_processes(); ++p) REQUIRE(proc.count(split.ProcessName(p)) == 1);
  std::map<std::string, int> syst;
  for (int s = 0; s < m.num_systematics(); ++s) syst[m.systematics[s]] = s;
  // Per (process, systematic): has any tensor entry.
  std::set<std::pair<int, int>> acts;
  const engine::Tensor& t = m.tensor;
  for (std::int64_t r = 0; r + 1 < static_cast<std::int64_t>(t.row_start.size()); ++r)
    for (std::int64_t e = t.row_start[r]; e < t.row_start[r + 1]; ++e)
      acts.insert({t.row_proc[r], t.syst[e]});
  const std::vector<std::string> retained = {
      kWMassNoi, "widthW0p6MeV", "pdf1", "npCSKernel", "ewShared", "lumi", "effSyst_trigger"};
  for (const auto& name : retained) REQUIRE(syst.count(name) == 1);
  int split_with_norm = 0;
  for (int p = 0; p < split.num_processes(); ++p) {
    const int ip = proc[split.ProcessName(p)];
    for (const auto& name : retained) {
      INFO(split.ProcessName(p), " ", name);
      CHECK(acts.count({ip, syst[name]}) == 1);
    }
    split_with_norm += acts.count({ip, syst[split.NormName(p)]});
    // Momentum scale: each nuisance acts on one eta region, moving few events of a small
    // template (below); here: some act on every split process.
    int scale = 0;
    for (const auto& [name, s] : syst)
      if (name.rfind("muonScaleStat", 0) == 0) scale += acts.count({ip, s});
    CHECK(scale >= 1);
    for (const auto& [name, s] : syst)
      if (name.rfind("helicity_", 0) == 0 && name.find("_W") != std::string::npos)
        CHECK(acts.count({ip, s}) == 0);
  }
  CHECK(split_with_norm == split.num_processes());
  // Every momentum-scale nuisance acts on some split process.
  for (const auto& [name, s] : syst) {
    if (name.rfind("muonScaleStat", 0) != 0) continue;
    int on_split = 0;
    for (int p = 0; p < split.num_processes(); ++p)
      on_split += acts.count({proc[split.ProcessName(p)], s});
    INFO(name);
    CHECK(on_split > 0);
  }
  // The W angular-coefficient nuisances remain on W -> tau nu.
  const int wtau = proc["Wtaunu"];
  CHECK(acts.count({wtau, syst["helicity_A0_Wplus"]}) == 1);
}

TEST_CASE("Helicity fit: Asimov closure is exact (prior and free)") {
  for (bool free : {false, true}) {
    CAPTURE(free);
    engine::Likelihood lik(Production(free).model);
    lik.SetData(engine::AsimovData(lik, lik.InitialParams()));
    const engine::FitResult r = FitWith(lik);
    REQUIRE(r.ok());
    CHECK(std::abs(r.values[lik.FindParam(kWMassNoi)]) < 1e-5);
    const auto cells = HelicityCoefficients(lik, r);
    REQUIRE(cells.size() == 12);
    for (const auto& cell : cells)
      for (int c = 0; c < kNumHelicityComponents; ++c) {
        CHECK(cell.sigma[c] == doctest::Approx(cell.sigma_prefit[c]).epsilon(1e-6));
        CHECK(cell.coeff[c] == doctest::Approx(cell.coeff_prefit[c]).epsilon(1e-6));
        CHECK(cell.sigma_error[c] > 0);
      }
    // UL and A0, A4 are measured; the cross section to a few per cent.
    CHECK(cells[0].sigma_error[0] / cells[0].sigma[0] < 0.1);
  }
}

TEST_CASE("Helicity fit: the modified-A_i pseudo-data set is recovered exactly (free)") {
  engine::Likelihood lik(Production(true).model);
  const auto& names = lik.model().pseudodata_names;
  int k = -1;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == "helicity_A0x1p2_A4x0p9") k = static_cast<int>(i);
  REQUIRE(k >= 0);
  lik.SetData(lik.model().pseudodata.col(k));
  const engine::FitResult r = FitWith(lik);
  REQUIRE(r.ok());
  CHECK(std::abs(r.values[lik.FindParam(kWMassNoi)]) < 1e-4);
  for (const auto& cell : HelicityCoefficients(lik, r)) {
    CHECK(cell.coeff[1] == doctest::Approx(1.2 * cell.coeff_prefit[1]).epsilon(1e-4));
    CHECK(cell.coeff[5] == doctest::Approx(0.9 * cell.coeff_prefit[5]).epsilon(1e-4));
    CHECK(cell.coeff[3] == doctest::Approx(cell.coeff_prefit[3]).epsilon(1e-4));
  }
}

TEST_CASE("Helicity fit: m_W is fitted alongside: the mass-shift pseudo-data set (prior)") {
  // Additive systematics (the component templates can be negative): the +-30 MeV sets return
  // the shift to 1 MeV, as in the W-mass fit.
  engine::Likelihood lik(Production(false).model);
  const auto& names = lik.model().pseudodata_names;
  for (const char* name : {"mass_shift_p30MeV", "mass_shift_m30MeV"}) {
    int k = -1;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) k = static_cast<int>(i);
    REQUIRE(k >= 0);
    lik.SetData(lik.model().pseudodata.col(k));
    const engine::FitResult r = FitWith(lik);
    REQUIRE(r.ok());
    const double dm = r.values[lik.FindParam(kWMassNoi)] * 100.0;
    CAPTURE(name);
    CHECK(std::abs(std::abs(dm) - 30.0) < 1.0);
    CHECK(dm * (name[11] == 'p' ? 1 : -1) > 0);
  }
}

TEST_CASE("Helicity fit: generated data with A0 x1.5, A4 x0.6 are recovered within errors") {
  WMassConfig c = SmallConfig(true);
  // Coarse cells (2 pT bins, |y| inclusive): the per-cell coefficients resolve the modification
  // at test statistics (the light cells need ~10x the luminosity).
  c.helicity.pt_edges = {0.0, 10.0};
  c.helicity.y_edges = {0.0};
  c.helicity.data_a_scale[0] = 1.5;  // A0
  c.helicity.data_a_scale[4] = 0.6;  // A4
  c.luminosity_pb = 100.0;
  c.simulation.events = 2000000;
  if (const char* seed = std::getenv("LEPUS_HELICITY_SEED")) {
    c.simulation.seed = std::strtoull(seed, nullptr, 10);
    c.data.seed = c.simulation.seed + 1;
  }
  const WMassProduction prod = ProduceWMass(c, ProduceOptions{2, {}});
  engine::Likelihood lik(prod.model);
  const engine::FitResult r = FitWith(lik);
  REQUIRE(r.ok());
  const double dm = r.values[lik.FindParam(kWMassNoi)] * 100.0;
  const double em = r.errors[lik.FindParam(kWMassNoi)] * 100.0;
  MESSAGE("m_W shift " << dm << " +- " << em << " MeV");
  CHECK(std::abs(dm) < 3 * em);
  double chi2 = 0.0, chi2_nominal = 0.0;
  int n = 0;
  for (const auto& cell : HelicityCoefficients(lik, r)) {
    for (int comp : {1, 5}) {
      const double truth = cell.coeff_prefit[comp] * (comp == 1 ? 1.5 : 0.6);
      const double pull = (cell.coeff[comp] - truth) / cell.coeff_error[comp];
      MESSAGE("q " << cell.charge << " pt " << cell.pt_bin << " y " << cell.y_bin << " A"
                   << comp - 1 << " " << cell.coeff[comp] << " +- " << cell.coeff_error[comp]
                   << " truth " << truth << " nominal " << cell.coeff_prefit[comp]);
      CHECK(std::abs(pull) < 3.5);
      chi2 += pull * pull;
      const double pull_nominal =
          (cell.coeff[comp] - cell.coeff_prefit[comp]) / cell.coeff_error[comp];
      chi2_nominal += pull_nominal * pull_nominal;
      ++n;
    }
  }
  MESSAGE("chi2 " << chi2 << " / " << n << " (against the unmodified A_i: " << chi2_nominal << ")");
  CHECK(chi2 < 2.5 * n);
  // The modification is resolved, with all correlations: a likelihood-ratio test with the A0 and
  // A4 strengths of every cell fixed to the truth (1.5, 0.6) and to the unmodified values (1).
  auto fixed_nll = [&](double a0, double a4) {
    engine::FitOptions o;
    o.initial_params = r.x;
    o.frozen.assign(r.x.size(), false);
    o.compute_covariance = false;
    const HelicitySplit split(c.helicity);
    for (int p = 0; p < split.num_processes(); ++p) {
      const int comp = split.ComponentOf(p);
      if (comp != 1 && comp != 5) continue;
      const int k = lik.FindParam(split.ProcessName(p));
      REQUIRE(k >= 0);
      o.frozen[k] = true;
      o.initial_params[k] = comp == 1 ? a0 : a4;
    }
    const engine::FitResult f = engine::Fit(lik, o);
    REQUIRE(f.ok());
    return 2.0 * (f.nll - r.nll);
  };
  const double q_truth = fixed_nll(1.5, 0.6), q_nominal = fixed_nll(1.0, 1.0);
  MESSAGE("2 dNLL: A0, A4 at the truth " << q_truth << ", unmodified " << q_nominal << " (" << n
                                         << " parameters fixed)");
  CHECK(q_truth < n + 3 * std::sqrt(2.0 * n));  // chi-square(n) at the truth
  CHECK(q_nominal > q_truth + 25);              // the unmodified A_i excluded by > 5 sigma
}

TEST_CASE("Helicity fit: with independent simulation samples, 2 dNLL at the truth ~ chi2(free)") {
  // The test of the stored MC variance: each toy is an independent simulation sample (the
  // templates fluctuate) and Poisson data around the truth (the expectation of a sample 30 times
  // larger). Barlow-Beeston lite profiles the templates' fluctuation with the stored sumw2, so
  // the likelihood ratio at the truth (every strength 1) against the best fit follows chi2 with
  // the number of free strengths only if the stored variance is the templates' true variance:
  // the former sum over components of (w h_c)^2 (1.25x the unsplit variance) gave too small a
  // mean. Light: one cell per charge (12 free strengths), 4 x 8 x 2 reco bins, simulation-
  // dominated statistics (data ~2x the simulated signal events), systematics frozen.
  WMassConfig c = WMassConfig::Helicity(WMassPreset::kLight);
  c.eta_bins = 4;
  c.pt_bins = 8;
  c.helicity.pt_edges = {0.0};
  c.helicity.y_edges = {0.0};
  c.helicity.free = true;
  c.helicity.pseudodata.clear();
  c.nonprompt = false;
  c.muon_scale = false;
  c.efficiency = false;
  c.lumi_uncertainty = 0.0;
  c.pseudodata_shifts_mev.clear();
  c.theory.pdf_pairs = 0;
  c.theory.pdf_alphas = false;
  c.theory.electroweak = false;
  c.theory.shower_kt = false;
  c.theory.resummation_terms = 0;
  c.theory.mass_steps = false;
  c.luminosity_pb = 5.0;
  const std::uint64_t n_sim = 50000;
  const WMassProducer producer(c);
  const int off = producer.signal_region_offset();
  const int nfit = producer.fit_space().size();

  auto generator = [&](std::uint64_t events, std::uint64_t seed) {
    GeneratorConfig g;
    g.sample = SampleKind::kSimulation;
    g.processes = {Process::kWplusMuNu, Process::kWminusMuNu};
    g.num_events = events;
    g.luminosity_pb = c.luminosity_pb;
    g.seed = seed;
    g.physics = GeneratorParams::Simulation();
    g.detector = DetectorParams::Simulation();
    return Generator(g);
  };
  auto fill = [&](const Generator& gen, WMassHistograms* h) {
    EventBatch batch;
    for (Process p : {Process::kWplusMuNu, Process::kWminusMuNu})
      for (std::uint64_t first = 0; first < gen.NumEvents(p); first += 1 << 15) {
        batch.Clear();
        gen.Generate(p, first, std::min<std::uint64_t>(1 << 15, gen.NumEvents(p) - first), &batch);
        producer.FillBatch(batch, SampleKind::kSimulation, h);
      }
  };
  // The truth: the signal expectation per fit bin from a 30x larger sample.
  std::vector<double> truth(nfit, 0.0);
  {
    WMassHistograms big = producer.MakeHistograms();
    fill(generator(30 * n_sim, 999), &big);
    for (int i = 0; i < nfit; ++i) truth[i] = big.mc[0].sumw(off + i);
  }
  const int toys = 200;
  // Seeds: simulation 1000 + base + t, data 77 + base + t (LEPUS_HELICITY_SEED = base, default 0).
  std::uint64_t base = 0;
  if (const char* seed = std::getenv("LEPUS_HELICITY_SEED"))
    base = std::strtoull(seed, nullptr, 10);
  std::vector<double> q(toys, -1.0);
  std::vector<int> free_params(toys, 0);
  tbb::parallel_for(0, toys, [&](int t) {
    WMassHistograms h = producer.MakeHistograms();
    fill(generator(n_sim, 1000 + base + t), &h);
    std::mt19937_64 rng(77 + base + t);
    for (int i = 0; i < nfit; ++i) {
      std::poisson_distribution<long> pois(truth[i]);
      const double k = static_cast<double>(pois(rng));
      if (k > 0) h.data.Fill(off + i, k, k);
    }
    engine::Likelihood lik(producer.MakeFitInput(h).Build());
    engine::FitOptions o;
    o.frozen.assign(lik.num_params(), false);
    int nfree = 0;
    for (int k = 0; k < lik.num_params(); ++k) {
      o.frozen[k] = lik.params()[k].kind != engine::ParamKind::kPoi;
      nfree += !o.frozen[k];
    }
    const engine::FitResult r = engine::Fit(lik, o);
    if (!r.ok()) {
      MESSAGE("toy " << t << ": " << r.BriefReport());
      return;
    }
    free_params[t] = nfree;
    q[t] = 2.0 * (lik.Value(lik.InitialParams()) - lik.Value(r.x));
  });
  double sum = 0.0, sum2 = 0.0;
  int ok = 0;
  for (int t = 0; t < toys; ++t) {
    if (q[t] < 0) continue;
    CHECK(free_params[t] == 12);
    ++ok;
    sum += q[t];
    sum2 += q[t] * q[t];
  }
  REQUIRE(ok >= toys - 2);
  const double mean = sum / ok;
  const double sd = std::sqrt(std::max(0.0, sum2 / ok - mean * mean));
  MESSAGE("2 dNLL at the truth over " << ok << " toys: mean " << mean << " +- "
                                      << sd / std::sqrt(ok) << ", width " << sd
                                      << " (chi2(12): 12, " << std::sqrt(24.0) << ")");
  CHECK(std::abs(mean - 12.0) < 3.0 * std::sqrt(2.0 * 12.0 / ok));
}
