// `ebm eval robustness`: the class-conditional EBM used as a classifier (labels = argmin_y E(x, y))
// under white-box PGD attacks with L-inf and L2 budgets swept over epsilon, optionally followed by
// the original's Langevin "purification" inside a small budget around the attacked image; a plain
// CNN classifier trained on the same data is attacked the same way as the baseline.
#include <torch/torch.h>

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

void run_robustness(Context& c) {
  auto root = c.config->root();
  const auto [src, data, cls] = read_common(root);
  auto s = root.section("robustness");
  const auto images = s.get<int64_t>("images", 500);
  s.check(images >= 1, "images", ">= 1");
  const auto linf = s.get<std::vector<double>>("linf_eps", {0, 2, 4, 8, 16, 32});
  const auto l2 = s.get<std::vector<double>>("l2_eps", {0, 20, 40, 80, 160});
  for (double e : linf) s.check(e >= 0, "linf_eps", "a list of values >= 0 (units of 1/255)");
  for (double e : l2) s.check(e >= 0, "l2_eps", "a list of values >= 0 (units of 1/255)");
  const auto steps = s.get<int64_t>("steps", 10);
  s.check(steps >= 1, "steps", ">= 1");
  const auto step_factor = s.get<double>("step_factor", 2.5);
  s.check(step_factor > 0, "step_factor", "> 0 (step = step_factor * eps / steps)");
  const auto random_start = s.get<bool>("random_start", true);
  const auto purify_steps = s.get<int64_t>("purify_steps", 10);
  s.check(purify_steps >= 0, "purify_steps", ">= 0 (0 = no purification)");
  const auto purify_eps = s.get<double>("purify_eps", 8);
  s.check(purify_eps >= 0, "purify_eps", ">= 0 (units of 1/255)");
  const auto batch = s.get<int64_t>("batch_size", 100);
  s.check(batch >= 1, "batch_size", ">= 1");
  if (c.checked_only()) return;

  auto ebm = c.load_ebm(src);
  const int64_t classes = require_conditional(ebm, root, "robustness");
  auto classifier = c.classifier(cls, data);
  auto ds = load_data(data, c.seed);
  const int64_t n = std::min(images, ds.size());
  auto x_all = conform(ds.images.narrow(0, 0, n), ebm.shape);
  auto y_all = ds.labels.narrow(0, 0, n);
  ebm.model->eval();
  auto ebm_ptr = ebm.model;
  MarginalEnergy marginal(ebm_ptr, classes);
  const LangevinSampler purifier(LangevinOptions(ebm.trainer->sampler().options()).steps(1));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);

  auto ebm_logits = [&](const torch::Tensor& x) {
    torch::Tensor logits;
    classify_by_energy(*ebm_ptr, x, classes, &logits);
    return logits;
  };
  auto cnn_logits = [&](const torch::Tensor& x) { return classifier->forward(x); };
  // Accuracy of `logits_fn` on PGD examples made against `logits_fn` itself (white box); with
  // `purify`, the attacked images are purified before the EBM classifies them.
  auto accuracy = [&](const std::function<torch::Tensor(const torch::Tensor&)>& logits_fn,
                      eval::AttackNorm norm, double eps, bool purify) {
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i += batch) {
      const int64_t b = std::min(batch, n - i);
      auto x = x_all.narrow(0, i, b).to(c.device);
      auto y = y_all.narrow(0, i, b).to(c.device);
      auto opts = eval::PgdOptions()
                      .norm(norm)
                      .epsilon(eps)
                      .steps(steps)
                      .step_size(step_factor * eps / steps)
                      .random_start(random_start);
      auto loss = [&](const torch::Tensor& v) {
        return torch::nn::functional::cross_entropy(
            logits_fn(v), y,
            torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      };
      auto adv = eval::pgd_attack(loss, x, opts, gen);
      if (purify) {
        const auto anchor = adv.clone();
        for (int64_t k = 0; k < purify_steps; ++k) {
          adv = purifier.sample(marginal, adv, {}, {}, nullptr, gen);
          adv = eval::project(adv, anchor, eval::AttackNorm::kLinf, purify_eps / 255.0);
        }
      }
      torch::NoGradGuard ng;
      correct += logits_fn(adv).argmax(1).eq(y).sum().item<int64_t>();
    }
    return static_cast<double>(correct) / static_cast<double>(n);
  };

  report::JsonObject acc;
  std::string table;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> pictures;
  for (const auto& [norm, list] :
       {std::pair{eval::AttackNorm::kLinf, linf}, std::pair{eval::AttackNorm::kL2, l2}}) {
    if (list.empty()) continue;
    const std::string nn = eval::attack_norm_name(norm);
    std::vector<report::Series> series{{"ebm", {}, {}}, {"cnn", {}, {}}};
    if (purify_steps > 0) series.push_back({"ebm_purified", {}, {}});
    table += nn + " eps(/255)   EBM      CNN" +
             std::string(purify_steps > 0 ? "      EBM+purify" : "") + "\n";
    for (double e : list) {
      c.log("robustness: " + nn + " eps " + fmt4(e) + "/255");
      const double eps = e / 255.0;
      const double a_ebm = accuracy(ebm_logits, norm, eps, false);
      const double a_cnn = accuracy(cnn_logits, norm, eps, false);
      const double a_pur = purify_steps > 0 ? accuracy(ebm_logits, norm, eps, true) : 0;
      series[0].x.push_back(e), series[0].y.push_back(a_ebm);
      series[1].x.push_back(e), series[1].y.push_back(a_cnn);
      if (purify_steps > 0) series[2].x.push_back(e), series[2].y.push_back(a_pur);
      char line[160];
      std::snprintf(line, sizeof(line), "%-4s %8.1f   %.4f   %.4f", nn.c_str(), e, a_ebm, a_cnn);
      table += line;
      if (purify_steps > 0) {
        std::snprintf(line, sizeof(line), "   %.4f", a_pur);
        table += line;
      }
      table += "\n";
      rows.push_back({nn, fmt4(e), fmt4(a_ebm), fmt4(a_cnn), purify_steps > 0 ? fmt4(a_pur) : "-"});
    }
    report::JsonObject j;
    j.set("eps_over_255", list);
    for (const auto& sr : series) j.set(sr.name, sr.y);
    acc.set(nn, j);
    const std::string file = "robustness_" + nn + ".png";
    report::write_png_grid(c.run_dir + "/" + file,
                           report::line_chart(series, 0, 1, 420, 260).unsqueeze(0), 1);
    pictures.push_back(file);
    c.summary.figures.push_back(c.run_dir + "/" + file);
  }
  c.metrics.set("images", n)
      .set("attack", "PGD, " + std::to_string(steps) + " steps of " + fmt4(step_factor) +
                         " * eps / steps, " + (random_start ? "random start" : "no random start") +
                         ", white box on each model")
      .set("purification", purify_steps > 0
                               ? std::to_string(purify_steps) +
                                     " Langevin steps on the marginal energy within L-inf " +
                                     fmt4(purify_eps) +
                                     "/255 of the attacked image (the attack does not see it)"
                               : "none")
      .set("accuracy", acc);
  c.page->paragraph(
      "Accuracy on " + std::to_string(n) + " test images under white-box PGD (" +
      std::to_string(steps) + " steps, step = " + fmt4(step_factor) + " eps / steps" +
      (random_start ? ", random start" : "") +
      "). ebm: the conditional EBM as classifier (argmin over labels of E(x, y)); cnn: a plain CNN "
      "trained "
      "with cross-entropy on the same data; ebm_purified: the EBM's attacked images purified by "
      "Langevin "
      "steps on the marginal energy inside L-inf " +
      fmt4(purify_eps) +
      "/255 before classification (the "
      "attack does not differentiate through the purification). Epsilon in units of 1/255.");
  c.page->table({"norm", "eps (/255)", "EBM", "CNN", "EBM + purification"}, rows);
  for (const auto& p : pictures) {
    c.page->paragraph(p +
                      ": accuracy (y, 0 to 1) against epsilon (x); red = EBM, blue = CNN, green = "
                      "EBM + purification.");
    c.page->image(p);
  }
  c.summary.table = table;
}

}  // namespace ebm::experiments::detail
