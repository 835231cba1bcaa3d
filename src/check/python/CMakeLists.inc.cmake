# The CPython frontend beyond its sources (compiled into libwref-check.so by src/CMakeLists.txt).
# libwref-audit.so: the rtld-audit module of the CPython frontend (audit/audit.c). Its own small
# library, installed beside libwref-check.so: wref-check sets LD_AUDIT to it for a CPython
# program. It links nothing of the checker (it lives in its own link-map namespace).
add_library(wref-audit SHARED ${CMAKE_CURRENT_SOURCE_DIR}/check/python/audit/audit.c)
target_compile_definitions(wref-audit PRIVATE _GNU_SOURCE)
set_target_properties(wref-audit PROPERTIES C_VISIBILITY_PRESET hidden)
target_link_libraries(wref-audit PRIVATE ${CMAKE_DL_LIBS})
target_link_options(wref-audit PRIVATE -Wl,--no-undefined)
# Never sanitizer-instrumented, whatever WREF_SANITIZE says: an LD_AUDIT module is loaded before
# every LD_PRELOAD entry, so an instrumented one would bring its sanitizer runtime into the audit
# namespace ahead of the preloaded one (ASan then stops the program: "ASan runtime does not come
# first in initial library list"). It is small, allocates nothing and shares no memory with the
# checker but the addresses it returns, so the checker's sanitizer loses nothing by it.
foreach(prop COMPILE_OPTIONS LINK_OPTIONS)
  get_target_property(opts wref-audit ${prop})
  if(opts)
    list(FILTER opts EXCLUDE REGEX "^-f(no-)?sanitize")
    set_target_properties(wref-audit PROPERTIES ${prop} "${opts}")
  endif()
endforeach()
install(TARGETS wref-audit LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# The pytest plugin (python/wref_pytest.py): `PYTHONPATH=<prefix>/share/wref/python
# wref-check -- python3 -m pytest -p wref_pytest`.
install(FILES ${PROJECT_SOURCE_DIR}/python/wref_pytest.py DESTINATION ${CMAKE_INSTALL_DATADIR}/wref/python)
