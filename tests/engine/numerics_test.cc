// Honest numerical statuses (docs/numerics.md, "Near-singular Hessians", "Empty and extreme
// bins"): a Hessian that factorises but is singular up to rounding gives covariance status
// near_singular with the parameters of the flat direction named (dense and matrix-free fits);
// impacts, refits, intervals, observed toys and post-fit yields on a failed or near-singular fit
// throw NumericalError (exit code 2 in the CLI), not std::invalid_argument; a bin with zero
// expectation and zero observed events fits; extreme yields fit or fail naming the bin.
#include <cmath>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include <doctest/doctest.h>

#include "../../engine/src/spd.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/scan.h"
#include "lepus/engine/toys.h"
#include "lepus/engine/yields.h"

using namespace lepus::engine;

namespace {

// One channel "ch" of nb bins; processes [nb x np] (signals first); systematics as logk columns
// over the (bin, process) pairs in row-major order, with constraint weights cw (0 = free).
Model MakeModel(const Eigen::MatrixXd& norm, int nsignal, const Eigen::VectorXd& data,
                const std::vector<std::vector<double>>& logk = {},
                const std::vector<double>& cw = {}, const std::vector<std::string>& names = {}) {
  Model m;
  const int nb = static_cast<int>(norm.rows()), np = static_cast<int>(norm.cols());
  const int ns = static_cast<int>(logk.size());
  for (int p = 0; p < np; ++p) m.processes.push_back(std::string("p").append(std::to_string(p)));
  m.num_signals = nsignal;
  for (int s = 0; s < ns; ++s) {
    m.systematics.push_back(names.empty() ? std::string("s").append(std::to_string(s)) : names[s]);
    m.constraint_weights.push_back(cw.empty() ? 1.0 : cw[s]);
  }
  m.nbins = m.nbins_full = nb;
  m.channels.push_back(Channel{"ch", {}, nb, false});
  m.data_obs = data;
  m.sumw2 = Eigen::MatrixXd::Zero(nb, np);
  std::vector<double> n(static_cast<std::size_t>(nb) * np),
      k(static_cast<std::size_t>(nb) * np * ns, 0.0);
  for (int b = 0; b < nb; ++b)
    for (int p = 0; p < np; ++p) {
      n[b * np + p] = norm(b, p);
      for (int s = 0; s < ns; ++s)
        k[(static_cast<std::size_t>(b) * np + p) * ns + s] = logk[s][b * np + p];
    }
  m.tensor = Tensor::FromDense(nb, np, ns, n, k, {});
  return m;
}

// Signal + background in 20 bins; sysA and sysB free (no constraint) on the background with logk
// columns equal up to a relative `rel` (times sin(1.3 b)), and a constrained sysC. Asimov data.
Model CollinearModel(double rel) {
  const int nb = 20, np = 2;
  Eigen::MatrixXd norm(nb, np);
  std::vector<std::vector<double>> logk(3, std::vector<double>(nb * np, 0.0));
  Eigen::VectorXd data(nb);
  for (int b = 0; b < nb; ++b) {
    norm(b, 0) = 50.0 * std::exp(-0.5 * std::pow((b - 10.0) / 3.0, 2));
    norm(b, 1) = 400.0 - 10.0 * b;
    data[b] = norm(b, 0) + norm(b, 1);
    const double a = 0.02 + 0.003 * b;
    logk[0][b * np + 1] = a;
    logk[1][b * np + 1] = a * (1.0 + rel * std::sin(1.3 * b));
    logk[2][b * np + 1] = 0.01 * std::sin(0.7 * b);
  }
  return MakeModel(norm, 1, data, logk, {0.0, 0.0, 1.0}, {"sysA", "sysB", "sysC"});
}

// Exact lambda_min / lambda_max of the Jacobi-scaled Hessian (reference for the estimate).
double ExactScaledRatio(const Eigen::MatrixXd& h) {
  const Eigen::VectorXd s = h.diagonal().cwiseSqrt().cwiseInverse();
  const Eigen::MatrixXd hs = s.asDiagonal() * h * s.asDiagonal();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(hs, Eigen::EigenvaluesOnly);
  REQUIRE(es.info() == Eigen::Success);
  return es.eigenvalues()[0] / es.eigenvalues()[hs.rows() - 1];
}

}  // namespace

