// Registers `ebm.recorder` when MuJoCo loads this library (mj_loadPluginLibrary,
// mj_loadAllPluginLibraries) or when a host links it.
#include <mujoco/mujoco.h>

#include "plugin/recorder/recorder.h"

mjPLUGIN_LIB_INIT(ebm_recorder) { ebm::recorder::RegisterPlugin(); }
