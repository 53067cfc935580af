// Profiled NLL, gradient and exact Hessian. See likelihood-reference.md sections 2-5 and
// docs/numerics.md. Hot paths: EvalSlice. Changes there must be measured (benchmarks/).
#include "lepus/engine/likelihood.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <Eigen/Eigenvalues>
#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "interpolation.h"
#include "likelihood_impl.h"

namespace lepus::engine {

using detail::kInf;
using detail::kNaN;
using detail::ChunkBuffer;
using detail::ChunkPlan;

std::string ToString(ParamKind kind) {
  switch (kind) {
    case ParamKind::kPoi: return "poi";
    case ParamKind::kNoi: return "noi";
    case ParamKind::kNuisance: return "nuisance";
  }
  return "unknown";
}

std::string ToString(HessianAssembly a) {
  switch (a) {
    case HessianAssembly::kAuto: return "auto";
    case HessianAssembly::kBlocked: return "blocked";
    case HessianAssembly::kPerRow: return "per_row";
  }
  return "unknown";
}

bool LikelihoodOptions::IsValid(std::string* error) const {
  if (num_threads < 0) {
    if (error) *error = "LikelihoodOptions.num_threads is " + std::to_string(num_threads) +
                        ", but must be >= 0 (0 = all hardware threads)";
    return false;
  }
  if (grain_rows <= 0) {
    if (error) *error = "LikelihoodOptions.grain_rows is " + std::to_string(grain_rows) + ", but must be > 0";
    return false;
  }
  return true;
}



namespace {

std::vector<std::int64_t> MakeSlices(const std::vector<std::int64_t>& bin_row, std::int64_t nbins,
                                     int nslices) {
  // Contiguous bin ranges with about equal row counts.
  std::vector<std::int64_t> cuts{0};
  const std::int64_t total = bin_row[nbins];
  nslices = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(nslices, nbins)));
  for (int s = 1; s < nslices; ++s) {
    const std::int64_t target = total * s / nslices;
    auto it = std::lower_bound(bin_row.begin(), bin_row.begin() + nbins + 1, target);
    std::int64_t b = it - bin_row.begin();
    b = std::clamp<std::int64_t>(b, cuts.back() + 1, nbins - (nslices - s));
    cuts.push_back(b);
  }
  cuts.push_back(nbins);
  return cuts;
}

// Groups the items of every slice (positions [cuts[s], cuts[s+1]) of `order`, a permutation of
// the items within each slice) into chunks, never across slices. Item i has the sorted column
// list elems[list_start[i] .. list_start[i+1]) in [0, dim).
ChunkPlan BuildChunkPlan(const std::vector<std::int64_t>& cuts, const std::vector<std::int64_t>& order,
                         const std::int64_t* list_start, const std::int32_t* elems, int dim, int capacity) {
  ChunkPlan plan;
  plan.items = order;
  plan.col_start.push_back(0);
  const std::int64_t first = cuts.front(), last = cuts.back();
  const std::int64_t elem0 = list_start[first];
  plan.local.assign(list_start[last] - elem0, 0);
  std::vector<int> mark(dim, -1), pos(dim, -1);
  int stamp = 0;
  std::vector<std::int32_t> uni;
  auto close = [&](std::int64_t k0, std::int64_t k1) {
    std::sort(uni.begin(), uni.end());
    const bool direct = 2 * static_cast<std::int64_t>(uni.size()) > dim;
    plan.start.push_back(k0);
    plan.direct.push_back(direct);
    if (!direct) {
      plan.cols.insert(plan.cols.end(), uni.begin(), uni.end());
      plan.max_union = std::max<std::int64_t>(plan.max_union, uni.size());
      plan.max_width = std::max<std::int64_t>(plan.max_width, uni.size());
      for (std::size_t k = 0; k < uni.size(); ++k) pos[uni[k]] = static_cast<int>(k);
    } else {
      plan.max_width = dim;
    }
    plan.col_start.push_back(static_cast<std::int64_t>(plan.cols.size()));
    for (std::int64_t k = k0; k < k1; ++k) {
      const std::int64_t i = order[k];
      for (std::int64_t e = list_start[i]; e < list_start[i + 1]; ++e)
        plan.local[e - elem0] = direct ? elems[e] : pos[elems[e]];
    }
    uni.clear();
    ++stamp;
  };
  for (std::size_t s = 0; s + 1 < cuts.size(); ++s) {
    std::int64_t k0 = cuts[s];
    std::int64_t maxn = 0;
    for (std::int64_t k = cuts[s]; k < cuts[s + 1]; ++k) {
      const std::int64_t i = order[k];
      const std::int64_t n = list_start[i + 1] - list_start[i];
      std::int64_t fresh = 0;
      for (std::int64_t e = list_start[i]; e < list_start[i + 1]; ++e) fresh += mark[elems[e]] != stamp;
      const std::int64_t u0 = static_cast<std::int64_t>(uni.size());
      const std::int64_t u = u0 + fresh;
      // Close when full, or when adding the item costs more than starting a new chunk with it:
      // every item of a chunk is a rank-1 update of the chunk's union width (u^2), plus the
      // scatter of the chunk's block (u^2 / 2). A column of a narrow item in a wide chunk, or of
      // one region's item in a chunk spanning two regions, costs the chunk's width.
      const double rows = static_cast<double>(k - k0);
      const double grow = (rows + 1.5) * static_cast<double>(u) * static_cast<double>(u);
      const double split = (rows + 0.5) * static_cast<double>(u0) * static_cast<double>(u0) +
                           1.5 * static_cast<double>(n) * static_cast<double>(n);
      if (k > k0 && (k - k0 >= capacity || (fresh > 0 && grow > split) || n * 2 < maxn)) {
        close(k0, k);
        k0 = k;
        maxn = 0;
      }
      for (std::int64_t e = list_start[i]; e < list_start[i + 1]; ++e)
        if (mark[elems[e]] != stamp) {
          mark[elems[e]] = stamp;
          uni.push_back(elems[e]);
        }
      maxn = std::max(maxn, n);
    }
    if (cuts[s + 1] > k0) close(k0, cuts[s + 1]);
  }
  plan.start.push_back(last);
  return plan;
}

}  // namespace

