// The likelihood variants of rabbit (docs/numerics.md "Likelihood variants"): chi-square and
// covariance data terms, the three Barlow-Beeston types and external terms. Finite-difference
// checks of every derivative, known-answer identities between the variants, and the profiled
// beta as the minimum of the unprofiled NLL.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include "derivative_check.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/synthetic.h"
#include "test_support.h"

using lepus::engine::BinByBinStatMode;
using lepus::engine::BinByBinStatType;
using lepus::engine::DataTerm;
using lepus::engine::ExternalTerm;
using lepus::engine::Likelihood;
using lepus::engine::LikelihoodOptions;
using lepus::engine::Model;
using lepus::engine::SystematicType;
using lepus::models::MakeSyntheticModel;
using lepus::models::SyntheticSpec;

namespace {

Eigen::VectorXd RandomPoint(const Likelihood& lik, std::uint64_t seed) {
  return lepus::test::RandomPoint(lik, seed, 1.2);
}

Model BaseModel(bool asym, SystematicType type, std::uint64_t seed) {
  SyntheticSpec spec;
  spec.nbins = 12;
  spec.nmasked = 2;
  spec.nproc = 4;
  spec.nsignal = 2;
  spec.nsyst = 20;
  spec.nfree = 2;
  spec.nnoi = 1;
  spec.density = 0.5;
  spec.asymmetric = asym;
  spec.type = type;
  spec.seed = seed;
  Model m = MakeSyntheticModel(spec);
  for (Eigen::Index b = 0; b < m.nbins; ++b)
    m.data_obs[b] = std::max(m.data_obs[b], 3.0);  // chi-square: n > 0
  m.sumw2(1, 0) = 0.0;  // a process without MC variance in a bin: partly scaled
  m.sumw2(2, 0) = m.sumw2(2, 1) = m.sumw2(2, 2) = m.sumw2(2, 3) = 0.0;  // a bin without beta
  return m;
}

// A random symmetric positive-definite inverse data covariance: W = (A A^T / n + diag(n_b))^-1.
Eigen::MatrixXd RandomInverseCovariance(const Model& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  const auto n = m.nbins;
  Eigen::MatrixXd a(n, n);
  for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = g(rng) * 2.0;
  Eigen::MatrixXd c = a * a.transpose() / static_cast<double>(n);
  c.diagonal() += m.data_obs;
  return c.llt().solve(Eigen::MatrixXd::Identity(n, n));
}

void AddExternalTerms(Model* m) {
  ExternalTerm dense;
  dense.name = "prior";
  dense.params = {0, m->num_signals + 3, m->num_signals + 5};
  dense.grad = Eigen::Vector3d(0.3, -0.2, 0.1);
  Eigen::MatrixXd h(3, 3);
  h << 2.0, 0.4, 0.1, 0.2, 1.5, -0.3, 0.1, -0.3, 1.0;  // not symmetric: used as (H + H^T) / 2
  dense.hess = h.sparseView();
  m->external_terms.push_back(dense);
  ExternalTerm grad_only;
  grad_only.name = "slope";
  grad_only.params = {m->num_signals + 1};
  grad_only.grad = Eigen::VectorXd::Constant(1, 0.7);
  m->external_terms.push_back(grad_only);
}

// The coupled covariance Hessians are products (J^T W J) symmetric only to rounding.
void CheckDerivatives(const Likelihood& lik, const Eigen::VectorXd& x, const std::string& label) {
  lepus::test::CheckDerivatives(lik, x, label, 1e-12);
}

// rabbit's hbetavariations: per process [nbins_full x nbins], here in the masked bins only (as
// rabbit's writer allows) plus one fitted bin (the formula applies anywhere).
std::vector<Eigen::MatrixXd> RandomBetaVariations(const Model& m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  std::vector<Eigen::MatrixXd> out(m.num_processes(), Eigen::MatrixXd::Zero(m.nbins_full, m.nbins));
  for (auto& v : out) {
    for (Eigen::Index i = m.nbins; i < m.nbins_full; ++i)
      for (Eigen::Index j = 0; j < m.nbins; ++j) v(i, j) = u(rng);
    v(0, 3) = u(rng);
  }
  return out;
}

struct Variant {
  DataTerm term;
  BinByBinStatType bb;
  bool bbstat;
  bool full = false;  // Barlow-Beeston full mode (a beta per bin and process)
};

std::vector<Variant> AllVariants() {
  std::vector<Variant> out;
  for (DataTerm t : {DataTerm::kPoisson, DataTerm::kChisq})
    for (BinByBinStatType b : {BinByBinStatType::kGamma, BinByBinStatType::kNormalMultiplicative,
                               BinByBinStatType::kNormalAdditive})
      out.push_back({t, b, true});
  out.push_back({DataTerm::kChisq, BinByBinStatType::kAutomatic, false});
  out.push_back({DataTerm::kCovariance, BinByBinStatType::kNormalAdditive, true});
  out.push_back({DataTerm::kCovariance, BinByBinStatType::kNormalMultiplicative, true});
  out.push_back({DataTerm::kCovariance, BinByBinStatType::kAutomatic, false});
  for (DataTerm t : {DataTerm::kPoisson, DataTerm::kChisq})
    for (BinByBinStatType b : {BinByBinStatType::kGamma, BinByBinStatType::kNormalMultiplicative,
                               BinByBinStatType::kNormalAdditive})
      out.push_back({t, b, true, true});
  out.push_back({DataTerm::kCovariance, BinByBinStatType::kNormalAdditive, true, true});
  out.push_back({DataTerm::kCovariance, BinByBinStatType::kNormalMultiplicative, true, true});
  return out;
}

std::string Label(const Variant& v) {
  return lepus::engine::ToString(v.term) + "/" +
         (v.bbstat ? lepus::engine::ToString(v.bb) : "no-bb") + (v.full ? "/full" : "");
}

LikelihoodOptions Options(const Variant& v) {
  LikelihoodOptions o;
  o.data_term = v.term;
  o.bin_by_bin_stat_type = v.bb;
  o.bin_by_bin_stat = v.bbstat;
  o.bin_by_bin_stat_mode = v.full ? BinByBinStatMode::kFull : BinByBinStatMode::kLite;
  return o;
}

}  // namespace

