// The pickle virtual machine of pickle.h: Python's Lib/pickle.py `_Unpickler` opcode by opcode,
// with every action that would call Python replaced by an inert node.
#include "pickle.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include "format_util.h"
#include "lepus/io/internal/hdf5_util.h"

namespace lepus::io::pickle {

namespace {

const char* OpcodeName(int op) {
  switch (op) {
    case '(':
      return "MARK";
    case '.':
      return "STOP";
    case '0':
      return "POP";
    case '1':
      return "POP_MARK";
    case '2':
      return "DUP";
    case 'F':
      return "FLOAT";
    case 'I':
      return "INT";
    case 'J':
      return "BININT";
    case 'K':
      return "BININT1";
    case 'L':
      return "LONG";
    case 'M':
      return "BININT2";
    case 'N':
      return "NONE";
    case 'P':
      return "PERSID";
    case 'Q':
      return "BINPERSID";
    case 'R':
      return "REDUCE";
    case 'S':
      return "STRING";
    case 'T':
      return "BINSTRING";
    case 'U':
      return "SHORT_BINSTRING";
    case 'V':
      return "UNICODE";
    case 'X':
      return "BINUNICODE";
    case 'a':
      return "APPEND";
    case 'b':
      return "BUILD";
    case 'c':
      return "GLOBAL";
    case 'd':
      return "DICT";
    case '}':
      return "EMPTY_DICT";
    case 'e':
      return "APPENDS";
    case 'g':
      return "GET";
    case 'h':
      return "BINGET";
    case 'i':
      return "INST";
    case 'j':
      return "LONG_BINGET";
    case 'l':
      return "LIST";
    case ']':
      return "EMPTY_LIST";
    case 'o':
      return "OBJ";
    case 'p':
      return "PUT";
    case 'q':
      return "BINPUT";
    case 'r':
      return "LONG_BINPUT";
    case 's':
      return "SETITEM";
    case 't':
      return "TUPLE";
    case ')':
      return "EMPTY_TUPLE";
    case 'u':
      return "SETITEMS";
    case 'G':
      return "BINFLOAT";
    case 0x80:
      return "PROTO";
    case 0x81:
      return "NEWOBJ";
    case 0x82:
      return "EXT1";
    case 0x83:
      return "EXT2";
    case 0x84:
      return "EXT4";
    case 0x85:
      return "TUPLE1";
    case 0x86:
      return "TUPLE2";
    case 0x87:
      return "TUPLE3";
    case 0x88:
      return "NEWTRUE";
    case 0x89:
      return "NEWFALSE";
    case 0x8a:
      return "LONG1";
    case 0x8b:
      return "LONG4";
    case 'B':
      return "BINBYTES";
    case 'C':
      return "SHORT_BINBYTES";
    case 0x8c:
      return "SHORT_BINUNICODE";
    case 0x8d:
      return "BINUNICODE8";
    case 0x8e:
      return "BINBYTES8";
    case 0x8f:
      return "EMPTY_SET";
    case 0x90:
      return "ADDITEMS";
    case 0x91:
      return "FROZENSET";
    case 0x92:
      return "NEWOBJ_EX";
    case 0x93:
      return "STACK_GLOBAL";
    case 0x94:
      return "MEMOIZE";
    case 0x95:
      return "FRAME";
    case 0x96:
      return "BYTEARRAY8";
    case 0x97:
      return "NEXT_BUFFER";
    case 0x98:
      return "READONLY_BUFFER";
    default:
      return nullptr;
  }
}

std::string Hex(int byte) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[(byte >> 4) & 15] + digits[byte & 15];
}

std::string Message(std::size_t offset, int opcode, const std::string& what) {
  std::string s = "byte " + std::to_string(offset);
  if (opcode >= 0) {
    const char* name = OpcodeName(opcode);
    s += std::string(", opcode ") + (name ? name : "unknown") + " (" + Hex(opcode) + ")";
  }
  return s + ": " + what;
}

}  // namespace

PickleError::PickleError(std::size_t offset, int opcode, const std::string& what)
    : std::runtime_error(Message(offset, opcode, what)), offset_(offset), opcode_(opcode) {}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
    case Kind::kBigInt:  // Python has one int type
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kByteArray:
      return "bytearray";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kSet:
      return "set";
    case Kind::kFrozenSet:
      return "frozenset";
    case Kind::kGlobal:
      return "global";
    case Kind::kObject:
      return "object";
    case Kind::kPersistent:
      return "persistent reference";
  }
  return "?";
}

// ---- the machine ----------------------------------------------------------------------------

class Machine {
 public:
  Machine(const std::uint8_t* data, std::size_t size, const Limits& limits)
      : data_(data), size_(size), limits_(limits) {}

