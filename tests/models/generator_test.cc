// The parametric generator against its analytic inputs: the Breit-Wigner line shape (mean and
// width from a numerical integration of the truncated running-width density), the angular
// coefficients recovered by the moments method, the Collins-Soper frame (recomputed from the lab
// leptons by an independent boost), rapidity widths, rates; and its determinism: identical
// events at any thread count and batch size, and truth changes that touch only what they should.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/models/generator.h"

namespace {

using namespace lepus::models;

constexpr double kPi = 3.14159265358979323846;

bool BitEqual(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Generator-level W+ / Z sample without detector effects or filter.
EventBatch GenLevel(Process p, std::uint64_t n, std::uint64_t seed = 7,
                    const GeneratorParams& physics = {}) {
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

struct Moments {
  double mean = 0, var = 0, m4 = 0;  // central moments
};

// Moments of the truncated running-width Breit-Wigner by Simpson integration on a fine grid.
Moments BreitWignerMoments(double mass, double width, double lo, double hi) {
  const int n = 400000;  // even
  const double h = (hi - lo) / n;
  double s0 = 0, s1 = 0;
  for (int i = 0; i <= n; ++i) {
    const double m = lo + i * h;
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    const double f = w * BreitWigner(m, mass, width);
    s0 += f;
    s1 += f * m;
  }
  Moments r;
  r.mean = s1 / s0;
  double s2 = 0, s4 = 0;
  for (int i = 0; i <= n; ++i) {
    const double m = lo + i * h;
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    const double f = w * BreitWigner(m, mass, width);
    const double d = m - r.mean;
    s2 += f * d * d;
    s4 += f * d * d * d * d;
  }
  r.var = s2 / s0;
  r.m4 = s4 / s0;
  return r;
}

void CheckLineShape(Process p, double mass, double width, double lo, double hi) {
  const EventBatch b = GenLevel(p, 300000);
  const Moments truth = BreitWignerMoments(mass, width, lo, hi);
  const double n = static_cast<double>(b.size());
  double mean = 0;
  for (double m : b.v_mass) mean += m;
  mean /= n;
  double var = 0;
  for (double m : b.v_mass) var += (m - mean) * (m - mean);
  var /= n - 1;
  const double mean_err = std::sqrt(truth.var / n);
  const double var_err = std::sqrt((truth.m4 - truth.var * truth.var) / n);
  CAPTURE(ToString(p));
  CAPTURE(mean);
  CAPTURE(truth.mean);
  CAPTURE(var);
  CAPTURE(truth.var);
  CHECK(std::abs(mean - truth.mean) < 4 * mean_err);
  CHECK(std::abs(var - truth.var) < 4 * var_err);
  CHECK(*std::min_element(b.v_mass.begin(), b.v_mass.end()) >= lo);
  CHECK(*std::max_element(b.v_mass.begin(), b.v_mass.end()) <= hi);
  // The core: fraction within one width of the pole, against the integral.
  const int steps = 200000;
  double in = 0, all = 0;
  for (int i = 0; i < steps; ++i) {
    const double m = lo + (i + 0.5) * (hi - lo) / steps;
    const double f = BreitWigner(m, mass, width);
    all += f;
    if (std::abs(m - mass) < width) in += f;
  }
  const double frac_truth = in / all;
  const double frac = std::count_if(b.v_mass.begin(), b.v_mass.end(),
                                    [&](double m) { return std::abs(m - mass) < width; }) /
                      n;
  CHECK(std::abs(frac - frac_truth) < 4 * std::sqrt(frac_truth * (1 - frac_truth) / n));
}

}  // namespace

TEST_CASE("defaults are valid") {
  std::string error;
  CHECK(GeneratorParams::Simulation().IsValid(&error));
  CHECK(GeneratorParams::DefaultData().IsValid(&error));
  CHECK(GeneratorConfig{}.IsValid(&error));
  CHECK(GeneratorConfig::DefaultData().IsValid(&error));
  CHECK(error.empty());
}

TEST_CASE("invalid parameters are named") {
  std::string error;
  GeneratorParams p;
  p.w_width = -1;
  CHECK_FALSE(p.IsValid(&error));
  CHECK(error.find("w_width is -1, but must be") != std::string::npos);
  p = {};
  p.a_scale[4] = 1.6;  // A4 too large: the density goes negative backwards
  CHECK_FALSE(p.IsValid(&error));
  CHECK(error.find("angular density negative") != std::string::npos);
  GeneratorConfig c;
  c.processes = {Process::kZMuMu, Process::kZMuMu};
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("processes[1] is zmumu") != std::string::npos);
  c = {};
  c.physics.z_mass_min = 95;
  CHECK_FALSE(c.IsValid(&error));
  CHECK(error.find("physics.z_mass_min is 95") != std::string::npos);
  CHECK_THROWS_AS(Generator{c}, std::invalid_argument);
}

TEST_CASE("process names round trip") {
  for (Process p : kAllProcesses) CHECK(ProcessFromString(ToString(p)) == p);
  CHECK_THROWS_WITH_AS(ProcessFromString("wmunu"), doctest::Contains("unknown process 'wmunu'"),
                       std::invalid_argument);
  CHECK(SampleKindFromString("data") == SampleKind::kData);
}

TEST_CASE("Breit-Wigner line shapes match the truncated running-width density") {
  const GeneratorParams p;
  CheckLineShape(Process::kWplusMuNu, p.w_mass, p.w_width, p.w_mass_min, p.w_mass_max);
  CheckLineShape(Process::kZMuMu, p.z_mass, p.z_width, p.z_mass_min, p.z_mass_max);
}

TEST_CASE("angular coefficients are recovered by the moments method") {
  // Moment weights of A0..A7 (reference section 2); A0 = 4 - 10 <c^2> is the affine one.
  auto weights = [](double c, double phi) {
    const double s = std::sqrt(std::max(0.0, 1 - c * c));
    const double s2t = 2 * s * c;
    return std::array<double, 8>{-10 * c * c,
                                 5 * s2t * std::cos(phi),
                                 10 * s * s * std::cos(2 * phi),
                                 4 * s * std::cos(phi),
                                 4 * c,
                                 5 * s * s * std::sin(2 * phi),
                                 5 * s2t * std::sin(phi),
                                 4 * s * std::sin(phi)};
  };
  const GeneratorParams params;
  for (Process proc : {Process::kWplusMuNu, Process::kWminusMuNu, Process::kZMuMu}) {
    const EventBatch b = GenLevel(proc, 250000, 11);
    const int charge = proc == Process::kZMuMu ? 0 : (proc == Process::kWplusMuNu ? 1 : -1);
    struct Bin {
      double pt_lo, pt_hi, y_lo, y_hi;
    };
    for (const Bin& bin :
         {Bin{0, 6, 0, 1}, Bin{0, 6, 1.6, 3.0}, Bin{9.7, 21.4, 0.4, 2.0}, Bin{21.4, 100, 0, 2.4}}) {
      std::array<double, 8> sum{}, sum2{}, expect{};
      double n = 0;
      for (std::size_t i = 0; i < b.size(); ++i) {
        const double pt = b.v_pt[i], ay = std::abs(b.v_y[i]);
        if (pt < bin.pt_lo || pt >= bin.pt_hi || ay < bin.y_lo || ay >= bin.y_hi) continue;
        const auto w = weights(b.cos_theta_cs[i], b.phi_cs[i]);
        const auto a = AngularCoefficients(params, charge, pt, ay);
        for (int k = 0; k < 8; ++k) {
          sum[k] += w[k];
          sum2[k] += w[k] * w[k];
          expect[k] += a[k];
        }
        n += 1;
      }
      REQUIRE(n > 5000);
      for (int k = 0; k < 8; ++k) {
        const double mean = sum[k] / n;
        const double err = std::sqrt((sum2[k] / n - mean * mean) / n);
        const double measured = k == 0 ? 4 + mean : mean;
        const double truth = expect[k] / n;
        CAPTURE(ToString(proc));
        CAPTURE(bin.pt_lo);
        CAPTURE(bin.y_lo);
        CAPTURE(k);
        CAPTURE(measured);
        CAPTURE(truth);
        CAPTURE(err);
        CHECK(std::abs(measured - truth) < 4 * err);
      }
    }
  }
  // The A_i of the model: Lam-Tung, A4 same sign for both W charges, small for Z.
  const auto wp = AngularCoefficients(params, +1, 20, 2.0);
  const auto wm = AngularCoefficients(params, -1, 20, 2.0);
  const auto z = AngularCoefficients(params, 0, 20, 2.0);
  CHECK(wp[0] == wp[2]);
  CHECK(wp[4] > 0.8);
  CHECK(wm[4] > 0.8);
  CHECK(std::abs(z[4]) < 0.15);
  CHECK(AngularCoefficients(params, +1, 0, 0)[4] == 0.0);
  CHECK(std::abs(wp[1]) < 0.1);
  CHECK(std::abs(wp[3]) < 0.1);
}

TEST_CASE("Collins-Soper angles agree with an independent reconstruction from the leptons") {
  // Z -> mu mu (fermion = mu-) and W- (fermion = mu-, the neutrino is the rest of the boson).
  const EventBatch b = GenLevel(Process::kZMuMu, 4000, 3);
  int checked = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (b.n_muons[i] != 2) continue;
    const int neg = b.muon[0].charge[i] < 0 ? 0 : 1;
    auto four = [&](int s) {
      const double pt = b.muon[s].pt[i], eta = b.muon[s].eta[i], phi = b.muon[s].phi[i];
      return std::array<double, 4>{pt * std::cos(phi), pt * std::sin(phi), pt * std::sinh(eta),
                                   pt * std::cosh(eta)};
    };
    const auto l1 = four(neg), l2 = four(1 - neg);
    std::array<double, 4> q;
    for (int k = 0; k < 4; ++k) q[k] = l1[k] + l2[k];
    const double qm = std::sqrt(q[3] * q[3] - q[0] * q[0] - q[1] * q[1] - q[2] * q[2]);
    const double qt = std::hypot(q[0], q[1]);
    // cos(theta_CS) = sign(Qz) 2 (l1+ l2- - l1- l2+) / (Q sqrt(Q^2 + QT^2)), l+- = (E +- pz)/sqrt2
    const double l1p = (l1[3] + l1[2]) / std::sqrt(2.0), l1m = (l1[3] - l1[2]) / std::sqrt(2.0);
    const double l2p = (l2[3] + l2[2]) / std::sqrt(2.0), l2m = (l2[3] - l2[2]) / std::sqrt(2.0);
    const double cos_cs =
        (q[2] >= 0 ? 1 : -1) * 2 * (l1p * l2m - l1m * l2p) / (qm * std::sqrt(qm * qm + qt * qt));
    // phi: boost everything to the rest frame along Q, axes from the beams.
    const double bx = q[0] / q[3], by = q[1] / q[3], bz = q[2] / q[3];
    const double b2 = bx * bx + by * by + bz * bz, gamma = 1 / std::sqrt(1 - b2);
    auto boost = [&](const std::array<double, 4>& p) {
      const double bp = bx * p[0] + by * p[1] + bz * p[2];
      const double f = (gamma - 1) * bp / b2 - gamma * p[3];
      return std::array<double, 3>{p[0] + f * bx, p[1] + f * by, p[2] + f * bz};
    };
    auto unit = [](std::array<double, 3> v) {
      const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
      return std::array<double, 3>{v[0] / n, v[1] / n, v[2] / n};
    };
    const auto a = unit(boost({0, 0, 1, 1})), c = unit(boost({0, 0, -1, 1}));
    auto z = unit({a[0] - c[0], a[1] - c[1], a[2] - c[2]});
    const auto x = unit({-(a[0] + c[0]), -(a[1] + c[1]), -(a[2] + c[2])});
    if (q[2] < 0) z = {-z[0], -z[1], -z[2]};
    const std::array<double, 3> y = {z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2],
                                     z[0] * x[1] - z[1] * x[0]};
    const auto d = unit(boost(l1));
    const double cz = d[0] * z[0] + d[1] * z[1] + d[2] * z[2];
    const double phi = std::atan2(d[0] * y[0] + d[1] * y[1] + d[2] * y[2],
                                  d[0] * x[0] + d[1] * x[1] + d[2] * x[2]);
    CAPTURE(i);
    CHECK(cos_cs == doctest::Approx(b.cos_theta_cs[i]).epsilon(1e-7));
    CHECK(cz == doctest::Approx(b.cos_theta_cs[i]).epsilon(1e-7));
    double dphi = std::remainder(phi - b.phi_cs[i], 2 * kPi);
    CHECK(std::abs(dphi) < 1e-6);
    CHECK(qm == doctest::Approx(b.v_mass[i]).epsilon(1e-9));
    CHECK(qt == doctest::Approx(b.v_pt[i]).epsilon(1e-9));
    ++checked;
  }
  CHECK(checked > 500);
}

