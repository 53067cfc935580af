// The Z -> mu mu closure of a momentum calibration (zclosure.h): Z events through the same
// mass-scale measurement and global fit as the J/psi calibration, the calibration's covariance
// propagated into the residuals, and the closure uncertainties.
#include "lepus/calibration/zclosure.h"

#include "lepus/models/internal/timing.h"
#include "lepus/models/internal/validation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <boost/math/special_functions/gamma.hpp>

#include "lepus/models/event_file.h"
#include "lepus/models/generator.h"

namespace lepus::calibration {

// The event record, the detector and the calibration model of lepus::models.
using namespace lepus::models;

namespace {

using detail::Clock;
using detail::Fail;
using detail::Since;
using detail::ValidFilePair;
using detail::ValidMember;

double PValue(double chi2, int ndf) {
  if (ndf <= 0 || !(chi2 >= 0.0)) return -1.0;
  return boost::math::gamma_q(0.5 * ndf, 0.5 * chi2);
}

// The chi2 r^T C^-1 r, or -1 when C is not positive definite.
double Chi2(const Eigen::VectorXd& r, const Eigen::MatrixXd& c) {
  const Eigen::LLT<Eigen::MatrixXd> llt(c);
  if (llt.info() != Eigen::Success) return -1.0;
  return r.dot(llt.solve(r));
}

}  // namespace

ScaleFitOptions ZClosureOptions::DefaultFit() {
  ScaleFitOptions f;
  f.fix_e = true;
  return f;
}

ZClosureOptions ZClosureOptions::Light() {
  ZClosureOptions o;
  o.num_data_events = 2000000;
  o.fit.linear_solver = CalibrationLinearSolver::kDenseQr;
  return o;
}

bool ZClosureOptions::IsValid(std::string* error) const {
  if (pt_edges.size() < 2) return Fail(error, "pt_edges.size()", pt_edges.size(), ">= 2");
  for (std::size_t i = 0; i < pt_edges.size(); ++i) {
    const std::string at = "pt_edges[" + std::to_string(i) + "]";
    if (!(pt_edges[i] >= 0.0 && pt_edges[i] < 1e4))
      return Fail(error, at, pt_edges[i], "in [0, 1e4)");
    if (i > 0 && !(pt_edges[i] > pt_edges[i - 1])) {
      std::ostringstream c;
      c << "> pt_edges[" << i - 1 << "] (" << pt_edges[i - 1] << "): edges must increase";
      return Fail(error, at, pt_edges[i], c.str());
    }
  }
  if (num_data_events == 0) return Fail(error, "num_data_events", 0, "> 0");
  if (!(sim_factor > 0.0 && std::isfinite(sim_factor)))
    return Fail(error, "sim_factor", sim_factor, "> 0");
  if (min_events_per_bin < 10)
    return Fail(error, "min_events_per_bin", min_events_per_bin, ">= 10");
  if (!(window_sigmas >= 1.0 && std::isfinite(window_sigmas)))
    return Fail(error, "window_sigmas", window_sigmas, ">= 1");
  if (fit.max_iterations <= 0) return Fail(error, "fit.max_iterations", fit.max_iterations, "> 0");
  if (!(fit.function_tolerance > 0.0))
    return Fail(error, "fit.function_tolerance", fit.function_tolerance, "> 0");
  if (!(lep_mass_uncertainty_mev >= 0.0 && lep_mass_uncertainty_mev < 1000.0))
    return Fail(error, "lep_mass_uncertainty_mev", lep_mass_uncertainty_mev, "in [0, 1000)");
  if (num_threads < 0) return Fail(error, "num_threads", num_threads, ">= 0");
  if (batch_events == 0) return Fail(error, "batch_events", 0, "> 0");
  if (!ValidFilePair(data_files, sim_files, error)) return false;
  if (!ValidMember(data_detector, "data_detector", error)) return false;
  if (!ValidMember(sim_detector, "sim_detector", error)) return false;
  return true;
}

CalibrationParameters RunZClosure(const CalibrationParameters& calibration,
                                  const ZClosureOptions& options, ZClosureSummary* summary,
                                  const CalibrationProgress& progress) {
  std::string error;
  if (!options.IsValid(&error)) throw std::invalid_argument("Z closure options: " + error);
  if (!calibration.IsValid(&error)) throw std::invalid_argument("Z closure: " + error);
  // A failed fit is refused; an all-zero covariance is allowed here (a calibration known
  // exactly, e.g. the truth in tests): the closure propagates it as zero, and the producers
  // refuse the output unless it gains a covariance (docs/calibration.md, "Fit status").
  if (!calibration.IsUsable(&error, /*require_uncertainty=*/false))
    throw std::invalid_argument("Z closure: " + error);
  const std::vector<double>& edges = calibration.eta_edges;
  if (edges.front() < kScaleEtaMin - 1e-9 || edges.back() > kScaleEtaMax + 1e-9)
    throw std::invalid_argument("Z closure: the calibration's eta_edges span [" +
                                std::to_string(edges.front()) + ", " +
                                std::to_string(edges.back()) + "], but must lie in [-2.4, 2.4]");
  ZClosureSummary& z = *summary;
  z = ZClosureSummary{};
  JpsiCalibrationSummary& s = z.fit;
  const int neta = calibration.num_bins();

  // ---- events: data corrected with the calibration, simulation as is.
  const auto t0 = Clock::now();
  DimuonMassHistogram data(edges, options.pt_edges, kZClosureMass, false);
  DimuonMassHistogram sim(edges, options.pt_edges, kZClosureMass, true);
  s.from_files = !options.data_files.empty();
  if (s.from_files) {
    struct Input {
      std::unique_ptr<EventFileReader> reader;
      bool is_data;
    };
    std::vector<Input> inputs;
    std::int64_t total = 0;
    for (int role = 0; role < 2; ++role)
      for (const std::string& f : role == 0 ? options.data_files : options.sim_files) {
        auto reader = std::make_unique<EventFileReader>(f);
        CheckDimuonEventFile(reader->info(),
                             role == 0 ? SampleKind::kData : SampleKind::kSimulation, "zmumu",
                             role == 0 ? "--data-events" : "--events");
        total += reader->SizeHint();
        inputs.push_back({std::move(reader), role == 0});
      }
    EventBatch batch;
    std::int64_t done = 0;
    for (Input& in : inputs) {
      std::size_t n;
      while ((n = in.reader->Next(&batch, options.batch_events)) > 0) {
        if (in.is_data) {
          data.Add(batch, &calibration);
          s.data_generated += n;
        } else {
          sim.Add(batch);
          s.sim_generated += n;
        }
        done += static_cast<std::int64_t>(n);
        if (progress)
          progress(in.is_data ? "Z data (files)" : "Z simulation (files)",
                   static_cast<std::uint64_t>(done), static_cast<std::uint64_t>(total));
      }
    }
  } else {
    GeneratorConfig dc = GeneratorConfig::DefaultData();
    dc.processes = {Process::kZMuMu};
    dc.detector = options.data_detector;
    dc.seed = options.seed;
    dc.filter = EventFilter{2, options.pt_edges.front()};
    dc.luminosity_pb = static_cast<double>(options.num_data_events) /
                       (dc.physics.cross_section_pb[static_cast<int>(Process::kZMuMu)] *
                        dc.physics.yield_factor[static_cast<int>(Process::kZMuMu)]);
    GeneratorConfig sc;
    sc.processes = {Process::kZMuMu};
    sc.detector = options.sim_detector;
    sc.seed = options.seed + 1;
    sc.filter = dc.filter;
    sc.num_events = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(
               std::llround(options.sim_factor * static_cast<double>(options.num_data_events))));
    const Generator data_gen(dc);
    const Generator sim_gen(sc);
    auto fill = [&](const Generator& gen, const std::string& stage, DimuonMassHistogram* hist,
                    const CalibrationParameters* correction, std::uint64_t* generated) {
      const std::uint64_t total = gen.NumEvents(Process::kZMuMu);
      *generated = total;
      EventBatch batch;
      for (std::uint64_t first = 0; first < total; first += options.batch_events) {
        const std::uint64_t n = std::min(options.batch_events, total - first);
        batch.Clear();
        gen.GenerateParallel(Process::kZMuMu, first, n, &batch, options.num_threads);
        hist->Add(batch, correction);
        if (progress) progress(stage, first + n, total);
      }
    };
    fill(data_gen, "Z data", &data, &calibration, &s.data_generated);
    fill(sim_gen, "Z simulation", &sim, nullptr, &s.sim_generated);
  }
  s.data_selected = data.selected();
  s.sim_selected = sim.selected();
  s.data_skipped = data.skipped();
  s.sim_skipped = sim.skipped();
  s.generate_seconds = Since(t0);

