// The page builder (report/src/report.cc) on in-memory results, and the results reader's refusal
// of files that are not lepus results (io/src/results_reader.cc).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lepus/io/errors.h"
#include "lepus/io/results_reader.h"
#include "lepus/report/report.h"

using namespace lepus;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

int Count(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// A fit of one POI "sig", one NOI "mass" (scale 100 MeV) and `nuis` nuisances, with impacts,
// yields of one 2D channel (x: 3 bins, charge: 2) and a correlation matrix.
io::ResultsFile Sample(int nuis) {
  io::ResultsFile r;
  r.path = "results.h5";
  r.status = "converged";
  r.covariance_status = "accurate";
  r.input = "input.h5";
  r.data = "observed";
  r.nll = 12.5;
  r.edm = 1e-9;
  r.gof_chi2 = 5;
  r.gof_ndf = 4;
  r.gof_p = 0.3;
  r.summary_json = R"({"timings": {"total": 0.5}, "evaluations": 7})";
  auto add = [&](const std::string& name, const std::string& kind, double v, double e, bool c,
                 double scale, const std::string& unit) {
    r.names.push_back(name);
    r.kinds.push_back(kind);
    r.units.push_back(unit);
    r.values.push_back(v);
    r.errors.push_back(e);
    r.prefit.push_back(kind == "poi" ? 1 : 0);
    r.prefit_errors.push_back(c ? 1 : kNaN);
    r.scales.push_back(scale);
    r.constrained.push_back(c ? 1 : 0);
    r.frozen.push_back(0);
  };
  add("sig", "poi", 1.02, 0.05, false, 0, "");
  add("mass", "noi", -0.1, 0.08, false, 100, "MeV");
  for (int i = 0; i < nuis; ++i)
    add("n<" + std::to_string(i) + ">", "nuisance", 0.01 * i, 0.9, true, 0, "");
  const int n = r.num_params();
  r.correlation.rows = r.correlation.cols = n;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) r.correlation.values.push_back(i == j ? 1 : 0.01 * ((i + j) % 7));
  io::ResultsImpacts im;
  im.targets = {"sig", "mass"};
  im.units = {"", "MeV"};
  im.target_index = {0, 1};
  im.scales = {1, 100};
  im.total = {0.05, 8};
  im.nominal.rows = 2;
  im.nominal.cols = n;
  for (int t = 0; t < 2; ++t)
    for (int j = 0; j < n; ++j)
      im.nominal.values.push_back(j == t ? 0 : 0.01 * (j + 1) * (t ? 10 : 1));
  im.group_names = {"all", "stat", "grp"};
  im.grouped_nominal = {2, 3, {0.04, 0.03, 0.01, 8, 5, 1}};  // "all" holds mass
  im.has_global = true;
  im.global_nuisance = im.nominal;
  im.grouped_global = im.grouped_nominal;
  im.global_closure = {0.01, 0.02};
  r.impacts = im;
  r.data_fitted = {10, 20, 30, 11, 21, 31};
  io::ResultsYields y;
  y.postfit = true;
  y.processes = {"S", "B"};
  io::ResultsChannel ch;
  ch.name = "ch";
  ch.nbins = 6;
  ch.axes = {{"x", 3, {0, 1, 2, 3}, {}}, {"charge", 2, {-2, 0, 2}, {}}};
  ch.total = {10, 20, 30, 11, 21, 31};
  ch.total_error = {1, 1, 1, 1, 1, 1};
  ch.process = {6, 2, {8, 2, 16, 4, 24, 6, 9, 2, 17, 4, 25, 6}};
  ch.process_error = ch.process;
  y.channels.push_back(ch);
  io::ResultsProjection p;
  p.channel = "ch";
  p.axes = {"x"};
  p.shape = {3};
  p.values = {21, 41, 61};
  p.errors = {2, 2, 2};
  y.projections.push_back(p);
  r.postfit_yields = y;
  y.postfit = false;
  r.prefit_yields = y;
  r.intervals.push_back(
      {"mass", 1, 0.6827, 1, -0.1, 0.08, -0.18, -0.02, -0.08, 0.08, true, false, 10, 0});
  return r;
}

}  // namespace

