// Reader of fit inputs in the tensor layout (docs/format.md). The steps mirror the layout table:
// names and constraints, data, nominal + logk (dense or sparse) into the compressed-row tensor,
// MC statistics, metadata; every value is checked where it is read so that the message can name
// the dataset and the flat index, and Model::IsValid is the final safety net.
#include "lepus/io/reader.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format_util.h"
#include "lepus/io/internal/hdf5_util.h"
#include "lepus/io/workspace.h"
#include "pickle.h"
#include "rabbit_meta.h"

namespace lepus::io {

namespace {

using detail::Num;
using detail::Quote;
using Json = nlohmann::json;

// ---- meta_json through typed accessors ------------------------------------------------------

class MetaReader {
 public:
  explicit MetaReader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void Fail(const std::string& key, const std::string& what) const {
    throw InputError(file_ + ": meta_json: " + (key.empty() ? "" : key + " ") + what);
  }

  const Json& Member(const Json& obj, const std::string& path, const std::string& key) const {
    const std::string full = path.empty() ? key : path + "." + key;
    if (!obj.is_object()) Fail(path.empty() ? "(top level)" : path, "is not a JSON object");
    auto it = obj.find(key);
    if (it == obj.end()) Fail(full, "is missing, but is required");
    return *it;
  }
  const Json* Optional(const Json& obj, const std::string& key) const {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }
  std::string Describe(const Json& v) const {
    std::string s = v.dump();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s + " (" + v.type_name() + ")";
  }
  std::string String(const Json& v, const std::string& key) const {
    if (!v.is_string()) Fail(key, "is " + Describe(v) + ", but must be a string");
    return v.get<std::string>();
  }
  double Number(const Json& v, const std::string& key) const {
    if (!v.is_number()) Fail(key, "is " + Describe(v) + ", but must be a number");
    // Defensive: nlohmann_json already refuses 1e400 while parsing (ParseMeta).
    if (!std::isfinite(v.get<double>()))
      Fail(key, std::string("is ") + (v.get<double>() > 0 ? "inf" : "-inf") +
                    ", but must be a finite number (at most 1.8e308 in magnitude)");
    return v.get<double>();
  }
  std::int64_t Integer(const Json& v, const std::string& key) const {
    if (!v.is_number_integer()) Fail(key, "is " + Describe(v) + ", but must be an integer");
    return v.get<std::int64_t>();
  }
  bool Bool(const Json& v, const std::string& key) const {
    if (!v.is_boolean()) Fail(key, "is " + Describe(v) + ", but must be true or false");
    return v.get<bool>();
  }
  const Json& Array(const Json& v, const std::string& key) const {
    if (!v.is_array()) Fail(key, "is " + Describe(v) + ", but must be an array");
    return v;
  }

 private:
  std::string file_;
};

struct Meta {
  bool present = false;
  std::string format;  // "meta_json" or "rabbit" (the pickled `meta` group)
  engine::SystematicType type = engine::SystematicType::kLogNormal;
  std::vector<engine::Channel> channels;
  std::vector<double> scales;      // [nsyst] or empty
  std::vector<std::string> units;  // [nsyst] or empty
  // rabbit: where each channel comes from, for messages ("meta: channel_info['sig']"); empty
  // for meta_json ("meta_json: channels[i]").
  std::vector<std::string> channel_keys;
  int symmetric_tensor = -1;   // rabbit: -1 absent, else 0 / 1
  std::string meta_info_json;  // rabbit: meta_info as JSON
  std::vector<std::string> warnings;
};

Meta ParseMeta(const std::string& file, const std::string& text,
               const std::vector<std::string>& systs) {
  MetaReader r(file);
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::out_of_range& e) {
    // nlohmann_json refuses a number beyond the range of a double (1e400) while parsing.
    r.Fail("", std::string("is not valid JSON (a number is beyond the range of a double, at "
                           "most 1.8e308 in magnitude: ") +
                   e.what() + ")");
  } catch (const Json::exception& e) {  // parse_error
    r.Fail("", std::string("is not valid JSON (") + e.what() + ")");
  }
  Meta meta;
  meta.present = true;
  meta.format = "meta_json";
  const std::int64_t version =
      r.Integer(r.Member(j, "", "lepus_meta_version"), "lepus_meta_version");
  if (version != detail::kMetaVersion)
    r.Fail("lepus_meta_version",
           "is " + std::to_string(version) + ", but this lepus reads version " +
               std::to_string(detail::kMetaVersion) +
               " only (the file was written by an incompatible lepus version; rewrite it with "
               "this version or upgrade lepus)");

  const std::string type_text = r.String(r.Member(j, "", "systematic_type"), "systematic_type");
  if (type_text == "log_normal" || type_text == "lognormal") {
    meta.type = engine::SystematicType::kLogNormal;
  } else if (type_text == "normal") {
    meta.type = engine::SystematicType::kNormal;
  } else {
    r.Fail("systematic_type",
           "is " + Quote(type_text) + ", but must be \"log_normal\" or \"normal\"");
  }

  const Json& channels = r.Array(r.Member(j, "", "channels"), "channels");
  for (std::size_t i = 0; i < channels.size(); ++i) {
    const std::string key = "channels[" + std::to_string(i) + "]";
    const Json& c = channels[i];
    engine::Channel ch;
    ch.name = r.String(r.Member(c, key, "name"), key + ".name");
    ch.masked = r.Bool(r.Member(c, key, "masked"), key + ".masked");
    ch.nbins = r.Integer(r.Member(c, key, "nbins"), key + ".nbins");
    if (ch.nbins <= 0)
      r.Fail(key + ".nbins", "is " + std::to_string(ch.nbins) + ", but must be > 0");
    if (const Json* axes = r.Optional(c, "axes")) {
      r.Array(*axes, key + ".axes");
      for (std::size_t a = 0; a < axes->size(); ++a) {
        const std::string akey = key + ".axes[" + std::to_string(a) + "]";
        engine::Axis ax;
        ax.name = r.String(r.Member((*axes)[a], akey, "name"), akey + ".name");
        const Json& edges = r.Array(r.Member((*axes)[a], akey, "edges"), akey + ".edges");
        for (std::size_t e = 0; e < edges.size(); ++e) {
          const std::string ekey = akey + ".edges[" + std::to_string(e) + "]";
          const double v = r.Number(edges[e], ekey);
          if (!std::isfinite(v)) r.Fail(ekey, "is " + Num(v) + ", but must be finite");
          if (e > 0 && !(v > ax.edges.back()))
            r.Fail(ekey,
                   "is " + Num(v) + ", but must be > the previous edge " + Num(ax.edges.back()));
          ax.edges.push_back(v);
        }
        if (edges.size() == 1) r.Fail(akey + ".edges", "has 1 edge, but must have 0 or >= 2");
        if (const Json* labels = r.Optional((*axes)[a], "labels")) {
          r.Array(*labels, akey + ".labels");
          for (std::size_t l = 0; l < labels->size(); ++l)
            ax.labels.push_back(
                r.String((*labels)[l], akey + ".labels[" + std::to_string(l) + "]"));
          if (ax.labels.size() + 1 != ax.edges.size())
            r.Fail(akey + ".labels",
                   "has " + std::to_string(ax.labels.size()) +
                       " entries, but must have one per bin (" +
                       std::to_string(ax.edges.size() < 2 ? 0 : ax.edges.size() - 1) + ")");
        }
        ch.axes.push_back(std::move(ax));
      }
    }
    meta.channels.push_back(std::move(ch));
  }

