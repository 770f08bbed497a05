#include "ebm/experiments/image_train.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "datasets/image/image_dataset.h"
#include "ebm/core/checkpoint.h"
#include "ebm/core/device.h"
#include "ebm/core/options_config.h"
#include "ebm/dist/data_parallel.h"
#include "ebm/nets/image_net_config.h"
#include "ebm/report/metrics.h"
#include "ebm/report/png.h"
#include "ebm/report/progress.h"
#include "ebm/report/tensorboard.h"
#include "ebm/util/files.h"
#include "ebm/util/prefetch.h"

namespace ebm::experiments {

namespace fs = std::filesystem;

namespace {

// Everything a run reads from its config, read once (so unknown keys are found before training).
struct ImageRunConfig {
  std::string name;
  int64_t seed = 0;
  std::string device;
  std::string data_format, data_path, data_split;
  int64_t data_limit = 0;
  std::optional<ConfigSection> model_section;
  TrainerOptions trainer;
  int64_t iterations = 0, batch_size = 0;
  int64_t log_every = 0, sample_every = 0, checkpoint_every = 0, keep_last = 0, num_samples = 0;
  int64_t launch_world_size = 1;  // launch.world_size: recorded by the run, not a setting
};

ImageRunConfig read_config(const Config& config) {
  auto root = config.root();
  ImageRunConfig c;
  c.model_section = root.section("model");
  c.name = root.get<std::string>("name", "run");
  c.seed = root.get<int64_t>("seed", 0);
  c.device = root.get<std::string>("device", "auto");
  auto data = root.section("data");
  c.data_format = data.choice("format", "fashion_mnist",
                              {"fashion_mnist", "mnist", "idx", "cifar10", "cifar100", "imagenet32",
                               "imagenet64", "dsprites", "folder", "svhn"});
  c.data_path = data.require<std::string>("path");
  c.data_split = data.get<std::string>("split", "train");
  c.data_limit = data.get<int64_t>("limit", 0);
  data.check(c.data_limit >= 0, "limit", ">= 0 (0 = all)");
  auto t = root.section("trainer");
  c.iterations = t.get<int64_t>("iterations", 1000);
  t.check(c.iterations > 0, "iterations", "> 0");
  c.batch_size = t.get<int64_t>("batch_size", 128);
  t.check(c.batch_size > 0, "batch_size", "> 0");
  c.trainer = trainer_options(t, root.section("langevin"), root.section("replay_buffer"),
                              image_net_options(*c.model_section, 1).num_classes());
  c.trainer.performance(performance_options(root.section("performance")));
  auto log = root.section("logging");
  c.log_every = log.get<int64_t>("log_every", 10);
  log.check(c.log_every > 0, "log_every", "> 0");
  c.sample_every = log.get<int64_t>("sample_every", 500);
  log.check(c.sample_every > 0, "sample_every", "> 0");
  c.checkpoint_every = log.get<int64_t>("checkpoint_every", 500);
  log.check(c.checkpoint_every > 0, "checkpoint_every", "> 0");
  c.keep_last = log.get<int64_t>("keep_last", 3);
  log.check(c.keep_last > 0, "keep_last", "> 0");
  c.num_samples = log.get<int64_t>("num_samples", 64);
  log.check(c.num_samples > 0, "num_samples", "> 0");
  c.launch_world_size = dist::recorded_world_size(root);
  return c;
}

std::string fmt_fields(const TrainStepResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "loss=%.4f E+=%.4f E-=%.4f", r.loss, r.e_pos, r.e_neg);
  return buf;
}

// Checkpoint metadata beside the trainer state: what `ebm sample` needs to rebuild the model.
void write_meta(torch::serialize::OutputArchive& a, const Config& config,
                const std::vector<int64_t>& shape) {
  a.write("meta.config", c10::IValue(config.dump()));
  a.write("meta.sample_shape", torch::tensor(shape, torch::kLong));
}

// A run's config (with the --set overrides), the settings read from it and the device.
struct RunSetup {
  std::shared_ptr<Config> config;
  ImageRunConfig rc;
  torch::Device device = torch::kCPU;
};

// Loads the config and reads every key, so that an unknown key is an error before any data loads.
RunSetup load_setup(const TrainRunOptions& opts) {
  auto config = Config::load_file(opts.config_path, opts.overrides);
  auto rc = read_config(*config);
  const auto device = resolve_device(rc.device);
  // The net's options are read before the unknown-key check, from the dataset's channel count,
  // which is only known after loading; read the model keys now with a provisional channel count.
  image_net_options(*rc.model_section, 1);
  config->check_all_used();
  return {std::move(config), std::move(rc), device};
}

// The training images (the first data.limit of them); throws when one global batch (batch_size
// per process x world_size) exceeds them.
data::ImageDataset load_training_data(const ImageRunConfig& rc, const std::string& config_path,
                                      int world_size) {
  auto ds = data::load_image_dataset(rc.data_format, rc.data_path, rc.data_split);
  if (rc.data_limit > 0 && rc.data_limit < ds.size()) {
    ds.images = ds.images.narrow(0, 0, rc.data_limit);
    ds.labels = ds.labels.narrow(0, 0, rc.data_limit);
  }
  const int64_t n = ds.size();
  if (n < rc.batch_size * world_size)
    throw ConfigError(config_path + ": trainer.batch_size " + std::to_string(rc.batch_size) +
                      (world_size > 1 ? " x " + std::to_string(world_size) + " processes" : "") +
                      " exceeds the " + std::to_string(n) + " images of the data set");
  return ds;
}

// The run's newest checkpoint, checked against --resume: a run directory holding checkpoints is
// continued only with --resume, and --resume needs one.
std::optional<std::string> check_resume(const CheckpointManager& ckpts, const std::string& run_dir,
                                        bool resume) {
  const auto latest = ckpts.latest();
  if (latest && !resume)
    throw std::runtime_error(run_dir + " already holds checkpoints (" + *latest +
                             "); pass --resume to continue it, or choose another --out");
  if (resume && !latest) throw std::runtime_error("--resume: no checkpoint in " + ckpts.dir());
  return latest;
}

// The net's options for the data's channel count; a conditional net's class count must be the
// data set's.
ImageEnergyOptions checked_net_options(const ImageRunConfig& rc, const data::ImageDataset& ds,
                                       int64_t channels) {
  auto net_options = image_net_options(*rc.model_section, channels);
  const bool conditional = net_options.num_classes() > 0;
  if (conditional && net_options.num_classes() != ds.num_classes())
    throw ConfigError(rc.model_section->where("num_classes") + ": model.num_classes is " +
                      std::to_string(net_options.num_classes()) + " but the data set has " +
                      std::to_string(ds.num_classes()) + " classes");
  return net_options;
}

// Restores the trainer (weights, optimiser, replay buffer, step count) from a checkpoint; under
// data-parallel training every rank reads it and takes its own replay buffer and RNG state.
void resume_trainer(ContrastiveDivergenceTrainer& trainer, const std::string& checkpoint,
                    torch::Device device, dist::DataParallel& dp, int64_t seed) {
  torch::serialize::InputArchive in;
  CheckpointManager::load(checkpoint, in, device);
  trainer.load(in);
  const std::string buffers = dp.resume(trainer, in, static_cast<unsigned long long>(seed));
  if (!dp.is_main()) return;
  std::cerr << "resumed from " << checkpoint << " at step " << trainer.steps() << "\n";
  if (!buffers.empty()) std::cerr << "resume: " << buffers << "\n";
}

// Prints what is about to be trained, where and on what, to stderr.
void print_banner(const ImageRunConfig& rc, int64_t n, const std::vector<int64_t>& shape,
                  const std::shared_ptr<ImageEnergyNet>& model, torch::Device device,
                  const std::string& run_dir, int world_size) {
  int64_t weights = 0;
  for (auto& p : model->parameters()) weights += p.numel();
  std::cerr << "training " << rc.name << ": " << n << " images " << shape[0] << "x" << shape[1]
            << "x" << shape[2] << ", " << model->parameters().size() << " parameter tensors ("
            << weights << " weights), device " << device.str();
  if (world_size > 1)
    std::cerr << " x " << world_size << " processes (global batch " << rc.batch_size * world_size
              << ")";
  std::cerr << ", run dir " << run_dir << "\n";
}

// What the steps of a training run share: its settings, data and trainer, and where it writes.
// Under data-parallel training only rank 0 writes (metrics and events are null elsewhere).
struct TrainRun {
  const Config& config;
  const ImageRunConfig& rc;
  const data::ImageDataset& ds;
  const std::vector<int64_t>& shape;
  bool conditional;
  ContrastiveDivergenceTrainer& trainer;
  dist::DataParallel& dp;
  CheckpointManager& ckpts;
  report::MetricsLog* metrics;
  report::EventWriter* events;
  TrainRunSummary& summary;
  bool checkpointed = false;  // a checkpoint was written by this run (on every rank alike)
};

// Writes checkpoints/ckpt-<step>.pt (the trainer's state and the metadata, and every rank's own
// state under data-parallel training, which all ranks call this for); returns its path on rank 0.
std::string save_checkpoint(TrainRun& run, int64_t step) {
  const auto dist_state = run.dp.checkpoint_extras(run.trainer);
  if (!run.dp.is_main()) return "";
  return run.ckpts.save(step, [&](torch::serialize::OutputArchive& a) {
    run.trainer.save(a);
    write_meta(a, run.config, run.shape);
    dist_state(a);
  });
}

// Writes samples/step-<step>.png and a TensorBoard image: the replay buffer's newest states, what
// the chains currently produce.
void save_samples(TrainRun& run, int64_t step) {
  if (!run.dp.is_main()) return;
  auto states = run.trainer.buffer().states();
  const int64_t k = std::min<int64_t>(run.rc.num_samples, states.size(0));
  auto grid = states.narrow(0, states.size(0) - k, k);
  char name[64];
  std::snprintf(name, sizeof(name), "/samples/step-%08ld.png", static_cast<long>(step));
  run.summary.samples_png = run.summary.run_dir + name;
  report::write_png_grid(run.summary.samples_png, grid);
  run.events->add_image("samples/buffer", grid, step);
}

// Appends a step's numbers (means over the ranks of a data-parallel run) to metrics.jsonl and the
// TensorBoard events.
void log_step(TrainRun& run, const TrainStepResult& r, int64_t done,
              std::chrono::steady_clock::time_point t0) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto means = run.dp.mean({r.loss, r.e_pos, r.e_neg, r.ml_loss, r.l2_loss, r.classify_loss,
                                  r.kl_loss, r.langevin_grad_norm});
  if (!run.dp.is_main()) return;
  std::vector<std::pair<std::string, double>> values{{"loss", means[0]},
                                                     {"e_pos", means[1]},
                                                     {"e_neg", means[2]},
                                                     {"energy_gap", means[1] - means[2]},
                                                     {"ml_loss", means[3]},
                                                     {"l2_loss", means[4]},
                                                     {"classify_loss", means[5]},
                                                     {"kl_loss", means[6]},
                                                     {"langevin_grad_norm", means[7]},
                                                     {"lr", r.lr},
                                                     {"langevin_step_size", r.langevin_step_size},
                                                     {"skipped", r.skipped ? 1.0 : 0.0},
                                                     {"elapsed_s", secs}};
  run.metrics->write(done, values);
  for (const auto& [k2, v] : values) run.events->add_scalar("train/" + k2, v, done);
  // This process's batch (rank 0's under data-parallel training).
  run.events->add_histogram("energies/pos", r.energies_pos, done);
  run.events->add_histogram("energies/neg", r.energies_neg, done);
  run.events->flush();
}

