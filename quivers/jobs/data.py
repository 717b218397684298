"""Data for a run: synthetic corpora drawn from the model, or a user's tensor file.

Synthetic data follows the reference page: fix the model's stochastic weights to a
draw under one seed (``N(0, 0.3^2)``), forward-sample inputs and observations, and
let the caller refit from fresh weights under another seed. Files are ``.pt``
(``torch.save`` of a dict of tensors), ``.npz`` or ``.json`` (a dict of nested lists);
their keys are ``x`` (the program input) and the names of observed sites and host
data, each checked against the program.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from quivers.core.families import FAMILIES, Domain
from quivers.runtime.ir import (
    BinOp,
    Call,
    FamilySource,
    FinSetT,
    Index,
    LetStep,
    Neg,
    ObjT,
    ProductT,
    ProgramDecl,
    RelationRef,
    SampleStep,
    ScoreStep,
    SpaceT,
    Var,
)
from quivers.runtime.program import ProgramModule


class DataError(ValueError):
    """A data file that does not fit the program; the message says how."""


@dataclass
class Dataset:
    x: torch.Tensor
    observations: dict[str, torch.Tensor]
    source: str  # "synthetic" or the file path

    def describe(self) -> str:
        parts = [f"x {tuple(self.x.shape)} {str(self.x.dtype).removeprefix('torch.')}"]
        for name, t in self.observations.items():
            parts.append(f"{name} {tuple(t.shape)}")
        return ", ".join(parts)


def uses_sequences(model: nn.Module) -> bool:
    from quivers.runtime.combinators import Scan

    return any(isinstance(m, Scan) for m in model.modules())


def random_input(dom: ObjT, batch: int, length: int, sequences: bool) -> torch.Tensor:
    lead = (batch, length) if sequences else (batch,)
    if isinstance(dom, FinSetT):
        return torch.randint(0, dom.size, lead)
    if isinstance(dom, SpaceT):
        return _continuous(dom, (*lead, max(dom.dim, 1)))
    assert isinstance(dom, ProductT)
    parts = [random_input(f, batch, length, sequences) for f in dom.factors]
    if all(p.dtype == torch.int64 for p in parts):  # ids of a finite product, side by side
        return torch.stack(parts, dim=-1)
    parts = [p.unsqueeze(-1).float() if p.dtype == torch.int64 else p for p in parts]
    return torch.cat(parts, dim=-1)


def run_arguments(model: nn.Module, n_steps: int) -> dict[str, int]:
    """Call-time arguments the model needs: ``n_steps`` for a ``repeat(f)`` without count."""
    from quivers.runtime.combinators import RelRepeat, RepeatChain

    for m in model.modules():
        if isinstance(m, RelRepeat | RepeatChain) and m.count is None:
            return {"n_steps": n_steps}
    return {}


def _continuous(t: SpaceT, shape: tuple[int, ...]) -> torch.Tensor:
    if t.kind == Domain.POSITIVE:
        return torch.rand(shape) + 0.5
    if t.kind == Domain.UNIT:
        return torch.rand(shape) * 0.8 + 0.1
    if t.kind == Domain.SIMPLEX:
        return torch.softmax(torch.randn(shape), dim=-1)
    return torch.randn(shape)


def draw_weights(model: nn.Module, weight_scale: float = 0.3) -> None:
    """Set every parameter to ``N(0, weight_scale^2)`` draws from the current RNG state."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * weight_scale)


@dataclass(frozen=True)
class HostKind:
    """What a program's host data must hold, as far as its uses say: integer ids in
    ``0..ids-1`` (an index into a plate or a relation), or floats, positive when they
    reach a positive family parameter (a scale, a rate) through ``let`` arithmetic or
    the argument of ``log`` or ``sqrt``."""

    ids: int | None = None
    positive: bool = False


# functions whose value is positive whatever their argument: positivity stops there
_POSITIVE_FUNCTIONS = frozenset({"sigmoid", "exp", "softplus", "abs"})
# functions defined only for positive arguments (log, sqrt of a negative are NaN)
_POSITIVE_ARGUMENT = frozenset({"log", "sqrt"})


