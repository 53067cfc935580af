// Profiled NLL, gradient and exact Hessian. See docs/likelihood.md sections 2-5 and
// docs/numerics.md. Hot paths: EvalSlice. Changes there must be measured (benchmarks/).
#include "lepus/engine/likelihood.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <Eigen/Eigenvalues>

#include "interpolation.h"
#include "lepus/engine/fit.h"
#include "likelihood_impl.h"

namespace lepus::engine {

using detail::ChunkBuffer;
using detail::ChunkPlan;
using detail::kInf;
using detail::kNaN;

std::string ToString(ParamKind kind) {
  switch (kind) {
    case ParamKind::kPoi:
      return "poi";
    case ParamKind::kNoi:
      return "noi";
    case ParamKind::kNuisance:
      return "nuisance";
  }
  return "unknown";
}

std::string ToString(HessianAssembly a) {
  switch (a) {
    case HessianAssembly::kAuto:
      return "auto";
    case HessianAssembly::kBlocked:
      return "blocked";
    case HessianAssembly::kPerRow:
      return "per_row";
  }
  return "unknown";
}

std::string ToString(DataTerm term) { return NameIn(kDataTermNames, term); }
DataTerm DataTermFromString(const std::string& text) {
  return ParseIn(kDataTermNames, text, "data term");
}

std::string ToString(BinByBinStatType type) { return NameIn(kBinByBinStatTypeNames, type); }
BinByBinStatType BinByBinStatTypeFromString(const std::string& text) {
  return ParseIn(kBinByBinStatTypeNames, text, "bin-by-bin stat type");
}

std::string ToString(BinByBinStatMode mode) { return NameIn(kBinByBinStatModeNames, mode); }
BinByBinStatMode BinByBinStatModeFromString(const std::string& text) {
  return ParseIn(kBinByBinStatModeNames, text, "bin-by-bin stat mode");
}

bool LikelihoodOptions::IsValid(std::string* error) const {
  if (num_threads < 0) {
    if (error)
      *error = "LikelihoodOptions.num_threads is " + std::to_string(num_threads) +
               ", but must be >= 0 (0 = all hardware threads)";
    return false;
  }
  if (grain_rows <= 0) {
    if (error)
      *error =
          "LikelihoodOptions.grain_rows is " + std::to_string(grain_rows) + ", but must be > 0";
    return false;
  }
  return true;
}

namespace {

// The "+" root of a x^2 + b x + c = 0 (a > 0; the root rabbit's solve_quad_eq takes), without
// cancellation between -b and the square root of the discriminant.
inline double PlusRoot(double a, double b, double c) {
  const double disc = std::sqrt(std::max(b * b - 4 * a * c, 0.0));
  return b > 0 ? (2 * c) / (-b - disc) : (-b + disc) / (2 * a);
}

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
ChunkPlan BuildChunkPlan(const std::vector<std::int64_t>& cuts,
                         const std::vector<std::int64_t>& order, const std::int64_t* list_start,
                         const std::int32_t* elems, int dim, int capacity) {
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
      for (std::int64_t e = list_start[i]; e < list_start[i + 1]; ++e)
        fresh += mark[elems[e]] != stamp;
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
    info.prefit = !m.initial_values.empty()       ? m.initial_values[s]
                  : !m.global_observables.empty() ? m.global_observables[s]
                                                  : 0.0;
    info.prefit_error = info.constrained ? 1.0 / std::sqrt(info.constraint_weight) : kNaN;
    if (!m.systematic_scales.empty()) info.scale = m.systematic_scales[s];
    if (!m.systematic_units.empty()) info.unit = m.systematic_units[s];
    params.push_back(info);
  }

  data = m.data_obs;
  theta0 = Eigen::VectorXd::Zero(nsyst);
  for (int s = 0; s < nsyst && !m.global_observables.empty(); ++s)
    theta0[s] = m.global_observables[s];
  poisson.assign(m.constraint_kinds.empty() ? 0 : nsyst, 0);
  for (int s = 0; s < static_cast<int>(poisson.size()); ++s)
    poisson[s] = m.constraint_kinds[s] == ConstraintKind::kPoisson;

  const Tensor& t = m.tensor;
  const std::int64_t nrows = t.num_rows();
  bin_row.assign(m.nbins_full + 1, 0);
  for (std::int64_t r = 0; r < nrows; ++r) ++bin_row[t.row_bin[r] + 1];
  for (std::int64_t b = 0; b < m.nbins_full; ++b) bin_row[b + 1] += bin_row[b];

  // General rows (entry kinds other than kModel) and the code-4 coefficients of their entries.
  row_general.assign(nrows, 0);
  any_general = false;
  coef_index.clear();
  coef.clear();
  if (!t.entry_kind.empty()) {
    coef_index.assign(t.num_entries(), -1);
    for (std::int64_t r = 0; r < nrows; ++r)
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        if (t.entry_kind[i] != EntryKind::kModel) row_general[r] = 1;
        // Normsys entries: ln hi, ln lo (and code 4's six coefficients), computed once.
        const EntryKind k = t.entry_kind[i];
        if (k == EntryKind::kNormsysCode1 || k == EntryKind::kNormsysCode4) {
          coef_index[i] = static_cast<std::int64_t>(coef.size());
          const auto a = detail::NormsysCoefficients(t.entry_up[i], t.entry_down[i]);
          coef.insert(coef.end(), a.begin(), a.begin() + (k == EntryKind::kNormsysCode4 ? 8 : 2));
        }
      }
    for (char g : row_general) any_general = any_general || g;
  }

  row_full.assign(nrows, 0);
  for (std::int64_t r = 0; r < nrows; ++r) {
    const std::int64_t i0 = t.row_start[r], i1 = t.row_start[r + 1];
    bool full = nsyst > 0 && i1 - i0 == nsyst && !row_general[r];
    for (std::int64_t i = i0; full && i < i1; ++i) full = t.syst[i] == i - i0;
    row_full[r] = full;
  }

  // Barlow-Beeston lite: k_b = (sum_{p: sumw2>0} sumw)^2 / sum_p sumw2 with sumw = Model::sumw
  // (rabbit's hsumw) where the input has it, the nominal otherwise (rabbit's writer fills hsumw
  // with the nominal).
  full = options.bin_by_bin_stat && options.bin_by_bin_stat_mode == BinByBinStatMode::kFull;
  auto sumw_at = [&](std::int64_t r) {
    return m.sumw.size() ? m.sumw(t.row_bin[r], t.row_proc[r]) : t.norm[r];
  };
  nbeta = full ? m.nbins * m.num_processes() : m.nbins;
  kstat = Eigen::VectorXd::Zero(nbeta);
  row_scaled.assign(nrows, 0);
  row_beta.assign(full ? nrows : 0, -1);
  row_k = Eigen::VectorXd::Zero(full ? nrows : 0);
  row_s = row_k;
  if (full) {
    // Full: k_bp = norm_bp^2 / sumw2_bp for every (fitted bin, process) with sumw2 > 0 and
    // norm != 0 (rabbit's betamask excludes the others; normal-additive betas need sumw2 > 0 only).
    const bool additive_full = options.bin_by_bin_stat_type == BinByBinStatType::kNormalAdditive;
    for (std::int64_t r = 0; r < bin_row[m.nbins]; ++r) {
      const std::int64_t b = t.row_bin[r];
      const int p = t.row_proc[r];
      const double w2 = m.sumw2(b, p), nr = sumw_at(r);
      if (!(w2 > 0) || (nr == 0.0 && !additive_full)) continue;
      row_beta[r] = b * m.num_processes() + p;
      row_k[r] = nr * nr / w2;
      row_s[r] = std::sqrt(w2);
      kstat[row_beta[r]] = row_k[r];
    }
  } else if (options.bin_by_bin_stat) {
    for (std::int64_t b = 0; b < m.nbins; ++b) {
      double sum_norm = 0.0, sum_w2 = 0.0;
      for (int p = 0; p < m.num_processes(); ++p) sum_w2 += m.sumw2(b, p);
      for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r)
        if (m.sumw2(b, t.row_proc[r]) > 0) sum_norm += sumw_at(r);
      if (sum_w2 > 0 && sum_norm > 0) {
        kstat[b] = sum_norm * sum_norm / sum_w2;
        for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r)
          row_scaled[r] = m.sumw2(b, t.row_proc[r]) > 0;
      }
    }
  }

  // Likelihood variant (docs/numerics.md "Likelihood variants").
  dterm = options.data_term;
  bbtype = options.bin_by_bin_stat_type;
  if (bbtype == BinByBinStatType::kAutomatic)
    bbtype = dterm == DataTerm::kCovariance ? BinByBinStatType::kNormalAdditive
             : full                         ? BinByBinStatType::kNormalMultiplicative
                                            : BinByBinStatType::kGamma;
  beta0 = Eigen::VectorXd::Ones(nbeta);
  if (dterm == DataTerm::kCovariance && options.bin_by_bin_stat &&
      bbtype == BinByBinStatType::kGamma)
    throw std::invalid_argument(
        "a covariance fit supports the normal-additive and normal-multiplicative "
        "Barlow-Beeston types (as rabbit), but gamma was requested; use "
        "--bin-by-bin-stat-type normal-additive (the automatic choice) or --no-bbstat");
  sbeta = Eigen::VectorXd::Zero(m.nbins);
  if (options.bin_by_bin_stat && bbtype == BinByBinStatType::kNormalAdditive) {
    if (!full)
      for (std::int64_t b = 0; b < m.nbins; ++b) sbeta[b] = std::sqrt(m.sumw2.row(b).sum());
    beta0.setZero();
  }
  if (dterm != DataTerm::kPoisson) {
    var = (options.use_data_var && m.data_var.size() == m.nbins) ? m.data_var : m.data_obs;
    if (dterm == DataTerm::kChisq || m.data_cov_inv.size() == 0)
      for (std::int64_t b = 0; b < m.nbins; ++b)
        if (!(var[b] > 0))
          throw std::invalid_argument(
              "a chi-square fit needs a positive data variance in every fitted bin, but bin " +
              std::to_string(b) + " has variance " + std::to_string(var[b]) +
              (m.data_var.size() == m.nbins && options.use_data_var ? " (data_var)"
                                                                    : " (the observed count)"));
  }
  if (dterm == DataTerm::kCovariance) InitCovariance();
  externals.clear();
  for (const ExternalTerm& e : m.external_terms) {
    detail::ExternalPart part;
    part.params = e.params;
    part.grad = e.grad;
    if (e.hess.size() > 0) {
      Eigen::SparseMatrix<double> ht = e.hess.transpose();
      part.hess = 0.5 * (e.hess + ht);
    }
    externals.push_back(std::move(part));
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
      if (p < npoi && mark[p] != b) {
        mark[p] = static_cast<int>(b);
        list.push_back(p);
      }
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        const int q = npoi + t.syst[i];
        if (mark[q] != b) {
          mark[q] = static_cast<int>(b);
          list.push_back(q);
        }
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
  // Models with general rows (HistFactory workspaces: a few hundred rows) get fewer, larger
  // slices (one per ~512 rows): a slice's dense Hessian block costs more to clear and reduce
  // than its rows cost to evaluate. rabbit models keep their slicing (and their bits).
  const std::int64_t small = any_general ? std::max<std::int64_t>(1, bin_row[m.nbins] / 512) : 64;
  grad_slices = MakeSlices(bin_row, m.nbins, static_cast<int>(std::min<std::int64_t>(64, small)));
  hess_slices =
      MakeSlices(bin_row, m.nbins, static_cast<int>(std::min<std::int64_t>(nhess, small)));
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
      std::stable_sort(order.begin() + k0, order.end(), [&](std::int64_t a, std::int64_t b) {
        return t.row_proc[a] < t.row_proc[b];
      });
    }
    row_plan = BuildChunkPlan(cuts, order, t.row_start.data(), t.syst.data(), nsyst, 128);
    std::vector<std::int64_t> bins(m.nbins);
    for (std::int64_t b = 0; b < m.nbins; ++b) bins[b] = b;
    bin_plan =
        BuildChunkPlan(hess_slices, bins, bin_touch_start.data(), bin_touch.data(), npar, 64);
  }
  const int threads =
      options.num_threads > 0 ? options.num_threads : tbb::info::default_concurrency();
  arena = std::make_shared<tbb::task_arena>(threads);
}

