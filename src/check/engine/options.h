/* options.h: checker options, generated from the table in options.def.
 *
 * wref__opt holds the defaults from static initialization on, before any constructor runs;
 * checker init parses WREF_CHECK_OPTIONS into it once, before other threads exist, and it is
 * read-only afterwards.
 */
#ifndef WREF_CHECK_OPTIONS_H
#define WREF_CHECK_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define WREF__OPTION_STRING_MAX 512   /* string options hold at most 511 bytes + NUL */

/* Values of all enum options, e.g. WREF__GUARD_SAMPLE, WREF__COLOR_NEVER. */
enum wref__option_value {
#define WREF__OPTION_ENUM(option, constant, value) WREF__##constant,
#include "options.def"
    WREF__OPTION_VALUE_COUNT_
};

#define WREF__OPTION_FIELD_bool(name) bool name
#define WREF__OPTION_FIELD_int(name) int name
#define WREF__OPTION_FIELD_uint(name) unsigned name
#define WREF__OPTION_FIELD_size(name) size_t name
#define WREF__OPTION_FIELD_string(name) char name[WREF__OPTION_STRING_MAX]
#define WREF__OPTION_FIELD_enum(name) enum wref__option_value name

struct wref__options {
#define WREF__OPTION(type, name, default_, help) WREF__OPTION_FIELD_##type(name);
#include "options.def"
};

/* The options in effect. */
extern struct wref__options wref__opt;

/* Sets every field of *o to its default. */
void wref__options_defaults(struct wref__options *o);

/* Parses "name=value" pairs separated by ':', ',' or whitespace into *o; a value may be
 * quoted with '...' or "..." to contain separators. Fields not named keep their value. For each
 * unknown name, malformed pair or bad value, calls warn once with one line (no newline), e.g.
 *   WARNING: wref-check: unknown option 'foo' (ignored; help=1 lists the options)
 *   WARNING: wref-check: bad value 'x' for option 'exitcode' (keeping default 23)
 * and keeps the field's current value. warn may be NULL. Returns the number of warnings.
 * Does not allocate: string values are copied into the struct. text may be NULL. */
int wref__options_parse(struct wref__options *o, const char *text,
                        void (*warn)(const char *line, void *arg), void *arg);

/* Writes the option table (name, type, default, help sentence) to fd with write(2), one
 * option per line after a short header; docs/wref-check.md ("The checker's options") shows
 * this text. */
void wref__options_help(int fd);

/* Name of an enum option value ("sample" for WREF__GUARD_SAMPLE), "?" if out of range. */
const char *wref__option_value_name(enum wref__option_value v);

/* The i-th value name (0, 1, ...) of the enum option `option`, in options.def's order; NULL
 * past the last (or for an option that is not an enum). For the tool's --help and man page. */
const char *wref__option_enum_value(const char *option, size_t i);

/* The range options.def gives the integer option `option`: returns 1 and sets *min and *max,
 * or returns 0 when it has none. */
int wref__option_range(const char *option, long long *min, long long *max);

#endif /* WREF_CHECK_OPTIONS_H */
