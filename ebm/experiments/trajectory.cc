// `ebm traj run|train|eval`: the stages in order, each from the run directory's files. The
// stages live in trajectory_{config,train,physics,eval,report}.cc (see trajectory_internal.h).
#include "ebm/experiments/trajectory.h"

#include <fmt/core.h>

#include <filesystem>

#include "ebm/core/device.h"
#include "ebm/experiments/recording.h"
#include "ebm/experiments/trajectory_internal.h"
#include "ebm/util/files.h"

namespace ebm::experiments {

namespace {

// The record stage: reuses a recording already in the run directory, never adds to it.
void record_stage(const TrajConfig& c, const Config& config, const std::string& traj_dir,
                  bool quiet) {
  if (has_trajectories(traj_dir)) {
    fmt::print(stderr, "using the recording in {}\n", traj_dir);
    return;
  }
  auto o = c.record;
  o.out_dir = traj_dir;
  record_trajectories(o, config.dump(), quiet);
}

}  // namespace

TrajRunSummary run_trajectory(const TrajRunOptions& o) {
  auto config = Config::load_file(o.config_path, o.overrides);
  const TrajConfig c = traj_config(config->root());
  config->check_all_used();
  TrajRunSummary s;
  s.run_dir = o.out_dir.empty() ? "runs/" + c.name : o.out_dir;
  std::filesystem::create_directories(s.run_dir);
  util::write_file_atomic(s.run_dir + "/config.yaml", config->dump());
  const torch::Device device = resolve_device(c.device);
  if (o.record) record_stage(c, *config, s.run_dir + "/trajectories", o.quiet);
  if (o.train) traj::train_models(c, s.run_dir, device, o.quiet);
  if (o.eval) {
    const auto r = traj::evaluate(c, s.run_dir, device, o.quiet);
    s.metrics = r.metrics;
    s.table = traj::metrics_table(r.metrics);
    s.metrics_json = s.run_dir + "/metrics.json";
    util::write_file_atomic(s.metrics_json, traj::metrics_json(r, c));
    s.report_html = s.run_dir + "/report.html";
    util::write_file_atomic(s.report_html, traj::report_html(r, c, s.table));
  }
  return s;
}

}  // namespace ebm::experiments
