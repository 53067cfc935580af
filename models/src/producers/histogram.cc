#include "lepus/models/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

namespace lepus::models {

namespace bh = boost::histogram;

// ---- BinSpace

BinSpace::BinSpace(std::vector<AnyAxis> axes) : axes_(std::move(axes)) {
  if (axes_.empty()) throw std::invalid_argument("BinSpace: no axes");
  std::set<std::string> names;
  for (std::size_t i = 0; i < axes_.size(); ++i) {
    const std::string& name = axes_[i].metadata();
    if (name.empty())
      throw std::invalid_argument("BinSpace: axis[" + std::to_string(i) + "] has an empty name");
    if (!names.insert(name).second)
      throw std::invalid_argument("BinSpace: axis name '" + name + "' is used twice");
    if (axes_[i].size() <= 0)
      throw std::invalid_argument("BinSpace: axis '" + name + "' has no bins");
    // Boost computes an edge by interpolation, (1 - z) x_k + z x_{k+1}, which is NaN next to an
    // infinite edge (0 x inf): open-ended axes use a large finite last edge instead.
    for (int b = 0; b <= static_cast<int>(axes_[i].size()); ++b) {
      const double e =
          bh::axis::visit([b](const auto& ax) { return double(ax.value(b)); }, axes_[i]);
      if (!std::isfinite(e))
        throw std::invalid_argument("BinSpace: axis '" + name +
                                    "' has an infinite edge (use a large finite one)");
    }
  }
  strides_.assign(axes_.size(), 1);
  for (int i = rank() - 2; i >= 0; --i)
    strides_[i] = strides_[i + 1] * static_cast<int>(axes_[i + 1].size());
  size_ = strides_[0] * static_cast<int>(axes_[0].size());
}

int BinSpace::AxisIndex(int i, double value) const noexcept {
  if (!(value == value)) return -1;  // NaN
  const int n = static_cast<int>(axes_[i].size());
  const int b = bh::axis::visit(
      [value](const auto& ax) -> int {
        using A = std::decay_t<decltype(ax)>;
        if constexpr (std::is_same_v<A, IntegerAxis>) {
          const double f = std::floor(value);
          if (f < ax.value(0) || f >= ax.value(ax.size())) return -1;
          return ax.index(static_cast<int>(f));
        } else {
          return ax.index(value);
        }
      },
      axes_[i]);
  return (b >= 0 && b < n) ? b : -1;
}

int BinSpace::Index(const double* values) const noexcept {
  int k = 0;
  for (int i = 0; i < rank(); ++i) {
    const int b = AxisIndex(i, values[i]);
    if (b < 0) return -1;
    k += b * strides_[i];
  }
  return k;
}

void BinSpace::Unravel(int index, int* bins) const noexcept {
  for (int i = 0; i < rank(); ++i) {
    bins[i] = index / strides_[i];
    index -= bins[i] * strides_[i];
  }
}

double BinSpace::BinLower(int i, int b) const {
  return bh::axis::visit(
      [b](const auto& ax) -> double {
        using A = std::decay_t<decltype(ax)>;
        if constexpr (std::is_same_v<A, IntegerAxis>)
          return ax.value(b) - 0.5;
        else
          return ax.value(b);
      },
      axes_[i]);
}

double BinSpace::BinUpper(int i, int b) const { return BinLower(i, b + 1); }

std::vector<engine::Axis> BinSpace::ToEngineAxes() const {
  std::vector<engine::Axis> out;
  for (int i = 0; i < rank(); ++i) {
    engine::Axis a;
    a.name = axis_name(i);
    for (int b = 0; b <= axis_size(i); ++b) a.edges.push_back(BinLower(i, b));
    out.push_back(std::move(a));
  }
  return out;
}

// ---- WeightedHistogram

WeightedHistogram::WeightedHistogram(const BinSpace& space) : size_(space.size()) {
  // Boost stores the first axis fastest: reverse the axes so that the storage index is the
  // BinSpace (row-major) index.
  std::vector<AnyAxis> reversed(space.axes().rbegin(), space.axes().rend());
  hist_ = bh::make_weighted_histogram(std::move(reversed));
  assert(static_cast<int>(bh::unsafe_access::storage(hist_).size()) == size_);
}

void WeightedHistogram::FillValues(const BinSpace& space, const double* values, double w) noexcept {
  const int k = space.Index(values);
  if (k >= 0) Fill(k, w);
}

double WeightedHistogram::sumw(int index) const noexcept {
  return bh::unsafe_access::storage(hist_)[index].value();
}
double WeightedHistogram::sumw2(int index) const noexcept {
  return bh::unsafe_access::storage(hist_)[index].variance();
}

std::vector<double> WeightedHistogram::Sumw(int begin, int end) const {
  std::vector<double> v(end - begin);
  const auto& st = bh::unsafe_access::storage(hist_);
  for (int i = begin; i < end; ++i) v[i - begin] = st[i].value();
  return v;
}
std::vector<double> WeightedHistogram::Sumw2(int begin, int end) const {
  std::vector<double> v(end - begin);
  const auto& st = bh::unsafe_access::storage(hist_);
  for (int i = begin; i < end; ++i) v[i - begin] = st[i].variance();
  return v;
}
std::vector<double> WeightedHistogram::Sumw() const { return Sumw(0, size_); }
std::vector<double> WeightedHistogram::Sumw2() const { return Sumw2(0, size_); }

double WeightedHistogram::TotalSumw() const noexcept {
  double s = 0.0;
  for (const auto& c : bh::unsafe_access::storage(hist_)) s += c.value();
  return s;
}

void WeightedHistogram::Reset() { hist_.reset(); }

WeightedHistogram& WeightedHistogram::operator+=(const WeightedHistogram& other) {
  // Element-wise on the storage: the same as Boost's operator+= (which also compares the axes,
  // a cost we pay once per partial result, not per bin).
  assert(other.size_ == size_);
  auto& a = bh::unsafe_access::storage(hist_);
  const auto& b = bh::unsafe_access::storage(other.hist_);
  for (int i = 0; i < size_; ++i) a[i] += b[i];
  return *this;
}

namespace {
const char* TakeBytes(const char* p, const char* end, void* dst, std::size_t n) {
  if (static_cast<std::size_t>(end - p) < n)
    throw std::runtime_error("histogram bytes: " + std::to_string(end - p) + " left, " +
                             std::to_string(n) + " needed");
  std::memcpy(dst, p, n);
  return p + n;
}
}  // namespace

void WeightedHistogram::AppendBytes(std::string* out) const {
  // (value, variance) per bin, written in place (no intermediate copy: partials are MBs).
  const auto& a = bh::unsafe_access::storage(hist_);
  const std::size_t at = out->size();
  out->resize(at + 2 * sizeof(double) * static_cast<std::size_t>(size_));
  char* q = out->data() + at;
  for (int i = 0; i < size_; ++i) {
    const double v[2] = {a[i].value(), a[i].variance()};
    std::memcpy(q + 2 * sizeof(double) * i, v, sizeof(v));
  }
}

const char* WeightedHistogram::ReadBytes(const char* p, const char* end) {
  const std::size_t n = 2 * sizeof(double) * static_cast<std::size_t>(size_);
  if (static_cast<std::size_t>(end - p) < n)
    throw std::runtime_error("histogram bytes: " + std::to_string(end - p) + " left, " +
                             std::to_string(n) + " needed");
  auto& a = bh::unsafe_access::storage(hist_);
  for (int i = 0; i < size_; ++i) {
    double v[2];
    std::memcpy(v, p + 2 * sizeof(double) * i, sizeof(v));
    a[i] = bh::accumulators::weighted_sum<double>(v[0], v[1]);
  }
  return p + n;
}

// ---- VariationLayout / VariationStore

int VariationLayout::Add(const std::string& name, int slot, BinRange support) {
  if (support.size() <= 0)
    throw std::invalid_argument("VariationLayout: variation '" + name + "' has an empty support [" +
                                std::to_string(support.begin) + ", " + std::to_string(support.end) +
                                ")");
  if (Find(name, slot) >= 0)
    throw std::invalid_argument("VariationLayout: variation '" + name +
                                "' is already registered for slot " + std::to_string(slot));
  entries_.push_back(Entry{name, slot, support, buffer_size_});
  buffer_size_ += static_cast<std::size_t>(support.size());
  return size() - 1;
}

int VariationLayout::Find(const std::string& name, int slot) const {
  for (std::size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].slot == slot && entries_[i].name == name) return static_cast<int>(i);
  return -1;
}

