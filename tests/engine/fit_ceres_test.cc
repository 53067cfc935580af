// The Ceres fit method (engine/src/fit_ceres.cc): its least-squares residuals reproduce the NLL
// and its gradient exactly, the polished fit equals the dense fit, options and statuses.
#include <cmath>
#include <string>

#include <Eigen/Core>

#include <doctest/doctest.h>

#include "../../engine/src/fit_ceres.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/synthetic.h"

using namespace lepus::engine;
using lepus::engine::detail::CeresCostAndGradient;
using lepus::models::MakeCalibrationScaleModel;
using lepus::models::MakeSyntheticModel;
using lepus::models::SyntheticSpec;

namespace {

SyntheticSpec SmallSpec(std::uint64_t seed) {
  SyntheticSpec spec;
  spec.nbins = 40;
  spec.nmasked = 3;
  spec.nproc = 4;
  spec.nsignal = 2;
  spec.nsyst = 30;
  spec.nfree = 2;
  spec.nnoi = 2;
  spec.density = 0.4;  // sparse storage
  spec.seed = seed;
  return spec;
}

// Ceres (polished) against dense Newton: values within 1e-6 of the errors, NLL within 1e-8.
void CheckAgainstDense(const Likelihood& lik, FitMethod method,
                       const std::vector<bool>& frozen = {}) {
  FitOptions dense, ceres;
  dense.method = FitMethod::kDense;
  ceres.method = method;
  dense.frozen = frozen;
  ceres.frozen = frozen;
  const FitResult rd = Fit(lik, dense);
  const FitResult rc = Fit(lik, ceres);
  REQUIRE(rd.ok());
  INFO(rc.BriefReport());
  REQUIRE(rc.ok());
  CHECK(rc.method == method);
  CHECK(rc.message.find("ceres") != std::string::npos);
  CHECK(std::abs(rc.nll - rd.nll) <= 1e-8);
  CHECK(rc.edm < 1e-8);
  CHECK(rc.covariance_status == CovarianceStatus::kAccurate);  // dense polish below the threshold
  for (int i = 0; i < lik.num_params(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(rc.values[i] - rd.values[i]) <= 1e-6 * std::max(rd.errors[i], 1e-12) + 1e-12);
    CHECK(rc.errors[i] == doctest::Approx(rd.errors[i]).epsilon(1e-8));
  }
}

}  // namespace

TEST_CASE("ceres residuals: 1/2 |r|^2 is the NLL and J^T r its gradient") {
  struct Case {
    const char* name;
    bool bb, asym, poi_positive, normal, mc_last;
  };
  for (const Case& c : {Case{"plain", false, false, false, false, true},
                        Case{"bb", true, false, false, false, true},
                        Case{"bb partly scaled + asym", true, true, false, false, true},
                        Case{"poi positive", true, false, true, false, true},
                        Case{"normal systematics", true, false, false, true, true},
                        Case{"bb all scaled", true, false, false, false, false}}) {
    CAPTURE(c.name);
    SyntheticSpec spec = SmallSpec(11);
    spec.asymmetric = c.asym;
    spec.mc_stat = true;  // all but the last process scaled (partly scaled bins)
    if (c.normal) spec.type = SystematicType::kNormal;
    LikelihoodOptions lo;
    lo.bin_by_bin_stat = c.bb;
    lo.poi_positive = c.poi_positive;
    Likelihood lik(MakeSyntheticModel(spec), lo);
    if (!c.mc_last) {
      // Every process with MC statistics: give the last one sumw2 too.
      Model m = lik.model();
      for (int b = 0; b < m.nbins_full; ++b)
        m.sumw2(b, m.num_processes() - 1) = 0.1 * m.sumw(b, m.num_processes() - 1);
      lik = Likelihood(std::move(m), lo);
    }
    Eigen::VectorXd x = lik.InitialParams();
    for (int i = 0; i < x.size(); ++i) x[i] += 0.05 * std::sin(1.7 * i + 0.3);
    for (const Eigen::VectorXd& at : {lik.InitialParams(), x}) {
      Eigen::VectorXd grad, jtr;
      const double f = lik.ValueAndGradient(at, &grad);
      const double cost = CeresCostAndGradient(lik, at, &jtr);
      CHECK(cost == doctest::Approx(f).epsilon(1e-12));
      for (int i = 0; i < lik.num_params(); ++i) {
        CAPTURE(i);
        CHECK(std::abs(jtr[i] - grad[i]) <= 1e-9 * (1.0 + std::abs(grad[i])));
      }
    }
    // Data set to the expectation: every bin residual is zero (the r = 0 branch).
    Likelihood asimov = lik.Clone(1);
    asimov.SetData(AsimovData(lik, lik.InitialParams()));
    Eigen::VectorXd grad, jtr;
    const double f = asimov.ValueAndGradient(lik.InitialParams(), &grad);
    const double cost = CeresCostAndGradient(asimov, lik.InitialParams(), &jtr);
    CHECK(cost == doctest::Approx(f).epsilon(1e-12));
    CHECK(jtr.cwiseAbs().maxCoeff() <= 1e-9);
  }
}

