#include "ebm/nets/image_nets.h"

#include <torch/torch.h>

#include <stdexcept>
#include <utility>

#include "ebm/core/langevin_graph.h"

namespace ebm {

namespace {

torch::nn::AnyModule make_conv(int64_t in, int64_t out, int64_t k, bool sn) {
  auto opts = torch::nn::Conv2dOptions(in, out, k).padding(k / 2);
  if (sn) return torch::nn::AnyModule(SNConv2d(opts));
  return torch::nn::AnyModule(torch::nn::Conv2d(opts));
}

}  // namespace

ImageEnergyOptions image_net_preset(const std::string& name, int64_t in_channels,
                                    int64_t num_classes) {
  auto o = ImageEnergyOptions().in_channels(in_channels).num_classes(num_classes);
  if (name == "resnet32") {
    return o.stem_filters(128).stage_filters({128, 128, 128}).blocks_per_stage(2);
  }
  if (name == "resnet32_large") {
    return o.stem_filters(128).stage_filters({128, 256, 512}).blocks_per_stage(3).dropout(0.5);
  }
  if (name == "resnet32_wider") {
    return o.stem_filters(192).stage_filters({192, 192, 192}).blocks_per_stage(3);
  }
  if (name == "resnet32_wider_imagenet") {
    return o.stem_filters(256).stage_filters({256, 256, 256}).blocks_per_stage(3);
  }
  if (name == "small_cnn") {
    return o.stem_filters(16)
        .stage_filters({16, 32, 64})
        .blocks_per_stage(1)
        .activation(Activation::kSwish);
  }
  throw std::invalid_argument("unknown net '" + name +
                              "' (known: resnet32, resnet32_large, resnet32_wider, "
                              "resnet32_wider_imagenet, small_cnn)");
}

CondResBlockImpl::CondResBlockImpl(int64_t in, int64_t out, bool downsample,
                                   const ImageEnergyOptions& o)
    : options_(o), downsample_(downsample) {
  conv1_ = make_conv(in, out, 3, o.spectral_norm());
  conv2_ = make_conv(out, out, 3, o.spectral_norm());
  register_module("conv1", conv1_.ptr());
  register_module("conv2", conv2_.ptr());
  {
    // The second conv starts near zero: each block begins close to the identity.
    torch::NoGradGuard no_grad;
    for (auto& p : conv2_.ptr()->named_parameters(false)) {
      if (p.key() == "weight") p.value().mul_(1e-3);
    }
  }
  if (in != out) {
    skip_ = make_conv(in, out, 1, o.spectral_norm());
    register_module("skip", skip_.ptr());
  }
  if (o.num_classes() > 0) {
    cond_bias1_ = register_parameter("cond_bias1", torch::zeros({o.num_classes(), in}));
    cond_gain2_ = register_parameter("cond_gain2", torch::ones({o.num_classes(), out}));
    cond_bias2_ = register_parameter("cond_bias2", torch::zeros({o.num_classes(), out}));
  }
  if (o.dropout() > 0) dropout_ = register_module("dropout", torch::nn::Dropout(o.dropout()));
}

torch::Tensor CondResBlockImpl::act(const torch::Tensor& x) const {
  if (options_.activation() == Activation::kSwish) return torch::silu(x);
  return torch::leaky_relu(x, options_.leaky_slope());
}

torch::Tensor CondResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& onehot) {
  auto per_channel = [](const torch::Tensor& t) { return t.unsqueeze(-1).unsqueeze(-1); };
  auto h = x;
  if (onehot.defined()) h = h + per_channel(onehot.matmul(cond_bias1_));
  h = conv1_.forward(act(h));
  h = act(h);
  if (dropout_) h = dropout_->forward(h);
  h = conv2_.forward(h);
  if (onehot.defined()) {
    h = h * per_channel(onehot.matmul(cond_gain2_)) + per_channel(onehot.matmul(cond_bias2_));
  }
  auto skip = skip_.is_empty() ? x : skip_.forward(x);
  auto out = skip + h;
  if (downsample_) out = torch::avg_pool2d(out, 2);
  return out;
}

