// Theory variations: the registry (which variations a configuration has) and the per-event
// weight formulas. The formulas are documented in docs/systematics.md; constants that define a
// variation's size live next to its formula here and are quoted there.
#include "lepus/models/theory_variations.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace lepus::models {

namespace {

constexpr double kPi = std::numbers::pi;

// ---- shape constants (docs/systematics.md quotes them)
constexpr double kPdfAmplitude90 = 0.05;  // first eigenvector's rapidity amplitude at 90% CL
constexpr double kPdfAmplitudeDecay = 0.25;
constexpr double kPdfAsymmetry = 0.3;
constexpr double kPdfA4Coupling = 0.3;
constexpr double kPdfA0Coupling = 0.1;
constexpr double kAlphaSAmplitude = 0.01;  // 68% CL
constexpr double kResummationQ = 10.0;     // GeV
constexpr double kShowerKtFraction = 0.5;  // of A1 and A3 at pT -> 0
constexpr double kShowerKtScale = 10.0;    // GeV
constexpr double kCsKernelQ0 = 2.0;        // GeV
constexpr double kEwLineShape = 0.003;
constexpr double kEwFsr = 0.01;
constexpr double kEwRecoil = 0.005;
constexpr double kEwRecoilQ = 30.0;  // GeV
constexpr double kEwShared = 0.003;

// Legendre polynomial P_n(u) by the recurrence.
inline double Legendre(int n, double u) {
  if (n == 0) return 1.0;
  double p0 = 1.0, p1 = u;
  for (int k = 2; k <= n; ++k) {
    const double p2 = ((2 * k - 1) * u * p1 - (k - 1) * p0) / k;
    p0 = p1;
    p1 = p2;
  }
  return p1;
}

std::string FormatMeV(double mev) {
  // 100 -> "100", 0.6 -> "0p6", 2.3 -> "2p3"
  std::ostringstream os;
  os << mev;
  std::string s = os.str();
  std::replace(s.begin(), s.end(), '.', 'p');
  return s;
}

std::array<bool, kNumProcesses> ProcessesOf(const std::array<bool, kNumBosonClasses>& bosons) {
  std::array<bool, kNumProcesses> p{};
  if (bosons[0])
    p[static_cast<int>(Process::kWplusMuNu)] = p[static_cast<int>(Process::kWTauNu)] = true;
  if (bosons[1])
    p[static_cast<int>(Process::kWminusMuNu)] = p[static_cast<int>(Process::kWTauNu)] = true;
  if (bosons[2])
    p[static_cast<int>(Process::kZMuMu)] = p[static_cast<int>(Process::kZTauTau)] = true;
  return p;
}

std::array<bool, kNumBosonClasses> OneBoson(int c) {
  std::array<bool, kNumBosonClasses> b{};
  b[c] = true;
  return b;
}
constexpr std::array<bool, kNumBosonClasses> kWBosons = {true, true, false};
constexpr std::array<bool, kNumBosonClasses> kAllBosons = {true, true, true};

// Integral of the running-width Breit-Wigner over [lo, hi] (Simpson in t = atan((m^2 - M^2) /
// (M G)), which flattens the peak).
double BreitWignerIntegral(double mass, double width, double lo, double hi) {
  const double mg = mass * width;
  const double t_lo = std::atan((lo * lo - mass * mass) / mg);
  const double t_hi = std::atan((hi * hi - mass * mass) / mg);
  const int n = 20000;  // even
  const double h = (t_hi - t_lo) / n;
  double sum = 0.0;
  for (int i = 0; i <= n; ++i) {
    const double t = t_lo + i * h;
    const double m = std::sqrt(mass * mass + mg * std::tan(t));
    const double c = std::cos(t);
    const double dm_dt = mg / (2.0 * m * c * c);
    const double f = BreitWigner(m, mass, width) * dm_dt;
    sum += f * ((i == 0 || i == n) ? 1.0 : (i % 2 ? 4.0 : 2.0));
  }
  return sum * h / 3.0;
}

// Mean of phi(pT) over the generator's pT density f(pT) ~ pT / (pT^2 + p0^2)^2 on [0, pt_max]:
// in t = pT^2 / (pT^2 + p0^2) the density is uniform, pT = p0 sqrt(t / (1 - t)).
template <typename F>
double PtMean(double p0, double pt_max, F&& phi) {
  const double t_max = pt_max * pt_max / (pt_max * pt_max + p0 * p0);
  const int n = 4000;
  const double h = t_max / n;
  double sum = 0.0;
  for (int i = 0; i <= n; ++i) {
    const double t = std::min(i * h, t_max);
    const double pt = p0 * std::sqrt(t / (1.0 - t));
    sum += phi(pt) * ((i == 0 || i == n) ? 1.0 : (i % 2 ? 4.0 : 2.0));
  }
  return sum * h / 3.0 / t_max;
}

inline double ResumShape(int order, double pt) {
  const double q2 = kResummationQ * kResummationQ;
  const double z = (pt * pt - q2) / (pt * pt + q2);
  return Legendre(order, z);
}
inline double EwRecoilShape(double pt) {
  const double q2 = kEwRecoilQ * kEwRecoilQ;
  return (pt * pt - q2) / (pt * pt + q2);
}

// The intrinsic-kT (heat-kernel) derivative: (1/2) lap g / g for g = (pT^2 + p0^2)^-2, per unit
// change of the per-component smearing variance.
inline double KtSmearingShape(double pt, double p0) {
  const double p02 = p0 * p0;
  const double d = pt * pt + p02;
  return 4.0 * (2.0 * pt * pt - p02) / (d * d);
}

// Deterministic "phase" of PDF eigenvector k (golden-ratio sequence).
inline double PdfPhase(int k) {
  const double g = 0.6180339887498949 * k;
  return 2.0 * kPi * (g - std::floor(g));
}

}  // namespace

