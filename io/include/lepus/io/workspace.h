// Reader of HistFactory JSON workspaces (pyhf's schema 1.0.0: channels, samples with modifiers
// normfactor / lumi / normsys / histosys / staterror / shapesys / shapefactor, measurements,
// observations), plain or gzip-compressed, optionally patched (RFC 6902 JSON Patch files, or one
// patch of a HEPData patchset). The workspace becomes an engine::Model with per-entry kinds,
// Gaussian / Poisson constraints, initial values, bounds and fixed parameters; the mapping,
// defaults and differences from pyhf are in docs/histfactory.md "Reading workspaces".
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "lepus/engine/model.h"
#include "lepus/io/errors.h"
#include "lepus/io/reader.h"

namespace lepus::io {

// Parses a workspace file (JSON text, or gzip-compressed JSON: detected by content) and applies
// the patches of `options` in order (first the patch files, then the patchset's patch). Throws
// InputError naming the file (and patch file / operation index) on any failure.
nlohmann::json LoadWorkspaceJson(const std::string& path, const ReadOptions& options,
                                 ReadInfo* info = nullptr);

// Builds the model of a parsed workspace. `source` names the input in messages
// ("ws.json: channels[2].samples[0].modifiers[3].data: has 4 entries, but ..."). Warnings (e.g.
// measurement parameters that no modifier uses) go to info->warnings when info is given.
engine::Model ModelFromWorkspace(const nlohmann::json& workspace, const ReadOptions& options,
                                 const std::string& source = "workspace", ReadInfo* info = nullptr);

// LoadWorkspaceJson + ModelFromWorkspace; fills info (path, file_bytes, meta_format
// "histfactory"). Used by ReadFitInput for JSON and gzip inputs.
engine::Model ReadWorkspace(const std::string& path, const ReadOptions& options,
                            ReadInfo* info = nullptr);

// What `lepus inspect` prints about a workspace: per channel (sorted as in the model) its bins
// and samples, per sample its modifiers with type and parameter(s), and per parameter its
// constraint, initial value, bounds and fixed flag (from the built model).
struct WorkspaceModifierInfo {
  std::string type;                     // normfactor, lumi, normsys, ...
  std::string name;                     // the modifier name
  std::vector<std::string> parameters;  // parameter names (name, or name[i] per bin)
};
struct WorkspaceSampleInfo {
  std::string name;
  double yield = 0.0;  // sum of the nominal
  std::vector<WorkspaceModifierInfo> modifiers;
};
struct WorkspaceChannelInfo {
  std::string name;
  int nbins = 0;
  std::vector<WorkspaceSampleInfo> samples;
};
struct WorkspaceParameterInfo {
  std::string name;
  std::string constraint;  // "free", "gaussian" or "poisson"
  double centre = 0.0;     // constraint centre (gaussian, poisson)
  double width = 0.0;      // gaussian: sigma; poisson: tau (the auxiliary count is tau * centre)
  double init = 0.0, lower = 0.0, upper = 0.0;
  bool fixed = false;
};
struct WorkspaceDescription {
  std::string measurement;  // the measurement used
  std::string poi;
  std::vector<WorkspaceChannelInfo> channels;
  std::vector<WorkspaceParameterInfo> parameters;  // in model order
};
WorkspaceDescription DescribeWorkspace(const nlohmann::json& workspace, const ReadOptions& options,
                                       const std::string& source = "workspace");

}  // namespace lepus::io
