// Yields with uncertainties (Jacobians checked by finite differences), projections, per-channel
// goodness of fit, linear combinations and prior scaling.
#include <cmath>

#include <doctest/doctest.h>

#include "lepus/engine/combination.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/yields.h"
#include "lepus/models/synthetic.h"

using namespace lepus::engine;

namespace {

Model YieldModel(bool asym) {
  lepus::models::SyntheticSpec spec;
  spec.nbins = 12;
  spec.nmasked = 3;
  spec.nproc = 3;
  spec.nsyst = 5;
  spec.nfree = 1;
  spec.asymmetric = asym;
  spec.seed = 23;
  Model m = lepus::models::MakeSyntheticModel(spec);
  // Give the unmasked channel a 2D binning (3 x 4) for projections.
  m.channels[0].axes = {{"eta", {0, 1, 2, 3}}, {"pt", {0, 1, 2, 3, 4}}};
  return m;
}

}  // namespace

TEST_CASE("total yield Jacobian (with profiled beta) matches finite differences") {
  for (bool asym : {false, true}) {
    Likelihood lik(YieldModel(asym));
    FitResult r = Fit(lik);
    REQUIRE(r.ok());
    Eigen::VectorXd x = r.x;
    x[1] += 0.1;  // away from the minimum as well
    Eigen::VectorXd tot;
    const Eigen::MatrixXd jac = lik.TotalYieldJacobian(x, true, &tot);
    CHECK((tot - lik.ExpectedYields(x, true)).cwiseAbs().maxCoeff() < 1e-9);
    const double h = 1e-6;
    for (int j = 0; j < lik.num_params(); ++j) {
      Eigen::VectorXd xp = x, xm = x;
      xp[j] += h;
      xm[j] -= h;
      const Eigen::VectorXd fd =
          (lik.ExpectedYields(xp, true) - lik.ExpectedYields(xm, true)) / (2 * h);
      for (Eigen::Index b = 0; b < fd.size(); ++b)
        CHECK(std::abs(jac(b, j) - fd[b]) <= 1e-6 * (std::abs(fd[b]) + 1e-3 * tot[b]));
    }
  }
}

TEST_CASE(
    "per-process uncertainties equal sqrt(J C J^T + betas' spread) with a finite-difference J") {
  Likelihood lik(YieldModel(true));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  YieldSet y = PostfitYields(lik, r);
  const int n = lik.num_params();
  const Model& m = lik.model();
  std::vector<Eigen::MatrixXd> dvals(n);
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(n, n), vals, errs, dummy;
  const double h = 1e-6;
  for (int j = 0; j < n; ++j) {
    Eigen::VectorXd xp = r.x, xm = r.x;
    xp[j] += h;
    xm[j] -= h;
    Eigen::MatrixXd vp, vm;
    lik.ProcessYields(xp, cov, true, &vp, &dummy);
    lik.ProcessYields(xm, cov, true, &vm, &dummy);
    dvals[j] = (vp - vm) / (2 * h);
  }
  // The betas' own spread at fixed x (checked against finite differences of the NLL in the
  // betas in variants_test.cc): positive where a bin has a beta, zero in the masked bins.
  Eigen::VectorXd tvar;
  Eigen::MatrixXd tcov, pvar;
  lik.BetaYieldVariance(r.x, &tvar, &tcov, &pvar);
  CHECK(tcov.size() == 0);  // lite Poisson: bins independent
  for (Eigen::Index b = 0; b < m.nbins; ++b)
    if (lik.bb_kstat()[b] > 0) CHECK(tvar[b] > 0);
  CHECK(tvar.tail(m.nbins_full - m.nbins).cwiseAbs().maxCoeff() == 0.0);
  // internal covariance = reported (linear POIs)
  for (Eigen::Index b = 0; b < m.nbins_full; ++b)
    for (int p = 0; p < m.num_processes(); ++p) {
      Eigen::VectorXd jj(n);
      for (int j = 0; j < n; ++j) jj[j] = dvals[j](b, p);
      const double err = std::sqrt(jj.dot(r.covariance * jj) + pvar(b, p));
      CHECK(y.process_error(b, p) == doctest::Approx(err).epsilon(1e-5));
    }
  for (Eigen::Index b = 0; b < m.nbins_full; ++b) {
    const Eigen::VectorXd jt = y.total_jacobian.row(b).transpose();
    CHECK(y.total_error[b] ==
          doctest::Approx(std::sqrt(jt.dot(r.covariance * jt) + tvar[b])).epsilon(1e-9));
  }
  // per-process values sum to the totals
  CHECK((y.process.rowwise().sum() - y.total).cwiseAbs().maxCoeff() < 1e-9);
  // totals' uncertainty is not the quadrature sum of processes (correlations), but bounded by the linear sum
  for (Eigen::Index b = 0; b < m.nbins_full; ++b)
    CHECK(y.total_error[b] <= y.process_error.row(b).sum() * (1 + 1e-12));
}

