// `lepus bench`: the flags of the engine benchmark suites; the harness itself is the library
// lepus_bench_suite (benchmarks/suite, lepus/bench/suite.h).

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "lepus/bench/suite.h"

namespace lepus::cli {

Command AddBenchCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<bench::SuiteOptions>();
  CLI::App* sub = parent.add_subcommand(
      "bench",
      "Benchmark suite: CMS-like and dense-grid models against measured machine limits, "
      "and (--suite large) calibration-scale sparse fits (docs/performance.md)");
  sub->add_option("--suite", args->suite, "cms, grid, large or all (= cms and grid)")
      ->capture_default_str();
  sub->add_flag("--quick", args->quick, "A small subset (a few seconds; for tests and CI)");
  sub->add_option("--max-seconds", args->max_seconds,
                  "Skip grid points (and fits) whose estimated fit time exceeds this")
      ->capture_default_str()
      ->check(PositiveArg());
  sub->add_option("--threads", args->threads,
                  "Thread counts, comma-separated or repeated (0 = all hardware threads)")
      ->delimiter(',')
      ->capture_default_str()
      ->transform(IntegerArg(0, 4096));
  sub->add_option("--csv", args->csv, "Write the results as CSV to FILE");
  sub->add_option("--markdown", args->markdown, "Write the Markdown tables to FILE");
  sub->add_option("--max-tensor-gb", args->max_tensor_gb,
                  "Skip grid points whose compressed tensor exceeds this (GB)")
      ->capture_default_str()
      ->check(NonNegativeArg());
  sub->add_option("--max-io-gb", args->max_io_gb,
                  "Skip the HDF5 round trip for tensors above this (GB)")
      ->capture_default_str()
      ->check(NonNegativeArg());
  sub->add_option("--grid-nbins", args->grid_nbins,
                  "Only these grid nbins values (comma-separated; default the full list)")
      ->delimiter(',')
      ->transform(IntegerArg(1, 100000000));
  sub->add_option("--grid-max-nsyst", args->grid_max_nsyst, "Largest grid nsyst")
      ->capture_default_str()
      ->transform(IntegerArg(1, 100000000));
  sub->add_option("--tmpdir", args->tmpdir, "Directory of the temporary HDF5 file");
  sub->add_option("--large-regions", args->large_regions,
                  "large suite: regions of 32 bins / 45 local nuisances (comma-separated; default "
                  "450,2400 = 20k and 108k parameters; at most 100000)")
      ->delimiter(',')
      ->transform(IntegerArg(1, 100000));
  sub->add_option("--large-methods", args->large_methods,
                  "large suite: fit methods, the first is the reference for the agreement columns")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--repeat", args->repeat,
                  "large suite: fits per method (the minimum time is reported)")
      ->capture_default_str()
      ->transform(IntegerArg(1, 100));
  return {sub, [args, command_line] { return bench::RunSuites(*args, command_line); }};
}

}  // namespace lepus::cli
