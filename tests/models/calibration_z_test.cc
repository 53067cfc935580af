// The missing pieces of the muon momentum calibration (models/zclosure.h,
// models/jpsi_calibration.h): the Z -> mu mu closure (residuals consistent with zero for a right
// calibration, an injected error detected), the resolution measurement (a data resolution scale
// recovered), J/psi events read from event files giving the calibration of the generated events
// bit for bit, file-role errors, and the closure and resolution fields through the file and the
// nuisances.
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/calibration/jpsi.h"
#include "lepus/calibration/jpsi_calibration.h"
#include "lepus/calibration/zclosure.h"
#include "lepus/io/errors.h"
#include "lepus/models/calibration.h"
#include "lepus/models/event_file.h"
#include "test_support.h"

namespace {

using namespace lepus::models;
using namespace lepus::calibration;
using lepus::test::TempPath;

// The default data bias made constant within the given eta bins.
ScaleTable BinnedTruth(const std::vector<double>& edges) {
  const std::vector<ScaleBias> coarse =
      TruthOnBins(DetectorParams::DefaultData().scale_bias, edges);
  ScaleTable t{};
  for (int f = 0; f < kScaleEtaBins; ++f) {
    const double c = ScaleEtaBinCenter(f);
    for (std::size_t b = 0; b + 1 < edges.size(); ++b)
      if (c >= edges[b] && c < edges[b + 1]) t[f] = coarse[b];
  }
  return t;
}

// The light J/psi calibration (12 eta bins, 1M data J/psi; ~2 s).
struct LightJpsi {
  JpsiCalibrationOptions options;
  JpsiCalibrationSummary summary;
  CalibrationParameters calibration;
};
const LightJpsi& Jpsi() {
  static const LightJpsi run = [] {
    LightJpsi r;
    r.options = JpsiCalibrationOptions::Light();
    r.options.num_data_events = 1000000;
    r.options.seed = 21;
    r.options.num_threads = 2;
    r.options.data_detector.scale_bias = BinnedTruth(r.options.eta_edges);
    r.calibration = CalibrateJpsi(r.options, &r.summary);
    return r;
  }();
  return run;
}

ZClosureOptions LightZ(const JpsiCalibrationOptions& jpsi) {
  ZClosureOptions o = ZClosureOptions::Light();
  o.num_data_events = 1000000;
  o.seed = 5;
  o.num_threads = 2;
  o.data_detector.scale_bias = BinnedTruth(jpsi.eta_edges);
  return o;
}

// A calibration equal to the truth (zero covariance).
CalibrationParameters TrueCalibration(const std::vector<double>& edges) {
  CalibrationParameters c;
  c.eta_edges = edges;
  c.params = TruthOnBins(BinnedTruth(edges), edges);
  c.covariance = Eigen::MatrixXd::Zero(3 * c.num_bins(), 3 * c.num_bins());
  return c;
}

}  // namespace

TEST_CASE("z closure options: defaults valid, bad values named") {
  std::string e;
  CHECK(ZClosureOptions{}.IsValid(&e));
  CHECK(ZClosureOptions::Light().IsValid(&e));
  CHECK(ZClosureOptions{}.fit.fix_e);
  ZClosureOptions o;
  o.pt_edges = {25.0, 20.0};
  CHECK_FALSE(o.IsValid(&e));
  CHECK(e == "pt_edges[1] is 20, but must be > pt_edges[0] (25): edges must increase");
  o = ZClosureOptions{};
  o.data_files = {"d.h5"};
  CHECK_FALSE(o.IsValid(&e));
  CHECK(e ==
        "sim_files.size() is 0, but must be > 0 when data_files is given (read both samples "
        "from files or generate both)");
  o = ZClosureOptions{};
  o.min_events_per_bin = 2;
  ZClosureSummary s;
  CHECK_THROWS_WITH_AS(RunZClosure(TrueCalibration({-2.4, 0.0, 2.4}), o, &s),
                       "Z closure options: min_events_per_bin is 2, but must be >= 10",
                       std::invalid_argument);
  JpsiCalibrationOptions j;
  j.sim_files = {"s.h5"};
  CHECK_FALSE(j.IsValid(&e));
  CHECK(e.rfind("data_files.size() is 0, but must be > 0 when sim_files is given", 0) == 0);
}

