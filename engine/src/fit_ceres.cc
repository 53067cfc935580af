// Ceres Solver fit of the profiled NLL (FitMethod::kCeres, kCeresDogleg): see docs/numerics.md,
// section "Ceres: the NLL as sparse nonlinear least squares".
//
// The NLL with the saturated offset is a sum of non-negative terms, one per fitted bin (Poisson
// term plus the Barlow-Beeston term at the profiled beta) and one per Gaussian constraint, so
//   NLL = 1/2 sum_b r_b^2 + 1/2 sum_s r_s^2,
//   r_b = sign(n_b - beta0_b lambda_v,b - lambda_u,b) sqrt(2 nll_b),   r_s = sqrt(cw_s) (theta_s - theta0_s)
// (the deviance residual; beta0 lambda_v + lambda_u = n is exactly where nll_b = 0, so r_b is
// smooth across the sign change). The Jacobian is analytic: d r_b / dx = (d nll_b / dx) / r_b, and
// d nll_b / dx = sum_rows w_r d lambda_r / dx by the envelope theorem (beta profiled), with
// w_r = beta (1 - n/L) for beta-scaled rows and (1 - n/L) otherwise. Both nll_b and w_r are
// evaluated without cancellation (n t^2 h(t) / 2 with t = L/n - 1, h from its series near 0), so
// r_b and its derivative stay accurate near r_b = 0. Each bin's residual depends only on the
// parameters touching it: Ceres sees one residual block per bin with size-1 parameter blocks,
// and J^T J is as sparse as the model.
//
// Ceres minimises with the Gauss-Newton matrix J^T J, not the exact Hessian; its minimum is then
// polished by the exact Newton fit (dense Newton up to matrix_free_threshold floating parameters,
// matrix-free Newton-CG above), which also provides the EDM and the covariance (full, or the rows
// of the targets). The model yield is recomputed here from the public Model (the Likelihood's
// internals are private); the polish uses the engine's own evaluation, so any difference between
// the two only costs iterations, never accuracy.
#include "fit_ceres.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <ceres/ceres.h>
#include <tbb/info.h>

#include "fit_matrix_free.h"
#include "interpolation.h"

