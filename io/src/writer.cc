// WriteFitInput (Model -> HDF5 tensor layout) and the TensorWriter builder. Conventions are in
// docs/format.md; the logk formulas are docs/likelihood.md section 2.
#include "lepus/io/writer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "format_util.h"
#include "lepus/io/internal/hdf5_util.h"
#include "lepus/io/output.h"

#ifndef LEPUS_VERSION_STRING
#define LEPUS_VERSION_STRING "unknown"
#endif

namespace lepus::io {

namespace {

using detail::Num;
using detail::Quote;
using Json = nlohmann::json;

std::string MetaJson(const engine::Model& m, engine::StorageKind storage) {
  Json j;
  j["lepus_meta_version"] = detail::kMetaVersion;
  j["writer"] = std::string("lepus ") + LEPUS_VERSION_STRING;
  j["systematic_type"] = engine::ToString(m.systematic_type);
  j["symmetric"] = !m.asymmetric;
  j["storage"] = engine::ToString(storage);
  Json channels = Json::array();
  auto add_channel = [&](const std::string& name, std::int64_t nbins, bool masked,
                         const std::vector<engine::Axis>& axes) {
    Json c;
    c["name"] = name;
    c["masked"] = masked;
    c["nbins"] = nbins;
    Json ax = Json::array();
    for (const auto& a : axes) {
      Json ja{{"name", a.name}, {"edges", a.edges}};
      if (!a.labels.empty()) ja["labels"] = a.labels;
      ax.push_back(ja);
    }
    c["axes"] = ax;
    channels.push_back(c);
  };
  if (m.channels.empty()) {
    // A model without channel information gets the reader's fallback layout.
    add_channel("ch0", m.nbins, false, {});
    if (m.nbins_full > m.nbins) add_channel("masked", m.nbins_full - m.nbins, true, {});
  } else {
    for (const auto& c : m.channels) add_channel(c.name, c.nbins, c.masked, c.axes);
  }
  j["channels"] = channels;
  if (!m.systematic_scales.empty() || !m.systematic_units.empty()) {
    Json sy = Json::array();
    for (int s = 0; s < m.num_systematics(); ++s) {
      Json e;
      e["name"] = m.systematics[s];
      e["scale"] = m.systematic_scales.empty() ? 0.0 : m.systematic_scales[s];
      e["unit"] = m.systematic_units.empty() ? std::string() : m.systematic_units[s];
      sy.push_back(e);
    }
    j["systematics"] = sy;
  }
  return j.dump();
}

std::vector<double> RowMajor(const Eigen::MatrixXd& m) {
  std::vector<double> out(static_cast<std::size_t>(m.size()));
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out[r * m.cols() + c] = m(r, c);
  return out;
}

void WriteContents(h5::OutputFile& f, const engine::Model& m, const WriteOptions& options) {
  const int gz = options.gzip ? options.gzip_level : 0;
  const int nproc = m.num_processes();
  const int nsyst = m.num_systematics();
  const std::int64_t nbf = m.nbins_full;
  const engine::Tensor& t = m.tensor;

  f.WriteStrings("hprocs", m.processes);
  f.WriteStrings("hsignals", std::vector<std::string>(m.processes.begin(),
                                                      m.processes.begin() + m.num_signals));
  f.WriteStrings("hsysts", m.systematics);
  std::vector<std::string> noconstraint;
  for (int s = 0; s < nsyst; ++s)
    if (m.constraint_weights[s] == 0.0) noconstraint.push_back(m.systematics[s]);
  f.WriteStrings("hsystsnoconstraint", noconstraint);
  std::vector<std::string> group_names;
  std::vector<std::vector<int>> group_idxs;
  for (const auto& g : m.groups) {
    group_names.push_back(g.name);
    group_idxs.push_back(g.members);
  }
  f.WriteStrings("hsystgroups", group_names);
  f.WriteRaggedInt32("hsystgroupidxs", group_idxs);
  const std::vector<std::int32_t> noi(m.noi_indices.begin(), m.noi_indices.end());
  f.WriteInt32Flat("hnoiidxs", noi.data(), {static_cast<std::int64_t>(noi.size())});
  f.WriteDoubleFlat("hconstraintweights", m.constraint_weights.data(), {nsyst});

  f.WriteDoubleFlat("hdata_obs", m.data_obs.data(), {m.nbins});
  if (m.data_var.size() > 0) f.WriteDoubleFlat("hdata_var", m.data_var.data(), {m.nbins});
  const auto pseudo = RowMajor(m.pseudodata);
  f.WriteDoubleFlat("hpseudodata", pseudo.data(), {m.nbins, m.pseudodata.cols()}, gz);
  f.WriteStrings("hpseudodatanames", m.pseudodata_names);

  if (m.sumw.size() > 0) {
    const auto sumw = RowMajor(m.sumw);
    f.WriteDoubleFlat("hsumw", sumw.data(), {nbf, nproc}, gz);
  }
  const auto sumw2 = RowMajor(m.sumw2);
  f.WriteDoubleFlat("hsumw2", sumw2.data(), {nbf, nproc}, gz);
  if (!m.beta_variations.empty()) {
    std::vector<double> bv(static_cast<std::size_t>(nbf * m.nbins * nproc), 0.0);
    for (std::int64_t i = 0; i < nbf; ++i)
      for (std::int64_t j = 0; j < m.nbins; ++j)
        for (std::int64_t p = 0; p < nproc; ++p)
          bv[static_cast<std::size_t>((i * m.nbins + j) * nproc + p)] = m.beta_variations[p](i, j);
    f.WriteDoubleFlat("hbetavariations", bv.data(), {nbf, m.nbins, nproc}, gz);
  }

  const bool asym = m.asymmetric;
  if (options.storage == engine::StorageKind::kDense) {
    std::vector<double> norm(static_cast<std::size_t>(nbf * nproc), 0.0);
    const std::int64_t planes = asym ? 2 : 1;
    std::vector<double> logk(static_cast<std::size_t>(nbf * nproc * planes * nsyst), 0.0);
    for (std::int64_t r = 0; r < t.num_rows(); ++r) {
      const std::int64_t cell = static_cast<std::int64_t>(t.row_bin[r]) * nproc + t.row_proc[r];
      norm[cell] = t.norm[r];
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        logk[(cell * planes) * nsyst + t.syst[i]] = t.logk_avg[i];
        if (asym) logk[(cell * planes + 1) * nsyst + t.syst[i]] = t.logk_halfdiff[i];
      }
    }
    f.WriteDoubleFlat("hnorm", norm.data(), {nbf, nproc}, gz);
    if (asym) {
      f.WriteDoubleFlat("hlogk", logk.data(), {nbf, nproc, 2, nsyst}, gz);
    } else {
      f.WriteDoubleFlat("hlogk", logk.data(), {nbf, nproc, nsyst}, gz);
    }
  } else {
    const std::int64_t nrows = t.num_rows();
    std::vector<std::int64_t> nidx(static_cast<std::size_t>(2 * nrows));
    for (std::int64_t r = 0; r < nrows; ++r) {
      nidx[2 * r] = t.row_bin[r];
      nidx[2 * r + 1] = t.row_proc[r];
    }
    f.CreateGroup("hnorm_sparse");
    f.WriteInt64Attribute("hnorm_sparse", "dense_shape", {nbf, nproc});
    f.WriteInt64Flat("hnorm_sparse/indices", nidx.data(), {nrows, 2}, gz);
    f.WriteDoubleFlat("hnorm_sparse/values", t.norm.data(), {nrows}, gz);
    // Per row: the avg columns, then the halfdiff columns (offset nsyst), as rabbit orders them.
    std::vector<std::int64_t> kidx;
    std::vector<double> kval;
    for (std::int64_t r = 0; r < nrows; ++r) {
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        if (t.logk_avg[i] == 0.0) continue;
        kidx.push_back(r);
        kidx.push_back(t.syst[i]);
        kval.push_back(t.logk_avg[i]);
      }
      if (!asym) continue;
      for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i) {
        if (t.logk_halfdiff[i] == 0.0) continue;
        kidx.push_back(r);
        kidx.push_back(nsyst + t.syst[i]);
        kval.push_back(t.logk_halfdiff[i]);
      }
    }
    const auto nnzk = static_cast<std::int64_t>(kval.size());
    f.CreateGroup("hlogk_sparse");
    f.WriteInt64Attribute("hlogk_sparse", "dense_shape",
                          {nrows, asym ? 2 * static_cast<std::int64_t>(nsyst) : nsyst});
    f.WriteInt64Flat("hlogk_sparse/indices", kidx.data(), {nnzk, 2}, gz);
    f.WriteDoubleFlat("hlogk_sparse/values", kval.data(), {nnzk}, gz);
  }

  if (m.data_cov_inv.size() > 0) {
    const auto w = RowMajor(m.data_cov_inv);
    f.WriteDoubleFlat("hdata_cov_inv", w.data(), {m.nbins, m.nbins}, gz);
  }
  if (!m.external_terms.empty()) {
    // rabbit's layout: external_terms/<name>/{params, grad_values, hess_sparse}.
    std::vector<std::string> names;
    for (int p = 0; p < m.num_signals; ++p) names.push_back(m.processes[p]);
    names.insert(names.end(), m.systematics.begin(), m.systematics.end());
    f.CreateGroup("external_terms");
    for (const engine::ExternalTerm& e : m.external_terms) {
      const std::string base = "external_terms/" + e.name;
      f.CreateGroup(base);
      std::vector<std::string> params;
      for (int q : e.params) params.push_back(names[q]);
      f.WriteStrings(base + "/params", params);
      const auto n = static_cast<std::int64_t>(e.params.size());
      if (e.grad.size() > 0) f.WriteDoubleFlat(base + "/grad_values", e.grad.data(), {n});
      if (e.hess.size() > 0) {
        std::vector<std::int64_t> idx;
        std::vector<double> val;
        const Eigen::SparseMatrix<double, Eigen::RowMajor> h = e.hess;  // canonical row-major order
        for (int r = 0; r < h.outerSize(); ++r)
          for (Eigen::SparseMatrix<double, Eigen::RowMajor>::InnerIterator it(h, r); it; ++it) {
            idx.push_back(it.row());
            idx.push_back(it.col());
            val.push_back(it.value());
          }
        const auto nnz = static_cast<std::int64_t>(val.size());
        f.CreateGroup(base + "/hess_sparse");
        f.WriteInt64Attribute(base + "/hess_sparse", "dense_shape", {n, n});
        f.WriteInt64Flat(base + "/hess_sparse/indices", idx.data(), {nnz, 2});
        f.WriteDoubleFlat(base + "/hess_sparse/values", val.data(), {nnz});
      }
    }
  }
  f.WriteStringAttribute("/", "meta_json", MetaJson(m, options.storage));
}

