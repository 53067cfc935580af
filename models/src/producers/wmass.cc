// The W-mass producer (wmass.h; docs/producers.md): selection, histograms with every variation
// filled in one pass, the non-prompt estimate and the fit input.
#include "lepus/models/wmass.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "lepus/io/errors.h"
#include "lepus/models/event_file.h"
#include "producer_common.h"

namespace lepus::models {

namespace {

constexpr double kEtaMax = 2.4;
// Candidates within this margin (GeV) outside the pT range are followed through the
// momentum-scale variations, which can move them into the fit range (the shifts are ~1e-3 x pT).
constexpr double kMigrationMargin = 1.0;

const char* kSlotNames[kWMassMcSlots] = {"Wmunu", "Wtaunu", "Zmumu", "Ztautau", "top", "diboson"};

// Region (mt bin, iso bin) -> ABCD region of nonprompt.h.
AbcdRegion RegionOf(int mt_bin, int iso_bin) {
  static const AbcdRegion pass[3] = {AbcdRegion::kBx, AbcdRegion::kB, AbcdRegion::kD};
  static const AbcdRegion fail[3] = {AbcdRegion::kAx, AbcdRegion::kA, AbcdRegion::kC};
  return iso_bin == 0 ? pass[mt_bin] : fail[mt_bin];
}

// One selected-muon hypothesis of a simulated event.
struct Candidate {
  std::uint32_t event;
  std::int32_t slot;  // MC slot, or kWMassMcSlots + split process in the helicity mode
  std::int8_t charge;
  bool iso_pass;
  double w;             // nominal weight, efficiencies included
  double pt, eta, phi;  // the muon
  double met_x, met_y;  // the missing pT
  double eff_iso;
  int fit_bin;  // bin in the fit channel if in the signal region and range, else -1
};

// W-like: the muon of a candidate's pair that joins the missing pT (reconstructed, calibrated
// in data), parallel to Scratch::cand.
struct OtherMuon {
  double pt, eta, phi;
  std::int8_t charge;
  double eff_iso;
  double gen_pt;
};

// The up-varied pT of a muon in calibration bin `bin` under a momentum nuisance: a scale shift
// (MomentumNuisance::ShiftedPt), or for a resolution nuisance a wider smearing about the
// generated pT, pT' = gen_pt + (pT - gen_pt) (1 + delta).
// The muon pT under momentum nuisance n (sign +1: up, -1: down).
double VariedPt(const MomentumNuisance& n, int bin, double pt, double gen_pt, int charge,
                int sign) {
  if (n.kind != MomentumNuisanceKind::kResolution) return n.ShiftedPt(bin, pt, charge, sign);
  if (!n.Touches(bin) || !std::isfinite(gen_pt)) return pt;
  return gen_pt + (pt - gen_pt) * (1.0 + sign * n.resolution[bin - n.first_bin]);
}

// The weights one simulated event adds to the bins of a histogram (at most two muons x two
// veto hypotheses), summed per bin: the MC-statistics variance of a bin is the sum over events
// of the square of the event's total weight in the bin, not the sum of the squares of its parts.
struct EventBins {
  int n = 0;
  int bin[4];
  double w[4];
  void Add(int b, double x) noexcept {
    for (int k = 0; k < n; ++k)
      if (bin[k] == b) {
        w[k] += x;
        return;
      }
    bin[n] = b;
    w[n] = x;
    ++n;
  }
};

// Per-work-item scratch space (reused; never shared between threads).
struct Scratch {
  std::vector<Candidate> cand;
  std::vector<OtherMuon> other;  // W-like only
  std::vector<double> gen_pt;    // generated pT of each candidate's muon
  std::vector<int> theory_cand;  // candidates entering the theory variations
  EventBatch sub;                // their generator-level columns
  TheoryInputs inputs;
  std::vector<double> up, down;
  std::vector<ActiveEfficiencyVariation> active;
  std::vector<Candidate> split_cand;  // helicity mode: the signal candidates split
  std::vector<double> split_gen_pt;   // and their gen_pt
};

}  // namespace

const char* WMassSlotName(int slot) {
  if (slot < 0 || slot >= kWMassMcSlots) return "nonprompt";
  return kSlotNames[slot];
}

int WMassSlot(Process process) noexcept {
  switch (process) {
    case Process::kWplusMuNu:
    case Process::kWminusMuNu:
      return 0;
    case Process::kWTauNu:
      return 1;
    case Process::kZMuMu:
      return 2;
    case Process::kZTauTau:
      return 3;
    case Process::kTop:
      return 4;
    case Process::kDiboson:
      return 5;
    case Process::kNonPrompt:
      return -1;
  }
  return -1;
}

std::string MassShiftPseudoDataName(double shift_mev) {
  const long long v = std::llround(shift_mev);
  if (v == 0) return "mass_shift_0MeV";
  return std::string("mass_shift_") + (v < 0 ? "m" : "p") + std::to_string(v < 0 ? -v : v) + "MeV";
}

// ---- WMassHistograms

void WMassHistograms::Reset() {
  for (auto& h : mc) h.Reset();
  data.Reset();
  variations.Reset();
  sim_events = data_events = 0;
  selected.fill(0);
  data_selected = 0;
  nonprompt_sim_skipped = 0;
  std::fill(noi_var.begin(), noi_var.end(), 0.0);
  for (auto& x : split) x.Reset();
  std::fill(split_xsec.begin(), split_xsec.end(), 0.0);
}

WMassHistograms& WMassHistograms::operator+=(const WMassHistograms& o) {
  for (std::size_t s = 0; s < mc.size(); ++s) mc[s] += o.mc[s];
  data += o.data;
  variations += o.variations;
  sim_events += o.sim_events;
  data_events += o.data_events;
  for (int s = 0; s < kWMassMcSlots; ++s) selected[s] += o.selected[s];
  data_selected += o.data_selected;
  nonprompt_sim_skipped += o.nonprompt_sim_skipped;
  for (std::size_t b = 0; b < noi_var.size(); ++b) noi_var[b] += o.noi_var[b];
  for (std::size_t s = 0; s < split.size(); ++s) split[s] += o.split[s];
  for (std::size_t s = 0; s < split_xsec.size(); ++s) split_xsec[s] += o.split_xsec[s];
  return *this;
}

// ---- Impl

struct WMassProducer::Impl {
  WMassConfig config;
  VariableAxis mt_axis, iso_axis;
  RegularAxis eta_axis, pt_axis, charge_axis;
  BinSpace region_space, fit_space;
  int fit_size = 0;
  int signal_offset = 0;
  int eta_stride = 0;    // fit bins per fit eta bin
  int fine_per_fit = 1;  // 48-bin scale eta bins per fit eta bin

  TheoryVariations theory;
  std::unique_ptr<EfficiencyVariations> efficiency;
  CalibrationParameters calibration;        // corrects the data
  CalibrationParameters scale_calibration;  // its nuisances (coarse-grained or the same)
  std::vector<MomentumNuisance> momentum;
  std::vector<std::vector<int>> momentum_by_bin;  // by scale_calibration bin

  VariationLayout layout;
  // Variation ids per (nuisance, slot): -1 where the variation is not filled.
  std::vector<int> theory_up, theory_down;  // [k * nslots + slot]
  std::vector<int> eff_id;                  // [k * nslots + slot]
  std::vector<int> scale_id;                // [n * nslots + slot]
  std::vector<bool> theory_want_down;       // some slot has a down variation of nuisance k
  std::vector<bool> theory_needed;          // nuisance k is filled for some slot
  std::vector<int> theory_kinds_needed;     // indices of needed theory variations

  // The analysis: the simulated processes (slots) of the fit input, the signal first.
  bool wlike = false;
  std::vector<int> slots;
  int signal_slot = 0;
  std::array<bool, kWMassMcSlots> slot_active{};  // by base slot (W-like)
  // Helicity mode (helicity.h): slots kWMassMcSlots + p are the split signal processes p (the
  // signal of the fit input), and slot 0 (Wmunu) is kept only as the unsplit signal of the
  // non-prompt sidebands and the summary.
  std::unique_ptr<HelicitySplit> split;
  int nslots = kWMassMcSlots;  // variation slots incl. the split ones
  std::vector<std::string> slot_names;
  // The NOI split into charge / eta regions (empty: the NOI itself).
  std::vector<MassSplitParameter> mass_split;
  // The theory nuisance of interest (the mass pair; -1 if none) and the processes it acts on.
  int noi_kind = -1;
  std::array<bool, kNumProcesses> noi_processes{};
  // Recentred mass templates (WMassConfig::mass_center_mev): the centre minus the simulation's
  // mass (MeV, 0 = not recentred).
  double center_shift_mev = 0.0;
  // The weight that moves simulated event i of b to the templates' centre: the Breit-Wigner
  // ratio for events of the NOI's processes with a boson, else 1.
  double CenterWeight(const EventBatch& b, std::size_t i) const {
    if (center_shift_mev == 0.0 || !noi_processes[static_cast<int>(b.process[i])] ||
        !(b.v_mass[i] > 0))
      return 1.0;
    return theory.BreitWignerWeight(config.theory.mass_boson, b.v_mass[i], center_shift_mev * 1e-3,
                                    0.0);
  }

