// The engine benchmark suites behind `lepus bench` (lepus::bench, benchmarks/suite), held
// against the machine's limits
// measured in the same run (docs/performance.md, section "Engine").
//
// Suites:
//   cms   models::MakeCmsLikeModel, 48 x 30 x 2 bins, 10 processes, ~4900 nuisances (sparse);
//   grid  models::MakeSyntheticModel, 1 channel, 5 processes, every systematic on every
//         (bin, process): nbins in {10, ..., 100000} x nsyst in {1, 2, 4, ..., 8192}.
//   large models::MakeCalibrationScaleModel (muon-calibration sparsity: regions of 32 bins with
//         45 local nuisances each, a few global ones): 450 regions (14,400 bins, 20,260
//         parameters) and 2400 regions (76,800 bins, 108,010 parameters; the CMS muon calibration
//         fit has 76,800 bins and 108,334 parameters). Per point and thread count: generation,
//         HDF5 round trip, likelihood build, NLL+gradient, then one fit per --large-methods
//         (default matrix_free, ceres, ceres_dogleg; min of --repeat runs) with iterations, CG
//         iterations, covariance-row time of the POI, peak RSS and the agreement of NLL, POI and
//         all parameters with the first method. Not part of "all" (minutes per point).
// Per model point: generation, HDF5 round trip (io::WriteFitInput to a temporary file +
// io::ReadFitInput), NLL+gradient, Hessian, full fit + covariance (+ impacts for cms), fit
// iterations, peak RSS, tensor bytes. Per thread count (--threads 1,2): the likelihood timings
// and the fit are repeated; the model and the HDF5 round trip are shared.
//
// Machine limits, per thread count T (tbb::task_arena of T threads):
//   * read bandwidth: sum of a large array of doubles (8 independent accumulators per task),
//     static partition over T threads, best of 5; bytes = array size;
//   * triad bandwidth a = b + s c (STREAM convention: 24 bytes per element, no write-allocate);
//   * GEMM: T independent Eigen products C = A B of size n (2000; 400 with --quick), one per
//     thread, run concurrently; rate = T * 2 n^3 / wall time, best of 3. Eigen itself is single
//     threaded here (no OpenMP), so this is "single-thread GEMM x T" measured concurrently.
// Derived numbers:
//   * bandwidth floor of NLL+gradient = tensor bytes / read bandwidth, where tensor bytes are the
//     compressed-row arrays one evaluation streams: nnz * (4 + 8 [+ 8 asymmetric]) + rows * 24;
//   * Hessian flop count = sum over rows r of k_r^2, k_r = systematic entries of the row (+1 for
//     the POI of a signal row): the symmetric half of the rank-1 updates 2 k^2 / 2. The
//     Barlow-Beeston and constraint terms are not counted. Hessian fraction of GEMM = (flops /
//     Hessian time) / GEMM rate at the same thread count.
//
// Skipped grid points (reason in the tables): estimated tensor above --max-tensor-gb or above
// what fits in memory, or estimated fit time above --max-seconds. The fit time estimate is
// (iterations + 2) x the Hessian time extrapolated by flops from the measured points (the best
// measured flop rate among points with >= 1e7 flops), plus (iterations + 3) dense Cholesky /
// inversions of the parameters (P^3 / 3 flops each at the GEMM rate).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <Eigen/Core>

#include "lepus/bench/suite.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/output.h"
#include "lepus/io/reader.h"
#include "lepus/io/writer.h"
#include "lepus/models/synthetic.h"

namespace lepus::bench {
namespace {

using BenchArgs = SuiteOptions;

void WriteText(const std::string& path, const std::string& text) {
  io::WriteFileAtomically(path, text);
}

constexpr int kExitOk = 0;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- memory ---------------------------------------------------------------------------------

// Resets the kernel's peak-RSS counter of this process (VmHWM; Linux >= 4.0). Returns false when
// not possible (then the per-point peak is the process peak of getrusage).
bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// Peak RSS in MB: VmHWM of /proc/self/status, else getrusage ru_maxrss.
double PeakRssMb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream ss(line.substr(6));
      double kb = 0;
      ss >> kb;
      if (kb > 0) return kb / 1024.0;
    }
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double ProcessMaxRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// User + system CPU seconds of this process (all threads): robust against other processes
// competing for the cores, unlike wall time.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 8e9;
}

// ---- machine limits -------------------------------------------------------------------------

struct MachineLimits {
  int threads = 1;
  double read_gbs = 0.0;
  double triad_gbs = 0.0;
  double gemm_gflops = 0.0;
  int gemm_n = 0;
};

