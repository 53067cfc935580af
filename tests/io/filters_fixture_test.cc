// Decoder-level tests on the rabbit filter fixtures (tests/data/rabbit_filters, written by
// h5wasm with the real c-blosc2 / zstd / bitshuffle / lzf plugins; ctest fixture
// rabbit_filters_files): the raw chunks (H5Dread_chunk) decode to exactly the uncompressed
// copy's bytes; every flipped byte and every truncation of a chunk either decodes or gives a
// FilterError (never a crash or an out-of-bounds read, which the sanitizer build would catch);
// and a corrupted chunk in a fit input gives an InputError naming the file, the dataset and
// the filter.
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "filters/blosc2.h"
#include "filters/codecs.h"
#include "filters/register.h"
#include "lepus/io/errors.h"
#include "lepus/io/reader.h"

namespace {

namespace f = lepus::io::filters;
const std::string kDir = LEPUS_RABBIT_FILTERS_DIR;

struct RawChunk {
  std::vector<std::uint8_t> bytes;
  std::vector<unsigned> cd_values;
  hsize_t offset = 0;
};

// The stored (compressed) chunks of `dataset` in `file` with the first filter's parameters.
std::vector<RawChunk> ReadRawChunks(const std::string& file, const std::string& dataset) {
  std::vector<RawChunk> out;
  hid_t fid = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(fid >= 0);
  hid_t did = H5Dopen2(fid, dataset.c_str(), H5P_DEFAULT);
  REQUIRE(did >= 0);
  hid_t dcpl = H5Dget_create_plist(did);
  unsigned flags = 0, cd[32] = {0};
  std::size_t ncd = 32;
  char name[64];
  REQUIRE(H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, sizeof(name), name, nullptr) >= 0);
  hsize_t chunk = 0;
  REQUIRE(H5Pget_chunk(dcpl, 1, &chunk) == 1);
  hid_t space = H5Dget_space(did);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  for (hsize_t off = 0; off < n; off += chunk) {
    hsize_t size = 0;
    // Unallocated chunks (all zero, never written, as rabbit does) have no storage.
    H5E_auto2_t fn = nullptr;
    void* data = nullptr;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    const herr_t rc = H5Dget_chunk_storage_size(did, &off, &size);
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    H5Eclear2(H5E_DEFAULT);
    if (rc < 0 || size == 0) continue;
    RawChunk c;
    c.bytes.resize(size);
    c.cd_values.assign(cd, cd + ncd);
    c.offset = off;
    std::uint32_t mask = 0;
    REQUIRE(H5Dread_chunk(did, H5P_DEFAULT, &off, &mask, c.bytes.data()) >= 0);
    REQUIRE(mask == 0);
    out.push_back(std::move(c));
  }
  H5Sclose(space);
  H5Pclose(dcpl);
  H5Dclose(did);
  H5Fclose(fid);
  return out;
}

