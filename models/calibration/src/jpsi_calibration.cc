#include "lepus/calibration/jpsi_calibration.h"

#include "lepus/models/internal/timing.h"
#include "lepus/models/internal/validation.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <ceres/ceres.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "lepus/io/errors.h"

namespace lepus::calibration {

// The event record, the detector and the calibration model of lepus::models.
using namespace lepus::models;

namespace {

using detail::Clock;
using detail::Fail;
using detail::Since;
using detail::ValidFilePair;
using detail::ValidMember;

// Bin of x in increasing edges, or -1 outside [edges.front(), edges.back()).
int FindBin(const std::vector<double>& edges, double x) noexcept {
  if (!(x >= edges.front() && x < edges.back())) return -1;
  return static_cast<int>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin()) - 1;
}

bool CheckEdges(const std::vector<double>& edges, const std::string& name, double lo, double hi,
                std::string* error) {
  if (edges.size() < 2)
    return Fail(error, name + ".size()", static_cast<double>(edges.size()), ">= 2");
  for (std::size_t i = 0; i < edges.size(); ++i) {
    const std::string at = name + "[" + std::to_string(i) + "]";
    if (!std::isfinite(edges[i]) || edges[i] < lo || edges[i] > hi) {
      std::ostringstream c;
      c << "in [" << lo << ", " << hi << "]";
      return Fail(error, at, edges[i], c.str());
    }
    if (i > 0 && !(edges[i] > edges[i - 1])) {
      std::ostringstream c;
      c << "> " << name << "[" << i - 1 << "] (" << edges[i - 1] << "): edges must increase";
      return Fail(error, at, edges[i], c.str());
    }
  }
  return true;
}

// The model of one bin, templated for Ceres' automatic differentiation:
// s = -1/2 [log(1 + dk+) + log(1 + dk-)].
template <typename T>
T ModelScale(const T* plus, const T* minus, double inv_pt_plus, double pt_plus, double inv_pt_minus,
             double pt_minus) {
  using std::log;
  const T dk_plus = plus[0] - plus[1] * inv_pt_plus + plus[2] * pt_plus;
  const T dk_minus = minus[0] - minus[1] * inv_pt_minus - minus[2] * pt_minus;
  return -0.5 * (log(1.0 + dk_plus) + log(1.0 + dk_minus));
}

// Residual of a bin whose muons are in different eta bins (two parameter blocks).
struct PairResidual {
  JpsiMassBin bin;
  template <typename T>
  bool operator()(const T* plus, const T* minus, T* residual) const {
    residual[0] = (ModelScale(plus, minus, bin.inv_pt_plus, bin.pt_mean_plus, bin.inv_pt_minus,
                              bin.pt_mean_minus) -
                   bin.scale) /
                  bin.error;
    return true;
  }
};
// Both muons in the same eta bin (Ceres forbids a block twice in one residual).
struct SameBinResidual {
  JpsiMassBin bin;
  template <typename T>
  bool operator()(const T* p, T* residual) const {
    residual[0] =
        (ModelScale(p, p, bin.inv_pt_plus, bin.pt_mean_plus, bin.inv_pt_minus, bin.pt_mean_minus) -
         bin.scale) /
        bin.error;
    return true;
  }
};

// The truncated-window statistics of unsorted samples: count, mean, variance and fourth central
// moment of the values in [lo, hi).
struct WindowStats {
  std::int64_t n = 0;
  double mean = 0.0, var = 0.0, m4 = 0.0;
};
WindowStats Window(const float* x, std::size_t n, double lo, double hi, bool moments = false) {
  WindowStats s;
  double sum = 0.0, sum2 = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (v >= lo && v < hi) {
      ++s.n;
      sum += v;
      sum2 += v * v;
    }
  }
  if (s.n == 0) return s;
  s.mean = sum / s.n;
  s.var = std::max(0.0, sum2 / s.n - s.mean * s.mean);
  if (moments) {
    // Second pass about the mean: the variance without cancellation, and the fourth moment for
    // the error of the variance.
    double c2 = 0.0, c4 = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = x[i];
      if (v >= lo && v < hi) {
        const double d2 = (v - s.mean) * (v - s.mean);
        c2 += d2;
        c4 += d2 * d2;
      }
    }
    s.var = c2 / s.n;
    s.m4 = c4 / s.n;
  }
  return s;
}

double Median(std::vector<float> v) {
  const std::size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + h, v.end());
  return v[h];
}

