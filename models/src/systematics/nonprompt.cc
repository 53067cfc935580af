// The extended ABCD non-prompt estimate, its pT smoothing and nuisance templates (definitions in
// the header and docs/systematics.md).
#include "lepus/models/nonprompt.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include <Eigen/Dense>

#include "lepus/models/internal/chebyshev.h"
#include "lepus/models/internal/validation.h"

namespace lepus::models {

namespace {

using detail::Num;

using detail::Chebyshev;

constexpr int kMaxSmoothingOrder = 5;

}  // namespace

std::string ToString(AbcdRegion region) {
  switch (region) {
    case AbcdRegion::kA:
      return "A";
    case AbcdRegion::kAx:
      return "Ax";
    case AbcdRegion::kB:
      return "B";
    case AbcdRegion::kBx:
      return "Bx";
    case AbcdRegion::kC:
      return "C";
    case AbcdRegion::kD:
      return "D";
  }
  return "?";
}

AbcdRegion AbcdRegionOf(double mt, double rel_iso) noexcept {
  const bool pass = rel_iso < 0.15;
  if (mt < 20.0) return pass ? AbcdRegion::kBx : AbcdRegion::kAx;
  if (mt < 40.0) return pass ? AbcdRegion::kB : AbcdRegion::kA;
  return pass ? AbcdRegion::kD : AbcdRegion::kC;
}

// ---- binning, inputs, options

std::size_t NonpromptBinning::size() const {
  const int npt = n_pt();
  if (n_eta <= 0 || npt <= 0 || n_charge <= 0) return 0;
  return static_cast<std::size_t>(n_eta) * npt * n_charge;
}

NonpromptBinning NonpromptBinning::WMass() {
  NonpromptBinning b;
  b.n_eta = 48;
  b.n_charge = 2;
  for (int i = 0; i <= 48; ++i) b.eta_edges.push_back(-2.4 + 0.1 * i);
  for (int i = 0; i <= 30; ++i) b.pt_edges.push_back(26.0 + i);
  return b;
}

bool NonpromptBinning::IsValid(std::string* error) const {
  auto fail = [&](const std::string& what) {
    if (error) *error = "NonpromptBinning: " + what;
    return false;
  };
  if (n_eta < 1) return fail("n_eta is " + std::to_string(n_eta) + ", but must be >= 1");
  if (n_charge != 1 && n_charge != 2)
    return fail("n_charge is " + std::to_string(n_charge) + ", but must be 1 or 2");
  if (static_cast<int>(eta_edges.size()) != n_eta + 1)
    return fail("eta_edges has " + std::to_string(eta_edges.size()) +
                " entries, but must have n_eta + 1 = " + std::to_string(n_eta + 1));
  if (pt_edges.size() < 2)
    return fail("pt_edges has " + std::to_string(pt_edges.size()) + " entries, but must have >= 2");
  auto increasing = [&](const std::vector<double>& e, const char* name) {
    for (std::size_t i = 0; i < e.size(); ++i) {
      if (!std::isfinite(e[i]))
        return fail(std::string(name) + "[" + std::to_string(i) + "] is " + Num(e[i]) +
                    ", but must be finite");
      if (i > 0 && !(e[i] > e[i - 1]))
        return fail(std::string(name) + "[" + std::to_string(i) + "] is " + Num(e[i]) +
                    ", but must be > " + Num(e[i - 1]));
    }
    return true;
  };
  return increasing(eta_edges, "eta_edges") && increasing(pt_edges, "pt_edges");
}

bool NonpromptInputs::IsValid(std::string* error) const {
  if (!binning.IsValid(error)) return false;
  const std::size_t n = binning.size();
  auto check = [&](const RegionHistogram& h, const std::string& name, bool required) {
    if (h.sumw.empty() && h.sumw2.empty() && !required) return true;
    if (h.sumw.size() != n || h.sumw2.size() != n) {
      if (error)
        *error = "NonpromptInputs: " + name + " has " + std::to_string(h.sumw.size()) +
                 " sumw and " + std::to_string(h.sumw2.size()) + " sumw2 entries, but must have " +
                 std::to_string(n) + " each (n_eta x n_pt x n_charge)";
      return false;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(h.sumw[i]) || !(h.sumw2[i] >= 0.0) || !std::isfinite(h.sumw2[i])) {
        if (error)
          *error = "NonpromptInputs: " + name + "[" + std::to_string(i) + "] is (" +
                   Num(h.sumw[i]) + ", " + Num(h.sumw2[i]) +
                   "), but must be finite with sumw2 >= 0";
        return false;
      }
    }
    return true;
  };
  for (int r = 0; r < kNumAbcdRegions; ++r) {
    const AbcdRegion region = static_cast<AbcdRegion>(r);
    const bool needed = region != AbcdRegion::kD;
    if (!check(data[r], "data." + ToString(region), needed)) return false;
    if (!check(prompt[r], "prompt." + ToString(region), false)) return false;
  }
  return true;
}

