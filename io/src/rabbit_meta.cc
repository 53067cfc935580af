// rabbit's pickled `meta` into lepus channels (rabbit_meta.h). The axis layouts mirror
// boost-histogram's pickling, which the fixtures of tests/data/rabbit_meta reproduce:
//   * the Python wrappers (boost_histogram/axis/__init__.py, class Axis: __getstate__ returns
//     {"_ax": <core axis>}; hist/axis/__init__.py subclasses them and keeps "name" and "label"
//     in the core axis' metadata dict) are pickled by object.__reduce_ex__: NEWOBJ(cls, ()) +
//     BUILD({"_ax": core});
//   * the core axes (include/bh_python/register_axis.hpp, make_pickle.hpp: tuple_oarchive over
//     Boost.Histogram's serialize()) are NEWOBJ(boost_histogram._core.axis.<type>, ()) + BUILD
//     of a flat tuple: the class version (0), then the members in serialize() order, a version
//     before every non-primitive member (the transform), std::vector<arithmetic> as a numpy
//     array, std::vector<std::string> as its size followed by the strings.
#include "rabbit_meta.h"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "format_util.h"
#include "lepus/io/internal/hdf5_util.h"

namespace lepus::io {

namespace {

using pickle::Document;
using pickle::Kind;
using pickle::kNoNode;
using pickle::NodeId;

[[noreturn]] void Bad(const std::string& what) { throw std::invalid_argument(what); }

std::string Typed(const Document& doc, NodeId id) {
  return pickle::Describe(doc, id) + " (" + pickle::KindName(doc[id].kind) + ")";
}

// The flow options of each core axis type (include/bh_python/axis.hpp: the option sets of the
// type aliases; Boost.Histogram's default for regular/variable/integer is underflow|overflow,
// for category overflow; bh_python's circular_t is circular|overflow for regular/variable, and
// integer_circular uses Boost's circular only).
struct CoreType {
  enum Family {
    kRegular,
    kRegularPow,
    kRegularTrans,
    kRegularNumpy,
    kVariable,
    kInteger,
    kCategoryInt,
    kCategoryStr,
    kBoolean
  } family;
  bool underflow, overflow;
};

const std::map<std::string, CoreType>& CoreTypes() {
  static const std::map<std::string, CoreType> types{
      {"regular_none", {CoreType::kRegular, false, false}},
      {"regular_uflow", {CoreType::kRegular, true, false}},
      {"regular_oflow", {CoreType::kRegular, false, true}},
      {"regular_uoflow", {CoreType::kRegular, true, true}},
      {"regular_uoflow_growth", {CoreType::kRegular, true, true}},
      {"regular_circular", {CoreType::kRegular, false, true}},
      {"regular_numpy", {CoreType::kRegularNumpy, true, true}},
      {"regular_pow", {CoreType::kRegularPow, true, true}},
      {"regular_trans", {CoreType::kRegularTrans, true, true}},
      {"variable_none", {CoreType::kVariable, false, false}},
      {"variable_uflow", {CoreType::kVariable, true, false}},
      {"variable_oflow", {CoreType::kVariable, false, true}},
      {"variable_uoflow", {CoreType::kVariable, true, true}},
      {"variable_uoflow_growth", {CoreType::kVariable, true, true}},
      {"variable_circular", {CoreType::kVariable, false, true}},
      {"integer_none", {CoreType::kInteger, false, false}},
      {"integer_uflow", {CoreType::kInteger, true, false}},
      {"integer_oflow", {CoreType::kInteger, false, true}},
      {"integer_uoflow", {CoreType::kInteger, true, true}},
      {"integer_growth", {CoreType::kInteger, false, false}},
      {"integer_circular", {CoreType::kInteger, false, false}},
      {"category_int", {CoreType::kCategoryInt, false, true}},
      {"category_int_growth", {CoreType::kCategoryInt, false, false}},
      {"category_int_none", {CoreType::kCategoryInt, false, false}},
      {"category_str", {CoreType::kCategoryStr, false, true}},
      {"category_str_growth", {CoreType::kCategoryStr, false, false}},
      {"category_str_none", {CoreType::kCategoryStr, false, false}},
      {"boolean", {CoreType::kBoolean, false, false}},
  };
  return types;
}

const std::set<std::string>& WrapperClasses() {
  static const std::set<std::string> classes{"hist.axis.Regular",
                                             "hist.axis.Variable",
                                             "hist.axis.Integer",
                                             "hist.axis.IntCategory",
                                             "hist.axis.StrCategory",
                                             "hist.axis.Boolean",
                                             "boost_histogram.axis.Regular",
                                             "boost_histogram.axis.Variable",
                                             "boost_histogram.axis.Integer",
                                             "boost_histogram.axis.IntCategory",
                                             "boost_histogram.axis.StrCategory",
                                             "boost_histogram.axis.Boolean"};
  return classes;
}

const std::string kCorePrefix = "boost_histogram._core.axis.";

// Reads the flat serialization tuple in order.
class Archive {
 public:
  Archive(const Document& doc, NodeId tuple, std::string what)
      : doc_(doc), items_(doc[tuple].items), what_(std::move(what)) {}
  NodeId Next(const char* member) {
    if (pos_ >= items_.size())
      Bad(what_ + " state has " + std::to_string(items_.size()) + " entries, but " + member +
          " (entry " + std::to_string(pos_) + ") is missing");
    return items_[pos_++];
  }
  std::int64_t Int(const char* member) {
    const NodeId id = Next(member);
    if (doc_[id].kind != Kind::kInt)
      Bad(what_ + " " + member + " is " + Typed(doc_, id) + ", but must be an int");
    return doc_[id].integer;
  }
  double Real(const char* member) {
    const NodeId id = Next(member);
    if (doc_[id].kind == Kind::kFloat) return doc_[id].real;
    if (doc_[id].kind == Kind::kInt) return static_cast<double>(doc_[id].integer);
    Bad(what_ + " " + member + " is " + Typed(doc_, id) + ", but must be a float");
  }
  void Version(const char* member) {
    const std::int64_t v = Int(member);
    if (v != 0)
      Bad(what_ + " " + member + " is " + std::to_string(v) +
          ", but this lepus reads serialization version 0 only");
  }
  void Done() const {
    if (pos_ != items_.size())
      Bad(what_ + " state has " + std::to_string(items_.size()) + " entries, but " +
          std::to_string(pos_) + " were expected");
  }

