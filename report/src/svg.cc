// SVG chart generators of the fit report (lepus/report/svg.h).
#include "lepus/report/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

namespace lepus::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";
// Okabe-Ito.
constexpr const char* kBlue = "#0072B2";
constexpr const char* kVermillion = "#D55E00";
constexpr const char* kSkyBlue = "#56B4E9";
constexpr const char* kOrange = "#E69F00";
constexpr const char* kGreen = "#009E73";
constexpr const char* kGrey = "#888888";

bool Finite(double v) { return std::isfinite(v); }

// Pixel coordinate: one decimal is enough at any zoom a report is read at.
std::string P(double v) {
  if (!Finite(v)) v = 0;  // never reached for plotted points (callers skip them)
  char buf[32];
  const double r = std::round(v * 10.0) / 10.0;
  if (r == std::floor(r))
    std::snprintf(buf, sizeof(buf), "%.0f", r == 0 ? 0.0 : r);
  else
    std::snprintf(buf, sizeof(buf), "%.1f", r);
  return buf;
}

// Approximate rendered width of text in DejaVu Sans.
double TextWidth(std::string_view s, double size) {
  return 0.64 * size * static_cast<double>(s.size());
}

// Shortens a label to at most `chars` characters ("abc...xyz").
std::string Shorten(const std::string& s, std::size_t chars) {
  if (s.size() <= chars || chars < 8) return s;
  const std::size_t head = (chars - 3) * 2 / 3, tail = chars - 3 - head;
  return s.substr(0, head) + "..." + s.substr(s.size() - tail);
}

class Svg {
 public:
  Svg(int width, int height, const std::string& title) {
    s_.reserve(1 << 14);
    s_ += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
          "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) +
          " " + std::to_string(height) + "\" font-family=\"" + kFont +
          "\" font-size=\"13\" class=\"plot\">";
    if (!title.empty()) s_ += "<title>" + Escape(title) + "</title>";
    s_ += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  }
  std::string& raw() { return s_; }
  void Text(double x, double y, const std::string& text, const char* anchor = "start",
            double size = 13, const std::string& extra = "") {
    s_ += "<text x=\"" + P(x) + "\" y=\"" + P(y) + "\"";
    if (std::string_view(anchor) != "start") s_ += std::string(" text-anchor=\"") + anchor + "\"";
    if (size != 13) s_ += " font-size=\"" + P(size) + "\"";
    if (!extra.empty()) s_ += " " + extra;
    s_ += ">" + Escape(text) + "</text>";
  }
  void Line(double x1, double y1, double x2, double y2, const char* colour, double w = 1,
            const std::string& extra = "") {
    s_ += "<line x1=\"" + P(x1) + "\" y1=\"" + P(y1) + "\" x2=\"" + P(x2) + "\" y2=\"" + P(y2) +
          "\" stroke=\"" + colour + "\"";
    if (w != 1) s_ += " stroke-width=\"" + P(w) + "\"";
    if (!extra.empty()) s_ += " " + extra;
    s_ += "/>";
  }
  void Rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& extra = "", const std::string& tooltip = "") {
    if (h < 0) {
      y += h;
      h = -h;
    }
    if (w < 0) {
      x += w;
      w = -w;
    }
    s_ += "<rect x=\"" + P(x) + "\" y=\"" + P(y) + "\" width=\"" + P(w) + "\" height=\"" + P(h) +
          "\" fill=\"" + fill + "\"";
    if (!extra.empty()) s_ += " " + extra;
    if (tooltip.empty()) {
      s_ += "/>";
    } else {
      s_ += "><title>" + Escape(tooltip) + "</title></rect>";
    }
  }
  std::string Finish() {
    s_ += "</svg>";
    return std::move(s_);
  }

 private:
  std::string s_;
};

// Axis box with ticks inside (mplhep style), tick labels and axis labels.
void DrawFrame(Svg& svg, const Scale& x, const Scale& y, const std::string& xlabel,
               const std::string& ylabel, bool x_tick_labels = true, bool grid = false,
               int y_ticks = 6) {
  const double l = x.p0, r = x.p1, b = y.p0, t = y.p1;
  for (double v : y.Ticks(y_ticks)) {
    const double py = y.Map(v);
    if (grid) svg.Line(l, py, r, py, "#e5e5e5");
    svg.Line(l, py, l + 6, py, "#000");
    svg.Line(r, py, r - 6, py, "#000");
    if (y.log && v > 0 && std::abs(std::log10(v) - std::round(std::log10(v))) < 1e-9) {
      svg.raw() += "<text x=\"" + P(l - 5) + "\" y=\"" + P(py + 4) +
                   "\" text-anchor=\"end\" font-size=\"12\">10<tspan dy=\"-6\" font-size=\"9\">" +
                   std::to_string(static_cast<int>(std::lround(std::log10(v)))) + "</tspan></text>";
    } else {
      svg.Text(l - 5, py + 4, FormatNumber(v, 3), "end", 12);
    }
  }
  for (double v : x.Ticks()) {
    const double px = x.Map(v);
    svg.Line(px, b, px, b - 6, "#000");
    svg.Line(px, t, px, t + 6, "#000");
    if (x_tick_labels) svg.Text(px, b + 16, FormatNumber(v, 4), "middle", 12);
  }
  svg.Rect(l, t, r - l, b - t, "none", "stroke=\"#000\"");
  if (!xlabel.empty() && x_tick_labels) svg.Text(r, b + 34, xlabel, "end", 14);
  if (!ylabel.empty())
    svg.Text(0, 0, ylabel, "end", 14,
             "transform=\"translate(" + P(l - 48) + "," + P(t) + ") rotate(-90)\"");
}

