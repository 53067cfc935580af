// The W-mass producer: events (generated or read from event files) -> selection -> histograms
// with every systematic variation filled in the same pass -> the binned fit input of the
// reference analysis (physics reference sections 1 and 4; docs/producers.md).
//
//   * Selection: exactly one good muon (|eta| < 2.4, 26 < pT < 56 GeV, reconstructed, identified
//     and trigger-matched; a second reconstructed muon above veto_pt vetoes the event), and the
//     extended-ABCD regions by transverse mass (edges 0, 20, 40 GeV, inf) and isolation (pass:
//     rel_iso < 0.15). The fit channel "wmass" is the signal region D (mT > 40, isolated):
//     eta (48 bins in [-2.4, 2.4]) x pT (30 bins in [26, 56] GeV) x charge (2), row-major.
//     In simulation the efficiencies are weights (eff_reco eff_tracking eff_id eff_trigger of the
//     selected muon, times 1 - eff_reco eff_tracking eff_id of a second muon that could veto),
//     in data they are the accept/reject outcomes; data muon momenta are corrected with the
//     calibration's central values (CalibrationParameters::CorrectPt), the missing pT following.
//   * Processes: Wmunu (the signal: W+ and W- -> mu nu, one signal strength, the mass shared by
//     both charges), Wtaunu, Zmumu, Ztautau, top, diboson from simulation; nonprompt from data
//     with the extended ABCD method (nonprompt.h), the prompt simulation subtracted in every
//     sideband.
//   * Systematics (named groups as in the CMS W-mass impact table): massW (the nuisance of interest
//     massShiftW100MeV: Breit-Wigner templates at +-100 MeV, scale 100 "MeV", unconstrained),
//     widthW, muonScale (calibration eigen-nuisances x 2.1, per-muon pT shifts that move events
//     between bins), muonEfficiency (statistical and systematic scale-factor variations),
//     pdf, angularCoeffs, pTModeling, EW (theory_variations.h), nonprompt (smoothing,
//     normalisation, shape), luminosity (1.2%), and Barlow-Beeston MC statistics from sumw2.
//   * Pseudo-data sets: the expectation with the Wmunu template Breit-Wigner reweighted to known
//     mass shifts (mass_shift_m30MeV, mass_shift_0MeV, mass_shift_p30MeV by default).
//   * Two presets: Light() (tens of nuisances, seconds: tests and `lepus demo`) and Full()
//     (the CMS analysis's scale, about 4500 nuisances). Configuration in JSON (WMassConfigFromJson;
//     schema in docs/producers.md) with "lepus_config_version": 1.
//   * Determinism: work items are fixed chunks of the input (never the thread count) and partial
//     histograms are added in chunk order (histogram.h), so the fit input is bitwise identical
//     for any number of threads.
//   * The W-like Z mass (WMassConfig::analysis = kWLike, `lepus produce wlike`, docs/wlike.md)
//     is an analysis mode of the same producer: Z -> mu mu pairs, the event number's parity keeps
//     one muon, the other joins the missing pT; channel "wlike", NOI massShiftZ100MeV. The NOI
//     can be split into charge / eta regions (WMassConfig::mass_split, mass_split.h).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lepus/io/writer.h"
#include "lepus/models/calibration.h"
#include "lepus/models/efficiency_variations.h"
#include "lepus/models/events.h"
#include "lepus/models/generator.h"
#include "lepus/models/helicity.h"
#include "lepus/models/histogram.h"
#include "lepus/models/mass_split.h"
#include "lepus/models/nonprompt.h"
#include "lepus/models/producer_summary.h"
#include "lepus/models/theory_variations.h"

