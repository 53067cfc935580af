// Known-answer problems for the fit: analytic counting experiment, saturated linear model,
// Gaussian (quadratic) limit against generalised least squares, statuses and options.
#include <cmath>
#include <random>

#include <Eigen/Dense>

#include <doctest/doctest.h>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/synthetic.h"
#include "test_support.h"

using namespace lepus::engine;
using lepus::models::MakeSyntheticModel;
using lepus::models::SyntheticSpec;

namespace {

// Model with one channel of nbins, processes given as dense [nbins x nproc] yields.
Model DenseModel(const Eigen::MatrixXd& norm, int nsignal, const Eigen::VectorXd& data,
                 const std::vector<std::vector<double>>& logk_per_syst = {},
                 SystematicType type = SystematicType::kLogNormal,
                 const std::vector<double>& cw = {}) {
  Model m;
  const int nb = static_cast<int>(norm.rows()), np = static_cast<int>(norm.cols());
  const int ns = static_cast<int>(logk_per_syst.size());
  for (int p = 0; p < np; ++p) m.processes.push_back("p" + std::to_string(p));
  m.num_signals = nsignal;
  for (int s = 0; s < ns; ++s) {
    m.systematics.push_back("s" + std::to_string(s));
    m.constraint_weights.push_back(cw.empty() ? 1.0 : cw[s]);
  }
  m.systematic_type = type;
  m.nbins = m.nbins_full = nb;
  m.data_obs = data;
  m.sumw2 = Eigen::MatrixXd::Zero(nb, np);
  std::vector<double> n(nb * np), k(static_cast<std::size_t>(nb) * np * ns, 0.0);
  for (int b = 0; b < nb; ++b)
    for (int p = 0; p < np; ++p) {
      n[b * np + p] = norm(b, p);
      for (int s = 0; s < ns; ++s)
        k[(static_cast<std::size_t>(b) * np + p) * ns + s] = logk_per_syst[s][b * np + p];
    }
  m.tensor = Tensor::FromDense(nb, np, ns, n, k, {});
  return m;
}

}  // namespace

TEST_CASE("one-bin counting experiment: analytic mu-hat and Hessian error") {
  // n = 150 observed, signal 50, background 80 (fixed): mu = (n - b)/s = 1.4, sigma = sqrt(n)/s.
  Eigen::MatrixXd norm(1, 2);
  norm << 50.0, 80.0;
  Likelihood lik(DenseModel(norm, 1, Eigen::VectorXd::Constant(1, 150.0)));
  FitResult r = Fit(lik);
  REQUIRE(r.status == FitStatus::kConverged);
  CHECK(r.values[0] == doctest::Approx(1.4).epsilon(1e-12));
  CHECK(r.errors[0] == doctest::Approx(std::sqrt(150.0) / 50.0).epsilon(1e-10));
  CHECK(std::abs(r.nll) < 1e-12);
  CHECK(r.gof_ndf == 0);
  CHECK(r.covariance_status == CovarianceStatus::kAccurate);
  CHECK(r.edm < 1e-20);
}

TEST_CASE("positive POI parametrisation gives the same mu and error when mu-hat > 0") {
  Eigen::MatrixXd norm(1, 2);
  norm << 50.0, 80.0;
  Model m = DenseModel(norm, 1, Eigen::VectorXd::Constant(1, 150.0));
  LikelihoodOptions opt;
  opt.poi_positive = true;
  Likelihood lik(m, opt);
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  CHECK(r.values[0] == doctest::Approx(1.4).epsilon(1e-10));
  CHECK(r.x[0] == doctest::Approx(std::sqrt(1.4)).epsilon(1e-10));
  CHECK(r.errors[0] == doctest::Approx(std::sqrt(150.0) / 50.0).epsilon(1e-8));
}

