// Finite-difference checks of the analytic gradient and Hessian for every option combination,
// and determinism across thread counts.
#include <cmath>
#include <random>
#include <string>

#include <doctest/doctest.h>
#include <Eigen/Eigenvalues>

#include "derivative_check.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/synthetic.h"
#include "test_support.h"

using lepus::engine::Likelihood;
using lepus::engine::LikelihoodOptions;
using lepus::engine::Model;
using lepus::engine::SystematicType;
using lepus::models::MakeSyntheticModel;
using lepus::models::SyntheticSpec;

namespace {

using lepus::test::CheckDerivatives;
using lepus::test::RandomPoint;

}  // namespace

TEST_CASE("gradient and Hessian match finite differences for every option combination") {
  int combos = 0;
  for (double density : {1.0, 0.12}) {
    for (bool asym : {false, true}) {
      for (auto type : {SystematicType::kLogNormal, SystematicType::kNormal}) {
        for (bool bb : {true, false}) {
          for (bool poi_positive : {false, true}) {
            SyntheticSpec spec;
            spec.nbins = 14;
            spec.nmasked = 3;
            spec.nproc = 4;
            spec.nsignal = 2;
            spec.nsyst =
                24;  // >= 16: the dense (rank-k) Hessian path is taken when density is high
            spec.nfree = 2;
            spec.nnoi = 1;
            spec.density = density;
            spec.asymmetric = asym;
            spec.type = type;
            spec.seed = 7 + combos;
            Model model = MakeSyntheticModel(spec);
            model.data_obs[3] = 0.0;  // an empty bin: the n = 0 branch
            LikelihoodOptions opt;
            opt.bin_by_bin_stat = bb;
            opt.poi_positive = poi_positive;
            Likelihood lik(model, opt);
            const std::string label =
                "density=" + std::to_string(density) + " asym=" + std::to_string(asym) +
                " type=" + lepus::engine::ToString(type) + " bb=" + std::to_string(bb) +
                " poi_positive=" + std::to_string(poi_positive);
            CheckDerivatives(lik, RandomPoint(lik, 100 + combos), label);
            ++combos;
          }
        }
      }
    }
  }
  CHECK(combos == 32);
}

TEST_CASE("small models take the per-row (sparse) Hessian path and agree with finite differences") {
  for (bool asym : {false, true}) {
    SyntheticSpec spec;
    spec.nbins = 9;
    spec.nproc = 3;
    spec.nsyst = 5;
    spec.asymmetric = asym;
    spec.density = 0.7;
    spec.seed = 3;
    Likelihood lik(MakeSyntheticModel(spec));
    CheckDerivatives(lik, RandomPoint(lik, 5), asym ? "asym" : "sym");
  }
}

TEST_CASE("Barlow-Beeston with every process scaled uses the closed-form beta") {
  SyntheticSpec spec;
  spec.nbins = 10;
  spec.nproc = 3;
  spec.nsyst = 6;
  spec.seed = 11;
  Model model = MakeSyntheticModel(spec);
  for (Eigen::Index b = 0; b < model.sumw2.rows(); ++b) model.sumw2(b, 2) = 4.0;  // all processes
  Likelihood lik(model);
  const Eigen::VectorXd x = RandomPoint(lik, 9);
  CheckDerivatives(lik, x, "all scaled");
  // beta_b = (n_b + k_b) / (lambda_b + k_b) for every bin (docs/likelihood.md section 4).
  const Eigen::VectorXd beta = lik.ProfiledBeta(x);
  const Eigen::VectorXd lam = lik.ExpectedYields(x, false);
  for (Eigen::Index b = 0; b < model.nbins; ++b) {
    const double k = lik.bb_kstat()[b];
    CHECK(beta[b] == doctest::Approx((model.data_obs[b] + k) / (lam[b] + k)).epsilon(1e-12));
  }
}

