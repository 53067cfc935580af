// Writes the small TensorWriter seeds of corpus/fit_input into the directory given as argv[1]:
// dense and sparse storage, gzip, asymmetric logk, a masked channel, pseudo-data, groups and a
// normal (additive) model. Run by hand (the files are committed); not part of any test.
#include <cstdio>
#include <string>
#include <vector>

#include "lepus/io/writer.h"

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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 1;
  }
  const std::string out = argv[1];
  const auto lognormal = lepus::engine::SystematicType::kLogNormal;
  Small(lognormal).Write(out + "/tensorwriter_dense.h5");
  WriteOptions sparse;
  sparse.storage = StorageKind::kSparse;
  Small(lognormal).Write(out + "/tensorwriter_sparse.h5", sparse);
  WriteOptions gz;
  gz.gzip = true;
  Small(lognormal).Write(out + "/tensorwriter_dense_gzip.h5", gz);
  Small(lepus::engine::SystematicType::kNormal).Write(out + "/tensorwriter_normal_sparse.h5",
                                                      sparse);
  return 0;
}