bool IsFiniteVector(const std::vector<double>& v, std::size_t* bad) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      *bad = i;
      return false;
    }
  return true;
}

}  // namespace

// ---- WriteFitInput --------------------------------------------------------------------------

void WriteFitInput(const engine::Model& model, const std::string& path,
                   const WriteOptions& options) {
  std::string error;
  if (!model.IsValid(&error)) throw InputError(path + ": cannot write an invalid model: " + error);
  if (options.gzip && (options.gzip_level < 1 || options.gzip_level > 9))
    throw InputError(path + ": gzip_level is " + std::to_string(options.gzip_level) +
                     ", but must be in [1, 9]");
  AtomicOutput out(path);
  try {
    {
      h5::OutputFile f(out.temp_path());
      WriteContents(f, model, options);
      f.Close();
    }
    out.Commit();
  } catch (const InputError& e) {
    out.Discard();
    // Report the destination, not the temporary name.
    throw InputError(out.Rename(e.what()));
  }
}

// ---- Symmetrization -------------------------------------------------------------------------

std::string ToString(Symmetrization s) {
  switch (s) {
    case Symmetrization::kNone:
      return "none";
    case Symmetrization::kAverage:
      return "average";
    case Symmetrization::kConservative:
      return "conservative";
    case Symmetrization::kLinear:
      return "linear";
    case Symmetrization::kQuadratic:
      return "quadratic";
  }
  return "none";
}

