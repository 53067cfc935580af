// The histogramming framework of the producers: binned spaces over Boost.Histogram axes,
// weighted histograms (sum of weights and of squared weights per bin), systematic variations
// stored as differences to the nominal over the part of phase space where they act, and an
// ordered parallel reduction over chunks of events whose result does not depend on the number of
// threads.
//
// Conventions:
//   * A BinSpace unrolls its axes row-major (first axis slowest), as the fit input does
//     (docs/format.md), so a BinSpace index is a bin index of the fit channel. Axes have no
//     under/overflow bins: a value outside an axis is not binned (index -1).
//   * A WeightedHistogram is a Boost.Histogram with weight_storage whose axes are the BinSpace's
//     in reverse order: Boost stores the first axis fastest, so its storage index is exactly the
//     BinSpace index and the hot path fills by index, computed once per event and shared by every
//     histogram and variation the event enters.
//   * Variations are stored as deltas (varied - nominal) per event, dense over a contiguous range
//     of bins, their "support" (e.g. the 60 bins of one eta bin for a per-eta-bin efficiency or
//     momentum-scale nuisance, the whole channel for a theory weight). An event contributes to a
//     variation only where the variation changes it, so a nuisance local in phase space costs
//     time and memory only where it acts; the varied template is nominal + delta. Deltas also keep
//     precision: a per-mille weight variation is accumulated as the per-mille difference, not as
//     the difference of two large sums.
//   * OrderedParallelReduce cuts the work into items fixed by the input (never by the thread
//     count), fills one partial result per item in parallel, and adds the partial results into the
//     total in item order (tbb::parallel_pipeline with a serial in-order last stage). Floating-
//     point sums are therefore performed in the same order for any number of threads and the
//     output is bitwise identical at 1, 2, ... threads. Shared thread-safe (atomic) storage was
//     measured as the alternative (benchmarks/produce_bench.cc, docs/performance.md): it is not
//     deterministic (the order of the additions changes from run to run) and was not faster on
//     two cores, so the producers use per-item partial histograms.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/histogram.hpp>

#include "lepus/engine/model.h"

namespace lepus::models {

// ---- Axes: Boost.Histogram axes with a name (the metadata) and without flow bins.
using AxisNoFlow = boost::histogram::axis::option::none_t;
using RegularAxis =
    boost::histogram::axis::regular<double, boost::histogram::use_default, std::string, AxisNoFlow>;
using VariableAxis = boost::histogram::axis::variable<double, std::string, AxisNoFlow>;
using IntegerAxis = boost::histogram::axis::integer<int, std::string, AxisNoFlow>;
using AnyAxis = boost::histogram::axis::variant<RegularAxis, VariableAxis, IntegerAxis>;

// A binned space: named axes unrolled row-major (first axis slowest).
class BinSpace {
 public:
  BinSpace() = default;
  // Throws std::invalid_argument for no axes, an axis without bins, an empty or duplicate name,
  // an infinite edge (Boost interpolates edges, which gives NaN next to an infinite one: an
  // open-ended axis takes a large finite last edge, e.g. 1e9).
  explicit BinSpace(std::vector<AnyAxis> axes);

  int rank() const noexcept { return static_cast<int>(axes_.size()); }
  int size() const noexcept { return size_; }
  const std::vector<AnyAxis>& axes() const noexcept { return axes_; }
  const AnyAxis& axis(int i) const noexcept { return axes_[i]; }
  const std::string& axis_name(int i) const noexcept { return axes_[i].metadata(); }
  int axis_size(int i) const noexcept { return static_cast<int>(axes_[i].size()); }
  // Distance in linear index between neighbouring bins of axis i.
  int stride(int i) const noexcept { return strides_[i]; }