void Likelihood::Impl::MakePoint(const Eigen::VectorXd& x, Point* pt) const {
  pt->r.resize(npoi);
  pt->dr.resize(npoi);
  pt->d2r.resize(npoi);
  for (int p = 0; p < npoi; ++p) {
    const double v = x[p];
    if (options.poi_positive) {
      pt->r[p] = v * v;
      pt->dr[p] = 2 * v;
      pt->d2r[p] = 2;
    } else {
      pt->r[p] = v;
      pt->dr[p] = 1;
      pt->d2r[p] = 0;
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
  if (any_general && row_general[r]) {
    detail::GeneralRowEval ev;
    detail::GeneralRow(RowInputs(pt), r, 0, &ev);
    *expo = 1.0;  // unused for general rows (their derivatives come from GeneralRow)
    return ev.lambda;
  }
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

void Likelihood::Impl::Term(std::int64_t b, double lv, double lu, int level,
                            const Eigen::VectorXd* fixed_beta, const Eigen::VectorXd* cov_u,
                            detail::BinTerm* t, const Eigen::VectorXd* cov_beta) const {
  t->lv = lv;
  t->lu = lu;
  t->has_beta = t->additive = false;
  t->ok = true;
  t->beta = 1.0;
  t->s = 0.0;
  t->fbv = t->fbu = 0.0;
  t->fbb = 1.0;
  if (cov_u) {
    // kCovariance: the coupled data term is evaluated in Evaluate (the betas are folded into
    // W_eff); the bin supplies its weight (W_eff r)_b for the gradient and the row terms.
    const double beta = cov_beta ? (*cov_beta)[b] : 1.0;
    t->L = beta * lv + lu;
    t->nll = 0.0;
    t->gu = (*cov_u)[b];
    t->gv = beta * (*cov_u)[b];
    t->hvv = t->hvu = t->huu = 0.0;
    return;
  }
  const double n = data[b];
  const double k = kstat[b], b0 = beta0[b];
  const bool additive = bbtype == BinByBinStatType::kNormalAdditive;
  const bool no_bb = fixed_beta != nullptr && fixed_beta->size() == 0;  // "without Barlow-Beeston"
  const bool chisq = dterm == DataTerm::kChisq;
  const double s = additive ? sbeta[b] : 0.0;
  bool has_beta = !no_bb && (additive ? s > 0 : (k > 0 && lv > 0));
  double beta = 1.0;
  const double N = lv + lu;
  if (has_beta) {
    if (fixed_beta) {
      beta = (*fixed_beta)[b];
    } else if (!chisq) {
      switch (bbtype) {
        case BinByBinStatType::kNormalMultiplicative:
          beta = PlusRoot(k * lv, lv * lv + k * lu - k * b0 * lv, lv * (lu - n) - k * b0 * lu);
          break;
        case BinByBinStatType::kNormalAdditive:
          beta = PlusRoot(s, s * s + N - s * b0, s * (N - n) - b0 * N);
          break;
        default:
          beta = SolveBeta(lv, lu, n, k, b0);
      }
    } else {
      const double v = var[b];
      switch (bbtype) {
        case BinByBinStatType::kNormalMultiplicative:
          beta = ((n - lu) * lv / v + k * b0) / (k + lv * lv / v);
          break;
        case BinByBinStatType::kNormalAdditive:
          beta = (s * (n - N) + v * b0) / (v + s * s);
          break;
        default:
          beta = PlusRoot(lv * lv, k * v + (lu - n) * lv, -k * v * b0);
      }
    }
  } else if (additive) {
    beta = 0.0;
  }
  const double L = !has_beta ? N : (additive ? N + s * beta : beta * lv + lu);
  t->has_beta = has_beta;
  t->additive = additive && has_beta;
  t->beta = beta;
  t->s = s;
  t->L = L;
  // Data term D(L) and its derivatives D1, D2.
  double D, D1, D2;
  if (chisq) {
    const double v = var[b], d = L - n;
    if (!std::isfinite(L)) {
      t->ok = false;
      return;
    }
    D = 0.5 * d * d / v;
    D1 = d / v;
    D2 = 1.0 / v;
  } else {
    // A bin with zero expectation and no observed event is valid: its term L - n ln L is 0
    // (lim L->0 of L), with gradient dL and no curvature (n / L^2 = 0; docs/numerics.md).
    const bool empty_bin = L == 0.0 && n == 0.0;
    if ((!(L > 0) && !empty_bin) || !std::isfinite(L) ||
        (has_beta && bbtype == BinByBinStatType::kGamma && !(beta > 0))) {
      t->ok = false;
      return;
    }
    D = n > 0 ? L - n + n * (std::log(n) - std::log(L)) : L;
    // n = 0: q = 1 and no curvature whatever L (for L < 1e-154, L * L underflows: 0 / 0).
    D1 = n > 0 ? 1.0 - n / L : 1.0;
    D2 = n > 0 ? n / (L * L) : 0.0;
  }
  // Constraint of beta in saturated form (zero at beta = beta0): gamma as the reference's
  // -k beta0 ln(beta) + k (beta - beta0) up to a constant; keeps 2 NLL a goodness-of-fit
  // statistic when beta0 is randomised in toys.
  double C2 = 0.0;
  t->nll = D;
  if (has_beta) {
    switch (bbtype) {
      case BinByBinStatType::kNormalMultiplicative:
        t->nll += 0.5 * k * (beta - b0) * (beta - b0);
        C2 = k;
        break;
      case BinByBinStatType::kNormalAdditive:
        t->nll += 0.5 * (beta - b0) * (beta - b0);
        C2 = 1.0;
        break;
      default:
        t->nll += k * (beta - b0) - k * b0 * std::log(beta / b0);
        C2 = k * b0 / (beta * beta);
    }
  }
  if (level == 0) return;
  if (!has_beta || t->additive) {
    t->gv = t->gu = D1;
  } else {
    t->gv = beta * D1;
    t->gu = D1;
  }
  if (level < 2) return;
  if (!has_beta) {
    t->hvv = t->hvu = t->huu = D2;
    return;
  }
  double fvv, fvu, fuu;
  if (t->additive) {
    fvv = fvu = fuu = D2;
    t->fbv = t->fbu = s * D2;
    t->fbb = s * s * D2 + C2;
  } else {
    fvv = D2 * beta * beta;
    fvu = D2 * beta;
    fuu = D2;
    t->fbv = D1 + D2 * beta * lv;
    t->fbu = D2 * lv;
    t->fbb = D2 * lv * lv + C2;
  }
  if (fixed_beta) {
    t->hvv = fvv;
    t->hvu = fvu;
    t->huu = fuu;
  } else {
    t->hvv = fvv - t->fbv * t->fbv / t->fbb;
    t->hvu = fvu - t->fbv * t->fbu / t->fbb;
    t->huu = fuu - t->fbu * t->fbu / t->fbb;
  }
}

void Likelihood::Impl::FullTerm(std::int64_t b, const double* lam, int level,
                                const Eigen::VectorXd* fixed_beta, detail::BinTerm* bt,
                                detail::FullRows* fr, const double* cov_t) const {
  const std::int64_t r0 = bin_row[b], r1 = bin_row[b + 1];
  const std::size_t nr = static_cast<std::size_t>(r1 - r0);
  fr->Resize(nr);
  *bt = detail::BinTerm{};
  const double n = data[b];
  const bool chisq = dterm == DataTerm::kChisq;
  const double v = chisq ? var[b] : 1.0;
  const bool no_bb = fixed_beta != nullptr && fixed_beta->size() == 0;
  const bool additive = bbtype == BinByBinStatType::kNormalAdditive;
  const bool gamma = bbtype == BinByBinStatType::kGamma;
  auto index = [&](std::size_t i) {
    return no_bb ? std::int64_t{-1} : row_beta[r0 + static_cast<std::int64_t>(i)];
  };
  auto dprime = [&](double L) { return chisq ? (L - n) / v : (n > 0 ? 1.0 - n / L : 1.0); };
  const double unit = additive ? 0.0 : 1.0;  // beta of a row without a beta (no effect)
  double U = 0.0;
  for (std::size_t i = 0; i < nr; ++i) {
    fr->beta[i] = unit;
    if (index(i) < 0) U += lam[i];
  }
  double t = 0.0;  // D'(L) at the profiled betas (set below when profiling)
  const bool profiled = fixed_beta == nullptr;
  if (fixed_beta && !no_bb) {
    for (std::size_t i = 0; i < nr; ++i)
      if (index(i) >= 0) fr->beta[i] = (*fixed_beta)[index(i)];
  } else if (profiled && cov_t) {
    t = *cov_t;
    for (std::size_t i = 0; i < nr; ++i) {
      const std::int64_t j = index(i);
      if (j < 0) continue;
      const std::int64_t r = r0 + static_cast<std::int64_t>(i);
      fr->beta[i] = additive ? beta0[j] - t * row_s[r] : beta0[j] - t * lam[i] / row_k[r];
    }
  } else if (profiled && !gamma) {
    // beta_r = beta0_r - t lambda_r / k_r (normal-multiplicative) or beta0_r - t s_r (additive):
    // L(t) = P - t R is linear in t, and t = D'(L) is a quadratic (Poisson) or linear (chi-square)
    // equation in L (rabbit's closed forms).
    double P = U, R = 0.0;
    for (std::size_t i = 0; i < nr; ++i) {
      const std::int64_t j = index(i);
      if (j < 0) continue;
      const std::int64_t r = r0 + static_cast<std::int64_t>(i);
      if (additive) {
        P += lam[i] + row_s[r] * beta0[j];
        R += row_s[r] * row_s[r];
      } else {
        P += beta0[j] * lam[i];
        R += lam[i] * lam[i] / row_k[r];
      }
    }
    if (chisq) {
      t = ((P + R * n / v) / (1.0 + R / v) - n) / v;
    } else if (n > 0) {
      t = R > 0 ? 1.0 - n / PlusRoot(1.0, R - P, -R * n) : 1.0 - n / P;
    } else {
      t = 1.0;
    }
    for (std::size_t i = 0; i < nr; ++i) {
      const std::int64_t j = index(i);
      if (j < 0) continue;
      const std::int64_t r = r0 + static_cast<std::int64_t>(i);
      fr->beta[i] = additive ? beta0[j] - t * row_s[r] : beta0[j] - t * lam[i] / row_k[r];
    }
  } else if (profiled) {
    // Gamma: beta_r = k_r beta0_r / (k_r + t lambda_r); g(t) = t - D'(L(t)) increases (g' >= 1):
    // safeguarded Newton within the bracket where every beta is positive (and t < 1, Poisson).
    double lo = -kInf, hi = kInf;
    double P = U;
    for (std::size_t i = 0; i < nr; ++i) {
      const std::int64_t j = index(i);
      if (j < 0) continue;
      const double k = row_k[r0 + static_cast<std::int64_t>(i)];
      if (lam[i] > 0) lo = std::max(lo, -k / lam[i]);
      if (lam[i] < 0) hi = std::min(hi, k / -lam[i]);
      P += beta0[j] * lam[i];
    }
    auto L_of = [&](double tt, double* dL) {
      double L = U, d = 0.0;
      for (std::size_t i = 0; i < nr; ++i) {
        const std::int64_t j = index(i);
        if (j < 0) continue;
        const double k = row_k[r0 + static_cast<std::int64_t>(i)], den = k + tt * lam[i];
        L += k * beta0[j] * lam[i] / den;
        d -= k * beta0[j] * lam[i] * lam[i] / (den * den);
      }
      *dL = d;
      return L;
    };
    if (!chisq && n == 0) {
      t = 1.0;
    } else {
      if (!chisq) hi = std::min(hi, 1.0);
      t = (!chisq && !(P > 0)) ? 0.0 : dprime(P);
      if (!(t > lo)) t = std::isfinite(hi) ? 0.5 * (lo + hi) : lo + 1.0;
      if (!(t < hi)) t = std::isfinite(lo) ? 0.5 * (lo + hi) : hi - 1.0;
      for (int it = 0; it < 200; ++it) {
        double dL;
        const double L = L_of(t, &dL);
        double g, gp;
        if (!chisq && !(L > 0)) {
          hi = t;  // L decreases in t: the root lies below
          g = 1.0;
          gp = kInf;
        } else {
          const double D2 = chisq ? 1.0 / v : n / (L * L);
          g = t - dprime(L);
          gp = 1.0 - D2 * dL;
          if (g < 0)
            lo = t;
          else
            hi = t;
        }
        if (g == 0.0) break;
        double tn = std::isfinite(gp) ? t - g / gp : 0.5 * (t + (std::isfinite(lo) ? lo : t - 1.0));
        if (!(tn > lo)) tn = 0.5 * (t + lo);
        if (!(tn < hi)) tn = 0.5 * (t + hi);
        const bool done = std::abs(tn - t) <= 1e-15 * std::max(1.0, std::abs(t));
        t = tn;
        if (done) break;
      }
    }
    for (std::size_t i = 0; i < nr; ++i) {
      const std::int64_t j = index(i);
      if (j < 0) continue;
      const double k = row_k[r0 + static_cast<std::int64_t>(i)];
      fr->beta[i] = k * beta0[j] / (k + t * lam[i]);
    }
  }
  // The bin total and the data term.
  double L = U;
  for (std::size_t i = 0; i < nr; ++i) {
    if (index(i) < 0) continue;
    const std::int64_t r = r0 + static_cast<std::int64_t>(i);
    L += additive ? lam[i] + row_s[r] * fr->beta[i] : fr->beta[i] * lam[i];
  }
  bt->L = L;
  bt->lu = L;
  double D, D1, D2;
  if (cov_t) {
    // Covariance fit: the coupled data term and the constraints are CovFullAt's.
    if (!std::isfinite(L)) {
      bt->ok = false;
      return;
    }
    D = 0.0;
    D1 = *cov_t;
    D2 = 0.0;
  } else if (chisq) {
    if (!std::isfinite(L)) {
      bt->ok = false;
      return;
    }
    D = 0.5 * (L - n) * (L - n) / v;
    D1 = (L - n) / v;
    D2 = 1.0 / v;
  } else {
    const bool empty_bin = L == 0.0 && n == 0.0;
    if ((!(L > 0) && !empty_bin) || !std::isfinite(L)) {
      bt->ok = false;
      return;
    }
    D = n > 0 ? L - n + n * (std::log(n) - std::log(L)) : L;
    D1 = n > 0 ? 1.0 - n / L : 1.0;
    D2 = n > 0 ? n / (L * L) : 0.0;
  }
  double nll = D;
  for (std::size_t i = 0; i < nr && !cov_t; ++i) {
    const std::int64_t j = index(i);
    if (j < 0) continue;
    const double bb = fr->beta[i], b0 = beta0[j], k = row_k[r0 + static_cast<std::int64_t>(i)];
    switch (bbtype) {
      case BinByBinStatType::kNormalMultiplicative:
        nll += 0.5 * k * (bb - b0) * (bb - b0);
        break;
      case BinByBinStatType::kNormalAdditive:
        nll += 0.5 * (bb - b0) * (bb - b0);
        break;
      default:
        if (!(bb > 0)) {
          bt->ok = false;
          return;
        }
        nll += k * (bb - b0) - k * b0 * std::log(bb / b0);
    }
  }
  bt->nll = nll;
  bt->has_beta = !no_bb;
  if (level == 0) return;
  if (profiled) t = D1;
  for (std::size_t i = 0; i < nr; ++i) {
    const bool mult = index(i) >= 0 && !additive;
    fr->w[i] = D1 * (mult ? fr->beta[i] : 1.0);
  }
  if (level < 2) return;
  const double Dn = cov_t ? 0.0 : chisq ? -1.0 / v : (L > 0 ? -1.0 / L : 0.0);
  double S = 0.0;
  for (std::size_t i = 0; i < nr; ++i) {
    const std::int64_t j = index(i);
    const bool act = j >= 0 && profiled;
    const bool mult = j >= 0 && !additive;
    const double a = mult ? fr->beta[i] : 1.0;
    double p = 0.0, q = 0.0, e = 0.0, z = 0.0;
    if (act) {
      const std::int64_t r = r0 + static_cast<std::int64_t>(i);
      const double k = row_k[r], bb = fr->beta[i];
      switch (bbtype) {
        case BinByBinStatType::kNormalMultiplicative:
          p = -lam[i] / k;
          q = -t / k;
          e = lam[i];
          z = 1.0;
          break;
        case BinByBinStatType::kNormalAdditive:
          p = -row_s[r];
          e = row_s[r];
          z = 1.0;
          break;
        default: {
          const double f = bb * bb / (k * beta0[j]);
          p = -f * lam[i];
          q = -f * t;
          e = lam[i];
          z = bb / beta0[j];
        }
      }
    }
    fr->c[i] = a + e * q;
    fr->d[i] = t * q;
    fr->ep[i] = e * p;
    fr->p[i] = p;
    fr->q[i] = q;
    fr->z[i] = z;
    fr->e[i] = e;
    S += e * p;
  }
  fr->t = t;
  fr->d2 = D2;
  fr->S = S;
  fr->h = D2 / (1.0 - S * D2);
  fr->dtn = Dn / (1.0 - S * D2);
}

void Likelihood::Impl::CovFullAt(const Point& pt, const Eigen::VectorXd* fixed_beta, int level,
                                 detail::CovFull* c) const {
  const Model& m = *model;
  const auto nb = m.nbins;
  const bool no_bb = fixed_beta != nullptr && fixed_beta->size() == 0;
  const bool profiled = fixed_beta == nullptr;
  const bool additive = bbtype == BinByBinStatType::kNormalAdditive;
  Eigen::VectorXd a = Eigen::VectorXd::Zero(nb), q = Eigen::VectorXd::Zero(nb),
                  cons = Eigen::VectorXd::Zero(nb);
  arena->execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, nb, 32),
                      [&](const tbb::blocked_range<std::int64_t>& range) {
                        double ex;
                        for (std::int64_t b = range.begin(); b < range.end(); ++b)
                          for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r) {
                            const double lam = RowYield(pt, r, &ex);
                            const std::int64_t j = no_bb ? -1 : row_beta[r];
                            if (j < 0) {
                              a[b] += lam;
                            } else if (profiled) {
                              a[b] += additive ? lam + row_s[r] * beta0[j] : beta0[j] * lam;
                              q[b] += additive ? row_s[r] * row_s[r] : lam * lam / row_k[r];
                            } else {
                              const double bb = (*fixed_beta)[j];
                              a[b] += additive ? lam + row_s[r] * bb : bb * lam;
                              cons[b] += additive
                                             ? 0.5 * (bb - beta0[j]) * (bb - beta0[j])
                                             : 0.5 * row_k[r] * (bb - beta0[j]) * (bb - beta0[j]);
                            }
                          }
                      });
  });
  c->r = a - data;
  if (profiled) {
    Eigen::MatrixXd mq = dcov;
    mq.diagonal() += q;
    const Eigen::LLT<Eigen::MatrixXd> llt(mq);
    if (llt.info() != Eigen::Success || !mq.allFinite()) {
      c->nll = kInf;
      c->u = Eigen::VectorXd::Constant(nb, kNaN);
      c->w = Eigen::MatrixXd::Constant(nb, nb, kNaN);
      return;
    }
    c->w = llt.solve(Eigen::MatrixXd::Identity(nb, nb));
    c->w = 0.5 * (c->w + c->w.transpose());
  } else {
    c->w = wcov;
  }
  c->u = c->w * c->r;
  c->nll = 0.5 * c->r.dot(c->u) + cons.sum();
  if (level < 2) return;
  c->g.setZero(nb, npar);
  arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, nb, 16),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          detail::BinState st;
          Eigen::VectorXd g = Eigen::VectorXd::Zero(npar);
          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
            detail::ComputeBin(*this, pt, b, profiled, &st, &c->u[b]);
            if (fixed_beta && !no_bb)
              FullTerm(b, st.lam.data(), 2, fixed_beta, &st, &st.fr, &c->u[b]);
            for (std::int64_t r = bin_row[b]; r < bin_row[b + 1]; ++r)
              detail::AddRowGradient(*this, pt, r, st.lam[r - bin_row[b]], st.ex[r - bin_row[b]],
                                     st.fr.c[r - bin_row[b]], &g);
            const std::int32_t* touch = bin_touch.data() + bin_touch_start[b];
            for (std::int64_t k = 0; k < bin_touch_start[b + 1] - bin_touch_start[b]; ++k) {
              c->g(b, touch[k]) = g[touch[k]];
              g[touch[k]] = 0.0;
            }
          }
        });
  });
}

