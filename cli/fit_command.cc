// `lepus fit INPUT.h5`: maximum-likelihood fit of a fit input, human report on stderr, JSON
// summary to a file or stdout, HDF5 results file; optionally the inference toolkit on top of the
// fit (docs/inference.md): impacts (nominal, grouped, global), linear combinations, pre-/post-fit
// yields with projections and per-channel goodness of fit, prior scaling, a restricted
// correlation matrix, fix-and-shift impact cross-checks and fits of every pseudo-data set.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "fit_input.h"
#include "fit_report.h"
#include "html_report.h"
#include "impact_tables.h"
#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/yields.h"
#include "likelihood_setup.h"
#include "mpi.h"
#include "toolkit_flags.h"

namespace lepus::cli {
namespace {

struct FitArgs {
  std::string input;
  io::ReadOptions read;  // workspace flags (JSON workspaces)
  std::string output;    // HDF5 results
  std::string json;      // JSON summary, "-" = stdout
  bool asimov = false;
  std::string pseudodata;
  bool all_pseudodata = false;
  bool no_bbstat = false;
  VariantFlags variant;
  bool poi_positive = false;
  int threads = 0;
  FitFlags flags;

  // Inference toolkit.
  bool impacts = false;
  bool global_impacts = false;
  int impacts_top = 15;
  std::vector<std::string> groups;    // NAME=REGEX
  std::vector<std::string> combines;  // NAME=EXPR
  bool postfit = false;
  bool postfit_covariance = false;
  std::vector<std::string> projects;      // CHANNEL[:AXIS[,AXIS...]]
  std::vector<std::string> prior_scales;  // REGEX=FACTOR
  std::string correlation_regex;
  std::vector<std::string> impact_refit;  // parameter names
  std::string impact_refit_regex;         // --impact-refit-regex REGEX
  std::string report;            // --report FILE: the HTML report (implies impacts, postfit)
  bool full_covariance = false;  // --full-covariance: the whole inverse Hessian even if unused
};

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string PadTo(const std::string& s, std::size_t width, bool left = false) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return left ? s + fill : fill + s;
}

// value +- error, in physical units when the parameter has a scale.
std::string ValueWithError(const engine::ParamInfo& p, double value, double error) {
  return FormatPhysical(value, error, p.scale != 0.0 ? p.scale : 1.0, p.scale != 0.0 ? p.unit : "");
}

// ---- --prior-scale REGEX=FACTOR (split at the last '=': a regex may contain '=').
void ApplyPriorScales(engine::Model* model, const std::vector<std::string>& items) {
  for (const std::string& item : items) {
    const auto eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0)
      throw std::invalid_argument("--prior-scale: '" + item + "' is not of the form REGEX=FACTOR");
    const std::string regex = item.substr(0, eq);
    const double factor =
        ParseNumber(item.substr(eq + 1), "--prior-scale " + regex + ": the factor");
    if (!(factor > 0.0))
      throw std::invalid_argument("--prior-scale " + regex + ": the factor is " +
                                  item.substr(eq + 1) + ", but must be > 0");
    int n = 0;
    try {
      n = engine::ScalePriorWidths(model, regex, factor);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--prior-scale: ") + e.what());
    }
    std::cerr << "lepus: scaled prior width of " << n << " systematic" << (n == 1 ? "" : "s")
              << " matching '" << regex << "' by " << Fmt("%g", factor) << "\n";
  }
}

// ---- --project CHANNEL[:AXIS[,AXIS...]], checked against the model before the fit.
struct ProjectionSpec {
  std::string channel;
  std::vector<std::string> axes;  // empty = the channel's full binning
};

std::vector<ProjectionSpec> ParseProjections(const engine::Model& model,
                                             const std::vector<std::string>& items) {
  std::vector<ProjectionSpec> out;
  for (const std::string& item : items) {
    ProjectionSpec spec;
    const auto colon = item.find(':');
    spec.channel = item.substr(0, colon);
    if (colon != std::string::npos) {
      std::stringstream ss(item.substr(colon + 1));
      std::string axis;
      while (std::getline(ss, axis, ','))
        if (!axis.empty()) spec.axes.push_back(axis);
    }
    const engine::Channel* channel = nullptr;
    std::vector<std::string> names;
    for (const auto& c : model.channels) {
      names.push_back(c.name);
      if (c.name == spec.channel) channel = &c;
    }
    if (!channel)
      throw std::invalid_argument("--project " + item + ": the input has no channel '" +
                                  spec.channel + "' (channels: " + JoinNames(names) + ")");
    std::vector<std::string> axes;
    for (const auto& a : channel->axes) axes.push_back(a.name);
    for (std::size_t i = 0; i < spec.axes.size(); ++i) {
      if (std::find(axes.begin(), axes.end(), spec.axes[i]) == axes.end())
        throw std::invalid_argument(
            "--project " + item + ": channel " + spec.channel + " has no axis '" + spec.axes[i] +
            "' (" +
            (axes.empty() ? std::string("it has no named axes") : "axes: " + JoinNames(axes)) +
            ")");
      if (std::find(spec.axes.begin(), spec.axes.begin() + i, spec.axes[i]) !=
          spec.axes.begin() + i)
        throw std::invalid_argument("--project " + item + ": axis '" + spec.axes[i] +
                                    "' given twice");
    }
    for (const auto& a : channel->axes)
      if (a.edges.empty())
        throw std::invalid_argument("--project " + item + ": axis " + a.name + " of channel " +
                                    spec.channel + " has no bin edges, cannot project");
    out.push_back(std::move(spec));
  }
  return out;
}

// ---- Pre-/post-fit yields: per-channel summary and projection tables on stderr.

// Sum of a channel's yields with its uncertainty (the Jacobian rows summed, so bin-to-bin
// correlations are kept).
std::pair<double, double> ChannelSum(const engine::YieldSet& y, std::int64_t first,
                                     std::int64_t nbins) {
  const Eigen::VectorXd j = y.total_jacobian.middleRows(first, nbins).colwise().sum().transpose();
  const double var = j.dot(y.param_covariance * j) + engine::ExtraVarianceOfSum(y, first, nbins);
  return {y.total.segment(first, nbins).sum(), std::sqrt(std::max(var, 0.0))};
}

