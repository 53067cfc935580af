// Extended ABCD: exact closure on a toy where the isolation pass/fail ratio depends on mT
// geometrically (so the extended method is exact) and prompt contamination is subtracted;
// smoothing recovers a known polynomial (exactly without noise, with unit pulls with noise);
// nuisance templates are local, log-symmetric and add up to the fit variance; bad inputs named.
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/models/nonprompt.h"

namespace {

using namespace lepus::models;

constexpr double kCoeff[3] = {5.0, -1.2, 0.3};  // ln h(x) in the Chebyshev basis T0, T1, T2

// Non-prompt yield of (eta, pt, charge) in a region: f(mT bin) x r(mT bin)^pass x h(eta, pt, q)
// with r geometric in the mT bin index (r1^2 = r0 r2), plus prompt muons (mostly isolated, at
// high mT) that the estimate must subtract.
struct Toy {
  NonpromptInputs in;
  std::vector<double> truth_d;  // non-prompt yield in D
  std::vector<double> h;        // slice shape, for the smoothing check
};

Toy MakeToy(bool noise, std::uint64_t seed = 1) {
  Toy t;
  t.in.binning = NonpromptBinning::WMass();
  const NonpromptBinning& b = t.in.binning;
  const std::size_t n = b.size();
  for (auto& r : t.in.data) r.sumw.assign(n, 0.0), r.sumw2.assign(n, 0.0);
  for (auto& r : t.in.prompt) r.sumw.assign(n, 0.0), r.sumw2.assign(n, 0.0);
  t.truth_d.assign(n, 0.0);
  t.h.assign(n, 0.0);
  std::mt19937_64 rng(seed);
  const double f[3] = {4.0, 2.0, 1.0};    // mT: 0-20, 20-40, > 40
  const double r[3] = {0.25, 0.2, 0.16};  // pass / fail: 0.2^2 = 0.25 x 0.16
  const int pass_region[3] = {static_cast<int>(AbcdRegion::kBx), static_cast<int>(AbcdRegion::kB),
                              static_cast<int>(AbcdRegion::kD)};
  const int fail_region[3] = {static_cast<int>(AbcdRegion::kAx), static_cast<int>(AbcdRegion::kA),
                              static_cast<int>(AbcdRegion::kC)};
  const double prompt_frac[3] = {0.02, 0.1, 3.0};  // prompt / non-prompt in the pass regions
  for (int ieta = 0; ieta < b.n_eta; ++ieta)
    for (int ipt = 0; ipt < b.n_pt(); ++ipt)
      for (int iq = 0; iq < b.n_charge; ++iq) {
        const std::size_t i = b.Index(ieta, ipt, iq);
        const double x = (b.pt_edges[ipt] + b.pt_edges[ipt + 1] - 2 * b.pt_edges.front()) /
                             (b.pt_edges.back() - b.pt_edges.front()) -
                         1.0;
        const double eta_c = 0.5 * (b.eta_edges[ieta] + b.eta_edges[ieta + 1]);
        const double norm = (1.0 + 0.1 * eta_c * eta_c) * (iq ? 1.1 : 0.9);
        const double lnh = std::log(norm) + kCoeff[0] + kCoeff[1] * x + kCoeff[2] * (2 * x * x - 1);
        const double h = std::exp(lnh);
        t.h[i] = h;
        for (int m = 0; m < 3; ++m) {
          const double fail = f[m] * h;
          const double pass = f[m] * r[m] * h;
          const double prompt_pass = prompt_frac[m] * pass;
          const double prompt_fail = 0.05 * prompt_pass;
          auto fill = [&](int region, double np, double pr) {
            double data = np + pr;
            if (noise)
              data =
                  std::max(1.0, data + std::normal_distribution<double>(0, std::sqrt(data))(rng));
            t.in.data[region].sumw[i] = data;
            t.in.data[region].sumw2[i] = noise ? np + pr : 0.0;
            t.in.prompt[region].sumw[i] = pr;
            t.in.prompt[region].sumw2[i] = 0.0;
          };
          fill(pass_region[m], pass, prompt_pass);
          fill(fail_region[m], fail, prompt_fail);
        }
        t.truth_d[i] = f[2] * r[2] * h;
      }
  return t;
}

}  // namespace

TEST_CASE("ABCD regions by mT and isolation") {
  CHECK(AbcdRegionOf(50, 0.01) == AbcdRegion::kD);
  CHECK(AbcdRegionOf(50, 0.3) == AbcdRegion::kC);
  CHECK(AbcdRegionOf(30, 0.3) == AbcdRegion::kA);
  CHECK(AbcdRegionOf(30, 0.1) == AbcdRegion::kB);
  CHECK(AbcdRegionOf(10, 0.3) == AbcdRegion::kAx);
  CHECK(AbcdRegionOf(10, 0.1) == AbcdRegion::kBx);
  CHECK(AbcdRegionOf(40, 0.15) == AbcdRegion::kC);  // edges belong to the upper bin / fail
}

