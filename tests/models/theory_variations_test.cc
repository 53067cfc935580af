// Theory variations: the registry (counts, names, groups), Breit-Wigner reweighting against a
// sample generated at the shifted mass and against quadrature, helicity weights and variations
// against the angular density, PDF-like variations smooth and bounded, pT(V) shapes conserving
// the cross section, weights of 1 where a variation does not act.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/models/theory_variations.h"

namespace {

using namespace lepus::models;

EventBatch GenLevel(Process p, std::uint64_t n, std::uint64_t seed,
                    const GeneratorParams& physics) {
  GeneratorConfig c;
  c.processes = {p};
  c.num_events = n;
  c.seed = seed;
  c.physics = physics;
  c.simulate_detector = false;
  Generator g(c);
  EventBatch b;
  g.GenerateParallel(p, 0, n, &b, 0);
  return b;
}

// One event with the given generator-level boson.
EventBatch OneEvent(Process p, int charge, double m, double pt, double y, double c, double phi) {
  EventBatch b;
  b.Resize(1);
  b.process[0] = p;
  b.v_charge[0] = static_cast<std::int8_t>(charge);
  b.v_mass[0] = m;
  b.v_pt[0] = pt;
  b.v_y[0] = y;
  b.v_phi[0] = 0.0;
  b.cos_theta_cs[0] = c;
  b.phi_cs[0] = phi;
  return b;
}

std::map<std::string, int> CountByGroup(const TheoryVariations& t, bool alternatives) {
  std::map<std::string, int> m;
  for (const TheoryNuisance& n : t.nuisances())
    if ((n.role == TheoryRole::kAlternative) == alternatives) ++m[n.group];
  return m;
}

}  // namespace

TEST_CASE("theory configurations are valid and have the documented counts") {
  std::string error;
  CHECK(TheoryConfig::Full().IsValid(&error));
  CHECK(TheoryConfig::Light().IsValid(&error));
  const TheoryVariations full(TheoryConfig::Full());
  const TheoryVariations light(TheoryConfig::Light());
  const auto f = CountByGroup(full, false);
  CHECK(f.at("massW") == 1);
  CHECK(f.at("widthW") == 1);
  CHECK(f.at("pdf") == 59);
  CHECK(f.at("angularCoeffs") == 6 * 9 * 2 * 3 + 1);
  CHECK(f.at("pTModeling") == 16);
  CHECK(f.at("EW") == 7);
  CHECK(CountByGroup(full, true).at("massW") == 20);
  CHECK(full.size() == 409 + 20);
  const auto l = CountByGroup(light, false);
  CHECK(l.at("pdf") == 3);
  CHECK(l.at("angularCoeffs") == 9);
  CHECK(l.at("pTModeling") == 7);
  CHECK(light.size() == 28);

  for (const TheoryVariations* t : {&full, &light}) {
    std::set<std::string> names;
    for (const TheoryNuisance& n : t->nuisances()) {
      CHECK(names.insert(n.name).second);
      CHECK(n.name.find_first_of(" +.") == std::string::npos);
    }
  }
  const TheoryNuisance& noi = full.nuisances()[full.Find("massShiftW100MeV")];
  CHECK(noi.role == TheoryRole::kInterest);
  CHECK(noi.scale_mev == 100.0);
  CHECK(noi.processes[static_cast<int>(Process::kWplusMuNu)]);
  CHECK(noi.processes[static_cast<int>(Process::kWTauNu)]);
  CHECK_FALSE(noi.processes[static_cast<int>(Process::kZMuMu)]);
  CHECK(full.Find("widthW0p6MeV") >= 0);
  CHECK(full.Find("massShiftWDown30MeV") >= 0);
  CHECK(full.Find("helicity_A0_ptV3_yV1_Wplus") >= 0);
  CHECK(full.Find("pdf7SymDiff") >= 0);
  CHECK(light.Find("helicity_A4_Z") >= 0);

  TheoryConfig wlike = TheoryConfig::Light();
  wlike.mass_boson = 'Z';
  const TheoryVariations z(wlike);
  CHECK(z.Find("massShiftZ100MeV") >= 0);
  CHECK(z.Find("widthZ2p3MeV") >= 0);
  CHECK(z.Find("massShiftW100MeV") < 0);
}

