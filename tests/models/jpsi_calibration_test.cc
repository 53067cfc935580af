// The J/psi calibration (models/jpsi.h, models/jpsi_calibration.h): option checks and their
// messages, the generator (determinism, thread independence, the peak), the global fit on
// synthetic mass bins with a known answer, the light end-to-end calibration against the hidden
// truth (pulls, chi2 of the residuals, bias removal on an independent data sample with
// CorrectPt), and the file read back through calibration.h.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/calibration/jpsi.h"
#include "lepus/calibration/jpsi_calibration.h"
#include "lepus/models/calibration.h"
#include "test_support.h"

namespace {

using namespace lepus::models;
using namespace lepus::calibration;
using lepus::test::TempPath;

std::string Error(const JpsiCalibrationOptions& o) {
  std::string e;
  CHECK_FALSE(o.IsValid(&e));
  return e;
}

// The default data bias made constant within the light configuration's eta bins, so that the
// coarse calibration can recover it exactly.
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

Eigen::VectorXd Residual(const CalibrationParameters& c, const std::vector<ScaleBias>& truth) {
  Eigen::VectorXd d(3 * c.num_bins());
  for (int b = 0; b < c.num_bins(); ++b) {
    d[3 * b] = c.params[b].A - truth[b].A;
    d[3 * b + 1] = c.params[b].e - truth[b].e;
    d[3 * b + 2] = c.params[b].M - truth[b].M;
  }
  return d;
}

// The light calibration, computed once for the tests that inspect it (~2 s).
struct LightRun {
  JpsiCalibrationOptions options;
  JpsiCalibrationSummary summary;
  CalibrationParameters calibration;
  std::vector<ScaleBias> truth;
};
const LightRun& Light() {
  static const LightRun run = [] {
    LightRun r;
    r.options = JpsiCalibrationOptions::Light();
    r.options.num_data_events = 1000000;
    r.options.seed = 11;
    r.options.num_threads = 2;
    r.options.data_detector.scale_bias = BinnedTruth(r.options.eta_edges);
    r.calibration = CalibrateJpsi(r.options, &r.summary);
    r.truth = TruthOnBins(r.options.data_detector.scale_bias, r.options.eta_edges);
    return r;
  }();
  return run;
}

}  // namespace

TEST_CASE("jpsi options: defaults valid, bad values named") {
  std::string e;
  CHECK(JpsiCalibrationOptions{}.IsValid(&e));
  CHECK(JpsiCalibrationOptions::Light().IsValid(&e));
  CHECK(JpsiCalibrationOptions::Full().IsValid(&e));
  CHECK(JpsiCalibrationOptions::Full().eta_edges.size() == kScaleEtaBins + 1);
  CHECK(JpsiGeneratorOptions{}.IsValid(&e));

  JpsiCalibrationOptions o;
  o.eta_edges = {-2.4, 0.0, -1.0, 2.4};
  CHECK(Error(o) == "eta_edges[2] is -1, but must be > eta_edges[1] (0): edges must increase");
  o = JpsiCalibrationOptions{};
  o.eta_edges = {-3.0, 0.0};
  CHECK(Error(o) == "eta_edges[0] is -3, but must be in [-2.4, 2.4]");
  o = JpsiCalibrationOptions{};
  o.pt_edges = {4.0};
  CHECK(Error(o) == "pt_edges.size() is 1, but must be >= 2");
  o = JpsiCalibrationOptions{};
  o.sim_factor = 0.0;
  CHECK(Error(o) == "sim_factor is 0, but must be > 0");
  o = JpsiCalibrationOptions{};
  o.min_events_per_bin = 5;
  CHECK(Error(o) == "min_events_per_bin is 5, but must be >= 10");
  o = JpsiCalibrationOptions{};
  o.generator.pt_max = 5.0;
  CHECK(Error(o).rfind("generator.pt_max is 5, but must be > pt_min", 0) == 0);
  o = JpsiCalibrationOptions{};
  o.data_detector.scale_bias[3].A = 0.2;
  CHECK(Error(o) == "data_detector.scale_bias[3].A is 0.2, but must be in (-0.05, 0.05)");
  JpsiCalibrationSummary s;
  CHECK_THROWS_WITH_AS(CalibrateJpsi(o, &s),
                       "J/psi calibration options: data_detector.scale_bias[3].A is 0.2, but "
                       "must be in (-0.05, 0.05)",
                       std::invalid_argument);
  CHECK(CalibrationLinearSolverFromString("dense_qr") == CalibrationLinearSolver::kDenseQr);
  CHECK_THROWS_AS(CalibrationLinearSolverFromString("cholesky"), std::invalid_argument);
}

