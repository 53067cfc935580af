#include "minimizer.h"

#include "linalg.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

namespace lepus::engine::detail {

namespace {

bool Factor(const Eigen::MatrixXd& hess, double lambda, Eigen::LLT<Eigen::MatrixXd>* llt) {
  Eigen::MatrixXd shifted = hess;
  shifted.diagonal().array() += lambda;
  llt->compute(shifted);
  return llt->info() == Eigen::Success;
}

}  // namespace

Eigen::VectorXd TrustRegionStep(const Eigen::MatrixXd& hess, const Eigen::VectorXd& grad,
                                double radius, double* lambda_out) {
  const Eigen::Index n = grad.size();
  Eigen::LLT<Eigen::MatrixXd> llt;
  double lambda = 0.0;
  // Lower bound for lambda: any lambda with H + lambda I not positive definite.
  double lambda_lo = 0.0;
  bool lo_is_bad = false;
  const double hnorm = std::max(hess.cwiseAbs().rowwise().sum().maxCoeff(), 1e-300);
  if (!Factor(hess, 0.0, &llt)) {
    // Find a feasible shift: start at the Gershgorin-style estimate, grow geometrically.
    double lmin_diag = hess.diagonal().minCoeff();
    lambda_lo = std::max(0.0, -lmin_diag);
    lo_is_bad = true;
    lambda = std::max(lambda_lo, 1e-10 * hnorm);
    int guard = 0;
    while (!Factor(hess, lambda, &llt) && guard++ < 200) {
      lambda_lo = lambda;
      lambda = std::max(2.0 * lambda, lambda + 1e-10 * hnorm);
    }
  }
  Eigen::VectorXd p = llt.solve(-grad);
  double pnorm = p.norm();
  if (lambda == 0.0 && pnorm <= radius) {
    *lambda_out = 0.0;
    return p;
  }
  // Moré-Sorensen iteration on phi(lambda) = 1/radius - 1/|p(lambda)|.
  double lambda_hi = std::max(lambda, 0.0) + grad.norm() / radius + hnorm;
  for (int it = 0; it < 50; ++it) {
    if (std::abs(pnorm - radius) <= 0.05 * radius) break;
    if (pnorm < radius) lambda_hi = std::min(lambda_hi, lambda);
    else lambda_lo = std::max(lambda_lo, lambda), lo_is_bad = false;
    // Newton update: q = L^-1 p.
    Eigen::VectorXd q = llt.matrixL().solve(p);
    double next = lambda + (pnorm / q.norm()) * (pnorm / q.norm()) * (pnorm - radius) / radius;
    if (!(next > lambda_lo) || !(next < lambda_hi) || !std::isfinite(next))
      next = 0.5 * (lambda_lo + lambda_hi);
    if (next <= lambda_lo) next = lambda_lo + 1e-12 * hnorm;
    Eigen::LLT<Eigen::MatrixXd> trial;
    if (!Factor(hess, next, &trial)) {
      lambda_lo = next;
      lo_is_bad = true;
      continue;
    }
    lambda = next;
    llt = trial;
    p = llt.solve(-grad);
    pnorm = p.norm();
    if (lambda_hi - lambda_lo <= 1e-14 * std::max(1.0, lambda_hi)) break;
  }
  (void)lo_is_bad;
  // Hard case / saddle point: the gradient has (almost) no component along the negative
  // curvature, so the shifted Newton step stays inside the region. Move to the boundary along
  // the eigenvector of the smallest eigenvalue (only reached when H is indefinite).
  if (lambda > 0 && pnorm < 0.5 * radius) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(hess);
    if (es.info() == Eigen::Success && es.eigenvalues()[0] < 0) {
      Eigen::VectorXd z = es.eigenvectors().col(0);
      if (z.dot(grad) > 0) z = -z;
      // tau >= 0 with |p + tau z| = radius
      const double pz = p.dot(z);
      const double tau = -pz + std::sqrt(pz * pz + radius * radius - pnorm * pnorm);
      p += tau * z;
      pnorm = p.norm();
    }
  }
  (void)n;
  // Never leave the region by more than rounding.
  if (pnorm > radius * 1.05) p *= radius / pnorm;
  *lambda_out = lambda;
  return p;
}

bool InverseSPD(const Eigen::MatrixXd& a, Eigen::MatrixXd* out) {
  CholeskyFactor chol(a);
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
