// Image EBM training and sampling runs: the glue between configs, datasets, the core trainer,
// checkpoints and reports. Used by `ebm train` and `ebm sample`.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "ebm/core/config.h"
#include "ebm/core/trainer.h"
#include "ebm/nets/image_nets.h"

namespace ebm::experiments {

struct TrainRunOptions {
  std::string config_path;
  std::vector<std::string> overrides;  // --set key=value
  std::string out_dir;                 // empty: runs/<name>
  bool resume = false;
  bool quiet = false;  // no progress display
};

struct TrainRunSummary {
  std::string run_dir;
  std::string last_checkpoint;
  std::string samples_png;
  int64_t steps = 0;
  double seconds = 0;
  double last_loss = 0, last_e_pos = 0, last_e_neg = 0;
  int rank = 0, world_size = 1;  // this process in a data-parallel run (only rank 0 writes)
};

// Trains an image EBM as the config says, writing into the run directory: config.yaml (resolved),
// metrics.jsonl, TensorBoard events, samples/*.png, checkpoints/ckpt-*.pt. Under a launcher
// (torchrun: WORLD_SIZE > 1) every process trains data-parallel on its shard of each global batch
// and only rank 0 writes; config.yaml then records launch.world_size.
TrainRunSummary train_image_ebm(const TrainRunOptions& options);

struct SampleOptions {
  std::string checkpoint;
  int64_t n = 64;
  int64_t steps = -1;          // -1: the checkpoint's Langevin steps
  int64_t label = -1;          // conditional models: -1 = labels 0, 1, 2, ... cycled
  std::string init = "noise";  // "noise" or "buffer" (the checkpoint's replay buffer)
  std::string out = "samples.png";
  std::string device = "auto";
  uint64_t seed = 0;
  bool verbose = false;  // print each Langevin step's mean energy and gradient norm (stderr)
};

// An image EBM rebuilt from a checkpoint of `ebm train`: its resolved config, the net and a
// trainer holding the checkpoint's sampler settings, replay buffer and weights (EMA not swapped
// in).
struct LoadedImageEbm {
  std::string checkpoint;
  std::shared_ptr<Config> config;
  std::vector<int64_t> shape;  // one sample: {C, H, W}
  ImageEnergyOptions net_options;
  std::shared_ptr<ImageEnergyNet> model;
  std::unique_ptr<ContrastiveDivergenceTrainer> trainer;
  std::string data_format, data_path;  // the training data (section `data` of its config)
};
// steps >= 0 overrides the Langevin steps of the checkpoint's sampler. Throws std::runtime_error
// naming the file when it is not an image EBM checkpoint.
LoadedImageEbm load_image_ebm(const std::string& checkpoint, torch::Device device,
                              int64_t steps = -1);

// Samples from a checkpoint with the trainer's sampler and writes a PNG grid. Returns the samples.
torch::Tensor sample_image_ebm(const SampleOptions& options);

}  // namespace ebm::experiments
