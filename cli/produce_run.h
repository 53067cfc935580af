// Private to the `lepus produce` subcommands (produce_command.cc, produce_dilepton.cc): the
// sample flags applied to a producer configuration and the common run (description line,
// progress bar, production, atomic write, summary). Templates over the producers' configuration
// and production types, which share the member names used here (simulation, data, seeds,
// luminosity_pb, data_*_shift_mev, preset, ToJson; model, write_options, summary).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "exit_codes.h"
#include "lepus/io/writer.h"
#include "lepus/models/histogram.h"
#include "lepus/models/wmass.h"
#include "likelihood_setup.h"
#include "mpi.h"
#include "produce_flags.h"
#include "progress.h"

namespace lepus::cli {

// Applies --events/--generate, --data-events, --data-truth-mw-shift / --data-truth-mz-shift
// (when the configuration has the field), --seed and --luminosity to a configuration. Throws
// std::invalid_argument for inconsistent flags.
template <typename Config>
void ApplySampleFlags(const ProduceFlags& f, Config* c) {
  if (!f.events.empty() && f.generate >= 0)
    throw std::invalid_argument(
        "--events and --generate exclude each other (the simulation is read from files or "
        "generated)");
  auto shift = [&](double value, const char* flag, double* field) {
    if (std::isnan(value)) return;
    if (!f.data_events.empty())
      throw std::invalid_argument(std::string(flag) +
                                  " applies to generated data only, but --data-events reads the "
                                  "data from files");
    if (c->data.from_files())
      throw std::invalid_argument(std::string(flag) +
                                  " applies to generated data only, but the configuration reads "
                                  "the data from files (data.files)");
    *field = value;
  };
  if (!f.events.empty()) c->simulation.files = f.events;
  if (f.generate >= 0) {
    if (f.generate == 0) throw std::invalid_argument("--generate is 0, but must be > 0");
    c->simulation.files.clear();
    c->simulation.events = static_cast<std::uint64_t>(f.generate);
  }
  if constexpr (requires { c->data_mw_shift_mev; })
    shift(f.data_mw_shift, "--data-truth-mw-shift", &c->data_mw_shift_mev);
  shift(f.data_mz_shift, "--data-truth-mz-shift", &c->data_mz_shift_mev);
  if (!f.data_events.empty()) c->data.files = f.data_events;
  if (f.seed_given) {
    c->simulation.seed = f.seed;
    c->data.seed = f.seed + 1;  // unsigned: 2^64 - 1 + 1 wraps to 0
  }
  if (!std::isnan(f.luminosity)) c->luminosity_pb = f.luminosity;
}

// The run of a producer: --print-config, the -o check, the description line, the production with
// a progress bar, the atomic write, the summary and the totals on stderr (then `epilogue`).
template <typename Config, typename ProduceFn>
int RunProduction(const std::string& command, const Config& config, const ProduceFlags& a,
                  ProduceFn produce, const std::string& epilogue = "") {
  if (a.print_config && mpi::Root()) {
    std::cout << config.ToJson() << "\n";
    if (a.output.empty()) return kExitOk;
  }
  if (a.print_config && a.output.empty()) return kExitOk;  // ranks other than 0 under mpirun
  if (a.output.empty()) throw std::invalid_argument(command + ": -o/--output FILE is required");
  {
    // The fit input may not replace anything the production reads.
    std::vector<std::string> inputs = config.simulation.files;
    inputs.insert(inputs.end(), config.data.files.begin(), config.data.files.end());
    inputs.push_back(config.calibration_file);
    inputs.push_back(a.config);
    io::CheckOutputs({{"-o", a.output, false}}, inputs);
  }

  std::cerr << command << ": " << ToString(config.preset) << " configuration";  // (ADL)
  if (!a.config.empty()) std::cerr << " from " << a.config;
  std::cerr << "; simulation "
            << (config.simulation.from_files()
                    ? std::to_string(config.simulation.files.size()) + " event file(s)"
                    : HumanCount(static_cast<double>(config.simulation.events)) +
                          " generated events (seed " + std::to_string(config.simulation.seed) + ")")
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
  mpi::CountedReceiver receiver;
  if (mpi::Size() > 1) {
    // Under mpirun (docs/scaling.md): groups of work items round robin over the ranks; every
    // group's sum goes to rank 0, which adds them in group order (the fit input is that of one
    // process) and writes.
    options.rank = mpi::Rank();
    options.ranks = mpi::Size();
    options.send_partial = [](const std::string& bytes) { mpi::SendToRoot(bytes); };
    options.receive_partial = [&receiver](int owner) { return receiver(owner); };
    std::cerr << command << ": " << mpi::Size() << " MPI ranks, groups of "
              << options.items_per_group << " work items round robin\n";
  }
  auto prod = produce(config, options);
  bar.Finish();
  if (!mpi::Root()) {
    mpi::FlushSends();
    return kExitOk;  // rank 0 builds and writes the fit input
  }
  if (mpi::Size() > 1)
    std::cerr << command << ": " << receiver.Summary("partial histogram sets") << "\n";
  const auto t1 = std::chrono::steady_clock::now();
  std::string metadata;
  if constexpr (requires { prod.summary.MetadataJson(); }) metadata = prod.summary.MetadataJson();
  if (metadata.empty()) {
    io::WriteFitInput(prod.model, a.output, prod.write_options);
  } else {
    // Producer metadata (recentred mass templates): written next to the output, annotated, then
    // renamed over it, so the output is never seen without it.
    const std::string temp = a.output + ".lepus-meta.tmp";
    try {
      io::WriteFitInput(prod.model, temp, prod.write_options);
      models::WriteProducerMetadata(temp, metadata);
      std::filesystem::rename(temp, a.output);
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw;
    }
  }
  const double t_write =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double t_total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cerr << prod.summary.Report();
  const auto size = std::filesystem::file_size(a.output);
  const double rate =
      prod.summary.seconds_fill > 0
          ? (prod.summary.sim_events + prod.summary.data_events) / prod.summary.seconds_fill
          : 0.0;
  std::cerr << "wrote " << a.output << " (" << HumanCount(static_cast<double>(size)) << "B, "
            << (prod.write_options.gzip ? "gzip, " : "") << FormatSeconds(t_write) << ")\n"
            << "total " << FormatSeconds(t_total) << " on " << models::ResolveThreads(a.threads)
            << " thread(s), " << HumanCount(rate) << " events/s\n"
            << epilogue;
  return kExitOk;
}

}  // namespace lepus::cli
