"""Front-end speed: full parse+check against re-check after a small edit.

Generates realistic QVR files (objects, morphisms with options and families, named
expressions with combinators, programs with steps and arithmetic, doc comments)
of about 1,000 and 5,000 lines, then measures, as medians over several runs:

- full: ``check_text`` with the front-end cache (``DEFAULT_CACHE``) emptied first;
- edit: ``check_text`` after a one-character edit in the middle of the file (each
  run types a different character, so the edited unit is never in the cache);
- insert: ``check_text`` after a new line is inserted in the middle (every line below
  it moves, so results must be reused across positions).

Target (docs/benchmarks.md, "Front end"): on a 1,000-line file the re-check after a
one-line edit is at least 20x faster than a full parse+check and under 10 ms.
Run: ``python benchmarks/bench_frontend.py [--runs 21] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import platform
import pstats
import statistics
import sys
import time

from quivers.semantic import check_text

FAMILIES = ["Normal", "LogNormal", "StudentT"]


def block(i: int) -> list[str]:
    """One realistic module of 20 lines (a small sequence model); names end in i."""
    fam = FAMILIES[i % len(FAMILIES)]
    pos = "Positive" if fam == "LogNormal" else "Real"
    return [
        f"#! Vocabulary of model {i}.",
        f"object Tok{i} : FinSet {16 + i % 50}",
        f"object Emb{i} : Real {8 + i % 8}",
        f"object Hid{i} : Real 16",
        f"object Out{i} : {pos} 2",
        f"morphism embed{i} : Tok{i} -> Emb{i} [role=embed, init=0.02]",
        f"morphism cell{i} : Emb{i} * Hid{i} -> Hid{i} [role=kernel, scale=0.1] ~ Normal",
        f"morphism head{i} : Hid{i} -> Tok{i} [role=kernel] ~ Categorical",
        f"morphism emit{i} : Hid{i} -> Out{i} [role=kernel, param_source=mlp(32, 16)] ~ {fam}",
        f"morphism mix{i} : Hid{i} -> Hid{i} [role=kernel, param_source=linear] ~ Normal",
        f"let backbone{i} = embed{i} >> scan(cell{i}) >> repeat(mix{i}, 2)",
        f"let both{i} = fan(head{i}, emit{i})",
        f"# model {i}: an RNN language model with an emission",
        f"program model{i} : Tok{i} -> Tok{i}",
        f"    sample h <- backbone{i}",
        "    let centred = h - mean(h)",
        "    score penalty = -0.5 * sum(centred * centred) / 16.0",
        f"    sample e : Out{i} <- emit{i}(h)",
        f"    observe next : Tok{i} <- head{i}(h)",
        "    return next",
    ]


def generate(lines: int) -> str:
    out: list[str] = []
    i = 0
    while len(out) < lines - 1:
        out.extend(block(i))
        i += 1
    out.append("export model0")
    return "\n".join(out) + "\n"


def clear() -> None:
    from quivers.syntax.cache import DEFAULT_CACHE

    DEFAULT_CACHE.clear()  # every front-end table: layout lines, units, checks, ...


def _time(fn, cpu: list[float]) -> float:
    """Wall-clock milliseconds of fn(); its CPU milliseconds are appended to ``cpu``."""
    start_cpu = time.thread_time()
    start = time.perf_counter()
    fn()
    wall = (time.perf_counter() - start) * 1000.0
    cpu.append((time.thread_time() - start_cpu) * 1000.0)
    return wall


def measure(text: str, runs: int) -> dict[str, float]:
    """Runs interleave the three measurements, so a change in the machine's load
    affects them alike; ratios are taken per run, then their median."""
    lines = text.split("\n")
    mid = len(lines) // 2
    while "scale=0.1" not in lines[mid]:
        mid += 1
    wall: dict[str, list[float]] = {"full": [], "edit": [], "insert": []}
    cpu: dict[str, list[float]] = {"full": [], "edit": [], "insert": []}
    for k in range(runs):
        clear()
        wall["full"].append(_time(lambda: check_text(text), cpu["full"]))
        # Settle the collector's debt from the full check's ~100k new objects, which
        # would otherwise fall on whichever call comes next (untimed; an editor's
        # session pays it once, not per keystroke).
        gc.collect()
        # A one-character edit: the scale's digit becomes another digit (never 1, so
        # the text does change; a different value each run, so the edited unit is
        # never in the cache).
        edited = lines[:]
        edited[mid] = edited[mid].replace("scale=0.1", f"scale=0.{k % 8 + 2}{k // 8 or ''}", 1)
        new = "\n".join(edited)
        assert new != text, "the edit must change the text"
        wall["edit"].append(_time(lambda new=new: check_text(new), cpu["edit"]))
        check_text(text)  # back to the file as it was
        new = "\n".join(lines[:mid] + [f"object Inserted{k} : Real 3"] + lines[mid:])
        wall["insert"].append(_time(lambda new=new: check_text(new), cpu["insert"]))
    med = statistics.median
    out: dict[str, float] = {"lines": len(lines) - 1}
    for what in ("full", "edit", "insert"):
        out[what] = med(wall[what])
        out[what + "_cpu"] = med(cpu[what])
    for what in ("edit", "insert"):
        out[what + "_ratio"] = med(f / e for f, e in zip(wall["full"], wall[what], strict=True))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--profile", action="store_true", help="cProfile the edit re-check")
    args = ap.parse_args(argv)

    print(f"python {platform.python_version()} on {platform.machine()}, runs={args.runs}")
    print("p50 wall-clock ms (p50 CPU ms of this thread in brackets)")
    print(
        f"{'lines':>6} {'full':>16} {'edit':>14} {'insert':>14} {'full/edit':>10} "
        f"{'full/insert':>12}  (ratios: median of per-run ratios)"
    )
    results = []
    for size in args.sizes:
        text = generate(size)
        check = check_text(text)
        errors = [d for d in check.diagnostics if d.severity.value == "error"]
        assert not errors, errors[:3]
        r = measure(text, args.runs)
        results.append(r)
        print(
            f"{r['lines']:>6} {r['full']:>7.1f} ({r['full_cpu']:>6.1f}) "
            f"{r['edit']:>5.2f} ({r['edit_cpu']:>5.2f}) {r['insert']:>5.2f} ({r['insert_cpu']:>5.2f}) "
            f"{r['edit_ratio']:>9.1f}x {r['insert_ratio']:>11.1f}x"
        )
    if args.profile:
        text = generate(args.sizes[0])
        lines = text.split("\n")
        check_text(text)

        def edits() -> None:
            for k in range(50):
                edited = lines[:]
                edited[len(lines) // 2] += " " * (k + 1)
                check_text("\n".join(edited))

        cProfile.runctx("edits()", globals(), locals(), "/tmp/bench_frontend.prof")
        pstats.Stats("/tmp/bench_frontend.prof").sort_stats("cumulative").print_stats(20)
    first = results[0]
    ok = first["edit_ratio"] >= 20 and first["edit"] < 10
    print("target (1,000 lines: edit >= 20x faster than full, < 10 ms):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
