/* Unit tests for src/check/engine/symbolize.c. Build with -g and without -rdynamic: the static
 * functions below are not in the dynamic symbol table, so only the .symtab lookup names them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check/engine/symbolize.h"

/* noclone: gcc would otherwise name a specialized copy "recurse.constprop.0". */
#ifdef __clang__
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif
#define KEEP(x) __asm__ volatile("" : "+r"(x))

static NOINLINE uintptr_t return_address(void)
{
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    KEEP(pc);
    return pc;
}

static int probe_line; /* line of the call in probe_site */

/* Returns the return address of its call to return_address(): a pc inside probe_site. */
static NOINLINE uintptr_t probe_site(void)
{
    probe_line = __LINE__ + 1;
    uintptr_t pc = return_address();
    KEEP(pc);
    return pc;
}

static const char *exe_path(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    assert_true(n > 0);
    path[n] = 0;
    return path;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_static_function_file_line(void **state)
{
    (void)state;
    uintptr_t pc = probe_site();
    struct wref__frame_info fi;
    assert_int_equal(wref__symbolize(pc, &fi), 1);
    assert_int_equal(fi.pc, pc);
    assert_non_null(fi.function);
    assert_string_equal(fi.function, "probe_site");
    assert_int_equal(pc - fi.function_offset, (uintptr_t)&probe_site);
    assert_non_null(fi.module);
    assert_string_equal(fi.module, exe_path());
    assert_non_null(fi.file);
    assert_true(ends_with(fi.file, "test_symbolize.c"));
    assert_int_equal(fi.line, probe_line);

    /* Cached: the same strings come back. */
    struct wref__frame_info again;
    assert_int_equal(wref__symbolize(pc, &again), 1);
    assert_memory_equal(&again, &fi, sizeof fi);
}

static void test_module_offset_and_signal_safe_lookup(void **state)
{
    (void)state;
    uintptr_t pc = probe_site();
    struct wref__frame_info fi;
    assert_int_equal(wref__symbolize(pc, &fi), 1);

    wref__symbolize_snapshot_modules();
    const char *path = NULL;
    uintptr_t offset = 0;
    assert_int_equal(wref__module_of(pc, &path, &offset), 1);
    assert_string_equal(path, exe_path());
    assert_int_equal(offset, fi.module_offset);
    /* offset is relative to the load bias: dladdr's base for a PIE, 0 for a fixed executable */
    Dl_info dl;
    assert_int_not_equal(dladdr((void *)pc, &dl), 0);
    assert_true(offset == pc - (uintptr_t)dl.dli_fbase || offset == pc);

    /* A second snapshot of an unchanged process keeps answering the same. */
    wref__symbolize_snapshot_modules();
    assert_int_equal(wref__module_of(pc, &path, &offset), 1);
    assert_int_equal(offset, fi.module_offset);
}

static void test_shared_library_function(void **state)
{
    (void)state;
    void *lib = dlopen("libm.so.6", RTLD_NOW);
    assert_non_null(lib);
    uintptr_t cos_pc = (uintptr_t)dlsym(lib, "cos");
    assert_true(cos_pc != 0);
    struct wref__frame_info fi;
    assert_int_equal(wref__symbolize(cos_pc + 1, &fi), 1); /* +1: pc - 1 is cos's entry */
    assert_non_null(fi.function);
    assert_non_null(strstr(fi.function, "cos"));
    assert_int_equal(fi.function_offset, 1);
    assert_non_null(fi.module);
    assert_non_null(strstr(fi.module, "libm"));

    wref__symbolize_snapshot_modules();
    const char *path;
    uintptr_t offset;
    assert_int_equal(wref__module_of(cos_pc, &path, &offset), 1);
    assert_non_null(strstr(path, "libm"));
    assert_int_equal(offset + 1, fi.module_offset);
}

/* An always_inline function calling return_address(): the pc is in inline_outer's code, but
 * DWARF's inline scopes put it inside inline_inner. */
static int inner_line, outer_line;

static inline __attribute__((always_inline)) uintptr_t inline_inner(void)
{
    inner_line = __LINE__ + 1;
    uintptr_t pc = return_address();
    KEEP(pc);
    return pc;
}

static NOINLINE uintptr_t inline_outer(void)
{
    outer_line = __LINE__ + 1;
    uintptr_t pc = inline_inner();
    KEEP(pc);
    return pc;
}

static void test_inlined_frames(void **state)
{
    (void)state;
    uintptr_t pc = inline_outer();
    struct wref__frame_info f[4];
    size_t n = wref__symbolize_frames(pc, wref__module_gen(), f, 4);
    assert_int_equal(n, 2);
    /* innermost first: the inlined function, at the line of its call to return_address() */
    assert_int_equal(f[0].inlined, 1);
    assert_non_null(f[0].function);
    assert_string_equal(f[0].function, "inline_inner");
    assert_non_null(f[0].file);
    assert_true(ends_with(f[0].file, "test_symbolize.c"));
    assert_int_equal(f[0].line, inner_line);
    /* then the function that holds the pc, at the line where inline_inner was inlined */
    assert_int_equal(f[1].inlined, 0);
    assert_string_equal(f[1].function, "inline_outer");
    assert_int_equal(f[1].line, outer_line);
    assert_int_equal(f[0].pc, f[1].pc);
    assert_int_equal(f[0].module_offset, f[1].module_offset);
    /* wref__symbolize gives the holder, with the line in it */
    struct wref__frame_info one;
    assert_int_equal(wref__symbolize(pc, &one), 1);
    assert_string_equal(one.function, "inline_outer");
    assert_int_equal(one.line, outer_line);
    /* max = 1 keeps the holder */
    assert_int_equal(wref__symbolize_frames(pc, wref__module_gen(), f, 1), 1);
    assert_string_equal(f[0].function, "inline_outer");
}

/* The module map keeps the build-id of each module. */
static void test_build_id(void **state)
{
    (void)state;
    uintptr_t pc = probe_site();
    struct wref__frame_info fi;
    assert_int_equal(wref__symbolize(pc, &fi), 1);
    assert_non_null(fi.build_id);   /* gcc and clang on Debian link with --build-id */
    assert_true(strlen(fi.build_id) >= 16 && strspn(fi.build_id, "0123456789abcdef") == strlen(fi.build_id));
}

static void test_unknown_pc(void **state)
{
    (void)state;
    struct wref__frame_info fi;
    assert_int_equal(wref__symbolize(0, &fi), 0);
    assert_null(fi.function);
    assert_null(fi.module);
    assert_null(fi.file);
    assert_int_equal(fi.line, 0);

    void *anon = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(anon != MAP_FAILED);
    uintptr_t pc = (uintptr_t)anon + 100;
    assert_int_equal(wref__symbolize(pc, &fi), 0);
    assert_int_equal(fi.pc, pc);
    assert_null(fi.function);
    assert_null(fi.module);
    assert_null(fi.file);
    const char *path;
    uintptr_t offset;
    wref__symbolize_snapshot_modules();
    assert_int_equal(wref__module_of(pc, &path, &offset), 0);
    munmap(anon, 4096);
}

#define THREADS 4

struct job {
    pthread_t thread;
    uintptr_t pcs[3];
    struct wref__frame_info out[3];
};

static void *symbolize_all(void *arg)
{
    struct job *j = arg;
    for (int round = 0; round < 50; round++)
        for (int i = 0; i < 3; i++)
            wref__symbolize(j->pcs[i] + (uintptr_t)round, &j->out[i]);
    for (int i = 0; i < 3; i++)
        wref__symbolize(j->pcs[i], &j->out[i]);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct job jobs[THREADS];
    uintptr_t pcs[3] = { probe_site(), return_address(), (uintptr_t)&symbolize_all + 1 };
    for (int t = 0; t < THREADS; t++) {
        memcpy(jobs[t].pcs, pcs, sizeof pcs);
        assert_int_equal(pthread_create(&jobs[t].thread, NULL, symbolize_all, &jobs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(jobs[t].thread, NULL);
    for (int t = 0; t < THREADS; t++)
        assert_memory_equal(jobs[t].out, jobs[0].out, sizeof jobs[0].out);
    assert_string_equal(jobs[0].out[0].function, "probe_site");
    assert_string_equal(jobs[0].out[1].function, "test_threads");
    assert_string_equal(jobs[0].out[2].function, "symbolize_all");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_function_file_line),
        cmocka_unit_test(test_module_offset_and_signal_safe_lookup),
        cmocka_unit_test(test_shared_library_function),
        cmocka_unit_test(test_unknown_pc),
        cmocka_unit_test(test_inlined_frames),
        cmocka_unit_test(test_build_id),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
