// Impacts: global-impact closure on Asimov data (with and without bin-by-bin statistics),
// nominal impacts against fix-and-shift refits on a Gaussian model, global data impacts against
// refits with shifted data, grouped impacts.
#include <cmath>

#include <doctest/doctest.h>
#include <Eigen/Cholesky>
#include <Eigen/LU>

#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/synthetic.h"

using namespace lepus::engine;
using lepus::models::MakeSyntheticModel;
using lepus::models::SyntheticSpec;

namespace {

Model ImpactModel(bool asym, std::uint64_t seed) {
  SyntheticSpec spec;
  spec.nbins = 30;
  spec.nmasked = 2;
  spec.nproc = 4;
  spec.nsignal = 1;
  spec.nsyst = 12;
  spec.nfree = 1;
  spec.nnoi = 2;  // syst0 (free) and syst1 (constrained) are nuisances of interest
  spec.asymmetric = asym;
  spec.seed = seed;
  Model m = MakeSyntheticModel(spec);
  m.groups.push_back({"odd", {3, 5, 7}});
  m.groups.push_back({"all_even", {2, 4, 6, 8, 10}});
  return m;
}

}  // namespace

TEST_CASE("global impacts close: squares add up to the variance on Asimov data") {
  for (bool bb : {true, false}) {
    for (bool asym : {false, true}) {
      CAPTURE(bb);
      CAPTURE(asym);
      LikelihoodOptions opt;
      opt.bin_by_bin_stat = bb;
      Likelihood lik(ImpactModel(asym, 3), opt);
      Eigen::VectorXd truth = lik.InitialParams();
      truth[0] = 1.2;
      truth[1] =
          0.4;  // the free NOI: the fit lands exactly on the truth (constrained ones stay at theta0)
      lik.SetData(AsimovData(lik, truth));
      FitResult r = Fit(lik);
      REQUIRE(r.ok());
      Impacts imp = ComputeImpacts(lik, r);
      REQUIRE(imp.targets.size() == 3);  // the POI and the two NOIs
      for (int k = 0; k < 3; ++k) CHECK(std::abs(imp.global_closure[k]) < 1e-6);
      if (bb) CHECK(imp.global_bbstat.cwiseAbs().maxCoeff() > 0);
      CHECK(imp.group_names.back() == (bb ? "binByBinStat" : "stat"));
    }
  }
}

TEST_CASE("global impacts on observed data: closure is approximate and reported") {
  Likelihood lik(ImpactModel(false, 5));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  Impacts imp = ComputeImpacts(lik, r);
  for (int k = 0; k < static_cast<int>(imp.targets.size()); ++k) {
    CHECK(std::isfinite(imp.global_closure[k]));
    CHECK(std::abs(imp.global_closure[k]) < 0.2);
  }
}

TEST_CASE("nominal impacts: definition, self impact, single-member groups") {
  Likelihood lik(ImpactModel(false, 7));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  ImpactOptions o;
  o.extra_groups.push_back({"just4", {4}});
  Impacts imp = ComputeImpacts(lik, r, o);
  const int t = imp.targets[0];
  CHECK(t == 0);
  for (int j = 0; j < lik.num_params(); ++j)
    CHECK(imp.nominal(0, j) ==
          doctest::Approx(r.covariance(t, j) / std::sqrt(r.covariance(j, j))).epsilon(1e-12));
  CHECK(imp.nominal(0, t) == doctest::Approx(imp.total[0]).epsilon(1e-12));
  int gi = -1;
  for (int i = 0; i < static_cast<int>(imp.group_names.size()); ++i)
    if (imp.group_names[i] == "just4") gi = i;
  REQUIRE(gi >= 0);
  CHECK(imp.grouped_nominal(0, gi) ==
        doctest::Approx(std::abs(imp.nominal(0, 1 + 4))).epsilon(1e-10));
  // Global impact of a unit-width constrained nuisance: C_ij.
  CHECK(imp.global_nuisance(0, 1 + 4) == doctest::Approx(r.covariance(0, 1 + 4)).epsilon(1e-8));
  // Statistical part is smaller than the total.
  const int stat = static_cast<int>(imp.group_names.size()) - 2;
  CHECK(imp.group_names[stat] == "stat");
  CHECK(imp.grouped_nominal(0, stat) < imp.total[0]);
  CHECK(imp.grouped_nominal(0, stat + 1) > 0);  // binByBinStat
}

