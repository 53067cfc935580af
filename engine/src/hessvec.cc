// Matrix-free second-order information: exact Hessian-vector products and the Hessian diagonal
// of the profiled NLL, in O(non-zero entries) per call (docs/likelihood.md section 5:
// H = sum_rows w1_r d2lambda_r + sum_bins J_b^T G_b J_b + diag(cw), never formed). Used by the
// matrix-free Newton-CG fit for models too large for a dense Hessian.
#include <cmath>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "likelihood_impl.h"

namespace lepus::engine {

namespace {

// mode 0: out += H v; mode 1: out += diag(H).
void SliceSecondOrder(const Likelihood::Impl& im, const Point& pt, std::int64_t b0, std::int64_t b1,
                      const Eigen::VectorXd* v, int mode, Eigen::VectorXd* out) {
  const Model& m = *im.model;
  const Tensor& t = m.tensor;
  const bool asym = !t.logk_halfdiff.empty();
  const bool lognormal = m.systematic_type == SystematicType::kLogNormal;
  const int npoi = im.npoi;
  out->setZero(im.npar);
  Eigen::VectorXd jv = Eigen::VectorXd::Zero(im.npar), ju = jv;
  detail::BinState st;
  detail::GeneralRowEval gre;
  for (std::int64_t b = b0; b < b1; ++b) {
    detail::ComputeBin(im, pt, b, true, &st);
    if (!st.ok) continue;
    const bool full = im.full;
    const double gv = st.gv, gu = st.gu;
    // Full mode (docs/numerics.md "Barlow-Beeston full"): per-row weights w_r, the rows' own
    // curvature d_r (dlambda_r)(dlambda_r)^T and the bin term h G G^T with G = sum_r c_r dlambda_r.
    const double hvv = full ? st.fr.h : st.hvv, hvu = full ? 0.0 : st.hvu,
                 huu = full ? 0.0 : st.huu;
    const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
    for (std::int64_t r = r0; r < r1; ++r) {
      const double w1 = full ? st.fr.w[r - r0] : ((st.has_beta && im.row_scaled[r]) ? gv : gu);
      const double dr = full ? st.fr.d[r - r0] : 0.0;
      const double lr = st.lam[r - r0], ex = st.ex[r - r0];
      if (im.any_general && im.row_general[r]) {
        // General row (row_kernel.h): (w1 d2lambda + d_r g g^T) v, or its diagonal.
        detail::GeneralRow(im.RowInputs(pt), r, 2, &gre);
        for (int j = 0; j < gre.n; ++j)
          for (int k = 0; k < gre.n; ++k) {
            const double hjk = w1 * gre.h(j, k) + dr * gre.g[j] * gre.g[k];
            if (mode == 0)
              (*out)[gre.col[j]] += hjk * (*v)[gre.col[k]];
            else if (gre.col[j] == gre.col[k])
              (*out)[gre.col[j]] += hjk;
          }
        continue;
      }
      const int p = t.row_proc[r];
      const std::int64_t i0 = t.row_start[r], i1 = t.row_start[r + 1];
      const double scale = lognormal ? lr : 1.0;
      const double dpoi = p < npoi ? pt.dr[p] * t.norm[r] * ex : 0.0;
      if (p < npoi) (*out)[p] += w1 * pt.d2r[p] * t.norm[r] * ex * (mode == 0 ? (*v)[p] : 1.0);
      double dot = 0.0;  // g . v over the row's systematics
      for (std::int64_t i = i0; i < i1; ++i) {
        const int s = t.syst[i];
        const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
        const double curv = asym ? w1 * scale * pt.c2[s] * t.logk_halfdiff[i] : 0.0;
        if (mode == 0) {
          dot += g * (*v)[npoi + s];
          (*out)[npoi + s] += curv * (*v)[npoi + s];
        } else {
          (*out)[npoi + s] +=
              curv + (lognormal ? w1 * lr * g * g : 0.0) + dr * scale * scale * g * g;
        }
      }
      if (dr != 0.0) {
        // d_r (dlambda_r)(dlambda_r . v), dlambda_r = (dpoi at p, scale g on the systematics).
        if (mode == 0) {
          const double dl = dr * ((p < npoi ? dpoi * (*v)[p] : 0.0) + scale * dot);
          if (p < npoi) (*out)[p] += dl * dpoi;
          for (std::int64_t i = i0; i < i1; ++i) {
            const int s = t.syst[i];
            const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
            (*out)[npoi + s] += dl * scale * g;
          }
        } else if (p < npoi) {
          (*out)[p] += dr * dpoi * dpoi;
        }
      }
      if (mode == 0 && lognormal) {
        const double wl = w1 * lr;
        const double vp = p < npoi ? (*v)[p] : 0.0;
        for (std::int64_t i = i0; i < i1; ++i) {
          const int s = t.syst[i];
          const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
          (*out)[npoi + s] += wl * g * dot + w1 * dpoi * g * vp;
        }
        if (p < npoi) (*out)[p] += w1 * dpoi * dot;
      }
    }
    // Bin term [Jv Ju] G [Jv Ju]^T.
    for (std::int64_t r = r0; r < r1; ++r)
      detail::AddRowGradient(im, pt, r, st.lam[r - r0], st.ex[r - r0], full ? st.fr.c[r - r0] : 1.0,
                             (full || (st.has_beta && im.row_scaled[r])) ? &jv : &ju);
    const std::int32_t* touch = im.bin_touch.data() + im.bin_touch_start[b];
    const std::int64_t ntouch = im.bin_touch_start[b + 1] - im.bin_touch_start[b];
    if (mode == 0) {
      double a = 0.0, c = 0.0;
      for (std::int64_t e = 0; e < ntouch; ++e) {
        a += jv[touch[e]] * (*v)[touch[e]];
        c += ju[touch[e]] * (*v)[touch[e]];
      }
      const double xa = hvv * a + hvu * c, ya = hvu * a + huu * c;
      for (std::int64_t e = 0; e < ntouch; ++e)
        (*out)[touch[e]] += xa * jv[touch[e]] + ya * ju[touch[e]];
    } else {
      for (std::int64_t e = 0; e < ntouch; ++e) {
        const double a = jv[touch[e]], c = ju[touch[e]];
        (*out)[touch[e]] += hvv * a * a + 2 * hvu * a * c + huu * c * c;
      }
    }
    for (std::int64_t e = 0; e < ntouch; ++e) jv[touch[e]] = ju[touch[e]] = 0.0;
  }
}

void SecondOrder(const Likelihood::Impl& im, const Eigen::VectorXd& x, const Eigen::VectorXd* v,
                 int mode, Eigen::VectorXd* result) {
  if (x.size() != im.npar || (v && v->size() != im.npar))
    throw std::invalid_argument(
        "matrix-free Hessian: vector sizes must equal the number of parameters (" +
        std::to_string(im.npar) + ")");
  if (im.dterm == DataTerm::kCovariance)
    throw std::invalid_argument(
        "the matrix-free Hessian does not support covariance fits (the data term couples "
        "all bins); use the dense method");
  Point pt;
  im.MakePoint(x, &pt);
  const auto& cuts = im.grad_slices;
  const int nslices = static_cast<int>(cuts.size()) - 1;
  std::vector<Eigen::VectorXd> outs(nslices);
  im.arena->execute([&] {
    tbb::parallel_for(tbb::blocked_range<int>(0, nslices, 1),
                      [&](const tbb::blocked_range<int>& range) {
                        for (int s = range.begin(); s < range.end(); ++s)
                          SliceSecondOrder(im, pt, cuts[s], cuts[s + 1], v, mode, &outs[s]);
                      });
  });
  result->setZero(im.npar);
  for (const auto& o : outs) *result += o;  // fixed order: identical at any thread count
  for (int s = 0; s < im.nsyst; ++s) {
    double d1 = 0.0, d2 = 0.0;
    im.Constraint(s, pt.theta[s], &d1, &d2);
    (*result)[im.npoi + s] += d2 * (mode == 0 ? (*v)[im.npoi + s] : 1.0);
  }
  // External terms: H_e v (or its diagonal) on their parameters.
  for (const detail::ExternalPart& e : im.externals) {
    if (e.hess.size() == 0) continue;
    for (int k = 0; k < e.hess.outerSize(); ++k)
      for (Eigen::SparseMatrix<double>::InnerIterator it(e.hess, k); it; ++it) {
        const int i = e.params[it.row()], j = e.params[it.col()];
        if (mode == 0)
          (*result)[i] += it.value() * (*v)[j];
        else if (i == j)
          (*result)[i] += it.value();
      }
  }
}

}  // namespace

void Likelihood::HessianVectorProduct(const Eigen::VectorXd& x, const Eigen::VectorXd& v,
                                      Eigen::VectorXd* hv) const {
  SecondOrder(*impl_, x, &v, 0, hv);
}

void Likelihood::HessianDiagonal(const Eigen::VectorXd& x, Eigen::VectorXd* diag) const {
  SecondOrder(*impl_, x, nullptr, 1, diag);
}

}  // namespace lepus::engine
