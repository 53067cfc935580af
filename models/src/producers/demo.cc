#include "lepus/models/demo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace lepus::models {
namespace {

constexpr double kMassW = 80.379;        // GeV
constexpr double kMassZ = 91.1876;       // GeV
constexpr double kScalePerSigma = 1e-4;  // relative muon momentum scale per muonScale sigma
constexpr int kAngularPoints = 400;      // decay-angle grid of the Jacobian-peak integral

enum class Proc { kW, kZ, kNonprompt, kTop };

// Bin layout of the single channel: eta x pt x charge, row-major (eta slowest).
struct Layout {
  std::vector<double> eta_edges, pt_edges;
  int neta = 0, npt = 0;
  int nbins() const { return neta * npt * 2; }
  int Index(int ieta, int ipt, int iq) const { return (ieta * npt + ipt) * 2 + iq; }
  double EtaCenter(int ieta) const { return 0.5 * (eta_edges[ieta] + eta_edges[ieta + 1]); }
  double PtCenter(int ipt) const { return 0.5 * (pt_edges[ipt] + pt_edges[ipt + 1]); }
};

std::vector<double> Linspace(double lo, double hi, int n) {
  std::vector<double> edges(n + 1);
  for (int i = 0; i <= n; ++i) edges[i] = lo + (hi - lo) * i / n;
  return edges;
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Fraction of decays with reconstructed lepton pT in each bin for a two-body decay of a boson
// of the given mass at rest: pT = (m/2) sin(theta*), angular weight 1 + cos^2(theta*) (the
// charge-symmetric part of V-A), smeared by a Gaussian of width hypot(boost, resolution * pT)
// that stands in for the boson's transverse momentum and the detector resolution.
std::vector<double> JacobianPeak(const std::vector<double>& edges, double mass, double boost,
                                 double resolution) {
  std::vector<double> frac(edges.size() - 1, 0.0);
  double wsum = 0.0;
  for (int i = 0; i < kAngularPoints; ++i) {
    const double c = -1.0 + (i + 0.5) * 2.0 / kAngularPoints;
    const double w = 1.0 + c * c;
    const double pt = 0.5 * mass * std::sqrt(1.0 - c * c);
    const double sigma = std::hypot(boost, resolution * pt);
    wsum += w;
    double lo_cdf = NormalCdf((edges[0] - pt) / sigma);
    for (std::size_t b = 0; b + 1 < edges.size(); ++b) {
      const double hi_cdf = NormalCdf((edges[b + 1] - pt) / sigma);
      frac[b] += w * (hi_cdf - lo_cdf);
      lo_cdf = hi_cdf;
    }
  }
  for (double& f : frac) f /= wsum;
  return frac;
}

// Unnormalised smooth pT spectra of the backgrounds without a resonance, integrated per bin.
std::vector<double> FallingSpectrum(const std::vector<double>& edges, Proc proc) {
  std::vector<double> out(edges.size() - 1, 0.0);
  constexpr int kSub = 16;
  for (std::size_t b = 0; b + 1 < edges.size(); ++b) {
    const double w = (edges[b + 1] - edges[b]) / kSub;
    for (int k = 0; k < kSub; ++k) {
      const double pt = edges[b] + (k + 0.5) * w;
      out[b] += w * (proc == Proc::kNonprompt ? std::exp(-(pt - 26.0) / 9.0)
                                              : pt * pt * std::exp(-pt / 20.0) / 400.0);
    }
  }
  return out;
}

// Relative eta x charge distribution (before normalisation). Charge index 0 = negative.
double EtaChargeWeight(Proc proc, double eta, int iq) {
  const double q = iq == 0 ? -1.0 : 1.0;
  const double acceptance = 0.92 - 0.04 * std::abs(eta);
  switch (proc) {
    case Proc::kW:  // W+ more frequent and with a broader rapidity distribution
      return acceptance * (q > 0 ? 0.57 : 0.43) * (1.0 - 0.03 * eta * eta + 0.02 * q * eta * eta);
    case Proc::kZ:
      return acceptance * 0.5 * (1.0 - 0.05 * eta * eta);
    case Proc::kNonprompt:
      return 0.5 * (1.0 + 0.02 * eta * eta);
    case Proc::kTop:
      return acceptance * 0.5 * (1.0 - 0.08 * eta * eta);
  }
  return 0.0;
}

struct Variation {
  double mass_shift_mev = 0.0;  // W mass shift
  int scale_region = -1;        // eta region whose muon momentum scale is shifted
  double scale = 0.0;           // relative scale shift in that region
};

// Unnormalised template of one process over the whole channel.
std::vector<double> RawTemplate(const Layout& lay, Proc proc, const Variation& var, int regions) {
  std::vector<double> hist(lay.nbins(), 0.0);
  const int per_region = lay.neta / regions;
  for (int ie = 0; ie < lay.neta; ++ie) {
    const double eta = lay.EtaCenter(ie);
    // A reconstructed pT scaled by (1 + s) falls in [lo, hi] when the true one is in
    // [lo, hi] / (1 + s). The nonprompt background is taken from data: no scale dependence.
    const double s =
        (ie / per_region == var.scale_region && proc != Proc::kNonprompt) ? var.scale : 0.0;
    std::vector<double> edges = lay.pt_edges;
    for (double& e : edges) e /= (1.0 + s);
    const double resolution = 0.01 + 0.012 * (eta / 2.4) * (eta / 2.4);
    std::vector<double> shape;
    switch (proc) {
      case Proc::kW:
        shape = JacobianPeak(edges, kMassW + 1e-3 * var.mass_shift_mev, 4.0, resolution);
        break;
      case Proc::kZ:
        shape = JacobianPeak(edges, kMassZ, 6.0, resolution);
        break;
      default:
        shape = FallingSpectrum(edges, proc);
    }
    for (int iq = 0; iq < 2; ++iq) {
      const double w = EtaChargeWeight(proc, eta, iq);
      for (int ip = 0; ip < lay.npt; ++ip) hist[lay.Index(ie, ip, iq)] = w * shape[ip];
    }
  }
  return hist;
}

std::vector<double> Scaled(std::vector<double> v, double factor) {
  for (double& x : v) x *= factor;
  return v;
}

double Sum(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

std::string DemoPseudoDataName(double shift_mev) {
  const long long rounded = std::llround(shift_mev);
  char buf[64];
  if (rounded == 0) return "mass_shift_0MeV";
  std::snprintf(buf, sizeof(buf), "mass_shift_%c%lldMeV", rounded < 0 ? 'm' : 'p',
                rounded < 0 ? -rounded : rounded);
  return buf;
}

io::TensorWriter MakeDemoInput(const DemoSpec& spec) {
  if (spec.eta_bins <= 0 || spec.pt_bins <= 0 || !(spec.eta_max > 0.0) ||
      !(spec.pt_max > spec.pt_min) || !(spec.pt_min > 0.0))
    throw std::invalid_argument("DemoSpec: binning must have positive bin counts and ranges");
  if (!(spec.w_events > 0.0) || !(spec.mc_weight >= 0.0))
    throw std::invalid_argument("DemoSpec: w_events must be > 0 and mc_weight >= 0");
  if (spec.scale_regions <= 0 || spec.eta_bins % spec.scale_regions != 0)
    throw std::invalid_argument(
        "DemoSpec: scale_regions is " + std::to_string(spec.scale_regions) +
        ", but must be > 0 and divide eta_bins = " + std::to_string(spec.eta_bins));

  Layout lay;
  lay.neta = spec.eta_bins;
  lay.npt = spec.pt_bins;
  lay.eta_edges = Linspace(-spec.eta_max, spec.eta_max, spec.eta_bins);
  lay.pt_edges = Linspace(spec.pt_min, spec.pt_max, spec.pt_bins);
  const int regions = spec.scale_regions;
  const std::string ch = "wmass";

  io::TensorWriter w(engine::SystematicType::kLogNormal);
  w.AddChannel(ch, {engine::Axis{"eta", lay.eta_edges}, engine::Axis{"pt", lay.pt_edges},
                    engine::Axis{"charge", {-2.0, 0.0, 2.0}}});

  // Yields relative to the W signal, and the weight of one simulated (or, for the nonprompt
  // background, extrapolated data) event, which sets the MC-statistical uncertainty.
  struct ProcInfo {
    const char* name;
    Proc proc;
    bool signal;
    double rel_yield;
    double weight;
  };
  const ProcInfo procs[] = {{"Wmunu", Proc::kW, true, 1.0, spec.mc_weight},
                            {"Zmumu", Proc::kZ, false, 0.07, spec.mc_weight},
                            {"nonprompt", Proc::kNonprompt, false, 0.06, 2.5 * spec.mc_weight},
                            {"top", Proc::kTop, false, 0.01, 0.5 * spec.mc_weight}};

  // One normalisation per process, fixed by the true nominal template and shared by its
  // variations (so acceptance changes of a variation show up as yield changes).
  std::vector<double> factor(4);
  std::vector<std::vector<double>> truth(4), nominal(4), mc_ratio(4);
  // The templates written to the file are "simulated": the true shape times a per-bin MC
  // fluctuation, weight * Poisson(true / weight), shared by all variations of a process (they
  // come from the same simulated events). The data are drawn from the true shapes, so the
  // Barlow-Beeston terms have real MC fluctuations to absorb.
  std::mt19937_64 mc_rng(spec.mc_seed);
  for (int p = 0; p < 4; ++p) {
    const auto raw = RawTemplate(lay, procs[p].proc, {}, regions);
    factor[p] = spec.w_events * procs[p].rel_yield / Sum(raw);
    truth[p] = Scaled(raw, factor[p]);
    mc_ratio[p].assign(truth[p].size(), 1.0);
    const double wgt = procs[p].weight;
    for (std::size_t b = 0; b < truth[p].size(); ++b) {
      if (!(wgt > 0.0) || !(truth[p][b] > 0.0)) continue;
      std::poisson_distribution<long long> pois(truth[p][b] / wgt);
      // At least one simulated event per bin: the MC estimate stays positive.
      mc_ratio[p][b] = std::max(1.0, static_cast<double>(pois(mc_rng))) * wgt / truth[p][b];
    }
    nominal[p] = truth[p];
    for (std::size_t b = 0; b < truth[p].size(); ++b) nominal[p][b] *= mc_ratio[p][b];
    w.AddProcess(procs[p].name, procs[p].signal);
  }
  for (int p = 0; p < 4; ++p)
    w.SetNominal(ch, procs[p].name, nominal[p], Scaled(nominal[p], procs[p].weight));

  // A variation of process p as simulated: the true varied shape times the MC fluctuation.
  auto simulated = [&](int p, std::vector<double> true_template) {
    for (std::size_t b = 0; b < true_template.size(); ++b) true_template[b] *= mc_ratio[p][b];
    return true_template;
  };
  auto w_truth = [&](double shift_mev) {
    Variation v;
    v.mass_shift_mev = shift_mev;
    return Scaled(RawTemplate(lay, Proc::kW, v, regions), factor[0]);
  };
  auto w_template = [&](double shift_mev) { return simulated(0, w_truth(shift_mev)); };
  // Expectation with all processes from the true shapes (data) or the simulated ones
  // (pseudo-data, as from an alternative simulated sample).
  auto expectation = [&](double shift_mev, bool true_shapes) {
    std::vector<double> sum = true_shapes ? w_truth(shift_mev) : w_template(shift_mev);
    for (int p = 1; p < 4; ++p)
      for (std::size_t b = 0; b < sum.size(); ++b)
        sum[b] += true_shapes ? truth[p][b] : nominal[p][b];
    return sum;
  };

  // W mass: unconstrained nuisance of interest, asymmetric (up and down templates kept).
  w.DeclareSystematic(kDemoMassNoi, /*prior_width=*/0.0, /*noi=*/true, kDemoMassScaleMeV, "MeV");
  w.AddShapeSystematic(kDemoMassNoi, "Wmunu", ch, w_template(kDemoMassScaleMeV),
                       w_template(-kDemoMassScaleMeV), io::Symmetrization::kNone);
  w.AddToGroup("mass", kDemoMassNoi);

  // Luminosity on the simulated processes; per-background normalisations.
  w.DeclareSystematic("lumi");
  for (const char* p : {"Wmunu", "Zmumu", "top"}) w.AddNormSystematic("lumi", p, ch, 1.012);
  w.AddToGroup("lumi", "lumi");
  const std::pair<const char*, double> norms[] = {
      {"Zmumu", 1.03}, {"nonprompt", 1.15}, {"top", 1.06}};
  for (const auto& [p, kappa] : norms) {
    const std::string name = std::string("norm_") + p;
    w.DeclareSystematic(name);
    w.AddNormSystematic(name, p, ch, kappa);
    w.AddToGroup("backgrounds", name);
  }

  // Muon momentum scale per eta region (zero outside the region: a sparse pattern).
  for (int r = 0; r < regions; ++r) {
    const std::string name = "muonScale_eta" + std::to_string(r);
    w.DeclareSystematic(name);
    for (int p : {0, 1, 3}) {
      Variation up{0.0, r, kScalePerSigma}, down{0.0, r, -kScalePerSigma};
      w.AddShapeSystematic(
          name, procs[p].name, ch,
          simulated(p, Scaled(RawTemplate(lay, procs[p].proc, up, regions), factor[p])),
          simulated(p, Scaled(RawTemplate(lay, procs[p].proc, down, regions), factor[p])),
          io::Symmetrization::kAverage);
    }
    w.AddToGroup("muonScale", name);
  }

  // Efficiencies: relative changes smooth in eta and pT (pT slopes correlate with the mass).
  struct Eff {
    const char* name;
    double (*rel)(double eta, double pt, double q);
  };
  const Eff effs[] = {
      {"effTrigger",
       [](double eta, double, double) { return 0.004 * (1.0 + 0.5 * std::abs(eta) / 2.4); }},
      {"effIso", [](double, double pt, double) { return 0.001 * (pt - 41.0) / 15.0; }},
      {"effReco", [](double eta, double, double q) { return 0.002 * (1.0 + 0.5 * q * eta / 2.4); }},
  };
  for (const Eff& e : effs) {
    w.DeclareSystematic(e.name);
    for (int p : {0, 1, 3}) {
      std::vector<double> up = nominal[p];
      for (int ie = 0; ie < lay.neta; ++ie)
        for (int ip = 0; ip < lay.npt; ++ip)
          for (int iq = 0; iq < 2; ++iq)
            up[lay.Index(ie, ip, iq)] *=
                1.0 + e.rel(lay.EtaCenter(ie), lay.PtCenter(ip), iq == 0 ? -1.0 : 1.0);
      w.AddShapeSystematic(e.name, procs[p].name, ch, up);
    }
    w.AddToGroup("efficiency", e.name);
  }

  // Observed data: Poisson fluctuation of the expectation at the true mass shift, all other
  // nuisances at their nominal values.
  std::mt19937_64 rng(spec.seed);
  std::vector<double> data = expectation(spec.true_mass_shift_mev, /*true_shapes=*/true);
  for (double& n : data) {
    std::poisson_distribution<long long> pois(n);
    n = static_cast<double>(pois(rng));
  }
  w.SetData(ch, data);
  for (double shift : spec.pseudodata_shifts_mev)
    w.AddPseudoData(DemoPseudoDataName(shift), ch, expectation(shift, /*true_shapes=*/false));
  return w;
}

}  // namespace lepus::models
