// Output files that never destroy: every file lepus writes (results HDF5/JSON, fit inputs,
// calibrations, event files, toys, benchmark tables) goes through this header.
//
//   * CheckOutputs, before any work: refuses an output that is the same file as an input
//     (device + inode after resolving links), two outputs naming one file, an existing target
//     that is not a regular file, a read-only target, and a directory that does not exist or
//     where no file can be created.
//   * AtomicOutput: the data go to a temporary file in the target's directory (hidden name,
//     within NAME_MAX), which is flushed, fsync'ed and renamed onto the target; the directory is
//     fsync'ed after the rename. On any error, on destruction without Commit(), and on SIGINT,
//     SIGTERM, SIGHUP and SIGPIPE (once InstallTemporaryFileCleanup() ran) the temporary is
//     removed, so a target is either its old contents or the complete new file.
//   * Symbolic links, one rule for every output: an output path that is a symbolic link is
//     written *through* the link: the file it finally points to is replaced (atomically, in that
//     file's directory) and the link stays. A dangling link or a loop is refused.
//   * "-" means standard output (never atomic: a pipe).
//
// Errors are io::InputError naming the flag (when known), the path and the OS reason
// ("No space left on device", "Permission denied", ...). docs/reliability.md has the rules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lepus::io {

// One output of a command: the flag that names it in messages ("-o", "--json"; may be empty)
// and its path ("" = not requested, "-" = standard output where `stdout_allowed`: text, not
// HDF5).
struct OutputTarget {
  std::string flag;
  std::string path;
  bool stdout_allowed = true;
};

// The file an output path will replace under the symbolic-link rule above: the path itself
// when it is not a link (made absolute), the link's final target otherwise. Throws InputError
// for a dangling link or a loop.
std::string ResolveOutputPath(const std::string& path);

// The checks listed above, before any work. `inputs` are the files the command reads (paths
// that do not exist are ignored here: reading them reports the error). Throws InputError.
void CheckOutputs(const std::vector<OutputTarget>& outputs,
                  const std::vector<std::string>& inputs = {});

// A temporary file beside `path` (after ResolveOutputPath) that becomes `path` on Commit().
// Movable-only; the destructor removes the temporary unless Commit() succeeded.
class AtomicOutput {
 public:
  // Creates the temporary (O_EXCL, permissions of the existing target or 0666 & ~umask) and
  // registers it for removal on the signals above. Throws InputError naming `path`.
  explicit AtomicOutput(const std::string& path);
  ~AtomicOutput();
  AtomicOutput(AtomicOutput&& other) noexcept;
  AtomicOutput& operator=(AtomicOutput&&) = delete;
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& path() const { return path_; }       // as named by the user
  const std::string& temp_path() const { return temp_; }  // where to write

  // Appends bytes to the temporary (for text outputs). Throws InputError naming path().
  void Write(std::string_view bytes);
  // fsync the temporary, rename it onto the target, fsync the directory. Throws InputError
  // naming path() and the OS reason (the temporary is removed).
  void Commit();
  // Removes the temporary now (also done by the destructor).
  void Discard() noexcept;

  // A message about the temporary rewritten to name the user's path instead (HDF5 and other
  // libraries report the file they were given).
  std::string Rename(const std::string& message) const;

 private:
  std::string path_;    // user's name
  std::string target_;  // resolved file that is replaced
  std::string temp_;
  int fd_ = -1;
  int slot_ = -1;  // signal-cleanup registry slot
  bool committed_ = false;
};

// Writes `contents` atomically to `path` ("-": standard output). Throws InputError.
void WriteFileAtomically(const std::string& path, std::string_view contents);

// Installs handlers for SIGINT, SIGTERM, SIGHUP and SIGPIPE that remove every live temporary
// of AtomicOutput and then re-raise the signal with its default action (the exit status shows
// the signal). Signals whose disposition is not the default (e.g. SIGHUP ignored under nohup)
// are left alone. For programs (the lepus command); a library embedding lepus decides itself.
void InstallTemporaryFileCleanup();

// Hidden temporary name beside `target` (in the same directory), unique per process and call,
// whose last component stays within the directory's NAME_MAX for any legal target name.
std::string TemporaryNameBeside(const std::string& target);

}  // namespace lepus::io
