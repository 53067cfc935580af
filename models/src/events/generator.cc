#include "lepus/models/generator.h"

#include "lepus/models/internal/validation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <nlohmann/json.hpp>

#include "lepus/models/internal/random.h"

namespace lepus::models {

using detail::EventRandom;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTwoPi = 2.0 * kPi;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Events per parallel task: fixed, so the work split never depends on the thread count.
constexpr std::uint64_t kSubRange = 2048;

using detail::Fail;

// ---- line shape: exact accept-reject from a truncated Cauchy (fixed-width BW) proposal.
class MassSampler {
 public:
  MassSampler() = default;
  MassSampler(double mass, double width, double lo, double hi)
      : mass_(mass), width_(width), half_(0.5 * width) {
    t_lo_ = std::atan((lo - mass) / half_);
    t_span_ = std::atan((hi - mass) / half_) - t_lo_;
    // The ratio target / proposal is smooth on the scale of the width: its maximum on a fine grid
    // (steps far below the width) with a small margin bounds it.
    constexpr int kGrid = 20000;
    double rmax = 0.0;
    for (int i = 0; i <= kGrid; ++i) {
      const double t = t_lo_ + t_span_ * i / kGrid;
      rmax = std::max(rmax, Ratio(mass_ + half_ * std::tan(t)));
    }
    for (double m : {lo, hi}) rmax = std::max(rmax, Ratio(m));
    rmax_ = rmax * 1.002;
  }
  double Sample(EventRandom& r) const noexcept {
    for (;;) {
      const double m = mass_ + half_ * std::tan(t_lo_ + t_span_ * r.Uniform());
      if (r.Uniform() * rmax_ <= Ratio(m)) return m;
    }
  }

