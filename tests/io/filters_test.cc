// Unit tests of lepus's in-process HDF5 filters (io/src/filters) that need no fixture files:
// registration and plugin path, the shuffle primitives against their definitions, zstd frames
// from libzstd (an independent encoder), and the error paths of the Blosc2 chunk and frame
// decoders on hand-made headers (each unsupported feature and each inconsistency must give a
// FilterError naming it; nothing may read out of bounds). The decoders are checked against
// the real encoders' output in filters_fixture_test.cc and cli.rabbit_filters.
#include <hdf5.h>
#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "filters/blosc2.h"
#include "filters/codecs.h"
#include "filters/register.h"

namespace {

using lepus::io::filters::Buffer;
using lepus::io::filters::FilterError;
namespace f = lepus::io::filters;

std::vector<std::uint8_t> RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

// Expects decode() to throw FilterError whose message contains every fragment.
template <typename F>
void ExpectFilterError(F&& decode, const std::vector<std::string>& fragments) {
  try {
    decode();
    FAIL("expected FilterError");
  } catch (const FilterError& e) {
    const std::string msg = e.what();
    for (const auto& frag : fragments) {
      INFO("message: " << msg);
      CHECK(msg.find(frag) != std::string::npos);
    }
  }
}

void Put32(std::vector<std::uint8_t>& v, std::size_t pos, std::uint32_t x) {
  for (int i = 0; i < 4; ++i) v[pos + i] = static_cast<std::uint8_t>(x >> (8 * i));
}

// A Blosc2 chunk header with an extended header: lz4, typesize 8, one block.
std::vector<std::uint8_t> ChunkHeader(std::int32_t nbytes, std::int32_t cbytes) {
  std::vector<std::uint8_t> c(static_cast<std::size_t>(std::max(cbytes, 32)), 0);
  c[0] = 5;                       // format version (stable)
  c[1] = 1;                       // codec format version
  c[2] = 0x01 | 0x04 | (1 << 5);  // shuffle + bitshuffle bits = extended header; codec lz4
  c[3] = 8;
  Put32(c, 4, static_cast<std::uint32_t>(nbytes));
  Put32(c, 8, static_cast<std::uint32_t>(nbytes));
  Put32(c, 12, static_cast<std::uint32_t>(cbytes));
  c[21] = 1;  // filters[5] = shuffle
  return c;
}

}  // namespace

TEST_CASE("filters: registered in-process, decode only, plugin directory on the path") {
  f::InitializeHdf5Filters();
  f::InitializeHdf5Filters();  // idempotent
  for (H5Z_filter_t id : {32026, 32015, 32008, 32000}) {
    INFO("filter " << id);
    CHECK(H5Zfilter_avail(id) > 0);
    unsigned config = 0;
    REQUIRE(H5Zget_filter_info(id, &config) >= 0);
    CHECK((config & H5Z_FILTER_CONFIG_DECODE_ENABLED) != 0);
    CHECK((config & H5Z_FILTER_CONFIG_ENCODE_ENABLED) == 0);
    CHECK(f::IsInProcessFilter(id));
  }
  CHECK_FALSE(f::IsInProcessFilter(32001));
  // Debian's plugin directory is searched (HDF5's default or appended at start-up).
  const std::string dir = f::DistributionPluginDir();
  REQUIRE_FALSE(dir.empty());
  if (std::getenv("HDF5_PLUGIN_PATH") == nullptr) {
    unsigned n = 0;
    REQUIRE(H5PLsize(&n) >= 0);
    bool found = false;
    for (unsigned i = 0; i < n; ++i) {
      char buf[4096] = {0};
      if (H5PLget(i, buf, sizeof(buf)) >= 0 && dir == buf) found = true;
    }
    CHECK(found);
    // scripts/setup.sh installs Debian's plugins: Blosc (32001), LZ4 (32004), BZip2 (307).
    for (H5Z_filter_t id : {32001, 32004, 307}) {
      INFO("Debian plugin " << id);
      CHECK(H5Zfilter_avail(id) > 0);
    }
  }
}

