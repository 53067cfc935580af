// Progress of long jobs on stderr: the event bar of `produce`, `generate` and `calibrate`, the
// count of scan points, toys and refits, and the compact numbers they print.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lepus::cli {

// "12.3M", "850k", "42".
std::string HumanCount(double value);

// "produce [######......]  25% 1.20M/4.80M events, 2.10M events/s, ETA 2.1 s" on stderr,
// redrawn in place on a terminal (at most 5 times a second), else one line per tenth.
class EventProgressBar {
 public:
  explicit EventProgressBar(std::string label);
  void Update(std::int64_t done, std::int64_t total, double seconds);
  void Finish();

 private:
  std::string label_;
  bool tty_;
  bool drawn_ = false;
  int last_tenth_ = -1;
  std::chrono::steady_clock::time_point last_;
};

// Progress of a long loop on stderr: "<label>: 12/21 <unit>" rewritten in place (carriage
// return) on a terminal, else one line per tenth of the work. Update may be called from any
// thread as long as the calls are serialised (the engine's progress callbacks are).
class Progress {
 public:
  Progress(std::string label, std::string unit);
  void Update(int done, int total);
  // Ends the line (terminal) and prints the elapsed time.
  void Finish();

 private:
  std::string label_, unit_;
  bool tty_;
  int last_tenth_ = -1;
  int done_ = 0, total_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

// "12.3 s", "850 ms".
std::string FormatSeconds(double seconds);

}  // namespace lepus::cli
