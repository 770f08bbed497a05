// `ebm eval hybrid`: class-conditional EBMs as classifiers, side by side with a plain CNN: the
// hybrid model (contrastive divergence + the cross-entropy of p(y | x), trainer.classify_weight;
// the JEM recipe) against the CD-only model and the CNN. For each: test accuracy, expected
// calibration error with a reliability diagram, OOD AUROC per set with two scores (p(x): log sum_y
// exp(-E(x, y)), the CNN's log sum exp of its logits; and max p(y | x)), and accuracy under
// white-box PGD (L-inf and L2 budgets).
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ebm/eval/classification.h"
#include "ebm/eval/image_metrics.h"
#include "ebm/experiments/image_eval_internal.h"

namespace ebm::experiments::detail {

namespace {

struct HybridSpec {
  std::vector<std::pair<std::string, EbmSource>> models;
  DataSpec data;
  ClassifierSpec classifier;
  int64_t bins = 15, ood_count = 1000;
  std::vector<OodSet> sets;
  RobustnessSpec robustness;
};

HybridSpec read_hybrid_spec(const ConfigSection& root) {
  HybridSpec h;
  auto models = root.section("models");
  for (const auto& name : models.keys()) {
    h.models.emplace_back(name, read_ebm_source(models.section(name)));
  }
  if (h.models.empty())
    throw ConfigError(models.where() +
                      ": models: give at least one conditional EBM (name: "
                      "{train_config: ...})");
  h.data = read_data_spec(root.section("data"), "test");
  h.classifier =
      read_classifier_spec(root.section("classifier"), "runs/classifiers/" + h.data.format + ".pt");
  auto cal = root.section("calibration");
  h.bins = cal.get<int64_t>("bins", 15);
  cal.check(h.bins >= 1 && h.bins <= 1000, "bins", "in [1, 1000]");
  auto ood = root.section("ood");
  h.ood_count = ood.get<int64_t>("count", 1000);
  ood.check(h.ood_count >= 10, "count", ">= 10");
  auto sets = ood.section("sets");
  for (const auto& name : sets.keys()) h.sets.push_back(read_ood_set(sets.section(name), name));
  h.robustness = read_robustness_spec(root.section("robustness"));
  return h;
}

// One classifier under test: logits for a batch, and its p(x) score (higher = more
// in-distribution).
struct Candidate {
  std::string name;
  LogitsFn logits;
};

// Logits of all images, in batches, without gradients.
torch::Tensor all_logits(const Candidate& m, const torch::Tensor& x, torch::Device device) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += 250)
    out.push_back(m.logits(x.narrow(0, i, std::min<int64_t>(250, x.size(0) - i)).to(device)).cpu());
  return torch::cat(out).to(torch::kFloat64);
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// The two OOD scores from logits: log sum exp (p(x) up to log Z) and max softmax.
std::pair<std::vector<double>, std::vector<double>> ood_scores(const torch::Tensor& logits) {
  return {to_vector(torch::logsumexp(logits, 1)),
          to_vector(std::get<0>(torch::softmax(logits, 1).max(1)))};
}

// Everything measured for one candidate.
struct CandidateResult {
  util::Json json = util::Json::object();
  eval::Calibration calibration;
  std::vector<double> mean_auroc{0, 0};       // p(x), max p(y|x)
  std::vector<std::vector<double>> attacked;  // per norm: accuracy per budget
};

CandidateResult measure(Context& c, const HybridSpec& h, const Candidate& m, const torch::Tensor& x,
                        const torch::Tensor& y, const std::vector<torch::Tensor>& ood_sets,
                        const AttackBench& bench) {
  CandidateResult r;
  const auto logits = all_logits(m, x, c.device);
  r.calibration = eval::calibration(torch::softmax(logits, 1), y, h.bins);
  const auto [in_px, in_msp] = ood_scores(logits);
  util::Json ood = util::Json::object();
  for (size_t i = 0; i < h.sets.size(); ++i) {
    const auto [px, msp] = ood_scores(all_logits(m, ood_sets[i], c.device));
    const double a_px = eval::auroc(in_px, px), a_msp = eval::auroc(in_msp, msp);
    ood.set(h.sets[i].name, util::Json::object().set("p_x", a_px).set("max_p_y_given_x", a_msp));
    r.mean_auroc[0] += a_px / static_cast<double>(h.sets.size());
    r.mean_auroc[1] += a_msp / static_cast<double>(h.sets.size());
  }
  util::Json robust = util::Json::object();
  for (const auto& [norm, list] : {std::pair{eval::AttackNorm::kLinf, h.robustness.linf},
                                   std::pair{eval::AttackNorm::kL2, h.robustness.l2}}) {
    std::vector<double> accs;
    for (const double eps : list) {
      c.log("hybrid: " + m.name + " " + eval::attack_norm_name(norm) + " eps " + fmt4(eps) +
            "/255");
      accs.push_back(attacked_accuracy(bench, m.logits, norm, eps / 255.0, false));
    }
    robust.set(eval::attack_norm_name(norm), accs);
    r.attacked.push_back(accs);
  }
  r.json.set("accuracy", r.calibration.accuracy)
      .set("ece", r.calibration.ece)
      .set("reliability", util::Json::object()
                              .set("confidence", r.calibration.confidence)
                              .set("accuracy", r.calibration.bin_accuracy)
                              .set("count", r.calibration.count))
      .set("auroc", ood)
      .set("mean_auroc",
           util::Json::object().set("p_x", r.mean_auroc[0]).set("max_p_y_given_x", r.mean_auroc[1]))
      .set("pgd_accuracy", robust);
  return r;
}

// The reliability diagram: accuracy against mean confidence per non-empty bin, and the diagonal.
std::vector<report::Series> reliability_series(
    const std::vector<std::pair<std::string, CandidateResult>>& results) {
  std::vector<report::Series> series;
  for (const auto& [name, r] : results) {
    report::Series s{name, {}, {}};
    for (size_t b = 0; b < r.calibration.count.size(); ++b) {
      if (r.calibration.count[b] == 0) continue;
      s.x.push_back(r.calibration.confidence[b]);
      s.y.push_back(r.calibration.bin_accuracy[b]);
    }
    series.push_back(s);
  }
  series.push_back({"perfect calibration", {0, 1}, {0, 1}});
  return series;
}

void report_hybrid(Context& c, const HybridSpec& h, int64_t test_images,
                   const std::vector<std::pair<std::string, CandidateResult>>& results) {
  util::Json models = util::Json::object();
  std::vector<std::vector<std::string>> rows;
  std::string table = "model        accuracy  ECE     AUROC p(x)  AUROC max p(y|x)";
  for (const double eps : h.robustness.linf) table += "  Linf " + fmt4(eps).substr(0, 4);
  table += "\n";
  for (const auto& [name, r] : results) {
    models.set(name, r.json);
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%-12s %.4f    %.4f  %.4f      %.4f          ", name.c_str(),
                  r.calibration.accuracy, r.calibration.ece, r.mean_auroc[0], r.mean_auroc[1]);
    table += buf;
    std::string linf;
    for (const double a : r.attacked[0]) linf += fmt4(a) + " ";
    table += linf + "\n";
    rows.push_back({name, fmt4(r.calibration.accuracy), fmt4(r.calibration.ece),
                    fmt4(r.mean_auroc[0]), fmt4(r.mean_auroc[1]), linf});
  }
  c.metrics.set("models", models)
      .set("test_images", test_images)
      .set("pgd_images", std::min(h.robustness.images, test_images))
      .set("eps_over_255",
           util::Json::object().set("linf", h.robustness.linf).set("l2", h.robustness.l2))
      .set("score_p_x", "log sum_y exp(logit_y): -E(x) up to log Z for an EBM (logits -E(x, y))")
      .set("targets",
           "hybrid: accuracy >= 0.88, mean OOD AUROC >= 0.95 with each set above the "
           "CNN's, PGD accuracy above the CNN's at every budget > 0");
  c.page->paragraph(
      "Each model as a classifier on " + std::to_string(test_images) +
      " test images: accuracy, expected calibration error (" + std::to_string(h.bins) +
      " bins), mean OOD AUROC over the sets with the score p(x) (log sum_y exp of the logits) and "
      "max p(y | x), and accuracy under white-box PGD at each L-inf budget (/255).");
  c.page->table({"model", "accuracy", "ECE", "mean AUROC p(x)", "mean AUROC max p(y|x)",
                 "PGD L-inf accuracy per budget"},
                rows);
  std::vector<std::vector<std::string>> ood_rows;
  for (size_t i = 0; i < h.sets.size(); ++i) {
    std::vector<std::string> row{h.sets[i].name};
    for (const auto& [name, r] : results) {
      (void)name;
      row.push_back(fmt4(r.json.at("auroc").at(h.sets[i].name).at("p_x").number()) + " / " +
                    fmt4(r.json.at("auroc").at(h.sets[i].name).at("max_p_y_given_x").number()));
    }
    ood_rows.push_back(row);
  }
  std::vector<std::string> header{"OOD set (AUROC p(x) / max p(y|x))"};
  for (const auto& [name, r] : results) header.push_back(name);
  c.page->table(header, ood_rows);
  c.chart("reliability.png", reliability_series(results), 0, 1,
          "Reliability diagram: accuracy (y) against mean confidence (x) of each confidence bin; "
          "the diagonal is perfect calibration.");
  for (size_t n = 0; n < 2; ++n) {
    const auto& eps = n == 0 ? h.robustness.linf : h.robustness.l2;
    if (eps.empty()) continue;
    std::vector<report::Series> series;
    for (const auto& [name, r] : results) series.push_back({name, eps, r.attacked[n]});
    const std::string norm = n == 0 ? "linf" : "l2";
    c.chart("pgd_" + norm + ".png", series, 0, 1,
            "Accuracy under PGD (" + norm + ") against the budget (x, /255).");
  }
  c.summary.table = table;
}

}  // namespace