Symmetrization SymmetrizationFromString(const std::string& text) {
  for (auto s : {Symmetrization::kNone, Symmetrization::kAverage, Symmetrization::kConservative,
                 Symmetrization::kLinear, Symmetrization::kQuadratic})
    if (text == ToString(s)) return s;
  throw std::invalid_argument("symmetrization is \"" + text +
                              "\", but must be one of none, average, conservative, linear, "
                              "quadratic");
}

// ---- TensorWriter ---------------------------------------------------------------------------

TensorWriter::TensorWriter(engine::SystematicType type) : type_(type) {}

int TensorWriter::ChannelIndex(const std::string& name) const {
  for (std::size_t i = 0; i < channels_.size(); ++i)
    if (channels_[i].name == name) return static_cast<int>(i);
  throw InputError("TensorWriter: channel " + Quote(name) + " is not defined (AddChannel)");
}

int TensorWriter::ProcessIndex(const std::string& name) const {
  for (std::size_t i = 0; i < processes_.size(); ++i)
    if (processes_[i].first == name) return static_cast<int>(i);
  throw InputError("TensorWriter: process " + Quote(name) + " is not defined (AddProcess)");
}

int TensorWriter::SystIndex(const std::string& name) {
  for (std::size_t i = 0; i < systs_.size(); ++i)
    if (systs_[i].name == name) return static_cast<int>(i);
  if (name.empty()) throw InputError("TensorWriter: systematic name is empty");
  SystInfo info;
  info.name = name;
  systs_.push_back(info);
  return static_cast<int>(systs_.size()) - 1;
}

