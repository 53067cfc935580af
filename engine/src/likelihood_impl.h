// Private: the internals of Likelihood shared by likelihood.cc and yields.cc.
#pragma once

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <Eigen/Core>
#include <tbb/task_arena.h>

#include "lepus/engine/likelihood.h"

namespace lepus::engine {

namespace detail {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Per-evaluation values that depend only on x.
struct Point {
  Eigen::VectorXd r, dr, d2r;      // per signal process: mu(x), dmu/dx, d2mu/dx2
  Eigen::VectorXd theta;           // [nsyst]
  Eigen::VectorXd alpha, c1, c2;   // per syst: alpha(theta), d(theta*alpha)/dtheta, d2(...)
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
  RankBuffer(Eigen::Index dim, Eigen::Index capacity)
      : pos_(dim, capacity), neg_(dim, capacity) {}
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
    if (last_sign_) ++npos_; else ++nneg_;
    if (npos_ == pos_.cols() || nneg_ == neg_.cols()) Flush(target);
  }
  template <typename Block>
  void Flush(Block&& target) {
    if (npos_ > 0) target.template selfadjointView<Eigen::Lower>().rankUpdate(pos_.leftCols(npos_), 1.0);
    if (nneg_ > 0) target.template selfadjointView<Eigen::Lower>().rankUpdate(neg_.leftCols(nneg_), -1.0);
    npos_ = nneg_ = 0;
  }

 private:
  Eigen::MatrixXd pos_, neg_;
  Eigen::Index npos_ = 0, nneg_ = 0;
  bool last_sign_ = true;
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
  Eigen::VectorXd kstat;                  // [nbins]
  std::vector<char> row_scaled;           // [nrows]: scaled by beta
  std::vector<std::int64_t> bin_row;      // [nbins_full + 1] first row of each bin
  // Parameters touched by each fitted bin (sorted): POIs of its signal rows, systematics.
  std::vector<std::int64_t> bin_touch_start;
  std::vector<std::int32_t> bin_touch;
  bool dense_rows = false;   // row outer products through rank-k buffers
  bool dense_bins = false;   // bin (J) outer products through rank-k buffers
  std::vector<std::int64_t> grad_slices, hess_slices;  // bin boundaries
  std::shared_ptr<tbb::task_arena> arena;  // replaced (not shared) by Clone

  void Init();
  void MakePoint(const Eigen::VectorXd& x, Point* pt) const;
  // level: 0 value, 1 + gradient, 2 + Hessian
  // fixed_beta: when non-null, beta is held at these values (not profiled): the NLL is then
  // the un-profiled one and its Hessian has no Schur-complement term.
  void EvalSlice(const Point& pt, std::int64_t b0, std::int64_t b1, int level, SliceOut* out,
                 const Eigen::VectorXd* fixed_beta = nullptr) const;
  double Evaluate(const Eigen::VectorXd& x, int level, Eigen::VectorXd* grad, Eigen::MatrixXd* hess,
                  const Eigen::VectorXd* fixed_beta = nullptr) const;
  // Accumulates J = d(lambda_v, lambda_u)/dx of bin b into jv, ju (dense, touched entries).
  void BinJacobian(const Point& pt, std::int64_t b, const double* lam, const double* ex,
                   Eigen::VectorXd* jv, Eigen::VectorXd* ju) const;
  // Row yield (without beta) and exponent helper.
  double RowYield(const Point& pt, std::int64_t r, double* expo) const;
  double SolveBeta(double lv, double lu, double n, double k, double b0) const;
};

}  // namespace lepus::engine
