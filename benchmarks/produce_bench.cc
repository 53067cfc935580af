// Throughput of the W-mass producer (models/wmass.h): events/s and events/s/thread for
//   * BM_Produce: generation + selection + histogram filling of the simulation with every
//     variation of the light or full preset (WMassProducer::Fill; the data sample is made
//     negligible), at 1 and 2 threads;
//   * BM_GenerateOnly: the generator alone on the same process mix (the share of the above that
//     is generation);
//   * BM_FillOnly: selection + filling alone on pre-generated events (one thread);
//   * BM_Storage: the histogram-storage choice of histogram.h: a nominal histogram and 20 weight
//     variations filled with per-item partial histograms added in order (what the producers use)
//     or with one shared histogram updated atomically (std::atomic_ref<double>::fetch_add).
// Arguments: preset (0 light, 1 full) or storage mode (0 ordered partials, 1 atomic), threads.
//
//   ./build/benchmarks/lepus_bench_produce [--benchmark_filter=Produce]
#include <atomic>
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "lepus/models/generator.h"
#include "lepus/models/histogram.h"
#include "lepus/models/wmass.h"

namespace {

using namespace lepus::models;

constexpr std::uint64_t kEvents = 1 << 21;

WMassConfig BenchConfig(int preset, std::uint64_t events) {
  WMassConfig c = WMassConfig::Preset(preset == 1 ? WMassPreset::kFull : WMassPreset::kLight);
  c.simulation.events = events;
  c.simulation.seed = 7;
  // The data sample is generated too (at this luminosity: a few hundred events, negligible);
  // the simulation weights do not affect the timing.
  c.luminosity_pb = 0.01;
  return c;
}

void Counters(benchmark::State& state, double events, int threads) {
  state.counters["events/s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
  state.counters["events/s/thread"] =
      benchmark::Counter(events / threads, benchmark::Counter::kIsRate);
}

void BM_Produce(benchmark::State& state) {
  const int preset = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const std::uint64_t n = kEvents;
  const WMassProducer producer(BenchConfig(preset, n));
  for (auto _ : state) {
    WMassHistograms h = producer.Fill(ProduceOptions{threads, {}});
    benchmark::DoNotOptimize(h.sim_events);
  }
  Counters(state, static_cast<double>(state.iterations()) * n, threads);
  state.SetLabel(std::string(preset == 1 ? "full" : "light") + ", " +
                 std::to_string(producer.layout().size()) + " variation histograms");
}

void BM_GenerateOnly(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(1));
  GeneratorConfig g;
  g.processes = {Process::kWplusMuNu, Process::kWminusMuNu, Process::kWTauNu, Process::kZMuMu,
                 Process::kZTauTau,   Process::kTop,        Process::kDiboson};
  g.num_events = kEvents;
  g.seed = 7;
  g.filter = EventFilter{1, 24.0};
  const Generator gen(g);
  EventBatch batch;
  for (auto _ : state) {
    for (Process p : g.processes) {
      batch.Clear();
      gen.GenerateParallel(p, 0, gen.NumEvents(p), &batch, threads);
      benchmark::DoNotOptimize(batch.weight.data());
    }
  }
  Counters(state, static_cast<double>(state.iterations()) * kEvents, threads);
}

void BM_FillOnly(benchmark::State& state) {
  const int preset = static_cast<int>(state.range(0));
  const WMassProducer producer(BenchConfig(preset, 1));
  GeneratorConfig g;
  g.processes = {Process::kWplusMuNu, Process::kWminusMuNu, Process::kZMuMu};
  g.num_events = 1 << 18;
  g.filter = EventFilter{1, 24.0};
  const Generator gen(g);
  EventBatch batch;
  for (Process p : g.processes) gen.Generate(p, 0, gen.NumEvents(p), &batch);
  WMassHistograms h = producer.MakeHistograms();
  for (auto _ : state) {
    producer.FillBatch(batch, SampleKind::kSimulation, &h);
    benchmark::DoNotOptimize(h.sim_events);
  }
  // Per generated event (the batch holds those passing the generator's filter).
  Counters(state, static_cast<double>(state.iterations()) * g.num_events, 1);
  state.SetLabel(std::string(preset == 1 ? "full" : "light") + ", " + std::to_string(batch.size()) +
                 " events after the generator filter");
}

// ---- storage strategies on synthetic fills: nominal + kVariations weight variations.
constexpr int kBins = 2880;
constexpr int kVariations = 20;
constexpr std::size_t kFills = 1 << 22;
constexpr std::size_t kChunk = 1 << 16;

struct Fills {
  std::vector<int> bin;
  std::vector<double> w;
  std::vector<float> rel;  // per-variation relative change
  Fills() : bin(kFills), w(kFills), rel(kVariations) {
    std::mt19937_64 rng(1);
    std::uniform_int_distribution<int> b(0, kBins - 1);
    std::uniform_real_distribution<double> u(0.5, 1.5);
    for (std::size_t i = 0; i < kFills; ++i) bin[i] = b(rng), w[i] = u(rng);
    for (int v = 0; v < kVariations; ++v) rel[v] = 1e-3f * (v + 1);
  }
};
const Fills& SyntheticFills() {
  static const Fills f;
  return f;
}

void BM_Storage(benchmark::State& state) {
  const bool atomic = state.range(0) == 1;
  const int threads = static_cast<int>(state.range(1));
  const Fills& f = SyntheticFills();
  const std::size_t nchunks = kFills / kChunk;
  const std::size_t size = static_cast<std::size_t>(kBins) * (kVariations + 1);
  std::vector<double> total(size, 0.0);
  for (auto _ : state) {
    std::fill(total.begin(), total.end(), 0.0);
    if (atomic) {
      tbb::task_arena arena(threads);
      arena.execute([&] {
        tbb::parallel_for(std::size_t{0}, nchunks, [&](std::size_t c) {
          for (std::size_t i = c * kChunk; i < (c + 1) * kChunk; ++i) {
            const std::size_t b = static_cast<std::size_t>(f.bin[i]);
            std::atomic_ref<double>(total[b]).fetch_add(f.w[i], std::memory_order_relaxed);
            for (int v = 0; v < kVariations; ++v)
              std::atomic_ref<double>(total[(v + 1) * kBins + b])
                  .fetch_add(f.w[i] * f.rel[v], std::memory_order_relaxed);
          }
        });
      });
    } else {
      const int slots = 2 * threads + 1;
      std::vector<std::vector<double>> partial(slots, std::vector<double>(size, 0.0));
      std::vector<std::size_t> chunk_of(slots);
      std::size_t next = 0;
      OrderedParallelReduce(
          threads, slots,
          [&](int s) {
            if (next == nchunks) return false;
            chunk_of[s] = next++;
            return true;
          },
          [&](int s) {
            double* p = partial[s].data();
            const std::size_t c = chunk_of[s];
            for (std::size_t i = c * kChunk; i < (c + 1) * kChunk; ++i) {
              const std::size_t b = static_cast<std::size_t>(f.bin[i]);
              p[b] += f.w[i];
              for (int v = 0; v < kVariations; ++v) p[(v + 1) * kBins + b] += f.w[i] * f.rel[v];
            }
          },
          [&](int s) {
            double* p = partial[s].data();
            for (std::size_t k = 0; k < size; ++k) total[k] += p[k], p[k] = 0.0;
          });
    }
    benchmark::DoNotOptimize(total.data());
  }
  Counters(state, static_cast<double>(state.iterations()) * kFills, threads);
  state.SetLabel(atomic ? "shared atomic storage (non-deterministic)"
                        : "ordered per-item partials (deterministic)");
}

void PresetArgs(benchmark::internal::Benchmark* b) {
  for (int preset : {0, 1})
    for (int threads : {1, 2}) b->Args({preset, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_Produce)->Apply(PresetArgs);
BENCHMARK(BM_GenerateOnly)
    ->Args({0, 1})
    ->Args({0, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_FillOnly)->Args({0, 1})->Args({1, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Storage)->Apply(PresetArgs);

BENCHMARK_MAIN();