MachineLimits MeasureMachine(int threads, bool quick) {
  MachineLimits m;
  m.threads = threads;
  tbb::task_arena arena(threads);
  const std::size_t n = quick ? (std::size_t{1} << 23) : (std::size_t{1} << 26);  // 64/512 MB
  std::vector<double> a(n), b(n), c(n);
  const std::size_t grain = (n + static_cast<std::size_t>(threads) - 1) / threads;
  arena.execute([&] {  // first touch by the threads that will read
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, n, grain),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t i = r.begin(); i < r.end(); ++i) {
            a[i] = 1.0 + 1e-9 * static_cast<double>(i % 1000);
            b[i] = 2.0;
            c[i] = 0.5;
          }
        },
        tbb::static_partitioner());
  });
  std::vector<double> partial(static_cast<std::size_t>(threads) + 1);
  double sink = 0.0;
  double best_read = 1e300, best_triad = 1e300;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    arena.execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<std::size_t>(0, n, grain),
          [&](const tbb::blocked_range<std::size_t>& r) {
            double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            std::size_t i = r.begin();
            for (; i + 8 <= r.end(); i += 8)
              for (int k = 0; k < 8; ++k) s[k] += a[i + k];
            for (; i < r.end(); ++i) s[0] += a[i];
            partial[r.begin() / grain] =
                ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
          },
          tbb::static_partitioner());
    });
    best_read = std::min(best_read, Seconds(t0));
    for (double p : partial) sink += p;
    const auto t1 = Clock::now();
    arena.execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<std::size_t>(0, n, grain),
          [&](const tbb::blocked_range<std::size_t>& r) {
            for (std::size_t i = r.begin(); i < r.end(); ++i) b[i] = a[i] + 0.5 * c[i];
          },
          tbb::static_partitioner());
    });
    best_triad = std::min(best_triad, Seconds(t1));
  }
  sink += b[n / 2];
  if (sink == 42.0) std::cerr << "";  // keep the sums alive
  m.read_gbs = static_cast<double>(n) * 8.0 / best_read / 1e9;
  m.triad_gbs = static_cast<double>(n) * 24.0 / best_triad / 1e9;
  a = {};
  b = {};
  c = {};

  const int gn = quick ? 400 : 2000;
  m.gemm_n = gn;
  std::vector<Eigen::MatrixXd> A(threads), B(threads), C(threads);
  for (int t = 0; t < threads; ++t) {
    A[t] = Eigen::MatrixXd::Random(gn, gn);
    B[t] = Eigen::MatrixXd::Random(gn, gn);
    C[t] = Eigen::MatrixXd::Zero(gn, gn);
  }
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    arena.execute([&] {
      tbb::parallel_for(
          0, threads, [&](int t) { C[t].noalias() = A[t] * B[t]; }, tbb::static_partitioner());
    });
    best = std::min(best, Seconds(t0));
  }
  m.gemm_gflops = threads * 2.0 * std::pow(static_cast<double>(gn), 3) / best / 1e9;
  return m;
}

// ---- model points ---------------------------------------------------------------------------

constexpr int kGridProcs = 5;

struct Point {
  std::string suite;  // "cms" or "grid"
  std::string name;
  int nbins = 0;
  int nsyst = 0;
  models::CmsLikeSpec cms;
};

std::vector<Point> MakePoints(const BenchArgs& args) {
  std::vector<Point> points;
  const bool cms = args.suite == "cms" || args.suite == "all";
  const bool grid = args.suite == "grid" || args.suite == "all";
  if (cms) {
    Point p;
    p.suite = "cms";
    if (args.quick) {
      p.cms.neta = 8;
      p.cms.npt = 10;
      p.cms.n_global = 20;
      p.cms.n_eff_per_eta = 4;
      p.cms.n_scale_per_eta = 1;
      p.name = "cms-quick";
    } else {
      p.cms.n_global = 450;
      p.cms.n_eff_per_eta = 90;
      p.cms.n_scale_per_eta = 3;
      p.name = "cms-like";
    }
    p.nbins = p.cms.neta * p.cms.npt * p.cms.ncharge;
    points.push_back(p);
  }
  if (grid) {
    std::vector<int> nbins_list =
        args.quick ? std::vector<int>{10, 100} : std::vector<int>{10, 100, 1000, 10000, 100000};
    if (!args.grid_nbins.empty()) nbins_list = args.grid_nbins;
    const int max_nsyst = args.quick ? 16 : args.grid_max_nsyst;
    for (int nb : nbins_list)
      for (int ns = 1; ns <= max_nsyst; ns *= (args.quick ? 4 : 2)) {
        Point p;
        p.suite = "grid";
        p.nbins = nb;
        p.nsyst = ns;
        p.name = "grid-" + std::to_string(nb) + "x" + std::to_string(ns);
        points.push_back(p);
      }
  }
  return points;
}

engine::Model MakeModel(const Point& p) {
  if (p.suite == "cms") return models::MakeCmsLikeModel(p.cms);
  models::SyntheticSpec spec;
  spec.nbins = p.nbins;
  spec.nsyst = p.nsyst;
  spec.nproc = kGridProcs;
  spec.nsignal = 1;
  spec.density = 1.0;
  spec.seed = 7;
  return models::MakeSyntheticModel(spec);
}

// ---- results --------------------------------------------------------------------------------