namespace lepus::engine::detail {

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// h(t) = 2 (t - log1p t) / t^2, so that y (t - log1p t) = y t^2 h(t) / 2 without cancellation;
// t > -1. Series h = 2 sum_{k>=2} (-t)^(k-2) / k for |t| < 0.01 (truncation < 1e-18).
double DevianceH(double t) {
  if (std::abs(t) < 1e-2) {
    double sum = 0.0, p = 1.0;
    for (int k = 2; k <= 11; ++k) {
      sum += p / k;
      p *= -t;
    }
    return 2.0 * sum;
  }
  return 2.0 * (t - std::log1p(t)) / (t * t);
}

// Static sparsity of the residual problem, from the public Model.
struct Layout {
  const Model* model = nullptr;
  int npoi = 0, nsyst = 0, npar = 0;
  bool lognormal = true, asym = false, poi_positive = false;
  std::vector<std::int64_t> bin_row;      // [nbins + 1] rows of each fitted bin
  std::vector<char> row_scaled;           // rows scaled by beta
  std::vector<std::int64_t> touch_start;  // [nbins + 1]
  std::vector<std::int32_t> touch;        // parameters of each bin, sorted
  std::vector<std::int32_t>
      entry_local;  // [nnz] position of the entry's systematic in its bin's list
  std::vector<std::int32_t> row_poi_local;  // [nrows] position of the row's POI, -1 if none
  Eigen::VectorXd data, kstat, beta0;
};

Layout MakeLayout(const Likelihood& lik) {
  const Model& m = lik.model();
  const Tensor& t = m.tensor;
  Layout l;
  l.model = &m;
  l.npoi = m.num_signals;
  l.nsyst = m.num_systematics();
  l.npar = lik.num_params();
  l.lognormal = m.systematic_type == SystematicType::kLogNormal;
  l.asym = !t.logk_halfdiff.empty();
  l.poi_positive = lik.options().poi_positive;
  l.data = lik.data();
  l.kstat = lik.bb_kstat();
  l.beta0 = lik.beta0();
  const std::int64_t nrows = t.num_rows();
  l.bin_row.assign(m.nbins + 1, nrows);
  // Rows are sorted by bin: first row of each fitted bin.
  {
    std::int64_t r = 0;
    for (std::int64_t b = 0; b <= m.nbins; ++b) {
      while (r < nrows && t.row_bin[r] < b) ++r;
      l.bin_row[b] = r;
    }
  }
  // Same rule as the likelihood: beta scales the rows with sumw2 > 0 in bins with k > 0.
  l.row_scaled.assign(nrows, 0);
  for (std::int64_t b = 0; b < m.nbins; ++b)
    if (l.kstat[b] > 0)
      for (std::int64_t r = l.bin_row[b]; r < l.bin_row[b + 1]; ++r)
        l.row_scaled[r] = m.sumw2(b, t.row_proc[r]) > 0;
  l.entry_local.assign(t.num_entries(), -1);
  l.row_poi_local.assign(nrows, -1);
  l.touch_start.assign(1, 0);
  std::vector<std::int32_t> pos(l.npar, -1), list;
  for (std::int64_t b = 0; b < m.nbins; ++b) {
    list.clear();
    for (std::int64_t r = l.bin_row[b]; r < l.bin_row[b + 1]; ++r) {
      const int p = t.row_proc[r];
      if (p < l.npoi) list.push_back(p);
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i)
        list.push_back(l.npoi + t.syst[i]);
    }
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (std::size_t k = 0; k < list.size(); ++k) pos[list[k]] = static_cast<std::int32_t>(k);
    for (std::int64_t r = l.bin_row[b]; r < l.bin_row[b + 1]; ++r) {
      const int p = t.row_proc[r];
      if (p < l.npoi) l.row_poi_local[r] = pos[p];
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i)
        l.entry_local[i] = pos[l.npoi + t.syst[i]];
    }
    l.touch.insert(l.touch.end(), list.begin(), list.end());
    l.touch_start.push_back(static_cast<std::int64_t>(l.touch.size()));
  }
  return l;
}

// Positive root of (lv + k) lv beta^2 + [(lv + k) lu - (n + k b0) lv] beta - k b0 lu = 0 (the
// likelihood's profiled beta, docs/likelihood.md section 4).
double ProfiledBeta(double lv, double lu, double n, double k, double b0) {
  if (lu == 0.0) return (n + k * b0) / (lv + k);
  const double a = (lv + k) * lv;
  const double bq = (lv + k) * lu - (n + k * b0) * lv;
  const double c = -k * b0 * lu;
  const double disc = std::sqrt(std::max(bq * bq - 4 * a * c, 0.0));
  return bq > 0 ? (2 * c) / (-bq - disc) : (-bq + disc) / (2 * a);
}

// The deviance residual of one fitted bin. Thread-safe (Ceres evaluates blocks concurrently).
class BinResidual final : public ceres::CostFunction {
 public:
  BinResidual(const Layout& l, std::int64_t bin) : l_(l), bin_(bin) {
    set_num_residuals(1);
    const std::int64_t n = l.touch_start[bin + 1] - l.touch_start[bin];
    mutable_parameter_block_sizes()->assign(static_cast<std::size_t>(n), 1);
  }

