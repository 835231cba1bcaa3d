/* test_checker_modules.c: unit tests of the checker's own modules through their contracts in
 * the engine's headers (src/check/engine/): registry, heap and quarantine, borrows, census,
 * report, JSON and suppressions.
 *
 * The executable is a checked program: it is linked with the runtime and every checker source
 * compiled as libwref-check is (WREF_CHECKED, checker_modules.cmake), so the public API runs
 * the real hooks, and the tests look at the modules' state through those headers. CTest sets
 * WREF_CHECK_OPTIONS (report=text,json, log_path, suppressions, exitcode=0): findings go to
 * <log_path>.<pid> and <log_path>.<pid>.json, which the tests read back. Each test accounts
 * only for what it adds (counts before and after), so the order of the tests does not matter.
 * The checker ends the process at exit with its exitcode when there were findings, so main
 * exits by itself, with 1, when a test failed. */
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

#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers -------------------------------------------------------------------------------- */

struct node {
    wref_object ob_base;
    wref_object *next;   /* strong */
    wref_object *next2;  /* strong */
};

static void node_destroy(wref_object *self)
{
    struct node *n = (struct node *)self;
    wref_xdecref(n->next);
    wref_xdecref(n->next2);
}

static int node_traverse(wref_object *self, wref_visit_fn visit, void *arg)
{
    struct node *n = (struct node *)self;
    int r = 0;
    if (n->next && (r = visit(n->next, arg)) != 0)
        return r;
    return n->next2 ? visit(n->next2, arg) : 0;
}

static const wref_type node_type = {.name = "UnitNode", .size = sizeof(struct node), .flags = WREF_TYPE_WEAKREFABLE,
                                    .destroy = node_destroy, .traverse = node_traverse};
static const wref_type plain_type = {.name = "UnitPlain", .size = 40, .flags = WREF_TYPE_WEAKREFABLE};
/* leak:type=UnitSuppressed is in the suppressions file CTest passes */
static const wref_type suppressed_type = {.name = "UnitSuppressed", .size = 32};

struct rec_view {
    int found;
    wref__rec_copy copy;
};

static int copy_rec(wref__rec *rec, void *arg)
{
    struct rec_view *v = arg;
    v->found = rec != NULL;
    if (rec)
        v->copy = wref__rec_snapshot(rec);
    return 0;
}

static struct rec_view record_of(const void *ob)
{
    struct rec_view v = {0};
    wref__registry_with(ob, copy_rec, &v);
    return v;
}

