#include "lepus/engine/scan.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <stdexcept>

#include <tbb/parallel_for.h>

namespace lepus::engine {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void CheckParam(const Likelihood& lik, const FitResult& best, int param) {
  if (param < 0 || param >= lik.num_params())
    throw std::invalid_argument("scan parameter index " + std::to_string(param) +
                                " is out of range");
  if (best.frozen.at(param))
    throw std::invalid_argument("scan parameter " + lik.params()[param].name + " is frozen");
}

// Internal coordinate of a reported value; throws outside the domain.
double ToInternal(const Likelihood& lik, int param, double value) {
  if (param < lik.model().num_signals && lik.options().poi_positive) {
    if (value < 0)
      throw std::invalid_argument(
          "scan value " + std::to_string(value) + " of " + lik.params()[param].name +
          " is negative, but must be >= 0 with the positive POI parametrisation");
    return std::sqrt(value);
  }
  return value;
}

// Profile fit with the given parameters fixed. Returns NLL (NaN when the fit fails).
double ProfileAt(const Likelihood& lik, const FitResult& best, const std::vector<int>& params,
                 const std::vector<double>& values, const FitOptions& base, std::string* status) {
  FitOptions o = base;
  o.frozen = best.frozen;
  o.initial_params = best.x;
  o.compute_covariance = false;
  for (std::size_t i = 0; i < params.size(); ++i) {
    o.frozen[params[i]] = true;
    o.initial_params[params[i]] = ToInternal(lik, params[i], values[i]);
  }
  const FitResult r = Fit(lik, o);
  if (status) *status = ToString(r.status);
  return r.status == FitStatus::kConverged ? r.nll : kNaN;
}

}  // namespace

std::vector<double> LinearGrid(double lo, double hi, int n) {
  if (n < 1)
    throw std::invalid_argument("grid has " + std::to_string(n) + " points, but must have >= 1");
  if (!(hi >= lo))
    throw std::invalid_argument("grid range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                "] is empty");
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = n == 1 ? 0.5 * (lo + hi) : lo + (hi - lo) * i / (n - 1);
  return v;
}

Scan1D ScanProfile(const Likelihood& lik, const FitResult& best, int param,
                   const std::vector<double>& values, const ScanOptions& options) {
  CheckParam(lik, best, param);
  if (values.empty())
    throw std::invalid_argument("scan of " + lik.params()[param].name + " has no points");
  for (double v : values) {
    if (!std::isfinite(v))
      throw std::invalid_argument("scan value of " + lik.params()[param].name + " is not finite");
    ToInternal(lik, param, v);
  }
  Scan1D out;
  out.param = param;
  out.name = lik.params()[param].name;
  out.values = values;
  out.dnll.assign(values.size(), kNaN);
  out.status.assign(values.size(), "");
  std::atomic<int> done{0};
  std::mutex mu;
  tbb::parallel_for(std::size_t{0}, values.size(), [&](std::size_t i) {
    const double nll = ProfileAt(lik, best, {param}, {values[i]}, options.fit, &out.status[i]);
    out.dnll[i] = nll - best.nll;
    const int d = ++done;
    if (options.progress) {
      std::lock_guard<std::mutex> lock(mu);
      options.progress(d, static_cast<int>(values.size()));
    }
  });
  return out;
}

Scan2D ScanProfile2D(const Likelihood& lik, const FitResult& best, int px, int py,
                     const std::vector<double>& vx, const std::vector<double>& vy,
                     const ScanOptions& options) {
  CheckParam(lik, best, px);
  CheckParam(lik, best, py);
  if (px == py) throw std::invalid_argument("2D scan needs two different parameters");
  if (vx.empty() || vy.empty()) throw std::invalid_argument("2D scan has no points");
  for (double v : vx) ToInternal(lik, px, v);
  for (double v : vy) ToInternal(lik, py, v);
  Scan2D out;
  out.param_x = px;
  out.param_y = py;
  out.name_x = lik.params()[px].name;
  out.name_y = lik.params()[py].name;
  out.values_x = vx;
  out.values_y = vy;
  out.dnll = Eigen::MatrixXd::Constant(vx.size(), vy.size(), kNaN);
  const int total = static_cast<int>(vx.size() * vy.size());
  std::atomic<int> done{0};
  std::mutex mu;
  tbb::parallel_for(0, total, [&](int k) {
    const int i = k / static_cast<int>(vy.size()), j = k % static_cast<int>(vy.size());
    out.dnll(i, j) =
        ProfileAt(lik, best, {px, py}, {vx[i], vy[j]}, options.fit, nullptr) - best.nll;
    const int d = ++done;
    if (options.progress) {
      std::lock_guard<std::mutex> lock(mu);
      options.progress(d, total);
    }
  });
  return out;
}