BosonClass ClassifyBoson(Process process, int v_charge) noexcept {
  switch (process) {
    case Process::kWplusMuNu:
      return BosonClass::kWplus;
    case Process::kWminusMuNu:
      return BosonClass::kWminus;
    case Process::kWTauNu:
      return v_charge > 0 ? BosonClass::kWplus
                          : (v_charge < 0 ? BosonClass::kWminus : BosonClass::kNone);
    case Process::kZMuMu:
    case Process::kZTauTau:
      return BosonClass::kZ;
    default:
      return BosonClass::kNone;
  }
}

std::string ToString(BosonClass c) {
  switch (c) {
    case BosonClass::kWplus:
      return "Wplus";
    case BosonClass::kWminus:
      return "Wminus";
    case BosonClass::kZ:
      return "Z";
    default:
      return "none";
  }
}

std::string HelicityComponentName(int component) {
  if (component == 0) return "UL";
  if (component >= 1 && component <= 8) return "A" + std::to_string(component - 1);
  throw std::invalid_argument("HelicityComponentName: component is " + std::to_string(component) +
                              ", but must be in [0, 8]");
}

std::array<double, 9> HelicityWeights(const std::array<double, 8>& a, double cos_theta,
                                      double phi) {
  const std::array<double, 9> p = AngularPolynomials(cos_theta, phi);
  double d = p[0];
  for (int i = 0; i < 8; ++i) d += a[i] * p[i + 1];
  std::array<double, 9> w;
  w[0] = p[0] / d;
  for (int i = 0; i < 8; ++i) w[i + 1] = a[i] * p[i + 1] / d;
  return w;
}

std::string ToString(TheoryKind kind) {
  switch (kind) {
    case TheoryKind::kMassShift:
      return "mass";
    case TheoryKind::kWidthShift:
      return "width";
    case TheoryKind::kPdf:
      return "pdf";
    case TheoryKind::kPdfAlphaS:
      return "pdfAlphaS";
    case TheoryKind::kHelicity:
      return "helicity";
    case TheoryKind::kShowerKt:
      return "showerKt";
    case TheoryKind::kNonPerturbative:
      return "nonPerturbative";
    case TheoryKind::kResummation:
      return "resummation";
    case TheoryKind::kElectroweak:
      return "electroweak";
  }
  return "unknown";
}

// ---- configuration

TheoryConfig TheoryConfig::Full() { return TheoryConfig{}; }

TheoryConfig TheoryConfig::Light() {
  TheoryConfig c;
  c.mass_steps = false;
  c.pdf_pairs = 3;
  c.pdf_symmetrize = false;
  c.pdf_alphas = false;
  c.helicity_pt_edges = {0.0};
  c.helicity_y_edges = {0.0};
  c.helicity_components = {true, true, false, false, false, true};  // UL, A0, A4
  c.shower_kt = false;
  c.np_per_boson_y = false;
  c.np_shared_cs = true;
  c.resummation_terms = 1;
  c.electroweak = true;
  return c;
}