int Threads(int n) {
  if (n > 0) return n;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

std::string ToString(CalibrationLinearSolver solver) {
  return engine::NameIn(kCalibrationLinearSolverNames, solver);
}

CalibrationLinearSolver CalibrationLinearSolverFromString(const std::string& name) {
  return engine::ParseIn(kCalibrationLinearSolverNames, name, "linear solver");
}

std::string ToString(CalibrationFitStatus status) {
  switch (status) {
    case CalibrationFitStatus::kConverged:
      return "converged";
    case CalibrationFitStatus::kNotConverged:
      return "not_converged";
    case CalibrationFitStatus::kCovarianceFailed:
      return "covariance_failed";
  }
  return "?";
}

std::vector<double> JpsiCalibrationOptions::DefaultEtaEdges() {
  std::vector<double> e(kScaleEtaBins + 1);
  for (int i = 0; i <= kScaleEtaBins; ++i)
    e[i] = std::round((kScaleEtaMin + i * (kScaleEtaMax - kScaleEtaMin) / kScaleEtaBins) * 1e12) /
           1e12;
  return e;
}

JpsiCalibrationOptions JpsiCalibrationOptions::Light() {
  JpsiCalibrationOptions o;
  o.eta_edges.clear();
  for (int i = 0; i <= 12; ++i) o.eta_edges.push_back(std::round((-2.4 + 0.4 * i) * 1e12) / 1e12);
  o.pt_edges = {4.0, 6.0, 60.0};
  o.num_data_events = 2000000;
  o.linear_solver = CalibrationLinearSolver::kDenseQr;
  return o;
}

JpsiCalibrationOptions JpsiCalibrationOptions::Full() { return JpsiCalibrationOptions{}; }

bool JpsiCalibrationOptions::IsValid(std::string* error) const {
  if (!CheckEdges(eta_edges, "eta_edges", kScaleEtaMin, kScaleEtaMax, error)) return false;
  if (!CheckEdges(pt_edges, "pt_edges", 0.0, 1e4, error)) return false;
  if (num_data_events == 0) return Fail(error, "num_data_events", 0, "> 0");
  if (!(sim_factor > 0.0 && std::isfinite(sim_factor)))
    return Fail(error, "sim_factor", sim_factor, "> 0");
  if (min_events_per_bin < 10)
    return Fail(error, "min_events_per_bin", min_events_per_bin, ">= 10");
  if (!(window_sigmas >= 1.0 && std::isfinite(window_sigmas)))
    return Fail(error, "window_sigmas", window_sigmas, ">= 1");
  if (max_iterations <= 0) return Fail(error, "max_iterations", max_iterations, "> 0");
  if (!(function_tolerance > 0.0))
    return Fail(error, "function_tolerance", function_tolerance, "> 0");
  if (num_threads < 0) return Fail(error, "num_threads", num_threads, ">= 0");
  if (batch_events == 0) return Fail(error, "batch_events", 0, "> 0");
  if (!ValidFilePair(data_files, sim_files, error)) return false;
  if (!ValidMember(generator, "generator", error)) return false;
  if (!ValidMember(data_detector, "data_detector", error)) return false;
  if (!ValidMember(sim_detector, "sim_detector", error)) return false;
  const std::uint64_t mass_bins = static_cast<std::uint64_t>(eta_edges.size() - 1) *
                                  (eta_edges.size() - 1) * (pt_edges.size() - 1) *
                                  (pt_edges.size() - 1);
  if (mass_bins > (1ULL << 31))
    return Fail(error, "number of mass bins", static_cast<double>(mass_bins), "<= 2^31");
  return true;
}

double PredictedScale(const JpsiMassBin& bin, const ScaleBias& plus, const ScaleBias& minus) {
  const double p[3] = {plus.A, plus.e, plus.M};
  const double m[3] = {minus.A, minus.e, minus.M};
  return ModelScale(p, m, bin.inv_pt_plus, bin.pt_mean_plus, bin.inv_pt_minus, bin.pt_mean_minus);
}

std::vector<ScaleBias> TruthOnBins(const ScaleTable& truth, const std::vector<double>& eta_edges) {
  const int n = static_cast<int>(eta_edges.size()) - 1;
  std::vector<ScaleBias> out(std::max(n, 0));
  std::vector<int> count(out.size(), 0);
  for (int f = 0; f < kScaleEtaBins; ++f) {
    const int b = FindBin(eta_edges, ScaleEtaBinCenter(f));
    if (b < 0) continue;
    out[b].A += truth[f].A;
    out[b].e += truth[f].e;
    out[b].M += truth[f].M;
    ++count[b];
  }
  for (std::size_t b = 0; b < out.size(); ++b) {
    if (count[b] == 0) continue;
    out[b].A /= count[b];
    out[b].e /= count[b];
    out[b].M /= count[b];
  }
  return out;
}

CalibrationParameters FitScaleParameters(const std::vector<JpsiMassBin>& bins,
                                         const std::vector<double>& eta_edges,
                                         const JpsiCalibrationOptions& options,
                                         JpsiCalibrationSummary* summary) {
  ScaleFitOptions fo;
  fo.linear_solver = options.linear_solver;
  fo.max_iterations = options.max_iterations;
  fo.function_tolerance = options.function_tolerance;
  fo.num_threads = options.num_threads;
  return FitScaleParameters(bins, eta_edges, fo, summary);
}

CalibrationParameters FitScaleParameters(const std::vector<JpsiMassBin>& bins,
                                         const std::vector<double>& eta_edges,
                                         const ScaleFitOptions& options,
                                         JpsiCalibrationSummary* summary) {
  const int neta = static_cast<int>(eta_edges.size()) - 1;
  if (neta < 1) throw std::invalid_argument("FitScaleParameters: eta_edges needs >= 2 entries");
  for (std::size_t i = 0; i < bins.size(); ++i) {
    const JpsiMassBin& b = bins[i];
    if (b.eta_plus < 0 || b.eta_plus >= neta || b.eta_minus < 0 || b.eta_minus >= neta)
      throw std::invalid_argument("FitScaleParameters: bins[" + std::to_string(i) +
                                  "] has an eta bin outside [0, " + std::to_string(neta - 1) + "]");
    if (!(b.error > 0.0) || !std::isfinite(b.scale))
      throw std::invalid_argument("FitScaleParameters: bins[" + std::to_string(i) + "].error is " +
                                  std::to_string(b.error) + ", but must be > 0");
  }
  JpsiCalibrationSummary& s = *summary;
  s.bins = bins;
  s.num_parameters = kCalibrationParamsPerBin * neta;

  // Parameters (A, e, M) per eta bin, starting from zero bias.
  std::vector<double> x(static_cast<std::size_t>(kCalibrationParamsPerBin) * neta, 0.0);
  std::vector<char> used(neta, 0);
  ceres::Problem problem;
  for (const JpsiMassBin& b : bins) {
    double* p = &x[kCalibrationParamsPerBin * b.eta_plus];
    double* m = &x[kCalibrationParamsPerBin * b.eta_minus];
    used[b.eta_plus] = used[b.eta_minus] = 1;
    if (b.eta_plus == b.eta_minus) {
      problem.AddResidualBlock(
          new ceres::AutoDiffCostFunction<SameBinResidual, 1, 3>(new SameBinResidual{b}), nullptr,
          p);
    } else {
      problem.AddResidualBlock(
          new ceres::AutoDiffCostFunction<PairResidual, 1, 3, 3>(new PairResidual{b}), nullptr, p,
          m);
    }
  }
  const int nused = static_cast<int>(std::count(used.begin(), used.end(), 1));
  // e held at 0: a subset manifold on each used block (Ceres owns the manifolds).
  if (options.fix_e)
    for (int b = 0; b < neta; ++b)
      if (used[b])
        problem.SetManifold(&x[kCalibrationParamsPerBin * b], new ceres::SubsetManifold(3, {1}));
  const int free_per_bin = options.fix_e ? 2 : 3;

  ceres::Solver::Options so;
  switch (options.linear_solver) {
    case CalibrationLinearSolver::kDenseQr:
      so.linear_solver_type = ceres::DENSE_QR;
      break;
    case CalibrationLinearSolver::kDenseNormalCholesky:
      so.linear_solver_type = ceres::DENSE_NORMAL_CHOLESKY;
      break;
    case CalibrationLinearSolver::kSparseNormalCholesky:
      so.linear_solver_type = ceres::SPARSE_NORMAL_CHOLESKY;
      break;
  }
  so.max_num_iterations = options.max_iterations;
  so.function_tolerance = options.function_tolerance;
  so.gradient_tolerance = 1e-14;
  so.parameter_tolerance = 1e-12;
  so.num_threads = Threads(options.num_threads);
  so.logging_type = ceres::SILENT;
  so.minimizer_progress_to_stdout = false;

  const auto t0 = Clock::now();
  CalibrationParameters c;
  c.eta_edges = eta_edges;
  c.params.assign(neta, ScaleBias{});
  c.covariance = Eigen::MatrixXd::Zero(s.num_parameters, s.num_parameters);
  if (bins.empty()) {
    s.status = CalibrationFitStatus::kNotConverged;
    s.message = "no mass bin to fit";
    c.status = ToString(s.status);
    c.status_message = s.message;
    return c;
  }
  ceres::Solver::Summary cs;
  ceres::Solve(so, &problem, &cs);
  s.global_fit_seconds = Since(t0);
  s.ceres_brief = cs.BriefReport();
  s.ceres_full = cs.FullReport();
  s.iterations = static_cast<int>(cs.iterations.size()) - 1;
  s.initial_cost = cs.initial_cost;
  s.final_cost = cs.final_cost;
  s.chi2 = 2.0 * cs.final_cost;
  s.ndf = static_cast<int>(bins.size()) - free_per_bin * nused;
  for (int b = 0; b < neta; ++b) c.params[b] = {x[3 * b], x[3 * b + 1], x[3 * b + 2]};
  for (JpsiMassBin& b : s.bins)
    b.fitted = PredictedScale(b, c.params[b.eta_plus], c.params[b.eta_minus]);

  if (cs.termination_type != ceres::CONVERGENCE) {
    s.status = CalibrationFitStatus::kNotConverged;
    s.message = "Ceres did not converge: " + cs.message;
    c.status = ToString(s.status);
    c.status_message = s.message;
    return c;
  }

  // Covariance of the used blocks: (J^T J)^-1 by Ceres (dense SVD: robust, 144 parameters at
  // most in practice).
  const auto t1 = Clock::now();
  ceres::Covariance::Options co;
  co.algorithm_type = ceres::DENSE_SVD;
  co.num_threads = so.num_threads;
  ceres::Covariance covariance(co);
  std::vector<const double*> blocks;
  std::vector<int> block_bin;
  for (int b = 0; b < neta; ++b)
    if (used[b]) {
      blocks.push_back(&x[3 * b]);
      block_bin.push_back(b);
    }
  const bool ok = covariance.Compute(blocks, &problem);
  if (ok) {
    const int n = 3 * static_cast<int>(blocks.size());
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> cov(n, n);
    covariance.GetCovarianceMatrix(blocks, cov.data());
    for (int i = 0; i < static_cast<int>(blocks.size()); ++i)
      for (int j = 0; j < static_cast<int>(blocks.size()); ++j)
        c.covariance.block<3, 3>(3 * block_bin[i], 3 * block_bin[j]) =
            cov.block<3, 3>(3 * i, 3 * j);
    // Exact symmetry (the file format checks it to 1e-9 relative).
    c.covariance = (0.5 * (c.covariance + c.covariance.transpose())).eval();
  }
  s.covariance_seconds = Since(t1);
  if (!ok) {
    s.status = CalibrationFitStatus::kCovarianceFailed;
    s.message =
        "converged, but the covariance could not be computed (rank-deficient Jacobian: "
        "an eta bin without enough constraints?)";
    c.status = ToString(s.status);
    c.status_message = s.message;
    return c;
  }
  s.status = CalibrationFitStatus::kConverged;
  std::ostringstream msg;
  msg << "converged: chi2/ndf = " << s.chi2 << "/" << s.ndf;
  if (nused < neta)
    msg << "; " << neta - nused << " eta bin(s) without mass bins are unconstrained (0 +- 0)";
  s.message = msg.str();
  return c;
}

// ---- dimuon mass histogram

DimuonMassHistogram::DimuonMassHistogram(std::vector<double> eta_edges,
                                         std::vector<double> pt_edges, double reference_mass,
                                         bool simulation)
    : eta_edges_(std::move(eta_edges)),
      pt_edges_(std::move(pt_edges)),
      reference_mass_(reference_mass),
      simulation_(simulation) {
  assert(eta_edges_.size() >= 2 && pt_edges_.size() >= 2 && reference_mass_ > 0.0);
  neta_ = static_cast<int>(eta_edges_.size()) - 1;
  npt_ = static_cast<int>(pt_edges_.size()) - 1;
  num_bins_ = neta_ * npt_ * neta_ * npt_;
  if (simulation_) kin_.assign(num_bins_, Kinematics{});
}

std::uint64_t DimuonMassHistogram::Add(const EventBatch& batch,
                                       const CalibrationParameters* correction) {
  const Selection s = Select(batch, correction);
  Append(s);
  return s.bin.size();
}

DimuonMassHistogram::Selection DimuonMassHistogram::Select(
    const EventBatch& batch, const CalibrationParameters* correction) const {
  Selection s;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch.n_muons[i] != 2 || batch.muon[0].charge[i] * batch.muon[1].charge[i] != -1) {
      ++s.skipped;
      continue;
    }
    const int plus = batch.muon[0].charge[i] > 0 ? 0 : 1;
    const MuonColumns& mp = batch.muon[plus];
    const MuonColumns& mm = batch.muon[1 - plus];
    double pt_p = mp.pt[i], pt_m = mm.pt[i];
    if (correction != nullptr) {
      pt_p = correction->CorrectPt(mp.eta[i], pt_p, +1);
      pt_m = correction->CorrectPt(mm.eta[i], pt_m, -1);
    }
    const int ep = FindBin(eta_edges_, mp.eta[i]);
    const int em = FindBin(eta_edges_, mm.eta[i]);
    const int pp = FindBin(pt_edges_, pt_p);
    const int pm = FindBin(pt_edges_, pt_m);
    if (ep < 0 || em < 0 || pp < 0 || pm < 0) continue;
    const double m = DimuonMass(pt_p, mp.eta[i], mp.phi[i], pt_m, mm.eta[i], mm.phi[i]);
    if (!(m > 0.0)) continue;
    // Bin index = ((eta+ * npt + pt+) * neta + eta-) * npt + pt-.
    s.bin.push_back(static_cast<std::uint32_t>(((ep * npt_ + pp) * neta_ + em) * npt_ + pm));
    s.log_mass.push_back(static_cast<float>(std::log(m / reference_mass_)));
    if (simulation_) {
      s.pt_plus.push_back(pt_p);
      s.pt_minus.push_back(pt_m);
      s.gen_pt_plus.push_back(mp.gen_pt[i]);
      s.gen_pt_minus.push_back(mm.gen_pt[i]);
    }
  }
  return s;
}

