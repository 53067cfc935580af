// `lepus demo`: the README's main job end to end. Generates "data" (with a W mass offset hidden
// until the end, a biased momentum scale, different efficiencies and a larger non-prompt yield)
// and simulation, produces the light W-mass fit input (models/wmass.h), fits it, and prints m_W
// with its uncertainty and the impact table grouped like the CMS W-mass analysis's (nominal and global impacts).
// `--analytic` keeps the earlier analytic demo input (models/demo.h), used by the CLI tests of
// `lepus fit`, `scan` and `toys`.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "fit_input.h"
#include "fit_report.h"
#include "html_report.h"
#include "impact_tables.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/yields.h"
#include "lepus/io/errors.h"
#include "lepus/io/results.h"
#include "lepus/io/writer.h"
#include "lepus/models/demo.h"
#include "lepus/models/generator.h"
#include "lepus/models/wmass.h"
#include "likelihood_setup.h"
#include "progress.h"

namespace lepus::cli {
namespace {

struct DemoArgs {
  std::string outdir = "lepus-demo";
  std::uint64_t seed = 1;
  int threads = 0;
  std::uint64_t events = 8000000;
  double luminosity = 200.0;
  bool analytic = false;
};

std::string PrepareOutdir(const std::string& outdir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(outdir, ec);
  if (ec || !fs::is_directory(outdir))
    throw io::InputError(outdir + ": cannot create the output directory" +
                         (ec ? " (" + ec.message() + ")" : std::string()));
  return outdir;
}

// What the demo's results file holds for its report beyond the fit (docs/report.md): pre- and
// post-fit yields with the projections of the fit channel onto each axis and charge, and the
// per-channel goodness of fit. Needs a converged fit with an accurate covariance (else nothing
// is added: the report then shows the summary and pulls).
struct ReportYields {
  engine::YieldSet prefit, postfit;
  std::vector<engine::ChannelProjection> prefit_projections, postfit_projections;
  std::vector<engine::ChannelGof> gof;
  bool computed = false;
};
void AddReportYields(const engine::Likelihood& lik, const engine::FitResult& result,
                     ReportYields* y, io::ResultExtras* extras) {
  if (!result.ok() || result.covariance_status != engine::CovarianceStatus::kAccurate) return;
  try {
    y->prefit = engine::PrefitYields(lik);
    y->postfit = engine::PostfitYields(lik, result);
  } catch (const engine::NumericalError& e) {
    std::cerr << "lepus: warning: pre-/post-fit yields not computed: " << e.what() << "\n";
    return;
  }
  y->gof = engine::ChannelGoodnessOfFit(lik, result);
  for (const auto& [channel, axes] : ReportProjections(lik.model())) {
    y->prefit_projections.push_back(engine::Project(lik, y->prefit, channel, axes));
    y->postfit_projections.push_back(engine::Project(lik, y->postfit, channel, axes));
  }
  y->computed = true;
  extras->prefit = &y->prefit;
  extras->postfit = &y->postfit;
  extras->channel_gof = &y->gof;
  extras->prefit_projections = &y->prefit_projections;
  extras->postfit_projections = &y->postfit_projections;
}

// The analytic W-mass-like input of earlier versions (models/demo.h): DIR/demo.h5 and its fit.
int RunAnalyticDemo(const DemoArgs& a, const std::string& command_line) {
  namespace fs = std::filesystem;
  PrepareOutdir(a.outdir);
  const std::string input = (fs::path(a.outdir) / "demo.h5").string();
  const std::string json_path = (fs::path(a.outdir) / "fit_results.json").string();
  const std::string hdf5_path = (fs::path(a.outdir) / "fit_results.h5").string();
  const std::string report_path = (fs::path(a.outdir) / "report.html").string();

  models::DemoSpec spec;
  spec.seed = a.seed;
  std::cout << "W-mass analytic demo: muon (eta, pT, charge) distribution of W -> mu nu with "
               "Z -> mu mu, nonprompt and top backgrounds;\n"
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
  int code = FitAndWrite(likelihood, engine::FitOptions{}, info, "", "", std::cout, &result);
  // The results also hold the impacts and yields the report draws (DIR/report.html).
  io::ResultExtras extras;
  std::optional<engine::Impacts> impacts;
  if (result.ok() && result.covariance_status == engine::CovarianceStatus::kAccurate) {
    engine::ImpactOptions iopt;
    iopt.global = true;
    try {
      impacts = engine::ComputeImpacts(likelihood, result, iopt);
      extras.impacts = &*impacts;
    } catch (const engine::NumericalError& e) {
      std::cerr << "lepus: warning: impacts not computed: " << e.what() << "\n";
      code = kExitFitFailed;
    }
  }
  ReportYields yields;
  AddReportYields(likelihood, result, &yields, &extras);
  WriteText(json_path, io::ResultsJson(likelihood, result, info, extras) + "\n");
  io::WriteResultsHdf5(hdf5_path, likelihood, result, info, extras);
  WriteHtmlReport(hdf5_path, "", {}, report_path, 30, "", "", std::cerr);

  const int i = likelihood.FindParam(models::kDemoMassNoi);
  if (i >= 0 && result.values.size() == likelihood.num_params()) {
    const double shift = result.values[i] * models::kDemoMassScaleMeV;
    // No confident error from an untrusted covariance ("-" in the line below).
    const double err = CovarianceUntrusted(result) ? NAN : result.errors[i];
    const double error = err * models::kDemoMassScaleMeV;
    char pull[32];
    std::snprintf(pull, sizeof(pull), "%+.2f",
                  error > 0.0 ? (shift - spec.true_mass_shift_mev) / error : NAN);
    std::cout << "\nW-mass demo result: m_W shift = "
              << FormatPhysical(result.values[i], err, models::kDemoMassScaleMeV, "MeV")
              << " (true " << spec.true_mass_shift_mev << " MeV, pull " << pull << ")\n";
  }
  std::cout << "results: " << json_path << ", " << hdf5_path << ", " << report_path << "\n";
  return code;
}

// The hidden offset of the data's W mass for a seed: an integer number of MeV in [-50, 50],
// from a SplitMix64 hash of the seed (the same on every platform).
double HiddenOffsetMeV(std::uint64_t seed) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(static_cast<int>(z % 101) - 50);
}

// The seed's impact table rows and the producer's groups behind them.
const std::vector<ImpactRow>& SeedImpactRows() {
  static const std::vector<ImpactRow> rows = {
      {"Muon momentum scale", {"muonScale"}},
      {"Muon reco. efficiency", {"muonEfficiency"}},
      {"W and Z angular coeffs.", {"angularCoeffs"}},
      {"Higher-order EW", {"EW"}},
      {"pT(V) modeling", {"pTModeling"}},
      {"PDF", {"pdf"}},
      {"Nonprompt background", {"nonprompt"}},
      {"Integrated luminosity", {"luminosity"}},
      {"MC sample size", {"binByBinStat"}},
      {"Data sample size", {"stat"}},
  };
  return rows;
}

int RunDemo(const DemoArgs& a, const std::string& command_line) {
  namespace fs = std::filesystem;
  PrepareOutdir(a.outdir);
  const std::string input = (fs::path(a.outdir) / "wmass.h5").string();
  const std::string json_path = (fs::path(a.outdir) / "fit_results.json").string();
  const std::string hdf5_path = (fs::path(a.outdir) / "fit_results.h5").string();
  const std::string report_path = (fs::path(a.outdir) / "report.html").string();
  io::CheckOutputs({{"--outdir", input},
                    {"--outdir", json_path},
                    {"--outdir", hdf5_path},
                    {"--outdir", report_path}});
  const auto t_start = std::chrono::steady_clock::now();

  models::WMassConfig config = models::WMassConfig::Light();
  config.simulation.events = a.events;
  config.simulation.seed = 2 * a.seed + 1;
  config.data.seed = 2 * a.seed + 2;
  config.luminosity_pb = a.luminosity;
  const double hidden = HiddenOffsetMeV(a.seed);
  config.data_mw_shift_mev = hidden;
  const double mw_sim_mev = models::GeneratorParams::Simulation().w_mass * 1e3;

  std::cout << "W-mass demo (seed " << a.seed << "): generate -> produce -> fit -> impacts\n"
            << "  data: " << a.luminosity
            << " pb^-1 generated with the data truth: a hidden W-mass "
            << "offset, a biased momentum scale\n"
            << "        (corrected by the built-in calibration), lower efficiencies, x1.15 "
               "non-prompt yield\n"
            << "  simulation: " << HumanCount(static_cast<double>(a.events))
            << " events (m_W = " << mw_sim_mev << " MeV), light systematics configuration\n"
            << std::flush;

  // 1. Events -> histograms -> fit input.
  EventProgressBar bar("produce");
  models::ProduceOptions options;
  options.num_threads = a.threads;
  options.progress = [&bar](const models::ProduceProgress& p) {
    bar.Update(p.events_done, p.events_total, p.seconds);
  };
  models::WMassProduction prod = models::ProduceWMass(config, options);
  bar.Finish();
  io::WriteFitInput(prod.model, input, prod.write_options);
  std::cout << "\n"
            << prod.summary.Report() << "wrote " << input << " ("
            << HumanCount(static_cast<double>(fs::file_size(input))) << "B)\n\n"
            << std::flush;

  // 2. Fit the data.
  engine::LikelihoodOptions lopt;
  lopt.num_threads = a.threads;
  engine::Likelihood likelihood(ReadInput(input), lopt);
  io::RunInfo info;
  info.input_path = input;
  info.command_line = command_line;
  info.num_threads = a.threads;
  const engine::FitResult result = engine::Fit(likelihood, engine::FitOptions{});
  PrintFitReport(std::cout, likelihood, result, 12);

  // 3. Impacts (nominal and global) and the results files.
  int code = result.ok() ? kExitOk : kExitFitFailed;
  std::unique_ptr<engine::Impacts> impacts;
  if (result.ok() && result.covariance_status == engine::CovarianceStatus::kAccurate) {
    engine::ImpactOptions iopt;
    iopt.global = true;
    try {
      impacts = std::make_unique<engine::Impacts>(engine::ComputeImpacts(likelihood, result, iopt));
    } catch (const engine::NumericalError& e) {
      std::cerr << "lepus: warning: impacts not computed: " << e.what() << "\n";
      code = kExitFitFailed;
    }
  } else {
    std::cerr << "lepus: impacts not computed: " << WhyNoCovariance(result) << "\n";
    code = kExitFitFailed;
  }
  io::ResultExtras extras;
  extras.impacts = impacts.get();
  ReportYields yields;
  AddReportYields(likelihood, result, &yields, &extras);
  WriteText(json_path, io::ResultsJson(likelihood, result, info, extras) + "\n");
  io::WriteResultsHdf5(hdf5_path, likelihood, result, info, extras);
  WriteHtmlReport(hdf5_path, "", {}, report_path, 30, "", "", std::cerr);

  const int i = likelihood.FindParam(models::kWMassNoi);
  if (i >= 0 && result.values.size() == likelihood.num_params()) {
    const double shift = result.values[i] * 100.0;
    const double error = (CovarianceUntrusted(result) ? NAN : result.errors[i]) * 100.0;
    char line[256];
    std::cout << "\n";
    std::snprintf(line, sizeof(line), "m_W = %.1f +- %.1f MeV   (simulation %.1f MeV %+.1f MeV)\n",
                  mw_sim_mev + shift, error, mw_sim_mev, shift);
    std::cout << line;
    if (impacts) {
      int t = -1;
      for (std::size_t k = 0; k < impacts->targets.size(); ++k)
        if (impacts->targets[k] == i) t = static_cast<int>(k);
      if (t >= 0) {
        std::cout << "\n";
        PrintSeedImpactTable(std::cout, *impacts, t, SeedImpactRows());
      }
    }
    std::snprintf(line, sizeof(line),
                  "\nunblinded: the data were generated with m_W = %.1f MeV (offset %+.0f MeV); "
                  "the fit is off by %+.1f MeV = %+.2f sigma\n",
                  mw_sim_mev + hidden, hidden, shift - hidden,
                  error > 0 ? (shift - hidden) / error : NAN);
    std::cout << line;
  }
  const double t_total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::cout << "results: " << json_path << ", " << hdf5_path << ", " << report_path << " (total "
            << FormatSeconds(t_total) << ")\n";
  return code;
}

}  // namespace

