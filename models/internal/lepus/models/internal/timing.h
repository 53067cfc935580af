// Internal to lepus_models and lepus_calibration (target lepus_models_internal, never installed):
// the wall-clock timer of the producers' and calibrations' step timings (their summaries report
// seconds per step).
#pragma once

#include <chrono>

namespace lepus::models::detail {

using Clock = std::chrono::steady_clock;

// Seconds elapsed since t0.
inline double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace lepus::models::detail