void Likelihood::Impl::Init() {
  const Model& m = *model;
  std::string err;
  if (!m.IsValid(&err)) throw std::invalid_argument("invalid model: " + err);
  if (!options.IsValid(&err)) throw std::invalid_argument(err);
  npoi = m.num_signals;
  nsyst = m.num_systematics();
  npar = npoi + nsyst;

  std::vector<char> is_noi(nsyst, 0);
  for (int i : m.noi_indices) is_noi[i] = 1;
  params.clear();
  for (int p = 0; p < npoi; ++p) {
    ParamInfo info;
    info.name = m.processes[p];
    info.kind = ParamKind::kPoi;
    info.prefit = 1.0;
    info.prefit_error = kNaN;
    params.push_back(info);
  }
  for (int s = 0; s < nsyst; ++s) {
    ParamInfo info;
    info.name = m.systematics[s];
    info.kind = is_noi[s] ? ParamKind::kNoi : ParamKind::kNuisance;
    info.constraint_weight = m.constraint_weights[s];
    info.constrained = info.constraint_weight > 0;
    info.prefit = 0.0;
    info.prefit_error = info.constrained ? 1.0 / std::sqrt(info.constraint_weight) : kNaN;
    if (!m.systematic_scales.empty()) info.scale = m.systematic_scales[s];
    if (!m.systematic_units.empty()) info.unit = m.systematic_units[s];
    params.push_back(info);
  }

  data = m.data_obs;
  theta0 = Eigen::VectorXd::Zero(nsyst);
  beta0 = Eigen::VectorXd::Ones(m.nbins);

  const Tensor& t = m.tensor;
  const std::int64_t nrows = t.num_rows();
  bin_row.assign(m.nbins_full + 1, 0);
  for (std::int64_t r = 0; r < nrows; ++r) ++bin_row[t.row_bin[r] + 1];
  for (std::int64_t b = 0; b < m.nbins_full; ++b) bin_row[b + 1] += bin_row[b];

  row_full.assign(nrows, 0);
  for (std::int64_t r = 0; r < nrows; ++r) {
    const std::int64_t i0 = t.row_start[r], i1 = t.row_start[r + 1];
    bool full = nsyst > 0 && i1 - i0 == nsyst;
    for (std::int64_t i = i0; full && i < i1; ++i) full = t.syst[i] == i - i0;
    row_full[r] = full;
  }

  // Barlow-Beeston lite: k_b = (sum_{p: sumw2>0} norm)^2 / sum_p sumw2.
  kstat = Eigen::VectorXd::Zero(m.nbins);
  row_scaled.assign(nrows, 0);
  if (options.bin_by_bin_stat) {
    for (std::int64_t b = 0; b < m.nbins; ++b) {
      double sum_norm = 0.0, sum_w2 = 0.0;
      for (int p = 0; p < m.num_processes(); ++p) sum_w2 += m.sumw2(b, p);
      for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r)
        if (m.sumw2(b, t.row_proc[r]) > 0) sum_norm += t.norm[r];
      if (sum_w2 > 0 && sum_norm > 0) {
        kstat[b] = sum_norm * sum_norm / sum_w2;
        for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r)
          row_scaled[r] = m.sumw2(b, t.row_proc[r]) > 0;
      }
    }
  }

  // Static sparsity per fitted bin.
  bin_touch_start.assign(1, 0);
  bin_touch.clear();
  std::vector<int> mark(npar, -1);
  double touch_total = 0.0;
  for (std::int64_t b = 0; b < m.nbins; ++b) {
    std::vector<std::int32_t> list;
    for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r) {
      const int p = t.row_proc[r];
      if (p < npoi && mark[p] != b) { mark[p] = static_cast<int>(b); list.push_back(p); }
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        const int q = npoi + t.syst[i];
        if (mark[q] != b) { mark[q] = static_cast<int>(b); list.push_back(q); }
      }
    }
    std::sort(list.begin(), list.end());
    bin_touch.insert(bin_touch.end(), list.begin(), list.end());
    bin_touch_start.push_back(static_cast<std::int64_t>(bin_touch.size()));
    touch_total += static_cast<double>(list.size());
  }
  (void)touch_total;
  chunked = options.hessian_assembly != HessianAssembly::kPerRow;

  // Slices: fixed by the model (never by the thread count) so that results are bitwise
  // reproducible at any number of threads. Hessian slices hold a dense npar^2 block each:
  // bounded to ~512 MB in total.
  const double hess_bytes = 8.0 * npar * static_cast<double>(npar);
  const int nhess = static_cast<int>(std::clamp(512e6 / std::max(hess_bytes, 1.0), 1.0, 16.0));
  grad_slices = MakeSlices(bin_row, m.nbins, 64);
  hess_slices = MakeSlices(bin_row, m.nbins, nhess);
  if (chunked) {
    const int nslice = static_cast<int>(hess_slices.size()) - 1;
    // Rows: items = rows of fitted bins, lists = their systematic columns.
    std::vector<std::int64_t> cuts(nslice + 1);
    for (int s = 0; s <= nslice; ++s) cuts[s] = bin_row[hess_slices[s]];
    // Within a slice, rows are taken process by process (rows of one process share their
    // columns across neighbouring bins; mixing wide signal rows with narrow background rows
    // would pad the narrow ones to the chunk's width).
    std::vector<std::int64_t> order;
    order.reserve(cuts.back());
    for (int s = 0; s < nslice; ++s) {
      const std::size_t k0 = order.size();
      for (std::int64_t r = cuts[s]; r < cuts[s + 1]; ++r) order.push_back(r);
      std::stable_sort(order.begin() + k0, order.end(),
                       [&](std::int64_t a, std::int64_t b) { return t.row_proc[a] < t.row_proc[b]; });
    }
    row_plan = BuildChunkPlan(cuts, order, t.row_start.data(), t.syst.data(), nsyst, 128);
    std::vector<std::int64_t> bins(m.nbins);
    for (std::int64_t b = 0; b < m.nbins; ++b) bins[b] = b;
    bin_plan = BuildChunkPlan(hess_slices, bins, bin_touch_start.data(), bin_touch.data(), npar, 64);
  }
  const int threads = options.num_threads > 0 ? options.num_threads : tbb::info::default_concurrency();
  arena = std::make_shared<tbb::task_arena>(threads);
}

