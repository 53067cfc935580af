// The muon momentum calibration parameter set: (A, e, M) per eta bin with their covariance, the
// JSON file that the J/psi calibration (`lepus calibrate jpsi`) writes and the W, W-like
// and dilepton producers read (docs/calibration.md), a built-in synthetic default, and the
// momentum-scale nuisances derived from it (eigenvectors of the covariance x sqrt(eigenvalue) x a
// statistical scale factor, 2.1 by default).
//
// Sign conventions (the same as detector.h, CurvatureShift):
//   * k = 1 / pT is the unsigned curvature (GeV^-1), q = +-1 the charge;
//   * the bias of the measured curvature is  dk/k = A - e k + q M / k = A - e / pT + q M pT,
//     with A magnetic-field-like (dimensionless), e energy-loss-like (GeV), M alignment-like
//     (GeV^-1, charge-antisymmetric); the measured curvature is k_meas = k_true (1 + dk/k).
//   * The calibration parameters are the measured bias of the data relative to the simulation.
//     Data are corrected with CorrectPt (pT_true = pT_meas (1 + dk/k), dk/k at pT_meas; exact to
//     first order). The nuisances shift the simulated muon pT the same way the bias would:
//     pT' = pT / (1 + dk/k) with (dA, de, dM) of the nuisance (ApplyScaleShift of detector.h), so
//     a positive dA lowers pT, a positive de raises pT (most at low pT), a positive dM raises
//     the pT of negative muons and lowers that of positive ones (most at high pT).
//   * To first order the relative pT shift of a nuisance is dpT / pT = -dk/k.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "lepus/models/detector.h"

namespace lepus::models {

// Current version of the calibration file schema. Readers accept versions
// kCalibrationMinSchemaVersion .. kCalibrationSchemaVersion (version 2 added the optional
// "closure_global", version 3 the optional "status" / "status_message" of a failed fit; every
// older file is a valid newer one). Writers write the lowest version that holds the content (3
// for a failed fit, else 2 when closure_global is set, else 1), so older lepus versions still
// read every converged calibration and refuse (as "newer") a failed one.
inline constexpr int kCalibrationSchemaVersion = 3;
inline constexpr int kCalibrationMinSchemaVersion = 1;

// Parameters are ordered (A, e, M) per bin: index 3 * bin + p with p = 0 (A), 1 (e), 2 (M).
inline constexpr int kCalibrationParamsPerBin = 3;

// Optional closure uncertainties (the Z -> mu mu closure of the J/psi calibration,
// `lepus calibrate zclosure`, zclosure.h). Each bin's (A, e, M) triple is one nuisance that shifts
// only that bin; `global` (schema version 2) is one nuisance shifting every bin coherently, e.g.
// the LEP Z-mass uncertainty as a field-like A = 2.1 MeV / m_Z (all zero = none).
struct ClosureUncertainty {
  std::vector<ScaleBias> per_bin;  // empty = none
  ScaleBias global;                // all zero = none
  bool HasGlobal() const noexcept { return global.A != 0.0 || global.e != 0.0 || global.M != 0.0; }
};

// The calibration result.
struct CalibrationParameters {
  // The version read from a file (1 or 2); writing uses the lowest one that holds the content.
  int schema_version = kCalibrationSchemaVersion;
  std::string description;        // free text (how it was made)
  std::vector<double> eta_edges;  // num_bins + 1 increasing edges
  std::vector<ScaleBias> params;  // per bin: the measured bias (A, e, M)
  Eigen::MatrixXd covariance;     // 3 num_bins square, symmetric positive semi-definite
  ClosureUncertainty closure;     // optional (Z closure)
  // Optional per-eta-bin relative uncertainty of the curvature resolution (the J/psi width fit:
  // max(|rho - 1|, sigma_rho); resolution nuisances); empty = none.
  std::vector<double> resolution_uncertainty;
  // Outcome of the fit that made it: "converged", "not_converged" or "covariance_failed"
  // (ToString(CalibrationFitStatus)); a file without "status" is "converged" (docs/calibration.md).
  std::string status = "converged";
  std::string status_message;  // the solver's explanation when status != "converged"

  int num_bins() const { return static_cast<int>(params.size()); }
  // Bin of eta, clamped to [0, num_bins - 1].
  int Bin(double eta) const noexcept;
  // dk/k of the central values at (eta, pt, charge).
  double CurvatureShift(double eta, double pt, int charge) const noexcept;
  // Corrects a measured data pT: pt (1 + dk/k).
  double CorrectPt(double eta, double pt, int charge) const noexcept;
  // The central values as a ScaleTable when the binning is the default 48 bins in [-2.4, 2.4]
  // (throws std::invalid_argument otherwise).
  ScaleTable ToScaleTable() const;
  // Parameter uncertainty sqrt(C_ii) of bin/parameter (p = 0 A, 1 e, 2 M).
  double Uncertainty(int bin, int p) const;

