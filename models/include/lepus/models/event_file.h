// HDF5 event files: the columnar schema of docs/events.md (one 1-D dataset per EventBatch
// column under /events, chunked and gzip-compressed; file attributes with the schema version and
// the provenance), a writer that appends batches and publishes the file atomically, and a reader
// that is an EventSource reading in chunks (memory stays flat whatever the file size).
//
// Errors in files are io::InputError with messages "<file>: <dataset>: <what>" or, for values,
// "<file>: events/<column>[<index>] is <value>, but must be <constraint>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lepus/models/events.h"

namespace lepus::models {

class Generator;

// The schema version written by this lepus; the reader accepts exactly this version.
inline constexpr int kEventSchemaVersion = 1;

// Provenance stored as root attributes (all optional for the reader except schema_version).
struct EventFileMetadata {
  SampleKind sample = SampleKind::kSimulation;  // attribute "sample"
  std::string processes;         // "process": comma-separated process names, "" if unknown
  std::uint64_t seed = 0;        // "seed"
  double luminosity_pb = 0.0;    // "luminosity_pb" (0: unknown)
  std::string generator_params;  // "generator_params": GeneratorParams::ToJson(), "" if none
  std::string detector_params;   // "detector_params": DetectorParams::ToJson(), "" if none
  std::string events_generated;  // "events_generated": JSON {"wplus": N, ...}, "" if none
  std::string filter;            // "filter": JSON {"min_muons": .., "min_pt": ..}, "" if none
  std::string creator;           // "creator", e.g. "lepus 0.1.0 generate ..."
};

// The metadata of a generator's output (processes, seed, truth parameters, event counts).
EventFileMetadata MakeEventFileMetadata(const Generator& generator, const std::string& creator);

struct EventFileWriterOptions {
  int gzip_level = 1;                // 0 (none) .. 9; with the shuffle filter when > 0
  std::size_t chunk_events = 16384;  // events per HDF5 chunk, > 0
  int num_threads = 0;               // chunk compression threads (0 = all cores)
};

// Writes an event file. The data go to a temporary file beside `path` which Close() renames onto
// `path`, so readers never see a partial file; a writer destroyed without Close() removes it.
// Throws io::InputError naming the path when the file cannot be created or written.
class EventFileWriter {
 public:
  EventFileWriter(std::string path, const EventFileMetadata& metadata,
                  const EventFileWriterOptions& options = {});
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // Appends all events of the batch (batch.Consistent() must hold).
  void Append(const EventBatch& batch);
  // Flushes, closes and publishes the file.
  void Close();
  std::int64_t num_events() const { return num_events_; }
  const std::string& path() const { return path_; }

  struct Impl;

 private:
  std::string path_;
  std::int64_t num_events_ = 0;
  std::unique_ptr<Impl> impl_;
};

// What the reader found in a file.
struct EventFileInfo {
  std::string path;
  int schema_version = 0;
  std::int64_t num_events = 0;
  EventFileMetadata metadata;                 // absent attributes keep their defaults
  std::vector<std::string> missing_optional;  // optional columns filled with defaults
};

// Reads an event file in chunks. The constructor validates the whole schema (version, groups,
// presence, rank, type class and length of every column, no events at all) and throws
// io::InputError naming the file and the dataset; values are checked as each chunk is read
// (charges, n_muons, process ids; NaN/Inf in floating-point columns; event numbers unique per
// process within the file; docs/events.md, "Value checks"), naming the column and the row. Missing optional columns get their ColumnSpec defaults; a
// missing recoil is derived as u_T = -(MET + sum of muon pT). Float columns may be stored in any
// floating-point type, integer columns in any integer type.
class EventFileReader final : public EventSource {
 public:
  explicit EventFileReader(const std::string& path);
  ~EventFileReader() override;

  const EventFileInfo& info() const { return info_; }

  std::size_t Next(EventBatch* batch, std::size_t max_events) override;
  // Moves past the next events as Next would (returns their number), reading only what the
  // whole-file checks need: event_number and process (unique event numbers per process), and
  // weight (its value check and negative_weights / sum_weights). The other columns' value checks
  // are left to whoever reads those events (an MPI rank skips the other ranks' chunks).
  std::size_t Skip(std::size_t max_events);
  std::int64_t SizeHint() const override { return info_.num_events; }
  std::int64_t Position() const override { return position_; }
  std::string Name() const override { return info_.path; }

  // Over the events read so far: how many have weight < 0, and the sum of the weights.
  std::int64_t negative_weights() const;
  double sum_weights() const;

  struct Impl;

 private:
  EventFileInfo info_;
  std::int64_t position_ = 0;
  std::unique_ptr<Impl> impl_;
};

// A warning for the producers' summaries when more than half of the events read from `reader`
// have negative weights ("" otherwise): a flipped sign convention or a broken generator would
// otherwise only show up as odd yields.
std::string NegativeWeightWarning(const EventFileReader& reader);

// Reads a whole file into one batch (small files, tests). The declared number of events is
// checked against the available memory first (io::InputError).
EventBatch ReadEventFile(const std::string& path, EventFileInfo* info = nullptr);

}  // namespace lepus::models
