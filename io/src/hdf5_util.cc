#include "lepus/io/internal/hdf5_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <system_error>

#include <unistd.h>

#include "filters/register.h"
#include "lepus/io/errors.h"

namespace lepus::io::h5 {

namespace {

// Closers with the signature Handle expects.
herr_t CloseFile(hid_t id) { return H5Fclose(id); }
herr_t CloseGroup(hid_t id) { return H5Gclose(id); }
herr_t CloseDataset(hid_t id) { return H5Dclose(id); }
herr_t CloseSpace(hid_t id) { return H5Sclose(id); }
herr_t CloseType(hid_t id) { return H5Tclose(id); }
herr_t CloseAttr(hid_t id) { return H5Aclose(id); }
herr_t CloseProps(hid_t id) { return H5Pclose(id); }
herr_t CloseObject(hid_t id) { return H5Oclose(id); }

// HDF5's low-level I/O errors carry the OS reason inside a long record ("file write failed:
// time = ..., filename = ..., errno = 28, error message = 'No space left on device', buf = ...");
// keep the operation and the OS reason only.
std::string CondenseHdf5Detail(const std::string& detail) {
  const std::string key = "error message = '";
  const auto m = detail.find(key);
  if (m == std::string::npos || detail.find("errno = ") == std::string::npos) return detail;
  const auto end = detail.find('\'', m + key.size());
  if (end == std::string::npos) return detail;
  const std::string reason = detail.substr(m + key.size(), end - m - key.size());
  const auto head_end = detail.find_first_of(":,");
  return detail.substr(0, head_end) + ": " + reason;
}

std::string WithHdf5Detail(const std::string& what) {
  const std::string detail = LastHdf5Error();
  return detail.empty() ? what : what + " (HDF5: " + detail + ")";
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

// H5Lexists needs every intermediate link to exist, so walk the path component by component.
bool PathExists(hid_t loc, const std::string& path) {
  std::string prefix;
  for (const auto& part : SplitPath(path)) {
    prefix += (prefix.empty() ? "" : "/") + part;
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

H5I_type_t ObjectType(hid_t loc, const std::string& path) {
  if (path != "/" && !PathExists(loc, path)) return H5I_BADID;
  Handle obj(H5Oopen(loc, path.c_str(), H5P_DEFAULT), CloseObject);
  if (!obj.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return H5I_BADID;
  }
  return H5Iget_type(obj.get());
}

std::string TypeClassName(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length sequence";
    case H5T_ARRAY:
      return "array";
    default:
      return "unknown";
  }
}

// Frees the memory HDF5 allocated for variable-length data on scope exit.
class VlenReclaimer {
 public:
  VlenReclaimer(hid_t mem_type, hid_t space, void* buf)
      : type_(mem_type), space_(space), buf_(buf) {}
  ~VlenReclaimer() {
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(type_, space_, H5P_DEFAULT, buf_);
#else
    H5Dvlen_reclaim(type_, space_, H5P_DEFAULT, buf_);
#endif
  }
  VlenReclaimer(const VlenReclaimer&) = delete;
  VlenReclaimer& operator=(const VlenReclaimer&) = delete;

 private:
  hid_t type_, space_;
  void* buf_;
};

// Fixed-length strings: cut at the first NUL, drop trailing blanks of space-padded strings.
std::vector<std::string> SplitFixed(const std::vector<char>& raw, std::size_t size,
                                    std::size_t count, H5T_str_t pad) {
  std::vector<std::string> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const char* p = raw.data() + i * size;
    std::size_t len = 0;
    while (len < size && p[len] != '\0') ++len;
    std::string s(p, len);
    if (pad == H5T_STR_SPACEPAD)
      while (!s.empty() && s.back() == ' ') s.pop_back();
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<hsize_t> ToHsize(const std::vector<std::int64_t>& dims) {
  return std::vector<hsize_t>(dims.begin(), dims.end());
}

}  // namespace

// ---------------------------------------------------------------------------------------------

ErrorSilencer::ErrorSilencer() {
  H5Eget_auto2(H5E_DEFAULT, &old_func_, &old_data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

ErrorSilencer::~ErrorSilencer() { H5Eset_auto2(H5E_DEFAULT, old_func_, old_data_); }

std::string LastHdf5Error() {
  std::string innermost;
  auto walker = [](unsigned, const H5E_error2_t* err, void* data) -> herr_t {
    // Walking downward, the last entry visited is the innermost (most specific) error.
    if (err != nullptr && err->desc != nullptr && err->desc[0] != '\0')
      *static_cast<std::string*>(data) = err->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walker, &innermost);
  H5Eclear2(H5E_DEFAULT);
  return CondenseHdf5Detail(innermost);
}

std::string ShapeString(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool CheckedMultiply(std::int64_t a, std::int64_t b, std::int64_t* out) {
  std::int64_t p = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &p)) return false;
  *out = p;
  return true;
}

std::int64_t ShapeSize(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape)
    if (!CheckedMultiply(n, d, &n)) return -1;
  return n;
}

std::uint64_t AvailableMemoryBytes() {
  // MemAvailable (kernel >= 3.14) estimates what can be allocated without swapping.
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (std::fgets(line, sizeof(line), f) != nullptr)
      if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
        found = true;
        break;
      }
    std::fclose(f);
    if (found) return static_cast<std::uint64_t>(kib) * 1024u;
  }
  const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  return 0;
}

namespace {
std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024.0 && u < 6) {
    b /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3g %s", b, units[u]);
  return buf;
}
}  // namespace

void CheckAllocation(const std::string& file, const std::string& dataset, std::int64_t count,
                     std::int64_t element_bytes, const std::string& what) {
  std::int64_t bytes = 0;
  const std::uint64_t avail = AvailableMemoryBytes();
  const std::string avail_text = avail > 0 ? std::to_string(avail) + " bytes (" +
                                                 HumanBytes(static_cast<double>(avail)) +
                                                 ") of memory are available (MemAvailable)"
                                           : "the available memory is unknown";
  if (!CheckedMultiply(count, element_bytes, &bytes))
    throw InputError(file + ": " + dataset + ": " + what + " needs " + std::to_string(count) +
                     " x " + std::to_string(element_bytes) +
                     " bytes, more than 2^63 bytes, but only " + avail_text);
  // Unknown availability (no /proc, no sysconf): let the allocation decide.
  if (avail == 0 || static_cast<std::uint64_t>(bytes) <= avail) return;
  throw InputError(file + ": " + dataset + ": " + what + " needs " + std::to_string(bytes) +
                   " bytes (" + HumanBytes(static_cast<double>(bytes)) + "), but only " +
                   avail_text);
}

bool IsValidUtf8(const std::string& s, std::size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto bad = [&](std::size_t at) {
    if (bad_offset != nullptr) *bad_offset = at;
    return false;
  };
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 table)
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return bad(i);
    }
    if (i + len > n) return bad(i);
    if (p[i + 1] < lo || p[i + 1] > hi) return bad(i + 1);
    for (std::size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return bad(i + k);
    i += len;
  }
  return true;
}