// One training batch: images as floats and their labels (undefined for an unconditional model).
struct Batch {
  torch::Tensor x, y;
};

// The batches of a run by step. Every rank walks the same permutation per epoch, drawn from (seed,
// epoch) so that resuming needs no data-order state; rank r takes the r-th batch_size images of
// each global batch. Pinned: in page-locked memory, for copies to a CUDA device that do not block.
class BatchOrder {
 public:
  BatchOrder(const TrainRun& run, bool pinned) : run_(run), pinned_(pinned) {}

  Batch operator()(int64_t step) {
    const ImageRunConfig& rc = run_.rc;
    const int64_t n = run_.ds.size();
    const int64_t global_batch = rc.batch_size * run_.dp.world_size();
    const int64_t per_epoch = n / global_batch;
    const int64_t epoch = step / per_epoch, k = step % per_epoch;
    if (epoch != perm_epoch_) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(
          static_cast<uint64_t>(rc.seed) * 1000003u + epoch);
      perm_ = torch::randperm(n, gen, torch::kLong);
      perm_epoch_ = epoch;
    }
    auto idx = perm_.narrow(0, k * global_batch + run_.dp.rank() * rc.batch_size, rc.batch_size);
    Batch b{data::to_float(run_.ds.images.index_select(0, idx)),
            run_.conditional ? run_.ds.labels.index_select(0, idx) : torch::Tensor()};
    if (pinned_) {
      b.x = b.x.pin_memory();
      if (b.y.defined()) b.y = b.y.pin_memory();
    }
    return b;
  }

 private:
  const TrainRun& run_;
  bool pinned_;
  torch::Tensor perm_;
  int64_t perm_epoch_ = -1;
};