/* The whole text report so far (<log_path>.<pid>); malloc'd, NUL-terminated. */
static char *read_text_log(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s.%d", wref__opt.log_path, (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ---- registry ------------------------------------------------------------------------------- */

/* Every object, weakref and callback object gets a record with a new serial (1, 2, ... in
 * creation order, never reused), its address, type and size; it stays findable by address
 * while the memory is quarantined, and its state follows the object's life. */
static void registry_records_follow_objects(void **state)
{
    (void)state;
    size_t live0 = wref__registry_live_count();
    wref_object *a = wref_new(&plain_type), *b = wref_new(&plain_type);
    assert_non_null(a);
    assert_non_null(b);
    wref_object *r = wref_ref_new(a, NULL);
    assert_non_null(r);
    struct rec_view va = record_of(a), vb = record_of(b), vr = record_of(r);
    assert_true(va.found && vb.found && vr.found);
    assert_int_equal(vb.copy.serial, va.copy.serial + 1);
    assert_int_equal(vr.copy.serial, vb.copy.serial + 1);   /* weakrefs are numbered too */
    assert_ptr_equal(va.copy.addr, (uintptr_t)a);
    assert_ptr_equal(va.copy.type, &plain_type);
    assert_int_equal(va.copy.size, 40);
    assert_int_equal(va.copy.state, WREF__ALIVE);
    assert_string_equal(wref__type_name(&va.copy), "UnitPlain");
    assert_int_equal(wref__registry_live_count(), live0 + 3);
    assert_false(wref__registry_degraded());

    /* a pointer wref never allocated has no record */
    static long not_an_object[8];
    assert_false(record_of(not_an_object).found);

    wref_decref(a);   /* dies: memory quarantined, the record stays, marked freed */
    struct rec_view dead = record_of(a);
    assert_true(dead.found);
    assert_int_equal(dead.copy.serial, va.copy.serial);
    assert_int_equal(dead.copy.state, WREF__FREED);
    assert_int_not_equal(dead.copy.st_destroyed, 0);   /* a destroyed stack was recorded */
    assert_int_equal(wref_get_ref(r, &(wref_object *){NULL}), 0);
    wref_decref(r);
    wref_decref(b);
}

static int rec_ptr(wref__rec *rec, void *arg)
{
    *(wref__rec **)arg = rec;
    return 0;
}

/* The address index (registry.c): the lock-free lookup finds each object's own record, the one
 * the locked lookup finds, without reading the pointed-to memory; a pointer inside an object
 * (in its first 16-byte granule) or into inaccessible memory has no record; a record that left
 * the table is found by neither. */
static void registry_index_finds_records(void **state)
{
    (void)state;
    enum { N = 5000 };
    wref_object **obs = malloc(N * sizeof *obs);
    assert_non_null(obs);
    for (int i = 0; i < N; i++) {
        obs[i] = wref_new(i % 2 ? &plain_type : &node_type);
        assert_non_null(obs[i]);
    }
    for (int i = 0; i < N; i++) {
        wref__rec *locked = NULL, *peek = wref__registry_peek(obs[i]);
        wref__registry_with(obs[i], rec_ptr, &locked);
        assert_non_null(peek);
        assert_ptr_equal(peek, locked);
        assert_ptr_equal(peek->addr, (uintptr_t)obs[i]);
        const char *inside = (const char *)obs[i] + 8;   /* the same granule, not an object */
        assert_null(wref__registry_peek(inside));
        assert_false(record_of(inside).found);
    }
    /* inaccessible memory: the lookup reads none of it */
    void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(none != MAP_FAILED);
    assert_null(wref__registry_peek((char *)none + 64));
    assert_false(record_of((char *)none + 64).found);
    munmap(none, 4096);

    /* freed: quarantined records stay findable (state FREED); returned ones leave the index */
    wref_object *first = obs[0];
    for (int i = 0; i < N; i++)
        wref_decref(obs[i]);
    wref__rec *q = wref__registry_peek(first);
    assert_non_null(q);
    assert_int_equal(__atomic_load_n(&q->state, __ATOMIC_ACQUIRE), WREF__FREED);
    wref__heap_release_held();   /* the quarantine's memory is returned */
    assert_null(wref__registry_peek(first));
    assert_false(record_of(first).found);
    free(obs);
}

/* ---- heap and quarantine ----------------------------------------------------------------------- */

/* Object memory is zeroed, followed by an intact redzone; a byte written past the end is found
 * at its offset; freed memory is not handed out again while it is quarantined. */
static void heap_redzone_and_quarantine(void **state)
{
    (void)state;
    wref_object *a = wref_new(&plain_type);
    assert_non_null(a);
    const unsigned char *bytes = (const unsigned char *)a;
    for (size_t i = sizeof(wref_object); i < plain_type.size; i++)
        assert_int_equal(bytes[i], 0);
    assert_int_equal(wref__heap_check_redzone(a), -1);
    ((volatile unsigned char *)a)[plain_type.size + 3] ^= 0x5a;   /* past the end */
    assert_int_equal(wref__heap_check_redzone(a), 3);
    ((volatile unsigned char *)a)[plain_type.size + 3] ^= 0x5a;   /* restored */
    assert_int_equal(wref__heap_check_redzone(a), -1);

    uintptr_t freed = (uintptr_t)a;
    wref_decref(a);
    /* the default quarantine (64 MB) keeps the chunk: 1000 new objects of the same size get
     * other addresses */
    wref_object *later[1000];
    for (int i = 0; i < 1000; i++) {
        later[i] = wref_new(&plain_type);
        assert_non_null(later[i]);
        assert_true((uintptr_t)later[i] != freed);
    }
    for (int i = 0; i < 1000; i++)
        wref_decref(later[i]);
}

/* ---- borrows ---------------------------------------------------------------------------------- */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void *borrow_on_other_thread(void *arg)
{
    assert_non_null(wref_get_object(arg));
    return NULL;
}

static void borrow_on_new_thread(wref_object *ref)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, borrow_on_other_thread, ref), 0);
    pthread_join(t, NULL);
}