  Document Run() {
    if (size_ > limits_.max_input_bytes)
      throw PickleError(0, -1,
                        "the pickle has " + std::to_string(size_) + " bytes, but at most " +
                            std::to_string(limits_.max_input_bytes) + " are accepted");
    if (size_ == 0) throw PickleError(0, -1, "the pickle is empty, but must start with PROTO");
    while (true) {
      if (pos_ >= size_) throw PickleError(pos_, -1, "the pickle ends without STOP (truncated)");
      op_pos_ = pos_;
      op_ = data_[pos_++];
      if (op_pos_ == 0 && op_ != 0x80)
        Fail(
            "the pickle must start with PROTO (protocols 2-5); protocols 0 and 1 are not "
            "supported");
      if (Step()) break;
    }
    if (pos_ != size_)
      throw PickleError(
          pos_, -1,
          std::to_string(size_ - pos_) + " bytes follow STOP, but the pickle must end there");
    return std::move(doc_);
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const { throw PickleError(op_pos_, op_, what); }

  // ---- reading the argument bytes ----
  const std::uint8_t* Take(std::uint64_t n) {
    if (n > size_ - pos_)
      Fail("truncated: needs " + std::to_string(n) + " more bytes, but only " +
           std::to_string(size_ - pos_) + " remain");
    const std::uint8_t* p = data_ + pos_;
    pos_ += static_cast<std::size_t>(n);
    return p;
  }
  std::uint64_t Unsigned(int nbytes) {
    const std::uint8_t* p = Take(static_cast<std::uint64_t>(nbytes));
    std::uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string Line() {  // GLOBAL's "module\n" and "name\n"
    const std::size_t start = pos_;
    while (pos_ < size_ && data_[pos_] != '\n') {
      if (pos_ - start >= 1024) Fail("a GLOBAL name is longer than 1024 bytes");
      ++pos_;
    }
    if (pos_ >= size_) Fail("truncated: a GLOBAL name line has no terminating newline");
    std::string s(reinterpret_cast<const char*>(data_ + start), pos_ - start);
    ++pos_;
    return s;
  }

  // ---- nodes and the stack ----
  NodeId New(Kind kind) {
    if (doc_.nodes_.size() >= limits_.max_nodes)
      Fail("the pickle creates more than " + std::to_string(limits_.max_nodes) + " values (limit)");
    Node n;
    n.kind = kind;
    n.offset = op_pos_;
    doc_.nodes_.push_back(std::move(n));
    return static_cast<NodeId>(doc_.nodes_.size() - 1);
  }
  Node& At(NodeId id) { return doc_.nodes_[id]; }
  void Push(NodeId id) {
    if (stack_.size() >= limits_.max_container)
      Fail("the stack holds more than " + std::to_string(limits_.max_container) +
           " values (limit)");
    stack_.push_back(id);
  }
  std::size_t Base() const { return marks_.empty() ? 0 : marks_.back(); }
  NodeId Pop() {
    if (stack_.size() <= Base())
      Fail(marks_.empty() ? std::string("the stack is empty")
                          : "the stack is empty above the MARK");
    const NodeId id = stack_.back();
    stack_.pop_back();
    return id;
  }
  NodeId& Top() {
    if (stack_.size() <= Base())
      Fail(marks_.empty() ? std::string("the stack is empty")
                          : "the stack is empty above the MARK");
    return stack_.back();
  }
  // Pops everything above the last MARK and the MARK itself.
  std::vector<NodeId> PopMark() {
    if (marks_.empty()) Fail("there is no MARK on the stack");
    const std::size_t base = marks_.back();
    marks_.pop_back();
    std::vector<NodeId> items(stack_.begin() + static_cast<std::ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
    return items;
  }
  void Grow(const std::vector<NodeId>& items, std::size_t add) {
    if (items.size() + add > limits_.max_container)
      Fail("a container would hold more than " + std::to_string(limits_.max_container) +
           " items (limit)");
  }
  std::string Desc(NodeId id) const { return Describe(doc_, id); }

  NodeId Str(std::string s, bool utf8_required) {
    std::size_t bad = 0;
    if (!h5::IsValidUtf8(s, &bad)) {
      if (utf8_required)
        Fail("the string " + detail::Quote(h5::EscapeBytes(s)) + " is not valid UTF-8 (byte " +
             std::to_string(bad) + ")");
      const NodeId id = New(Kind::kBytes);  // protocol 1 BINSTRING holding non-text bytes
      At(id).text = std::move(s);
      return id;
    }
    const NodeId id = New(Kind::kStr);
    At(id).text = std::move(s);
    return id;
  }
  NodeId Blob(Kind kind, const std::uint8_t* p, std::uint64_t n) {
    const NodeId id = New(kind);
    At(id).text.assign(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
    return id;
  }
  NodeId Int(std::int64_t v) {
    const NodeId id = New(Kind::kInt);
    At(id).integer = v;
    return id;
  }
  NodeId Long(const std::uint8_t* p, std::uint64_t n) {
    if (n == 0) return Int(0);
    if (n <= 8) {
      std::uint64_t u = 0;
      for (std::uint64_t i = n; i-- > 0;) u = (u << 8) | p[i];
      if (n < 8 && (p[n - 1] & 0x80)) u |= ~std::uint64_t{0} << (8 * n);  // sign-extend
      return Int(static_cast<std::int64_t>(u));
    }
    // Longer encodings may still hold an int64 value (redundant sign bytes).
    bool fits = true;
    const std::uint8_t fill = (p[n - 1] & 0x80) ? 0xff : 0x00;
    for (std::uint64_t i = 8; i < n; ++i) fits = fits && p[i] == fill;
    fits = fits && ((p[7] & 0x80) == (fill & 0x80));
    if (fits) return Long(p, 8);
    return Blob(Kind::kBigInt, p, n);
  }
  void Tuple(std::vector<NodeId> items) {
    const NodeId id = New(Kind::kTuple);
    At(id).items = std::move(items);
    Push(id);
  }
  void Memo(std::uint64_t key) {
    const NodeId top = Top();
    auto it = memo_.find(key);
    if (it == memo_.end() && memo_.size() >= limits_.max_memo)
      Fail("the memo holds more than " + std::to_string(limits_.max_memo) + " entries (limit)");
    memo_[key] = top;
  }
  void Get(std::uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) Fail("memo key " + std::to_string(key) + " is not defined");
    Push(it->second);
  }
  NodeId Global(std::string module, std::string name) {
    if (!h5::IsValidUtf8(module) || !h5::IsValidUtf8(name) || module.empty() || name.empty())
      Fail("the global " + detail::Quote(h5::EscapeBytes(module + "." + name)) +
           " is not a valid name");
    // Protocols 0-2 use the Python 2 module names of the builtins (Lib/_compat_pickle.py);
    // Python's unpickler maps them back (fix_imports), and so do we for the ones we interpret.
    if (doc_.protocol_ < 3 && module == "__builtin__") module = "builtins";
    if (doc_.protocol_ < 3 && module == "copy_reg") module = "copyreg";
    const NodeId id = New(Kind::kGlobal);
    At(id).text = std::move(module);
    At(id).name = std::move(name);
    return id;
  }
  NodeId Object(NodeId callable, NodeId args, NodeId kwargs, bool newobj) {
    const NodeId id = New(Kind::kObject);
    Node& n = At(id);
    n.callable = callable;
    n.args = args;
    n.kwargs = kwargs;
    n.newobj = newobj;
    return id;
  }
  void ExpectKind(NodeId id, Kind kind, const char* what) const {
    if (doc_[id].kind != kind)
      Fail(std::string(what) + " is " + Desc(id) + ", but must be a " + KindName(kind));
  }
  void Append(NodeId target, const std::vector<NodeId>& values) {
    Node& t = At(target);
    if (t.kind == Kind::kList || t.kind == Kind::kObject) {
      Grow(t.items, values.size());
      t.items.insert(t.items.end(), values.begin(), values.end());
    } else {
      Fail("appends to " + Desc(target) + ", but the target must be a list (or an object)");
    }
  }
  void SetItems(NodeId target, const std::vector<NodeId>& kv) {
    if (kv.size() % 2 != 0)
      Fail("has an odd number (" + std::to_string(kv.size()) + ") of keys and values");
    Node& t = At(target);
    std::vector<NodeId>* dest = nullptr;
    if (t.kind == Kind::kDict)
      dest = &t.items;
    else if (t.kind == Kind::kObject)
      dest = &t.dict_items;
    else
      Fail("sets items of " + Desc(target) + ", but the target must be a dict (or an object)");
    Grow(*dest, kv.size());
    dest->insert(dest->end(), kv.begin(), kv.end());
  }

  // Executes one opcode; returns true at STOP.
  bool Step() {
    switch (op_) {
      case 0x80: {  // PROTO
        const int proto = static_cast<int>(Unsigned(1));
        if (op_pos_ != 0) Fail("PROTO must be the first opcode");
        if (proto < 2 || proto > 5)
          Fail("protocol " + std::to_string(proto) + " is not supported (2-5 are)");
        doc_.protocol_ = proto;
        return false;
      }
      case 0x95: {  // FRAME: a length hint only
        const std::uint64_t n = Unsigned(8);
        if (n > size_ - pos_)
          Fail("truncated: the frame announces " + std::to_string(n) + " bytes, but only " +
               std::to_string(size_ - pos_) + " remain");
        return false;
      }
      case '.': {  // STOP
        if (!marks_.empty()) Fail(std::to_string(marks_.size()) + " MARKs are still open");
        if (stack_.size() != 1)
          Fail("the stack holds " + std::to_string(stack_.size()) + " values, but must hold one");
        doc_.root_ = stack_.back();
        return true;
      }
      case '(':  // MARK
        if (marks_.size() >= limits_.max_depth)
          Fail("more than " + std::to_string(limits_.max_depth) + " nested MARKs (limit)");
        marks_.push_back(stack_.size());
        return false;
      case '0':  // POP
        if (stack_.size() > Base())
          stack_.pop_back();
        else
          PopMark();
        return false;
      case '1':  // POP_MARK
        PopMark();
        return false;
      case '2':  // DUP
        Push(Top());
        return false;

      // ---- scalars ----
      case 'N':
        Push(New(Kind::kNone));
        return false;
      case 0x88:
      case 0x89: {
        const NodeId id = New(Kind::kBool);
        At(id).boolean = op_ == 0x88;
        Push(id);
        return false;
      }
      case 'J':
        Push(Int(static_cast<std::int32_t>(static_cast<std::uint32_t>(Unsigned(4)))));
        return false;
      case 'K':
        Push(Int(static_cast<std::int64_t>(Unsigned(1))));
        return false;
      case 'M':
        Push(Int(static_cast<std::int64_t>(Unsigned(2))));
        return false;
      case 0x8a: {  // LONG1
        const std::uint64_t n = Unsigned(1);
        Push(Long(Take(n), n));
        return false;
      }
      case 0x8b: {  // LONG4
        const std::uint64_t n = Unsigned(4);
        if (n & 0x80000000u) Fail("negative byte count");
        Push(Long(Take(n), n));
        return false;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE 754 double
        const std::uint8_t* p = Take(8);
        std::uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
        double v;
        std::memcpy(&v, &u, sizeof(v));
        const NodeId id = New(Kind::kFloat);
        At(id).real = v;
        Push(id);
        return false;
      }
      case 'X':     // BINUNICODE
      case 0x8c:    // SHORT_BINUNICODE
      case 0x8d: {  // BINUNICODE8
        const std::uint64_t n = Unsigned(op_ == 0x8c ? 1 : op_ == 'X' ? 4 : 8);
        const std::uint8_t* p = Take(n);
        Push(Str(std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)), true));
        return false;
      }
      case 'T':    // BINSTRING (Python 2 str): decoded as ASCII/UTF-8 text when it is
      case 'U': {  // SHORT_BINSTRING
        const std::uint64_t n = Unsigned(op_ == 'U' ? 1 : 4);
        if (op_ == 'T' && (n & 0x80000000u)) Fail("negative byte count");
        const std::uint8_t* p = Take(n);
        Push(
            Str(std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)), false));
        return false;
      }
      case 'B':     // BINBYTES
      case 'C':     // SHORT_BINBYTES
      case 0x8e:    // BINBYTES8
      case 0x96: {  // BYTEARRAY8
        const std::uint64_t n = Unsigned(op_ == 'C' ? 1 : op_ == 'B' ? 4 : 8);
        const std::uint8_t* p = Take(n);
        Push(Blob(op_ == 0x96 ? Kind::kByteArray : Kind::kBytes, p, n));
        return false;
      }

      // ---- containers ----
      case ')':
        Tuple({});
        return false;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1-3
        const int n = op_ - 0x84;
        std::vector<NodeId> items(static_cast<std::size_t>(n));
        for (int i = n - 1; i >= 0; --i) items[static_cast<std::size_t>(i)] = Pop();
        Tuple(std::move(items));
        return false;
      }
      case 't':
        Tuple(PopMark());
        return false;
      case ']':
        Push(New(Kind::kList));
        return false;
      case 'l': {  // LIST
        auto items = PopMark();
        const NodeId id = New(Kind::kList);
        At(id).items = std::move(items);
        Push(id);
        return false;
      }
      case '}':
        Push(New(Kind::kDict));
        return false;
      case 'd': {  // DICT
        auto kv = PopMark();
        const NodeId id = New(Kind::kDict);
        SetItems(id, kv);
        Push(id);
        return false;
      }
      case 0x8f:
        Push(New(Kind::kSet));
        return false;
      case 0x91: {  // FROZENSET
        auto items = PopMark();
        const NodeId id = New(Kind::kFrozenSet);
        At(id).items = std::move(items);
        Push(id);
        return false;
      }
      case 'a': {  // APPEND
        const NodeId v = Pop();
        Append(Top(), {v});
        return false;
      }
      case 'e': {  // APPENDS
        auto items = PopMark();
        Append(Top(), items);
        return false;
      }
      case 's': {  // SETITEM
        const NodeId v = Pop();
        const NodeId k = Pop();
        SetItems(Top(), {k, v});
        return false;
      }
      case 'u': {  // SETITEMS
        auto kv = PopMark();
        SetItems(Top(), kv);
        return false;
      }
      case 0x90: {  // ADDITEMS
        auto items = PopMark();
        const NodeId target = Top();
        Node& t = At(target);
        if (t.kind != Kind::kSet && t.kind != Kind::kObject)
          Fail("adds items to " + Desc(target) + ", but the target must be a set");
        Grow(t.items, items.size());
        t.items.insert(t.items.end(), items.begin(), items.end());
        return false;
      }

