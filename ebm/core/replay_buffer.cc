#include "ebm/core/replay_buffer.h"

#include <torch/serialize/archive.h>
#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace ebm {

namespace {
std::string shape_str(c10::IntArrayRef s) { return c10::str(s); }

// A CPU copy of t that shares no storage with it.
torch::Tensor cpu_copy(const torch::Tensor& t) {
  return t.device().is_cpu() ? t.clone() : t.to(torch::kCPU);
}
}  // namespace

void ReplayBufferOptions::validate() const {
  constexpr const char* kSection = "replay_buffer";
  static_assert(kMaxCapacity == 1000000, "the requirement below names the maximum");
  require_option(capacity() > 0 && capacity() <= kMaxCapacity, kSection, "capacity",
                 "in [1, 1000000]", capacity());
  require_option(reinit_prob() >= 0 && reinit_prob() <= 1, kSection, "reinit_prob", "in [0, 1]",
                 reinit_prob());
  require_option(init_low() < init_high(), kSection, "init_high", "> init_low", init_high());
  require_option(init_std() >= 0, kSection, "init_std", ">= 0", init_std());
}

ReplayBuffer::ReplayBuffer(std::vector<int64_t> sample_shape, ReplayBufferOptions options,
                           torch::Device storage)
    : shape_(std::move(sample_shape)), options_(std::move(options)) {
  options_.validate();
  std::vector<int64_t> full{options_.capacity()};
  full.insert(full.end(), shape_.begin(), shape_.end());
  data_ = torch::zeros(
      full, torch::TensorOptions(storage).dtype(
                options_.storage() == BufferStorage::kUint8 ? torch::kUInt8 : torch::kFloat32));
}

torch::Tensor ReplayBuffer::encode(const torch::Tensor& x) const {
  auto stored = x.detach().to(data_.device(), torch::kFloat32);
  if (options_.storage() == BufferStorage::kFloat32) return stored;
  return (stored * 256.0).floor().clamp(0, 255).to(torch::kUInt8);
}

torch::Tensor ReplayBuffer::decode(const torch::Tensor& stored, bool dequantize) const {
  if (options_.storage() == BufferStorage::kFloat32) return stored.clone();
  auto f = stored.to(torch::kFloat32);
  if (dequantize) return (f + torch::rand_like(f)) / 256.0;
  return (f + 0.5) / 256.0;
}

torch::Tensor ReplayBuffer::states() const {
  return decode(data_.narrow(0, 0, size_), /*dequantize=*/false).to(torch::kCPU);
}

torch::Tensor ReplayBuffer::init_states(int64_t n, const torch::Tensor& data) const {
  std::vector<int64_t> full{n};
  full.insert(full.end(), shape_.begin(), shape_.end());
  switch (options_.init()) {
    case BufferInit::kUniform:
      return torch::rand(full) * (options_.init_high() - options_.init_low()) + options_.init_low();
    case BufferInit::kGaussian:
      return torch::randn(full) * options_.init_std() + options_.init_mean();
    case BufferInit::kData: {
      if (!data.defined() || data.size(0) == 0)
        throw std::invalid_argument("replay_buffer: init 'data' needs a data batch in draw()");
      auto idx = torch::randint(data.size(0), {n}, torch::kLong);
      auto rows = data.detach().to(torch::kCPU, torch::kFloat32).index_select(0, idx);
      if (options_.init_std() > 0) rows = rows + torch::randn_like(rows) * options_.init_std();
      return rows.reshape(full);
    }
  }
  throw std::logic_error("unknown buffer init");
}

BufferDraw ReplayBuffer::draw(int64_t n, torch::Device device, const torch::Tensor& fresh_condition,
                              const torch::Tensor& data) {
  if (n <= 0) throw std::invalid_argument("replay_buffer.draw: n must be > 0");
  if (fresh_condition.defined() && fresh_condition.size(0) != n)
    throw std::invalid_argument("replay_buffer.draw: fresh_condition has " +
                                std::to_string(fresh_condition.size(0)) + " rows, expected " +
                                std::to_string(n));
  // Rows are assembled where the states are kept, then moved to `device` (no copy when the
  // buffer is kept there).
  const auto storage = data_.device();
  BufferDraw out;
  out.x = init_states(n, data).to(storage);
  out.from_buffer = torch::zeros({n}, torch::kBool);
  if (fresh_condition.defined()) out.condition = fresh_condition.to(storage).clone();
  if (size_ > n) {
    out.from_buffer = torch::rand({n}) >= options_.reinit_prob();
    auto rows = out.from_buffer.nonzero().squeeze(1);
    if (rows.numel() > 0) {
      auto idx = torch::randint(size_, {rows.size(0)}, torch::kLong).to(storage);
      rows = rows.to(storage);
      out.x.index_copy_(0, rows, decode(data_.index_select(0, idx), /*dequantize=*/true));
      if (conditions_.defined() && out.condition.defined()) {
        out.condition.index_copy_(0, rows, conditions_.index_select(0, idx));
      }
    }
  }
  out.x = out.x.to(device);
  if (out.condition.defined()) out.condition = out.condition.to(device);
  return out;
}

