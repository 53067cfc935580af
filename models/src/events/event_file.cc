#include "lepus/models/event_file.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>
#include <unordered_map>

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include "lepus/io/errors.h"
#include "lepus/io/internal/hdf5_util.h"  // io's private RAII layer (Handle, ErrorSilencer, InputFile, ...)
#include "lepus/io/output.h"
#include "lepus/models/generator.h"

namespace lepus::models {

using io::InputError;
using io::h5::Handle;

namespace {

constexpr const char* kGroup = "events";

std::string Detail(const std::string& what) {
  const std::string d = io::h5::LastHdf5Error();
  return d.empty() ? what : what + " (HDF5: " + d + ")";
}

// File and memory types of a column.
hid_t FileType(ColumnType t) {
  switch (t) {
    case ColumnType::kFloat64:
      return H5T_IEEE_F64LE;
    case ColumnType::kInt8:
      return H5T_STD_I8LE;
    case ColumnType::kUInt64:
      return H5T_STD_U64LE;
    case ColumnType::kProcess:
      return H5T_STD_U8LE;
  }
  return H5T_IEEE_F64LE;
}

template <typename T>
hid_t MemType() {
  if constexpr (std::is_same_v<T, double>) return H5T_NATIVE_DOUBLE;
  if constexpr (std::is_same_v<T, std::int8_t>) return H5T_NATIVE_INT8;
  if constexpr (std::is_same_v<T, std::uint64_t>) return H5T_NATIVE_UINT64;
  if constexpr (std::is_same_v<T, Process>) return H5T_NATIVE_UINT8;
  return H5T_NATIVE_DOUBLE;
}

std::string ColumnPath(const ColumnSpec& c) { return std::string(kGroup) + "/" + c.name; }

std::string TypeClassName(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "floating-point";
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length sequence";
    case H5T_ARRAY:
      return "array";
    default:
      return "non-numeric";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Metadata

EventFileMetadata MakeEventFileMetadata(const Generator& generator, const std::string& creator) {
  const GeneratorConfig& c = generator.config();
  EventFileMetadata m;
  m.sample = c.sample;
  for (Process p : c.processes) {
    if (!m.processes.empty()) m.processes += ",";
    m.processes += ToString(p);
  }
  m.seed = c.seed;
  m.luminosity_pb = c.luminosity_pb;
  m.generator_params = c.physics.ToJson();
  m.detector_params = c.detector.ToJson();
  nlohmann::ordered_json n;
  for (Process p : c.processes) n[ToString(p)] = generator.NumEvents(p);
  m.events_generated = n.dump();
  m.filter = nlohmann::ordered_json{{"min_muons", c.filter.min_muons},
                                    {"min_pt", c.filter.min_pt},
                                    {"simulate_detector", c.simulate_detector}}
                 .dump();
  m.creator = creator;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Writer

struct EventFileWriter::Impl {
  io::h5::ErrorSilencer silencer;
  // The temporary file beside the target (removed unless Close() commits it); declared before
  // `file` so the HDF5 handle is closed before the temporary is removed.
  std::optional<io::AtomicOutput> out;
  Handle file;
  std::vector<Handle> datasets;  // EventColumns() order
  bool closed = false;
  // Chunks are shuffled and deflated here, in parallel, and stored with H5Dwrite_chunk (HDF5's
  // own filter pipeline is serial); readers decode them with the standard filters declared on
  // the datasets. `pending` holds the raw bytes of the events not yet in a full chunk.
  EventFileWriterOptions options;
  std::vector<std::size_t> elem_size;
  std::vector<std::vector<unsigned char>> pending;
  std::int64_t events_in_chunks = 0;  // events stored in written chunks

  // Compresses and writes the first `nchunks` chunks of `pending` (the last one may be partial
  // when `partial_events` > 0: it is zero-padded and the extent set to the true length).
  void WriteChunks(const std::string& final_path, std::size_t nchunks, std::size_t partial_events);

  [[noreturn]] void Fail(const std::string& final_path, const std::string& where,
                         const std::string& what) const {
    throw InputError(final_path + ": " + (where.empty() ? "" : where + ": ") + Detail(what));
  }

  void WriteStringAttribute(const std::string& final_path, const char* name,
                            const std::string& value) {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate2(file.get(), name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
    const char* ptr = value.c_str();
    if (!a.valid() || H5Awrite(a.get(), type.get(), &ptr) < 0)
      Fail(final_path, std::string("attribute ") + name, "cannot write the attribute");
  }
  template <typename T>
  void WriteScalarAttribute(const std::string& final_path, const char* name, hid_t file_type,
                            hid_t mem_type, T value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate2(file.get(), name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
    if (!a.valid() || H5Awrite(a.get(), mem_type, &value) < 0)
      Fail(final_path, std::string("attribute ") + name, "cannot write the attribute");
  }
};

EventFileWriter::EventFileWriter(std::string path, const EventFileMetadata& metadata,
                                 const EventFileWriterOptions& options)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()) {
  if (options.gzip_level < 0 || options.gzip_level > 9)
    throw std::invalid_argument("EventFileWriterOptions: gzip_level is " +
                                std::to_string(options.gzip_level) + ", but must be in [0, 9]");
  if (options.chunk_events == 0)
    throw std::invalid_argument("EventFileWriterOptions: chunk_events is 0, but must be > 0");
  {
    std::error_code ec;
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
      throw InputError(path_ + ": the directory " + parent.string() + " does not exist");
  }
  Impl& w = *impl_;
  w.out.emplace(path_);
  w.file = Handle(H5Fcreate(w.out->temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                  H5Fclose);
  if (!w.file.valid()) w.Fail(path_, "", "cannot create the file");

  w.WriteScalarAttribute<std::int64_t>(path_, "schema_version", H5T_STD_I64LE, H5T_NATIVE_INT64,
                                       kEventSchemaVersion);
  w.WriteStringAttribute(path_, "sample", ToString(metadata.sample));
  w.WriteStringAttribute(path_, "process", metadata.processes);
  w.WriteScalarAttribute<std::uint64_t>(path_, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                                        metadata.seed);
  w.WriteScalarAttribute<double>(path_, "luminosity_pb", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                                 metadata.luminosity_pb);
  w.WriteStringAttribute(path_, "generator_params", metadata.generator_params);
  w.WriteStringAttribute(path_, "detector_params", metadata.detector_params);
  w.WriteStringAttribute(path_, "events_generated", metadata.events_generated);
  w.WriteStringAttribute(path_, "filter", metadata.filter);
  w.WriteStringAttribute(path_, "creator", metadata.creator);

  Handle group(H5Gcreate2(w.file.get(), kGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!group.valid()) w.Fail(path_, kGroup, "cannot create the group");
  for (const ColumnSpec& c : EventColumns()) {
    const hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = options.chunk_events;
    Handle space(H5Screate_simple(1, &dims, &maxdims), H5Sclose);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(dcpl.get(), 1, &chunk);
    if (options.gzip_level > 0) {
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.gzip_level));
    }
    Handle d(H5Dcreate2(group.get(), c.name, FileType(c.type), space.get(), H5P_DEFAULT, dcpl.get(),
                        H5P_DEFAULT),
             H5Dclose);
    if (!d.valid()) w.Fail(path_, ColumnPath(c), "cannot create the dataset");
    w.datasets.push_back(std::move(d));
    w.elem_size.push_back(H5Tget_size(FileType(c.type)));
  }
  w.options = options;
  w.pending.resize(w.datasets.size());
}

void EventFileWriter::Impl::WriteChunks(const std::string& final_path, std::size_t nchunks,
                                        std::size_t partial_events) {
  if (nchunks == 0) return;
  const std::size_t ncols = datasets.size(), chunk = options.chunk_events;
  std::vector<std::vector<unsigned char>> out(ncols * nchunks);
  auto compress = [&](std::size_t job) {
    const std::size_t c = job / nchunks, k = job % nchunks, s = elem_size[c];
    const std::size_t bytes = chunk * s;
    std::vector<unsigned char> raw(bytes, 0);
    const std::size_t have = std::min(bytes, pending[c].size() - k * bytes);
    std::memcpy(raw.data(), pending[c].data() + k * bytes, have);
    std::vector<unsigned char>& dst = out[job];
    if (options.gzip_level == 0) {
      dst = std::move(raw);
      return;
    }
    // HDF5's shuffle filter: byte j of element i goes to j * n + i.
    std::vector<unsigned char> shuffled(bytes);
    for (std::size_t i = 0; i < chunk; ++i)
      for (std::size_t j = 0; j < s; ++j) shuffled[j * chunk + i] = raw[i * s + j];
    uLongf len = compressBound(static_cast<uLong>(bytes));
    dst.resize(len);
    if (compress2(dst.data(), &len, shuffled.data(), static_cast<uLong>(bytes),
                  options.gzip_level) != Z_OK)
      dst.clear();  // reported below, on the calling thread
    else
      dst.resize(len);
  };
  tbb::task_arena arena(options.num_threads > 0 ? options.num_threads : tbb::task_arena::automatic);
  arena.execute([&] { tbb::parallel_for(std::size_t{0}, ncols * nchunks, compress); });

  const std::size_t full_events = (nchunks - (partial_events > 0 ? 1 : 0)) * chunk;
  const hsize_t new_n = static_cast<hsize_t>(events_in_chunks) + full_events + partial_events;
  const std::vector<ColumnSpec>& cols = EventColumns();
  for (std::size_t c = 0; c < ncols; ++c) {
    const hid_t d = datasets[c].get();
    if (H5Dset_extent(d, &new_n) < 0)
      Fail(final_path, ColumnPath(cols[c]), "cannot extend the dataset");
    for (std::size_t k = 0; k < nchunks; ++k) {
      const std::vector<unsigned char>& data = out[c * nchunks + k];
      if (data.empty()) Fail(final_path, ColumnPath(cols[c]), "zlib compression failed");
      const hsize_t offset = static_cast<hsize_t>(events_in_chunks) + k * chunk;
      if (H5Dwrite_chunk(d, H5P_DEFAULT, 0, &offset, data.size(), data.data()) < 0)
        Fail(final_path, ColumnPath(cols[c]), "cannot write the data");
    }
    const std::size_t consumed = std::min(pending[c].size(), nchunks * chunk * elem_size[c]);
    pending[c].erase(pending[c].begin(),
                     pending[c].begin() + static_cast<std::ptrdiff_t>(consumed));
  }
  events_in_chunks = static_cast<std::int64_t>(new_n);
}

EventFileWriter::~EventFileWriter() {
  if (impl_ && !impl_->closed) {
    impl_->datasets.clear();
    impl_->file.Close();
    if (impl_->out) impl_->out->Discard();
  }
}

void EventFileWriter::Append(const EventBatch& batch) {
  if (batch.empty()) return;
  Impl& w = *impl_;
  if (w.closed) throw std::logic_error("EventFileWriter::Append after Close");
  std::size_t k = 0;
  VisitColumns(batch, [&](const ColumnSpec&, const auto& v) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
    std::vector<unsigned char>& p = w.pending[k++];
    p.insert(p.end(), bytes, bytes + v.size() * sizeof(v[0]));
  });
  num_events_ += static_cast<std::int64_t>(batch.size());
  const auto waiting = static_cast<std::size_t>(num_events_ - w.events_in_chunks);
  w.WriteChunks(path_, waiting / w.options.chunk_events, 0);
}

void EventFileWriter::Close() {
  Impl& w = *impl_;
  if (w.closed) return;
  const auto waiting = static_cast<std::size_t>(num_events_ - w.events_in_chunks);
  if (waiting > 0) w.WriteChunks(path_, 1, waiting);
  w.WriteScalarAttribute<std::int64_t>(path_, "num_events", H5T_STD_I64LE, H5T_NATIVE_INT64,
                                       num_events_);
  w.datasets.clear();
  if (H5Fflush(w.file.get(), H5F_SCOPE_GLOBAL) < 0 || w.file.Close() < 0)
    w.Fail(path_, "", "cannot flush and close the file");
  w.out->Commit();  // fsync, rename, fsync the directory; removes the temporary on failure
  w.closed = true;
}

// ---------------------------------------------------------------------------------------------
// Reader

// What a floating-point column may hold (docs/events.md, "Value checks"). Inf is never valid.
enum class FloatRule : std::uint8_t {
  kFinite,          // always finite: weight, MET, recoil
  kFiniteIfFilled,  // finite when the muon slot is filled (slot < n_muons): reconstructed
                    // kinematics, isolation, efficiencies; NaN allowed in an empty slot
  kNaNAllowed,      // NaN means "none": generated muon, generator-level boson, CS angles
};

FloatRule RuleOf(const std::string& name, int* slot) {
  *slot = -1;
  if (name.size() > 4 && name[0] == 'm' && name[1] == 'u' && name[3] == '_') {
    *slot = name[2] - '0';
    if (name.compare(4, 4, "gen_") == 0) return FloatRule::kNaNAllowed;
    return FloatRule::kFiniteIfFilled;
  }
  if (name == "weight" || name == "met_pt" || name == "met_phi" || name == "ut_x" || name == "ut_y")
    return FloatRule::kFinite;
  return FloatRule::kNaNAllowed;
}

// Event numbers must be unique per process within a file. Files written by lepus list each
// process's events in increasing event-number order, so the check keeps the last number per
// process (constant memory); at the first decrease it switches to an exact map of every
// (process, event number) seen, rebuilt by re-reading the two columns up to that row.
struct DuplicateCheck {
  std::array<std::uint64_t, kNumProcesses> last{};
  std::array<bool, kNumProcesses> seen{};
  bool exact = false;
  std::array<std::unordered_map<std::uint64_t, std::int64_t>, kNumProcesses> rows;
};

struct EventFileReader::Impl {
  std::unique_ptr<io::h5::InputFile> file;  // owns the error silencer and the file checks
  Handle fid;
  // One entry per column in EventColumns() order; invalid handle = missing optional column.
  std::vector<Handle> datasets;
  bool derive_recoil = false;
  std::vector<std::int64_t> int_buffer;
  DuplicateCheck duplicates;
  std::int64_t negative_weights = 0;
  double sum_weights = 0.0;

  // Rows [0, end) of event_number and process into the exact duplicate map.
  void BuildExactMap(const std::string& path, std::int64_t end);
  // A floating-point column just read (n_muons of the batch already read: it precedes the muon
  // columns), while it is in cache; also the weight statistics.
  void CheckColumn(const std::string& path, const ColumnSpec& c, const std::vector<double>& v,
                   const std::vector<std::int8_t>& n_muons, std::int64_t first_row);
  void CheckEventNumbers(const std::string& path, const std::vector<Process>& process,
                         const std::vector<std::uint64_t>& event_number, std::int64_t first_row);
  // Skip's buffers.
  std::vector<Process> skip_process;
  std::vector<std::uint64_t> skip_numbers;
  std::vector<double> skip_weights;

  [[noreturn]] void Fail(const std::string& where, const std::string& what) const {
    file->Fail(where, what);
  }
};

EventFileReader::EventFileReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  info_.path = path;
  {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0 &&
        !ec)
      throw InputError(path + ": the file is empty (0 bytes), but must be an HDF5 event file");
  }
  Impl& r = *impl_;
  r.file = std::make_unique<io::h5::InputFile>(path);  // missing / directory / not HDF5
  const io::h5::InputFile& f = *r.file;

  if (!f.HasAttribute("/", "schema_version"))
    throw InputError(path +
                     ": attribute schema_version is missing: not a lepus event file "
                     "(docs/events.md)");
  const auto version = f.ReadIntAttribute("/", "schema_version");
  if (version.size() != 1 || version[0] != kEventSchemaVersion)
    throw InputError(
        path + ": schema_version is " +
        (version.size() == 1 ? std::to_string(version[0]) : std::string("not a scalar")) +
        ", but this lepus reads event files of schema version " +
        std::to_string(kEventSchemaVersion));
  info_.schema_version = kEventSchemaVersion;
  EventFileMetadata& m = info_.metadata;
  auto string_attr = [&](const char* name, std::string* out) {
    if (f.HasAttribute("/", name)) *out = f.ReadStringAttribute("/", name);
  };
  std::string sample;
  string_attr("sample", &sample);
  if (!sample.empty()) {
    try {
      m.sample = SampleKindFromString(sample);
    } catch (const std::invalid_argument&) {
      throw InputError(path + ": attribute sample is '" + sample +
                       "', but must be 'simulation' or 'data'");
    }
  }
  string_attr("process", &m.processes);
  string_attr("generator_params", &m.generator_params);
  string_attr("detector_params", &m.detector_params);
  string_attr("events_generated", &m.events_generated);
  string_attr("filter", &m.filter);
  string_attr("creator", &m.creator);

  r.fid = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!r.fid.valid()) throw InputError(path + ": " + Detail("cannot open the HDF5 file"));
  auto scalar_attr = [&](const char* name, hid_t mem_type, void* out) {
    if (!f.HasAttribute("/", name)) return;
    Handle a(H5Aopen(r.fid.get(), name, H5P_DEFAULT), H5Aclose);
    if (!a.valid() || H5Aread(a.get(), mem_type, out) < 0)
      throw InputError(path + ": attribute " + name + ": " + Detail("cannot read the attribute"));
  };
  scalar_attr("seed", H5T_NATIVE_UINT64, &m.seed);
  scalar_attr("luminosity_pb", H5T_NATIVE_DOUBLE, &m.luminosity_pb);

