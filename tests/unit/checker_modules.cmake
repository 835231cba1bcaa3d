# Unit tests of the checker modules (stack, options, symbolize). Include it from
# tests/unit/CMakeLists.txt with this one line:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/checker_modules.cmake)
#
# The tests compile the module sources directly: in libwref-check their symbols are hidden.
# -g: test_symbolize checks file:line. No -rdynamic (CMake adds none): the static functions the
# tests look up must be found through .symtab, as in a user's program.

set(WREF_CHECKER_SRC ${CMAKE_CURRENT_LIST_DIR}/../../src)

if(NOT TARGET PkgConfig::CMOCKA)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
if(NOT TARGET PkgConfig::LIBDW)   # the one in src/ is not visible from tests/
  pkg_check_modules(LIBDW REQUIRED IMPORTED_TARGET libdw)
endif()

function(wref_checker_unit_test name)
  add_executable(${name} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${name}.c ${ARGN})
  target_include_directories(${name} PRIVATE ${WREF_CHECKER_SRC} ${WREF_CHECKER_SRC}/../include)
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  target_compile_options(${name} PRIVATE -g)
  target_link_libraries(${name} PRIVATE PkgConfig::CMOCKA Threads::Threads)
  add_test(NAME ${name} COMMAND ${name})
endfunction()

wref_checker_unit_test(test_options ${WREF_CHECKER_SRC}/check/options.c)

wref_checker_unit_test(test_stack ${WREF_CHECKER_SRC}/check/stack.c
                                  ${WREF_CHECKER_SRC}/check/symbolize.c)
target_link_libraries(test_stack PRIVATE PkgConfig::LIBUNWIND PkgConfig::LIBDW ${CMAKE_DL_LIBS})

wref_checker_unit_test(test_symbolize ${WREF_CHECKER_SRC}/check/symbolize.c)
target_link_libraries(test_symbolize PRIVATE PkgConfig::LIBDW ${CMAKE_DL_LIBS})