// Event counts: integers from 100 on, four significant digits below.
std::string Count(double v) {
  if (!std::isfinite(v)) return "-";
  return std::abs(v) >= 100.0 ? Fmt("%.0f", v) : Fmt("%.4g", v);
}

std::string ValErr(double v, double e) { return Count(v) + " +- " + Count(e); }

void PrintYields(std::ostream& os, const engine::Likelihood& lik, const engine::YieldSet& pre,
                 const engine::YieldSet& post, const std::vector<engine::ChannelGof>& gof,
                 const engine::FitResult& result) {
  const engine::Model& m = lik.model();
  os << "\ngoodness of fit per channel (saturated):\n";
  std::size_t wname = 8;
  for (const auto& c : m.channels) wname = std::max(wname, c.name.size());
  for (const auto& g : gof)
    os << "  " << PadTo(g.channel, wname, true) << "  chi2/ndf = " << Fmt("%.2f", g.chi2) << "/"
       << g.ndf << ", p = " << Fmt("%.3g", g.p) << "\n";
  os << "  " << PadTo("total", wname, true) << "  chi2/ndf = " << Fmt("%.2f", result.gof_chi2)
     << "/" << result.gof_ndf << ", p = " << Fmt("%.3g", result.gof_p)
     << " (ndf: bins minus unconstrained parameters)\n";

  os << "\nyields per channel (uncertainties from J C J^T"
     << (post.postfit && lik.options().bin_by_bin_stat ? " + the betas' spread" : "")
     << "; data for fitted channels):\n";
  std::int64_t first = 0;
  std::vector<std::pair<std::string, std::int64_t>> spans;
  for (const auto& c : m.channels) spans.emplace_back(c.name, c.nbins);
  if (spans.empty()) spans.emplace_back("all", m.nbins_full);
  for (std::size_t ci = 0; ci < spans.size(); ++ci) {
    const auto& [name, nbins] = spans[ci];
    const bool masked = ci < m.channels.size() && m.channels[ci].masked;
    const auto [pv, pe] = ChannelSum(pre, first, nbins);
    const auto [qv, qe] = ChannelSum(post, first, nbins);
    os << "  " << name << (masked ? " (masked)" : "") << ": " << nbins << " bins";
    if (!masked) os << ", data " << Count(lik.data().segment(first, nbins).sum());
    os << "\n    prefit  " << ValErr(pv, pe) << "\n    postfit " << ValErr(qv, qe) << "\n";
    if (pre.process.size() && post.process.size()) {
      std::size_t wp = 8;
      for (const auto& p : m.processes) wp = std::max(wp, p.size());
      for (int p = 0; p < m.num_processes(); ++p)
        os << "      " << PadTo(m.processes[p], wp, true) << "  prefit "
           << PadTo(Count(pre.process.col(p).segment(first, nbins).sum()), 12) << "  postfit "
           << PadTo(Count(post.process.col(p).segment(first, nbins).sum()), 12) << "\n";
    }
    first += nbins;
  }
}

// Projection of the data (fitted channels only) through engine::Project, so that the binning is
// exactly that of the yields: a yield set whose totals are the data, without uncertainties.
std::optional<Eigen::VectorXd> ProjectData(const engine::Likelihood& lik, const ProjectionSpec& s) {
  const engine::Model& m = lik.model();
  for (const auto& c : m.channels)
    if (c.name == s.channel && c.masked) return std::nullopt;
  engine::YieldSet data;
  data.total = Eigen::VectorXd::Zero(m.nbins_full);
  data.total.head(m.nbins) = lik.data();
  data.total_jacobian = Eigen::MatrixXd::Zero(m.nbins_full, 1);
  data.param_covariance = Eigen::MatrixXd::Zero(1, 1);
  data.extra_variance = Eigen::VectorXd::Zero(m.nbins_full);
  return engine::Project(lik, data, s.channel, s.axes).values;
}

void PrintProjection(std::ostream& os, const engine::Likelihood& lik, const ProjectionSpec& spec,
                     const engine::ChannelProjection& pre, const engine::ChannelProjection& post,
                     int max_rows = 100) {
  const engine::Model& m = lik.model();
  const auto data = ProjectData(lik, spec);
  const engine::Channel* channel = nullptr;
  for (const auto& c : m.channels)
    if (c.name == spec.channel) channel = &c;
  os << "\nprojection of " << spec.channel << " onto (" << JoinNames(post.axes)
     << "): " << post.values.size() << " bins\n";
  os << "  " << PadTo("bin", 22, true) << (data ? PadTo("data", 12) : "") << PadTo("prefit", 26)
     << PadTo("postfit", 26) << (data ? PadTo("pull", 8) : "") << "\n";
  const Eigen::Index n = post.values.size();
  for (Eigen::Index i = 0; i < n && i < max_rows; ++i) {
    // Bin label: the edges of each kept axis (row-major index over the kept axes).
    std::string label;
    Eigen::Index rem = i;
    std::vector<std::string> parts(post.axes.size());
    for (int a = static_cast<int>(post.axes.size()) - 1; a >= 0; --a) {
      const int nb = post.shape[a];
      const int idx = static_cast<int>(rem % nb);
      rem /= nb;
      std::string part = std::to_string(idx);
      if (channel) {
        for (const auto& ax : channel->axes) {
          if (ax.name == post.axes[a] && static_cast<int>(ax.labels.size()) > idx)
            part = ax.labels[static_cast<std::size_t>(idx)];  // categories, flow bins
          else if (ax.name == post.axes[a] && static_cast<int>(ax.edges.size()) > idx + 1)
            part = std::string("[")
                       .append(Fmt("%g", ax.edges[idx]))
                       .append(",")
                       .append(Fmt("%g", ax.edges[idx + 1]))
                       .append(")");
        }
      }
      parts[a] = part;
    }
    for (std::size_t a = 0; a < parts.size(); ++a) label += (a ? " " : "") + parts[a];
    os << "  " << PadTo(label, 22, true);
    if (data) os << PadTo(Count((*data)[i]), 12);
    os << PadTo(ValErr(pre.values[i], pre.errors[i]), 26)
       << PadTo(ValErr(post.values[i], post.errors[i]), 26);
    if (data) {
      // (data - postfit) / sqrt(data + postfit variance): a rough per-bin comparison.
      const double den = std::sqrt((*data)[i] + post.errors[i] * post.errors[i]);
      os << PadTo(den > 0 ? Fmt("%+.2f", ((*data)[i] - post.values[i]) / den) : "-", 8);
    }
    os << "\n";
  }
  if (n > max_rows)
    os << "  (" << n - max_rows << " more bins; all are in the HDF5 results file)\n";
  if (data) os << "  (pull = (data - postfit) / sqrt(data + postfit variance))\n";
}

