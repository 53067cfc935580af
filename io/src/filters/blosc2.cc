#include "filters/blosc2.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace lepus::io::filters {

namespace {

std::string Num(std::int64_t v) { return std::to_string(v); }
std::string Hex(unsigned v) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[(v >> 4) & 15] + digits[v & 15];
}

// Chunk header (little-endian).
constexpr std::size_t kMinHeader = 16;
constexpr std::size_t kExtendedHeader = 32;
constexpr int kMaxChunkVersion = 6;  // BLOSC2_VERSION_FORMAT_VL_BLOCKS
// flags (byte 2)
constexpr std::uint8_t kDoShuffle = 0x01, kMemcpyed = 0x02, kDoBitshuffle = 0x04, kDoDelta = 0x08,
                       kDontSplit = 0x10;
// blosc2_flags (byte 31)
constexpr std::uint8_t kUseDict = 0x01, kLazy = 0x08, kInstrumented = 0x80;
// blosc2_flags2 (byte 30)
constexpr std::uint8_t kVlBlocks = 0x01;
// filter ids
constexpr std::uint8_t kNoFilter = 0, kShuffle = 1, kBitshuffle = 2, kDelta = 3, kTruncPrec = 4;
// codec formats (flags >> 5)
constexpr int kBloscLz = 0, kLz4 = 1, kZlib = 3, kZstd = 4, kUserCodec = 6;
constexpr int kMaxFilters = 6;

std::string CodecName(int format) {
  switch (format) {
    case kBloscLz:
      return "blosclz";
    case kLz4:
      return "lz4/lz4hc";
    case 2:
      return "snappy (removed from Blosc)";
    case kZlib:
      return "zlib";
    case kZstd:
      return "zstd";
    default:
      return "reserved";
  }
}

std::string FilterIdName(int id) {
  switch (id) {
    case kShuffle:
      return "shuffle";
    case kBitshuffle:
      return "bitshuffle";
    case kDelta:
      return "delta";
    case kTruncPrec:
      return "truncprec";
    default:
      return id < 32 ? "reserved" : id < 160 ? "registered filter" : "user-defined filter";
  }
}

struct Header {
  int version = 0;
  std::uint8_t flags = 0;
  std::size_t typesize = 0;
  std::int64_t nbytes = 0, blocksize = 0, cbytes = 0;
  std::size_t overhead = kMinHeader;
  std::uint8_t filters[kMaxFilters] = {0, 0, 0, 0, 0, 0};
  std::uint8_t filters_meta[kMaxFilters] = {0, 0, 0, 0, 0, 0};
  int codec = 0;
  int special = 0;
};

[[noreturn]] void Fail(const std::string& what) { throw FilterError(what); }

Header ReadHeader(const std::uint8_t* in, std::size_t avail) {
  if (avail < kMinHeader)
    Fail("chunk of " + Num(avail) + " bytes is shorter than the 16-byte Blosc header");
  Header h;
  h.version = in[0];
  h.flags = in[2];
  h.typesize = in[3];
  h.nbytes = static_cast<std::int32_t>(LoadLe32(in + 4));
  h.blocksize = static_cast<std::int32_t>(LoadLe32(in + 8));
  h.cbytes = static_cast<std::int32_t>(LoadLe32(in + 12));
  if (h.version == 0 || h.version > kMaxChunkVersion)
    Fail("chunk format version " + Num(h.version) + " is not supported (1 to " +
         Num(kMaxChunkVersion) + " are)");
  if (h.typesize == 0) Fail("chunk header: typesize is 0, but must be >= 1");
  if (h.nbytes < 0) Fail("chunk header: nbytes is " + Num(h.nbytes) + ", but must be >= 0");
  if (h.cbytes < static_cast<std::int64_t>(kMinHeader))
    Fail("chunk header: cbytes is " + Num(h.cbytes) + ", but must be >= 16");
  if (h.cbytes > static_cast<std::int64_t>(avail))
    Fail("chunk is truncated: its header says " + Num(h.cbytes) + " bytes (cbytes), but only " +
         Num(avail) + " are there");
  const bool extended = (h.flags & kDoShuffle) && (h.flags & kDoBitshuffle);
  if (extended) {
    if (h.cbytes < static_cast<std::int64_t>(kExtendedHeader))
      Fail("chunk header: cbytes is " + Num(h.cbytes) +
           ", but an extended (Blosc2) header needs >= 32");
    h.overhead = kExtendedHeader;
    for (int i = 0; i < kMaxFilters; ++i) {
      h.filters[i] = in[16 + i];
      h.filters_meta[i] = in[24 + i];
    }
    if (h.version == 3) h.filters[5] = h.filters_meta[5] = 0;  // alpha format: 5 slots
    const std::uint8_t flags2 = in[30];
    const std::uint8_t bflags = in[31];
    if (bflags & kUseDict) Fail("chunk uses dictionary compression, which is not supported");
    if (bflags & kLazy) Fail("chunk is a lazy chunk (no data blocks), which is not supported");
    if (bflags & kInstrumented) Fail("chunk holds instrumented codec output, not data");
    if (flags2 & kVlBlocks) Fail("chunk uses variable-length blocks, which are not supported");
    h.special = (bflags >> 4) & 7;
    h.codec = h.flags >> 5;
    if (h.codec == kUserCodec)
      Fail("chunk uses the user-defined codec " + Num(in[22]) + ", which is not supported");
  } else {
    // Blosc1 header: the filters are flags bits (shuffle or bitshuffle last, delta before).
    if (h.flags & kDoShuffle) h.filters[5] = kShuffle;
    if (h.flags & kDoBitshuffle) h.filters[5] = kBitshuffle;
    if (h.flags & kDoDelta) h.filters[4] = kDelta;
    h.codec = h.flags >> 5;
  }
  if (h.nbytes > 0 && h.blocksize <= 0)
    Fail("chunk header: blocksize is " + Num(h.blocksize) + ", but must be > 0");
  if (h.blocksize > h.nbytes) h.blocksize = h.nbytes;
  return h;
}

