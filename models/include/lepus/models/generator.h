// The built-in parametric event generator (physics reference, section 2): W+/W- -> mu nu,
// Z -> mu mu, W -> tau nu -> mu, Z -> tau tau, non-prompt muons, top- and diboson-like
// components, passed through the detector model (detector.h) into EventBatch columns
// (events.h).
//
// Physics model (all parameters in GeneratorParams):
//   * Boson mass: relativistic Breit-Wigner with running width, as a density in m,
//       BW(m) = 1 / ((m^2 - M^2)^2 + m^4 Gamma^2 / M^2),
//     truncated to [mass_min, mass_max] (W: 40-200 GeV, Z: 50-150 GeV); sampled exactly by
//     accept-reject from a truncated Cauchy proposal. BreitWigner() is the same function, for
//     the producers' mass and width reweighting.
//   * Rapidity: Gaussian of width y_sigma_wplus / y_sigma_wminus / y_sigma_z, |y| < y_max.
//   * pT: f(pT) ~ pT / (pT^2 + p0^2)^2 truncated at pt_max, by the inverse CDF
//     pT = p0 sqrt(u / (1 - u)); azimuth uniform.
//   * Decay angles: the Collins-Soper distribution
//       (1 + c^2) + A0/2 (1 - 3c^2) + A1 sin2t cos(phi) + A2/2 sin^2 t cos 2phi + A3 sin t cos phi
//       + A4 c + A5 sin^2 t sin 2phi + A6 sin2t sin phi + A7 sin t sin phi
//     with the analytic AngularCoefficients below, sampled by accept-reject. The angles are
//     those of the fermion with positive PDG id (mu- for Z and W-, the neutrino for W+); the
//     CS z axis follows the sign of the boson's longitudinal momentum, the x axis points along
//     the boson's transverse momentum, y = z x x (for y_V < 0 the z and y axes are reversed).
//     The leptons are massless, back to back in the rest frame, and boosted to the lab.
//   * tau decays: tau -> mu nu nu collinear with the (massless) tau, the muon carrying a fraction
//     x of its momentum drawn from the unpolarised Michel spectrum 5/3 - 3x^2 + 4/3 x^3. In
//     Z -> tau tau (at least one tau -> mu, BR 0.1739 each) the visible products of a non-muonic
//     tau decay (a fraction x ~ U(0, 1) of its momentum) join the hadronic recoil.
//   * Top and diboson: a W (charge +-1 with equal probability) with a hard pT spectrum
//     (p0 = 50 / 20 GeV, pT < 400 / 300 GeV), rapidity width 1.3 / 1.8, A0 = 0.6 (top, other
//     A_i zero) or the W coefficients (diboson), and extra invisible transverse momentum
//     (Gaussian, 25 / 10 GeV per component) from the rest of the event.
//   * Non-prompt muons: no boson; pT from a power law pT^-nonprompt_pt_index above
//     nonprompt_pt_min (up to 200 GeV), eta uniform in |eta| < 2.5, charge +-1, a collinear
//     neutrino with a fraction U(0, 0.5) of the muon pT, the hadronic recoil balancing both up to
//     a Gaussian imbalance of nonprompt_recoil_sigma per component (so MET and mT are mostly
//     small), rel_iso from a Gamma(2) distribution of mean nonprompt_iso_mean
//     (about 17% isolated).
//   * Hadronic recoil: u_T(true) = -pT(V) (plus the visible tau products, minus the extra
//     invisible pT); measured with the detector's response and resolution;
//     MET = -(sum of reconstructed muons + u_T).
//   * Rates: each process has a cross section (pb) in its generated phase space (tau and top /
//     diboson ones include the branching fractions to a muon). Simulation: num_events are shared
//     among the processes in proportion to cross_section x yield_factor, and every event weighs
//     cross_section x yield_factor x luminosity / (events of its process). Data: each process
//     gets Poisson(cross_section x yield_factor x luminosity) events of weight 1.
//
// Random numbers: Random123 Philox4x64-10 keyed by (seed, process) with the counter (event
// number, stream, block): each quantity (mass, rapidity, pT, angles, tau decays, recoil, each
// muon's detector response, ...) draws from its own stream of the event. So an event depends
// only on (seed, process, event number), not on thread counts or batch sizes; and changing one
// truth parameter (e.g. the W mass) changes only what depends on it: the same seed gives the same
// rapidity, pT, angles and detector draws. In particular data and simulation generated with the
// same seed share their random numbers event by event (data events are a subset of the
// simulation's event numbers, with different mass, scale and efficiencies): use different seeds
// for statistically independent data and simulation.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lepus/models/detector.h"
#include "lepus/models/events.h"

