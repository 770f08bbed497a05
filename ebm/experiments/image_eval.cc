// `ebm eval`: the shared machinery of the image experiments, and the generation, completion and
// cross-class experiments. OOD, robustness and composition live in their own files.
#include "ebm/experiments/image_eval.h"

#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <map>

#include "ebm/core/checkpoint.h"
#include "ebm/eval/features.h"
#include "ebm/eval/image_metrics.h"
#include "ebm/experiments/image_eval_internal.h"
#include "ebm/report/png.h"
#include "ebm/report/progress.h"
#include "ebm/util/files.h"

namespace ebm::experiments {

namespace fs = std::filesystem;
using namespace detail;  // NOLINT(google-build-using-namespace)

const std::vector<std::string>& image_experiments() {
  static const std::vector<std::string> names{"generation", "completion", "crossclass",
                                              "ood",        "robustness", "compose"};
  return names;
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
  std::ostringstream bytes;
  out.save_to(bytes);
  util::write_file_atomic(spec.path, bytes.str());
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
  metrics.set("classifier", report::JsonObject().set("path", spec.path).set("test_accuracy", acc));
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

}  // namespace detail

// ------------------------------------------------------------------------------ completion ---

torch::Tensor completion_mask(const std::string& kind, int64_t n, int64_t height, int64_t width,
                              double fraction, at::Generator& generator) {
  auto mask = torch::zeros({n, 1, height, width}, torch::kBool);
  if (kind == "box") {
    const auto side = std::max<int64_t>(1, static_cast<int64_t>(std::lround(fraction * height)));
    const int64_t y0 = (height - side) / 2, x0 = (width - std::min(side, width)) / 2;
    mask.narrow(2, y0, side).narrow(3, x0, std::min(side, width)).fill_(true);
  } else if (kind == "half") {
    mask.narrow(2, height / 2, height - height / 2).fill_(true);
  } else if (kind == "salt_pepper") {
    mask = torch::rand({n, 1, height, width}, generator) < fraction;
  } else {
    throw std::invalid_argument("mask '" + kind + "': expected box, half or salt_pepper");
  }
  return mask;
}

torch::Tensor complete_images(EnergyModel& model, const LangevinSampler& sampler,
                              const torch::Tensor& images, const torch::Tensor& mask,
                              int64_t completions, const torch::Tensor& condition,
                              at::Generator& generator) {
  const int64_t n = images.size(0);
  auto x0 = images.repeat_interleave(completions, 0);
  auto m = mask.to(images.device()).repeat_interleave(completions, 0).expand_as(x0);
  auto noise = torch::rand(x0.sizes(), generator).to(x0.device(), x0.scalar_type());
  auto start = torch::where(m, noise, x0);
  auto cond = condition.defined() ? condition.repeat_interleave(completions, 0) : torch::Tensor();
  auto out = sampler.sample(model, start, cond, m, nullptr, generator);
  std::vector<int64_t> shape{n, completions};
  for (int64_t d = 1; d < images.dim(); ++d) shape.push_back(images.size(d));
  return out.reshape(shape);
}

namespace detail {

void run_completion(Context& c) {
  auto root = c.config->root();
  const auto src = read_ebm_source(root.section("ebm"));
  const auto data = read_data_spec(root.section("data"), "test");
  auto s = root.section("completion");
  const auto masks = s.get<std::vector<std::string>>("masks", {"box", "half", "salt_pepper"});
  for (const auto& m : masks)
    if (m != "box" && m != "half" && m != "salt_pepper")
      throw ConfigError(s.where("masks") + ": " + s.path("masks") + ": '" + m +
                        "' is not box, half or salt_pepper");
  const auto inputs = s.get<int64_t>("inputs", 8);
  s.check(inputs >= 1, "inputs", ">= 1");
  const auto completions = s.get<int64_t>("completions", 4);
  s.check(completions >= 2, "completions", ">= 2 (diversity needs two)");
  const auto steps = s.get<int64_t>("steps", 100);
  s.check(steps >= 1, "steps", ">= 1");
  const auto box_fraction = s.get<double>("box_fraction", 0.5);
  s.check(box_fraction > 0 && box_fraction <= 1, "box_fraction", "in (0, 1]");
  const auto sp_fraction = s.get<double>("salt_pepper_fraction", 0.5);
  s.check(sp_fraction > 0 && sp_fraction < 1, "salt_pepper_fraction", "in (0, 1)");
  if (c.checked_only()) return;

  auto ebm = c.load_ebm(src);
  auto ds = load_data(data, c.seed);
  auto x = conform(ds.images.narrow(0, 0, std::min(inputs, ds.size())), ebm.shape).to(c.device);
  torch::Tensor cond;
  if (ebm.net_options.num_classes() > 0) cond = ds.labels.narrow(0, 0, x.size(0)).to(c.device);
  const LangevinSampler sampler(LangevinOptions(ebm.trainer->sampler().options()).steps(steps));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  torch::manual_seed(c.seed);
  auto mean_image = conform(ds.images, ebm.shape).mean(0, true).to(c.device);
  c.page->paragraph(
      std::to_string(x.size(0)) + " test images, " + std::to_string(completions) +
      " completions each, " + std::to_string(steps) +
      " Langevin steps from uniform noise "
      "in the masked pixels (the unmasked ones are held fixed by the sampler's mask). "
      "mse: mean squared error over masked pixels against the original; best_mse: the best "
      "completion per input; diversity: RMS difference between two completions of the same "
      "input over masked pixels; mean_fill_mse: the masked pixels filled with the data mean.");
  std::vector<std::vector<std::string>> rows;
  std::string table =
      "mask          mse     best_mse  diversity  mean_fill_mse  unmasked_max_change\n";
  for (const auto& kind : masks) {
    c.log("completion: " + kind);
    auto mask = completion_mask(kind, x.size(0), ebm.shape[1], ebm.shape[2],
                                kind == "box" ? box_fraction : sp_fraction, gen)
                    .to(c.device);
    auto out =
        complete_images(*ebm.model, sampler, x, mask, completions, cond, gen);  // [N,K,C,H,W]
    auto mf = mask.unsqueeze(1).expand_as(out).to(torch::kFloat32);
    auto orig = x.unsqueeze(1).expand_as(out);
    const double masked_count = mf.sum().item<double>();
    const double mse = ((out - orig).pow(2) * mf).sum().item<double>() / masked_count;
    auto per =
        ((out - orig).pow(2) * mf).flatten(2).sum(2) / mf.flatten(2).sum(2).clamp_min(1);  // [N,K]
    const double best = std::get<0>(per.min(1)).mean().item<double>();
    auto d01 = ((out.select(1, 0) - out.select(1, 1)).pow(2) * mf.select(1, 0)).flatten(1).sum(1) /
               mf.select(1, 0).flatten(1).sum(1).clamp_min(1);
    const double diversity = d01.sqrt().mean().item<double>();
    auto mask_f = mask.expand_as(x).to(torch::kFloat32);
    const double fill = ((mean_image.expand_as(x) - x).pow(2) * mask_f).sum().item<double>() /
                        mask_f.sum().item<double>();
    const double unmasked_change = ((out - orig).abs() * (1 - mf)).max().item<double>();
    report::JsonObject j;
    j.set("mse", mse)
        .set("best_mse", best)
        .set("diversity", diversity)
        .set("mean_fill_mse", fill)
        .set("unmasked_max_change", unmasked_change)
        .set("masked_fraction", mask_f.mean().item<double>());
    c.metrics.set(kind, j);
    rows.push_back(
        {kind, fmt4(mse), fmt4(best), fmt4(diversity), fmt4(fill), fmt4(unmasked_change)});
    char line[160];
    std::snprintf(line, sizeof(line), "%-12s %8.4f %10.4f %10.4f %14.4f %20.4g\n", kind.c_str(),
                  mse, best, diversity, fill, unmasked_change);
    table += line;
    // Rows: original, masked input (grey where masked), completions.
    auto shown = torch::where(mask.expand_as(x), torch::full_like(x, 0.5), x);
    std::vector<torch::Tensor> grid{x, shown};
    for (int64_t k = 0; k < completions; ++k) grid.push_back(out.select(1, k));
    c.page->heading("Mask: " + kind, 3);
    c.figure("completion_" + kind + ".png", torch::cat(grid), x.size(0),
             "Rows: originals, masked inputs (grey = masked), then " + std::to_string(completions) +
                 " completions.");
  }
  c.page->table({"mask", "mse", "best_mse", "diversity", "mean_fill_mse", "unmasked_max_change"},
                rows);
  c.metrics.set("inputs", x.size(0)).set("completions", completions).set("steps", steps);
  c.summary.table = table;
}

// ------------------------------------------------------------------------------ crossclass ---

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

// ------------------------------------------------------------------------------ generation ---

void run_generation(Context& c) {
  auto root = c.config->root();
  const auto [src, data, cls] = read_common(root);
  auto s = root.section("sampling");
  const auto samples = s.get<int64_t>("samples", 1000);
  s.check(samples >= 20, "samples", ">= 20");
  const auto chains = s.get<int64_t>("chains", 500);
  s.check(chains >= 1, "chains", ">= 1");
  const auto rounds = s.get<int64_t>("rounds", 10);
  s.check(rounds >= 1, "rounds", ">= 1");
  const auto steps = s.get<int64_t>("steps_per_round", 20);
  s.check(steps >= 1, "steps_per_round", ">= 1");
  const auto reset = s.get<double>("reset_prob", 0.01);
  s.check(reset >= 0 && reset <= 1, "reset_prob", "in [0, 1]");
  const auto init = s.choice("init", "buffer", {"buffer", "noise"});
  auto f = root.section("features");
  const auto kind = f.choice("kind", "classifier", {"classifier", "inception"});
  const auto inception_path = f.get<std::string>("inception_path", "inception-2015-12-05.pt");
  const auto kid_subsets = f.get<int64_t>("kid_subsets", 100);
  f.check(kid_subsets >= 1, "kid_subsets", ">= 1");
  const auto kid_size = f.get<int64_t>("kid_subset_size", 1000);
  f.check(kid_size >= 2, "kid_subset_size", ">= 2");
  const auto is_splits = f.get<int64_t>("is_splits", 10);
  f.check(is_splits >= 1, "is_splits", ">= 1");
  if (c.checked_only()) return;

  std::vector<std::shared_ptr<ImageEnergyNet>> members;
  auto ebm = c.load_ebm(src, &members);
  WeightedSumEnergy ensemble;
  for (auto& m : members) ensemble.add(m, 1.0 / static_cast<double>(members.size()));
  std::unique_ptr<eval::FeatureExtractor> fx;
  if (kind == "inception") {
    fx = eval::inception_features(inception_path, c.device);
  } else {
    fx = eval::classifier_features(c.classifier(cls, data));
  }
  auto ds = load_data(data, c.seed);
  const auto& so = ebm.trainer->sampler().options();
  const LangevinSampler sampler(LangevinOptions(so).steps(steps));
  auto& buffer = ebm.trainer->buffer();
  const int64_t classes = ebm.net_options.num_classes();
  torch::manual_seed(c.seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  // Persistent chains, as the paper's protocol: a pool of `chains` states run for `rounds` rounds
  // of `steps` steps; each round re-initialises a fraction `reset_prob` of them to noise. The pool
  // after the last round is one batch of samples; pools repeat until `samples` are collected.
  std::vector<torch::Tensor> collected;
  int64_t have = 0;
  report::Progress progress("sampling", samples, c.quiet ? nullptr : stderr);
  while (have < samples) {
    const int64_t k = std::min(chains, samples - have);
    torch::Tensor pool;
    if (init == "buffer" && buffer.size() > 0) {
      auto states = buffer.states();
      auto idx = torch::randint(states.size(0), {k}, gen, torch::kLong);
      pool = states.index_select(0, idx);
    } else {
      pool = buffer.init_states(k);
    }
    pool = pool.to(c.device);
    auto labels = classes > 0 ? torch::randint(classes, {k}, gen, torch::kLong).to(c.device)
                              : torch::Tensor();
    for (int64_t r = 0; r < rounds; ++r) {
      auto reset_rows = (torch::rand({k}, gen) < reset).nonzero().flatten();
      if (reset_rows.numel() > 0)
        pool.index_copy_(0, reset_rows.to(c.device),
                         buffer.init_states(reset_rows.size(0)).to(c.device));
      pool = sampler.sample(ensemble, pool, labels, {}, nullptr, gen);
    }
    collected.push_back(pool.cpu());
    have += k;
    progress.update(have, "");
  }
  progress.finish("");
  auto gen_images = torch::cat(collected);
  auto ref = conform(ds.images, ebm.shape);
  Eigen::MatrixXd fg, pg, fr, pr;
  eval::extract_all(*fx, gen_images, &fg, &pg);
  eval::extract_all(*fx, ref, &fr, &pr);
  const double fid = eval::frechet_distance(eval::gaussian_stats(fg), eval::gaussian_stats(fr));
  const auto kid = eval::kernel_distance(fg, fr, kid_subsets, kid_size, c.seed);
  const auto is = eval::inception_score(pg, std::min<int64_t>(is_splits, pg.rows()));
  const auto is_ref = eval::inception_score(pr, std::min<int64_t>(is_splits, pr.rows()));
  // Floor: the distance between the two halves of the reference set.
  const int64_t half = fr.rows() / 2;
  const double fid_floor =
      eval::frechet_distance(eval::gaussian_stats(fr.topRows(half)),
                             eval::gaussian_stats(fr.bottomRows(fr.rows() - half)));
  report::JsonObject j;
  j.set("fid", fid)
      .set("kid_mean", kid.mean)
      .set("kid_std", kid.std)
      .set("kid_subsets", kid.subsets)
      .set("kid_subset_size", kid.subset_size)
      .set("is_mean", is.mean)
      .set("is_std", is.std)
      .set("is_splits", is.splits)
      .set("samples", gen_images.size(0));
  report::JsonObject r;
  r.set("is_mean", is_ref.mean)
      .set("is_std", is_ref.std)
      .set("fid_half_vs_half", fid_floor)
      .set("images", static_cast<int64_t>(fr.rows()));
  c.metrics.set("features", fx->name())
      .set("comparable_with_published", fx->comparable_with_published())
      .set("samples", gen_images.size(0))
      .set("protocol", "persistent chains: " + std::to_string(chains) + " per pool, " +
                           std::to_string(rounds) + " rounds x " + std::to_string(steps) +
                           " steps, reset " + fmt4(reset) + ", init " + init + ", ensemble of " +
                           std::to_string(members.size()) + " checkpoint(s)")
      .set("ebm", j)
      .set("reference_data", r);
  const std::string note =
      fx->comparable_with_published()
          ? "Features: Inception-v3 (inception-2015-12-05), comparable with published numbers."
          : "Features: the project's own classifier. NOT comparable with published FID/IS.";
  c.page->paragraph(note + " " + std::to_string(gen_images.size(0)) + " samples against " +
                    std::to_string(fr.rows()) + " reference images (" + data.format + " " +
                    data.split + ").");
  c.page->table({"set", "FID", "KID", "IS"},
                {{"EBM samples", fmt4(fid), fmt4(kid.mean) + " +- " + fmt4(kid.std),
                  fmt4(is.mean) + " +- " + fmt4(is.std)},
                 {"reference (half vs half)", fmt4(fid_floor), "-",
                  fmt4(is_ref.mean) + " +- " + fmt4(is_ref.std)}});
  c.figure("samples.png", gen_images.narrow(0, 0, std::min<int64_t>(100, gen_images.size(0))), 10,
           "The first 100 samples.");
  char line[320];
  std::snprintf(line, sizeof(line),
                "%s\nsamples %ld: FID %.4f  KID %.5f +- %.5f  IS %.4f +- %.4f\nreference: FID "
                "half/half %.4f  IS %.4f\n",
                note.c_str(), static_cast<long>(gen_images.size(0)), fid, kid.mean, kid.std,
                is.mean, is.std, fid_floor, is_ref.mean);
  c.summary.table = line;
}

}  // namespace detail

EvalRunSummary run_image_eval(const EvalRunOptions& o) {
  const auto& names = image_experiments();
  if (std::find(names.begin(), names.end(), o.experiment) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown experiment '" + o.experiment + "' (known: " + list + ")");
  }
  Context c;
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
  if (o.experiment == "generation") run_generation(c);
  if (o.experiment == "completion") run_completion(c);
  if (o.experiment == "crossclass") run_crossclass(c);
  if (o.experiment == "ood") run_ood(c);
  if (o.experiment == "robustness") run_robustness(c);
  if (o.experiment == "compose") run_compose(c);
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