TEST_CASE("filters: writing with an in-process filter fails with a message") {
  f::InitializeHdf5Filters();
  hid_t file = H5Fcreate("filters_encode.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(file >= 0);
  const hsize_t n = 64, chunk = 64;
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, &chunk);
  const unsigned cd[7] = {0, 0, 8, 512, 5, 1, 1};
  H5Pset_filter(dcpl, 32026, H5Z_FLAG_MANDATORY, 7, cd);
  H5E_auto2_t old_func = nullptr;
  void* old_data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t dset = H5Dcreate2(file, "x", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  // HDF5 refuses a filter without an encoder at creation (or, at the latest, at the write).
  bool failed = dset < 0;
  if (dset >= 0) {
    std::vector<double> v(64, 1.5);
    failed = H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0 ||
             H5Dclose(dset) < 0;
  }
  H5Eclear2(H5E_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
  CHECK(failed);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(file);
  std::remove("filters_encode.h5");
}

TEST_CASE("filters: byte unshuffle and bit unshuffle invert their definitions") {
  for (std::size_t ts : {1u, 2u, 4u, 8u, 3u, 12u}) {
    for (std::size_t n : {0u, 1u, 7u, 8u, 64u, 1003u}) {
      const std::size_t size = ts * n + (ts > 1 ? ts - 1 : 0);  // with an odd tail
      const auto data = RandomBytes(size, static_cast<unsigned>(ts * 1000 + n));
      // Byte shuffle by definition: byte j of element i at j * n + i; tail as is.
      std::vector<std::uint8_t> shuffled(size), back(size);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < ts; ++j) shuffled[j * n + i] = data[i * ts + j];
      std::memcpy(shuffled.data() + n * ts, data.data() + n * ts, size - n * ts);
      f::Unshuffle(ts, size, shuffled.data(), back.data());
      CHECK(back == data);
      // Bit shuffle by definition (bitshuffle's transpose), for n a multiple of 8.
      const std::size_t n8 = n - n % 8;
      std::vector<std::uint8_t> bits(n8 * ts, 0), out(n8 * ts, 0);
      for (std::size_t i = 0; i < n8; ++i)
        for (std::size_t j = 0; j < ts; ++j)
          for (std::size_t k = 0; k < 8; ++k) {
            const std::size_t bit = (data[i * ts + j] >> k) & 1;
            const std::size_t pos = (j * 8 + k) * n8 + i;
            bits[pos / 8] |= static_cast<std::uint8_t>(bit << (pos % 8));
          }
      f::BitUnshuffle(ts, n8, bits.data(), out.data());
      CHECK(std::memcmp(out.data(), data.data(), n8 * ts) == 0);
    }
  }
}

TEST_CASE("filters: zstd frames of known and unknown size, truncated and corrupt") {
  std::vector<std::uint8_t> data(100000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>((i * 7) % 251);
  std::vector<std::uint8_t> frame(ZSTD_compressBound(data.size()));
  const std::size_t n = ZSTD_compress(frame.data(), frame.size(), data.data(), data.size(), 3);
  REQUIRE_FALSE(ZSTD_isError(n));
  frame.resize(n);
  Buffer out = f::ZstdDecodeFrames(frame.data(), frame.size(), f::kMaxChunkBytes);
  REQUIRE(out.size() == data.size());
  CHECK(std::memcmp(out.data(), data.data(), data.size()) == 0);

  // A streamed frame without a content size, and two concatenated frames.
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::vector<std::uint8_t> streamed(ZSTD_compressBound(data.size()));
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  ZSTD_outBuffer o{streamed.data(), streamed.size(), 0};
  REQUIRE(ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_end) == 0);
  ZSTD_freeCCtx(cctx);
  streamed.resize(o.pos);
  REQUIRE(ZSTD_getFrameContentSize(streamed.data(), streamed.size()) == ZSTD_CONTENTSIZE_UNKNOWN);
  std::vector<std::uint8_t> two = streamed;
  two.insert(two.end(), frame.begin(), frame.end());
  Buffer out2 = f::ZstdDecodeFrames(two.data(), two.size(), f::kMaxChunkBytes);
  REQUIRE(out2.size() == 2 * data.size());
  CHECK(std::memcmp(out2.data() + data.size(), data.data(), data.size()) == 0);

  ExpectFilterError(
      [&] { f::ZstdDecodeFrames(streamed.data(), streamed.size() - 5, f::kMaxChunkBytes); },
      {"zstd", "truncated"});
  ExpectFilterError([&] { f::ZstdDecodeFrames(frame.data(), frame.size(), 1000); },
                    {"zstd", "declares 100000 decoded bytes", "limit of 1000"});
  ExpectFilterError([&] { f::ZstdDecodeFrames(streamed.data(), streamed.size(), 1000); },
                    {"zstd", "more than 1000 bytes"});
  auto garbage = RandomBytes(64, 7);
  ExpectFilterError([&] { f::ZstdDecodeFrames(garbage.data(), garbage.size(), f::kMaxChunkBytes); },
                    {"zstd"});
}

TEST_CASE("filters: blosc2 chunk headers: unsupported features and inconsistencies") {
  const std::size_t max = f::kMaxChunkBytes;
  auto decode = [&](const std::vector<std::uint8_t>& c) {
    return f::DecodeBlosc2(c.data(), c.size(), max);
  };
  SUBCASE("too short") {
    std::vector<std::uint8_t> c(10, 0);
    ExpectFilterError([&] { decode(c); }, {"shorter than the 16-byte Blosc header"});
  }
  SUBCASE("unknown format version") {
    auto c = ChunkHeader(64, 32);
    c[0] = 9;
    ExpectFilterError([&] { decode(c); }, {"chunk format version 9 is not supported"});
  }
  SUBCASE("truncated: cbytes beyond the data") {
    auto c = ChunkHeader(64, 200);
    c.resize(100);
    ExpectFilterError([&] { decode(c); }, {"truncated", "200 bytes (cbytes)", "only 100"});
  }
  SUBCASE("dictionary") {
    auto c = ChunkHeader(64, 64);
    c[31] = 0x01;
    ExpectFilterError([&] { decode(c); }, {"dictionary compression"});
  }
  SUBCASE("lazy chunk") {
    auto c = ChunkHeader(64, 64);
    c[31] = 0x08;
    ExpectFilterError([&] { decode(c); }, {"lazy chunk"});
  }
  SUBCASE("variable-length blocks") {
    auto c = ChunkHeader(64, 64);
    c[30] = 0x01;
    ExpectFilterError([&] { decode(c); }, {"variable-length blocks"});
  }
  SUBCASE("user-defined codec") {
    auto c = ChunkHeader(64, 64);
    c[2] = 0x05 | (6 << 5);
    c[22] = 244;
    ExpectFilterError([&] { decode(c); }, {"user-defined codec 244"});
  }
  SUBCASE("reserved codec") {
    auto c = ChunkHeader(64, 48);
    c[2] = 0x05 | 0x10 | (2 << 5);  // snappy slot, unsplit
    Put32(c, 32, 36);               // bstarts[0]
    Put32(c, 36, 4);                // stream csize
    Put32(c, 40, 0xdeadbeef);
    ExpectFilterError([&] { decode(c); }, {"codec 2", "not supported"});
  }
  SUBCASE("unsupported filter id") {
    auto c = ChunkHeader(64, 64);
    c[20] = 35;  // a registered (plugin) filter in slot 4
    Put32(c, 32, 36);
    ExpectFilterError([&] { decode(c); }, {"filter 35", "slot 4", "not supported"});
  }
  SUBCASE("block start outside the chunk") {
    auto c = ChunkHeader(64, 48);
    Put32(c, 32, 4000);
    ExpectFilterError([&] { decode(c); },
                      {"block 0 starts at byte 4000", "outside the data section"});
  }
  SUBCASE("bstarts truncated") {
    auto c = ChunkHeader(1 << 20, 40);
    Put32(c, 8, 64);  // blocksize 64: 16384 blocks, bstarts of 64 KiB in a 40-byte chunk
    ExpectFilterError([&] { decode(c); }, {"block offsets (bstarts)", "truncated"});
  }
  SUBCASE("stream size past the end") {
    auto c = ChunkHeader(64, 48);
    c[2] |= 0x10;      // unsplit: one stream
    Put32(c, 32, 36);  // bstarts[0]
    Put32(c, 36, 1000);
    ExpectFilterError([&] { decode(c); }, {"stream 0 of block 0", "compressed size 1000",
                                           "runs past the end of the chunk"});
  }
  SUBCASE("corrupt lz4 stream") {
    auto c = ChunkHeader(64, 52);
    c[2] |= 0x10;
    Put32(c, 32, 36);
    Put32(c, 36, 12);
    for (int i = 40; i < 52; ++i) c[i] = 0xff;
    ExpectFilterError([&] { decode(c); }, {"stream 0 of block 0", "lz4: corrupt stream"});
  }
  SUBCASE("special chunks: zeros, NaN, repeated value") {
    auto c = ChunkHeader(64, 32);
    c[31] = 1 << 4;
    Buffer z = decode(c);
    REQUIRE(z.size() == 64);
    for (std::size_t i = 0; i < 64; ++i) CHECK(z.data()[i] == 0);
    c[31] = 2 << 4;
    Buffer nan = decode(c);
    double d = 0;
    std::memcpy(&d, nan.data() + 8, 8);
    CHECK(std::isnan(d));
    auto r = ChunkHeader(64, 40);
    r[31] = 3 << 4;
    const double v = 2.5;
    std::memcpy(r.data() + 32, &v, 8);
    Buffer rep = decode(r);
    std::memcpy(&d, rep.data() + 56, 8);
    CHECK(d == 2.5);
    c[31] = 5 << 4;
    ExpectFilterError([&] { decode(c); }, {"special chunk type 5"});
  }
  SUBCASE("memcpyed chunk with inconsistent sizes") {
    auto c = ChunkHeader(64, 90);
    c[2] |= 0x02;
    ExpectFilterError([&] { decode(c); }, {"memcpyed", "nbytes + header = 96"});
  }
  SUBCASE("a stored lz4 stream decodes") {
    // An LZ4 block from liblz4 inside a hand-made unsplit chunk without filters.
    std::vector<std::uint8_t> data(256);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i / 16);
    std::vector<char> lz(LZ4_compressBound(256));
    const int n = LZ4_compress_default(reinterpret_cast<const char*>(data.data()), lz.data(), 256,
                                       static_cast<int>(lz.size()));
    REQUIRE(n > 0);
    auto c = ChunkHeader(256, 40 + n);
    c[2] |= 0x10;
    c[21] = 0;  // no filter
    Put32(c, 32, 36);
    Put32(c, 36, static_cast<std::uint32_t>(n));
    std::memcpy(c.data() + 40, lz.data(), static_cast<std::size_t>(n));
    Buffer out = decode(c);
    REQUIRE(out.size() == 256);
    CHECK(std::memcmp(out.data(), data.data(), 256) == 0);
    // Every truncation is refused, never read past the end.
    for (std::size_t len = 0; len < c.size(); ++len) {
      std::vector<std::uint8_t> t(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(len));
      CHECK_THROWS_AS(decode(t), FilterError);
    }
  }
}

