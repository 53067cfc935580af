// `lepus produce helicity`: the helicity cross-section fit input (models/helicity.h,
// docs/helicity.md): the W-mass producer with the signal split by generator-level charge, boson
// pT, |y| and helicity component, the normalisation parameters of the split processes and the
// masked channel of their generator-level cross sections. With --coefficients INPUT it instead
// fits a produced input and prints sigma_i and A_i = sigma_i / sigma_UL with uncertainties.
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "fit_input.h"
#include "lepus/engine/fit.h"
#include "lepus/models/helicity.h"
#include "lepus/models/wmass.h"
#include "likelihood_setup.h"
#include "mpi.h"
#include "produce_flags.h"

namespace lepus::cli {

namespace {

struct HelicityFlags {
  ProduceFlags produce;
  double prior_width = std::numeric_limits<double>::quiet_NaN();  // --prior-width W
  bool free = false;                                              // --free
  // --coefficients INPUT: fit and report instead of producing.
  std::string coefficients;
  LikelihoodFlags lik;
  DataFlags data;
  std::string json;
};

int RunCoefficients(const HelicityFlags& a) {
  if (mpi::Size() > 1)
    throw std::invalid_argument(
        "--coefficients (a fit) does not run on several MPI ranks; run it "
        "without mpirun");
  io::CheckOutputs({{"--json", a.json}}, {a.coefficients});
  io::RunInfo info;
  FitFlags fflags;
  const engine::Likelihood lik = MakeLikelihood(a.coefficients, a.lik, a.data, &info);
  const engine::FitOptions options = MakeFitOptions(lik, fflags);
  const engine::FitResult result = engine::Fit(lik, options);
  std::cerr << "fit of " << a.coefficients << " (" << info.data_label
            << "): " << result.BriefReport() << "\n";
  const int mass = lik.FindParam(models::kWMassNoi);
  if (mass >= 0)
    std::cerr << "m_W shift: " << result.values[mass] * 100.0 << " +- "
              << result.errors[mass] * 100.0 << " MeV\n";
  const std::vector<models::HelicityCellResult> cells = models::HelicityCoefficients(lik, result);
  std::cerr << models::HelicityCoefficientsTable(cells);
  const std::string json = models::HelicityCoefficientsJson(cells);
  io::WriteFileAtomically(a.json.empty() ? "-" : a.json, json);
  return result.status == engine::FitStatus::kConverged ? kExitOk : kExitFitFailed;
}

int RunHelicity(HelicityFlags a, const std::string& command_line) {
  if (!a.coefficients.empty()) {
    a.lik.threads = a.produce.threads;
    return RunCoefficients(a);
  }
  a.produce.producer = "helicity";
  models::WMassConfig c = ProduceConfigFromFlags(a.produce);
  if (a.free && !std::isnan(a.prior_width))
    throw std::invalid_argument("--free and --prior-width exclude each other");
  if (a.free) c.helicity.free = true;
  if (!std::isnan(a.prior_width)) {
    c.helicity.free = false;
    c.helicity.prior_width = a.prior_width;
  }
  std::string error;
  if (!c.IsValid(&error)) throw std::invalid_argument("produce helicity: " + error);
  return RunProduce(a.produce, c, command_line);
}

}  // namespace

Command AddProduceHelicity(CLI::App* produce, const std::string& command_line) {
  auto args = std::make_shared<HelicityFlags>();
  CLI::App* sub = produce->add_subcommand(
      "helicity",
      "the helicity cross-section fit input: the W signal split by boson charge, pT, |y| and "
      "helicity component (docs/helicity.md)");
  AddProduceFlags(sub, &args->produce);
  sub->add_option("--prior-width", args->prior_width,
                  "relative width of the Gaussian prior on each split process normalisation")
      ->type_name("W")
      ->check(PositiveArg());
  sub->add_flag("--free", args->free,
                "an unconstrained signal strength per split process instead of a prior");
  sub->add_flag("--print-config", args->produce.print_config,
                "print the effective configuration as JSON on stdout (and stop unless -o)");
  sub->add_option("-o,--output", args->produce.output, "the fit input to write (HDF5)")
      ->type_name("FILE");
  sub->add_option("--coefficients", args->coefficients,
                  "fit this helicity fit input and print sigma_i and A_i with uncertainties "
                  "(JSON on stdout or --json) instead of producing")
      ->type_name("INPUT");
  AddDataFlags(sub, &args->data);
  sub->add_option("--json", args->json, "--coefficients: write the JSON here")->type_name("FILE");
  return {sub, [args, command_line] { return RunHelicity(*args, command_line); }};
}

}  // namespace lepus::cli
