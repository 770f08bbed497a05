// `ebm eval robustness`: the class-conditional EBM used as a classifier (labels = argmin_y E(x, y))
// under white-box PGD attacks with L-inf and L2 budgets swept over epsilon, optionally followed by
// the original's Langevin "purification" inside a small budget around the attacked image; a plain
// CNN classifier trained on the same data is attacked the same way as the baseline.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ebm/eval/adversarial.h"
#include "ebm/experiments/image_eval_internal.h"
#include "ebm/report/plot.h"
#include "ebm/report/png.h"

namespace ebm::experiments::detail {

namespace {

// E(x) = -log sum_y exp(-E(x, y)): the marginal energy of a conditional model (for purification).
class MarginalEnergy : public EnergyModel {
 public:
  MarginalEnergy(std::shared_ptr<EnergyModel> m, int64_t classes)
      : m_(std::move(m)), classes_(classes) {}
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    torch::Tensor logits;
    classify_by_energy(*m_, x, classes_, &logits);
    return -torch::logsumexp(logits, 1);
  }

 private:
  std::shared_ptr<EnergyModel> m_;
  int64_t classes_;
};

}  // namespace

RobustnessSpec read_robustness_spec(const ConfigSection& s) {
  RobustnessSpec spec;
  spec.images = s.get<int64_t>("images", 500);
  s.check(spec.images >= 1, "images", ">= 1");
  spec.linf = s.get<std::vector<double>>("linf_eps", {0, 2, 4, 8, 16, 32});
  spec.l2 = s.get<std::vector<double>>("l2_eps", {0, 20, 40, 80, 160});
  for (double eps : spec.linf)
    s.check(eps >= 0, "linf_eps", "a list of values >= 0 (units of 1/255)");
  for (double eps : spec.l2) s.check(eps >= 0, "l2_eps", "a list of values >= 0 (units of 1/255)");
  spec.steps = s.get<int64_t>("steps", 10);
  s.check(spec.steps >= 1, "steps", ">= 1");
  spec.step_factor = s.get<double>("step_factor", 2.5);
  s.check(spec.step_factor > 0, "step_factor", "> 0 (step = step_factor * eps / steps)");
  spec.random_start = s.get<bool>("random_start", true);
  spec.purify_steps = s.get<int64_t>("purify_steps", 10);
  s.check(spec.purify_steps >= 0, "purify_steps", ">= 0 (0 = no purification)");
  spec.purify_eps = s.get<double>("purify_eps", 8);
  s.check(spec.purify_eps >= 0, "purify_eps", ">= 0 (units of 1/255)");
  spec.batch = s.get<int64_t>("batch_size", 100);
  s.check(spec.batch >= 1, "batch_size", ">= 1");
  return spec;
}

