// Yields with uncertainties, projections, per-channel goodness of fit (engine/include/.../yields.h)
// and the Likelihood members they need (BinNll, TotalYieldJacobian, ProcessYields).
#include "lepus/engine/yields.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <Eigen/Cholesky>

#include "likelihood_impl.h"
#include "trust_region.h"

using lepus::engine::detail::AddRowGradient;
using lepus::engine::detail::BinState;
using lepus::engine::detail::ComputeBin;
using lepus::engine::detail::TotalDerivative;

namespace lepus::engine {

namespace {

// Sorted list of the parameters that bin b depends on.
std::vector<int> Touched(const Likelihood::Impl& im, std::int64_t b) {
  if (b < im.model->nbins)
    return std::vector<int>(im.bin_touch.begin() + im.bin_touch_start[b],
                            im.bin_touch.begin() + im.bin_touch_start[b + 1]);
  const Tensor& t = im.model->tensor;
  std::vector<int> list;
  for (std::int64_t r = im.bin_row[b]; r < im.bin_row[b + 1]; ++r) {
    if (t.row_proc[r] < im.npoi) list.push_back(t.row_proc[r]);
    for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i)
      list.push_back(im.npoi + t.syst[i]);
  }
  std::sort(list.begin(), list.end());
  list.erase(std::unique(list.begin(), list.end()), list.end());
  return list;
}

}  // namespace

namespace {

// kCovariance with profiled additive betas: beta at x and d beta / dx = -(S W S + 1)^-1 S W J
// ([nbins x npar]); empty when the fit has no betas.
void CovarianceBetaJacobian(const Likelihood::Impl& im, const Point& pt, Eigen::VectorXd* beta,
                            Eigen::MatrixXd* dbeta) {
  beta->resize(0);
  dbeta->resize(0, 0);
  if (im.CovMultiplicative()) {
    // Multiplicative betas: d beta / dx = -A^-1 B on the bins with a beta, 0 elsewhere.
    detail::CovMult cm;
    im.CovMultAt(pt, nullptr, 2, &cm);
    *beta = cm.beta;
    dbeta->setZero(im.model->nbins, im.npar);
    if (!cm.act.empty()) {
      const Eigen::MatrixXd d = -cm.a.solve(cm.b);
      for (std::size_t i = 0; i < cm.act.size(); ++i)
        dbeta->row(cm.act[i]) = d.row(static_cast<Eigen::Index>(i));
    }
    return;
  }
  if (!im.sws_llt) return;
  Eigen::VectorXd totals;
  const Eigen::MatrixXd jac = im.FittedJacobian(pt, &totals);
  *beta = im.CovarianceBeta(totals);
  *dbeta = -im.sws_llt->solve(im.sbeta.asDiagonal() * (im.wcov * jac));
}

}  // namespace