ImageEnergyNet::ImageEnergyNet(ImageEnergyOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.stage_filters().empty() || o.blocks_per_stage() < 1)
    throw std::invalid_argument("image net: need at least one stage and one block per stage");
  stem_ = make_conv(o.in_channels(), o.stem_filters(), 3, o.spectral_norm());
  register_module("stem", stem_.ptr());
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  if (o.class_head() && o.num_classes() < 2)
    throw std::invalid_argument(
        "image net: class_head needs a conditional model (num_classes >= 2)");
  // With a class head the blocks are unconditional: the label only picks the head's output.
  const auto block_options =
      ImageEnergyOptions(o).num_classes(o.class_head() ? 0 : o.num_classes());
  int64_t c = o.stem_filters();
  const auto nstages = static_cast<int64_t>(o.stage_filters().size());
  for (int64_t s = 0; s < nstages; ++s) {
    for (int64_t b = 0; b < o.blocks_per_stage(); ++b) {
      const bool last_of_stage = b + 1 == o.blocks_per_stage();
      const int64_t out = o.stage_filters()[s];
      blocks_->push_back(CondResBlock(c, out, last_of_stage && s + 1 < nstages, block_options));
      c = out;
    }
  }
  // The last linear layer has no spectral norm (as the original).
  head_ = register_module("head", torch::nn::Linear(c, o.class_head() ? o.num_classes() : 1));
}

torch::Tensor ImageEnergyNet::onehot(const torch::Tensor& condition, int64_t n) const {
  const int64_t k = options_.num_classes();
  if (k == 0) {
    if (condition.defined())
      throw std::invalid_argument("image net: unconditional model given a condition");
    return {};
  }
  if (!condition.defined())
    throw std::invalid_argument("image net: conditional model needs a label");
  if (condition.dim() == 1 && !condition.is_floating_point()) {
    if (condition.size(0) != n) throw std::invalid_argument("image net: label count != batch");
    // (Not while a chain is captured as a CUDA graph: the check is a host sync, which a capture
    // forbids; the labels of a captured chain are the trainer's, already checked by the data.)
    if (!capturing_chain() &&
        (condition.min().item<int64_t>() < 0 || condition.max().item<int64_t>() >= k))
      throw std::invalid_argument("image net: label out of range [0, " + std::to_string(k) + ")");
    return torch::one_hot(condition, k).to(torch::kFloat32);
  }
  if (condition.dim() == 2 && condition.size(0) == n && condition.size(1) == k)
    return condition.to(torch::kFloat32);
  throw std::invalid_argument("image net: condition must be labels [N] or one-hot [N, " +
                              std::to_string(k) + "], got " + c10::str(condition.sizes()));
}

torch::Tensor ImageEnergyNet::energy(const torch::Tensor& x, const torch::Tensor& condition) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels())
    throw std::invalid_argument("image net: input must be [N, " +
                                std::to_string(options_.in_channels()) + ", H, W], got " +
                                c10::str(x.sizes()));
  if (options_.class_head()) {
    auto logits = head_->forward(features(x, {}));
    if (!condition.defined()) return -torch::logsumexp(logits, 1);
    return -(logits * onehot(condition, x.size(0)).to(logits.device(), logits.scalar_type()))
                .sum(1);
  }
  auto oh = onehot(condition, x.size(0));
  if (oh.defined()) oh = oh.to(x.device(), x.scalar_type());
  return head_->forward(features(x, oh)).squeeze(1);
}

torch::Tensor ImageEnergyNet::features(const torch::Tensor& x, const torch::Tensor& oh) {
  auto h = stem_.forward(x);
  for (auto& block : *blocks_) h = block->as<CondResBlock>()->forward(h, oh);
  h = options_.activation() == Activation::kSwish ? torch::silu(h) : torch::relu(h);
  return h.sum({2, 3});  // global sum pooling
}

torch::Tensor classify_by_energy(EnergyModel& model, const torch::Tensor& x, int64_t num_classes,
                                 torch::Tensor* logits) {
  auto e = class_energies(model, x, num_classes);
  if (logits) *logits = -e;
  return e.argmin(1);
}

}  // namespace ebm