bool TheoryConfig::IsValid(std::string* error) const {
  auto fail = [&](const std::string& what) {
    if (error) *error = "TheoryConfig: " + what;
    return false;
  };
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  std::string sub;
  if (!physics.IsValid(&sub)) return fail("physics: " + sub);
  if (mass_boson != 'W' && mass_boson != 'Z')
    return fail(std::string("mass_boson is '") + mass_boson + "', but must be 'W' or 'Z'");
  if (!(mass_shift_mev > 0.0) || !std::isfinite(mass_shift_mev))
    return fail("mass_shift_mev is " + num(mass_shift_mev) + ", but must be > 0");
  if (!(mass_step_mev > 0.0) || !std::isfinite(mass_step_mev))
    return fail("mass_step_mev is " + num(mass_step_mev) + ", but must be > 0");
  if (mass_steps) {
    const double r = mass_shift_mev / mass_step_mev;
    if (std::abs(r - std::round(r)) > 1e-9 || std::round(r) > 1000)
      return fail("mass_step_mev is " + num(mass_step_mev) + ", but must divide mass_shift_mev (" +
                  num(mass_shift_mev) + ") into at most 1000 steps");
  }
  if (!std::isfinite(mass_center_shift_mev) || std::abs(mass_center_shift_mev) > 2000.0)
    return fail("mass_center_shift_mev is " + num(mass_center_shift_mev) +
                ", but must be within +-2000");
  if (!(w_width_shift_mev > 0.0) || !std::isfinite(w_width_shift_mev))
    return fail("w_width_shift_mev is " + num(w_width_shift_mev) + ", but must be > 0");
  if (!(z_width_shift_mev > 0.0) || !std::isfinite(z_width_shift_mev))
    return fail("z_width_shift_mev is " + num(z_width_shift_mev) + ", but must be > 0");
  if (pdf_pairs < 0 || pdf_pairs > 60)
    return fail("pdf_pairs is " + std::to_string(pdf_pairs) + ", but must be in [0, 60]");
  if (!(pdf_cl_scale > 0.0) || !std::isfinite(pdf_cl_scale))
    return fail("pdf_cl_scale is " + num(pdf_cl_scale) + ", but must be > 0");
  auto check_edges = [&](const std::vector<double>& e, const char* name, std::size_t max_bins) {
    if (e.empty() || e[0] != 0.0)
      return fail(std::string(name) + "[0] is " + (e.empty() ? std::string("missing") : num(e[0])) +
                  ", but must be 0");
    for (std::size_t i = 1; i < e.size(); ++i)
      if (!(e[i] > e[i - 1]) || !std::isfinite(e[i]))
        return fail(std::string(name) + "[" + std::to_string(i) + "] is " + num(e[i]) +
                    ", but must be finite and > " + num(e[i - 1]));
    if (e.size() > max_bins)
      return fail(std::string(name) + " has " + std::to_string(e.size()) +
                  " edges, but must have at most " + std::to_string(max_bins));
    return true;
  };
  if (!check_edges(helicity_pt_edges, "helicity_pt_edges", 100)) return false;
  if (!check_edges(helicity_y_edges, "helicity_y_edges", 100)) return false;
  for (int c = 0; c < kNumHelicityComponents; ++c) {
    if (!(helicity_abs[c] >= 0.0) || !std::isfinite(helicity_abs[c]))
      return fail("helicity_abs[" + std::to_string(c) + "] is " + num(helicity_abs[c]) +
                  ", but must be >= 0");
    if (!(helicity_rel[c] >= 0.0) || !std::isfinite(helicity_rel[c]))
      return fail("helicity_rel[" + std::to_string(c) + "] is " + num(helicity_rel[c]) +
                  ", but must be >= 0");
  }
  if (!(np_sigma2 > 0.0) || !std::isfinite(np_sigma2))
    return fail("np_sigma2 is " + num(np_sigma2) + ", but must be > 0");
  if (resummation_terms < 0 || resummation_terms > 3)
    return fail("resummation_terms is " + std::to_string(resummation_terms) +
                ", but must be in [0, 3]");
  for (int i = 0; i < 3; ++i)
    if (!(resummation_size[i] >= 0.0) || !(resummation_size[i] < 0.5))
      return fail("resummation_size[" + std::to_string(i) + "] is " + num(resummation_size[i]) +
                  ", but must be in [0, 0.5)");
  return true;
}

// ---- registry
//
// Parameter layouts (par_[k]):
//   kMassShift / kWidthShift: {M, G, M_up, G_up, norm_up, M_dn, G_dn, norm_dn}, norm = N / N'
//   kPdf:       {eigenvector k (1-based), mode 0 asymmetric / 1 SymAvg / 2 SymDiff}
//   kPdfAlphaS: {amplitude, mean of the pT shape per class 0..2 at [1..3]}
//   kHelicity:  {component, pt_bin, y_bin, class, abs, rel}
//   kShowerKt:  {}
//   kNonPerturbative: {subkind 0 sigma2 / 1 sigma2 x y / 2 CS kernel, class (-1 all), sigma2}
//   kResummation: {order n, class, size, mean of P_n(z) for the class}
//   kElectroweak: {subkind 0 line shape / 1 FSR / 2 recoil / 3 shared, class group (0 W, 1 Z,
//                  -1 all), size, mean (recoil: per class W+/W-/Z at [3..5])}

