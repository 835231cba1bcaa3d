/* fuzz_checker.c: libFuzzer target for the checker (libwref-check): API sequences run under it.
 *
 * The harness is a checked program: the runtime and every checker source, compiled as
 * libwref-check is (WREF_CHECKED), are linked in. The input is a program of API operations
 * on a small pool of objects and weakrefs the harness owns. Every operation of the program is
 * valid use of wref: after each one the checker must have reported nothing
 * (wref__report_count() unchanged; a report is a false finding and aborts). One byte value
 * injects a misuse instead (the first one of an input; later ones are skipped), chosen by the
 * next byte, and the checker must then report exactly one finding, of the right kind:
 *
 *   use-after-free    wref_incref on an object after its last reference was dropped
 *   dangling-borrow   a pointer from wref_get_object used by this thread after its object died
 *   invalid-object    a pointer wref never allocated passed as an object
 *   clear-live        wref_clear_weakrefs on a live object
 *   leak              an object never released, found by wref_check_leaks
 *
 * The misuse's report is written to a memory file (stderr is switched to it for the call), so
 * the harness reads back the finding's kind. At the end of an input everything is released and
 * every object the valid operations made must have been destroyed. The checker's
 * exitcode is set to 0, since the findings are expected. */
#include "check/engine/borrow.h"
#include "check/engine/buf.h"
#include "check/engine/census.h"
#include "check/engine/checker.h"
#include "check/engine/core.h"
#include "check/engine/finding.h"
#include "check/engine/heap.h"
#include "check/engine/json.h"
#include "check/engine/kinds.h"
#include "check/engine/options.h"
#include "check/engine/registry.h"
#include "check/engine/report.h"
#include "check/engine/suppress.h"

#include <wref.h>
#include <wref/check.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { POOL = 16 };

/* Objects count their destructions, so that the end of an input can check that a valid
 * sequence destroyed every object it made (a leak check cheaper than the census). */
static size_t g_made, g_destroyed;

static void obj_destroy(wref_object *self)
{
    (void)self;
    g_destroyed++;
}

static const wref_type obj_type = {.name = "FuzzObj", .size = 48, .flags = WREF_TYPE_WEAKREFABLE,
                                   .destroy = obj_destroy};

static wref_object *obj_new(void)
{
    wref_object *ob = wref_new(&obj_type);
    if (!ob)
        abort();
    g_made++;
    return ob;
}

struct pool {
    wref_object *ob[POOL];    /* strong references the harness owns (objects) */
    wref_object *ref[POOL];   /* strong references to weakrefs (no callback) */
    int n_ob, n_ref;
};

static int g_memfd = -1;

static void die(const char *what, size_t step)
{
    fprintf(stderr, "fuzz_checker: %s (at operation %zu)\n", what, step);
    abort();
}

static int cb_fn(wref_object *weakref, void *data)
{
    (void)weakref;
    (void)data;
    return 0;
}

/* Runs one misuse with stderr switched to the memory file; returns the kinds it reported as
 * text ("kind kind ..."), in a static buffer. */
