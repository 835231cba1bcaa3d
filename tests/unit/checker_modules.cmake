# Unit tests of the checker modules (stack, options, addrmap, known, symbolize, and the rest in test_checker_modules). Include it from
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

wref_checker_unit_test(test_options ${WREF_CHECKER_SRC}/check/engine/options.c)

wref_checker_unit_test(test_addrmap ${WREF_CHECKER_SRC}/check/engine/addrmap.c)
set_tests_properties(test_addrmap PROPERTIES LABELS "unit;checker")

wref_checker_unit_test(test_known ${WREF_CHECKER_SRC}/check/python/known.c)
set_tests_properties(test_known PROPERTIES LABELS "unit;checker")

wref_checker_unit_test(test_stack ${WREF_CHECKER_SRC}/check/engine/stack.c ${WREF_CHECKER_SRC}/check/engine/stats.c
                                  ${WREF_CHECKER_SRC}/check/engine/symbolize.c)
target_link_libraries(test_stack PRIVATE PkgConfig::LIBUNWIND PkgConfig::LIBDW ${CMAKE_DL_LIBS})
# The same tests with stack.c's portable fallback (frame-pointer verdicts learned from libunwind,
# no prologue decoder), as on an architecture other than x86-64 and AArch64.
add_executable(test_stack_learn ${CMAKE_CURRENT_LIST_DIR}/test_stack.c ${WREF_CHECKER_SRC}/check/engine/stack.c
               ${WREF_CHECKER_SRC}/check/engine/stats.c ${WREF_CHECKER_SRC}/check/engine/symbolize.c)
target_include_directories(test_stack_learn PRIVATE ${WREF_CHECKER_SRC} ${WREF_CHECKER_SRC}/../include)
target_compile_definitions(test_stack_learn PRIVATE _GNU_SOURCE WREF_STACK_LEARN_VERDICTS)
target_compile_options(test_stack_learn PRIVATE -g)
target_link_libraries(test_stack_learn PRIVATE PkgConfig::CMOCKA Threads::Threads PkgConfig::LIBUNWIND PkgConfig::LIBDW
                      ${CMAKE_DL_LIBS})
# Also in the TSan tree, whose thread-start wrapper keeps no frame record: the walk followed
# tentatively past it reads TSan's thread state as a record and then leaves the stack, and
# test_memo and test_frame_pointers_stay_fast check that such a walk still teaches the wrapper's
# verdict (not FP, TERMINAL), so that later captures on the thread stay fast.
add_test(NAME test_stack_learn COMMAND test_stack_learn)
set_tests_properties(test_stack_learn PROPERTIES LABELS stack)   # also run in the aarch64 tree
set_tests_properties(test_stack PROPERTIES LABELS stack)

wref_checker_unit_test(test_symbolize ${WREF_CHECKER_SRC}/check/engine/symbolize.c)
target_link_libraries(test_symbolize PRIVATE PkgConfig::LIBDW ${CMAKE_DL_LIBS})