TheoryVariations::TheoryVariations(TheoryConfig config) : config_(std::move(config)) {
  std::string error;
  if (!config_.IsValid(&error)) throw std::invalid_argument(error);
  const GeneratorParams& ph = config_.physics;
  const char* class_names[3] = {"Wplus", "Wminus", "Z"};
  const double p0[3] = {ph.pt_p0_w, ph.pt_p0_w, ph.pt_p0_z};

  auto add = [&](TheoryNuisance n, std::array<double, 8> par) {
    n.processes = ProcessesOf(n.bosons);
    nuisances_.push_back(std::move(n));
    par_.push_back(par);
  };

  // Mass and width.
  const bool w = config_.mass_boson == 'W';
  const std::string bname = w ? "W" : "Z";
  // The generated mass and width, and the centre of the templates (mass_center_shift_mev): the events
  // arrive reweighted to the centre, so every mass / width weight is relative to it; a width
  // follows its mass as (M'/M)^3 from the generated point (the data generator's convention).
  const double mg = w ? ph.w_mass : ph.z_mass;
  const double gg = w ? ph.w_width : ph.z_width;
  const bool centred = config_.mass_center_shift_mev != 0.0;
  const double m0 = centred ? mg + config_.mass_center_shift_mev * 1e-3 : mg;
  const double g0 = centred ? gg * std::pow(m0 / mg, 3) : gg;
  const double lo = w ? ph.w_mass_min : ph.z_mass_min;
  const double hi = w ? ph.w_mass_max : ph.z_mass_max;
  const double n0 = BreitWignerIntegral(m0, g0, lo, hi);
  const std::array<bool, kNumBosonClasses> mass_bosons =
      w ? kWBosons : std::array<bool, kNumBosonClasses>{false, false, true};
  auto shifted = [&](double dm, double dg) {
    const double m1 = m0 + dm;
    const double g1 = (gg + dg) * std::pow(m1 / mg, 3);
    return std::array<double, 3>{m1, g1, n0 / BreitWignerIntegral(m1, g1, lo, hi)};
  };
  {
    const double d = config_.mass_shift_mev * 1e-3;
    const auto u = shifted(d, 0.0), dn = shifted(-d, 0.0);
    TheoryNuisance n;
    n.name = "massShift" + bname + FormatMeV(config_.mass_shift_mev) + "MeV";
    n.group = "mass" + bname;
    n.kind = TheoryKind::kMassShift;
    n.role = TheoryRole::kInterest;
    n.bosons = mass_bosons;
    n.scale_mev = config_.mass_shift_mev;
    add(n, {m0, g0, u[0], u[1], u[2], dn[0], dn[1], dn[2]});
  }
  {
    const double dw = (w ? config_.w_width_shift_mev : config_.z_width_shift_mev);
    const auto u = shifted(0.0, dw * 1e-3), dn = shifted(0.0, -dw * 1e-3);
    TheoryNuisance n;
    n.name = "width" + bname + FormatMeV(dw) + "MeV";
    n.group = "width" + bname;
    n.kind = TheoryKind::kWidthShift;
    n.bosons = mass_bosons;
    n.scale_mev = dw;
    add(n, {m0, g0, u[0], u[1], u[2], dn[0], dn[1], dn[2]});
  }
  if (config_.mass_steps) {
    const int steps = static_cast<int>(std::round(config_.mass_shift_mev / config_.mass_step_mev));
    for (int s = -steps; s <= steps; ++s) {
      if (s == 0) continue;
      const double mev = std::abs(s) * config_.mass_step_mev;
      const auto u = shifted((s > 0 ? mev : -mev) * 1e-3, 0.0);
      TheoryNuisance n;
      n.name = "massShift" + bname + (s > 0 ? "Up" : "Down") + FormatMeV(mev) + "MeV";
      n.group = "mass" + bname;
      n.kind = TheoryKind::kMassShift;
      n.role = TheoryRole::kAlternative;
      n.bosons = mass_bosons;
      n.scale_mev = s > 0 ? mev : -mev;
      add(n, {m0, g0, u[0], u[1], u[2], u[0], u[1], u[2]});
    }
  }

  // PDF-like Hessian set.
  for (int k = 1; k <= config_.pdf_pairs; ++k) {
    TheoryNuisance n;
    n.group = "pdf";
    n.kind = TheoryKind::kPdf;
    n.bosons = kAllBosons;
    if (config_.pdf_symmetrize) {
      n.symmetric = true;
      n.name = "pdf" + std::to_string(k) + "SymAvg";
      add(n, {double(k), 1.0});
      n.name = "pdf" + std::to_string(k) + "SymDiff";
      add(n, {double(k), 2.0});
    } else {
      n.name = "pdf" + std::to_string(k);
      add(n, {double(k), 0.0});
    }
  }
  if (config_.pdf_alphas) {
    TheoryNuisance n;
    n.name = "pdfAlphaS";
    n.group = "pdf";
    n.kind = TheoryKind::kPdfAlphaS;
    n.symmetric = true;
    n.bosons = kAllBosons;
    std::array<double, 8> par{kAlphaSAmplitude};
    for (int c = 0; c < 3; ++c)
      par[1 + c] = PtMean(p0[c], ph.pt_max, [](double pt) { return ResumShape(1, pt); });
    add(n, par);
  }

  // Angular coefficients.
  const int n_pt = static_cast<int>(config_.helicity_pt_edges.size());  // incl. overflow
  const int n_y = static_cast<int>(config_.helicity_y_edges.size());
  for (int c = 0; c < kNumBosonClasses; ++c)
    for (int comp = 0; comp < kNumHelicityComponents; ++comp) {
      if (!config_.helicity_components[comp]) continue;
      for (int ipt = 0; ipt < n_pt; ++ipt)
        for (int iy = 0; iy < n_y; ++iy) {
          TheoryNuisance n;
          n.name = "helicity_" + HelicityComponentName(comp);
          if (n_pt > 1) n.name += "_ptV" + std::to_string(ipt);
          if (n_y > 1) n.name += "_yV" + std::to_string(iy);
          n.name += std::string("_") + class_names[c];
          n.group = "angularCoeffs";
          n.kind = TheoryKind::kHelicity;
          n.symmetric = true;
          n.bosons = OneBoson(c);
          n.pt_bin = n_pt > 1 ? ipt : -1;
          n.y_bin = n_y > 1 ? iy : -1;
          n.component = comp;
          add(n, {double(comp), double(n.pt_bin), double(n.y_bin), double(c),
                  config_.helicity_abs[comp], config_.helicity_rel[comp]});
        }
    }
  if (config_.shower_kt) {
    TheoryNuisance n;
    n.name = "pythiaShowerKt";
    n.group = "angularCoeffs";
    n.kind = TheoryKind::kShowerKt;
    n.symmetric = true;
    n.bosons = kAllBosons;
    add(n, {});
  }

  // Boson-pT modelling.
  for (int c = 0; c < kNumBosonClasses; ++c) {
    TheoryNuisance n;
    n.group = "pTModeling";
    n.kind = TheoryKind::kNonPerturbative;
    n.symmetric = true;
    n.bosons = OneBoson(c);
    n.name = std::string("npSigma2_") + class_names[c];
    add(n, {0.0, double(c), config_.np_sigma2});
    if (config_.np_per_boson_y) {
      n.name = std::string("npSigma2Y_") + class_names[c];
      add(n, {1.0, double(c), config_.np_sigma2});
    }
  }
  if (config_.np_shared_cs) {
    TheoryNuisance n;
    n.name = "npCSKernel";
    n.group = "pTModeling";
    n.kind = TheoryKind::kNonPerturbative;
    n.symmetric = true;
    n.bosons = kAllBosons;
    add(n, {2.0, -1.0, config_.np_sigma2});
  }
  for (int c = 0; c < kNumBosonClasses; ++c)
    for (int order = 1; order <= config_.resummation_terms; ++order) {
      TheoryNuisance n;
      n.name = "resumTNP" + std::to_string(order) + "_" + class_names[c];
      n.group = "pTModeling";
      n.kind = TheoryKind::kResummation;
      n.symmetric = true;
      n.bosons = OneBoson(c);
      const double mean =
          PtMean(p0[c], ph.pt_max, [order](double pt) { return ResumShape(order, pt); });
      add(n, {double(order), double(c), config_.resummation_size[order - 1], mean});
    }

  // Higher-order EW.
  if (config_.electroweak) {
    for (int b = 0; b < 2; ++b) {
      const std::string suffix = b == 0 ? "_W" : "_Z";
      const std::array<bool, kNumBosonClasses> bosons =
          b == 0 ? kWBosons : std::array<bool, kNumBosonClasses>{false, false, true};
      TheoryNuisance n;
      n.group = "EW";
      n.kind = TheoryKind::kElectroweak;
      n.symmetric = true;
      n.bosons = bosons;
      n.name = "ewLineShape" + suffix;
      add(n, {0.0, double(b), kEwLineShape});
      n.name = "ewFSR" + suffix;
      add(n, {1.0, double(b), kEwFsr});
      n.name = "ewRecoil" + suffix;
      std::array<double, 8> par{2.0, double(b), kEwRecoil};
      for (int c = 0; c < 3; ++c) par[3 + c] = PtMean(p0[c], ph.pt_max, EwRecoilShape);
      add(n, par);
    }
    TheoryNuisance n;
    n.name = "ewShared";
    n.group = "EW";
    n.kind = TheoryKind::kElectroweak;
    n.symmetric = true;
    n.bosons = kAllBosons;
    add(n, {3.0, -1.0, kEwShared});
  }
}

