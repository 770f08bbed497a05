// `ebm smoke`: proves the toolchain end to end until the trajectory pipeline replaces it as the
// main job: compile and step the Shadow Hand block scene in MuJoCo, then run the project's
// Langevin sampler on a tiny energy model over the hand's joint positions, on the CPU.
#include <fmt/core.h>
#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ebm/build_info.h"
#include "ebm/cli/commands.h"
#include "ebm/core/langevin.h"
#include "plugin/rollout/scene.h"

namespace ebm::cli {
namespace {

struct SmokeArgs {
  std::string scene;
  int physics_steps = 2000;
  int langevin_steps = 40;
  int chains = 16;
  uint64_t seed = 0;
};

// E(x) = MLP(x) + |x - anchor|^2 / (2 sigma^2): a small random net on top of a well around the
// hand pose that the simulation reached, so the chains have somewhere to go.
class TinyEnergy : public EnergyModel {
 public:
  TinyEnergy(torch::Tensor anchor, double sigma) : anchor_(std::move(anchor)), sigma_(sigma) {
    const int64_t d = anchor_.size(0);
    net_ = register_module("net", torch::nn::Sequential(torch::nn::Linear(d, 32), torch::nn::SiLU(),
                                                        torch::nn::Linear(32, 1)));
  }
  torch::Tensor energy(const torch::Tensor& x, const torch::Tensor&) override {
    auto quad = (x - anchor_).pow(2).sum(1) / (2 * sigma_ * sigma_);
    return net_->forward(x).squeeze(1) * 0.1 + quad;
  }

 private:
  torch::Tensor anchor_;
  double sigma_;
  torch::nn::Sequential net_{nullptr};
};

int run_smoke(const SmokeArgs& args) {
  fmt::print("ebm {} | LibTorch {} | MuJoCo {}\n", build::kVersion, build::kTorchVersion,
             mj_versionString());
  // 1. MuJoCo: compile and step the scene with smooth random position targets.
  char error[1024] = "";
  std::unique_ptr<mjModel, void (*)(mjModel*)> model(
      mj_loadXML(args.scene.c_str(), nullptr, error, sizeof(error)), mj_deleteModel);
  if (!model) throw std::runtime_error("cannot load scene " + args.scene + ": " + error);
  std::unique_ptr<mjData, void (*)(mjData*)> data(mj_makeData(model.get()), mj_deleteData);
  if (!data) throw std::runtime_error("mj_makeData failed for " + args.scene);
  const mjModel* m = model.get();
  mjData* d = data.get();
  fmt::print("scene {}: nq={} nv={} nu={} timestep={}\n", args.scene, m->nq, m->nv, m->nu,
             m->opt.timestep);

  std::mt19937_64 rng(args.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> target(m->nu, 0.0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < args.physics_steps; ++step) {
    if (step % 20 == 0) {  // a new target every 20 substeps, as the Gym environment acts
      for (int i = 0; i < m->nu; ++i) {
        double lo = m->actuator_ctrlrange[2 * i], hi = m->actuator_ctrlrange[2 * i + 1];
        double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
        target[i] = std::clamp(0.9 * target[i] + 0.3 * half * normal(rng) + 0.1 * mid, lo, hi);
      }
    }
    for (int i = 0; i < m->nu; ++i) d->ctrl[i] = target[i];
    mj_step(m, d);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bool finite = true;
  for (int i = 0; i < m->nq; ++i) finite = finite && std::isfinite(d->qpos[i]);
  if (!finite) throw std::runtime_error("the simulation diverged (non-finite qpos)");
  int warnings = 0;
  for (int i = 0; i < mjNWARNING; ++i) warnings += d->warning[i].number;
  const int block = mj_name2id(m, mjOBJ_BODY, "object");
  fmt::print("stepped {} physics steps ({:.2f} s simulated) at {:.0f} steps/s, {} warnings\n",
             args.physics_steps, d->time, args.physics_steps / secs, warnings);
  if (block >= 0) {
    const double* p = d->xpos + 3 * block;
    fmt::print("block at ({:.3f}, {:.3f}, {:.3f})\n", p[0], p[1], p[2]);
  }

  // 2. Langevin: chains over the 24 hand joint positions, from uniform noise in the joint ranges.
  torch::manual_seed(args.seed);
  const int hand_dofs = std::min<int>(24, m->nq);
  auto anchor = torch::from_blob(d->qpos, {hand_dofs}, torch::kFloat64).to(torch::kFloat32);
  auto energy = std::make_shared<TinyEnergy>(anchor, /*sigma=*/0.1);
  auto lo = torch::empty({hand_dofs}), hi = torch::empty({hand_dofs});
  for (int j = 0; j < hand_dofs; ++j) {
    const int jid = j;  // the first 24 joints are the hand's, one dof each
    lo[j] = m->jnt_limited[jid] ? m->jnt_range[2 * jid] : -1.0;
    hi[j] = m->jnt_limited[jid] ? m->jnt_range[2 * jid + 1] : 1.0;
  }
  auto x0 = lo + (hi - lo) * torch::rand({args.chains, hand_dofs});
  LangevinSampler sampler(LangevinOptions()
                              .steps(args.langevin_steps)
                              .step_size(0.002)
                              .noise_std(0.005)
                              .clip_mode(GradClip::kL2)
                              .grad_clip(50.0)
                              .clamp_min(std::nullopt)
                              .clamp_max(std::nullopt));
  fmt::print("Langevin: {} chains x {} steps over {} hand joint positions (CPU)\n", args.chains,
             args.langevin_steps, hand_dofs);
  auto report = [&](const LangevinStepStats& s) {
    if (s.step % 10 == 0 || s.step + 1 == args.langevin_steps) {
      fmt::print("  step {:3d}  mean energy {:10.3f}  mean |grad| {:10.3f}\n", s.step,
                 s.mean_energy, s.grad_norm);
    }
  };
  auto x = sampler.sample(*energy, x0, {}, {}, report);
  const double before = (x0 - anchor).norm(2, 1).mean().item<double>();
  const double after = (x - anchor).norm(2, 1).mean().item<double>();
  fmt::print("mean distance to the simulated hand pose: {:.3f} rad -> {:.3f} rad\n", before, after);
  fmt::print("smoke run OK\n");
  return 0;
}

}  // namespace

void add_smoke(CLI::App& app, Action& action) {
  auto args = std::make_shared<SmokeArgs>();
  args->scene = rollout::default_hand_scene();
  auto* cmd = app.add_subcommand(
      "smoke", "Step the Shadow Hand scene in MuJoCo and run Langevin on a tiny energy model");
  cmd->add_option("--scene", args->scene, "MJCF scene to load")->capture_default_str();
  cmd->add_option("--physics-steps", args->physics_steps, "MuJoCo steps to run")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--langevin-steps", args->langevin_steps, "Langevin steps")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--chains", args->chains, "parallel Langevin chains")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->seed, "random seed")->capture_default_str();
  cmd->callback([args, &action] { action = [args] { return run_smoke(*args); }; });
}

}  // namespace ebm::cli
