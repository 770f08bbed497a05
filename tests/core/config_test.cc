// Config validation: unknown or mistyped keys are errors with file:line and the key path.
#include "ebm/core/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "ebm/core/options_config.h"

namespace {

constexpr char kYaml[] = R"(name: demo
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
  EXPECT_NE(m1.find("bad.yaml:2: trainer.lr: expected a finite number, found 'fast'"),
            std::string::npos)
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

TEST(Config, NonFiniteNumbersDuplicateKeysAndNulBytesAreErrorsAtTheirLine) {
  auto c =
      ebm::Config::load_string("trainer:\n  lr: .inf\n  clamp: [0, .nan]\n  n: 1e300\n", "nf.yaml");
  auto t = c->root().section("trainer");
  EXPECT_NE(
      ErrorOf([&] { t.get<double>("lr", 0); }).find("nf.yaml:2: trainer.lr: expected a finite"),
      std::string::npos);
  EXPECT_NE(ErrorOf([&] { t.get<std::vector<double>>("clamp", {}); }).find("nf.yaml:3"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { t.get<int64_t>("n", 0); }).find("within +-2^53"), std::string::npos);
  const auto twice = ErrorOf([] {
    ebm::Config::load_string("trainer:\n  lr: 1\nseed: 2\ntrainer:\n  lr: 3\n", "dup.yaml");
  });
  EXPECT_NE(twice.find("dup.yaml:4: key 'trainer' given twice (first at line 1)"),
            std::string::npos)
      << twice;
  const auto nested =
      ErrorOf([] { ebm::Config::load_string("a:\n  - b: 1\n    b: 2\n", "nested.yaml"); });
  EXPECT_NE(nested.find("nested.yaml:3: key 'a[].b' given twice"), std::string::npos) << nested;
  const std::string with_nul("name: x\nseed: 1\0\n", 17);
  const auto nul = ErrorOf([&] { ebm::Config::load_string(with_nul, "nul.yaml"); });
  EXPECT_NE(nul.find("nul.yaml:2: NUL byte"), std::string::npos) << nul;
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

namespace {

// The `| `key`[, `key`] | `default`[, `default`] | ... |` rows of the table under a
// configs/README.md heading, as key -> documented default (rows whose default is not a literal are
// left out).
std::map<std::string, std::string> DocumentedDefaults(const std::string& heading) {
  std::ifstream in(std::string(EBM_TEST_SOURCE_DIR) + "/configs/README.md");
  std::string line;
  while (std::getline(in, line) && line.rfind(heading, 0) != 0) {
  }
  std::map<std::string, std::string> out;
  const std::regex literal("`([^`]*)`");
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("|", 0) != 0) {
      if (in_table) break;
      continue;
    }
    in_table = true;
    std::vector<std::string> cells;
    std::stringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) cells.push_back(cell);
    if (cells.size() < 2) continue;
    std::vector<std::string> keys, values;
    for (std::sregex_iterator it(cells[0].begin(), cells[0].end(), literal), end; it != end; ++it)
      keys.push_back((*it)[1]);
    for (std::sregex_iterator it(cells[1].begin(), cells[1].end(), literal), end; it != end; ++it)
      values.push_back((*it)[1]);
    if (keys.empty() || keys.size() != values.size()) continue;
    for (size_t i = 0; i < keys.size(); ++i) out[keys[i]] = values[i];
  }
  return out;
}

std::string YamlSection(const std::string& name, const std::map<std::string, std::string>& values) {
  std::string yaml = name + ":\n";
  for (const auto& [k, v] : values) yaml += "  " + k + ": " + v + "\n";
  return yaml;
}

}  // namespace