int TheoryVariations::Find(std::string_view name) const {
  for (std::size_t k = 0; k < nuisances_.size(); ++k)
    if (nuisances_[k].name == name) return static_cast<int>(k);
  return -1;
}

std::vector<TheoryNuisance> TheoryNuisances(const TheoryConfig& config) {
  return TheoryVariations(config).nuisances();
}

// ---- per-event inputs

void TheoryVariations::Prepare(const EventBatch& b, std::size_t begin, std::size_t end,
                               TheoryInputs* in) const {
  if (end < begin || end > b.size())
    throw std::invalid_argument("TheoryVariations::Prepare: range [" + std::to_string(begin) +
                                ", " + std::to_string(end) + ") is outside the batch of " +
                                std::to_string(b.size()) + " events");
  const std::size_t n = end - begin;
  in->n = n;
  auto fit = [n](auto& v) {
    if (v.size() < n) v.resize(n);
  };
  fit(in->boson);
  fit(in->pt_bin);
  fit(in->y_bin);
  fit(in->mass);
  fit(in->pt);
  fit(in->y);
  fit(in->cos_theta);
  fit(in->phi);
  for (auto& v : in->hel_weight) fit(v);
  for (auto& v : in->dlog_da) fit(v);
  for (auto& v : in->coeff) fit(v);
  const std::vector<double>& pt_edges = config_.helicity_pt_edges;
  const std::vector<double>& y_edges = config_.helicity_y_edges;
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t i = begin + j;
    const BosonClass c = ClassifyBoson(b.process[i], b.v_charge[i]);
    const double pt = b.v_pt[i], y = b.v_y[i], m = b.v_mass[i];
    const double ct = b.cos_theta_cs[i], ph = b.phi_cs[i];
    const bool ok = c != BosonClass::kNone && std::isfinite(pt) && std::isfinite(y) &&
                    std::isfinite(m) && std::isfinite(ct) && std::isfinite(ph);
    if (!ok) {
      in->boson[j] = static_cast<std::int8_t>(BosonClass::kNone);
      in->pt_bin[j] = in->y_bin[j] = -1;
      in->mass[j] = in->pt[j] = in->y[j] = in->cos_theta[j] = in->phi[j] = 0.0;
      for (auto& v : in->hel_weight) v[j] = 0.0;
      for (auto& v : in->dlog_da) v[j] = 0.0;
      for (auto& v : in->coeff) v[j] = 0.0;
      continue;
    }
    in->boson[j] = static_cast<std::int8_t>(c);
    in->pt_bin[j] = static_cast<std::int8_t>(
        std::upper_bound(pt_edges.begin(), pt_edges.end(), pt) - pt_edges.begin() - 1);
    const double ay = std::abs(y);
    in->y_bin[j] = static_cast<std::int8_t>(std::upper_bound(y_edges.begin(), y_edges.end(), ay) -
                                            y_edges.begin() - 1);
    if (in->pt_bin[j] < 0) in->pt_bin[j] = 0;
    if (in->y_bin[j] < 0) in->y_bin[j] = 0;
    in->mass[j] = m;
    in->pt[j] = pt;
    in->y[j] = y;
    in->cos_theta[j] = ct;
    in->phi[j] = ph;
    const int charge = c == BosonClass::kWplus ? 1 : (c == BosonClass::kWminus ? -1 : 0);
    const std::array<double, 8> a = AngularCoefficients(config_.physics, charge, pt, ay);
    const std::array<double, 9> p = AngularPolynomials(ct, ph);
    double d = p[0];
    for (int k = 0; k < 8; ++k) d += a[k] * p[k + 1];
    const double inv_d = d > 0.0 ? 1.0 / d : 0.0;
    in->hel_weight[0][j] = p[0] * inv_d;
    for (int k = 0; k < 8; ++k) in->hel_weight[k + 1][j] = a[k] * p[k + 1] * inv_d;
    for (int k = 0; k < 5; ++k) {
      in->dlog_da[k][j] = p[k + 1] * inv_d;
      in->coeff[k][j] = a[k];
    }
  }
}

