// Charge / eta-split mass parameters of the W-mass and W-like producers (docs/wlike.md): the
// nuisance of interest's Breit-Wigner template is split over regions of the fit channel
// (eta x pT x charge), giving one mass parameter per region ("separate") or a common mass plus
// difference parameters ("difference").
//
// Convention. Each split parameter p carries a coefficient c_p(b) per fit-channel bin b; its
// templates are symmetric in log space, with the NOI's symmetrised log shift
//     k(b) = (ln(up(b) / nom(b)) - ln(down(b) / nom(b))) / 2,
//     up_p(b) = nom(b) exp(c_p(b) k(b)),   down_p(b) = nom(b) exp(-c_p(b) k(b)),
// so the log-normal response of bin b is k(b) sum_p c_p(b) theta_p: linear in the parameters,
// and the separate and difference parametrisations are exact linear reparametrisations of each
// other (an asymmetric up/down pair would add the engine's non-linear interpolation term, which
// does not transform linearly; the +-100 MeV Breit-Wigner pair is linear to 1 MeV at +-30 MeV):
//   * separate: c = 1 inside the parameter's region, 0 elsewhere: theta_A = shift of m(A);
//   * difference (two-way splits A / B): the common parameter (c = 1 everywhere, the NOI's own
//     name) and a difference parameter with c = +1/2 in A and -1/2 in B, so that
//     m(A) = m + d/2, m(B) = m - d/2 and the difference parameter reports d = m(A) - m(B)
//     directly (100 MeV per unit, like the NOI). A = positive charge / positive eta.
// Every split parameter is a nuisance of interest with the NOI's scale and unit.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lepus/models/histogram.h"

namespace lepus::models {

enum class MassSplitKind {
  kNone,          // one mass parameter (the NOI)
  kCharge,        // per muon charge: plus, minus
  kEtaSign,       // per sign of the muon eta: eta > 0, eta < 0
  kAbsEta,        // per |eta| range (abs_eta_edges)
  kChargeAbsEta,  // per charge x |eta| range (default 24 bins of 0.1: 48 parameters)
};
enum class MassSplitMode { kSeparate, kDifference };

std::string ToString(MassSplitMode mode);  // "separate", "difference"
// Throws std::invalid_argument listing the valid names.
MassSplitMode MassSplitModeFromString(std::string_view name);

struct MassSplitConfig {
  MassSplitKind kind = MassSplitKind::kNone;
  // |eta| edges of kAbsEta / kChargeAbsEta: increasing, from 0 to 2.4, on edges of the fit
  // channel's eta bins. Empty for kChargeAbsEta = 24 bins of 0.1.
  std::vector<double> abs_eta_edges;
  // kDifference is defined for the two-way splits (kCharge, kEtaSign) and for kChargeAbsEta
  // (per |eta| range a common mass and a charge difference).
  MassSplitMode mode = MassSplitMode::kSeparate;

  bool active() const { return kind != MassSplitKind::kNone; }
  // The spec string: "none", "charge", "eta_sign", "abs_eta:0,1.2,2.4", "charge_abs_eta"
  // (or "charge_abs_eta:<edges>").
  std::string Spec() const;
  // Parses a spec string into kind and edges (mode unchanged). Throws std::invalid_argument
  // "<what> is '<spec>', but must be ..." for anything else.
  static MassSplitConfig FromSpec(std::string_view spec, const std::string& what = "mass_split");
  // False with "<field> is <value>, but must be <constraint>" in *error.
  bool IsValid(std::string* error) const;
};

// One fit parameter of a split mass.
struct MassSplitParameter {
  std::string name;           // e.g. "massShiftW100MeV_plus", "massDiffW100MeV_charge"
  std::string description;    // e.g. "m(+) - m(-)", "0.8 <= |eta| < 1.6, charge +"
  std::vector<double> coeff;  // per fit-channel bin (see the header comment)
};

// The parameters of a split for the NOI `noi` (a "massShift..." name) over a fit channel with axes
// eta x pT x charge (fit_space: the eta axis first, charge last with bin 0 = negative). Names:
// separate "<noi>_plus|_minus", "<noi>_etaPlus|_etaMinus", "<noi>_absEta<i>",
// "<noi>_plus_absEta<i>"; difference: "<noi>" (or "<noi>_absEta<i>") plus
// "massDiff<rest>_charge|_eta" (or "..._charge_absEta<i>"), where <rest> follows "massShift" in
// the NOI's name. Throws std::invalid_argument for an invalid configuration or |eta| edges that
// do not fall on the channel's eta bin edges.
std::vector<MassSplitParameter> MassSplitParameters(const MassSplitConfig& config,
                                                    const std::string& noi,
                                                    const BinSpace& fit_space);

// The up/down templates of a split parameter from the NOI's nominal, up and down templates (all
// over the fit channel).
void MassSplitTemplates(const MassSplitParameter& parameter, const std::vector<double>& nominal,
                        const std::vector<double>& up, const std::vector<double>& down,
                        std::vector<double>* out_up, std::vector<double>* out_down);

}  // namespace lepus::models