TEST_CASE(
    "variants: gradient and Hessian match finite differences for every data term and beta type") {
  int combos = 0;
  for (const Variant& v : AllVariants())
    for (bool asym : {false, true})
      for (auto type : {SystematicType::kLogNormal, SystematicType::kNormal})
        for (bool ext : {false, true}) {
          Model m = BaseModel(asym, type, 11 + combos);
          if (v.term == DataTerm::kCovariance)
            m.data_cov_inv = RandomInverseCovariance(m, 5 + combos);
          if (ext) AddExternalTerms(&m);
          LikelihoodOptions o = Options(v);
          o.poi_positive = combos % 3 == 0;
          Likelihood lik(m, o);
          CheckDerivatives(lik, RandomPoint(lik, 200 + combos),
                           Label(v) + (asym ? " asym" : " sym") + " " +
                               lepus::engine::ToString(type) + (ext ? " +external" : ""));
          ++combos;
        }
  CHECK(combos == static_cast<int>(AllVariants().size()) * 8);
}

TEST_CASE(
    "variants: the profiled beta minimises the NLL and the gradient obeys the envelope theorem") {
  for (const Variant& v : AllVariants()) {
    if (!v.bbstat) continue;
    CAPTURE(Label(v));
    Model m = BaseModel(true, SystematicType::kLogNormal, 3);
    if (v.term == DataTerm::kCovariance) m.data_cov_inv = RandomInverseCovariance(m, 9);
    Likelihood lik(m, Options(v));
    const Eigen::VectorXd x = RandomPoint(lik, 17);
    const Eigen::VectorXd beta = lik.ProfiledBeta(x);
    Eigen::VectorXd g, gfixed;
    Eigen::MatrixXd h, hfixed;
    const double f = lik.ValueGradientHessian(x, &g, &h);
    const double ffixed = lik.ValueGradientHessianFixedBeta(x, beta, &gfixed, &hfixed);
    CHECK(ffixed == doctest::Approx(f).epsilon(1e-10));
    CHECK(lepus::test::MaxRelDiff(g, gfixed, 1e-8) < 1e-8);
    REQUIRE(beta.size() == lik.num_betas());
    CHECK(lik.num_betas() == (v.full ? m.nbins * m.num_processes() : m.nbins));
    // Moving any beta away from its profiled value raises the NLL.
    for (Eigen::Index b = 0; b < beta.size(); ++b) {
      for (double d : {-1e-3, 1e-3}) {
        Eigen::VectorXd moved = beta;
        moved[b] += d;
        Eigen::VectorXd gm;
        Eigen::MatrixXd hm;
        CHECK(lik.ValueGradientHessianFixedBeta(x, moved, &gm, &hm) >= f - 1e-12 * std::abs(f));
      }
    }
    // Profiling can only lower the curvature.
    const Eigen::MatrixXd d = hfixed - h;
    CHECK(Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(d).eigenvalues().minCoeff() >
          -1e-9 * h.cwiseAbs().maxCoeff());
  }
}

TEST_CASE(
    "variants: a diagonal covariance fit equals the chi-square fit (no, additive and "
    "multiplicative betas)") {
  for (int mode = 0; mode < 3; ++mode) {
    const bool bbstat = mode > 0;
    const BinByBinStatType type =
        mode == 2 ? BinByBinStatType::kNormalMultiplicative : BinByBinStatType::kNormalAdditive;
    CAPTURE(mode);
    Model m = BaseModel(false, SystematicType::kLogNormal, 23);
    Model mc = m;
    mc.data_cov_inv = m.data_obs.cwiseInverse().asDiagonal();
    LikelihoodOptions oc, od;
    oc.data_term = DataTerm::kCovariance;
    od.data_term = DataTerm::kChisq;
    oc.bin_by_bin_stat = od.bin_by_bin_stat = bbstat;
    od.bin_by_bin_stat_type = type;  // covariance: automatic = normal-additive
    oc.bin_by_bin_stat_type = mode == 2 ? type : BinByBinStatType::kAutomatic;
    Likelihood lc(mc, oc), ld(m, od);
    const Eigen::VectorXd x = RandomPoint(ld, 5);
    Eigen::VectorXd gc, gd;
    Eigen::MatrixXd hc, hd;
    CHECK(lc.ValueGradientHessian(x, &gc, &hc) ==
          doctest::Approx(ld.ValueGradientHessian(x, &gd, &hd)).epsilon(1e-11));
    CHECK(lepus::test::MaxRelDiff(gc, gd, 1e-9) < 1e-10);
    CHECK(lepus::test::MaxRelDiff(hc, hd, 1e-9) < 1e-10);
    CHECK(lepus::test::MaxRelDiff(lc.ProfiledBeta(x), ld.ProfiledBeta(x), 1e-12) < 1e-10);
    CHECK(lepus::test::MaxRelDiff(lc.ExpectedYields(x, true), ld.ExpectedYields(x, true), 1e-12) <
          1e-12);
    Eigen::MatrixXd dnc, dbc, dnd, dbd;
    lc.GlobalObservableDerivatives(x, &dnc, &dbc);
    ld.GlobalObservableDerivatives(x, &dnd, &dbd);
    CHECK(lepus::test::MaxRelDiff(dnc, dnd, 1e-9) < 1e-9);
    CHECK(lepus::test::MaxRelDiff(dbc, dbd, 1e-9) < 1e-9);
    // The same with the variance taken from data_var (weighted data).
    Model mv = m;
    mv.data_var = 1.7 * m.data_obs;
    LikelihoodOptions ov = od;
    ov.use_data_var = true;
    Likelihood lv(mv, ov);
    Model mcv = m;
    mcv.data_cov_inv = mv.data_var.cwiseInverse().asDiagonal();
    Likelihood lcv(mcv, oc);
    CHECK(lv.Value(x) == doctest::Approx(lcv.Value(x)).epsilon(1e-11));
    CHECK(lv.Value(x) != doctest::Approx(ld.Value(x)).epsilon(1e-3));
  }
}

