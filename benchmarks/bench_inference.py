"""Inference benchmarks (figures recorded in docs/benchmarks.md, "Inference").

1. NUTS effective samples per second on a 100-dimensional correlated Gaussian
   (covariance D R D, R_ij = 0.9^|i-j|, scales in [0.5, 2]); bulk ESS (Vehtari et al.
   2021) of the worst coordinate divided by the sampling time. When ``pyro-ppl`` is
   importable, Pyro's NUTS runs on the same target with the same budget, its draws
   scored by the same ESS code, and the ratio is printed.
2. When the compiled runtime is available (``quivers.dsl``), one SVI step (ELBO with
   AutoNormalGuide, Adam) on the reference program ``vanilla_rnn_lm`` at batch 64 x
   length 128, against a hand-written torch ELBO step of the same model in the same
   process (target: <= 1.3x).

Run from the repository root: ``python benchmarks/bench_inference.py [--quick]``.
Everything runs on one intra-op thread (these are many small tensor operations), and
times are CPU seconds of this process (``time.process_time``), so that figures stay
comparable on a shared machine; wall-clock seconds are printed alongside.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "inference"))

from inference_models import correlated_100d  # noqa: E402

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


def bench_pyro_nuts(num_warmup: int, num_samples: int, seed: int) -> dict[str, float] | None:
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
    try:
        from quivers.dsl import load
    except ImportError:
        return None
    source = ROOT / "docs" / "examples" / "source" / "vanilla_rnn_lm.qvr"
    torch.manual_seed(0)
    model = load(str(source)).morphism
    for _, p in model.named_parameters():
        p.data.copy_(torch.randn_like(p) * 0.3)
    x = torch.randint(0, 256, (batch, length))
    with torch.no_grad():
        y = model.rsample(x)
    obs = {"next_token": y}

    # quivers: the seed-snippet set-up
    guide = AutoNormalGuide(model, observed_names={"next_token"})
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=1e-3)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))
    svi.step(x, obs)

    # hand-written: its own copy of the weights and guide, same shapes and optimiser
    params = {n: torch.nn.Parameter(p.detach().clone()) for n, p in model.named_parameters()}
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
    q_times, h_times = [], []
    for _ in range(reps):  # alternate so that both see the same machine load
        t = time.process_time()
        svi.step(x, obs)
        q_times.append(time.process_time() - t)
        t = time.process_time()
        hand_step()
        h_times.append(time.process_time() - t)
    q, h = statistics.median(q_times), statistics.median(h_times)
    return {"quivers_ms": 1e3 * q, "hand_ms": 1e3 * h, "ratio": q / h, "log_joint_diff": agree}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm, draws, reps = (100, 200, 5) if args.quick else (500, 1000, 30)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
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
    svi = bench_svi_reference(64, 128, reps)
    if svi is None:
        print("quivers.dsl not available: no SVI comparison")
    else:
        print(
            f"SVI step, vanilla_rnn_lm, batch 64 x length 128 (median of {reps}, CPU time): "
            f"quivers {svi['quivers_ms']:.1f} ms, hand-written torch {svi['hand_ms']:.1f} ms, "
            f"ratio {svi['ratio']:.2f} (log_joint agreement {svi['log_joint_diff']:.2e})"
        )


if __name__ == "__main__":
    main()