void Likelihood::Impl::MakePoint(const Eigen::VectorXd& x, Point* pt) const {
  pt->r.resize(npoi);
  pt->dr.resize(npoi);
  pt->d2r.resize(npoi);
  for (int p = 0; p < npoi; ++p) {
    const double v = x[p];
    if (options.poi_positive) {
      pt->r[p] = v * v; pt->dr[p] = 2 * v; pt->d2r[p] = 2;
    } else {
      pt->r[p] = v; pt->dr[p] = 1; pt->d2r[p] = 0;
    }
  }
  pt->theta = x.tail(nsyst);
  pt->alpha.resize(nsyst);
  pt->c1.resize(nsyst);
  pt->c2.resize(nsyst);
  for (int s = 0; s < nsyst; ++s) {
    const AsymInterp a = AsymmetricAlpha(pt->theta[s]);
    pt->alpha[s] = a.alpha;
    pt->c1[s] = a.alpha + pt->theta[s] * a.dalpha;
    pt->c2[s] = 2 * a.dalpha + pt->theta[s] * a.d2alpha;
  }
}

double Likelihood::Impl::RowYield(const Point& pt, std::int64_t r, double* expo) const {
  const Tensor& t = model->tensor;
  const bool asym = !t.logk_halfdiff.empty();
  double e = 0.0;
  if (row_full[r]) {
    const std::int64_t i0 = t.row_start[r];
    const Eigen::Map<const Eigen::VectorXd> avg(t.logk_avg.data() + i0, nsyst);
    if (asym) {
      const Eigen::Map<const Eigen::VectorXd> hd(t.logk_halfdiff.data() + i0, nsyst);
      e = (avg + pt.alpha.cwiseProduct(hd)).dot(pt.theta);
    } else {
      e = avg.dot(pt.theta);
    }
  } else {
    for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
      const int s = t.syst[i];
      double k = t.logk_avg[i];
      if (asym) k += pt.alpha[s] * t.logk_halfdiff[i];
      e += pt.theta[s] * k;
    }
  }
  const int p = t.row_proc[r];
  const double rp = p < npoi ? pt.r[p] : 1.0;
  if (model->systematic_type == SystematicType::kLogNormal) {
    const double ex = std::exp(e);
    *expo = ex;
    return rp * t.norm[r] * ex;
  }
  *expo = 1.0;
  return rp * t.norm[r] + e;
}

