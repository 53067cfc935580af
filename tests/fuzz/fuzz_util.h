// Shared pieces of the libFuzzer targets (tests/fuzz, built only with -DLEPUS_SANITIZE=ON).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace lepus::fuzz {

// A private directory on tmpfs (/dev/shm when it exists, else $TMPDIR or /tmp) for the files a
// target feeds to the real file readers; created once per process, removed at exit.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    std::string base = "/dev/shm";
    if (access(base.c_str(), W_OK) != 0) {
      const char* t = std::getenv("TMPDIR");
      base = t != nullptr ? t : "/tmp";
    }
    std::string templ = base + "/lepus-fuzz-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror("lepus fuzz: mkdtemp");
      std::abort();
    }
    static std::string keep;
    keep = templ;
    std::atexit([] { std::system(("rm -rf '" + keep + "'").c_str()); });
    return templ;
  }();
  return dir;
}

inline void WriteBytes(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(("lepus fuzz: cannot write " + path).c_str());
    std::abort();
  }
}

// With LEPUS_FUZZ_VERBOSE set (replaying one input: `lepus_fuzz_X FILE`), prints the message of
// a documented rejection, to check that it names the file and the key.
inline void Verbose(const std::exception& e) {
  static const bool on = std::getenv("LEPUS_FUZZ_VERBOSE") != nullptr;
  if (on) std::fprintf(stderr, "rejected: %s\n", e.what());
}

}  // namespace lepus::fuzz
