// `ebm eval ood`: out-of-distribution detection by energy. In-distribution test images are the
// positives; each OOD set is scored against them by AUROC (ties averaged), for the EBM's score
// (-E(x); for a conditional model log sum_y exp(-E(x, y))) and for a plain CNN classifier's
// maximum softmax probability, side by side.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "ebm/build_info.h"
#include "ebm/eval/image_metrics.h"
#include "ebm/experiments/image_eval_internal.h"
#include "ebm/report/plot.h"
#include "ebm/report/png.h"

namespace ebm::experiments::detail {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kDefaultTextures = {"brick.png", "grass.png", "gravel.png"};

}  // namespace

OodSet read_ood_set(const ConfigSection& s, const std::string& name) {
  OodSet o;
  o.name = name;
  o.kind =
      s.choice("kind", "dataset",
               {"dataset", "sklearn_digits", "textures", "uniform", "constant", "interpolation"});
  if (o.kind == "dataset") {
    o.data = read_data_spec(s, "test");
  } else if (o.kind == "sklearn_digits") {
    o.path = s.get<std::string>("path", std::string(build::kSklearnDataDir) + "/digits.csv.gz");
  } else if (o.kind == "textures") {
    const auto dir = s.get<std::string>("path", build::kSkimageDataDir);
    auto names = s.get<std::vector<std::string>>("files", kDefaultTextures);
    for (const auto& f : names) o.files.push_back(fs::path(f).is_absolute() ? f : dir + "/" + f);
    o.crop = s.get<int64_t>("crop", 64);
    s.check(o.crop >= 2, "crop", ">= 2");
  }
  return o;
}

torch::Tensor make_ood_set(const OodSet& s, int64_t count, const std::vector<int64_t>& shape,
                           const torch::Tensor& in_dist, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  if (s.kind == "uniform") return torch::rand({count, shape[0], shape[1], shape[2]}, gen);
  if (s.kind == "constant") {
    // One random grey (or colour) level per image.
    return torch::rand({count, shape[0], 1, 1}, gen)
        .expand({count, shape[0], shape[1], shape[2]})
        .contiguous();
  }
  if (s.kind == "interpolation") {
    // Midpoints of random pairs of in-distribution images (as the paper's CIFAR-10 interpolation).
    auto a = torch::randint(in_dist.size(0), {count}, gen, torch::kLong);
    auto b = torch::randint(in_dist.size(0), {count}, gen, torch::kLong);
    return 0.5 * (in_dist.index_select(0, a) + in_dist.index_select(0, b));
  }
  data::ImageDataset ds;
  if (s.kind == "sklearn_digits") {
    ds = data::load_sklearn_digits(s.path);
  } else if (s.kind == "textures") {
    ds = data::random_crops(s.files, count, s.crop, shape[1], static_cast<int>(shape[0]), seed);
  } else {
    DataSpec d = s.data;
    d.limit = count;
    ds = load_data(d, seed);
  }
  auto idx = torch::randperm(ds.size(), gen, torch::kLong).narrow(0, 0, std::min(count, ds.size()));
  return conform(ds.images.index_select(0, idx), shape);
}

