# ebm_search_torch_includes_last(<interface target>): LibTorch's include folders searched last.
#
# The torch wheel bundles its own copies of fmt (v12) and protobuf headers in its include folder.
# As -isystem they would shadow Debian's fmt and protobuf (whose libraries we link): protoc 3.21
# output would meet protobuf headers of another version. So the include folders under the wheel's
# include root (${TORCH_INSTALL_PREFIX}/include) are removed from LibTorch's targets and given to
# <interface target> as -idirafter options (still system headers, searched after /usr/include).
# Used by the build (cmake/EbmTorch.cmake) and by installed packages (ebmConfig.cmake), after
# find_package(Torch).
function(ebm_search_torch_includes_last target)
  get_filename_component(_root "${TORCH_INSTALL_PREFIX}/include" ABSOLUTE)
  set(_after)
  foreach(_t torch torch_cpu torch_cuda torch_library c10 c10_cuda)
    if(NOT TARGET ${_t})
      continue()
    endif()
    get_target_property(_incs ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _incs)
      continue()
    endif()
    set(_keep)
    foreach(_inc ${_incs})
      if(_inc MATCHES "^${_root}")
        list(APPEND _after "${_inc}")
      else()
        list(APPEND _keep "${_inc}")
      endif()
    endforeach()
    set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_keep}")
  endforeach()
  if(_after)
    list(REMOVE_DUPLICATES _after)
  endif()
  foreach(_inc ${_after})
    target_compile_options(${target} INTERFACE "SHELL:-idirafter ${_inc}")
  endforeach()
endfunction()
