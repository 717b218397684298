"""What a model reports about one of its random sites.

This is the whole contract between a model and ``quivers.inference``: a model is any
``nn.Module`` with ``trace``, ``log_joint``, ``rsample``, ``observed_names`` and
``latent_names`` (see ``docs/dev/model-protocol.md``), and ``trace`` returns a dict of
these records in program order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.distributions import constraints

# A trace is a tensor, or a tuple of traces for a composite kernel (f >> g with
# several stochastic parts); supports have the same structure.
TraceT = Any
SupportT = Any


@dataclass
class Site:
    name: str
    trace: TraceT  # every random choice of the site's kernel
    value: Any  # what the program variable is bound to (h_T for scan)
    log_prob: torch.Tensor  # (batch,) for a local site, 0-d for a global one
    support: SupportT  # a torch Constraint per trace leaf, same structure as trace
    observed: bool
    is_global: bool


def leaves(tree: TraceT) -> list[torch.Tensor]:
    """The tensors of a (possibly nested) trace, depth first."""
    if isinstance(tree, tuple | list):
        return [leaf for part in tree for leaf in leaves(part)]
    return [tree]


def unflatten(like: TraceT, flat: list[Any]) -> TraceT:
    """Rebuild ``like``'s nesting from a depth-first list (inverse of ``leaves``)."""
    it = iter(flat)

    def go(node: TraceT) -> TraceT:
        if isinstance(node, tuple | list):
            return tuple(go(part) for part in node)
        return next(it)

    return go(like)


def is_continuous(support: constraints.Constraint) -> bool:
    return not support.is_discrete
