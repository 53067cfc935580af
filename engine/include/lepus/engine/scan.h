// Profile-likelihood scans and MINOS-like intervals.
//
// A scan point fixes the scanned parameter(s) at a value (in reported units: mu for POIs) and
// minimises over all other floating parameters, starting from the best fit. Points are
// independent, so they run in parallel over TBB (each point's fit is itself deterministic), and
// the output does not depend on the thread count.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::engine {

struct ScanOptions {
  // Options of each profile fit (frozen / initial values are taken from the best fit).
  FitOptions fit;
  // Called after each finished point with (done, total), possibly from worker threads
  // (serialised by the caller's lock); for progress reports.
  std::function<void(int, int)> progress;
};

struct Scan1D {
  int param = -1;
  std::string name;
  std::vector<double> values;  // scanned values (reported units)
  std::vector<double> dnll;    // NLL(point) - NLL(best fit); NaN where the fit failed
  std::vector<std::string> status;
};

struct Scan2D {
  int param_x = -1, param_y = -1;
  std::string name_x, name_y;
  std::vector<double> values_x, values_y;
  Eigen::MatrixXd dnll;  // [nx x ny]
};

// Grid helpers: n points over [lo, hi], or over best +- k * error.
std::vector<double> LinearGrid(double lo, double hi, int n);

// Throws std::invalid_argument for an unknown/frozen parameter, an empty grid, or values
// outside the parameter's domain (mu < 0 with the positive POI parametrisation).
Scan1D ScanProfile(const Likelihood& likelihood, const FitResult& best, int param,
                   const std::vector<double>& values, const ScanOptions& options = {});
Scan2D ScanProfile2D(const Likelihood& likelihood, const FitResult& best, int param_x, int param_y,
                     const std::vector<double>& values_x, const std::vector<double>& values_y,
                     const ScanOptions& options = {});

struct Interval {
  int param = -1;
  double cl = 0.68;                         // confidence level
  double q = 1.0;                           // threshold on 2 * deltaNLL
  double lo = 0.0, hi = 0.0;                // interval ends (reported units)
  double err_lo = 0.0;                      // lo - best (negative)
  double err_hi = 0.0;                      // hi - best
  bool lo_found = false, hi_found = false;  // false: hit the domain boundary or search limit
  int fits = 0;
  // Profile fits that did not converge (status, not a number: a failed fit is treated as beyond
  // the crossing, so an end found with failed_fits > 0 is not trusted).
  int failed_fits = 0;
};

// Asymmetric profile-likelihood interval: the points where 2 * (NLL_profile - NLL_min) = q,
// with q the chi-square(1) quantile of cl (1 for 68.27%, 3.84 for 95%), found by bracketing from
// the Hessian estimate and Brent-style root finding on the profile. MINOS-like. Throws
// NumericalError when best did not converge.
Interval ProfileInterval(const Likelihood& likelihood, const FitResult& best, int param, double cl,
                         const ScanOptions& options = {});

// chi-square(1) quantile for a two-sided confidence level (e.g. 0.6827 -> 1, 0.95 -> 3.841).
double ChiSquare1Quantile(double cl);

}  // namespace lepus::engine
