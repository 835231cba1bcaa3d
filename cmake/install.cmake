# install.cmake: the package a consumer finds after `cmake --install`. Included from the
# top-level CMakeLists.txt after src/ and tools/ (their install(TARGETS) rules put the
# libraries, headers and the wref-check tool in place and fill the export set wrefTargets).
#
# Installs, under the GNUInstallDirs directories:
#   <libdir>/cmake/wref/wrefConfig.cmake          find_package(wref CONFIG): wref::wref,
#   <libdir>/cmake/wref/wrefConfigVersion.cmake     wref::check, wref::wref_static,
#   <libdir>/cmake/wref/wrefTargets*.cmake          wref::wref-check (the tool) and
#   <libdir>/cmake/wref/WrefCheck.cmake             wref_check_add_test()
#   <libdir>/pkgconfig/wref.pc, wref-check.pc     pkg-config --cflags --libs wref | wref-check
include(CMakePackageConfigHelpers)

set(WREF_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/wref)

# In-tree spelling of the tool's imported target, so WrefCheck.cmake names the tool the same
# way in-tree and installed (the installed one is declared in wrefConfig.cmake).
add_executable(wref::wref-check ALIAS wref-check-tool)

install(EXPORT wrefTargets NAMESPACE wref:: DESTINATION ${WREF_CMAKE_INSTALL_DIR})
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/wrefConfig.cmake.in ${PROJECT_BINARY_DIR}/wrefConfig.cmake
  INSTALL_DESTINATION ${WREF_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x: a minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/wrefConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/wrefConfig.cmake ${PROJECT_BINARY_DIR}/wrefConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/WrefCheck.cmake
        DESTINATION ${WREF_CMAKE_INSTALL_DIR})

# pkg-config files locate the prefix from their own directory (${pcfiledir}), so the same
# files work after `cmake --install --prefix <anywhere>` and in a tree moved as a whole.
file(RELATIVE_PATH WREF_PC_TO_PREFIX
     ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" WREF_PC_TO_PREFIX "${WREF_PC_TO_PREFIX}")
foreach(pc wref wref-check)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
