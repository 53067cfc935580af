// The engine benchmark suites (library lepus_bench_suite, behind the `lepus bench` command):
// CMS-like and dense-grid models against the machine's limits measured in the same run, and
// calibration-scale sparse fits (docs/performance.md, "Engine"). Kept out of the command line
// code: cli/bench_command.cc only declares the flags.
#pragma once

#include <string>
#include <vector>

namespace lepus::bench {

// The flags of `lepus bench` (their help texts are in cli/bench_command.cc).
struct SuiteOptions {
  std::string suite = "all";
  bool quick = false;
  double max_seconds = 600.0;
  std::vector<int> threads = {0};
  std::string csv;
  std::string markdown;
  double max_tensor_gb = 8.0;
  double max_io_gb = 2.0;
  std::string tmpdir;
  std::vector<int> grid_nbins;  // empty = the suite's list
  int grid_max_nsyst = 8192;
  std::vector<int> large_regions;  // empty = {450, 2400} ({25} with --quick)
  std::vector<std::string> large_methods = {"matrix_free", "ceres", "ceres_dogleg"};
  int repeat = 1;
};

// Runs the suite(s) chosen by options.suite ("cms", "grid", "all" = cms and grid, or "large"),
// prints progress on stderr and the Markdown tables on stdout (or writes options.csv /
// options.markdown atomically). Returns 0; throws std::invalid_argument for bad options
// (naming the flag).
int RunSuites(const SuiteOptions& options, const std::string& command_line);

}  // namespace lepus::bench
