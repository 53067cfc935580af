// `lepus produce dilepton`: Z -> mu mu events (generated or from event files) -> the m_mumu x
// eta(most forward muon) histograms with every systematic variation -> the dilepton m_Z fit input
// (models/dilepton.h, docs/dilepton.md). The flags, checks and run of `produce wmass`
// (produce_run.h): progress and the summary on stderr, --print-config prints the effective
// configuration as JSON on stdout, the output is written atomically.
#include <memory>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "lepus/models/dilepton.h"
#include "produce_flags.h"
#include "produce_run.h"

namespace lepus::cli {

namespace {

models::DileptonConfig ConfigFromFlags(const ProduceFlags& f) {
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
  ApplySampleFlags(f, &c);
  std::string error;
  if (!c.IsValid(&error))
    throw std::invalid_argument("produce dilepton: " + error +
                                (f.config.empty() ? "" : " (configuration " + f.config + ")"));
  return c;
}

}  // namespace

Command AddProduceDilepton(CLI::App* produce, const std::string& /*command_line*/) {
  auto args = std::make_shared<ProduceFlags>();
  args->producer = "dilepton";
  CLI::App* sub = produce->add_subcommand(
      "dilepton", "the dilepton m_Z fit input: m_mumu x eta of the most forward muon");
  AddProduceFlags(sub, args.get());
  sub->add_flag("--print-config", args->print_config,
                "print the effective configuration as JSON on stdout (and stop unless -o)");
  sub->add_option("-o,--output", args->output, "the fit input to write (HDF5)")->type_name("FILE");
  return {sub, [args] {
            const models::DileptonConfig config = ConfigFromFlags(*args);
            return RunProduction(
                "produce dilepton", config, *args,
                [](const models::DileptonConfig& c, const models::ProduceOptions& o) {
                  return models::ProduceDilepton(c, o);
                },
                "fit: lepus fit " + args->output + " --impacts (" + models::kDileptonNoi +
                    " is m_Z - m_Z(simulation) in MeV; its 'stat' impact is the statistical "
                    "part)\n");
          }};
}

}  // namespace lepus::cli
