# WrefCheck.cmake: run CTest tests under the wref checker.
#
#   wref_check_add_test(NAME <name> COMMAND <cmd> [<arg>...]
#                       [OPTIONS "<key>=<value>:<key>=<value>..."]
#                       [WORKING_DIRECTORY <dir>])
#
# Adds the CTest test <name> that runs <cmd> <arg>... with libwref-check.so preloaded, through
# the wref-check tool (docs/wref-check.md):
#
#   wref-check --library <libwref-check.so> --exitcode=23 [--option <key>=<value>]... -- <cmd> <arg>...
#
# - <cmd> may be the name of an executable target (replaced by its path, as add_test does) or
#   a path. The program must be linked against libwref (wref::wref), or against libwref-check.
# - A finding fails the test: the checker makes the process exit with status 23 (`exitcode`)
#   when it reported anything. A clean run keeps the program's own exit status. OPTIONS may
#   set another `exitcode` (the last one given wins); do not set it to 0.
# - OPTIONS are checker options (`WREF_CHECK_OPTIONS` syntax, separated by ':'; `help=1` lists
#   them), e.g. "halt_on_error=1:guard=all". Each becomes one `--option key=value`.
# - Options already in the environment of ctest are kept: the tool merges the inherited
#   WREF_CHECK_OPTIONS with the test's (the test's win for the same name). So a CI job can
#   set e.g. WREF_CHECK_OPTIONS=log_path=$RUNNER_TEMP/wref/report for every test at once.
# - The test gets the label `wref-check` (`ctest -L wref-check` runs just these), in addition
#   to any set later with set_tests_properties/set_property(... APPEND PROPERTY LABELS ...).
# - Expecting a finding: set_tests_properties(<name> PROPERTIES WILL_FAIL TRUE), or match the
#   report with PASS_REGULAR_EXPRESSION "ERROR: wref-check: leak".
#
# Works in the wref build tree (include(cmake/WrefCheck.cmake) after src/ and tools/) and
# installed: find_package(wref CONFIG) includes it. It uses the targets wref::check (the
# library) and wref::wref-check (the tool), which exist in both places.
#
# A program built with AddressSanitizer needs ASAN_OPTIONS=verify_asan_link_order=0 (a
# preloaded library comes before the ASan runtime) and usually detect_leaks=0 (LeakSanitizer
# cannot see the checker's quarantine): add them with
#   set_property(TEST <name> APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=...")
include_guard(GLOBAL)

function(wref_check_add_test)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "NAME;OPTIONS;WORKING_DIRECTORY" "COMMAND")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "wref_check_add_test: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_NAME)
    message(FATAL_ERROR "wref_check_add_test: NAME <name> is required")
  endif()
  if(NOT arg_COMMAND)
    message(FATAL_ERROR "wref_check_add_test(${arg_NAME}): COMMAND <cmd> [args...] is required")
  endif()
  foreach(target IN ITEMS wref::check wref::wref-check)
    if(NOT TARGET ${target})
      message(FATAL_ERROR "wref_check_add_test(${arg_NAME}): target ${target} does not exist: "
                          "call find_package(wref CONFIG REQUIRED) first")
    endif()
  endforeach()

  list(POP_FRONT arg_COMMAND cmd)
  if(TARGET ${cmd})
    get_target_property(type ${cmd} TYPE)
    if(type STREQUAL "EXECUTABLE")
      set(cmd "$<TARGET_FILE:${cmd}>")
    endif()
  endif()

  # "k=v:k='a:b'" -> k=v;k='a:b': split on ':' outside quotes, as the checker does.
  set(option_args "")
  if(arg_OPTIONS)
    string(REGEX MATCHALL "([^:'\"]|'[^']*'|\"[^\"]*\")+" items "${arg_OPTIONS}")
    foreach(item IN LISTS items)
      list(APPEND option_args --option "${item}")
    endforeach()
  endif()

  set(wd "")
  if(arg_WORKING_DIRECTORY)
    set(wd WORKING_DIRECTORY "${arg_WORKING_DIRECTORY}")
  endif()
  add_test(NAME ${arg_NAME}
           COMMAND $<TARGET_FILE:wref::wref-check> --library $<TARGET_FILE:wref::check>
                   --exitcode=23 ${option_args} -- ${cmd} ${arg_COMMAND}
           ${wd})
  set_property(TEST ${arg_NAME} APPEND PROPERTY LABELS wref-check)
endfunction()
