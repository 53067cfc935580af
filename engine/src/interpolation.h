// Asymmetric log-normal interpolation (docs/likelihood.md section 2, rabbit's convention):
//   u = 2 theta, alpha(theta) = clip(u (3u^4 - 10u^2 + 15) / 8, -1, 1)
// theta = +-1 reproduces the up/down templates exactly; alpha is C2 at |theta| = 1/2, so the
// exponent theta * (avg + alpha * halfdiff) has a continuous Hessian.
#pragma once

#include <cmath>

namespace lepus::engine {

struct AsymInterp {
  double alpha, dalpha, d2alpha;  // alpha and its first two derivatives in theta
};

inline AsymInterp AsymmetricAlpha(double theta) {
  const double u = 2.0 * theta;
  if (u >= 1.0) return {1.0, 0.0, 0.0};
  if (u <= -1.0) return {-1.0, 0.0, 0.0};
  const double u2 = u * u;
  const double alpha = u * (3 * u2 * u2 - 10 * u2 + 15) / 8;
  const double da_du = 15.0 * (u2 - 1) * (u2 - 1) / 8;  // = (15u^4 - 30u^2 + 15)/8
  const double d2a_du2 = 7.5 * u * (u2 - 1);            // = 60u(u^2-1)/8
  return {alpha, 2.0 * da_du, 4.0 * d2a_du2};
}

}  // namespace lepus::engine
