// FitOptions::covariance_extent (docs/numerics.md, "Selected inverse"): kSelected gives the same
// values, errors and target rows as kFull without the covariance matrix, on a CMS-like model whose
// Hessian takes the structured (bordered block) path and on small dense ones; the numerical
// statuses (near-singular, not positive definite) and their messages are those of kFull; consumers
// that need the full matrix say so.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <Eigen/Core>

#include "../../engine/src/spd.h"
#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/yields.h"
#include "lepus/models/synthetic.h"

using namespace lepus::engine;

namespace {

lepus::models::CmsLikeSpec SmallCmsLike() {
  // ~1000 parameters: local efficiency/scale nuisances per eta bin around 20 global ones, so the
  // Hessian is factorised through its block structure (above the 400-parameter detection size).
  lepus::models::CmsLikeSpec spec;
  spec.neta = 12;
  spec.npt = 10;
  spec.n_global = 20;
  spec.n_eff_per_eta = 50;
  spec.n_scale_per_eta = 40;
  spec.nproc = 4;
  return spec;
}

// kSelected against kFull: identical values, errors to 1e-10 relative, the target rows equal to
// the rows of the full covariance (to 1e-10 of the row's largest entry).
void CompareExtents(const Likelihood& lik, FitOptions options) {
  options.covariance_extent = CovarianceExtent::kFull;
  const FitResult full = Fit(lik, options);
  options.covariance_extent = CovarianceExtent::kSelected;
  const FitResult sel = Fit(lik, options);
  REQUIRE(full.ok());
  REQUIRE(full.covariance_status == CovarianceStatus::kAccurate);
  CHECK(sel.status == full.status);
  CHECK(sel.covariance_status == CovarianceStatus::kAccurateSelected);
  CHECK(ToString(sel.covariance_status) == "accurate_selected");
  CHECK(sel.covariance.size() == 0);
  CHECK(sel.covariance_internal.size() == 0);
  CHECK(sel.nll == full.nll);
  CHECK((sel.values - full.values).cwiseAbs().maxCoeff() == 0.0);
  const int n = lik.num_params();
  REQUIRE(sel.errors.size() == n);
  for (int i = 0; i < n; ++i) {
    CAPTURE(lik.params()[i].name);
    if (full.errors[i] == 0.0) {
      CHECK(sel.errors[i] == 0.0);
    } else {
      CHECK(std::abs(sel.errors[i] - full.errors[i]) <= 1e-10 * full.errors[i]);
    }
  }
  std::vector<int> targets = options.covariance_targets;
  if (targets.empty())
    for (int i = 0; i < n; ++i)
      if (lik.params()[i].kind != ParamKind::kNuisance && !full.frozen[i]) targets.push_back(i);
  CHECK(sel.covariance_row_params == targets);
  REQUIRE(sel.covariance_rows.rows() == static_cast<Eigen::Index>(targets.size()));
  REQUIRE(sel.covariance_rows.cols() == n);
  for (std::size_t k = 0; k < targets.size(); ++k) {
    CAPTURE(targets[k]);
    const Eigen::VectorXd ref = full.covariance.row(targets[k]).transpose();
    const Eigen::VectorXd row = sel.covariance_rows.row(static_cast<Eigen::Index>(k)).transpose();
    CHECK((row - ref).cwiseAbs().maxCoeff() <= 1e-10 * std::max(ref.cwiseAbs().maxCoeff(), 1e-300));
  }
  // Correlations of the targets: from the rows, those of the full matrix (Correlation() at idx).
  if (targets.empty()) return;
  const Eigen::MatrixXd cf = full.CorrelationOf(targets), cs = sel.CorrelationOf(targets);
  const Eigen::MatrixXd all = full.Correlation();
  for (std::size_t a = 0; a < targets.size(); ++a)
    for (std::size_t b = 0; b < targets.size(); ++b) {
      CHECK(cf(a, b) == all(targets[a], targets[b]));
      CHECK(std::abs(cs(a, b) - cf(a, b)) <= 1e-10);
    }
  int other = 0;
  while (std::find(targets.begin(), targets.end(), other) != targets.end()) ++other;
  CHECK_THROWS_WITH_AS(sel.CorrelationOf({targets[0], other}),
                       doctest::Contains("no covariance row"), std::invalid_argument);
  CHECK_THROWS_AS(sel.CorrelationOf({n}), std::invalid_argument);
}

// One channel of 20 bins, signal + background, systematics on the background given as logk per
// bin, constraint weights cw (0 = free).
Model SmallModel(const std::vector<std::vector<double>>& logk, const std::vector<double>& cw,
                 const std::vector<std::string>& names) {
  const int nb = 20, np = 2, ns = static_cast<int>(logk.size());
  Model m;
  m.processes = {"sig", "bkg"};
  m.num_signals = 1;
  for (int s = 0; s < ns; ++s) {
    m.systematics.push_back(names[s]);
    m.constraint_weights.push_back(cw[s]);
  }
  m.nbins = m.nbins_full = nb;
  m.channels.push_back(Channel{"ch", {}, nb, false});
  m.data_obs = Eigen::VectorXd(nb);
  m.sumw2 = Eigen::MatrixXd::Zero(nb, np);
  std::vector<double> norm(static_cast<std::size_t>(nb) * np),
      k(static_cast<std::size_t>(nb) * np * ns, 0.0);
  for (int b = 0; b < nb; ++b) {
    norm[b * np + 0] = 50.0 * std::exp(-0.5 * std::pow((b - 10.0) / 3.0, 2));
    norm[b * np + 1] = 400.0 - 10.0 * b;
    m.data_obs[b] = norm[b * np] + norm[b * np + 1];
    for (int s = 0; s < ns; ++s) k[(static_cast<std::size_t>(b) * np + 1) * ns + s] = logk[s][b];
  }
  m.tensor = Tensor::FromDense(nb, np, ns, norm, k, {});
  return m;
}

// sysA, sysB free with logk equal up to a relative `rel` (times sin(1.3 b)), sysC constrained.
Model Collinear(double rel) {
  std::vector<std::vector<double>> logk(3, std::vector<double>(20, 0.0));
  for (int b = 0; b < 20; ++b) {
    const double a = 0.02 + 0.003 * b;
    logk[0][b] = a;
    logk[1][b] = a * (1.0 + rel * std::sin(1.3 * b));
    logk[2][b] = 0.01 * std::sin(0.7 * b);
  }
  return SmallModel(logk, {0.0, 0.0, 1.0}, {"sysA", "sysB", "sysC"});
}

// The statuses, messages and numbers of kSelected equal those of kFull (small dense models: the
// selected entries are bitwise those of the full inverse).
void CompareStatuses(const Likelihood& lik) {
  FitOptions o;
  const FitResult full = Fit(lik, o);
  o.covariance_extent = CovarianceExtent::kSelected;
  const FitResult sel = Fit(lik, o);
  CHECK(sel.status == full.status);
  CHECK(sel.message == full.message);
  CHECK(sel.covariance_status == full.covariance_status);
  CHECK(sel.covariance_message == full.covariance_message);
  CHECK(sel.hessian_positive_definite == full.hessian_positive_definite);
  CHECK(sel.hessian_scaled_ratio == full.hessian_scaled_ratio);
  CHECK(sel.edm == full.edm);
  CHECK((sel.errors - full.errors).cwiseAbs().maxCoeff() == 0.0);
  CHECK(sel.covariance.size() == 0);
  REQUIRE(sel.covariance_row_params == std::vector<int>{0});
  CHECK((sel.covariance_rows.row(0) - full.covariance.row(0)).cwiseAbs().maxCoeff() == 0.0);
}

}  // namespace

