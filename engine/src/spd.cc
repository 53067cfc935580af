#include "spd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <Eigen/Cholesky>

namespace lepus::engine::detail {

namespace {

// Below this size the dense factorisation takes milliseconds: no detection.
constexpr Eigen::Index kMinStructuredSize = 400;
// The structured path is used when its estimated cost is below this fraction of the dense one.
constexpr double kMaxCostFraction = 0.25;

double DenseFlops(double n) { return n * n * n / 3.0; }

struct UnionFind {
  std::vector<int> parent;
  explicit UnionFind(int n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int Find(int i) {
    while (parent[i] != i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  }
  void Union(int a, int b) {
    a = Find(a);
    b = Find(b);
    if (a == b) return;
    if (a < b) std::swap(a, b);
    parent[a] = b;  // the smaller index is the root: deterministic
  }
};

// Lower-triangle symmetric element.
inline double At(const Eigen::MatrixXd& a, int i, int j) { return i >= j ? a(i, j) : a(j, i); }

}  // namespace

BlockStructure DetectBlockStructure(const Eigen::MatrixXd& a) {
  const Eigen::Index n = a.rows();
  BlockStructure best;
  best.flops = DenseFlops(static_cast<double>(n));
  if (n < kMinStructuredSize) return best;

  // A matrix with more than kMaxDensity of its off-diagonal entries non-zero has no border small
  // enough to pay (the border holds the indices coupled to more than n/1.5 others): dense,
  // decided by one counting pass before any pattern is stored.
  constexpr double kMaxDensity = 0.35;
  std::vector<std::int64_t> col_nnz(n, 0);
  tbb::parallel_for(tbb::blocked_range<Eigen::Index>(0, n, 32),
                    [&](const tbb::blocked_range<Eigen::Index>& r) {
                      for (Eigen::Index j = r.begin(); j < r.end(); ++j) {
                        const double* col = a.col(j).data();
                        std::int64_t c = 0;
                        for (Eigen::Index i = j + 1; i < n; ++i) c += col[i] != 0.0;
                        col_nnz[j] = c;
                      }
                    });
  std::int64_t nnz = 0;
  for (std::int64_t c : col_nnz) nnz += c;
  if (static_cast<double>(nnz) >
      kMaxDensity * 0.5 * static_cast<double>(n) * static_cast<double>(n - 1))
    return best;

  // Strict lower-triangle pattern by column, and the degree of every index.
  std::vector<std::vector<int>> adj(n);
  tbb::parallel_for(tbb::blocked_range<Eigen::Index>(0, n, 32),
                    [&](const tbb::blocked_range<Eigen::Index>& r) {
                      for (Eigen::Index j = r.begin(); j < r.end(); ++j) {
                        const double* col = a.col(j).data();
                        adj[j].reserve(static_cast<std::size_t>(col_nnz[j]));
                        for (Eigen::Index i = j + 1; i < n; ++i)
                          if (col[i] != 0.0) adj[j].push_back(static_cast<int>(i));
                      }
                    });
  std::vector<std::int64_t> degree(n, 0);
  for (Eigen::Index j = 0; j < n; ++j) {
    degree[j] += static_cast<std::int64_t>(adj[j].size());
    for (int i : adj[j]) ++degree[i];
  }

  // Candidate borders: the indices coupled to at least n / d others, for a ladder of d. Each
  // candidate's blocks are the connected components of the rest.
  std::int64_t last_border = -1;
  for (double d : {1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0}) {
    const double tau = static_cast<double>(n) / d;
    std::vector<char> in_border(n, 0);
    std::vector<int> border;
    for (Eigen::Index i = 0; i < n; ++i)
      if (static_cast<double>(degree[i]) >= tau) {
        in_border[i] = 1;
        border.push_back(static_cast<int>(i));
      }
    const auto g = static_cast<std::int64_t>(border.size());
    if (g == last_border) continue;
    last_border = g;
    if (static_cast<double>(g) > 0.5 * static_cast<double>(n)) continue;
    UnionFind uf(static_cast<int>(n));
    for (Eigen::Index j = 0; j < n; ++j) {
      if (in_border[j]) continue;
      for (int i : adj[j])
        if (!in_border[i]) uf.Union(static_cast<int>(j), i);
    }
    std::vector<int> block_of(n, -1);
    std::vector<std::vector<int>> blocks;
    for (Eigen::Index i = 0; i < n; ++i) {
      if (in_border[i]) continue;
      const int root = uf.Find(static_cast<int>(i));
      if (block_of[root] < 0) {
        block_of[root] = static_cast<int>(blocks.size());
        blocks.emplace_back();
      }
      blocks[block_of[root]].push_back(static_cast<int>(i));
    }
    const double gd = static_cast<double>(g);
    double flops = DenseFlops(gd);
    for (const auto& b : blocks) {
      const double nb = static_cast<double>(b.size());
      flops += DenseFlops(nb) + nb * nb * gd + nb * gd * gd;
    }
    if (blocks.size() >= 2 && flops < best.flops) {
      best.border = std::move(border);
      best.blocks = std::move(blocks);
      best.flops = flops;
    }
  }
  if (best.structured() && best.flops > kMaxCostFraction * DenseFlops(static_cast<double>(n))) {
    const double dense = DenseFlops(static_cast<double>(n));
    best = BlockStructure{};
    best.flops = dense;
  }
  return best;
}

struct SpdFactor::Blocks {
  BlockStructure s;
  std::vector<Eigen::MatrixXd> l;         // per block: lower Cholesky factor of D_b
  std::vector<Eigen::MatrixXd> w;         // per block: W_b = L_b^-1 B_b^T (n_b x g)
  std::unique_ptr<CholeskyFactor> schur;  // of S = A - sum_b W_b^T W_b
};

SpdFactor::SpdFactor(const Eigen::MatrixXd& a) : n_(a.rows()) {
  BlockStructure s = DetectBlockStructure(a);
  if (!s.structured()) {
    dense_ = std::make_unique<CholeskyFactor>(a);
    ok_ = dense_->ok();
    return;
  }
  blocks_ = std::make_unique<Blocks>();
  Blocks& f = *blocks_;
  f.s = std::move(s);
  const auto& border = f.s.border;
  const int g = static_cast<int>(border.size());
  const int nblocks = static_cast<int>(f.s.blocks.size());
  f.l.resize(nblocks);
  f.w.resize(nblocks);
  std::vector<char> failed(nblocks, 0);
  tbb::parallel_for(tbb::blocked_range<int>(0, nblocks, 1), [&](const tbb::blocked_range<int>& r) {
    for (int b = r.begin(); b < r.end(); ++b) {
      const auto& idx = f.s.blocks[b];
      const int nb = static_cast<int>(idx.size());
      Eigen::MatrixXd d(nb, nb);
      for (int j = 0; j < nb; ++j)
        for (int i = j; i < nb; ++i) d(i, j) = a(idx[i], idx[j]);  // idx increasing: lower
      Eigen::LLT<Eigen::MatrixXd> llt(d);
      if (llt.info() != Eigen::Success) {
        failed[b] = 1;
        continue;
      }
      f.l[b] = llt.matrixL();
      Eigen::MatrixXd bt(nb, g);
      for (int c = 0; c < g; ++c)
        for (int i = 0; i < nb; ++i) bt(i, c) = At(a, idx[i], border[c]);
      // No border: nothing to solve (Eigen's triangular solve binds a reference to the first
      // coefficient of an empty right-hand side, undefined behaviour found by UBSan).
      if (g > 0) f.l[b].triangularView<Eigen::Lower>().solveInPlace(bt);
      f.w[b] = std::move(bt);
    }
  });
  if (std::any_of(failed.begin(), failed.end(), [](char c) { return c != 0; })) return;
  // Schur complement, one column tile per task, blocks summed in order.
  Eigen::MatrixXd schur(g, g);
  for (int c = 0; c < g; ++c)
    for (int r = 0; r < g; ++r) schur(r, c) = At(a, border[r], border[c]);
  tbb::parallel_for(tbb::blocked_range<int>(0, g, 64), [&](const tbb::blocked_range<int>& r) {
    const int c0 = r.begin(), cb = r.end() - r.begin();
    for (int b = 0; b < nblocks; ++b)
      schur.middleCols(c0, cb).noalias() -= f.w[b].transpose() * f.w[b].middleCols(c0, cb);
  });
  f.schur = std::make_unique<CholeskyFactor>(schur);
  ok_ = f.schur->ok();
}

SpdFactor::~SpdFactor() = default;
SpdFactor::SpdFactor(SpdFactor&&) noexcept = default;
SpdFactor& SpdFactor::operator=(SpdFactor&&) noexcept = default;

bool SpdFactor::structured() const { return blocks_ != nullptr; }

Eigen::VectorXd SpdFactor::Solve(const Eigen::VectorXd& rhs) const {
  if (dense_) return dense_->Solve(rhs);
  const Blocks& f = *blocks_;
  const auto& border = f.s.border;
  const int g = static_cast<int>(border.size());
  const int nblocks = static_cast<int>(f.s.blocks.size());
  std::vector<Eigen::VectorXd> y(nblocks);
  Eigen::VectorXd rg(g);
  for (int c = 0; c < g; ++c) rg[c] = rhs[border[c]];
  for (int b = 0; b < nblocks; ++b) {
    const auto& idx = f.s.blocks[b];
    y[b].resize(static_cast<Eigen::Index>(idx.size()));
    for (std::size_t i = 0; i < idx.size(); ++i) y[b][i] = rhs[idx[i]];
    f.l[b].triangularView<Eigen::Lower>().solveInPlace(y[b]);
    if (g > 0) rg.noalias() -= f.w[b].transpose() * y[b];
  }
  Eigen::VectorXd out(n_);
  Eigen::VectorXd xg;
  if (g > 0) {
    xg = f.schur->Solve(rg);
    for (int c = 0; c < g; ++c) out[border[c]] = xg[c];
  }
  for (int b = 0; b < nblocks; ++b) {
    const auto& idx = f.s.blocks[b];
    Eigen::VectorXd t = y[b];
    if (g > 0) t.noalias() -= f.w[b] * xg;
    f.l[b].triangularView<Eigen::Lower>().transpose().solveInPlace(t);
    for (std::size_t i = 0; i < idx.size(); ++i) out[idx[i]] = t[i];
  }
  return out;
}

Eigen::MatrixXd SpdFactor::Inverse() const {
  if (dense_) return dense_->Inverse();
  // With S = Ls Ls^T and U_b = L_b^-T W_b Ls^-T (the local rows of H^-1 restricted to the
  // border, whitened):  C_gg = S^-1,  C_bg = -U_b Ls^-1,  C_bc = delta_bc D_b^-1 + U_b U_c^T.
  const Blocks& f = *blocks_;
  const auto& border = f.s.border;
  const int g = static_cast<int>(border.size());
  const int nblocks = static_cast<int>(f.s.blocks.size());
  // Local indices in block order, and the offsets of the blocks.
  std::vector<int> perm;
  std::vector<int> offset(nblocks + 1, 0);
  for (int b = 0; b < nblocks; ++b) {
    perm.insert(perm.end(), f.s.blocks[b].begin(), f.s.blocks[b].end());
    offset[b + 1] = static_cast<int>(perm.size());
  }
  const int nl = static_cast<int>(perm.size());
  Eigen::MatrixXd out(n_, n_);
  Eigen::MatrixXd u(nl, g), e(nl, g);
  if (g > 0) {
    const Eigen::MatrixXd cgg = f.schur->Inverse();
    for (int c = 0; c < g; ++c)
      for (int r = 0; r < g; ++r) out(border[r], border[c]) = cgg(r, c);
    const auto ls = f.schur->matrixL().triangularView<Eigen::Lower>();
    tbb::parallel_for(tbb::blocked_range<int>(0, nblocks, 1),
                      [&](const tbb::blocked_range<int>& r) {
                        for (int b = r.begin(); b < r.end(); ++b) {
                          Eigen::MatrixXd t = f.w[b];
                          ls.transpose().solveInPlace<Eigen::OnTheRight>(t);  // W_b Ls^-T
                          f.l[b].triangularView<Eigen::Lower>().transpose().solveInPlace(t);  // U_b
                          u.middleRows(offset[b], t.rows()) = t;
                          ls.solveInPlace<Eigen::OnTheRight>(t);  // U_b Ls^-1
                          e.middleRows(offset[b], t.rows()) = -t;
                        }
                      });
    for (int c = 0; c < g; ++c)
      for (int i = 0; i < nl; ++i) {
        out(perm[i], border[c]) = e(i, c);
        out(border[c], perm[i]) = e(i, c);
      }
  }
  // Local x local: U U^T by lower tiles, plus D_b^-1 on the diagonal blocks.
  constexpr int kTile = 128;
  const int ntiles = (nl + kTile - 1) / kTile;
  tbb::parallel_for(tbb::blocked_range<int>(0, ntiles * ntiles, 1),
                    [&](const tbb::blocked_range<int>& r) {
                      Eigen::MatrixXd tile;
                      for (int t = r.begin(); t < r.end(); ++t) {
                        const int ti = t / ntiles, tj = t % ntiles;
                        if (tj > ti) continue;
                        const int i0 = ti * kTile, j0 = tj * kTile;
                        const int ni = std::min(kTile, nl - i0), nj = std::min(kTile, nl - j0);
                        if (g > 0)
                          tile.noalias() = u.middleRows(i0, ni) * u.middleRows(j0, nj).transpose();
                        else
                          tile.setZero(ni, nj);
                        for (int jj = 0; jj < nj; ++jj)
                          for (int ii = 0; ii < ni; ++ii) {
                            out(perm[i0 + ii], perm[j0 + jj]) = tile(ii, jj);
                            out(perm[j0 + jj], perm[i0 + ii]) = tile(ii, jj);
                          }
                      }
                    });
  tbb::parallel_for(tbb::blocked_range<int>(0, nblocks, 1), [&](const tbb::blocked_range<int>& r) {
    for (int b = r.begin(); b < r.end(); ++b) {
      const auto& idx = f.s.blocks[b];
      const int nb = static_cast<int>(idx.size());
      Eigen::MatrixXd linv = Eigen::MatrixXd::Identity(nb, nb);
      f.l[b].triangularView<Eigen::Lower>().solveInPlace(linv);
      const Eigen::MatrixXd dinv = linv.transpose() * linv;
      for (int j = 0; j < nb; ++j)
        for (int i = 0; i < nb; ++i) out(idx[i], idx[j]) += dinv(i, j);
    }
  });
  return out;
}

namespace {

// diag(A^-1) from the lower Cholesky factor l of A: (A^-1)_jj = sum_k (L^-1)_kj^2, column j of
// L^-1 being zero above row j. Fixed column blocks (one task each), L^-1 never stored whole: about
// n^3/3 flops, half of Inverse() (whose X^T X product is skipped).
Eigen::VectorXd InverseDiagonalFromFactor(const Eigen::MatrixXd& l) {
  const Eigen::Index n = l.rows();
  constexpr Eigen::Index kBlock = 128;
  const Eigen::Index nblocks = (n + kBlock - 1) / kBlock;
  Eigen::VectorXd d(n);
  tbb::parallel_for(
      tbb::blocked_range<Eigen::Index>(0, nblocks, 1),
      [&](const tbb::blocked_range<Eigen::Index>& r) {
        for (Eigen::Index k = r.begin(); k < r.end(); ++k) {
          const Eigen::Index j0 = k * kBlock, jb = std::min(kBlock, n - j0);
          Eigen::MatrixXd cols = Eigen::MatrixXd::Zero(n - j0, jb);
          cols.topRows(jb).setIdentity();
          l.block(j0, j0, n - j0, n - j0).triangularView<Eigen::Lower>().solveInPlace(cols);
          d.segment(j0, jb) = cols.colwise().squaredNorm().transpose();
        }
      });
  return d;
}

}  // namespace

void SpdFactor::SelectedInverse(const std::vector<int>& cols, Eigen::VectorXd* diagonal,
                                Eigen::MatrixXd* columns) const {
  for (int c : cols)
    if (c < 0 || c >= n_)
      throw std::invalid_argument("SpdFactor::SelectedInverse: column " + std::to_string(c) +
                                  " is outside [0, " + std::to_string(n_) + ")");
  const int ncols = static_cast<int>(cols.size());
  if (columns) columns->resize(n_, ncols);
  if (dense_) {
    if (n_ < kMinStructuredSize) {
      // Milliseconds either way: the full inverse, so that the selected entries are bitwise those
      // of Inverse() (a fit's errors do not depend on the covariance extent for small models).
      const Eigen::MatrixXd inv = dense_->Inverse();
      if (diagonal) *diagonal = inv.diagonal();
      if (columns)
        for (int k = 0; k < ncols; ++k) columns->col(k) = inv.col(cols[k]);
      return;
    }
    if (diagonal) *diagonal = InverseDiagonalFromFactor(dense_->matrixL());
    if (columns)
      tbb::parallel_for(tbb::blocked_range<int>(0, ncols, 1),
                        [&](const tbb::blocked_range<int>& r) {
                          for (int k = r.begin(); k < r.end(); ++k)
                            columns->col(k) = dense_->Solve(Eigen::VectorXd::Unit(n_, cols[k]));
                        });
    return;
  }
  // Structured: with S = Ls Ls^T and U_b = L_b^-T W_b Ls^-T (as in Inverse()),
  //   C_gg = S^-1,  C_bg = -U_b Ls^-1,  C_bc = delta_bc D_b^-1 + U_b U_c^T,
  // so diag(C_bb) = diag(D_b^-1) + the squared row norms of U_b (n_b^2 g, not n_b n_local g). A
  // column of C costs a triangular solve with Ls (g^2) and one pass over U (n_local g); -U Ls^-1
  // is not formed (n_local g^2).
  const Blocks& f = *blocks_;
  const auto& border = f.s.border;
  const int g = static_cast<int>(border.size());
  const int nblocks = static_cast<int>(f.s.blocks.size());
  const bool keep = columns != nullptr && ncols > 0;  // U_b is needed after the loop
  Eigen::MatrixXd cgg;
  if (g > 0) cgg = f.schur->Inverse();
  std::vector<Eigen::MatrixXd> u(nblocks);
  Eigen::VectorXd diag(n_);
  for (int c = 0; c < g; ++c) diag[border[c]] = cgg(c, c);
  const auto ls =
      f.schur->matrixL().triangularView<Eigen::Lower>();  // g x g (0 x 0 without a border)
  tbb::parallel_for(tbb::blocked_range<int>(0, nblocks, 1), [&](const tbb::blocked_range<int>& r) {
    for (int b = r.begin(); b < r.end(); ++b) {
      const auto& idx = f.s.blocks[b];
      const int nb = static_cast<int>(idx.size());
      Eigen::MatrixXd linv = Eigen::MatrixXd::Identity(nb, nb);
      f.l[b].triangularView<Eigen::Lower>().solveInPlace(linv);
      Eigen::VectorXd d = linv.colwise().squaredNorm().transpose();  // diag(D_b^-1)
      if (g > 0) {
        Eigen::MatrixXd t = f.w[b];
        ls.transpose().solveInPlace<Eigen::OnTheRight>(t);                  // W_b Ls^-T
        f.l[b].triangularView<Eigen::Lower>().transpose().solveInPlace(t);  // U_b
        d += t.rowwise().squaredNorm();
        if (keep) u[b] = std::move(t);
      }
      for (int i = 0; i < nb; ++i) diag[idx[i]] = d[i];
    }
  });
  if (diagonal) *diagonal = std::move(diag);
  if (!keep) return;
  // Where every index lives: its block (-1 for the border) and its position there.
  std::vector<int> block_of(n_, -1), pos(n_, -1);
  for (int c = 0; c < g; ++c) pos[border[c]] = c;
  for (int b = 0; b < nblocks; ++b)
    for (std::size_t i = 0; i < f.s.blocks[b].size(); ++i) {
      block_of[f.s.blocks[b][i]] = b;
      pos[f.s.blocks[b][i]] = static_cast<int>(i);
    }
  tbb::parallel_for(tbb::blocked_range<int>(0, ncols, 1), [&](const tbb::blocked_range<int>& r) {
    for (int k = r.begin(); k < r.end(); ++k) {
      auto out = columns->col(k);
      const int j = cols[k], bj = block_of[j], pj = pos[j];
      if (bj < 0) {
        // A border column: C_gg e_pj, and C_bg e_pj = -U_b (Ls^-1 e_pj).
        for (int c = 0; c < g; ++c) out[border[c]] = cgg(c, pj);
        Eigen::VectorXd v = Eigen::VectorXd::Unit(g, pj);
        ls.solveInPlace(v);
        for (int b = 0; b < nblocks; ++b) {
          const auto& idx = f.s.blocks[b];
          const Eigen::VectorXd cb = -(u[b] * v);
          for (std::size_t i = 0; i < idx.size(); ++i)
            out[idx[i]] = cb[static_cast<Eigen::Index>(i)];
        }
        continue;
      }
      // A local column of block bj: C_gj = -Ls^-T U_bj^T e_pj; C_bj = U_b U_bj^T e_pj (+ D_bj^-1 e_pj).
      Eigen::VectorXd uj;
      if (g > 0) {
        uj = u[bj].row(pj).transpose();
        Eigen::VectorXd z = uj;
        ls.transpose().solveInPlace(z);
        for (int c = 0; c < g; ++c) out[border[c]] = -z[c];
      }
      for (int b = 0; b < nblocks; ++b) {
        const auto& idx = f.s.blocks[b];
        const int nb = static_cast<int>(idx.size());
        Eigen::VectorXd v = g > 0 ? Eigen::VectorXd(u[b] * uj) : Eigen::VectorXd::Zero(nb);
        if (b == bj) {
          Eigen::VectorXd dj = Eigen::VectorXd::Unit(nb, pj);
          f.l[b].triangularView<Eigen::Lower>().solveInPlace(dj);
          f.l[b].triangularView<Eigen::Lower>().transpose().solveInPlace(dj);
          v += dj;
        }
        for (int i = 0; i < nb; ++i) out[idx[i]] = v[i];
      }
    }
  });
}

Eigen::VectorXd SpdFactor::InverseDiagonal() const {
  Eigen::VectorXd d;
  SelectedInverse({}, &d, nullptr);
  return d;
}

Eigen::MatrixXd SpdFactor::InverseColumns(const std::vector<int>& cols) const {
  Eigen::MatrixXd c;
  SelectedInverse(cols, nullptr, &c);
  return c;
}

ScaledConditioning EstimateScaledConditioning(const Eigen::MatrixXd& a, const SpdFactor& f,
                                              int steps) {
  ScaledConditioning out;
  const Eigen::Index n = a.rows();
  if (n == 0 || !f.ok()) return out;
  // s_i = 1 / sqrt(A_ii) (> 0: A is positive definite). As v = s .* (A (s .* v)),
  // As^-1 v = (A^-1 (v ./ s)) ./ s.
  const Eigen::VectorXd s = a.diagonal().cwiseSqrt().cwiseInverse();
  // A v as column dot products (A symmetric, both triangles stored): contiguous reads, one task
  // per column range, each entry computed by one task (bitwise independent of the thread count).
  auto sym_times = [&](const Eigen::VectorXd& v) {
    Eigen::VectorXd out(n);
    tbb::parallel_for(tbb::blocked_range<Eigen::Index>(0, n, 64),
                      [&](const tbb::blocked_range<Eigen::Index>& r) {
                        for (Eigen::Index j = r.begin(); j < r.end(); ++j) out[j] = a.col(j).dot(v);
                      });
    return out;
  };
  // Fixed seed: the estimate (and so the status) is reproducible bit for bit.
  std::mt19937_64 rng(0x5eed1e55u);
  std::uniform_real_distribution<double> unif(-1.0, 1.0);
  Eigen::VectorXd v(n);
  for (Eigen::Index i = 0; i < n; ++i) v[i] = unif(rng);
  v.normalize();
  Eigen::VectorXd w;
  double theta = 0.0;  // Rayleigh quotient of As^-1 (<= 1 / lambda_min)
  for (int k = 0; k < std::max(steps, 1); ++k) {
    w = f.Solve(v.cwiseQuotient(s)).cwiseQuotient(s);
    theta = v.dot(w);
    const double norm = w.norm();
    if (!std::isfinite(norm) || !(norm > 0)) break;
    v = w / norm;
  }
  out.lambda_min = theta > 0 && std::isfinite(theta) ? 1.0 / theta : 0.0;
  out.direction = v;
  // Power iteration for lambda_max from the all-ones vector (As has a unit diagonal, so
  // 1 <= lambda_max <= n; the all-ones start overlaps the top eigenvector of a positively
  // correlated block).
  Eigen::VectorXd u = Eigen::VectorXd::Constant(n, 1.0 / std::sqrt(static_cast<double>(n)));
  double mu = 1.0;
  for (int k = 0; k < std::max(steps, 1); ++k) {
    const Eigen::VectorXd z = s.cwiseProduct(sym_times(s.cwiseProduct(u)));
    mu = std::max(mu, u.dot(z));
    const double norm = z.norm();
    if (!std::isfinite(norm) || !(norm > 0)) break;
    u = z / norm;
  }
  out.lambda_max = mu;
  return out;
}

std::string DescribeDirection(const Eigen::VectorXd& v, const std::vector<std::string>& names,
                              int max_terms) {
  std::vector<int> idx(static_cast<std::size_t>(v.size()));
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int a, int b) { return std::abs(v[a]) > std::abs(v[b]); });
  if (idx.empty()) return "";
  const double sign = v[idx[0]] < 0 ? -1.0 : 1.0;
  std::string out;
  for (int k = 0; k < static_cast<int>(idx.size()) && k < max_terms; ++k) {
    const double c = sign * v[idx[k]];
    if (k > 0 && std::abs(c) < 0.1) break;
    char buf[32];
    std::snprintf(buf, sizeof(buf), " (%+.2f)", c);
    if (!out.empty()) out += ", ";
    if (idx[k] < static_cast<int>(names.size())) {
      out += names[idx[k]];
    } else {
      out += '#';
      out += std::to_string(idx[k]);
    }
    out += buf;
  }
  return out;
}

}  // namespace lepus::engine::detail