  explicit Impl(WMassConfig c);
  static TheoryConfig EffectiveTheory(const WMassConfig& c);
  void BuildLayout();
  void FillBatch(const EventBatch& b, SampleKind sample, WMassHistograms* h,
                 Scratch* scratch) const;
  void FillBatchWLike(const EventBatch& b, SampleKind sample, WMassHistograms* h,
                      Scratch* scratch) const;
  // W-like selection of the kept muon (pt, eta, phi, q) of a pair given the other muon and the
  // W-like missing pT: the kept muon's fit-channel bin when the pair passes everything but the mT
  // cut (other muon above pt_min, mll window, kept muon in the pT range), else -1; *mt = mT.
  int WLikeBin(double pt, double eta, double phi, int q, const OtherMuon& o, double met_x,
               double met_y, double* mt) const;
  void FillMomentumWLike(const Candidate& c, double gen_pt, const OtherMuon& o,
                         VariationStore* vs) const;
  void FillVariations(const EventBatch& b, WMassHistograms* h, Scratch* s) const;
  // Whether slot `slot` receives theory nuisance n (its processes / boson charge; the helicity
  // split replaces the angular-coefficient nuisances of the signal).
  bool TheoryActs(const TheoryNuisance& n, int slot) const;
  void SplitSignal(const EventBatch& b, WMassHistograms* h, Scratch* s) const;
  BinRange FitEtaSupport(double eta_lo, double eta_hi) const;
};

TheoryConfig WMassProducer::Impl::EffectiveTheory(const WMassConfig& c) {
  TheoryConfig t = c.theory;
  t.mass_center_shift_mev = c.MassCenterShiftMev();
  for (double s : c.pseudodata_shifts_mev)
    if (std::abs(s) > 1e-9 && std::abs(std::abs(s) - t.mass_shift_mev) > 1e-9) t.mass_steps = true;
  return t;
}

WMassProducer::Impl::Impl(WMassConfig c) : config(std::move(c)), theory(EffectiveTheory(config)) {
  std::string error;
  if (!config.IsValid(&error)) throw std::invalid_argument("W-mass configuration: " + error);
  wlike = config.analysis == WMassAnalysis::kWLike;
  // W-like: Z -> mu mu is the signal; W events have no second prompt muon.
  slots = wlike ? std::vector<int>{2, 3, 4, 5} : std::vector<int>{0, 1, 2, 3, 4, 5};
  for (int s : slots) slot_active[s] = true;
  for (int s = 0; s < kWMassMcSlots; ++s) slot_names.push_back(kSlotNames[s]);
  if (config.helicity.enabled) {
    split = std::make_unique<HelicitySplit>(config.helicity);
    std::vector<int> split_slots;
    for (int p = 0; p < split->num_processes(); ++p) {
      split_slots.push_back(kWMassMcSlots + p);
      slot_names.push_back(split->ProcessName(p));
    }
    nslots = static_cast<int>(slot_names.size());
    slots.erase(slots.begin());  // Wmunu: replaced by the split processes
    slots.insert(slots.begin(), split_slots.begin(), split_slots.end());
  }
  signal_slot = slots.front();
  // Open-ended axes end at a large finite edge (histogram.h).
  const double open = 1e9;
  mt_axis = VariableAxis({0.0, config.mt_sideband, config.mt_cut, open}, "mt");
  iso_axis = VariableAxis({0.0, config.iso_cut, open}, "iso");
  eta_axis = RegularAxis(config.eta_bins, -kEtaMax, kEtaMax, "eta");
  pt_axis = RegularAxis(config.pt_bins, config.pt_min, config.pt_max, "pt");
  charge_axis = RegularAxis(2, -2.0, 2.0, "charge");
  region_space = BinSpace({mt_axis, iso_axis, eta_axis, pt_axis, charge_axis});
  fit_space = BinSpace({eta_axis, pt_axis, charge_axis});
  fit_size = fit_space.size();
  // Region D = (mt bin 2, iso bin 0).
  signal_offset = 2 * region_space.stride(0) + 0 * region_space.stride(1);
  eta_stride = fit_space.stride(0);
  fine_per_fit = kScaleEtaBins / config.eta_bins;
  mass_split = MassSplitParameters(config.mass_split, config.Noi(), fit_space);
  center_shift_mev = config.MassCenterShiftMev();
  for (std::size_t k = 0; k < theory.nuisances().size(); ++k)
    if (theory.nuisances()[k].role == TheoryRole::kInterest) {
      noi_kind = static_cast<int>(k);
      noi_processes = theory.nuisances()[k].processes;
    }

  if (config.efficiency)
    efficiency = std::make_unique<EfficiencyVariations>(config.efficiency_config);

  if (config.calibration_file.empty()) {
    // The built-in calibration measured the default data bias (or none when the data truth has
    // no momentum-scale bias).
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
    momentum = MomentumNuisances(scale_calibration, mopt);
    // Resolution nuisances (a calibration with resolution_uncertainty, at its own eta bins) widen
    // the smearing about the generated pT (VariedPt); the coarse-grained calibration has none.
    momentum_by_bin = NuisancesByEtaBin(momentum, scale_calibration.num_bins());
  }
  BuildLayout();
}

BinRange WMassProducer::Impl::FitEtaSupport(double eta_lo, double eta_hi) const {
  const double width = 2 * kEtaMax / config.eta_bins;
  int lo = static_cast<int>(std::floor((eta_lo + kEtaMax) / width + 1e-9));
  int hi = static_cast<int>(std::ceil((eta_hi + kEtaMax) / width - 1e-9)) - 1;
  lo = std::clamp(lo, 0, config.eta_bins - 1);
  hi = std::clamp(hi, lo, config.eta_bins - 1);
  return BinRange{lo * eta_stride, (hi + 1) * eta_stride};
}

void WMassProducer::Impl::BuildLayout() {
  const BinRange all{0, fit_size};
  const auto& tn = theory.nuisances();
  theory_up.assign(tn.size() * nslots, -1);
  theory_down.assign(tn.size() * nslots, -1);
  theory_needed.assign(tn.size(), false);
  theory_want_down.assign(tn.size(), false);
  for (std::size_t k = 0; k < tn.size(); ++k) {
    const TheoryNuisance& n = tn[k];
    if (n.role == TheoryRole::kAlternative) {
      // Filled only when a pseudo-data set needs it (or the whole step set is requested).
      bool needed = config.theory.mass_steps;
      for (double s : config.pseudodata_shifts_mev)
        if (std::abs(s - n.scale_mev) < 1e-6) needed = true;
      if (!needed) continue;
    }
    const bool down = !n.symmetric && n.role != TheoryRole::kAlternative;
    for (int slot : slots) {
      if (!TheoryActs(n, slot)) continue;
      theory_up[k * nslots + slot] = layout.Add(n.name + "Up", slot, all);
      if (down) theory_down[k * nslots + slot] = layout.Add(n.name + "Down", slot, all);
      theory_needed[k] = true;
      theory_want_down[k] = theory_want_down[k] || down;
    }
    if (theory_needed[k]) theory_kinds_needed.push_back(static_cast<int>(k));
  }
  if (efficiency) {
    const auto& en = efficiency->nuisances();
    eff_id.assign(en.size() * nslots, -1);
    for (std::size_t k = 0; k < en.size(); ++k) {
      const BinRange r = FitEtaSupport(en[k].eta_min, en[k].eta_max);
      // W-like: a nuisance acting on the other muon moves the signal's kept muon anywhere.
      for (int slot : slots)
        eff_id[k * nslots + slot] =
            layout.Add(en[k].name, slot, wlike && slot == signal_slot ? all : r);
    }
  }
  scale_id.assign(momentum.size() * nslots, -1);
  for (std::size_t k = 0; k < momentum.size(); ++k) {
    const MomentumNuisance& n = momentum[k];
    const BinRange r = FitEtaSupport(scale_calibration.eta_edges[n.first_bin],
                                     scale_calibration.eta_edges[n.last_bin + 1]);
    // W-like: a shift of the other muon changes the selection of the kept one anywhere.
    for (int slot : slots) scale_id[k * nslots + slot] = layout.Add(n.name, slot, wlike ? all : r);
  }
}

bool WMassProducer::Impl::TheoryActs(const TheoryNuisance& n, int slot) const {
  if (slot < kWMassMcSlots) {
    for (Process p : kAllProcesses)
      if (WMassSlot(p) == slot && n.processes[static_cast<int>(p)]) return true;
    return false;
  }
  if (n.kind == TheoryKind::kHelicity || n.kind == TheoryKind::kShowerKt) return false;
  const Process p =
      split->ChargeOf(slot - kWMassMcSlots) > 0 ? Process::kWplusMuNu : Process::kWminusMuNu;
  return n.processes[static_cast<int>(p)];
}

// The event loop: selection, nominal fills (every region), candidates for the variations.
void WMassProducer::Impl::FillBatch(const EventBatch& b, SampleKind sample, WMassHistograms* h,
                                    Scratch* s) const {
  if (wlike) {
    FillBatchWLike(b, sample, h, s);
    return;
  }
  const bool is_data = sample == SampleKind::kData;
  const std::size_t n = b.size();
  s->cand.clear();
  s->gen_pt.clear();
  const double pt_lo = config.pt_min - kMigrationMargin;
  const double pt_hi = config.pt_max + kMigrationMargin;
  const int region_stride_mt = region_space.stride(0);
  const int region_stride_iso = region_space.stride(1);
  if (is_data)
    h->data_events += static_cast<std::int64_t>(n);
  else
    h->sim_events += static_cast<std::int64_t>(n);

  for (std::size_t i = 0; i < n; ++i) {
    int slot = -1;
    if (!is_data) {
      slot = WMassSlot(b.process[i]);
      if (slot < 0) {
        ++h->nonprompt_sim_skipped;
        continue;
      }
    }
    bool selected_event = false;  // some hypothesis of the event is in the fit channel
    EventBins ev;                 // simulation: the event's weights per region bin
    // Simulation: the generator weight, reweighted to the mass templates' centre if recentred.
    double event_w = 1.0;
    if (!is_data) {
      event_w = b.weight[i];
      if (center_shift_mev != 0.0) event_w *= CenterWeight(b, i);
    }
    for (int m = 0; m < 2; ++m) {
      const MuonColumns& mu = b.muon[m];
      const int q = mu.charge[i];
      if (q == 0) continue;
      const double eta = mu.eta[i];
      if (!(std::abs(eta) < kEtaMax)) continue;
      double pt = mu.pt[i];
      double met_x = b.met_pt[i] * std::cos(b.met_phi[i]);
      double met_y = b.met_pt[i] * std::sin(b.met_phi[i]);
      const double phi = mu.phi[i];
      const double cphi = std::cos(phi), sphi = std::sin(phi);
      if (is_data) {
        // Calibrated momentum; the missing pT balances the change.
        const double corrected = calibration.CorrectPt(eta, pt, q);
        met_x -= (corrected - pt) * cphi;
        met_y -= (corrected - pt) * sphi;
        pt = corrected;
      }
      if (!(pt >= pt_lo && pt < pt_hi)) continue;
      // Efficiencies: weights in simulation, 0/1 outcomes in data.
      double w = MuonEfficiencyWeight(b, i, m);
      if (!is_data) w *= event_w;
      if (w == 0.0) continue;
      const bool iso_pass = mu.rel_iso[i] < config.iso_cut;
      const int iso_bin = iso_pass ? 0 : 1;
      const int eb = eta_axis.index(eta);
      const int pb = pt_axis.index(pt);
      const int cb = q > 0 ? 1 : 0;
      const bool in_range = pb >= 0 && pb < config.pt_bins && eb >= 0 && eb < config.eta_bins;

      // One hypothesis per fate of a second muon: in simulation it is reconstructed and
      // identified with probability e (then it vetoes the event if above veto_pt) or lost with
      // 1 - e, and a lost muon is invisible: its pT joins the missing pT, as for a data event in
      // which it failed. In data a second muon in the record was reconstructed.
      const MuonColumns& other = b.muon[1 - m];
      const bool has_other = other.charge[i] != 0;
      double hyp_w[2];
      double hyp_mx[2], hyp_my[2];
      int nhyp = 0;
      if (!has_other) {
        hyp_w[nhyp] = w, hyp_mx[nhyp] = met_x, hyp_my[nhyp] = met_y, ++nhyp;
      } else {
        const double e = other.eff_reco[i] * other.eff_tracking[i] * other.eff_id[i];
        if (other.pt[i] <= config.veto_pt && e > 0.0)
          hyp_w[nhyp] = w * e, hyp_mx[nhyp] = met_x, hyp_my[nhyp] = met_y, ++nhyp;
        if (!is_data && e < 1.0) {
          hyp_w[nhyp] = w * (1.0 - e);
          // MET = -(sum of visible muons + u_T): an invisible muon adds its pT to it.
          hyp_mx[nhyp] = met_x + other.pt[i] * std::cos(other.phi[i]);
          hyp_my[nhyp] = met_y + other.pt[i] * std::sin(other.phi[i]);
          ++nhyp;
        }
      }
      for (int k = 0; k < nhyp; ++k) {
        const double wk = hyp_w[k];
        const double mx = hyp_mx[k], my = hyp_my[k];
        const double mt2 = 2.0 * pt * (std::hypot(mx, my) - (cphi * mx + sphi * my));
        const double mt = mt2 > 0 ? std::sqrt(mt2) : 0.0;
        const int mt_bin = mt_axis.index(mt);
        int fit_bin = -1;
        if (in_range) {
          const int fb = eb * eta_stride + pb * 2 + cb;
          const int rb = mt_bin * region_stride_mt + iso_bin * region_stride_iso + fb;
          if (is_data)
            h->data.Fill(rb, wk);
          else
            ev.Add(rb, wk);
          if (mt_bin == 2 && iso_pass) {
            fit_bin = fb;
            selected_event = true;
          }
        }
        if (is_data) continue;
        // Candidates for the variations: in the signal region, or (for the momentum scale)
        // isolated and close enough to it to migrate in.
        if (fit_bin < 0 && (!iso_pass || momentum.empty())) continue;
        s->cand.push_back(Candidate{static_cast<std::uint32_t>(i), static_cast<std::int8_t>(slot),
                                    static_cast<std::int8_t>(q), iso_pass, wk, pt, eta, phi, mx, my,
                                    mu.eff_iso[i], fit_bin});
        s->gen_pt.push_back(mu.gen_pt[i]);
      }
    }
    // The event's variance in a bin is the square of its total weight there (its muon
    // hypotheses are not independent events).
    for (int k = 0; k < ev.n; ++k) h->mc[slot].Fill(ev.bin[k], ev.w[k], ev.w[k] * ev.w[k]);
    if (selected_event) {
      if (is_data)
        ++h->data_selected;
      else
        ++h->selected[slot];
    }
  }
  if (!is_data && split) SplitSignal(b, h, s);
  if (!is_data && !s->cand.empty()) FillVariations(b, h, s);
}

int WMassProducer::Impl::WLikeBin(double pt, double eta, double phi, int q, const OtherMuon& o,
                                  double met_x, double met_y, double* mt) const {
  const double cphi = std::cos(phi), sphi = std::sin(phi);
  const double mt2 = 2.0 * pt * (std::hypot(met_x, met_y) - (cphi * met_x + sphi * met_y));
  *mt = mt2 > 0 ? std::sqrt(mt2) : 0.0;
  if (!(o.pt >= config.pt_min)) return -1;
  // Massless muons: m^2 = 2 pT1 pT2 (cosh(eta1 - eta2) - cos(phi1 - phi2)).
  const double m2 = 2.0 * pt * o.pt * (std::cosh(eta - o.eta) - std::cos(phi - o.phi));
  if (!(m2 > config.mll_min * config.mll_min && m2 < config.mll_max * config.mll_max)) return -1;
  const int eb = eta_axis.index(eta);
  const int pb = pt_axis.index(pt);
  if (pb < 0 || pb >= config.pt_bins || eb < 0 || eb >= config.eta_bins) return -1;
  return eb * eta_stride + pb * 2 + (q > 0 ? 1 : 0);
}

// The W-like event loop: two opposite-sign isolated muons, the event number's parity keeps one
// (even: mu-, odd: mu+, exchanged by flip_parity), the other joins the missing pT. In simulation
// the weight carries the kept muon's reco x tracking x id x trigger efficiencies and the other's
// reco x tracking x id (it need not fire the trigger); in data these are the outcomes, and the
// kept muon must have fired the trigger.
void WMassProducer::Impl::FillBatchWLike(const EventBatch& b, SampleKind sample, WMassHistograms* h,
                                         Scratch* s) const {
  const bool is_data = sample == SampleKind::kData;
  const std::size_t n = b.size();
  s->cand.clear();
  s->gen_pt.clear();
  s->other.clear();
  const double pt_lo = config.pt_min - kMigrationMargin;
  const double pt_hi = config.pt_max + kMigrationMargin;
  const int region_stride_mt = region_space.stride(0);
  if (is_data)
    h->data_events += static_cast<std::int64_t>(n);
  else
    h->sim_events += static_cast<std::int64_t>(n);

  for (std::size_t i = 0; i < n; ++i) {
    int slot = -1;
    if (!is_data) {
      slot = WMassSlot(b.process[i]);
      if (slot < 0) {
        ++h->nonprompt_sim_skipped;
        continue;
      }
      if (!slot_active[slot]) continue;
    }
    const int q0 = b.muon[0].charge[i], q1 = b.muon[1].charge[i];
    if (q0 == 0 || q1 == 0 || q0 == q1) continue;
    const bool keep_minus = ((b.event_number[i] & 1u) == 0) != config.flip_parity;
    const int k = (q0 < 0) == keep_minus ? 0 : 1;
    const MuonColumns& mu = b.muon[k];
    const MuonColumns& om = b.muon[1 - k];
    const int q = mu.charge[i];
    const double eta = mu.eta[i];
    if (!(std::abs(eta) < kEtaMax) || !(std::abs(om.eta[i]) < kEtaMax)) continue;
    if (!(mu.rel_iso[i] < config.iso_cut) || !(om.rel_iso[i] < config.iso_cut)) continue;
    double pt = mu.pt[i];
    OtherMuon o{om.pt[i], om.eta[i], om.phi[i], om.charge[i], om.eff_iso[i], om.gen_pt[i]};
    const double phi = mu.phi[i];
    const double cphi = std::cos(phi), sphi = std::sin(phi);
    double met_x = b.met_pt[i] * std::cos(b.met_phi[i]);
    double met_y = b.met_pt[i] * std::sin(b.met_phi[i]);
    if (is_data) {
      // Calibrated momenta; the missing pT balances the kept muon's change (the other muon's
      // change cancels once it joins the missing pT).
      const double corrected = calibration.CorrectPt(eta, pt, q);
      met_x -= (corrected - pt) * cphi;
      met_y -= (corrected - pt) * sphi;
      pt = corrected;
      o.pt = calibration.CorrectPt(o.eta, o.pt, o.charge);
    }
    if (!(pt >= pt_lo && pt < pt_hi)) continue;
    // MET = -(both muons + u_T); the W-like missing pT treats the other muon as a neutrino.
    met_x += o.pt * std::cos(o.phi);
    met_y += o.pt * std::sin(o.phi);
    double w = MuonEfficiencyWeight(b, i, k) * om.eff_reco[i] * om.eff_tracking[i] * om.eff_id[i];
    if (!is_data) {
      w *= b.weight[i];
      // Reweighted to the mass templates' centre if recentred.
      if (center_shift_mev != 0.0) w *= CenterWeight(b, i);
    }
    if (w == 0.0) continue;
    double mt = 0.0;
    const int fb = WLikeBin(pt, eta, phi, q, o, met_x, met_y, &mt);
    const int mt_bin = mt_axis.index(mt);
    int fit_bin = -1;
    if (fb >= 0) {
      const int rb = mt_bin * region_stride_mt + fb;  // iso bin 0: both muons isolated
      if (is_data)
        h->data.Fill(rb, w);
      else
        h->mc[slot].Fill(rb, w);
      if (mt_bin == 2) fit_bin = fb;
    }
    if (fit_bin >= 0) {
      if (is_data)
        ++h->data_selected;
      else
        ++h->selected[slot];
    }
    if (is_data) continue;
    // Candidates for the variations: selected, or (momentum scale) close enough to migrate in.
    if (fit_bin < 0 && momentum.empty()) continue;
    s->cand.push_back(Candidate{static_cast<std::uint32_t>(i), static_cast<std::int8_t>(slot),
                                static_cast<std::int8_t>(q), true, w, pt, eta, phi, met_x, met_y,
                                mu.eff_iso[i], fit_bin});
    s->other.push_back(o);
    s->gen_pt.push_back(mu.gen_pt[i]);
  }
  if (!is_data && !s->cand.empty()) FillVariations(b, h, s);
}

// W-like momentum scale: the nuisances touching either muon; the kept muon's shift moves its pT
// and the W-like missing pT, the other muon's its pT threshold and the dimuon mass.
void WMassProducer::Impl::FillMomentumWLike(const Candidate& c, double gen_pt, const OtherMuon& o,
                                            VariationStore* vs) const {
  const int kb = scale_calibration.Bin(c.eta);
  const int ob = scale_calibration.Bin(o.eta);
  const double cphi = std::cos(c.phi), sphi = std::sin(c.phi);
  // The template is (up - down) / 2 of the two shifts (mirrored by the fit input): a candidate
  // that leaves its bin in both directions cancels there, so the template is not correlated
  // with the MC fluctuation of its own bin (see FillVariations).
  auto apply = [&](int k) {
    const MomentumNuisance& n = momentum[k];
    for (int sign : {+1, -1}) {
      const double pt = VariedPt(n, kb, c.pt, gen_pt, c.charge, sign);
      OtherMuon so = o;
      so.pt = VariedPt(n, ob, o.pt, o.gen_pt, o.charge, sign);
      const double d = pt - c.pt;
      double mt = 0.0;
      const int fb =
          WLikeBin(pt, c.eta, c.phi, c.charge, so, c.met_x - d * cphi, c.met_y - d * sphi, &mt);
      const int to = fb >= 0 && mt_axis.index(mt) == 2 ? fb : -1;
      const double hw = 0.5 * sign * c.w;
      if (to != c.fit_bin) vs->Move(scale_id[k * nslots + c.slot], c.fit_bin, hw, to, hw);
    }
  };
  for (int k : momentum_by_bin[kb]) apply(k);
  for (int k : momentum_by_bin[ob])
    if (!momentum[k].Touches(kb)) apply(k);
}

void WMassProducer::Impl::FillVariations(const EventBatch& b, WMassHistograms* h,
                                         Scratch* s) const {
  VariationStore& vs = h->variations;
  const double mt_cut = config.mt_cut;

  // Momentum scale: re-evaluate pT, mT and the bin of each candidate under each nuisance that
  // touches its eta bin, up and down; the template is (up - down) / 2 (the fit input mirrors
  // it). A one-sided (up) template is built from the same events as its bin's nominal content:
  // every candidate leaving a bin lowers it, so the template is correlated with the bin's MC
  // fluctuation and the fit uses the scale nuisances to absorb simulation fluctuations (a bias
  // of the mass; measured on the dilepton producer, docs/dilepton.md). In (up - down) / 2 a
  // candidate leaving its bin in both directions cancels there.
  if (!momentum.empty()) {
    for (std::size_t j = 0; j < s->cand.size(); ++j) {
      const Candidate& c = s->cand[j];
      if (!c.iso_pass) continue;
      if (wlike) {
        FillMomentumWLike(c, s->gen_pt[j], s->other[j], &vs);
        continue;
      }
      const int cal_bin = scale_calibration.Bin(c.eta);
      const double cphi = std::cos(c.phi), sphi = std::sin(c.phi);
      const int eb = c.fit_bin >= 0 ? c.fit_bin / eta_stride : eta_axis.index(c.eta);
      for (int k : momentum_by_bin[cal_bin])
        for (int sign : {+1, -1}) {
          const double pt = VariedPt(momentum[k], cal_bin, c.pt, s->gen_pt[j], c.charge, sign);
          const double d = pt - c.pt;
          const double mx = c.met_x - d * cphi, my = c.met_y - d * sphi;
          const double mt2 = 2.0 * pt * (std::hypot(mx, my) - (cphi * mx + sphi * my));
          int to = -1;
          if (mt2 > mt_cut * mt_cut) {
            const int pb = pt_axis.index(pt);
            if (pb >= 0 && pb < config.pt_bins) to = eb * eta_stride + pb * 2 + (c.charge > 0);
          }
          if (to == c.fit_bin) continue;
          const double hw = 0.5 * sign * c.w;
          vs.Move(scale_id[k * nslots + c.slot], c.fit_bin, hw, to, hw);
        }
    }
  }

  // Efficiency scale factors: the nuisances acting on each selected muon.
  if (efficiency) {
    s->active.resize(efficiency->MaxActive());
    for (std::size_t j = 0; j < s->cand.size(); ++j) {
      const Candidate& c = s->cand[j];
      if (c.fit_bin < 0) continue;
      const int na = efficiency->Active(c.eta, c.pt, c.charge, true, c.eff_iso, s->active.data());
      for (int a = 0; a < na; ++a) {
        const int id = eff_id[s->active[a].index * nslots + c.slot];
        vs.Fill(id, c.fit_bin, c.w * s->active[a].rel);
      }
      if (!wlike) continue;
      // W-like: the other muon's scale factors (it is not trigger-matched). The two changes
      // add (to first order) when one nuisance acts on both muons.
      const OtherMuon& o = s->other[j];
      const int no = efficiency->Active(o.eta, o.pt, o.charge, true, o.eff_iso, s->active.data());
      const auto& en = efficiency->nuisances();
      for (int a = 0; a < no; ++a) {
        if (en[s->active[a].index].step == EfficiencyKind::kTrigger) continue;
        const int id = eff_id[s->active[a].index * nslots + c.slot];
        if (layout.support(id).Contains(c.fit_bin)) vs.Fill(id, c.fit_bin, c.w * s->active[a].rel);
      }
    }
  }

  // Theory weights: computed per variation over the selected events with a boson.
  if (!theory_kinds_needed.empty()) {
    s->theory_cand.clear();
    for (std::size_t j = 0; j < s->cand.size(); ++j) {
      const Candidate& c = s->cand[j];
      // Top and diboson bosons are not varied.
      if (c.fit_bin < 0 || c.slot == WMassSlot(Process::kTop) ||
          c.slot == WMassSlot(Process::kDiboson))
        continue;
      if (!(b.v_mass[c.event] > 0)) continue;
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
      const bool want_down = theory_want_down[k];
      theory.Weights(static_cast<std::size_t>(k), s->inputs, s->up.data(),
                     want_down ? s->down.data() : nullptr);
      for (std::size_t j = 0; j < m; ++j) {
        const Candidate& c = s->cand[s->theory_cand[j]];
        const int up_id = theory_up[k * nslots + c.slot];
        if (up_id < 0) continue;
        if (s->up[j] != 1.0) vs.Fill(up_id, c.fit_bin, c.w * (s->up[j] - 1.0));
        if (want_down) {
          const int down_id = theory_down[k * nslots + c.slot];
          if (down_id >= 0 && s->down[j] != 1.0)
            vs.Fill(down_id, c.fit_bin, c.w * (s->down[j] - 1.0));
        }
      }
      if (k == noi_kind && want_down) {
        // The MC variance of the NOI's linear template (up - down) / 2: per event and bin the
        // square of the event's total contribution (its muon hypotheses and, in the helicity
        // mode, its components are one event; candidates come in event order).
        EventBins ev;
        std::uint32_t event = 0;
        auto flush = [&] {
          for (int e = 0; e < ev.n; ++e) h->noi_var[ev.bin[e]] += ev.w[e] * ev.w[e];
          ev.n = 0;
        };
        for (std::size_t j = 0; j < m; ++j) {
          const Candidate& c = s->cand[s->theory_cand[j]];
          if (theory_up[k * nslots + c.slot] < 0) continue;
          if (ev.n > 0 && c.event != event) flush();
          event = c.event;
          ev.Add(c.fit_bin, c.w * 0.5 * (s->up[j] - s->down[j]));
        }
        flush();
      }
    }
  }
}

// Helicity mode (helicity.h): every signal candidate becomes one candidate per helicity
// component of its generator-level cell, with weight w h_c (HelicityWeights, summing to 1), so
// every variation filled below acts on every split process; the fit-channel ones fill the split
// nominal templates. Every simulated signal event (the simulation is not filtered in this mode)
// adds to the generator-level cross sections of its cell.
void WMassProducer::Impl::SplitSignal(const EventBatch& b, WMassHistograms* h, Scratch* s) const {
  const GeneratorParams& physics = theory.config().physics;
  const double inv_lumi = 1.0 / config.luminosity_pb;
  constexpr int nc = kNumHelicityComponents;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (WMassSlot(b.process[i]) != 0) continue;
    const int cell = split->Cell(b.v_charge[i], b.v_pt[i], b.v_y[i]);
    if (cell < 0) continue;
    const auto a = AngularCoefficients(physics, b.v_charge[i], b.v_pt[i], std::abs(b.v_y[i]));
    double w = b.weight[i] * inv_lumi;
    if (center_shift_mev != 0.0) w *= CenterWeight(b, i);
    h->split_xsec[split->Process(cell, 0)] += w;
    for (int c = 1; c < nc; ++c) h->split_xsec[split->Process(cell, c)] += w * a[c - 1];
  }
  s->split_cand.clear();
  s->split_gen_pt.clear();
  // MC-statistics variance of the split templates. The components of an event are one event:
  // at the nominal point the prediction of a bin is sum_c w h_c = w, whose variance is w^2 (the
  // unsplit sumw2), not sum_c (w h_c)^2. Each fit bin's event variance W^2 (W: the event's
  // total weight in the bin, over its muon hypotheses) is allocated to the components in
  // proportion to |h_c|: sum_c W^2 |h_c| / sum_j |h_j| = W^2 exactly, and every share is >= 0
  // (h_c itself can be negative). docs/helicity.md, "MC-statistics variance".
  EventBins ev;
  std::uint32_t ev_event = 0;
  int ev_cell = -1;
  std::array<double, 9> ev_hw{};
  auto flush = [&] {
    double norm = 0.0;
    for (int comp = 0; comp < nc; ++comp) norm += std::abs(ev_hw[comp]);
    if (ev_cell >= 0 && norm > 0.0)
      for (int k = 0; k < ev.n; ++k) {
        const double v = ev.w[k] * ev.w[k] / norm;
        for (int comp = 0; comp < nc; ++comp)
          h->split[split->Process(ev_cell, comp)].Fill(ev.bin[k], 0.0, v * std::abs(ev_hw[comp]));
      }
    ev.n = 0;
    ev_cell = -1;
  };
  for (std::size_t j = 0; j < s->cand.size(); ++j) {
    const Candidate& c = s->cand[j];
    if (c.slot != 0) {
      s->split_cand.push_back(c);
      s->split_gen_pt.push_back(s->gen_pt[j]);
      continue;
    }
    const std::size_t i = c.event;
    const int cell = split->Cell(b.v_charge[i], b.v_pt[i], b.v_y[i]);
    if (cell < 0) continue;  // no generator-level boson: cannot be split
    const auto a = AngularCoefficients(physics, b.v_charge[i], b.v_pt[i], std::abs(b.v_y[i]));
    const std::array<double, 9> hw = HelicityWeights(a, b.cos_theta_cs[i], b.phi_cs[i]);
    if (ev_cell >= 0 && c.event != ev_event) flush();  // candidates come in event order
    ev_event = c.event;
    ev_cell = cell;
    ev_hw = hw;
    if (c.fit_bin >= 0) ev.Add(c.fit_bin, c.w);
    for (int comp = 0; comp < nc; ++comp) {
      Candidate x = c;
      const int p = split->Process(cell, comp);
      x.slot = kWMassMcSlots + p;
      x.w = c.w * hw[comp];
      if (x.fit_bin >= 0) h->split[p].Fill(x.fit_bin, x.w, 0.0);  // variance: flush()
      s->split_cand.push_back(x);
      s->split_gen_pt.push_back(s->gen_pt[j]);
    }
  }
  flush();
  std::swap(s->cand, s->split_cand);
  std::swap(s->gen_pt, s->split_gen_pt);
}