TEST_CASE("nominal impacts agree with fix-and-shift refits on a Gaussian likelihood") {
  // Normal (additive) systematics with large counts: the likelihood is Gaussian to
  // O(1/sqrt(n)), where the refit shift equals C_ij / sigma_j.
  SyntheticSpec spec;
  spec.nbins = 25;
  spec.nproc = 3;
  spec.nsyst = 6;
  spec.type = SystematicType::kNormal;
  spec.yield_scale = 1e8;
  spec.mc_stat = false;
  spec.seed = 9;
  LikelihoodOptions opt;
  opt.bin_by_bin_stat = false;
  Likelihood lik(MakeSyntheticModel(spec), opt);
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  ImpactOptions io;
  io.targets = {0};
  io.global = false;
  Impacts imp = ComputeImpacts(lik, r, io);
  for (int j = 1; j < lik.num_params(); ++j) {
    CAPTURE(j);
    const auto [up, down] = ImpactByRefit(lik, r, 0, j);
    CHECK(up == doctest::Approx(imp.nominal(0, j)).epsilon(1e-3));
    CHECK(down == doctest::Approx(-imp.nominal(0, j)).epsilon(1e-3));
  }
}

TEST_CASE("global data impacts equal the refit response to a data shift") {
  Likelihood lik(ImpactModel(true, 11));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  Impacts imp = ComputeImpacts(lik, r);
  const Eigen::VectorXd data = lik.data();
  for (int b : {0, 7, 15}) {
    CAPTURE(b);
    const double h = 1e-3 * std::sqrt(data[b]);
    Eigen::VectorXd d = data;
    d[b] += h;
    lik.SetData(d);
    FitOptions fo;
    fo.initial_params = r.x;
    FitResult rp = Fit(lik, fo);
    d[b] -= 2 * h;
    lik.SetData(d);
    FitResult rm = Fit(lik, fo);
    lik.SetData(data);
    REQUIRE(rp.ok());
    REQUIRE(rm.ok());
    for (int k = 0; k < static_cast<int>(imp.targets.size()); ++k) {
      const int t = imp.targets[k];
      const double dxdn = (rp.values[t] - rm.values[t]) / (2 * h);
      CHECK(imp.global_data(k, b) == doctest::Approx(dxdn * std::sqrt(data[b])).epsilon(1e-5));
    }
  }
}

TEST_CASE("impacts in physical units and input validation") {
  Model m = ImpactModel(false, 13);
  m.systematic_scales.assign(m.num_systematics(), 0.0);
  m.systematic_units.assign(m.num_systematics(), "");
  m.systematic_scales[0] = 100.0;
  m.systematic_units[0] = "MeV";
  Likelihood lik(m);
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  Impacts imp = ComputeImpacts(lik, r);
  REQUIRE(imp.targets[1] == 1);
  CHECK(imp.target_unit[1] == "MeV");
  CHECK(imp.total[1] == doctest::Approx(100.0 * r.errors[1]).epsilon(1e-12));
  ImpactOptions bad;
  bad.extra_groups.push_back({"empty", {}});
  CHECK_THROWS_WITH_AS(ComputeImpacts(lik, r, bad), doctest::Contains("empty"),
                       std::invalid_argument);
  bad = ImpactOptions{};
  bad.targets = {999};
  CHECK_THROWS_AS(ComputeImpacts(lik, r, bad), std::invalid_argument);
}

