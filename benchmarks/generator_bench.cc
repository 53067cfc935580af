// Throughput of the parametric generator (models/generator.h): events/s for the generator-level
// physics alone (perfect detector) and with the detector simulation, per process, at 1 and 2
// threads; and of writing / reading HDF5 event files. Counters: events/s (wall clock) and
// events/s/thread.
// Arguments: process id (models::Process), threads.
//
//   ./build/benchmarks/lepus_bench_generator [--benchmark_filter=Detector]
#include <filesystem>
#include <string>

#include <benchmark/benchmark.h>

#include <unistd.h>

#include "lepus/models/event_file.h"
#include "lepus/models/generator.h"

namespace {

using lepus::models::EventBatch;
using lepus::models::Generator;
using lepus::models::GeneratorConfig;
using lepus::models::Process;

constexpr std::uint64_t kEvents = 1 << 18;

void Run(benchmark::State& state, bool detector) {
  const auto process = static_cast<Process>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  GeneratorConfig c;
  c.processes = {process};
  c.num_events = kEvents;
  c.simulate_detector = detector;
  const Generator g(c);
  EventBatch batch;
  batch.Reserve(kEvents);
  std::uint64_t first = 0;
  for (auto _ : state) {
    batch.Clear();
    g.GenerateParallel(process, first, kEvents, &batch, threads);
    first += kEvents;  // new events every iteration
    benchmark::DoNotOptimize(batch.weight.data());
  }
  const double n = static_cast<double>(state.iterations()) * kEvents;
  state.counters["events/s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["events/s/thread"] = benchmark::Counter(n / threads, benchmark::Counter::kIsRate);
  state.SetLabel(lepus::models::ToString(process));
}

void BM_GeneratorLevel(benchmark::State& state) { Run(state, false); }
void BM_WithDetector(benchmark::State& state) { Run(state, true); }

void Args(benchmark::internal::Benchmark* b) {
  for (Process p : {Process::kWplusMuNu, Process::kZMuMu, Process::kWTauNu, Process::kNonPrompt})
    for (int threads : {1, 2}) b->Args({static_cast<int>(p), threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_GeneratorLevel)->Apply(Args);
BENCHMARK(BM_WithDetector)->Apply(Args);

// Event files: write (shuffle + gzip level 1, chunks compressed on 1 or 2 threads) and read back, W+ events with the detector.
const EventBatch& Sample() {
  static const EventBatch batch = [] {
    GeneratorConfig c;
    c.num_events = kEvents;
    c.processes = {Process::kWplusMuNu};
    EventBatch b;
    Generator(c).GenerateParallel(Process::kWplusMuNu, 0, kEvents, &b, 0);
    return b;
  }();
  return batch;
}

std::string BenchPath() {
  return (std::filesystem::temp_directory_path() /
          ("lepus-bench-events-" + std::to_string(::getpid()) + ".h5"))
      .string();
}

void BM_WriteFile(benchmark::State& state) {
  const EventBatch& b = Sample();
  const std::string path = BenchPath();
  lepus::models::EventFileWriterOptions options;
  options.num_threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    lepus::models::EventFileWriter w(path, lepus::models::EventFileMetadata{}, options);
    w.Append(b);
    w.Close();
  }
  state.counters["events/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * b.size()), benchmark::Counter::kIsRate);
  state.counters["bytes/event"] =
      static_cast<double>(std::filesystem::file_size(path)) / static_cast<double>(b.size());
  std::filesystem::remove(path);
}
BENCHMARK(BM_WriteFile)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ReadFile(benchmark::State& state) {
  const EventBatch& b = Sample();
  const std::string path = BenchPath();
  {
    lepus::models::EventFileWriter w(path, lepus::models::EventFileMetadata{});
    w.Append(b);
    w.Close();
  }
  EventBatch batch;
  for (auto _ : state) {
    lepus::models::EventFileReader r(path);
    while (r.Next(&batch, 65536) > 0) benchmark::DoNotOptimize(batch.weight.data());
  }
  state.counters["events/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * b.size()), benchmark::Counter::kIsRate);
  std::filesystem::remove(path);
}
BENCHMARK(BM_ReadFile)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
