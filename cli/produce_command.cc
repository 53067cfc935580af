// `lepus produce wmass` and `lepus produce wlike`: events (generated or from event files) ->
// histograms with every systematic variation -> the W-mass or W-like Z-mass fit input
// (models/wmass.h, docs/producers.md, docs/wlike.md). Progress
// (events/s, ETA) and the summary go to stderr; --print-config prints the effective
// configuration as JSON on stdout.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "lepus/io/writer.h"
#include "lepus/models/wmass.h"
#include "likelihood_setup.h"
#include "produce_flags.h"
#include "produce_run.h"
#include "progress.h"

namespace lepus::cli {

models::WMassConfig ProduceConfigFromFlags(const ProduceFlags& f) {
  const models::WMassAnalysis analysis =
      f.wlike ? models::WMassAnalysis::kWLike : models::WMassAnalysis::kWMass;
  const bool helicity = f.producer == "helicity";  // a mode of the W-mass analysis
  const std::string command =
      helicity ? "produce helicity" : "produce " + models::ToString(analysis);
  models::WMassConfig c;
  if (!f.config.empty()) {
    if (f.light || f.full)
      throw std::invalid_argument(std::string(f.light ? "--light" : "--full") +
                                  ": the preset comes from the 'preset' key of --config " +
                                  f.config + "; give one or the other");
    c = models::ReadWMassConfig(f.config, analysis);
    if (c.helicity.enabled != helicity)
      throw std::invalid_argument("--config " + f.config + ": the configuration is for 'produce " +
                                  (c.helicity.enabled ? "helicity" : models::ToString(analysis)) +
                                  "' (key 'producer'), but was given to '" + command + "'");
  } else {
    const models::WMassPreset preset =
        f.full ? models::WMassPreset::kFull : models::WMassPreset::kLight;
    c = helicity ? models::WMassConfig::Helicity(preset)
                 : models::WMassConfig::Preset(preset, analysis);
  }
  ApplySampleFlags(f, &c);
  if (f.flip_parity) c.flip_parity = true;
  if (!f.mass_split.empty()) {
    const models::MassSplitMode mode = c.mass_split.mode;
    c.mass_split = models::MassSplitConfig::FromSpec(f.mass_split, "--mass-split");
    c.mass_split.mode = mode;
  }
  if (!f.mass_split_mode.empty()) {
    if (f.mass_split_mode != "separate" && f.mass_split_mode != "difference")
      throw std::invalid_argument("--mass-split-mode is '" + f.mass_split_mode +
                                  "', but must be separate or difference");
    c.mass_split.mode = models::MassSplitModeFromString(f.mass_split_mode);
  }
  if (!std::isnan(f.mass_center)) {
    const double sim = c.SimulationMassMev();
    if (!(f.mass_center > 0) ||
        !(std::abs(f.mass_center - sim) <= models::kMaxMassCenterShiftMev)) {
      std::ostringstream os;
      os << "--mass-center is " << f.mass_center << " MeV, but must be the "
         << (f.wlike ? "Z" : "W") << " mass in MeV within " << models::kMaxMassCenterShiftMev
         << " MeV of the simulation's (" << sim << " MeV)";
      throw std::invalid_argument(os.str());
    }
    c.mass_center_mev = f.mass_center;
  }
  std::string error;
  if (!c.IsValid(&error))
    throw std::invalid_argument(command + ": " + error +
                                (f.config.empty() ? "" : " (configuration " + f.config + ")"));
  return c;
}

int RunProduce(const ProduceFlags& a, const models::WMassConfig& config,
               const std::string& /*command_line*/) {
  const std::string command =
      config.helicity.enabled ? "produce helicity" : "produce " + models::ToString(config.analysis);
  return RunProduction(command, config, a,
                       [](const models::WMassConfig& c, const models::ProduceOptions& o) {
                         return models::ProduceWMass(c, o);
                       });
}

void AddProduceFlags(CLI::App* sub, ProduceFlags* args) {
  const bool dilepton = args->producer == "dilepton";
  sub->add_option("--config", args->config,
                  dilepton ? "JSON configuration (docs/dilepton.md)"
                           : "JSON configuration (docs/producers.md)")
      ->type_name("FILE");
  auto* light = sub->add_flag("--light", args->light,
                              "light preset: tens of nuisances (default without --config)");
  auto* full = sub->add_flag(
      "--full", args->full,
      dilepton ? "full preset: about a thousand nuisances" : "full preset: thousands of nuisances");
  light->excludes(full);
  sub->add_option("--events", args->events, "simulation event files (instead of generating)")
      ->type_name("FILE")
      ->expected(1, -1);
  // At most 1e12: producing them takes days already (a few million events/s).
  sub->add_option("--generate", args->generate, "simulated events to generate (at most 1e12)")
      ->type_name("N")
      ->transform(IntegerArg(1, 1000000000000));
  sub->add_option("--data-events", args->data_events,
                  "data event files (instead of generating data)")
      ->type_name("FILE")
      ->expected(1, -1);
  if (args->wlike || args->producer == "dilepton") {
    sub->add_option("--data-truth-mz-shift", args->data_mz_shift,
                    "m_Z of generated data minus the simulation's, in MeV")
        ->type_name("MEV")
        ->check(NumberArg());
    if (args->wlike)
      sub->add_flag("--flip-parity", args->flip_parity,
                    "keep the mu+ of even and the mu- of odd event numbers (default: the reverse)");
  } else {
    sub->add_option("--data-truth-mw-shift", args->data_mw_shift,
                    "m_W of generated data minus the simulation's, in MeV")
        ->type_name("MEV")
        ->check(NumberArg());
  }
  sub->add_option("--seed", args->seed,
                  "generator seed of the simulation, 0 to 2^64 - 1 (the data use SEED + 1, "
                  "modulo 2^64)")
      ->type_name("S")
      ->transform(SeedArg())
      ->each([args](const std::string&) { args->seed_given = true; });
  sub->add_option("--luminosity", args->luminosity,
                  "integrated luminosity of generated data and of the simulation weights")
      ->type_name("PB")
      ->check(PositiveArg());
  sub->add_option("--threads", args->threads, "worker threads (0 = all cores; output identical)")
      ->type_name("N")
      ->transform(IntegerArg(0, 4096));
}

namespace {

// `produce wmass` and `produce wlike`: the shared flags, the split-mass options, -o.
Command AddSingleMuonAnalysis(CLI::App* produce, const std::string& name,
                              const std::string& description, bool wlike,
                              const std::string& command_line) {
  auto args = std::make_shared<ProduceFlags>();
  args->wlike = wlike;
  CLI::App* sub = produce->add_subcommand(name, description);
  AddProduceFlags(sub, args.get());
  sub->add_option("--mass-split", args->mass_split,
                  "split the mass parameter: none, charge, eta_sign, abs_eta:<|eta| edges> or "
                  "charge_abs_eta[:<edges>] (docs/wlike.md)")
      ->type_name("SPEC");
  sub->add_option("--mass-split-mode", args->mass_split_mode,
                  "separate: one mass per region; difference: a common mass plus difference "
                  "parameters (m(+) - m(-), m(eta>0) - m(eta<0))")
      ->type_name("MODE");
  sub->add_option("--mass-center", args->mass_center,
                  std::string("build the mass templates (nominal, the NOI pair, the pseudo-data "
                              "shifts) around this ") +
                      (wlike ? "m_Z" : "m_W") +
                      " in MeV instead of the simulation's: the NOI then measures m - MEV "
                      "(iterated fits; docs/producers.md)")
      ->type_name("MEV")
      ->check(NumberArg());
  sub->add_flag("--print-config", args->print_config,
                "print the effective configuration as JSON on stdout (and stop unless -o)");
  sub->add_option("-o,--output", args->output, "the fit input to write (HDF5)")->type_name("FILE");
  return {sub, [args, command_line] {
            return RunProduce(*args, ProduceConfigFromFlags(*args), command_line);
          }};
}

}  // namespace

Command AddProduceCommand(CLI::App& parent, const std::string& command_line) {
  CLI::App* produce = parent.add_subcommand(
      "produce", "build a fit input from events (generated or read from event files)");
  produce->require_subcommand(1);
  std::vector<Command> analyses = {
      AddSingleMuonAnalysis(
          produce, "wmass",
          "the W-mass fit input: muon eta x pT x charge with every systematic group", false,
          command_line),
      AddSingleMuonAnalysis(
          produce, "wlike",
          "the W-like Z-mass fit input: Z -> mu mu with one muon (by event-number parity) "
          "treated as a neutrino",
          true, command_line),
      AddProduceDilepton(produce, command_line), AddProduceHelicity(produce, command_line)};
  return {produce, [analyses] {
            for (const Command& a : analyses)
              if (a.app->parsed()) return a.run();
            return kExitInvalidInput;  // unreachable: require_subcommand(1)
          }};
}

}  // namespace lepus::cli
