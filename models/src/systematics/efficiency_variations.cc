// Efficiency scale-factor variations: the stat-model covariance, its eigenvectors, the registry
// and the per-muon evaluation (model in the header, counts in docs/systematics.md).
#include "lepus/models/efficiency_variations.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <Eigen/Dense>

#include "lepus/models/internal/chebyshev.h"
#include "lepus/models/internal/validation.h"

namespace lepus::models {

namespace {

constexpr int kMaxOrder = 6;

using detail::Num;

using detail::Chebyshev;

inline double ProbeDensity(double pt) {
  const double z = (pt - 40.0) / 12.0;
  return std::exp(-0.5 * z * z) + 0.05;
}

}  // namespace

EfficiencyConfig EfficiencyConfig::Full() { return EfficiencyConfig{}; }

EfficiencyConfig EfficiencyConfig::Light() {
  EfficiencyConfig c;
  c.eta_group = 24;
  c.num_eigen = 1;
  c.syst_eta_edges.clear();
  return c;
}

bool EfficiencyConfig::IsValid(std::string* error) const {
  auto fail = [&](const std::string& what) {
    if (error) *error = "EfficiencyConfig: " + what;
    return false;
  };
  if (eta_bins != kScaleEtaBins)
    return fail("eta_bins is " + std::to_string(eta_bins) + ", but must be " +
                std::to_string(kScaleEtaBins) + " (the scale eta binning)");
  if (eta_group < 1 || eta_bins % eta_group != 0)
    return fail("eta_group is " + std::to_string(eta_group) +
                ", but must be >= 1 and divide eta_bins (" + std::to_string(eta_bins) + ")");
  if (poly_order < 0 || poly_order > kMaxOrder)
    return fail("poly_order is " + std::to_string(poly_order) + ", but must be in [0, " +
                std::to_string(kMaxOrder) + "]");
  if (num_eigen < 1 || num_eigen > poly_order + 1)
    return fail("num_eigen is " + std::to_string(num_eigen) +
                ", but must be in [1, poly_order + 1 = " + std::to_string(poly_order + 1) + "]");
  if (!(pt_min < pt_max) || !std::isfinite(pt_min) || !std::isfinite(pt_max))
    return fail("pt_min, pt_max are " + Num(pt_min) + ", " + Num(pt_max) +
                ", but must be finite with pt_min < pt_max");
  if (static_cast<int>(tnp_pt_edges.size()) < poly_order + 2)
    return fail(
        "tnp_pt_edges has " + std::to_string(tnp_pt_edges.size()) +
        " edges, but must have at least poly_order + 2 = " + std::to_string(poly_order + 2));
  for (std::size_t i = 1; i < tnp_pt_edges.size(); ++i)
    if (!(tnp_pt_edges[i] > tnp_pt_edges[i - 1]))
      return fail("tnp_pt_edges[" + std::to_string(i) + "] is " + Num(tnp_pt_edges[i]) +
                  ", but must be > " + Num(tnp_pt_edges[i - 1]));
  for (int s = 0; s < kNumEfficiencyKinds; ++s) {
    if (!(sigma0[s] >= 0.0) || !std::isfinite(sigma0[s]))
      return fail("sigma0[" + std::to_string(s) + "] is " + Num(sigma0[s]) + ", but must be >= 0");
    if (!(syst_size[s] >= 0.0) || !std::isfinite(syst_size[s]))
      return fail("syst_size[" + std::to_string(s) + "] is " + Num(syst_size[s]) +
                  ", but must be >= 0");
  }
  if (!(eta_growth >= 0.0) || !std::isfinite(eta_growth))
    return fail("eta_growth is " + Num(eta_growth) + ", but must be >= 0");
  if (!std::isfinite(syst_slope))
    return fail("syst_slope is " + Num(syst_slope) + ", but must be finite");
  if (syst_eta_edges.size() == 1)
    return fail("syst_eta_edges has 1 edge, but must have none or at least 2");
  for (std::size_t i = 0; i < syst_eta_edges.size(); ++i) {
    if (!(syst_eta_edges[i] >= -2.4 && syst_eta_edges[i] <= 2.4))
      return fail("syst_eta_edges[" + std::to_string(i) + "] is " + Num(syst_eta_edges[i]) +
                  ", but must be in [-2.4, 2.4]");
    if (i > 0 && !(syst_eta_edges[i] > syst_eta_edges[i - 1]))
      return fail("syst_eta_edges[" + std::to_string(i) + "] is " + Num(syst_eta_edges[i]) +
                  ", but must be > " + Num(syst_eta_edges[i - 1]));
  }
  return true;
}

namespace {

// Covariance of the Chebyshev coefficients of the stat model at eta.
Eigen::MatrixXd StatCovariance(const EfficiencyConfig& c, EfficiencyKind step, double eta) {
  const int np = c.poly_order + 1;
  const int nb = static_cast<int>(c.tnp_pt_edges.size()) - 1;
  const double r2 = (eta / 2.4) * (eta / 2.4);
  const double s0 = c.sigma0[static_cast<int>(step)] * (1.0 + c.eta_growth * r2);
  Eigen::MatrixXd jtwj = Eigen::MatrixXd::Zero(np, np);
  double t[kMaxOrder + 1];
  for (int j = 0; j < nb; ++j) {
    const double pt = 0.5 * (c.tnp_pt_edges[j] + c.tnp_pt_edges[j + 1]);
    const double x = std::clamp(2.0 * (pt - c.pt_min) / (c.pt_max - c.pt_min) - 1.0, -1.0, 1.0);
    Chebyshev(x, c.poly_order, t);
    const double sigma = s0 * std::sqrt(ProbeDensity(40.0) / ProbeDensity(pt));
    const double w = sigma > 0.0 ? 1.0 / (sigma * sigma) : 0.0;
    for (int a = 0; a < np; ++a)
      for (int b = 0; b < np; ++b) jtwj(a, b) += w * t[a] * t[b];
  }
  if (s0 == 0.0) return Eigen::MatrixXd::Zero(np, np);
  // The fit is well conditioned (nb > np points spread over [-1, 1]); LDLT is exact enough.
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(jtwj);
  if (ldlt.info() != Eigen::Success)
    throw std::runtime_error(
        "EfficiencyVariations: the normal matrix of the statistical fit is not "
        "positive semi-definite (LDLT failed)");
  return ldlt.solve(Eigen::MatrixXd::Identity(np, np));
}

}  // namespace

EfficiencyVariations::EfficiencyVariations(EfficiencyConfig config) : config_(std::move(config)) {
  std::string error;
  if (!config_.IsValid(&error)) throw std::invalid_argument(error);
  const EfficiencyConfig& c = config_;
  const int n_groups = c.eta_bins / c.eta_group;
  num_charge_sets_ = c.charge_split ? 2 : 1;
  const double bin_width = (kScaleEtaMax - kScaleEtaMin) / c.eta_bins;
  int enabled_steps = 0;
  for (int s = 0; s < kNumEfficiencyKinds; ++s) {
    if (!c.steps[s]) {
      step_offset_[s] = -1;
      continue;
    }
    ++enabled_steps;
    step_offset_[s] = static_cast<int>(nuisances_.size());
    const EfficiencyKind step = static_cast<EfficiencyKind>(s);
    for (int g = 0; g < n_groups; ++g) {
      const int first = g * c.eta_group, last = first + c.eta_group - 1;
      const double eta_lo = kScaleEtaMin + first * bin_width;
      const double eta_hi = kScaleEtaMin + (last + 1) * bin_width;
      const Eigen::MatrixXd cov = StatCovariance(c, step, 0.5 * (eta_lo + eta_hi));
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cov);
      if (es.info() != Eigen::Success)
        throw std::runtime_error("EfficiencyVariations: eigen-decomposition failed");
      const int np = c.poly_order + 1;
      for (int iq = 0; iq < num_charge_sets_; ++iq) {
        const int charge = num_charge_sets_ == 1 ? 0 : (iq == 0 ? -1 : +1);
        for (int e = 0; e < c.num_eigen; ++e) {
          const int col = np - 1 - e;  // eigenvalues ascending
          const double lambda = std::max(0.0, es.eigenvalues()(col));
          Eigen::VectorXd v = es.eigenvectors().col(col);
          Eigen::Index imax = 0;
          v.cwiseAbs().maxCoeff(&imax);
          if (v(imax) < 0.0) v = -v;
          EfficiencyNuisance n;
          n.name = "effStat_" + ToString(step) + "_eta" + std::to_string(g) + "_" +
                   (charge > 0 ? "plus" : (charge < 0 ? "minus" : "both")) + "_eig" +
                   std::to_string(e);
          n.group = "muonEffStat";
          n.kind = EfficiencyNuisanceKind::kStat;
          n.step = step;
          n.charge = charge;
          n.first_eta_bin = first;
          n.last_eta_bin = last;
          n.eta_min = eta_lo;
          n.eta_max = eta_hi;
          n.coeff.resize(np);
          for (int k = 0; k < np; ++k) n.coeff[k] = std::sqrt(lambda) * v(k);
          nuisances_.push_back(std::move(n));
        }
      }
    }
  }
  num_stat_ = nuisances_.size();
  const int n_regions =
      c.syst_eta_edges.empty() ? 0 : static_cast<int>(c.syst_eta_edges.size()) - 1;
  if (c.syst) {
    for (int s = 0; s < kNumEfficiencyKinds; ++s) {
      if (!c.steps[s]) continue;
      const EfficiencyKind step = static_cast<EfficiencyKind>(s);
      EfficiencyNuisance n;
      n.group = "muonEffSyst";
      n.step = step;
      n.charge = 0;
      n.coeff = {c.syst_size[s], c.syst_size[s] * c.syst_slope};
      n.name = "effSyst_" + ToString(step);
      n.kind = EfficiencyNuisanceKind::kSystCorrelated;
      syst_by_step_.push_back(static_cast<int>(nuisances_.size()));
      nuisances_.push_back(n);
      for (int r = 0; r < n_regions; ++r) {
        n.name = "effSyst_" + ToString(step) + "_etaRegion" + std::to_string(r);
        n.kind = EfficiencyNuisanceKind::kSystEtaRegion;
        n.eta_min = c.syst_eta_edges[r];
        n.eta_max = c.syst_eta_edges[r + 1];
        n.first_eta_bin = ScaleEtaBin(n.eta_min);
        n.last_eta_bin = ScaleEtaBin(std::nextafter(n.eta_max, -10.0));
        syst_by_step_.push_back(static_cast<int>(nuisances_.size()));
        nuisances_.push_back(n);
      }
    }
  }
  max_active_ =
      enabled_steps * c.num_eigen + (c.syst ? enabled_steps * (1 + (n_regions > 0 ? 1 : 0)) : 0);
}