TEST_CASE("extended ABCD closes exactly when the factorisation holds") {
  const Toy t = MakeToy(false);
  NonpromptOptions o = NonpromptOptions::Full();
  o.smoothing_order = -1;
  const NonpromptResult raw = EstimateNonprompt(t.in, o);
  for (std::size_t i = 0; i < t.truth_d.size(); ++i)
    CHECK(raw.nominal[i] == doctest::Approx(t.truth_d[i]).epsilon(1e-12));
  // Smoothing with the right order reproduces it too (ln h is a quadratic in x).
  o.smoothing_order = 2;
  const NonpromptResult smooth = EstimateNonprompt(t.in, o);
  for (std::size_t i = 0; i < t.truth_d.size(); ++i)
    CHECK(smooth.nominal[i] == doctest::Approx(t.truth_d[i]).epsilon(1e-9));
  CHECK(smooth.fits.size() == 96);
  for (const SmoothingFit& f : smooth.fits) {
    CHECK(f.ok);
    CHECK(f.points == 30);
    CHECK(f.ndf == 27);
    CHECK(f.coeff[1] == doctest::Approx(kCoeff[1]).epsilon(1e-9));
    CHECK(f.coeff[2] == doctest::Approx(kCoeff[2]).epsilon(1e-9));
  }
  // Without the prompt subtraction the estimate is biased (the prompt muons are mostly isolated).
  NonpromptInputs unsub = t.in;
  for (auto& r : unsub.prompt) r.sumw.clear(), r.sumw2.clear();
  o.smoothing_order = -1;
  const NonpromptResult biased = EstimateNonprompt(unsub, o);
  CHECK(biased.nominal[100] > 1.05 * t.truth_d[100]);
  // The normalisation correction scales everything.
  o.norm_correction = 1.15;
  const NonpromptResult corrected = EstimateNonprompt(t.in, o);
  CHECK(corrected.nominal[7] == doctest::Approx(1.15 * t.truth_d[7]).epsilon(1e-12));
}

TEST_CASE("smoothing with noise: unit pulls of the recovered polynomial") {
  const Toy t = MakeToy(true, 42);
  NonpromptOptions o = NonpromptOptions::Full();
  o.scale_by_chi2 = false;
  const NonpromptResult res = EstimateNonprompt(t.in, o);
  double s1 = 0, s2 = 0;
  int n = 0;
  double chi2 = 0;
  int ndf = 0;
  for (const SmoothingFit& f : res.fits) {
    REQUIRE(f.ok);
    for (int k = 1; k <= 2; ++k) {
      const double pull = (f.coeff[k] - kCoeff[k]) / std::sqrt(f.covariance[k * 3 + k]);
      s1 += pull;
      s2 += pull * pull;
      ++n;
    }
    chi2 += f.chi2;
    ndf += f.ndf;
  }
  const double mean = s1 / n, width = std::sqrt(s2 / n - mean * mean);
  CHECK(std::abs(mean) < 0.3);
  CHECK(width > 0.8);
  CHECK(width < 1.25);
  CHECK(chi2 / ndf == doctest::Approx(1.0).epsilon(0.15));
}