NonpromptOptions NonpromptOptions::Full() { return NonpromptOptions{}; }

NonpromptOptions NonpromptOptions::Light() {
  NonpromptOptions o;
  o.decorrelation = SmoothingDecorrelation::kCorrelated;
  return o;
}

bool NonpromptOptions::IsValid(std::string* error) const {
  auto fail = [&](const std::string& what) {
    if (error) *error = "NonpromptOptions: " + what;
    return false;
  };
  if (smoothing_order < -1 || smoothing_order > kMaxSmoothingOrder)
    return fail("smoothing_order is " + std::to_string(smoothing_order) + ", but must be in [-1, " +
                std::to_string(kMaxSmoothingOrder) + "]");
  if (!(norm_correction > 0.0) || !std::isfinite(norm_correction))
    return fail("norm_correction is " + Num(norm_correction) + ", but must be > 0");
  if (!(norm_uncertainty >= 0.0) || !std::isfinite(norm_uncertainty))
    return fail("norm_uncertainty is " + Num(norm_uncertainty) + ", but must be >= 0");
  if (!(shape_pt >= 0.0) || !(shape_pt < 1.0))
    return fail("shape_pt is " + Num(shape_pt) + ", but must be in [0, 1)");
  if (!(shape_eta >= 0.0) || !(shape_eta < 1.0))
    return fail("shape_eta is " + Num(shape_eta) + ", but must be in [0, 1)");
  return true;
}

// ---- the estimate

namespace {

struct SliceFit {
  SmoothingFit fit;
  Eigen::VectorXd lambda;   // eigenvalues, descending
  Eigen::MatrixXd vectors;  // matching eigenvectors (columns), sign-fixed
};

void SetRange(NonpromptVariation* v, const std::vector<double>& nominal) {
  std::size_t first = v->up.size(), last = 0;
  for (std::size_t i = 0; i < v->up.size(); ++i)
    if (v->up[i] != nominal[i] || v->down[i] != nominal[i]) {
      first = std::min(first, i);
      last = i;
    }
  if (first > last) first = last = 0;
  v->first_bin = first;
  v->last_bin = last;
}

}  // namespace

