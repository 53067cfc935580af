#include "arrays.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <regex>
#include <stdexcept>

namespace lepus::python {
namespace {

// As io's messages: shortest round-trip numbers, quoted names.
std::string Num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}
std::string Quote(const std::string& s) { return "\"" + s + "\""; }

[[noreturn]] void Fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

std::string Index(const std::string& name, const std::vector<std::int64_t>& shape,
                  std::int64_t flat) {
  std::vector<std::int64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] > 0 ? flat % shape[d] : 0;
    flat = shape[d] > 0 ? flat / shape[d] : 0;
  }
  std::string out = name + "[";
  for (std::size_t d = 0; d < idx.size(); ++d) out += (d ? ", " : "") + std::to_string(idx[d]);
  return out + "]";
}

std::int64_t Size(const ArrayArg& a) {
  std::int64_t n = 1;
  for (auto d : a.shape) n *= d;
  return n;
}

void ExpectShape(const std::string& name, const ArrayArg& a, const std::vector<std::int64_t>& want,
                 const std::string& meaning) {
  if (a.shape != want)
    Fail(name, "has shape " + ShapeString(a.shape) + ", but must be " + meaning + " = " +
                   ShapeString(want));
}

void CheckFinite(const std::string& name, const ArrayArg& a, bool non_negative) {
  const std::int64_t n = Size(a);
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = a.data[i];
    if (!std::isfinite(v)) Fail(Index(name, a.shape, i), "is " + Num(v) + ", but must be finite");
    if (non_negative && v < 0) Fail(Index(name, a.shape, i), "is " + Num(v) + ", but must be >= 0");
  }
}

void ExpectUnique(const std::string& name, const std::vector<std::string>& names) {
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto [it, fresh] = seen.emplace(names[i], i);
    if (!fresh)
      Fail(name + "[" + std::to_string(i) + "]", "is " + Quote(names[i]) +
                                                     ", but names must be unique (also at index " +
                                                     std::to_string(it->second) + ")");
  }
}

int SystIndex(const std::vector<std::string>& systs, const std::string& name,
              const std::string& where) {
  const auto it = std::find(systs.begin(), systs.end(), name);
  if (it == systs.end()) Fail(where, "is " + Quote(name) + ", but must be one of systematics");
  return static_cast<int>(it - systs.begin());
}

Eigen::MatrixXd BinProc(const ArrayArg& a) {
  Eigen::MatrixXd out(a.shape[0], a.shape[1]);
  for (std::int64_t b = 0; b < a.shape[0]; ++b)
    for (std::int64_t p = 0; p < a.shape[1]; ++p) out(b, p) = a.data[b * a.shape[1] + p];
  return out;
}

}  // namespace

std::string ShapeString(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t d = 0; d < shape.size(); ++d) out += (d ? ", " : "") + std::to_string(shape[d]);
  return out + "]";
}

