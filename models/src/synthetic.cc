#include "lepus/models/synthetic.h"

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace lepus::models {

engine::Model MakeSyntheticModel(const SyntheticSpec& spec) {
  if (spec.nbins <= 0 || spec.nproc <= 0 || spec.nsyst < 0 || spec.nmasked < 0)
    throw std::invalid_argument("SyntheticSpec: nbins and nproc must be > 0, nsyst/nmasked >= 0");
  if (spec.nsignal < 0 || spec.nsignal > spec.nproc)
    throw std::invalid_argument("SyntheticSpec: nsignal is " + std::to_string(spec.nsignal) +
                                ", but must be in [0, nproc]");
  if (spec.nfree > spec.nsyst || spec.nnoi > spec.nsyst)
    throw std::invalid_argument("SyntheticSpec: nfree and nnoi must be <= nsyst");
  if (!(spec.density >= 0.0 && spec.density <= 1.0))
    throw std::invalid_argument("SyntheticSpec: density must be in [0, 1]");

  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::normal_distribution<double> gaus(0.0, 1.0);

  engine::Model m;
  const int nbf = spec.nbins + spec.nmasked;
  m.nbins = spec.nbins;
  m.nbins_full = nbf;
  m.num_signals = spec.nsignal;
  for (int p = 0; p < spec.nproc; ++p)
    m.processes.push_back(p < spec.nsignal ? "sig" + std::to_string(p) : "bkg" + std::to_string(p));
  for (int s = 0; s < spec.nsyst; ++s) {
    m.systematics.push_back("syst" + std::to_string(s));
    m.constraint_weights.push_back(s < spec.nfree ? 0.0 : 1.0);
    if (s < spec.nnoi) m.noi_indices.push_back(s);
  }
  m.systematic_type = spec.type;
  m.asymmetric = spec.asymmetric;
  m.storage = spec.density < 0.5 ? engine::StorageKind::kSparse : engine::StorageKind::kDense;
  engine::Channel ch;
  ch.name = "ch0";
  ch.nbins = spec.nbins;
  ch.axes.push_back({"x", {}});
  for (int b = 0; b <= spec.nbins; ++b) ch.axes[0].edges.push_back(b);
  m.channels.push_back(ch);
  if (spec.nmasked > 0) {
    engine::Channel mc;
    mc.name = "masked";
    mc.nbins = spec.nmasked;
    mc.masked = true;
    m.channels.push_back(mc);
  }

  const std::size_t ncell = static_cast<std::size_t>(nbf) * spec.nproc;
  std::vector<double> norm(ncell), avg(ncell * spec.nsyst, 0.0), hd;
  if (spec.asymmetric) hd.assign(ncell * spec.nsyst, 0.0);
  m.sumw2 = Eigen::MatrixXd::Zero(nbf, spec.nproc);
  for (int b = 0; b < nbf; ++b) {
    for (int p = 0; p < spec.nproc; ++p) {
      // Smooth shapes: signal peaked, backgrounds falling, plus noise.
      const double xb = (b + 0.5) / nbf;
      double shape = p < spec.nsignal ? std::exp(-0.5 * std::pow((xb - 0.5) / 0.2, 2)) + 0.1
                                      : std::exp(-xb * (1.0 + p)) + 0.05;
      const double y = spec.yield_scale * shape * (0.8 + 0.4 * uni(rng));
      const std::size_t cell = static_cast<std::size_t>(b) * spec.nproc + p;
      norm[cell] = y;
      if (spec.mc_stat && p != spec.nproc - 1) m.sumw2(b, p) = y * (0.05 + 0.2 * uni(rng));
      for (int s = 0; s < spec.nsyst; ++s) {
        if (uni(rng) >= spec.density) continue;
        const double slope = (s % 2 == 0) ? (xb - 0.5) : 1.0;
        const double a = spec.logk_size * (gaus(rng) * 0.5 + slope);
        const std::size_t k = cell * spec.nsyst + s;
        if (spec.type == engine::SystematicType::kNormal) {
          avg[k] = a * y;
          if (spec.asymmetric) hd[k] = 0.3 * a * y * gaus(rng);
        } else {
          avg[k] = a;
          if (spec.asymmetric) hd[k] = 0.3 * spec.logk_size * gaus(rng);
        }
      }
    }
  }
  m.tensor = engine::Tensor::FromDense(nbf, spec.nproc, spec.nsyst, norm, avg, hd);
  m.sumw = m.DenseNorm();

  // Data: expectation at a "truth" with mu = 1.1 and theta ~ 0.5 N(0,1) (for log-normal),
  // Poisson-fluctuated if requested.
  Eigen::VectorXd truth_theta(spec.nsyst);
  for (int s = 0; s < spec.nsyst; ++s) truth_theta[s] = 0.5 * gaus(rng);
  m.data_obs = Eigen::VectorXd::Zero(spec.nbins);
  for (int b = 0; b < spec.nbins; ++b) {
    double lam = 0.0;
    for (int p = 0; p < spec.nproc; ++p) {
      const std::size_t cell = static_cast<std::size_t>(b) * spec.nproc + p;
      const double r = p < spec.nsignal ? 1.1 : 1.0;
      double e = 0.0;
      for (int s = 0; s < spec.nsyst; ++s) e += truth_theta[s] * avg[cell * spec.nsyst + s];
      lam += spec.type == engine::SystematicType::kNormal ? r * norm[cell] + e
                                                          : r * norm[cell] * std::exp(e);
    }
    lam = std::max(lam, 1e-3);
    if (spec.poisson_data) {
      std::poisson_distribution<long long> pois(lam);
      m.data_obs[b] = static_cast<double>(pois(rng));
    } else {
      m.data_obs[b] = lam;
    }
  }
  return m;
}

}  // namespace lepus::models
