#include "ebm/nets/torchscript.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>

#include <iomanip>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "ebm/core/spectral_norm.h"

namespace ebm {

namespace {

using WeightMap = std::map<std::string, torch::Tensor>;

// Every weight of `net` as its forward uses it in eval mode, by its C++ name
// ("blocks.0.conv1.weight"): spectrally normalised weights divided by their sigma, everything else
// as it is.
WeightMap eval_weights(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  WeightMap w;
  for (const auto& item : net.named_modules("", /*include_self=*/true)) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false))
      w[prefix + p.key()] = p.value().detach();
    if (const auto* sn = item.value()->as<SNConv2dImpl>()) {
      w[prefix + "weight"] = sn->weight.detach() / sn->sigma();
    }
  }
  for (auto& [name, t] : w) t = t.to(torch::kCPU, torch::kFloat32).contiguous().clone();
  return w;
}

std::string flat(std::string name) {
  for (auto& c : name)
    if (c == '.') c = '_';
  return name;
}

// Registers weight `name` of `w` as the parameter flat(name); throws when the net has none.
std::string use(torch::jit::Module& m, const WeightMap& w, const std::string& name) {
  auto it = w.find(name);
  if (it == w.end()) throw std::logic_error("torchscript export: the net has no weight " + name);
  const std::string f = flat(name);
  if (!m.hasattr(f)) m.register_parameter(f, it->second, /*is_buffer=*/false);
  return "self." + f;
}

std::string number(double v) {
  std::ostringstream s;
  s << std::setprecision(17) << v;
  return s.str();
}

std::string activation(const ImageEnergyOptions& o, const std::string& v) {
  if (o.activation() == Activation::kSwish) return "torch.silu(" + v + ")";
  return "torch.leaky_relu(" + v + ", " + number(o.leaky_slope()) + ")";
}

// One residual block of ImageEnergyNet (CondResBlockImpl::forward) applied to `h`.
std::string image_block(torch::jit::Module& m, const WeightMap& w, const ImageEnergyOptions& o,
                        int64_t index, bool conditional, bool skip, bool downsample) {
  const std::string p = "blocks." + std::to_string(index) + ".";
  auto channel = [](const std::string& v) { return v + ".unsqueeze(-1).unsqueeze(-1)"; };
  auto conv = [&](const std::string& v, const std::string& c, int pad) {
    const std::string k = std::to_string(pad);
    return "torch.conv2d(" + v + ", " + use(m, w, p + c + ".weight") + ", " +
           use(m, w, p + c + ".bias") + ", [1, 1], [" + k + ", " + k + "])";
  };
  std::string s = "    t = h\n";
  if (conditional)
    s += "    t = t + " + channel("torch.matmul(oh, " + use(m, w, p + "cond_bias1") + ")") + "\n";
  s += "    t = " + conv(activation(o, "t"), "conv1", 1) + "\n";
  s += "    t = " + conv(activation(o, "t"), "conv2", 1) + "\n";
  if (conditional) {
    s += "    t = t * " + channel("torch.matmul(oh, " + use(m, w, p + "cond_gain2") + ")") + " + " +
         channel("torch.matmul(oh, " + use(m, w, p + "cond_bias2") + ")") + "\n";
  }
  s += "    h = " + (skip ? conv("h", "skip", 0) : std::string("h")) + " + t\n";
  if (downsample) s += "    h = torch.avg_pool2d(h, [2, 2])\n";
  return s;
}

const char kOnehot[] = R"(
def onehot(self, y: Optional[Tensor], n: int) -> Tensor:
    assert y is not None, "this conditional model needs labels y"
    if y.dim() == 1 and not y.is_floating_point():
        return torch.zeros([n, self.num_classes], device=y.device).float().scatter_(
            1, y.unsqueeze(1), 1.0)
    return y.float()
)";

}  // namespace

