#include "filters/register.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "filters/blosc2.h"

namespace lepus::io::filters {

namespace {

constexpr H5Z_filter_t kLzf = 32000;
constexpr H5Z_filter_t kBitshuffle = 32008;
constexpr H5Z_filter_t kZstd = 32015;
constexpr H5Z_filter_t kBlosc2 = 32026;

std::string Num(std::size_t v) { return std::to_string(v); }

void PushError(const char* func, const std::string& msg) {
  H5Epush2(H5E_DEFAULT, __FILE__, func, __LINE__, H5E_ERR_CLS, H5E_PLINE, H5E_CANTFILTER, "%s",
           msg.c_str());
}

std::string Prefix(const char* name, H5Z_filter_t id) {
  return std::string(name) + " filter (HDF5 filter " + std::to_string(id) + "): ";
}

// Common body of the decode-only filter callbacks: never lets an exception cross HDF5's C
// frames; on success replaces *buf (malloc'ed, as HDF5 expects) by the decoded chunk.
template <typename Decode>
std::size_t RunDecoder(const char* name, H5Z_filter_t id, unsigned flags, std::size_t nbytes,
                       std::size_t* buf_size, void** buf, Decode&& decode) {
  if (!(flags & H5Z_FLAG_REVERSE)) {
    PushError(name, Prefix(name, id) + "lepus only decodes this filter; writing " +
                        std::string(name) + "-compressed data is not supported");
    return 0;
  }
  try {
    Buffer out = decode(static_cast<const std::uint8_t*>(*buf), nbytes);
    const std::size_t size = out.size();
    std::free(*buf);
    *buf = out.release();
    *buf_size = size;
    return size;
  } catch (const std::exception& e) {
    PushError(name, Prefix(name, id) + e.what());
  } catch (...) {
    PushError(name, Prefix(name, id) + "unknown failure");
  }
  return 0;
}

// HDF5 does not check the size a filter returns: a chunk decoded short would leave the rest of
// the chunk buffer uninitialised. Where the filter parameters record the chunk size in bytes
// (set at creation by the plugin's set_local), the decoded size must match it (or exceed it by
// the 4 bytes of a Fletcher32 checksum applied before compression).
void CheckChunkSize(const Buffer& out, std::size_t cd_nelmts, const unsigned cd_values[],
                    std::size_t index) {
  if (cd_nelmts <= index || cd_values[index] == 0) return;
  const std::size_t expected = cd_values[index];
  if (out.size() != expected && out.size() != expected + 4)
    throw FilterError("the chunk decodes to " + Num(out.size()) +
                      " bytes, but the dataset's "
                      "chunks hold " +
                      Num(expected) + " bytes (filter parameter " + Num(index) + ")");
}

std::size_t Blosc2Filter(unsigned flags, std::size_t cd_nelmts, const unsigned cd_values[],
                         std::size_t nbytes, std::size_t* buf_size, void** buf) {
  return RunDecoder("blosc2", kBlosc2, flags, nbytes, buf_size, buf,
                    [&](const std::uint8_t* in, std::size_t n) {
                      Buffer out = DecodeBlosc2(in, n, kMaxChunkBytes);
                      CheckChunkSize(out, cd_nelmts, cd_values, 3);
                      return out;
                    });
}

std::size_t ZstdFilter(unsigned flags, std::size_t, const unsigned[], std::size_t nbytes,
                       std::size_t* buf_size, void** buf) {
  return RunDecoder("zstd", kZstd, flags, nbytes, buf_size, buf,
                    [](const std::uint8_t* in, std::size_t n) {
                      return ZstdDecodeFrames(in, n, kMaxChunkBytes);
                    });
}

std::size_t BitshuffleFilter(unsigned flags, std::size_t cd_nelmts, const unsigned cd_values[],
                             std::size_t nbytes, std::size_t* buf_size, void** buf) {
  return RunDecoder("bitshuffle", kBitshuffle, flags, nbytes, buf_size, buf,
                    [&](const std::uint8_t* in, std::size_t n) {
                      return DecodeBitshuffleChunk(cd_values, cd_nelmts, in, n);
                    });
}

std::size_t LzfFilter(unsigned flags, std::size_t cd_nelmts, const unsigned cd_values[],
                      std::size_t nbytes, std::size_t* buf_size, void** buf) {
  return RunDecoder("lzf", kLzf, flags, nbytes, buf_size, buf,
                    [&](const std::uint8_t* in, std::size_t n) {
                      Buffer out = DecodeLzfChunk(cd_values, cd_nelmts, in, n);
                      CheckChunkSize(out, cd_nelmts, cd_values, 2);
                      return out;
                    });
}

void Register(H5Z_filter_t id, const char* name, H5Z_func_t func) {
  H5Z_class2_t cls{};
  cls.version = H5Z_CLASS_T_VERS;
  cls.id = id;
  cls.encoder_present = 0;
  cls.decoder_present = 1;
  cls.name = name;
  cls.can_apply = nullptr;
  cls.set_local = nullptr;
  cls.filter = func;
  // A failure leaves the id to a plugin, if any; CheckFilterAvailable reports it otherwise.
  if (H5Zregister(&cls) < 0) H5Eclear2(H5E_DEFAULT);
}

void AppendDistributionPluginDir() {
  if (std::getenv("HDF5_PLUGIN_PATH") != nullptr) return;  // the user's choice wins
  const std::string dir = DistributionPluginDir();
  struct stat st {};
  if (dir.empty() || stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  unsigned n = 0;
  if (H5PLsize(&n) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  for (unsigned i = 0; i < n; ++i) {
    char path[4096] = {0};
    if (H5PLget(i, path, sizeof(path)) >= 0 && dir == path) return;
  }
  if (H5PLappend(dir.c_str()) < 0) H5Eclear2(H5E_DEFAULT);
}

}  // namespace

std::string DistributionPluginDir() {
#ifdef LEPUS_HDF5_PLUGIN_DIR
  return LEPUS_HDF5_PLUGIN_DIR;
#else
  return "";
#endif
}

bool IsInProcessFilter(H5Z_filter_t id) {
  return id == kLzf || id == kBitshuffle || id == kZstd || id == kBlosc2;
}

void InitializeHdf5Filters() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5E_auto2_t old_func = nullptr;
    void* old_data = nullptr;
    H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    AppendDistributionPluginDir();
    Register(kBlosc2, "blosc2 (lepus, decode only)", Blosc2Filter);
    Register(kZstd, "zstd (lepus, decode only)", ZstdFilter);
    Register(kBitshuffle, "bitshuffle (lepus, decode only)", BitshuffleFilter);
    Register(kLzf, "lzf (lepus, decode only)", LzfFilter);
    H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
  });
}