  bool Evaluate(double const* const* params, double* residuals, double** jacobians) const override {
    const Model& m = *l_.model;
    const Tensor& t = m.tensor;
    const std::int64_t r0 = l_.bin_row[bin_], r1 = l_.bin_row[bin_ + 1];
    thread_local std::vector<double> lam, dpoi;
    lam.resize(r1 - r0);
    dpoi.resize(r1 - r0);
    double lv = 0.0, lu = 0.0;
    for (std::int64_t r = r0; r < r1; ++r) {
      double e = 0.0;
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        const double th = params[l_.entry_local[i]][0];
        double k = t.logk_avg[i];
        if (l_.asym) k += AsymmetricAlpha(th).alpha * t.logk_halfdiff[i];
        e += th * k;
      }
      double mu = 1.0, dmu = 0.0;
      if (l_.row_poi_local[r] >= 0) {
        const double xp = params[l_.row_poi_local[r]][0];
        mu = l_.poi_positive ? xp * xp : xp;
        dmu = l_.poi_positive ? 2 * xp : 1.0;
      }
      const double ex = l_.lognormal ? std::exp(e) : 1.0;
      const double y = l_.lognormal ? mu * t.norm[r] * ex : mu * t.norm[r] + e;
      lam[r - r0] = y;
      dpoi[r - r0] = dmu * t.norm[r] * ex;
      (l_.row_scaled[r] ? lv : lu) += y;
    }
    const double n = l_.data[bin_], k = l_.kstat[bin_], b0 = l_.beta0[bin_];
    const bool has_beta = k > 0 && lv > 0;
    const double beta = has_beta ? ProfiledBeta(lv, lu, n, k, b0) : 1.0;
    const double L = beta * lv + lu;
    // Rejected step: non-positive expectation, except an empty bin (L = 0 with n = 0: term 0).
    if (!(L > 0 || (L == 0.0 && n == 0.0)) || !std::isfinite(L)) return false;
    // nll_b = n (t - log1p t) + k b0 (t2 - log1p t2), t = L/n - 1, t2 = beta/b0 - 1 (both >= 0).
    double nll, q;
    if (n > 0) {
      const double tt = (L - n) / n;
      nll = 0.5 * n * tt * tt * DevianceH(tt);
      q = tt / (1.0 + tt);  // 1 - n/L
    } else {
      nll = L;
      q = 1.0;
    }
    if (has_beta) {
      const double t2 = (beta - b0) / b0;
      nll += 0.5 * k * b0 * t2 * t2 * DevianceH(t2);
    }
    const double centre = has_beta ? b0 * lv + lu : L;
    const double res = (n - centre >= 0 ? 1.0 : -1.0) * std::sqrt(2.0 * nll);
    residuals[0] = res;
    if (!jacobians) return true;
    // d r / d lambda_r = w_r / r; at r = 0 exactly the limit -sqrt(d2 nll / dL2) (1/n without beta).
    double inv_r;
    if (res != 0.0) {
      inv_r = 1.0 / res;
    } else {
      const double curv =
          has_beta ? std::max(n / (L * L) - beta / (L + k), 1e-300) : 1.0 / std::max(n, 1e-300);
      inv_r = 0.0;
      q = -std::sqrt(curv);  // used as the full factor below
    }
    const std::int64_t nb = l_.touch_start[bin_ + 1] - l_.touch_start[bin_];
    for (std::int64_t j = 0; j < nb; ++j)
      if (jacobians[j]) jacobians[j][0] = 0.0;
    for (std::int64_t r = r0; r < r1; ++r) {
      const double w = (has_beta && l_.row_scaled[r]) ? beta * q : q;
      const double f = res != 0.0 ? w * inv_r : w;
      const int pl = l_.row_poi_local[r];
      if (pl >= 0 && jacobians[pl]) jacobians[pl][0] += f * dpoi[r - r0];
      const double scale = f * (l_.lognormal ? lam[r - r0] : 1.0);
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        double* jb = jacobians[l_.entry_local[i]];
        if (!jb) continue;
        double g = t.logk_avg[i];
        if (l_.asym) {
          const double th = params[l_.entry_local[i]][0];
          const AsymInterp a = AsymmetricAlpha(th);
          g += (a.alpha + th * a.dalpha) * t.logk_halfdiff[i];
        }
        jb[0] += scale * g;
      }
    }
    return true;
  }

 private:
  const Layout& l_;
  std::int64_t bin_;
};

