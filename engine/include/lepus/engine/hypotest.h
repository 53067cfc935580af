// Frequentist hypothesis tests (CLs) and upper limits on one parameter of interest, with the
// profile-likelihood test statistics of Cowan, Cranmer, Gross and Vitells (2011) in the
// conventions of pyhf (docs/hypotest.md gives every formula):
//
//   t_mu      = 2 (NLL(mu, theta-hat-hat) - NLL(mu-hat, theta-hat))        two-sided
//   t~_mu     = t_mu with mu-hat bounded below at 0
//   q_mu      = t_mu, or 0 when mu-hat > mu                                one-sided (limits)
//   q~_mu     = q_mu with mu-hat bounded below at 0                       (the default)
//   q_0       = t_0, or 0 when mu-hat < 0                                  discovery
//
// Two calculators: the asymptotic formulas (the Asimov data set at mu' = 0, mu' = 1 for q_0,
// with the global observables moved to the conditional fit) and toys (pseudo-experiments under
// the signal+background and background-only hypotheses, each fitted twice). Upper limits solve
// CLs(mu) = 1 - CL by bracketing and TOMS 748 root finding.
//
// The POI is a parameter index: a signal strength (rabbit-style models, parameter 0) or a
// nuisance of interest (HistFactory workspaces, whose POI is a systematic). Numerical trouble
// (a fit that does not converge) is reported as a status with a message, never as a number.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::engine {

enum class TestStatistic { kQ, kQTilde, kQ0, kTMu, kTMuTilde };
// "q", "qtilde", "q0", "tmu", "tmu_tilde".
inline constexpr EnumName<TestStatistic> kTestStatisticNames[] = {
    {TestStatistic::kQ, "q"},
    {TestStatistic::kQTilde, "qtilde"},
    {TestStatistic::kQ0, "q0"},
    {TestStatistic::kTMu, "tmu"},
    {TestStatistic::kTMuTilde, "tmu_tilde"}};
std::string ToString(TestStatistic stat);
// Accepts the names of ToString; throws std::invalid_argument otherwise.
TestStatistic TestStatisticFromString(const std::string& text);

enum class HypoCalculator { kAsymptotics, kToys };
// "asymptotics", "toys".
inline constexpr EnumName<HypoCalculator> kHypoCalculatorNames[] = {
    {HypoCalculator::kAsymptotics, "asymptotics"}, {HypoCalculator::kToys, "toys"}};
std::string ToString(HypoCalculator calculator);
HypoCalculator HypoCalculatorFromString(const std::string& text);  // throws std::invalid_argument

// The default POI: parameter 0 (the first signal strength) when the model has signals, else the
// first nuisance of interest; -1 when there is neither.
int DefaultPoi(const Likelihood& likelihood);

// The number of standard deviations of the expected band entries, in pyhf's order: entry 0 is
// the "-2 sigma" entry (the smallest expected CLs, the smallest expected limit).
inline constexpr std::array<double, 5> kExpectedBandSigmas = {-2.0, -1.0, 0.0, 1.0, 2.0};

struct HypoTestOptions {
  int poi = -1;  // parameter index; -1 = DefaultPoi
  TestStatistic test_stat = TestStatistic::kQTilde;
  HypoCalculator calculator = HypoCalculator::kAsymptotics;
  // Options of every fit. frozen parameters stay frozen (the POI must not be); initial_params
  // (internal coordinates) is the starting point of the fits to the data.
  FitOptions fit;
  // Toys: per hypothesis (signal+background and background-only), seed, threads (0 = all),
  // progress (done, total) over both ensembles, serialised.
  int ntoys = 1000;
  std::uint64_t seed = 1;
  int num_threads = 0;
  std::function<void(int, int)> progress;

  // Checks the options against the likelihood (POI index, not frozen, ntoys > 0, fit options).
  bool IsValid(const Likelihood& likelihood, std::string* error) const;
};

enum class HypoTestStatus { kOk, kFailed };
std::string ToString(HypoTestStatus status);

