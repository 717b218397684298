#!/usr/bin/env python3
"""Mutation check: would the fast tests catch these bugs?

Each mutant is one hand-written bug: a file, an exact snippet of its current text and
the replacement. The script copies the repository (the files git knows about,
including uncommitted ones) to a temporary directory, checks that the unmutated copy
passes the tests it will run, then applies the mutants there one at a time, runs the
fast tests named for each (``-m "not slow"``, the copy first on ``PYTHONPATH``) and
reports each as killed (some test failed) or survived (every test passed). The
working tree is never touched.

A snippet that no longer occurs exactly once is an error: the script stops before
running anything and names the mutant, so a refactor cannot silently retire a
mutant. Update the snippet to the new code instead (docs/dev/testing.md).

A mutant is killed when pytest reports a failing test (exit status 1); any other
status (a test id that no longer exists, a collection error) is an error, not a kill.
Mutants run two at a time by default (``--jobs``), each worker in its own copy.

Usage: python3 scripts/mutants.py [--list] [--jobs N] [--skip-baseline] [NAME ...]
Exit status: 0 every selected mutant killed, 1 some survived, 2 bad snippet, a
failing baseline or a mutant whose tests ended in an error.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    original: str  # must occur exactly once in the file
    replacement: str
    tests: tuple[str, ...]  # pytest node ids or paths that should catch it
    why: str  # the bug it stands for


ALGEBRA_TESTS = ("tests/runtime/test_algebras.py",)
NUTS_TESTS = ("tests/inference/test_nuts_trajectories.py",)
ITERATIVE_TESTS = ("tests/inference/test_nuts_iterative.py",)

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "algebra-product-fuzzy-plus-is-max",
        "quivers/runtime/algebras.py",
        "        return 1 - torch.prod(1 - t, dim)",
        "        return t.amax(dim)",
        ALGEBRA_TESTS,
        "the default algebra's plus (noisy-or) replaced by max",
    ),
    Mutant(
        "algebra-godel-times-is-product",
        "quivers/runtime/algebras.py",
        "        return torch.minimum(a, b)",
        "        return a * b",
        ALGEBRA_TESTS,
        "Goedel's times (min) replaced by the product",
    ),
    Mutant(
        "algebra-lukasiewicz-times-is-min",
        "quivers/runtime/algebras.py",
        "        return (a + b - 1).clamp_min(0)",
        "        return torch.minimum(a, b)",
        ALGEBRA_TESTS,
        "Lukasiewicz's times replaced by min",
    ),
    Mutant(
        "elbo-single-particle-log-q-sign",
        "quivers/inference/elbo.py",
        "            return -(log_p - draw.log_q)",
        "            return -(log_p + draw.log_q)",
        ("tests/inference/test_elbo.py",),
        "the K=1 ELBO adds log q instead of subtracting it",
    ),
    Mutant(
        "nuts-u-turn-checked-at-one-end",
        "quivers/inference/nuts.py",
        "    return float(torch.dot(p_sharp_left, rho)) > 0.0 and float(torch.dot(p_sharp_right, rho)) > 0.0",
        "    return float(torch.dot(p_sharp_right, rho)) > 0.0",
        NUTS_TESTS,
        "the no-U-turn criterion looks at one end of the trajectory only",
    ),
    Mutant(
        "nuts-no-whole-tree-check",
        "quivers/inference/nuts.py",
        "            _merge(tree, sub, direction)\n            if tree.turning:\n                break\n",
        "            _merge(tree, sub, direction)\n",
        NUTS_TESTS,
        "the merged trajectory is never checked for a U-turn",
    ),
    Mutant(
        "nuts-no-cross-join-checks",
        "quivers/inference/nuts.py",
        "    if not turning:\n"
        "        # across the join (Stan >= 2.26): left half plus the first point of the right\n"
        "        turning = not _no_u_turn(left.ps_left, right.ps_left, left.rho + right.p_left)\n"
        "    if not turning:\n"
        "        turning = not _no_u_turn(left.ps_right, right.ps_right, right.rho + left.p_right)\n",
        "",
        NUTS_TESTS,
        "Stan's extra checks across the two halves of a merge are dropped",
    ),
    Mutant(
        "nuts-divergence-not-flagged",
        "quivers/inference/nuts.py",
        "                tree.diverging = True\n",
        "                tree.diverging = False\n",
        (
            "tests/inference/test_mcmc.py::test_divergences_none_on_a_benign_target_many_on_the_funnel",
        ),
        "an energy error above the threshold no longer marks the transition divergent",
    ),
    Mutant(
        "iterative-u-turn-checked-at-one-end",
        "quivers/inference/nuts_iterative.py",
        "    return rho, ~(rowdot(sharp, rhos) > 0.0).all(-1)\n",
        "    return rho, ~(rowdot(sharp, rhos)[:, 1::2] > 0.0).all(-1)\n",
        ITERATIVE_TESTS,
        "the iterative tree's top-level no-U-turn checks look at one end only",
    ),
    Mutant(
        "iterative-no-inner-checks",
        "quivers/inference/nuts_iterative.py",
        "    turned = (turns & merge_on).any(-1)\n",
        "    turned = (turns & merge_on & False).any(-1)\n",
        ITERATIVE_TESTS,
        "the iterative tree never checks its subtrees for a U-turn",
    ),
    Mutant(
        "iterative-no-whole-tree-check",
        "quivers/inference/nuts_iterative.py",
        "    return left, right, rho, log_weight, zq, zg, zu, zh, ok & ~turned\n",
        "    return left, right, rho, log_weight, zq, zg, zu, zh, ok\n",
        ITERATIVE_TESTS,
        "the iterative tree never checks the merged trajectory for a U-turn",
    ),
    Mutant(
        "iterative-divergence-not-flagged",
        "quivers/inference/nuts_iterative.py",
        "    diverged = delta > max_energy_error\n",
        "    diverged = delta > math.inf\n",
        ITERATIVE_TESTS,
        "an energy error above the threshold no longer ends the iterative tree",
    ),
    Mutant(
        "iterative-proposal-always-the-leaf",
        "quivers/inference/nuts_iterative.py",
        "    chose_first = merge_on & ~keep_second\n",
        "    chose_first = merge_on & False\n",
        ITERATIVE_TESTS,
        "uniform progressive sampling inside a subtree always keeps the newest half",
    ),
    Mutant(
        "dual-averaging-sign",
        "quivers/inference/adaptation.py",
        "eta * (self.target - accept_stat)",
        "eta * (accept_stat - self.target)",
        ("tests/inference/test_mcmc.py::test_nuts_normal_normal",),
        "step-size adaptation moves away from the target acceptance",
    ),
    Mutant(
        "mass-matrix-not-adapted",
        "quivers/inference/adaptation.py",
        "                self.inv_mass = self.welford.regularized_variance().to(q.dtype)\n",
        "                self.inv_mass = self.inv_mass.to(q.dtype)\n",
        ("tests/inference/test_mcmc.py::test_nuts_normal_normal",),
        "the windowed variance estimate never becomes the inverse metric",
    ),
    Mutant(
        "predictive-collapsed-guide",
        "quivers/inference/predictive.py",
        "        return [{k: _index(v, i) for k, v in draw.values.items()} for i in range(n)]",
        "        return [post.median() for i in range(n)]",
        ("tests/inference/test_svi.py::test_predictive_from_guide_and_prior",),
        "posterior predictive draws use the guide's median instead of draws",
    ),
    Mutant(
        "batched-wide-pick-takes-first-rows",
        "quivers/inference/batched.py",
        "        return torch.stack([x if m else y for m, x, y in zip(mask, a, b, strict=True)])",
        "        return torch.stack([x for m, x, y in zip(mask, a, b, strict=True)])",
        ("tests/inference/test_vectorized.py",),
        "picking wide rows by stacking keeps the first tensor's rows whatever the mask",
    ),
    Mutant(
        "inductor-decompositions-bypass-the-cache",
        "quivers/inference/inductor.py",
        "    table = decomposition_table()\n",
        "    table = dict(decomposition_table())\n",
        ("tests/inference/test_inductor.py",),
        "the decompositions handed over as a plain dict: TorchInductor bypasses its cache",
    ),
    Mutant(
        "static-leaf-reads-one-level-too-few",
        "quivers/inference/nuts_graph.py",
        "    merged = trailing_ones(i)\n    rows = level_v[0].shape[0]\n",
        "    merged = max(trailing_ones(i) - 1, 0)\n    rows = level_v[0].shape[0]\n",
        ("tests/inference/test_nuts_iterative.py::test_the_compiled_transition_is_the_eager_tree",),
        "a compiled chunk's leaf with a static plan merges one level too few",
    ),
    Mutant(
        "compiled-top-merge-reads-the-padding",
        "quivers/inference/nuts_graph.py",
        "        block.index_select(1, last)[:, 0],\n",
        "        block[:, -1],\n",
        ("tests/inference/test_nuts_iterative.py::test_the_compiled_transition_is_the_eager_tree",),
        "the compiled end of a doubling reads the padded block's last uniform, not its own",
    ),
    Mutant(
        "traced-signature-ignores-aliasing",
        "quivers/inference/compile.py",
        "    same = None if len(set(ids)) == len(ids) else tuple(ids.index(i) for i in ids)\n",
        "    same = None\n",
        (
            "tests/inference/test_traced.py::test_one_tensor_passed_twice_is_not_taken_for_two_tensors_later",
        ),
        "a graph traced on f(x, x) is reused for f(x, y) (it reads one tensor for both)",
    ),
    Mutant(
        "transition-graph-keeps-replaced-data",
        "quivers/inference/nuts_graph.py",
        "    def baked(self) -> object:\n        return self.data()\n",
        "    def baked(self) -> object:\n        return None\n",
        (
            "tests/inference/test_nuts_iterative.py::test_the_compiled_tree_reads_the_current_data_between_transitions",
        ),
        "the compiled transition keeps the data it was traced on after they are replaced",
    ),
    Mutant(
        "aot-autograd-cache-left-on",
        "quivers/inference/inductor.py",
        "enable_autograd_cache=False",
        "enable_autograd_cache=True",
        (
            "tests/inference/test_inductor.py::test_a_changed_backend_never_runs_a_graph_the_old_one_compiled",
        ),
        "the AOT autograd cache serves a graph decomposed by an older backend",
    ),
)


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def check_snippets(mutants: list[Mutant]) -> list[str]:
    problems = []
    for m in mutants:
        path = ROOT / m.path
        if not path.is_file():
            problems.append(f"{m.name}: {m.path} does not exist")
            continue
        count = path.read_text().count(m.original)
        if count != 1:
            problems.append(
                f"{m.name}: the snippet occurs {count} times in {m.path} (expected once):\n"
                + "".join(f"    | {line}\n" for line in m.original.splitlines())
            )
    return problems


def copy_tree(dest: Path) -> None:
    for rel in tracked_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)


def pytest(copy: Path, tests: tuple[str, ...], workers: int = 0) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=f"{copy}{os.pathsep}{copy / 'server'}")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider"]
    if workers > 1:
        cmd += ["-n", str(workers), "-p", "no:benchmark"]
    proc = subprocess.run([*cmd, *tests], cwd=copy, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return proc.returncode, lines[-1] if lines else proc.stderr.strip()[-200:]


# pytest's exit status: 1 is "some test failed"; 2-5 (interrupted, internal error,
# usage error, nothing collected) mean the run said nothing about the mutant
TESTS_FAILED = 1


def run_mutant(copy: Path, m: Mutant) -> tuple[str, str, str, str]:
    """Apply ``m`` to ``copy``, run its tests, restore the file: (name, verdict, time,
    pytest's last line)."""
    path = copy / m.path
    text = path.read_text()
    path.write_text(text.replace(m.original, m.replacement, 1))
    started = time.monotonic()
    try:
        code, summary = pytest(copy, m.tests)
    finally:
        path.write_text(text)
    verdict = {0: "SURVIVED", TESTS_FAILED: "killed"}.get(code, f"ERROR({code})")
    return m.name, verdict, f"{time.monotonic() - started:.0f}s", summary


def check_imports_from(copy: Path) -> None:
    """The tests must exercise the copy, not an installed package."""
    env = dict(os.environ, PYTHONPATH=f"{copy}{os.pathsep}{copy / 'server'}")
    where = subprocess.run(
        [sys.executable, "-c", "import quivers; print(quivers.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"mutants: 'import quivers' in the copy loads {where}, not the copy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="do not first run the tests on the unmutated copy (CI: its default step has "
        "just passed them on the same tree)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="mutants run at once, each in its own copy (default: 2, or 1 on one core)",
    )
    args = parser.parse_args()
    by_name = {m.name: m for m in MUTANTS}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        print(f"mutants: unknown mutant(s) {unknown}; --list shows them", file=sys.stderr)
        return 2
    selected = [by_name[n] for n in args.names] if args.names else list(MUTANTS)
    if args.list:
        for m in selected:
            print(f"{m.name:36} {m.path:34} {m.why}")
        return 0
    problems = check_snippets(selected)
    if problems:
        print("mutants: FAILED: snippets that no longer match the code:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        print("update them in scripts/mutants.py (docs/dev/testing.md)", file=sys.stderr)
        return 2
    jobs = max(1, min(args.jobs, len(selected)))
    with tempfile.TemporaryDirectory(prefix="qvr-mutants-") as tmp:
        # one copy per worker: a worker's mutant is in its copy's files while it runs
        copies = [Path(tmp) / f"repo{i}" for i in range(jobs)]
        for copy in copies:
            copy_tree(copy)
            check_imports_from(copy)
        all_tests = tuple(dict.fromkeys(t for m in selected for t in m.tests))
        started = time.monotonic()
        if args.skip_baseline:
            print("baseline (no mutant): skipped (--skip-baseline)")
        else:
            code, summary = pytest(copies[0], all_tests, workers=jobs)
            print(f"baseline (no mutant): {summary} [{time.monotonic() - started:.0f}s]")
            if code != 0:
                print(
                    "mutants: FAILED: the unmutated copy does not pass its tests", file=sys.stderr
                )
                return 2
        free: queue.Queue[Path] = queue.Queue()
        for copy in copies:
            free.put(copy)

        def on_a_free_copy(m: Mutant) -> tuple[str, str, str, str]:
            copy = free.get()
            try:
                row = run_mutant(copy, m)
            finally:
                free.put(copy)
            print(f"{row[0]:36} {row[1]:9} {row[2]:>5}  {row[3]}", flush=True)
            return row

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(on_a_free_copy, selected))
    survived = [r[0] for r in rows if r[1] == "SURVIVED"]
    errors = [r[0] for r in rows if r[1].startswith("ERROR")]
    killed = len(rows) - len(survived) - len(errors)
    print(f"\n{killed} killed, {len(survived)} survived, {len(errors)} errors of {len(rows)}")
    if survived:
        print("survivors: " + ", ".join(survived))
    if errors:
        print("errors (pytest did not run the tests to a verdict): " + ", ".join(errors))
        return 2
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
