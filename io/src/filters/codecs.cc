#include "filters/codecs.h"

#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace lepus::io::filters {

namespace {

std::string Num(std::size_t v) { return std::to_string(v); }

// One zstd decompression context per thread, reused across streams (creating one per block
// would dominate the decoding time of small blocks).
ZSTD_DCtx* ThreadZstdContext() {
  struct Holder {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    ~Holder() { ZSTD_freeDCtx(ctx); }
  };
  thread_local Holder holder;
  if (holder.ctx == nullptr) throw FilterError("zstd: cannot create a decompression context");
  return holder.ctx;
}

// Transposes an 8x8 bit matrix held in x (bit 8*r + c is row r, column c): the classic
// three-step exchange of 1x1, 2x2 and 4x4 sub-blocks across the diagonal.
inline std::uint64_t Transpose8x8(std::uint64_t x) {
  std::uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
  x ^= t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
  x ^= t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
  x ^= t ^ (t << 28);
  return x;
}

}  // namespace

Buffer::Buffer(std::size_t size) : size_(size) {
  data_.reset(static_cast<std::uint8_t*>(std::malloc(size > 0 ? size : 1)));
  if (!data_) throw FilterError("cannot allocate " + Num(size) + " bytes for the decoded chunk");
}

std::uint32_t LoadLe32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
std::uint64_t LoadLe64(const std::uint8_t* p) {
  return static_cast<std::uint64_t>(LoadLe32(p)) | static_cast<std::uint64_t>(LoadLe32(p + 4))
                                                       << 32;
}
std::uint32_t LoadBe32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[3]) | static_cast<std::uint32_t>(p[2]) << 8 |
         static_cast<std::uint32_t>(p[1]) << 16 | static_cast<std::uint32_t>(p[0]) << 24;
}
std::uint64_t LoadBe64(const std::uint8_t* p) {
  return static_cast<std::uint64_t>(LoadBe32(p)) << 32 |
         static_cast<std::uint64_t>(LoadBe32(p + 4));
}

void Lz4Decode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
               std::size_t out_size) {
  if (in_size > INT_MAX || out_size > INT_MAX)
    throw FilterError("lz4: stream of " + Num(in_size) + " bytes to " + Num(out_size) +
                      " bytes is larger than LZ4 supports");
  const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in), reinterpret_cast<char*>(out),
                                    static_cast<int>(in_size), static_cast<int>(out_size));
  if (n < 0)
    throw FilterError("lz4: corrupt stream (" + Num(in_size) + " compressed bytes, " +
                      Num(out_size) + " expected)");
  if (static_cast<std::size_t>(n) != out_size)
    throw FilterError("lz4: stream decodes to " + std::to_string(n) + " bytes, but " +
                      Num(out_size) + " are expected");
}

void ZlibDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                std::size_t out_size) {
  uLongf n = static_cast<uLongf>(out_size);
  const int rc = uncompress(out, &n, in, static_cast<uLong>(in_size));
  if (rc != Z_OK)
    throw FilterError(
        std::string("zlib: corrupt stream (") +
        (rc == Z_BUF_ERROR ? "truncated, or more than " + Num(out_size) + " bytes" : zError(rc)) +
        ", " + Num(in_size) + " compressed bytes)");
  if (n != out_size)
    throw FilterError("zlib: stream decodes to " + Num(n) + " bytes, but " + Num(out_size) +
                      " are expected");
}

void ZstdDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                std::size_t out_size) {
  const std::size_t n = ZSTD_decompressDCtx(ThreadZstdContext(), out, out_size, in, in_size);
  if (ZSTD_isError(n))
    throw FilterError(std::string("zstd: corrupt stream (") + ZSTD_getErrorName(n) + ", " +
                      Num(in_size) + " compressed bytes, " + Num(out_size) + " expected)");
  if (n != out_size)
    throw FilterError("zstd: stream decodes to " + Num(n) + " bytes, but " + Num(out_size) +
                      " are expected");
}