void TensorWriter::AddChannel(const std::string& name, const std::vector<engine::Axis>& axes,
                              bool masked) {
  const std::string where = "TensorWriter: channel " + Quote(name);
  if (name.empty()) throw InputError("TensorWriter: channel name is empty");
  for (const auto& c : channels_)
    if (c.name == name) throw InputError(where + " is defined twice");
  if (axes.empty()) throw InputError(where + ": axes is empty, but must have at least one axis");
  std::int64_t nbins = 1;
  for (const auto& ax : axes) {
    if (ax.edges.size() < 2)
      throw InputError(where + ": axis " + Quote(ax.name) + " has " +
                       std::to_string(ax.edges.size()) +
                       " edges, but must have at least 2 (use AddChannel(name, nbins) for "
                       "integer bins)");
    for (std::size_t i = 1; i < ax.edges.size(); ++i)
      if (!(std::isfinite(ax.edges[i]) && ax.edges[i] > ax.edges[i - 1]))
        throw InputError(where + ": axis " + Quote(ax.name) + " edges[" + std::to_string(i) +
                         "] is " + Num(ax.edges[i]) + ", but must be finite and > edges[" +
                         std::to_string(i - 1) + "] = " + Num(ax.edges[i - 1]));
    nbins *= static_cast<std::int64_t>(ax.edges.size()) - 1;
  }
  if (nbins > (std::int64_t{1} << 30))
    throw InputError(where + ": has " + std::to_string(nbins) + " bins, but must have < 2^30");
  ChannelInfo c;
  c.name = name;
  c.axes = axes;
  c.nbins = static_cast<int>(nbins);
  c.masked = masked;
  channels_.push_back(std::move(c));
}

void TensorWriter::AddChannel(const std::string& name, int nbins, bool masked) {
  if (name.empty()) throw InputError("TensorWriter: channel name is empty");
  for (const auto& c : channels_)
    if (c.name == name)
      throw InputError("TensorWriter: channel " + Quote(name) + " is defined twice");
  if (nbins <= 0)
    throw InputError("TensorWriter: channel " + Quote(name) + ": nbins is " +
                     std::to_string(nbins) + ", but must be > 0");
  ChannelInfo c;
  c.name = name;
  c.nbins = nbins;
  c.masked = masked;
  channels_.push_back(std::move(c));
}

void TensorWriter::AddProcess(const std::string& name, bool signal) {
  if (name.empty()) throw InputError("TensorWriter: process name is empty");
  for (const auto& p : processes_)
    if (p.first == name)
      throw InputError("TensorWriter: process " + Quote(name) + " is defined twice");
  processes_.emplace_back(name, signal);
}

namespace {

void CheckValues(const std::string& where, const std::vector<double>& v, std::size_t expected,
                 bool non_negative) {
  if (v.size() != expected)
    throw InputError(where + " has " + std::to_string(v.size()) +
                     " entries, but must have one per bin of the channel (" +
                     std::to_string(expected) + ")");
  std::size_t bad = 0;
  if (!IsFiniteVector(v, &bad))
    throw InputError(where + "[" + std::to_string(bad) + "] is " + Num(v[bad]) +
                     ", but must be finite");
  if (non_negative)
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i] < 0)
        throw InputError(where + "[" + std::to_string(i) + "] is " + Num(v[i]) +
                         ", but must be >= 0");
}

}  // namespace

void TensorWriter::SetData(const std::string& channel, const std::vector<double>& values) {
  ChannelInfo& c = channels_[ChannelIndex(channel)];
  const std::string where = "TensorWriter: SetData(" + Quote(channel) + ")";
  if (c.masked)
    throw InputError(where +
                     ": the channel is masked, but data can only be set for unmasked "
                     "channels");
  CheckValues(where + ": values", values, static_cast<std::size_t>(c.nbins), true);
  c.data = values;
  c.has_data = true;
}