TEST_CASE("invalid theory configurations are named") {
  std::string error;
  TheoryConfig c = TheoryConfig::Full();
  c.helicity_pt_edges = {0, 5, 3};
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("helicity_pt_edges[2] is 3") != std::string::npos);
  c = TheoryConfig::Full();
  c.mass_step_mev = 30;
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("mass_step_mev is 30") != std::string::npos);
  c = TheoryConfig::Full();
  c.mass_boson = 'X';
  CHECK_THROWS_AS(TheoryVariations{c}, std::invalid_argument);
}

TEST_CASE("Breit-Wigner weights are normalised over the generation window") {
  const TheoryVariations t(TheoryConfig::Light());
  const GeneratorParams ph = GeneratorParams::Simulation();
  for (double dm : {0.1, -0.1, 0.01}) {
    for (double dg : {0.0, 0.0006}) {
      const int n = 400000;
      const double lo = ph.w_mass_min, hi = ph.w_mass_max, h = (hi - lo) / n;
      double s0 = 0, s1 = 0, m0 = 0, m1 = 0;
      for (int i = 0; i <= n; ++i) {
        const double m = lo + i * h;
        const double c = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
        const double f = c * BreitWigner(m, ph.w_mass, ph.w_width);
        const double w = t.BreitWignerWeight('W', m, dm, dg);
        s0 += f;
        s1 += f * w;
        m0 += f * m;
        m1 += f * w * m;
      }
      CHECK(s1 / s0 == doctest::Approx(1.0).epsilon(1e-7));
      // The mean of the truncated line shape moves by about dm (the truncation makes it
      // slightly different; 2% of the shift here).
      if (dg == 0.0) CHECK((m1 / s1 - m0 / s0) == doctest::Approx(dm).epsilon(0.02));
    }
  }
}

TEST_CASE("Breit-Wigner reweighting reproduces a sample generated at the shifted mass") {
  const std::uint64_t n = 300000;
  GeneratorParams nominal = GeneratorParams::Simulation();
  GeneratorParams shifted = nominal;
  const double d = 0.1;
  shifted.w_mass += d;
  shifted.w_width *= std::pow(shifted.w_mass / nominal.w_mass, 3);
  const EventBatch a = GenLevel(Process::kWplusMuNu, n, 11, nominal);
  const EventBatch b = GenLevel(Process::kWplusMuNu, n, 12, shifted);
  const TheoryVariations t(TheoryConfig::Light());
  const std::size_t k = static_cast<std::size_t>(t.Find("massShiftW100MeV"));
  std::vector<double> up(a.size()), down(a.size());
  t.Weights(k, a, 0, a.size(), up.data(), down.data());
  // Means inside a window around the peak (the far tails only add noise).
  auto windowed = [&](const EventBatch& e, const std::vector<double>* w, double* err) {
    double s0 = 0, s1 = 0, s2 = 0;
    for (std::size_t i = 0; i < e.size(); ++i) {
      const double m = e.v_mass[i];
      if (std::abs(m - nominal.w_mass) > 10.0) continue;
      const double wi = w ? (*w)[i] : 1.0;
      s0 += wi;
      s1 += wi * m;
      s2 += wi * m * m;
    }
    const double mean = s1 / s0;
    *err = std::sqrt((s2 / s0 - mean * mean) / s0);
    return mean;
  };
  double e_rw, e_gen, e_nom;
  const double m_rw = windowed(a, &up, &e_rw);
  const double m_gen = windowed(b, nullptr, &e_gen);
  const double m_nom = windowed(a, nullptr, &e_nom);
  CHECK(std::abs(m_rw - m_gen) < 4.0 * std::hypot(e_rw, e_gen));
  CHECK(m_rw - m_nom == doctest::Approx(d).epsilon(0.1));  // correlated: nearly noiseless
  double e_dn;
  const double m_dn = windowed(a, &down, &e_dn);
  CHECK(m_dn - m_nom == doctest::Approx(-d).epsilon(0.1));
  // Total yield conserved within its statistical error.
  double sw = 0, sw2 = 0;
  for (double w : up) {
    sw += w;
    sw2 += w * w;
  }
  CHECK(std::abs(sw / n - 1.0) < 4.0 * std::sqrt(sw2) / n);
  // The event-by-event weight is the documented ratio.
  CHECK(up[5] == doctest::Approx(t.BreitWignerWeight('W', a.v_mass[5], d, 0.0)).epsilon(1e-12));
}