TEST_CASE("prefit yields: nominal values, prior uncertainties and MC statistics") {
  Likelihood lik(YieldModel(false));
  YieldOptions o;
  o.full_covariance = true;
  YieldSet y = PrefitYields(lik, o);
  const Model& m = lik.model();
  CHECK((y.total - m.DenseNorm().rowwise().sum()).cwiseAbs().maxCoeff() < 1e-9);
  // MC-stat part is included: error^2 >= sum_p sumw2 in fitted bins
  for (Eigen::Index b = 0; b < m.nbins; ++b)
    CHECK(y.total_error[b] * y.total_error[b] >= m.sumw2.row(b).sum() * (1 - 1e-12));
  CHECK((y.total_covariance.diagonal().cwiseSqrt() - y.total_error).cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("projections sum over the dropped axes and propagate correlations") {
  Likelihood lik(YieldModel(false));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  YieldOptions o;
  o.full_covariance = true;
  YieldSet y = PostfitYields(lik, r, o);
  ChannelProjection pt = Project(lik, y, "ch0", {"pt"});
  REQUIRE(pt.values.size() == 4);
  for (int j = 0; j < 4; ++j) {
    double s = 0.0, v = 0.0;
    for (int i = 0; i < 3; ++i) s += y.total[i * 4 + j];
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 3; ++k) v += y.total_covariance(i * 4 + j, k * 4 + j);
    CHECK(pt.values[j] == doctest::Approx(s).epsilon(1e-12));
    CHECK(pt.errors[j] == doctest::Approx(std::sqrt(v)).epsilon(1e-9));
  }
  ChannelProjection full = Project(lik, y, "ch0", {});
  CHECK((full.values - y.total.head(12)).cwiseAbs().maxCoeff() < 1e-9);
  CHECK_THROWS_WITH_AS(Project(lik, y, "nope", {}), doctest::Contains("nope"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Project(lik, y, "ch0", {"phi"}), doctest::Contains("phi"),
                       std::invalid_argument);
}

TEST_CASE("per-channel saturated statistics add up to the total") {
  Likelihood lik(YieldModel(false));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  auto gof = ChannelGoodnessOfFit(lik, r);
  REQUIRE(gof.size() == 1);  // the masked channel is not fitted
  // total = channels + constraint terms
  double constraint = 0.0;
  for (int s = 0; s < lik.model().num_systematics(); ++s)
    constraint += lik.model().constraint_weights[s] * std::pow(r.x[1 + s], 2);
  CHECK(gof[0].chi2 + constraint == doctest::Approx(r.gof_chi2).epsilon(1e-10));
  CHECK(gof[0].ndf == 12);
}

TEST_CASE("linear combinations: parsing, value, error and correlations") {
  Likelihood lik(YieldModel(false));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  LinearCombination c = ParseCombination(lik, "d", "(syst0 - syst1)/2 + 0.5*sig0 - 1");
  REQUIRE(c.terms.size() == 3);
  CombinationResult cr = EvaluateCombination(lik, r, c);
  Eigen::VectorXd w = Eigen::VectorXd::Zero(lik.num_params());
  w[0] = 0.5;
  w[1] = 0.5;
  w[2] = -0.5;
  CHECK(cr.value == doctest::Approx(w.dot(r.values) - 1).epsilon(1e-12));
  CHECK(cr.error == doctest::Approx(std::sqrt(w.dot(r.covariance * w))).epsilon(1e-12));
  // a combination equal to one parameter has correlation 1 with it
  CombinationResult one = EvaluateCombination(lik, r, ParseCombination(lik, "same", "sig0"));
  CHECK(one.correlations[0].second == doctest::Approx(1.0).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(ParseCombination(lik, "x", "sig0 - nothere"), doctest::Contains("nothere"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(ParseCombination(lik, "x", "sig0 * syst1"), doctest::Contains("not linear"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(ParseCombination(lik, "x", "sig0 +"), doctest::Contains("unexpected end"),
                       std::invalid_argument);
  CHECK_THROWS_AS(ParseCombination(lik, "x", "2"), std::invalid_argument);
}

TEST_CASE("impacts of a combination are those of the linear form") {
  Likelihood lik(YieldModel(false));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  ImpactOptions o;
  o.combinations.push_back(ParseCombination(lik, "twice", "2*sig0"));
  Impacts imp = ComputeImpacts(lik, r, o);
  const int k = static_cast<int>(imp.targets.size()) - 1;
  REQUIRE(imp.targets[k] == -1);
  CHECK(imp.target_names[k] == "twice");
  CHECK(imp.total[k] == doctest::Approx(2 * imp.total[0]).epsilon(1e-12));
  CHECK((imp.nominal.row(k) - 2 * imp.nominal.row(0)).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((imp.grouped_global.row(k) - 2 * imp.grouped_global.row(0)).cwiseAbs().maxCoeff() < 1e-10);
}

TEST_CASE("prior scaling divides the constraint weight by factor^2") {
  Model m = YieldModel(false);
  CHECK(ScalePriorWidths(&m, "syst[23]", 2.0) == 2);
  CHECK(m.constraint_weights[2] == doctest::Approx(0.25));
  CHECK(m.constraint_weights[3] == doctest::Approx(0.25));
  CHECK(m.constraint_weights[4] == 1.0);
  CHECK(m.constraint_weights[0] == 0.0);  // free stays free
  CHECK_THROWS_WITH_AS(ScalePriorWidths(&m, "pdf.*", 1.5),
                       doctest::Contains("matches no systematic"), std::invalid_argument);
  CHECK_THROWS_AS(ScalePriorWidths(&m, "syst1", 0.0), std::invalid_argument);
  CHECK_THROWS_AS(ScalePriorWidths(&m, "syst[", 2.0), std::invalid_argument);
}