  if (const Json* sy = r.Optional(j, "systematics")) {
    r.Array(*sy, "systematics");
    if (sy->size() != systs.size())
      r.Fail("systematics", "has " + std::to_string(sy->size()) + " entries, but hsysts has " +
                                std::to_string(systs.size()));
    for (std::size_t s = 0; s < sy->size(); ++s) {
      const std::string key = "systematics[" + std::to_string(s) + "]";
      const std::string name = r.String(r.Member((*sy)[s], key, "name"), key + ".name");
      if (name != systs[s])
        r.Fail(key + ".name", "is " + Quote(name) + ", but must be " + Quote(systs[s]) +
                                  " (hsysts[" + std::to_string(s) + "])");
      double scale = 0.0;
      std::string unit;
      if (const Json* v = r.Optional((*sy)[s], "scale")) scale = r.Number(*v, key + ".scale");
      if (const Json* v = r.Optional((*sy)[s], "unit")) unit = r.String(*v, key + ".unit");
      if (!std::isfinite(scale))
        r.Fail(key + ".scale", "is " + Num(scale) + ", but must be finite");
      meta.scales.push_back(scale);
      meta.units.push_back(unit);
    }
  }
  return meta;
}

// ---- the reader -----------------------------------------------------------------------------

class FitInputReader {
 public:
  FitInputReader(const std::string& path, ReadInfo* info) : f_(path), info_(info) {}

  engine::Model Read();

 private:
  [[noreturn]] void Fail(const std::string& where, const std::string& what) const {
    f_.Fail(where, what);
  }
  void Warn(const std::string& what) { warnings_.push_back(f_.path() + ": " + what); }

  // String datasets of names, each checked to be valid UTF-8.
  std::vector<std::string> ReadNames(const std::string& name, bool required);
  void ExpectUnique(const std::string& name, const std::vector<std::string>& names) const;
  void ExpectShape(const std::string& name, const std::vector<std::int64_t>& got,
                   const std::vector<std::int64_t>& want, const std::string& meaning) const;
  void CheckFinite(const std::string& name, const std::vector<double>& v, bool non_negative) const;
  Eigen::MatrixXd ReadBinProcMatrix(const std::string& name, bool non_negative);

  void ReadDense(engine::Model& m);
  void ReadSparse(engine::Model& m);
  // Checks one logk entry against its nominal; returns false when the entry is rabbit's
  // placeholder at zero nominal (to be dropped).
  bool CheckLogk(const engine::Model& m, double norm, std::int64_t bin, int proc, int syst,
                 double avg, double halfdiff, const std::string& where) const;
  void BuildChannels(engine::Model& m, const Meta& meta);
  // rabbit's external likelihood terms (external_terms/<name>/{params, grad_values, hess_dense |
  // hess_sparse}) resolved against the fit parameters.
  void ReadExternalTerms(engine::Model& m);
  // Datasets of rabbit's format that a fit does not use, and unknown root members: warnings.
  void CheckOtherMembers(engine::Model& m);
  // rabbit's pickled `meta` group (wums.ioutils.pickle_dump_h5py).
  Meta ReadRabbitMeta();

  h5::InputFile f_;
  ReadInfo* info_;
  std::vector<std::string> warnings_;
  long long placeholders_dropped_ = 0;
};

std::vector<std::string> FitInputReader::ReadNames(const std::string& name, bool required) {
  if (!required && !f_.HasDataset(name)) return {};
  auto names = f_.ReadStrings(name);
  // Names end up in JSON output and messages, which need UTF-8: reject here, not after the fit.
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::size_t at = 0;
    if (!h5::IsValidUtf8(names[i], &at))
      Fail(name + "[" + std::to_string(i) + "]",
           "is \"" + h5::EscapeBytes(names[i]) + "\", which is not valid UTF-8 (byte " +
               std::to_string(at) + "), but names must be UTF-8 text");
  }
  return names;
}

void FitInputReader::ExpectUnique(const std::string& name,
                                  const std::vector<std::string>& names) const {
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto [it, fresh] = seen.emplace(names[i], i);
    if (!fresh)
      Fail(name + "[" + std::to_string(i) + "]", "is " + Quote(names[i]) +
                                                     ", but names must be unique (also at index " +
                                                     std::to_string(it->second) + ")");
  }
}

void FitInputReader::ExpectShape(const std::string& name, const std::vector<std::int64_t>& got,
                                 const std::vector<std::int64_t>& want,
                                 const std::string& meaning) const {
  if (got != want)
    Fail(name, "has shape " + h5::ShapeString(got) + ", but must be " + meaning + " = " +
                   h5::ShapeString(want));
}

void FitInputReader::CheckFinite(const std::string& name, const std::vector<double>& v,
                                 bool non_negative) const {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]))
      Fail(name + "[" + std::to_string(i) + "]", "is " + Num(v[i]) + ", but must be finite");
    if (non_negative && v[i] < 0)
      Fail(name + "[" + std::to_string(i) + "]", "is " + Num(v[i]) + ", but must be >= 0");
  }
}

Eigen::MatrixXd FitInputReader::ReadBinProcMatrix(const std::string& name, bool non_negative) {
  // Callers know nbins_full and nproc through the model being built; shape checked there.
  auto a = f_.ReadDouble(name);
  CheckFinite(name, a.values, non_negative);
  if (a.shape.size() != 2)
    Fail(name, "has shape " + h5::ShapeString(a.shape) + ", but must be 2-D");
  Eigen::MatrixXd out(a.shape[0], a.shape[1]);
  for (std::int64_t b = 0; b < a.shape[0]; ++b)
    for (std::int64_t p = 0; p < a.shape[1]; ++p) out(b, p) = a.values[b * a.shape[1] + p];
  return out;
}