struct Row {
  std::string suite, name, status = "ok", note;
  std::int64_t nbins = 0;
  int nproc = 0, nsyst = 0, nparams = 0, threads = 0;
  std::int64_t rows = 0, nnz = 0;
  double density = NAN, tensor_bytes = NAN;
  double gen_s = NAN, io_write_s = NAN, io_read_s = NAN, file_bytes = NAN;
  double nll_grad_s = NAN, bw_floor_s = NAN, nll_grad_x_floor = NAN;
  double hessian_s = NAN, hessian_flops = NAN, hessian_gflops = NAN, hessian_frac_gemm = NAN;
  double fit_s = NAN, covariance_s = NAN, impacts_s = NAN, fit_cov_impacts_s = NAN;
  // cms: the covariance time of a fit from the minimum with CovarianceExtent::kSelected (errors
  // and POI/NOI rows only), beside covariance_s (kFull); Markdown and stderr only (the CSV
  // columns are fixed).
  double covariance_selected_s = NAN;
  int fit_iterations = -1;
  std::string fit_status;
  double peak_rss_mb = NAN;
  double read_gbs = NAN, gemm_gflops = NAN;
};

const char* kColumns =
    "suite,name,status,note,nbins,nproc,nsyst,nparams,threads,rows,nnz,density,tensor_bytes,"
    "gen_s,io_write_s,io_read_s,file_bytes,nll_grad_s,bw_floor_s,nll_grad_x_floor,hessian_s,"
    "hessian_flops,hessian_gflops,hessian_frac_gemm,fit_s,fit_iterations,fit_status,"
    "covariance_s,impacts_s,fit_cov_impacts_s,peak_rss_mb,read_gbs,gemm_gflops";

std::string Num(double v, const char* fmt = "%.6g") {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string CsvQuote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

std::string CsvLine(const Row& r) {
  std::ostringstream o;
  o << r.suite << ',' << r.name << ',' << r.status << ',' << CsvQuote(r.note) << ',' << r.nbins
    << ',' << r.nproc << ',' << r.nsyst << ',' << r.nparams << ',' << r.threads << ',' << r.rows
    << ',' << r.nnz << ',' << Num(r.density) << ',' << Num(r.tensor_bytes, "%.0f") << ','
    << Num(r.gen_s) << ',' << Num(r.io_write_s) << ',' << Num(r.io_read_s) << ','
    << Num(r.file_bytes, "%.0f") << ',' << Num(r.nll_grad_s) << ',' << Num(r.bw_floor_s) << ','
    << Num(r.nll_grad_x_floor) << ',' << Num(r.hessian_s) << ',' << Num(r.hessian_flops, "%.0f")
    << ',' << Num(r.hessian_gflops) << ',' << Num(r.hessian_frac_gemm) << ',' << Num(r.fit_s) << ','
    << (r.fit_iterations >= 0 ? std::to_string(r.fit_iterations) : "") << ',' << r.fit_status << ','
    << Num(r.covariance_s) << ',' << Num(r.impacts_s) << ',' << Num(r.fit_cov_impacts_s) << ','
    << Num(r.peak_rss_mb, "%.1f") << ',' << Num(r.read_gbs, "%.3g") << ','
    << Num(r.gemm_gflops, "%.3g");
  return o.str();
}

// Human-readable duration: "850 us", "12.3 ms", "4.56 s".
std::string Dur(double s) {
  if (!std::isfinite(s)) return "-";
  char buf[32];
  if (s < 1e-3)
    std::snprintf(buf, sizeof(buf), "%.0f us", s * 1e6);
  else if (s < 1.0)
    std::snprintf(buf, sizeof(buf), "%.3g ms", s * 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.3g s", s);
  return buf;
}

std::string Mb(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), bytes < 1e6 ? "%.2f" : "%.0f", bytes / 1e6);
  return buf;
}

std::string Opt(double v, const char* fmt) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Markdown(const std::vector<Row>& rows, const std::vector<MachineLimits>& machine,
                     const std::string& command) {
  std::ostringstream o;
  o << "Command: `" << command << "`\n\n";
  o << "| threads | read bandwidth (GB/s) | triad bandwidth (GB/s) | GEMM (GFLOP/s, n) |\n"
    << "|---:|---:|---:|---:|\n";
  for (const MachineLimits& m : machine)
    o << "| " << m.threads << " | " << Opt(m.read_gbs, "%.1f") << " | " << Opt(m.triad_gbs, "%.1f")
      << " | " << Opt(m.gemm_gflops, "%.1f") << " (" << m.gemm_n << ") |\n";
  o << "\n| point | bins | syst | params | thr | tensor MB | HDF5 write + read | NLL+grad | "
       "x floor | Hessian | GFLOP/s | of GEMM | fit + cov | iter | cov full / selected | impacts | "
       "peak RSS MB | note |\n"
    << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
       "\n";
  for (const Row& r : rows) {
    o << "| " << r.name << " | " << r.nbins << " | " << r.nsyst << " | " << r.nparams << " | "
      << r.threads << " | " << Mb(r.tensor_bytes) << " | ";
    if (std::isfinite(r.io_write_s))
      o << Dur(r.io_write_s) << " + " << Dur(r.io_read_s);
    else
      o << "-";
    o << " | " << Dur(r.nll_grad_s) << " | " << Opt(r.nll_grad_x_floor, "%.2f") << " | "
      << Dur(r.hessian_s) << " | " << Opt(r.hessian_gflops, "%.3g") << " | "
      << (std::isfinite(r.hessian_frac_gemm) ? Opt(100 * r.hessian_frac_gemm, "%.0f%%") : "-")
      << " | " << Dur(r.fit_s) << " | "
      << (r.fit_iterations >= 0 ? std::to_string(r.fit_iterations) : "-") << " | "
      << Dur(r.covariance_s)
      << (std::isfinite(r.covariance_selected_s) ? " / " + Dur(r.covariance_selected_s) : "")
      << " | " << Dur(r.impacts_s) << " | " << Opt(r.peak_rss_mb, "%.0f") << " | "
      << (r.status == "ok" ? r.note : r.status + (r.note.empty() ? "" : ": " + r.note)) << " |\n";
  }
  return o.str();
}

