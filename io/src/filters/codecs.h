// Decode-only building blocks of lepus's in-process HDF5 filters (private to lepus::io).
//
// Everything here works on untrusted bytes from a file: every offset and length is checked
// against the buffer it points into, and every failure throws FilterError with a message that
// names the feature or the inconsistency ("stream 2 of block 5: compressed size 4096 runs past
// the end of the chunk (...)"). Nothing here knows about HDF5; filters/register.cc turns the
// errors into HDF5 error-stack entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace lepus::io::filters {

class FilterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A malloc'ed byte buffer: HDF5's filter pipeline takes ownership of filter output allocated
// with malloc (and frees its input with free), like every third-party filter plugin does.
class Buffer {
 public:
  Buffer() = default;
  // Throws FilterError when the allocation fails.
  explicit Buffer(std::size_t size);
  std::uint8_t* data() { return data_.get(); }
  const std::uint8_t* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  // Hands the memory to the caller (to be released with free()).
  std::uint8_t* release() {
    size_ = 0;
    return data_.release();
  }

 private:
  struct Free {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint8_t, Free> data_;
  std::size_t size_ = 0;
};

// Little- and big-endian loads from possibly unaligned memory.
std::uint32_t LoadLe32(const std::uint8_t* p);
std::uint64_t LoadLe64(const std::uint8_t* p);
std::uint32_t LoadBe32(const std::uint8_t* p);
std::uint64_t LoadBe64(const std::uint8_t* p);

// Decoders of one compressed stream into exactly `out_size` bytes; each throws FilterError
// naming the codec when the stream is corrupt or decodes to another size.
void Lz4Decode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
               std::size_t out_size);
void ZlibDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                std::size_t out_size);
void ZstdDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                std::size_t out_size);
// BloscLZ, Blosc's own LZ77 codec.
void BloscLzDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                   std::size_t out_size);
// LZF (liblzf's format): returns the number of bytes written; throws when the stream is
// corrupt or does not fit into out_size bytes.
std::size_t LzfDecode(const std::uint8_t* in, std::size_t in_size, std::uint8_t* out,
                      std::size_t out_size);

// One or more concatenated zstd frames (the HDF5 zstd filter's chunk: one frame) of unknown
// decoded size, decoded by streaming; `max_size` bounds the output (throws beyond it).
Buffer ZstdDecodeFrames(const std::uint8_t* in, std::size_t in_size, std::size_t max_size);

// Byte unshuffle: `size` bytes shuffled in groups of `type_size` (all first bytes, then all
// second bytes, ...); a tail of size % type_size bytes is stored as is.
void Unshuffle(std::size_t type_size, std::size_t size, const std::uint8_t* in, std::uint8_t* out);
// Bit unshuffle (the inverse bit transpose of the bitshuffle library) of `nelem` elements of
// `type_size` bytes; nelem must be a multiple of 8.
void BitUnshuffle(std::size_t type_size, std::size_t nelem, const std::uint8_t* in,
                  std::uint8_t* out);

}  // namespace lepus::io::filters
