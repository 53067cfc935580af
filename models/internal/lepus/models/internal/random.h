// Internal to lepus_models and lepus_calibration (target lepus_models_internal, never installed):
// the counter-based random numbers of the generator (Random123 Philox4x64-10).
//
// Key = (seed, process id); counter = (event number, stream, block, 0). One EventRandom is one
// stream of one event: 4 x 64 random bits per Philox call, consumed in order. Streams separate the
// quantities of an event (generator.h) so that changing one truth parameter leaves the draws of
// the others unchanged.
#pragma once

#include <Random123/philox.h>

#include <cmath>
#include <cstdint>

namespace lepus::models::detail {

enum Stream : std::uint64_t {
  kStreamCount = 0,  // the data's Poisson event counts (event number = ~0)
  kStreamMass = 1,
  kStreamRapidity = 2,
  kStreamPt = 3,
  kStreamAngles = 4,
  kStreamCharge = 5,
  kStreamDecay = 6,   // tau decays, decay-mode choices
  kStreamRecoil = 7,  // recoil measurement
  kStreamExtra = 8,   // extra invisible pT (top, diboson)
  kStreamNonPrompt = 9,
  kStreamMuon0 = 16,  // + index of the generated muon: its detector response
};

class EventRandom {
 public:
  EventRandom(std::uint64_t seed, std::uint64_t key2, std::uint64_t event,
              std::uint64_t stream) noexcept {
    key_ = {{seed, key2}};
    ctr_ = {{event, stream, 0, 0}};
  }
  std::uint64_t Bits() noexcept {
    if (idx_ == 4) {
      out_ = gen_(ctr_, key_);
      ++ctr_.v[2];
      idx_ = 0;
    }
    return out_.v[idx_++];
  }
  // Uniform in the open interval (0, 1), 53-bit resolution.
  double Uniform() noexcept { return (static_cast<double>(Bits() >> 11) + 0.5) * 0x1p-53; }
  // Standard normal (Box-Muller; the second value of a pair is kept for the next call).
  double Normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(Uniform()));
    const double t = 6.283185307179586 * Uniform();
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }

 private:
  r123::Philox4x64 gen_;
  r123::Philox4x64::ctr_type ctr_;
  r123::Philox4x64::key_type key_;
  r123::Philox4x64::ctr_type out_;
  int idx_ = 4;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace lepus::models::detail
