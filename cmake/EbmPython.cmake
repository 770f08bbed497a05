# Finds the Python environment that carries LibTorch, MuJoCo and the Shadow Hand assets.
# Order: -DEBM_PYTHON=..., $EBM_PYTHON, the bootstrap's cached venv.

if(NOT EBM_PYTHON AND DEFINED ENV{EBM_PYTHON})
  set(EBM_PYTHON "$ENV{EBM_PYTHON}" CACHE FILEPATH "" FORCE)
endif()
if(NOT EBM_PYTHON)
  file(SHA256 ${CMAKE_SOURCE_DIR}/scripts/requirements.lock _lock_hash)
  string(SUBSTRING "${_lock_hash}" 0 16 _lock_key)
  if(DEFINED ENV{EBM_CACHE_DIR})
    set(_cache "$ENV{EBM_CACHE_DIR}")
  else()
    set(_cache "$ENV{HOME}/.cache/ebm")
  endif()
  set(_venv_python "${_cache}/venv-${_lock_key}/bin/python")
  if(EXISTS "${_venv_python}" AND EXISTS "${_cache}/venv-${_lock_key}/.complete")
    set(EBM_PYTHON "${_venv_python}" CACHE FILEPATH "" FORCE)
  else()
    message(FATAL_ERROR
      "ebm: no Python environment with torch and mujoco was found "
      "(looked for ${_venv_python}).\n"
      "Install it with:  scripts/bootstrap.sh\n"
      "or point at an existing one:  cmake -DEBM_PYTHON=/path/to/python ...")
  endif()
endif()

execute_process(
  COMMAND "${EBM_PYTHON}" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"
  OUTPUT_VARIABLE EBM_SITE_PACKAGES OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "ebm: EBM_PYTHON=${EBM_PYTHON} does not run. Run scripts/bootstrap.sh.")
endif()
message(STATUS "ebm: Python ${EBM_PYTHON}")

# ebm_python_query(<out-var> <what-it-is> <python code printing one line>)
function(ebm_python_query out what code)
  execute_process(COMMAND "${EBM_PYTHON}" -c "${code}"
    OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "ebm: ${what} is missing from ${EBM_PYTHON}:\n${_err}\n"
      "Install it with:  scripts/bootstrap.sh   (or pip install -r scripts/requirements.lock)")
  endif()
  set(${out} "${_out}" PARENT_SCOPE)
endfunction()