std::string EscapeBytes(const std::string& s) {
  std::string out;
  const std::size_t shown = std::min<std::size_t>(s.size(), 60);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (shown < s.size()) out += "...";
  return out;
}

std::string FilterName(H5Z_filter_t id) {
  switch (id) {
    case H5Z_FILTER_DEFLATE:
      return "gzip";
    case H5Z_FILTER_SHUFFLE:
      return "shuffle";
    case H5Z_FILTER_FLETCHER32:
      return "fletcher32";
    case H5Z_FILTER_SZIP:
      return "szip";
    case H5Z_FILTER_NBIT:
      return "nbit";
    case H5Z_FILTER_SCALEOFFSET:
      return "scaleoffset";
    case 305:
      return "lzo";
    case 307:
      return "bzip2";
    case 32000:
      return "lzf";
    case 32001:
      return "blosc";
    case 32004:
      return "lz4";
    case 32008:
      return "bitshuffle";
    case 32013:
      return "zfp";
    case 32015:
      return "zstd";
    case 32017:
      return "sz";
    case 32026:
      return "blosc2";
    default:
      return "unregistered filter";
  }
}

void CheckFilterAvailable(const std::string& file, const std::string& dataset, H5Z_filter_t id,
                          const std::string& name_in_file) {
  // lepus's in-process decoders and the plugin directory are set up before the first query.
  filters::InitializeHdf5Filters();
  // H5Zfilter_avail also tries to load a plugin from the plugin path for unknown ids.
  const htri_t avail = H5Zfilter_avail(id);
  H5Eclear2(H5E_DEFAULT);
  if (avail > 0) return;
  std::string name = FilterName(id);
  if (!name_in_file.empty() && name_in_file != name) name += ", stored as \"" + name_in_file + "\"";
  throw InputError(file + ": " + dataset + ": compression filter id " + std::to_string(id) + " (" +
                   name +
                   ") is not available in this HDF5 installation, but is needed to "
                   "read the dataset; install the HDF5 filter plugin and point HDF5_PLUGIN_PATH "
                   "at it, or rewrite the file with gzip or no compression");
}

