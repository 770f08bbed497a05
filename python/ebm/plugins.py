"""Finding and loading the project's MuJoCo engine plugins (`ebm.recorder`, `ebm.generator`)."""
import os

import mujoco

__all__ = ["load_plugins", "plugin_dir"]


def plugin_dir(path=None) -> str:
    """The folder holding libebm_recorder.so and libebm_generator.so: `path`, else
    $EBM_PLUGIN_DIR (e.g. build/plugins of a build, or lib/ebm/plugins of an install)."""
    path = path or os.environ.get("EBM_PLUGIN_DIR")
    if not path:
        raise FileNotFoundError("no plugin folder: pass one (build/plugins, or lib/ebm/plugins of "
                                "an install) or set EBM_PLUGIN_DIR")
    if not os.path.isfile(os.path.join(path, "libebm_generator.so")) and not os.path.isfile(
            os.path.join(path, "libebm_recorder.so")):
        raise FileNotFoundError(f"{path}: holds neither libebm_recorder.so nor "
                                "libebm_generator.so")
    return os.fspath(path)


def load_plugins(path=None) -> str:
    """Registers every plugin library of the folder with MuJoCo (mj_loadAllPluginLibraries);
    returns the folder."""
    folder = plugin_dir(path)
    mujoco.mj_loadAllPluginLibraries(folder)
    return folder