TEST_CASE("covariance extent: kSelected equals kFull on a block-structured CMS-like model") {
  Likelihood lik(lepus::models::MakeCmsLikeModel(SmallCmsLike()));
  REQUIRE(lik.num_params() > 400);
  {
    // The Hessian at the minimum takes the structured path of SpdFactor.
    const FitResult r = Fit(lik);
    REQUIRE(r.ok());
    CHECK(lepus::engine::detail::SpdFactor(r.hessian).structured());
  }
  CompareExtents(lik, FitOptions{});
  // Explicit targets: a nuisance (a local one and a global one), a POI, and a repeated one.
  FitOptions o;
  const int n = lik.num_params();
  o.covariance_targets = {n - 1, 0, lik.model().num_signals + 2, n - 1};
  CompareExtents(lik, o);
  // Frozen parameters (the covariance of the others; zero rows and errors for the frozen ones).
  o.frozen.assign(n, false);
  o.frozen[n - 1] = true;
  o.frozen[lik.model().num_signals + 5] = true;
  CompareExtents(lik, o);
}

TEST_CASE(
    "covariance extent: kSelected equals kFull with poi_positive (Jacobian-transformed rows)") {
  LikelihoodOptions lo;
  lo.poi_positive = true;
  Likelihood lik(Collinear(1.0), lo);
  CompareExtents(lik, FitOptions{});
}