TEST_CASE("report: every section of a full results file, top N rows, escaped names") {
  report::ReportSources src;
  src.results = Sample(50);
  report::ReportOptions opt;
  opt.top = 12;
  const report::Report rep = report::BuildReport(src, opt);
  for (const char* id : {"summary", "pois", "impacts", "grouped", "distributions", "correlations"})
    CHECK_MESSAGE(rep.html.find(std::string("<section id=\"") + id + "\"") != std::string::npos,
                  id);
  CHECK(rep.html.find("<section id=\"scans\"") == std::string::npos);
  CHECK(rep.html.rfind("<!DOCTYPE html>", 0) == 0);
  // Nothing fetched: no external URL in src/href attributes.
  CHECK(rep.html.find("src=\"http") == std::string::npos);
  CHECK(rep.html.find("href=\"http") == std::string::npos);
  CHECK(rep.html.find("<link") == std::string::npos);
  // Physical units of the NOI; the interval whose upper end was not found is marked.
  CHECK(rep.html.find("-10.0 ± 8.0 MeV") != std::string::npos);
  CHECK(rep.html.find("?]") != std::string::npos);
  // The impacts chart of each target shows the top 12: 12 blue +1 sigma bars per panel (x2
  // panels) plus the legend swatch.
  std::string chart;
  for (const auto& [file, svg] : rep.svgs)
    if (file == "impacts_mass.svg") chart = svg;
  REQUIRE(!chart.empty());
  CHECK(Count(chart, "fill=\"#0072B2\"") == 12 * 2 + 1);
  // Names are escaped everywhere (the embedded JSON escapes '<' as \u003c).
  CHECK(rep.html.find("n<1>") == std::string::npos);
  CHECK(rep.html.find("n&lt;49&gt;") != std::string::npos);
  // The group holding the target (nominal impact = total) is left out of its table.
  CHECK(rep.html.find("1 group(s) containing sig itself left out") == std::string::npos);
  CHECK(rep.html.find("1 group(s) containing mass itself left out") != std::string::npos);
  // Distributions: unrolled per charge and projections (the x projection with its band; the
  // per-charge ones computed, with a note that their band needs --project).
  bool unrolled = false, proj = false, proj_q = false;
  for (const auto& [file, svg] : rep.svgs) {
    unrolled = unrolled || file == "postfit_ch_unrolled_q1.svg";
    proj = proj || file == "postfit_ch_x.svg";
    proj_q = proj_q || file == "prefit_ch_x_q0.svg";
  }
  CHECK(unrolled);
  CHECK(proj);
  CHECK(proj_q);
  CHECK(rep.html.find("Projections without a band") != std::string::npos);
  // Correlation map: the 2 targets and the 10 most correlated others (top 12).
  for (const auto& [file, svg] : rep.svgs)
    if (file == "correlation.svg") CHECK(Count(svg, "<title>sig / ") == 12);
  // Each SVG file is in the page.
  for (const auto& [file, svg] : rep.svgs) CHECK(rep.html.find(svg) != std::string::npos);
}

TEST_CASE("report: a bare fit (no impacts, yields, covariance) says what is missing") {
  report::ReportSources src;
  src.results = Sample(3);
  src.results.impacts.reset();
  src.results.prefit_yields.reset();
  src.results.postfit_yields.reset();
  src.results.correlation = {};
  src.results.summary_json = "{not json";
  const report::Report rep = report::BuildReport(src);
  CHECK(rep.html.find("<section id=\"summary\"") != std::string::npos);
  CHECK(rep.html.find("<section id=\"distributions\"") == std::string::npos);
  CHECK(rep.html.find("<section id=\"notes\"") != std::string::npos);
  CHECK(rep.notes.size() == 4);  // impacts, yields, correlation, summary_json
  // The pulls-only chart ranks the nuisances by |pull|.
  REQUIRE(!rep.svgs.empty());
  CHECK(rep.svgs[0].first == "pulls.svg");
  CHECK_THROWS_AS(report::BuildReport(src, {0, "", ""}), std::invalid_argument);
}

TEST_CASE("results reader: foreign and missing files are input errors naming the file") {
  const std::string input = std::string(LEPUS_CONFORMANCE_DIR) + "/sym_poi_dense.hdf5";
  try {
    io::ReadResultsFile(input);
    FAIL("no error");
  } catch (const io::InputError& e) {
    const std::string m = e.what();
    CHECK(m.find("sym_poi_dense.hdf5") != std::string::npos);
    CHECK(m.find("not a lepus results file") != std::string::npos);
  }
  CHECK_THROWS_AS(io::ReadToysFile(input), io::InputError);
  CHECK_THROWS_AS(io::ReadResultsFile("/nonexistent/results.h5"), io::InputError);
  CHECK_THROWS_AS(io::ReadResultsFile(std::string(LEPUS_CONFORMANCE_DIR) + "/README.md"),
                  io::InputError);
}
