/* python.h: the CPython frontend as the rest of the checker sees it (lifecycle only). */
#ifndef WREF_CHECK_PYTHON_PYTHON_H
#define WREF_CHECK_PYTHON_PYTHON_H

/* At exit, before the reports' last words: findings known only then (late Py_INCREFs of
 * freed objects) and, with verbosity >= 1, the frontend's statistics. Does nothing in a
 * process where no CPython called the interposed functions. */
void wref__python_exit(void);

#endif /* WREF_CHECK_PYTHON_PYTHON_H */