void Likelihood::Impl::InitCovariance() {
  const Model& m = *model;
  const auto nb = m.nbins;
  if (m.data_cov_inv.size() > 0) {
    wcov = 0.5 * (m.data_cov_inv + m.data_cov_inv.transpose());
    const double asym = (m.data_cov_inv - m.data_cov_inv.transpose()).cwiseAbs().maxCoeff();
    if (asym > 1e-8 * std::max(1.0, m.data_cov_inv.cwiseAbs().maxCoeff()))
      throw std::invalid_argument("data_cov_inv is not symmetric (largest |W - W^T| = " +
                                  std::to_string(asym) + "), but an inverse covariance must be");
  } else {
    wcov = var.cwiseInverse().asDiagonal();
  }
  const Eigen::LLT<Eigen::MatrixXd> wllt(wcov);
  if (wllt.info() != Eigen::Success)
    throw std::invalid_argument(
        "data_cov_inv is not positive definite (Cholesky factorisation failed), but an "
        "inverse covariance must be");
  const Eigen::MatrixXd cov = wllt.solve(Eigen::MatrixXd::Identity(nb, nb));
  dcov = full ? Eigen::MatrixXd(0.5 * (cov + cov.transpose())) : Eigen::MatrixXd();
  Eigen::MatrixXd covs = cov;
  covs.diagonal() += sbeta.cwiseProduct(sbeta);
  const Eigen::LLT<Eigen::MatrixXd> cllt(cov);
  cov_factor = cllt.info() == Eigen::Success ? Eigen::MatrixXd(cllt.matrixL()) : Eigen::MatrixXd();
  if (sbeta.isZero(0.0)) {
    weff = wcov;
    sws_llt.reset();
  } else {
    const Eigen::LLT<Eigen::MatrixXd> sllt(covs);
    if (sllt.info() != Eigen::Success)
      throw std::invalid_argument(
          "the data covariance plus the MC-statistics variances is not positive definite");
    weff = sllt.solve(Eigen::MatrixXd::Identity(nb, nb));
    weff = 0.5 * (weff + weff.transpose());
    Eigen::MatrixXd sws = sbeta.asDiagonal() * wcov * sbeta.asDiagonal();
    sws.diagonal().array() += 1.0;
    sws_llt = std::make_shared<const Eigen::LLT<Eigen::MatrixXd>>(sws);
  }
}

