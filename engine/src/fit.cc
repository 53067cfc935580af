// Trust-region Newton fit with the exact Hessian. See docs/numerics.md for the choices.
#include "lepus/engine/fit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <tbb/info.h>
#include <tbb/task_arena.h>
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include "fit_ceres.h"
#include "fit_matrix_free.h"
#include "linalg.h"
#include "spd.h"
#include "trust_region.h"

namespace lepus::engine {

std::string ToString(FitStatus status) {
  switch (status) {
    case FitStatus::kConverged:
      return "converged";
    case FitStatus::kNotConverged:
      return "not_converged";
    case FitStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string ToString(CovarianceStatus status) {
  switch (status) {
    case CovarianceStatus::kNotComputed:
      return "not_computed";
    case CovarianceStatus::kAccurate:
      return "accurate";
    case CovarianceStatus::kForcedPositive:
      return "forced_positive";
    case CovarianceStatus::kTargetsOnly:
      return "targets_only";
    case CovarianceStatus::kAccurateSelected:
      return "accurate_selected";
    case CovarianceStatus::kNearSingular:
      return "near_singular";
  }
  return "unknown";
}

std::string ToString(CovarianceExtent extent) {
  switch (extent) {
    case CovarianceExtent::kFull:
      return "full";
    case CovarianceExtent::kSelected:
      return "selected";
  }
  return "unknown";
}

std::string ToString(FitMethod method) { return NameIn(kFitMethodNames, method); }

FitMethod FitMethodFromString(const std::string& text) {
  return ParseIn(kFitMethodNames, text, "fit method");
}

bool FitOptions::IsValid(int num_params, std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (!(edm_tolerance > 0) || !std::isfinite(edm_tolerance))
    return fail("FitOptions.edm_tolerance is " + std::to_string(edm_tolerance) +
                ", but must be finite and > 0");
  if (max_iterations <= 0)
    return fail("FitOptions.max_iterations is " + std::to_string(max_iterations) +
                ", but must be > 0");
  if (!(initial_trust_radius > 0) || !std::isfinite(initial_trust_radius))
    return fail("FitOptions.initial_trust_radius is " + std::to_string(initial_trust_radius) +
                ", but must be finite and > 0");
  if (!(max_trust_radius >= initial_trust_radius))
    return fail("FitOptions.max_trust_radius is " + std::to_string(max_trust_radius) +
                ", but must be >= initial_trust_radius = " + std::to_string(initial_trust_radius));
  if (initial_params.size() != 0 && initial_params.size() != num_params)
    return fail("FitOptions.initial_params has " + std::to_string(initial_params.size()) +
                " entries, but must be empty or have " + std::to_string(num_params));
  if (initial_params.size() != 0 && !initial_params.allFinite())
    return fail("FitOptions.initial_params has non-finite entries, but must be finite");
  if (matrix_free_threshold <= 0)
    return fail("FitOptions.matrix_free_threshold is " + std::to_string(matrix_free_threshold) +
                ", but must be > 0");
  if (!(cg_tolerance > 0 && cg_tolerance < 1))
    return fail("FitOptions.cg_tolerance is " + std::to_string(cg_tolerance) +
                ", but must be in (0, 1)");
  if (!(singular_ratio > 0 && singular_ratio < 1))
    return fail("FitOptions.singular_ratio is " + std::to_string(singular_ratio) +
                ", but must be in (0, 1)");
  if (cg_max_iterations <= 0)
    return fail("FitOptions.cg_max_iterations is " + std::to_string(cg_max_iterations) +
                ", but must be > 0");
  if (covariance_extent != CovarianceExtent::kFull &&
      covariance_extent != CovarianceExtent::kSelected)
    return fail("FitOptions.covariance_extent is " +
                std::to_string(static_cast<int>(covariance_extent)) +
                ", but must be kFull or kSelected");
  for (int t : covariance_targets)
    if (t < 0 || t >= num_params)
      return fail("FitOptions.covariance_targets has " + std::to_string(t) +
                  ", but must be in [0, " + std::to_string(num_params) + ")");
  if (!frozen.empty() && static_cast<int>(frozen.size()) != num_params)
    return fail("FitOptions.frozen has " + std::to_string(frozen.size()) +
                " entries, but must be empty or have " + std::to_string(num_params));
  return true;
}

double ChiSquarePValue(double chi2, int ndf) {
  if (ndf <= 0) return std::numeric_limits<double>::quiet_NaN();
  if (!(chi2 > 0)) return 1.0;
  // Regularised upper incomplete gamma Q(a, x), a = ndf/2, x = chi2/2 (series for x < a + 1,
  // Lentz continued fraction otherwise).
  const double a = 0.5 * ndf, x = 0.5 * chi2;
  const double lg = std::lgamma(a);
  if (x < a + 1) {
    double sum = 1.0 / a, term = sum, ap = a;
    for (int n = 0; n < 100000; ++n) {
      ap += 1;
      term *= x / ap;
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-16) break;
    }
    return std::max(0.0, 1.0 - sum * std::exp(-x + a * std::log(x) - lg));
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < 1e-16) break;
  }
  return std::exp(-x + a * std::log(x) - lg) * h;
}

Eigen::VectorXd AsimovData(const Likelihood& likelihood, const Eigen::VectorXd& x) {
  return likelihood.ExpectedYields(x, false).head(likelihood.model().nbins);
}

Eigen::MatrixXd FitResult::Correlation() const {
  const Eigen::Index n = covariance.rows();
  Eigen::MatrixXd corr = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j) {
      const double d = std::sqrt(covariance(i, i) * covariance(j, j));
      corr(i, j) = d > 0 ? covariance(i, j) / d : (i == j ? 1.0 : 0.0);
    }
  return corr;
}

