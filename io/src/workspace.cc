// HistFactory JSON workspaces (pyhf schema 1.0.0) into engine::Model. The steps follow
// docs/histfactory.md "Reading workspaces": parse and check every channel, sample and modifier
// (messages name the JSON path), order channels and samples by name, collect the parameter sets
// of the modifiers in pyhf's order with pyhf's defaults, apply the measurement's parameter
// configuration, then fill the tensor rows, constraints, bounds and data. Model::IsValid is the
// final safety net.
#include "lepus/io/workspace.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <zlib.h>
#include <nlohmann/json.hpp>

#include "format_util.h"

namespace lepus::io {

namespace {

using detail::Num;
using Json = nlohmann::json;

std::string Describe(const Json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s + " (" + v.type_name() + ")";
}

std::string Q(const std::string& s) { return "'" + s + "'"; }

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < 20; ++i) out += (i ? ", " : "") + Q(names[i]);
  if (names.size() > 20) out += ", ...";
  return out.empty() ? "(none)" : out;
}

// ---- files: plain or gzip-compressed JSON -------------------------------------------------

std::string ReadBytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw InputError(path + ": no such file");
  if (fs::is_directory(st)) throw InputError(path + ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot be opened for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path + ": read error");
  return ss.str();
}

bool IsGzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::string Gunzip(const std::string& bytes, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw InputError(path + ": cannot initialise zlib");
  std::string out;
  char buf[1 << 16];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members (as `cat a.gz b.gz` makes) continue the stream.
      if (zs.avail_in > 0 && inflateReset(&zs) == Z_OK) continue;
      break;
    }
    if (rc != Z_OK) break;
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      rc = Z_BUF_ERROR;
      break;
    }
  }
  const std::string msg = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (rc != Z_STREAM_END)
    throw InputError(path +
                     ": starts with the gzip signature (1f 8b), but is not a valid gzip stream (" +
                     (rc == Z_BUF_ERROR ? std::string("truncated")
                      : msg.empty()     ? "zlib error " + std::to_string(rc)
                                        : msg) +
                     ")");
  return out;
}

Json ParseJsonFile(const std::string& path, const std::string& what) {
  std::string bytes = ReadBytes(path);
  if (IsGzip(bytes)) bytes = Gunzip(bytes, path);
  try {
    return Json::parse(bytes);
  } catch (const Json::exception& e) {
    throw InputError(path + ": is not valid JSON (" + std::string(e.what()) + "), but must be " +
                     what);
  }
}

// Applies the operations of one JSON Patch one by one so that a failure names its index.
void ApplyPatch(Json& ws, const Json& patch, const std::string& where) {
  if (!patch.is_array())
    throw InputError(where + ": is " + Describe(patch) +
                     ", but must be a JSON Patch (an array of operations, RFC 6902)");
  for (std::size_t k = 0; k < patch.size(); ++k) {
    const Json& op = patch[k];
    const std::string at = where + "[" + std::to_string(k) + "]";
    if (!op.is_object())
      throw InputError(at + ": is " + Describe(op) +
                       ", but must be a JSON Patch operation (an object)");
    std::string desc;
    if (op.contains("op") && op["op"].is_string()) desc += " (" + op["op"].get<std::string>();
    if (op.contains("path") && op["path"].is_string())
      desc += (desc.empty() ? " (" : " ") + op["path"].get<std::string>();
    if (!desc.empty()) desc += ")";
    try {
      ws = ws.patch(Json::array({op}));
    } catch (const Json::exception& e) {
      throw InputError(at + desc + ": cannot be applied: " + std::string(e.what()));
    }
  }
}

// ---- the workspace -------------------------------------------------------------------------

enum class ModType { kHistosys, kLumi, kNormfactor, kNormsys, kShapefactor, kShapesys, kStaterror };
// pyhf's modifier set in its (alphabetical) builder order, which orders the parameters.
const std::vector<std::pair<std::string, ModType>> kModTypes = {
    {"histosys", ModType::kHistosys},       {"lumi", ModType::kLumi},
    {"normfactor", ModType::kNormfactor},   {"normsys", ModType::kNormsys},
    {"shapefactor", ModType::kShapefactor}, {"shapesys", ModType::kShapesys},
    {"staterror", ModType::kStaterror}};

std::string TypeName(ModType t) {
  for (const auto& [n, k] : kModTypes)
    if (k == t) return n;
  return "?";
}

struct Modifier {
  ModType type;
  std::string name;
  std::string path;                            // JSON path of the modifier
  double hi = 0.0, lo = 0.0;                   // normsys
  std::vector<double> hi_data, lo_data, data;  // histosys; staterror / shapesys
};

struct Sample {
  std::string name;
  std::string path;
  std::vector<double> data;
  std::vector<Modifier> modifiers;  // deduplicated by (type, name) (the last wins, as pyhf)
};

struct ChannelSpec {
  std::string name;
  std::string path;
  int nbins = 0;
  std::vector<Sample> samples;  // sorted by name
};

// One parameter set (pyhf's paramset): a scalar or one parameter per bin.
struct ParamSet {
  std::string name;
  std::string kind;  // "unconstrained", "normal", "poisson"
  int n = 1;
  bool scalar = true;
  std::string type;  // modifier type that defined it
  std::string path;  // JSON path of the defining modifier
  // Defaults (pyhf's required_parset); nullopt = "undefined" (the set does not use the key), an
  // empty vector = None (lumi: no default, the measurement must give it).
  std::optional<std::vector<double>> inits, auxdata, sigmas, factors;
  std::optional<std::vector<std::pair<double, double>>> bounds;
  std::vector<char> fixed;
  bool Same(const ParamSet& o) const {
    return kind == o.kind && n == o.n && scalar == o.scalar && inits == o.inits &&
           auxdata == o.auxdata && sigmas == o.sigmas && factors == o.factors &&
           bounds == o.bounds && fixed == o.fixed;
  }
};