TEST_CASE("z closure: the true calibration closes, residuals consistent with zero") {
  const std::vector<double> edges = JpsiCalibrationOptions::Light().eta_edges;
  const CalibrationParameters truth = TrueCalibration(edges);
  ZClosureSummary s;
  const CalibrationParameters out = RunZClosure(truth, LightZ(JpsiCalibrationOptions::Light()), &s);
  CAPTURE(s.FullReport(edges));
  REQUIRE(s.fit.status == CalibrationFitStatus::kConverged);
  CHECK(s.ndf == 24);
  // e is held at 0.
  for (int b = 0; b < 12; ++b) {
    CHECK(s.used[b]);
    CHECK(s.residual[b].e == 0.0);
    CHECK(s.calibration_error[b].A == 0.0);  // no calibration uncertainty
    CHECK(std::abs(s.residual[b].A / s.stat_error[b].A) < 4.0);
    CHECK(std::abs(s.residual[b].M / s.stat_error[b].M) < 4.0);
  }
  CHECK(s.chi2_stat == doctest::Approx(s.chi2_total));
  CHECK(s.p_value_stat > 1e-3);
  CHECK(std::abs(s.fit.chi2 - s.fit.ndf) < 5.0 * std::sqrt(2.0 * s.fit.ndf));
  // The closure uncertainty: sign(r) max(|r|, sigma_Z) per bin, e = 0; central values kept.
  REQUIRE(out.closure.per_bin.size() == 12);
  for (int b = 0; b < 12; ++b) {
    const ScaleBias& c = out.closure.per_bin[b];
    CHECK(std::abs(c.A) == doctest::Approx(std::max(std::abs(s.residual[b].A), s.stat_error[b].A)));
    CHECK(std::abs(c.M) == doctest::Approx(std::max(std::abs(s.residual[b].M), s.stat_error[b].M)));
    CHECK(c.A * s.residual[b].A >= 0.0);
    CHECK(c.e == 0.0);
    CHECK(out.params[b].A == truth.params[b].A);
  }
  // Z statistical precision of the light configuration (1M data Z, 0.4-wide eta bins).
  CHECK(s.stat_error[6].A < 3e-4);
  CHECK(s.stat_error[6].M < 2.5e-5);
}

TEST_CASE("z closure: the fitted J/psi calibration closes within Z and J/psi uncertainties") {
  const LightJpsi& j = Jpsi();
  REQUIRE(j.summary.status == CalibrationFitStatus::kConverged);
  ZClosureSummary s;
  const CalibrationParameters out = RunZClosure(j.calibration, LightZ(j.options), &s);
  CAPTURE(s.FullReport(j.calibration.eta_edges));
  REQUIRE(s.fit.status == CalibrationFitStatus::kConverged);
  CHECK(s.max_abs_pull < 4.0);
  CHECK(s.p_value_total > 1e-3);
  // The calibration's own uncertainty is propagated (the residuals move with the J/psi errors).
  for (int b = 0; b < 12; ++b) CHECK(s.calibration_error[b].A > 0.0);
  // The file round trip keeps the closure and the resolution fields; the nuisances: 36 stat,
  // 12 closure (group muonScale), 12 resolution.
  const std::string path = TempPath("calibration_z", ".json");
  WriteCalibration(path, out);
  const CalibrationParameters back = ReadCalibration(path);
  std::remove(path.c_str());
  REQUIRE(back.closure.per_bin.size() == 12);
  for (int b = 0; b < 12; ++b) {
    CHECK(back.closure.per_bin[b].A == out.closure.per_bin[b].A);
    CHECK(back.closure.per_bin[b].e == out.closure.per_bin[b].e);
    CHECK(back.closure.per_bin[b].M == out.closure.per_bin[b].M);
  }
  CHECK(back.resolution_uncertainty == out.resolution_uncertainty);
  CHECK(back.description.find("Z closure") != std::string::npos);
  const std::vector<MomentumNuisance> nus = MomentumNuisances(back);
  int stat = 0, closure = 0, resolution = 0;
  for (const MomentumNuisance& nu : nus) {
    if (nu.kind == MomentumNuisanceKind::kCalibrationStat) ++stat;
    if (nu.kind == MomentumNuisanceKind::kClosure && nu.name == "muonScaleClosureGlobal") {
      ++closure;
      CHECK(nu.first_bin == 0);
      CHECK(nu.last_bin == 11);
    } else if (nu.kind == MomentumNuisanceKind::kClosure) {
      ++closure;
      CHECK(nu.group == "muonScale");
      CHECK(nu.first_bin == nu.last_bin);
      CHECK(nu.shift[0].A == back.closure.per_bin[nu.first_bin].A);
      CHECK(nu.name == "muonScaleClosure_eta" + std::to_string(nu.first_bin));
    }
    if (nu.kind == MomentumNuisanceKind::kResolution) ++resolution;
  }
  CHECK(stat == 36);
  CHECK(closure == 13);  // 12 per bin + the global (LEP) term
  CHECK(resolution == 12);
  CHECK(back.closure.global.A == doctest::Approx(2.1e-3 / 91.1876));
  CHECK(back.schema_version == 2);
}

