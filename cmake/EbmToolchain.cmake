# Compiler launcher, warning flags and sanitizers for project targets.

if(EBM_USE_CCACHE)
  find_program(EBM_CCACHE ccache)
  if(EBM_CCACHE)
    # Precompiled headers need these sloppiness settings, or ccache never hits. The base dir makes
    # paths inside the checkout relative, so that another clone (CI's) hits the same cache.
    set(_launcher ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}"
        ${EBM_CCACHE})
    set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${_launcher})
    message(STATUS "ebm: ccache at ${EBM_CCACHE}")
  endif()
endif()

if(EBM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # GCC's -Wmaybe-uninitialized gives false positives in sanitizer builds (instrumentation changes
  # inlining), here inside LibTorch's headers; with -Werror they would stop the build.
  add_compile_options(-Wno-maybe-uninitialized)
  message(STATUS "ebm: ASan + UBSan build")
endif()

# ebm_project_target(<target>): warnings (as errors) for code we own. Third-party headers come in
# through imported targets, which CMake marks SYSTEM, so their warnings stay out.
function(ebm_project_target target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>)
  if(EBM_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
  endif()
endfunction()