bool FitInputReader::CheckLogk(const engine::Model& m, double norm, std::int64_t bin, int proc,
                               int syst, double avg, double halfdiff,
                               const std::string& where) const {
  if (m.systematic_type != engine::SystematicType::kLogNormal || norm > 0) return true;
  // rabbit writes ln(1e-3) wherever the ratio to the nominal is not positive, including every
  // entry at zero nominal; the asymmetric planes then hold 0 or +-ln(1e-3). These have no effect
  // at zero nominal (lambda = 0 * exp(...)), so they are dropped. The tolerance admits float32
  // storage of the placeholder.
  auto placeholder = [](double v) {
    return v == 0.0 ||
           std::abs(std::abs(v) - std::abs(detail::kLogkPlaceholder)) <= 1e-6 * 6.907755278982137;
  };
  if (norm == 0.0 && placeholder(avg) && placeholder(halfdiff)) return false;
  const double shown = avg != 0.0 ? avg : halfdiff;
  Fail(where, "is " + Num(shown) + " at (bin " + std::to_string(bin) + ", process " +
                  Quote(m.processes[proc]) + ", systematic " + Quote(m.systematics[syst]) +
                  ") where the nominal yield is " + Num(norm) +
                  ", but log-normal logk must be 0 where the nominal is not > 0 (only rabbit's "
                  "placeholder ln(1e-3) is accepted, and ignored, at zero nominal)");
}

void FitInputReader::ReadDense(engine::Model& m) {
  const int nproc = m.num_processes();
  const int nsyst = m.num_systematics();
  auto norm = f_.ReadDouble("hnorm");
  CheckFinite("hnorm", norm.values, false);
  if (norm.shape.size() != 2 || norm.shape[1] != nproc)
    Fail("hnorm", "has shape " + h5::ShapeString(norm.shape) +
                      ", but must be [nbinsfull, nproc] with nproc = " + std::to_string(nproc) +
                      " (len(hprocs))");
  m.nbins_full = norm.shape[0];
  if (m.nbins_full < m.nbins)
    Fail("hnorm", "has " + std::to_string(m.nbins_full) + " rows, but must have at least nbins = " +
                      std::to_string(m.nbins) + " (len(hdata_obs))");
  const std::int64_t nbf = m.nbins_full;

  h5::Array<double> logk;
  bool four_d = false;
  if (f_.HasDataset("hlogk")) {
    logk = f_.ReadDouble("hlogk");
    four_d = logk.shape.size() == 4;
    const std::vector<std::int64_t> sym_shape{nbf, nproc, nsyst};
    const std::vector<std::int64_t> asym_shape{nbf, nproc, 2, nsyst};
    if (logk.shape != sym_shape && logk.shape != asym_shape)
      Fail("hlogk", "has shape " + h5::ShapeString(logk.shape) +
                        ", but must be [nbinsfull, nproc, nsyst] = " + h5::ShapeString(sym_shape) +
                        " or [nbinsfull, nproc, 2, nsyst] = " + h5::ShapeString(asym_shape));
  } else if (nsyst > 0) {
    Fail("hlogk", "required dataset is missing (hnorm is present and hsysts lists " +
                      std::to_string(nsyst) + " systematics)");
  }
  m.asymmetric = four_d;
  m.storage = engine::StorageKind::kDense;

  engine::Tensor& t = m.tensor;
  t.row_start.push_back(0);
  for (std::int64_t b = 0; b < nbf; ++b) {
    for (int p = 0; p < nproc; ++p) {
      const std::int64_t cell = b * nproc + p;
      const double n = norm.values[cell];
      for (int s = 0; s < nsyst; ++s) {
        const std::int64_t ia = four_d ? (cell * 2) * nsyst + s : cell * nsyst + s;
        const std::int64_t ih = (cell * 2 + 1) * nsyst + s;
        const double avg = logk.values[ia];
        const double hd = four_d ? logk.values[ih] : 0.0;
        if (!std::isfinite(avg))
          Fail("hlogk[" + std::to_string(ia) + "]",
               "is " + Num(avg) + " at (bin " + std::to_string(b) + ", process " +
                   std::to_string(p) + ", " + (four_d ? "plane 0, " : "") + "syst " +
                   std::to_string(s) + "), but must be finite");
        if (!std::isfinite(hd))
          Fail("hlogk[" + std::to_string(ih) + "]",
               "is " + Num(hd) + " at (bin " + std::to_string(b) + ", process " +
                   std::to_string(p) + ", plane 1, syst " + std::to_string(s) +
                   "), but must be finite");
        if (avg == 0.0 && hd == 0.0) continue;
        if (!CheckLogk(m, n, b, p, s, avg, hd,
                       "hlogk[" + std::to_string(avg != 0.0 ? ia : ih) + "]")) {
          ++placeholders_dropped_;
          continue;
        }
        t.syst.push_back(s);
        t.logk_avg.push_back(avg);
        if (four_d) t.logk_halfdiff.push_back(hd);
      }
      if (n == 0.0 && static_cast<std::int64_t>(t.syst.size()) == t.row_start.back()) continue;
      t.row_bin.push_back(static_cast<std::int32_t>(b));
      t.row_proc.push_back(p);
      t.norm.push_back(n);
      t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
    }
  }
}

