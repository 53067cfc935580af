// `lepus scan INPUT.h5 --param NAME [--param2 NAME]`: profile-likelihood scans (1D, or 2D on an
// N x N grid) around the best fit, with MINOS-like intervals at the requested confidence levels
// reported next to the Hessian errors. Progress and tables on stderr; the JSON summary (the fit's,
// plus `scans` and `intervals`) to a file or stdout; the HDF5 results file with the scans.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <tbb/info.h>
#include <tbb/task_arena.h>
#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "fit_input.h"
#include "fit_report.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/scan.h"
#include "lepus/io/results.h"
#include "likelihood_setup.h"
#include "mpi.h"

namespace lepus::cli {
namespace {

// One sigma of a Gaussian: the chi-square(1) quantile is exactly 1.
constexpr double kOneSigma = 0.6826894921370859;

// Upper bounds of --points: a 1D scan runs N profile fits, a 2D scan N x N.
constexpr int kMaxPoints1D = 100000;
constexpr int kMaxPoints2D = 1000;

struct ScanArgs {
  std::string input;
  std::string param, param2;
  int points = 21;                    // per parameter: at most kMaxPoints1D (1D), kMaxPoints2D (2D)
  std::vector<double> range, range2;  // LO HI
  double sigma = 3.0;
  std::vector<double> cls = {kOneSigma, 0.95};
  bool minos = false;
  std::string json, output;
  LikelihoodFlags lflags;
  DataFlags dflags;
  FitFlags flags;
};

std::string Fmt(const char* fmt, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Percent(double cl) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g%%", 100.0 * cl);
  return buf;
}

bool IsPositivePoi(const engine::Likelihood& lik, int i) {
  return lik.options().poi_positive && lik.params()[i].kind == engine::ParamKind::kPoi;
}

// Checks a --range (before the fit): two finite numbers, LO < HI, inside the domain.
void CheckRange(const engine::Likelihood& lik, int param, const std::vector<double>& range,
                const std::string& flag) {
  if (range.empty()) return;
  const std::string& name = lik.params()[param].name;
  if (range.size() != 2 || !std::isfinite(range[0]) || !std::isfinite(range[1]))
    throw std::invalid_argument(flag + " needs two finite numbers LO HI");
  if (!(range[0] < range[1]))
    throw std::invalid_argument(flag + " is [" + Fmt("%g", range[0]) + ", " + Fmt("%g", range[1]) +
                                "], but LO must be < HI");
  if (IsPositivePoi(lik, param) && range[0] < 0.0)
    throw std::invalid_argument(flag + ": LO is " + Fmt("%g", range[0]) + ", but the signal " +
                                "strength " + name + " must be >= 0 with --poi-positive");
}

// The scan grid: --range, or best +- K * (Hessian error), clipped at mu = 0 for positive POIs.
std::vector<double> Grid(const engine::Likelihood& lik, const engine::FitResult& best, int param,
                         const std::vector<double>& range, double k, int points,
                         const std::string& flag) {
  if (!range.empty()) return engine::LinearGrid(range[0], range[1], points);
  if (CovarianceUntrusted(best))
    throw engine::NumericalError("cannot set the range of " + lik.params()[param].name +
                                 " from its Hessian error: " + WhyNoCovariance(best) + "; give " +
                                 flag + " LO HI");
  const double v = best.values[param], e = best.errors[param];
  if (!(std::isfinite(e) && e > 0.0))
    throw std::invalid_argument("cannot set the range of " + lik.params()[param].name +
                                " from its Hessian error (" + Fmt("%g", e) + "): give " + flag +
                                " LO HI");
  double lo = v - k * e, hi = v + k * e;
  if (IsPositivePoi(lik, param) && lo < 0.0) {
    std::cerr << "lepus: note: the range of " << lik.params()[param].name
              << " starts at 0 (--poi-positive)\n";
    lo = 0.0;
  }
  return engine::LinearGrid(lo, hi, points);
}

void PrintScan1D(std::ostream& os, const engine::Scan1D& s, const engine::FitResult& best) {
  const std::size_t w = std::max<std::size_t>(s.name.size(), 12);
  os << "\nscan of " << s.name << " (" << s.values.size() << " points; best fit "
     << Fmt("%.6g", best.values[s.param]) << " +- " << Fmt("%.4g", best.errors[s.param]) << "):\n";
  char line[256];
  std::snprintf(line, sizeof(line), "  %*s %14s %14s  %s\n", static_cast<int>(w), s.name.c_str(),
                "dnll", "2*dnll", "status");
  os << line;
  for (std::size_t i = 0; i < s.values.size(); ++i) {
    std::snprintf(line, sizeof(line), "  %*.6g %14s %14s  %s\n", static_cast<int>(w), s.values[i],
                  Fmt("%.6f", s.dnll[i]).c_str(), Fmt("%.6f", 2.0 * s.dnll[i]).c_str(),
                  s.status[i].c_str());
    os << line;
  }
}

void PrintScan2D(std::ostream& os, const engine::Scan2D& s) {
  os << "\n2*dnll over (" << s.name_x << " rows, " << s.name_y << " columns), " << s.values_x.size()
     << " x " << s.values_y.size() << " points:\n";
  const int w = 9;
  char cell[64];
  std::snprintf(cell, sizeof(cell), "%*s", w + 2, "");
  os << cell;
  for (double y : s.values_y) {
    std::snprintf(cell, sizeof(cell), "%*.4g", w, y);
    os << cell;
  }
  os << "\n";
  for (std::size_t i = 0; i < s.values_x.size(); ++i) {
    std::snprintf(cell, sizeof(cell), "  %*.4g", w, s.values_x[i]);
    os << cell;
    for (std::size_t j = 0; j < s.values_y.size(); ++j) {
      const double v = 2.0 * s.dnll(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j));
      std::snprintf(cell, sizeof(cell), "%*s", w, Fmt("%.3f", v).c_str());
      os << cell;
    }
    os << "\n";
  }
}

void PrintIntervals(std::ostream& os, const engine::Likelihood& lik, const engine::FitResult& best,
                    const std::vector<engine::Interval>& intervals) {
  if (intervals.empty()) return;
  os << "\nprofile-likelihood intervals (MINOS-like) next to the Hessian errors:\n";
  char line[320];
  std::snprintf(line, sizeof(line), "  %-16s %8s %12s %26s %24s %12s\n", "parameter", "CL",
                "best fit", "interval", "-/+ errors", "Hessian");
  os << line;
  for (const auto& iv : intervals) {
    const double v = best.values[iv.param], e = best.errors[iv.param];
    const std::string lo = iv.lo_found ? Fmt("%.6g", iv.lo) : "(" + Fmt("%.6g", iv.lo) + ")";
    const std::string hi = iv.hi_found ? Fmt("%.6g", iv.hi) : "(" + Fmt("%.6g", iv.hi) + ")";
    const std::string errs = Fmt("%+.4g", iv.err_lo) + " / " + Fmt("%+.4g", iv.err_hi);
    // The Hessian error scaled to the same confidence level (sqrt(q) sigma).
    const std::string hess = "+-" + Fmt("%.4g", e * std::sqrt(iv.q));
    std::snprintf(line, sizeof(line), "  %-16s %8s %12s %26s %24s %12s\n",
                  lik.params()[iv.param].name.c_str(), Percent(iv.cl).c_str(),
                  Fmt("%.6g", v).c_str(), ("[" + lo + ", " + hi + "]").c_str(), errs.c_str(),
                  hess.c_str());
    os << line;
  }
  // Nuisances of interest with a physical scale, also in physical units.
  for (const auto& iv : intervals) {
    const auto& p = lik.params()[iv.param];
    if (!(p.scale != 0.0)) continue;
    const double v = best.values[iv.param] * p.scale;
    os << "  " << p.name << " " << Percent(iv.cl) << ": " << Fmt("%.4g", v) << " "
       << Fmt("%+.3g", iv.err_lo * std::abs(p.scale)) << " / "
       << Fmt("%+.3g", iv.err_hi * std::abs(p.scale)) << " " << p.unit << " (Hessian +-"
       << Fmt("%.3g", best.errors[iv.param] * std::sqrt(iv.q) * std::abs(p.scale)) << " " << p.unit
       << ")\n";
  }
  bool unbounded = false;
  for (const auto& iv : intervals) unbounded = unbounded || !iv.lo_found || !iv.hi_found;
  if (unbounded)
    os << "  (an end in parentheses was not found: the profile stays below the threshold up to "
          "the domain boundary or the search limit)\n";
  os << "  (Hessian column: the error times sqrt(q), q the chi-square(1) quantile of the CL)\n";
}

int RunScan(const ScanArgs& a, const std::string& command_line) {
  io::CheckOutputs({{"--json", a.json}, {"-o", a.output, false}}, {a.input});
  const bool two_d = !a.param2.empty();
  if (a.points < 1)
    throw std::invalid_argument("--points is " + std::to_string(a.points) + ", but must be >= 1");
  if (two_d && a.points > kMaxPoints2D)
    throw std::invalid_argument("--points is " + std::to_string(a.points) +
                                ", but must be at most " + std::to_string(kMaxPoints2D) +
                                " with --param2 (" + std::to_string(a.points) + " x " +
                                std::to_string(a.points) + " profile fits)");
  if (!(a.sigma > 0.0) || !std::isfinite(a.sigma))
    throw std::invalid_argument("--sigma is " + Fmt("%g", a.sigma) + ", but must be > 0");
  for (double cl : a.cls)
    if (!(cl > 0.0 && cl < 1.0))
      throw std::invalid_argument("--cl is " + Fmt("%g", cl) + ", but must be in (0, 1)");
  if (!two_d && !a.range2.empty()) throw std::invalid_argument("--range2 needs --param2");

  io::RunInfo info;
  info.command_line = command_line;
  engine::Likelihood lik = MakeLikelihood(a.input, a.lflags, a.dflags, &info, &a.flags);
  const engine::FitOptions options = MakeFitOptions(lik, a.flags);

  // Everything about the parameters is checked before the (possibly long) fit.
  const int px = FindParamOrThrow(lik, a.param, "--param");
  const int py = two_d ? FindParamOrThrow(lik, a.param2, "--param2") : -1;
  if (two_d && px == py) throw std::invalid_argument("--param2 is the same parameter as --param");
  for (const auto& [i, flag] : {std::pair<int, const char*>{px, "--param"}, {py, "--param2"}})
    if (i >= 0 && !options.frozen.empty() && options.frozen[i])
      throw std::invalid_argument(std::string(flag) + ": parameter '" + lik.params()[i].name +
                                  "' is frozen (by --freeze), it cannot be scanned");
  CheckRange(lik, px, a.range, "--range");
  if (two_d) CheckRange(lik, py, a.range2, "--range2");

  std::cerr << "lepus: scanning " << a.param << (two_d ? " and " + a.param2 : "") << " in "
            << a.input << " (" << info.data_label << " data, " << lik.model().nbins << " bins, "
            << lik.num_params() << " parameters; " << lik.Describe() << ")\n";
  engine::FitResult best = engine::Fit(lik, options);
  PrintFitReport(std::cerr, lik, best);
  if (!best.ok()) {
    // No scan around a minimum that was not found: write the fit's results with its status.
    // Under mpirun every rank fitted the same; rank 0 writes.
    if (!a.json.empty() && mpi::Root()) WriteText(a.json, io::ResultsJson(lik, best, info) + "\n");
    if (!a.output.empty() && mpi::Root()) io::WriteResultsHdf5(a.output, lik, best, info);
    std::cerr << "lepus: the best fit did not converge (" << engine::ToString(best.status)
              << (best.message.empty() ? "" : ": " + best.message) << "); no scan\n";
    return kExitFitFailed;
  }
  // The profile scan needs no covariance, but a near-singular Hessian makes the result suspect:
  // the scan runs (the flat direction shows in it) and the exit code is 2.
  int code = kExitOk;
  if (CovarianceUntrusted(best)) {
    std::cerr << "lepus: warning: the best fit converged, but " << WhyNoCovariance(best) << "\n";
    code = kExitFitFailed;
  }

  const std::vector<double> gx = Grid(lik, best, px, a.range, a.sigma, a.points, "--range");
  const std::vector<double> gy =
      two_d ? Grid(lik, best, py, a.range2, a.sigma, a.points, "--range2") : std::vector<double>{};

  engine::ScanOptions so;
  so.fit = options;
  so.fit.compute_covariance = false;
  std::vector<engine::Scan1D> scans;
  std::vector<engine::Scan2D> scans2;
  std::vector<engine::Interval> intervals;
  // Scan points run in parallel: keep them within --threads.
  const int threads = a.lflags.threads > 0 ? a.lflags.threads : tbb::info::default_concurrency();
  tbb::task_arena arena(threads);
  {
    Progress progress("scan", "points");
    so.progress = [&progress](int done, int total) { progress.Update(done, total); };
    if (mpi::Size() > 1) {
      // Under mpirun (cli/mpi.h): every rank scans its share of the points (1D) or of the rows
      // of the x grid (2D); the results go to rank 0 in grid order. Each point's profile fit
      // starts from the best fit, so a point's result does not depend on where it runs.
      const auto [b, e] = mpi::Share(static_cast<int>(gx.size()));
      std::cerr << "lepus: " << mpi::Size() << " MPI ranks; rank 0 scans "
                << (two_d ? "rows " : "points ") << b << " to " << e - 1 << " of " << gx.size()
                << "\n";
      const std::vector<double> mine(gx.begin() + b, gx.begin() + e);
      std::string bytes;
      if (!mine.empty()) {
        arena.execute([&] {
          if (two_d) {
            const engine::Scan2D part = engine::ScanProfile2D(lik, best, px, py, mine, gy, so);
            const Eigen::MatrixXd rows = part.dnll;  // [rows x ny], column-major
            mpi::Append(&bytes, rows.data(), static_cast<std::size_t>(rows.size()));
          } else {
            const engine::Scan1D part = engine::ScanProfile(lik, best, px, mine, so);
            mpi::Append(&bytes, part.dnll.data(), part.dnll.size());
            for (const std::string& st : part.status) bytes += st + '\n';
          }
        });
      }
      const std::vector<std::string> all = mpi::GatherToRoot(bytes);
      if (!mpi::Root()) return kExitOk;  // rank 0 reports and writes
      engine::Scan1D s1;
      engine::Scan2D s2;
      if (two_d) {
        s2.param_x = px;
        s2.param_y = py;
        s2.name_x = lik.params()[px].name;
        s2.name_y = lik.params()[py].name;
        s2.values_x = gx;
        s2.values_y = gy;
        s2.dnll.resize(static_cast<Eigen::Index>(gx.size()), static_cast<Eigen::Index>(gy.size()));
      } else {
        s1.param = px;
        s1.name = lik.params()[px].name;
        s1.values = gx;
      }
      for (int r = 0; r < mpi::Size(); ++r) {
        const auto [rb, re] = mpi::ShareOf(static_cast<int>(gx.size()), r, mpi::Size());
        const std::size_t n = static_cast<std::size_t>(re - rb) * (two_d ? gy.size() : 1);
        if (all[r].size() < n * sizeof(double))
          throw std::runtime_error("scan: rank " + std::to_string(r) + " sent too few results");
        const std::vector<double> d = mpi::ToDoubles(all[r].substr(0, n * sizeof(double)));
        if (two_d) {
          for (int i = rb; i < re; ++i)
            for (std::size_t j = 0; j < gy.size(); ++j)
              s2.dnll(i, static_cast<Eigen::Index>(j)) = d[(i - rb) + (re - rb) * j];
        } else {
          s1.dnll.insert(s1.dnll.end(), d.begin(), d.end());
          std::string rest = all[r].substr(n * sizeof(double));
          for (std::size_t pos = 0, nl; (nl = rest.find('\n', pos)) != std::string::npos;
               pos = nl + 1)
            s1.status.push_back(rest.substr(pos, nl - pos));
        }
      }
      if (two_d)
        scans2.push_back(std::move(s2));
      else
        scans.push_back(std::move(s1));
    } else {
      arena.execute([&] {
        if (two_d)
          scans2.push_back(engine::ScanProfile2D(lik, best, px, py, gx, gy, so));
        else
          scans.push_back(engine::ScanProfile(lik, best, px, gx, so));
      });
    }
    progress.Finish();
  }
  so.progress = nullptr;

  // Intervals: always for a 1D scan, for both parameters of a 2D scan with --minos.
  std::vector<int> interval_params;
  if (!two_d)
    interval_params = {px};
  else if (a.minos)
    interval_params = {px, py};
  const int nint = static_cast<int>(interval_params.size() * a.cls.size());
  if (nint > 0) {
    Progress progress("intervals", "intervals");
    int done = 0;
    for (int p : interval_params)
      for (double cl : a.cls) {
        arena.execute([&] { intervals.push_back(engine::ProfileInterval(lik, best, p, cl, so)); });
        progress.Update(++done, nint);
      }
    progress.Finish();
  }

  int failed = 0;
  if (two_d) {
    PrintScan2D(std::cerr, scans2[0]);
    failed = static_cast<int>((!scans2[0].dnll.array().isFinite()).count());
  } else {
    PrintScan1D(std::cerr, scans[0], best);
    for (double d : scans[0].dnll) failed += std::isfinite(d) ? 0 : 1;
  }
  PrintIntervals(std::cerr, lik, best, intervals);
  if (failed > 0) {
    std::cerr << "lepus: warning: the profile fit failed at " << failed
              << " scan point(s) (dnll = null in the JSON)\n";
    code = kExitFitFailed;
  }
  for (const auto& iv : intervals)
    if (iv.failed_fits > 0) {
      std::cerr << "lepus: warning: the interval of " << lik.params()[iv.param].name << " at CL "
                << Fmt("%g", iv.cl) << ": " << iv.failed_fits
                << " profile fit(s) did not converge (treated as beyond the crossing; "
                   "failed_fits in the JSON): the interval ends are not trusted\n";
      code = kExitFitFailed;
    }

  io::ResultExtras extras;
  if (!scans.empty()) extras.scans = &scans;
  if (!scans2.empty()) extras.scans_2d = &scans2;
  if (!intervals.empty()) extras.intervals = &intervals;
  if (!a.json.empty()) WriteText(a.json, io::ResultsJson(lik, best, info, extras) + "\n");
  if (!a.output.empty()) io::WriteResultsHdf5(a.output, lik, best, info, extras);
  return code;
}

}  // namespace