void DimuonMassHistogram::Append(const Selection& s) {
  if (s.log_mass.size() != s.bin.size() || (simulation_ && s.pt_plus.size() != s.bin.size()))
    throw std::runtime_error("J/psi selection: its columns do not match the histogram's sample");
  skipped_ += s.skipped;
  for (std::size_t j = 0; j < s.bin.size(); ++j) {
    const std::uint32_t b = s.bin[j];
    if (b >= static_cast<std::uint32_t>(num_bins_))
      throw std::runtime_error("J/psi selection: bin " + std::to_string(b) + " out of range");
    bin_.push_back(b);
    log_mass_.push_back(s.log_mass[j]);
    if (!simulation_) continue;
    const double pt_p = s.pt_plus[j], pt_m = s.pt_minus[j];
    Kinematics& k = kin_[b];
    k.inv_pt_plus += 1.0 / pt_p;
    k.pt_plus += pt_p;
    k.inv_pt_minus += 1.0 / pt_m;
    k.pt_minus += pt_m;
    ++k.n;
    // The curvature resolution of each muon: dk/k = k_reco / k_gen - 1 = gen_pt / pt - 1.
    const double gp = s.gen_pt_plus[j], gm = s.gen_pt_minus[j];
    if (std::isfinite(gp) && std::isfinite(gm) && gp > 0.0 && gm > 0.0) {
      k.res2_plus += (gp / pt_p - 1.0) * (gp / pt_p - 1.0);
      k.res2_minus += (gm / pt_m - 1.0) * (gm / pt_m - 1.0);
      ++k.n_res;
    }
  }
}

