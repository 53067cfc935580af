// Writes rabbit-layout fit inputs carrying a pickled `meta` group, for the rabbit-meta tests
// (tests/io/rabbit_meta_test.cc) and the CLI test (tests/cli/inspect_rabbit_test.sh, through
// lepus_make_rabbit_file). The tensor is a synthetic model written by lepus; its meta_json is
// removed and the pickle bytes (made by Python's pickle, tests/data/rabbit_meta/make_pickles.py)
// are stored the way wums.ioutils.pickle_dump_h5py stores them: a group `meta` with the integer
// attribute narf_h5py_pickle_protocol_version = 1 and a resizable, chunked uint8 dataset
// `meta/pickle_data`. wums compresses it with Blosc/LZ4 (hdf5plugin), which is not available
// here; gzip stands in (the reader checks filters the same way for both).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "lepus/engine/model.h"
#include "lepus/io/writer.h"
#include "lepus/models/synthetic.h"

namespace lepus::test::rabbit {

inline std::vector<std::uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Stores `bytes` as wums does; `version` < 0 leaves the attribute out.
inline void WritePickleGroup(const std::string& path, const std::vector<std::uint8_t>& bytes,
                             std::int64_t version = 1) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (file < 0) throw std::runtime_error("cannot open " + path);
  if (H5Aexists(file, "meta_json") > 0) H5Adelete(file, "meta_json");
  hid_t group = H5Gcreate2(file, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (version >= 0) {
    hid_t aspace = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(group, "narf_h5py_pickle_protocol_version", H5T_STD_I64LE, aspace,
                            H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT64, &version);
    H5Aclose(attr);
    H5Sclose(aspace);
  }
  hsize_t dims = bytes.size(), maxdims = H5S_UNLIMITED, chunk = 1024 * 1024;
  hid_t space = H5Screate_simple(1, &dims, &maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, &chunk);
  H5Pset_deflate(dcpl, 4);
  hid_t dset =
      H5Dcreate2(group, "pickle_data", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0) throw std::runtime_error("cannot create meta/pickle_data in " + path);
  if (!bytes.empty()) H5Dwrite(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data());
  H5Dclose(dset);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Gclose(group);
  H5Fclose(file);
}

// The tensor matching the fixtures' channel_info: 63 fitted bins (sig 48, ctl 9, tr 6) and 12
// masked ones (gen).
inline engine::Model FixtureModel(engine::SystematicType type, bool asymmetric) {
  models::SyntheticSpec spec;
  spec.nbins = 63;
  spec.nmasked = 12;
  spec.nproc = 3;
  spec.nsignal = 1;
  spec.nsyst = 4;
  spec.type = type;
  spec.asymmetric = asymmetric;
  spec.seed = 18;
  return models::MakeSyntheticModel(spec);
}

inline void WriteRabbitFile(const std::string& pickle_path, const std::string& out,
                            engine::SystematicType type = engine::SystematicType::kLogNormal,
                            bool asymmetric = false) {
  io::WriteFitInput(FixtureModel(type, asymmetric), out);
  WritePickleGroup(out, ReadBytes(pickle_path));
}

}  // namespace lepus::test::rabbit