Command AddScanCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<ScanArgs>();
  CLI::App* sub = parent.add_subcommand(
      "scan",
      "Profile-likelihood scan of one parameter (or two: N x N grid) around the best fit, with "
      "MINOS-like intervals next to the Hessian errors. Tables and progress on stderr; --json "
      "and -o write the results.");
  sub->add_option("input", args->input, "fit input file (HDF5, or a HistFactory JSON workspace)")
      ->required()
      ->type_name("FILE");
  AddWorkspaceFlags(sub, &args->lflags.read);
  sub->add_option("--param", args->param, "parameter to scan (mu for signal strengths)")
      ->required()
      ->type_name("NAME");
  sub->add_option("--param2", args->param2, "second parameter: 2D scan on an N x N grid")
      ->type_name("NAME");
  sub->add_option("--points", args->points,
                  "points per parameter (at most 100000; 2D: at most 1000, N x N profile fits)")
      ->type_name("N")
      ->capture_default_str()
      ->transform(IntegerArg(1, kMaxPoints1D));
  CLI::Option* range =
      sub->add_option("--range", args->range, "scan range of --param (reported units)")
          ->type_name("LO HI")
          ->expected(2)
          ->check(NumberArg());
  sub->add_option("--range2", args->range2, "scan range of --param2")
      ->type_name("LO HI")
      ->expected(2)
      ->check(NumberArg());
  CLI::Option* sigma =
      sub->add_option("--sigma", args->sigma, "without --range: best fit +- K Hessian errors")
          ->type_name("K")
          ->capture_default_str()
          ->check(PositiveArg());
  range->excludes(sigma);
  sub->add_option("--cl", args->cls, "confidence levels of the intervals (default 0.6827 0.95)")
      ->type_name("CL ...")
      ->expected(1, 16)
      ->check(NumberArg(0.0, 1.0, true, true));
  sub->add_flag("--minos", args->minos,
                "2D scans: also the intervals of both parameters (1D scans always have them)");
  sub->add_option("--json", args->json, "write the JSON summary to FILE ('-' = stdout)")
      ->type_name("FILE");
  sub->add_option("-o,--output", args->output, "write the HDF5 results file here")
      ->type_name("FILE");
  AddDataFlags(sub, &args->dflags);
  AddFitFlags(sub, &args->flags);
  AddLikelihoodFlags(sub, &args->lflags);
  return {sub, [args, command_line] { return RunScan(*args, command_line); }};
}

}  // namespace lepus::cli
