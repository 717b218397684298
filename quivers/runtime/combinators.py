"""Combinators: Kleisli composition, ``@``, ``fan``, ``repeat``, ``stack``, ``scan``,
``identity``; and their finite-set (relation) counterparts under the active algebra.

Kleisli composition follows Giry's monad (Giry, 1982): ``f >> g`` samples f then g on
f's value; the composite's trace is the tuple of its stochastic parts' traces (one
trace as itself), so its density is exactly the sum of the parts' densities.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from quivers.runtime.algebras import Algebra
from quivers.runtime.errors import QvrDataError, describe
from quivers.runtime.ir import FinSetT, ObjT, ProductT, flat_dim
from quivers.runtime.kernels import Relation
from quivers.runtime.node import (
    Node,
    RelationMixin,
    RunOut,
    TraceSpec,
    add_lp,
    nodes,
    pack,
    unpack,
)
from quivers.runtime.objects import (
    finite_size,
    is_finite,
    lead_shape,
    split_value,
    type_name,
)
from quivers.runtime.objects import join_values as join
from quivers.runtime.trace import leaves, unflatten


def rels(modules: nn.ModuleList) -> list[Relation]:
    return cast(list[Relation], list(modules))


def is_relation(node: nn.Module) -> bool:
    return isinstance(node, RelationMixin) and isinstance(node, Relation)


class Chain(Node):
    """Kleisli composition of parts in order (also ``stack`` and counted ``repeat``)."""

    def __init__(self, parts: list[Node]) -> None:
        super().__init__(parts[0].dom, parts[-1].cod)
        self.parts = nn.ModuleList(parts)
        self.stochastic = any(p.stochastic for p in parts)
        self.position_batchable = all(p.position_batchable for p in parts)

    def _sequence(self, **run: Any) -> list[Node]:
        return nodes(self.parts)

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        seq = self._sequence(**run)
        n = sum(p.stochastic for p in seq)
        given = unpack(trace, n, "trace") if trace is not None else None
        traces, lp, k = [], None, 0
        for part in seq:
            if part.stochastic:
                tr, x, step_lp = part.run(x, given[k] if given else None, want_lp, **run)
                traces.append(tr)
                lp = add_lp(lp, step_lp)
                k += 1
            else:
                x = part.run(x, None, False, **run)[1]
        return pack(traces), x, lp

    def support(self):
        return pack([p.support() for p in nodes(self.parts) if p.stochastic])

    def _spec_sequence(self) -> list[Node] | None:
        return nodes(self.parts)

    def trace_spec(self, lead):
        seq = self._spec_sequence()
        if seq is None:
            return None  # known only at call time
        specs = []
        for part in seq:
            if part.stochastic:
                specs.append(part.trace_spec(lead))
            lead = part.out_lead(lead)
        return specs[0] if len(specs) == 1 else tuple(specs)

    def out_lead(self, lead):
        for part in nodes(self.parts):
            lead = part.out_lead(lead)
        return lead

    def check_input(self, x, where="input"):
        nodes(self.parts)[0].check_input(x, where)
        self.require_lead(lead_shape(x, self.dom), x, self.dom, where)

    def require_lead(self, lead, x, dom, where):
        for part in nodes(self.parts):
            part.require_lead(lead, x, dom, where)
            lead = part.out_lead(lead)


class RepeatChain(Chain):
    """``repeat(f)`` / ``repeat(f, n)`` on kernels: the one body applied n times."""

    def __init__(self, body: Node, count: int | None) -> None:
        super().__init__([body])
        self.count = count

    def steps(self, **run: Any) -> int:
        return resolve_count(self.count, run)

    def _sequence(self, **run):
        return [nodes(self.parts)[0]] * self.steps(**run)

    def _spec_sequence(self):
        return None if self.count is None else [nodes(self.parts)[0]] * self.count

    def support(self):
        return nodes(self.parts)[0].support()  # per step; the trace is a tuple of these

    def out_lead(self, lead):
        return lead


def resolve_count(count: int | None, run: dict[str, Any]) -> int:
    n = count if count is not None else run.get("n_steps")
    if n is None:
        raise QvrDataError("repeat(f) without a count needs n_steps=N at call time")
    if not isinstance(n, int) or n < 0:
        raise QvrDataError(f"n_steps: expected a non-negative int, got {n!r}")
    return n


class Parallel(Node):
    """``f @ g`` (split input) or ``fan(f, ...)`` (shared input); outputs concatenate."""

    def __init__(self, parts: list[Node], split: bool) -> None:
        dom = ProductT(tuple(p.dom for p in parts)) if split else parts[0].dom
        super().__init__(dom, ProductT(tuple(p.cod for p in parts)))
        self.parts = nn.ModuleList(parts)
        self.split = split
        self.stochastic = any(p.stochastic for p in parts)
        self.position_batchable = all(p.position_batchable for p in parts)

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        n = sum(p.stochastic for p in nodes(self.parts))
        given = unpack(trace, n, "trace") if trace is not None else None
        inputs = split_value(x, self.dom) if self.split else [x] * len(self.parts)
        traces, values, lp, k = [], [], None, 0
        for part, xi in zip(nodes(self.parts), inputs, strict=True):
            if part.stochastic:
                tr, v, step_lp = part.run(xi, given[k] if given else None, want_lp, **run)
                traces.append(tr)
                lp = add_lp(lp, step_lp)
                k += 1
            else:
                v = part.run(xi, None, False, **run)[1]
            values.append(v)
        return pack(traces), join(values, [p.cod for p in nodes(self.parts)]), lp

    def support(self):
        return pack([p.support() for p in nodes(self.parts) if p.stochastic])

    def trace_spec(self, lead):
        specs = [p.trace_spec(lead) for p in nodes(self.parts) if p.stochastic]
        return specs[0] if len(specs) == 1 else tuple(specs)

    def out_lead(self, lead):
        # the outputs concatenate on the last axis, so every part ends with the same
        # leading axes: a fan of scans gives (batch,), not (batch, T)
        return nodes(self.parts)[0].out_lead(lead)


class Passthrough(Node):
    """``identity(A)`` on a continuous object."""

    stochastic = False

    def __init__(self, obj: ObjT) -> None:
        super().__init__(obj, obj)

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        return (), x, None


# ------------------------------------------------------------ finite relations


class RelChain(Relation):
    """Composition of finite relations: the algebra's matrix product, left to right."""

    def __init__(self, parts: list[Relation], algebra: Algebra) -> None:
        super().__init__(parts[0].dom, parts[-1].cod, algebra)
        self.parts = nn.ModuleList(parts)

    def relation(self, **run):
        m = rels(self.parts)[0].relation(**run)
        for part in rels(self.parts)[1:]:
            m = self.algebra.compose(m, part.relation(**run))
        return m


