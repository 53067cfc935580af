// Pickles written by Python's own pickle module (tests/data/rabbit_meta/make_pickles.py, run by
// the ctest fixture io.rabbit_meta_fixtures into $LEPUS_RABBIT_META_DIR): every value family at
// protocols 2-5 against the script's expected JSON, the hist / boost-histogram axes, and the
// reader on rabbit-layout files carrying them.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "lepus/io/errors.h"
#include "lepus/io/reader.h"
#include "pickle.h"
#include "rabbit_file.h"
#include "rabbit_meta.h"
#include "test_support.h"

namespace {

namespace pk = lepus::io::pickle;
using lepus::engine::Model;
using lepus::engine::SystematicType;
using lepus::io::ReadFitInput;
using lepus::io::ReadInfo;

std::string FixtureDir() {
  const char* dir = std::getenv("LEPUS_RABBIT_META_DIR");
  REQUIRE_MESSAGE(dir != nullptr, "LEPUS_RABBIT_META_DIR is not set (run through ctest)");
  return dir;
}

std::string Fixture(const std::string& name) { return FixtureDir() + "/" + name; }

pk::Document DecodeFile(const std::string& name) {
  const auto bytes = lepus::test::rabbit::ReadBytes(Fixture(name));
  return pk::Decode(bytes.data(), bytes.size());
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string RabbitFile(const std::string& pickle, const std::string& stem,
                       SystematicType type = SystematicType::kLogNormal, bool asymmetric = false) {
  const std::string path = lepus::test::TempPath(stem, ".hdf5");
  lepus::test::rabbit::WriteRabbitFile(Fixture(pickle), path, type, asymmetric);
  return path;
}

std::string ReadError(const std::string& path) {
  try {
    ReadFitInput(path);
  } catch (const lepus::io::InputError& e) {
    return e.what();
  }
  return "(no error)";
}

bool AnyContains(const std::vector<std::string>& list, const std::string& part) {
  for (const auto& s : list)
    if (Contains(s, part)) return true;
  return false;
}

// The channels of make_pickles.py's rabbit_meta(""), read through the whole reader.
void CheckFixtureChannels(const Model& m) {
  REQUIRE(m.channels.size() == 4);
  const auto& sig = m.channels[0];
  CHECK(sig.name == "sig");
  CHECK(sig.nbins == 48);
  CHECK_FALSE(sig.masked);
  REQUIRE(sig.axes.size() == 3);
  CHECK(sig.axes[0].name == "pt");
  CHECK(sig.axes[0].edges == std::vector<double>{25, 30, 35, 40, 45, 50, 55});
  CHECK(sig.axes[0].labels.empty());
  CHECK(sig.axes[1].name == "eta");
  CHECK(sig.axes[1].edges == std::vector<double>{-2.4, -1.2, 0.0, 1.2, 2.4});
  CHECK(sig.axes[2].name == "charge");  // IntCategory: index edges and the categories
  CHECK(sig.axes[2].edges == std::vector<double>{0, 1, 2});
  CHECK(sig.axes[2].labels == std::vector<std::string>{"-1", "1"});

  const auto& ctl = m.channels[1];
  CHECK(ctl.name == "ctl");
  CHECK(ctl.nbins == 9);
  REQUIRE(ctl.axes.size() == 2);
  CHECK(ctl.axes[0].name == "axis0");  // boost_histogram Integer without a name
  CHECK(ctl.axes[0].edges == std::vector<double>{0, 1, 2, 3});
  CHECK(ctl.axes[1].name == "region");
  CHECK(ctl.axes[1].labels == std::vector<std::string>{"a", "b", "c"});

  const auto& tr = m.channels[2];
  CHECK(tr.name == "tr");
  CHECK(tr.nbins == 6);
  REQUIRE(tr.axes.size() == 2);
  REQUIRE(tr.axes[0].edges.size() == 4);  // log transform: 1, 10, 100, 1000
  CHECK(tr.axes[0].edges[0] == doctest::Approx(1.0));
  CHECK(tr.axes[0].edges[1] == doctest::Approx(10.0));
  CHECK(tr.axes[0].edges[2] == doctest::Approx(100.0));
  CHECK(tr.axes[0].edges[3] == doctest::Approx(1000.0));
  REQUIRE(tr.axes[1].edges.size() == 3);  // pow(2): 0, sqrt(8), 4
  CHECK(tr.axes[1].edges[1] == doctest::Approx(std::sqrt(8.0)));

  const auto& gen = m.channels[3];
  CHECK(gen.name == "gen");
  CHECK(gen.masked);
  CHECK(gen.nbins == 12);  // flow=True: Regular(4) with under/overflow (6) x Boolean (2)
  REQUIRE(gen.axes.size() == 2);
  CHECK(gen.axes[0].name == "ptgen");
  CHECK(gen.axes[0].edges == std::vector<double>{0, 1, 2, 3, 4, 5, 6});
  CHECK(gen.axes[0].labels == std::vector<std::string>{"underflow (< 0)", "[0, 2)", "[2, 4)",
                                                       "[4, 6)", "[6, 8)", "overflow (>= 8)"});
  CHECK(gen.axes[1].labels == std::vector<std::string>{"False", "True"});
}

}  // namespace

TEST_CASE("rabbit meta: Python's pickles of every value family, protocols 2 to 5") {
  std::ifstream in(Fixture("values.json"));
  REQUIRE(in);
  const auto expected = nlohmann::ordered_json::parse(in);
  for (int protocol = 2; protocol <= 5; ++protocol) {
    INFO("protocol " << protocol);
    const auto doc = DecodeFile("values_p" + std::to_string(protocol) + ".pkl");
    CHECK(doc.protocol() == protocol);
    std::vector<std::string> unknown;
    const auto json = pk::ToJson(doc, doc.root(), 64, &unknown);
    CHECK(json.dump() == expected.dump());
    CHECK(unknown == std::vector<std::string>{"mylib.things.Thing"});
    // The shared list is one node referenced twice (the memo).
    const auto shared = pk::DictGet(doc, doc.root(), "shared");
    CHECK(pk::DictGet(doc, shared, "first") == pk::DictGet(doc, shared, "second"));
  }
}

TEST_CASE("rabbit meta: hist and boost_histogram axes, protocols 2 to 5") {
  for (int protocol = 2; protocol <= 5; ++protocol) {
    INFO("protocol " << protocol);
    const auto doc = DecodeFile("rabbit_p" + std::to_string(protocol) + ".pkl");
    const auto meta = lepus::io::InterpretRabbitMeta(doc, {});
    CHECK(meta.has_type);
    CHECK(meta.type == SystematicType::kLogNormal);
    CHECK(meta.symmetric_tensor == 1);
    const auto info = nlohmann::json::parse(meta.meta_info_json);
    CHECK(info["command"] == "rabbit_text2hdf5.py card.txt -o out");
    CHECK(info["args"]["nthreads"] == 4);
    CHECK(info["np_number"] == 2.5);
    CHECK(info["seeds"] == nlohmann::json::array({1, 2, 3}));
    CHECK(info["custom"]["__class__"] == "mylib.provenance.Record");
    CHECK(AnyContains(meta.warnings, "meta: unknown keys \"user_note\" are not used"));
    CHECK(AnyContains(meta.warnings, "meta_info holds mylib.provenance.Record"));
    CHECK(meta.warnings.size() == 2);
    Model m;
    m.channels = meta.channels;
    CheckFixtureChannels(m);

    // The axis objects themselves: classes, flow options, names, labels.
    const auto ci = pk::DictGet(doc, doc.root(), "channel_info");
    const auto sig_axes = pk::DictGet(doc, pk::DictGet(doc, ci, "sig"), "axes");
    const auto pt = lepus::io::DecodeAxis(doc, doc[sig_axes].items[0]);
    CHECK(pt.python_class == "hist.axis.Regular");
    CHECK(pt.core_class == "regular_none");
    CHECK(pt.label == "p_{T} (GeV)");
    CHECK_FALSE(pt.underflow);
    const auto charge = lepus::io::DecodeAxis(doc, doc[sig_axes].items[2]);
    CHECK(charge.core_class == "category_int");
    CHECK(charge.overflow);  // counted only with flow=True
    const auto gen_axes = pk::DictGet(doc, pk::DictGet(doc, ci, "gen"), "axes");
    const auto ptgen = lepus::io::DecodeAxis(doc, doc[gen_axes].items[0]);
    CHECK(ptgen.core_class == "regular_uoflow");
    CHECK(ptgen.underflow);
    CHECK(ptgen.overflow);
    CHECK(ptgen.edges == std::vector<double>{0, 2, 4, 6, 8});
  }
}

TEST_CASE("rabbit meta: the reader takes channels, axes and provenance from `meta`") {
  for (int protocol = 2; protocol <= 5; ++protocol) {
    INFO("protocol " << protocol);
    const std::string path =
        RabbitFile("rabbit_p" + std::to_string(protocol) + ".pkl", "rabbit_meta");
    ReadInfo info;
    const Model m = ReadFitInput(path, &info);
    CHECK(info.has_meta);
    CHECK(info.meta_format == "rabbit");
    CHECK(Contains(info.meta_info_json, "\"git_hash\":\"0123abc\""));
    CHECK(m.nbins == 63);
    CHECK(m.nbins_full == 75);
    CheckFixtureChannels(m);
    CHECK(AnyContains(info.warnings, path + ": meta: unknown keys \"user_note\""));
    CHECK_FALSE(AnyContains(info.warnings, "no meta_json"));
  }
}

TEST_CASE("rabbit meta: the channels survive a rewrite as meta_json (labels included)") {
  const Model m = ReadFitInput(RabbitFile("rabbit_p5.pkl", "rabbit_rewrite"));
  const std::string out = lepus::test::TempPath("rabbit_rewritten", ".hdf5");
  lepus::io::WriteFitInput(m, out);
  ReadInfo info;
  const Model r = ReadFitInput(out, &info);
  CHECK(info.meta_format == "meta_json");
  CheckFixtureChannels(r);
}

TEST_CASE("rabbit meta: systematic_type normal switches the model to additive systematics") {
  const std::string path =
      RabbitFile("rabbit_normal_p5.pkl", "rabbit_normal", SystematicType::kNormal);
  const Model m = ReadFitInput(path);
  CHECK(m.systematic_type == SystematicType::kNormal);
  const std::string asym =
      RabbitFile("rabbit_asymmetric_p5.pkl", "rabbit_asym", SystematicType::kNormal, true);
  CHECK(ReadFitInput(asym).asymmetric);
}

TEST_CASE("rabbit meta: inconsistent metadata is an input error naming the file and the value") {
  // symmetric_tensor True, but the tensor is asymmetric (and the other way round).
  const std::string p1 =
      RabbitFile("rabbit_p5.pkl", "rabbit_sym", SystematicType::kLogNormal, true);
  CHECK(ReadError(p1) == p1 + ": meta: symmetric_tensor is True, but the logk tensor is asymmetric "
                              "(avg and halfdiff planes)");
  const std::string p2 =
      RabbitFile("rabbit_asymmetric_p5.pkl", "rabbit_asym2", SystematicType::kNormal);
  CHECK(ReadError(p2) == p2 + ": meta: symmetric_tensor is False, but the logk tensor is symmetric "
                              "(no halfdiff plane)");
  // A masked channel before unmasked ones: the rows are in channel_info order, so the unmasked
  // bins would not be the first nbins rows.
  const std::string p3 = RabbitFile("rabbit_masked_first_p5.pkl", "rabbit_masked_first");
  CHECK(ReadError(p3) == p3 + ": meta: channel_info[\"sig\"] (\"sig\"): is unmasked after a masked "
                              "channel, but masked channels must come last");
  const std::string p4 = RabbitFile("rabbit_unknown_axis_p5.pkl", "rabbit_unknown_axis");
  CHECK(ReadError(p4) == p4 +
                             ": meta: channel_info[\"sig\"].axes[1]: <mylib.axes.MyAxis object> is "
                             "not a histogram axis (hist.axis / boost_histogram.axis Regular, "
                             "Variable, Integer, IntCategory, StrCategory or Boolean)");
  const std::string p5 = RabbitFile("rabbit_bad_type_p5.pkl", "rabbit_bad_type");
  CHECK(ReadError(p5) == p5 + ": meta: systematic_type is 'gaussian', but must be 'log_normal' or "
                              "'normal'");
  // Bin counts that do not add up: the same pickle on a tensor with other sizes.
  const std::string p6 = lepus::test::TempPath("rabbit_sizes", ".hdf5");
  lepus::models::SyntheticSpec spec;
  spec.nbins = 60;
  spec.nmasked = 12;
  lepus::io::WriteFitInput(lepus::models::MakeSyntheticModel(spec), p6);
  lepus::test::rabbit::WritePickleGroup(p6,
                                        lepus::test::rabbit::ReadBytes(Fixture("rabbit_p5.pkl")));
  CHECK(ReadError(p6) == p6 + ": meta: channel_info[\"gen\"].nbins: is 12, but the tensor has 72 "
                              "bins (hnorm rows), 63 of them in the channels before it");
  // An undecodable pickle names the byte offset and the opcode.
  auto bytes = lepus::test::rabbit::ReadBytes(Fixture("rabbit_p5.pkl"));
  bytes.resize(100);
  const std::string p7 = lepus::test::TempPath("rabbit_truncated", ".hdf5");
  lepus::io::WriteFitInput(lepus::test::rabbit::FixtureModel(SystematicType::kLogNormal, false),
                           p7);
  lepus::test::rabbit::WritePickleGroup(p7, bytes);
  const std::string e7 = ReadError(p7);
  CHECK(Contains(e7, p7 + ": meta/pickle_data: is not a pickle lepus can decode: byte "));
  CHECK(Contains(e7, "truncated"));
  // wums' layout version.
  const std::string p8 = lepus::test::TempPath("rabbit_version", ".hdf5");
  lepus::io::WriteFitInput(lepus::test::rabbit::FixtureModel(SystematicType::kLogNormal, false),
                           p8);
  lepus::test::rabbit::WritePickleGroup(
      p8, lepus::test::rabbit::ReadBytes(Fixture("rabbit_p5.pkl")), 2);
  CHECK(ReadError(p8) == p8 + ": meta: attribute narf_h5py_pickle_protocol_version: is [2], but "
                              "this lepus reads version 1 (wums' pickle layout)");
}

TEST_CASE("rabbit meta: unknown content is a warning, never silently ignored") {
  ReadInfo info;
  ReadFitInput(RabbitFile("rabbit_extra_channel_key_p5.pkl", "rabbit_extra"), &info);
  CHECK(AnyContains(info.warnings,
                    "meta: channel_info[\"ctl\"] has unknown keys \"start\", which "
                    "are not used"));
  ReadInfo info2;
  const Model m =
      ReadFitInput(RabbitFile("rabbit_other_transform_p5.pkl", "rabbit_transform"), &info2);
  CHECK(AnyContains(info2.warnings,
                    "meta: channel_info[\"tr\"].axes[0] (\"mass\"): transform "
                    "'other' is not log or sqrt, so its edges cannot be computed; "
                    "using integer bins"));
  CHECK(m.channels[2].axes[0].edges.empty());
  // Without the version attribute: a warning, and the pickle is read.
  const std::string p = lepus::test::TempPath("rabbit_noversion", ".hdf5");
  lepus::io::WriteFitInput(lepus::test::rabbit::FixtureModel(SystematicType::kLogNormal, false), p);
  lepus::test::rabbit::WritePickleGroup(p, lepus::test::rabbit::ReadBytes(Fixture("rabbit_p5.pkl")),
                                        -1);
  ReadInfo info3;
  CheckFixtureChannels(ReadFitInput(p, &info3));
  CHECK(AnyContains(info3.warnings, "narf_h5py_pickle_protocol_version is missing"));
}

TEST_CASE("rabbit meta: a large meta_info decodes (timing printed, not asserted)") {
  const std::string big = Fixture("rabbit_big_p5.pkl");
  std::ifstream probe(big);
  if (!probe) return;  // written only with make_pickles.py --big N
  const auto bytes = lepus::test::rabbit::ReadBytes(big);
  const auto t0 = std::chrono::steady_clock::now();
  const auto doc = pk::Decode(bytes.data(), bytes.size());
  const auto t1 = std::chrono::steady_clock::now();
  const auto meta = lepus::io::InterpretRabbitMeta(doc, {});
  const auto t2 = std::chrono::steady_clock::now();
  MESSAGE(bytes.size() << " bytes, " << doc.size() << " nodes: decode "
                       << std::chrono::duration<double>(t1 - t0).count() << " s, interpret "
                       << std::chrono::duration<double>(t2 - t1).count() << " s");
  CHECK(meta.channels.size() == 4);
}
