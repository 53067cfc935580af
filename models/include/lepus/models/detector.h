// The muon detector model of the generator and of the producers' detector systematics
// (physics reference, section 3):
//   * acceptance |eta| < eta_max (2.4), reconstruction threshold pT > min_pt;
//   * curvature resolution sigma_k / k = resolution_scale * sqrt(a(eta)^2 + (b(eta) pT)^2),
//     a = res_a0 (1 + res_a2 eta^2), b = res_b0 (1 + res_b2 eta^2): about 1% in the barrel at
//     40 GeV, 2% at |eta| = 2.4;
//   * a momentum-scale bias per eta bin (kScaleEtaBins bins in [-2.4, 2.4]):
//         dk/k = A - e * k + q * M / k,   with k = 1 / pT (GeV^-1, the unsigned curvature),
//     i.e. dk/k = A - e / pT + q M pT: A magnetic-field-like (dimensionless), e energy-loss-like
//     (GeV), M alignment-like (GeV^-1, charge-antisymmetric). The measured curvature is
//     k' = k (1 + dk/k), so pT' = pT / (1 + dk/k). Zero in simulation; "data" has a hidden bias;
//   * efficiencies (reco, tracking, id, trigger, isolation) as smooth functions of the
//     reconstructed (eta, pT, charge): the nominal model of the simulation (NominalEfficiency)
//     times 1 + (a per-kind variation) in data, clipped to [0, 1];
//   * hadronic recoil u_T = recoil_response * u_T(true) + Gaussian(recoil_sigma) per component;
//   * isolation of prompt muons: with probability eff(isolation) rel_iso is drawn from an
//     exponential of mean iso_pass_mean truncated to [0, kIsoCut), otherwise kIsoCut plus an
//     exponential of mean iso_fail_mean.
// All functions on the hot path are const noexcept and unchecked (the parameters are validated
// once in the DetectorModel constructor); changes there must be measured (generator_bench).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lepus::models {

// Scale-calibration eta binning (also the W-mass eta axis): 48 bins of 0.1 in [-2.4, 2.4].
inline constexpr int kScaleEtaBins = 48;
inline constexpr double kScaleEtaMin = -2.4;
inline constexpr double kScaleEtaMax = 2.4;
// Bin of eta, clamped to [0, kScaleEtaBins - 1] (so |eta| slightly above 2.4 uses the last bin).
int ScaleEtaBin(double eta) noexcept;
double ScaleEtaBinCenter(int bin) noexcept;

// The isolation cut of the analyses: isolated <=> rel_iso < kIsoCut.
inline constexpr double kIsoCut = 0.15;

// Momentum-scale parameters of one eta bin (see the header comment for units).
struct ScaleBias {
  double A = 0.0;  // dimensionless
  double e = 0.0;  // GeV
  double M = 0.0;  // GeV^-1
};
using ScaleTable = std::array<ScaleBias, kScaleEtaBins>;

// dk/k = A - e / pt + q M pt.
inline double CurvatureShift(const ScaleBias& b, double pt, int charge) noexcept {
  return b.A - b.e / pt + charge * b.M * pt;
}
// The muon pT after a curvature shift of its eta bin: pt / (1 + dk/k). This is how producers
// apply momentum-scale variations (dA, de, dM per eta bin) event by event to the reconstructed
// pT; for the small shifts of the calibration nuisances evaluating dk/k at the reconstructed pT
// instead of the true one is exact to first order.
inline double ApplyScaleShift(double pt, double eta, int charge, const ScaleTable& shift) noexcept {
  return pt / (1.0 + CurvatureShift(shift[ScaleEtaBin(eta)], pt, charge));
}

enum class EfficiencyKind : std::uint8_t { kReco, kTracking, kId, kTrigger, kIsolation };
inline constexpr int kNumEfficiencyKinds = 5;
std::string ToString(EfficiencyKind kind);  // "reco", "tracking", "id", "trigger", "isolation"
EfficiencyKind EfficiencyKindFromString(std::string_view name);  // throws std::invalid_argument

