// Reading back lepus's HDF5 results and toys files (lepus/io/results_reader.h; layouts in
// docs/format.md section 5).
#include "lepus/io/results_reader.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lepus/io/internal/hdf5_util.h"

namespace lepus::io {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The checks and conversions shared by both readers, naming the file and dataset on failure.
class Reader {
 public:
  explicit Reader(const std::string& path) : f_(path) {}
  const h5::InputFile& file() const { return f_; }
  [[noreturn]] void Fail(const std::string& where, const std::string& what) const {
    f_.Fail(where, what);
  }
  bool Has(const std::string& name) const { return f_.HasDataset(name); }
  bool HasGroup(const std::string& name) const { return f_.HasGroup(name); }

  std::vector<double> Vector(const std::string& name, std::int64_t expected = -1) const {
    if (!f_.HasDataset(name)) Fail(name, "is missing");
    auto a = f_.ReadDouble(name);
    if (a.shape.size() != 1)
      Fail(name, "has shape " + h5::ShapeString(a.shape) + ", but must be 1-D");
    if (expected >= 0 && a.shape[0] != expected)
      Fail(name, "has " + std::to_string(a.shape[0]) + " elements, but must have " +
                     std::to_string(expected));
    return std::move(a.values);
  }
  std::vector<int> Ints(const std::string& name, std::int64_t expected = -1) const {
    if (!f_.HasDataset(name)) Fail(name, "is missing");
    auto a = f_.ReadInt(name);
    if (expected >= 0 && static_cast<std::int64_t>(a.values.size()) != expected)
      Fail(name, "has " + std::to_string(a.values.size()) + " elements, but must have " +
                     std::to_string(expected));
    std::vector<int> out;
    out.reserve(a.values.size());
    for (auto v : a.values) out.push_back(static_cast<int>(v));
    return out;
  }
  std::vector<std::string> Strings(const std::string& name, std::int64_t expected = -1) const {
    if (!f_.HasDataset(name)) Fail(name, "is missing");
    auto s = f_.ReadStrings(name);
    if (expected >= 0 && static_cast<std::int64_t>(s.size()) != expected)
      Fail(name, "has " + std::to_string(s.size()) + " elements, but must have " +
                     std::to_string(expected));
    return s;
  }
  // rows / cols < 0: any.
  ResultsMatrix Matrix(const std::string& name, std::int64_t rows, std::int64_t cols) const {
    if (!f_.HasDataset(name)) Fail(name, "is missing");
    auto a = f_.ReadDouble(name);
    if (a.shape.size() != 2 || (rows >= 0 && a.shape[0] != rows) ||
        (cols >= 0 && a.shape[1] != cols))
      Fail(name, "has shape " + h5::ShapeString(a.shape) + ", but must be [" +
                     (rows >= 0 ? std::to_string(rows) : std::string("n")) + ", " +
                     (cols >= 0 ? std::to_string(cols) : std::string("m")) + "]");
    ResultsMatrix m;
    m.rows = a.shape[0];
    m.cols = a.shape[1];
    m.values = std::move(a.values);
    return m;
  }
  std::string StringAttr(const std::string& object, const std::string& attr) const {
    return f_.HasAttribute(object, attr) ? f_.ReadStringAttribute(object, attr) : std::string();
  }
  double DoubleAttr(const std::string& object, const std::string& attr) const {
    if (!f_.HasAttribute(object, attr)) return kNaN;
    const auto v = f_.ReadDoubleAttribute(object, attr);
    return v.empty() ? kNaN : v[0];
  }
  std::int64_t IntAttr(const std::string& object, const std::string& attr,
                       std::int64_t fallback = 0) const {
    if (!f_.HasAttribute(object, attr)) return fallback;
    const auto v = f_.ReadIntAttribute(object, attr);
    return v.empty() ? fallback : v[0];
  }

