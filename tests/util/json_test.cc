// The JSON writer and reader (ebm/util/json.h): exact bytes of the layout the project's files use,
// reading back what it wrote, and refusal of malformed or hostile input by source and offset.
#include "ebm/util/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

using ebm::util::Json;
using ebm::util::parse_json;

TEST(Json, QuotingAndNumbers) {
  EXPECT_EQ(ebm::util::json_quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(ebm::util::json_number(0.5), "0.5");
  EXPECT_EQ(ebm::util::json_number(0.1), "0.10000000000000001");
  EXPECT_EQ(ebm::util::json_number(std::nan("")), "null");
  EXPECT_EQ(Json(int64_t{1} << 62).dump(), "4611686018427387904");
  EXPECT_EQ(Json(3.0).dump(), "3");
  EXPECT_EQ(Json::fixed(2.0 / 3.0, 3).dump(), "0.667");
  EXPECT_EQ(Json::fixed(std::nan(""), 3).dump(), "null");
}

TEST(Json, PrettyLayoutWithCompactMembersIsExact) {
  auto methods = Json::object();
  methods.set("ebm", Json::object().set("a", 1.5).set("b", 2).compact());
  methods.set("fc", Json::object().set("a", 0.25).compact());
  auto doc =
      Json::object()
          .set("states", 15)
          .set("units", "m")
          .set("list", std::vector<double>{1, 2.5})
          .set("empty", Json::array())
          .set("methods", methods)
          .set("rows", Json::array().push(Json::object().set("x", true).compact()).push(Json()));
  doc.set("states", 16);  // replaced in place
  EXPECT_EQ(doc.dump(),
            "{\n"
            "  \"states\": 16,\n"
            "  \"units\": \"m\",\n"
            "  \"list\": [1, 2.5],\n"
            "  \"empty\": [],\n"
            "  \"methods\": {\n"
            "    \"ebm\": {\"a\": 1.5, \"b\": 2},\n"
            "    \"fc\": {\"a\": 0.25}\n"
            "  },\n"
            "  \"rows\": [\n"
            "    {\"x\": true},\n"
            "    null\n"
            "  ]\n"
            "}");
}

TEST(Json, ReadsBackWhatItWrites) {
  const auto doc =
      Json::object()
          .set("n", 0.1)
          .set("i", -42)
          .set("s", "tab\there \xc3\xa9")
          .set("nested", Json::object().set("list", std::vector<std::string>{"a", "b"}));
  const auto back = parse_json(doc.dump(), "doc");
  EXPECT_EQ(back.at("n").number(), 0.1);
  EXPECT_EQ(back.at("i").integer(), -42);
  EXPECT_EQ(back.at("s").string(), "tab\there \xc3\xa9");
  EXPECT_EQ(back.at("nested").at("list").at(1).string(), "b");
  EXPECT_EQ(back.dump(), doc.dump());
  // Escapes of other writers: \u with a surrogate pair, \/.
  EXPECT_EQ(parse_json("\"\\ud83d\\ude00\\/\"", "x").string(), "\xf0\x9f\x98\x80/");
  EXPECT_EQ(parse_json(" [1e2, -0.5, true, null] ", "x").at(0).number(), 100.0);
  EXPECT_THROW(back.at("missing"), std::runtime_error);
  EXPECT_THROW(back.at("s").number(), std::runtime_error);
  EXPECT_THROW(parse_json("1.5", "x").integer(), std::runtime_error);
}

TEST(Json, MalformedInputNamesTheSourceAndOffset) {
  auto message = [](const std::string& text) {
    try {
      parse_json(text, "best.json");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message("{\"a\": 1,}"), "best.json: invalid JSON at byte 8: expected a key string");
  EXPECT_EQ(message("{\"a\": 1, \"a\": 2}"),
            "best.json: invalid JSON at byte 12: duplicate key \"a\"");
  EXPECT_NE(message("[1, 2").find("byte 5"), std::string::npos);
  EXPECT_NE(message("\"abc").find("unterminated string"), std::string::npos);
  EXPECT_NE(message("\"\\ud800\"").find("unpaired surrogate"), std::string::npos);
  EXPECT_NE(message("{} x").find("after the JSON value"), std::string::npos);
  EXPECT_NE(message("").find("unexpected end"), std::string::npos);
  EXPECT_NE(message("nul").find("expected a value"), std::string::npos);
  // Hostile nesting is refused, not recursed into until the stack overflows.
  EXPECT_NE(message(std::string(100000, '[')).find("nested deeper than 512"), std::string::npos);
  EXPECT_EQ(message(std::string(500, '[') + std::string(500, ']')), "accepted");
}