TEST_CASE("jpsi generator: deterministic, thread independent, peak at the J/psi mass") {
  const JpsiGenerator sim(JpsiGeneratorOptions{}, DetectorParams::Simulation(),
                          SampleKind::kSimulation, 5);
  EventBatch a, b, c;
  sim.Generate(0, 40000, &a, 1);
  sim.Generate(0, 40000, &b, 2);
  sim.Generate(0, 20000, &c, 1);
  sim.Generate(20000, 20000, &c, 2);
  REQUIRE(a.size() > 3000);
  CHECK(a.Consistent());
  CHECK(a.Identical(b));
  CHECK(a.Identical(c));
  std::vector<double> m;
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a.n_muons[i] == 2);
    CHECK(a.muon[0].charge[i] == -a.muon[1].charge[i]);
    CHECK(a.muon[0].pt[i] >= a.muon[1].pt[i]);
    CHECK(a.muon[1].pt[i] >= 4.0);
    CHECK(std::abs(a.muon[0].eta[i]) < 2.4);
    // Generator-level muons make the J/psi exactly.
    const double mg = DimuonMass(a.muon[0].gen_pt[i], a.muon[0].gen_eta[i], a.muon[0].gen_phi[i],
                                 a.muon[1].gen_pt[i], a.muon[1].gen_eta[i], a.muon[1].gen_phi[i]);
    CHECK(mg == doctest::Approx(kJpsiMass).epsilon(1e-9));
    m.push_back(DimuonMass(a.muon[0].pt[i], a.muon[0].eta[i], a.muon[0].phi[i], a.muon[1].pt[i],
                           a.muon[1].eta[i], a.muon[1].phi[i]));
  }
  std::nth_element(m.begin(), m.begin() + m.size() / 2, m.end());
  CHECK(std::abs(m[m.size() / 2] / kJpsiMass - 1.0) < 1e-3);  // resolution ~1%, unbiased peak

  // Data and simulation streams are independent; the data carry the bias.
  const JpsiGenerator data(JpsiGeneratorOptions{}, DetectorParams::DefaultData(), SampleKind::kData,
                           5);
  EventBatch d;
  data.Generate(0, 40000, &d, 2);
  REQUIRE(d.size() > 3000);
  CHECK(d.v_pt[0] != a.v_pt[0]);
}

TEST_CASE("jpsi global fit: synthetic bins with a known answer") {
  const std::vector<double> edges = {-2.4, -1.2, 0.0, 1.2, 2.4};
  std::vector<ScaleBias> truth = {
      {1e-3, 0.01, 2e-5}, {2e-4, 0.005, -1e-5}, {-3e-4, 0.008, 5e-6}, {8e-4, 0.012, 3e-5}};
  std::mt19937_64 rng(7);
  std::normal_distribution<double> gauss;
  std::uniform_real_distribution<double> upt(4.0, 20.0);
  std::vector<JpsiMassBin> bins;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 12; ++k) {
        JpsiMassBin b;
        b.eta_plus = i;
        b.eta_minus = j;
        b.pt_mean_plus = upt(rng);
        b.pt_mean_minus = upt(rng);
        b.inv_pt_plus = 1.0 / b.pt_mean_plus;
        b.inv_pt_minus = 1.0 / b.pt_mean_minus;
        b.error = 2e-4;
        b.scale = PredictedScale(b, truth[i], truth[j]) + b.error * gauss(rng);
        bins.push_back(b);
      }
  // First order: s = -(dk+ + dk-)/2.
  const JpsiMassBin& b0 = bins[5];
  const double dk_plus = CurvatureShift(truth[b0.eta_plus], b0.pt_mean_plus, +1);
  const double dk_minus = CurvatureShift(truth[b0.eta_minus], b0.pt_mean_minus, -1);
  CHECK(PredictedScale(b0, truth[b0.eta_plus], truth[b0.eta_minus]) ==
        doctest::Approx(-0.5 * (dk_plus + dk_minus)).epsilon(1e-2));

  for (auto solver :
       {CalibrationLinearSolver::kDenseQr, CalibrationLinearSolver::kSparseNormalCholesky}) {
    JpsiCalibrationOptions o;
    o.linear_solver = solver;
    JpsiCalibrationSummary s;
    const CalibrationParameters c = FitScaleParameters(bins, edges, o, &s);
    CAPTURE(ToString(solver));
    CAPTURE(s.FullReport());
    REQUIRE(s.status == CalibrationFitStatus::kConverged);
    CHECK(s.ndf == static_cast<int>(bins.size()) - 12);
    CHECK(std::abs(s.chi2 - s.ndf) < 5.0 * std::sqrt(2.0 * s.ndf));
    std::string error;
    CHECK(c.IsValid(&error));
    const Eigen::VectorXd d = Residual(c, truth);
    const double chi2 = d.dot(c.covariance.ldlt().solve(d));
    CHECK(chi2 < 12.0 + 5.0 * std::sqrt(24.0));
    for (const JpsiMassBin& b : s.bins) CHECK(std::isfinite(b.fitted));
  }

  JpsiCalibrationSummary s;
  std::vector<JpsiMassBin> bad = bins;
  bad[3].eta_minus = 4;
  CHECK_THROWS_WITH_AS(FitScaleParameters(bad, edges, JpsiCalibrationOptions{}, &s),
                       "FitScaleParameters: bins[3] has an eta bin outside [0, 3]",
                       std::invalid_argument);
}