TEST_CASE("positive POI: a downward fluctuation stops at mu = 0 instead of going negative") {
  Eigen::MatrixXd norm(1, 2);
  norm << 50.0, 80.0;
  Model m = DenseModel(norm, 1, Eigen::VectorXd::Constant(1, 60.0));  // linear mu-hat = -0.4
  Likelihood linear(m);
  FitResult rl = Fit(linear);
  REQUIRE(rl.ok());
  CHECK(rl.values[0] == doctest::Approx(-0.4).epsilon(1e-10));
  LikelihoodOptions opt;
  opt.poi_positive = true;
  Likelihood lik(m, opt);
  FitOptions fo;
  fo.max_iterations = 500;
  FitResult r = Fit(lik, fo);
  CHECK(r.values[0] >= 0.0);
  CHECK(r.values[0] < 1e-3);
}

TEST_CASE("saturated linear model: exact solution and exact covariance") {
  // lambda_b = sum_j A_bj x_j with normal systematics (free): x-hat = A^-1 n, NLL = 0 and
  // H = A^T diag(1/n) A exactly.
  Eigen::MatrixXd norm(3, 1);
  norm << 100.0, 60.0, 30.0;  // signal template, mu
  std::vector<std::vector<double>> logk{{10.0, -5.0, 2.0}, {3.0, 8.0, -4.0}};  // additive per theta
  Eigen::VectorXd data(3);
  data << 130.0, 71.0, 28.0;
  Model m = DenseModel(norm, 1, data, logk, SystematicType::kNormal, {0.0, 0.0});
  Likelihood lik(m, LikelihoodOptions{});
  // The exact solution is asked for: converge far below the default EDM tolerance (1e-8 leaves
  // errors of ~1e-9 sigma after the final Newton step; the saturated NLL is 0 at the minimum).
  FitOptions fo;
  fo.edm_tolerance = 1e-14;
  FitResult r = Fit(lik, fo);
  REQUIRE(r.ok());
  Eigen::Matrix3d A;
  A << 100, 10, 3, 60, -5, 8, 30, 2, -4;
  const Eigen::Vector3d xhat = A.lu().solve(data);
  const Eigen::Matrix3d cov = (A.transpose() * data.cwiseInverse().asDiagonal() * A).inverse();
  for (int i = 0; i < 3; ++i) {
    CHECK(r.values[i] == doctest::Approx(xhat[i]).epsilon(1e-10));
    for (int j = 0; j < 3; ++j)
      CHECK(r.covariance(i, j) == doctest::Approx(cov(i, j)).epsilon(1e-8));
  }
  CHECK(std::abs(r.nll) < 1e-10);
  CHECK(r.gof_ndf == 0);
}

TEST_CASE("Gaussian limit: large counts reproduce generalised least squares") {
  // With n ~ 1e9 the Poisson NLL is quadratic to O(1/sqrt(n)); the constrained linear model
  // then has the GLS solution x = (A^T W A + C)^-1 (A^T W n + C x0), W = diag(1/n).
  const int nb = 12;
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  Eigen::MatrixXd norm(nb, 2);
  std::vector<std::vector<double>> logk(3, std::vector<double>(nb * 2, 0.0));
  Eigen::VectorXd data(nb);
  for (int b = 0; b < nb; ++b) {
    norm(b, 0) = 1e9 * u(rng);
    norm(b, 1) = 2e9 * u(rng);
    for (int s = 0; s < 3; ++s) logk[s][b * 2 + 1] = 2e6 * (u(rng) - 1.0) * (s + 1);
    data[b] = norm(b, 0) * 1.0001 + norm(b, 1) + 3e4 * (u(rng) - 1.0);
  }
  Model m = DenseModel(norm, 1, data, logk, SystematicType::kNormal, {1.0, 1.0, 0.25});
  LikelihoodOptions opt;
  opt.bin_by_bin_stat = false;
  Likelihood lik(m, opt);
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  Eigen::MatrixXd A(nb, 4);
  for (int b = 0; b < nb; ++b) {
    A(b, 0) = norm(b, 0);
    for (int s = 0; s < 3; ++s) A(b, 1 + s) = logk[s][b * 2 + 1];
  }
  Eigen::VectorXd y = data - norm.col(1);
  Eigen::MatrixXd W = data.cwiseInverse().asDiagonal();
  Eigen::MatrixXd C = Eigen::MatrixXd::Zero(4, 4);
  C(1, 1) = 1.0;
  C(2, 2) = 1.0;
  C(3, 3) = 0.25;
  Eigen::MatrixXd N = A.transpose() * W * A + C;
  Eigen::VectorXd xg = N.ldlt().solve(A.transpose() * W * y);
  Eigen::MatrixXd cg = N.inverse();
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    // value differences relative to the uncertainty, errors relative
    CHECK(std::abs(r.values[i] - xg[i]) / std::sqrt(cg(i, i)) < 1e-3);
    CHECK(r.errors[i] == doctest::Approx(std::sqrt(cg(i, i))).epsilon(1e-3));
  }
}

