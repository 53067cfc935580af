// HistFactory entry kinds in the likelihood (engine/src/row_kernel.h): every kind's value and
// derivatives against finite differences and against its defining properties, and a model with
// every kind checked against an independent evaluation of lambda = (nom + sum delta) prod f and
// the NLL, and against finite differences of the analytic gradient and Hessian.
#include <cmath>
#include <random>

#include <doctest/doctest.h>

#include "../../engine/src/row_kernel.h"
#include "derivative_check.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::test {
namespace {

using engine::ConstraintKind;
using engine::EntryKind;
using engine::detail::EvalEntry;

double Val(EntryKind k, double up, double down, double theta, const double* coef) {
  return EvalEntry(k, up, down, 0.0, 0.0, theta, coef).v;
}

TEST_CASE(
    "entry kinds: values at +-1 reproduce the variations; derivatives match finite differences") {
  const double hi = 1.13, lo = 0.91;   // normsys factors
  const double dup = 4.0, ddn = -2.5;  // histosys: hi - nom, lo - nom
  const auto c4 = engine::detail::NormsysCoefficients(hi, lo);
  struct Case {
    EntryKind kind;
    double up, down;
    bool exponent;
  };
  const Case cases[] = {{EntryKind::kNormsysCode1, hi, lo, true},
                        {EntryKind::kNormsysCode4, hi, lo, true},
                        {EntryKind::kHistosysCode0, dup, ddn, false},
                        {EntryKind::kHistosysCode4p, dup, ddn, false},
                        {EntryKind::kFactor, 0, 0, false}};
  for (const Case& c : cases) {
    CAPTURE(engine::ToString(c.kind));
    const double* coef = c.kind == EntryKind::kNormsysCode4 ? c4.data() : nullptr;
    if (c.kind != EntryKind::kFactor) {
      const double vp = Val(c.kind, c.up, c.down, 1.0, coef),
                   vm = Val(c.kind, c.up, c.down, -1.0, coef);
      CHECK((c.exponent ? std::exp(vp) : vp) == doctest::Approx(c.up).epsilon(1e-13));
      CHECK((c.exponent ? std::exp(vm) : vm) == doctest::Approx(c.down).epsilon(1e-13));
      CHECK(Val(c.kind, c.up, c.down, 0.0, coef) == 0.0);
    }
    // Derivatives everywhere except at the kinks of codes 0 and 1 (theta = 0).
    for (double theta :
         {-3.7, -1.6, -1.0 - 1e-3, -0.999, -0.6, -0.2, 0.05, 0.3, 0.7, 0.999, 1.001, 1.4, 2.9}) {
      CAPTURE(theta);
      const double h = 1e-6;
      const auto e = EvalEntry(c.kind, c.up, c.down, 0, 0, theta, coef);
      const auto ep = EvalEntry(c.kind, c.up, c.down, 0, 0, theta + h, coef);
      const auto em = EvalEntry(c.kind, c.up, c.down, 0, 0, theta - h, coef);
      CHECK(e.d1 == doctest::Approx((ep.v - em.v) / (2 * h)).epsilon(1e-7));
      CHECK(e.d2 == doctest::Approx((ep.d1 - em.d1) / (2 * h)).epsilon(1e-6).scale(1.0));
    }
  }
  // Code 4: the polynomial continues the exponential with its value, slope and curvature at +-1
  // (so ln f has continuous first and second derivatives there), and code 4p the linear pieces.
  for (double s : {1.0, -1.0}) {
    const auto in = EvalEntry(EntryKind::kNormsysCode4, hi, lo, 0, 0, s * (1 - 1e-12), c4.data());
    const auto out = EvalEntry(EntryKind::kNormsysCode1, hi, lo, 0, 0, s * (1 + 1e-12), nullptr);
    CHECK(in.v == doctest::Approx(out.v).epsilon(1e-10));
    CHECK(in.d1 == doctest::Approx(out.d1).epsilon(1e-9));
    CHECK(std::abs(in.d2 - out.d2) < 1e-8);
    const auto hin =
        EvalEntry(EntryKind::kHistosysCode4p, dup, ddn, 0, 0, s * (1 - 1e-12), nullptr);
    const auto hout =
        EvalEntry(EntryKind::kHistosysCode0, dup, ddn, 0, 0, s * (1 + 1e-12), nullptr);
    CHECK(hin.v == doctest::Approx(hout.v).epsilon(1e-10));
    CHECK(hin.d1 == doctest::Approx(hout.d1).epsilon(1e-9));
    CHECK(std::abs(hin.d2) < 1e-8);
  }
  // Code 4 with a symmetric variation (hi lo = 1) is close to, but not exactly, hi^theta inside.
  const auto c4s = engine::detail::NormsysCoefficients(1.1, 1 / 1.1);
  CHECK(std::exp(Val(EntryKind::kNormsysCode4, 1.1, 1 / 1.1, 0.5, c4s.data())) ==
        doctest::Approx(std::pow(1.1, 0.5)).epsilon(1e-3));
}

// Two channels (2 + 3 bins), three samples; systematics:
//   0 mu (normfactor on sig), 1 lumi (factor on sig and bkg1, Gaussian sigma 0.05 centre 1),
//   2 jes (normsys code 1 and histosys code 0 on bkg1: a repeated column), 3 xs (normsys code 4
//   on bkg2), 4 shape (histosys code 4p on sig and bkg2), 5..9 staterror gammas (one per bin,
//   Gaussian), 10..11 shapesys gammas on bkg2 in channel 2's first two bins (Poisson), 12 a free
//   shapefactor on bkg1 in bin 0.
struct HfModel {
  engine::Model model;
  // Per (bin, sample): nominal, and the entries (syst, kind, up, down).
  struct Entry {
    int syst;
    EntryKind kind;
    double up, down;
  };
  std::vector<std::vector<std::vector<Entry>>> entries;  // [bin][sample]
  std::vector<std::vector<double>> nom;                  // [bin][sample]
};

HfModel MakeHfModel() {
  HfModel h;
  engine::Model& m = h.model;
  m.processes = {"bkg1", "bkg2", "sig"};
  m.num_signals = 0;
  m.systematics = {"mu",           "lumi",         "jes",          "xs",           "shape",
                   "staterror[0]", "staterror[1]", "staterror[2]", "staterror[3]", "staterror[4]",
                   "shapesys[0]",  "shapesys[1]",  "sf[0]"};
  const int nsyst = static_cast<int>(m.systematics.size());
  m.constraint_weights.assign(nsyst, 1.0);
  m.constraint_weights[0] = 0.0;
  m.constraint_weights[1] = 1.0 / (0.05 * 0.05);
  m.constraint_kinds.assign(nsyst, ConstraintKind::kGaussian);
  m.global_observables.assign(nsyst, 0.0);
  m.initial_values.assign(nsyst, 0.0);
  for (int s : {0, 1, 5, 6, 7, 8, 9, 10, 11, 12})
    m.global_observables[s] = m.initial_values[s] = 1.0;
  m.global_observables[0] = 0.0;
  const double stat_rel[5] = {0.05, 0.08, 0.03, 0.1, 0.06};
  for (int b = 0; b < 5; ++b) m.constraint_weights[5 + b] = 1.0 / (stat_rel[b] * stat_rel[b]);
  m.constraint_weights[10] = 25.0;  // tau = (nom / unc)^2
  m.constraint_weights[11] = 64.0;
  m.constraint_kinds[10] = m.constraint_kinds[11] = ConstraintKind::kPoisson;
  m.constraint_weights[12] = 0.0;
  m.noi_indices = {0};
  m.lower_bounds.assign(nsyst, -5.0);
  m.upper_bounds.assign(nsyst, 5.0);
  m.channels = {{"ch1", {}, 2, false}, {"ch2", {}, 3, false}};
  m.nbins = m.nbins_full = 5;
  m.data_obs = Eigen::VectorXd(5);
  m.data_obs << 52, 41, 130, 95, 33;
  m.sumw2 = Eigen::MatrixXd::Zero(5, 3);
  h.nom = {{30, 0, 12}, {20, 5, 9}, {60, 50, 15}, {40, 38, 6}, {10, 20, 1}};
  h.entries.assign(5, std::vector<std::vector<HfModel::Entry>>(3));
  for (int b = 0; b < 5; ++b) {
    for (int p = 0; p < 3; ++p) {
      if (h.nom[b][p] == 0.0) continue;
      auto& e = h.entries[b][p];
      if (p == 2) e.push_back({0, EntryKind::kFactor, 0, 0});
      if (p != 1) e.push_back({1, EntryKind::kFactor, 0, 0});
      if (p == 0) {
        e.push_back({2, EntryKind::kNormsysCode1, 1.08, 0.95});
        e.push_back({2, EntryKind::kHistosysCode0, 0.1 * h.nom[b][p] * (b % 2 ? 1 : -1),
                     -0.07 * h.nom[b][p]});
      }
      if (p == 1) e.push_back({3, EntryKind::kNormsysCode4, 1.2, 0.85});
      if (p != 0)
        e.push_back({4, EntryKind::kHistosysCode4p, 0.05 * h.nom[b][p] * (b + 1) / 3.0,
                     -0.03 * h.nom[b][p]});
      e.push_back({5 + b, EntryKind::kFactor, 0, 0});
      if (p == 1 && (b == 2 || b == 3)) e.push_back({10 + (b - 2), EntryKind::kFactor, 0, 0});
      if (p == 0 && b == 0) e.push_back({12, EntryKind::kFactor, 0, 0});
    }
  }
  engine::Tensor& t = m.tensor;
  t.row_start.push_back(0);
  for (int b = 0; b < 5; ++b)
    for (int p = 0; p < 3; ++p) {
      if (h.nom[b][p] == 0.0) continue;
      t.row_bin.push_back(b);
      t.row_proc.push_back(p);
      t.norm.push_back(h.nom[b][p]);
      auto e = h.entries[b][p];
      std::stable_sort(e.begin(), e.end(),
                       [](const auto& a, const auto& c) { return a.syst < c.syst; });
      for (const auto& x : e) {
        t.syst.push_back(x.syst);
        t.logk_avg.push_back(0.0);
        t.entry_kind.push_back(x.kind);
        t.entry_up.push_back(x.up);
        t.entry_down.push_back(x.down);
      }
      t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
    }
  return h;
}

// lambda of (b, p) written directly from the HistFactory definition.
double Expected(const HfModel& h, int b, int p, const Eigen::VectorXd& x) {
  double add = h.nom[b][p], mult = 1.0;
  for (const auto& e : h.entries[b][p]) {
    const double a = x[e.syst];
    switch (e.kind) {
      case EntryKind::kFactor:
        mult *= a;
        break;
      case EntryKind::kNormsysCode1:
        mult *= a >= 0 ? std::pow(e.up, a) : std::pow(e.down, -a);
        break;
      case EntryKind::kHistosysCode0:
        add += a >= 0 ? a * e.up : -a * e.down;
        break;
      case EntryKind::kNormsysCode4:
        if (std::abs(a) >= 1) {
          mult *= a >= 0 ? std::pow(e.up, a) : std::pow(e.down, -a);
        } else {
          const auto c = engine::detail::NormsysCoefficients(e.up, e.down);
          double f = 1.0;
          for (int i = 1; i <= 6; ++i) f += c[i + 1] * std::pow(a, i);
          mult *= f;
        }
        break;
      case EntryKind::kHistosysCode4p:
        if (a > 1)
          add += a * e.up;
        else if (a < -1)
          add += -a * e.down;
        else {
          const double dup = e.up,
                       ddn = -e.down;  // pyhf's delta_up = hi - nom, delta_dn = nom - lo
          const double s = 0.5 * (dup + ddn), aa = 0.0625 * (dup - ddn);
          add += a * (s + a * aa * (15 + a * a * (-10 + a * a * 3)));
        }
        break;
      default:
        break;
    }
  }
  return add * mult;
}

Eigen::VectorXd Point(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Eigen::VectorXd x(13);
  x[0] = 1.0 + 0.5 * u(rng);
  x[1] = 1.0 + 0.05 * u(rng);
  for (int s = 2; s <= 4; ++s) x[s] = 1.8 * u(rng);
  for (int s = 5; s <= 12; ++s) x[s] = 1.0 + 0.2 * u(rng);
  return x;
}

TEST_CASE(
    "HistFactory model: yields and NLL match the definitions, derivatives match finite "
    "differences") {
  const HfModel h = MakeHfModel();
  std::string err;
  REQUIRE_MESSAGE(h.model.IsValid(&err), err);
  engine::Likelihood lik(h.model);
  // Initial point and constraint centres from the model.
  const Eigen::VectorXd x0 = lik.InitialParams();
  CHECK(x0[0] == 1.0);
  CHECK(x0[2] == 0.0);
  CHECK(x0[10] == 1.0);
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const Eigen::VectorXd x = Point(seed);
    const Eigen::MatrixXd y = lik.ExpectedYieldsPerProcess(x);
    for (int b = 0; b < 5; ++b)
      for (int p = 0; p < 3; ++p) {
        CAPTURE(b);
        CAPTURE(p);
        CHECK(y(b, p) ==
              doctest::Approx(h.nom[b][p] == 0 ? 0.0 : Expected(h, b, p, x)).epsilon(1e-12));
      }
    // NLL: saturated Poisson + Gaussian + Poisson constraints (shapesys: tau (g - 1) - tau ln g).
    double nll = 0.0;
    for (int b = 0; b < 5; ++b) {
      const double l = y.row(b).sum(), n = h.model.data_obs[b];
      nll += l - n + (n > 0 ? n * std::log(n / l) : 0.0);
    }
    for (int s = 1; s < 13; ++s) {
      const double w = h.model.constraint_weights[s], c = h.model.global_observables[s];
      if (h.model.constraint_kinds[s] == ConstraintKind::kPoisson)
        nll += w * (x[s] - c) - w * c * std::log(x[s] / c);
      else
        nll += 0.5 * w * (x[s] - c) * (x[s] - c);
    }
    CHECK(lik.Value(x) == doctest::Approx(nll).epsilon(1e-12));
    CheckDerivatives(lik, x, "histfactory seed " + std::to_string(seed), 1e-14);
    // Matrix-free second-order information agrees with the dense Hessian.
    Eigen::VectorXd g, hv, diag;
    Eigen::MatrixXd hess;
    lik.ValueGradientHessian(x, &g, &hess);
    const Eigen::VectorXd v = Eigen::VectorXd::LinSpaced(13, -1.0, 2.0);
    lik.HessianVectorProduct(x, v, &hv);
    lik.HessianDiagonal(x, &diag);
    CHECK(MaxRelDiff(hv, hess * v, 1e-9) < 1e-10);
    CHECK(MaxRelDiff(diag, hess.diagonal(), 1e-9) < 1e-10);
  }
  // A factor at exactly 0 (a normfactor at its lower bound): derivatives stay finite and exact.
  Eigen::VectorXd x = Point(9);
  x[0] = 0.0;
  CheckDerivatives(lik, x, "mu = 0", 1e-14);
}

