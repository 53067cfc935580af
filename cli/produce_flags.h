// The flags of `lepus produce wmass|wlike` (produce_command.cc) that shape the configuration,
// shared with `lepus demo`, and the run of such a production.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI
namespace lepus::models {
struct WMassConfig;
}  // namespace lepus::models

namespace lepus::cli {

// Flags of `lepus produce wmass` / `lepus produce wlike` that shape the configuration.
struct ProduceFlags {
  bool wlike = false;                    // the analysis: `produce wlike` (else wmass)
  std::string config;                    // --config FILE
  bool light = false, full = false;      // --light / --full
  std::vector<std::string> events;       // --events FILE...
  std::int64_t generate = -1;            // --generate N (-1: not given; else 1 to 1e12)
  std::vector<std::string> data_events;  // --data-events FILE...
  double data_mw_shift = std::numeric_limits<double>::quiet_NaN();  // --data-truth-mw-shift
  std::uint64_t seed = 0;   // --seed S, the full unsigned 64-bit range
  bool seed_given = false;  // --seed was given
  double luminosity = std::numeric_limits<double>::quiet_NaN();  // --luminosity PB
  std::string mass_split;       // --mass-split SPEC ("": not given)
  std::string mass_split_mode;  // --mass-split-mode MODE ("": not given)
  double mass_center = std::numeric_limits<double>::quiet_NaN();    // --mass-center MEV
  bool flip_parity = false;                                         // --flip-parity (wlike)
  double data_mz_shift = std::numeric_limits<double>::quiet_NaN();  // --data-truth-mz-shift
  int threads = 0;                                                  // --threads N
  bool print_config = false;                                        // --print-config
  std::string output;                                               // -o FILE
  std::string producer = "wmass";  // the subcommand: "wmass", "helicity" or "dilepton"
};
void AddProduceFlags(CLI::App* sub, ProduceFlags* flags);
// The configuration: --config (or the --light/--full preset of the analysis, flags.wlike) with
// the flags applied on top. Throws std::invalid_argument / io::InputError for a bad file and for
// inconsistent flags (--events with --generate, --data-truth-mw-shift / --data-truth-mz-shift
// with data files, --config with a preset flag).
models::WMassConfig ProduceConfigFromFlags(const ProduceFlags& flags);
// Produces the fit input of the flags' configuration (-o) or prints it (--print-config).
int RunProduce(const ProduceFlags& flags, const models::WMassConfig& config,
               const std::string& command_line);

}  // namespace lepus::cli