TEST_CASE("z closure: detects a deliberately wrong calibration") {
  const std::vector<double> edges = JpsiCalibrationOptions::Light().eta_edges;
  CalibrationParameters wrong = TrueCalibration(edges);
  // Off by dA = +2e-3 in bin 3 and dM = +1.5e-4 / GeV in bin 9: the corrected data keep the
  // residual bias (-dA, -dM) there.
  wrong.params[3].A += 2e-3;
  wrong.params[9].M += 1.5e-4;
  ZClosureSummary s;
  RunZClosure(wrong, LightZ(JpsiCalibrationOptions::Light()), &s);
  CAPTURE(s.FullReport(edges));
  REQUIRE(s.fit.status == CalibrationFitStatus::kConverged);
  CHECK(s.residual[3].A / s.stat_error[3].A < -5.0);
  CHECK(std::abs(s.residual[3].A + 2e-3) < 4.0 * s.stat_error[3].A);
  CHECK(s.residual[9].M / s.stat_error[9].M < -5.0);
  CHECK(std::abs(s.residual[9].M + 1.5e-4) < 4.0 * s.stat_error[9].M);
  // The other bins stay consistent with zero; the global test fails.
  for (int b : {0, 6, 11}) CHECK(std::abs(s.residual[b].A / s.stat_error[b].A) < 4.0);
  CHECK(s.p_value_total < 1e-6);
  CHECK(s.max_abs_pull > 5.0);
}

TEST_CASE("resolution: the data's resolution scale is measured per eta bin") {
  // Nominal resolution: rho consistent with 1 (the shared light run).
  const LightJpsi& j = Jpsi();
  REQUIRE(j.summary.resolution_scale.size() == 12);
  for (int b = 0; b < 12; ++b) {
    CAPTURE(b);
    CHECK(j.summary.resolution_scale_error[b] > 0.0);
    CHECK(j.summary.resolution_scale_error[b] < 0.02);
    CHECK(std::abs(j.summary.resolution_scale[b] - 1.0) <
          4.0 * j.summary.resolution_scale_error[b]);
    CHECK(j.calibration.resolution_uncertainty[b] ==
          std::max(std::abs(j.summary.resolution_scale[b] - 1.0),
                   j.summary.resolution_scale_error[b]));
  }
  CHECK(std::abs(j.summary.resolution_chi2 - j.summary.resolution_ndf) <
        5.0 * std::sqrt(2.0 * j.summary.resolution_ndf));
  // Data 6% worse: recovered in every bin.
  JpsiCalibrationOptions o = j.options;
  o.data_detector.resolution_scale = 1.06;
  o.seed = 23;
  JpsiCalibrationSummary s;
  const CalibrationParameters c = CalibrateJpsi(o, &s);
  CAPTURE(s.FullReport());
  for (int b = 0; b < 12; ++b) {
    CAPTURE(b);
    CHECK(std::abs(s.resolution_scale[b] - 1.06) < 4.0 * s.resolution_scale_error[b]);
    CHECK(c.resolution_uncertainty[b] > 0.02);
  }
  // The scale calibration is unaffected by the resolution difference (pulls vs the truth).
  const std::vector<ScaleBias> truth = TruthOnBins(o.data_detector.scale_bias, o.eta_edges);
  for (int b = 0; b < 12; ++b)
    CHECK(std::abs(c.params[b].A - truth[b].A) < 4.0 * c.Uncertainty(b, 0));
}