engine::Model ModelFromArrays(const ArrayModelInput& in) {
  engine::Model m;
  // ---- names, signals, constraints (the order of io::ReadFitInput) ----
  m.processes = in.processes;
  if (m.processes.empty()) Fail("processes", "is empty, but must list at least one process");
  m.systematics = in.systematics;
  ExpectUnique("processes", m.processes);
  ExpectUnique("systematics", m.systematics);
  if (in.signals.size() > m.processes.size())
    Fail("signals", "has " + std::to_string(in.signals.size()) +
                        " entries, but processes has only " + std::to_string(m.processes.size()));
  for (std::size_t i = 0; i < in.signals.size(); ++i)
    if (in.signals[i] != m.processes[i])
      Fail(
          "signals[" + std::to_string(i) + "]",
          "is " + Quote(in.signals[i]) + ", but must be " + Quote(m.processes[i]) + " (processes[" +
              std::to_string(i) +
              "]): the signal processes must be the first entries of processes, in the same order");
  m.num_signals = static_cast<int>(in.signals.size());
  const int nproc = m.num_processes();
  const int nsyst = m.num_systematics();

  if (in.systematic_type == "log_normal" || in.systematic_type == "lognormal")
    m.systematic_type = engine::SystematicType::kLogNormal;
  else if (in.systematic_type == "normal")
    m.systematic_type = engine::SystematicType::kNormal;
  else
    Fail("systematic_type",
         "is " + Quote(in.systematic_type) + ", but must be \"log_normal\" or \"normal\"");

  if (in.constraint_weights.given()) {
    ExpectShape("constraint_weights", in.constraint_weights, {nsyst}, "[nsyst]");
    CheckFinite("constraint_weights", in.constraint_weights, true);
    m.constraint_weights.assign(in.constraint_weights.data, in.constraint_weights.data + nsyst);
  } else {
    m.constraint_weights.assign(nsyst, 1.0);
  }

  for (std::size_t i = 0; i < in.noi.size(); ++i) {
    const std::string where = "noi[" + std::to_string(i) + "]";
    const int s = SystIndex(m.systematics, in.noi[i], where);
    if (std::find(m.noi_indices.begin(), m.noi_indices.end(), s) != m.noi_indices.end())
      Fail(where, "is " + Quote(in.noi[i]) + ", but names must be unique");
    m.noi_indices.push_back(s);
  }
  for (const auto& [name, members] : in.groups) {
    engine::SystematicGroup g;
    g.name = name;
    for (std::size_t k = 0; k < members.size(); ++k)
      g.members.push_back(SystIndex(m.systematics, members[k],
                                    "groups[" + Quote(name) + "][" + std::to_string(k) + "]"));
    m.groups.push_back(std::move(g));
  }

  // ---- data ----
  if (!in.data.given()) Fail("data", "is missing, but is required");
  if (in.data.shape.size() != 1)
    Fail("data", "has shape " + ShapeString(in.data.shape) + ", but must be 1-D [nbins]");
  if (in.data.shape[0] == 0) Fail("data", "is empty, but must have at least one bin");
  CheckFinite("data", in.data, true);
  m.nbins = in.data.shape[0];
  m.data_obs = Eigen::Map<const Eigen::VectorXd>(in.data.data, m.nbins);

  // ---- nominal and logk ----
  if (!in.norm.given()) Fail("norm", "is missing, but is required");
  if (in.norm.shape.size() != 2 || in.norm.shape[1] != nproc)
    Fail("norm", "has shape " + ShapeString(in.norm.shape) +
                     ", but must be [nbinsfull, nproc] with nproc = " + std::to_string(nproc) +
                     " (len(processes))");
  CheckFinite("norm", in.norm, false);
  m.nbins_full = in.norm.shape[0];
  if (m.nbins_full < m.nbins)
    Fail("norm", "has " + std::to_string(m.nbins_full) + " rows, but must have at least nbins = " +
                     std::to_string(m.nbins) + " (len(data))");
  const std::int64_t nbf = m.nbins_full;
  const std::vector<std::int64_t> logk_shape{nbf, nproc, nsyst};
  if (!in.logk.given()) Fail("logk", "is missing, but is required");
  ExpectShape("logk", in.logk, logk_shape, "[nbinsfull, nproc, nsyst]");
  CheckFinite("logk", in.logk, false);
  const bool asym = in.logk_halfdiff.given();
  if (asym) {
    ExpectShape("logk_halfdiff", in.logk_halfdiff, logk_shape, "[nbinsfull, nproc, nsyst]");
    CheckFinite("logk_halfdiff", in.logk_halfdiff, false);
  }
  m.asymmetric = asym;
  m.storage = engine::StorageKind::kDense;
  const bool lognormal = m.systematic_type == engine::SystematicType::kLogNormal;
  // rabbit's placeholder ln(1e-3) at zero nominal is accepted and dropped, as by the reader.
  const double placeholder = std::log(1e-3);
  auto is_placeholder = [&](double v) {
    return v == 0.0 || std::abs(std::abs(v) - std::abs(placeholder)) <= 1e-6 * 6.907755278982137;
  };
  engine::Tensor& t = m.tensor;
  t.row_start.push_back(0);
  for (std::int64_t b = 0; b < nbf; ++b) {
    for (int p = 0; p < nproc; ++p) {
      const std::int64_t cell = b * nproc + p;
      const double n = in.norm.data[cell];
      const std::size_t start = t.syst.size();
      for (int s = 0; s < nsyst; ++s) {
        const std::int64_t i = cell * nsyst + s;
        const double avg = in.logk.data[i];
        const double hd = asym ? in.logk_halfdiff.data[i] : 0.0;
        if (avg == 0.0 && hd == 0.0) continue;
        if (lognormal && !(n > 0)) {
          if (n == 0.0 && is_placeholder(avg) && is_placeholder(hd)) continue;
          Fail(Index(avg != 0.0 ? "logk" : "logk_halfdiff", logk_shape, i),
               "is " + Num(avg != 0.0 ? avg : hd) + " at (bin " + std::to_string(b) + ", process " +
                   Quote(m.processes[p]) + ", systematic " + Quote(m.systematics[s]) +
                   ") where the nominal yield is " + Num(n) +
                   ", but log-normal logk must be 0 where the nominal is not > 0 (only rabbit's "
                   "placeholder ln(1e-3) is accepted, and ignored, at zero nominal)");
        }
        t.syst.push_back(s);
        t.logk_avg.push_back(avg);
        if (asym) t.logk_halfdiff.push_back(hd);
      }
      if (n == 0.0 && t.syst.size() == start) continue;
      t.row_bin.push_back(static_cast<std::int32_t>(b));
      t.row_proc.push_back(p);
      t.norm.push_back(n);
      t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
    }
  }

  // ---- MC statistics ----
  const std::vector<std::int64_t> bp_shape{nbf, nproc};
  if (in.sumw2.given()) {
    ExpectShape("sumw2", in.sumw2, bp_shape, "[nbinsfull, nproc]");
    CheckFinite("sumw2", in.sumw2, true);
    m.sumw2 = BinProc(in.sumw2);
  } else {
    m.sumw2 = Eigen::MatrixXd::Zero(nbf, nproc);
  }
  if (in.sumw.given()) {
    ExpectShape("sumw", in.sumw, bp_shape, "[nbinsfull, nproc]");
    CheckFinite("sumw", in.sumw, false);
    m.sumw = BinProc(in.sumw);
  }

  // ---- channels: as the reader without metadata ----
  engine::Channel ch;
  ch.name = "ch0";
  ch.nbins = m.nbins;
  m.channels.push_back(ch);
  if (nbf > m.nbins) {
    engine::Channel mc;
    mc.name = "masked";
    mc.nbins = nbf - m.nbins;
    mc.masked = true;
    m.channels.push_back(mc);
  }
  std::string error;
  if (!m.IsValid(&error)) throw std::invalid_argument("invalid model: " + error);
  return m;
}

