// lepus._lepus: the Python bindings (pybind11). One translation unit, no pybind11/eigen.h (the
// numpy arrays are built by hand: views of results' Eigen storage owned by the Python result
// object, or arrays that take over an Eigen buffer), so the module builds quickly.
//
// Threads: every long computation (fit, scan, toys) runs on a separate std::thread while the
// calling Python thread waits without the GIL; it wakes every 50 ms to run Python's signal
// handlers and the optional progress callback, so Ctrl-C (KeyboardInterrupt) stops the
// computation through engine::FitOptions::cancel and Python is never called from a worker.
// Evaluations (nll, gradient, Hessian) run in the calling thread with the GIL released.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <tbb/task_arena.h>

#include "arrays.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/hypotest.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"
#include "lepus/engine/scan.h"
#include "lepus/engine/toys.h"
#include "lepus/engine/yields.h"
#include "lepus/io/errors.h"
#include "lepus/io/hypotest_json.h"
#include "lepus/io/reader.h"
#include "lepus/io/results.h"
#include "lepus/io/writer.h"

#ifndef LEPUS_VERSION_STRING
#define LEPUS_VERSION_STRING "unknown"
#endif

namespace py = pybind11;
using namespace py::literals;

namespace lepus::python {
namespace {

// ---- numpy arrays over Eigen storage ------------------------------------------------------------

void ReadOnly(py::array& a) {
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
}

// A read-only view of an Eigen vector / column-major matrix kept alive by `owner`.
py::array View(const Eigen::VectorXd& v, py::handle owner) {
  py::array a(py::dtype::of<double>(), {v.size()}, {static_cast<py::ssize_t>(sizeof(double))},
              v.data(), owner);
  ReadOnly(a);
  return a;
}
py::array View(const Eigen::MatrixXd& m, py::handle owner) {
  py::array a(py::dtype::of<double>(), {m.rows(), m.cols()},
              {static_cast<py::ssize_t>(sizeof(double)),
               static_cast<py::ssize_t>(sizeof(double) * m.rows())},
              m.data(), owner);
  ReadOnly(a);
  return a;
}

// A writable array that takes over the Eigen object's buffer (no copy).
template <class T>
py::array Own(T m) {
  auto* heap = new T(std::move(m));
  py::capsule base(heap, [](void* p) { delete static_cast<T*>(p); });
  py::array a = View(*heap, base);
  py::detail::array_proxy(a.ptr())->flags |= py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

py::array OwnVec(const std::vector<double>& v) {
  return Own(Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(v.data(), v.size())));
}

using CArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

CArray AsArray(py::handle obj, const std::string& name) {
  CArray a = CArray::ensure(obj);
  if (!a) throw std::invalid_argument(name + " is not an array of numbers");
  return a;
}

ArrayArg Arg(const CArray& a) {
  ArrayArg out;
  out.data = a.data();
  for (py::ssize_t d = 0; d < a.ndim(); ++d) out.shape.push_back(a.shape(d));
  return out;
}

// A parameter vector [n] from any array-like (copied: n is the number of parameters).
Eigen::VectorXd ParamVector(py::handle obj, Eigen::Index n) {
  CArray a = AsArray(obj, "x");
  if (a.ndim() != 1 || a.shape(0) != n)
    throw std::invalid_argument("x has shape " + ShapeString(Arg(a).shape) +
                                ", but must be [nparams] = [" + std::to_string(n) + "]");
  return Eigen::Map<const Eigen::VectorXd>(a.data(), n);
}

std::string FsPath(py::handle path) {
  return py::str(py::module_::import("os").attr("fspath")(path));
}

py::object JsonLoads(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

// ---- long computations off the Python thread -----------------------------------------------------

// Runs work() on its own thread; the calling thread waits without the GIL and, every 50 ms, runs
// Python's signal handlers and `poll` (with the GIL, in this thread). A Python exception there
// (KeyboardInterrupt from Ctrl-C, or one raised by a progress callback) sets *cancel, waits for
// the work to stop and is re-raised.
template <class R>
R RunInterruptible(std::function<R()> work, std::atomic<bool>* cancel,
                   const std::function<void()>& poll = {}) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::optional<R> result;
    std::exception_ptr error;
  };
  auto st = std::make_shared<State>();
  std::thread worker([st, work = std::move(work)] {
    try {
      st->result.emplace(work());
    } catch (...) {
      st->error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->done = true;
    }
    st->cv.notify_all();
  });
  std::optional<py::error_already_set> py_error;
  for (;;) {
    bool done = false;
    {
      py::gil_scoped_release release;
      std::unique_lock<std::mutex> lock(st->mu);
      done = st->cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return st->done; });
    }
    if (done) break;
    if (py_error) continue;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (poll) poll();
    } catch (py::error_already_set& e) {
      // A new exception object each iteration; the loop skips this block once py_error is set.
      py_error.emplace(std::move(e));  // NOLINT(bugprone-use-after-move)
      cancel->store(true);
    }
  }
  worker.join();
  if (py_error) throw std::move(*py_error);
  if (st->error) std::rethrow_exception(st->error);
  if (poll) poll();
  return std::move(*st->result);
}

// Progress of an engine loop (its callbacks are serialised) reported to a Python callable from
// the calling thread only.
struct Progress {
  std::atomic<int> done{0}, total{0};
  int reported = -1;
  py::object callback;
  std::function<void(int, int)> EngineCallback() {
    return [this](int d, int t) {
      total.store(t);
      done.store(d);
    };
  }
  std::function<void()> Poll() {
    if (callback.is_none()) return {};
    return [this] {
      const int d = done.load();
      if (d == reported) return;
      reported = d;
      callback(d, total.load());
    };
  }
};

// ---- the Python-side objects --------------------------------------------------------------------

struct LikelihoodArgs {
  bool bbstat = true;
  std::string data_term = "poisson";
  std::string bin_by_bin_stat_type = "automatic";
  std::string bin_by_bin_stat_mode = "lite";
  bool chisq_data_var = false;
  bool poi_positive = false;
  int threads = 0;
  bool asimov = false;
  std::string pseudodata;
  py::object data = py::none();
  std::vector<std::pair<std::string, double>>
      set;  // Asimov point (as in `lepus fit --asimov --set`)
};

struct PyLikelihood {
  std::shared_ptr<engine::Likelihood> lik;
  io::RunInfo info;
};

struct PyModel {
  std::shared_ptr<const engine::Model> model;
  std::string path;  // "" for a model built from arrays
  std::vector<std::string> warnings;
  std::shared_ptr<PyLikelihood> default_lik;

  const engine::Model& m() const { return *model; }
  PyLikelihood& Default();
};

struct PyFitResult {
  std::shared_ptr<PyLikelihood> lik;
  engine::FitResult r;
  engine::FitOptions options;  // without the cancellation hook
  std::optional<Eigen::MatrixXd> correlation;
};

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