namespace lepus::models {

// The mass templates' centre (WMassConfig::mass_center_mev) is within this of the simulation's
// mass (MeV): the Breit-Wigner reweighting of the simulation loses statistics further away.
inline constexpr double kMaxMassCenterShiftMev = 1000.0;

// Version of the producer configuration schema (the "lepus_config_version" key).
inline constexpr int kWMassConfigVersion = 1;

// The fit's nuisance of interest and its physical scale (W mass; the W-like fit's Z mass).
inline constexpr const char* kWMassNoi = "massShiftW100MeV";
inline constexpr const char* kWLikeNoi = "massShiftZ100MeV";

// The analysis of the single-muon producer (docs/producers.md, docs/wlike.md):
//   * kWMass: W -> mu nu, exactly one good muon, fit channel "wmass";
//   * kWLike: the "W-like" Z mass: Z -> mu mu with both muons selected and isolated,
//     mll_min < m(mu mu) < mll_max, the event number's parity keeps one muon (even: mu-,
//     odd: mu+; flip_parity exchanges them), the other joins the missing pT; fit channel
//     "wlike"; the Z mass is the nuisance of interest; no non-prompt estimate.
enum class WMassAnalysis { kWMass, kWLike };
std::string ToString(WMassAnalysis analysis);  // "wmass", "wlike"
// Throws std::invalid_argument listing the valid names.
WMassAnalysis WMassAnalysisFromString(std::string_view name);

enum class WMassPreset { kLight, kFull };
std::string ToString(WMassPreset preset);  // "light", "full"
// Throws std::invalid_argument listing the valid names.
WMassPreset WMassPresetFromString(std::string_view name);

// Where the events of one sample come from: event files (docs/events.md) when `files` is not
// empty, otherwise the built-in generator.
struct SampleSource {
  std::vector<std::string> files;  // event files, read in order
  // Simulation only: events to generate in total, shared among the processes by rate (> 0 when
  // generating). Generated data have Poisson(rate x luminosity) events per process instead.
  std::uint64_t events = 0;
  std::uint64_t seed = 1;  // generator seed
  bool from_files() const { return !files.empty(); }
};

struct WMassConfig {
  WMassAnalysis analysis = WMassAnalysis::kWMass;
  WMassPreset preset = WMassPreset::kLight;

  // ---- Binning of the fit channel (eta in [-2.4, 2.4]).
  int eta_bins = 48;     // divides 48 (the calibration and efficiency eta binning)
  int pt_bins = 30;      // > 0
  double pt_min = 26.0;  // GeV; 0 < pt_min < pt_max
  double pt_max = 56.0;

  // ---- Selection.
  double iso_cut = kIsoCut;  // isolated: rel_iso < iso_cut; > 0
  double mt_cut = 40.0;      // GeV, signal region mT > mt_cut
  double mt_sideband =
      20.0;  // GeV, sidebands [mt_sideband, mt_cut) and [0, mt_sideband); 0 < . < mt_cut
  double veto_pt = 10.0;  // GeV, a second muon above it vetoes the event; >= 0 (W only)
  // W-like only: the dimuon mass window (GeV, 0 < mll_min < mll_max) and the parity choice:
  // false keeps the mu- of even and the mu+ of odd event numbers, true the other muon. The
  // other muon must be isolated, in |eta| < 2.4 and above pt_min (no upper pT cut).
  double mll_min = 60.0;
  double mll_max = 120.0;
  bool flip_parity = false;

  // ---- Samples.
  SampleSource simulation{{}, 4000000, 1};
  SampleSource data{{}, 0, 2};   // generated by default
  double luminosity_pb = 200.0;  // generated data and the simulation's weights; > 0
  // The data truth of generated data: GeneratorConfig::DefaultData() (biased momentum scale,
  // different efficiencies, non-prompt yield x1.15) with m_W = simulation + data_mw_shift_mev.
  double data_mw_shift_mev = -30.0;
  // m(W+) - m(W-) of generated data (MeV): W+ at data_mw_shift_mev + d/2, W- (and W -> tau nu,
  // both charges) at data_mw_shift_mev - d/2. For split-mass tests; within +-2000 MeV.
  double data_mw_charge_diff_mev = 0.0;
  // m_Z of generated data minus the simulation's (MeV; the W-like fit's hidden truth).
  double data_mz_shift_mev = 0.0;
  // Parts of the data truth that can be switched off (closure tests): the momentum-scale bias
  // and the efficiency differences of DetectorParams::DefaultData().
  bool data_scale_bias = true;
  bool data_efficiency_bias = true;