void Legend(Svg& svg, double x, double y,
            const std::vector<std::pair<std::string, std::string>>& items,
            const std::vector<std::string>& kinds) {
  // kinds: "box", "band", "dot", "line", "dash"
  for (std::size_t i = 0; i < items.size(); ++i) {
    const double yy = y + 18.0 * static_cast<double>(i);
    const std::string& c = items[i].second;
    const std::string& k = kinds[i];
    if (k == "box") svg.Rect(x, yy - 10, 18, 12, c, "stroke=\"#333\" stroke-width=\"0.5\"");
    if (k == "band")
      svg.Rect(x, yy - 10, 18, 12, "url(#hatch)", "stroke=\"#555\" stroke-width=\"0.5\"");
    if (k == "dot") {
      svg.Line(x + 9, yy - 10, x + 9, yy + 2, c.c_str(), 1.2);
      svg.raw() +=
          "<circle cx=\"" + P(x + 9) + "\" cy=\"" + P(yy - 4) + "\" r=\"3\" fill=\"" + c + "\"/>";
    }
    if (k == "line") svg.Line(x, yy - 4, x + 18, yy - 4, c.c_str(), 2);
    if (k == "dash")
      svg.Line(x, yy - 4, x + 18, yy - 4, c.c_str(), 1.5, "stroke-dasharray=\"4 3\"");
    svg.Text(x + 24, yy, items[i].first, "start", 12);
  }
}

const char* kHatchDefs =
    "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
    "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"none\"/>"
    "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#444\" "
    "stroke-width=\"1.2\"/></pattern></defs>";

}  // namespace

// ---- Utilities ---------------------------------------------------------------------------------

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
          out += "?";
        else
          out += c;
    }
  }
  return out;
}

std::string FormatNumber(double value, int digits) {
  if (!Finite(value)) return "-";
  if (value == 0) return "0";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, value);
  return buf;
}

const char* ProcessColour(int k) {
  static const char* const kPalette[] = {"#3f90da", "#ffa90e", "#bd1f01", "#94a4a2", "#832db6",
                                         "#a96b59", "#e76300", "#b9ac70", "#717581", "#92dadd"};
  return kPalette[((k % 10) + 10) % 10];
}

double Scale::Map(double v) const {
  double f;
  if (log) {
    const double a = std::log10(lo), b = std::log10(hi);
    f = v > 0 ? (std::log10(v) - a) / (b - a) : -1.0;
  } else {
    f = (v - lo) / (hi - lo);
  }
  if (!Finite(f)) f = 0;
  f = std::clamp(f, -0.05, 1.05);
  return p0 + f * (p1 - p0);
}

std::vector<double> Scale::Ticks(int target) const {
  std::vector<double> out;
  if (!(hi > lo)) return out;
  if (log) {
    const int a = static_cast<int>(std::ceil(std::log10(lo) - 1e-9));
    const int b = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
    const int step = std::max(
        1, (b - a + 1) / std::max(target, 1) + ((b - a + 1) % std::max(target, 1) ? 1 : 0));
    for (int e = a; e <= b; e += step) out.push_back(std::pow(10.0, e));
    if (out.empty()) out.push_back(std::sqrt(lo * hi));
    return out;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag * 1.0001) {
      step = m * mag;
      break;
    }
  const double first = std::ceil(lo / step - 1e-9) * step;
  for (double v = first; v <= hi + step * 1e-6 && out.size() < 100; v += step)
    out.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return out;
}

void NiceRange(double* lo, double* hi, bool log, double margin) {
  if (!Finite(*lo) || !Finite(*hi)) {
    *lo = log ? 0.1 : 0;
    *hi = 1;
  }
  if (log) {
    if (*lo <= 0) *lo = *hi > 0 ? *hi * 1e-3 : 0.1;
    if (*hi <= *lo) *hi = *lo * 10;
    const double a = std::log10(*lo), b = std::log10(*hi), d = (b - a) * margin;
    *lo = std::pow(10.0, a - d);
    *hi = std::pow(10.0, b + d);
    return;
  }
  if (*hi <= *lo) {
    const double c = *lo, w = c != 0 ? std::abs(c) * 0.5 : 1.0;
    *lo = c - w;
    *hi = c + w;
  }
  const double d = (*hi - *lo) * margin;
  *lo -= d;
  *hi += d;
}

