// Decoder of the data the HDF5 Blosc2 filter (id 32026) stores per HDF5 chunk (private to
// lepus::io): a Blosc2 contiguous frame ("b2frame", what hdf5plugin / PyTables' hdf5-blosc2
// write: a super-chunk serialised with blosc2_schunk_to_buffer) or a bare Blosc2/Blosc1 chunk.
//
// Supported (docs/format.md, "Compression filters"): chunk formats 1 to 6 (Blosc1 and Blosc2
// headers, extended header); codecs BloscLZ, LZ4, LZ4HC, Zlib, Zstd; the filter pipeline
// shuffle (also with a byte-group size in filters_meta), bitshuffle, delta (as the last step of
// decoding), truncprec (nothing to undo); split and unsplit blocks; streams of zeros and of a
// repeated byte; memcpyed chunks; special chunks (zeros, NaN, a repeated value, uninitialised
// = zeros) and special chunk offsets in frames. Refused with FilterError naming the feature:
// dictionaries, lazy chunks, variable-length blocks, user-defined codecs and filters, the
// B2ND (multidimensional) metalayer, frame versions above 3, chunk formats above 6, sparse
// (directory) frames, chunk-offset widths other than 64 bits, and every inconsistency of sizes
// and offsets (each bounded against the buffer before it is read).
#pragma once

#include <cstddef>
#include <cstdint>

#include "filters/codecs.h"

namespace lepus::io::filters {

// Decodes one HDF5 chunk as stored by the Blosc2 filter. `max_size` bounds the decoded size.
Buffer DecodeBlosc2(const std::uint8_t* in, std::size_t in_size, std::size_t max_size);

// Decodes one Blosc chunk (header + blocks) of exactly `avail` or fewer bytes (the header's
// cbytes must fit). Used for the frame's chunks and its offsets index, and by tests.
Buffer DecodeBloscChunk(const std::uint8_t* in, std::size_t avail, std::size_t max_size);

}  // namespace lepus::io::filters