  if (!f.HasGroup(kGroup)) r.Fail(kGroup, "group is missing: not a lepus event file");

  // Schema: presence, filters, type class, rank, common length.
  std::int64_t n = -1;
  std::string n_from;
  for (const ColumnSpec& c : EventColumns()) {
    const std::string name = ColumnPath(c);
    if (!f.HasDataset(name)) {
      if (f.HasGroup(name)) r.Fail(name, "is a group, but must be a dataset");
      if (c.required) r.Fail(name, "required column is missing");
      info_.missing_optional.push_back(c.name);
      r.datasets.emplace_back();
      continue;
    }
    Handle d(H5Dopen2(r.fid.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.valid()) r.Fail(name, Detail("cannot open the dataset"));
    {
      Handle dcpl(H5Dget_create_plist(d.get()), H5Pclose);
      const int nfilters = dcpl.valid() ? H5Pget_nfilters(dcpl.get()) : 0;
      for (int i = 0; i < nfilters; ++i) {
        unsigned flags = 0, config = 0;
        std::size_t cd_nelmts = 0;
        char fname[256] = {0};
        const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags,
                                               &cd_nelmts, nullptr, sizeof(fname), fname, &config);
        if (id >= 0) io::h5::CheckFilterAvailable(path, name, id, fname);
      }
    }
    Handle type(H5Dget_type(d.get()), H5Tclose);
    const H5T_class_t cls = H5Tget_class(type.get());
    const bool want_float = c.type == ColumnType::kFloat64;
    if (want_float && cls != H5T_FLOAT)
      r.Fail(name, "has type " + TypeClassName(cls) + ", but must be a floating-point number");
    if (!want_float && cls != H5T_INTEGER)
      r.Fail(name, "has type " + TypeClassName(cls) + ", but must be an integer");
    Handle space(H5Dget_space(d.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    if (rank != 1) {
      std::vector<std::int64_t> shape(dims, dims + std::max(rank, 0));
      r.Fail(name, "has shape " + io::h5::ShapeString(shape) + ", but must be one-dimensional");
    }
    const auto len = static_cast<std::int64_t>(dims[0]);
    if (n < 0) {
      n = len;
      n_from = name;
    } else if (len != n) {
      r.Fail(name, "has " + std::to_string(len) + " entries, but " + n_from + " has " +
                       std::to_string(n) + " (all columns must have the same length)");
    }
    r.datasets.push_back(std::move(d));
  }
  if (n <= 0) r.Fail(kGroup, "the file holds no events");
  info_.num_events = n;
  r.derive_recoil = std::find(info_.missing_optional.begin(), info_.missing_optional.end(),
                              "ut_x") != info_.missing_optional.end() ||
                    std::find(info_.missing_optional.begin(), info_.missing_optional.end(),
                              "ut_y") != info_.missing_optional.end();
}

EventFileReader::~EventFileReader() = default;

std::int64_t EventFileReader::negative_weights() const { return impl_->negative_weights; }
double EventFileReader::sum_weights() const { return impl_->sum_weights; }

namespace {
std::string ValueText(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}
}  // namespace

void EventFileReader::Impl::CheckColumn(const std::string& path, const ColumnSpec& c,
                                        const std::vector<double>& v,
                                        const std::vector<std::int8_t>& n_muons,
                                        std::int64_t first_row) {
  const std::size_t n = v.size();
  int slot = -1;
  const FloatRule rule = RuleOf(c.name, &slot);
  // Branch-free count of violations (the common answer is 0); the loop below finds the first.
  // Exponent bits all set: Inf (mantissa 0) or NaN.
  constexpr std::uint64_t kExp = 0x7FF0000000000000ull, kMant = 0x000FFFFFFFFFFFFFull;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t bits;
    std::memcpy(&bits, &v[i], sizeof(bits));
    const bool nonfinite = (bits & kExp) == kExp;
    const bool nan = nonfinite && (bits & kMant) != 0;
    const bool nan_ok = rule == FloatRule::kNaNAllowed ||
                        (rule == FloatRule::kFiniteIfFilled && slot >= n_muons[i]);
    bad += nonfinite & !(nan & nan_ok);
  }
  if (bad == 0) [[likely]] {
    if (std::string_view(c.name) == "weight")
      for (std::size_t i = 0; i < n; ++i) {
        negative_weights += v[i] < 0.0;
        sum_weights += v[i];
      }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double x = v[i];
    if (std::isfinite(x)) continue;
    const bool nan = std::isnan(x);
    if (nan && rule == FloatRule::kNaNAllowed) continue;
    if (nan && rule == FloatRule::kFiniteIfFilled && slot >= n_muons[i]) continue;
    std::string why = "finite";
    if (rule == FloatRule::kFiniteIfFilled && slot < n_muons[i])
      why += " (the event has n_muons = " + std::to_string(n_muons[i]) + ", so slot mu" +
             std::to_string(slot) + " is filled)";
    else if (rule != FloatRule::kFinite)
      why += " or nan (nan: no value)";
    throw InputError(path + ": " + ColumnPath(c) + "[" +
                     std::to_string(first_row + static_cast<std::int64_t>(i)) + "] is " +
                     ValueText(x) + ", but must be " + why);
  }
}

void EventFileReader::Impl::BuildExactMap(const std::string& path, std::int64_t end) {
  DuplicateCheck& d = duplicates;
  d.exact = true;
  const std::int64_t step = 1 << 16;
  std::vector<std::uint64_t> numbers;
  std::vector<std::uint8_t> procs;
  for (std::int64_t start = 0; start < end; start += step) {
    const hsize_t off = static_cast<hsize_t>(start);
    const hsize_t count = static_cast<hsize_t>(std::min(step, end - start));
    numbers.resize(count);
    procs.resize(count);
    Handle mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
    for (int col = 0; col < 2; ++col) {
      const Handle& ds = datasets[col];  // event_number, process: required, always present
      Handle fspace(H5Dget_space(ds.get()), H5Sclose);
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &off, nullptr, &count, nullptr);
      const herr_t st = col == 0 ? H5Dread(ds.get(), H5T_NATIVE_UINT64, mspace.get(), fspace.get(),
                                           H5P_DEFAULT, numbers.data())
                                 : H5Dread(ds.get(), H5T_NATIVE_UINT8, mspace.get(), fspace.get(),
                                           H5P_DEFAULT, procs.data());
      if (st < 0)
        throw InputError(path + ": " + (col == 0 ? "events/event_number" : "events/process") +
                         ": " + Detail("cannot read the data"));
    }
    // These rows passed the increasing-order check, so they hold no duplicates.
    for (hsize_t i = 0; i < count; ++i)
      d.rows[procs[i]].emplace(numbers[i], start + static_cast<std::int64_t>(i));
  }
}

void EventFileReader::Impl::CheckEventNumbers(const std::string& path,
                                              const std::vector<Process>& process,
                                              const std::vector<std::uint64_t>& event_number,
                                              std::int64_t first_row) {
  DuplicateCheck& d = duplicates;
  for (std::size_t i = 0; i < event_number.size(); ++i) {
    const auto p = static_cast<std::size_t>(process[i]);
    const std::uint64_t en = event_number[i];
    const std::int64_t row = first_row + static_cast<std::int64_t>(i);
    if (!d.exact) {
      if (!d.seen[p] || en > d.last[p]) {
        d.seen[p] = true;
        d.last[p] = en;
        continue;
      }
      BuildExactMap(path, row);
    }
    auto [it, fresh] = d.rows[p].emplace(en, row);
    if (!fresh)
      throw InputError(path + ": events/event_number[" + std::to_string(row) + "] is " +
                       std::to_string(en) + " (process " + ToString(process[i]) +
                       "), but event numbers must be unique within a process in a file (also at "
                       "row " +
                       std::to_string(it->second) + ")");
  }
}

std::size_t EventFileReader::Next(EventBatch* batch, std::size_t max_events) {
  Impl& r = *impl_;
  const std::int64_t left = info_.num_events - position_;
  const std::size_t n = static_cast<std::size_t>(std::min<std::int64_t>(
      left, static_cast<std::int64_t>(std::max<std::size_t>(max_events, 1))));
  batch->Resize(n);
  if (n == 0) return 0;
  const hsize_t start = static_cast<hsize_t>(position_), count = n;
  Handle mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
  std::size_t k = 0;
  VisitColumns(*batch, [&](const ColumnSpec& c, auto& v) {
    using T = typename std::remove_reference_t<decltype(v)>::value_type;
    const Handle& d = r.datasets[k++];
    const std::string name = ColumnPath(c);
    if (!d.valid()) {
      if constexpr (std::is_same_v<T, Process>)
        std::fill(v.begin(), v.end(), static_cast<Process>(c.default_value));
      else
        std::fill(v.begin(), v.end(), static_cast<T>(c.default_value));
      return;
    }
    Handle fspace(H5Dget_space(d.get()), H5Sclose);
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
    if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::uint64_t>) {
      if (H5Dread(d.get(), MemType<T>(), mspace.get(), fspace.get(), H5P_DEFAULT, v.data()) < 0)
        r.Fail(name, Detail("cannot read the data"));
      // Missing columns hold their defaults and a derived recoil comes from checked columns.
      if constexpr (std::is_same_v<T, double>)
        r.CheckColumn(info_.path, c, v, batch->n_muons, position_);
    } else {
      // Small integers are read wide and range-checked (HDF5 would clip out-of-range values).
      r.int_buffer.resize(n);
      if (H5Dread(d.get(), H5T_NATIVE_INT64, mspace.get(), fspace.get(), H5P_DEFAULT,
                  r.int_buffer.data()) < 0)
        r.Fail(name, Detail("cannot read the data"));
      std::int64_t lo = -1, hi = 1;
      std::string what = "-1, 0 or +1";
      if constexpr (std::is_same_v<T, Process>) {
        lo = 0;
        hi = kNumProcesses - 1;
        what = "a process id in [0, " + std::to_string(kNumProcesses - 1) + "]";
      }
      if (std::string_view(c.name) == "n_muons") {
        lo = 0;
        hi = 2;
        what = "0, 1 or 2";
      }
      for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t x = r.int_buffer[i];
        if (x < lo || x > hi)
          throw InputError(info_.path + ": " + name + "[" +
                           std::to_string(position_ + static_cast<std::int64_t>(i)) + "] is " +
                           std::to_string(x) + ", but must be " + what);
        v[i] = static_cast<T>(x);
      }
    }
  });
  if (r.derive_recoil) {
    for (std::size_t i = 0; i < n; ++i) {
      double sx = batch->met_pt[i] * std::cos(batch->met_phi[i]);
      double sy = batch->met_pt[i] * std::sin(batch->met_phi[i]);
      for (int s = 0; s < std::min<int>(batch->n_muons[i], 2); ++s) {
        sx += batch->muon[s].pt[i] * std::cos(batch->muon[s].phi[i]);
        sy += batch->muon[s].pt[i] * std::sin(batch->muon[s].phi[i]);
      }
      batch->ut_x[i] = -sx;
      batch->ut_y[i] = -sy;
    }
  }
  r.CheckEventNumbers(info_.path, batch->process, batch->event_number, position_);
  position_ += static_cast<std::int64_t>(n);
  return n;
}