void FillSpecial(const Header& h, const std::uint8_t* in, std::uint8_t* out) {
  const auto n = static_cast<std::size_t>(h.nbytes);
  switch (h.special) {
    case 1:  // zeros
    case 4:  // uninitialised: Blosc leaves the memory as is; lepus gives zeros
      std::memset(out, 0, n);
      return;
    case 2: {  // NaN
      if (h.typesize == 4 && n % 4 == 0) {
        const float v = std::numeric_limits<float>::quiet_NaN();
        for (std::size_t i = 0; i < n; i += 4) std::memcpy(out + i, &v, 4);
      } else if (h.typesize == 8 && n % 8 == 0) {
        const double v = std::numeric_limits<double>::quiet_NaN();
        for (std::size_t i = 0; i < n; i += 8) std::memcpy(out + i, &v, 8);
      } else {
        Fail("special NaN chunk with typesize " + Num(h.typesize) + " and " + Num(h.nbytes) +
             " bytes, but NaN chunks need typesize 4 or 8 and whole elements");
      }
      return;
    }
    case 3: {  // a repeated value stored right after the header; its size is cbytes - 32
      const std::int64_t ts = h.cbytes - static_cast<std::int64_t>(kExtendedHeader);
      if (ts <= 0 || h.nbytes % ts != 0)
        Fail("special repeated-value chunk: value of " + Num(ts) + " bytes does not divide " +
             Num(h.nbytes) + " bytes");
      for (std::size_t i = 0; i < n; i += static_cast<std::size_t>(ts))
        std::memcpy(out + i, in + kExtendedHeader, static_cast<std::size_t>(ts));
      return;
    }
    default:
      Fail("special chunk type " + Num(h.special) + " is not supported (1 zeros, 2 NaN, " +
           "3 repeated value, 4 uninitialised are)");
  }
}

void DecodeStream(int codec, const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                  std::size_t out_size) {
  switch (codec) {
    case kBloscLz:
      BloscLzDecode(in, in_size, out, out_size);
      return;
    case kLz4:
      Lz4Decode(in, in_size, out, out_size);
      return;
    case kZlib:
      ZlibDecode(in, in_size, out, out_size);
      return;
    case kZstd:
      ZstdDecode(in, in_size, out, out_size);
      return;
    default:
      Fail("codec " + Num(codec) + " (" + CodecName(codec) + ") is not supported");
  }
}

