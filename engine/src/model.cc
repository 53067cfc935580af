#include "lepus/engine/model.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace lepus::engine {

std::string ToString(SystematicType type) {
  return type == SystematicType::kLogNormal ? "log_normal" : "normal";
}

SystematicType SystematicTypeFromString(const std::string& text) {
  if (text == "log_normal" || text == "lognormal") return SystematicType::kLogNormal;
  if (text == "normal") return SystematicType::kNormal;
  throw std::invalid_argument("systematic type is \"" + text +
                              "\", but must be \"log_normal\" or \"normal\"");
}

std::string ToString(EntryKind kind) {
  switch (kind) {
    case EntryKind::kModel:
      return "model";
    case EntryKind::kNormsysCode1:
      return "normsys_code1";
    case EntryKind::kNormsysCode4:
      return "normsys_code4";
    case EntryKind::kHistosysCode0:
      return "histosys_code0";
    case EntryKind::kHistosysCode4p:
      return "histosys_code4p";
    case EntryKind::kFactor:
      return "factor";
  }
  return "unknown";
}

std::string ToString(ConstraintKind kind) {
  return kind == ConstraintKind::kPoisson ? "poisson" : "gaussian";
}

std::string ToString(StorageKind kind) { return kind == StorageKind::kDense ? "dense" : "sparse"; }

Tensor Tensor::FromDense(std::int64_t nbins_full, int nproc, int nsyst,
                         const std::vector<double>& norm, const std::vector<double>& logk_avg,
                         const std::vector<double>& logk_halfdiff) {
  const std::size_t ncell = static_cast<std::size_t>(nbins_full) * nproc;
  if (norm.size() != ncell)
    throw std::invalid_argument(
        "Tensor::FromDense: norm has " + std::to_string(norm.size()) +
        " entries, but must have nbins_full*nproc = " + std::to_string(ncell));
  if (logk_avg.size() != ncell * nsyst)
    throw std::invalid_argument("Tensor::FromDense: logk_avg has " +
                                std::to_string(logk_avg.size()) + " entries, but must have " +
                                std::to_string(ncell * nsyst));
  const bool asym = !logk_halfdiff.empty();
  if (asym && logk_halfdiff.size() != ncell * nsyst)
    throw std::invalid_argument("Tensor::FromDense: logk_halfdiff has " +
                                std::to_string(logk_halfdiff.size()) + " entries, but must have " +
                                std::to_string(ncell * nsyst) + " or 0");
  Tensor t;
  t.row_start.push_back(0);
  for (std::size_t cell = 0; cell < ncell; ++cell) {
    const double* a = logk_avg.data() + cell * nsyst;
    const double* h = asym ? logk_halfdiff.data() + cell * nsyst : nullptr;
    bool any = false;
    for (int s = 0; s < nsyst && !any; ++s) any = a[s] != 0.0 || (h && h[s] != 0.0);
    if (norm[cell] == 0.0 && !any) continue;
    t.row_bin.push_back(static_cast<std::int32_t>(cell / nproc));
    t.row_proc.push_back(static_cast<std::int32_t>(cell % nproc));
    t.norm.push_back(norm[cell]);
    for (int s = 0; s < nsyst; ++s) {
      if (a[s] == 0.0 && !(h && h[s] != 0.0)) continue;
      t.syst.push_back(s);
      t.logk_avg.push_back(a[s]);
      if (asym) t.logk_halfdiff.push_back(h[s]);
    }
    t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
  }
  return t;
}

