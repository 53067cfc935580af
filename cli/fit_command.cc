// `lepus fit INPUT.h5`: maximum-likelihood fit of a fit input, human report on stderr, JSON
// summary to a file or stdout, HDF5 results file.
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::cli {
namespace {

struct FitArgs {
  std::string input;
  std::string output;      // HDF5 results
  std::string json;        // JSON summary, "-" = stdout
  bool asimov = false;
  std::string pseudodata;
  bool no_bbstat = false;
  bool poi_positive = false;
  int threads = 0;
  FitFlags flags;
};

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

int RunFit(const FitArgs& a, const std::string& command_line) {
  CheckOutputPath(a.json);
  CheckOutputPath(a.output);
  engine::Model model = ReadInput(a.input);

  engine::LikelihoodOptions lopt;
  lopt.bin_by_bin_stat = !a.no_bbstat;
  lopt.poi_positive = a.poi_positive;
  lopt.num_threads = a.threads;
  std::string error;
  if (!lopt.IsValid(&error)) throw std::invalid_argument("likelihood options: " + error);

  io::RunInfo info;
  info.input_path = a.input;
  info.command_line = command_line;
  info.num_threads = a.threads;

  Eigen::VectorXd pseudo;
  if (!a.pseudodata.empty()) {
    const auto& names = model.pseudodata_names;
    int column = -1;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == a.pseudodata) column = static_cast<int>(i);
    if (column < 0)
      throw std::invalid_argument(
          "--pseudodata: " + a.input + " has no pseudo-data set named '" + a.pseudodata + "' " +
          (names.empty() ? std::string("(the file has no pseudo-data)")
                         : "(available: " + JoinNames(names) + ")"));
    pseudo = model.pseudodata.col(column);
    info.data_label = "pseudodata:" + a.pseudodata;
  }

  engine::Likelihood lik(std::move(model), lopt);
  if (a.asimov) {
    lik.SetData(engine::AsimovData(lik, lik.InitialParams()));
    info.data_label = "asimov";
  } else if (!a.pseudodata.empty()) {
    lik.SetData(pseudo);
  }
  const engine::FitOptions options = MakeFitOptions(lik, a.flags);

  std::cerr << "lepus: fitting " << a.input << " (" << info.data_label << " data, "
            << lik.model().nbins << " bins, " << lik.num_params() << " parameters"
            << (lopt.bin_by_bin_stat ? ", bin-by-bin MC statistics" : "") << ")\n";
  return FitAndWrite(lik, options, info, a.json, a.output, std::cerr);
}

}  // namespace

Command AddFitCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<FitArgs>();
  CLI::App* sub = parent.add_subcommand(
      "fit", "Maximum-likelihood fit of a fit input (HDF5 tensor layout). The report goes to "
             "stderr; --json and -o write machine-readable results.");
  sub->add_option("input", args->input, "fit input file (HDF5)")->required()->type_name("FILE");
  sub->add_option("-o,--output", args->output, "write the HDF5 results file here")
      ->type_name("FILE");
  sub->add_option("--json", args->json, "write the JSON summary to FILE ('-' = stdout)")
      ->type_name("FILE");
  CLI::Option* asimov =
      sub->add_flag("--asimov", args->asimov, "fit the Asimov data set at the prefit values");
  CLI::Option* pseudo = sub->add_option("--pseudodata", args->pseudodata,
                                        "fit the named pseudo-data set instead of the data")
                            ->type_name("NAME");
  asimov->excludes(pseudo);
  sub->add_option("--freeze", args->flags.freeze,
                  "freeze the parameters whose whole name matches REGEX (repeatable)")
      ->type_name("REGEX")
      ->allow_extra_args(false);
  sub->add_option("--set", args->flags.set,
                  "initial value NAME=VALUE (mu for POIs, theta for nuisances; repeatable)")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  sub->add_flag("--no-bbstat", args->no_bbstat, "disable bin-by-bin MC statistics");
  sub->add_flag("--poi-positive", args->poi_positive,
                "parametrise signal strengths as mu = x^2 (mu >= 0)");
  sub->add_option("--threads", args->threads, "worker threads (0 = all cores)")
      ->type_name("N")
      ->check(CLI::Range(0, 4096));
  sub->add_option("--edm-tol", args->flags.edm_tolerance, "EDM convergence tolerance (> 0)")
      ->type_name("X")
      ->capture_default_str();
  sub->add_option("--max-iter", args->flags.max_iterations, "maximum Newton iterations")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  return {sub, [args, command_line] { return RunFit(*args, command_line); }};
}

}  // namespace lepus::cli
