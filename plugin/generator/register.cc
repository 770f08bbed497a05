// Registers `ebm.generator` when MuJoCo loads this library or a host links it.
#include <mujoco/mujoco.h>

#include "plugin/generator/generator.h"

mjPLUGIN_LIB_INIT(ebm_generator) { ebm::generator::RegisterPlugin(); }