TEST_CASE("rapidity widths, pT law and rates") {
  const GeneratorParams p;
  auto truncated_sigma = [&](double sigma) {
    const double a = p.y_max / sigma;
    const double phi = std::exp(-0.5 * a * a) / std::sqrt(2 * kPi);
    return sigma * std::sqrt(1 - 2 * a * phi / std::erf(a / std::sqrt(2.0)));
  };
  for (auto [proc, sigma] : {std::pair{Process::kWplusMuNu, p.y_sigma_wplus},
                             std::pair{Process::kWminusMuNu, p.y_sigma_wminus},
                             std::pair{Process::kZMuMu, p.y_sigma_z}}) {
    const EventBatch b = GenLevel(proc, 100000, 5);
    const double n = static_cast<double>(b.size());
    double s2 = 0, mean = 0;
    for (double y : b.v_y) {
      s2 += y * y;
      mean += y;
    }
    const double sd = std::sqrt(s2 / n);
    const double expect = truncated_sigma(sigma);
    const std::string proc_name = ToString(proc);  // clang 14 (make sanitize) cannot capture
    CAPTURE(proc_name);                            // a structured binding in CAPTURE's lambda
    CHECK(std::abs(mean / n) < 4 * expect / std::sqrt(n));
    CHECK(std::abs(sd - expect) < 4 * expect / std::sqrt(2 * n));
    // pT: F(pT) = pT^2 / (pT^2 + p0^2), truncated at pt_max; test the median.
    const double p0 = proc == Process::kZMuMu ? p.pt_p0_z : p.pt_p0_w;
    const double umax = p.pt_max * p.pt_max / (p.pt_max * p.pt_max + p0 * p0);
    const double u = 0.5 * umax;
    const double median = p0 * std::sqrt(u / (1 - u));
    const double below =
        std::count_if(b.v_pt.begin(), b.v_pt.end(), [&](double x) { return x < median; }) / n;
    CHECK(std::abs(below - 0.5) < 4 * 0.5 / std::sqrt(n));
  }
  // Simulation: events shared by rate, weights sum to rate x luminosity.
  GeneratorConfig c;
  c.num_events = 206000;
  Generator g(c);
  CHECK(g.NumEvents(Process::kWplusMuNu) == 118000);
  CHECK(g.NumEvents(Process::kWminusMuNu) == 88000);
  CHECK(g.NumEvents(Process::kWplusMuNu) * g.EventWeight(Process::kWplusMuNu) ==
        doctest::Approx(11800.0 * c.luminosity_pb));
  // Data: Poisson counts around rate x luminosity, with the data's yield factors.
  GeneratorConfig d = GeneratorConfig::DefaultData();
  d.processes = {Process::kWplusMuNu, Process::kWminusMuNu, Process::kNonPrompt};
  d.luminosity_pb = 10.0;
  Generator gd(d);
  const double exp_plus = 11800 * 10.0, exp_minus = 8800 * 10.0, exp_np = 35000 * 1.15 * 10.0;
  CHECK(std::abs(gd.NumEvents(Process::kWplusMuNu) - exp_plus) < 5 * std::sqrt(exp_plus));
  CHECK(std::abs(gd.NumEvents(Process::kWminusMuNu) - exp_minus) < 5 * std::sqrt(exp_minus));
  CHECK(std::abs(gd.NumEvents(Process::kNonPrompt) - exp_np) < 5 * std::sqrt(exp_np));
  const double ratio =
      static_cast<double>(gd.NumEvents(Process::kWplusMuNu)) / gd.NumEvents(Process::kWminusMuNu);
  CHECK(ratio == doctest::Approx(11.8 / 8.8).epsilon(0.02));
  CHECK(gd.EventWeight(Process::kWplusMuNu) == 1.0);
}