std::vector<double> ebm_scores(ImageEnergyNet& model, const torch::Tensor& x, int64_t classes,
                               torch::Device dev) {
  torch::NoGradGuard ng;
  std::vector<double> out;
  for (int64_t i = 0; i < x.size(0); i += 250) {
    auto b = x.narrow(0, i, std::min<int64_t>(250, x.size(0) - i)).to(dev);
    torch::Tensor score;
    if (classes > 0) {
      torch::Tensor logits;
      classify_by_energy(model, b, classes, &logits);
      score = torch::logsumexp(logits, 1);
    } else {
      score = -model.energy(b);
    }
    auto cpu = score.to(torch::kCPU, torch::kFloat64).contiguous();
    out.insert(out.end(), cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
  }
  return out;
}

std::vector<double> msp_scores(ImageClassifier& model, const torch::Tensor& x, torch::Device dev) {
  torch::NoGradGuard ng;
  std::vector<double> out;
  for (int64_t i = 0; i < x.size(0); i += 500) {
    auto b = x.narrow(0, i, std::min<int64_t>(500, x.size(0) - i)).to(dev);
    auto p = std::get<0>(torch::softmax(model->forward(b), 1).max(1))
                 .to(torch::kCPU, torch::kFloat64)
                 .contiguous();
    out.insert(out.end(), p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
  }
  return out;
}

void run_ood(Context& c) {
  auto root = c.config->root();
  const auto [src, data, cls] = read_common(root);
  auto s = root.section("ood");
  const auto count = s.get<int64_t>("count", 1000);
  s.check(count >= 10, "count", ">= 10");
  auto sets_section = s.section("sets");
  std::vector<OodSet> sets;
  for (const auto& name : sets_section.keys())
    sets.push_back(read_ood_set(sets_section.section(name), name));
  if (sets.empty()) throw ConfigError(s.where() + ": ood.sets: give at least one OOD set");
  if (c.checked_only()) return;

  auto ebm = c.load_ebm(src);
  auto classifier = c.classifier(cls, data);
  auto ds = load_data(data, c.seed);
  auto in_dist = conform(ds.images, ebm.shape);
  const int64_t classes = ebm.net_options.num_classes();
  ebm.model->eval();
  c.log("ood: scoring " + std::to_string(in_dist.size(0)) + " in-distribution images");
  const auto in_ebm = ebm_scores(*ebm.model, in_dist, classes, c.device);
  const auto in_msp = msp_scores(classifier, in_dist, c.device);
  std::vector<std::vector<std::string>> rows;
  std::string table = "OOD set            EBM AUROC   classifier MSP AUROC\n";
  std::vector<std::pair<std::string, std::vector<double>>> hist{{data.format + " (in)", in_ebm}};
  std::vector<torch::Tensor> previews{in_dist.narrow(0, 0, std::min<int64_t>(10, in_dist.size(0)))};
  util::Json per_set = util::Json::object();
  double mean_ebm = 0, mean_msp = 0;
  for (size_t i = 0; i < sets.size(); ++i) {
    const auto& set = sets[i];
    auto x = make_ood_set(set, count, ebm.shape, in_dist, c.seed + 101 * (i + 1));
    c.log("ood: " + set.name + " (" + std::to_string(x.size(0)) + " images)");
    const auto e = ebm_scores(*ebm.model, x, classes, c.device);
    const auto m = msp_scores(classifier, x, c.device);
    const double a_ebm = eval::auroc(in_ebm, e), a_msp = eval::auroc(in_msp, m);
    mean_ebm += a_ebm / sets.size();
    mean_msp += a_msp / sets.size();
    util::Json j = util::Json::object();
    j.set("ebm", a_ebm).set("classifier_msp", a_msp).set("images", x.size(0)).set("kind", set.kind);
    per_set.set(set.name, j);
    rows.push_back({set.name, set.kind, std::to_string(x.size(0)), fmt4(a_ebm), fmt4(a_msp)});
    char line[160];
    std::snprintf(line, sizeof(line), "%-18s %9.4f   %20.4f\n", set.name.c_str(), a_ebm, a_msp);
    table += line;
    hist.emplace_back(set.name, e);
    previews.push_back(x.narrow(0, 0, std::min<int64_t>(10, x.size(0))));
  }
  char line[160];
  std::snprintf(line, sizeof(line), "%-18s %9.4f   %20.4f\n", "mean", mean_ebm, mean_msp);
  table += line;
  rows.push_back({"mean", "", "", fmt4(mean_ebm), fmt4(mean_msp)});
  c.metrics.set("in_distribution", data.format + " " + data.split)
      .set("in_distribution_images", in_dist.size(0))
      .set("score_ebm", classes > 0 ? "logsumexp_y -E(x, y)" : "-E(x)")
      .set("score_classifier", "max softmax probability of the project CNN")
      .set("auroc", per_set)
      .set("mean_auroc", util::Json::object().set("ebm", mean_ebm).set("classifier_msp", mean_msp));
  c.page->paragraph(
      "AUROC with the " + std::to_string(in_dist.size(0)) + " in-distribution test images (" +
      data.format +
      ") as positives; ties count 1/2. 1.0 = the score separates the sets "
      "perfectly, 0.5 = chance, below 0.5 = the OOD set scores as more in-distribution.");
  c.page->table({"OOD set", "kind", "images", "EBM AUROC", "classifier MSP AUROC"}, rows);
  c.figure("ood_sets.png", torch::cat(previews), 10,
           "Row 1: in-distribution test images; then one row per OOD set, in the table's order.");
  double y_max = 0;
  auto series = score_histograms(hist, 40, &y_max);
  c.chart(
      "ood_scores.png", series, 0, y_max * 1.05,
      "Histograms of the EBM score (x: score, higher = more in-distribution; y: fraction of the "
      "set).");
  c.summary.table = table;
}

}  // namespace ebm::experiments::detail
