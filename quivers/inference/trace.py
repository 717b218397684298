"""``trace(model, x, observations=None, **run)``: one run of any model, as a :class:`Trace`.

The function spelling of ``model.trace`` used by the published gallery's snippets
(``from quivers.inference.trace import trace``, ``quivers.inference.trace(...)``).
A model whose ``trace`` returns a plain mapping gets it wrapped, so ``.sites`` and
dict-style access both work whatever model is traced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quivers.runtime.trace import Model, Site, Trace


def trace(model: Model, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Trace:
    """Run ``model`` once on ``x`` (sites in ``observations`` take the given traces)
    and return every site, by name in program order."""
    if not isinstance(model, Model):
        raise TypeError(
            f"trace needs a model (trace, log_joint, rsample, observed_names, latent_names), "
            f"got {type(model).__name__}"
        )
    sites = model.trace(x, observations, **run)
    return sites if isinstance(sites, Trace) else Trace(sites)


__all__ = ["Site", "Trace", "trace"]