namespace {
template <typename T>
void PutVector(const std::vector<T>& v, std::string* out) {
  const std::uint64_t n = v.size();
  out->append(reinterpret_cast<const char*>(&n), sizeof(n));
  out->append(reinterpret_cast<const char*>(v.data()), n * sizeof(T));
}
template <typename T>
const char* GetVector(const char* p, const char* end, std::vector<T>* v) {
  std::uint64_t n = 0;
  if (static_cast<std::size_t>(end - p) < sizeof(n))
    throw std::runtime_error("J/psi selection: too few bytes");
  std::memcpy(&n, p, sizeof(n));
  p += sizeof(n);
  if (n > static_cast<std::uint64_t>(end - p) / sizeof(T))
    throw std::runtime_error("J/psi selection: too few bytes");
  v->resize(n);
  std::memcpy(v->data(), p, n * sizeof(T));
  return p + n * sizeof(T);
}
}  // namespace

std::string DimuonMassHistogram::Selection::Bytes() const {
  std::string out;
  out.append(reinterpret_cast<const char*>(&skipped), sizeof(skipped));
  PutVector(bin, &out);
  PutVector(log_mass, &out);
  PutVector(pt_plus, &out);
  PutVector(pt_minus, &out);
  PutVector(gen_pt_plus, &out);
  PutVector(gen_pt_minus, &out);
  return out;
}

