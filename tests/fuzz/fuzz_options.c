/* fuzz_options.c: libFuzzer target for the WREF_CHECK_OPTIONS parser (src/check/engine/options.c,
 * compiled in directly, as tests/unit/checker_modules.cmake does).
 *
 * The input, as a NUL-terminated string, is parsed into a struct holding the defaults. The
 * parser must never crash, and afterwards:
 *   - every string option is NUL-terminated within WREF__OPTION_STRING_MAX;
 *   - every bool is 0 or 1; every int/uint/size option with a WREF__OPTION_RANGE row is in
 *     range; every enum option holds one of its own WREF__OPTION_ENUM values;
 *   - warn was called exactly as many times as the return value says, each time with one line
 *     (NUL-terminated, no newline);
 *   - parsing is deterministic (the same text on the same defaults gives the same fields and
 *     the same warnings) and idempotent (parsing the text again onto the result changes no
 *     field: the last valid value of each option wins, bad values keep the current one);
 *   - parsing onto a non-default struct (all fields changed) keeps the invariants too.
 * A violation prints what differed and calls abort().
 *
 * A warning that spans several lines is a failure: a bad quoted value with a newline used to
 * be echoed verbatim (fixed; regression seed corpus/options/newline-in-warning). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/engine/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text) __attribute__((noreturn));
static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_options: %s\n  text: \"%.300s\"\n", what, text);
    abort();
}

/* ---- warnings -------------------------------------------------------------------------------- */

struct warns {
    int n;
    uint64_t hash;   /* FNV-1a over every line */
};

static void on_warn(const char *line, void *arg)
{
    struct warns *w = arg;
    size_t len = strnlen(line, 4096);
    if (len == 4096)
        fail("a warning line is not NUL-terminated within 4096 bytes", "");
    if (memchr(line, '\n', len))
        fail("a warning line contains a newline", line);
    w->n++;
    for (size_t i = 0; i < len; i++)
        w->hash = (w->hash ^ (unsigned char)line[i]) * 0x100000001b3ull;
    w->hash = (w->hash ^ 0xff) * 0x100000001b3ull;
}

/* ---- invariants from the table ------------------------------------------------------------- */

static const struct {
    const char *option;
    enum wref__option_value value;
} enum_values[] = {
#define WREF__OPTION_ENUM(option, constant, value) {#option, WREF__##constant},
#include "check/engine/options.def"
};

static void check_enum(const char *name, enum wref__option_value v, const char *text)
{
    for (size_t i = 0; i < sizeof enum_values / sizeof enum_values[0]; i++)
        if (strcmp(enum_values[i].option, name) == 0 && enum_values[i].value == v)
            return;
    char msg[160];
    snprintf(msg, sizeof msg, "enum option '%s' holds %d, not one of its values", name, (int)v);
    fail(msg, text);
}

static void check_string(const char *name, const char *s, const char *text)
{
    if (!memchr(s, 0, WREF__OPTION_STRING_MAX)) {
        char msg[160];
        snprintf(msg, sizeof msg, "string option '%s' is not NUL-terminated", name);
        fail(msg, text);
    }
}

static void check_bool(const char *name, const bool *b, const char *text)
{
    unsigned char raw;
    memcpy(&raw, b, 1);
    if (raw > 1) {
        char msg[160];
        snprintf(msg, sizeof msg, "bool option '%s' has the representation %u", name, raw);
        fail(msg, text);
    }
}

static void check_range(const char *name, long long v, long long min, long long max, const char *text)
{
    if (v < min || v > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "option '%s' = %lld is outside [%lld, %lld]", name, v, min, max);
        fail(msg, text);
    }
}

#define CHECK_bool(name) check_bool(#name, &o->name, text);
#define CHECK_int(name)
#define CHECK_uint(name)
#define CHECK_size(name)
#define CHECK_string(name) check_string(#name, o->name, text);
#define CHECK_enum(name) check_enum(#name, o->name, text);