// Relative data/simulation efficiency difference of one kind:
//   eff / eff_nominal - 1 = offset + eta2 (eta/2.4)^2 + eta1 (eta/2.4) + charge * q.
struct EfficiencyVariation {
  double offset = 0.0;
  double eta2 = 0.0;
  double eta1 = 0.0;
  double charge = 0.0;
};

struct DetectorParams {
  double eta_max = 2.4;  // acceptance |eta| < eta_max; in (0, 2.4]
  double min_pt = 5.0;   // GeV, reconstruction threshold; >= 0
  // Curvature resolution (see above); a dimensionless, b in GeV^-1; all >= 0.
  double res_a0 = 0.0075;
  double res_a2 = 0.15;
  double res_b0 = 1.5e-4;
  double res_b2 = 0.2;
  double resolution_scale = 1.0;  // > 0; multiplies sigma_k/k
  ScaleTable scale_bias{};        // per eta bin; |A|, |e/40|, |M*40| < 0.05
  std::array<EfficiencyVariation, kNumEfficiencyKinds> efficiency_variation{};  // by kind
  double recoil_response = 0.9;                                                 // in (0, 2]
  double recoil_sigma = 7.0;     // GeV per component; >= 0
  double iso_pass_mean = 0.035;  // scale of the isolated prompt-muon rel_iso; > 0
  double iso_fail_mean = 0.12;   // scale of the non-isolated tail above kIsoCut; > 0

  // The simulation's detector: no scale bias, nominal efficiencies (the defaults above).
  static DetectorParams Simulation();
  // The default "data" detector (the hidden truth that calibration and efficiency measurements
  // should recover): a smooth eta-dependent scale bias with residuals ~5e-4 (central) to a few
  // 1e-3 (forward) at W momenta, and efficiencies lower by a few per mille (reco, tracking) to
  // about a percent (trigger forward). Same resolution and recoil as the simulation.
  static DetectorParams DefaultData();

  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
  // All fields as a JSON object (written into event files).
  std::string ToJson() const;
};

// The detector functions for one parameter set. Cheap to copy; const methods are thread-safe.
class DetectorModel {
 public:
  // Throws std::invalid_argument with the IsValid message.
  explicit DetectorModel(const DetectorParams& params);
  const DetectorParams& params() const noexcept { return params_; }

  bool InAcceptance(double eta) const noexcept {
    return eta < params_.eta_max && eta > -params_.eta_max;
  }
  // sigma_k / k at (pt, eta).
  double RelativeResolution(double pt, double eta) const noexcept;
  // Reconstructed pT of a muon of true (pt, eta, charge): bias of its eta bin, then Gaussian
  // smearing of the curvature with the standard-normal draw `gauss`. Returns <= 0 for a muon
  // whose smeared curvature has the wrong sign (not reconstructed; negligible above 5 GeV).
  double SmearPt(double pt, double eta, int charge, double gauss) const noexcept;
  // The efficiency of this detector (nominal x (1 + variation), clipped to [0, 1]).
  double Efficiency(EfficiencyKind kind, double eta, double pt, int charge) const noexcept;
  // The simulation's nominal efficiency model: smooth in eta and pT, a trigger turn-on at 24 GeV,
  // a small charge asymmetry of the trigger.
  static double NominalEfficiency(EfficiencyKind kind, double eta, double pt, int charge) noexcept;
  // rel_iso of a prompt muon from two uniforms in (0, 1): pass decided by the caller
  // (u_pass < Efficiency(kIsolation, ...)); u_value draws the value.
  double PromptIsolation(bool pass, double u_value) const noexcept;

 private:
  DetectorParams params_;
  double iso_pass_norm_ = 0.0;  // 1 - exp(-kIsoCut / iso_pass_mean)
};

}  // namespace lepus::models