TEST_CASE("every process generates sane events") {
  GeneratorConfig c;
  c.processes.assign(kAllProcesses.begin(), kAllProcesses.end());
  c.num_events = 80000;
  Generator g(c);
  for (Process p : kAllProcesses) {
    EventBatch b;
    g.Generate(p, 0, 3000, &b);
    CAPTURE(ToString(p));
    REQUIRE(b.Consistent());
    REQUIRE(b.size() == 3000);  // no filter in simulation
    int with_muon = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
      CHECK(b.process[i] == p);
      REQUIRE(b.n_muons[i] >= 0);
      REQUIRE(b.n_muons[i] <= 2);
      for (int s = 0; s < b.n_muons[i]; ++s) {
        const MuonColumns& m = b.muon[s];
        REQUIRE(std::abs(m.eta[i]) < 2.4);
        REQUIRE(m.pt[i] >= 5.0);
        REQUIRE(std::abs(m.charge[i]) == 1);
        REQUIRE(m.gen_charge[i] == m.charge[i]);
        REQUIRE(m.rel_iso[i] >= 0.0);
        REQUIRE(m.eff_trigger[i] >= 0.0);
        REQUIRE(m.eff_trigger[i] <= 1.0);
      }
      if (b.n_muons[i] == 2) REQUIRE(b.muon[0].pt[i] >= b.muon[1].pt[i]);
      if (b.n_muons[i] < 2) REQUIRE(std::isnan(b.muon[1].pt[i]));
      with_muon += b.n_muons[i] > 0;
      // MET = -(muons + u_T)
      double sx = b.ut_x[i], sy = b.ut_y[i];
      for (int s = 0; s < b.n_muons[i]; ++s) {
        sx += b.muon[s].pt[i] * std::cos(b.muon[s].phi[i]);
        sy += b.muon[s].pt[i] * std::sin(b.muon[s].phi[i]);
      }
      REQUIRE(b.met_pt[i] == doctest::Approx(std::hypot(sx, sy)));
      if (p == Process::kNonPrompt) {
        REQUIRE(std::isnan(b.v_mass[i]));
        REQUIRE(b.v_charge[i] == 0);
      } else {
        REQUIRE(b.v_mass[i] > 40.0);
      }
    }
    CHECK(with_muon > 300);
  }
  // Charges of the signal muons and the W+ fermion convention (mu+ opposite to the neutrino).
  EventBatch wp;
  g.Generate(Process::kWplusMuNu, 0, 2000, &wp);
  for (std::size_t i = 0; i < wp.size(); ++i)
    if (wp.n_muons[i] == 1) REQUIRE(wp.muon[0].charge[i] == 1);
}

