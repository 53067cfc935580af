// Hypothesis tests and upper limits (engine/include/lepus/engine/hypotest.h) on one-bin counting
// models with closed-form answers: NLL(mu) = L - n + n ln(n / L), L = mu s + b, mu-hat = (n - b) / s;
// the Asimov data set at mu' = 0 is n_A = b.
#include <cmath>
#include <limits>

#include <doctest/doctest.h>

#include "lepus/engine/hypotest.h"

using namespace lepus::engine;

namespace {

constexpr double kS = 5.0, kB = 10.0;

// One bin: a signal (s = 5 at mu = 1) and a background (b = 10), n observed, no systematics.
Model Counting(double n, double s = kS, double b = kB) {
  Model m;
  m.processes = {"sig", "bkg"};
  m.num_signals = 1;
  m.nbins = m.nbins_full = 1;
  m.channels.push_back(Channel{"ch", {}, 1, false});
  m.data_obs = Eigen::VectorXd::Constant(1, n);
  m.sumw2 = Eigen::MatrixXd::Zero(1, 2);
  m.tensor = Tensor::FromDense(1, 2, 0, {s, b}, {}, {});
  return m;
}

// The same counting experiment with the POI as an unconstrained nuisance of interest (no signal
// processes, HistFactory-style): additive model, the signal row's yield is 5 theta.
Model CountingNoi(double n) {
  Model m;
  m.processes = {"sig", "bkg"};
  m.num_signals = 0;
  m.systematics = {"mu"};
  m.constraint_weights = {0.0};
  m.noi_indices = {0};
  m.systematic_type = SystematicType::kNormal;
  m.nbins = m.nbins_full = 1;
  m.channels.push_back(Channel{"ch", {}, 1, false});
  m.data_obs = Eigen::VectorXd::Constant(1, n);
  m.sumw2 = Eigen::MatrixXd::Zero(1, 2);
  m.tensor = Tensor::FromDense(1, 2, 1, {0.0, kB}, {kS, 0.0}, {});
  return m;
}

double Nll(double L, double n) { return L - n + (n > 0 ? n * std::log(n / L) : 0.0); }
double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Closed forms (Cowan, Cranmer, Gross, Vitells 2011) for the counting model.
double QMu(double mu, double n, bool tilde) {
  double muhat = (n - kB) / kS;
  if (tilde) muhat = std::max(muhat, 0.0);
  if (muhat > mu) return 0.0;
  return 2.0 * (Nll(mu * kS + kB, n) - Nll(muhat * kS + kB, n));
}
double Q0(double n) { return n > kB ? 2.0 * (Nll(kB, n) - Nll(n, n)) : 0.0; }

// pyhf's asymptotic CLs from q and q_A.
double ClsFormula(double q, double qa, bool tilde) {
  const double sq = std::sqrt(q), sqa = std::sqrt(qa);
  double t = sq - sqa;
  if (tilde && sq > sqa) t = (q - qa) / (2 * sqa);
  return Phi(-(t + sqa)) / Phi(-t);
}

LikelihoodOptions NoBb() {
  LikelihoodOptions o;
  o.bin_by_bin_stat = false;
  return o;
}

}  // namespace