def host_kinds(decl: ProgramDecl) -> dict[str, HostKind]:
    """The kind of every host name of ``decl`` (floats unless a use says otherwise)."""
    plates = {s.var: s.plate for s in decl.steps if isinstance(s, SampleStep) and s.plate}
    lets = {s.var: s.value for s in decl.steps if isinstance(s, LetStep)}
    hosts = set(decl.host_names)
    ids: dict[str, int] = {}
    positive: set[str] = set()

    def walk(e: Any) -> None:  # host ids: the index of a plate or of a relation's rows
        if isinstance(e, Index):
            size = None
            if isinstance(e.base, RelationRef) and isinstance(e.base.expr.dom, FinSetT):
                size = e.base.expr.dom.size
            elif isinstance(e.base, Var):
                size = plates.get(e.base.name)
            if e.index.name in hosts and size is not None:
                ids[e.index.name] = size
        if isinstance(e, Call) and e.fn in _POSITIVE_ARGUMENT:
            for arg in e.args:
                needs_positive(arg, frozenset())
        for child in _children(e):
            walk(child)

    def needs_positive(e: Any, seen: frozenset[str]) -> None:
        if isinstance(e, Var):
            if e.name in hosts:
                positive.add(e.name)
            elif e.name in lets and e.name not in seen:
                needs_positive(lets[e.name], seen | {e.name})
        elif isinstance(e, BinOp) and e.op == "*" and e.left == e.right:
            return  # a square is non-negative whatever its operand
        elif isinstance(e, BinOp | Neg) or (
            isinstance(e, Call) and e.fn not in _POSITIVE_FUNCTIONS
        ):
            for child in _children(e):
                needs_positive(child, seen)

    for step in decl.steps:
        if isinstance(step, LetStep | ScoreStep):
            walk(step.value)
        elif isinstance(step, SampleStep) and isinstance(step.source, FamilySource):
            family = FAMILIES.get(step.source.family)
            for i, arg in enumerate(step.source.args):
                walk(arg)
                domain = family.params[i].domain if family and i < len(family.params) else None
                if domain in (Domain.POSITIVE, Domain.UNIT):
                    needs_positive(arg, frozenset())
    return {n: HostKind(ids.get(n), n in positive and n not in ids) for n in decl.host_names}


def _children(e: Any) -> tuple[Any, ...]:
    if isinstance(e, BinOp):
        return (e.left, e.right)
    if isinstance(e, Neg):
        return (e.operand,)
    if isinstance(e, Call):
        return e.args
    return ()


def plate_rows(decl: ProgramDecl) -> int | None:
    """The rows of a plate program: a program over a finite set ``K`` whose steps have
    a plate over a set of that size has one row per element (``K -> K``, the
    regression idiom), so per-row values line up with the plate's."""
    sizes = {s.plate for s in decl.steps if isinstance(s, SampleStep) and s.plate}
    if isinstance(decl.dom, FinSetT) and decl.dom.size in sizes:
        return decl.dom.size
    return None


def synthetic_host(kind: HostKind, rows: int) -> torch.Tensor:
    """One synthetic value per row for host data of ``kind``."""
    if kind.ids is not None:
        return torch.randint(0, kind.ids, (rows,))
    if kind.positive:
        return torch.rand(rows, 1) + 0.5
    return torch.randn(rows, 1)


def synthetic_inputs(
    model: ProgramModule, batch: int, length: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Random program input and host data that fit the program's declared inputs: a
    plate program gets each element of its set once (:func:`plate_rows`, not
    ``batch`` rows), host data one value per row of its kind (:func:`host_kinds`)."""
    rows = plate_rows(model.decl)
    if rows is not None:
        x = torch.arange(rows)
    else:
        x = random_input(model.decl.dom, batch, length, uses_sequences(model))
    n = int(x.shape[0])
    kinds = host_kinds(model.decl)
    return x, {name: synthetic_host(kinds[name], n) for name in model.host_names}


def synthetic(
    model: ProgramModule,
    batch: int = 4,
    length: int = 8,
    seed: int | None = 0,
    weight_scale: float = 0.3,
) -> Dataset:
    """A corpus drawn from ``model`` with its weights fixed to a seeded draw.

    The inputs are :func:`synthetic_inputs`. The model's parameters are left at that draw (the "true" weights); callers
    that refit re-initialise them. With ``seed=None`` the RNG is not re-seeded: the
    reference page seeds *before* loading the program (whose initialisation draws
    from the RNG), and a caller that did the same gets exactly the page's corpus.
    """
    if seed is not None:
        torch.manual_seed(seed)
    draw_weights(model, weight_scale)
    x, host = synthetic_inputs(model, batch, length)
    with torch.no_grad():
        trace = model.trace(x, dict(host), **run_arguments(model, length))
    observations = {n: s.trace for n, s in trace.items() if s.observed}
    return Dataset(x, {**host, **observations}, "synthetic")


def load_file(
    path: str | Path,
    model: ProgramModule,
    run: dict[str, int] | None = None,
    require_observed: bool = True,
) -> Dataset:
    """Read a data file and check it against ``model``: keys, dtypes and shapes.

    Keys are ``x``, the observed sites and the host data; latent site names (as in a
    file written by ``qvr sample --out``) are accepted and ignored. Integer values for
    continuous inputs are converted to floats (JSON has no float type for ``1``).
    Every mismatch is a :class:`DataError` naming the key, the expected and the given
    dtype or shape; mismatches found by the runtime keep its message (which names the
    site), without the file name. With ``require_observed`` false (sampling), the
    observed sites may be left out: only ``x`` and the host data are needed.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file")
    raw = _read(p)
    if not isinstance(raw, dict):
        raise DataError(f"{p}: expected a dict of tensors, got {type(raw).__name__}")
    tensors = {str(k): _tensor(p, str(k), v) for k, v in raw.items()}
    if "x" not in tensors:
        raise DataError(f"{p}: missing 'x', the program input")
    observed = set(model.observed_names)
    hosts = set(model.host_names)
    latents = set(model.latent_names)
    unknown = sorted(set(tensors) - {"x"} - observed - hosts - latents)
    if unknown:
        expected = ", ".join(sorted(observed | hosts)) or "none"
        raise DataError(
            f"{p}: unknown key(s) {', '.join(unknown)}; the program expects x and {expected}"
        )
    needed = (observed | hosts) if require_observed else hosts
    missing = sorted(needed - set(tensors))
    if missing:
        raise DataError(
            f"{p}: missing {', '.join(missing)} (observed sites and host data need values)"
        )
    x = _check_input(p, model, tensors.pop("x"))
    given = {k: v for k, v in tensors.items() if k in observed | hosts}
    observations = _check_values(p, model, x, given, hosts, run or {})
    return Dataset(x, observations, str(p))


def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape))