void FitInputReader::ReadSparse(engine::Model& m) {
  const int nproc = m.num_processes();
  const int nsyst = m.num_systematics();
  for (const char* name : {"hnorm_sparse/indices", "hnorm_sparse/values"})
    if (!f_.HasDataset(name)) Fail(name, "required dataset is missing");
  if (!f_.HasAttribute("hnorm_sparse", "dense_shape"))
    Fail("hnorm_sparse", "required attribute dense_shape is missing");
  const auto nshape = f_.ReadIntAttribute("hnorm_sparse", "dense_shape");
  if (nshape.size() != 2 || nshape[1] != nproc || nshape[0] < 0)
    Fail("hnorm_sparse: attribute dense_shape",
         "is " + h5::ShapeString(nshape) + ", but must be [nbinsfull, nproc] with nproc = " +
             std::to_string(nproc) + " (len(hprocs))");
  m.nbins_full = nshape[0];
  // The model holds dense [nbinsfull, nproc] matrices (hsumw2, zero when absent) and per-bin
  // vectors: a forged dense_shape must fail here, not as std::bad_alloc later.
  h5::CheckAllocation(f_.path(), "hnorm_sparse: attribute dense_shape " + h5::ShapeString(nshape),
                      nshape[0], 8 * (static_cast<std::int64_t>(nproc) + 4),
                      "allocating the dense [nbinsfull, nproc] arrays of the model");
  if (m.nbins_full < m.nbins)
    Fail("hnorm_sparse: attribute dense_shape", "is " + h5::ShapeString(nshape) +
                                                    ", but nbinsfull must be at least nbins = " +
                                                    std::to_string(m.nbins) + " (len(hdata_obs))");

  auto nidx = f_.ReadInt("hnorm_sparse/indices");
  auto nval = f_.ReadDouble("hnorm_sparse/values");
  const auto nnz = static_cast<std::int64_t>(nval.values.size());
  ExpectShape("hnorm_sparse/values", nval.shape, {nnz}, "[nnz]");
  ExpectShape("hnorm_sparse/indices", nidx.shape, {nnz, 2},
              "[nnz, 2] with nnz = len(hnorm_sparse/values)");
  CheckFinite("hnorm_sparse/values", nval.values, false);
  for (std::int64_t i = 0; i < nnz; ++i) {
    const std::int64_t b = nidx.values[2 * i], p = nidx.values[2 * i + 1];
    if (b < 0 || b >= m.nbins_full)
      Fail("hnorm_sparse/indices[" + std::to_string(i) + ", 0]",
           "is " + std::to_string(b) + " (bin), but must be in [0, " +
               std::to_string(m.nbins_full) + ") (dense_shape[0])");
    if (p < 0 || p >= nproc)
      Fail("hnorm_sparse/indices[" + std::to_string(i) + ", 1]",
           "is " + std::to_string(p) + " (process), but must be in [0, " + std::to_string(nproc) +
               ") (dense_shape[1])");
  }

  // logk entries: columns >= nsyst are the halfdiff plane.
  struct Entry {
    std::int64_t row;
    int syst;
    int plane;
    double value;
    std::int64_t index;  // position in hlogk_sparse/values, for messages
  };
  std::vector<Entry> entries;
  bool asym = false;
  if (f_.HasGroup("hlogk_sparse")) {
    for (const char* name : {"hlogk_sparse/indices", "hlogk_sparse/values"})
      if (!f_.HasDataset(name)) Fail(name, "required dataset is missing");
    if (!f_.HasAttribute("hlogk_sparse", "dense_shape"))
      Fail("hlogk_sparse", "required attribute dense_shape is missing");
    const auto kshape = f_.ReadIntAttribute("hlogk_sparse", "dense_shape");
    if (kshape.size() != 2 || kshape[0] != nnz ||
        (kshape[1] != nsyst && kshape[1] != 2 * static_cast<std::int64_t>(nsyst)))
      Fail("hlogk_sparse: attribute dense_shape",
           "is " + h5::ShapeString(kshape) + ", but must be [nnz, nsyst] = " +
               h5::ShapeString({nnz, nsyst}) + " or [nnz, 2*nsyst] = " +
               h5::ShapeString({nnz, 2 * static_cast<std::int64_t>(nsyst)}));
    asym = nsyst > 0 && kshape[1] == 2 * static_cast<std::int64_t>(nsyst);
    const std::int64_t ncols = kshape[1];
    auto kidx = f_.ReadInt("hlogk_sparse/indices");
    auto kval = f_.ReadDouble("hlogk_sparse/values");
    const auto nnzk = static_cast<std::int64_t>(kval.values.size());
    ExpectShape("hlogk_sparse/values", kval.shape, {nnzk}, "[nnzk]");
    ExpectShape("hlogk_sparse/indices", kidx.shape, {nnzk, 2},
                "[nnzk, 2] with nnzk = len(hlogk_sparse/values)");
    CheckFinite("hlogk_sparse/values", kval.values, false);
    entries.reserve(static_cast<std::size_t>(nnzk));
    for (std::int64_t i = 0; i < nnzk; ++i) {
      const std::int64_t r = kidx.values[2 * i], c = kidx.values[2 * i + 1];
      if (r < 0 || r >= nnz)
        Fail("hlogk_sparse/indices[" + std::to_string(i) + ", 0]",
             "is " + std::to_string(r) + " (row into hnorm_sparse), but must be in [0, " +
                 std::to_string(nnz) + ")");
      if (c < 0 || c >= ncols)
        Fail("hlogk_sparse/indices[" + std::to_string(i) + ", 1]",
             "is " + std::to_string(c) + " (systematic column), but must be in [0, " +
                 std::to_string(ncols) + ") (dense_shape[1])");
      if (kval.values[i] == 0.0) continue;
      entries.push_back(Entry{r, static_cast<int>(c % std::max(nsyst, 1)),
                              static_cast<int>(c >= nsyst), kval.values[i], i});
    }
  } else if (nsyst > 0) {
    Fail("hlogk_sparse", "required group is missing (hnorm_sparse is present and hsysts lists " +
                             std::to_string(nsyst) + " systematics)");
  }
  m.asymmetric = asym;
  m.storage = engine::StorageKind::kSparse;

  // Rows sorted by (bin, process); duplicates are an error (sums would hide writer bugs).
  std::vector<std::int64_t> order(static_cast<std::size_t>(nnz));
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](std::int64_t i) { return nidx.values[2 * i] * nproc + nidx.values[2 * i + 1]; };
  // Writers (rabbit's and lepus's) write the canonical order: sort only when it is not.
  bool rows_sorted = true;
  for (std::int64_t i = 1; i < nnz && rows_sorted; ++i) rows_sorted = key(i - 1) <= key(i);
  if (!rows_sorted)
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t a, std::int64_t b) { return key(a) < key(b); });
  for (std::size_t k = 1; k < order.size(); ++k)
    if (key(order[k]) == key(order[k - 1]))
      Fail("hnorm_sparse/indices",
           "entries " + std::to_string(order[k - 1]) + " and " + std::to_string(order[k]) +
               " are both (bin " + std::to_string(nidx.values[2 * order[k]]) + ", process " +
               std::to_string(nidx.values[2 * order[k] + 1]) + "), but entries must be unique");
  auto entry_less = [](const Entry& a, const Entry& b) {
    if (a.row != b.row) return a.row < b.row;
    if (a.syst != b.syst) return a.syst < b.syst;
    return a.plane < b.plane;
  };
  if (!std::is_sorted(entries.begin(), entries.end(), entry_less))
    std::stable_sort(entries.begin(), entries.end(), entry_less);
  for (std::size_t k = 1; k < entries.size(); ++k)
    if (entries[k].row == entries[k - 1].row && entries[k].syst == entries[k - 1].syst &&
        entries[k].plane == entries[k - 1].plane)
      Fail("hlogk_sparse/indices", "entries " + std::to_string(entries[k - 1].index) + " and " +
                                       std::to_string(entries[k].index) +
                                       " have the same (row, column), but must be unique");
  // First entry of each hnorm_sparse row in `entries`.
  std::vector<std::int64_t> first(static_cast<std::size_t>(nnz) + 1, 0);
  for (const auto& e : entries) ++first[static_cast<std::size_t>(e.row) + 1];
  std::partial_sum(first.begin(), first.end(), first.begin());

  engine::Tensor& t = m.tensor;
  t.row_start.reserve(static_cast<std::size_t>(nnz) + 1);
  t.row_bin.reserve(static_cast<std::size_t>(nnz));
  t.row_proc.reserve(static_cast<std::size_t>(nnz));
  t.norm.reserve(static_cast<std::size_t>(nnz));
  t.syst.reserve(entries.size());
  t.logk_avg.reserve(entries.size());
  if (asym) t.logk_halfdiff.reserve(entries.size());
  t.row_start.push_back(0);
  for (std::int64_t r : order) {
    const std::int64_t b = nidx.values[2 * r];
    const int p = static_cast<int>(nidx.values[2 * r + 1]);
    const double n = nval.values[r];
    for (std::int64_t k = first[r]; k < first[r + 1];) {
      const int s = entries[k].syst;
      double avg = 0.0, hd = 0.0;
      std::int64_t where = entries[k].index;
      for (; k < first[r + 1] && entries[k].syst == s; ++k)
        (entries[k].plane == 0 ? avg : hd) = entries[k].value;
      if (avg == 0.0 && hd == 0.0) continue;
      if (!CheckLogk(m, n, b, p, s, avg, hd,
                     "hlogk_sparse/values[" + std::to_string(where) + "]")) {
        ++placeholders_dropped_;
        continue;
      }
      t.syst.push_back(s);
      t.logk_avg.push_back(avg);
      if (asym) t.logk_halfdiff.push_back(hd);
    }
    if (n == 0.0 && static_cast<std::int64_t>(t.syst.size()) == t.row_start.back()) continue;
    t.row_bin.push_back(static_cast<std::int32_t>(b));
    t.row_proc.push_back(p);
    t.norm.push_back(n);
    t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
  }
}

