# MuJoCo C library and headers from the PyPI `mujoco` wheel of EBM_PYTHON, and the Shadow Hand
# assets from the `gymnasium-robotics` wheel.
#
# Provides:
#   mujoco::mujoco              imported target (libmujoco.so.X.Y.Z + include/)
#   EBM_MUJOCO_VERSION          version of the wheel found
#   EBM_MUJOCO_PINNED_VERSION   version pinned in scripts/requirements.lock
#   EBM_MUJOCO_PLUGIN_DIR       MuJoCo's first-party plugin folder of that wheel
#   EBM_HAND_ASSETS_DIR         gymnasium_robotics/envs/assets/hand

ebm_python_query(_mj_info "the mujoco wheel"
  "import mujoco, os; print(os.path.dirname(mujoco.__file__) + ';' + mujoco.__version__)")
list(GET _mj_info 0 _mj_dir)
list(GET _mj_info 1 EBM_MUJOCO_VERSION)

file(STRINGS ${CMAKE_SOURCE_DIR}/scripts/requirements.lock _pin REGEX "^mujoco==")
string(REPLACE "mujoco==" "" EBM_MUJOCO_PINNED_VERSION "${_pin}")
if(EBM_MUJOCO_VERSION VERSION_LESS 3.7)
  message(FATAL_ERROR "ebm: MuJoCo ${EBM_MUJOCO_VERSION} in ${_mj_dir} is too old: the plugins "
    "need >= 3.7. Install the pinned one with:  scripts/bootstrap.sh")
endif()

file(GLOB _mj_libs "${_mj_dir}/libmujoco.so.*")
if(NOT _mj_libs OR NOT EXISTS "${_mj_dir}/include/mujoco/mujoco.h")
  message(FATAL_ERROR "ebm: the mujoco wheel in ${_mj_dir} has no libmujoco.so.* or "
    "include/mujoco/mujoco.h. Install it with:  scripts/bootstrap.sh")
endif()
list(GET _mj_libs 0 EBM_MUJOCO_LIBRARY)

add_library(mujoco::mujoco SHARED IMPORTED GLOBAL)
set_target_properties(mujoco::mujoco PROPERTIES
  IMPORTED_LOCATION "${EBM_MUJOCO_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${_mj_dir}/include")
if(EBM_SANITIZE)
  # Under -fsanitize=address, mujoco/mjsan.h defines mj_markStack with attributes after the
  # declarator, which only clang accepts. Skipping that header (its include guard) keeps the plain
  # declarations of mujoco.h; our code never calls the stack functions anyway.
  set_property(TARGET mujoco::mujoco APPEND PROPERTY
    INTERFACE_COMPILE_DEFINITIONS MUJOCO_INCLUDE_MJSAN_H_)
endif()
set(EBM_MUJOCO_PLUGIN_DIR "${_mj_dir}/plugin")
message(STATUS "ebm: MuJoCo ${EBM_MUJOCO_VERSION} (${EBM_MUJOCO_LIBRARY})")

ebm_python_query(EBM_HAND_ASSETS_DIR "the gymnasium-robotics wheel (Shadow Hand assets)"
  "import importlib.util, os; s = importlib.util.find_spec('gymnasium_robotics'); print(os.path.join(os.path.dirname(s.origin), 'envs', 'assets', 'hand'))")
if(NOT EXISTS "${EBM_HAND_ASSETS_DIR}/manipulate_block.xml")
  message(FATAL_ERROR "ebm: ${EBM_HAND_ASSETS_DIR}/manipulate_block.xml is missing. "
    "Install gymnasium-robotics with:  scripts/bootstrap.sh")
endif()

# Small real image sets that ship in Python wheels, for out-of-distribution experiments:
#   EBM_SKLEARN_DATA_DIR   sklearn/datasets/data (digits.csv.gz: 1797 8x8 handwritten digits)
#   EBM_SKIMAGE_DATA_DIR   skimage/data (brick.png, grass.png, gravel.png, ...: textures)
ebm_python_query(EBM_SKLEARN_DATA_DIR "scikit-learn (its bundled digits)"
  "import importlib.util, os; s = importlib.util.find_spec('sklearn'); print(os.path.join(os.path.dirname(s.origin), 'datasets', 'data'))")
ebm_python_query(EBM_SKIMAGE_DATA_DIR "scikit-image (its bundled images)"
  "import importlib.util, os; s = importlib.util.find_spec('skimage'); print(os.path.join(os.path.dirname(s.origin), 'data'))")
