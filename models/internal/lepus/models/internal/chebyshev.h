// Internal to lepus_models (target lepus_models_internal, never installed): the Chebyshev
// polynomials of the smooth variations (efficiency_variations.cc: the efficiency scale factors'
// pT dependence; nonprompt.cc: the fake-rate smoothing in ln pT).
#pragma once

namespace lepus::models::detail {

// T_0 .. T_order at x into t[0 .. order] (order >= 0), by the recurrence
// T_k = 2 x T_{k-1} - T_{k-2}.
inline void Chebyshev(double x, int order, double* t) {
  t[0] = 1.0;
  if (order >= 1) t[1] = x;
  for (int k = 2; k <= order; ++k) t[k] = 2.0 * x * t[k - 1] - t[k - 2];
}

}  // namespace lepus::models::detail