void FitInputReader::BuildChannels(engine::Model& m, const Meta& meta) {
  const std::int64_t nmasked = m.nbins_full - m.nbins;
  if (!meta.present) {
    engine::Channel ch;
    ch.name = "ch0";
    ch.nbins = m.nbins;
    m.channels.push_back(ch);
    std::string msg =
        "no meta_json attribute and no rabbit `meta` group: using one channel "
        "\"ch0\" with " +
        std::to_string(m.nbins) + " integer bins";
    if (nmasked > 0) {
      engine::Channel mc;
      mc.name = "masked";
      mc.nbins = nmasked;
      mc.masked = true;
      m.channels.push_back(mc);
      msg += ", a masked channel \"masked\" with " + std::to_string(nmasked) + " bins";
    }
    Warn(msg + " and log_normal systematics");
    return;
  }
  std::int64_t unmasked = 0, masked = 0;
  bool seen_masked = false;
  std::set<std::string> names;
  for (std::size_t i = 0; i < meta.channels.size(); ++i) {
    const auto& c = meta.channels[i];
    const std::string key = meta.channel_keys.empty()
                                ? "meta_json: channels[" + std::to_string(i) + "]"
                                : meta.channel_keys[i];
    if (!names.insert(c.name).second)
      Fail(key + ".name", "is " + Quote(c.name) + ", but channel names must be unique");
    // Bounds the running totals below by nbins_full, so they cannot overflow (nbins is > 0).
    if (c.nbins > m.nbins_full - unmasked - masked)
      Fail(key + ".nbins", "is " + std::to_string(c.nbins) + ", but the tensor has " +
                               std::to_string(m.nbins_full) + " bins (hnorm rows), " +
                               std::to_string(unmasked + masked) +
                               " of them in the channels before it");
    if (c.masked) {
      seen_masked = true;
      masked += c.nbins;
    } else {
      if (seen_masked)
        Fail(key + " (" + Quote(c.name) + ")",
             "is unmasked after a masked channel, but masked channels must come last");
      unmasked += c.nbins;
    }
    // Sums and products below stay far from overflow: nbins <= nbinsfull (checked above).
    bool all_edges = !c.axes.empty();
    std::int64_t prod = 1;
    bool overflow = false;
    for (const auto& ax : c.axes) {
      all_edges = all_edges && !ax.edges.empty();
      if (!ax.edges.empty() &&
          !h5::CheckedMultiply(prod, static_cast<std::int64_t>(ax.edges.size()) - 1, &prod))
        overflow = true;
    }
    if (all_edges && (overflow || prod != c.nbins))
      Fail(key + ".nbins", "is " + std::to_string(c.nbins) + ", but the axes' edges give " +
                               (overflow ? std::string("more than 2^63") : std::to_string(prod)) +
                               " bins");
  }
  const std::string all = meta.format == "rabbit" ? "meta: channel_info" : "meta_json: channels";
  if (unmasked != m.nbins)
    Fail(all, "have " + std::to_string(unmasked) + " unmasked bins in total, but hdata_obs has " +
                  std::to_string(m.nbins));
  if (masked != nmasked)
    Fail(all, "have " + std::to_string(masked) + " masked bins in total, but hnorm has " +
                  std::to_string(nmasked) + " rows beyond hdata_obs");
  m.channels = meta.channels;
}

Meta FitInputReader::ReadRabbitMeta() {
  // wums.ioutils.pickle_dump_h5py: group `meta`, attribute narf_h5py_pickle_protocol_version
  // (1), the pickle bytes in the uint8 dataset `meta/pickle_data`.
  const std::string attr = "narf_h5py_pickle_protocol_version";
  if (f_.HasAttribute("meta", attr)) {
    const auto v = f_.ReadIntAttribute("meta", attr);
    if (v.size() != 1 || v[0] != 1)
      Fail("meta: attribute " + attr,
           "is " + h5::ShapeString(v) + ", but this lepus reads version 1 (wums' pickle layout)");
  } else {
    Warn("meta: attribute " + attr +
         " is missing (wums writes 1); reading meta/pickle_data anyway");
  }
  const pickle::Limits limits;
  const auto raw = f_.ReadInt("meta/pickle_data");
  if (raw.shape.size() != 1)
    Fail("meta/pickle_data", "has shape " + h5::ShapeString(raw.shape) + ", but must be 1-D bytes");
  if (raw.values.size() > limits.max_input_bytes)
    Fail("meta/pickle_data", "has " + std::to_string(raw.values.size()) + " bytes, but at most " +
                                 std::to_string(limits.max_input_bytes) + " are accepted");
  std::vector<std::uint8_t> bytes(raw.values.size());
  for (std::size_t i = 0; i < raw.values.size(); ++i) {
    if (raw.values[i] < 0 || raw.values[i] > 255)
      Fail("meta/pickle_data[" + std::to_string(i) + "]",
           "is " + std::to_string(raw.values[i]) + ", but must be a byte (0 to 255)");
    bytes[i] = static_cast<std::uint8_t>(raw.values[i]);
  }
  Meta meta;
  meta.present = true;
  meta.format = "rabbit";
  RabbitMeta rabbit;
  try {
    const pickle::Document doc = pickle::Decode(bytes.data(), bytes.size(), limits);
    rabbit = InterpretRabbitMeta(doc, limits);
  } catch (const pickle::PickleError& e) {
    // An undecodable `meta` is an error: guessing channels would mislabel every projection.
    Fail("meta/pickle_data", std::string("is not a pickle lepus can decode: ") + e.what());
  } catch (const std::invalid_argument& e) {
    Fail("meta", e.what());
  }
  meta.channels = std::move(rabbit.channels);
  meta.channel_keys = std::move(rabbit.channel_keys);
  meta.type = rabbit.type;
  if (!rabbit.has_type)
    Warn("meta: systematic_type is missing; using log_normal (rabbit's default)");
  meta.symmetric_tensor = rabbit.symmetric_tensor;
  meta.meta_info_json = std::move(rabbit.meta_info_json);
  for (auto& w : rabbit.warnings) Warn(w);
  for (std::size_t i = 0; i < meta.channels.size(); ++i)
    for (const auto& ax : meta.channels[i].axes)
      if (!ax.labels.empty() && ax.labels.size() + 1 != ax.edges.size())
        Fail(meta.channel_keys[i], "axis " + Quote(ax.name) + " has " +
                                       std::to_string(ax.labels.size()) + " labels for " +
                                       std::to_string(ax.edges.size()) + " edges");
  return meta;
}