TEST_CASE("closure: fitting the Asimov data set returns the prefit point with NLL 0") {
  for (bool bb : {true, false}) {
    SyntheticSpec spec;
    spec.nbins = 40;
    spec.nproc = 4;
    spec.nsignal = 2;
    spec.nsyst = 30;
    spec.nfree = 3;
    spec.asymmetric = true;
    spec.seed = 13;
    LikelihoodOptions opt;
    opt.bin_by_bin_stat = bb;
    Likelihood lik(MakeSyntheticModel(spec), opt);
    const Eigen::VectorXd x0 = lik.InitialParams();
    lik.SetData(AsimovData(lik, x0));
    FitOptions fo;
    Eigen::VectorXd start = x0;
    start.array() += 0.3;  // start away from the truth
    fo.initial_params = start;
    FitResult r = Fit(lik, fo);
    REQUIRE(r.ok());
    CHECK((r.x - x0).cwiseAbs().maxCoeff() < 1e-7);
    CHECK(std::abs(r.nll) < 1e-10);
    CHECK(r.gof_ndf == 40 - 2 - 3);
    // constrained nuisances: Asimov errors below the prior width
    for (int s = 3; s < 30; ++s) CHECK(r.errors[2 + s] <= 1.0 + 1e-12);
  }
}

TEST_CASE("closure on Poisson data: the fit recovers the generated truth within errors") {
  // Data generated at mu = 1.1 (synthetic truth); over several seeds the pull of mu is O(1).
  int within = 0, total = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SyntheticSpec spec;
    spec.nbins = 30;
    spec.nproc = 3;
    spec.nsyst = 6;
    spec.mc_stat = false;
    spec.yield_scale = 500;
    spec.seed = seed;
    LikelihoodOptions opt;
    opt.bin_by_bin_stat = false;
    Likelihood lik(MakeSyntheticModel(spec), opt);
    FitResult r = Fit(lik);
    REQUIRE(r.ok());
    ++total;
    if (std::abs(r.values[0] - 1.1) < 2.0 * r.errors[0]) ++within;
  }
  CHECK(within >= 15);  // ~95% expected within 2 sigma; 15/20 is a > 3 sigma fluctuation bound
}

TEST_CASE("frozen parameters stay fixed, get zero error and do not count in ndf") {
  SyntheticSpec spec;
  spec.nbins = 20;
  spec.nsyst = 4;
  spec.nfree = 1;
  spec.seed = 3;
  Likelihood lik(MakeSyntheticModel(spec));
  FitOptions fo;
  fo.frozen.assign(lik.num_params(), false);
  fo.frozen[1] = true;  // syst0: the free one
  fo.initial_params = lik.InitialParams();
  fo.initial_params[1] = 0.25;
  FitResult r = Fit(lik, fo);
  REQUIRE(r.ok());
  CHECK(r.values[1] == 0.25);
  CHECK(r.errors[1] == 0.0);
  CHECK(r.covariance.row(1).cwiseAbs().maxCoeff() == 0.0);
  CHECK(r.gof_ndf == 20 - 1);  // only the POI is free and unconstrained
  Eigen::VectorXd g;
  lik.ValueAndGradient(r.x, &g);
  g[1] = 0.0;
  CHECK(g.cwiseAbs().maxCoeff() < 1e-5);
}

