// The Langevin chain on one device: eager against a CUDA graph (the same chain, captured once
// and replayed), each in fp32 and under bf16 autocast; and the model FLOP utilisation of a
// training forward + backward of a large net in bf16. Prints one JSON line (and writes it to
// --json FILE). On the CPU the graph and MFU parts report "skipped" (graphs are CUDA only).
//   bench_langevin [--device cuda] [--net resnet32_large] [--channels 3] [--size 32]
//                  [--batch 128] [--steps 60] [--rounds 5] [--mfu-net resnet32_wider_imagenet]
//                  [--mfu-batch 512] [--mfu-iters 10] [--peak-tflops 989] [--json FILE]
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ebm/core/langevin.h"
#include "ebm/core/performance.h"
#include "ebm/nets/image_nets.h"
#include "ebm/util/files.h"
#include "ebm/util/json.h"

namespace {

struct BenchOptions {
  std::string device = "cpu", net = "resnet32_large", mfu_net = "resnet32_wider_imagenet";
  std::string json_path;
  int64_t channels = 3, size = 32, batch = 128, steps = 60, rounds = 5;
  int64_t mfu_batch = 512, mfu_iters = 10;
  double peak_tflops = 989.0;  // H100/H200 SXM dense bf16 tensor-core peak
};

bool parse(int argc, char** argv, BenchOptions& o) {
  std::map<std::string, std::function<void(const char*)>> setters{
      {"--device", [&](const char* v) { o.device = v; }},
      {"--net", [&](const char* v) { o.net = v; }},
      {"--mfu-net", [&](const char* v) { o.mfu_net = v; }},
      {"--json", [&](const char* v) { o.json_path = v; }},
      {"--channels", [&](const char* v) { o.channels = std::atoll(v); }},
      {"--size", [&](const char* v) { o.size = std::atoll(v); }},
      {"--batch", [&](const char* v) { o.batch = std::atoll(v); }},
      {"--steps", [&](const char* v) { o.steps = std::atoll(v); }},
      {"--rounds", [&](const char* v) { o.rounds = std::atoll(v); }},
      {"--mfu-batch", [&](const char* v) { o.mfu_batch = std::atoll(v); }},
      {"--mfu-iters", [&](const char* v) { o.mfu_iters = std::atoll(v); }},
      {"--peak-tflops", [&](const char* v) { o.peak_tflops = std::atof(v); }}};
  for (int i = 1; i < argc; i += 2) {
    auto it = setters.find(argv[i]);
    if (it == setters.end() || i + 1 >= argc) {
      std::fprintf(stderr, "bench_langevin: unknown option or missing value: %s\n", argv[i]);
      return false;
    }
    it->second(argv[i + 1]);
  }
  return o.rounds >= 1 && o.batch >= 1 && o.steps >= 1 && o.mfu_batch >= 1 && o.mfu_iters >= 1;
}

double seconds_of(const std::function<void()>& fn, torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Multiply-adds x 2 of the convolutions of one forward of an image net at size x size (the
// elementwise operations and the head are left out): per block conv1 (3x3, in -> out), conv2
// (3x3, out -> out) and the 1x1 skip when in != out, each stage at half the previous size.
double forward_flops(const ebm::ImageEnergyOptions& o, int64_t size) {
  double hw = static_cast<double>(size * size);
  double flops = 2.0 * 9 * o.in_channels() * o.stem_filters() * hw;
  int64_t in = o.stem_filters();
  for (size_t s = 0; s < o.stage_filters().size(); ++s) {
    const int64_t out = o.stage_filters()[s];
    for (int64_t b = 0; b < o.blocks_per_stage(); ++b) {
      const int64_t cin = b == 0 ? in : out;
      flops += 2.0 * 9 * cin * out * hw + 2.0 * 9 * out * out * hw;
      if (cin != out) flops += 2.0 * cin * out * hw;
    }
    in = out;
    hw /= 4;
  }
  return flops;
}

// Median ms of a full chain of each kind, alternating the kinds round by round.
ebm::util::Json chain_figures(const BenchOptions& o, torch::Device device) {
  auto model = std::make_shared<ebm::ImageEnergyNet>(ebm::image_net_preset(o.net, o.channels, 0));
  model->to(device);
  model->eval();
  const auto lopts = ebm::LangevinOptions().steps(o.steps).step_size(10).noise_std(0.005);
  // One sampler per graphed kind: a sampler keeps one graph, and fp32 and bf16 chains differ.
  const ebm::LangevinSampler eager(lopts);
  const ebm::LangevinSampler graphed(lopts, ebm::ChainExecution::kCudaGraph);
  const ebm::LangevinSampler graphed_bf16(lopts, ebm::ChainExecution::kCudaGraph);
  const auto x0 = torch::rand({o.batch, o.channels, o.size, o.size}, device);
  struct Kind {
    const char* name;
    const ebm::LangevinSampler* sampler;
    bool bf16;
  };
  std::vector<Kind> kinds{{"eager_fp32", &eager, false}, {"eager_bf16", &eager, true}};
  if (device.is_cuda()) {
    kinds.push_back({"graph_fp32", &graphed, false});
    kinds.push_back({"graph_bf16", &graphed_bf16, true});
  }
  std::map<std::string, std::vector<double>> ms;
  for (int64_t r = -1; r < o.rounds; ++r) {  // round -1 warms up (and captures)
    for (const auto& k : kinds) {
      const double s = seconds_of(
          [&] {
            ebm::AutocastScope autocast(k.bf16, device);
            k.sampler->sample(*model, x0);
          },
          device);
      if (r >= 0) ms[k.name].push_back(1000 * s);
    }
  }
  auto out = ebm::util::Json::object();
  for (const auto& [name, v] : ms) out.set(name + "_ms", ebm::util::Json::fixed(median(v), 3));
  if (device.is_cuda()) {
    out.set("graph_speedup_fp32", median(ms["eager_fp32"]) / median(ms["graph_fp32"]));
    out.set("graph_speedup_bf16", median(ms["eager_bf16"]) / median(ms["graph_bf16"]));
    out.set("captures", graphed.graph_captures() + graphed_bf16.graph_captures());
  } else {
    out.set("graph", "skipped: CUDA graphs need a CUDA device");
  }
  return out.compact();
}

// Training forward + backward (weights and input) of the MFU net in bf16: achieved FLOP/s over
// the peak. A backward costs about twice the forward's convolution FLOPs.
ebm::util::Json mfu_figures(const BenchOptions& o, torch::Device device) {
  const auto nopts = ebm::image_net_preset(o.mfu_net, o.channels, 0);
  auto model = std::make_shared<ebm::ImageEnergyNet>(nopts);
  model->to(device);
  model->train();
  ebm::to_channels_last(*model);
  const int64_t batch = device.is_cuda() ? o.mfu_batch : std::min<int64_t>(o.mfu_batch, 4);
  const auto x = torch::rand({batch, o.channels, o.size, o.size}, device)
                     .contiguous(torch::MemoryFormat::ChannelsLast);
  auto step = [&] {
    ebm::AutocastScope autocast(true, device);
    auto xi = x.detach().requires_grad_(true);
    model->energy(xi, {}).to(torch::kFloat32).sum().backward();
  };
  step();  // warm-up
  const int64_t iters = device.is_cuda() ? o.mfu_iters : 1;
  const double s = seconds_of(
      [&] {
        for (int64_t i = 0; i < iters; ++i) step();
      },
      device);
  const double flops = 3.0 * forward_flops(nopts, o.size) * static_cast<double>(batch);
  const double tflops = flops * static_cast<double>(iters) / s / 1e12;
  auto out = ebm::util::Json::object()
                 .set("net", o.mfu_net)
                 .set("batch", batch)
                 .set("gflop_per_step", ebm::util::Json::fixed(flops / 1e9, 1))
                 .set("ms_per_step", ebm::util::Json::fixed(1000 * s / iters, 3))
                 .set("achieved_tflops", ebm::util::Json::fixed(tflops, 2));
  if (device.is_cuda()) {
    out.set("peak_tflops", o.peak_tflops)
        .set("mfu", ebm::util::Json::fixed(tflops / o.peak_tflops, 4));
  } else {
    out.set("mfu", "skipped: the peak is a GPU figure");
  }
  return out.compact();
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  if (!parse(argc, argv, o)) return 2;
  try {
    const torch::Device device(o.device);
    torch::manual_seed(0);
    auto result = ebm::util::Json::object()
                      .set("device", o.device)
                      .set("net", o.net)
                      .set("batch", o.batch)
                      .set("steps", o.steps)
                      .set("image", std::to_string(o.channels) + "x" + std::to_string(o.size) +
                                        "x" + std::to_string(o.size))
                      .set("chain", chain_figures(o, device))
                      .set("mfu", mfu_figures(o, device));
    const std::string line = result.compact().dump();
    std::printf("%s\n", line.c_str());
    if (!o.json_path.empty()) ebm::util::write_file_atomic(o.json_path, line + "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_langevin: %s\n", e.what());
    return 1;
  }
  return 0;
}