double Likelihood::Impl::SolveBeta(double lv, double lu, double n, double k, double b0) const {
  // Positive root of (lv + k) lv beta^2 + [(lv + k) lu - (n + k b0) lv] beta - k b0 lu = 0.
  if (lu == 0.0) return (n + k * b0) / (lv + k);
  const double a = (lv + k) * lv;
  const double bq = (lv + k) * lu - (n + k * b0) * lv;
  const double c = -k * b0 * lu;
  const double disc = std::sqrt(std::max(bq * bq - 4 * a * c, 0.0));
  // Stable form: avoid cancellation between -bq and disc.
  return bq > 0 ? (2 * c) / (-bq - disc) : (-bq + disc) / (2 * a);
}

void Likelihood::Impl::BinJacobian(const Point& pt, std::int64_t b, const double* lam,
                                   const double* ex, Eigen::VectorXd* jv, Eigen::VectorXd* ju) const {
  const Tensor& t = model->tensor;
  const bool asym = !t.logk_halfdiff.empty();
  const bool lognormal = model->systematic_type == SystematicType::kLogNormal;
  const std::int64_t r0 = bin_row[b];
  for (std::int64_t r = r0; r < bin_row[b + 1]; ++r) {
    Eigen::VectorXd& j = row_scaled[r] ? *jv : *ju;
    const int p = t.row_proc[r];
    if (p < npoi) j[p] += pt.dr[p] * t.norm[r] * ex[r - r0];
    const double scale = lognormal ? lam[r - r0] : 1.0;
    for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
      const int s = t.syst[i];
      const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
      j[npoi + s] += scale * g;
    }
  }
}