NonpromptResult EstimateNonprompt(const NonpromptInputs& in, const NonpromptOptions& options) {
  std::string error;
  if (!in.IsValid(&error)) throw std::invalid_argument(error);
  if (!options.IsValid(&error)) throw std::invalid_argument(error);
  const NonpromptBinning& bn = in.binning;
  const std::size_t n = bn.size();
  const int n_pt = bn.n_pt();
  NonpromptResult res;
  res.raw.assign(n, 0.0);
  res.raw_sumw2.assign(n, 0.0);

  // Raw prediction per bin.
  auto count = [&](AbcdRegion r, std::size_t i, double* var) {
    const int k = static_cast<int>(r);
    double v = in.data[k].sumw[i];
    *var = in.data[k].sumw2[i];
    if (!in.prompt[k].sumw.empty()) {
      v -= in.prompt[k].sumw[i];
      *var += in.prompt[k].sumw2[i];
    }
    return v;
  };
  for (std::size_t i = 0; i < n; ++i) {
    double va, vax, vb, vbx, vc;
    const double a = count(AbcdRegion::kA, i, &va), ax = count(AbcdRegion::kAx, i, &vax);
    const double b = count(AbcdRegion::kB, i, &vb), bx = count(AbcdRegion::kBx, i, &vbx);
    const double c = count(AbcdRegion::kC, i, &vc);
    if (!(a > 0.0 && ax > 0.0 && b > 0.0 && bx > 0.0 && c > 0.0)) continue;
    const double d = c * (b / a) * (b / a) * (ax / bx);
    const double rel2 =
        vc / (c * c) + 4.0 * vb / (b * b) + 4.0 * va / (a * a) + vax / (ax * ax) + vbx / (bx * bx);
    res.raw[i] = d;
    res.raw_sumw2[i] = d * d * rel2;
  }

  const double pt_lo = bn.pt_edges.front(), pt_hi = bn.pt_edges.back();
  std::vector<double> xpt(n_pt);
  for (int ipt = 0; ipt < n_pt; ++ipt)
    xpt[ipt] = (bn.pt_edges[ipt] + bn.pt_edges[ipt + 1] - 2.0 * pt_lo) / (pt_hi - pt_lo) - 1.0;

  std::vector<SliceFit> slices;
  if (options.smoothing_order < 0) {
    res.nominal = res.raw;
    res.sumw2 = res.raw_sumw2;
  } else {
    res.nominal.assign(n, 0.0);
    res.sumw2.assign(n, 0.0);
    const int order_max = options.smoothing_order;
    double t[kMaxSmoothingOrder + 1];
    for (int ieta = 0; ieta < bn.n_eta; ++ieta)
      for (int iq = 0; iq < bn.n_charge; ++iq) {
        SliceFit sf;
        SmoothingFit& f = sf.fit;
        f.ieta = ieta;
        f.iq = iq;
        for (int ipt = 0; ipt < n_pt; ++ipt)
          if (res.raw[bn.Index(ieta, ipt, iq)] > 0.0) ++f.points;
        if (f.points == 0) {
          slices.push_back(std::move(sf));
          continue;
        }
        f.order = std::min(order_max, f.points - 1);
        const int np = f.order + 1;
        Eigen::MatrixXd jtwj = Eigen::MatrixXd::Zero(np, np);
        Eigen::VectorXd jtwy = Eigen::VectorXd::Zero(np);
        for (int ipt = 0; ipt < n_pt; ++ipt) {
          const std::size_t i = bn.Index(ieta, ipt, iq);
          const double d = res.raw[i];
          if (!(d > 0.0)) continue;
          const double rel2 = std::max(res.raw_sumw2[i] / (d * d), 1e-12);
          const double w = 1.0 / rel2;
          Chebyshev(xpt[ipt], f.order, t);
          for (int a = 0; a < np; ++a) {
            jtwy(a) += w * t[a] * std::log(d);
            for (int b = 0; b < np; ++b) jtwj(a, b) += w * t[a] * t[b];
          }
        }
        Eigen::LDLT<Eigen::MatrixXd> ldlt(jtwj);
        if (ldlt.info() != Eigen::Success) {
          slices.push_back(std::move(sf));
          continue;
        }
        const Eigen::VectorXd coeff = ldlt.solve(jtwy);
        Eigen::MatrixXd cov = ldlt.solve(Eigen::MatrixXd::Identity(np, np));
        cov = 0.5 * (cov + cov.transpose());
        for (int ipt = 0; ipt < n_pt; ++ipt) {
          const std::size_t i = bn.Index(ieta, ipt, iq);
          const double d = res.raw[i];
          if (!(d > 0.0)) continue;
          Chebyshev(xpt[ipt], f.order, t);
          double fx = 0.0;
          for (int a = 0; a < np; ++a) fx += coeff(a) * t[a];
          const double r = std::log(d) - fx;
          f.chi2 += r * r * (d * d) / std::max(res.raw_sumw2[i], 1e-12 * d * d);
        }
        f.ndf = f.points - np;
        if (options.scale_by_chi2 && f.ndf > 0 && f.chi2 > f.ndf) cov *= f.chi2 / f.ndf;
        f.coeff.assign(coeff.data(), coeff.data() + np);
        f.covariance.resize(np * np);
        for (int a = 0; a < np; ++a)
          for (int b = 0; b < np; ++b) f.covariance[a * np + b] = cov(a, b);
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cov);
        if (es.info() !=
            Eigen::Success) {  // no eigenvectors: the slice is not smoothed (ok = false)
          slices.push_back(std::move(sf));
          continue;
        }
        f.ok = true;
        sf.lambda = es.eigenvalues().reverse().cwiseMax(0.0);
        sf.vectors = es.eigenvectors().rowwise().reverse();
        for (int k = 0; k < np; ++k) {
          Eigen::Index imax = 0;
          sf.vectors.col(k).cwiseAbs().maxCoeff(&imax);
          if (sf.vectors(imax, k) < 0.0) sf.vectors.col(k) *= -1.0;
        }
        for (int ipt = 0; ipt < n_pt; ++ipt) {
          Chebyshev(xpt[ipt], f.order, t);
          double fx = 0.0;
          for (int a = 0; a < np; ++a) fx += coeff(a) * t[a];
          res.nominal[bn.Index(ieta, ipt, iq)] = std::exp(fx);
        }
        slices.push_back(std::move(sf));
      }
  }
  for (std::size_t i = 0; i < n; ++i) {
    res.nominal[i] *= options.norm_correction;
    res.sumw2[i] *= options.norm_correction * options.norm_correction;
  }

  const char* qname[2] = {"minus", "plus"};
  auto charge_name = [&](int iq) {
    return bn.n_charge == 1 ? std::string("both") : std::string(qname[iq]);
  };
  auto new_variation = [&](const std::string& name) {
    NonpromptVariation v;
    v.name = name;
    v.up = res.nominal;
    v.down = res.nominal;
    return v;
  };
  // Applies eigen-direction k of slice s with multiplicative exp(+-shift) to v.
  double t[kMaxSmoothingOrder + 1];
  auto apply_eigen = [&](const SliceFit& s, int k, NonpromptVariation* v) {
    const int np = s.fit.order + 1;
    const double sl = std::sqrt(s.lambda(k));
    for (int ipt = 0; ipt < n_pt; ++ipt) {
      Chebyshev(xpt[ipt], s.fit.order, t);
      double shift = 0.0;
      for (int a = 0; a < np; ++a) shift += sl * s.vectors(a, k) * t[a];
      const std::size_t i = bn.Index(s.fit.ieta, ipt, s.fit.iq);
      v->up[i] = res.nominal[i] * std::exp(shift);
      v->down[i] = res.nominal[i] * std::exp(-shift);
    }
  };
  if (options.smoothing_order >= 0) {
    if (options.decorrelation == SmoothingDecorrelation::kPerEtaCharge) {
      for (const SliceFit& s : slices) {
        if (!s.fit.ok) continue;
        for (int k = 0; k <= s.fit.order; ++k) {
          NonpromptVariation v =
              new_variation("nonpromptSmooth_eta" + std::to_string(s.fit.ieta) + "_" +
                            charge_name(s.fit.iq) + "_eig" + std::to_string(k));
          apply_eigen(s, k, &v);
          res.variations.push_back(std::move(v));
        }
      }
    } else {
      for (int k = 0; k <= options.smoothing_order; ++k) {
        NonpromptVariation v = new_variation("nonpromptSmooth_eig" + std::to_string(k));
        bool any = false;
        for (const SliceFit& s : slices)
          if (s.fit.ok && k <= s.fit.order) {
            apply_eigen(s, k, &v);
            any = true;
          }
        if (any) res.variations.push_back(std::move(v));
      }
    }
  }
  if (options.norm_uncertainty > 0.0) {
    NonpromptVariation v = new_variation("nonpromptNorm");
    for (std::size_t i = 0; i < n; ++i) {
      v.up[i] = res.nominal[i] * (1.0 + options.norm_uncertainty);
      v.down[i] = res.nominal[i] / (1.0 + options.norm_uncertainty);
    }
    res.variations.push_back(std::move(v));
  }
  const double eta_abs_max =
      std::max(std::abs(bn.eta_edges.front()), std::abs(bn.eta_edges.back()));
  auto shape = [&](const std::string& base, double size, bool pt_shape) {
    if (size <= 0.0) return;
    const int sets = options.shape_per_charge ? bn.n_charge : 1;
    for (int set = 0; set < sets; ++set) {
      NonpromptVariation v =
          new_variation(options.shape_per_charge ? base + "_" + charge_name(set) : base);
      for (int ieta = 0; ieta < bn.n_eta; ++ieta) {
        const double eta_c = 0.5 * (bn.eta_edges[ieta] + bn.eta_edges[ieta + 1]);
        const double z = 2.0 * std::abs(eta_c) / eta_abs_max - 1.0;
        for (int ipt = 0; ipt < n_pt; ++ipt)
          for (int iq = 0; iq < bn.n_charge; ++iq) {
            if (options.shape_per_charge && iq != set) continue;
            const std::size_t i = bn.Index(ieta, ipt, iq);
            const double r = size * (pt_shape ? xpt[ipt] : z);
            v.up[i] = res.nominal[i] * (1.0 + r);
            v.down[i] = res.nominal[i] * (1.0 - r);
          }
      }
      res.variations.push_back(std::move(v));
    }
  };
  shape("nonpromptShapePt", options.shape_pt, true);
  shape("nonpromptShapeEta", options.shape_eta, false);
  for (NonpromptVariation& v : res.variations) SetRange(&v, res.nominal);
  for (SliceFit& s : slices) res.fits.push_back(std::move(s.fit));
  return res;
}

}  // namespace lepus::models