class Builder {
 public:
  Builder(const Json& ws, const ReadOptions& options, std::string source, ReadInfo* info)
      : ws_(ws), options_(options), src_(std::move(source)), info_(info) {}

  void Parse();
  engine::Model Build();
  WorkspaceDescription Description(const engine::Model& m) const;

 private:
  [[noreturn]] void Fail(const std::string& path, const std::string& what) const {
    throw InputError(src_ + ": " + path + ": " + what);
  }
  void Warn(const std::string& what) {
    if (info_) info_->warnings.push_back(src_ + ": " + what);
  }
  const Json& Member(const Json& obj, const std::string& path, const std::string& key) const {
    if (!obj.is_object()) Fail(path, "is " + Describe(obj) + ", but must be a JSON object");
    auto it = obj.find(key);
    if (it == obj.end()) Fail(path + "." + key, "is missing, but is required");
    return *it;
  }
  std::string String(const Json& v, const std::string& path) const {
    if (!v.is_string()) Fail(path, "is " + Describe(v) + ", but must be a string");
    return v.get<std::string>();
  }
  double Number(const Json& v, const std::string& path) const {
    if (!v.is_number()) Fail(path, "is " + Describe(v) + ", but must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x)) Fail(path, "is " + Num(x) + ", but must be finite");
    return x;
  }
  const Json& Array(const Json& v, const std::string& path) const {
    if (!v.is_array()) Fail(path, "is " + Describe(v) + ", but must be an array");
    return v;
  }
  // An array of finite numbers; want >= 0 checks the length; non_negative checks the values.
  std::vector<double> Numbers(const Json& v, const std::string& path, long want,
                              const std::string& want_what, bool non_negative) const {
    Array(v, path);
    if (want >= 0 && static_cast<long>(v.size()) != want)
      Fail(path, "has " + std::to_string(v.size()) + " entries, but " + want_what);
    std::vector<double> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string at = path + "[" + std::to_string(i) + "]";
      const double x = Number(v[i], at);
      if (non_negative && x < 0) Fail(at, "is " + Num(x) + ", but must be >= 0");
      out.push_back(x);
    }
    return out;
  }
  void CheckKeys(const Json& obj, const std::string& path,
                 const std::set<std::string>& allowed) const {
    for (const auto& item : obj.items())
      if (!allowed.count(item.key())) {
        std::vector<std::string> names(allowed.begin(), allowed.end());
        Fail(path + "." + item.key(), "is not a known key here (known: " + JoinNames(names) + ")");
      }
  }

  Modifier ParseModifier(const Json& j, const std::string& path, int nbins);
  void ParseMeasurement();
  void CollectParamSets();
  void AddParamSet(ParamSet ps);
  void ApplyUserConfig();

  const Json& ws_;
  const ReadOptions& options_;
  std::string src_;
  ReadInfo* info_;

  std::vector<ChannelSpec> channels_;   // sorted by name
  std::vector<std::string> processes_;  // sorted union of sample names
  std::map<std::string, std::vector<double>> observations_;
  std::map<std::string, std::string> observation_paths_;
  std::string measurement_, measurement_path_, poi_;
  const Json* user_params_ = nullptr;

  std::vector<ParamSet> sets_;  // pyhf's parameter order
  std::map<std::string, int> set_index_;
  // staterror: per name, the channels carrying it (sorted) and the parameter offset of each.
  std::map<std::string, std::map<std::string, int>> staterror_offset_;
};

Modifier Builder::ParseModifier(const Json& j, const std::string& path, int nbins) {
  if (!j.is_object()) Fail(path, "is " + Describe(j) + ", but must be a modifier object");
  Modifier m;
  m.path = path;
  m.name = String(Member(j, path, "name"), path + ".name");
  if (m.name.empty()) Fail(path + ".name", "is empty, but must name the modifier");
  const std::string type = String(Member(j, path, "type"), path + ".type");
  bool known = false;
  for (const auto& [n, k] : kModTypes)
    if (n == type) {
      m.type = k;
      known = true;
    }
  if (!known)
    Fail(path + ".type",
         "is " + Q(type) +
             ", but must be one of histosys, lumi, normfactor, normsys, shapefactor, "
             "shapesys, staterror (HistFactory schema 1.0.0)");
  CheckKeys(j, path, {"name", "type", "data"});
  const Json& data = Member(j, path, "data");
  const std::string dpath = path + ".data";
  const std::string bins_what = "the channel has " + std::to_string(nbins) + " bins";
  switch (m.type) {
    case ModType::kLumi:
    case ModType::kNormfactor:
    case ModType::kShapefactor:
      if (!data.is_null())
        Fail(dpath, "is " + Describe(data) + ", but must be null for a " + type + " modifier");
      if (m.type == ModType::kLumi && m.name != "lumi")
        Fail(path + ".name",
             "is " + Q(m.name) +
                 ", but a lumi modifier must be named 'lumi' (HistFactory schema 1.0.0)");
      break;
    case ModType::kNormsys: {
      if (!data.is_object())
        Fail(dpath, "is " + Describe(data) + ", but must be an object {\"hi\": ..., \"lo\": ...}");
      CheckKeys(data, dpath, {"hi", "lo"});
      m.hi = Number(Member(data, dpath, "hi"), dpath + ".hi");
      m.lo = Number(Member(data, dpath, "lo"), dpath + ".lo");
      if (!(m.hi > 0))
        Fail(dpath + ".hi", "is " + Num(m.hi) + ", but must be > 0 (a normalisation factor)");
      if (!(m.lo > 0))
        Fail(dpath + ".lo", "is " + Num(m.lo) + ", but must be > 0 (a normalisation factor)");
      break;
    }
    case ModType::kHistosys: {
      if (!data.is_object())
        Fail(dpath, "is " + Describe(data) +
                        ", but must be an object {\"hi_data\": [...], \"lo_data\": [...]}");
      CheckKeys(data, dpath, {"hi_data", "lo_data"});
      m.hi_data =
          Numbers(Member(data, dpath, "hi_data"), dpath + ".hi_data", nbins, bins_what, false);
      m.lo_data =
          Numbers(Member(data, dpath, "lo_data"), dpath + ".lo_data", nbins, bins_what, false);
      break;
    }
    case ModType::kStaterror:
    case ModType::kShapesys:
      m.data = Numbers(data, dpath, nbins, bins_what, true);
      break;
  }
  return m;
}

