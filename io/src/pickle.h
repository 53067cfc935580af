// A safe, data-only decoder of Python pickles (protocols 2-5), private to lepus::io. It reads the
// `meta` object that rabbit stores in its fit inputs (a pickled dict, written by
// wums.ioutils.pickle_dump_h5py; docs/format.md section 3).
//
// Nothing is ever executed or imported: the pickle virtual machine builds an inert graph of
// nodes. GLOBAL / STACK_GLOBAL give a kGlobal node (module + qualified name); REDUCE, NEWOBJ and
// NEWOBJ_EX give a kObject node (callable + args [+ kwargs]) to which BUILD attaches the state
// and APPEND(S) / SETITEM(S) the items, exactly as the real unpickler would pass them to Python.
// A second stage interprets a whitelist of known classes from that graph (numpy arrays and
// scalars here; the histogram axes in rabbit_meta.cc); anything else stays an inert node that
// the caller reports.
//
// Every input-controlled size is bounded (Limits), and every error is a PickleError naming the
// byte offset and the opcode. Refused: the text opcodes of protocols 0/1 (INT, LONG, FLOAT,
// STRING, UNICODE, GET, PUT, INST, OBJ, PERSID), EXT1/2/4 (the copyreg extension registry) and
// NEXT_BUFFER / READONLY_BUFFER (out-of-band buffers, which need the writer's buffer list).
// BINPERSID gives an inert kPersistent node (wums stores references to HDF5 objects that way; they
// are never resolved).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lepus::io::pickle {

struct Limits {
  std::size_t max_input_bytes = std::size_t{256} << 20;  // 256 MiB
  std::size_t max_nodes = std::size_t{1} << 24;          // values created
  std::size_t max_memo = std::size_t{1} << 24;           // memo entries
  std::size_t max_container = std::size_t{1} << 24;      // items of one container; stack size
  std::size_t max_depth = 256;  // open MARKs while decoding; nesting when interpreting
};

// "byte <offset>, opcode <NAME> (0x<code>): <what>"
class PickleError : public std::runtime_error {
 public:
  PickleError(std::size_t offset, int opcode, const std::string& what);
  std::size_t offset() const { return offset_; }
  int opcode() const { return opcode_; }  // -1: not at an opcode

 private:
  std::size_t offset_;
  int opcode_;
};

using NodeId = std::uint32_t;
inline constexpr NodeId kNoNode = 0xffffffffu;

enum class Kind : std::uint8_t {
  kNone,
  kBool,
  kInt,
  kBigInt,
  kFloat,
  kStr,
  kBytes,
  kByteArray,
  kTuple,
  kList,
  kDict,
  kSet,
  kFrozenSet,
  kGlobal,
  kObject,
  kPersistent
};
const char* KindName(Kind kind);  // Python's name: "NoneType", "int", "str", "tuple", ...

struct Node {
  Kind kind = Kind::kNone;
  bool boolean = false;
  std::int64_t integer = 0;
  double real = 0.0;
  // kStr (UTF-8), kBytes, kByteArray: the content; kBigInt: little-endian two's complement
  // bytes of an integer outside int64; kGlobal: the module.
  std::string text;
  std::string name;  // kGlobal: the qualified name
  // kTuple, kList, kSet, kFrozenSet: the elements; kDict: key, value, key, value, ... in
  // insertion order (use DictItems for Python's semantics of repeated keys); kObject: the items
  // passed by APPEND(S).
  std::vector<NodeId> items;
  std::vector<NodeId> dict_items;  // kObject: key, value, ... passed by SETITEM(S)
  NodeId callable = kNoNode;       // kObject: the class or function (usually a kGlobal)
  NodeId args = kNoNode;           // kObject: the argument tuple; kPersistent: the persistent id
  NodeId kwargs = kNoNode;         // kObject: NEWOBJ_EX keyword arguments
  NodeId state = kNoNode;          // kObject: the BUILD state
  bool newobj = false;             // kObject: made by NEWOBJ / NEWOBJ_EX (cls.__new__)
  std::size_t offset = 0;          // byte offset of the opcode that made the node
};

