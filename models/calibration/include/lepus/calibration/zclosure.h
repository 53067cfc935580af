// The Z -> mu mu closure test of a muon momentum calibration (`lepus calibrate zclosure`;
// docs/calibration.md, "Z -> mu mu closure"): Z -> mu mu "data" (the biased detector) corrected
// with the calibration's central values (CalibrationParameters::CorrectPt) against the nominal
// simulation, through the same mass-scale measurement and Ceres global fit as the J/psi
// calibration (jpsi_calibration.h: DimuonMassHistogram, MeasureMassScales, FitScaleParameters).
//
// The fitted parameters are the residual bias of the corrected data relative to the simulation,
// per eta bin of the calibration, in the conventions of calibration.h: a field-like A and an
// alignment-like M; e is held at 0 because the Z muons have nearly one momentum (pT ~ 40 GeV), at
// which e / pT cannot be told from A (a residual e shows up as A - e / <pT>). A calibration that
// is off by (dA, de, dM) in a bin leaves the residual (-dA + de / <pT>, 0, -dM) there.
//
// Consistency with zero is judged with two covariances: the Z statistical one (Ceres, J^T J
// inverse) and the calibration's own statistical covariance propagated linearly into the residual
// parameters (the J/psi fit's error moves the corrected data); chi2 = r^T (C_Z + C_cal)^-1 r over
// the fitted (A, M). The closure uncertainty written into the calibration
// (CalibrationParameters::closure, one nuisance per eta bin, MomentumNuisances kClosure) is per
// bin and component
//     closure = sign(r) max(sigma_Z, sqrt(max(0, r^2 - sigma_cal^2)))     (A and M; e = 0),
// i.e. the part of the residual r not explained by the calibration's own propagated statistical
// uncertainty sigma_cal (which its statistical nuisances already cover), and at least the Z
// statistical precision sigma_Z. For an exact calibration (sigma_cal = 0): max(|r|, sigma_Z).
// Plus one global term (closure.global, schema version 2): the reference Z mass's own uncertainty
// as a coherent A shift (ZClosureOptions::lep_mass_uncertainty_mev).
// This library links Ceres (lepus::calibration).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "lepus/calibration/jpsi_calibration.h"
#include "lepus/models/calibration.h"
#include "lepus/models/detector.h"

namespace lepus::calibration {

inline constexpr double kZClosureMass = 91.1876;  // GeV, reference of log(m / m_Z)

struct ZClosureOptions {
  // Muon pT bins of the (eta+, pT+, eta-, pT-) mass bins (GeV, increasing). Two bins split at the
  // median Z muon pT: (pT+ high, pT- low) against the reverse separates the charge-antisymmetric
  // M from A. The eta bins are the calibration's.
  std::vector<double> pt_edges = {25.0, 42.0, 70.0};
  // Z -> mu mu events expected in the generated data (Poisson, data truth: efficiencies by
  // accept/reject); > 0. Simulation: sim_factor x num_data_events generated; > 0.
  std::uint64_t num_data_events = 10000000;
  double sim_factor = 2.0;
  // Data use the generator seed `seed`, the simulation `seed + 1` (the main generator's streams
  // are keyed by (seed, process): equal seeds would share random numbers).
  std::uint64_t seed = 1;
  DetectorParams data_detector = DetectorParams::DefaultData();  // the hidden truth
  DetectorParams sim_detector = DetectorParams::Simulation();
  // Event files to read instead (both or neither; docs/events.md): `lepus generate --process
  // zmumu [--data]`; attribute "sample" must match the role, "process" (if present) be "zmumu".
  std::vector<std::string> data_files;
  std::vector<std::string> sim_files;
  // The global (LEP-like) closure term: the uncertainty of the reference Z mass (LEP: 2.1 MeV)
  // as a coherent field-like shift A = lep_mass_uncertainty_mev / m_Z of every bin
  // (CalibrationParameters::closure.global, one nuisance); 0 = none; >= 0.
  double lep_mass_uncertainty_mev = 2.1;
  int min_events_per_bin = 50;  // >= 10
  double window_sigmas = 2.5;   // >= 1
  ScaleFitOptions fit = DefaultFit();
  int num_threads = 0;                   // generation, histogramming, Ceres; 0 = all cores
  std::uint64_t batch_events = 1 << 20;  // events per batch; > 0

  static ScaleFitOptions DefaultFit();  // sparse normal Cholesky, e fixed
  // Tests: 2e6 data events, dense QR.
  static ZClosureOptions Light();

  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
};

struct ZClosureSummary {
  // The residual fit: mass bins (with `fitted`), Ceres reports, status, chi2 of the mass bins,
  // event counts and timings (generate_seconds, scale_fit_seconds, global_fit_seconds,
  // covariance_seconds).
  JpsiCalibrationSummary fit;
  // Per eta bin of the calibration: the residual (A, e = 0, M), its Z statistical uncertainty
  // and the calibration's statistical uncertainty propagated into it (0 for unused bins).
  std::vector<ScaleBias> residual, stat_error, calibration_error;
  std::vector<char> used;  // eta bins with mass bins
  // Over the fitted (A, M) of the used bins (ndf = their number):
  int ndf = 0;
  double chi2_stat = -1.0;   // r^T C_Z^-1 r
  double chi2_total = -1.0;  // r^T (C_Z + C_cal)^-1 r
  double p_value_stat = -1.0, p_value_total = -1.0;
  double max_abs_pull = 0.0;  // max |r| / sqrt(C_Z + C_cal) (diagonal)
  double propagation_seconds = 0.0;

  // "Z closure: converged, chi2/ndf = ... (Z stat), ... (Z stat + calibration), p = ..."
  std::string BriefReport() const;
  // BriefReport, the fit's FullReport and a per-eta-bin table of the residuals.
  std::string FullReport(const std::vector<double>& eta_edges) const;
};

// The closure test of `calibration` (any eta binning within [-2.4, 2.4]). Returns a copy of the
// calibration with `closure` filled (definition above; unchanged central values and covariance)
// and the description extended. Throws std::invalid_argument for invalid options or calibration;
// io::InputError for bad event files; numerical outcomes in summary->fit.status.
CalibrationParameters RunZClosure(const CalibrationParameters& calibration,
                                  const ZClosureOptions& options, ZClosureSummary* summary,
                                  const CalibrationProgress& progress = {});

}  // namespace lepus::calibration