  // ---- Systematics.
  TheoryConfig theory = TheoryConfig::Light();  // mass, width, pdf, angularCoeffs, pTModeling, EW
  bool efficiency = true;
  EfficiencyConfig efficiency_config = EfficiencyConfig::Light();
  bool muon_scale = true;
  double muon_scale_stat = 2.1;  // MomentumNuisanceOptions::stat_scale; > 0
  std::string calibration_file;  // "" = the built-in SyntheticCalibration()
  // Eta regions of the momentum-scale nuisances: 0 = the calibration's own bins (3 per bin for
  // the built-in one: 144); N > 0 = the calibration coarse-grained into N equal regions with
  // coherent shifts (3 N nuisances; the light preset). N divides the calibration's bins.
  int muon_scale_regions = 6;
  bool nonprompt = true;
  NonpromptOptions nonprompt_options = NonpromptOptions::Light();
  double lumi_uncertainty = 0.012;  // relative; 0 = none
  // Log-normal normalisations of the prompt backgrounds (relative sizes, 0 = none), separate from
  // the luminosity: "normZ" (Zmumu and Ztautau; not in the W-like fit, whose signal is the Z),
  // "normTop", "normDiboson" (group promptBackground; docs/systematics.md). Full preset: 3%, 6%,
  // 16%; light: none.
  struct BackgroundNorms {
    double z = 0.0, top = 0.0, diboson = 0.0;
  } background_norms;
  bool bin_by_bin_stat = true;  // write sumw2 (Barlow-Beeston lite in the fit)
  // Pseudo-data sets with the Wmunu template at these mass shifts (MeV): multiples of
  // theory.mass_step_mev within +-theory.mass_shift_mev.
  std::vector<double> pseudodata_shifts_mev = {-30.0, 0.0, 30.0};
  // Charge / eta-split mass parameters (mass_split.h): the NOI's template split over regions of
  // the fit channel, as separate masses or a common mass plus differences.
  MassSplitConfig mass_split;
  // Centre of the mass templates, the absolute mass of the NOI's boson in MeV (m_W; m_Z for
  // W-like); 0 = the simulation's mass (SimulationMassMev). Otherwise the simulated events of
  // the NOI's processes are Breit-Wigner reweighted to it (their width following as (M_c/M)^3)
  // before anything is filled, so the nominal templates, the +-shift_mev NOI pair, the width
  // variations and the pseudo-data shifts are all built around it and the NOI measures
  // m - mass_center_mev (docs/producers.md, "Mass centre"). Generated data keep their truth
  // (relative to the simulation's mass). Within 1000 MeV of the simulation's mass.
  double mass_center_mev = 0.0;
  // Up/down pairs that are not symmetric by construction (mass, width, some theory): "none"
  // (asymmetric), "average", ... (io::Symmetrization). The NOI is always kept asymmetric.
  io::Symmetrization symmetrization = io::Symmetrization::kAverage;
  // The helicity cross-section fit (helicity.h, docs/helicity.md): the signal split by
  // generator-level cell and helicity component; off for the W-mass fit.
  HelicityConfig helicity;

  // ---- Output.
  // "auto": sparse when the density of the logk tensor is below sparse_density; "dense";
  // "sparse".
  std::string storage = "auto";
  double sparse_density = 0.25;  // in (0, 1]
  bool gzip = true;

  // ---- Processing: events per work item (fixed: the output never depends on the threads).
  std::uint64_t chunk_events = 1 << 16;  // > 0