engine::Model FitInputReader::Read() {
  engine::Model m;

  // ---- names, signals, constraints ----
  m.processes = ReadNames("hprocs", true);
  if (m.processes.empty()) Fail("hprocs", "is empty, but must list at least one process");
  const auto signals = ReadNames("hsignals", true);
  m.systematics = ReadNames("hsysts", true);
  ExpectUnique("hprocs", m.processes);
  ExpectUnique("hsysts", m.systematics);
  if (signals.size() > m.processes.size())
    Fail("hsignals", "has " + std::to_string(signals.size()) + " entries, but hprocs has only " +
                         std::to_string(m.processes.size()));
  for (std::size_t i = 0; i < signals.size(); ++i)
    if (signals[i] != m.processes[i])
      Fail("hsignals[" + std::to_string(i) + "]",
           "is " + Quote(signals[i]) + ", but must be " + Quote(m.processes[i]) + " (hprocs[" +
               std::to_string(i) +
               "]): the signal processes must be the first entries of hprocs, in the same order");
  m.num_signals = static_cast<int>(signals.size());
  const int nsyst = m.num_systematics();

  const auto noconstraint = ReadNames("hsystsnoconstraint", false);
  for (std::size_t i = 0; i < noconstraint.size(); ++i)
    if (std::find(m.systematics.begin(), m.systematics.end(), noconstraint[i]) ==
        m.systematics.end())
      Fail("hsystsnoconstraint[" + std::to_string(i) + "]",
           "is " + Quote(noconstraint[i]) + ", but must be one of hsysts");
  if (f_.HasDataset("hconstraintweights")) {
    auto cw = f_.ReadDouble("hconstraintweights");
    ExpectShape("hconstraintweights", cw.shape, {nsyst}, "[nsyst]");
    CheckFinite("hconstraintweights", cw.values, true);
    m.constraint_weights = cw.values;
    // rabbit writes both; the weights are the truth, a disagreement is reported.
    std::vector<std::string> mismatched;
    for (int s = 0; s < nsyst; ++s) {
      const bool listed = std::find(noconstraint.begin(), noconstraint.end(), m.systematics[s]) !=
                          noconstraint.end();
      if (listed != (m.constraint_weights[s] == 0.0)) mismatched.push_back(m.systematics[s]);
    }
    if (!mismatched.empty() && f_.HasDataset("hsystsnoconstraint")) {
      std::string list;
      for (const auto& s : mismatched) list += (list.empty() ? "" : ", ") + s;
      Warn("hsystsnoconstraint disagrees with hconstraintweights == 0 for " + list +
           "; using hconstraintweights");
    }
  } else {
    m.constraint_weights.assign(nsyst, 1.0);
    for (int s = 0; s < nsyst; ++s)
      if (std::find(noconstraint.begin(), noconstraint.end(), m.systematics[s]) !=
          noconstraint.end())
        m.constraint_weights[s] = 0.0;
    Warn(
        "no hconstraintweights: systematics in hsystsnoconstraint are free, the others have "
        "constraint weight 1");
  }

  // hnoigroupidxs: the name older rabbit versions wrote (rabbit's reader still accepts it).
  const std::string noi_name =
      f_.HasDataset("hnoiidxs") || !f_.HasDataset("hnoigroupidxs") ? "hnoiidxs" : "hnoigroupidxs";
  if (f_.HasDataset(noi_name)) {
    auto noi = f_.ReadInt(noi_name);
    if (noi.shape.size() != 1)
      Fail(noi_name, "has shape " + h5::ShapeString(noi.shape) + ", but must be 1-D");
    std::set<std::int64_t> seen;
    for (std::size_t i = 0; i < noi.values.size(); ++i) {
      const auto v = noi.values[i];
      if (v < 0 || v >= nsyst)
        Fail(noi_name + "[" + std::to_string(i) + "]", "is " + std::to_string(v) +
                                                           ", but must be in [0, " +
                                                           std::to_string(nsyst) + ") (hsysts)");
      if (!seen.insert(v).second)
        Fail(noi_name + "[" + std::to_string(i) + "]",
             "is " + std::to_string(v) + ", but indices must be unique");
      m.noi_indices.push_back(static_cast<int>(v));
    }
  }

  const bool has_groups = f_.HasDataset("hsystgroups"), has_idxs = f_.HasDataset("hsystgroupidxs");
  if (has_groups != has_idxs)
    Fail(has_groups ? "hsystgroupidxs" : "hsystgroups",
         "is missing, but hsystgroups and hsystgroupidxs must be present together");
  if (has_groups) {
    const auto names = ReadNames("hsystgroups", true);
    ExpectUnique("hsystgroups", names);
    const auto idxs = f_.ReadRaggedInt("hsystgroupidxs");
    if (idxs.size() != names.size())
      Fail("hsystgroupidxs", "has " + std::to_string(idxs.size()) +
                                 " entries, but hsystgroups has " + std::to_string(names.size()));
    for (std::size_t g = 0; g < names.size(); ++g) {
      engine::SystematicGroup group;
      group.name = names[g];
      for (std::size_t k = 0; k < idxs[g].size(); ++k) {
        const auto v = idxs[g][k];
        if (v < 0 || v >= nsyst)
          Fail("hsystgroupidxs[" + std::to_string(g) + "][" + std::to_string(k) + "]",
               "is " + std::to_string(v) + " (group " + Quote(names[g]) + "), but must be in [0, " +
                   std::to_string(nsyst) + ") (hsysts)");
        group.members.push_back(static_cast<int>(v));
      }
      m.groups.push_back(std::move(group));
    }
  }

  // ---- data ----
  auto data = f_.ReadDouble("hdata_obs");
  if (data.shape.size() != 1)
    Fail("hdata_obs", "has shape " + h5::ShapeString(data.shape) + ", but must be 1-D [nbins]");
  if (data.values.empty()) Fail("hdata_obs", "is empty, but must have at least one bin");
  CheckFinite("hdata_obs", data.values, true);
  m.nbins = static_cast<std::int64_t>(data.values.size());
  m.data_obs = Eigen::Map<const Eigen::VectorXd>(data.values.data(), m.nbins);

  if (f_.HasDataset("hdata_var")) {
    auto var = f_.ReadDouble("hdata_var");
    ExpectShape("hdata_var", var.shape, {m.nbins}, "[nbins]");
    CheckFinite("hdata_var", var.values, true);
    m.data_var = Eigen::Map<const Eigen::VectorXd>(var.values.data(), m.nbins);
  }

  if (f_.HasDataset("hpseudodata")) {
    auto pd = f_.ReadDouble("hpseudodata");
    const auto names = ReadNames("hpseudodatanames", false);
    ExpectUnique("hpseudodatanames", names);
    const auto npseudo = static_cast<std::int64_t>(names.size());
    ExpectShape("hpseudodata", pd.shape, {m.nbins, npseudo},
                "[nbins, npseudo] with npseudo = len(hpseudodatanames)");
    CheckFinite("hpseudodata", pd.values, true);
    if (npseudo > 0) {
      m.pseudodata.resize(m.nbins, npseudo);
      for (std::int64_t b = 0; b < m.nbins; ++b)
        for (std::int64_t k = 0; k < npseudo; ++k) m.pseudodata(b, k) = pd.values[b * npseudo + k];
      m.pseudodata_names = names;
    }
  }

  // ---- metadata (needed for the systematic type before the tensor checks) ----
  Meta meta;
  if (f_.HasAttribute("/", "meta_json")) {
    meta = ParseMeta(f_.path(), f_.ReadStringAttribute("/", "meta_json"), m.systematics);
  } else if (f_.HasDataset("meta_json")) {
    const auto text = f_.ReadStrings("meta_json");
    if (text.size() != 1)
      Fail("meta_json", "has " + std::to_string(text.size()) + " strings, but must hold one");
    meta = ParseMeta(f_.path(), text.front(), m.systematics);
  } else if (f_.HasGroup("meta")) {
    meta = ReadRabbitMeta();
  }
  m.systematic_type = meta.type;
  m.systematic_scales = meta.scales;
  m.systematic_units = meta.units;

  // ---- nominal and logk ----
  const bool dense = f_.HasDataset("hnorm");
  const bool sparse = f_.HasGroup("hnorm_sparse");
  if (!dense && !sparse)
    Fail("hnorm", "required dataset is missing (and there is no hnorm_sparse group either)");
  if (dense && sparse) Warn("both hnorm and hnorm_sparse present: reading the dense hnorm/hlogk");
  if (dense) {
    ReadDense(m);
  } else {
    ReadSparse(m);
  }
  if (meta.symmetric_tensor >= 0 && (meta.symmetric_tensor == 1) == m.asymmetric)
    Fail("meta", std::string("symmetric_tensor is ") + (meta.symmetric_tensor ? "True" : "False") +
                     ", but the logk tensor is " +
                     (m.asymmetric ? "asymmetric (avg and halfdiff planes)"
                                   : "symmetric (no halfdiff plane)"));
  if (placeholders_dropped_ > 0)
    Warn(std::to_string(placeholders_dropped_) +
         " logk entries holding rabbit's placeholder ln(1e-3) at zero nominal yield were ignored");

  // ---- MC statistics ----
  const int nproc = m.num_processes();
  const std::vector<std::int64_t> bp_shape{m.nbins_full, nproc};
  if (f_.HasDataset("hsumw2")) {
    m.sumw2 = ReadBinProcMatrix("hsumw2", true);
    ExpectShape("hsumw2", {m.sumw2.rows(), m.sumw2.cols()}, bp_shape, "[nbinsfull, nproc]");
  } else {
    m.sumw2 = Eigen::MatrixXd::Zero(m.nbins_full, nproc);
  }
  if (f_.HasDataset("hsumw")) {
    m.sumw = ReadBinProcMatrix("hsumw", false);
    ExpectShape("hsumw", {m.sumw.rows(), m.sumw.cols()}, bp_shape, "[nbinsfull, nproc]");
  }

  if (f_.HasDataset("hdata_cov_inv")) {
    auto cov = f_.ReadDouble("hdata_cov_inv");
    ExpectShape("hdata_cov_inv", cov.shape, {m.nbins, m.nbins}, "[nbins, nbins]");
    CheckFinite("hdata_cov_inv", cov.values, false);
    m.data_cov_inv =
        Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            cov.values.data(), m.nbins, m.nbins);
  }
  if (!f_.HasDataset("hsumw2") && f_.HasDataset("hkstat"))
    Fail("hkstat",
         "is the MC-statistics dataset of an older rabbit format (without hsumw2), which lepus "
         "does not "
         "read; write the file again with a current rabbit (hsumw, hsumw2)");
  ReadExternalTerms(m);
  CheckOtherMembers(m);

  BuildChannels(m, meta);

  std::string error;
  if (!m.IsValid(&error)) throw InputError(f_.path() + ": invalid model: " + error);

  if (info_ != nullptr) {
    info_->path = f_.path();
    info_->has_meta = meta.present;
    info_->meta_format = meta.format;
    info_->meta_info_json = meta.meta_info_json;
    info_->warnings = warnings_;
    info_->filters = f_.filters_seen();
    std::error_code ec;
    const auto size = std::filesystem::file_size(f_.path(), ec);
    info_->file_bytes = ec ? 0 : static_cast<long long>(size);
  }
  return m;
}

}  // namespace

