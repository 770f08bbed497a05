// Replay buffer of Langevin chain states (the IGEBM "persistent" chains).
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "ebm/core/archive_fwd.h"
#include "ebm/core/options.h"

namespace ebm {

enum class BufferPolicy { kFifo, kReservoir };
inline constexpr EnumName<BufferPolicy> kBufferPolicyNames[] = {
    {BufferPolicy::kFifo, "fifo"}, {BufferPolicy::kReservoir, "reservoir"}};
enum class BufferInit { kUniform, kGaussian, kData };
inline constexpr EnumName<BufferInit> kBufferInitNames[] = {{BufferInit::kUniform, "uniform"},
                                                            {BufferInit::kGaussian, "gaussian"},
                                                            {BufferInit::kData, "data"}};
// kUint8: values in [0, 1] kept as floor(x * 256) clipped to 255 and re-dequantised with
// U(0, 1/256) when drawn (the original's compact image buffer). kFloat32: kept exactly.
enum class BufferStorage { kFloat32, kUint8 };
inline constexpr EnumName<BufferStorage> kBufferStorageNames[] = {
    {BufferStorage::kFloat32, "float32"}, {BufferStorage::kUint8, "uint8"}};

struct ReplayBufferOptions {
  // States kept, at most kMaxCapacity (the buffer is allocated whole when it is built).
  static constexpr int64_t kMaxCapacity = 1000000;
  TORCH_ARG(int64_t, capacity) = 10000;
  // Probability that a drawn chain start is a fresh sample of the init distribution.
  TORCH_ARG(double, reinit_prob) = 0.05;
  TORCH_ARG(BufferPolicy, policy) = BufferPolicy::kFifo;
  TORCH_ARG(BufferInit, init) = BufferInit::kUniform;
  // kUniform: U(init_low, init_high); kGaussian: N(init_mean, init_std); kData: rows of the
  // data batch handed to draw() (plus N(0, init_std) noise when init_std > 0).
  TORCH_ARG(double, init_low) = 0.0;
  TORCH_ARG(double, init_high) = 1.0;
  TORCH_ARG(double, init_mean) = 0.0;
  TORCH_ARG(double, init_std) = 1.0;
  TORCH_ARG(BufferStorage, storage) = BufferStorage::kFloat32;

 public:  // TORCH_ARG leaves the struct in a private section
  // Throws OptionError ("replay_buffer.<key> must be ...") for a field out of range.
  void validate() const;
};

// A draw of chain starts: states, their conditions (undefined for unconditional models) and which
// rows came from the buffer.
struct BufferDraw {
  torch::Tensor x;
  torch::Tensor condition;
  torch::Tensor from_buffer;  // bool [N]
};

class ReplayBuffer {
 public:
  // sample_shape: shape of one state (e.g. {1, 28, 28}); states are kept on `storage` (the CPU,
  // or the training device: then draws and pushes move no states between host and device). The
  // draws' random choices (which rows are fresh, which states) come from the CPU's generator
  // either way.
  ReplayBuffer(std::vector<int64_t> sample_shape, ReplayBufferOptions options = {},
               torch::Device storage = torch::kCPU);

  // n chain starts on `device`. Until the buffer holds more than n states every row is fresh;
  // then each row is fresh with probability reinit_prob. Fresh rows take their condition from
  // fresh_condition (rows of it, [n, ...]) and, for kData, their state from `data` ([>=1, ...]).
  BufferDraw draw(int64_t n, torch::Device device, const torch::Tensor& fresh_condition = {},
                  const torch::Tensor& data = {});
  // Stores final chain states (and their conditions, if the buffer keeps any).
  void push(const torch::Tensor& x, const torch::Tensor& condition = {});

  int64_t size() const { return size_; }
  int64_t capacity() const { return options_.capacity(); }
  const ReplayBufferOptions& options() const { return options_; }
  torch::Device storage_device() const { return data_.device(); }
  // The stored states as floats on the CPU (dequantised deterministically at bin centres for
  // kUint8).
  torch::Tensor states() const;

  // n fresh states of the init distribution (CPU, float), as draw() uses for re-initialised rows.
  torch::Tensor init_states(int64_t n, const torch::Tensor& data = {}) const;

  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  torch::Tensor encode(const torch::Tensor& x) const;
  torch::Tensor decode(const torch::Tensor& stored, bool dequantize) const;
  std::vector<int64_t> slots_for(int64_t n);

  std::vector<int64_t> shape_;
  ReplayBufferOptions options_;
  torch::Tensor data_;        // [capacity, ...] uint8 or float32, on the storage device
  torch::Tensor conditions_;  // [capacity, ...] or undefined, on the storage device
  int64_t size_ = 0;
  int64_t head_ = 0;  // FIFO: next slot to overwrite
  int64_t seen_ = 0;  // reservoir: states offered so far
};

}  // namespace ebm