static void check_invariants(const struct wref__options *o, const char *text)
{
#define WREF__OPTION(type, name, default_, help) CHECK_##type(name)
#define WREF__OPTION_RANGE(option, min, max) \
    check_range(#option, (long long)o->option, (long long)(min), (long long)(max), text);
#include "check/engine/options.def"
    for (size_t i = 0; i < sizeof enum_values / sizeof enum_values[0]; i++)
        if (strcmp(wref__option_value_name(enum_values[i].value), "?") == 0)
            fail("an enum value has no name", text);
}

/* ---- comparing two structs field by field (padding is not compared) ------------------------ */

#define EQ_bool(name) (a->name == b->name)
#define EQ_int(name) (a->name == b->name)
#define EQ_uint(name) (a->name == b->name)
#define EQ_size(name) (a->name == b->name)
#define EQ_string(name) (strcmp(a->name, b->name) == 0)
#define EQ_enum(name) (a->name == b->name)

static const char *first_difference(const struct wref__options *a, const struct wref__options *b)
{
#define WREF__OPTION(type, name, default_, help) \
    if (!EQ_##type(name))                        \
        return #name;
#include "check/engine/options.def"
    return NULL;
}

/* Every field changed from its default to another valid value. */
#define ALT_bool(name) o->name = !o->name;
#define ALT_int(name) o->name = o->name == 0 ? 1 : 0;
#define ALT_uint(name) o->name = (unsigned)alt_number(#name, o->name);
#define ALT_size(name) o->name = (size_t)alt_number(#name, o->name);
#define ALT_string(name) snprintf(o->name, sizeof o->name, "alt-%s", #name);
#define ALT_enum(name) alt_enum(#name, &o->name);

/* A value other than v that the option accepts: 1 or 2 when no range says otherwise, else its
 * minimum or the next value. */
static long long alt_number(const char *name, long long v)
{
    long long min = 1, max = 2;
    if (!wref__option_range(name, &min, &max) || min < 1)
        min = 1;
    return v == min ? min + 1 : min;
}

static void alt_enum(const char *name, enum wref__option_value *v)
{
    for (size_t i = 0; i < sizeof enum_values / sizeof enum_values[0]; i++) {
        if (strcmp(enum_values[i].option, name) == 0 && enum_values[i].value != *v) {
            *v = enum_values[i].value;
            return;
        }
    }
}

static void alternative_values(struct wref__options *o)
{
#define WREF__OPTION(type, name, default_, help) ALT_##type(name)
#include "check/engine/options.def"
}

/* ---- the entry point ------------------------------------------------------------------------- */

static void parse(struct wref__options *o, const char *text, struct warns *w)
{
    memset(w, 0, sizeof *w);
    w->hash = 0xcbf29ce484222325ull;
    int n = wref__options_parse(o, text, on_warn, w);
    if (n != w->n) {
        char msg[120];
        snprintf(msg, sizeof msg, "returned %d warnings but called warn %d times", n, w->n);
        fail(msg, text);
    }
    check_invariants(o, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;

    static struct wref__options a, b, c;
    struct warns wa, wb, wc;
    wref__options_defaults(&a);
    check_invariants(&a, "(defaults)");
    parse(&a, text, &wa);

    wref__options_defaults(&b);
    parse(&b, text, &wb);
    const char *diff = first_difference(&a, &b);
    if (diff || wa.n != wb.n || wa.hash != wb.hash) {
        char msg[160];
        snprintf(msg, sizeof msg, "not deterministic (field %s, warnings %d/%d)", diff ? diff : "-",
                 wa.n, wb.n);
        fail(msg, text);
    }

    parse(&b, text, &wb);   /* again, onto its own result */
    diff = first_difference(&a, &b);
    if (diff || wa.n != wb.n) {
        char msg[160];
        snprintf(msg, sizeof msg, "not idempotent (field %s, warnings %d/%d)", diff ? diff : "-",
                 wa.n, wb.n);
        fail(msg, text);
    }

    wref__options_defaults(&c);
    alternative_values(&c);
    check_invariants(&c, "(alternative values)");
    parse(&c, text, &wc);
    if (wc.n != wa.n)
        fail("the number of warnings depends on the values parsed onto", text);

    if (wref__options_parse(&c, NULL, NULL, NULL) != 0)
        fail("parsing NULL gave warnings", "(NULL)");
    free(text);
    return 0;
}
