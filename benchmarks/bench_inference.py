"""Inference benchmarks (figures recorded in docs/benchmarks.md, "Inference").

1. NUTS effective samples per second on a 100-dimensional correlated Gaussian
   (covariance D R D, R_ij = 0.9^|i-j|, scales in [0.5, 2]); bulk ESS (Vehtari et al.
   2021) of the worst coordinate divided by the sampling time. When ``pyro-ppl`` is
   importable, Pyro's NUTS runs on the same target with the same budget, its draws
   scored by the same ESS code, and the ratio is printed.
2. NUTS on the seed's lifted model (``nuts_posterior.py``: vanilla_rnn_lm at batch 4 x
   length 8, every weight lifted under a Normal(0, 1) prior, plus the trajectory h;
   66,048 coordinates), bulk ESS (worst and median coordinate) per CPU second of
   sampling. With Pyro, the same model written in Pyro (one site per weight, one site
   ``h_t`` per scan step) is first checked to be the same target (log density and
   gradient at the starting point, relative difference below 1e-4), then Pyro's NUTS
   runs from the same starting point with the same settings and budget. With
   ``numpyro``, the same model written in NumPyro is checked the same way and run
   likewise. Ours runs eager and with ``compile=True``; ``--chains 4`` runs four
   chains (ours vectorised, NumPyro's by ``--numpyro-chain-method``; Pyro only with
   one chain).
3. Chains against NumPyro (``numpyro`` importable; the ``bench`` extra): the 100-d
   Gaussian with one chain and with four (ours vectorised, NumPyro's
   ``chain_method="vectorized"``), and eight schools (non-centred) with four, same
   budgets and settings, NumPyro's draws scored by our ESS code.
4. One SVI step (ELBO with AutoNormalGuide, Adam) on the reference program
   ``vanilla_rnn_lm`` at batch 64 x length 128, against a hand-written torch ELBO step
   of the same model in the same process (target: <= 1.3x) and, with Pyro, against
   Pyro's SVI step (``AutoNormal`` over the ``h_t`` sites, the weights an ``nn.Module``
   under ``pyro.module``, ``Trace_ELBO``, ``pyro.optim.Adam``), timed with Pyro's
   distribution validation on (its default) and off (the compiled runtime does not
   validate). All variants alternate, step by step.
   ``SVI.step`` validates the data on its first step only; a second copy of the model
   and guide, given a new copy of the same data on every step (each one validated
   again, as every step was before), gives the same-process ratio of validating once
   to validating every step, here and on the QVR eight-schools program (non-centred,
   its shipped data), a small model where the checks weigh more.

Run from the repository root: ``python benchmarks/bench_inference.py [--quick]``.
Everything runs on one intra-op thread (these are many small tensor operations), and
times are CPU seconds of this process (``time.process_time``), so that figures stay
comparable on a shared machine; wall-clock seconds are printed alongside.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "inference"))

from inference_models import (  # noqa: E402
    EIGHT_SCHOOLS_SIGMA,
    EIGHT_SCHOOLS_Y,
    EightSchools,
    correlated_100d,
    eight_schools_data,
)

from quivers.inference import ELBO, MCMC, SVI, AutoNormalGuide, NUTSKernel  # noqa: E402
from quivers.inference import diagnostics as dg  # noqa: E402

# ----------------------------------------------------------------- NUTS, 100-d


def bench_nuts(num_warmup: int, num_samples: int, seed: int) -> dict[str, float]:
    model = correlated_100d()
    marks: dict[str, float] = {}

    def progress(info) -> None:
        if info.phase == "warmup" and info.iteration == info.total:
            marks["warm_end"] = time.process_time()
            marks["warm_end_wall"] = time.perf_counter()

    start, start_wall = time.process_time(), time.perf_counter()
    result = MCMC(NUTSKernel(), num_warmup=num_warmup, num_samples=num_samples, seed=seed).run(
        model, None, {}, progress=progress
    )
    end, end_wall = time.process_time(), time.perf_counter()
    ess = dg.ess(result.samples["z"])
    sampling = end - marks["warm_end"]
    return {
        "warmup_s": marks["warm_end"] - start,
        "sampling_s": sampling,
        "wall_s": end_wall - start_wall,
        "min_ess": float(ess.min()),
        "median_ess": float(ess.median()),
        "ess_per_s": float(ess.min()) / sampling,
        "grads_per_draw": float(result.num_steps.double().mean()),
        "step_size": float(result.step_sizes[0]),
        "accept": float(result.acceptance_rates[0]),
        "divergences": int(result.divergence_counts.sum()),
    }


def bench_pyro_nuts(num_warmup: int, num_samples: int, seed: int) -> dict[str, Any] | None:
    try:
        import pyro
        import pyro.distributions as pdist
        from pyro.infer import MCMC as PyroMCMC
        from pyro.infer import NUTS as PyroNUTS
    except ImportError:
        return None
    target = correlated_100d()
    loc, tril = target.mean, target.scale_tril

    def model() -> None:
        pyro.sample("z", pdist.MultivariateNormal(loc, scale_tril=tril))

    marks: dict[str, float] = {}

    def hook(kernel, samples, stage, i) -> None:  # noqa: ANN001
        if stage == "Warmup" and i == num_warmup - 1:
            marks["warm_end"] = time.process_time()

    pyro.set_rng_seed(seed)
    kernel = PyroNUTS(model, target_accept_prob=0.8, max_tree_depth=10, full_mass=False)
    mcmc = PyroMCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=num_warmup,
        disable_progbar=True,
        hook_fn=hook,
    )
    start, start_wall = time.process_time(), time.perf_counter()
    mcmc.run()
    end, end_wall = time.process_time(), time.perf_counter()
    z = mcmc.get_samples()["z"][None]
    ess = dg.ess(z)
    sampling = end - marks["warm_end"]
    return {
        "warmup_s": marks["warm_end"] - start,
        "sampling_s": sampling,
        "wall_s": end_wall - start_wall,
        "min_ess": float(ess.min()),
        "median_ess": float(ess.median()),
        "ess_per_s": float(ess.min()) / sampling,
        "version": pyro.__version__,
    }


# ------------------------------------------ chains: quivers against NumPyro


def _target(name: str) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    if name == "gauss100":
        return correlated_100d(), None, {}
    x, obs = eight_schools_data()
    return EightSchools(centred=False), x, obs


def bench_chains(
    target: str,
    num_chains: int,
    num_warmup: int,
    num_samples: int,
    seed: int,
    compile: bool = False,
    tree: str | None = None,
) -> dict[str, Any]:
    """Our NUTS with ``num_chains`` chains (vectorised when more than one); the
    sampling phase's CPU seconds, worst-coordinate bulk ESS over every site. With
    ``compile`` the compilation happens in warmup (its first calls); ``tree`` is
    ``NUTSKernel``'s (None: iterative for several chains, recursive for one)."""
    model, x, obs = _target(target)
    marks: dict[str, float] = {}

    def progress(info: Any) -> None:
        if info.phase == "warmup" and info.iteration == info.total:
            marks["warm_end"] = time.process_time()

    start = time.process_time()
    result = MCMC(
        NUTSKernel(tree=tree),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        seed=seed,
        compile=compile,
    ).run(model, x, obs, progress=progress)
    end = time.process_time()
    ess = dg.ess(_flat_draws(result.samples, 2))
    sampling = end - marks.get("warm_end", start)
    grads = float(result.num_steps.double().sum())
    return {
        "sampling_s": sampling,
        "warmup_s": marks.get("warm_end", start) - start,
        "min_ess": float(ess.min()),
        "ess_per_s": float(ess.min()) / sampling,
        "ms_per_grad": 1e3 * sampling / grads,
        "grads_per_draw": grads / (num_chains * num_samples),
        "divergences": int(result.divergence_counts.sum()),
    }