// ---- WMassProducer

WMassProducer::WMassProducer(WMassConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}
WMassProducer::~WMassProducer() = default;
WMassProducer::WMassProducer(WMassProducer&&) noexcept = default;
WMassProducer& WMassProducer::operator=(WMassProducer&&) noexcept = default;

const WMassConfig& WMassProducer::config() const { return impl_->config; }
const BinSpace& WMassProducer::region_space() const { return impl_->region_space; }
const BinSpace& WMassProducer::fit_space() const { return impl_->fit_space; }
int WMassProducer::signal_region_offset() const { return impl_->signal_offset; }
const VariationLayout& WMassProducer::layout() const { return impl_->layout; }
const TheoryVariations& WMassProducer::theory() const { return impl_->theory; }
const EfficiencyVariations& WMassProducer::efficiency() const {
  if (!impl_->efficiency) throw std::logic_error("WMassProducer: efficiency variations are off");
  return *impl_->efficiency;
}
const std::vector<MomentumNuisance>& WMassProducer::momentum_nuisances() const {
  return impl_->momentum;
}
const CalibrationParameters& WMassProducer::calibration() const { return impl_->calibration; }

WMassHistograms WMassProducer::MakeHistograms() const {
  WMassHistograms h;
  for (int s = 0; s < kWMassMcSlots; ++s) h.mc.emplace_back(impl_->region_space);
  h.data = WeightedHistogram(impl_->region_space);
  h.variations = VariationStore(&impl_->layout);
  h.noi_var.assign(impl_->fit_size, 0.0);
  if (impl_->split) {
    for (int p = 0; p < impl_->split->num_processes(); ++p) h.split.emplace_back(impl_->fit_space);
    h.split_xsec.assign(impl_->split->num_processes(), 0.0);
  }
  return h;
}