// r = sqrt(cw) (theta - theta0).
class ConstraintResidual final : public ceres::SizedCostFunction<1, 1> {
 public:
  ConstraintResidual(double cw, double theta0) : s_(std::sqrt(cw)), theta0_(theta0) {}
  bool Evaluate(double const* const* params, double* residuals, double** jacobians) const override {
    residuals[0] = s_ * (params[0][0] - theta0_);
    if (jacobians && jacobians[0]) jacobians[0][0] = s_;
    return true;
  }

 private:
  double s_, theta0_;
};

ceres::SparseLinearAlgebraLibraryType SparseLibrary() {
  if (ceres::IsSparseLinearAlgebraLibraryTypeAvailable(ceres::SUITE_SPARSE))
    return ceres::SUITE_SPARSE;
  if (ceres::IsSparseLinearAlgebraLibraryTypeAvailable(ceres::EIGEN_SPARSE))
    return ceres::EIGEN_SPARSE;
  throw std::invalid_argument(
      "fit method ceres: this Ceres build has no sparse Cholesky (neither SuiteSparse nor Eigen "
      "sparse), "
      "but SPARSE_NORMAL_CHOLESKY is required; use --method matrix_free");
}

}  // namespace

double CeresCostAndGradient(const Likelihood& lik, const Eigen::VectorXd& x, Eigen::VectorXd* jtr) {
  const Layout l = MakeLayout(lik);
  const Model& m = lik.model();
  jtr->setZero(l.npar);
  double cost = 0.0;
  std::vector<const double*> params;
  std::vector<double> jac;
  std::vector<double*> jac_ptr;
  for (std::int64_t b = 0; b < m.nbins; ++b) {
    const std::int64_t k0 = l.touch_start[b], nb = l.touch_start[b + 1] - k0;
    params.resize(nb);
    jac.assign(nb, 0.0);
    jac_ptr.resize(nb);
    for (std::int64_t k = 0; k < nb; ++k) {
      params[k] = &x[l.touch[k0 + k]];
      jac_ptr[k] = &jac[k];
    }
    // A bin no parameter touches (nb = 0) is not in the Ceres problem, but its term is in the NLL.
    double r = 0.0;
    if (!BinResidual(l, b).Evaluate(params.data(), &r, jac_ptr.data()))
      return std::numeric_limits<double>::quiet_NaN();
    cost += 0.5 * r * r;
    for (std::int64_t k = 0; k < nb; ++k) (*jtr)[l.touch[k0 + k]] += r * jac[k];
  }
  const Eigen::VectorXd& theta0 = lik.theta0();
  for (int s = 0; s < l.nsyst; ++s) {
    const double cw = m.constraint_weights[s];
    if (!(cw > 0)) continue;
    const double d = x[l.npoi + s] - theta0[s];
    cost += 0.5 * cw * d * d;
    (*jtr)[l.npoi + s] += cw * d;
  }
  return cost;
}

