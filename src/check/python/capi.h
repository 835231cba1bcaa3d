/* capi.h: the CPython frontend's view of the interpreter: the few C API functions it calls,
 * resolved at run time with dlsym (libwref-check never links libpython), and the object
 * layout facts it reads directly, per version.
 *
 * Only this folder (src/check/python/) dereferences a Python object; the engine sees
 * addresses, stack ids and text. Supported: CPython 3.9-3.13, GIL builds, 64-bit. */
#ifndef WREF_CHECK_PYTHON_CAPI_H
#define WREF_CHECK_PYTHON_CAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PyObject's head in GIL builds 3.9-3.13. In 3.12+ ob_refcnt is a union whose low 32-bit word
 * carries the immortal bit (bit 31); writing a small value keeps the object mortal. */
typedef struct py_object {
    ssize_t ob_refcnt;
    struct py_object *ob_type;   /* a PyTypeObject */
} py_object;

/* PyTypeObject offsets, identical from 3.9 to 3.13 on 64-bit (checked against each version's
 * headers by tests/python/layout_check.c at build time). */
#define PY_TP_NAME_OFFSET 24
#define PY_TP_BASICSIZE_OFFSET 32
#define PY_TP_WEAKLISTOFFSET_OFFSET 208
#define PY_TP_FLAGS_OFFSET 168   /* unsigned long tp_flags: read directly (PyType_GetFlags is a call) */
#define PY_TP_TRAVERSE_OFFSET 184   /* traverseproc tp_traverse (callbacks.c's exit count) */

#define PY_TPFLAGS_MANAGED_WEAKREF (1UL << 3)   /* 3.12+ */
#define PY_TPFLAGS_MANAGED_DICT (1UL << 4)      /* 3.11+ */
#define PY_TPFLAGS_HAVE_GC (1UL << 14)
#define PY_TPFLAGS_HEAPTYPE (1UL << 9)
#define PY_TPFLAGS_READY (1UL << 12)
#define PY_TPFLAGS_HAVE_VERSION_TAG (1UL << 18)   /* Py_TPFLAGS_DEFAULT in 3.9 (always set since 3.10) */
#define PY_TPFLAGS_TYPE_SUBCLASS (1UL << 31)

/* PyWeakReference's fields (GIL builds 3.9-3.13, 64-bit; layout_check.c checks them). */
#define PY_WR_CALLBACK_OFFSET 24
#define PY_WR_NEXT_OFFSET 48

#define PY_MEM_DOMAIN_OBJ 2

typedef struct py_mem_allocator {   /* PyMemAllocatorEx */
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} py_mem_allocator;

typedef struct py_method_def {      /* PyMethodDef (stable ABI) */
    const char *name;
    void *meth;
    int flags;
    const char *doc;
} py_method_def;
#define PY_METH_NOARGS 0x0004

typedef struct py_type_slot {       /* PyType_Slot (stable ABI) */
    int slot;
    void *pfunc;
} py_type_slot;

typedef struct py_type_spec {       /* PyType_Spec (stable ABI) */
    const char *name;
    int basicsize, itemsize;
    unsigned int flags;
    py_type_slot *slots;
} py_type_spec;

/* Slot numbers of typeslots.h (stable ABI, never renumbered). */
enum {
    PY_mp_length = 4, PY_mp_subscript = 5, PY_nb_add = 7, PY_nb_bool = 9, PY_nb_index = 13,
    PY_nb_int = 26, PY_nb_multiply = 29, PY_nb_subtract = 36, PY_sq_contains = 41, PY_sq_item = 44,
    PY_sq_length = 45, PY_tp_call = 50, PY_tp_dealloc = 52, PY_tp_doc = 56, PY_tp_getattro = 58,
    PY_tp_hash = 59, PY_tp_iter = 62, PY_tp_iternext = 63, PY_tp_repr = 66, PY_tp_richcompare = 67,
    PY_tp_setattro = 69, PY_tp_str = 70, PY_tp_clear = 51, PY_tp_traverse = 71
};

