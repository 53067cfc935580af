// Efficiency scale-factor variations: counts of the full and light configurations, locality in
// eta and charge (Active() lists exactly the nuisances that act), eigenvectors reproducing the
// coefficient covariance, anti-correlated isolation-fail weights, sizes.
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/models/efficiency_variations.h"

namespace {
using namespace lepus::models;
}

TEST_CASE("efficiency configurations have the documented counts") {
  std::string error;
  CHECK(EfficiencyConfig::Full().IsValid(&error));
  CHECK(EfficiencyConfig::Light().IsValid(&error));
  const EfficiencyVariations full(EfficiencyConfig::Full());
  CHECK(full.num_stat() == 5 * 48 * 2 * 4);
  CHECK(full.num_syst() == 5 * 7);
  const EfficiencyVariations light(EfficiencyConfig::Light());
  CHECK(light.num_stat() == 5 * 2 * 2 * 1);
  CHECK(light.num_syst() == 5);
  std::set<std::string> names;
  for (const EfficiencyNuisance& n : full.nuisances()) CHECK(names.insert(n.name).second);
  CHECK(names.count("effStat_trigger_eta47_plus_eig3"));
  CHECK(names.count("effSyst_isolation_etaRegion5"));
  for (std::size_t k = 0; k < full.num_stat(); ++k) {
    const EfficiencyNuisance& n = full.nuisances()[k];
    CHECK(n.first_eta_bin == n.last_eta_bin);  // one eta bin per stat nuisance
    CHECK(n.group == "muonEffStat");
    CHECK(n.charge != 0);
  }
  CHECK(full.StatIndex(EfficiencyKind::kId, 7, -1) ==
        full.StatIndex(EfficiencyKind::kId, 7, +1) - 4);
}

TEST_CASE("Active lists exactly the nuisances acting on a muon") {
  for (const EfficiencyConfig& cfg : {EfficiencyConfig::Full(), EfficiencyConfig::Light()}) {
    const EfficiencyVariations ev(cfg);
    std::vector<ActiveEfficiencyVariation> out(static_cast<std::size_t>(ev.MaxActive()));
    for (double eta : {-2.39, -1.61, -0.05, 0.0, 0.77, 2.4, 2.6})
      for (double pt : {26.0, 41.3, 70.0})
        for (int q : {-1, 1})
          for (bool pass : {true, false}) {
            const double eff_iso = 0.93;
            const int n = ev.Active(eta, pt, q, pass, eff_iso, out.data());
            CHECK(n <= ev.MaxActive());
            std::vector<double> listed(ev.size(), 0.0);
            std::vector<int> seen(ev.size(), 0);
            for (int i = 0; i < n; ++i) {
              listed[static_cast<std::size_t>(out[i].index)] = out[i].rel;
              ++seen[static_cast<std::size_t>(out[i].index)];
            }
            int stat_listed = 0;
            for (std::size_t k = 0; k < ev.size(); ++k) {
              CHECK(seen[k] <= 1);
              const double r = ev.RelativeChange(k, eta, pt, q, pass, eff_iso);
              CHECK(r == doctest::Approx(listed[k]).epsilon(1e-12).scale(1e-12));
              if (!seen[k]) CHECK(r == 0.0);
              if (seen[k] && k < ev.num_stat()) {
                ++stat_listed;
                const EfficiencyNuisance& nu = ev.nuisances()[k];
                const int bin = ScaleEtaBin(eta);
                CHECK(bin >= nu.first_eta_bin);
                CHECK(bin <= nu.last_eta_bin);
                CHECK(nu.charge == q);
              }
            }
            CHECK(stat_listed == 5 * cfg.num_eigen);
          }
  }
}