  // Bin of `value` on axis i, -1 outside. (An IntegerAxis takes the value rounded down.)
  int AxisIndex(int i, double value) const noexcept;
  // Linear index of a point (rank() values), -1 if any value is outside its axis.
  int Index(const double* values) const noexcept;
  // Linear index from per-axis bins (all in range; unchecked).
  int Linear(const int* bins) const noexcept {
    int k = 0;
    for (int i = 0; i < rank(); ++i) k += bins[i] * strides_[i];
    return k;
  }
  // Per-axis bins of a linear index (in range; unchecked).
  void Unravel(int index, int* bins) const noexcept;

  // The axes for the fit input: edges of regular and variable axes, integer axes as edges
  // [v - 0.5, ..., v_last + 0.5].
  std::vector<engine::Axis> ToEngineAxes() const;
  // Lower and upper edge of bin b of axis i.
  double BinLower(int i, int b) const;
  double BinUpper(int i, int b) const;

 private:
  std::vector<AnyAxis> axes_;
  std::vector<int> strides_;
  int size_ = 0;
};

// A histogram with a sum of weights and a sum of squared weights per bin over a BinSpace
// (Boost.Histogram, weight_storage). Filled by BinSpace index on the hot path.
class WeightedHistogram {
 public:
  using Storage = boost::histogram::weight_storage;
  using Hist = boost::histogram::histogram<std::vector<AnyAxis>, Storage>;

  WeightedHistogram() = default;
  explicit WeightedHistogram(const BinSpace& space);

  int size() const noexcept { return size_; }
  // Adds weight w to bin `index` (0 <= index < size(); unchecked: a hot path, changes here must
  // be measured with benchmarks/produce_bench.cc).
  void Fill(int index, double w) noexcept {
    assert(index >= 0 && index < size_);
    boost::histogram::unsafe_access::storage(hist_)[index] += boost::histogram::weight(w);
  }
  // Adds weight w with the given variance instead of w^2: for weights that are parts of one
  // event's contribution to the bin, whose variance is the square of their sum (an event split
  // into several hypotheses or processes; docs/producers.md, "MC-statistics variance").
  void Fill(int index, double w, double variance) noexcept {
    assert(index >= 0 && index < size_);
    boost::histogram::unsafe_access::storage(hist_)[index] +=
        boost::histogram::accumulators::weighted_sum<double>(w, variance);
  }
  // Fills by value (one per axis, BinSpace order); values outside are ignored. For tests and
  // cold paths.
  void FillValues(const BinSpace& space, const double* values, double w) noexcept;

  double sumw(int index) const noexcept;
  double sumw2(int index) const noexcept;
  std::vector<double> Sumw() const;
  std::vector<double> Sumw2() const;
  // Bins [begin, end) only.
  std::vector<double> Sumw(int begin, int end) const;
  std::vector<double> Sumw2(int begin, int end) const;
  double TotalSumw() const noexcept;

  void Reset();
  // Adds another histogram over the same space (Boost checks the axes).
  WeightedHistogram& operator+=(const WeightedHistogram& other);
  const Hist& boost_histogram() const noexcept { return hist_; }
  // Bytes of the bins' sums (for sending a partial to another process, `mpirun lepus produce`):
  // AppendBytes adds them to *out; ReadBytes sets this histogram (same space) from them and
  // returns the position after them; throws std::runtime_error when the bytes are too few.
  void AppendBytes(std::string* out) const;
  const char* ReadBytes(const char* p, const char* end);

 private:
  Hist hist_;
  int size_ = 0;
};

// ---- Variations.

// A contiguous range of bins [begin, end) of a BinSpace.
struct BinRange {
  int begin = 0;
  int end = 0;
  int size() const noexcept { return end - begin; }
  bool Contains(int bin) const noexcept { return bin >= begin && bin < end; }
};

// The variations of a producer: for each one a name, the process slot whose template it varies
// and its support (the bins where it can differ from the nominal), with the offsets of their
// dense delta arrays in one flat buffer.
class VariationLayout {
 public:
  // Registers a variation and returns its id (0, 1, ... in call order). Throws
  // std::invalid_argument for an empty support or a name already registered for this slot.
  int Add(const std::string& name, int slot, BinRange support);

