// `ebm data stats --format F --path P [--split S]`: a JSON summary of a data set, so a user can
// check that it is read right; `ebm data grid --format F --path P --out grid.png`: a picture of
// its first images.
#include <fmt/core.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <sstream>

#include "datasets/image/image_dataset.h"
#include "datasets/trajectory/record_file.h"
#include "ebm/cli/commands.h"
#include "ebm/report/png.h"
#include "ebm/util/files.h"

namespace ebm::cli {

namespace {

struct DataArgs {
  std::string format;
  std::string path;
  std::string split = "train";
  std::string out = "grid.png";
  int64_t n = 64;
};

const std::vector<std::string> kFormats = {
    "trajectory", "fashion_mnist", "mnist",    "idx",    "cifar10", "cifar100",
    "imagenet32", "imagenet64",    "dsprites", "folder", "svhn"};

std::string image_stats_json(const data::ImageDataset& ds) {
  std::ostringstream out;
  const auto shape = ds.images.sizes();
  out << "{\n  \"source\": " << util::json_quote(ds.source)
      << ",\n  \"split\": " << util::json_quote(ds.split) << ",\n  \"count\": " << ds.size()
      << ",\n  \"shape\": [";
  for (size_t i = 1; i < shape.size(); ++i) out << (i > 1 ? ", " : "") << shape[i];
  out << "],\n  \"dtype\": \"uint8\",\n  \"classes\": " << ds.num_classes()
      << ",\n  \"per_class\": {";
  const auto counts = torch::bincount(ds.labels, {}, std::max<int64_t>(ds.num_classes(), 1));
  for (int64_t c = 0; c < counts.size(0); ++c) {
    const std::string name = c < ds.num_classes() ? ds.class_names[c] : std::to_string(c);
    out << (c ? ", " : "") << util::json_quote(name) << ": " << counts[c].item<int64_t>();
  }
  // Per-channel statistics of x / 255, accumulated in double over chunks of images, so that a
  // data set of millions of images needs no float copy of itself.
  const int64_t c = ds.images.size(1);
  auto sum = torch::zeros({c}, torch::kFloat64), sumsq = torch::zeros({c}, torch::kFloat64);
  for (int64_t i = 0; i < ds.size(); i += 4096) {
    const auto x =
        ds.images.slice(0, i, std::min(i + 4096, ds.size())).to(torch::kFloat64).div_(255.0);
    sum += x.sum({0, 2, 3});
    sumsq += x.pow(2).sum({0, 2, 3});
  }
  const double per_channel = static_cast<double>(ds.size() * ds.images.size(2) * ds.images.size(3));
  const auto mean = sum / per_channel;
  const auto std = (sumsq / per_channel - mean.pow(2)).clamp_min(0).sqrt();
  out << "},\n  \"channel_mean\": [";
  for (int64_t c = 0; c < mean.size(0); ++c)
    out << (c ? ", " : "") << util::json_number(mean[c].item<double>());
  out << "],\n  \"channel_std\": [";
  for (int64_t c = 0; c < std.size(0); ++c)
    out << (c ? ", " : "") << util::json_number(std[c].item<double>());
  out << "]\n}\n";
  return out.str();
}

int run_stats(const DataArgs& a) {
  if (a.format == "trajectory") {
    fmt::print("{}", trajectory::TrajectoryCorpus(a.path).stats_json());
    return 0;
  }
  fmt::print("{}", image_stats_json(data::load_image_dataset(a.format, a.path, a.split)));
  return 0;
}

int run_grid(const DataArgs& a) {
  if (a.format == "trajectory") {
    throw std::invalid_argument("ebm data grid shows images; for trajectories use ebm data stats");
  }
  const auto ds = data::load_image_dataset(a.format, a.path, a.split);
  const int64_t n = std::min<int64_t>(a.n, ds.size());
  report::write_png_grid(a.out, data::to_float(ds.images.slice(0, 0, n)));
  fmt::print("wrote {} images of {} ({}) to {}\n", n, ds.source, ds.split, a.out);
  return 0;
}

void add_common(CLI::App* cmd, DataArgs& a) {
  cmd->add_option("--format,-f", a.format, "data format")
      ->required()
      ->check(CLI::IsMember(kFormats));
  cmd->add_option("--path,-p", a.path, "file or directory (dsprites: an npz, or 'procedural')")
      ->required();
  cmd->add_option("--split", a.split, "train, test (val for ImageNet; extra for SVHN)")
      ->capture_default_str();
}

}  // namespace

void add_data(CLI::App& app, Action& action) {
  auto a = std::make_shared<DataArgs>();
  auto* data = app.add_subcommand("data", "Inspect data sets: stats (JSON) and grids (PNG)");
  data->require_subcommand(1);
  auto* stats = data->add_subcommand("stats", "Print a JSON summary of a data set");
  add_common(stats, *a);
  stats->callback([a, &action] { action = [a] { return run_stats(*a); }; });
  auto* grid = data->add_subcommand("grid", "Write a PNG grid of a data set's first images");
  add_common(grid, *a);
  grid->add_option("--out,-o", a->out, "output PNG")->capture_default_str();
  grid->add_option("--n", a->n, "number of images")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  grid->callback([a, &action] { action = [a] { return run_grid(*a); }; });
}

}  // namespace ebm::cli