Eigen::MatrixXd FitResult::CorrelationOf(const std::vector<int>& idx) const {
  const auto k = static_cast<Eigen::Index>(idx.size());
  const Eigen::Index n = covariance.rows();
  const bool full = n > 0 && covariance.cols() == n;
  const Eigen::Index nparams = full ? n : covariance_rows.cols();
  // Selected rows: the row of each index (its first occurrence among the targets).
  std::vector<Eigen::Index> row(idx.size(), -1);
  for (std::size_t a = 0; a < idx.size(); ++a) {
    if (idx[a] < 0 || idx[a] >= nparams)
      throw std::invalid_argument("FitResult::CorrelationOf: parameter index " +
                                  std::to_string(idx[a]) + " is outside [0, " +
                                  std::to_string(nparams) + ")");
    if (full) continue;
    for (std::size_t r = 0; r < covariance_row_params.size() && row[a] < 0; ++r)
      if (covariance_row_params[r] == idx[a]) row[a] = static_cast<Eigen::Index>(r);
    if (row[a] < 0)
      throw std::invalid_argument(
          "FitResult::CorrelationOf: parameter " + std::to_string(idx[a]) +
          " has no covariance row (not among the covariance targets; fit with "
          "CovarianceExtent::kFull or add it to FitOptions::covariance_targets)");
  }
  // C_ab for positions a, b (the row of the earlier position when selected: one value per pair).
  auto cov = [&](Eigen::Index a, Eigen::Index b) {
    if (full) return covariance(idx[a], idx[b]);
    return a <= b ? covariance_rows(row[a], idx[b]) : covariance_rows(row[b], idx[a]);
  };
  Eigen::MatrixXd corr(k, k);
  for (Eigen::Index a = 0; a < k; ++a)
    for (Eigen::Index b = 0; b < k; ++b) {
      // As Correlation().
      const double d = std::sqrt(cov(a, a) * cov(b, b));
      corr(a, b) = d > 0 ? cov(a, b) / d : (idx[a] == idx[b] ? 1.0 : 0.0);
    }
  return corr;
}

std::string FitResult::BriefReport() const {
  std::ostringstream os;
  os.precision(10);
  os << "status=" << ToString(status) << " nll=" << nll << " edm=" << edm
     << " iterations=" << iterations << " covariance=" << ToString(covariance_status)
     << " chi2/ndf=" << gof_chi2 << "/" << gof_ndf << " p=" << gof_p << " time=" << time_total
     << "s";
  if (!message.empty()) os << " (" << message << ")";
  return os.str();
}

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

Eigen::MatrixXd Sub(const Eigen::MatrixXd& m, const std::vector<int>& idx) {
  const int n = static_cast<int>(idx.size());
  Eigen::MatrixXd out(n, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) out(i, j) = m(idx[i], idx[j]);
  return out;
}

Eigen::VectorXd Sub(const Eigen::VectorXd& v, const std::vector<int>& idx) {
  Eigen::VectorXd out(idx.size());
  for (std::size_t i = 0; i < idx.size(); ++i) out[i] = v[idx[i]];
  return out;
}

// Yields beyond which the Poisson term's curvature n / L^2 is not representable: L^2 overflows
// above ~1.3e154 and underflows below ~1.5e-154 (docs/numerics.md, "Extreme yields"); with a
// margin for the systematic variations of L during the fit.
constexpr double kMaxYield = 1e150;
constexpr double kMinYield = 1e-150;