void Builder::Parse() {
  if (!ws_.is_object())
    Fail("(top level)",
         "is " + Describe(ws_) + ", but must be a JSON object (a HistFactory workspace)");
  for (const auto& item : ws_.items())
    if (item.key() != "channels" && item.key() != "measurements" && item.key() != "observations" &&
        item.key() != "version")
      Warn(item.key() +
           ": unknown top-level key ignored (a workspace has channels, measurements, observations, "
           "version)");
  if (ws_.contains("version")) {
    const std::string v = String(ws_["version"], "version");
    if (v != "1.0.0")
      Fail("version",
           "is " + Q(v) + ", but must be '1.0.0' (the HistFactory schema this reader knows)");
  } else {
    Warn("version: missing; read as HistFactory schema 1.0.0");
  }
  const Json& chans = Array(Member(ws_, "(top level)", "channels"), "channels");
  if (chans.empty()) Fail("channels", "is empty, but a workspace needs at least one channel");
  std::map<std::string, std::string> seen_channel;
  std::set<std::string> procs;
  // Shapesys parameter sets may not be shared (pyhf: "other paramsets exist with the same name").
  std::map<std::string, std::string> shapesys_seen;
  for (std::size_t ci = 0; ci < chans.size(); ++ci) {
    const std::string cpath = "channels[" + std::to_string(ci) + "]";
    const Json& cj = chans[ci];
    if (!cj.is_object()) Fail(cpath, "is " + Describe(cj) + ", but must be a channel object");
    CheckKeys(cj, cpath, {"name", "samples"});
    ChannelSpec c;
    c.path = cpath;
    c.name = String(Member(cj, cpath, "name"), cpath + ".name");
    if (c.name.empty()) Fail(cpath + ".name", "is empty, but must name the channel");
    if (seen_channel.count(c.name))
      Fail(cpath + ".name", "is " + Q(c.name) + ", but " + seen_channel[c.name] +
                                " has the same name (channel names must be unique)");
    seen_channel[c.name] = cpath;
    const Json& samples = Array(Member(cj, cpath, "samples"), cpath + ".samples");
    if (samples.empty())
      Fail(cpath + ".samples", "is empty, but a channel needs at least one sample");
    std::map<std::string, std::string> seen_sample;
    for (std::size_t si = 0; si < samples.size(); ++si) {
      const std::string spath = cpath + ".samples[" + std::to_string(si) + "]";
      const Json& sj = samples[si];
      if (!sj.is_object()) Fail(spath, "is " + Describe(sj) + ", but must be a sample object");
      CheckKeys(sj, spath, {"name", "data", "modifiers"});
      Sample s;
      s.path = spath;
      s.name = String(Member(sj, spath, "name"), spath + ".name");
      if (s.name.empty()) Fail(spath + ".name", "is empty, but must name the sample");
      if (seen_sample.count(s.name))
        Fail(spath + ".name",
             "is " + Q(s.name) + ", but " + seen_sample[s.name] +
                 " has the same name (sample names must be unique within a channel)");
      seen_sample[s.name] = spath;
      if (si == 0) {
        const Json& d = Array(Member(sj, spath, "data"), spath + ".data");
        if (d.empty()) Fail(spath + ".data", "is empty, but a channel needs at least one bin");
        c.nbins = static_cast<int>(d.size());
      }
      s.data = Numbers(Member(sj, spath, "data"), spath + ".data", c.nbins,
                       "the channel has " + std::to_string(c.nbins) + " bins (the length of " +
                           cpath + ".samples[0].data)",
                       true);
      const Json& mods = Array(Member(sj, spath, "modifiers"), spath + ".modifiers");
      std::map<std::pair<ModType, std::string>, std::size_t> where;
      for (std::size_t mi = 0; mi < mods.size(); ++mi) {
        const std::string mpath = spath + ".modifiers[" + std::to_string(mi) + "]";
        Modifier m = ParseModifier(mods[mi], mpath, c.nbins);
        if (m.type == ModType::kShapesys) {
          auto it = shapesys_seen.find(m.name);
          if (it != shapesys_seen.end())
            Fail(mpath + ".name",
                 "is " + Q(m.name) + ", but " + it->second +
                     " is a shapesys modifier of the same name (shapesys parameters "
                     "belong to one sample; use unique names)");
          shapesys_seen[m.name] = mpath;
        }
        const auto key = std::make_pair(m.type, m.name);
        if (where.count(key)) {
          Warn(mpath + ": repeats " + TypeName(m.type) + " modifier " + Q(m.name) +
               " of the sample; the last one is used (as pyhf)");
          s.modifiers[where[key]] = std::move(m);
        } else {
          where[key] = s.modifiers.size();
          s.modifiers.push_back(std::move(m));
        }
      }
      procs.insert(s.name);
      c.samples.push_back(std::move(s));
    }
    std::sort(c.samples.begin(), c.samples.end(),
              [](const Sample& a, const Sample& b) { return a.name < b.name; });
    channels_.push_back(std::move(c));
  }
  std::sort(channels_.begin(), channels_.end(),
            [](const ChannelSpec& a, const ChannelSpec& b) { return a.name < b.name; });
  processes_.assign(procs.begin(), procs.end());

  // Observations by channel name.
  const Json& obs = Array(Member(ws_, "(top level)", "observations"), "observations");
  for (std::size_t oi = 0; oi < obs.size(); ++oi) {
    const std::string opath = "observations[" + std::to_string(oi) + "]";
    const Json& oj = obs[oi];
    if (!oj.is_object()) Fail(opath, "is " + Describe(oj) + ", but must be an observation object");
    CheckKeys(oj, opath, {"name", "data"});
    const std::string name = String(Member(oj, opath, "name"), opath + ".name");
    if (observation_paths_.count(name))
      Fail(opath + ".name", "is " + Q(name) + ", but " + observation_paths_[name] +
                                " has the same name (one observation per channel)");
    observation_paths_[name] = opath;
    const auto ch = std::find_if(channels_.begin(), channels_.end(),
                                 [&](const ChannelSpec& c) { return c.name == name; });
    if (ch == channels_.end()) {
      Warn(opath + ": observation " + Q(name) + " names no channel; ignored");
      continue;
    }
    observations_[name] =
        Numbers(Member(oj, opath, "data"), opath + ".data", ch->nbins,
                "channel " + Q(name) + " has " + std::to_string(ch->nbins) + " bins", true);
  }
  for (const auto& c : channels_)
    if (!observations_.count(c.name))
      Fail("observations", "has no entry named " + Q(c.name) +
                               ", but every channel needs its observed data (" + c.path + ")");
  ParseMeasurement();
}