bool TheoryVariations::Acts(std::size_t k, const TheoryInputs& in, std::size_t j) const noexcept {
  const TheoryNuisance& n = nuisances_[k];
  const int c = in.boson[j];
  if (c < 0 || !n.bosons[c]) return false;
  if (n.pt_bin >= 0 && in.pt_bin[j] != n.pt_bin) return false;
  if (n.y_bin >= 0 && in.y_bin[j] != n.y_bin) return false;
  return true;
}

double TheoryVariations::BreitWignerWeight(char boson, double m, double dm, double dg) const {
  const GeneratorParams& ph = config_.physics;
  const bool w = boson == 'W';
  if (!w && boson != 'Z')
    throw std::invalid_argument(std::string("BreitWignerWeight: boson is '") + boson +
                                "', but must be 'W' or 'Z'");
  const double m0 = w ? ph.w_mass : ph.z_mass, g0 = w ? ph.w_width : ph.z_width;
  const double lo = w ? ph.w_mass_min : ph.z_mass_min, hi = w ? ph.w_mass_max : ph.z_mass_max;
  const double m1 = m0 + dm;
  const double g1 = (g0 + dg) * std::pow(m1 / m0, 3);
  // The normalisation integrals cost ~1e5 evaluations: cache the last one per thread (callers
  // typically evaluate many masses at one shift).
  struct Cache {
    std::array<double, 6> key{};  // m0, g0, lo, hi, dm, dg
    double norm = 0.0;
    bool valid = false;
  };
  thread_local Cache cache;
  const std::array<double, 6> key = {m0, g0, lo, hi, dm, dg};
  if (!cache.valid || cache.key != key) {
    cache.key = key;
    cache.norm = BreitWignerIntegral(m0, g0, lo, hi) / BreitWignerIntegral(m1, g1, lo, hi);
    cache.valid = true;
  }
  return BreitWigner(m, m1, g1) / BreitWigner(m, m0, g0) * cache.norm;
}