// ---- --all-pseudodata: one fit per stored pseudo-data set.
using PseudoFit = io::PseudoDataFit;

std::vector<int> ReportedTargets(const engine::Likelihood& lik) {
  std::vector<int> out;
  for (int i = 0; i < lik.num_params(); ++i)
    if (lik.params()[i].kind != engine::ParamKind::kNuisance) out.push_back(i);
  return out;
}

void PrintPseudoFits(std::ostream& os, const engine::Likelihood& lik,
                     const std::vector<PseudoFit>& fits) {
  const auto& params = lik.params();
  const std::vector<int> targets = ReportedTargets(lik);
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = {"pseudo-data set", "status", "chi2/ndf"};
  for (int i : targets) header.push_back(params[i].name);
  table.push_back(header);
  for (const auto& f : fits) {
    const auto& r = f.result;
    std::vector<std::string> row = {f.name, engine::ToString(r.status),
                                    Fmt("%.2f", r.gof_chi2) + "/" + std::to_string(r.gof_ndf)};
    for (int i : targets)
      row.push_back(
          r.values.size() == lik.num_params()
              ? ValueWithError(params[i], r.values[i], i < r.errors.size() ? r.errors[i] : NAN)
              : "-");
    table.push_back(row);
  }
  std::vector<std::size_t> w(header.size(), 0);
  for (const auto& row : table)
    for (std::size_t c = 0; c < row.size(); ++c) w[c] = std::max(w[c], row[c].size());
  os << "\nfits of the " << fits.size() << " pseudo-data sets:\n";
  for (std::size_t r = 0; r < table.size(); ++r) {
    os << " ";
    for (std::size_t c = 0; c < table[r].size(); ++c)
      os << (c ? "   " : " ") << PadTo(table[r][c], w[c], c < 3);
    os << "\n";
    if (r == 0) {
      std::size_t total = 0;
      for (std::size_t x : w) total += x + 3;
      os << "  " << std::string(total - 3, '-') << "\n";
    }
  }
}

using Json = nlohmann::json;

// ---- --impact-refit NAME / --impact-refit-regex: fix-and-shift cross-check of the nominal
// impacts. Two refits per nuisance (+1 and -1 sigma: items 2k and 2k + 1) give the shifts of
// every target at once; under mpirun the items are shared out over the ranks (contiguous shares,
// gathered to rank 0 in item order; docs/scaling.md). Each refit is a deterministic function of
// the best fit, so the results do not depend on where they ran.
using RefitCheck = io::RefitImpact;

struct RefitOutcome {
  bool ok = false;
  std::string message;     // why it did not converge
  Eigen::VectorXd values;  // reported values of the refit
};

void AppendRefit(const engine::FitResult& r, std::string* out) {
  const std::int64_t head[2] = {
      r.ok() ? 1 : 0, static_cast<std::int64_t>(
                          r.ok() ? 0 : engine::ToString(r.status).size() + 2 + r.message.size())};
  out->append(reinterpret_cast<const char*>(head), sizeof(head));
  if (!r.ok()) out->append(engine::ToString(r.status) + ": " + r.message);
  mpi::Append(out, r.values.data(), static_cast<std::size_t>(r.values.size()));
}

const char* ReadRefit(const char* p, const char* end, int npar, RefitOutcome* o) {
  std::int64_t head[2];
  const std::size_t values = static_cast<std::size_t>(npar) * sizeof(double);
  if (static_cast<std::size_t>(end - p) < sizeof(head))
    throw std::runtime_error("refits: too few bytes");
  std::memcpy(head, p, sizeof(head));
  p += sizeof(head);
  if (head[1] < 0 || static_cast<std::size_t>(end - p) < static_cast<std::size_t>(head[1]) + values)
    throw std::runtime_error("refits: too few bytes");
  o->ok = head[0] == 1;
  o->message.assign(p, static_cast<std::size_t>(head[1]));
  p += head[1];
  o->values.resize(npar);
  std::memcpy(o->values.data(), p, values);
  return p + values;
}