void Builder::ParseMeasurement() {
  const Json& ms = Array(Member(ws_, "(top level)", "measurements"), "measurements");
  if (ms.empty()) Fail("measurements", "is empty, but a workspace needs at least one measurement");
  std::vector<std::string> names;
  int chosen = -1;
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const std::string mpath = "measurements[" + std::to_string(i) + "]";
    const std::string name = String(Member(ms[i], mpath, "name"), mpath + ".name");
    if (std::find(names.begin(), names.end(), name) != names.end())
      Fail(mpath + ".name", "is " + Q(name) + ", but measurement names must be unique");
    names.push_back(name);
    if (chosen < 0 && (options_.measurement.empty() || options_.measurement == name))
      chosen = static_cast<int>(i);
  }
  if (chosen < 0)
    Fail("measurements", "has no measurement named " + Q(options_.measurement) +
                             " (available: " + JoinNames(names) + ")");
  measurement_ = names[chosen];
  measurement_path_ = "measurements[" + std::to_string(chosen) + "]";
  const Json& mj = ms[chosen];
  CheckKeys(mj, measurement_path_, {"name", "config"});
  const std::string cpath = measurement_path_ + ".config";
  const Json& config = Member(mj, measurement_path_, "config");
  if (!config.is_object())
    Fail(cpath, "is " + Describe(config) +
                    ", but must be an object {\"poi\": ..., \"parameters\": [...]}");
  CheckKeys(config, cpath, {"poi", "parameters"});
  poi_ = String(Member(config, cpath, "poi"), cpath + ".poi");
  if (config.contains("parameters"))
    user_params_ = &Array(config["parameters"], cpath + ".parameters");
}

void Builder::AddParamSet(ParamSet ps) {
  auto it = set_index_.find(ps.name);
  if (it == set_index_.end()) {
    set_index_[ps.name] = static_cast<int>(sets_.size());
    sets_.push_back(std::move(ps));
    return;
  }
  const ParamSet& old = sets_[it->second];
  if (!old.Same(ps)) {
    std::string why;
    if (old.kind != ps.kind || old.type != ps.type)
      why =
          "a " + ps.type + " modifier cannot share its parameter with a " + old.type + " modifier";
    else if (old.n != ps.n)
      why = "it needs " + std::to_string(ps.n) + " parameters here but " + std::to_string(old.n) +
            " there";
    else
      why = "the parameter settings (constraint widths, bounds or fixed bins) differ";
    Fail(ps.path + ".name", "is " + Q(ps.name) + ", but " + old.path + " (" + old.type +
                                ") defines a parameter set of the same name and " + why +
                                " (use unique modifier names)");
  }
}

