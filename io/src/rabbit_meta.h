// rabbit's pickled metadata (the `meta` group of its fit inputs) interpreted into lepus
// channels, private to lepus::io. docs/format.md section 3 ("rabbit's pickled meta").
//
// rabbit (rabbit/tensorwriter.py, TensorWriter.write) stores
//   {"channel_info": {name: {"axes": [hist / boost_histogram axes], "masked": bool,
//                            "flow": bool}},
//    "symmetric_tensor": bool, "systematic_type": "log_normal" | "normal",
//    "meta_info": {...provenance...}, ...whatever the user passed}
// through wums.ioutils.pickle_dump_h5py: a group `meta` with the attribute
// `narf_h5py_pickle_protocol_version` (1) holding the pickle bytes (protocol 5) in the uint8
// dataset `meta/pickle_data`.
#pragma once

#include <string>
#include <vector>

#include "lepus/engine/model.h"
#include "pickle.h"

namespace lepus::io {

// One decoded histogram axis (hist.axis.* / boost_histogram.axis.* wrapping a
// boost_histogram._core.axis.* object).
struct PickledAxis {
  std::string python_class;  // "hist.axis.Regular", ...
  std::string core_class;    // "regular_uoflow", ...
  std::string name, label;   // from the axis metadata dict ("" when absent)
  std::int64_t size = 0;     // bins without flow
  bool underflow = false, overflow = false;
  bool category = false;      // category or boolean axis: `categories` holds one label per bin
  std::vector<double> edges;  // size + 1 bin edges; empty when they cannot be computed
  std::vector<std::string> categories;
  std::string note;  // why edges are missing (an unknown transform), else ""
};

// Decodes an axis object. Throws std::invalid_argument (a message without file context) when
// `id` is not a known axis or its serialized state does not have the expected layout.
PickledAxis DecodeAxis(const pickle::Document& doc, pickle::NodeId id);

// The engine axis of a channel: regular/variable/integer axes without flow bins keep their
// edges; category axes and axes whose flow bins are part of the channel (rabbit's flow=True)
// get index edges 0, 1, ..., extent and one label per bin.
engine::Axis ToEngineAxis(const PickledAxis& axis, bool flow, std::size_t index);

struct RabbitMeta {
  std::vector<engine::Channel> channels;  // in channel_info (= tensor row) order
  std::vector<std::string> channel_keys;  // "meta: channel_info['name']" for messages
  bool has_type = false;
  engine::SystematicType type = engine::SystematicType::kLogNormal;
  int symmetric_tensor = -1;          // -1 absent, else 0 / 1
  std::string meta_info_json;         // meta_info as JSON, "" when absent
  std::vector<std::string> warnings;  // unknown keys and classes
};

// Interprets the decoded `meta` dict. Throws std::invalid_argument with a message of the form
// "channel_info['sig'].masked is 'yes' (str), but must be True or False".
RabbitMeta InterpretRabbitMeta(const pickle::Document& doc, const pickle::Limits& limits);

}  // namespace lepus::io