VariationStore::VariationStore(const VariationLayout* layout)
    : layout_(layout), buffer_(layout->buffer_size(), 0.0) {}

double VariationStore::delta(int id, int bin) const noexcept {
  const BinRange r = layout_->support(id);
  if (!r.Contains(bin)) return 0.0;
  return buffer_[layout_->offset(id) + static_cast<std::size_t>(bin - r.begin)];
}

std::vector<double> VariationStore::Varied(int id, const std::vector<double>& nominal) const {
  std::vector<double> v = nominal;
  const BinRange r = layout_->support(id);
  const double* d = buffer_.data() + layout_->offset(id);
  for (int b = r.begin; b < r.end && b < static_cast<int>(v.size()); ++b) v[b] += d[b - r.begin];
  return v;
}

double VariationStore::AbsSum(int id) const noexcept {
  const BinRange r = layout_->support(id);
  const double* d = buffer_.data() + layout_->offset(id);
  double s = 0.0;
  for (int i = 0; i < r.size(); ++i) s += std::abs(d[i]);
  return s;
}

namespace {

// Element-wise work on large buffers (the full preset's partials are ~80 MB) is split over the
// TBB workers of the calling arena. Each element is touched by exactly one task, so the result
// does not depend on the partition: the ordered reduction stays deterministic.
constexpr std::size_t kParallelElements = std::size_t{1} << 20;
constexpr std::size_t kBlock = std::size_t{1} << 16;

template <typename F>
void ForBlocks(std::size_t n, F&& f) {
  if (n < kParallelElements) {
    f(std::size_t{0}, n);
    return;
  }
  // Isolated: while it waits, the calling thread (the pipeline's serial reduce stage) must not
  // pick up an outer task such as a whole work item.
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, kBlock),
                      [&](const tbb::blocked_range<std::size_t>& r) { f(r.begin(), r.end()); });
  });
}

}  // namespace

