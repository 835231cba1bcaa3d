/* Unit tests for src/check/engine/options.c: defaults, parsing each type, warnings, help text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check/engine/options.h"

/* Collects warning lines. */
struct warnings {
    int count;
    char lines[8][1024];
};

static void collect(const char *line, void *arg)
{
    struct warnings *w = arg;
    if (w->count < 8)
        snprintf(w->lines[w->count], sizeof w->lines[0], "%s", line);
    w->count++;
}

static int parse(struct wref__options *o, const char *text, struct warnings *w)
{
    memset(w, 0, sizeof *w);
    int n = wref__options_parse(o, text, collect, w);
    assert_int_equal(n, w->count); /* returns the number of warn calls */
    return n;
}

/* The documented defaults (docs/wref-check.md), written out here rather than taken from
 * options.def, so that a changed default fails this test. */
static void assert_documented_defaults(const struct wref__options *o)
{
    assert_false(o->halt_on_error);
    assert_int_equal(o->exitcode, 23);
    assert_string_equal(o->log_path, "");
    assert_int_equal(o->color, WREF__COLOR_AUTO);
    assert_string_equal(o->report, "text");
    assert_int_equal(o->leak_format, WREF__LEAK_FORMAT_WREF);
    assert_string_equal(o->suppressions, "");
    assert_true(o->print_suppressions);
    assert_true(o->print_summary);
    assert_int_equal(o->verbosity, 0);
    assert_false(o->flush_on_signal);
    assert_true(o->leak_check);
    assert_int_equal(o->quarantine_mb, 64);
    assert_int_equal(o->borrow_pin_mb, 16);
    assert_int_equal(o->guard, WREF__GUARD_NONE);
    assert_int_equal(o->sample_rate, 100);
    assert_int_equal(o->stack_depth, 16);
    assert_true(o->fast_unwind);
    assert_false(o->help);
}

static void test_defaults(void **state)
{
    (void)state;
    assert_documented_defaults(&wref__opt);   /* the library's own, before any parse */

    /* wref__options_defaults sets every field, whatever the struct held before */
    struct wref__options o;
    memset(&o, 0x5a, sizeof o);
    wref__options_defaults(&o);
    assert_documented_defaults(&o);
    memset(&o, 0, sizeof o);
    wref__options_defaults(&o);
    assert_documented_defaults(&o);
}

static void test_each_type(void **state)
{
    (void)state;
    struct wref__options o;
    struct warnings w;
    wref__options_defaults(&o);
    assert_int_equal(parse(&o, "halt_on_error=1:exitcode=42:quarantine_mb=8:"
                               "log_path=/tmp/wref:guard=sample:color=never:verbosity=2",
                           &w), 0);
    assert_true(o.halt_on_error);
    assert_int_equal(o.exitcode, 42);
    assert_int_equal(o.quarantine_mb, 8);
    assert_string_equal(o.log_path, "/tmp/wref");
    assert_int_equal(o.guard, WREF__GUARD_SAMPLE);
    assert_int_equal(o.color, WREF__COLOR_NEVER);
    assert_int_equal(o.verbosity, 2);

    /* bool spellings */
    assert_int_equal(parse(&o, "halt_on_error=false leak_check=no", &w), 0);
    assert_false(o.halt_on_error);
    assert_false(o.leak_check);
    assert_int_equal(parse(&o, "halt_on_error=true leak_check=yes fast_unwind=0", &w), 0);
    assert_true(o.halt_on_error);
    assert_true(o.leak_check);
    assert_false(o.fast_unwind);

    /* range edges, empty string, last one wins */
    assert_int_equal(parse(&o, "exitcode=0:stack_depth=64:sample_rate=1:log_path=:exitcode=255", &w), 0);
    assert_int_equal(o.exitcode, 255);
    assert_int_equal(o.stack_depth, 64);
    assert_int_equal(o.sample_rate, 1);
    assert_string_equal(o.log_path, "");

    /* every enum value */
    assert_int_equal(parse(&o, "guard=all color=always", &w), 0);
    assert_int_equal(o.guard, WREF__GUARD_ALL);
    assert_int_equal(o.color, WREF__COLOR_ALWAYS);
    assert_int_equal(parse(&o, "guard=none color=auto", &w), 0);
    assert_int_equal(o.guard, WREF__GUARD_NONE);
    assert_int_equal(o.color, WREF__COLOR_AUTO);
    assert_string_equal(wref__option_value_name(WREF__GUARD_SAMPLE), "sample");
    assert_string_equal(wref__option_value_name(WREF__OPTION_VALUE_COUNT_), "?");
}

