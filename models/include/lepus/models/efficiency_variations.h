// Muon efficiency scale-factor variations (physics reference, section 3 and 4): statistical
// nuisances per (efficiency step x eta bin x pT eigenvector x charge) and systematic ones (fully
// correlated plus eta-decorrelated in regions). Pure computations; definitions and counts in
// docs/systematics.md.
//
// Model. For every step s (reco, tracking, id, trigger, isolation), eta bin b and charge q, the
// data/simulation scale factor is a smooth polynomial in pT,
//     SF(pT) = 1 + sum_{k < n} c_k T_k(x),   x = clamp(2 (pT - pt_min) / (pt_max - pt_min) - 1),
// with Chebyshev polynomials T_k and central coefficients c = 0 (the simulation's efficiencies
// are the nominal ones; the data/simulation difference is what the fit constrains). The
// coefficient covariance is the one of a weighted least-squares fit of that polynomial to a
// synthetic tag-and-probe measurement in pT bins (tnp_pt_edges) whose per-bin statistical
// uncertainty follows the Z probe spectrum:
//     sigma(pT, eta) = sigma0[s] (1 + eta_growth (|eta| / 2.4)^2) sqrt(n(40 GeV) / n(pT)),
//     n(pT) = exp(-((pT - 40) / 12)^2 / 2) + 0.05   (probe density),
// so C = (J^T W J)^-1 (the same for both charges up to sigma0). C is diagonalised, C = V L V^T,
// and eigenvector j gives the stat nuisance
//     dSF_j(pT) = sqrt(l_j) sum_k V_kj T_k(x)       (the up variation; down is -dSF_j).
// Systematic nuisances: per step one fully correlated variation dSF = syst[s] (1 + syst_slope x)
// on every eta bin and charge, and one per eta region (syst_eta_edges) with the same shape
// restricted to that region.
//
// Weights. A selected muon that passes the step gets the relative weight change
//     r = dSF / SF     (up: 1 + r, down: 1 - r);
// for the isolation step a muon that FAILS the isolation (the non-prompt sidebands) gets the
// anti-correlated change of the inefficiency, r = -dSF eff / (1 - eff) with eff its nominal
// isolation efficiency (EventBatch eff_iso in simulation), so that pass + fail is conserved.
// For an event with two selected muons the producer multiplies the two weights.
//
// Sparsity: a stat nuisance acts on one eta bin (or one eta group, see EfficiencyConfig) and one
// charge; Active() lists, for a muon, only the nuisances acting on it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lepus/models/detector.h"

namespace lepus::models {

struct EfficiencyConfig {
  // Steps with nuisances (by EfficiencyKind); all five by default.
  std::array<bool, kNumEfficiencyKinds> steps = {true, true, true, true, true};
  // Eta binning of the stat nuisances: eta_bins bins in [-2.4, 2.4] grouped eta_group at a time
  // (eta_group divides eta_bins; 1 = one nuisance set per bin).
  int eta_bins = kScaleEtaBins;
  int eta_group = 1;
  bool charge_split = true;  // stat nuisances per charge (else shared by both charges)
  int poly_order = 3;        // polynomial degree of SF(pT); 0..6
  int num_eigen = 4;         // kept eigenvectors per (step, eta group, charge), largest first;
                             // 1..poly_order + 1
  double pt_min = 24.0;      // GeV: the polynomial's pT range (x clamped outside); pt_min < pt_max
  double pt_max = 65.0;
  std::vector<double> tnp_pt_edges = {24, 26, 28, 30, 32, 34, 36, 38,
                                      40, 42, 44, 47, 50, 55, 60, 65};  // tag-and-probe pT bins
  // Per-bin statistical uncertainty of the tag-and-probe efficiency ratio at pT = 40 GeV,
  // central eta, by step (reco, tracking, id, trigger, isolation); >= 0.
  std::array<double, kNumEfficiencyKinds> sigma0 = {4e-4, 3e-4, 5e-4, 1.2e-3, 8e-4};
  double eta_growth = 1.5;  // >= 0
  // Systematic variations: size at x = 0 by step (>= 0), linear pT slope, eta regions
  // (increasing edges covering the regions that get a decorrelated nuisance; empty = none).
  bool syst = true;
  std::array<double, kNumEfficiencyKinds> syst_size = {5e-4, 5e-4, 1e-3, 2e-3, 1e-3};
  double syst_slope = 0.3;
  std::vector<double> syst_eta_edges = {-2.4, -1.6, -0.8, 0.0, 0.8, 1.6, 2.4};