namespace lepus::models {

// The reference masses in the angular coefficients (A0 = pT^2 / (pT^2 + M_ref^2)). Fixed
// constants, deliberately not the truth masses: nothing but the line shape depends on the truth
// mass, so Breit-Wigner reweighting of a sample is exact.
inline constexpr double kAngularRefMassW = 80.379;
inline constexpr double kAngularRefMassZ = 91.1876;
// Branching fraction tau -> mu nu nu.
inline constexpr double kTauToMuBranching = 0.1739;

// Truth physics parameters.
struct GeneratorParams {
  double w_mass = 80.379;    // GeV, > 0
  double w_width = 2.0911;   // GeV, > 0
  double z_mass = 91.1876;   // GeV, > 0
  double z_width = 2.4952;   // GeV, > 0
  double w_mass_min = 40.0;  // generated window, GeV; 0 < min < mass < max
  double w_mass_max = 200.0;
  double z_mass_min = 50.0;
  double z_mass_max = 150.0;
  double y_sigma_wplus = 2.2;  // rapidity widths, > 0
  double y_sigma_wminus = 2.0;
  double y_sigma_z = 2.1;
  double y_max = 5.0;     // |y| < y_max, > 0
  double pt_p0_w = 6.0;   // GeV, > 0
  double pt_p0_z = 6.5;   // GeV, > 0
  double pt_max = 100.0;  // GeV, > 0 (W and Z)
  // Multipliers of the analytic A0..A7 (1 = nominal). Must keep the angular density >= 0
  // (checked by IsValid on a grid).
  std::array<double, 8> a_scale = {1, 1, 1, 1, 1, 1, 1, 1};
  // Cross sections in pb, indexed by Process: W+ and W- -> mu nu 11.8 / 8.8 nb; Z -> mu mu
  // 1.9 nb; W -> tau nu -> mu = 20.6 nb x BR; Z -> tau tau with >= 1 tau -> mu; non-prompt muons
  // above nonprompt_pt_min, chosen so that after the W selection they are a few per cent of the
  // signal; top and diboson small.
  std::array<double, kNumProcesses> cross_section_pb = {11800.0, 8800.0,  1900.0, 3582.3,
                                                        603.0,   35000.0, 250.0,  40.0};
  // Multipliers of the rates (data truth: non-prompt x1.15), > 0.
  std::array<double, kNumProcesses> yield_factor = {1, 1, 1, 1, 1, 1, 1, 1};
  double nonprompt_pt_min = 20.0;        // GeV, > 0
  double nonprompt_pt_index = 4.5;       // > 1
  double nonprompt_iso_mean = 0.4;       // > 0
  double nonprompt_recoil_sigma = 12.0;  // GeV per component: recoil imbalance, > 0