TEST_CASE(
    "general rows with a rabbit POI: log-normal and normal models, kModel entries mixed with "
    "kinds") {
  for (auto type : {engine::SystematicType::kLogNormal, engine::SystematicType::kNormal}) {
    for (bool positive : {false, true}) {
      CAPTURE(engine::ToString(type));
      CAPTURE(positive);
      engine::Model m;
      m.processes = {"sig", "bkg"};
      m.num_signals = 1;
      m.systematics = {"a", "b", "c"};
      m.constraint_weights = {1.0, 1.0, 0.0};
      m.systematic_type = type;
      m.asymmetric = true;
      m.nbins = m.nbins_full = 2;
      m.data_obs = Eigen::Vector2d(31, 47);
      m.sumw2 = Eigen::MatrixXd::Constant(2, 2, 4.0);  // Barlow-Beeston lite active too
      engine::Tensor& t = m.tensor;
      t.row_bin = {0, 0, 1, 1};
      t.row_proc = {0, 1, 0, 1};
      t.norm = {10, 20, 15, 30};
      // Each row: a (kModel), b (histosys code 4p or normsys code 4), c (factor)
      t.row_start = {0, 3, 6, 9, 12};
      for (int r = 0; r < 4; ++r) {
        const double lk =
            type == engine::SystematicType::kLogNormal ? 0.05 * (r + 1) : 0.5 * (r + 1);
        t.syst.insert(t.syst.end(), {0, 1, 2});
        t.logk_avg.insert(t.logk_avg.end(), {lk, 0.0, 0.0});
        t.logk_halfdiff.insert(t.logk_halfdiff.end(), {0.3 * lk, 0.0, 0.0});
        t.entry_kind.insert(
            t.entry_kind.end(),
            {EntryKind::kModel, r % 2 ? EntryKind::kHistosysCode4p : EntryKind::kNormsysCode4,
             EntryKind::kFactor});
        t.entry_up.insert(t.entry_up.end(), {0.0, r % 2 ? 2.0 : 1.1, 0.0});
        t.entry_down.insert(t.entry_down.end(), {0.0, r % 2 ? -1.5 : 0.93, 0.0});
      }
      m.initial_values = {0.0, 0.0, 1.0};
      std::string err;
      REQUIRE_MESSAGE(m.IsValid(&err), err);
      engine::LikelihoodOptions opt;
      opt.poi_positive = positive;
      engine::Likelihood lik(m, opt);
      for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        std::mt19937_64 rng(seed);
        std::uniform_real_distribution<double> u(-1, 1);
        Eigen::VectorXd x(4);
        x << 1.0 + 0.3 * u(rng), 1.5 * u(rng), 1.5 * u(rng), 1.0 + 0.2 * u(rng);
        CheckDerivatives(lik, x, "poi seed " + std::to_string(seed), 1e-14);
      }
    }
  }
}

