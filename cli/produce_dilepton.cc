// `lepus produce dilepton`: Z -> mu mu events (generated or from event files) -> the m_mumu x
// eta(most forward muon) histograms with every systematic variation -> the dilepton m_Z fit input
// (models/dilepton.h, docs/dilepton.md). Same flags and conventions as `produce wmass`: progress
// and the summary on stderr, --print-config prints the effective configuration as JSON on
// stdout, the output is written atomically.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common.h"
#include "setup.h"
#include "lepus/io/writer.h"
#include "lepus/models/dilepton.h"

namespace lepus::cli {

namespace {

struct DileptonFlags {
  std::string config;
  bool light = false, full = false;
  std::vector<std::string> events;
  std::int64_t generate = -1;
  std::vector<std::string> data_events;
  double data_mz_shift = std::numeric_limits<double>::quiet_NaN();
  std::int64_t seed = -1;
  double luminosity = std::numeric_limits<double>::quiet_NaN();
  int threads = 0;
  bool print_config = false;
  std::string output;
};

models::DileptonConfig ConfigFromFlags(const DileptonFlags& f) {
  models::DileptonConfig c;
  if (!f.config.empty()) {
    if (f.light || f.full)
      throw std::invalid_argument(std::string(f.light ? "--light" : "--full") +
                                  ": the preset comes from the 'preset' key of --config " +
                                  f.config + "; give one or the other");
    c = models::ReadDileptonConfig(f.config);
  } else {
    c = models::DileptonConfig::Preset(f.full ? models::DileptonPreset::kFull
                                              : models::DileptonPreset::kLight);
  }
  if (!f.events.empty() && f.generate >= 0)
    throw std::invalid_argument(
        "--events and --generate exclude each other (the simulation is read from files or "
        "generated)");
  if (!f.data_events.empty() && !std::isnan(f.data_mz_shift))
    throw std::invalid_argument(
        "--data-truth-mz-shift applies to generated data only, but --data-events reads the data "
        "from files");
  if (!f.events.empty()) c.simulation.files = f.events;
  if (f.generate >= 0) {
    if (f.generate == 0) throw std::invalid_argument("--generate is 0, but must be > 0");
    c.simulation.files.clear();
    c.simulation.events = static_cast<std::uint64_t>(f.generate);
  }
  if (!f.data_events.empty()) c.data.files = f.data_events;
  if (!std::isnan(f.data_mz_shift)) {
    if (c.data.from_files())
      throw std::invalid_argument(
          "--data-truth-mz-shift applies to generated data only, but the configuration reads "
          "the data from files (data.files)");
    c.data_mz_shift_mev = f.data_mz_shift;
  }
  if (f.seed >= 0) {
    c.simulation.seed = static_cast<std::uint64_t>(f.seed);
    c.data.seed = static_cast<std::uint64_t>(f.seed) + 1;
  }
  if (!std::isnan(f.luminosity)) c.luminosity_pb = f.luminosity;
  std::string error;
  if (!c.IsValid(&error))
    throw std::invalid_argument("produce dilepton: " + error +
                                (f.config.empty() ? "" : " (configuration " + f.config + ")"));
  return c;
}

int RunProduceDilepton(const DileptonFlags& a) {
  const models::DileptonConfig config = ConfigFromFlags(a);
  if (a.print_config) {
    std::cout << config.ToJson() << "\n";
    if (a.output.empty()) return kExitOk;
  }
  if (a.output.empty())
    throw std::invalid_argument("produce dilepton: -o/--output FILE is required");
  CheckOutputPath(a.output);

  std::cerr << "produce dilepton: " << models::ToString(config.preset) << " configuration";
  if (!a.config.empty()) std::cerr << " from " << a.config;
  std::cerr << "; simulation "
            << (config.simulation.from_files()
                    ? std::to_string(config.simulation.files.size()) + " event file(s)"
                    : HumanCount(static_cast<double>(config.simulation.events)) +
                          " generated events (seed " + std::to_string(config.simulation.seed) +
                          ")")
            << "; data "
            << (config.data.from_files()
                    ? std::to_string(config.data.files.size()) + " event file(s)"
                    : "generated at " + HumanCount(config.luminosity_pb) + " pb^-1 (seed " +
                          std::to_string(config.data.seed) + ")")
            << "\n";

  const auto t0 = std::chrono::steady_clock::now();
  EventProgressBar bar("produce");
  models::ProduceOptions options;
  options.num_threads = a.threads;
  options.progress = [&bar](const models::ProduceProgress& p) {
    bar.Update(p.events_done, p.events_total, p.seconds);
  };
  models::DileptonProduction prod = models::ProduceDilepton(config, options);
  bar.Finish();
  const auto t1 = std::chrono::steady_clock::now();
  io::WriteFitInput(prod.model, a.output, prod.write_options);
  const double t_write =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double t_total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cerr << prod.summary.Report();
  const auto size = std::filesystem::file_size(a.output);
  const double rate = prod.summary.seconds_fill > 0
                          ? (prod.summary.sim_events + prod.summary.data_events) /
                                prod.summary.seconds_fill
                          : 0.0;
  std::cerr << "wrote " << a.output << " (" << HumanCount(static_cast<double>(size)) << "B, "
            << (prod.write_options.gzip ? "gzip, " : "") << FormatSeconds(t_write) << ")\n"
            << "total " << FormatSeconds(t_total) << " on " << models::ResolveThreads(a.threads)
            << " thread(s), " << HumanCount(rate) << " events/s\n"
            << "fit: lepus fit " << a.output << " --impacts (" << models::kDileptonNoi
            << " is m_Z - m_Z(simulation) in MeV; its 'stat' impact is the statistical part)\n";
  return kExitOk;
}

// Integer flags that must be >= 0 ("is '-5', but must be an integer >= 0").
const CLI::Validator kNonNegativeInteger(
    [](std::string& text) -> std::string {
      std::size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != text.size() || v < 0) return "is '" + text + "', but must be an integer >= 0";
      return {};
    },
    "INTEGER >= 0");

}  // namespace