static void test_bad_values(void **state)
{
    (void)state;
    struct wref__options o;
    struct warnings w;
    wref__options_defaults(&o);
    assert_int_equal(parse(&o, "exitcode=x", &w), 1);
    assert_string_equal(w.lines[0], "WARNING: wref-check: bad value 'x' for option 'exitcode' "
                                    "(expected an integer from 0 to 255; keeping default 23)");
    assert_int_equal(o.exitcode, 23);

    assert_int_equal(parse(&o, "guard=some", &w), 1);
    assert_string_equal(w.lines[0], "WARNING: wref-check: bad value 'some' for option 'guard' "
                                    "(expected none|sample|all; keeping default none)");
    assert_int_equal(o.guard, WREF__GUARD_NONE);

    /* one warning per bad pair; the good pairs around them still apply */
    const char *bad = "halt_on_error=2:exitcode=256:exitcode=-1:exitcode=12abc:stack_depth=0:"
                      "stack_depth=65:sample_rate=0:quarantine_mb=-1:"
                      "quarantine_mb=99999999999999999999:quarantine_mb=4m:verbosity=1";
    assert_int_equal(wref__options_parse(&o, bad, NULL, NULL), 10);
    struct wref__options d;
    wref__options_defaults(&d);
    d.verbosity = 1;
    assert_memory_equal(&o, &d, sizeof o);

    /* a value set earlier is what is kept */
    wref__options_defaults(&o);
    assert_int_equal(parse(&o, "exitcode=5:exitcode=", &w), 1);
    assert_string_equal(w.lines[0], "WARNING: wref-check: bad value '' for option 'exitcode' "
                                    "(expected an integer from 0 to 255; keeping 5)");
    assert_int_equal(o.exitcode, 5);

    /* too long for the buffer: warned, clipped in the message, kept */
    char text[WREF__OPTION_STRING_MAX + 64];
    memset(text, 'a', sizeof text);
    memcpy(text, "log_path=", 9);
    text[sizeof text - 1] = 0;
    assert_int_equal(parse(&o, text, &w), 1);
    assert_non_null(strstr(w.lines[0], "for option 'log_path' (at most 511 bytes; keeping default \"\")"));
    assert_non_null(strstr(w.lines[0], "aaa...'"));
    assert_string_equal(o.log_path, "");
    /* the longest value that fits */
    text[9 + WREF__OPTION_STRING_MAX - 1] = 0;
    assert_int_equal(parse(&o, text, &w), 0);
    assert_int_equal(strlen(o.log_path), WREF__OPTION_STRING_MAX - 1);
}

static void test_unknown_and_malformed(void **state)
{
    (void)state;
    struct wref__options o;
    struct warnings w;
    wref__options_defaults(&o);
    assert_int_equal(parse(&o, "foo=1:exitcode=3", &w), 1);
    assert_string_equal(w.lines[0],
                        "WARNING: wref-check: unknown option 'foo' (ignored; help=1 lists the options)");
    assert_int_equal(o.exitcode, 3);

    assert_int_equal(parse(&o, "exitcode halt_on_error=1 =4", &w), 2);
    assert_string_equal(w.lines[0],
                        "WARNING: wref-check: expected name=value, got 'exitcode' (ignored)");
    assert_string_equal(w.lines[1],
                        "WARNING: wref-check: unknown option '' (ignored; help=1 lists the options)");
    assert_true(o.halt_on_error);

    /* names match whole: prefixes and case variants are unknown */
    assert_int_equal(parse(&o, "exit=1:EXITCODE=1:exitcodes=1", &w), 3);
    assert_int_equal(o.exitcode, 3);

    assert_int_equal(wref__options_parse(&o, NULL, collect, &w), 0);
    assert_int_equal(wref__options_parse(&o, "", collect, &w), 0);
    assert_int_equal(wref__options_parse(&o, " :: ,\t\n", collect, &w), 0);
}