void Likelihood::Impl::FullYields(const Point& pt, bool profile, bool want_jac,
                                  const std::function<void(std::int64_t, const Eigen::VectorXd&,
                                                           const Eigen::MatrixXd&)>& fn) const {
  const Model& m = *model;
  const int nproc = m.num_processes();
  const bool additive = bbtype == BinByBinStatType::kNormalAdditive;
  // rabbit applies the beta variations with the multiplicative types only.
  const bool bv = profile && !m.beta_variations.empty() && !additive;
  // Sum_r c_r d lambda_r / dx of a fitted bin (dense; touched entries only are non-zero).
  auto bin_g = [&](std::int64_t b, const BinState& st, Eigen::VectorXd* g) {
    g->setZero(npar);
    for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r)
      AddRowGradient(*this, pt, r, st.lam[r - bin_row[b]], st.ex[r - bin_row[b]],
                     st.fr.c[r - bin_row[b]], g);
  };
  // Covariance fits: every bin's t = u_b and d u / dx = W_eff G.
  detail::CovFull cf;
  Eigen::MatrixXd du;
  const bool cov = dterm == DataTerm::kCovariance && profile;
  if (cov) {
    CovFullAt(pt, nullptr, want_jac ? 2 : 0, &cf);
    if (want_jac) du = cf.w * cf.g;
  }
  auto tpt = [&](std::int64_t b) { return cov ? &cf.u[b] : nullptr; };
  // d t / dx of a fitted bin: h G (bin by bin) or (W_eff G)_b (covariance).
  auto bin_dt = [&](std::int64_t b, const BinState& st, Eigen::VectorXd* dt) {
    if (cov) {
      *dt = du.row(b).transpose();
      return;
    }
    bin_g(b, st, dt);
    *dt *= st.fr.h;
  };
  // Beta variations: the pulls sqrt(k_jp) (beta_jp - 1) of the fitted bins' betas and their gradients.
  Eigen::MatrixXd pull;                // [nbins x nproc]
  std::vector<Eigen::MatrixXd> dpull;  // per process [nbins x npar]
  if (bv) {
    pull.setZero(m.nbins, nproc);
    if (want_jac) dpull.assign(nproc, Eigen::MatrixXd::Zero(m.nbins, npar));
    arena->execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, m.nbins, 16),
                        [&](const tbb::blocked_range<std::int64_t>& range) {
                          BinState st;
                          Eigen::VectorXd g, jr = Eigen::VectorXd::Zero(npar);
                          for (std::int64_t j = range.begin(); j < range.end(); ++j) {
                            ComputeBin(*this, pt, j, true, &st, tpt(j));
                            if (!st.ok) continue;
                            if (want_jac) bin_dt(j, st, &g);
                            for (std::int64_t r = bin_row[j]; r < bin_row[j + 1]; ++r) {
                              if (row_beta[r] < 0) continue;
                              const std::int64_t i = r - bin_row[j];
                              const int p = m.tensor.row_proc[r];
                              const double sk = std::sqrt(row_k[r]);
                              pull(j, p) = sk * (st.fr.beta[i] - 1.0);
                              if (!want_jac) continue;
                              // d beta / dx = p_r dt/dx + q_r d lambda_r / dx
                              jr.setZero();
                              AddRowGradient(*this, pt, r, st.lam[i], st.ex[i], st.fr.q[i], &jr);
                              dpull[p].row(j) = (sk * (jr + st.fr.p[i] * g)).transpose();
                            }
                          }
                        });
    });
  }
  arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, m.nbins_full, 16),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          BinState st;
          Eigen::VectorXd g, jr = Eigen::VectorXd::Zero(npar), y;
          Eigen::MatrixXd jac;
          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
            const bool in_fit = b < m.nbins;
            ComputeBin(*this, pt, b, profile, &st, in_fit ? tpt(b) : nullptr);
            const std::int64_t r0 = bin_row[b], nr = bin_row[b + 1] - r0;
            const bool fitted = in_fit && st.ok;
            y.resize(nr);
            if (want_jac) {
              jac.setZero(nr, npar);
              if (fitted) bin_dt(b, st, &g);
            }
            for (std::int64_t i = 0; i < nr; ++i) {
              const std::int64_t r = r0 + i;
              const double lam = st.lam[i];
              double c = 1.0, ep = 0.0;
              y[i] = lam;
              if (fitted && row_beta[r] >= 0) {
                y[i] = additive ? lam + row_s[r] * st.fr.beta[i] : st.fr.beta[i] * lam;
                c = st.fr.c[i];
                ep = st.fr.ep[i];
              }
              if (want_jac) {
                jr.setZero();
                AddRowGradient(*this, pt, r, lam, st.ex[i], c, &jr);
                jac.row(i) = jr.transpose();
                if (ep != 0.0) jac.row(i) += ep * g.transpose();
              }
              if (!bv) continue;
              const int p = m.tensor.row_proc[r];
              const double n0 = m.tensor.norm[r];
              if (!(n0 > 0)) continue;
              const auto vrow = m.beta_variations[p].row(b);
              const double ratio = vrow.dot(pull.col(p)) / n0;
              if (want_jac)
                jac.row(i) = (1.0 + ratio) * jac.row(i) + (y[i] / n0) * (vrow * dpull[p]);
              y[i] *= 1.0 + ratio;
            }
            fn(b, y, jac);
          }
        });
  });
}

Eigen::VectorXd Likelihood::BinNll(const Eigen::VectorXd& x) const {
  const Impl& im = *impl_;
  Point pt;
  im.MakePoint(x, &pt);
  Eigen::VectorXd out(im.model->nbins);
  if (im.full && im.dterm == DataTerm::kCovariance) {
    // (a - n)^T W_eff (a - n) / 2 shared out as r_b u_b / 2.
    detail::CovFull cf;
    im.CovFullAt(pt, nullptr, 0, &cf);
    return 0.5 * cf.r.cwiseProduct(cf.u);
  }
  if (im.CovMultiplicative()) {
    // The coupled term shared out as r_b (W r)_b / 2, plus each bin's beta constraint.
    detail::CovMult cm;
    im.CovMultAt(pt, nullptr, 0, &cm);
    out = 0.5 * cm.r.cwiseProduct(cm.u);
    for (int b : cm.act) out[b] += 0.5 * im.kstat[b] * std::pow(cm.beta[b] - im.beta0[b], 2);
    return out;
  }
  if (im.dterm == DataTerm::kCovariance) {
    // The coupled term r^T W_eff r / 2 shared out as r_b (W_eff r)_b / 2 (sums to the total).
    Eigen::VectorXd totals;
    im.FittedJacobian(pt, &totals);
    const Eigen::VectorXd r = totals - im.data + im.sbeta.cwiseProduct(im.beta0);
    out = 0.5 * r.cwiseProduct(im.weff * r);
    return out;
  }
  BinState st;
  for (std::int64_t b = 0; b < im.model->nbins; ++b) {
    ComputeBin(im, pt, b, true, &st);
    out[b] = st.ok ? st.nll : std::numeric_limits<double>::infinity();
  }
  return out;
}