TEST_CASE("jpsi calibration (light): recovers the hidden truth within its uncertainty") {
  const LightRun& r = Light();
  const JpsiCalibrationSummary& s = r.summary;
  CAPTURE(s.FullReport());
  REQUIRE(s.status == CalibrationFitStatus::kConverged);
  CHECK(s.num_parameters == 36);
  CHECK(s.bins_used > 100);
  CHECK(s.iterations > 0);
  CHECK(s.final_cost < s.initial_cost);
  // The mass-bin chi2 is consistent with its degrees of freedom.
  CHECK(std::abs(s.chi2 - s.ndf) < 5.0 * std::sqrt(2.0 * s.ndf));
  std::string error;
  CHECK(r.calibration.IsValid(&error));
  // Pulls of (A, e, M) against the hidden truth, and their chi2 with the full covariance.
  const Eigen::VectorXd d = Residual(r.calibration, r.truth);
  for (int i = 0; i < d.size(); ++i) {
    const double pull = d[i] / std::sqrt(r.calibration.covariance(i, i));
    CAPTURE(i);
    CHECK(std::abs(pull) < 4.0);
  }
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(r.calibration.covariance);
  REQUIRE(ldlt.info() == Eigen::Success);
  const double chi2 = d.dot(ldlt.solve(d));
  CHECK(chi2 < 36.0 + 5.0 * std::sqrt(72.0));
  CHECK(chi2 > 36.0 - 4.0 * std::sqrt(72.0));
  // The truth itself is far from zero: the calibration measured something.
  const Eigen::VectorXd t0 = d - Residual(r.calibration, std::vector<ScaleBias>(r.truth.size()));
  CHECK(t0.dot(ldlt.solve(t0)) > 200.0);
}