Buffer ZstdDecodeFrames(const std::uint8_t* in, std::size_t in_size, std::size_t max_size) {
  if (in_size == 0) throw FilterError("zstd: the chunk is empty, but must hold a zstd frame");
  // Start from the declared content size of the first frame when the writer stored it.
  std::size_t capacity =
      std::min<std::size_t>(max_size, std::max<std::size_t>(in_size * 4, 1 << 16));
  const unsigned long long declared = ZSTD_getFrameContentSize(in, in_size);
  if (declared == ZSTD_CONTENTSIZE_ERROR)
    throw FilterError("zstd: the chunk does not start with a zstd frame (magic number " +
                      Num(in_size >= 4 ? LoadLe32(in) : 0) + ")");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN) {
    if (declared > max_size)
      throw FilterError("zstd: the frame declares " + std::to_string(declared) +
                        " decoded bytes, more than the limit of " + Num(max_size));
    capacity = std::max<std::size_t>(static_cast<std::size_t>(declared), 1);
  }
  Buffer buf(capacity);
  ZSTD_DCtx* ctx = ThreadZstdContext();
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
  ZSTD_inBuffer input{in, in_size, 0};
  std::size_t produced = 0;
  std::size_t last = 1;
  while (true) {
    ZSTD_outBuffer output{buf.data(), buf.size(), produced};
    last = ZSTD_decompressStream(ctx, &output, &input);
    produced = output.pos;
    if (ZSTD_isError(last)) {
      const std::string err = ZSTD_getErrorName(last);
      ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
      throw FilterError("zstd: corrupt frame (" + err + ", at input byte " + Num(input.pos) +
                        " of " + Num(in_size) + ")");
    }
    if (input.pos == input.size && last == 0) break;  // every frame complete
    if (produced < buf.size()) {
      if (input.pos == input.size) {
        ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
        throw FilterError("zstd: the frame is truncated (" + Num(in_size) +
                          " bytes end inside it)");
      }
      continue;
    }
    // Output full: grow (doubling) up to the limit.
    if (buf.size() >= max_size) {
      ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
      throw FilterError("zstd: the chunk decodes to more than " + Num(max_size) + " bytes");
    }
    const std::size_t bigger = std::min(max_size, buf.size() * 2);
    Buffer grown(bigger);
    std::memcpy(grown.data(), buf.data(), produced);
    buf = std::move(grown);
  }
  if (produced == buf.size()) return buf;
  Buffer exact(produced);
  if (produced > 0) std::memcpy(exact.data(), buf.data(), produced);
  return exact;
}

// BloscLZ stream: a sequence of tokens, the first byte's top three bits being ignored.
//   control < 32: a literal run of control + 1 bytes follows;
//   otherwise a match: length (control >> 5) - 1, extended by following bytes while they are
//   255 when that is 6; then a distance byte d: distance ((control & 31) << 8) + d + 1, or, when
//   both are at their maximum (31, 255), 8192 + a following 16-bit big-endian value; the match
//   copies length + 3 bytes from that distance back (overlap allowed).
void BloscLzDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                   std::size_t out_size) {
  auto fail = [&](const std::string& what, std::size_t ip, std::size_t op) {
    throw FilterError("blosclz: corrupt stream (" + what + " at input byte " + Num(ip) + " of " +
                      Num(in_size) + ", output byte " + Num(op) + " of " + Num(out_size) + ")");
  };
  if (in_size == 0) {
    if (out_size != 0) fail("empty stream", 0, 0);
    return;
  }
  std::size_t ip = 0, op = 0;
  std::uint32_t ctrl = in[ip++] & 31U;
  while (true) {
    if (ctrl >= 32) {
      std::size_t len = (ctrl >> 5) - 1;
      const std::size_t hi = (ctrl & 31U) << 8;
      if (len == 6) {
        std::uint8_t code = 0;
        do {
          if (ip >= in_size) fail("match length runs past the end", ip, op);
          code = in[ip++];
          len += code;
        } while (code == 255);
      }
      if (ip >= in_size) fail("match distance runs past the end", ip, op);
      const std::uint8_t code = in[ip++];
      len += 3;
      std::size_t dist = hi + code + 1;
      if (code == 255 && hi == (31U << 8)) {
        if (ip + 2 > in_size) fail("far match distance runs past the end", ip, op);
        dist = ((static_cast<std::size_t>(in[ip]) << 8) | in[ip + 1]) + 8191 + 1;
        ip += 2;
      }
      if (dist > op) fail("match distance " + Num(dist) + " before the start", ip, op);
      if (len > out_size - op) fail("match of " + Num(len) + " bytes past the end", ip, op);
      const std::uint8_t* ref = out + op - dist;
      if (dist >= len) {
        std::memcpy(out + op, ref, len);
      } else if (dist == 1) {
        std::memset(out + op, *ref, len);
      } else {
        for (std::size_t i = 0; i < len; ++i) out[op + i] = ref[i];
      }
      op += len;
    } else {
      const std::size_t run = ctrl + 1;
      if (run > out_size - op) fail("literal run of " + Num(run) + " bytes past the end", ip, op);
      if (run > in_size - ip) fail("literal run of " + Num(run) + " bytes truncated", ip, op);
      std::memcpy(out + op, in + ip, run);
      op += run;
      ip += run;
    }
    if (ip >= in_size) break;
    ctrl = in[ip++];
  }
  if (op != out_size)
    throw FilterError("blosclz: stream decodes to " + Num(op) + " bytes, but " + Num(out_size) +
                      " are expected");
}

