// Toy ensembles: coverage of pulls, distribution of the saturated statistic, reproducibility.
#include <atomic>
#include <cmath>

#include <doctest/doctest.h>
#include <Eigen/LU>

#include "lepus/engine/toys.h"
#include "lepus/models/synthetic.h"

using namespace lepus::engine;

namespace {

// Symmetric log-normal systematics with Barlow-Beeston on (one process without MC variance).
// (With strongly asymmetric logk the ML estimators of the nuisances are visibly biased, by up to
// 0.14 sigma with widths 0.93 in 4000-toy runs: a property of the non-linear model, so the
// coverage test uses the symmetric one.)
Model ToyModel() {
  lepus::models::SyntheticSpec spec;
  spec.nbins = 25;
  spec.nproc = 3;
  spec.nsyst = 5;
  spec.nfree = 1;
  spec.nnoi = 1;
  spec.asymmetric = false;
  spec.yield_scale = 200;
  spec.seed = 12;
  return lepus::models::MakeSyntheticModel(spec);
}

}  // namespace

TEST_CASE(
    "500 toys with known truth: pulls have mean 0 and width 1, the saturated statistic has mean "
    "ndf") {
  Likelihood lik(ToyModel());
  ToyOptions o;
  o.ntoys = 500;
  o.seed = 2024;
  o.pull_params = {0, 1, 3};  // POI, the free NOI, a constrained nuisance
  ToyResults r = RunToys(lik, o);
  CHECK(r.converged >= 495);
  REQUIRE(r.pulls.size() == 3);
  for (const auto& p : r.pulls) {
    CAPTURE(p.name);
    CAPTURE(p.mean);
    CAPTURE(p.width);
    CHECK(std::abs(p.mean) < 0.1);
    CHECK(std::abs(p.width - 1.0) < 0.1);
  }
  CAPTURE(r.gof_mean);
  CHECK(r.gof_ndf == 25 - 2);
  CHECK(std::abs(r.gof_mean / r.gof_ndf - 1.0) < 0.1);
  // chi-square width: sqrt(2 ndf)
  CHECK(std::abs(r.gof_width / std::sqrt(2.0 * r.gof_ndf) - 1.0) < 0.2);
}

TEST_CASE("toys are identical at 1 and 2 threads and depend on the seed") {
  Likelihood lik(ToyModel());
  ToyOptions o;
  o.ntoys = 12;
  o.seed = 7;
  o.num_threads = 1;
  ToyResults a = RunToys(lik, o);
  o.num_threads = 2;
  ToyResults b = RunToys(lik, o);
  CHECK((a.values - b.values).cwiseAbs().maxCoeff() == 0.0);
  CHECK((a.nll - b.nll).cwiseAbs().maxCoeff() == 0.0);
  o.seed = 8;
  ToyResults c = RunToys(lik, o);
  CHECK((a.values - c.values).cwiseAbs().maxCoeff() > 0.0);
}

TEST_CASE("toy ranges put together give the whole ensemble (mpirun lepus toys)") {
  Likelihood lik(ToyModel());
  ToyOptions o;
  o.ntoys = 7;
  o.seed = 3;
  const ToyResults all = RunToys(lik, o);
  ToyResults parts = all;
  parts.values.setConstant(std::nan(""));
  parts.errors = parts.values;
  for (auto [b, e] : {std::pair{0, 3}, std::pair{3, 3}, std::pair{3, 7}}) {
    o.toy_begin = b;
    o.toy_end = e;
    const ToyResults r = RunToys(lik, o);
    for (int t = 0; t < o.ntoys; ++t) {
      if (t < b || t >= e) {
        CHECK(r.status[t] == FitStatus::kFailed);
        CHECK(std::isnan(r.nll[t]));
        continue;
      }
      parts.values.row(t) = r.values.row(t);
      parts.errors.row(t) = r.errors.row(t);
      parts.status[t] = r.status[t];
      parts.nll[t] = r.nll[t];
      parts.gof_chi2[t] = r.gof_chi2[t];
    }
  }
  parts.converged = -1;
  parts.pulls.clear();
  o.toy_begin = 0;
  o.toy_end = -1;
  SummarizeToys(lik, o, &parts);
  CHECK((all.values - parts.values).cwiseAbs().maxCoeff() == 0.0);
  CHECK(parts.converged == all.converged);
  CHECK(parts.gof_mean == all.gof_mean);
  REQUIRE(parts.pulls.size() == all.pulls.size());
  CHECK(parts.pulls[0].mean == all.pulls[0].mean);
  CHECK(parts.pulls[0].width == all.pulls[0].width);
  o.toy_begin = 5;
  o.toy_end = 4;
  std::string err;
  CHECK_FALSE(o.IsValid(lik.num_params(), &err));
  CHECK(err.find("toy range") != std::string::npos);
}