  // The simulation's parameters (the defaults above).
  static GeneratorParams Simulation();
  // The default "data" truth: m_W lower by 30 MeV, non-prompt yield x1.15, otherwise nominal.
  static GeneratorParams DefaultData();

  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
  std::string ToJson() const;
};

// A0..A7 at (pT, |y|) for a boson of charge +1 / -1 (W) or 0 (Z) (scaled by params.a_scale):
//   A0 = A2 = pT^2 / (pT^2 + M_ref^2)                                   (Lam-Tung)
//   A4 = 2 d(|y|) (1 - A0) c_V,  d = d_max tanh(|y| / 1.2): the dilution 2f - 1 of the quark
//        direction; d_max = 0.78 (W+), 0.72 (W-), 0.75 (Z); c_V = 1 (W), 0.07 (Z) (couplings);
//        the factor (1 - A0) keeps the density positive; A4 > 0 for both W charges
//   A1 = 0.08 tanh(|y| / 1.2) pT / (pT + 20 GeV)   (vanishes at y = 0, where it is odd)
//   A3 = 0.06 c_V pT / (pT + 20 GeV)
//   A5 = A6 = A7 = 0
std::array<double, 8> AngularCoefficients(const GeneratorParams& params, int charge, double pt,
                                          double abs_y);
// The angular density above (not normalised; its integral over dcos dphi is 16 pi / 3).
double AngularDensity(const std::array<double, 8>& a, double cos_theta, double phi);
// The angular polynomials {P_UL, P_0, ..., P_7}: the density is P_UL + sum_i A_i P_i with
// P_UL = 1 + c^2, P_0 = (1 - 3c^2)/2, P_1 = sin2t cos phi, P_2 = sin^2 t cos 2phi / 2,
// P_3 = sin t cos phi, P_4 = c, P_5 = sin^2 t sin 2phi, P_6 = sin2t sin phi, P_7 = sin t sin phi.
std::array<double, 9> AngularPolynomials(double cos_theta, double phi);
// The running-width Breit-Wigner density in m (not normalised).
inline double BreitWigner(double m, double mass, double width) {
  const double m2 = m * m;
  const double d = m2 - mass * mass;
  return 1.0 / (d * d + m2 * m2 * width * width / (mass * mass));
}

// Keeps events with at least min_muons reconstructed muons of pT >= min_pt (both 0: keep all,
// including events without any reconstructed muon).
struct EventFilter {
  int min_muons = 0;    // 0, 1 or 2
  double min_pt = 0.0;  // GeV
};

struct GeneratorConfig {
  SampleKind sample = SampleKind::kSimulation;
  std::vector<Process> processes = {Process::kWplusMuNu, Process::kWminusMuNu};  // no duplicates
  // Simulation: events generated in total, shared among the processes in proportion to their
  // rates (largest remainder; each listed process gets at least one). Ignored for data.
  std::uint64_t num_events = 1000000;
  double luminosity_pb = 16800.0;  // pb^-1: weights (simulation), expected counts (data); > 0
  std::uint64_t seed = 1;
  GeneratorParams physics;  // the truth; DefaultData() for a typical data set
  DetectorParams detector;  // the truth detector
  // false: a perfect detector (reconstructed = generated muons in the acceptance, no
  // efficiencies, rel_iso 0, u_T = true recoil): generator-level studies and benchmarks.
  bool simulate_detector = true;
  EventFilter filter;

  // The default data configuration: sample kData with GeneratorParams::DefaultData() and
  // DetectorParams::DefaultData().
  static GeneratorConfig DefaultData();
  bool IsValid(std::string* error) const;
};

// The generator for one configuration. Construction validates and precomputes (the number of
// events per process, including the data's Poisson counts, and the line-shape samplers); const
// methods are thread-safe, so a producer can generate event ranges in its own parallel tasks.
class Generator {
 public:
  // Throws std::invalid_argument with the IsValid message.
  explicit Generator(GeneratorConfig config);
  ~Generator();
  Generator(Generator&&) noexcept;
  Generator& operator=(Generator&&) noexcept;
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  const GeneratorConfig& config() const;
  // Events to generate for a process (0 if it is not in the configuration): event numbers
  // 0 .. NumEvents(p) - 1.
  std::uint64_t NumEvents(Process p) const;
  std::uint64_t TotalEvents() const;  // over the configured processes
  // Weight of every event of the process (simulation: rate x luminosity / NumEvents; data: 1).
  double EventWeight(Process p) const;
  // Rate of the process in pb (cross_section_pb x yield_factor).
  double Rate(Process p) const;

  // Generates the events with numbers [first, first + count) of process p (any p, also one not
  // in the configuration) and appends those that pass (the filter; in data the efficiencies and
  // the trigger) to *out, in event-number order. Serial.
  void Generate(Process p, std::uint64_t first, std::uint64_t count, EventBatch* out) const;
  // The same result, computed in parallel with TBB over fixed sub-ranges (num_threads 0 = all
  // cores, 1 = serial).
  void GenerateParallel(Process p, std::uint64_t first, std::uint64_t count, EventBatch* out,
                        int num_threads) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// An EventSource over all events of the configuration: the processes in configuration order,
// each in event-number order. Each Next() generates up to max_events events in parallel
// (num_threads, 0 = all cores) and returns those passing, so batches may be smaller than
// max_events; the event sequence does not depend on max_events or num_threads. SizeHint() is
// TotalEvents() and Position() counts generated events.
std::unique_ptr<EventSource> MakeGeneratorSource(GeneratorConfig config, int num_threads = 0);

}  // namespace lepus::models
