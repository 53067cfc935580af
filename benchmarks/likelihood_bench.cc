// Throughput of the likelihood evaluations and of a full fit on dense synthetic models
// (models::MakeSyntheticModel, 5 processes, every (bin, process) row touching every systematic).
// Counters: bins/s for the evaluations; FLOP/s for the Hessian, counting its dominant work as
// 2 * nrows * nparams^2 (the weighted outer products of docs/likelihood.md section 5).
// Arguments: nbins, nsyst, threads (0 = all hardware threads).
//
//   ./build/benchmarks/lepus_bench_likelihood [--benchmark_filter=Hessian]
#include <map>
#include <memory>
#include <tuple>

#include <benchmark/benchmark.h>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/synthetic.h"

namespace {

using lepus::engine::Likelihood;

constexpr int kProcs = 5;

// Models are built once per (nbins, nsyst, threads) and shared by the benchmarks.
const Likelihood& GetLikelihood(int nbins, int nsyst, int threads) {
  static std::map<std::tuple<int, int, int>, std::unique_ptr<Likelihood>> cache;
  auto& slot = cache[{nbins, nsyst, threads}];
  if (!slot) {
    lepus::models::SyntheticSpec spec;
    spec.nbins = nbins;
    spec.nsyst = nsyst;
    spec.nproc = kProcs;
    spec.nsignal = 1;
    spec.density = 1.0;
    spec.seed = 7;
    lepus::engine::LikelihoodOptions options;
    options.num_threads = threads;
    slot = std::make_unique<Likelihood>(lepus::models::MakeSyntheticModel(spec), options);
  }
  return *slot;
}

// A point away from the prefit values, as during a fit.
Eigen::VectorXd Point(const Likelihood& lik) {
  Eigen::VectorXd x = lik.InitialParams();
  for (int i = 0; i < x.size(); ++i) x[i] += 0.01 * ((i % 7) - 3);
  return x;
}

void SetCounters(benchmark::State& state, const Likelihood& lik) {
  state.counters["bins/s"] = benchmark::Counter(static_cast<double>(lik.model().nbins),
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["params"] = lik.num_params();
  state.counters["rows"] = static_cast<double>(lik.model().tensor.num_rows());
}

void BM_Value(benchmark::State& state) {
  const Likelihood& lik = GetLikelihood(state.range(0), state.range(1), state.range(2));
  const Eigen::VectorXd x = Point(lik);
  for (auto _ : state) benchmark::DoNotOptimize(lik.Value(x));
  SetCounters(state, lik);
}

void BM_ValueAndGradient(benchmark::State& state) {
  const Likelihood& lik = GetLikelihood(state.range(0), state.range(1), state.range(2));
  const Eigen::VectorXd x = Point(lik);
  Eigen::VectorXd grad;
  for (auto _ : state) {
    benchmark::DoNotOptimize(lik.ValueAndGradient(x, &grad));
    benchmark::ClobberMemory();
  }
  SetCounters(state, lik);
}

void BM_ValueGradientHessian(benchmark::State& state) {
  const Likelihood& lik = GetLikelihood(state.range(0), state.range(1), state.range(2));
  const Eigen::VectorXd x = Point(lik);
  Eigen::VectorXd grad;
  Eigen::MatrixXd hess;
  for (auto _ : state) {
    benchmark::DoNotOptimize(lik.ValueGradientHessian(x, &grad, &hess));
    benchmark::ClobberMemory();
  }
  SetCounters(state, lik);
  const double np = lik.num_params();
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(lik.model().tensor.num_rows()) * np * np,
                         benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Fit(benchmark::State& state) {
  const Likelihood& lik = GetLikelihood(state.range(0), state.range(1), state.range(2));
  int iterations = 0;
  bool ok = true;
  for (auto _ : state) {
    const lepus::engine::FitResult r = lepus::engine::Fit(lik);
    iterations = r.iterations;
    ok = ok && r.ok();
  }
  SetCounters(state, lik);
  state.counters["newton_iterations"] = iterations;
  if (!ok) state.SkipWithError("fit did not converge");
}

void EvalSizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"nbins", "nsyst", "threads"});
  b->Args({100, 10, 0})->Args({1000, 100, 0})->Args({2880, 400, 0})->Args({2880, 400, 1});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void FitSizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"nbins", "nsyst", "threads"});
  b->Args({100, 10, 0})->Args({1000, 100, 0})->Args({2880, 400, 0});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_Value)->Apply(EvalSizes);
BENCHMARK(BM_ValueAndGradient)->Apply(EvalSizes);
BENCHMARK(BM_ValueGradientHessian)->Apply(EvalSizes);
BENCHMARK(BM_Fit)->Apply(FitSizes);

BENCHMARK_MAIN();
