// The `lepus` command: subcommands fit, scan, toys, hypotest, limit, inspect, demo, report, generate, produce,
// calibrate, bench. Exit codes (README.md):
//   0 success, 1 invalid input or flags, 2 fit not converged / failed, 3 internal error.
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "lepus/io/errors.h"
#include "lepus/io/output.h"
#include "likelihood_setup.h"
#include "mpi.h"

int main(int argc, char** argv) {
  using namespace lepus::cli;
  const std::string command_line = JoinCommandLine(argc, argv);
  // MPI only when launched by mpirun / srun (cli/mpi.h); a plain run never touches MPI.
  const mpi::Session mpi_session(&argc, &argv);

  CLI::App app{"lepus: binned profile-likelihood fits (see README.md)", "lepus"};
  // The optional features built in, one per line after the version.
  std::string version = "lepus " + Version();
  version += "\nmpi: " + (mpi::Built() ? mpi::LibraryVersion() : std::string("not built"));
  app.set_version_flag("--version", version);
  app.require_subcommand(1);
  const std::vector<Command> commands = {
      AddFitCommand(app, command_line),       AddScanCommand(app, command_line),
      AddToysCommand(app, command_line),      AddHypotestCommand(app, command_line),
      AddLimitCommand(app, command_line),     AddInspectCommand(app),
      AddDemoCommand(app, command_line),      AddReportCommand(app),
      AddGenerateCommand(app, command_line),  AddProduceCommand(app, command_line),
      AddCalibrateCommand(app, command_line), AddBenchCommand(app, command_line)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "lepus: error: " << FormatParseError(e) << "\n"
              << "Run 'lepus --help' or 'lepus <command> --help' for usage.\n";
    return kExitInvalidInput;
  }

  // Temporary output files are removed on SIGINT/SIGTERM/SIGHUP/SIGPIPE (lepus/io/output.h).
  lepus::io::InstallTemporaryFileCleanup();
  // Under mpirun with several ranks only the distributed commands run (docs/scaling.md); any
  // other would run N times and write the same outputs N times. Every rank decides alike.
  if (mpi::Size() > 1)
    for (const Command& c : commands)
      if (c.app->parsed() && c.app->get_name() != "toys" && c.app->get_name() != "scan" &&
          c.app->get_name() != "produce" && c.app->get_name() != "calibrate" &&
          c.app->get_name() != "fit") {
        std::cerr << "lepus: error: '" << c.app->get_name()
                  << "' does not run on several MPI ranks "
                  << "(this job has " << mpi::Size() << "); the distributed commands are toys, "
                  << "scan, produce, calibrate jpsi and fit (its --impact-refit refits): run '"
                  << c.app->get_name() << "' without mpirun or with -np 1\n";
        return kExitInvalidInput;
      }
  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const lepus::io::InputError& e) {
    // Under mpirun with several ranks, mpi::ReportError aborts the whole job (every rank stops,
    // nothing is written); otherwise it prints and returns the code.
    return mpi::ReportError(e.what(), kExitInvalidInput);
  } catch (const std::invalid_argument& e) {
    return mpi::ReportError(e.what(), kExitInvalidInput);
  } catch (const lepus::engine::NumericalError& e) {
    // Numerical trouble that a command did not turn into a status itself: still exit code 2.
    return mpi::ReportError(e.what(), kExitFitFailed);
  } catch (const std::exception& e) {
    return mpi::ReportError(std::string("internal error: ") + e.what(), kExitInternal);
  }
  return kExitInvalidInput;  // unreachable: require_subcommand(1)
}