      // ---- memo ----
      case 'q':
        Memo(Unsigned(1));
        return false;
      case 'r':
        Memo(Unsigned(4));
        return false;
      case 0x94:
        Memo(memo_.size());
        return false;
      case 'h':
        Get(Unsigned(1));
        return false;
      case 'j':
        Get(Unsigned(4));
        return false;

      // ---- classes and objects: inert ----
      case 'c': {  // GLOBAL
        std::string module = Line();
        std::string name = Line();
        Push(Global(std::move(module), std::move(name)));
        return false;
      }
      case 0x93: {  // STACK_GLOBAL
        const NodeId name = Pop();
        const NodeId module = Pop();
        ExpectKind(module, Kind::kStr, "the module");
        ExpectKind(name, Kind::kStr, "the name");
        Push(Global(doc_[module].text, doc_[name].text));
        return false;
      }
      case 'R': {  // REDUCE
        const NodeId args = Pop();
        const NodeId callable = Pop();
        ExpectKind(args, Kind::kTuple, "the argument");
        Push(Object(callable, args, kNoNode, false));
        return false;
      }
      case 0x81: {  // NEWOBJ
        const NodeId args = Pop();
        const NodeId cls = Pop();
        ExpectKind(args, Kind::kTuple, "the argument");
        Push(Object(cls, args, kNoNode, true));
        return false;
      }
      case 0x92: {  // NEWOBJ_EX
        const NodeId kwargs = Pop();
        const NodeId args = Pop();
        const NodeId cls = Pop();
        ExpectKind(args, Kind::kTuple, "the argument");
        ExpectKind(kwargs, Kind::kDict, "the keyword argument");
        Push(Object(cls, args, kwargs, true));
        return false;
      }
      case 'b': {  // BUILD
        const NodeId state = Pop();
        const NodeId target = Top();
        Node& t = At(target);
        if (t.kind != Kind::kObject)
          Fail("sets the state of " + Desc(target) +
               ", but only objects made by REDUCE or "
               "NEWOBJ have one");
        if (t.state != kNoNode) Fail("sets the state of " + Desc(target) + " a second time");
        t.state = state;
        return false;
      }
      case 'Q': {  // BINPERSID: a reference the writer resolves itself (wums: HDF5 objects)
        const NodeId pid = Pop();
        const NodeId id = New(Kind::kPersistent);
        At(id).args = pid;
        Push(id);
        return false;
      }