// ---------------------------------------------------------------------------------------------
// InputFile

InputFile::InputFile(const std::string& path) : path_(path) {
  filters::InitializeHdf5Filters();  // before the first file is opened
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw InputError(path + ": file does not exist");
  if (std::filesystem::is_directory(status))
    throw InputError(path + ": is a directory, but must be an HDF5 file");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) throw InputError(path + ": is not an HDF5 file (no HDF5 signature found)");
  if (is_hdf5 < 0) throw InputError(path + ": " + WithHdf5Detail("cannot be read as an HDF5 file"));
  file_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), CloseFile);
  if (!file_.valid()) throw InputError(path + ": " + WithHdf5Detail("cannot open the HDF5 file"));
}

void InputFile::Fail(const std::string& where, const std::string& what) const {
  throw InputError(path_ + ": " + where + ": " + what);
}

bool InputFile::HasDataset(const std::string& name) const {
  return ObjectType(file_.get(), name) == H5I_DATASET;
}

bool InputFile::HasGroup(const std::string& name) const {
  return ObjectType(file_.get(), name) == H5I_GROUP;
}

std::vector<std::string> InputFile::ListMembers(const std::string& group) const {
  Handle g(H5Gopen2(file_.get(), group.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.valid()) Fail(group, WithHdf5Detail("cannot open the group"));
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0) Fail(group, WithHdf5Detail("cannot list the group"));
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len =
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) Fail(group, WithHdf5Detail("cannot read the name of member " + std::to_string(i)));
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

bool InputFile::HasAttribute(const std::string& object, const std::string& attr) const {
  if (object != "/" && !PathExists(file_.get(), object)) return false;
  const htri_t r = H5Aexists_by_name(file_.get(), object.c_str(), attr.c_str(), H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

Handle InputFile::OpenDataset(const std::string& name) const {
  const H5I_type_t type = ObjectType(file_.get(), name);
  if (type == H5I_BADID) Fail(name, "required dataset is missing");
  if (type != H5I_DATASET) Fail(name, "is a group, but must be a dataset");
  Handle dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), CloseDataset);
  if (!dset.valid()) Fail(name, WithHdf5Detail("cannot open the dataset"));

  // Check the filter pipeline up front: an unavailable filter otherwise surfaces as an opaque
  // read error deep inside H5Dread.
  Handle dcpl(H5Dget_create_plist(dset.get()), CloseProps);
  if (!dcpl.valid()) Fail(name, WithHdf5Detail("cannot read the dataset creation properties"));
  const int nfilters = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0, config = 0;
    std::size_t cd_nelmts = 0;
    char fname[256] = {0};
    const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &cd_nelmts,
                                           nullptr, sizeof(fname), fname, &config);
    if (id < 0) Fail(name, WithHdf5Detail("cannot read filter " + std::to_string(i)));
    CheckFilterAvailable(path_, name, id, fname);
    const std::string seen = FilterName(id);
    if (std::find(filters_seen_.begin(), filters_seen_.end(), seen) == filters_seen_.end())
      filters_seen_.push_back(seen);
  }
  return dset;
}

