/* tombstone.c: what a freed, watched Python object becomes, and the findings about it.
 *
 * A tombstone keeps the object's memory (in the engine heap's quarantine, adopted by objects.c,
 * which never poisons it) and rewrites its header:
 *   ob_type   -> "wref_check.freed_object", a heap type made once with PyType_FromSpec (the
 *                limited API: one build serves 3.9-3.13). Its slots report the use and raise
 *                ReferenceError instead of running the dead object's code on freed memory.
 *   ob_refcnt -> 1 (bit 31 of the low word clear: mortal in 3.12+), so a late Py_DECREF
 *                reaches the tombstone's tp_dealloc (reported, count set back to 1) and a late
 *                Py_INCREF shows as a count above 1 when the block leaves the quarantine or at
 *                exit.
 * A block is only tombstoned at its free, after its dealloc finished, so it never sits in the
 * trashcan (which keeps pointers in the count field) at that time. */
#include "frontend.h"
#include "origins.h"
#include "pystack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POISON_COUNT 1

static py_object *tombstone_type;

static void add_history(wref__finding *f, const char *label, wref__stack_id st, unsigned tno, uint32_t py)
{
    f->lang_history[f->n_history] = py;
    f->history[f->n_history++] = (wref__labelled){label, st, tno};
}

/* Where r was allocated (origins.c), or a label saying why that is not known. */
static void add_create(wref__finding *f, const wref__py_rec *r)
{
    bool known = r->why_create == WREF__PY_ORIGIN_NONE;
    add_history(f, wref__py_origin_label(r->why_create), r->st_create, known ? r->tno_create : ~0u, r->py_create);
}

/* The ReferenceError's word for how the freed object was reached, by its record (NULL: its
 * record is gone, the tombstone having left the quarantine). */
static const char *use_kind(const wref__py_rec *r)
{
    if (r && r->pinned)   /* its weakrefs were never cleared: this use came through one */
        return "dangling weakref: its dealloc never cleared it";
    if (r && r->how == WREF__PY_BORROWED)
        return "dangling borrowed reference";
    return "use after free";
}

/* The C API that made the weakref a weakref-created record r was watched for. */
static const char *weakref_api(const wref__py_rec *r)
{
    return r->how == WREF__PY_PROXY_CREATED ? "PyWeakref_NewProxy" : "PyWeakref_NewRef";
}

/* Reports a use of the tombstone o by operation `op` (once per object) and sets
 * ReferenceError. The C stack starts at the slot function the interpreter called. */
static void report_use(py_object *o, const char *op)
{
    wref__py_rec r;
    bool first = false;
    bool known = wref__py_rec_find((uintptr_t)o, &r, true, &first);
    if (known && first && r.how == WREF__PY_FREED)
        wref__py_wide_report_use(&r, op);
    else if (known && first) {
        wref__stack_id where = wref__capture();
        uint32_t py_where = wref__py_stack_capture(wref__opt.stack_depth);
        char what[400];
        bool borrowed = r.how == WREF__PY_BORROWED;
        if (borrowed)
            snprintf(what, sizeof what,
                     "%s of a %s that was freed: the pointer PyWeakref_GetObject returned (a borrowed "
                     "reference) was used after the last strong reference went away",
                     op, r.type_name);
        else
            snprintf(what, sizeof what, "%s of a %s that was freed (a weakref to it was made with %s)",
                     op, r.type_name, weakref_api(&r));
        wref__rec_copy obj = {.addr = r.obj, .serial = r.serial, .size = r.size, .state = WREF__FREED};
        wref__finding f = {
            .kind = borrowed ? WREF__K_DANGLING_BORROW : WREF__K_USE_AFTER_FREE, .what = what, .object = &obj, .address = r.obj, .where = where,
            .lang_where = py_where, .type_name = r.type_name, .test_name = getenv("PYTEST_CURRENT_TEST")};
        add_history(&f, borrowed ? "borrowed" : "weakref created", r.st_borrow, r.tno_borrow, r.py_borrow);
        add_history(&f, "destroyed (the last reference dropped)", r.st_destroy, r.tno_destroy, r.py_destroy);
        add_create(&f, &r);
        wref__report(&f);
    }
    char msg[200];
    snprintf(msg, sizeof msg, "wref-check: %s of a freed %s (%s)", op, known ? r.type_name : "object",
             use_kind(known ? &r : NULL));
    wref__py.err_set_string(*wref__py.exc_reference_error, msg);
}