double attacked_accuracy(const AttackBench& bench, const LogitsFn& logits_fn, eval::AttackNorm norm,
                         double eps, bool purify) {
  const RobustnessSpec& spec = bench.spec;
  int64_t correct = 0;
  for (int64_t i = 0; i < bench.n; i += spec.batch) {
    const int64_t b = std::min(spec.batch, bench.n - i);
    auto x = bench.x_all.narrow(0, i, b).to(bench.device);
    auto y = bench.y_all.narrow(0, i, b).to(bench.device);
    auto opts = eval::PgdOptions()
                    .norm(norm)
                    .epsilon(eps)
                    .steps(spec.steps)
                    .step_size(spec.step_factor * eps / spec.steps)
                    .random_start(spec.random_start);
    auto loss = [&](const torch::Tensor& v) {
      return torch::nn::functional::cross_entropy(
          logits_fn(v), y,
          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    };
    auto adv = eval::pgd_attack(loss, x, opts, bench.gen);
    if (purify) {
      const auto anchor = adv.clone();
      for (int64_t k = 0; k < spec.purify_steps; ++k) {
        adv = bench.purifier->sample(*bench.marginal, adv, {}, {}, nullptr, bench.gen);
        adv = eval::project(adv, anchor, eval::AttackNorm::kLinf, spec.purify_eps / 255.0);
      }
    }
    torch::NoGradGuard no_grad;
    correct += logits_fn(adv).argmax(1).eq(y).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(bench.n);
}

namespace {

// The two classifiers under attack: the EBM (argmin over labels of E(x, y)) and the CNN.
struct Classifiers {
  LogitsFn ebm, cnn;
};

// The sweeps' results, for the metrics, the report and the summary.
struct RobustnessResults {
  util::Json acc = util::Json::object();
  std::string table;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> pictures;
};

// Sweeps one norm's budgets: each model's accuracy per epsilon, and robustness_<norm>.png.
void sweep_norm(Context& c, const AttackBench& bench, const Classifiers& models,
                eval::AttackNorm norm, const std::vector<double>& list,
                RobustnessResults* results) {
  const bool purify = bench.spec.purify_steps > 0;
  const std::string nn = eval::attack_norm_name(norm);
  std::vector<report::Series> series{{"ebm", {}, {}}, {"cnn", {}, {}}};
  if (purify) series.push_back({"ebm_purified", {}, {}});
  results->table +=
      nn + " eps(/255)   EBM      CNN" + std::string(purify ? "      EBM+purify" : "") + "\n";
  for (double eps255 : list) {
    c.log("robustness: " + nn + " eps " + fmt4(eps255) + "/255");
    const double eps = eps255 / 255.0;
    const double a_ebm = attacked_accuracy(bench, models.ebm, norm, eps, false);
    const double a_cnn = attacked_accuracy(bench, models.cnn, norm, eps, false);
    const double a_pur = purify ? attacked_accuracy(bench, models.ebm, norm, eps, true) : 0;
    series[0].x.push_back(eps255), series[0].y.push_back(a_ebm);
    series[1].x.push_back(eps255), series[1].y.push_back(a_cnn);
    if (purify) series[2].x.push_back(eps255), series[2].y.push_back(a_pur);
    char line[160];
    std::snprintf(line, sizeof(line), "%-4s %8.1f   %.4f   %.4f", nn.c_str(), eps255, a_ebm, a_cnn);
    results->table += line;
    if (purify) {
      std::snprintf(line, sizeof(line), "   %.4f", a_pur);
      results->table += line;
    }
    results->table += "\n";
    results->rows.push_back(
        {nn, fmt4(eps255), fmt4(a_ebm), fmt4(a_cnn), purify ? fmt4(a_pur) : "-"});
  }
  util::Json j = util::Json::object();
  j.set("eps_over_255", list);
  for (const auto& sr : series) j.set(sr.name, sr.y);
  results->acc.set(nn, j);
  const std::string file = "robustness_" + nn + ".png";
  report::write_png_grid(c.run_dir + "/" + file,
                         report::line_chart(series, 0, 1, 420, 260).unsqueeze(0), 1);
  results->pictures.push_back(file);
  c.summary.figures.push_back(c.run_dir + "/" + file);
}

// Records the metrics and writes the report's paragraph, table and charts, and the summary table.
void report_robustness(Context& c, const RobustnessSpec& spec, int64_t n,
                       const RobustnessResults& results) {
  const bool purify = spec.purify_steps > 0;
  c.metrics.set("images", n)
      .set("attack", "PGD, " + std::to_string(spec.steps) + " steps of " + fmt4(spec.step_factor) +
                         " * eps / steps, " +
                         (spec.random_start ? "random start" : "no random start") +
                         ", white box on each model")
      .set("purification", purify ? std::to_string(spec.purify_steps) +
                                        " Langevin steps on the marginal energy within L-inf " +
                                        fmt4(spec.purify_eps) +
                                        "/255 of the attacked image (the attack does not see it)"
                                  : "none")
      .set("accuracy", results.acc);
  c.page->paragraph(
      "Accuracy on " + std::to_string(n) + " test images under white-box PGD (" +
      std::to_string(spec.steps) + " steps, step = " + fmt4(spec.step_factor) + " eps / steps" +
      (spec.random_start ? ", random start" : "") +
      "). ebm: the conditional EBM as classifier (argmin over labels of E(x, y)); cnn: a plain CNN "
      "trained "
      "with cross-entropy on the same data; ebm_purified: the EBM's attacked images purified by "
      "Langevin "
      "steps on the marginal energy inside L-inf " +
      fmt4(spec.purify_eps) +
      "/255 before classification (the "
      "attack does not differentiate through the purification). Epsilon in units of 1/255.");
  c.page->table({"norm", "eps (/255)", "EBM", "CNN", "EBM + purification"}, results.rows);
  for (const auto& p : results.pictures) {
    c.page->paragraph(p +
                      ": accuracy (y, 0 to 1) against epsilon (x); red = EBM, blue = CNN, green = "
                      "EBM + purification.");
    c.page->image(p);
  }
  c.summary.table = results.table;
}

}  // namespace

void run_robustness(Context& c) {
  auto root = c.config->root();
  const auto [src, data, cls] = read_common(root);
  const RobustnessSpec spec = read_robustness_spec(root.section("robustness"));
  if (c.checked_only()) return;

  auto ebm = c.load_ebm(src);
  const int64_t classes = require_conditional(ebm, root, "robustness");
  auto classifier = c.classifier(cls, data);
  auto ds = load_data(data, c.seed);
  const int64_t n = std::min(spec.images, ds.size());
  auto x_all = conform(ds.images.narrow(0, 0, n), ebm.shape);
  auto y_all = ds.labels.narrow(0, 0, n);
  ebm.model->eval();
  auto ebm_ptr = ebm.model;
  MarginalEnergy marginal(ebm_ptr, classes);
  const LangevinSampler purifier(LangevinOptions(ebm.trainer->sampler().options()).steps(1));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  const AttackBench bench{spec, x_all, y_all, n, c.device, &marginal, &purifier, gen};

  auto ebm_logits = [&](const torch::Tensor& x) {
    torch::Tensor logits;
    classify_by_energy(*ebm_ptr, x, classes, &logits);
    return logits;
  };
  auto cnn_logits = [&](const torch::Tensor& x) { return classifier->forward(x); };
  const Classifiers models{ebm_logits, cnn_logits};
  RobustnessResults results;
  for (const auto& [norm, list] :
       {std::pair{eval::AttackNorm::kLinf, spec.linf}, std::pair{eval::AttackNorm::kL2, spec.l2}}) {
    if (list.empty()) continue;
    sweep_norm(c, bench, models, norm, list, &results);
  }
  report_robustness(c, spec, n, results);
}

}  // namespace ebm::experiments::detail