TEST_CASE("Model::IsValid rejects bad kinds, bounds and Poisson constraints with the field named") {
  HfModel h = MakeHfModel();
  std::string err;
  {
    engine::Model m = h.model;
    m.tensor.entry_up[2] = -1.0;  // a normsys factor
    m.tensor.entry_kind[2] = EntryKind::kNormsysCode1;
    CHECK_FALSE(m.IsValid(&err));
    CHECK(err.find("normsys factors") != std::string::npos);
  }
  {
    engine::Model m = h.model;
    m.lower_bounds[3] = 6.0;
    CHECK_FALSE(m.IsValid(&err));
    CHECK(err.find("bounds of xs") != std::string::npos);
  }
  {
    engine::Model m = h.model;
    m.constraint_weights[10] = 0.0;
    CHECK_FALSE(m.IsValid(&err));
    CHECK(err.find("Poisson constraint needs tau > 0") != std::string::npos);
  }
  {
    engine::Model m = h.model;
    m.initial_values.resize(3);
    CHECK_FALSE(m.IsValid(&err));
    CHECK(err.find("initial_values has 3 entries") != std::string::npos);
  }
}

}  // namespace
}  // namespace lepus::test

namespace lepus::test {
namespace {

TEST_CASE("Fit keeps parameters inside the model's bounds (active set) and honours Model::fixed") {
  HfModel h = MakeHfModel();
  h.model.lower_bounds[0] = 0.0;
  h.model.upper_bounds[0] = 10.0;
  for (int s = 5; s < 13; ++s) h.model.lower_bounds[s] = 1e-10;
  SUBCASE("inactive bounds: the free minimum") {
    engine::Likelihood lik(h.model);
    const engine::FitResult r = engine::Fit(lik);
    REQUIRE(r.ok());
    CHECK(r.at_bound.empty());
    engine::Model free_model = h.model;
    free_model.lower_bounds.clear();
    free_model.upper_bounds.clear();
    const engine::FitResult rf = engine::Fit(engine::Likelihood(free_model));
    REQUIRE(rf.ok());
    CHECK(r.nll == doctest::Approx(rf.nll).epsilon(1e-12));
    CHECK(r.values[0] > 0.0);
  }
  SUBCASE("data below the background: mu held at 0 with the KKT sign") {
    h.model.data_obs << 30, 22, 100, 70, 28;  // below the background-only expectation
    engine::Likelihood lik(h.model);
    const engine::FitResult r = engine::Fit(lik);
    REQUIRE_MESSAGE(r.ok(), r.message);
    REQUIRE(r.at_bound.size() == 1);
    CHECK(r.at_bound[0] == 0);
    CHECK(r.values[0] == 0.0);
    CHECK(r.errors[0] == 0.0);
    Eigen::VectorXd g;
    lik.ValueAndGradient(r.x, &g);
    CHECK(g[0] > 0.0);  // the NLL rises into the box
    // The same as the fit with mu frozen at 0; the unbounded fit goes below 0.
    engine::FitOptions o;
    o.frozen.assign(13, false);
    o.frozen[0] = true;
    o.initial_params = lik.InitialParams();
    o.initial_params[0] = 0.0;
    const engine::FitResult r0 = engine::Fit(lik, o);
    CHECK(r.nll == doctest::Approx(r0.nll).epsilon(1e-12));
    engine::Model free_model = h.model;
    free_model.lower_bounds.clear();
    free_model.upper_bounds.clear();
    const engine::FitResult rf = engine::Fit(engine::Likelihood(free_model));
    REQUIRE(rf.ok());
    CHECK(rf.values[0] < 0.0);
    CHECK(rf.nll < r.nll);
  }
  SUBCASE("Model::fixed holds a parameter at its initial value") {
    h.model.fixed.assign(13, 0);
    h.model.fixed[1] = 1;  // lumi
    h.model.initial_values[1] = 1.02;
    engine::Likelihood lik(h.model);
    const engine::FitResult r = engine::Fit(lik);
    REQUIRE(r.ok());
    CHECK(r.values[1] == 1.02);
    CHECK(r.errors[1] == 0.0);
  }
}

}  // namespace
}  // namespace lepus::test