// ---- weights

namespace {

// PDF eigenvector k (docs/systematics.md): per-eigenvector constants, computed once per call of
// Weights, and the relative weight change r_s for sign s (+1 up, -1 down) at one event.
struct PdfEigen {
  explicit PdfEigen(int k, double cl_scale) {
    const double amp = kPdfAmplitude90 / (1.0 + kPdfAmplitudeDecay * (k - 1)) / cl_scale;
    const double phase = PdfPhase(k);
    const double asym = kPdfAsymmetry * std::sin(1.7 * k);
    amp_up = amp * (1.0 + asym);
    amp_down = amp * (1.0 - asym);
    n_y = 2 + 2 * ((k - 1) % 4);  // even: the rapidity distribution stays symmetric
    n_q = 2 * ((k - 1) % 3);      // 0, 2, 4
    c_rap = std::cos(phase);
    c_flav = 0.5 * std::sin(phase);
    c_a4 = kPdfA4Coupling * std::cos(2.0 * phase);
    c_a0 = kPdfA0Coupling * std::sin(2.0 * phase);
  }
  // The bracket of r_s = s a_s [ ... ] (independent of s).
  double Shape(int boson, double u, double hel_a0, double hel_a4) const {
    const double g_b = boson == 0 ? 1.0 : (boson == 1 ? -1.0 : 0.5);  // u/d-like flavour lever
    return c_rap * Legendre(n_y, u) + c_flav * g_b * Legendre(n_q, u) + c_a4 * hel_a4 +
           c_a0 * hel_a0;
  }
  double amp_up, amp_down, c_rap, c_flav, c_a4, c_a0;
  int n_y, n_q;
};

}  // namespace