std::vector<std::pair<std::string, double>> SetItems(const py::dict& set) {
  std::vector<std::pair<std::string, double>> out;
  for (auto item : set) {
    if (!py::isinstance<py::str>(item.first))
      throw std::invalid_argument("set: the keys must be parameter names (str)");
    const std::string name = item.first.cast<std::string>();
    if (!py::isinstance<py::float_>(item.second) && !py::isinstance<py::int_>(item.second) &&
        !py::hasattr(item.second, "__float__"))
      throw std::invalid_argument("set: the value of '" + name + "' is not a number");
    out.emplace_back(name,
                     py::float_(py::reinterpret_borrow<py::object>(item.second)).cast<double>());
  }
  return out;
}

std::shared_ptr<PyLikelihood> MakeLikelihood(const PyModel& pm, const LikelihoodArgs& a) {
  engine::LikelihoodOptions lopt;
  lopt.bin_by_bin_stat = a.bbstat;
  lopt.poi_positive = a.poi_positive;
  lopt.num_threads = a.threads;
  if (a.threads < 0)
    throw std::invalid_argument("threads is " + std::to_string(a.threads) + ", but must be >= 0");
  lopt.data_term = engine::DataTermFromString(a.data_term);
  lopt.bin_by_bin_stat_type = engine::BinByBinStatTypeFromString(a.bin_by_bin_stat_type);
  lopt.bin_by_bin_stat_mode = engine::BinByBinStatModeFromString(a.bin_by_bin_stat_mode);
  lopt.use_data_var = a.chisq_data_var;
  if (a.chisq_data_var && lopt.data_term == engine::DataTerm::kPoisson)
    throw std::invalid_argument("chisq_data_var needs data_term \"chisq\" or \"covariance\"");
  std::string error;
  if (!lopt.IsValid(&error)) throw std::invalid_argument("likelihood options: " + error);
  const int nsel = static_cast<int>(a.asimov) + static_cast<int>(!a.pseudodata.empty()) +
                   static_cast<int>(!a.data.is_none());
  if (nsel > 1) throw std::invalid_argument("asimov, pseudodata and data are mutually exclusive");

  auto out = std::make_shared<PyLikelihood>();
  out->info.input_path = pm.path;
  out->info.num_threads = a.threads;
  out->info.data_label = "observed";
  const engine::Model& m = pm.m();
  Eigen::VectorXd data;
  if (!a.pseudodata.empty()) {
    const auto& names = m.pseudodata_names;
    const auto it = std::find(names.begin(), names.end(), a.pseudodata);
    if (it == names.end())
      throw std::invalid_argument(
          "pseudodata: " + (pm.path.empty() ? std::string("the model") : pm.path) +
          " has no pseudo-data set named '" + a.pseudodata + "' " +
          (names.empty() ? std::string("(the file has no pseudo-data)")
                         : "(available: " + Join(names) + ")"));
    data = m.pseudodata.col(it - names.begin());
    out->info.data_label = "pseudodata:" + a.pseudodata;
  } else if (!a.data.is_none()) {
    CArray d = AsArray(a.data, "data");
    if (d.ndim() != 1 || d.shape(0) != m.nbins)
      throw std::invalid_argument("data has shape " + ShapeString(Arg(d).shape) +
                                  ", but must be [nbins] = [" + std::to_string(m.nbins) + "]");
    data = Eigen::Map<const Eigen::VectorXd>(d.data(), m.nbins);
    out->info.data_label = "data";
  }
  {
    py::gil_scoped_release release;
    out->lik = std::make_shared<engine::Likelihood>(pm.model, lopt);
  }
  if (a.asimov) {
    Eigen::VectorXd x = out->lik->InitialParams();
    if (!a.set.empty()) x = MakeFitOptions(*out->lik, {}, a.set, "auto", 1e-8, 200).initial_params;
    out->lik->SetData(engine::AsimovData(*out->lik, x));
    out->info.data_label = "asimov";
  } else if (data.size()) {
    out->lik->SetData(data);
  }
  return out;
}

PyLikelihood& PyModel::Default() {
  if (!default_lik) default_lik = MakeLikelihood(*this, LikelihoodArgs{});
  return *default_lik;
}

void RequireOwnResult(const PyModel& pm, const PyFitResult& fr) {
  if (&fr.lik->lik->model() != pm.model.get())
    throw std::invalid_argument("result: the FitResult is a fit of another Model");
}

// ---- evaluations ----------------------------------------------------------------------------

double Nll(const engine::Likelihood& lik, py::handle x) {
  const Eigen::VectorXd v = ParamVector(x, lik.num_params());
  py::gil_scoped_release release;
  return lik.Value(v);
}

py::array Gradient(const engine::Likelihood& lik, py::handle x) {
  const Eigen::VectorXd v = ParamVector(x, lik.num_params());
  Eigen::VectorXd g;
  {
    py::gil_scoped_release release;
    lik.ValueAndGradient(v, &g);
  }
  return Own(std::move(g));
}

py::tuple ValueAndGradient(const engine::Likelihood& lik, py::handle x) {
  const Eigen::VectorXd v = ParamVector(x, lik.num_params());
  Eigen::VectorXd g;
  double f = 0.0;
  {
    py::gil_scoped_release release;
    f = lik.ValueAndGradient(v, &g);
  }
  return py::make_tuple(f, Own(std::move(g)));
}

py::array Hessian(const engine::Likelihood& lik, py::handle x) {
  const Eigen::VectorXd v = ParamVector(x, lik.num_params());
  Eigen::VectorXd g;
  Eigen::MatrixXd h;
  {
    py::gil_scoped_release release;
    lik.ValueGradientHessian(v, &g, &h);
  }
  return Own(std::move(h));
}

py::list ParamNames(const engine::Likelihood& lik) {
  py::list out;
  for (const auto& p : lik.params()) out.append(p.name);
  return out;
}

// ---- fit, impacts, scans, toys, yields ------------------------------------------------------

std::shared_ptr<PyFitResult> RunFit(std::shared_ptr<PyLikelihood> pl, engine::FitOptions options) {
  auto out = std::make_shared<PyFitResult>();
  out->lik = std::move(pl);
  out->options = options;
  std::atomic<bool> cancel{false};
  options.cancel = [&cancel] { return cancel.load(std::memory_order_relaxed); };
  const engine::Likelihood& lik = *out->lik->lik;
  out->r = RunInterruptible<engine::FitResult>([&] { return engine::Fit(lik, options); }, &cancel);
  return out;
}

py::dict Timings(const engine::FitResult& r) {
  return py::dict("total"_a = r.time_total, "evaluation"_a = r.time_evaluation,
                  "linear_algebra"_a = r.time_linear_algebra, "covariance"_a = r.time_covariance);
}

