"""The model protocol: what ``quivers.inference`` may ask of a model.

This is the whole contract between a model and ``quivers.inference``: a model is any
object that satisfies :class:`Model` (``trace``, ``log_joint``, ``rsample``,
``observed_names``, ``latent_names`` and its parameters; see
``docs/dev/model-protocol.md``), and ``trace`` returns a mapping of :class:`Site`
records in program order (a :class:`Trace`, which also reads as ``.sites``). Compiled programs, lifted models and the tests'
hand-written models all satisfy it; nothing in inference looks further.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn
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


class Trace(dict[str, Site]):
    """The sites of one run, by name in program order.

    A plain ``dict`` (``trace["y"]``, ``trace.items()``) that also reads as
    ``trace.sites["y"]``, the spelling of the published gallery's snippets.
    """

    @property
    def sites(self) -> Trace:
        return self


@runtime_checkable
class Model(Protocol):
    """A probabilistic model as inference sees it (``docs/dev/model-protocol.md``).

    The names are read-only properties so that a plain attribute, a class attribute
    or a computed property all satisfy it. ``x`` is the model's input (a tensor or a
    tuple of them for a product domain); ``run`` carries call-time arguments such as
    ``n_steps``. ``observations``/``values`` map site names to traces and host-data
    names to tensors.
    """

    @property
    def observed_names(self) -> AbstractSet[str]:
        """The ``observe`` sites."""
        ...

    @property
    def latent_names(self) -> Sequence[str]:
        """The ``sample`` sites, in program order."""
        ...

    def trace(
        self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> Mapping[str, Site]:
        """Run once (given traces substituted) and record every site in order."""
        ...

    def log_joint(self, x: Any, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        """The exact total log density (0-d) of a trace for every site."""
        ...

    def rsample(self, x: Any, observations: Mapping[str, Any] | None = None, **run: Any) -> Any:
        """Run once and return the model's return value."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """Every learnable parameter (what an optimiser steps)."""
        ...

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """Every learnable parameter by name, a shared one once (what lifting lifts)."""
        ...


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