// In-place delta decoding of one block (XOR with the reference: the block's own previous
// element for block 0, the decoded block 0 for every later block), in units of 1, 2, 4 or 8
// bytes as Blosc does for the typesize.
void UndoDelta(std::size_t typesize, bool first_block, const std::uint8_t* block0,
               std::uint8_t* data, std::size_t size) {
  std::size_t unit = typesize;
  if (unit != 1 && unit != 2 && unit != 4 && unit != 8) unit = unit % 8 == 0 ? 8 : 1;
  const std::size_t n = size / unit;
  auto xor_unit = [unit](std::uint8_t* dst, const std::uint8_t* src) {
    for (std::size_t b = 0; b < unit; ++b) dst[b] ^= src[b];
  };
  if (first_block) {
    for (std::size_t i = 1; i < n; ++i) xor_unit(data + i * unit, data + (i - 1) * unit);
  } else {
    for (std::size_t i = 0; i < n; ++i) xor_unit(data + i * unit, block0 + i * unit);
  }
}

void DecodeBlocks(const Header& h, const std::uint8_t* in, std::uint8_t* out) {
  const auto cbytes = static_cast<std::size_t>(h.cbytes);
  const auto nbytes = static_cast<std::size_t>(h.nbytes);
  const auto blocksize = static_cast<std::size_t>(h.blocksize);
  const std::size_t nblocks = (nbytes + blocksize - 1) / blocksize;
  const std::size_t leftover = nbytes % blocksize;

  // The filter pipeline, undone from the last slot to the first.
  int last_active = -1, first_active = kMaxFilters;
  for (int i = 0; i < kMaxFilters; ++i) {
    const int f = h.filters[i];
    if (f == kNoFilter || f == kTruncPrec) continue;
    if (f != kShuffle && f != kBitshuffle && f != kDelta)
      Fail("filter " + Num(f) + " (" + FilterIdName(f) + ") in slot " + Num(i) +
           " is not supported (shuffle, bitshuffle, delta, truncprec are)");
    last_active = std::max(last_active, i);
    first_active = std::min(first_active, i);
  }
  for (int i = 0; i < kMaxFilters; ++i)
    if (h.filters[i] == kDelta && i != first_active)
      Fail("delta filter in slot " + Num(i) + " after other filters is not supported");

  if (nblocks > (cbytes - h.overhead) / 4)
    Fail("chunk is truncated: " + Num(nblocks) + " block offsets (bstarts) need " +
         Num(nblocks * 4) + " bytes after the header, but the chunk has " + Num(cbytes) + " bytes");
  const std::uint8_t* bstarts = in + h.overhead;
  const std::size_t data_start = h.overhead + nblocks * 4;

  std::vector<std::uint8_t> tmp_a(last_active >= 0 ? blocksize : 0);
  std::vector<std::uint8_t> tmp_b(last_active >= 0 ? blocksize : 0);
  for (std::size_t j = 0; j < nblocks; ++j) {
    const bool is_leftover = leftover > 0 && j == nblocks - 1;
    const std::size_t bsize = is_leftover ? leftover : blocksize;
    std::uint8_t* dest = out + j * blocksize;
    std::uint8_t* stage = last_active >= 0 ? tmp_a.data() : dest;

    std::size_t pos = LoadLe32(bstarts + 4 * j);
    if (pos < data_start || pos >= cbytes)
      Fail("block " + Num(j) + " starts at byte " + Num(pos) + ", outside the data section [" +
           Num(data_start) + ", " + Num(cbytes) + ") of the chunk");
    const std::size_t nstreams = (!(h.flags & kDontSplit) && !is_leftover) ? h.typesize : 1;
    if (bsize % nstreams != 0)
      Fail("block " + Num(j) + " of " + Num(bsize) + " bytes is not divisible into " +
           Num(nstreams) + " streams (one per byte of the type)");
    const std::size_t neblock = bsize / nstreams;
    for (std::size_t s = 0; s < nstreams; ++s) {
      const std::string where = "stream " + Num(s) + " of block " + Num(j);
      if (cbytes - pos < 4) Fail(where + ": its size runs past the end of the chunk");
      const auto csize = static_cast<std::int32_t>(LoadLe32(in + pos));
      pos += 4;
      std::uint8_t* sdest = stage + s * neblock;
      if (csize == 0) {
        std::memset(sdest, 0, neblock);
      } else if (csize < 0) {
        if (pos >= cbytes) Fail(where + ": its token byte runs past the end of the chunk");
        const std::uint8_t token = in[pos++];
        if (!(token & 0x01))
          Fail(where + ": stream token " + Hex(token) +
               " is not supported (only runs of a "
               "repeated byte are)");
        if (csize < -255)
          Fail(where + ": run value " + Num(-static_cast<std::int64_t>(csize)) +
               " does not fit in a byte");
        std::memset(sdest, static_cast<std::uint8_t>(-csize), neblock);
      } else {
        const auto c = static_cast<std::size_t>(csize);
        if (c > cbytes - pos)
          Fail(where + ": compressed size " + Num(c) + " runs past the end of the chunk (" +
               Num(pos) + " + " + Num(c) + " > " + Num(cbytes) + " bytes)");
        if (c == neblock) {
          std::memcpy(sdest, in + pos, neblock);
        } else {
          try {
            DecodeStream(h.codec, in + pos, c, sdest, neblock);
          } catch (const FilterError& e) {
            Fail(where + ": " + e.what());
          }
        }
        pos += c;
      }
    }
    if (last_active < 0) continue;
    // Undo the filters; the result ends in dest.
    std::uint8_t* cur = tmp_a.data();
    std::uint8_t* other = tmp_b.data();
    for (int i = kMaxFilters - 1; i >= 0; --i) {
      const int f = h.filters[i];
      if (f == kShuffle) {
        const std::size_t group = h.filters_meta[i] != 0 ? h.filters_meta[i] : h.typesize;
        Unshuffle(group, bsize, cur, other);
        std::swap(cur, other);
      } else if (f == kBitshuffle) {
        const std::size_t nelem = bsize / h.typesize;
        if (h.version == 2) {  // Blosc1 format 2: all or nothing
          if (nelem % 8 == 0)
            BitUnshuffle(h.typesize, nelem, cur, other);
          else
            std::memcpy(other, cur, bsize);
        } else {
          const std::size_t n8 = nelem - nelem % 8;
          BitUnshuffle(h.typesize, n8, cur, other);
          std::memcpy(other + n8 * h.typesize, cur + n8 * h.typesize, bsize - n8 * h.typesize);
        }
        std::swap(cur, other);
      } else if (f == kDelta) {
        std::memcpy(dest, cur, bsize);
        UndoDelta(h.typesize, j == 0, out, dest, bsize);
        cur = nullptr;  // delta is the last step (checked above)
        break;
      }
    }
    if (cur != nullptr) std::memcpy(dest, cur, bsize);
  }
}

}  // namespace

