// Internal RAII layer over the HDF5 C API, shared by lepus::io and the event files of lepus::models
// (target lepus_io_internal; not installed, not part of the API).
//
// Every failure becomes an InputError of the form "<file>: <dataset>: <what>" with the innermost
// HDF5 error description appended where there is one; the automatic HDF5 error-stack printing is
// switched off while a file object is alive (and restored afterwards), so nothing is printed to
// stderr behind the caller's back.
//
// Numeric arrays are read in rabbit's layout as well as natively shaped: a dataset with an int64
// attribute `original_shape` is a flattened array of that shape; otherwise the dataspace gives
// the shape. Values are returned row-major (C order), as HDF5 and numpy store them.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lepus::io::h5 {

// Owns one hid_t and closes it with the matching H5*close function. Move-only.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() noexcept = default;
  Handle(hid_t id, Closer closer) noexcept : id_(id), closer_(closer) {}
  ~Handle() { Reset(); }
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) {
    other.id_ = H5I_INVALID_HID;
  }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      Reset();
      id_ = other.id_;
      closer_ = other.closer_;
      other.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  // Closes now; returns the closer's status (negative on failure, e.g. a failed final flush).
  herr_t Close() noexcept {
    herr_t status = 0;
    if (id_ >= 0 && closer_ != nullptr) status = closer_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }
  void Reset() noexcept { Close(); }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Switches off HDF5's automatic error printing for its lifetime and restores the previous
// handler afterwards (nesting is fine).
class ErrorSilencer {
 public:
  ErrorSilencer();
  ~ErrorSilencer();
  ErrorSilencer(const ErrorSilencer&) = delete;
  ErrorSilencer& operator=(const ErrorSilencer&) = delete;

 private:
  H5E_auto2_t old_func_ = nullptr;
  void* old_data_ = nullptr;
};

// The innermost description on the current HDF5 error stack (then cleared); "" if empty.
std::string LastHdf5Error();

// "[3, 4]"
std::string ShapeString(const std::vector<std::int64_t>& shape);
// Product of the dimensions; -1 when a dimension is negative or the product overflows int64
// (declared shapes come from files and may be absurd).
std::int64_t ShapeSize(const std::vector<std::int64_t>& shape);
// a * b into *out; false (and *out untouched) when either is negative or the product overflows.
bool CheckedMultiply(std::int64_t a, std::int64_t b, std::int64_t* out);

// Memory available for new allocations, in bytes: MemAvailable of /proc/meminfo, or
// sysconf(_SC_AVPHYS_PAGES) x page size where that is missing; 0 if neither is known.
std::uint64_t AvailableMemoryBytes();
// Throws InputError "<file>: <dataset>: <what> needs <bytes> bytes (<human>), but only <avail>
// bytes of memory are available (MemAvailable)" when count x element_bytes overflows or exceeds
// the available memory. Called with sizes declared by a file before anything is allocated, so a
// forged size is an input error instead of std::bad_alloc. `what` says what would be allocated.
void CheckAllocation(const std::string& file, const std::string& dataset, std::int64_t count,
                     std::int64_t element_bytes, const std::string& what);

// True when `s` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF);
// otherwise *bad_offset receives the offset of the first invalid byte.
bool IsValidUtf8(const std::string& s, std::size_t* bad_offset = nullptr);
// `s` for a message: printable ASCII as is, every other byte as \xNN; at most 60 bytes shown.
std::string EscapeBytes(const std::string& s);

// Human name of an HDF5 filter id: built-ins (deflate is reported as "gzip") and the registered
// third-party ids rabbit users meet (32001 blosc, 32004 lz4, 32015 zstd, 32026 blosc2, ...).
std::string FilterName(H5Z_filter_t id);
// Throws InputError "<file>: <dataset>: compression filter <id> (<name>) is not available ..."
// unless HDF5 can decode `id`: built in, registered in-process by lepus (filters/register.h:
// blosc2, zstd, bitshuffle, lzf) or loadable as a plugin (HDF5_PLUGIN_PATH, else HDF5's default
// path plus the distribution's plugin directory). `name_in_file` is
// the name stored in the dataset's pipeline ("" if none).
void CheckFilterAvailable(const std::string& file, const std::string& dataset, H5Z_filter_t id,
                          const std::string& name_in_file);

template <typename T>
struct Array {
  std::vector<T> values;            // row-major
  std::vector<std::int64_t> shape;  // original_shape if present, else the dataspace dims
};

// Read side. All lookups take slash-separated paths relative to the root ("hnorm_sparse/values").
class InputFile {
 public:
  // Throws InputError for a missing file, a directory, a file without the HDF5 signature and
  // any failure to open it.
  explicit InputFile(const std::string& path);