      // ---- refused ----
      case 0x97:
      case 0x98:
        Fail("out-of-band buffers (pickle protocol 5 with a buffer_callback) are not supported");
      case 0x82:
      case 0x83:
      case 0x84:
        Fail("extension codes (copyreg's extension registry) are not supported");
      case 'P':
      case 'I':
      case 'L':
      case 'F':
      case 'S':
      case 'V':
      case 'g':
      case 'p':
      case 'i':
      case 'o':
        Fail("this protocol 0/1 opcode is not supported (protocols 2-5 do not emit it)");
      default:
        Fail("unknown opcode");
    }
  }

  const std::uint8_t* data_;
  std::size_t size_;
  Limits limits_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  int op_ = -1;
  Document doc_;
  std::vector<NodeId> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, NodeId> memo_;
};

Document Decode(const std::uint8_t* data, std::size_t size, const Limits& limits) {
  Machine machine(data, size, limits);
  return machine.Run();
}

// ---- second stage ---------------------------------------------------------------------------

std::string GlobalName(const Document& doc, NodeId id) {
  if (id == kNoNode) return "";
  const Node& n = doc[id];
  if (n.kind == Kind::kGlobal) return n.text + "." + n.name;
  if (n.kind == Kind::kObject && n.callable != kNoNode && doc[n.callable].kind == Kind::kGlobal)
    return GlobalName(doc, n.callable);
  return "";
}