namespace {

std::string SomeNames(const std::vector<engine::ParamInfo>& params, std::size_t max = 8) {
  std::string out = "parameters: ";
  for (std::size_t i = 0; i < params.size() && i < max; ++i)
    out += (i ? ", " : "") + params[i].name;
  if (params.size() > max) out += ", ... (" + std::to_string(params.size()) + " in total)";
  return out;
}

}  // namespace

engine::FitOptions MakeFitOptions(const engine::Likelihood& likelihood,
                                  const std::vector<std::string>& freeze,
                                  const std::vector<std::pair<std::string, double>>& set,
                                  const std::string& method, double edm_tolerance,
                                  int max_iterations) {
  engine::FitOptions options;
  options.edm_tolerance = edm_tolerance;
  options.max_iterations = max_iterations;
  try {
    options.method = engine::FitMethodFromString(method);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("method: ") + e.what());
  }
  const auto& params = likelihood.params();
  const int n = likelihood.num_params();
  if (!freeze.empty()) {
    options.frozen.assign(n, false);
    for (const std::string& pattern : freeze) {
      std::regex re;
      try {
        re = std::regex(pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw std::invalid_argument("freeze: '" + pattern +
                                    "' is not a valid regular expression (" + e.what() + ")");
      }
      int matched = 0;
      for (int i = 0; i < n; ++i)
        if (std::regex_match(params[i].name, re)) options.frozen[i] = true, ++matched;
      if (matched == 0)
        throw std::invalid_argument("freeze: pattern '" + pattern +
                                    "' matches no parameter name (it must match a whole name; " +
                                    SomeNames(params) + ")");
    }
  }
  if (!set.empty()) {
    options.initial_params = likelihood.InitialParams();
    for (const auto& [name, value] : set) {
      const int i = likelihood.FindParam(name);
      if (i < 0)
        throw std::invalid_argument("set: no parameter named '" + name + "' (" + SomeNames(params) +
                                    ")");
      if (!std::isfinite(value))
        throw std::invalid_argument("set " + name + " is " + Num(value) +
                                    ", but must be a finite number");
      double x = value;
      if (params[i].kind == engine::ParamKind::kPoi && likelihood.options().poi_positive) {
        if (value < 0.0)
          throw std::invalid_argument("set " + name + " is " + Num(value) +
                                      ", but must be >= 0 with poi_positive");
        x = std::sqrt(value);
      }
      options.initial_params[i] = x;
    }
  }
  std::string error;
  if (!options.IsValid(n, &error)) throw std::invalid_argument("fit options: " + error);
  return options;
}

std::vector<engine::SystematicGroup> ParseGroups(
    const engine::Model& model, const std::vector<std::pair<std::string, std::string>>& items) {
  std::vector<engine::SystematicGroup> groups;
  for (const auto& [name, pattern] : items) {
    const std::string where = "groups: group " + name;
    if (name.empty()) throw std::invalid_argument("groups: a group name is empty");
    if (pattern.empty()) throw std::invalid_argument(where + ": the pattern is empty");
    if (name == "stat" || name == "binByBinStat" || name == "Total")
      throw std::invalid_argument(where +
                                  ": the name is reserved (rows stat, binByBinStat, Total)");
    for (const auto& g : model.groups)
      if (g.name == name)
        throw std::invalid_argument(where + ": the input already has a group of this name");
    std::regex re;
    try {
      re = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument(where + ": '" + pattern +
                                  "' is not a valid regular expression (" + e.what() + ")");
    }
    engine::SystematicGroup group;
    group.name = name;
    for (int s = 0; s < model.num_systematics(); ++s)
      if (std::regex_match(model.systematics[s], re)) group.members.push_back(s);
    if (group.members.empty())
      throw std::invalid_argument(where + ": pattern '" + pattern +
                                  "' matches no systematic (it must match a whole name)");
    groups.push_back(std::move(group));
  }
  return groups;
}

}  // namespace lepus::python