void FitInputReader::ReadExternalTerms(engine::Model& m) {
  const std::string group = "external_terms";
  if (f_.HasDataset(group))
    Fail(group, "is a dataset, but must be a group of external likelihood terms");
  if (!f_.HasGroup(group)) return;
  std::map<std::string, int> index;
  for (int p = 0; p < m.num_signals; ++p) index[m.processes[p]] = p;
  for (int s = 0; s < m.num_systematics(); ++s) index[m.systematics[s]] = m.num_signals + s;
  for (const std::string& name : f_.ListMembers(group)) {
    const std::string base = group + "/" + name;
    if (!f_.HasGroup(base))
      Fail(base, "is not a group, but every member of external_terms must be one (a term)");
    engine::ExternalTerm term;
    term.name = name;
    const std::vector<std::string> params = ReadNames(base + "/params", true);
    ExpectUnique(base + "/params", params);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto it = index.find(params[i]);
      if (it == index.end())
        Fail(base + "/params[" + std::to_string(i) + "]",
             "is \"" + params[i] +
                 "\", but must name a fit parameter (a signal process of hsignals or a systematic "
                 "of hsysts)");
      term.params.push_back(it->second);
    }
    const auto n = static_cast<std::int64_t>(params.size());
    for (const std::string& member : f_.ListMembers(base))
      if (member != "params" && member != "grad_values" && member != "hess_dense" &&
          member != "hess_sparse")
        Warn(base + "/" + member + " is not part of rabbit's external-term layout and was ignored");
    if (f_.HasDataset(base + "/grad_values")) {
      auto g = f_.ReadDouble(base + "/grad_values");
      ExpectShape(base + "/grad_values", {static_cast<std::int64_t>(g.values.size())}, {n},
                  "[len(params)]");
      CheckFinite(base + "/grad_values", g.values, false);
      term.grad = Eigen::Map<const Eigen::VectorXd>(g.values.data(), n);
    }
    const bool dense = f_.HasDataset(base + "/hess_dense"),
               sparse = f_.HasGroup(base + "/hess_sparse");
    if (dense && sparse)
      Fail(base, "has both hess_dense and hess_sparse, but a term has at most one Hessian");
    std::vector<Eigen::Triplet<double>> trip;
    if (dense) {
      auto h = f_.ReadDouble(base + "/hess_dense");
      ExpectShape(base + "/hess_dense", h.shape, {n, n}, "[len(params), len(params)]");
      CheckFinite(base + "/hess_dense", h.values, false);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < n; ++j)
          if (h.values[i * n + j] != 0.0) trip.emplace_back(i, j, h.values[i * n + j]);
    }
    if (sparse) {
      const std::string hs = base + "/hess_sparse";
      if (!f_.HasAttribute(hs, "dense_shape"))
        Fail(hs, "required attribute dense_shape is missing");
      const auto shape = f_.ReadIntAttribute(hs, "dense_shape");
      if (shape != std::vector<std::int64_t>{n, n})
        Fail(hs, "has dense_shape " + h5::ShapeString(shape) + ", but must be [" +
                     std::to_string(n) + ", " + std::to_string(n) + "] (len(params))");
      auto idx = f_.ReadInt(hs + "/indices");
      auto val = f_.ReadDouble(hs + "/values");
      const auto nnz = static_cast<std::int64_t>(val.values.size());
      ExpectShape(hs + "/indices", idx.shape, {nnz, 2}, "[nnz, 2]");
      CheckFinite(hs + "/values", val.values, false);
      std::set<std::pair<std::int64_t, std::int64_t>> seen;
      for (std::int64_t e = 0; e < nnz; ++e) {
        const std::int64_t i = idx.values[2 * e], j = idx.values[2 * e + 1];
        if (i < 0 || i >= n || j < 0 || j >= n)
          Fail(hs + "/indices[" + std::to_string(e) + "]",
               "is (" + std::to_string(i) + ", " + std::to_string(j) + "), but must be in [0, " +
                   std::to_string(n) + ")");
        if (!seen.insert({i, j}).second)
          Fail(hs + "/indices[" + std::to_string(e) + "]", "is (" + std::to_string(i) + ", " +
                                                               std::to_string(j) +
                                                               "), but entries must be unique");
        trip.emplace_back(i, j, val.values[e]);
      }
    }
    if (dense || sparse) {
      term.hess.resize(n, n);
      term.hess.setFromTriplets(trip.begin(), trip.end());
    }
    if (term.grad.size() == 0 && !dense && !sparse)
      Warn(base + " has neither grad_values nor a Hessian: it adds nothing to the likelihood");
    m.external_terms.push_back(std::move(term));
  }
}