/* The thread numbers of the open borrower slots of ob's record, as a bit set. */
static unsigned borrower_threads(const wref__rec_copy *c)
{
    unsigned set = 0;
    for (int i = 0; i < WREF__BORROWERS; i++)
        if (c->borrow & WREF__BORROW_USED(i)) {
            assert_int_not_equal(c->st_borrow[i], 0);   /* each with its borrow stack */
            set |= 1u << c->tno_borrow[i];
        }
    return set;
}

/* wref_get_object writes the borrow into the object's own record: the borrowing thread and
 * its stack, for the last two borrowing threads (a third replaces the older); borrow_pick
 * names the using thread's own borrow, else the latest; wref_check_borrow_end ends only the
 * calling thread's borrow. */
static void borrows_live_in_the_record(void **state)
{
    (void)state;
    wref_object *ob = wref_new(&plain_type);
    wref_object *r = wref_ref_new(ob, NULL);
    assert_non_null(r);
    struct rec_view v = record_of(ob);
    assert_false(wref__borrowed(&v.copy));
    assert_ptr_equal(wref_get_object(r), ob);
    unsigned me = wref__thread_no();
    wref__rec_copy c = record_of(ob).copy;
    assert_int_equal(borrower_threads(&c), 1u << me);
    v = record_of(r);
    assert_false(wref__borrowed(&v.copy));   /* the weakref itself is not borrowed */

    borrow_on_new_thread(r);   /* thread A */
    c = record_of(ob).copy;
    unsigned both = borrower_threads(&c);
    assert_int_equal(__builtin_popcount(both), 2);
    unsigned a = (unsigned)__builtin_ctz(both & ~(1u << me));
    int other, pick = wref__borrow_pick(&c, me, &other);
    assert_int_equal(c.tno_borrow[pick], me);            /* the user's own borrow */
    assert_int_equal(c.tno_borrow[other], a);
    pick = wref__borrow_pick(&c, 999, &other);
    assert_int_equal(c.tno_borrow[pick], a);             /* else the latest */

    borrow_on_new_thread(r);   /* thread B replaces the older borrower: this thread */
    c = record_of(ob).copy;
    unsigned now = borrower_threads(&c);
    assert_int_equal(__builtin_popcount(now), 2);
    assert_true(now & (1u << a));
    assert_false(now & (1u << me));

    assert_ptr_equal(wref_get_object(r), ob);   /* this thread again: replaces A */
    wref_check_borrow_end(ob);                  /* ends only this thread's */
    c = record_of(ob).copy;
    now = borrower_threads(&c);
    assert_int_equal(__builtin_popcount(now), 1);
    assert_false(now & ((1u << me) | (1u << a)));   /* B's remains */
    wref_decref(r);
    wref_decref(ob);
}

/* Leaving the quarantine with a borrow open, a destroyed object is pinned: its record stays
 * findable (FREED, PINNED) and its memory is not reused; without the borrow it is returned. */
