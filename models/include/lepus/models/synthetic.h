// Synthetic models for tests, benchmarks and the demo: random but reproducible (seeded) binned
// models with every feature of the engine (signals, log-normal or normal systematics, symmetric
// or asymmetric, sparse patterns, free nuisances, nuisances of interest, MC statistics, masked
// bins). Pure engine::Model construction: no file I/O.
#pragma once

#include <cstdint>

#include "lepus/engine/model.h"

namespace lepus::models {

struct SyntheticSpec {
  int nbins = 20;             // fitted bins
  int nmasked = 0;            // extra masked bins (one masked channel)
  int nproc = 3;
  int nsignal = 1;
  int nsyst = 5;
  int nfree = 0;              // the first nfree systematics are unconstrained
  int nnoi = 0;               // the first nnoi systematics are nuisances of interest
  double density = 1.0;       // probability that a (bin, process, syst) entry is non-zero
  double logk_size = 0.05;    // typical |logk|
  bool asymmetric = false;
  engine::SystematicType type = engine::SystematicType::kLogNormal;
  bool mc_stat = true;        // sumw2 > 0 for all but the last process
  double yield_scale = 100.0; // typical yield per bin and process
  bool poisson_data = true;   // data = Poisson(expected at truth); else the expectation
  std::uint64_t seed = 1;
};

// Throws std::invalid_argument for inconsistent specs (e.g. nsignal > nproc).
engine::Model MakeSyntheticModel(const SyntheticSpec& spec);

}  // namespace lepus::models
