// Synthetic models for tests, benchmarks and the demo: random but reproducible (seeded) binned
// models with every feature of the engine (signals, log-normal or normal systematics, symmetric
// or asymmetric, sparse patterns, free nuisances, nuisances of interest, MC statistics, masked
// bins). Pure engine::Model construction: no file I/O.
#pragma once

#include <cstdint>

#include "lepus/engine/model.h"

namespace lepus::models {

struct SyntheticSpec {
  int nbins = 20;   // fitted bins
  int nmasked = 0;  // extra masked bins (one masked channel)
  int nproc = 3;
  int nsignal = 1;
  int nsyst = 5;
  int nfree = 0;            // the first nfree systematics are unconstrained
  int nnoi = 0;             // the first nnoi systematics are nuisances of interest
  double density = 1.0;     // probability that a (bin, process, syst) entry is non-zero
  double logk_size = 0.05;  // typical |logk|
  bool asymmetric = false;
  engine::SystematicType type = engine::SystematicType::kLogNormal;
  bool mc_stat = true;         // sumw2 > 0 for all but the last process
  double yield_scale = 100.0;  // typical yield per bin and process
  bool poisson_data = true;    // data = Poisson(expected at truth); else the expectation
  std::uint64_t seed = 1;
};

// Throws std::invalid_argument for inconsistent specs (e.g. nsignal > nproc).
engine::Model MakeSyntheticModel(const SyntheticSpec& spec);

// A model with the structure of the CMS W-mass fit (benchmarks, performance tests): one channel
// eta x pT x charge (48 x 30 x 2 = 2880 bins by default), `nproc` processes (the first two are
// W+ and W- signals sharing a mass NOI), and nuisances of three kinds:
//   * global: theory-like (PDF, angular coefficients, pT(V)) acting on every bin of the W
//     processes, ~n_global of them;
//   * local: per eta bin x charge efficiency-like (n_eff_per_eta each) and per eta bin
//     momentum-scale-like (n_scale_per_eta) acting only on that eta bin's bins;
//   * normalisations per background process and a luminosity acting everywhere.
// Bin-by-bin statistics on (sumw2 > 0 for the simulated processes). Deterministic for a seed.
struct CmsLikeSpec {
  int neta = 48, npt = 30, ncharge = 2;
  int nproc = 10;
  int n_global = 450;
  int n_eff_per_eta = 40;  // per eta bin (both charges share nothing: split half/half)
  int n_scale_per_eta = 3;
  bool asymmetric = false;
  std::uint64_t seed = 1;
};
engine::Model MakeCmsLikeModel(const CmsLikeSpec& spec);

// A model with the sparsity of the muon-momentum calibration fit (docs/performance.md, "Very
// large sparse models": the CMS muon calibration fit has 76,800 bins and 108,334 parameters).
// The bins are grouped in `nregions` regions of `bins_per_region` consecutive bins (an
// (eta, eta') cell of J/psi mass bins); every region owns `local_per_region` Gaussian-constrained local nuisances
// (calibration-parameter-like). Each bin is touched by `local_per_bin` nuisances of its own
// region and `partner_per_bin` of one partner region (the second muon), plus `n_global` global
// nuisances, the signal strength of the signal process and one normalisation per background.
// Defaults: 2400 x 32 = 76,800 bins, 2400 x 45 + 8 + 2 = 108,010 parameters, two processes
// (a peaked signal and a falling background), 17 non-zero logk entries per signal row.
// Data are Poisson at a truth with mu = 1.05 and theta ~ N(0, 0.5^2). Deterministic for a seed.
struct CalibrationScaleSpec {
  int nregions = 2400;
  int bins_per_region = 32;
  int local_per_region = 45;
  int local_per_bin = 6;    // <= local_per_region
  int partner_per_bin = 3;  // <= local_per_region; 0 = regions independent
  int n_global = 8;
  int nproc = 2;                // >= 1; process 0 is the signal
  double yield_scale = 1000.0;  // typical signal yield per bin
  double logk_local = 0.02;     // typical |logk| of a local nuisance
  bool mc_stat = true;          // sumw2 > 0 for every process (Barlow-Beeston on)
  bool asymmetric = false;
  std::uint64_t seed = 1;
};
// Throws std::invalid_argument for inconsistent specs.
engine::Model MakeCalibrationScaleModel(const CalibrationScaleSpec& spec);

}  // namespace lepus::models