  // 5 steps x 48 eta x 2 charges x 4 eigenvectors = 1920 stat + 5 x 7 syst.
  static EfficiencyConfig Full();
  // 5 steps x 2 eta groups x 2 charges x 1 eigenvector = 20 stat + 5 x 1 syst (no regions).
  static EfficiencyConfig Light();
  bool IsValid(std::string* error) const;
};

enum class EfficiencyNuisanceKind : std::uint8_t { kStat, kSystCorrelated, kSystEtaRegion };

struct EfficiencyNuisance {
  // "effStat_<step>_eta<b>_<plus|minus|both>_eig<j>", "effSyst_<step>",
  // "effSyst_<step>_etaRegion<r>"
  std::string name;
  std::string group;  // "muonEffStat", "muonEffSyst"
  EfficiencyNuisanceKind kind = EfficiencyNuisanceKind::kStat;
  EfficiencyKind step = EfficiencyKind::kReco;
  int charge = 0;  // +1 / -1: acts on that charge only; 0: both
  // Eta bins acted on, in the default 48-bin scale binning (ScaleEtaBin): [first_eta_bin,
  // last_eta_bin]. Region nuisances whose edges do not fall on bin edges act on a muon by its
  // eta (see Active), and this range covers every bin the region touches.
  int first_eta_bin = 0;
  int last_eta_bin = kScaleEtaBins - 1;
  double eta_min = -2.4, eta_max = 2.4;  // acts on eta_min <= eta < eta_max
  // dSF(x) = sum_k coeff[k] T_k(x) (the up variation).
  std::vector<double> coeff;
};

// One entry of Active(): nuisance index and relative weight change r (up 1 + r, down 1 - r).
struct ActiveEfficiencyVariation {
  int index;
  double rel;
};

class EfficiencyVariations {
 public:
  // Throws std::invalid_argument with the IsValid message.
  explicit EfficiencyVariations(EfficiencyConfig config);

  const EfficiencyConfig& config() const noexcept { return config_; }
  const std::vector<EfficiencyNuisance>& nuisances() const noexcept { return nuisances_; }
  std::size_t size() const noexcept { return nuisances_.size(); }
  std::size_t num_stat() const noexcept { return num_stat_; }
  std::size_t num_syst() const noexcept { return nuisances_.size() - num_stat_; }

  // Upper bound of the entries Active() writes for one muon.
  int MaxActive() const noexcept { return max_active_; }
  // The nuisances acting on one selected muon at (eta, pt, charge) with their relative weight
  // changes; iso_pass / eff_iso for the isolation step (see the header comment; eff_iso ignored
  // when iso_pass). Writes at most MaxActive() entries into out and returns how many. Muons
  // outside [-2.4, 2.4] use the edge bin. No allocation.
  int Active(double eta, double pt, int charge, bool iso_pass, double eff_iso,
             ActiveEfficiencyVariation* out) const noexcept;
  // Relative weight change of nuisance k for one muon (0 if it does not act on it).
  double RelativeChange(std::size_t k, double eta, double pt, int charge, bool iso_pass = true,
                        double eff_iso = 1.0) const noexcept;
  // dSF of nuisance k at pt (no eta / charge check).
  double ScaleFactorShift(std::size_t k, double pt) const noexcept;
  // Index of the first stat nuisance of (step, eta bin, charge); the num_eigen of that set follow
  // it; -1 if the step has no nuisances.
  int StatIndex(EfficiencyKind step, int eta_bin, int charge) const noexcept;
  // The coefficient covariance of the stat model of (step, eta bin) (charge-independent):
  // (poly_order + 1)^2 values, row-major. For the tests and the documentation.
  std::vector<double> CoefficientCovariance(EfficiencyKind step, int eta_bin) const;

 private:
  EfficiencyConfig config_;
  std::vector<EfficiencyNuisance> nuisances_;
  std::size_t num_stat_ = 0;
  int max_active_ = 0;
  std::array<int, kNumEfficiencyKinds> step_offset_{};  // first stat index per step, -1 if off
  int num_charge_sets_ = 2;
  std::vector<int> syst_by_step_;  // syst nuisance indices, grouped per step
};

}  // namespace lepus::models
