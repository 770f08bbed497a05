// `ebm eval`: the shared machinery of the image experiments (configs, data, the EBM and classifier
// behind them, the run directory and report) and the command's entry point. Each experiment
// lives in its own file: generation, completion, crossclass, ood, robustness, compose.
#include "ebm/experiments/image_eval.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <utility>

#include "ebm/core/archive_file.h"
#include "ebm/core/checkpoint.h"
#include "ebm/core/device.h"
#include "ebm/experiments/image_eval_internal.h"
#include "ebm/report/png.h"
#include "ebm/report/progress.h"
#include "ebm/util/files.h"

namespace ebm::experiments {

namespace fs = std::filesystem;

const std::vector<std::string>& image_experiments() {
  static const std::vector<std::string> kNames{"generation", "completion", "crossclass", "ood",
                                               "robustness", "compose",    "continual",  "hybrid"};
  return kNames;
}

namespace detail {

std::string fmt4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}

EbmSource read_ebm_source(const ConfigSection& s) {
  EbmSource e;
  e.train_config = s.get<std::string>("train_config", "");
  e.checkpoint = s.get<std::string>("checkpoint", "");
  e.ensemble = s.get<int64_t>("ensemble", 1);
  s.check(e.ensemble >= 1, "ensemble", ">= 1");
  if (e.train_config.empty() && e.checkpoint.empty())
    throw ConfigError(s.where() + ": " + s.path("train_config") +
                      ": give train_config (an `ebm train` config) or checkpoint");
  return e;
}

DataSpec read_data_spec(const ConfigSection& s, const std::string& default_split) {
  DataSpec d;
  d.format = s.choice("format", "fashion_mnist",
                      {"fashion_mnist", "mnist", "idx", "cifar10", "cifar100", "imagenet32",
                       "imagenet64", "dsprites", "folder", "svhn", "sklearn_digits"});
  d.path = s.require<std::string>("path");
  d.split = s.get<std::string>("split", default_split);
  d.limit = s.get<int64_t>("limit", 0);
  s.check(d.limit >= 0, "limit", ">= 0 (0 = all)");
  return d;
}

data::ImageDataset load_data(const DataSpec& d, uint64_t seed) {
  auto ds = data::load_image_dataset(d.format, d.path, d.split);
  if (d.limit > 0 && d.limit < ds.size()) {
    // A seeded random subset, so that a limit does not pick one class of a sorted file.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 7919 + 17);
    auto idx = torch::randperm(ds.size(), gen, torch::kLong).narrow(0, 0, d.limit);
    ds.images = ds.images.index_select(0, idx);
    ds.labels = ds.labels.index_select(0, idx);
    if (ds.factors.defined()) ds.factors = ds.factors.index_select(0, idx);
  }
  return ds;
}

ClassifierSpec read_classifier_spec(const ConfigSection& s, const std::string& default_path) {
  ClassifierSpec c;
  c.path = s.get<std::string>("path", default_path);
  c.epochs = s.get<int64_t>("epochs", c.epochs);
  s.check(c.epochs >= 1, "epochs", ">= 1");
  c.batch_size = s.get<int64_t>("batch_size", c.batch_size);
  s.check(c.batch_size >= 1, "batch_size", ">= 1");
  c.lr = s.get<double>("lr", c.lr);
  s.check(c.lr > 0, "lr", "> 0");
  c.filters = s.get<std::vector<int64_t>>("filters", c.filters);
  s.check(!c.filters.empty(), "filters", "a non-empty list");
  c.train_limit = s.get<int64_t>("train_limit", 0);
  s.check(c.train_limit >= 0, "train_limit", ">= 0 (0 = the whole train split)");
  c.feature_dim = s.get<int64_t>("feature_dim", c.feature_dim);
  s.check(c.feature_dim >= 1, "feature_dim", ">= 1");
  return c;
}

torch::Tensor conform(const torch::Tensor& images, const std::vector<int64_t>& shape) {
  auto x =
      images.scalar_type() == torch::kUInt8 ? data::to_float(images) : images.to(torch::kFloat32);
  if (x.size(1) != shape[0]) x = data::to_channels(x, shape[0]);
  if (x.size(2) != shape[1] || x.size(3) != shape[2]) x = data::resize(x, shape[1], shape[2]);
  return x.clamp(0, 1);
}

void train_classifier(ImageClassifier& model, const torch::Tensor& images,
                      const torch::Tensor& labels, const ClassifierSpec& spec, torch::Device device,
                      uint64_t seed, bool quiet) {
  model->to(device);
  model->train();
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(spec.lr));
  const int64_t n = images.size(0), per_epoch = std::max<int64_t>(1, n / spec.batch_size);
  report::Progress progress("classifier", spec.epochs * per_epoch, quiet ? nullptr : stderr);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  double loss_avg = 0;
  for (int64_t e = 0; e < spec.epochs; ++e) {
    auto perm = torch::randperm(n, gen, torch::kLong);
    for (int64_t b = 0; b < per_epoch; ++b) {
      auto idx =
          perm.narrow(0, b * spec.batch_size, std::min(spec.batch_size, n - b * spec.batch_size));
      auto x = images.index_select(0, idx);
      x = (x.scalar_type() == torch::kUInt8 ? data::to_float(x) : x).to(device);
      auto y = labels.index_select(0, idx).to(device);
      auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      loss_avg = 0.98 * loss_avg + 0.02 * loss.item<double>();
      progress.update(e * per_epoch + b + 1,
                      "loss=" + fmt4(loss_avg / (1 - std::pow(0.98, e * per_epoch + b + 1))));
    }
  }
  progress.finish("");
  model->eval();
}