 private:
  const Document& doc_;
  const std::vector<NodeId>& items_;
  std::string what_;
  std::size_t pos_ = 0;
};

void ReadMetadata(const Document& doc, NodeId meta, const std::string& what, PickledAxis* ax) {
  if (doc[meta].kind != Kind::kDict)
    Bad(what + " metadata is " + Typed(doc, meta) + ", but must be a dict");
  if (NodeId n = pickle::DictGet(doc, meta, "name"); n != kNoNode && doc[n].kind == Kind::kStr)
    ax->name = doc[n].text;
  if (NodeId l = pickle::DictGet(doc, meta, "label"); l != kNoNode && doc[l].kind == Kind::kStr)
    ax->label = doc[l].text;
}

std::vector<double> RegularEdges(std::int64_t n, double min, double delta,
                                 double (*inverse)(double, double), double power) {
  // Boost.Histogram regular::value(i): z = i / n, (1 - z) * min + z * (min + delta), then the
  // transform's inverse.
  std::vector<double> edges;
  for (std::int64_t i = 0; i <= n; ++i) {
    const double z = static_cast<double>(i) / static_cast<double>(n);
    const double x = (1.0 - z) * min + z * (min + delta);
    edges.push_back(inverse ? inverse(x, power) : x);
  }
  return edges;
}

void ReadSize(Archive& ar, const std::string& what, PickledAxis* ax) {
  ax->size = ar.Int("size");
  if (ax->size < 0 || ax->size > (std::int64_t{1} << 31))
    Bad(what + " size is " + std::to_string(ax->size) + ", but must be in [0, 2^31]");
}

}  // namespace

PickledAxis DecodeAxis(const Document& doc, NodeId id) {
  PickledAxis ax;
  std::string cls = pickle::ClassName(doc, id);
  NodeId core = id;
  if (WrapperClasses().count(cls) != 0) {
    ax.python_class = cls;
    const pickle::Node& n = doc[id];
    const NodeId inner = n.state == kNoNode ? kNoNode : pickle::DictGet(doc, n.state, "_ax");
    if (inner == kNoNode)
      Bad(cls + " state is " + (n.state == kNoNode ? std::string("missing") : Typed(doc, n.state)) +
          ", but must be a dict with the core axis under \"_ax\"");
    core = inner;
    cls = pickle::ClassName(doc, core);
  }
  if (cls.compare(0, kCorePrefix.size(), kCorePrefix) != 0 || doc[core].kind != Kind::kObject)
    Bad(pickle::Describe(doc, id) +
        " is not a histogram axis (hist.axis / boost_histogram.axis Regular, Variable, Integer, "
        "IntCategory, StrCategory or Boolean)");
  ax.core_class = cls.substr(kCorePrefix.size());
  if (ax.python_class.empty()) ax.python_class = cls;
  auto type = CoreTypes().find(ax.core_class);
  if (type == CoreTypes().end()) Bad(cls + " is not a known boost-histogram axis type");
  ax.underflow = type->second.underflow;
  ax.overflow = type->second.overflow;
  const NodeId state = doc[core].state;
  const std::string what = ax.core_class;
  if (state == kNoNode || doc[state].kind != Kind::kTuple)
    Bad(what + " state is " + (state == kNoNode ? std::string("missing") : Typed(doc, state)) +
        ", but must be the tuple of its serialization");
  Archive ar(doc, state, what);
  ar.Version("version");
  switch (type->second.family) {
    case CoreType::kRegular:
    case CoreType::kRegularNumpy:
    case CoreType::kRegularPow:
    case CoreType::kRegularTrans: {
      ar.Version("transform version");
      double power = 1.0;
      double (*inverse)(double, double) = nullptr;
      if (type->second.family == CoreType::kRegularPow) {
        power = ar.Real("power");
        if (!(std::isfinite(power) && power != 0.0))
          Bad(what + " power is " + detail::Num(power) + ", but must be finite and non-zero");
        inverse = [](double x, double p) { return std::pow(x, 1.0 / p); };
      } else if (type->second.family == CoreType::kRegularTrans) {
        // func_transform: forward, inverse, convert, name (boost_histogram/axis/transform.py:
        // log = Function("_log_fn", "_exp_fn", ...), sqrt = Function("_sqrt_fn", "_sq_fn", ...)).
        const NodeId fwd = ar.Next("forward");
        const NodeId inv = ar.Next("inverse");
        ar.Next("convert");
        const NodeId name = ar.Next("name");
        auto text = [&](NodeId v) { return doc[v].kind == Kind::kStr ? doc[v].text : ""; };
        if (text(fwd) == "_log_fn" && text(inv) == "_exp_fn") {
          inverse = [](double x, double) { return std::exp(x); };
        } else if (text(fwd) == "_sqrt_fn" && text(inv) == "_sq_fn") {
          inverse = [](double x, double) { return x * x; };
        } else {
          ax.note = "transform " + pickle::Describe(doc, name) +
                    " is not log or sqrt, so its edges cannot be computed";
        }
      }
      ReadSize(ar, what, &ax);
      ReadMetadata(doc, ar.Next("metadata"), what, &ax);
      const double min = ar.Real("min");
      const double delta = ar.Real("delta");
      if (type->second.family == CoreType::kRegularNumpy) ar.Real("stop");
      if (ax.note.empty()) ax.edges = RegularEdges(ax.size, min, delta, inverse, power);
      break;
    }
    case CoreType::kVariable: {
      pickle::NdArray edges;
      const NodeId seq = ar.Next("edges");
      if (!pickle::DecodeNdArray(doc, seq, &edges) || edges.scalar || edges.shape.size() != 1)
        Bad(what + " edges are " + Typed(doc, seq) + ", but must be a 1-D numpy array");
      ax.edges = edges.values;
      ax.size = static_cast<std::int64_t>(ax.edges.size()) - 1;
      if (ax.size < 1)
        Bad(what + " has " + std::to_string(ax.edges.size()) + " edges, but must have >= 2");
      ReadMetadata(doc, ar.Next("metadata"), what, &ax);
      break;
    }
    case CoreType::kInteger:
    case CoreType::kBoolean: {
      ReadSize(ar, what, &ax);
      ReadMetadata(doc, ar.Next("metadata"), what, &ax);
      const std::int64_t min = ar.Int("min");
      if (min < -(std::int64_t{1} << 31) || min > (std::int64_t{1} << 31))
        Bad(what + " min is " + std::to_string(min) + ", but must fit a 32-bit int");
      for (std::int64_t i = 0; i <= ax.size; ++i) ax.edges.push_back(static_cast<double>(min + i));
      if (type->second.family == CoreType::kBoolean) {
        ax.category = true;
        for (std::int64_t i = 0; i < ax.size; ++i)
          ax.categories.push_back(min + i == 0 ? "False" : "True");
      }
      break;
    }
    case CoreType::kCategoryInt: {
      pickle::NdArray cats;
      const NodeId seq = ar.Next("categories");
      if (!pickle::DecodeNdArray(doc, seq, &cats) || !cats.integral || cats.shape.size() != 1)
        Bad(what + " categories are " + Typed(doc, seq) +
            ", but must be a 1-D integer numpy array");
      ax.category = true;
      for (std::int64_t c : cats.ints) ax.categories.push_back(std::to_string(c));
      ax.size = static_cast<std::int64_t>(ax.categories.size());
      ReadMetadata(doc, ar.Next("metadata"), what, &ax);
      break;
    }
    case CoreType::kCategoryStr: {
      const std::int64_t n = ar.Int("number of categories");
      if (n < 0 || n > (std::int64_t{1} << 31))
        Bad(what + " number of categories is " + std::to_string(n) + ", but must be in [0, 2^31]");
      ax.category = true;
      for (std::int64_t i = 0; i < n; ++i) {
        const NodeId s = ar.Next("category");
        if (doc[s].kind != Kind::kStr)
          Bad(what + " category " + std::to_string(i) + " is " + Typed(doc, s) +
              ", but must be a str");
        ax.categories.push_back(doc[s].text);
      }
      ax.size = n;
      ReadMetadata(doc, ar.Next("metadata"), what, &ax);
      break;
    }
  }
  ar.Done();
  if (ax.category) {
    ax.edges.clear();
    for (std::int64_t i = 0; i <= ax.size; ++i) ax.edges.push_back(static_cast<double>(i));
  }
  for (std::size_t i = 0; i < ax.edges.size(); ++i) {
    if (!std::isfinite(ax.edges[i]))
      Bad(what + " edge " + std::to_string(i) + " is " + detail::Num(ax.edges[i]) +
          ", but must be finite");
    if (i > 0 && !(ax.edges[i] > ax.edges[i - 1]))
      Bad(what + " edge " + std::to_string(i) + " is " + detail::Num(ax.edges[i]) +
          ", but must be > the previous edge " + detail::Num(ax.edges[i - 1]));
  }
  return ax;
}

engine::Axis ToEngineAxis(const PickledAxis& ax, bool flow, std::size_t index) {
  engine::Axis out;
  out.name = ax.name.empty() ? "axis" + std::to_string(index) : ax.name;
  const bool with_flow = flow && (ax.underflow || ax.overflow);
  if (!ax.category && !with_flow) {
    out.edges = ax.edges;  // empty when the transform is unknown: integer bins
    return out;
  }
  const std::int64_t extent =
      ax.size + (flow && ax.underflow ? 1 : 0) + (flow && ax.overflow ? 1 : 0);
  for (std::int64_t i = 0; i <= extent; ++i) out.edges.push_back(static_cast<double>(i));
  if (flow && ax.underflow)
    out.labels.push_back(ax.edges.empty() ? "underflow"
                                          : "underflow (< " + detail::Num(ax.edges.front()) + ")");
  for (std::int64_t i = 0; i < ax.size; ++i) {
    if (ax.category) {
      out.labels.push_back(ax.categories[static_cast<std::size_t>(i)]);
    } else if (ax.edges.empty()) {
      out.labels.push_back(std::to_string(i));
    } else {
      std::string label = "[";  // (not "[" + ...: GCC 12 warns -Wrestrict on that)
      label += detail::Num(ax.edges[static_cast<std::size_t>(i)]);
      label += ", ";
      label += detail::Num(ax.edges[static_cast<std::size_t>(i) + 1]);
      label += ")";
      out.labels.push_back(label);
    }
  }
  if (flow && ax.overflow)
    out.labels.push_back(ax.category || ax.edges.empty()
                             ? std::string("overflow")
                             : "overflow (>= " + detail::Num(ax.edges.back()) + ")");
  return out;
}

namespace {

bool Bool(const Document& doc, NodeId id, const std::string& key) {
  if (doc[id].kind == Kind::kBool) return doc[id].boolean;
  pickle::NdArray a;  // numpy.bool_ scalars are fine too
  if (doc[id].kind == Kind::kObject && pickle::DecodeNdArray(doc, id, &a) && a.scalar &&
      a.dtype == "|b1")
    return a.ints.front() != 0;
  Bad(key + " is " + Typed(doc, id) + ", but must be True or False");
}

std::string KeyText(const Document& doc, NodeId k) {
  return doc[k].kind == Kind::kStr ? doc[k].text : pickle::Describe(doc, k);
}

}  // namespace

RabbitMeta InterpretRabbitMeta(const Document& doc, const pickle::Limits& limits) {
  RabbitMeta out;
  const NodeId root = doc.root();
  if (doc[root].kind != Kind::kDict)
    Bad("the pickled object is " + Typed(doc, root) + ", but must be a dict");
  NodeId channel_info = kNoNode;
  std::vector<std::string> unknown_keys;
  for (const auto& [k, v] : pickle::DictItems(doc, root)) {
    const std::string key = KeyText(doc, k);
    // A key that is not a string is as unknown as an unknown name (the last branch).
    if (doc[k].kind != Kind::kStr) {  // NOLINT(bugprone-branch-clone)
      unknown_keys.push_back(key);
    } else if (key == "channel_info") {
      channel_info = v;
    } else if (key == "systematic_type") {
      if (doc[v].kind != Kind::kStr)
        Bad("systematic_type is " + Typed(doc, v) + ", but must be 'log_normal' or 'normal'");
      if (doc[v].text == "log_normal" || doc[v].text == "lognormal") {
        out.type = engine::SystematicType::kLogNormal;
      } else if (doc[v].text == "normal") {
        out.type = engine::SystematicType::kNormal;
      } else {
        Bad("systematic_type is " + pickle::Describe(doc, v) +
            ", but must be 'log_normal' or 'normal'");
      }
      out.has_type = true;
    } else if (key == "symmetric_tensor") {
      out.symmetric_tensor = Bool(doc, v, "symmetric_tensor") ? 1 : 0;
    } else if (key == "meta_info") {
      std::vector<std::string> unknown;
      out.meta_info_json = pickle::ToJson(doc, v, limits.max_depth, &unknown).dump();
      for (const auto& u : unknown)
        out.warnings.push_back("meta: meta_info holds " + u +
                               ", which is not decoded (shown by its class name)");
    } else if (key == "exponential_transform") {
      // rabbit refuses files with this flag set (removed functionality); so do we.
      if (doc[v].kind != Kind::kBool || doc[v].boolean)
        Bad("exponential_transform is " + Typed(doc, v) +
            ", but rabbit removed that functionality (use systematic_type 'normal')");
    } else {
      unknown_keys.push_back(key);
    }
  }
  if (!unknown_keys.empty()) {
    std::string list;
    for (const auto& k : unknown_keys) list += (list.empty() ? "" : ", ") + detail::Quote(k);
    out.warnings.push_back("meta: unknown keys " + list + " are not used");
  }
  if (channel_info == kNoNode)
    Bad("channel_info is missing, but is required (rabbit's TensorWriter always writes it)");
  if (doc[channel_info].kind != Kind::kDict)
    Bad("channel_info is " + Typed(doc, channel_info) + ", but must be a dict");

  for (const auto& [k, v] : pickle::DictItems(doc, channel_info)) {
    if (doc[k].kind != Kind::kStr)
      Bad("channel_info has the key " + Typed(doc, k) + ", but channel names must be str");
    const std::string cname = doc[k].text;
    const std::string key = "channel_info[" + detail::Quote(cname) + "]";
    if (doc[v].kind != Kind::kDict) Bad(key + " is " + Typed(doc, v) + ", but must be a dict");
    engine::Channel ch;
    ch.name = cname;
    bool flow = false;
    NodeId axes = kNoNode;
    std::vector<std::string> unknown;
    for (const auto& [ck, cv] : pickle::DictItems(doc, v)) {
      const std::string ckey = KeyText(doc, ck);
      if (doc[ck].kind == Kind::kStr && ckey == "axes")
        axes = cv;
      else if (doc[ck].kind == Kind::kStr && ckey == "masked")
        ch.masked = Bool(doc, cv, key + ".masked");
      else if (doc[ck].kind == Kind::kStr && ckey == "flow")
        flow = Bool(doc, cv, key + ".flow");
      else
        unknown.push_back(detail::Quote(ckey));
    }
    if (!unknown.empty()) {
      std::string list;
      for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
      out.warnings.push_back("meta: " + key + " has unknown keys " + list + ", which are not used");
    }
    if (axes == kNoNode) Bad(key + ".axes is missing, but is required");
    if (doc[axes].kind != Kind::kList && doc[axes].kind != Kind::kTuple)
      Bad(key + ".axes is " + Typed(doc, axes) + ", but must be a list of axes");
    std::int64_t nbins = 1;
    for (std::size_t a = 0; a < doc[axes].items.size(); ++a) {
      const std::string akey = key + ".axes[" + std::to_string(a) + "]";
      PickledAxis pa;
      try {
        pa = DecodeAxis(doc, doc[axes].items[a]);
      } catch (const std::invalid_argument& e) {
        Bad(akey + ": " + e.what());
      }
      if (!pa.note.empty())
        out.warnings.push_back("meta: " + akey + " (" + detail::Quote(pa.name) + "): " + pa.note +
                               "; using integer bins");
      const std::int64_t n =
          pa.size + (flow && pa.underflow ? 1 : 0) + (flow && pa.overflow ? 1 : 0);
      if (!h5::CheckedMultiply(nbins, n, &nbins))
        Bad(key + ".axes: the bins of the axes multiply to more than 2^63");
      ch.axes.push_back(ToEngineAxis(pa, flow, a));
    }
    if (nbins <= 0)
      Bad(key + " has " + std::to_string(nbins) + " bins, but must have at least one");
    ch.nbins = nbins;
    out.channels.push_back(std::move(ch));
    out.channel_keys.push_back("meta: " + key);
  }
  return out;
}

}  // namespace lepus::io