TEST_CASE("variants: chi-square NLL, external terms and beta solutions against direct formulas") {
  Model m = BaseModel(false, SystematicType::kLogNormal, 29);
  LikelihoodOptions o;
  o.data_term = DataTerm::kChisq;
  o.bin_by_bin_stat = false;
  Likelihood lik(m, o);
  const Eigen::VectorXd x = RandomPoint(lik, 1);
  const Eigen::VectorXd lam = lik.ExpectedYields(x, false);
  double chi2 = 0.0;
  for (Eigen::Index b = 0; b < m.nbins; ++b)
    chi2 += 0.5 * std::pow(lam[b] - m.data_obs[b], 2) / m.data_obs[b];
  const Eigen::VectorXd theta = x.tail(m.num_systematics());
  for (int s = 0; s < m.num_systematics(); ++s)
    chi2 += 0.5 * m.constraint_weights[s] * theta[s] * theta[s];
  CHECK(lik.Value(x) == doctest::Approx(chi2).epsilon(1e-12));
  // External terms add g^T x_sub + x_sub^T H x_sub / 2 exactly.
  Model me = m;
  AddExternalTerms(&me);
  Likelihood le(me, o);
  double ext = 0.0;
  for (const ExternalTerm& t : me.external_terms) {
    Eigen::VectorXd xs(t.params.size());
    for (std::size_t i = 0; i < t.params.size(); ++i) xs[i] = x[t.params[i]];
    ext += t.grad.dot(xs);
    if (t.hess.size()) ext += 0.5 * xs.dot(Eigen::MatrixXd(t.hess) * xs);
  }
  CHECK(le.Value(x) == doctest::Approx(chi2 + ext).epsilon(1e-12));
  // Poisson + normal-additive beta: the positive root of s b^2 + (s^2 + N - s b0) b + s (N - n) - b0 N.
  LikelihoodOptions oa;
  oa.bin_by_bin_stat_type = BinByBinStatType::kNormalAdditive;
  Likelihood la(m, oa);
  const Eigen::VectorXd beta = la.ProfiledBeta(x);
  for (Eigen::Index b = 0; b < m.nbins; ++b) {
    const double s = std::sqrt(m.sumw2.row(b).sum()), N = lam[b], n = m.data_obs[b];
    if (s == 0) {
      CHECK(beta[b] == 0.0);
      continue;
    }
    const double r = s * beta[b] * beta[b] + (s * s + N) * beta[b] + s * (N - n);
    CHECK(std::abs(r) < 1e-9 * (s * s + N + n));
    CHECK(N + s * beta[b] > 0);
  }
}

TEST_CASE(
    "variants: yields with profiled betas: Jacobian by finite differences, processes sum to the "
    "total") {
  for (const Variant& v : AllVariants()) {
    if (!v.bbstat) continue;
    CAPTURE(Label(v));
    Model m = BaseModel(true, SystematicType::kLogNormal, 37);
    if (v.term == DataTerm::kCovariance) m.data_cov_inv = RandomInverseCovariance(m, 13);
    if (v.full) m.beta_variations = RandomBetaVariations(m, 7);
    Likelihood lik(m, Options(v));
    const Eigen::VectorXd x = RandomPoint(lik, 41);
    Eigen::VectorXd totals;
    const Eigen::MatrixXd jac = lik.TotalYieldJacobian(x, true, &totals);
    CHECK(lepus::test::MaxRelDiff(totals, lik.ExpectedYields(x, true), 1e-12) < 1e-12);
    // Richardson-extrapolated central differences (error O(step^4)): the rounding error of the
    // yields (~1e-16 |L| / step) and the truncation error both stay below 1e-8 of the largest
    // total.
    const double step = 1e-3;
    double worst = 0.0;
    for (int j = 0; j < lik.num_params(); ++j) {
      auto central = [&](double hh) {
        Eigen::VectorXd xp = x, xm = x;
        xp[j] += hh;
        xm[j] -= hh;
        return Eigen::VectorXd((lik.ExpectedYields(xp, true) - lik.ExpectedYields(xm, true)) /
                               (2 * hh));
      };
      const Eigen::VectorXd col = (4.0 * central(step / 2) - central(step)) / 3.0;
      worst = std::max(
          worst, lepus::test::MaxRelDiff(jac.col(j), col, 1e-6 * totals.cwiseAbs().maxCoeff()));
    }
    INFO("max rel error of the yield Jacobian " << worst);
    CHECK(worst < 1e-7);
    Eigen::MatrixXd values, errors;
    const Eigen::MatrixXd cov =
        Eigen::MatrixXd::Identity(lik.num_params(), lik.num_params()) * 0.01;
    lik.ProcessYields(x, cov, true, &values, &errors);
    CHECK(lepus::test::MaxRelDiff(values.rowwise().sum(), totals, 1e-12) < 1e-11);
    // The error of a bin with a single process equals the total's.
    const Eigen::VectorXd tvar = (jac * cov * jac.transpose()).diagonal();
    for (Eigen::Index b = 0; b < m.nbins_full; ++b) {
      int nonzero = 0;
      for (int p = 0; p < m.num_processes(); ++p) nonzero += values(b, p) != 0.0;
      if (nonzero == 1)
        CHECK(errors.row(b).sum() == doctest::Approx(std::sqrt(tvar[b])).epsilon(1e-9));
    }
  }
}