  // ---- mass scales and the residual fit (the J/psi code path, e fixed).
  const auto t1 = Clock::now();
  const std::vector<JpsiMassBin> bins = MeasureMassScales(
      data, sim, options.min_events_per_bin, options.window_sigmas, options.num_threads);
  const double scale_seconds = Since(t1);
  ScaleFitOptions fo = options.fit;
  fo.num_threads = options.num_threads;
  const JpsiCalibrationSummary keep = s;
  const CalibrationParameters res = FitScaleParameters(bins, edges, fo, &s);
  s.data_generated = keep.data_generated;
  s.sim_generated = keep.sim_generated;
  s.data_selected = keep.data_selected;
  s.sim_selected = keep.sim_selected;
  s.data_skipped = keep.data_skipped;
  s.sim_skipped = keep.sim_skipped;
  s.from_files = keep.from_files;
  s.generate_seconds = keep.generate_seconds;
  s.scale_fit_seconds = scale_seconds;
  s.bins_total = sim.PopulatedBins();
  s.bins_used = static_cast<int>(bins.size());

  // ---- residuals, their covariances and the consistency with zero.
  const auto t2 = Clock::now();
  z.residual.assign(neta, ScaleBias{});
  z.stat_error.assign(neta, ScaleBias{});
  z.calibration_error.assign(neta, ScaleBias{});
  z.used.assign(neta, 0);
  for (const JpsiMassBin& b : bins) z.used[b.eta_plus] = z.used[b.eta_minus] = 1;
  // Columns: (A, M) of each used eta bin.
  std::vector<int> col(neta, -1);
  int m = 0;
  for (int i = 0; i < neta; ++i)
    if (z.used[i]) col[i] = m++;
  const int dim = 2 * m;
  if (dim == 0 || s.status != CalibrationFitStatus::kConverged) {
    z.propagation_seconds = Since(t2);
    CalibrationParameters out = calibration;
    // Without the residual fit there is no closure uncertainty: the output must not pass for a
    // complete calibration (consumers refuse a status other than "converged").
    out.status =
        ToString(s.status == CalibrationFitStatus::kConverged ? CalibrationFitStatus::kNotConverged
                                                              : s.status);
    out.status_message = "Z closure: " + (dim == 0 ? std::string("no mass bin to fit") : s.message);
    return out;
  }
  // First-order model of a bin: s = -(dk+ + dk-)/2 with dk+ = A_i - e_i <1/pT+> + M_i <pT+>,
  // dk- = A_j - e_j <1/pT-> - M_j <pT->. h: derivatives in the residual parameters (A, M);
  // g: in the calibration's (A, e, M) (a calibration error dp leaves the residual -dp; the sign
  // does not matter for the covariance).
  Eigen::MatrixXd normal = Eigen::MatrixXd::Zero(dim, dim);
  Eigen::MatrixXd cross = Eigen::MatrixXd::Zero(dim, 3 * neta);
  for (const JpsiMassBin& b : bins) {
    const double w = 1.0 / (b.error * b.error);
    Eigen::VectorXd h = Eigen::VectorXd::Zero(dim);
    Eigen::VectorXd g = Eigen::VectorXd::Zero(3 * neta);
    h[2 * col[b.eta_plus]] += -0.5;
    h[2 * col[b.eta_plus] + 1] += -0.5 * b.pt_mean_plus;
    h[2 * col[b.eta_minus]] += -0.5;
    h[2 * col[b.eta_minus] + 1] += 0.5 * b.pt_mean_minus;
    g[3 * b.eta_plus] += -0.5;
    g[3 * b.eta_plus + 1] += 0.5 * b.inv_pt_plus;
    g[3 * b.eta_plus + 2] += -0.5 * b.pt_mean_plus;
    g[3 * b.eta_minus] += -0.5;
    g[3 * b.eta_minus + 1] += 0.5 * b.inv_pt_minus;
    g[3 * b.eta_minus + 2] += 0.5 * b.pt_mean_minus;
    normal.selfadjointView<Eigen::Lower>().rankUpdate(h, w);
    cross += w * h * g.transpose();
  }
  normal = normal.selfadjointView<Eigen::Lower>();
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(normal);
  Eigen::MatrixXd c_cal = Eigen::MatrixXd::Zero(dim, dim);
  if (ldlt.info() == Eigen::Success) {
    const Eigen::MatrixXd k = ldlt.solve(cross);  // d(residual) / d(calibration parameters)
    c_cal = k * calibration.covariance * k.transpose();
    c_cal = (0.5 * (c_cal + c_cal.transpose())).eval();
  }
  // The Z statistical covariance of (A, M) from the Ceres covariance.
  Eigen::MatrixXd c_z(dim, dim);
  Eigen::VectorXd r(dim);
  const int pidx[2] = {0, 2};
  for (int i = 0; i < neta; ++i) {
    if (col[i] < 0) continue;
    r[2 * col[i]] = res.params[i].A;
    r[2 * col[i] + 1] = res.params[i].M;
    for (int j = 0; j < neta; ++j) {
      if (col[j] < 0) continue;
      for (int a = 0; a < 2; ++a)
        for (int bb = 0; bb < 2; ++bb)
          c_z(2 * col[i] + a, 2 * col[j] + bb) = res.covariance(3 * i + pidx[a], 3 * j + pidx[bb]);
    }
  }
  const Eigen::MatrixXd c_tot = c_z + c_cal;
  for (int i = 0; i < neta; ++i) {
    if (col[i] < 0) continue;
    const int a = 2 * col[i], mm = a + 1;
    z.residual[i] = {r[a], 0.0, r[mm]};
    z.stat_error[i] = {std::sqrt(std::max(0.0, c_z(a, a))), 0.0,
                       std::sqrt(std::max(0.0, c_z(mm, mm)))};
    z.calibration_error[i] = {std::sqrt(std::max(0.0, c_cal(a, a))), 0.0,
                              std::sqrt(std::max(0.0, c_cal(mm, mm)))};
    for (int k : {a, mm})
      if (c_tot(k, k) > 0.0)
        z.max_abs_pull = std::max(z.max_abs_pull, std::abs(r[k]) / std::sqrt(c_tot(k, k)));
  }
  z.ndf = dim;
  z.chi2_stat = Chi2(r, c_z);
  z.chi2_total = Chi2(r, c_tot);
  z.p_value_stat = PValue(z.chi2_stat, z.ndf);
  z.p_value_total = PValue(z.chi2_total, z.ndf);
  z.propagation_seconds = Since(t2);

