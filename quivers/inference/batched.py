"""Phase-space primitives for C chains at once (vectorised chains).

Positions, momenta and gradients are (C, D) tensors, so that one leapfrog step of
every chain costs one call of the model's potential and gradient
(:class:`BatchedPotential`, through :func:`torch.func.vmap`). Per-chain scalars
(energies, log weights, acceptance sums, flags) stay Python lists: a handful of
floats per chain is cheaper as Python numbers than as tiny tensors, and it lets one
chain repeat the sequential kernel's arithmetic exactly. Masks say which chains are
still working; a chain that has finished waits while the others go on (the design of
NumPyro's and BlackJAX's vectorised samplers, Phan et al. 2019; Cabezas et al. 2024).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch

from quivers.inference.compile import CompiledLeapfrog, CompiledValueAndGrad
from quivers.inference.integrator import PhasePoint
from quivers.inference.potential import Potential


@dataclass(frozen=True)
class BatchPoint:
    """C chains' positions (C, D), potential energies and gradients (C, D)."""

    q: torch.Tensor
    potential: list[float]
    grad: torch.Tensor

    def point(self, chain: int) -> PhasePoint:
        return PhasePoint(self.q[chain], self.potential[chain], self.grad[chain])

    @classmethod
    def stack(cls, points: list[PhasePoint]) -> BatchPoint:
        return cls(
            torch.stack([p.q for p in points]),
            [p.potential for p in points],
            torch.stack([p.grad for p in points]),
        )