 private:
  h5::InputFile f_;
};

// The root attribute every lepus results and toys file has; `kind` tells them apart.
void CheckKind(const Reader& r, bool want_toys) {
  if (!r.file().HasAttribute("/", "lepus_results_version"))
    r.Fail("attribute lepus_results_version",
           "is missing: not a lepus results file (written by `lepus fit -o`, `lepus scan -o`, "
           "`lepus demo` or `lepus toys -o`)");
  const bool toys = r.StringAttr("/", "kind") == "toys";
  if (toys && !want_toys)
    r.Fail("attribute kind", "is 'toys': a toys file, not fit results (give it with --toys)");
  if (!toys && want_toys)
    r.Fail("attribute kind", "is missing: fit results, not a toys file of `lepus toys`");
}

ResultsImpacts ReadImpacts(const Reader& r, std::int64_t npar) {
  ResultsImpacts im;
  im.targets = r.Strings("impacts/targets");
  const auto nt = static_cast<std::int64_t>(im.targets.size());
  im.units = r.Strings("impacts/units", nt);
  im.target_index = r.Ints("impacts/target_index", nt);
  for (std::size_t k = 0; k < im.target_index.size(); ++k)
    if (im.target_index[k] < -1 || im.target_index[k] >= npar)
      r.Fail("impacts/target_index[" + std::to_string(k) + "]",
             "is " + std::to_string(im.target_index[k]) +
                 ", but must be -1 or a parameter index < " + std::to_string(npar));
  im.scales = r.Vector("impacts/scales", nt);
  im.total = r.Vector("impacts/total", nt);
  im.nominal = r.Matrix("impacts/nominal", nt, npar);
  im.group_names = r.Strings("impacts/group_names");
  const auto ng = static_cast<std::int64_t>(im.group_names.size());
  im.grouped_nominal = r.Matrix("impacts/grouped_nominal", nt, ng);
  if (r.Has("impacts/binByBinStat_fullcov"))
    im.bbstat_fullcov = r.Vector("impacts/binByBinStat_fullcov", nt);
  im.has_global = r.IntAttr("impacts", "has_global") != 0;
  if (im.has_global) {
    im.global_nuisance = r.Matrix("impacts/global_nuisance", nt, npar);
    im.grouped_global = r.Matrix("impacts/grouped_global", nt, ng);
    im.global_closure = r.Vector("impacts/global_closure", nt);
  }
  return im;
}

ResultsYields ReadYields(const Reader& r, const std::string& root) {
  ResultsYields y;
  y.postfit = r.IntAttr(root, "postfit") != 0;
  y.processes = r.Strings(root + "/processes");
  const auto np = static_cast<std::int64_t>(y.processes.size());
  if (r.HasGroup(root + "/channels")) {
    // Channels in bin order (first_bin), whatever HDF5's name order.
    for (const std::string& member : r.file().ListMembers(root + "/channels")) {
      const std::string g = root + "/channels/" + member;
      ResultsChannel c;
      c.name = r.StringAttr(g, "name");
      if (c.name.empty()) c.name = member;
      c.masked = r.IntAttr(g, "masked") != 0;
      c.first_bin = r.IntAttr(g, "first_bin");
      c.total = r.Vector(g + "/total");
      c.nbins = static_cast<std::int64_t>(c.total.size());
      c.total_error = r.Vector(g + "/total_error", c.nbins);
      const auto axes = r.Has(g + "/axes") ? r.Strings(g + "/axes") : std::vector<std::string>{};
      const auto shape = r.Has(g + "/shape")
                             ? r.Ints(g + "/shape", static_cast<std::int64_t>(axes.size()))
                             : std::vector<int>(axes.size(), -1);
      std::int64_t product = 1;
      bool all_edges = !axes.empty();
      for (std::size_t k = 0; k < axes.size(); ++k) {
        ResultsAxis a;
        a.name = axes[k];
        a.bins = shape[k];
        const std::string e = g + "/axis_edges_" + std::to_string(k);
        if (r.Has(e) && a.bins > 0) a.edges = r.Vector(e, a.bins + 1);
        const std::string l = g + "/axis_labels_" + std::to_string(k);
        if (r.Has(l) && a.bins > 0) a.labels = r.Strings(l, a.bins);
        if (a.bins > 0)
          product *= a.bins;
        else
          all_edges = false;
        c.axes.push_back(std::move(a));
      }
      if (all_edges && product != c.nbins)
        r.Fail(g + "/shape", "has " + std::to_string(product) +
                                 " bins in all, but the channel has " + std::to_string(c.nbins));
      if (r.Has(g + "/process")) {
        c.process = r.Matrix(g + "/process", c.nbins, np);
        c.process_error = r.Matrix(g + "/process_error", c.nbins, np);
      }
      y.channels.push_back(std::move(c));
    }
    std::stable_sort(
        y.channels.begin(), y.channels.end(),
        [](const ResultsChannel& a, const ResultsChannel& b) { return a.first_bin < b.first_bin; });
  }
  if (r.HasGroup(root + "/projections")) {
    for (const std::string& member : r.file().ListMembers(root + "/projections")) {
      const std::string g = root + "/projections/" + member;
      ResultsProjection p;
      p.channel = r.StringAttr(g, "channel");
      p.axes = r.Strings(g + "/axes");
      p.shape = r.Ints(g + "/shape", static_cast<std::int64_t>(p.axes.size()));
      std::int64_t n = 1;
      for (std::size_t k = 0; k < p.shape.size(); ++k) {
        if (p.shape[k] <= 0)
          r.Fail(g + "/shape[" + std::to_string(k) + "]",
                 "is " + std::to_string(p.shape[k]) + ", but must be > 0");
        n *= p.shape[k];
      }
      p.values = r.Vector(g + "/values", n);
      p.errors = r.Vector(g + "/errors", n);
      if (r.Has(g + "/process")) p.process = r.Matrix(g + "/process", n, np);
      y.projections.push_back(std::move(p));
    }
  }
  return y;
}

}  // namespace