double ChiSquare1Quantile(double cl) {
  if (!(cl > 0 && cl < 1))
    throw std::invalid_argument("confidence level " + std::to_string(cl) + " must be in (0, 1)");
  // q = z^2 with P(|Z| < z) = cl: invert erf by bisection (monotone, robust).
  double lo = 0.0, hi = 40.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (std::erf(mid / std::sqrt(2.0)) < cl ? lo : hi) = mid;
  }
  const double z = 0.5 * (lo + hi);
  return z * z;
}

Interval ProfileInterval(const Likelihood& lik, const FitResult& best, int param, double cl,
                         const ScanOptions& options) {
  CheckParam(lik, best, param);
  if (!best.ok())
    throw NumericalError("profile interval needs a converged best fit, but the fit is " +
                         ToString(best.status) +
                         (best.message.empty() ? "" : " (" + best.message + ")"));
  Interval out;
  out.param = param;
  out.cl = cl;
  out.q = ChiSquare1Quantile(cl);
  const double x0 = best.values[param];
  const double sigma = best.errors[param] > 0 ? best.errors[param] : 1.0;
  const bool bounded = param < lik.model().num_signals && lik.options().poi_positive;
  // f(v) = 2 (NLL_profile(v) - NLL_min) - q, negative at the minimum.
  auto f = [&](double v) {
    ++out.fits;
    const double nll = ProfileAt(lik, best, {param}, {v}, options.fit, nullptr);
    if (!std::isfinite(nll)) ++out.failed_fits;
    return 2.0 * (nll - best.nll) - out.q;
  };
  for (int side : {+1, -1}) {
    const double step0 = std::sqrt(out.q) * sigma;
    double a = x0, fa = -out.q;
    double b = x0 + side * step0;
    bool hit_bound = false;
    if (bounded && b < 0) {
      b = 0;
      hit_bound = true;
    }
    double fb = f(b);
    int expand = 0;
    while (std::isfinite(fb) && fb < 0 && !hit_bound && expand < 30) {
      a = b;
      fa = fb;
      b = x0 + side * step0 * std::pow(2.0, ++expand);
      if (bounded && b < 0) {
        b = 0;
        hit_bound = true;
      }
      fb = f(b);
    }
    bool found = std::isfinite(fb) && fb >= 0;
    double root = b;
    if (found) {
      // Illinois-modified regula falsi on [a, b] (robust, superlinear).
      int last = 0;
      for (int it = 0; it < 60; ++it) {
        double c = (a * fb - b * fa) / (fb - fa);
        if (!std::isfinite(c) || c == a || c == b) c = 0.5 * (a + b);
        const double fc = f(c);
        if (!std::isfinite(fc)) {  // failed profile fit: treat as beyond the crossing
          b = c;
          fb = 1.0;
          continue;
        }
        if (std::abs(fc) < 1e-6 || std::abs(b - a) < 1e-8 * sigma) {
          root = c;
          break;
        }
        if ((fc < 0) == (fa < 0)) {
          a = c;
          fa = fc;
          if (last == -1) fb *= 0.5;
          last = -1;
        } else {
          b = c;
          fb = fc;
          if (last == +1) fa *= 0.5;
          last = +1;
        }
        root = c;
      }
    }
    if (side > 0) {
      out.hi = root;
      out.hi_found = found;
      out.err_hi = root - x0;
    } else {
      out.lo = root;
      out.lo_found = found;
      out.err_lo = root - x0;
    }
  }
  if (options.progress) options.progress(2, 2);
  return out;
}

}  // namespace lepus::engine
