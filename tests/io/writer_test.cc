// TensorWriter known values (logk from templates, every symmetrisation, clipping, norm
// systematics, declarations, groups, ordering) and WriteFitInput's atomic write.
#include <cmath>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "io_test_util.h"
#include "lepus/io/reader.h"
#include "lepus/io/writer.h"
#include "test_support.h"

namespace {

using lepus::engine::Model;
using lepus::engine::StorageKind;
using lepus::engine::SystematicType;
using lepus::io::InputError;
using lepus::io::Symmetrization;
using lepus::io::TensorWriter;
using lepus::test::io::Contains;
using lepus::test::io::ExpectSameModel;

struct Logk {
  double avg = 0.0, halfdiff = 0.0;
  bool present = false;
};

int Index(const std::vector<std::string>& names, const std::string& name) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  FAIL("no such name: " << name);
  return -1;
}

Logk At(const Model& m, std::int64_t bin, const std::string& proc, const std::string& syst) {
  const int p = Index(m.processes, proc), s = Index(m.systematics, syst);
  const auto& t = m.tensor;
  for (std::int64_t r = 0; r < t.num_rows(); ++r) {
    if (t.row_bin[r] != bin || t.row_proc[r] != p) continue;
    for (std::int64_t i = t.row_start[r]; i < t.row_start[r + 1]; ++i)
      if (t.syst[i] == s)
        return {t.logk_avg[i], t.logk_halfdiff.empty() ? 0.0 : t.logk_halfdiff[i], true};
  }
  return {};
}

// Channel "sr" (3 bins over x in [0, 3]) and a masked channel "cr" (2 bins) declared first;
// background declared before the signal.
TensorWriter Basic(SystematicType type = SystematicType::kLogNormal) {
  TensorWriter w(type);
  w.AddChannel("cr", 2, /*masked=*/true);
  w.AddChannel("sr", {{"x", {0.0, 1.0, 2.0, 3.0}}});
  w.AddProcess("bkg", false);
  w.AddProcess("sig", true);
  w.SetData("sr", {120, 70, 30});
  w.SetNominal("sr", "bkg", {100, 50, 25}, {4, 2, 1});
  w.SetNominal("sr", "sig", {10, 20, 0});
  w.SetNominal("cr", "bkg", {7, 8});
  return w;
}

constexpr double kTol = 1e-14;

}  // namespace

TEST_CASE("writer: ordering of channels and processes, data, nominal, sumw2") {
  TensorWriter w = Basic();
  const Model m = w.Build();
  REQUIRE(m.channels.size() == 2);
  CHECK(m.channels[0].name == "sr");
  CHECK(m.channels[1].name == "cr");
  CHECK(m.channels[1].masked);
  CHECK(m.channels[0].axes[0].edges == std::vector<double>{0, 1, 2, 3});
  CHECK(m.nbins == 3);
  CHECK(m.nbins_full == 5);
  CHECK(m.processes == std::vector<std::string>{"sig", "bkg"});
  CHECK(m.num_signals == 1);
  CHECK(m.data_obs == Eigen::Vector3d(120, 70, 30));
  const Eigen::MatrixXd norm = m.DenseNorm();
  CHECK(norm(0, 0) == 10);
  CHECK(norm(2, 0) == 0);
  CHECK(norm(0, 1) == 100);
  CHECK(norm(3, 1) == 7);  // masked bins after the unmasked ones
  CHECK(norm(4, 1) == 8);
  CHECK(m.sumw2(1, 1) == 2);
  CHECK(m.sumw2(0, 0) == 0);  // sig has no MC variance
  CHECK(m.sumw == norm);
  CHECK(m.tensor.num_rows() == 7);  // (2, sig) has zero yield and no logk
  CHECK(m.storage == StorageKind::kDense);
  CHECK_FALSE(m.asymmetric);
}