Eigen::MatrixXd Likelihood::TotalYieldJacobian(const Eigen::VectorXd& x, bool profile_beta,
                                               Eigen::VectorXd* totals) const {
  const Impl& im = *impl_;
  const Model& m = *im.model;
  Point pt;
  im.MakePoint(x, &pt);
  const bool cov = im.dterm == DataTerm::kCovariance;
  Eigen::VectorXd cbeta;
  Eigen::MatrixXd cdbeta;
  if (cov && profile_beta) CovarianceBetaJacobian(im, pt, &cbeta, &cdbeta);
  Eigen::MatrixXd jac = Eigen::MatrixXd::Zero(m.nbins_full, im.npar);
  totals->setZero(m.nbins_full);
  if (im.full) {
    im.FullYields(pt, profile_beta, true,
                  [&](std::int64_t b, const Eigen::VectorXd& y, const Eigen::MatrixXd& j) {
                    (*totals)[b] = y.sum();
                    jac.row(b) = j.colwise().sum();
                  });
    return jac;
  }
  im.arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, m.nbins_full, 32),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          Eigen::VectorXd jv = Eigen::VectorXd::Zero(im.npar), ju = Eigen::VectorXd::Zero(im.npar);
          BinState st;
          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
            ComputeBin(im, pt, b, profile_beta && !cov, &st);
            const std::int64_t r0 = im.bin_row[b];
            for (std::int64_t r = r0; r < im.bin_row[b + 1]; ++r)
              AddRowGradient(im, pt, r, st.lam[r - r0], st.ex[r - r0], 1.0,
                             (b < m.nbins && im.row_scaled[r]) ? &jv : &ju);
            const bool cbb = cbeta.size() > 0 && b < m.nbins;
            const bool cmul = cbb && im.CovMultiplicative();
            // Covariance fits: the coupled betas, additive (+ s beta) or multiplicative (beta lv).
            (*totals)[b] =
                cmul ? cbeta[b] * st.lv + st.lu : st.L + (cbb ? im.sbeta[b] * cbeta[b] : 0.0);
            const std::vector<int> touch = Touched(im, b);
            for (int i : touch) {
              jac(b, i) = cmul ? cbeta[b] * jv[i] + ju[i] : TotalDerivative(st, jv[i], ju[i]);
              jv[i] = ju[i] = 0.0;
            }
            if (cmul)
              jac.row(b) += st.lv * cdbeta.row(b);
            else if (cbb)
              jac.row(b) += im.sbeta[b] * cdbeta.row(b);
          }
        });
  });
  return jac;
}