TEST_CASE("q_mu, q~_mu, q_0 and t_mu of a counting experiment match their closed forms") {
  for (double n : {12.0, 7.0, 25.0}) {
    Likelihood lik(Counting(n), NoBb());
    for (double mu : {0.5, 1.0, 2.0, 3.5}) {
      CAPTURE(n);
      CAPTURE(mu);
      HypoTestOptions o;
      o.test_stat = TestStatistic::kQTilde;
      HypoTestResult r = HypoTest(lik, mu, o);
      REQUIRE(r.ok());
      CHECK(r.q_obs == doctest::Approx(QMu(mu, n, true)).epsilon(1e-7));
      CHECK(r.mu_hat == doctest::Approx(std::max((n - kB) / kS, 0.0)).epsilon(1e-7));
      CHECK(r.q_asimov == doctest::Approx(QMu(mu, kB, true)).epsilon(1e-7));
      CHECK(r.cls_obs ==
            doctest::Approx(ClsFormula(QMu(mu, n, true), QMu(mu, kB, true), true)).epsilon(1e-7));
      o.test_stat = TestStatistic::kQ;
      r = HypoTest(lik, mu, o);
      REQUIRE(r.ok());
      CHECK(r.q_obs == doctest::Approx(QMu(mu, n, false)).epsilon(1e-7));
      CHECK(
          r.cls_obs ==
          doctest::Approx(ClsFormula(QMu(mu, n, false), QMu(mu, kB, false), false)).epsilon(1e-7));
      o.test_stat = TestStatistic::kTMu;
      r = HypoTest(lik, mu, o);
      REQUIRE(r.ok());
      const double t = 2.0 * (Nll(mu * kS + kB, n) - Nll(n, n));
      CHECK(r.q_obs == doctest::Approx(t).epsilon(1e-7));
      CHECK(r.p_value == doctest::Approx(2.0 * Phi(-std::sqrt(t))).epsilon(1e-7));
      CHECK(std::isnan(r.cls_obs));
    }
    HypoTestOptions o;
    o.test_stat = TestStatistic::kQ0;
    const HypoTestResult r = HypoTest(lik, 0.0, o);
    REQUIRE(r.ok());
    CHECK(r.q_obs == doctest::Approx(Q0(n)).epsilon(1e-7).scale(1e-12));
    // Asimov at mu' = 1: n_A = s + b.
    CHECK(r.q_asimov ==
          doctest::Approx(2.0 * (Nll(kB, kS + kB) - Nll(kS + kB, kS + kB))).epsilon(1e-7));
    CHECK(r.p_value == doctest::Approx(Phi(-std::sqrt(Q0(n)))).epsilon(1e-7));
    CHECK(r.significance == doctest::Approx(std::sqrt(Q0(n))).epsilon(1e-7).scale(1e-12));
    CHECK_THROWS_AS(HypoTest(lik, 1.0, o), std::invalid_argument);  // q0 tests mu = 0 only
  }
}

TEST_CASE("asymptotic CLs, CLs+b, CLb and the expected band against scipy") {
  // Values from scipy (s = 5, b = 10; pyhf's formulas), produced by:
  //   from scipy.stats import norm; import numpy as np
  //   nll = lambda L, n: L - n + n*np.log(n/L)
  //   def q(mu, n, tilde):
  //       muhat = max((n-10)/5, 0.0) if tilde else (n-10)/5
  //       return 0.0 if muhat > mu else 2*(nll(5*mu+10, n) - nll(5*muhat+10, n))
  //   qo, qa = q(mu, n, tilde), q(mu, 10, tilde); sq, sqa = np.sqrt(qo), np.sqrt(qa)
  //   t = (qo-qa)/(2*sqa) if tilde and sq > sqa else sq - sqa
  //   clsb, clb = norm.cdf(-(t+sqa)), norm.cdf(-t)
  //   exp = [norm.cdf(-(k+sqa))/norm.cdf(-k) for k in [2, 1, 0, -1, -2]]
  struct Case {
    double n, mu;
    TestStatistic stat;
    double cls, clsb, clb;
    std::array<double, 5> exp;
  };
  const Case cases[] = {
      {12,
       1.0,
       TestStatistic::kQTilde,
       0.2945737703577463,
       0.21103312305314997,
       0.7164016089988594,
       {0.016221573374564324, 0.05530132327843155, 0.1691232334708591, 0.4205415033369178,
        0.7510932496674695}},
      {12,
       2.0,
       TestStatistic::kQ,
       0.03758975216883682,
       0.026559281364619762,
       0.7065564371195379,
       {0.00016613102046109292, 0.0015961497553274619, 0.013237750156171525, 0.08295827371047866,
        0.3239410030739567}},
      // mu-hat = -0.6 < 0: q~ refits at the bound, and sqrt(q~) > sqrt(q~_A) takes pyhf's second branch.
      {7,
       1.5,
       TestStatistic::kQTilde,
       0.012649704558467603,
       0.00246409945117376,
       0.19479501989825626,
       {0.0017080878249446218, 0.009971616072057876, 0.051017940475089466, 0.20291175098974548,
        0.5315010390152589}},
      {7,
       1.5,
       TestStatistic::kQ,
       0.011680351164436291,
       0.002127180996866835,
       0.18211618528589807,
       {0.0017080878249446218, 0.009971616072057876, 0.051017940475089466, 0.20291175098974548,
        0.5315010390152589}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.n);
    CAPTURE(c.mu);
    CAPTURE(ToString(c.stat));
    for (bool noi : {false, true}) {
      for (bool positive : {false, true}) {
        if (noi && positive) continue;
        CAPTURE(noi);
        CAPTURE(positive);
        LikelihoodOptions lo = NoBb();
        lo.poi_positive = positive;
        if (positive && c.stat == TestStatistic::kQ && c.n < kB)
          continue;  // mu >= 0 makes q into q~
        Likelihood lik(noi ? CountingNoi(c.n) : Counting(c.n), lo);
        CHECK(DefaultPoi(lik) == 0);
        HypoTestOptions o;
        o.test_stat = c.stat;
        const HypoTestResult r = HypoTest(lik, c.mu, o);
        CAPTURE(r.message);
        REQUIRE(r.ok());
        CHECK(r.cls_obs == doctest::Approx(c.cls).epsilon(1e-6));
        CHECK(r.clsb_obs == doctest::Approx(c.clsb).epsilon(1e-6));
        CHECK(r.clb_obs == doctest::Approx(c.clb).epsilon(1e-6));
        for (int k = 0; k < 5; ++k) CHECK(r.cls_exp[k] == doctest::Approx(c.exp[k]).epsilon(1e-6));
        CHECK(r.cls_exp[0] < r.cls_exp[2]);  // pyhf's order: -2 sigma first, the smallest
      }
    }
  }
}