TEST_CASE("identical output at any thread count and batch size") {
  GeneratorConfig c;
  c.processes = {Process::kWplusMuNu, Process::kZMuMu, Process::kZTauTau, Process::kNonPrompt};
  c.num_events = 30000;
  c.seed = 99;
  c.filter = {1, 20.0};
  Generator g(c);
  EventBatch serial, parallel;
  for (Process p : c.processes) {
    g.Generate(p, 0, g.NumEvents(p), &serial);
    g.GenerateParallel(p, 0, g.NumEvents(p), &parallel, 2);
  }
  REQUIRE(serial.size() > 5000);
  CHECK(serial.Identical(parallel));
  for (int threads : {1, 2}) {
    for (std::size_t batch_size : {1000u, 7777u, 100000u}) {
      auto source = MakeGeneratorSource(c, threads);
      EventBatch all, batch;
      while (source->Next(&batch, batch_size) > 0) {
        CHECK(batch.size() <= batch_size);
        all.Append(batch);
      }
      CAPTURE(threads);
      CAPTURE(batch_size);
      CHECK(source->Position() == source->SizeHint());
      CHECK(all.Identical(serial));
    }
  }
  // A sub-range is the same events as in the full range.
  EventBatch part;
  g.Generate(Process::kWplusMuNu, 1000, 500, &part);
  REQUIRE(part.size() > 0);
  const auto it =
      std::find(serial.event_number.begin(), serial.event_number.end(), part.event_number[0]);
  const std::size_t at = static_cast<std::size_t>(it - serial.event_number.begin());
  CHECK(serial.muon[0].pt[at] == part.muon[0].pt[0]);
  // A different seed gives different events.
  c.seed = 100;
  EventBatch other;
  Generator(c).Generate(Process::kWplusMuNu, 0, 100, &other);
  CHECK(other.v_mass[0] != serial.v_mass[0]);
}

