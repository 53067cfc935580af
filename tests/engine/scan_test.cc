// Profile scans and intervals against analytic profiles.
#include <cmath>

#include <doctest/doctest.h>

#include "lepus/engine/fit.h"
#include "lepus/engine/scan.h"
#include "lepus/models/synthetic.h"

using namespace lepus::engine;

namespace {

// One bin, signal 50 (mu), background 80 fixed, n observed.
Model Counting(double n) {
  Model m;
  m.processes = {"sig", "bkg"};
  m.num_signals = 1;
  m.nbins = m.nbins_full = 1;
  m.data_obs = Eigen::VectorXd::Constant(1, n);
  m.sumw2 = Eigen::MatrixXd::Zero(1, 2);
  m.tensor = Tensor::FromDense(1, 2, 0, {50.0, 80.0}, {}, {});
  return m;
}

double CountingDnll(double mu, double n) {
  const double l = 50.0 * mu + 80.0;
  return l - n + n * std::log(n / l);  // the minimum (lambda = n) has NLL 0
}

}  // namespace

TEST_CASE("1D scan reproduces the analytic profile of a counting experiment") {
  Likelihood lik(Counting(150.0));
  FitResult best = Fit(lik);
  REQUIRE(best.ok());
  const auto grid = LinearGrid(0.8, 2.0, 13);
  Scan1D s = ScanProfile(lik, best, 0, grid);
  REQUIRE(s.dnll.size() == 13);
  for (std::size_t i = 0; i < grid.size(); ++i)
    CHECK(s.dnll[i] == doctest::Approx(CountingDnll(grid[i], 150.0)).epsilon(1e-10));
}

TEST_CASE("MINOS-like interval of a counting experiment matches the analytic crossing") {
  Likelihood lik(Counting(150.0));
  FitResult best = Fit(lik);
  REQUIRE(best.ok());
  for (double cl : {0.682689492137086, 0.95}) {
    CAPTURE(cl);
    Interval iv = ProfileInterval(lik, best, 0, cl);
    REQUIRE(iv.lo_found);
    REQUIRE(iv.hi_found);
    const double q = ChiSquare1Quantile(cl);
    // analytic crossings by bisection on 2 dnll = q
    auto cross = [&](double a, double b) {
      for (int i = 0; i < 200; ++i) {
        const double m = 0.5 * (a + b);
        ((2 * CountingDnll(m, 150.0) - q) * (2 * CountingDnll(a, 150.0) - q) > 0 ? a : b) = m;
      }
      return 0.5 * (a + b);
    };
    CHECK(iv.hi == doctest::Approx(cross(1.4, 3.0)).epsilon(1e-7));
    CHECK(iv.lo == doctest::Approx(cross(0.0, 1.4)).epsilon(1e-7));
    // Poisson: the upper error is larger than the lower one.
    CHECK(iv.err_hi > -iv.err_lo);
  }
  CHECK(ChiSquare1Quantile(0.95) == doctest::Approx(3.841458820694124).epsilon(1e-10));
  CHECK(ChiSquare1Quantile(0.682689492137086) == doctest::Approx(1.0).epsilon(1e-10));
}

TEST_CASE("profile intervals of a nearly Gaussian fit agree with the Hessian errors") {
  lepus::models::SyntheticSpec spec;
  spec.nbins = 20;
  spec.nsyst = 4;
  spec.yield_scale = 1e6;
  spec.mc_stat = false;
  spec.seed = 4;
  LikelihoodOptions opt;
  opt.bin_by_bin_stat = false;
  Likelihood lik(lepus::models::MakeSyntheticModel(spec), opt);
  FitResult best = Fit(lik);
  REQUIRE(best.ok());
  for (int p : {0, 2}) {
    Interval iv = ProfileInterval(lik, best, p, 0.682689492137086);
    CHECK(iv.err_hi == doctest::Approx(best.errors[p]).epsilon(2e-3));
    CHECK(-iv.err_lo == doctest::Approx(best.errors[p]).epsilon(2e-3));
  }
}

TEST_CASE("2D scan is symmetric in its arguments and zero at the best fit") {
  lepus::models::SyntheticSpec spec;
  spec.nbins = 15;
  spec.nsyst = 3;
  spec.seed = 6;
  Likelihood lik(lepus::models::MakeSyntheticModel(spec));
  FitResult best = Fit(lik);
  REQUIRE(best.ok());
  const std::vector<double> vx{best.values[0] - best.errors[0], best.values[0],
                               best.values[0] + best.errors[0]};
  const std::vector<double> vy{best.values[1] - best.errors[1], best.values[1],
                               best.values[1] + best.errors[1]};
  Scan2D s = ScanProfile2D(lik, best, 0, 1, vx, vy);
  Scan2D t = ScanProfile2D(lik, best, 1, 0, vy, vx);
  CHECK(std::abs(s.dnll(1, 1)) < 1e-9);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) CHECK(s.dnll(i, j) == doctest::Approx(t.dnll(j, i)).epsilon(1e-8));
  CHECK(s.dnll(0, 1) > 0.3);
}

TEST_CASE("scan input validation") {
  Likelihood lik(Counting(150.0));
  FitResult best = Fit(lik);
  CHECK_THROWS_AS(ScanProfile(lik, best, 5, {1.0}), std::invalid_argument);
  CHECK_THROWS_AS(ScanProfile(lik, best, 0, {}), std::invalid_argument);
  CHECK_THROWS_AS(LinearGrid(2.0, 1.0, 5), std::invalid_argument);
  LikelihoodOptions opt;
  opt.poi_positive = true;
  Likelihood pos(Counting(150.0), opt);
  FitResult bp = Fit(pos);
  CHECK_THROWS_WITH_AS(ScanProfile(pos, bp, 0, {-0.5, 1.0}), doctest::Contains("must be >= 0"),
                       std::invalid_argument);
}