namespace {

inline double ToRelative(EfficiencyKind step, double dsf, bool iso_pass, double eff_iso) {
  if (step == EfficiencyKind::kIsolation && !iso_pass) {
    if (!(eff_iso < 1.0 - 1e-12)) return 0.0;
    return -dsf * eff_iso / (1.0 - eff_iso);
  }
  return dsf;  // central scale factors are 1
}

inline double EvalCoeff(const std::vector<double>& coeff, const double* t) {
  double s = 0.0;
  for (std::size_t k = 0; k < coeff.size(); ++k) s += coeff[k] * t[k];
  return s;
}

}  // namespace

int EfficiencyVariations::StatIndex(EfficiencyKind step, int eta_bin, int charge) const noexcept {
  const int off = step_offset_[static_cast<int>(step)];
  if (off < 0) return -1;
  const int g = std::clamp(eta_bin, 0, config_.eta_bins - 1) / config_.eta_group;
  const int iq = num_charge_sets_ == 1 ? 0 : (charge > 0 ? 1 : 0);
  return off + (g * num_charge_sets_ + iq) * config_.num_eigen;
}

int EfficiencyVariations::Active(double eta, double pt, int charge, bool iso_pass, double eff_iso,
                                 ActiveEfficiencyVariation* out) const noexcept {
  const EfficiencyConfig& c = config_;
  const int bin = ScaleEtaBin(eta);
  const double x = std::clamp(2.0 * (pt - c.pt_min) / (c.pt_max - c.pt_min) - 1.0, -1.0, 1.0);
  double t[kMaxOrder + 1];
  Chebyshev(x, std::max(c.poly_order, 1), t);
  int count = 0;
  for (int s = 0; s < kNumEfficiencyKinds; ++s) {
    const int base = StatIndex(static_cast<EfficiencyKind>(s), bin, charge);
    if (base < 0) continue;
    for (int e = 0; e < c.num_eigen; ++e) {
      const EfficiencyNuisance& n = nuisances_[base + e];
      out[count++] = {base + e, ToRelative(n.step, EvalCoeff(n.coeff, t), iso_pass, eff_iso)};
    }
  }
  const double eta_c = std::clamp(eta, kScaleEtaMin, std::nextafter(kScaleEtaMax, 0.0));
  for (int idx : syst_by_step_) {
    const EfficiencyNuisance& n = nuisances_[idx];
    if (n.kind == EfficiencyNuisanceKind::kSystEtaRegion &&
        !(eta_c >= n.eta_min && eta_c < n.eta_max))
      continue;
    out[count++] = {idx, ToRelative(n.step, EvalCoeff(n.coeff, t), iso_pass, eff_iso)};
  }
  return count;
}