def rowdot(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Row-wise dot products of (C, D) tensors. One row uses the same BLAS dot as the
    sequential kernel, so that one vectorised chain repeats it bit for bit."""
    if a.shape[0] == 1:
        return [float(torch.dot(a[0], b[0]))]
    out: list[float] = (a * b).sum(-1).tolist()
    return out


@functools.lru_cache(maxsize=4096)
def _mask(mask: tuple[bool, ...], ndim: int, device: torch.device) -> torch.Tensor:
    """A row mask shaped to broadcast over ``ndim``-dimensional rows (cached: a
    transition uses a handful of distinct masks thousands of times; never mutated)."""
    return torch.tensor(mask, device=device).reshape((len(mask),) + (1,) * (ndim - 1))


#: rows of at least this many elements are picked by stacking the chosen rows (one
#: read and one write per element) instead of ``torch.where`` (two reads and a write,
#: and a broadcast mask): 2-4x faster on one thread from 4,096 elements a row (0.33
#: against 0.64 ms for four rows of 4 x 66,048, the lifted model's trajectory ends);
#: below about 1,600 the single ``where`` kernel wins (``docs/benchmarks.md``)
ROW_COPY_MIN = 2048


def pick(mask: list[bool], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rows of ``a`` where ``mask`` holds, else rows of ``b`` (no work when uniform)."""
    if all(mask):
        return a
    if not any(mask):
        return b
    if a.shape == b.shape and a.dtype == b.dtype and a[0].numel() >= ROW_COPY_MIN:
        return torch.stack([x if m else y for m, x, y in zip(mask, a, b, strict=True)])
    return torch.where(_mask(tuple(mask), a.dim(), a.device), a, b)


def pick_list(mask: list[bool], a: list[float], b: list[float]) -> list[float]:
    return [x if m else y for m, x, y in zip(mask, a, b, strict=True)]


def row_scalars(values: list[float], like: torch.Tensor) -> torch.Tensor:
    """Per-chain scalars as a (C, 1) column in ``like``'s dtype and device."""
    return _column(tuple(values), like.dtype, like.device)


@functools.lru_cache(maxsize=4096)
def _column(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device).unsqueeze(-1)


def rowdots(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> list[list[float]]:
    """:func:`rowdot` of several pairs of (C, D) tensors, in one reduction for C > 1."""
    if pairs[0][0].shape[0] == 1:
        return [rowdot(a, b) for a, b in pairs]
    if pairs[0][0].numel() > 32768:
        # wide rows: stacking copies every operand (12 MB per call for the lifted
        # RNN's four chains of 66,048, 13 ms against 1.2 ms); the same sums, bit for bit
        wide: list[list[float]] = torch.stack(
            [torch.linalg.vecdot(a, b) for a, b in pairs]
        ).tolist()
        return wide
    left = torch.stack([a for a, _ in pairs])
    right = torch.stack([b for _, b in pairs])
    out: list[list[float]] = (left * right).sum(-1).tolist()
    return out


class BatchedPotential:
    """U and dU/du for C chains' positions (C, D) in one call.

    Chains are independent, so the gradient of the sum of their energies is every
    chain's own gradient. The model is evaluated for all rows at once with
    :func:`torch.func.vmap` (argument validation of ``torch.distributions`` off, as
    in the ELBO's particles: it branches on data); when the model does not vectorise,
    or one row raises (a support check after overflow), rows are evaluated one at a
    time, so one chain's failure is that chain's infinite energy only. When the
    potential was built with ``compile=True`` the vmapped call is compiled too.
    """

    def __init__(self, potential: Potential, vectorize: bool = True) -> None:
        self.potential = potential
        self.vectorize = vectorize
        self._vmap_ok: bool | None = None  # unknown until the first call
        self.num_calls = 0
        fast = getattr(potential, "compiled", None) is not None and vectorize
        self.compiled = CompiledValueAndGrad(potential, batched=True) if fast else None
        self.leapfrog = CompiledLeapfrog(potential) if fast else None
        # the iterative tree's compiled transitions (quivers.inference.nuts_graph),
        # one per kernel setting (depth, leaves per chunk, energy bound), made on the
        # first transition of each
        self.transition_graphs: dict[tuple[int, int, float], Any] = {}

    def fused_leapfrog(
        self, start: torch.Tensor, steps: torch.Tensor, inv_mass: torch.Tensor
    ) -> tuple[torch.Tensor, list[float], list[float]] | None:
        """With ``compile=True``: one leapfrog step of every row of ``start`` (C, 4, D:
        position, gradient, momentum, sharp momentum) by signed ``steps`` (C, 1), as
        one compiled graph: (new ends, potential energies, kinetic energies), a row
        whose energy or gradient is not finite having energy inf. None when not
        compiling (or compilation failed): use :func:`leapfrog_batch`."""
        if self.leapfrog is None or start.shape[0] == 1 or not self.potential.checked:
            return None
        with self.potential.trusted():
            out = self.leapfrog(start, steps, inv_mass)
        if out is None:
            return None
        self.num_calls += 1
        self.potential.num_evals += start.shape[0]
        end, scalars = out
        energy, kinetic, ok = scalars.tolist()
        energy = [
            e if g and math.isfinite(e) else math.inf for e, g in zip(energy, ok, strict=True)
        ]
        return end, energy, kinetic

    def value_and_grad(
        self, u: torch.Tensor, active: list[bool] | None = None
    ) -> tuple[list[float], torch.Tensor]:
        """(energies, gradients) for ``u`` (C, D); rows not ``active`` are skipped
        (energy inf, gradient 0)."""
        self.num_calls += 1
        rows = u.shape[0]
        if active is None or all(active):
            return self._evaluate(u)
        if self.compiled is not None and self.compiled.error is None and rows > 1:
            # compiled: every row (one graph, no row selection); finished rows' results
            # are never read, and are reported as skipped
            energy, grad = self._evaluate(u)
            return [e if a else math.inf for e, a in zip(energy, active, strict=True)], grad
        index = [c for c in range(rows) if active[c]]
        if not index:
            return [math.inf] * rows, torch.zeros_like(u)
        where = torch.tensor(index, device=u.device)
        energy, grad = self._evaluate(u.index_select(0, where))
        full = [math.inf] * rows
        for k, c in enumerate(index):
            full[c] = energy[k]
        return full, torch.zeros_like(u).index_copy(0, where, grad)

    def _evaluate(self, u: torch.Tensor) -> tuple[list[float], torch.Tensor]:
        if u.shape[0] == 1 or not self.vectorize or self._vmap_ok is False:
            return self._loop(u)
        if not self.potential.checked:
            return self._loop(u)  # the first row validates the data
        try:
            out = self._vmapped(u)
        except ValueError:
            return self._loop(u)  # a row out of support: isolate it
        except Exception:  # noqa: BLE001 - any other failure means "does not vectorise"
            if self._vmap_ok:
                raise  # it worked before: a real error
            self._vmap_ok = False
            return self._loop(u)
        self._vmap_ok = True
        return out

    def _loop(self, u: torch.Tensor) -> tuple[list[float], torch.Tensor]:
        energies: list[float] = []
        grads: list[torch.Tensor] = []
        for row in u:
            e, g = self.potential.value_and_grad(row)
            energies.append(e)
            grads.append(g)
        return energies, torch.stack(grads)

    def _vmapped(self, u: torch.Tensor) -> tuple[list[float], torch.Tensor]:
        with self.potential.trusted():
            fast = self.compiled(u) if self.compiled is not None else None
            if fast is not None:
                energy, grad, ok = fast
            else:
                with torch.enable_grad():
                    leaf = u.detach().requires_grad_(True)
                    energy = torch.func.vmap(self.potential, randomness="error")(leaf)
                    (grad,) = torch.autograd.grad(energy.sum(), leaf)
                ok = torch.isfinite(grad).all(-1)
        self.potential.num_evals += u.shape[0]
        values: list[float] = energy.detach().tolist()
        finite = ok.tolist()
        bad = [not (math.isfinite(e) and ok) for e, ok in zip(values, finite, strict=True)]
        if any(bad):
            self.potential.last_error = "non-finite log density or gradient"
            values = [math.inf if b else e for e, b in zip(values, bad, strict=True)]
            grad = pick(bad, torch.zeros_like(grad), grad)
        return values, grad


def sample_momentum_batch(inv_mass: torch.Tensor) -> torch.Tensor:
    """Momenta ~ Normal(0, M) for every chain (same draws as the sequential kernel's
    for one chain)."""
    return torch.randn_like(inv_mass) / inv_mass.sqrt()


def leapfrog_batch(
    potential: BatchedPotential,
    q: torch.Tensor,
    grad: torch.Tensor,
    p: torch.Tensor,
    steps: list[float],
    inv_mass: torch.Tensor,
    active: list[bool] | None = None,
) -> tuple[torch.Tensor, list[float], torch.Tensor, torch.Tensor]:
    """One leapfrog step per chain with signed step sizes ``steps``: (q, U, grad, p)."""
    half = row_scalars([0.5 * s for s in steps], q)
    full = row_scalars(steps, q)
    p_half = p - half * grad
    q_new = q + full * (inv_mass * p_half)
    energy, grad_new = potential.value_and_grad(q_new, active)
    p_new = p_half - half * grad_new
    return q_new, energy, grad_new, p_new