TEST_CASE("truth changes act only where intended") {
  GeneratorConfig c;
  c.processes = {Process::kWplusMuNu};
  c.num_events = 20000;
  EventBatch nominal, shifted, scaled;
  Generator(c).Generate(Process::kWplusMuNu, 0, 20000, &nominal);

  SUBCASE("W mass: only the mass and what derives from the lepton momenta") {
    GeneratorConfig s = c;
    s.physics.w_mass += 0.1;
    Generator(s).Generate(Process::kWplusMuNu, 0, 20000, &shifted);
    REQUIRE(shifted.size() == nominal.size());
    CHECK(shifted.v_pt == nominal.v_pt);
    CHECK(shifted.v_y == nominal.v_y);
    CHECK(shifted.v_phi == nominal.v_phi);
    CHECK(shifted.cos_theta_cs == nominal.cos_theta_cs);
    CHECK(shifted.phi_cs == nominal.phi_cs);
    int mass_changed = 0;
    for (std::size_t i = 0; i < nominal.size(); ++i)
      mass_changed += shifted.v_mass[i] != nominal.v_mass[i];
    CHECK(mass_changed > 1000);
    double mean_nominal = 0, mean_shifted = 0;
    for (std::size_t i = 0; i < nominal.size(); ++i) {
      mean_nominal += nominal.v_mass[i];
      mean_shifted += shifted.v_mass[i];
    }
    CHECK((mean_shifted - mean_nominal) / nominal.size() == doctest::Approx(0.1).epsilon(0.3));
  }
  SUBCASE("momentum scale: only the reconstructed pT and MET") {
    GeneratorConfig s = c;
    for (auto& b : s.detector.scale_bias) b.A = 1e-3;
    Generator(s).Generate(Process::kWplusMuNu, 0, 20000, &scaled);
    REQUIRE(scaled.size() == nominal.size());
    CHECK(scaled.v_mass == nominal.v_mass);
    CHECK(BitEqual(scaled.muon[0].gen_pt, nominal.muon[0].gen_pt));
    CHECK(BitEqual(scaled.muon[0].eta, nominal.muon[0].eta));
    CHECK(scaled.ut_x == nominal.ut_x);
    for (std::size_t i = 0; i < nominal.size(); ++i)
      if (nominal.n_muons[i] == 1) {
        // k' = k (1 + A): pT' = pT / (1 + A) exactly (the smearing draw is the same).
        REQUIRE(scaled.muon[0].pt[i] ==
                doctest::Approx(nominal.muon[0].pt[i] / 1.001).epsilon(1e-12));
        REQUIRE(scaled.muon[0].rel_iso[i] == nominal.muon[0].rel_iso[i]);
      }
  }
  SUBCASE("data: a subset of the simulation's events, efficiencies as outcomes") {
    GeneratorConfig d = GeneratorConfig::DefaultData();
    d.processes = {Process::kWplusMuNu};
    d.luminosity_pb = 2.0;  // ~23600 events
    Generator gd(d);
    const DetectorModel sim_det(c.detector);
    EventBatch data;
    gd.Generate(Process::kWplusMuNu, 0, 20000, &data);
    REQUIRE(data.size() > 1000);
    CHECK(data.size() < nominal.size());
    std::size_t j = 0;
    int checked = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
      while (nominal.event_number[j] < data.event_number[i]) ++j;
      REQUIRE(nominal.event_number[j] == data.event_number[i]);
      REQUIRE(data.weight[i] == 1.0);
      REQUIRE(data.n_muons[i] >= 1);
      REQUIRE(data.v_pt[i] == nominal.v_pt[j]);
      REQUIRE(data.cos_theta_cs[i] == nominal.cos_theta_cs[j]);
      REQUIRE(data.muon[0].eff_reco[i] == 1.0);
      const double trig = data.muon[0].eff_trigger[i];
      REQUIRE((trig == 0.0 || trig == 1.0));
      REQUIRE(data.muon[0].eff_iso[i] == (data.muon[0].rel_iso[i] < kIsoCut ? 1.0 : 0.0));
      // Same smearing draw g (recovered from the unbiased simulation): the data's reco pT is the
      // generated one with the hidden bias and the same draw, k = (1 + dk/k)(1 + sigma g) / pT.
      if (nominal.n_muons[j] == 1 && data.n_muons[i] == 1) {
        const MuonColumns &md = data.muon[0], &mn = nominal.muon[0];
        const double g =
            (mn.gen_pt[j] / mn.pt[j] - 1) / sim_det.RelativeResolution(mn.gen_pt[j], mn.eta[j]);
        const ScaleBias& bias = d.detector.scale_bias[ScaleEtaBin(md.eta[i])];
        const double expect =
            md.gen_pt[i] / ((1 + CurvatureShift(bias, md.gen_pt[i], md.charge[i])) *
                            (1 + sim_det.RelativeResolution(md.gen_pt[i], md.eta[i]) * g));
        REQUIRE(md.pt[i] == doctest::Approx(expect).epsilon(1e-9));
        ++checked;
      }
    }
    CHECK(checked > 1000);
  }
}