  static WMassConfig Light();
  static WMassConfig Full();
  // The W-like presets: the W ones with the W-like binning (pT 34 bins in [26, 60] GeV),
  // mT > 45 GeV, the Z mass as the NOI, no non-prompt estimate, data m_Z shifted by -20 MeV.
  static WMassConfig WLikeLight();
  static WMassConfig WLikeFull();
  static WMassConfig Preset(WMassPreset preset, WMassAnalysis analysis = WMassAnalysis::kWMass);
  // The nuisance of interest (kWMassNoi or kWLikeNoi) and the fit channel ("wmass", "wlike").
  const char* Noi() const { return analysis == WMassAnalysis::kWLike ? kWLikeNoi : kWMassNoi; }
  const char* Channel() const { return analysis == WMassAnalysis::kWLike ? "wlike" : "wmass"; }
  // The simulation's mass of the NOI's boson (theory.physics; m_W, m_Z for W-like) in MeV, the
  // effective centre of the mass templates, and centre - simulation (exactly 0 when the centre is
  // 0 or within 1e-6 MeV of the simulation's mass: such a configuration produces the default
  // fit input bit for bit).
  double SimulationMassMev() const;
  double MassCenterMev() const;
  double MassCenterShiftMev() const;
  // The helicity cross-section fit (`lepus produce helicity`): light systematics with the light
  // (3 x 2 cells) or the reference (9 x 8 cells) generator binning; docs/helicity.md.
  static WMassConfig Helicity(WMassPreset preset);
  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
  // The configuration as JSON (the schema of WMassConfigFromJson; `lepus produce wmass
  // --print-config`).
  std::string ToJson() const;
};

// Reads a configuration: the "producer" key ("wmass" or "wlike"; default `analysis`) picks the
// analysis, the "preset" key (default "light", or `base` when has_base) gives the
// starting values, the other keys override them. Unknown keys, wrong types, a missing or
// unsupported "lepus_config_version" throw std::invalid_argument "<origin>: <key path> ..."
// (e.g. "cfg.json: systematics.efficiency.num_eigen is \"4\" (string), but must be an integer").
WMassConfig WMassConfigFromJson(const std::string& json_text, const std::string& origin,
                                WMassAnalysis analysis = WMassAnalysis::kWMass);
WMassConfig ReadWMassConfig(const std::string& path,
                            WMassAnalysis analysis = WMassAnalysis::kWMass);

// ---- Progress and summary.

struct ProduceProgress {
  std::int64_t events_done = 0;   // events read or generated so far (both samples)
  std::int64_t events_total = 0;  // expected total (-1 unknown)
  double seconds = 0.0;
};

struct ProduceOptions {
  ProduceOptions() = default;
  // ProduceOptions{threads, progress}: the common case (the distribution fields keep their
  // defaults without -Wmissing-field-initializers).
  ProduceOptions(int threads, std::function<void(const ProduceProgress&)> on_progress)
      : num_threads(threads), progress(std::move(on_progress)) {}