DimuonMassHistogram::Selection DimuonMassHistogram::Selection::FromBytes(const std::string& bytes) {
  Selection s;
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  if (bytes.size() < sizeof(s.skipped)) throw std::runtime_error("J/psi selection: too few bytes");
  std::memcpy(&s.skipped, p, sizeof(s.skipped));
  p += sizeof(s.skipped);
  p = GetVector(p, end, &s.bin);
  p = GetVector(p, end, &s.log_mass);
  p = GetVector(p, end, &s.pt_plus);
  p = GetVector(p, end, &s.pt_minus);
  p = GetVector(p, end, &s.gen_pt_plus);
  p = GetVector(p, end, &s.gen_pt_minus);
  const std::size_t n = s.bin.size();
  const bool sim = !s.pt_plus.empty();
  if (p != end || s.log_mass.size() != n ||
      (sim && (s.pt_plus.size() != n || s.pt_minus.size() != n || s.gen_pt_plus.size() != n ||
               s.gen_pt_minus.size() != n)))
    throw std::runtime_error("J/psi selection: inconsistent bytes");
  return s;
}

int DimuonMassHistogram::PopulatedBins() const {
  std::vector<char> any(static_cast<std::size_t>(num_bins_), 0);
  for (std::uint32_t b : bin_) any[b] = 1;
  return static_cast<int>(std::count(any.begin(), any.end(), 1));
}