def bench_numpyro_chains(
    target: str, num_chains: int, num_warmup: int, num_samples: int, seed: int
) -> dict[str, Any] | None:
    """NumPyro's NUTS on the same target, budget and settings (diagonal metric,
    target acceptance 0.8, depth 10), chains vectorised; scored by our ESS code. The
    sampling time includes NumPyro's JIT compilation of the sampling loop (a few
    seconds); warmup includes the warmup loop's."""
    try:
        import jax
        import numpyro
        import numpyro.distributions as nd
        from numpyro.infer import MCMC as NMCMC
        from numpyro.infer import NUTS as NNUTS
    except ImportError:
        return None
    import numpy as np

    if target == "gauss100":
        ref = correlated_100d()
        loc, tril = ref.mean.numpy(), ref.scale_tril.numpy()

        def model() -> None:
            numpyro.sample("z", nd.MultivariateNormal(loc, scale_tril=tril))

        args: tuple[Any, ...] = ()
    else:
        sigma = np.asarray(EIGHT_SCHOOLS_SIGMA, dtype=np.float32)
        y = np.asarray(EIGHT_SCHOOLS_Y, dtype=np.float32)

        def model(sigma: Any, y: Any) -> None:  # type: ignore[misc]
            mu = numpyro.sample("mu", nd.Normal(0.0, 5.0))
            tau = numpyro.sample("tau", nd.HalfCauchy(5.0))
            eta = numpyro.sample("eta", nd.Normal(np.zeros(8, np.float32), 1.0).to_event(1))
            numpyro.sample("y", nd.Normal(mu + tau * eta, sigma).to_event(1), obs=y)

        args = (sigma, y)
    kernel = NNUTS(model, target_accept_prob=0.8, max_tree_depth=10, dense_mass=False)
    mcmc = NMCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized" if num_chains > 1 else "sequential",
        progress_bar=False,
    )
    key = jax.random.PRNGKey(seed)
    t0 = time.process_time()
    mcmc.warmup(key, *args, extra_fields=("num_steps",))
    jax.block_until_ready(mcmc.post_warmup_state)
    t1 = time.process_time()
    mcmc.run(mcmc.post_warmup_state.rng_key, *args, extra_fields=("num_steps", "diverging"))
    got = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(got)
    t2 = time.process_time()
    draws = {k: torch.from_numpy(np.asarray(v)) for k, v in got.items()}
    ess = dg.ess(_flat_draws(draws, 2))
    extra = mcmc.get_extra_fields()
    grads = float(np.asarray(extra["num_steps"]).sum())
    return {
        "sampling_s": t2 - t1,
        "warmup_s": t1 - t0,
        "min_ess": float(ess.min()),
        "ess_per_s": float(ess.min()) / (t2 - t1),
        "ms_per_grad": 1e3 * (t2 - t1) / grads,
        "grads_per_draw": grads / (num_chains * num_samples),
        "divergences": int(np.asarray(extra["diverging"]).sum()),
        "version": numpyro.__version__,
    }


CHAIN_TARGETS = {
    "gauss100-1": ("gauss100", 1),
    "gauss100-4": ("gauss100", 4),
    "eight_schools-4": ("eight_schools", 4),
}


VARIANTS = ("eager", "compiled", "numpyro")
LIFTED = (*VARIANTS, "pyro")  # the lifted model's samplers


