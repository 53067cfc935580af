// The extended ABCD estimate of the non-prompt background (physics reference, section 1; the
// seed's "Non-prompt Background"): six regions by transverse mass (edges 0, 20, 40, inf GeV) and
// isolation (pass: rel_iso < 0.15),
//
//              mT:   0-20    20-40    > 40
//     pass          Bx       B        D  (signal region)
//     fail          Ax       A        C
//
// D = C (B / A)^2 (Ax / Bx) per (eta, pT, charge) bin, each region's count being data minus the
// prompt simulation. The prediction is then smoothed in pT per (eta, charge) and given nuisances
// for the smoothing parameters, the normalisation and the shape. Pure computation on plain
// arrays: the producer fills the region histograms and calls EstimateNonprompt.
//
// Bin layout of every array: flat index (ieta * n_pt + ipt) * n_charge + iq (charge fastest,
// iq = 0 for negative, 1 for positive when n_charge = 2), n_eta * n_pt * n_charge entries.
//
// Per bin (N_R = data_R - prompt_R, var_R = data sumw2_R + prompt sumw2_R):
//   D = C (B/A)^2 (Ax/Bx),
//   (sigma_D / D)^2 = var_C/C^2 + 4 var_B/B^2 + 4 var_A/A^2 + var_Ax/Ax^2 + var_Bx/Bx^2;
// a bin with N_A, N_Bx or N_C <= 0, or N_B, N_Ax <= 0, predicts 0 (and is left out of the
// smoothing fit).
//
// Smoothing (options.smoothing_order >= 0): per (eta, charge), ln D(pT) is fitted with a
// polynomial of that order in x = 2 (pT - pT_lo) / (pT_hi - pT_lo) - 1 (bin centres, Chebyshev
// basis) by weighted least squares with weights D^2 / sigma_D^2; the smoothed template is
// exp(poly(x)), its sumw2 is 0 (the fit uncertainty is carried by nuisances). The parameter
// covariance V (optionally scaled by chi2/ndf when larger than 1) is diagonalised; eigenpair
// (l, v) gives the nuisance template  exp(poly(x) +- sqrt(l) sum_k v_k T_k(x)). With
// smoothing_order < 0 the raw prediction is used, with its propagated variance as sumw2.
//
// Every template is then multiplied by norm_correction; the normalisation nuisance scales it
// by (1 + norm_uncertainty)^(+-1); the shape nuisances multiply by 1 +- shape_pt x (x as above,
// a tilt across the pT range) and 1 +- shape_eta z with z = 2 |eta_centre| / eta_abs_max - 1
// (central vs forward), eta_abs_max = max(|eta_lo|, |eta_hi|) of the binning.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace lepus::models {

enum class AbcdRegion : int { kA = 0, kAx = 1, kB = 2, kBx = 3, kC = 4, kD = 5 };
inline constexpr int kNumAbcdRegions = 6;
std::string ToString(AbcdRegion region);  // "A", "Ax", "B", "Bx", "C", "D"
// Region of an event by (mT, rel_iso) with the reference's edges (mT 0/20/40 GeV, iso 0.15).
AbcdRegion AbcdRegionOf(double mt, double rel_iso) noexcept;

struct NonpromptBinning {
  int n_eta = 48;
  int n_charge = 2;
  std::vector<double> eta_edges;  // n_eta + 1 increasing (for the eta shape nuisance)
  std::vector<double> pt_edges;   // n_pt + 1 increasing (the smoothing uses bin centres)
  int n_pt() const { return static_cast<int>(pt_edges.size()) - 1; }
  std::size_t size() const;
  std::size_t Index(int ieta, int ipt, int iq) const {
    return (static_cast<std::size_t>(ieta) * n_pt() + ipt) * n_charge + iq;
  }
  // The W-mass binning: 48 eta in [-2.4, 2.4], 30 pT in [26, 56], 2 charges.
  static NonpromptBinning WMass();
  bool IsValid(std::string* error) const;
};

// Weighted counts of one region: sumw and sumw2 per bin.
struct RegionHistogram {
  std::vector<double> sumw, sumw2;
};

struct NonpromptInputs {
  NonpromptBinning binning;
  // Indexed by AbcdRegion; D (the signal region) is not used by the estimate (its data are the
  // fitted data) and may be left empty.
  std::array<RegionHistogram, kNumAbcdRegions> data;
  std::array<RegionHistogram, kNumAbcdRegions> prompt;  // prompt simulation (empty = none)
  bool IsValid(std::string* error) const;
};

enum class SmoothingDecorrelation {
  kPerEtaCharge,  // one nuisance per eigenvector per (eta, charge): n_eta x n_charge x (order+1)
  kCorrelated,    // order+1 nuisances, each applying the eigenvector shift of every (eta, charge)
                  // coherently (a light-configuration approximation)
};

struct NonpromptOptions {
  int smoothing_order = 2;    // polynomial order in pT of ln D; -1 = no smoothing; <= 5
  bool scale_by_chi2 = true;  // inflate the fit covariance by chi2/ndf when > 1
  SmoothingDecorrelation decorrelation = SmoothingDecorrelation::kPerEtaCharge;
  double norm_correction = 1.0;     // multiplies the prediction (the reference applies ~1.15 from
                                    // its control regions; the generator's factorisation is exact,
                                    // so 1 here); > 0
  double norm_uncertainty = 0.15;   // relative; >= 0 (0 = no normalisation nuisance)
  double shape_pt = 0.05;           // relative tilt across the pT range; >= 0 (0 = none)
  double shape_eta = 0.05;          // relative |eta| shape; >= 0 (0 = none)
  bool shape_per_charge = false;    // the two shape nuisances per charge
  static NonpromptOptions Full();   // per (eta, charge) smoothing nuisances
  static NonpromptOptions Light();  // correlated smoothing nuisances
  bool IsValid(std::string* error) const;
};

// One variation template (dense, binning.size() entries).
struct NonpromptVariation {
  std::string name;  // "nonpromptSmooth_eta<e>_<plus|minus>_eig<k>", "nonpromptSmooth_eig<k>",
                     // "nonpromptNorm", "nonpromptShapePt[_plus|_minus]", "nonpromptShapeEta..."
  std::string group = "nonprompt";
  std::vector<double> up, down;
  // The bins where up/down differ from the nominal lie in [first_bin, last_bin] (flat indices).
  std::size_t first_bin = 0, last_bin = 0;
};

// Quality of one (eta, charge) smoothing fit.
struct SmoothingFit {
  int ieta = 0, iq = 0;
  int points = 0;  // bins used
  int order = 0;   // order actually used (reduced when points <= order)
  double chi2 = 0.0;
  int ndf = 0;
  std::vector<double> coeff;       // Chebyshev coefficients of ln D
  std::vector<double> covariance;  // (order+1)^2 row-major (after chi2 scaling)
  bool ok = false;                 // false: no usable points (template 0 in this slice)
};

struct NonpromptResult {
  std::vector<double> raw, raw_sumw2;  // the unsmoothed ABCD prediction and its variance
  std::vector<double> nominal, sumw2;  // the template for the fit (smoothed, corrected)
  std::vector<NonpromptVariation> variations;
  std::vector<SmoothingFit> fits;  // per (eta, charge), ieta-major
};

// Throws std::invalid_argument with the IsValid message of inputs or options.
NonpromptResult EstimateNonprompt(const NonpromptInputs& inputs, const NonpromptOptions& options);

}  // namespace lepus::models