struct HypoTestResult {
  HypoTestStatus status = HypoTestStatus::kFailed;
  std::string message;  // why it failed; warnings (e.g. failed toys) when ok
  bool ok() const { return status == HypoTestStatus::kOk; }

  int poi = -1;
  std::string poi_name;
  double poi_value = 0.0;  // the tested value (0 for q_0)
  TestStatistic test_stat = TestStatistic::kQTilde;
  HypoCalculator calculator = HypoCalculator::kAsymptotics;

  // Observed: the test statistic, the best-fit POI (bounded as the statistic requires) and the
  // two NLL minima it is made of.
  double q_obs = 0.0;
  double mu_hat = 0.0;
  double nll_free = 0.0, nll_conditional = 0.0;
  // Asymptotics: the test statistic on the Asimov data set (mu' = 0, q_0: mu' = 1) and its square
  // root, sqrt(q_A) = |mu - mu'| / sigma; NaN for toys.
  double q_asimov = 0.0;
  double sigma_asimov = 0.0;  // |mu - mu'| / sqrt(q_A): the asymptotic standard deviation of mu-hat

  // CLs+b = p_{s+b}, CLb = 1 - p_b, CLs = CLs+b / CLb; the expected band (kExpectedBandSigmas
  // order) under the background-only hypothesis. For t_mu and t~_mu only clsb_obs (the p-value
  // of the tested value) is defined; the others are NaN.
  double cls_obs = 0.0, clsb_obs = 0.0, clb_obs = 0.0;
  std::array<double, 5> cls_exp{}, clsb_exp{}, clb_exp{};
  // The p-value of the tested hypothesis (= clsb_obs); for q_0 the discovery p-value p_0, and
  // its significance Z = Phi^-1(1 - p_0) (NaN otherwise).
  double p_value = 0.0;
  double significance = 0.0;

  // Toys: the test statistic of every toy (NaN where a fit failed) and the number that failed.
  Eigen::VectorXd q_sb, q_b;
  int failed_sb = 0, failed_b = 0;
};

// Tests poi_value (reported units: mu for signal strengths) on the likelihood's current data and
// global observables. Throws std::invalid_argument for invalid options, a value outside the
// POI's domain (the model's bounds; mu < 0 with poi_positive; q_0 needs poi_value = 0).
HypoTestResult HypoTest(const Likelihood& likelihood, double poi_value,
                        const HypoTestOptions& options = {});

// Hypothesis tests at each value (for CLs scans). Asymptotics share the fits that do not depend
// on the tested value (free fits, Asimov data); toys use the same seed at every value.
std::vector<HypoTestResult> HypoTestScan(const Likelihood& likelihood,
                                         const std::vector<double>& poi_values,
                                         const HypoTestOptions& options = {});

struct UpperLimitOptions {
  double cl = 0.95;          // in (0, 1): limits where CLs = 1 - cl
  HypoTestOptions hypotest;  // test_stat must be q or qtilde
  bool observed = true, expected = true;
  // Root finding: stop when the bracket is narrower than this relative to the limit (> 0).
  double rel_tolerance = 1e-10;
  int max_evaluations = 200;  // per limit, bracketing included
};

struct UpperLimitResult {
  HypoTestStatus status = HypoTestStatus::kFailed;
  std::string message;
  bool ok() const { return status == HypoTestStatus::kOk; }
  double cl = 0.95;
  int poi = -1;
  std::string poi_name;
  double observed = 0.0;             // NaN when not computed or failed
  std::array<double, 5> expected{};  // kExpectedBandSigmas order: [0] = -2 sigma (the smallest)
  double mu_hat = 0.0;
  int evaluations = 0;  // CLs evaluations (hypothesis tests) in total
};

// Observed and expected upper limits at options.cl. Throws std::invalid_argument for invalid
// options (also t_mu, t~_mu or q_0, which do not give limits).
UpperLimitResult UpperLimit(const Likelihood& likelihood, const UpperLimitOptions& options = {});

}  // namespace lepus::engine