std::vector<JpsiMassBin> MeasureMassScales(const DimuonMassHistogram& data,
                                           const DimuonMassHistogram& sim, int min_events,
                                           double window_sigmas, int num_threads) {
  if (data.num_bins_ != sim.num_bins_ || data.neta_ != sim.neta_ || data.npt_ != sim.npt_ ||
      !sim.simulation_)
    throw std::invalid_argument("MeasureMassScales: data and simulation binnings differ");
  const int neta = sim.neta_, npt = sim.npt_;
  const auto nbins = static_cast<std::uint32_t>(sim.num_bins_);
  // Group the log masses by bin (counting sort, stable: the order within a bin is the order
  // of the events).
  auto group = [nbins](const DimuonMassHistogram& h, std::vector<std::size_t>* offset) {
    offset->assign(nbins + 1, 0);
    for (std::uint32_t b : h.bin_) ++(*offset)[b + 1];
    std::partial_sum(offset->begin(), offset->end(), offset->begin());
    std::vector<float> sorted(h.bin_.size());
    std::vector<std::size_t> pos(offset->begin(), offset->end() - 1);
    for (std::size_t i = 0; i < h.bin_.size(); ++i) sorted[pos[h.bin_[i]]++] = h.log_mass_[i];
    return sorted;
  };
  std::vector<std::size_t> data_off, sim_off;
  const std::vector<float> data_m = group(data, &data_off);
  const std::vector<float> sim_m = group(sim, &sim_off);

  // Per-bin scale: the data's window is the simulation's shifted by the scale s, and s solves
  //   mean_data(window + s) - s = mean_sim(window),
  // a fixed point reached by iteration (contraction factor kappa = d(truncated mean)/d(shift),
  // 2 w phi(w) / (2 Phi(w) - 1) ~ 0.09 for a Gaussian at w = 2.5). The statistical error of the
  // difference of the two truncated means is inflated by 1 / (1 - kappa), kappa measured per
  // bin on the simulation (below).
  // Width: the data are the simulation scaled by lambda about the centre; lambda^2 solves
  //   var_data(window scaled by lambda) = lambda^2 var_sim(window),
  // again by iteration; its contraction factor is kappa2 = w g'(w) / (2 g(w)) with
  // g(t) = 1 - 2 t phi(t) / (2 Phi(t) - 1) (the truncated variance of a unit Gaussian), 0.26 at
  // w = 2.5, and the error of a truncated variance is sqrt((m4 - var^2) / n).
  const double w = window_sigmas;
  const double phi_w = std::exp(-0.5 * w * w) / std::sqrt(2.0 * M_PI);
  const double d_w = std::erf(w / std::sqrt(2.0));
  const double kappa = 2.0 * w * phi_w / d_w;
  const double g_w = 1.0 - 2.0 * w * phi_w / d_w;
  const double dg_w =
      -(2.0 * phi_w * (1.0 - w * w) * d_w - 2.0 * w * phi_w * 2.0 * phi_w) / (d_w * d_w);
  const double kappa2 = 0.5 * w * dg_w / g_w;
  std::vector<JpsiMassBin> fits(nbins);
  std::vector<char> ok(nbins, 0);
  auto fit_bin = [&](std::uint32_t b) {
    const std::size_t ns = sim_off[b + 1] - sim_off[b], nd = data_off[b + 1] - data_off[b];
    if (ns < static_cast<std::size_t>(min_events) || nd < static_cast<std::size_t>(min_events))
      return;
    const float* xs = &sim_m[sim_off[b]];
    const float* xd = &data_m[data_off[b]];
    const double med_s = Median(std::vector<float>(xs, xs + ns));
    std::vector<float> dev(ns);
    for (std::size_t i = 0; i < ns; ++i) dev[i] = std::abs(xs[i] - static_cast<float>(med_s));
    const double sigma = 1.4826 * Median(std::move(dev));
    if (!(sigma > 0.0)) return;
    const double lo = med_s - w * sigma, hi = med_s + w * sigma;
    const WindowStats ws = Window(xs, ns, lo, hi, true);
    double shift = Median(std::vector<float>(xd, xd + nd)) - med_s;
    WindowStats wd;
    for (int it = 0; it < 100; ++it) {
      wd = Window(xd, nd, lo + shift, hi + shift);
      const double next = wd.mean - ws.mean;
      const bool done = std::abs(next - shift) < 1e-10;
      shift = next;
      if (done) break;
    }
    wd = Window(xd, nd, lo + shift, hi + shift);
    if (ws.n < min_events || wd.n < min_events || !(ws.var > 0.0)) return;
    JpsiMassBin& f = fits[b];
    const std::uint32_t pm = b % npt, em = (b / npt) % neta, pp = (b / npt / neta) % npt,
                        ep = b / npt / neta / npt;
    f.eta_plus = static_cast<int>(ep);
    f.pt_plus = static_cast<int>(pp);
    f.eta_minus = static_cast<int>(em);
    f.pt_minus = static_cast<int>(pm);
    f.n_data = wd.n;
    f.n_sim = ws.n;
    f.scale = shift;
    // kappa of this bin's shape from the simulation: d(truncated mean)/d(shift) =
    // [(hi - mean) f(hi) + (mean - lo) f(lo)] / n_window, the density f at the edges counted in
    // +-0.25 sigma (heavy-tailed shapes such as the Z line shape have a larger kappa than the
    // Gaussian's); bounded to [kappa_gauss / 2, 0.6] against edge-count fluctuations.
    const double delta = 0.25 * sigma;
    const double f_hi = Window(xs, ns, hi - delta, hi + delta).n / (2.0 * delta);
    const double f_lo = Window(xs, ns, lo - delta, lo + delta).n / (2.0 * delta);
    const double kappa_bin =
        std::clamp(((hi - ws.mean) * f_hi + (ws.mean - lo) * f_lo) / static_cast<double>(ws.n),
                   0.5 * kappa, 0.6);
    f.error = std::sqrt(wd.var / wd.n + ws.var / ws.n) / (1.0 - kappa_bin);
    const DimuonMassHistogram::Kinematics& k = sim.kin_[b];
    const double inv_n = 1.0 / static_cast<double>(k.n);
    f.inv_pt_plus = k.inv_pt_plus * inv_n;
    f.pt_mean_plus = k.pt_plus * inv_n;
    f.inv_pt_minus = k.inv_pt_minus * inv_n;
    f.pt_mean_minus = k.pt_minus * inv_n;
    f.res_fraction_plus = k.n_res > 0 && k.res2_plus + k.res2_minus > 0.0
                              ? k.res2_plus / (k.res2_plus + k.res2_minus)
                              : 0.5;
    // Width ratio, the data window centred where the simulation's window mean moved.
    const double centre = ws.mean + shift;
    double lambda2 = 1.0;
    WindowStats wv;
    for (int it = 0; it < 100; ++it) {
      const double l = std::sqrt(lambda2);
      wv = Window(xd, nd, centre + l * (lo - ws.mean), centre + l * (hi - ws.mean), true);
      const double next = wv.var / ws.var;
      const bool done = !(next > 0.0) || std::abs(next - lambda2) < 1e-12;
      if (next > 0.0) lambda2 = next;
      if (done) break;
    }
    if (wv.n >= min_events && wv.var > 0.0) {
      f.width_ratio2 = lambda2;
      // The relative error of a truncated variance is sqrt(k / n) with k = (m4 - var^2) / var^2;
      // k from the simulation and no factor lambda^2: an error that grows with the measured
      // value would bias the weighted fit downwards (a few per cent in small bins).
      const double k = std::max(0.0, (ws.m4 - ws.var * ws.var) / (ws.var * ws.var));
      f.width_ratio2_error =
          std::sqrt(k * (1.0 / static_cast<double>(wv.n) + 1.0 / static_cast<double>(ws.n))) /
          (1.0 - kappa2);
    }
    ok[b] = f.error > 0.0 ? 1 : 0;
  };
  tbb::task_arena arena(num_threads > 0 ? num_threads : tbb::task_arena::automatic);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, nbins, 64),
                      [&](const tbb::blocked_range<std::uint32_t>& r) {
                        for (std::uint32_t b = r.begin(); b < r.end(); ++b) fit_bin(b);
                      });
  });
  std::vector<JpsiMassBin> used;
  for (std::uint32_t b = 0; b < nbins; ++b)
    if (ok[b]) used.push_back(fits[b]);
  return used;
}