def print_chains(
    warm: int,
    draws: int,
    targets: list[tuple[str, int]] | None = None,
    variants: list[str] | None = None,
    trees: list[str | None] | None = None,
) -> None:
    """The issue's targets: 100-d Gaussian with 1 and 4 chains, eight schools
    (non-centred) with 4 chains, quivers (eager and compile=True, with each of
    ``trees``: None is the default tree) against NumPyro."""
    want = set(variants or VARIANTS)
    for target, chains in targets or list(CHAIN_TARGETS.values()):
        rows: list[tuple[str, dict[str, Any] | None]] = []
        for tree in trees or [None]:
            name = "quivers" if tree is None else f"quivers tree={tree}"
            if "eager" in want:
                rows.append((name, bench_chains(target, chains, warm, draws, seed=0, tree=tree)))
            if "compiled" in want:
                fast = bench_chains(target, chains, warm, draws, seed=0, compile=True, tree=tree)
                rows.append((f"{name} compile=True", fast))
        theirs = (
            bench_numpyro_chains(target, chains, warm, draws, seed=0) if "numpyro" in want else None
        )
        print(f"{target}, {chains} chain(s), {warm} warmup + {draws} draws each:")
        for label, r in rows + ([(f"NumPyro {theirs['version']}", theirs)] if theirs else []):
            assert r is not None
            print(
                f"  {label}: sampling {r['sampling_s']:.1f} CPU s (warmup {r['warmup_s']:.1f}), "
                f"min bulk ESS {r['min_ess']:.0f}, {r['ess_per_s']:.1f} min-ESS per CPU s, "
                f"{r['ms_per_grad']:.3f} ms per gradient, {r['grads_per_draw']:.1f} "
                f"gradients/draw, divergences {r['divergences']}"
            )
        for label, r in rows:
            if theirs and r is not None:
                print(
                    f"  ESS/s ratio {label} / NumPyro: {r['ess_per_s'] / theirs['ess_per_s']:.2f}"
                )
        if "numpyro" in want and theirs is None:
            print("  numpyro not importable: no NumPyro comparison")


# ------------------------------------------------ the reference program, shared

EMBED = "_step_h.parts.0.weight"
CELL = "_step_h.parts.1.cell.source.net.layers"
HEAD = "_step_next_token.source.net.layers"


def reference_model(batch: int, length: int) -> tuple[Any, torch.Tensor, torch.Tensor] | None:
    """The seed snippets' set-up: vanilla_rnn_lm with weights 0.3 N(0, 1) under seed
    0, random prompts and next tokens drawn from the model (None without the
    compiled runtime)."""
    try:
        from quivers.dsl import load
    except ImportError:
        return None
    torch.manual_seed(0)
    model: Any = load(str(ROOT / "docs" / "examples" / "source" / "vanilla_rnn_lm.qvr")).morphism
    for _, p in model.named_parameters():
        p.data.copy_(torch.randn_like(p) * 0.3)
    x = torch.randint(0, 256, (batch, length))
    with torch.no_grad():
        y = model.rsample(x)
    return model, x, y