py::object FitDict(const PyFitResult& fr) {
  return JsonLoads(io::ResultsJson(*fr.lik->lik, fr.r, fr.lik->info));
}

void RequireAccurate(const PyFitResult& fr, const char* what) {
  if (!fr.r.ok())
    throw engine::NumericalError(std::string(what) + ": the fit did not converge (" +
                                 engine::ToString(fr.r.status) +
                                 (fr.r.message.empty() ? "" : ": " + fr.r.message) + ")");
}

py::dict Impacts(const PyFitResult& fr, bool global, py::object groups) {
  RequireAccurate(fr, "impacts");
  const engine::Likelihood& lik = *fr.lik->lik;
  engine::ImpactOptions iopt;
  iopt.global = global;
  bool with_groups = true;
  if (py::isinstance<py::bool_>(groups)) {
    with_groups = groups.cast<bool>();
  } else {
    if (!py::isinstance<py::dict>(groups))
      throw std::invalid_argument("groups must be True, False or a dict {name: regex}");
    std::vector<std::pair<std::string, std::string>> items;
    for (auto item : groups.cast<py::dict>()) {
      if (!py::isinstance<py::str>(item.first) || !py::isinstance<py::str>(item.second))
        throw std::invalid_argument("groups must be True, False or a dict {name: regex}");
      items.emplace_back(item.first.cast<std::string>(), item.second.cast<std::string>());
    }
    iopt.extra_groups = ParseGroups(lik.model(), items);
  }
  engine::Impacts im;
  {
    py::gil_scoped_release release;
    im = engine::ComputeImpacts(lik, fr.r, iopt);
  }
  io::ResultExtras extras;
  extras.impacts = &im;
  py::dict out = JsonLoads(io::ResultsJson(lik, fr.r, fr.lik->info, extras))["impacts"];
  if (!with_groups)
    for (const char* key : {"groups", "grouped_nominal", "grouped_global", "rabbit_global_grouped",
                            "rabbit_gaussian_global_grouped"})
      if (out.contains(key)) PyDict_DelItemString(out.ptr(), key);
  py::dict arrays;
  arrays["parameters"] = ParamNames(lik);
  arrays["targets"] = im.target_names;
  arrays["total"] = Own(std::move(im.total));
  arrays["nominal"] = Own(std::move(im.nominal));
  if (with_groups) {
    arrays["groups"] = im.group_names;
    arrays["grouped_nominal"] = Own(std::move(im.grouped_nominal));
  }
  if (im.has_global) {
    arrays["global_nuisance"] = Own(std::move(im.global_nuisance));
    arrays["global_data"] = Own(std::move(im.global_data));
    arrays["global_bbstat"] = Own(std::move(im.global_bbstat));
    if (with_groups) arrays["grouped_global"] = Own(std::move(im.grouped_global));
  }
  out["arrays"] = arrays;
  return out;
}

// ---- hypothesis tests and limits (`lepus hypotest`, `lepus limit`) ------------------------------

int PoiIndex(const engine::Likelihood& lik, py::object poi) {
  if (poi.is_none()) return -1;  // engine default: first signal strength, else first NOI
  const std::string name = py::str(poi);
  const int i = lik.FindParam(name);
  if (i < 0) throw std::invalid_argument("poi: no parameter named '" + name + "'");
  return i;
}

engine::HypoTestOptions HypoOptions(const engine::Likelihood& lik, py::object poi,
                                    const std::string& test_stat, const std::string& calc,
                                    int ntoys, std::uint64_t seed, int threads) {
  engine::HypoTestOptions o;
  o.poi = PoiIndex(lik, poi);
  o.test_stat = engine::TestStatisticFromString(test_stat);
  o.calculator = engine::HypoCalculatorFromString(calc);
  o.ntoys = ntoys;
  o.seed = seed;
  o.num_threads = threads;
  return o;
}

py::dict Scan(const PyFitResult& fr, const std::string& name, py::handle values,
              py::object progress) {
  const engine::Likelihood& lik = *fr.lik->lik;
  const int param = lik.FindParam(name);
  if (param < 0) throw std::invalid_argument("scan: no parameter named '" + name + "'");
  CArray v = AsArray(values, "values");
  if (v.ndim() != 1)
    throw std::invalid_argument("values has shape " + ShapeString(Arg(v).shape) +
                                ", but must be 1-D");
  std::vector<double> grid(v.data(), v.data() + v.shape(0));
  RequireAccurate(fr, "scan");
  Progress prog;
  prog.callback = std::move(progress);
  std::atomic<bool> cancel{false};
  engine::ScanOptions so;
  so.fit = fr.options;
  so.fit.cancel = [&cancel] { return cancel.load(std::memory_order_relaxed); };
  so.progress = prog.EngineCallback();
  const int threads = lik.options().num_threads;
  engine::Scan1D s = RunInterruptible<engine::Scan1D>(
      [&] {
        tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
        return arena.execute([&] { return engine::ScanProfile(lik, fr.r, param, grid, so); });
      },
      &cancel, prog.Poll());
  py::dict out;
  out["name"] = s.name;
  out["best_value"] = fr.r.values[param];
  out["hessian_error"] = fr.r.errors.size() > param ? fr.r.errors[param] : std::nan("");
  out["values"] = OwnVec(s.values);
  out["dnll"] = OwnVec(s.dnll);
  out["status"] = s.status;
  return out;
}

py::dict Toys(const std::shared_ptr<PyLikelihood>& pl, const engine::FitOptions& fit, int n,
              std::uint64_t seed, const std::string& mode, bool poisson, bool randomize_constraints,
              int threads, py::object progress) {
  const engine::Likelihood& lik = *pl->lik;
  engine::ToyOptions o;
  o.ntoys = n;
  o.seed = seed;
  if (mode == "expected")
    o.mode = engine::ToyMode::kExpected;
  else if (mode == "observed")
    o.mode = engine::ToyMode::kObserved;
  else
    throw std::invalid_argument("mode is \"" + mode +
                                "\", but must be \"expected\" or \"observed\"");
  o.poisson = poisson;
  o.randomize_constraints = randomize_constraints;
  o.fit = fit;
  if (threads < 0)
    throw std::invalid_argument("threads is " + std::to_string(threads) + ", but must be >= 0");
  o.num_threads = threads;
  std::string error;
  if (!o.IsValid(lik.num_params(), &error)) throw std::invalid_argument("toys: " + error);
  Progress prog;
  prog.callback = std::move(progress);
  o.progress = prog.EngineCallback();
  std::atomic<bool> cancel{false};
  o.fit.cancel = [&cancel] { return cancel.load(std::memory_order_relaxed); };
  engine::ToyResults t = RunInterruptible<engine::ToyResults>(
      [&] { return engine::RunToys(lik, o); }, &cancel, prog.Poll());
  o.fit.cancel = nullptr;
  o.progress = nullptr;
  io::RunInfo info = pl->info;
  info.num_threads = threads;
  py::dict out = JsonLoads(io::ToysJson(lik, o, t, info));
  py::list status;
  for (auto s : t.status) status.append(engine::ToString(s));
  out["names"] = ParamNames(lik);
  out["status"] = status;
  out["values"] = Own(std::move(t.values));
  out["errors"] = Own(std::move(t.errors));
  out["nll"] = Own(std::move(t.nll));
  out["gof_chi2"] = Own(std::move(t.gof_chi2));
  out["truth_values"] = Own(std::move(t.truth));
  return out;
}

