// Private: the internals of Likelihood shared by likelihood.cc and yields.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include <tbb/task_arena.h>
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/SparseCore>

#include "lepus/engine/likelihood.h"
#include "row_kernel.h"

namespace lepus::engine {

namespace detail {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Per-evaluation values that depend only on x.
struct Point {
  Eigen::VectorXd r, dr, d2r;     // per signal process: mu(x), dmu/dx, d2mu/dx2
  Eigen::VectorXd theta;          // [nsyst]
  Eigen::VectorXd alpha, c1, c2;  // per syst: alpha(theta), d(theta*alpha)/dtheta, d2(...)
};

// Dense Hessian slice buffers reused across evaluations: a fresh npar^2 allocation per
// evaluation costs as much in page faults as a large part of the assembly itself. Thread-safe;
// a copy (Likelihood::Clone) starts empty.
class MatrixPool {
 public:
  MatrixPool() = default;
  MatrixPool(const MatrixPool&) {}
  MatrixPool& operator=(const MatrixPool&) { return *this; }
  Eigen::MatrixXd Take() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pool_.empty()) return {};
    Eigen::MatrixXd m = std::move(pool_.back());
    pool_.pop_back();
    return m;
  }
  void Give(Eigen::MatrixXd&& m) {
    if (m.size() == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (pool_.size() < kMaxPooled) pool_.push_back(std::move(m));
  }

 private:
  static constexpr std::size_t kMaxPooled = 16;  // the most Hessian slices (likelihood.cc)
  std::mutex mutex_;
  std::vector<Eigen::MatrixXd> pool_;
};

// What one slice of bins contributes.
struct SliceOut {
  double nll = 0.0;
  Eigen::VectorXd grad;
  Eigen::MatrixXd hess;  // lower triangle valid
};

// Weighted rank-k update buffer: accumulates columns sqrt(|w|) v, flushing them into the lower
// triangle of a dense block with SYRK-like rank updates (one for each sign of w).
class RankBuffer {
 public:
  RankBuffer(Eigen::Index dim, Eigen::Index capacity) : pos_(dim, capacity), neg_(dim, capacity) {}
  // Returns the column to fill (zeroed) for weight w; call Commit() after filling it.
  double* Column(double w) {
    auto& m = w >= 0 ? pos_ : neg_;
    auto& n = w >= 0 ? npos_ : nneg_;
    m.col(n).setZero();
    last_sign_ = w >= 0;
    return m.col(n).data();
  }
  template <typename Block>
  void Commit(Block&& target) {
    if (last_sign_)
      ++npos_;
    else
      ++nneg_;
    if (npos_ == pos_.cols() || nneg_ == neg_.cols()) Flush(target);
  }
  template <typename Block>
  void Flush(Block&& target) {
    if (npos_ > 0)
      target.template selfadjointView<Eigen::Lower>().rankUpdate(pos_.leftCols(npos_), 1.0);
    if (nneg_ > 0)
      target.template selfadjointView<Eigen::Lower>().rankUpdate(neg_.leftCols(nneg_), -1.0);
    npos_ = nneg_ = 0;
  }