void TensorWriter::AddPseudoData(const std::string& name, const std::string& channel,
                                 const std::vector<double>& values) {
  const int ci = ChannelIndex(channel);
  const std::string where =
      "TensorWriter: AddPseudoData(" + Quote(name) + ", " + Quote(channel) + ")";
  if (channels_[ci].masked)
    throw InputError(where +
                     ": the channel is masked, but pseudodata can only be set for "
                     "unmasked channels");
  CheckValues(where + ": values", values, static_cast<std::size_t>(channels_[ci].nbins), true);
  auto it = std::find_if(pseudodata_.begin(), pseudodata_.end(),
                         [&](const auto& p) { return p.first == name; });
  if (it == pseudodata_.end()) {
    pseudodata_.emplace_back(name, std::map<int, std::vector<double>>{});
    it = pseudodata_.end() - 1;
  }
  if (it->second.count(ci)) throw InputError(where + ": already set for this channel");
  it->second[ci] = values;
}

void TensorWriter::SetNominal(const std::string& channel, const std::string& process,
                              const std::vector<double>& sumw, const std::vector<double>& sumw2) {
  const int ci = ChannelIndex(channel);
  const int pi = ProcessIndex(process);
  const std::string where =
      "TensorWriter: SetNominal(" + Quote(channel) + ", " + Quote(process) + ")";
  const auto n = static_cast<std::size_t>(channels_[ci].nbins);
  CheckValues(where + ": sumw", sumw, n, false);
  if (!sumw2.empty()) {
    if (sumw2.size() != sumw.size())
      throw InputError(where + ": sumw2 has " + std::to_string(sumw2.size()) +
                       " entries, but must be empty or have as many as sumw (" +
                       std::to_string(sumw.size()) + ")");
    CheckValues(where + ": sumw2", sumw2, n, true);
  }
  if (nominal_.count({ci, pi})) throw InputError(where + ": the nominal is already set");
  nominal_[{ci, pi}] = {sumw, sumw2};
}

void TensorWriter::DeclareSystematic(const std::string& name, double prior_width, bool noi,
                                     double scale, const std::string& unit) {
  if (!std::isfinite(prior_width))
    throw InputError("TensorWriter: DeclareSystematic(" + Quote(name) + "): prior_width is " +
                     Num(prior_width) + ", but must be finite (<= 0 for an unconstrained one)");
  if (!std::isfinite(scale))
    throw InputError("TensorWriter: DeclareSystematic(" + Quote(name) + "): scale is " +
                     Num(scale) + ", but must be finite");
  SystInfo& s = systs_[SystIndex(name)];
  s.prior_width = prior_width;
  s.noi = noi;
  s.scale = scale;
  s.unit = unit;
}

void TensorWriter::AddLogk(int syst, int process, int channel, const std::vector<double>& avg,
                           const std::vector<double>& halfdiff) {
  const Key key{channel, process, syst};
  if (logk_.count(key))
    throw InputError("TensorWriter: systematic " + Quote(systs_[syst].name) +
                     " is already set for process " + Quote(processes_[process].first) +
                     " in channel " + Quote(channels_[channel].name));
  logk_[key] = {avg, halfdiff};
}

// Shared by the norm and shape systematics: (logkup, logkdown) per bin -> entries of the
// requested symmetrisation. `symmetric`: there is no separate down variation (logkdown ==
// logkup), so no halfdiff plane is stored even for kNone.
void TensorWriter::AddVariation(const std::string& name, int process, int channel,
                                const std::vector<double>& logkup,
                                const std::vector<double>& logkdown, bool symmetric,
                                Symmetrization sym) {
  const std::size_t n = logkup.size();
  std::vector<double> avg(n), hd(n);
  for (std::size_t i = 0; i < n; ++i) {
    avg[i] = 0.5 * (logkup[i] + logkdown[i]);
    hd[i] = 0.5 * (logkup[i] - logkdown[i]);
  }
  switch (sym) {
    case Symmetrization::kNone:
      AddLogk(SystIndex(name), process, channel, symmetric ? logkup : avg,
              symmetric ? std::vector<double>{} : hd);
      return;
    case Symmetrization::kAverage:
      AddLogk(SystIndex(name), process, channel, symmetric ? logkup : avg, {});
      return;
    case Symmetrization::kConservative: {
      std::vector<double> c(n);
      // rabbit's rule: whichever of logkup, logkdown is larger in magnitude, with its own sign
      // (a one-sided variation, up and down on the same side, takes the down side's sign when the
      // down variation is the larger).
      for (std::size_t i = 0; i < n; ++i)
        c[i] = std::abs(logkup[i]) > std::abs(logkdown[i]) ? logkup[i] : logkdown[i];
      AddLogk(SystIndex(name), process, channel, c, {});
      return;
    }
    case Symmetrization::kLinear:
    case Symmetrization::kQuadratic: {
      // Quadratic: the symmetric nuisance carries sqrt(3) x halfdiff (the variance of a
      // uniform spread of +-halfdiff is halfdiff^2 / 3).
      const double f = sym == Symmetrization::kQuadratic ? std::sqrt(3.0) : 1.0;
      for (auto& v : hd) v *= f;
      AddLogk(SystIndex(name + "SymAvg"), process, channel, avg, {});
      AddLogk(SystIndex(name + "SymDiff"), process, channel, hd, {});
      return;
    }
  }
}

