"""A/B of the iterative NUTS tree's compiled step: K leaves per compiled call.

``NUTSKernel(leaves_per_call=K)`` runs up to K leapfrog steps of the iterative tree
in one compiled graph (``quivers/inference/nuts_iterative.py``). This script times
one transition per variant, alternating the variants in one process, from the same
warmed-up state with the same seed (so every variant builds the same trees, which
it checks), and reports CPU ms per leapfrog step (one step of every chain) and the
first transition's cost (tracing and compiling the graphs; run with an empty
``TORCHINDUCTOR_CACHE_DIR`` to see the cold cost). With one chain, ``recursive`` is
the recursive tree on the compiled potential (``tree="recursive"``).

Run from the repository root::

    python benchmarks/ab_tree_chunks.py --target gauss100 --chains 4 --variant 1 --variant 8

Figures are recorded in docs/benchmarks.md ("Issue 16, fifth round").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "inference"))

from inference_models import EightSchools, correlated_100d, eight_schools_data  # noqa: E402

from quivers.inference import MCMC, NUTSKernel  # noqa: E402
from quivers.inference.batched import BatchedPotential, BatchPoint  # noqa: E402
from quivers.inference.integrator import PhasePoint  # noqa: E402
from quivers.inference.potential import Potential  # noqa: E402


def _target(name: str) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    if name == "gauss100":
        return correlated_100d(), None, {}
    x, obs = eight_schools_data()
    return EightSchools(centred=False), x, obs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["gauss100", "eight_schools"], default="gauss100")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--variant", action="append", help="leaves per call (a power of two) or 'recursive'"
    )
    parser.add_argument("--transitions", type=int, default=20, help="per block")
    parser.add_argument("--blocks", type=int, default=7)
    args = parser.parse_args()
    variants = args.variant or ["1", "8"]
    torch.set_num_threads(1)
    model, x, obs = _target(args.target)
    # a warmed-up state: the step sizes and metrics of a short run
    warm = MCMC(NUTSKernel(), num_warmup=150, num_samples=1, num_chains=args.chains, seed=0).run(
        model, x, obs
    )
    with torch.no_grad():
        trace = model.trace(x, obs)
    potential = Potential(model, x, obs, trace, compile=True)
    steps = [float(s) for s in warm.step_sizes]
    inv_mass = warm.inverse_mass.to(warm.unconstrained.dtype)
    start = [PhasePoint(q, *potential.value_and_grad(q)) for q in warm.unconstrained[:, -1]]
    runners: dict[str, Any] = {}
    for v in variants:
        if v == "recursive":
            kernel = NUTSKernel(tree="recursive")

            def run(seed: int, kernel: NUTSKernel = kernel) -> tuple[int, list[int]]:
                torch.manual_seed(seed)
                total, sizes = 0, []
                for c, point in enumerate(start):
                    for _ in range(args.transitions):
                        point, info = kernel.transition(potential, point, steps[c], inv_mass[c])
                        total += info.num_steps
                        sizes.append(info.num_steps)
                return total, sizes

        else:
            kernel = NUTSKernel(tree="iterative", leaves_per_call=int(v))
            batched = BatchedPotential(potential)

            def run(
                seed: int, kernel: NUTSKernel = kernel, batched: BatchedPotential = batched
            ) -> tuple[int, list[int]]:
                torch.manual_seed(seed)
                state = BatchPoint.stack(start)
                total, sizes = 0, []
                for _ in range(args.transitions):
                    state, infos = kernel.transition_batch(batched, state, steps, inv_mass)
                    total += max(i.num_steps for i in infos)  # batched steps
                    sizes.extend(i.num_steps for i in infos)
                return total, sizes

        runners[v] = run
    for v, run in runners.items():
        t0, w0 = time.process_time(), time.perf_counter()
        run(10_000)
        print(
            f"{v}: first block (compiles) {time.process_time() - t0:.1f} CPU s, "
            f"{time.perf_counter() - w0:.1f} wall s",
            flush=True,
        )
    per_step: dict[str, list[float]] = {v: [] for v in variants}
    for b in range(args.blocks):
        seen = None
        for v, run in runners.items():
            t0 = time.process_time()
            total, sizes = run(b)
            per_step[v].append(1e3 * (time.process_time() - t0) / total)
            if v != "recursive":
                if seen is not None and sizes != seen:
                    raise SystemExit(f"variant {v} built other trees than the first variant")
                seen = sizes
    for v in variants:
        print(
            f"{args.target}, {args.chains} chains, {v}: median {statistics.median(per_step[v]):.4f} "
            f"CPU ms per leapfrog step (blocks: {', '.join(f'{t:.3f}' for t in per_step[v])})"
        )


if __name__ == "__main__":
    main()