 private:
  Eigen::MatrixXd pos_, neg_;
  Eigen::Index npos_ = 0, nneg_ = 0;
  bool last_sign_ = true;
};

// Static grouping of consecutive items (rows of the tensor, or fitted bins) into chunks whose
// column union stays small (docs/likelihood.md section 5: the Hessian as sums of outer
// products). A chunk's weighted outer products are accumulated with rank-k updates (SYRK) in a
// dense |U| x |U| block and scattered once into the Hessian; a chunk whose union covers more
// than half of the block ("direct") is updated in place. Dense models thus get full-width SYRK,
// sparse (CMS-like) models small dense blocks per region instead of per-row scatter.
struct ChunkPlan {
  std::vector<std::int64_t> items;      // item order (a permutation within each slice)
  std::vector<std::int64_t> start;      // first position in `items` of each chunk, size nchunks + 1
  std::vector<std::int64_t> col_start;  // offsets into cols, size nchunks + 1
  std::vector<std::int32_t> cols;       // sorted column union of each chunk
  std::vector<char> direct;             // chunk uses global column indices
  std::vector<std::int32_t> local;      // per element (original element index): column within chunk
  std::int64_t max_union = 0;           // largest union among non-direct chunks
  std::int64_t max_width = 0;           // largest column count (dim for direct chunks)
  int FindChunk(std::int64_t item) const {
    return static_cast<int>(std::upper_bound(start.begin(), start.end(), item) - start.begin()) - 1;
  }
};

class ChunkBuffer {
 public:
  ChunkBuffer(const ChunkPlan& plan, Eigen::Index dim, Eigen::Index capacity)
      : plan_(plan),
        dim_(dim),
        pos_(std::max<Eigen::Index>(plan.max_width, 1), capacity),
        neg_(std::max<Eigen::Index>(plan.max_width, 1), capacity),
        acc_(std::max<Eigen::Index>(plan.max_union, 1), std::max<Eigen::Index>(plan.max_union, 1)) {
  }
  void Begin(int chunk) {
    chunk_ = chunk;
    direct_ = plan_.direct[chunk];
    width_ = direct_ ? dim_ : plan_.col_start[chunk + 1] - plan_.col_start[chunk];
    npos_ = nneg_ = 0;
    used_ = false;
    if (!direct_)
      acc_.topLeftCorner(width_, width_).template triangularView<Eigen::Lower>().setZero();
  }
  int chunk() const { return chunk_; }
  bool direct() const { return direct_; }
  // Zeroed column (length = chunk width) for weight w; fill at local (or, direct, global) indices.
  double* Column(double w) {
    auto& m = w >= 0 ? pos_ : neg_;
    auto& n = w >= 0 ? npos_ : nneg_;
    m.col(n).head(width_).setZero();
    last_sign_ = w >= 0;
    return m.col(n).data();
  }
  template <typename Block>
  void Commit(Block&& target) {
    if (last_sign_)
      ++npos_;
    else
      ++nneg_;
    used_ = true;
    if (npos_ == pos_.cols() || nneg_ == neg_.cols()) Flush(target);
  }
  // Ends the chunk: remaining columns and the scatter of the accumulated block.
  template <typename Block>
  void End(Block&& target) {
    Flush(target);
    if (direct_ || !used_) return;
    const std::int32_t* cols = plan_.cols.data() + plan_.col_start[chunk_];
    for (Eigen::Index j = 0; j < width_; ++j)
      for (Eigen::Index i = j; i < width_; ++i) target(cols[i], cols[j]) += acc_(i, j);
  }

 private:
  template <typename Block>
  void Flush(Block&& target) {
    if (direct_) {
      if (npos_ > 0)
        target.template selfadjointView<Eigen::Lower>().rankUpdate(
            pos_.topLeftCorner(width_, npos_), 1.0);
      if (nneg_ > 0)
        target.template selfadjointView<Eigen::Lower>().rankUpdate(
            neg_.topLeftCorner(width_, nneg_), -1.0);
    } else {
      auto a = acc_.topLeftCorner(width_, width_);
      if (npos_ > 0)
        a.template selfadjointView<Eigen::Lower>().rankUpdate(pos_.topLeftCorner(width_, npos_),
                                                              1.0);
      if (nneg_ > 0)
        a.template selfadjointView<Eigen::Lower>().rankUpdate(neg_.topLeftCorner(width_, nneg_),
                                                              -1.0);
    }
    npos_ = nneg_ = 0;
  }

