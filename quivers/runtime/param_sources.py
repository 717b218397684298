"""Parameter sources: what maps a kernel's input to its family's raw parameters.

A finite domain uses a table (|A|, P); a continuous domain a ``linear`` map or an
``mlp(h1, ...)`` with tanh hidden layers (default ``mlp(64)``). Finite factors of a
mixed product domain are one-hot encoded before the map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from quivers.core.vocabulary import DEFAULT_MLP_WIDTH, param_source_forms
from quivers.runtime.errors import QvrBuildError
from quivers.runtime.ir import FinSetT, ObjT, ParamSource, flat_dim
from quivers.runtime.objects import finite_size, flat_index, is_finite, leaf_factors


def init_tensor(t: torch.Tensor, init: float | str | None, default_std: float | None) -> None:
    """Initialise ``t`` in place from a morphism's ``init`` option.

    ``None`` keeps ``default_std`` (or leaves ``t`` alone when that is None); a number is
    the std of a normal; ``zeros``, ``normal`` (std 1) or ``xavier`` (Glorot & Bengio, 2010).
    """
    with torch.no_grad():
        if init is None:
            if default_std is not None:
                t.normal_(0.0, default_std)
        elif isinstance(init, int | float):
            t.normal_(0.0, float(init))
        elif init == "zeros":
            t.zero_()
        elif init == "normal":
            t.normal_(0.0, 1.0)
        elif init == "xavier":
            if t.dim() < 2:
                t.zero_()
            else:
                nn.init.xavier_normal_(t)
        else:
            raise QvrBuildError(
                f"unknown init '{init}'; expected a number, zeros, normal or xavier"
            )


class Table(nn.Module):
    """One learnable row of P raw parameters per element of a finite domain."""

    def __init__(self, dom: ObjT, n_out: int, init: float | str | None = None) -> None:
        super().__init__()
        self.dom, self.init = dom, init
        self.weight = nn.Parameter(torch.empty(finite_size(dom), n_out))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # small rows so that softplus/softmax start near their centre
        init_tensor(self.weight, self.init, 0.1 if self.init is None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(flat_index(x, self.dom), self.weight)


class Featurize(nn.Module):
    """A product value with finite factors as floats: ids become one-hot blocks."""

    def __init__(self, dom: ObjT) -> None:
        super().__init__()
        self.parts = [
            (isinstance(f, FinSetT), flat_dim(f), getattr(f, "size", 0)) for f in leaf_factors(dom)
        ]
        self.width = sum(size if fin else w for fin, w, size in self.parts)

    def forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        cols, start = [], 0
        for fin, w, size in self.parts:
            part = x[..., start : start + w]
            cols.append(
                F.one_hot(part[..., 0].round().long(), size).to(dtype) if fin else part.to(dtype)
            )
            start += w
        return torch.cat(cols, dim=-1)


class MLP(nn.Module):
    """Affine layers with tanh between them (no hidden layer: a linear map)."""

    def __init__(
        self, n_in: int, hidden: tuple[int, ...], n_out: int, init: float | str | None
    ) -> None:
        super().__init__()
        widths = (n_in, *hidden, n_out)
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False)
        )
        self.init = init
        self.reset_parameters()

    def linears(self) -> list[nn.Linear]:
        return cast(list[nn.Linear], list(self.layers))

    def reset_parameters(self) -> None:
        for layer in self.linears():
            layer.reset_parameters()
            if self.init is not None:
                init_tensor(layer.weight, self.init, None)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.linear on the layers' weights: the same maps without per-call module hooks,
        # which matter inside a scan's Python loop
        *hidden, last = self.linears()
        for layer in hidden:
            x = torch.tanh(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, last.weight, last.bias)


class ContinuousSource(nn.Module):
    """``linear`` / ``mlp`` on a continuous (or mixed product) domain."""

    def __init__(
        self, dom: ObjT, n_out: int, source: ParamSource, init: float | str | None
    ) -> None:
        super().__init__()
        mixed = any(isinstance(f, FinSetT) for f in leaf_factors(dom))
        self.featurize = Featurize(dom) if mixed else None
        n_in = self.featurize.width if self.featurize is not None else flat_dim(dom)
        if source.kind == "linear":
            hidden: tuple[int, ...] = ()
        elif source.kind == "mlp":
            hidden = tuple(source.hidden) or (DEFAULT_MLP_WIDTH,)
        else:
            raise QvrBuildError(
                f"unknown param_source '{source.kind}'; expected {param_source_forms()}"
            )
        self.net = MLP(n_in, hidden, n_out, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.featurize is not None:
            x = self.featurize(x, self.net.layers[0].weight.dtype)
        return self.net.forward(x)


def bound_source(source: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``source`` as a plain function over its current weights (fetched now, once).

    Scan loops call it once per step; skipping module dispatch and attribute lookups
    there keeps the loop as cheap as a hand-written one. Fetching the weights at call
    time (not build time) keeps ``functional_call``/parameter swaps working.
    """
    if not isinstance(source, ContinuousSource) or source.featurize is not None:
        return source.forward
    *hidden, last = [(layer.weight, layer.bias) for layer in source.net.linears()]
    w_out, b_out = last

    def apply(x: torch.Tensor) -> torch.Tensor:
        for w, b in hidden:
            x = torch.tanh(F.linear(x, w, b))
        return F.linear(x, w_out, b_out)

    return apply


def make_source(dom: ObjT, n_out: int, source: ParamSource, init: float | str | None) -> nn.Module:
    """The parameter source of a kernel on ``dom`` producing ``n_out`` raw columns."""
    if is_finite(dom):
        return Table(dom, n_out, init)
    return ContinuousSource(dom, n_out, source, init)