void Likelihood::ProcessYields(const Eigen::VectorXd& x, const Eigen::MatrixXd& cov,
                               bool profile_beta, Eigen::MatrixXd* values,
                               Eigen::MatrixXd* errors) const {
  const Impl& im = *impl_;
  const Model& m = *im.model;
  if (cov.rows() != im.npar || cov.cols() != im.npar)
    throw std::invalid_argument("ProcessYields: covariance must be num_params x num_params");
  Point pt;
  im.MakePoint(x, &pt);
  const bool covfit = im.dterm == DataTerm::kCovariance;
  Eigen::VectorXd cbeta;
  Eigen::MatrixXd cdbeta;
  if (covfit && profile_beta) CovarianceBetaJacobian(im, pt, &cbeta, &cdbeta);
  values->setZero(m.nbins_full, m.num_processes());
  errors->setZero(m.nbins_full, m.num_processes());
  const Tensor& t = m.tensor;
  if (im.full) {
    im.FullYields(pt, profile_beta, true,
                  [&](std::int64_t b, const Eigen::VectorXd& y, const Eigen::MatrixXd& j) {
                    std::vector<int> nz;
                    for (Eigen::Index i = 0; i < y.size(); ++i) {
                      const int p = t.row_proc[im.bin_row[b] + i];
                      nz.clear();
                      for (int c = 0; c < im.npar; ++c)
                        if (j(i, c) != 0.0) nz.push_back(c);
                      double var = 0.0;
                      for (int a : nz)
                        for (int c : nz) var += j(i, a) * cov(a, c) * j(i, c);
                      (*values)(b, p) = y[i];
                      (*errors)(b, p) = std::sqrt(std::max(var, 0.0));
                    }
                  });
    return;
  }
  im.arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, m.nbins_full, 16),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          Eigen::VectorXd jv = Eigen::VectorXd::Zero(im.npar), ju = Eigen::VectorXd::Zero(im.npar),
                          jr = jv;
          BinState st;
          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
            ComputeBin(im, pt, b, profile_beta && !covfit, &st);
            const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
            const std::vector<int> touch = Touched(im, b);
            const int nt = static_cast<int>(touch.size());
            Eigen::VectorXd dbeta = Eigen::VectorXd::Zero(nt), dlv = Eigen::VectorXd::Zero(nt);
            if (cbeta.size() > 0 && b < m.nbins && im.CovMultiplicative() && im.kstat[b] > 0 &&
                st.lv > 0) {
              // Covariance fit: the multiplicative beta of the coupled profile.
              st.has_beta = true;
              st.additive = false;
              st.beta = cbeta[b];
              for (int a = 0; a < nt; ++a) dbeta[a] = cdbeta(b, touch[a]);
            } else if (cbeta.size() > 0 && b < m.nbins && !im.CovMultiplicative() &&
                       im.sbeta[b] > 0) {
              // Covariance fit: the additive beta of the coupled profile.
              st.has_beta = st.additive = true;
              st.beta = cbeta[b];
              st.s = im.sbeta[b];
              for (int a = 0; a < nt; ++a) dbeta[a] = cdbeta(b, touch[a]);
            }
            if (st.has_beta) {
              for (std::int64_t r = r0; r < r1; ++r)
                AddRowGradient(im, pt, r, st.lam[r - r0], st.ex[r - r0], 1.0,
                               im.row_scaled[r] ? &jv : &ju);
              for (int a = 0; a < nt; ++a) {
                const int i = touch[a];
                if (cbeta.size() == 0) dbeta[a] = -(st.fbv * jv[i] + st.fbu * ju[i]) / st.fbb;
                dlv[a] = jv[i];
                jv[i] = ju[i] = 0.0;
              }
            }
            Eigen::MatrixXd ctt(nt, nt);
            for (int c = 0; c < nt; ++c)
              for (int a = 0; a < nt; ++a) ctt(a, c) = cov(touch[a], touch[c]);
            // Additive betas are shared out over the scaled processes in proportion to their yields
            // (rabbit): y_r = lambda_r (1 + s beta / lv).
            const bool add = st.has_beta && st.additive && st.lv > 0;
            for (std::int64_t r = r0; r < r1; ++r) {
              const bool scaled = st.has_beta && im.row_scaled[r] && (!st.additive || add);
              const double f =
                  !scaled ? 1.0 : (st.additive ? 1.0 + st.s * st.beta / st.lv : st.beta);
              AddRowGradient(im, pt, r, st.lam[r - r0], st.ex[r - r0], f, &jr);
              Eigen::VectorXd jl(nt);
              const double lr = st.lam[r - r0];
              for (int a = 0; a < nt; ++a) {
                double extra = 0.0;
                if (scaled)
                  extra = st.additive
                              ? lr * st.s * (dbeta[a] / st.lv - st.beta * dlv[a] / (st.lv * st.lv))
                              : lr * dbeta[a];
                jl[a] = jr[touch[a]] + extra;
                jr[touch[a]] = 0.0;
              }
              (*values)(b, t.row_proc[r]) = f * lr;
              (*errors)(b, t.row_proc[r]) = std::sqrt(std::max(jl.dot(ctt * jl), 0.0));
            }
          }
        });
  });
}

namespace {

Eigen::MatrixXd InternalCovariance(const FitResult& r) {
  if (r.covariance_internal.rows() == r.hessian.rows() && r.covariance_internal.size() > 0)
    return r.covariance_internal;
  const int n = static_cast<int>(r.hessian.rows());
  std::vector<int> free;
  for (int i = 0; i < n; ++i)
    if (!r.frozen[i]) free.push_back(i);
  const int m = static_cast<int>(free.size());
  Eigen::MatrixXd h(m, m);
  for (int j = 0; j < m; ++j)
    for (int i = 0; i < m; ++i) h(i, j) = r.hessian(free[i], free[j]);
  Eigen::MatrixXd inv;
  if (!detail::InverseSPD(h, &inv))
    throw NumericalError("post-fit yields need a positive-definite Hessian at the minimum");
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, n);
  for (int j = 0; j < m; ++j)
    for (int i = 0; i < m; ++i) c(free[i], free[j]) = inv(i, j);
  return c;
}