TEST_CASE("upper limits: CLs = 1 - CL at the limits, observed and expected against scipy") {
  // scipy: brentq(lambda m: CLs(m) - 0.05, 1e-6, 50, xtol=1e-14) with the q~ formulas above.
  const double expected[5] = {0.7408960736436044, 1.0305991051505636, 1.507868958459849,
                              2.2524498542409623, 3.2770697414344654};
  for (auto [n, observed] :
       {std::pair{12.0, 1.8784408899452074}, std::pair{7.0, 1.0759352268070306}}) {
    CAPTURE(n);
    Likelihood lik(Counting(n), NoBb());
    UpperLimitOptions o;
    const UpperLimitResult lim = UpperLimit(lik, o);
    REQUIRE(lim.ok());
    CHECK(lim.observed == doctest::Approx(observed).epsilon(1e-6));
    for (int k = 0; k < 5; ++k)
      CHECK(lim.expected[k] == doctest::Approx(expected[k]).epsilon(1e-6));
    const HypoTestResult at = HypoTest(lik, lim.observed, o.hypotest);
    REQUIRE(at.ok());
    CHECK(std::abs(at.cls_obs - 0.05) < 1e-6);
    for (int k = 0; k < 5; ++k) {
      const HypoTestResult e = HypoTest(lik, lim.expected[k], o.hypotest);
      REQUIRE(e.ok());
      CHECK(std::abs(e.cls_exp[k] - 0.05) < 1e-6);
    }
    // Another CL.
    o.cl = 0.9;
    o.expected = false;
    const UpperLimitResult l90 = UpperLimit(lik, o);
    REQUIRE(l90.ok());
    CHECK(l90.observed < lim.observed);
    CHECK(std::abs(HypoTest(lik, l90.observed, o.hypotest).cls_obs - 0.1) < 1e-6);
  }
  // The same limits with mu = x^2 (the Asimov fit at mu' = 0 sits on the boundary x = 0) and with
  // the POI as a nuisance of interest.
  for (bool noi : {false, true}) {
    CAPTURE(noi);
    LikelihoodOptions lo = NoBb();
    lo.poi_positive = !noi;
    Likelihood lik(noi ? CountingNoi(7) : Counting(7), lo);
    const UpperLimitResult lim = UpperLimit(lik);
    CAPTURE(lim.message);
    REQUIRE(lim.ok());
    CHECK(lim.observed == doctest::Approx(1.0759352268070306).epsilon(1e-6));
    CHECK(lim.expected[2] == doctest::Approx(expected[2]).epsilon(1e-6));
  }
  Likelihood lik(Counting(12), NoBb());
  UpperLimitOptions bad;
  bad.hypotest.test_stat = TestStatistic::kQ0;
  CHECK_THROWS_AS(UpperLimit(lik, bad), std::invalid_argument);
  bad.hypotest.test_stat = TestStatistic::kQTilde;
  bad.cl = 1.5;
  CHECK_THROWS_AS(UpperLimit(lik, bad), std::invalid_argument);
}

