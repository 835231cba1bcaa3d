"""report_programs.py: bench/programs-results.json (bench/programs.py) -> docs/performance.md's
"Whole programs" section and its targets (bench/report.py calls both)."""

CONFIG_TEXT = [("checker", "checker (`LD_PRELOAD`)"), ("tool", "`wref-check --`"),
               ("memcheck", "valgrind memcheck")]


def targets(res):
    """[(target, measured text, met)]: the issue's start-up and whole-program goals, in CPU time."""
    rows = {r["program"]: r for r in res["programs"]}
    out = []
    exit_only = rows.get("exit_only", {}).get("checker")
    if exit_only and "cpu_over_ms" in exit_only:
        over = exit_only["cpu_over_ms"]
        out.append(("checker start-up + exit, a program that only exits: <= 2 ms CPU over plain",
                    "%.2f ms" % over, over <= 2.0))
    clean = [(r["program"], r["checker"]["cpu_ratio"]) for r in res["programs"]
             if r["program"] != "exit_only" and "cpu_ratio" in r.get("checker", {})]
    if clean:
        worst = max(clean, key=lambda c: c[1])
        out.append(("clean programs (tests/clean) under the checker < 3x plain (CPU time, each)",
                    "worst %.2fx (%s); %s" % (worst[1], worst[0],
                                             ", ".join("%s %.2fx" % c for c in clean)),
                    worst[1] < 3.0))
    mem = [(r["program"], r["memcheck"]["cpu_ms"] / r["checker"]["cpu_ms"]) for r in res["programs"]
           if r["program"] != "exit_only" and "memcheck" in r and r.get("checker", {}).get("cpu_ms")]
    if mem:
        least = min(mem, key=lambda c: c[1])
        out.append(("clean programs: valgrind memcheck costs more than the checker (CPU time, each)",
                    "least %.1fx (%s)" % (least[1], least[0]), least[1] > 1.0))
    return out


def markdown(res):
    """The section's lines."""
    la0, la1 = res["load_start"], res["load_end"]
    md = ["", "## Whole programs", "",
          "One run of `bench/programs.py` (`scripts/bench.sh`, %s): `exit_only` "
          "(`int main(void) { return 0; }`, the checker's fixed start-up and exit cost) and the "
          "clean programs of tests/clean, each plain, under the checker (`LD_PRELOAD`, default "
          "options) and under `wref-check --`, %d interleaved rounds (each round runs every "
          "process once in a fresh random order), memcheck in %d of them. CPU time of the "
          "process (user + system, ms; on this shared machine wall time also counts waiting for "
          "a CPU), the median over rounds; in parentheses the median of the same-round ratios "
          "to plain. Load average %.1f, %.1f, %.1f at the start and %.1f, %.1f, %.1f at the end; "
          "the run took %.0f s."
          % (res["date"], res["rounds"], res["memcheck_rounds"], la0[0], la0[1], la0[2],
             la1[0], la1[1], la1[2], res["wall_s"]),
          "",
          "| program | plain | " + " | ".join(t for _, t in CONFIG_TEXT) + " |",
          "|---|---|" + "---|" * len(CONFIG_TEXT)]
    for r in res["programs"]:
        cells = []
        for c, _ in CONFIG_TEXT:
            v = r.get(c)
            cells.append("%.2f (%.2f×)" % (v["cpu_ms"], v["cpu_ratio"]) if v and "cpu_ratio" in v else "-")
        md.append("| %s | %.2f | %s |" % (r["program"], r["plain"]["cpu_ms"], " | ".join(cells)))
    return md
