// Image loaders against the disk: CIFAR-10 load rate beside a plain read of the same bytes, and
// the downsampled-ImageNet reader's peak memory against the size of the data it returns.
//
//   bench_datasets cifar DIR      (writes 5 x 10000 random records into DIR first if missing)
//   bench_datasets imagenet DIR [SPLIT]   (npz or pickled batches, e.g. from datasets_bench.py)
// Prints one JSON object.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "datasets/image/image_dataset.h"
#include "ebm/util/files.h"
#include "ebm/util/json.h"

namespace fs = std::filesystem;

namespace {

// kB from /proc/self/status (VmHWM: peak resident set; VmRSS: current).
long status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so the next peak is the load's own.
void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int cifar(const std::string& dir) {
  fs::create_directories(dir);
  std::mt19937 rng(0);
  for (int b = 1; b <= 5; ++b) {
    const std::string f = dir + "/data_batch_" + std::to_string(b) + ".bin";
    if (fs::exists(f)) continue;
    std::string bytes(10000 * 3073, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(rng());
    for (size_t r = 0; r < 10000; ++r) bytes[r * 3073] = static_cast<char>(r % 10);
    ebm::util::write_file_atomic(f, bytes);
  }
  double best_load = 1e30, best_read = 1e30;
  int64_t n = 0;
  for (int round = 0; round < 5; ++round) {  // alternate, keep the best of each (warm cache)
    auto t0 = std::chrono::steady_clock::now();
    size_t bytes = 0;
    for (int b = 1; b <= 5; ++b)
      bytes += ebm::util::read_file(dir + "/data_batch_" + std::to_string(b) + ".bin").size();
    best_read = std::min(best_read, seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    auto ds = ebm::data::load_cifar10(dir, "train");
    best_load = std::min(best_load, seconds_since(t0));
    n = ds.size();
    if (bytes != 5u * 10000 * 3073) return 1;
  }
  using ebm::util::Json;
  const auto result = Json::object()
                          .set("benchmark", "cifar10_train_load")
                          .set("images", n)
                          .set("load_s", Json::fixed(best_load, 4))
                          .set("images_per_s", Json::fixed(n / best_load, 0))
                          .set("plain_read_s", Json::fixed(best_read, 4))
                          .set("load_over_read", Json::fixed(best_load / best_read, 2))
                          .set("read_MB_per_s", Json::fixed(5 * 10000 * 3073 / 1e6 / best_read, 0))
                          .compact();
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

int imagenet(const std::string& dir, const std::string& split) {
  torch::ones({1}).sum();  // LibTorch initialised before the baseline
  const long base_rss = status_kb("VmRSS");
  reset_peak();
  const auto t0 = std::chrono::steady_clock::now();
  auto ds = ebm::data::load_imagenet_downsampled(dir, split);
  const double s = seconds_since(t0);
  const long peak = status_kb("VmHWM");
  // MiB, like /proc/self/status.
  const double data_mb = (ds.images.numel() + ds.labels.numel() * 8.0) / (1024.0 * 1024.0);
  using ebm::util::Json;
  const double extra_mb = (peak - base_rss) / 1024.0;
  const auto result = Json::object()
                          .set("benchmark", "imagenet_load")
                          .set("dir", dir)
                          .set("images", ds.size())
                          .set("data_MiB", Json::fixed(data_mb, 1))
                          .set("baseline_rss_MiB", Json::fixed(base_rss / 1024.0, 1))
                          .set("peak_rss_MiB", Json::fixed(peak / 1024.0, 1))
                          .set("peak_over_baseline_MiB", Json::fixed(extra_mb, 1))
                          .set("extra_over_data", Json::fixed(extra_mb / data_mb, 3))
                          .set("load_s", Json::fixed(s, 3))
                          .set("images_per_s", Json::fixed(ds.size() / s, 0))
                          .compact();
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s cifar DIR | imagenet DIR [SPLIT]\n", argv[0]);
    return 2;
  }
  try {
    const std::string mode = argv[1];
    if (mode == "cifar") return cifar(argv[2]);
    if (mode == "imagenet") return imagenet(argv[2], argc > 3 ? argv[3] : "train");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 2;
}
