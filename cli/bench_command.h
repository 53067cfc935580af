// `lepus bench` (bench_command.cc): kept out of common.h, which other commands share.
#pragma once

#include <string>

#include "common.h"

namespace lepus::cli {

Command AddBenchCommand(CLI::App& parent, const std::string& command_line);

}  // namespace lepus::cli