class RelRepeat(Relation):
    """``repeat`` of a finite relation: its n-th power by repeated squaring."""

    def __init__(self, body: Relation, count: int | None, algebra: Algebra) -> None:
        super().__init__(body.dom, body.cod, algebra)
        self.body, self.count = body, count

    def relation(self, **run):
        return self.algebra.power(self.body.relation(**run), resolve_count(self.count, run))


class RelParallel(Relation):
    """``f @ g`` / ``fan`` of finite relations: entries combine with the algebra's times."""

    def __init__(self, parts: list[Relation], split: bool, algebra: Algebra) -> None:
        dom = ProductT(tuple(p.dom for p in parts)) if split else parts[0].dom
        super().__init__(dom, ProductT(tuple(p.cod for p in parts)), algebra)
        self.parts, self.split = nn.ModuleList(parts), split

    def relation(self, **run):
        m = rels(self.parts)[0].relation(**run)
        for part in rels(self.parts)[1:]:
            r = part.relation(**run)
            if self.split:  # [(a, c), (b, d)] = m[a, b] * r[c, d]
                a, b = m.shape
                c, d = r.shape
                m = self.algebra.times(m[:, None, :, None], r[None, :, None, :]).reshape(
                    a * c, b * d
                )
            else:  # [a, (b1, b2)] = m[a, b1] * r[a, b2]
                m = self.algebra.times(m[:, :, None], r[:, None, :]).reshape(m.shape[0], -1)
        return m


class RelIdentity(Relation):
    """``identity(A)`` on a finite set: the algebra's unit matrix.

    As a kernel it is deterministic (its rows are point masses), so it adds no trace.
    """

    stochastic = False
    value_is_trace = False

    def __init__(self, obj: ObjT, algebra: Algebra) -> None:
        super().__init__(obj, obj, algebra)

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        return (), x, None

    def trace_spec(self, lead):
        return ()

    def support(self):
        return ()

    def relation(self, **run):
        return self.algebra.unit(finite_size(self.dom), self._ref)


# ------------------------------------------------------------------- scan