TEST_CASE("observed toys generate at the best fit; options are validated") {
  Likelihood lik(ToyModel());
  ToyOptions o;
  o.ntoys = 5;
  o.mode = ToyMode::kObserved;
  ToyResults r = RunToys(lik, o);
  FitResult best = Fit(lik);
  CHECK((r.truth - best.values).cwiseAbs().maxCoeff() < 1e-9);
  ToyOptions bad;
  bad.ntoys = 0;
  CHECK_THROWS_WITH_AS(RunToys(lik, bad), doctest::Contains("ntoys is 0"), std::invalid_argument);
}

TEST_CASE("toys of chi-square and covariance fits: Poisson or Gaussian data, pulls of width 1") {
  // Chi-square fit with Poisson toys (rabbit's default) and with Gaussian toys; covariance fit
  // (a correlated data covariance) with Gaussian toys drawn from that covariance.
  Model m = ToyModel();
  const auto n = m.nbins;
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j)
      c(i, j) = std::sqrt(m.data_obs[i] * m.data_obs[j]) *
                (i == j ? 1.0 : 0.3 * std::exp(-std::abs(double(i - j))));
  Model mc = m;
  mc.data_cov_inv = c.inverse();
  struct Case {
    DataTerm term;
    bool normal;
  };
  for (const Case& k : {Case{DataTerm::kChisq, false}, Case{DataTerm::kChisq, true},
                        Case{DataTerm::kCovariance, true}}) {
    CAPTURE(static_cast<int>(k.term));
    CAPTURE(k.normal);
    LikelihoodOptions lo;
    lo.data_term = k.term;
    Likelihood lik(k.term == DataTerm::kCovariance ? mc : m, lo);
    ToyOptions o;
    o.ntoys = 400;
    o.seed = 99;
    o.normal_data = k.normal;
    o.pull_params = {0, 1};
    ToyResults r = RunToys(lik, o);
    CHECK(r.converged >= 395);
    // The covariance fit with Gaussian data from its own covariance is a Gaussian problem: pull
    // means within 0.12 (2.4 standard errors of a 400-toy mean). The chi-square fit uses each
    // toy's data as its variance (Neyman's chi-square, as rabbit), which biases the fitted yields
    // low by about one event per bin: pull shifts of ~0.1 are expected (measured: -0.13 for the
    // NOI with Gaussian data), so its mean is only bounded by 0.25; the widths are 1 in all cases.
    const double mean_bound = k.term == DataTerm::kCovariance ? 0.12 : 0.25;
    for (const auto& p : r.pulls) {
      CAPTURE(p.name);
      CAPTURE(p.mean);
      CAPTURE(p.width);
      CHECK(std::abs(p.mean) < mean_bound);
      CHECK(std::abs(p.width - 1.0) < 0.12);
    }
  }
  // Refusals: Gaussian data for a Poisson fit, Poisson data for a covariance fit.
  ToyOptions o;
  o.ntoys = 2;
  o.normal_data = true;
  CHECK_THROWS_WITH_AS(RunToys(Likelihood(m), o), doctest::Contains("chi-square and covariance"),
                       std::invalid_argument);
  LikelihoodOptions lc;
  lc.data_term = DataTerm::kCovariance;
  o.normal_data = false;
  CHECK_THROWS_WITH_AS(RunToys(Likelihood(mc, lc), o), doctest::Contains("--normal-data"),
                       std::invalid_argument);
}

TEST_CASE("FitOptions::cancel stops fits (every method) and the toys not yet started") {
  Likelihood lik(ToyModel());
  std::atomic<int> calls{0};
  for (FitMethod method : {FitMethod::kDense, FitMethod::kMatrixFree, FitMethod::kCeres}) {
    CAPTURE(ToString(method));
    FitOptions f;
    f.method = method;
    f.cancel = [&] {
      ++calls;
      return true;
    };
    const FitResult r = Fit(lik, f);
    CHECK(r.status == FitStatus::kFailed);
    CHECK(r.message == kCancelledMessage);
    CHECK(r.covariance_status == CovarianceStatus::kNotComputed);
  }
  CHECK(calls > 0);
  // Not cancelled: the hook is called and the fit is unchanged.
  FitOptions f;
  const FitResult plain = Fit(lik, f);
  f.cancel = [] { return false; };
  const FitResult hooked = Fit(lik, f);
  CHECK(hooked.ok());
  CHECK(hooked.nll == plain.nll);
  CHECK(hooked.values == plain.values);

  ToyOptions o;
  o.ntoys = 8;
  std::atomic<bool> stop{false};
  o.fit.cancel = [&] { return stop.load(); };
  o.progress = [&](int done, int) {
    if (done >= 2) stop = true;
  };
  o.num_threads = 1;
  const ToyResults t = RunToys(lik, o);
  CHECK(t.converged == 2);
  int failed = 0;
  for (FitStatus s : t.status) failed += s == FitStatus::kFailed;
  CHECK(failed == 6);
}