bool LogScaleWanted(const std::vector<double>& values) {
  double mn = std::numeric_limits<double>::infinity(), mx = 0;
  for (double v : values)
    if (Finite(v) && v > 0) {
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
  return mx > 0 && mx / mn > 100.0;
}

// ---- Pulls and impacts -------------------------------------------------------------------------

std::string RenderPullImpactChart(const PullImpactChart& c) {
  const int n = static_cast<int>(c.rows.size());
  const double row_h = 22, top = 58, bottom = 46;
  const int height = static_cast<int>(top + bottom + row_h * std::max(n, 1));
  std::size_t longest = 8;
  for (const auto& r : c.rows) longest = std::max(longest, r.name.size());
  const std::size_t name_chars = std::min<std::size_t>(longest, 48);
  const double name_w = TextWidth(std::string(name_chars, 'x'), 12) + 52;  // row numbers first
  const double gap = 26;
  const int panels = !c.has_impacts ? 1 : c.has_global ? 3 : 2;
  const double avail = c.width - name_w - 20 - gap * (panels - 1);
  const double pw = avail / panels;
  Svg svg(c.width, height, c.title);
  svg.Text(c.width / 2.0, 20, c.title, "middle", 16, "font-weight=\"bold\"");

  // Pull panel range: at least [-2, 2].
  double pmax = 2.0;
  for (const auto& r : c.rows)
    if (Finite(r.pull))
      pmax = std::max(pmax, std::abs(r.pull) + (Finite(r.constraint) ? r.constraint : 0));
  pmax = std::min(std::ceil(pmax * 1.05 * 2) / 2, 10.0);
  double imax = 0;
  for (const auto& r : c.rows) {
    if (Finite(r.nominal)) imax = std::max(imax, std::abs(r.nominal));
    if (c.has_global && Finite(r.global)) imax = std::max(imax, std::abs(r.global));
  }
  if (!(imax > 0)) imax = 1;
  imax *= 1.1;

  const double y0 = top, y1 = top + row_h * std::max(n, 1);
  struct Panel {
    Scale s;
    std::string label;
  };
  std::vector<Panel> ps;
  double x = name_w;
  ps.push_back({Scale{-pmax, pmax, x, x + pw, false}, "pull (θ̂ − θ₀) / Δθ"});
  x += pw + gap;
  const std::string unit = c.unit.empty() ? "" : " [" + c.unit + "]";
  if (c.has_impacts)
    ps.push_back({Scale{-imax, imax, x, x + pw, false}, "nominal impact Δ" + unit});
  x += pw + gap;
  if (c.has_impacts && c.has_global)
    ps.push_back({Scale{-imax, imax, x, x + pw, false}, "global impact Δ" + unit});

  // Row shading and names.
  for (int i = 0; i < n; ++i) {
    const auto& r = c.rows[i];
    const double yc = y0 + row_h * (i + 0.5);
    if (i % 2 == 0) svg.Rect(4, yc - row_h / 2, c.width - 8, row_h, "#f3f3f3");
    svg.raw() += "<text x=\"" + P(name_w - 10) + "\" y=\"" + P(yc + 4) +
                 "\" text-anchor=\"end\" font-size=\"12\">" + Escape(Shorten(r.name, name_chars)) +
                 "<title>" + Escape(r.name + (r.tooltip.empty() ? "" : "\n" + r.tooltip)) +
                 "</title></text>";
    svg.Text(14, yc + 4, std::to_string(i + 1), "start", 10, "fill=\"#777\"");
  }
  for (std::size_t k = 0; k < ps.size(); ++k) {
    const Scale& s = ps[k].s;
    Scale ys{0, 1, y1, y0, false};
    // Vertical guides.
    if (k == 0) {
      for (double g : {-2.0, -1.0, 1.0, 2.0})
        if (std::abs(g) <= pmax)
          svg.Line(s.Map(g), y0, s.Map(g), y1, "#bbb", 1, "stroke-dasharray=\"3 3\"");
    }
    svg.Line(s.Map(0), y0, s.Map(0), y1, "#666");
    for (double v : s.Ticks(k == 0 ? 8 : 5)) {
      const double px = s.Map(v);
      svg.Line(px, y1, px, y1 - 5, "#000");
      svg.Line(px, y0, px, y0 + 5, "#000");
      svg.Text(px, y1 + 15, FormatNumber(v, 3), "middle", 11);
    }
    svg.Rect(s.p0, y0, s.p1 - s.p0, y1 - y0, "none", "stroke=\"#000\"");
    svg.Text((s.p0 + s.p1) / 2, y1 + 34, ps[k].label, "middle", 13);
    (void)ys;
  }
  // Rows.
  for (int i = 0; i < n; ++i) {
    const auto& r = c.rows[i];
    const double yc = y0 + row_h * (i + 0.5);
    const Scale& sp = ps[0].s;
    if (Finite(r.pull)) {
      const double e = Finite(r.constraint) ? r.constraint : 0;
      svg.Line(sp.Map(r.pull - e), yc, sp.Map(r.pull + e), yc, "#000", 1.5);
      svg.raw() += "<circle cx=\"" + P(sp.Map(r.pull)) + "\" cy=\"" + P(yc) +
                   "\" r=\"3.5\" fill=\"#000\"><title>" +
                   Escape(r.name + ": pull " + FormatNumber(r.pull, 3) + ", constraint " +
                          FormatNumber(e, 3)) +
                   "</title></circle>";
    }
    for (std::size_t k = 1; k < ps.size(); ++k) {
      const double v = k == 1 ? r.nominal : r.global;
      if (!Finite(v)) continue;
      const Scale& s = ps[k].s;
      const double h = row_h * 0.34;
      const std::string tip = r.name + ": " + (k == 1 ? "nominal" : "global") + " impact " +
                              (v >= 0 ? "+" : "") + FormatNumber(v, 3) +
                              (c.unit.empty() ? "" : " " + c.unit) + " (+1σ), " +
                              (v >= 0 ? "-" : "+") + FormatNumber(std::abs(v), 3) + " (−1σ)";
      // +1 sigma bar (upper half) with the impact's sign, -1 sigma (lower half) opposite.
      svg.Rect(s.Map(0), yc - h, s.Map(v) - s.Map(0), h, kBlue, "", tip);
      svg.Rect(s.Map(0), yc, s.Map(-v) - s.Map(0), h, kVermillion, "", tip);
    }
  }
  // Legend.
  if (ps.size() > 1) {
    const double lx = ps[1].s.p0;
    svg.Rect(lx, 34, 14, 10, kBlue);
    svg.Text(lx + 18, 43, "+1σ impact", "start", 12);
    svg.Rect(lx + 110, 34, 14, 10, kVermillion);
    svg.Text(lx + 128, 43, "−1σ impact", "start", 12);
  }
  svg.Line(ps[0].s.p0 + 10, 39, ps[0].s.p0 + 30, 39, "#000", 1.5);
  svg.raw() += "<circle cx=\"" + P(ps[0].s.p0 + 20) + "\" cy=\"39\" r=\"3.5\"/>";
  svg.Text(ps[0].s.p0 + 36, 43, "pull ± post-fit constraint", "start", 12);
  return svg.Finish();
}

// ---- Bar chart ---------------------------------------------------------------------------------

std::string RenderBarChart(const BarChart& c) {
  const int n = static_cast<int>(c.categories.size());
  const int ns = std::max<int>(1, static_cast<int>(c.series.size()));
  const double row_h = std::max(20.0, 8.0 + 10.0 * ns), top = 48, bottom = 50;
  const int height = static_cast<int>(top + bottom + row_h * std::max(n, 1));
  std::size_t longest = 8;
  for (const auto& s : c.categories) longest = std::max(longest, s.size());
  const std::size_t chars = std::min<std::size_t>(longest, 40);
  const double name_w = TextWidth(std::string(chars, 'x'), 12) + 20;
  double lo = 0, hi = 0;
  for (const auto& s : c.series)
    for (double v : s.values)
      if (Finite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  if (hi <= lo) hi = lo + 1;
  const double pad = (hi - lo) * 0.08;
  Scale xs{lo < 0 ? lo - pad : 0, hi + pad, name_w, c.width - 20.0, false};
  const double y0 = top, y1 = top + row_h * std::max(n, 1);
  Svg svg(c.width, height, c.title);
  svg.Text(c.width / 2.0, 20, c.title, "middle", 16, "font-weight=\"bold\"");
  static const char* colours[] = {kBlue, kOrange, kGreen, kVermillion, kSkyBlue};
  for (int i = 0; i < n; ++i) {
    const double yt = y0 + row_h * i;
    if (i % 2 == 0) svg.Rect(4, yt, c.width - 8, row_h, "#f3f3f3");
    svg.raw() += "<text x=\"" + P(name_w - 8) + "\" y=\"" + P(yt + row_h / 2 + 4) +
                 "\" text-anchor=\"end\" font-size=\"12\">" +
                 Escape(Shorten(c.categories[i], chars)) + "<title>" + Escape(c.categories[i]) +
                 "</title></text>";
    for (int k = 0; k < static_cast<int>(c.series.size()); ++k) {
      const auto& s = c.series[k];
      const double v = i < static_cast<int>(s.values.size()) ? s.values[i] : kNaN;
      if (!Finite(v)) continue;
      const double bh = (row_h - 6) / ns;
      svg.Rect(xs.Map(0), yt + 3 + bh * k, xs.Map(v) - xs.Map(0), bh - 1, colours[k % 5], "",
               c.categories[i] + " (" + s.name + "): " + FormatNumber(v, 4));
    }
  }
  for (double v : xs.Ticks(6)) {
    const double px = xs.Map(v);
    svg.Line(px, y1, px, y1 - 5, "#000");
    svg.Text(px, y1 + 15, FormatNumber(v, 3), "middle", 11);
  }
  svg.Line(xs.Map(0), y0, xs.Map(0), y1, "#666");
  svg.Rect(xs.p0, y0, xs.p1 - xs.p0, y1 - y0, "none", "stroke=\"#000\"");
  svg.Text(xs.p1, y1 + 36, c.xlabel, "end", 13);
  for (int k = 0; k < static_cast<int>(c.series.size()); ++k) {
    const double lx = name_w + 150.0 * k;
    svg.Rect(lx, 30, 14, 10, colours[k % 5]);
    svg.Text(lx + 18, 39, c.series[k].name, "start", 12);
  }
  return svg.Finish();
}

// ---- Stacked histogram with data and ratio -----------------------------------------------------

std::string RenderStack(const StackPlot& p) {
  std::size_t nb = p.total.size();
  for (const auto& pr : p.processes) nb = std::max(nb, pr.values.size());
  nb = std::max(nb, p.data.size());
  if (nb == 0) {
    Svg svg(p.width, 80, p.title);
    svg.Text(10, 22, p.title, "start", 15, "font-weight=\"bold\"");
    svg.Text(10, 50, "no bins", "start", 13);
    return svg.Finish();
  }
  std::vector<double> edges = p.edges;
  if (edges.size() != nb + 1) {
    edges.resize(nb + 1);
    for (std::size_t i = 0; i <= nb; ++i) edges[i] = static_cast<double>(i);
  }
  // Cumulative stacks (bottom first).
  const std::size_t np = p.processes.size();
  std::vector<std::vector<double>> cum(np, std::vector<double>(nb, 0.0));
  for (std::size_t k = 0; k < np; ++k)
    for (std::size_t b = 0; b < nb; ++b) {
      const double v = b < p.processes[k].values.size() && Finite(p.processes[k].values[b])
                           ? p.processes[k].values[b]
                           : 0.0;
      cum[k][b] = (k ? cum[k - 1][b] : 0.0) + v;
    }
  std::vector<double> total(nb, 0.0);
  for (std::size_t b = 0; b < nb; ++b)
    total[b] = b < p.total.size() && Finite(p.total[b]) ? p.total[b] : (np ? cum[np - 1][b] : 0.0);
  const bool has_err = p.total_error.size() == nb;
  const bool has_data = p.data.size() == nb;

  std::vector<double> ys = total;
  if (has_data) ys.insert(ys.end(), p.data.begin(), p.data.end());
  if (np) ys.insert(ys.end(), cum[0].begin(), cum[0].end());
  const bool log = p.log_y == 1 || (p.log_y == -1 && LogScaleWanted(ys));
  double ymax = 0, ymin_pos = std::numeric_limits<double>::infinity();
  for (std::size_t b = 0; b < nb; ++b) {
    double hi = total[b] + (has_err && Finite(p.total_error[b]) ? p.total_error[b] : 0);
    if (has_data && Finite(p.data[b]))
      hi = std::max(hi, p.data[b] + std::sqrt(std::max(p.data[b], 0.0)));
    if (Finite(hi)) ymax = std::max(ymax, hi);
    for (double v : {total[b], np ? cum[0][b] : total[b]})
      if (Finite(v) && v > 0) ymin_pos = std::min(ymin_pos, v);
  }
  if (!(ymax > 0)) ymax = 1;
  // Room for the legend above the highest bin: its rows take up to ~40% of the frame (seven
  // processes, data and the band in two columns).
  double ylo = 0, yhi = ymax * 1.6;
  if (log) {
    ylo = Finite(ymin_pos) ? ymin_pos * 0.5 : ymax * 1e-3;
    ylo = std::max(ylo, ymax * 1e-7);
    yhi = ymax * std::pow(ymax / ylo, 0.6);
  }
  // Unrolled views (separators) get a row of their own for the legend above the frame.
  const double left = 78, right = 16, top = p.separators.empty() ? 34 : 52;
  const bool ratio = has_data;
  const double main_h = ratio ? p.height * 0.66 : p.height - top - 50;
  const double main_b = top + main_h;
  const double ratio_t = main_b + 8, ratio_b = ratio ? p.height - 50.0 : main_b;
  Scale xs{edges.front(), edges.back(), left, p.width - right, false};
  Scale yv{ylo, yhi, main_b, top, log};
  Svg svg(p.width, p.height, p.title);
  svg.raw() += kHatchDefs;
  svg.Text(left, 22, p.title, "start", 15, "font-weight=\"bold\"");

  // Stacks, top-most first, each filled down to the axis (painter's order).
  for (std::size_t kk = np; kk-- > 0;) {
    std::string d = "M" + P(xs.Map(edges[0])) + " " + P(main_b);
    for (std::size_t b = 0; b < nb; ++b) {
      d += "V" + P(yv.Map(log && cum[kk][b] <= 0 ? ylo : cum[kk][b]));
      d += "H" + P(xs.Map(edges[b + 1]));
    }
    d += "V" + P(main_b) + "Z";
    const std::string colour = p.processes[kk].colour.empty() ? ProcessColour(static_cast<int>(kk))
                                                              : p.processes[kk].colour;
    svg.raw() += "<path d=\"" + d + "\" fill=\"" + Escape(colour) + "\" stroke=\"none\"><title>" +
                 Escape(p.processes[kk].name) + "</title></path>";
  }
  if (np == 0 || !p.total.empty()) {
    // Total outline.
    std::string d =
        "M" + P(xs.Map(edges[0])) + " " + P(yv.Map(log && total[0] <= 0 ? ylo : total[0]));
    for (std::size_t b = 0; b < nb; ++b) {
      d += "V" + P(yv.Map(log && total[b] <= 0 ? ylo : total[b]));
      d += "H" + P(xs.Map(edges[b + 1]));
    }
    svg.raw() += "<path d=\"" + d + "\" fill=\"none\" stroke=\"#000\" stroke-width=\"0.8\"/>";
  }
  if (has_err) {
    std::string d;
    for (std::size_t b = 0; b < nb; ++b) {
      const double e = p.total_error[b];
      if (!Finite(e) || !Finite(total[b])) continue;
      const double y_hi = yv.Map(total[b] + e),
                   y_lo = yv.Map(std::max(total[b] - e, log ? ylo : -1e300));
      d += "M" + P(xs.Map(edges[b])) + " " + P(y_hi) + "H" + P(xs.Map(edges[b + 1])) + "V" +
           P(y_lo) + "H" + P(xs.Map(edges[b])) + "Z";
    }
    svg.raw() += "<path d=\"" + d + "\" fill=\"url(#hatch)\" stroke=\"none\" opacity=\"0.8\"/>";
  }
  if (has_data) {
    std::string bars, dots;
    const double r = nb > 400 ? 1.6 : 3.0;
    for (std::size_t b = 0; b < nb; ++b) {
      const double v = p.data[b];
      if (!Finite(v) || (log && v <= 0)) continue;
      const double xc = xs.Map(0.5 * (edges[b] + edges[b + 1]));
      const double e = std::sqrt(std::max(v, 0.0));
      bars += "M" + P(xc) + " " + P(yv.Map(v + e)) + "V" +
              P(yv.Map(log ? std::max(v - e, ylo) : v - e));
      dots += "M" + P(xc) + " " + P(yv.Map(v)) + "h0";
    }
    svg.raw() += "<path d=\"" + bars + "\" stroke=\"#000\" stroke-width=\"1\" fill=\"none\"/>";
    svg.raw() += "<path d=\"" + dots + "\" stroke=\"#000\" stroke-width=\"" + P(2 * r) +
                 "\" stroke-linecap=\"round\" fill=\"none\"/>";
  }
  for (std::size_t i = 0; i < p.separators.size(); ++i) {
    const double px = xs.Map(p.separators[i]);
    svg.Line(px, top, px, ratio ? ratio_b : main_b, "#999", 0.6);
  }
  if (!p.separator_labels.empty() && p.separators.size() + 1 == p.separator_labels.size()) {
    std::vector<double> bounds = {edges.front()};
    bounds.insert(bounds.end(), p.separators.begin(), p.separators.end());
    bounds.push_back(edges.back());
    for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
      const double w = xs.Map(bounds[i + 1]) - xs.Map(bounds[i]);
      if (w < 10) continue;
      const double xc = 0.5 * (xs.Map(bounds[i]) + xs.Map(bounds[i + 1]));
      svg.Text(
          0, 0, p.separator_labels[i], "start", std::min(10.0, w * 0.9),
          "fill=\"#555\" transform=\"translate(" + P(xc + 3) + "," + P(top + 8) + ") rotate(90)\"");
    }
  }
  DrawFrame(svg, xs, yv, p.xlabel, p.ylabel, !ratio);
  // Legend (top right, two columns when long).
  {
    std::vector<std::pair<std::string, std::string>> items;
    std::vector<std::string> kinds;
    if (has_data) {
      items.emplace_back(p.data_label, "#000");
      kinds.push_back("dot");
    }
    for (std::size_t k = np; k-- > 0;) {
      items.emplace_back(p.processes[k].name, p.processes[k].colour.empty()
                                                  ? std::string(ProcessColour(static_cast<int>(k)))
                                                  : Escape(p.processes[k].colour));
      kinds.push_back("box");
    }
    if (has_err) {
      items.emplace_back("Uncertainty", "#000");
      kinds.push_back("band");
    }
    if (!p.separators.empty()) {
      // Unrolled views: one row above the frame, right-aligned, clear of the bin labels.
      double w = 0;
      for (const auto& it : items) w += TextWidth(it.first, 12) + 40;
      double x = xs.p1 - w;
      for (std::size_t i = 0; i < items.size(); ++i) {
        Legend(svg, x, 42, {items[i]}, {kinds[i]});
        x += TextWidth(items[i].first, 12) + 40;
      }
      items.clear();
    }
    const std::size_t per_col = 6;
    const std::size_t cols = (items.size() + per_col - 1) / per_col;
    for (std::size_t col = 0; col < cols; ++col) {
      std::vector<std::pair<std::string, std::string>> it(
          items.begin() + col * per_col,
          items.begin() + std::min(items.size(), (col + 1) * per_col));
      std::vector<std::string> kd(kinds.begin() + col * per_col,
                                  kinds.begin() + std::min(kinds.size(), (col + 1) * per_col));
      Legend(svg, xs.p1 - 170.0 * static_cast<double>(cols - col), top + 20, it, kd);
    }
  }
  if (ratio) {
    // Ratio panel: data / prediction with the band of the prediction's relative uncertainty.
    double rlo = 0.8, rhi = 1.2;
    for (std::size_t b = 0; b < nb; ++b) {
      if (!(total[b] > 0) || !Finite(p.data[b])) continue;
      const double q = p.data[b] / total[b];
      if (Finite(q)) {
        rlo = std::min(rlo, q);
        rhi = std::max(rhi, q);
      }
    }
    rlo = std::max(rlo, 0.0);
    rhi = std::min(rhi, 3.0);
    NiceRange(&rlo, &rhi, false, 0.1);
    Scale yr{rlo, rhi, ratio_b, ratio_t, false};
    std::string band, bars, dots;
    for (std::size_t b = 0; b < nb; ++b) {
      if (!(total[b] > 0)) continue;
      if (has_err && Finite(p.total_error[b])) {
        const double rel = p.total_error[b] / total[b];
        band += "M" + P(xs.Map(edges[b])) + " " + P(yr.Map(1 + rel)) + "H" +
                P(xs.Map(edges[b + 1])) + "V" + P(yr.Map(1 - rel)) + "H" + P(xs.Map(edges[b])) +
                "Z";
      }
      const double v = p.data[b];
      if (!Finite(v)) continue;
      const double xc = xs.Map(0.5 * (edges[b] + edges[b + 1]));
      const double q = v / total[b], e = std::sqrt(std::max(v, 0.0)) / total[b];
      bars += "M" + P(xc) + " " + P(yr.Map(q + e)) + "V" + P(yr.Map(q - e));
      dots += "M" + P(xc) + " " + P(yr.Map(q)) + "h0";
    }
    if (!band.empty())
      svg.raw() +=
          "<path d=\"" + band + "\" fill=\"url(#hatch)\" stroke=\"none\" opacity=\"0.8\"/>";
    svg.Line(xs.p0, yr.Map(1), xs.p1, yr.Map(1), "#666", 1, "stroke-dasharray=\"4 3\"");
    const double r = nb > 400 ? 1.6 : 3.0;
    svg.raw() += "<path d=\"" + bars + "\" stroke=\"#000\" fill=\"none\"/>";
    svg.raw() += "<path d=\"" + dots + "\" stroke=\"#000\" stroke-width=\"" + P(2 * r) +
                 "\" stroke-linecap=\"round\" fill=\"none\"/>";
    DrawFrame(svg, xs, yr, p.xlabel, "", true, false, 3);
    svg.Text(0, 0, p.data_label + " / pred.", "middle", 13,
             "transform=\"translate(" + P(left - 48) + "," + P(0.5 * (ratio_t + ratio_b)) +
                 ") rotate(-90)\"");
  }
  return svg.Finish();
}

// ---- Heat map ----------------------------------------------------------------------------------

namespace {
std::string Fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return std::string(buf) == "-0.00" ? "0.00" : buf;
}

// Diverging blue - white - red for [-1, 1] (colour-blind safe end points of RdBu).
std::string Diverging(double v) {
  if (!Finite(v)) return "#cccccc";
  v = std::clamp(v, -1.0, 1.0);
  const double a = std::abs(v);
  // end colours: blue #2166ac, red #b2182b.
  const double r0 = v < 0 ? 0x21 : 0xb2, g0 = v < 0 ? 0x66 : 0x18, b0 = v < 0 ? 0xac : 0x2b;
  const int r = static_cast<int>(std::lround(255 + (r0 - 255) * a));
  const int g = static_cast<int>(std::lround(255 + (g0 - 255) * a));
  const int b = static_cast<int>(std::lround(255 + (b0 - 255) * a));
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", r, g, b);
  return buf;
}
}  // namespace

