/* stats.c: the checker's counters about itself (stats.h). */
#include "check/engine/stats.h"

#include <stdbool.h>
#include <unistd.h>

static uint64_t counters[WREF__STAT_COUNT];   /* relaxed atomics */

static const char *const names[WREF__STAT_COUNT] = {
#define WREF__STAT_NAME(id, text) text,
    WREF__STATS(WREF__STAT_NAME)
#undef WREF__STAT_NAME
};

void wref__stat_add(enum wref__stat s, uint64_t n)
{
    __atomic_fetch_add(&counters[s], n, __ATOMIC_RELAXED);
}

void wref__stat_max(enum wref__stat s, uint64_t v)
{
    uint64_t cur = __atomic_load_n(&counters[s], __ATOMIC_RELAXED);
    while (cur < v && !__atomic_compare_exchange_n(&counters[s], &cur, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

uint64_t wref__stat_get(enum wref__stat s)
{
    return __atomic_load_n(&counters[s], __ATOMIC_RELAXED);
}

/* Decimal digits of v into the end of buf; returns the first digit. */
static char *digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static void put(char *line, size_t *len, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *len < cap; i++)
        line[(*len)++] = s[i];
}

static size_t cstrlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void wref__stats_print(int fd)
{
    char num[24], line[160];
    size_t len = 0;
    char *p = digits((uint64_t)getpid(), num + sizeof num);
    put(line, &len, sizeof line, "==", 2);
    put(line, &len, sizeof line, p, (size_t)(num + sizeof num - p));
    put(line, &len, sizeof line, "==WARNING: wref-check: statistics:\n", 35);
    (void)!write(fd, line, len);
    for (int s = 0; s < WREF__STAT_COUNT; s++) {
        len = 0;
        put(line, &len, sizeof line, "  ", 2);
        put(line, &len, sizeof line, names[s], cstrlen(names[s]));
        put(line, &len, sizeof line, ": ", 2);
        p = digits(wref__stat_get((enum wref__stat)s), num + sizeof num);
        put(line, &len, sizeof line, p, (size_t)(num + sizeof num - p));
        put(line, &len, sizeof line, "\n", 1);
        (void)!write(fd, line, len);
    }
}