void TensorWriter::AddNormSystematic(const std::string& name, const std::string& process,
                                     const std::string& channel, double kappa_up, double kappa_down,
                                     Symmetrization sym) {
  const int ci = ChannelIndex(channel);
  const int pi = ProcessIndex(process);
  const std::string where = "TensorWriter: AddNormSystematic(" + Quote(name) + ", " +
                            Quote(process) + ", " + Quote(channel) + ")";
  auto nit = nominal_.find({ci, pi});
  if (nit == nominal_.end())
    throw InputError(where +
                     ": the process has no nominal template in the channel (call "
                     "SetNominal first)");
  if (!std::isfinite(kappa_up) || (type_ == engine::SystematicType::kLogNormal && kappa_up <= 0))
    throw InputError(where + ": kappa_up is " + Num(kappa_up) + ", but must be finite and > 0");
  if (!std::isfinite(kappa_down))
    throw InputError(where + ": kappa_down is " + Num(kappa_down) +
                     ", but must be finite (<= 0 for symmetric)");
  const bool symmetric = kappa_down <= 0;
  const auto& nom = nit->second.first;
  const std::size_t n = nom.size();
  std::vector<double> up(n, 0.0), down(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    if (type_ == engine::SystematicType::kLogNormal) {
      if (!(nom[i] > 0)) continue;  // no effect possible on a non-positive nominal
      up[i] = std::log(kappa_up);
      down[i] = symmetric ? up[i] : -std::log(kappa_down);
    } else {
      // Normal (additive): the shift of the yield at theta = +-1.
      up[i] = (kappa_up - 1.0) * nom[i];
      down[i] = symmetric ? up[i] : -(kappa_down - 1.0) * nom[i];
    }
  }
  AddVariation(name, pi, ci, up, down, symmetric, sym);
}

void TensorWriter::AddShapeSystematic(const std::string& name, const std::string& process,
                                      const std::string& channel, const std::vector<double>& up,
                                      const std::vector<double>& down, Symmetrization sym) {
  const int ci = ChannelIndex(channel);
  const int pi = ProcessIndex(process);
  const std::string where = "TensorWriter: AddShapeSystematic(" + Quote(name) + ", " +
                            Quote(process) + ", " + Quote(channel) + ")";
  auto nit = nominal_.find({ci, pi});
  if (nit == nominal_.end())
    throw InputError(where +
                     ": the process has no nominal template in the channel (call "
                     "SetNominal first)");
  const auto& nom = nit->second.first;
  const std::size_t n = nom.size();
  CheckValues(where + ": up", up, n, false);
  const bool symmetric = down.empty();
  if (!symmetric) CheckValues(where + ": down", down, n, false);

  std::vector<double> lup(n, 0.0), ldown(n, 0.0);
  long long clipped = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = symmetric ? 0.0 : down[i];
    if (type_ == engine::SystematicType::kNormal) {
      lup[i] = up[i] - nom[i];
      ldown[i] = symmetric ? lup[i] : nom[i] - d;
      continue;
    }
    if (!(nom[i] > 0)) {
      // A log-normal variation cannot act on a non-positive nominal: rabbit would store
      // ln(1e-3), which has no effect at nom = 0; we drop the entry. Counted when the template
      // differed from the nominal (information lost).
      if (up[i] != nom[i] || (!symmetric && d != nom[i])) ++clipped;
      continue;
    }
    if (up[i] > 0) {
      lup[i] = std::log(up[i] / nom[i]);
    } else {
      lup[i] = detail::kLogkPlaceholder;
      ++clipped;
    }
    if (symmetric) {
      ldown[i] = lup[i];
    } else if (d > 0) {
      ldown[i] = -std::log(d / nom[i]);
    } else {
      ldown[i] = -detail::kLogkPlaceholder;
      ++clipped;
    }
  }
  AddVariation(name, pi, ci, lup, ldown, symmetric, sym);
  clipped_entries_ += clipped;
}

