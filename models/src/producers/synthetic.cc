#include "lepus/models/synthetic.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

namespace lepus::models {

engine::Model MakeCmsLikeModel(const CmsLikeSpec& spec) {
  if (spec.neta <= 0 || spec.npt <= 0 || spec.ncharge <= 0 || spec.nproc < 3)
    throw std::invalid_argument("CmsLikeSpec: neta, npt, ncharge must be > 0 and nproc >= 3");
  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::normal_distribution<double> gaus(0.0, 1.0);
  const int nbins = spec.neta * spec.npt * spec.ncharge;
  const int nproc = spec.nproc;

  engine::Model m;
  m.nbins = m.nbins_full = nbins;
  m.num_signals = 2;
  m.processes = {"Wplus", "Wminus"};
  for (int p = 2; p < nproc; ++p) m.processes.push_back("bkg" + std::to_string(p));
  // Systematics: mass NOI, lumi, background norms, global, then local per eta bin.
  std::vector<std::string>& names = m.systematics;
  names.push_back("massShift100MeV");
  m.noi_indices.push_back(0);
  names.push_back("lumi");
  for (int p = 2; p < nproc; ++p) names.push_back("norm_" + m.processes[p]);
  const int first_global = static_cast<int>(names.size());
  for (int g = 0; g < spec.n_global; ++g) names.push_back("theory" + std::to_string(g));
  const int first_local = static_cast<int>(names.size());
  const int nlocal_per_eta = spec.n_eff_per_eta + spec.n_scale_per_eta;
  for (int e = 0; e < spec.neta; ++e) {
    // (built with append: GCC 12 warns falsely (-Wrestrict) on chained operator+ here)
    for (int k = 0; k < nlocal_per_eta; ++k) {
      std::string n = k < spec.n_eff_per_eta ? "eff_eta" : "scale_eta";
      n.append(std::to_string(e))
          .append("_")
          .append(std::to_string(k < spec.n_eff_per_eta ? k : k - spec.n_eff_per_eta));
      names.push_back(std::move(n));
    }
  }
  const int nsyst = static_cast<int>(names.size());
  m.constraint_weights.assign(nsyst, 1.0);
  m.constraint_weights[0] = 0.0;
  m.systematic_scales.assign(nsyst, 0.0);
  m.systematic_units.assign(nsyst, "");
  m.systematic_scales[0] = 100.0;
  m.systematic_units[0] = "MeV";
  m.asymmetric = spec.asymmetric;
  m.storage = engine::StorageKind::kSparse;
  engine::Channel ch;
  ch.name = "wmass";
  ch.nbins = nbins;
  ch.axes = {{"eta", {}}, {"pt", {}}, {"charge", {-2.0, 0.0, 2.0}}};
  for (int i = 0; i <= spec.neta; ++i) ch.axes[0].edges.push_back(-2.4 + 4.8 * i / spec.neta);
  for (int i = 0; i <= spec.npt; ++i) ch.axes[1].edges.push_back(26.0 + 30.0 * i / spec.npt);
  if (spec.ncharge != 2) {
    ch.axes[2].edges.clear();
    for (int i = 0; i <= spec.ncharge; ++i) ch.axes[2].edges.push_back(i);
  }
  m.channels.push_back(ch);
  m.groups.push_back({"theory", {}});
  m.groups.push_back({"efficiency", {}});
  m.groups.push_back({"muonScale", {}});
  for (int g = 0; g < spec.n_global; ++g) m.groups[0].members.push_back(first_global + g);
  for (int e = 0; e < spec.neta; ++e)
    for (int k = 0; k < nlocal_per_eta; ++k)
      m.groups[k < spec.n_eff_per_eta ? 1 : 2].members.push_back(first_local + e * nlocal_per_eta +
                                                                 k);

  // Tensor rows built directly in compressed form: (bin, proc) in order.
  engine::Tensor& t = m.tensor;
  t.row_start.push_back(0);
  m.sumw2 = Eigen::MatrixXd::Zero(nbins, nproc);
  m.data_obs.resize(nbins);
  for (int e = 0; e < spec.neta; ++e) {
    const double eta = -2.4 + 4.8 * (e + 0.5) / spec.neta;
    for (int ip = 0; ip < spec.npt; ++ip) {
      const double pt = 26.0 + 30.0 * (ip + 0.5) / spec.npt;
      for (int q = 0; q < spec.ncharge; ++q) {
        const int b = (e * spec.npt + ip) * spec.ncharge + q;
        double total = 0.0;
        for (int p = 0; p < nproc; ++p) {
          // Jacobian-peak-like signal; falling backgrounds; W+ / W- by charge.
          double y;
          if (p < 2) {
            const double peak = std::exp(-0.5 * std::pow((pt - 40.0) / 6.0, 2)) + 0.3;
            y = 4.0e4 * peak * (1.0 - 0.1 * eta * eta / 5.76) *
                ((p == 0) == (q == 1 || spec.ncharge == 1) ? 1.0 : 0.05);
          } else {
            y = 2.0e3 * std::exp(-(pt - 26.0) / (8.0 + p)) / (1.0 + 0.1 * p);
          }
          y *= 0.9 + 0.2 * uni(rng);
          t.row_bin.push_back(b);
          t.row_proc.push_back(p);
          t.norm.push_back(y);
          total += y;
          if (p != nproc - 1) m.sumw2(b, p) = y * 0.02;  // last process data-driven: no MC stat
          auto add = [&](int s, double a) {
            t.syst.push_back(s);
            t.logk_avg.push_back(a);
            if (spec.asymmetric) t.logk_halfdiff.push_back(0.2 * a * gaus(rng));
          };
          if (p < 2) add(0, 0.002 * (pt - 40.0) / 10.0);  // mass: pT-slope
          add(1, 0.012);                                  // lumi
          if (p >= 2) add(2 + (p - 2), 0.05);             // own normalisation
          if (p < 2)
            for (int g = 0; g < spec.n_global; ++g)
              add(first_global + g,
                  0.003 * std::sin(0.7 * g + 0.1 * ip + 0.05 * e) + 0.001 * gaus(rng));
          for (int k = 0; k < nlocal_per_eta; ++k) {
            // efficiency: half per charge; scale: both charges
            if (k < spec.n_eff_per_eta && (k % spec.ncharge) != q) continue;
            add(first_local + e * nlocal_per_eta + k,
                0.002 * std::cos(0.3 * k + 0.2 * ip) + 0.0005 * gaus(rng));
          }
          t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
        }
        std::poisson_distribution<long long> pois(total);
        m.data_obs[b] = static_cast<double>(pois(rng));
      }
    }
  }
  m.sumw = m.DenseNorm();
  return m;
}

}  // namespace lepus::models