py::dict YieldDict(engine::YieldSet&& y) {
  py::dict d;
  d["total"] = Own(std::move(y.total));
  d["total_error"] = Own(std::move(y.total_error));
  if (y.process.size()) {
    d["process"] = Own(std::move(y.process));
    d["process_error"] = Own(std::move(y.process_error));
  }
  if (y.total_covariance.size()) d["total_covariance"] = Own(std::move(y.total_covariance));
  return d;
}

py::dict PostfitYields(const PyFitResult& fr, bool covariance) {
  RequireAccurate(fr, "postfit_yields");
  const engine::Likelihood& lik = *fr.lik->lik;
  engine::YieldOptions yo;
  yo.full_covariance = covariance;
  engine::YieldSet pre, post;
  std::vector<engine::ChannelGof> gof;
  {
    py::gil_scoped_release release;
    pre = engine::PrefitYields(lik, yo);
    post = engine::PostfitYields(lik, fr.r, yo);
    gof = engine::ChannelGoodnessOfFit(lik, fr.r);
  }
  const engine::Model& m = lik.model();
  py::dict out;
  out["processes"] = m.processes;
  py::list channels;
  std::int64_t first = 0;
  for (const auto& c : m.channels) {
    channels.append(py::dict("name"_a = c.name, "first_bin"_a = first, "nbins"_a = c.nbins,
                             "masked"_a = c.masked));
    first += c.nbins;
  }
  out["channels"] = channels;
  Eigen::VectorXd data = lik.data();
  out["data"] = Own(std::move(data));
  out["prefit"] = YieldDict(std::move(pre));
  out["postfit"] = YieldDict(std::move(post));
  py::list g;
  for (const auto& c : gof)
    g.append(py::dict("channel"_a = c.channel, "chi2"_a = c.chi2, "ndf"_a = c.ndf, "p"_a = c.p));
  out["gof_channels"] = g;
  return out;
}

// ---- Model construction -------------------------------------------------------------------

std::vector<std::string> Names(py::handle obj, const std::string& what) {
  if (obj.is_none()) return {};
  if (py::isinstance<py::str>(obj))
    throw std::invalid_argument(what + " must be a sequence of names, not a string");
  std::vector<std::string> out;
  for (auto item : py::iter(obj)) {
    if (!py::isinstance<py::str>(item))
      throw std::invalid_argument(what + " must hold names (str)");
    out.push_back(item.cast<std::string>());
  }
  return out;
}

std::shared_ptr<PyModel> Read(py::handle path_obj, py::handle patches, py::handle patchset,
                              const std::string& patch_name, const std::string& measurement,
                              const std::string& normsys_interp,
                              const std::string& histosys_interp) {
  const std::string path = FsPath(path_obj);
  io::ReadOptions options;
  if (!patches.is_none()) {
    if (py::isinstance<py::str>(patches) || py::isinstance<py::bytes>(patches))
      throw py::type_error("patches must be a sequence of paths, not a single string");
    for (py::handle p : patches) options.patches.push_back(FsPath(p));
  }
  if (!patchset.is_none()) options.patchset = FsPath(patchset);
  options.patch_name = patch_name;
  options.measurement = measurement;
  options.normsys_interp = normsys_interp;
  options.histosys_interp = histosys_interp;
  auto pm = std::make_shared<PyModel>();
  pm->path = path;
  io::ReadInfo info;
  {
    py::gil_scoped_release release;
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st)) throw io::InputError(path + ": no such file");
    if (std::filesystem::is_directory(st))
      throw io::InputError(path + ": is a directory, not a fit input file");
    pm->model = std::make_shared<const engine::Model>(io::ReadFitInput(path, &info, options));
  }
  pm->warnings = info.warnings;
  for (const auto& w : info.warnings)
    if (PyErr_WarnEx(PyExc_UserWarning, w.c_str(), 1) != 0) throw py::error_already_set();
  return pm;
}

std::shared_ptr<PyModel> FromArrays(py::handle norm, py::handle logk, py::handle data,
                                    py::handle processes, py::handle systematics,
                                    py::handle signals, py::handle sumw2, py::handle logk_halfdiff,
                                    py::handle constraint_weights, py::handle noi,
                                    py::handle groups, const std::string& systematic_type,
                                    py::handle sumw) {
  ArrayModelInput in;
  // Keep the converted arrays alive while the model is built.
  std::vector<CArray> keep;
  auto arg = [&](py::handle obj, const char* name, ArrayArg* out) {
    if (obj.is_none()) return;
    keep.push_back(AsArray(obj, name));
    *out = Arg(keep.back());
  };
  arg(norm, "norm", &in.norm);
  arg(logk, "logk", &in.logk);
  arg(data, "data", &in.data);
  arg(sumw2, "sumw2", &in.sumw2);
  arg(logk_halfdiff, "logk_halfdiff", &in.logk_halfdiff);
  arg(constraint_weights, "constraint_weights", &in.constraint_weights);
  arg(sumw, "sumw", &in.sumw);
  in.processes = Names(processes, "processes");
  in.systematics = Names(systematics, "systematics");
  in.signals = Names(signals, "signals");
  in.noi = Names(noi, "noi");
  if (!groups.is_none() && !py::isinstance<py::dict>(groups))
    throw std::invalid_argument("groups must be a dict {group: [systematic names]}");
  if (!groups.is_none())
    for (auto item : groups.cast<py::dict>())
      in.groups.emplace_back(
          item.first.cast<std::string>(),
          Names(item.second, "groups[\"" + item.first.cast<std::string>() + "\"]"));
  in.systematic_type = systematic_type;
  auto pm = std::make_shared<PyModel>();
  pm->model = std::make_shared<const engine::Model>(ModelFromArrays(in));
  return pm;
}

// ---- docstrings ------------------------------------------------------------------------------