void VariationStore::Reset() {
  if (!touched_) return;
  touched_ = false;
  double* a = buffer_.data();
  ForBlocks(buffer_.size(),
            [a](std::size_t lo, std::size_t hi) { std::fill(a + lo, a + hi, 0.0); });
}

VariationStore& VariationStore::operator+=(const VariationStore& other) {
  assert(other.buffer_.size() == buffer_.size());
  if (!other.touched_) return *this;
  touched_ = true;
  double* a = buffer_.data();
  const double* b = other.buffer_.data();
  ForBlocks(buffer_.size(), [a, b](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) a[i] += b[i];
  });
  return *this;
}

void VariationStore::AppendBytes(std::string* out) const {
  out->push_back(touched_ ? 1 : 0);
  if (touched_)
    out->append(reinterpret_cast<const char*>(buffer_.data()), buffer_.size() * sizeof(double));
}

const char* VariationStore::ReadBytes(const char* p, const char* end) {
  char flag = 0;
  p = TakeBytes(p, end, &flag, 1);
  if (flag) {
    p = TakeBytes(p, end, buffer_.data(), buffer_.size() * sizeof(double));
    touched_ = true;
  } else {
    Reset();
  }
  return p;
}

// ---- Ordered parallel reduction

int ResolveThreads(int num_threads) {
  if (num_threads > 0) return num_threads;
  return std::max(1, tbb::info::default_concurrency());
}

void OrderedParallelReduce(int num_threads, int slots, const std::function<bool(int)>& produce,
                           const std::function<void(int)>& map,
                           const std::function<void(int)>& reduce) {
  if (slots < 1) throw std::invalid_argument("OrderedParallelReduce: slots must be >= 1");
  // Free slots: a stack guarded by a mutex (touched twice per item, never on the event loop).
  std::vector<int> free_slots;
  for (int s = slots - 1; s >= 0; --s) free_slots.push_back(s);
  std::mutex mutex;
  bool done = false;

  tbb::task_arena arena(ResolveThreads(num_threads));
  arena.execute([&] {
    tbb::parallel_pipeline(
        static_cast<std::size_t>(slots),
        tbb::make_filter<void, int>(tbb::filter_mode::serial_in_order,
                                    [&](tbb::flow_control& fc) -> int {
                                      if (done) {
                                        fc.stop();
                                        return -1;
                                      }
                                      int s;
                                      {
                                        std::lock_guard<std::mutex> lock(mutex);
                                        // The pipeline never has more than `slots` tokens
                                        // alive, so a slot is always free here.
                                        assert(!free_slots.empty());
                                        s = free_slots.back();
                                        free_slots.pop_back();
                                      }
                                      if (!produce(s)) {
                                        done = true;
                                        std::lock_guard<std::mutex> lock(mutex);
                                        free_slots.push_back(s);
                                        fc.stop();
                                        return -1;
                                      }
                                      return s;
                                    }) &
            tbb::make_filter<int, int>(tbb::filter_mode::parallel,
                                       [&](int s) -> int {
                                         map(s);
                                         return s;
                                       }) &
            tbb::make_filter<int, void>(tbb::filter_mode::serial_in_order, [&](int s) {
              reduce(s);
              std::lock_guard<std::mutex> lock(mutex);
              free_slots.push_back(s);
            }));
  });
}

}  // namespace lepus::models
