// The `ebm` command: the only place that wires the libraries together.
#include <fmt/core.h>
#include <mujoco/mujoco.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <string>

#include "ebm/build_info.h"
#include "ebm/cli/commands.h"

int main(int argc, char** argv) {
  // MuJoCo's warnings (a plugin that cannot write, a bad attribute) beside our errors on stderr,
  // instead of stdout and a MUJOCO_LOG.TXT in the working directory.
  mju_user_warning = [](const char* message) { fmt::print(stderr, "ebm: warning: {}\n", message); };
  CLI::App app{"ebm: energy-based models for images and MuJoCo trajectories", "ebm"};
  app.set_version_flag("--version", std::string("ebm ") + ebm::build::kVersion + " (LibTorch " +
                                        ebm::build::kTorchVersion + ", MuJoCo " +
                                        ebm::build::kMujocoVersion + ")");
  app.require_subcommand(1);
  ebm::cli::Action action;
  ebm::cli::add_smoke(app, action);
  ebm::cli::add_train(app, action);
  ebm::cli::add_sample(app, action);
  ebm::cli::add_record(app, action);
  ebm::cli::add_data(app, action);
  ebm::cli::add_traj(app, action);
  ebm::cli::add_eval(app, action);
  ebm::cli::add_export(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return action ? action() : 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "ebm: error: {}\n", e.what());
    return 1;
  }
}
