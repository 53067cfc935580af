// The dilepton m_Z producer (dilepton.h; docs/dilepton.md): selection of opposite-sign isolated
// muon pairs, the eta x m_mumu histograms with every variation filled in one pass, and the fit
// input.
#include "lepus/models/dilepton.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "lepus/io/errors.h"
#include "producer_common.h"

namespace lepus::models {

namespace {

constexpr double kEtaMax = 2.4;
// Pairs within these margins outside the selection (pT in GeV, mass in GeV) are followed through
// the momentum variations, which can move them in (scale shifts are ~1e-3 x pT; resolution ones
// a fraction of pT - gen_pT).
constexpr double kPtMargin = 1.0;
constexpr double kMassMargin = 2.0;

const char* kSlotNames[kDileptonMcSlots] = {"Zmumu", "Ztautau", "top", "diboson"};

// One selected (or nearly selected) simulated muon pair.
struct Candidate {
  std::uint32_t event;
  std::int8_t slot;
  std::int8_t charge[2];
  double w;  // nominal weight, efficiencies included
  double pt[2], eta[2], gen_pt[2];
  double eff_iso[2];
  double trigger[2];  // trigger efficiencies (for the trigger scale-factor variations)
  double k;           // m^2 = k pT1 pT2
  int eta_base;       // eta bin of the most forward muon x the eta stride
  int fit_bin;        // bin in the fit channel, -1 if not selected
};

// Per-work-item scratch space (reused; never shared between threads).
struct Scratch {
  std::vector<Candidate> cand;
  std::vector<int> theory_cand;
  EventBatch sub;
  TheoryInputs inputs;
  std::vector<double> up, down;
  std::vector<ActiveEfficiencyVariation> active[2];
  std::vector<double> rel_first;  // per efficiency nuisance: r of the first muon (0 = none)
};

}  // namespace

const char* DileptonSlotName(int slot) {
  if (slot < 0 || slot >= kDileptonMcSlots) return "other";
  return kSlotNames[slot];
}

int DileptonSlot(Process process) noexcept {
  switch (process) {
    case Process::kZMuMu:
      return 0;
    case Process::kZTauTau:
      return 1;
    case Process::kTop:
      return 2;
    case Process::kDiboson:
      return 3;
    default:
      return -1;
  }
}

double MasslessDimuonMass(double pt1, double eta1, double phi1, double pt2, double eta2,
                          double phi2) {
  const double m2 = 2.0 * pt1 * pt2 * (std::cosh(eta1 - eta2) - std::cos(phi1 - phi2));
  return m2 > 0 ? std::sqrt(m2) : 0.0;
}

// ---- DileptonHistograms

void DileptonHistograms::Reset() {
  for (auto& h : mc) h.Reset();
  data.Reset();
  variations.Reset();
  sim_events = data_events = 0;
  selected.fill(0);
  data_selected = 0;
  other_sim_skipped = 0;
}

DileptonHistograms& DileptonHistograms::operator+=(const DileptonHistograms& o) {
  for (std::size_t s = 0; s < mc.size(); ++s) mc[s] += o.mc[s];
  data += o.data;
  variations += o.variations;
  sim_events += o.sim_events;
  data_events += o.data_events;
  for (int s = 0; s < kDileptonMcSlots; ++s) selected[s] += o.selected[s];
  data_selected += o.data_selected;
  other_sim_skipped += o.other_sim_skipped;
  return *this;
}

// ---- Impl

struct DileptonProducer::Impl {
  DileptonConfig config;
  RegularAxis eta_axis;
  VariableAxis mass_axis;
  BinSpace fit_space;
  int fit_size = 0;
  int eta_stride = 0;
  int mass_bins = 0;

  TheoryVariations theory;
  std::unique_ptr<EfficiencyVariations> efficiency;
  CalibrationParameters calibration;        // corrects the data
  CalibrationParameters scale_calibration;  // its nuisances (coarse-grained or the same)
  std::vector<MomentumNuisance> momentum;
  std::vector<std::vector<int>> momentum_by_bin;

  VariationLayout layout;
  std::vector<int> theory_up, theory_down;  // [k * slots + slot], -1: not filled
  std::vector<int> theory_kinds_needed;
  std::vector<int> eff_id;    // [k * slots + slot]
  std::vector<int> scale_id;  // [k * slots + slot]