  int size() const noexcept { return static_cast<int>(entries_.size()); }
  const std::string& name(int id) const noexcept { return entries_[id].name; }
  int slot(int id) const noexcept { return entries_[id].slot; }
  BinRange support(int id) const noexcept { return entries_[id].support; }
  std::size_t offset(int id) const noexcept { return entries_[id].offset; }
  // Doubles in a VariationStore's buffer (the sum of the supports).
  std::size_t buffer_size() const noexcept { return buffer_size_; }
  // Id of (name, slot), -1 if none.
  int Find(const std::string& name, int slot) const;

 private:
  struct Entry {
    std::string name;
    int slot;
    BinRange support;
    std::size_t offset;
  };
  std::vector<Entry> entries_;
  std::size_t buffer_size_ = 0;
};

// The deltas (varied - nominal sum of weights) of every variation of a layout.
class VariationStore {
 public:
  VariationStore() = default;
  // The layout must outlive the store and not change after it is made.
  explicit VariationStore(const VariationLayout* layout);

  // Adds delta to bin `bin` of variation `id`. The bin must be inside the variation's support
  // (asserted, unchecked in release builds: hot path).
  void Fill(int id, int bin, double delta) noexcept {
    assert(layout_->support(id).Contains(bin));
    buffer_[layout_->offset(id) + static_cast<std::size_t>(bin - layout_->support(id).begin)] +=
        delta;
    touched_ = true;
  }
  // An event moved by a variation from bin `from` (weight w_from) to bin `to` (weight w_to);
  // either bin may be -1 (the event leaves or enters the space).
  void Move(int id, int from, double w_from, int to, double w_to) noexcept {
    if (from == to) {
      if (from >= 0 && w_to != w_from) Fill(id, from, w_to - w_from);
      return;
    }
    if (from >= 0) Fill(id, from, -w_from);
    if (to >= 0) Fill(id, to, w_to);
  }

  double delta(int id, int bin) const noexcept;
  // The varied template over the whole space: nominal + delta inside the support.
  std::vector<double> Varied(int id, const std::vector<double>& nominal) const;
  // Sum of |delta| over the support (0: the variation had no effect).
  double AbsSum(int id) const noexcept;

  void Reset();
  VariationStore& operator+=(const VariationStore& other);
  const VariationLayout* layout() const noexcept { return layout_; }
  // As WeightedHistogram::AppendBytes / ReadBytes (an untouched store is one byte).
  void AppendBytes(std::string* out) const;
  const char* ReadBytes(const char* p, const char* end);

 private:
  const VariationLayout* layout_ = nullptr;
  std::vector<double> buffer_;
  // False while every delta is zero since construction or Reset (e.g. a partial of a data work
  // item): += and Reset skip the buffer, which for the helicity split is ~1 GB.
  bool touched_ = false;
};

// ---- Ordered parallel reduction.
//
// The caller owns `slots` work slots (each with its work item and partial result, e.g. an event
// batch and partial histograms), indexed 0 .. slots - 1. produce(slot) is called serially, in
// order, until it returns false: it fills the slot with the next work item (reads a batch of
// events, or records an event-number range to generate). map(slot) runs in parallel (fills the
// slot's partial result from its item). reduce(slot) runs serially in the order the items were
// produced: it adds the slot's partial into the total and resets it, after which the slot is
// reused. slots >= 1 bounds the items alive at once (memory); num_threads: 0 = all cores.
// An exception thrown by any callback cancels the pipeline and is rethrown.
void OrderedParallelReduce(int num_threads, int slots, const std::function<bool(int)>& produce,
                           const std::function<void(int)>& map,
                           const std::function<void(int)>& reduce);

// Worker threads to use: num_threads if > 0, else the cores available to TBB.
int ResolveThreads(int num_threads);

}  // namespace lepus::models
