// lepus::report SVG plots: small, dependency-free generators of the standalone SVG charts of the
// fit report (docs/report.md). Each function takes plain data and returns one complete <svg>
// element (with the xmlns attribute, so it is also a valid standalone .svg file). Text is
// XML-escaped; non-finite numbers are never written into coordinates (points with NaN/Inf are
// skipped); hover values are <title> children (native browser tooltips, no script).
//
// Style: mplhep/CMS-like axes (ticks inside, labelled axes with units), DejaVu Sans, the CMS
// 10-colour palette for processes (Petroff, arXiv:2107.02270) and Okabe-Ito colours for the
// impact bars, both colour-blind safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lepus::report {

// XML/HTML text and attribute escaping (& < > " ').
std::string Escape(std::string_view text);

// A number for labels: `digits` significant digits, no trailing zeros ("1.25", "3e+04", "-").
std::string FormatNumber(double value, int digits = 3);

// Colour k of the process palette (cycles after 10).
const char* ProcessColour(int k);

// A linear or logarithmic axis mapping [lo, hi] onto pixels [p0, p1].
struct Scale {
  double lo = 0, hi = 1;
  double p0 = 0, p1 = 1;
  bool log = false;
  double Map(double v) const;  // clamped to a margin beyond [p0, p1]
  // Tick positions with "nice" spacing (1, 2, 5 x 10^k; decades on a log axis).
  std::vector<double> Ticks(int target = 6) const;
};

// Range [lo, hi] with a margin, widened when degenerate; for log axes lo > 0.
void NiceRange(double* lo, double* hi, bool log, double margin = 0.05);

// ---- Charts --------------------------------------------------------------------------------

// Ranked pulls and impacts (Combine / rabbit style): one row per parameter, three panels sharing
// the rows: the pull (theta - theta0) / sigma_prefit with the constraint sigma_post / sigma_prefit
// as an error bar, the nominal impact (+1 sigma bar with the impact's sign, -1 sigma opposite)
// and, when `has_global`, the global impact.
struct PullImpactRow {
  std::string name;
  double pull = 0, constraint = 0;  // NaN pull (unconstrained, POI): no marker
  double nominal = 0;
  double global = 0;
  std::string tooltip;  // extra hover text
};
struct PullImpactChart {
  std::string title;        // e.g. "Impacts on m_W"
  std::string unit;         // impact unit ("MeV"), "" = in units of the target
  bool has_impacts = true;  // false: the pull panel only
  bool has_global = false;
  std::vector<PullImpactRow> rows;  // in display order (top first)
  int width = 1300;
};
std::string RenderPullImpactChart(const PullImpactChart& chart);

// Horizontal bars: one row per category, one bar per series (e.g. nominal and global grouped
// impacts), values >= 0 or signed.
struct BarSeries {
  std::string name;
  std::vector<double> values;  // one per category
};
struct BarChart {
  std::string title, xlabel;
  std::vector<std::string> categories;
  std::vector<BarSeries> series;
  int width = 900;
};
std::string RenderBarChart(const BarChart& chart);

// Stacked histogram with data points, the total-uncertainty band and a data / prediction ratio
// panel. Bins are given by their edges (or 0..n when edges are empty). The y axis is logarithmic
// when `log_y` (RenderStack decides with LogScaleWanted when log_y is not forced).
struct StackProcess {
  std::string name;
  std::vector<double> values;  // [nbins]
  std::string colour;          // "" = ProcessColour(position in the stack)
};
struct StackPlot {
  std::string title, xlabel, ylabel = "Events / bin";
  std::vector<double> edges;               // nbins + 1 or empty
  std::vector<StackProcess> processes;     // bottom first
  std::vector<double> total, total_error;  // [nbins] (error: the band), may be empty
  std::vector<double> data;                // [nbins] or empty (no data)
  std::string data_label = "Data";
  std::vector<double> separators;             // x positions of vertical lines (unrolled views)
  std::vector<std::string> separator_labels;  // labels between separators (optional)
  int log_y = -1;                             // -1 automatic, 0 linear, 1 log
  int width = 1300, height = 520;
};
std::string RenderStack(const StackPlot& plot);
// True when the positive values span more than two decades.
bool LogScaleWanted(const std::vector<double>& values);

// Heat map of a square matrix (correlations, [-1, 1]) with names; each cell has a <title>
// "row / column: value".
struct Heatmap {
  std::string title;
  std::vector<std::string> names;
  std::vector<double> values;  // row-major [n x n]
  int width = 1000;
};
std::string RenderHeatmap(const Heatmap& map);

// 1D likelihood scan: 2 dNLL against the parameter with the 68% and 95% lines and the
// crossings (interpolated) marked.
struct ScanPlot {
  std::string title, xlabel;
  std::vector<double> x, two_dnll;
  double best = 0;
  int width = 640, height = 420;
};
std::string RenderScan(const ScanPlot& plot);
// Crossings of the piecewise-linear curve (x, y) with the level y = q, left and right of the
// minimum (NaN where the curve does not cross).
void ScanCrossings(const std::vector<double>& x, const std::vector<double>& y, double q, double* lo,
                   double* hi);

// 2D scan: contours of 2 dNLL at 2.30 (68%) and 5.99 (95%) by marching squares, with the best
// fit marked.
struct ContourPlot {
  std::string title, xlabel, ylabel;
  std::vector<double> x, y;
  std::vector<double> two_dnll;  // row-major [nx x ny]: value at (x[i], y[j]) is [i * ny + j]
  double best_x = 0, best_y = 0;
  int width = 640, height = 520;
};
std::string RenderContour(const ContourPlot& plot);

// Histogram of toy pulls with a Gaussian of the sample's mean and width overlaid (and the unit
// Gaussian dashed).
struct PullHistogram {
  std::string title, xlabel = "pull";
  std::vector<double> values;  // NaN entries are skipped
  int bins = 30;
  int width = 480, height = 360;
};
std::string RenderPullHistogram(const PullHistogram& plot);

}  // namespace lepus::report