std::string RenderHeatmap(const Heatmap& m) {
  const int n = static_cast<int>(m.names.size());
  std::size_t longest = 6;
  for (const auto& s : m.names) longest = std::max(longest, s.size());
  const std::size_t chars = std::min<std::size_t>(longest, 32);
  const double label_w = TextWidth(std::string(chars, 'x'), 11) + 12;
  const double legend_w = 90;
  const double avail = m.width - label_w - legend_w - 20;
  const double cell = n > 0 ? std::clamp(avail / n, 4.0, 40.0) : 10.0;
  const double x0 = label_w + 10, y0 = 40;
  const double grid = cell * n;
  const int height = static_cast<int>(y0 + grid + label_w + 20);
  const int width = static_cast<int>(x0 + grid + legend_w + 10);
  Svg svg(std::max(width, 300), height, m.title);
  svg.Text(10, 22, m.title, "start", 15, "font-weight=\"bold\"");
  const bool numbers = cell >= 34;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const std::size_t k = static_cast<std::size_t>(i) * n + j;
      const double v = k < m.values.size() ? m.values[k] : kNaN;
      svg.Rect(x0 + cell * j, y0 + cell * i, cell, cell, Diverging(v), "",
               m.names[i] + " / " + m.names[j] + ": " + FormatNumber(v, 3));
      if (numbers && Finite(v))
        svg.Text(x0 + cell * (j + 0.5), y0 + cell * (i + 0.5) + 4, Fixed2(v), "middle", 10,
                 std::abs(v) > 0.6 ? "fill=\"#fff\"" : "");
    }
    const double fs = std::min(11.0, cell * 0.9);
    svg.Text(x0 - 4, y0 + cell * (i + 0.5) + fs * 0.35, Shorten(m.names[i], chars), "end", fs);
    svg.Text(0, 0, Shorten(m.names[i], chars), "end", fs,
             "transform=\"translate(" + P(x0 + cell * (i + 0.5) + fs * 0.35) + "," +
                 P(y0 + grid + 4) + ") rotate(-90)\"");
  }
  svg.Rect(x0, y0, grid, grid, "none", "stroke=\"#000\"");
  // Colour bar.
  const double bx = x0 + grid + 24, bh = std::min(grid, 300.0);
  for (int k = 0; k < 40; ++k) {
    const double v = 1.0 - 2.0 * (k + 0.5) / 40.0;
    svg.Rect(bx, y0 + bh * k / 40.0, 16, bh / 40.0 + 0.3, Diverging(v));
  }
  svg.Rect(bx, y0, 16, bh, "none", "stroke=\"#000\"");
  for (double v : {1.0, 0.5, 0.0, -0.5, -1.0})
    svg.Text(bx + 20, y0 + bh * (1 - v) / 2 + 4, FormatNumber(v, 2), "start", 11);
  return svg.Finish();
}