YieldSet MakeYields(const Likelihood& lik, const Eigen::VectorXd& x, const Eigen::MatrixXd& cov,
                    bool postfit, const YieldOptions& opt) {
  const Model& m = lik.model();
  YieldSet y;
  y.postfit = postfit;
  y.param_covariance = cov;
  y.total_jacobian = lik.TotalYieldJacobian(x, postfit, &y.total);
  y.extra_variance = Eigen::VectorXd::Zero(m.nbins_full);
  Eigen::MatrixXd proc_extra;
  if (!postfit && lik.options().bin_by_bin_stat) {
    // Prefit MC statistics of the processes scaled by beta (fitted bins with k > 0).
    proc_extra = Eigen::MatrixXd::Zero(m.nbins_full, m.num_processes());
    const bool full = lik.bin_by_bin_stat_mode() == BinByBinStatMode::kFull;
    for (Eigen::Index b = 0; b < m.nbins; ++b) {
      if (full) {
        // Each (bin, process) with a beta: its own MC variance.
        for (int p = 0; p < m.num_processes(); ++p) {
          if (lik.bb_kstat()[b * m.num_processes() + p] <= 0) continue;
          proc_extra(b, p) = m.sumw2(b, p);
          y.extra_variance[b] += m.sumw2(b, p);
        }
        continue;
      }
      if (lik.bb_kstat()[b] <= 0) continue;
      for (int p = 0; p < m.num_processes(); ++p) {
        proc_extra(b, p) = m.sumw2(b, p);
        y.extra_variance[b] += m.sumw2(b, p);
      }
    }
  }
  if (postfit && lik.options().bin_by_bin_stat) {
    // The betas' own spread at fixed x (rabbit's postfit yields with profiled betas).
    Eigen::VectorXd tv;
    lik.BetaYieldVariance(x, &tv, &y.extra_covariance, &proc_extra);
    y.extra_variance += tv;
  }
  const Eigen::MatrixXd jc = y.total_jacobian * cov;
  y.total_error.resize(m.nbins_full);
  for (Eigen::Index b = 0; b < m.nbins_full; ++b)
    y.total_error[b] =
        std::sqrt(std::max(jc.row(b).dot(y.total_jacobian.row(b)) + y.extra_variance[b], 0.0));
  if (opt.full_covariance) {
    y.total_covariance = jc * y.total_jacobian.transpose();
    if (y.extra_covariance.size() > 0)
      y.total_covariance += y.extra_covariance;
    else
      y.total_covariance.diagonal() += y.extra_variance;
  }
  if (opt.per_process) {
    lik.ProcessYields(x, cov, postfit, &y.process, &y.process_error);
    if (proc_extra.size())
      y.process_error = (y.process_error.array().square() + proc_extra.array()).sqrt().matrix();
  }
  return y;
}

}  // namespace

YieldSet PostfitYields(const Likelihood& lik, const FitResult& result, const YieldOptions& opt) {
  if (result.x.size() != lik.num_params())
    throw std::invalid_argument("fit result does not belong to this likelihood");
  if (!result.ok())
    throw NumericalError("post-fit yields need a converged fit, but the fit is " +
                         ToString(result.status) +
                         (result.message.empty() ? "" : " (" + result.message + ")"));
  if (result.covariance_status == CovarianceStatus::kNearSingular ||
      result.covariance_status == CovarianceStatus::kForcedPositive)
    throw NumericalError(
        "post-fit yields need an accurate covariance, but the fit's covariance is " +
        ToString(result.covariance_status) +
        (result.covariance_message.empty() ? "" : " (" + result.covariance_message + ")"));
  return MakeYields(lik, result.x, InternalCovariance(result), true, opt);
}

YieldSet PrefitYields(const Likelihood& lik, const YieldOptions& opt) {
  const int n = lik.num_params();
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(n, n);
  for (int i = 0; i < n; ++i)
    if (lik.params()[i].constrained) cov(i, i) = 1.0 / lik.params()[i].constraint_weight;
  return MakeYields(lik, lik.InitialParams(), cov, false, opt);
}