void WMassProducer::FillBatch(const EventBatch& batch, SampleKind sample,
                              WMassHistograms* h) const {
  Scratch scratch;
  impl_->FillBatch(batch, sample, h, &scratch);
}

namespace {

// The simulated processes of an analysis (W-like: those with two prompt muons).
std::vector<Process> PromptProcesses(const WMassConfig& c) {
  // The generator's top and diboson events have one prompt muon: no W-like pair.
  if (c.analysis == WMassAnalysis::kWLike) return {Process::kZMuMu, Process::kZTauTau};
  return {Process::kWplusMuNu, Process::kWminusMuNu, Process::kWTauNu, Process::kZMuMu,
          Process::kZTauTau,   Process::kTop,        Process::kDiboson};
}

// Generator filter: one muon (W), two (W-like) near the pT range.
EventFilter SampleFilter(const WMassConfig& c) {
  return EventFilter{c.analysis == WMassAnalysis::kWLike ? 2 : 1,
                     c.pt_min - kMigrationMargin - 1.0};
}

// The generator configurations of the samples.
GeneratorConfig SimulationGenerator(const WMassConfig& c) {
  GeneratorConfig g;
  g.sample = SampleKind::kSimulation;
  g.processes = PromptProcesses(c);
  g.num_events = c.simulation.events;
  g.luminosity_pb = c.luminosity_pb;
  g.seed = c.simulation.seed;
  g.physics = GeneratorParams::Simulation();
  g.detector = DetectorParams::Simulation();
  g.filter = SampleFilter(c);
  // The helicity mode needs every signal event for the generator-level cross sections.
  if (c.helicity.enabled) g.filter = EventFilter{};
  return g;
}

// charge_sign: 0 for the main data generator, +1 for the W+ generator used when data have a
// charge-dependent W mass (its W+ events replace the main generator's).
GeneratorConfig DataGenerator(const WMassConfig& c, int charge_sign = 0) {
  GeneratorConfig g = GeneratorConfig::DefaultData();
  g.processes = PromptProcesses(c);
  // Without the non-prompt estimate the generated data have no non-prompt muons either.
  if (c.nonprompt) g.processes.push_back(Process::kNonPrompt);
  if (charge_sign > 0) g.processes = {Process::kWplusMuNu};
  g.luminosity_pb = c.luminosity_pb;
  g.seed = c.data.seed;
  const double half_diff = 0.5 * c.data_mw_charge_diff_mev * (charge_sign > 0 ? 1.0 : -1.0);
  // A mass shift carries the width along as Gamma' = Gamma (M'/M)^3, the convention of the
  // Breit-Wigner templates (theory_variations.h), so that the generated data at a shift are what
  // the reweighted simulation describes (a width change of 8 MeV per 100 MeV for the W).
  const GeneratorParams sim = GeneratorParams::Simulation();
  g.physics.w_mass = sim.w_mass + (c.data_mw_shift_mev + half_diff) * 1e-3;
  g.physics.w_width = sim.w_width * std::pow(g.physics.w_mass / sim.w_mass, 3);
  g.physics.z_mass = sim.z_mass + c.data_mz_shift_mev * 1e-3;
  g.physics.z_width = sim.z_width * std::pow(g.physics.z_mass / sim.z_mass, 3);
  if (c.helicity.enabled)
    for (int i = 0; i < 8; ++i) g.physics.a_scale[i] *= c.helicity.data_a_scale[i];
  if (!c.data_scale_bias) g.detector.scale_bias = DetectorParams::Simulation().scale_bias;
  if (!c.data_efficiency_bias)
    g.detector.efficiency_variation = DetectorParams::Simulation().efficiency_variation;
  g.filter = SampleFilter(c);
  return g;
}

}  // namespace

