"""Progress callbacks and cooperative cancellation of SVI and MCMC loops."""

from __future__ import annotations

import pytest
import torch
from inference_models import NormalNormal

from quivers.inference import (
    ELBO,
    MCMC,
    SVI,
    AutoNormalGuide,
    InferenceCancelled,
    MCMCResult,
    NUTSKernel,
    ProgressInfo,
)


def data():
    return torch.zeros(10), {"y": torch.randn(10, generator=torch.Generator().manual_seed(0))}


def test_svi_progress_and_cancellation():
    model = NormalNormal()
    x, obs = data()
    guide = AutoNormalGuide(model)
    svi = SVI(model, guide, lambda ps: torch.optim.Adam(ps, lr=0.05), ELBO())
    seen: list[ProgressInfo] = []
    losses = svi.run(x, obs, num_steps=7, progress=seen.append)
    assert [i.iteration for i in seen] == list(range(1, 8))
    assert all(i.phase == "svi" and i.total == 7 for i in seen)
    assert [i.stats["loss"] for i in seen] == losses

    calls = 0

    def stop_after_three() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    with pytest.raises(InferenceCancelled) as info:
        svi.run(x, obs, num_steps=100, should_stop=stop_after_three)
    assert len(info.value.partial) == 3
    # the state stays consistent: training can go on
    assert isinstance(svi.step(x, obs), float)


def test_mcmc_progress_counts_every_iteration():
    model = NormalNormal()
    x, obs = data()
    seen: list[ProgressInfo] = []
    MCMC(
        NUTSKernel(), num_warmup=5, num_samples=7, num_chains=2, seed=0, chain_method="sequential"
    ).run(model, x, obs, progress=seen.append)
    phases = [(i.chain, i.phase) for i in seen]
    assert (
        phases
        == [(0, "warmup")] * 5 + [(0, "sampling")] * 7 + [(1, "warmup")] * 5 + [(1, "sampling")] * 7
    )
    assert seen[-1].iteration == 7 and seen[-1].total == 7 and seen[-1].num_chains == 2
    assert {"accept_prob", "step_size", "diverging", "tree_depth"} <= set(seen[0].stats)


def test_mcmc_cancellation_returns_finished_chains():
    model = NormalNormal()
    x, obs = data()
    seen: list[ProgressInfo] = []

    def stop() -> bool:  # stop in the second chain's sampling phase
        return any(i.chain == 1 and i.phase == "sampling" for i in seen)

    with pytest.raises(InferenceCancelled, match="chain 1") as info:
        MCMC(
            NUTSKernel(),
            num_warmup=5,
            num_samples=20,
            num_chains=3,
            seed=0,
            chain_method="sequential",
        ).run(model, x, obs, progress=seen.append, should_stop=stop)
    partial = info.value.partial
    assert isinstance(partial, MCMCResult)
    assert partial.samples["mu"].shape == (1, 20)
    assert sum(1 for i in seen if i.chain == 1 and i.phase == "sampling") == 1


def test_mcmc_cancellation_in_first_warmup_has_no_partial_result():
    model = NormalNormal()
    x, obs = data()
    with pytest.raises(InferenceCancelled, match="warmup") as info:
        MCMC(NUTSKernel(), num_warmup=50, num_samples=20, seed=0).run(
            model, x, obs, should_stop=lambda: True
        )
    assert info.value.partial is None
