#include "lepus/models/detector.h"

#include "lepus/models/internal/validation.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace lepus::models {

namespace {

constexpr std::array<const char*, kNumEfficiencyKinds> kEffNames = {"reco", "tracking", "id",
                                                                    "trigger", "isolation"};

// "<field> is <value>, but must be <constraint>"
using detail::Fail;

}  // namespace

int ScaleEtaBin(double eta) noexcept {
  constexpr double kWidth = (kScaleEtaMax - kScaleEtaMin) / kScaleEtaBins;
  const int bin = static_cast<int>(std::floor((eta - kScaleEtaMin) / kWidth));
  return std::clamp(bin, 0, kScaleEtaBins - 1);
}

double ScaleEtaBinCenter(int bin) noexcept {
  constexpr double kWidth = (kScaleEtaMax - kScaleEtaMin) / kScaleEtaBins;
  return kScaleEtaMin + (bin + 0.5) * kWidth;
}

std::string ToString(EfficiencyKind kind) { return kEffNames[static_cast<int>(kind)]; }

EfficiencyKind EfficiencyKindFromString(std::string_view name) {
  for (int i = 0; i < kNumEfficiencyKinds; ++i)
    if (name == kEffNames[i]) return static_cast<EfficiencyKind>(i);
  throw std::invalid_argument("unknown efficiency kind '" + std::string(name) +
                              "' (valid: reco, tracking, id, trigger, isolation)");
}

DetectorParams DetectorParams::Simulation() { return DetectorParams{}; }

DetectorParams DetectorParams::DefaultData() {
  DetectorParams p;
  // A smooth, structured bias: larger forward, with an alignment-like charge-antisymmetric term.
  for (int i = 0; i < kScaleEtaBins; ++i) {
    const double eta = ScaleEtaBinCenter(i);
    const double x = eta / 2.4;
    p.scale_bias[i].A = 2.0e-4 + 1.2e-3 * x * x * x * x + 1.5e-4 * std::sin(2.7 * eta);
    p.scale_bias[i].e = 0.004 + 0.012 * x * x;
    p.scale_bias[i].M = 6.0e-6 * std::sin(1.9 * eta + 0.4) + 3.0e-5 * x * x * x;
  }
  using K = EfficiencyKind;
  p.efficiency_variation[static_cast<int>(K::kReco)] = {-0.002, -0.003, 0.0, 0.0};
  p.efficiency_variation[static_cast<int>(K::kTracking)] = {-0.001, -0.002, 0.0, 0.0};
  p.efficiency_variation[static_cast<int>(K::kId)] = {-0.004, -0.006, 0.001, 0.0};
  p.efficiency_variation[static_cast<int>(K::kTrigger)] = {-0.008, -0.012, 0.0, 0.002};
  p.efficiency_variation[static_cast<int>(K::kIsolation)] = {-0.005, 0.004, 0.0, 0.0};
  return p;
}

bool DetectorParams::IsValid(std::string* error) const {
  auto finite = [](double v) { return std::isfinite(v); };
  if (!(eta_max > 0.0 && eta_max <= 2.4)) return Fail(error, "eta_max", eta_max, "in (0, 2.4]");
  if (!(min_pt >= 0.0 && finite(min_pt))) return Fail(error, "min_pt", min_pt, ">= 0");
  const std::pair<const char*, double> nonneg[] = {{"res_a0", res_a0},
                                                   {"res_a2", res_a2},
                                                   {"res_b0", res_b0},
                                                   {"res_b2", res_b2},
                                                   {"recoil_sigma", recoil_sigma}};
  for (const auto& [name, v] : nonneg)
    if (!(v >= 0.0 && finite(v))) return Fail(error, name, v, ">= 0 and finite");
  if (!(resolution_scale > 0.0 && finite(resolution_scale)))
    return Fail(error, "resolution_scale", resolution_scale, "> 0");
  if (!(recoil_response > 0.0 && recoil_response <= 2.0))
    return Fail(error, "recoil_response", recoil_response, "in (0, 2]");
  if (!(iso_pass_mean > 0.0 && finite(iso_pass_mean)))
    return Fail(error, "iso_pass_mean", iso_pass_mean, "> 0");
  if (!(iso_fail_mean > 0.0 && finite(iso_fail_mean)))
    return Fail(error, "iso_fail_mean", iso_fail_mean, "> 0");
  for (int i = 0; i < kScaleEtaBins; ++i) {
    const ScaleBias& b = scale_bias[i];
    const std::string at = "scale_bias[" + std::to_string(i) + "].";
    if (!(std::abs(b.A) < 0.05)) return Fail(error, at + "A", b.A, "in (-0.05, 0.05)");
    if (!(std::abs(b.e) < 2.0)) return Fail(error, at + "e", b.e, "in (-2, 2) GeV");
    if (!(std::abs(b.M) < 1e-3)) return Fail(error, at + "M", b.M, "in (-1e-3, 1e-3) / GeV");
  }
  for (int k = 0; k < kNumEfficiencyKinds; ++k) {
    const EfficiencyVariation& v = efficiency_variation[k];
    const std::string at = std::string("efficiency_variation[") + kEffNames[k] + "].";
    const std::pair<const char*, double> terms[] = {
        {"offset", v.offset}, {"eta2", v.eta2}, {"eta1", v.eta1}, {"charge", v.charge}};
    for (const auto& [name, value] : terms)
      if (!(std::abs(value) <= 0.5)) return Fail(error, at + name, value, "in [-0.5, 0.5]");
  }
  return true;
}

