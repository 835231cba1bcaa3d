/* failinject.c: LD_PRELOAD shim that makes one allocation of the wref checker fail.
 *
 * It interposes malloc, calloc, realloc, strdup and mmap and counts only the calls made
 * directly from libwref-check.so (the return address is inside it): the checker's own
 * bookkeeping (records, stack depot, reports, symbolizer caches, census) and the runtime's
 * object allocations. Calls from libc, libdw, libunwind or the program pass through
 * uncounted, so what fails is always the checker's own request.
 *
 * Environment:
 *   FAILINJECT_AT=N      the Nth counted call fails (NULL / MAP_FAILED, errno ENOMEM);
 *                        0 or unset: nothing fails
 *   FAILINJECT_COUNT=F   after each counted call, the count so far is written to file F
 *                        (the checker may end the process with _exit: no destructor runs)
 * Pass-through uses glibc's __libc_malloc & co and the raw mmap system call, so the shim
 * never calls itself. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static uintptr_t lo, hi;        /* libwref-check.so's mapped range; 0 until found */
static uintptr_t lo_bias;       /* its load bias: pc - lo_bias is an offset for addr2line */
static unsigned long count, fail_at;
static int count_fd = -1, ready;

static int find_checker(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libwref-check"))
        return 0;
    lo_bias = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (!lo || a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    return 1;
}

__attribute__((constructor(101))) static void setup(void)
{
    const char *at = getenv("FAILINJECT_AT"), *file = getenv("FAILINJECT_COUNT");
    fail_at = at ? strtoul(at, NULL, 10) : 0;
    if (file)
        count_fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    dl_iterate_phdr(find_checker, NULL);
    ready = 1;
}

/* 1 when this call, made from `caller`, must fail. */
static int should_fail(void *caller)
{
    uintptr_t pc = (uintptr_t)caller;
    if (!ready || pc < lo || pc >= hi)
        return 0;
    unsigned long n = __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
    if (count_fd >= 0) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lu\n", n);
        (void)!pwrite(count_fd, buf, (size_t)len, 0);
    }
    if (n == fail_at) {
        /* Name the failed allocation on stderr, so that run_faults.py can tell which warning
         * of the checker it caused: "failinject: allocation N failed (from
         * libwref-check+0xOFFSET)", the offset of the return address in the checker. */
        char buf[96];
        int len = snprintf(buf, sizeof buf, "failinject: allocation %lu failed (from libwref-check+0x%lx)\n",
                           n, (unsigned long)(pc - lo_bias));
        (void)!write(2, buf, (size_t)len);
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *malloc(size_t n)
{
    return should_fail(__builtin_return_address(0)) ? NULL : __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    return should_fail(__builtin_return_address(0)) ? NULL : __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    return should_fail(__builtin_return_address(0)) ? NULL : __libc_realloc(p, n);
}

char *strdup(const char *s)
{
    if (should_fail(__builtin_return_address(0)))
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = __libc_malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (should_fail(__builtin_return_address(0)))
        return MAP_FAILED;
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return MAP_FAILED;
    }
    return (void *)r;
}