// The 2 x nuisances refits, this rank's share run here (item i on rank i % N: refits differ in
// cost, and neighbours in the list, the +1 and -1 sigma refits of one nuisance and nuisances of
// one family, tend to cost alike); on rank 0 every outcome in item order (other ranks: empty).
std::vector<RefitOutcome> RunRefits(const engine::Likelihood& lik, const engine::FitResult& result,
                                    const engine::FitOptions& options,
                                    const std::vector<int>& nuisances) {
  const int n = 2 * static_cast<int>(nuisances.size());
  const int ranks = mpi::Size(), rank = mpi::Rank();
  const int mine = n / ranks + (rank < n % ranks ? 1 : 0);
  if (ranks > 1)
    std::cerr << "lepus: " << ranks << " MPI ranks; refit i runs on rank i % " << ranks
              << " (rank 0: " << mine << " of " << n << ")\n";
  std::string bytes;
  {
    Progress progress("impact-refit", "refits");
    int done = 0;
    for (int i = rank; i < n; i += ranks) {
      const engine::FitResult r = engine::RefitWithShiftedNuisance(
          lik, result, nuisances[i / 2], i % 2 == 0 ? 1.0 : -1.0, options);
      AppendRefit(r, &bytes);
      progress.Update(++done, mine);
    }
    progress.Finish();
  }
  const std::vector<std::string> parts = mpi::GatherToRoot(bytes);
  std::vector<RefitOutcome> out;
  if (!mpi::Root()) return out;
  out.resize(n);
  for (int r = 0; r < static_cast<int>(parts.size()); ++r) {
    const char* p = parts[r].data();
    const char* e = p + parts[r].size();
    int i = r;
    for (; p < e && i < n; i += ranks) p = ReadRefit(p, e, lik.num_params(), &out[i]);
    if (p != e || i < n)
      throw std::runtime_error("refits: rank " + std::to_string(r) +
                               " sent a wrong number of refits");
  }
  return out;
}

// The check of nuisance k of RunRefits' list from its two outcomes; throws NumericalError when
// a refit did not converge.
RefitCheck MakeRefitCheck(const engine::Likelihood& lik, const engine::FitResult& result,
                          int nuisance, const RefitOutcome& up, const RefitOutcome& down) {
  for (const RefitOutcome* o : {&up, &down})
    if (!o->ok)
      throw engine::NumericalError("refit with " + lik.params()[nuisance].name + " shifted by " +
                                   (o == &up ? "+1" : "-1") + " sigma did not converge (" +
                                   o->message + ")");
  RefitCheck check;
  check.nuisance = nuisance;
  for (int t : ReportedTargets(lik)) {
    if (t == nuisance || result.frozen[t]) continue;
    const auto& p = lik.params()[t];
    const double scale = p.scale > 0.0 ? p.scale : 1.0;
    const double cjj = result.covariance(nuisance, nuisance);
    const double nominal = cjj > 0 ? result.covariance(t, nuisance) / std::sqrt(cjj) : 0.0;
    check.targets.push_back({t, nominal * scale, (up.values[t] - result.values[t]) * scale,
                             (down.values[t] - result.values[t]) * scale,
                             p.scale > 0.0 ? p.unit : ""});
  }
  return check;
}

void PrintRefitCheck(std::ostream& os, const engine::Likelihood& lik, const engine::FitResult& r,
                     const RefitCheck& check) {
  const auto& params = lik.params();
  const int j = check.nuisance;
  os << "\nimpact of " << params[j].name << " by refits (fixed at " << Fmt("%.5g", r.values[j])
     << " +- " << Fmt("%.5g", r.errors[j]) << ", everything else refitted):\n";
  std::size_t w = 16;
  for (const auto& row : check.targets) w = std::max(w, params[row.param].name.size());
  os << "  " << PadTo("target", w, true) << PadTo("nominal", 13) << PadTo("refit +1s", 13)
     << PadTo("refit -1s", 13) << "\n";
  for (const auto& row : check.targets)
    os << "  " << PadTo(params[row.param].name, w, true) << PadTo(Fmt("%+.5g", row.nominal), 13)
       << PadTo(Fmt("%+.5g", row.up), 13) << PadTo(Fmt("%+.5g", row.down), 13)
       << (row.unit.empty() ? "" : " " + row.unit) << "\n";
}

// Up to 10 nuisances: a table each; more (--impact-refit-regex): the 15 largest by
// max(|refit +1s|, |refit -1s|) on each target, every one of them in the JSON.
void PrintRefitChecks(std::ostream& os, const engine::Likelihood& lik, const engine::FitResult& r,
                      const std::vector<RefitCheck>& checks) {
  constexpr std::size_t kTables = 10, kTop = 15;
  if (checks.size() <= kTables) {
    for (const RefitCheck& c : checks) PrintRefitCheck(os, lik, r, c);
    return;
  }
  const auto& params = lik.params();
  std::vector<int> targets;
  for (const auto& row : checks.front().targets) targets.push_back(row.param);
  for (int t : targets) {
    std::vector<std::pair<double, const RefitCheck*>> ranked;
    const RefitCheck::Target* any = nullptr;
    for (const RefitCheck& c : checks)
      for (const auto& row : c.targets)
        if (row.param == t) {
          ranked.push_back({std::max(std::abs(row.up), std::abs(row.down)), &c});
          any = &row;
        }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& x, const auto& y) { return x.first > y.first; });
    os << "\nimpacts on " << params[t].name << " by refits of " << checks.size()
       << " nuisances (each fixed at its value +- its error, everything else refitted); the "
       << std::min(kTop, ranked.size()) << " largest (all in the JSON, impact_refit)"
       << (any && !any->unit.empty() ? ", in " + any->unit : "") << ":\n";
    std::size_t w = 16;
    for (std::size_t i = 0; i < ranked.size() && i < kTop; ++i)
      w = std::max(w, params[ranked[i].second->nuisance].name.size());
    os << "  " << PadTo("nuisance", w, true) << PadTo("nominal", 13) << PadTo("refit +1s", 13)
       << PadTo("refit -1s", 13) << "\n";
    for (std::size_t i = 0; i < ranked.size() && i < kTop; ++i) {
      const RefitCheck& c = *ranked[i].second;
      for (const auto& row : c.targets)
        if (row.param == t)
          os << "  " << PadTo(params[c.nuisance].name, w, true)
             << PadTo(Fmt("%+.5g", row.nominal), 13) << PadTo(Fmt("%+.5g", row.up), 13)
             << PadTo(Fmt("%+.5g", row.down), 13) << "\n";
    }
  }
}

// What the flags ask to compute besides the fit.
struct FitWants {
  bool report = false;
  bool impacts = false;
  bool postfit = false;
};

