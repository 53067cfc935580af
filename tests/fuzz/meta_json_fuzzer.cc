// Fuzz target: the `meta_json` root attribute of a fit input (channels, axes and edges,
// systematic scales and units; docs/format.md), through the real reader. A small valid fit input
// (two unmasked channels with axes, one masked channel, two systematics with scales) is written
// once with io::TensorWriter, and its meta_json attribute is replaced by a fixed-length string
// attribute of kMaxLen bytes (NUL-padded) filled with a marker. For every input the marker's
// bytes in the file image are overwritten with the fuzzed text (NUL-padded; longer inputs are
// skipped) and the image is read with io::ReadFitInput, so the JSON parser, the typed accessors
// and the channel checks against the tensor (bin counts, masked/unmasked split) all run, at one
// HDF5 open per input. Documented outcome for bad metadata: io::InputError.
// Seeds: tests/fuzz/corpus/meta_json.
#include <hdf5.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_util.h"
#include "lepus/io/reader.h"
#include "lepus/io/writer.h"

namespace {

constexpr std::size_t kMaxLen = 4096;
std::vector<char> g_image;  // bytes of the template fit input
std::size_t g_offset = 0;   // where the meta_json string's kMaxLen bytes start in g_image

void Die(const char* what) {
  std::fprintf(stderr, "lepus meta_json fuzz: %s\n", what);
  std::abort();
}

// Replaces the root attribute meta_json of `path` by a fixed-length string holding `text`.
void SetFixedMeta(const std::string& path, const std::string& text) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) Die("H5Fopen of the template failed");
  if (H5Adelete(f, "meta_json") < 0) Die("H5Adelete failed");
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, kMaxLen);
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(f, "meta_json", type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) Die("H5Acreate2 failed");
  std::string buf = text;
  buf.resize(kMaxLen, '\0');
  if (H5Awrite(a, type, buf.data()) < 0) Die("H5Awrite failed");
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  if (H5Fclose(f) < 0) Die("H5Fclose failed");
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
  const std::vector<std::pair<std::string, std::size_t>> channels = {
      {"ch_eta", 4}, {"ch_int", 3}, {"ch_masked", 2}};
  for (const auto& [ch, n] : channels) {
    w.SetNominal(ch, "sig", std::vector<double>(n, 6.0), std::vector<double>(n, 1.0));
    w.SetNominal(ch, "bkg", std::vector<double>(n, 4.0));
  }
  w.DeclareSystematic("mass", 1.0, /*noi=*/true, 100.0, "MeV");
  w.AddNormSystematic("lumi", "bkg", "ch_eta", 1.02);
  w.AddShapeSystematic("mass", "sig", "ch_int", {6.5, 6.0, 5.5});
  const std::string path = lepus::fuzz::ScratchDir() + "/template.h5";
  w.Write(path);
  // A marker that occurs nowhere else in the file.
  std::string marker = "lepus-meta-json-fuzz-marker:";
  while (marker.size() < kMaxLen) marker += static_cast<char>('A' + marker.size() % 26);
  SetFixedMeta(path, marker);
  std::ifstream in(path, std::ios::binary);
  g_image.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const auto it = std::search(g_image.begin(), g_image.end(), marker.begin(), marker.end());
  if (it == g_image.end()) Die("the meta_json marker is not stored contiguously in the file");
  g_offset = static_cast<std::size_t>(it - g_image.begin());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  MakeTemplate();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxLen) return 0;
  std::vector<char> image = g_image;
  std::fill_n(image.begin() + static_cast<std::ptrdiff_t>(g_offset), kMaxLen, '\0');
  std::copy_n(reinterpret_cast<const char*>(data), size,
              image.begin() + static_cast<std::ptrdiff_t>(g_offset));
  const std::string path = lepus::fuzz::ScratchDir() + "/meta.h5";
  lepus::fuzz::WriteBytes(path, reinterpret_cast<const std::uint8_t*>(image.data()), image.size());
  try {
    const lepus::engine::Model m = lepus::io::ReadFitInput(path);
    (void)m;
  } catch (const lepus::io::InputError& e) {
    lepus::fuzz::Verbose(e);
  }
  return 0;
}
