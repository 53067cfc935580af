// Output files (lepus/io/output.h): atomic replacement, temporaries removed on every path,
// NAME_MAX-safe temporary names, the symbolic-link rule and the checks before work.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "io_test_util.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/io/errors.h"
#include "lepus/io/output.h"
#include "lepus/io/reader.h"
#include "lepus/io/results.h"
#include "lepus/io/writer.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using lepus::io::AtomicOutput;
using lepus::io::CheckOutputs;
using lepus::io::InputError;

// A fresh empty directory for one test.
fs::path FreshDir(const std::string& stem) {
  const fs::path dir = lepus::test::TempPath(stem, "");
  fs::create_directories(dir);
  return dir;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// Files in `dir` whose name contains ".lepus-tmp-" (left-over temporaries).
int Temporaries(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".lepus-tmp-") != std::string::npos) ++n;
  return n;
}

// The message of the InputError thrown by f ("" if none).
template <typename F>
std::string ErrorOf(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("AtomicOutput replaces the target only on Commit and removes its temporary otherwise") {
  const fs::path dir = FreshDir("atomic");
  const fs::path target = dir / "out.json";
  Spit(target, "old contents");
  {
    AtomicOutput out(target.string());
    CHECK(fs::path(out.temp_path()).parent_path() == dir);
    CHECK(Temporaries(dir) == 1);
    out.Write("new");
    CHECK(Slurp(target) == "old contents");  // not yet
    out.Write(" contents");
    out.Commit();
  }
  CHECK(Slurp(target) == "new contents");
  CHECK(Temporaries(dir) == 0);
  {
    AtomicOutput out(target.string());
    out.Write("half-writ");
    // destroyed without Commit: an error path
  }
  CHECK(Slurp(target) == "new contents");
  CHECK(Temporaries(dir) == 0);
  AtomicOutput out(target.string());
  out.Discard();
  CHECK(Temporaries(dir) == 0);
  CHECK_THROWS_AS(out.Commit(), InputError);
}

TEST_CASE("AtomicOutput keeps the permission bits of a replaced file") {
  const fs::path dir = FreshDir("mode");
  const fs::path target = dir / "out.txt";
  Spit(target, "x");
  REQUIRE(::chmod(target.c_str(), 0640) == 0);
  lepus::io::WriteFileAtomically(target.string(), "y");
  struct stat st {};
  REQUIRE(::stat(target.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(Slurp(target) == "y");
}

TEST_CASE("temporary names stay within NAME_MAX for the longest legal target name") {
  const fs::path dir = FreshDir("namemax");
  const long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  REQUIRE(name_max > 0);
  // ASCII, and a name of 2-byte UTF-8 characters (the cut must not split one).
  const std::string ascii(static_cast<std::size_t>(name_max), 'a');
  std::string utf8;
  while (static_cast<long>(utf8.size()) + 2 <= name_max) utf8 += "\xc3\xa9";  // e-acute
  for (const std::string& name : {ascii, utf8}) {
    const std::string tmp = lepus::io::TemporaryNameBeside((dir / name).string());
    const std::string base = fs::path(tmp).filename().string();
    CHECK(static_cast<long>(base.size()) <= name_max);
    CHECK(base.find(".lepus-tmp-") != std::string::npos);
    // No dangling UTF-8 lead byte before the suffix.
    const std::size_t cut = base.find(".lepus-tmp-");
    if (cut > 1) CHECK((static_cast<unsigned char>(base[cut - 1]) & 0xC0) != 0xC0);
    lepus::io::WriteFileAtomically((dir / name).string(), "long");
    CHECK(Slurp(dir / name) == "long");
  }
  CHECK(Temporaries(dir) == 0);
}

TEST_CASE("an output that is a symbolic link is written through: the link stays") {
  const fs::path dir = FreshDir("symlink");
  fs::create_directories(dir / "real");
  Spit(dir / "real" / "file.json", "old");
  fs::create_symlink("real/file.json", dir / "link.json");
  CHECK(lepus::io::ResolveOutputPath((dir / "link.json").string()) ==
        (dir / "real" / "file.json").string());
  lepus::io::WriteFileAtomically((dir / "link.json").string(), "new");
  CHECK(fs::is_symlink(dir / "link.json"));
  CHECK(Slurp(dir / "real" / "file.json") == "new");
  CHECK(Temporaries(dir / "real") == 0);
  CHECK(Temporaries(dir) == 0);
  // A link to a file that does not exist yet creates it; a loop is refused.
  fs::create_symlink("real/new.json", dir / "dangling.json");
  lepus::io::WriteFileAtomically((dir / "dangling.json").string(), "created");
  CHECK(Slurp(dir / "real" / "new.json") == "created");
  fs::create_symlink("loop2", dir / "loop1");
  fs::create_symlink("loop1", dir / "loop2");
  CHECK(ErrorOf([&] {
          lepus::io::WriteFileAtomically((dir / "loop1").string(), "x");
        }).find("too many levels of symbolic links") != std::string::npos);
}

TEST_CASE("CheckOutputs refuses inputs, duplicates, non-regular files and missing directories") {
  const fs::path dir = FreshDir("check");
  const fs::path input = dir / "in.h5";
  Spit(input, "input bytes");
  const std::string in = input.string();
  auto check = [&](const std::vector<lepus::io::OutputTarget>& outs) {
    return ErrorOf([&] { CheckOutputs(outs, {in}); });
  };
  // The input itself, through a symbolic link, through a hard link, through "dir/../".
  CHECK(check({{"-o", in}}).find("-o " + in + " is the same file as the input " + in) == 0);
  fs::create_symlink("in.h5", dir / "sym.h5");
  CHECK(check({{"--json", (dir / "sym.h5").string()}}).find("is the same file as the input") !=
        std::string::npos);
  fs::create_hard_link(input, dir / "hard.h5");
  CHECK(check({{"-o", (dir / "hard.h5").string()}}).find("is the same file as the input") !=
        std::string::npos);
  fs::create_directories(dir / "sub");
  CHECK(check({{"-o", (dir / "sub" / ".." / "in.h5").string()}}).find("same file as the input") !=
        std::string::npos);
  // Two outputs naming one file (also when it does not exist yet), and stdout twice.
  const std::string r = (dir / "r.out").string();
  CHECK(check({{"--json", r}, {"-o", (dir / "sub" / ".." / "r.out").string()}})
            .find("is also the output of --json " + r) != std::string::npos);
  CHECK(check({{"--json", "-"}, {"--csv", "-"}})
            .find("standard output is already the output of "
                  "--json -") != std::string::npos);
  CHECK(check({{"-o", "-", false}}).find("cannot go to standard output") != std::string::npos);
  // Not a regular file.
  CHECK(check({{"-o", dir.string()}}).find("exists and is a directory") != std::string::npos);
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK(check({{"--json", (dir / "fifo").string()}}).find("exists and is a FIFO") !=
        std::string::npos);
  CHECK(check({{"--json", "/dev/null"}}).find("exists and is a character device") !=
        std::string::npos);
  // Directories.
  CHECK(check({{"-o", (dir / "nope" / "r.h5").string()}}).find("does not exist") !=
        std::string::npos);
  CHECK(check({{"-o", (input / "r.h5").string()}}).find("is not a directory") != std::string::npos);
  // Fine: new names, an existing regular output, stdout once, empty = not requested.
  CHECK(check({{"-o", r}, {"--json", "-"}, {"--csv", ""}, {"--x", (dir / "in.h5.out").string()}})
            .empty());
  CHECK(Temporaries(dir) == 0);  // the directory probe leaves nothing behind
}

TEST_CASE("HDF5 writers are atomic: a failed write keeps the old file and leaves no temporary") {
  const fs::path dir = FreshDir("h5atomic");
  const fs::path target = dir / "fit.h5";
  const lepus::engine::Model model =
      lepus::test::io::RichModel(false, lepus::engine::SystematicType::kLogNormal, 7);
  lepus::io::WriteFitInput(model, target.string());
  const std::string before = Slurp(target);
  // An invalid model is refused before anything is written.
  lepus::engine::Model bad = model;
  bad.data_obs[0] = -1.0;
  CHECK_THROWS_AS(lepus::io::WriteFitInput(bad, target.string()), InputError);
  CHECK(Slurp(target) == before);
  CHECK(Temporaries(dir) == 0);
  // A results file through the same path; then it reads back as what it is.
  lepus::engine::Likelihood lik(lepus::io::ReadFitInput(target.string()));
  const lepus::engine::FitResult res = lepus::engine::Fit(lik);
  lepus::io::WriteResultsHdf5((dir / "res.h5").string(), lik, res, {});
  CHECK(fs::file_size(dir / "res.h5") > 0);
  CHECK(Temporaries(dir) == 0);
}