FitWants WhatToCompute(const FitArgs& a) {
  FitWants w;
  w.report = !a.report.empty();
  w.impacts = a.impacts || a.global_impacts || !a.groups.empty() || w.report;
  w.postfit = a.postfit || a.postfit_covariance || !a.projects.empty() || w.report;
  return w;
}

// The --project projections, plus those the report shows.
std::vector<ProjectionSpec> ProjectionsToMake(const engine::Model& model, const FitArgs& a,
                                              const FitWants& want) {
  std::vector<ProjectionSpec> projections = ParseProjections(model, a.projects);
  if (want.report)
    for (auto& [channel, axes] : ReportProjections(model)) {
      bool have = false;
      for (const auto& p : projections) have = have || (p.channel == channel && p.axes == axes);
      if (!have) projections.push_back({channel, axes});
    }
  return projections;
}

engine::LikelihoodOptions MakeLikelihoodOptions(const FitArgs& a) {
  engine::LikelihoodOptions lopt;
  lopt.bin_by_bin_stat = !a.no_bbstat;
  lopt.poi_positive = a.poi_positive;
  lopt.num_threads = a.threads;
  ApplyVariantFlags(a.variant, &lopt);
  std::string error;
  if (!lopt.IsValid(&error)) throw std::invalid_argument("likelihood options: " + error);
  return lopt;
}

// The --pseudodata set's column (empty without the flag); checks --all-pseudodata too.
Eigen::VectorXd PseudoDataColumn(const engine::Model& model, const FitArgs& a, io::RunInfo* info) {
  if (a.all_pseudodata && model.pseudodata_names.empty())
    throw std::invalid_argument("--all-pseudodata: " + a.input + " has no pseudo-data sets");
  if (a.pseudodata.empty()) return {};
  const auto& names = model.pseudodata_names;
  int column = -1;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == a.pseudodata) column = static_cast<int>(i);
  if (column < 0)
    throw std::invalid_argument("--pseudodata: " + a.input + " has no pseudo-data set named '" +
                                a.pseudodata + "' " +
                                (names.empty() ? std::string("(the file has no pseudo-data)")
                                               : "(available: " + JoinNames(names) + ")"));
  info->data_label = "pseudodata:" + a.pseudodata;
  return model.pseudodata.col(column);
}

// The fitted data: the Asimov set at the prefit point, moved to any --set values (expected
// results for any parameter point; the fit starts there too), or the --pseudodata set.
void SetFitData(const FitArgs& a, const Eigen::VectorXd& pseudo, const engine::FitOptions& options,
                engine::Likelihood* lik, io::RunInfo* info) {
  if (a.asimov) {
    lik->SetData(engine::AsimovData(
        *lik, options.initial_params.size() ? options.initial_params : lik->InitialParams()));
    info->data_label = "asimov";
  } else if (!a.pseudodata.empty()) {
    lik->SetData(pseudo);
  }
}

// The nuisances of --impact-refit and --impact-refit-regex, in flag order, each once.
std::vector<int> RefitParams(const engine::Likelihood& lik, const engine::FitOptions& options,
                             const FitArgs& a) {
  std::vector<int> refit_params;
  for (const std::string& name : a.impact_refit) {
    const int j = lik.FindParam(name);
    if (j < 0) throw std::invalid_argument("--impact-refit: no parameter named '" + name + "'");
    if (!options.frozen.empty() && options.frozen[j])
      throw std::invalid_argument("--impact-refit: parameter '" + name + "' is frozen");
    refit_params.push_back(j);
  }
  if (a.impact_refit_regex.empty()) return refit_params;
  std::regex re;
  try {
    re = std::regex(a.impact_refit_regex);
  } catch (const std::regex_error& e) {
    throw std::invalid_argument("--impact-refit-regex: '" + a.impact_refit_regex +
                                "' is not a valid regular expression (" + e.what() + ")");
  }
  const int npoi = lik.model().num_signals;
  for (int j = npoi; j < lik.num_params(); ++j) {
    // Floating nuisances whose whole name matches (not the POIs, not frozen ones), each once.
    if (!std::regex_match(lik.params()[j].name, re)) continue;
    if (!options.frozen.empty() && options.frozen[j]) continue;
    if (std::find(refit_params.begin(), refit_params.end(), j) == refit_params.end())
      refit_params.push_back(j);
  }
  if (refit_params.empty())
    throw std::invalid_argument("--impact-refit-regex: '" + a.impact_refit_regex +
                                "' matches no floating nuisance of " + a.input);
  return refit_params;
}

// Under mpirun with several ranks only the refits are shared out; a fit alone would run N times.
void CheckRanks(const std::vector<int>& refit_params) {
  if (mpi::Size() > 1 && refit_params.empty())
    throw std::invalid_argument("'fit' runs on several MPI ranks (this job has " +
                                std::to_string(mpi::Size()) +
                                ") only to share out the refits of --impact-refit / "
                                "--impact-refit-regex; without them run it without mpirun or "
                                "with -np 1");
}

std::vector<int> CorrelationSubset(const engine::Likelihood& lik, const FitArgs& a) {
  if (a.correlation_regex.empty()) return {};
  try {
    return io::SelectParameters(lik, a.correlation_regex);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--correlation-regex: ") + e.what());
  }
}

