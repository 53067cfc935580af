#include "trust_region.h"

#include "linalg.h"
#include "spd.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <memory>

namespace lepus::engine::detail {

namespace {

std::unique_ptr<CholeskyFactor> Factor(const Eigen::MatrixXd& hess, double lambda) {
  Eigen::MatrixXd shifted = hess;
  shifted.diagonal().array() += lambda;
  return std::make_unique<CholeskyFactor>(shifted);
}

}  // namespace

Eigen::VectorXd TrustRegionStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                                double radius, double* lambda_out) {
  // hess is the Hessian in scaled variables (diagonal ~ 1 where the curvature is positive), so
  // shifts of O(1e-6 .. 10) cover the relevant range; each trial costs one factorisation.
  const double hnorm = std::max(hess.cwiseAbs().rowwise().sum().maxCoeff(), 1e-300);
  double lambda = 0.0;
  double lambda_lo = 0.0;  // a shift known to be too small (H + lambda I not PD), or 0
  std::unique_ptr<CholeskyFactor> chol = Factor(hess, 0.0);
  if (!chol->ok()) {
    // Bracket a feasible shift by factors of 10, starting from -min(diag) (necessary, not
    // sufficient), then refine downwards once by bisection in log space.
    lambda_lo = std::max(0.0, -hess.diagonal().minCoeff());
    lambda = std::max(lambda_lo * 1.01, 1e-6 * hnorm);
    for (int guard = 0; guard < 40; ++guard) {
      chol = Factor(hess, lambda);
      if (chol->ok()) break;
      lambda_lo = lambda;
      lambda *= 10.0;
    }
    if (!chol->ok()) {  // pathological (non-finite entries): steepest descent to the boundary
      *lambda_out = lambda;
      return -radius * grad / std::max(grad.norm(), 1e-300);
    }
  }
  Eigen::VectorXd p = chol->Solve(-grad);
  double pnorm = p.norm();
  if (lambda == 0.0 && pnorm <= radius) {
    *lambda_out = 0.0;
    return p;
  }
  // Moré-Sorensen iteration on phi(lambda) = 1/radius - 1/|p(lambda)| (a trust-region step need
  // not be exact: |p| within 10% of the radius, at most 12 factorisations).
  double lambda_hi = lambda + grad.norm() / radius + hnorm;
  for (int it = 0; it < 12; ++it) {
    if (std::abs(pnorm - radius) <= 0.1 * radius || (pnorm < radius && lambda == 0.0)) break;
    if (pnorm < radius)
      lambda_hi = std::min(lambda_hi, lambda);
    else
      lambda_lo = std::max(lambda_lo, lambda);
    const Eigen::VectorXd q = chol->matrixL().triangularView<Eigen::Lower>().solve(p);
    double next = lambda + (pnorm / q.norm()) * (pnorm / q.norm()) * (pnorm - radius) / radius;
    if (!(next > lambda_lo) || !(next < lambda_hi) || !std::isfinite(next))
      next = 0.5 * (lambda_lo + lambda_hi);
    std::unique_ptr<CholeskyFactor> trial = Factor(hess, next);
    if (!trial->ok()) {
      lambda_lo = next;
      continue;
    }
    lambda = next;
    chol = std::move(trial);
    p = chol->Solve(-grad);
    pnorm = p.norm();
    if (lambda_hi - lambda_lo <= 1e-12 * std::max(1.0, lambda_hi)) break;
  }
  // Hard case / saddle point: the gradient has (almost) no component along the negative
  // curvature, so the shifted step stays well inside the region. Move to the boundary along the
  // direction of most negative curvature, found by inverse iteration with the factorisation of
  // H + lambda I (lambda just above -lambda_min, so that direction dominates quickly).
  if (lambda > 0 && pnorm < 0.5 * radius) {
    Eigen::VectorXd z = Eigen::VectorXd::Ones(grad.size()).normalized();
    for (int it = 0; it < 30; ++it) {
      Eigen::VectorXd zn = chol->Solve(z);
      const double nz = zn.norm();
      if (!(nz > 0) || !std::isfinite(nz)) break;
      zn /= nz;
      const bool done = (zn - z).norm() < 1e-6 || (zn + z).norm() < 1e-6;
      z = zn;
      if (done) break;
    }
    if (z.dot(hess * z) < 0) {
      if (z.dot(grad) > 0) z = -z;
      const double pz = p.dot(z);
      const double tau = -pz + std::sqrt(pz * pz + radius * radius - pnorm * pnorm);
      p += tau * z;
      pnorm = p.norm();
    }
  }
  // Never leave the region by more than rounding.
  if (pnorm > radius * 1.1) p *= radius / pnorm;
  *lambda_out = lambda;
  return p;
}