TEST_CASE("a CLs scan shares the fits and agrees with single tests") {
  Likelihood lik(Counting(12), NoBb());
  const std::vector<double> mus = {0.5, 1.0, 2.0};
  const auto scan = HypoTestScan(lik, mus);
  REQUIRE(scan.size() == 3);
  for (std::size_t i = 0; i < mus.size(); ++i) {
    const HypoTestResult r = HypoTest(lik, mus[i]);
    CHECK(scan[i].cls_obs == doctest::Approx(r.cls_obs).epsilon(1e-9));
    CHECK(scan[i].cls_exp[2] == doctest::Approx(r.cls_exp[2]).epsilon(1e-9));
  }
  CHECK(scan[0].cls_obs > scan[1].cls_obs);
  CHECK(scan[1].cls_obs > scan[2].cls_obs);
}

TEST_CASE("a fit that does not converge is a failed status with a message, never a number") {
  Likelihood lik(Counting(12), NoBb());
  HypoTestOptions o;
  o.fit.max_iterations = 1;
  o.fit.initial_params = Eigen::VectorXd::Constant(1, 40.0);
  const HypoTestResult r = HypoTest(lik, 1.0, o);
  CHECK_FALSE(r.ok());
  CHECK(r.message.find("did not converge") != std::string::npos);
  CHECK(std::isnan(r.cls_obs));
  UpperLimitOptions lo;
  lo.hypotest = o;
  const UpperLimitResult lim = UpperLimit(lik, lo);
  CHECK_FALSE(lim.ok());
  CHECK(std::isnan(lim.observed));
  CHECK(!lim.message.empty());
  // Bad options are exceptions.
  HypoTestOptions bad;
  bad.poi = 5;
  CHECK_THROWS_AS(HypoTest(lik, 1.0, bad), std::invalid_argument);
  CHECK_THROWS_AS(HypoTest(lik, std::nan(""), HypoTestOptions{}), std::invalid_argument);
  bad.poi = 0;
  bad.fit.frozen = {true};
  CHECK_THROWS_AS(HypoTest(lik, 1.0, bad), std::invalid_argument);
}

namespace {

// Large counts with a 5% background normalisation uncertainty (constrained nuisance, randomised
// in the toys): the asymptotic formulas hold.
Model LargeCounts() {
  Model m;
  m.processes = {"sig", "bkg"};
  m.num_signals = 1;
  m.systematics = {"bnorm"};
  m.constraint_weights = {1.0};
  m.nbins = m.nbins_full = 2;
  m.channels.push_back(Channel{"ch", {}, 2, false});
  m.data_obs = Eigen::Vector2d(1010.0, 2030.0);
  m.sumw2 = Eigen::MatrixXd::Zero(2, 2);
  m.tensor = Tensor::FromDense(2, 2, 1, {60.0, 1000.0, 40.0, 2000.0}, {0.0, 0.02, 0.0, 0.02}, {});
  return m;
}

}  // namespace

TEST_CASE("toys agree with asymptotics at large counts within their statistical error") {
  Likelihood lik(LargeCounts(), NoBb());
  HypoTestOptions o;
  o.test_stat = TestStatistic::kQTilde;
  const double mu = 1.5;
  const HypoTestResult a = HypoTest(lik, mu, o);
  REQUIRE(a.ok());
  o.calculator = HypoCalculator::kToys;
  o.ntoys = 1500;
  o.seed = 11;
  o.num_threads = 2;
  int calls = 0, last_total = 0;
  o.progress = [&](int, int total) { ++calls, last_total = total; };
  const HypoTestResult t = HypoTest(lik, mu, o);
  REQUIRE(t.ok());
  CHECK(calls == 2 * o.ntoys);
  CHECK(last_total == 2 * o.ntoys);
  CHECK(t.failed_sb + t.failed_b == 0);
  CHECK(t.q_obs == doctest::Approx(a.q_obs).epsilon(1e-9));
  auto err = [&](double p) { return std::sqrt(p * (1 - p) / o.ntoys); };
  CAPTURE(a.clsb_obs);
  CAPTURE(t.clsb_obs);
  CAPTURE(a.clb_obs);
  CAPTURE(t.clb_obs);
  CHECK(std::abs(t.clsb_obs - a.clsb_obs) < 4 * err(a.clsb_obs) + 0.005);
  CHECK(std::abs(t.clb_obs - a.clb_obs) < 4 * err(a.clb_obs) + 0.005);
  CHECK(std::abs(t.cls_obs - a.cls_obs) < 0.1 * a.cls_obs + 0.01);
  // The median expected CLs (band entry 2).
  CAPTURE(a.cls_exp[2]);
  CAPTURE(t.cls_exp[2]);
  CHECK(std::abs(t.cls_exp[2] - a.cls_exp[2]) < 0.15 * a.cls_exp[2] + 0.01);
  CHECK(t.cls_exp[0] <= t.cls_exp[2]);
  CHECK(t.cls_exp[2] <= t.cls_exp[4]);
}