Eigen::VectorXd Likelihood::Impl::CovarianceBeta(const Eigen::VectorXd& totals) const {
  // beta = beta0 + (S W S + 1)^-1 S W (n - L - S beta0): the minimum of
  // (r - S beta)^T W (r - S beta) / 2 + |beta - beta0|^2 / 2 with r = n - L.
  if (!sws_llt) return beta0;
  const Eigen::VectorXd r = data - totals - sbeta.cwiseProduct(beta0);
  const Eigen::VectorXd rhs = sbeta.cwiseProduct(wcov * r);
  return beta0 + sws_llt->solve(rhs);
}

double Likelihood::Impl::AddExternal(const Eigen::VectorXd& x, int level, Eigen::VectorXd* grad,
                                     Eigen::MatrixXd* hess) const {
  double nll = 0.0;
  for (const detail::ExternalPart& e : externals) {
    const int n = static_cast<int>(e.params.size());
    Eigen::VectorXd xs(n);
    for (int i = 0; i < n; ++i) xs[i] = x[e.params[i]];
    Eigen::VectorXd hx = Eigen::VectorXd::Zero(n);
    if (e.hess.size() > 0) hx = e.hess * xs;
    if (e.grad.size() > 0) nll += e.grad.dot(xs);
    nll += 0.5 * xs.dot(hx);
    if (level >= 1) {
      for (int i = 0; i < n; ++i)
        (*grad)[e.params[i]] += (e.grad.size() > 0 ? e.grad[i] : 0.0) + hx[i];
    }
    if (level >= 2 && e.hess.size() > 0) {
      for (int k = 0; k < e.hess.outerSize(); ++k)
        for (Eigen::SparseMatrix<double>::InnerIterator it(e.hess, k); it; ++it)
          (*hess)(e.params[it.row()], e.params[it.col()]) += it.value();
    }
  }
  return nll;
}