namespace {

// A canonical key for hashable primitive values; "" when the value is not one (then keys are
// compared by identity).
std::string CanonicalKey(const Document& doc, NodeId id, int depth = 0) {
  const Node& n = doc[id];
  switch (n.kind) {
    case Kind::kNone:
      return "N";
    case Kind::kBool:
      return "n" + std::to_string(n.boolean ? 1 : 0);
    case Kind::kInt:
      return "n" + std::to_string(n.integer);
    case Kind::kBigInt:
      return "B" + n.text;
    case Kind::kFloat:
      if (std::isfinite(n.real) && n.real == std::floor(n.real) && std::fabs(n.real) < 9.2e18)
        return "n" + std::to_string(static_cast<std::int64_t>(n.real));
      return "f" + detail::Num(n.real);
    case Kind::kStr:
      return "s" + n.text;
    case Kind::kBytes:
      return "b" + n.text;
    case Kind::kTuple: {
      if (depth > 16) return "";
      std::string s = "t" + std::to_string(n.items.size());
      for (NodeId item : n.items) {
        const std::string k = CanonicalKey(doc, item, depth + 1);
        if (k.empty()) return "";
        s += ":" + std::to_string(k.size()) + ":" + k;
      }
      return s;
    }
    default:
      return "";
  }
}

}  // namespace

std::vector<std::pair<NodeId, NodeId>> DictItems(const Document& doc, NodeId id) {
  const Node& n = doc[id];
  const std::vector<NodeId>& kv = n.kind == Kind::kObject ? n.dict_items : n.items;
  std::vector<std::pair<NodeId, NodeId>> out;
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2) {
    const std::string key = CanonicalKey(doc, kv[i]);
    if (!key.empty()) {
      auto [it, inserted] = index.emplace(key, out.size());
      if (!inserted) {
        out[it->second].second = kv[i + 1];
        continue;
      }
    }
    out.emplace_back(kv[i], kv[i + 1]);
  }
  return out;
}

NodeId DictGet(const Document& doc, NodeId dict, const std::string& key) {
  if (dict == kNoNode || doc[dict].kind != Kind::kDict) return kNoNode;
  NodeId found = kNoNode;
  const auto& kv = doc[dict].items;
  for (std::size_t i = 0; i + 1 < kv.size(); i += 2)
    if (doc[kv[i]].kind == Kind::kStr && doc[kv[i]].text == key) found = kv[i + 1];
  return found;  // the last one wins, as in Python
}

std::string Describe(const Document& doc, NodeId id) {
  if (id == kNoNode) return "nothing";
  const Node& n = doc[id];
  auto cut = [](std::string s) { return s.size() > 60 ? s.substr(0, 57) + "..." : s; };
  switch (n.kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return n.boolean ? "True" : "False";
    case Kind::kInt:
      return std::to_string(n.integer);
    case Kind::kBigInt:
      return "<int of " + std::to_string(n.text.size()) + " bytes>";
    case Kind::kFloat:
      return detail::Num(n.real);
    case Kind::kStr:
      return cut("'" + h5::EscapeBytes(n.text) + "'");
    case Kind::kBytes:
    case Kind::kByteArray:
      return "<" + std::string(KindName(n.kind)) + " of " + std::to_string(n.text.size()) + ">";
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kSet:
    case Kind::kFrozenSet:
      return "<" + std::string(KindName(n.kind)) + " of " + std::to_string(n.items.size()) + ">";
    case Kind::kDict:
      return "<dict of " + std::to_string(n.items.size() / 2) + ">";
    case Kind::kGlobal:
      return cut("<global " + n.text + "." + n.name + ">");
    case Kind::kObject: {
      const std::string cls = GlobalName(doc, id);
      return cut("<" + (cls.empty() ? std::string("unknown") : cls) + " object>");
    }
    case Kind::kPersistent:
      return "<persistent reference>";
  }
  return "?";
}