TEST_CASE("statuses: iteration limit and non-finite start are reported, not thrown") {
  SyntheticSpec spec;
  spec.nbins = 20;
  spec.nsyst = 5;
  spec.seed = 8;
  Likelihood lik(MakeSyntheticModel(spec));
  FitOptions fo;
  fo.max_iterations = 1;
  fo.initial_params = lik.InitialParams();
  fo.initial_params[0] = 5.0;
  FitResult r = Fit(lik, fo);
  CHECK(r.status == FitStatus::kNotConverged);
  CHECK(r.message.find("iteration limit") != std::string::npos);

  // Normal systematics with a start where the expectation is negative.
  SyntheticSpec ns = spec;
  ns.type = SystematicType::kNormal;
  Likelihood lik2(MakeSyntheticModel(ns));
  FitOptions f2;
  f2.initial_params = lik2.InitialParams();
  f2.initial_params[0] = -50.0;
  FitResult r2 = Fit(lik2, f2);
  CHECK(r2.status == FitStatus::kFailed);
  CHECK(r2.message.find("not finite") != std::string::npos);
}

TEST_CASE("a start at a saddle point (mu = x^2 at x = 0) escapes along negative curvature") {
  Eigen::MatrixXd norm(1, 2);
  norm << 50.0, 80.0;
  LikelihoodOptions opt;
  opt.poi_positive = true;
  Likelihood lik(DenseModel(norm, 1, Eigen::VectorXd::Constant(1, 150.0)), opt);
  FitOptions fo;
  fo.initial_params = Eigen::VectorXd::Zero(1);
  FitResult r = Fit(lik, fo);
  REQUIRE(r.ok());
  CHECK(r.values[0] == doctest::Approx(1.4).epsilon(1e-9));
}

TEST_CASE("blocked and per-row Hessian assembly give the same fit") {
  SyntheticSpec spec;
  spec.nbins = 50;
  spec.nproc = 4;
  spec.nsyst = 40;
  spec.density = 0.5;
  spec.asymmetric = true;
  spec.seed = 17;
  Model m = MakeSyntheticModel(spec);
  LikelihoodOptions a, b;
  a.hessian_assembly = HessianAssembly::kBlocked;
  b.hessian_assembly = HessianAssembly::kPerRow;
  Likelihood la(m, a), lb(m, b);
  Eigen::VectorXd ga, gb;
  Eigen::MatrixXd ha, hb;
  const Eigen::VectorXd x = la.InitialParams().array() + 0.1;
  la.ValueGradientHessian(x, &ga, &ha);
  lb.ValueGradientHessian(x, &gb, &hb);
  CHECK(lepus::test::MaxRelDiff(ha, hb, 1e-9 * ha.cwiseAbs().maxCoeff()) < 1e-10);
  FitResult ra = Fit(la), rb = Fit(lb);
  REQUIRE(ra.ok());
  REQUIRE(rb.ok());
  CHECK(lepus::test::MaxRelDiff(ra.values, rb.values, 1e-9) < 1e-9);
  CHECK(lepus::test::MaxRelDiff(ra.errors, rb.errors, 1e-12) < 1e-9);
}

TEST_CASE("chi-square p-values match closed forms") {
  CHECK(ChiSquarePValue(1.0, 1) == doctest::Approx(std::erfc(std::sqrt(0.5))).epsilon(1e-12));
  CHECK(ChiSquarePValue(7.3, 2) == doctest::Approx(std::exp(-7.3 / 2)).epsilon(1e-12));
  CHECK(ChiSquarePValue(50.0, 2) == doctest::Approx(std::exp(-25.0)).epsilon(1e-10));
  // ndf = 4: Q = exp(-x/2) (1 + x/2)
  CHECK(ChiSquarePValue(3.0, 4) == doctest::Approx(std::exp(-1.5) * 2.5).epsilon(1e-12));
  CHECK(ChiSquarePValue(0.0, 5) == 1.0);
  CHECK(std::isnan(ChiSquarePValue(1.0, 0)));
}