void wref__py_report_late_incref(const wref__py_rec *r, ssize_t count)
{
    if (r->how == WREF__PY_FREED) {
        wref__py_wide_report_late_incref(r, count);
        return;
    }
    char what[400];
    snprintf(what, sizeof what,
             "%zd reference(s) to a %s were taken after it was freed (a Py_INCREF that came too late); "
             "its memory is never reused",
             count - POISON_COUNT, r->type_name);
    wref__rec_copy obj = {.addr = r->obj, .serial = r->serial, .size = r->size, .state = WREF__FREED};
    /* as report_use: through a borrowed pointer a dangling-borrow, else (watched for a weakref
     * made from C) a use-after-free */
    bool borrowed = r->how == WREF__PY_BORROWED;
    wref__finding f = {.kind = borrowed ? WREF__K_DANGLING_BORROW : WREF__K_USE_AFTER_FREE, .what = what,
                       .object = &obj, .address = r->obj, .type_name = r->type_name,
                       .test_name = getenv("PYTEST_CURRENT_TEST")};
    add_history(&f, borrowed ? "borrowed" : "weakref created", r->st_borrow, r->tno_borrow, r->py_borrow);
    add_history(&f, "destroyed (the last reference dropped)", r->st_destroy, r->tno_destroy, r->py_destroy);
    add_create(&f, r);
    wref__report(&f);
}

/* wref__py_origin_label for the weakref of a WREF__PY_WEAKLISTED record. */
static const char *weakref_origin_label(int why)
{
    switch (why) {
    case WREF__PY_ORIGIN_NONE:
        return "weakref created";
    case WREF__PY_ORIGIN_OFF:
        return "weakref created: not recorded (python_create=0)";
    case WREF__PY_ORIGIN_FULL:
        return "weakref created: not recorded (out of memory for its allocation site)";
    default:
        return "weakref created: not recorded (allocated before the checker started)";
    }
}

void wref__py_report_dangling_weakref(const wref__py_rec *r, wref__stack_id where, uint32_t py_where)
{
    char what[400];
    snprintf(what, sizeof what,
             "a %s was freed while weakrefs still point at it: its type's tp_dealloc did not call "
             "PyObject_ClearWeakRefs; its memory is kept out of reuse so that they do not touch reused memory",
             r->type_name);
    wref__rec_copy obj = {.addr = r->obj, .serial = r->serial, .size = r->size, .state = WREF__FREED};
    wref__finding f = {.kind = WREF__K_DANGLING_WEAKREF, .what = what, .object = &obj, .address = r->obj,
                       .where = where, .lang_where = py_where, .type_name = r->type_name,
                       .test_name = getenv("PYTEST_CURRENT_TEST")};
    if (r->how != WREF__PY_WEAKLISTED)
        add_history(&f, r->how == WREF__PY_BORROWED ? "borrowed" : "weakref created", r->st_borrow, r->tno_borrow,
                    r->py_borrow);
    else   /* nobody watched it: where the weakref at the head of its list was allocated */
        add_history(&f, weakref_origin_label(r->why_weakref), r->st_borrow,
                    r->why_weakref == WREF__PY_ORIGIN_NONE ? r->tno_borrow : ~0u, r->py_borrow);
    add_create(&f, r);
    wref__report(&f);
}