// ---- timing helpers -------------------------------------------------------------------------

// Mean seconds per call: one warm-up call (timed); if it took less than `target` / 4, repeat
// until `target` seconds have passed (at most 1000 calls) and return the mean of the repeats.
template <class F>
double TimePerCall(F&& f, double target) {
  auto t0 = Clock::now();
  f();
  const double first = Seconds(t0);
  if (first >= target / 4) return first;
  int n = 0;
  t0 = Clock::now();
  double elapsed = 0;
  do {
    f();
    ++n;
    elapsed = Seconds(t0);
  } while (elapsed < target && n < 1000);
  return elapsed / n;
}

struct Reference {              // measured points for the skip estimates
  double best_flop_rate = 0.0;  // Hessian flops per second (points with >= 1e7 flops)
  double largest_flops = 0.0, largest_time = 0.0;
  int iterations = 8;
};

double EstimateHessianSeconds(const Reference& ref, double flops) {
  if (ref.best_flop_rate > 0) return flops / ref.best_flop_rate;
  if (ref.largest_flops > 0) return ref.largest_time * flops / ref.largest_flops;
  return 0.0;
}

double EstimateFitSeconds(const Reference& ref, double hessian_s, double nparams,
                          double gemm_gflops) {
  const double dense = std::pow(nparams, 3) / 3.0 / (gemm_gflops * 1e9);
  return (ref.iterations + 2) * hessian_s + (ref.iterations + 3) * dense;
}

// ---- large suite: calibration-scale sparse models, matrix-free Newton-CG vs Ceres ----------

struct LargeRow {
  std::string name, method, status, note;
  int threads = 0, nparams = 0, repeats = 0, iterations = -1, cg_iterations = -1, evaluations = -1;
  std::int64_t nbins = 0, rows = 0, nnz = 0;
  double gen_s = NAN, io_write_s = NAN, io_read_s = NAN, build_s = NAN, nll_grad_s = NAN;
  double fit_s = NAN, fit_max_s = NAN, fit_cpu_s = NAN, covariance_s = NAN, peak_rss_mb = NAN;
  double nll = NAN, poi = NAN, poi_error = NAN, edm = NAN;
  double dnll = NAN, dpoi_over_error = NAN, max_abs_dx = NAN;
};

const char* kLargeColumns =
    "suite,name,method,threads,nbins,nparams,rows,nnz,gen_s,io_write_s,io_read_s,build_s,nll_grad_"
    "s,"
    "fit_s,fit_max_s,fit_cpu_s,repeats,iterations,cg_iterations,evaluations,status,covariance_s,"
    "peak_rss_mb,nll,"
    "edm,poi,poi_error,dnll_vs_ref,dpoi_over_error_vs_ref,max_abs_dx_vs_ref,note";

std::string LargeCsvLine(const LargeRow& r) {
  std::ostringstream o;
  auto opt_int = [](int v) { return v >= 0 ? std::to_string(v) : std::string(); };
  o << "large," << r.name << ',' << r.method << ',' << r.threads << ',' << r.nbins << ','
    << r.nparams << ',' << r.rows << ',' << r.nnz << ',' << Num(r.gen_s) << ',' << Num(r.io_write_s)
    << ',' << Num(r.io_read_s) << ',' << Num(r.build_s) << ',' << Num(r.nll_grad_s) << ','
    << Num(r.fit_s) << ',' << Num(r.fit_max_s) << ',' << Num(r.fit_cpu_s) << ',' << r.repeats << ','
    << opt_int(r.iterations) << ',' << opt_int(r.cg_iterations) << ',' << opt_int(r.evaluations)
    << ',' << r.status << ',' << Num(r.covariance_s) << ',' << Num(r.peak_rss_mb, "%.1f") << ','
    << Num(r.nll, "%.12g") << ',' << Num(r.edm, "%.3g") << ',' << Num(r.poi, "%.12g") << ','
    << Num(r.poi_error, "%.8g") << ',' << Num(r.dnll, "%.3g") << ','
    << Num(r.dpoi_over_error, "%.3g") << ',' << Num(r.max_abs_dx, "%.3g") << ','
    << CsvQuote(r.note);
  return o.str();
}

