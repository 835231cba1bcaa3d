/* capi.c: finds the interpreter's C API at run time and knows its object layout per version.
 *
 * Lookup order for the functions the frontend interposes (PyWeakref_GetObject): the first
 * definition in the global scope that is not ours. With Debian's python3.11 the executable
 * defines it and comes first (RTLD_DEFAULT finds it); with a shared libpython the preloaded
 * checker comes first, so RTLD_DEFAULT finds us and RTLD_NEXT finds libpython. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "capi.h"

#include "../engine/core.h"
#include "../engine/options.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

wref__py_api wref__py;

static void *sym(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

#define NEED(field, name)                                      \
    do {                                                       \
        *(void **)&wref__py.field = sym(name);                 \
        if (!wref__py.field) {                                 \
            missing = name;                                    \
            goto unsupported;                                  \
        }                                                      \
    } while (0)

void *wref__py_real(const char *name, void *self)
{
    void *real = sym(name);
    if (real == self || real == NULL)
        real = dlsym(RTLD_NEXT, name);
    return real;
}

bool wref__py_api_resolve(const wref__py_self *self)
{
    *(void **)&wref__py.weakref_get_object = wref__py_real("PyWeakref_GetObject", self->get_object);
    *(void **)&wref__py.weakref_new_ref = wref__py_real("PyWeakref_NewRef", self->new_ref);
    *(void **)&wref__py.weakref_new_proxy = wref__py_real("PyWeakref_NewProxy", self->new_proxy);
    *(void **)&wref__py.clear_weakrefs_no_callbacks =
        wref__py_real("PyUnstable_Object_ClearWeakRefsNoCallbacks", self->clear_no_callbacks);   /* 3.13+ */

    const char *missing = NULL;
    const char *(*get_version)(void) = (const char *(*)(void))sym("Py_GetVersion");
    const char *v = get_version ? get_version() : NULL;
    if (!v) {
        missing = "Py_GetVersion";
        goto unsupported;
    }
    snprintf(wref__py.version, sizeof wref__py.version, "%.*s", (int)strcspn(v, " "), v);
    if (sscanf(v, "%d.%d", &wref__py.major, &wref__py.minor) != 2 || wref__py.major != 3 || wref__py.minor < 9 ||
        wref__py.minor > 13) {
        wref__checker_warn(NULL, "CPython %s is not supported (3.9 to 3.13 are); running unchecked",
                           wref__py.version);
        return false;
    }
    if (strstr(v, "free-threading")) {   /* 3.13t: another object header (ob_tid, split counts) */
        wref__checker_warn(NULL, "CPython %s is a free-threaded build, which is not supported; running unchecked",
                           wref__py.version);
        return false;
    }
    NEED(mem_get_allocator, "PyMem_GetAllocator");
    NEED(mem_set_allocator, "PyMem_SetAllocator");
    NEED(type_from_spec, "PyType_FromSpec");
    NEED(eval_get_frame, "PyEval_GetFrame");
    NEED(frame_get_back, "PyFrame_GetBack");
    NEED(frame_get_code, "PyFrame_GetCode");
    NEED(frame_get_line_number, "PyFrame_GetLineNumber");
    NEED(incref, "Py_IncRef");
    NEED(decref, "Py_DecRef");
    NEED(object_get_attr_string, "PyObject_GetAttrString");
    NEED(object_set_attr_string, "PyObject_SetAttrString");
    NEED(import_get_module, "PyImport_GetModule");
    NEED(unicode_from_string, "PyUnicode_FromString");
    NEED(sys_get_xoptions, "PySys_GetXOptions");
    NEED(dict_get_item_string, "PyDict_GetItemString");
    NEED(unicode_as_utf8, "PyUnicode_AsUTF8");
    NEED(err_fetch, "PyErr_Fetch");
    NEED(err_restore, "PyErr_Restore");
    NEED(err_set_string, "PyErr_SetString");
    NEED(exc_reference_error, "PyExc_ReferenceError");
    NEED(type_generic_alloc, "PyType_GenericAlloc");
    NEED(gc_untrack, "PyObject_GC_UnTrack");
    NEED(gc_del, "PyObject_GC_Del");
    NEED(object_call, "PyObject_Call");
    NEED(object_repr, "PyObject_Repr");
    NEED(object_str, "PyObject_Str");
    NEED(err_normalize, "PyErr_NormalizeException");
    NEED(import_module, "PyImport_ImportModule");
    NEED(cfunction_new_ex, "PyCFunction_NewEx");
    NEED(list_new, "PyList_New");
    NEED(list_append, "PyList_Append");
    NEED(list_as_tuple, "PyList_AsTuple");
    NEED(list_size, "PyList_Size");
    NEED(list_get_item, "PyList_GetItem");
    NEED(tuple_new, "PyTuple_New");
    NEED(tuple_set_item, "PyTuple_SetItem");
    NEED(tuple_size, "PyTuple_Size");
    NEED(tuple_get_item, "PyTuple_GetItem");
    NEED(dict_values, "PyDict_Values");
    NEED(object_get_item, "PyObject_GetItem");
    NEED(long_as_long, "PyLong_AsLong");
    NEED(none, "_Py_NoneStruct");
    *(void **)&wref__py.frame_get_lasti = sym("PyFrame_GetLasti");
    *(void **)&wref__py.code_type = sym("PyCode_Type");   /* the frame fast path's check (pystack.c) */
    *(void **)&wref__py.weakref_ref_type = sym("_PyWeakref_RefType");   /* intercept.c's inline read */
    *(void **)&wref__py.thread_state_unchecked = sym(wref__py.minor >= 13 ? "PyThreadState_GetUnchecked"
                                                                          : "_PyThreadState_UncheckedGet");
    if (!wref__py.thread_state_unchecked) {
        missing = "PyThreadState_GetUnchecked";
        goto unsupported;
    }
    return true;

unsupported:
    wref__checker_warn(NULL, "CPython %s: %s not found; this interpreter is not supported, running unchecked",
                       wref__py.version[0] ? wref__py.version : "(unknown version)", missing);
    return false;
}

intptr_t wref__py_weaklist_offset(py_object *type)
{
    if (wref__py.minor >= 12 && (wref__py_type_flags(type) & PY_TPFLAGS_MANAGED_WEAKREF))
        return -4 * (intptr_t)sizeof(void *);
    ssize_t off = *(const ssize_t *)((const char *)type + PY_TP_WEAKLISTOFFSET_OFFSET);
    return off > 0 ? (intptr_t)off : 0;
}

void wref__py_text(py_object *o, bool use_repr, char *buf, size_t cap)
{
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    py_object *s = o ? (use_repr ? wref__py.object_repr(o) : wref__py.object_str(o)) : NULL;
    const char *u = s ? wref__py.unicode_as_utf8(s) : NULL;
    snprintf(buf, cap, "%s", u ? u : "?");
    if (s)
        wref__py.decref(s);
    py_object *t2, *v2, *tb2;   /* a repr that raised: not the program's exception */
    wref__py.err_fetch(&t2, &v2, &tb2);
    if (t2)
        wref__py.decref(t2);
    if (v2)
        wref__py.decref(v2);
    if (tb2)
        wref__py.decref(tb2);
    wref__py.err_restore(et, ev, etb);
}

void wref__py_type_name(py_object *type, char *buf, size_t cap)
{
    const char *name = type ? *(const char *const *)((const char *)type + PY_TP_NAME_OFFSET) : NULL;
    snprintf(buf, cap, "%s", name ? name : "?");
}
