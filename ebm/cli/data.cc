// `ebm data stats --format F --path P [--split S]`: a JSON summary of a data set, so a user can
// check that it is read right; `ebm data grid --format F --path P --out grid.png`: a picture of
// its first images.
#include <fmt/core.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "datasets/image/image_dataset.h"
#include "datasets/trajectory/record_file.h"
#include "ebm/cli/commands.h"
#include "ebm/report/png.h"
#include "ebm/util/json.h"

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

// Per-channel mean and std of x / 255, accumulated in double over chunks of images, so that a
// data set of millions of images needs no float copy of itself.
std::pair<std::vector<double>, std::vector<double>> channel_stats(const data::ImageDataset& ds) {
  const int64_t channels = ds.images.size(1);
  auto sum = torch::zeros({channels}, torch::kFloat64);
  auto sumsq = torch::zeros({channels}, torch::kFloat64);
  for (int64_t i = 0; i < ds.size(); i += 4096) {
    const auto x =
        ds.images.slice(0, i, std::min(i + 4096, ds.size())).to(torch::kFloat64).div_(255.0);
    sum += x.sum({0, 2, 3});
    sumsq += x.pow(2).sum({0, 2, 3});
  }
  const double per_channel = static_cast<double>(ds.size() * ds.images.size(2) * ds.images.size(3));
  const auto mean = (sum / per_channel).contiguous();
  const auto std = (sumsq / per_channel - mean.pow(2)).clamp_min(0).sqrt().contiguous();
  return {std::vector<double>(mean.data_ptr<double>(), mean.data_ptr<double>() + channels),
          std::vector<double>(std.data_ptr<double>(), std.data_ptr<double>() + channels)};
}

std::string image_stats_json(const data::ImageDataset& ds) {
  const auto shape = ds.images.sizes();
  auto per_class = util::Json::object().compact();
  const auto counts = torch::bincount(ds.labels, {}, std::max<int64_t>(ds.num_classes(), 1));
  for (int64_t k = 0; k < counts.size(0); ++k) {
    per_class.set(k < ds.num_classes() ? ds.class_names[k] : std::to_string(k),
                  counts[k].item<int64_t>());
  }
  const auto [mean, std] = channel_stats(ds);
  const auto stats = util::Json::object()
                         .set("source", ds.source)
                         .set("split", ds.split)
                         .set("count", ds.size())
                         .set("shape", std::vector<int64_t>(shape.begin() + 1, shape.end()))
                         .set("dtype", "uint8")
                         .set("classes", ds.num_classes())
                         .set("per_class", std::move(per_class))
                         .set("channel_mean", mean)
                         .set("channel_std", std);
  return stats.dump() + "\n";
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