std::vector<std::int64_t> InputFile::StoredShape(hid_t dset, const std::string& name,
                                                 std::int64_t* npoints) const {
  Handle space(H5Dget_space(dset), CloseSpace);
  if (!space.valid()) Fail(name, WithHdf5Detail("cannot read the dataspace"));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) Fail(name, WithHdf5Detail("cannot read the dataspace size"));
  *npoints = H5Sget_simple_extent_type(space.get()) == H5S_NULL ? 0 : n;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<std::int64_t> shape;
  for (hsize_t d : dims) {
    if (d > static_cast<hsize_t>(INT64_MAX))
      Fail(name, "has a dimension of " + std::to_string(d) + ", more than 2^63 - 1");
    shape.push_back(static_cast<std::int64_t>(d));
  }
  if (*npoints > 0 && ShapeSize(shape) != *npoints)
    Fail(name, "has dimensions " + ShapeString(shape) + " whose product overflows 64 bits");

  if (HasAttribute(name, "original_shape")) {
    auto orig = ReadIntAttribute(name, "original_shape");
    for (std::size_t i = 0; i < orig.size(); ++i)
      if (orig[i] < 0)
        Fail(name, "original_shape[" + std::to_string(i) + "] is " + std::to_string(orig[i]) +
                       ", but must be >= 0");
    const std::int64_t size = ShapeSize(orig);
    if (size < 0)
      Fail(name, "original_shape is " + ShapeString(orig) +
                     ", whose product overflows 64 bits, but the dataset has " +
                     std::to_string(*npoints) + " elements");
    if (size != *npoints)
      Fail(name, "original_shape is " + ShapeString(orig) + " (" + std::to_string(size) +
                     " elements), but the dataset has " + std::to_string(*npoints) + " elements");
    shape = std::move(orig);
  }
  return shape;
}

Array<double> InputFile::ReadDouble(const std::string& name) const {
  Handle dset = OpenDataset(name);
  Handle type(H5Dget_type(dset.get()), CloseType);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    Fail(name, "has HDF5 type class " + TypeClassName(cls) + ", but must be numeric");
  Array<double> out;
  std::int64_t n = 0;
  out.shape = StoredShape(dset.get(), name, &n);
  CheckAllocation(path_, name, n, sizeof(double), "reading " + std::to_string(n) + " values");
  out.values.resize(static_cast<std::size_t>(n));
  if (n > 0 &&
      H5Dread(dset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data()) < 0)
    Fail(name, WithHdf5Detail("cannot read the data"));
  return out;
}

Array<std::int64_t> InputFile::ReadInt(const std::string& name) const {
  Handle dset = OpenDataset(name);
  Handle type(H5Dget_type(dset.get()), CloseType);
  const H5T_class_t cls = H5Tget_class(type.get());
  Array<std::int64_t> out;
  std::int64_t n = 0;
  out.shape = StoredShape(dset.get(), name, &n);
  // Float-stored indices go through a double buffer as well.
  CheckAllocation(path_, name, n, cls == H5T_FLOAT ? 16 : 8,
                  "reading " + std::to_string(n) + " values");
  out.values.resize(static_cast<std::size_t>(n));
  if (cls == H5T_INTEGER) {
    if (n > 0 &&
        H5Dread(dset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data()) < 0)
      Fail(name, WithHdf5Detail("cannot read the data"));
  } else if (cls == H5T_FLOAT) {
    // Some writers store indices as float64; accept them when they are exact integers.
    std::vector<double> tmp(static_cast<std::size_t>(n));
    if (n > 0 &&
        H5Dread(dset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp.data()) < 0)
      Fail(name, WithHdf5Detail("cannot read the data"));
    for (std::size_t i = 0; i < tmp.size(); ++i) {
      if (!(std::isfinite(tmp[i]) && tmp[i] == std::floor(tmp[i]) && std::abs(tmp[i]) < 9.0e18)) {
        std::ostringstream os;
        os.precision(17);
        os << tmp[i];
        Fail(name + "[" + std::to_string(i) + "]", "is " + os.str() + ", but must be an integer");
      }
      out.values[i] = static_cast<std::int64_t>(tmp[i]);
    }
  } else {
    Fail(name, "has HDF5 type class " + TypeClassName(cls) + ", but must be integer");
  }
  return out;
}

