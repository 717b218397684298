"""Leaf morphisms: family kernels, embeddings, finite relations, inline families."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import constraints

from quivers.core.families import MIXTURE, Family
from quivers.runtime import distributions as QD
from quivers.runtime.algebras import Algebra
from quivers.runtime.errors import QvrBuildError, QvrDataError, describe
from quivers.runtime.families import (
    FamilyLayout,
    domain_constraint,
    get_family,
    make_dist,
    support_of,
)
from quivers.runtime.ir import (
    Components,
    FamilySource,
    FinSetT,
    MorphismDecl,
    Num,
    ObjT,
    VectorLit,
    flat_dim,
)
from quivers.runtime.node import Node, RelationMixin, RunOut, TraceSpec, reduce_rows
from quivers.runtime.objects import (
    check_value,
    finite_size,
    flat_index,
    is_finite,
    lead_shape,
    leaf_factors,
    unflat_index,
)
from quivers.runtime.param_sources import Table, bound_source, init_tensor, make_source


class FamilyKernel(Node):
    """``kernel ~ Family``: p(y | x) with parameters from a parameter source of x."""

    value_is_trace = True

    def __init__(self, decl: MorphismDecl, algebra: Algebra | None = None) -> None:
        super().__init__(decl.dom, decl.cod)
        assert decl.family is not None
        self.layout = FamilyLayout(decl.family, decl.cod, dict(decl.fixed))
        self.algebra = algebra
        self.source = (
            make_source(decl.dom, self.layout.n_raw, decl.param_source, decl.init)
            if self.layout.n_raw
            else None
        )

    def params(self, x: torch.Tensor) -> dict[str, Any]:
        """The family's constrained parameters at input ``x``."""
        if self.source is None:  # all parameters fixed: constants shaped like the output
            lead = lead_shape(x, self.dom)
            shape = lead if self.layout.finite_value else (*lead, self.layout.width)
            return {k: self._ref.new_full(shape, v) for k, v in self.layout.fixed.items()}
        # .forward, not __call__: no hooks are registered on sources, and the saving
        # is most of a scan step's Python overhead
        return self.layout.params(self.source.forward(x))

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        if trace is not None and not want_lp:
            return trace, trace, None  # the value is the trace: nothing to compute
        params = self.params(x)
        if trace is None:
            trace = self.layout.sample(params, lead_shape(x, self.dom), self._ref)
        lp = reduce_rows(self.layout.log_prob(params, trace)) if want_lp else None
        return trace, trace, lp

    def sampler(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """A draw-only ``x -> value`` function for sampling loops (None: use ``run``)."""
        if self.source is None:
            return None
        src, layout, ref = bound_source(self.source), self.layout, self._ref
        if layout.name == "Normal" and [p.name for p in layout.free] == ["loc"]:
            scale = layout.fixed["scale"]

            def draw_normal(x: torch.Tensor) -> torch.Tensor:
                loc = src(x)
                return loc + scale * torch.randn_like(loc)

            return draw_normal
        finite_dom = is_finite(self.dom) and isinstance(self.dom, FinSetT)

        def draw(x: torch.Tensor) -> torch.Tensor:
            lead = tuple(x.shape) if finite_dom else tuple(x.shape[:-1])
            return layout.sample(layout.params(src(x)), lead, ref)

        return draw

    def support(self):
        return self.layout.support()

    def trace_spec(self, lead):
        if self.layout.finite_value:
            return TraceSpec(tuple(lead), self.cod)
        return TraceSpec((*lead, flat_dim(self.cod)))

    def relation(self, **run: Any) -> torch.Tensor:
        """For a Categorical between finite sets: its probability matrix in the carrier."""
        if not (isinstance(self.source, Table) and self.layout.name == "Categorical"):
            raise QvrBuildError("relation() needs a Categorical kernel between finite sets")
        logp = torch.log_softmax(self.source.weight, dim=-1)
        return self.algebra.from_log_prob(logp) if self.algebra else logp.exp()


class Embed(Node):
    """``role=embed``: a deterministic lookup table (|A|, d)."""

    stochastic = False

    def __init__(self, decl: MorphismDecl) -> None:
        super().__init__(decl.dom, decl.cod)
        if not is_finite(decl.dom):
            raise QvrBuildError(f"embed '{decl.name}' needs a finite domain")
        self.init = decl.init
        self.weight = nn.Parameter(torch.empty(finite_size(decl.dom), flat_dim(decl.cod)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_tensor(self.weight, self.init, 1.0)  # as nn.Embedding

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        return (), F.embedding(flat_index(x, self.dom), self.weight), None


class Relation(RelationMixin, Node):
    """A finite-set arrow given by a matrix over the active algebra.

    Used as a kernel (a program step, a Kleisli part) it draws the successor from its
    row: weights normalised, or the row as logits in the log-space algebras.
    """

    value_is_trace = True

    def __init__(self, dom: ObjT, cod: ObjT, algebra: Algebra) -> None:
        super().__init__(dom, cod)
        if not (is_finite(dom) and is_finite(cod)):
            raise QvrBuildError("a relation needs finite domain and codomain")
        self.algebra = algebra

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        if trace is not None and not want_lp:
            return trace, trace, None
        rows = self.relation(**run)[flat_index(x, self.dom)]
        logp = torch.log_softmax(self.algebra.row_logits(rows), dim=-1)
        if trace is None:
            idx = torch.distributions.Categorical(logits=logp, validate_args=False).sample()
            trace = unflat_index(idx, self.cod)
        else:
            idx = flat_index(trace, self.cod)
        lp = reduce_rows(logp.gather(-1, idx.unsqueeze(-1)).squeeze(-1)) if want_lp else None
        return trace, trace, lp

    def support(self):
        if isinstance(self.cod, FinSetT):
            return constraints.integer_interval(0, self.cod.size - 1)
        sizes = [f.size for f in leaf_factors(self.cod) if isinstance(f, FinSetT)]
        return constraints.integer_interval(0, max(sizes) - 1)

    def trace_spec(self, lead):
        if isinstance(self.cod, FinSetT):
            return TraceSpec(tuple(lead), self.cod)
        return TraceSpec((*lead, len(leaf_factors(self.cod))), self.cod)


class LatentRelation(Relation):
    """``role=latent``: learnable values sigmoid(logits) in (0, 1)."""

    def __init__(self, decl: MorphismDecl, algebra: Algebra) -> None:
        super().__init__(decl.dom, decl.cod, algebra)
        self.init = decl.init
        self.logits = nn.Parameter(torch.empty(finite_size(decl.dom), finite_size(decl.cod)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_tensor(self.logits, self.init, 1.0)

    def relation(self, **run):
        return self.algebra.from_logits(self.logits)


class StochasticMatrix(LatentRelation):
    """``role=kernel`` with no family between finite sets: rows are softmax(logits)."""

    def relation(self, **run):
        return self.algebra.from_log_prob(torch.log_softmax(self.logits, dim=-1))


class ObservedRelation(Relation):
    """``role=observed`` with a matrix: a fixed relation (a buffer, not a parameter)."""

    def __init__(self, decl: MorphismDecl, algebra: Algebra) -> None:
        super().__init__(decl.dom, decl.cod, algebra)
        m = torch.tensor(decl.observed_matrix, dtype=torch.get_default_dtype())
        want = (finite_size(decl.dom), finite_size(decl.cod))
        if tuple(m.shape) != want:
            raise QvrBuildError(f"observed '{decl.name}': matrix {tuple(m.shape)}, expected {want}")
        self.matrix: torch.Tensor
        self.register_buffer("matrix", m)

    def relation(self, **run):
        return self.algebra.from_prob(self.matrix)


class InlineFamily(Node):
    """``sample v <- Family(a, b)``: arguments are evaluated by the program.

    Its input is the tuple of argument values (the program builds it); parameters are
    given in their constrained form, positionally in the family's parameter order.
    When every argument is a number (a prior), ``constants`` holds them and the input
    may be omitted: ``_step_slope.rsample()``.
    """

    value_is_trace = True

    def __init__(
        self,
        family: str,
        n_args: int,
        value_type: ObjT,
        is_global: bool,
        constants: tuple[float | tuple[float, ...], ...] | None = None,
        logits: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(value_type, value_type)
        self.constants = constants
        # argument positions given as logits rather than probabilities (the program
        # passes e for a `sigmoid(e)` argument: program.logit_arguments)
        self.logits = logits
        self.family = get_family(family)
        if n_args != self.family.arity:
            raise QvrBuildError(
                f"{self.family.signature()} takes {self.family.arity} arguments, got {n_args}"
            )
        if isinstance(value_type, FinSetT) and not self.family.discrete:
            raise QvrBuildError(
                f"{family} draws continuous values, which never become ids of {value_type}"
            )
        self.name, self.value_type, self.is_global = family, value_type, is_global
        self._dim = flat_dim(value_type) if not isinstance(value_type, FinSetT) else None
        # a global draw of a continuous type wider than 1 has one value per coordinate
        # even when its arguments are numbers (`sample w : Real 8 <- Normal(0.0, 1.0)`)
        self.wide = self._dim is not None and self._dim > 1 and not self.family.multivariate

    def dist(self, args: tuple[torch.Tensor, ...]):
        return make_dist(
            self.name,
            {
                "logits" if i in self.logits else p.name: a
                for i, (p, a) in enumerate(zip(self.family.params, args, strict=True))
            },
            self._dim,
        )

    def symmetric(self, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """A vector parameter given by one number (``Dirichlet(1.0)`` drawn over a
        set of size n) is that number n times: the symmetric vector of the value's
        width. Done before any broadcasting to rows or plates, while a number is
        still 0-d."""
        if self._dim is None or not self.family.multivariate:
            return args
        dim = self._dim
        return tuple(
            a.expand(dim) if p.vector and a.dim() == 0 else a
            for p, a in zip(self.family.params, args, strict=True)
        )

    def per_row(
        self, args: tuple[torch.Tensor, ...], lead: tuple[int, ...], where: str
    ) -> tuple[torch.Tensor, ...]:
        """Broadcast the arguments of a local site to one draw per row.

        ``lead`` is the leading shape of the program input: ``(rows,)``, or
        ``(rows, T)`` when a cell program scores all positions of a sequence at once.
        A local site reads at least one per-row value, or is an ``observe`` (always
        per row); when its arguments are all global (``observe y <- Normal(mu, 1.0)``
        with a global ``mu``) they carry no row axis, so the draw gets one here. An
        argument that broadcasts to more than one draw per row (host data too wide for
        the value type) is a data error, never a silently larger site.
        """
        finite = isinstance(self.value_type, FinSetT)
        if finite:
            args = self._squeeze_ids(args, lead)
        elem: tuple[int, ...] = ()
        if not finite and not self.family.multivariate:
            elem = (max(flat_dim(self.value_type), 1),)
        target = (*lead, *elem)
        pairs = list(zip(self.family.params, args, strict=True))
        batch = [a.shape[: a.dim() - _event_rank(p)] for p, a in pairs]
        _one_draw_per_row(self.name, target, batch, args, where)
        out = []
        for param, a in pairs:
            rank = min(_event_rank(param), a.dim())
            out.append(a.expand((*target, *a.shape[a.dim() - rank :])))
        return tuple(out)

    def _squeeze_ids(
        self, args: tuple[torch.Tensor, ...], lead: tuple[int, ...]
    ) -> tuple[torch.Tensor, ...]:
        """A `Real 1` argument of a draw of ids is one number per row: drop its axis."""
        out = []
        for p, a in zip(self.family.params, args, strict=True):
            if not p.vector and a.dim() == len(lead) + 1 and a.shape[-1] == 1:
                a = a.squeeze(-1)
            out.append(a)
        return tuple(out)

    def _args(self, x: Any) -> tuple[torch.Tensor, ...]:
        if (x is None or len(x) == 0) and self.constants is not None:
            return self.symmetric(tuple(self._ref.new_tensor(v) for v in self.constants))
        return tuple(x)

    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        if trace is not None and not want_lp:
            return trace, trace, None
        d = self.dist(self._args(x))
        if trace is None:
            trace = d.rsample() if d.has_rsample else d.sample()
            if isinstance(self.value_type, FinSetT) and trace.is_floating_point():
                trace = trace.long()  # finite-set values are int64 ids (a Bernoulli's 0/1)
        lp = None
        if want_lp:
            exact = trace.is_floating_point() or self.name == "Categorical"
            lp = d.log_prob(trace if exact else trace.to(self._ref.dtype))
        if lp is not None:
            lp = lp.sum() if self.is_global else reduce_rows(lp)
        return trace, trace, lp

    def check_input(self, x, where="input") -> None:
        pass  # arguments are program values, already checked

    def _rows(self, x, lp):
        return lp  # never None: an inline family always has a density

    def rsample(self, x: Any = None, **run: Any) -> torch.Tensor:
        return self.run(x, None, False, **run)[0]

    def log_prob(self, x: Any, trace: Any = None, **run: Any) -> torch.Tensor:
        if trace is None:  # log_prob(trace) for a prior with constant arguments
            x, trace = None, x
        self.check_given(x, trace, "trace")
        lp = self.run(x, trace, True, **run)[2]
        assert lp is not None
        return lp

    def check_given(self, args: tuple[torch.Tensor, ...], trace: Any, where: str) -> None:
        """A given draw must have the dtype of the value type and the arguments' shape."""
        if not isinstance(trace, torch.Tensor):
            raise QvrDataError(f"{where}: expected a tensor, got {describe(trace)}")
        if isinstance(self.value_type, FinSetT):
            check_value(trace, self.value_type, where)
        elif not trace.is_floating_point():
            raise QvrDataError(f"{where}: expected floats, got {describe(trace)}")
        d = self.dist(self._args(args))
        want = (*d.batch_shape, *d.event_shape)
        if tuple(trace.shape) != want:
            kind = "ids" if isinstance(self.value_type, FinSetT) else "floats"
            raise QvrDataError(f"{where}: expected {kind} of shape {want}, got {describe(trace)}")

    def support(self):
        n = self.value_type.size if isinstance(self.value_type, FinSetT) else None
        return domain_constraint(self.family.support, n)

    def support_at(self, args: Any) -> Any:
        """The support for these arguments (bounded families depend on them)."""
        n = self.value_type.size if isinstance(self.value_type, FinSetT) else None
        return support_of(self.dist(self._args(args)), self.family, n)

    def trace_spec(self, lead):
        return None  # shape depends on the arguments; checked by dtype in the program


class MixtureFamily(InlineFamily):
    """``Mixture(weights, [F1(...), ..., FK(...)])``: an inline finite mixture.

    Its input is the weights followed by each component's arguments in order (the
    program flattens them); the draw is elementwise, like its components', each
    coordinate from its own choice of component (``distributions.Mixture``).
    """

    def __init__(
        self,
        components: tuple[tuple[str, int], ...],
        value_type: ObjT,
        is_global: bool,
        constants: tuple[Any, ...] | None = None,
    ) -> None:
        Node.__init__(self, value_type, value_type)
        self.constants = constants
        self.family = get_family(MIXTURE)
        self.components = tuple((get_family(name), n) for name, n in components)
        for fam, n in self.components:
            if n != fam.arity:
                raise QvrBuildError(f"{fam.signature()} takes {fam.arity} arguments, got {n}")
        supports = {fam.support for fam, _ in self.components}
        if len(supports) != 1:
            raise QvrBuildError(f"Mixture components of different supports: {sorted(supports)}")
        self.component_support = supports.pop()
        self.name, self.value_type, self.is_global = MIXTURE, value_type, is_global
        self._dim = flat_dim(value_type) if not isinstance(value_type, FinSetT) else None
        self.wide = self._dim is not None and self._dim > 1  # elementwise, as its components

    @classmethod
    def of(cls, source: FamilySource, value_type: ObjT, is_global: bool) -> MixtureFamily:
        weights, comps = source.args
        assert isinstance(comps, Components)
        calls = comps.calls
        constants: tuple[Any, ...] | None = None
        if isinstance(weights, VectorLit) and all(
            isinstance(a, Num) for call in calls for a in call.args
        ):
            nums = [a.value for call in calls for a in call.args if isinstance(a, Num)]
            constants = (weights.values, *nums)
        shapes = tuple((call.family, len(call.args)) for call in calls)
        return cls(shapes, value_type, is_global, constants)

    def _split(self, args: tuple[torch.Tensor, ...]) -> list[tuple[Family, tuple]]:
        out, at = [], 1
        for fam, n in self.components:
            out.append((fam, tuple(args[at : at + n])))
            at += n
        return out

    def dist(self, args: tuple[torch.Tensor, ...]):
        weights = args[0]
        comps = [
            make_dist(fam.name, {p.name: a for p, a in zip(fam.params, part, strict=True)})
            for fam, part in self._split(args)
        ]
        return QD.Mixture(weights, comps)

    def per_row(
        self, args: tuple[torch.Tensor, ...], lead: tuple[int, ...], where: str
    ) -> tuple[torch.Tensor, ...]:
        """Every argument broadcast to one draw per row (and coordinate); the weights
        to that shape with the components along a last axis."""
        finite = isinstance(self.value_type, FinSetT)
        elem = () if finite else (max(flat_dim(self.value_type), 1),)
        target = (*lead, *elem)
        weights, rest = args[0], list(args[1:])
        if finite:
            n = len(lead)
            rest = [a.squeeze(-1) if a.dim() == n + 1 and a.shape[-1] == 1 else a for a in rest]
        if elem and weights.dim() == len(lead) + 1 and len(lead) > 0:
            weights = weights.unsqueeze(-2)  # one vector of weights per row
        batch = [weights.shape[:-1], *(a.shape for a in rest)]
        _one_draw_per_row(MIXTURE, target, batch, args, where)
        k = weights.shape[-1]
        return (weights.expand(*target, k), *(a.expand(target) for a in rest))

    def symmetric(self, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return args  # the weights are one vector, the components' parameters scalars

    def support(self):
        n = self.value_type.size if isinstance(self.value_type, FinSetT) else None
        return domain_constraint(self.component_support, n)

    def support_at(self, args: Any) -> Any:
        return self.support()


def _one_draw_per_row(
    family: str, target: tuple[int, ...], batch: list, args: tuple, where: str
) -> None:
    """The arguments' batch shapes must broadcast to exactly ``target`` (one draw per
    row): an argument that would give more draws is a data error, never a wider site."""
    try:
        got = torch.broadcast_shapes(target, *batch)
    except RuntimeError:
        got = None
    if got != target:
        shapes = ", ".join(str(tuple(a.shape)) for a in args)
        raise QvrDataError(
            f"{where}: {family}'s arguments must give one draw per row, shape "
            f"{target}, got arguments of shapes {shapes}"
        )


def _event_rank(param: Any) -> int:
    """Axes of one argument that belong to a single draw: 1 for a vector, 2 for a matrix."""
    return 2 if param.matrix else 1 if param.vector else 0


def build_leaf(decl: MorphismDecl, algebra: Algebra) -> Node:
    """The module of one declared morphism."""
    role = decl.role
    if role == "embed":
        return Embed(decl)
    if role == "latent":
        return LatentRelation(decl, algebra)
    if role == "kernel":
        if decl.family is None:
            return StochasticMatrix(decl, algebra)
        return FamilyKernel(decl, algebra)
    if role == "observed":
        if decl.observed_matrix is not None:
            return ObservedRelation(decl, algebra)
        fam_name = decl.observed_family or decl.family
        if fam_name is not None:
            # a fixed family: every parameter a constant, positionally from the arguments
            fam = get_family(fam_name)
            fixed = tuple(zip((p.name for p in fam.params), decl.observed_args, strict=False))
            fixed_decl = MorphismDecl(
                decl.name, decl.dom, decl.cod, "kernel", fam_name, fixed=fixed
            )
            return FamilyKernel(fixed_decl, algebra)
        raise QvrBuildError(f"observed '{decl.name}' has neither a matrix nor a family")
    raise QvrBuildError(f"morphism '{decl.name}': unknown role '{role}'")