TEST_CASE(
    "near-singular Hessian: two free systematics equal to 1e-9 give near_singular naming both") {
  Likelihood lik(CollinearModel(1e-9));
  const FitResult r = Fit(lik);
  // The minimum is found (the flat direction does not change the NLL) ...
  CHECK(r.status == FitStatus::kConverged);
  // ... but the covariance is not accurate: before, "accurate" with errors of ~1e8.
  CHECK(r.covariance_status == CovarianceStatus::kNearSingular);
  CHECK(r.hessian_scaled_ratio < 1e-12);
  CHECK(r.covariance_message.find("Hessian near-singular") != std::string::npos);
  // Both named with weights +-0.71 (the sign convention makes the largest component positive).
  const std::string& msg = r.covariance_message;
  const bool a_first =
      msg.find("sysA (+0.7") != std::string::npos && msg.find("sysB (-0.7") != std::string::npos;
  const bool b_first =
      msg.find("sysB (+0.7") != std::string::npos && msg.find("sysA (-0.7") != std::string::npos;
  CHECK((a_first || b_first));
  // Before: "accurate" with errors of ~1e7..1e8 on sysA and sysB.
  CHECK(r.errors[lik.FindParam("sysA")] > 1e5);
  CHECK(r.covariance_message.find("sysC") == std::string::npos);  // not part of the direction
  CHECK(ToString(r.covariance_status) == "near_singular");
  CHECK(r.BriefReport().find("covariance=near_singular") != std::string::npos);
}

TEST_CASE("near-singular Hessian: the estimated ratio follows the exact scaled eigenvalue ratio") {
  // rel = 1e-5: lambda_min/lambda_max ~ 1e-11 (above the threshold), rel = 1e-7: ~1e-15 (below).
  for (double rel : {1e-5, 1e-7}) {
    CAPTURE(rel);
    Likelihood lik(CollinearModel(rel));
    const FitResult r = Fit(lik);
    REQUIRE(r.status == FitStatus::kConverged);
    const double exact = ExactScaledRatio(r.hessian);
    // Rayleigh-quotient estimates: lambda_min from above, lambda_max from below, a few steps.
    CHECK(r.hessian_scaled_ratio >= 0.999 * exact);
    CHECK(r.hessian_scaled_ratio <= 2.0 * exact);
    CHECK(r.covariance_status ==
          (exact > 1e-12 ? CovarianceStatus::kAccurate : CovarianceStatus::kNearSingular));
  }
}

TEST_CASE("well-conditioned model: covariance accurate, ratio far above the threshold") {
  Likelihood lik(CollinearModel(1.0));  // sysB = a * (1 + sin(1.3 b)): distinct columns
  const FitResult r = Fit(lik);
  REQUIRE(r.status == FitStatus::kConverged);
  CHECK(r.covariance_status == CovarianceStatus::kAccurate);
  CHECK(r.covariance_message.empty());
  CHECK(r.hessian_scaled_ratio > 1e-6);
  CHECK(r.hessian_scaled_ratio == doctest::Approx(ExactScaledRatio(r.hessian)).epsilon(0.5));
}

TEST_CASE("EstimateScaledConditioning: known spectrum, invariant to the parameters' units") {
  using lepus::engine::detail::EstimateScaledConditioning;
  using lepus::engine::detail::SpdFactor;
  // Unit-diagonal block [[1, 1-d], [1-d, 1]] (eigenvalues d, 2-d) plus a well-conditioned rest.
  const double d = 1e-13;
  Eigen::MatrixXd a = Eigen::MatrixXd::Identity(6, 6);
  a(1, 4) = a(4, 1) = 1.0 - d;
  a(0, 2) = a(2, 0) = 0.3;
  // Arbitrary units: D a D has the same scaled spectrum.
  Eigen::VectorXd units(6);
  units << 1e-3, 7.0, 2e4, 0.5, 3e-6, 1.0;
  const Eigen::MatrixXd b = units.asDiagonal() * a * units.asDiagonal();
  const SpdFactor f(b);
  REQUIRE(f.ok());
  const auto c = EstimateScaledConditioning(b, f);
  CHECK(c.lambda_min == doctest::Approx(d).epsilon(1e-2));
  CHECK(c.lambda_max == doctest::Approx(2.0 - d).epsilon(1e-2));
  CHECK(std::abs(c.direction[1]) == doctest::Approx(std::sqrt(0.5)).epsilon(1e-6));
  CHECK(c.direction[1] * c.direction[4] < 0);
  CHECK(lepus::engine::detail::DescribeDirection(c.direction, {"a", "b", "c", "d", "e", "f"}) ==
        (c.direction[1] > 0 ? "b (+0.71), e (-0.71)" : "e (+0.71), b (-0.71)"));
}

