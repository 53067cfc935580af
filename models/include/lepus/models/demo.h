// The W-mass-like demo input used by `lepus demo`, the CLI tests and the examples, until the
// real W-mass producer (event generation -> histograms -> tensor) exists.
//
// One channel "wmass" with axes eta x pt x charge (row-major, eta slowest), four processes
// (Wmunu signal; Zmumu, nonprompt, top backgrounds) with analytic smooth templates: the muon pT
// spectrum of W -> mu nu is a Jacobian peak at m_W / 2 smeared by the W transverse momentum and
// the muon resolution, so a shift of m_W moves the peak by about half the shift. Systematics:
//   massShiftW100MeV     nuisance of interest, unconstrained, theta = 1 <-> m_W + 100 MeV
//                        (asymmetric shape systematic from templates at m_W +- 100 MeV)
//   lumi                 1.2% normalisation of the simulated processes
//   norm_<process>       per-background normalisations
//   muonScale_eta<i>     muon momentum scale (relative 1e-4 per sigma) in eta regions
//   eff<Name>            efficiency shapes in eta and pT
// grouped as "mass", "lumi", "muonScale", "efficiency", "backgrounds". The observed data are a
// Poisson fluctuation (seeded std::mt19937_64) of the expectation at a true mass shift, so a fit
// recovers that shift within its uncertainty. The templates carry MC-statistical fluctuations
// (sumw2 = weight * sumw) around the true shapes the data are drawn from. Pseudo-data sets
// "mass_shift_<m|p>NMeV" hold the un-fluctuated expectation of the templates at other shifts,
// as an alternative simulated sample would. Fits in well under a second.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lepus/io/writer.h"

namespace lepus::models {

struct DemoSpec {
  int eta_bins = 24;  // over [-eta_max, eta_max]
  double eta_max = 2.4;
  int pt_bins = 30;  // over [pt_min, pt_max] GeV
  double pt_min = 26.0;
  double pt_max = 56.0;
  double w_events = 2.0e7;  // expected Wmunu events in the acceptance (both charges); > 0
  double mc_weight = 0.2;   // weight of one simulated event (sumw2 = mc_weight * sumw); >= 0
  double true_mass_shift_mev = -10.0;  // m_W shift used for the observed data
  // One pseudo-data set (the expectation without fluctuation) per shift, named by
  // DemoPseudoDataName.
  std::vector<double> pseudodata_shifts_mev = {-10.0, 0.0, 10.0};
  int scale_regions = 6;          // muon-scale nuisances; must divide eta_bins
  std::uint64_t seed = 1;         // Poisson fluctuation of the observed data
  std::uint64_t mc_seed = 12345;  // fluctuation of the simulated templates (fixed: same "MC")
};

// Name of the systematic that is the W-mass nuisance of interest (theta = 1 <-> +100 MeV).
inline constexpr const char* kDemoMassNoi = "massShiftW100MeV";
inline constexpr double kDemoMassScaleMeV = 100.0;

// "mass_shift_m10MeV" for -10, "mass_shift_0MeV" for 0, "mass_shift_p10MeV" for +10.
std::string DemoPseudoDataName(double shift_mev);

// Builds the demo input. Call Build() on the result for the in-memory model or Write(path) for
// an HDF5 fit input. Throws std::invalid_argument for an inconsistent spec.
io::TensorWriter MakeDemoInput(const DemoSpec& spec = {});

}  // namespace lepus::models