// The full covariance matrix only where an output reads it (the HDF5 results file and the report
// keep it; impacts, combinations, refit checks and post-fit yields are computed from it);
// otherwise the selected inverse: the errors of every parameter and the rows of the POIs and NOIs
// (and of the --correlation-regex parameters), the same numbers at a fraction of the cost
// (docs/numerics.md, "Selected inverse"). A correlation subset above a quarter of the parameters
// costs about as much as the full inverse: then the full one.
void ChooseCovariance(const engine::Likelihood& lik, const FitArgs& a, const FitWants& want,
                      const std::vector<int>& refit_params,
                      const std::vector<int>& correlation_subset, engine::FitOptions* options) {
  const bool need_full_covariance =
      a.full_covariance || !a.output.empty() || want.report || want.impacts || want.postfit ||
      !a.combines.empty() || !refit_params.empty() ||
      4 * correlation_subset.size() > static_cast<std::size_t>(lik.num_params());
  options->covariance_extent =
      need_full_covariance ? engine::CovarianceExtent::kFull : engine::CovarianceExtent::kSelected;
  // The covariance of a dense fit (matrix-free ones, also Ceres polished above the threshold,
  // keep their default targets: a CG solve per row).
  const bool dense_covariance = options->method == engine::FitMethod::kDense ||
                                (options->method != engine::FitMethod::kMatrixFree &&
                                 lik.num_params() <= options->matrix_free_threshold);
  if (need_full_covariance || correlation_subset.empty() || !dense_covariance) return;
  // Targets: the POIs and NOIs (the default) and the correlation subset.
  std::vector<int>& t = options->covariance_targets;
  for (int i = 0; i < lik.num_params(); ++i)
    if (lik.params()[i].kind != engine::ParamKind::kNuisance &&
        (options->frozen.empty() || !options->frozen[i]))
      t.push_back(i);
  for (int i : correlation_subset)
    if (std::find(t.begin(), t.end(), i) == t.end()) t.push_back(i);
}

// The exit code as the results come in: 2 for a fit that failed or whose covariance is not
// trusted (near-singular Hessian: the report printed no errors), and for any requested result
// that could not be computed (with a message saying what was skipped and why).
class FitOutcome {
 public:
  explicit FitOutcome(const engine::FitResult& result)
      : result_(result),
        code_(result.ok() && !CovarianceUntrusted(result) ? kExitOk : kExitFitFailed),
        have_cov_(result.ok() && result.covariance_status == engine::CovarianceStatus::kAccurate) {}

  // Everything after the fit needs the covariance of a converged fit.
  bool have_covariance() const { return have_cov_; }
  void Skipped(const char* what) {
    std::cerr << "lepus: warning: " << what << " not computed: " << WhyNoCovariance(result_)
              << "\n";
    code_ = kExitFitFailed;
  }
  void Failed(const std::string& what, const std::string& why) {
    std::cerr << "lepus: warning: " << what << " not computed: " << why << "\n";
    code_ = kExitFitFailed;
  }
  void FailedQuietly() { code_ = kExitFitFailed; }

  // The closing line and the exit code.
  int Finish() const {
    if (!result_.ok())
      std::cerr << "lepus: fit did not converge: " << engine::ToString(result_.status)
                << (result_.message.empty() ? "" : " (" + result_.message + ")") << "\n";
    else if (CovarianceUntrusted(result_))
      std::cerr << "lepus: the fit converged, but " << WhyNoCovariance(result_)
                << "; the errors are not reliable\n";
    else if (code_ != kExitOk)
      std::cerr << "lepus: some of the requested results could not be computed (see the "
                   "warnings above)\n";
    return code_;
  }

 private:
  const engine::FitResult& result_;
  int code_;
  bool have_cov_;
};

// What is computed after the fit; io::ResultExtras points into it when the outputs are written.
struct FitProducts {
  std::vector<engine::CombinationResult> combinations;
  std::optional<engine::Impacts> impacts;
  std::vector<RefitCheck> refit_checks;
  engine::YieldSet prefit, postfit;
  bool have_postfit = false;
  std::vector<engine::ChannelGof> channel_gof;
  std::vector<engine::ChannelProjection> prefit_projections, postfit_projections;
  std::vector<PseudoFit> pseudo_fits;
};

void ComputeCombinations(const engine::Likelihood& lik, const engine::FitResult& result,
                         const std::vector<engine::LinearCombination>& combinations,
                         FitOutcome* outcome, FitProducts* out) {
  if (combinations.empty()) return;
  if (!outcome->have_covariance()) return outcome->Skipped("combinations");
  for (const auto& c : combinations)
    out->combinations.push_back(engine::EvaluateCombination(lik, result, c));
  PrintCombinations(std::cerr, lik, combinations, out->combinations);
}

void ComputeImpactTables(const engine::Likelihood& lik, const engine::FitResult& result,
                         const FitArgs& a, const std::vector<engine::SystematicGroup>& extra_groups,
                         const std::vector<engine::LinearCombination>& combinations,
                         FitOutcome* outcome, FitProducts* out) {
  if (!outcome->have_covariance()) return outcome->Skipped("impacts");
  engine::ImpactOptions iopt;
  iopt.global = a.global_impacts;
  iopt.extra_groups = extra_groups;
  iopt.combinations = combinations;
  try {
    out->impacts = engine::ComputeImpacts(lik, result, iopt);
  } catch (const engine::NumericalError& e) {
    // E.g. a restricted Hessian that is not positive definite: a status, not bad input.
    return outcome->Failed("impacts", e.what());
  }
  if (out->impacts->target_names.empty())
    std::cerr << "\nimpacts: the model has no floating POI or nuisance of interest and no "
                 "--combine was given\n";
  PrintImpactTable(std::cerr, lik, result, *out->impacts, combinations, extra_groups,
                   a.impacts_top);
}

void ComputeRefitChecks(const engine::Likelihood& lik, const engine::FitResult& result,
                        const std::vector<int>& refit_params,
                        const std::vector<RefitOutcome>& refit_outcomes, FitOutcome* outcome,
                        FitProducts* out) {
  if (refit_params.empty()) return;
  if (!outcome->have_covariance()) return outcome->Skipped("--impact-refit");
  for (std::size_t k = 0; k < refit_params.size(); ++k) {
    const int j = refit_params[k];
    try {
      out->refit_checks.push_back(
          MakeRefitCheck(lik, result, j, refit_outcomes[2 * k], refit_outcomes[2 * k + 1]));
    } catch (const engine::NumericalError& e) {
      outcome->Failed("--impact-refit " + lik.params()[j].name, e.what());
    }
  }
  PrintRefitChecks(std::cerr, lik, result, out->refit_checks);
}

