// HDF5 event files: bit-exact round trip through the writer and the chunked reader, metadata,
// optional columns, atomic writes, and one clear error (naming the file and the dataset) for
// every kind of bad file. Malformed files are made from valid ones with the HDF5 C API.
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/io/errors.h"
#include "lepus/models/event_file.h"
#include "lepus/models/generator.h"
#include "test_support.h"

namespace {

using namespace lepus::models;
using lepus::io::InputError;

EventBatch Sample(Generator** out_gen = nullptr) {
  static GeneratorConfig c = [] {
    GeneratorConfig c;
    c.processes = {Process::kWminusMuNu, Process::kZMuMu, Process::kNonPrompt};
    c.num_events = 6000;
    c.seed = 5;
    return c;
  }();
  static Generator g(c);
  if (out_gen != nullptr) *out_gen = &g;
  EventBatch b;
  for (Process p : c.processes) g.Generate(p, 0, g.NumEvents(p), &b);
  return b;
}

std::string WriteSample(const EventBatch& b, std::size_t chunk = 1000) {
  Generator* g = nullptr;
  Sample(&g);
  const std::string path = lepus::test::TempPath("events", ".h5");
  EventFileWriterOptions opt;
  opt.chunk_events = chunk;
  EventFileWriter w(path, MakeEventFileMetadata(*g, "test"), opt);
  // Appends of different sizes.
  const std::size_t cut1 = b.size() / 3, cut2 = cut1 + 17;
  EventBatch part;
  for (auto [lo, hi] :
       {std::pair{std::size_t{0}, cut1}, std::pair{cut1, cut2}, std::pair{cut2, b.size()}}) {
    part.Clear();
    part.Append(b, lo, hi);
    w.Append(part);
  }
  w.Close();
  return path;
}

// Edits a valid file with the HDF5 C API.
struct H5Edit {
  hid_t file;
  explicit H5Edit(const std::string& path) {
    file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(file >= 0);
  }
  ~H5Edit() { H5Fclose(file); }
  void Delete(const std::string& name) { REQUIRE(H5Ldelete(file, name.c_str(), H5P_DEFAULT) >= 0); }
  void WriteDoubles(const std::string& name, const std::vector<double>& v, int rank = 1) {
    hsize_t dims[2] = {v.size(), 1};
    if (rank == 2) dims[0] = v.size() / 2, dims[1] = 2;
    const hid_t space = H5Screate_simple(rank, dims, nullptr);
    const hid_t d = H5Dcreate2(file, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT);
    REQUIRE(d >= 0);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
    H5Sclose(space);
  }
  void WriteInts(const std::string& name, const std::vector<int>& v) {
    const hsize_t n = v.size();
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t d =
        H5Dcreate2(file, name.c_str(), H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(d >= 0);
    H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
    H5Sclose(space);
  }
  void WriteStrings(const std::string& name, std::size_t n) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 4);
    const hsize_t dims = n;
    const hid_t space = H5Screate_simple(1, &dims, nullptr);
    const std::vector<char> data(4 * n, 'a');
    const hid_t d =
        H5Dcreate2(file, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(d >= 0);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
    H5Dclose(d);
    H5Sclose(space);
    H5Tclose(type);
  }
  void SetVersion(std::int64_t v) {
    const hid_t a = H5Aopen(file, "schema_version", H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
  }
};

std::string ReadError(const std::string& path) {
  try {
    EventFileReader reader(path);
    EventBatch b;
    while (reader.Next(&b, 4096) > 0) {
    }
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void ExpectError(const std::string& path, const std::vector<std::string>& parts) {
  const std::string err = ReadError(path);
  CAPTURE(err);
  REQUIRE_FALSE(err.empty());
  CHECK(err.rfind(path + ": ", 0) == 0);
  for (const auto& p : parts) {
    CAPTURE(p);
    CHECK(err.find(p) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("round trip is bit-exact in any read batch size") {
  const EventBatch b = Sample();
  REQUIRE(b.size() > 5000);
  const std::string path = WriteSample(b);
  for (std::size_t batch : {333u, 1000u, 1u << 20}) {
    EventFileReader reader(path);
    CHECK(reader.SizeHint() == static_cast<std::int64_t>(b.size()));
    EventBatch all, part;
    while (reader.Next(&part, batch) > 0) {
      CHECK(part.size() <= batch);
      all.Append(part);
    }
    CHECK(reader.Position() == reader.SizeHint());
    CHECK(all.Identical(b));
  }
  EventFileInfo info;
  const EventBatch again = ReadEventFile(path, &info);
  CHECK(again.Identical(b));
  CHECK(info.schema_version == kEventSchemaVersion);
  CHECK(info.num_events == static_cast<std::int64_t>(b.size()));
  CHECK(info.metadata.sample == SampleKind::kSimulation);
  CHECK(info.metadata.processes == "wminus,zmumu,nonprompt");
  CHECK(info.metadata.seed == 5);
  CHECK(info.metadata.luminosity_pb == 16800.0);
  CHECK(info.metadata.generator_params.find("\"w_mass\":80.379") != std::string::npos);
  CHECK(info.metadata.detector_params.find("scale_bias") != std::string::npos);
  CHECK(info.metadata.events_generated.find("\"zmumu\":") != std::string::npos);
  CHECK(info.metadata.creator == "test");
  CHECK(info.missing_optional.empty());
  std::filesystem::remove(path);
}

TEST_CASE("optional columns get defaults; a missing recoil is derived") {
  const EventBatch b = Sample();
  const std::string path = WriteSample(b);
  {
    H5Edit e(path);
    for (const char* name : {"events/ut_x", "events/ut_y", "events/v_mass", "events/mu0_eff_id"})
      e.Delete(name);
  }
  EventFileInfo info;
  const EventBatch r = ReadEventFile(path, &info);
  CHECK(info.missing_optional.size() == 4);
  REQUIRE(r.size() == b.size());
  for (std::size_t i = 0; i < r.size(); ++i) {
    REQUIRE(std::isnan(r.v_mass[i]));
    REQUIRE(r.muon[0].eff_id[i] == 1.0);
    REQUIRE(r.ut_x[i] == doctest::Approx(b.ut_x[i]).epsilon(1e-9).scale(1.0));
    REQUIRE(r.ut_y[i] == doctest::Approx(b.ut_y[i]).epsilon(1e-9).scale(1.0));
  }
  std::filesystem::remove(path);
}

TEST_CASE("writes are atomic") {
  const std::string path = lepus::test::TempPath("events-unfinished", ".h5");
  {
    EventFileWriter w(path, EventFileMetadata{});
    w.Append(Sample());
    CHECK_FALSE(std::filesystem::exists(path));
  }  // destroyed without Close
  CHECK_FALSE(std::filesystem::exists(path));
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    CHECK(entry.path().filename().string().find("events-unfinished") == std::string::npos);
  CHECK_THROWS_WITH_AS(EventFileWriter("/nonexistent-dir/x.h5", EventFileMetadata{}),
                       doctest::Contains("/nonexistent-dir/x.h5: the directory"), InputError);
}

TEST_CASE("bad event files give errors naming the file and the dataset") {
  const EventBatch b = Sample();
  const std::size_t n = b.size();

  SUBCASE("missing, empty, not HDF5") {
    const std::string missing = lepus::test::TempPath("missing", ".h5");
    ExpectError(missing, {"does not exist"});
    const std::string empty = lepus::test::TempPath("empty", ".h5");
    std::ofstream(empty).close();
    ExpectError(empty, {"empty (0 bytes)"});
    const std::string text = lepus::test::TempPath("text", ".h5");
    std::ofstream(text) << "not an event file\n";
    ExpectError(text, {"not an HDF5 file"});
    std::filesystem::remove(empty);
    std::filesystem::remove(text);
  }
  SUBCASE("not a lepus event file / wrong schema version") {
    const std::string path = WriteSample(b);
    {
      H5Edit e(path);
      e.SetVersion(2);
    }
    ExpectError(path, {"schema_version is 2", "schema version 1"});
    {
      H5Edit e(path);
      REQUIRE(H5Adelete(e.file, "schema_version") >= 0);
    }
    ExpectError(path, {"schema_version is missing"});
    std::filesystem::remove(path);
  }
  SUBCASE("missing group and missing required column") {
    const std::string path = WriteSample(b);
    {
      H5Edit e(path);
      e.Delete("events/mu1_charge");
    }
    ExpectError(path, {"events/mu1_charge: required column is missing"});
    {
      H5Edit e(path);
      e.Delete("events");
    }
    ExpectError(path, {"events: group is missing"});
    std::filesystem::remove(path);
  }
  SUBCASE("wrong types") {
    const std::string path = WriteSample(b);
    {
      H5Edit e(path);
      e.Delete("events/mu0_pt");
      e.WriteStrings("events/mu0_pt", n);
    }
    ExpectError(path, {"events/mu0_pt: has type string, but must be a floating-point number"});
    {
      H5Edit e(path);
      e.Delete("events/mu0_pt");
      e.WriteDoubles("events/mu0_pt", b.muon[0].pt);
      e.Delete("events/n_muons");
      e.WriteDoubles("events/n_muons", std::vector<double>(n, 1.0));
    }
    ExpectError(path, {"events/n_muons: has type floating-point, but must be an integer"});
    std::filesystem::remove(path);
  }
  SUBCASE("inconsistent lengths and shapes") {
    const std::string path = WriteSample(b);
    {
      H5Edit e(path);
      e.Delete("events/weight");
      e.WriteDoubles("events/weight", std::vector<double>(n - 1, 1.0));
    }
    ExpectError(path, {"events/weight: has " + std::to_string(n - 1) + " entries",
                       "events/event_number has " + std::to_string(n)});
    {
      H5Edit e(path);
      e.Delete("events/weight");
      e.WriteDoubles("events/weight", std::vector<double>(2 * n, 1.0), 2);
    }
    ExpectError(path,
                {"events/weight: has shape [" + std::to_string(n) + ", 2]", "one-dimensional"});
    std::filesystem::remove(path);
  }
  SUBCASE("no events") {
    const std::string path = lepus::test::TempPath("noevents", ".h5");
    EventFileWriter w(path, EventFileMetadata{});
    w.Close();
    ExpectError(path, {"events: the file holds no events"});
    std::filesystem::remove(path);
  }
  SUBCASE("bad values are reported with their index") {
    const std::string path = WriteSample(b);
    std::vector<int> process(n, 0);
    process[1234] = 12;
    std::vector<int> charge(n, 1);
    charge[77] = 3;
    {
      H5Edit e(path);
      e.Delete("events/process");
      e.WriteInts("events/process", process);
    }
    ExpectError(path, {"events/process[1234] is 12, but must be a process id in [0, 7]"});
    {
      H5Edit e(path);
      e.Delete("events/process");
      e.WriteInts("events/process", std::vector<int>(n, 2));
      e.Delete("events/mu0_charge");
      e.WriteInts("events/mu0_charge", charge);
    }
    ExpectError(path, {"events/mu0_charge[77] is 3, but must be -1, 0 or +1"});
    std::filesystem::remove(path);
  }
}

// ---- value checks (docs/events.md, "Value checks") ------------------------------------------

namespace {

// The first row of `b` with n_muons == want (REQUIREs one).
std::size_t RowWithMuons(const EventBatch& b, int want, std::size_t from = 0) {
  for (std::size_t i = from; i < b.size(); ++i)
    if (b.n_muons[i] == want) return i;
  FAIL("no event with n_muons = " << want);
  return 0;
}

// Reads the whole file in batches of `batch` events; returns the reader's warning.
std::string ReadAllWarning(const std::string& path, std::size_t batch = 1000) {
  EventFileReader reader(path);
  EventBatch b;
  while (reader.Next(&b, batch) > 0) {
  }
  return NegativeWeightWarning(reader);
}

}  // namespace

TEST_CASE("event files: NaN and Inf are rejected naming the column and the row") {
  const EventBatch good = Sample();
  REQUIRE(good.size() > 3000);
  const std::size_t k = 2345;  // in the third read batch of ReadError (4096) / third chunk
  auto expect = [&](auto edit, const std::vector<std::string>& parts) {
    EventBatch b = good;
    edit(b);
    const std::string path = WriteSample(b);
    ExpectError(path, parts);
    std::filesystem::remove(path);
  };
  const std::string row = "[" + std::to_string(k) + "]";
  expect([&](EventBatch& b) { b.weight[k] = std::nan(""); },
         {"events/weight" + row + " is nan, but must be finite"});
  expect([&](EventBatch& b) { b.weight[k] = INFINITY; },
         {"events/weight" + row + " is inf, but must be finite"});
  expect([&](EventBatch& b) { b.met_pt[k] = -INFINITY; },
         {"events/met_pt" + row + " is -inf, but must be finite"});
  expect([&](EventBatch& b) { b.ut_y[k] = std::nan(""); },
         {"events/ut_y" + row + " is nan, but must be finite"});
  const std::size_t one = RowWithMuons(good, 1, 1500);
  const std::string row1 = "[" + std::to_string(one) + "]";
  expect([&](EventBatch& b) { b.muon[0].pt[one] = std::nan(""); },
         {"events/mu0_pt" + row1 +
          " is nan, but must be finite (the event has n_muons = 1, so slot mu0 is filled)"});
  expect([&](EventBatch& b) { b.muon[0].eff_id[one] = std::nan(""); },
         {"events/mu0_eff_id" + row1 + " is nan, but must be finite"});
  // An empty slot holds NaN (valid), but never Inf.
  REQUIRE(std::isnan(good.muon[1].pt[one]));
  expect([&](EventBatch& b) { b.muon[1].pt[one] = INFINITY; },
         {"events/mu1_pt" + row1 + " is inf, but must be finite or nan (nan: no value)"});
  // Generator-level columns: NaN means "none" (non-prompt events), Inf is an error.
  expect([&](EventBatch& b) { b.v_mass[k] = INFINITY; },
         {"events/v_mass" + row + " is inf, but must be finite or nan"});
  expect([&](EventBatch& b) { b.muon[0].gen_pt[one] = -INFINITY; },
         {"events/mu0_gen_pt" + row1 + " is -inf"});
  {
    // NaN where it means "none" reads fine.
    EventBatch b = good;
    b.v_mass[k] = std::nan("");
    b.muon[0].gen_pt[one] = std::nan("");
    const std::string path = WriteSample(b);
    CHECK(ReadError(path).empty());
    std::filesystem::remove(path);
  }
  {
    // The row is the file row whatever the read batch size.
    EventBatch b = good;
    b.weight[k] = std::nan("");
    const std::string path = WriteSample(b);
    EventFileReader reader(path);
    EventBatch part;
    std::string err;
    try {
      while (reader.Next(&part, 77) > 0) {
      }
    } catch (const InputError& e) {
      err = e.what();
    }
    CHECK(err == path + ": events/weight" + row + " is nan, but must be finite");
    CHECK(reader.Position() <= static_cast<std::int64_t>(k));
    std::filesystem::remove(path);
  }
}

TEST_CASE("event files: duplicate event numbers within a process are rejected") {
  const EventBatch good = Sample();
  // The sample's processes each number their events from 0: equal numbers in different
  // processes are fine (the round-trip tests read it).
  const std::size_t k = good.size() - 5;
  std::size_t j = 0;
  while (good.process[j] != good.process[k]) ++j;
  j += 3;  // an earlier row of the same process
  REQUIRE(j < k);
  const std::string proc = ToString(good.process[k]);
  for (std::size_t batch : {std::size_t{64}, std::size_t{100000}}) {
    CAPTURE(batch);
    // Increasing order broken by a repeat of an earlier row (the exact check takes over).
    EventBatch b = good;
    b.event_number[k] = b.event_number[j];
    const std::string path = WriteSample(b);
    std::string err;
    try {
      EventFileReader reader(path);
      EventBatch part;
      while (reader.Next(&part, batch) > 0) {
      }
    } catch (const InputError& e) {
      err = e.what();
    }
    CHECK(err == path + ": events/event_number[" + std::to_string(k) + "] is " +
                     std::to_string(good.event_number[j]) + " (process " + proc +
                     "), but event numbers must be unique within a process in a file (also at "
                     "row " +
                     std::to_string(j) + ")");
    std::filesystem::remove(path);
  }
  {
    // Unique but not increasing (e.g. a shuffled file) is valid; a later duplicate is found.
    EventBatch b = good;
    std::size_t e = 0;  // end of the first process's rows
    while (e < b.size() && b.process[e] == b.process[0]) ++e;
    REQUIRE(e > 100);
    std::reverse(b.event_number.begin(), b.event_number.begin() + e / 2);
    const std::string shuffled = WriteSample(b);
    CHECK(ReadError(shuffled).empty());
    b.event_number[e - 1] = b.event_number[10];
    const std::string dup = WriteSample(b);
    ExpectError(dup, {"events/event_number[" + std::to_string(e - 1) + "] is " +
                          std::to_string(b.event_number[10]),
                      "(also at row 10)"});
    std::filesystem::remove(shuffled);
    std::filesystem::remove(dup);
  }
}

TEST_CASE("event files: mostly negative weights give a warning") {
  const EventBatch good = Sample();
  const std::size_t n = good.size();
  {
    const std::string path = WriteSample(good);
    CHECK(ReadAllWarning(path).empty());
    std::filesystem::remove(path);
  }
  {
    EventBatch b = good;
    for (auto& w : b.weight) w = -std::abs(w);
    const std::string path = WriteSample(b);
    const std::string w = ReadAllWarning(path);
    CHECK(w.rfind(path + ": all " + std::to_string(n) +
                      " events have negative weights (sum of "
                      "weights -",
                  0) == 0);
    CHECK(w.find("check the sign convention of the weight column") != std::string::npos);
    std::filesystem::remove(path);
  }
  {
    // 60% negative: warned; 40%: not.
    EventBatch b = good;
    const std::size_t neg = n * 6 / 10;
    for (std::size_t i = 0; i < neg; ++i) b.weight[i] = -std::abs(b.weight[i]);
    const std::string path = WriteSample(b);
    CHECK(ReadAllWarning(path).find(std::to_string(neg) + " of " + std::to_string(n) +
                                    " events (60.0%) have negative weights") != std::string::npos);
    std::filesystem::remove(path);
    EventBatch c = good;
    for (std::size_t i = 0; i < n * 4 / 10; ++i) c.weight[i] = -std::abs(c.weight[i]);
    const std::string path2 = WriteSample(c);
    CHECK(ReadAllWarning(path2).empty());
    std::filesystem::remove(path2);
  }
}

TEST_CASE("event files: Skip keeps the whole-file checks of the events it passes") {
  // An MPI rank skips the chunks of other ranks (EventFileReader::Skip): the duplicate check
  // across chunks, the process ids, the weight checks and the weight statistics must still see
  // every event, so that a rank finds what one process reading everything would find.
  const EventBatch good = Sample();
  const std::size_t n = good.size();
  const std::size_t chunk = 97;
  auto walk = [&](const std::string& path, int parity) {  // read chunks of one parity
    EventFileReader reader(path);
    EventBatch part;
    std::size_t got = 0, k = 0, read = 0;
    while (true) {
      const std::size_t m = k % 2 == static_cast<std::size_t>(parity) ? reader.Next(&part, chunk)
                                                                      : reader.Skip(chunk);
      if (m == 0) break;
      if (k % 2 == static_cast<std::size_t>(parity)) read += m;
      got += m;
      ++k;
    }
    CHECK(got == n);
    CHECK(reader.Position() == static_cast<std::int64_t>(n));
    CHECK(read < n);
    return std::make_pair(reader.negative_weights(), reader.sum_weights());
  };
  EventBatch b = good;
  for (std::size_t i = 0; i < n; i += 3) b.weight[i] = -std::abs(b.weight[i]);
  const std::string path = WriteSample(b);
  std::int64_t neg_all = 0;
  double sum_all = 0.0;
  {
    EventFileReader reader(path);
    EventBatch part;
    while (reader.Next(&part, chunk) > 0) {
    }
    neg_all = reader.negative_weights();
    sum_all = reader.sum_weights();
  }
  for (int parity : {0, 1}) {
    const auto [neg, sum] = walk(path, parity);
    CHECK(neg == neg_all);
    CHECK(sum == sum_all);  // the same additions in the same order
  }
  std::filesystem::remove(path);

  // A duplicate whose two rows are in chunks read by different ranks: found by both.
  const std::size_t k = n - 5;
  std::size_t j = 0;
  while (good.process[j] != good.process[k]) ++j;
  j += 3;
  REQUIRE(k / chunk != j / chunk);
  EventBatch d = good;
  d.event_number[k] = d.event_number[j];
  const std::string dup = WriteSample(d);
  for (int parity : {0, 1}) {
    CAPTURE(parity);
    std::string err;
    try {
      walk(dup, parity);
    } catch (const InputError& e) {
      err = e.what();
    }
    CHECK(err.find("events/event_number[" + std::to_string(k) + "] is " +
                   std::to_string(good.event_number[j])) != std::string::npos);
    CHECK(err.find("(also at row " + std::to_string(j) + ")") != std::string::npos);
  }
  std::filesystem::remove(dup);

  // A non-finite weight in a skipped chunk is still an error.
  EventBatch w = good;
  w.weight[k] = std::numeric_limits<double>::quiet_NaN();
  const std::string bad = WriteSample(w);
  const int skipped_parity = (k / chunk) % 2 == 0 ? 1 : 0;  // the parity that skips row k
  std::string err;
  try {
    walk(bad, skipped_parity);
  } catch (const InputError& e) {
    err = e.what();
  }
  CHECK(err == bad + ": events/weight[" + std::to_string(k) + "] is nan, but must be finite");
  std::filesystem::remove(bad);
}

TEST_CASE("event files: ReadEventFile checks the declared length against the memory") {
  // A file declaring 2^45 events in every column (chunked, nothing written: a few kB).
  const std::string path = lepus::test::TempPath("huge-events", ".h5");
  {
    Generator* g = nullptr;
    Sample(&g);
    EventFileWriter w(path, MakeEventFileMetadata(*g, "test"));
    EventBatch b = Sample();
    EventBatch one;
    one.Append(b, 0, 1);
    w.Append(one);
    w.Close();
  }
  {
    H5Edit e(path);
    for (const ColumnSpec& c : EventColumns()) {
      const std::string name = std::string("events/") + c.name;
      if (H5Lexists(e.file, name.c_str(), H5P_DEFAULT) <= 0) continue;
      const hid_t d = H5Dopen2(e.file, name.c_str(), H5P_DEFAULT);
      const hid_t t = H5Dget_type(d);
      H5Dclose(d);
      e.Delete(name);
      const hsize_t dims = hsize_t{1} << 45, maxdims = H5S_UNLIMITED, chunk = 1024;
      const hid_t space = H5Screate_simple(1, &dims, &maxdims);
      const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(dcpl, 1, &chunk);
      const hid_t nd = H5Dcreate2(e.file, name.c_str(), t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      REQUIRE(nd >= 0);
      H5Dclose(nd);
      H5Pclose(dcpl);
      H5Sclose(space);
      H5Tclose(t);
    }
  }
  try {
    ReadEventFile(path);
    FAIL("expected InputError");
  } catch (const InputError& e) {
    const std::string err = e.what();
    CAPTURE(err);
    CHECK(err.rfind(path + ": events: reading 35184372088832 events into memory needs ", 0) == 0);
    CHECK(err.find("of memory are available (MemAvailable)") != std::string::npos);
  }
  std::filesystem::remove(path);
}