WMassHistograms WMassProducer::Fill(const ProduceOptions& options) const {
  const WMassConfig& c = impl_->config;
  // A charge-dependent W mass in generated data: the W+ events from their own generator.
  const bool wplus = c.data_mw_charge_diff_mev != 0.0 && c.analysis == WMassAnalysis::kWMass;
  const GeneratorConfig wplus_generator = DataGenerator(c, +1);
  detail::WorkList work(c.simulation, SimulationGenerator(c), c.data, DataGenerator(c),
                        c.chunk_events, wplus ? &wplus_generator : nullptr);
  WMassHistograms h = detail::OrderedFill<WMassHistograms, Scratch>(
      work, options, [this] { return MakeHistograms(); },
      [this](const EventBatch& batch, SampleKind sample, WMassHistograms* h, Scratch* scratch) {
        impl_->FillBatch(batch, sample, h, scratch);
      });
  h.input_warnings = work.InputWarnings();
  return h;
}

NonpromptResult WMassProducer::EstimateNonpromptBackground(const WMassHistograms& h) const {
  return EstimateNonprompt(NonpromptInputsOf(h), impl_->config.nonprompt_options);
}

NonpromptInputs WMassProducer::NonpromptInputsOf(const WMassHistograms& h) const {
  const Impl& m = *impl_;
  NonpromptInputs in;
  in.binning.n_eta = m.config.eta_bins;
  in.binning.n_charge = 2;
  for (int b = 0; b <= m.config.eta_bins; ++b)
    in.binning.eta_edges.push_back(m.fit_space.BinLower(0, b));
  for (int b = 0; b <= m.config.pt_bins; ++b)
    in.binning.pt_edges.push_back(m.fit_space.BinLower(1, b));
  const int size = m.fit_size;
  for (int mt = 0; mt < 3; ++mt) {
    for (int iso = 0; iso < 2; ++iso) {
      const int r = static_cast<int>(RegionOf(mt, iso));
      const int off = mt * m.region_space.stride(0) + iso * m.region_space.stride(1);
      in.data[r].sumw = h.data.Sumw(off, off + size);
      in.data[r].sumw2 = h.data.Sumw2(off, off + size);
      std::vector<double> pw(size, 0.0), pw2(size, 0.0);
      for (const auto& hist : h.mc) {
        for (int i = 0; i < size; ++i) {
          pw[i] += hist.sumw(off + i);
          pw2[i] += hist.sumw2(off + i);
        }
      }
      in.prompt[r].sumw = std::move(pw);
      in.prompt[r].sumw2 = std::move(pw2);
    }
  }
  return in;
}

