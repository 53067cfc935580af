// HDF5 side of lepus's compression-filter support (private to lepus::io).
//
// InitializeHdf5Filters() runs once per process (thread-safe, std::call_once), before the first
// HDF5 file is opened (io::h5::InputFile calls it):
//   * when HDF5_PLUGIN_PATH is unset, the directory of the distribution's HDF5 filter plugins
//     (Debian: /usr/lib/<arch>/hdf5/serial/plugins, fixed at configure time from the HDF5
//     library found) is appended to HDF5's plugin search path unless it is already on it;
//   * decode-only filters are registered in-process with H5Zregister for the filters Debian 12
//     does not ship as working plugins: Blosc2 (32026), Zstd (32015), Bitshuffle (32008, with
//     its LZ4 or Zstd compression) and LZF (32000). Registered filters take precedence over
//     plugins with the same id.
// A decoding failure pushes "<name> filter (HDF5 filter <id>): <reason>" on the HDF5 error
// stack, which InputFile reports as "<file>: <dataset>: cannot read the data (HDF5: ...)".
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "filters/codecs.h"

namespace lepus::io::filters {

void InitializeHdf5Filters();

// True for the ids InitializeHdf5Filters registers.
bool IsInProcessFilter(H5Z_filter_t id);

// The directory appended to the plugin path (compiled in); "" when unknown.
std::string DistributionPluginDir();

// The decoders behind the registered filters, on one chunk as HDF5 hands it to the filter
// (cd_values as stored in the dataset's pipeline); throw FilterError. Exposed for tests.
Buffer DecodeBitshuffleChunk(const unsigned* cd_values, std::size_t cd_nelmts,
                             const std::uint8_t* in, std::size_t in_size);
Buffer DecodeLzfChunk(const unsigned* cd_values, std::size_t cd_nelmts, const std::uint8_t* in,
                      std::size_t in_size);

// Upper bound on a decoded chunk: HDF5 limits chunks to 2^32 - 1 bytes.
constexpr std::size_t kMaxChunkBytes = 0xFFFFFFFFu;

}  // namespace lepus::io::filters