static void test_separators_and_quotes(void **state)
{
    (void)state;
    struct wref__options o;
    struct warnings w;
    wref__options_defaults(&o);
    assert_int_equal(parse(&o, "  exitcode=1 ,verbosity=2\tsample_rate=3\nstack_depth=4::"
                               "quarantine_mb=5\r\nhalt_on_error=1 ",
                           &w), 0);
    assert_int_equal(o.exitcode, 1);
    assert_int_equal(o.verbosity, 2);
    assert_int_equal(o.sample_rate, 3);
    assert_int_equal(o.stack_depth, 4);
    assert_int_equal(o.quarantine_mb, 5);
    assert_true(o.halt_on_error);

    assert_int_equal(parse(&o, "log_path='/tmp/a b:c,d':exitcode=9", &w), 0);
    assert_string_equal(o.log_path, "/tmp/a b:c,d");
    assert_int_equal(o.exitcode, 9);

    assert_int_equal(parse(&o, "log_path='/tmp/open", &w), 1);
    assert_non_null(strstr(w.lines[0], "bad value '/tmp/open' for option 'log_path' (unterminated quote; "));
    assert_string_equal(o.log_path, "/tmp/a b:c,d");

    assert_int_equal(parse(&o, "log_path=\"x 'y'\"", &w), 0);
    assert_string_equal(o.log_path, "x 'y'");
}

/* help=1 prints one row per option: name, type and default as documented, then its
 * description. The rows are written out here, not expanded from options.def, so that an
 * option added, removed, renamed or with a changed default fails this test until the
 * contract (this list, docs/wref-check.md) is updated with it. */
static void test_help_lists_every_option(void **state)
{
    (void)state;
    static const char *const rows[] = {
        "halt_on_error      bool    0        0: report each finding",
        "exitcode           int     23       Exit status of a process that had findings",
        "fold_repeats       bool    1        1: a finding with the kind, object type and stacks",
        "log_path           string  \"\"       Where reports go",
        "color              enum    auto     Colored text reports",
        "report             string  \"text\"   Report formats",
        "leak_format        enum    wref     wref: leaks as wref findings",
        "suppressions       string  \"\"       Path of a suppressions file",
        "print_suppressions bool    1        At exit, print the table of suppressions",
        "print_summary      bool    1        Print a closing SUMMARY: line",
        "verbosity          int     0        Diagnostic output about the checker itself",
        "flush_on_signal    bool    0        On SIGTERM, SIGINT or SIGHUP",
        "flush_timeout      uint    2        Seconds flush_on_signal's exit work may take",
        "leak_check         bool    1        At exit, report objects still alive",
        "quarantine_mb      uint    64       Megabytes of freed objects kept poisoned",
        "borrow_pin_mb      uint    16       Megabytes of destroyed objects kept unreused",
        "poison_slots       uint    1048576  Destroyed objects whose poison names them at once",
        "guard              enum    none     Objects placed on their own page",
        "sample_rate        uint    100      With guard=sample, one object in sample_rate",
        "python_watch       enum    borrowed CPython programs: which freed objects become tombstones",
        "python_create      bool    1        CPython programs: 1 records where each object was allocated",
        "stack_depth        uint    16       Frames kept per recorded backtrace (1 to 64)",
        "fast_unwind        bool    1        1: unwind by frame pointers",
        "help               bool    0        Print this list of options at startup",
    };
    FILE *f = tmpfile();
    assert_non_null(f);
    wref__options_help(fileno(f));
    static char text[1 << 16];
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    assert_true(n > 0 && n < sizeof text - 1);
    assert_true(strncmp(text, "wref-check options: WREF_CHECK_OPTIONS=", 39) == 0);
    assert_non_null(strstr(text, "\n  name               type    default  description\n"));
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char row[160];
        snprintf(row, sizeof row, "\n  %s", rows[i]);
        if (!strstr(text, row))
            fail_msg("help=1 has no row starting '  %s'", rows[i]);
    }
    /* nothing else: one line per option plus the two header lines */
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, sizeof rows / sizeof rows[0] + 2);
}

/* String values are copied into arrays inside the struct (the parser does not allocate), so
 * the caller's text may go away. */
static void test_strings_live_in_struct(void **state)
{
    (void)state;
    struct wref__options o;
    wref__options_defaults(&o);
    char text[] = "log_path=/tmp/p";
    assert_int_equal(wref__options_parse(&o, text, NULL, NULL), 0);
    memset(text, 0, sizeof text); /* the caller's text may go away */
    assert_string_equal(o.log_path, "/tmp/p");
    /* and a copy of the struct carries its strings with it */
    struct wref__options copy = o;
    memset(&o, 0, sizeof o);
    assert_string_equal(copy.log_path, "/tmp/p");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_each_type),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_unknown_and_malformed),
        cmocka_unit_test(test_separators_and_quotes),
        cmocka_unit_test(test_help_lists_every_option),
        cmocka_unit_test(test_strings_live_in_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
