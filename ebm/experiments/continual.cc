// `ebm eval continual`: class-incremental learning on split data (the paper's continual-learning
// experiment). The classes come in tasks, trained one after another with no access to earlier
// tasks' data; after each task every method classifies the test images of all tasks seen so far
// among all classes seen so far. Methods, the same net and the same batches (same step budget):
//   ebm       the class-conditional EBM trained by the core's trainer (its replay buffer of the
//             model's own samples carries over between tasks: the EBM's memory), classifying by
//             the lowest energy E(x, y) over the classes seen so far;
//   finetune  the same net as a classifier (logits -E(x, y)), cross-entropy over the classes seen
//             so far, fine-tuned task by task;
//   ewc       the same with elastic weight consolidation.
#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ebm/core/ewc.h"
#include "ebm/core/options_config.h"
#include "ebm/core/trainer.h"
#include "ebm/eval/classification.h"
#include "ebm/experiments/image_eval_internal.h"
#include "ebm/nets/image_net_config.h"
#include "ebm/report/progress.h"

namespace ebm::experiments::detail {

namespace {

// Section `continual` and the sections that build the EBM (model, langevin, replay_buffer,
// trainer).
struct ContinualSpec {
  std::vector<std::vector<int64_t>> tasks;
  int64_t iterations = 300, batch = 32, test_per_task = 1000, fisher_samples = 200;
  double baseline_lr = 1e-3, ewc_lambda = 1000;
  ImageEnergyOptions net;
  TrainerOptions trainer;
};

ContinualSpec read_continual_spec(const ConfigSection& root, int64_t classes, int64_t channels) {
  ContinualSpec spec;
  auto s = root.section("continual");
  std::vector<int64_t> all(static_cast<size_t>(std::max<int64_t>(classes, 0)));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  const auto order = s.get<std::vector<int64_t>>("class_order", all);
  const auto per_task = s.get<int64_t>("classes_per_task", 2);
  s.check(per_task >= 1 && per_task <= classes, "classes_per_task",
          "in [1, " + std::to_string(classes) + "]");
  std::vector<bool> used(all.size(), false);
  for (const int64_t y : order) {
    s.check(y >= 0 && y < classes && !used[static_cast<size_t>(y)], "class_order",
            "distinct labels in [0, " + std::to_string(classes) + ")");
    used[static_cast<size_t>(y)] = true;
  }
  s.check(order.size() % static_cast<size_t>(per_task) == 0 &&
              order.size() >= 2 * static_cast<size_t>(per_task),
          "class_order", "at least two tasks: a multiple of classes_per_task labels");
  for (size_t i = 0; i < order.size(); i += static_cast<size_t>(per_task))
    spec.tasks.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                            order.begin() + static_cast<std::ptrdiff_t>(i + per_task));
  spec.iterations = s.get<int64_t>("iterations_per_task", 300);
  s.check(spec.iterations >= 1 && spec.iterations <= 1000000, "iterations_per_task",
          "in [1, 1000000]");
  spec.test_per_task = s.get<int64_t>("test_images_per_task", 1000);
  s.check(spec.test_per_task >= 1, "test_images_per_task", ">= 1");
  spec.fisher_samples = s.get<int64_t>("fisher_samples", 200);
  s.check(spec.fisher_samples >= 1 && spec.fisher_samples <= 100000, "fisher_samples",
          "in [1, 100000]");
  spec.baseline_lr = s.get<double>("baseline_lr", 1e-3);
  s.check(spec.baseline_lr > 0, "baseline_lr", "> 0");
  spec.ewc_lambda = s.get<double>("ewc_lambda", 1000);
  s.check(spec.ewc_lambda >= 0, "ewc_lambda", ">= 0");
  auto t = root.section("trainer");
  spec.batch = t.get<int64_t>("batch_size", 32);
  t.check(spec.batch >= 2, "batch_size", ">= 2");
  spec.net = image_net_options(root.section("model"), channels);
  auto m = root.section("model");
  m.check(spec.net.num_classes() == classes, "num_classes",
          "the data's class count (" + std::to_string(classes) + ") with conditional: true");
  spec.trainer = trainer_options(t, root.section("langevin"), root.section("replay_buffer"),
                                 spec.net.num_classes());
  return spec;
}

// The images and labels of the given classes (a seeded random subset of at most `limit`; 0 = all).
struct TaskData {
  torch::Tensor x, y;
};
TaskData select_classes(const data::ImageDataset& ds, const std::vector<int64_t>& classes,
                        int64_t limit, uint64_t seed) {
  auto keep = torch::zeros({ds.size()}, torch::kBool);
  for (const int64_t y : classes) keep.logical_or_(ds.labels.eq(y));
  auto idx = keep.nonzero().flatten();
  if (limit > 0 && idx.numel() > limit) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    idx = idx.index_select(0, torch::randperm(idx.numel(), gen, torch::kLong).narrow(0, 0, limit));
  }
  const std::vector<int64_t> shape{ds.images.size(1), ds.images.size(2), ds.images.size(3)};
  return {conform(ds.images.index_select(0, idx), shape), ds.labels.index_select(0, idx)};
}

