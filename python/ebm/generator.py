"""The `ebm.generator` MuJoCo plugin from MuJoCo's Python bindings: its last sampled futures.

    import mujoco, ebm
    ebm.load_plugins("build/plugins")          # or install/lib/ebm/plugins, or $EBM_PLUGIN_DIR
    model = mujoco.MjModel.from_xml_string(xml_with_an_ebm_generator_instance)
    data = mujoco.MjData(model)
    for _ in range(1000):
        mujoco.mj_step(model, data)
    futures, latency_ms = ebm.generator.futures(model, data)   # [K, frames, D] raw features
"""
import ctypes
import os

import numpy as np

from . import plugins

__all__ = ["futures", "last_latency_ms"]

_LIBRARY = "libebm_generator.so"
_lib = None


def _library(plugin_dir=None):
    """The generator plugin library: the copy MuJoCo already loaded, else the one in plugin_dir
    (default: $EBM_PLUGIN_DIR)."""
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL(_LIBRARY, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
    except OSError:
        lib = ctypes.CDLL(os.path.join(plugins.plugin_dir(plugin_dir), _LIBRARY),
                          mode=os.RTLD_GLOBAL)
    lib.ebm_generator_futures.restype = ctypes.c_int
    lib.ebm_generator_futures.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int,
        ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    lib.ebm_generator_last_latency_ms.restype = ctypes.c_double
    lib.ebm_generator_last_latency_ms.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    _lib = lib
    return lib


def last_latency_ms(model, data, plugin_dir=None) -> float:
    """Milliseconds the last sampling of the first ebm.generator instance took."""
    lib = _library(plugin_dir)
    ms = lib.ebm_generator_last_latency_ms(ctypes.c_void_p(model._address),
                                           ctypes.c_void_p(data._address))
    if ms < 0:
        raise ValueError("the model has no ebm.generator instance")
    return ms


def futures(model, data, plugin_dir=None):
    """The last futures sampled by the first ebm.generator instance of `model` in `data`, as a
    float32 array [K, frames, D] of raw state features (the checkpoint's feature layout), and the
    milliseconds that sampling took. Before the first sampling the array is [0, 0, 0]."""
    lib = _library(plugin_dir)
    m, d = ctypes.c_void_p(model._address), ctypes.c_void_p(data._address)
    k, frames, dim = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    probe = lib.ebm_generator_futures(m, d, None, 0, ctypes.byref(k), ctypes.byref(frames),
                                      ctypes.byref(dim))
    n = k.value * frames.value * dim.value
    if probe < 0 and n == 0:
        raise ValueError("the model has no ebm.generator instance")
    if probe == 0:  # nothing sampled yet
        return np.zeros((0, 0, 0), dtype=np.float32), last_latency_ms(model, data)
    out = np.empty(n, dtype=np.float32)
    written = lib.ebm_generator_futures(m, d, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                        n, ctypes.byref(k), ctypes.byref(frames),
                                        ctypes.byref(dim))
    if written != n:
        raise RuntimeError(f"ebm_generator_futures wrote {written} of {n} values")
    return out.reshape(k.value, frames.value, dim.value), last_latency_ms(model, data)