/* Two captures of one call into an interposer: the same stack but for frame #0 (a different
 * pc inside the interposer). */
static bool same_call(wref__stack_id a, wref__stack_id b)
{
    const uintptr_t *pa, *pb;
    size_t na = wref__stack_get(a, &pa), nb = wref__stack_get(b, &pb);
    return a == b || (na == nb && na > 1 && !memcmp(pa + 1, pb + 1, (na - 1) * sizeof *pa));
}

void wref__py_report_use_after_clear(const wref__py_rec *r, ssize_t held, const char *api, wref__stack_id where,
                                     uint32_t py_where, const wref__py_gain *gain)
{
    char what[700];
    if (held > 0 && gain)
        snprintf(what, sizeof what,
                 "a %s was freed while %zd reference(s) to it were still held: the weakref callback %s, registered "
                 "from C with %s, took them while the object was being destroyed (its count had reached 0: it was "
                 "resurrected through a pointer that held no reference); they now point at freed memory",
                 r->type_name, held, gain->callback, gain->api);
    else if (held > 0)
        snprintf(what, sizeof what,
                 "a %s was freed while %zd reference(s) to it were still held: they were taken after its count "
                 "had reached 0, while it was being destroyed (e.g. a weakref callback that resurrected it through "
                 "a pointer that held no reference); they now point at freed memory",
                 r->type_name, held);
    else
        snprintf(what, sizeof what,
                 "%s %s a %s whose count is 0: it is being destroyed (its weakrefs are cleared or being "
                 "cleared), so the %s outlives it",
                 api, strcmp(api, "PyWeakref_GetObject") ? "made a weakref to" : "returned", r->type_name,
                 strcmp(api, "PyWeakref_GetObject") ? "new weakref" : "borrowed pointer");
    wref__rec_copy obj = {.addr = r->obj, .serial = r->serial, .size = r->size,
                          .state = held > 0 ? WREF__FREED : WREF__CLEARING};
    wref__finding f = {.kind = WREF__K_USE_AFTER_CLEAR, .what = what, .object = &obj, .address = r->obj,
                       .where = where, .lang_where = py_where, .type_name = r->type_name,
                       .test_name = getenv("PYTEST_CURRENT_TEST")};
    if (gain)
        add_history(&f, "callback registered (weakref created)", gain->st_reg, gain->tno_reg, gain->py_reg);
    if (r->st_borrow && (!gain || !same_call(gain->st_reg, r->st_borrow) || gain->py_reg != r->py_borrow))
        add_history(&f, r->how == WREF__PY_BORROWED ? "borrowed" : "weakref created", r->st_borrow, r->tno_borrow,
                    r->py_borrow);
    add_create(&f, r);
    wref__report(&f);
}

static bool is_tombstone(py_object *o)
{
    return o && o->ob_type == tombstone_type;
}

/* ---- slots: each one names the operation that reached the freed object ---------------------- */

static void freed_object_dealloc(py_object *o)
{
    report_use(o, "Py_DECREF (the count reached 0 again)");
    py_object *et, *ev, *etb;   /* dealloc must not leave an exception behind */
    wref__py.err_fetch(&et, &ev, &etb);
    if (et)
        wref__py.decref(et);
    if (ev)
        wref__py.decref(ev);
    if (etb)
        wref__py.decref(etb);
    o->ob_refcnt = POISON_COUNT;
}