std::vector<double> MeasureResolution(const std::vector<JpsiMassBin>& bins, int num_eta_bins,
                                      JpsiCalibrationSummary* summary) {
  const auto t0 = Clock::now();
  const int n = num_eta_bins;
  // Weighted linear least squares in eps (one per eta bin): y = f+ eps_i + (1 - f+) eps_j.
  Eigen::MatrixXd normal = Eigen::MatrixXd::Zero(n, n);
  Eigen::VectorXd rhs = Eigen::VectorXd::Zero(n);
  std::vector<char> used(n, 0);
  int nbins = 0;
  for (const JpsiMassBin& b : bins) {
    if (!(b.width_ratio2_error > 0.0)) continue;
    const double wgt = 1.0 / (b.width_ratio2_error * b.width_ratio2_error);
    Eigen::VectorXd row = Eigen::VectorXd::Zero(n);
    row[b.eta_plus] += b.res_fraction_plus;
    row[b.eta_minus] += 1.0 - b.res_fraction_plus;
    normal += wgt * row * row.transpose();
    rhs += wgt * (b.width_ratio2 - 1.0) * row;
    used[b.eta_plus] = used[b.eta_minus] = 1;
    ++nbins;
  }
  // Unused bins: a unit diagonal keeps the system regular (their eps stays 0 +- 0).
  for (int i = 0; i < n; ++i)
    if (!used[i]) normal(i, i) = 1.0;
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(normal);
  JpsiCalibrationSummary& s = *summary;
  s.resolution_scale.assign(n, 1.0);
  s.resolution_scale_error.assign(n, 0.0);
  std::vector<double> out(n, 0.0);
  if (ldlt.info() != Eigen::Success || nbins == 0) {
    s.resolution_seconds = Since(t0);
    return out;
  }
  const Eigen::VectorXd eps = ldlt.solve(rhs);
  const Eigen::MatrixXd cov = ldlt.solve(Eigen::MatrixXd::Identity(n, n));
  double chi2 = 0.0;
  for (const JpsiMassBin& b : bins) {
    if (!(b.width_ratio2_error > 0.0)) continue;
    const double pred =
        b.res_fraction_plus * eps[b.eta_plus] + (1.0 - b.res_fraction_plus) * eps[b.eta_minus];
    chi2 += std::pow((b.width_ratio2 - 1.0 - pred) / b.width_ratio2_error, 2);
  }
  int nused = 0;
  for (int i = 0; i < n; ++i) {
    if (!used[i]) continue;
    ++nused;
    const double rho = std::sqrt(std::max(1e-6, 1.0 + eps[i]));
    const double err = std::sqrt(std::max(0.0, cov(i, i))) / (2.0 * rho);
    s.resolution_scale[i] = rho;
    s.resolution_scale_error[i] = err;
    out[i] = std::max(std::abs(rho - 1.0), err);
  }
  s.resolution_chi2 = chi2;
  s.resolution_ndf = nbins - nused;
  s.resolution_seconds = Since(t0);
  return out;
}

void CheckDimuonEventFile(const EventFileInfo& info, SampleKind role, const std::string& process,
                          const std::string& flag) {
  if (info.metadata.sample != role)
    throw io::InputError(info.path + ": the file holds " + ToString(info.metadata.sample) +
                         " events (attribute 'sample'), but was given as " + ToString(role) + " (" +
                         flag + ")");
  if (!info.metadata.processes.empty() && info.metadata.processes != process)
    throw io::InputError(info.path + ": attribute 'process' is '" + info.metadata.processes +
                         "', but must be '" + process + "' (given with " + flag +
                         "; e.g. lepus generate --process " + process + ")");
}

// ---- the J/psi calibration