// LZF stream: control c < 32: c + 1 literal bytes; otherwise a back reference of length
// (c >> 5) + 2 (when c >> 5 is 7, plus the next byte) at distance ((c & 31) << 8) + next + 1.
std::size_t LzfDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                      std::size_t out_size) {
  auto fail = [&](const std::string& what, std::size_t ip) {
    throw FilterError("lzf: corrupt stream (" + what + " at input byte " + Num(ip) + " of " +
                      Num(in_size) + ")");
  };
  std::size_t ip = 0, op = 0;
  while (ip < in_size) {
    const std::uint32_t c = in[ip++];
    if (c < 32) {
      const std::size_t run = c + 1;
      if (run > in_size - ip) fail("literal run of " + Num(run) + " bytes truncated", ip);
      if (run > out_size - op) return SIZE_MAX;
      std::memcpy(out + op, in + ip, run);
      ip += run;
      op += run;
    } else {
      std::size_t len = c >> 5;
      if (len == 7) {
        if (ip >= in_size) fail("back reference truncated", ip);
        len += in[ip++];
      }
      if (ip >= in_size) fail("back reference truncated", ip);
      const std::size_t dist = ((c & 31U) << 8) + in[ip++] + 1;
      len += 2;
      if (dist > op) fail("back reference distance " + Num(dist) + " before the start", ip);
      if (len > out_size - op) return SIZE_MAX;
      const std::uint8_t* ref = out + op - dist;
      for (std::size_t i = 0; i < len; ++i) out[op + i] = ref[i];
      op += len;
    }
  }
  return op;
}

void Unshuffle(std::size_t type_size, std::size_t size, const std::uint8_t* in, std::uint8_t* out) {
  if (type_size <= 1 || size < type_size) {
    std::memcpy(out, in, size);
    return;
  }
  const std::size_t n = size / type_size;
  const std::size_t tail = size - n * type_size;
  switch (type_size) {  // the common widths with a compile-time stride
    case 8:
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < 8; ++j) out[i * 8 + j] = in[j * n + i];
      break;
    case 4:
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < 4; ++j) out[i * 4 + j] = in[j * n + i];
      break;
    default:
      for (std::size_t j = 0; j < type_size; ++j) {
        const std::uint8_t* row = in + j * n;
        for (std::size_t i = 0; i < n; ++i) out[i * type_size + j] = row[i];
      }
  }
  std::memcpy(out + n * type_size, in + n * type_size, tail);
}

// The bit-shuffled layout of nelem elements of type_size bytes: for each byte j of an element
// and each bit k of that byte (least significant first), one row of nelem bits, bit i of the
// row (least significant bit first within its byte) being bit k of byte j of element i. A group
// of 8 elements therefore holds, per (j, k), one byte; the 8 bytes for k = 0..7 form an 8x8 bit
// matrix whose transpose is byte j of the 8 elements.
void BitUnshuffle(std::size_t type_size, std::size_t nelem, const std::uint8_t* in,
                  std::uint8_t* out) {
  const std::size_t row = nelem / 8;  // bytes per bit row
  for (std::size_t j = 0; j < type_size; ++j) {
    const std::uint8_t* rows = in + j * 8 * row;
    for (std::size_t g = 0; g < row; ++g) {
      std::uint64_t x = 0;
      for (std::size_t k = 0; k < 8; ++k)
        x |= static_cast<std::uint64_t>(rows[k * row + g]) << (8 * k);
      x = Transpose8x8(x);
      std::uint8_t* dst = out + g * 8 * type_size + j;
      for (std::size_t m = 0; m < 8; ++m)
        dst[m * type_size] = static_cast<std::uint8_t>(x >> (8 * m));
    }
  }
}

}  // namespace lepus::io::filters