std::vector<std::string> InputFile::ReadStrings(const std::string& name) const {
  Handle dset = OpenDataset(name);
  Handle ftype(H5Dget_type(dset.get()), CloseType);
  if (H5Tget_class(ftype.get()) != H5T_STRING)
    Fail(name, "has HDF5 type class " + TypeClassName(H5Tget_class(ftype.get())) +
                   ", but must be string");
  Handle space(H5Dget_space(dset.get()), CloseSpace);
  const hssize_t npts = H5Sget_simple_extent_type(space.get()) == H5S_NULL
                            ? 0
                            : H5Sget_simple_extent_npoints(space.get());
  if (npts < 0) Fail(name, WithHdf5Detail("cannot read the dataspace"));
  const auto n = static_cast<std::size_t>(npts);
  if (n == 0) return {};
  // Pointers (variable length) or the fixed-length buffer, plus one std::string each.
  // (HDF5 limits a string type to 2^32 bytes; 40 bytes stand for the std::string itself.)
  const std::int64_t per_string =
      static_cast<std::int64_t>(std::min<std::size_t>(H5Tget_size(ftype.get()), 1ull << 40)) + 40;
  CheckAllocation(path_, name, npts, per_string, "reading " + std::to_string(npts) + " strings");

  const htri_t is_var = H5Tis_variable_str(ftype.get());
  if (is_var < 0) Fail(name, WithHdf5Detail("cannot inspect the string type"));
  if (is_var > 0) {
    Handle mtype(H5Tcopy(H5T_C_S1), CloseType);
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    std::vector<char*> buf(n, nullptr);
    if (H5Dread(dset.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
      Fail(name, WithHdf5Detail("cannot read the strings"));
    VlenReclaimer reclaim(mtype.get(), space.get(), buf.data());
    std::vector<std::string> out;
    out.reserve(n);
    for (char* s : buf) out.emplace_back(s != nullptr ? s : "");
    return out;
  }
  const std::size_t size = H5Tget_size(ftype.get());
  Handle mtype(H5Tcopy(ftype.get()), CloseType);
  std::vector<char> raw(n * size + 1, '\0');
  if (H5Dread(dset.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
    Fail(name, WithHdf5Detail("cannot read the strings"));
  return SplitFixed(raw, size, n, H5Tget_strpad(ftype.get()));
}

std::vector<std::vector<std::int64_t>> InputFile::ReadRaggedInt(const std::string& name) const {
  Handle dset = OpenDataset(name);
  Handle ftype(H5Dget_type(dset.get()), CloseType);
  if (H5Tget_class(ftype.get()) != H5T_VLEN)
    Fail(name, "has HDF5 type class " + TypeClassName(H5Tget_class(ftype.get())) +
                   ", but must be a variable-length integer sequence");
  Handle base(H5Tget_super(ftype.get()), CloseType);
  if (H5Tget_class(base.get()) != H5T_INTEGER)
    Fail(name, "is a variable-length sequence of " + TypeClassName(H5Tget_class(base.get())) +
                   ", but must be of integers");
  Handle space(H5Dget_space(dset.get()), CloseSpace);
  const hssize_t npts = H5Sget_simple_extent_type(space.get()) == H5S_NULL
                            ? 0
                            : H5Sget_simple_extent_npoints(space.get());
  if (npts < 0) Fail(name, WithHdf5Detail("cannot read the dataspace"));
  const auto n = static_cast<std::size_t>(npts);
  if (n == 0) return {};
  CheckAllocation(path_, name, npts, sizeof(hvl_t) + sizeof(std::vector<std::int64_t>),
                  "reading " + std::to_string(npts) + " sequences");
  Handle mtype(H5Tvlen_create(H5T_NATIVE_INT64), CloseType);
  std::vector<hvl_t> buf(n, hvl_t{0, nullptr});
  if (H5Dread(dset.get(), mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    Fail(name, WithHdf5Detail("cannot read the sequences"));
  VlenReclaimer reclaim(mtype.get(), space.get(), buf.data());
  std::vector<std::vector<std::int64_t>> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto* p = static_cast<const std::int64_t*>(buf[i].p);
    if (p != nullptr) out[i].assign(p, p + buf[i].len);
  }
  return out;
}

std::vector<std::int64_t> InputFile::ReadIntAttribute(const std::string& object,
                                                      const std::string& attr) const {
  return ReadNumericAttribute<std::int64_t>(object, attr, H5T_NATIVE_INT64, false);
}

std::vector<double> InputFile::ReadDoubleAttribute(const std::string& object,
                                                   const std::string& attr) const {
  return ReadNumericAttribute<double>(object, attr, H5T_NATIVE_DOUBLE, true);
}

template <typename T>
std::vector<T> InputFile::ReadNumericAttribute(const std::string& object, const std::string& attr,
                                               hid_t mem_type, bool float_ok) const {
  const std::string where = object == "/" ? "attribute " + attr : object + ": attribute " + attr;
  if (!HasAttribute(object, attr)) Fail(where, "is missing");
  Handle a(H5Aopen_by_name(file_.get(), object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT),
           CloseAttr);
  if (!a.valid()) Fail(where, WithHdf5Detail("cannot open"));
  Handle type(H5Aget_type(a.get()), CloseType);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && !(float_ok && cls == H5T_FLOAT))
    Fail(where, "has HDF5 type class " + TypeClassName(cls) + ", but must be " +
                    (float_ok ? "numeric" : "integer"));
  Handle space(H5Aget_space(a.get()), CloseSpace);
  const hssize_t n = H5Sget_simple_extent_type(space.get()) == H5S_NULL
                         ? 0
                         : H5Sget_simple_extent_npoints(space.get());
  if (n < 0) Fail(where, WithHdf5Detail("cannot read the dataspace"));
  CheckAllocation(path_, where, n, sizeof(T), "reading " + std::to_string(n) + " values");
  std::vector<T> out(static_cast<std::size_t>(n));
  if (n > 0 && H5Aread(a.get(), mem_type, out.data()) < 0)
    Fail(where, WithHdf5Detail("cannot read"));
  return out;
}

std::string InputFile::ReadStringAttribute(const std::string& object,
                                           const std::string& attr) const {
  const std::string where = object == "/" ? "attribute " + attr : object + ": attribute " + attr;
  if (!HasAttribute(object, attr)) Fail(where, "is missing");
  Handle a(H5Aopen_by_name(file_.get(), object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT),
           CloseAttr);
  if (!a.valid()) Fail(where, WithHdf5Detail("cannot open"));
  Handle ftype(H5Aget_type(a.get()), CloseType);
  if (H5Tget_class(ftype.get()) != H5T_STRING)
    Fail(where, "has HDF5 type class " + TypeClassName(H5Tget_class(ftype.get())) +
                    ", but must be string");
  Handle space(H5Aget_space(a.get()), CloseSpace);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n != 1) Fail(where, "has " + std::to_string(n) + " elements, but must hold one string");
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle mtype(H5Tcopy(H5T_C_S1), CloseType);
    H5Tset_size(mtype.get(), H5T_VARIABLE);
    H5Tset_cset(mtype.get(), H5Tget_cset(ftype.get()));
    char* buf = nullptr;
    if (H5Aread(a.get(), mtype.get(), &buf) < 0) Fail(where, WithHdf5Detail("cannot read"));
    VlenReclaimer reclaim(mtype.get(), space.get(), &buf);
    return buf != nullptr ? std::string(buf) : std::string();
  }
  const std::size_t size = H5Tget_size(ftype.get());
  Handle mtype(H5Tcopy(ftype.get()), CloseType);
  std::vector<char> raw(size + 1, '\0');
  if (H5Aread(a.get(), mtype.get(), raw.data()) < 0) Fail(where, WithHdf5Detail("cannot read"));
  return SplitFixed(raw, size, 1, H5Tget_strpad(ftype.get())).front();
}

// ---------------------------------------------------------------------------------------------
// OutputFile

OutputFile::OutputFile(const std::string& path) : path_(path) {
  file_ = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), CloseFile);
  if (!file_.valid()) throw InputError(path + ": " + WithHdf5Detail("cannot create the file"));
}