TEST_CASE("partly scaled bins: beta solves the quadratic and minimises the bin NLL") {
  SyntheticSpec spec;
  spec.nbins = 6;
  spec.nproc = 3;
  spec.nsyst = 2;
  spec.seed = 21;
  Model model = MakeSyntheticModel(spec);
  Likelihood lik(model);
  const Eigen::VectorXd x = lik.InitialParams();
  const Eigen::VectorXd beta = lik.ProfiledBeta(x);
  const Eigen::MatrixXd lp = lik.ExpectedYieldsPerProcess(x);
  for (Eigen::Index b = 0; b < model.nbins; ++b) {
    const double lv = lp(b, 0) + lp(b, 1), lu = lp(b, 2), n = model.data_obs[b],
                 k = lik.bb_kstat()[b];
    REQUIRE(k > 0);
    auto bin_nll = [&](double bt) {
      const double L = bt * lv + lu;
      return L - n * std::log(L) + k * (bt - std::log(bt));
    };
    const double bt = beta[b];
    CHECK(bin_nll(bt) <= bin_nll(bt * (1 + 1e-6)));
    CHECK(bin_nll(bt) <= bin_nll(bt * (1 - 1e-6)));
  }
}

TEST_CASE("results are bitwise identical at 1 and 2 threads") {
  SyntheticSpec spec;
  spec.nbins = 300;
  spec.nproc = 4;
  spec.nsyst = 40;
  spec.asymmetric = true;
  spec.seed = 5;
  Model model = MakeSyntheticModel(spec);
  LikelihoodOptions o1, o2;
  o1.num_threads = 1;
  o2.num_threads = 2;
  Likelihood l1(model, o1), l2(model, o2);
  const Eigen::VectorXd x = RandomPoint(l1, 1);
  Eigen::VectorXd g1, g2;
  Eigen::MatrixXd h1, h2;
  const double f1 = l1.ValueGradientHessian(x, &g1, &h1);
  const double f2 = l2.ValueGradientHessian(x, &g2, &h2);
  CHECK(f1 == f2);
  CHECK((g1 - g2).cwiseAbs().maxCoeff() == 0.0);
  CHECK((h1 - h2).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("saturated offset: NLL is zero when the expectation equals the data") {
  SyntheticSpec spec;
  spec.nbins = 8;
  spec.nsyst = 3;
  spec.mc_stat = false;
  spec.seed = 2;
  Model model = MakeSyntheticModel(spec);
  LikelihoodOptions opt;
  opt.bin_by_bin_stat = false;
  Likelihood lik(model, opt);
  const Eigen::VectorXd x0 = lik.InitialParams();
  lik.SetData(lik.ExpectedYields(x0, false).head(model.nbins));
  CHECK(std::abs(lik.Value(x0)) < 1e-10);
  Eigen::VectorXd g;
  lik.ValueAndGradient(x0, &g);
  CHECK(g.cwiseAbs().maxCoeff() < 1e-9);
}

TEST_CASE("asymmetric interpolation reproduces the up and down templates at theta = +-1") {
  // One bin, one process, one asymmetric systematic: up = 1.3 x nominal, down = 0.9 x nominal.
  Model m;
  m.processes = {"sig"};
  m.num_signals = 0;
  m.systematics = {"s"};
  m.constraint_weights = {1.0};
  m.nbins = m.nbins_full = 1;
  m.asymmetric = true;
  m.data_obs = Eigen::VectorXd::Constant(1, 50.0);
  m.sumw2 = Eigen::MatrixXd::Zero(1, 1);
  const double ku = std::log(1.3), kd = -std::log(0.9);
  m.tensor = lepus::engine::Tensor::FromDense(1, 1, 1, {40.0}, {(ku + kd) / 2}, {(ku - kd) / 2});
  Likelihood lik(m);
  Eigen::VectorXd x(1);
  x[0] = 1.0;
  CHECK(lik.ExpectedYields(x, false)[0] == doctest::Approx(52.0).epsilon(1e-14));
  x[0] = -1.0;
  CHECK(lik.ExpectedYields(x, false)[0] == doctest::Approx(36.0).epsilon(1e-14));
  x[0] = 0.0;
  CHECK(lik.ExpectedYields(x, false)[0] == doctest::Approx(40.0).epsilon(1e-14));
}

TEST_CASE("invalid options and data are rejected with a message naming the field") {
  SyntheticSpec spec;
  Model model = MakeSyntheticModel(spec);
  LikelihoodOptions bad;
  bad.num_threads = -1;
  std::string err;
  CHECK_FALSE(bad.IsValid(&err));
  CHECK(err.find("num_threads") != std::string::npos);
  CHECK(LikelihoodOptions{}.IsValid(&err));
  CHECK_THROWS_WITH_AS(Likelihood(model, bad), doctest::Contains("num_threads"),
                       std::invalid_argument);
  Likelihood lik(model);
  Eigen::VectorXd d = model.data_obs;
  d[2] = -1;
  CHECK_THROWS_WITH_AS(lik.SetData(d), doctest::Contains("data[2]"), std::invalid_argument);
  CHECK_THROWS_AS(lik.SetData(Eigen::VectorXd::Zero(3)), std::invalid_argument);
}

TEST_CASE("mixed derivatives with respect to the data and beta0 match finite differences") {
  for (bool asym : {false, true}) {
    SyntheticSpec spec;
    spec.nbins = 8;
    spec.nmasked = 2;
    spec.nproc = 3;
    spec.nsyst = 5;
    spec.nfree = 1;
    spec.asymmetric = asym;
    spec.seed = 31;
    Model model = MakeSyntheticModel(spec);
    model.sumw2(1, 2) = 3.0;                      // bin 1: every process scaled (closed-form beta)
    model.sumw2(2, 0) = model.sumw2(2, 1) = 0.0;  // bin 2: no beta at all
    Likelihood lik(model);
    const Eigen::VectorXd x = RandomPoint(lik, 77);
    Eigen::MatrixXd dn, db;
    lik.GlobalObservableDerivatives(x, &dn, &db);
    const int n = lik.num_params();
    const double h = 1e-5;
    for (int b = 0; b < model.nbins; ++b) {
      CAPTURE(b);
      Eigen::VectorXd gp, gm, d = model.data_obs;
      Likelihood& l = lik;
      d[b] += h;
      l.SetData(d);
      l.ValueAndGradient(x, &gp);
      d[b] -= 2 * h;
      l.SetData(d);
      l.ValueAndGradient(x, &gm);
      l.SetData(model.data_obs);
      const Eigen::VectorXd fd_n = (gp - gm) / (2 * h);
      Eigen::VectorXd b0 = Eigen::VectorXd::Ones(model.nbins);
      b0[b] += h;
      l.SetGlobalObservables(Eigen::VectorXd::Zero(model.num_systematics()), b0);
      l.ValueAndGradient(x, &gp);
      b0[b] -= 2 * h;
      l.SetGlobalObservables(Eigen::VectorXd::Zero(model.num_systematics()), b0);
      l.ValueAndGradient(x, &gm);
      l.SetGlobalObservables(Eigen::VectorXd::Zero(model.num_systematics()),
                             Eigen::VectorXd::Ones(model.nbins));
      const Eigen::VectorXd fd_b = (gp - gm) / (2 * h);
      for (int i = 0; i < n; ++i) {
        CHECK(std::abs(dn(i, b) - fd_n[i]) <=
              1e-6 * (std::abs(fd_n[i]) + dn.col(b).cwiseAbs().maxCoeff()) + 1e-10);
        CHECK(std::abs(db(i, b) - fd_b[i]) <=
              1e-6 * (std::abs(fd_b[i]) + db.col(b).cwiseAbs().maxCoeff() + 1.0) + 1e-9);
      }
    }
    CHECK(db.col(2).cwiseAbs().maxCoeff() == 0.0);
  }
}

TEST_CASE(
    "the Hessian with beta held fixed matches finite differences of the fixed-beta gradient") {
  SyntheticSpec spec;
  spec.nbins = 10;
  spec.nproc = 3;
  spec.nsyst = 6;
  spec.asymmetric = true;
  spec.seed = 41;
  Likelihood lik(MakeSyntheticModel(spec));
  const Eigen::VectorXd x = RandomPoint(lik, 3);
  const Eigen::VectorXd beta = lik.ProfiledBeta(x);
  Eigen::VectorXd g, gp, gm;
  Eigen::MatrixXd h, tmp;
  lik.ValueGradientHessianFixedBeta(x, beta, &g, &h);
  // The gradient at the profiled beta equals the profiled gradient (envelope theorem).
  Eigen::VectorXd gprof;
  lik.ValueAndGradient(x, &gprof);
  CHECK(lepus::test::MaxRelDiff(g, gprof, 1e-8) < 1e-10);
  const double step = 1e-5;
  for (int j = 0; j < lik.num_params(); ++j) {
    Eigen::VectorXd xp = x, xm = x;
    xp[j] += step;
    xm[j] -= step;
    lik.ValueGradientHessianFixedBeta(xp, beta, &gp, &tmp);
    lik.ValueGradientHessianFixedBeta(xm, beta, &gm, &tmp);
    const Eigen::VectorXd col = (gp - gm) / (2 * step);
    for (int i = 0; i < lik.num_params(); ++i)
      CHECK(std::abs(h(i, j) - col[i]) <=
            1e-6 * (std::abs(h(i, j)) + 1e-3 * std::sqrt(std::abs(h(i, i) * h(j, j)))));
  }
  // Profiling beta can only lower the curvature: H_fixed - H_profiled is positive semi-definite.
  Eigen::MatrixXd hp;
  lik.ValueGradientHessian(x, &gprof, &hp);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(h - hp);
  CHECK(es.eigenvalues().minCoeff() > -1e-9 * h.cwiseAbs().maxCoeff());
}

TEST_CASE("matrix-free Hessian-vector products and diagonal equal the dense Hessian") {
  int combos = 0;
  for (double density : {1.0, 0.15}) {
    for (bool asym : {false, true}) {
      for (auto type : {SystematicType::kLogNormal, SystematicType::kNormal}) {
        for (bool bb : {true, false}) {
          SyntheticSpec spec;
          spec.nbins = 12;
          spec.nmasked = 2;
          spec.nproc = 4;
          spec.nsignal = 2;
          spec.nsyst = 20;
          spec.nfree = 2;
          spec.density = density;
          spec.asymmetric = asym;
          spec.type = type;
          spec.seed = 300 + combos;
          LikelihoodOptions opt;
          opt.bin_by_bin_stat = bb;
          opt.poi_positive = combos % 2 == 1;
          Likelihood lik(MakeSyntheticModel(spec), opt);
          const Eigen::VectorXd x = RandomPoint(lik, 900 + combos);
          Eigen::VectorXd g, hv, diag;
          Eigen::MatrixXd h;
          lik.ValueGradientHessian(x, &g, &h);
          std::mt19937_64 rng(combos);
          std::normal_distribution<double> gaus;
          Eigen::VectorXd v(lik.num_params());
          for (int i = 0; i < v.size(); ++i) v[i] = gaus(rng);
          lik.HessianVectorProduct(x, v, &hv);
          lik.HessianDiagonal(x, &diag);
          CAPTURE(combos);
          const Eigen::VectorXd ref = h * v;
          CHECK((hv - ref).cwiseAbs().maxCoeff() <= 1e-10 * (1.0 + ref.cwiseAbs().maxCoeff()));
          CHECK((diag - h.diagonal()).cwiseAbs().maxCoeff() <=
                1e-10 * (1.0 + h.diagonal().cwiseAbs().maxCoeff()));
          ++combos;
        }
      }
    }
  }
  CHECK(combos == 16);
}