  const ChunkPlan& plan_;
  Eigen::Index dim_;
  Eigen::MatrixXd pos_, neg_, acc_;
  Eigen::Index npos_ = 0, nneg_ = 0, width_ = 0;
  int chunk_ = -1;
  bool direct_ = false, used_ = false, last_sign_ = true;
};

// One fitted bin's term of the NLL as a function of its two yield sums lv (processes scaled by
// the Barlow-Beeston beta) and lu (the others), with beta profiled (or held fixed): the value,
// the first derivatives (gv, gu) and second derivatives (hvv, hvu, huu) with respect to (lv, lu)
// of the profiled term, and the partials of the unprofiled term in beta that give
// d beta / dx = -(fbv Jv + fbu Ju) / fbb (docs/numerics.md "Likelihood variants").
struct BinTerm {
  double lv = 0, lu = 0, L = 0, beta = 1, nll = 0;
  double gv = 0, gu = 0, hvv = 0, hvu = 0, huu = 0;
  double fbv = 0, fbu = 0, fbb = 1;
  double s = 0;  // normal-additive: sqrt(V_b), L = lv + lu + s beta
  bool has_beta = false;
  bool additive = false;
  bool ok = true;  // false: outside the model's domain (the NLL is +inf)
};

// Barlow-Beeston full mode: one fitted bin's rows (docs/numerics.md "Barlow-Beeston full"). Each
// row r's yield enters the bin total as m_r = beta_r lambda_r (multiplicative), lambda_r + s_r beta_r
// (normal-additive) or lambda_r (no beta). The betas of the bin are profiled jointly: with
// t = D'(L) every beta_r(t) solves its own stationarity condition and t solves t = D'(L(t)).
// Per row: the gradient weight w = d f / d lambda_r = t a_r (a_r = d m_r / d lambda_r), the
// vector weight c, the diagonal curvature d and the yield response ep = e_r p_r (e_r = dm_r/dbeta_r,
// p_r = dbeta_r/dt); the bin's Hessian in lambda is h c c^T + diag(d).
struct FullRows {
  std::vector<double> beta, w, c, d, ep, p, q, z, e;
  double t = 0.0, h = 0.0, S = 0.0, dtn = 0.0;  // dtn: d t / d n at fixed lambda (global impacts)
  double d2 = 0.0;                              // D''(L)
  void Resize(std::size_t n) {
    beta.resize(n);
    w.resize(n);
    c.resize(n);
    d.resize(n);
    ep.resize(n);
    p.resize(n);
    q.resize(n);
    z.resize(n);
    e.resize(n);
  }
};

// A covariance fit with Barlow-Beeston full mode at a point (Likelihood::Impl::CovFullAt;
// docs/numerics.md "Barlow-Beeston full"). With the betas profiled, beta_r = beta0_r + p_r u_b
// and the NLL is (a - n)^T W_eff (a - n) / 2 with a_b the bin total at beta0,
// W_eff = (W^-1 + diag Q)^-1 (Q_b = sum_r lambda_r^2 / k_r, or sum_r sumw2_r for normal-additive)
// and u = W_eff (a - n); with fixed betas W_eff = W, r = L - n and the constraints are added.
// The Hessian's bin part is G^T W_eff G with G_b = sum_r c_r dlambda_r / dx.
struct CovFull {
  Eigen::VectorXd u;  // [nbins] W_eff r: every bin's t
  Eigen::VectorXd r;  // [nbins] a - n (profiled) or L - n (fixed)
  Eigen::MatrixXd w;  // [nbins x nbins] W_eff (profiled) or W
  Eigen::MatrixXd g;  // [nbins x npar] (level >= 2)
  double nll = 0.0;
};

// An external NLL term with its Hessian symmetrised (engine::ExternalTerm).
struct ExternalPart {
  std::vector<int> params;
  Eigen::VectorXd grad;
  Eigen::SparseMatrix<double> hess;  // (H + H^T) / 2, or empty
};

// A covariance fit with normal-multiplicative betas at a point (Likelihood::Impl::CovMultAt): the
// betas of the bins with MC statistics solve the coupled system
// (N W N + K) beta = N W (n - lu) + K beta0 (N = diag(lv)); the profiled NLL's Hessian is
// rows + Jeff^T W Jeff - B^T A^-1 B with Jeff = diag(beta) Jv + Ju, B = diag(u) Jv + N W Jeff
// (restricted to those bins) and u = W r, r = beta lv + lu - n.
struct CovMult {
  Eigen::VectorXd lv, lu, beta, r, u;  // [nbins]
  Eigen::MatrixXd jv, ju, jeff;        // [nbins x npar]
  std::vector<int> act;                // bins with a beta
  Eigen::MatrixXd b;                   // [nact x npar]
  Eigen::LDLT<Eigen::MatrixXd> a;      // N W N + K on act
  bool profiled = false;
};

}  // namespace detail

using detail::Point;
using detail::SliceOut;

