// Theory systematic variations of the producers (physics reference, section 4): per-event weights
// computed from the generator-level boson (mass, pT, rapidity, charge) and its Collins-Soper decay
// angles, for the W mass and width, PDF-like Hessian eigenvectors, angular coefficients
// (helicity), boson-pT modelling and higher-order electroweak effects. Definitions, formulas,
// names and counts are in docs/systematics.md; this header is the API.
//
// Usage (one producer thread):
//
//   TheoryVariations theory(TheoryConfig::Full());        // validates, precomputes
//   TheoryInputs inputs;                                  // reused across batches
//   theory.Prepare(batch, begin, end, &inputs);           // once per batch range
//   for (std::size_t k = 0; k < theory.size(); ++k) {
//     theory.Weights(k, inputs, up.data(), down.data());  // entry j <-> event begin + j
//     ...fill variation k with weight[j] * up[j] / down[j]...
//   }
//
// Conventions:
//   * Weights are ratios to the nominal event weight (1 = no change), evaluated at the
//     generator-level quantities of the event (EventBatch::v_*, cos_theta_cs, phi_cs).
//   * Every variation acts on a subset of events (boson class, and for some a boson-pT / |y|
//     bin); outside it both weights are exactly 1. Acts() is the cheap test, so a producer can
//     skip work where a variation does not act.
//   * Up/down pairs: for a symmetric variation (TheoryNuisance::symmetric) down = 2 - up
//     event by event, so the down template mirrors the up one about the nominal and a producer
//     may write only the up shift; otherwise up and down are computed independently.
//   * Events without a boson (non-prompt, top, diboson) or of a boson class a variation does not
//     apply to get weight 1.
//   * Thread safety: TheoryVariations is immutable after construction (const methods are
//     thread-safe); each thread uses its own TheoryInputs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lepus/models/events.h"
#include "lepus/models/generator.h"

namespace lepus::models {

// The boson class of an event for the theory variations, from its process and v_charge:
// W+ (wplus, and wtaunu with v_charge +1), W- (wminus, wtaunu with v_charge -1), Z (zmumu,
// ztautau), none (non-prompt, top, diboson: their bosons are not varied).
enum class BosonClass : std::int8_t { kNone = -1, kWplus = 0, kWminus = 1, kZ = 2 };
inline constexpr int kNumBosonClasses = 3;
BosonClass ClassifyBoson(Process process, int v_charge) noexcept;
std::string ToString(BosonClass c);  // "Wplus", "Wminus", "Z", "none"

// Helicity components varied by the angular-coefficient nuisances: the unpolarised cross section
// (UL) and A0..A4 (A5..A7 vanish in the generator). Index 0 is UL, index i + 1 is A_i.
inline constexpr int kNumHelicityComponents = 6;
std::string HelicityComponentName(int component);  // "UL", "A0", ..., "A4"

// Boson-pT edges of the reference's helicity fit (GeV); the last bin [60, inf) is the overflow.
inline const std::vector<double>& ReferenceHelicityPtEdges() {
  static const std::vector<double> edges = {0, 3, 6, 9.7, 12.4, 16, 21.4, 29.5, 60};
  return edges;
}

// The reference's helicity template weights of one event: w_UL = P_UL / D and
// w_i = A_i P_i / D (i = 0..7) with D = P_UL + sum_i A_i P_i, the angular density
// (AngularPolynomials, AngularCoefficients of generator.h). They sum to 1 exactly; index 0 is UL,
// index i + 1 is A_i. For the helicity cross-section fit and the tests.
std::array<double, 9> HelicityWeights(const std::array<double, 8>& a, double cos_theta, double phi);

// Family of a theory variation (which formula evaluates it; docs/systematics.md).
enum class TheoryKind : std::uint8_t {
  kMassShift,        // Breit-Wigner mass reweighting
  kWidthShift,       // Breit-Wigner width reweighting
  kPdf,              // PDF-like Hessian eigenvector (or its symmetrised average / difference)
  kPdfAlphaS,        // alpha_s-like PDF variation
  kHelicity,         // one helicity component in one boson-pT (x |y|) bin of one boson class
  kShowerKt,         // parton-shower kT effect on A1 and A3 at low boson pT
  kNonPerturbative,  // intrinsic-kT-smearing-like pT(V) variation
  kResummation,      // resummation-like ("theory nuisance parameter") pT(V) shape
  kElectroweak,      // higher-order EW shape
};
std::string ToString(TheoryKind kind);

// What a variation is in the fit.
enum class TheoryRole : std::uint8_t {
  kNuisance,     // a constrained nuisance parameter
  kInterest,     // the nuisance of interest (the mass shift; unconstrained in the fit)
  kAlternative,  // an extra template, not a fit parameter (the 10 MeV mass-step set); only the
                 // `up` weight is meaningful
};

// One theory variation ("nuisance spec").
struct TheoryNuisance {
  std::string name;   // unique, e.g. "massShiftW100MeV", "helicity_A0_ptV3_Wplus", "pdf7SymAvg"
  std::string group;  // seed-like impact group: "massW", "widthW", "massZ", "widthZ", "pdf",
                      // "angularCoeffs", "pTModeling", "EW"
  TheoryKind kind = TheoryKind::kMassShift;
  TheoryRole role = TheoryRole::kNuisance;
  bool symmetric = false;  // down = 2 - up event by event (see the header comment)
  // The processes whose templates the variation changes (by Process value).
  std::array<bool, kNumProcesses> processes{};
  // Boson classes it acts on (by BosonClass value 0..2).
  std::array<bool, kNumBosonClasses> bosons{};
  // For mass/width shifts: the shift of the up variation in MeV (the NOI's scale: theta = 1 <->
  // scale_mev); 0 otherwise.
  double scale_mev = 0.0;
  // For helicity / kinematic-bin restricted variations: the boson-pT bin (index into the
  // configured edges, the last being the overflow) and |y| bin; -1 = all.
  int pt_bin = -1;
  int y_bin = -1;
  int component = -1;  // helicity component (0 = UL, i + 1 = A_i); -1 otherwise
};

// The set of variations to build. The in-class defaults are Full(): the CMS analysis's scale (409
// nuisances + 20 mass-step templates); Light(): 28 nuisances for tests and the demo. Counts per
// group are in docs/systematics.md.
struct TheoryConfig {
  // The simulation's truth: masses, widths and generation windows (Breit-Wigner normalisation),
  // pT spectrum p0 (normalisation of the pT-shape variations), angular coefficients.
  GeneratorParams physics = GeneratorParams::Simulation();