void Builder::CollectParamSets() {
  // pyhf: builders in type order; within one, the first occurrence walking channels, samples and
  // modifiers (sorted by (name, type)) defines the set. Staterror is collected over all channels.
  for (const auto& [tname, type] : kModTypes) {
    if (type == ModType::kStaterror) continue;
    for (const auto& c : channels_)
      for (const auto& s : c.samples) {
        std::vector<const Modifier*> mods;
        for (const auto& m : s.modifiers)
          if (m.type == type) mods.push_back(&m);
        std::sort(mods.begin(), mods.end(),
                  [](const Modifier* a, const Modifier* b) { return a->name < b->name; });
        for (const Modifier* m : mods) {
          ParamSet ps;
          ps.name = m->name;
          ps.type = tname;
          ps.path = m->path;
          switch (type) {
            case ModType::kHistosys:
            case ModType::kNormsys:
              ps.kind = "normal";
              ps.inits = std::vector<double>{0.0};
              ps.bounds = std::vector<std::pair<double, double>>{{-5.0, 5.0}};
              ps.auxdata = std::vector<double>{0.0};
              ps.fixed = {0};
              break;
            case ModType::kLumi:
              ps.kind = "normal";
              ps.inits = std::vector<double>{};
              ps.bounds = std::vector<std::pair<double, double>>{};
              ps.auxdata = std::vector<double>{};
              ps.sigmas = std::vector<double>{};
              ps.fixed = {0};
              break;
            case ModType::kNormfactor:
              ps.kind = "unconstrained";
              ps.inits = std::vector<double>{1.0};
              ps.bounds = std::vector<std::pair<double, double>>{{0.0, 10.0}};
              ps.fixed = {0};
              break;
            case ModType::kShapefactor:
              ps.kind = "unconstrained";
              ps.n = c.nbins;
              ps.scalar = false;
              ps.inits = std::vector<double>(c.nbins, 1.0);
              ps.bounds = std::vector<std::pair<double, double>>(c.nbins, {0.0, 10.0});
              ps.fixed.assign(c.nbins, 0);
              break;
            case ModType::kShapesys: {
              ps.kind = "poisson";
              ps.n = c.nbins;
              ps.scalar = false;
              ps.inits = std::vector<double>(c.nbins, 1.0);
              ps.bounds = std::vector<std::pair<double, double>>(c.nbins, {1e-10, 10.0});
              std::vector<double> factors(c.nbins, 1.0);
              ps.fixed.assign(c.nbins, 0);
              for (int b = 0; b < c.nbins; ++b) {
                const bool valid = s.data[b] > 0 && m->data[b] > 0;
                if (valid) {
                  factors[b] = (s.data[b] / m->data[b]) * (s.data[b] / m->data[b]);
                  if (!std::isfinite(factors[b]))
                    Fail(m->path + ".data[" + std::to_string(b) + "]",
                         "is " + Num(m->data[b]) +
                             ", which makes tau = (nominal / uncertainty)^2 overflow");
                } else {
                  ps.fixed[b] = 1;
                }
              }
              ps.auxdata = factors;
              ps.factors = factors;
              break;
            }
            case ModType::kStaterror:
              break;
          }
          // Shapefactor: pyhf keeps the first channel's bin count; a longer channel has no
          // parameter for its last bins.
          if (type == ModType::kShapefactor) {
            auto it = set_index_.find(ps.name);
            if (it != set_index_.end() && sets_[it->second].type == "shapefactor") {
              if (sets_[it->second].n < c.nbins)
                Fail(m->path + ".name",
                     "is " + Q(ps.name) + ", a shapefactor of " + std::to_string(c.nbins) +
                         " bins, but " + sets_[it->second].path + " defines it with " +
                         std::to_string(sets_[it->second].n) +
                         " bins (a shared shapefactor needs at least as many parameters as bins)");
              continue;
            }
          }
          AddParamSet(std::move(ps));
        }
      }
  }

  // Staterror: one parameter per bin of the channels carrying the name (in channel order);
  // sigma_b = sqrt(sum_s unc_sb^2) / sum_s nominal_sb over the samples carrying it.
  std::set<std::string> names;
  for (const auto& c : channels_)
    for (const auto& s : c.samples)
      for (const auto& m : s.modifiers)
        if (m.type == ModType::kStaterror) names.insert(m.name);
  for (const std::string& name : names) {
    // Channels of each sample carrying it: pyhf requires the same set for every such sample.
    std::map<std::string, std::set<std::string>> chans_of_sample;
    std::map<std::string, std::string> path_of_sample;
    for (const auto& c : channels_)
      for (const auto& s : c.samples)
        for (const auto& m : s.modifiers)
          if (m.type == ModType::kStaterror && m.name == name) {
            chans_of_sample[s.name].insert(c.name);
            path_of_sample.emplace(s.name, m.path);
          }
    const auto& first = *chans_of_sample.begin();
    for (const auto& [sname, set] : chans_of_sample)
      if (set != first.second) {
        auto list = [](const std::set<std::string>& v) {
          std::string o;
          for (const auto& x : v) o += (o.empty() ? "" : ", ") + x;
          return o;
        };
        Fail(path_of_sample[sname] + ".name",
             "is " + Q(name) + ", a staterror on sample " + Q(sname) + " in channel(s) " +
                 list(set) + ", but sample " + Q(first.first) + " carries it in channel(s) " +
                 list(first.second) +
                 " (pyhf requires every sample with a staterror to carry it in the same channels)");
      }
    ParamSet ps;
    ps.name = name;
    ps.type = "staterror";
    ps.kind = "normal";
    ps.scalar = false;
    ps.path = path_of_sample[first.first];
    std::vector<double> sigmas;
    int offset = 0;
    for (const auto& c : channels_) {
      if (!first.second.count(c.name)) continue;
      staterror_offset_[name][c.name] = offset;
      offset += c.nbins;
      for (int b = 0; b < c.nbins; ++b) {
        double nom = 0.0;
        for (const auto& s : c.samples)
          for (const auto& m : s.modifiers)
            if (m.type == ModType::kStaterror && m.name == name) nom += s.data[b];
        double rel2 = 0.0;
        if (nom > 0)
          for (const auto& s : c.samples)
            for (const auto& m : s.modifiers)
              if (m.type == ModType::kStaterror && m.name == name)
                rel2 += (m.data[b] / nom) * (m.data[b] / nom);
        sigmas.push_back(std::sqrt(rel2));
      }
    }
    ps.n = offset;
    ps.inits = std::vector<double>(offset, 1.0);
    ps.bounds = std::vector<std::pair<double, double>>(offset, {1e-10, 10.0});
    ps.auxdata = std::vector<double>(offset, 1.0);
    ps.fixed.assign(offset, 0);
    for (int i = 0; i < offset; ++i)
      if (!(sigmas[i] > 0)) {
        // pyhf fixes a parameter whose relative uncertainty is 0 (its width set to 1).
        ps.fixed[i] = 1;
        sigmas[i] = 1.0;
      }
    ps.sigmas = sigmas;
    AddParamSet(std::move(ps));
  }
  if (sets_.empty())
    Fail("channels",
         "have no modifiers, but a model needs at least one parameter (pyhf: 'No parameters "
         "specified for the Model')");
}