double classifier_accuracy(ImageClassifier& model, const torch::Tensor& images,
                           const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const auto dev = model->parameters().front().device();
  int64_t correct = 0;
  for (int64_t i = 0; i < images.size(0); i += 500) {
    auto x = images.narrow(0, i, std::min<int64_t>(500, images.size(0) - i));
    x = (x.scalar_type() == torch::kUInt8 ? data::to_float(x) : x).to(dev);
    auto pred = model->forward(x).argmax(1).cpu();
    correct += pred.eq(labels.narrow(0, i, x.size(0))).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / std::max<int64_t>(1, images.size(0));
}

CommonSpec read_common(const ConfigSection& root) {
  CommonSpec c;
  c.ebm = read_ebm_source(root.section("ebm"));
  c.data = read_data_spec(root.section("data"), "test");
  c.classifier =
      read_classifier_spec(root.section("classifier"), "runs/classifiers/" + c.data.format + ".pt");
  return c;
}

int64_t require_conditional(const LoadedImageEbm& ebm, const ConfigSection& root,
                            const std::string& experiment) {
  const int64_t classes = ebm.net_options.num_classes();
  if (classes < 2)
    throw ConfigError(root.where("ebm") + ": " + experiment + " needs a class-conditional EBM (" +
                      ebm.checkpoint +
                      " is unconditional; train one with model.conditional: true)");
  return classes;
}

bool Context::checked_only() const {
  config->check_all_used();
  return check_only;
}

void Context::log(const std::string& line) const {
  if (!quiet) std::cerr << line << "\n";
}

LoadedImageEbm Context::load_ebm(const EbmSource& src,
                                 std::vector<std::shared_ptr<ImageEnergyNet>>* ensemble) {
  std::string dir, file;
  if (!src.checkpoint.empty()) {
    if (fs::is_directory(src.checkpoint)) {
      dir = src.checkpoint;
    } else if (fs::exists(src.checkpoint)) {
      file = src.checkpoint;
    } else {
      throw std::runtime_error("ebm.checkpoint '" + src.checkpoint + "' does not exist" +
                               (src.train_config.empty() ? ""
                                                         : " (train it with `ebm train --config " +
                                                               src.train_config + "`)"));
    }
  } else {
    auto tc = Config::load_file(src.train_config);
    const std::string train_name = tc->root().get<std::string>("name", "run");
    dir = "runs/" + train_name + "/checkpoints";
    if (!CheckpointManager(dir).latest()) {
      log("no checkpoint in " + dir + ": training " + src.train_config + " first (`ebm train`)");
      TrainRunOptions t;
      t.config_path = src.train_config;
      t.quiet = quiet;
      train_image_ebm(t);
    }
  }
  std::vector<std::string> files;
  if (!file.empty()) {
    files.push_back(file);
  } else {
    auto all = CheckpointManager(dir).list();
    if (all.empty()) throw std::runtime_error("no checkpoint in " + dir);
    const auto k = std::min<size_t>(all.size(), static_cast<size_t>(src.ensemble));
    if (k < static_cast<size_t>(src.ensemble))
      log("ensemble of " + std::to_string(src.ensemble) + " requested, " + dir + " holds " +
          std::to_string(all.size()) + ": using " + std::to_string(k));
    files.assign(all.end() - static_cast<std::ptrdiff_t>(k), all.end());
  }
  log("EBM: " + files.back() +
      (files.size() > 1 ? " (+" + std::to_string(files.size() - 1) + " older in the ensemble)"
                        : ""));
  auto newest = load_image_ebm(files.back(), device);
  if (ensemble) {
    ensemble->clear();
    for (size_t i = 0; i + 1 < files.size(); ++i)
      ensemble->push_back(load_image_ebm(files[i], device).model);
    ensemble->push_back(newest.model);
  }
  return newest;
}

ImageClassifier Context::classifier(const ClassifierSpec& spec, const DataSpec& train_data) {
  auto make = [&](int64_t channels, int64_t classes) {
    return ImageClassifier(ImageClassifierOptions()
                               .in_channels(channels)
                               .num_classes(classes)
                               .filters(spec.filters)
                               .feature_dim(spec.feature_dim));
  };
  if (fs::exists(spec.path)) {
    torch::serialize::InputArchive in;
    CheckpointManager::load(spec.path, in, device);
    torch::Tensor meta;
    try {
      in.read("meta.classifier", meta);  // {channels, classes, feature_dim, filters...}
    } catch (const c10::Error&) {
      throw std::runtime_error(spec.path +
                               ": not a classifier of `ebm eval` (no meta.classifier); "
                               "delete it or set classifier.path");
    }
    auto m = meta.to(torch::kCPU);
    std::vector<int64_t> filters(m.data_ptr<int64_t>() + 3, m.data_ptr<int64_t>() + m.numel());
    if (filters != spec.filters || m[2].item<int64_t>() != spec.feature_dim)
      throw std::runtime_error(spec.path +
                               " was trained with other classifier.filters / feature_dim "
                               "than the config's; delete it to retrain");
    auto model = make(m[0].item<int64_t>(), m[1].item<int64_t>());
    model->load(in);
    model->to(device);
    model->eval();
    log("classifier: " + spec.path);
    note_classifier(model, spec, train_data);
    return model;
  }
  DataSpec d = train_data;
  d.split = "train";
  d.limit = spec.train_limit;
  log("classifier: training on " + d.format + " " + d.path + " (" + spec.path + " does not exist)");
  auto ds = load_data(d, seed);
  auto model = make(ds.images.size(1), ds.num_classes());
  torch::manual_seed(seed);
  train_classifier(model, ds.images, ds.labels, spec, device, seed, quiet);
  torch::serialize::OutputArchive out;
  model->save(out);
  std::vector<int64_t> meta{ds.images.size(1), ds.num_classes(), spec.feature_dim};
  meta.insert(meta.end(), spec.filters.begin(), spec.filters.end());
  out.write("meta.classifier", torch::tensor(meta, torch::kLong));
  write_archive_file(spec.path, out);
  note_classifier(model, spec, train_data);
  return model;
}

void Context::note_classifier(ImageClassifier& model, const ClassifierSpec& spec,
                              const DataSpec& data) {
  DataSpec test = data;
  test.split = "test";
  test.limit = 2000;
  double acc = -1;
  try {
    auto ds = load_data(test, seed);
    acc = classifier_accuracy(model, ds.images, ds.labels);
    log("classifier: accuracy " + fmt4(acc) + " on " + std::to_string(ds.size()) + " test images");
  } catch (const std::exception& e) {
    log(std::string("classifier: no test accuracy (") + e.what() + ")");
  }
  metrics.set("classifier", util::Json::object().set("path", spec.path).set("test_accuracy", acc));
}

std::string Context::figure(const std::string& file, const torch::Tensor& images, int64_t nrow,
                            const std::string& caption) {
  const std::string path = run_dir + "/" + file;
  report::write_png_grid(path, images.detach().cpu(), nrow);
  page->paragraph(caption);
  page->image(file, static_cast<int>(
                        std::min<int64_t>(1000, 4 * images.size(-1) * std::max<int64_t>(nrow, 1))));
  summary.figures.push_back(path);
  return path;
}

std::vector<report::Series> score_histograms(
    const std::vector<std::pair<std::string, std::vector<double>>>& sets, int bins, double* y_max) {
  double lo = 1e300, hi = -1e300;
  for (const auto& [n, v] : sets)
    for (double s : v) lo = std::min(lo, s), hi = std::max(hi, s);
  if (!(hi > lo)) hi = lo + 1;
  std::vector<report::Series> out;
  *y_max = 0;
  for (const auto& [name, v] : sets) {
    report::Series s{name, {}, std::vector<double>(static_cast<size_t>(bins), 0.0)};
    for (double x : v) {
      auto b = static_cast<int>((x - lo) / (hi - lo) * bins);
      s.y[static_cast<size_t>(std::clamp(b, 0, bins - 1))] += 1.0 / static_cast<double>(v.size());
    }
    for (int b = 0; b < bins; ++b) s.x.push_back(lo + (b + 0.5) * (hi - lo) / bins);
    for (double y : s.y) *y_max = std::max(*y_max, y);
    out.push_back(std::move(s));
  }
  return out;
}

std::string Context::chart(const std::string& file, const std::vector<report::Series>& series,
                           double y_min, double y_max, const std::string& caption, int64_t width,
                           int64_t height) {
  const std::string path = run_dir + "/" + file;
  report::write_png_grid(path, report::line_chart(series, y_min, y_max, width, height).unsqueeze(0),
                         1);
  std::string legend;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto col = report::palette(static_cast<int64_t>(i));
    char rgb[64];
    std::snprintf(rgb, sizeof(rgb), "rgb(%d,%d,%d)", static_cast<int>(col[0] * 255),
                  static_cast<int>(col[1] * 255), static_cast<int>(col[2] * 255));
    legend += "<span style=\"color:" + std::string(rgb) + "\">&#9632; " +
              report::html_escape(series[i].name) + "</span> ";
  }
  page->paragraph(caption);
  page->image(file).raw("<p>" + legend + "</p>");
  summary.figures.push_back(path);
  return path;
}

}  // namespace detail