TEST_CASE("ceres: bins that no parameter touches are constant terms") {
  SyntheticSpec spec;
  spec.nbins = 30;
  spec.nproc = 2;
  spec.nsignal = 0;
  spec.nsyst = 3;
  spec.density = 0.15;
  spec.seed = 9;
  Likelihood lik(MakeSyntheticModel(spec));
  int untouched = 0;  // bins without any logk entry (no POI: no signal)
  for (std::int64_t b = 0, r = 0; b < lik.model().nbins; ++b) {
    std::int64_t entries = 0;
    for (; r < lik.model().tensor.num_rows() && lik.model().tensor.row_bin[r] == b; ++r)
      entries += lik.model().tensor.row_start[r + 1] - lik.model().tensor.row_start[r];
    if (entries == 0) ++untouched;
  }
  REQUIRE(untouched > 0);
  Eigen::VectorXd grad, jtr;
  const Eigen::VectorXd x = Eigen::VectorXd::Constant(lik.num_params(), 0.3);
  CHECK(CeresCostAndGradient(lik, x, &jtr) ==
        doctest::Approx(lik.ValueAndGradient(x, &grad)).epsilon(1e-12));
  CHECK((jtr - grad).cwiseAbs().maxCoeff() <= 1e-9 * (1.0 + grad.cwiseAbs().maxCoeff()));
  CheckAgainstDense(lik, FitMethod::kCeres);
}

TEST_CASE("ceres fit equals the dense fit: LM and dogleg, with and without BB") {
  for (bool bb : {true, false}) {
    for (FitMethod method : {FitMethod::kCeres, FitMethod::kCeresDogleg}) {
      CAPTURE(bb);
      CAPTURE(ToString(method));
      LikelihoodOptions lo;
      lo.bin_by_bin_stat = bb;
      Likelihood lik(MakeSyntheticModel(SmallSpec(5)), lo);
      CheckAgainstDense(lik, method);
    }
  }
  SUBCASE("mu = x^2, a frozen nuisance, normal systematics") {
    for (auto type : {SystematicType::kLogNormal, SystematicType::kNormal}) {
      SyntheticSpec spec = SmallSpec(8);
      spec.type = type;
      LikelihoodOptions lo;
      lo.poi_positive = true;
      Likelihood lik(MakeSyntheticModel(spec), lo);
      std::vector<bool> frozen(lik.num_params(), false);
      frozen[6] = true;
      CheckAgainstDense(lik, FitMethod::kCeres, frozen);
    }
  }
}

// Asymmetric systematics make the NLL non-convex. Gauss-Newton (J^T J is positive semi-definite)
// does not see negative curvature, so Ceres can end in a different local minimum than the exact
// Newton methods (seed 8: NLL 11.8156 against 11.7692). What is guaranteed is a true local
// minimum: the polish converges (EDM below tolerance) with a positive-definite exact Hessian.
// docs/numerics.md, "Ceres", states this limitation.
TEST_CASE("ceres fit on an asymmetric model ends in a true local minimum") {
  SyntheticSpec spec = SmallSpec(8);
  spec.asymmetric = true;
  Likelihood lik(MakeSyntheticModel(spec));
  FitOptions dense, ceres;
  dense.method = FitMethod::kDense;
  ceres.method = FitMethod::kCeres;
  const FitResult rd = Fit(lik, dense), rc = Fit(lik, ceres);
  REQUIRE(rd.ok());
  INFO(rc.BriefReport());
  REQUIRE(rc.ok());
  CHECK(rc.edm < 1e-8);
  CHECK(rc.hessian_positive_definite);
  CHECK(rc.nll >= rd.nll - 1e-8);  // never below the Newton minimum here
  // Started at the Newton minimum, Ceres stays there.
  ceres.initial_params = rd.x;
  const FitResult rs = Fit(lik, ceres);
  REQUIRE(rs.ok());
  CHECK(std::abs(rs.nll - rd.nll) <= 1e-8);
  for (int i = 0; i < lik.num_params(); ++i)
    CHECK(std::abs(rs.values[i] - rd.values[i]) <= 1e-6 * std::max(rd.errors[i], 1e-12) + 1e-12);
}