std::vector<int64_t> ReplayBuffer::slots_for(int64_t n) {
  std::vector<int64_t> slots(n, -1);
  const int64_t cap = options_.capacity();
  for (int64_t i = 0; i < n; ++i) {
    if (options_.policy() == BufferPolicy::kFifo) {
      slots[i] = head_;
      head_ = (head_ + 1) % cap;
      size_ = std::min(size_ + 1, cap);
    } else {
      ++seen_;
      if (size_ < cap) {
        slots[i] = size_++;
      } else {
        // Keep the new state with probability cap / seen, in a uniformly chosen slot.
        const int64_t j = torch::randint(seen_, {1}, torch::kLong).item<int64_t>();
        if (j < cap) slots[i] = j;
      }
    }
  }
  return slots;
}

void ReplayBuffer::push(const torch::Tensor& x, const torch::Tensor& condition) {
  if (x.dim() != static_cast<int64_t>(shape_.size()) + 1 ||
      x.sizes().slice(1) != c10::IntArrayRef(shape_)) {
    throw std::invalid_argument("replay_buffer.push: states of shape " + shape_str(x.sizes()) +
                                ", expected [N, " + shape_str(shape_) + "]");
  }
  if (condition.defined() && condition.size(0) != x.size(0))
    throw std::invalid_argument("replay_buffer.push: conditions and states differ in count");
  if (condition.defined() && !conditions_.defined()) {
    std::vector<int64_t> full{options_.capacity()};
    auto rest = condition.sizes().slice(1);
    full.insert(full.end(), rest.begin(), rest.end());
    conditions_ = torch::zeros(full, condition.options().device(data_.device()));
  }
  const auto slots = slots_for(x.size(0));
  auto enc = encode(x);
  auto cond = condition.defined() ? condition.detach().to(data_.device()) : torch::Tensor();
  std::vector<int64_t> src, dst;
  for (int64_t i = 0; i < static_cast<int64_t>(slots.size()); ++i) {
    if (slots[i] >= 0) {
      src.push_back(i);
      dst.push_back(slots[i]);
    }
  }
  if (src.empty()) return;
  // Within one push a FIFO may wrap onto its own slots: the later state wins, as sequential
  // writes would do. index_copy_ with duplicate targets is undefined, so keep the last only.
  std::vector<int64_t> last_src(options_.capacity(), -1);
  for (size_t k = 0; k < src.size(); ++k) last_src[dst[k]] = src[k];
  std::vector<int64_t> s2, d2;
  for (size_t k = 0; k < src.size(); ++k) {
    if (last_src[dst[k]] == src[k]) {
      s2.push_back(src[k]);
      d2.push_back(dst[k]);
    }
  }
  auto si = torch::tensor(s2, torch::kLong).to(data_.device());
  auto di = torch::tensor(d2, torch::kLong).to(data_.device());
  data_.index_copy_(0, di, enc.index_select(0, si).to(data_.dtype()));
  if (cond.defined() && conditions_.defined()) {
    conditions_.index_copy_(0, di, cond.index_select(0, si).to(conditions_.dtype()));
  }
}

void ReplayBuffer::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  // Checkpoints hold CPU tensors whichever device keeps the states.
  archive.write(prefix + "data", cpu_copy(data_.narrow(0, 0, size_)));
  if (conditions_.defined())
    archive.write(prefix + "conditions", cpu_copy(conditions_.narrow(0, 0, size_)));
  archive.write(prefix + "counters",
                torch::tensor({size_, head_, seen_, options_.capacity()}, torch::kLong));
}

void ReplayBuffer::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  torch::Tensor counters, data, conds;
  archive.read(prefix + "counters", counters);
  archive.read(prefix + "data", data);
  if (counters.numel() != 4) throw std::runtime_error("replay buffer: corrupt counters");
  const int64_t size = counters[0].item<int64_t>();
  if (counters[3].item<int64_t>() != options_.capacity())
    throw std::runtime_error("replay buffer: checkpoint capacity " +
                             std::to_string(counters[3].item<int64_t>()) +
                             " differs from the configured " + std::to_string(options_.capacity()));
  if (data.size(0) != size || data.sizes().slice(1) != data_.sizes().slice(1) ||
      data.dtype() != data_.dtype())
    throw std::runtime_error("replay buffer: checkpoint states " + shape_str(data.sizes()) +
                             " do not match the configured buffer " + shape_str(data_.sizes()));
  data_.narrow(0, 0, size).copy_(data);
  if (archive.try_read(prefix + "conditions", conds)) {
    std::vector<int64_t> full{options_.capacity()};
    auto rest = conds.sizes().slice(1);
    full.insert(full.end(), rest.begin(), rest.end());
    conditions_ = torch::zeros(full, conds.options().device(data_.device()));
    conditions_.narrow(0, 0, size).copy_(conds);
  }
  size_ = size;
  head_ = counters[1].item<int64_t>();
  seen_ = counters[2].item<int64_t>();
}

}  // namespace ebm