namespace {

// Helicity mode: the masked channel of the generator-level cross sections, one bin per split
// process (helicity.h order), and the normalisation priors of the split processes.
void AddHelicityChannel(const WMassProducer::Impl& m, const WMassHistograms& h,
                        io::TensorWriter* w) {
  const HelicitySplit& sp = *m.split;
  const HelicityConfig& hc = m.config.helicity;
  std::vector<double> pt = sp.pt_edges(), y = sp.y_edges();
  pt.push_back(std::max(1e4, 2 * pt.back()));  // the overflows end at a large finite edge
  y.push_back(std::max(10.0, 2 * y.back()));
  std::vector<double> comp;
  for (int c = 0; c <= kNumHelicityComponents; ++c) comp.push_back(c);
  const std::string xch = kHelicityXsecChannel;
  w->AddChannel(xch, {{"charge", {-2.0, 0.0, 2.0}}, {"ptV", pt}, {"absYV", y}, {"helicity", comp}},
                true);
  const int np = sp.num_processes();
  for (int p = 0; p < np; ++p) {
    std::vector<double> v(np, 0.0);
    v[p] = h.split_xsec[p];
    const std::string name = m.slot_names[kWMassMcSlots + p];
    w->SetNominal(xch, name, v);
    if (!hc.free) {
      const std::string norm = sp.NormName(p);
      w->DeclareSystematic(norm);
      w->AddToGroup("helicityNorm", norm);
      w->AddNormSystematic(norm, name, m.config.Channel(), 1.0 + hc.prior_width);
      w->AddNormSystematic(norm, name, xch, 1.0 + hc.prior_width);
    }
  }
}

}  // namespace

namespace {

// The non-prompt estimate, checked: with few data events in the sidebands the pT smoothing can
// extrapolate wildly (a polynomial in ln D fitted to a handful of bins). A non-prompt template
// that is not finite or exceeds the data of the signal region is unphysical: fall back to the
// unsmoothed prediction (with its propagated variance, from `unsmoothed`) and say so.
NonpromptResult CheckedNonprompt(
    const WMassProducer::Impl& m, const WMassHistograms& h, NonpromptResult np,
    const std::function<NonpromptResult(const NonpromptOptions&)>& estimate,
    std::vector<std::string>* warnings) {
  const WMassConfig& c = m.config;
  const int off = m.signal_offset, size = m.fit_size;
  double data_total = 0.0, data_max = 0.0;
  for (int i = 0; i < size; ++i) {
    data_total += h.data.sumw(off + i);
    data_max = std::max(data_max, h.data.sumw(off + i));
  }
  auto sane = [&](const std::vector<double>& t) {
    double total = 0.0;
    for (double v : t) {
      if (!std::isfinite(v) || v > std::max(10.0, 10.0 * data_max)) return false;
      total += v;
    }
    return total <= std::max(10.0, data_total);
  };
  bool ok = sane(np.nominal);
  for (const auto& v : np.variations) ok = ok && sane(v.up) && (v.down.empty() || sane(v.down));
  if (ok || c.nonprompt_options.smoothing_order < 0) return np;
  double total = 0.0;
  for (double v : np.nominal) total += v;
  char msg[256];
  std::snprintf(msg, sizeof(msg),
                "the non-prompt pT smoothing is unstable at these statistics (template total "
                "%.3g for %.0f data events in the signal region): the unsmoothed ABCD "
                "prediction is used",
                total, data_total);
  warnings->push_back(msg);
  NonpromptOptions raw = c.nonprompt_options;
  raw.smoothing_order = -1;
  return estimate(raw);
}

// The fit input of the single-muon producer, built in named steps (WMassProducer::MakeFitInput
// calls them in order): the processes and their nominal templates, then each systematic
// family, then the pseudo-data sets, then the summary.
class FitInputBuilder {
 public:
  FitInputBuilder(const WMassProducer::Impl& m, const WMassHistograms& h, const NonpromptResult& np)
      : m_(m),
        c_(m.config),
        h_(h),
        np_(np),
        ch_(m.config.Channel()),
        off_(m.signal_offset),
        size_(m.fit_size),
        hel_(m.split != nullptr),
        // Helicity mode: additive (normal) systematics. The component templates can be negative
        // or nearly cancel in a bin (A_i P_i / D changes sign over the decay angles); a log-normal
        // variation cannot act on a non-positive nominal (the writer drops it) and interpolates a
        // large ratio of a nearly cancelling template exponentially, which broke the mass
        // closure (a +30 MeV pseudo-data set returned +26 MeV). Additive variations are exact in
        // the sum.
        w_(m.split ? engine::SystematicType::kNormal : engine::SystematicType::kLogNormal) {}

  // The channel, the processes, the data and the nominal templates (with their MC variances).
  void AddProcessesAndNominals();
  // Theory: mass (NOI, or its charge / eta split), width, pdf, angular coefficients, pT(V), EW.
  void AddTheory();
  void AddMomentumScale();
  void AddEfficiencies();
  void AddNonpromptVariations();
  void AddLuminosity();
  void AddBackgroundNorms();
  // The expectation with the signal template(s) at known mass shifts.
  void AddMassPseudoData();
  // Helicity mode: the expectation with modified A_i (scaled split templates).
  void AddHelicityPseudoData();
  void FillSummary(WMassSummary* sum) const;
  io::TensorWriter Release() { return std::move(w_); }

 private:
  bool HasEffect(int id) const { return id >= 0 && h_.variations.AbsSum(id) > 0.0; }