static py_object *freed_object_repr(py_object *o) { report_use(o, "repr()"); return NULL; }
static py_object *freed_object_str(py_object *o) { report_use(o, "str()"); return NULL; }
static ssize_t freed_object_hash(py_object *o) { report_use(o, "hash()"); return -1; }
static py_object *freed_object_getattro(py_object *o, py_object *name) { (void)name; report_use(o, "attribute read"); return NULL; }
static int freed_object_setattro(py_object *o, py_object *n, py_object *v) { (void)n; (void)v; report_use(o, "attribute write"); return -1; }
static py_object *freed_object_call(py_object *o, py_object *a, py_object *k) { (void)a; (void)k; report_use(o, "call"); return NULL; }
static py_object *freed_object_iter(py_object *o) { report_use(o, "iter()"); return NULL; }
static py_object *freed_object_iternext(py_object *o) { report_use(o, "next()"); return NULL; }
static int freed_object_bool(py_object *o) { report_use(o, "truth test"); return -1; }
static ssize_t freed_object_len(py_object *o) { report_use(o, "len()"); return -1; }
static py_object *freed_object_subscript(py_object *o, py_object *k) { (void)k; report_use(o, "subscript"); return NULL; }
static py_object *freed_object_item(py_object *o, ssize_t i) { (void)i; report_use(o, "item access"); return NULL; }
static int freed_object_contains(py_object *o, py_object *v) { (void)v; report_use(o, "'in' test"); return -1; }
static py_object *freed_object_index(py_object *o) { report_use(o, "conversion to int"); return NULL; }

static py_object *freed_object_richcompare(py_object *a, py_object *b, int op)
{
    (void)op;
    report_use(is_tombstone(a) ? a : b, "comparison");
    return NULL;
}

static py_object *freed_object_binary(py_object *a, py_object *b, const char *op)
{
    report_use(is_tombstone(a) ? a : b, op);
    return NULL;
}
static py_object *freed_object_add(py_object *a, py_object *b) { return freed_object_binary(a, b, "'+'"); }
static py_object *freed_object_sub(py_object *a, py_object *b) { return freed_object_binary(a, b, "'-'"); }
static py_object *freed_object_mul(py_object *a, py_object *b) { return freed_object_binary(a, b, "'*'"); }

bool wref__py_tombstone_init(void)
{
    static py_type_slot slots[] = {
        {PY_tp_dealloc, (void *)freed_object_dealloc}, {PY_tp_repr, (void *)freed_object_repr},
        {PY_tp_str, (void *)freed_object_str}, {PY_tp_hash, (void *)freed_object_hash},
        {PY_tp_getattro, (void *)freed_object_getattro}, {PY_tp_setattro, (void *)freed_object_setattro},
        {PY_tp_call, (void *)freed_object_call}, {PY_tp_iter, (void *)freed_object_iter},
        {PY_tp_iternext, (void *)freed_object_iternext}, {PY_tp_richcompare, (void *)freed_object_richcompare},
        {PY_nb_bool, (void *)freed_object_bool}, {PY_nb_add, (void *)freed_object_add},
        {PY_nb_subtract, (void *)freed_object_sub}, {PY_nb_multiply, (void *)freed_object_mul},
        {PY_nb_index, (void *)freed_object_index}, {PY_nb_int, (void *)freed_object_index},
        {PY_sq_length, (void *)freed_object_len}, {PY_mp_length, (void *)freed_object_len},
        {PY_mp_subscript, (void *)freed_object_subscript}, {PY_sq_item, (void *)freed_object_item},
        {PY_sq_contains, (void *)freed_object_contains},
        {PY_tp_doc, (void *)"wref-check: an object that was freed (use of a dangling borrowed reference)"},
        {0, NULL}};
    static py_type_spec spec = {"wref_check.freed_object", (int)sizeof(py_object), 0, 0, slots};
    py_object *et, *ev, *etb;
    wref__py.err_fetch(&et, &ev, &etb);
    tombstone_type = wref__py.type_from_spec(&spec);   /* kept forever */
    if (!tombstone_type) {
        py_object *t2, *v2, *tb2;
        wref__py.err_fetch(&t2, &v2, &tb2);   /* our failure is not the program's exception */
    }
    wref__py.err_restore(et, ev, etb);
    return tombstone_type != NULL;
}

void wref__py_tombstone_make(py_object *o)
{
    o->ob_type = tombstone_type;
    o->ob_refcnt = POISON_COUNT;
}
