// lepus_make_rabbit_file PICKLE OUT.h5 [normal] [asymmetric]: a rabbit-layout fit input whose
// `meta` group holds PICKLE (tests/io/rabbit_file.h), for the CLI tests.
#include <cstdio>
#include <exception>
#include <string>

#include "rabbit_file.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PICKLE OUT.h5 [normal] [asymmetric]\n", argv[0]);
    return 2;
  }
  bool normal = false, asymmetric = false;
  for (int i = 3; i < argc; ++i) {
    normal = normal || std::string(argv[i]) == "normal";
    asymmetric = asymmetric || std::string(argv[i]) == "asymmetric";
  }
  try {
    lepus::test::rabbit::WriteRabbitFile(
        argv[1], argv[2],
        normal ? lepus::engine::SystematicType::kNormal : lepus::engine::SystematicType::kLogNormal,
        asymmetric);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lepus_make_rabbit_file: %s\n", e.what());
    return 1;
  }
  return 0;
}