void ComputePostfit(const engine::Likelihood& lik, const engine::FitResult& result,
                    const FitArgs& a, const FitWants& want,
                    const std::vector<ProjectionSpec>& projections, FitOutcome* outcome,
                    FitProducts* out) {
  if (!outcome->have_covariance()) return outcome->Skipped("pre-/post-fit yields");
  engine::YieldOptions yopt;
  yopt.full_covariance = a.postfit_covariance;
  out->prefit = engine::PrefitYields(lik, yopt);
  try {
    out->postfit = engine::PostfitYields(lik, result, yopt);
  } catch (const engine::NumericalError& e) {
    return outcome->Failed("pre-/post-fit yields", e.what());
  }
  out->have_postfit = true;
  out->channel_gof = engine::ChannelGoodnessOfFit(lik, result);
  for (const auto& p : projections) {
    out->prefit_projections.push_back(engine::Project(lik, out->prefit, p.channel, p.axes));
    out->postfit_projections.push_back(engine::Project(lik, out->postfit, p.channel, p.axes));
  }
  PrintYields(std::cerr, lik, out->prefit, out->postfit, out->channel_gof, result);
  // The projections asked for with --project (those --report adds are only in the files).
  for (std::size_t i = 0; i < projections.size() && i < a.projects.size(); ++i)
    PrintProjection(std::cerr, lik, projections[i], out->prefit_projections[i],
                    out->postfit_projections[i]);
  if (a.output.empty() && !want.report)
    std::cerr << "(per-bin pre-/post-fit yields are written to the HDF5 results file: -o)\n";
}

// --all-pseudodata: one fit per pseudo-data set, on a clone of the likelihood.
void FitAllPseudoData(const engine::Likelihood& lik, const engine::FitOptions& options, int threads,
                      FitOutcome* outcome, FitProducts* out) {
  engine::Likelihood clone = lik.Clone(threads);
  const auto& m = lik.model();
  for (std::size_t i = 0; i < m.pseudodata_names.size(); ++i) {
    clone.SetData(m.pseudodata.col(static_cast<Eigen::Index>(i)));
    out->pseudo_fits.push_back({m.pseudodata_names[i], engine::Fit(clone, options)});
    const engine::FitResult& r = out->pseudo_fits.back().result;
    if (!r.ok() || CovarianceUntrusted(r)) outcome->FailedQuietly();
  }
  PrintPseudoFits(std::cerr, lik, out->pseudo_fits);
}

// The JSON summary, the HDF5 results file and the HTML report, each written atomically.
void WriteFitOutputs(const FitArgs& a, const FitWants& want, const engine::Likelihood& lik,
                     const engine::FitResult& result, const io::RunInfo& info,
                     const FitProducts& p) {
  io::ResultExtras extras;
  if (!p.combinations.empty()) extras.combinations = &p.combinations;
  if (p.impacts) extras.impacts = &*p.impacts;
  if (!a.correlation_regex.empty()) extras.correlation_regex = a.correlation_regex;
  if (p.have_postfit) {
    extras.prefit = &p.prefit;
    extras.postfit = &p.postfit;
    extras.channel_gof = &p.channel_gof;
    if (!p.prefit_projections.empty()) {
      extras.prefit_projections = &p.prefit_projections;
      extras.postfit_projections = &p.postfit_projections;
    }
  }
  extras.pseudodata_fits = &p.pseudo_fits;
  extras.impact_refits = &p.refit_checks;
  if (!a.json.empty()) WriteText(a.json, io::ResultsJson(lik, result, info, extras) + "\n");
  if (!a.output.empty()) io::WriteResultsHdf5(a.output, lik, result, info, extras);
  if (!want.report) return;
  // The report reads a results file: -o when given, else a temporary one beside the report.
  std::string results = a.output;
  std::optional<io::AtomicOutput> temp;
  if (results.empty()) {
    temp.emplace(a.report + ".results.h5");
    io::WriteResultsHdf5(temp->temp_path(), lik, result, info, extras);
    results = temp->temp_path();
  }
  WriteHtmlReport(results, "", {}, a.report, 30, "", "", std::cerr);
}

int RunFit(const FitArgs& a, const std::string& command_line) {
  io::CheckOutputs({{"--json", a.json}, {"-o", a.output, false}, {"--report", a.report, false}},
                   {a.input});
  engine::Model model = ReadInput(a.input, nullptr, a.read);
  const FitWants want = WhatToCompute(a);
  ApplyPriorScales(&model, a.prior_scales);
  const std::vector<engine::SystematicGroup> extra_groups = ParseGroupFlags(model, a.groups);
  const std::vector<ProjectionSpec> projections = ProjectionsToMake(model, a, want);
  const engine::LikelihoodOptions lopt = MakeLikelihoodOptions(a);
  WarnUnusedInputs(model, lopt);

  io::RunInfo info;
  info.input_path = a.input;
  info.command_line = command_line;
  info.num_threads = a.threads;
  const Eigen::VectorXd pseudo = PseudoDataColumn(model, a, &info);

  engine::Likelihood lik(std::move(model), lopt);
  engine::FitOptions options = MakeFitOptions(lik, a.flags);
  SetFitData(a, pseudo, options, &lik, &info);
  const std::vector<engine::LinearCombination> combinations = ParseCombineFlags(lik, a.combines);
  const std::vector<int> refit_params = RefitParams(lik, options, a);
  CheckRanks(refit_params);
  const std::vector<int> correlation_subset = CorrelationSubset(lik, a);
  ChooseCovariance(lik, a, want, refit_params, correlation_subset, &options);

  std::cerr << "lepus: fitting " << a.input << " (" << info.data_label << " data, "
            << lik.model().nbins << " bins, " << lik.num_params() << " parameters"
            << ")\n"
            << "lepus: likelihood: " << lik.Describe() << "\n";
  const engine::FitResult result = engine::Fit(lik, options);
  PrintFitReport(std::cerr, lik, result);
  FitOutcome outcome(result);

  // The refits first: under mpirun every rank runs its share (the other ranks stop here).
  std::vector<RefitOutcome> refit_outcomes;
  if (!refit_params.empty() && outcome.have_covariance())
    refit_outcomes = RunRefits(lik, result, options, refit_params);
  if (!mpi::Root()) return kExitOk;  // rank 0 reports and writes

  FitProducts products;
  ComputeCombinations(lik, result, combinations, &outcome, &products);
  if (want.impacts)
    ComputeImpactTables(lik, result, a, extra_groups, combinations, &outcome, &products);
  ComputeRefitChecks(lik, result, refit_params, refit_outcomes, &outcome, &products);
  if (!correlation_subset.empty())
    PrintCorrelationMatrix(std::cerr, lik, result, correlation_subset);
  if (want.postfit) ComputePostfit(lik, result, a, want, projections, &outcome, &products);
  if (a.all_pseudodata) FitAllPseudoData(lik, options, a.threads, &outcome, &products);
  std::cerr << std::flush;

  WriteFitOutputs(a, want, lik, result, info, products);
  return outcome.Finish();
}

}  // namespace

