#include "lepus/engine/toys.h"

#include <atomic>
#include <cmath>
#include <mutex>
#include <random>
#include <stdexcept>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

namespace lepus::engine {

std::string ToString(ToyMode mode) { return mode == ToyMode::kExpected ? "expected" : "observed"; }

bool ToyOptions::IsValid(int num_params, std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (ntoys <= 0) return fail("ToyOptions.ntoys is " + std::to_string(ntoys) + ", but must be > 0");
  if (num_threads < 0)
    return fail("ToyOptions.num_threads is " + std::to_string(num_threads) + ", but must be >= 0");
  if (generate_at.size() != 0 && generate_at.size() != num_params)
    return fail("ToyOptions.generate_at has " + std::to_string(generate_at.size()) +
                " entries, but must have " + std::to_string(num_params));
  const int end = toy_end < 0 ? ntoys : toy_end;
  if (toy_begin < 0 || toy_begin > end || end > ntoys)
    return fail("ToyOptions toy range [" + std::to_string(toy_begin) + ", " +
                std::to_string(toy_end) + ") is not within [0, ntoys = " + std::to_string(ntoys) +
                "]");
  for (int p : pull_params)
    if (p < 0 || p >= num_params)
      return fail("ToyOptions.pull_params has " + std::to_string(p) + ", out of range");
  return fit.IsValid(num_params, error);
}

ToyResults RunToys(const Likelihood& lik, const ToyOptions& opt) {
  const int npar = lik.num_params();
  std::string err;
  if (!opt.IsValid(npar, &err)) throw std::invalid_argument(err);
  const Model& m = lik.model();
  const int npoi = m.num_signals;
  // Data fluctuations as rabbit throws them: Poisson (default) or Gaussian (normal_data); a
  // covariance fit needs Gaussian data with its covariance, a Poisson fit Poisson data.
  if (lik.data_term() == DataTerm::kPoisson && opt.normal_data)
    throw std::invalid_argument(
        "Gaussian toy data are for chi-square and covariance fits, but this fit uses " +
        lik.Describe());
  if (lik.data_term() == DataTerm::kCovariance && opt.poisson && !opt.normal_data)
    throw std::invalid_argument(
        "toys of a covariance fit need Gaussian data with the data covariance "
        "(--normal-data; rabbit: --toysDataRandomize normal)");
  const BinByBinStatType bbtype = lik.bin_by_bin_stat_type();

  // Generating point.
  Eigen::VectorXd gen;
  if (opt.generate_at.size()) {
    gen = opt.generate_at;
  } else if (opt.mode == ToyMode::kExpected) {
    gen = lik.InitialParams();
    if (opt.fit.initial_params.size()) gen = opt.fit.initial_params;
  } else {
    FitResult best = Fit(lik, opt.fit);
    if (!best.ok())
      throw NumericalError(
          "observed toys: the fit to the data did not converge (" + ToString(best.status) +
          (best.message.empty() ? "" : ": " + best.message) + "); no toys generated at it");
    gen = best.x;
  }
  const Eigen::VectorXd expected = lik.ExpectedYields(gen, false).head(m.nbins);
  const Eigen::VectorXd& kstat = lik.bb_kstat();

  Eigen::VectorXd sig_data, sig_beta0;
  Eigen::MatrixXd factor;  // covariance fits: F F^T = W^-1
  if ((opt.randomize_constraints && bbtype != BinByBinStatType::kGamma) || opt.normal_data)
    lik.GlobalObservableSigmas(gen, &sig_data, &sig_beta0, &factor);
  const bool normal = opt.poisson && opt.normal_data;

  ToyResults out;
  out.truth = gen;
  for (int p = 0; p < npoi; ++p) out.truth[p] = lik.PoiValue(gen[p]);
  out.values = Eigen::MatrixXd::Constant(opt.ntoys, npar, std::nan(""));
  out.errors = out.values;
  out.status.assign(opt.ntoys, FitStatus::kFailed);
  out.nll = Eigen::VectorXd::Constant(opt.ntoys, std::nan(""));
  out.gof_chi2 = out.nll;

  FitOptions fo = opt.fit;
  fo.initial_params = gen;  // start each toy at the truth
  std::vector<int> ndf(opt.ntoys, 0);
  const int tbegin = opt.toy_begin, tend = opt.toy_end < 0 ? opt.ntoys : opt.toy_end;
  const int ntotal = tend - tbegin;
  const int threads = opt.num_threads > 0 ? opt.num_threads : tbb::info::default_concurrency();
  tbb::task_arena arena(threads);
  tbb::enumerable_thread_specific<Likelihood> clones([&] { return lik.Clone(1); });
  std::atomic<int> done{0};
  std::mutex mu;
  arena.execute([&] {
    tbb::parallel_for(tbegin, tend, [&](int t) {
      if (opt.fit.cancel && opt.fit.cancel()) {  // cancelled: the toys not yet started are skipped
        out.status[t] = FitStatus::kFailed;
        ++done;
        return;
      }
      std::seed_seq seq{static_cast<std::uint32_t>(opt.seed),
                        static_cast<std::uint32_t>(opt.seed >> 32), static_cast<std::uint32_t>(t),
                        0x6c657075u};
      std::mt19937_64 rng(seq);
      Eigen::VectorXd data(m.nbins);
      if (normal) {
        std::normal_distribution<double> gaus(0.0, 1.0);
        Eigen::VectorXd z(m.nbins);
        for (Eigen::Index b = 0; b < m.nbins; ++b) z[b] = gaus(rng);
        if (factor.size() > 0) {
          data = expected + factor * z;
        } else {
          for (Eigen::Index b = 0; b < m.nbins; ++b)
            data[b] = expected[b] + std::sqrt(std::max(expected[b], 0.0)) * z[b];
        }
      }
      for (Eigen::Index b = 0; b < m.nbins && !normal; ++b) {
        if (opt.poisson) {
          std::poisson_distribution<long long> pois(std::max(expected[b], 0.0));
          data[b] = expected[b] > 0 ? static_cast<double>(pois(rng)) : 0.0;
        } else {
          data[b] = expected[b];
        }
      }
      Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(m.num_systematics());
      Eigen::VectorXd beta0 = lik.beta0();
      if (opt.randomize_constraints) {
        std::normal_distribution<double> gaus(0.0, 1.0);
        for (int s = 0; s < m.num_systematics(); ++s) {
          const double cw = m.constraint_weights[s];
          if (!m.constraint_kinds.empty() && m.constraint_kinds[s] == ConstraintKind::kPoisson) {
            // HistFactory's shapesys: the auxiliary count tau theta0 ~ Poisson(tau theta_gen).
            std::poisson_distribution<long long> aux(std::max(cw * gen[npoi + s], 0.0));
            theta0[s] = static_cast<double>(aux(rng)) / cw;
          } else {
            theta0[s] = cw > 0 ? gen[npoi + s] + gaus(rng) / std::sqrt(cw) : 0.0;
          }
        }
        // beta0 around beta = beta0 of the generating point with its constraint's spread: gamma
        // (k, 1/k); normal-multiplicative N(1, 1/k); normal-additive N(0, 1) (rabbit's frequentist
        // toys).
        for (Eigen::Index b = 0; b < beta0.size(); ++b) {
          if (bbtype == BinByBinStatType::kGamma) {
            if (kstat[b] > 0) {
              std::gamma_distribution<double> gam(kstat[b], 1.0 / kstat[b]);
              beta0[b] = std::max(gam(rng), 1e-300);
            }
          } else if (sig_beta0[b] > 0) {
            std::normal_distribution<double> gaus(beta0[b], sig_beta0[b]);
            beta0[b] = gaus(rng);
          }
        }
      } else {
        for (int s = 0; s < m.num_systematics(); ++s)
          if (m.constraint_weights[s] > 0) theta0[s] = gen[npoi + s];
      }
      Likelihood& l = clones.local();
      try {
        l.SetData(data);
      } catch (const std::invalid_argument&) {
        // A chi-square toy with an empty (or, Gaussian, negative) bin has no variance there:
        // the toy fails (rabbit stops on it), the ensemble goes on.
        out.status[t] = FitStatus::kFailed;
        const int d = ++done;
        if (opt.progress) {
          std::lock_guard<std::mutex> lock(mu);
          opt.progress(d, ntotal);
        }
        return;
      }
      l.SetGlobalObservables(theta0, beta0);
      FitOptions f = fo;
      f.compute_covariance = true;
      const FitResult r = Fit(l, f);
      out.status[t] = r.status;
      out.values.row(t) = r.values.transpose();
      out.errors.row(t) = r.errors.transpose();
      out.nll[t] = r.nll;
      out.gof_chi2[t] = r.gof_chi2;
      ndf[t] = r.gof_ndf;
      const int d = ++done;
      if (opt.progress) {
        std::lock_guard<std::mutex> lock(mu);
        opt.progress(d, ntotal);
      }
    });
  });
  out.gof_ndf = tbegin < tend ? ndf[tbegin] : 0;
  SummarizeToys(lik, opt, &out);
  return out;
}

void SummarizeToys(const Likelihood& lik, const ToyOptions& opt, ToyResults* results) {
  ToyResults& out = *results;
  const int npar = lik.num_params();
  const FitOptions& fo = opt.fit;
  out.converged = 0;
  out.gof_mean = out.gof_width = 0.0;
  out.pulls.clear();
  // Summaries over converged toys.
  std::vector<int> pp = opt.pull_params;
  if (pp.empty())
    for (int i = 0; i < npar; ++i)
      if (lik.params()[i].kind != ParamKind::kNuisance && !(fo.frozen.size() && fo.frozen[i]))
        pp.push_back(i);
  double g1 = 0, g2 = 0;
  for (int t = 0; t < opt.ntoys; ++t)
    if (out.status[t] == FitStatus::kConverged) {
      ++out.converged;
      g1 += out.gof_chi2[t];
      g2 += out.gof_chi2[t] * out.gof_chi2[t];
    }
  if (out.converged > 0) {
    out.gof_mean = g1 / out.converged;
    out.gof_width = std::sqrt(std::max(g2 / out.converged - out.gof_mean * out.gof_mean, 0.0));
  }
  for (int p : pp) {
    PullSummary s;
    s.param = p;
    s.name = lik.params()[p].name;
    s.truth = out.truth[p];
    double s1 = 0, s2 = 0, e1 = 0, b1 = 0;
    int n = 0;
    for (int t = 0; t < opt.ntoys; ++t) {
      if (out.status[t] != FitStatus::kConverged || !(out.errors(t, p) > 0)) continue;
      const double pull = (out.values(t, p) - s.truth) / out.errors(t, p);
      s1 += pull;
      s2 += pull * pull;
      e1 += out.errors(t, p);
      b1 += out.values(t, p) - s.truth;
      ++n;
    }
    if (n > 0) {
      s.mean = s1 / n;
      s.width = std::sqrt(std::max(s2 / n - s.mean * s.mean, 0.0));
      s.mean_error = e1 / n;
      s.bias = b1 / n;
    }
    out.pulls.push_back(s);
  }
}

}  // namespace lepus::engine
