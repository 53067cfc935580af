// Progress of long jobs on stderr (progress.h).
#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

namespace lepus::cli {

std::string HumanCount(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.2fG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

EventProgressBar::EventProgressBar(std::string label)
    : label_(std::move(label)), tty_(::isatty(STDERR_FILENO) == 1) {}

void EventProgressBar::Update(std::int64_t done, std::int64_t total, double seconds) {
  const auto now = std::chrono::steady_clock::now();
  const int tenth = total > 0 ? static_cast<int>(10 * done / total) : 10;
  if (tty_) {
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(200)) return;
  } else if (tenth == last_tenth_) {
    return;
  }
  last_ = now;
  last_tenth_ = tenth;
  const double frac = total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 1.0;
  const double rate = seconds > 0 ? done / seconds : 0.0;
  std::ostringstream os;
  os << label_ << " [";
  const int width = 24;
  const int filled = static_cast<int>(std::lround(frac * width));
  for (int i = 0; i < width; ++i) os << (i < filled ? '#' : '.');
  char pct[16];
  std::snprintf(pct, sizeof(pct), "%3.0f%%", 100 * frac);
  os << "] " << pct << " " << HumanCount(static_cast<double>(done)) << "/"
     << HumanCount(static_cast<double>(total)) << " events, " << HumanCount(rate) << " events/s";
  if (rate > 0 && done < total) os << ", ETA " << FormatSeconds((total - done) / rate);
  std::cerr << (tty_ ? "\r" : "") << os.str() << (tty_ ? "\033[K" : "\n") << std::flush;
  drawn_ = true;
}

void EventProgressBar::Finish() {
  if (tty_ && drawn_) std::cerr << "\n";
  drawn_ = false;
}

std::string FormatSeconds(double s) {
  char buf[32];
  if (s < 1.0)
    std::snprintf(buf, sizeof(buf), "%.0f ms", s * 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.1f s", s);
  return buf;
}

Progress::Progress(std::string label, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::Update(int done, int total) {
  done_ = done;
  total_ = total;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    // At most ~20 redraws per second, and always the last one.
    if (done < total && now - last_print_ < std::chrono::milliseconds(50)) return;
    last_print_ = now;
    std::cerr << "\r" << label_ << ": " << done << "/" << total << " " << unit_ << std::flush;
    return;
  }
  const int tenth = total > 0 ? static_cast<int>(10LL * done / total) : 10;
  if (tenth == last_tenth_) return;
  last_tenth_ = tenth;
  std::cerr << label_ << ": " << done << "/" << total << " " << unit_ << "\n" << std::flush;
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_)
    std::cerr << "\r" << label_ << ": " << done_ << "/" << total_ << " " << unit_;
  else
    std::cerr << label_ << ":";
  std::cerr << (tty_ ? "" : " done") << " in " << FormatSeconds(s) << "\n" << std::flush;
}

}  // namespace lepus::cli