TEST_CASE("jpsi calibration (light): CorrectPt removes the bias of independent data") {
  const LightRun& r = Light();
  REQUIRE(r.summary.status == CalibrationFitStatus::kConverged);
  const CalibrationParameters& c = r.calibration;
  // Independent samples (another seed): per calibration eta bin and charge, the mean of
  // log(pT_reco / pT_gen) in data (raw and corrected) against the simulation's.
  const std::uint64_t seed = 97;
  const JpsiGenerator data(r.options.generator, r.options.data_detector, SampleKind::kData, seed);
  const JpsiGenerator sim(r.options.generator, r.options.sim_detector, SampleKind::kSimulation,
                          seed);
  EventBatch bd, bs;
  data.Generate(0, 1500000, &bd, 2);
  sim.Generate(0, 1500000, &bs, 2);
  const int n = c.num_bins();
  struct Acc {
    double sum = 0, sum2 = 0, n = 0, grad[3] = {0, 0, 0};  // grad: mean of d(dk/k)/d(A, e, M)
  };
  // [bin][charge 0: -, 1: +]: raw data, corrected data, simulation.
  std::vector<std::array<Acc, 2>> raw(n), cor(n), ref(n);
  for (const EventBatch* batch : {&bd, &bs})
    for (std::size_t i = 0; i < batch->size(); ++i)
      for (int k = 0; k < 2; ++k) {
        const MuonColumns& m = batch->muon[k];
        const int b = c.Bin(m.eta[i]);
        const int q = m.charge[i];
        const int qi = q > 0 ? 1 : 0;
        auto add = [&](Acc& a, double pt) {
          const double v = std::log(pt / m.gen_pt[i]);
          a.sum += v;
          a.sum2 += v * v;
          a.n += 1;
          a.grad[0] += 1.0;
          a.grad[1] += -1.0 / pt;
          a.grad[2] += q * pt;
        };
        if (batch == &bd) {
          add(raw[b][qi], m.pt[i]);
          add(cor[b][qi], c.CorrectPt(m.eta[i], m.pt[i], q));
        } else {
          add(ref[b][qi], m.pt[i]);
        }
      }
  auto mean = [](const Acc& a) { return a.sum / a.n; };
  auto err2 = [](const Acc& a) { return (a.sum2 / a.n - std::pow(a.sum / a.n, 2)) / a.n; };
  int significant_before = 0;
  for (int b = 0; b < n; ++b)
    for (int qi = 0; qi < 2; ++qi) {
      const Acc& rd = raw[b][qi];
      const Acc& cd = cor[b][qi];
      const Acc& sd = ref[b][qi];
      REQUIRE(cd.n > 1000);
      // The calibration's uncertainty on the mean correction of these muons.
      Eigen::Vector3d g(cd.grad[0] / cd.n, cd.grad[1] / cd.n, cd.grad[2] / cd.n);
      const double var_cal = g.dot(c.covariance.block<3, 3>(3 * b, 3 * b) * g);
      const double sigma = std::sqrt(err2(cd) + err2(sd) + var_cal);
      const double before = (mean(rd) - mean(sd)) / std::sqrt(err2(rd) + err2(sd));
      const double after = (mean(cd) - mean(sd)) / sigma;
      CAPTURE(b);
      CAPTURE(qi);
      CAPTURE(before);
      CHECK(std::abs(after) < 4.0);
      if (std::abs(before) > 5.0) ++significant_before;
    }
  CHECK(significant_before >= n);  // the raw bias is visible in most bins
}

TEST_CASE("jpsi calibration (light): the file reads back through calibration.h") {
  const LightRun& r = Light();
  const std::string path = TempPath("jpsi_calibration", ".json");
  WriteCalibration(path, r.calibration);
  const CalibrationParameters back = ReadCalibration(path);
  std::remove(path.c_str());
  REQUIRE(back.num_bins() == r.calibration.num_bins());
  CHECK(back.eta_edges == r.calibration.eta_edges);
  for (int b = 0; b < back.num_bins(); ++b) {
    CHECK(back.params[b].A == r.calibration.params[b].A);
    CHECK(back.params[b].e == r.calibration.params[b].e);
    CHECK(back.params[b].M == r.calibration.params[b].M);
  }
  CHECK((back.covariance - r.calibration.covariance).cwiseAbs().maxCoeff() == 0.0);
  CHECK(back.description.find("J/psi calibration") == 0);
  // The resolution uncertainties (one per eta bin) read back too.
  REQUIRE(back.resolution_uncertainty.size() == 12);
  CHECK(back.resolution_uncertainty == r.calibration.resolution_uncertainty);
  // The producers' nuisances: 36 eigenvectors reproducing 2.1^2 C, then 12 resolution ones.
  const std::vector<MomentumNuisance> nus = MomentumNuisances(back);
  CHECK(nus.size() == 48);
  int stat = 0;
  for (const MomentumNuisance& nu : nus) {
    if (nu.kind == MomentumNuisanceKind::kCalibrationStat) ++stat;
    if (nu.kind == MomentumNuisanceKind::kResolution) CHECK(nu.group == "muonResolution");
  }
  CHECK(stat == 36);
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(36, 36);
  for (const MomentumNuisance& nu : nus) {
    if (nu.kind != MomentumNuisanceKind::kCalibrationStat) continue;
    Eigen::VectorXd v = Eigen::VectorXd::Zero(36);
    for (int b = nu.first_bin; b <= nu.last_bin; ++b) {
      v[3 * b] = nu.shift[b - nu.first_bin].A;
      v[3 * b + 1] = nu.shift[b - nu.first_bin].e;
      v[3 * b + 2] = nu.shift[b - nu.first_bin].M;
    }
    sum += v * v.transpose();
  }
  // Relative to sqrt(C_ii C_jj): the parameters differ in scale by 1e3 (A vs e) to 1e-2 (M).
  const Eigen::VectorXd inv_sd = back.covariance.diagonal().cwiseSqrt().cwiseInverse() / 2.1;
  const Eigen::MatrixXd diff =
      inv_sd.asDiagonal() * (sum - 2.1 * 2.1 * back.covariance) * inv_sd.asDiagonal();
  CHECK(diff.cwiseAbs().maxCoeff() < 1e-9);
}
