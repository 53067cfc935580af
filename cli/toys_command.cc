// `lepus toys INPUT.h5 -n N --seed S [--expected|--observed]`: a toy ensemble (Poisson data,
// frequentist global observables), every toy fitted like the data; pulls and the saturated
// statistic summarised on stderr, the JSON summary to a file or stdout, per-toy results to HDF5.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "fit_input.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/toys.h"
#include "lepus/io/results.h"
#include "likelihood_setup.h"
#include "mpi.h"

namespace lepus::cli {
namespace {

struct ToysArgs {
  std::string input;
  int ntoys = 0;
  std::uint64_t seed = 1;
  bool no_resource_check = false;
  bool expected = false, observed = false;
  bool no_randomize_constraints = false;
  bool normal_data = false;
  std::vector<std::string> pulls;
  std::string json, output;
  LikelihoodFlags lflags;
  FitFlags flags;
};

std::string Fmt(const char* fmt, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

void PrintSummary(std::ostream& os, const engine::Likelihood& lik, const engine::ToyResults& t) {
  const int n = static_cast<int>(t.status.size());
  os << "\n"
     << t.converged << " of " << n << " toy fits converged ("
     << Fmt("%.1f", 100.0 * t.converged / std::max(n, 1)) << "%)\n";
  std::size_t w = 9;
  for (const auto& p : t.pulls) w = std::max(w, p.name.size());
  char line[320];
  std::snprintf(line, sizeof(line), "  %-*s %8s %12s %18s %18s %12s %12s\n", static_cast<int>(w),
                "parameter", "kind", "truth", "pull mean", "pull width", "mean error", "bias");
  os << line;
  for (const auto& p : t.pulls) {
    // Toys in the summary: converged, with a positive error.
    int used = 0;
    for (int i = 0; i < n; ++i)
      used += t.status[i] == engine::FitStatus::kConverged && t.errors(i, p.param) > 0;
    const double mean_unc = used > 0 ? p.width / std::sqrt(used) : NAN;
    const double width_unc = used > 1 ? p.width / std::sqrt(2.0 * (used - 1)) : NAN;
    const std::string mean = Fmt("%+.3f", p.mean) + " +- " + Fmt("%.3f", mean_unc);
    const std::string width = Fmt("%.3f", p.width) + " +- " + Fmt("%.3f", width_unc);
    std::snprintf(line, sizeof(line), "  %-*s %8s %12s %18s %18s %12s %12s\n", static_cast<int>(w),
                  p.name.c_str(), engine::ToString(lik.params()[p.param].kind).c_str(),
                  Fmt("%.6g", p.truth).c_str(), mean.c_str(), width.c_str(),
                  Fmt("%.4g", p.mean_error).c_str(), Fmt("%+.4g", p.bias).c_str());
    os << line;
  }
  os << "  (pull = (value - truth) / error over the converged toys, expected mean 0 and width 1; "
        "mean error = mean fitted error; bias = mean of value - truth)\n";
  os << "saturated statistic: mean " << Fmt("%.3f", t.gof_mean) << " for ndf " << t.gof_ndf
     << " (ratio " << Fmt("%.3f", t.gof_ndf > 0 ? t.gof_mean / t.gof_ndf : NAN) << "), width "
     << Fmt("%.3f", t.gof_width)
     << " (chi-square: sqrt(2 ndf) = " << Fmt("%.3f", std::sqrt(2.0 * t.gof_ndf)) << ")\n";
}

// Under mpirun (cli/mpi.h): every rank fitted its share of the toys; the per-toy rows go to
// rank 0 in toy order and the summaries are recomputed there, as in one process.
void GatherToys(const engine::Likelihood& lik, const engine::ToyOptions& opt,
                engine::ToyResults* toys) {
  const int npar = lik.num_params();
  const auto [begin, end] = mpi::Share(opt.ntoys);
  std::string mine;
  for (int t = begin; t < end; ++t) {
    const Eigen::VectorXd v = toys->values.row(t).transpose(), e = toys->errors.row(t).transpose();
    const double extra[3] = {static_cast<double>(static_cast<int>(toys->status[t])), toys->nll[t],
                             toys->gof_chi2[t]};
    mpi::Append(&mine, v.data(), npar);
    mpi::Append(&mine, e.data(), npar);
    mpi::Append(&mine, extra, 3);
  }
  const std::vector<std::string> all = mpi::GatherToRoot(mine);
  if (!mpi::Root()) return;
  for (int r = 0; r < mpi::Size(); ++r) {
    const auto [b, e] = mpi::ShareOf(opt.ntoys, r, mpi::Size());
    const std::vector<double> d = mpi::ToDoubles(all[r]);
    const std::size_t row = 2 * static_cast<std::size_t>(npar) + 3;
    if (d.size() != row * static_cast<std::size_t>(e - b))
      throw std::runtime_error("toys: rank " + std::to_string(r) + " sent " +
                               std::to_string(d.size()) + " numbers, expected " +
                               std::to_string(row * (e - b)));
    for (int t = b; t < e; ++t) {
      const double* p = d.data() + row * (t - b);
      for (int i = 0; i < npar; ++i) {
        toys->values(t, i) = p[i];
        toys->errors(t, i) = p[npar + i];
      }
      toys->status[t] = static_cast<engine::FitStatus>(static_cast<int>(p[2 * npar]));
      toys->nll[t] = p[2 * npar + 1];
      toys->gof_chi2[t] = p[2 * npar + 2];
    }
  }
  engine::SummarizeToys(lik, opt, toys);
}

int RunToysCommand(const ToysArgs& a, const std::string& command_line) {
  io::CheckOutputs({{"--json", a.json}, {"-o", a.output, false}}, {a.input});
  if (a.ntoys <= 0)  // also checked by the flag's validator
    throw std::invalid_argument("--ntoys is " + std::to_string(a.ntoys) +
                                ", but must be a positive integer");

  io::RunInfo info;
  info.command_line = command_line;
  engine::Likelihood lik = MakeLikelihood(a.input, a.lflags, DataFlags{}, &info);

  // The per-toy results (values and errors of every parameter, NLL, goodness of fit, status)
  // are held in memory: refuse an ensemble that cannot fit before generating any toy.
  if (!a.no_resource_check)
    CheckResourceEstimate(
        "--ntoys", std::to_string(a.ntoys), 8.0 * a.ntoys * (2.0 * lik.num_params() + 4.0),
        AvailableMemoryBytes(),
        "the per-toy results (" + std::to_string(lik.num_params()) + " parameters)",
        "of available memory (MemAvailable)", "--no-resource-check");

  engine::ToyOptions opt;
  opt.ntoys = a.ntoys;
  opt.seed = a.seed;
  opt.mode = a.observed ? engine::ToyMode::kObserved : engine::ToyMode::kExpected;
  opt.randomize_constraints = !a.no_randomize_constraints;
  opt.normal_data = a.normal_data;
  opt.fit = MakeFitOptions(lik, a.flags);
  opt.fit.compute_covariance = true;  // per-toy errors for the pulls
  opt.num_threads = a.lflags.threads;
  for (const std::string& name : a.pulls) {
    const int i = FindParamOrThrow(lik, name, "--pull");
    if (!opt.fit.frozen.empty() && opt.fit.frozen[i])
      throw std::invalid_argument("--pull: parameter '" + name +
                                  "' is frozen (by --freeze), it has no pull");
    opt.pull_params.push_back(i);
  }
  std::string error;
  if (!opt.IsValid(lik.num_params(), &error)) throw std::invalid_argument(error);
  info.data_label = a.observed ? "toys:observed" : "toys:expected";

  std::cerr << "lepus: " << a.ntoys << " " << engine::ToString(opt.mode) << " toys of " << a.input
            << " (seed " << a.seed << ", " << lik.model().nbins << " bins, " << lik.num_params()
            << " parameters; " << lik.Describe()
            << (opt.randomize_constraints ? ", randomised global observables" : "") << ")\n";
  if (a.observed) {
    // Generate at the best fit to the data: fit here, so that a failure is a fit status.
    const engine::FitResult best = engine::Fit(lik, opt.fit);
    std::cerr << "best fit to the observed data: " << best.BriefReport() << "\n";
    if (!best.ok()) {
      std::cerr << "lepus: the fit to the observed data did not converge ("
                << engine::ToString(best.status)
                << (best.message.empty() ? "" : ": " + best.message)
                << "); no toys generated at it\n";
      return kExitFitFailed;
    }
    opt.generate_at = best.x;
  }

  engine::ToyResults toys;
  // Under mpirun, this rank's share of the toys (rank 0 reports its own share's progress).
  std::tie(opt.toy_begin, opt.toy_end) = mpi::Share(opt.ntoys);
  if (mpi::Size() > 1)
    std::cerr << "lepus: " << mpi::Size() << " MPI ranks; rank 0 fits toys " << opt.toy_begin
              << " to " << opt.toy_end - 1 << "\n";
  {
    Progress progress("toys", "fitted");
    opt.progress = [&progress](int done, int total) { progress.Update(done, total); };
    toys = engine::RunToys(lik, opt);
    progress.Finish();
  }
  opt.progress = nullptr;
  if (mpi::Size() > 1) {
    GatherToys(lik, opt, &toys);
    if (!mpi::Root()) return kExitOk;  // rank 0 reports and writes
  }
  opt.toy_begin = 0;
  opt.toy_end = -1;
  PrintSummary(std::cerr, lik, toys);

  if (!a.json.empty()) WriteText(a.json, io::ToysJson(lik, opt, toys, info) + "\n");
  if (!a.output.empty()) io::WriteToysHdf5(a.output, lik, opt, toys, info);
  if (toys.converged == 0) {
    std::cerr << "lepus: no toy fit converged\n";
    return kExitFitFailed;
  }
  if (toys.converged < a.ntoys) {
    // Failed toys are recorded (status per toy) and left out of the summaries: the ensemble
    // is still a valid result for the converged toys, so say so and exit 0 (a failed reference
    // fit, or no converged toy at all, exit 2). Batch scripts check "converged" in the output.
    std::cerr << "lepus: warning: " << a.ntoys - toys.converged << " of " << a.ntoys
              << " toy fits did not converge (status per toy in the output); the pull and "
                 "goodness-of-fit summaries use the converged toys only\n";
  }
  return kExitOk;
}

}  // namespace

Command AddToysCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<ToysArgs>();
  CLI::App* sub = parent.add_subcommand(
      "toys",
      "Toy ensemble: Poisson-fluctuated data and randomised global observables, each toy "
      "fitted; pull and goodness-of-fit summary on stderr, per-toy results with -o.");
  sub->add_option("input", args->input, "fit input file (HDF5, or a HistFactory JSON workspace)")
      ->required()
      ->type_name("FILE");
  AddWorkspaceFlags(sub, &args->lflags.read);
  sub->add_option("-n,--ntoys", args->ntoys, "number of toys (> 0)")
      ->required()
      ->type_name("N")
      ->transform(IntegerArg(1, std::numeric_limits<int>::max()));
  sub->add_option("--seed", args->seed,
                  "random seed, 0 to 2^64 - 1 (results do not depend on --threads)")
      ->type_name("S")
      ->capture_default_str()
      ->transform(SeedArg());
  sub->add_flag("--no-resource-check", args->no_resource_check,
                "skip the check of the per-toy results' memory (8 x ntoys x (2 x parameters + 4) "
                "bytes) against the available memory");
  CLI::Option* expected =
      sub->add_flag("--expected", args->expected,
                    "generate at the prefit point, or at the --set values (default)");
  CLI::Option* observed =
      sub->add_flag("--observed", args->observed, "generate at the best fit to the observed data");
  expected->excludes(observed);
  sub->add_flag(
      "--normal-data", args->normal_data,
      "Gaussian data fluctuations (chi-square fits: sigma = sqrt(expected); covariance fits: the "
      "data covariance, which they need; rabbit --toysDataRandomize normal) instead of Poisson");
  sub->add_flag("--no-randomize-constraints", args->no_randomize_constraints,
                "keep the global observables (constraint centres, MC counts) fixed");
  sub->add_option("--pull", args->pulls,
                  "summarise the pulls of this parameter (repeatable; default: POIs and NOIs)")
      ->type_name("NAME")
      ->allow_extra_args(false);
  sub->add_option("--json", args->json, "write the JSON summary to FILE ('-' = stdout)")
      ->type_name("FILE");
  sub->add_option("-o,--output", args->output, "write the per-toy HDF5 file here")
      ->type_name("FILE");
  AddFitFlags(sub, &args->flags);
  AddLikelihoodFlags(sub, &args->lflags);
  return {sub, [args, command_line] { return RunToysCommand(*args, command_line); }};
}

}  // namespace lepus::cli
