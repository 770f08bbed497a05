// `ebm eval crossclass`: chains started from test images of one class run under the conditional
// energy of every class; a separately trained CNN classifies where they end.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "ebm/experiments/image_eval_internal.h"

namespace ebm::experiments::detail {

void run_crossclass(Context& c) {
  auto root = c.config->root();
  const auto [src, data, cls] = read_common(root);
  auto s = root.section("crossclass");
  const auto steps = s.get<int64_t>("steps", 100);
  s.check(steps >= 1, "steps", ">= 1");
  const auto per_class = s.get<int64_t>("inputs_per_class", 4);
  s.check(per_class >= 1, "inputs_per_class", ">= 1");
  if (c.checked_only()) return;

  auto ebm = c.load_ebm(src);
  const int64_t classes = require_conditional(ebm, root, "crossclass");
  auto classifier = c.classifier(cls, data);
  auto ds = load_data(data, c.seed);
  // The first `per_class` test images of every class.
  std::vector<int64_t> picks;
  for (int64_t k = 0; k < classes; ++k) {
    auto idx = ds.labels.eq(k).nonzero().flatten();
    if (idx.size(0) < per_class)
      throw std::runtime_error(data.path + ": class " + std::to_string(k) + " has " +
                               std::to_string(idx.size(0)) + " images, inputs_per_class is " +
                               std::to_string(per_class));
    for (int64_t i = 0; i < per_class; ++i) picks.push_back(idx[i].item<int64_t>());
  }
  auto pick_t = torch::tensor(picks, torch::kLong);
  auto x =
      conform(ds.images.index_select(0, pick_t), ebm.shape).to(c.device);  // [classes*per, C, H, W]
  auto src_labels = ds.labels.index_select(0, pick_t);
  const LangevinSampler sampler(LangevinOptions(ebm.trainer->sampler().options()).steps(steps));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  const int64_t n = x.size(0);
  // Every input under every target label: [n * classes].
  auto starts = x.repeat_interleave(classes, 0);
  auto targets = torch::arange(classes, torch::kLong).repeat({n});
  c.log("crossclass: " + std::to_string(starts.size(0)) + " chains of " + std::to_string(steps) +
        " steps");
  auto out = sampler.sample(*ebm.model, starts, targets.to(c.device), {}, nullptr, gen);
  auto pred = torch::empty({out.size(0)}, torch::kLong);
  {
    torch::NoGradGuard ng;
    for (int64_t i = 0; i < out.size(0); i += 500) {
      auto part = out.narrow(0, i, std::min<int64_t>(500, out.size(0) - i));
      pred.narrow(0, i, part.size(0)).copy_(classifier->forward(part).argmax(1).cpu());
    }
  }
  auto src_rep = src_labels.repeat_interleave(classes, 0);
  auto off = src_rep.ne(targets);
  const double target_acc =
      pred.eq(targets).logical_and(off).sum().item<double>() / off.sum().item<double>();
  const double source_kept =
      pred.eq(src_rep).logical_and(off).sum().item<double>() / off.sum().item<double>();
  auto src_pred = torch::empty({n}, torch::kLong);
  {
    torch::NoGradGuard ng;
    src_pred.copy_(classifier->forward(x).argmax(1).cpu());
  }
  const double input_acc = src_pred.eq(src_labels).to(torch::kFloat64).mean().item<double>();
  const double moved = (out.cpu() - starts.cpu()).flatten(1).norm(2, 1).mean().item<double>();
  c.metrics.set("target_class_rate", target_acc)
      .set("source_class_rate", source_kept)
      .set("chance_rate", 1.0 / classes)
      .set("classifier_accuracy_on_inputs", input_acc)
      .set("mean_l2_moved", moved)
      .set("inputs", n)
      .set("steps", steps);
  c.page->paragraph(
      "Chains start from a test image of one class and run " + std::to_string(steps) +
      " Langevin steps under the conditional energy of every class. A separately trained "
      "CNN classifies the results: target_class_rate is how often it names the target "
      "class (source != target; chance " +
      fmt4(1.0 / classes) +
      "), source_class_rate how "
      "often it still names the source class.");
  c.page->table({"metric", "value"}, {{"target_class_rate", fmt4(target_acc)},
                                      {"source_class_rate", fmt4(source_kept)},
                                      {"classifier_accuracy_on_inputs", fmt4(input_acc)},
                                      {"mean_l2_moved", fmt4(moved)}});
  // Figure: the first input of every class; row = source, first column the input, then targets.
  std::vector<torch::Tensor> rows;
  for (int64_t k = 0; k < classes; ++k) {
    const int64_t i = k * per_class;
    rows.push_back(x[i].unsqueeze(0).cpu());
    rows.push_back(out.narrow(0, i * classes, classes).cpu());
  }
  c.figure(
      "crossclass.png", torch::cat(rows), classes + 1,
      "Row k: the input image of class k (first column), then the chain's result under the energy "
      "of class 0, 1, ..., " +
          std::to_string(classes - 1) + ".");
  char line[200];
  std::snprintf(line, sizeof(line),
                "target class rate %.4f (chance %.4f), source class rate %.4f, classifier accuracy "
                "on inputs %.4f\n",
                target_acc, 1.0 / classes, source_kept, input_acc);
  c.summary.table = line;
}

}  // namespace ebm::experiments::detail