// Trains from the trainer's step (a resumed run continues) to the config's iterations, logging,
// sampling and checkpointing on their schedules. Returns the last step's result. With
// performance.prefetch, the next batch is gathered on a background thread during each step.
TrainStepResult train_steps(TrainRun& run, report::Progress& progress) {
  const ImageRunConfig& rc = run.rc;
  const auto& perf = rc.trainer.performance();
  const auto t0 = std::chrono::steady_clock::now();
  TrainStepResult r;
  util::Prefetcher<Batch> batches(BatchOrder(run, run.trainer.device().is_cuda()),
                                  run.trainer.steps(), rc.iterations, perf.prefetch());
  while (!batches.done()) {
    const int64_t step = run.trainer.steps();
    const Batch batch = batches.next();
    const bool logged = (step + 1) % rc.log_every == 0 || step + 1 == rc.iterations;
    if (logged) run.trainer.diagnose_next_step();
    r = run.trainer.step(batch.x, batch.y);
    const int64_t done = run.trainer.steps();
    progress.update(done, fmt_fields(r));
    if (logged) log_step(run, r, done, t0);
    if (done % rc.sample_every == 0) save_samples(run, done);
    if (done % rc.checkpoint_every == 0) {
      run.summary.last_checkpoint = save_checkpoint(run, done);
      run.checkpointed = true;
    }
  }
  return r;
}

}  // namespace