  explicit Impl(DileptonConfig c);
  static TheoryConfig EffectiveTheory(const DileptonConfig& c);
  void BuildLayout();
  // Bin of a pair from its pT and mass, -1 outside the selection.
  int Bin(int eta_base, double pt0, double pt1, double mass) const noexcept {
    if (!(pt0 >= config.pt_min && pt1 >= config.pt_min)) return -1;
    const int mb = mass_axis.index(mass);
    if (mb < 0 || mb >= mass_bins) return -1;
    return eta_base + mb;
  }
  // The pT of muon j of a candidate under momentum nuisance n (sign +1: up, -1: down).
  double VariedPt(const MomentumNuisance& n, const Candidate& c, int j, int sign) const noexcept {
    const int b = scale_calibration.Bin(c.eta[j]);
    if (!n.Touches(b)) return c.pt[j];
    if (n.kind == MomentumNuisanceKind::kResolution) {
      if (!std::isfinite(c.gen_pt[j])) return c.pt[j];
      return c.gen_pt[j] + (c.pt[j] - c.gen_pt[j]) * (1.0 + sign * n.resolution[b - n.first_bin]);
    }
    return n.ShiftedPt(b, c.pt[j], c.charge[j], sign);
  }
  void FillBatch(const EventBatch& b, SampleKind sample, DileptonHistograms* h, Scratch* s) const;
  void FillVariations(const EventBatch& b, DileptonHistograms* h, Scratch* s) const;
};

TheoryConfig DileptonProducer::Impl::EffectiveTheory(const DileptonConfig& c) {
  TheoryConfig t = c.theory;
  for (double s : c.pseudodata_shifts_mev)
    if (std::abs(s) > 1e-9 && std::abs(std::abs(s) - t.mass_shift_mev) > 1e-9) t.mass_steps = true;
  return t;
}

namespace {
// Validates before any member is built from the configuration.
const DileptonConfig& Validated(const DileptonConfig& c) {
  std::string error;
  if (!c.IsValid(&error)) throw std::invalid_argument("dilepton configuration: " + error);
  return c;
}
}  // namespace

DileptonProducer::Impl::Impl(DileptonConfig c)
    : config(Validated(c)), theory(EffectiveTheory(config)) {
  eta_axis = RegularAxis(config.eta_bins, -kEtaMax, kEtaMax, "eta");
  mass_axis = VariableAxis(config.mass_edges, "mass");
  fit_space = BinSpace({eta_axis, mass_axis});
  fit_size = fit_space.size();
  eta_stride = fit_space.stride(0);
  mass_bins = static_cast<int>(config.mass_edges.size()) - 1;

  if (config.efficiency)
    efficiency = std::make_unique<EfficiencyVariations>(config.efficiency_config);

  if (config.calibration_file.empty()) {
    SyntheticCalibrationOptions copt;
    if (!config.data_scale_bias) copt.central = ScaleTable{};
    calibration = SyntheticCalibration(copt);
  } else {
    calibration = ReadCalibration(config.calibration_file);
  }
  if (config.muon_scale) {
    scale_calibration = config.muon_scale_regions > 0
                            ? detail::CoarsenCalibration(calibration, config.muon_scale_regions)
                            : calibration;
    MomentumNuisanceOptions mopt;
    mopt.stat_scale = config.muon_scale_stat;
    mopt.closure = config.muon_closure;
    mopt.resolution = config.muon_resolution;
    momentum = MomentumNuisances(scale_calibration, mopt);
    momentum_by_bin = NuisancesByEtaBin(momentum, scale_calibration.num_bins());
  }
  BuildLayout();
}

void DileptonProducer::Impl::BuildLayout() {
  // Every variation spans the whole channel: a muon's nuisance moves pairs whose most forward
  // muon can be at any |eta| above it, on either side.
  const BinRange all{0, fit_size};
  constexpr int S = kDileptonMcSlots;
  const auto& tn = theory.nuisances();
  theory_up.assign(tn.size() * S, -1);
  theory_down.assign(tn.size() * S, -1);
  for (std::size_t k = 0; k < tn.size(); ++k) {
    const TheoryNuisance& n = tn[k];
    if (n.role == TheoryRole::kAlternative) {
      bool needed = config.theory.mass_steps;
      for (double sh : config.pseudodata_shifts_mev)
        if (std::abs(sh - n.scale_mev) < 1e-6) needed = true;
      if (!needed) continue;
    }
    const bool down = !n.symmetric && n.role != TheoryRole::kAlternative;
    bool needed = false;
    for (int slot = 0; slot < S; ++slot) {
      bool acts = false;
      for (Process p : kAllProcesses)
        if (DileptonSlot(p) == slot && n.processes[static_cast<int>(p)]) acts = true;
      if (!acts) continue;
      theory_up[k * S + slot] = layout.Add(n.name + "Up", slot, all);
      if (down) theory_down[k * S + slot] = layout.Add(n.name + "Down", slot, all);
      needed = true;
    }
    if (needed) theory_kinds_needed.push_back(static_cast<int>(k));
  }
  if (efficiency) {
    const auto& en = efficiency->nuisances();
    eff_id.assign(en.size() * S, -1);
    for (std::size_t k = 0; k < en.size(); ++k)
      for (int slot = 0; slot < S; ++slot) eff_id[k * S + slot] = layout.Add(en[k].name, slot, all);
  }
  scale_id.assign(momentum.size() * S, -1);
  for (std::size_t k = 0; k < momentum.size(); ++k)
    for (int slot = 0; slot < S; ++slot)
      scale_id[k * S + slot] = layout.Add(momentum[k].name, slot, all);
}

void DileptonProducer::Impl::FillBatch(const EventBatch& b, SampleKind sample,
                                       DileptonHistograms* h, Scratch* s) const {
  const bool is_data = sample == SampleKind::kData;
  const std::size_t n = b.size();
  s->cand.clear();
  if (is_data)
    h->data_events += static_cast<std::int64_t>(n);
  else
    h->sim_events += static_cast<std::int64_t>(n);
  const bool follow = !is_data && !momentum.empty();
  const double pt_follow = config.pt_min - kPtMargin;
  const double m_lo = config.mass_edges.front() - kMassMargin;
  const double m_hi = config.mass_edges.back() + kMassMargin;

  for (std::size_t i = 0; i < n; ++i) {
    int slot = -1;
    if (!is_data) {
      slot = DileptonSlot(b.process[i]);
      if (slot < 0) {
        ++h->other_sim_skipped;
        continue;
      }
    }
    const MuonColumns& m0 = b.muon[0];
    const MuonColumns& m1 = b.muon[1];
    const int q0 = m0.charge[i], q1 = m1.charge[i];
    if (q0 == 0 || q1 == 0 || q0 == q1) continue;
    const double eta0 = m0.eta[i], eta1 = m1.eta[i];
    if (!(std::abs(eta0) < kEtaMax) || !(std::abs(eta1) < kEtaMax)) continue;
    if (!(m0.rel_iso[i] < config.iso_cut) || !(m1.rel_iso[i] < config.iso_cut)) continue;
    double pt0 = m0.pt[i], pt1 = m1.pt[i];
    if (is_data) {
      pt0 = calibration.CorrectPt(eta0, pt0, q0);
      pt1 = calibration.CorrectPt(eta1, pt1, q1);
    }
    if (!(std::min(pt0, pt1) >= (follow ? pt_follow : config.pt_min))) continue;
    // Efficiencies: reco x tracking x id of both muons and at least one trigger-matched (weights
    // in simulation, 0/1 outcomes in data).
    const double t0 = m0.eff_trigger[i], t1 = m1.eff_trigger[i];
    double w = m0.eff_reco[i] * m0.eff_tracking[i] * m0.eff_id[i] * m1.eff_reco[i] *
               m1.eff_tracking[i] * m1.eff_id[i] * (1.0 - (1.0 - t0) * (1.0 - t1));
    if (!is_data) w *= b.weight[i];
    if (w == 0.0) continue;
    const double k = 2.0 * (std::cosh(eta0 - eta1) - std::cos(m0.phi[i] - m1.phi[i]));
    const double mass = std::sqrt(std::max(0.0, k * pt0 * pt1));
    const double eta_fwd = std::abs(eta1) > std::abs(eta0) ? eta1 : eta0;
    const int eta_base = std::clamp(eta_axis.index(eta_fwd), 0, config.eta_bins - 1) * eta_stride;
    const int bin = Bin(eta_base, pt0, pt1, mass);
    if (bin >= 0) {
      if (is_data) {
        h->data.Fill(bin, w);
        ++h->data_selected;
      } else {
        h->mc[slot].Fill(bin, w);
        ++h->selected[slot];
      }
    }
    if (is_data) continue;
    if (bin < 0 && !(follow && mass >= m_lo && mass < m_hi)) continue;
    Candidate c;
    c.event = static_cast<std::uint32_t>(i);
    c.slot = static_cast<std::int8_t>(slot);
    c.charge[0] = static_cast<std::int8_t>(q0);
    c.charge[1] = static_cast<std::int8_t>(q1);
    c.w = w;
    c.pt[0] = pt0, c.pt[1] = pt1;
    c.eta[0] = eta0, c.eta[1] = eta1;
    c.gen_pt[0] = m0.gen_pt[i], c.gen_pt[1] = m1.gen_pt[i];
    c.eff_iso[0] = m0.eff_iso[i], c.eff_iso[1] = m1.eff_iso[i];
    c.trigger[0] = t0, c.trigger[1] = t1;
    c.k = k;
    c.eta_base = eta_base;
    c.fit_bin = bin;
    s->cand.push_back(c);
  }
  if (!is_data && !s->cand.empty()) FillVariations(b, h, s);
}

void DileptonProducer::Impl::FillVariations(const EventBatch& b, DileptonHistograms* h,
                                            Scratch* s) const {
  constexpr int S = kDileptonMcSlots;
  VariationStore& vs = h->variations;

  // Momentum scale, closure and resolution: both muons varied, the mass recomputed (the
  // directions are unchanged, so m'^2 = k pT1' pT2'), the pair moved to its new bin. The stored
  // template is the symmetric difference (up - down) / 2 of the up and down shifts, written
  // mirrored. A one-sided template (up only) is correlated with the statistical fluctuation of
  // the bin it is computed from: the pairs that leave a bin are that bin's own events, so the fit
  // can use the nuisance to absorb fluctuations of the simulation. In the difference the bin's
  // own leaving pairs cancel to first order (up moves them down, down moves them up), leaving
  // the pairs that enter from the neighbours. Measured on twenty light seed pairs with identical
  // physics in data and simulation: mean m_Z shift +6.0 +- 2.0 MeV with up-only templates,
  // +2.4 +- 1.9 MeV with the symmetric ones (docs/dilepton.md, Closure).
  if (!momentum.empty()) {
    for (const Candidate& c : s->cand) {
      const int b0 = scale_calibration.Bin(c.eta[0]);
      const int b1 = scale_calibration.Bin(c.eta[1]);
      auto vary = [&](int k) {
        const MomentumNuisance& n = momentum[k];
        const int id = scale_id[k * S + c.slot];
        const double u0 = VariedPt(n, c, 0, +1), u1 = VariedPt(n, c, 1, +1);
        const int up = Bin(c.eta_base, u0, u1, std::sqrt(std::max(0.0, c.k * u0 * u1)));
        const double d0 = VariedPt(n, c, 0, -1), d1 = VariedPt(n, c, 1, -1);
        const int dn = Bin(c.eta_base, d0, d1, std::sqrt(std::max(0.0, c.k * d0 * d1)));
        if (up != c.fit_bin) vs.Move(id, c.fit_bin, 0.5 * c.w, up, 0.5 * c.w);
        if (dn != c.fit_bin) vs.Move(id, c.fit_bin, -0.5 * c.w, dn, -0.5 * c.w);
      };
      for (int k : momentum_by_bin[b0]) vary(k);
      for (int k : momentum_by_bin[b1])
        if (!momentum[k].Touches(b0)) vary(k);
    }
  }

  // Efficiency scale factors of both muons. A nuisance acting on both multiplies the two
  // weights: the second muon's change is added as r2 (1 + r1). For the trigger, the event
  // passes if either muon fires, P = 1 - (1 - t1)(1 - t2), so a relative change r of t1 changes
  // P by the fraction r t1 (1 - t2) / P.
  if (efficiency) {
    const auto& en = efficiency->nuisances();
    for (auto& a : s->active) a.resize(efficiency->MaxActive());
    s->rel_first.resize(en.size(), 0.0);
    for (const Candidate& c : s->cand) {
      if (c.fit_bin < 0) continue;
      const double p = 1.0 - (1.0 - c.trigger[0]) * (1.0 - c.trigger[1]);
      int na[2];
      for (int j = 0; j < 2; ++j) {
        na[j] = efficiency->Active(c.eta[j], c.pt[j], c.charge[j], true, c.eff_iso[j],
                                   s->active[j].data());
        const double trig = p > 0 ? c.trigger[j] * (1.0 - c.trigger[1 - j]) / p : 0.0;
        for (int a = 0; a < na[j]; ++a) {
          ActiveEfficiencyVariation& v = s->active[j][a];
          if (en[v.index].step == EfficiencyKind::kTrigger) v.rel *= trig;
        }
      }
      for (int a = 0; a < na[0]; ++a) {
        const ActiveEfficiencyVariation& v = s->active[0][a];
        s->rel_first[v.index] = v.rel;
        vs.Fill(eff_id[v.index * S + c.slot], c.fit_bin, c.w * v.rel);
      }
      for (int a = 0; a < na[1]; ++a) {
        const ActiveEfficiencyVariation& v = s->active[1][a];
        vs.Fill(eff_id[v.index * S + c.slot], c.fit_bin,
                c.w * v.rel * (1.0 + s->rel_first[v.index]));
      }
      for (int a = 0; a < na[0]; ++a) s->rel_first[s->active[0][a].index] = 0.0;
    }
  }

  // Theory weights over the selected pairs with a generator-level boson.
  if (!theory_kinds_needed.empty()) {
    s->theory_cand.clear();
    for (std::size_t j = 0; j < s->cand.size(); ++j) {
      const Candidate& c = s->cand[j];
      if (c.fit_bin < 0 || !(b.v_mass[c.event] > 0)) continue;
      s->theory_cand.push_back(static_cast<int>(j));
    }
    const std::size_t m = s->theory_cand.size();
    if (m == 0) return;
    detail::GatherBosonColumns(
        b, m,
        [s](std::size_t j) { return static_cast<std::size_t>(s->cand[s->theory_cand[j]].event); },
        &s->sub);
    theory.Prepare(s->sub, 0, m, &s->inputs);
    s->up.resize(m);
    s->down.resize(m);
    for (int k : theory_kinds_needed) {
      bool want_down = false;
      for (int slot = 0; slot < S; ++slot) want_down = want_down || theory_down[k * S + slot] >= 0;
      theory.Weights(static_cast<std::size_t>(k), s->inputs, s->up.data(),
                     want_down ? s->down.data() : nullptr);
      for (std::size_t j = 0; j < m; ++j) {
        const Candidate& c = s->cand[s->theory_cand[j]];
        const int up_id = theory_up[k * S + c.slot];
        if (up_id < 0) continue;
        if (s->up[j] != 1.0) vs.Fill(up_id, c.fit_bin, c.w * (s->up[j] - 1.0));
        if (want_down) {
          const int down_id = theory_down[k * S + c.slot];
          if (down_id >= 0 && s->down[j] != 1.0)
            vs.Fill(down_id, c.fit_bin, c.w * (s->down[j] - 1.0));
        }
      }
    }
  }
}

// ---- DileptonProducer

DileptonProducer::DileptonProducer(DileptonConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}
DileptonProducer::~DileptonProducer() = default;
DileptonProducer::DileptonProducer(DileptonProducer&&) noexcept = default;
DileptonProducer& DileptonProducer::operator=(DileptonProducer&&) noexcept = default;

const DileptonConfig& DileptonProducer::config() const { return impl_->config; }
const BinSpace& DileptonProducer::fit_space() const { return impl_->fit_space; }
const VariationLayout& DileptonProducer::layout() const { return impl_->layout; }
const TheoryVariations& DileptonProducer::theory() const { return impl_->theory; }
const EfficiencyVariations& DileptonProducer::efficiency() const {
  if (!impl_->efficiency) throw std::logic_error("DileptonProducer: efficiency variations are off");
  return *impl_->efficiency;
}
const std::vector<MomentumNuisance>& DileptonProducer::momentum_nuisances() const {
  return impl_->momentum;
}
const CalibrationParameters& DileptonProducer::calibration() const { return impl_->calibration; }

DileptonHistograms DileptonProducer::MakeHistograms() const {
  DileptonHistograms h;
  for (int s = 0; s < kDileptonMcSlots; ++s) h.mc.emplace_back(impl_->fit_space);
  h.data = WeightedHistogram(impl_->fit_space);
  h.variations = VariationStore(&impl_->layout);
  return h;
}

void DileptonProducer::FillBatch(const EventBatch& batch, SampleKind sample,
                                 DileptonHistograms* h) const {
  Scratch scratch;
  impl_->FillBatch(batch, sample, h, &scratch);
}

namespace {

const std::vector<Process> kDileptonProcesses = {Process::kZMuMu, Process::kZTauTau, Process::kTop,
                                                 Process::kDiboson};

GeneratorConfig SimulationGenerator(const DileptonConfig& c) {
  GeneratorConfig g;
  g.sample = SampleKind::kSimulation;
  g.processes = kDileptonProcesses;
  g.num_events = c.simulation.events;
  g.luminosity_pb = c.luminosity_pb;
  g.seed = c.simulation.seed;
  g.physics = GeneratorParams::Simulation();
  g.detector = DetectorParams::Simulation();
  g.filter = EventFilter{2, c.pt_min - kPtMargin - 1.0};
  return g;
}

GeneratorConfig DataGenerator(const DileptonConfig& c) {
  GeneratorConfig g = GeneratorConfig::DefaultData();
  g.processes = kDileptonProcesses;
  g.luminosity_pb = c.luminosity_pb;
  g.seed = c.data.seed;
  g.physics.z_mass = GeneratorParams::Simulation().z_mass + c.data_mz_shift_mev * 1e-3;
  if (!c.data_scale_bias) g.detector.scale_bias = DetectorParams::Simulation().scale_bias;
  if (!c.data_efficiency_bias)
    g.detector.efficiency_variation = DetectorParams::Simulation().efficiency_variation;
  // The calibration correction raises or lowers the pT by up to a few per mille.
  g.filter = EventFilter{2, c.pt_min - kPtMargin - 1.0};
  return g;
}

}  // namespace

DileptonHistograms DileptonProducer::Fill(const ProduceOptions& options) const {
  const DileptonConfig& c = impl_->config;
  detail::WorkList work(c.simulation, SimulationGenerator(c), c.data, DataGenerator(c),
                        c.chunk_events);
  const Impl& impl = *impl_;
  DileptonHistograms h = detail::OrderedFill<DileptonHistograms, Scratch>(
      work, options, [this] { return MakeHistograms(); },
      [&impl](const EventBatch& batch, SampleKind sample, DileptonHistograms* h, Scratch* s) {
        impl.FillBatch(batch, sample, h, s);
      });
  h.input_warnings = work.InputWarnings();
  return h;
}

io::TensorWriter DileptonProducer::MakeFitInput(const DileptonHistograms& h,
                                                DileptonSummary* summary) const {
  const Impl& m = *impl_;
  const DileptonConfig& c = m.config;
  constexpr int S = kDileptonMcSlots;
  const std::string ch = "dilepton";
  const int size = m.fit_size;
  DileptonSummary sum;
  sum.warnings = h.input_warnings;
  const auto t0 = std::chrono::steady_clock::now();

  std::vector<std::vector<double>> nominal(S);
  std::vector<bool> written(S, false);
  for (int s = 0; s < S; ++s) {
    nominal[s] = h.mc[s].Sumw();
    double total = 0.0;
    for (double v : nominal[s]) total += v;
    // The signal is always written (the fit input is invalid without it); an empty background
    // (the generator's top and diboson have one muon) is left out.
    written[s] = s == 0 || total > 0.0;
  }

  io::TensorWriter w(engine::SystematicType::kLogNormal);
  w.AddChannel(ch, m.fit_space.ToEngineAxes());
  for (int s = 0; s < S; ++s)
    if (written[s]) w.AddProcess(kSlotNames[s], s == 0);
  const std::vector<double> data = h.data.Sumw();
  w.SetData(ch, data);
  for (int s = 0; s < S; ++s)
    if (written[s])
      w.SetNominal(ch, kSlotNames[s], nominal[s],
                   c.bin_by_bin_stat ? h.mc[s].Sumw2() : std::vector<double>{});

  const VariationStore& vs = h.variations;
  auto has_effect = [&](int id) { return id >= 0 && vs.AbsSum(id) > 0.0; };

  // Theory: mass (NOI), width, pdf, angular coefficients, pT(V), EW; only the variations that
  // can act on a slot (the Z's and the shared ones).
  const auto& tn = m.theory.nuisances();
  for (int k : m.theory_kinds_needed) {
    const TheoryNuisance& n = tn[k];
    if (n.role == TheoryRole::kAlternative) continue;
    if (n.role == TheoryRole::kInterest)
      w.DeclareSystematic(n.name, 0.0, true, n.scale_mev, "MeV");
    else
      w.DeclareSystematic(n.name);
    w.AddToGroup(n.group, n.name);
    for (int s = 0; s < S; ++s) {
      if (!written[s]) continue;
      const int up = m.theory_up[k * S + s];
      const int dn = m.theory_down[k * S + s];
      if (!has_effect(up) && !has_effect(dn)) continue;
      const std::vector<double> vu = vs.Varied(up, nominal[s]);
      if (dn < 0) {
        w.AddShapeSystematic(n.name, kSlotNames[s], ch, vu);
      } else {
        const io::Symmetrization sym =
            n.role == TheoryRole::kInterest ? io::Symmetrization::kNone : c.symmetrization;
        w.AddShapeSystematic(n.name, kSlotNames[s], ch, vu, vs.Varied(dn, nominal[s]), sym);
      }
    }
  }
  // Muon momentum scale, closure and resolution.
  for (std::size_t k = 0; k < m.momentum.size(); ++k) {
    const MomentumNuisance& n = m.momentum[k];
    w.DeclareSystematic(n.name);
    w.AddToGroup(n.group, n.name);
    for (int s = 0; s < S; ++s) {
      const int id = m.scale_id[k * S + s];
      if (written[s] && has_effect(id))
        w.AddShapeSystematic(n.name, kSlotNames[s], ch, vs.Varied(id, nominal[s]));
    }
  }
  // Muon efficiencies.
  if (m.efficiency) {
    const auto& en = m.efficiency->nuisances();
    for (std::size_t k = 0; k < en.size(); ++k) {
      w.DeclareSystematic(en[k].name);
      w.AddToGroup("muonEfficiency", en[k].name);
      w.AddToGroup(en[k].group, en[k].name);
      for (int s = 0; s < S; ++s) {
        const int id = m.eff_id[k * S + s];
        if (written[s] && has_effect(id))
          w.AddShapeSystematic(en[k].name, kSlotNames[s], ch, vs.Varied(id, nominal[s]));
      }
    }
  }
  if (c.lumi_uncertainty > 0) {
    w.DeclareSystematic("lumi");
    w.AddToGroup("luminosity", "lumi");
    for (int s = 0; s < S; ++s)
      if (written[s]) w.AddNormSystematic("lumi", kSlotNames[s], ch, 1.0 + c.lumi_uncertainty);
  }

  // Pseudo-data: the expectation with the Z templates (every slot the mass variation acts on)
  // Breit-Wigner reweighted to known shifts.
  std::vector<double> shifts = c.pseudodata_shifts_mev;
  if (c.theory.mass_steps) {
    shifts.clear();
    const int nstep =
        static_cast<int>(std::llround(c.theory.mass_shift_mev / c.theory.mass_step_mev));
    for (int k = -nstep; k <= nstep; ++k) shifts.push_back(k * c.theory.mass_step_mev);
  }
  for (double shift : shifts) {
    std::vector<double> pd(size, 0.0);
    for (int s = 0; s < S; ++s) {
      if (!written[s]) continue;
      int id = -1;
      if (std::abs(shift) > 1e-9) {
        for (std::size_t k = 0; k < tn.size() && id < 0; ++k) {
          const TheoryNuisance& n = tn[k];
          if (n.kind != TheoryKind::kMassShift) continue;
          if (n.role == TheoryRole::kAlternative && std::abs(n.scale_mev - shift) < 1e-6)
            id = m.theory_up[k * S + s];
          if (n.role == TheoryRole::kInterest && std::abs(n.scale_mev - std::abs(shift)) < 1e-6)
            id = shift > 0 ? m.theory_up[k * S + s] : m.theory_down[k * S + s];
        }
      }
      const std::vector<double> t = id >= 0 ? vs.Varied(id, nominal[s]) : nominal[s];
      for (int i = 0; i < size; ++i) pd[i] += t[i];
    }
    for (double& v : pd) v = std::max(0.0, v);
    w.AddPseudoData(MassShiftPseudoDataName(shift), ch, pd);
  }
  const auto t1 = std::chrono::steady_clock::now();

  sum.sim_events = h.sim_events;
  sum.data_events = h.data_events;
  sum.other_sim_skipped = h.other_sim_skipped;
  std::vector<double> expected(size, 0.0);
  for (int s = 0; s < S; ++s) {
    sum.processes.push_back(kSlotNames[s]);
    sum.selected.push_back(h.selected[s]);
    double y = 0;
    for (int i = 0; i < size; ++i) {
      y += nominal[s][i];
      expected[i] += nominal[s][i];
    }
    sum.yields.push_back(y);
    sum.written.push_back(written[s]);
    if (!written[s])
      sum.warnings.push_back(std::string(kSlotNames[s]) +
                             ": no selected events (the built-in generator's " + kSlotNames[s] +
                             " events have one muon); left out of the fit input");
  }
  for (double v : expected) sum.empty_bins += v > 0 ? 0 : 1;
  if (sum.empty_bins > 0)
    sum.warnings.push_back(std::to_string(sum.empty_bins) +
                           " bins have no expected events, which the fit does not accept: "
                           "generate more simulated events or use fewer bins");
  sum.data_selected = h.data_selected;
  for (double v : data) sum.data_yield += v;
  sum.bins = size;
  sum.variations_filled = m.layout.size();
  sum.pseudodata_sets = static_cast<int>(shifts.size());
  sum.clipped_entries = w.clipped_entries();
  sum.seconds_build = std::chrono::duration<double>(t1 - t0).count();
  if (summary) *summary = std::move(sum);
  return w;
}

io::WriteOptions DileptonProducer::ResolveWriteOptions(const engine::Model& model,
                                                       double* density) const {
  const DileptonConfig& c = impl_->config;
  return detail::ResolveStorage(model, c.storage, c.sparse_density, c.gzip, density);
}

DileptonProduction ProduceDilepton(const DileptonConfig& config, const ProduceOptions& options) {
  return detail::ProduceChain<DileptonProduction, DileptonProducer>(config, options);
}

std::string DileptonSummary::Report() const {
  std::ostringstream os;
  char line[320];
  ReportEventsRead(os);
  if (other_sim_skipped > 0) {
    std::snprintf(line, sizeof(line),
                  "  %lld simulated events of processes without a prompt muon pair skipped\n",
                  static_cast<long long>(other_sim_skipped));
    os << line;
  }
  os << "selected muon pairs (opposite sign, isolated, in the m_mumu window):\n";
  for (std::size_t p = 0; p < processes.size(); ++p) {
    std::snprintf(line, sizeof(line), "  %-10s %12lld events  %14.1f expected%s\n",
                  processes[p].c_str(), static_cast<long long>(selected[p]), yields[p],
                  written[p] ? "" : "  (empty: not written)");
    os << line;
  }
  int nproc = 0;
  for (bool b : written) nproc += b ? 1 : 0;
  ReportFitInput(os, nproc);
  for (const auto& w : warnings) os << "warning: " << w << "\n";
  std::snprintf(line, sizeof(line), "time: events -> histograms %.2f s, fit input %.2f s\n",
                seconds_fill, seconds_build);
  os << line;
  return os.str();
}

}  // namespace lepus::models
