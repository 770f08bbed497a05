// `ebm traj run|train|eval`: the stages in order, each from the run directory's files. The
// stages live in trajectory_{config,train,physics,eval,report}.cc (see trajectory_internal.h).
#include "ebm/experiments/trajectory.h"

#include <fmt/core.h>

#include <filesystem>

#include "ebm/core/device.h"
#include "ebm/experiments/recording.h"
#include "ebm/experiments/trajectory_internal.h"
#include "ebm/report/tensorboard.h"
#include "ebm/util/files.h"

namespace ebm::experiments {

namespace {

// The record stage: reuses a recording already in the run directory, never adds to it. Every
// process decides before any of them writes.
void record_stage(const TrajConfig& c, const Config& config, const std::string& traj_dir,
                  bool quiet, dist::DataParallel& dp) {
  const bool reuse = has_trajectories(traj_dir);
  dp.barrier();
  if (reuse) {
    if (dp.is_main()) fmt::print(stderr, "using the recording in {}\n", traj_dir);
    return;
  }
  auto o = c.record;
  o.out_dir = traj_dir;
  record_trajectories(o, config.dump(), quiet, &dp);
}

// The evaluation's metrics as TensorBoard scalars eval/<method>/<metric>, beside the training
// curves, at step trainer.iterations (the EBM's last step when trained with the same config).
void write_eval_scalars(const traj::MethodMetrics& metrics, int64_t step, const std::string& dir) {
  report::EventWriter events(dir);
  for (const auto& [method, values] : metrics) {
    for (const auto& [metric, v] : values)
      events.add_scalar("eval/" + method + "/" + metric, v, step);
  }
  events.flush();
}

}  // namespace

TrajRunSummary run_trajectory(const TrajRunOptions& o) {
  auto config = Config::load_file(o.config_path, o.overrides);
  const TrajConfig c = traj_config(config->root());
  config->check_all_used();
  TrajRunSummary s;
  if (!o.train && !o.record && dist::is_secondary_rank()) {
    s.rank = 1;  // ebm traj eval under a launcher: rank 0 evaluates alone
    return s;
  }
  const torch::Device requested = resolve_device(c.device);
  dist::DataParallel dp(o.train || o.record ? dist::join_from_environment(requested) : nullptr);
  const torch::Device device = dist::local_device(requested);
  if (dp.active()) config->set("launch.world_size=" + std::to_string(dp.world_size()));
  s.run_dir = o.out_dir.empty() ? "runs/" + c.name : o.out_dir;
  s.rank = dp.rank();
  if (dp.is_main()) {
    std::filesystem::create_directories(s.run_dir);
    util::write_file_atomic(s.run_dir + "/config.yaml", config->dump());
  }
  if (o.record) record_stage(c, *config, s.run_dir + "/trajectories", o.quiet, dp);
  if (o.train) traj::train_models(c, s.run_dir, device, o.quiet, dp);
  // Evaluation runs on rank 0 alone: the other processes are done.
  if (o.eval && dp.is_main()) {
    const auto r = traj::evaluate(c, s.run_dir, device, o.quiet);
    s.metrics = r.metrics;
    s.table = traj::metrics_table(r.metrics);
    s.metrics_json = s.run_dir + "/metrics.json";
    util::write_file_atomic(s.metrics_json, traj::metrics_json(r, c));
    s.report_html = s.run_dir + "/report.html";
    util::write_file_atomic(s.report_html, traj::report_html(r, c, s.table));
    write_eval_scalars(r.metrics, c.ebm_iterations, s.run_dir + "/tensorboard");
  }
  return s;
}

}  // namespace ebm::experiments