TEST_CASE("writer: shape systematic logk from templates, asymmetric, with clipping") {
  TensorWriter w = Basic();
  // bkg: up 110/55/0 (bin 2 clipped), down 95/40/30.
  w.AddShapeSystematic("shape", "bkg", "sr", {110, 55, 0}, {95, 40, 30});
  CHECK(w.clipped_entries() == 1);
  // sig: nominal 0 in bin 2 with a non-zero template: the variation is lost (clipped, dropped).
  w.AddShapeSystematic("sigshape", "sig", "sr", {11, 22, 5}, {9, 18, 0});
  CHECK(w.clipped_entries() == 2);
  const Model m = w.Build();
  CHECK(m.asymmetric);
  const double lu[3] = {std::log(1.1), std::log(1.1), std::log(1e-3)};
  const double ld[3] = {-std::log(0.95), -std::log(0.8), -std::log(1.2)};
  for (int b = 0; b < 3; ++b) {
    CAPTURE(b);
    const Logk k = At(m, b, "bkg", "shape");
    REQUIRE(k.present);
    CHECK(k.avg == doctest::Approx(0.5 * (lu[b] + ld[b])).epsilon(kTol));
    CHECK(k.halfdiff == doctest::Approx(0.5 * (lu[b] - ld[b])).epsilon(kTol));
    // theta = +1 reproduces up, theta = -1 down (alpha(+-1) = +-1).
    const double nom[3] = {100, 50, 25}, up[3] = {110, 55, 0}, down[3] = {95, 40, 30};
    const double up_model = nom[b] * std::exp(k.avg + k.halfdiff);
    const double down_model = nom[b] * std::exp(-(k.avg - k.halfdiff));
    CHECK(up_model == doctest::Approx(up[b] > 0 ? up[b] : 1e-3 * nom[b]).epsilon(1e-12));
    CHECK(down_model == doctest::Approx(down[b]).epsilon(1e-12));
  }
  const Logk s2 = At(m, 2, "sig", "sigshape");
  CHECK_FALSE(s2.present);
  CHECK(At(m, 1, "sig", "sigshape").avg == doctest::Approx(0.5 * (std::log(1.1) - std::log(0.9))));
}

TEST_CASE("writer: symmetrisations") {
  const std::vector<double> up{120, 55, 30}, down{90, 48, 24};
  const double nom[3] = {100, 50, 25};
  auto logks = [&](int b) {
    const double lu = std::log(up[b] / nom[b]), ld = -std::log(down[b] / nom[b]);
    return std::pair<double, double>{lu, ld};
  };
  for (auto sym : {Symmetrization::kNone, Symmetrization::kAverage, Symmetrization::kConservative,
                   Symmetrization::kLinear, Symmetrization::kQuadratic}) {
    CAPTURE(lepus::io::ToString(sym));
    CHECK(lepus::io::SymmetrizationFromString(lepus::io::ToString(sym)) == sym);
    TensorWriter w = Basic();
    w.AddShapeSystematic("s", "bkg", "sr", up, down, sym);
    const Model m = w.Build();
    CHECK(m.asymmetric == (sym == Symmetrization::kNone));
    const bool split = sym == Symmetrization::kLinear || sym == Symmetrization::kQuadratic;
    CHECK(m.systematics == (split ? std::vector<std::string>{"sSymAvg", "sSymDiff"}
                                  : std::vector<std::string>{"s"}));
    for (int b = 0; b < 3; ++b) {
      CAPTURE(b);
      const auto [lu, ld] = logks(b);
      const double avg = 0.5 * (lu + ld), hd = 0.5 * (lu - ld);
      switch (sym) {
        case Symmetrization::kNone:
          CHECK(At(m, b, "bkg", "s").avg == doctest::Approx(avg).epsilon(kTol));
          CHECK(At(m, b, "bkg", "s").halfdiff == doctest::Approx(hd).epsilon(kTol));
          break;
        case Symmetrization::kAverage:
          CHECK(At(m, b, "bkg", "s").avg == doctest::Approx(avg).epsilon(kTol));
          break;
        case Symmetrization::kConservative: {
          const double c = std::abs(lu) >= std::abs(ld) ? lu : std::copysign(std::abs(ld), lu);
          CHECK(At(m, b, "bkg", "s").avg == doctest::Approx(c).epsilon(kTol));
          break;
        }
        default: {
          const double f = sym == Symmetrization::kQuadratic ? std::sqrt(3.0) : 1.0;
          CHECK(At(m, b, "bkg", "sSymAvg").avg == doctest::Approx(avg).epsilon(kTol));
          CHECK(At(m, b, "bkg", "sSymDiff").avg == doctest::Approx(f * hd).epsilon(kTol));
        }
      }
    }
  }
  CHECK_THROWS_AS(lepus::io::SymmetrizationFromString("mean"), std::invalid_argument);
}