Command AddFitCommand(CLI::App& parent, const std::string& command_line) {
  auto args = std::make_shared<FitArgs>();
  CLI::App* sub = parent.add_subcommand(
      "fit",
      "Maximum-likelihood fit of a fit input (HDF5 tensor layout). The report goes to "
      "stderr; --json and -o write machine-readable results.");
  sub->add_option("input", args->input, "fit input file (HDF5, or a HistFactory JSON workspace)")
      ->required()
      ->type_name("FILE");
  AddWorkspaceFlags(sub, &args->read);
  sub->add_option("-o,--output", args->output, "write the HDF5 results file here")
      ->type_name("FILE");
  sub->add_option("--json", args->json, "write the JSON summary to FILE ('-' = stdout)")
      ->type_name("FILE");
  CLI::Option* asimov = sub->add_flag(
      "--asimov", args->asimov,
      "fit the Asimov data set at the prefit values, or at the --set values where given");
  CLI::Option* pseudo = sub->add_option("--pseudodata", args->pseudodata,
                                        "fit the named pseudo-data set instead of the data")
                            ->type_name("NAME");
  asimov->excludes(pseudo);
  sub->add_flag("--all-pseudodata", args->all_pseudodata,
                "also fit every pseudo-data set of the input (compact table; JSON "
                "pseudodata_fits)")
      ->excludes(pseudo);
  AddFitFlags(sub, &args->flags);  // --freeze, --set, --edm-tol, --max-iter, --method
  sub->add_flag("--no-bbstat", args->no_bbstat, "disable bin-by-bin MC statistics");
  AddVariantFlags(sub, &args->variant);
  sub->add_flag("--poi-positive", args->poi_positive,
                "parametrise signal strengths as mu = x^2 (mu >= 0)");
  sub->add_option("--threads", args->threads, "worker threads (0 = all cores)")
      ->type_name("N")
      ->transform(IntegerArg(0, 4096));

  sub->add_flag("--impacts", args->impacts,
                "nominal and grouped impacts of every nuisance on every POI/NOI (and --combine)");
  sub->add_flag("--global-impacts", args->global_impacts,
                "also global impacts (arXiv:2307.04007); implies --impacts");
  sub->add_option("--group", args->groups,
                  "extra impact group: the systematics whose whole name matches REGEX "
                  "(repeatable; implies --impacts)")
      ->type_name("NAME=REGEX")
      ->allow_extra_args(false);
  sub->add_option("--impacts-top", args->impacts_top,
                  "individual parameters listed per impact table, by |nominal impact|")
      ->type_name("N")
      ->capture_default_str()
      ->transform(IntegerArg(0, 1000000));
  sub->add_option("--combine", args->combines,
                  "linear combination of parameters, e.g. 'diff=a - b' (repeatable)")
      ->type_name("NAME=EXPR")
      ->allow_extra_args(false);
  sub->add_option("--impact-refit", args->impact_refit,
                  "cross-check the nominal impacts of NAME by fix-and-shift refits (repeatable)")
      ->type_name("NAME")
      ->allow_extra_args(false);
  sub->add_option("--impact-refit-regex", args->impact_refit_regex,
                  "the same for every floating nuisance whose whole name matches REGEX ('.*': all; "
                  "two refits each, shared out over the ranks under mpirun)")
      ->type_name("REGEX");
  sub->add_option("--report", args->report,
                  "write the HTML fit report here (lepus report; implies --impacts, --postfit and "
                  "the projections of multi-dimensional channels onto each axis and charge)")
      ->type_name("FILE");
  sub->add_flag("--postfit", args->postfit,
                "pre-/post-fit yields per bin and process and the per-channel goodness of fit");
  sub->add_flag("--postfit-covariance", args->postfit_covariance,
                "also the full bin-to-bin covariance of the yields; implies --postfit");
  sub->add_option("--project", args->projects,
                  "projection of a channel onto some of its axes, e.g. 'wmass:pt' "
                  "(repeatable; implies --postfit)")
      ->type_name("CHANNEL:AXIS[,AXIS]")
      ->allow_extra_args(false);
  sub->add_option("--prior-scale", args->prior_scales,
                  "multiply the prior width of the systematics whose whole name matches REGEX "
                  "by FACTOR (repeatable)")
      ->type_name("REGEX=FACTOR")
      ->allow_extra_args(false);
  sub->add_flag(
      "--full-covariance", args->full_covariance,
      "compute the whole covariance matrix even when no requested output needs it (by default "
      "only the errors of every parameter and the covariance rows of the POIs/NOIs and of the "
      "--correlation-regex parameters, unless -o, --report, impacts, --combine, --impact-refit or "
      "post-fit yields ask for it; the errors are the same)");
  sub->add_option("--correlation-regex", args->correlation_regex,
                  "print and save the correlation matrix of the parameters whose whole name "
                  "matches REGEX")
      ->type_name("REGEX");
  return {sub, [args, command_line] { return RunFit(*args, command_line); }};
}

}  // namespace lepus::cli