  const WMassProducer::Impl& m_;
  const WMassConfig& c_;
  const WMassHistograms& h_;
  const NonpromptResult& np_;
  const std::string ch_;
  const int off_, size_;
  const bool hel_;
  io::TensorWriter w_;
  // The processes written (slots), those that carry the signal, those of the summary.
  std::vector<int> slots_, signal_slots_, summary_slots_;
  std::vector<std::string> procs_;
  std::vector<double> data_;
  std::vector<std::vector<double>> nominal_;  // per slot
  int mass_pseudodata_ = 0;
  std::vector<double> noi_derivative_;  // (up - down) / 2 of the NOI, summed over processes
};

void FitInputBuilder::AddProcessesAndNominals() {
  const int sig = m_.signal_slot;
  w_.AddChannel(ch_, m_.fit_space.ToEngineAxes());
  // The processes written: W-like drops a background without any selected event (the
  // generator's top and diboson events have one prompt muon; event files may have pairs).
  for (int s : m_.slots) {
    if (!m_.wlike || s == sig) {
      slots_.push_back(s);
      continue;
    }
    double sumw = 0.0;
    for (int i = 0; i < size_; ++i) sumw += h_.mc[s].sumw(off_ + i);
    if (sumw != 0.0) slots_.push_back(s);
  }
  // Helicity mode: the split processes (signals only when free) replace Wmunu; the summary lists
  // the unsplit slots.
  summary_slots_ = slots_;
  if (hel_) {
    summary_slots_ = {0, 1, 2, 3, 4, 5};
    for (int s : slots_)
      if (s >= kWMassMcSlots) signal_slots_.push_back(s);
  } else {
    signal_slots_ = {sig};
  }
  for (int s : slots_)
    w_.AddProcess(m_.slot_names[s], hel_ ? s >= kWMassMcSlots && c_.helicity.free : s == sig);
  for (int s : summary_slots_) procs_.push_back(kSlotNames[s]);
  if (c_.nonprompt) {
    w_.AddProcess("nonprompt", false);
    procs_.push_back("nonprompt");
  }
  data_ = h_.data.Sumw(off_, off_ + size_);
  w_.SetData(ch_, data_);

  nominal_.assign(m_.nslots, {});
  for (int s : summary_slots_) nominal_[s] = h_.mc[s].Sumw(off_, off_ + size_);
  for (int s : slots_) {
    const WeightedHistogram& hist = s < kWMassMcSlots ? h_.mc[s] : h_.split[s - kWMassMcSlots];
    const int o = s < kWMassMcSlots ? off_ : 0;
    if (s >= kWMassMcSlots) nominal_[s] = hist.Sumw(o, o + size_);
    w_.SetNominal(ch_, m_.slot_names[s], nominal_[s],
                  c_.bin_by_bin_stat ? hist.Sumw2(o, o + size_) : std::vector<double>{});
  }
  if (hel_) AddHelicityChannel(m_, h_, &w_);
  if (c_.nonprompt) {
    bool any_var = false;
    for (double v : np_.sumw2) any_var = any_var || v > 0;
    w_.SetNominal(ch_, "nonprompt", np_.nominal,
                  c_.bin_by_bin_stat && any_var ? np_.sumw2 : std::vector<double>{});
  }
}

void FitInputBuilder::AddTheory() {
  const VariationStore& vs = h_.variations;
  const auto& tn = m_.theory.nuisances();
  for (std::size_t k = 0; k < tn.size(); ++k) {
    const TheoryNuisance& n = tn[k];
    if (n.role == TheoryRole::kAlternative) continue;
    // Variations of a boson the analysis does not select (W variations in the W-like fit).
    if (!m_.theory_needed[k]) continue;
    // The NOI split into charge / eta regions (mass_split.h): its parameters instead.
    const bool split = n.role == TheoryRole::kInterest && !m_.mass_split.empty();
    if (split) {
      for (const MassSplitParameter& p : m_.mass_split) {
        w_.DeclareSystematic(p.name, 0.0, true, n.scale_mev, "MeV");
        w_.AddToGroup(n.group, p.name);
      }
    } else if (n.role == TheoryRole::kInterest) {
      w_.DeclareSystematic(n.name, 0.0, true, n.scale_mev, "MeV");
    } else {
      w_.DeclareSystematic(n.name);
    }
    if (!split) w_.AddToGroup(n.group, n.name);
    for (int s : slots_) {
      const int up = m_.theory_up[k * m_.nslots + s];
      const int dn = m_.theory_down[k * m_.nslots + s];
      if (!HasEffect(up) && !HasEffect(dn)) continue;
      const std::vector<double> vu = vs.Varied(up, nominal_[s]);
      if (n.role == TheoryRole::kInterest && dn >= 0) {
        // The linear mass template (up - down) / 2 of all processes (MassAttenuation).
        const std::vector<double> vd = vs.Varied(dn, nominal_[s]);
        noi_derivative_.resize(size_, 0.0);
        for (int i = 0; i < size_; ++i) noi_derivative_[i] += 0.5 * (vu[i] - vd[i]);
      }
      if (split) {
        const std::vector<double> vd = vs.Varied(dn, nominal_[s]);
        std::vector<double> pu, pd;
        for (const MassSplitParameter& p : m_.mass_split) {
          MassSplitTemplates(p, nominal_[s], vu, vd, &pu, &pd);
          w_.AddShapeSystematic(p.name, kSlotNames[s], ch_, pu, pd, io::Symmetrization::kNone);
        }
        continue;
      }
      if (dn < 0) {
        w_.AddShapeSystematic(n.name, m_.slot_names[s], ch_, vu);
      } else {
        const io::Symmetrization sym =
            n.role == TheoryRole::kInterest ? io::Symmetrization::kNone : c_.symmetrization;
        w_.AddShapeSystematic(n.name, m_.slot_names[s], ch_, vu, vs.Varied(dn, nominal_[s]), sym);
      }
    }
  }
}

void FitInputBuilder::AddMomentumScale() {
  for (std::size_t k = 0; k < m_.momentum.size(); ++k) {
    const std::string& name = m_.momentum[k].name;
    w_.DeclareSystematic(name);
    // Resolution nuisances count in the momentum-scale total (as in the CMS W-mass impact table)
    // and in their own group.
    w_.AddToGroup("muonScale", name);
    if (m_.momentum[k].group != "muonScale") w_.AddToGroup(m_.momentum[k].group, name);
    for (int s : slots_) {
      const int id = m_.scale_id[k * m_.nslots + s];
      if (HasEffect(id))
        w_.AddShapeSystematic(name, m_.slot_names[s], ch_, h_.variations.Varied(id, nominal_[s]));
    }
  }
}

void FitInputBuilder::AddEfficiencies() {
  if (!m_.efficiency) return;
  const auto& en = m_.efficiency->nuisances();
  for (std::size_t k = 0; k < en.size(); ++k) {
    w_.DeclareSystematic(en[k].name);
    w_.AddToGroup("muonEfficiency", en[k].name);
    w_.AddToGroup(en[k].group, en[k].name);
    for (int s : slots_) {
      const int id = m_.eff_id[k * m_.nslots + s];
      if (HasEffect(id))
        w_.AddShapeSystematic(en[k].name, m_.slot_names[s], ch_,
                              h_.variations.Varied(id, nominal_[s]));
    }
  }
}

void FitInputBuilder::AddNonpromptVariations() {
  if (!c_.nonprompt) return;
  for (const auto& v : np_.variations) {
    w_.DeclareSystematic(v.name);
    w_.AddToGroup("nonprompt", v.name);
    bool differs = false;
    for (int i = 0; i < size_ && !differs; ++i)
      differs = v.up[i] != np_.nominal[i] || (!v.down.empty() && v.down[i] != np_.nominal[i]);
    if (differs) w_.AddShapeSystematic(v.name, "nonprompt", ch_, v.up, v.down, c_.symmetrization);
  }
}

void FitInputBuilder::AddLuminosity() {
  if (!(c_.lumi_uncertainty > 0)) return;
  w_.DeclareSystematic("lumi");
  w_.AddToGroup("luminosity", "lumi");
  for (int s : slots_)
    w_.AddNormSystematic("lumi", m_.slot_names[s], ch_, 1.0 + c_.lumi_uncertainty);
}

// The prompt backgrounds' normalisations: cross sections and acceptances the simulation does not
// vary otherwise, one log-normal nuisance per process group, separate from the luminosity. The
// Z group is a background of the W fit only (in the W-like fit the Z is the signal).
void FitInputBuilder::AddBackgroundNorms() {
  struct Group {
    const char* name;
    double size;
    std::vector<int> slots;  // kSlotNames
  };
  const auto& n = c_.background_norms;
  const Group groups[] = {{"normZ", m_.wlike ? 0.0 : n.z, {2, 3}},
                          {"normTop", n.top, {4}},
                          {"normDiboson", n.diboson, {5}}};
  for (const Group& g : groups) {
    if (!(g.size > 0)) continue;
    std::vector<int> present;
    for (int s : g.slots)
      if (std::find(slots_.begin(), slots_.end(), s) != slots_.end()) present.push_back(s);
    if (present.empty()) continue;
    w_.DeclareSystematic(g.name);
    w_.AddToGroup("promptBackground", g.name);
    for (int s : present) w_.AddNormSystematic(g.name, m_.slot_names[s], ch_, 1.0 + g.size);
  }
}

void FitInputBuilder::AddMassPseudoData() {
  const VariationStore& vs = h_.variations;
  const auto& tn = m_.theory.nuisances();
  std::vector<double> others(size_, 0.0);
  for (int s : slots_)
    if (std::find(signal_slots_.begin(), signal_slots_.end(), s) == signal_slots_.end())
      for (int i = 0; i < size_; ++i) others[i] += nominal_[s][i];
  if (c_.nonprompt)
    for (int i = 0; i < size_; ++i) others[i] += np_.nominal[i];
  std::vector<double> shifts = c_.pseudodata_shifts_mev;
  if (c_.theory.mass_steps) {
    shifts.clear();
    const int nstep =
        static_cast<int>(std::llround(c_.theory.mass_shift_mev / c_.theory.mass_step_mev));
    for (int k = -nstep; k <= nstep; ++k) shifts.push_back(k * c_.theory.mass_step_mev);
  }
  for (double shift : shifts) {
    std::vector<double> wm(size_, 0.0);
    for (int s : signal_slots_) {
      std::vector<double> t = nominal_[s];
      if (std::abs(shift) > 1e-9) {
        int id = -1;
        for (std::size_t k = 0; k < tn.size() && id < 0; ++k) {
          const TheoryNuisance& n = tn[k];
          if (n.kind != TheoryKind::kMassShift) continue;
          if (n.role == TheoryRole::kAlternative && std::abs(n.scale_mev - shift) < 1e-6)
            id = m_.theory_up[k * m_.nslots + s];
          if (n.role == TheoryRole::kInterest && std::abs(n.scale_mev - std::abs(shift)) < 1e-6)
            id = shift > 0 ? m_.theory_up[k * m_.nslots + s] : m_.theory_down[k * m_.nslots + s];
        }
        if (id < 0)
          throw std::logic_error("W-mass producer: no template for the pseudo-data mass shift " +
                                 std::to_string(shift) + " MeV");
        t = vs.Varied(id, nominal_[s]);
      }
      for (int i = 0; i < size_; ++i) wm[i] += t[i];
    }
    std::vector<double> pd(size_);
    for (int i = 0; i < size_; ++i) pd[i] = std::max(0.0, wm[i] + others[i]);
    w_.AddPseudoData(MassShiftPseudoDataName(shift), ch_, pd);
  }
  mass_pseudodata_ = static_cast<int>(shifts.size());
}

void FitInputBuilder::AddHelicityPseudoData() {
  if (!hel_) return;
  std::vector<double> others(size_, 0.0);
  for (int s : slots_)
    if (std::find(signal_slots_.begin(), signal_slots_.end(), s) == signal_slots_.end())
      for (int i = 0; i < size_; ++i) others[i] += nominal_[s][i];
  if (c_.nonprompt)
    for (int i = 0; i < size_; ++i) others[i] += np_.nominal[i];
  for (const HelicityPseudoData& p : c_.helicity.pseudodata) {
    std::vector<double> pd = others;
    for (int s : signal_slots_) {
      const int q = s - kWMassMcSlots;
      const bool in = (p.pt_bin < 0 || m_.split->PtBinOf(q) == p.pt_bin) &&
                      (p.y_bin < 0 || m_.split->YBinOf(q) == p.y_bin) &&
                      (p.charge == 0 || m_.split->ChargeOf(q) == p.charge);
      const double f = in ? p.scale[m_.split->ComponentOf(q)] : 1.0;
      for (int i = 0; i < size_; ++i) pd[i] += f * nominal_[s][i];
    }
    for (double& v : pd) v = std::max(0.0, v);
    w_.AddPseudoData(p.name, ch_, pd);
  }
}

void FitInputBuilder::FillSummary(WMassSummary* sum) const {
  char sel[128];
  if (m_.wlike)
    std::snprintf(sel, sizeof(sel), "W-like: mT > %g GeV, two isolated muons, %g < mll < %g GeV",
                  c_.mt_cut, c_.mll_min, c_.mll_max);
  else
    std::snprintf(sel, sizeof(sel), "mT > %g GeV, isolated", c_.mt_cut);
  sum->selection = sel;
  sum->sim_events = h_.sim_events;
  sum->data_events = h_.data_events;
  sum->processes = procs_;
  for (int s : summary_slots_) {
    sum->selected.push_back(h_.selected[s]);
    double y = 0;
    for (double v : nominal_[s]) y += v;
    sum->yields.push_back(y);
  }
  if (c_.nonprompt) {
    sum->selected.push_back(-1);
    double y = 0;
    for (double v : np_.nominal) y += v;
    sum->yields.push_back(y);
  }
  sum->data_selected = h_.data_selected;
  for (double v : data_) sum->data_yield += v;
  sum->bins = size_;
  sum->variations_filled = m_.layout.size();
  sum->pseudodata_sets =
      mass_pseudodata_ + static_cast<int>(hel_ ? c_.helicity.pseudodata.size() : 0);
  if (hel_) {
    char msg[320];
    std::snprintf(msg, sizeof(msg),
                  "helicity: Wmunu split into %d processes (2 charges x %d pT x %d |y| bins x %d "
                  "components; %zu processes in the fit input), %s; masked channel %s",
                  m_.split->num_processes(), m_.split->num_pt(), m_.split->num_y(),
                  kNumHelicityComponents, slots_.size() + (c_.nonprompt ? 1 : 0),
                  c_.helicity.free ? "free signal strengths"
                                   : ("normalisation priors of " +
                                      std::to_string(c_.helicity.prior_width).substr(0, 5))
                                         .c_str(),
                  kHelicityXsecChannel);
    sum->notes.push_back(msg);
  }
  sum->clipped_entries = w_.clipped_entries();
  sum->noi = c_.Noi();
  sum->mass_center_mev = c_.MassCenterMev();
  sum->simulation_mass_mev = c_.SimulationMassMev();
  if (noi_derivative_.empty()) return;
  // The bins' variance at the nominal point: the expectation, plus the nominal templates' MC
  // variance that the Barlow-Beeston treatment adds.
  std::vector<double> var(size_, 0.0);
  for (int s : slots_) {
    const WeightedHistogram& hist = s < kWMassMcSlots ? h_.mc[s] : h_.split[s - kWMassMcSlots];
    const int o = s < kWMassMcSlots ? off_ : 0;
    for (int i = 0; i < size_; ++i) {
      var[i] += nominal_[s][i];
      if (c_.bin_by_bin_stat) var[i] += hist.sumw2(o + i);
    }
  }
  if (c_.nonprompt)
    for (int i = 0; i < size_; ++i) {
      var[i] += np_.nominal[i];
      if (c_.bin_by_bin_stat) var[i] += np_.sumw2[i];
    }
  if (m_.mass_split.empty()) {
    sum->attenuation.push_back(EstimateMassAttenuation(c_.Noi(), noi_derivative_, h_.noi_var, var));
  } else {
    for (const MassSplitParameter& p : m_.mass_split)
      sum->attenuation.push_back(
          EstimateMassAttenuation(p.name, noi_derivative_, h_.noi_var, var, p.coeff));
  }
  for (const MassAttenuation& a : sum->attenuation) {
    char msg[640];
    if (!a.determined) {
      std::snprintf(msg, sizeof(msg),
                    "attenuation of %s not determined: its mass template is not above its own "
                    "simulation noise (information %.3g, noise %.3g); produce with more simulated "
                    "events",
                    a.parameter.c_str(), a.information, a.noise);
      sum->warnings.push_back(msg);
    } else if (1.0 - a.slope > kAttenuationWarning) {
      std::snprintf(msg, sizeof(msg),
                    "attenuation of %s: with this simulation the fitted shift responds to a "
                    "true one with slope %.3f (r = %.3f; expected %.0f%% low), from the "
                    "statistical noise of the mass template (a lower bound: profiled fits "
                    "attenuate more); produce with more simulated events (r falls as 1/N). "
                    "Recentring the templates (--mass-center) does not remove it: the reweighted "
                    "templates are the same events, and an iterated fit stays where the first "
                    "one was (docs/producers.md, \"Template statistics\")",
                    a.parameter.c_str(), a.slope, a.r, 100.0 * (1.0 - a.slope));
      sum->warnings.push_back(msg);
    }
  }
}

}  // namespace