Buffer DecodeBloscChunk(const std::uint8_t* in, std::size_t avail, std::size_t max_size) {
  const Header h = ReadHeader(in, avail);
  if (static_cast<std::uint64_t>(h.nbytes) > max_size)
    Fail("chunk header: nbytes is " + Num(h.nbytes) + ", more than the " +
         Num(static_cast<std::int64_t>(max_size)) + " bytes expected");
  Buffer out(static_cast<std::size_t>(h.nbytes));
  if (h.nbytes == 0) return out;
  if (h.special != 0) {
    if (h.special == 3 && h.cbytes <= static_cast<std::int64_t>(kExtendedHeader))
      Fail("special repeated-value chunk without the value");
    FillSpecial(h, in, out.data());
    return out;
  }
  if (h.flags & kMemcpyed) {
    if (h.cbytes != h.nbytes + static_cast<std::int64_t>(h.overhead))
      Fail("memcpyed chunk: cbytes is " + Num(h.cbytes) + ", but must be nbytes + header = " +
           Num(h.nbytes + static_cast<std::int64_t>(h.overhead)));
    std::memcpy(out.data(), in + h.overhead, static_cast<std::size_t>(h.nbytes));
    return out;
  }
  DecodeBlocks(h, in, out.data());
  return out;
}