void OutputFile::Fail(const std::string& where, const std::string& what) const {
  throw InputError(path_ + ": " + where + ": " + what);
}

void OutputFile::CreateGroup(const std::string& name) {
  Handle g(H5Gcreate2(file_.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           CloseGroup);
  if (!g.valid()) Fail(name, WithHdf5Detail("cannot create the group"));
}

void OutputFile::WriteRaw(const std::string& name, hid_t file_type, hid_t mem_type,
                          const void* data, const std::vector<std::int64_t>& dims, int gzip_level) {
  const auto hdims = ToHsize(dims);
  Handle space(H5Screate_simple(static_cast<int>(hdims.size()), hdims.data(), nullptr), CloseSpace);
  if (!space.valid()) Fail(name, WithHdf5Detail("cannot create the dataspace"));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), CloseProps);
  const std::int64_t n = ShapeSize(dims);
  // Chunking needs non-zero chunk dims; compression only for 1-D (flattened) data. 256 Ki
  // elements per chunk (2 MiB of doubles) keeps the chunk cache effective.
  if (gzip_level > 0 && n > 0 && dims.size() == 1) {
    const hsize_t chunk = static_cast<hsize_t>(std::min<std::int64_t>(n, 262144));
    if (H5Pset_chunk(dcpl.get(), 1, &chunk) < 0 ||
        H5Pset_deflate(dcpl.get(), static_cast<unsigned>(std::clamp(gzip_level, 1, 9))) < 0)
      Fail(name, WithHdf5Detail("cannot set up gzip compression"));
  }
  Handle dset(H5Dcreate2(file_.get(), name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(),
                         H5P_DEFAULT),
              CloseDataset);
  if (!dset.valid()) Fail(name, WithHdf5Detail("cannot create the dataset"));
  if (n > 0 && H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    Fail(name, WithHdf5Detail("cannot write the dataset"));
}

