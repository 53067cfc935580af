// The SVG chart generators of the fit report (report/src/svg.cc): axes and labels present, one
// bar per parameter shown, no NaN/Inf in any coordinate, names escaped, valid nesting.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lepus/report/svg.h"

using namespace lepus::report;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

int Count(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// No "nan" or "inf" anywhere in the markup outside text (numbers in attributes and paths are
// what matters; the test inputs use names without these letters).
void CheckFinite(const std::string& svg) {
  const std::string l = Lower(svg);
  CHECK(l.find("nan") == std::string::npos);
  CHECK(l.find("inf") == std::string::npos);
}

// One root element, balanced tags of the kinds the generators write.
void CheckWellFormed(const std::string& svg) {
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.size() >= 6);
  CHECK(svg.substr(svg.size() - 6) == "</svg>");
  CHECK(Count(svg, "<svg") == 1);
  for (const std::string tag :
       {"text", "title", "path", "rect", "circle", "tspan", "pattern", "defs"}) {
    const std::string start = "<" + tag;
    std::string close = "</";
    close += tag;
    close += ">";
    // Self-closed elements ("<rect .../>") have no closing tag; count the elements that do.
    int opened = 0;
    for (std::size_t p = svg.find(start); p != std::string::npos; p = svg.find(start, p + 1)) {
      const std::size_t end = svg.find('>', p);
      const char after = svg[p + start.size()];
      if (after != ' ' && after != '>') continue;  // e.g. <textPath>
      if (end != std::string::npos && svg[end - 1] != '/') ++opened;
    }
    CHECK_MESSAGE(opened == Count(svg, close), tag);
  }
}

PullImpactChart SampleChart(int n, bool global) {
  PullImpactChart c;
  c.title = "Impacts on mass";
  c.unit = "MeV";
  c.has_global = global;
  for (int i = 0; i < n; ++i)
    c.rows.push_back(
        {"param_" + std::to_string(i), 0.1 * i - 0.5, 0.8, 3.0 - 0.3 * i, 2.5 - 0.2 * i, ""});
  return c;
}

}  // namespace

TEST_CASE("Escape replaces the XML special characters") {
  CHECK(Escape("a<b & c>\"d'") == "a&lt;b &amp; c&gt;&quot;d&#39;");
  CHECK(Escape("plain_name-1.2") == "plain_name-1.2");
  CHECK(Escape(std::string("x\x01y")) == "x?y");  // control characters are not XML
}

TEST_CASE("FormatNumber and scales") {
  CHECK(FormatNumber(1.25, 3) == "1.25");
  CHECK(FormatNumber(kNaN) == "-");
  CHECK(FormatNumber(0.0) == "0");
  Scale lin{0, 10, 0, 100, false};
  CHECK(lin.Map(5) == doctest::Approx(50));
  const auto t = lin.Ticks(5);
  REQUIRE(t.size() == 6);
  CHECK(t.front() == 0);
  CHECK(t.back() == doctest::Approx(10));
  Scale lg{1, 1e4, 0, 100, true};
  CHECK(lg.Map(100) == doctest::Approx(50));
  const auto tl = lg.Ticks(8);
  REQUIRE(tl.size() == 5);
  CHECK(tl[2] == doctest::Approx(100));
  CHECK(std::isfinite(lg.Map(0)));  // log of 0: clamped below the axis, never NaN
  CHECK(std::isfinite(lin.Map(kNaN)));
  CHECK(LogScaleWanted({1, 10, 1000}));
  CHECK_FALSE(LogScaleWanted({10, 20, 500}));
}