TEST_CASE("FitOptions validation: defaults valid, bad fields named") {
  std::string err;
  CHECK(FitOptions{}.IsValid(10, &err));
  FitOptions o;
  o.edm_tolerance = -1;
  CHECK_FALSE(o.IsValid(10, &err));
  CHECK(err.find("edm_tolerance is -1") != std::string::npos);
  o = FitOptions{};
  o.frozen.assign(3, false);
  CHECK_FALSE(o.IsValid(10, &err));
  CHECK(err.find("frozen has 3 entries") != std::string::npos);
  o = FitOptions{};
  o.max_iterations = 0;
  CHECK_FALSE(o.IsValid(10, &err));
  CHECK(err.find("max_iterations") != std::string::npos);
}

TEST_CASE("matrix-free Newton-CG agrees with the dense Newton fit") {
  for (bool poi_positive : {false, true}) {
    CAPTURE(poi_positive);
    SyntheticSpec spec;
    spec.nbins = 40;
    spec.nmasked = 3;
    spec.nproc = 4;
    spec.nsignal = 2;
    spec.nsyst = 30;
    spec.nfree = 2;
    spec.nnoi = 2;
    spec.asymmetric = true;
    spec.density = 0.4;
    spec.seed = 71;
    LikelihoodOptions lo;
    lo.poi_positive = poi_positive;
    Likelihood lik(MakeSyntheticModel(spec), lo);
    FitOptions dense, mf;
    dense.method = FitMethod::kDense;
    mf.method = FitMethod::kMatrixFree;
    dense.frozen.assign(lik.num_params(), false);
    dense.frozen[5] = true;  // a frozen nuisance in both
    mf.frozen = dense.frozen;
    FitResult rd = Fit(lik, dense), rm = Fit(lik, mf);
    REQUIRE(rd.ok());
    REQUIRE(rm.ok());
    CHECK(rm.method == FitMethod::kMatrixFree);
    CHECK(rm.covariance_status == CovarianceStatus::kTargetsOnly);
    CHECK(rm.nll == doctest::Approx(rd.nll).epsilon(1e-10));
    for (int i = 0; i < lik.num_params(); ++i) {
      CAPTURE(i);
      CHECK(std::abs(rm.values[i] - rd.values[i]) <= 1e-6 * std::max(rd.errors[i], 1e-12) + 1e-12);
    }
    // targets: the POIs and the NOIs (parameters 0, 1 and systematics 0, 1 -> 2, 3)
    REQUIRE(rm.covariance_row_params == std::vector<int>({0, 1, 2, 3}));
    for (std::size_t k = 0; k < rm.covariance_row_params.size(); ++k) {
      const int t = rm.covariance_row_params[k];
      CHECK(rm.errors[t] == doctest::Approx(rd.errors[t]).epsilon(1e-6));
      for (int j = 0; j < lik.num_params(); ++j)
        CHECK(std::abs(rm.covariance_rows(k, j) - rd.covariance(t, j)) <=
              1e-6 * rd.errors[t] * std::max(rd.errors[j], 1e-3));
    }
    CHECK(std::isnan(rm.errors[10]));  // not a target
    CHECK(rm.errors[5] == 0.0);        // frozen
    CHECK(rm.gof_ndf == rd.gof_ndf);
  }
}

TEST_CASE("fit method selection and validation") {
  CHECK(FitMethodFromString("matrix_free") == FitMethod::kMatrixFree);
  CHECK(ToString(FitMethod::kDense) == "dense");
  CHECK_THROWS_AS(FitMethodFromString("sparse"), std::invalid_argument);
  std::string err;
  FitOptions o;
  o.cg_tolerance = 2.0;
  CHECK_FALSE(o.IsValid(10, &err));
  CHECK(err.find("cg_tolerance") != std::string::npos);
  // kAuto with a threshold below the parameter count takes the matrix-free path.
  SyntheticSpec spec;
  spec.nbins = 15;
  spec.nsyst = 6;
  spec.seed = 2;
  Likelihood lik(MakeSyntheticModel(spec));
  FitOptions a;
  a.matrix_free_threshold = 3;
  FitResult r = Fit(lik, a);
  REQUIRE(r.ok());
  CHECK(r.method == FitMethod::kMatrixFree);
}