  int num_threads = 0;  // 0 = all cores
  // Called from one thread at a time after each work item.
  std::function<void(const ProduceProgress&)> progress;
  // The shape of the sum of the partial histograms: the work items (fixed by the input) in
  // groups of items_per_group consecutive items; each group's partials are added in item order,
  // the group sums into the total in group order. Fixed by the input, never by the ranks or
  // threads (it is the unit of distribution); changing it changes the sums in their last bits.
  int items_per_group = 8;
  // Distributed fill (`mpirun lepus produce`, docs/scaling.md; the CLI sets these, models knows
  // nothing about MPI): this process is rank `rank` of `ranks`, group g belongs to rank
  // g % ranks. A rank other than 0 fills its groups and hands each group's sum, as bytes, to
  // send_partial (in group order); rank 0 fills its own and takes the others' from
  // receive_partial(owner) in group order (a group of another rank once rank 0 has closed its
  // own next group), adding the group sums into the total exactly as one process does, so the
  // fit input is bitwise identical for any number of ranks. Ranks other than 0 stop after the
  // fill (the production they return is empty). progress (rank 0) counts every item.
  int rank = 0, ranks = 1;
  std::function<void(const std::string&)> send_partial;
  std::function<std::string(int owner)> receive_partial;
};

// The fit-input process slots of the simulation.
inline constexpr int kWMassMcSlots = 6;
// "Wmunu", "Wtaunu", "Zmumu", "Ztautau", "top", "diboson"; index -1 (non-prompt) -> "nonprompt".
const char* WMassSlotName(int slot);
// The slot of a generator process (-1 for non-prompt, which comes from data).
int WMassSlot(Process process) noexcept;

// The histograms of one production (or of one work item).
struct WMassHistograms {
  // Per MC slot and for the data: sumw/sumw2 over the region space (mt x iso x eta x pt x
  // charge; the fit channel is the block of region D).
  std::vector<WeightedHistogram> mc;
  WeightedHistogram data;
  // Deltas of every variation in the fit channel (support in fit-channel bins).
  VariationStore variations;
  // Counters: events read (simulation, data) and events with a muon in the fit channel per
  // slot (raw counts, unweighted; a simulated event counts once even when both of its muons
  // contribute with their weights).
  std::int64_t sim_events = 0, data_events = 0;
  std::array<std::int64_t, kWMassMcSlots> selected{};
  // Helicity mode: the split signal processes (helicity.h order) in the fit channel, and their
  // generator-level cross sections (sum of weights / luminosity over every simulated signal
  // event of the cell, times 1 (UL) or the event's A_i; pb).
  std::vector<WeightedHistogram> split;
  std::vector<double> split_xsec;
  std::int64_t data_selected = 0;
  std::int64_t nonprompt_sim_skipped = 0;  // non-prompt simulated events (not used)
  // MC variance of the NOI's derivative template per fit-channel bin, summed over processes:
  // sum over simulated events of (W_b (r_up - r_down) / 2)^2, W_b the event's total weight in
  // bin b and r_up/down its NOI weights (the input of MassAttenuation).
  std::vector<double> noi_var;
  // Warnings about the event files read (NegativeWeightWarning), set once by Fill (not summed).
  std::vector<std::string> input_warnings;

  void Reset();
  WMassHistograms& operator+=(const WMassHistograms& other);
};

// Expected attenuation of a fitted mass-like parameter from the simulation's finite statistics
// (docs/producers.md, "Template statistics"). The fit's linear mass template is
// d_b = (up_b - down_b) / 2 per unit parameter, estimated from simulated events with MC variance
// s_b^2; in a fit with per-bin variance V_b (expected yield + nominal MC variance) the noise in
// d acts as errors in the variables, and the fitted parameter responds to a true one with
// slope 1 / (1 + r), r = N / F:
//     N = sum_b c_b^2 s_b^2 / V_b                  (noise of the template)
//     F = sum_b c_b^2 (d_b^2 - s_b^2) / V_b        (information per unit^2; d^2 - s^2 is the
//                                                   unbiased estimate of the true d^2)
// where c_b is the parameter's coefficient in bin b (1 for the NOI; mass_split.h for split
// parameters). Other parameters are held fixed (no profiling).
struct MassAttenuation {
  std::string parameter;
  double information = 0.0;  // F
  double noise = 0.0;        // N
  double r = 0.0;            // N / F
  double slope = 1.0;        // 1 / (1 + r)
  // False when F <= 0 (the template is no more than its own noise) or an input is not finite:
  // r and slope are NaN then.
  bool determined = true;
};
// derivative d_b, its MC variance s_b^2 and the bins' variance V_b (all the same size, V_b > 0
// where d_b or s_b^2 is non-zero; bins with V_b <= 0 are skipped), coefficients c_b (empty = 1).
MassAttenuation EstimateMassAttenuation(const std::string& parameter,
                                        const std::vector<double>& derivative,
                                        const std::vector<double>& derivative_var,
                                        const std::vector<double>& variance,
                                        const std::vector<double>& coeff = {});
// Above this expected attenuation (1 - slope) the producer summary warns.
inline constexpr double kAttenuationWarning = 0.05;

// The processes are the slots and "nonprompt" (selected = -1: estimated from data).
struct WMassSummary : ProducerSummary {
  std::string selection;  // the fit channel's selection, e.g. "mT > 40 GeV, isolated"
  double seconds_estimate = 0.0;
  std::vector<std::string> notes;  // e.g. the helicity split
  // The mass templates' centre and the simulation's mass (MeV), the NOI's name.
  double mass_center_mev = 0.0, simulation_mass_mev = 0.0;
  std::string noi;
  // Per mass-like parameter (the NOI or its split parameters): the expected attenuation.
  std::vector<MassAttenuation> attenuation;
  // Metadata for the fit input's `lepus_producer_json` root attribute: written (by the caller)
  // only for recentred templates, so that default fit inputs are unchanged; "" = none.
  std::string MetadataJson() const;
  std::string Report() const;
};

// The W-mass producer of one configuration: validates it, builds the systematics registries and
// the variation layout. Const methods are thread-safe.
class WMassProducer {
 public:
  // Throws std::invalid_argument (IsValid message) or io::InputError (calibration file).
  explicit WMassProducer(WMassConfig config);
  ~WMassProducer();
  WMassProducer(WMassProducer&&) noexcept;
  WMassProducer& operator=(WMassProducer&&) noexcept;