TEST_CASE("pulls and impacts chart: one bar per parameter and panel, axes labelled") {
  for (bool global : {false, true}) {
    const int n = 7;
    const std::string svg = RenderPullImpactChart(SampleChart(n, global));
    CheckWellFormed(svg);
    CheckFinite(svg);
    const int panels = global ? 2 : 1;
    // +1 sigma bars are blue, -1 sigma bars vermillion; one legend swatch each.
    CHECK(Count(svg, "fill=\"#0072B2\"") == n * panels + 1);
    CHECK(Count(svg, "fill=\"#D55E00\"") == n * panels + 1);
    // One pull marker per row plus the legend marker.
    CHECK(Count(svg, "<circle") == n + 1);
    CHECK(svg.find("pull (θ̂ − θ₀) / Δθ") != std::string::npos);
    CHECK(svg.find("nominal impact Δ [MeV]") != std::string::npos);
    CHECK((svg.find("global impact Δ [MeV]") != std::string::npos) == global);
    for (int i = 0; i < n; ++i)
      CHECK(svg.find(">param_" + std::to_string(i) + "<") != std::string::npos);
  }
}

TEST_CASE("pulls chart: NaN and infinite values draw nothing and never reach the markup") {
  PullImpactChart c = SampleChart(3, true);
  c.rows[0].pull = kNaN;  // an unconstrained parameter
  c.rows[1].nominal = kInf;
  c.rows[2].global = kNaN;
  c.rows[2].constraint = kNaN;
  const std::string svg = RenderPullImpactChart(c);
  CheckWellFormed(svg);
  CheckFinite(svg);
  CHECK(Count(svg, "<circle") == 2 + 1);  // rows 1 and 2 have a pull
}

TEST_CASE("names are escaped in labels and tooltips") {
  PullImpactChart c = SampleChart(1, false);
  c.rows[0].name = "a<b>&\"c\"";
  const std::string svg = RenderPullImpactChart(c);
  CHECK(svg.find("a<b>") == std::string::npos);
  CHECK(svg.find("a&lt;b&gt;&amp;&quot;c&quot;") != std::string::npos);
  Heatmap h{"corr", {"x<y", "z&w"}, {1, 0.5, 0.5, 1}, 600};
  const std::string hs = RenderHeatmap(h);
  CHECK(hs.find("x<y") == std::string::npos);
  CHECK(hs.find("x&lt;y") != std::string::npos);
  CheckWellFormed(hs);
}

TEST_CASE("bar chart: one bar per category and series") {
  BarChart b;
  b.title = "Grouped impacts";
  b.xlabel = "impact [MeV]";
  b.categories = {"pdf", "muonScale", "stat"};
  b.series = {{"nominal", {3, 2, 1}}, {"global", {2.5, kNaN, 1.2}}};
  const std::string svg = RenderBarChart(b);
  CheckWellFormed(svg);
  CheckFinite(svg);
  // Bars carry a tooltip "<category> (<series>): value"; the NaN one is not drawn.
  CHECK(Count(svg, "(nominal): ") == 3);
  CHECK(Count(svg, "(global): ") == 2);
  CHECK(svg.find("impact [MeV]") != std::string::npos);
}

TEST_CASE("stacked histogram: axes, data, band, ratio; log scale where yields span decades") {
  StackPlot p;
  p.title = "Post-fit: ch";
  p.xlabel = "muon pT [GeV]";
  p.edges = {26, 30, 35, 40, 50};
  p.processes = {{"bkg", {10, 20, 5, 1}, ""}, {"sig", {1000, 2000, 500, 100}, ""}};
  p.total = {1010, 2020, 505, 101};
  p.total_error = {20, 30, 10, 5};
  p.data = {1000, 2100, kNaN, 90};
  const std::string svg = RenderStack(p);
  CheckWellFormed(svg);
  CheckFinite(svg);
  CHECK(svg.find("muon pT [GeV]") != std::string::npos);
  CHECK(svg.find("Events / bin") != std::string::npos);
  CHECK(svg.find("Data / pred.") != std::string::npos);
  CHECK(svg.find("<tspan") != std::string::npos);  // 10^k tick labels: log scale chosen
  // Two frames (main and ratio panel), one filled area per process.
  CHECK(Count(svg, "fill=\"none\" stroke=\"#000\"/>") >= 2);
  CHECK(Count(svg, "<title>bkg</title>") == 1);
  CHECK(Count(svg, "<title>sig</title>") == 1);
  // Three data points drawn (the NaN one skipped): "h0" dots in the main and the ratio panel.
  CHECK(Count(svg, "h0") == 6);

  StackPlot q = p;
  q.processes = {{"flat", {10, 12, 11, 9}, ""}};
  q.total = {10, 12, 11, 9};
  q.data = {};
  const std::string lin = RenderStack(q);
  CheckWellFormed(lin);
  CHECK(lin.find("<tspan") == std::string::npos);        // linear
  CHECK(lin.find("Data / pred.") == std::string::npos);  // no data, no ratio panel
}

