// General rows: lambda = A exp(E) P and its exact derivatives (row_kernel.h).
#include "row_kernel.h"

#include <Eigen/LU>

namespace lepus::engine::detail {

std::array<double, 8> NormsysCoefficients(double hi, double lo) {
  // Rows: the conditions on f(theta) - 1 = sum_i a_i theta^i at theta = 1 and -1 (value, slope,
  // curvature); the matrix is fixed, so its inverse is computed once.
  static const Eigen::Matrix<double, 6, 6> inverse = [] {
    Eigen::Matrix<double, 6, 6> m;
    for (int i = 1; i <= 6; ++i) {
      const double sp = 1.0, sm = (i % 2 == 0) ? 1.0 : -1.0;  // (+1)^i, (-1)^i
      m(0, i - 1) = sp;
      m(1, i - 1) = sm;
      m(2, i - 1) = i * sp;
      m(3, i - 1) = -i * sm;  // i (-1)^(i-1)
      m(4, i - 1) = i * (i - 1) * sp;
      m(5, i - 1) = i * (i - 1) * sm;  // i (i-1) (-1)^(i-2)
    }
    return Eigen::Matrix<double, 6, 6>(m.fullPivLu().inverse());
  }();
  const double lh = std::log(hi), ll = std::log(lo);
  Eigen::Matrix<double, 6, 1> b;
  b << hi - 1.0, lo - 1.0, hi * lh, -lo * ll, hi * lh * lh, lo * ll * ll;
  const Eigen::Matrix<double, 6, 1> a = inverse * b;
  return {lh, ll, a[0], a[1], a[2], a[3], a[4], a[5]};
}

void GeneralRow(const GeneralRowInputs& in, std::int64_t row, int level, GeneralRowEval* out) {
  const Tensor& t = *in.tensor;
  const std::int64_t i0 = t.row_start[row], i1 = t.row_start[row + 1];
  const int p = t.row_proc[row];
  const bool poi = p < in.npoi;
  const bool lognormal = in.type == SystematicType::kLogNormal;
  const bool kinds = !t.entry_kind.empty();
  const int n = static_cast<int>(i1 - i0) + (poi ? 1 : 0);

  // Entry values and roles (the POI first).
  thread_local std::vector<EntryRole> role;
  thread_local std::vector<double> v, d1, d2;
  role.resize(n);
  v.resize(n);
  d1.resize(n);
  d2.resize(n);
  double base = t.norm[row];
  int k = 0;
  if (level >= 1) out->col.resize(n);
  if (poi) {
    const double m0 = lognormal ? 1.0 : t.norm[row];
    role[0] = lognormal ? EntryRole::kFactor : EntryRole::kAdditive;
    v[0] = in.r[p] * m0;
    d1[0] = in.dr[p] * m0;
    d2[0] = in.d2r[p] * m0;
    if (!lognormal) base = 0.0;
    if (level >= 1) out->col[0] = p;
    k = 1;
  }
  double a_sum = base, e_sum = 0.0, prod = 1.0;
  for (std::int64_t i = i0; i < i1; ++i, ++k) {
    const int s = t.syst[i];
    const EntryKind kind = kinds ? t.entry_kind[i] : EntryKind::kModel;
    const double hd = t.logk_halfdiff.empty() ? 0.0 : t.logk_halfdiff[i];
    const double up = kinds ? t.entry_up[i] : 0.0, down = kinds ? t.entry_down[i] : 0.0;
    const double* coef =
        in.coef_index && in.coef_index[i] >= 0 ? in.coef + in.coef_index[i] : nullptr;
    const EntryValue ev = EvalEntry(kind, up, down, t.logk_avg[i], hd, in.theta[s], coef);
    role[k] = RoleOf(kind, in.type);
    v[k] = ev.v;
    d1[k] = ev.d1;
    d2[k] = ev.d2;
    if (level >= 1) out->col[k] = in.npoi + s;
  }
  for (int j = 0; j < n; ++j) {
    switch (role[j]) {
      case EntryRole::kAdditive:
        a_sum += v[j];
        break;
      case EntryRole::kExponent:
        e_sum += v[j];
        break;
      case EntryRole::kFactor:
        prod *= v[j];
        break;
    }
  }
  const double ee = std::exp(e_sum);
  out->lambda = a_sum * ee * prod;
  out->n = n;
  if (level == 0) return;

  // Products of the factors other than j (and other than j and l). With lambda != 0 (no factor
  // at 0 and A != 0) they are P / v_j; otherwise (a normfactor at its lower bound 0) they are
  // multiplied out, so the derivatives stay exact.
  bool regular = out->lambda != 0.0 && std::isfinite(out->lambda);
  auto prod_without = [&](int j, int l) {
    double q = 1.0;
    for (int m = 0; m < n; ++m)
      if (role[m] == EntryRole::kFactor && m != j && m != l) q *= v[m];
    return q;
  };
  thread_local std::vector<double> pm, f1;
  pm.assign(n, 0.0);
  f1.resize(n);
  for (int j = 0; j < n; ++j)
    if (role[j] == EntryRole::kFactor) pm[j] = regular ? prod / v[j] : prod_without(j, -1);
  // F_j = d lambda / d v_j.
  for (int j = 0; j < n; ++j) {
    switch (role[j]) {
      case EntryRole::kAdditive:
        f1[j] = ee * prod;
        break;
      case EntryRole::kExponent:
        f1[j] = out->lambda;
        break;
      case EntryRole::kFactor:
        f1[j] = a_sum * ee * pm[j];
        break;
    }
  }
  out->g.resize(n);
  for (int j = 0; j < n; ++j) out->g[j] = f1[j] * d1[j];
  if (level < 2) return;
  out->h.resize(n, n);
  if (regular) {
    // F_jk = F_j F_k / lambda for every pair of roles except additive-additive (0) and the
    // diagonal of additive and factor entries (0): h = g g^T / lambda with those entries zeroed,
    // plus F_j v_j'' on the diagonal.
    const double inv = 1.0 / out->lambda;
    for (int j = 0; j < n; ++j) {
      const double gj = out->g[j] * inv;
      for (int l = 0; l < j; ++l) {
        const double hjl = (role[j] == EntryRole::kAdditive && role[l] == EntryRole::kAdditive)
                               ? 0.0
                               : gj * out->g[l];
        out->h(j, l) = hjl;
        out->h(l, j) = hjl;
      }
      out->h(j, j) = (role[j] == EntryRole::kExponent ? gj * out->g[j] : 0.0) + f1[j] * d2[j];
    }
    return;
  }
  // F_jk = d2 lambda / d v_j d v_k, multiplied out.
  for (int j = 0; j < n; ++j) {
    for (int l = 0; l <= j; ++l) {
      double f2 = 0.0;
      const EntryRole rj = role[j], rl = role[l];
      if (j == l) {
        f2 = rj == EntryRole::kExponent ? out->lambda : 0.0;
      } else if (rj == EntryRole::kAdditive && rl == EntryRole::kAdditive) {
        f2 = 0.0;
      } else if (rj == EntryRole::kExponent && rl == EntryRole::kExponent) {
        f2 = out->lambda;
      } else if (rj == EntryRole::kFactor && rl == EntryRole::kFactor) {
        f2 = a_sum * ee * prod_without(j, l);
      } else if (rj == EntryRole::kAdditive || rl == EntryRole::kAdditive) {
        // additive with exponent (ee P) or with factor m (ee P_-m)
        const int other = rj == EntryRole::kAdditive ? l : j;
        f2 = role[other] == EntryRole::kFactor ? ee * pm[other] : ee * prod;
      } else {
        // exponent with factor m: A ee P_-m
        const int fac = rj == EntryRole::kFactor ? j : l;
        f2 = a_sum * ee * pm[fac];
      }
      double hjl = f2 * d1[j] * d1[l];
      if (j == l) hjl += f1[j] * d2[j];
      out->h(j, l) = hjl;
      out->h(l, j) = hjl;
    }
  }
}

}  // namespace lepus::engine::detail