FitResult FitCeres(const Likelihood& lik, const FitOptions& options, bool dogleg) {
  const auto t_start = Clock::now();
  const int npar = lik.num_params();
  std::string err;
  if (!options.IsValid(npar, &err)) throw std::invalid_argument(err);
  const FitMethod method = dogleg ? FitMethod::kCeresDogleg : FitMethod::kCeres;
  // The residuals below are Poisson deviances with gamma Barlow-Beeston terms.
  if (lik.data_term() != DataTerm::kPoisson ||
      (lik.options().bin_by_bin_stat && lik.bin_by_bin_stat_type() != BinByBinStatType::kGamma) ||
      lik.bin_by_bin_stat_mode() == BinByBinStatMode::kFull || !lik.model().external_terms.empty())
    throw std::invalid_argument(
        "fit method ceres supports the Poisson likelihood with gamma Barlow-Beeston lite "
        "terms and no external terms only, but this fit uses: " +
        lik.Describe() + "; use --method dense");
  // Its residuals are written for rabbit's model-wide systematic type (Gaussian constraints).
  if (!lik.model().tensor.entry_kind.empty() || !lik.model().constraint_kinds.empty())
    throw std::invalid_argument(
        "fit method ceres supports rabbit-style models (one systematic type, Gaussian "
        "constraints) only, but this model has HistFactory modifiers or Poisson "
        "constraints; use --method dense");
  const ceres::SparseLinearAlgebraLibraryType library = SparseLibrary();

  const Model& m = lik.model();
  const Layout layout = MakeLayout(lik);
  std::vector<bool> frozen =
      options.frozen.empty() ? std::vector<bool>(npar, false) : options.frozen;
  const Eigen::VectorXd x0 =
      options.initial_params.size() ? options.initial_params : lik.InitialParams();
  std::vector<double> x(x0.data(), x0.data() + npar);

  // Cost functions owned here (Problem does not take ownership).
  std::vector<std::unique_ptr<ceres::CostFunction>> costs;
  ceres::Problem::Options po;
  po.cost_function_ownership = ceres::DO_NOT_TAKE_OWNERSHIP;
  ceres::Problem problem(po);
  std::vector<double*> blocks;
  std::vector<char> in_problem(npar, 0);
  for (std::int64_t b = 0; b < m.nbins; ++b) {
    const std::int64_t k0 = layout.touch_start[b], k1 = layout.touch_start[b + 1];
    if (k1 == k0) continue;  // a constant term: no parameter touches this bin
    blocks.clear();
    for (std::int64_t k = k0; k < k1; ++k) {
      blocks.push_back(&x[layout.touch[k]]);
      in_problem[layout.touch[k]] = 1;
    }
    costs.push_back(std::make_unique<BinResidual>(layout, b));
    problem.AddResidualBlock(costs.back().get(), nullptr, blocks);
  }
  const Eigen::VectorXd& theta0 = lik.theta0();
  for (int s = 0; s < layout.nsyst; ++s) {
    const double cw = m.constraint_weights[s];
    if (!(cw > 0)) continue;
    const int i = layout.npoi + s;
    costs.push_back(std::make_unique<ConstraintResidual>(cw, theta0[s]));
    problem.AddResidualBlock(costs.back().get(), nullptr, &x[i]);
    in_problem[i] = 1;
  }
  for (int i = 0; i < npar; ++i)
    if (frozen[i] && in_problem[i]) problem.SetParameterBlockConstant(&x[i]);

  ceres::Solver::Options so;
  so.minimizer_type = ceres::TRUST_REGION;
  so.trust_region_strategy_type = dogleg ? ceres::DOGLEG : ceres::LEVENBERG_MARQUARDT;
  so.dogleg_type = ceres::TRADITIONAL_DOGLEG;
  so.linear_solver_type = ceres::SPARSE_NORMAL_CHOLESKY;
  so.sparse_linear_algebra_library_type = library;
  so.max_num_iterations = options.max_iterations;
  // Tight: the exact Newton polish converges in one or two steps from a Gauss-Newton minimum;
  // a loose stop here only moves work into the (more expensive per step) polish.
  so.function_tolerance = 1e-13;
  so.gradient_tolerance = 1e-12;
  so.parameter_tolerance = 1e-12;
  so.num_threads =
      lik.options().num_threads > 0 ? lik.options().num_threads : tbb::info::default_concurrency();
  so.logging_type = ceres::SILENT;
  so.minimizer_progress_to_stdout = false;
  if (!so.IsValid(&err))
    throw std::invalid_argument("fit method ceres: invalid Ceres options: " + err);

  // FitOptions::cancel: checked after every Ceres iteration (the polish checks it again).
  struct CancelCallback : ceres::IterationCallback {
    const std::function<bool()>* cancel = nullptr;
    ceres::CallbackReturnType operator()(const ceres::IterationSummary&) override {
      return (*cancel)() ? ceres::SOLVER_ABORT : ceres::SOLVER_CONTINUE;
    }
  } cancel_callback;
  if (options.cancel) {
    cancel_callback.cancel = &options.cancel;
    so.callbacks.push_back(&cancel_callback);
  }

  ceres::Solver::Summary summary;
  ceres::Solve(so, &problem, &summary);
  const double t_ceres = Seconds(t_start, Clock::now());
  if (std::getenv("LEPUS_DEBUG_CERES")) std::fprintf(stderr, "%s\n", summary.FullReport().c_str());
  const int ceres_iterations =
      std::max(0, summary.num_successful_steps) + std::max(0, summary.num_unsuccessful_steps);
  std::ostringstream note;
  note << "ceres " << (dogleg ? "dogleg" : "levenberg_marquardt") << " ("
       << ceres::SparseLinearAlgebraLibraryTypeToString(library) << "): " << ceres_iterations
       << " iterations, " << t_ceres << " s, "
       << ceres::TerminationTypeToString(summary.termination_type);

  const Eigen::VectorXd xc = Eigen::Map<const Eigen::VectorXd>(x.data(), npar);
  if (summary.termination_type != ceres::CONVERGENCE) {
    // No polish: report the Ceres point as it is.
    FitResult res;
    res.method = method;
    res.status = summary.termination_type == ceres::NO_CONVERGENCE ? FitStatus::kNotConverged
                                                                   : FitStatus::kFailed;
    res.message = options.cancel && options.cancel() ? std::string(kCancelledMessage)
                                                     : note.str() + ": " + summary.message;
    res.frozen = frozen;
    res.x = xc;
    res.nll = lik.Value(xc);
    res.iterations = ceres_iterations;
    res.evaluations = std::max(0, summary.num_residual_evaluations);
    res.values = xc;
    for (int p = 0; p < layout.npoi; ++p) res.values[p] = lik.PoiValue(xc[p]);
    res.errors = Eigen::VectorXd::Constant(npar, std::numeric_limits<double>::quiet_NaN());
    for (int i = 0; i < npar; ++i)
      if (frozen[i]) res.errors[i] = 0.0;
    int nfree_unconstrained = 0;
    for (int i = 0; i < npar; ++i)
      if (!frozen[i] && !lik.params()[i].constrained) ++nfree_unconstrained;
    res.gof_chi2 = 2.0 * res.nll;
    res.gof_ndf = static_cast<int>(m.nbins) - nfree_unconstrained;
    res.gof_p = ChiSquarePValue(res.gof_chi2, res.gof_ndf);
    res.time_evaluation =
        summary.residual_evaluation_time_in_seconds + summary.jacobian_evaluation_time_in_seconds;
    res.time_linear_algebra = summary.linear_solver_time_in_seconds;
    res.time_total = Seconds(t_start, Clock::now());
    return res;
  }

  // Exact Newton polish from the Ceres minimum: dense Newton (full covariance) when the dense
  // method would be chosen, matrix-free Newton-CG (covariance rows of the targets) otherwise.
  FitOptions polish = options;
  polish.initial_params = xc;
  const int nfree = static_cast<int>(std::count(frozen.begin(), frozen.end(), false));
  polish.method =
      nfree > options.matrix_free_threshold ? FitMethod::kMatrixFree : FitMethod::kDense;
  FitResult res =
      polish.method == FitMethod::kMatrixFree ? FitMatrixFree(lik, polish) : Fit(lik, polish);
  note << "; exact Newton polish (" << ToString(polish.method) << "): " << res.iterations
       << " iterations, " << res.time_total << " s";
  res.message = res.message.empty() ? note.str() : note.str() + "; " + res.message;
  res.method = method;
  res.iterations += ceres_iterations;
  res.evaluations += std::max(0, summary.num_residual_evaluations);
  res.time_evaluation +=
      summary.residual_evaluation_time_in_seconds + summary.jacobian_evaluation_time_in_seconds;
  res.time_linear_algebra += summary.linear_solver_time_in_seconds;
  res.time_total = Seconds(t_start, Clock::now());
  return res;
}

}  // namespace lepus::engine::detail
