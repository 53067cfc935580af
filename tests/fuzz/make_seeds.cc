// Writes seeds for the fuzz targets (run by hand; the files are committed; not part of any test):
//   make_seeds fit_input DIR: small TensorWriter fit inputs: dense and sparse storage, gzip,
//     asymmetric logk, a masked channel, pseudo-data, groups and a normal (additive) model;
//   make_seeds config_json DIR: the light presets of produce wmass / wlike / helicity / dilepton
//     as `lepus produce ... --print-config` prints them (WMassConfig/DileptonConfig::ToJson).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "lepus/io/writer.h"
#include "lepus/models/dilepton.h"
#include "lepus/models/wmass.h"

namespace {

using lepus::engine::Axis;
using lepus::engine::StorageKind;
using lepus::io::Symmetrization;
using lepus::io::TensorWriter;
using lepus::io::WriteOptions;

TensorWriter Small(lepus::engine::SystematicType type) {
  TensorWriter w(type);
  w.AddChannel("ch", {Axis{"x", {0.0, 1.0, 2.0, 3.0}}});
  w.AddChannel("side", 2, /*masked=*/true);
  w.AddProcess("sig", true);
  w.AddProcess("bkg", false);
  w.SetData("ch", {11, 9, 4});
  w.AddPseudoData("asimov_like", "ch", {10, 9, 5});
  w.SetNominal("ch", "sig", {6, 5, 2}, {1, 1, 0.5});
  w.SetNominal("ch", "bkg", {4, 4, 3}, {0.5, 0.5, 0.5});
  w.SetNominal("side", "sig", {1, 2});
  w.SetNominal("side", "bkg", {3, 1});
  w.DeclareSystematic("shift", 1.0, /*noi=*/true, 50.0, "MeV");
  w.AddNormSystematic("lumi", "bkg", "ch", 1.025);
  w.AddNormSystematic("xsec", "sig", "ch", 1.1, 0.95);
  w.AddShapeSystematic("shift", "sig", "ch", {6.5, 5.0, 1.5}, {5.5, 5.0, 2.5});
  w.AddShapeSystematic("res", "bkg", "ch", {4.2, 3.9, 2.9}, {}, Symmetrization::kAverage);
  w.DeclareSystematic("free", 0.0);
  w.AddNormSystematic("free", "bkg", "side", 1.3);
  w.AddToGroup("theory", "xsec");
  w.AddToGroup("theory", "res");
  w.AddToGroup("lumi", "lumi");
  return w;
}

void WriteConfigs(const std::string& out) {
  namespace m = lepus::models;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(out + "/" + name) << text << "\n";
  };
  write("wmass_light.json", m::WMassConfig::Light().ToJson());
  write("wlike_light.json", m::WMassConfig::WLikeLight().ToJson());
  write("helicity_light.json", m::WMassConfig::Helicity(m::WMassPreset::kLight).ToJson());
  write("dilepton_light.json", m::DileptonConfig::Preset(m::DileptonPreset::kLight).ToJson());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s fit_input|config_json OUTDIR\n", argv[0]);
    return 1;
  }
  const std::string what = argv[1], out = argv[2];
  if (what == "config_json") {
    WriteConfigs(out);
    return 0;
  }
  const auto lognormal = lepus::engine::SystematicType::kLogNormal;
  Small(lognormal).Write(out + "/tensorwriter_dense.h5");
  WriteOptions sparse;
  sparse.storage = StorageKind::kSparse;
  Small(lognormal).Write(out + "/tensorwriter_sparse.h5", sparse);
  WriteOptions gz;
  gz.gzip = true;
  Small(lognormal).Write(out + "/tensorwriter_dense_gzip.h5", gz);
  Small(lepus::engine::SystematicType::kNormal)
      .Write(out + "/tensorwriter_normal_sparse.h5", sparse);
  return 0;
}