void TensorWriter::AddToGroup(const std::string& group, const std::string& systematic) {
  if (group.empty()) throw InputError("TensorWriter: group name is empty");
  auto it =
      std::find_if(groups_.begin(), groups_.end(), [&](const auto& g) { return g.first == group; });
  if (it == groups_.end()) {
    groups_.emplace_back(group, std::vector<std::string>{});
    it = groups_.end() - 1;
  }
  it->second.push_back(systematic);
}

engine::Model TensorWriter::Build() const {
  engine::Model m;
  m.systematic_type = type_;
  if (processes_.empty()) throw InputError("TensorWriter: no processes (AddProcess)");

  // Channels: unmasked in call order, then masked.
  std::vector<int> corder;
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t c = 0; c < channels_.size(); ++c)
      if (channels_[c].masked == (pass == 1)) corder.push_back(static_cast<int>(c));
  std::vector<std::int64_t> offset(channels_.size(), 0);
  for (int c : corder) {
    const auto& ch = channels_[c];
    if (!ch.masked && !ch.has_data)
      throw InputError("TensorWriter: channel " + Quote(ch.name) +
                       " is unmasked but has no data (SetData)");
    offset[c] = m.nbins_full;
    m.nbins_full += ch.nbins;
    if (!ch.masked) m.nbins += ch.nbins;
    engine::Channel out;
    out.name = ch.name;
    out.axes = ch.axes;
    out.nbins = ch.nbins;
    out.masked = ch.masked;
    m.channels.push_back(std::move(out));
  }
  if (m.nbins == 0) throw InputError("TensorWriter: no unmasked channel (AddChannel)");

  // Processes: signals first, call order within each class.
  std::vector<int> porder, pnew(processes_.size());
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t p = 0; p < processes_.size(); ++p)
      if (processes_[p].second == (pass == 0)) {
        pnew[p] = static_cast<int>(porder.size());
        porder.push_back(static_cast<int>(p));
        m.processes.push_back(processes_[p].first);
        if (pass == 0) ++m.num_signals;
      }
  const int nproc = m.num_processes();

  // Systematics: declaration order. A name split by the linear/quadratic symmetrisation into
  // NameSymAvg/NameSymDiff (and with no effect of its own) passes its declaration to both halves
  // and is not a parameter itself.
  std::vector<bool> has_effect(systs_.size(), false);
  for (const auto& [key, value] : logk_) has_effect[key.syst] = true;
  auto find_syst = [&](const std::string& name) -> int {
    for (std::size_t s = 0; s < systs_.size(); ++s)
      if (systs_[s].name == name) return static_cast<int>(s);
    return -1;
  };
  auto is_split_base = [&](std::size_t s) {
    return !has_effect[s] && (find_syst(systs_[s].name + "SymAvg") >= 0 ||
                              find_syst(systs_[s].name + "SymDiff") >= 0);
  };
  std::vector<int> snew(systs_.size(), -1);
  std::vector<const SystInfo*> settings(systs_.size(), nullptr);
  for (std::size_t s = 0; s < systs_.size(); ++s) settings[s] = &systs_[s];
  for (std::size_t s = 0; s < systs_.size(); ++s) {
    if (!is_split_base(s)) continue;
    for (const char* suffix : {"SymAvg", "SymDiff"}) {
      const int d = find_syst(systs_[s].name + suffix);
      if (d >= 0) settings[d] = &systs_[s];
    }
  }
  for (std::size_t s = 0; s < systs_.size(); ++s) {
    if (is_split_base(s)) continue;
    const SystInfo& info = *settings[s];
    snew[s] = m.num_systematics();
    m.systematics.push_back(systs_[s].name);
    m.constraint_weights.push_back(
        info.prior_width > 0 ? 1.0 / (info.prior_width * info.prior_width) : 0.0);
    if (info.noi) m.noi_indices.push_back(snew[s]);
    m.systematic_scales.push_back(info.scale);
    m.systematic_units.push_back(info.unit);
  }
  for (const auto& [gname, members] : groups_) {
    std::set<int> idx;
    for (const auto& name : members) {
      const int s = find_syst(name);
      if (s < 0)
        throw InputError("TensorWriter: group " + Quote(gname) + ": systematic " + Quote(name) +
                         " is not defined");
      if (snew[s] >= 0) {
        idx.insert(snew[s]);
      } else {  // a split base: both halves
        for (const char* suffix : {"SymAvg", "SymDiff"}) {
          const int d = find_syst(name + suffix);
          if (d >= 0 && snew[d] >= 0) idx.insert(snew[d]);
        }
      }
    }
    m.groups.push_back(engine::SystematicGroup{gname, std::vector<int>(idx.begin(), idx.end())});
  }

  // Data and pseudodata in tensor bin order.
  m.data_obs = Eigen::VectorXd::Zero(m.nbins);
  for (int c : corder)
    if (!channels_[c].masked)
      for (int i = 0; i < channels_[c].nbins; ++i) m.data_obs[offset[c] + i] = channels_[c].data[i];
  if (!pseudodata_.empty()) {
    m.pseudodata = Eigen::MatrixXd::Zero(m.nbins, static_cast<Eigen::Index>(pseudodata_.size()));
    for (std::size_t k = 0; k < pseudodata_.size(); ++k) {
      const auto& [pname, per_channel] = pseudodata_[k];
      for (int c : corder) {
        if (channels_[c].masked) continue;
        auto it = per_channel.find(c);
        if (it == per_channel.end())
          throw InputError("TensorWriter: pseudodata " + Quote(pname) +
                           " has no values for channel " + Quote(channels_[c].name) +
                           " (AddPseudoData)");
        for (int i = 0; i < channels_[c].nbins; ++i)
          m.pseudodata(offset[c] + i, static_cast<Eigen::Index>(k)) = it->second[i];
      }
      m.pseudodata_names.push_back(pname);
    }
  }

  // Nominal, MC statistics, and the tensor rows (bin-major, then process in final order).
  m.sumw = Eigen::MatrixXd::Zero(m.nbins_full, nproc);
  m.sumw2 = Eigen::MatrixXd::Zero(m.nbins_full, nproc);
  bool asym = false;
  for (const auto& [key, value] : logk_) asym = asym || !value.second.empty();
  m.asymmetric = asym;

  engine::Tensor& t = m.tensor;
  t.row_start.push_back(0);
  for (int c : corder) {
    // Per final process: its nominal and its logk blocks (ordered by systematic).
    std::vector<const std::vector<double>*> nom(nproc, nullptr), nom2(nproc, nullptr);
    std::vector<
        std::vector<std::pair<int, const std::pair<std::vector<double>, std::vector<double>>*>>>
        blocks(nproc);
    for (int pf = 0; pf < nproc; ++pf) {
      const int po = porder[pf];
      auto nit = nominal_.find({c, po});
      if (nit != nominal_.end()) {
        nom[pf] = &nit->second.first;
        if (!nit->second.second.empty()) nom2[pf] = &nit->second.second;
      }
      for (auto it = logk_.lower_bound(Key{c, po, 0});
           it != logk_.end() && it->first.channel == c && it->first.process == po; ++it)
        blocks[pf].emplace_back(snew[it->first.syst], &it->second);
      // snew is monotone in the declaration index, so the blocks stay sorted by column.
    }
    for (int i = 0; i < channels_[c].nbins; ++i) {
      const std::int64_t b = offset[c] + i;
      for (int pf = 0; pf < nproc; ++pf) {
        const double n = nom[pf] ? (*nom[pf])[i] : 0.0;
        m.sumw(b, pf) = n;
        if (nom2[pf]) m.sumw2(b, pf) = (*nom2[pf])[i];
        for (const auto& [s, lk] : blocks[pf]) {
          const double a = lk->first[i];
          const double h = lk->second.empty() ? 0.0 : lk->second[i];
          if (a == 0.0 && h == 0.0) continue;
          t.syst.push_back(s);
          t.logk_avg.push_back(a);
          if (asym) t.logk_halfdiff.push_back(h);
        }
        if (n == 0.0 && static_cast<std::int64_t>(t.syst.size()) == t.row_start.back()) continue;
        t.row_bin.push_back(static_cast<std::int32_t>(b));
        t.row_proc.push_back(pf);
        t.norm.push_back(n);
        t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
      }
    }
  }
  std::string error;
  if (!m.IsValid(&error)) throw InputError("TensorWriter: the built model is invalid: " + error);
  return m;
}

void TensorWriter::Write(const std::string& path, const WriteOptions& options) const {
  WriteFitInput(Build(), path, options);
}

}  // namespace lepus::io