void Likelihood::Impl::BinJacobian(const Point& pt, std::int64_t b, const double* lam,
                                   const double* ex, Eigen::VectorXd* jv,
                                   Eigen::VectorXd* ju) const {
  const Tensor& t = model->tensor;
  const bool asym = !t.logk_halfdiff.empty();
  const bool lognormal = model->systematic_type == SystematicType::kLogNormal;
  const std::int64_t r0 = bin_row[b];
  for (std::int64_t r = r0; r < bin_row[b + 1]; ++r) {
    Eigen::VectorXd& j = row_scaled[r] ? *jv : *ju;
    if (any_general && row_general[r]) {
      detail::AddRowGradient(*this, pt, r, lam[r - r0], ex[r - r0], 1.0, &j);
      continue;
    }
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
                                 SliceOut* out, const Eigen::VectorXd* fixed_beta,
                                 const Eigen::VectorXd* cov_u,
                                 const Eigen::VectorXd* cov_beta) const {
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
  detail::FullRows fr;         // full mode: the bin's per-row weights
  detail::GeneralRowEval gre;  // general rows (row_kernel.h)

  // Per-bin derivative accumulators (dense over parameters, reset through the touch list).
  Eigen::VectorXd jv, ju;
  std::unique_ptr<ChunkBuffer> row_buf, bin_buf;
  std::vector<double> row_weight;  // w1 * lambda per row of the slice (chunked row term)
  if (level >= 2) {
    jv = Eigen::VectorXd::Zero(npar);
    ju = Eigen::VectorXd::Zero(npar);
    if (chunked && (lognormal || full) && bin_row[b1] > bin_row[b0]) {
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
    detail::BinTerm bt;
    if (full)
      FullTerm(b, lam.data(), level, fixed_beta, &bt, &fr, cov_u ? &(*cov_u)[b] : nullptr);
    else
      Term(b, lv, lu, level, fixed_beta, cov_u, &bt, cov_beta);
    if (!bt.ok) {
      // Non-positive expectation (or zero with observed events): outside the model's domain.
      out->nll = kInf;
      return;
    }
    out->nll += bt.nll;
    if (level == 0) continue;
    const double gv = bt.gv, gu = bt.gu, hvv = bt.hvv, hvu = bt.hvu, huu = bt.huu;
    const bool bin_term = cov_u == nullptr;  // kCovariance: J^T W_eff J is added in Evaluate

    // Gradient and the row-level (second-derivative-of-lambda) Hessian terms.
    for (std::int64_t r = r0; r < r1; ++r) {
      const double w1 = full ? fr.w[r - r0] : (row_scaled[r] ? gv : gu);
      // Full mode: the row's own curvature d_r (d lambda_r)(d lambda_r)^T.
      const double dr = full && level >= 2 ? fr.d[r - r0] : 0.0;
      const double lr = lam[r - r0];
      if (any_general && row_general[r]) {
        // General row (row_kernel.h): gradient w1 g, Hessian w1 d2lambda (+ full mode's d_r g g^T).
        detail::GeneralRow(RowInputs(pt), r, level, &gre);
        for (int k = 0; k < gre.n; ++k) out->grad[gre.col[k]] += w1 * gre.g[k];
        if (level < 2) continue;
        auto& H = out->hess;
        for (int j = 0; j < gre.n; ++j)
          for (int k = 0; k < gre.n; ++k) {
            const int cj = gre.col[j], ck = gre.col[k];
            if (cj >= ck) H(cj, ck) += w1 * gre.h(j, k) + dr * gre.g[j] * gre.g[k];
          }
        continue;
      }
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
      if (p < npoi) H(p, p) += w1 * pt.d2r[p] * t.norm[r] * ex[r - r0] + dr * dpoi * dpoi;
      // asymmetric curvature of the exponent (diagonal)
      if (asym)
        for (std::int64_t i = i0; i < i1; ++i) {
          const int s = t.syst[i];
          H(npoi + s, npoi + s) += w1 * scale * pt.c2[s] * t.logk_halfdiff[i];
        }
      if (!lognormal && dr == 0.0) continue;
      // log-normal: lambda g g^T (systematics) and the POI-systematic cross terms (with the full
      // mode's d_r: d_r scale^2 g g^T and d_r dpoi scale g)
      if (p < npoi) {
        const double c = (lognormal ? w1 * dpoi : 0.0) + dr * dpoi * scale;
        for (std::int64_t i = i0; i < i1; ++i) {
          const int s = t.syst[i];
          const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
          H(npoi + s, p) += c * g;
        }
      }
      const double w = (lognormal ? w1 * lr : 0.0) + dr * scale * scale;
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
    if (level < 2 || !bin_term) continue;

    // Bin-level term: [Jv Ju] G2 [Jv Ju]^T with J = d(lambda_v, lambda_u)/dx (full mode:
    // h G G^T with G = sum_r c_r d lambda_r / dx, held in jv).
    double hvv2 = hvv, hvu2 = hvu, huu2 = huu;
    if (full) {
      for (std::int64_t r = r0; r < r1; ++r)
        detail::AddRowGradient(*this, pt, r, lam[r - r0], ex[r - r0], fr.c[r - r0], &jv);
      hvv2 = fr.h;
      hvu2 = huu2 = 0.0;
    } else {
      BinJacobian(pt, b, lam.data(), ex.data(), &jv, &ju);
    }
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
      g2 << hvv2, hvu2, hvu2, huu2;
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
        const double xa = hvv2 * va + hvu2 * ua, ya = hvu2 * va + huu2 * ua;
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
    for (int c = row_plan.FindChunk(rs0);
         c + 1 < static_cast<int>(row_plan.start.size()) && row_plan.start[c] < rs1; ++c) {
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

void Likelihood::Impl::CovMultAt(const Point& pt, const Eigen::VectorXd* fixed_beta, int level,
                                 detail::CovMult* c) const {
  const Model& m = *model;
  const auto nb = m.nbins;
  c->lv.setZero(nb);
  c->lu.setZero(nb);
  c->jv.setZero(nb, npar);
  c->ju.setZero(nb, npar);
  arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, nb, 32),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          Eigen::VectorXd jv = Eigen::VectorXd::Zero(npar), ju = Eigen::VectorXd::Zero(npar);
          std::vector<double> lam, ex;
          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
            const std::int64_t r0 = bin_row[b], r1 = bin_row[b + 1];
            lam.resize(r1 - r0);
            ex.resize(r1 - r0);
            for (std::int64_t r = r0; r < r1; ++r) {
              lam[r - r0] = RowYield(pt, r, &ex[r - r0]);
              (row_scaled[r] ? c->lv[b] : c->lu[b]) += lam[r - r0];
            }
            BinJacobian(pt, b, lam.data(), ex.data(), &jv, &ju);
            const std::int32_t* touch = bin_touch.data() + bin_touch_start[b];
            for (std::int64_t a = 0; a < bin_touch_start[b + 1] - bin_touch_start[b]; ++a) {
              const int i = touch[a];
              c->jv(b, i) = jv[i];
              c->ju(b, i) = ju[i];
              jv[i] = ju[i] = 0.0;
            }
          }
        });
  });
  const bool no_bb = fixed_beta != nullptr && fixed_beta->size() == 0;
  c->act.clear();
  if (!no_bb)
    for (std::int64_t b = 0; b < nb; ++b)
      if (kstat[b] > 0 && c->lv[b] > 0) c->act.push_back(static_cast<int>(b));
  const int na = static_cast<int>(c->act.size());
  c->beta = no_bb ? Eigen::VectorXd::Ones(nb) : Eigen::VectorXd(beta0);
  c->profiled = fixed_beta == nullptr;
  Eigen::MatrixXd amat;
  if (fixed_beta && !no_bb) {
    for (int i : c->act) c->beta[i] = (*fixed_beta)[i];
  } else if (c->profiled && na > 0) {
    const Eigen::VectorXd wn = wcov * (data - c->lu);
    amat.resize(na, na);
    Eigen::VectorXd rhs(na);
    for (int j = 0; j < na; ++j) {
      const int bj = c->act[j];
      for (int i = 0; i < na; ++i) amat(i, j) = c->lv[c->act[i]] * wcov(c->act[i], bj) * c->lv[bj];
      amat(j, j) += kstat[bj];
      rhs[j] = c->lv[bj] * wn[bj] + kstat[bj] * beta0[bj];
    }
    c->a.compute(amat);
    const Eigen::VectorXd sol = c->a.solve(rhs);
    for (int j = 0; j < na; ++j) c->beta[c->act[j]] = sol[j];
  }
  c->r = c->beta.cwiseProduct(c->lv) + c->lu - data;
  c->u = wcov * c->r;
  if (level < 1) return;
  c->jeff = c->beta.asDiagonal() * c->jv + c->ju;
  if (level < 2 || !c->profiled || na == 0) return;
  const Eigen::MatrixXd wj = wcov * c->jeff;
  c->b.resize(na, npar);
  for (int i = 0; i < na; ++i) {
    const int bi = c->act[i];
    c->b.row(i) = c->u[bi] * c->jv.row(bi) + c->lv[bi] * wj.row(bi);
  }
}