  const std::string& path() const { return path_; }
  bool HasDataset(const std::string& name) const;
  bool HasGroup(const std::string& name) const;
  // Names of the links in a group ("/" = root), in HDF5's name order. Throws InputError when the
  // group cannot be listed.
  std::vector<std::string> ListMembers(const std::string& group) const;
  // object "/" is the root group.
  bool HasAttribute(const std::string& object, const std::string& attr) const;

  // Any integer or floating-point type, converted to double.
  Array<double> ReadDouble(const std::string& name) const;
  // Any integer type, or a floating-point type holding integral values, as int64.
  Array<std::int64_t> ReadInt(const std::string& name) const;
  // Variable-length or fixed-length strings (any padding), as a flat list.
  std::vector<std::string> ReadStrings(const std::string& name) const;
  // Ragged variable-length integer sequences (rabbit's hsystgroupidxs).
  std::vector<std::vector<std::int64_t>> ReadRaggedInt(const std::string& name) const;

  std::vector<std::int64_t> ReadIntAttribute(const std::string& object,
                                             const std::string& attr) const;
  // Any integer or floating-point attribute, converted to double (all its elements).
  std::vector<double> ReadDoubleAttribute(const std::string& object, const std::string& attr) const;
  // A scalar or single-element string attribute, variable- or fixed-length.
  std::string ReadStringAttribute(const std::string& object, const std::string& attr) const;

  // Filters seen in the pipelines of the datasets read so far (unique names, "gzip", ...).
  const std::vector<std::string>& filters_seen() const { return filters_seen_; }

  // Throws InputError("<file>: <where>: <what>").
  [[noreturn]] void Fail(const std::string& where, const std::string& what) const;

 private:
  Handle OpenDataset(const std::string& name) const;  // existence + filter check
  // Every element of an integer (or, with float_ok, floating-point) attribute as `mem_type`.
  template <typename T>
  std::vector<T> ReadNumericAttribute(const std::string& object, const std::string& attr,
                                      hid_t mem_type, bool float_ok) const;
  std::vector<std::int64_t> StoredShape(hid_t dset, const std::string& name,
                                        std::int64_t* npoints) const;

  ErrorSilencer silencer_;
  std::string path_;
  Handle file_;
  mutable std::vector<std::string> filters_seen_;
};

// Write side. Creates (truncates) the file; Close() must be called to detect flush failures.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);

  const std::string& path() const { return path_; }
  void CreateGroup(const std::string& name);

  // Flattened 1-D datasets with the int64 attribute original_shape = shape (rabbit's layout).
  // gzip_level > 0: chunked and deflate-compressed.
  void WriteDoubleFlat(const std::string& name, const double* data,
                       const std::vector<std::int64_t>& shape, int gzip_level = 0);
  void WriteInt64Flat(const std::string& name, const std::int64_t* data,
                      const std::vector<std::int64_t>& shape, int gzip_level = 0);
  void WriteInt32Flat(const std::string& name, const std::int32_t* data,
                      const std::vector<std::int64_t>& shape);
  // Natively shaped (row-major data), no original_shape attribute; used for results files.
  void WriteDouble(const std::string& name, const double* data,
                   const std::vector<std::int64_t>& shape);
  void WriteInt32(const std::string& name, const std::int32_t* data,
                  const std::vector<std::int64_t>& shape);
  // 1-D variable-length UTF-8 strings.
  void WriteStrings(const std::string& name, const std::vector<std::string>& values);
  // 1-D variable-length int32 sequences.
  void WriteRaggedInt32(const std::string& name, const std::vector<std::vector<int>>& values);

  void WriteInt64Attribute(const std::string& object, const std::string& attr,
                           const std::vector<std::int64_t>& values);
  // H5T_STD_U64LE (e.g. random seeds, which use the full unsigned 64-bit range).
  void WriteUInt64Attribute(const std::string& object, const std::string& attr,
                            const std::vector<std::uint64_t>& values);
  void WriteDoubleAttribute(const std::string& object, const std::string& attr, double value);
  // Scalar variable-length UTF-8 string attribute (stored on the global heap, so no 64 KiB
  // attribute-size limit).
  void WriteStringAttribute(const std::string& object, const std::string& attr,
                            const std::string& value);

  // Flushes and closes; throws InputError on failure.
  void Close();

  [[noreturn]] void Fail(const std::string& where, const std::string& what) const;

 private:
  void WriteRaw(const std::string& name, hid_t file_type, hid_t mem_type, const void* data,
                const std::vector<std::int64_t>& dims, int gzip_level);

  ErrorSilencer silencer_;
  std::string path_;
  Handle file_;
};

}  // namespace lepus::io::h5