TEST_CASE("toy hypothesis tests are identical at 1 and 2 threads and depend on the seed") {
  Likelihood lik(LargeCounts(), NoBb());
  HypoTestOptions o;
  o.calculator = HypoCalculator::kToys;
  o.ntoys = 40;
  o.seed = 5;
  o.num_threads = 1;
  const HypoTestResult a = HypoTest(lik, 1.0, o);
  o.num_threads = 2;
  const HypoTestResult b = HypoTest(lik, 1.0, o);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((a.q_sb - b.q_sb).cwiseAbs().maxCoeff() == 0.0);
  CHECK((a.q_b - b.q_b).cwiseAbs().maxCoeff() == 0.0);
  CHECK(a.cls_obs == b.cls_obs);
  o.seed = 6;
  const HypoTestResult c = HypoTest(lik, 1.0, o);
  CHECK((a.q_sb - c.q_sb).cwiseAbs().maxCoeff() > 0.0);
  // q0 toys: the test at 0 against the alternative mu = 1; p0 from the toys.
  o.test_stat = TestStatistic::kQ0;
  o.ntoys = 200;
  const HypoTestResult d = HypoTest(lik, 0.0, o);
  REQUIRE(d.ok());
  CHECK(d.p_value >= 0.0);
  CHECK(d.p_value <= 1.0);
}

TEST_CASE("the POI's model bounds hold for q even while the fit ignores them") {
  // mu-hat = (7 - 10) / 5 = -0.6 lies below the POI's lower bound 0: the free fit is redone on the
  // bound, so q equals q~ here; a tested value outside [0, 10] is an error.
  Model m = CountingNoi(7);
  m.lower_bounds = {0.0};
  m.upper_bounds = {10.0};
  Likelihood lik(m, NoBb());
  HypoTestOptions o;
  o.test_stat = TestStatistic::kQ;
  for (double mu : {0.5, 1.5}) {
    const HypoTestResult r = HypoTest(lik, mu, o);
    REQUIRE(r.ok());
    CHECK(r.mu_hat == 0.0);
    CHECK(r.q_obs == doctest::Approx(QMu(mu, 7, true)).epsilon(1e-7));
  }
  CHECK_THROWS_AS(HypoTest(lik, 11.0, o), std::invalid_argument);
  CHECK_THROWS_AS(HypoTest(lik, -0.5, o), std::invalid_argument);
  // Without the bound, q uses the negative mu-hat.
  Likelihood free(CountingNoi(7), NoBb());
  const HypoTestResult r = HypoTest(free, 1.5, o);
  REQUIRE(r.ok());
  CHECK(r.mu_hat == doctest::Approx(-0.6).epsilon(1e-7));
  CHECK(r.q_obs == doctest::Approx(QMu(1.5, 7, false)).epsilon(1e-7));
}

TEST_CASE("a toy-based observed limit agrees with the asymptotic one at large counts") {
  Likelihood lik(LargeCounts(), NoBb());
  UpperLimitOptions o;
  o.expected = false;
  const UpperLimitResult a = UpperLimit(lik, o);
  REQUIRE(a.ok());
  o.hypotest.calculator = HypoCalculator::kToys;
  o.hypotest.ntoys = 400;
  o.hypotest.seed = 3;
  o.hypotest.num_threads = 2;
  o.rel_tolerance = 1e-4;
  const UpperLimitResult t = UpperLimit(lik, o);
  CAPTURE(t.message);
  REQUIRE(t.ok());
  CAPTURE(a.observed);
  CAPTURE(t.observed);
  // The limit sits where CLs = 0.05 (CLs+b ~ 0.04 there): 400 toys give a few percent on it.
  CHECK(std::abs(t.observed - a.observed) < 0.08 * a.observed);
  CHECK(std::isnan(t.expected[2]));  // not asked for
}