std::vector<double> ReadPlain(const std::string& dataset) {
  hid_t fid = H5Fopen((kDir + "/plain.hdf5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(fid >= 0);
  hid_t did = H5Dopen2(fid, dataset.c_str(), H5P_DEFAULT);
  hid_t space = H5Dget_space(did);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  std::vector<double> v(n);
  REQUIRE(H5Dread(did, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  H5Sclose(space);
  H5Dclose(did);
  H5Fclose(fid);
  return v;
}

f::Buffer Decode(H5Z_filter_t id, const RawChunk& c, const std::uint8_t* p, std::size_t n) {
  switch (id) {
    case 32026:
      return f::DecodeBlosc2(p, n, f::kMaxChunkBytes);
    case 32015:
      return f::ZstdDecodeFrames(p, n, f::kMaxChunkBytes);
    case 32008:
      return f::DecodeBitshuffleChunk(c.cd_values.data(), c.cd_values.size(), p, n);
    default:
      return f::DecodeLzfChunk(c.cd_values.data(), c.cd_values.size(), p, n);
  }
}

struct Case {
  const char* file;
  H5Z_filter_t id;
};
const Case kCases[] = {
    {"blosc2_blosclz_noshuffle.hdf5", 32026},
    {"blosc2_blosclz_shuffle.hdf5", 32026},
    {"blosc2_blosclz_bitshuffle.hdf5", 32026},
    {"blosc2_lz4_noshuffle.hdf5", 32026},
    {"blosc2_lz4_shuffle.hdf5", 32026},
    {"blosc2_lz4_bitshuffle.hdf5", 32026},
    {"blosc2_lz4hc_shuffle.hdf5", 32026},
    {"blosc2_zstd_shuffle.hdf5", 32026},
    {"blosc2_zstd_bitshuffle.hdf5", 32026},
    {"blosc2_lz4_shuffle_clevel0.hdf5", 32026},
    {"zstd_3.hdf5", 32015},
    {"zstd_19.hdf5", 32015},
    {"bitshuffle_lz4.hdf5", 32008},
    {"bitshuffle_zstd.hdf5", 32008},
    {"bitshuffle_none.hdf5", 32008},
    {"bitshuffle_lz4_block256.hdf5", 32008},
    {"lzf.hdf5", 32000},
};

}  // namespace

TEST_CASE("filter fixtures: raw chunks decode to the uncompressed bytes") {
  for (const char* ds : {"hlogk", "hnorm", "hsumw2"}) {
    const auto plain = ReadPlain(ds);
    for (const auto& c : kCases) {
      INFO(c.file << " " << ds);
      const auto chunks = ReadRawChunks(kDir + "/" + c.file, ds);
      REQUIRE_FALSE(chunks.empty());
      if (std::string(ds) == "hlogk") CHECK(chunks.size() == 6);  // 9 chunks, 3 never written
      for (const auto& chunk : chunks) {
        const f::Buffer out = Decode(c.id, chunk, chunk.bytes.data(), chunk.bytes.size());
        // HDF5 hands filters whole chunks (1000 doubles), also at the dataset's end.
        REQUIRE(out.size() == 8000);
        const std::size_t n = std::min<std::size_t>(1000, plain.size() - chunk.offset);
        CHECK(std::memcmp(out.data(), plain.data() + chunk.offset, n * 8) == 0);
      }
    }
  }
}

TEST_CASE("filter fixtures: flipped bytes and truncations never crash") {
  std::size_t refused = 0, decoded = 0;
  for (const auto& c : kCases) {
    INFO(c.file);
    const auto chunks = ReadRawChunks(kDir + "/" + c.file, "hlogk");
    REQUIRE_FALSE(chunks.empty());
    const RawChunk& chunk = chunks.front();
    const std::size_t n = chunk.bytes.size();
    // Every byte of the first 160 (headers, offsets, stream sizes), then a stride.
    for (std::size_t i = 0; i < n; i += i < 160 ? 1 : 37) {
      for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
        auto bad = chunk.bytes;
        bad[i] ^= mask;
        try {
          Decode(c.id, chunk, bad.data(), n);
          ++decoded;  // e.g. a flipped literal byte: wrong data, but a valid stream
        } catch (const f::FilterError&) {
          ++refused;
        }
      }
    }
    for (std::size_t len = 0; len < n; len += len < 200 ? 1 : 97) {
      std::vector<std::uint8_t> t(chunk.bytes.begin(),
                                  chunk.bytes.begin() + static_cast<std::ptrdiff_t>(len));
      try {
        const f::Buffer out = Decode(c.id, chunk, t.data(), t.size());
        // LZF has no size field: a cut at a token boundary is a shorter valid stream.
        if (c.id != 32000) CHECK(out.size() != 8000);
        ++decoded;
      } catch (const f::FilterError&) {
        ++refused;
      }
    }
  }
  MESSAGE("corrupted chunks: " << refused << " refused, " << decoded << " decoded");
  CHECK(refused > 1000);
}

TEST_CASE("filter fixtures: a corrupt chunk in a fit input names the file, dataset and filter") {
  f::InitializeHdf5Filters();
  for (const auto& c : {Case{"blosc2_lz4_shuffle.hdf5", 32026}, Case{"zstd_3.hdf5", 32015},
                        Case{"bitshuffle_lz4.hdf5", 32008}, Case{"lzf.hdf5", 32000}}) {
    INFO(c.file);
    const std::string copy = std::string("corrupt_") + c.file;
    {
      std::ifstream in(kDir + "/" + c.file, std::ios::binary);
      std::ofstream out(copy, std::ios::binary | std::ios::trunc);
      out << in.rdbuf();
    }
    auto chunks = ReadRawChunks(copy, "hlogk");
    REQUIRE_FALSE(chunks.empty());
    RawChunk& chunk = chunks.front();
    chunk.bytes.resize(chunk.bytes.size() / 2);  // truncated
    hid_t fid = H5Fopen(copy.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t did = H5Dopen2(fid, "hlogk", H5P_DEFAULT);
    REQUIRE(H5Dwrite_chunk(did, H5P_DEFAULT, 0, &chunk.offset, chunk.bytes.size(),
                           chunk.bytes.data()) >= 0);
    H5Dclose(did);
    H5Fclose(fid);
    try {
      lepus::io::ReadFitInput(copy);
      FAIL("expected InputError");
    } catch (const lepus::io::InputError& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find(copy + ": hlogk: cannot read the data") != std::string::npos);
      CHECK(msg.find("filter (HDF5 filter " + std::to_string(c.id) + "): ") != std::string::npos);
    }
    std::remove(copy.c_str());
  }
}