void Builder::ApplyUserConfig() {
  const std::string ppath = measurement_path_ + ".config.parameters";
  std::map<std::string, std::string> seen;
  for (std::size_t k = 0; user_params_ && k < user_params_->size(); ++k) {
    const std::string path = ppath + "[" + std::to_string(k) + "]";
    const Json& pj = (*user_params_)[k];
    if (!pj.is_object())
      Fail(path, "is " + Describe(pj) + ", but must be a parameter configuration object");
    CheckKeys(pj, path, {"name", "inits", "bounds", "auxdata", "factors", "sigmas", "fixed"});
    const std::string name = String(Member(pj, path, "name"), path + ".name");
    if (seen.count(name))
      Fail(path + ".name", "is " + Q(name) + ", but " + seen[name] + " configures it already");
    seen[name] = path;
    auto it = set_index_.find(name);
    if (it == set_index_.end()) {
      Warn(path + ": parameter " + Q(name) +
           " is used by no modifier; its configuration is ignored");
      continue;
    }
    ParamSet& ps = sets_[it->second];
    const std::string n_what = "parameter " + Q(name) + " (" + ps.type + ") has " +
                               std::to_string(ps.n) + (ps.n == 1 ? " component" : " components");
    auto check_used = [&](const char* key, bool used) {
      if (!used)
        Fail(path + "." + key,
             "is given, but parameter " + Q(name) + " (" + ps.type + ") does not use " + key);
    };
    if (pj.contains("inits")) ps.inits = Numbers(pj["inits"], path + ".inits", ps.n, n_what, false);
    if (pj.contains("auxdata")) {
      check_used("auxdata", ps.auxdata.has_value());
      ps.auxdata = Numbers(pj["auxdata"], path + ".auxdata", ps.n, n_what, false);
    }
    if (pj.contains("sigmas")) {
      check_used("sigmas", ps.sigmas.has_value());
      ps.sigmas = Numbers(pj["sigmas"], path + ".sigmas", ps.n, n_what, false);
      for (int i = 0; i < ps.n; ++i)
        if (!((*ps.sigmas)[i] > 0))
          Fail(path + ".sigmas[" + std::to_string(i) + "]",
               "is " + Num((*ps.sigmas)[i]) + ", but must be > 0");
    }
    if (pj.contains("factors")) {
      check_used("factors", ps.factors.has_value());
      ps.factors = Numbers(pj["factors"], path + ".factors", ps.n, n_what, false);
      for (int i = 0; i < ps.n; ++i)
        if (!((*ps.factors)[i] > 0))
          Fail(path + ".factors[" + std::to_string(i) + "]",
               "is " + Num((*ps.factors)[i]) + ", but must be > 0");
    }
    if (pj.contains("bounds")) {
      const Json& b = Array(pj["bounds"], path + ".bounds");
      if (static_cast<int>(b.size()) != ps.n)
        Fail(path + ".bounds", "has " + std::to_string(b.size()) + " entries, but " + n_what);
      std::vector<std::pair<double, double>> bounds;
      for (std::size_t i = 0; i < b.size(); ++i) {
        const std::string at = path + ".bounds[" + std::to_string(i) + "]";
        const auto v = Numbers(b[i], at, 2, "must be [lower, upper]", false);
        if (!(v[0] <= v[1]))
          Fail(at, "is [" + Num(v[0]) + ", " + Num(v[1]) + "], but must satisfy lower <= upper");
        bounds.emplace_back(v[0], v[1]);
      }
      ps.bounds = bounds;
    }
    if (pj.contains("fixed")) {
      if (!pj["fixed"].is_boolean())
        Fail(path + ".fixed", "is " + Describe(pj["fixed"]) + ", but must be true or false");
      ps.fixed.assign(ps.n, pj["fixed"].get<bool>() ? 1 : 0);
    }
  }
  // lumi has no defaults in pyhf: the measurement gives its auxdata and sigma.
  for (ParamSet& ps : sets_) {
    if (ps.type != "lumi") continue;
    if (ps.auxdata->empty() || ps.sigmas->empty())
      Fail(ppath,
           "has no entry for 'lumi' with auxdata and sigmas, but the lumi modifier (" + ps.path +
               ") needs them (e.g. {\"name\": \"lumi\", \"auxdata\": [1.0], \"sigmas\": [0.02], "
               "\"bounds\": [[0.5, 1.5]], \"inits\": [1.0]})");
    if (ps.inits->empty()) ps.inits = *ps.auxdata;
    if (ps.bounds->empty())
      ps.bounds = std::vector<std::pair<double, double>>{{0.0, 10.0 * (*ps.auxdata)[0]}};
  }
  for (const ParamSet& ps : sets_)
    for (int i = 0; i < ps.n; ++i) {
      const double x = (*ps.inits)[i];
      const auto [lo, hi] = (*ps.bounds)[i];
      if (!(x >= lo && x <= hi))
        Fail(seen.count(ps.name) ? seen[ps.name] : ps.path,
             "parameter " + Q(ps.name) + (ps.scalar ? "" : "[" + std::to_string(i) + "]") +
                 " starts at " + Num(x) + ", but must start inside its bounds [" + Num(lo) + ", " +
                 Num(hi) + "]");
      if (ps.kind == "poisson" && (*ps.auxdata)[i] < 0)
        Fail(seen.count(ps.name) ? seen[ps.name] : ps.path,
             "parameter " + Q(ps.name) + "[" + std::to_string(i) + "] has auxdata " +
                 Num((*ps.auxdata)[i]) + ", but a Poisson auxiliary count must be >= 0");
    }
}

