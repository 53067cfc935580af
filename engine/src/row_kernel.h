// The yield of one (bin, process) row and its exact first and second derivatives, for every
// EntryKind (docs/histfactory.md "Modifiers as implemented", docs/likelihood.md section 2).
//
// Each entry j of a row contributes a value v_j(theta) of one of three roles:
//   exponent  (rabbit log-normal, normsys):   lambda gets a factor exp(v_j)
//   additive  (rabbit normal, histosys):      v_j is added to the nominal before the factors
//   factor    (normfactor, lumi, gammas):     lambda gets a factor v_j = theta
// so that lambda = A exp(E) P with A = base + sum_add v, E = sum_exp v, P = prod_fac v. The POI of
// a signal row is a factor (log-normal models) or an additive entry r * norm with base 0 (normal
// models: rabbit scales only the nominal). EntryValue is the one definition of every kind's
// v, dv/dtheta and d2v/dtheta2; GeneralRow combines them into lambda, d lambda / dx per entry
// and d2 lambda / dx dx per entry pair. Rows whose entries are all kModel keep the vectorised
// rabbit loops in likelihood.cc and hessvec.cc, which evaluate kModel entries with the same
// formulas (interpolation.h).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "interpolation.h"
#include "lepus/engine/model.h"

namespace lepus::engine::detail {

enum class EntryRole : std::uint8_t { kExponent, kAdditive, kFactor };

struct EntryValue {
  double v = 0.0, d1 = 0.0, d2 = 0.0;
};

inline EntryRole RoleOf(EntryKind kind, SystematicType type) {
  switch (kind) {
    case EntryKind::kModel:
      return type == SystematicType::kLogNormal ? EntryRole::kExponent : EntryRole::kAdditive;
    case EntryKind::kNormsysCode1:
    case EntryKind::kNormsysCode4:
      return EntryRole::kExponent;
    case EntryKind::kHistosysCode0:
    case EntryKind::kHistosysCode4p:
      return EntryRole::kAdditive;
    case EntryKind::kFactor:
      return EntryRole::kFactor;
  }
  return EntryRole::kFactor;
}

// The numbers a normsys entry evaluates with: ln hi, ln lo, then the coefficients a_1..a_6 of
// HistFactory's code 4 polynomial f(theta) = 1 + sum_i a_i theta^i on |theta| < 1, fixed by matching the exponential extrapolation's value, slope and
// curvature at theta = +-1: f(1) = hi, f(-1) = lo, f'(1) = hi ln hi, f'(-1) = -lo ln lo,
// f''(1) = hi ln^2 hi, f''(-1) = lo ln^2 lo.
std::array<double, 8> NormsysCoefficients(double hi, double lo);

// v, dv/dtheta, d2v/dtheta2 of one entry (kModel: theta * (avg + alpha(theta) * halfdiff)).
// coef: for normsys entries ln hi, ln lo and (code 4) the six coefficients, or null (then the
// logarithms are taken here and code 4 needs them: tests only).
inline EntryValue EvalEntry(EntryKind kind, double up, double down, double avg, double halfdiff,
                            double theta, const double* coef) {
  EntryValue e;
  switch (kind) {
    case EntryKind::kModel: {
      const AsymInterp a = AsymmetricAlpha(theta);
      e.v = theta * (avg + a.alpha * halfdiff);
      e.d1 = avg + (a.alpha + theta * a.dalpha) * halfdiff;
      e.d2 = (2 * a.dalpha + theta * a.d2alpha) * halfdiff;
      return e;
    }
    case EntryKind::kNormsysCode4:
      if (std::abs(theta) < 1.0) {
        // f = 1 + sum_i a_i theta^i and its first two derivatives.
        double pw[7];
        pw[0] = 1.0;
        for (int i = 1; i <= 6; ++i) pw[i] = pw[i - 1] * theta;
        double f = 1.0, f1 = 0.0, f2 = 0.0;
        for (int i = 1; i <= 6; ++i) {
          const double a = coef[i + 1];
          f += a * pw[i];
          f1 += i * a * pw[i - 1];
          if (i >= 2) f2 += i * (i - 1) * a * pw[i - 2];
        }
        if (!(f > 0)) {
          e.v = e.d1 = e.d2 = std::numeric_limits<double>::quiet_NaN();
          return e;
        }
        e.v = std::log(f);
        e.d1 = f1 / f;
        e.d2 = f2 / f - e.d1 * e.d1;
        return e;
      }
      [[fallthrough]];
    case EntryKind::kNormsysCode1:
      if (theta >= 0) {
        e.d1 = coef ? coef[0] : std::log(up);
      } else {
        e.d1 = coef ? -coef[1] : -std::log(down);
      }
      e.v = theta * e.d1;
      return e;
    case EntryKind::kHistosysCode4p:
      if (std::abs(theta) <= 1.0) {
        // delta = theta S + A theta^2 (15 - 10 theta^2 + 3 theta^4), S = (up - down) / 2,
        // A = (up + down) / 16 (up = hi - nom, down = lo - nom).
        const double s = 0.5 * (up - down), a = (up + down) / 16.0;
        const double t2 = theta * theta;
        e.v = theta * s + a * t2 * (15.0 + t2 * (-10.0 + 3.0 * t2));
        e.d1 = s + a * theta * (30.0 + t2 * (-40.0 + 18.0 * t2));
        e.d2 = a * (30.0 + t2 * (-120.0 + 90.0 * t2));
        return e;
      }
      [[fallthrough]];
    case EntryKind::kHistosysCode0:
      e.d1 = theta >= 0 ? up : -down;
      e.v = theta * e.d1;
      return e;
    case EntryKind::kFactor:
      e.v = theta;
      e.d1 = 1.0;
      return e;
  }
  return e;
}

// One general row at a point: lambda and, per entry (the POI of a signal row first when there is
// one), its parameter index, dlambda/dx through that entry (g) and, at level 2, the matrix
// h(j, k) = d2 lambda / dx_{col j} dx_{col k} restricted to entries j and k (symmetric; the
// second derivative of lambda in the parameters is the sum of h over the entry pairs of each
// parameter pair, so repeated columns add up).
struct GeneralRowEval {
  double lambda = 0.0;
  int n = 0;
  std::vector<int> col;
  std::vector<double> g;
  Eigen::MatrixXd h;
};

// Inputs of GeneralRow that do not depend on the row: the point's POI values and theta.
struct GeneralRowInputs {
  const Tensor* tensor = nullptr;
  SystematicType type = SystematicType::kLogNormal;
  int npoi = 0;
  const double* r = nullptr;  // [npoi] mu(x), dmu/dx, d2mu/dx2
  const double* dr = nullptr;
  const double* d2r = nullptr;
  const double* theta = nullptr;  // [nsyst]
  // Per entry: offset into coef (6 per kNormsysCode4 entry), -1 otherwise.
  const std::int64_t* coef_index = nullptr;
  const double* coef = nullptr;
};

void GeneralRow(const GeneralRowInputs& in, std::int64_t row, int level, GeneralRowEval* out);

}  // namespace lepus::engine::detail
