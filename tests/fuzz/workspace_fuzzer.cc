// Fuzz target: HistFactory JSON workspaces (io/src/workspace.cc). The bytes are read as a workspace
// file through io::ReadWorkspace (plain or gzip JSON, as ReadFitInput dispatches them), then, when
// they parse as JSON, once more through io::ModelFromWorkspace with the other interpolation codes
// and io::DescribeWorkspace. Documented outcomes: a model that passes Model::IsValid, or
// io::InputError. Seeds: tests/fuzz/corpus/workspace (the example workspaces of
// tests/data/histfactory).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "lepus/io/errors.h"
#include "lepus/io/workspace.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lepus::fuzz::ScratchDir() + "/workspace.json";
  lepus::fuzz::WriteBytes(path, data, size);
  lepus::io::ReadOptions options;
  try {
    const lepus::engine::Model m = lepus::io::ReadWorkspace(path, options);
    std::string error;
    if (!m.IsValid(&error)) std::abort();  // the reader must never return an invalid model
  } catch (const lepus::io::InputError& e) {
    lepus::fuzz::Verbose(e);
  }
  const nlohmann::json ws = nlohmann::json::parse(data, data + size, nullptr, false);
  if (ws.is_discarded()) return 0;
  options.normsys_interp = "code1";
  options.histosys_interp = "code0";
  try {
    const lepus::engine::Model m = lepus::io::ModelFromWorkspace(ws, options, "fuzz");
    std::string error;
    if (!m.IsValid(&error)) std::abort();
    (void)lepus::io::DescribeWorkspace(ws, options, "fuzz");
  } catch (const lepus::io::InputError& e) {
    lepus::fuzz::Verbose(e);
  }
  return 0;
}