void Likelihood::Impl::EvalSlice(const Point& pt, std::int64_t b0, std::int64_t b1, int level,
                                 SliceOut* out, const Eigen::VectorXd* fixed_beta) const {
  const Model& m = *model;
  const Tensor& t = m.tensor;
  const bool asym = !t.logk_halfdiff.empty();
  const bool lognormal = m.systematic_type == SystematicType::kLogNormal;

  out->nll = 0.0;
  if (level >= 1) out->grad = Eigen::VectorXd::Zero(npar);
  if (level >= 2) {
    out->hess = hess_pool.Take();
    out->hess.setZero(npar, npar);
  }

  std::int64_t max_rows = 0;
  for (std::int64_t b = b0; b < b1; ++b) max_rows = std::max(max_rows, bin_row[b + 1] - bin_row[b]);
  std::vector<double> lam(max_rows), ex(max_rows);

  // Per-bin derivative accumulators (dense over parameters, reset through the touch list).
  Eigen::VectorXd jv, ju;
  std::unique_ptr<ChunkBuffer> row_buf, bin_buf;
  std::vector<double> row_weight;  // w1 * lambda per row of the slice (chunked row term)
  if (level >= 2) {
    jv = Eigen::VectorXd::Zero(npar);
    ju = Eigen::VectorXd::Zero(npar);
    if (chunked && lognormal && bin_row[b1] > bin_row[b0]) {
      row_buf = std::make_unique<ChunkBuffer>(row_plan, nsyst, 128);
      row_weight.assign(bin_row[b1] - bin_row[b0], 0.0);
    }
    if (chunked && b1 > b0) {
      bin_buf = std::make_unique<ChunkBuffer>(bin_plan, npar, 128);
      bin_buf->Begin(bin_plan.FindChunk(b0));
    }
  }
  auto hss = [&]() { return out->hess.bottomRightCorner(nsyst, nsyst); };

  for (std::int64_t b = b0; b < b1; ++b) {
    const std::int64_t r0 = bin_row[b], r1 = bin_row[b + 1];
    double lv = 0.0, lu = 0.0;
    for (std::int64_t r = r0; r < r1; ++r) {
      lam[r - r0] = RowYield(pt, r, &ex[r - r0]);
      (row_scaled[r] ? lv : lu) += lam[r - r0];
    }
    const double n = data[b];
    const double k = kstat[b];
    const bool has_beta = k > 0 && lv > 0;
    double beta = 1.0, L, gv, gu, hvv, hvu, huu;
    if (has_beta) {
      beta = fixed_beta ? (*fixed_beta)[b] : SolveBeta(lv, lu, n, k, beta0[b]);
      L = beta * lv + lu;
    } else {
      L = lv + lu;
    }
    // A bin with zero expectation and no observed event is valid: its term L - n ln L is 0
    // (lim L->0 of L), with gradient dL and no curvature (n / L^2 = 0; docs/numerics.md).
    const bool empty_bin = L == 0.0 && n == 0.0;
    if ((!(L > 0) && !empty_bin) || !std::isfinite(L) || !(beta > 0)) {
      // Non-positive expectation (or zero with observed events): outside the model's domain.
      out->nll = kInf;
      return;
    }
    double nll_b = n > 0 ? L - n + n * (std::log(n) - std::log(L)) : L;
    // Gamma constraint in saturated form: zero at beta = beta0 (identical to the reference's
    // -k beta0 ln(beta) + k (beta - beta0) for beta0 = 1; keeps 2 NLL a goodness-of-fit
    // statistic when beta0 is randomised in toys).
    if (has_beta) nll_b += k * (beta - beta0[b]) - k * beta0[b] * std::log(beta / beta0[b]);
    out->nll += nll_b;
    if (level == 0) continue;

    // n = 0: q = 1 and no curvature whatever L (for L < 1e-154, L * L underflows: 0 / 0).
    const double q = n > 0 ? 1.0 - n / L : 1.0;
    if (has_beta) {
      gv = beta * q;
      gu = q;
      const double nl2 = n > 0 ? n / (L * L) : 0.0;
      const double fvv = nl2 * beta * beta, fvu = nl2 * beta, fuu = nl2;
      const double fbv = q + nl2 * beta * lv, fbu = nl2 * lv;
      const double fbb = nl2 * lv * lv + k * beta0[b] / (beta * beta);
      if (fixed_beta) {
        hvv = fvv; hvu = fvu; huu = fuu;
      } else {
        hvv = fvv - fbv * fbv / fbb;
        hvu = fvu - fbv * fbu / fbb;
        huu = fuu - fbu * fbu / fbb;
      }
    } else {
      gv = gu = q;
      hvv = hvu = huu = n > 0 ? n / (L * L) : 0.0;
    }

    // Gradient and the row-level (second-derivative-of-lambda) Hessian terms.
    for (std::int64_t r = r0; r < r1; ++r) {
      const double w1 = row_scaled[r] ? gv : gu;
      const double lr = lam[r - r0];
      const int p = t.row_proc[r];
      const std::int64_t i0 = t.row_start[r], i1 = t.row_start[r + 1];
      // d lambda_r / d x for the POI of this row; d lambda / d theta_s = lr * g (log-normal) or g.
      const double dpoi = p < npoi ? pt.dr[p] * t.norm[r] * ex[r - r0] : 0.0;
      const double scale = lognormal ? lr : 1.0;
      if (p < npoi) out->grad[p] += w1 * dpoi;
      if (row_full[r]) {
        const Eigen::Map<const Eigen::VectorXd> avg(t.logk_avg.data() + i0, nsyst);
        auto grad_syst = out->grad.segment(npoi, nsyst);
        if (asym) {
          const Eigen::Map<const Eigen::VectorXd> hd(t.logk_halfdiff.data() + i0, nsyst);
          grad_syst += (w1 * scale) * (avg + pt.c1.cwiseProduct(hd));
        } else {
          grad_syst += (w1 * scale) * avg;
        }
      } else {
        for (std::int64_t i = i0; i < i1; ++i) {
          const int s = t.syst[i];
          const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
          out->grad[npoi + s] += w1 * scale * g;
        }
      }
      if (level < 2) continue;

      auto& H = out->hess;
      // d2 lambda / dmu2
      if (p < npoi) H(p, p) += w1 * pt.d2r[p] * t.norm[r] * ex[r - r0];
      // asymmetric curvature of the exponent (diagonal)
      if (asym)
        for (std::int64_t i = i0; i < i1; ++i) {
          const int s = t.syst[i];
          H(npoi + s, npoi + s) += w1 * scale * pt.c2[s] * t.logk_halfdiff[i];
        }
      if (!lognormal) continue;
      // log-normal: lambda g g^T (systematics) and the POI-systematic cross terms
      if (p < npoi) {
        const double c = w1 * dpoi;
        for (std::int64_t i = i0; i < i1; ++i) {
          const int s = t.syst[i];
          const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
          H(npoi + s, p) += c * g;
        }
      }
      const double w = w1 * lr;
      if (w == 0.0) continue;
      if (row_buf) {
        row_weight[r - bin_row[b0]] = w;  // outer product added below, chunk by chunk
      } else {
        for (std::int64_t i = i0; i < i1; ++i) {
          const int si = t.syst[i];
          const double gi = asym ? t.logk_avg[i] + pt.c1[si] * t.logk_halfdiff[i] : t.logk_avg[i];
          const double wg = w * gi;
          for (std::int64_t j = i0; j <= i; ++j) {
            const int sj = t.syst[j];
            const double gj = asym ? t.logk_avg[j] + pt.c1[sj] * t.logk_halfdiff[j] : t.logk_avg[j];
            H(npoi + si, npoi + sj) += wg * gj;
          }
        }
      }
    }
    if (level < 2) continue;

    // Bin-level term: [Jv Ju] G2 [Jv Ju]^T with J = d(lambda_v, lambda_u)/dx.
    BinJacobian(pt, b, lam.data(), ex.data(), &jv, &ju);
    const std::int32_t* touch = bin_touch.data() + bin_touch_start[b];
    const std::int64_t ntouch = bin_touch_start[b + 1] - bin_touch_start[b];
    auto& H = out->hess;
    if (bin_buf && b == bin_plan.start[bin_buf->chunk() + 1]) {
      bin_buf->End(out->hess);
      bin_buf->Begin(bin_buf->chunk() + 1);
    }
    if (bin_buf) {
      // Diagonalise the 2x2 G2 and feed two weighted vectors to the rank-k buffer.
      Eigen::Matrix2d g2;
      g2 << hvv, hvu, hvu, huu;
      Eigen::SelfAdjointEigenSolver<Eigen::Matrix2d> es;
      es.computeDirect(g2);  // closed form (no iteration): info() is always Success
      for (int e = 0; e < 2; ++e) {
        const double ev = es.eigenvalues()[e];
        if (ev == 0.0) continue;
        const double cv = es.eigenvectors()(0, e), cu = es.eigenvectors()(1, e);
        double* col = bin_buf->Column(ev);
        const double sw = std::sqrt(std::abs(ev));
        const std::int32_t* loc = bin_plan.local.data() + bin_touch_start[b];
        for (std::int64_t a = 0; a < ntouch; ++a) {
          const int ia = touch[a];
          col[loc[a]] = sw * (cv * jv[ia] + cu * ju[ia]);
        }
        bin_buf->Commit(out->hess);
      }
    } else {
      for (std::int64_t a = 0; a < ntouch; ++a) {
        const int ia = touch[a];
        const double va = jv[ia], ua = ju[ia];
        const double xa = hvv * va + hvu * ua, ya = hvu * va + huu * ua;
        for (std::int64_t c = 0; c <= a; ++c) {
          const int ic = touch[c];
          H(ia, ic) += xa * jv[ic] + ya * ju[ic];
        }
      }
    }
    for (std::int64_t a = 0; a < ntouch; ++a) {
      jv[touch[a]] = 0.0;
      ju[touch[a]] = 0.0;
    }
  }
  if (bin_buf) bin_buf->End(out->hess);
  // Row term lambda w1 g g^T, chunk by chunk in the plan's order.
  if (row_buf) {
    const std::int64_t rs0 = bin_row[b0], rs1 = bin_row[b1];
    for (int c = row_plan.FindChunk(rs0); c + 1 < static_cast<int>(row_plan.start.size()) && row_plan.start[c] < rs1; ++c) {
      row_buf->Begin(c);
      for (std::int64_t k = row_plan.start[c]; k < row_plan.start[c + 1]; ++k) {
        const std::int64_t r = row_plan.items[k];
        const double w = row_weight[r - rs0];
        if (w == 0.0) continue;
        double* col = row_buf->Column(w);
        const double sw = std::sqrt(std::abs(w));
        const std::int64_t i0 = t.row_start[r], i1 = t.row_start[r + 1];
        const std::int32_t* loc = row_plan.local.data() + (i0 - t.row_start[0]);
        for (std::int64_t i = i0; i < i1; ++i) {
          const int s = t.syst[i];
          const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
          col[loc[i - i0]] = sw * g;
        }
        row_buf->Commit(hss());
      }
      row_buf->End(hss());
    }
  }
}

