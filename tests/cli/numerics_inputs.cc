// numerics_inputs DIR: writes the small fit inputs of the numerical-status CLI tests
// (tests/cli/numerics_test.sh) with io::TensorWriter:
//   collinear.h5     signal + background in 20 bins; free systematics sysA and sysB whose logk
//                    agree to 1e-7 (relative), a Gaussian sysC; Asimov data (near-singular Hessian:
//                    scaled lambda_min / lambda_max ~ 1e-15)
//   collinear9.h5    the same with 1e-9 (singular to rounding: near-singular or not positive
//                    definite, depending on the rounding of the stored logk)
//   zero_bin.h5      3 bins, the middle one with no yield from any process and no event
//   zero_bin_events.h5  the same with 2 events in the empty bin (impossible model)
//   tiny.h5          the middle bin with yields of 1e-300 and no event
//   huge.h5          the middle bin with yields of 1e300 and 2e300 events
#include <cmath>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "lepus/io/writer.h"

namespace {

using lepus::io::TensorWriter;

void WriteCollinear(const std::string& path, double rel) {
  const int nb = 20;
  TensorWriter w;
  w.AddChannel("ch", nb);
  w.AddProcess("sig", true);
  w.AddProcess("bkg", false);
  std::vector<double> s(nb), b(nb), data(nb), upa(nb), upb(nb), upc(nb);
  for (int i = 0; i < nb; ++i) {
    s[i] = 50.0 * std::exp(-0.5 * std::pow((i - 10.0) / 3.0, 2));
    b[i] = 400.0 - 10.0 * i;
    data[i] = s[i] + b[i];
    const double a = 0.02 + 0.003 * i;
    upa[i] = b[i] * std::exp(a);
    upb[i] = b[i] * std::exp(a * (1.0 + rel * std::sin(1.3 * i)));
    upc[i] = b[i] * std::exp(0.01 * std::sin(0.7 * i));
  }
  w.SetNominal("ch", "sig", s);
  w.SetNominal("ch", "bkg", b);
  w.SetData("ch", data);
  w.DeclareSystematic("sysA", 0.0);  // free
  w.DeclareSystematic("sysB", 0.0);  // free
  w.DeclareSystematic("sysC", 1.0);
  w.AddShapeSystematic("sysA", "bkg", "ch", upa);
  w.AddShapeSystematic("sysB", "bkg", "ch", upb);
  w.AddShapeSystematic("sysC", "bkg", "ch", upc);
  w.Write(path);
}

// Three bins; the middle one has signal/background yields `mid` and `mid_data` events.
void WriteThreeBins(const std::string& path, double mid, double mid_data) {
  TensorWriter w;
  w.AddChannel("ch", 3);
  w.AddProcess("sig", true);
  w.AddProcess("bkg", false);
  w.SetNominal("ch", "sig", {20.0, mid, 30.0});
  w.SetNominal("ch", "bkg", {100.0, mid, 80.0});
  w.SetData("ch", {125.0, mid_data, 105.0});
  w.AddNormSystematic("lumi", "bkg", "ch", 1.05);
  w.Write(path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: numerics_inputs DIR\n";
    return 1;
  }
  const std::string dir = argv[1];
  try {
    WriteCollinear(dir + "/collinear.h5", 1e-7);
    WriteCollinear(dir + "/collinear9.h5", 1e-9);
    WriteThreeBins(dir + "/zero_bin.h5", 0.0, 0.0);
    WriteThreeBins(dir + "/zero_bin_events.h5", 0.0, 2.0);
    WriteThreeBins(dir + "/tiny.h5", 1e-300, 0.0);
    WriteThreeBins(dir + "/huge.h5", 1e300, 2e300);
  } catch (const std::exception& e) {
    std::cerr << "numerics_inputs: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
