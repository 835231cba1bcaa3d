#!/usr/bin/env python3
"""run_clean.py: run a correct program under the checker and require silence, after proving
that the checker is active in it.

usage: run_clean.py [--env NAME=VALUE]... -- PROGRAM [ARGS...]

The program gets this script's environment plus the --env settings (CTest passes LD_PRELOAD
that way, so the interpreter itself does not load the checker). Two runs (clean.h):

1. The canary: the same program, environment and options with WREF_CLEAN_CANARY=1. It leaks
   one CleanCanary object and passes one pointer wref never allocated, then exits. It must
   exit with status 23 and its stderr must hold exactly those two findings (an invalid-object,
   then a leak on CleanCanary#N) and the process SUMMARY. A missing checker, reports sent
   elsewhere (log_path), checks turned off (leak_check=0) or a changed exit status
   (exitcode=0) fail here, so silence in run 2 means something.
2. The program itself: its first line of stdout is "wref-check active: 1"; it exits 0, writes
   nothing at all on stderr and never mentions wref-check on stdout after that line.
"""
import os
import re
import subprocess
import sys


def canary(cmd, env):
    """Problems with the canary run, [] when the checker is demonstrably active."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                       env=dict(env, WREF_CLEAN_CANARY="1"))
    err = p.stderr.decode("utf-8", "replace")
    problems = []
    heads = re.findall(r"^==\d+==ERROR: wref-check: (\S+)(?: on (\w+)#)?", err, re.M)
    if heads != [("invalid-object", ""), ("leak", "CleanCanary")]:
        problems.append(f"the canary's findings are {heads}, expected an invalid-object and a leak on "
                        "CleanCanary: the checker is not active, or its reports go elsewhere")
    if not re.search(r"^SUMMARY: wref-check: 2 finding\(s\) in process \d+: 1 invalid-object, 1 leak$", err, re.M):
        problems.append("the canary's process SUMMARY line is missing or wrong")
    if p.returncode != 23:
        problems.append(f"the canary exited {p.returncode}, expected 23 (the checker's exitcode)")
    if problems:
        problems.append("canary stderr:\n" + err[-3000:])
    return problems


def main(argv):
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1:]
    env = dict(os.environ)
    for i, o in enumerate(opts):
        if o == "--env":
            name, _, value = opts[i + 1].partition("=")
            env[name] = value
    env.pop("WREF_CLEAN_CANARY", None)
    problems = canary(cmd, env)
    if problems:
        print(f"FAILED: {' '.join(cmd)}: the checker is not proven active: " + "\n".join(problems))
        return 1
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600, env=env)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    first, _, rest = out.partition("\n")
    if first != "wref-check active: 1":
        problems.append(f"the first line of stdout is {first!r}, not 'wref-check active: 1': "
                        "the checker is not active in the program")
    if proc.returncode != 0:
        problems.append(f"exit status {proc.returncode}, expected 0")
    if err:
        problems.append("stderr is not empty")
    if "wref-check" in rest:
        problems.append("stdout mentions wref-check")
    sys.stdout.write(out)
    if problems:
        print(f"FAILED: {' '.join(cmd)}: " + "; ".join(problems))
        print("---- stderr ----\n" + err + "---- end ----")
        return 1
    print("ok: the canary found both bugs; then exit 0, nothing on stderr")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
