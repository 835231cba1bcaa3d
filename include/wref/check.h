/* wref/check.h: control API of the checker (libwref-check).
 *
 * The same functions exist in the release library as cheap no-ops, so a program that calls
 * them links against either build, and LD_PRELOAD=libwref-check.so switches them on. */
#ifndef WREF_CHECK_H
#define WREF_CHECK_H

#include "../wref.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when running under the checker, 0 in the release library. */
WREF_API int wref_check_active(void);

/* Runs the leak and pending-callback census now and reports what it finds (the same census
 * runs at exit when leak_check=1). Returns the number of findings reported; 0 in the release
 * library. Objects reported once are not reported again at exit. */
WREF_API size_t wref_check_leaks(void);

/* This thread no longer uses the borrowed pointer it got for ob from wref_get_object or
 * WREF_GET_OBJECT: a later use of ob by this thread is no longer attributed to that borrow. */
WREF_API void wref_check_borrow_end(wref_object *ob);

/* The number of findings reported so far in this process (suppressed ones not counted); 0 in
 * the release library. For test harnesses that fail the test that caused a finding (the
 * pytest plugin wref_pytest.py, docs/python.md). */
WREF_API size_t wref_check_findings(void);

#ifdef __cplusplus
}
#endif

#endif /* WREF_CHECK_H */
