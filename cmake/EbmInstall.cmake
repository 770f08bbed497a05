# `cmake --install build --prefix P`: the `ebm` command, the core libraries with their public
# headers and a CMake package (find_package(ebm): ebm::core, ebm::nets, ebm::util,
# ebm::trajectory), and the MuJoCo plugin libraries in P/lib/ebm/plugins, a folder
# mj_loadAllPluginLibraries can scan. An installed tree uses the LibTorch and MuJoCo of the Python
# environment it was built with (their folders go into the installed files' RPATH and into
# ebmConfig.cmake), as a build tree does.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(EBM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/ebm)
set(EBM_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/ebm/plugins)
# Libraries outside the build tree (libtorch, libmujoco of the wheels) stay found when installed:
# their folders go into the installed binaries' RPATH.
get_filename_component(_ebm_mujoco_lib_dir "${EBM_MUJOCO_LIBRARY}" DIRECTORY)
set(_ebm_wheel_rpath "${EBM_TORCH_LIB_DIR};${_ebm_mujoco_lib_dir}")

set(_ebm_exported ebm_util ebm_core ebm_nets ebm_trajectory)
set_target_properties(ebm_util PROPERTIES EXPORT_NAME util)
set_target_properties(ebm_core PROPERTIES EXPORT_NAME core)
set_target_properties(ebm_nets PROPERTIES EXPORT_NAME nets)
set_target_properties(ebm_trajectory PROPERTIES EXPORT_NAME trajectory
                      INSTALL_RPATH "$ORIGIN" INSTALL_RPATH_USE_LINK_PATH ON)
install(TARGETS ${_ebm_exported} EXPORT ebmTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ebm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
set_target_properties(ebm PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON
                      INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR};$ORIGIN/../${EBM_INSTALL_PLUGINDIR};${_ebm_wheel_rpath}")
# Plugins: their own folder; $ORIGIN/../.. is P/lib, where libebm_trajectory.so is.
install(TARGETS ebm_recorder ebm_generator LIBRARY DESTINATION ${EBM_INSTALL_PLUGINDIR})
set_target_properties(ebm_recorder ebm_generator PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON
                      INSTALL_RPATH "$ORIGIN;$ORIGIN/../..;${_ebm_wheel_rpath}")

# Public headers: those of the exported libraries (and what they include), the generated ones.
foreach(_dir ebm/core ebm/nets ebm/util datasets/trajectory)
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/${_dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${_dir}
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES ${CMAKE_BINARY_DIR}/generated/datasets/trajectory/trajectory.pb.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/datasets/trajectory)
install(FILES ${CMAKE_BINARY_DIR}/generated/ebm/build_info.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ebm)

install(EXPORT ebmTargets NAMESPACE ebm:: DESTINATION ${EBM_INSTALL_CMAKEDIR})
set(EBM_TORCH_CMAKE_PREFIX "${_torch_prefix}")
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/ebmConfig.cmake.in
  ${CMAKE_BINARY_DIR}/ebmConfig.cmake INSTALL_DESTINATION ${EBM_INSTALL_CMAKEDIR}
  PATH_VARS EBM_INSTALL_PLUGINDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/ebmConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/ebmConfig.cmake ${CMAKE_BINARY_DIR}/ebmConfigVersion.cmake
        ${CMAKE_SOURCE_DIR}/cmake/EbmTorchIncludes.cmake DESTINATION ${EBM_INSTALL_CMAKEDIR})