static void borrowed_memory_is_pinned(void **state)
{
    (void)state;
    unsigned saved = wref__opt.quarantine_mb;
    wref__opt.quarantine_mb = 0;
    wref_object *ob = wref_new(&plain_type), *plain = wref_new(&plain_type);
    wref_object *r = wref_ref_new(ob, NULL);
    assert_ptr_equal(wref_get_object(r), ob);
    wref_decref(r);
    wref_decref(ob);
    wref_decref(plain);
    struct rec_view v = record_of(ob);
    assert_true(v.found);
    assert_int_equal(v.copy.state, WREF__FREED);
    assert_true(v.copy.borrow & WREF__BORROW_PINNED);
    assert_false(record_of(plain).found);   /* no borrow: returned at once */
    for (int i = 0; i < 100; i++) {
        wref_object *n = wref_new(&plain_type);
        assert_true(n != ob);
        wref_decref(n);
    }
    wref__opt.quarantine_mb = saved;
}
#pragma GCC diagnostic pop

/* ---- census ------------------------------------------------------------------------------------ */

/* wref_check_leaks reports each leak once: a separate leaked object is one finding, a cycle one
 * finding (its members are not reported again), what only the cycle reaches is counted in it;
 * a second census reports nothing new. Cycles are named from their lowest serial. */
static void census_leaks_and_cycles(void **state)
{
    (void)state;
    (void)wref_check_leaks();   /* whatever other tests left is reported now, not below */
    size_t before = wref__report_count();

    wref_object *lone = wref_new(&plain_type);   /* leaked, alone */
    assert_non_null(lone);
    /* 20 three-node cycles; in every other one the links run the other way, so the first
     * member the registry meets is not always the oldest */
    enum { CYCLES = 20 };
    for (int c = 0; c < CYCLES; c++) {
        wref_object *n[3];
        for (int i = 0; i < 3; i++)
            n[i] = wref_new(&node_type);
        for (int i = 0; i < 3; i++) {
            int to = c % 2 ? (i + 1) % 3 : (i + 2) % 3;
            wref_incref(n[to]);
            ((struct node *)n[i])->next = n[to];
        }
        wref_object *leaf = wref_new(&plain_type);   /* reachable only from the cycle */
        ((struct node *)n[1])->next2 = leaf;
        for (int i = 0; i < 3; i++)
            wref_decref(n[i]);
    }
    /* one finding per cycle, one for the lone object, and one indirect-leak finding for the
     * 20 leaves (grouped by type and creation stack; each is also counted in its cycle) */
    size_t found = wref_check_leaks();
    assert_int_equal(found, CYCLES + 2);
    assert_int_equal(wref__report_count(), before + CYCLES + 2);
    assert_int_equal(wref_check_leaks(), 0);   /* reported once */

    char *log = read_text_log();
    /* every "reference cycle: UnitNode#a -> UnitNode#b -> UnitNode#c -> UnitNode#a" starts at
     * the lowest of its serials */
    size_t cycles = 0;
    for (const char *p = log; (p = strstr(p, "  reference cycle: UnitNode#")) != NULL; p++) {
        unsigned long s[4];
        int k = sscanf(p, "  reference cycle: UnitNode#%lu -> UnitNode#%lu -> UnitNode#%lu -> UnitNode#%lu",
                       &s[0], &s[1], &s[2], &s[3]);
        assert_int_equal(k, 4);
        assert_int_equal(s[3], s[0]);
        assert_true(s[0] < s[1] && s[0] < s[2]);
        cycles++;
    }
    assert_int_equal(cycles, CYCLES);
    assert_int_equal(count_substr(log, "a reference cycle of 3 object(s), 120 byte(s), is alive at exit; "
                                       "1 more object(s) (40 byte(s)) are reachable only from it (indirect)"),
                     CYCLES);
    assert_int_equal(count_substr(log, "indirect leak of 800 byte(s) in 20 UnitPlain object(s), reachable only "
                                       "from other leaked objects"), 1);
    free(log);
}

/* ---- suppressions ------------------------------------------------------------------------------- */

