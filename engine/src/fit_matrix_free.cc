// Trust-region Newton-CG with exact Hessian-vector products (Likelihood::HessianVectorProduct)
// for models too large for a dense Hessian (FitMethod::kMatrixFree). Memory and time per
// iteration are O(non-zero tensor entries x CG iterations); no num_params^2 object exists.
//
// Iteration: value, gradient and Hessian diagonal at x; Jacobi scaling D = sqrt(|diag H|)
// (monotone, as in the dense method); Steihaug-Toint CG on the scaled subproblem within the trust
// radius, to a relative residual min(0.5, sqrt|g|) (inexact Newton), tightened to cg_tolerance
// once the step is interior and small; EDM = -g.p/2 from the interior Newton step. After
// convergence, covariance rows of the targets by preconditioned CG solves H c = e_t.
#include "fit_matrix_free.h"
#include "spd.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Eigenvalues>

namespace lepus::engine::detail {

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using Op = std::function<void(const Eigen::VectorXd&, Eigen::VectorXd*)>;

// Steihaug-Toint CG for min g.p + p.Hp/2, |p| <= radius (scaled space). Returns the step; sets
// *interior (the step solves H p = -g to rtol inside the region) and counts iterations.
Eigen::VectorXd Steihaug(const Op& hv, const Eigen::VectorXd& g, double radius, double rtol,
                         int maxit, bool* interior, int* iters) {
  const Eigen::Index n = g.size();
  Eigen::VectorXd z = Eigen::VectorXd::Zero(n), r = g, d = -g, hd(n);
  *interior = false;
  const double tol = rtol * g.norm();
  auto to_boundary = [&](const Eigen::VectorXd& zz, const Eigen::VectorXd& dd) {
    const double a = dd.squaredNorm(), b = 2 * zz.dot(dd), c = zz.squaredNorm() - radius * radius;
    return Eigen::VectorXd(zz +
                           ((-b + std::sqrt(std::max(b * b - 4 * a * c, 0.0))) / (2 * a)) * dd);
  };
  if (!(g.norm() > 0)) {
    *interior = true;
    return z;
  }
  for (int it = 0; it < maxit; ++it) {
    ++*iters;
    hv(d, &hd);
    const double curv = d.dot(hd);
    if (curv <= 0) return to_boundary(z, d);
    const double alpha = r.squaredNorm() / curv;
    Eigen::VectorXd zn = z + alpha * d;
    if (zn.norm() >= radius) return to_boundary(z, d);
    Eigen::VectorXd rn = r + alpha * hd;
    if (rn.norm() <= tol) {
      *interior = true;
      return zn;
    }
    const double beta = rn.squaredNorm() / r.squaredNorm();
    d = -rn + beta * d;
    z = std::move(zn);
    r = std::move(rn);
  }
  *interior = true;  // iteration limit: best interior approximation
  return z;
}

// Outcome of a preconditioned CG solve.
enum class PcgOutcome { kConverged, kNegativeCurvature, kNotConverged };

// Preconditioned CG for H x = b (H SPD). Jacobi-preconditioned CG is Lanczos on the Jacobi-scaled
// matrix D^-1/2 H D^-1/2 (D = diag H): its coefficients give the tridiagonal Lanczos matrix T, whose
// extreme eigenvalues (Ritz values) estimate those of the scaled Hessian in the Krylov space of b.
// *ritz_ratio = smallest / largest Ritz value (an upper bound of lambda_min / lambda_max over that
// space; 1 when no iteration ran). *residual = |r| / |b| at the end.
PcgOutcome Pcg(const Op& hv, const Eigen::VectorXd& b, const Eigen::VectorXd& inv_diag, double rtol,
               int maxit, Eigen::VectorXd* x, int* iters, double* ritz_ratio, double* residual) {
  const Eigen::Index n = b.size();
  x->setZero(n);
  Eigen::VectorXd r = b, z = inv_diag.cwiseProduct(r), p = z, hp(n);
  double rz = r.dot(z);
  const double tol = rtol * b.norm();
  std::vector<double> alphas, betas;
  auto finish = [&](PcgOutcome o) {
    *residual = b.norm() > 0 ? r.norm() / b.norm() : 0.0;
    *ritz_ratio = 1.0;
    const std::size_t k = alphas.size();
    if (k > 0) {
      Eigen::VectorXd diag(static_cast<Eigen::Index>(k)),
          sub(static_cast<Eigen::Index>(k > 1 ? k - 1 : 0));
      for (std::size_t j = 0; j < k; ++j) {
        diag[j] = 1.0 / alphas[j] + (j > 0 ? betas[j - 1] / alphas[j - 1] : 0.0);
        if (j + 1 < k) sub[j] = std::sqrt(betas[j]) / alphas[j];
      }
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es;
      es.computeFromTridiagonal(diag, sub, Eigen::EigenvaluesOnly);
      if (es.info() == Eigen::Success && es.eigenvalues().size() > 0 &&
          es.eigenvalues().maxCoeff() > 0)
        *ritz_ratio = es.eigenvalues().minCoeff() / es.eigenvalues().maxCoeff();
      else
        *ritz_ratio = kNaN;  // the Ritz values could not be computed: not a confident number
    }
    return o;
  };
  for (int it = 0; it < maxit; ++it) {
    if (r.norm() <= tol) return finish(PcgOutcome::kConverged);
    ++*iters;
    hv(p, &hp);
    const double curv = p.dot(hp);
    if (!(curv > 0)) return finish(PcgOutcome::kNegativeCurvature);
    const double alpha = rz / curv;
    *x += alpha * p;
    r -= alpha * hp;
    z = inv_diag.cwiseProduct(r);
    const double rzn = r.dot(z);
    alphas.push_back(alpha);
    betas.push_back(rzn / rz);
    p = z + (rzn / rz) * p;
    rz = rzn;
  }
  return finish(r.norm() <= 10 * tol ? PcgOutcome::kConverged : PcgOutcome::kNotConverged);
}

}  // namespace