void run_hybrid(Context& c) {
  auto root = c.config->root();
  const HybridSpec h = read_hybrid_spec(root);
  if (c.checked_only()) return;
  std::vector<LoadedImageEbm> ebms;
  for (const auto& [name, src] : h.models) {
    ebms.push_back(c.load_ebm(src));
    require_conditional(ebms.back(), root, "hybrid");
    ebms.back().model->eval();
  }
  auto cnn = c.classifier(h.classifier, h.data);
  cnn->eval();
  const auto ds = load_data(h.data, c.seed);
  const auto& shape = ebms.front().shape;
  const auto x = conform(ds.images, shape);
  const auto y = ds.labels;
  std::vector<torch::Tensor> ood_sets;
  for (size_t i = 0; i < h.sets.size(); ++i)
    ood_sets.push_back(make_ood_set(h.sets[i], h.ood_count, shape, x, c.seed + 101 * (i + 1)));
  const int64_t n = std::min(h.robustness.images, ds.size());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  const AttackBench bench{h.robustness, x.narrow(0, 0, n), y.narrow(0, 0, n), n,
                          c.device,     nullptr,           nullptr,           gen};
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < ebms.size(); ++i) {
    auto net = ebms[i].model;
    const int64_t classes = ebms[i].net_options.num_classes();
    candidates.push_back({h.models[i].first, [net, classes](const torch::Tensor& v) {
                            return -class_energies(*net, v, classes);
                          }});
  }
  candidates.push_back({"cnn", [cnn](const torch::Tensor& v) mutable { return cnn->forward(v); }});
  std::vector<std::pair<std::string, CandidateResult>> results;
  for (const auto& m : candidates) {
    c.log("hybrid: measuring " + m.name);
    results.emplace_back(m.name, measure(c, h, m, x, y, ood_sets, bench));
  }
  report_hybrid(c, h, x.size(0), results);
}

}  // namespace ebm::experiments::detail