  // Which boson's mass is the nuisance of interest: 'W' (W-mass fit) or 'Z' (W-like fit). The
  // mass and width variations are built for that boson only.
  char mass_boson = 'W';
  double mass_shift_mev = 100.0;  // the +-shift of the NOI template pair; > 0
  bool mass_steps = true;         // add the alternative templates -100..+100 MeV (below)
  double mass_step_mev = 10.0;    // step of that set; > 0, divides mass_shift_mev
  // Centre of the mass templates relative to physics' mass of mass_boson (MeV; finite, within
  // +-2000): the NOI pair is at centre +- mass_shift_mev, the steps at centre + k step, the width
  // variations at the centre, all as weights relative to the event reweighted to the centre
  // (its width scaled as (M_c / M)^3). The caller reweights the events to the centre
  // (BreitWignerWeight(mass_boson, m, mass_center_shift_mev / 1000, 0)); 0 = the simulation's mass.
  double mass_center_shift_mev = 0.0;
  double w_width_shift_mev = 0.6;  // W width variation; > 0
  double z_width_shift_mev = 2.3;  // Z width variation; > 0

  // PDF-like Hessian set: pdf_pairs eigenvector pairs (> 0, <= 60), amplitudes given at 90% CL
  // and divided by pdf_cl_scale (1.645) for 68% CL. pdf_symmetrize: each pair becomes two
  // symmetric nuisances (SymAvg = (up - down)/2, SymDiff = (up + down)/2 - 1 relative shifts);
  // otherwise one asymmetric nuisance per pair. pdf_alphas adds an alpha_s-like variation.
  int pdf_pairs = 29;
  double pdf_cl_scale = 1.645;
  bool pdf_symmetrize = true;
  bool pdf_alphas = true;

  // Angular coefficients: components (0 = UL, i + 1 = A_i) varied per boson class, boson-pT bin
  // (helicity_pt_edges, increasing from 0, plus an overflow bin) and |y| bin (helicity_y_edges,
  // increasing from 0, plus an overflow bin; {0} or empty = not split in |y|). The variation of
  // A_i has size helicity_abs[c] + helicity_rel[c] * |A_i(pT, |y|)| (UL: a relative
  // normalisation change of that bin). shower_kt adds the A1/A3 shower-kT variation.
  std::vector<double> helicity_pt_edges = ReferenceHelicityPtEdges();
  std::vector<double> helicity_y_edges = {0.0, 1.5};
  std::array<bool, kNumHelicityComponents> helicity_components = {true, true, true,
                                                                  true, true, true};
  std::array<double, kNumHelicityComponents> helicity_abs = {0.03, 0.01, 0.005, 0.01, 0.005, 0.02};
  std::array<double, kNumHelicityComponents> helicity_rel = {0.0, 0.1, 0.0, 0.1, 0.0, 0.05};
  bool shower_kt = true;