torch::jit::Module script_image_energy(ImageEnergyNet& net) {
  const auto& o = net.options();
  const WeightMap w = eval_weights(net);
  torch::jit::Module m("__torch__.ebm.ImageEnergy");
  m.register_attribute("num_classes", c10::IntType::get(), o.num_classes());
  m.register_attribute("class_head", c10::BoolType::get(), o.class_head());
  const bool conditional_blocks = o.num_classes() > 0 && !o.class_head();
  std::string body;
  if (conditional_blocks) body += "    oh = self.onehot(y, x.size(0))\n";
  if (o.num_classes() == 0) {
    body += "    assert y is None, \"this unconditional model takes no labels y\"\n";
  }
  body += "    h = torch.conv2d(x, " + use(m, w, "stem.weight") + ", " + use(m, w, "stem.bias") +
          ", [1, 1], [1, 1])\n";
  int64_t c = o.stem_filters(), index = 0;
  const auto stages = static_cast<int64_t>(o.stage_filters().size());
  for (int64_t s = 0; s < stages; ++s) {
    for (int64_t b = 0; b < o.blocks_per_stage(); ++b, ++index) {
      const int64_t out = o.stage_filters()[s];
      const bool downsample = b + 1 == o.blocks_per_stage() && s + 1 < stages;
      body += image_block(m, w, o, index, conditional_blocks, c != out, downsample);
      c = out;
    }
  }
  body += std::string("    h = ") +
          (o.activation() == Activation::kSwish ? "torch.silu(h)" : "torch.relu(h)") + "\n";
  body += "    out = torch.linear(h.sum([2, 3]), " + use(m, w, "head.weight") + ", " +
          use(m, w, "head.bias") + ")\n";
  if (o.class_head()) {
    body += "    if y is None:\n        return -torch.logsumexp(out, [1])\n";
    body += "    return -(out * self.onehot(y, x.size(0))).sum(1)\n";
  } else {
    body += "    return out.squeeze(1)\n";
  }
  if (o.num_classes() > 0) m.define(kOnehot);
  m.define("def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:\n" + body);
  m.eval();
  return m;
}

torch::jit::Module script_trajectory_energy(TrajectoryEnergyNetImpl& net, const torch::Tensor& mean,
                                            const torch::Tensor& std,
                                            const torch::Tensor& delta_std) {
  const auto& o = net.options();
  const WeightMap w = eval_weights(net);
  torch::jit::Module m("__torch__.ebm.TrajectoryEnergy");
  for (const auto& [name, v] : {std::pair<const char*, int64_t>{"dim", o.dim()},
                                {"history", o.history()},
                                {"future", o.future()},
                                {"basis_size", o.basis()}})
    m.register_attribute(name, c10::IntType::get(), v);
  for (const auto& [name, t] : {std::pair{"mean", mean}, {"std", std}, {"delta_std", delta_std}})
    m.register_buffer(name, t.to(torch::kCPU, torch::kFloat32).reshape({o.dim()}).clone());
  for (const auto& buf : net.named_buffers(/*recurse=*/false))
    m.register_buffer(buf.key(), buf.value().to(torch::kCPU, torch::kFloat32).clone());
  std::string body =
      R"(    assert history.dim() == 3 and history.size(1) == self.history and history.size(2) == self.dim, "history must be [B, history, dim]"
    b = x.size(0)
)";
  body += o.basis() > 0 ? "    f = torch.einsum(\"fm,bmd->bfd\", [self.basis.to(x.dtype), x])\n"
                        : "    f = x\n";
  body += "    seq = torch.cat([history.to(x.dtype), f], 1).transpose(1, 2)\n";
  body +=
      "    h = torch.cat([seq, self.time_channels.to(x.dtype).unsqueeze(0).expand(b, -1, -1)], "
      "1)\n";
  for (int64_t l = 0; l < o.layers(); ++l) {
    const std::string p = "conv" + std::to_string(l) + ".";
    const std::string d = std::to_string(int64_t{1} << l);
    body += "    h = torch.silu(torch.conv1d(h, " + use(m, w, p + "weight") + ", " +
            use(m, w, p + "bias") + ", [1], [" + d + "], [" + d + "]))\n";
  }
  body += "    e = torch.linear(h.flatten(1), " + use(m, w, "head.weight") + ", " +
          use(m, w, "head.bias") + ").squeeze(1)\n";
  if (o.prior_weight() > 0)
    body += "    e = e + " + number(0.5 * o.prior_weight()) + " * x.pow(2).flatten(1).sum(1)\n";
  body += "    return e\n";
  m.define("def forward(self, x: Tensor, history: Tensor) -> Tensor:\n" + body);
  m.eval();
  return m;
}

c10::Dict<std::string, at::Tensor> script_state_dict(const torch::jit::Module& module) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) dict.insert(p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) dict.insert(b.name, b.value);
  return dict;
}

std::string pickle_state_dict(const c10::Dict<std::string, at::Tensor>& state) {
  std::string pickle;
  torch::jit::Pickler pickler([&](const char* buf, size_t size) { pickle.append(buf, size); },
                              nullptr, nullptr, nullptr, nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(state));
  pickler.stop();
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(),
                                     writer);
  writer.writeEndOfFile();
  return out;
}

}  // namespace ebm