double Likelihood::Impl::Evaluate(const Eigen::VectorXd& x, int level, Eigen::VectorXd* grad,
                                  Eigen::MatrixXd* hess, const Eigen::VectorXd* fixed_beta) const {
  if (x.size() != npar)
    throw std::invalid_argument("parameter vector has " + std::to_string(x.size()) +
                                " entries, but the model has " + std::to_string(npar));
  Point pt;
  MakePoint(x, &pt);
  const auto& cuts = level >= 2 ? hess_slices : grad_slices;
  const int nslices = static_cast<int>(cuts.size()) - 1;
  std::vector<SliceOut> outs(nslices);
  arena->execute([&] {
    tbb::parallel_for(tbb::blocked_range<int>(0, nslices, 1), [&](const tbb::blocked_range<int>& range) {
      for (int s = range.begin(); s < range.end(); ++s) EvalSlice(pt, cuts[s], cuts[s + 1], level, &outs[s], fixed_beta);
    });
  });
  // Fixed-order reduction: identical results at any thread count.
  double nll = 0.0;
  for (const auto& o : outs) nll += o.nll;
  // Gaussian constraints.
  const Model& m = *model;
  for (int s = 0; s < nsyst; ++s) {
    const double d = pt.theta[s] - theta0[s];
    nll += 0.5 * m.constraint_weights[s] * d * d;
  }
  if (level >= 1) {
    grad->setZero(npar);
    for (const auto& o : outs)
      if (o.grad.size() == npar) *grad += o.grad;
    for (int s = 0; s < nsyst; ++s) (*grad)[npoi + s] += m.constraint_weights[s] * (pt.theta[s] - theta0[s]);
  }
  if (level >= 2) {
    hess->setZero(npar, npar);
    // Column blocks in parallel, slices summed in order within each block.
    arena->execute([&] {
      tbb::parallel_for(tbb::blocked_range<int>(0, npar, 64), [&](const tbb::blocked_range<int>& range) {
        for (const auto& o : outs) {
          if (o.hess.rows() != npar) continue;
          for (int c = range.begin(); c < range.end(); ++c)
            hess->col(c).tail(npar - c) += o.hess.col(c).tail(npar - c);
        }
      });
    });
    for (int s = 0; s < nsyst; ++s) (*hess)(npoi + s, npoi + s) += m.constraint_weights[s];
    hess->triangularView<Eigen::StrictlyUpper>() = hess->transpose();
    for (auto& o : outs) hess_pool.Give(std::move(o.hess));
  }
  if (!std::isfinite(nll)) nll = kInf;
  return nll;
}

Likelihood::Likelihood(Model model, LikelihoodOptions options)
    : Likelihood(std::make_shared<const Model>(std::move(model)), options) {}