Eigen::MatrixXd Likelihood::Impl::FittedJacobian(const Point& pt, Eigen::VectorXd* totals) const {
  const Model& m = *model;
  Eigen::MatrixXd jac = Eigen::MatrixXd::Zero(m.nbins, npar);
  totals->setZero(m.nbins);
  arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, m.nbins, 32),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          Eigen::VectorXd jv = Eigen::VectorXd::Zero(npar), ju = Eigen::VectorXd::Zero(npar);
          std::vector<double> lam, ex;
          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
            const std::int64_t r0 = bin_row[b], r1 = bin_row[b + 1];
            lam.resize(r1 - r0);
            ex.resize(r1 - r0);
            double total = 0.0;
            for (std::int64_t r = r0; r < r1; ++r) {
              lam[r - r0] = RowYield(pt, r, &ex[r - r0]);
              total += lam[r - r0];
            }
            (*totals)[b] = total;
            BinJacobian(pt, b, lam.data(), ex.data(), &jv, &ju);
            const std::int32_t* touch = bin_touch.data() + bin_touch_start[b];
            for (std::int64_t a = 0; a < bin_touch_start[b + 1] - bin_touch_start[b]; ++a) {
              const int i = touch[a];
              jac(b, i) = jv[i] + ju[i];
              jv[i] = ju[i] = 0.0;
            }
          }
        });
  });
  return jac;
}

double Likelihood::Impl::Evaluate(const Eigen::VectorXd& x, int level, Eigen::VectorXd* grad,
                                  Eigen::MatrixXd* hess, const Eigen::VectorXd* fixed_beta) const {
  if (x.size() != npar)
    throw std::invalid_argument("parameter vector has " + std::to_string(x.size()) +
                                " entries, but the model has " + std::to_string(npar));
  Point pt;
  MakePoint(x, &pt);
  const Model& m = *model;
  // kCovariance: the coupled data term r^T W r / 2 (W_eff with the additive betas profiled; W
  // and the betas' constraint with fixed betas), its bin weights u = W r and Jacobian J.
  double nll = 0.0;
  Eigen::VectorXd cov_u;
  Eigen::MatrixXd cov_jac;
  const Eigen::MatrixXd* cov_w = nullptr;
  detail::CovMult cm;
  detail::CovFull cf;
  const bool cmult = CovMultiplicative();
  const bool cfull = full && dterm == DataTerm::kCovariance;
  if (cfull) {
    CovFullAt(pt, fixed_beta, level, &cf);
    cov_u = cf.u;
    nll += cf.nll;
    if (!std::isfinite(nll)) return kInf;
  } else if (cmult) {
    CovMultAt(pt, fixed_beta, level, &cm);
    cov_u = cm.u;
    nll += 0.5 * cm.r.dot(cm.u);
    for (int b : cm.act) nll += 0.5 * kstat[b] * (cm.beta[b] - beta0[b]) * (cm.beta[b] - beta0[b]);
    if (!std::isfinite(nll)) return kInf;
  } else if (dterm == DataTerm::kCovariance) {
    Eigen::VectorXd totals;
    cov_jac = FittedJacobian(pt, &totals);
    Eigen::VectorXd r = totals - data;
    if (fixed_beta && fixed_beta->size() == m.nbins) {
      r += sbeta.cwiseProduct(*fixed_beta);
      cov_w = &wcov;
      for (std::int64_t b = 0; b < m.nbins; ++b)
        if (sbeta[b] > 0) nll += 0.5 * std::pow((*fixed_beta)[b] - beta0[b], 2);
    } else if (fixed_beta) {
      cov_w = &wcov;  // without Barlow-Beeston
    } else {
      r += sbeta.cwiseProduct(beta0);
      cov_w = &weff;
    }
    cov_u = (*cov_w) * r;
    nll += 0.5 * r.dot(cov_u);
    if (!std::isfinite(nll)) return kInf;
  }
  const Eigen::VectorXd* cu = dterm == DataTerm::kCovariance ? &cov_u : nullptr;
  const auto& cuts = level >= 2 ? hess_slices : grad_slices;
  const int nslices = static_cast<int>(cuts.size()) - 1;
  std::vector<SliceOut> outs(nslices);
  if (!(cu && level == 0)) {
    arena->execute([&] {
      tbb::parallel_for(tbb::blocked_range<int>(0, nslices, 1),
                        [&](const tbb::blocked_range<int>& range) {
                          for (int s = range.begin(); s < range.end(); ++s)
                            EvalSlice(pt, cuts[s], cuts[s + 1], level, &outs[s], fixed_beta, cu,
                                      cmult ? &cm.beta : nullptr);
                        });
    });
  }
  // Fixed-order reduction: identical results at any thread count.
  for (const auto& o : outs) nll += o.nll;
  // Constraints (Gaussian, or Poisson for HistFactory's shapesys).
  Eigen::VectorXd cd1(nsyst), cd2(nsyst);
  for (int s = 0; s < nsyst; ++s) nll += Constraint(s, pt.theta[s], &cd1[s], &cd2[s]);
  if (level >= 1) {
    grad->setZero(npar);
    for (const auto& o : outs)
      if (o.grad.size() == npar) *grad += o.grad;
    for (int s = 0; s < nsyst; ++s) (*grad)[npoi + s] += cd1[s];
  }
  if (level >= 2) {
    hess->setZero(npar, npar);
    // Column blocks in parallel, slices summed in order within each block.
    arena->execute([&] {
      tbb::parallel_for(tbb::blocked_range<int>(0, npar, 64),
                        [&](const tbb::blocked_range<int>& range) {
                          for (const auto& o : outs) {
                            if (o.hess.rows() != npar) continue;
                            for (int c = range.begin(); c < range.end(); ++c)
                              hess->col(c).tail(npar - c) += o.hess.col(c).tail(npar - c);
                          }
                        });
    });
    for (int s = 0; s < nsyst; ++s) (*hess)(npoi + s, npoi + s) += cd2[s];
    hess->triangularView<Eigen::StrictlyUpper>() = hess->transpose();
    for (auto& o : outs) hess_pool.Give(std::move(o.hess));
    if (cov_w) *hess += cov_jac.transpose() * (*cov_w) * cov_jac;
    if (cfull) {
      *hess += cf.g.transpose() * cf.w * cf.g;
      *hess = 0.5 * (*hess + hess->transpose());
    }
    if (cmult) {
      *hess += cm.jeff.transpose() * wcov * cm.jeff;
      if (cm.profiled && !cm.act.empty()) *hess -= cm.b.transpose() * cm.a.solve(cm.b);
      *hess = 0.5 * (*hess + hess->transpose());
    }
  }
  if (!externals.empty()) nll += AddExternal(x, level, grad, hess);
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
  const Model& m = *impl_->model;
  for (int s = 0; s < impl_->nsyst && !m.initial_values.empty(); ++s)
    x[impl_->npoi + s] = m.initial_values[s];
  return x;
}

namespace {

// Poisson data must be >= 0; chi-square data (Gaussian toys) may be negative.
void CheckData(const Eigen::VectorXd& data, std::int64_t nbins, const char* what,
               bool non_negative = true) {
  if (data.size() != nbins)
    throw std::invalid_argument(std::string(what) + " has " + std::to_string(data.size()) +
                                " entries, but the model has " + std::to_string(nbins) +
                                " fitted bins");
  for (Eigen::Index b = 0; b < data.size(); ++b)
    if (!std::isfinite(data[b]) || (non_negative && data[b] < 0))
      throw std::invalid_argument(
          std::string(what) + "[" + std::to_string(b) + "] is " + std::to_string(data[b]) +
          (non_negative ? ", but must be finite and >= 0" : ", but must be finite"));
}

}  // namespace

void Likelihood::SetData(const Eigen::VectorXd& data) {
  // The chi-square variance follows the data (rabbit's set_nobs without variances): Asimov data,
  // pseudo-data and toys.
  if (impl_->dterm == DataTerm::kPoisson) {
    CheckData(data, impl_->model->nbins, "data");
    impl_->data = data;
  } else if (impl_->dterm == DataTerm::kCovariance && impl_->model->data_cov_inv.size() > 0) {
    // The covariance is the file's; the variance is not used.
    CheckData(data, impl_->model->nbins, "data", false);
    impl_->data = data;
  } else {
    SetData(data, data);
  }
}