TEST_CASE("grouped impacts of a large local group: the Hessian path equals c^T C_GG^-1 c") {
  // A CMS-like model: 600 local efficiency nuisances (a group large enough for the Hessian
  // path of engine/src/impacts.cc) around a few global ones. The reference is the textbook
  // formula on the fit covariance, computed here with an LDLT.
  lepus::models::CmsLikeSpec spec;
  spec.neta = 12;
  spec.npt = 10;
  spec.n_global = 20;
  spec.n_eff_per_eta = 50;
  spec.n_scale_per_eta = 40;  // the rest (globals + scale) is structured and above 400
  spec.nproc = 4;
  Likelihood lik(lepus::models::MakeCmsLikeModel(spec));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  Impacts imp = ComputeImpacts(lik, r);
  const Model& m = lik.model();
  const int npoi = m.num_signals;
  int checked = 0;
  for (std::size_t gi = 0; gi < m.groups.size(); ++gi) {
    std::vector<int> idx;
    for (int s : m.groups[gi].members) idx.push_back(npoi + s);
    const int gm = static_cast<int>(idx.size());
    if (gm < 500) continue;
    ++checked;
    for (std::size_t k = 0; k < imp.targets.size(); ++k) {
      const int t = imp.targets[k];
      Eigen::MatrixXd cgg(gm, gm);
      Eigen::VectorXd c(gm);
      for (int j = 0; j < gm; ++j) {
        c[j] = r.covariance(t, idx[j]) * imp.target_scale[k];
        for (int i = 0; i < gm; ++i) cgg(i, j) = r.covariance(idx[i], idx[j]);
      }
      const double ref = std::sqrt(c.dot(cgg.ldlt().solve(c)));
      CAPTURE(m.groups[gi].name);
      CAPTURE(k);
      CHECK(ref > 0.0);
      CHECK(imp.grouped_nominal(k, gi) == doctest::Approx(ref).epsilon(1e-7));
    }
  }
  CHECK(checked == 1);
}

namespace {

// One bin, the signal (50 events at mu = 1, MC-stat k = 50^2 / 12.5 = 200) with a constrained
// 10% normalisation nuisance; n = 150 observed.
Model CountingWithMcStat() {
  Model m;
  m.processes = {"sig"};
  m.num_signals = 1;
  m.systematics = {"norm"};
  m.constraint_weights = {1.0};
  m.nbins = m.nbins_full = 1;
  m.channels.push_back(Channel{"ch", {}, 1, false});
  m.data_obs = Eigen::VectorXd::Constant(1, 150.0);
  m.sumw2 = Eigen::MatrixXd::Constant(1, 1, 12.5);
  m.tensor = Tensor::FromDense(1, 1, 1, {50.0}, {0.1}, {});
  return m;
}

int GroupIndex(const Impacts& imp, const std::string& name) {
  for (int i = 0; i < static_cast<int>(imp.group_names.size()); ++i)
    if (imp.group_names[i] == name) return i;
  return -1;
}

}  // namespace

TEST_CASE("impacts: rabbit's stat and binByBinStat on a counting experiment (hand-derived)") {
  // At the minimum beta = 1 and mu = n / 50 = 3; ln lambda has variance 1/n + 1/k from the data
  // (1/n with beta fixed), the nuisance adds 0.1^2 to ln mu. rabbit's stat fixes the nuisance and
  // beta: mu / sqrt(n); binByBinStat: mu / sqrt(k) (here equal to the full-covariance difference).
  for (bool bb : {true, false}) {
    CAPTURE(bb);
    LikelihoodOptions opt;
    opt.bin_by_bin_stat = bb;
    Likelihood lik(CountingWithMcStat(), opt);
    FitResult r = Fit(lik);
    REQUIRE(r.ok());
    REQUIRE(r.values[0] == doctest::Approx(3.0).epsilon(1e-9));
    Impacts imp = ComputeImpacts(lik, r);
    const double n = 150.0, k = 200.0, mu = 3.0;
    CHECK(imp.total[0] ==
          doctest::Approx(mu * std::sqrt(1 / n + (bb ? 1 / k : 0.0) + 0.01)).epsilon(1e-8));
    CHECK(imp.grouped_nominal(0, GroupIndex(imp, "stat")) ==
          doctest::Approx(mu / std::sqrt(n)).epsilon(1e-8));
    CHECK(imp.nominal(0, 1) == doctest::Approx(-0.1 * mu).epsilon(1e-8));
    if (bb) {
      REQUIRE(GroupIndex(imp, "binByBinStat") >= 0);
      CHECK(imp.grouped_nominal(0, GroupIndex(imp, "binByBinStat")) ==
            doctest::Approx(mu / std::sqrt(k)).epsilon(1e-8));
      REQUIRE(imp.bbstat_fullcov.size() == 1);
      CHECK(imp.bbstat_fullcov[0] == doctest::Approx(mu / std::sqrt(k)).epsilon(1e-8));
    } else {
      CHECK(GroupIndex(imp, "binByBinStat") < 0);
      CHECK(imp.bbstat_fullcov.size() == 0);
    }
  }
}