void FitInputReader::CheckOtherMembers(engine::Model& m) {
  if (f_.HasDataset("hbetavariations")) {
    auto bv = f_.ReadDouble("hbetavariations");
    ExpectShape("hbetavariations", bv.shape, {m.nbins_full, m.nbins, m.num_processes()},
                "[nbinsfull, nbins, nproc]");
    CheckFinite("hbetavariations", bv.values, false);
    // [nbinsfull, nbins, nproc] row-major -> per process [nbins_full x nbins]. Used (as by rabbit)
    // only in Barlow-Beeston full mode, for the reported yields (the CLI warns otherwise).
    const int nproc = m.num_processes();
    m.beta_variations.assign(nproc, Eigen::MatrixXd::Zero(m.nbins_full, m.nbins));
    for (std::int64_t i = 0; i < m.nbins_full; ++i)
      for (std::int64_t j = 0; j < m.nbins; ++j)
        for (int p = 0; p < nproc; ++p)
          m.beta_variations[p](i, j) =
              bv.values[static_cast<std::size_t>((i * m.nbins + j) * nproc + p)];
  }
  if (f_.HasDataset("hpseudodatavar"))
    Warn(
        "hpseudodatavar (variances of the pseudo-data sets) is not used: rabbit uses it only to "
        "throw toys around "
        "pseudo-data, which lepus does not do");
  if (f_.HasGroup("auxiliary"))
    Warn("the auxiliary group (" + std::to_string(f_.ListMembers("auxiliary").size()) +
         " bundle(s) of arrays for plotting and bookkeeping) is not used by a fit, as in rabbit");
  static const std::set<std::string> known = {"hprocs",
                                              "hsignals",
                                              "hsysts",
                                              "hsystsnoconstraint",
                                              "hsystgroups",
                                              "hsystgroupidxs",
                                              "hnoiidxs",
                                              "hnoigroupidxs",
                                              "hconstraintweights",
                                              "hdata_obs",
                                              "hdata_var",
                                              "hpseudodata",
                                              "hpseudodatanames",
                                              "hpseudodatavar",
                                              "hdata_cov_inv",
                                              "hsumw",
                                              "hsumw2",
                                              "hnorm",
                                              "hlogk",
                                              "hnorm_sparse",
                                              "hlogk_sparse",
                                              "hbetavariations",
                                              "external_terms",
                                              "auxiliary",
                                              "meta",
                                              "meta_json"};
  std::vector<std::string> unknown;
  for (const std::string& name : f_.ListMembers("/"))
    if (!known.count(name)) unknown.push_back(name);
  if (!unknown.empty()) {
    std::string list;
    for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
    Warn("unknown member(s) of the file ignored: " + list +
         " (not part of rabbit's fit-input format as lepus knows it; docs/format.md lists every "
         "dataset)");
  }
}

bool ReadOptions::IsDefault() const {
  const ReadOptions d;
  return patches.empty() && patchset.empty() && patch_name.empty() && measurement.empty() &&
         normsys_interp == d.normsys_interp && histosys_interp == d.histosys_interp;
}

bool LooksLikeWorkspace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char head[2] = {0, 0};
  in.read(head, 2);
  if (in.gcount() == 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b)
    return true;
  in.clear();
  in.seekg(0);
  // The first non-space character, within the first 4 KiB (HDF5 starts with \x89HDF).
  for (int i = 0; i < 4096; ++i) {
    const int c = in.get();
    if (c == std::char_traits<char>::eof()) return false;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}

engine::Model ReadFitInput(const std::string& path, ReadInfo* info) {
  return ReadFitInput(path, info, ReadOptions{});
}

engine::Model ReadFitInput(const std::string& path, ReadInfo* info, const ReadOptions& options) {
  if (LooksLikeWorkspace(path)) return ReadWorkspace(path, options, info);
  if (!options.IsDefault())
    throw InputError(path +
                     ": the workspace options (patches, patchset, measurement, normsys / histosys "
                     "interpolation) apply to HistFactory JSON workspaces only, but this input is "
                     "not a JSON workspace (an HDF5 fit input carries its model in full)");
  FitInputReader reader(path, info);
  return reader.Read();
}

}  // namespace lepus::io
