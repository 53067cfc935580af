#include "lepus/engine/impacts.h"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <Eigen/Cholesky>
#include <Eigen/LU>

#include "linalg.h"
#include "spd.h"
#include "trust_region.h"

namespace lepus::engine {

namespace {

std::vector<int> FreeParams(const FitResult& r) {
  std::vector<int> f;
  for (int i = 0; i < static_cast<int>(r.frozen.size()); ++i)
    if (!r.frozen[i]) f.push_back(i);
  return f;
}

// Inverse of the Hessian restricted to `idx`, embedded in a [n x n] matrix (zeros elsewhere).
// Returns false when the restricted Hessian is not positive definite.
bool InverseOn(const Eigen::MatrixXd& hess, const std::vector<int>& idx, Eigen::MatrixXd* out) {
  const int n = static_cast<int>(hess.rows()), m = static_cast<int>(idx.size());
  Eigen::MatrixXd h(m, m);
  for (int j = 0; j < m; ++j)
    for (int i = 0; i < m; ++i) h(i, j) = hess(idx[i], idx[j]);
  Eigen::MatrixXd inv;
  if (!detail::InverseSPD(h, &inv)) return false;
  out->setZero(n, n);
  for (int j = 0; j < m; ++j)
    for (int i = 0; i < m; ++i) (*out)(idx[i], idx[j]) = inv(i, j);
  return true;
}

// Grouped impacts of a large group G through the Hessian instead of its covariance block.
// Partitioning the free parameters into G and the rest R, C_GG^-1 (C a)_G = -H_GR H_RR^-1 a_R
// for a target vector a without components in G (block inverse), so
//   impact^2 = (C a)_G^T C_GG^-1 (C a)_G = -(C a)_G . (H_GR H_RR^-1 a_R),
// a product (no cancellation) that needs one factorisation of H_RR, cheap when H_RR has the
// bordered block structure of spd.h (thousands of local nuisances in the group), where the
// direct path factorises the dense |G| x |G| block C_GG. Returns false (nothing written) when
// the direct path is cheaper, a target has components in G, or H_RR is not positive definite.
bool GroupedByHessian(const Likelihood& lik, const FitResult& res, const std::vector<int>& free,
                      const std::vector<int>& group, const Eigen::MatrixXd& cint,
                      const std::vector<Eigen::VectorXd>& cin, int column,
                      Eigen::MatrixXd* grouped) {
  constexpr int kMinGroup = 500;  // below, C_GG's factorisation costs milliseconds
  const int gm = static_cast<int>(group.size());
  if (gm < kMinGroup) return false;
  const int npar = lik.num_params();
  std::vector<char> in_group(npar, 0);
  for (int i : group) in_group[i] = 1;
  for (const auto& a : cin)
    for (int i : group)
      if (a[i] != 0.0) return false;
  std::vector<int> rest;
  for (int i : free)
    if (!in_group[i]) rest.push_back(i);
  const int nr = static_cast<int>(rest.size());
  if (nr == 0) return false;
  const Eigen::MatrixXd& h = res.hessian;
  Eigen::MatrixXd hrr(nr, nr);
  for (int j = 0; j < nr; ++j)
    for (int i = 0; i < nr; ++i) hrr(i, j) = h(rest[i], rest[j]);
  const detail::BlockStructure s = detail::DetectBlockStructure(hrr);
  const double direct = static_cast<double>(gm) * gm * gm / 3.0;
  if (s.flops > 0.5 * direct) return false;
  const detail::SpdFactor f(hrr);
  if (!f.ok()) return false;
  for (std::size_t k = 0; k < cin.size(); ++k) {
    Eigen::VectorXd ar(nr);
    for (int i = 0; i < nr; ++i) ar[i] = cin[k][rest[i]];
    const Eigen::VectorXd z = f.Solve(ar);
    const Eigen::VectorXd ca = cint * cin[k];
    double q = 0.0;
    for (int g : group) {
      double hz = 0.0;
      for (int i = 0; i < nr; ++i) hz += h(g, rest[i]) * z[i];
      q -= ca[g] * hz;
    }
    (*grouped)(static_cast<Eigen::Index>(k), column) = std::sqrt(std::max(q, 0.0));
  }
  return true;
}

}  // namespace

Impacts ComputeImpacts(const Likelihood& lik, const FitResult& res, const ImpactOptions& opt) {
  const Model& m = lik.model();
  const int npar = lik.num_params(), npoi = m.num_signals;
  if (res.covariance_status == CovarianceStatus::kAccurateSelected)
    throw std::invalid_argument(
        "impacts need the full covariance, but the fit computed only the errors and the "
        "target rows (CovarianceExtent::kSelected): fit with CovarianceExtent::kFull");
  if (res.covariance_status != CovarianceStatus::kAccurate)
    throw NumericalError(
        "impacts need an accurate covariance, but the fit's covariance is " +
        ToString(res.covariance_status) +
        (res.covariance_message.empty() ? "" : " (" + res.covariance_message + ")"));
  if (res.x.size() != npar || static_cast<int>(res.frozen.size()) != npar)
    throw std::invalid_argument("fit result does not belong to this likelihood");

  Impacts out;
  out.targets = opt.targets;
  if (out.targets.empty())
    for (int i = 0; i < npar; ++i)
      if (lik.params()[i].kind != ParamKind::kNuisance && !res.frozen[i]) out.targets.push_back(i);
  // Coefficient vectors of every target in reported units (unit vectors for parameters).
  std::vector<Eigen::VectorXd> coef;
  for (int t : out.targets) {
    if (t < 0 || t >= npar)
      throw std::invalid_argument("impact target index " + std::to_string(t) +
                                  " is out of range [0, " + std::to_string(npar) + ")");
    if (res.frozen[t])
      throw std::invalid_argument("impact target " + lik.params()[t].name + " is frozen");
    coef.push_back(Eigen::VectorXd::Unit(npar, t));
    out.target_names.push_back(lik.params()[t].name);
    const auto& info = lik.params()[t];
    const bool phys = opt.physical_units && info.scale > 0;
    out.target_scale.push_back(phys ? info.scale : 1.0);
    out.target_unit.push_back(phys ? info.unit : "");
  }
  for (const auto& comb : opt.combinations) {
    Eigen::VectorXd c = Eigen::VectorXd::Zero(npar);
    double scale = -1.0;
    std::string unit;
    for (const auto& [k, v] : comb.terms) {
      if (k < 0 || k >= npar)
        throw std::invalid_argument("combination " + comb.name + ": parameter index out of range");
      c[k] += v;
      const auto& info = lik.params()[k];
      if (scale < 0) {
        scale = info.scale;
        unit = info.unit;
      } else if (info.scale != scale || info.unit != unit)
        scale = 0.0;
    }
    const bool phys = opt.physical_units && scale > 0;
    out.targets.push_back(-1);
    out.target_names.push_back(comb.name);
    out.target_scale.push_back(phys ? scale : 1.0);
    out.target_unit.push_back(phys ? unit : "");
    coef.push_back(c);
  }
  const int nt = static_cast<int>(coef.size());
  for (int k = 0; k < nt; ++k) coef[k] *= out.target_scale[k];

  // Covariances: reported (mu-space) for nominal impacts; internal (x-space) for the rest, with
  // the coefficients converted by the Jacobian dmu/dx of the POIs.
  const std::vector<int> free = FreeParams(res);
  Eigen::MatrixXd cint_own;  // only when the fit result carries no covariance
  if (res.covariance_internal.rows() != npar && !InverseOn(res.hessian, free, &cint_own))
    throw NumericalError("impacts: the Hessian at the minimum is not positive definite");
  const Eigen::MatrixXd& cint = cint_own.size() ? cint_own : res.covariance_internal;
  const Eigen::MatrixXd& crep = res.covariance;
  Eigen::VectorXd jac = Eigen::VectorXd::Ones(npar);
  for (int p = 0; p < npoi; ++p) jac[p] = lik.PoiDerivative(res.x[p]);
  std::vector<Eigen::VectorXd> cin(nt);
  for (int k = 0; k < nt; ++k) cin[k] = coef[k].cwiseProduct(jac);

  out.total.resize(nt);
  out.nominal = Eigen::MatrixXd::Zero(nt, npar);
  Eigen::MatrixXd crow_rep(nt, npar);  // c^T C (reported)
  for (int k = 0; k < nt; ++k) {
    crow_rep.row(k) = (crep * coef[k]).transpose();
    out.total[k] = std::sqrt(std::max(coef[k].dot(crep * coef[k]), 0.0));
    for (int j : free)
      if (crep(j, j) > 0) out.nominal(k, j) = crow_rep(k, j) / std::sqrt(crep(j, j));
  }

  // Groups.
  std::vector<SystematicGroup> groups = m.groups;
  groups.insert(groups.end(), opt.extra_groups.begin(), opt.extra_groups.end());
  for (const auto& g : opt.extra_groups)
    if (g.members.empty())
      throw std::invalid_argument("impact group " + g.name + " has no members");
  for (const auto& g : groups) {
    for (int s : g.members)
      if (s < 0 || s >= m.num_systematics())
        throw std::invalid_argument("impact group " + g.name + ": member " + std::to_string(s) +
                                    " is out of range");
  }
  const bool bb = lik.options().bin_by_bin_stat && (lik.bb_kstat().array() > 0).any();
  for (const auto& g : groups) out.group_names.push_back(g.name);
  out.group_names.push_back("stat");
  if (bb) out.group_names.push_back("binByBinStat");
  const int ng = static_cast<int>(out.group_names.size());
  const int istat = static_cast<int>(groups.size());
  out.grouped_nominal = Eigen::MatrixXd::Zero(nt, ng);
  for (int gi = 0; gi < istat; ++gi) {
    std::vector<int> idx;
    for (int s : groups[gi].members)
      if (!res.frozen[npoi + s]) idx.push_back(npoi + s);
    if (idx.empty()) continue;
    const int gm = static_cast<int>(idx.size());
    if (GroupedByHessian(lik, res, free, idx, cint, cin, gi, &out.grouped_nominal)) continue;
    Eigen::MatrixXd cgg(gm, gm);
    for (int j = 0; j < gm; ++j)
      for (int i = 0; i < gm; ++i) cgg(i, j) = crep(idx[i], idx[j]);
    // c^T C_gg^-1 c: the blocked parallel Cholesky (a group can hold thousands of nuisances);
    // LDLT when C_gg is only semi-definite (degenerate nuisances).
    const detail::CholeskyFactor chol(cgg);
    std::unique_ptr<Eigen::LDLT<Eigen::MatrixXd>> ldlt;
    if (!chol.ok()) {
      ldlt = std::make_unique<Eigen::LDLT<Eigen::MatrixXd>>(cgg);
      if (ldlt->info() != Eigen::Success)
        throw NumericalError("impacts: the covariance block of group " + groups[gi].name +
                             " is not positive semi-definite (LDLT failed)");
    }
    for (int k = 0; k < nt; ++k) {
      Eigen::VectorXd c(gm);
      for (int i = 0; i < gm; ++i) c[i] = crow_rep(k, idx[i]);
      const double q = c.dot(chol.ok() ? chol.Solve(c) : Eigen::VectorXd(ldlt->solve(c)));
      out.grouped_nominal(k, gi) = std::sqrt(std::max(q, 0.0));
    }
  }
  // rabbit's "stat" and "binByBinStat" (fitter.py impacts_parms / _cov_stat_floating): the
  // Hessian restricted to S = the floating POIs and unconstrained systematics (every constrained
  // nuisance fixed), inverted with beta held at its profiled value (stat) and with beta profiled;
  // binByBinStat = sqrt(max(0, c^T (H_S^-1 - H_S,nobbb^-1) c)). c is restricted to S, so a
  // constrained NOI gets 0 (rabbit's mask), a combination the part of its form on S.
  Eigen::VectorXd g;
  Eigen::MatrixXd hfixed;
  const Eigen::VectorXd beta = lik.ProfiledBeta(res.x);
  lik.ValueGradientHessianFixedBeta(res.x, beta, &g, &hfixed);
  {
    std::vector<int> idx;
    for (int i : free)
      if (i < npoi || !lik.params()[i].constrained) idx.push_back(i);
    const int ni = static_cast<int>(idx.size());
    // c^T (H restricted to S)^-1 c for every target: one factorisation, a solve per target.
    auto quad = [&](const Eigen::MatrixXd& hess, const char* what) {
      Eigen::MatrixXd hs(ni, ni);
      for (int j = 0; j < ni; ++j)
        for (int i = 0; i < ni; ++i) hs(i, j) = hess(idx[i], idx[j]);
      Eigen::VectorXd q = Eigen::VectorXd::Zero(nt);
      if (ni == 0) return q;
      const detail::SpdFactor chol(hs);
      if (!chol.ok())
        throw NumericalError(std::string("impacts: the ") + what + " is not positive definite");
      for (int k = 0; k < nt; ++k) {
        Eigen::VectorXd c(ni);
        for (int i = 0; i < ni; ++i) c[i] = cin[k][idx[i]];
        q[k] = c.dot(chol.Solve(c));
      }
      return q;
    };
    const Eigen::VectorXd q_nobbb = quad(hfixed, "statistical-only Hessian (beta fixed)");
    for (int k = 0; k < nt; ++k)
      out.grouped_nominal(k, istat) = std::sqrt(std::max(q_nobbb[k], 0.0));
    if (bb) {
      Eigen::MatrixXd hprof_own;
      if (res.hessian.rows() != npar) {
        Eigen::VectorXd gp;
        lik.ValueGradientHessian(res.x, &gp, &hprof_own);
      }
      const Eigen::MatrixXd& hprof = hprof_own.size() ? hprof_own : res.hessian;
      const Eigen::VectorXd q_prof = quad(hprof, "statistical-only Hessian (beta profiled)");
      for (int k = 0; k < nt; ++k)
        out.grouped_nominal(k, istat + 1) = std::sqrt(std::max(q_prof[k] - q_nobbb[k], 0.0));
    }
  }
  if (bb) {
    // binByBinStat_fullcov: sqrt(C_ii - C_ii[beta fixed]) over all floating parameters, by one
    // factorisation of H_fixed and a solve per target (no full inverse).
    const int nfree = static_cast<int>(free.size());
    Eigen::MatrixXd hf(nfree, nfree);
    for (int j = 0; j < nfree; ++j)
      for (int i = 0; i < nfree; ++i) hf(i, j) = hfixed(free[i], free[j]);
    const detail::SpdFactor chol(hf);
    if (!chol.ok())
      throw NumericalError("impacts: the Hessian with beta fixed is not positive definite");
    out.bbstat_fullcov.resize(nt);
    for (int k = 0; k < nt; ++k) {
      Eigen::VectorXd cf(nfree);
      for (int i = 0; i < nfree; ++i) cf[i] = cin[k][free[i]];
      const double d = cin[k].dot(cint * cin[k]) - cf.dot(chol.Solve(cf));
      out.bbstat_fullcov[k] = std::sqrt(std::max(d, 0.0));
    }
  }

  if (!opt.global) return out;
  out.has_global = true;
  Eigen::MatrixXd d_data, d_beta0;
  lik.GlobalObservableDerivatives(res.x, &d_data, &d_beta0);
  Eigen::MatrixXd crow(nt, npar);  // c_int^T C_int
  for (int k = 0; k < nt; ++k) crow.row(k) = (cint * cin[k]).transpose();
  out.global_nuisance = Eigen::MatrixXd::Zero(nt, npar);
  for (int j = npoi; j < npar; ++j) {
    const double cw = lik.params()[j].constraint_weight;
    if (!(cw > 0) || res.frozen[j]) continue;
    // Gaussian: d2 NLL / dtheta dtheta0 = -cw, sigma(theta0) = 1 / sqrt(cw). Poisson (shapesys):
    // -tau / theta and sigma(theta0) = sqrt(theta / tau) (the auxiliary count tau theta0 ~
    // Poisson(tau theta)); both give the column times sqrt(cw) (Poisson: sqrt(tau / theta)).
    const Model& m = lik.model();
    const int s = j - npoi;
    const bool pois =
        !m.constraint_kinds.empty() && m.constraint_kinds[s] == ConstraintKind::kPoisson;
    const double f = pois ? (res.x[j] > 0 ? std::sqrt(cw / res.x[j]) : 0.0) : std::sqrt(cw);
    out.global_nuisance.col(j) = crow.col(j) * f;
  }
  const Eigen::VectorXd& k = lik.bb_kstat();
  // The spread of the data and of beta0 (Poisson sqrt(n), chi-square sigma, covariance fits a
  // factor of the data covariance; gamma sqrt(beta / k), docs/numerics.md).
  Eigen::VectorXd sig_n, sig_b;
  Eigen::MatrixXd data_factor;
  lik.GlobalObservableSigmas(res.x, &sig_n, &sig_b, &data_factor);
  if (data_factor.size() > 0)
    out.global_data = -(crow * d_data) * data_factor;
  else
    out.global_data = -(crow * d_data) * sig_n.asDiagonal();
  out.global_bbstat = -(crow * d_beta0) * sig_b.asDiagonal();
  // External terms: a Gaussian measurement with information H_e on its parameters.
  const auto& ext = m.external_terms;
  out.global_external = Eigen::MatrixXd::Zero(nt, static_cast<Eigen::Index>(ext.size()));
  for (std::size_t e = 0; e < ext.size(); ++e) {
    out.external_names.push_back(ext[e].name);
    if (ext[e].hess.size() == 0) continue;
    const Eigen::MatrixXd h = Eigen::MatrixXd(ext[e].hess);
    const Eigen::MatrixXd hs = 0.5 * (h + h.transpose());
    for (int kk = 0; kk < nt; ++kk) {
      Eigen::VectorXd v(ext[e].params.size());
      for (std::size_t i = 0; i < ext[e].params.size(); ++i)
        v[i] = res.frozen[ext[e].params[i]] ? 0.0 : crow(kk, ext[e].params[i]);
      out.global_external(kk, static_cast<Eigen::Index>(e)) =
          std::sqrt(std::max(v.dot(hs * v), 0.0));
    }
  }

  out.grouped_global = Eigen::MatrixXd::Zero(nt, ng);
  for (int gi = 0; gi < istat; ++gi)
    for (int kk = 0; kk < nt; ++kk) {
      double s2 = 0.0;
      for (int s : groups[gi].members) s2 += std::pow(out.global_nuisance(kk, npoi + s), 2);
      out.grouped_global(kk, gi) = std::sqrt(s2);
    }
  out.global_closure.resize(nt);
  // rabbit's global impacts differ in two columns only: binByBinStat with sigma^2(beta0_b) = 1/k_b
  // (sqrt(d2L_beta/dbeta^2) = sqrt(k_b)/beta_b times dbeta_b/dx C c, identical in rabbit's
  // likelihood-based and Gaussian variants), i.e. our per-bin impact / sqrt(beta_b); and, in the
  // likelihood-based global_impacts only, stat = sqrt(C_ii - sum theta0^2 - sum beta0^2).
  out.rabbit_global_grouped = out.grouped_global;
  out.rabbit_gaussian_global_grouped = out.grouped_global;
  Eigen::VectorXd inv_sqrt_beta = Eigen::VectorXd::Zero(lik.num_betas());
  const bool gamma = lik.bin_by_bin_stat_type() == BinByBinStatType::kGamma;
  for (Eigen::Index b = 0; b < lik.num_betas(); ++b)
    if (k[b] > 0 || sig_b[b] > 0) inv_sqrt_beta[b] = gamma ? 1.0 / std::sqrt(beta[b]) : 1.0;
  for (int kk = 0; kk < nt; ++kk) {
    const double sd = out.global_data.row(kk).squaredNorm();
    const double sb = out.global_bbstat.row(kk).squaredNorm();
    const double sn =
        out.global_nuisance.row(kk).squaredNorm() + out.global_external.row(kk).squaredNorm();
    const double var = std::pow(out.total[kk], 2);
    out.grouped_global(kk, istat) = std::sqrt(sd);
    if (bb) out.grouped_global(kk, istat + 1) = std::sqrt(sb);
    out.global_closure[kk] = var > 0 ? (sn + sd + sb) / var - 1.0 : 0.0;
    const double sb_rabbit =
        out.global_bbstat.row(kk).cwiseProduct(inv_sqrt_beta.transpose()).squaredNorm();
    out.rabbit_gaussian_global_grouped(kk, istat) = std::sqrt(sd);
    // The remainder, NaN when negative (rabbit takes the square root as it is).
    out.rabbit_global_grouped(kk, istat) = std::sqrt(var - sn - (bb ? sb_rabbit : 0.0));
    if (bb) {
      out.rabbit_global_grouped(kk, istat + 1) = std::sqrt(sb_rabbit);
      out.rabbit_gaussian_global_grouped(kk, istat + 1) = std::sqrt(sb_rabbit);
    }
  }
  return out;
}

FitResult RefitWithShiftedNuisance(const Likelihood& lik, const FitResult& res, int nuisance,
                                   double sigmas, const FitOptions& options) {
  const int npar = lik.num_params();
  if (nuisance < 0 || nuisance >= npar)
    throw std::invalid_argument("RefitWithShiftedNuisance: parameter index out of range");
  if (res.frozen[nuisance])
    throw std::invalid_argument("RefitWithShiftedNuisance: nuisance " +
                                lik.params()[nuisance].name + " is frozen");
  FitOptions o = options;
  o.frozen = res.frozen;
  o.frozen[nuisance] = true;
  o.initial_params = res.x;
  o.initial_params[nuisance] = res.x[nuisance] + sigmas * res.errors[nuisance];
  o.compute_covariance = false;
  return Fit(lik, o);
}

std::pair<double, double> ImpactByRefit(const Likelihood& lik, const FitResult& res, int target,
                                        int nuisance, const FitOptions& options) {
  const int npar = lik.num_params();
  if (target < 0 || target >= npar || nuisance < 0 || nuisance >= npar)
    throw std::invalid_argument("ImpactByRefit: parameter index out of range");
  if (res.frozen[nuisance])
    throw std::invalid_argument("ImpactByRefit: nuisance " + lik.params()[nuisance].name +
                                " is frozen");
  double shifts[2];
  for (int d = 0; d < 2; ++d) {
    const FitResult r = RefitWithShiftedNuisance(lik, res, nuisance, d == 0 ? 1.0 : -1.0, options);
    if (!r.ok())
      throw NumericalError("refit with " + lik.params()[nuisance].name + " shifted by " +
                           (d == 0 ? "+1" : "-1") + " sigma did not converge (" +
                           ToString(r.status) + (r.message.empty() ? "" : ": " + r.message) + ")");
    shifts[d] = r.values[target] - res.values[target];
  }
  return {shifts[0], shifts[1]};
}

}  // namespace lepus::engine