 private:
  double Ratio(double m) const noexcept {
    const double d = m - mass_;
    return BreitWigner(m, mass_, width_) * (d * d + half_ * half_);
  }
  double mass_ = 0.0, width_ = 0.0, half_ = 0.0, t_lo_ = 0.0, t_span_ = 0.0, rmax_ = 0.0;
};

// ---- boson production shapes
enum class AngularModel { kStandard, kTop };
struct BosonShape {
  const MassSampler* mass = nullptr;
  double y_sigma = 2.0;
  double y_max = 5.0;
  double p0 = 6.0;
  double u_max = 1.0;  // CDF of the pT law at pt_max
  AngularModel angular = AngularModel::kStandard;
  double extra_invisible_sigma = 0.0;  // GeV per component
};

BosonShape MakeShape(const MassSampler* mass, double y_sigma, double y_max, double p0,
                     double pt_max, AngularModel angular, double extra) {
  BosonShape s;
  s.mass = mass;
  s.y_sigma = y_sigma;
  s.y_max = y_max;
  s.p0 = p0;
  s.u_max = pt_max * pt_max / (pt_max * pt_max + p0 * p0);
  s.angular = angular;
  s.extra_invisible_sigma = extra;
  return s;
}

struct Vec4 {
  double px = 0, py = 0, pz = 0, e = 0;
};

struct GenMuon {
  double pt = 0, eta = 0, phi = 0;
  int charge = 0;
};

struct Truth {
  bool has_boson = false;
  double m = kNaN, pt = kNaN, y = kNaN, phi = kNaN, cos = kNaN, phi_cs = kNaN;
  int v_charge = 0;
  int nmu = 0;
  GenMuon mu[2];
  bool nonprompt = false;
  double nonprompt_iso = 0.0;
  double recoil_x = 0.0, recoil_y = 0.0;  // true hadronic recoil
};

GenMuon FromVec(const Vec4& v, int charge, double fraction = 1.0) {
  GenMuon m;
  const double px = v.px * fraction, py = v.py * fraction, pz = v.pz * fraction;
  m.pt = std::hypot(px, py);
  m.eta = std::asinh(pz / m.pt);
  m.phi = std::atan2(py, px);
  m.charge = charge;
  return m;
}

// Massless back-to-back leptons in the CS frame (angles of the positive-PDG-id fermion),
// boosted to the lab: transverse boost along x (boson pT direction), rotation by phi_V,
// longitudinal boost by y. For y < 0 the CS z and y axes are reversed.
void Decay(double m, double pt, double y, double phi_v, double c, double phi_cs, Vec4* fermion,
           Vec4* antifermion) {
  const double s = std::sqrt(std::max(0.0, 1.0 - c * c));
  double dx = s * std::cos(phi_cs), dy = s * std::sin(phi_cs), dz = c;
  if (y < 0.0) {
    dy = -dy;
    dz = -dz;
  }
  const double half = 0.5 * m;
  const double gamma = std::sqrt(m * m + pt * pt) / m, beta_gamma = pt / m;
  const double cp = std::cos(phi_v), sp = std::sin(phi_v);
  const double ch = std::cosh(y), sh = std::sinh(y);
  for (int sign : {+1, -1}) {
    const double px0 = sign * half * dx, py0 = sign * half * dy, pz0 = sign * half * dz;
    const double e1 = gamma * half + beta_gamma * px0;
    const double px1 = gamma * px0 + beta_gamma * half;
    Vec4 v;
    v.px = px1 * cp - py0 * sp;
    v.py = px1 * sp + py0 * cp;
    v.pz = pz0 * ch + e1 * sh;
    v.e = e1 * ch + pz0 * sh;
    *(sign > 0 ? fermion : antifermion) = v;
  }
}

// Poisson deviate: multiplication method for small means, PTRS (Hoermann 1993) otherwise.
std::uint64_t Poisson(double mean, EventRandom& r) {
  if (mean <= 0.0) return 0;
  if (mean < 10.0) {
    const double limit = std::exp(-mean);
    double prod = r.Uniform();
    std::uint64_t k = 0;
    while (prod > limit) {
      prod *= r.Uniform();
      ++k;
    }
    return k;
  }
  const double slam = std::sqrt(mean), loglam = std::log(mean);
  const double b = 0.931 + 2.53 * slam;
  const double a = -0.059 + 0.02483 * b;
  const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const double vr = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double u = r.Uniform() - 0.5;
    const double v = r.Uniform();
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2.0 * a / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= vr) return static_cast<std::uint64_t>(k);
    if (k < 0.0 || (us < 0.013 && v > us)) continue;
    if (std::log(v) + std::log(invalpha) - std::log(a / (us * us) + b) <=
        -mean + k * loglam - std::lgamma(k + 1.0))
      return static_cast<std::uint64_t>(k);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parameters

GeneratorParams GeneratorParams::Simulation() { return GeneratorParams{}; }

GeneratorParams GeneratorParams::DefaultData() {
  GeneratorParams p;
  p.w_mass -= 0.030;
  p.yield_factor[static_cast<int>(Process::kNonPrompt)] = 1.15;
  return p;
}

bool GeneratorParams::IsValid(std::string* error) const {
  const std::pair<const char*, double> positive[] = {
      {"w_mass", w_mass},
      {"w_width", w_width},
      {"z_mass", z_mass},
      {"z_width", z_width},
      {"y_sigma_wplus", y_sigma_wplus},
      {"y_sigma_wminus", y_sigma_wminus},
      {"y_sigma_z", y_sigma_z},
      {"y_max", y_max},
      {"pt_p0_w", pt_p0_w},
      {"pt_p0_z", pt_p0_z},
      {"pt_max", pt_max},
      {"nonprompt_pt_min", nonprompt_pt_min},
      {"nonprompt_iso_mean", nonprompt_iso_mean},
      {"nonprompt_recoil_sigma", nonprompt_recoil_sigma}};
  for (const auto& [name, v] : positive)
    if (!(v > 0.0 && std::isfinite(v))) return Fail(error, name, v, "> 0 and finite");
  if (!(w_mass_min > 0.0 && w_mass_min < w_mass))
    return Fail(error, "w_mass_min", w_mass_min, "in (0, w_mass)");
  if (!(w_mass_max > w_mass && std::isfinite(w_mass_max)))
    return Fail(error, "w_mass_max", w_mass_max, "> w_mass and finite");
  if (!(z_mass_min > 0.0 && z_mass_min < z_mass))
    return Fail(error, "z_mass_min", z_mass_min, "in (0, z_mass)");
  if (!(z_mass_max > z_mass && std::isfinite(z_mass_max)))
    return Fail(error, "z_mass_max", z_mass_max, "> z_mass and finite");
  if (!(nonprompt_pt_index > 1.0 && std::isfinite(nonprompt_pt_index)))
    return Fail(error, "nonprompt_pt_index", nonprompt_pt_index, "> 1");
  if (!(nonprompt_pt_min < 200.0))
    return Fail(error, "nonprompt_pt_min", nonprompt_pt_min, "< 200 GeV");
  for (int i = 0; i < kNumProcesses; ++i) {
    const std::string p = ToString(static_cast<Process>(i));
    if (!(cross_section_pb[i] > 0.0 && std::isfinite(cross_section_pb[i])))
      return Fail(error, "cross_section_pb[" + p + "]", cross_section_pb[i], "> 0");
    if (!(yield_factor[i] > 0.0 && std::isfinite(yield_factor[i])))
      return Fail(error, "yield_factor[" + p + "]", yield_factor[i], "> 0");
  }
  for (int i = 0; i < 8; ++i)
    if (!(std::abs(a_scale[i]) <= 10.0))
      return Fail(error, "a_scale[" + std::to_string(i) + "]", a_scale[i], "in [-10, 10]");
  // The angular density must be non-negative everywhere (accept-reject needs it): check a grid
  // of (pT, |y|) and of directions, with a little tolerance for the grid.
  std::vector<std::array<double, 9>> polys;
  for (int ic = 0; ic <= 40; ++ic)
    for (int ip = 0; ip < 24; ++ip)
      polys.push_back(AngularPolynomials(-1.0 + ic / 20.0, -kPi + kTwoPi * ip / 24.0));
  for (int charge : {-1, 0, 1})
    for (double pt : {0.0, 1.0, 3.0, 6.0, 10.0, 20.0, 40.0, 70.0, 100.0, 200.0, 400.0})
      for (double ay = 0.0; ay <= y_max + 1e-9; ay += 0.25) {
        const auto a = AngularCoefficients(*this, charge, pt, ay);
        for (const auto& p : polys) {
          double f = p[0];
          for (int i = 0; i < 8; ++i) f += a[i] * p[i + 1];
          if (f < -1e-9) {
            if (error != nullptr) {
              std::ostringstream os;
              os << "a_scale makes the angular density negative (" << f << ") at charge " << charge
                 << ", pT " << pt << " GeV, |y| " << ay << ", but it must be >= 0 everywhere";
              *error = os.str();
            }
            return false;
          }
        }
      }
  return true;
}

std::string GeneratorParams::ToJson() const {
  nlohmann::ordered_json j;
  j["w_mass"] = w_mass;
  j["w_width"] = w_width;
  j["z_mass"] = z_mass;
  j["z_width"] = z_width;
  j["w_mass_window"] = {w_mass_min, w_mass_max};
  j["z_mass_window"] = {z_mass_min, z_mass_max};
  j["y_sigma_wplus"] = y_sigma_wplus;
  j["y_sigma_wminus"] = y_sigma_wminus;
  j["y_sigma_z"] = y_sigma_z;
  j["y_max"] = y_max;
  j["pt_p0_w"] = pt_p0_w;
  j["pt_p0_z"] = pt_p0_z;
  j["pt_max"] = pt_max;
  j["a_scale"] = a_scale;
  nlohmann::ordered_json xs, yf;
  for (int i = 0; i < kNumProcesses; ++i) {
    xs[ToString(static_cast<Process>(i))] = cross_section_pb[i];
    yf[ToString(static_cast<Process>(i))] = yield_factor[i];
  }
  j["cross_section_pb"] = xs;
  j["yield_factor"] = yf;
  j["nonprompt_pt_min"] = nonprompt_pt_min;
  j["nonprompt_pt_index"] = nonprompt_pt_index;
  j["nonprompt_iso_mean"] = nonprompt_iso_mean;
  j["nonprompt_recoil_sigma"] = nonprompt_recoil_sigma;
  return j.dump();
}

GeneratorConfig GeneratorConfig::DefaultData() {
  GeneratorConfig c;
  c.sample = SampleKind::kData;
  c.physics = GeneratorParams::DefaultData();
  c.detector = DetectorParams::DefaultData();
  return c;
}

bool GeneratorConfig::IsValid(std::string* error) const {
  if (processes.empty()) {
    if (error != nullptr) *error = "processes is empty, but must list at least one process";
    return false;
  }
  for (std::size_t i = 0; i < processes.size(); ++i) {
    if (!IsValidProcessId(static_cast<int>(processes[i])))
      return Fail(error, "processes[" + std::to_string(i) + "]", static_cast<int>(processes[i]),
                  "a process id in [0, 7]");
    for (std::size_t j = 0; j < i; ++j)
      if (processes[j] == processes[i]) {
        if (error != nullptr)
          *error = "processes[" + std::to_string(i) + "] is " + ToString(processes[i]) +
                   ", but must not repeat processes[" + std::to_string(j) + "]";
        return false;
      }
  }
  if (sample == SampleKind::kSimulation && num_events < processes.size())
    return Fail(error, "num_events", static_cast<double>(num_events),
                ">= the number of processes (" + std::to_string(processes.size()) + ")");
  if (!(luminosity_pb > 0.0 && std::isfinite(luminosity_pb)))
    return Fail(error, "luminosity_pb", luminosity_pb, "> 0 and finite");
  if (filter.min_muons < 0 || filter.min_muons > 2)
    return Fail(error, "filter.min_muons", filter.min_muons, "0, 1 or 2");
  if (!(filter.min_pt >= 0.0 && std::isfinite(filter.min_pt)))
    return Fail(error, "filter.min_pt", filter.min_pt, ">= 0");
  std::string sub;
  if (!physics.IsValid(&sub)) {
    if (error != nullptr) *error = "physics." + sub;
    return false;
  }
  if (!detector.IsValid(&sub)) {
    if (error != nullptr) *error = "detector." + sub;
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Angular distribution

std::array<double, 8> AngularCoefficients(const GeneratorParams& params, int charge, double pt,
                                          double abs_y) {
  const bool is_z = charge == 0;
  const double mref = is_z ? kAngularRefMassZ : kAngularRefMassW;
  const double pt2 = pt * pt;
  const double a0 = pt2 / (pt2 + mref * mref);
  const double d_max = is_z ? 0.75 : (charge > 0 ? 0.78 : 0.72);
  const double dil = std::tanh(abs_y / 1.2);
  const double c_v = is_z ? 0.07 : 1.0;
  const double rise = pt / (pt + 20.0);
  std::array<double, 8> a{};
  a[0] = a0;
  a[1] = 0.08 * dil * rise;
  a[2] = a0;
  a[3] = 0.06 * c_v * rise;
  a[4] = 2.0 * d_max * dil * (1.0 - a0) * c_v;
  for (int i = 0; i < 8; ++i) a[i] *= params.a_scale[i];
  return a;
}

std::array<double, 9> AngularPolynomials(double c, double phi) {
  const double s2 = std::max(0.0, 1.0 - c * c);
  const double s = std::sqrt(s2);
  const double sin2t = 2.0 * s * c;
  const double cp = std::cos(phi), sp = std::sin(phi);
  const double c2p = cp * cp - sp * sp, s2p = 2.0 * sp * cp;
  return {1.0 + c * c, 0.5 * (1.0 - 3.0 * c * c),
          sin2t * cp,  0.5 * s2 * c2p,
          s * cp,      c,
          s2 * s2p,    sin2t * sp,
          s * sp};
}

double AngularDensity(const std::array<double, 8>& a, double c, double phi) {
  const auto p = AngularPolynomials(c, phi);
  double f = p[0];
  for (int i = 0; i < 8; ++i) f += a[i] * p[i + 1];
  return f;
}

// ---------------------------------------------------------------------------------------------
// Generator

struct Generator::Impl {
  GeneratorConfig config;
  DetectorModel detector;
  MassSampler w_mass, z_mass;
  std::array<std::uint64_t, kNumProcesses> num_events{};
  std::array<double, kNumProcesses> weight{};
  std::array<double, kNumProcesses> rate{};
  BosonShape wplus, wminus, z, top, diboson_plus, diboson_minus;
  double wtau_plus_fraction = 0.5;
  double nonprompt_u_max = 1.0;

  explicit Impl(GeneratorConfig c) : config(std::move(c)), detector(config.detector) {}

  void Setup();
  // Generates event `ev` of process p into row `row` of *out; returns whether it passes.
  bool GenerateEvent(Process p, std::uint64_t ev, EventBatch* out, std::size_t row) const;
  void GenerateRange(Process p, std::uint64_t first, std::uint64_t count, EventBatch* out,
                     std::size_t row0, std::vector<std::uint8_t>* keep) const {
    for (std::uint64_t i = 0; i < count; ++i)
      (*keep)[row0 + i] = GenerateEvent(p, first + i, out, row0 + i) ? 1 : 0;
  }
  void BosonEvent(const BosonShape& shape, int charge, Process p, std::uint64_t ev, Truth* t,
                  Vec4* fermion, Vec4* antifermion) const;
};

void Generator::Impl::Setup() {
  const GeneratorParams& g = config.physics;
  w_mass = MassSampler(g.w_mass, g.w_width, g.w_mass_min, g.w_mass_max);
  z_mass = MassSampler(g.z_mass, g.z_width, g.z_mass_min, g.z_mass_max);
  wplus = MakeShape(&w_mass, g.y_sigma_wplus, g.y_max, g.pt_p0_w, g.pt_max, AngularModel::kStandard,
                    0.0);
  wminus = MakeShape(&w_mass, g.y_sigma_wminus, g.y_max, g.pt_p0_w, g.pt_max,
                     AngularModel::kStandard, 0.0);
  z = MakeShape(&z_mass, g.y_sigma_z, g.y_max, g.pt_p0_z, g.pt_max, AngularModel::kStandard, 0.0);
  top = MakeShape(&w_mass, 1.3, g.y_max, 50.0, 400.0, AngularModel::kTop, 25.0);
  diboson_plus = MakeShape(&w_mass, 1.8, g.y_max, 20.0, 300.0, AngularModel::kStandard, 10.0);
  diboson_minus = diboson_plus;
  wtau_plus_fraction = g.cross_section_pb[0] / (g.cross_section_pb[0] + g.cross_section_pb[1]);
  nonprompt_u_max = 1.0 - std::pow(g.nonprompt_pt_min / 200.0, g.nonprompt_pt_index - 1.0);

  for (int i = 0; i < kNumProcesses; ++i) rate[i] = g.cross_section_pb[i] * g.yield_factor[i];
  const auto& procs = config.processes;
  if (config.sample == SampleKind::kData) {
    for (Process p : procs) {
      EventRandom r(config.seed, static_cast<std::uint64_t>(p),
                    std::numeric_limits<std::uint64_t>::max(), detail::kStreamCount);
      num_events[static_cast<int>(p)] =
          Poisson(rate[static_cast<int>(p)] * config.luminosity_pb, r);
      weight[static_cast<int>(p)] = 1.0;
    }
  } else {
    // Largest-remainder shares of num_events in proportion to the rates.
    double total_rate = 0.0;
    for (Process p : procs) total_rate += rate[static_cast<int>(p)];
    std::vector<std::pair<double, int>> remainders;
    std::uint64_t assigned = 0;
    for (Process p : procs) {
      const int i = static_cast<int>(p);
      const double share = static_cast<double>(config.num_events) * rate[i] / total_rate;
      num_events[i] = static_cast<std::uint64_t>(std::floor(share));
      assigned += num_events[i];
      remainders.emplace_back(share - std::floor(share), i);
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t k = 0; assigned < config.num_events && k < remainders.size(); ++k, ++assigned)
      ++num_events[remainders[k].second];
    for (Process p : procs) {
      const int i = static_cast<int>(p);
      num_events[i] = std::max<std::uint64_t>(num_events[i], 1);
      weight[i] = rate[i] * config.luminosity_pb / static_cast<double>(num_events[i]);
    }
  }
}

void Generator::Impl::BosonEvent(const BosonShape& shape, int charge, Process p, std::uint64_t ev,
                                 Truth* t, Vec4* fermion, Vec4* antifermion) const {
  const std::uint64_t seed = config.seed, key = static_cast<std::uint64_t>(p);
  t->has_boson = true;
  t->v_charge = charge;
  {
    EventRandom r(seed, key, ev, detail::kStreamMass);
    t->m = shape.mass->Sample(r);
  }
  {
    EventRandom r(seed, key, ev, detail::kStreamRapidity);
    double y;
    do y = shape.y_sigma * r.Normal();
    while (!(std::abs(y) < shape.y_max));
    t->y = y;
  }
  {
    EventRandom r(seed, key, ev, detail::kStreamPt);
    const double u = r.Uniform() * shape.u_max;
    t->pt = shape.p0 * std::sqrt(u / (1.0 - u));
    t->phi = -kPi + kTwoPi * r.Uniform();
  }
  {
    std::array<double, 8> a{};
    if (shape.angular == AngularModel::kTop)
      a[0] = 0.6;
    else
      a = AngularCoefficients(config.physics, charge, t->pt, std::abs(t->y));
    // Bound: |P_UL| <= 2, |P_0| <= 1, |P_2| <= 1/2, the others <= 1.
    double bound = 2.0 + std::abs(a[0]) + 0.5 * std::abs(a[2]);
    for (int i : {1, 3, 4, 5, 6, 7}) bound += std::abs(a[i]);
    EventRandom r(seed, key, ev, detail::kStreamAngles);
    double c, phi;
    for (;;) {
      c = 2.0 * r.Uniform() - 1.0;
      phi = -kPi + kTwoPi * r.Uniform();
      if (r.Uniform() * bound <= AngularDensity(a, c, phi)) break;
    }
    t->cos = c;
    t->phi_cs = phi;
  }
  Decay(t->m, t->pt, t->y, t->phi, t->cos, t->phi_cs, fermion, antifermion);
  // Hadronic recoil balances the boson.
  t->recoil_x = -t->pt * std::cos(t->phi);
  t->recoil_y = -t->pt * std::sin(t->phi);
  if (shape.extra_invisible_sigma > 0.0) {
    EventRandom r(seed, key, ev, detail::kStreamExtra);
    t->recoil_x -= shape.extra_invisible_sigma * r.Normal();
    t->recoil_y -= shape.extra_invisible_sigma * r.Normal();
  }
}

bool Generator::Impl::GenerateEvent(Process p, std::uint64_t ev, EventBatch* out,
                                    std::size_t row) const {
  const std::uint64_t seed = config.seed, key = static_cast<std::uint64_t>(p);
  const GeneratorParams& g = config.physics;
  Truth t;
  Vec4 f, fbar;
  // Michel spectrum of tau -> mu nu nu (collinear, unpolarised): accept-reject on [0, 1].
  auto michel = [](EventRandom& r) {
    for (;;) {
      const double x = r.Uniform();
      if (r.Uniform() * (5.0 / 3.0) <= 5.0 / 3.0 - 3.0 * x * x + 4.0 / 3.0 * x * x * x) return x;
    }
  };
  switch (p) {
    case Process::kWplusMuNu:
      BosonEvent(wplus, +1, p, ev, &t, &f, &fbar);
      t.mu[t.nmu++] = FromVec(fbar, +1);
      break;
    case Process::kWminusMuNu:
      BosonEvent(wminus, -1, p, ev, &t, &f, &fbar);
      t.mu[t.nmu++] = FromVec(f, -1);
      break;
    case Process::kZMuMu:
      BosonEvent(z, 0, p, ev, &t, &f, &fbar);
      t.mu[t.nmu++] = FromVec(f, -1);
      t.mu[t.nmu++] = FromVec(fbar, +1);
      break;
    case Process::kWTauNu: {
      EventRandom rc(seed, key, ev, detail::kStreamCharge);
      const int q = rc.Uniform() < wtau_plus_fraction ? +1 : -1;
      BosonEvent(q > 0 ? wplus : wminus, q, p, ev, &t, &f, &fbar);
      EventRandom rd(seed, key, ev, detail::kStreamDecay);
      t.mu[t.nmu++] = FromVec(q > 0 ? fbar : f, q, michel(rd));
      break;
    }
    case Process::kZTauTau: {
      BosonEvent(z, 0, p, ev, &t, &f, &fbar);
      EventRandom rd(seed, key, ev, detail::kStreamDecay);
      // At least one tau -> mu: both with b/(2-b), else one of the two equally.
      constexpr double b = kTauToMuBranching;
      const double u = rd.Uniform();
      const double p_both = b / (2.0 - b), p_one = (1.0 - b) / (2.0 - b);
      const bool both = u < p_both;
      const bool tau_minus_mu = both || u < p_both + p_one;
      const bool tau_plus_mu = both || !tau_minus_mu;
      const Vec4* taus[2] = {&f, &fbar};
      const bool is_mu[2] = {tau_minus_mu, tau_plus_mu};
      for (int k = 0; k < 2; ++k) {
        const double x = is_mu[k] ? michel(rd) : rd.Uniform();
        if (is_mu[k]) {
          t.mu[t.nmu++] = FromVec(*taus[k], k == 0 ? -1 : +1, x);
        } else {
          t.recoil_x += x * taus[k]->px;
          t.recoil_y += x * taus[k]->py;
        }
      }
      break;
    }
    case Process::kTop:
    case Process::kDiboson: {
      EventRandom rc(seed, key, ev, detail::kStreamCharge);
      const int q = rc.Uniform() < 0.5 ? +1 : -1;
      BosonEvent(p == Process::kTop ? top : (q > 0 ? diboson_plus : diboson_minus), q, p, ev, &t,
                 &f, &fbar);
      t.mu[t.nmu++] = FromVec(q > 0 ? fbar : f, q);
      break;
    }
    case Process::kNonPrompt: {
      EventRandom r(seed, key, ev, detail::kStreamNonPrompt);
      GenMuon m;
      m.pt = g.nonprompt_pt_min *
             std::pow(1.0 - r.Uniform() * nonprompt_u_max, -1.0 / (g.nonprompt_pt_index - 1.0));
      m.eta = -2.5 + 5.0 * r.Uniform();
      m.phi = -kPi + kTwoPi * r.Uniform();
      m.charge = r.Uniform() < 0.5 ? -1 : +1;
      const double nu_fraction = 0.5 * r.Uniform();
      t.nonprompt = true;
      t.nonprompt_iso = -0.5 * g.nonprompt_iso_mean * std::log(r.Uniform() * r.Uniform());
      // The hadronic recoil balances muon and neutrino, up to the larger imbalance of multijet
      // events (mismeasured jets, neutrinos of other decays).
      t.recoil_x =
          -(1.0 + nu_fraction) * m.pt * std::cos(m.phi) + g.nonprompt_recoil_sigma * r.Normal();
      t.recoil_y =
          -(1.0 + nu_fraction) * m.pt * std::sin(m.phi) + g.nonprompt_recoil_sigma * r.Normal();
      t.mu[t.nmu++] = m;
      break;
    }
  }

  // ---- detector
  struct Reco {
    double pt, eta, phi, iso, eff[kNumEfficiencyKinds];
    int charge, gen;
  };
  Reco reco[2];
  int nreco = 0;
  const bool data = config.sample == SampleKind::kData;
  bool triggered = !data;
  double sum_x = 0.0, sum_y = 0.0;
  for (int j = 0; j < t.nmu; ++j) {
    const GenMuon& m = t.mu[j];
    if (!detector.InAcceptance(m.eta)) continue;
    Reco rm;
    rm.eta = m.eta;
    rm.phi = m.phi;
    rm.charge = m.charge;
    rm.gen = j;
    if (!config.simulate_detector) {
      rm.pt = m.pt;
      rm.iso = t.nonprompt ? t.nonprompt_iso : 0.0;
      std::fill(std::begin(rm.eff), std::end(rm.eff), 1.0);
      triggered = true;
    } else {
      EventRandom r(seed, key, ev, detail::kStreamMuon0 + static_cast<std::uint64_t>(j));
      const double gauss = r.Normal();
      double u[kNumEfficiencyKinds];
      for (double& x : u) x = r.Uniform();
      const double u_iso_value = r.Uniform();
      rm.pt = detector.SmearPt(m.pt, m.eta, m.charge, gauss);
      if (!(rm.pt >= detector.params().min_pt) || rm.pt <= 0.0) continue;
      for (int k = 0; k < kNumEfficiencyKinds; ++k)
        rm.eff[k] = detector.Efficiency(static_cast<EfficiencyKind>(k), rm.eta, rm.pt, rm.charge);
      const int kIso = static_cast<int>(EfficiencyKind::kIsolation);
      const int kTrig = static_cast<int>(EfficiencyKind::kTrigger);
      const bool iso_pass = u[kIso] < rm.eff[kIso];
      rm.iso = t.nonprompt ? t.nonprompt_iso : detector.PromptIsolation(iso_pass, u_iso_value);
      if (data) {
        bool lost = false;
        for (int k = 0; k < 3; ++k) lost = lost || !(u[k] < rm.eff[k]);
        if (lost) continue;
        for (int k = 0; k < 3; ++k) rm.eff[k] = 1.0;
        rm.eff[kTrig] = u[kTrig] < rm.eff[kTrig] ? 1.0 : 0.0;
        rm.eff[kIso] = rm.iso < kIsoCut ? 1.0 : 0.0;
        triggered = triggered || rm.eff[kTrig] > 0.0;
      }
    }
    sum_x += rm.pt * std::cos(rm.phi);
    sum_y += rm.pt * std::sin(rm.phi);
    reco[nreco++] = rm;
  }
  if (!triggered) return false;
  if (nreco == 2 && reco[1].pt > reco[0].pt) std::swap(reco[0], reco[1]);
  if (config.filter.min_muons > 0) {
    int n = 0;
    for (int k = 0; k < nreco; ++k) n += reco[k].pt >= config.filter.min_pt ? 1 : 0;
    if (n < config.filter.min_muons) return false;
  }

  double ut_x = t.recoil_x, ut_y = t.recoil_y;
  if (config.simulate_detector) {
    EventRandom r(seed, key, ev, detail::kStreamRecoil);
    const DetectorParams& d = detector.params();
    ut_x = d.recoil_response * t.recoil_x + d.recoil_sigma * r.Normal();
    ut_y = d.recoil_response * t.recoil_y + d.recoil_sigma * r.Normal();
  }
  const double met_x = -(sum_x + ut_x), met_y = -(sum_y + ut_y);

  EventBatch& b = *out;
  b.event_number[row] = ev;
  b.process[row] = p;
  b.weight[row] = weight[static_cast<int>(p)];
  b.n_muons[row] = static_cast<std::int8_t>(nreco);
  for (int k = 0; k < 2; ++k) {
    MuonColumns& c = b.muon[k];
    if (k < nreco) {
      const Reco& rm = reco[k];
      const GenMuon& gm = t.mu[rm.gen];
      c.pt[row] = rm.pt;
      c.eta[row] = rm.eta;
      c.phi[row] = rm.phi;
      c.charge[row] = static_cast<std::int8_t>(rm.charge);
      c.rel_iso[row] = rm.iso;
      c.gen_pt[row] = gm.pt;
      c.gen_eta[row] = gm.eta;
      c.gen_phi[row] = gm.phi;
      c.gen_charge[row] = static_cast<std::int8_t>(gm.charge);
      c.eff_reco[row] = rm.eff[0];
      c.eff_tracking[row] = rm.eff[1];
      c.eff_id[row] = rm.eff[2];
      c.eff_trigger[row] = rm.eff[3];
      c.eff_iso[row] = rm.eff[4];
    } else {
      c.pt[row] = c.eta[row] = c.phi[row] = c.rel_iso[row] = kNaN;
      c.gen_pt[row] = c.gen_eta[row] = c.gen_phi[row] = kNaN;
      c.charge[row] = c.gen_charge[row] = 0;
      c.eff_reco[row] = c.eff_tracking[row] = c.eff_id[row] = c.eff_trigger[row] = c.eff_iso[row] =
          kNaN;
    }
  }
  b.met_pt[row] = std::hypot(met_x, met_y);
  b.met_phi[row] = std::atan2(met_y, met_x);
  b.ut_x[row] = ut_x;
  b.ut_y[row] = ut_y;
  b.v_mass[row] = t.m;
  b.v_pt[row] = t.pt;
  b.v_y[row] = t.y;
  b.v_phi[row] = t.phi;
  b.v_charge[row] = static_cast<std::int8_t>(t.v_charge);
  b.cos_theta_cs[row] = t.cos;
  b.phi_cs[row] = t.phi_cs;
  return true;
}

Generator::Generator(GeneratorConfig config) {
  std::string error;
  if (!config.IsValid(&error)) throw std::invalid_argument("generator configuration: " + error);
  impl_ = std::make_unique<Impl>(std::move(config));
  impl_->Setup();
}

Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;
Generator& Generator::operator=(Generator&&) noexcept = default;

const GeneratorConfig& Generator::config() const { return impl_->config; }

std::uint64_t Generator::NumEvents(Process p) const {
  return impl_->num_events[static_cast<int>(p)];
}

std::uint64_t Generator::TotalEvents() const {
  std::uint64_t n = 0;
  for (Process p : impl_->config.processes) n += NumEvents(p);
  return n;
}

double Generator::EventWeight(Process p) const {
  const int i = static_cast<int>(p);
  if (impl_->config.sample == SampleKind::kData) return 1.0;
  return impl_->num_events[i] > 0 ? impl_->weight[i] : impl_->rate[i] * impl_->config.luminosity_pb;
}

double Generator::Rate(Process p) const { return impl_->rate[static_cast<int>(p)]; }

void Generator::Generate(Process p, std::uint64_t first, std::uint64_t count,
                         EventBatch* out) const {
  GenerateParallel(p, first, count, out, 1);
}

void Generator::GenerateParallel(Process p, std::uint64_t first, std::uint64_t count,
                                 EventBatch* out, int num_threads) const {
  if (count == 0) return;
  const std::size_t row0 = out->size();
  out->Resize(row0 + count);
  std::vector<std::uint8_t> keep(row0 + count, 1);
  const std::uint64_t nsub = (count + kSubRange - 1) / kSubRange;
  auto run = [&](std::uint64_t s) {
    const std::uint64_t begin = s * kSubRange;
    const std::uint64_t n = std::min(kSubRange, count - begin);
    impl_->GenerateRange(p, first + begin, n, out, row0 + begin, &keep);
  };
  if (num_threads == 1 || nsub == 1) {
    for (std::uint64_t s = 0; s < nsub; ++s) run(s);
  } else {
    tbb::task_arena arena(num_threads > 0 ? num_threads : tbb::task_arena::automatic);
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::uint64_t>(0, nsub, 1),
                        [&](const tbb::blocked_range<std::uint64_t>& r) {
                          for (std::uint64_t s = r.begin(); s < r.end(); ++s) run(s);
                        });
    });
  }
  out->Compact(keep);
}