void Likelihood::SetData(const Eigen::VectorXd& data, const Eigen::VectorXd& variance) {
  Impl& im = *impl_;
  CheckData(data, im.model->nbins, "data", im.dterm == DataTerm::kPoisson);
  CheckData(variance, im.model->nbins, "data variance");
  const bool needs_var = im.dterm == DataTerm::kChisq ||
                         (im.dterm == DataTerm::kCovariance && im.model->data_cov_inv.size() == 0);
  if (needs_var)
    for (Eigen::Index b = 0; b < variance.size(); ++b)
      if (!(variance[b] > 0))
        throw std::invalid_argument(
            "a chi-square fit needs a positive data variance in every fitted bin, but bin " +
            std::to_string(b) + " has variance " + std::to_string(variance[b]));
  im.data = data;
  if (im.dterm == DataTerm::kPoisson) return;
  im.var = variance;
  if (im.dterm == DataTerm::kCovariance && im.model->data_cov_inv.size() == 0) im.InitCovariance();
}

const Eigen::VectorXd& Likelihood::data() const { return impl_->data; }
const Eigen::VectorXd& Likelihood::data_variance() const { return impl_->var; }
DataTerm Likelihood::data_term() const { return impl_->dterm; }
BinByBinStatType Likelihood::bin_by_bin_stat_type() const { return impl_->bbtype; }
BinByBinStatMode Likelihood::bin_by_bin_stat_mode() const {
  return impl_->full ? BinByBinStatMode::kFull : BinByBinStatMode::kLite;
}
std::int64_t Likelihood::num_betas() const { return impl_->nbeta; }

std::string Likelihood::Describe() const {
  const Impl& im = *impl_;
  std::string out;
  switch (im.dterm) {
    case DataTerm::kPoisson:
      out = "Poisson";
      break;
    case DataTerm::kChisq:
      out = std::string("chi-square (diagonal; variance = ") +
            (im.options.use_data_var && im.model->data_var.size() == im.model->nbins ? "data_var"
                                                                                     : "data") +
            ")";
      break;
    case DataTerm::kCovariance:
      out = im.model->data_cov_inv.size() > 0
                ? "chi-square with the data covariance (data_cov_inv)"
                : "chi-square with the data covariance (diagonal, from the data variance)";
      break;
  }
  if (!im.options.bin_by_bin_stat) return out + ", no bin-by-bin MC statistics";
  if (im.any_general && im.model->sumw2.isZero(0.0))
    return out + ", HistFactory modifiers (MC statistics as staterror / shapesys parameters)";
  out += std::string(", Barlow-Beeston ") + (im.full ? "full" : "lite") + " (" +
         ToString(im.bbtype) + ")";
  if (!im.externals.empty())
    out += ", " + std::to_string(im.externals.size()) + " external term(s)";
  return out;
}

void Likelihood::SetGlobalObservables(const Eigen::VectorXd& theta0, const Eigen::VectorXd& beta0) {
  if (theta0.size() != impl_->nsyst)
    throw std::invalid_argument("theta0 has " + std::to_string(theta0.size()) +
                                " entries, but must have " + std::to_string(impl_->nsyst));
  if (beta0.size() != impl_->nbeta)
    throw std::invalid_argument("beta0 has " + std::to_string(beta0.size()) +
                                " entries, but must have " + std::to_string(impl_->nbeta) +
                                (impl_->full ? " (nbins x nproc, full mode)" : ""));
  const bool gamma = impl_->bbtype == BinByBinStatType::kGamma;
  if (!theta0.allFinite() || !beta0.allFinite() || (gamma && (beta0.array() <= 0).any()))
    throw std::invalid_argument(gamma ? "global observables must be finite and beta0 > 0"
                                      : "global observables must be finite");
  for (int s = 0; s < static_cast<int>(impl_->poisson.size()); ++s)
    if (impl_->poisson[s] && theta0[s] < 0)
      throw std::invalid_argument(
          "theta0[" + std::to_string(s) + "] (" + impl_->model->systematics[s] + ") is " +
          std::to_string(theta0[s]) + ", but a Poisson-constrained centre must be >= 0");
  impl_->theta0 = theta0;
  impl_->beta0 = beta0;
}

const Eigen::VectorXd& Likelihood::theta0() const { return impl_->theta0; }
const Eigen::VectorXd& Likelihood::beta0() const { return impl_->beta0; }

double Likelihood::Value(const Eigen::VectorXd& x) const {
  return impl_->Evaluate(x, 0, nullptr, nullptr);
}

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
  const Impl& im = *impl_;
  const Model& m = *im.model;
  Point pt;
  im.MakePoint(x, &pt);
  const bool additive = im.bbtype == BinByBinStatType::kNormalAdditive;
  Eigen::VectorXd beta = additive ? Eigen::VectorXd(im.beta0) : Eigen::VectorXd::Ones(im.nbeta);
  if (!im.options.bin_by_bin_stat) return beta;
  double ex;
  if (im.full) {
    // Every beta0 where a (bin, process) has no beta (rabbit: where(betamask, beta0, beta)).
    beta = im.beta0;
    detail::BinTerm bt;
    detail::FullRows fr;
    std::vector<double> lam;
    detail::CovFull cf;
    if (im.dterm == DataTerm::kCovariance) im.CovFullAt(pt, nullptr, 0, &cf);
    for (std::int64_t b = 0; b < m.nbins; ++b) {
      const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
      lam.resize(r1 - r0);
      for (std::int64_t r = r0; r < r1; ++r) lam[r - r0] = im.RowYield(pt, r, &ex);
      im.FullTerm(b, lam.data(), 0, nullptr, &bt, &fr, cf.u.size() ? &cf.u[b] : nullptr);
      for (std::int64_t r = r0; r < r1; ++r)
        if (im.row_beta[r] >= 0) beta[im.row_beta[r]] = fr.beta[r - r0];
    }
    return beta;
  }
  if (im.CovMultiplicative()) {
    detail::CovMult cm;
    im.CovMultAt(pt, nullptr, 0, &cm);
    return cm.beta;
  }
  if (im.dterm == DataTerm::kCovariance) {
    Eigen::VectorXd totals = Eigen::VectorXd::Zero(m.nbins);
    for (std::int64_t r = 0; r < im.bin_row[m.nbins]; ++r)
      totals[m.tensor.row_bin[r]] += im.RowYield(pt, r, &ex);
    return im.CovarianceBeta(totals);
  }
  detail::BinTerm bt;
  for (std::int64_t b = 0; b < m.nbins; ++b) {
    double lv = 0, lu = 0;
    for (std::int64_t r = im.bin_row[b]; r < im.bin_row[b + 1]; ++r)
      (im.row_scaled[r] ? lv : lu) += im.RowYield(pt, r, &ex);
    im.Term(b, lv, lu, 0, nullptr, nullptr, &bt);
    if (bt.has_beta) beta[b] = bt.beta;
  }
  return beta;
}

Eigen::VectorXd Likelihood::ExpectedYields(const Eigen::VectorXd& x, bool include_beta) const {
  const Impl& im = *impl_;
  const Model& m = *im.model;
  Point pt;
  im.MakePoint(x, &pt);
  const bool additive = im.bbtype == BinByBinStatType::kNormalAdditive;
  Eigen::VectorXd out = Eigen::VectorXd::Zero(m.nbins_full);
  double ex;
  if (include_beta && im.full) {
    im.FullYields(pt, true, false,
                  [&](std::int64_t b, const Eigen::VectorXd& y, const Eigen::MatrixXd&) {
                    out[b] = y.sum();
                  });
    return out;
  }
  if (include_beta && additive) {
    for (std::int64_t r = 0; r < m.tensor.num_rows(); ++r)
      out[m.tensor.row_bin[r]] += im.RowYield(pt, r, &ex);
    const Eigen::VectorXd beta = ProfiledBeta(x);
    out.head(m.nbins) += im.sbeta.cwiseProduct(beta);
    return out;
  }
  Eigen::VectorXd beta = include_beta ? ProfiledBeta(x) : Eigen::VectorXd::Ones(m.nbins);
  for (std::int64_t r = 0; r < m.tensor.num_rows(); ++r) {
    const std::int64_t b = m.tensor.row_bin[r];
    const double y = im.RowYield(pt, r, &ex);
    out[b] += (b < m.nbins && im.row_scaled[r]) ? beta[b] * y : y;
  }
  return out;
}

const Eigen::VectorXd& Likelihood::bb_kstat() const { return impl_->kstat; }

double Likelihood::ValueGradientHessianFixedBeta(const Eigen::VectorXd& x,
                                                 const Eigen::VectorXd& beta, Eigen::VectorXd* grad,
                                                 Eigen::MatrixXd* hess) const {
  if (beta.size() != impl_->nbeta)
    throw std::invalid_argument("beta has " + std::to_string(beta.size()) +
                                " entries, but must have " + std::to_string(impl_->nbeta));
  return impl_->Evaluate(x, 2, grad, hess, &beta);
}