ResultsFile ReadResultsFile(const std::string& path, const ResultsReadOptions& options) {
  Reader r(path);
  CheckKind(r, false);
  ResultsFile out;
  out.path = path;
  out.version = r.IntAttr("/", "lepus_results_version");
  out.lepus_version = r.StringAttr("/", "lepus_version");
  out.status = r.StringAttr("/", "status");
  out.message = r.StringAttr("/", "message");
  out.covariance_status = r.StringAttr("/", "covariance_status");
  out.covariance_message = r.StringAttr("/", "covariance_message");
  out.input = r.StringAttr("/", "input");
  out.data = r.StringAttr("/", "data");
  out.likelihood = r.StringAttr("/", "likelihood");
  out.summary_json = r.StringAttr("/", "summary_json");
  out.nll = r.DoubleAttr("/", "nll");
  out.edm = r.DoubleAttr("/", "edm");
  out.gof_chi2 = r.DoubleAttr("/", "gof_chi2");
  out.gof_p = r.DoubleAttr("/", "gof_p");
  out.gof_ndf = r.IntAttr("/", "gof_ndf");
  out.iterations = r.IntAttr("/", "iterations");

  out.names = r.Strings("parameters/names");
  const auto n = static_cast<std::int64_t>(out.names.size());
  out.kinds = r.Strings("parameters/kinds", n);
  out.units = r.Has("parameters/units") ? r.Strings("parameters/units", n)
                                        : std::vector<std::string>(out.names.size());
  out.values = r.Vector("parameters/values", n);
  out.errors = r.Vector("parameters/errors", n);
  out.prefit = r.Vector("parameters/prefit", n);
  out.prefit_errors = r.Vector("parameters/prefit_errors", n);
  out.scales = r.Vector("parameters/scales", n);
  out.constrained = r.Ints("parameters/constrained", n);
  out.frozen = r.Ints("parameters/frozen", n);
  if (options.correlation && r.Has("correlation")) out.correlation = r.Matrix("correlation", n, n);
  if (r.Has("data")) out.data_fitted = r.Vector("data");

  if (r.HasGroup("impacts")) out.impacts = ReadImpacts(r, n);
  if (r.HasGroup("scans")) {
    for (const std::string& member : r.file().ListMembers("scans")) {
      const std::string g = "scans/" + member;
      if (r.IntAttr(g, "dimension", 1) == 2) {
        ResultsScan2D s;
        s.name_x = r.StringAttr(g, "name_x");
        s.name_y = r.StringAttr(g, "name_y");
        s.best_x = r.DoubleAttr(g, "best_x");
        s.best_y = r.DoubleAttr(g, "best_y");
        s.values_x = r.Vector(g + "/values_x");
        s.values_y = r.Vector(g + "/values_y");
        s.dnll = r.Matrix(g + "/dnll", static_cast<std::int64_t>(s.values_x.size()),
                          static_cast<std::int64_t>(s.values_y.size()));
        out.scans_2d.push_back(std::move(s));
      } else {
        ResultsScan1D s;
        s.name = r.StringAttr(g, "name");
        if (s.name.empty()) s.name = member;
        s.best_value = r.DoubleAttr(g, "best_value");
        s.hessian_error = r.DoubleAttr(g, "hessian_error");
        s.values = r.Vector(g + "/values");
        s.dnll = r.Vector(g + "/dnll", static_cast<std::int64_t>(s.values.size()));
        if (r.Has(g + "/status"))
          s.status = r.Strings(g + "/status", static_cast<std::int64_t>(s.values.size()));
        out.scans.push_back(std::move(s));
      }
    }
  }
  if (r.HasGroup("intervals")) {
    const auto names = r.Strings("intervals/names");
    const auto k = static_cast<std::int64_t>(names.size());
    const auto idx = r.Ints("intervals/param_index", k);
    const auto cl = r.Vector("intervals/cl", k), q = r.Vector("intervals/q", k),
               value = r.Vector("intervals/value", k),
               herr = r.Vector("intervals/hessian_error", k), lo = r.Vector("intervals/lo", k),
               hi = r.Vector("intervals/hi", k), elo = r.Vector("intervals/err_lo", k),
               ehi = r.Vector("intervals/err_hi", k);
    const auto lof = r.Ints("intervals/lo_found", k), hif = r.Ints("intervals/hi_found", k),
               fits = r.Ints("intervals/fits", k), failed = r.Ints("intervals/failed_fits", k);
    for (std::size_t i = 0; i < names.size(); ++i)
      out.intervals.push_back({names[i], idx[i], cl[i], q[i], value[i], herr[i], lo[i], hi[i],
                               elo[i], ehi[i], lof[i] != 0, hif[i] != 0, fits[i], failed[i]});
  }
  if (r.HasGroup("gof_channels")) {
    const auto names = r.Strings("gof_channels/names");
    const auto k = static_cast<std::int64_t>(names.size());
    const auto chi2 = r.Vector("gof_channels/chi2", k), p = r.Vector("gof_channels/p", k);
    const auto ndf = r.Ints("gof_channels/ndf", k);
    for (std::size_t i = 0; i < names.size(); ++i)
      out.channel_gof.push_back({names[i], chi2[i], p[i], ndf[i]});
  }
  if (r.HasGroup("prefit")) out.prefit_yields = ReadYields(r, "prefit");
  if (r.HasGroup("postfit")) out.postfit_yields = ReadYields(r, "postfit");
  return out;
}

