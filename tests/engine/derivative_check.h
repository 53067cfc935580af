// Shared by the engine's likelihood tests: a random parameter point and the central
// finite-difference check of the analytic gradient and Hessian.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include <doctest/doctest.h>

#include "lepus/engine/likelihood.h"
#include "test_support.h"

namespace lepus::test {

// POIs in 1 +- 0.2 * spread, nuisances uniform in [-spread, spread].
inline Eigen::VectorXd RandomPoint(const engine::Likelihood& lik, std::uint64_t seed,
                                   double spread = 1.3) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-spread, spread);
  Eigen::VectorXd x = lik.InitialParams();
  for (int p = 0; p < lik.model().num_signals; ++p) x[p] = 1.0 + 0.2 * u(rng);
  for (int s = 0; s < lik.model().num_systematics(); ++s) x[lik.model().num_signals + s] = u(rng);
  return x;
}

// Central finite differences: gradient from Value, Hessian from the analytic gradient. Entry-wise
// relative errors: the scale of entry (i, j) is its own size, floored by a small fraction of
// sqrt(H_ii H_jj) (the natural size of a correlation-like entry): the FD errors (truncation
// ~ step^2 f''', rounding ~ eps |f| / step) are far below 1e-6 of that. sym_tol: allowed
// asymmetry of H relative to its largest entry (0: exactly symmetric).
inline void CheckDerivatives(const engine::Likelihood& lik, const Eigen::VectorXd& x,
                             const std::string& label, double sym_tol = 0.0) {
  CAPTURE(label);
  Eigen::VectorXd g;
  Eigen::MatrixXd h;
  const double f = lik.ValueGradientHessian(x, &g, &h);
  REQUIRE(std::isfinite(f));
  CHECK(f == doctest::Approx(lik.Value(x)).epsilon(1e-12));
  Eigen::VectorXd g2;
  CHECK(lik.ValueAndGradient(x, &g2) == doctest::Approx(f).epsilon(1e-12));
  CHECK(MaxRelDiff(g, g2, 1e-9) < 1e-12);

  const int n = lik.num_params();
  const double step = 1e-5;
  Eigen::VectorXd g_fd(n);
  Eigen::MatrixXd h_fd(n, n);
  for (int j = 0; j < n; ++j) {
    Eigen::VectorXd xp = x, xm = x;
    xp[j] += step;
    xm[j] -= step;
    g_fd[j] = (lik.Value(xp) - lik.Value(xm)) / (2 * step);
    Eigen::VectorXd gp, gm;
    lik.ValueAndGradient(xp, &gp);
    lik.ValueAndGradient(xm, &gm);
    h_fd.col(j) = (gp - gm) / (2 * step);
  }
  double gerr = 0.0, herr = 0.0;
  for (int i = 0; i < n; ++i) {
    const double gs = std::abs(g[i]) + 1e-2 * std::sqrt(std::abs(h(i, i))) + 1e-8;
    gerr = std::max(gerr, std::abs(g[i] - g_fd[i]) / gs);
    for (int j = 0; j < n; ++j) {
      const double hs = std::abs(h(i, j)) + 1e-3 * std::sqrt(std::abs(h(i, i) * h(j, j))) + 1e-8;
      herr = std::max(herr, std::abs(h(i, j) - h_fd(i, j)) / hs);
    }
  }
  INFO(label << ": max rel FD error gradient " << gerr << ", Hessian " << herr);
  CHECK(gerr < 1e-6);
  CHECK(herr < 1e-6);
  CHECK((h - h.transpose()).cwiseAbs().maxCoeff() <= sym_tol * h.cwiseAbs().maxCoeff());
}

}  // namespace lepus::test