// One source of truth per setting: the defaults configs/README.md documents are the options
// structs' own (which the config reader falls back to).
TEST(Config, DocumentedDefaultsAreTheOptionsStructsDefaults) {
  const auto langevin = DocumentedDefaults("### `langevin`");
  const auto buffer = DocumentedDefaults("### `replay_buffer`");
  const auto trainer = DocumentedDefaults("### `trainer`");
  ASSERT_GE(langevin.size(), 9u);
  ASSERT_GE(buffer.size(), 9u);
  ASSERT_GE(trainer.size(), 16u);
  auto c = ebm::Config::load_string(YamlSection("langevin", langevin) +
                                        YamlSection("replay_buffer", buffer) +
                                        YamlSection("trainer", trainer),
                                    "documented.yaml");
  const auto root = c->root();
  const auto documented = ebm::trainer_options(root.section("trainer"), root.section("langevin"),
                                               root.section("replay_buffer"));
  EXPECT_EQ(trainer.at("autocast_bf16"), "false");
  const ebm::TrainerOptions code;
  EXPECT_EQ(documented.objective(), code.objective());
  EXPECT_EQ(documented.l2_coeff(), code.l2_coeff());
  EXPECT_EQ(documented.adam().lr(), code.adam().lr());
  EXPECT_EQ(documented.adam().beta1(), code.adam().beta1());
  EXPECT_EQ(documented.adam().beta2(), code.adam().beta2());
  EXPECT_EQ(documented.adam().eps(), code.adam().eps());
  EXPECT_EQ(documented.adam().weight_decay(), code.adam().weight_decay());
  EXPECT_EQ(documented.adam().clip_grad(), code.adam().clip_grad());
  EXPECT_EQ(documented.warmup_steps(), code.warmup_steps());
  EXPECT_EQ(documented.ema_decay(), code.ema_decay());
  EXPECT_EQ(documented.dequantize(), code.dequantize());
  EXPECT_EQ(documented.use_buffer(), code.use_buffer());
  EXPECT_EQ(documented.negative_condition(), code.negative_condition());
  EXPECT_EQ(documented.mismatch_weight(), code.mismatch_weight());
  EXPECT_EQ(documented.max_bad_steps(), code.max_bad_steps());
  EXPECT_EQ(documented.max_restores(), code.max_restores());
  EXPECT_EQ(documented.snapshot_every(), code.snapshot_every());
  EXPECT_EQ(documented.autocast_bf16(), code.autocast_bf16());
  const auto& dl = documented.langevin();
  const ebm::LangevinOptions cl;
  EXPECT_EQ(dl.steps(), cl.steps());
  EXPECT_EQ(dl.step_size(), cl.step_size());
  EXPECT_EQ(dl.noise_std(), cl.noise_std());
  EXPECT_EQ(dl.clip_mode(), cl.clip_mode());
  EXPECT_EQ(dl.grad_clip(), cl.grad_clip());
  EXPECT_EQ(dl.clamp_min(), cl.clamp_min());
  EXPECT_EQ(dl.clamp_max(), cl.clamp_max());
  EXPECT_EQ(dl.temperature(), cl.temperature());
  EXPECT_EQ(dl.schedule(), cl.schedule());
  EXPECT_EQ(dl.final_step_ratio(), cl.final_step_ratio());
  const auto& db = documented.buffer();
  const ebm::ReplayBufferOptions cb;
  EXPECT_EQ(db.capacity(), cb.capacity());
  EXPECT_EQ(db.reinit_prob(), cb.reinit_prob());
  EXPECT_EQ(db.policy(), cb.policy());
  EXPECT_EQ(db.init(), cb.init());
  EXPECT_EQ(db.init_low(), cb.init_low());
  EXPECT_EQ(db.init_high(), cb.init_high());
  EXPECT_EQ(db.init_mean(), cb.init_mean());
  EXPECT_EQ(db.init_std(), cb.init_std());
  EXPECT_EQ(db.storage(), cb.storage());
  const auto performance = DocumentedDefaults("### `performance`");
  ASSERT_EQ(performance.size(), 7u);
  auto p = ebm::Config::load_string(YamlSection("performance", performance), "documented.yaml");
  const auto dp = ebm::performance_options(p->root().section("performance"));
  const ebm::PerformanceOptions cp;
  EXPECT_EQ(dp.cuda_graph(), cp.cuda_graph());
  EXPECT_EQ(dp.channels_last(), cp.channels_last());
  EXPECT_EQ(dp.tf32(), cp.tf32());
  EXPECT_EQ(dp.cudnn_benchmark(), cp.cudnn_benchmark());
  EXPECT_EQ(dp.buffer_on_device(), cp.buffer_on_device());
  EXPECT_EQ(dp.prefetch(), cp.prefetch());
  EXPECT_EQ(dp.async_checkpoints(), cp.async_checkpoints());
}

// Validation lives in the options structs; the reader reports their errors at the key's line.
TEST(Config, OptionStructValidationIsReportedAtTheKey) {
  auto c = ebm::Config::load_string("langevin:\n  steps: 3\n  clamp: [1, 0]\n", "bad.yaml");
  const auto msg = ErrorOf([&] { ebm::langevin_options(c->root().section("langevin")); });
  EXPECT_NE(msg.find("bad.yaml:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("langevin.clamp must be [min, max] with min <= max"), std::string::npos)
      << msg;
  EXPECT_THROW(ebm::LangevinSampler(ebm::LangevinOptions().steps(-1)), ebm::OptionError);
  EXPECT_THROW(ebm::ReplayBuffer({1}, ebm::ReplayBufferOptions().reinit_prob(2)), ebm::OptionError);
  auto b = ebm::Config::load_string("replay_buffer:\n  storage: int4\n", "bad.yaml");
  const auto choice = ErrorOf([&] { ebm::buffer_options(b->root().section("replay_buffer")); });
  EXPECT_NE(choice.find("float32"), std::string::npos) << choice;
}
