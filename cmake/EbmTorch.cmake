# LibTorch from the torch wheel of EBM_PYTHON.
#
# Provides:
#   ebm::torch                 interface target: LibTorch libraries, flags, --no-as-needed guard
#   ebm_torch_target(<tgt>)    link ebm::torch, project warnings and the shared LibTorch PCH
#   EBM_TORCH_CUDA             ON when the LibTorch build has CUDA (it is then linked in)

ebm_python_query(_torch_info "the torch wheel (LibTorch)"
  "import torch, torch.utils; print(torch.utils.cmake_prefix_path + ';' + torch.__version__ + ';' + str(torch.version.cuda))")
list(GET _torch_info 0 _torch_prefix)
list(GET _torch_info 1 EBM_TORCH_VERSION)
list(GET _torch_info 2 _torch_cuda)
list(PREPEND CMAKE_PREFIX_PATH "${_torch_prefix}")

set(EBM_TORCH_CUDA OFF)
if(NOT _torch_cuda STREQUAL "None")
  set(EBM_TORCH_CUDA ON)
  # LibTorch's CMake config enables the CUDA language and looks the toolkit up: it must be present
  # at configure time (no GPU needed). Point CMake at the usual place when nvcc is not on PATH.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(_nvcc nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH /usr/local/cuda/bin)
    if(NOT _nvcc)
      message(FATAL_ERROR
        "ebm: torch ${EBM_TORCH_VERSION} is a CUDA ${_torch_cuda} build, and LibTorch's CMake "
        "config needs the CUDA toolkit (nvcc) at configure time, but none was found.\n"
        "Install the CUDA ${_torch_cuda} toolkit, or set CUDACXX=/path/to/nvcc.")
    endif()
    set(CMAKE_CUDA_COMPILER "${_nvcc}" CACHE FILEPATH "" FORCE)
  endif()
  # The pip wheel nvidia-cudnn-* carries cuDNN; help LibTorch's FindCUDNN find it there when the
  # system has none.
  file(GLOB _cudnn_dirs "${EBM_SITE_PACKAGES}/nvidia/cudnn" "${EBM_SITE_PACKAGES}/nvidia/cu*/cudnn")
  if(_cudnn_dirs AND NOT DEFINED ENV{CUDNN_ROOT} AND NOT CUDNN_ROOT)
    list(GET _cudnn_dirs 0 _cudnn_dir)
    set(CUDNN_ROOT "${_cudnn_dir}")
  endif()
endif()

find_package(Torch QUIET)
if(NOT Torch_FOUND)
  message(FATAL_ERROR "ebm: LibTorch was not found under ${_torch_prefix}.\n"
    "Install it with:  scripts/bootstrap.sh")
endif()
message(STATUS "ebm: LibTorch ${EBM_TORCH_VERSION} (CUDA: ${_torch_cuda})")

# TORCH_LIBRARY is the path of libtorch.so; its folder holds libtorch_cpu/libtorch_cuda/c10.
get_filename_component(EBM_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)

include(EbmTorchIncludes)
add_library(ebm_torch INTERFACE)
ebm_search_torch_includes_last(ebm_torch)
add_library(ebm::torch ALIAS ebm_torch)
target_link_libraries(ebm_torch INTERFACE ${TORCH_LIBRARIES})
separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(ebm_torch INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${_torch_flags}>)
# libtorch.so exports its own (statically linked, newer) copy of std::filesystem, and it comes
# before libstdc++ in the dynamic linker's search order, so our std::filesystem calls would bind to
# it; its remove_all jumps through a null pointer. Making libstdc++ the first NEEDED library binds
# every std:: symbol to the system's libstdc++ instead.
target_link_options(ebm_torch INTERFACE "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
if(EBM_TORCH_CUDA)
  # libtorch_cuda registers the CUDA backend from static initialisers; nothing references it
  # directly, so an --as-needed linker would drop it and torch::cuda::is_available() would lie.
  target_link_options(ebm_torch INTERFACE
    "LINKER:--no-as-needed,${EBM_TORCH_LIB_DIR}/libtorch_cuda.so,--as-needed")
  target_compile_definitions(ebm_torch INTERFACE EBM_WITH_CUDA=1)
endif()

# One precompiled LibTorch header, built once and reused by every LibTorch target.
if(EBM_USE_PCH)
  file(WRITE ${CMAKE_BINARY_DIR}/ebm_pch_stub.cc "// stub for the LibTorch precompiled header\n")
  add_library(ebm_torch_pch OBJECT ${CMAKE_BINARY_DIR}/ebm_pch_stub.cc)
  target_link_libraries(ebm_torch_pch PUBLIC ebm::torch)
  ebm_project_target(ebm_torch_pch)
  target_precompile_headers(ebm_torch_pch PRIVATE <torch/torch.h>)
endif()

function(ebm_torch_target target)
  # Installed packages (cmake/ebmConfig.cmake.in) get the same LibTorch link from ebm::torch_deps.
  target_link_libraries(${target} PUBLIC $<BUILD_INTERFACE:ebm::torch>
                        $<INSTALL_INTERFACE:ebm::torch_deps>)
  ebm_project_target(${target})
  if(EBM_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM ebm_torch_pch)
  endif()
endfunction()
