// The pickle structure scan (ebm/util/pickle_scan.h) against pickles Python wrote (protocols 0 to
// 5, with memoised sharing and a cycle; the bytes below are pickle.dumps outputs) and against
// hand-built streams for the limits and the malformed cases.
#include "ebm/util/pickle_scan.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using ebm::util::scan_pickle;

template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// pickle.dumps({"a": [1, (2.5, None)], "b": {"c": [["x"]]}}, protocol=p) for p = 0..5: six
// containers, the deepest chain dict > dict > list > list.
const std::vector<std::string> kNestedByProtocol = {
    Bytes("(dp0\x0aVa\x0ap1\x0a(lp2\x0aI1\x0a"
          "a(F2.5\x0aNtp3\x0a"
          "asVb\x0ap4\x0a(dp5\x0aVc\x0ap6\x0a(lp7\x0a(lp8\x0aVx\x0ap9\x0a"
          "aass."),
    Bytes("}q\x00(X\x01\x00\x00\x00"
          "aq\x01]q\x02(K\x01(G@\x04\x00\x00\x00\x00\x00\x00Ntq\x03"
          "eX\x01\x00\x00\x00"
          "bq\x04}q\x05X\x01\x00\x00\x00"
          "cq\x06]q\x07]q\x08X\x01\x00\x00\x00xq\x09"
          "aasu."),
    Bytes("\x80\x02}q\x00(X\x01\x00\x00\x00"
          "aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x86q\x03"
          "eX\x01\x00\x00\x00"
          "bq\x04}q\x05X\x01\x00\x00\x00"
          "cq\x06]q\x07]q\x08X\x01\x00\x00\x00xq\x09"
          "aasu."),
    Bytes("\x80\x03}q\x00(X\x01\x00\x00\x00"
          "aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x86q\x03"
          "eX\x01\x00\x00\x00"
          "bq\x04}q\x05X\x01\x00\x00\x00"
          "cq\x06]q\x07]q\x08X\x01\x00\x00\x00xq\x09"
          "aasu."),
    Bytes("\x80\x04\x95"
          "0\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01"
          "a\x94]\x94(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x86\x94"
          "e\x8c\x01"
          "b\x94}\x94\x8c\x01"
          "c\x94]\x94]\x94\x8c\x01x\x94"
          "aasu."),
    Bytes("\x80\x05\x95"
          "0\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01"
          "a\x94]\x94(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x86\x94"
          "e\x8c\x01"
          "b\x94}\x94\x8c\x01"
          "c\x94]\x94]\x94\x8c\x01x\x94"
          "aasu."),
};

// Lists nested `depth` deep: EMPTY_LIST `depth` times, then APPEND `depth` - 1 times.
std::string NestedLists(size_t depth) {
  return "\x80\x02" + std::string(depth, ']') + std::string(depth - 1, 'a') + ".";
}

std::string ErrorOf(const std::string& pickle) {
  try {
    scan_pickle(pickle, "test.pkl");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PickleScan, PythonPicklesOfEveryProtocolGiveTheirNesting) {
  for (size_t protocol = 0; protocol < kNestedByProtocol.size(); ++protocol) {
    const auto shape = scan_pickle(kNestedByProtocol[protocol], "nested.pkl");
    EXPECT_EQ(shape.depth, 4) << "protocol " << protocol;
    EXPECT_EQ(shape.containers, 6) << "protocol " << protocol;
  }
}

TEST(PickleScan, MemoisedValuesAreSharedNotCycles) {
  // s = [1, 2]; pickle.dumps([s, s, {"k": s}], protocol=4): s is built once, referenced thrice.
  const auto shape =
      scan_pickle(Bytes("\x80\x04\x95\x18\x00\x00\x00\x00\x00\x00\x00]\x94(]\x94(K\x01K\x02"
                        "eh\x01}\x94\x8c\x01k\x94h\x01se."),
                  "shared.pkl");
  EXPECT_EQ(shape.containers, 3);
  EXPECT_EQ(shape.depth, 3);  // list > dict > s
}

TEST(PickleScan, ACycleIsRefused) {
  // l = []; l.append(l); pickle.dumps(l, protocol=2)
  EXPECT_NE(ErrorOf(Bytes("\x80\x02]q\x00h\x00"
                          "a."))
                .find("contains itself"),
            std::string::npos);
}

TEST(PickleScan, TheDepthLimitIsExactAndDeepFilesFailWithoutRecursion) {
  EXPECT_EQ(scan_pickle(NestedLists(1), "n.pkl").depth, 1);
  EXPECT_EQ(scan_pickle(NestedLists(ebm::util::kMaxPickleDepth), "n.pkl").depth,
            ebm::util::kMaxPickleDepth);
  EXPECT_NE(ErrorOf(NestedLists(ebm::util::kMaxPickleDepth + 1)).find("nest deeper than 256"),
            std::string::npos);
  // 300000 levels: the scan itself must not recurse (a stack overflow would end the test).
  EXPECT_NE(ErrorOf(NestedLists(300000)).find("test.pkl: containers nest deeper"),
            std::string::npos);
  EXPECT_EQ(scan_pickle(NestedLists(10), "n.pkl", 10).depth, 10);
}

TEST(PickleScan, MalformedStreamsNameTheFileAndOffset) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Bytes("\x80\x02X\xff\x00\x00\x00"
             "ab."),
       "test.pkl: offset 2: truncated"},
      {Bytes("\x80\x02\xff."), "test.pkl: offset 2: opcode 0xff is not a pickle opcode"},
      {Bytes("\x80\x02h\x05."), "test.pkl: offset 2: memo key 5 read before it was written"},
      {Bytes("\x80\x02"
             "a."),
       "test.pkl: offset 2: pops an empty stack"},
      {Bytes("\x80\x02](a."), "test.pkl: offset 4: pops an empty stack"},  // not past a MARK
      {Bytes("\x80\x02]a."), "test.pkl: offset 3: reads the top of an empty stack"},
      {Bytes("\x80\x02]"), "test.pkl: offset 3: truncated"},  // no STOP
      {Bytes("\x80\x02"
             "e."),
       "test.pkl: offset 2: no MARK to pop to"},
      {Bytes("(p12x\n."), "test.pkl: offset 1: memo key is not a decimal number"},
  };
  for (const auto& [pickle, expected] : cases)
    EXPECT_EQ(ErrorOf(pickle).substr(0, expected.size()), expected) << expected;
}
