"""Value conventions for QVR objects (see ``docs/dev/runtime.md``).

- ``FinSetT``: int64 ids, shape ``lead`` (e.g. ``(batch,)`` or ``(batch, T)``).
- ``SpaceT`` of dimension d: floats of shape ``lead + (d,)``.
- ``ProductT`` of finite sets only: int64 ids, one column per factor, ``lead + (k,)``.
- any other ``ProductT``: floats, factors concatenated along the last axis; a finite
  factor occupies one column holding its id (``ir.flat_dim`` is 1).
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch

from quivers.runtime.checks import data_checks
from quivers.runtime.errors import QvrDataError, describe
from quivers.runtime.ir import FinSetT, ObjT, ProductT, SpaceT, flat_dim


def factors(t: ObjT) -> tuple[ObjT, ...]:
    """The top-level factors of a product (a non-product is its own single factor)."""
    return t.factors if isinstance(t, ProductT) else (t,)


def leaf_factors(t: ObjT) -> tuple[ObjT, ...]:
    """The non-product factors of ``t``, flattened left to right."""
    if isinstance(t, ProductT):
        return tuple(leaf for f in t.factors for leaf in leaf_factors(f))
    return (t,)


def is_finite(t: ObjT) -> bool:
    """True for a finite set or a product of finite sets (values are ids)."""
    return all(isinstance(f, FinSetT) for f in leaf_factors(t))


def finite_size(t: ObjT) -> int:
    """Number of elements of a finite type (products multiply)."""
    return math.prod(cast(FinSetT, f).size for f in leaf_factors(t))


def type_name(t: ObjT) -> str:
    if t.name:
        return t.name
    if isinstance(t, FinSetT):
        return f"FinSet {t.size}"
    if isinstance(t, SpaceT):
        return f"{t.kind} {t.dim}"
    return " * ".join(type_name(f) for f in t.factors)


def lead_shape(x: torch.Tensor, t: ObjT) -> tuple[int, ...]:
    """The leading (batch/position) axes of a value of type ``t``."""
    if isinstance(t, FinSetT):
        return tuple(x.shape)
    return tuple(x.shape[:-1])


def flat_index(x: torch.Tensor, t: ObjT) -> torch.Tensor:
    """Ids of a finite type as one mixed-radix index into ``finite_size(t)``."""
    if isinstance(t, FinSetT):
        return x if x.dtype == torch.long else x.long()  # int32 ids are accepted too
    x = x.long()
    idx = torch.zeros_like(x[..., 0])
    for i, f in enumerate(leaf_factors(t)):
        idx = idx * f.size + x[..., i]  # type: ignore[union-attr]
    return idx


def unflat_index(idx: torch.Tensor, t: ObjT) -> torch.Tensor:
    """Inverse of :func:`flat_index`."""
    if isinstance(t, FinSetT):
        return idx
    cols = []
    for f in reversed(leaf_factors(t)):
        cols.append(idx % f.size)  # type: ignore[union-attr]
        idx = idx // f.size  # type: ignore[union-attr]
    return torch.stack(cols[::-1], dim=-1)


def split_value(x: torch.Tensor, t: ObjT) -> list[torch.Tensor]:
    """Split a value of product type ``t`` into its top-level factors' values."""
    fs = factors(t)
    if len(fs) == 1:
        return [x]
    out, start = [], 0
    ids = is_finite(t)
    for f in fs:
        w = flat_dim(f)
        part = x[..., start : start + w]
        if isinstance(f, FinSetT):
            part = part[..., 0]
            if not ids:  # a finite factor inside a float product holds its id
                part = part.round().long()
        out.append(part)
        start += w
    return out


