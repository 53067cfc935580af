// The histogramming framework (models/histogram.h): bin indexing against brute-force loops,
// weighted storage, variation deltas and the ordered parallel reduction.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "lepus/models/histogram.h"

using namespace lepus::models;

namespace {

BinSpace ThreeAxes() {
  return BinSpace({VariableAxis({0.0, 20.0, 40.0, 1e9}, "mt"), RegularAxis(8, -2.4, 2.4, "eta"),
                   RegularAxis(2, -2.0, 2.0, "charge")});
}

}  // namespace

TEST_CASE("BinSpace: row-major index equals a brute-force search over the edges") {
  const BinSpace s = ThreeAxes();
  CHECK(s.rank() == 3);
  CHECK(s.size() == 3 * 8 * 2);
  CHECK(s.stride(0) == 16);
  CHECK(s.stride(1) == 2);
  CHECK(s.stride(2) == 1);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mt(-5.0, 80.0), eta(-2.6, 2.6), q(-1.0, 1.0);
  for (int n = 0; n < 2000; ++n) {
    const double v[3] = {mt(rng), eta(rng), q(rng) < 0 ? -1.0 : 1.0};
    // Points within rounding of an edge are ambiguous (Boost computes the bin from the scaled
    // value, the edges from the bin number): skip them.
    bool near_edge = false;
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b <= s.axis_size(a); ++b)
        near_edge = near_edge || std::abs(v[a] - s.BinLower(a, b)) < 1e-9;
    if (near_edge) continue;
    // Brute force: scan the edges of each axis.
    int bins[3];
    bool inside = true;
    for (int a = 0; a < 3; ++a) {
      bins[a] = -1;
      for (int b = 0; b < s.axis_size(a); ++b)
        if (v[a] >= s.BinLower(a, b) && v[a] < s.BinUpper(a, b)) bins[a] = b;
      inside = inside && bins[a] >= 0;
    }
    const int expected = inside ? (bins[0] * 8 + bins[1]) * 2 + bins[2] : -1;
    CAPTURE(v[0]);
    CAPTURE(v[1]);
    CAPTURE(v[2]);
    REQUIRE(s.Index(v) == expected);
    if (inside) {
      int back[3];
      s.Unravel(expected, back);
      CHECK(back[0] == bins[0]);
      CHECK(back[1] == bins[1]);
      CHECK(back[2] == bins[2]);
      CHECK(s.Linear(bins) == expected);
    }
  }
  const double nan_point[3] = {std::nan(""), 0.0, 1.0};
  CHECK(s.Index(nan_point) == -1);
}