TEST_CASE("non-prompt nuisance templates") {
  const Toy t = MakeToy(true, 7);
  const NonpromptResult full = EstimateNonprompt(t.in, NonpromptOptions::Full());
  CHECK(full.variations.size() == 48 * 2 * 3 + 1 + 2);
  const NonpromptResult light = EstimateNonprompt(t.in, NonpromptOptions::Light());
  CHECK(light.variations.size() == 3 + 1 + 2);
  CHECK(full.sumw2[5] == 0.0);  // smoothing uncertainty is in the nuisances
  const NonpromptBinning& b = t.in.binning;
  // A per-(eta, charge) smoothing nuisance touches its slice only, log-symmetrically.
  const NonpromptVariation& v = full.variations[0];
  CHECK(v.name == "nonpromptSmooth_eta0_minus_eig0");
  CHECK(v.group == "nonprompt");
  for (std::size_t i = 0; i < b.size(); ++i) {
    const bool in_slice = (i % 2 == 0) && i < static_cast<std::size_t>(b.n_pt() * b.n_charge);
    if (!in_slice) {
      CHECK(v.up[i] == full.nominal[i]);
      CHECK(v.down[i] == full.nominal[i]);
    } else {
      CHECK(v.up[i] / full.nominal[i] ==
            doctest::Approx(full.nominal[i] / v.down[i]).epsilon(1e-12));
    }
  }
  CHECK(v.first_bin == 0);
  CHECK(v.last_bin == b.Index(0, b.n_pt() - 1, 0));
  // Summing the squared log shifts of a slice's nuisances gives the fitted variance of ln D.
  const std::size_t i = b.Index(10, 17, 1);
  double var = 0;
  for (const NonpromptVariation& w : full.variations)
    if (w.name.rfind("nonpromptSmooth_eta10_plus", 0) == 0)
      var += std::pow(std::log(w.up[i] / full.nominal[i]), 2);
  const SmoothingFit& f = full.fits[10 * 2 + 1];
  const double x = (b.pt_edges[17] + b.pt_edges[18] - 2 * b.pt_edges.front()) /
                       (b.pt_edges.back() - b.pt_edges.front()) -
                   1.0;
  const double tt[3] = {1.0, x, 2 * x * x - 1};
  double expected = 0;
  for (int a = 0; a < 3; ++a)
    for (int c = 0; c < 3; ++c) expected += tt[a] * tt[c] * f.covariance[a * 3 + c];
  CHECK(var == doctest::Approx(expected).epsilon(1e-9));
  // The fitted variance is smaller than the per-bin raw variance (the point of smoothing).
  CHECK(expected < full.raw_sumw2[i] / (full.raw[i] * full.raw[i]));
  // Normalisation and shapes.
  const NonpromptVariation& norm = full.variations[full.variations.size() - 3];
  CHECK(norm.name == "nonpromptNorm");
  CHECK(norm.up[i] == doctest::Approx(1.15 * full.nominal[i]));
  const NonpromptVariation& spt = full.variations[full.variations.size() - 2];
  CHECK(spt.name == "nonpromptShapePt");
  CHECK(spt.up[b.Index(3, 0, 0)] < full.nominal[b.Index(3, 0, 0)]);
  CHECK(spt.up[b.Index(3, 29, 0)] > full.nominal[b.Index(3, 29, 0)]);
  const NonpromptVariation& seta = full.variations.back();
  CHECK(seta.name == "nonpromptShapeEta");
  CHECK(seta.up[b.Index(0, 5, 0)] > full.nominal[b.Index(0, 5, 0)]);
  CHECK(seta.up[b.Index(24, 5, 0)] < full.nominal[b.Index(24, 5, 0)]);
}

TEST_CASE("empty sidebands and bad inputs") {
  Toy t = MakeToy(false);
  const NonpromptBinning& b = t.in.binning;
  // One slice with empty A: no prediction there, the fit is skipped, no nuisances for it.
  for (int ipt = 0; ipt < b.n_pt(); ++ipt)
    t.in.data[static_cast<int>(AbcdRegion::kA)].sumw[b.Index(5, ipt, 1)] = 0.0;
  // A few empty bins elsewhere: the fit uses the others and fills them in.
  t.in.data[static_cast<int>(AbcdRegion::kBx)].sumw[b.Index(6, 3, 0)] = -1.0;
  const NonpromptResult res = EstimateNonprompt(t.in, NonpromptOptions::Full());
  CHECK_FALSE(res.fits[5 * 2 + 1].ok);
  CHECK(res.nominal[b.Index(5, 4, 1)] == 0.0);
  CHECK(res.raw[b.Index(6, 3, 0)] == 0.0);
  CHECK(res.nominal[b.Index(6, 3, 0)] ==
        doctest::Approx(t.truth_d[b.Index(6, 3, 0)]).epsilon(1e-9));
  CHECK(res.variations.size() == (48 * 2 - 1) * 3 + 1 + 2);

  NonpromptInputs bad = t.in;
  bad.data[static_cast<int>(AbcdRegion::kC)].sumw.pop_back();
  CHECK_THROWS_WITH_AS(
      EstimateNonprompt(bad, NonpromptOptions::Full()),
      doctest::Contains("data.C has 2879 sumw and 2880 sumw2 entries, but must have 2880"),
      std::invalid_argument);
  bad = t.in;
  bad.data[static_cast<int>(AbcdRegion::kB)].sumw2[3] = -1;
  CHECK_THROWS_WITH_AS(EstimateNonprompt(bad, NonpromptOptions::Full()),
                       doctest::Contains("data.B[3] is"), std::invalid_argument);
  NonpromptOptions o;
  o.smoothing_order = 9;
  CHECK_THROWS_WITH_AS(EstimateNonprompt(t.in, o), doctest::Contains("smoothing_order is 9"),
                       std::invalid_argument);
}

TEST_CASE("non-prompt option and binning defaults are valid") {
  std::string error;
  CHECK(NonpromptOptions{}.IsValid(&error));
  CHECK(NonpromptOptions::Full().IsValid(&error));
  CHECK(NonpromptOptions::Light().IsValid(&error));
  CHECK(NonpromptBinning::WMass().IsValid(&error));
  CHECK(NonpromptBinning::WMass().size() == 2880);
  NonpromptBinning b = NonpromptBinning::WMass();
  b.pt_edges[3] = b.pt_edges[2];
  CHECK_FALSE(b.IsValid(&error));
  CHECK(error == "NonpromptBinning: pt_edges[3] is 28, but must be > 28");
}
