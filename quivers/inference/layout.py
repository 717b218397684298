"""The latent sites of a model as one flat vector in unconstrained space.

Guides and MCMC both work on a single vector ``u`` in R^D: every leaf of every latent
site's trace is mapped to the real line through the bijection onto its support
(:func:`torch.distributions.biject_to`; the same map as ``transform_to`` for every
support except simplex-like ones, where ``transform_to`` is softmax, which is not a
bijection and has no Jacobian), flattened, and concatenated in program order. This is
the "transform to R^D, then approximate/sample there" recipe of ADVI (Kucukelbir et
al., 2017, JMLR 18(14)) and of Stan's HMC.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch.distributions import biject_to, constraints
from torch.distributions.transforms import (
    ComposeTransform,
    ExpTransform,
    IndependentTransform,
    Transform,
)

from quivers.runtime.trace import Site, TraceT, leaves, unflatten


def _is_identity(t: Transform) -> bool:
    while isinstance(t, IndependentTransform):
        t = t.base_transform
    return isinstance(t, ComposeTransform) and not t.parts


def bijector(support: constraints.Constraint) -> Transform | None:
    """The bijection R^k -> support, or None for the identity (real supports)."""
    base = support
    while isinstance(base, constraints.independent):
        base = base.base_constraint
    if isinstance(base, constraints._Real):
        return None
    if isinstance(base, constraints._GreaterThan) and float(base.lower_bound) == 0.0:
        return ExpTransform()  # biject_to gives exp followed by a trivial affine map
    t = biject_to(support)
    return None if _is_identity(t) else t


@dataclass(frozen=True)
class LeafSlot:
    """Where one trace leaf lives in the flat unconstrained vector."""

    site: str
    index: int  # position among the site's leaves
    shape: torch.Size  # constrained shape of the leaf
    ushape: torch.Size  # unconstrained shape
    start: int
    size: int
    transform: Transform | None  # R^ushape -> support; None for the identity
    dtype: torch.dtype


def latent_sites(trace: Mapping[str, Site], conditioned: Collection[str]) -> list[Site]:
    """The sites of ``trace`` that inference must infer: not observed, not given."""
    out = []
    for name, site in trace.items():
        if site.observed or name in conditioned:
            continue
        for support in cast(list[constraints.Constraint], leaves(site.support)):
            if support.is_discrete:
                raise ValueError(
                    f"latent site '{name}' has discrete support {support}; guides and "
                    "HMC/NUTS handle continuous latents only (observe the site, or "
                    "marginalise it out of the model)"
                )
        out.append(site)
    return out


# torch's Transform methods carry no annotations: these give them their types.
def inverse_shape(t: Transform, shape: torch.Size) -> torch.Size:
    inverse: Callable[[torch.Size], Sequence[int]] = t.inverse_shape
    return torch.Size(inverse(shape))


def log_abs_det_jacobian(t: Transform, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    ladj: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = t.log_abs_det_jacobian
    return ladj(x, y)


def missing_observations(observed_names: Collection[str], observations: Mapping[str, Any]) -> None:
    """Raise a clear error when an ``observe`` site has no value."""
    missing = sorted(set(observed_names) - set(observations))
    if missing:
        raise ValueError(
            f"observed site(s) {missing} have no value in observations "
            f"(given: {sorted(observations)})"
        )


class LatentLayout:
    """Maps the latent sites' traces to and from one vector in R^D.

    Built from one trace of the model (the sites' shapes may depend on ``x``), it
    offers :meth:`constrain` (u -> traces, plus log|det J|) and :meth:`unconstrain`.
    Both accept leading batch dimensions (particles, draws) in front of the site shapes.
    """

    def __init__(self, sites: list[Site]) -> None:
        self.site_names: tuple[str, ...] = tuple(s.name for s in sites)
        self.site_like: dict[str, TraceT] = {}
        self.local_sites: tuple[str, ...] = tuple(s.name for s in sites if not s.is_global)
        slots: list[LeafSlot] = []
        devices: list[torch.device] = []
        start = 0
        for site in sites:
            trace_leaves = leaves(site.trace)
            supports = cast(list[constraints.Constraint], leaves(site.support))
            if len(supports) == 1 and len(trace_leaves) > 1:
                supports = supports * len(trace_leaves)
            if len(supports) != len(trace_leaves):
                raise ValueError(
                    f"site '{site.name}': {len(trace_leaves)} trace leaves but "
                    f"{len(supports)} supports"
                )
            self.site_like[site.name] = site.trace
            for i, (leaf, support) in enumerate(zip(trace_leaves, supports, strict=True)):
                t = bijector(support)
                shape = leaf.shape
                ushape = inverse_shape(t, shape) if t is not None else shape
                size = int(torch.Size(ushape).numel())
                slots.append(LeafSlot(site.name, i, shape, ushape, start, size, t, leaf.dtype))
                start += size
                devices.append(leaf.device)
        self.slots: tuple[LeafSlot, ...] = tuple(slots)
        self._sizes = [slot.size for slot in slots]
        self.dim = start
        # u lives where the model's traces live (a model moved with .to("cuda") samples there)
        self.device = devices[0] if devices else torch.device("cpu")
        # u is kept in the widest floating dtype of the leaves (float64 models stay exact)
        self.dtype = torch.get_default_dtype()
        for slot in slots:
            if slot.dtype.is_floating_point:
                self.dtype = torch.promote_types(self.dtype, slot.dtype)

    @classmethod
    def from_trace(cls, trace: Mapping[str, Site], conditioned: Collection[str]) -> LatentLayout:
        return cls(latent_sites(trace, conditioned))

    def __repr__(self) -> str:
        return f"LatentLayout(sites={self.site_names}, dim={self.dim})"

    def constrain(
        self, u: torch.Tensor, with_jacobian: bool = True
    ) -> tuple[dict[str, TraceT], torch.Tensor]:
        """Traces for ``u`` of shape (*batch, D), and log|det d(trace)/du| (*batch)."""
        batch = u.shape[:-1]
        ladj = u.new_zeros(batch)
        per_site: dict[str, list[torch.Tensor]] = {name: [] for name in self.site_names}
        # one split, not a slice per leaf: a slice's backward writes its gradient into
        # a zero-filled copy of all of u, one per leaf (the lifted RNN's 11 leaves
        # made that a third of its gradient); the split's backward is one concatenation
        pieces = torch.split(u, self._sizes, dim=-1) if self.slots else ()
        for slot, piece in zip(self.slots, pieces, strict=True):
            seg = piece.reshape(batch + slot.ushape)
            if slot.dtype.is_floating_point and seg.dtype != slot.dtype:
                seg = seg.to(slot.dtype)
            if slot.transform is None:
                y = seg
            else:
                y = slot.transform(seg)
                if with_jacobian:
                    j = log_abs_det_jacobian(slot.transform, seg, y)
                    ladj = ladj + j.reshape(batch + (-1,)).sum(-1)
            per_site[slot.site].append(y)
        values = {name: unflatten(self.site_like[name], parts) for name, parts in per_site.items()}
        return values, ladj

    def unconstrain(self, values: Mapping[str, TraceT]) -> torch.Tensor:
        """The vector (*batch, D) for the latent traces in ``values``."""
        parts: list[torch.Tensor] = []
        batch: torch.Size | None = None
        cache: dict[str, list[torch.Tensor]] = {}
        for slot in self.slots:
            if slot.site not in values:
                raise KeyError(f"no value for latent site '{slot.site}'")
            if slot.site not in cache:
                cache[slot.site] = leaves(values[slot.site])
            y = torch.as_tensor(cache[slot.site][slot.index])
            nb = y.dim() - len(slot.shape)
            if nb < 0 or y.shape[nb:] != slot.shape:
                raise ValueError(
                    f"site '{slot.site}': expected trailing shape {tuple(slot.shape)}, "
                    f"got {tuple(y.shape)}"
                )
            if batch is None:
                batch = y.shape[:nb]
            seg = y if slot.transform is None else slot.transform.inv(y)
            parts.append(seg.reshape(batch + (-1,)).to(self.dtype))
        if not parts:
            return torch.zeros(0, dtype=self.dtype, device=self.device)
        return torch.cat(parts, dim=-1)

    def batch_size_of(self, x: Any) -> int | None:
        """The leading size of ``x`` when some latent site is local (else None)."""
        if not self.local_sites or not isinstance(x, torch.Tensor) or x.dim() == 0:
            return None
        return int(x.shape[0])
