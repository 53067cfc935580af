// Fuzz target: the data-only pickle decoder (io/src/pickle.{h,cc}) and rabbit's metadata on top
// of it (io/src/rabbit_meta.{h,cc}), in memory: every input is decoded with small limits, and a
// decoded document is interpreted as rabbit's `meta` dict and rendered as JSON (the second
// stage walks whatever graph the first one built: shared nodes, cycles, deep nesting).
// Documented outcomes for bad input: pickle::PickleError (decoding) and std::invalid_argument
// (interpretation); anything else, a crash, a hang or a leak is a finding.
// Seeds: the pickles of tests/data/rabbit_meta/make_pickles.py (scripts/sanitize.sh writes them
// into the build directory first).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pickle.h"
#include "rabbit_meta.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace pk = lepus::io::pickle;
  pk::Limits limits;
  limits.max_input_bytes = std::size_t{1} << 20;
  limits.max_nodes = std::size_t{1} << 16;
  limits.max_memo = std::size_t{1} << 16;
  limits.max_container = std::size_t{1} << 16;
  limits.max_depth = 64;
  pk::Document doc;
  try {
    doc = pk::Decode(data, size, limits);
  } catch (const pk::PickleError&) {
    return 0;
  }
  std::vector<std::string> unknown;
  pk::ToJson(doc, doc.root(), limits.max_depth, &unknown).dump();
  try {
    lepus::io::InterpretRabbitMeta(doc, limits);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