class Scan(Node):
    """``scan(cell)``: h_0 = 0, h_t ~ cell(x_t, h_{t-1}); trace = the trajectory.

    The trace is the whole state trajectory (batch, T, ...) (stacked leaf by leaf when
    the cell's own trace is a tuple); the bound value is h_T; the log density sums over
    t. Scoring a given trajectory of a cell whose value is its trace needs no loop:
    every h_{t-1} is known, so all T steps are scored in one batched call.
    """

    def __init__(
        self, cell: Node, input_type: ObjT, state_type: ObjT, reverse: bool = False
    ) -> None:
        super().__init__(input_type, state_type)
        self.cell = cell
        # `rscan(cell)`: h_{T+1} = 0, h_t ~ cell(x_t, h_{t+1}) for t = T..1; the trace is
        # indexed by position (trace[:, t] is the state after reading x_t), the value h_1
        self.reverse = reverse
        self.input_type, self.state_type = input_type, state_type
        self.stochastic = cell.stochastic
        self.value_is_trace = False
        self.position_batchable = False  # needs exactly (batch, T)
        self._types = [input_type, state_type]
        self._plain_cat = not is_finite(input_type) and not is_finite(state_type)
        self._finite_state = is_finite(state_type)

    def _h0(self, batch: int) -> torch.Tensor:
        if self._finite_state:
            shape = (
                (batch,)
                if isinstance(self.state_type, FinSetT)
                else (batch, flat_dim(self.state_type))
            )
            return torch.zeros(shape, dtype=torch.long, device=self._ref.device)
        return self._ref.new_zeros(batch, flat_dim(self.state_type))

    def _cat(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if self._plain_cat:
            return torch.cat((x, h), dim=-1)
        return join([x, h], self._types)

    def _check_rank(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor) or len(lead_shape(x, self.input_type)) != 2:
            ids = is_finite(self.input_type) and isinstance(self.input_type, FinSetT)
            want = "(batch, T) ids" if ids else f"(batch, T, {flat_dim(self.input_type)})"
            raise QvrDataError(
                f"scan input: expected a sequence {want} of {type_name(self.input_type)}, "
                f"got {describe(x)}"
            )

    def require_lead(self, lead, x, dom, where):
        if len(lead) != 2:
            ids = isinstance(dom, FinSetT)
            want = "(batch, T)" if ids else f"(batch, T, {flat_dim(dom)})"
            raise QvrDataError(
                f"{where}: scan needs a sequence {want} of {type_name(dom)}, got {describe(x)}"
            )

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        if not self.reverse:
            return self._run(x, trace, want_lp, **run)
        # right to left: the forward scan of the reversed sequence, its trajectory put
        # back in position order (a flip is exact: no value or density changes)
        self._check_rank(x)
        flipped = None if trace is None else _flip_time(trace)
        tr, h, lp = self._run(x.flip(1), flipped, want_lp, **run)
        return _flip_time(tr), h, lp

    def _run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        self._check_rank(x)
        if self.cell.forward_cell:
            return self._forward(x, want_lp, run)
        batch, steps = x.shape[0], x.shape[1]
        h0 = self._h0(batch)
        cell = self.cell
        if trace is None and want_lp and (cell.value_is_trace or cell.position_batchable):
            # draw without densities, then score the whole trajectory in one batched call
            trace = self._run(x, None, False, **run)[0]
        if trace is not None and cell.value_is_trace and isinstance(trace, torch.Tensor):
            if steps == 0:
                return trace, h0, (self._ref.new_zeros(batch) if want_lp else None)
            if not want_lp:
                return trace, trace[:, -1], None
            h_prev = torch.cat((h0.unsqueeze(1), trace[:, :-1]), dim=1)
            return trace, trace[:, -1], cell.run(self._cat(x, h_prev), trace, True, **run)[2]
        if trace is not None and cell.position_batchable and steps:
            return self._score_batched(x, trace, h0, want_lp, run)
        draw = cell.sampler() if trace is None and not want_lp and self._plain_cat else None
        if draw is not None and steps:  # the hot path: nothing but the cell's arithmetic
            h, hs = h0, []
            for x_t in x.unbind(1):
                h = draw(torch.cat((x_t, h), dim=-1))
                hs.append(h)
            return torch.stack(hs, dim=1), h, None
        h, lp, traces = h0, None, []
        given = leaves(trace) if trace is not None else None
        for t in range(steps):
            step_trace = None
            if given is not None:
                step_trace = unflatten(trace, [leaf[:, t] for leaf in given])
            tr, h, step_lp = cell.run(self._cat(x[:, t], h), step_trace, want_lp, **run)
            traces.append(tr)
            lp = add_lp(lp, step_lp)
        if trace is None:
            trace = self._stack(traces, batch)
        if want_lp and lp is None:
            lp = self._ref.new_zeros(batch)
        return trace, h, lp

    def _forward(self, x: torch.Tensor, want_lp: bool, run: dict[str, Any]) -> RunOut:
        """The forward algorithm (Rabiner, 1989) over a cell that sums its next state out.

        The scan carries log alpha_t(j) = log p(x_1..t, h_t = j) instead of a state:
        alpha_t(j) = logsumexp_i [alpha_{t-1}(i) + W_t(i, j)], where W_t(i, j) is the
        cell's log p(h_t = j | h_{t-1} = i) plus its body's log density at h_t = j,
        from h_0 = 0. The log density is logsumexp_j alpha_T(j) (exact, linear in T);
        the trace is ``()`` (no random choice: the states are summed out and the
        observation is the input) and the value a draw of h_T from its filtering
        distribution p(h_T | x_1..T).
        """
        assert isinstance(self.state_type, FinSetT), "the checker typed the forward cell"
        batch, steps = x.shape[0], x.shape[1]
        size = self.state_type.size
        log_alpha = self._ref.new_full((batch, size), -math.inf)
        log_alpha[:, 0] = 0.0  # h_0 = 0, as in every scan
        for t in range(steps):
            w = self.cell.forward_weights(x[:, t], self._cat, size, run)  # (batch, size, size)
            log_alpha = torch.logsumexp(log_alpha.unsqueeze(-1) + w, dim=1)
        last = torch.distributions.Categorical(logits=log_alpha).sample()
        lp = torch.logsumexp(log_alpha, dim=-1) if want_lp else None
        return (), last, lp

    def _score_batched(self, x, trace, h0, want_lp: bool, run: dict[str, Any]) -> RunOut:
        """A given trajectory of a cell with a general value (e.g. a program).

        First the states along it: with every random choice given, a step only runs
        the cell's deterministic parts (its lets), as its kernels' values are their
        traces. Then all T steps are scored in one call on (batch, T, ...) inputs.
        """
        given = leaves(trace)
        h, hs = h0, []
        for t in range(x.shape[1]):
            step_trace = unflatten(trace, [leaf[:, t] for leaf in given])
            h = self.cell.run(self._cat(x[:, t], h), step_trace, False, **run)[1]
            hs.append(h)
        lp = None
        if want_lp:
            h_prev = torch.stack([h0, *hs[:-1]], dim=1)
            lp = self.cell.run(self._cat(x, h_prev), trace, True, **run)[2]
        return trace, h, lp

    def _stack(self, traces: list[Any], batch: int) -> Any:
        if not traces:
            spec = self.trace_spec((batch, 0))
            return _empty_like_spec(spec, self._ref)
        first = traces[0]
        if isinstance(first, torch.Tensor):
            return torch.stack(traces, dim=1)
        cols = list(zip(*(leaves(tr) for tr in traces), strict=True))
        return unflatten(first, [torch.stack(col, dim=1) for col in cols])

    def support(self):
        if self.cell.forward_cell:
            return ()  # the forward pass makes no random choice its density covers
        return self.cell.support()

    def trace_spec(self, lead):
        inner = self.cell.trace_spec(tuple(lead[:1]))

        def add_time(spec):
            if isinstance(spec, TraceSpec):
                return TraceSpec((*spec.shape[:1], *lead[1:2], *spec.shape[1:]), spec.obj)
            if spec is None:
                return None
            return tuple(add_time(s) for s in spec)

        return add_time(inner)

    def out_lead(self, lead):
        return tuple(lead[:1])


def _flip_time(trace: Any) -> Any:
    """A scan trajectory (a tensor, or a tuple of them) with its time axis reversed."""
    return unflatten(trace, [leaf.flip(1) for leaf in leaves(trace)])


def _empty_like_spec(spec: Any, ref: torch.Tensor) -> Any:
    if isinstance(spec, TraceSpec):
        dtype = torch.long if spec.obj is not None else ref.dtype
        return torch.zeros(spec.shape, dtype=dtype, device=ref.device)
    if spec is None:
        return ()
    return tuple(_empty_like_spec(s, ref) for s in spec)