// Bitshuffle filter (bitshuffle's bshuf_h5filter): cd_values[2] = element size, [3] = block
// size in elements (0: the library default, 8192 bytes / element size rounded down to a
// multiple of 8, at least 128), [4] = compression (0 none, 2 LZ4, 3 Zstd). Compressed chunks
// start with the decoded size (uint64, big-endian) and the block size in bytes (uint32, BE);
// each block is a BE uint32 compressed size and an LZ4 block or zstd frame of the bit-shuffled
// elements. Blocks hold block-size elements, the last one the remainder rounded down to a
// multiple of 8; the last nelem % 8 elements are stored as they are.
Buffer DecodeBitshuffleChunk(const unsigned* cd_values, std::size_t cd_nelmts,
                             const std::uint8_t* in, std::size_t in_size) {
  if (cd_nelmts < 3)
    throw FilterError("the filter has " + Num(cd_nelmts) +
                      " parameters, but needs at least 3 (the element size is the third)");
  const std::size_t elem = cd_values[2];
  if (elem == 0) throw FilterError("element size (parameter 2) is 0, but must be >= 1");
  const unsigned compression = cd_nelmts > 4 ? cd_values[4] : 0;
  if (compression != 0 && compression != 2 && compression != 3)
    throw FilterError("compression " + std::to_string(compression) +
                      " (parameter 4) is not supported (0 none, 2 lz4, 3 zstd are)");
  std::size_t block = cd_nelmts > 3 ? cd_values[3] : 0;
  if (block == 0) block = std::max<std::size_t>(8192 / elem / 8 * 8, 128);
  std::size_t total = in_size;
  std::size_t pos = 0;
  if (compression != 0) {
    if (in_size < 12)
      throw FilterError("chunk of " + Num(in_size) + " bytes is shorter than its 12-byte header");
    const std::uint64_t declared = LoadBe64(in);
    const std::uint32_t block_bytes = LoadBe32(in + 8);
    if (declared > kMaxChunkBytes)
      throw FilterError("header declares " + std::to_string(declared) +
                        " decoded bytes, more than an HDF5 chunk can hold");
    total = static_cast<std::size_t>(declared);
    if (block_bytes == 0 || block_bytes % elem != 0)
      throw FilterError("header block size " + std::to_string(block_bytes) +
                        " bytes is not a positive multiple of the element size " + Num(elem));
    block = block_bytes / elem;
    pos = 12;
  }
  if (block % 8 != 0)
    throw FilterError("block size " + Num(block) + " elements is not a multiple of 8");
  if (total % elem != 0)
    throw FilterError("decoded size " + Num(total) + " bytes is not a whole number of " +
                      Num(elem) + "-byte elements");
  const std::size_t nelem = total / elem;
  Buffer out(total);
  std::vector<std::uint8_t> tmp(block * elem);
  std::size_t done = 0;  // elements
  std::size_t index = 0;
  while (nelem - done >= 8) {
    const std::size_t n = std::min(block, (nelem - done) / 8 * 8);
    const std::size_t bytes = n * elem;
    const std::string where = "block " + Num(index);
    if (compression == 0) {
      if (bytes > in_size - pos) throw FilterError(where + " runs past the end of the chunk");
      BitUnshuffle(elem, n, in + pos, out.data() + done * elem);
      pos += bytes;
    } else {
      if (in_size - pos < 4)
        throw FilterError(where + ": its size runs past the end of the chunk (" + Num(in_size) +
                          " bytes)");
      const std::size_t csize = LoadBe32(in + pos);
      pos += 4;
      if (csize > in_size - pos)
        throw FilterError(where + ": compressed size " + Num(csize) +
                          " runs past the end of the chunk (" + Num(pos) + " + " + Num(csize) +
                          " > " + Num(in_size) + " bytes)");
      try {
        if (compression == 2)
          Lz4Decode(in + pos, csize, tmp.data(), bytes);
        else
          ZstdDecode(in + pos, csize, tmp.data(), bytes);
      } catch (const FilterError& e) {
        throw FilterError(where + ": " + e.what());
      }
      BitUnshuffle(elem, n, tmp.data(), out.data() + done * elem);
      pos += csize;
    }
    done += n;
    ++index;
  }
  const std::size_t rest = (nelem - done) * elem;
  if (rest > in_size - pos)
    throw FilterError("the last " + Num(nelem - done) +
                      " elements (stored unshuffled) run past the end of the chunk");
  if (rest > 0) std::memcpy(out.data() + done * elem, in + pos, rest);
  return out;
}

// LZF filter (h5py's lzf_filter): the chunk is one LZF stream; cd_values[2] is the chunk size
// in bytes as set at creation (a starting guess; the buffer grows when it is too small).
Buffer DecodeLzfChunk(const unsigned* cd_values, std::size_t cd_nelmts, const std::uint8_t* in,
                      std::size_t in_size) {
  std::size_t capacity = cd_nelmts >= 3 && cd_values[2] > 0
                             ? cd_values[2]
                             : std::max<std::size_t>(in_size * 4, 1 << 16);
  while (true) {
    Buffer out(capacity);
    const std::size_t n = LzfDecode(in, in_size, out.data(), capacity);
    if (n != SIZE_MAX) {
      if (n == capacity) return out;
      Buffer exact(n);
      if (n > 0) std::memcpy(exact.data(), out.data(), n);
      return exact;
    }
    if (capacity >= kMaxChunkBytes)
      throw FilterError("the chunk decodes to more than " + Num(kMaxChunkBytes) + " bytes");
    capacity = std::min<std::size_t>(kMaxChunkBytes, capacity * 2);
  }
}

}  // namespace lepus::io::filters
