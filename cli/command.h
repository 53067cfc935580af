// How `lepus` declares its subcommands: Add*Command registers a subcommand and its flags on the
// parent app; after a successful parse, main() calls `run` of the subcommand that was selected.
// Also the version and the command line recorded in result files.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace lepus::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// One function per subcommand, in the file of its name (fit_command.cc, ...).
Command AddFitCommand(CLI::App& parent, const std::string& command_line);
Command AddScanCommand(CLI::App& parent, const std::string& command_line);
Command AddToysCommand(CLI::App& parent, const std::string& command_line);
Command AddHypotestCommand(CLI::App& parent,
                           const std::string& command_line);                 // hypotest_command.cc
Command AddLimitCommand(CLI::App& parent, const std::string& command_line);  // hypotest_command.cc
Command AddInspectCommand(CLI::App& parent);
Command AddGenerateCommand(CLI::App& parent, const std::string& command_line);
Command AddProduceCommand(CLI::App& parent, const std::string& command_line);
Command AddCalibrateCommand(CLI::App& parent, const std::string& command_line);
Command AddDemoCommand(CLI::App& parent, const std::string& command_line);
Command AddReportCommand(CLI::App& parent);
Command AddBenchCommand(CLI::App& parent, const std::string& command_line);

// The analyses of `lepus produce`: each adds its subcommand to `produce` and returns it with
// what runs it (Command::app is the subcommand):
//   produce_command.cc   wmass, wlike (the analyses that share its configuration)
//   produce_helicity.cc  helicity
//   produce_dilepton.cc  dilepton
Command AddProduceHelicity(CLI::App* produce, const std::string& command_line);
Command AddProduceDilepton(CLI::App* produce, const std::string& command_line);

std::string Version();

// The command line as one string (recorded in the result files).
std::string JoinCommandLine(int argc, char** argv);

}  // namespace lepus::cli