TEST_CASE(
    "variants: mixed derivatives with respect to the data and beta0 match finite differences") {
  for (const Variant& v : AllVariants()) {
    CAPTURE(Label(v));
    Model m = BaseModel(false, SystematicType::kLogNormal, 43);
    if (v.term == DataTerm::kCovariance) m.data_cov_inv = RandomInverseCovariance(m, 17);
    Likelihood lik(m, Options(v));
    const Eigen::VectorXd x = RandomPoint(lik, 47);
    Eigen::MatrixXd dn, db;
    lik.GlobalObservableDerivatives(x, &dn, &db);
    const Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(m.num_systematics());
    const Eigen::VectorXd beta0 = lik.beta0();
    const double h = 1e-5;
    REQUIRE(db.cols() == lik.num_betas());
    for (Eigen::Index b = 0; b < std::max<Eigen::Index>(m.nbins, lik.num_betas()); ++b) {
      CAPTURE(b);
      Eigen::VectorXd gp, gm;
      if (b < m.nbins) {
        // Keep the chi-square variance fixed: d/dn at fixed sigma^2 (the variance is a constant of
        // the fit, not a function of the data).
        Eigen::VectorXd d = m.data_obs;
        const Eigen::VectorXd var = lik.data_variance();
        auto set = [&](const Eigen::VectorXd& data) {
          if (v.term == DataTerm::kPoisson)
            lik.SetData(data);
          else
            lik.SetData(data, var);
        };
        d[b] += h;
        set(d);
        lik.ValueAndGradient(x, &gp);
        d[b] -= 2 * h;
        set(d);
        lik.ValueAndGradient(x, &gm);
        set(m.data_obs);
        const Eigen::VectorXd fd_n = (gp - gm) / (2 * h);
        for (int i = 0; i < lik.num_params(); ++i)
          CHECK(std::abs(dn(i, b) - fd_n[i]) <=
                1e-6 * (std::abs(fd_n[i]) + dn.col(b).cwiseAbs().maxCoeff()) + 1e-10);
      }
      if (b >= lik.num_betas()) continue;
      Eigen::VectorXd b0 = beta0;
      b0[b] += h;
      lik.SetGlobalObservables(theta0, b0);
      lik.ValueAndGradient(x, &gp);
      b0[b] -= 2 * h;
      lik.SetGlobalObservables(theta0, b0);
      lik.ValueAndGradient(x, &gm);
      lik.SetGlobalObservables(theta0, beta0);
      const Eigen::VectorXd fd_b = (gp - gm) / (2 * h);
      for (int i = 0; i < lik.num_params(); ++i)
        CHECK(std::abs(db(i, b) - fd_b[i]) <=
              1e-6 * (std::abs(fd_b[i]) + db.col(b).cwiseAbs().maxCoeff() + 1.0) + 1e-9);
    }
  }
}

TEST_CASE("variants: matrix-free products equal the dense Hessian; covariance fits refuse them") {
  for (const Variant& v : AllVariants()) {
    CAPTURE(Label(v));
    Model m = BaseModel(true, SystematicType::kLogNormal, 53);
    AddExternalTerms(&m);
    if (v.term == DataTerm::kCovariance) m.data_cov_inv = RandomInverseCovariance(m, 19);
    Likelihood lik(m, Options(v));
    const Eigen::VectorXd x = RandomPoint(lik, 59);
    const Eigen::VectorXd vec = RandomPoint(lik, 61);
    Eigen::VectorXd hv, diag, g;
    Eigen::MatrixXd h;
    lik.ValueGradientHessian(x, &g, &h);
    if (v.term == DataTerm::kCovariance) {
      CHECK_THROWS_WITH_AS(lik.HessianVectorProduct(x, vec, &hv), doctest::Contains("covariance"),
                           std::invalid_argument);
      continue;
    }
    lik.HessianVectorProduct(x, vec, &hv);
    lik.HessianDiagonal(x, &diag);
    CHECK(lepus::test::MaxRelDiff(hv, h * vec, 1e-9 * h.cwiseAbs().maxCoeff()) < 1e-10);
    CHECK(lepus::test::MaxRelDiff(diag, h.diagonal(), 1e-9 * h.cwiseAbs().maxCoeff()) < 1e-10);
  }
}