// The fitted bins (at most 3 named) whose expectation at x is outside the likelihood's domain or
// the representable range, e.g. "bin 3 (channel ch0, bin 3): expected yield 0 with 2 observed
// events (impossible: zero expectation cannot produce events)". With `failed` (the fit failed
// for another reason) also the bins whose counts are so large that the rounding error of their
// NLL term, ~ n |ln n| eps, exceeds 1e-3 (the minimiser cannot resolve the minimum there; a
// possible cause, not a proof). "" when none.
std::string DescribeBadBins(const Likelihood& lik, const Eigen::VectorXd& x, bool failed = false) {
  const Model& m = lik.model();
  const Eigen::VectorXd lam = lik.ExpectedYields(x, false);
  const Eigen::VectorXd& data = lik.data();
  std::vector<std::string> found;
  int count = 0;
  std::int64_t offset = 0;
  std::vector<Channel> channels = m.channels;
  if (channels.empty()) channels.push_back(Channel{"(unnamed)", {}, m.nbins, false});
  for (const Channel& ch : channels) {
    if (ch.masked) continue;
    for (std::int64_t j = 0; j < ch.nbins; ++j) {
      const std::int64_t b = offset + j;
      if (b >= m.nbins || b >= lam.size() || b >= data.size()) break;
      const double l = lam[b], n = data[b];
      char buf[256];
      buf[0] = 0;
      if (!std::isfinite(l))
        std::snprintf(buf, sizeof(buf), "expected yield %g is not finite", l);
      else if (l < 0)
        std::snprintf(buf, sizeof(buf), "expected yield %.6g is negative", l);
      else if (l == 0 && n > 0)
        std::snprintf(buf, sizeof(buf),
                      "expected yield 0 with %g observed events (impossible: a zero "
                      "expectation cannot produce events)",
                      n);
      else if (l > kMaxYield || n > kMaxYield)
        std::snprintf(buf, sizeof(buf),
                      "expected yield %.6g (observed %.6g) is above %g, where the "
                      "curvature n / L^2 is not representable in double precision",
                      l, n, kMaxYield);
      else if (n > 0 && l < kMinYield)
        std::snprintf(buf, sizeof(buf),
                      "expected yield %.6g with %g observed events is below %g, where the "
                      "curvature n / L^2 is not representable in double precision",
                      l, n, kMinYield);
      else if (failed && n > 1 && n * std::log(n) * 2.2e-16 > 1e-3)
        std::snprintf(buf, sizeof(buf),
                      "%.6g observed events: the rounding error of the NLL term (~%.2g) is "
                      "above the minimiser's resolution (possible cause)",
                      n, n * std::log(n) * 2.2e-16);
      if (buf[0] == 0) continue;
      if (++count <= 3)
        found.push_back("bin " + std::to_string(b) + " (channel " + ch.name + ", bin " +
                        std::to_string(j) + "): " + buf);
    }
    offset += ch.nbins;
  }
  std::string out;
  for (const auto& f : found) out += (out.empty() ? "" : "; ") + f;
  if (count > 3) out += "; and " + std::to_string(count - 3) + " more bins";
  return out;
}

}  // namespace