ToysFile ReadToysFile(const std::string& path) {
  Reader r(path);
  CheckKind(r, true);
  ToysFile t;
  t.path = path;
  t.mode = r.StringAttr("/", "mode");
  t.input = r.StringAttr("/", "input");
  t.data = r.StringAttr("/", "data");
  t.ntoys = r.IntAttr("/", "ntoys");
  t.converged = r.IntAttr("/", "converged");
  t.gof_ndf = r.IntAttr("/", "gof_ndf");
  t.pull_names = r.Strings("pulls/names");
  const auto np = static_cast<std::int64_t>(t.pull_names.size());
  t.pull_truth = r.Vector("pulls/truth", np);
  t.pull_mean = r.Vector("pulls/mean", np);
  t.pull_width = r.Vector("pulls/width", np);
  t.pull_toys = r.Ints("pulls/toys", np);
  t.pulls = r.Matrix("pulls/values", -1, np);
  if (r.Has("toys/gof_chi2")) {
    const auto chi2 = r.Vector("toys/gof_chi2");
    const auto status = r.Has("toys/status")
                            ? r.Ints("toys/status", static_cast<std::int64_t>(chi2.size()))
                            : std::vector<int>(chi2.size(), 0);
    for (std::size_t i = 0; i < chi2.size(); ++i)
      if (status[i] == 0) t.gof_chi2.push_back(chi2[i]);
  }
  return t;
}

}  // namespace lepus::io
