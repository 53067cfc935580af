// `lepus demo`: writes the W-mass-like demo input (models::MakeDemoInput) and fits it.
// Later this becomes the full chain generate -> produce -> fit -> impacts.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "common.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/errors.h"
#include "lepus/models/demo.h"

namespace lepus::cli {
namespace {

struct DemoArgs {
  std::string outdir = "lepus-demo";
  std::uint64_t seed = 1;
  int threads = 0;
};

int RunDemo(const DemoArgs& a, const std::string& command_line) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(a.outdir, ec);
  if (ec || !fs::is_directory(a.outdir))
    throw io::InputError(a.outdir + ": cannot create the output directory" +
                         (ec ? " (" + ec.message() + ")" : std::string()));
  const std::string input = (fs::path(a.outdir) / "demo.h5").string();
  const std::string json_path = (fs::path(a.outdir) / "fit_results.json").string();
  const std::string hdf5_path = (fs::path(a.outdir) / "fit_results.h5").string();

  models::DemoSpec spec;
  spec.seed = a.seed;
  std::cout << "W-mass demo: muon (eta, pT, charge) distribution of W -> mu nu with Z -> mu mu, "
               "nonprompt and top backgrounds;\n"
            << "  data generated with a true W-mass shift of " << spec.true_mass_shift_mev
            << " MeV (seed " << a.seed << ")\n";
  const auto t0 = std::chrono::steady_clock::now();
  models::MakeDemoInput(spec).Write(input);
  const double t_write =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "  wrote " << input << " (" << fs::file_size(input) / 1024 << " KiB, "
            << static_cast<int>(t_write * 1000) << " ms)\n\n";

  engine::LikelihoodOptions lopt;
  lopt.num_threads = a.threads;
  engine::Likelihood likelihood(ReadInput(input), lopt);
  io::RunInfo info;
  info.input_path = input;
  info.command_line = command_line;
  info.num_threads = a.threads;
  engine::FitResult result;
  const int code = FitAndWrite(likelihood, engine::FitOptions{}, info, json_path, hdf5_path,
                               std::cout, &result);

  const int i = likelihood.FindParam(models::kDemoMassNoi);
  if (i >= 0 && result.values.size() == likelihood.num_params()) {
    const double shift = result.values[i] * models::kDemoMassScaleMeV;
    const double error = result.errors[i] * models::kDemoMassScaleMeV;
    char pull[32];
    std::snprintf(pull, sizeof(pull), "%+.2f",
                  error > 0.0 ? (shift - spec.true_mass_shift_mev) / error : NAN);
    std::cout << "\nW-mass demo result: m_W shift = "
              << FormatPhysical(result.values[i], result.errors[i], models::kDemoMassScaleMeV,
                                "MeV")
              << " (true " << spec.true_mass_shift_mev << " MeV, pull " << pull << ")\n";
  }
  std::cout << "results: " << json_path << ", " << hdf5_path << "\n";
  return code;
}

}  // namespace

Command AddDemoCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* sub = parent.add_subcommand(
      "demo", "W-mass demo: write an example fit input and fit the W-mass shift");
  sub->add_option("--outdir", args->outdir, "directory for the input and the results")
      ->type_name("DIR")
      ->capture_default_str();
  sub->add_option("--seed", args->seed, "seed of the pseudo-data fluctuation")
      ->type_name("N")
      ->capture_default_str();
  sub->add_option("--threads", args->threads, "worker threads (0 = all cores)")
      ->type_name("N")
      ->check(CLI::Range(0, 4096));
  return {sub, [args, command_line] { return RunDemo(*args, command_line); }};
}

}  // namespace lepus::cli
