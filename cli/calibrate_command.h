// `lepus calibrate` (calibrate_command.cc): kept out of common.h, which other commands share.
#pragma once

#include <string>

#include "common.h"

namespace lepus::cli {

Command AddCalibrateCommand(CLI::App& parent, const std::string& command_line);

}  // namespace lepus::cli
