// The HistFactory conformance cases (tests/data/conformance/histfactory: two pyhf workspaces and
// CLs values recorded in pyhf's validation suite from ROOT/RooStats): read through io, tested with
// engine::HypoTest at the recorded settings (q, normsys code 1, histosys code 0, mu = 1).
//
// 2bin_histosys matches at the kit's tolerance (8e-5). 1bin_shapesys has closed forms, and lepus
// agrees with them to 1e-9; the recorded values differ from them by up to 3.3e-5 (kit tolerance
// 1e-6): the observed statistic agrees to 2e-8, but the recorded Asimov statistic q_A is smaller
// by 2.1e-5, which is what the Asimov data give when the background-only fit that generates them
// stops 2.4e-8 above the minimum of the NLL (gamma off by 2.2e-5; docs/histfactory.md
// "Validation"). The test checks both: the exact values to 1e-9 and the recorded ones to 5e-5.
#include <cmath>
#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "lepus/engine/hypotest.h"
#include "lepus/io/reader.h"
#include "test_support.h"

namespace lepus::test {
namespace {

nlohmann::json Expected() {
  std::ifstream in(TestDataDir() + "/conformance/histfactory/expected.json");
  return nlohmann::json::parse(in);
}

engine::HypoTestResult Run(const std::string& name, const nlohmann::json& e) {
  io::ReadOptions ro;
  ro.normsys_interp = e.at("normsys_interp").get<std::string>();
  ro.histosys_interp = e.at("histosys_interp").get<std::string>();
  engine::Model model =
      io::ReadFitInput(TestDataDir() + "/conformance/histfactory/" + name + ".json", nullptr, ro);
  engine::Likelihood lik(std::move(model));
  engine::HypoTestOptions opt;
  opt.test_stat = engine::TestStatisticFromString(e.at("test_stat").get<std::string>());
  const engine::HypoTestResult r = engine::HypoTest(lik, e.at("mu").get<double>(), opt);
  REQUIRE_MESSAGE(r.ok(), r.message);
  return r;
}

double Rel(double a, double b) { return std::abs(a - b) / std::abs(b); }

TEST_CASE(
    "histfactory conformance: 2bin_histosys (normfactor, histosys code 0) at the kit's tolerance") {
  const nlohmann::json e = Expected().at("2bin_histosys");
  const engine::HypoTestResult r = Run("2bin_histosys", e);
  const double tol = e.at("tolerance").get<double>();
  CHECK(Rel(r.cls_obs, e.at("cls_obs").get<double>()) < tol);
  for (int k = 0; k < 5; ++k) {
    CAPTURE(k);
    CHECK(Rel(r.cls_exp[k], e.at("cls_exp")[k].get<double>()) < tol);
  }
}

// 1bin_shapesys in closed form: lambda = 10 mu + 50 gamma, shapesys tau = (50 / 7)^2 with
// auxiliary count a; the NLL profiled in gamma at fixed mu solves a quadratic.
struct OneBin {
  double tau = (50.0 / 7.0) * (50.0 / 7.0);
  double Nll(double mu, double g, double n, double a) const {
    const double lam = 10 * mu + 50 * g;
    return lam - n * std::log(lam) + g * tau - a * std::log(g);
  }
  double Gamma(double mu, double n, double a) const {
    // d/dg: 50 - 50 n / lam + tau - a / g = 0  ->  50 (50 + tau) g^2 + [10 mu (50 + tau) - 50 n - 50 a] g - 10 mu a = 0
    const double A = 50 * (50 + tau), B = 10 * mu * (50 + tau) - 50 * n - 50 * a, C = -10 * mu * a;
    return (-B + std::sqrt(B * B - 4 * A * C)) / (2 * A);
  }
  double Profiled(double mu, double n, double a) const { return Nll(mu, Gamma(mu, n, a), n, a); }
  // q_mu with mu-hat bounded below at 0 (the normfactor's bounds [0, 10]).
  double Q(double mu, double n, double a) const {
    const double g_free = a / tau;  // the saturated free fit: lambda = n, gamma = a / tau
    const double mu_hat = (n - 50 * g_free) / 10;
    const double nll_free = mu_hat >= 0 ? Nll(mu_hat, g_free, n, a) : Profiled(0.0, n, a);
    if (mu_hat > mu) return 0.0;
    return 2 * (Profiled(mu, n, a) - nll_free);
  }
};

double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST_CASE(
    "histfactory conformance: 1bin_shapesys (normfactor, shapesys) against closed forms and the "
    "record") {
  const nlohmann::json e = Expected().at("1bin_shapesys");
  const engine::HypoTestResult r = Run("1bin_shapesys", e);
  const OneBin m;
  const double n = 55, a = m.tau;
  const double q = m.Q(1.0, n, a);
  const double g0 = m.Gamma(0.0, n, a);  // the background-only fit that makes the Asimov data
  const double qa = m.Q(1.0, 50 * g0, m.tau * g0);
  CHECK(Rel(r.q_obs, q) < 1e-9);
  CHECK(Rel(r.q_asimov, qa) < 1e-9);
  CHECK(r.mu_hat == doctest::Approx(0.5).epsilon(1e-9));
  const double sq = std::sqrt(q), sqa = std::sqrt(qa);
  CHECK(Rel(r.cls_obs, Phi(-sq) / Phi(sqa - sq)) < 1e-9);
  for (int k = 0; k < 5; ++k) {
    const double nsig = -engine::kExpectedBandSigmas[k];  // entry 0 (-2 sigma) is the smallest CLs
    CAPTURE(k);
    CHECK(Rel(r.cls_exp[k], Phi(-(nsig + sqa)) / Phi(-nsig)) < 1e-9);
    // The record, within the spread its Asimov fit's convergence leaves (see the file comment).
    CHECK(Rel(r.cls_exp[k], e.at("cls_exp")[k].get<double>()) < 5e-5);
  }
  CHECK(Rel(r.cls_obs, e.at("cls_obs").get<double>()) < 1e-5);
  // With the Asimov data made at the slightly unconverged gamma (2.4e-8 above the NLL minimum),
  // the closed forms reproduce the record to 1e-6: the record's only difference.
  const double g_rec = 1.0495171963472276;
  CHECK(m.Profiled(0.0, n, a) < m.Nll(0.0, g_rec, n, a));
  CHECK(m.Nll(0.0, g_rec, n, a) - m.Profiled(0.0, n, a) < 3e-8);
  const double sqa_rec = std::sqrt(m.Q(1.0, 50 * g_rec, m.tau * g_rec));
  CHECK(Rel(Phi(-sq) / Phi(sqa_rec - sq), e.at("cls_obs").get<double>()) < 1e-6);
  for (int k = 0; k < 5; ++k) {
    const double nsig = -engine::kExpectedBandSigmas[k];
    CHECK(Rel(Phi(-(nsig + sqa_rec)) / Phi(-nsig), e.at("cls_exp")[k].get<double>()) < 1e-6);
  }
}

}  // namespace
}  // namespace lepus::test