/* leak:type=UnitSuppressed (the suppressions file) silences exactly that type's leaks. */
static void suppressions_match_type_and_kind(void **state)
{
    (void)state;
    assert_true(wref__suppress_match_type(WREF__K_LEAK, "UnitSuppressed"));
    assert_false(wref__suppress_match_type(WREF__K_LEAK, "UnitPlain"));
    assert_false(wref__suppress_match_type(WREF__K_USE_AFTER_FREE, "UnitSuppressed"));
    (void)wref_check_leaks();
    size_t before = wref__report_count();
    assert_non_null(wref_new(&suppressed_type));   /* leaked, suppressed */
    assert_int_equal(wref_check_leaks(), 0);
    assert_int_equal(wref__report_count(), before);
    assert_non_null(wref_new(&plain_type));        /* leaked, reported */
    assert_int_equal(wref_check_leaks(), 1);
    wref__buf b = {0};
    wref__suppress_table_text(&b);
    assert_non_null(b.data);
    assert_non_null(strstr(b.data, "leak:type=UnitSuppressed"));
    wref__buf_free(&b);
}

/* ---- report ------------------------------------------------------------------------------------ */

/* A finding is written whole: its head names the kind, the object and the thread, it ends with
 * its SUMMARY line, and the report counts it. */
static void report_writes_whole_findings(void **state)
{
    (void)state;
    assert_string_equal(wref__kind_name(WREF__K_DANGLING_BORROW), "dangling-borrow");
    assert_string_equal(wref__kind_name(WREF__K_USE_AFTER_FREE), "use-after-free");
    assert_string_equal(wref__kind_name(WREF__K_CALLBACK_ERROR), "callback-error");
    size_t before = wref__report_count();
    char *log0 = read_text_log();
    size_t heads0 = count_substr(log0, "ERROR: wref-check: use-after-free on UnitPlain#");
    free(log0);

    wref_object *ob = wref_new(&plain_type);
    uint64_t serial = record_of(ob).copy.serial;
    wref_decref(ob);
    wref_incref(ob);   /* use after free: reported, the call refused */
    assert_int_equal(wref__report_count(), before + 1);

    char *log = read_text_log();
    assert_int_equal(count_substr(log, "ERROR: wref-check: use-after-free on UnitPlain#"), heads0 + 1);
    char head[128];
    snprintf(head, sizeof head, "==%d==ERROR: wref-check: use-after-free on UnitPlain#%llu at 0x", (int)getpid(),
             (unsigned long long)serial);
    const char *h = strstr(log, head);
    assert_non_null(h);
    assert_non_null(strstr(h, "(40-byte object) in thread T0"));
    const char *end = strstr(h, "\nSUMMARY: wref-check: use-after-free in ");
    assert_non_null(end);
    const char *destroyed = strstr(h, "\ndestroyed (the last reference dropped) by thread T0 here:\n");
    const char *created = strstr(h, "\ncreated by thread T0 here:\n");
    assert_true(destroyed && created && destroyed < created && created < end);
    free(log);
}

/* ---- JSON -------------------------------------------------------------------------------------- */

static void put_buf(void *ctx, const char *p, size_t n)
{
    wref__buf *b = ctx;
    wref__buf_printf(b, "%.*s", (int)n, p);
}

/* String literals are valid JSON for any bytes: a parser gives back the same text for UTF-8
 * input, U+FFFD for bytes that are not UTF-8. */