TEST_CASE("variants: invalid combinations and inputs are refused with a message") {
  Model m = BaseModel(false, SystematicType::kLogNormal, 67);
  LikelihoodOptions o;
  o.data_term = DataTerm::kCovariance;
  o.bin_by_bin_stat_type = BinByBinStatType::kGamma;
  m.data_cov_inv = RandomInverseCovariance(m, 3);
  CHECK_THROWS_WITH_AS(Likelihood(m, o), doctest::Contains("normal-additive"),
                       std::invalid_argument);
  Model bad = m;
  bad.data_cov_inv(0, 1) += 1.0;
  o.bin_by_bin_stat_type = BinByBinStatType::kAutomatic;
  CHECK_THROWS_WITH_AS(Likelihood(bad, o), doctest::Contains("not symmetric"),
                       std::invalid_argument);
  Model zero = m;
  zero.data_obs[4] = 0.0;
  zero.data_cov_inv.resize(0, 0);
  LikelihoodOptions oc;
  oc.data_term = DataTerm::kChisq;
  CHECK_THROWS_WITH_AS(Likelihood(zero, oc), doctest::Contains("bin 4"), std::invalid_argument);
  Likelihood chisq(m, oc);
  Eigen::VectorXd d = m.data_obs;
  d[3] = 0.0;
  CHECK_THROWS_WITH_AS(chisq.SetData(d), doctest::Contains("bin 3"), std::invalid_argument);
  Model ext = m;
  ExternalTerm t;
  t.name = "dup";
  t.params = {1, 1};
  ext.external_terms.push_back(t);
  std::string err;
  CHECK_FALSE(ext.IsValid(&err));
  CHECK(err.find("distinct") != std::string::npos);
  CHECK(lepus::engine::DataTermFromString("chisq") == DataTerm::kChisq);
  CHECK_THROWS_AS(lepus::engine::DataTermFromString("gauss"), std::invalid_argument);
  CHECK(lepus::engine::BinByBinStatTypeFromString("normal-additive") ==
        BinByBinStatType::kNormalAdditive);
  CHECK_THROWS_AS(lepus::engine::BinByBinStatTypeFromString("lite"), std::invalid_argument);
  CHECK(lepus::engine::BinByBinStatModeFromString("full") == BinByBinStatMode::kFull);
  CHECK_THROWS_WITH_AS(lepus::engine::BinByBinStatModeFromString("gamma"),
                       doctest::Contains("lite or full"), std::invalid_argument);
  // Full mode: a covariance fit without gamma betas (as lite); beta vectors of nbins x nproc entries.
  LikelihoodOptions of;
  of.bin_by_bin_stat_mode = BinByBinStatMode::kFull;
  of.data_term = DataTerm::kCovariance;
  of.bin_by_bin_stat_type = BinByBinStatType::kGamma;
  CHECK_THROWS_WITH_AS(Likelihood(m, of), doctest::Contains("normal-additive"),
                       std::invalid_argument);
  of.bin_by_bin_stat_type = BinByBinStatType::kAutomatic;
  CHECK(Likelihood(m, of).bin_by_bin_stat_type() == BinByBinStatType::kNormalAdditive);
  of.data_term = DataTerm::kPoisson;
  Likelihood full(m, of);
  CHECK(full.bin_by_bin_stat_type() ==
        BinByBinStatType::kNormalMultiplicative);  // rabbit's automatic choice
  CHECK(full.Describe().find("Barlow-Beeston full (normal-multiplicative)") != std::string::npos);
  CHECK_THROWS_WITH_AS(full.SetGlobalObservables(Eigen::VectorXd::Zero(m.num_systematics()),
                                                 Eigen::VectorXd::Ones(m.nbins)),
                       doctest::Contains("nbins x nproc"), std::invalid_argument);
}