// ---- Scans -------------------------------------------------------------------------------------

void ScanCrossings(const std::vector<double>& x, const std::vector<double>& y, double q, double* lo,
                   double* hi) {
  *lo = *hi = kNaN;
  const std::size_t n = std::min(x.size(), y.size());
  std::size_t imin = n;
  for (std::size_t i = 0; i < n; ++i)
    if (Finite(y[i]) && Finite(x[i]) && (imin == n || y[i] < y[imin])) imin = i;
  if (imin == n) return;
  for (std::size_t i = imin; i-- > 0;) {
    if (!Finite(y[i]) || !Finite(y[i + 1])) continue;
    if (y[i] >= q && y[i + 1] < q) {
      *lo = x[i] + (q - y[i]) * (x[i + 1] - x[i]) / (y[i + 1] - y[i]);
      break;
    }
  }
  for (std::size_t i = imin; i + 1 < n; ++i) {
    if (!Finite(y[i]) || !Finite(y[i + 1])) continue;
    if (y[i] < q && y[i + 1] >= q) {
      *hi = x[i] + (q - y[i]) * (x[i + 1] - x[i]) / (y[i + 1] - y[i]);
      break;
    }
  }
}

std::string RenderScan(const ScanPlot& p) {
  const double left = 70, right = 20, top = 36, bottom = 50;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ymax = 4.5;
  for (std::size_t i = 0; i < p.x.size() && i < p.two_dnll.size(); ++i)
    if (Finite(p.x[i]) && Finite(p.two_dnll[i])) {
      xlo = std::min(xlo, p.x[i]);
      xhi = std::max(xhi, p.x[i]);
      ymax = std::max(ymax, p.two_dnll[i]);
    }
  NiceRange(&xlo, &xhi, false, 0.02);
  Scale xs{xlo, xhi, left, p.width - right, false};
  Scale yv{0, ymax * 1.08, p.height - bottom, top, false};
  Svg svg(p.width, p.height, p.title);
  svg.Text(left, 22, p.title, "start", 15, "font-weight=\"bold\"");
  const struct {
    double q;
    const char* label;
    const char* colour;
  } levels[] = {{1.0, "68%", kBlue}, {3.841, "95%", kVermillion}};
  for (const auto& l : levels) {
    svg.Line(xs.p0, yv.Map(l.q), xs.p1, yv.Map(l.q), l.colour, 1, "stroke-dasharray=\"5 4\"");
    svg.Text(xs.p1 - 4, yv.Map(l.q) - 4, l.label, "end", 11,
             std::string("fill=\"") + l.colour + "\"");
    double lo, hi;
    ScanCrossings(p.x, p.two_dnll, l.q, &lo, &hi);
    for (double c : {lo, hi})
      if (Finite(c)) {
        svg.Line(xs.Map(c), yv.Map(0), xs.Map(c), yv.Map(l.q), l.colour, 1,
                 "stroke-dasharray=\"2 3\"");
        svg.raw() += "<circle cx=\"" + P(xs.Map(c)) + "\" cy=\"" + P(yv.Map(l.q)) +
                     "\" r=\"3\" fill=\"" + l.colour + "\"><title>" +
                     Escape(std::string(l.label) + " crossing: " + FormatNumber(c, 5)) +
                     "</title></circle>";
      }
  }
  std::string d;
  bool pen = false;
  for (std::size_t i = 0; i < p.x.size() && i < p.two_dnll.size(); ++i) {
    if (!Finite(p.x[i]) || !Finite(p.two_dnll[i])) {
      pen = false;
      continue;
    }
    d += (pen ? "L" : "M") + P(xs.Map(p.x[i])) + " " + P(yv.Map(p.two_dnll[i]));
    pen = true;
  }
  svg.raw() += "<path d=\"" + d + "\" fill=\"none\" stroke=\"#000\" stroke-width=\"2\"/>";
  for (std::size_t i = 0; i < p.x.size() && i < p.two_dnll.size(); ++i)
    if (Finite(p.x[i]) && Finite(p.two_dnll[i]))
      svg.raw() += "<circle cx=\"" + P(xs.Map(p.x[i])) + "\" cy=\"" + P(yv.Map(p.two_dnll[i])) +
                   "\" r=\"2\"><title>" +
                   Escape(FormatNumber(p.x[i], 5) + ": 2ΔNLL = " + FormatNumber(p.two_dnll[i], 4)) +
                   "</title></circle>";
  DrawFrame(svg, xs, yv, p.xlabel, "−2 Δln L");
  return svg.Finish();
}