  // False with "<field>[<index>] is <value>, but must be <constraint>" in *error: binning,
  // sizes, finite values, symmetric covariance with non-negative diagonal, a known status.
  bool IsValid(std::string* error) const;
  // False (with the field in *error) when a valid calibration must not be used to correct data
  // or make nuisances: status other than "converged" (the fit failed), or a covariance without a
  // single positive diagonal element (no uncertainty: the momentum-scale nuisances would vanish;
  // not checked with require_uncertainty = false, for RunZClosure's exactly known inputs).
  bool IsUsable(std::string* error, bool require_uncertainty = true) const;
};

// The built-in synthetic calibration: 48 bins in [-2.4, 2.4], independent 3x3 blocks per bin
// (so each nuisance touches one eta bin), uncertainties
//   sigma_A = 1e-4 + 4e-4 (|eta| / 2.4)^2,  sigma_e = 1e-3 (1 + 2 (|eta| / 2.4)^2) GeV,
//   sigma_M = 2e-6 (1 + 3 (|eta| / 2.4)^2) GeV^-1,  corr(A, e) = 0.6, corr(A, M) = corr(e, M) = 0,
// and central values `central` (default: the default data detector's bias,
// DetectorParams::DefaultData().scale_bias, i.e. a calibration that measured the truth), plus a
// Gaussian fluctuation drawn from the covariance when seed != 0.
struct SyntheticCalibrationOptions {
  ScaleTable central = DetectorParams::DefaultData().scale_bias;
  double uncertainty_scale = 1.0;  // multiplies all uncertainties; > 0
  std::uint64_t seed = 0;          // 0 = no fluctuation
};
CalibrationParameters SyntheticCalibration(
    const SyntheticCalibrationOptions& options = SyntheticCalibrationOptions{});

// JSON (docs/calibration.md). Read throws io::InputError naming the file and the bad key, value
// or schema version, and by default (kUsable) also for a calibration that is not IsUsable (a
// failed fit, an all-zero covariance): every consumer reads through here. kStructure reads a
// failed calibration too (inspection, tests). Write throws io::InputError when the file cannot be
// written.
enum class CalibrationCheck { kUsable, kStructure };
CalibrationParameters ReadCalibration(const std::string& path,
                                      CalibrationCheck check = CalibrationCheck::kUsable);
CalibrationParameters CalibrationFromJson(const std::string& json_text,
                                          const std::string& origin = "<string>",
                                          CalibrationCheck check = CalibrationCheck::kUsable);
void WriteCalibration(const std::string& path, const CalibrationParameters& calibration);
std::string CalibrationToJson(const CalibrationParameters& calibration);

// Kind of a momentum nuisance.
enum class MomentumNuisanceKind : std::uint8_t {
  kCalibrationStat,  // eigenvector of the calibration covariance (x stat scale)
  kClosure,          // per-bin closure uncertainty (ClosureUncertainty)
  kResolution,       // per-bin resolution uncertainty (reserved; shifts the resolution only)
};

// One momentum nuisance: (dA, de, dM) shifts on the eta bins [first_bin, last_bin] (zero
// elsewhere) for the up variation; down is the opposite shift.
struct MomentumNuisance {
  // "muonScaleStat<j>", "muonScaleClosure_eta<b>", "muonScaleClosureGlobal",
  // "muonResolution_eta<b>"
  std::string name;
  std::string group;  // "muonScale" (kCalibrationStat, kClosure), "muonResolution"
  MomentumNuisanceKind kind = MomentumNuisanceKind::kCalibrationStat;
  int first_bin = 0;  // first and last eta bin touched (inclusive)
  int last_bin = -1;
  std::vector<ScaleBias> shift;    // shift[b - first_bin] for b in [first_bin, last_bin]
  std::vector<double> resolution;  // kResolution: relative change of sigma_k/k per bin

  bool Touches(int eta_bin) const noexcept { return eta_bin >= first_bin && eta_bin <= last_bin; }
  // dk/k of the up variation for a muon at (eta bin, pt, charge); 0 outside the touched bins.
  double CurvatureShift(int eta_bin, double pt, int charge) const noexcept;
  // The up-varied pT: pt / (1 + dk/k); sign = -1 gives the down variation pt / (1 - dk/k).
  double ShiftedPt(int eta_bin, double pt, int charge, int sign = +1) const noexcept;
  // The shift as a full table (default binning only; zero outside the touched bins), for
  // ApplyScaleShift of detector.h.
  ScaleTable ToScaleTable(double sign = 1.0) const;
};

struct MomentumNuisanceOptions {
  double stat_scale = 2.1;  // multiplies the eigenvector shifts; > 0
  // Eigenvalues below relative_cutoff * (largest eigenvalue of the block) are dropped (flat
  // directions of a singular covariance); >= 0.
  double relative_cutoff = 1e-12;
  bool closure = true;     // add the closure nuisances when the calibration has them
  bool resolution = true;  // add the resolution nuisances when the calibration has them
  bool IsValid(std::string* error) const;
};

// The momentum nuisances of a calibration. The covariance is split into independent blocks (eta
// bins coupled by non-zero covariance, transitively); each block is eigen-decomposed separately,
// so a nuisance touches only its block's bins. Within a block, nuisances are ordered by
// decreasing eigenvalue; blocks by their first bin. For each kept eigenpair (lambda, v):
// shift = stat_scale sqrt(lambda) v, so sum over nuisances of shift shift^T = stat_scale^2 C
// (up to dropped flat directions). The sign of v is fixed so that its largest-magnitude component
// is positive. Throws std::invalid_argument for an invalid calibration or options, and when the
// covariance has an eigenvalue below -1e-9 x the largest of its block (not positive
// semi-definite).
std::vector<MomentumNuisance> MomentumNuisances(const CalibrationParameters& calibration,
                                                const MomentumNuisanceOptions& options = {});

// Per eta bin, the indices (into `nuisances`) of the nuisances touching it: producers loop over
// these for a muon in that bin only.
std::vector<std::vector<int>> NuisancesByEtaBin(const std::vector<MomentumNuisance>& nuisances,
                                                int num_bins);

}  // namespace lepus::models