std::string LargeMarkdown(const std::vector<LargeRow>& rows, const std::string& command) {
  std::ostringstream o;
  o << "Command: `" << command << "`\n\n"
    << "| point | bins | params | thr | method | fit (min) | CPU (min) | iter | CG iter | POI cov "
       "rows | peak RSS MB | "
       "status | NLL - ref | dPOI / error | max abs dx |\n"
    << "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|\n";
  for (const LargeRow& r : rows)
    o << "| " << r.name << " | " << r.nbins << " | " << r.nparams << " | " << r.threads << " | "
      << r.method << " | " << Dur(r.fit_s) << " | " << Dur(r.fit_cpu_s) << " | "
      << (r.iterations >= 0 ? std::to_string(r.iterations) : "-") << " | "
      << (r.cg_iterations >= 0 ? std::to_string(r.cg_iterations) : "-") << " | "
      << Dur(r.covariance_s) << " | " << Opt(r.peak_rss_mb, "%.0f") << " | " << r.status << " | "
      << Opt(r.dnll, "%.1e") << " | " << Opt(r.dpoi_over_error, "%.1e") << " | "
      << Opt(r.max_abs_dx, "%.1e") << " |\n";
  o << "\n| point | thr | generate | HDF5 write + read | likelihood build | NLL+grad |\n"
    << "|---|---:|---:|---:|---:|---:|\n";
  std::string last;
  for (const LargeRow& r : rows) {
    const std::string key = r.name + "/" + std::to_string(r.threads);
    if (key == last) continue;
    last = key;
    o << "| " << r.name << " | " << r.threads << " | " << Dur(r.gen_s) << " | "
      << (std::isfinite(r.io_write_s) ? Dur(r.io_write_s) + " + " + Dur(r.io_read_s)
                                      : std::string("-"))
      << " | " << Dur(r.build_s) << " | " << Dur(r.nll_grad_s) << " |\n";
  }
  o << "\nSolver breakdown (Ceres iterations and time, exact Newton polish):\n\n";
  for (const LargeRow& r : rows)
    if (!r.note.empty())
      o << "- " << r.name << ", " << r.threads << " thread(s), " << r.method << ": " << r.note
        << "\n";
  return o.str();
}

int RunLargeSuite(const BenchArgs& args, const std::string& command_line) {
  std::vector<int> threads;
  const int hw = std::max(1u, std::thread::hardware_concurrency());
  for (int t : args.threads) {
    if (t < 0)
      throw std::invalid_argument("--threads is " + std::to_string(t) + ", but must be >= 0");
    const int resolved = t == 0 ? hw : t;
    if (std::find(threads.begin(), threads.end(), resolved) == threads.end())
      threads.push_back(resolved);
  }
  std::vector<engine::FitMethod> methods;
  for (const std::string& m : args.large_methods) {
    const engine::FitMethod fm = engine::FitMethodFromString(m);  // throws with the valid names
    if (fm == engine::FitMethod::kAuto || fm == engine::FitMethod::kDense)
      throw std::invalid_argument("--large-methods has '" + m +
                                  "', but must be matrix_free, ceres or ceres_dogleg");
    methods.push_back(fm);
  }
  if (methods.empty())
    throw std::invalid_argument("--large-methods is empty, but must name at least one method");
  std::vector<int> regions = args.large_regions;
  if (regions.empty()) regions = args.quick ? std::vector<int>{25} : std::vector<int>{450, 2400};
  for (int r : regions)
    if (r <= 0)
      throw std::invalid_argument("--large-regions has " + std::to_string(r) + ", but must be > 0");
  io::CheckOutputs({{"--csv", args.csv}, {"--markdown", args.markdown}});
  const std::filesystem::path tmpdir = args.tmpdir.empty() ? std::filesystem::temp_directory_path()
                                                           : std::filesystem::path(args.tmpdir);
  if (!std::filesystem::is_directory(tmpdir))
    throw std::invalid_argument("--tmpdir " + tmpdir.string() + ": not a directory");
  const std::string tmpfile =
      (tmpdir / ("lepus_bench_large_" + std::to_string(getpid()) + ".h5")).string();

  std::vector<LargeRow> rows;
  for (int nreg : regions) {
    models::CalibrationScaleSpec spec;
    spec.nregions = nreg;
    LargeRow base;
    ResetPeakRss();
    auto t0 = Clock::now();
    engine::Model model = models::MakeCalibrationScaleModel(spec);
    base.gen_s = Seconds(t0);
    base.nparams = model.num_params();
    base.nbins = model.nbins;
    base.rows = model.tensor.num_rows();
    base.nnz = model.tensor.num_entries();
    base.name = "calib-" + std::to_string(base.nparams / 1000) + "k";
    const double tensor_bytes =
        static_cast<double>(base.nnz) * 12.0 + static_cast<double>(base.rows) * 24.0;
    if (tensor_bytes <= args.max_io_gb * 1e9) {
      io::WriteOptions wo;
      wo.storage = model.storage;
      t0 = Clock::now();
      io::WriteFitInput(model, tmpfile, wo);
      base.io_write_s = Seconds(t0);
      model = engine::Model{};
      t0 = Clock::now();
      model = io::ReadFitInput(tmpfile);
      base.io_read_s = Seconds(t0);
      std::error_code ec;
      std::filesystem::remove(tmpfile, ec);
    }
    const auto shared = std::make_shared<const engine::Model>(std::move(model));
    for (int t : threads) {
      engine::LikelihoodOptions lo;
      lo.num_threads = t;
      t0 = Clock::now();
      const engine::Likelihood lik(shared, lo);
      const double build_s = Seconds(t0);
      Eigen::VectorXd grad;
      const Eigen::VectorXd x = lik.InitialParams();
      const double nll_grad_s =
          TimePerCall([&] { lik.ValueAndGradient(x, &grad); }, args.quick ? 0.02 : 0.5);
      engine::FitResult ref;
      bool have_ref = false;
      for (engine::FitMethod method : methods) {
        LargeRow r = base;
        r.threads = t;
        r.method = engine::ToString(method);
        r.build_s = build_s;
        r.nll_grad_s = nll_grad_s;
        engine::FitOptions fo;
        fo.method = method;
        engine::FitResult fit;
        double best = 1e300, worst = 0.0, best_cpu = 1e300;
        ResetPeakRss();
        for (int rep = 0; rep < args.repeat; ++rep) {
          const double cpu0 = ProcessCpuSeconds();
          fit = engine::Fit(lik, fo);
          best_cpu = std::min(best_cpu, ProcessCpuSeconds() - cpu0);
          best = std::min(best, fit.time_total);
          worst = std::max(worst, fit.time_total);
        }
        r.fit_cpu_s = best_cpu;
        r.peak_rss_mb = PeakRssMb();
        r.repeats = args.repeat;
        r.fit_s = best;
        r.fit_max_s = worst;
        r.iterations = fit.iterations;
        r.cg_iterations = fit.cg_iterations;
        r.evaluations = fit.evaluations;
        r.status = engine::ToString(fit.status);
        r.covariance_s = fit.time_covariance;
        r.nll = fit.nll;
        r.edm = fit.edm;
        r.poi = fit.values.size() ? fit.values[0] : NAN;
        r.poi_error = fit.errors.size() ? fit.errors[0] : NAN;
        r.note = fit.message;
        if (!have_ref && fit.ok()) {
          ref = fit;
          have_ref = true;
        }
        if (have_ref && fit.x.size() == ref.x.size()) {
          r.dnll = fit.nll - ref.nll;
          r.dpoi_over_error = (fit.values[0] - ref.values[0]) / ref.errors[0];
          r.max_abs_dx = (fit.x - ref.x).cwiseAbs().maxCoeff();
        }
        std::cerr << "bench large " << r.name << " (" << r.nparams << " params, " << r.nbins
                  << " bins) threads=" << t << " " << r.method << ": fit " << Dur(r.fit_s)
                  << " (CPU " << Dur(r.fit_cpu_s) << ", " << r.iterations << " it, "
                  << r.cg_iterations << " CG), " << r.status << ", POI cov rows "
                  << Dur(r.covariance_s) << ", peak RSS " << Opt(r.peak_rss_mb, "%.0f")
                  << " MB, dNLL " << Opt(r.dnll, "%.1e") << ", dPOI/err "
                  << Opt(r.dpoi_over_error, "%.1e") << (r.note.empty() ? "" : " [" + r.note + "]")
                  << "\n";
        rows.push_back(r);
      }
    }
  }
  std::string csv = std::string(kLargeColumns) + "\n";
  for (const LargeRow& r : rows) csv += LargeCsvLine(r) + "\n";
  if (!args.csv.empty()) WriteText(args.csv, csv);
  const std::string md = LargeMarkdown(rows, command_line);
  if (!args.markdown.empty()) WriteText(args.markdown, md);
  if (args.csv.empty() && args.markdown.empty()) std::cout << md;
  std::cerr << "bench: process peak RSS " << Opt(ProcessMaxRssMb(), "%.0f") << " MB\n";
  return kExitOk;
}

}  // namespace