namespace {
// Marching squares on a grid [nx x ny] (value (i, j) at row-major i * ny + j): line segments of
// the level set as a path.
std::string ContourPath(const std::vector<double>& x, const std::vector<double>& y,
                        const std::vector<double>& z, double level, const Scale& xs,
                        const Scale& ys) {
  const std::size_t nx = x.size(), ny = y.size();
  std::string d;
  auto at = [&](std::size_t i, std::size_t j) { return z[i * ny + j]; };
  for (std::size_t i = 0; i + 1 < nx; ++i)
    for (std::size_t j = 0; j + 1 < ny; ++j) {
      const double v[4] = {at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)};
      const double px[4] = {x[i], x[i + 1], x[i + 1], x[i]};
      const double py[4] = {y[j], y[j], y[j + 1], y[j + 1]};
      bool ok = true;
      for (double w : v) ok = ok && Finite(w);
      if (!ok) continue;
      std::vector<std::pair<double, double>> pts;
      for (int e = 0; e < 4; ++e) {
        const int f = (e + 1) % 4;
        if ((v[e] < level) != (v[f] < level)) {
          const double t = (level - v[e]) / (v[f] - v[e]);
          pts.emplace_back(px[e] + t * (px[f] - px[e]), py[e] + t * (py[f] - py[e]));
        }
      }
      for (std::size_t k = 0; k + 1 < pts.size(); k += 2) {
        d += 'M';
        d += P(xs.Map(pts[k].first)) + " " + P(ys.Map(pts[k].second));
        d += 'L';
        d += P(xs.Map(pts[k + 1].first)) + " " + P(ys.Map(pts[k + 1].second));
      }
    }
  return d;
}
}  // namespace