  const WMassConfig& config() const;
  // The region space (mt x iso x eta x pt x charge) and the fit channel (eta x pt x charge).
  const BinSpace& region_space() const;
  const BinSpace& fit_space() const;
  // First bin of the signal region D in the region space (the fit channel is
  // [offset, offset + fit_space().size())).
  int signal_region_offset() const;
  const VariationLayout& layout() const;
  const TheoryVariations& theory() const;
  const EfficiencyVariations& efficiency() const;
  const std::vector<MomentumNuisance>& momentum_nuisances() const;
  const CalibrationParameters& calibration() const;

  // Empty histograms for this producer.
  WMassHistograms MakeHistograms() const;
  // Selects and fills events [0, batch.size()) of one batch (serial).
  void FillBatch(const EventBatch& batch, SampleKind sample, WMassHistograms* h) const;
  // Every event of the configured sources, in parallel (options.num_threads), deterministic.
  // Throws io::InputError for unreadable event files.
  WMassHistograms Fill(const ProduceOptions& options = {}) const;
  // The inputs of the non-prompt estimate (data and prompt simulation in the six regions) and
  // the estimate with the configured options.
  NonpromptInputs NonpromptInputsOf(const WMassHistograms& h) const;
  NonpromptResult EstimateNonpromptBackground(const WMassHistograms& h) const;
  // The fit input from the histograms; fills the summary (except the fill timing).
  io::TensorWriter MakeFitInput(const WMassHistograms& h, WMassSummary* summary = nullptr) const;
  // Write options of the configuration for a built model (storage "auto" resolved by density).
  io::WriteOptions ResolveWriteOptions(const engine::Model& model, double* density = nullptr) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The whole chain: Fill, MakeFitInput, Build; returns the model and the write options, and the
// summary. The caller writes it with io::WriteFitInput.
struct WMassProduction {
  engine::Model model;
  io::WriteOptions write_options;
  WMassSummary summary;
};
WMassProduction ProduceWMass(const WMassConfig& config, const ProduceOptions& options = {});

// "mass_shift_m30MeV" / "mass_shift_0MeV" / "mass_shift_p30MeV".
std::string MassShiftPseudoDataName(double shift_mev);

// Adds the producer's metadata (WMassSummary::MetadataJson) to a written fit input as the
// variable-length UTF-8 string root attribute `lepus_producer_json` (ignored by readers that do
// not know it). Throws io::InputError if the file cannot be opened or written.
inline constexpr const char* kProducerMetadataAttribute = "lepus_producer_json";
void WriteProducerMetadata(const std::string& path, const std::string& json);

}  // namespace lepus::models