void Likelihood::GlobalObservableDerivatives(const Eigen::VectorXd& x, Eigen::MatrixXd* d_data,
                                             Eigen::MatrixXd* d_beta0) const {
  const Impl& im = *impl_;
  const Model& m = *im.model;
  if (x.size() != im.npar)
    throw std::invalid_argument("parameter vector has " + std::to_string(x.size()) +
                                " entries, but the model has " + std::to_string(im.npar));
  Point pt;
  im.MakePoint(x, &pt);
  d_data->setZero(im.npar, m.nbins);
  d_beta0->setZero(im.npar, im.nbeta);
  if (im.full && im.dterm == DataTerm::kCovariance) {
    // grad = sum_r u_b a_r dlambda_r with u = W_eff (a - n): d/dn = -G^T W_eff, d/dbeta0_r =
    // G^T W_eff(:, b) e_r (through u) + u_b dlambda_r (multiplicative rows, through a_r).
    detail::CovFull cf;
    im.CovFullAt(pt, nullptr, 2, &cf);
    const Eigen::MatrixXd gw = cf.g.transpose() * cf.w;  // [npar x nbins]
    *d_data = -gw;
    const bool mult = im.bbtype != BinByBinStatType::kNormalAdditive;
    Eigen::VectorXd jr = Eigen::VectorXd::Zero(im.npar);
    double ex;
    for (std::int64_t r = 0; r < im.bin_row[m.nbins]; ++r) {
      const std::int64_t j = im.row_beta[r];
      if (j < 0) continue;
      const std::int64_t b = m.tensor.row_bin[r];
      const double lam = im.RowYield(pt, r, &ex);
      d_beta0->col(j) = gw.col(b) * (mult ? lam : im.row_s[r]);
      if (mult) {
        jr.setZero();
        detail::AddRowGradient(im, pt, r, lam, ex, cf.u[b], &jr);
        d_beta0->col(j) += jr;
      }
    }
    return;
  }
  if (im.full) {
    // grad = sum_r t a_r d lambda_r: d/dn = dt/dn G and d/dbeta0_j = h e_j z_j G + t z_j d lambda_j
    // (multiplicative rows) with G = sum_r c_r d lambda_r (docs/numerics.md "Barlow-Beeston full").
    im.arena->execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, m.nbins, 16),
                        [&](const tbb::blocked_range<std::int64_t>& range) {
                          Eigen::VectorXd g = Eigen::VectorXd::Zero(im.npar), jr = g;
                          detail::BinState st;
                          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
                            detail::ComputeBin(im, pt, b, true, &st);
                            if (!st.ok) continue;
                            const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
                            for (std::int64_t r = r0; r < r1; ++r)
                              detail::AddRowGradient(im, pt, r, st.lam[r - r0], st.ex[r - r0],
                                                     st.fr.c[r - r0], &g);
                            const std::int32_t* touch = im.bin_touch.data() + im.bin_touch_start[b];
                            const std::int64_t ntouch =
                                im.bin_touch_start[b + 1] - im.bin_touch_start[b];
                            for (std::int64_t a = 0; a < ntouch; ++a)
                              (*d_data)(touch[a], b) = st.fr.dtn * g[touch[a]];
                            const bool mult = im.bbtype != BinByBinStatType::kNormalAdditive;
                            for (std::int64_t r = r0; r < r1; ++r) {
                              const std::int64_t j = im.row_beta[r];
                              if (j < 0) continue;
                              const double he = st.fr.h * st.fr.e[r - r0] * st.fr.z[r - r0];
                              for (std::int64_t a = 0; a < ntouch; ++a)
                                (*d_beta0)(touch[a], j) = he * g[touch[a]];
                              if (mult) {
                                detail::AddRowGradient(im, pt, r, st.lam[r - r0], st.ex[r - r0],
                                                       st.fr.t * st.fr.z[r - r0], &jr);
                                for (std::int64_t a = 0; a < ntouch; ++a) {
                                  (*d_beta0)(touch[a], j) += jr[touch[a]];
                                  jr[touch[a]] = 0.0;
                                }
                              }
                            }
                            for (std::int64_t a = 0; a < ntouch; ++a) g[touch[a]] = 0.0;
                          }
                        });
    });
    return;
  }
  if (im.CovMultiplicative()) {
    // grad = Jeff^T W r at beta(n, beta0): d/dn = -Jeff^T W + B^T A^-1 N W, d/dbeta0 = B^T A^-1 K.
    detail::CovMult cm;
    im.CovMultAt(pt, nullptr, 2, &cm);
    *d_data = -(cm.jeff.transpose() * im.wcov);
    const int na = static_cast<int>(cm.act.size());
    if (na > 0) {
      const Eigen::MatrixXd ainv_b = cm.a.solve(cm.b);  // [na x npar]
      Eigen::MatrixXd nw(na, m.nbins);
      for (int i = 0; i < na; ++i) nw.row(i) = cm.lv[cm.act[i]] * im.wcov.row(cm.act[i]);
      *d_data += ainv_b.transpose() * nw;
      for (int i = 0; i < na; ++i)
        d_beta0->col(cm.act[i]) = ainv_b.row(i).transpose() * im.kstat[cm.act[i]];
    }
    return;
  }
  if (im.dterm == DataTerm::kCovariance) {
    // grad = J^T W_eff (L - n + S beta0): d/dn = -J^T W_eff, d/dbeta0 = J^T W_eff S.
    Eigen::VectorXd totals;
    const Eigen::MatrixXd jac = im.FittedJacobian(pt, &totals);
    const Eigen::MatrixXd jw = jac.transpose() * im.weff;
    *d_data = -jw;
    *d_beta0 = jw * im.sbeta.asDiagonal();
    return;
  }
  const bool chisq = im.dterm == DataTerm::kChisq;
  im.arena->execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, m.nbins, 16),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          Eigen::VectorXd jv = Eigen::VectorXd::Zero(im.npar), ju = Eigen::VectorXd::Zero(im.npar);
          std::vector<double> lam, ex;
          detail::BinTerm bt;
          for (std::int64_t b = range.begin(); b < range.end(); ++b) {
            const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
            lam.resize(r1 - r0);
            ex.resize(r1 - r0);
            double lv = 0.0, lu = 0.0;
            for (std::int64_t r = r0; r < r1; ++r) {
              lam[r - r0] = im.RowYield(pt, r, &ex[r - r0]);
              (im.row_scaled[r] ? lv : lu) += lam[r - r0];
            }
            im.Term(b, lv, lu, 2, nullptr, nullptr, &bt);
            const double L = bt.L;
            // dD1/dn of the data term: Poisson -1/L (an empty bin, L = n = 0, has no spread of n:
            // no derivative to use), chi-square -1/sigma^2.
            const double dn = chisq ? -1.0 / im.var[b] : (L > 0 ? -1.0 / L : 0.0);
            // d(dG/dlambda_v, dG/dlambda_u)/dn and /dbeta0 at the profiled beta.
            double dv_dn = dn, du_dn = dn, dv_db0 = 0.0, du_db0 = 0.0;
            if (bt.has_beta) {
              const double k = im.kstat[b];
              double fbn, cb0;
              if (bt.additive) {
                fbn = bt.s * dn;
                cb0 = -1.0;
              } else {
                dv_dn = bt.beta * dn;
                fbn = bt.lv * dn;
                cb0 = im.bbtype == BinByBinStatType::kGamma ? -k / bt.beta : -k;
              }
              const double dbeta_dn = -fbn / bt.fbb;
              const double dbeta_db0 = -cb0 / bt.fbb;
              dv_dn += bt.fbv * dbeta_dn;
              du_dn += bt.fbu * dbeta_dn;
              dv_db0 = bt.fbv * dbeta_db0;
              du_db0 = bt.fbu * dbeta_db0;
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

void Likelihood::GlobalObservableSigmas(const Eigen::VectorXd& x, Eigen::VectorXd* sigma_data,
                                        Eigen::VectorXd* sigma_beta0,
                                        Eigen::MatrixXd* data_factor) const {
  const Impl& im = *impl_;
  const Model& m = *im.model;
  sigma_beta0->setZero(im.nbeta);
  data_factor->resize(0, 0);
  switch (im.dterm) {
    case DataTerm::kPoisson:
      *sigma_data = im.data.cwiseMax(0.0).cwiseSqrt();
      break;
    case DataTerm::kChisq:
      *sigma_data = im.var.cwiseSqrt();
      break;
    case DataTerm::kCovariance:
      sigma_data->resize(0);
      *data_factor = im.cov_factor;
      if (im.cov_factor.size() == 0)
        throw NumericalError("global impacts: the data covariance is not positive definite");
      break;
  }
  if (!im.options.bin_by_bin_stat) return;
  if (im.bbtype == BinByBinStatType::kNormalAdditive) {
    if (im.full) {
      for (std::int64_t r = 0; r < im.bin_row[m.nbins]; ++r)
        if (im.row_beta[r] >= 0) (*sigma_beta0)[im.row_beta[r]] = 1.0;
      return;
    }
    for (Eigen::Index b = 0; b < m.nbins; ++b) (*sigma_beta0)[b] = im.sbeta[b] > 0 ? 1.0 : 0.0;
    return;
  }
  const Eigen::VectorXd beta = ProfiledBeta(x);
  for (Eigen::Index b = 0; b < im.nbeta; ++b) {
    const double k = im.kstat[b];
    if (k <= 0) continue;
    (*sigma_beta0)[b] =
        im.bbtype == BinByBinStatType::kGamma ? std::sqrt(beta[b] / k) : 1.0 / std::sqrt(k);
  }
}

double Likelihood::PoiValue(double x) const { return impl_->options.poi_positive ? x * x : x; }
double Likelihood::PoiDerivative(double x) const {
  return impl_->options.poi_positive ? 2 * x : 1.0;
}

}  // namespace lepus::engine