TEST_CASE("ceres fit on a calibration-scale-like model equals the matrix-free fit") {
  lepus::models::CalibrationScaleSpec spec;
  spec.nregions = 30;
  spec.bins_per_region = 16;
  spec.local_per_region = 12;
  spec.local_per_bin = 4;
  spec.partner_per_bin = 2;
  Likelihood lik(MakeCalibrationScaleModel(spec));
  FitOptions mf, ce;
  mf.method = FitMethod::kMatrixFree;
  ce.method = FitMethod::kCeres;
  ce.matrix_free_threshold = 100;  // matrix-free polish (covariance rows of the POI)
  const FitResult rm = Fit(lik, mf), rc = Fit(lik, ce);
  REQUIRE(rm.ok());
  INFO(rc.BriefReport());
  REQUIRE(rc.ok());
  CHECK(rc.covariance_status == CovarianceStatus::kTargetsOnly);
  CHECK(rc.covariance_row_params == rm.covariance_row_params);
  CHECK(std::abs(rc.nll - rm.nll) <= 1e-8);
  CHECK(std::abs(rc.values[0] - rm.values[0]) <= 1e-6 * rm.errors[0]);
  CHECK(rc.errors[0] == doctest::Approx(rm.errors[0]).epsilon(1e-7));
  CHECK((rc.x - rm.x).cwiseAbs().maxCoeff() <= 1e-5);  // every theta (prior width 1)
}

TEST_CASE("ceres method: names, bad options, non-convergence") {
  CHECK(FitMethodFromString("ceres") == FitMethod::kCeres);
  CHECK(FitMethodFromString("ceres_dogleg") == FitMethod::kCeresDogleg);
  CHECK(ToString(FitMethod::kCeres) == "ceres");
  CHECK(ToString(FitMethod::kCeresDogleg) == "ceres_dogleg");
  CHECK_THROWS_WITH_AS(
      FitMethodFromString("ceres_bfgs"),
      doctest::Contains("but must be auto, dense, matrix_free, ceres or ceres_dogleg"),
      std::invalid_argument);

  Likelihood lik(MakeSyntheticModel(SmallSpec(3)));
  FitOptions bad;
  bad.method = FitMethod::kCeres;
  bad.max_iterations = 0;
  CHECK_THROWS_WITH_AS(Fit(lik, bad), doctest::Contains("max_iterations"), std::invalid_argument);
  bad.max_iterations = 10;
  bad.initial_params = Eigen::VectorXd::Zero(3);
  CHECK_THROWS_WITH_AS(Fit(lik, bad), doctest::Contains("initial_params"), std::invalid_argument);
  bad.initial_params.resize(0);
  bad.frozen.assign(2, false);
  CHECK_THROWS_WITH_AS(Fit(lik, bad), doctest::Contains("frozen"), std::invalid_argument);

  // One iteration from far away: Ceres stops without convergence, reported as a status.
  FitOptions one;
  one.method = FitMethod::kCeresDogleg;
  one.max_iterations = 1;
  one.initial_params = lik.InitialParams();
  for (int i = 0; i < one.initial_params.size(); ++i) one.initial_params[i] += (i % 2 ? 2.0 : -2.0);
  const FitResult r = Fit(lik, one);
  CHECK(r.status == FitStatus::kNotConverged);
  CHECK_FALSE(r.ok());
  CHECK(r.message.find("NO_CONVERGENCE") != std::string::npos);
  CHECK(r.covariance_status == CovarianceStatus::kNotComputed);
  CHECK(std::isfinite(r.nll));
  CHECK(r.iterations >= 1);

  // A non-positive expected yield at the start (normal systematics pushed far): failure status.
  SyntheticSpec ns = SmallSpec(4);
  ns.type = SystematicType::kNormal;
  Likelihood nlik(MakeSyntheticModel(ns));
  FitOptions neg;
  neg.method = FitMethod::kCeres;
  neg.initial_params = nlik.InitialParams();
  neg.initial_params[0] = -5.0;  // signal strength -5: negative yields in signal bins
  const FitResult rn = Fit(nlik, neg);
  CHECK_FALSE(rn.ok());
}
