// The pickle virtual machine (io/src/pickle.{h,cc}) on hand-assembled streams: every opcode
// family, the memo, the limits, truncation and every refusal. Streams written by Python's own
// pickle are tested in rabbit_meta_test.cc.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "pickle.h"

namespace {

namespace pk = lepus::io::pickle;
using pk::Kind;
using pk::NodeId;

// Assembles a pickle: P().proto(4).op(']').stop()
struct P {
  std::vector<std::uint8_t> b;
  P& op(int code) {
    b.push_back(static_cast<std::uint8_t>(code));
    return *this;
  }
  P& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  P& raw(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  P& proto(int v = 4) { return op(0x80).le(static_cast<std::uint64_t>(v), 1); }
  P& str(const std::string& s) { return op(0x8c).le(s.size(), 1).raw(s); }  // SHORT_BINUNICODE
  P& i1(int v) { return op('K').le(static_cast<std::uint64_t>(v), 1); }
  P& stop() { return op('.'); }
  pk::Document decode(const pk::Limits& limits = {}) const {
    return pk::Decode(b.data(), b.size(), limits);
  }
};

std::string Error(const P& p, const pk::Limits& limits = {}) {
  try {
    p.decode(limits);
  } catch (const pk::PickleError& e) {
    return e.what();
  }
  return "(no error)";
}

const pk::Node& Item(const pk::Document& d, NodeId tuple, std::size_t i) {
  return d[d[tuple].items.at(i)];
}

}  // namespace

TEST_CASE("pickle: scalars of every encoding") {
  P p;
  p.proto(5).op('(');
  p.op('N').op(0x88).op(0x89);
  p.op('J').le(static_cast<std::uint32_t>(-5), 4);        // BININT
  p.i1(200);                                              // BININT1
  p.op('M').le(60000, 2);                                 // BININT2
  p.op(0x8a).le(0, 1);                                    // LONG1 0 bytes = 0
  p.op(0x8a).le(1, 1).le(0xff, 1);                        // LONG1 -1
  p.op(0x8a).le(9, 1).le(0, 8).le(1, 1);                  // LONG1 2^64 (big)
  p.op(0x8b).le(2, 4).le(0x7fff, 2);                      // LONG4 32767
  p.op('G').raw(std::string("\x3f\xf8\0\0\0\0\0\0", 8));  // BINFLOAT 1.5 (big-endian)
  p.str("short");
  p.op('X').le(3, 4).raw("\xc3\xa9z");  // BINUNICODE "éz"
  p.op(0x8d).le(1, 8).raw("w");         // BINUNICODE8
  p.op('C').le(2, 1).raw("ab");         // SHORT_BINBYTES
  p.op('B').le(1, 4).raw("c");          // BINBYTES
  p.op(0x8e).le(1, 8).raw("d");         // BINBYTES8
  p.op(0x96).le(2, 8).raw("ef");        // BYTEARRAY8
  p.op('U').le(2, 1).raw("py");         // SHORT_BINSTRING (text)
  p.op('T').le(1, 4).raw("\xff");       // BINSTRING (not text: bytes)
  p.op('t').stop();
  const auto d = p.decode();
  CHECK(d.protocol() == 5);
  const NodeId t = d.root();
  REQUIRE(d[t].kind == Kind::kTuple);
  REQUIRE(d[t].items.size() == 20);
  CHECK(Item(d, t, 0).kind == Kind::kNone);
  CHECK(Item(d, t, 1).boolean);
  CHECK_FALSE(Item(d, t, 2).boolean);
  CHECK(Item(d, t, 3).integer == -5);
  CHECK(Item(d, t, 4).integer == 200);
  CHECK(Item(d, t, 5).integer == 60000);
  CHECK(Item(d, t, 6).integer == 0);
  CHECK(Item(d, t, 7).integer == -1);
  CHECK(Item(d, t, 8).kind == Kind::kBigInt);
  CHECK(Item(d, t, 8).text.size() == 9);
  CHECK(Item(d, t, 9).integer == 32767);
  CHECK(Item(d, t, 10).real == 1.5);
  CHECK(Item(d, t, 11).text == "short");
  CHECK(Item(d, t, 12).text == "\xc3\xa9z");
  CHECK(Item(d, t, 13).text == "w");
  CHECK(Item(d, t, 14).kind == Kind::kBytes);
  CHECK(Item(d, t, 14).text == "ab");
  CHECK(Item(d, t, 15).text == "c");
  CHECK(Item(d, t, 16).text == "d");
  CHECK(Item(d, t, 17).kind == Kind::kByteArray);
  CHECK(Item(d, t, 18).kind == Kind::kStr);
  CHECK(Item(d, t, 19).kind == Kind::kBytes);
}

TEST_CASE("pickle: int64 limits through LONG1 and sign extension") {
  // 2^63 - 1 in 8 bytes; -2^63; 2^63 needs 9 bytes (big); 9 bytes with a redundant sign byte.
  P p;
  p.proto(2).op('(');
  p.op(0x8a).le(8, 1).le(0x7fffffffffffffffULL, 8);
  p.op(0x8a).le(8, 1).le(0x8000000000000000ULL, 8);
  p.op(0x8a).le(9, 1).le(0x8000000000000000ULL, 8).le(0, 1);
  p.op(0x8a).le(9, 1).le(0xfffffffffffffffeULL, 8).le(0xff, 1);
  p.op(0x8a).le(2, 1).le(0xff80, 2);  // -128
  p.op('t').stop();
  const auto d = p.decode();
  CHECK(Item(d, d.root(), 0).integer == INT64_MAX);
  CHECK(Item(d, d.root(), 1).integer == INT64_MIN);
  CHECK(Item(d, d.root(), 2).kind == Kind::kBigInt);
  CHECK(Item(d, d.root(), 3).integer == -2);
  CHECK(Item(d, d.root(), 4).integer == -128);
}

TEST_CASE("pickle: tuples, lists, dicts, sets") {
  P p;
  p.proto(4).op('(');
  p.op(')');                                            // EMPTY_TUPLE
  p.i1(1).op(0x85);                                     // TUPLE1
  p.i1(1).i1(2).op(0x86);                               // TUPLE2
  p.i1(1).i1(2).i1(3).op(0x87);                         // TUPLE3
  p.op(']').i1(1).op('a').op('(').i1(2).i1(3).op('e');  // list: APPEND, APPENDS
  p.op('(').i1(4).op('l');                              // LIST
  p.op('}').str("a").i1(1).op('s').op('(').str("b").i1(2).str("a").i1(3).op('u');
  p.op('(').str("k").i1(5).op('d');         // DICT
  p.op(0x8f).op('(').i1(7).i1(8).op(0x90);  // EMPTY_SET, ADDITEMS
  p.op('(').i1(9).op(0x91);                 // FROZENSET
  p.op('t').stop();
  const auto d = p.decode();
  const NodeId t = d.root();
  CHECK(Item(d, t, 0).items.empty());
  CHECK(Item(d, t, 1).items.size() == 1);
  CHECK(Item(d, t, 2).items.size() == 2);
  CHECK(Item(d, t, 3).items.size() == 3);
  CHECK(Item(d, t, 4).kind == Kind::kList);
  CHECK(Item(d, t, 4).items.size() == 3);
  CHECK(Item(d, t, 5).items.size() == 1);
  const NodeId dict = d[t].items[6];
  const auto items = pk::DictItems(d, dict);
  REQUIRE(items.size() == 2);  // "a" repeated: the value replaced at its first position
  CHECK(d[items[0].first].text == "a");
  CHECK(d[items[0].second].integer == 3);
  CHECK(d[items[1].first].text == "b");
  CHECK(d[pk::DictGet(d, dict, "a")].integer == 3);
  CHECK(pk::DictGet(d, dict, "zz") == pk::kNoNode);
  CHECK(Item(d, t, 7).kind == Kind::kDict);
  CHECK(Item(d, t, 8).kind == Kind::kSet);
  CHECK(Item(d, t, 8).items.size() == 2);
  CHECK(Item(d, t, 9).kind == Kind::kFrozenSet);
  const auto j = pk::ToJson(d, t, 10, nullptr);
  CHECK(j.dump() == R"([[],[1],[1,2],[1,2,3],[1,2,3],[4],{"a":3,"b":2},{"k":5},[7,8],[9]])");
}

TEST_CASE("pickle: POP, POP_MARK, DUP, FRAME") {
  P p;
  p.proto(4).op(0x95).le(0, 8);   // FRAME of 0 bytes is only a hint
  p.op(']').i1(1).op('0');        // POP
  p.op('(').i1(2).i1(3).op('1');  // POP_MARK
  p.op('2').op(0x86).stop();      // DUP: a tuple of the same list twice
  const auto d = p.decode();
  CHECK(d[d.root()].items[0] == d[d.root()].items[1]);
  CHECK(Error(P().proto(4).op(0x95).le(100, 8).op('N').stop()) ==
        "byte 2, opcode FRAME (0x95): truncated: the frame announces 100 bytes, but only 2 remain");
}

TEST_CASE("pickle: the memo shares values") {
  // LONG_BINPUT / LONG_BINGET with a key beyond one byte.
  const auto d1 =
      P().proto(3).op(']').op('r').le(70000, 4).op('j').le(70000, 4).op(0x86).stop().decode();
  CHECK(d1[d1.root()].items[0] == d1[d1.root()].items[1]);
  // MEMOIZE stores under the memo's current size.
  P q;
  q.proto(4).op(']').op(0x94).op('h').le(0, 1).op(0x86).stop();
  const auto d = q.decode();
  CHECK(d[d.root()].items[0] == d[d.root()].items[1]);
  const auto d2 =
      P().proto(3).op(']').op('q').le(7, 1).op('h').le(7, 1).i1(1).op('a').op(0x86).stop().decode();
  // APPEND through one reference is seen through the other (one object, as in Python).
  CHECK(d2[d2[d2.root()].items[0]].items.size() == 1);
  CHECK(d2[d2.root()].items[0] == d2[d2.root()].items[1]);
  CHECK(Error(P().proto(3).op('h').le(5, 1).stop()) ==
        "byte 2, opcode BINGET (0x68): memo key 5 is not defined");
  CHECK(Error(P().proto(3).op('j').le(5, 4).stop()) ==
        "byte 2, opcode LONG_BINGET (0x6a): memo key 5 is not defined");
  CHECK(Error(P().proto(3).op('q').le(1, 1).stop()) ==
        "byte 2, opcode BINPUT (0x71): the stack is empty");
}

TEST_CASE("pickle: globals and objects stay inert") {
  P p;
  p.proto(4).op('(');
  p.op('c').raw("os\nsystem\n").str("rm -rf /").op(0x85).op('R');  // GLOBAL + REDUCE
  p.str("mod").str("Cls").op(0x93).op(')').op(0x81).op('}').str("x").i1(1).op('s').op('b');
  p.str("mod").str("Kw").op(0x93).op(')').op('}').op(0x92);  // NEWOBJ_EX
  p.str("pid").op('Q');                                      // BINPERSID
  p.op('t').stop();
  const auto d = p.decode();
  const NodeId t = d.root();
  const NodeId reduce = d[t].items[0];
  CHECK(d[reduce].kind == Kind::kObject);
  CHECK(pk::GlobalName(d, reduce) == "os.system");
  CHECK_FALSE(d[reduce].newobj);
  CHECK(pk::Describe(d, reduce) == "<os.system object>");
  const NodeId obj = d[t].items[1];
  CHECK(d[obj].newobj);
  CHECK(pk::ClassName(d, obj) == "mod.Cls");
  CHECK(d[d[obj].state].kind == Kind::kDict);
  CHECK(Item(d, t, 2).kwargs != pk::kNoNode);
  CHECK(Item(d, t, 3).kind == Kind::kPersistent);
  std::vector<std::string> unknown;
  const auto j = pk::ToJson(d, t, 10, &unknown);
  CHECK(j[0].dump() == R"({"__class__":"os.system"})");
  CHECK(unknown ==
        std::vector<std::string>{"os.system", "mod.Cls", "mod.Kw", "persistent reference"});
  // Objects made by REDUCE can receive APPENDS / SETITEMS (OrderedDict and friends).
  const auto d2 = P().proto(4)
                      .str("collections")
                      .str("OrderedDict")
                      .op(0x93)
                      .op(')')
                      .op('R')
                      .op('(')
                      .str("k")
                      .i1(1)
                      .op('u')
                      .stop()
                      .decode();
  CHECK(pk::ToJson(d2, d2.root(), 10, nullptr).dump() == R"({"k":1})");
}

TEST_CASE("pickle: malformed object construction is rejected") {
  CHECK(Error(P().proto(4).op(']').str("state").op('b').stop()) ==
        "byte 10, opcode BUILD (0x62): sets the state of <list of 0>, but only objects made by "
        "REDUCE or NEWOBJ have one");
  CHECK(Error(P().proto(4)
                  .str("m")
                  .str("C")
                  .op(0x93)
                  .op(')')
                  .op(0x81)
                  .op('N')
                  .op('b')
                  .op('N')
                  .op('b')
                  .stop()) ==
        "byte 14, opcode BUILD (0x62): sets the state of <m.C object> a second time");
  CHECK(Error(P().proto(4).str("m").str("f").op(0x93).i1(1).op('R').stop()) ==
        "byte 11, opcode REDUCE (0x52): the argument is 1, but must be a tuple");
  CHECK(Error(P().proto(4).i1(1).str("f").op(0x93).stop()) ==
        "byte 7, opcode STACK_GLOBAL (0x93): the module is 1, but must be a str");
  CHECK(Error(P().proto(4).op('}').i1(1).op('a').stop()) ==
        "byte 5, opcode APPEND (0x61): appends to <dict of 0>, but the target must be a list "
        "(or an object)");
  CHECK(Error(P().proto(4).op(']').op('(').i1(1).op('u').stop()) ==
        "byte 6, opcode SETITEMS (0x75): has an odd number (1) of keys and values");
  CHECK(Error(P().proto(4).op('c').raw("os\nsys").stop()) ==
        "byte 2, opcode GLOBAL (0x63): truncated: a GLOBAL name line has no terminating newline");
  CHECK(Error(P().proto(4).op('X').le(2, 4).raw("\xff\xfe").stop()) ==
        "byte 2, opcode BINUNICODE (0x58): the string \"\\xff\\xfe\" is not valid UTF-8 (byte 0)");
}

TEST_CASE("pickle: refusals name the opcode and the offset") {
  CHECK(Error(P().proto(5).op(']').op(0x97).stop()) ==
        "byte 3, opcode NEXT_BUFFER (0x97): out-of-band buffers (pickle protocol 5 with a "
        "buffer_callback) are not supported");
  CHECK(Error(P().proto(5).op(0x98)).find("opcode READONLY_BUFFER (0x98): out-of-band") !=
        std::string::npos);
  for (int ext : {0x82, 0x83, 0x84})
    CHECK(Error(P().proto(2).op(ext).le(1, 4)).find("extension codes") != std::string::npos);
  CHECK(Error(P().proto(2).op('P').raw("x\n")) ==
        "byte 2, opcode PERSID (0x50): this protocol 0/1 opcode is not supported (protocols 2-5 "
        "do not emit it)");
  for (int text_op : {'I', 'L', 'F', 'S', 'V', 'g', 'p', 'i', 'o'})
    CHECK(Error(P().proto(2).op(text_op)).find("protocol 0/1 opcode") != std::string::npos);
  CHECK(Error(P().proto(2).op(0xff)) == "byte 2, opcode unknown (0xff): unknown opcode");
  CHECK(Error(P().op(']').stop()) ==
        "byte 0, opcode EMPTY_LIST (0x5d): the pickle must start with PROTO (protocols 2-5); "
        "protocols 0 and 1 are not supported");
  CHECK(Error(P().proto(1).op('N').stop()) ==
        "byte 0, opcode PROTO (0x80): protocol 1 is not supported (2-5 are)");
  CHECK(Error(P().proto(6).op('N').stop()).find("protocol 6 is not supported") !=
        std::string::npos);
  CHECK(Error(P().proto(4).op('N').proto(4).stop()) ==
        "byte 3, opcode PROTO (0x80): PROTO must be the first opcode");
}

TEST_CASE("pickle: truncation, trailing bytes and STOP") {
  P full;
  full.proto(4).op('}').op(0x94).op('(').str("key").op(0x94).op(0x8d).le(4, 8).raw("text");
  full.op('G').raw(std::string(8, '\0')).op(0x8a).le(2, 1).le(258, 2).op('u').stop();
  REQUIRE_NOTHROW(full.decode());
  // Every strict prefix fails with a PickleError (never a crash or an exception of another
  // kind); the message names an offset inside the input.
  for (std::size_t n = 0; n < full.b.size(); ++n) {
    P cut;
    cut.b.assign(full.b.begin(), full.b.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string e = Error(cut);
    INFO(n << ": " << e);
    CHECK(e.rfind("byte ", 0) == 0);
  }
  CHECK(Error(P().proto(4).op('X').le(10, 4).raw("abc")) ==
        "byte 2, opcode BINUNICODE (0x58): truncated: needs 10 more bytes, but only 3 remain");
  CHECK(Error(P().proto(4).op(0x8e).le(~0ULL, 8)) ==
        "byte 2, opcode BINBYTES8 (0x8e): truncated: needs 18446744073709551615 more bytes, but "
        "only 0 remain");
  CHECK(Error(P().proto(4).op('N').stop().op('N')) ==
        "byte 4: 1 bytes follow STOP, but the pickle must end there");
  CHECK(Error(P().proto(4).op('N').op('N').stop()) ==
        "byte 4, opcode STOP (0x2e): the stack holds 2 values, but must hold one");
  CHECK(Error(P().proto(4).op('(').op('N').stop()) ==
        "byte 4, opcode STOP (0x2e): 1 MARKs are still open");
  CHECK(Error(P().proto(4).op('N')) == "byte 3: the pickle ends without STOP (truncated)");
  CHECK(Error(P()) == "byte 0: the pickle is empty, but must start with PROTO");
  CHECK(Error(P().proto(4).op('.')) ==
        "byte 2, opcode STOP (0x2e): the stack holds 0 values, but must hold one");
}

TEST_CASE("pickle: every limit is enforced") {
  pk::Limits small;
  small.max_depth = 3;
  P deep;
  deep.proto(4);
  for (int i = 0; i < 4; ++i) deep.op('(');
  CHECK(Error(deep, small) == "byte 5, opcode MARK (0x28): more than 3 nested MARKs (limit)");

  pk::Limits nodes;
  nodes.max_nodes = 3;
  CHECK(Error(P().proto(4).op('N').op('N').op('N').op('N'), nodes) ==
        "byte 5, opcode NONE (0x4e): the pickle creates more than 3 values (limit)");

  pk::Limits memo;
  memo.max_memo = 2;
  CHECK(Error(P().proto(4).op('N').op(0x94).op(0x94).op(0x94), memo) ==
        "byte 5, opcode MEMOIZE (0x94): the memo holds more than 2 entries (limit)");

  pk::Limits container;
  container.max_container = 2;
  CHECK(Error(P().proto(4).op(']').op('(').i1(1).i1(2).i1(3), container) ==
        "byte 6, opcode BININT1 (0x4b): the stack holds more than 2 values (limit)");
  CHECK(Error(P().proto(4).op(']').i1(1).op('a').i1(1).op('a').i1(1).op('a'), container) ==
        "byte 11, opcode APPEND (0x61): a container would hold more than 2 items (limit)");

  pk::Limits input;
  input.max_input_bytes = 3;
  CHECK(Error(P().proto(4).op('N').stop(), input) ==
        "byte 0: the pickle has 4 bytes, but at most 3 are accepted");
}

TEST_CASE("pickle: a reference cycle is rendered without recursing forever") {
  // l = []; l.append(l): EMPTY_LIST MEMOIZE BINGET 0 APPEND
  const auto d = P().proto(4).op(']').op(0x94).op('h').le(0, 1).op('a').stop().decode();
  std::vector<std::string> unknown;
  const auto j = pk::ToJson(d, d.root(), 5, &unknown);
  CHECK(j.dump() == R"([[[[[["<too deep>"]]]]]])");
  REQUIRE(unknown.size() == 1);
  CHECK(unknown[0] == "nesting deeper than 5 (or a reference cycle)");
}

TEST_CASE("pickle: numpy arrays with a bad layout are rejected by the second stage") {
  // numpy._core.numeric._frombuffer(bytearray(3 bytes), dtype("f8"), (1,), "C")
  P q;
  q.proto(5).str("numpy._core.numeric").str("_frombuffer").op(0x93).op('(');
  q.op(0x96).le(3, 8).raw("abc");
  q.str("numpy").str("dtype").op(0x93).str("f8").op(0x89).op(0x88).op(0x87).op('R');
  q.i1(1).op(0x85).str("C").op('t').op('R').stop();
  const auto d = q.decode();
  pk::NdArray a;
  CHECK_THROWS_WITH_AS(pk::DecodeNdArray(d, d.root(), &a),
                       "the numpy array data has 3 bytes, but shape [1] of |f8 needs 8",
                       std::invalid_argument);
  std::vector<std::string> unknown;
  pk::ToJson(d, d.root(), 5, &unknown);
  REQUIRE(unknown.size() == 1);
  CHECK(unknown[0].find("numpy._core.numeric._frombuffer (the numpy array data has 3 bytes") == 0);
}