struct Likelihood::Impl {
  std::shared_ptr<const Model> model;
  LikelihoodOptions options;
  std::vector<ParamInfo> params;
  int npoi = 0, nsyst = 0, npar = 0;
  Eigen::VectorXd data, theta0, beta0;
  Eigen::VectorXd kstat;  // [nbins]
  DataTerm dterm = DataTerm::kPoisson;
  BinByBinStatType bbtype = BinByBinStatType::kGamma;  // resolved (never kAutomatic)
  Eigen::VectorXd var;    // [nbins] data variance (kChisq, kCovariance without W)
  Eigen::VectorXd sbeta;  // [nbins] sqrt(V_b) for normal-additive (0: no beta)
  // kCovariance: W (inverse data covariance), the effective W with the additive betas profiled,
  // W_eff = (W^-1 + S^2)^-1 (S = diag(sbeta)), the factorisation of S W S + 1 (profiled beta)
  // and a lower Cholesky factor of W^-1 (global impacts).
  Eigen::MatrixXd wcov, weff, cov_factor;
  Eigen::MatrixXd dcov;  // W^-1, kCovariance with Barlow-Beeston full mode
  std::shared_ptr<const Eigen::LLT<Eigen::MatrixXd>> sws_llt;
  std::vector<detail::ExternalPart> externals;
  std::vector<char> row_scaled;  // [nrows]: scaled by beta
  // Barlow-Beeston full mode (options bin_by_bin_stat and kFull): num_betas = nbins * nproc; per
  // row of a fitted bin its beta index b * nproc + p (-1: no beta), k_r and s_r = sqrt(sumw2).
  bool full = false;
  std::int64_t nbeta = 0;
  std::vector<std::int64_t> row_beta;
  Eigen::VectorXd row_k, row_s;
  // [nrows]: the row holds every systematic in order (syst = 0 .. nsyst-1): the NLL and gradient
  // use contiguous vector operations instead of the indexed gather / scatter (dense models).
  std::vector<char> row_full;
  // [nrows]: the row has an entry that is not kModel (HistFactory kinds): evaluated by
  // detail::GeneralRow (row_kernel.h) instead of the rabbit loops. coef_index [nnz] / coef: the
  // normsys code-4 polynomial coefficients (6 per such entry, -1 elsewhere); empty when unused.
  std::vector<char> row_general;
  bool any_general = false;
  std::vector<std::int64_t> coef_index;
  std::vector<double> coef;
  // Per systematic: Poisson-constrained (Model::constraint_kinds).
  std::vector<char> poisson;
  std::vector<std::int64_t> bin_row;  // [nbins_full + 1] first row of each bin
  // Parameters touched by each fitted bin (sorted): POIs of its signal rows, systematics.
  std::vector<std::int64_t> bin_touch_start;
  std::vector<std::int32_t> bin_touch;
  // Hessian assembly: chunked rank-k updates (default) or per-row scatter (HessianAssembly).
  bool chunked = true;
  detail::ChunkPlan row_plan;  // tensor rows of fitted bins; columns = systematics
  detail::ChunkPlan bin_plan;  // fitted bins; columns = parameters (bin_touch lists)
  std::vector<std::int64_t> grad_slices, hess_slices;  // bin boundaries
  mutable detail::MatrixPool hess_pool;                // SliceOut::hess buffers
  std::shared_ptr<tbb::task_arena> arena;              // replaced (not shared) by Clone