TEST_CASE("covariance extent: near-singular and not positive definite keep their statuses") {
  {
    Likelihood lik(Collinear(1e-9));
    CompareStatuses(lik);
    FitOptions o;
    o.covariance_extent = CovarianceExtent::kSelected;
    const FitResult r = Fit(lik, o);
    CHECK(r.covariance_status == CovarianceStatus::kNearSingular);
    CHECK(r.covariance_message.find("Hessian near-singular") != std::string::npos);
  }
  {
    // A free systematic without any effect: a zero row in the Hessian (not positive definite,
    // the eigenvalues clamped).
    std::vector<std::vector<double>> logk(2, std::vector<double>(20, 0.0));
    for (int b = 0; b < 20; ++b) logk[0][b] = 0.01 * std::sin(0.7 * b);
    Likelihood lik(SmallModel(logk, {1.0, 0.0}, {"sysC", "inert"}));
    CompareStatuses(lik);
    FitOptions o;
    o.covariance_extent = CovarianceExtent::kSelected;
    const FitResult r = Fit(lik, o);
    CHECK(r.covariance_status == CovarianceStatus::kForcedPositive);
    CHECK(r.covariance_message.find("Hessian not positive definite") != std::string::npos);
  }
}

TEST_CASE("covariance extent: validated, and consumers that need the full matrix say so") {
  Likelihood lik(Collinear(1.0));
  FitOptions o;
  o.covariance_extent = static_cast<CovarianceExtent>(7);
  CHECK_THROWS_WITH_AS(Fit(lik, o), doctest::Contains("covariance_extent"), std::invalid_argument);
  CHECK(ToString(CovarianceExtent::kFull) == "full");
  CHECK(ToString(CovarianceExtent::kSelected) == "selected");
  o.covariance_extent = CovarianceExtent::kSelected;
  const FitResult r = Fit(lik, o);
  REQUIRE(r.covariance_status == CovarianceStatus::kAccurateSelected);
  CHECK_THROWS_WITH_AS(ComputeImpacts(lik, r), doctest::Contains("kFull"), std::invalid_argument);
  const LinearCombination c = ParseCombination(lik, "d", "sysA - sysC");
  CHECK_THROWS_WITH_AS(EvaluateCombination(lik, r, c), doctest::Contains("kFull"),
                       std::invalid_argument);
  // Post-fit yields work from the Hessian the result carries: the same as with kFull.
  const FitResult full = Fit(lik);
  const YieldSet a = PostfitYields(lik, r), b = PostfitYields(lik, full);
  CHECK((a.total - b.total).cwiseAbs().maxCoeff() == 0.0);
  CHECK((a.total_error - b.total_error).cwiseAbs().maxCoeff() <=
        1e-12 * b.total_error.cwiseAbs().maxCoeff());
}
