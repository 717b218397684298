"""Prior and posterior predictive draws.

``Predictive(model, posterior, num_samples)(x, observations)`` runs the model
``num_samples`` times and returns every site's trace stacked along a new leading
axis. With ``posterior=None`` the latents come from the prior (prior predictive);
with a guide they are drawn from it, and with an
:class:`~quivers.inference.mcmc.MCMCResult` they are taken from its draws (evenly
spaced over all chains); either way the observed sites are then simulated from the
model given those latents (posterior predictive; Gelman et al., BDA3, ch. 6).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import torch

from quivers.inference.guides import AutoGuide
from quivers.inference.mcmc import MCMCResult
from quivers.runtime.trace import Model, TraceT, leaves, unflatten


def _index(tree: TraceT, k: int) -> TraceT:
    return unflatten(tree, [leaf[k] for leaf in leaves(tree)])


def _stack(items: list[TraceT]) -> TraceT:
    first = items[0]
    columns = list(zip(*(leaves(item) for item in items), strict=True))
    return unflatten(first, [torch.stack(list(col)) for col in columns])


class Predictive:
    """Draws from the prior or posterior predictive distribution of ``model``."""

    def __init__(
        self,
        model: Model,
        posterior: AutoGuide | MCMCResult | None = None,
        num_samples: int | None = None,
        return_sites: Collection[str] | None = None,
    ) -> None:
        if isinstance(posterior, MCMCResult):
            available = posterior.num_chains * posterior.num_samples
            num_samples = available if num_samples is None else num_samples
        elif num_samples is None:
            raise ValueError("num_samples is required unless posterior is an MCMC result")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.model = model
        self.posterior = posterior
        self.num_samples = int(num_samples)
        self.return_sites = None if return_sites is None else frozenset(return_sites)

    def _latents(self, x: Any, observations: Mapping[str, Any]) -> list[dict[str, TraceT]]:
        post = self.posterior
        n = self.num_samples
        if post is None:
            return [{} for _ in range(n)]
        if isinstance(post, MCMCResult):
            flat = post.flat_samples()
            total = post.num_chains * post.num_samples
            idx = torch.linspace(0, total - 1, n).round().long().tolist()
            return [{k: _index(v, i) for k, v in flat.items()} for i in idx]
        with torch.no_grad():
            draw = post.sample(x, observations, num_particles=n)
        return [{k: _index(v, i) for k, v in draw.values.items()} for i in range(n)]

    @torch.no_grad()
    def __call__(
        self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> dict[str, TraceT]:
        """``observations`` supplies host data (and, for a guide's first set-up, the
        observed values); the observed sites themselves are re-simulated."""
        obs = dict(observations or {})
        site_names = set(self.model.observed_names) | set(self.model.latent_names)
        host = {k: v for k, v in obs.items() if k not in site_names}
        runs = []
        for latents in self._latents(x, obs):
            trace = self.model.trace(x, {**host, **latents}, **run)
            keep = self.return_sites
            runs.append({k: s.trace for k, s in trace.items() if keep is None or k in keep})
        return {k: _stack([r[k] for r in runs]) for k in runs[0]}