// The fit without the model's bounds and fixed parameters (Fit below adds them).
FitResult FitFree(const Likelihood& lik, const FitOptions& options) {
  const auto t_start = Clock::now();
  const int npar = lik.num_params();
  std::string err;
  if (!options.IsValid(npar, &err)) throw std::invalid_argument(err);
  if (options.cancel && options.cancel()) {
    // Cancelled before the first evaluation (e.g. the remaining points of a scan).
    FitResult res;
    res.status = FitStatus::kFailed;
    res.message = kCancelledMessage;
    res.method = options.method;
    res.frozen = options.frozen.empty() ? std::vector<bool>(npar, false) : options.frozen;
    res.x = options.initial_params.size() ? options.initial_params : lik.InitialParams();
    res.values = res.x;
    for (int p = 0; p < lik.model().num_signals; ++p) res.values[p] = lik.PoiValue(res.x[p]);
    res.errors = Eigen::VectorXd::Constant(npar, std::numeric_limits<double>::quiet_NaN());
    res.nll = std::numeric_limits<double>::quiet_NaN();
    res.time_total = Seconds(t_start, Clock::now());
    return res;
  }

  if (options.method == FitMethod::kCeres || options.method == FitMethod::kCeresDogleg)
    return detail::FitCeres(lik, options, options.method == FitMethod::kCeresDogleg);
  {
    int nfree = npar;
    if (!options.frozen.empty())
      nfree = static_cast<int>(std::count(options.frozen.begin(), options.frozen.end(), false));
    // auto: matrix-free for large models, where it applies (not to covariance fits, whose data
    // term couples all bins).
    const bool mf_ok = lik.data_term() != DataTerm::kCovariance;
    if (options.method == FitMethod::kMatrixFree ||
        (options.method == FitMethod::kAuto && mf_ok && nfree > options.matrix_free_threshold))
      return detail::FitMatrixFree(lik, options);
  }
  FitResult res;
  res.frozen = options.frozen.empty() ? std::vector<bool>(npar, false) : options.frozen;
  std::vector<int> free;
  for (int i = 0; i < npar; ++i)
    if (!res.frozen[i]) free.push_back(i);
  const int nf = static_cast<int>(free.size());

  Eigen::VectorXd x = options.initial_params.size() ? options.initial_params : lik.InitialParams();
  // Dense factorisations run on the likelihood's thread count (results do not depend on it).
  const int threads =
      lik.options().num_threads > 0 ? lik.options().num_threads : tbb::info::default_concurrency();
  tbb::task_arena linalg_arena(threads);
  Eigen::VectorXd grad;
  Eigen::MatrixXd hess;
  double t_eval = 0.0, t_linalg = 0.0;
  auto eval_full = [&](const Eigen::VectorXd& at) {
    const auto t0 = Clock::now();
    const double f = lik.ValueGradientHessian(at, &grad, &hess);
    t_eval += Seconds(t0, Clock::now());
    ++res.evaluations;
    return f;
  };
  auto eval_value = [&](const Eigen::VectorXd& at) {
    const auto t0 = Clock::now();
    const double f = lik.Value(at);
    t_eval += Seconds(t0, Clock::now());
    ++res.evaluations;
    return f;
  };

  double f = eval_full(x);
  auto finish = [&](FitStatus status, const std::string& message) {
    res.status = status;
    res.message = message;
    res.x = x;
    res.nll = f;
    res.time_evaluation = t_eval;
    res.time_linear_algebra = t_linalg;
  };

  bool bins_described = false;  // the failure message already names the bad bins
  bool cancelled = false;       // FitOptions::cancel stopped the fit: no covariance
  if (!std::isfinite(f) || !grad.allFinite() || !hess.allFinite()) {
    const std::string bad = DescribeBadBins(lik, x);
    bins_described = true;
    finish(FitStatus::kFailed,
           "the NLL or its derivatives are not finite at the starting point" +
               (bad.empty() ? std::string(" (non-positive expected yield in some bin?)")
                            : ": " + bad));
  } else if (nf == 0) {
    finish(FitStatus::kConverged, "all parameters frozen");
    res.edm = 0.0;
  } else {
    // Scaling D = sqrt(diag H) (Moré's monotone update): the trust region is a box of roughly
    // one-sigma units for every parameter, whatever its physical scale.
    Eigen::VectorXd dscale = Eigen::VectorXd::Ones(nf);
    double radius = options.initial_trust_radius;
    // Separate radius for steps taken where H is indefinite (non-convex regions): it starts at
    // the initial radius and grows only through good indefinite steps, so a radius grown in a
    // convex region is not applied to a negative-curvature step.
    double radius_indef = options.initial_trust_radius;
    bool converged = false;
    std::string message;
    int iter = 0;
    for (; iter < options.max_iterations; ++iter) {
      if (options.cancel && options.cancel()) {
        message = kCancelledMessage;
        cancelled = true;
        break;
      }
      const auto t0 = Clock::now();
      Eigen::VectorXd g = Sub(grad, free);
      Eigen::MatrixXd h_sub;  // a copy only when parameters are frozen
      if (nf != npar) h_sub = Sub(hess, free);
      const Eigen::MatrixXd& h = nf != npar ? h_sub : hess;
      for (int i = 0; i < nf; ++i)
        dscale[i] = std::max(dscale[i] * (iter == 0 ? 0.0 : 1.0),
                             std::sqrt(std::max(std::abs(h(i, i)), 1e-300)));
      // EDM with the Newton step, when H is positive definite.
      std::unique_ptr<detail::SpdFactor> chol;
      linalg_arena.execute([&] { chol = std::make_unique<detail::SpdFactor>(h); });
      const bool pd = chol->ok();
      Eigen::VectorXd newton;
      if (pd) {
        newton = chol->Solve(-g);
        const double edm = -0.5 * g.dot(newton);
        if (std::isfinite(edm) && edm < options.edm_tolerance) {
          // Converged: take the final (quadratically convergent) Newton step if it helps.
          t_linalg += Seconds(t0, Clock::now());
          Eigen::VectorXd xn = x;
          for (int i = 0; i < nf; ++i) xn[free[i]] += newton[i];
          const double fn = eval_value(xn);
          if (std::isfinite(fn) && fn <= f + 1e-12 * std::max(1.0, std::abs(f))) {
            x = xn;
            f = eval_full(x);
          }
          converged = true;
          break;
        }
      }
      // Trust-region step in the scaled variables y = D x. Positive-definite H: dogleg between
      // the Cauchy point and the Newton step (no further factorisation). Indefinite H (a
      // non-convex region, e.g. the asymmetric interpolation near theta = 0): the model is not
      // trusted beyond one (scaled) unit, and the subproblem is solved by Steihaug-Toint
      // truncated conjugate gradients (Hessian-vector products only; stops on negative
      // curvature at the boundary) for large problems, by Moré-Sorensen for small ones.
      if (pd) {
        // Newton first: when the full Newton step decreases the NLL as its quadratic model
        // predicts (rho > 0.25), it is taken whatever the trust radius, and the radius grows to
        // its length. Near-quadratic likelihoods then converge in a few Newton iterations
        // instead of growing the radius by 3x per iteration; otherwise the dogleg below, with
        // the radius capped below the rejected step.
        const double nn = newton.cwiseProduct(dscale).norm();
        const double pred_n = -(g.dot(newton) + 0.5 * newton.dot(h * newton));
        t_linalg += Seconds(t0, Clock::now());
        Eigen::VectorXd xn = x;
        for (int i = 0; i < nf; ++i) xn[free[i]] += newton[i];
        const double fn = eval_value(xn);
        const double rho = std::isfinite(fn) && pred_n > 0 ? (f - fn) / pred_n : -1.0;
        if (std::getenv("LEPUS_DEBUG_FIT"))
          std::fprintf(
              stderr,
              "fit: iter %d f %.6f newton |p|_D %.3g pred %.3g actual %.3g rho %.3f t %.2fs\n",
              iter, f, nn, pred_n, f - fn, rho, Seconds(t0, Clock::now()));
        // A predicted decrease below kRoundingDecrease (NLL units) is at the rounding level of
        // large-count likelihoods (terms of 1e8 summed over bins): the measured change is noise
        // there, and the step is taken when the NLL does not rise by more than that level.
        constexpr double kRoundingDecrease = 1e-6;
        const bool rounding =
            pred_n < kRoundingDecrease && std::isfinite(fn) && fn - f < kRoundingDecrease;
        if (rho > 0.25 || rounding) {
          radius = std::min(std::max(radius, nn), options.max_trust_radius);
          x = xn;
          f = eval_full(x);
          if (!std::isfinite(f) || !grad.allFinite() || !hess.allFinite()) {
            message = "the derivatives became non-finite during the minimisation";
            break;
          }
          continue;
        }
        radius = std::min(radius, 0.5 * nn);
      }
      const auto t1 = Clock::now();
      Eigen::VectorXd p;
      if (pd) {
        p = detail::DoglegStep(h, g, newton, dscale, radius);
      } else {
        Eigen::VectorXd gs = g.cwiseQuotient(dscale);
        Eigen::MatrixXd hs =
            dscale.cwiseInverse().asDiagonal() * h * dscale.cwiseInverse().asDiagonal();
        double lambda = 0.0;
        Eigen::VectorXd ps;
        if (nf > 1500)
          ps = detail::SteihaugStep(hs, gs, radius_indef);
        else
          linalg_arena.execute(
              [&] { ps = detail::TrustRegionStep(hs, gs, radius_indef, &lambda); });
        p = ps.cwiseQuotient(dscale);
      }
      const Eigen::VectorXd ps = p.cwiseProduct(dscale);
      const double pred = -(g.dot(p) + 0.5 * p.dot(h * p));
      t_linalg += Seconds(pd ? t1 : t0, Clock::now());
      if (!(pred > 0) || !p.allFinite()) {
        if (!(pred > 0) && !pd && g.norm() == 0.0) {
          message = "stationary point with a Hessian that is not positive definite";
          break;
        }
        // Model cannot decrease: gradient numerically zero.
        if (g.norm() <= 1e-300 || ps.norm() < 1e-14) {
          converged = pd;
          break;
        }
        (pd ? radius : radius_indef) *= 0.25;
        continue;
      }
      Eigen::VectorXd xn = x;
      for (int i = 0; i < nf; ++i) xn[free[i]] += p[i];
      const double fn = eval_value(xn);
      const double actual = f - fn;
      const double rho = std::isfinite(fn) ? actual / pred : -1.0;
      if (std::getenv("LEPUS_DEBUG_FIT"))
        std::fprintf(stderr,
                     "fit: iter %d f %.6f pd %d radius %.3g |p|_D %.3g pred %.3g actual %.3g rho "
                     "%.3f t %.2fs\n",
                     iter, f, static_cast<int>(pd), pd ? radius : radius_indef, ps.norm(), pred,
                     actual, rho, Seconds(t0, Clock::now()));
      const double pnorm = ps.norm();
      const double used = pd ? radius : radius_indef;
      double& r = pd ? radius : radius_indef;
      if (rho < 0.25)
        r = 0.25 * std::min(used, pnorm);
      else if (rho > 0.75 && pnorm > 0.9 * used)
        r = std::min(3.0 * used, options.max_trust_radius);
      if (rho > 1e-4) {
        x = xn;
        f = eval_full(x);
        if (!std::isfinite(f) || !grad.allFinite() || !hess.allFinite()) {
          message = "the derivatives became non-finite during the minimisation";
          break;
        }
      }
      if (radius < 1e-12 || radius_indef < 1e-12) {
        message =
            "trust region collapsed (radius < 1e-12): the NLL cannot be decreased further; "
            "the Newton model may be inaccurate (rounding?)";
        break;
      }
    }
    res.iterations = iter;
    if (converged)
      finish(FitStatus::kConverged, "");
    else if (iter >= options.max_iterations)
      finish(FitStatus::kNotConverged,
             "iteration limit (" + std::to_string(options.max_iterations) + ") reached");
    else
      finish(FitStatus::kFailed, message);
  }

  // Covariance and EDM at the final point.
  const auto t_cov = Clock::now();
  res.hessian = hess;
  const Eigen::VectorXd g = Sub(grad, free);
  Eigen::MatrixXd h_sub;
  if (nf != npar) h_sub = Sub(hess, free);
  const Eigen::MatrixXd& h = nf != npar ? h_sub : res.hessian;
  Eigen::MatrixXd cov_free;
  // CovarianceExtent::kSelected: diag of the inverse over the free parameters and its columns of
  // the floating targets (target_pos: their positions among the free parameters).
  const bool selected = options.covariance_extent == CovarianceExtent::kSelected;
  std::vector<int> targets = options.covariance_targets;
  if (targets.empty())
    for (int i = 0; i < npar; ++i)
      if (lik.params()[i].kind != ParamKind::kNuisance && !res.frozen[i]) targets.push_back(i);
  std::vector<int> free_pos(npar, -1), target_pos;
  for (int i = 0; i < nf; ++i) free_pos[free[i]] = i;
  for (int t : targets)
    if (free_pos[t] >= 0) target_pos.push_back(free_pos[t]);
  Eigen::VectorXd sel_diag;
  Eigen::MatrixXd sel_cols;
  // No covariance where the NLL itself is not finite (a failed start outside the model's domain):
  // the derivatives there describe no minimum, and the status stays "not computed".
  if (nf > 0 && h.allFinite() && !cancelled && std::isfinite(res.nll)) {
    std::unique_ptr<detail::SpdFactor> chol;
    linalg_arena.execute([&] { chol = std::make_unique<detail::SpdFactor>(h); });
    res.hessian_positive_definite = chol->ok();
    std::vector<std::string> free_names;
    for (int i : free) free_names.push_back(lik.params()[i].name);
    if (res.hessian_positive_definite) {
      res.edm = 0.5 * g.dot(chol->Solve(g));
      // The factorisation succeeding is not enough: a Hessian that is singular up to rounding
      // (e.g. two free parameters with proportional effects) factorises with a tiny pivot and
      // gives errors of 1e8. Accurate only with a margin (docs/numerics.md).
      detail::ScaledConditioning cond;
      const auto t_cond = Clock::now();
      linalg_arena.execute([&] { cond = detail::EstimateScaledConditioning(h, *chol); });
      if (std::getenv("LEPUS_DEBUG_FIT"))
        std::fprintf(stderr,
                     "fit: scaled conditioning lambda_min/lambda_max = %.3g (n = %d) in %.4f s\n",
                     cond.ratio(), nf, Seconds(t_cond, Clock::now()));
      res.hessian_scaled_ratio = cond.ratio();
      const bool near_singular = !(res.hessian_scaled_ratio > options.singular_ratio);
      if (near_singular) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.3g", res.hessian_scaled_ratio);
        res.covariance_message = std::string("Hessian near-singular (lambda_min/lambda_max = ") +
                                 buf + " after scaling to unit diagonal): direction dominated by " +
                                 detail::DescribeDirection(cond.direction, free_names);
      }
      if (options.compute_covariance) {
        if (selected) {
          linalg_arena.execute([&] { chol->SelectedInverse(target_pos, &sel_diag, &sel_cols); });
          res.covariance_status =
              near_singular ? CovarianceStatus::kNearSingular : CovarianceStatus::kAccurateSelected;
        } else {
          linalg_arena.execute([&] { cov_free = chol->Inverse(); });
          res.covariance_status =
              near_singular ? CovarianceStatus::kNearSingular : CovarianceStatus::kAccurate;
        }
      }
    } else {
      // Minuit2-style forced positive definiteness: clamp eigenvalues (flagged, not trusted).
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(h);
      if (es.info() != Eigen::Success) {
        // The eigen-decomposition itself failed (no convergence): no covariance at all.
        res.covariance_message =
            "Hessian not positive definite, and its eigen-decomposition did not converge";
        res.hessian_scaled_ratio = 0.0;
      } else {
        Eigen::VectorXd ev = es.eigenvalues();
        const double floor = std::max(1e-10 * ev.cwiseAbs().maxCoeff(), 1e-300);
        Eigen::VectorXd inv = ev.unaryExpr([&](double v) { return 1.0 / std::max(v, floor); });
        Eigen::MatrixXd pinv = es.eigenvectors() * inv.asDiagonal() * es.eigenvectors().transpose();
        res.edm = 0.5 * g.dot(pinv * g);
        if (options.compute_covariance) {
          if (selected) {
            // The eigen-decomposition has cost n^3 already: the selected entries of its inverse.
            sel_diag = pinv.diagonal();
            sel_cols.resize(nf, static_cast<Eigen::Index>(target_pos.size()));
            for (std::size_t k = 0; k < target_pos.size(); ++k)
              sel_cols.col(k) = pinv.col(target_pos[k]);
          } else {
            cov_free = pinv;
          }
          res.covariance_status = CovarianceStatus::kForcedPositive;
        }
        res.hessian_scaled_ratio = ev[0] / std::max(ev.cwiseAbs().maxCoeff(), 1e-300);
        {
          char buf[64];
          std::snprintf(buf, sizeof(buf), "%.3g", ev[0]);
          res.covariance_message =
              std::string("Hessian not positive definite (smallest eigenvalue ") + buf +
              "): direction dominated by " +
              detail::DescribeDirection(es.eigenvectors().col(0), free_names);
        }
      }
      if (res.status == FitStatus::kConverged) {
        res.status = FitStatus::kFailed;
        res.message = "Hessian at the minimum is not positive definite";
      }
    }
  } else if (nf == 0) {
    res.edm = 0.0;
  }

  // Reported values: mu (= x^2 with poi_positive) for POIs, theta otherwise; Jacobian transform.
  const int npoi = lik.model().num_signals;
  res.values = x;
  Eigen::VectorXd jac = Eigen::VectorXd::Ones(npar);
  for (int p = 0; p < npoi; ++p) {
    res.values[p] = lik.PoiValue(x[p]);
    jac[p] = lik.PoiDerivative(x[p]);
  }
  if (sel_diag.size()) {
    // kSelected: the errors of every parameter and the target rows, with the products of kFull
    // below (jac_i c_ij jac_j), so that equal inverse entries give equal numbers.
    res.errors = Eigen::VectorXd::Zero(npar);
    for (int i = 0; i < nf; ++i)
      res.errors[free[i]] = std::sqrt(std::max(jac[free[i]] * sel_diag[i] * jac[free[i]], 0.0));
    res.covariance_row_params = targets;
    res.covariance_rows = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(targets.size()), npar);
    Eigen::Index k = 0;  // column of sel_cols
    for (std::size_t r = 0; r < targets.size(); ++r) {
      const int t = targets[r];
      if (free_pos[t] < 0) continue;  // frozen: a zero row
      for (int i = 0; i < nf; ++i)
        res.covariance_rows(static_cast<Eigen::Index>(r), free[i]) =
            jac[t] * sel_cols(i, k) * jac[free[i]];
      ++k;
    }
    res.time_covariance = Seconds(t_cov, Clock::now());
  } else if (cov_free.size() && nf == npar) {
    res.covariance_internal = std::move(cov_free);
    res.covariance = res.covariance_internal;
    for (int p = 0; p < npoi; ++p) {
      res.covariance.row(p) *= jac[p];
      res.covariance.col(p) *= jac[p];
    }
  } else {
    res.covariance = Eigen::MatrixXd::Zero(npar, npar);
    res.covariance_internal = Eigen::MatrixXd::Zero(npar, npar);
  }
  if (cov_free.size()) {
    for (int j = 0; j < nf; ++j)
      for (int i = 0; i < nf; ++i) {
        res.covariance_internal(free[i], free[j]) = cov_free(i, j);
        res.covariance(free[i], free[j]) = jac[free[i]] * cov_free(i, j) * jac[free[j]];
      }
  }
  if (!sel_diag.size()) {
    res.errors = res.covariance.diagonal().cwiseMax(0.0).cwiseSqrt();
    res.time_covariance = Seconds(t_cov, Clock::now());
  }

  // Saturated goodness of fit.
  int nfree_unconstrained = 0;
  for (int i : free)
    if (!lik.params()[i].constrained) ++nfree_unconstrained;
  res.gof_chi2 = 2.0 * res.nll;
  res.gof_ndf = static_cast<int>(lik.model().nbins) - nfree_unconstrained;
  res.gof_p = ChiSquarePValue(res.gof_chi2, res.gof_ndf);
  // Bins whose yields are beyond the representable range (one pass over the expected yields):
  // their curvature was lost (n / L^2 = 0 or inf), so even a "converged" fit is wrong there. The
  // fit fails, naming them.
  if (!bins_described) {
    const std::string bad = DescribeBadBins(lik, res.x, res.status != FitStatus::kConverged);
    if (!bad.empty()) {
      if (res.status == FitStatus::kConverged) res.status = FitStatus::kFailed;
      res.message += (res.message.empty() ? "" : "; ") + bad;
    }
  }
  res.time_total = Seconds(t_start, Clock::now());
  return res;
}

