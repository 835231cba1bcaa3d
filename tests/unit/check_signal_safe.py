#!/usr/bin/env python3
"""check_signal_safe.py: the checker's signal handlers call nothing that is not async-signal-safe
(issue 10: "the guard-page fault handler is async-signal-safe: no stdio, snprintf, strerror or
fnmatch"; the flush timeout makes raw system calls only).

    check_signal_safe.py [--objdump OBJDUMP] LIBRARY

Disassembles LIBRARY (OBJDUMP -d, default objdump) and walks the direct calls from each handler below through
the library's own functions, to the imported functions (PLT entries) they reach. It fails when
one of those is on FORBIDDEN (stdio, formatting, strerror, fnmatch, the allocator, locks, the
dynamic linker), or when a handler is missing from the library. Indirect calls are not followed
(the program's previous handler, which the fault handler chains to, is one).

KNOWN lists the calls that are reached today on a path that does not run in a normal fault
report, each with its reason; those edges are not followed. Remove an entry when its path is
fixed. Static functions keep their names in .symtab (the library is not stripped in the build
tree); names with a compiler suffix (.constprop.0, .isra.0, .part.0) count as the function.
"""
import re
import subprocess
import sys

# root function -> what it is
HANDLERS = {
    "handler": "the guard-page / poison SIGSEGV handler (src/check/engine/fault.c)",
    "flush_timeout": "flush_on_signal's timeout handler (src/check/engine/checker.c)",
}

FORBIDDEN = re.compile(
    r"^(f?printf|v?s?n?printf|v?fprintf|v?dprintf|puts|fputs|fputc|putc|fwrite|fread|fopen|fdopen|fclose|fflush|"
    r"setvbuf|strerror(_r|_l)?|fnmatch|malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|"
    r"pthread_mutex_(lock|unlock|trylock)|pthread_once|pthread_rwlock_\w+|dlsym|dlvsym|dlopen|dladdr1?|"
    r"dl_iterate_phdr|syslog|localtime(_r)?|gmtime(_r)?|strftime|qsort|exit|atexit|__cxa_\w+)(@.*)?$")

# (caller, callee) edges not followed, and why. A caller is matched by its name without suffix.
KNOWN = {
    ("real_sigaction", "dlsym"): "fault.c resolves libc's sigaction once, before the handler is installed; "
                                 "the handler reads the cached pointer",
    ("handler", "dlsym"): "real_sigaction inlined into the handler (the same cached lookup)",
    ("report_write", "open_log"): "report.c: wref__report_signal_finding sets the log's fd first (open(2) of the "
                                  "path prepared at init), so report_write never calls open_log from a handler",
}
# json.c: a failed pwrite/ftruncate of the JSON report warns (wref__checker_warn: vsnprintf;
# strerror), only when the report cannot be written; put_all may be inlined into its callers.
for caller in ("put_all", "create_with_head", "wref__json_signal_finding"):
    for callee in ("wref__checker_warn", "strerror"):
        KNOWN[(caller, callee)] = "json.c: the warning of a failed write of the JSON report (error path only)"


def base(name):
    name = name.split("@")[0]
    return name.split(".")[0] if not name.startswith(".") else name


def call_graph(objdump, lib):
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", lib], capture_output=True, text=True,
                         check=True).stdout
    calls, fn = {}, None
    head = re.compile(r"^[0-9a-f]+ <(.+)>:$")
    # x86-64: call/jmp <sym>; AArch64: bl/b <sym>
    call = re.compile(r"\s(?:callq?|jmpq?|bl|b)\s+[0-9a-f]+ <([^>+]+)(?:\+0x[0-9a-f]+)?>")
    for line in out.splitlines():
        m = head.match(line)
        if m:
            fn = m.group(1)
            calls.setdefault(fn, set())
            continue
        if fn is None:
            continue
        m = call.search(line)
        if m and m.group(1) != fn:
            calls[fn].add(m.group(1))
    return calls


def main():
    args = sys.argv[1:]
    objdump = "objdump"
    if len(args) == 3 and args[0] == "--objdump":
        objdump, args = args[1], args[2:]
    if len(args) != 1:
        print(__doc__)
        return 2
    lib = args[0]
    calls = call_graph(objdump, lib)
    failed, used = False, set()
    for root, what in HANDLERS.items():
        if root not in calls:
            print(f"FAIL: {root} ({what}) is not in {lib}")
            failed = True
            continue
        parent, todo = {root: None}, [root]
        while todo:
            f = todo.pop()
            for t in sorted(calls.get(f, ())):
                edge = (base(f), base(t))
                if edge in KNOWN:
                    used.add(edge)
                    continue
                if t in parent:
                    continue
                parent[t] = f
                if "@plt" not in t:
                    todo.append(t)
        bad = sorted(t for t in parent if "@plt" in t and FORBIDDEN.match(base(t)))
        for t in bad:
            chain, x = [], t
            while x:
                chain.append(x)
                x = parent[x]
            print(f"FAIL: {what}: reaches {base(t)}: " + " <- ".join(chain))
            failed = True
        imports = sorted({base(t) for t in parent if "@plt" in t})
        print(f"{root}: {len(parent)} functions reached, imports: {', '.join(imports) or 'none'}")
    for edge in sorted(used):
        print(f"known, not followed: {edge[0]} -> {edge[1]}: {KNOWN[edge]}")
    if not failed:
        print("PASS: no handler reaches a call that is not async-signal-safe")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