TEST_CASE("FitOptions.singular_ratio is validated and used") {
  Likelihood lik(CollinearModel(1e-5));
  FitOptions o;
  o.singular_ratio = 0.0;
  CHECK_THROWS_WITH_AS(Fit(lik, o), doctest::Contains("singular_ratio"), std::invalid_argument);
  o.singular_ratio = 1e-8;  // stricter: the 1e-11 model is now near-singular
  const FitResult r = Fit(lik, o);
  CHECK(r.covariance_status == CovarianceStatus::kNearSingular);
}

TEST_CASE("matrix-free fit: a near-singular covariance row is a status, not a number") {
  Likelihood lik(CollinearModel(1e-9));
  FitOptions o;
  o.method = FitMethod::kMatrixFree;
  o.covariance_targets = {lik.FindParam("sysA")};
  const FitResult r = Fit(lik, o);
  CHECK(r.covariance_status == CovarianceStatus::kNearSingular);
  CHECK(r.covariance_message.find("sysA") != std::string::npos);
  CHECK(std::isnan(r.errors[lik.FindParam("sysA")]));
  // The POI's row alone is well conditioned (the flat direction does not involve it).
  FitOptions p = o;
  p.covariance_targets = {0};
  const FitResult rp = Fit(lik, p);
  CHECK(rp.covariance_status == CovarianceStatus::kTargetsOnly);
  CHECK(std::isfinite(rp.errors[0]));
}

TEST_CASE("numerical outcomes are NumericalError, not invalid input") {
  Likelihood lik(CollinearModel(1e-9));
  const FitResult r = Fit(lik);
  REQUIRE(r.covariance_status == CovarianceStatus::kNearSingular);
  CHECK_THROWS_WITH_AS(ComputeImpacts(lik, r), doctest::Contains("near_singular"), NumericalError);
  CHECK_THROWS_WITH_AS(PostfitYields(lik, r), doctest::Contains("near_singular"), NumericalError);

  // A failed fit: one iteration from a distant start (the data are Asimov: the prefit point is
  // the minimum).
  FitOptions one;
  one.max_iterations = 1;
  one.initial_params = lik.InitialParams();
  one.initial_params[0] = 3.0;
  const FitResult bad = Fit(lik, one);
  REQUIRE(bad.status != FitStatus::kConverged);
  CHECK_THROWS_WITH_AS(PostfitYields(lik, bad), doctest::Contains("converged"), NumericalError);
  CHECK_THROWS_AS(ProfileInterval(lik, bad, 0, 0.68), NumericalError);
  ToyOptions t;
  t.ntoys = 2;
  t.mode = ToyMode::kObserved;
  t.fit = one;
  CHECK_THROWS_WITH_AS(RunToys(lik, t), doctest::Contains("observed toys"), NumericalError);

  // A refit that cannot converge (one iteration) on a good fit.
  Likelihood good(CollinearModel(1.0));
  const FitResult g = Fit(good);
  REQUIRE(g.ok());
  FitOptions one_iteration;
  one_iteration.max_iterations = 1;
  CHECK_THROWS_WITH_AS(ImpactByRefit(good, g, 0, good.FindParam("sysC"), one_iteration),
                       doctest::Contains("did not converge"), NumericalError);
}

TEST_CASE("a bin with zero expectation and zero observed events fits (its term is 0)") {
  // Three bins; the middle one has no yield from any process and no events.
  Eigen::MatrixXd norm(3, 2);
  norm << 20.0, 100.0,  //
      0.0, 0.0,         //
      30.0, 80.0;
  std::vector<std::vector<double>> logk(1, std::vector<double>(6, 0.0));
  logk[0][1] = 0.05;
  logk[0][5] = -0.03;
  Eigen::VectorXd data(3);
  data << 125.0, 0.0, 105.0;
  Likelihood lik(MakeModel(norm, 1, data, logk));
  const FitResult r = Fit(lik);
  REQUIRE(r.status == FitStatus::kConverged);
  CHECK(r.covariance_status == CovarianceStatus::kAccurate);
  // Same result as the model without the empty bin.
  Eigen::MatrixXd norm2(2, 2);
  norm2 << 20.0, 100.0, 30.0, 80.0;
  std::vector<std::vector<double>> logk2(1, std::vector<double>(4, 0.0));
  logk2[0][1] = 0.05;
  logk2[0][3] = -0.03;
  Eigen::VectorXd data2(2);
  data2 << 125.0, 105.0;
  Likelihood lik2(MakeModel(norm2, 1, data2, logk2));
  const FitResult r2 = Fit(lik2);
  REQUIRE(r2.ok());
  CHECK(r.values[0] == doctest::Approx(r2.values[0]).epsilon(1e-10));
  CHECK(r.errors[0] == doctest::Approx(r2.errors[0]).epsilon(1e-10));
  CHECK(r.nll == doctest::Approx(r2.nll).epsilon(1e-10));
  // Impacts (global ones use d/dn of every bin) and post-fit yields work with the empty bin.
  const Impacts im = ComputeImpacts(lik, r);
  CHECK(im.total.allFinite());
  CHECK(im.global_data.allFinite());
  const YieldSet y = PostfitYields(lik, r);
  CHECK(y.total[1] == 0.0);
  CHECK(y.total_error[1] == 0.0);
}

