// `lepus hypotest INPUT --poi-value MU`: a CLs hypothesis test of one value of the parameter of
// interest (asymptotic formulas or toys), and `lepus limit INPUT`: observed and expected upper
// limits by root finding on CLs(mu) = 1 - CL, with an optional CLs scan (engine/hypotest.h,
// docs/hypotest.md). Both read the input and build the likelihood like `scan` and `toys`
// (MakeLikelihood, so every input format and likelihood flag applies); tables and progress on
// stderr, the JSON summary with --json (atomically, '-' = stdout).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "fit_input.h"
#include "lepus/engine/hypotest.h"
#include "lepus/engine/scan.h"
#include "lepus/io/hypotest_json.h"
#include "likelihood_setup.h"
#include "toolkit_flags.h"

namespace lepus::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Flags shared by `hypotest` and `limit`.
struct HypoArgs {
  std::string input;
  std::string poi;
  std::string test_stat = "qtilde";
  std::string calc = "asymptotics";
  int ntoys = 1000;
  std::uint64_t seed = 1;
  std::string json;
  LikelihoodFlags lflags;
  DataFlags dflags;
  FitFlags flags;
  // hypotest
  double poi_value = kNaN;
  // limit
  double cl = 0.95;
  std::string scan;
};

std::string Fmt(const char* fmt, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

void AddSharedFlags(CLI::App* sub, HypoArgs* a, bool limit) {
  sub->add_option("input", a->input, "fit input file (HDF5, or a HistFactory JSON workspace)")
      ->required()
      ->type_name("FILE");
  sub->add_option(
         "--poi", a->poi,
         "parameter of interest (default: the first signal strength, else the first nuisance of "
         "interest)")
      ->type_name("NAME");
  if (limit)
    sub->add_option("--test-stat", a->test_stat,
                    "test statistic: qtilde (mu-hat >= 0, pyhf's default) or q")
        ->type_name("STAT")
        ->capture_default_str()
        ->check(CLI::IsMember({"q", "qtilde"}));
  else
    sub->add_option(
           "--test-stat", a->test_stat,
           "test statistic: qtilde (pyhf's default), q, q0 (discovery, tests 0), tmu, tmu_tilde "
           "(two-sided: the p-value only)")
        ->type_name("STAT")
        ->capture_default_str()
        ->check(CLI::IsMember(engine::Names(engine::kTestStatisticNames)));
  sub->add_option("--calc", a->calc,
                  "calculator: asymptotics (Asimov data set, formulas of Cowan et al.) or toys")
      ->type_name("CALC")
      ->capture_default_str()
      ->check(CLI::IsMember(engine::Names(engine::kHypoCalculatorNames)));
  sub->add_option("-n,--ntoys", a->ntoys, "--calc toys: toys per hypothesis (> 0)")
      ->type_name("N")
      ->capture_default_str()
      ->transform(IntegerArg(1, std::numeric_limits<int>::max()));
  sub->add_option("--seed", a->seed,
                  "--calc toys: random seed (results do not depend on --threads)")
      ->type_name("S")
      ->capture_default_str()
      ->transform(SeedArg());
  sub->add_option("--json", a->json, "write the JSON summary to FILE ('-' = stdout)")
      ->type_name("FILE");
  AddDataFlags(sub, &a->dflags);
  AddFitFlags(sub, &a->flags);
  AddLikelihoodFlags(sub, &a->lflags);
  AddWorkspaceFlags(sub, &a->lflags.read);
}

// The likelihood and the test options of the flags. Throws std::invalid_argument for bad flags.
engine::Likelihood Prepare(const HypoArgs& a, const std::string& command_line, io::RunInfo* info,
                           engine::HypoTestOptions* opt) {
  io::CheckOutputs({{"--json", a.json}}, {a.input});
  info->command_line = command_line;
  engine::Likelihood lik = MakeLikelihood(a.input, a.lflags, a.dflags, info, &a.flags);
  opt->test_stat = engine::TestStatisticFromString(a.test_stat);
  opt->calculator = engine::HypoCalculatorFromString(a.calc);
  opt->fit = MakeFitOptions(lik, a.flags);
  opt->ntoys = a.ntoys;
  opt->seed = a.seed;
  opt->num_threads = a.lflags.threads;
  if (!a.poi.empty()) {
    opt->poi = FindParamOrThrow(lik, a.poi, "--poi");
  } else {
    opt->poi = engine::DefaultPoi(lik);
    if (opt->poi < 0)
      throw std::invalid_argument(
          "--poi: " + a.input +
          " has no signal process and no nuisance of interest; name the parameter of "
          "interest with --poi");
  }
  std::string error;
  if (!opt->IsValid(lik, &error)) throw std::invalid_argument(error);
  return lik;
}

nlohmann::json Header(const std::string& kind, const engine::Likelihood& lik,
                      const io::RunInfo& info, const engine::HypoTestOptions& opt) {
  nlohmann::json j;
  j["kind"] = kind;
  j["lepus_version"] = Version();
  j["command_line"] = info.command_line;
  j["input"] = info.input_path;
  j["data"] = info.data_label;
  j["likelihood"] = lik.Describe();
  j["poi"] = lik.params()[opt.poi].name;
  j["test_stat"] = engine::ToString(opt.test_stat);
  j["calculator"] = engine::ToString(opt.calculator);
  if (opt.calculator == engine::HypoCalculator::kToys) {
    j["ntoys"] = opt.ntoys;
    j["seed"] = opt.seed;
  }
  j["expected_sigmas"] = engine::kExpectedBandSigmas;
  return j;
}

void PrintResult(std::ostream& os, const engine::HypoTestResult& r) {
  const bool two_sided =
      r.test_stat == engine::TestStatistic::kTMu || r.test_stat == engine::TestStatistic::kTMuTilde;
  os << "\nhypothesis test of " << r.poi_name << " = " << Fmt("%.6g", r.poi_value) << " ("
     << engine::ToString(r.test_stat) << ", " << engine::ToString(r.calculator) << ")\n";
  if (!r.ok()) {
    os << "  failed: " << r.message << "\n";
    return;
  }
  os << "  " << r.poi_name << "-hat            " << Fmt("%.6g", r.mu_hat) << "\n";
  os << "  test statistic     " << Fmt("%.6g", r.q_obs) << " (observed)";
  if (std::isfinite(r.q_asimov)) os << ", " << Fmt("%.6g", r.q_asimov) << " (Asimov)";
  os << "\n";
  if (two_sided) {
    os << "  p-value            " << Fmt("%.6g", r.p_value) << "\n";
  } else {
    os << "  CLs                " << Fmt("%.6g", r.cls_obs) << "\n"
       << "  CLs+b              " << Fmt("%.6g", r.clsb_obs) << "\n"
       << "  CLb                " << Fmt("%.6g", r.clb_obs) << "\n";
    if (r.test_stat == engine::TestStatistic::kQ0)
      os << "  p0                 " << Fmt("%.6g", r.p_value)
         << " (Z = " << Fmt("%.3f", r.significance) << ")\n";
    os << "  expected CLs       ";
    for (int k = 0; k < 5; ++k)
      os << Fmt("%+.0f", engine::kExpectedBandSigmas[k]) << " sigma: " << Fmt("%.4g", r.cls_exp[k])
         << (k < 4 ? ", " : "\n");
  }
  if (r.calculator == engine::HypoCalculator::kToys)
    os << "  toys               " << r.q_sb.size() << " signal+background, " << r.q_b.size()
       << " background-only (" << r.failed_sb + r.failed_b << " failed)\n";
  if (!r.message.empty()) os << "  note: " << r.message << "\n";
}

int RunHypotest(const HypoArgs& a, const std::string& command_line) {
  io::RunInfo info;
  engine::HypoTestOptions opt;
  engine::Likelihood lik = Prepare(a, command_line, &info, &opt);
  double mu = a.poi_value;
  if (opt.test_stat == engine::TestStatistic::kQ0) {
    if (std::isfinite(mu) && mu != 0.0)
      throw std::invalid_argument(
          "--poi-value is " + Fmt("%.6g", mu) +
          ", but q0 tests the background-only hypothesis (0): leave it out or give 0");
    mu = 0.0;
  } else if (!std::isfinite(mu)) {
    throw std::invalid_argument(
        "--poi-value is required (the value of the parameter of interest to test)");
  }
  std::cerr << "lepus: hypothesis test of " << lik.params()[opt.poi].name << " = "
            << Fmt("%.6g", mu) << " on " << a.input << " (" << engine::ToString(opt.test_stat)
            << ", " << engine::ToString(opt.calculator);
  if (opt.calculator == engine::HypoCalculator::kToys)
    std::cerr << ", " << opt.ntoys << " toys per hypothesis, seed " << opt.seed;
  std::cerr << "; " << lik.Describe() << ")\n";
  engine::HypoTestResult r;
  {
    Progress progress("hypotest toys", "fitted");
    if (opt.calculator == engine::HypoCalculator::kToys)
      opt.progress = [&progress](int done, int total) { progress.Update(done, total); };
    r = engine::HypoTest(lik, mu, opt);
    if (opt.calculator == engine::HypoCalculator::kToys) progress.Finish();
  }
  PrintResult(std::cerr, r);
  if (!a.json.empty()) {
    nlohmann::json j = Header("hypotest", lik, info, opt);
    j.update(io::HypoTestJson(r));
    WriteText(a.json, j.dump(2) + "\n");
  }
  if (!r.ok()) {
    std::cerr << "lepus: the hypothesis test failed: " << r.message << "\n";
    return kExitFitFailed;
  }
  return kExitOk;
}

// "LO:HI:N" -> N values from LO to HI.
std::vector<double> ParseScan(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ':')) parts.push_back(item);
  if (parts.size() != 3)
    throw std::invalid_argument("--scan is '" + text + "', but must be LO:HI:N (e.g. 0:5:21)");
  const double lo = ParseNumber(parts[0], "--scan LO"), hi = ParseNumber(parts[1], "--scan HI");
  const double n = ParseNumber(parts[2], "--scan N");
  if (n != std::floor(n) || n < 1 || n > 10000)
    throw std::invalid_argument("--scan N is '" + parts[2] +
                                "', but must be an integer in [1, 10000]");
  if (n > 1 && !(hi > lo))
    throw std::invalid_argument("--scan is '" + text + "', but HI must be above LO");
  return engine::LinearGrid(lo, hi, static_cast<int>(n));
}