void OutputFile::WriteDoubleFlat(const std::string& name, const double* data,
                                 const std::vector<std::int64_t>& shape, int gzip_level) {
  WriteRaw(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, {ShapeSize(shape)}, gzip_level);
  WriteInt64Attribute(name, "original_shape", shape);
}

void OutputFile::WriteInt64Flat(const std::string& name, const std::int64_t* data,
                                const std::vector<std::int64_t>& shape, int gzip_level) {
  WriteRaw(name, H5T_STD_I64LE, H5T_NATIVE_INT64, data, {ShapeSize(shape)}, gzip_level);
  WriteInt64Attribute(name, "original_shape", shape);
}

void OutputFile::WriteInt32Flat(const std::string& name, const std::int32_t* data,
                                const std::vector<std::int64_t>& shape) {
  WriteRaw(name, H5T_STD_I32LE, H5T_NATIVE_INT32, data, {ShapeSize(shape)}, 0);
  WriteInt64Attribute(name, "original_shape", shape);
}

void OutputFile::WriteDouble(const std::string& name, const double* data,
                             const std::vector<std::int64_t>& shape) {
  WriteRaw(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, shape, 0);
}

void OutputFile::WriteInt32(const std::string& name, const std::int32_t* data,
                            const std::vector<std::int64_t>& shape) {
  WriteRaw(name, H5T_STD_I32LE, H5T_NATIVE_INT32, data, shape, 0);
}

