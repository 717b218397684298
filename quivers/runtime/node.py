"""The interface every compiled morphism implements (see ``docs/dev/runtime.md``).

A :class:`Node` is an ``nn.Module`` for an arrow ``dom -> cod``. Its one primitive is
the fused :meth:`Node.run`, which either samples (``trace=None``) or scores a given
trace, returning ``(trace, value, log_prob)`` in one pass; the public methods
``rsample``/``log_prob``/``value``/``sample_with_log_prob`` validate their data and
call it. A trace is a tensor, a tuple of traces, or ``()`` for a deterministic node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from quivers.runtime.errors import QvrDataError, describe
from quivers.runtime.ir import ObjT
from quivers.runtime.objects import check_value, is_finite, lead_shape, type_name

Trace = Any
RunOut = tuple[Trace, torch.Tensor, torch.Tensor | None]


@dataclass(frozen=True)
class TraceSpec:
    """The expected shape of one trace leaf; ``obj`` is the finite type of id leaves."""

    shape: tuple[int, ...]
    obj: ObjT | None = None  # None: floats

    def describe(self) -> str:
        kind = f"int64 ids of {type_name(self.obj)}" if self.obj is not None else "floats"
        return f"{kind} of shape {self.shape}"


def reduce_rows(lp: torch.Tensor) -> torch.Tensor:
    """Sum a log density over every axis but the first (rows); 0-d stays 0-d."""
    return lp.flatten(1).sum(1) if lp.dim() > 1 else lp


def add_lp(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def pack(traces: list[Trace]) -> Trace:
    """The Kleisli trace rule: () for none, the trace itself for one, else a tuple."""
    if not traces:
        return ()
    return traces[0] if len(traces) == 1 else tuple(traces)


def unpack(trace: Trace, n: int, where: str) -> list[Trace]:
    """Inverse of :func:`pack` for ``n`` stochastic parts."""
    if n == 0:
        return []
    if n == 1:
        return [trace]
    if not isinstance(trace, tuple | list) or len(trace) != n:
        raise QvrDataError(f"{where}: expected a tuple of {n} traces, got {describe(trace)}")
    return list(trace)


def check_trace(trace: Trace, spec: Any, where: str) -> None:
    """Raise :class:`QvrDataError` unless ``trace`` has the structure and shapes of ``spec``."""
    if isinstance(spec, TraceSpec):
        if not isinstance(trace, torch.Tensor):
            raise QvrDataError(f"{where}: expected {spec.describe()}, got {describe(trace)}")
        if spec.obj is not None:
            check_value(trace, spec.obj, where)
        elif not trace.is_floating_point():
            raise QvrDataError(f"{where}: expected {spec.describe()}, got {describe(trace)}")
        if tuple(trace.shape) != spec.shape:
            raise QvrDataError(f"{where}: expected {spec.describe()}, got {describe(trace)}")
        return
    if spec is None or spec == ():
        return  # deterministic, or shaped by its arguments: nothing to check
    parts = unpack(trace, len(spec), where)
    for i, (t, s) in enumerate(zip(parts, spec, strict=True)):
        check_trace(t, s, f"{where}[{i}]")


class Node(nn.Module):
    """A compiled arrow ``dom -> cod``."""

    stochastic: bool = True
    value_is_trace: bool = False  # the bound value is the trace itself (plain kernels)
    # runs unchanged on extra leading (position) axes, scoring each position: lets a
    # scan score all its steps in one call (false for scan itself and for programs
    # with global sites or host data, whose shapes are tied to the rows)
    position_batchable: bool = True
    # a program cell whose scan runs the forward algorithm (its state is summed out)
    forward_cell: bool = False
    _ref: torch.Tensor  # a 0-d buffer: dtype/device of the model

    def __init__(self, dom: ObjT, cod: ObjT) -> None:
        super().__init__()
        self.dom, self.cod = dom, cod
        # follows .to(dtype/device), so internal tensors are made like the parameters
        self.register_buffer("_ref", torch.zeros(()), persistent=False)

    # ---------------------------------------------------------------- primitive
    def run(self, x: Any, trace: Trace = None, want_lp: bool = True, **run: Any) -> RunOut:
        """Sample (``trace=None``) or score ``trace``: ``(trace, value, log_prob|None)``.

        ``log_prob`` is per row ``(batch,)`` (0-d without a batch axis); None means the
        node is deterministic (density 0). No validation happens here.
        """
        raise NotImplementedError

    def forward_weights(self, x_t: Any, join: Any, size: int, run: dict[str, Any]) -> Any:
        """A forward cell's transition-and-emission log weights (``ProgramModule``)."""
        raise NotImplementedError(f"{type(self).__name__} is not a forward cell")

    def sampler(self) -> Any:
        """Optionally, a draw-only ``x -> value`` function for a value-is-trace kernel,
        used by sampling loops; None means use :meth:`run`."""
        return None

    def support(self) -> Any:
        """A torch constraint per trace leaf, nested like the trace."""
        return ()

    def trace_spec(self, lead: tuple[int, ...]) -> Any:
        """Expected trace structure for an input with leading axes ``lead``."""
        return ()

    def out_lead(self, lead: tuple[int, ...]) -> tuple[int, ...]:
        """Leading axes of the value for an input with leading axes ``lead``."""
        return lead

    def require_lead(self, lead: tuple[int, ...], x: Any, dom: ObjT, where: str) -> None:
        """Raise unless an input ``x`` of type ``dom`` reaching this node with leading
        axes ``lead`` fits (``scan`` needs exactly (batch, T))."""

    # ---------------------------------------------------------------- public API
    def check_input(self, x: Any, where: str = "input") -> None:
        check_value(x, self.dom, where)
        self.require_lead(lead_shape(x, self.dom), x, self.dom, where)

    def check_trace(self, x: Any, trace: Trace, where: str = "trace") -> None:
        check_trace(trace, self.trace_spec(lead_shape(x, self.dom)), where)

    def _rows(self, x: torch.Tensor, lp: torch.Tensor | None) -> torch.Tensor:
        if lp is not None:
            return lp
        lead = lead_shape(x, self.dom)
        return self._ref.new_zeros(lead[:1])

    def rsample(self, x: torch.Tensor, **run: Any) -> Trace:
        """A trace drawn given input ``x``."""
        self.check_input(x)
        return self.run(x, None, False, **run)[0]

    def log_prob(self, x: torch.Tensor, trace: Trace, **run: Any) -> torch.Tensor:
        """Exact log density of ``trace`` given ``x``, per row."""
        self.check_input(x)
        self.check_trace(x, trace)
        return self._rows(x, self.run(x, trace, True, **run)[2])

    def value(self, x: torch.Tensor, trace: Trace, **run: Any) -> torch.Tensor:
        """The value the trace binds (``h_T`` for ``scan``)."""
        self.check_input(x)
        self.check_trace(x, trace)
        return self.run(x, trace, False, **run)[1]

    def sample_with_log_prob(self, x: torch.Tensor, **run: Any) -> RunOut:
        """Fused draw: ``(trace, value, log_prob per row)``."""
        self.check_input(x)
        tr, val, lp = self.run(x, None, True, **run)
        return tr, val, self._rows(x, lp)

    def forward(self, x: torch.Tensor, **run: Any) -> torch.Tensor:
        """A sampled value (deterministic nodes: the value)."""
        self.check_input(x)
        return self.run(x, None, False, **run)[1]


class RelationMixin:
    """Finite-set arrows that are also matrices over the active algebra."""

    def relation(self, **run: Any) -> torch.Tensor:
        """The (|dom|, |cod|) matrix in the algebra's carrier."""
        raise NotImplementedError

    @property
    def tensor(self) -> torch.Tensor:
        """The matrix with no run-time arguments (``relation()``; a ``repeat`` without
        a count needs ``relation(n_steps=N)``)."""
        return self.relation()


def nodes(modules: nn.ModuleList) -> list[Node]:
    """The parts of a combinator, typed (a ``ModuleList`` only knows ``Module``)."""
    return cast(list[Node], list(modules))


def finite_both(dom: ObjT, cod: ObjT) -> bool:
    return is_finite(dom) and is_finite(cod)