constexpr const char* kLikelihoodKeywords = R"(
Likelihood keywords (the same as `lepus fit`'s flags):
    bbstat (bool, True): Barlow-Beeston bin-by-bin MC statistics (False = --no-bbstat).
    data_term (str, "poisson"): "poisson", "chisq" (--chisq-fit) or "covariance" (--covariance-fit).
    bin_by_bin_stat_type (str, "automatic"): "automatic", "gamma", "normal-multiplicative",
        "normal-additive" (--bin-by-bin-stat-type).
    bin_by_bin_stat_mode (str, "lite"): "lite" or "full" (--bin-by-bin-stat-mode).
    chisq_data_var (bool, False): chi-square variance from the input's data variance (--chisq-data-var).
    poi_positive (bool, False): signal strengths as mu = x^2 (--poi-positive); x then holds sqrt(mu).
    threads (int, 0): worker threads, 0 = all cores; results do not depend on it.
    asimov (bool, False): fit the Asimov data set at the prefit point (moved to the `set` values).
    pseudodata (str, ""): fit the named pseudo-data set of the input.
    data (array [nbins] or None): fit these observed counts instead.
)";

}  // namespace
}  // namespace lepus::python

using namespace lepus;
using namespace lepus::python;

PYBIND11_MODULE(_lepus, mod) {
  mod.doc() = "lepus: binned profile-likelihood fits (C++ engine). See docs/python.md.";
  mod.attr("__version__") = LEPUS_VERSION_STRING;

  // Exceptions: InputError is both an OSError and a ValueError (a file that is missing or
  // unreadable, or whose content is invalid); NumericalError a RuntimeError (a fit that cannot
  // give the requested result).
  static py::handle input_error = PyErr_NewExceptionWithDoc(
      "lepus.InputError",
      "A fit input that cannot be read or is invalid (the C++ io::InputError); an OSError and a "
      "ValueError.",
      py::make_tuple(py::handle(PyExc_OSError), py::handle(PyExc_ValueError)).release().ptr(),
      nullptr);
  static py::handle numerical_error = PyErr_NewExceptionWithDoc(
      "lepus.NumericalError",
      "Numerical trouble where a good fit is needed (the C++ engine::NumericalError): impacts on a "
      "Hessian that is not positive definite, yields without an accurate covariance, ...",
      PyExc_RuntimeError, nullptr);
  mod.attr("InputError") = input_error;
  mod.attr("NumericalError") = numerical_error;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const io::InputError& e) {
      PyErr_SetString(input_error.ptr(), e.what());
    } catch (const engine::NumericalError& e) {
      PyErr_SetString(numerical_error.ptr(), e.what());
    }
  });

  // ---- Likelihood
  py::class_<PyLikelihood, std::shared_ptr<PyLikelihood>>(mod, "Likelihood", R"(
The profiled negative log-likelihood of a Model with given options and data (engine::Likelihood):
exact NLL, gradient and Hessian for any minimiser. Parameters are in `names` order, in internal
coordinates (mu for POIs, or sqrt(mu) with poi_positive; theta for nuisances). Made by
Model.likelihood(); a FitResult keeps the one it was fitted with.)")
      .def_property_readonly(
          "names", [](const PyLikelihood& l) { return ParamNames(*l.lik); },
          "Parameter names: POIs (one per signal process), then the systematics.")
      .def_property_readonly(
          "description", [](const PyLikelihood& l) { return l.lik->Describe(); },
          "The likelihood fitted, e.g. 'Poisson, Barlow-Beeston lite (gamma)'.")
      .def_property_readonly(
          "data_label", [](const PyLikelihood& l) { return l.info.data_label; },
          "'observed', 'asimov', 'pseudodata:<name>' or 'data'.")
      .def_property_readonly(
          "data",
          [](py::object self) { return View(self.cast<PyLikelihood&>().lik->data(), self); },
          "The fitted bins' data [nbins] (read-only view).")
      .def(
          "nll", [](const PyLikelihood& l, py::handle x) { return Nll(*l.lik, x); }, "x"_a,
          "Profiled NLL at x (saturated offset included: 2 * nll is the saturated chi-square).")
      .def(
          "gradient", [](const PyLikelihood& l, py::handle x) { return Gradient(*l.lik, x); },
          "x"_a, "Exact gradient of the NLL at x (numpy [nparams]).")
      .def(
          "value_and_gradient",
          [](const PyLikelihood& l, py::handle x) { return ValueAndGradient(*l.lik, x); }, "x"_a,
          "(nll, gradient) at x in one evaluation.")
      .def(
          "hessian", [](const PyLikelihood& l, py::handle x) { return Hessian(*l.lik, x); }, "x"_a,
          "Exact Hessian of the profiled NLL at x (numpy [nparams, nparams]).")
      .def(
          "initial_values", [](const PyLikelihood& l) { return Own(l.lik->InitialParams()); },
          "Default starting point: mu = 1 for POIs, the constraint centres for nuisances.")
      .def(
          "expected_yields",
          [](const PyLikelihood& l, py::handle x, bool include_beta) {
            const Eigen::VectorXd v = ParamVector(x, l.lik->num_params());
            return Own(l.lik->ExpectedYields(v, include_beta));
          },
          "x"_a, "include_beta"_a = false,
          "Expected yield per bin (all nbins_full bins) at x; with include_beta the profiled "
          "Barlow-Beeston factors are applied.")
      .def(
          "fit",
          [](std::shared_ptr<PyLikelihood> pl, py::object freeze, py::dict set,
             const std::string& method, double edm_tolerance, int max_iterations) {
            engine::FitOptions fo = MakeFitOptions(*pl->lik, Names(freeze, "freeze"), SetItems(set),
                                                   method, edm_tolerance, max_iterations);
            return RunFit(pl, fo);
          },
          py::kw_only(), "freeze"_a = py::tuple(), "set"_a = py::dict(), "method"_a = "auto",
          "edm_tolerance"_a = 1e-8, "max_iterations"_a = 200,
          "Fits this likelihood (as Model.fit, without building a new one) -> FitResult. Releases "
          "the GIL; "
          "Ctrl-C stops it.")
      .def(
          "_time_gradient",
          [](const PyLikelihood& l, py::handle x, int n) {
            // Benchmark helper (benchmarks/python_overhead.py): seconds per ValueAndGradient call
            // timed in C++, the baseline of the Python call's overhead.
            const Eigen::VectorXd v = ParamVector(x, l.lik->num_params());
            Eigen::VectorXd g;
            py::gil_scoped_release release;
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < n; ++i) l.lik->ValueAndGradient(v, &g);
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                   std::max(n, 1);
          },
          "x"_a, "n"_a)
      .def("__repr__", [](const PyLikelihood& l) {
        return "<lepus.Likelihood " + l.lik->Describe() + ", " +
               std::to_string(l.lik->num_params()) + " parameters, " + l.info.data_label + " data>";
      });

  // ---- FitResult
  py::class_<PyFitResult, std::shared_ptr<PyFitResult>>(mod, "FitResult", R"(
The result of Model.fit (engine::FitResult). Arrays are read-only numpy views of the result's own
storage (no copies): values, errors, covariance, hessian, x. `to_dict()` is the JSON summary of
`lepus fit --json`, exactly.)")
      .def_property_readonly(
          "names", [](const PyFitResult& f) { return ParamNames(*f.lik->lik); },
          "Parameter names, the order of values, errors and the matrices.")
      .def_property_readonly(
          "values", [](py::object self) { return View(self.cast<PyFitResult&>().r.values, self); },
          "Fitted values in reported coordinates (mu for POIs, theta for nuisances).")
      .def_property_readonly(
          "errors", [](py::object self) { return View(self.cast<PyFitResult&>().r.errors, self); },
          "sqrt(diag(covariance)); 0 for frozen parameters.")
      .def_property_readonly(
          "x", [](py::object self) { return View(self.cast<PyFitResult&>().r.x, self); },
          "The minimum in internal coordinates (the argument of Likelihood.nll).")
      .def_property_readonly(
          "covariance",
          [](py::object self) -> py::object {
            const auto& r = self.cast<PyFitResult&>().r;
            if (r.covariance.size() == 0) return py::none();
            return View(r.covariance, self);
          },
          "Covariance of the reported values (None for matrix-free fits).")
      .def_property_readonly(
          "correlation",
          [](py::object self) -> py::object {
            auto& f = self.cast<PyFitResult&>();
            if (f.r.covariance.size() == 0) return py::none();
            if (!f.correlation) f.correlation = f.r.Correlation();
            return View(*f.correlation, self);
          },
          "Correlation matrix (None for matrix-free fits).")
      .def_property_readonly(
          "hessian",
          [](py::object self) { return View(self.cast<PyFitResult&>().r.hessian, self); },
          "Hessian of the NLL at the minimum, internal coordinates.")
      .def_property_readonly(
          "nll", [](const PyFitResult& f) { return f.r.nll; }, "NLL at the minimum.")
      .def_property_readonly(
          "edm", [](const PyFitResult& f) { return f.r.edm; }, "Estimated distance to the minimum.")
      .def_property_readonly(
          "status", [](const PyFitResult& f) { return engine::ToString(f.r.status); },
          "'converged', 'not_converged' or 'failed'.")
      .def_property_readonly(
          "ok", [](const PyFitResult& f) { return f.r.ok(); }, "status == 'converged'.")
      .def_property_readonly("message", [](const PyFitResult& f) { return f.r.message; })
      .def_property_readonly("iterations", [](const PyFitResult& f) { return f.r.iterations; })
      .def_property_readonly("evaluations", [](const PyFitResult& f) { return f.r.evaluations; })
      .def_property_readonly(
          "covariance_status",
          [](const PyFitResult& f) { return engine::ToString(f.r.covariance_status); })
      .def_property_readonly(
          "gof",
          [](const PyFitResult& f) {
            return py::dict("chi2"_a = f.r.gof_chi2, "ndf"_a = f.r.gof_ndf, "p"_a = f.r.gof_p);
          },
          "Saturated goodness of fit {chi2, ndf, p}.")
      .def_property_readonly(
          "timings", [](const PyFitResult& f) { return Timings(f.r); },
          "Wall-clock seconds: total, evaluation, linear_algebra, covariance.")
      .def_property_readonly(
          "likelihood", [](const PyFitResult& f) { return f.lik; }, "The Likelihood fitted.")
      .def("to_dict", &FitDict,
           "The JSON summary of `lepus fit --json` as a dict (same keys, same numbers).")
      .def("__repr__",
           [](const PyFitResult& f) { return "<lepus.FitResult " + f.r.BriefReport() + ">"; });

  // ---- Model
  py::class_<PyModel, std::shared_ptr<PyModel>> model(mod, "Model", R"(
A binned model (engine::Model): the (bin, process, systematic) tensor, data, constraints and
metadata. Made by lepus.read(path) or Model.from_arrays(...). Immutable.)");
  model
      .def_static("from_arrays", &FromArrays, "norm"_a, "logk"_a, "data"_a, "processes"_a,
                  "systematics"_a, py::kw_only(), "signals"_a = py::tuple(), "sumw2"_a = py::none(),
                  "logk_halfdiff"_a = py::none(), "constraint_weights"_a = py::none(),
                  "noi"_a = py::tuple(), "groups"_a = py::dict(),
                  "systematic_type"_a = "log_normal", "sumw"_a = py::none(), R"(
A model from dense numpy arrays (rabbit's tensor layout), checked like a file.

    norm: [nbins_full, nproc] nominal yields. Rows beyond len(data) form a masked channel.
    logk: [nbins_full, nproc, nsyst] log of the variation per unit theta (symmetric part).
    data: [nbins] observed counts.
    processes, systematics: names (unique).
    signals: names of the signal processes: the first entries of processes, in order; each gets
        a signal strength (POI).
    sumw2: [nbins_full, nproc] MC variance of norm (None: no MC statistical uncertainty).
    logk_halfdiff: [nbins_full, nproc, nsyst] asymmetric part (None: symmetric).
    constraint_weights: [nsyst]: 1 = unit Gaussian, 1/sigma^2, 0 = unconstrained (None: all 1).
    noi: names of the nuisances of interest.
    groups: {group: [systematic names]} for grouped impacts.
    systematic_type: "log_normal" or "normal".
    sumw: [nbins_full, nproc] sum of weights (None: norm; Barlow-Beeston full mode uses it).

Raises ValueError with the file reader's message form, e.g.
"norm[3, 1] is nan, but must be finite".)")
      .def(
          "write",
          [](const PyModel& pm, py::handle path, const std::string& storage, bool gzip) {
            io::WriteOptions wo;
            if (storage == "dense")
              wo.storage = engine::StorageKind::kDense;
            else if (storage == "sparse")
              wo.storage = engine::StorageKind::kSparse;
            else
              throw std::invalid_argument("storage is \"" + storage +
                                          "\", but must be \"dense\" or \"sparse\"");
            wo.gzip = gzip;
            const std::string p = FsPath(path);
            py::gil_scoped_release release;
            io::WriteFitInput(pm.m(), p, wo);
          },
          "path"_a, "storage"_a = "dense", "gzip"_a = false,
          "Writes the model as an HDF5 fit input (rabbit's layout with lepus metadata; atomic).")
      .def(
          "likelihood",
          [](const PyModel& pm, bool bbstat, const std::string& data_term,
             const std::string& bb_type, const std::string& bb_mode, bool chisq_data_var,
             bool poi_positive, int threads, bool asimov, const std::string& pseudodata,
             py::object data, py::dict set) {
            LikelihoodArgs a{bbstat,  data_term, bb_type,    bb_mode, chisq_data_var, poi_positive,
                             threads, asimov,    pseudodata, data,    SetItems(set)};
            return MakeLikelihood(pm, a);
          },
          py::kw_only(), "bbstat"_a = true, "data_term"_a = "poisson",
          "bin_by_bin_stat_type"_a = "automatic", "bin_by_bin_stat_mode"_a = "lite",
          "chisq_data_var"_a = false, "poi_positive"_a = false, "threads"_a = 0, "asimov"_a = false,
          "pseudodata"_a = "", "data"_a = py::none(), "set"_a = py::dict(),
          (std::string(
               "A Likelihood of this model (for nll / gradient / hessian with options).\n") +
           kLikelihoodKeywords +
           "    set (dict): the Asimov point's parameter values (with asimov).\n")
              .c_str())
      .def(
          "fit",
          [](PyModel& pm, bool asimov, int threads, py::object freeze, py::dict set,
             const std::string& method, bool bbstat, const std::string& data_term,
             const std::string& bb_type, const std::string& bb_mode, bool chisq_data_var,
             bool poi_positive, const std::string& pseudodata, py::object data,
             double edm_tolerance, int max_iterations) {
            const auto set_items = SetItems(set);
            LikelihoodArgs a{bbstat,  data_term, bb_type,    bb_mode, chisq_data_var, poi_positive,
                             threads, asimov,    pseudodata, data,    set_items};
            auto pl = MakeLikelihood(pm, a);
            engine::FitOptions fo = MakeFitOptions(*pl->lik, Names(freeze, "freeze"), set_items,
                                                   method, edm_tolerance, max_iterations);
            return RunFit(pl, fo);
          },
          py::kw_only(), "asimov"_a = false, "threads"_a = 0, "freeze"_a = py::tuple(),
          "set"_a = py::dict(), "method"_a = "auto", "bbstat"_a = true, "data_term"_a = "poisson",
          "bin_by_bin_stat_type"_a = "automatic", "bin_by_bin_stat_mode"_a = "lite",
          "chisq_data_var"_a = false, "poi_positive"_a = false, "pseudodata"_a = "",
          "data"_a = py::none(), "edm_tolerance"_a = 1e-8, "max_iterations"_a = 200,
          (std::string(
               R"(Maximum-likelihood fit (`lepus fit`) -> FitResult. Releases the GIL; Ctrl-C stops it
(KeyboardInterrupt).

    freeze: regular expressions; parameters whose whole name matches are fixed (--freeze).
    set: {name: value} starting values, mu for POIs (--set); with asimov also the Asimov point.
    method: "auto", "dense", "matrix_free", "ceres", "ceres_dogleg" (--method).
    edm_tolerance, max_iterations: convergence (--edm-tol, --max-iter).
)") + kLikelihoodKeywords)
              .c_str())
      .def(
          "hypotest",
          [](PyModel& pm, double poi_value, py::object poi, const std::string& test_stat,
             const std::string& calc, int ntoys, std::uint64_t seed, int threads) {
            const engine::Likelihood& lik = *pm.Default().lik;
            const engine::HypoTestOptions o =
                HypoOptions(lik, poi, test_stat, calc, ntoys, seed, threads);
            engine::HypoTestResult r;
            {
              py::gil_scoped_release release;
              r = engine::HypoTest(lik, poi_value, o);
            }
            py::dict d = JsonLoads(io::HypoTestJson(r).dump());
            d["poi"] = r.poi_name;
            return d;
          },
          "poi_value"_a, py::kw_only(), "poi"_a = py::none(), "test_stat"_a = "qtilde",
          "calc"_a = "asymptotics", "ntoys"_a = 1000, "seed"_a = 1, "threads"_a = 0, R"(
CLs hypothesis test of poi = poi_value (`lepus hypotest`; docs/hypotest.md), with pyhf's
defaults (qtilde, asymptotics) on the observed data. Returns the result keys of
`lepus hypotest --json` (lepus/io/hypotest_json.h: status, message, poi_value, q_obs, q_asimov,
mu_hat, cls_obs, clsb_obs, clb_obs, cls_exp (five numbers, -2 sigma first), p_value,
significance, ...) and poi; numbers are None where not defined or when the status is "failed".)")
      .def(
          "upper_limit",
          [](PyModel& pm, double cl, py::object poi, const std::string& test_stat) {
            const engine::Likelihood& lik = *pm.Default().lik;
            engine::UpperLimitOptions o;
            o.cl = cl;
            o.hypotest = HypoOptions(lik, poi, test_stat, "asymptotics", 1000, 1, 0);
            engine::UpperLimitResult r;
            {
              py::gil_scoped_release release;
              r = engine::UpperLimit(lik, o);
            }
            py::dict d = JsonLoads(io::UpperLimitJson(r).dump());
            d["poi"] = r.poi_name;
            return d;
          },
          "cl"_a = 0.95, py::kw_only(), "poi"_a = py::none(), "test_stat"_a = "qtilde", R"(
Observed and expected (five, -2 sigma first) upper limits at confidence level cl by root finding
on the asymptotic CLs (`lepus limit`). Returns the result keys of `lepus limit --json` (cl,
status, message, observed, expected, mu_hat, evaluations) and poi.)")
      .def(
          "impacts",
          [](const PyModel& pm, const PyFitResult& r, bool global_impacts, py::object groups) {
            RequireOwnResult(pm, r);
            return Impacts(r, global_impacts, groups);
          },
          "result"_a, "global_impacts"_a = true, "groups"_a = true, R"(
Impacts on every POI and nuisance of interest (`lepus fit --impacts --global-impacts`).

Returns the `impacts` section of the JSON summary as nested dicts (total, nominal, grouped_nominal,
global, grouped_global, ... keyed by target, then parameter or group) plus `arrays`: numpy
matrices [targets x parameters] / [targets x groups] / [targets x bins] with their name lists.
groups: True (the model's groups and stat / binByBinStat), False (no grouped tables), or a dict
{name: regex} of extra groups (`--group NAME=REGEX`). Raises lepus.NumericalError when the fit
has no accurate covariance.)")
      .def(
          "scan",
          [](PyModel& pm, const std::string& name, py::handle values,
             std::shared_ptr<PyFitResult> result, py::object progress) {
            if (!result)
              result = RunFit(MakeLikelihood(pm, LikelihoodArgs{}), engine::FitOptions{});
            RequireOwnResult(pm, *result);
            return Scan(*result, name, values, progress);
          },
          "name"_a, "values"_a, "result"_a = nullptr, "progress"_a = py::none(), R"(
Profile-likelihood scan of one parameter: at each value (reported units) the others are refitted.
result: the best fit to scan around (default: Model.fit()); its likelihood and fit options are
used. Returns {name, best_value, hessian_error, values, dnll, status}. Runs in parallel with the
GIL released; Ctrl-C stops it; progress(done, total) is called from the calling thread.)")
      .def(
          "toys",
          [](PyModel& pm, int n, std::uint64_t seed, std::shared_ptr<PyFitResult> result,
             const std::string& mode, bool poisson, bool randomize_constraints, int threads,
             py::object progress) {
            if (result) RequireOwnResult(pm, *result);
            std::shared_ptr<PyLikelihood> pl =
                result ? result->lik : MakeLikelihood(pm, LikelihoodArgs{});
            const engine::FitOptions fo = result ? result->options : engine::FitOptions{};
            return Toys(pl, fo, n, seed, mode, poisson, randomize_constraints, threads, progress);
          },
          "n"_a, "seed"_a = 1, py::kw_only(), "result"_a = nullptr, "mode"_a = "expected",
          "poisson"_a = true, "randomize_constraints"_a = true, "threads"_a = 0,
          "progress"_a = py::none(), R"(
Toy ensemble (`lepus toys`): n pseudo-experiments (Poisson data, randomised global observables),
each fitted. mode "expected" generates at the prefit point, "observed" at the best fit. With
result, its likelihood and fit options are used. Returns the JSON summary of `lepus toys` plus
numpy arrays values / errors [n x nparams], nll, gof_chi2 and the per-toy status. Identical for
any thread count; Ctrl-C stops it.)")
      .def(
          "postfit_yields",
          [](const PyModel& pm, const PyFitResult& r, bool covariance) {
            RequireOwnResult(pm, r);
            return PostfitYields(r, covariance);
          },
          "result"_a, "covariance"_a = false, R"(
Pre- and post-fit yields per bin and process with uncertainties (`lepus fit --postfit`):
{processes, channels, data, prefit: {total, total_error, process, process_error}, postfit: {...},
gof_channels}. Arrays cover all nbins_full bins ([bins] and [bins x processes]).)")
      .def(
          "nll", [](PyModel& pm, py::handle x) { return Nll(*pm.Default().lik, x); }, "x"_a,
          "NLL of the default likelihood (observed data, Barlow-Beeston lite on) at x; see "
          "Model.likelihood().")
      .def(
          "gradient", [](PyModel& pm, py::handle x) { return Gradient(*pm.Default().lik, x); },
          "x"_a, "Exact gradient of Model.nll at x.")
      .def(
          "value_and_gradient",
          [](PyModel& pm, py::handle x) { return ValueAndGradient(*pm.Default().lik, x); }, "x"_a,
          "(nll, gradient) at x in one evaluation.")
      .def(
          "hessian", [](PyModel& pm, py::handle x) { return Hessian(*pm.Default().lik, x); }, "x"_a,
          "Exact Hessian of Model.nll at x.")
      .def(
          "initial_values", [](PyModel& pm) { return Own(pm.Default().lik->InitialParams()); },
          "Default starting point of Model.nll (mu = 1, nuisances at their constraint centres).")
      .def_property_readonly(
          "parameter_names", [](PyModel& pm) { return ParamNames(*pm.Default().lik); },
          "Parameter names: signal strengths (named after the signal processes), then systematics.")
      .def_property_readonly("path", [](const PyModel& pm) { return pm.path; })
      .def_property_readonly(
          "warnings", [](const PyModel& pm) { return pm.warnings; }, "The reader's warnings.")
      .def_property_readonly("processes", [](const PyModel& pm) { return pm.m().processes; })
      .def_property_readonly("signals",
                             [](const PyModel& pm) {
                               return std::vector<std::string>(
                                   pm.m().processes.begin(),
                                   pm.m().processes.begin() + pm.m().num_signals);
                             })
      .def_property_readonly("systematics", [](const PyModel& pm) { return pm.m().systematics; })
      .def_property_readonly(
          "noi",
          [](const PyModel& pm) {
            std::vector<std::string> out;
            for (int s : pm.m().noi_indices) out.push_back(pm.m().systematics[s]);
            return out;
          },
          "Nuisances of interest.")
      .def_property_readonly("groups",
                             [](const PyModel& pm) {
                               py::dict out;
                               for (const auto& g : pm.m().groups) {
                                 py::list members;
                                 for (int s : g.members) members.append(pm.m().systematics[s]);
                                 out[py::str(g.name)] = members;
                               }
                               return out;
                             })
      .def_property_readonly("channels",
                             [](const PyModel& pm) {
                               py::list out;
                               for (const auto& c : pm.m().channels) {
                                 py::list axes;
                                 for (const auto& a : c.axes)
                                   axes.append(py::dict("name"_a = a.name, "edges"_a = a.edges,
                                                        "labels"_a = a.labels));
                                 out.append(py::dict("name"_a = c.name, "nbins"_a = c.nbins,
                                                     "masked"_a = c.masked, "axes"_a = axes));
                               }
                               return out;
                             })
      .def_property_readonly(
          "nbins", [](const PyModel& pm) { return pm.m().nbins; }, "Fitted (unmasked) bins.")
      .def_property_readonly(
          "nbins_full", [](const PyModel& pm) { return pm.m().nbins_full; }, "All bins.")
      .def_property_readonly(
          "systematic_type",
          [](const PyModel& pm) { return engine::ToString(pm.m().systematic_type); })
      .def_property_readonly("constraint_weights",
                             [](const PyModel& pm) { return OwnVec(pm.m().constraint_weights); })
      .def_property_readonly("pseudodata_names",
                             [](const PyModel& pm) { return pm.m().pseudodata_names; })
      .def_property_readonly(
          "data", [](py::object self) { return View(self.cast<PyModel&>().m().data_obs, self); },
          "Observed counts [nbins] (read-only view).")
      .def_property_readonly(
          "sumw2", [](py::object self) { return View(self.cast<PyModel&>().m().sumw2, self); },
          "MC variance [nbins_full, nproc] (read-only view).")
      .def_property_readonly(
          "norm", [](const PyModel& pm) { return Own(pm.m().DenseNorm()); },
          "Nominal yields [nbins_full, nproc] (a dense copy).")
      .def("__repr__", [](const PyModel& pm) {
        const auto& m = pm.m();
        return "<lepus.Model " + (pm.path.empty() ? std::string("(arrays)") : pm.path) + ": " +
               std::to_string(m.nbins) + " bins, " + std::to_string(m.num_processes()) +
               " processes, " + std::to_string(m.num_systematics()) + " systematics>";
      });

  mod.def("read", &Read, "path"_a, py::kw_only(), "patches"_a = py::none(),
          "patchset"_a = py::none(), "patch_name"_a = "", "measurement"_a = "",
          "normsys_interp"_a = "code4", "histosys_interp"_a = "code4p", R"(
Reads a fit input -> Model: an HDF5 file (rabbit's tensor layout, dense or sparse, compressed or
not; lepus's own files) or a HistFactory JSON workspace (pyhf format, plain or gzip; detected by
content). The keywords apply to workspaces only (docs/histfactory.md "Reading workspaces"):
patches (JSON Patch files, in order), patchset + patch_name (a HEPData patchset's patch),
measurement (default: the first), normsys_interp ("code1" | "code4"), histosys_interp
("code0" | "code4p"). Raises lepus.InputError (an OSError and a ValueError) with the reader's message
for a missing, unreadable or invalid file; the reader's warnings are issued as UserWarning.)");
}