  // Boson-pT modelling: non-perturbative (per boson class: Gaussian kT smearing width and its
  // rapidity dependence; one shared Collins-Soper-kernel-like term) and resummation-like shapes
  // (resummation_terms per boson class, 0..3). np_sigma2 in GeV^2 is the change of the
  // per-component smearing variance of the up variation.
  bool np_per_boson_y = true;  // the rapidity-dependent term per boson class
  bool np_shared_cs = true;    // the shared CS-kernel-like term (W and Z correlated)
  double np_sigma2 = 0.5;      // GeV^2; > 0
  int resummation_terms = 3;   // 0..3
  std::array<double, 3> resummation_size = {0.03, 0.02, 0.01};

  // Higher-order EW: line shape and FSR-like shapes per W and Z, plus one shared term.
  bool electroweak = true;

  static TheoryConfig Light();
  static TheoryConfig Full();
  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
};

// Per-event quantities of a batch range, computed once by TheoryVariations::Prepare and shared
// by all variations (entry j <-> event begin + j). Reuse one object per thread: Prepare only
// reallocates when a range is larger than any before.
struct TheoryInputs {
  std::size_t size() const { return n; }
  std::size_t n = 0;
  std::vector<std::int8_t> boson;                   // BosonClass
  std::vector<std::int8_t> pt_bin;                  // helicity boson-pT bin; -1 without a boson
  std::vector<std::int8_t> y_bin;                   // helicity |y| bin; -1 without a boson
  std::vector<double> mass, pt, y, cos_theta, phi;  // generator-level boson and CS angles
  // A_i P_i / D (i = 0..7) and P_UL / D: the helicity template weights (HelicityWeights).
  std::array<std::vector<double>, 9> hel_weight;
  // P_i / D for i = 0..4 (the relative weight change per unit change of A_i).
  std::array<std::vector<double>, 5> dlog_da;
  // The nominal A_0..A_4 of the event (AngularCoefficients at its pT, |y| and charge).
  std::array<std::vector<double>, 5> coeff;
};

// The registry and evaluator of the theory variations of one configuration.
class TheoryVariations {
 public:
  // Throws std::invalid_argument with the IsValid message.
  explicit TheoryVariations(TheoryConfig config);

  const TheoryConfig& config() const noexcept { return config_; }
  const std::vector<TheoryNuisance>& nuisances() const noexcept { return nuisances_; }
  std::size_t size() const noexcept { return nuisances_.size(); }
  // Index of the variation with this name, or -1.
  int Find(std::string_view name) const;

  // Computes the per-event inputs of events [begin, end) of the batch.
  void Prepare(const EventBatch& batch, std::size_t begin, std::size_t end,
               TheoryInputs* inputs) const;
  // True if variation k can change the weight of entry j of the inputs (false => both weights
  // are exactly 1).
  bool Acts(std::size_t k, const TheoryInputs& inputs, std::size_t j) const noexcept;
  // The up and down weights of variation k for every entry of the inputs (inputs.size() values
  // each). down may be nullptr (only up is computed). No allocation.
  void Weights(std::size_t k, const TheoryInputs& inputs, double* up, double* down) const noexcept;
  // Convenience for tests and one-off use: Prepare (allocating) + Weights for events
  // [begin, end).
  void Weights(std::size_t k, const EventBatch& batch, std::size_t begin, std::size_t end,
               double* up, double* down) const;

  // The normalised Breit-Wigner weight of the reference: BW(m; M + dm, G') / BW(m; M, G) times
  // the ratio of their integrals over the generation window, so the expected total yield is
  // unchanged; G' = (G + dg) ((M + dm) / M)^3. dm, dg in GeV; boson 'W' or 'Z'. Uses a cached
  // normalisation per thread for the last (boson, dm, dg) and integrates numerically otherwise.
  double BreitWignerWeight(char boson, double m, double dm_gev, double dg_gev) const;

 private:
  TheoryConfig config_;
  std::vector<TheoryNuisance> nuisances_;
  std::vector<std::array<double, 8>> par_;  // per-variation parameters (layout in the .cc)
};

// The variation list of a configuration (TheoryVariations(config).nuisances()).
std::vector<TheoryNuisance> TheoryNuisances(const TheoryConfig& config);

}  // namespace lepus::models