TEST_CASE("jpsi calibration from event files = from the same events generated") {
  JpsiCalibrationOptions o = JpsiCalibrationOptions::Light();
  o.num_data_events = 400000;
  o.seed = 31;
  o.num_threads = 2;
  o.min_events_per_bin = 20;
  o.batch_events = 150000;
  JpsiCalibrationSummary generated_summary;
  const CalibrationParameters generated = CalibrateJpsi(o, &generated_summary);

  // The same events in files (data in two files, to check that files are read in order).
  const JpsiGenerator data_gen(o.generator, o.data_detector, SampleKind::kData, o.seed);
  const JpsiGenerator sim_gen(o.generator, o.sim_detector, SampleKind::kSimulation, o.seed);
  const std::string d1 = TempPath("jpsi_data1", ".h5"), d2 = TempPath("jpsi_data2", ".h5");
  const std::string sf = TempPath("jpsi_sim", ".h5");
  auto write = [](const JpsiGenerator& g, const std::string& path, std::uint64_t first,
                  std::uint64_t n) {
    EventFileWriter w(path, MakeJpsiEventFileMetadata(g, n, "test"));
    EventBatch b;
    g.Generate(first, n, &b, 2);
    w.Append(b);
    w.Close();
  };
  write(data_gen, d1, 0, 250000);
  write(data_gen, d2, 250000, 150000);
  write(sim_gen, sf, 0, 800000);
  CHECK(ReadEventFile(d1).size() > 1000);
  JpsiCalibrationOptions f = o;
  f.data_files = {d1, d2};
  f.sim_files = {sf};
  f.batch_events = 70000;  // another batching: the result depends only on the event sequence
  JpsiCalibrationSummary file_summary;
  const CalibrationParameters from_files = CalibrateJpsi(f, &file_summary);
  CHECK(file_summary.from_files);
  CHECK(file_summary.data_selected == generated_summary.data_selected);
  CHECK(file_summary.sim_selected == generated_summary.sim_selected);
  CHECK(file_summary.bins_used == generated_summary.bins_used);
  CHECK(file_summary.status == generated_summary.status);
  REQUIRE(from_files.num_bins() == generated.num_bins());
  for (int b = 0; b < generated.num_bins(); ++b) {
    CHECK(from_files.params[b].A == generated.params[b].A);
    CHECK(from_files.params[b].e == generated.params[b].e);
    CHECK(from_files.params[b].M == generated.params[b].M);
  }
  CHECK((from_files.covariance - generated.covariance).cwiseAbs().maxCoeff() == 0.0);
  CHECK(from_files.resolution_uncertainty == generated.resolution_uncertainty);
  CHECK(from_files.description.find("read from 3 file(s)") != std::string::npos);

  // Role and process errors name the file, the attribute and the flag.
  JpsiCalibrationOptions swapped = o;
  swapped.data_files = {sf};
  swapped.sim_files = {d1};
  JpsiCalibrationSummary s;
  CHECK_THROWS_WITH_AS(CalibrateJpsi(swapped, &s),
                       (sf + ": the file holds simulation events (attribute 'sample'), but was "
                             "given as data (--data-events)")
                           .c_str(),
                       lepus::io::InputError);
  ZClosureOptions z = ZClosureOptions::Light();
  z.data_files = {d1};
  z.sim_files = {sf};
  ZClosureSummary zs;
  CHECK_THROWS_WITH_AS(RunZClosure(TrueCalibration(o.eta_edges), z, &zs),
                       (d1 + ": attribute 'process' is 'jpsi', but must be 'zmumu' (given "
                             "with --data-events; e.g. lepus generate --process zmumu)")
                           .c_str(),
                       lepus::io::InputError);
  JpsiCalibrationOptions missing = o;
  missing.data_files = {d1 + ".nonexistent"};
  missing.sim_files = {sf};
  CHECK_THROWS_AS(CalibrateJpsi(missing, &s), lepus::io::InputError);
  std::remove(d1.c_str());
  std::remove(d2.c_str());
  std::remove(sf.c_str());
}

TEST_CASE("z closure: refuses a calibration whose fit failed, before any work") {
  const std::vector<double> edges = JpsiCalibrationOptions::Light().eta_edges;
  CalibrationParameters failed = TrueCalibration(edges);
  failed.covariance.diagonal().setConstant(1e-8);
  failed.status = "not_converged";
  failed.status_message = "no mass bin to fit";
  ZClosureSummary s;
  CHECK_THROWS_WITH_AS(RunZClosure(failed, LightZ(JpsiCalibrationOptions::Light()), &s),
                       "Z closure: status is \"not_converged\" (no mass bin to fit), but must be "
                       "\"converged\": the calibration fit failed, so its parameters and "
                       "covariance cannot be used; rerun the calibration (lepus calibrate)",
                       std::invalid_argument);
}