TrainRunSummary train_image_ebm(const TrainRunOptions& opts) {
  const RunSetup setup = load_setup(opts);
  const ImageRunConfig& rc = setup.rc;
  dist::DataParallel dp(dist::join_from_environment(setup.device));
  const torch::Device device = dist::local_device(setup.device);
  if (dp.active()) setup.config->set("launch.world_size=" + std::to_string(dp.world_size()));
  torch::manual_seed(dist::rank_seed(static_cast<uint64_t>(rc.seed), dp.rank()));
  const auto ds = load_training_data(rc, opts.config_path, dp.world_size());
  TrainRunSummary summary;
  summary.run_dir = opts.out_dir.empty() ? "runs/" + rc.name : opts.out_dir;
  apply_backend_settings(rc.trainer.performance());
  CheckpointManager ckpts(summary.run_dir + "/checkpoints", rc.keep_last,
                          rc.trainer.performance().async_checkpoints()
                              ? CheckpointWrites::kBackground
                              : CheckpointWrites::kInline);
  const auto latest = check_resume(ckpts, summary.run_dir, opts.resume);
  if (dp.is_main()) util::write_file_atomic(summary.run_dir + "/config.yaml", setup.config->dump());

  const std::vector<int64_t> shape{ds.images.size(1), ds.images.size(2), ds.images.size(3)};
  const auto net_options = checked_net_options(rc, ds, shape[0]);
  auto model = std::make_shared<ImageEnergyNet>(net_options);
  ContrastiveDivergenceTrainer trainer(model, shape, rc.trainer, device);
  if (opts.resume) resume_trainer(trainer, *latest, device, dp, rc.seed);
  dp.attach(trainer);

  std::unique_ptr<report::MetricsLog> metrics;
  std::unique_ptr<report::EventWriter> events;
  if (dp.is_main()) {
    metrics = std::make_unique<report::MetricsLog>(summary.run_dir + "/metrics.jsonl");
    events = std::make_unique<report::EventWriter>(summary.run_dir + "/tensorboard");
    fs::create_directories(summary.run_dir + "/samples");
    print_banner(rc, ds.size(), shape, model, device, summary.run_dir, dp.world_size());
  }

  const bool conditional = net_options.num_classes() > 0;
  TrainRun run{*setup.config, rc,           ds,     shape, conditional, trainer, dp, ckpts,
               metrics.get(), events.get(), summary};
  report::Progress progress("train", rc.iterations, opts.quiet || !dp.is_main() ? nullptr : stderr);
  const TrainStepResult r = train_steps(run, progress);
  progress.finish(fmt_fields(r));
  if (!run.checkpointed || trainer.steps() % rc.checkpoint_every != 0) {
    summary.last_checkpoint = save_checkpoint(run, trainer.steps());
  }
  ckpts.wait();  // the last checkpoint is on disk when training returns
  if (trainer.steps() % rc.sample_every != 0 || summary.samples_png.empty())
    save_samples(run, trainer.steps());
  summary.steps = trainer.steps();
  summary.seconds = progress.elapsed();
  summary.last_loss = r.loss;
  summary.last_e_pos = r.e_pos;
  summary.last_e_neg = r.e_neg;
  summary.rank = dp.rank();
  summary.world_size = dp.world_size();
  return summary;
}

