// `lepus generate`: runs the parametric generator (models/generator.h) and writes an HDF5 event
// file (models/event_file.h, docs/events.md), with a progress line (events/s, ETA) and a summary
// on stderr.
//
// Simulation: -n events in total, shared among the processes by their rates, weights normalised
// to --lumi. Data (--data): the default data truth (m_W - 30 MeV, biased momentum scale, lower
// efficiencies, non-prompt x1.15), Poisson event counts for the luminosity (--lumi, or the one at
// which the simulation's rates expect -n events), unit weights. The --truth-* flags change the
// parameters of the sample being generated (data or simulation).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "lepus/calibration/jpsi.h"
#include "lepus/io/output.h"
#include "lepus/models/event_file.h"
#include "lepus/models/generator.h"

namespace lepus::cli {
namespace {

using models::Process;

struct GenerateArgs {
  std::vector<std::string> processes;
  std::uint64_t num_events = 0;
  std::uint64_t seed = 1;
  bool data = false;
  double lumi_pb = 0.0;  // 0: default (simulation 16800; data: from -n)
  double mw_shift_mev = NAN;
  double nonprompt_factor = NAN;
  std::string scale_truth;  // "", nominal, biased
  std::string eff_truth;    // "", nominal, biased
  int min_muons = 1;
  double min_pt = 20.0;
  bool no_detector = false;
  std::size_t batch = 262144;
  std::string output;
  int threads = 0;
  bool no_resource_check = false;
};

std::vector<Process> ParseProcesses(const std::vector<std::string>& args) {
  std::vector<Process> out;
  auto add = [&out](Process p) {
    for (Process q : out)
      if (q == p) return;
    out.push_back(p);
  };
  for (const std::string& arg : args) {
    std::stringstream ss(arg);
    std::string name;
    while (std::getline(ss, name, ',')) {
      if (name == "all") {
        for (Process p : models::kAllProcesses) add(p);
      } else if (name == "wmunu") {
        add(Process::kWplusMuNu);
        add(Process::kWminusMuNu);
      } else {
        try {
          add(models::ProcessFromString(name));
        } catch (const std::invalid_argument&) {
          throw std::invalid_argument(
              "--process: unknown process '" + name +
              "' (valid: wmunu, wplus, wminus, zmumu, wtaunu, ztautau, nonprompt, top, diboson, "
              "all; comma-separated or repeated; or jpsi alone)");
        }
      }
    }
  }
  if (out.empty()) throw std::invalid_argument("--process: no process given");
  return out;
}

std::string Human(double n) {
  char buf[32];
  if (n >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.2fG", n / 1e9);
  else if (n >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.2fM", n / 1e6);
  else if (n >= 1e4)
    std::snprintf(buf, sizeof(buf), "%.1fk", n / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f", n);
  return buf;
}

// Lower estimate of the event file's size per generated event (bytes) with the default filter
// (>= 1 muon above 20 GeV): measured 96 bytes for the simulation of every process and 46 for data
// (-n 200000). A much tighter --min-pt / --min-muons writes less: --no-resource-check.
constexpr double kEventFileBytesPerEvent = 40.0;

// Refuses, before generating, an event file that cannot fit on the output's filesystem
// (statvfs), naming -n / --lumi and the bytes; --no-resource-check skips it.
void CheckEventFileSize(const GenerateArgs& a, const std::string& flag, const std::string& value,
                        double events) {
  if (a.no_resource_check) return;
  CheckResourceEstimate(flag, value, events * kEventFileBytesPerEvent, FreeDiskBytes(a.output),
                        "the event file of " + Human(events) + " generated events",
                        "free on the filesystem of " + a.output, "--no-resource-check");
}

std::string Seconds(double s) {
  char buf[32];
  if (s < 1.0)
    std::snprintf(buf, sizeof(buf), "%.0f ms", s * 1e3);
  else if (s < 120.0)
    std::snprintf(buf, sizeof(buf), "%.1f s", s);
  else
    std::snprintf(buf, sizeof(buf), "%.0f min %02.0f s", std::floor(s / 60), std::fmod(s, 60.0));
  return buf;
}

// "generate: 12.3M/50.0M events (24%), 2.10M events/s, ETA 18 s" on stderr: redrawn in place on
// a terminal (at most 5 times a second), else one line per tenth.
class RateProgress {
 public:
  RateProgress() : tty_(::isatty(STDERR_FILENO) == 1), start_(Clock::now()), last_(start_) {}
  void Update(std::int64_t done, std::int64_t total) {
    const auto now = Clock::now();
    const double t = std::chrono::duration<double>(now - start_).count();
    const double rate = t > 0 ? done / t : 0.0;
    const int tenth = total > 0 ? static_cast<int>(10 * done / total) : 10;
    if (tty_) {
      if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
    } else if (tenth == last_tenth_) {
      return;
    }
    last_ = now;
    last_tenth_ = tenth;
    std::ostringstream os;
    os << "generate: " << Human(static_cast<double>(done)) << "/"
       << Human(static_cast<double>(total)) << " events (" << (total > 0 ? 100 * done / total : 100)
       << "%), " << Human(rate) << " events/s";
    if (rate > 0 && done < total) os << ", ETA " << Seconds((total - done) / rate);
    std::cerr << (tty_ ? "\r" : "") << os.str() << (tty_ ? "\033[K" : "\n") << std::flush;
    drawn_ = true;
  }
  void Finish() {
    if (tty_ && drawn_) std::cerr << "\n";
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool tty_;
  Clock::time_point start_, last_;
  int last_tenth_ = -1;
  bool drawn_ = false;
};

// `--process jpsi`: J/psi -> mu mu events for the muon calibration (models/jpsi.h; read back by
// `lepus calibrate jpsi --events ... --data-events ...`). Simulation: the nominal detector; data
// (--data): the data detector's scale bias (--truth-scale). -n events are generated; those with
// two reconstructed muons (pT > 4 GeV, |eta| < 2.4) are written, unit weights.
int RunGenerateJpsi(const GenerateArgs& a, const std::string& command_line) {
  const std::pair<bool, const char*> not_for_jpsi[] = {
      {a.lumi_pb > 0, "--lumi"},
      {!std::isnan(a.mw_shift_mev), "--truth-mw-shift"},
      {!std::isnan(a.nonprompt_factor), "--truth-nonprompt-factor"},
      {!a.eff_truth.empty(), "--truth-eff"},
      {a.no_detector, "--no-detector"}};
  for (const auto& [set, flag] : not_for_jpsi)
    if (set)
      throw std::invalid_argument(std::string(flag) +
                                  " does not apply to --process jpsi (J/psi events have no "
                                  "luminosity, W, non-prompt or efficiency truth)");
  if (a.num_events == 0) throw std::invalid_argument("-n is required for --process jpsi");
  models::DetectorParams detector =
      a.data ? models::DetectorParams::DefaultData() : models::DetectorParams::Simulation();
  if (!a.scale_truth.empty())
    detector.scale_bias = a.scale_truth == "biased"
                              ? models::DetectorParams::DefaultData().scale_bias
                              : models::ScaleTable{};
  io::CheckOutputs({{"-o", a.output, false}});
  CheckEventFileSize(a, "--events", std::to_string(a.num_events),
                     static_cast<double>(a.num_events));
  const models::SampleKind sample =
      a.data ? models::SampleKind::kData : models::SampleKind::kSimulation;
  const calibration::JpsiGenerator generator(calibration::JpsiGeneratorOptions{}, detector, sample,
                                             a.seed);
  std::cerr << "generate: J/psi -> mu mu, " << models::ToString(sample) << ", seed " << a.seed
            << ", " << Human(static_cast<double>(a.num_events))
            << " J/psi to generate (written: two reconstructed muons)\n";
  const auto t0 = std::chrono::steady_clock::now();
  models::EventFileWriterOptions write_options;
  write_options.num_threads = a.threads;
  models::EventFileWriter writer(
      a.output,
      calibration::MakeJpsiEventFileMetadata(generator, a.num_events,
                                             "lepus " + Version() + ": " + command_line),
      write_options);
  models::EventBatch batch;
  RateProgress progress;
  const auto total = static_cast<std::int64_t>(a.num_events);
  progress.Update(0, total);
  for (std::uint64_t first = 0; first < a.num_events; first += a.batch) {
    const std::uint64_t n = std::min<std::uint64_t>(a.batch, a.num_events - first);
    batch.Clear();
    generator.Generate(first, n, &batch, a.threads);
    writer.Append(batch);
    progress.Update(static_cast<std::int64_t>(first + n), total);
  }
  progress.Finish();
  writer.Close();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(a.output, ec);
  std::cerr << "wrote " << a.output << ": " << writer.num_events() << " J/psi events of "
            << a.num_events << " generated, "
            << (ec ? std::string("?") : Human(static_cast<double>(bytes)) + "B") << ", in "
            << Seconds(seconds) << "\n";
  return kExitOk;
}

int RunGenerate(const GenerateArgs& a, const std::string& command_line) {
  for (const std::string& arg : a.processes) {
    std::stringstream ss(arg);
    std::string name;
    bool jpsi = false, other = false;
    while (std::getline(ss, name, ',')) (name == "jpsi" ? jpsi : other) = true;
    if (jpsi && (other || a.processes.size() > 1))
      throw std::invalid_argument(
          "--process: jpsi cannot be combined with other processes (J/psi events go to their own "
          "file)");
    if (jpsi) return RunGenerateJpsi(a, command_line);
  }
  models::GeneratorConfig config =
      a.data ? models::GeneratorConfig::DefaultData() : models::GeneratorConfig{};
  config.processes = ParseProcesses(a.processes);
  config.seed = a.seed;
  config.simulate_detector = !a.no_detector;
  config.filter.min_muons = a.min_muons;
  config.filter.min_pt = a.min_pt;
  if (!std::isnan(a.mw_shift_mev)) config.physics.w_mass += a.mw_shift_mev * 1e-3;
  if (!std::isnan(a.nonprompt_factor))
    config.physics.yield_factor[static_cast<int>(Process::kNonPrompt)] = a.nonprompt_factor;
  if (!a.scale_truth.empty())
    config.detector.scale_bias = a.scale_truth == "biased"
                                     ? models::DetectorParams::DefaultData().scale_bias
                                     : models::ScaleTable{};
  if (!a.eff_truth.empty())
    config.detector.efficiency_variation =
        a.eff_truth == "biased" ? models::DetectorParams::DefaultData().efficiency_variation
                                : models::DetectorParams{}.efficiency_variation;

  if (a.data) {
    if (a.lumi_pb > 0) {
      config.luminosity_pb = a.lumi_pb;
    } else {
      if (a.num_events == 0)
        throw std::invalid_argument("--data needs -n (expected events) or --lumi");
      // The luminosity at which the simulation's rates expect -n events: the data truth's
      // differences (e.g. the non-prompt yield) then show in the counts.
      const models::GeneratorParams nominal;
      double rate = 0;
      for (Process p : config.processes) rate += nominal.cross_section_pb[static_cast<int>(p)];
      config.luminosity_pb = static_cast<double>(a.num_events) / rate;
    }
  } else {
    if (a.num_events == 0) throw std::invalid_argument("-n is required for simulation");
    config.num_events = a.num_events;
    if (a.lumi_pb > 0) config.luminosity_pb = a.lumi_pb;
  }
  std::string error;
  if (!config.IsValid(&error)) throw std::invalid_argument(error);
  io::CheckOutputs({{"-o", a.output, false}});

  const auto t0 = std::chrono::steady_clock::now();
  const models::Generator generator(config);  // validates; the data's counts are drawn here
  if (a.data && a.lumi_pb > 0)
    CheckEventFileSize(a, "--lumi", (std::ostringstream() << a.lumi_pb).str(),
                       static_cast<double>(generator.TotalEvents()));
  else
    CheckEventFileSize(a, "--events", std::to_string(a.num_events),
                       static_cast<double>(generator.TotalEvents()));
  std::cerr << "generate: " << models::ToString(config.sample) << ", seed " << config.seed
            << ", luminosity " << config.luminosity_pb << " /pb, "
            << Human(static_cast<double>(generator.TotalEvents())) << " events to generate, "
            << "filter: >= " << config.filter.min_muons
            << " muon(s) with pT >= " << config.filter.min_pt << " GeV"
            << (config.simulate_detector ? "" : ", no detector") << "\n";

  models::EventFileWriterOptions write_options;
  write_options.num_threads = a.threads;
  models::EventFileWriter writer(
      a.output,
      models::MakeEventFileMetadata(generator, "lepus " + Version() + ": " + command_line),
      write_options);
  auto source = models::MakeGeneratorSource(config, a.threads);
  models::EventBatch batch;
  std::map<int, std::pair<std::int64_t, double>> written;  // process -> (events, sum of weights)
  RateProgress progress;
  progress.Update(0, source->SizeHint());
  while (source->Next(&batch, a.batch) > 0) {
    writer.Append(batch);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& w = written[static_cast<int>(batch.process[i])];
      ++w.first;
      w.second += batch.weight[i];
    }
    progress.Update(source->Position(), source->SizeHint());
  }
  progress.Update(source->Position(), source->SizeHint());
  progress.Finish();
  writer.Close();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::ostringstream os;
  char line[160];
  std::snprintf(line, sizeof(line), "%-10s %14s %14s %16s %12s\n", "process", "generated",
                "written", "sum of weights", "weight");
  os << line;
  std::int64_t total_written = 0;
  for (Process p : config.processes) {
    const auto& w = written[static_cast<int>(p)];
    total_written += w.first;
    std::snprintf(line, sizeof(line), "%-10s %14llu %14lld %16.6g %12.6g\n",
                  models::ToString(p).c_str(),
                  static_cast<unsigned long long>(generator.NumEvents(p)),
                  static_cast<long long>(w.first), w.second, generator.EventWeight(p));
    os << line;
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(a.output, ec);
  os << "wrote " << a.output << ": " << total_written << " events, "
     << (ec ? std::string("?") : Human(static_cast<double>(bytes)) + "B") << ", in "
     << Seconds(seconds) << " (" << Human(generator.TotalEvents() / std::max(seconds, 1e-9))
     << " events/s generated)\n";
  std::cerr << os.str();
  return kExitOk;
}

}  // namespace

Command AddGenerateCommand(CLI::App& parent, const std::string& command_line) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* sub = parent.add_subcommand(
      "generate", "generate events with the parametric generator and write an HDF5 event file");
  sub->add_option("--process,-p", a->processes,
                  "wmunu, wplus, wminus, zmumu, wtaunu, ztautau, nonprompt, top, diboson or all; "
                  "comma-separated or repeated; or jpsi alone (J/psi -> mu mu for lepus "
                  "calibrate jpsi)")
      ->required()
      ->type_name("NAME");
  sub->add_option("-n,--events", a->num_events,
                  "simulation: events to generate (shared by rate); data: expected events")
      ->type_name("N")
      ->transform(IntegerArg(1, std::numeric_limits<std::uint64_t>::max()));
  sub->add_option("--seed", a->seed,
                  "random seed, 0 to 2^64 - 1 (use different seeds for data and simulation)")
      ->type_name("S")
      ->capture_default_str()
      ->transform(SeedArg());
  sub->add_flag("--data", a->data,
                "generate data: the data truth, Poisson counts, efficiencies by accept/reject");
  sub->add_option("--lumi", a->lumi_pb,
                  "integrated luminosity in /pb (simulation: weights, default 16800; data: "
                  "counts, default from -n)")
      ->type_name("PB")
      ->check(PositiveArg());
  sub->add_option("--truth-mw-shift", a->mw_shift_mev,
                  "shift of the true W mass in MeV (relative to the sample's default)")
      ->type_name("MEV")
      ->check(NumberArg());
  sub->add_option("--truth-nonprompt-factor", a->nonprompt_factor,
                  "true non-prompt yield factor (data default 1.15)")
      ->type_name("X")
      ->check(PositiveArg());
  sub->add_option("--truth-scale", a->scale_truth,
                  "momentum scale: nominal (no bias) or biased (the default data bias)")
      ->check(CLI::IsMember({"nominal", "biased"}));
  sub->add_option("--truth-eff", a->eff_truth,
                  "efficiencies: nominal or biased (the default data efficiencies)")
      ->check(CLI::IsMember({"nominal", "biased"}));
  sub->add_option("--min-muons", a->min_muons,
                  "keep events with at least this many reconstructed muons above --min-pt")
      ->transform(IntegerArg(0, 2))
      ->capture_default_str();
  sub->add_option("--min-pt", a->min_pt, "muon pT threshold of the filter (GeV)")
      ->check(NonNegativeArg())
      ->capture_default_str();
  sub->add_flag("--no-detector", a->no_detector,
                "perfect detector: generated muons in the acceptance, no efficiencies");
  sub->add_option("--batch", a->batch, "events generated per batch")
      ->transform(IntegerArg(1, std::uint64_t{1} << 26))
      ->capture_default_str();
  sub->add_option("-o,--output", a->output, "output event file (HDF5)")
      ->required()
      ->type_name("FILE");
  sub->add_option("--threads", a->threads,
                  "worker threads (0 = all cores; output does not depend on it)")
      ->type_name("N")
      ->transform(IntegerArg(0, 4096));
  sub->add_flag("--no-resource-check", a->no_resource_check,
                "skip the check of the estimated event-file size against the free space of the "
                "output's filesystem");
  return {sub, [a, command_line] { return RunGenerate(*a, command_line); }};
}

}  // namespace lepus::cli
