# WrefPython.cmake: the CPython interpreters the CPython frontend is tested and benchmarked on,
# and the extension modules built for each (tests/python, bench/python).
#
# The modules are built with the compiler directly, not as CMake targets: they are ordinary
# extension modules, without this tree's sanitizer flags (an uninstrumented python loads them;
# the sanitizer trees preload their runtime for the checker only), one per interpreter, against
# that interpreter's headers (sysconfig's include path).

# wref_python_interpreters(<out_var> [PYENV_ROOT <var>])
# Sets <out_var> to the interpreters, as "tag|python|include dir" entries: Debian's
# /usr/bin/python3.11 (tag debian-3.11) when its headers are installed, and every pyenv build of
# 3.9-3.13 with a shared libpython (tag pyenv-3.X.Y; free-threaded and dev builds are left out).
# PYENV_ROOT <var> receives pyenv's root ("" when there is none).
function(wref_python_interpreters out_var)
  cmake_parse_arguments(arg "" "PYENV_ROOT" "" ${ARGN})
  set(interps "")
  if(EXISTS /usr/bin/python3.11 AND EXISTS /usr/include/python3.11/Python.h)
    list(APPEND interps "debian-3.11|/usr/bin/python3.11|/usr/include/python3.11")
  endif()
  set(root "$ENV{PYENV_ROOT}")
  if(NOT root)
    find_program(WREF_PYENV pyenv PATHS $ENV{HOME}/.pyenv/bin NO_CACHE)
    if(WREF_PYENV)
      execute_process(COMMAND ${WREF_PYENV} root OUTPUT_VARIABLE root OUTPUT_STRIP_TRAILING_WHITESPACE
                      ERROR_QUIET)
    endif()
  endif()
  if(root AND IS_DIRECTORY "${root}/versions")
    file(GLOB versions LIST_DIRECTORIES true "${root}/versions/3.*")
    foreach(dir IN LISTS versions)
      get_filename_component(v ${dir} NAME)
      if(NOT v MATCHES "^3\\.(9|1[0-3])\\.[0-9]+$" OR NOT EXISTS ${dir}/bin/python3)
        continue()   # outside 3.9-3.13, or a free-threaded/dev build: the checker runs unchecked there
      endif()
      string(REGEX REPLACE "^3\\.([0-9]+)\\..*" "\\1" minor ${v})
      if(NOT EXISTS ${dir}/lib/libpython3.${minor}.so)
        message(STATUS "wref: pyenv ${v} has no shared libpython: not used")
        continue()
      endif()
      execute_process(COMMAND ${dir}/bin/python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])"
                      OUTPUT_VARIABLE inc OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
      if(rc EQUAL 0 AND EXISTS ${inc}/Python.h)
        list(APPEND interps "pyenv-${v}|${dir}/bin/python3|${inc}")
      endif()
    endforeach()
  endif()
  set(${out_var} "${interps}" PARENT_SCOPE)
  if(arg_PYENV_ROOT)
    set(${arg_PYENV_ROOT} "${root}" PARENT_SCOPE)
  endif()
endfunction()

# wref_python_module(<output .so> SOURCE <file.c> INCLUDES <dir>... FLAGS <flag>...
#                    [SYNTAX_CHECK <file.c>...] [COMMENT <text>])
# The rule that builds one extension module: <output>'s directory is created, each SYNTAX_CHECK
# file is compiled -fsyntax-only against INCLUDES first (a layout assertion), then SOURCE is
# compiled and linked with FLAGS (which must include -shared -fPIC). The caller makes a target
# that depends on <output>.
function(wref_python_module output)
  cmake_parse_arguments(arg "" "SOURCE;COMMENT" "INCLUDES;FLAGS;SYNTAX_CHECK" ${ARGN})
  get_filename_component(dir ${output} DIRECTORY)
  set(incs "")
  foreach(inc IN LISTS arg_INCLUDES)
    list(APPEND incs -I${inc})
  endforeach()
  set(checks "")
  foreach(file IN LISTS arg_SYNTAX_CHECK)
    list(APPEND checks COMMAND ${CMAKE_C_COMPILER} -fsyntax-only ${incs} ${file})
  endforeach()
  if(NOT arg_COMMENT)
    get_filename_component(name ${output} NAME)
    set(arg_COMMENT "${name}")
  endif()
  add_custom_command(OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    ${checks}
    COMMAND ${CMAKE_C_COMPILER} ${arg_FLAGS} ${incs} ${arg_SOURCE} -o ${output}
    DEPENDS ${arg_SOURCE} ${arg_SYNTAX_CHECK}
    COMMENT "${arg_COMMENT}"
    VERBATIM)
endfunction()