// -inf on the logits of classes not seen yet.
torch::Tensor mask_unseen(const torch::Tensor& logits, const torch::Tensor& seen) {
  return logits.masked_fill(seen.logical_not().unsqueeze(0),
                            -std::numeric_limits<float>::infinity());
}

// One method: its net, how it takes a batch, and what it does at the end of a task.
struct Method {
  std::string name;
  std::shared_ptr<ImageEnergyNet> net;
  std::function<void(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& seen)>
      step;
  std::function<void(const TaskData& task, const torch::Tensor& seen)> end_task;
};

Method make_ebm(const ContinualSpec& spec, const std::vector<int64_t>& shape,
                torch::Device device) {
  auto net = std::make_shared<ImageEnergyNet>(spec.net);
  auto trainer = std::make_shared<ContrastiveDivergenceTrainer>(net, shape, spec.trainer, device);
  Method m{"ebm", net, nullptr, nullptr};
  m.step = [trainer](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor&) {
    trainer->step(x, y);
  };
  m.end_task = [](const TaskData&, const torch::Tensor&) {};
  return m;
}

// The same net as a classifier, cross-entropy over the seen classes; with ewc_lambda > 0, EWC.
Method make_classifier(const std::string& name, const ContinualSpec& spec, double ewc_lambda,
                       torch::Device device) {
  auto net = std::make_shared<ImageEnergyNet>(spec.net);
  net->to(device);
  auto adam = std::make_shared<torch::optim::Adam>(net->parameters(),
                                                   torch::optim::AdamOptions(spec.baseline_lr));
  auto ewc = std::make_shared<ElasticWeightConsolidation>(ewc_lambda);
  const int64_t classes = spec.net.num_classes();
  const int64_t fisher_samples = spec.fisher_samples;
  Method m{name, net, nullptr, nullptr};
  m.step = [net, adam, ewc, classes](const torch::Tensor& x, const torch::Tensor& y,
                                     const torch::Tensor& seen) {
    auto logits = mask_unseen(-class_energies(*net, x, classes), seen);
    auto loss = torch::nn::functional::cross_entropy(logits, y);
    if (!ewc->empty()) loss = loss + ewc->penalty(net->parameters());
    adam->zero_grad();
    loss.backward();
    adam->step();
  };
  m.end_task = [net, ewc, classes, fisher_samples, ewc_lambda, device](const TaskData& task,
                                                                       const torch::Tensor& seen) {
    if (ewc_lambda <= 0) return;
    const int64_t n = std::min<int64_t>(fisher_samples, task.x.size(0));
    auto logits = [&](const torch::Tensor& v) {
      return mask_unseen(-class_energies(*net, v, classes), seen);
    };
    ewc->consolidate(net->parameters(),
                     diagonal_fisher(logits, net->parameters(), task.x.narrow(0, 0, n).to(device),
                                     task.y.narrow(0, 0, n).to(device)));
  };
  return m;
}

double accuracy_on(ImageEnergyNet& net, const TaskData& test, const torch::Tensor& seen,
                   int64_t classes, torch::Device device) {
  torch::NoGradGuard no_grad;
  net.eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < test.x.size(0); i += 250) {
    const int64_t b = std::min<int64_t>(250, test.x.size(0) - i);
    auto logits =
        mask_unseen(-class_energies(net, test.x.narrow(0, i, b).to(device), classes), seen);
    correct += logits.argmax(1).cpu().eq(test.y.narrow(0, i, b)).sum().item<int64_t>();
  }
  net.train();
  return static_cast<double>(correct) / static_cast<double>(test.x.size(0));
}

// Trains one method through the tasks on the shared batch order; returns accuracy[i][j].
std::vector<std::vector<double>> run_method(Context& c, const ContinualSpec& spec, Method& m,
                                            const std::vector<TaskData>& train,
                                            const std::vector<TaskData>& test) {
  const int64_t classes = spec.net.num_classes();
  auto seen = torch::zeros({classes}, torch::TensorOptions().dtype(torch::kBool).device(c.device));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 11);  // same batches per method
  torch::manual_seed(c.seed);
  std::vector<std::vector<double>> acc;
  report::Progress progress(m.name, spec.iterations * static_cast<int64_t>(spec.tasks.size()),
                            c.quiet ? nullptr : stderr);
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    for (const int64_t y : spec.tasks[t]) seen[y] = true;
    for (int64_t it = 0; it < spec.iterations; ++it) {
      auto idx = torch::randint(train[t].x.size(0), {spec.batch}, gen, torch::kLong);
      m.step(train[t].x.index_select(0, idx).to(c.device),
             train[t].y.index_select(0, idx).to(c.device), seen);
      progress.update(static_cast<int64_t>(t) * spec.iterations + it + 1,
                      "task " + std::to_string(t));
    }
    m.end_task(train[t], seen);
    std::vector<double> row;
    for (size_t j = 0; j <= t; ++j)
      row.push_back(accuracy_on(*m.net, test[j], seen, classes, c.device));
    acc.push_back(row);
  }
  progress.finish("");
  return acc;
}