class Document {
 public:
  const Node& operator[](NodeId id) const { return nodes_.at(id); }
  NodeId root() const { return root_; }
  std::size_t size() const { return nodes_.size(); }
  int protocol() const { return protocol_; }

 private:
  friend class Machine;
  std::vector<Node> nodes_;
  NodeId root_ = kNoNode;
  int protocol_ = 0;
};

// Decodes a complete pickle (PROTO 2-5 ... STOP, nothing after it). Throws PickleError.
Document Decode(const std::uint8_t* data, std::size_t size, const Limits& limits = {});

// ---- second stage: reading the graph --------------------------------------------------------

// "module.name" of a kGlobal node, of the callable of a kObject node (when it is a kGlobal);
// "" otherwise.
std::string GlobalName(const Document& doc, NodeId id);
// The class of an object: for an object made by copyreg.__newobj__-style NEWOBJ, or REDUCE of a
// class, the callable's GlobalName.
inline std::string ClassName(const Document& doc, NodeId id) { return GlobalName(doc, id); }

// A dict's items with Python's semantics: a repeated key (equal str, int/bool/integral float,
// bytes, None, or tuples of these) replaces the value at the key's first position. Works on
// kDict nodes and on the SETITEM items of kObject nodes.
std::vector<std::pair<NodeId, NodeId>> DictItems(const Document& doc, NodeId id);
// Looks up a str key of a kDict; kNoNode when absent.
NodeId DictGet(const Document& doc, NodeId dict, const std::string& key);

// A short Python-like description for messages: 'abc', 12, 1.5, True, None, <tuple of 3>,
// <hist.axis.Regular object>; at most about 60 characters.
std::string Describe(const Document& doc, NodeId id);

// Bytes content: kBytes, kByteArray, and _codecs.encode(str, "latin1") (how protocol 2 pickles
// bytes). Returns false if `id` is none of these.
bool BytesValue(const Document& doc, NodeId id, std::string* out);

// numpy arrays (numpy[._]core.multiarray._reconstruct + ndarray state, or
// numpy[._]core.numeric._frombuffer of protocol 5) and numpy scalars
// (numpy[._]core.multiarray.scalar), for boolean, integer and floating-point dtypes.
struct NdArray {
  std::string dtype;                // numpy's type string, e.g. "<f8", "|b1"
  bool integral = false;            // bool / int / uint dtype: `ints` is filled as well
  bool scalar = false;              // a numpy scalar (shape empty)
  std::vector<std::int64_t> shape;  // C order
  std::vector<double> values;       // C order, converted to double
  std::vector<std::int64_t> ints;   // C order, integral dtypes (uint64 above 2^63-1 refused)
};
// Returns false when `id` is not a numpy array or scalar at all; throws std::invalid_argument
// (with a message without file context) for a numpy array that cannot be decoded (an
// unsupported dtype, a size mismatch, object arrays, ...).
bool DecodeNdArray(const Document& doc, NodeId id, NdArray* out);

// JSON rendering for provenance (insertion order kept): None -> null, bool, int (big ints as
// decimal-free strings "<int of N bytes>"), float (non-finite as "nan"/"inf"/"-inf" strings),
// str, bytes -> "<bytes of N>" (printable ASCII content shown when short), tuple/list/set ->
// array, dict -> object (non-str keys rendered with Describe), numpy arrays/scalars -> numbers,
// anything else -> {"__class__": "module.name"} and the class name appended to *unknown.
// Nesting beyond max_depth (or a reference cycle) is rendered as "<too deep>" and reported.
nlohmann::ordered_json ToJson(const Document& doc, NodeId id, std::size_t max_depth,
                              std::vector<std::string>* unknown);

}  // namespace lepus::io::pickle