TEST_CASE(
    "impacts: rabbit's stat and binByBinStat with constrained nuisances fixed, same sub-Hessian") {
  // syst0 is a free NOI, syst1 a constrained NOI. The definitions, spelled out on the Hessians:
  // S = POI + unconstrained; stat_i = sqrt([H_fixed,SS^-1]_ii), binByBinStat_i =
  // sqrt([H_SS^-1]_ii - [H_fixed,SS^-1]_ii), 0 for the constrained NOI; a target does not enter S.
  Likelihood lik(ImpactModel(false, 17));
  FitResult r = Fit(lik);
  REQUIRE(r.ok());
  Impacts imp = ComputeImpacts(lik, r);
  REQUIRE(imp.targets == std::vector<int>{0, 1, 2});
  std::vector<int> s;
  for (int i = 0; i < lik.num_params(); ++i)
    if (i == 0 || !lik.params()[i].constrained) s.push_back(i);
  REQUIRE(s.size() == 2);  // the POI and syst0
  Eigen::VectorXd g;
  Eigen::MatrixXd hfix;
  lik.ValueGradientHessianFixedBeta(r.x, lik.ProfiledBeta(r.x), &g, &hfix);
  auto block = [&](const Eigen::MatrixXd& h) {
    Eigen::MatrixXd b(2, 2);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) b(i, j) = h(s[i], s[j]);
    return Eigen::MatrixXd(b.inverse());
  };
  const Eigen::MatrixXd cs_fix = block(hfix), cs = block(r.hessian);
  const Eigen::MatrixXd cfix_all = hfix.inverse();
  const int ist = GroupIndex(imp, "stat"), ibb = GroupIndex(imp, "binByBinStat");
  REQUIRE(ibb == ist + 1);
  for (int k = 0; k < 2; ++k) {
    CAPTURE(k);
    CHECK(imp.grouped_nominal(k, ist) == doctest::Approx(std::sqrt(cs_fix(k, k))).epsilon(1e-8));
    CHECK(imp.grouped_nominal(k, ibb) ==
          doctest::Approx(std::sqrt(cs(k, k) - cs_fix(k, k))).epsilon(1e-6));
    CHECK(imp.bbstat_fullcov[k] ==
          doctest::Approx(std::sqrt(r.covariance(k, k) - cfix_all(k, k))).epsilon(1e-6));
  }
  CHECK(imp.grouped_nominal(2, ist) == 0.0);
  CHECK(imp.grouped_nominal(2, ibb) == 0.0);
  CHECK(imp.bbstat_fullcov[2] > 0.0);
  // The POI's numbers do not depend on which targets are asked for.
  ImpactOptions only_poi;
  only_poi.targets = {0};
  Impacts imp0 = ComputeImpacts(lik, r, only_poi);
  CHECK(imp0.grouped_nominal(0, ist) == imp.grouped_nominal(0, ist));
  CHECK(imp0.grouped_nominal(0, ibb) == imp.grouped_nominal(0, ibb));
}