void OutputFile::WriteStrings(const std::string& name, const std::vector<std::string>& values) {
  Handle type(H5Tcopy(H5T_C_S1), CloseType);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  WriteRaw(name, type.get(), type.get(), ptrs.data(), {static_cast<std::int64_t>(values.size())},
           0);
}

void OutputFile::WriteRaggedInt32(const std::string& name,
                                  const std::vector<std::vector<int>>& values) {
  Handle ftype(H5Tvlen_create(H5T_STD_I32LE), CloseType);
  Handle mtype(H5Tvlen_create(H5T_NATIVE_INT), CloseType);
  std::vector<hvl_t> buf;
  buf.reserve(values.size());
  // HDF5 only reads through p, the const_cast does not lead to writes.
  for (const auto& v : values) buf.push_back(hvl_t{v.size(), const_cast<int*>(v.data())});
  WriteRaw(name, ftype.get(), mtype.get(), buf.data(), {static_cast<std::int64_t>(values.size())},
           0);
}

void OutputFile::WriteInt64Attribute(const std::string& object, const std::string& attr,
                                     const std::vector<std::int64_t>& values) {
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), CloseSpace);
  Handle a(H5Acreate_by_name(file_.get(), object.c_str(), attr.c_str(), H5T_STD_I64LE, space.get(),
                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           CloseAttr);
  if (!a.valid()) Fail(object, WithHdf5Detail("cannot create attribute " + attr));
  if (n > 0 && H5Awrite(a.get(), H5T_NATIVE_INT64, values.data()) < 0)
    Fail(object, WithHdf5Detail("cannot write attribute " + attr));
}

void OutputFile::WriteUInt64Attribute(const std::string& object, const std::string& attr,
                                      const std::vector<std::uint64_t>& values) {
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), CloseSpace);
  Handle a(H5Acreate_by_name(file_.get(), object.c_str(), attr.c_str(), H5T_STD_U64LE, space.get(),
                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           CloseAttr);
  if (!a.valid()) Fail(object, WithHdf5Detail("cannot create attribute " + attr));
  if (n > 0 && H5Awrite(a.get(), H5T_NATIVE_UINT64, values.data()) < 0)
    Fail(object, WithHdf5Detail("cannot write attribute " + attr));
}

void OutputFile::WriteDoubleAttribute(const std::string& object, const std::string& attr,
                                      double value) {
  Handle space(H5Screate(H5S_SCALAR), CloseSpace);
  Handle a(H5Acreate_by_name(file_.get(), object.c_str(), attr.c_str(), H5T_IEEE_F64LE, space.get(),
                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           CloseAttr);
  if (!a.valid()) Fail(object, WithHdf5Detail("cannot create attribute " + attr));
  if (H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    Fail(object, WithHdf5Detail("cannot write attribute " + attr));
}

void OutputFile::WriteStringAttribute(const std::string& object, const std::string& attr,
                                      const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), CloseType);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), CloseSpace);
  Handle a(H5Acreate_by_name(file_.get(), object.c_str(), attr.c_str(), type.get(), space.get(),
                             H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           CloseAttr);
  if (!a.valid()) Fail(object, WithHdf5Detail("cannot create attribute " + attr));
  const char* ptr = value.c_str();
  if (H5Awrite(a.get(), type.get(), &ptr) < 0)
    Fail(object, WithHdf5Detail("cannot write attribute " + attr));
}

void OutputFile::Close() {
  if (!file_.valid()) return;
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0 || file_.Close() < 0)
    throw InputError(path_ + ": " + WithHdf5Detail("cannot flush and close the file"));
}

}  // namespace lepus::io::h5
