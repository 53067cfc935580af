// Atomic, never-destructive output files (lepus/io/output.h).
#include "lepus/io/output.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "lepus/io/errors.h"

namespace lepus::io {
namespace fs = std::filesystem;

namespace {

std::string OsError(int err) { return std::strerror(err); }

// "-o results.h5" or "results.h5" when the flag is not known.
std::string Named(const OutputTarget& t) { return t.flag.empty() ? t.path : t.flag + " " + t.path; }

std::string FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// ---- Signal-time cleanup: a fixed table of live temporaries, read by the handler with only
// async-signal-safe operations (atomic loads and unlink).
constexpr int kSlots = 128;
struct Slot {
  std::atomic<int> state{0};  // 0 free, 1 being written, 2 live
  std::array<char, PATH_MAX> path{};
};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");
Slot g_slots[kSlots];

int RegisterTemporary(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_slots[i].state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      std::memcpy(g_slots[i].path.data(), path.c_str(), path.size() + 1);
      g_slots[i].state.store(2, std::memory_order_release);
      return i;
    }
  }
  return -1;  // more than kSlots outputs at once: still removed on errors, not on signals
}

void UnregisterTemporary(int slot) {
  if (slot >= 0) g_slots[slot].state.store(0, std::memory_order_release);
}

extern "C" void RemoveTemporariesAndReraise(int sig) {
  const int saved_errno = errno;
  for (Slot& s : g_slots)
    if (s.state.load(std::memory_order_acquire) == 2) ::unlink(s.path.data());
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  errno = saved_errno;
  // The signal is blocked while its handler runs: it is delivered, with the default action,
  // as soon as the handler returns.
  ::raise(sig);
}

// The directory's NAME_MAX (255 on the usual file systems).
long NameMax(const fs::path& dir) {
  const long n = ::pathconf(dir.empty() ? "." : dir.c_str(), _PC_NAME_MAX);
  return n > 0 ? n : 255;
}

// Key identifying an output file whether or not it exists yet: the canonical directory plus
// the file name.
std::string OutputKey(const std::string& resolved) {
  const fs::path p(resolved);
  std::error_code ec;
  fs::path dir = fs::canonical(p.parent_path(), ec);
  if (ec) dir = p.parent_path();
  return (dir / p.filename()).string();
}

}  // namespace

std::string ResolveOutputPath(const std::string& path) {
  std::error_code ec;
  fs::path cur = fs::absolute(fs::path(path), ec).lexically_normal();
  if (ec) throw InputError(path + ": cannot resolve the output path: " + ec.message());
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(cur.c_str(), &st) != 0) return cur.string();  // does not exist (yet)
    if (!S_ISLNK(st.st_mode)) return cur.string();
    std::array<char, PATH_MAX> buf{};
    const ssize_t n = ::readlink(cur.c_str(), buf.data(), buf.size() - 1);
    if (n < 0) throw InputError(path + ": cannot read the symbolic link: " + OsError(errno));
    const fs::path link(std::string(buf.data(), static_cast<std::size_t>(n)));
    cur = (link.is_absolute() ? link : cur.parent_path() / link).lexically_normal();
  }
  throw InputError(path +
                   ": too many levels of symbolic links (a loop?); lepus writes an output "
                   "link's final target and cannot find it");
}

void CheckOutputs(const std::vector<OutputTarget>& outputs,
                  const std::vector<std::string>& inputs) {
  // Inputs by (device, inode), following links.
  std::vector<std::pair<std::pair<dev_t, ino_t>, std::string>> input_ids;
  for (const std::string& in : inputs) {
    struct stat st {};
    if (!in.empty() && in != "-" && ::stat(in.c_str(), &st) == 0)
      input_ids.push_back({{st.st_dev, st.st_ino}, in});
  }
  std::map<std::string, std::string> seen;  // output key -> named output
  const OutputTarget* stdout_user = nullptr;
  for (const OutputTarget& t : outputs) {
    if (t.path.empty()) continue;
    if (t.path == "-") {
      if (!t.stdout_allowed)
        throw InputError(Named(t) +
                         ": this output is an HDF5 file and cannot go to standard "
                         "output; give a file name");
      if (stdout_user != nullptr)
        throw InputError(Named(t) + ": standard output is already the output of " +
                         Named(*stdout_user) + "; give one of them a file name");
      stdout_user = &t;
      continue;
    }
    const std::string target = ResolveOutputPath(t.path);
    const std::string via = target == fs::absolute(t.path).lexically_normal().string()
                                ? std::string()
                                : " (a symbolic link to " + target + ")";
    struct stat st {};
    const bool exists = ::stat(target.c_str(), &st) == 0;
    if (exists) {
      if (!S_ISREG(st.st_mode))
        throw InputError(Named(t) + via + ": exists and is " + FileKind(st.st_mode) +
                         ", but an output must be a regular file or a new name");
      for (const auto& [id, in] : input_ids)
        if (id.first == st.st_dev && id.second == st.st_ino)
          throw InputError(Named(t) + via + " is the same file as the input " + in +
                           "; lepus never writes over its inputs: choose another output name");
      if (::access(target.c_str(), W_OK) != 0)
        throw InputError(Named(t) + via + ": the existing file is not writable (" + OsError(errno) +
                         "); lepus does not replace a read-only file");
    }
    const fs::path dir = fs::path(target).parent_path();
    struct stat dst {};
    if (::stat(dir.c_str(), &dst) != 0)
      throw InputError(Named(t) + via + ": cannot write there, directory " + dir.string() +
                       " does not exist");
    if (!S_ISDIR(dst.st_mode))
      throw InputError(Named(t) + via + ": cannot write there, " + dir.string() +
                       " is not a directory");
    // Probe: can a file be created in the directory? (Catches read-only file systems and
    // permissions that access() misjudges.)
    const std::string probe = TemporaryNameBeside(target);
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      throw InputError(Named(t) + via + ": cannot create files in directory " + dir.string() +
                       " (" + OsError(errno) + ")");
    ::close(fd);
    ::unlink(probe.c_str());

    const std::string key = OutputKey(target);
    const auto [it, inserted] = seen.emplace(key, Named(t));
    if (!inserted)
      throw InputError(Named(t) + via + ": the same file is also the output of " + it->second +
                       "; give each output its own file");
  }
}

