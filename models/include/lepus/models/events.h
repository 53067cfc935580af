// The event record of the producers: a columnar batch (struct of arrays) of reconstructed muon
// events with their generator-level truth, and the EventSource interface that delivers batches
// (the built-in generator, generator.h; HDF5 event files, event_file.h).
//
// Layout and conventions (the same in memory and in event files, docs/events.md):
//   * One entry per event in every column; EventBatch::size() is the common length. Columns are
//     plain std::vectors so histogramming code can loop over them with no indirection, and a
//     batch can be cut into index ranges for parallel processing.
//   * Up to two reconstructed muons per event, in slots muon[0] and muon[1], ordered by
//     decreasing reconstructed pT; n_muons says how many slots are filled. An empty slot has
//     charge 0 and NaN in its floating-point columns.
//   * Units: GeV, radians; phi in (-pi, pi]; eta is the pseudorapidity, y the rapidity.
//   * Generator-level boson columns (v_*) and the Collins-Soper angles are NaN (v_charge 0) for
//     events without a boson (non-prompt muons).
//   * Collins-Soper angles (cos_theta_cs, phi_cs) are those of the fermion with positive PDG id
//     (the mu- for Z and W-, the neutrino for W+, the tau- / nu_tau for the tau processes), in
//     the Collins-Soper frame whose z axis follows the sign of the boson's longitudinal momentum
//     and whose x axis points along the boson's transverse momentum (see generator.h).
//   * weight: the event's weight in expected events for the sample's luminosity (simulation:
//     cross section x luminosity / events generated; data: 1). It does not include efficiencies.
//   * Efficiency columns (per muon): in simulation the probability of the muon to be
//     reconstructed (eff_reco), tracked (eff_tracking), identified (eff_id), to fire the trigger
//     (eff_trigger) and to be isolated (eff_iso), evaluated with the simulation's nominal
//     efficiency model at the muon's generator-level (eta, pT, charge); the producer multiplies
//     the weight by the components it needs (MuonEfficiencyWeight) and varies them for the
//     efficiency systematics. In data, efficiencies are applied by accept/reject: muons failing
//     reco/tracking/id are absent, eff_reco = eff_tracking = eff_id = 1, eff_trigger is the
//     outcome 1 (fired) or 0 (did not fire; every data event has at least one muon that fired),
//     eff_iso the outcome 1 (rel_iso < 0.15) or 0. Isolation is never a weight: rel_iso itself is
//     drawn with the sample's isolation efficiency, so a selection on rel_iso applies it.
//   * Generator-level muon columns (gen_*) describe the generated muon that the reconstructed
//     muon came from, so that momentum-scale and resolution variations can rescale or re-smear
//     the muon event by event.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lepus::models {

// Physics processes of the generator and of the producers. The numeric values are stored in event
// files (column "process") and must not change.
enum class Process : std::uint8_t {
  kWplusMuNu = 0,   // W+ -> mu+ nu
  kWminusMuNu = 1,  // W- -> mu- nu
  kZMuMu = 2,       // Z/gamma* -> mu mu (Breit-Wigner Z only)
  kWTauNu = 3,      // W -> tau nu, tau -> mu nu nu (both charges)
  kZTauTau = 4,     // Z -> tau tau with at least one tau -> mu nu nu
  kNonPrompt = 5,   // non-prompt muons from heavy-flavour decays in multijet events
  kTop = 6,         // muons from W bosons of top-quark decays
  kDiboson = 7,     // muons from W bosons in diboson production
};
inline constexpr int kNumProcesses = 8;
inline constexpr std::array<Process, kNumProcesses> kAllProcesses = {
    Process::kWplusMuNu, Process::kWminusMuNu, Process::kZMuMu, Process::kWTauNu,
    Process::kZTauTau,   Process::kNonPrompt,  Process::kTop,   Process::kDiboson};

// "wplus", "wminus", "zmumu", "wtaunu", "ztautau", "nonprompt", "top", "diboson".
std::string ToString(Process process);
// Inverse of ToString. Throws std::invalid_argument listing the valid names.
Process ProcessFromString(std::string_view name);
// True for 0..kNumProcesses-1.
constexpr bool IsValidProcessId(int id) { return id >= 0 && id < kNumProcesses; }

// Simulation (efficiencies as weights, nominal truth) or data (efficiencies by accept/reject,
// the "data" truth, unit weights).
enum class SampleKind : std::uint8_t { kSimulation = 0, kData = 1 };
std::string ToString(SampleKind kind);  // "simulation", "data"
// Throws std::invalid_argument.
SampleKind SampleKindFromString(std::string_view name);

// Columns of one muon slot (see the conventions above).
struct MuonColumns {
  std::vector<double> pt, eta, phi;              // reconstructed
  std::vector<std::int8_t> charge;               // -1, +1; 0 for an empty slot
  std::vector<double> rel_iso;                   // relative isolation (>= 0)
  std::vector<double> gen_pt, gen_eta, gen_phi;  // the generated muon
  std::vector<std::int8_t> gen_charge;
  std::vector<double> eff_reco, eff_tracking, eff_id, eff_trigger, eff_iso;
};

struct EventBatch {
  std::vector<std::uint64_t> event_number;  // unique within (sample, seed, process)
  std::vector<Process> process;
  std::vector<double> weight;
  std::vector<std::int8_t> n_muons;  // 0, 1 or 2
  std::array<MuonColumns, 2> muon;
  // Reconstructed missing transverse momentum and hadronic recoil u_T (GeV):
  // MET = -(sum of reconstructed muon pT + u_T).
  std::vector<double> met_pt, met_phi, ut_x, ut_y;
  // Generator-level boson: mass, pT, rapidity, azimuth, charge (0 for Z); Collins-Soper angles.
  std::vector<double> v_mass, v_pt, v_y, v_phi;
  std::vector<std::int8_t> v_charge;
  std::vector<double> cos_theta_cs, phi_cs;