/* The interpreter in this process, resolved once (wref__py_api_resolve). */
typedef struct wref__py_api {
    int major, minor;
    char version[64];                                   /* Py_GetVersion()'s first word */
    py_object *(*weakref_get_object)(py_object *ref);   /* the real PyWeakref_GetObject */
    py_object *(*weakref_new_ref)(py_object *ob, py_object *callback);   /* the real PyWeakref_NewRef */
    py_object *(*weakref_new_proxy)(py_object *ob, py_object *callback); /* the real PyWeakref_NewProxy */
    void (*clear_weakrefs_no_callbacks)(py_object *ob);  /* the real PyUnstable_Object_ClearWeakRefsNoCallbacks (3.13+) */
    py_object *(*type_generic_alloc)(py_object *type, ssize_t nitems);
    void (*gc_untrack)(void *o);
    void (*gc_del)(void *o);
    py_object *(*object_call)(py_object *callable, py_object *args, py_object *kwargs);
    py_object *(*object_repr)(py_object *o);
    py_object *(*object_str)(py_object *o);
    void (*err_normalize)(py_object **type, py_object **value, py_object **tb);
    py_object *(*import_module)(const char *name);
    py_object *(*cfunction_new_ex)(void *method_def, py_object *self, py_object *module);
    py_object *(*list_new)(ssize_t n);
    int (*list_append)(py_object *list, py_object *item);
    py_object *(*list_as_tuple)(py_object *list);
    ssize_t (*list_size)(py_object *list);
    py_object *(*list_get_item)(py_object *list, ssize_t i);   /* borrowed */
    py_object *(*tuple_new)(ssize_t n);
    ssize_t (*tuple_size)(py_object *t);
    py_object *(*tuple_get_item)(py_object *t, ssize_t i);     /* borrowed */
    py_object *(*dict_values)(py_object *dict);                /* a new list */
    py_object *(*object_get_item)(py_object *o, py_object *key);
    long (*long_as_long)(py_object *o);
    int (*tuple_set_item)(py_object *t, ssize_t i, py_object *item);   /* steals item */
    void (*mem_get_allocator)(int domain, py_mem_allocator *a);
    void (*mem_set_allocator)(int domain, py_mem_allocator *a);
    py_object *(*type_from_spec)(py_type_spec *spec);
    py_object *(*eval_get_frame)(void);                 /* borrowed */
    py_object *(*frame_get_back)(py_object *frame);     /* new reference */
    py_object *(*frame_get_code)(py_object *frame);     /* new reference */
    int (*frame_get_line_number)(py_object *frame);
    int (*frame_get_lasti)(py_object *frame);           /* 3.11+; NULL before */
    void (*incref)(py_object *o);
    void (*decref)(py_object *o);
    py_object *(*object_get_attr_string)(py_object *o, const char *name);
    int (*object_set_attr_string)(py_object *o, const char *name, py_object *v);
    py_object *(*import_get_module)(py_object *name);   /* new reference, NULL when not imported */
    py_object *(*unicode_from_string)(const char *s);
    py_object *(*sys_get_xoptions)(void);                        /* borrowed */
    py_object *(*dict_get_item_string)(py_object *d, const char *key);   /* borrowed, no error */
    const char *(*unicode_as_utf8)(py_object *s);
    void (*err_fetch)(py_object **type, py_object **value, py_object **tb);
    void (*err_restore)(py_object *type, py_object *value, py_object *tb);
    void (*err_set_string)(py_object *type, const char *msg);
    void *(*thread_state_unchecked)(void);              /* NULL: no thread state (finalizing) */
    py_object **exc_reference_error;                    /* &PyExc_ReferenceError */
    py_object *none;                                    /* &_Py_NoneStruct */
    py_object *code_type;                               /* &PyCode_Type; NULL: not exported */
    py_object *weakref_ref_type;                        /* &_PyWeakref_RefType; NULL: not exported */
} wref__py_api;

extern wref__py_api wref__py;

/* Resolves the API once; the self_* are our own interposers, skipped when looking for the real
 * functions. Returns false (after one clear line on stderr) when the interpreter is
 * unsupported: the program then runs unchecked. The real PyWeakref_GetObject is set whenever
 * it exists, supported or not. */
typedef struct wref__py_self {
    void *get_object, *new_ref, *new_proxy, *clear_no_callbacks;
} wref__py_self;
bool wref__py_api_resolve(const wref__py_self *self);

/* The first definition of name in the global scope that is not `self` (our interposer). */
void *wref__py_real(const char *name, void *self);

static inline unsigned long wref__py_type_flags(const py_object *type)   /* PyType_GetFlags, inline */
{
    return *(const unsigned long *)((const char *)type + PY_TP_FLAGS_OFFSET);
}

/* Bytes before a PyObject* that belong to its allocation (the block handed to PyObject_Free):
 * the GC head, and the managed dict/weakref pre-header of 3.11/3.12+. A few loads: inline. */
static inline size_t wref__py_preheader(const py_object *type)
{
    unsigned long flags = wref__py_type_flags(type);
    size_t pre = (flags & PY_TPFLAGS_HAVE_GC) ? 16 : 0;   /* PyGC_Head: two words */
    if (wref__py.minor == 11 && (flags & PY_TPFLAGS_MANAGED_DICT))
        pre += 16;   /* dict and values pointers */
    else if (wref__py.minor >= 12 && (flags & (PY_TPFLAGS_MANAGED_DICT | PY_TPFLAGS_MANAGED_WEAKREF)))
        pre += 16;   /* dict/values and weakref list */
    return pre;
}

/* Offset from a PyObject* of its weakref list slot (managed: obj - 4 words on 3.12/3.13;
 * else tp_weaklistoffset); 0 when the type has none. */
intptr_t wref__py_weaklist_offset(py_object *type);

/* The text of str(o) or repr(o) (repr when use_repr), at most cap-1 bytes, "?" when it fails;
 * GIL held; keeps a pending exception as it is. */
void wref__py_text(py_object *o, bool use_repr, char *buf, size_t cap);

/* tp_name of a type, copied into buf (never NULL). */
void wref__py_type_name(py_object *type, char *buf, size_t cap);

#endif /* WREF_CHECK_PYTHON_CAPI_H */
