// Reader of HDF5 fit inputs in the tensor layout (docs/format.md section 2,
// docs/format.md): files written by lepus and by rabbit (flattened datasets with
// `original_shape`, variable-length string lists, dense or sparse, symmetric or asymmetric logk,
// optional datasets absent). Channel metadata comes from the `meta_json` string attribute of the
// root group, else from rabbit's pickled `meta` group (channel_info, systematic_type,
// symmetric_tensor, meta_info; decoded without executing anything, docs/format.md section 3);
// files with neither get one unmasked channel "ch0" with integer bins (plus one masked channel
// "masked" for the extra bins of hnorm beyond hdata_obs) and a warning.
#pragma once

#include <string>
#include <vector>

#include "lepus/engine/model.h"
#include "lepus/io/errors.h"

namespace lepus::io {

struct ReadInfo {
  std::string path;
  bool has_meta = false;              // meta_json or rabbit's pickled meta present
  std::string meta_format;            // "meta_json", "rabbit", "histfactory" (JSON workspace) or ""
  std::string meta_info_json;         // rabbit: its meta_info dict (provenance) as JSON, else ""
  std::vector<std::string> warnings;  // e.g. missing metadata fallback
  std::vector<std::string> filters;   // compression filters seen ("gzip", ...)
  long long file_bytes = 0;
};

// Options of the HistFactory JSON workspace reader (lepus/io/workspace.h); HDF5 inputs accept
// only the defaults (ReadFitInput throws InputError otherwise).
struct ReadOptions {
  std::vector<std::string> patches;      // JSON Patch (RFC 6902) files, applied in order
  std::string patchset;                  // HEPData patchset file ("" = none) ...
  std::string patch_name;                // ... and the name of its patch to apply (after `patches`)
  std::string measurement;               // measurement name ("" = the first, as pyhf)
  std::string normsys_interp = "code4";  // code1 | code4
  std::string histosys_interp = "code4p";  // code0 | code4p
  // True when every field has its default (what an HDF5 input requires).
  bool IsDefault() const;
};

// Reads and validates a fit input. The format is detected by content: HDF5 (the tensor layout
// below) or a HistFactory JSON workspace, plain ('{' first) or gzip-compressed (ReadWorkspace in
// lepus/io/workspace.h). Throws InputError (never crashes) for: missing file, not
// HDF5, missing required dataset, inconsistent shapes, NaN/Inf anywhere, negative or zero
// nominal where log-normal logk is non-zero (except rabbit's ln(1e-3) placeholder at zero
// nominal), sparse indices out of range, unavailable compression filter (names the filter id),
// non-finite data.
engine::Model ReadFitInput(const std::string& path, ReadInfo* info = nullptr);
engine::Model ReadFitInput(const std::string& path, ReadInfo* info, const ReadOptions& options);

// True when the file starts like a HistFactory JSON workspace: gzip magic (1f 8b) or, after
// optional white space, '{'. False for anything else (HDF5, text, missing files).
bool LooksLikeWorkspace(const std::string& path);

}  // namespace lepus::io
