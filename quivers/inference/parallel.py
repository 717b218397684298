"""``chain_method="parallel"``: one worker process per chain (``torch.multiprocessing``
with the ``spawn`` start method, so that no parent thread state is forked).

For models that do not vectorise, or that are expensive enough for a process per
chain to pay off. Each worker runs one sequential chain seeded ``seed + c`` on one
intra-op thread and sends its progress and its result back through a queue; the
parent polls ``should_stop`` while it waits, and on a stop ends the workers and
returns the finished chains (``complete=False``). A worker's
:class:`~quivers.inference.compile.CompileFallbackWarning` (``compile=True``) is
issued again in the parent, where the caller sees it. The model, its inputs and the
kernel must be picklable.
"""

from __future__ import annotations

import pickle
import queue as queue_module
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.multiprocessing as mp

from quivers.inference.compile import CompileFallbackWarning
from quivers.inference.compile_status import recording_compile_fallbacks
from quivers.inference.progress import InferenceCancelled, ProgressFn, ProgressInfo, StopFn
from quivers.runtime.trace import Model, leaves, unflatten

if TYPE_CHECKING:
    from quivers.inference.mcmc import MCMC, MCMCResult

POLL_SECONDS = 0.2  # how often the parent checks should_stop while it waits


def _worker(chain: int, job: dict[str, Any], out: Any) -> None:
    from quivers.inference.mcmc import MCMC

    torch.set_num_threads(1)
    try:
        runner = MCMC(
            job["kernel"],
            num_warmup=job["num_warmup"],
            num_samples=job["num_samples"],
            num_chains=1,
            seed=job["seed"],
            init_strategy=job["init_strategy"],
            max_init_attempts=job["max_init_attempts"],
            chain_method="sequential",
            compile=job["compile"],
        )

        def report(info: ProgressInfo) -> None:
            out.put(("progress", chain, info))

        with recording_compile_fallbacks() as fallbacks:
            result = runner.run(
                job["model"],
                job["x"],
                job["observations"],
                init_params=job["init_params"],
                progress=report if job["progress"] else None,
                run_kwargs=job["run_kwargs"],
            )
        for text in fallbacks:  # the parent warns: a worker's stderr is easy to lose
            out.put(("warning", chain, text))
        # plain pickle bytes: torch.multiprocessing would share the storages through
        # file descriptors that die with this process
        out.put(("done", chain, pickle.dumps(result)))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which re-raises
        out.put(("error", chain, f"{type(err).__name__}: {err}"))


def concat_chains(results: list[MCMCResult], complete: bool = True) -> MCMCResult:
    """One result whose chains are those of ``results``, in order."""
    from quivers.inference.mcmc import MCMCResult

    first = results[0]

    def cat(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts, dim=0)

    samples = {
        name: unflatten(
            first.samples[name],
            [
                cat(list(group))
                for group in zip(*(leaves(r.samples[name]) for r in results), strict=True)
            ],
        )
        for name in first.samples
    }
    fields = [
        "unconstrained",
        "acceptance_rates",
        "divergence_counts",
        "warmup_divergence_counts",
        "step_sizes",
        "inverse_mass",
        "accept_stats",
        "num_steps",
        "tree_depths",
        "diverging",
        "energy",
    ]
    joined: dict[str, Any] = {f: cat([getattr(r, f) for r in results]) for f in fields}
    return MCMCResult(
        samples=samples,
        num_warmup=first.num_warmup,
        complete=complete,
        observations=first.observations,
        **joined,
    )


def run_parallel(
    mcmc: MCMC,
    model: Model,
    x: Any,
    observations: Mapping[str, Any] | None,
    init_params: Mapping[str, Any] | None,
    progress: ProgressFn | None,
    should_stop: StopFn | None,
    run_kwargs: Mapping[str, Any] | None,
) -> MCMCResult:
    seed = mcmc.seed if mcmc.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = []
    for c in range(mcmc.num_chains):
        job = {
            "kernel": mcmc.kernel,
            "num_warmup": mcmc.num_warmup,
            "num_samples": mcmc.num_samples,
            "seed": seed + c,
            "init_strategy": mcmc.init_strategy,
            "max_init_attempts": mcmc.max_init_attempts,
            "model": model,
            "x": x,
            "observations": dict(observations or {}),
            "init_params": dict(init_params) if init_params else None,
            "run_kwargs": dict(run_kwargs or {}),
            "progress": progress is not None,
            "compile": mcmc.compile,
        }
        proc = ctx.Process(target=_worker, args=(c, job, out), daemon=True)
        proc.start()
        workers.append(proc)
    results: dict[int, MCMCResult] = {}
    try:
        while len(results) < len(workers):
            if should_stop is not None and should_stop():
                done = [results[c] for c in sorted(results)]
                raise InferenceCancelled(
                    f"MCMC stopped with {len(done)} of {len(workers)} parallel chains finished",
                    concat_chains(done, complete=False) if done else None,
                )
            try:
                kind, chain, payload = out.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                dead = [c for c, p in enumerate(workers) if not p.is_alive() and c not in results]
                if dead and out.empty():
                    raise RuntimeError(
                        f"MCMC worker for chain {dead[0]} exited without a result"
                    ) from None
                continue
            if kind == "progress" and progress is not None:
                info: ProgressInfo = payload
                info.chain, info.num_chains = chain, len(workers)
                progress(info)
            elif kind == "warning":
                warnings.warn(payload, CompileFallbackWarning, stacklevel=2)
            elif kind == "done":
                results[chain] = pickle.loads(payload)
            elif kind == "error":
                raise RuntimeError(f"MCMC chain {chain} failed in its worker: {payload}")
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=10)
    return concat_chains([results[c] for c in range(len(workers))])