CalibrationParameters CalibrateJpsi(const JpsiCalibrationOptions& options,
                                    JpsiCalibrationSummary* summary,
                                    const CalibrationProgress& progress) {
  std::string error;
  if (!options.IsValid(&error)) throw std::invalid_argument("J/psi calibration options: " + error);
  JpsiCalibrationSummary& s = *summary;
  s = JpsiCalibrationSummary{};
  const int neta = static_cast<int>(options.eta_edges.size()) - 1;
  const int npt = static_cast<int>(options.pt_edges.size()) - 1;

  const auto t0 = Clock::now();
  DimuonMassHistogram data(options.eta_edges, options.pt_edges, kJpsiMass, false);
  DimuonMassHistogram sim(options.eta_edges, options.pt_edges, kJpsiMass, true);
  s.from_files = !options.data_files.empty();
  // The batches, fixed by the input: generated ranges (data, then simulation) or the files'
  // chunks (data files, then simulation files), batch_events each. Batch i is rank i % ranks's
  // (JpsiCalibrationOptions::rank); every rank walks all of them in order.
  struct Source {
    bool is_data;
    std::uint64_t total;                       // events of this source
    std::unique_ptr<EventFileReader> reader;   // files
    const JpsiGenerator* generator = nullptr;  // generation
  };
  std::vector<Source> sources;
  std::unique_ptr<JpsiGenerator> data_gen, sim_gen;
  std::int64_t total = 0;
  if (s.from_files) {
    // Open every file first: a missing or malformed file fails before any work is done.
    for (int role = 0; role < 2; ++role) {
      const auto& files = role == 0 ? options.data_files : options.sim_files;
      for (const std::string& f : files) {
        auto reader = std::make_unique<EventFileReader>(f);
        CheckDimuonEventFile(reader->info(),
                             role == 0 ? SampleKind::kData : SampleKind::kSimulation, "jpsi",
                             role == 0 ? "--data-events" : "--events");
        const auto n = static_cast<std::uint64_t>(reader->SizeHint());
        sources.push_back({role == 0, n, std::move(reader), nullptr});
      }
    }
  } else {
    data_gen = std::make_unique<JpsiGenerator>(options.generator, options.data_detector,
                                               SampleKind::kData, options.seed);
    sim_gen = std::make_unique<JpsiGenerator>(options.generator, options.sim_detector,
                                              SampleKind::kSimulation, options.seed);
    s.data_generated = options.num_data_events;
    s.sim_generated = static_cast<std::uint64_t>(
        std::llround(options.sim_factor * static_cast<double>(options.num_data_events)));
    if (s.sim_generated == 0) s.sim_generated = 1;
    sources.push_back({true, s.data_generated, nullptr, data_gen.get()});
    sources.push_back({false, s.sim_generated, nullptr, sim_gen.get()});
  }
  for (const Source& src : sources) total += static_cast<std::int64_t>(src.total);
  const int ranks = std::max(options.ranks, 1);
  const bool root = options.rank == 0;
  struct Pending {
    int owner;
    bool is_data;
    std::uint64_t events;
  };
  std::vector<Pending> pending;  // rank 0: other ranks' batches not yet received
  // Progress: files count every event read of both roles; generation counts per sample.
  std::int64_t done = 0;
  std::uint64_t done_sample[2] = {0, 0};  // [is_data]
  auto count = [&](bool is_data, std::uint64_t n) {
    done += static_cast<std::int64_t>(n);
    done_sample[is_data ? 1 : 0] += n;
    if (!progress) return;
    if (s.from_files)
      progress(is_data ? "data (files)" : "simulation (files)", static_cast<std::uint64_t>(done),
               static_cast<std::uint64_t>(total));
    else
      progress(is_data ? "data" : "simulation", done_sample[is_data ? 1 : 0],
               is_data ? s.data_generated : s.sim_generated);
  };
  auto receive_pending = [&] {
    for (const Pending& p : pending) {
      (p.is_data ? data : sim)
          .Append(DimuonMassHistogram::Selection::FromBytes(options.receive_selection(p.owner)));
      count(p.is_data, p.events);
    }
    pending.clear();
  };
  EventBatch batch;
  std::int64_t index = 0;
  for (Source& src : sources) {
    DimuonMassHistogram& hist = src.is_data ? data : sim;
    std::uint64_t* read = src.is_data ? &s.data_generated : &s.sim_generated;
    for (std::uint64_t first = 0; first < src.total; first += options.batch_events, ++index) {
      const std::uint64_t n = std::min(options.batch_events, src.total - first);
      const int owner = static_cast<int>(index % ranks);
      if (s.from_files) *read += n;
      if (owner != options.rank) {
        // Another rank's batch: a file is moved past (its whole-file checks only).
        if (src.reader) src.reader->Skip(n);
        if (root) pending.push_back({owner, src.is_data, n});
        continue;
      }
      if (src.reader) {
        src.reader->Next(&batch, n);
      } else {
        batch.Clear();
        src.generator->Generate(first, n, &batch, options.num_threads);
      }
      DimuonMassHistogram::Selection selected = hist.Select(batch);
      if (!root) {
        options.send_selection(selected.Bytes());
        continue;
      }
      receive_pending();
      hist.Append(selected);
      count(src.is_data, n);
    }
  }
  if (!root) return CalibrationParameters{};
  receive_pending();
  s.data_selected = data.selected();
  s.sim_selected = sim.selected();
  s.data_skipped = data.skipped();
  s.sim_skipped = sim.skipped();
  s.generate_seconds = Since(t0);

  const auto t1 = Clock::now();
  const std::vector<JpsiMassBin> used = MeasureMassScales(
      data, sim, options.min_events_per_bin, options.window_sigmas, options.num_threads);
  s.bins_total = sim.PopulatedBins();
  s.bins_used = static_cast<int>(used.size());
  s.scale_fit_seconds = Since(t1);

  const JpsiCalibrationSummary keep = s;
  CalibrationParameters c = FitScaleParameters(used, options.eta_edges, options, &s);
  s.data_generated = keep.data_generated;
  s.sim_generated = keep.sim_generated;
  s.data_selected = keep.data_selected;
  s.sim_selected = keep.sim_selected;
  s.data_skipped = keep.data_skipped;
  s.sim_skipped = keep.sim_skipped;
  s.from_files = keep.from_files;
  s.bins_total = keep.bins_total;
  s.bins_used = keep.bins_used;
  s.generate_seconds = keep.generate_seconds;
  s.scale_fit_seconds = keep.scale_fit_seconds;
  if (options.measure_resolution) c.resolution_uncertainty = MeasureResolution(s.bins, neta, &s);
  std::ostringstream d;
  if (s.from_files)
    d << "J/psi calibration, " << s.data_generated << " data and " << s.sim_generated
      << " simulated events read from " << options.data_files.size() + options.sim_files.size()
      << " file(s)";
  else
    d << "J/psi calibration, " << options.num_data_events << " data and " << s.sim_generated
      << " simulated J/psi generated, seed " << options.seed;
  d << ", " << neta << " eta x " << npt << " pT bins, " << s.bins_used << " mass bins used";
  c.description = d.str();
  return c;
}

std::string JpsiCalibrationSummary::BriefReport() const {
  std::ostringstream os;
  os << "J/psi calibration: " << ToString(status) << ", " << bins_used << "/" << bins_total
     << " mass bins, " << num_parameters << " parameters, " << iterations
     << " Ceres iterations, chi2/ndf = " << chi2 << "/" << ndf;
  return os.str();
}

std::string JpsiCalibrationSummary::FullReport() const {
  std::ostringstream os;
  os << BriefReport() << "\n"
     << "  status: " << message << "\n"
     << "  events: data " << data_selected << "/" << data_generated << " selected, simulation "
     << sim_selected << "/" << sim_generated << (from_files ? " (read from files" : "");
  if (from_files)
    os << "; skipped without two opposite-charge muons: data " << data_skipped << ", simulation "
       << sim_skipped << ")";
  os << "\n"
     << "  cost: initial " << initial_cost << ", final " << final_cost << "\n"
     << std::fixed << std::setprecision(3) << "  time: generation " << generate_seconds
     << " s, mass scales " << scale_fit_seconds << " s, global fit " << global_fit_seconds
     << " s, covariance " << covariance_seconds << " s";
  if (!resolution_scale.empty()) os << ", resolution " << resolution_seconds << " s";
  os << "\n  Ceres: " << ceres_brief << "\n";
  if (!resolution_scale.empty())
    os << std::defaultfloat << "  resolution: width fit chi2/ndf = " << resolution_chi2 << "/"
       << resolution_ndf << "\n";
  return os.str();
}

}  // namespace lepus::calibration