TEST_CASE("stacked histogram without edges uses bin numbers and survives empty input") {
  StackPlot p;
  p.total = {1, 2, 3};
  const std::string svg = RenderStack(p);
  CheckWellFormed(svg);
  CheckFinite(svg);
  StackPlot empty;
  const std::string e = RenderStack(empty);
  CheckWellFormed(e);
  CheckFinite(e);
}

TEST_CASE("heat map: n x n cells with hover values") {
  Heatmap h;
  h.title = "Correlations";
  h.names = {"a", "b", "c"};
  h.values = {1, 0.2, -0.5, 0.2, 1, kNaN, -0.5, kNaN, 1};
  const std::string svg = RenderHeatmap(h);
  CheckWellFormed(svg);
  CheckFinite(svg);
  CHECK(Count(svg, "<title>a / ") == 3);
  CHECK(svg.find("<title>a / c: -0.5</title>") != std::string::npos);
  CHECK(svg.find("<title>b / c: -</title>") != std::string::npos);
}

TEST_CASE("scan: crossings of 2 dNLL with the 68% and 95% levels") {
  std::vector<double> x, y;
  for (int i = -30; i <= 30; ++i) {
    x.push_back(i * 0.1);
    y.push_back(std::pow(i * 0.1 - 0.2, 2));  // minimum at 0.2, unit error
  }
  double lo, hi;
  ScanCrossings(x, y, 1.0, &lo, &hi);
  CHECK(lo == doctest::Approx(-0.8).epsilon(0.01));
  CHECK(hi == doctest::Approx(1.2).epsilon(0.01));
  ScanCrossings(x, y, 100.0, &lo, &hi);  // never crossed
  CHECK(std::isnan(lo));
  CHECK(std::isnan(hi));
  y[5] = kNaN;  // a failed profile fit
  const std::string svg = RenderScan({"scan", "mass", x, y, 0.2});
  CheckWellFormed(svg);
  CheckFinite(svg);
  CHECK(svg.find("68%") != std::string::npos);
  CHECK(svg.find("95%") != std::string::npos);
  CHECK(svg.find("−2 Δln L") != std::string::npos);
}

TEST_CASE("2D contour and toy pull histogram") {
  ContourPlot c;
  c.title = "2D";
  c.xlabel = "a";
  c.ylabel = "b";
  for (int i = 0; i < 21; ++i) c.x.push_back(-3 + 0.3 * i);
  c.y = c.x;
  for (double a : c.x)
    for (double b : c.y) c.two_dnll.push_back(a * a + b * b);
  c.two_dnll[7] = kNaN;
  const std::string svg = RenderContour(c);
  CheckWellFormed(svg);
  CheckFinite(svg);
  CHECK(Count(svg, "stroke=\"#0072B2\" stroke-width=\"2\"") >= 1);
  CHECK(svg.find("M") != std::string::npos);

  PullHistogram h;
  h.title = "pulls";
  for (int i = 0; i < 200; ++i) h.values.push_back(std::sin(i * 1.7) * 1.5);
  h.values.push_back(kNaN);
  const std::string hs = RenderPullHistogram(h);
  CheckWellFormed(hs);
  CheckFinite(hs);
  CHECK(hs.find("toys (200)") != std::string::npos);
  CHECK(hs.find("Gaussian μ = ") != std::string::npos);
}