FitResult FitMatrixFree(const Likelihood& lik, const FitOptions& options) {
  const auto t_start = Clock::now();
  const int npar = lik.num_params();
  const Model& m = lik.model();
  FitResult res;
  res.method = FitMethod::kMatrixFree;
  res.frozen = options.frozen.empty() ? std::vector<bool>(npar, false) : options.frozen;
  Eigen::VectorXd mask = Eigen::VectorXd::Ones(npar);  // 0 for frozen parameters
  for (int i = 0; i < npar; ++i)
    if (res.frozen[i]) mask[i] = 0.0;
  Eigen::VectorXd x = options.initial_params.size() ? options.initial_params : lik.InitialParams();
  double t_eval = 0.0, t_lin = 0.0;
  Eigen::VectorXd grad, diag, dscale = Eigen::VectorXd::Ones(npar);
  auto eval = [&](const Eigen::VectorXd& at, bool second) {
    const auto t0 = Clock::now();
    const double f = lik.ValueAndGradient(at, &grad);
    if (second) lik.HessianDiagonal(at, &diag);
    t_eval += Seconds(t0, Clock::now());
    ++res.evaluations;
    return f;
  };
  int hv_calls = 0;
  // Hessian-vector product in the scaled, masked space: D^-1 H D^-1 y (frozen entries 0).
  auto make_op = [&](const Eigen::VectorXd& at, const Eigen::VectorXd& d) -> Op {
    return [&, at, d](const Eigen::VectorXd& y, Eigen::VectorXd* out) {
      const auto t0 = Clock::now();
      Eigen::VectorXd v = y.cwiseQuotient(d).cwiseProduct(mask);
      lik.HessianVectorProduct(at, v, out);
      *out = out->cwiseProduct(mask).cwiseQuotient(d);
      t_eval += Seconds(t0, Clock::now());
      ++hv_calls;
    };
  };

  double f = eval(x, true);
  bool converged = false;
  std::string message;
  double radius = options.initial_trust_radius;
  int iter = 0;
  if (!std::isfinite(f) || !grad.allFinite()) {
    message = "the NLL or its derivatives are not finite at the starting point";
  } else {
    for (; iter < options.max_iterations; ++iter) {
      if (options.cancel && options.cancel()) {
        message = kCancelledMessage;
        break;
      }
      const auto t0 = Clock::now();
      for (int i = 0; i < npar; ++i)
        dscale[i] =
            std::max(iter == 0 ? 0.0 : dscale[i], std::sqrt(std::max(std::abs(diag[i]), 1e-300)));
      const Eigen::VectorXd gs = grad.cwiseProduct(mask).cwiseQuotient(dscale);
      const Op op = make_op(x, dscale);
      bool interior = false;
      const double rtol = std::min(0.5, std::sqrt(gs.norm()));
      Eigen::VectorXd ps =
          Steihaug(op, gs, radius, rtol, options.cg_max_iterations, &interior, &res.cg_iterations);
      if (interior) {
        // Near the minimum: solve the Newton system accurately for the EDM and the final step.
        const double edm_est = -0.5 * gs.dot(ps);
        if (edm_est < 100 * options.edm_tolerance) {
          bool in2 = false;
          ps = Steihaug(op, gs, 1e300, options.cg_tolerance, options.cg_max_iterations, &in2,
                        &res.cg_iterations);
          const double edm = -0.5 * gs.dot(ps);
          if (in2 && edm < options.edm_tolerance) {
            Eigen::VectorXd xn = x + ps.cwiseQuotient(dscale).cwiseProduct(mask);
            const double fn = lik.Value(xn);
            if (std::isfinite(fn) && fn <= f + 1e-12 * std::max(1.0, std::abs(f))) {
              x = xn;
              f = eval(x, true);
            }
            t_lin += Seconds(t0, Clock::now());
            converged = true;
            break;
          }
        }
      }
      Eigen::VectorXd hps;
      op(ps, &hps);
      const double pred = -(gs.dot(ps) + 0.5 * ps.dot(hps));
      const Eigen::VectorXd p = ps.cwiseQuotient(dscale).cwiseProduct(mask);
      t_lin += Seconds(t0, Clock::now());
      if (!(pred > 0)) {
        if (gs.norm() == 0.0) {
          converged = true;
          break;
        }
        radius *= 0.25;
        continue;
      }
      const Eigen::VectorXd xn = x + p;
      const double fn = lik.Value(xn);
      const double rho = std::isfinite(fn) ? (f - fn) / pred : -1.0;
      const double pnorm = ps.norm();
      if (rho < 0.25)
        radius = 0.25 * std::min(radius, pnorm);
      else if (rho > 0.75 && pnorm > 0.9 * radius)
        radius = std::min(3.0 * radius, options.max_trust_radius);
      if (rho > 1e-4) {
        x = xn;
        f = eval(x, true);
      }
      if (radius < 1e-12) {
        message = "trust region collapsed (radius < 1e-12)";
        break;
      }
    }
  }
  res.iterations = iter;
  res.x = x;
  res.nll = f;
  if (converged)
    res.status = FitStatus::kConverged;
  else if (iter >= options.max_iterations) {
    res.status = FitStatus::kNotConverged;
    res.message = "iteration limit (" + std::to_string(options.max_iterations) + ") reached";
  } else {
    res.status = FitStatus::kFailed;
    res.message = message;
  }

  // Reported values; covariance rows of the targets by PCG.
  const int npoi = m.num_signals;
  res.values = x;
  Eigen::VectorXd jac = Eigen::VectorXd::Ones(npar);
  for (int p = 0; p < npoi; ++p) {
    res.values[p] = lik.PoiValue(x[p]);
    jac[p] = lik.PoiDerivative(x[p]);
  }
  res.errors = Eigen::VectorXd::Constant(npar, kNaN);
  for (int i = 0; i < npar; ++i)
    if (res.frozen[i]) res.errors[i] = 0.0;
  const auto t_cov = Clock::now();
  std::vector<int> targets = options.covariance_targets;
  if (targets.empty())
    for (int i = 0; i < npar; ++i)
      if (lik.params()[i].kind != ParamKind::kNuisance && !res.frozen[i]) targets.push_back(i);
  if (options.compute_covariance && grad.allFinite() && message != kCancelledMessage) {
    Eigen::VectorXd inv_diag(npar);
    for (int i = 0; i < npar; ++i) inv_diag[i] = mask[i] / std::max(std::abs(diag[i]), 1e-300);
    const Op hop = [&](const Eigen::VectorXd& v, Eigen::VectorXd* out) {
      lik.HessianVectorProduct(x, v.cwiseProduct(mask), out);
      *out = out->cwiseProduct(mask);
    };
    res.covariance_rows = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(targets.size()), npar);
    bool ok = true;
    std::string near_singular;  // why the rows are not trusted ("" = they are)
    double min_ratio = 1.0;
    for (std::size_t k = 0; k < targets.size(); ++k) {
      const int t = targets[k];
      if (res.frozen[t]) continue;
      Eigen::VectorXd c;
      double ratio = 1.0, residual = 0.0;
      const PcgOutcome o =
          Pcg(hop, Eigen::VectorXd::Unit(npar, t), inv_diag, options.cg_tolerance,
              options.cg_max_iterations, &c, &res.cg_iterations, &ratio, &residual);
      if (o == PcgOutcome::kNegativeCurvature) {
        ok = false;
        break;
      }
      min_ratio = std::min(min_ratio, std::isnan(ratio) ? 0.0 : ratio);
      const std::string& name = lik.params()[t].name;
      if (o == PcgOutcome::kNotConverged) {
        char buf[160];
        std::snprintf(buf, sizeof(buf),
                      " did not converge in %d iterations (relative residual %.3g > %.3g)",
                      options.cg_max_iterations, residual, options.cg_tolerance);
        near_singular = "CG for the covariance row of " + name + buf;
        break;
      }
      if (!(ratio > options.singular_ratio)) {
        // H c = e_t with a nearly singular H: c is dominated by the near-null direction; in the
        // scaled coordinates (c_i sqrt(H_ii)) it is that eigenvector.
        Eigen::VectorXd dir =
            c.cwiseProduct(inv_diag.cwiseInverse().cwiseSqrt().cwiseProduct(mask));
        for (Eigen::Index i = 0; i < dir.size(); ++i)
          if (!std::isfinite(dir[i])) dir[i] = 0.0;
        if (dir.norm() > 0) dir.normalize();
        std::vector<std::string> names;
        for (const auto& p : lik.params()) names.push_back(p.name);
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.3g", ratio);
        near_singular = "Hessian near-singular in the covariance row of " + name +
                        " (Lanczos lambda_min/lambda_max = " + buf +
                        " after scaling to unit diagonal): direction dominated by " +
                        DescribeDirection(dir, names);
        break;
      }
      res.covariance_rows.row(k) = (jac[t] * c.cwiseProduct(jac)).transpose();
      res.errors[t] = std::sqrt(std::max(res.covariance_rows(k, t), 0.0));
    }
    res.covariance_row_params = targets;
    res.hessian_positive_definite = ok;
    res.hessian_scaled_ratio = ok ? min_ratio : kNaN;
    if (ok && near_singular.empty()) {
      res.covariance_status = CovarianceStatus::kTargetsOnly;
    } else if (ok) {
      // Not a number to trust: the rows stay zero and the errors NaN.
      res.covariance_status = CovarianceStatus::kNearSingular;
      res.covariance_message = near_singular;
      res.covariance_rows.setZero();
      for (int t : targets)
        if (!res.frozen[t]) res.errors[t] = kNaN;
    } else if (res.status == FitStatus::kConverged) {
      res.status = FitStatus::kFailed;
      res.message =
          "Hessian at the minimum is not positive definite (CG met non-positive curvature)";
    }
  }
  res.edm = 0.0;
  if (grad.allFinite() && converged) {
    // EDM at the final point from one accurate CG solve in the scaled space.
    for (int i = 0; i < npar; ++i) dscale[i] = std::sqrt(std::max(std::abs(diag[i]), 1e-300));
    const Eigen::VectorXd gs = grad.cwiseProduct(mask).cwiseQuotient(dscale);
    bool in = false;
    const Eigen::VectorXd ps = Steihaug(make_op(x, dscale), gs, 1e300, options.cg_tolerance,
                                        options.cg_max_iterations, &in, &res.cg_iterations);
    res.edm = -0.5 * gs.dot(ps);
  }
  res.time_covariance = Seconds(t_cov, Clock::now());
  res.time_evaluation = t_eval;
  res.time_linear_algebra = t_lin;

  int nfree_unconstrained = 0;
  for (int i = 0; i < npar; ++i)
    if (!res.frozen[i] && !lik.params()[i].constrained) ++nfree_unconstrained;
  res.gof_chi2 = 2.0 * res.nll;
  res.gof_ndf = static_cast<int>(m.nbins) - nfree_unconstrained;
  res.gof_p = ChiSquarePValue(res.gof_chi2, res.gof_ndf);
  res.time_total = Seconds(t_start, Clock::now());
  (void)hv_calls;
  return res;
}

}  // namespace lepus::engine::detail
