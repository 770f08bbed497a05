"""Python access to the ebm toolkit: trajectory files in NumPy (`ebm.trajectory`, no PyTorch or
MuJoCo needed), the `ebm.generator` plugin's futures from MuJoCo's Python bindings
(`ebm.generator`), and exported energy models as PyTorch modules (`ebm.load_model`).

    import ebm
    episodes = list(ebm.trajectory.read("runs/hand_traj/trajectories"))
    energy = ebm.load_model("model.pt")            # written by `ebm export`
"""
import importlib

from . import trajectory

__version__ = "0.1.0"
__all__ = ["trajectory", "generator", "plugins", "load_model", "load_plugins", "__version__"]


def __getattr__(name):
    # MuJoCo and PyTorch are imported only when their parts are used.
    if name in ("generator", "plugins", "models"):
        return importlib.import_module(f".{name}", __name__)
    if name == "load_plugins":
        return importlib.import_module(".plugins", __name__).load_plugins
    if name == "load_model":
        return importlib.import_module(".models", __name__).load_model
    raise AttributeError(f"module 'ebm' has no attribute {name!r}")