#include "lepus/engine/impacts.h"

namespace lepus::test {
namespace {

TEST_CASE(
    "global impacts close with Poisson constraints away from gamma = 1 (sigma(theta0) = sqrt(theta "
    "/ tau))") {
  HfModel h = MakeHfModel();
  engine::Likelihood lik(h.model);
  // Asimov data and global observables at a point where the shapesys gammas are far from 1: the
  // fit lands on it, and the squared global impacts add up to the variance only with the
  // Poisson constraint's own spread of its global observable.
  Eigen::VectorXd gen = lik.InitialParams();
  gen[0] = 1.3;
  gen[2] = 0.4;
  gen[10] = 1.25;
  gen[11] = 0.8;
  lik.SetData(engine::AsimovData(lik, gen));
  Eigen::VectorXd theta0 = lik.theta0();
  for (int s = 1; s < 13; ++s)
    if (h.model.constraint_weights[s] > 0) theta0[s] = gen[s];
  lik.SetGlobalObservables(theta0, lik.beta0());
  const engine::FitResult r = engine::Fit(lik);
  REQUIRE_MESSAGE(r.ok(), r.message);
  CHECK(r.values[10] == doctest::Approx(1.25).epsilon(1e-9));
  const engine::Impacts imp = engine::ComputeImpacts(lik, r);
  REQUIRE(imp.targets.size() == 1);
  CHECK(std::abs(imp.global_closure[0]) < 1e-9);
  // The shapesys gammas' global impacts are their columns times sqrt(tau / gamma), not sqrt(tau).
  CHECK(imp.global_nuisance(0, 10) != 0.0);
}

}  // namespace
}  // namespace lepus::test