TEST_CASE("stat eigenvectors reproduce the coefficient covariance") {
  EfficiencyConfig cfg = EfficiencyConfig::Full();
  cfg.num_eigen = cfg.poly_order + 1;
  const EfficiencyVariations ev(cfg);
  for (EfficiencyKind step : {EfficiencyKind::kReco, EfficiencyKind::kTrigger})
    for (int bin : {0, 23, 40}) {
      const std::vector<double> cov = ev.CoefficientCovariance(step, bin);
      const int np = cfg.poly_order + 1;
      std::vector<double> sum(cov.size(), 0.0);
      const int base = ev.StatIndex(step, bin, +1);
      for (int e = 0; e < cfg.num_eigen; ++e) {
        const std::vector<double>& c = ev.nuisances()[static_cast<std::size_t>(base + e)].coeff;
        for (int a = 0; a < np; ++a)
          for (int b = 0; b < np; ++b) sum[a * np + b] += c[a] * c[b];
      }
      double scale = 0;
      for (double v : cov) scale = std::max(scale, std::abs(v));
      for (std::size_t i = 0; i < cov.size(); ++i) CHECK(std::abs(sum[i] - cov[i]) < 1e-10 * scale);
      // Eigenvectors ordered by decreasing size.
      double prev = 1e9;
      for (int e = 0; e < cfg.num_eigen; ++e) {
        double norm2 = 0;
        for (double c : ev.nuisances()[static_cast<std::size_t>(base + e)].coeff) norm2 += c * c;
        CHECK(norm2 <= prev * (1 + 1e-12));
        prev = norm2;
      }
    }
}

TEST_CASE("efficiency variation sizes and the isolation-fail anti-correlation") {
  const EfficiencyVariations ev(EfficiencyConfig::Full());
  std::vector<ActiveEfficiencyVariation> pass(static_cast<std::size_t>(ev.MaxActive()));
  std::vector<ActiveEfficiencyVariation> fail(pass.size());
  const double eff = 0.9;
  const int np = ev.Active(0.3, 38.0, 1, true, eff, pass.data());
  const int nf = ev.Active(0.3, 38.0, 1, false, eff, fail.data());
  REQUIRE(np == nf);
  double largest = 0;
  for (int i = 0; i < np; ++i) {
    CHECK(pass[i].index == fail[i].index);
    const EfficiencyNuisance& n = ev.nuisances()[static_cast<std::size_t>(pass[i].index)];
    largest = std::max(largest, std::abs(pass[i].rel));
    if (n.step == EfficiencyKind::kIsolation) {
      // pass and fail yields add up to the same total: eff (1 + r_pass) + (1 - eff)(1 + r_fail) = 1
      CHECK(eff * pass[i].rel + (1 - eff) * fail[i].rel == doctest::Approx(0.0).scale(1e-12));
    } else {
      CHECK(pass[i].rel == fail[i].rel);
    }
  }
  CHECK(largest > 1e-4);
  CHECK(largest < 1e-2);
  // Forward bins have larger stat variations than central ones.
  const int c = ev.StatIndex(EfficiencyKind::kTrigger, 24, 1);
  const int f = ev.StatIndex(EfficiencyKind::kTrigger, 47, 1);
  CHECK(std::abs(ev.ScaleFactorShift(static_cast<std::size_t>(f), 40.0)) >
        std::abs(ev.ScaleFactorShift(static_cast<std::size_t>(c), 40.0)));
}

TEST_CASE("invalid efficiency configurations are named") {
  std::string error;
  EfficiencyConfig c = EfficiencyConfig::Full();
  c.eta_group = 5;
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("eta_group is 5, but must be >= 1 and divide eta_bins (48)") !=
        std::string::npos);
  c = EfficiencyConfig::Full();
  c.num_eigen = 9;
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("num_eigen is 9") != std::string::npos);
  c = EfficiencyConfig::Full();
  c.syst_eta_edges = {-1.0, 3.0};
  CHECK_THROWS_WITH_AS(EfficiencyVariations{c}, doctest::Contains("syst_eta_edges[1] is 3"),
                       std::invalid_argument);
}