void TheoryVariations::Weights(std::size_t k, const TheoryInputs& in, double* up,
                               double* down) const noexcept {
  const TheoryNuisance& nu = nuisances_[k];
  const std::array<double, 8>& p = par_[k];
  const std::size_t n = in.n;
  const std::int8_t* boson = in.boson.data();
  auto acts = [&](std::size_t j) {
    const int c = boson[j];
    return c >= 0 && nu.bosons[c];
  };
  // Writes 1 + r / 1 - r (symmetric) for acting events, 1 elsewhere.
  auto symmetric = [&](auto&& rel) {
    for (std::size_t j = 0; j < n; ++j) {
      const double r = acts(j) ? rel(j) : 0.0;
      up[j] = 1.0 + r;
      if (down) down[j] = 1.0 - r;
    }
  };
  const GeneratorParams& ph = config_.physics;
  switch (nu.kind) {
    case TheoryKind::kMassShift:
    case TheoryKind::kWidthShift: {
      const double m0 = p[0], g0 = p[1];
      for (std::size_t j = 0; j < n; ++j) {
        if (!acts(j)) {
          up[j] = 1.0;
          if (down) down[j] = 1.0;
          continue;
        }
        const double m = in.mass[j];
        const double bw0 = BreitWigner(m, m0, g0);
        up[j] = BreitWigner(m, p[2], p[3]) / bw0 * p[4];
        if (down)
          down[j] =
              nu.role == TheoryRole::kAlternative ? up[j] : BreitWigner(m, p[5], p[6]) / bw0 * p[7];
      }
      return;
    }
    case TheoryKind::kPdf: {
      const PdfEigen eig(static_cast<int>(p[0]), config_.pdf_cl_scale);
      const int mode = static_cast<int>(p[1]);
      const double inv_ymax = 1.0 / ph.y_max;
      for (std::size_t j = 0; j < n; ++j) {
        if (!acts(j)) {
          up[j] = 1.0;
          if (down) down[j] = 1.0;
          continue;
        }
        const double u = std::clamp(in.y[j] * inv_ymax, -1.0, 1.0);
        const double shape = eig.Shape(boson[j], u, in.hel_weight[1][j], in.hel_weight[5][j]);
        const double rp = eig.amp_up * shape, rm = -eig.amp_down * shape;
        if (mode == 0) {
          up[j] = 1.0 + rp;
          if (down) down[j] = 1.0 + rm;
        } else {
          const double r = mode == 1 ? 0.5 * (rp - rm) : 0.5 * (rp + rm);
          up[j] = 1.0 + r;
          if (down) down[j] = 1.0 - r;
        }
      }
      return;
    }
    case TheoryKind::kPdfAlphaS: {
      symmetric([&](std::size_t j) {
        const double u = std::clamp(in.y[j] / ph.y_max, -1.0, 1.0);
        return p[0] * (0.5 * Legendre(2, u) + ResumShape(1, in.pt[j]) - p[1 + boson[j]]);
      });
      return;
    }
    case TheoryKind::kHelicity: {
      const int comp = static_cast<int>(p[0]);
      const int pt_bin = static_cast<int>(p[1]), y_bin = static_cast<int>(p[2]);
      const double abs_size = p[4], rel_size = p[5];
      const std::int8_t* pb = in.pt_bin.data();
      const std::int8_t* yb = in.y_bin.data();
      if (comp == 0) {
        for (std::size_t j = 0; j < n; ++j) {
          const bool a =
              acts(j) && (pt_bin < 0 || pb[j] == pt_bin) && (y_bin < 0 || yb[j] == y_bin);
          const double r = a ? abs_size : 0.0;
          up[j] = 1.0 + r;
          if (down) down[j] = 1.0 - r;
        }
      } else {
        const double* dl = in.dlog_da[comp - 1].data();
        const double* a_i = in.coeff[comp - 1].data();
        for (std::size_t j = 0; j < n; ++j) {
          const bool a =
              acts(j) && (pt_bin < 0 || pb[j] == pt_bin) && (y_bin < 0 || yb[j] == y_bin);
          const double r = a ? (abs_size + rel_size * std::abs(a_i[j])) * dl[j] : 0.0;
          up[j] = 1.0 + r;
          if (down) down[j] = 1.0 - r;
        }
      }
      return;
    }
    case TheoryKind::kShowerKt: {
      symmetric([&](std::size_t j) {
        const double f = -kShowerKtFraction * std::exp(-in.pt[j] / kShowerKtScale);
        return f * (in.hel_weight[2][j] + in.hel_weight[4][j]);  // delta A1 P1/D + delta A3 P3/D
      });
      return;
    }
    case TheoryKind::kNonPerturbative: {
      const int sub = static_cast<int>(p[0]);
      const double s2 = p[2];
      const double p0w = ph.pt_p0_w, p0z = ph.pt_p0_z;
      const double sigma_y[3] = {ph.y_sigma_wplus, ph.y_sigma_wminus, ph.y_sigma_z};
      const double ref_log = std::log(kAngularRefMassW / kCsKernelQ0);
      symmetric([&](std::size_t j) {
        const int c = boson[j];
        const double shape = KtSmearingShape(in.pt[j], c == 2 ? p0z : p0w);
        double g = 1.0;
        if (sub == 1) {
          const double t = in.y[j] / sigma_y[c];
          g = std::min(t * t, 3.0) - 1.0;
        } else if (sub == 2) {
          g = std::log(std::max(in.mass[j], kCsKernelQ0) / kCsKernelQ0) / ref_log;
        }
        return s2 * g * shape;
      });
      return;
    }
    case TheoryKind::kResummation: {
      const int order = static_cast<int>(p[0]);
      const double size = p[2], mean = p[3];
      symmetric([&](std::size_t j) { return size * (ResumShape(order, in.pt[j]) - mean); });
      return;
    }
    case TheoryKind::kElectroweak: {
      const int sub = static_cast<int>(p[0]);
      const double size = p[2];
      const double mw = ph.w_mass, gw = ph.w_width, mz = ph.z_mass, gz = ph.z_width;
      switch (sub) {
        case 0:
          symmetric([&](std::size_t j) {
            const bool z = boson[j] == 2;
            const double x = (in.mass[j] - (z ? mz : mw)) / (z ? gz : gw);
            return size * x / (1.0 + x * x);
          });
          return;
        case 1:
          symmetric([&](std::size_t j) {
            const double c = in.cos_theta[j];
            return size * ((1.0 - c * c) - 0.6);
          });
          return;
        case 2:
          symmetric(
              [&](std::size_t j) { return size * (EwRecoilShape(in.pt[j]) - p[3 + boson[j]]); });
          return;
        default:
          symmetric([&](std::size_t j) {
            const double c = in.cos_theta[j];
            return size * (c * c - 0.4) * (1.0 + in.pt[j] / (in.pt[j] + kEwRecoilQ));
          });
          return;
      }
    }
  }
}

void TheoryVariations::Weights(std::size_t k, const EventBatch& batch, std::size_t begin,
                               std::size_t end, double* up, double* down) const {
  TheoryInputs in;
  Prepare(batch, begin, end, &in);
  Weights(k, in, up, down);
}

}  // namespace lepus::models