int RunLimit(const HypoArgs& a, const std::string& command_line) {
  const std::vector<double> grid = a.scan.empty() ? std::vector<double>() : ParseScan(a.scan);
  io::RunInfo info;
  engine::UpperLimitOptions lo;
  lo.cl = a.cl;
  engine::Likelihood lik = Prepare(a, command_line, &info, &lo.hypotest);
  const engine::HypoTestOptions& opt = lo.hypotest;
  const std::string name = lik.params()[opt.poi].name;
  std::cerr << "lepus: " << Fmt("%.4g", 100 * a.cl) << "% CL upper limits on " << name << " from "
            << a.input << " (" << engine::ToString(opt.test_stat) << ", "
            << engine::ToString(opt.calculator);
  if (opt.calculator == engine::HypoCalculator::kToys)
    std::cerr << ", " << opt.ntoys << " toys per hypothesis and value, seed " << opt.seed;
  std::cerr << "; " << lik.Describe() << ")\n";

  std::vector<engine::HypoTestResult> scan;
  if (!grid.empty()) {
    scan = engine::HypoTestScan(lik, grid, opt);
    std::cerr << "\nCLs scan of " << name << "\n";
    char line[256];
    std::snprintf(line, sizeof(line), "  %12s %10s %10s %10s | %9s %9s %9s %9s %9s\n", name.c_str(),
                  "CLs", "CLs+b", "CLb", "exp -2s", "-1s", "median", "+1s", "+2s");
    std::cerr << line;
    for (const auto& r : scan) {
      std::snprintf(line, sizeof(line), "  %12s %10s %10s %10s | %9s %9s %9s %9s %9s%s\n",
                    Fmt("%.6g", r.poi_value).c_str(), Fmt("%.4g", r.cls_obs).c_str(),
                    Fmt("%.4g", r.clsb_obs).c_str(), Fmt("%.4g", r.clb_obs).c_str(),
                    Fmt("%.4g", r.cls_exp[0]).c_str(), Fmt("%.4g", r.cls_exp[1]).c_str(),
                    Fmt("%.4g", r.cls_exp[2]).c_str(), Fmt("%.4g", r.cls_exp[3]).c_str(),
                    Fmt("%.4g", r.cls_exp[4]).c_str(), r.ok() ? "" : "  failed");
      std::cerr << line;
    }
  }
  const engine::UpperLimitResult lim = engine::UpperLimit(lik, lo);
  std::cerr << "\n" << Fmt("%.4g", 100 * a.cl) << "% CL upper limit on " << name << "\n";
  if (lim.ok()) {
    std::cerr << "  observed           " << Fmt("%.6g", lim.observed) << "\n";
    std::cerr << "  expected           ";
    for (int k = 0; k < 5; ++k)
      std::cerr << Fmt("%+.0f", engine::kExpectedBandSigmas[k])
                << " sigma: " << Fmt("%.6g", lim.expected[k]) << (k < 4 ? ", " : "\n");
    std::cerr << "  " << name << "-hat            " << Fmt("%.6g", lim.mu_hat) << " ("
              << lim.evaluations << " CLs evaluations)\n";
  } else {
    std::cerr << "  failed: " << lim.message << "\n";
  }
  if (!a.json.empty()) {
    nlohmann::json j = Header("limit", lik, info, opt);
    j.update(io::UpperLimitJson(lim));
    if (!grid.empty()) {
      nlohmann::json s = nlohmann::json::array();
      for (const auto& r : scan) s.push_back(io::HypoTestJson(r));
      j["scan"] = s;
    }
    WriteText(a.json, j.dump(2) + "\n");
  }
  bool scan_ok = true;
  for (const auto& r : scan) scan_ok = scan_ok && r.ok();
  if (!lim.ok()) {
    std::cerr << "lepus: the upper limit failed: " << lim.message << "\n";
    return kExitFitFailed;
  }
  if (!scan_ok) {
    std::cerr << "lepus: some scan points failed (status per point in the output)\n";
    return kExitFitFailed;
  }
  return kExitOk;
}

}  // namespace