TEST_CASE("helicity weights sum to one and helicity variations change A_i by their size") {
  const GeneratorParams ph = GeneratorParams::Simulation();
  for (int charge : {1, -1, 0})
    for (double pt : {0.5, 7.0, 30.0, 80.0})
      for (double ay : {0.0, 1.0, 2.5})
        for (double c : {-0.95, -0.3, 0.0, 0.6, 0.99})
          for (double phi : {-2.5, 0.4, 3.0}) {
            const auto a = AngularCoefficients(ph, charge, pt, ay);
            const auto w = HelicityWeights(a, c, phi);
            double s = 0;
            for (double x : w) s += x;
            CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
          }

  const TheoryVariations t(TheoryConfig::Full());
  const EventBatch ev = OneEvent(Process::kWminusMuNu, -1, 80.0, 10.5, -1.8, 0.37, 1.1);
  TheoryInputs in;
  t.Prepare(ev, 0, 1, &in);
  CHECK(in.pt_bin[0] == 3);  // [9.7, 12.4)
  CHECK(in.y_bin[0] == 1);   // |y| >= 1.5
  double s = 0;
  for (const auto& v : in.hel_weight) s += v[0];
  CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
  const auto a = AngularCoefficients(ph, -1, 10.5, 1.8);
  const double d0 = AngularDensity(a, 0.37, 1.1);
  const TheoryConfig& cfg = t.config();
  for (int comp = 0; comp < kNumHelicityComponents; ++comp) {
    const std::string name = "helicity_" + HelicityComponentName(comp) + "_ptV3_yV1_Wminus";
    const int k = t.Find(name);
    REQUIRE(k >= 0);
    double up, down;
    t.Weights(static_cast<std::size_t>(k), in, &up, &down);
    double expected;
    if (comp == 0) {
      expected = 1.0 + cfg.helicity_abs[0];
    } else {
      auto a2 = a;
      a2[comp - 1] += cfg.helicity_abs[comp] + cfg.helicity_rel[comp] * std::abs(a[comp - 1]);
      expected = AngularDensity(a2, 0.37, 1.1) / d0;
    }
    CHECK(up == doctest::Approx(expected).epsilon(1e-12));
    CHECK(down == doctest::Approx(2.0 - expected).epsilon(1e-12));
    // The same component in another pT bin or for another boson does not act.
    for (const std::string& other :
         {"helicity_" + HelicityComponentName(comp) + "_ptV2_yV1_Wminus",
          "helicity_" + HelicityComponentName(comp) + "_ptV3_yV0_Wminus",
          "helicity_" + HelicityComponentName(comp) + "_ptV3_yV1_Wplus"}) {
      const int ko = t.Find(other);
      REQUIRE(ko >= 0);
      CHECK_FALSE(t.Acts(static_cast<std::size_t>(ko), in, 0));
      t.Weights(static_cast<std::size_t>(ko), in, &up, &down);
      CHECK(up == 1.0);
      CHECK(down == 1.0);
    }
  }
}