TEST_CASE("BinSpace: engine axes, integer axes and bad axes") {
  const BinSpace fit({RegularAxis(4, -2.4, 2.4, "eta"), IntegerAxis(0, 3, "cat")});
  const auto axes = fit.ToEngineAxes();
  REQUIRE(axes.size() == 2);
  CHECK(axes[0].name == "eta");
  CHECK(axes[0].edges.size() == 5);
  CHECK(axes[0].edges.front() == doctest::Approx(-2.4));
  CHECK(axes[1].edges == std::vector<double>{-0.5, 0.5, 1.5, 2.5});
  CHECK(fit.AxisIndex(1, 2.7) == 2);
  CHECK(fit.AxisIndex(1, 3.0) == -1);
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(BinSpace({VariableAxis({0.0, 20.0, inf}, "mt")}),
                       doctest::Contains("axis 'mt' has an infinite edge"), std::invalid_argument);
  CHECK(ThreeAxes().ToEngineAxes()[0].edges == std::vector<double>{0.0, 20.0, 40.0, 1e9});
  CHECK_THROWS_WITH_AS(BinSpace({RegularAxis(2, 0, 1, "x"), RegularAxis(2, 0, 1, "x")}),
                       doctest::Contains("axis name 'x' is used twice"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(BinSpace({RegularAxis(2, 0, 1, "")}), doctest::Contains("empty name"),
                       std::invalid_argument);
  CHECK_THROWS_AS(BinSpace(std::vector<AnyAxis>{}), std::invalid_argument);
}

TEST_CASE("WeightedHistogram: sumw and sumw2 equal a brute-force loop; merge adds") {
  const BinSpace s = ThreeAxes();
  WeightedHistogram h(s), h2(s);
  std::vector<double> sumw(s.size(), 0.0), sumw2(s.size(), 0.0);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> mt(0.0, 90.0), eta(-2.5, 2.5), w(-0.5, 2.0);
  for (int n = 0; n < 5000; ++n) {
    const double v[3] = {mt(rng), eta(rng), (n % 2) ? 1.0 : -1.0};
    const double wt = w(rng);
    (n < 2500 ? h : h2).FillValues(s, v, wt);
    const int k = s.Index(v);
    if (k >= 0) {
      sumw[k] += wt;
      sumw2[k] += wt * wt;
    }
  }
  h += h2;
  for (int k = 0; k < s.size(); ++k) {
    CHECK(h.sumw(k) == doctest::Approx(sumw[k]).epsilon(1e-12));
    CHECK(h.sumw2(k) == doctest::Approx(sumw2[k]).epsilon(1e-12));
  }
  // Boost's own view: the same cells through its (reversed-axis) indexing.
  const auto& bh = h.boost_histogram();
  CHECK(bh.rank() == 3);
  CHECK(bh.at(1, 3, 2).value() == doctest::Approx(sumw[(2 * 8 + 3) * 2 + 1]).epsilon(1e-12));
  const auto part = h.Sumw(16, 32);
  CHECK(part.size() == 16);
  CHECK(part[5] == h.sumw(21));
  h.Reset();
  CHECK(h.TotalSumw() == 0.0);
}

TEST_CASE("VariationStore: deltas over the support, moves between bins, varied templates") {
  VariationLayout layout;
  const int full = layout.Add("theoryUp", 0, BinRange{0, 12});
  const int local = layout.Add("effStat_eta1", 0, BinRange{4, 8});
  CHECK(layout.Add("effStat_eta1", 1, BinRange{4, 8}) == 2);
  CHECK(layout.buffer_size() == 20);
  CHECK(layout.Find("effStat_eta1", 1) == 2);
  CHECK(layout.Find("nosuch", 0) == -1);
  CHECK_THROWS_WITH_AS(layout.Add("theoryUp", 0, BinRange{0, 12}),
                       doctest::Contains("already registered"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(layout.Add("empty", 0, BinRange{3, 3}), doctest::Contains("empty support"),
                       std::invalid_argument);

  VariationStore a(&layout), b(&layout);
  a.Fill(full, 11, 0.5);
  a.Move(local, 5, 2.0, 6, 2.0);   // moved within the support
  a.Move(local, 7, 1.0, -1, 1.0);  // left the space
  b.Move(local, 5, 1.0, 5, 1.5);   // same bin, weight changed
  b.Move(local, 6, 1.0, 6, 1.0);   // no change: nothing stored
  a += b;
  CHECK(a.delta(full, 11) == 0.5);
  CHECK(a.delta(local, 5) == -1.5);
  CHECK(a.delta(local, 6) == 2.0);
  CHECK(a.delta(local, 7) == -1.0);
  CHECK(a.delta(local, 2) == 0.0);  // outside the support
  const std::vector<double> nominal(12, 10.0);
  const auto v = a.Varied(local, nominal);
  CHECK(v[3] == 10.0);
  CHECK(v[5] == 8.5);
  CHECK(v[6] == 12.0);
  CHECK(v[7] == 9.0);
  CHECK(a.AbsSum(local) == 4.5);
  CHECK(a.AbsSum(2) == 0.0);
  a.Reset();
  CHECK(a.AbsSum(full) == 0.0);
}

TEST_CASE("OrderedParallelReduce: partials are added in item order at any thread count") {
  // Sums of values spanning many orders of magnitude: any change of the addition order shows in
  // the last bits.
  const int items = 200;
  auto run = [&](int threads, int slots) {
    std::vector<double> partial(slots, 0.0);
    std::vector<int> item_of(slots, -1);
    int next = 0;
    double total = 0.0;
    std::vector<int> order;
    OrderedParallelReduce(
        threads, slots,
        [&](int s) {
          if (next == items) return false;
          item_of[s] = next++;
          return true;
        },
        [&](int s) {
          const int k = item_of[s];
          double sum = 0.0;
          for (int j = 0; j < 1000; ++j) sum += std::ldexp(1.0 + j * 1e-3, (k * 37 + j) % 60 - 30);
          partial[s] = sum;
        },
        [&](int s) {
          total += partial[s];
          order.push_back(item_of[s]);
          partial[s] = 0.0;
        });
    for (int k = 0; k < items; ++k) REQUIRE(order[k] == k);
    return total;
  };
  const double serial = run(1, 1);
  const double two = run(2, 5);
  const double many = run(2, 2);
  CHECK(std::memcmp(&serial, &two, sizeof(double)) == 0);
  CHECK(std::memcmp(&serial, &many, sizeof(double)) == 0);
  CHECK_THROWS_AS(run(1, 0), std::invalid_argument);

  // An exception in a stage propagates.
  int produced = 0;
  CHECK_THROWS_WITH_AS(OrderedParallelReduce(
                           2, 3, [&](int) { return produced++ < 10; },
                           [&](int) { throw std::runtime_error("map failed"); }, [](int) {}),
                       "map failed", std::runtime_error);
}