TEST_CASE(
    "writer: conservative picks logkup or logkdown, whichever is larger, with its own sign "
    "(rabbit)") {
  TensorWriter w = Basic();
  // bin 0: |ln 1.05| < |-ln 0.8|: logkdown = -ln 0.8 (> 0, a two-sided variation).
  // bin 2: one-sided (up 1.02, down 1.10): logkdown = -ln 1.1 < 0 is the larger and keeps its sign.
  w.AddShapeSystematic("s", "bkg", "sr", {105, 50, 25.5}, {80, 50, 27.5},
                       Symmetrization::kConservative);
  const Model m = w.Build();
  CHECK(At(m, 0, "bkg", "s").avg == doctest::Approx(-std::log(0.8)).epsilon(kTol));
  CHECK_FALSE(At(m, 1, "bkg", "s").present);  // no variation: entry dropped
  CHECK(At(m, 2, "bkg", "s").avg == doctest::Approx(-std::log(1.1)).epsilon(kTol));
}

TEST_CASE("writer: symmetric shape systematic (mirrored down)") {
  TensorWriter w = Basic();
  w.AddShapeSystematic("mirror", "bkg", "sr", {110, 45, 25});
  const Model m = w.Build();
  CHECK_FALSE(m.asymmetric);
  CHECK(At(m, 0, "bkg", "mirror").avg == doctest::Approx(std::log(1.1)).epsilon(kTol));
  CHECK(At(m, 1, "bkg", "mirror").avg == doctest::Approx(std::log(0.9)).epsilon(kTol));
  CHECK_FALSE(At(m, 2, "bkg", "mirror").present);
}

TEST_CASE("writer: norm systematics") {
  TensorWriter w = Basic();
  w.AddNormSystematic("lumi", "bkg", "sr", 1.05);
  w.AddNormSystematic("lumi", "bkg", "cr", 1.05);
  w.AddNormSystematic("xsec", "sig", "sr", 1.1, 0.8);
  const Model m = w.Build();
  CHECK(m.asymmetric);
  for (int b : {0, 1, 2, 3, 4})
    CHECK(At(m, b, "bkg", "lumi").avg == doctest::Approx(std::log(1.05)).epsilon(kTol));
  CHECK(At(m, 0, "bkg", "lumi").halfdiff == 0.0);
  const double lu = std::log(1.1), ld = -std::log(0.8);
  CHECK(At(m, 0, "sig", "xsec").avg == doctest::Approx(0.5 * (lu + ld)).epsilon(kTol));
  CHECK(At(m, 0, "sig", "xsec").halfdiff == doctest::Approx(0.5 * (lu - ld)).epsilon(kTol));
  CHECK_FALSE(At(m, 2, "sig", "xsec").present);  // zero nominal
  CHECK(w.clipped_entries() == 0);

  TensorWriter bad = Basic();
  CHECK_THROWS_WITH_AS(bad.AddNormSystematic("k", "bkg", "sr", -1.0),
                       doctest::Contains("kappa_up is -1, but must be finite and > 0"), InputError);
}

TEST_CASE("writer: normal (additive) systematics") {
  TensorWriter w = Basic(SystematicType::kNormal);
  w.AddShapeSystematic("shift", "bkg", "sr", {110, 45, 0}, {95, 52, 20});
  w.AddNormSystematic("norm", "sig", "sr", 1.2);
  w.AddShapeSystematic("lin", "bkg", "sr", {110, 45, 0}, {95, 52, 20}, Symmetrization::kQuadratic);
  const Model m = w.Build();
  CHECK(m.systematic_type == SystematicType::kNormal);
  CHECK(w.clipped_entries() == 0);                           // no clipping for additive systematics
  const double up[3] = {10, -5, -25}, down[3] = {5, -2, 5};  // up - nom, nom - down
  for (int b = 0; b < 3; ++b) {
    CHECK(At(m, b, "bkg", "shift").avg == doctest::Approx(0.5 * (up[b] + down[b])).epsilon(kTol));
    CHECK(At(m, b, "bkg", "shift").halfdiff ==
          doctest::Approx(0.5 * (up[b] - down[b])).epsilon(kTol));
    CHECK(At(m, b, "bkg", "linSymDiff").avg ==
          doctest::Approx(std::sqrt(3.0) * 0.5 * (up[b] - down[b])).epsilon(kTol));
  }
  CHECK(At(m, 0, "sig", "norm").avg == doctest::Approx(0.2 * 10).epsilon(kTol));
  CHECK(At(m, 1, "sig", "norm").avg == doctest::Approx(0.2 * 20).epsilon(kTol));
}