// ---------------------------------------------------------------------------------------------
// Event source

namespace {

class GeneratorSource final : public EventSource {
 public:
  GeneratorSource(GeneratorConfig config, int num_threads)
      : generator_(std::move(config)), num_threads_(num_threads) {}

  std::size_t Next(EventBatch* batch, std::size_t max_events) override {
    batch->Clear();
    const auto& procs = generator_.config().processes;
    while (batch->empty() && process_ < procs.size()) {
      const Process p = procs[process_];
      const std::uint64_t n = std::min<std::uint64_t>(std::max<std::size_t>(max_events, 1),
                                                      generator_.NumEvents(p) - next_);
      generator_.GenerateParallel(p, next_, n, batch, num_threads_);
      next_ += n;
      position_ += static_cast<std::int64_t>(n);
      if (next_ >= generator_.NumEvents(p)) {
        ++process_;
        next_ = 0;
      }
    }
    return batch->size();
  }
  std::int64_t SizeHint() const override {
    return static_cast<std::int64_t>(generator_.TotalEvents());
  }
  std::int64_t Position() const override { return position_; }
  std::string Name() const override {
    const GeneratorConfig& c = generator_.config();
    // Appended piecewise (GCC 12 -Wrestrict false positive on "literal" + std::string).
    std::string name = "generator(";
    for (std::size_t i = 0; i < c.processes.size(); ++i) {
      if (i > 0) name += ",";
      name += ToString(c.processes[i]);
    }
    name += "; ";
    name += ToString(c.sample);
    name += "; seed ";
    name += std::to_string(c.seed);
    name += ")";
    return name;
  }

 private:
  Generator generator_;
  int num_threads_;
  std::size_t process_ = 0;
  std::uint64_t next_ = 0;
  std::int64_t position_ = 0;
};

}  // namespace

std::unique_ptr<EventSource> MakeGeneratorSource(GeneratorConfig config, int num_threads) {
  return std::make_unique<GeneratorSource>(std::move(config), num_threads);
}

}  // namespace lepus::models