def _check_input(p: Path, model: ProgramModule, x: torch.Tensor) -> torch.Tensor:
    dom = model.decl.dom
    if x.dim() == 0:
        raise DataError(f"{p}: 'x' is a scalar; expected one row per data point, shape (N, ...)")
    if _all_finite_sets(dom):
        if x.is_floating_point():
            if not bool(torch.all(x == x.round())):
                raise DataError(
                    f"{p}: 'x' must hold integer ids of {_name(dom)}, "
                    f"got non-integer floats of shape {_shape(x)}"
                )
            x = x.long()
    elif not x.is_floating_point():
        x = x.float()
    return x


def _check_values(
    p: Path,
    model: ProgramModule,
    x: torch.Tensor,
    given: dict[str, torch.Tensor],
    hosts: set[str],
    run: dict[str, int],
) -> dict[str, torch.Tensor]:
    from quivers.runtime.errors import QvrDataError

    rows = int(x.shape[0])
    values: dict[str, torch.Tensor] = {}
    for name in sorted(hosts):
        t = given[name]
        if not t.is_floating_point():
            t = t.float()
        if t.dim() == 0 or int(t.shape[0]) != rows:
            raise DataError(
                f"{p}: host data '{name}' has shape {_shape(t)}, expected ({rows}, ...): "
                f"one row per row of x ({rows})"
            )
        values[name] = t
    try:  # checking runs the model; fork_rng keeps the caller's random stream as it was
        with torch.no_grad(), torch.random.fork_rng():
            reference = model.trace(x, dict(values), **run)
    except QvrDataError as exc:
        raise DataError(str(exc)) from exc
    except RuntimeError as exc:  # a shape clash inside arithmetic on host data
        raise DataError(f"{p}: the data does not fit the program: {exc}") from exc
    for name, t in given.items():
        if name in hosts:
            continue
        site = reference.get(name)
        expected = site.trace if site is not None else None
        if (
            isinstance(expected, torch.Tensor)
            and expected.is_floating_point()
            and not t.is_floating_point()
        ):
            t = t.float()
        values[name] = t
    try:  # the runtime names the site, the expected and the given shape
        with torch.no_grad(), torch.random.fork_rng():
            model.trace(x, dict(values), **run)
    except QvrDataError as exc:
        raise DataError(str(exc)) from exc
    except RuntimeError as exc:
        raise DataError(f"{p}: the data does not fit the program: {exc}") from exc
    return values


def _all_finite_sets(t: ObjT) -> bool:
    if isinstance(t, FinSetT):
        return True
    if isinstance(t, ProductT):
        return all(_all_finite_sets(f) for f in t.factors)
    return False


def _name(t: ObjT) -> str:
    return getattr(t, "name", None) or type(t).__name__


def _read(p: Path) -> Any:
    suffix = p.suffix.lower()
    try:
        if suffix == ".pt":
            return torch.load(p, map_location="cpu", weights_only=True)
        if suffix == ".npz":
            import numpy as np

            with np.load(p) as archive:
                return {k: archive[k] for k in archive.files}
        if suffix == ".json":
            return json.loads(p.read_text(encoding="utf-8"))
    except Exception as exc:  # a corrupt file: report it as data, not a crash
        raise DataError(f"{p}: cannot read: {exc}") from exc
    raise DataError(
        f"{p}: unsupported data file type '{suffix}' (use .pt, .npz or .json; a text "
        "corpus is for qvr fit --data FILE.txt)"
    )


def _tensor(p: Path, key: str, value: Any) -> torch.Tensor:
    try:
        t = torch.as_tensor(value)
    except Exception as exc:
        raise DataError(f"{p}: '{key}' is not a tensor: {exc}") from exc
    if t.dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
        t = t.long()
    elif (
        t.dtype == torch.float16
        or t.dtype == torch.bfloat16
        or t.is_floating_point()
        and t.dtype != torch.float32
    ):
        t = t.float()
    return t


def save_file(path: str | Path, data: dict[str, torch.Tensor]) -> None:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".pt":
        torch.save(data, p)
    elif suffix == ".json":
        p.write_text(json.dumps({k: v.tolist() for k, v in data.items()}), encoding="utf-8")
    elif suffix == ".npz":
        import numpy as np

        arrays: dict[str, Any] = {k: v.numpy() for k, v in data.items()}
        np.savez(p, **arrays)
    else:
        raise DataError(f"{p}: unsupported output type '{suffix}' (use .pt, .npz or .json)")
