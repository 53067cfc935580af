// The helicity split of the W signal (helicity.h; docs/helicity.md): cells, process names, and
// the post-fit cross sections and angular coefficients from the masked channel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "lepus/engine/yields.h"
#include "lepus/models/helicity.h"

namespace lepus::models {

namespace {

bool IncreasingFromZero(const std::vector<double>& e) {
  if (e.empty() || e[0] != 0.0) return false;
  for (std::size_t i = 1; i < e.size(); ++i)
    if (!(e[i] > e[i - 1]) || !std::isfinite(e[i])) return false;
  return true;
}

std::string Edges(const std::vector<double>& e) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < e.size(); ++i) os << (i ? ", " : "") << e[i];
  os << "]";
  return os.str();
}

}  // namespace

HelicityConfig HelicityConfig::Light() {
  HelicityConfig c;
  c.enabled = true;
  c.pt_edges = {0.0, 10.0, 30.0};
  c.y_edges = {0.0, 1.2};
  return c;
}

HelicityConfig HelicityConfig::Reference() {
  HelicityConfig c;
  c.enabled = true;
  return c;
}

bool HelicityConfig::IsValid(std::string* error) const {
  auto fail = [error](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (!IncreasingFromZero(pt_edges))
    return fail("helicity.pt_edges is " + Edges(pt_edges) +
                ", but must be strictly increasing from 0");
  if (!IncreasingFromZero(y_edges))
    return fail("helicity.y_edges is " + Edges(y_edges) +
                ", but must be strictly increasing from 0");
  if (pt_edges.size() > 60 || y_edges.size() > 60)
    return fail("helicity: " + std::to_string(pt_edges.size()) + " x " +
                std::to_string(y_edges.size()) + " cells, but must be at most 60 x 60");
  if (!free && !(prior_width > 0.0 && std::isfinite(prior_width)))
    return fail("helicity.prior_width is " + std::to_string(prior_width) +
                ", but must be > 0 (or helicity.free true)");
  for (int i = 0; i < 8; ++i)
    if (!(data_a_scale[i] >= 0.0 && std::isfinite(data_a_scale[i])))
      return fail("helicity.data_a_scale[" + std::to_string(i) + "] is " +
                  std::to_string(data_a_scale[i]) + ", but must be >= 0");
  const HelicitySplit split(*this);
  for (std::size_t k = 0; k < pseudodata.size(); ++k) {
    const HelicityPseudoData& p = pseudodata[k];
    const std::string where = "helicity.pseudodata[" + std::to_string(k) + "]";
    if (p.name.empty()) return fail(where + ".name is empty, but must be a name");
    if (p.pt_bin < -1 || p.pt_bin >= split.num_pt())
      return fail(where + ".pt_bin is " + std::to_string(p.pt_bin) + ", but must be in [-1, " +
                  std::to_string(split.num_pt() - 1) + "]");
    if (p.y_bin < -1 || p.y_bin >= split.num_y())
      return fail(where + ".y_bin is " + std::to_string(p.y_bin) + ", but must be in [-1, " +
                  std::to_string(split.num_y() - 1) + "]");
    if (p.charge < -1 || p.charge > 1)
      return fail(where + ".charge is " + std::to_string(p.charge) + ", but must be -1, 0 or 1");
    for (double s : p.scale)
      if (!std::isfinite(s)) return fail(where + ".scale has a non-finite entry");
  }
  return true;
}

HelicitySplit::HelicitySplit(const HelicityConfig& config)
    : pt_edges_(config.pt_edges), y_edges_(config.y_edges) {}

int HelicitySplit::Cell(int charge, double pt, double y) const noexcept {
  if (charge == 0 || !std::isfinite(pt) || !std::isfinite(y)) return -1;
  const double ay = std::abs(y);
  int ip = static_cast<int>(std::upper_bound(pt_edges_.begin(), pt_edges_.end(), pt) -
                            pt_edges_.begin()) -
           1;
  int iy =
      static_cast<int>(std::upper_bound(y_edges_.begin(), y_edges_.end(), ay) - y_edges_.begin()) -
      1;
  ip = std::max(ip, 0);
  iy = std::max(iy, 0);
  return ((charge > 0 ? 1 : 0) * num_pt() + ip) * num_y() + iy;
}

std::string HelicitySplit::ProcessName(int p) const {
  return std::string("Wmunu_") + (ChargeOf(p) > 0 ? "plus" : "minus") + "_ptV" +
         std::to_string(PtBinOf(p)) + "_yV" + std::to_string(YBinOf(p)) + "_" +
         HelicityComponentName(ComponentOf(p));
}

std::string HelicitySplit::NormName(int p) const { return "helicityNorm_" + ProcessName(p); }

std::vector<HelicityCellResult> HelicityCoefficients(const engine::Likelihood& likelihood,
                                                     const engine::FitResult& result) {
  const engine::Model& m = likelihood.model();
  // Bin offset of the masked channel in the full bin vector (channels in tensor order).
  std::int64_t offset = 0;
  const engine::Channel* ch = nullptr;
  for (const auto& c : m.channels) {
    if (c.name == kHelicityXsecChannel) {
      ch = &c;
      break;
    }
    offset += c.nbins;
  }
  if (ch == nullptr || ch->axes.size() != 4 || !ch->masked)
    throw std::invalid_argument(std::string("HelicityCoefficients: the input has no masked "
                                            "channel '") +
                                kHelicityXsecChannel +
                                "' with axes (charge, ptV, absYV, helicity): not a helicity-mode "
                                "fit input (lepus produce helicity)");
  auto bins = [](const engine::Axis& a) { return static_cast<int>(a.edges.size()) - 1; };
  const int n_pt = bins(ch->axes[1]), n_y = bins(ch->axes[2]);
  const int nc = kNumHelicityComponents;
  if (bins(ch->axes[0]) != 2 || bins(ch->axes[3]) != nc || ch->nbins != 2 * n_pt * n_y * nc)
    throw std::invalid_argument(
        "HelicityCoefficients: channel helicity_xsec has an unexpected "
        "binning");

  engine::YieldOptions yopt;
  yopt.per_process = false;
  const engine::YieldSet post = engine::PostfitYields(likelihood, result, yopt);
  const engine::YieldSet pre = engine::PrefitYields(likelihood, yopt);
  const Eigen::Index n = ch->nbins;
  // Covariance of the masked bins: J C J^T over the channel's rows only.
  const Eigen::MatrixXd J = post.total_jacobian.middleRows(offset, n);
  const Eigen::MatrixXd cov = J * post.param_covariance * J.transpose();

  std::vector<HelicityCellResult> out;
  for (int q = 0; q < 2; ++q)
    for (int ip = 0; ip < n_pt; ++ip)
      for (int iy = 0; iy < n_y; ++iy) {
        HelicityCellResult r;
        r.charge = q ? 1 : -1;
        r.pt_bin = ip;
        r.y_bin = iy;
        const Eigen::Index base = ((q * n_pt + ip) * n_y + iy) * nc;
        for (int c = 0; c < nc; ++c) {
          r.sigma[c] = post.total[offset + base + c];
          r.sigma_error[c] = std::sqrt(std::max(0.0, cov(base + c, base + c)));
          r.sigma_prefit[c] = pre.total[offset + base + c];
        }
        const double su = r.sigma[0];
        r.coeff[0] = r.coeff_prefit[0] = 1.0;
        for (int c = 1; c < nc; ++c) {
          const double si = r.sigma[c];
          r.coeff_prefit[c] = r.sigma_prefit[0] != 0 ? r.sigma_prefit[c] / r.sigma_prefit[0] : 0;
          if (su == 0.0) continue;
          r.coeff[c] = si / su;
          // d(s_i/s_u) = ds_i / s_u - s_i ds_u / s_u^2.
          const double gi = 1.0 / su, gu = -si / (su * su);
          const double var = gi * gi * cov(base + c, base + c) + gu * gu * cov(base, base) +
                             2.0 * gi * gu * cov(base + c, base);
          r.coeff_error[c] = std::sqrt(std::max(0.0, var));
        }
        out.push_back(r);
      }
  return out;
}

std::string HelicityCoefficientsJson(const std::vector<HelicityCellResult>& cells) {
  std::ostringstream os;
  os.precision(9);
  os << "[";
  for (std::size_t k = 0; k < cells.size(); ++k) {
    const HelicityCellResult& r = cells[k];
    os << (k ? ",\n " : "\n ") << "{\"charge\": " << r.charge << ", \"pt_bin\": " << r.pt_bin
       << ", \"y_bin\": " << r.y_bin << ", \"components\": {";
    for (int c = 0; c < kNumHelicityComponents; ++c) {
      os << (c ? ", " : "") << "\"" << HelicityComponentName(c)
         << "\": {\"sigma_pb\": " << r.sigma[c] << ", \"sigma_error_pb\": " << r.sigma_error[c]
         << ", \"sigma_prefit_pb\": " << r.sigma_prefit[c];
      if (c > 0)
        os << ", \"A\": " << r.coeff[c] << ", \"A_error\": " << r.coeff_error[c]
           << ", \"A_prefit\": " << r.coeff_prefit[c];
      os << "}";
    }
    os << "}}";
  }
  os << "\n]\n";
  return os.str();
}

std::string HelicityCoefficientsTable(const std::vector<HelicityCellResult>& cells) {
  std::ostringstream os;
  char line[512];
  std::snprintf(line, sizeof(line), "%-3s %-4s %-3s %-22s", "q", "ptV", "yV", "sigma_UL (pb)");
  os << line;
  for (int c = 1; c < kNumHelicityComponents; ++c) {
    std::snprintf(line, sizeof(line), " %-24s", (HelicityComponentName(c) + " (prefit)").c_str());
    os << line;
  }
  os << "\n";
  for (const auto& r : cells) {
    char ul[64];
    std::snprintf(ul, sizeof(ul), "%.1f +- %.1f", r.sigma[0], r.sigma_error[0]);
    std::snprintf(line, sizeof(line), "%-3s %-4d %-3d %-22s", r.charge > 0 ? "+" : "-", r.pt_bin,
                  r.y_bin, ul);
    os << line;
    for (int c = 1; c < kNumHelicityComponents; ++c) {
      std::snprintf(line, sizeof(line), " %6.3f+-%5.3f (%6.3f)  ", r.coeff[c], r.coeff_error[c],
                    r.coeff_prefit[c]);
      os << line;
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace lepus::models