EvalRunSummary run_image_eval(const EvalRunOptions& o) {
  const auto& names = image_experiments();
  if (std::find(names.begin(), names.end(), o.experiment) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown experiment '" + o.experiment + "' (known: " + list + ")");
  }
  detail::Context c;
  c.experiment = o.experiment;
  c.config_path = o.config_path;
  c.quiet = o.quiet;
  c.check_only = o.check_only;
  c.config = Config::load_file(o.config_path, o.overrides);
  auto root = c.config->root();
  const auto declared = root.get<std::string>("experiment", o.experiment);
  if (declared != o.experiment)
    throw ConfigError(root.where("experiment") + ": this config is for `ebm eval " + declared +
                      "`, not `ebm eval " + o.experiment + "`");
  c.name = root.get<std::string>("name", o.experiment);
  c.seed = static_cast<uint64_t>(root.get<int64_t>("seed", 0));
  c.device = resolve_device(root.get<std::string>("device", "auto"));
  c.run_dir = o.out_dir.empty() ? "runs/" + c.name : o.out_dir;
  c.summary.run_dir = c.run_dir;
  c.page = std::make_unique<report::HtmlPage>(c.name + ": " + o.experiment);
  if (!o.check_only) fs::create_directories(c.run_dir);
  c.metrics.set("experiment", o.experiment).set("config", o.config_path);
  if (o.experiment == "generation") detail::run_generation(c);
  if (o.experiment == "completion") detail::run_completion(c);
  if (o.experiment == "crossclass") detail::run_crossclass(c);
  if (o.experiment == "ood") detail::run_ood(c);
  if (o.experiment == "robustness") detail::run_robustness(c);
  if (o.experiment == "compose") detail::run_compose(c);
  if (o.experiment == "continual") detail::run_continual(c);
  if (o.experiment == "hybrid") detail::run_hybrid(c);
  if (o.check_only) {
    c.summary.table = o.config_path + ": a valid " + o.experiment + " config";
    return c.summary;
  }
  util::write_file_atomic(c.run_dir + "/config.yaml", c.config->dump());
  c.summary.metrics_json = c.run_dir + "/metrics.json";
  util::write_file_atomic(c.summary.metrics_json, c.metrics.dump() + "\n");
  c.page->heading("Summary", 2).raw("<pre>" + report::html_escape(c.summary.table) + "</pre>");
  c.summary.report_html = c.run_dir + "/report.html";
  util::write_file_atomic(c.summary.report_html, c.page->str());
  return c.summary;
}

}  // namespace ebm::experiments