# test_checker_modules: registry, heap and quarantine, borrows, census, report, JSON and
# suppressions, through their contracts in the engine's headers (src/check/engine/*.h). The
# executable is a checked program: the runtime and every checker source, compiled as
# libwref-check is (WREF_CHECKED), linked in, so the public API runs the real hooks and the
# headers show the modules' state.
file(GLOB WREF_UNIT_CHECKER_SOURCES CONFIGURE_DEPENDS ${WREF_CHECKER_SRC}/check/engine/*.c
     ${WREF_CHECKER_SRC}/check/wref/*.c ${WREF_CHECKER_SRC}/check/python/*.c)
file(GLOB WREF_UNIT_RUNTIME_SOURCES CONFIGURE_DEPENDS ${WREF_CHECKER_SRC}/runtime/*.c)
list(FILTER WREF_UNIT_RUNTIME_SOURCES EXCLUDE REGEX "check_stub\\.c$")   # the release library's no-ops
if(NOT TARGET PkgConfig::JANSSON)
  pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
endif()
wref_checker_unit_test(test_checker_modules ${WREF_UNIT_RUNTIME_SOURCES} ${WREF_UNIT_CHECKER_SOURCES})
target_compile_definitions(test_checker_modules PRIVATE WREF_CHECKED WREF_BUILDING_LIBRARY WREF_VERSION="${PROJECT_VERSION}")
target_compile_options(test_checker_modules PRIVATE -fno-optimize-sibling-calls)
target_link_libraries(test_checker_modules PRIVATE PkgConfig::LIBUNWIND PkgConfig::LIBDW PkgConfig::JANSSON ${CMAKE_DL_LIBS})
set(unit_log ${CMAKE_CURRENT_BINARY_DIR}/test_checker_modules.d)
file(MAKE_DIRECTORY ${unit_log})
file(WRITE ${unit_log}/suppressions.txt "# test_checker_modules: one type's leaks\nleak:type=UnitSuppressed\n")
# fold_repeats=0: the tests count every finding in the text and JSON reports (their cycles and
# use-after-frees share stacks, which fold_repeats=1 would print once)
set(unit_env "WREF_CHECK_OPTIONS=report=text,json:log_path=${unit_log}/report:suppressions=${unit_log}/suppressions.txt:exitcode=0:fold_repeats=0")
if(WREF_SANITIZE STREQUAL "address")
  list(APPEND unit_env "ASAN_OPTIONS=detect_leaks=0")   # the leaks are the census test's, on purpose
endif()
set_tests_properties(test_checker_modules PROPERTIES ENVIRONMENT "${unit_env}" TIMEOUT 120 LABELS "unit;checker")

# test_heap: the quarantine heap (heap.h) called directly, in a checked program built as
# test_checker_modules is.
wref_checker_unit_test(test_heap ${WREF_UNIT_RUNTIME_SOURCES} ${WREF_UNIT_CHECKER_SOURCES})
target_compile_definitions(test_heap PRIVATE WREF_CHECKED WREF_BUILDING_LIBRARY WREF_VERSION="${PROJECT_VERSION}")
target_link_libraries(test_heap PRIVATE PkgConfig::LIBUNWIND PkgConfig::LIBDW PkgConfig::JANSSON ${CMAKE_DL_LIBS})
set(heap_log ${CMAKE_CURRENT_BINARY_DIR}/test_heap.d)
file(MAKE_DIRECTORY ${heap_log})
set(heap_env "WREF_CHECK_OPTIONS=report=text:log_path=${heap_log}/report:exitcode=0")
if(WREF_SANITIZE STREQUAL "address")
  list(APPEND heap_env "ASAN_OPTIONS=detect_leaks=0")   # header_overwritten keeps its chunk, on purpose
endif()
set_tests_properties(test_heap PROPERTIES ENVIRONMENT "${heap_env}" TIMEOUT 120 LABELS "unit;checker")

# test_poison: the poison pointers (poison.h) called directly, in a checked program built as
# test_heap is; poison_slots=65536 (the test fills every slot: POISON_SLOTS in test_poison.c).
wref_checker_unit_test(test_poison ${WREF_UNIT_RUNTIME_SOURCES} ${WREF_UNIT_CHECKER_SOURCES})
target_compile_definitions(test_poison PRIVATE WREF_CHECKED WREF_BUILDING_LIBRARY WREF_VERSION="${PROJECT_VERSION}")
target_link_libraries(test_poison PRIVATE PkgConfig::LIBUNWIND PkgConfig::LIBDW PkgConfig::JANSSON ${CMAKE_DL_LIBS})
set(poison_log ${CMAKE_CURRENT_BINARY_DIR}/test_poison.d)
file(MAKE_DIRECTORY ${poison_log})
set_tests_properties(test_poison PROPERTIES
  ENVIRONMENT "WREF_CHECK_OPTIONS=report=text:log_path=${poison_log}/report:exitcode=0:leak_check=0:poison_slots=65536"
  TIMEOUT 120 LABELS "unit;checker")

# The checker's signal handlers call nothing that is not async-signal-safe (issue 10): the
# direct calls reachable from the fault handler and the flush timeout, in the built library.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(signal_safe_objdump objdump)
if(CMAKE_OBJDUMP)
  set(signal_safe_objdump ${CMAKE_OBJDUMP})
endif()
add_test(NAME checker.signal_safe
         COMMAND Python3::Interpreter ${CMAKE_CURRENT_LIST_DIR}/check_signal_safe.py --objdump ${signal_safe_objdump}
                 $<TARGET_FILE:wref-check>)
set_tests_properties(checker.signal_safe PROPERTIES TIMEOUT 120 LABELS "unit;checker"
                     PASS_REGULAR_EXPRESSION "PASS: no handler reaches" FAIL_REGULAR_EXPRESSION "FAIL")

# test_resurrect: the record of an object that finalize resurrects (hooks.c), in a checked
# program built as test_heap is.
wref_checker_unit_test(test_resurrect ${WREF_UNIT_RUNTIME_SOURCES} ${WREF_UNIT_CHECKER_SOURCES})
target_compile_definitions(test_resurrect PRIVATE WREF_CHECKED WREF_BUILDING_LIBRARY WREF_VERSION="${PROJECT_VERSION}")
target_link_libraries(test_resurrect PRIVATE PkgConfig::LIBUNWIND PkgConfig::LIBDW PkgConfig::JANSSON ${CMAKE_DL_LIBS})
set(resurrect_log ${CMAKE_CURRENT_BINARY_DIR}/test_resurrect.d)
file(MAKE_DIRECTORY ${resurrect_log})
set_tests_properties(test_resurrect PROPERTIES
  ENVIRONMENT "WREF_CHECK_OPTIONS=report=text:log_path=${resurrect_log}/report:exitcode=0:leak_check=0"
  TIMEOUT 120 LABELS "unit;checker")