io::TensorWriter WMassProducer::MakeFitInput(const WMassHistograms& h,
                                             WMassSummary* summary) const {
  const Impl& m = *impl_;
  WMassSummary sum;
  sum.warnings = h.input_warnings;
  const auto t0 = std::chrono::steady_clock::now();
  NonpromptResult np;
  if (m.config.nonprompt)
    np = CheckedNonprompt(
        m, h, EstimateNonpromptBackground(h),
        [&](const NonpromptOptions& o) { return EstimateNonprompt(NonpromptInputsOf(h), o); },
        &sum.warnings);
  const auto t1 = std::chrono::steady_clock::now();
  FitInputBuilder b(m, h, np);
  b.AddProcessesAndNominals();
  b.AddTheory();
  b.AddMomentumScale();
  b.AddEfficiencies();
  b.AddNonpromptVariations();
  b.AddLuminosity();
  b.AddBackgroundNorms();
  b.AddMassPseudoData();
  b.AddHelicityPseudoData();
  const auto t2 = std::chrono::steady_clock::now();
  b.FillSummary(&sum);
  sum.seconds_estimate = std::chrono::duration<double>(t1 - t0).count();
  sum.seconds_build = std::chrono::duration<double>(t2 - t1).count();
  if (summary) *summary = std::move(sum);
  return b.Release();
}

io::WriteOptions WMassProducer::ResolveWriteOptions(const engine::Model& model,
                                                    double* density_out) const {
  const WMassConfig& c = impl_->config;
  return detail::ResolveStorage(model, c.storage, c.sparse_density, c.gzip, density_out);
}

WMassProduction ProduceWMass(const WMassConfig& config, const ProduceOptions& options) {
  return detail::ProduceChain<WMassProduction, WMassProducer>(config, options);
}

MassAttenuation EstimateMassAttenuation(const std::string& parameter,
                                        const std::vector<double>& derivative,
                                        const std::vector<double>& derivative_var,
                                        const std::vector<double>& variance,
                                        const std::vector<double>& coeff) {
  const std::size_t n = derivative.size();
  if (derivative_var.size() != n || variance.size() != n || (!coeff.empty() && coeff.size() != n))
    throw std::invalid_argument(
        "EstimateMassAttenuation(" + parameter + "): sizes " + std::to_string(n) + ", " +
        std::to_string(derivative_var.size()) + ", " + std::to_string(variance.size()) + ", " +
        std::to_string(coeff.size()) + ", but must be equal (coefficients: or empty)");
  MassAttenuation a;
  a.parameter = parameter;
  double d2 = 0.0;  // sum c^2 d^2 / V: the template's information including its noise
  for (std::size_t b = 0; b < n; ++b) {
    if (!(variance[b] > 0)) continue;
    const double c2 = coeff.empty() ? 1.0 : coeff[b] * coeff[b];
    d2 += c2 * derivative[b] * derivative[b] / variance[b];
    a.noise += c2 * derivative_var[b] / variance[b];
  }
  a.information = d2 - a.noise;
  a.determined = std::isfinite(d2) && std::isfinite(a.noise) && a.information > 0.0;
  if (!a.determined) {
    a.r = a.slope = std::numeric_limits<double>::quiet_NaN();
    return a;
  }
  a.r = a.noise / a.information;
  a.slope = a.information / d2;  // = 1 / (1 + r)
  return a;
}

std::string WMassSummary::Report() const {
  std::ostringstream os;
  char line[256];
  ReportEventsRead(os);
  os << "selected in the fit channel (" << selection << "):\n";
  for (std::size_t p = 0; p < processes.size(); ++p) {
    if (selected[p] >= 0)
      std::snprintf(line, sizeof(line), "  %-10s %12lld events  %14.1f expected\n",
                    processes[p].c_str(), static_cast<long long>(selected[p]), yields[p]);
    else
      std::snprintf(line, sizeof(line), "  %-10s %12s         %14.1f expected (ABCD from data)\n",
                    processes[p].c_str(), "-", yields[p]);
    os << line;
  }
  ReportFitInput(os, static_cast<int>(processes.size()));
  if (mass_center_mev != simulation_mass_mev) {
    std::snprintf(line, sizeof(line),
                  "mass templates centred at %.3f MeV (simulation %.3f MeV): %s measures "
                  "m - %.3f MeV\n",
                  mass_center_mev, simulation_mass_mev, noi.c_str(), mass_center_mev);
    os << line;
  }
  for (const MassAttenuation& a : attenuation) {
    if (a.determined)
      std::snprintf(line, sizeof(line),
                    "attenuation %s: expected slope of the fitted shift 1/(1+r) = %.3f, r = %.4f "
                    "(nuisances fixed; profiled fits attenuate more)\n",
                    a.parameter.c_str(), a.slope, a.r);
    else
      std::snprintf(line, sizeof(line), "attenuation %s: not determined\n", a.parameter.c_str());
    os << line;
  }
  for (const auto& n : notes) os << n << "\n";
  for (const auto& w : warnings) os << "warning: " << w << "\n";
  std::snprintf(line, sizeof(line),
                "time: events -> histograms %.2f s, non-prompt estimate %.2f s, fit input %.2f s\n",
                seconds_fill, seconds_estimate, seconds_build);
  os << line;
  return os.str();
}

}  // namespace lepus::models
