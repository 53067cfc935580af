// Private: the checks the W-mass and dilepton configurations' IsValid share. Each returns false
// and sets *error (field, value, what was expected) as detail::Fail does.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "lepus/models/internal/validation.h"
#include "lepus/models/theory_variations.h"

namespace lepus::models::detail {

// The pseudo-data mass shifts (key names them in messages): multiples of mass.step_mev within
// +-mass.shift_mev, none repeated.
inline bool ValidPseudoDataShifts(const std::vector<double>& shifts, const TheoryConfig& theory,
                                  const std::string& key, std::string* error) {
  for (std::size_t i = 0; i < shifts.size(); ++i) {
    const double s = shifts[i];
    const double k = s / theory.mass_step_mev;
    const std::string field = key + "[" + std::to_string(i) + "] is " + Num(s);
    if (!std::isfinite(s) || std::abs(s) > theory.mass_shift_mev + 1e-9 ||
        std::abs(k - std::round(k)) > 1e-9)
      return Fail(error, field + ", but must be a multiple of mass.step_mev (" +
                             Num(theory.mass_step_mev) + ") within +-mass.shift_mev (" +
                             Num(theory.mass_shift_mev) + ")");
    for (std::size_t j = 0; j < i; ++j)
      if (shifts[j] == s) return Fail(error, field + ", but must not repeat an earlier shift");
  }
  return true;
}

// muon_scale.stat_scale > 0 and muon_scale.regions >= 0.
inline bool ValidMuonScale(double stat_scale, int regions, std::string* error) {
  if (!(stat_scale > 0))
    return Fail(error, "muon_scale.stat_scale is " + Num(stat_scale) + ", but must be > 0");
  if (regions < 0)
    return Fail(error, "muon_scale.regions is " + std::to_string(regions) + ", but must be >= 0");
  return true;
}

// The luminosity uncertainty (a relative size in [0, 1)), named key in messages.
inline bool ValidLuminosityUncertainty(double u, const std::string& key, std::string* error) {
  if (!(u >= 0) || u >= 1) return Fail(error, key + " is " + Num(u) + ", but must be in [0, 1)");
  return true;
}

// The "output" block and chunk_events.
inline bool ValidOutput(const std::string& storage, double sparse_density,
                        std::uint64_t chunk_events, std::string* error) {
  if (storage != "auto" && storage != "dense" && storage != "sparse")
    return Fail(error, "output.storage is '" + storage + "', but must be auto, dense or sparse");
  if (!(sparse_density > 0) || sparse_density > 1)
    return Fail(error,
                "output.sparse_density is " + Num(sparse_density) + ", but must be in (0, 1]");
  if (chunk_events == 0) return Fail(error, "chunk_events is 0, but must be > 0");
  return true;
}

}  // namespace lepus::models::detail
