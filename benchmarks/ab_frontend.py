"""Before/after a front-end change: two checkouts timed in alternation.

On a shared machine a benchmark's figures swing by 2-3x between runs, so comparing a
run before a change with a run after it says little. This starts one worker process
per checkout (``PYTHONPATH`` set to it) and asks them in turn, the order flipping
every pair, for one timed operation on the same generated 1,000-line file
(``bench_frontend.generate``): a cold ``check_text`` (every cache emptied) or the
re-check after a one-character edit. Each answer is the worker thread's CPU time;
the figure to read is the median of the per-pair ratios, which the machine's load
affects alike on both sides.

Run: ``python benchmarks/ab_frontend.py BEFORE_TREE AFTER_TREE [--pairs 30]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _clear_caches() -> None:
    """Every front-end memo table, whichever version of the code is loaded."""
    try:
        from quivers.syntax.cache import DEFAULT_CACHE
    except ImportError:  # before quivers.syntax.cache existed: module-level tables
        from quivers.semantic import checker
        from quivers.syntax import layout, parser

        parser._cache.clear()  # type: ignore[attr-defined]
        checker._cache.clear()  # type: ignore[attr-defined]
        layout._LINE_CACHE.clear()  # type: ignore[attr-defined]
    else:
        DEFAULT_CACHE.clear()


def worker() -> None:
    sys.path.insert(0, str(HERE))
    from bench_frontend import generate

    from quivers.semantic import check_text

    text = generate(1000)
    lines = text.split("\n")
    mid = len(lines) // 2
    while "scale=0.1" not in lines[mid]:
        mid += 1
    edits = 0
    for command in sys.stdin:
        if command.strip() == "full":
            _clear_caches()
            gc.collect()
            start = time.thread_time()
            check_text(text)
        else:
            edits += 1
            edited = lines[:]
            digits = f"{edits % 9 + 1}{edits // 9 or ''}"
            edited[mid] = edited[mid].replace("scale=0.1", f"scale=0.{digits}", 1)
            new = "\n".join(edited)
            check_text(text)
            gc.collect()
            start = time.thread_time()
            check_text(new)
        print(f"{(time.thread_time() - start) * 1000.0:.4f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--pairs", type=int, default=30)
    args = ap.parse_args()
    procs = {
        side: subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            env={**os.environ, "PYTHONPATH": str(tree.resolve())},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for side, tree in (("before", args.before), ("after", args.after))
    }

    def ask(side: str, command: str) -> float:
        proc = procs[side]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        return float(proc.stdout.readline())

    print(f"CPU ms of one operation on a 1,000-line file, {args.pairs} alternating pairs")
    for command in ("full", "edit"):
        for side in procs:
            ask(side, command)  # warm up
        times: dict[str, list[float]] = {"before": [], "after": []}
        ratios: list[float] = []
        for i in range(args.pairs):
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            got = {side: ask(side, command) for side in order}
            for side, t in got.items():
                times[side].append(t)
            ratios.append(got["after"] / got["before"])
        med = statistics.median
        print(
            f"{command:>5}: before {med(times['before']):7.2f}  after {med(times['after']):7.2f}"
            f"  after/before {med(ratios):.3f}"
        )
    for proc in procs.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()
        sys.exit(0)
    sys.exit(main())