TEST_CASE("PDF-like variations are smooth, bounded and scaled to 68% CL") {
  TheoryConfig asym = TheoryConfig::Full();
  asym.pdf_symmetrize = false;
  TheoryConfig cl90 = asym;
  cl90.pdf_cl_scale = 1.0;
  const TheoryVariations ta(asym), t90(cl90), ts(TheoryConfig::Full());
  const int ny = 201;
  EventBatch b;
  b.Resize(3 * ny);
  const Process procs[3] = {Process::kWplusMuNu, Process::kWminusMuNu, Process::kZMuMu};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < ny; ++i) {
      const std::size_t j = static_cast<std::size_t>(c * ny + i);
      b.process[j] = procs[c];
      b.v_charge[j] = static_cast<std::int8_t>(c == 0 ? 1 : (c == 1 ? -1 : 0));
      b.v_mass[j] = c == 2 ? 91.0 : 80.0;
      b.v_pt[j] = 8.0;
      b.v_y[j] = -5.0 + 10.0 * i / (ny - 1);
      b.cos_theta_cs[j] = 0.5;
      b.phi_cs[j] = 0.2;
    }
  TheoryInputs in;
  ta.Prepare(b, 0, b.size(), &in);
  std::vector<double> up(b.size()), down(b.size()), up90(b.size()), down90(b.size());
  std::vector<double> avg_up(b.size()), diff_up(b.size());
  for (int k = 1; k <= 29; ++k) {
    const std::string name = "pdf" + std::to_string(k);
    ta.Weights(static_cast<std::size_t>(ta.Find(name)), in, up.data(), down.data());
    t90.Weights(static_cast<std::size_t>(t90.Find(name)), in, up90.data(), down90.data());
    ts.Weights(static_cast<std::size_t>(ts.Find(name + "SymAvg")), in, avg_up.data(), nullptr);
    ts.Weights(static_cast<std::size_t>(ts.Find(name + "SymDiff")), in, diff_up.data(), nullptr);
    for (std::size_t j = 0; j < b.size(); ++j) {
      CHECK(up[j] > 0.9);
      CHECK(up[j] < 1.1);
      CHECK(down[j] > 0.9);
      CHECK(down[j] < 1.1);
      CHECK((up90[j] - 1.0) == doctest::Approx(1.645 * (up[j] - 1.0)).epsilon(1e-9));
      CHECK((avg_up[j] - 1.0) == doctest::Approx(0.5 * (up[j] - down[j])).epsilon(1e-9));
      CHECK((diff_up[j] - 1.0) == doctest::Approx(0.5 * (up[j] + down[j]) - 1.0).epsilon(1e-9));
      // Smooth in y: neighbouring points (dy = 0.05) differ by little.
      if (j % ny != 0) CHECK(std::abs(up[j] - up[j - 1]) < 0.01);
    }
  }
  // The flavour term moves W+ and W- in opposite directions for some eigenvector.
  bool opposite = false;
  for (int k = 1; k <= 29 && !opposite; ++k) {
    ta.Weights(static_cast<std::size_t>(ta.Find("pdf" + std::to_string(k))), in, up.data(),
               nullptr);
    const int mid = ny / 2 + 20;
    opposite = (up[mid] - 1.0) * (up[ny + mid] - 1.0) < 0.0;
  }
  CHECK(opposite);
}