  std::size_t size() const { return event_number.size(); }
  bool empty() const { return event_number.empty(); }
  // Resizes every column (new entries: zero / kWplusMuNu).
  void Resize(std::size_t n);
  void Reserve(std::size_t n);
  void Clear() { Resize(0); }
  // Appends events [begin, end) of `other`.
  void Append(const EventBatch& other, std::size_t begin, std::size_t end);
  void Append(const EventBatch& other) { Append(other, 0, other.size()); }
  // Keeps the events with keep[i] != 0, in order (stable, in place). keep.size() == size().
  void Compact(const std::vector<std::uint8_t>& keep);
  // True if every column has size() entries.
  bool Consistent() const;
  // Bitwise equality of all columns (NaN == NaN when the bits agree).
  bool Identical(const EventBatch& other) const;
};

// ---- Column registry: names, types and roles of the columns, shared by the file reader and
// writer and by the documentation (docs/events.md).
enum class ColumnType : std::uint8_t { kFloat64, kInt8, kUInt64, kProcess };
struct ColumnSpec {
  const char* name;  // dataset name in event files, e.g. "mu0_pt"
  ColumnType type;
  bool required;         // must be present in a file; optional columns get defaults
  double default_value;  // for optional columns missing from a file
};
// All columns, in file order.
const std::vector<ColumnSpec>& EventColumns();

// Calls f(const ColumnSpec&, std::vector<T>&) for every column of the batch in EventColumns()
// order, with T = double, std::int8_t, std::uint64_t or Process.
template <typename Batch, typename F>
void VisitColumns(Batch& batch, F&& f);

// ---- Small helpers for producers.

// Transverse mass of two transverse vectors: sqrt(2 pt1 pt2 (1 - cos(phi1 - phi2))).
inline double TransverseMass(double pt1, double phi1, double pt2, double phi2) {
  const double v = 2.0 * pt1 * pt2 * (1.0 - std::cos(phi1 - phi2));
  return v > 0.0 ? std::sqrt(v) : 0.0;
}
// Product eff_reco * eff_tracking * eff_id * eff_trigger of a muon slot: the efficiency weight of
// a selected, trigger-matched muon (1 or 0 in data; see the conventions above).
inline double MuonEfficiencyWeight(const EventBatch& b, std::size_t i, int slot) {
  const MuonColumns& m = b.muon[slot];
  return m.eff_reco[i] * m.eff_tracking[i] * m.eff_id[i] * m.eff_trigger[i];
}
// Azimuth in (-pi, pi].
double WrapPhi(double phi);

// ---- Event sources: a real extension point (the generator, HDF5 files, user sources).
//
// A source delivers its events once, in a fixed order, in batches. Implementations must be
// deterministic: the sequence of events does not depend on max_events or on thread counts.
// Sources are used from one thread at a time.
class EventSource {
 public:
  virtual ~EventSource() = default;
  // Replaces the contents of *batch with the next up to max_events (> 0) events and returns how
  // many; 0 at the end. Bad input throws (io::InputError naming the file and dataset).
  virtual std::size_t Next(EventBatch* batch, std::size_t max_events) = 0;
  // Number of events the source will deliver in total, or an upper bound when it is not known
  // exactly (e.g. a generator with a filter); -1 if unknown. For progress reports.
  virtual std::int64_t SizeHint() const = 0;
  // Progress in the units of SizeHint: events consumed so far (for a filtering generator, events
  // generated whether delivered or not), so Position() / SizeHint() is the fraction done.
  virtual std::int64_t Position() const = 0;
  // Human name, e.g. "generator(wplus,wminus; simulation; seed 1)" or the file path.
  virtual std::string Name() const = 0;
};

// ---- implementation of VisitColumns

template <typename Batch, typename F>
void VisitColumns(Batch& b, F&& f) {
  const std::vector<ColumnSpec>& cols = EventColumns();
  std::size_t c = 0;
  f(cols[c++], b.event_number);
  f(cols[c++], b.process);
  f(cols[c++], b.weight);
  f(cols[c++], b.n_muons);
  for (auto& m : b.muon) {
    f(cols[c++], m.pt);
    f(cols[c++], m.eta);
    f(cols[c++], m.phi);
    f(cols[c++], m.charge);
    f(cols[c++], m.rel_iso);
    f(cols[c++], m.gen_pt);
    f(cols[c++], m.gen_eta);
    f(cols[c++], m.gen_phi);
    f(cols[c++], m.gen_charge);
    f(cols[c++], m.eff_reco);
    f(cols[c++], m.eff_tracking);
    f(cols[c++], m.eff_id);
    f(cols[c++], m.eff_trigger);
    f(cols[c++], m.eff_iso);
  }
  f(cols[c++], b.met_pt);
  f(cols[c++], b.met_phi);
  f(cols[c++], b.ut_x);
  f(cols[c++], b.ut_y);
  f(cols[c++], b.v_mass);
  f(cols[c++], b.v_pt);
  f(cols[c++], b.v_y);
  f(cols[c++], b.v_phi);
  f(cols[c++], b.v_charge);
  f(cols[c++], b.cos_theta_cs);
  f(cols[c++], b.phi_cs);
}

}  // namespace lepus::models
