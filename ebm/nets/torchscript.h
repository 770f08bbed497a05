// The energy nets as TorchScript modules that PyTorch runs without this toolkit (`ebm export`,
// `ebm.load_model` in Python). Each module holds the net's weights as flat parameters (spectral
// normalisation folded in: W / sigma with the trained power-iteration vectors, as the C++ net
// computes it in eval mode) and a `forward` written in TorchScript for the net's configuration, so
// `torch.jit.load(F)(x)` gives the energies the C++ net gives in eval mode, and its `state_dict()`
// has the keys of the exported weights file.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <string>

#include "ebm/nets/image_nets.h"
#include "ebm/nets/trajectory_nets.h"

namespace ebm {

// forward(x: [N, C, H, W] in [0, 1], y: Optional[labels [N] or one-hot [N, K]] = None) -> [N].
// Conditional nets without a class head need y; with a class head, y = None is the marginal.
torch::jit::Module script_image_energy(ImageEnergyNet& net);

// forward(x: [B, latent, D] the normalised future (or its basis coefficients), history:
// [B, H, D] normalised states) -> [B]: the learned energy E(future | history) with its prior,
// without the hand-written experts. mean, std and delta_std ([D]) are registered as buffers so
// raw states can be normalised in Python: history = (raw - mean) / std, future = (raw - last
// history frame) / delta_std; the ints dim, history, future and basis_size are attributes.
torch::jit::Module script_trajectory_energy(TrajectoryEnergyNetImpl& net, const torch::Tensor& mean,
                                            const torch::Tensor& std,
                                            const torch::Tensor& delta_std);

// The module's parameters and buffers as {name: tensor}, the keys of its state_dict().
c10::Dict<std::string, at::Tensor> script_state_dict(const torch::jit::Module& module);

// The bytes of a file that `torch.load(F, weights_only=True)` returns as this dict: torch.save's
// zip format with an untagged pickle (torch::pickle_save tags typed dicts with a global that
// weights-only loading refuses).
std::string pickle_state_dict(const c10::Dict<std::string, at::Tensor>& state);

}  // namespace ebm
