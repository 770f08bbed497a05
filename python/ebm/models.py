"""Energy models exported by `ebm export` as PyTorch modules.

`ebm export --checkpoint C --out energy.pt` writes energy.pt, a state dict that
`torch.load("energy.pt", weights_only=True)` returns, and energy.script.pt, a TorchScript module
of the energy function:

    energy = ebm.load_model("energy.pt")      # the module, with the weights of energy.pt
    e = energy(x)                              # images [N, C, H, W] in [0, 1] -> energies [N]
    e = energy(x, y)                           # conditional image models: labels [N] or one-hot
    e = energy(future, history)                # trajectory models (normalised; see below)

Trajectory energies hold their normalisation as buffers (energy.mean, energy.std,
energy.delta_std, each [D]): history = (raw - mean) / std and future = (raw_future - raw last
history frame) / delta_std, and the attributes history, future, dim and basis_size (with
basis_size > 0 the future variable is [B, basis_size, D], coefficients of the buffer energy.basis
[future, basis_size]: future = energy.basis @ coefficients).
"""
import os
import zipfile

import torch

__all__ = ["load_model", "script_path"]


def script_path(weights: str) -> str:
    """The TorchScript file `ebm export` writes beside a state dict: m.pt -> m.script.pt."""
    return weights[:-3] + ".script.pt" if weights.endswith(".pt") else weights + ".script.pt"


def _is_torchscript(path) -> bool:
    """TorchScript archives (and the toolkit's own checkpoints) hold code; state dicts do not."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def _has_forward(module) -> bool:
    return module._c._has_method("forward")


def load_model(path, map_location="cpu") -> torch.nn.Module:
    """The energy of an `ebm export` as a PyTorch module in eval mode. `path` is the exported
    state dict (its TorchScript sibling supplies the function, the state dict the weights) or the
    TorchScript file itself."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not _is_torchscript(path):
        state = torch.load(path, map_location=map_location, weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict")
        script = script_path(path)
        if not os.path.isfile(script):
            raise FileNotFoundError(f"{path}: a state dict without its TorchScript module "
                                    f"{script} (written together by `ebm export`)")
        module = torch.jit.load(script, map_location=map_location)
        module.load_state_dict(state)
        return module.eval()
    module = torch.jit.load(path, map_location=map_location)
    if not _has_forward(module):
        raise ValueError(f"{path}: a checkpoint of the ebm toolkit, not an exported energy; run "
                         f"`ebm export --checkpoint {path} --out energy.pt` first")
    return module.eval()