ChannelProjection Project(const Likelihood& lik, const YieldSet& y, const std::string& channel,
                          const std::vector<std::string>& keep_axes) {
  const Model& m = lik.model();
  std::int64_t offset = 0;
  const Channel* ch = nullptr;
  for (const auto& c : m.channels) {
    if (c.name == channel) {
      ch = &c;
      break;
    }
    offset += c.nbins;
  }
  if (!ch) {
    std::string names;
    for (const auto& c : m.channels) names += (names.empty() ? "" : ", ") + c.name;
    throw std::invalid_argument("projection: channel \"" + channel +
                                "\" is not in the model (channels: " + names + ")");
  }
  std::vector<int> nb;
  for (const auto& ax : ch->axes) {
    if (ax.edges.empty())
      throw std::invalid_argument("projection: channel " + channel + " axis " + ax.name +
                                  " has no edges");
    nb.push_back(static_cast<int>(ax.edges.size()) - 1);
  }
  if (ch->axes.empty()) {
    if (!keep_axes.empty())
      throw std::invalid_argument("projection: channel " + channel + " has no named axes");
    nb.push_back(static_cast<int>(ch->nbins));
  }
  std::vector<int> keep;
  ChannelProjection out;
  out.channel = channel;
  for (const auto& name : keep_axes) {
    int found = -1;
    for (int a = 0; a < static_cast<int>(ch->axes.size()); ++a)
      if (ch->axes[a].name == name) found = a;
    if (found < 0)
      throw std::invalid_argument("projection: channel " + channel + " has no axis \"" + name +
                                  "\"");
    if (std::find(keep.begin(), keep.end(), found) != keep.end())
      throw std::invalid_argument("projection: axis \"" + name + "\" given twice");
    keep.push_back(found);
  }
  if (keep_axes.empty())
    for (int a = 0; a < static_cast<int>(nb.size()); ++a) keep.push_back(a);
  std::sort(keep.begin(), keep.end());
  int nproj = 1;
  for (int a : keep) {
    out.axes.push_back(ch->axes.empty() ? "bin" : ch->axes[a].name);
    out.shape.push_back(nb[a]);
    nproj *= nb[a];
  }
  // Aggregation: channel bin (row-major over all axes) -> projected bin (row-major over kept).
  Eigen::MatrixXd agg = Eigen::MatrixXd::Zero(nproj, ch->nbins);
  for (std::int64_t i = 0; i < ch->nbins; ++i) {
    std::int64_t rem = i;
    std::vector<int> idx(nb.size());
    for (int a = static_cast<int>(nb.size()) - 1; a >= 0; --a) {
      idx[a] = static_cast<int>(rem % nb[a]);
      rem /= nb[a];
    }
    int j = 0;
    for (int a : keep) j = j * nb[a] + idx[a];
    agg(j, i) = 1.0;
  }
  out.values = agg * y.total.segment(offset, ch->nbins);
  const Eigen::MatrixXd jp = agg * y.total_jacobian.middleRows(offset, ch->nbins);
  out.covariance = jp * y.param_covariance * jp.transpose();
  if (y.extra_covariance.size() > 0)
    out.covariance +=
        agg * y.extra_covariance.block(offset, offset, ch->nbins, ch->nbins) * agg.transpose();
  else
    out.covariance +=
        agg * y.extra_variance.segment(offset, ch->nbins).asDiagonal() * agg.transpose();
  out.errors = out.covariance.diagonal().cwiseMax(0.0).cwiseSqrt();
  if (y.process.size()) out.process = agg * y.process.middleRows(offset, ch->nbins);
  return out;
}

std::vector<ChannelGof> ChannelGoodnessOfFit(const Likelihood& lik, const FitResult& result) {
  const Model& m = lik.model();
  const Eigen::VectorXd nll = lik.BinNll(result.x);
  std::vector<ChannelGof> out;
  if (m.channels.empty()) {
    ChannelGof g{"all", 2.0 * nll.sum(), static_cast<int>(m.nbins), 0.0};
    g.p = ChiSquarePValue(g.chi2, g.ndf);
    out.push_back(g);
    return out;
  }
  std::int64_t offset = 0;
  for (const auto& c : m.channels) {
    if (c.masked) break;
    ChannelGof g;
    g.channel = c.name;
    g.chi2 = 2.0 * nll.segment(offset, c.nbins).sum();
    g.ndf = static_cast<int>(c.nbins);
    g.p = ChiSquarePValue(g.chi2, g.ndf);
    out.push_back(g);
    offset += c.nbins;
  }
  return out;
}

}  // namespace lepus::engine

