// Toy ensembles: pseudo-experiments with Poisson fluctuations of the data and frequentist
// randomisation of the global observables (constraint centres theta0 ~ N(theta_gen, 1/sqrt(cw)),
// Barlow-Beeston centres beta0 ~ Gamma(mean 1, variance 1/k)), each fitted like the data.
// Parallel over toys with TBB; toy i uses its own random stream seeded by (seed, i), so the
// ensemble is identical at any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::engine {

enum class ToyMode {
  kExpected,  // generate at the prefit point (or ToyOptions::generate_at)
  kObserved,  // generate at the best fit to the likelihood's current data ("post-fit toys")
};
std::string ToString(ToyMode mode);

struct ToyOptions {
  int ntoys = 100;  // > 0
  std::uint64_t seed = 1;
  ToyMode mode = ToyMode::kExpected;
  Eigen::VectorXd generate_at;  // internal coordinates; overrides the mode's point if set
  bool poisson = true;          // Poisson-fluctuate the data (else: Asimov of the point)
  // Gaussian data instead (rabbit --toysDataRandomize normal): N(lambda_b, sqrt(lambda_b)) per bin
  // for chi-square fits, N(lambda, W^-1) for covariance fits (which need it). Not for Poisson fits.
  bool normal_data = false;
  bool randomize_constraints = true;       // frequentist global observables
  FitOptions fit;                          // options of each toy fit
  std::vector<int> pull_params;            // parameters summarised; empty = POIs and NOIs
  std::function<void(int, int)> progress;  // (done, total), serialised
  int num_threads = 0;                     // toys in parallel; 0 = all hardware threads
  // Only toys [toy_begin, toy_end) are fitted (toy_end < 0: to ntoys); the others keep status
  // kFailed and NaN results. Toy i is the same wherever it runs (seeded by (seed, i)), so an
  // ensemble split in ranges and put together (SummarizeToys) is the ensemble of one run
  // (`mpirun lepus toys`, docs/scaling.md). progress counts the toys of the range.
  int toy_begin = 0, toy_end = -1;

  bool IsValid(int num_params, std::string* error) const;
};

struct PullSummary {
  int param = -1;
  std::string name;
  double truth = 0.0;  // generating value (reported units)
  double mean = 0.0;   // mean of (value - truth) / error over converged toys
  double width = 0.0;  // standard deviation of the pulls
  double mean_error = 0.0;
  double bias = 0.0;  // mean of value - truth
};

struct ToyResults {
  Eigen::VectorXd truth;           // generating point, reported units [num_params]
  Eigen::MatrixXd values, errors;  // [ntoys x num_params]
  std::vector<FitStatus> status;
  Eigen::VectorXd nll, gof_chi2;  // [ntoys]
  int gof_ndf = 0;
  int converged = 0;
  std::vector<PullSummary> pulls;
  double gof_mean = 0.0, gof_width = 0.0;  // of the saturated statistic, converged toys
};

// Throws std::invalid_argument for invalid options; NumericalError (fit.h) when the generating
// point cannot be found (the best fit for kObserved did not converge).
ToyResults RunToys(const Likelihood& likelihood, const ToyOptions& options);

// The summaries (converged, pulls, saturated statistic) from the per-toy results of `results`
// (truth, values, errors, status, nll, gof_chi2 of all toys); RunToys ends with it.
void SummarizeToys(const Likelihood& likelihood, const ToyOptions& options, ToyResults* results);

}  // namespace lepus::engine
