// Config validation: unknown or mistyped keys are errors with file:line and the key path.
#include "ebm/core/config.h"

#include <gtest/gtest.h>

#include "ebm/core/options_config.h"

namespace {

const char* kYaml = R"(name: demo
trainer:
  lr: 0.001
  iterations: 20
langevin:
  steps: 7
  clamp: null
)";

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ebm::ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, TypedReadsDefaultsAndNullClamp) {
  auto c = ebm::Config::load_string(kYaml, "demo.yaml");
  auto root = c->root();
  EXPECT_EQ(root.get<std::string>("name", ""), "demo");
  EXPECT_DOUBLE_EQ(root.section("trainer").get<double>("lr", 0), 0.001);
  EXPECT_EQ(root.section("trainer").get<int64_t>("iterations", 0), 20);
  EXPECT_EQ(root.section("trainer").get<int64_t>("batch_size", 128), 128);
  auto l = ebm::langevin_options(root.section("langevin"));
  EXPECT_EQ(l.steps(), 7);
  EXPECT_FALSE(l.clamp_min().has_value());
  EXPECT_DOUBLE_EQ(l.step_size(), 10.0);  // default
  EXPECT_NO_THROW(c->check_all_used());
}

TEST(Config, UnknownKeyNamesFileLineKeyAndSuggestion) {
  auto c = ebm::Config::load_string("name: x\ntrainer:\n  lr: 0.1\n  itertions: 5\n", "cfg.yaml");
  auto t = c->root().section("trainer");
  t.get<double>("lr", 0);
  t.get<int64_t>("iterations", 1);
  c->root().get<std::string>("name", "");
  const auto msg = ErrorOf([&] { c->check_all_used(); });
  EXPECT_NE(msg.find("cfg.yaml:4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'trainer.itertions'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'trainer.iterations'"), std::string::npos) << msg;
}

TEST(Config, WrongTypeAndRangeNameFileLineAndKey) {
  auto c = ebm::Config::load_string("trainer:\n  lr: fast\n  iterations: 2.5\n", "bad.yaml");
  auto t = c->root().section("trainer");
  auto m1 = ErrorOf([&] { t.get<double>("lr", 0); });
  EXPECT_NE(m1.find("bad.yaml:2: trainer.lr: expected a number, found 'fast'"), std::string::npos)
      << m1;
  auto m2 = ErrorOf([&] { t.get<int64_t>("iterations", 0); });
  EXPECT_NE(m2.find("bad.yaml:3: trainer.iterations: expected an integer"), std::string::npos)
      << m2;
  auto c2 = ebm::Config::load_string("langevin:\n  steps: -3\n", "neg.yaml");
  auto m3 = ErrorOf([&] { ebm::langevin_options(c2->root().section("langevin")); });
  EXPECT_NE(m3.find("neg.yaml:2: langevin.steps must be >= 0"), std::string::npos) << m3;
  auto c3 = ebm::Config::load_string("langevin:\n  clip_mode: sideways\n", "ch.yaml");
  auto m4 = ErrorOf([&] { ebm::langevin_options(c3->root().section("langevin")); });
  EXPECT_NE(m4.find("ch.yaml:2: langevin.clip_mode: expected one of none, elementwise, l2"),
            std::string::npos)
      << m4;
}

TEST(Config, OverridesApplyAndAreValidatedLikeFileKeys) {
  auto c = ebm::Config::load_string(kYaml, "demo.yaml",
                                    {"trainer.lr=1e-4", "langevin.clamp=[0, 2]", "logging.new=3"});
  auto root = c->root();
  EXPECT_DOUBLE_EQ(root.section("trainer").get<double>("lr", 0), 1e-4);
  auto l = ebm::langevin_options(root.section("langevin"));
  EXPECT_DOUBLE_EQ(*l.clamp_max(), 2.0);
  root.get<std::string>("name", "");
  root.section("trainer").get<int64_t>("iterations", 0);
  const auto msg = ErrorOf([&] { c->check_all_used(); });
  // Nothing reads `logging` here, so the section the override created is itself unknown, and the
  // error points at the override that created it.
  EXPECT_NE(msg.find("--set logging.new: unknown key 'logging'"), std::string::npos) << msg;
  EXPECT_NE(
      ErrorOf([] { ebm::Config::load_string("a: 1", "x", {"novalue"}); }).find("key.path=value"),
      std::string::npos);
  EXPECT_NE(ErrorOf([] { ebm::Config::load_string("a: 1", "x", {"a.b=2"}); }).find("not a mapping"),
            std::string::npos);
}

TEST(Config, SyntaxErrorsAndDumpRoundTrip) {
  auto m = ErrorOf([] { ebm::Config::load_string("a: [1, 2\nb: 3\n", "broken.yaml"); });
  EXPECT_NE(m.find("broken.yaml:"), std::string::npos) << m;
  EXPECT_NE(m.find("YAML syntax error"), std::string::npos) << m;
  auto c = ebm::Config::load_string(kYaml, "demo.yaml", {"trainer.lr=0.5"});
  auto again = ebm::Config::load_string(c->dump(), "dump");
  EXPECT_DOUBLE_EQ(again->root().section("trainer").get<double>("lr", 0), 0.5);
  EXPECT_EQ(again->root().section("langevin").get<int64_t>("steps", 0), 7);
}