  void Init();
  detail::GeneralRowInputs RowInputs(const Point& pt) const {
    detail::GeneralRowInputs in;
    in.tensor = &model->tensor;
    in.type = model->systematic_type;
    in.npoi = npoi;
    in.r = pt.r.data();
    in.dr = pt.dr.data();
    in.d2r = pt.d2r.data();
    in.theta = pt.theta.data();
    in.coef_index = coef_index.empty() ? nullptr : coef_index.data();
    in.coef = coef.data();
    return in;
  }
  // Constraint term of systematic s at theta (Gaussian or Poisson, Model::constraint_kinds) and
  // its first two derivatives; +inf outside a Poisson constraint's domain (theta <= 0).
  double Constraint(int s, double theta, double* d1, double* d2) const {
    const double w = model->constraint_weights[s], c = theta0[s];
    if (!poisson.empty() && poisson[s]) {
      if (c == 0.0) {
        *d1 = w;
        *d2 = 0.0;
        return theta >= 0 ? w * theta : detail::kInf;
      }
      if (!(theta > 0)) {
        *d1 = *d2 = detail::kNaN;
        return detail::kInf;
      }
      *d1 = w - w * c / theta;
      *d2 = w * c / (theta * theta);
      return w * (theta - c) - w * c * std::log(theta / c);
    }
    *d1 = w * (theta - c);
    *d2 = w;
    return 0.5 * w * (theta - c) * (theta - c);
  }
  void MakePoint(const Eigen::VectorXd& x, Point* pt) const;
  // level: 0 value, 1 + gradient, 2 + Hessian
  // fixed_beta: when non-null, beta is held at these values (not profiled): the NLL is then
  // the un-profiled one and its Hessian has no Schur-complement term.
  // cov_u: kCovariance, W_eff (L - n_eff) per fitted bin (the bins supply its gradient weights).
  // cov_beta: kCovariance with multiplicative betas, the betas (gradient weight beta u of the
  // scaled rows).
  void EvalSlice(const Point& pt, std::int64_t b0, std::int64_t b1, int level, SliceOut* out,
                 const Eigen::VectorXd* fixed_beta = nullptr,
                 const Eigen::VectorXd* cov_u = nullptr,
                 const Eigen::VectorXd* cov_beta = nullptr) const;
  double Evaluate(const Eigen::VectorXd& x, int level, Eigen::VectorXd* grad, Eigen::MatrixXd* hess,
                  const Eigen::VectorXd* fixed_beta = nullptr) const;
  // Accumulates J = d(lambda_v, lambda_u)/dx of bin b into jv, ju (dense, touched entries).
  void BinJacobian(const Point& pt, std::int64_t b, const double* lam, const double* ex,
                   Eigen::VectorXd* jv, Eigen::VectorXd* ju) const;
  // Row yield (without beta) and exponent helper.
  double RowYield(const Point& pt, std::int64_t r, double* expo) const;
  double SolveBeta(double lv, double lu, double n, double k, double b0) const;
  // The term of fitted bin b (data term and Barlow-Beeston type of the options). level 0: value
  // (and beta); 1: + first derivatives; 2: + second derivatives and the beta partials. fixed_beta:
  // beta held at (*fixed_beta)[b]. cov_u: kCovariance, the bin's (W_eff (L - n_eff))_b (the data
  // term is then handled in Evaluate; the bin only supplies its gradient weight).
  void Term(std::int64_t b, double lv, double lu, int level, const Eigen::VectorXd* fixed_beta,
            const Eigen::VectorXd* cov_u, detail::BinTerm* t,
            const Eigen::VectorXd* cov_beta = nullptr) const;
  // Full mode: the term of fitted bin b from its row yields lam (bin_row order). Fills t (L, nll,
  // ok) and fr (level >= 1: beta, w; level >= 2: c, d, ep, q, z, e, t, h, S, dtn). fixed_beta as in
  // Term ([nbeta], or empty: without Barlow-Beeston).
  // cov_t (kCovariance): t = (W_eff r)_b is given (CovFullAt); the data term and the betas'
  // constraints are then evaluated by CovFullAt (bt->nll = 0).
  void FullTerm(std::int64_t b, const double* lam, int level, const Eigen::VectorXd* fixed_beta,
                detail::BinTerm* t, detail::FullRows* fr, const double* cov_t = nullptr) const;
  // kCovariance with Barlow-Beeston full mode (detail::CovFull). level >= 2 fills g.
  void CovFullAt(const Point& pt, const Eigen::VectorXd* fixed_beta, int level,
                 detail::CovFull* c) const;
  // kCovariance with normal-multiplicative betas (detail::CovMult). fixed_beta as in Evaluate;
  // level >= 2 with profiled betas also fills b and a.
  bool CovMultiplicative() const {
    return dterm == DataTerm::kCovariance && options.bin_by_bin_stat && !full &&
           bbtype == BinByBinStatType::kNormalMultiplicative;
  }
  void CovMultAt(const Point& pt, const Eigen::VectorXd* fixed_beta, int level,
                 detail::CovMult* c) const;
  // Full mode (yields.cc): the reported yield of each row of every bin (profile: with the
  // profiled betas and the model's beta_variations; otherwise the plain row yields) and, with
  // want_jac, d y / dx ([rows of the bin x npar], dense). fn(b, y, jac) runs concurrently for
  // different bins.
  void FullYields(const Point& pt, bool profile, bool want_jac,
                  const std::function<void(std::int64_t, const Eigen::VectorXd&,
                                           const Eigen::MatrixXd&)>& fn) const;
  // Totals of the fitted bins without beta and their Jacobian d L / dx ([nbins x npar]).
  Eigen::MatrixXd FittedJacobian(const Point& pt, Eigen::VectorXd* totals) const;
  // kCovariance: W, W_eff, the beta system and the data-covariance factor (Init).
  void InitCovariance();
  // kCovariance: the profiled additive betas [nbins] at the fitted-bin totals L (without beta).
  Eigen::VectorXd CovarianceBeta(const Eigen::VectorXd& totals) const;
  // External terms: value, and gradient / Hessian added (level 1 / 2).
  double AddExternal(const Eigen::VectorXd& x, int level, Eigen::VectorXd* grad,
                     Eigen::MatrixXd* hess) const;
};