TEST_CASE("writer: declarations, NOIs, scales, groups") {
  TensorWriter w = Basic();
  w.DeclareSystematic("mass", 0.0, /*noi=*/true, 100.0, "MeV");
  w.DeclareSystematic("pdf", 1.5);
  w.AddShapeSystematic("mass", "sig", "sr", {11, 21, 0}, {9, 19, 0});
  w.AddShapeSystematic("pdf", "bkg", "sr", {101, 51, 26});
  w.AddShapeSystematic("scale", "bkg", "sr", {102, 52, 24}, {99, 49, 26}, Symmetrization::kLinear);
  w.DeclareSystematic("scale", 2.0);  // after the split: applies to both halves
  w.AddToGroup("theory", "pdf");
  w.AddToGroup("theory", "scale");  // a split name: both halves
  w.AddToGroup("mass", "mass");
  const Model m = w.Build();
  CHECK(m.systematics == std::vector<std::string>{"mass", "pdf", "scaleSymAvg", "scaleSymDiff"});
  CHECK(m.constraint_weights == std::vector<double>{0.0, 1.0 / 2.25, 0.25, 0.25});
  CHECK(m.noi_indices == std::vector<int>{0});
  CHECK(m.systematic_scales == std::vector<double>{100, 0, 0, 0});
  CHECK(m.systematic_units == std::vector<std::string>{"MeV", "", "", ""});
  REQUIRE(m.groups.size() == 2);
  CHECK(m.groups[0].name == "theory");
  CHECK(m.groups[0].members == std::vector<int>{1, 2, 3});
  CHECK(m.groups[1].members == std::vector<int>{0});
}

TEST_CASE("writer: pseudodata") {
  TensorWriter w = Basic();
  w.AddPseudoData("toy1", "sr", {1, 2, 3});
  w.AddPseudoData("toy2", "sr", {4, 5, 6});
  const Model m = w.Build();
  CHECK(m.pseudodata_names == std::vector<std::string>{"toy1", "toy2"});
  CHECK(m.pseudodata(2, 1) == 6);
  CHECK_THROWS_WITH_AS(w.AddPseudoData("toy1", "cr", {1, 2}), doctest::Contains("masked"),
                       InputError);
}

