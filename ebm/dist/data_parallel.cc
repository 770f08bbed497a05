#include "ebm/dist/data_parallel.h"

#include <torch/torch.h>

#include <cstring>
#include <iostream>
#include <sstream>
#include <utility>

namespace ebm::dist {

namespace {

std::string rank_key(int rank) { return "dist.rank" + std::to_string(rank); }

// "rank 2" or "ranks 2..3": the ranks in [first, end).
std::string ranks(int64_t first, int64_t end) {
  if (end - first == 1) return "rank " + std::to_string(first);
  return "ranks " + std::to_string(first) + ".." + std::to_string(end - 1);
}

}  // namespace

DataParallel::DataParallel(std::shared_ptr<ProcessGroup> group) : group_(std::move(group)) {}

void DataParallel::replicate(std::vector<torch::Tensor> state) {
  if (group_) group_->broadcast(state, 0);
}

void DataParallel::attach(ContrastiveDivergenceTrainer& trainer) {
  if (!group_) return;
  replicate(trainer.replicated_state());
  trainer.set_grad_sync([this](std::vector<torch::Tensor>& grads) { average(grads); });
  trainer.set_vote([this](bool finite) { return group_->all_true(finite); });
}

void DataParallel::average(std::vector<torch::Tensor>& grads) {
  if (!group_) return;
  group_->all_reduce_sum(grads);
  for (auto& g : grads) g.div_(group_->size());
}

bool DataParallel::average_gradients(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  average(grads);
  // One host sync for the verdict, as the trainer's own guard does.
  auto finite = torch::ones({}, torch::kBool);
  for (const auto& g : grads) finite = finite.logical_and(torch::isfinite(g).all().cpu());
  return group_ ? group_->all_true(finite.item<bool>()) : finite.item<bool>();
}

std::vector<double> DataParallel::sum(std::vector<double> values) {
  if (!group_ || values.empty()) return values;
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kFloat64)};
  group_->all_reduce_sum(t);
  auto cpu = t[0].cpu();
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = cpu[static_cast<int64_t>(i)].item<double>();
  return values;
}

std::vector<double> DataParallel::mean(std::vector<double> values) {
  values = sum(std::move(values));
  for (auto& v : values) v /= world_size();
  return values;
}

std::function<void(torch::serialize::OutputArchive&)> DataParallel::checkpoint_extras(
    const ContrastiveDivergenceTrainer& trainer) {
  const int world = world_size();
  std::vector<std::string> locals;
  if (group_) {
    torch::serialize::OutputArchive mine;
    trainer.save_local(mine);
    std::ostringstream out;
    mine.save_to(out);
    locals = group_->all_gather_bytes(out.str());
  }
  if (!is_main()) return [](torch::serialize::OutputArchive&) {};
  return [world, locals = std::move(locals)](torch::serialize::OutputArchive& archive) {
    archive.write("dist.world_size", torch::tensor(static_cast<int64_t>(world), torch::kLong));
    for (size_t r = 1; r < locals.size(); ++r) {
      auto bytes = torch::empty({static_cast<int64_t>(locals[r].size())}, torch::kUInt8);
      std::memcpy(bytes.data_ptr<uint8_t>(), locals[r].data(), locals[r].size());
      archive.write(rank_key(static_cast<int>(r)), bytes);
    }
  };
}

std::string DataParallel::resume(ContrastiveDivergenceTrainer& trainer,
                                 torch::serialize::InputArchive& archive, unsigned long long seed) {
  torch::Tensor saved;
  const int64_t saved_world =
      archive.try_read("dist.world_size", saved) ? saved.item<int64_t>() : 1;
  const int r = rank();
  if (r > 0) {
    torch::Tensor blob;
    if (archive.try_read(rank_key(r), blob)) {
      auto bytes = blob.contiguous();
      torch::serialize::InputArchive local;
      local.load_from(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                      static_cast<size_t>(bytes.numel()));
      trainer.load_local(local);
    } else {
      trainer.reset_buffer();
      torch::manual_seed(rank_seed(seed, r));
    }
  }
  const int64_t world = world_size();
  if (saved_world == world) return "";
  std::ostringstream msg;
  msg << "the checkpoint was written by " << saved_world << " process"
      << (saved_world == 1 ? "" : "es") << ", this run has " << world << ": ";
  if (world > saved_world) {
    msg << ranks(saved_world, world)
        << (world - saved_world == 1 ? " starts with an empty replay buffer and a fresh RNG stream"
                                     : " start with empty replay buffers and fresh RNG streams");
  } else {
    msg << "the replay buffers of " << ranks(world, saved_world) << " are not used";
  }
  return msg.str();
}

void DataParallel::barrier() {
  if (group_) group_->barrier();
}

int64_t recorded_world_size(const ConfigSection& root) {
  const auto launch = root.section("launch");
  const int64_t w = launch.get<int64_t>("world_size", 1);
  launch.check(w >= 1, "world_size", ">= 1");
  return w;
}

torch::Device local_device(torch::Device device) {
  if (!device.is_cuda()) return device;
  const auto env = LaunchEnv::from_environment();
  if (!env) return device;
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env->local_rank));
}

std::shared_ptr<ProcessGroup> join_from_environment(torch::Device device) {
  const auto env = LaunchEnv::from_environment();
  if (!env) return nullptr;
  const auto timeout = timeout_from_environment();
  auto group = ProcessGroup::join(*env, local_device(device), timeout);
  if (group->is_main())
    std::cerr << "data-parallel: " << group->size() << " processes, " << group->backend_name()
              << " over " << env->master_addr << ":" << env->master_port << ", timeout "
              << static_cast<double>(timeout.count()) / 1000 << " s\n";
  return group;
}

}  // namespace ebm::dist