TEST_CASE("boson-pT shape variations conserve the cross section") {
  const TheoryVariations t(TheoryConfig::Full());
  const GeneratorParams ph = GeneratorParams::Simulation();
  // Events on a grid uniform in t = pT^2 / (pT^2 + p0^2): equal-probability points of the
  // generator's pT law, so the plain average of a weight is its expectation.
  const int n = 20000;
  EventBatch b;
  b.Resize(3 * n);
  const Process procs[3] = {Process::kWplusMuNu, Process::kWminusMuNu, Process::kZMuMu};
  for (int c = 0; c < 3; ++c) {
    const double p0 = c == 2 ? ph.pt_p0_z : ph.pt_p0_w;
    const double tmax = ph.pt_max * ph.pt_max / (ph.pt_max * ph.pt_max + p0 * p0);
    for (int i = 0; i < n; ++i) {
      const std::size_t j = static_cast<std::size_t>(c * n + i);
      const double tt = tmax * (i + 0.5) / n;
      b.process[j] = procs[c];
      b.v_charge[j] = static_cast<std::int8_t>(c == 0 ? 1 : (c == 1 ? -1 : 0));
      b.v_mass[j] = c == 2 ? ph.z_mass : ph.w_mass;
      b.v_pt[j] = p0 * std::sqrt(tt / (1.0 - tt));
      b.v_y[j] = 0.7;
      b.cos_theta_cs[j] = 0.1;
      b.phi_cs[j] = 0.0;
    }
  }
  TheoryInputs in;
  t.Prepare(b, 0, b.size(), &in);
  std::vector<double> up(b.size()), down(b.size());
  for (std::size_t k = 0; k < t.size(); ++k) {
    const TheoryNuisance& nu = t.nuisances()[k];
    if (nu.kind != TheoryKind::kNonPerturbative && nu.kind != TheoryKind::kResummation) continue;
    t.Weights(k, in, up.data(), down.data());
    for (int c = 0; c < 3; ++c) {
      double s = 0, dev = 0;
      for (int i = 0; i < n; ++i) {
        const std::size_t j = static_cast<std::size_t>(c * n + i);
        s += up[j];
        dev = std::max(dev, std::abs(up[j] - 1.0));
        CHECK(up[j] + down[j] == doctest::Approx(2.0));
      }
      INFO(nu.name, " class ", c);
      CHECK(s / n == doctest::Approx(1.0).epsilon(2e-4));
      if (nu.bosons[c]) {
        CHECK(dev > 1e-3);  // it does something
        CHECK(dev < 0.15);  // and stays a modest reweighting
      } else {
        CHECK(dev == 0.0);
      }
    }
  }
}

TEST_CASE("events without a varied boson keep weight 1; bad ranges throw") {
  const TheoryVariations t(TheoryConfig::Full());
  EventBatch b = OneEvent(Process::kNonPrompt, 0, NAN, NAN, NAN, NAN, NAN);
  b.Append(OneEvent(Process::kTop, 1, 80.0, 40.0, 0.3, 0.2, 0.1));
  TheoryInputs in;
  t.Prepare(b, 0, b.size(), &in);
  std::vector<double> up(2), down(2);
  for (std::size_t k = 0; k < t.size(); ++k) {
    t.Weights(k, in, up.data(), down.data());
    CHECK(up[0] == 1.0);
    CHECK(up[1] == 1.0);
    CHECK(down[0] == 1.0);
    CHECK_FALSE(t.Acts(k, in, 0));
  }
  CHECK_THROWS_AS(t.Prepare(b, 1, 3, &in), std::invalid_argument);
  // W -> tau nu follows the charge of its boson.
  CHECK(ClassifyBoson(Process::kWTauNu, -1) == BosonClass::kWminus);
  CHECK(ClassifyBoson(Process::kZTauTau, 0) == BosonClass::kZ);
}

TEST_CASE("all variations give finite positive weights on generated W and Z events") {
  const TheoryVariations t(TheoryConfig::Full());
  EventBatch b = GenLevel(Process::kWplusMuNu, 20000, 3, GeneratorParams::Simulation());
  b.Append(GenLevel(Process::kZMuMu, 20000, 4, GeneratorParams::Simulation()));
  TheoryInputs in;
  t.Prepare(b, 0, b.size(), &in);
  std::vector<double> up(b.size()), down(b.size());
  for (std::size_t k = 0; k < t.size(); ++k) {
    t.Weights(k, in, up.data(), down.data());
    double lo = 1e9, hi = -1e9;
    for (std::size_t j = 0; j < b.size(); ++j) {
      lo = std::min({lo, up[j], down[j]});
      hi = std::max({hi, up[j], down[j]});
    }
    INFO(t.nuisances()[k].name);
    CHECK(std::isfinite(lo));
    CHECK(lo > 0.0);
    CHECK(hi < 20.0);  // BW weights in the far tails can be a few; everything else is near 1
  }
}