Likelihood::Likelihood(std::shared_ptr<const Model> model, LikelihoodOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!model) throw std::invalid_argument("Likelihood: model is null");
  impl_->model = std::move(model);
  impl_->options = options;
  impl_->Init();
}

Likelihood::Likelihood() = default;

Likelihood Likelihood::Clone(int num_threads) const {
  if (num_threads < 0) throw std::invalid_argument("Clone: num_threads must be >= 0");
  Likelihood out;
  out.impl_ = std::make_unique<Impl>(*impl_);
  out.impl_->options.num_threads = num_threads;
  const int threads = num_threads > 0 ? num_threads : tbb::info::default_concurrency();
  out.impl_->arena = std::make_shared<tbb::task_arena>(threads);
  return out;
}

Likelihood::~Likelihood() = default;
Likelihood::Likelihood(Likelihood&&) noexcept = default;
Likelihood& Likelihood::operator=(Likelihood&&) noexcept = default;

const Model& Likelihood::model() const { return *impl_->model; }
const LikelihoodOptions& Likelihood::options() const { return impl_->options; }
int Likelihood::num_params() const { return impl_->npar; }
const std::vector<ParamInfo>& Likelihood::params() const { return impl_->params; }

int Likelihood::FindParam(const std::string& name) const {
  for (int i = 0; i < impl_->npar; ++i)
    if (impl_->params[i].name == name) return i;
  return -1;
}

Eigen::VectorXd Likelihood::InitialParams() const {
  Eigen::VectorXd x(impl_->npar);
  x.head(impl_->npoi).setOnes();
  x.tail(impl_->nsyst) = impl_->theta0;
  return x;
}

void Likelihood::SetData(const Eigen::VectorXd& data) {
  const auto nbins = impl_->model->nbins;
  if (data.size() != nbins)
    throw std::invalid_argument("data has " + std::to_string(data.size()) +
                                " entries, but the model has " + std::to_string(nbins) + " fitted bins");
  for (Eigen::Index b = 0; b < data.size(); ++b)
    if (!std::isfinite(data[b]) || data[b] < 0)
      throw std::invalid_argument("data[" + std::to_string(b) + "] is " + std::to_string(data[b]) +
                                  ", but must be finite and >= 0");
  impl_->data = data;
}

const Eigen::VectorXd& Likelihood::data() const { return impl_->data; }

void Likelihood::SetGlobalObservables(const Eigen::VectorXd& theta0, const Eigen::VectorXd& beta0) {
  if (theta0.size() != impl_->nsyst)
    throw std::invalid_argument("theta0 has " + std::to_string(theta0.size()) + " entries, but must have " +
                                std::to_string(impl_->nsyst));
  if (beta0.size() != impl_->model->nbins)
    throw std::invalid_argument("beta0 has " + std::to_string(beta0.size()) + " entries, but must have " +
                                std::to_string(impl_->model->nbins));
  if (!theta0.allFinite() || !beta0.allFinite() || (beta0.array() <= 0).any())
    throw std::invalid_argument("global observables must be finite and beta0 > 0");
  impl_->theta0 = theta0;
  impl_->beta0 = beta0;
}

const Eigen::VectorXd& Likelihood::theta0() const { return impl_->theta0; }
const Eigen::VectorXd& Likelihood::beta0() const { return impl_->beta0; }

double Likelihood::Value(const Eigen::VectorXd& x) const { return impl_->Evaluate(x, 0, nullptr, nullptr); }

double Likelihood::ValueAndGradient(const Eigen::VectorXd& x, Eigen::VectorXd* grad) const {
  return impl_->Evaluate(x, 1, grad, nullptr);
}

double Likelihood::ValueGradientHessian(const Eigen::VectorXd& x, Eigen::VectorXd* grad,
                                        Eigen::MatrixXd* hess) const {
  return impl_->Evaluate(x, 2, grad, hess);
}

Eigen::MatrixXd Likelihood::ExpectedYieldsPerProcess(const Eigen::VectorXd& x) const {
  const Model& m = *impl_->model;
  Point pt;
  impl_->MakePoint(x, &pt);
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(m.nbins_full, m.num_processes());
  double ex;
  for (std::int64_t r = 0; r < m.tensor.num_rows(); ++r)
    out(m.tensor.row_bin[r], m.tensor.row_proc[r]) = impl_->RowYield(pt, r, &ex);
  return out;
}

Eigen::VectorXd Likelihood::ProfiledBeta(const Eigen::VectorXd& x) const {
  const Model& m = *impl_->model;
  Point pt;
  impl_->MakePoint(x, &pt);
  Eigen::VectorXd beta = Eigen::VectorXd::Ones(m.nbins);
  double ex;
  for (std::int64_t b = 0; b < m.nbins; ++b) {
    if (impl_->kstat[b] <= 0) continue;
    double lv = 0, lu = 0;
    for (std::int64_t r = impl_->bin_row[b]; r < impl_->bin_row[b + 1]; ++r)
      (impl_->row_scaled[r] ? lv : lu) += impl_->RowYield(pt, r, &ex);
    if (lv > 0) beta[b] = impl_->SolveBeta(lv, lu, impl_->data[b], impl_->kstat[b], impl_->beta0[b]);
  }
  return beta;
}

