#include "ebm/dist/process_group.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "ebm/dist/backends.h"

namespace ebm::dist {

namespace {

constexpr auto kRollCallGrace = std::chrono::seconds(10);

std::string seconds(std::chrono::milliseconds t) {
  return c10::str(static_cast<double>(t.count()) / 1000.0, " s");
}

// An exception's message without the C++ backtrace c10 appends to its own.
std::string reason(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e))
    return c10_error->what_without_backtrace();
  return e.what();
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

struct ProcessGroup::C10d {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  bool agent_store = false;
};

std::chrono::milliseconds timeout_from_environment() {
  const char* v = std::getenv("EBM_DIST_TIMEOUT");
  if (!v || !*v) return std::chrono::seconds(300);
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  if (*end != '\0' || !(s > 0) || s > 1e6)
    throw std::invalid_argument(std::string("EBM_DIST_TIMEOUT='") + v +
                                "' is not a number of seconds in (0, 1e6]");
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

std::shared_ptr<ProcessGroup> ProcessGroup::join(const LaunchEnv& env, torch::Device device,
                                                 std::chrono::milliseconds timeout) {
  return std::shared_ptr<ProcessGroup>(new ProcessGroup(env, device, timeout));
}

ProcessGroup::ProcessGroup(const LaunchEnv& env, torch::Device device,
                           std::chrono::milliseconds timeout)
    : rank_(env.rank),
      size_(env.world_size),
      device_(device),
      timeout_(timeout),
      address_(env.master_addr + ":" + std::to_string(env.master_port)),
      c10d_(std::make_unique<C10d>()) {
  c10d_->agent_store = env.agent_store;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = !env.agent_store && env.rank == 0;
  if (env.agent_store) {
    so.waitWorkers = false;  // torchrun's agents completed the rendezvous already
  } else {
    so.numWorkers = env.world_size;  // every rank counts itself in; rank 0 waits for all
  }
  so.timeout = timeout;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    c10d_->store = c10::make_intrusive<c10d::PrefixStore>("ebm", tcp);
  } catch (const std::exception& e) {
    throw PeerFailure("rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                      ": the rendezvous at " + address_ + " did not complete within " +
                      seconds(timeout) + " (" + reason(e) + ")");
  }
  try {
    if (device.is_cuda()) {
      c10d_->backend = make_nccl_backend(c10d_->store, rank_, size_, timeout, device.index());
    } else {
      c10d_->backend = make_gloo_backend(c10d_->store, rank_, size_, timeout);
    }
  } catch (const PeerFailure&) {
    throw;
  } catch (const std::exception& e) {
    fail("joining the process group", reason(e));
  }
}

ProcessGroup::~ProcessGroup() = default;

std::string ProcessGroup::backend_name() const { return c10d_->backend->getBackendName(); }

template <class F>
void ProcessGroup::guarded(const char* what, F&& collective) {
  try {
    collective();
  } catch (const std::exception& e) {
    fail(what, reason(e));
  }
}

void ProcessGroup::fail(const char* what, const std::string& cause) {
  // A roll call through the store: every rank that is still alive and has also seen the failure
  // answers; the ranks that do not answer within the grace period died or hang.
  const std::string me = "rank " + std::to_string(rank_) + " of " + std::to_string(size_);
  std::vector<int> silent;
  try {
    auto& store = *c10d_->store;
    store.set("rollcall/" + std::to_string(rank_), std::vector<uint8_t>{1});
    const auto deadline = std::chrono::steady_clock::now() +
                          std::min<std::chrono::milliseconds>(timeout_, kRollCallGrace);
    do {
      silent.clear();
      for (int r = 0; r < size_; ++r) {
        if (!store.check({"rollcall/" + std::to_string(r)})) silent.push_back(r);
      }
      if (silent.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } while (std::chrono::steady_clock::now() < deadline);
  } catch (const std::exception&) {
    if (c10d_->agent_store)
      throw PeerFailure(me + ": " + what + " failed and torchrun's rendezvous store at " +
                        address_ + " is gone (" + cause + ")");
    throw PeerFailure(me + ": " + what +
                      " failed: rank 0 died (the rendezvous store it served at " + address_ +
                      " is gone; " + cause + ")");
  }
  if (silent.empty())
    throw PeerFailure(me + ": " + what + " failed (" + cause +
                      "); every rank answered a roll call, so no process died");
  throw PeerFailure(me + ": " + what + " failed: " + rank_list(silent) +
                    " died or stopped responding (no answer to a roll call within " +
                    seconds(std::min<std::chrono::milliseconds>(timeout_, kRollCallGrace)) +
                    "; collective timeout " + seconds(timeout_) + "; " + cause + ")");
}

namespace {

// Tensors grouped by dtype and cut into flat buckets of at most kBucketBytes, so that a list of
// many small tensors costs a few collectives on one tensor each (Gloo reduces across the tensors
// of one call, so one call must never carry several).
template <class F>
void for_each_bucket(std::vector<torch::Tensor>& tensors, torch::Device device, F&& collective) {
  constexpr int64_t kBucketBytes = 25 << 20;
  std::vector<bool> done(tensors.size(), false);
  for (size_t first = 0; first < tensors.size(); ++first) {
    if (done[first]) continue;
    const auto dtype = tensors[first].scalar_type();
    std::vector<size_t> members;
    int64_t bytes = 0;
    for (size_t i = first; i < tensors.size(); ++i) {
      if (done[i] || tensors[i].scalar_type() != dtype) continue;
      const int64_t b = tensors[i].numel() * tensors[i].element_size();
      if (!members.empty() && bytes + b > kBucketBytes) continue;
      members.push_back(i);
      bytes += b;
      done[i] = true;
    }
    std::vector<torch::Tensor> flat_parts;
    for (size_t i : members) flat_parts.push_back(tensors[i].detach().reshape({-1}).to(device));
    auto flat = torch::cat(flat_parts);
    collective(flat);
    int64_t offset = 0;
    torch::NoGradGuard no_grad;
    for (size_t i : members) {
      auto& t = tensors[i];
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  for_each_bucket(tensors, device_, [&](torch::Tensor& flat) {
    guarded("broadcast", [&] {
      std::vector<torch::Tensor> one{flat};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      c10d_->backend->broadcast(one, o)->wait();
    });
  });
}

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  for_each_bucket(tensors, device_, [&](torch::Tensor& flat) {
    guarded("all-reduce", [&] {
      std::vector<torch::Tensor> one{flat};
      c10d_->backend->allreduce(one)->wait();
    });
  });
}

bool ProcessGroup::all_true(bool local) {
  std::vector<torch::Tensor> one{
      torch::tensor({local ? 1 : 0}, torch::TensorOptions().dtype(torch::kInt).device(device_))};
  guarded("vote", [&] {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::MIN;
    c10d_->backend->allreduce(one, o)->wait();
  });
  return one[0].item<int>() == 1;
}

std::vector<std::string> ProcessGroup::all_gather_bytes(const std::string& bytes) {
  const auto on = torch::TensorOptions().device(device_);
  auto gather = [&](const torch::Tensor& mine) {
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < size_; ++r) out[0].push_back(torch::empty_like(mine));
    std::vector<torch::Tensor> in{mine};
    guarded("all-gather", [&] { c10d_->backend->allgather(out, in)->wait(); });
    return out[0];
  };
  const auto sizes =
      gather(torch::tensor({static_cast<int64_t>(bytes.size())}, on.dtype(torch::kLong)));
  int64_t longest = 0;
  for (const auto& s : sizes) longest = std::max(longest, s.item<int64_t>());
  auto mine = torch::zeros({std::max<int64_t>(longest, 1)}, on.dtype(torch::kUInt8));
  if (!bytes.empty())
    mine.narrow(0, 0, static_cast<int64_t>(bytes.size()))
        .copy_(torch::from_blob(const_cast<char*>(bytes.data()),
                                {static_cast<int64_t>(bytes.size())}, torch::kUInt8));
  const auto all = gather(mine);
  std::vector<std::string> result;
  for (int r = 0; r < size_; ++r) {
    auto cpu = all[r].cpu().contiguous();
    result.emplace_back(reinterpret_cast<const char*>(cpu.data_ptr<uint8_t>()),
                        static_cast<size_t>(sizes[r].item<int64_t>()));
  }
  return result;
}

void ProcessGroup::barrier() {
  guarded("barrier", [&] { c10d_->backend->barrier()->wait(); });
}

}  // namespace ebm::dist