int RunSuites(const SuiteOptions& args, const std::string& command_line) {
  if (args.suite != "cms" && args.suite != "grid" && args.suite != "all" && args.suite != "large")
    throw std::invalid_argument("--suite is '" + args.suite +
                                "', but must be cms, grid, large or all");
  if (args.suite == "large") return RunLargeSuite(args, command_line);
  if (!(args.max_seconds > 0))
    throw std::invalid_argument("--max-seconds is " + Num(args.max_seconds) + ", but must be > 0");
  std::vector<int> threads;
  const int hw = std::max(1u, std::thread::hardware_concurrency());
  for (int t : args.threads) {
    if (t < 0)
      throw std::invalid_argument("--threads is " + std::to_string(t) + ", but must be >= 0");
    const int resolved = t == 0 ? hw : t;
    if (std::find(threads.begin(), threads.end(), resolved) == threads.end())
      threads.push_back(resolved);
  }
  io::CheckOutputs({{"--csv", args.csv}, {"--markdown", args.markdown}});
  const std::filesystem::path tmpdir = args.tmpdir.empty() ? std::filesystem::temp_directory_path()
                                                           : std::filesystem::path(args.tmpdir);
  if (!std::filesystem::is_directory(tmpdir))
    throw std::invalid_argument("--tmpdir " + tmpdir.string() + ": not a directory");

  // Machine limits first (the model points allocate a lot of memory later).
  std::vector<MachineLimits> machine;
  std::map<int, MachineLimits> by_threads;
  for (int t : threads) {
    const MachineLimits m = MeasureMachine(t, args.quick);
    std::cerr << "bench machine: " << t << " thread(s): read " << Opt(m.read_gbs, "%.1f")
              << " GB/s, triad " << Opt(m.triad_gbs, "%.1f") << " GB/s, GEMM(" << m.gemm_n << ") "
              << Opt(m.gemm_gflops, "%.1f") << " GFLOP/s\n";
    machine.push_back(m);
    by_threads[t] = m;
  }

  const std::vector<Point> points = MakePoints(args);
  const double memory = PhysicalMemoryBytes();
  std::vector<Row> rows;
  Reference ref;
  std::map<int, bool> nbins_time_skipped;  // grid: a time skip skips the larger nsyst too
  const std::string tmpfile =
      (tmpdir / ("lepus_bench_" + std::to_string(getpid()) + ".h5")).string();
  int index = 0;
  for (const Point& p : points) {
    ++index;
    const std::string tag =
        "bench [" + std::to_string(index) + "/" + std::to_string(points.size()) + "] " + p.name;
    Row base;
    base.suite = p.suite;
    base.name = p.name;
    base.nbins = p.nbins;
    base.nproc = p.suite == "cms" ? p.cms.nproc : kGridProcs;
    base.nsyst = p.nsyst;
    auto skip = [&](const std::string& reason) {
      for (int t : threads) {
        Row r = base;
        r.threads = t;
        r.status = "skipped";
        r.note = reason;
        r.read_gbs = by_threads[t].read_gbs;
        r.gemm_gflops = by_threads[t].gemm_gflops;
        rows.push_back(r);
      }
      std::cerr << tag << ": skipped (" << reason << ")\n";
    };
    if (p.suite == "grid") {
      const double entries = static_cast<double>(p.nbins) * kGridProcs * p.nsyst;
      base.tensor_bytes = entries * 12.0 + p.nbins * kGridProcs * 24.0;
      base.nparams = 1 + p.nsyst;
      base.rows = static_cast<std::int64_t>(p.nbins) * kGridProcs;
      base.nnz = static_cast<std::int64_t>(entries);
      if (base.tensor_bytes > args.max_tensor_gb * 1e9) {
        skip("tensor " + Opt(base.tensor_bytes / 1e9, "%.1f") + " GB > --max-tensor-gb " +
             Num(args.max_tensor_gb));
        continue;
      }
      // Generation holds a dense copy (8 B/entry) next to the compressed rows (12 B/entry).
      if (entries * 24.0 > 0.8 * memory) {
        skip("needs ~" + Opt(entries * 24.0 / 1e9, "%.0f") + " GB while generating, machine has " +
             Opt(memory / 1e9, "%.0f") + " GB");
        continue;
      }
      if (nbins_time_skipped[p.nbins]) {
        skip("a smaller nsyst at these nbins already exceeded --max-seconds");
        continue;
      }
      const double flops = static_cast<double>(p.nbins) *
                           ((kGridProcs - 1) * std::pow(p.nsyst, 2) + std::pow(p.nsyst + 1, 2));
      const double est_h = EstimateHessianSeconds(ref, flops);
      const double est_fit =
          EstimateFitSeconds(ref, est_h, base.nparams, by_threads[threads.front()].gemm_gflops);
      if (est_fit > args.max_seconds) {
        nbins_time_skipped[p.nbins] = true;
        skip("estimated fit " + Opt(est_fit, "%.0f") + " s (Hessian " + Opt(est_h, "%.2g") +
             " s) > --max-seconds " + Num(args.max_seconds));
        continue;
      }
    }

    ResetPeakRss();
    auto t0 = Clock::now();
    engine::Model model = MakeModel(p);
    base.gen_s = Seconds(t0);
    base.nsyst = model.num_systematics();
    base.nparams = model.num_params();
    base.nbins = model.nbins;
    base.rows = model.tensor.num_rows();
    base.nnz = model.tensor.num_entries();
    base.density = base.rows > 0 ? static_cast<double>(base.nnz) /
                                       (static_cast<double>(base.rows) * std::max(1, base.nsyst))
                                 : 0.0;
    base.tensor_bytes = static_cast<double>(base.nnz) * (model.asymmetric ? 20.0 : 12.0) +
                        static_cast<double>(base.rows) * 24.0;
    double flops = 0.0;
    for (std::int64_t r = 0; r < base.rows; ++r) {
      const double k =
          static_cast<double>(model.tensor.row_start[r + 1] - model.tensor.row_start[r]) +
          (model.tensor.row_proc[r] < model.num_signals ? 1.0 : 0.0);
      flops += k * k;
    }
    base.hessian_flops = flops;

    // HDF5 round trip, in the model's own storage kind.
    if (base.tensor_bytes <= args.max_io_gb * 1e9) {
      io::WriteOptions wo;
      wo.storage = model.storage;
      t0 = Clock::now();
      io::WriteFitInput(model, tmpfile, wo);
      base.io_write_s = Seconds(t0);
      model = engine::Model{};  // free the generated copy: the fit uses what was read
      io::ReadInfo info;
      t0 = Clock::now();
      model = io::ReadFitInput(tmpfile, &info);
      base.io_read_s = Seconds(t0);
      base.file_bytes = static_cast<double>(info.file_bytes);
      std::error_code ec;
      std::filesystem::remove(tmpfile, ec);
    } else {
      base.note = "HDF5 round trip skipped (tensor > --max-io-gb " + Num(args.max_io_gb) + ")";
    }
    const auto shared = std::make_shared<const engine::Model>(std::move(model));

    for (int t : threads) {
      Row r = base;
      r.threads = t;
      const MachineLimits& m = by_threads[t];
      r.read_gbs = m.read_gbs;
      r.gemm_gflops = m.gemm_gflops;
      engine::LikelihoodOptions lo;
      lo.num_threads = t;
      const engine::Likelihood lik(shared, lo);
      Eigen::VectorXd x = lik.InitialParams();
      for (int i = 0; i < x.size(); ++i) x[i] += 0.01 * ((i % 7) - 3);  // away from prefit
      Eigen::VectorXd grad;
      Eigen::MatrixXd hess;
      const double target = args.quick ? 0.02 : 0.5;
      r.nll_grad_s = TimePerCall([&] { lik.ValueAndGradient(x, &grad); }, target);
      r.bw_floor_s = r.tensor_bytes / (m.read_gbs * 1e9);
      r.nll_grad_x_floor = r.nll_grad_s / r.bw_floor_s;
      r.hessian_s = TimePerCall([&] { lik.ValueGradientHessian(x, &grad, &hess); }, target);
      hess = Eigen::MatrixXd();
      r.hessian_gflops = flops / r.hessian_s / 1e9;
      r.hessian_frac_gemm = r.hessian_gflops / m.gemm_gflops;
      if (t == threads.front() && flops >= 1e7)
        ref.best_flop_rate = std::max(ref.best_flop_rate, flops / r.hessian_s);
      if (t == threads.front() && flops >= ref.largest_flops) {
        ref.largest_flops = flops;
        ref.largest_time = r.hessian_s;
      }

      const double est_fit = EstimateFitSeconds(ref, r.hessian_s, r.nparams, m.gemm_gflops);
      if (est_fit > args.max_seconds) {
        r.status = "partial";
        r.note = "fit skipped: estimated " + Opt(est_fit, "%.0f") + " s > --max-seconds " +
                 Num(args.max_seconds);
        if (p.suite == "grid") nbins_time_skipped[p.nbins] = true;
      } else {
        const engine::FitResult fit = engine::Fit(lik);
        r.fit_s = fit.time_total;
        r.covariance_s = fit.time_covariance;
        r.fit_iterations = fit.iterations;
        r.fit_status = engine::ToString(fit.status);
        r.fit_cov_impacts_s = fit.time_total;
        if (fit.ok()) ref.iterations = std::max(4, fit.iterations);
        if (!fit.ok()) r.status = "fit " + r.fit_status;
        if (p.suite == "cms" && fit.ok()) {
          // The covariance again from the minimum, selected instead of full (the fit converges
          // at once; its covariance time is factorisation + conditioning + selected inverse, as
          // fit.time_covariance is with the full inverse).
          engine::FitOptions so;
          so.initial_params = fit.x;
          so.covariance_extent = engine::CovarianceExtent::kSelected;
          r.covariance_selected_s = engine::Fit(lik, so).time_covariance;
        }
        if (p.suite == "cms") {
          try {
            t0 = Clock::now();
            const engine::Impacts imp = engine::ComputeImpacts(lik, fit);
            r.impacts_s = Seconds(t0);
            r.fit_cov_impacts_s += r.impacts_s;
          } catch (const std::exception& e) {
            r.note += std::string(r.note.empty() ? "" : "; ") + "impacts failed: " + e.what();
          }
        }
      }
      r.peak_rss_mb = PeakRssMb();
      rows.push_back(r);
      std::cerr << tag << " (" << r.nparams << " params, " << r.rows << " rows, "
                << Mb(r.tensor_bytes) << " MB) threads=" << t << ": io " << Dur(r.io_write_s) << "+"
                << Dur(r.io_read_s) << ", nll+grad " << Dur(r.nll_grad_s) << " ("
                << Opt(r.nll_grad_x_floor, "%.2f") << "x floor), hessian " << Dur(r.hessian_s)
                << " (" << Opt(100 * r.hessian_frac_gemm, "%.0f") << "% GEMM), fit+cov "
                << Dur(r.fit_s) << " (" << r.fit_iterations << " it, covariance "
                << Dur(r.covariance_s);
      if (std::isfinite(r.covariance_selected_s))
        std::cerr << ", selected " << Dur(r.covariance_selected_s);
      std::cerr << ")";
      if (std::isfinite(r.impacts_s)) std::cerr << ", impacts " << Dur(r.impacts_s);
      std::cerr << ", peak RSS " << Opt(r.peak_rss_mb, "%.0f") << " MB"
                << (r.status == "ok"
                        ? ""
                        : " [" + r.status + (r.note.empty() ? "" : ": " + r.note) + "]")
                << "\n";
    }
  }

  std::string csv = std::string(kColumns) + "\n";
  for (const Row& r : rows) csv += CsvLine(r) + "\n";
  if (!args.csv.empty()) WriteText(args.csv, csv);
  const std::string md = Markdown(rows, machine, command_line);
  if (!args.markdown.empty()) WriteText(args.markdown, md);
  if (args.csv.empty() && args.markdown.empty()) std::cout << md;
  std::cerr << "bench: process peak RSS " << Opt(ProcessMaxRssMb(), "%.0f") << " MB\n";
  return kExitOk;
}

}  // namespace lepus::bench