namespace lepus::models {

engine::Model MakeCalibrationScaleModel(const CalibrationScaleSpec& spec) {
  auto fail = [](const std::string& field, long long value, const std::string& constraint) {
    throw std::invalid_argument("CalibrationScaleSpec." + field + " is " + std::to_string(value) +
                                ", but must be " + constraint);
  };
  if (spec.nregions <= 0) fail("nregions", spec.nregions, "> 0");
  if (spec.bins_per_region <= 0) fail("bins_per_region", spec.bins_per_region, "> 0");
  if (spec.local_per_region <= 0) fail("local_per_region", spec.local_per_region, "> 0");
  if (spec.local_per_bin < 0 || spec.local_per_bin > spec.local_per_region)
    fail("local_per_bin", spec.local_per_bin, "in [0, local_per_region]");
  if (spec.partner_per_bin < 0 || spec.partner_per_bin > spec.local_per_region)
    fail("partner_per_bin", spec.partner_per_bin, "in [0, local_per_region]");
  if (spec.n_global < 0) fail("n_global", spec.n_global, ">= 0");
  if (spec.nproc < 1) fail("nproc", spec.nproc, ">= 1");
  if (!(spec.yield_scale > 0))
    throw std::invalid_argument("CalibrationScaleSpec.yield_scale must be > 0");
  const long long nbins_ll = static_cast<long long>(spec.nregions) * spec.bins_per_region;
  if (nbins_ll > (1LL << 30)) fail("nregions * bins_per_region", nbins_ll, "<= 2^30");
  const int nbins = static_cast<int>(nbins_ll);
  const int nproc = spec.nproc;
  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::normal_distribution<double> gaus(0.0, 1.0);

  engine::Model m;
  m.nbins = m.nbins_full = nbins;
  m.num_signals = 1;
  m.processes = {"signal"};
  for (int p = 1; p < nproc; ++p) m.processes.push_back("bkg" + std::to_string(p));
  std::vector<std::string>& names = m.systematics;
  for (int p = 1; p < nproc; ++p) names.push_back("norm_" + m.processes[p]);
  const int first_global = static_cast<int>(names.size());
  for (int g = 0; g < spec.n_global; ++g) names.push_back("global" + std::to_string(g));
  const int first_local = static_cast<int>(names.size());
  for (int r = 0; r < spec.nregions; ++r)
    for (int k = 0; k < spec.local_per_region; ++k) {
      std::string n = "local_r";
      n.append(std::to_string(r)).append("_").append(std::to_string(k));
      names.push_back(std::move(n));
    }
  const int nsyst = static_cast<int>(names.size());
  m.constraint_weights.assign(nsyst, 1.0);
  m.asymmetric = spec.asymmetric;
  m.storage = engine::StorageKind::kSparse;
  engine::Channel ch;
  ch.name = "calibration";
  ch.nbins = nbins;
  ch.axes = {{"region", {}}, {"mass", {}}};
  for (int i = 0; i <= spec.nregions; ++i) ch.axes[0].edges.push_back(i);
  for (int i = 0; i <= spec.bins_per_region; ++i)
    ch.axes[1].edges.push_back(2.9 + 0.4 * i / spec.bins_per_region);
  m.channels.push_back(ch);
  m.groups.push_back({"global", {}});
  m.groups.push_back({"local", {}});
  for (int g = 0; g < spec.n_global; ++g) m.groups[0].members.push_back(first_global + g);
  for (int s = first_local; s < nsyst; ++s) m.groups[1].members.push_back(s);

  // Truth for the pseudo-data.
  Eigen::VectorXd truth(nsyst);
  for (int s = 0; s < nsyst; ++s) truth[s] = 0.5 * gaus(rng);
  const double mu_true = 1.05;

  engine::Tensor& t = m.tensor;
  t.row_start.push_back(0);
  m.sumw2 = Eigen::MatrixXd::Zero(nbins, nproc);
  m.data_obs.resize(nbins);
  std::vector<std::pair<int, double>> entries;
  for (int r = 0; r < spec.nregions; ++r) {
    // Partner region: a fixed pseudo-random permutation-like map (the other muon's eta cell).
    const int partner = static_cast<int>((static_cast<long long>(r) * 7919 + 13) % spec.nregions);
    for (int i = 0; i < spec.bins_per_region; ++i) {
      const int b = r * spec.bins_per_region + i;
      const double xm = (i + 0.5) / spec.bins_per_region;  // position in the mass window
      double total = 0.0;
      for (int p = 0; p < nproc; ++p) {
        double y = p == 0
                       ? spec.yield_scale * (std::exp(-0.5 * std::pow((xm - 0.5) / 0.12, 2)) + 0.05)
                       : 0.3 * spec.yield_scale * std::exp(-1.5 * xm) / p;
        y *= (0.8 + 0.4 * uni(rng)) * (0.7 + 0.6 * std::abs(std::sin(0.37 * r)));
        entries.clear();
        if (p >= 1) entries.push_back({p - 1, 0.05});
        for (int g = 0; g < spec.n_global; ++g)
          entries.push_back(
              {first_global + g,
               (p == 0 ? 0.01 : 0.005) * std::sin(1.3 * g + 4.0 * xm) + 0.002 * gaus(rng)});
        if (p == 0) {
          // Calibration-like local effects: shape changes (odd in the mass) and normalisation.
          for (int j = 0; j < spec.local_per_bin; ++j) {
            const int k = (i * spec.local_per_bin + j) % spec.local_per_region;
            const double shape = (j % 2 == 0) ? (xm - 0.5) * 4.0 : 1.0;
            entries.push_back({first_local + r * spec.local_per_region + k,
                               spec.logk_local * (shape + 0.3 * gaus(rng))});
          }
          for (int j = 0; j < spec.partner_per_bin; ++j) {
            const int k = (i * spec.partner_per_bin + j + 1) % spec.local_per_region;
            entries.push_back({first_local + partner * spec.local_per_region + k,
                               0.5 * spec.logk_local * ((xm - 0.5) * 4.0 + 0.3 * gaus(rng))});
          }
        }
        std::sort(entries.begin(), entries.end());
        // Merge duplicates (partner == own region).
        std::size_t w = 0;
        for (std::size_t e = 0; e < entries.size(); ++e) {
          if (w > 0 && entries[w - 1].first == entries[e].first)
            entries[w - 1].second += entries[e].second;
          else
            entries[w++] = entries[e];
        }
        entries.resize(w);
        double expo = 0.0;
        t.row_bin.push_back(b);
        t.row_proc.push_back(p);
        t.norm.push_back(y);
        for (const auto& [s, a] : entries) {
          t.syst.push_back(s);
          t.logk_avg.push_back(a);
          if (spec.asymmetric) t.logk_halfdiff.push_back(0.2 * a * gaus(rng));
          expo += truth[s] * a;
        }
        t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
        if (spec.mc_stat) m.sumw2(b, p) = 0.05 * y;
        total += (p == 0 ? mu_true : 1.0) * y * std::exp(expo);
      }
      std::poisson_distribution<long long> pois(total);
      m.data_obs[b] = static_cast<double>(pois(rng));
    }
  }
  m.sumw = m.DenseNorm();
  return m;
}

}  // namespace lepus::models