namespace {

template <typename T>
std::string Str(const T& v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace

bool Model::IsValid(std::string* error) const {
  auto fail = [&](const std::string& msg) {
    if (error) *error = msg;
    return false;
  };
  const int nproc = num_processes();
  const int nsyst = num_systematics();
  if (nproc <= 0) return fail("processes is empty, but must list at least one process");
  if (num_signals < 0 || num_signals > nproc)
    return fail("num_signals is " + Str(num_signals) + ", but must be in [0, " + Str(nproc) + "]");
  if (nbins <= 0) return fail("nbins is " + Str(nbins) + ", but must be > 0");
  if (nbins_full < nbins)
    return fail("nbins_full is " + Str(nbins_full) + ", but must be >= nbins = " + Str(nbins));
  if (static_cast<int>(constraint_weights.size()) != nsyst)
    return fail("constraint_weights has " + Str(constraint_weights.size()) +
                " entries, but must have one per systematic (" + Str(nsyst) + ")");
  for (int s = 0; s < nsyst; ++s)
    if (!std::isfinite(constraint_weights[s]) || constraint_weights[s] < 0)
      return fail("constraint_weights[" + Str(s) + "] is " + Str(constraint_weights[s]) +
                  ", but must be finite and >= 0");
  auto check_size = [&](std::size_t n, const char* name) {
    return n == 0 || static_cast<int>(n) == nsyst ||
           fail(std::string(name) + " has " + Str(n) +
                " entries, but must be empty or have one per systematic (" + Str(nsyst) + ")");
  };
  if (!check_size(constraint_kinds.size(), "constraint_kinds") ||
      !check_size(global_observables.size(), "global_observables") ||
      !check_size(initial_values.size(), "initial_values") ||
      !check_size(lower_bounds.size(), "lower_bounds") ||
      !check_size(upper_bounds.size(), "upper_bounds") || !check_size(fixed.size(), "fixed"))
    return false;
  for (int s = 0; s < nsyst; ++s) {
    const std::string name = " (" + systematics[s] + ")";
    if (!constraint_kinds.empty() && constraint_kinds[s] != ConstraintKind::kGaussian &&
        constraint_kinds[s] != ConstraintKind::kPoisson)
      return fail("constraint_kinds[" + Str(s) + "]" + name + " is " +
                  Str(static_cast<int>(constraint_kinds[s])) + ", but must be gaussian or poisson");
    const bool poisson =
        !constraint_kinds.empty() && constraint_kinds[s] == ConstraintKind::kPoisson;
    if (poisson && !(constraint_weights[s] > 0))
      return fail("constraint_weights[" + Str(s) + "]" + name + " is " +
                  Str(constraint_weights[s]) + ", but a Poisson constraint needs tau > 0");
    if (!global_observables.empty() &&
        (!std::isfinite(global_observables[s]) || (poisson && global_observables[s] < 0)))
      return fail("global_observables[" + Str(s) + "]" + name + " is " +
                  Str(global_observables[s]) +
                  (poisson ? ", but must be finite and >= 0 (Poisson constraint)"
                           : ", but must be finite"));
    if (!initial_values.empty() && !std::isfinite(initial_values[s]))
      return fail("initial_values[" + Str(s) + "]" + name + " is " + Str(initial_values[s]) +
                  ", but must be finite");
    const double lo =
        lower_bounds.empty() ? -std::numeric_limits<double>::infinity() : lower_bounds[s];
    const double hi =
        upper_bounds.empty() ? std::numeric_limits<double>::infinity() : upper_bounds[s];
    if (std::isnan(lo) || std::isnan(hi) || !(lo <= hi))
      return fail("bounds of " + systematics[s] + " are [" + Str(lo) + ", " + Str(hi) +
                  "], but must satisfy lower <= upper");
  }
  for (std::size_t i = 0; i < noi_indices.size(); ++i)
    if (noi_indices[i] < 0 || noi_indices[i] >= nsyst)
      return fail("noi_indices[" + Str(i) + "] is " + Str(noi_indices[i]) +
                  ", but must be in [0, " + Str(nsyst) + ")");
  if (!systematic_scales.empty() && static_cast<int>(systematic_scales.size()) != nsyst)
    return fail("systematic_scales has " + Str(systematic_scales.size()) +
                " entries, but must be empty or have " + Str(nsyst));
  if (!systematic_units.empty() && static_cast<int>(systematic_units.size()) != nsyst)
    return fail("systematic_units has " + Str(systematic_units.size()) +
                " entries, but must be empty or have " + Str(nsyst));
  for (const auto& g : groups)
    for (std::size_t i = 0; i < g.members.size(); ++i)
      if (g.members[i] < 0 || g.members[i] >= nsyst)
        return fail("groups[" + g.name + "].members[" + Str(i) + "] is " + Str(g.members[i]) +
                    ", but must be in [0, " + Str(nsyst) + ")");
  if (!channels.empty()) {
    std::int64_t total = 0, unmasked = 0;
    bool seen_masked = false;
    for (const auto& c : channels) {
      if (c.nbins <= 0)
        return fail("channel " + c.name + ": nbins is " + Str(c.nbins) + ", but must be > 0");
      if (!c.axes.empty()) {
        std::int64_t prod = 1;
        for (const auto& ax : c.axes) {
          if (!ax.edges.empty()) {
            if (ax.edges.size() < 2)
              return fail("channel " + c.name + " axis " + ax.name + ": has " +
                          Str(ax.edges.size()) + " edges, but must have at least 2");
            for (std::size_t i = 1; i < ax.edges.size(); ++i)
              if (!(ax.edges[i] > ax.edges[i - 1]))
                return fail("channel " + c.name + " axis " + ax.name + ": edges[" + Str(i) +
                            "] is " + Str(ax.edges[i]) + ", but must be > edges[" + Str(i - 1) +
                            "] = " + Str(ax.edges[i - 1]));
            prod *= static_cast<std::int64_t>(ax.edges.size()) - 1;
          }
        }
        bool all_edges = true;
        for (const auto& ax : c.axes) all_edges = all_edges && !ax.edges.empty();
        if (all_edges && prod != c.nbins)
          return fail("channel " + c.name + ": nbins is " + Str(c.nbins) + ", but the axes have " +
                      Str(prod) + " bins");
      }
      if (c.masked)
        seen_masked = true;
      else if (seen_masked)
        return fail("channel " + c.name +
                    " is unmasked after a masked channel, but masked "
                    "channels must come last");
      total += c.nbins;
      if (!c.masked) unmasked += c.nbins;
    }
    if (unmasked != nbins)
      return fail("channels have " + Str(unmasked) + " unmasked bins, but nbins is " + Str(nbins));
    if (total != nbins_full)
      return fail("channels have " + Str(total) + " bins, but nbins_full is " + Str(nbins_full));
  }
  if (data_obs.size() != nbins)
    return fail("data_obs has " + Str(data_obs.size()) +
                " entries, but must have nbins = " + Str(nbins));
  for (Eigen::Index b = 0; b < data_obs.size(); ++b)
    if (!std::isfinite(data_obs[b]) || data_obs[b] < 0)
      return fail("data_obs[" + Str(b) + "] is " + Str(data_obs[b]) +
                  ", but must be finite and >= 0");
  if (data_var.size() != 0 && data_var.size() != nbins)
    return fail("data_var has " + Str(data_var.size()) +
                " entries, but must have 0 or nbins = " + Str(nbins));
  for (Eigen::Index b = 0; b < data_var.size(); ++b)
    if (!std::isfinite(data_var[b]) || data_var[b] < 0)
      return fail("data_var[" + Str(b) + "] is " + Str(data_var[b]) +
                  ", but must be finite and >= 0");
  if (data_cov_inv.size() != 0) {
    if (data_cov_inv.rows() != nbins || data_cov_inv.cols() != nbins)
      return fail("data_cov_inv is " + Str(data_cov_inv.rows()) + "x" + Str(data_cov_inv.cols()) +
                  ", but must be empty or nbins x nbins = " + Str(nbins) + "x" + Str(nbins));
    if (!data_cov_inv.allFinite()) return fail("data_cov_inv has a non-finite entry");
  }
  {
    const int npar = num_params();
    for (std::size_t e = 0; e < external_terms.size(); ++e) {
      const ExternalTerm& term = external_terms[e];
      const std::string key = "external_terms[" + Str(e) + "] (" + term.name + ")";
      const auto n = static_cast<Eigen::Index>(term.params.size());
      std::vector<char> seen(npar, 0);
      for (std::size_t i = 0; i < term.params.size(); ++i) {
        const int q = term.params[i];
        if (q < 0 || q >= npar)
          return fail(key + ".params[" + Str(i) + "] is " + Str(q) + ", but must be in [0, " +
                      Str(npar) + ")");
        if (seen[q])
          return fail(key + ".params[" + Str(i) + "] is " + Str(q) +
                      ", but parameters must be distinct");
        seen[q] = 1;
      }
      if (term.grad.size() != 0 && term.grad.size() != n)
        return fail(key + ".grad has " + Str(term.grad.size()) + " entries, but must have 0 or " +
                    Str(n));
      if (!term.grad.allFinite()) return fail(key + ".grad has a non-finite entry");
      if (term.hess.size() != 0 && (term.hess.rows() != n || term.hess.cols() != n))
        return fail(key + ".hess is " + Str(term.hess.rows()) + "x" + Str(term.hess.cols()) +
                    ", but must be empty or " + Str(n) + "x" + Str(n));
      for (int k = 0; k < term.hess.outerSize(); ++k)
        for (Eigen::SparseMatrix<double>::InnerIterator it(term.hess, k); it; ++it)
          if (!std::isfinite(it.value())) return fail(key + ".hess has a non-finite entry");
    }
  }
  if (pseudodata.size() != 0 && pseudodata.rows() != nbins)
    return fail("pseudodata has " + Str(pseudodata.rows()) +
                " rows, but must have nbins = " + Str(nbins));
  if (static_cast<Eigen::Index>(pseudodata_names.size()) != pseudodata.cols())
    return fail("pseudodata_names has " + Str(pseudodata_names.size()) +
                " entries, but pseudodata has " + Str(pseudodata.cols()) + " columns");
  for (Eigen::Index i = 0; i < pseudodata.size(); ++i)
    if (!std::isfinite(pseudodata.data()[i]) || pseudodata.data()[i] < 0)
      return fail("pseudodata[" + Str(i) + "] is " + Str(pseudodata.data()[i]) +
                  ", but must be finite and >= 0");
  if (sumw2.rows() != nbins_full || sumw2.cols() != nproc)
    return fail("sumw2 is " + Str(sumw2.rows()) + "x" + Str(sumw2.cols()) +
                ", but must be nbins_full x nproc = " + Str(nbins_full) + "x" + Str(nproc));
  for (Eigen::Index i = 0; i < sumw2.size(); ++i)
    if (!std::isfinite(sumw2.data()[i]) || sumw2.data()[i] < 0)
      return fail("sumw2[" + Str(i) + "] is " + Str(sumw2.data()[i]) +
                  ", but must be finite and >= 0");
  if (sumw.size() != 0 && (sumw.rows() != nbins_full || sumw.cols() != nproc))
    return fail("sumw is " + Str(sumw.rows()) + "x" + Str(sumw.cols()) +
                ", but must be empty or nbins_full x nproc");
  if (!beta_variations.empty()) {
    if (static_cast<int>(beta_variations.size()) != nproc)
      return fail("beta_variations has " + Str(beta_variations.size()) +
                  " processes, but must be empty or have nproc = " + Str(nproc));
    for (int p = 0; p < nproc; ++p) {
      const Eigen::MatrixXd& v = beta_variations[p];
      if (v.rows() != nbins_full || v.cols() != nbins)
        return fail("beta_variations[" + processes[p] + "] is " + Str(v.rows()) + "x" +
                    Str(v.cols()) + ", but must be nbins_full x nbins = " + Str(nbins_full) + "x" +
                    Str(nbins));
      if (!v.allFinite())
        return fail("beta_variations[" + processes[p] + "] has a non-finite entry");
    }
  }

  const Tensor& t = tensor;
  const std::int64_t nrows = t.num_rows();
  if (t.row_bin.size() != static_cast<std::size_t>(nrows) ||
      t.row_proc.size() != static_cast<std::size_t>(nrows) ||
      t.row_start.size() != static_cast<std::size_t>(nrows + 1))
    return fail("tensor: row arrays have inconsistent sizes");
  if (t.row_start[0] != 0 || t.row_start[nrows] != t.num_entries())
    return fail("tensor: row_start must start at 0 and end at the number of entries");
  if (t.logk_avg.size() != t.syst.size())
    return fail("tensor: logk_avg has " + Str(t.logk_avg.size()) + " entries, but syst has " +
                Str(t.syst.size()));
  if (asymmetric != !t.logk_halfdiff.empty() && !(asymmetric && t.syst.empty()))
    return fail(std::string("tensor: logk_halfdiff is ") +
                (t.logk_halfdiff.empty() ? "empty" : "filled") + ", but the model is " +
                (asymmetric ? "asymmetric" : "symmetric"));
  const bool kinds = !t.entry_kind.empty();
  if (kinds && (t.entry_kind.size() != t.syst.size() || t.entry_up.size() != t.syst.size() ||
                t.entry_down.size() != t.syst.size()))
    return fail("tensor: entry_kind, entry_up and entry_down have " + Str(t.entry_kind.size()) +
                ", " + Str(t.entry_up.size()) + " and " + Str(t.entry_down.size()) +
                " entries, but must have " + Str(t.syst.size()) +
                " each (one per entry) when entry kinds are given");
  if (!kinds && (!t.entry_up.empty() || !t.entry_down.empty()))
    return fail("tensor: entry_up / entry_down are filled, but entry_kind is empty");
  if (!t.logk_halfdiff.empty() && t.logk_halfdiff.size() != t.syst.size())
    return fail("tensor: logk_halfdiff has " + Str(t.logk_halfdiff.size()) +
                " entries, but syst has " + Str(t.syst.size()));
  for (std::int64_t r = 0; r < nrows; ++r) {
    if (t.row_bin[r] < 0 || t.row_bin[r] >= nbins_full)
      return fail("tensor: row_bin[" + Str(r) + "] is " + Str(t.row_bin[r]) +
                  ", but must be in [0, " + Str(nbins_full) + ")");
    if (t.row_proc[r] < 0 || t.row_proc[r] >= nproc)
      return fail("tensor: row_proc[" + Str(r) + "] is " + Str(t.row_proc[r]) +
                  ", but must be in [0, " + Str(nproc) + ")");
    if (r > 0 && (t.row_bin[r] < t.row_bin[r - 1] ||
                  (t.row_bin[r] == t.row_bin[r - 1] && t.row_proc[r] <= t.row_proc[r - 1])))
      return fail(
          "tensor: row " + Str(r) + " (bin " + Str(t.row_bin[r]) + ", process " +
          Str(t.row_proc[r]) +
          ") is out of order, but rows must be sorted by bin then process without duplicates");
    if (!std::isfinite(t.norm[r]))
      return fail("tensor: norm[" + Str(r) + "] is " + Str(t.norm[r]) + ", but must be finite");
    if (t.row_start[r + 1] < t.row_start[r])
      return fail("tensor: row_start[" + Str(r + 1) + "] is " + Str(t.row_start[r + 1]) +
                  ", but must be >= row_start[" + Str(r) + "]");
    bool any_logk = false;
    for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
      if (t.syst[i] < 0 || t.syst[i] >= nsyst)
        return fail("tensor: syst[" + Str(i) + "] is " + Str(t.syst[i]) + ", but must be in [0, " +
                    Str(nsyst) + ")");
      if (i > t.row_start[r] && (kinds ? t.syst[i] < t.syst[i - 1] : t.syst[i] <= t.syst[i - 1]))
        return fail("tensor: syst[" + Str(i) + "] is " + Str(t.syst[i]) + ", but columns must " +
                    (kinds ? "not decrease" : "increase") + " within a row");
      if (kinds) {
        const EntryKind k = t.entry_kind[i];
        const double up = t.entry_up[i], down = t.entry_down[i];
        const std::string at = "tensor entry " + Str(i) + " (bin " + Str(t.row_bin[r]) +
                               ", process " + processes[t.row_proc[r]] + ", " +
                               systematics[t.syst[i]] + ")";
        if (static_cast<int>(k) > static_cast<int>(EntryKind::kFactor))
          return fail(at + ": entry_kind is " + Str(static_cast<int>(k)) +
                      ", but must be a known EntryKind");
        if (!std::isfinite(up) || !std::isfinite(down))
          return fail(at + ": entry_up / entry_down are " + Str(up) + " / " + Str(down) +
                      ", but must be finite");
        if ((k == EntryKind::kNormsysCode1 || k == EntryKind::kNormsysCode4) &&
            !(up > 0 && down > 0))
          return fail(at + ": normsys factors (hi, lo) are (" + Str(up) + ", " + Str(down) +
                      "), but must be > 0");
        if (i > t.row_start[r] && t.syst[i] == t.syst[i - 1] &&
            (k == t.entry_kind[i - 1] || k == EntryKind::kModel || k == EntryKind::kFactor))
          return fail(at + ": the systematic is listed twice in the row with kinds " +
                      ToString(t.entry_kind[i - 1]) + " and " + ToString(k) +
                      ", but a repeated column needs distinct normsys / histosys kinds");
      }
      if (!std::isfinite(t.logk_avg[i]))
        return fail("tensor: logk_avg[" + Str(i) + "] is " + Str(t.logk_avg[i]) +
                    ", but must be finite");
      if (!t.logk_halfdiff.empty() && !std::isfinite(t.logk_halfdiff[i]))
        return fail("tensor: logk_halfdiff[" + Str(i) + "] is " + Str(t.logk_halfdiff[i]) +
                    ", but must be finite");
      any_logk = any_logk || t.logk_avg[i] != 0.0 ||
                 (!t.logk_halfdiff.empty() && t.logk_halfdiff[i] != 0.0);
    }
    bool any_model = !kinds;
    for (std::int64_t i = t.row_start[r]; kinds && i < t.row_start[r + 1]; ++i)
      any_model = any_model || (t.entry_kind[i] == EntryKind::kModel && t.logk_avg[i] != 0.0);
    if (systematic_type == SystematicType::kLogNormal && any_logk && any_model && !(t.norm[r] > 0))
      return fail("tensor: norm at (bin " + Str(t.row_bin[r]) + ", process " +
                  processes[t.row_proc[r]] + ") is " + Str(t.norm[r]) +
                  ", but must be > 0 where log-normal logk is non-zero");
  }
  return true;
}

Eigen::MatrixXd Model::DenseNorm() const {
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(nbins_full, num_processes());
  for (std::int64_t r = 0; r < tensor.num_rows(); ++r)
    out(tensor.row_bin[r], tensor.row_proc[r]) = tensor.norm[r];
  return out;
}

}  // namespace lepus::engine