namespace {

// Contiguous frame (big-endian msgpack header, little-endian chunks).
constexpr std::size_t kFrameHeaderMin = 87;
constexpr int kMaxFrameVersion = 3;

void Expect(const std::uint8_t* in, std::size_t pos, std::uint8_t want, const char* what) {
  if (in[pos] != want)
    Fail(std::string("frame header: byte ") + Num(pos) + " is " + Hex(in[pos]) +
         ", but must be the msgpack marker of " + what);
}

// Names of the metalayers in the frame header (a msgpack map of name -> offset).
std::vector<std::string> MetalayerNames(const std::uint8_t* in, std::size_t header_len) {
  std::vector<std::string> names;
  std::size_t pos = kFrameHeaderMin;
  if (header_len < pos + 6) return names;
  if (in[pos] != 0x93 || in[pos + 1] != 0xcd || in[pos + 4] != 0xde)
    Fail("frame header: the metalayer section does not start with the expected msgpack array");
  const std::size_t count = (static_cast<std::size_t>(in[pos + 5]) << 8) | in[pos + 6];
  pos += 7;
  for (std::size_t i = 0; i < count; ++i) {
    if (pos >= header_len) Fail("frame header: metalayer " + Num(i) + " runs past the header");
    const std::uint8_t m = in[pos++];
    if ((m & 0xe0) != 0xa0) Fail("frame header: metalayer " + Num(i) + " has no fixstr name");
    const std::size_t len = m & 0x1f;
    if (len + 5 > header_len - pos)
      Fail("frame header: metalayer " + Num(i) + " runs past the header");
    names.emplace_back(reinterpret_cast<const char*>(in + pos), len);
    pos += len + 5;  // name, 0xd2 + int32 offset
  }
  return names;
}

Buffer DecodeFrame(const std::uint8_t* in, std::size_t in_size, std::size_t max_size) {
  if (in_size < kFrameHeaderMin)
    Fail("frame of " + Num(in_size) + " bytes is shorter than the minimal frame header (87)");
  if ((in[0] & 0xf0) != 0x90) Expect(in, 0, 0x9e, "the header array");
  Expect(in, 1, 0xa8, "the magic string");
  Expect(in, 10, 0xd2, "header_len");
  Expect(in, 15, 0xcf, "frame_len");
  Expect(in, 24, 0xa4, "the flags");
  Expect(in, 29, 0xd3, "uncompressed_size");
  Expect(in, 38, 0xd3, "compressed_size");
  Expect(in, 47, 0xd2, "type_size");
  Expect(in, 52, 0xd2, "block_size");
  Expect(in, 57, 0xd2, "chunk_size");
  const std::uint8_t general = in[25];
  const int version = general & 0x0f;
  if (version > kMaxFrameVersion)
    Fail("frame format version " + Num(version) + " is not supported (up to " +
         Num(kMaxFrameVersion) + ")");
  if ((in[26] & 0x0f) != 0)
    Fail("frame type " + Num(in[26] & 0x0f) +
         " (sparse/directory frame) is not supported; "
         "only contiguous frames are");
  if (((general >> 4) & 3) != 1)
    Fail("frame uses " + Num(32 << ((general >> 4) & 3)) +
         "-bit chunk offsets; only 64-bit offsets are supported");
  if (general & 0x80) Fail("frame uses variable-length blocks, which are not supported");
  if (in[85] & 0x01) Fail("frame uses dictionary compression, which is not supported");

  const std::int64_t header_len = static_cast<std::int32_t>(LoadBe32(in + 11));
  const auto frame_len = LoadBe64(in + 16);
  const auto nbytes = static_cast<std::int64_t>(LoadBe64(in + 30));
  const auto cbytes = static_cast<std::int64_t>(LoadBe64(in + 39));
  const std::int64_t chunksize = static_cast<std::int32_t>(LoadBe32(in + 58));
  if (header_len < static_cast<std::int64_t>(kFrameHeaderMin) ||
      static_cast<std::uint64_t>(header_len) > in_size)
    Fail("frame header: header_len is " + Num(header_len) + ", but must be in [87, " +
         Num(static_cast<std::int64_t>(in_size)) + "] (the chunk size)");
  if (frame_len > in_size)
    Fail("frame is truncated: frame_len is " + std::to_string(frame_len) + ", but only " +
         Num(static_cast<std::int64_t>(in_size)) + " bytes are there");
  for (const auto& name : MetalayerNames(in, static_cast<std::size_t>(header_len)))
    if (name == "b2nd" || name == "caterva")
      Fail(
          "frame holds a B2ND (multidimensional) array, which is not supported; store the "
          "dataset 1-D (rabbit's flattened layout) or with chunks of rank 1");
  if (nbytes < 0 || static_cast<std::uint64_t>(nbytes) > max_size)
    Fail("frame header: uncompressed_size is " + Num(nbytes) + ", but must be in [0, " +
         Num(static_cast<std::int64_t>(max_size)) + "]");
  if (cbytes < 0 || cbytes > static_cast<std::int64_t>(frame_len) - header_len)
    Fail("frame header: compressed_size is " + Num(cbytes) + ", but the frame has only " +
         Num(static_cast<std::int64_t>(frame_len) - header_len) + " bytes after its header");
  Buffer out(static_cast<std::size_t>(nbytes));
  if (nbytes == 0) return out;

  // The offsets index: a Blosc chunk of int64 offsets right after the chunks section.
  const std::size_t flen = static_cast<std::size_t>(frame_len);
  const std::size_t data_begin = static_cast<std::size_t>(header_len);
  const std::size_t data_end = data_begin + static_cast<std::size_t>(cbytes);
  if (data_end >= flen) Fail("frame has no chunk-offsets index after its chunks");
  Buffer offsets;
  try {
    offsets = DecodeBloscChunk(in + data_end, flen - data_end, max_size);
  } catch (const FilterError& e) {
    Fail(std::string("frame chunk-offsets index: ") + e.what());
  }
  if (offsets.size() % 8 != 0)
    Fail("frame chunk-offsets index holds " + Num(static_cast<std::int64_t>(offsets.size())) +
         " bytes, not a whole number of 64-bit offsets");
  const std::size_t nchunks = offsets.size() / 8;
  if (chunksize < 0) Fail("frame header: chunk_size is " + Num(chunksize) + ", but must be >= 0");
  if (chunksize > 0) {
    const auto expected = static_cast<std::size_t>((nbytes + chunksize - 1) / chunksize);
    if (nchunks != expected)
      Fail("frame chunk-offsets index has " + Num(static_cast<std::int64_t>(nchunks)) +
           " entries, but uncompressed_size / chunk_size needs " +
           Num(static_cast<std::int64_t>(expected)));
  }
  std::size_t produced = 0;
  for (std::size_t i = 0; i < nchunks; ++i) {
    const std::string where = "frame chunk " + Num(static_cast<std::int64_t>(i));
    const std::size_t remaining = static_cast<std::size_t>(nbytes) - produced;
    const auto offset = static_cast<std::int64_t>(LoadLe64(offsets.data() + 8 * i));
    if (offset < 0) {
      // A special chunk encoded in the offset: kind in the low bits of the top byte.
      if (chunksize == 0) Fail(where + ": special chunk in a frame without a fixed chunk size");
      const int kind = static_cast<int>((static_cast<std::uint64_t>(offset) >> 56) & 0x7f);
      const std::size_t size =
          std::min<std::size_t>(static_cast<std::size_t>(chunksize), remaining);
      Header h;
      h.special = kind;
      h.nbytes = static_cast<std::int64_t>(size);
      h.typesize = static_cast<std::size_t>(static_cast<std::int32_t>(LoadBe32(in + 48)));
      if (kind != 1 && kind != 2 && kind != 4)
        Fail(where + ": special chunk type " + Num(kind) +
             " in the offsets index is not "
             "supported (1 zeros, 2 NaN, 4 uninitialised are)");
      try {
        FillSpecial(h, nullptr, out.data() + produced);
      } catch (const FilterError& e) {
        Fail(where + ": " + e.what());
      }
      produced += size;
      continue;
    }
    if (offset > cbytes - static_cast<std::int64_t>(kMinHeader))
      Fail(where + ": offset " + Num(offset) + " is outside the chunks section (" + Num(cbytes) +
           " bytes)");
    const std::size_t pos = data_begin + static_cast<std::size_t>(offset);
    Buffer chunk;
    try {
      chunk = DecodeBloscChunk(in + pos, data_end - pos, remaining);
    } catch (const FilterError& e) {
      Fail(where + ": " + e.what());
    }
    if (chunksize > 0 && i + 1 < nchunks && chunk.size() != static_cast<std::size_t>(chunksize))
      Fail(where + ": decodes to " + Num(static_cast<std::int64_t>(chunk.size())) +
           " bytes, but the frame's chunk_size is " + Num(chunksize));
    if (chunk.size() > 0) std::memcpy(out.data() + produced, chunk.data(), chunk.size());
    produced += chunk.size();
  }
  if (produced != static_cast<std::size_t>(nbytes))
    Fail("frame chunks decode to " + Num(static_cast<std::int64_t>(produced)) +
         " bytes, but uncompressed_size is " + Num(nbytes));
  return out;
}

}  // namespace

Buffer DecodeBlosc2(const std::uint8_t* in, std::size_t in_size, std::size_t max_size) {
  static const char kMagic[8] = {'b', '2', 'f', 'r', 'a', 'm', 'e', '\0'};
  if (in_size >= 10 && std::memcmp(in + 2, kMagic, 8) == 0) {
    // One frame; when it holds a single chunk (the HDF5 filter's case) this is all.
    return DecodeFrame(in, in_size, max_size);
  }
  return DecodeBloscChunk(in, in_size, max_size);
}

}  // namespace lepus::io::filters