std::string RenderContour(const ContourPlot& p) {
  const double left = 76, right = 20, top = 36, bottom = 50;
  double xlo = p.x.empty() ? 0 : *std::min_element(p.x.begin(), p.x.end());
  double xhi = p.x.empty() ? 1 : *std::max_element(p.x.begin(), p.x.end());
  double ylo = p.y.empty() ? 0 : *std::min_element(p.y.begin(), p.y.end());
  double yhi = p.y.empty() ? 1 : *std::max_element(p.y.begin(), p.y.end());
  NiceRange(&xlo, &xhi, false, 0.0);
  NiceRange(&ylo, &yhi, false, 0.0);
  Scale xs{xlo, xhi, left, p.width - right, false};
  Scale ys{ylo, yhi, p.height - bottom, top, false};
  Svg svg(p.width, p.height, p.title);
  svg.Text(left, 22, p.title, "start", 15, "font-weight=\"bold\"");
  const bool grid_ok = p.two_dnll.size() == p.x.size() * p.y.size();
  if (grid_ok) {
    svg.raw() += "<path d=\"" + ContourPath(p.x, p.y, p.two_dnll, 2.296, xs, ys) +
                 "\" fill=\"none\" stroke=\"" + kBlue + "\" stroke-width=\"2\"/>";
    svg.raw() += "<path d=\"" + ContourPath(p.x, p.y, p.two_dnll, 5.991, xs, ys) +
                 "\" fill=\"none\" stroke=\"" + kVermillion +
                 "\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>";
  }
  if (Finite(p.best_x) && Finite(p.best_y))
    svg.raw() += "<path d=\"M" + P(xs.Map(p.best_x)) + " " + P(ys.Map(p.best_y) - 7) +
                 "l2 5h5l-4 3 2 6-5-4-5 4 2-6-4-3h5z\" fill=\"#000\"><title>best fit " +
                 Escape(FormatNumber(p.best_x, 4) + ", " + FormatNumber(p.best_y, 4)) +
                 "</title></path>";
  DrawFrame(svg, xs, ys, p.xlabel, p.ylabel);
  std::vector<std::pair<std::string, std::string>> items = {{"68% CL (2ΔNLL = 2.30)", kBlue},
                                                            {"95% CL (2ΔNLL = 5.99)", kVermillion}};
  Legend(svg, xs.p1 - 190, top + 20, items, {"line", "dash"});
  return svg.Finish();
}