engine::Model Builder::Build() {
  if (options_.normsys_interp != "code1" && options_.normsys_interp != "code4")
    throw InputError("normsys interpolation is " + Q(options_.normsys_interp) +
                     ", but must be code1 or code4");
  if (options_.histosys_interp != "code0" && options_.histosys_interp != "code4p")
    throw InputError("histosys interpolation is " + Q(options_.histosys_interp) +
                     ", but must be code0 or code4p");
  const engine::EntryKind normsys_kind = options_.normsys_interp == "code1"
                                             ? engine::EntryKind::kNormsysCode1
                                             : engine::EntryKind::kNormsysCode4;
  const engine::EntryKind histosys_kind = options_.histosys_interp == "code0"
                                              ? engine::EntryKind::kHistosysCode0
                                              : engine::EntryKind::kHistosysCode4p;

  CollectParamSets();
  ApplyUserConfig();

  engine::Model m;
  m.processes = processes_;
  m.num_signals = 0;
  m.systematic_type = engine::SystematicType::kLogNormal;
  m.storage = engine::StorageKind::kSparse;
  std::vector<int> first_col(sets_.size());
  for (std::size_t k = 0; k < sets_.size(); ++k) {
    const ParamSet& ps = sets_[k];
    first_col[k] = m.num_systematics();
    for (int i = 0; i < ps.n; ++i) {
      m.systematics.push_back(ps.scalar ? ps.name : ps.name + "[" + std::to_string(i) + "]");
      const double init = (*ps.inits)[i];
      m.initial_values.push_back(init);
      m.lower_bounds.push_back((*ps.bounds)[i].first);
      m.upper_bounds.push_back((*ps.bounds)[i].second);
      m.fixed.push_back(ps.fixed[i]);
      if (ps.kind == "unconstrained") {
        m.constraint_kinds.push_back(engine::ConstraintKind::kGaussian);
        m.constraint_weights.push_back(0.0);
        m.global_observables.push_back(init);
      } else if (ps.kind == "normal") {
        const double sigma = ps.sigmas ? (*ps.sigmas)[i] : 1.0;
        m.constraint_kinds.push_back(engine::ConstraintKind::kGaussian);
        m.constraint_weights.push_back(1.0 / (sigma * sigma));
        m.global_observables.push_back((*ps.auxdata)[i]);
      } else {
        const double tau = (*ps.factors)[i];
        m.constraint_kinds.push_back(engine::ConstraintKind::kPoisson);
        m.constraint_weights.push_back(tau);
        m.global_observables.push_back((*ps.auxdata)[i] / tau);
      }
    }
  }
  if (!poi_.empty()) {
    auto it = set_index_.find(poi_);
    if (it == set_index_.end())
      Fail(measurement_path_ + ".config.poi",
           "is " + Q(poi_) + ", but no modifier defines a parameter of that name");
    if (sets_[it->second].n != 1)
      Fail(measurement_path_ + ".config.poi", "is " + Q(poi_) + ", but that parameter set has " +
                                                  std::to_string(sets_[it->second].n) +
                                                  " components (a POI must be a single parameter)");
    m.noi_indices = {first_col[it->second]};
  }

  // Channels, data, tensor rows (bin, then process), entries sorted by column.
  const std::map<std::string, int> proc_index = [&] {
    std::map<std::string, int> out;
    for (std::size_t p = 0; p < processes_.size(); ++p) out[processes_[p]] = static_cast<int>(p);
    return out;
  }();
  std::int64_t offset = 0;
  std::vector<double> data;
  auto& t = m.tensor;
  t.row_start.push_back(0);
  struct Entry {
    int col;
    engine::EntryKind kind;
    double up, down;
  };
  for (const auto& c : channels_) {
    engine::Channel ch;
    ch.name = c.name;
    ch.axes = {engine::Axis{"bin", {}}};
    ch.nbins = c.nbins;
    m.channels.push_back(ch);
    const auto& obs = observations_.at(c.name);
    data.insert(data.end(), obs.begin(), obs.end());
    for (int b = 0; b < c.nbins; ++b) {
      for (const auto& s : c.samples) {
        std::vector<Entry> entries;
        bool additive = false;
        for (const auto& mod : s.modifiers) {
          const int k = set_index_.at(mod.name);
          const int col0 = first_col[k];
          switch (mod.type) {
            case ModType::kNormfactor:
            case ModType::kLumi:
              entries.push_back({col0, engine::EntryKind::kFactor, 0.0, 0.0});
              break;
            case ModType::kNormsys:
              entries.push_back({col0, normsys_kind, mod.hi, mod.lo});
              break;
            case ModType::kHistosys: {
              const double up = mod.hi_data[b] - s.data[b], down = mod.lo_data[b] - s.data[b];
              if (!std::isfinite(up) || !std::isfinite(down))
                Fail(mod.path + ".data",
                     "bin " + std::to_string(b) + " gives a non-finite difference to the nominal");
              entries.push_back({col0, histosys_kind, up, down});
              additive = true;
              break;
            }
            case ModType::kShapefactor:
            case ModType::kShapesys:
              entries.push_back({col0 + b, engine::EntryKind::kFactor, 0.0, 0.0});
              break;
            case ModType::kStaterror:
              entries.push_back({col0 + staterror_offset_.at(mod.name).at(c.name) + b,
                                 engine::EntryKind::kFactor, 0.0, 0.0});
              break;
          }
        }
        const double nom = s.data[b];
        if (nom == 0.0 && !additive) continue;  // the yield is 0 whatever the parameters
        std::stable_sort(entries.begin(), entries.end(),
                         [](const Entry& a, const Entry& b2) { return a.col < b2.col; });
        t.row_bin.push_back(static_cast<std::int32_t>(offset + b));
        t.row_proc.push_back(proc_index.at(s.name));
        t.norm.push_back(nom);
        for (const Entry& e : entries) {
          t.syst.push_back(e.col);
          t.logk_avg.push_back(0.0);
          t.entry_kind.push_back(e.kind);
          t.entry_up.push_back(e.up);
          t.entry_down.push_back(e.down);
        }
        t.row_start.push_back(static_cast<std::int64_t>(t.syst.size()));
      }
    }
    offset += c.nbins;
  }
  m.nbins = m.nbins_full = offset;
  m.data_obs =
      Eigen::Map<const Eigen::VectorXd>(data.data(), static_cast<Eigen::Index>(data.size()));
  m.sumw2 = Eigen::MatrixXd::Zero(m.nbins_full, m.num_processes());
  std::string error;
  if (!m.IsValid(&error))
    throw InputError(src_ + ": the model built from the workspace is invalid: " + error);
  return m;
}

