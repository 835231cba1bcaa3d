#!/usr/bin/env python3
"""run_clean.py: run a correct program under the checker and require silence.

usage: run_clean.py [--env NAME=VALUE]... -- PROGRAM [ARGS...]

Passes when the program exits 0, writes nothing at all on stderr and never mentions
wref-check on stdout. The program gets this script's environment plus the --env settings
(CTest passes LD_PRELOAD that way, so the interpreter itself does not load the checker)."""
import os
import subprocess
import sys


def main(argv):
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1:]
    env = dict(os.environ)
    for i, o in enumerate(opts):
        if o == "--env":
            name, _, value = opts[i + 1].partition("=")
            env[name] = value
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600, env=env)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    problems = []
    if proc.returncode != 0:
        problems.append(f"exit status {proc.returncode}, expected 0")
    if err:
        problems.append("stderr is not empty")
    if "wref-check" in out:
        problems.append("stdout mentions wref-check")
    sys.stdout.write(out)
    if problems:
        print(f"FAILED: {' '.join(cmd)}: " + "; ".join(problems))
        print("---- stderr ----\n" + err + "---- end ----")
        return 1
    print("ok: exit 0, nothing on stderr")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
