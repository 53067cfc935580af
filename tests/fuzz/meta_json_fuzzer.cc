// Fuzz target: the `meta_json` root attribute of a fit input (channels, axes and edges,
// systematic scales and units; docs/format.md), through the real reader. A small valid fit input
// (two unmasked channels with axes, one masked channel, two systematics with scales) is written
// once with io::TensorWriter; for every input its meta_json attribute is replaced by the fuzzed
// bytes and the file is read with io::ReadFitInput, so the JSON parser, the typed accessors and
// the channel checks against the tensor (bin counts, masked/unmasked split) all run. The first
// byte picks the attribute's storage: odd = fixed-length string (may hold NUL bytes), even =
// variable-length UTF-8 string (what lepus writes; cut at the first NUL). Documented outcome for
// bad metadata: io::InputError. Seeds: tests/fuzz/corpus/meta_json.
#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "lepus/io/reader.h"
#include "lepus/io/writer.h"

namespace {

std::vector<char> g_template;  // bytes of the valid fit input

void Die(const char* what) {
  std::fprintf(stderr, "lepus meta_json fuzz: %s\n", what);
  std::abort();
}

void MakeTemplate() {
  using lepus::engine::Axis;
  lepus::io::TensorWriter w;
  w.AddChannel("ch_eta", {Axis{"eta", {-2.4, 0.0, 2.4}}, Axis{"charge", {-2.0, 0.0, 2.0}}});
  w.AddChannel("ch_int", 3);
  w.AddChannel("ch_masked", 2, /*masked=*/true);
  w.AddProcess("sig", true);
  w.AddProcess("bkg", false);
  w.SetData("ch_eta", {10, 12, 9, 11});
  w.SetData("ch_int", {5, 6, 7});
  for (const char* ch : {"ch_eta", "ch_int", "ch_masked"}) {
    const std::size_t n = std::string(ch) == "ch_eta" ? 4 : (std::string(ch) == "ch_int" ? 3 : 2);
    w.SetNominal(ch, "sig", std::vector<double>(n, 6.0), std::vector<double>(n, 1.0));
    w.SetNominal(ch, "bkg", std::vector<double>(n, 4.0));
  }
  w.DeclareSystematic("mass", 1.0, /*noi=*/true, 100.0, "MeV");
  w.AddNormSystematic("lumi", "bkg", "ch_eta", 1.02);
  w.AddShapeSystematic("mass", "sig", "ch_int", {6.5, 6.0, 5.5});
  const std::string path = lepus::fuzz::ScratchDir() + "/template.h5";
  w.Write(path);
  std::ifstream in(path, std::ios::binary);
  g_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (g_template.empty()) Die("cannot read back the template fit input");
}

// Replaces the root attribute meta_json of `path` by `text`.
void SetMeta(const std::string& path, const std::string& text, bool fixed_length) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) Die("H5Fopen of the template copy failed");
  if (H5Adelete(f, "meta_json") < 0) Die("H5Adelete failed");
  const hid_t type = H5Tcopy(H5T_C_S1);
  // A fixed-length string type cannot have size 0.
  H5Tset_size(type, fixed_length ? (text.empty() ? 1 : text.size()) : H5T_VARIABLE);
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(f, "meta_json", type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) Die("H5Acreate2 failed");
  herr_t status;
  if (fixed_length) {
    std::string buf = text.empty() ? std::string(1, '\0') : text;
    status = H5Awrite(a, type, buf.data());
  } else {
    const char* p = text.c_str();
    status = H5Awrite(a, type, &p);
  }
  if (status < 0) Die("H5Awrite failed");
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  if (H5Fclose(f) < 0) Die("H5Fclose failed");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  MakeTemplate();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool fixed_length = (data[0] & 1) != 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string path = lepus::fuzz::ScratchDir() + "/meta.h5";
  lepus::fuzz::WriteBytes(path, reinterpret_cast<const std::uint8_t*>(g_template.data()),
                          g_template.size());
  SetMeta(path, text, fixed_length);
  try {
    const lepus::engine::Model m = lepus::io::ReadFitInput(path);
    (void)m;
  } catch (const lepus::io::InputError&) {
  }
  return 0;
}