TEST_CASE("filters: blosclz and lzf streams: corrupt input is refused") {
  std::vector<std::uint8_t> out(64);
  // BloscLZ: a literal run of 4 then a match reaching before the start.
  const std::uint8_t bad_match[] = {3, 'a', 'b', 'c', 'd', (1 << 5) | 0, 10};
  ExpectFilterError([&] { f::BloscLzDecode(bad_match, sizeof(bad_match), out.data(), 64); },
                    {"blosclz", "before the start"});
  // A valid stream: 4 literals + a match of 3 at distance 4 + ... must give exactly out_size.
  const std::uint8_t good[] = {3, 'a', 'b', 'c', 'd', (1 << 5) | 0, 3};
  f::BloscLzDecode(good, sizeof(good), out.data(), 7);
  CHECK(std::string(reinterpret_cast<char*>(out.data()), 7) == "abcdabc");
  ExpectFilterError([&] { f::BloscLzDecode(good, sizeof(good), out.data(), 8); },
                    {"blosclz", "decodes to 7 bytes", "8 are expected"});
  const std::uint8_t truncated_literal[] = {10, 'a', 'b'};
  ExpectFilterError([&] { f::BloscLzDecode(truncated_literal, 3, out.data(), 64); },
                    {"blosclz", "truncated"});
  // LZF: the same checks.
  const std::uint8_t lzf_good[] = {3, 'a', 'b', 'c', 'd', (1 << 5) | 0, 3};
  CHECK(f::LzfDecode(lzf_good, sizeof(lzf_good), out.data(), 64) == 7);
  CHECK(std::string(reinterpret_cast<char*>(out.data()), 7) == "abcdabc");
  CHECK(f::LzfDecode(lzf_good, sizeof(lzf_good), out.data(), 5) == SIZE_MAX);  // too small
  const std::uint8_t lzf_bad[] = {0, 'a', (1 << 5) | 0, 5};
  ExpectFilterError([&] { f::LzfDecode(lzf_bad, sizeof(lzf_bad), out.data(), 64); },
                    {"lzf", "before the start"});
}