static void json_strings_escape_everything(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"quote \" backslash \\ slash /", "quote \" backslash \\ slash /"},
        {"tab\tnewline\ncr\rbell\a\x01\x1f", "tab\tnewline\ncr\rbell\a\x01\x1f"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"bad \xff byte", "bad \xef\xbf\xbd byte"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wref__buf b = {0};
        wref__buf_json_string(&b, cases[i].in);
        assert_non_null(b.data);
        json_error_t err;
        json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, &err);
        if (!v)
            fail_msg("case %zu: %s is not JSON: %s", i, b.data, err.text);
        assert_true(json_is_string(v));
        if (strcmp(json_string_value(v), cases[i].out) != 0)
            fail_msg("case %zu: %s decodes to '%s'", i, b.data, json_string_value(v));
        json_decref(v);
        /* wref__json_escape writes the same body, without the quotes */
        wref__buf e = {0};
        wref__json_escape(cases[i].in, put_buf, &e);
        assert_int_equal(e.len + 2, b.len);
        assert_memory_equal(e.data ? e.data : "", b.data + 1, e.len);
        wref__buf_free(&e);
        wref__buf_free(&b);
    }
    wref__buf n = {0};
    wref__buf_json_string(&n, NULL);
    assert_string_equal(n.data, "null");
    wref__buf_free(&n);
    assert_int_equal(wref__utf8_len((const unsigned char *)"\xc3\xa9"), 2);
    assert_int_equal(wref__utf8_len((const unsigned char *)"\xf0\x9f\x98\x80"), 4);
    assert_int_equal(wref__utf8_len((const unsigned char *)"\xc0\xaf"), 0);   /* overlong */
    assert_int_equal(wref__utf8_len((const unsigned char *)"\xed\xa0\x80"), 0);   /* surrogate */
}

/* The JSON report is a valid document after every finding and lists the same findings as the
 * text report, in order. */
static void json_report_follows_findings(void **state)
{
    (void)state;
    wref_object *ob = wref_new(&plain_type);
    wref_decref(ob);
    wref_decref(ob);   /* use after free */
    char path[600];
    snprintf(path, sizeof path, "%s.%d.json", wref__opt.log_path, (int)getpid());
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    if (!doc)
        fail_msg("%s: %s (line %d)", path, err.text, err.line);
    json_t *findings = json_object_get(doc, "findings");
    assert_true(json_is_array(findings));
    assert_int_equal(json_array_size(findings), wref__report_count());
    assert_true(json_is_false(json_object_get(doc, "complete")));   /* the process goes on */
    char *log = read_text_log();
    const char *p = log;
    for (size_t i = 0; i < json_array_size(findings); i++) {
        json_t *f = json_array_get(findings, i);
        assert_int_equal(json_integer_value(json_object_get(f, "id")), (json_int_t)i + 1);
        char head[96];
        snprintf(head, sizeof head, "==%d==ERROR: wref-check: %s", (int)getpid(),
                 json_string_value(json_object_get(f, "kind")));
        p = strstr(p, head);
        if (!p)
            fail_msg("JSON finding %zu (%s) is not the text report's next finding", i + 1, head);
        p++;
    }
    json_t *last = json_array_get(findings, json_array_size(findings) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "kind")), "use-after-free");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "object"), "serial")),
                     (json_int_t)record_of(ob).copy.serial);
    free(log);
    json_decref(doc);
}

int main(void)
{
    if (!wref_check_active()) {
        fprintf(stderr, "test_checker_modules: the checker is not active\n");
        return 1;
    }
    if (!wref__opt.log_path[0] || !wref__opt.suppressions[0]) {
        fprintf(stderr, "test_checker_modules: needs WREF_CHECK_OPTIONS with log_path and suppressions (CTest sets them)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_records_follow_objects),
        cmocka_unit_test(registry_index_finds_records),
        cmocka_unit_test(heap_redzone_and_quarantine),
        cmocka_unit_test(borrows_live_in_the_record),
        cmocka_unit_test(borrowed_memory_is_pinned),
        cmocka_unit_test(census_leaks_and_cycles),
        cmocka_unit_test(suppressions_match_type_and_kind),
        cmocka_unit_test(report_writes_whole_findings),
        cmocka_unit_test(json_strings_escape_everything),
        cmocka_unit_test(json_report_follows_findings),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fflush(NULL);
    if (failed)
        _exit(1);   /* before the checker's exit work, which would exit with its exitcode */
    return 0;
}
