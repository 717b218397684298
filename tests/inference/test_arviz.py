"""ArviZ interop: our R-hat and bulk/tail ESS against ArviZ's on the same draws, and
``MCMCResult.to_arviz``."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch
from inference_models import NormalNormal, normal_normal_data
from test_diagnostics import ar1

from quivers.inference import MCMC, NUTSKernel
from quivers.inference import diagnostics as dg


def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pytest.importorskip("arviz")


def _non_mixed() -> torch.Tensor:
    """Four chains stuck around different values (R-hat far above 1)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 400, generator=g, dtype=torch.float64)
    return x + torch.tensor([0.0, 0.0, 3.0, -2.0], dtype=torch.float64)[:, None]


DRAWS = {
    "iid": lambda: torch.randn(4, 500, generator=torch.Generator().manual_seed(1)).double(),
    "ar1": lambda: ar1(4, 600, 0.9, seed=2),
    "non-mixed": _non_mixed,
}


@pytest.mark.parametrize("kind", sorted(DRAWS))
def test_r_hat_bulk_and_tail_ess_agree_with_arviz(kind: str) -> None:
    az = _arviz()
    x = DRAWS[kind]()
    arr = x.numpy()
    ours = {
        "rhat": float(dg.r_hat(x)),
        "bulk": float(dg.ess(x)),
        "tail": float(dg.tail_ess(x)),
    }
    theirs = {
        "rhat": float(az.rhat(arr, method="rank")),
        "bulk": float(az.ess(arr, method="bulk")),
        "tail": float(az.ess(arr, method="tail")),
    }
    for key, value in ours.items():
        assert value == pytest.approx(theirs[key], rel=1e-6), (kind, key, ours, theirs)
    if kind == "non-mixed":
        assert ours["rhat"] > 1.5


def test_to_arviz_has_posterior_sample_stats_and_observed_data() -> None:
    az = _arviz()
    model = NormalNormal()
    x, obs = normal_normal_data()
    result = MCMC(NUTSKernel(), num_warmup=40, num_samples=50, num_chains=2, seed=0).run(
        model, x, obs
    )
    data = result.to_arviz()
    assert isinstance(data, az.InferenceData)
    assert data.posterior["mu"].shape == (2, 50)
    stats = data.sample_stats
    for name in ("diverging", "acceptance_rate", "step_size", "tree_depth", "n_steps", "energy"):
        assert stats[name].shape == (2, 50), name
    assert torch.equal(torch.from_numpy(stats["energy"].values), result.energy)
    assert bool(torch.isfinite(result.energy).all())
    assert data.observed_data["y"].shape == (20,)
    bulk = float(az.ess(data, var_names=["mu"], method="bulk")["mu"])
    assert bulk == pytest.approx(float(result.ess["mu"]), rel=1e-5)


def test_to_arviz_without_arviz_says_how_to_install(monkeypatch) -> None:
    model = NormalNormal()
    x, obs = normal_normal_data()
    result = MCMC(NUTSKernel(), num_warmup=5, num_samples=5, seed=0).run(model, x, obs)
    monkeypatch.setitem(sys.modules, "arviz", None)  # import arviz now raises ImportError
    with pytest.raises(ImportError, match=r"quivers\[arviz\]"):
        result.to_arviz()