// Bounds (Model::lower_bounds / upper_bounds) by an active set around the free Newton fit:
// parameters that end outside their box are held at the bound and the others refitted; a held
// parameter whose gradient pulls it back inside by more than the EDM tolerance is released. At
// the end every floating parameter is inside its box and every held one satisfies the KKT sign
// condition, i.e. the result is the minimum over the box (docs/histfactory.md "Bounds and fixed
// parameters").
FitResult Fit(const Likelihood& lik, const FitOptions& options) {
  const Model& m = lik.model();
  const int npar = lik.num_params();
  const int npoi = m.num_signals;
  const bool has_bounds = !m.lower_bounds.empty() || !m.upper_bounds.empty();
  bool has_fixed = false;
  for (char f : m.fixed) has_fixed = has_fixed || f;
  if (!has_bounds && !has_fixed) return FitFree(lik, options);
  std::string err;
  if (!options.IsValid(npar, &err)) throw std::invalid_argument(err);
  const auto t_start = Clock::now();
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  Eigen::VectorXd lo = Eigen::VectorXd::Constant(npar, -kInfinity),
                  hi = Eigen::VectorXd::Constant(npar, kInfinity);
  for (int s = 0; s < m.num_systematics(); ++s) {
    if (!m.lower_bounds.empty()) lo[npoi + s] = m.lower_bounds[s];
    if (!m.upper_bounds.empty()) hi[npoi + s] = m.upper_bounds[s];
  }
  std::vector<bool> base = options.frozen.empty() ? std::vector<bool>(npar, false) : options.frozen;
  for (int s = 0; s < static_cast<int>(m.fixed.size()); ++s)
    if (m.fixed[s]) base[npoi + s] = true;
  FitOptions o = options;
  Eigen::VectorXd x = options.initial_params.size() ? options.initial_params : lik.InitialParams();
  for (int i = 0; i < npar; ++i)
    if (!base[i]) x[i] = std::clamp(x[i], lo[i], hi[i]);
  std::vector<bool> active(npar, false);
  FitResult res;
  int evaluations = 0, iterations = 0;
  const int max_rounds = 2 * npar + 5;
  for (int round = 0; round < max_rounds; ++round) {
    o.frozen = base;
    for (int i = 0; i < npar; ++i) o.frozen[i] = o.frozen[i] || active[i];
    o.initial_params = x;
    res = FitFree(lik, o);
    evaluations += res.evaluations;
    iterations += res.iterations;
    if (res.status == FitStatus::kFailed) break;
    // Floating parameters outside their box: hold them at the bound.
    bool outside = false;
    for (int i = 0; i < npar; ++i) {
      if (o.frozen[i] || (res.x[i] >= lo[i] && res.x[i] <= hi[i])) continue;
      outside = true;
      active[i] = true;
    }
    x = res.x;
    for (int i = 0; i < npar; ++i)
      if (active[i]) x[i] = std::clamp(x[i], lo[i], hi[i]);
    if (outside) continue;
    // Held parameters the NLL pulls back inside: release the one with the largest predicted
    // decrease g_i^2 / (2 H_ii), if above the EDM tolerance.
    bool any_active = false;
    for (int i = 0; i < npar; ++i) any_active = any_active || active[i];
    if (!any_active) break;
    Eigen::VectorXd g, diag;
    lik.ValueAndGradient(res.x, &g);
    if (res.hessian.rows() == npar)
      diag = res.hessian.diagonal();
    else
      lik.HessianDiagonal(res.x, &diag);
    int release = -1;
    double best = options.edm_tolerance;
    for (int i = 0; i < npar; ++i) {
      if (!active[i]) continue;
      const bool at_lo = res.x[i] <= lo[i], at_hi = res.x[i] >= hi[i];
      const bool inward = (at_lo && g[i] < 0) || (at_hi && g[i] > 0);
      if (!inward || !(diag[i] > 0)) continue;
      const double gain = 0.5 * g[i] * g[i] / diag[i];
      if (gain > best) {
        best = gain;
        release = i;
      }
    }
    if (release < 0) break;
    active[release] = false;
    if (round + 1 == max_rounds) {
      res.status = FitStatus::kNotConverged;
      res.message = "the active set of bounded parameters did not settle in " +
                    std::to_string(max_rounds) + " rounds";
    }
  }
  res.evaluations = evaluations;
  res.iterations = iterations;
  res.at_bound.clear();
  for (int i = 0; i < npar; ++i)
    if (active[i]) res.at_bound.push_back(i);
  res.time_total = Seconds(t_start, Clock::now());
  return res;
}

}  // namespace lepus::engine
