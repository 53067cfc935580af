// J/psi -> mu mu events for the muon momentum calibration (physics reference, section 3;
// docs/calibration.md "J/psi calibration: method"), in the event record of events.h and through
// the detector model of detector.h.
//
// Physics model (JpsiGeneratorOptions):
//   * mass kJpsiMass, zero width (the detector resolution, ~1% at these momenta, dominates);
//   * J/psi pT from a steeply falling power law dN/dpT ~ pT^-pt_index in [pt_min, pt_max]
//     (inverse CDF), rapidity uniform in |y| < y_max, azimuth uniform;
//   * isotropic decay to two muons of mass kMuonMass in the rest frame, boosted to the lab;
//   * detector: both muons in the acceptance (|eta| < eta_max of the detector, generated eta) and
//     reconstructed with DetectorModel::SmearPt (the eta-bin scale bias of the detector, then the
//     curvature resolution) above max(detector min_pt, muon_min_pt). Direction and charge are
//     measured perfectly. No efficiencies (the calibration uses shapes only): eff_* = 1,
//     rel_iso = 0, weight = 1 in data and simulation alike.
//
// The event record: n_muons = 2, slots ordered by decreasing reconstructed pT; v_mass = kJpsiMass,
// v_pt, v_y, v_phi of the J/psi, v_charge 0, Collins-Soper angles NaN; u_T = minus the J/psi pT
// (no recoil measurement), MET from the muons. The process column has no J/psi value (the ids are
// fixed by event files): it holds Process::kZMuMu, the other dimuon resonance; a J/psi batch is
// identified by where it came from (in event files: the root attribute process = "jpsi",
// MakeJpsiEventFileMetadata; `lepus generate --process jpsi`).
//
// Random numbers: Philox4x64-10 as in generator.h, keyed by (seed, kJpsiKey + sample kind), so
// data and simulation with the same seed are statistically independent and disjoint from the
// streams of the main generator; counter (event number, stream, block). An event depends only on
// (seed, sample kind, event number): not on thread counts or ranges.
#pragma once

#include <cstdint>
#include <string>

#include "lepus/models/detector.h"
#include "lepus/models/event_file.h"
#include "lepus/models/events.h"

namespace lepus::calibration {

// The types of lepus::models the calibration works with: the event record, the detector model,
// the samples and event files, and the calibration model it writes (calibration.h).
using models::DetectorModel;
using models::DetectorParams;
using models::EventBatch;
using models::EventFileInfo;
using models::EventFileMetadata;
using models::SampleKind;

inline constexpr double kJpsiMass = 3.0969;     // GeV
inline constexpr double kMuonMass = 0.1056584;  // GeV

struct JpsiGeneratorOptions {
  double pt_min = 8.0;       // GeV, J/psi pT lower bound; > 0
  double pt_max = 60.0;      // GeV; > pt_min
  double pt_index = 4.0;     // dN/dpT ~ pT^-pt_index; > 1
  double y_max = 2.4;        // |y| < y_max; > 0
  double muon_min_pt = 4.0;  // GeV, reconstructed pT of both muons; >= 0

  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
};

// J/psi events of one sample through one detector. Cheap to copy; const methods are thread-safe.
class JpsiGenerator {
 public:
  // Throws std::invalid_argument with the IsValid message of the options or the detector.
  JpsiGenerator(const JpsiGeneratorOptions& options, const DetectorParams& detector,
                SampleKind sample, std::uint64_t seed);

  const JpsiGeneratorOptions& options() const noexcept { return options_; }
  const DetectorModel& detector() const noexcept { return detector_; }
  SampleKind sample() const noexcept { return sample_; }
  std::uint64_t seed() const noexcept { return seed_; }

  // Generates the events [first, first + count) and appends those with two reconstructed muons
  // to *out, in event-number order; in parallel over fixed sub-ranges with TBB (num_threads 0 =
  // all cores, 1 = serial). The result does not depend on num_threads.
  void Generate(std::uint64_t first, std::uint64_t count, EventBatch* out,
                int num_threads = 1) const;

 private:
  // Fills row `row` of *out with event ev; false if the event is not reconstructed.
  bool GenerateEvent(std::uint64_t ev, EventBatch* out, std::size_t row) const noexcept;

  JpsiGeneratorOptions options_;
  DetectorModel detector_;
  SampleKind sample_;
  std::uint64_t seed_;
};

// The provenance of an event file of J/psi events (`lepus generate --process jpsi`): sample,
// process "jpsi", seed, the generator options as JSON {"jpsi": {...}} in generator_params, the
// detector, events_generated {"jpsi": N}, filter {"min_muons": 2, "min_pt": ...}.
EventFileMetadata MakeJpsiEventFileMetadata(const JpsiGenerator& generator,
                                            std::uint64_t events_generated,
                                            const std::string& creator);

// Invariant mass of two muons of mass kMuonMass given (pt, eta, phi) each.
double DimuonMass(double pt1, double eta1, double phi1, double pt2, double eta2,
                  double phi2) noexcept;

}  // namespace lepus::calibration