namespace lepus::engine {

double ExtraVarianceOfSum(const YieldSet& y, std::int64_t first, std::int64_t n) {
  if (y.extra_covariance.size() > 0) return y.extra_covariance.block(first, first, n, n).sum();
  return y.extra_variance.size() > 0 ? y.extra_variance.segment(first, n).sum() : 0.0;
}

void Likelihood::BetaYieldVariance(const Eigen::VectorXd& x, Eigen::VectorXd* tvar,
                                   Eigen::MatrixXd* tcov, Eigen::MatrixXd* pvar) const {
  const Impl& im = *impl_;
  const Model& m = *im.model;
  const Tensor& t = m.tensor;
  const int nproc = m.num_processes();
  tvar->setZero(m.nbins_full);
  tcov->resize(0, 0);
  pvar->setZero(m.nbins_full, nproc);
  if (!im.options.bin_by_bin_stat) return;
  if (x.size() != im.npar)
    throw std::invalid_argument("BetaYieldVariance: parameter vector size mismatch");
  Point pt;
  im.MakePoint(x, &pt);
  const bool additive = im.bbtype == BinByBinStatType::kNormalAdditive;
  const bool cov = im.dterm == DataTerm::kCovariance;
  const bool bv = im.full && !additive && !m.beta_variations.empty();
  // Constraint curvature of a beta.
  auto c2 = [&](double k, double beta, double b0) {
    switch (im.bbtype) {
      case BinByBinStatType::kNormalAdditive:
        return 1.0;
      case BinByBinStatType::kNormalMultiplicative:
        return k;
      default:
        return k * b0 / (beta * beta);
    }
  };

  if (!cov && !bv) {
    // Betas of different bins are independent at fixed x: per bin in closed form.
    im.arena->execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<std::int64_t>(0, m.nbins, 32),
          [&](const tbb::blocked_range<std::int64_t>& range) {
            BinState st;
            for (std::int64_t b = range.begin(); b < range.end(); ++b) {
              ComputeBin(im, pt, b, true, &st);
              if (!st.ok) continue;
              const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
              if (!im.full) {
                if (!st.has_beta || !(st.fbb > 0)) continue;
                // H = fbb (the unprofiled d2F/dbeta2); dL/dbeta = lv (or s, additive).
                const double e = st.additive ? st.s : st.lv;
                (*tvar)[b] = e * e / st.fbb;
                for (std::int64_t r = r0; r < r1; ++r) {
                  if (!im.row_scaled[r]) continue;
                  const double lam = st.lam[r - r0];
                  const double g = st.additive ? (st.lv > 0 ? lam * st.s / st.lv : 0.0) : lam;
                  (*pvar)(b, t.row_proc[r]) = g * g / st.fbb;
                }
                continue;
              }
              // Full: H = diag(C'') + D'' e e^T (Sherman-Morrison); sigma = sum e^2 / C''.
              double sigma = 0.0;
              for (std::int64_t r = r0; r < r1; ++r) {
                const std::int64_t j = im.row_beta[r];
                if (j < 0) continue;
                const double e = st.fr.e[r - r0];
                sigma += e * e / c2(im.row_k[r], st.fr.beta[r - r0], im.beta0[j]);
              }
              const double d2 = st.fr.d2;
              (*tvar)[b] = sigma / (1.0 + d2 * sigma);
              for (std::int64_t r = r0; r < r1; ++r) {
                const std::int64_t j = im.row_beta[r];
                if (j < 0) continue;
                const double e = st.fr.e[r - r0],
                             ci = 1.0 / c2(im.row_k[r], st.fr.beta[r - r0], im.beta0[j]);
                (*pvar)(b, t.row_proc[r]) =
                    e * e * (ci - d2 * (e * ci) * (e * ci) / (1.0 + d2 * sigma));
              }
            }
          });
    });
    return;
  }

  // Coupled (covariance fits) or beta variations: dense over the active betas.
  struct Beta {
    std::int64_t bin;
    double e, c2;
  };
  std::vector<Beta> betas;
  std::vector<std::int64_t> row_a(t.num_rows(), -1);  // full: the row's beta (dense index)
  std::vector<std::int64_t> bin_a(m.nbins, -1);       // lite: the bin's beta
  std::vector<double> lam(t.num_rows(), 0.0), ybeta(t.num_rows(), 1.0);
  std::vector<double> d2(m.nbins, 0.0);
  Eigen::VectorXd lv = Eigen::VectorXd::Zero(m.nbins);
  double ex;
  for (std::int64_t r = 0; r < t.num_rows(); ++r) lam[r] = im.RowYield(pt, r, &ex);
  if (im.full) {
    detail::CovFull cf;
    if (cov) im.CovFullAt(pt, nullptr, 0, &cf);
    BinState st;
    for (std::int64_t b = 0; b < m.nbins; ++b) {
      ComputeBin(im, pt, b, true, &st, cov ? &cf.u[b] : nullptr);
      if (!st.ok) continue;
      d2[b] = st.fr.d2;
      for (std::int64_t r = im.bin_row[b]; r < im.bin_row[b + 1]; ++r) {
        const std::int64_t j = im.row_beta[r];
        if (j < 0) continue;
        const double beta = st.fr.beta[r - im.bin_row[b]];
        ybeta[r] = additive ? 1.0 : beta;
        row_a[r] = static_cast<std::int64_t>(betas.size());
        betas.push_back({b, additive ? im.row_s[r] : lam[r], c2(im.row_k[r], beta, im.beta0[j])});
      }
    }
  } else {
    // Lite covariance fit: the coupled betas (additive, or multiplicative with k > 0 and lv > 0).
    for (std::int64_t r = 0; r < im.bin_row[m.nbins]; ++r)
      if (im.row_scaled[r]) lv[t.row_bin[r]] += lam[r];
    for (std::int64_t b = 0; b < m.nbins; ++b) {
      const bool has = additive ? im.sbeta[b] > 0 : (im.kstat[b] > 0 && lv[b] > 0);
      if (!has) continue;
      bin_a[b] = static_cast<std::int64_t>(betas.size());
      betas.push_back({b, additive ? im.sbeta[b] : lv[b], additive ? 1.0 : im.kstat[b]});
    }
  }
  const auto na = static_cast<Eigen::Index>(betas.size());
  if (na == 0) return;
  Eigen::MatrixXd h = Eigen::MatrixXd::Zero(na, na);
  for (Eigen::Index a = 0; a < na; ++a) h(a, a) = betas[a].c2;
  if (cov) {
    Eigen::MatrixXd e = Eigen::MatrixXd::Zero(m.nbins, na);
    for (Eigen::Index a = 0; a < na; ++a) e(betas[a].bin, a) = betas[a].e;
    h += e.transpose() * im.wcov * e;
  } else {
    for (Eigen::Index a = 0; a < na; ++a)
      for (Eigen::Index c = 0; c < na; ++c)
        if (betas[a].bin == betas[c].bin) h(a, c) += d2[betas[a].bin] * betas[a].e * betas[c].e;
  }
  const Eigen::LLT<Eigen::MatrixXd> llt(h);
  if (llt.info() != Eigen::Success)
    throw NumericalError(
        "post-fit yields: the Hessian of the NLL in the Barlow-Beeston parameters is not positive "
        "definite");
  const Eigen::MatrixXd hinv = llt.solve(Eigen::MatrixXd::Identity(na, na));
  // g = d yield / d beta at fixed x per row: its own beta, and beta variations from other bins.
  Eigen::MatrixXd pull;
  std::vector<std::int64_t>
      bv_row;  // [nbins * nproc]: the row of (bin, process) with a beta, or -1
  if (bv) {
    bv_row.assign(static_cast<std::size_t>(m.nbins * nproc), -1);
    for (std::int64_t r = 0; r < im.bin_row[m.nbins]; ++r)
      if (row_a[r] >= 0) bv_row[t.row_bin[r] * nproc + t.row_proc[r]] = r;
    pull.setZero(m.nbins, nproc);
    for (std::int64_t r = 0; r < im.bin_row[m.nbins]; ++r)
      if (row_a[r] >= 0)
        pull(t.row_bin[r], t.row_proc[r]) = std::sqrt(im.row_k[r]) * (ybeta[r] - 1.0);
  }
  Eigen::MatrixXd gt = Eigen::MatrixXd::Zero(m.nbins_full, na);  // totals
  std::vector<std::pair<Eigen::Index, double>> g;
  for (std::int64_t r = 0; r < t.num_rows(); ++r) {
    const std::int64_t b = t.row_bin[r];
    const int p = t.row_proc[r];
    g.clear();
    double ratio = 0.0;
    const double n0 = t.norm[r];
    const bool with_bv = bv && n0 > 0;
    if (with_bv) ratio = m.beta_variations[p].row(b).dot(pull.col(p)) / n0;
    if (im.full && row_a[r] >= 0) {
      g.push_back({row_a[r], (additive ? im.row_s[r] : lam[r]) * (1.0 + ratio)});
    } else if (!im.full && b < m.nbins && bin_a[b] >= 0 && im.row_scaled[r]) {
      g.push_back({bin_a[b], additive ? (lv[b] > 0 ? lam[r] * im.sbeta[b] / lv[b] : 0.0) : lam[r]});
    }
    if (with_bv) {
      const double scale = ybeta[r] * lam[r] / n0;
      for (std::int64_t j = 0; j < m.nbins; ++j) {
        const double v = m.beta_variations[p](b, j);
        if (v == 0.0) continue;
        const std::int64_t q = bv_row[j * nproc + p];  // the row of (j, p) with a beta, or -1
        if (q >= 0) g.push_back({row_a[q], scale * v * std::sqrt(im.row_k[q])});
      }
    }
    double var = 0.0;
    for (const auto& [a, va] : g) {
      gt(b, a) += va;
      for (const auto& [c, vc] : g) var += va * hinv(a, c) * vc;
    }
    (*pvar)(b, p) = var;
  }
  *tcov = gt * hinv * gt.transpose();
  *tvar = tcov->diagonal();
}

}  // namespace lepus::engine