static const char *captured(void (*misuse)(void *), void *arg)
{
    static char out[4096];
    fflush(stderr);
    int saved = dup(2);
    if (saved < 0 || ftruncate(g_memfd, 0) != 0 || lseek(g_memfd, 0, SEEK_SET) != 0 || dup2(g_memfd, 2) < 0)
        abort();
    misuse(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char text[1 << 16];
    ssize_t n = pread(g_memfd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = 0;
    out[0] = 0;
    for (const char *p = text; (p = strstr(p, "ERROR: wref-check: ")) != NULL;) {
        p += strlen("ERROR: wref-check: ");
        size_t k = strcspn(p, " \n");
        if (strlen(out) + k + 2 < sizeof out) {
            if (out[0])
                strcat(out, " ");
            strncat(out, p, k);
        }
    }
    return out;
}

static void misuse_use_after_free(void *arg)
{
    (void)arg;
    wref_object *ob = obj_new();
    wref_decref(ob);
    wref_object *volatile stale = ob;
    wref_incref(stale);   /* refused and reported */
}

static void misuse_dangling_borrow(void *arg)
{
    (void)arg;
    wref_object *ob = obj_new();
    wref_object *r = wref_ref_new(ob, NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    wref_object *borrowed = wref_get_object(r);
#pragma GCC diagnostic pop
    wref_decref(ob);           /* the object dies: the borrow dangles */
    wref_incref(borrowed);     /* refused and reported */
    wref_check_borrow_end(borrowed);   /* done with it: a later object at that address is not this borrow */
    wref_decref(r);
}

/* invalid-object is reported once per address (docs/checker.md), and one fuzzing process
 * injects it many times: each injection uses a new address, in an inaccessible reservation
 * (the checker reports an unknown address without reading it). */
static void misuse_invalid_object(void *arg)
{
    (void)arg;
    enum { RESERVATION = 1u << 30, STEP = 64 };
    static char *region;
    static size_t next;
    if (!region) {
        region = mmap(NULL, RESERVATION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (region == MAP_FAILED)
            abort();
    }
    wref_object *volatile p = (wref_object *)(void *)(region + next);
    next = (next + STEP) % RESERVATION;
    wref_incref(p);
}

static void misuse_clear_live(void *arg)
{
    (void)arg;
    wref_object *ob = obj_new();   /* a fresh one: "reported once per object" */
    wref_object *r = wref_ref_new(ob, NULL);
    wref_clear_weakrefs(ob);   /* live: reported, nothing cleared, WREF_ERR_SYSTEM set */
    wref_err_clear();
    wref_decref(r);
    wref_decref(ob);
}

static void misuse_leak(void *arg)
{
    (void)arg;
    (void)wref_new(&obj_type);   /* never released (and not counted in g_made) */
    (void)wref_check_leaks();
}

static void pool_release(struct pool *p)
{
    for (int i = 0; i < p->n_ref; i++)
        wref_decref(p->ref[i]);
    for (int i = 0; i < p->n_ob; i++)
        wref_decref(p->ob[i]);
    p->n_ob = p->n_ref = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    wref__checker_init();
    wref__opt.exitcode = 0;   /* the injected findings are expected */
    wref__opt.fold_repeats = 0;   /* each input's injected finding is read back: never a repeat of an earlier input's */
    g_memfd = memfd_create("fuzz_checker", MFD_CLOEXEC);
    if (g_memfd < 0 || !wref_check_active())
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_memfd < 0)
        LLVMFuzzerInitialize(NULL, NULL);
    struct pool p = {0};
    int injected = 0;
    size_t count = wref__report_count();   /* the previous input ended with no leak (below) */
    for (size_t i = 0; i < size && i < 256; i++) {
        uint8_t op = data[i], arg = i + 1 < size ? data[i + 1] : 0;
        switch (op % 10) {
        case 0:   /* a new object */
            if (p.n_ob < POOL)
                p.ob[p.n_ob++] = obj_new();
            break;
        case 1:   /* a weakref without callback (shared) */
            if (p.n_ob && p.n_ref < POOL) {
                wref_object *r = (arg & 1) ? wref_proxy_new(p.ob[arg % p.n_ob], NULL)
                                           : wref_ref_new(p.ob[arg % p.n_ob], NULL);
                if (!r)
                    die("weakref creation failed", i);
                p.ref[p.n_ref++] = r;
            }
            i++;
            break;
        case 2: { /* a strong reference through a weakref, used and dropped */
            if (p.n_ref) {
                wref_object *o = NULL;
                if (wref_get_ref(p.ref[arg % p.n_ref], &o) == 1) {
                    wref_incref(o);
                    wref_decref(o);
                    wref_decref(o);
                }
            }
            i++;
            break;
        }
        case 3:   /* a borrowed pointer used while the object is alive, then ended */
            if (p.n_ref) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
                wref_object *b = wref_get_object(p.ref[arg % p.n_ref]);
#pragma GCC diagnostic pop
                if (b != wref_none()) {
                    wref_incref(b);
                    wref_decref(b);
                    (void)wref_refcount(b);
                    wref_check_borrow_end(b);
                }
            }
            i++;
            break;
        case 4:   /* drop an object (its weakrefs die with it) */
            if (p.n_ob) {
                int k = arg % p.n_ob;
                wref_decref(p.ob[k]);
                p.ob[k] = p.ob[--p.n_ob];
            }
            i++;
            break;
        case 5:   /* drop a weakref */
            if (p.n_ref) {
                int k = arg % p.n_ref;
                wref_decref(p.ref[k]);
                p.ref[k] = p.ref[--p.n_ref];
            }
            i++;
            break;
        case 6:   /* clear the weakrefs of a live object, without callbacks (none have any) */
            if (p.n_ob)
                wref_clear_weakrefs_no_callbacks(p.ob[arg % p.n_ob]);
            i++;
            break;
        case 7: { /* a weakref with a callback, dropped before its referent */
            if (p.n_ob) {
                wref_object *cb = wref_callback_new(cb_fn, NULL, NULL);
                wref_object *r = wref_ref_new(p.ob[arg % p.n_ob], cb);
                wref_decref(cb);
                (void)wref_ref_callback(r);
                wref_decref(r);
            }
            i++;
            break;
        }
        case 8:   /* several weakrefs listed */
            if (p.n_ob) {
                wref_object *out[4];
                size_t n = wref_weakrefs(p.ob[arg % p.n_ob], out, 4);
                for (size_t k = 0; k < n && k < 4; k++)
                    wref_xdecref(out[k]);
            }
            i++;
            break;
        case 9: { /* inject a misuse: one per input (a report costs far more than an operation) */
            if (injected++) {
                i++;
                break;
            }
            static const char *const kinds[] = {"use-after-free", "dangling-borrow", "invalid-object",
                                                "clear-live", "leak"};
            unsigned m = arg % 5;
            if (m == 4)
                pool_release(&p);   /* the census would report the pool's live objects too */
            void (*fn[])(void *) = {misuse_use_after_free, misuse_dangling_borrow, misuse_invalid_object,
                                    misuse_clear_live, misuse_leak};
            size_t before = wref__report_count();
            const char *got = captured(fn[m], NULL);
            if (wref__report_count() != before + 1 || strcmp(got, kinds[m]) != 0) {
                fprintf(stderr, "fuzz_checker: injected %s: %zu finding(s) reported: '%s'\n", kinds[m],
                        wref__report_count() - before, got);
                die("wrong finding for an injected misuse", i);
            }
            count = wref__report_count();
            i++;
            break;
        }
        }
        if (wref__report_count() != count)
            die("a finding on a valid sequence (false report; see stderr)", i);
    }
    pool_release(&p);
    if (wref__report_count() != count)
        die("a finding while releasing the pool", size);
    if (g_destroyed != g_made)
        die("a valid sequence leaked an object (destroyed fewer than it made)", size);
    return 0;
}