std::size_t EventFileReader::Skip(std::size_t max_events) {
  Impl& r = *impl_;
  const std::int64_t left = info_.num_events - position_;
  const std::size_t n = static_cast<std::size_t>(std::min<std::int64_t>(
      left, static_cast<std::int64_t>(std::max<std::size_t>(max_events, 1))));
  if (n == 0) return 0;
  const hsize_t start = static_cast<hsize_t>(position_), count = n;
  Handle mspace(H5Screate_simple(1, &count, nullptr), H5Sclose);
  const std::vector<ColumnSpec>& cols = EventColumns();
  auto read = [&](const char* column, hid_t mem_type, void* out) {
    for (std::size_t k = 0; k < cols.size(); ++k) {
      if (std::string_view(cols[k].name) != column) continue;
      const Handle& d = r.datasets[k];
      if (!d.valid()) return false;  // a missing optional column: its default
      Handle fspace(H5Dget_space(d.get()), H5Sclose);
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
      if (H5Dread(d.get(), mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, out) < 0)
        r.Fail(ColumnPath(cols[k]), Detail("cannot read the data"));
      return true;
    }
    return false;
  };
  // event_number and process (required): the duplicate check; process range-checked as in Next.
  r.skip_numbers.resize(n);
  read("event_number", H5T_NATIVE_UINT64, r.skip_numbers.data());
  r.int_buffer.resize(n);
  read("process", H5T_NATIVE_INT64, r.int_buffer.data());
  r.skip_process.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t x = r.int_buffer[i];
    if (x < 0 || x > kNumProcesses - 1)
      throw InputError(info_.path + ": events/process[" +
                       std::to_string(position_ + static_cast<std::int64_t>(i)) + "] is " +
                       std::to_string(x) + ", but must be a process id in [0, " +
                       std::to_string(kNumProcesses - 1) + "]");
    r.skip_process[i] = static_cast<Process>(x);
  }
  // weight: its checks and the weight statistics (the negative-weight warning).
  for (const ColumnSpec& c : cols) {
    if (std::string_view(c.name) != "weight") continue;
    r.skip_weights.resize(n);
    if (read("weight", H5T_NATIVE_DOUBLE, r.skip_weights.data()))
      r.CheckColumn(info_.path, c, r.skip_weights, {}, position_);
    else
      r.CheckColumn(info_.path, c, std::vector<double>(n, c.default_value), {}, position_);
  }
  r.CheckEventNumbers(info_.path, r.skip_process, r.skip_numbers, position_);
  position_ += static_cast<std::int64_t>(n);
  return n;
}