def cell_loc(w: Mapping[str, torch.Tensor], e_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The scan cell's mean: a tanh MLP (width 64) of cat(x_t, h_{t-1})."""
    hid = torch.tanh(torch.cat([e_t, h], -1) @ w[f"{CELL}.0.weight"].T + w[f"{CELL}.0.bias"])
    return hid @ w[f"{CELL}.1.weight"].T + w[f"{CELL}.1.bias"]


def head_logits(w: Mapping[str, torch.Tensor], h_last: torch.Tensor) -> torch.Tensor:
    hid = torch.tanh(h_last @ w[f"{HEAD}.0.weight"].T + w[f"{HEAD}.0.bias"])
    return hid @ w[f"{HEAD}.1.weight"].T + w[f"{HEAD}.1.bias"]


def pyro_rnn(w: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> None:
    """vanilla_rnn_lm in Pyro given its weights ``w`` (by the compiled model's names):
    the scan as one sample site ``h_t`` per step (rows in a plate), h_t ~ Normal(loc,
    0.1), h_0 = 0, and the Categorical head on h_T observing ``y``."""
    import pyro
    import pyro.distributions as pdist

    e = w[EMBED][x]
    h = e.new_zeros(x.shape[0], w[f"{CELL}.1.bias"].shape[0])
    with pyro.plate("rows", x.shape[0]):
        for t in range(x.shape[1]):
            h = pyro.sample(f"h_{t}", pdist.Normal(cell_loc(w, e[:, t], h), 0.1).to_event(1))
        pyro.sample("next_token", pdist.Categorical(logits=head_logits(w, h)), obs=y)


def pyro_lifted(shapes: Mapping[str, torch.Size], x: torch.Tensor, y: torch.Tensor) -> None:
    """The seed's lifted model in Pyro: a Normal(0, 1) prior on every weight, then
    :func:`pyro_rnn`."""
    import pyro
    import pyro.distributions as pdist

    w = {
        n: pyro.sample(n, pdist.Normal(torch.zeros(s), 1.0).to_event(len(s)))
        for n, s in shapes.items()
    }
    pyro_rnn(w, x, y)


def _flat_draws(samples: Mapping[str, torch.Tensor], lead: int) -> torch.Tensor:
    """Every coordinate of every site side by side: (chains, draws, D)."""
    parts = [v.reshape(*v.shape[:lead], -1) for v in samples.values()]
    out = torch.cat(parts, dim=-1)
    return out if lead == 2 else out[None]


def _ess_stats(draws: torch.Tensor, sampling: float) -> dict[str, Any]:
    ess = dg.ess(draws)
    return {
        "sampling_s": sampling,
        "min_ess": float(ess.min()),
        "median_ess": float(ess.median()),
        "min_ess_per_s": float(ess.min()) / sampling,
        "median_ess_per_s": float(ess.median()) / sampling,
    }


def bench_lifted_nuts(
    batch: int,
    length: int,
    num_warmup: int,
    num_samples: int,
    depth: int,
    seed: int,
    chains: int = 1,
    variants: tuple[str, ...] = ("eager", "compiled", "numpyro", "pyro"),
    numpyro_chain_method: str = "vectorized",
) -> dict[str, Any] | None:
    """NUTS on ``nuts_posterior.py``'s lifted model: quivers (eager and
    ``compile=True``) and, when importable, NumPyro and Pyro (each model written by
    hand and checked to be the same density), from the same starting point (a prior
    draw), same settings and budget. With ``chains`` > 1 ours are vectorised and
    NumPyro's ``chain_method="vectorized"``; Pyro (one chain per process) runs only
    with one chain."""
    ref = reference_model(batch, length)
    if ref is None:
        return None
    from quivers.inference import bayesian_lift_parameters

    model, x, y = ref
    h_shape = tuple(model._step_h.rsample(x).shape)
    lifted, lx, lobs = bayesian_lift_parameters(
        model, x, {"next_token": y}, prior_scale=1.0, additional_latents={"h": h_shape}
    )
    torch.manual_seed(seed)
    with torch.no_grad():
        start = {n: s.trace for n, s in lifted.trace(lx, lobs).items() if n in lifted.latent_names}
    out: dict[str, Any] = {"dim": sum(v.numel() for v in start.values())}

    out["chains"] = chains
    for variant in ("eager", "compiled"):
        if variant in variants:
            out[f"quivers {variant}"] = _lifted_ours(
                lifted, lx, lobs, start, num_warmup, num_samples, depth, seed, chains, variant
            )
    shapes = {n: v.shape for n, v in start.items() if n != "h"}
    # our log density and gradient at the starting point, which the hand-written
    # NumPyro and Pyro models must reproduce
    ours_q = {n: v.clone().requires_grad_(True) for n, v in start.items()}
    lp_ours = lifted.log_joint(lx, {**lobs, **ours_q})
    g_ours = torch.autograd.grad(lp_ours, list(ours_q.values()))
    theirs = None
    if "numpyro" in variants:
        theirs = bench_numpyro_lifted(
            shapes,
            x,
            y,
            start,
            float(lp_ours.detach()),
            dict(zip(start, g_ours, strict=True)),
            num_warmup,
            num_samples,
            depth,
            seed,
            chains,
            numpyro_chain_method,
        )
    if theirs is not None:
        theirs["chain_method"] = numpyro_chain_method
        out["numpyro"] = theirs

    if "pyro" not in variants or chains != 1:
        return out
    try:
        import pyro
        from pyro.infer import MCMC as PyroMCMC
        from pyro.infer import NUTS as PyroNUTS
        from pyro.infer.mcmc.util import initialize_model
    except ImportError:
        return out
    pstart = {n: v for n, v in start.items() if n != "h"}
    pstart.update({f"h_{t}": start["h"][:, t] for t in range(length)})

    # the same target: log densities and gradients at the starting point
    _, potential_fn, _, _ = initialize_model(pyro_lifted, model_args=(shapes, x, y))
    theirs_q = {n: v.clone().requires_grad_(True) for n, v in pstart.items()}
    lp_pyro = -potential_fn(theirs_q)
    g_pyro = torch.autograd.grad(lp_pyro, list(theirs_q.values()))
    g_pyro_flat = torch.cat([g.reshape(-1) for g in g_pyro[: len(shapes)]])
    g_pyro_h = torch.stack(list(g_pyro[len(shapes) :]), dim=1)
    g_ours_flat = torch.cat([g.reshape(-1) for g in g_ours[: len(shapes)]])
    g_ours_h = g_ours[len(shapes)]
    lp_a, lp_b = float(lp_ours.detach()), float(lp_pyro.detach())
    check: dict[str, Any] = {"log_density": (lp_a, lp_b), "rel_diff": abs(lp_a - lp_b) / abs(lp_a)}
    check["grad_rel_diff"] = float(
        torch.linalg.vector_norm(
            torch.cat([g_ours_flat - g_pyro_flat, (g_ours_h - g_pyro_h).reshape(-1)])
        )
        / torch.linalg.vector_norm(torch.cat([g_ours_flat, g_ours_h.reshape(-1)]))
    )

    if check["rel_diff"] > 1e-4 or check["grad_rel_diff"] > 1e-4:
        raise RuntimeError(f"the Pyro model is not the same target: {check}")

    calls = [0]

    def counted(shapes: Mapping[str, torch.Size], x: torch.Tensor, y: torch.Tensor) -> None:
        calls[0] += 1
        pyro_lifted(shapes, x, y)

    pmarks: dict[str, float] = {}

    def hook(kernel, samples, stage, i) -> None:  # noqa: ANN001
        if stage == "Warmup" and i == num_warmup - 1:
            pmarks["warm_end"] = time.process_time()
            pmarks["calls"] = calls[0]

    pyro.set_rng_seed(seed)
    pkernel = PyroNUTS(
        counted,
        step_size=0.005,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        full_mass=False,
        target_accept_prob=0.8,
        max_tree_depth=depth,
    )
    mcmc = PyroMCMC(
        pkernel,
        num_samples=num_samples,
        warmup_steps=num_warmup,
        initial_params=pstart,
        disable_progbar=True,
        hook_fn=hook,
    )
    t0, w0 = time.process_time(), time.perf_counter()
    mcmc.run(shapes, x, y)
    t1, w1 = time.process_time(), time.perf_counter()
    got = mcmc.get_samples()
    order = list(shapes) + ["h"]
    got["h"] = torch.stack([got.pop(f"h_{t}") for t in range(length)], dim=2)
    theirs = _ess_stats(_flat_draws({n: got[n] for n in order}, 1), t1 - pmarks["warm_end"])
    diag = mcmc.diagnostics()
    theirs.update(check)
    theirs.update(
        warmup_s=pmarks["warm_end"] - t0,
        wall_s=w1 - w0,
        grads_per_draw=(calls[0] - pmarks["calls"]) / num_samples,
        step_size=float(pkernel.step_size),
        accept=float(diag["acceptance rate"]["chain 0"]),
        divergences=len(diag["divergences"]["chain 0"]),
        version=pyro.__version__,
    )
    out["pyro"] = theirs
    return out


def _lifted_ours(
    lifted: Any,
    lx: Any,
    lobs: dict[str, Any],
    start: dict[str, torch.Tensor],
    num_warmup: int,
    num_samples: int,
    depth: int,
    seed: int,
    chains: int = 1,
    variant: str = "eager",
) -> dict[str, Any]:
    """Our NUTS on the lifted model from ``start`` (``variant`` "compiled":
    ``compile=True``; the compilation happens during warmup)."""
    marks: dict[str, float] = {}

    def progress(info: Any) -> None:
        if info.phase == "warmup" and info.iteration == info.total:
            marks["warm_end"] = time.process_time()

    kernel = NUTSKernel(step_size=0.005, max_tree_depth=depth, target_accept=0.8)
    t0, w0 = time.process_time(), time.perf_counter()
    res = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=chains,
        seed=seed,
        compile=variant == "compiled",
    ).run(lifted, lx, lobs, init_params=start, progress=progress)
    t1, w1 = time.process_time(), time.perf_counter()
    ours = _ess_stats(_flat_draws(res.samples, 2), t1 - marks["warm_end"])
    ours.update(
        warmup_s=marks["warm_end"] - t0,
        wall_s=w1 - w0,
        grads_per_draw=float(res.num_steps.double().mean()),
        step_size=float(res.step_sizes.double().mean()),
        accept=float(res.acceptance_rates.double().mean()),
        divergences=int(res.divergence_counts.sum()),
    )
    return ours


def numpyro_lifted(shapes: Mapping[str, torch.Size], length: int) -> Any:
    """The seed's lifted model written by hand in NumPyro, as :func:`pyro_lifted`: a
    Normal(0, 1) prior on every weight, one site ``h_t`` per scan step (rows in a
    plate) with h_t ~ Normal(loc, 0.1), loc the tanh MLP of cat(x_t, h_{t-1}) and
    h_0 = 0, and the Categorical head on h_T observing ``y``."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    def linear(w: Mapping[str, Any], name: str, v: Any) -> Any:
        return v @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def model(x: Any, y: Any) -> None:
        w = {
            n: numpyro.sample(n, nd.Normal(jnp.zeros(tuple(s)), 1.0).to_event(len(s)))
            for n, s in shapes.items()
        }
        e = w[EMBED][x]
        h = jnp.zeros((x.shape[0], shapes[f"{CELL}.1.bias"][0]))
        with numpyro.plate("rows", x.shape[0]):
            for t in range(length):
                hid = jnp.tanh(linear(w, f"{CELL}.0", jnp.concatenate([e[:, t], h], -1)))
                loc = linear(w, f"{CELL}.1", hid)
                h = numpyro.sample(f"h_{t}", nd.Normal(loc, 0.1).to_event(1))
            logits = linear(w, f"{HEAD}.1", jnp.tanh(linear(w, f"{HEAD}.0", h)))
            numpyro.sample("next_token", nd.Categorical(logits=logits), obs=y)

    return model


def bench_numpyro_lifted(
    shapes: Mapping[str, torch.Size],
    x: torch.Tensor,
    y: torch.Tensor,
    start: Mapping[str, torch.Tensor],
    lp_ours: float,
    g_ours: Mapping[str, torch.Tensor],
    num_warmup: int,
    num_samples: int,
    depth: int,
    seed: int,
    chains: int = 1,
    chain_method: str = "vectorized",
) -> dict[str, Any] | None:
    """NumPyro's NUTS on :func:`numpyro_lifted`, first checked to be our target (log
    density and gradient at ``start``, relative difference below 1e-4), then run from
    ``start`` with our settings and budget (initial step 0.005 and the same
    step-size heuristic at the start, diagonal metric, target acceptance 0.8;
    ``chains`` > 1 run by ``chain_method``)."""
    try:
        import jax
        import jax.numpy as jnp
        import numpyro
        from numpyro.infer import MCMC as NMCMC
        from numpyro.infer import NUTS as NNUTS
        from numpyro.infer import init_to_value
        from numpyro.infer.util import log_density
    except ImportError:
        return None
    import numpy as np

    length = int(start["h"].shape[1])
    model = numpyro_lifted(shapes, length)
    xj, yj = jnp.asarray(x.numpy()), jnp.asarray(y.numpy())
    params = {n: jnp.asarray(v.detach().numpy()) for n, v in start.items() if n != "h"}
    params.update({f"h_{t}": jnp.asarray(start["h"][:, t].numpy()) for t in range(length)})

    def log_joint(p: Any) -> Any:
        return log_density(model, (xj, yj), {}, p)[0]

    lp, grads = jax.value_and_grad(log_joint)(params)
    g_theirs = [np.asarray(grads[n]).reshape(-1) for n in shapes]
    g_theirs += [np.stack([np.asarray(grads[f"h_{t}"]) for t in range(length)], 1).reshape(-1)]
    g_ref = np.concatenate([g_ours[n].numpy().reshape(-1) for n in [*shapes, "h"]])
    out: dict[str, Any] = {
        "log_density": (lp_ours, float(lp)),
        "rel_diff": abs(lp_ours - float(lp)) / abs(lp_ours),
        "grad_rel_diff": float(
            np.linalg.norm(np.concatenate(g_theirs) - g_ref) / np.linalg.norm(g_ref)
        ),
        "version": numpyro.__version__,
    }
    if out["rel_diff"] > 1e-4 or out["grad_rel_diff"] > 1e-4:
        raise RuntimeError(f"the NumPyro model is not the same target: {out}")

    kernel = NNUTS(
        model,
        step_size=0.005,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        dense_mass=False,
        target_accept_prob=0.8,
        max_tree_depth=depth,
        find_heuristic_step_size=True,
        init_strategy=init_to_value(values=params),
    )
    mcmc = NMCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=chains,
        chain_method=chain_method,
        progress_bar=False,
    )
    fields = ("num_steps", "diverging", "accept_prob", "adapt_state.step_size")
    key = jax.random.PRNGKey(seed)
    t0, w0 = time.process_time(), time.perf_counter()
    mcmc.warmup(key, xj, yj, extra_fields=("num_steps",))
    jax.block_until_ready(mcmc.post_warmup_state)
    t1 = time.process_time()
    mcmc.run(mcmc.post_warmup_state.rng_key, xj, yj, extra_fields=fields)
    got = mcmc.get_samples(group_by_chain=True)  # (chains, draws, ...)
    jax.block_until_ready(got)
    t2, w2 = time.process_time(), time.perf_counter()
    draws = {n: torch.from_numpy(np.asarray(got[n])) for n in shapes}
    draws["h"] = torch.stack(
        [torch.from_numpy(np.asarray(got[f"h_{t}"])) for t in range(length)], dim=3
    )
    extra = mcmc.get_extra_fields(group_by_chain=True)
    out.update(_ess_stats(_flat_draws(draws, 2), t2 - t1))
    out.update(
        warmup_s=t1 - t0,
        wall_s=w2 - w0,
        grads_per_draw=float(np.asarray(extra["num_steps"]).mean()),
        step_size=float(np.asarray(extra["adapt_state.step_size"])[:, -1].mean()),
        accept=float(np.asarray(extra["accept_prob"]).mean()),
        divergences=int(np.asarray(extra["diverging"]).sum()),
    )
    return out


# ------------------------------------------------ SVI on the reference program


class HandRNN(torch.nn.Module):
    """vanilla_rnn_lm written directly in torch, sharing the compiled model's weights,
    with a hand-written mean-field Normal guide over h and the negative ELBO."""

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        p = params
        self.embed = p["_step_h.parts.0.weight"]
        self.w1 = p["_step_h.parts.1.cell.source.net.layers.0.weight"]
        self.b1 = p["_step_h.parts.1.cell.source.net.layers.0.bias"]
        self.w2 = p["_step_h.parts.1.cell.source.net.layers.1.weight"]
        self.b2 = p["_step_h.parts.1.cell.source.net.layers.1.bias"]
        self.v1 = p["_step_next_token.source.net.layers.0.weight"]
        self.c1 = p["_step_next_token.source.net.layers.0.bias"]
        self.v2 = p["_step_next_token.source.net.layers.1.weight"]
        self.c2 = p["_step_next_token.source.net.layers.1.bias"]

    def log_joint(self, x: torch.Tensor, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e = self.embed[x]  # (B, T, 64)
        prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        hidden = torch.tanh(torch.cat([e, prev], dim=-1) @ self.w1.T + self.b1)
        loc = hidden @ self.w2.T + self.b2
        log_h = torch.distributions.Normal(loc, 0.1, validate_args=False).log_prob(h).sum()
        logits = torch.tanh(h[:, -1] @ self.v1.T + self.c1) @ self.v2.T + self.c2
        log_y = torch.log_softmax(logits, -1).gather(-1, y[:, None]).sum()
        return log_h + log_y


def bench_svi_reference(batch: int, length: int, reps: int) -> dict[str, float] | None:
    ref = reference_model(batch, length)
    if ref is None:
        return None
    model, x, y = ref
    obs = {"next_token": y}

    # quivers: the seed-snippet set-up
    guide = AutoNormalGuide(model, observed_names={"next_token"})
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=1e-3)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))
    svi.step(x, obs)

    # hand-written: its own copy of the weights and guide, same shapes and optimiser
    params: dict[str, torch.Tensor] = {
        n: torch.nn.Parameter(p.detach().clone()) for n, p in model.named_parameters()
    }
    hand = HandRNN(params)
    with torch.no_grad():
        h0 = model.trace(x, obs)["h"].trace
    agree = abs(
        hand.log_joint(x, h0, y).item() - model.log_joint(x, {"h": h0, "next_token": y}).item()
    )
    loc = torch.nn.Parameter(h0.clone())
    raw = torch.nn.Parameter(torch.full_like(h0, math.log(math.expm1(0.1))))
    hand_optim = torch.optim.Adam([*params.values(), loc, raw], lr=1e-3)

    def hand_step() -> float:
        hand_optim.zero_grad(set_to_none=True)
        scale = torch.nn.functional.softplus(raw)
        eps = torch.randn_like(loc)
        h = loc + scale * eps
        log_q = (-0.5 * eps.square() - scale.log()).sum() - 0.5 * eps.numel() * math.log(
            2 * math.pi
        )
        loss = -(hand.log_joint(x, h, y) - log_q)
        loss.backward()
        hand_optim.step()
        return loss.item()

    hand_step()
    pyro_step = pyro_svi_step(model, x, y, h0)
    times: dict[str, list[float]] = {"quivers": [], "hand": [], "revalidated": []}
    steps: dict[str, Any] = {
        "quivers": lambda: svi.step(x, obs),
        "hand": hand_step,
        "revalidated": revalidated_step(copy.deepcopy(model), x, obs, reps),
    }
    out: dict[str, float] = {"log_joint_diff": agree}
    if pyro_step is not None:
        step, pyro_agree, enable_validation = pyro_step
        out["pyro_log_joint_diff"] = pyro_agree

        def pyro_valid() -> float:
            enable_validation(True)
            return step()

        def pyro_plain() -> float:
            enable_validation(False)
            loss = step()
            enable_validation(True)
            return loss

        steps.update(pyro=pyro_valid, pyro_novalidate=pyro_plain)
        times.update(pyro=[], pyro_novalidate=[])
    for _ in range(reps):  # alternate so that all see the same machine load
        for name, fn in steps.items():
            t = time.process_time()
            fn()
            times[name].append(time.process_time() - t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    out.update({f"{name}_ms": 1e3 * v for name, v in med.items()})
    out["ratio"] = med["quivers"] / med["hand"]
    out["once_ratio"] = med["quivers"] / med["revalidated"]
    if pyro_step is not None:
        out["pyro_ratio"] = med["quivers"] / med["pyro"]
        out["pyro_novalidate_ratio"] = med["quivers"] / med["pyro_novalidate"]
    return out


def revalidated_step(model: Any, x: Any, obs: dict[str, Any], reps: int) -> Any:
    """An SVI step on ``model`` (AutoNormalGuide, ELBO, Adam) that gets a new copy of
    ``x`` and ``obs`` each call, so that every step validates them again; the copies
    are made beforehand, out of the timed calls."""
    guide = AutoNormalGuide(model, observed_names=set(obs))
    svi = SVI(model, guide, lambda p: torch.optim.Adam(p, lr=1e-3), ELBO(num_particles=1))
    svi.step(x, obs)
    copies = [(_clone(x), {k: _clone(v) for k, v in obs.items()}) for _ in range(reps)]
    return lambda: svi.step(*copies.pop())


def _clone(value: Any) -> Any:
    return value.clone() if isinstance(value, torch.Tensor) else value


def bench_svi_validation(reps: int) -> dict[str, float] | None:
    """``SVI.step`` on the QVR eight-schools program (non-centred, its shipped data):
    data validated once (the same tensors every step) against validated every step
    (a new copy each step), alternating, median CPU time of ``reps`` steps each."""
    try:
        from quivers.dsl import load
    except ImportError:
        return None
    import json

    examples = ROOT / "docs" / "examples"
    data = json.loads((examples / "data" / "eight_schools.json").read_text())
    x = torch.tensor(data["x"])
    obs = {k: torch.tensor(data[k], dtype=torch.float32) for k in ("y", "sigma")}
    torch.manual_seed(0)
    steps = {}
    for name in ("once", "every step"):
        model = load(str(examples / "source" / "eight_schools.qvr")).morphism
        if name == "every step":
            steps[name] = revalidated_step(model, x, obs, reps)
            continue
        guide = AutoNormalGuide(model, observed_names=set(obs))
        svi = SVI(model, guide, lambda p: torch.optim.Adam(p, lr=1e-3), ELBO())
        svi.step(x, obs)
        steps[name] = lambda svi=svi: svi.step(x, obs)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, fn in steps.items():
            t = time.process_time()
            fn()
            times[name].append(time.process_time() - t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "once_ms": 1e3 * med["once"],
        "every_ms": 1e3 * med["every step"],
        "ratio": med["once"] / med["every step"],
    }


def pyro_svi_step(
    model: Any, x: torch.Tensor, y: torch.Tensor, h0: torch.Tensor
) -> tuple[Any, float, Any] | None:
    """Pyro's SVI on the reference program: the weights (a copy of the compiled
    model's) as an ``nn.Module`` registered with ``pyro.module``, ``AutoNormal``
    over the ``h_t`` sites, ``Trace_ELBO``, ``pyro.optim.Adam``. Returns the step
    function, the relative log-joint difference to the compiled model on ``h0``,
    and ``pyro.enable_validation``; None without Pyro."""
    try:
        import pyro
        from pyro import poutine
        from pyro.infer import SVI as PyroSVI
        from pyro.infer import Trace_ELBO
        from pyro.infer.autoguide import AutoNormal
    except ImportError:
        return None
    names = [n for n, _ in model.named_parameters()]

    class Weights(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ps = torch.nn.ParameterList(
                [torch.nn.Parameter(p.detach().clone()) for _, p in model.named_parameters()]
            )

        def by_name(self) -> dict[str, torch.Tensor]:
            return dict(zip(names, self.ps, strict=True))

    weights = Weights()

    def pmodel(x: torch.Tensor, y: torch.Tensor) -> None:
        pyro.module("rnn", weights)
        pyro_rnn(weights.by_name(), x, y)

    data = {f"h_{t}": h0[:, t] for t in range(h0.shape[1])}
    with torch.no_grad():
        tr = poutine.trace(poutine.condition(pmodel, data=data)).get_trace(x, y)
        lp = float(tr.log_prob_sum())
        ref = float(model.log_joint(x, {"h": h0, "next_token": y}))
        agree = abs(lp - ref) / abs(ref)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    adam = pyro.optim.Adam({"lr": 1e-3})  # type: ignore[attr-defined]
    svi = PyroSVI(pmodel, AutoNormal(pmodel), adam, Trace_ELBO())
    svi.step(x, y)
    return (lambda: svi.step(x, y)), agree, pyro.enable_validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--only-chains", action="store_true", help="only the quivers/NumPyro chain comparison"
    )
    parser.add_argument(
        "--only-lifted", action="store_true", help="only NUTS on the lifted reference program"
    )
    parser.add_argument(
        "--part",
        choices=["gaussian", *CHAIN_TARGETS, "lifted", "svi"],
        help="one part alone (the parts are independent: on a shared machine they can run "
        "as separate processes)",
    )
    parser.add_argument(
        "--variant",
        choices=list(LIFTED),
        action="append",
        help="with a chain --part or --part lifted: only these samplers (repeatable; "
        "pyro: the lifted model with one chain only)",
    )
    parser.add_argument(
        "--chains",
        type=int,
        default=1,
        help="chains on the lifted model (ours vectorised when more than one)",
    )
    parser.add_argument(
        "--numpyro-chain-method",
        choices=["vectorized", "sequential"],
        default="vectorized",
        help="NumPyro's chain method on the lifted model with several chains",
    )
    parser.add_argument(
        "--tree",
        choices=["default", "iterative", "recursive"],
        action="append",
        help="with a chain --part: NUTSKernel's tree (repeatable; default: the default "
        "tree, iterative for several chains or compile=True, recursive for one eager chain)",
    )
    args = parser.parse_args()
    trees = [None if t == "default" else t for t in args.tree or ["default"]]
    torch.set_num_threads(args.threads)
    warm, draws, reps = (100, 200, 5) if args.quick else (500, 1000, 30)
    l_warm, l_draws, l_depth = (25, 25, 3) if args.quick else (100, 100, 5)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.part in CHAIN_TARGETS:
        chosen = [v for v in args.variant or VARIANTS if v in VARIANTS]
        print_chains(warm, draws, [CHAIN_TARGETS[args.part]], chosen, trees)
        return
    if args.part is not None:
        {
            "gaussian": lambda: print_full_gaussian(warm, draws),
            "lifted": lambda: print_lifted(
                l_warm,
                l_draws,
                l_depth,
                args.chains,
                tuple(args.variant or LIFTED),
                args.numpyro_chain_method,
            ),
            "svi": lambda: print_svi(reps),
        }[args.part]()
        return
    if args.only_chains:
        print_chains(warm, draws)
        return
    if not args.only_lifted:
        print_full_gaussian(warm, draws)
        print_chains(warm, draws)
    print_lifted(l_warm, l_draws, l_depth, args.chains)
    if not args.only_lifted:
        print_svi(reps)


def print_full_gaussian(warm: int, draws: int) -> None:
    ours = bench_nuts(warm, draws, seed=0)
    print(
        f"quivers NUTS, 100-d correlated Gaussian, {warm} warmup + {draws} draws: "
        f"sampling {ours['sampling_s']:.1f} CPU s (warmup {ours['warmup_s']:.1f}; "
        f"wall {ours['wall_s']:.1f} s in all), "
        f"min bulk ESS {ours['min_ess']:.0f} (median {ours['median_ess']:.0f}), "
        f"{ours['ess_per_s']:.1f} min-ESS per CPU s, {ours['grads_per_draw']:.1f} gradients/draw, "
        f"step {ours['step_size']:.3f}, accept {ours['accept']:.2f}, "
        f"divergences {ours['divergences']}"
    )
    pyro_res = bench_pyro_nuts(warm, draws, seed=0)
    if pyro_res is None:
        print("pyro-ppl not importable: no Pyro comparison")
    else:
        print(
            f"Pyro {pyro_res['version']} NUTS, same target and budget: "
            f"sampling {pyro_res['sampling_s']:.1f} CPU s (warmup {pyro_res['warmup_s']:.1f}; "
            f"wall {pyro_res['wall_s']:.1f} s in all), "
            f"min bulk ESS {pyro_res['min_ess']:.0f} (median {pyro_res['median_ess']:.0f}), "
            f"{pyro_res['ess_per_s']:.1f} min-ESS per CPU s"
        )
        print(f"ESS/s ratio quivers / Pyro: {ours['ess_per_s'] / pyro_res['ess_per_s']:.2f}")


def print_lifted(
    l_warm: int,
    l_draws: int,
    l_depth: int,
    chains: int = 1,
    variants: tuple[str, ...] = LIFTED,
    numpyro_chain_method: str = "vectorized",
) -> None:
    lifted = bench_lifted_nuts(
        4, 8, l_warm, l_draws, l_depth, 0, chains, variants, numpyro_chain_method
    )
    if lifted is None:
        print("quivers.dsl not available: no NUTS on the lifted model")
        return
    print(
        f"NUTS on the lifted vanilla_rnn_lm (nuts_posterior.py: batch 4 x length 8, "
        f"{lifted['dim']} coordinates), {chains} chain(s)"
        f"{' (vectorised)' if chains > 1 else ''}, {l_warm} warmup + {l_draws} draws, "
        f"max tree depth {l_depth}, same start for every sampler:"
    )
    ours = [
        (f"quivers {v}", lifted[f"quivers {v}"]) for v in VARIANTS[:2] if f"quivers {v}" in lifted
    ]
    rows = list(ours)
    for key, name in (("numpyro", "NumPyro"), ("pyro", "Pyro")):
        if key in lifted:
            other = lifted[key]
            print(
                f"  same target ({name}): log density {other['log_density'][0]:.6g} "
                f"(quivers) vs {other['log_density'][1]:.6g}, relative difference "
                f"{other['rel_diff']:.1e}, gradients {other['grad_rel_diff']:.1e}"
            )
            method = f" ({other['chain_method']})" if key == "numpyro" and chains > 1 else ""
            rows.append((f"{name} {other['version']}{method}", other))
        elif key in variants and (key != "pyro" or chains == 1):
            print(f"  {name} not importable: no {name} comparison")
    for label, r in rows:
        per_grad = r["sampling_s"] / (r["grads_per_draw"] * l_draws * chains)
        print(
            f"  {label}: sampling {r['sampling_s']:.1f} CPU s (warmup {r['warmup_s']:.1f}; "
            f"wall {r['wall_s']:.1f} s in all), bulk ESS min {r['min_ess']:.1f} "
            f"median {r['median_ess']:.1f}, per CPU s: min {r['min_ess_per_s']:.3f} "
            f"median {r['median_ess_per_s']:.3f}; {r['grads_per_draw']:.1f} gradients/draw "
            f"({1e3 * per_grad:.2f} ms per chain-gradient), "
            f"step {r['step_size']:.4f}, accept {r['accept']:.2f}, "
            f"divergences {r['divergences']}"
        )
    for label, q in ours:
        for key, name in (("numpyro", "NumPyro"), ("pyro", "Pyro")):
            if key in lifted:
                p = lifted[key]
                print(
                    f"  ESS/s ratio {label} / {name}: "
                    f"min {q['min_ess_per_s'] / p['min_ess_per_s']:.2f}, "
                    f"median {q['median_ess_per_s'] / p['median_ess_per_s']:.2f}"
                )


def print_svi(reps: int) -> None:
    svi = bench_svi_reference(64, 128, reps)
    if svi is None:
        print("quivers.dsl not available: no SVI comparison")
    else:
        print(
            f"SVI step, vanilla_rnn_lm, batch 64 x length 128 (median of {reps}, CPU time): "
            f"quivers {svi['quivers_ms']:.1f} ms, hand-written torch {svi['hand_ms']:.1f} ms, "
            f"ratio {svi['ratio']:.2f} (log_joint agreement {svi['log_joint_diff']:.2e})"
        )
        print(
            f"  data validated every step (a new copy each step): "
            f"{svi['revalidated_ms']:.1f} ms; validated once / every step "
            f"{svi['once_ratio']:.3f}"
        )
        if "pyro_ms" in svi:
            print(
                f"  Pyro AutoNormal + Trace_ELBO + Adam: {svi['pyro_ms']:.1f} ms "
                f"({svi['pyro_novalidate_ms']:.1f} ms without distribution validation), "
                f"ratio quivers / Pyro {svi['pyro_ratio']:.2f} "
                f"({svi['pyro_novalidate_ratio']:.2f}); Pyro log joint relative "
                f"difference {svi['pyro_log_joint_diff']:.1e}"
            )
        else:
            print("  pyro-ppl not importable: no Pyro SVI comparison")
    small = bench_svi_validation(10 * reps)
    if small is not None:
        print(
            f"SVI step, eight_schools.qvr (non-centred; median of {10 * reps}, CPU time): "
            f"data validated once {small['once_ms']:.3f} ms, every step "
            f"{small['every_ms']:.3f} ms, ratio {small['ratio']:.3f}"
        )


if __name__ == "__main__":
    main()