Eigen::VectorXd Likelihood::ExpectedYields(const Eigen::VectorXd& x, bool include_beta) const {
  const Model& m = *impl_->model;
  Point pt;
  impl_->MakePoint(x, &pt);
  Eigen::VectorXd beta = include_beta ? ProfiledBeta(x) : Eigen::VectorXd::Ones(m.nbins);
  Eigen::VectorXd out = Eigen::VectorXd::Zero(m.nbins_full);
  double ex;
  for (std::int64_t r = 0; r < m.tensor.num_rows(); ++r) {
    const std::int64_t b = m.tensor.row_bin[r];
    const double y = impl_->RowYield(pt, r, &ex);
    out[b] += (b < m.nbins && impl_->row_scaled[r]) ? beta[b] * y : y;
  }
  return out;
}

const Eigen::VectorXd& Likelihood::bb_kstat() const { return impl_->kstat; }

double Likelihood::ValueGradientHessianFixedBeta(const Eigen::VectorXd& x, const Eigen::VectorXd& beta,
                                                 Eigen::VectorXd* grad, Eigen::MatrixXd* hess) const {
  if (beta.size() != impl_->model->nbins)
    throw std::invalid_argument("beta has " + std::to_string(beta.size()) + " entries, but must have " +
                                std::to_string(impl_->model->nbins));
  return impl_->Evaluate(x, 2, grad, hess, &beta);
}

void Likelihood::GlobalObservableDerivatives(const Eigen::VectorXd& x, Eigen::MatrixXd* d_data,
                                             Eigen::MatrixXd* d_beta0) const {
  const Impl& im = *impl_;
  const Model& m = *im.model;
  if (x.size() != im.npar)
    throw std::invalid_argument("parameter vector has " + std::to_string(x.size()) + " entries, but the model has " +
                                std::to_string(im.npar));
  Point pt;
  im.MakePoint(x, &pt);
  d_data->setZero(im.npar, m.nbins);
  d_beta0->setZero(im.npar, m.nbins);
  im.arena->execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, m.nbins, 16), [&](const tbb::blocked_range<std::int64_t>& range) {
      Eigen::VectorXd jv = Eigen::VectorXd::Zero(im.npar), ju = Eigen::VectorXd::Zero(im.npar);
      std::vector<double> lam, ex;
      for (std::int64_t b = range.begin(); b < range.end(); ++b) {
        const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
        lam.resize(r1 - r0);
        ex.resize(r1 - r0);
        double lv = 0.0, lu = 0.0;
        for (std::int64_t r = r0; r < r1; ++r) {
          lam[r - r0] = im.RowYield(pt, r, &ex[r - r0]);
          (im.row_scaled[r] ? lv : lu) += lam[r - r0];
        }
        const double n = im.data[b], k = im.kstat[b];
        const bool has_beta = k > 0 && lv > 0;
        // d(dG/dlambda_v, dG/dlambda_u)/dn and /dbeta0 at the profiled beta.
        double dv_dn, du_dn, dv_db0 = 0.0, du_db0 = 0.0;
        if (has_beta) {
          const double beta = im.SolveBeta(lv, lu, n, k, im.beta0[b]);
          const double L = beta * lv + lu;
          const double nl2 = n > 0 ? n / (L * L) : 0.0;
          const double fbv = (1.0 - n / L) + nl2 * beta * lv, fbu = nl2 * lv;
          const double fbb = nl2 * lv * lv + k * im.beta0[b] / (beta * beta);
          const double dbeta_dn = (lv / L) / fbb;
          const double dbeta_db0 = (k / beta) / fbb;
          dv_dn = -beta / L + fbv * dbeta_dn;
          du_dn = -1.0 / L + fbu * dbeta_dn;
          dv_db0 = fbv * dbeta_db0;
          du_db0 = fbu * dbeta_db0;
        } else {
          const double L = lv + lu;
          // An empty bin (L = 0, n = 0) has no spread of n (sigma_n = 0): no derivative to use.
          dv_dn = du_dn = L > 0 ? -1.0 / L : 0.0;
        }
        im.BinJacobian(pt, b, lam.data(), ex.data(), &jv, &ju);
        const std::int32_t* touch = im.bin_touch.data() + im.bin_touch_start[b];
        const std::int64_t ntouch = im.bin_touch_start[b + 1] - im.bin_touch_start[b];
        for (std::int64_t a = 0; a < ntouch; ++a) {
          const int i = touch[a];
          (*d_data)(i, b) = dv_dn * jv[i] + du_dn * ju[i];
          (*d_beta0)(i, b) = dv_db0 * jv[i] + du_db0 * ju[i];
          jv[i] = ju[i] = 0.0;
        }
      }
    });
  });
}

double Likelihood::PoiValue(double x) const { return impl_->options.poi_positive ? x * x : x; }
double Likelihood::PoiDerivative(double x) const { return impl_->options.poi_positive ? 2 * x : 1.0; }

}  // namespace lepus::engine