namespace detail {

// Everything about one bin at a point: row yields and the bin's term (BinTerm) with beta
// profiled (profile_beta) or at 1 (beta0 for normal-additive: no shift).
struct BinState : BinTerm {
  std::vector<double> lam, ex;
  FullRows fr;  // full mode
};

inline void ComputeBin(const Likelihood::Impl& im, const Point& pt, std::int64_t b,
                       bool profile_beta, BinState* st, const double* cov_t = nullptr) {
  const Model& m = *im.model;
  const std::int64_t r0 = im.bin_row[b], r1 = im.bin_row[b + 1];
  st->lam.resize(r1 - r0);
  st->ex.resize(r1 - r0);
  double lv = 0.0, lu = 0.0;
  const bool fitted = b < m.nbins;
  for (std::int64_t r = r0; r < r1; ++r) {
    st->lam[r - r0] = im.RowYield(pt, r, &st->ex[r - r0]);
    ((fitted && im.row_scaled[r]) ? lv : lu) += st->lam[r - r0];
  }
  static_cast<BinTerm&>(*st) = BinTerm{};
  st->lv = lv;
  st->lu = lu;
  st->L = lv + lu;
  if (!fitted) return;
  if (im.full) {
    const Eigen::VectorXd none;
    im.FullTerm(b, st->lam.data(), 2, profile_beta ? nullptr : &none, st, &st->fr, cov_t);
    return;
  }
  if (profile_beta) {
    im.Term(b, lv, lu, 2, nullptr, nullptr, st);
  } else {
    // The term without Barlow-Beeston: the yields as they are.
    const Eigen::VectorXd none;
    im.Term(b, lv, lu, 2, &none, nullptr, st);
  }
}

// The bin total L and its derivative with respect to x given Jv, Ju (dense, over `touch`), with
// the profiled beta's dependence on x: mult: beta Jv + Ju + lv dbeta; additive: Jv + Ju + s dbeta.
inline double TotalDerivative(const BinTerm& st, double jv, double ju) {
  if (!st.has_beta) return jv + ju;
  const double dbeta = -(st.fbv * jv + st.fbu * ju) / st.fbb;
  return st.additive ? jv + ju + st.s * dbeta : st.beta * jv + ju + st.lv * dbeta;
}

// d lambda_r / dx for one row, added into j (dense) with a factor.
inline void AddRowGradient(const Likelihood::Impl& im, const Point& pt, std::int64_t r, double lam,
                           double ex, double factor, Eigen::VectorXd* j) {
  const Tensor& t = im.model->tensor;
  if (im.any_general && im.row_general[r]) {
    thread_local GeneralRowEval ev;
    GeneralRow(im.RowInputs(pt), r, 1, &ev);
    for (int k = 0; k < ev.n; ++k) (*j)[ev.col[k]] += factor * ev.g[k];
    return;
  }
  const bool asym = !t.logk_halfdiff.empty();
  const bool lognormal = im.model->systematic_type == SystematicType::kLogNormal;
  const int p = t.row_proc[r];
  if (p < im.npoi) (*j)[p] += factor * pt.dr[p] * t.norm[r] * ex;
  const double scale = factor * (lognormal ? lam : 1.0);
  for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
    const int s = t.syst[i];
    const double g = asym ? t.logk_avg[i] + pt.c1[s] * t.logk_halfdiff[i] : t.logk_avg[i];
    (*j)[im.npoi + s] += scale * g;
  }
}

}  // namespace detail

}  // namespace lepus::engine