TEST_CASE("writer: inconsistent input is an InputError, never truncated") {
  auto expect = [](auto&& fn, const std::string& part) {
    try {
      fn();
      FAIL("expected InputError containing: " << part);
    } catch (const InputError& e) {
      CAPTURE(e.what());
      CHECK(Contains(e.what(), part));
    }
  };
  expect(
      [] {
        Basic().SetNominal("sr", "nosuch", {1, 2, 3});
      },
      "process \"nosuch\" is not defined");
  expect([] { Basic().SetData("nosuch", {1}); }, "channel \"nosuch\" is not defined");
  expect(
      [] {
        Basic().SetData("sr", {1, 2});
      },
      "SetData(\"sr\"): values has 2 entries, but must have one per bin of the channel (3)");
  expect([] { Basic().SetData("cr", {1, 2}); }, "masked");
  expect([] { Basic().SetData("sr", {1, -2, 3}); }, "values[1] is -2, but must be >= 0");
  expect(
      [] {
        TensorWriter w = Basic();
        w.AddProcess("other", false);
        w.SetNominal("sr", "other", {1, 2, 3}, {1, 2});
      },
      "sumw2 has 2 entries, but must be empty or have as many as sumw (3)");
  expect(
      [] {
        TensorWriter w = Basic();
        w.AddProcess("other", false);
        w.SetNominal("sr", "other", {1, 2, 3, 4});
      },
      "sumw has 4 entries, but must have one per bin of the channel (3)");
  expect(
      [] {
        Basic().AddShapeSystematic("s", "bkg", "sr", {1, 2});
      },
      "up has 2 entries, but must have one per bin of the channel (3)");
  expect(
      [] {
        Basic().AddShapeSystematic("s", "bkg", "sr", {1, 2, 3}, {1, 2, 3, 4});
      },
      "down has 4 entries");
  expect(
      [] {
        Basic().AddShapeSystematic("s", "bkg", "sr", {1, NAN, 3});
      },
      "up[1] is nan, but must be finite");
  expect(
      [] {
        Basic().AddShapeSystematic("s", "sig", "cr", {1, 2});
      },
      "no nominal template in the channel");
  expect(
      [] {
        TensorWriter w = Basic();
        w.AddShapeSystematic("s", "bkg", "sr", {1, 2, 3});
        w.AddNormSystematic("s", "bkg", "sr", 1.1);
      },
      "systematic \"s\" is already set for process \"bkg\" in channel \"sr\"");
  expect(
      [] {
        TensorWriter w = Basic();
        w.AddToGroup("g", "nosuch");
        w.Build();
      },
      "group \"g\": systematic \"nosuch\" is not defined");
  expect(
      [] {
        TensorWriter w;
        w.AddChannel("a", 2);
        w.AddProcess("p", true);
        w.SetNominal("a", "p", {1, 2});
        w.Build();
      },
      "channel \"a\" is unmasked but has no data");
  expect([] { Basic().AddChannel("sr", 3); }, "defined twice");
  expect([] { Basic().AddProcess("sig", true); }, "defined twice");
  expect(
      [] {
        TensorWriter().AddChannel("x", {{"x", {0, 2, 1}}});
      },
      "edges[2] is 1, but must be finite and > edges[1] = 2");
  expect([] { TensorWriter().Build(); }, "no processes");
  expect(
      [] {
        TensorWriter w = Basic();
        w.AddPseudoData("toy", "sr", {1, 2, 3});
        w.AddChannel("sr2", 1);
        w.SetData("sr2", {1});
        w.Build();
      },
      "pseudodata \"toy\" has no values for channel \"sr2\"");
  expect(
      [] {
        TensorWriter w = Basic();
        w.DeclareSystematic("w", NAN);
      },
      "prior_width is nan");
}

TEST_CASE("writer: Write() equals Build() through the reader, dense and sparse, gzip") {
  TensorWriter w = Basic();
  w.DeclareSystematic("mass", 0.0, true, 50.0, "MeV");
  w.AddShapeSystematic("mass", "sig", "sr", {11, 21, 0}, {9, 19, 0});
  w.AddShapeSystematic("shape", "bkg", "sr", {110, 55, 0}, {95, 40, 30});
  w.AddNormSystematic("lumi", "bkg", "cr", 1.05);
  w.AddToGroup("all", "mass");
  w.AddToGroup("all", "lumi");
  w.AddPseudoData("toy", "sr", {1, 2, 3});
  const Model built = w.Build();
  for (auto storage : {StorageKind::kDense, StorageKind::kSparse}) {
    for (bool gzip : {false, true}) {
      const std::string path = lepus::test::TempPath("tw", ".hdf5");
      w.Write(path, {storage, gzip, 6});
      lepus::io::ReadInfo info;
      const Model r = lepus::io::ReadFitInput(path, &info);
      CHECK(info.warnings.empty());
      ExpectSameModel(built, r, /*compare_storage=*/false);
      CHECK(r.storage == storage);
    }
  }
}

TEST_CASE("writer: atomic write leaves no temporary files and replaces the target") {
  const std::string dir = lepus::test::TempPath("atomic", "");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/out.hdf5";
  std::ofstream(path) << "old content";
  Basic().Write(path);
  CHECK(lepus::io::ReadFitInput(path).nbins == 3);
  // A failing write (invalid option) keeps the previous file and leaves no temporary.
  CHECK_THROWS_WITH_AS(Basic().Write(path, {StorageKind::kDense, true, 12}),
                       doctest::Contains("gzip_level is 12, but must be in [1, 9]"), InputError);
  CHECK(lepus::io::ReadFitInput(path).nbins == 3);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    CAPTURE(e.path().string());
    CHECK(e.path().filename() == "out.hdf5");
    ++files;
  }
  CHECK(files == 1);
}
