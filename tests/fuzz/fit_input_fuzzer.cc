// Fuzz target: io::ReadFitInput on arbitrary bytes as an HDF5 file. The bytes are written to a
// file on tmpfs and read through the public reader (the same path as `lepus fit FILE`: open,
// signature check, every dataset, attribute and meta_json). The only allowed outcomes are a
// Model or io::InputError; anything else (crash, sanitizer report, other exception) is a bug.
// Seeds: tests/fuzz/corpus/fit_input (the conformance inputs and small TensorWriter files).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "lepus/io/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lepus::fuzz::ScratchDir() + "/input.h5";
  lepus::fuzz::WriteBytes(path, data, size);
  try {
    lepus::io::ReadInfo info;
    const lepus::engine::Model m = lepus::io::ReadFitInput(path, &info);
    (void)m;
  } catch (const lepus::io::InputError& e) {
    lepus::fuzz::Verbose(e);  // rejected with a message: the documented outcome for a bad file
  }
  return 0;
}