std::string NegativeWeightWarning(const EventFileReader& reader) {
  const std::int64_t n = reader.Position(), neg = reader.negative_weights();
  if (n <= 0 || 2 * neg <= n) return "";
  char buf[128], sum[64];
  std::snprintf(buf, sizeof(buf), "%.1f%%",
                100.0 * static_cast<double>(neg) / static_cast<double>(n));
  std::snprintf(sum, sizeof(sum), "%.6g", reader.sum_weights());
  return reader.Name() + ": " +
         (neg == n
              ? "all " + std::to_string(n) + " events have"
              : std::to_string(neg) + " of " + std::to_string(n) + " events (" + buf + ") have") +
         " negative weights (sum of weights " + sum +
         "): check the sign convention of the weight column";
}

EventBatch ReadEventFile(const std::string& path, EventFileInfo* info) {
  EventFileReader reader(path);
  EventBatch all, batch;
  // The whole file in memory: the declared length is checked before reserving it.
  std::int64_t bytes_per_event = 0;
  VisitColumns(batch, [&](const ColumnSpec&, const auto& v) {
    bytes_per_event += static_cast<std::int64_t>(sizeof(v[0]));
  });
  io::h5::CheckAllocation(path, kGroup, reader.SizeHint(), bytes_per_event,
                          "reading " + std::to_string(reader.SizeHint()) + " events into memory");
  all.Reserve(static_cast<std::size_t>(reader.SizeHint()));
  while (reader.Next(&batch, 1 << 16) > 0) all.Append(batch);
  if (info != nullptr) *info = reader.info();
  return all;
}

}  // namespace lepus::models