TEST_CASE("variants: fits converge and a chi-square fit of an Asimov data set returns the truth") {
  for (const Variant& v : AllVariants()) {
    CAPTURE(Label(v));
    Model m = BaseModel(false, SystematicType::kLogNormal, 71);
    if (v.term == DataTerm::kCovariance) m.data_cov_inv = RandomInverseCovariance(m, 23);
    Likelihood lik(m, Options(v));
    Eigen::VectorXd truth = lik.InitialParams();
    truth[0] = 1.3;
    if (v.term != DataTerm::kCovariance)
      lik.SetData(lepus::engine::AsimovData(lik, truth));
    else
      lik.SetData(lepus::engine::AsimovData(lik, truth), lik.data_variance());
    lepus::engine::FitOptions fo;
    fo.edm_tolerance = 1e-12;
    const auto r = lepus::engine::Fit(lik, fo);
    REQUIRE(r.ok());
    CHECK(r.values[0] == doctest::Approx(1.3).epsilon(1e-6));
    CHECK(r.values[1] == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(r.nll == doctest::Approx(0.0).epsilon(1e-9));
  }
}

TEST_CASE(
    "variants: global impacts close on Asimov data for every data term, with external terms as "
    "sources") {
  for (const Variant& v : AllVariants()) {
    CAPTURE(Label(v));
    Model m = BaseModel(false, SystematicType::kLogNormal, 79);
    AddExternalTerms(&m);
    if (v.term == DataTerm::kCovariance) m.data_cov_inv = RandomInverseCovariance(m, 29);
    Likelihood lik(m, Options(v));
    Eigen::VectorXd truth = lik.InitialParams();
    truth[0] = 1.2;
    // Asimov data at the truth; the external terms' minimum is moved there too (g = -H x_truth),
    // so that the truth is the exact minimum and every source enters at its centre.
    for (auto& t : m.external_terms) {
      Eigen::VectorXd xs(t.params.size());
      for (std::size_t i = 0; i < t.params.size(); ++i) xs[i] = truth[t.params[i]];
      const Eigen::MatrixXd h = Eigen::MatrixXd(
          t.hess.size() ? Eigen::MatrixXd(t.hess) : Eigen::MatrixXd::Zero(xs.size(), xs.size()));
      t.grad = -0.5 * (h + h.transpose()) * xs;
    }
    Likelihood lt(m, Options(v));
    const Eigen::VectorXd asimov = lepus::engine::AsimovData(lt, truth);
    if (v.term == DataTerm::kPoisson)
      lt.SetData(asimov);
    else
      lt.SetData(asimov, lt.data_variance());
    lepus::engine::FitOptions fo;
    fo.edm_tolerance = 1e-14;
    const auto r = lepus::engine::Fit(lt, fo);
    REQUIRE(r.ok());
    lepus::engine::ImpactOptions io;
    io.global = true;
    const auto im = lepus::engine::ComputeImpacts(lt, r, io);
    REQUIRE(im.has_global);
    REQUIRE(im.external_names.size() == 2);
    CHECK(im.global_external.col(0).norm() > 0);
    CHECK(im.global_external.col(1).norm() == 0.0);  // gradient only: no information
    for (Eigen::Index k = 0; k < im.global_closure.size(); ++k)
      CHECK(std::abs(im.global_closure[k]) < 1e-8);
  }
}

TEST_CASE("variants: Barlow-Beeston full mode against lite and against direct formulas") {
  // One process per bin: one beta per bin either way, so full equals lite (every type).
  Model single = BaseModel(false, SystematicType::kLogNormal, 83);
  for (std::int64_t r = 0; r < single.tensor.num_rows(); ++r)
    if (single.tensor.row_proc[r] != 0) single.tensor.norm[r] *= 1e-300;  // negligible yields
  for (Eigen::Index b = 0; b < single.nbins_full; ++b)
    for (int p = 1; p < single.num_processes(); ++p) single.sumw2(b, p) = 0.0;
  single.sumw2(1, 0) = single.sumw2(2, 0) = 0.0;
  single.data_cov_inv = RandomInverseCovariance(single, 31);
  for (DataTerm t : {DataTerm::kPoisson, DataTerm::kChisq, DataTerm::kCovariance})
    for (BinByBinStatType b : {BinByBinStatType::kGamma, BinByBinStatType::kNormalMultiplicative,
                               BinByBinStatType::kNormalAdditive}) {
      if (t == DataTerm::kCovariance && b == BinByBinStatType::kGamma)
        continue;  // refused (rabbit)
      CAPTURE(lepus::engine::ToString(t) + "/" + lepus::engine::ToString(b));
      LikelihoodOptions lite = Options({t, b, true}), full = Options({t, b, true, true});
      Likelihood ll(single, lite), lf(single, full);
      const Eigen::VectorXd x = RandomPoint(ll, 3);
      Eigen::VectorXd gl, gf;
      Eigen::MatrixXd hl, hf;
      CHECK(lf.ValueGradientHessian(x, &gf, &hf) ==
            doctest::Approx(ll.ValueGradientHessian(x, &gl, &hl)).epsilon(1e-12));
      CHECK(lepus::test::MaxRelDiff(gf, gl, 1e-9) < 1e-10);
      CHECK(lepus::test::MaxRelDiff(hf, hl, 1e-9) < 1e-10);
      const Eigen::VectorXd bl = ll.ProfiledBeta(x), bf = lf.ProfiledBeta(x);
      for (Eigen::Index bin = 0; bin < single.nbins; ++bin)
        if (ll.bb_kstat()[bin] > 0)
          CHECK(bf[bin * single.num_processes()] == doctest::Approx(bl[bin]).epsilon(1e-10));
    }
  // Several processes: the multiplicative types differ from lite; normal-additive full has the
  // same profiled NLL as lite (its betas only share sqrt(sum sumw2) differently).
  Model m = BaseModel(false, SystematicType::kLogNormal, 89);
  Model mc = m;
  mc.data_cov_inv = RandomInverseCovariance(m, 37);
  for (DataTerm t : {DataTerm::kPoisson, DataTerm::kCovariance})
    for (BinByBinStatType b : {BinByBinStatType::kGamma, BinByBinStatType::kNormalMultiplicative,
                               BinByBinStatType::kNormalAdditive}) {
      if (t == DataTerm::kCovariance && b == BinByBinStatType::kGamma) continue;
      CAPTURE(lepus::engine::ToString(t) + "/" + lepus::engine::ToString(b));
      const Model& mm = t == DataTerm::kCovariance ? mc : m;
      Likelihood ll(mm, Options({t, b, true})), lf(mm, Options({t, b, true, true}));
      const Eigen::VectorXd x = RandomPoint(ll, 5);
      if (b == BinByBinStatType::kNormalAdditive) {
        Eigen::VectorXd gl, gf;
        Eigen::MatrixXd hl, hf;
        CHECK(lf.ValueGradientHessian(x, &gf, &hf) ==
              doctest::Approx(ll.ValueGradientHessian(x, &gl, &hl)).epsilon(1e-11));
        CHECK(lepus::test::MaxRelDiff(gf, gl, 1e-9) < 1e-9);
        CHECK(lepus::test::MaxRelDiff(hf, hl, 1e-9) < 1e-9);
        CHECK(lepus::test::MaxRelDiff(lf.ExpectedYields(x, true), ll.ExpectedYields(x, true),
                                      1e-12) < 1e-10);
      } else {
        CHECK(std::abs(lf.Value(x) - ll.Value(x)) > 1e-6 * std::abs(ll.Value(x)));
      }
    }
  // Covariance, normal-multiplicative (rabbit's solution): the bin totals at the profiled betas
  // solve (I + diag(Q) W) (L - n) = A - n, beta_p = beta0_p - (lambda_p / k_p) (W (L - n))_b.
  {
    Likelihood lc(
        mc, Options({DataTerm::kCovariance, BinByBinStatType::kNormalMultiplicative, true, true}));
    const Eigen::VectorXd x = RandomPoint(lc, 9);
    const Eigen::MatrixXd lam = lc.ExpectedYieldsPerProcess(x);
    const int np = mc.num_processes();
    Eigen::VectorXd A = Eigen::VectorXd::Zero(mc.nbins), Q = A;
    for (Eigen::Index b = 0; b < mc.nbins; ++b)
      for (int p = 0; p < np; ++p) {
        A[b] += lam(b, p);
        const double k = lc.bb_kstat()[b * np + p];
        if (k > 0) Q[b] += lam(b, p) * lam(b, p) / k;
      }
    Eigen::MatrixXd M = Q.asDiagonal() * mc.data_cov_inv;
    M.diagonal().array() += 1.0;
    const Eigen::VectorXd r = M.lu().solve(A - mc.data_obs);
    const Eigen::VectorXd u = mc.data_cov_inv * r;
    const Eigen::VectorXd beta = lc.ProfiledBeta(x);
    double nll = 0.5 * r.dot(u);
    for (Eigen::Index b = 0; b < mc.nbins; ++b)
      for (int p = 0; p < np; ++p) {
        const double k = lc.bb_kstat()[b * np + p];
        const double bp = k > 0 ? 1.0 - lam(b, p) / k * u[b] : 1.0;
        CHECK(beta[b * np + p] == doctest::Approx(bp).epsilon(1e-10));
        if (k > 0) nll += 0.5 * k * (bp - 1.0) * (bp - 1.0);
      }
    CHECK(lepus::test::MaxRelDiff(lc.ExpectedYields(x, true).head(mc.nbins), r + mc.data_obs,
                                  1e-12) < 1e-10);
    const Eigen::VectorXd theta = x.tail(mc.num_systematics());
    for (int s = 0; s < mc.num_systematics(); ++s)
      nll += 0.5 * mc.constraint_weights[s] * theta[s] * theta[s];
    CHECK(lc.Value(x) == doctest::Approx(nll).epsilon(1e-12));
  }
  // Poisson, normal-multiplicative (rabbit's closed form): L solves L^2 - (A - Q) L - Q n = 0 with
  // A = sum beta0 lambda, Q = sum lambda^2 / k; beta_p = beta0_p + (n / L - 1) lambda_p / k_p.
  Likelihood lf(m,
                Options({DataTerm::kPoisson, BinByBinStatType::kNormalMultiplicative, true, true}));
  const Eigen::VectorXd x = RandomPoint(lf, 7);
  const Eigen::MatrixXd lam = lf.ExpectedYieldsPerProcess(x);
  const Eigen::VectorXd beta = lf.ProfiledBeta(x);
  const int np = m.num_processes();
  double nll = 0.0;
  for (Eigen::Index b = 0; b < m.nbins; ++b) {
    double A = 0.0, Q = 0.0;
    for (int p = 0; p < np; ++p) {
      const double k = lf.bb_kstat()[b * np + p];
      A += lam(b, p);
      if (k > 0) Q += lam(b, p) * lam(b, p) / k;
    }
    const double n = m.data_obs[b];
    const double L = 0.5 * ((A - Q) + std::sqrt((A - Q) * (A - Q) + 4 * Q * n));
    double total = 0.0;
    for (int p = 0; p < np; ++p) {
      const double k = lf.bb_kstat()[b * np + p];
      const double bp = k > 0 ? 1.0 + (n / L - 1.0) * lam(b, p) / k : 1.0;
      CHECK(beta[b * np + p] == doctest::Approx(bp).epsilon(1e-10));
      total += bp * lam(b, p);
      if (k > 0) nll += 0.5 * k * (bp - 1.0) * (bp - 1.0);
    }
    CHECK(total == doctest::Approx(L).epsilon(1e-12));
    nll += L - n + n * std::log(n / L);
  }
  const Eigen::VectorXd theta = x.tail(m.num_systematics());
  for (int s = 0; s < m.num_systematics(); ++s)
    nll += 0.5 * m.constraint_weights[s] * theta[s] * theta[s];
  CHECK(lf.Value(x) == doctest::Approx(nll).epsilon(1e-12));
  // Beta variations: y_ip = lambda_ip (1 + sum_j V_p(i, j) sqrt(k_jp) (beta_jp - 1) / norm_ip) in
  // every bin (times beta_ip in the fitted bins).
  Model mv = m;
  mv.beta_variations = RandomBetaVariations(m, 11);
  Likelihood lv(mv,
                Options({DataTerm::kPoisson, BinByBinStatType::kNormalMultiplicative, true, true}));
  const Eigen::VectorXd yields = lv.ExpectedYields(x, true);
  const Eigen::MatrixXd nominal = mv.DenseNorm();
  for (Eigen::Index i = 0; i < mv.nbins_full; ++i) {
    double expect = 0.0;
    for (int p = 0; p < np; ++p) {
      double ratio = 0.0;
      for (Eigen::Index j = 0; j < mv.nbins; ++j) {
        const double k = lv.bb_kstat()[j * np + p];
        if (k > 0) ratio += mv.beta_variations[p](i, j) * std::sqrt(k) * (beta[j * np + p] - 1.0);
      }
      const double scale = i < mv.nbins ? beta[i * np + p] : 1.0;
      expect +=
          nominal(i, p) > 0 ? scale * lam(i, p) * (1.0 + ratio / nominal(i, p)) : scale * lam(i, p);
    }
    CHECK(yields[i] == doctest::Approx(expect).epsilon(1e-12));
  }
  // ... and only yields: the NLL is the one without them.
  CHECK(lv.Value(x) == doctest::Approx(lf.Value(x)).epsilon(1e-14));
}

TEST_CASE(
    "variants: post-fit spread of the betas g^T H_bb^-1 g against finite differences of the NLL in "
    "beta") {
  // H_bb by central second differences of the NLL at fixed betas (fixed x); g = d yield / d beta
  // from the yield formulas (lite: beta lv or lambda (1 + s beta / lv); full: beta lambda or
  // lambda + s beta, with beta variations); the engine's closed forms (per bin, Sherman-Morrison)
  // and dense couplings (covariance fits, beta variations) must reproduce g^T H^-1 g.
  for (const Variant& v : AllVariants()) {
    if (!v.bbstat) continue;
    CAPTURE(Label(v));
    Model m = BaseModel(false, SystematicType::kLogNormal, 97);
    if (v.term == DataTerm::kCovariance) m.data_cov_inv = RandomInverseCovariance(m, 41);
    const bool additive = v.bb == BinByBinStatType::kNormalAdditive ||
                          (v.bb == BinByBinStatType::kAutomatic && v.term == DataTerm::kCovariance);
    if (v.full && !additive) m.beta_variations = RandomBetaVariations(m, 13);
    Likelihood lik(m, Options(v));
    const Eigen::VectorXd x = RandomPoint(lik, 101);
    const Eigen::VectorXd beta = lik.ProfiledBeta(x);
    const Eigen::MatrixXd lam = lik.ExpectedYieldsPerProcess(x);
    const Eigen::MatrixXd nominal = m.DenseNorm();
    const int np = m.num_processes();
    // The active betas.
    std::vector<int> act;
    for (Eigen::Index j = 0; j < lik.num_betas(); ++j) {
      if (lik.bb_kstat()[j] <= 0) continue;
      if (!v.full && !additive) {
        double lv = 0.0;
        for (int p = 0; p < np; ++p) lv += m.sumw2(j, p) > 0 ? lam(j, p) : 0.0;
        if (!(lv > 0)) continue;
      }
      act.push_back(static_cast<int>(j));
    }
    const int na = static_cast<int>(act.size());
    REQUIRE(na > 0);
    // Yields [nbins_full x nproc] at fixed x as a function of the betas.
    auto yields = [&](const Eigen::VectorXd& b) {
      Eigen::MatrixXd y = lam;
      for (Eigen::Index bin = 0; bin < m.nbins; ++bin) {
        if (!v.full) {
          if (lik.bb_kstat()[bin] <= 0) continue;
          double lv = 0.0, s2 = 0.0;
          for (int p = 0; p < np; ++p) {
            lv += m.sumw2(bin, p) > 0 ? lam(bin, p) : 0.0;
            s2 += m.sumw2(bin, p);
          }
          for (int p = 0; p < np; ++p)
            if (m.sumw2(bin, p) > 0)
              y(bin, p) = additive ? lam(bin, p) * (1.0 + std::sqrt(s2) * b[bin] / lv)
                                   : b[bin] * lam(bin, p);
          continue;
        }
        for (int p = 0; p < np; ++p) {
          const Eigen::Index j = bin * np + p;
          if (lik.bb_kstat()[j] <= 0) continue;
          y(bin, p) =
              additive ? lam(bin, p) + std::sqrt(m.sumw2(bin, p)) * b[j] : b[j] * lam(bin, p);
        }
      }
      if (!m.beta_variations.empty())
        for (Eigen::Index i = 0; i < m.nbins_full; ++i)
          for (int p = 0; p < np; ++p) {
            if (!(nominal(i, p) > 0)) continue;
            double ratio = 0.0;
            for (Eigen::Index j = 0; j < m.nbins; ++j) {
              const double k = lik.bb_kstat()[j * np + p];
              if (k > 0) ratio += m.beta_variations[p](i, j) * std::sqrt(k) * (b[j * np + p] - 1.0);
            }
            y(i, p) *= 1.0 + ratio / nominal(i, p);
          }
      return y;
    };
    auto nll = [&](const Eigen::VectorXd& b) {
      Eigen::VectorXd g;
      Eigen::MatrixXd h;
      return lik.ValueGradientHessianFixedBeta(x, b, &g, &h);
    };
    const double h = 1e-3;
    Eigen::MatrixXd hbb(na, na);
    for (int a = 0; a < na; ++a)
      for (int c = 0; c <= a; ++c) {
        auto at = [&](double da, double dc) {
          Eigen::VectorXd b = beta;
          b[act[a]] += da;
          b[act[c]] += dc;
          return nll(b);
        };
        hbb(a, c) = hbb(c, a) = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h);
      }
    // g: central differences of the yields (exact for the linear formulas, O(h^2) with variations).
    const Eigen::Index nb = m.nbins_full;
    Eigen::MatrixXd gt(nb, na);
    std::vector<Eigen::MatrixXd> gp(na);
    for (int a = 0; a < na; ++a) {
      Eigen::VectorXd bp = beta, bm = beta;
      bp[act[a]] += 1e-6;
      bm[act[a]] -= 1e-6;
      gp[a] = (yields(bp) - yields(bm)) / 2e-6;
      gt.col(a) = gp[a].rowwise().sum();
    }
    const Eigen::MatrixXd hinv = hbb.inverse();
    const Eigen::MatrixXd tcov_ref = gt * hinv * gt.transpose();
    Eigen::VectorXd tvar;
    Eigen::MatrixXd tcov, pvar;
    lik.BetaYieldVariance(x, &tvar, &tcov, &pvar);
    const double scale = tcov_ref.diagonal().maxCoeff();
    CHECK(scale > 0);
    INFO("totals: " << tvar.transpose() << "\nreference: " << tcov_ref.diagonal().transpose());
    CHECK(lepus::test::MaxRelDiff(tvar, Eigen::VectorXd(tcov_ref.diagonal()), 1e-4 * scale) < 1e-4);
    if (tcov.size() > 0)
      CHECK(lepus::test::MaxRelDiff(tcov, tcov_ref, 1e-4 * scale) < 1e-4);
    else
      CHECK((tcov_ref - Eigen::MatrixXd(tcov_ref.diagonal().asDiagonal())).cwiseAbs().maxCoeff() <
            1e-6 * scale);
    for (Eigen::Index i = 0; i < nb; ++i)
      for (int p = 0; p < np; ++p) {
        Eigen::VectorXd g(na);
        for (int a = 0; a < na; ++a) g[a] = gp[a](i, p);
        CHECK(std::abs(pvar(i, p) - g.dot(hinv * g)) <=
              1e-4 * (std::abs(pvar(i, p)) + 1e-3 * scale));
      }
  }
}