  // ---- the closure uncertainties.
  CalibrationParameters out = calibration;
  out.closure.per_bin.assign(neta, ScaleBias{});
  // The residual beyond the calibration's own propagated uncertainty (already covered by its
  // statistical nuisances), and at least the Z statistical precision.
  auto closure = [](double r, double sigma_z, double sigma_cal) {
    const double v = std::max(sigma_z, std::sqrt(std::max(0.0, r * r - sigma_cal * sigma_cal)));
    return r < 0.0 ? -v : v;
  };
  for (int i = 0; i < neta; ++i) {
    if (!z.used[i]) continue;
    out.closure.per_bin[i] = {
        closure(z.residual[i].A, z.stat_error[i].A, z.calibration_error[i].A), 0.0,
        closure(z.residual[i].M, z.stat_error[i].M, z.calibration_error[i].M)};
  }
  out.closure.global = ScaleBias{options.lep_mass_uncertainty_mev * 1e-3 / kZClosureMass, 0.0, 0.0};
  std::ostringstream d;
  d << "; Z closure: " << s.data_generated << " data and " << s.sim_generated << " simulated Z "
    << (s.from_files ? "read" : "generated") << ", chi2/ndf = " << z.chi2_total << "/" << z.ndf
    << " (Z stat + calibration), closure = sign(r) max(sigma_Z, sqrt(r^2 - sigma_cal^2)) per bin";
  out.description += d.str();
  return out;
}