LoadedImageEbm load_image_ebm(const std::string& checkpoint, torch::Device device, int64_t steps) {
  LoadedImageEbm r;
  r.checkpoint = checkpoint;
  torch::serialize::InputArchive in;
  CheckpointManager::load(checkpoint, in, device);
  c10::IValue text;
  torch::Tensor shape_t;
  try {
    in.read("meta.config", text);
    in.read("meta.sample_shape", shape_t);
  } catch (const c10::Error&) {
    throw std::runtime_error(checkpoint + ": not an image EBM checkpoint (no meta.config)");
  }
  r.config = Config::load_string(text.toStringRef(), checkpoint + ":meta.config");
  auto rc = read_config(*r.config);
  r.data_format = rc.data_format;
  r.data_path = rc.data_path;
  r.shape.assign(shape_t.data_ptr<int64_t>(), shape_t.data_ptr<int64_t>() + shape_t.numel());
  r.net_options = image_net_options(*rc.model_section, r.shape[0]);
  r.model = std::make_shared<ImageEnergyNet>(r.net_options);
  auto topts = rc.trainer;
  topts.autocast_bf16(topts.autocast_bf16() && device.is_cuda());
  if (steps >= 0) topts.langevin(LangevinOptions(topts.langevin()).steps(steps));
  r.trainer = std::make_unique<ContrastiveDivergenceTrainer>(r.model, r.shape, topts, device);
  r.trainer->load(in);
  return r;
}

torch::Tensor sample_image_ebm(const SampleOptions& o) {
  if (o.n <= 0) throw std::invalid_argument("--n must be > 0");
  if (o.init != "noise" && o.init != "buffer")
    throw std::invalid_argument("--init must be 'noise' or 'buffer', got '" + o.init + "'");
  auto device = resolve_device(o.device);
  auto loaded = load_image_ebm(o.checkpoint, device, o.steps);
  const auto& net_options = loaded.net_options;
  auto& trainer = *loaded.trainer;
  torch::manual_seed(o.seed);
  torch::Tensor labels;
  if (net_options.num_classes() > 0) {
    if (o.label >= net_options.num_classes())
      throw std::invalid_argument("--label " + std::to_string(o.label) + " is out of range [0, " +
                                  std::to_string(net_options.num_classes()) + ")");
    labels = o.label >= 0 ? torch::full({o.n}, o.label, torch::kLong)
                          : torch::arange(o.n, torch::kLong) % net_options.num_classes();
  } else if (o.label >= 0) {
    throw std::invalid_argument("--label given, but the model is unconditional");
  }
  LangevinCallback report;
  if (o.verbose) {
    report = [](const LangevinStepStats& st) {
      std::fprintf(stderr,
                   "langevin step %4ld  step size %.4g  mean energy %.5g  mean |grad| %.5g\n",
                   static_cast<long>(st.step), st.step_size, st.mean_energy, st.grad_norm);
    };
  }
  auto x = trainer.sample(o.n, labels, o.init == "buffer", report);
  report::write_png_grid(o.out, x);
  return x;
}

}  // namespace ebm::experiments
