#include "lepus/engine/hypotest.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/tools/toms748_solve.hpp>

namespace lepus::engine {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Standard normal CDF (erfc keeps the far tails accurate).
double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Z = Phi^-1(1 - p).
double Significance(double p) {
  if (!(p > 0.0)) return p == 0.0 ? kInf : kNaN;
  if (p >= 1.0) return -kInf;
  return boost::math::quantile(
      boost::math::complement(boost::math::normal_distribution<double>(), p));
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

bool TwoSided(TestStatistic s) { return s == TestStatistic::kTMu || s == TestStatistic::kTMuTilde; }
bool BoundedAtZero(TestStatistic s) {
  return s == TestStatistic::kQTilde || s == TestStatistic::kTMuTilde || s == TestStatistic::kQ0;
}

// Everything a test statistic needs to know about the POI and the fits.
struct Setup {
  int poi = -1;
  int npar = 0;
  bool sqrt_coordinate = false;              // signal strength with poi_positive: x = sqrt(mu)
  double model_lo = -kInf, model_hi = kInf;  // the POI's domain (model bounds, mu >= 0 for x^2)
  double lo = -kInf, hi = kInf;  // mu-hat is kept in [lo, hi] (model bounds; 0 for tilde / q0)
  TestStatistic stat = TestStatistic::kQTilde;
  FitOptions fit;
  std::vector<bool> frozen;  // the user's frozen parameters [npar]
  std::string name;
};

Setup MakeSetup(const Likelihood& lik, const HypoTestOptions& opt) {
  std::string err;
  if (!opt.IsValid(lik, &err)) throw std::invalid_argument(err);
  Setup s;
  s.npar = lik.num_params();
  s.poi = opt.poi >= 0 ? opt.poi : DefaultPoi(lik);
  s.stat = opt.test_stat;
  s.fit = opt.fit;
  s.frozen = opt.fit.frozen.empty() ? std::vector<bool>(s.npar, false) : opt.fit.frozen;
  s.name = lik.params()[s.poi].name;
  const Model& m = lik.model();
  if (s.poi < m.num_signals) {
    s.sqrt_coordinate = lik.options().poi_positive;
    if (s.sqrt_coordinate) s.model_lo = 0.0;
  } else {
    const int sys = s.poi - m.num_signals;
    if (!m.lower_bounds.empty()) s.model_lo = m.lower_bounds[sys];
    if (!m.upper_bounds.empty()) s.model_hi = m.upper_bounds[sys];
  }
  s.lo = s.model_lo;
  s.hi = s.model_hi;
  if (BoundedAtZero(s.stat)) s.lo = std::max(s.lo, 0.0);
  return s;
}

void CheckValue(const Setup& s, double mu) {
  if (!std::isfinite(mu))
    throw std::invalid_argument("the tested value of " + s.name + " is " + Num(mu) +
                                ", but must be finite");
  if (mu < s.model_lo || mu > s.model_hi)
    throw std::invalid_argument("the tested value of " + s.name + " is " + Num(mu) +
                                ", outside its domain [" + Num(s.model_lo) + ", " +
                                Num(s.model_hi) + "]");
  if (s.stat == TestStatistic::kQ0 && mu != 0.0)
    throw std::invalid_argument("q0 tests " + s.name +
                                " = 0 (the background-only hypothesis), but the tested value is " +
                                Num(mu));
}

double ToInternal(const Setup& s, double mu) {
  return s.sqrt_coordinate ? std::sqrt(std::max(mu, 0.0)) : mu;
}
double ToReported(const Likelihood& lik, const Setup& s, double x) {
  return s.poi < lik.model().num_signals ? lik.PoiValue(x) : x;
}

struct FitOutcome {
  bool ok = false;
  std::string message;
  double nll = kNaN;
  double mu = kNaN;     // reported POI value
  double error = kNaN;  // of the POI (free fits with covariance)
  Eigen::VectorXd x;
};

std::string Describe(const FitResult& r) {
  return ToString(r.status) + (r.message.empty() ? "" : ": " + r.message);
}

FitOutcome ConditionalFit(const Likelihood& lik, const Setup& s, double mu,
                          const Eigen::VectorXd& start, const std::string& what) {
  FitOptions f = s.fit;
  f.compute_covariance = false;
  f.initial_params = start;
  f.initial_params[s.poi] = ToInternal(s, mu);
  f.frozen = s.frozen;
  f.frozen[s.poi] = true;
  const FitResult r = Fit(lik, f);
  FitOutcome o;
  o.ok = r.ok();
  o.x = r.x;
  o.nll = r.nll;
  o.mu = mu;
  if (!o.ok)
    o.message = "the fit of " + what + " with " + s.name + " = " + Num(mu) + " did not converge (" +
                Describe(r) + ")";
  return o;
}

// The free fit, mu-hat kept in [s.lo, s.hi]: when the unconstrained minimum lies outside, the
// profile likelihood is minimised on the boundary, so the fit is redone with the POI fixed there.
// (When Fit itself keeps the POI inside the model's bounds, only the statistic's own bound, 0 for
// the tilde statistics and q0, still triggers the refit.)
FitOutcome FreeFit(const Likelihood& lik, const Setup& s, const Eigen::VectorXd& start,
                   bool covariance, const std::string& what) {
  FitOptions f = s.fit;
  f.compute_covariance = covariance;
  f.initial_params = start;
  f.frozen = s.frozen;
  FitResult r = Fit(lik, f);
  FitOutcome o;
  if (!r.ok() && s.sqrt_coordinate) {
    // mu = x^2: x = 0 is a stationary point of every profile; a minimum on the boundary mu = 0
    // where d NLL / d mu = 0 (the Asimov data at mu' = 0) is degenerate (quartic in x). Retry
    // from mu = 1, then accept the boundary when the profile rises from it.
    f.initial_params[s.poi] = 1.0;
    r = Fit(lik, f);
    if (!r.ok()) {
      const FitOutcome at0 = ConditionalFit(lik, s, 0.0, start, what);
      const FitOutcome eps = ConditionalFit(lik, s, 1e-6, start, what);
      if (at0.ok && eps.ok && at0.nll <= eps.nll) {
        FitOutcome b = at0;
        if (covariance) b.error = kNaN;
        return b;
      }
    }
  }
  if (!r.ok()) {
    o.message = "the free fit of " + what + " did not converge (" + Describe(r) + ")";
    return o;
  }
  o.ok = true;
  o.x = r.x;
  o.nll = r.nll;
  o.mu = ToReported(lik, s, r.x[s.poi]);
  if (covariance && r.errors.size() > s.poi) o.error = r.errors[s.poi];
  const double bound = o.mu < s.lo ? s.lo : (o.mu > s.hi ? s.hi : kNaN);
  if (std::isfinite(bound)) {
    FitOutcome b = ConditionalFit(lik, s, bound, r.x, what + " (" + s.name + "-hat at its bound)");
    b.error = o.error;
    return b;
  }
  return o;
}

struct StatValue {
  bool ok = false;
  std::string message;
  double q = kNaN, mu_hat = kNaN, nll_free = kNaN, nll_cond = kNaN;
  Eigen::VectorXd x_cond;
};

// The test statistic at mu from the (bounded) free fit and the conditional fit.
StatValue ComputeStat(const Likelihood& lik, const Setup& s, double mu, const FitOutcome& free,
                      const std::string& what) {
  StatValue v;
  if (!free.ok) {
    v.message = free.message;
    return v;
  }
  v.mu_hat = free.mu;
  v.nll_free = free.nll;
  FitOutcome cond;
  if (free.mu == mu) {
    cond = free;  // mu-hat at the tested value (e.g. on its bound): the same minimum
  } else {
    cond = ConditionalFit(lik, s, mu, free.x, what);
    if (!cond.ok) {
      v.message = cond.message;
      return v;
    }
  }
  v.nll_cond = cond.nll;
  v.x_cond = cond.x;
  // Rounding can make the difference slightly negative at mu = mu-hat.
  double t = std::max(0.0, 2.0 * (cond.nll - free.nll));
  switch (s.stat) {
    case TestStatistic::kQ:
    case TestStatistic::kQTilde:
      if (free.mu > mu) t = 0.0;
      break;
    case TestStatistic::kQ0:
      if (free.mu < mu) t = 0.0;
      break;
    case TestStatistic::kTMu:
    case TestStatistic::kTMuTilde:
      break;
  }
  v.q = t;
  v.ok = true;
  return v;
}

Eigen::VectorXd StartPoint(const Likelihood& lik, const Setup& s) {
  return s.fit.initial_params.size() ? s.fit.initial_params : lik.InitialParams();
}

HypoTestResult BaseResult(const Setup& s, double mu, HypoCalculator calc) {
  HypoTestResult r;
  r.poi = s.poi;
  r.poi_name = s.name;
  r.poi_value = mu;
  r.test_stat = s.stat;
  r.calculator = calc;
  r.q_obs = r.mu_hat = r.nll_free = r.nll_conditional = r.q_asimov = r.sigma_asimov = kNaN;
  r.cls_obs = r.clsb_obs = r.clb_obs = r.p_value = r.significance = kNaN;
  r.cls_exp.fill(kNaN);
  r.clsb_exp.fill(kNaN);
  r.clb_exp.fill(kNaN);
  return r;
}

// The asymptotic calculator. The fits that do not depend on the tested value (the free fit to the
// data, the Asimov data set and the free fit to it) are made once and shared by every Evaluate.
class Asymptotic {
 public:
  Asymptotic(const Likelihood& lik, Setup setup) : lik_(lik), s_(std::move(setup)) {}

  // need_obs = false: only the Asimov quantities (the expected band) are computed.
  HypoTestResult Evaluate(double mu, bool need_obs) {
    CheckValue(s_, mu);
    HypoTestResult r = BaseResult(s_, mu, HypoCalculator::kAsymptotics);
    if (!Prepare(&r.message)) return r;
    r.mu_hat = free_.mu;
    r.nll_free = free_.nll;
    double sq = kNaN, q = kNaN;
    if (need_obs) {
      const StatValue v = ComputeStat(lik_, s_, mu, free_, "the data");
      if (!v.ok) {
        r.message = v.message;
        return r;
      }
      q = v.q;
      sq = std::sqrt(q);
      r.q_obs = q;
      r.nll_conditional = v.nll_cond;
    }
    const StatValue a = ComputeStat(*asimov_, s_, mu, free_asimov_, "the Asimov data");
    if (!a.ok) {
      r.message = a.message;
      return r;
    }
    const double qa = a.q, sqa = std::sqrt(qa);
    r.q_asimov = qa;
    r.sigma_asimov = sqa > 0 ? std::abs(mu - mu_prime_) / sqa : kInf;
    const TestStatistic st = s_.stat;
    if (TwoSided(st)) {
      if (need_obs) {
        // t_mu: chi-square with one degree of freedom; t~_mu: Cowan et al. eq. (45) with
        // mu^2 / sigma^2 = t~_mu,A (Asimov at mu' = 0).
        double p;
        if (st == TestStatistic::kTMu || sqa == 0.0 || q <= qa)
          p = 2.0 * Phi(-sq);
        else
          p = Phi(-sq) + Phi(-(q + qa) / (2.0 * sqa));
        r.clsb_obs = r.p_value = p;
      }
    } else {
      if (need_obs) {
        // pyhf's statistic in sqrt space: q and q0 always the first form; q~ switches to the
        // second when sqrt(q) > sqrt(q_A).
        double t = sq - sqa;
        if (st == TestStatistic::kQTilde && sq > sqa && sqa > 0.0) t = (q - qa) / (2.0 * sqa);
        r.clsb_obs = Phi(-(t + sqa));
        r.clb_obs = Phi(-t);
        r.cls_obs = r.clsb_obs / r.clb_obs;
        r.p_value = r.clsb_obs;
        if (st == TestStatistic::kQ0) r.significance = sq;  // Z_0 = sqrt(q_0)
      }
      for (int k = 0; k < 5; ++k) {
        const double n =
            -kExpectedBandSigmas[k];  // pyhf evaluates b-only quantiles n = 2, 1, 0, -1, -2
        r.clsb_exp[k] = Phi(-(n + sqa));
        r.clb_exp[k] = Phi(-n);
        r.cls_exp[k] = r.clsb_exp[k] / r.clb_exp[k];
      }
    }
    r.status = HypoTestStatus::kOk;
    return r;
  }

  // Makes the shared fits; false (and why) when one of them failed.
  bool Ready(std::string* message) { return Prepare(message); }
  double PoiError() const { return free_.error; }
  double MuHat() const { return free_.mu; }

 private:
  bool Prepare(std::string* message) {
    if (prepared_) {
      *message = prepare_message_;
      return prepare_ok_;
    }
    prepared_ = true;
    prepare_ok_ = DoPrepare();
    *message = prepare_message_;
    return prepare_ok_;
  }

  bool DoPrepare() {
    const Eigen::VectorXd start = StartPoint(lik_, s_);
    free_ = FreeFit(lik_, s_, start, true, "the data");
    if (!free_.ok) {
      prepare_message_ = free_.message;
      return false;
    }
    // The Asimov data set of pyhf: the expected yields at the conditional fit to the data at
    // mu' = 0 (q0: mu' = 1), with the global observables moved to that fit.
    mu_prime_ = s_.stat == TestStatistic::kQ0 ? 1.0 : 0.0;
    const FitOutcome at =
        ConditionalFit(lik_, s_, mu_prime_, free_.x, "the data (for the Asimov data set)");
    if (!at.ok) {
      prepare_message_ = at.message;
      return false;
    }
    const Model& m = lik_.model();
    asimov_ = std::make_unique<Likelihood>(lik_.Clone(lik_.options().num_threads));
    Eigen::VectorXd theta0 = lik_.theta0();
    for (int sys = 0; sys < m.num_systematics(); ++sys)
      if (m.constraint_weights[sys] > 0) theta0[sys] = at.x[m.num_signals + sys];
    try {
      // Yields with the profiled Barlow-Beeston factors and beta0 at those factors: the Asimov
      // likelihood is minimal (zero) exactly at the conditional fit.
      asimov_->SetData(lik_.ExpectedYields(at.x, true).head(m.nbins));
      asimov_->SetGlobalObservables(theta0, lik_.ProfiledBeta(at.x));
    } catch (const std::invalid_argument& e) {
      prepare_message_ = std::string("the Asimov data set is not valid: ") + e.what();
      return false;
    }
    free_asimov_ = FreeFit(*asimov_, s_, at.x, false, "the Asimov data");
    if (!free_asimov_.ok) {
      prepare_message_ = free_asimov_.message;
      return false;
    }
    return true;
  }

  const Likelihood& lik_;
  Setup s_;
  bool prepared_ = false, prepare_ok_ = false;
  std::string prepare_message_;
  FitOutcome free_, free_asimov_;
  double mu_prime_ = 0.0;
  std::unique_ptr<Likelihood> asimov_;
};

// Fraction of the sorted samples >= value.
double Tail(const std::vector<double>& sorted, double value) {
  if (sorted.empty()) return kNaN;
  const auto it = std::lower_bound(sorted.begin(), sorted.end(), value);
  return static_cast<double>(sorted.end() - it) / static_cast<double>(sorted.size());
}

// numpy.percentile with linear interpolation; values sorted.
double Percentile(const std::vector<double>& sorted, double percent) {
  if (sorted.empty()) return kNaN;
  const double pos = percent / 100.0 * static_cast<double>(sorted.size() - 1);
  const std::size_t i = static_cast<std::size_t>(std::floor(pos));
  if (i + 1 >= sorted.size()) return sorted.back();
  const double f = pos - static_cast<double>(i);
  return sorted[i] + f * (sorted[i + 1] - sorted[i]);
}

// One toy ensemble generated at gen (internal coordinates), the statistic at mu for each toy.
// Toy t of hypothesis h draws from its own stream seeded by (seed, t, h).
Eigen::VectorXd Ensemble(const Likelihood& lik, const Setup& s, const HypoTestOptions& opt,
                         double mu, const Eigen::VectorXd& gen, std::uint32_t hypothesis,
                         std::atomic<int>* done, int total, std::mutex* progress_mutex) {
  const Model& m = lik.model();
  const int nsig = m.num_signals;
  const BinByBinStatType bbtype = lik.bin_by_bin_stat_type();
  const Eigen::VectorXd expected = lik.ExpectedYields(gen, true).head(m.nbins);
  const Eigen::VectorXd beta_gen = lik.ProfiledBeta(gen);
  const Eigen::VectorXd& kstat = lik.bb_kstat();
  Eigen::VectorXd sig_data, sig_beta0;
  Eigen::MatrixXd factor;
  if (bbtype != BinByBinStatType::kGamma)
    lik.GlobalObservableSigmas(gen, &sig_data, &sig_beta0, &factor);
  Eigen::VectorXd q = Eigen::VectorXd::Constant(opt.ntoys, kNaN);
  const int threads = opt.num_threads > 0 ? opt.num_threads : tbb::info::default_concurrency();
  tbb::task_arena arena(threads);
  tbb::enumerable_thread_specific<Likelihood> clones([&] { return lik.Clone(1); });
  auto report = [&] {
    const int d = ++*done;
    if (opt.progress) {
      std::lock_guard<std::mutex> lock(*progress_mutex);
      opt.progress(d, total);
    }
  };
  arena.execute([&] {
    tbb::parallel_for(0, opt.ntoys, [&](int t) {
      if (opt.fit.cancel && opt.fit.cancel()) {
        report();
        return;
      }
      std::seed_seq seq{static_cast<std::uint32_t>(opt.seed),
                        static_cast<std::uint32_t>(opt.seed >> 32), static_cast<std::uint32_t>(t),
                        hypothesis, 0x68797074u};
      std::mt19937_64 rng(seq);
      Eigen::VectorXd data(m.nbins);
      for (Eigen::Index b = 0; b < m.nbins; ++b) {
        std::poisson_distribution<long long> pois(std::max(expected[b], 0.0));
        data[b] = expected[b] > 0 ? static_cast<double>(pois(rng)) : 0.0;
      }
      // Global observables: Gaussian centres ~ N(theta_gen, 1/sqrt(cw)); Poisson-constrained
      // centres = aux / tau with aux ~ Poisson(tau theta_gen); Barlow-Beeston centres around the
      // generating betas with their constraint's spread (gamma: mean beta, variance beta / k).
      Eigen::VectorXd theta0 = lik.theta0();
      std::normal_distribution<double> gaus(0.0, 1.0);
      for (int sys = 0; sys < m.num_systematics(); ++sys) {
        const double cw = m.constraint_weights[sys];
        if (!(cw > 0)) continue;
        const double g = gen[nsig + sys];
        const bool poisson =
            !m.constraint_kinds.empty() && m.constraint_kinds[sys] == ConstraintKind::kPoisson;
        if (poisson) {
          std::poisson_distribution<long long> aux(std::max(cw * g, 0.0));
          theta0[sys] = cw * g > 0 ? static_cast<double>(aux(rng)) / cw : 0.0;
        } else {
          theta0[sys] = g + gaus(rng) / std::sqrt(cw);
        }
      }
      Eigen::VectorXd beta0 = lik.beta0();
      for (Eigen::Index b = 0; b < beta0.size(); ++b) {
        if (bbtype == BinByBinStatType::kGamma) {
          if (kstat[b] > 0) {
            std::gamma_distribution<double> gam(kstat[b] * beta_gen[b], 1.0 / kstat[b]);
            beta0[b] = std::max(gam(rng), 1e-300);
          }
        } else if (sig_beta0.size() > b && sig_beta0[b] > 0) {
          std::normal_distribution<double> g(beta_gen[b], sig_beta0[b]);
          beta0[b] = g(rng);
        }
      }
      Likelihood& l = clones.local();
      try {
        l.SetData(data);
        l.SetGlobalObservables(theta0, beta0);
      } catch (const std::invalid_argument&) {
        report();  // e.g. a chi-square toy with an empty bin: the toy fails
        return;
      }
      const FitOutcome free = FreeFit(l, s, gen, false, "a toy");
      const StatValue v = ComputeStat(l, s, mu, free, "a toy");
      if (v.ok) q[t] = v.q;
      report();
    });
  });
  return q;
}

std::vector<double> Valid(const Eigen::VectorXd& q, int* failed) {
  std::vector<double> out;
  for (Eigen::Index i = 0; i < q.size(); ++i)
    if (std::isfinite(q[i])) out.push_back(q[i]);
  *failed = static_cast<int>(q.size() - static_cast<Eigen::Index>(out.size()));
  std::sort(out.begin(), out.end());
  return out;
}

HypoTestResult ToysTest(const Likelihood& lik, const Setup& s, const HypoTestOptions& opt,
                        double mu) {
  CheckValue(s, mu);
  HypoTestResult r = BaseResult(s, mu, HypoCalculator::kToys);
  if (lik.data_term() == DataTerm::kCovariance)
    throw std::invalid_argument("the toy calculator throws Poisson data, but this fit uses " +
                                lik.Describe() + " (use the asymptotic calculator)");
  const FitOutcome free = FreeFit(lik, s, StartPoint(lik, s), false, "the data");
  const StatValue obs = ComputeStat(lik, s, mu, free, "the data");
  if (!obs.ok) {
    r.message = obs.message;
    return r;
  }
  r.q_obs = obs.q;
  r.mu_hat = obs.mu_hat;
  r.nll_free = obs.nll_free;
  r.nll_conditional = obs.nll_cond;
  const bool two_sided = TwoSided(s.stat);
  // Generating points: the conditional fits to the data at the tested value (signal+background)
  // and at mu = 0 (background-only; q0: the tested value is 0 and the alternative mu = 1).
  Eigen::VectorXd gen_b;
  if (!two_sided) {
    const double mu_b = s.stat == TestStatistic::kQ0 ? 1.0 : 0.0;
    if (mu_b == mu) {
      gen_b = obs.x_cond;
    } else {
      const FitOutcome fb = ConditionalFit(lik, s, mu_b, free.x, "the data (background-only toys)");
      if (!fb.ok) {
        r.message = fb.message;
        return r;
      }
      gen_b = fb.x;
    }
  }
  std::atomic<int> done{0};
  std::mutex mutex;
  const int total = opt.ntoys * (two_sided ? 1 : 2);
  r.q_sb = Ensemble(lik, s, opt, mu, obs.x_cond, 0u, &done, total, &mutex);
  if (!two_sided) r.q_b = Ensemble(lik, s, opt, mu, gen_b, 1u, &done, total, &mutex);
  const std::vector<double> sb = Valid(r.q_sb, &r.failed_sb);
  const std::vector<double> bo = two_sided ? std::vector<double>() : Valid(r.q_b, &r.failed_b);
  if (sb.empty() || (!two_sided && bo.empty())) {
    r.message = "no toy fit converged (" + std::to_string(r.failed_sb + r.failed_b) + " failed)";
    return r;
  }
  r.clsb_obs = r.p_value = Tail(sb, r.q_obs);
  if (!two_sided) {
    r.clb_obs = Tail(bo, r.q_obs);
    r.cls_obs = r.clsb_obs / r.clb_obs;
    if (s.stat == TestStatistic::kQ0) r.significance = Significance(r.p_value);
    // pyhf's expected band: CLs+b, CLb and CLs of every background-only toy, their percentiles
    // at Phi(-2 .. 2).
    std::vector<double> vsb, vb, vs;
    for (double v : bo) {
      const double a = Tail(sb, v), b = Tail(bo, v);
      vsb.push_back(a);
      vb.push_back(b);
      vs.push_back(a / b);
    }
    std::sort(vsb.begin(), vsb.end());
    std::sort(vb.begin(), vb.end());
    std::sort(vs.begin(), vs.end());
    for (int k = 0; k < 5; ++k) {
      const double pct = 100.0 * Phi(kExpectedBandSigmas[k]);
      r.clsb_exp[k] = Percentile(vsb, pct);
      r.clb_exp[k] = Percentile(vb, pct);
      r.cls_exp[k] = Percentile(vs, pct);
    }
  }
  r.status = HypoTestStatus::kOk;
  if (r.failed_sb + r.failed_b > 0)
    r.message = std::to_string(r.failed_sb + r.failed_b) + " of " + std::to_string(total) +
                " toys failed (their fits did not converge) and are left out";
  return r;
}

}  // namespace

std::string ToString(TestStatistic stat) { return NameIn(kTestStatisticNames, stat); }
TestStatistic TestStatisticFromString(const std::string& text) {
  return ParseIn(kTestStatisticNames, text, "test statistic");
}

std::string ToString(HypoCalculator calculator) { return NameIn(kHypoCalculatorNames, calculator); }
HypoCalculator HypoCalculatorFromString(const std::string& text) {
  return ParseIn(kHypoCalculatorNames, text, "calculator");
}

std::string ToString(HypoTestStatus status) {
  return status == HypoTestStatus::kOk ? "ok" : "failed";
}

int DefaultPoi(const Likelihood& lik) {
  const Model& m = lik.model();
  if (m.num_signals > 0) return 0;
  if (!m.noi_indices.empty()) return m.num_signals + m.noi_indices.front();
  return -1;
}

bool HypoTestOptions::IsValid(const Likelihood& lik, std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  const int npar = lik.num_params();
  const int p = poi >= 0 ? poi : DefaultPoi(lik);
  if (p < 0)
    return fail(poi < -1 ? "HypoTestOptions.poi is " + std::to_string(poi) + ", but must be >= -1"
                         : "the model has no parameter of interest (no signal process and no "
                           "nuisance of interest)");
  if (p >= npar)
    return fail("HypoTestOptions.poi is " + std::to_string(p) + ", but the model has " +
                std::to_string(npar) + " parameters");
  if (!fit.frozen.empty() && static_cast<int>(fit.frozen.size()) == npar && fit.frozen[p])
    return fail("the parameter of interest " + lik.params()[p].name + " is frozen");
  if (ntoys <= 0)
    return fail("HypoTestOptions.ntoys is " + std::to_string(ntoys) + ", but must be > 0");
  if (num_threads < 0)
    return fail("HypoTestOptions.num_threads is " + std::to_string(num_threads) +
                ", but must be >= 0");
  return fit.IsValid(npar, error);
}

HypoTestResult HypoTest(const Likelihood& lik, double poi_value, const HypoTestOptions& opt) {
  Setup s = MakeSetup(lik, opt);
  if (opt.calculator == HypoCalculator::kToys) return ToysTest(lik, s, opt, poi_value);
  Asymptotic calc(lik, std::move(s));
  return calc.Evaluate(poi_value, true);
}

std::vector<HypoTestResult> HypoTestScan(const Likelihood& lik, const std::vector<double>& values,
                                         const HypoTestOptions& opt) {
  Setup s = MakeSetup(lik, opt);
  for (double v : values) CheckValue(s, v);
  std::vector<HypoTestResult> out;
  if (opt.calculator == HypoCalculator::kToys) {
    for (double v : values) out.push_back(ToysTest(lik, s, opt, v));
    return out;
  }
  Asymptotic calc(lik, std::move(s));
  for (double v : values) out.push_back(calc.Evaluate(v, true));
  return out;
}

namespace {

struct EvalFailure {
  std::string message;
};

}  // namespace

UpperLimitResult UpperLimit(const Likelihood& lik, const UpperLimitOptions& opt) {
  if (!(opt.cl > 0.0 && opt.cl < 1.0))
    throw std::invalid_argument("UpperLimitOptions.cl is " + Num(opt.cl) +
                                ", but must be in (0, 1)");
  if (!(opt.rel_tolerance > 0.0))
    throw std::invalid_argument("UpperLimitOptions.rel_tolerance is " + Num(opt.rel_tolerance) +
                                ", but must be > 0");
  if (opt.max_evaluations < 2)
    throw std::invalid_argument("UpperLimitOptions.max_evaluations is " +
                                std::to_string(opt.max_evaluations) + ", but must be >= 2");
  const TestStatistic st = opt.hypotest.test_stat;
  if (st != TestStatistic::kQ && st != TestStatistic::kQTilde)
    throw std::invalid_argument("upper limits use the one-sided statistics q or qtilde, not " +
                                ToString(st));
  const Setup s = MakeSetup(lik, opt.hypotest);
  UpperLimitResult out;
  out.cl = opt.cl;
  out.poi = s.poi;
  out.poi_name = s.name;
  out.observed = kNaN;
  out.expected.fill(kNaN);
  const bool toys = opt.hypotest.calculator == HypoCalculator::kToys;
  Asymptotic asym(lik, s);

  // Every hypothesis test made, by tested value (toys: the full test at every value, same seed).
  std::map<double, std::pair<HypoTestResult, bool>> cache;  // value -> (result, has observed)
  auto evaluate = [&](double mu, bool need_obs) -> const HypoTestResult& {
    auto it = cache.find(mu);
    if (it != cache.end() && (it->second.second || !need_obs)) return it->second.first;
    ++out.evaluations;
    HypoTestResult r = toys ? ToysTest(lik, s, opt.hypotest, mu) : asym.Evaluate(mu, need_obs);
    if (!r.ok())
      throw EvalFailure{"the hypothesis test at " + s.name + " = " + Num(mu) +
                        " failed: " + r.message};
    auto& slot = cache[mu];
    slot = {std::move(r), need_obs || toys};
    return slot.first;
  };
  const double target = 1.0 - opt.cl;

  try {
    double mu_hat, scale;
    if (toys) {
      const FitOutcome free = FreeFit(lik, s, StartPoint(lik, s), true, "the data");
      if (!free.ok) throw EvalFailure{free.message};
      mu_hat = free.mu;
      scale = free.error;
    } else {
      std::string message;
      if (!asym.Ready(&message)) throw EvalFailure{message};
      mu_hat = asym.MuHat();
      scale = asym.PoiError();
      if (!(scale > 0) || !std::isfinite(scale)) {
        // No Hessian error (e.g. mu-hat on a bound): the Asimov sigma at a value inside the domain.
        const double probe_at =
            std::min(std::max(mu_hat, std::max(s.model_lo, 0.0)) + 1.0, s.model_hi);
        const HypoTestResult probe = asym.Evaluate(probe_at, false);
        if (!probe.ok()) throw EvalFailure{probe.message};
        scale = probe.sigma_asimov;
      }
    }
    out.mu_hat = mu_hat;
    if (!(scale > 0) || !std::isfinite(scale)) scale = 1.0;

    // g(mu) = CLs(mu) - (1 - CL) for the observed (k < 0) or expected band entry k.
    auto g = [&](double mu, int k) {
      const HypoTestResult& r = evaluate(mu, k < 0);
      const double cls = k < 0 ? r.cls_obs : r.cls_exp[k];
      if (!std::isfinite(cls))
        throw EvalFailure{"CLs at " + s.name + " = " + Num(mu) + " is not a number"};
      return cls - target;
    };
    auto solve = [&](int k) -> double {
      // At mu = 0 (the background-only hypothesis itself) CLs = 1: the lower end of the bracket.
      double lo = std::max(s.model_lo, 0.0);
      double glo = lo > 0 ? g(lo, k) : 1.0 - target;
      if (glo <= 0)
        throw EvalFailure{"CLs is already below " + Num(target) + " at the lower end of " + s.name +
                          "'s domain (" + Num(lo) + ")"};
      // Start from what is known: the largest tested value with g > 0, the smallest with g <= 0.
      double hi = kNaN, ghi = kNaN;
      for (const auto& [mu, entry] : cache) {
        if (k < 0 && !entry.second) continue;
        const double cls = k < 0 ? entry.first.cls_obs : entry.first.cls_exp[k];
        if (!std::isfinite(cls) || mu < lo) continue;
        const double v = cls - target;
        if (v > 0 && mu > lo) lo = mu, glo = v;
        if (v <= 0 && (!std::isfinite(hi) || mu < hi)) hi = mu, ghi = v;
      }
      if (std::isfinite(hi) && hi < lo) hi = kNaN;  // non-monotonic CLs (toys): bracket anew
      double width = std::max(std::max(mu_hat, 0.0) - lo, 0.0) + 2.0 * scale;
      int steps = 0;
      while (!std::isfinite(hi)) {
        double next = std::min(lo + width, s.model_hi);
        const double v = g(next, k);
        if (v <= 0) {
          hi = next, ghi = v;
          break;
        }
        if (next >= s.model_hi)
          throw EvalFailure{"CLs stays above " + Num(target) + " up to the upper bound of " +
                            s.name + " (" + Num(s.model_hi) + ")"};
        lo = next, glo = v;
        width *= 2.0;
        if (++steps > 60 || out.evaluations > opt.max_evaluations * 6)
          throw EvalFailure{"no value of " + s.name + " with CLs below " + Num(target) +
                            " found up to " + Num(lo)};
      }
      if (ghi == 0.0) return hi;
      std::uintmax_t iters = static_cast<std::uintmax_t>(std::max(opt.max_evaluations - steps, 2));
      const double tol = opt.rel_tolerance;
      auto stop = [tol](double a, double b) {
        return std::abs(b - a) <= tol * std::max(std::abs(a), std::abs(b));
      };
      const auto root = boost::math::tools::toms748_solve([&](double mu) { return g(mu, k); }, lo,
                                                          hi, glo, ghi, stop, iters);
      if (!stop(root.first, root.second))
        throw EvalFailure{"the root finding of CLs = " + Num(target) + " did not converge in " +
                          std::to_string(opt.max_evaluations) + " evaluations (bracket [" +
                          Num(root.first) + ", " + Num(root.second) + "])"};
      return 0.5 * (root.first + root.second);
    };
    if (opt.expected)
      for (int k = 0; k < 5; ++k) out.expected[k] = solve(k);
    if (opt.observed) out.observed = solve(-1);
  } catch (const EvalFailure& f) {
    out.message = f.message;
    return out;
  }
  out.status = HypoTestStatus::kOk;
  return out;
}

}  // namespace lepus::engine
