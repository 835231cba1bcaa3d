# CMake for the checker modules beyond what src/CMakeLists.txt already does. Include it from
# src/CMakeLists.txt after add_library(wref-check ...) with this one line:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/check/engine/CMakeLists.inc.cmake)

# symbolize.c reads ELF symbol tables and DWARF line tables with elfutils libdwfl (libdw-dev).
# PRIVATE: a shared library's private dependency is not part of its exported interface.
if(NOT TARGET PkgConfig::LIBDW)
  pkg_check_modules(LIBDW REQUIRED IMPORTED_TARGET libdw)
endif()
target_link_libraries(wref-check PRIVATE PkgConfig::LIBDW)

# The JSON report names the library's version.
target_compile_definitions(wref-check PRIVATE WREF_VERSION="${PROJECT_VERSION}")