std::string task_name(const std::vector<int64_t>& task) {
  std::string s;
  for (const int64_t y : task) s += (s.empty() ? "" : "+") + std::to_string(y);
  return s;
}

// metrics.json, the chart, the tables and the summary.
void report_continual(
    Context& c, const ContinualSpec& spec,
    const std::vector<std::pair<std::string, std::vector<std::vector<double>>>>& results) {
  util::Json methods = util::Json::object();
  std::vector<report::Series> series;
  std::vector<std::vector<std::string>> rows;
  std::string table =
      "method     mean accuracy over seen classes after each task   final  mean forgetting\n";
  for (const auto& [name, acc] : results) {
    const auto s = eval::summarize_continual(acc);
    util::Json matrix = util::Json::array();
    for (const auto& row : acc) matrix.push(util::Json(row));
    methods.set(name, util::Json::object()
                          .set("accuracy_matrix", matrix)
                          .set("mean_seen_accuracy", s.mean_seen_accuracy)
                          .set("final_accuracy", s.final_accuracy)
                          .set("forgetting", s.forgetting)
                          .set("mean_forgetting", s.mean_forgetting));
    report::Series line{name, {}, s.mean_seen_accuracy};
    std::string cells;
    for (size_t i = 0; i < s.mean_seen_accuracy.size(); ++i) {
      line.x.push_back(static_cast<double>(i + 1));
      cells += fmt4(s.mean_seen_accuracy[i]) + " ";
    }
    series.push_back(line);
    rows.push_back({name, cells, fmt4(s.final_accuracy), fmt4(s.mean_forgetting)});
    char buf[256];
    std::snprintf(buf, sizeof(buf), "%-10s %-50s %.4f %.4f\n", name.c_str(), cells.c_str(),
                  s.final_accuracy, s.mean_forgetting);
    table += buf;
  }
  std::string tasks;
  for (const auto& t : spec.tasks) tasks += (tasks.empty() ? "" : ", ") + task_name(t);
  c.metrics.set("tasks", tasks)
      .set("iterations_per_task", spec.iterations)
      .set("batch_size", spec.batch)
      .set("methods", methods)
      .set(
          "paper_split_mnist_class_incremental",
          "Du & Mordatch 2019 (split MNIST, not Fashion-MNIST): EBM 64.99%, EWC 19.80%, SI 19.67%");
  c.page->paragraph("Class-incremental learning over the tasks " + tasks + ", " +
                    std::to_string(spec.iterations) + " iterations of batch " +
                    std::to_string(spec.batch) +
                    " per task for every method (the same batches), no access to earlier tasks' "
                    "data. Accuracy: the test images of all tasks seen so far, classified among "
                    "all classes seen so far.");
  c.page->table({"method", "mean accuracy after each task", "final", "mean forgetting"}, rows);
  c.chart("continual_accuracy.png", series, 0, 1,
          "Mean accuracy over the seen classes (y, 0 to 1) after each task (x).");
  c.summary.table = table;
}

}  // namespace

void run_continual(Context& c) {
  auto root = c.config->root();
  const DataSpec data = read_data_spec(root.section("data"), "train");
  const auto train_ds = load_data(data, c.seed);
  const std::vector<int64_t> shape{train_ds.images.size(1), train_ds.images.size(2),
                                   train_ds.images.size(3)};
  const ContinualSpec spec = read_continual_spec(root, train_ds.num_classes(), shape[0]);
  if (c.checked_only()) return;
  DataSpec test_spec = data;
  test_spec.split = "test";
  test_spec.limit = 0;
  const auto test_ds = load_data(test_spec, c.seed);
  std::vector<TaskData> train, test;
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    train.push_back(select_classes(train_ds, spec.tasks[t], 0, c.seed + t));
    test.push_back(select_classes(test_ds, spec.tasks[t], spec.test_per_task, c.seed + 100 + t));
  }
  std::vector<Method> methods;
  torch::manual_seed(c.seed);
  methods.push_back(make_ebm(spec, shape, c.device));
  methods.push_back(make_classifier("finetune", spec, 0.0, c.device));
  methods.push_back(make_classifier("ewc", spec, spec.ewc_lambda, c.device));
  std::vector<std::pair<std::string, std::vector<std::vector<double>>>> results;
  for (auto& m : methods) {
    c.log("continual: " + m.name);
    results.emplace_back(m.name, run_method(c, spec, m, train, test));
  }
  report_continual(c, spec, results);
}

}  // namespace ebm::experiments::detail