WorkspaceDescription Builder::Description(const engine::Model& m) const {
  WorkspaceDescription d;
  d.measurement = measurement_;
  d.poi = poi_;
  for (const auto& c : channels_) {
    WorkspaceChannelInfo ci;
    ci.name = c.name;
    ci.nbins = c.nbins;
    for (const auto& s : c.samples) {
      WorkspaceSampleInfo si;
      si.name = s.name;
      for (double v : s.data) si.yield += v;
      std::vector<const Modifier*> mods;
      for (const auto& mod : s.modifiers) mods.push_back(&mod);
      std::stable_sort(mods.begin(), mods.end(), [](const Modifier* a, const Modifier* b) {
        return std::make_pair(a->name, TypeName(a->type)) <
               std::make_pair(b->name, TypeName(b->type));
      });
      for (const Modifier* mod : mods) {
        WorkspaceModifierInfo mi;
        mi.type = TypeName(mod->type);
        mi.name = mod->name;
        const ParamSet& ps = sets_[set_index_.at(mod->name)];
        if (ps.scalar) {
          mi.parameters.push_back(ps.name);
        } else {
          const int first =
              mod->type == ModType::kStaterror ? staterror_offset_.at(mod->name).at(c.name) : 0;
          for (int b = 0; b < c.nbins; ++b)
            mi.parameters.push_back(ps.name + "[" + std::to_string(first + b) + "]");
        }
        si.modifiers.push_back(mi);
      }
      ci.samples.push_back(si);
    }
    d.channels.push_back(ci);
  }
  for (int s = 0; s < m.num_systematics(); ++s) {
    WorkspaceParameterInfo p;
    p.name = m.systematics[s];
    const double cw = m.constraint_weights[s];
    p.centre = m.global_observables[s];
    if (m.constraint_kinds[s] == engine::ConstraintKind::kPoisson) {
      p.constraint = "poisson";
      p.width = cw;
    } else if (cw > 0) {
      p.constraint = "gaussian";
      p.width = 1.0 / std::sqrt(cw);
    } else {
      p.constraint = "free";
    }
    p.init = m.initial_values[s];
    p.lower = m.lower_bounds[s];
    p.upper = m.upper_bounds[s];
    p.fixed = m.fixed[s] != 0;
    d.parameters.push_back(p);
  }
  return d;
}

}  // namespace

Json LoadWorkspaceJson(const std::string& path, const ReadOptions& options, ReadInfo* info) {
  Json ws = ParseJsonFile(path, "a HistFactory JSON workspace");
  for (const std::string& patch_file : options.patches) {
    const Json patch = ParseJsonFile(patch_file, "a JSON Patch (RFC 6902)");
    ApplyPatch(ws, patch, patch_file);
  }
  if (options.patchset.empty() != options.patch_name.empty())
    throw InputError(options.patchset.empty()
                         ? "the patch name " + Q(options.patch_name) +
                               " is given without a patchset file"
                         : options.patchset + ": a patchset needs the name of the patch to apply");
  if (!options.patchset.empty()) {
    const std::string& pf = options.patchset;
    const Json ps = ParseJsonFile(pf, "a HEPData patchset");
    if (!ps.is_object())
      throw InputError(pf + ": (top level): is " + Describe(ps) +
                       ", but must be a patchset object");
    if (ps.contains("version") && ps["version"] != "1.0.0")
      throw InputError(pf + ": version: is " + Describe(ps["version"]) + ", but must be \"1.0.0\"");
    if (!ps.contains("patches") || !ps["patches"].is_array())
      throw InputError(pf + ": patches: is " +
                       (ps.contains("patches") ? Describe(ps["patches"]) : "missing") +
                       ", but must be an array of patches");
    std::vector<std::string> names;
    int found = -1;
    for (std::size_t j = 0; j < ps["patches"].size(); ++j) {
      const Json& p = ps["patches"][j];
      const std::string at = pf + ": patches[" + std::to_string(j) + "]";
      if (!p.is_object() || !p.contains("metadata") || !p["metadata"].is_object() ||
          !p["metadata"].contains("name") || !p["metadata"]["name"].is_string())
        throw InputError(at + ": is " + Describe(p) +
                         ", but must be {\"metadata\": {\"name\": ...}, \"patch\": [...]}");
      const std::string name = p["metadata"]["name"].get<std::string>();
      if (name == options.patch_name) {
        if (found >= 0)
          throw InputError(at + ".metadata.name: is " + Q(name) +
                           ", but patch names must be unique");
        found = static_cast<int>(j);
      }
      names.push_back(name);
    }
    if (found < 0)
      throw InputError(pf + ": has no patch named " + Q(options.patch_name) +
                       " (available: " + JoinNames(names) + ")");
    const Json& p = ps["patches"][found];
    if (!p.contains("patch"))
      throw InputError(pf + ": patches[" + std::to_string(found) +
                       "].patch: is missing, but is required");
    ApplyPatch(ws, p["patch"], pf + ": patches[" + std::to_string(found) + "].patch");
  }
  if (info) {
    info->path = path;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    info->file_bytes = ec ? 0 : static_cast<long long>(size);
    info->has_meta = true;
    info->meta_format = "histfactory";
  }
  return ws;
}

engine::Model ModelFromWorkspace(const Json& workspace, const ReadOptions& options,
                                 const std::string& source, ReadInfo* info) {
  Builder b(workspace, options, source, info);
  b.Parse();
  return b.Build();
}

engine::Model ReadWorkspace(const std::string& path, const ReadOptions& options, ReadInfo* info) {
  const Json ws = LoadWorkspaceJson(path, options, info);
  return ModelFromWorkspace(ws, options, path, info);
}

WorkspaceDescription DescribeWorkspace(const Json& workspace, const ReadOptions& options,
                                       const std::string& source) {
  Builder b(workspace, options, source, nullptr);
  b.Parse();
  const engine::Model m = b.Build();
  return b.Description(m);
}

}  // namespace lepus::io