namespace {

bool IsNumpyFunction(const std::string& name, const char* module_tail, const char* function) {
  return name == std::string("numpy.core.") + module_tail + "." + function ||
         name == std::string("numpy._core.") + module_tail + "." + function;
}

// Latin-1 string (code points < 256, stored as UTF-8) to bytes.
bool Latin1(const std::string& utf8, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < utf8.size()) {
      const auto d = static_cast<unsigned char>(utf8[i + 1]);
      out->push_back(static_cast<char>(((c & 0x1f) << 6) | (d & 0x3f)));
      ++i;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

bool BytesValue(const Document& doc, NodeId id, std::string* out) {
  if (id == kNoNode) return false;
  const Node& n = doc[id];
  if (n.kind == Kind::kBytes || n.kind == Kind::kByteArray) {
    *out = n.text;
    return true;
  }
  // Protocol 2: _codecs.encode(str, "latin1"); bytearray(b) of protocols 2-4.
  if (n.kind == Kind::kObject && n.state == kNoNode && n.args != kNoNode) {
    const std::string fn = GlobalName(doc, id);
    const auto& a = doc[n.args].items;
    if (fn == "_codecs.encode" && a.size() == 2 && doc[a[0]].kind == Kind::kStr &&
        doc[a[1]].kind == Kind::kStr && (doc[a[1]].text == "latin1" || doc[a[1]].text == "latin-1"))
      return Latin1(doc[a[0]].text, out);
    if ((fn == "builtins.bytearray" || fn == "builtins.bytes") && a.size() == 1)
      return BytesValue(doc, a[0], out);
    if ((fn == "builtins.bytearray" || fn == "builtins.bytes") && a.empty()) {
      out->clear();
      return true;
    }
    if (fn == "builtins.bytearray" && a.size() == 2 && doc[a[0]].kind == Kind::kStr &&
        doc[a[1]].kind == Kind::kStr && (doc[a[1]].text == "latin1" || doc[a[1]].text == "latin-1"))
      return Latin1(doc[a[0]].text, out);
  }
  return false;
}

namespace {

struct DType {
  char kind = 0;  // 'b', 'i', 'u', 'f'
  int size = 0;
  bool big_endian = false;
  std::string text;
};

// numpy.dtype: REDUCE(numpy.dtype, ("f8", False, True)) + BUILD (3, "<", None, None, None, -1,
// -1, 0) (numpy's arraydescr_reduce).
DType DecodeDType(const Document& doc, NodeId id) {
  const Node& n = doc[id];
  if (n.kind != Kind::kObject || GlobalName(doc, id) != "numpy.dtype" || n.args == kNoNode)
    throw std::invalid_argument("the dtype is " + Describe(doc, id) +
                                ", but must be a numpy.dtype");
  const auto& a = doc[n.args].items;
  if (a.empty() || doc[a[0]].kind != Kind::kStr)
    throw std::invalid_argument("numpy.dtype has arguments " + Describe(doc, n.args) +
                                ", but must start with the type string");
  DType t;
  const std::string& code = doc[a[0]].text;
  std::string endian = "|";
  if (n.state != kNoNode && doc[n.state].kind == Kind::kTuple && doc[n.state].items.size() >= 2 &&
      doc[doc[n.state].items[1]].kind == Kind::kStr)
    endian = doc[doc[n.state].items[1]].text;
  if (n.state != kNoNode && doc[n.state].kind == Kind::kTuple && doc[n.state].items.size() >= 5) {
    const auto& st = doc[n.state].items;
    for (int k = 2; k <= 4; ++k)
      if (doc[st[static_cast<std::size_t>(k)]].kind != Kind::kNone)
        throw std::invalid_argument("numpy.dtype " + detail::Quote(code) +
                                    " is structured or a subarray, which is not supported");
  }
  t.text = endian + code;
  if (code.size() >= 2) {
    t.kind = code[0];
    t.size = std::atoi(code.c_str() + 1);
  }
  const bool ok = ((t.kind == 'i' || t.kind == 'u') &&
                   (t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8)) ||
                  (t.kind == 'f' && (t.size == 4 || t.size == 8)) || (t.kind == 'b' && t.size == 1);
  if (!ok || code != std::string(1, t.kind) + std::to_string(t.size))
    throw std::invalid_argument("numpy dtype " + detail::Quote(code) +
                                " is not supported (bool, int, uint and float32/64 are)");
  if (endian == ">")
    t.big_endian = true;
  else if (endian != "<" && endian != "|" && endian != "=")
    throw std::invalid_argument("numpy dtype byte order " + detail::Quote(endian) +
                                " is not known");
  return t;
}

void DecodeData(const DType& t, const std::string& raw, std::int64_t count, bool fortran,
                const std::vector<std::int64_t>& shape, NdArray* out) {
  const auto need = static_cast<std::uint64_t>(count) * static_cast<std::uint64_t>(t.size);
  if (raw.size() != need)
    throw std::invalid_argument("the numpy array data has " + std::to_string(raw.size()) +
                                " bytes, but shape " + h5::ShapeString(shape) + " of " + t.text +
                                " needs " + std::to_string(need));
  out->dtype = t.text;
  out->integral = t.kind != 'f';
  out->values.resize(static_cast<std::size_t>(count));
  if (out->integral) out->ints.resize(static_cast<std::size_t>(count));
  for (std::int64_t e = 0; e < count; ++e) {
    std::uint64_t u = 0;
    const auto* p = reinterpret_cast<const std::uint8_t*>(raw.data()) + e * t.size;
    for (int b = 0; b < t.size; ++b) {
      const int shift = t.big_endian ? 8 * (t.size - 1 - b) : 8 * b;
      u |= static_cast<std::uint64_t>(p[b]) << shift;
    }
    double v = 0.0;
    std::int64_t iv = 0;
    if (t.kind == 'f') {
      if (t.size == 8) {
        std::memcpy(&v, &u, 8);
      } else {
        const auto u32 = static_cast<std::uint32_t>(u);
        float f;
        std::memcpy(&f, &u32, 4);
        v = f;
      }
    } else if (t.kind == 'u' || t.kind == 'b') {
      if (u > static_cast<std::uint64_t>(INT64_MAX))
        throw std::invalid_argument("a uint64 value " + std::to_string(u) +
                                    " of a numpy array is beyond the int64 range");
      iv = static_cast<std::int64_t>(u);
      if (t.kind == 'b') iv = iv != 0;
      v = static_cast<double>(iv);
    } else {
      if (t.size < 8 && (u >> (8 * t.size - 1)) & 1) u |= ~std::uint64_t{0} << (8 * t.size);
      iv = static_cast<std::int64_t>(u);
      v = static_cast<double>(iv);
    }
    out->values[static_cast<std::size_t>(e)] = v;
    if (out->integral) out->ints[static_cast<std::size_t>(e)] = iv;
  }
  if (fortran && shape.size() > 1) {  // to C order
    std::vector<double> values(out->values.size());
    std::vector<std::int64_t> ints(out->ints.size());
    std::vector<std::int64_t> idx(shape.size(), 0);
    for (std::int64_t c = 0; c < count; ++c) {
      std::int64_t f = 0, stride = 1;
      for (std::size_t d = 0; d < shape.size(); ++d) {
        f += idx[d] * stride;
        stride *= shape[d];
      }
      values[static_cast<std::size_t>(c)] = out->values[static_cast<std::size_t>(f)];
      if (!ints.empty()) ints[static_cast<std::size_t>(c)] = out->ints[static_cast<std::size_t>(f)];
      for (std::size_t d = shape.size(); d-- > 0;) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    out->values = std::move(values);
    out->ints = std::move(ints);
  }
}

std::vector<std::int64_t> Shape(const Document& doc, NodeId id, std::int64_t* count) {
  std::vector<std::int64_t> shape;
  const Node& n = doc[id];
  if (n.kind == Kind::kInt) {
    shape.push_back(n.integer);
  } else if (n.kind == Kind::kTuple || n.kind == Kind::kList) {
    if (n.items.size() > 32)
      throw std::invalid_argument("a numpy shape has more than 32 dimensions");
    for (NodeId d : n.items) {
      if (doc[d].kind != Kind::kInt)
        throw std::invalid_argument("a numpy shape entry is " + Describe(doc, d) +
                                    ", but must be an int");
      shape.push_back(doc[d].integer);
    }
  } else {
    throw std::invalid_argument("the numpy shape is " + Describe(doc, id) +
                                ", but must be a tuple");
  }
  const std::int64_t size = h5::ShapeSize(shape);
  if (size < 0)
    throw std::invalid_argument("the numpy shape " + h5::ShapeString(shape) +
                                " is negative or overflows");
  *count = size;
  return shape;
}

}  // namespace

bool DecodeNdArray(const Document& doc, NodeId id, NdArray* out) {
  if (id == kNoNode || doc[id].kind != Kind::kObject) return false;
  const Node& n = doc[id];
  const std::string fn = GlobalName(doc, id);
  *out = NdArray{};
  if (IsNumpyFunction(fn, "multiarray", "_reconstruct")) {
    // ndarray.__reduce__: (_reconstruct, (ndarray, (0,), b"b"), (1, shape, dtype, fortran, data))
    if (n.state == kNoNode || doc[n.state].kind != Kind::kTuple || doc[n.state].items.size() != 5)
      throw std::invalid_argument("the numpy array state is " + Describe(doc, n.state) +
                                  ", but must be a tuple of 5");
    const auto& st = doc[n.state].items;
    std::int64_t count = 0;
    out->shape = Shape(doc, st[1], &count);
    const DType t = DecodeDType(doc, st[2]);
    const bool fortran = doc[st[3]].kind == Kind::kBool  ? doc[st[3]].boolean
                         : doc[st[3]].kind == Kind::kInt ? doc[st[3]].integer != 0
                                                         : false;
    std::string raw;
    if (!BytesValue(doc, st[4], &raw))
      throw std::invalid_argument("the numpy array data is " + Describe(doc, st[4]) +
                                  ", but must be bytes (object arrays are not supported)");
    DecodeData(t, raw, count, fortran, out->shape, out);
    return true;
  }
  if (IsNumpyFunction(fn, "numeric", "_frombuffer")) {
    // protocol 5: (_frombuffer, (buffer, dtype, shape, order))
    const auto& a = doc[n.args].items;
    if (a.size() != 4)
      throw std::invalid_argument("numpy _frombuffer has " + std::to_string(a.size()) +
                                  " arguments, but must have 4");
    std::string raw;
    if (!BytesValue(doc, a[0], &raw))
      throw std::invalid_argument("the numpy buffer is " + Describe(doc, a[0]) +
                                  ", but must be bytes or a bytearray");
    const DType t = DecodeDType(doc, a[1]);
    std::int64_t count = 0;
    out->shape = Shape(doc, a[2], &count);
    const bool fortran = doc[a[3]].kind == Kind::kStr && doc[a[3]].text == "F";
    DecodeData(t, raw, count, fortran, out->shape, out);
    return true;
  }
  if (IsNumpyFunction(fn, "multiarray", "scalar")) {
    // numpy scalar: (scalar, (dtype, data))
    const auto& a = doc[n.args].items;
    if (a.size() != 2)
      throw std::invalid_argument("numpy scalar has " + std::to_string(a.size()) +
                                  " arguments, but must have 2");
    const DType t = DecodeDType(doc, a[0]);
    std::string raw;
    if (!BytesValue(doc, a[1], &raw))
      throw std::invalid_argument("the numpy scalar data is " + Describe(doc, a[1]) +
                                  ", but must be bytes");
    out->scalar = true;
    DecodeData(t, raw, 1, false, {}, out);
    return true;
  }
  return false;
}

namespace {

nlohmann::ordered_json Number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

void Note(std::vector<std::string>* unknown, const std::string& what) {
  if (unknown != nullptr && std::find(unknown->begin(), unknown->end(), what) == unknown->end())
    unknown->push_back(what);
}

nlohmann::ordered_json Json(const Document& doc, NodeId id, std::size_t depth,
                            std::size_t max_depth, std::vector<std::string>* unknown);

// A dict as a JSON object in insertion order. ordered_json's operator[] searches linearly, so
// the members are appended to its vector directly (keys made unique here: non-str keys are
// rendered with Describe, which may repeat).
nlohmann::ordered_json JsonObject(const Document& doc, NodeId id, std::size_t depth,
                                  std::size_t max_depth, std::vector<std::string>* unknown) {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  auto& members = o.get_ref<nlohmann::ordered_json::object_t&>();
  std::unordered_map<std::string, int> used;
  for (const auto& [k, v] : DictItems(doc, id)) {
    std::string key = doc[k].kind == Kind::kStr ? doc[k].text : Describe(doc, k);
    if (int& n = used[key]; n++ > 0) {
      key += " (" + std::to_string(n) + ")";
      while (used.count(key) != 0) key += "'";
      used[key] = 1;
    }
    members.emplace_back(std::move(key), Json(doc, v, depth + 1, max_depth, unknown));
  }
  return o;
}

nlohmann::ordered_json Json(const Document& doc, NodeId id, std::size_t depth,
                            std::size_t max_depth, std::vector<std::string>* unknown) {
  using J = nlohmann::ordered_json;
  if (depth > max_depth) {
    Note(unknown, "nesting deeper than " + std::to_string(max_depth) + " (or a reference cycle)");
    return "<too deep>";
  }
  const Node& n = doc[id];
  switch (n.kind) {
    case Kind::kNone:
      return nullptr;
    case Kind::kBool:
      return n.boolean;
    case Kind::kInt:
      return n.integer;
    case Kind::kBigInt:
      return Describe(doc, id);
    case Kind::kFloat:
      return Number(n.real);
    case Kind::kStr:
      return n.text;
    case Kind::kBytes:
    case Kind::kByteArray: {
      bool printable = n.text.size() <= 64;
      for (char c : n.text) printable = printable && c >= 0x20 && c < 0x7f;
      return printable ? "b'" + n.text + "'" : "<bytes of " + std::to_string(n.text.size()) + ">";
    }
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kSet:
    case Kind::kFrozenSet: {
      J a = J::array();
      for (NodeId item : n.items) a.push_back(Json(doc, item, depth + 1, max_depth, unknown));
      return a;
    }
    case Kind::kDict:
      return JsonObject(doc, id, depth, max_depth, unknown);
    case Kind::kGlobal:
      return Describe(doc, id);
    case Kind::kPersistent:
      Note(unknown, "persistent reference");
      return Describe(doc, id);
    case Kind::kObject: {
      NdArray array;
      bool is_array = false;
      try {
        is_array = DecodeNdArray(doc, id, &array);
      } catch (const std::invalid_argument& e) {
        Note(unknown, GlobalName(doc, id) + " (" + e.what() + ")");
        return J{{"__class__", GlobalName(doc, id)}};
      }
      if (is_array) {
        if (array.scalar) {
          if (array.integral) return array.ints.front();
          return Number(array.values.front());
        }
        J a = J::array();
        for (std::size_t i = 0; i < array.values.size(); ++i)
          a.push_back(array.integral ? J(array.ints[i]) : Number(array.values[i]));
        return a;
      }
      std::string bytes;
      if (BytesValue(doc, id, &bytes)) {
        bool printable = bytes.size() <= 64;
        for (char c : bytes) printable = printable && c >= 0x20 && c < 0x7f;
        return printable ? J("b'" + bytes + "'")
                         : J("<bytes of " + std::to_string(bytes.size()) + ">");
      }
      const std::string cls = GlobalName(doc, id);
      if ((cls == "builtins.set" || cls == "builtins.frozenset") && doc[n.args].items.size() == 1)
        return Json(doc, doc[n.args].items[0], depth + 1, max_depth, unknown);
      if (cls == "collections.OrderedDict") return JsonObject(doc, id, depth, max_depth, unknown);
      Note(unknown, cls.empty() ? std::string("an object made by a non-global callable") : cls);
      return J{{"__class__", cls}};
    }
  }
  return nullptr;
}

}  // namespace

nlohmann::ordered_json ToJson(const Document& doc, NodeId id, std::size_t max_depth,
                              std::vector<std::string>* unknown) {
  return Json(doc, id, 0, max_depth, unknown);
}

}  // namespace lepus::io::pickle