Command AddProduceDilepton(CLI::App* produce, const std::string& /*command_line*/) {
  auto args = std::make_shared<DileptonFlags>();
  CLI::App* sub = produce->add_subcommand(
      "dilepton", "the dilepton m_Z fit input: m_mumu x eta of the most forward muon");
  sub->add_option("--config", args->config, "JSON configuration (docs/dilepton.md)")
      ->type_name("FILE");
  auto* light = sub->add_flag("--light", args->light,
                              "light preset: tens of nuisances (default without --config)");
  auto* full = sub->add_flag("--full", args->full, "full preset: about a thousand nuisances");
  light->excludes(full);
  sub->add_option("--events", args->events, "simulation event files (instead of generating)")
      ->type_name("FILE")
      ->expected(1, -1);
  sub->add_option("--generate", args->generate, "simulated events to generate")
      ->type_name("N")
      ->check(kNonNegativeInteger);
  sub->add_option("--data-events", args->data_events,
                  "data event files (instead of generating data)")
      ->type_name("FILE")
      ->expected(1, -1);
  sub->add_option("--data-truth-mz-shift", args->data_mz_shift,
                  "m_Z of generated data minus the simulation's, in MeV")
      ->type_name("MEV");
  sub->add_option("--seed", args->seed, "generator seed of the simulation (the data use SEED + 1)")
      ->type_name("S")
      ->check(kNonNegativeInteger);
  sub->add_option("--luminosity", args->luminosity,
                  "integrated luminosity of generated data and of the simulation weights")
      ->type_name("PB")
      ->check(CLI::PositiveNumber);
  sub->add_option("--threads", args->threads, "worker threads (0 = all cores; output identical)")
      ->type_name("N")
      ->check(CLI::Range(0, 4096));
  sub->add_flag("--print-config", args->print_config,
                "print the effective configuration as JSON on stdout (and stop unless -o)");
  sub->add_option("-o,--output", args->output, "the fit input to write (HDF5)")->type_name("FILE");
  return {sub, [args] { return RunProduceDilepton(*args); }};
}

}  // namespace lepus::cli