def join_values(values: list[torch.Tensor], types: list[ObjT]) -> torch.Tensor:
    """Concatenate factor values into a product value (inverse of :func:`split_value`).

    A ``FinSetT`` factor's ids become one column; the result is int64 when every factor
    is finite, else floats (ids stored as numbers). 0-d values (globals) are broadcast
    over the others' leading axes.
    """
    if len(values) == 1:
        return values[0]
    cols = [
        v.unsqueeze(-1) if isinstance(t, FinSetT) else v for v, t in zip(values, types, strict=True)
    ]
    cols = [c.reshape(1) if c.dim() == 0 else c for c in cols]
    leads = {c.shape[:-1] for c in cols}
    if len(leads) > 1:  # a global (or a row constant) among per-row values
        lead = torch.broadcast_shapes(*leads)
        cols = [c.expand(*lead, c.shape[-1]) for c in cols]
    if all(is_finite(t) for t in types):
        return torch.cat(cols, dim=-1)
    dtype = next((c.dtype for c in cols if c.is_floating_point()), torch.get_default_dtype())
    return torch.cat([c.to(dtype) for c in cols], dim=-1)


def as_ids(x: Any, t: ObjT, where: str) -> Any:
    """Floats holding whole numbers, given where ids of a finite type are expected, are
    those ids: returned as int64 after the checks of :func:`check_value`.

    Data often arrive as floats (``torch.zeros(N, 1)`` as a plate program's input, a
    column of ids read from a table), and the ids they hold are exact. Converting here,
    where a run's input is validated, keeps the check out of every later step. A float
    that is not a whole number (or NaN, or infinite) is a :class:`QvrDataError` naming
    ``where``, the set, the expected ids and the given dtype and value. Anything else
    is returned unchanged.
    """
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and is_finite(t)):
        return x
    if not data_checks():  # the caller validated these data (quivers.runtime.checks)
        return x.long()
    whole = torch.isfinite(x) & (x == x.round())
    if not bool(whole.all()):
        bad = float(x[~whole].flatten()[0])
        raise QvrDataError(
            f"{where}: expected int64 ids of {type_name(t)} (floats only when they hold whole "
            f"numbers), got {describe(x)} holding {bad:g}, not an id"
        )
    check_value(x, t, where, whole_floats=True)  # shape and range, before the cast
    return x.long()


def check_value(
    x: object,
    t: ObjT,
    where: str,
    min_lead: int = 0,
    max_lead: int | None = None,
    whole_floats: bool = False,
) -> None:
    """Raise :class:`QvrDataError` unless ``x`` is a valid value of type ``t``
    (``whole_floats``: floats already known to hold whole numbers pass as ids)."""
    if not isinstance(x, torch.Tensor):
        raise QvrDataError(f"{where}: expected a tensor of {type_name(t)}, got {describe(x)}")
    if is_finite(t):
        k = len(leaf_factors(t))
        want = "int64 ids" + ("" if isinstance(t, FinSetT) else f" with last axis {k}")
        floats = x.is_floating_point() and not whole_floats
        if floats or x.is_complex() or x.dtype == torch.bool:
            raise QvrDataError(f"{where}: expected {want} of {type_name(t)}, got {describe(x)}")
        if not isinstance(t, FinSetT) and (x.dim() == 0 or x.shape[-1] != k):
            raise QvrDataError(f"{where}: expected {want} of {type_name(t)}, got {describe(x)}")
        if x.numel():
            for i, f in enumerate(leaf_factors(t)):
                col = x if isinstance(t, FinSetT) else x[..., i]
                lo, hi = int(col.min()), int(col.max())
                if lo < 0 or hi >= f.size:  # type: ignore[union-attr]
                    bad = hi if hi >= f.size else lo  # type: ignore[union-attr]
                    raise QvrDataError(
                        f"{where}: id {bad} out of range for {type_name(f)} "
                        f"(expected 0..{f.size - 1}), given {describe(x)}"  # type: ignore[union-attr]
                    )
        lead = x.dim() if isinstance(t, FinSetT) else x.dim() - 1
    else:
        d = flat_dim(t)
        if not x.is_floating_point() or x.dim() == 0 or x.shape[-1] != d:
            raise QvrDataError(
                f"{where}: expected floats of shape (..., {d}) for {type_name(t)}, "
                f"got {describe(x)}"
            )
        lead = x.dim() - 1
    if lead < min_lead or (max_lead is not None and lead > max_lead):
        rng = f"{min_lead}" if max_lead == min_lead else f"{min_lead}..{max_lead}"
        raise QvrDataError(
            f"{where}: expected {rng} leading (batch/position) axes for {type_name(t)}, "
            f"got {describe(x)}"
        )