Command AddHypotestCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<HypoArgs>();
  CLI::App* sub = parent.add_subcommand(
      "hypotest",
      "CLs hypothesis test of one value of the parameter of interest (pyhf's test statistics; "
      "asymptotic "
      "formulas or toys). Table and progress on stderr; --json writes the summary.");
  AddSharedFlags(sub, args.get(), false);
  sub->add_option("--poi-value", args->poi_value,
                  "the tested value of the parameter of interest (q0: 0)")
      ->type_name("MU")
      ->check(NumberArg());
  return {sub, [args, command_line] { return RunHypotest(*args, command_line); }};
}

Command AddLimitCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<HypoArgs>();
  CLI::App* sub = parent.add_subcommand(
      "limit",
      "Observed and expected (+-1, +-2 sigma) CLs upper limits on the parameter of interest by "
      "root finding; "
      "--scan prints CLs along a grid. Tables on stderr; --json writes the summary.");
  AddSharedFlags(sub, args.get(), true);
  sub->add_option("--cl", args->cl, "confidence level of the limits, in (0, 1)")
      ->type_name("CL")
      ->capture_default_str()
      ->check(NumberArg(0.0, 1.0, true, true));
  sub->add_option("--scan", args->scan,
                  "also CLs (observed and expected band) at N values from LO to HI")
      ->type_name("LO:HI:N");
  return {sub, [args, command_line] { return RunLimit(*args, command_line); }};
}

}  // namespace lepus::cli