std::string ZClosureSummary::BriefReport() const {
  std::ostringstream os;
  os << "Z closure: " << ToString(fit.status) << ", " << fit.bins_used << "/" << fit.bins_total
     << " mass bins, residual chi2/ndf = " << chi2_stat << "/" << ndf
     << " (Z stat, p = " << p_value_stat << "), " << chi2_total << "/" << ndf
     << " (Z stat + calibration, p = " << p_value_total << "), max |pull| " << max_abs_pull;
  return os.str();
}

std::string ZClosureSummary::FullReport(const std::vector<double>& eta_edges) const {
  std::ostringstream os;
  std::string fit_report = fit.FullReport();
  const std::string prefix = "J/psi calibration:";
  if (fit_report.rfind(prefix, 0) == 0) fit_report.replace(0, prefix.size(), "  residual fit:");
  os << BriefReport() << "\n" << fit_report;
  os << "  propagation of the calibration covariance: " << std::fixed << std::setprecision(3)
     << propagation_seconds << " s\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%4s %13s %32s %7s %32s %7s\n", "bin", "eta",
                "residual A (Z stat, calib)", "pull", "residual M [1/GeV] (Z stat, calib)", "pull");
  os << line;
  for (std::size_t b = 0; b < residual.size(); ++b) {
    if (!used[b]) {
      std::snprintf(line, sizeof(line), "%4zu [%5.2f,%5.2f] %32s\n", b, eta_edges[b],
                    eta_edges[b + 1], "no mass bins");
      os << line;
      continue;
    }
    auto pull = [](double r, double a, double c) {
      const double t = std::sqrt(a * a + c * c);
      return t > 0.0 ? r / t : 0.0;
    };
    char va[64], vm[64];
    std::snprintf(va, sizeof(va), "%9.2e (%7.1e, %7.1e)", residual[b].A, stat_error[b].A,
                  calibration_error[b].A);
    std::snprintf(vm, sizeof(vm), "%9.2e (%7.1e, %7.1e)", residual[b].M, stat_error[b].M,
                  calibration_error[b].M);
    std::snprintf(line, sizeof(line), "%4zu [%5.2f,%5.2f] %32s %7.2f %32s %7.2f\n", b, eta_edges[b],
                  eta_edges[b + 1], va,
                  pull(residual[b].A, stat_error[b].A, calibration_error[b].A), vm,
                  pull(residual[b].M, stat_error[b].M, calibration_error[b].M));
    os << line;
  }
  return os.str();
}

}  // namespace lepus::calibration