// ---- Toy pulls ---------------------------------------------------------------------------------

std::string RenderPullHistogram(const PullHistogram& p) {
  std::vector<double> v;
  for (double x : p.values)
    if (Finite(x)) v.push_back(x);
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  if (!v.empty()) mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  const double width = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : kNaN;
  double lo = -4, hi = 4;
  for (double x : v) {
    lo = std::min(lo, std::floor(x));
    hi = std::max(hi, std::ceil(x));
  }
  lo = std::max(lo, -10.0);
  hi = std::min(hi, 10.0);
  const int nb = std::max(5, p.bins);
  const double bw = (hi - lo) / nb;
  std::vector<double> counts(static_cast<std::size_t>(nb), 0.0);
  for (double x : v) {
    const int b = static_cast<int>(std::floor((x - lo) / bw));
    if (b >= 0 && b < nb) counts[static_cast<std::size_t>(b)] += 1;
  }
  const double n = static_cast<double>(v.size());
  auto gauss = [&](double x, double m, double s) {
    return n * bw * std::exp(-0.5 * (x - m) * (x - m) / (s * s)) /
           (s * std::sqrt(2 * std::numbers::pi));
  };
  double ymax = 1;
  for (double c : counts) ymax = std::max(ymax, c + std::sqrt(c));
  if (Finite(width) && width > 0) ymax = std::max(ymax, gauss(mean, mean, width));
  const double left = 60, right = 14, top = 36, bottom = 48;
  Scale xs{lo, hi, left, p.width - right, false};
  Scale ys{0, ymax * 1.25, p.height - bottom, top, false};
  Svg svg(p.width, p.height, p.title);
  svg.Text(left, 22, p.title, "start", 14, "font-weight=\"bold\"");
  std::string d = "M" + P(xs.Map(lo)) + " " + P(ys.Map(0));
  for (int b = 0; b < nb; ++b) d += "V" + P(ys.Map(counts[b])) + "H" + P(xs.Map(lo + bw * (b + 1)));
  d += "V" + P(ys.Map(0)) + "Z";
  svg.raw() += "<path d=\"" + d + "\" fill=\"" + kSkyBlue + "\" stroke=\"#1f4e79\"/>";
  auto curve = [&](double m, double s) {
    std::string c;
    for (int k = 0; k <= 120; ++k) {
      const double x = lo + (hi - lo) * k / 120.0;
      c += k ? 'L' : 'M';
      c += P(xs.Map(x)) + " " + P(ys.Map(gauss(x, m, s)));
    }
    return c;
  };
  if (n > 0) {
    svg.raw() += "<path d=\"" + curve(0, 1) + "\" fill=\"none\" stroke=\"" + kGrey +
                 "\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>";
    if (Finite(width) && width > 0)
      svg.raw() += "<path d=\"" + curve(mean, width) + "\" fill=\"none\" stroke=\"" + kVermillion +
                   "\" stroke-width=\"2\"/>";
  }
  DrawFrame(svg, xs, ys, p.xlabel, "toys / bin");
  Legend(
      svg, xs.p1 - 200, top + 18,
      {{"toys (" + std::to_string(v.size()) + ")", kSkyBlue},
       {"Gaussian μ = " + FormatNumber(mean, 3) + ", σ = " + FormatNumber(width, 3), kVermillion},
       {"unit Gaussian", kGrey}},
      {"box", "line", "dash"});
  return svg.Finish();
}

}  // namespace lepus::report