std::string DetectorParams::ToJson() const {
  nlohmann::ordered_json j;
  j["eta_max"] = eta_max;
  j["min_pt"] = min_pt;
  j["res_a0"] = res_a0;
  j["res_a2"] = res_a2;
  j["res_b0"] = res_b0;
  j["res_b2"] = res_b2;
  j["resolution_scale"] = resolution_scale;
  nlohmann::ordered_json a = nlohmann::json::array(), e = nlohmann::json::array(),
                         m = nlohmann::json::array();
  for (const ScaleBias& b : scale_bias) {
    a.push_back(b.A);
    e.push_back(b.e);
    m.push_back(b.M);
  }
  j["scale_bias"] = {{"A", a}, {"e", e}, {"M", m}};
  nlohmann::ordered_json effs;
  for (int k = 0; k < kNumEfficiencyKinds; ++k) {
    const EfficiencyVariation& v = efficiency_variation[k];
    effs[kEffNames[k]] = {
        {"offset", v.offset}, {"eta2", v.eta2}, {"eta1", v.eta1}, {"charge", v.charge}};
  }
  j["efficiency_variation"] = effs;
  j["recoil_response"] = recoil_response;
  j["recoil_sigma"] = recoil_sigma;
  j["iso_pass_mean"] = iso_pass_mean;
  j["iso_fail_mean"] = iso_fail_mean;
  return j.dump();
}

DetectorModel::DetectorModel(const DetectorParams& params) : params_(params) {
  std::string error;
  if (!params_.IsValid(&error)) throw std::invalid_argument("detector parameters: " + error);
  iso_pass_norm_ = -std::expm1(-kIsoCut / params_.iso_pass_mean);
}

double DetectorModel::RelativeResolution(double pt, double eta) const noexcept {
  const double eta2 = eta * eta;
  const double a = params_.res_a0 * (1.0 + params_.res_a2 * eta2);
  const double b = params_.res_b0 * (1.0 + params_.res_b2 * eta2) * pt;
  return params_.resolution_scale * std::sqrt(a * a + b * b);
}

double DetectorModel::SmearPt(double pt, double eta, int charge, double gauss) const noexcept {
  const double k =
      (1.0 / pt) * (1.0 + CurvatureShift(params_.scale_bias[ScaleEtaBin(eta)], pt, charge));
  const double k_reco = k * (1.0 + RelativeResolution(pt, eta) * gauss);
  return k_reco > 0.0 ? 1.0 / k_reco : -1.0;
}

double DetectorModel::NominalEfficiency(EfficiencyKind kind, double eta, double pt,
                                        int charge) noexcept {
  const double x = eta / 2.4;
  const double x2 = x * x;
  switch (kind) {
    case EfficiencyKind::kReco:
      return 0.995 - 0.010 * x2 * x2;
    case EfficiencyKind::kTracking:
      return 0.998 - 0.006 * x2;
    case EfficiencyKind::kId:
      return (0.985 - 0.020 * x2) * (1.0 - 0.03 * std::exp(-(pt - 10.0) / 8.0));
    case EfficiencyKind::kTrigger: {
      // IsoMu24-like: plateau falling forward, a per-mille charge asymmetry, turn-on at 24 GeV.
      const double plateau = 0.93 - 0.07 * x2 + 0.004 * charge * x;
      return plateau / (1.0 + std::exp(-(pt - 24.0) / 0.8));
    }
    case EfficiencyKind::kIsolation:
      return std::clamp(0.975 - 0.10 * std::exp(-(pt - 15.0) / 12.0) - 0.01 * x2, 0.0, 1.0);
  }
  return 1.0;
}

double DetectorModel::Efficiency(EfficiencyKind kind, double eta, double pt,
                                 int charge) const noexcept {
  const EfficiencyVariation& v = params_.efficiency_variation[static_cast<int>(kind)];
  const double x = eta / 2.4;
  const double factor = 1.0 + v.offset + v.eta2 * x * x + v.eta1 * x + v.charge * charge;
  return std::clamp(NominalEfficiency(kind, eta, pt, charge) * factor, 0.0, 1.0);
}

double DetectorModel::PromptIsolation(bool pass, double u_value) const noexcept {
  if (pass) {
    // Exponential of scale iso_pass_mean truncated to [0, kIsoCut): exact inverse CDF.
    return -params_.iso_pass_mean * std::log1p(-u_value * iso_pass_norm_);
  }
  return kIsoCut - params_.iso_fail_mean * std::log(u_value);
}

}  // namespace lepus::models
