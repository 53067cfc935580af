// Embedding lepus: build a binned model in memory, fit it, print the result; optionally read a
// fit input file (argv[1]) and fit that too. Links lepus::engine and lepus::io only.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <lepus/engine/fit.h>
#include <lepus/engine/likelihood.h>
#include <lepus/engine/model.h>
#include <lepus/io/errors.h>
#include <lepus/io/reader.h>

namespace {

// A resonance search in 20 bins of a mass spectrum: a Gaussian signal on a falling background,
// a 5% background normalisation uncertainty and a signal-shape systematic, with Barlow-Beeston
// MC statistics on the background. Built directly as an engine::Model.
lepus::engine::Model MakeModel() {
  namespace eng = lepus::engine;
  constexpr int kBins = 20, kProcs = 2, kSysts = 2;
  eng::Model m;
  m.processes = {"signal", "background"};
  m.num_signals = 1;
  m.systematics = {"bkg_norm", "sig_width"};
  m.constraint_weights = {1.0, 1.0};  // Gaussian constraints of width 1
  m.groups = {{"background", {0}}, {"signal_model", {1}}};

  eng::Channel ch;
  ch.name = "mass";
  ch.nbins = kBins;
  eng::Axis axis{"m_gev", {}};
  for (int b = 0; b <= kBins; ++b) axis.edges.push_back(110.0 + 2.0 * b);
  ch.axes = {axis};
  m.channels = {ch};
  m.nbins = m.nbins_full = kBins;

  // norm is [bin x process], logk is [bin x process x systematic], both row-major.
  std::vector<double> norm(kBins * kProcs), logk(kBins * kProcs * kSysts, 0.0);
  m.sumw2 = Eigen::MatrixXd::Zero(kBins, kProcs);
  for (int b = 0; b < kBins; ++b) {
    const double x = 111.0 + 2.0 * b;
    const double z = (x - 125.0) / 3.0;
    norm[b * kProcs + 0] = 40.0 * std::exp(-0.5 * z * z);
    norm[b * kProcs + 1] = 500.0 * std::exp(-(x - 110.0) / 25.0);
    m.sumw2(b, 1) = 0.2 * norm[b * kProcs + 1];  // simulated with weight 0.2 per event
    logk[(b * kProcs + 1) * kSysts + 0] = std::log(1.05);
    logk[(b * kProcs + 0) * kSysts + 1] = 0.1 * (z * z - 1.0);  // wider/narrower peak
  }
  m.tensor = eng::Tensor::FromDense(kBins, kProcs, kSysts, norm, logk, {});
  m.sumw = m.DenseNorm();
  m.pseudodata = Eigen::MatrixXd(kBins, 0);

  // "Observed" data: the expectation with signal strength 1.3 (no fluctuation).
  m.data_obs = Eigen::VectorXd(kBins);
  for (int b = 0; b < kBins; ++b)
    m.data_obs[b] = std::round(1.3 * norm[b * kProcs + 0] + norm[b * kProcs + 1]);
  return m;
}

int FitAndPrint(lepus::engine::Model model, const std::string& title) {
  namespace eng = lepus::engine;
  std::string error;
  if (!model.IsValid(&error)) {
    std::fprintf(stderr, "%s: invalid model: %s\n", title.c_str(), error.c_str());
    return 1;
  }
  const eng::Likelihood likelihood(std::move(model));  // bin-by-bin statistics on by default
  const eng::FitResult result = eng::Fit(likelihood);
  std::printf("== %s\n%s\n", title.c_str(), result.BriefReport().c_str());
  const auto& params = likelihood.params();
  for (int i = 0; i < likelihood.num_params(); ++i)
    std::printf("  %-24s %-9s %10.5f +- %.5f\n", params[i].name.c_str(),
                eng::ToString(params[i].kind).c_str(), result.values[i], result.errors[i]);
  std::printf("  chi2/ndf = %.2f/%d (p = %.3f)\n", result.gof_chi2, result.gof_ndf, result.gof_p);
  return result.ok() ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  int code = FitAndPrint(MakeModel(), "in-memory model");
  if (argc > 1) {
    try {
      lepus::io::ReadInfo info;
      lepus::engine::Model model = lepus::io::ReadFitInput(argv[1], &info);
      for (const auto& w : info.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      code = std::max(code, FitAndPrint(std::move(model), argv[1]));
    } catch (const lepus::io::InputError& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
  }
  return code;
}