Command AddDemoCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* sub = parent.add_subcommand(
      "demo",
      "W-mass demo: generate data (hidden m_W offset) and simulation, produce the light fit "
      "input, fit it, print m_W and the impact table");
  sub->add_option("--outdir", args->outdir, "directory for the fit input and the results")
      ->type_name("DIR")
      ->capture_default_str();
  sub->add_option("--seed", args->seed,
                  "seed S of the generated data and simulation (and of the hidden offset), 0 to "
                  "2^63 - 1 (the samples use the seeds 2 S + 1 and 2 S + 2)")
      ->type_name("N")
      ->capture_default_str()
      ->transform(SeedArg(std::numeric_limits<std::int64_t>::max()));
  sub->add_option("--threads", args->threads, "worker threads (0 = all cores)")
      ->type_name("N")
      ->transform(IntegerArg(0, 4096));
  sub->add_option("--events", args->events, "simulated events to generate")
      ->type_name("N")
      ->transform(IntegerArg(1000, std::uint64_t{1} << 40))
      ->capture_default_str();
  sub->add_option("--luminosity", args->luminosity, "integrated luminosity of the data (pb^-1)")
      ->type_name("PB")
      ->check(NumberArg(1.0, 1e6))
      ->capture_default_str();
  sub->add_flag("--analytic", args->analytic,
                "write and fit the analytic demo input of earlier versions (DIR/demo.h5)");
  return {sub, [args, command_line] {
            return args->analytic ? RunAnalyticDemo(*args, command_line)
                                  : RunDemo(*args, command_line);
          }};
}

}  // namespace lepus::cli