TEST_CASE("zero expectation with observed events: failed, naming the bin") {
  Eigen::MatrixXd norm(3, 2);
  norm << 20.0, 100.0,  //
      0.0, 0.0,         //
      30.0, 80.0;
  Eigen::VectorXd data(3);
  data << 125.0, 2.0, 105.0;
  Likelihood lik(MakeModel(norm, 1, data));
  const FitResult r = Fit(lik);
  CHECK(r.status == FitStatus::kFailed);
  CHECK(r.message.find("bin 1 (channel ch, bin 1): expected yield 0 with 2 observed events") !=
        std::string::npos);
}

TEST_CASE("extreme yields: 1e-300 fits, 1e300 fails naming the bin and the value") {
  SUBCASE("tiny yields in an empty bin fit") {
    Eigen::MatrixXd norm(3, 2);
    norm << 20.0, 100.0,  //
        1e-300, 1e-300,   //
        30.0, 80.0;
    Eigen::VectorXd data(3);
    data << 125.0, 0.0, 105.0;
    Likelihood lik(MakeModel(norm, 1, data));
    const FitResult r = Fit(lik);
    CHECK(r.status == FitStatus::kConverged);
    CHECK(r.covariance_status == CovarianceStatus::kAccurate);
    CHECK(std::isfinite(r.errors[0]));
  }
  SUBCASE("tiny yield with observed events fails naming the bin") {
    Eigen::MatrixXd norm(2, 2);
    norm << 20.0, 100.0,  //
        1e-300, 1e-300;
    Eigen::VectorXd data(2);
    data << 125.0, 3.0;
    Likelihood lik(MakeModel(norm, 1, data));
    const FitResult r = Fit(lik);
    CHECK(r.status != FitStatus::kConverged);
    CHECK(r.message.find("bin 1 (channel ch, bin 1): expected yield") != std::string::npos);
    CHECK(r.message.find("below 1e-150") != std::string::npos);
  }
  SUBCASE("huge yields fail naming the bin and the value") {
    Eigen::MatrixXd norm(2, 2);
    norm << 20.0, 100.0,  //
        1e300, 1e300;
    Eigen::VectorXd data(2);
    data << 125.0, 2e300;
    Likelihood lik(MakeModel(norm, 1, data));
    const FitResult r = Fit(lik);
    CHECK(r.status != FitStatus::kConverged);
    CHECK(r.message.find("bin 1 (channel ch, bin 1): expected yield 2e+300") != std::string::npos);
    CHECK(r.message.find("above 1e+150") != std::string::npos);
  }
  SUBCASE("large counts fit, or fail naming the bin whose NLL term is at the rounding level") {
    for (double scale : {1e6, 1e9, 1e12, 1e14}) {
      CAPTURE(scale);
      Eigen::MatrixXd norm(2, 2);
      norm << 0.01 * scale, scale,  //
          0.03 * scale, 2.0 * scale;
      Eigen::VectorXd data(2);
      data << 1.012 * scale, 2.029 * scale;
      Likelihood lik(MakeModel(norm, 1, data));
      const FitResult r = Fit(lik);
      if (scale <= 1e9) {
        CHECK(r.status == FitStatus::kConverged);
        CHECK(r.covariance_status == CovarianceStatus::kAccurate);
      } else if (r.status != FitStatus::kConverged) {
        CHECK(r.message.find("(channel ch, bin ") != std::string::npos);
        CHECK(r.message.find("observed events: the rounding error of the NLL term") !=
              std::string::npos);
      }
    }
  }
}
