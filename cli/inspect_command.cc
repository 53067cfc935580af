// `lepus inspect INPUT.h5`: what a fit input contains (channels, processes, systematics, tensor
// storage and size), as text or JSON on stdout.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "command.h"
#include "exit_codes.h"
#include "fit_input.h"
#include "lepus/engine/model.h"
#include "lepus/io/workspace.h"

namespace lepus::cli {
namespace {

using nlohmann::json;

struct InspectArgs {
  std::string input;
  io::ReadOptions read;  // workspace flags (JSON workspaces)
  bool json = false;
};

// Lists of names are printed in full up to this many entries.
constexpr std::size_t kMaxListed = 12;

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string G(double v) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string NameList(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kMaxListed; ++i)
    out += (i ? ", " : "") + names[i];
  if (names.size() > kMaxListed) out += ", ...";
  return out;
}

json Describe(const engine::Model& m, const io::ReadInfo& ri) {
  json j;
  j["input"] = ri.path;
  j["file_bytes"] = ri.file_bytes;
  j["has_metadata"] = ri.has_meta;
  j["metadata_format"] = ri.meta_format;  // "meta_json", "rabbit" (pickled meta) or ""
  // rabbit's meta_info (provenance), as decoded from its pickled metadata.
  if (!ri.meta_info_json.empty()) j["meta_info"] = json::parse(ri.meta_info_json);
  j["filters"] = ri.filters;
  j["warnings"] = ri.warnings;
  j["storage"] = engine::ToString(m.storage);
  j["systematic_type"] = engine::ToString(m.systematic_type);
  j["asymmetric"] = m.asymmetric;
  j["nbins"] = m.nbins;
  j["nbins_full"] = m.nbins_full;

  json channels = json::array();
  for (const auto& c : m.channels) {
    json axes = json::array();
    for (const auto& a : c.axes) {
      json ja{{"name", a.name}};
      if (a.edges.size() >= 2) {
        ja["bins"] = a.edges.size() - 1;
        ja["low"] = a.edges.front();
        ja["high"] = a.edges.back();
        ja["edges"] = a.edges;
        if (!a.labels.empty()) ja["labels"] = a.labels;
      } else {
        ja["bins"] = nullptr;  // integer bins
      }
      axes.push_back(ja);
    }
    channels.push_back({{"name", c.name}, {"bins", c.nbins}, {"masked", c.masked}, {"axes", axes}});
  }
  j["channels"] = channels;

  // Prefit yields per process over the fitted and the masked bins.
  const Eigen::MatrixXd norm = m.DenseNorm();
  json procs = json::array();
  for (int p = 0; p < m.num_processes(); ++p) {
    const double fitted = norm.col(p).head(m.nbins).sum();
    const double masked = norm.col(p).tail(m.nbins_full - m.nbins).sum();
    procs.push_back({{"name", m.processes[p]},
                     {"signal", p < m.num_signals},
                     {"prefit_yield", fitted},
                     {"prefit_yield_masked", masked}});
  }
  j["processes"] = procs;

  int constrained = 0, free = 0, noi = 0;
  std::vector<bool> is_noi(m.num_systematics(), false);
  for (int i : m.noi_indices)
    if (i >= 0 && i < m.num_systematics()) is_noi[i] = true;
  std::vector<std::string> noi_names, free_names;
  for (int s = 0; s < m.num_systematics(); ++s) {
    if (is_noi[s]) {
      ++noi;
      noi_names.push_back(m.systematics[s]);
    } else if (m.constraint_weights[s] > 0.0) {
      ++constrained;
    } else {
      ++free;
      free_names.push_back(m.systematics[s]);
    }
  }
  json groups = json::array();
  for (const auto& g : m.groups) {
    std::vector<std::string> members;
    for (int i : g.members)
      if (i >= 0 && i < m.num_systematics()) members.push_back(m.systematics[i]);
    json jg{{"name", g.name}, {"size", g.members.size()}};
    if (members.size() <= kMaxListed) jg["members"] = members;
    groups.push_back(jg);
  }
  json systs{
      {"total", m.num_systematics()}, {"constrained", constrained}, {"free", free},    {"noi", noi},
      {"noi_names", noi_names},       {"free_names", free_names},   {"groups", groups}};
  if (m.systematics.size() <= kMaxListed) systs["names"] = m.systematics;
  j["systematics"] = systs;

  // Tensor size: the row layout in memory, and what a dense layout would take.
  const auto& t = m.tensor;
  const double cells =
      static_cast<double>(m.nbins_full) * m.num_processes() * std::max(1, m.num_systematics());
  const double row_bytes = t.num_rows() * (4.0 + 4.0 + 8.0) + (t.num_rows() + 1) * 8.0;
  const double entry_bytes = t.num_entries() * (4.0 + 8.0 + (t.logk_halfdiff.empty() ? 0.0 : 8.0));
  j["tensor"] = {{"rows", t.num_rows()},
                 {"entries", t.num_entries()},
                 {"density", m.num_systematics() > 0 ? t.num_entries() / cells : 0.0},
                 {"memory_bytes", row_bytes + entry_bytes},
                 {"dense_equivalent_bytes", cells * 8.0 * (m.asymmetric ? 2.0 : 1.0)},
                 {"hessian_bytes", 8.0 * m.num_params() * m.num_params()}};
  j["parameters"] = m.num_params();

  json data{
      {"total", m.data_obs.sum()}, {"bins", m.data_obs.size()}, {"pseudodata", m.pseudodata_names}};
  j["data"] = data;
  return j;
}

void PrintText(const json& j, std::ostream& os) {
  os << "input: " << j["input"].get<std::string>() << " (" << Bytes(j["file_bytes"].get<double>())
     << (j["has_metadata"].get<bool>() ? "" : ", no metadata")
     << (j["metadata_format"] == "rabbit" ? ", rabbit metadata" : "") << ")\n";
  if (j.contains("meta_info") && j["meta_info"].is_object()) {
    std::vector<std::string> keys;
    for (const auto& item : j["meta_info"].items()) keys.push_back(item.key());
    os << "provenance (rabbit meta_info): " << NameList(keys) << "\n";
  }
  os << "storage: " << j["storage"].get<std::string>() << ", systematics "
     << j["systematic_type"].get<std::string>()
     << (j["asymmetric"].get<bool>() ? ", asymmetric" : ", symmetric") << "\n";
  os << "\nchannels (" << j["nbins"] << " fitted bins, " << j["nbins_full"] << " in total):\n";
  for (const auto& c : j["channels"]) {
    os << "  " << c["name"].get<std::string>() << ": " << c["bins"] << " bins"
       << (c["masked"].get<bool>() ? " [masked]" : "") << "\n";
    for (const auto& a : c["axes"]) {
      os << "    " << a["name"].get<std::string>() << ": ";
      if (a["bins"].is_null()) {
        os << "integer bins\n";
      } else if (a.contains("labels")) {
        os << a["bins"] << " bins: " << NameList(a["labels"].get<std::vector<std::string>>())
           << "\n";
      } else {
        os << a["bins"] << " bins in [" << G(a["low"].get<double>()) << ", "
           << G(a["high"].get<double>()) << "]\n";
      }
    }
  }
  os << "\nprocesses:\n";
  for (const auto& p : j["processes"]) {
    os << "  " << p["name"].get<std::string>() << " ("
       << (p["signal"].get<bool>() ? "signal" : "background") << "): prefit yield "
       << G(p["prefit_yield"].get<double>());
    if (p["prefit_yield_masked"].get<double>() != 0.0)
      os << " (+" << G(p["prefit_yield_masked"].get<double>()) << " masked)";
    os << "\n";
  }
  const auto& s = j["systematics"];
  os << "\nsystematics: " << s["total"] << " (" << s["constrained"] << " constrained, " << s["free"]
     << " free, " << s["noi"] << " of interest)\n";
  if (s.contains("names"))
    os << "  names: " << NameList(s["names"].get<std::vector<std::string>>()) << "\n";
  if (!s["noi_names"].empty())
    os << "  of interest: " << NameList(s["noi_names"].get<std::vector<std::string>>()) << "\n";
  if (!s["free_names"].empty())
    os << "  free: " << NameList(s["free_names"].get<std::vector<std::string>>()) << "\n";
  for (const auto& g : s["groups"]) {
    os << "  group " << g["name"].get<std::string>() << ": " << g["size"]
       << (g["size"].get<int>() == 1 ? " member" : " members");
    if (g.contains("members"))
      os << " (" << NameList(g["members"].get<std::vector<std::string>>()) << ")";
    os << "\n";
  }
  const auto& t = j["tensor"];
  char density[32];
  std::snprintf(density, sizeof(density), "%.4g", t["density"].get<double>());
  os << "\ntensor: " << t["rows"] << " (bin, process) rows, " << t["entries"]
     << " non-zero logk entries (density " << density << ")\n";
  os << "  memory: " << Bytes(t["memory_bytes"].get<double>()) << " (dense layout would be "
     << Bytes(t["dense_equivalent_bytes"].get<double>()) << "); Hessian of " << j["parameters"]
     << " parameters: " << Bytes(t["hessian_bytes"].get<double>()) << "\n";
  const auto& d = j["data"];
  os << "\ndata: " << G(d["total"].get<double>()) << " events in " << d["bins"] << " bins";
  if (!d["pseudodata"].empty())
    os << "; pseudo-data: " << NameList(d["pseudodata"].get<std::vector<std::string>>());
  os << "\n";
}

// The HistFactory view of a workspace: channels, samples, modifiers and their parameters.
json DescribeWorkspaceJson(const io::WorkspaceDescription& d) {
  json channels = json::array();
  for (const auto& c : d.channels) {
    json samples = json::array();
    for (const auto& s : c.samples) {
      json mods = json::array();
      for (const auto& m : s.modifiers)
        mods.push_back({{"type", m.type}, {"name", m.name}, {"parameters", m.parameters}});
      samples.push_back({{"name", s.name}, {"yield", s.yield}, {"modifiers", mods}});
    }
    channels.push_back({{"name", c.name}, {"bins", c.nbins}, {"samples", samples}});
  }
  json params = json::array();
  for (const auto& p : d.parameters)
    params.push_back({{"name", p.name},
                      {"constraint", p.constraint},
                      {"centre", p.centre},
                      {p.constraint == "poisson" ? "tau" : "sigma", p.width},
                      {"init", p.init},
                      {"bounds", {p.lower, p.upper}},
                      {"fixed", p.fixed}});
  return {{"measurement", d.measurement},
          {"poi", d.poi},
          {"channels", channels},
          {"parameters", params}};
}

void PrintWorkspace(const json& w, std::ostream& os) {
  std::map<std::string, const json*> params;
  for (const auto& p : w["parameters"]) params[p["name"].get<std::string>()] = &p;
  auto describe = [&](const std::string& name) {
    auto it = params.find(name);
    if (it == params.end()) return std::string();
    const json& p = *it->second;
    const std::string kind = p["constraint"].get<std::string>();
    std::string c = kind;
    if (kind == "gaussian")
      c += "(centre " + G(p["centre"].get<double>()) + ", sigma " + G(p["sigma"].get<double>()) +
           ")";
    else if (kind == "poisson")
      c += "(centre " + G(p["centre"].get<double>()) + ", tau " + G(p["tau"].get<double>()) + ")";
    return c + ", init " + G(p["init"].get<double>()) + ", bounds [" +
           G(p["bounds"][0].get<double>()) + ", " + G(p["bounds"][1].get<double>()) + "]" +
           (p["fixed"].get<bool>() ? ", fixed" : "");
  };
  os << "\nHistFactory workspace: measurement " << w["measurement"].get<std::string>() << ", POI "
     << (w["poi"].get<std::string>().empty() ? "(none)" : w["poi"].get<std::string>()) << "\n";
  for (const auto& c : w["channels"]) {
    os << "  channel " << c["name"].get<std::string>() << " (" << c["bins"] << " bins)\n";
    for (const auto& s : c["samples"]) {
      os << "    sample " << s["name"].get<std::string>() << ": yield "
         << G(s["yield"].get<double>()) << (s["modifiers"].empty() ? ", no modifiers" : "") << "\n";
      for (const auto& m : s["modifiers"]) {
        const auto names = m["parameters"].get<std::vector<std::string>>();
        os << "      " << m["type"].get<std::string>() << " " << m["name"].get<std::string>()
           << ": ";
        if (names.size() == 1) {
          os << names[0] << " (" << describe(names[0]) << ")\n";
        } else {
          os << names.size() << " parameters " << names.front() << " .. " << names.back() << "\n";
          for (std::size_t i = 0; i < names.size() && i < kMaxListed; ++i)
            os << "        " << names[i] << " (" << describe(names[i]) << ")\n";
          if (names.size() > kMaxListed) os << "        ...\n";
        }
      }
    }
  }
}

int RunInspect(const InspectArgs& a) {
  io::ReadInfo info;
  const engine::Model model = ReadInput(a.input, &info, a.read);
  json j = Describe(model, info);
  if (info.meta_format == "histfactory")
    j["workspace"] = DescribeWorkspaceJson(
        io::DescribeWorkspace(io::LoadWorkspaceJson(a.input, a.read), a.read, a.input));
  if (a.json)
    std::cout << j.dump(1) << "\n";
  else
    PrintText(j, std::cout);
  if (!a.json && j.contains("workspace")) PrintWorkspace(j["workspace"], std::cout);
  return kExitOk;
}

}  // namespace

Command AddInspectCommand(CLI::App& parent) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* sub = parent.add_subcommand(
      "inspect", "Describe a fit input: channels, processes, systematics, tensor size");
  sub->add_option("input", args->input, "fit input file (HDF5, or a HistFactory JSON workspace)")
      ->required()
      ->type_name("FILE");
  AddWorkspaceFlags(sub, &args->read);
  sub->add_flag("--json", args->json, "print the description as JSON");
  return {sub, [args] { return RunInspect(*args); }};
}

}  // namespace lepus::cli
