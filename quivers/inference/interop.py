"""Conversion of MCMC results to ArviZ (optional dependency: the ``arviz`` extra).

:func:`to_arviz` builds an ``arviz.InferenceData`` with the groups ArviZ's plots and
diagnostics read (Kumar et al. 2019, "ArviZ a unified library for exploratory
analysis of Bayesian models in Python"): ``posterior`` (one variable per site, or
``site.i`` per leaf of a composite trace, shape (chain, draw, *event)),
``sample_stats`` (``diverging``, ``acceptance_rate``, ``step_size``, ``tree_depth``,
``n_steps``, ``energy``: the names ArviZ's energy and divergence plots expect) and
``observed_data`` (the tensors the run was conditioned on).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from quivers.runtime.trace import leaves

if TYPE_CHECKING:
    from quivers.inference.mcmc import MCMCResult

INSTALL_HINT = "pip install 'quivers[arviz]' (or pip install arviz h5netcdf)"


def import_arviz() -> Any:
    """The ``arviz`` module, or an ImportError that says how to install it."""
    try:
        with warnings.catch_warnings():
            # arviz 0.2x announces its 1.0 refactor on import
            warnings.simplefilter("ignore", FutureWarning)
            import arviz
    except ImportError as err:
        raise ImportError(f"ArviZ is not installed: {INSTALL_HINT}") from err
    return arviz


def _numpy(t: Any) -> Any:
    return torch.as_tensor(t).detach().cpu().numpy()


def to_arviz(result: MCMCResult, observed_data: Mapping[str, Any] | None = None) -> Any:
    """``result`` as an ``arviz.InferenceData`` (see the module docstring).
    ``observed_data`` defaults to the observations the run was conditioned on."""
    az = import_arviz()
    posterior: dict[str, Any] = {}
    for name, value in result.samples.items():
        parts = leaves(value)
        for i, part in enumerate(parts):
            posterior[name if len(parts) == 1 else f"{name}.{i}"] = _numpy(part)
    chains, draws = result.num_chains, result.num_samples
    sample_stats = {
        "diverging": _numpy(result.diverging),
        "acceptance_rate": _numpy(result.accept_stats),
        "step_size": _numpy(result.step_sizes[:, None].expand(chains, draws)),
        "tree_depth": _numpy(result.tree_depths),
        "n_steps": _numpy(result.num_steps),
        "energy": _numpy(result.energy),
    }
    observed = result.observations if observed_data is None else observed_data
    data = {k: _numpy(v) for k, v in observed.items() if isinstance(v, torch.Tensor)}
    return az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats,
        observed_data=data or None,
        attrs={
            "inference_library": "quivers",
            "num_warmup": result.num_warmup,
            "complete": int(result.complete),
        },
    )