Eigen::VectorXd SteihaugStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                             double radius, int max_iterations) {
  const Eigen::Index n = grad.size();
  Eigen::VectorXd z = Eigen::VectorXd::Zero(n), r = grad, d = -grad;
  const double gnorm = grad.norm();
  if (!(gnorm > 0)) return z;
  const double tol = std::min(0.5, std::sqrt(gnorm)) * gnorm;
  // Point on the boundary along d from z: tau >= 0 with |z + tau d| = radius.
  auto to_boundary = [&](const Eigen::VectorXd& zz, const Eigen::VectorXd& dd) {
    const double a = dd.squaredNorm(), b = 2 * zz.dot(dd), c = zz.squaredNorm() - radius * radius;
    const double tau = (-b + std::sqrt(std::max(b * b - 4 * a * c, 0.0))) / (2 * a);
    return Eigen::VectorXd(zz + tau * dd);
  };
  for (int it = 0; it < max_iterations && it < 2 * n; ++it) {
    const Eigen::VectorXd hd = hess * d;
    const double curv = d.dot(hd);
    if (curv <= 0) return to_boundary(z, d);
    const double alpha = r.squaredNorm() / curv;
    const Eigen::VectorXd zn = z + alpha * d;
    if (zn.norm() >= radius) return to_boundary(z, d);
    const Eigen::VectorXd rn = r + alpha * hd;
    if (rn.norm() < tol) return zn;
    const double beta = rn.squaredNorm() / r.squaredNorm();
    d = -rn + beta * d;
    z = zn;
    r = rn;
  }
  return z;
}

bool InverseSPD(const Eigen::MatrixXd& a, Eigen::MatrixXd* out) {
  SpdFactor chol(a);
  if (!chol.ok()) return false;
  *out = chol.Inverse();
  return true;
}

Eigen::VectorXd DoglegStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                           const Eigen::VectorXd& newton, const Eigen::VectorXd& d, double radius) {
  const Eigen::VectorXd pn = newton.cwiseProduct(d);  // scaled Newton step
  const double nn = pn.norm();
  if (nn <= radius) return newton;
  // Scaled gradient gs = g / d and curvature along it: gs^T Hs gs = v^T H v with v = g / d^2.
  const Eigen::VectorXd gs = grad.cwiseQuotient(d);
  const Eigen::VectorXd v = gs.cwiseQuotient(d);
  const double gg = gs.squaredNorm();
  const double curv = v.dot(hess * v);
  Eigen::VectorXd ps;
  if (!(curv > 0) || !(gg > 0)) {
    ps = -radius * gs / std::sqrt(std::max(gg, 1e-300));
  } else {
    const Eigen::VectorXd pc = -(gg / curv) * gs;  // Cauchy point
    const double cn = pc.norm();
    if (cn >= radius) {
      ps = pc * (radius / cn);
    } else {
      // |pc + s (pn - pc)| = radius, s in [0, 1]
      const Eigen::VectorXd dlt = pn - pc;
      const double a = dlt.squaredNorm(), b = 2 * pc.dot(dlt), c = cn * cn - radius * radius;
      const double s = (-b + std::sqrt(std::max(b * b - 4 * a * c, 0.0))) / (2 * a);
      ps = pc + s * dlt;
    }
  }
  return ps.cwiseQuotient(d);
}

}  // namespace lepus::engine::detail
