"""Exports that are not programs, as models (``docs/dev/model-protocol.md``).

``export emb >> scan(cell)`` or ``export f`` gives a morphism, not a program; wrapped
in :class:`ExportModel` it follows the same protocol as a compiled program, with one
latent site named after the export (``value`` for an anonymous expression) whose
trace is the morphism's trace. ``rsample`` returns a value of the codomain (for a
scan its last state), never the trace tuple; ``log_prob``/``relation`` delegate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from quivers.runtime.checks import data_checks
from quivers.runtime.errors import QvrDataError
from quivers.runtime.node import Node, RunOut
from quivers.runtime.objects import as_ids
from quivers.runtime.trace import Site


class ExportModel(Node):
    """A morphism export seen as a model with one site."""

    value_is_trace = False
    host_names: tuple[str, ...] = ()

    def __init__(self, name: str | None, node: Node) -> None:
        super().__init__(node.dom, node.cod)
        self.site = name or "value"
        self.add_module(f"_step_{self.site}", node)
        self.stochastic = node.stochastic
        self.position_batchable = node.position_batchable
        self.latent_names: tuple[str, ...] = (self.site,) if node.stochastic else ()
        self.observed_names: frozenset[str] = frozenset()

    @property
    def inner(self) -> Node:
        return getattr(self, f"_step_{self.site}")

    # ------------------------------------------------------------ as a node
    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        return self.inner.run(x, trace, want_lp, **run)

    def support(self):
        return self.inner.support()

    def trace_spec(self, lead):
        return self.inner.trace_spec(lead)

    def out_lead(self, lead):
        return self.inner.out_lead(lead)

    def require_lead(self, lead, x, dom, where):
        self.inner.require_lead(lead, x, dom, where)

    def check_input(self, x: Any, where: str = "input") -> None:
        self.inner.check_input(x, where)

    def _input(self, x: Any) -> Any:
        """The run's input, checked once; floats holding ids become int64 (``as_ids``)."""
        x = as_ids(x, self.dom, "input")
        if data_checks():
            self.check_input(x)
        return x

    def log_prob(self, x: torch.Tensor, trace: Any, **run: Any) -> torch.Tensor:
        return self.inner.log_prob(x, trace, **run)

    def relation(self, **run: Any) -> torch.Tensor:
        relation = getattr(self.inner, "relation", None)
        if relation is None:
            raise TypeError(f"export '{self.site}' is not a relation between finite sets")
        return relation(**run)

    @property
    def tensor(self) -> torch.Tensor:
        """The exported relation's matrix (``relation()``), as on the relation itself."""
        return self.relation()

    # ------------------------------------------------------------ the model protocol
    def _given(
        self, observations: Mapping[str, Any] | None, x: Any, require: bool, validate: bool = True
    ) -> Any:
        given = (observations or {}).get(self.site)
        if given is None and require and self.stochastic:
            raise QvrDataError(
                f"site '{self.site}': missing trace; expected a value for '{self.site}'"
            )
        if given is not None and validate:
            self.inner.check_trace(x, given, f"site '{self.site}'")
        return given

    def rsample(self, x: torch.Tensor, observations: Mapping[str, Any] | None = None, **run: Any):
        """A value of the codomain (the trace's value: ``h_T`` for a scan)."""
        x = self._input(x)
        return self.inner.run(x, self._given(observations, x, False), False, **run)[1]

    forward = rsample

    def trace(
        self, x: torch.Tensor, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> dict[str, Site]:
        x = self._input(x)
        given = self._given(observations, x, False)
        tr, value, lp = self.inner.run(x, given, True, **run)
        if not self.stochastic:
            return {}
        lp = self._rows(x, lp)
        return {self.site: Site(self.site, tr, value, lp, self.support(), False, False)}

    def log_joint(self, x: torch.Tensor, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        validate = data_checks()  # off when the caller validated the data (runtime.checks)
        x = self._input(x)
        given = self._given(values, x, True, validate)
        lp = self.inner.run(x, given, True, **run)[2]
        return self._ref.new_zeros(()) if lp is None else lp.sum()


def as_model(name: str | None, node: Node) -> Node:
    """Programs already are models; any other export is wrapped."""
    return node if hasattr(node, "log_joint") else ExportModel(name, node)