std::string TemporaryNameBeside(const std::string& target) {
  static std::atomic<unsigned> counter{0};
  const fs::path p(target);
  const std::string suffix =
      ".lepus-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::string base = p.filename().string();
  const long name_max = NameMax(p.parent_path());
  const long room = name_max - 1 - static_cast<long>(suffix.size());  // 1: the leading '.'
  if (room < static_cast<long>(base.size())) {
    std::size_t keep = room > 0 ? static_cast<std::size_t>(room) : 0;
    // Do not cut a UTF-8 sequence: back up over continuation bytes.
    while (keep > 0 && (static_cast<unsigned char>(base[keep]) & 0xC0) == 0x80) --keep;
    base.resize(keep);
  }
  std::string name = ".";
  name += base;
  name += suffix;
  return (p.parent_path() / name).string();
}

AtomicOutput::AtomicOutput(const std::string& path) : path_(path) {
  target_ = ResolveOutputPath(path);
  temp_ = TemporaryNameBeside(target_);
  struct stat st {};
  const bool exists = ::stat(target_.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode))
    throw InputError(path + ": exists and is " + FileKind(st.st_mode) +
                     ", but an output must be a regular file or a new name");
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd_ < 0)
    throw InputError(path + ": cannot create the file: its temporary " + temp_ + " (" +
                     OsError(errno) + ")");
  slot_ = RegisterTemporary(temp_);
  // A replaced file keeps its permission bits.
  if (exists) (void)::fchmod(fd_, st.st_mode & 07777);
}

AtomicOutput::AtomicOutput(AtomicOutput&& other) noexcept
    : path_(std::move(other.path_)),
      target_(std::move(other.target_)),
      temp_(std::move(other.temp_)),
      fd_(std::exchange(other.fd_, -1)),
      slot_(std::exchange(other.slot_, -1)),
      committed_(std::exchange(other.committed_, true)) {}

AtomicOutput::~AtomicOutput() { Discard(); }

void AtomicOutput::Discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
  committed_ = true;  // nothing left to do
  UnregisterTemporary(slot_);
  slot_ = -1;
}

void AtomicOutput::Write(std::string_view bytes) {
  if (fd_ < 0) throw InputError(path_ + ": write after the file was closed");
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      Discard();
      throw InputError(path_ + ": write failed (" + OsError(err) + ")");
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void AtomicOutput::Commit() {
  if (committed_ || fd_ < 0) throw InputError(path_ + ": the output was already finished");
  auto fail = [&](const std::string& what, int err) {
    Discard();
    throw InputError(path_ + ": " + what + " (" + OsError(err) + ")");
  };
  // fsync flushes the file's data whichever descriptor wrote it (HDF5 writes through its own).
  if (::fsync(fd_) != 0) fail("cannot write the file to disk", errno);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) fail("cannot write the file to disk", errno);
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    fail("cannot move the written file into place", errno);
  committed_ = true;
  UnregisterTemporary(slot_);
  slot_ = -1;
  // Make the rename itself durable.
  const std::string dir = fs::path(target_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

std::string AtomicOutput::Rename(const std::string& message) const {
  std::string out = message;
  for (std::size_t pos = out.find(temp_); pos != std::string::npos;
       pos = out.find(temp_, pos + path_.size()))
    out.replace(pos, temp_.size(), path_);
  return out;
}

void WriteFileAtomically(const std::string& path, std::string_view contents) {
  if (path == "-") {
    if (std::fwrite(contents.data(), 1, contents.size(), stdout) != contents.size() ||
        std::fflush(stdout) != 0)
      throw InputError("<stdout>: write failed (" + OsError(errno) + ")");
    return;
  }
  AtomicOutput out(path);
  out.Write(contents);
  out.Commit();
}

void InstallTemporaryFileCleanup() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa {};
    sa.sa_handler = RemoveTemporariesAndReraise;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(sig, &sa, nullptr);
  }
}

}  // namespace lepus::io