double EfficiencyVariations::RelativeChange(std::size_t k, double eta, double pt, int charge,
                                            bool iso_pass, double eff_iso) const noexcept {
  const EfficiencyNuisance& n = nuisances_[k];
  if (n.charge != 0 && (charge > 0) != (n.charge > 0)) return 0.0;
  if (n.kind == EfficiencyNuisanceKind::kStat) {
    const int bin = ScaleEtaBin(eta);
    if (bin < n.first_eta_bin || bin > n.last_eta_bin) return 0.0;
  } else if (n.kind == EfficiencyNuisanceKind::kSystEtaRegion) {
    const double eta_c = std::clamp(eta, kScaleEtaMin, std::nextafter(kScaleEtaMax, 0.0));
    if (!(eta_c >= n.eta_min && eta_c < n.eta_max)) return 0.0;
  }
  return ToRelative(n.step, ScaleFactorShift(k, pt), iso_pass, eff_iso);
}

double EfficiencyVariations::ScaleFactorShift(std::size_t k, double pt) const noexcept {
  const EfficiencyConfig& c = config_;
  const double x = std::clamp(2.0 * (pt - c.pt_min) / (c.pt_max - c.pt_min) - 1.0, -1.0, 1.0);
  double t[kMaxOrder + 1];
  Chebyshev(x, std::max(c.poly_order, 1), t);
  return EvalCoeff(nuisances_[k].coeff, t);
}

std::vector<double> EfficiencyVariations::CoefficientCovariance(EfficiencyKind step,
                                                                int eta_bin) const {
  const double bin_width = (kScaleEtaMax - kScaleEtaMin) / config_.eta_bins;
  const int g = std::clamp(eta_bin, 0, config_.eta_bins - 1) / config_.eta_group;
  const double eta = kScaleEtaMin + (g + 0.5) * config_.eta_group * bin_width;
  const Eigen::MatrixXd cov = StatCovariance(config_, step, eta);
  std::vector<double> out(static_cast<std::size_t>(cov.size()));
  for (Eigen::Index a = 0; a < cov.rows(); ++a)
    for (Eigen::Index b = 0; b < cov.cols(); ++b) out[a * cov.cols() + b] = cov(a, b);
  return out;
}

}  // namespace lepus::models
