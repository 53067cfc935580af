// `lepus produce dilepton`: the dilepton m_Z fit input (issue 5; in progress).
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "common.h"

namespace lepus::cli {

Command AddProduceDilepton(CLI::App* produce, const std::string& /*command_line*/) {
  CLI::App* sub = produce->add_subcommand("dilepton", "the dilepton m_Z fit input (not yet available)");
  sub->group("");  // hidden until the producer lands
  return {sub, []() -> int {
            throw std::invalid_argument("produce dilepton: not available in this build yet");
          }};
}

}  // namespace lepus::cli
