"""Compiled ``program`` declarations: the model protocol of ``docs/dev/model-protocol.md``.

A :class:`ProgramModule` runs its steps in order over an environment of named values.
Each ``sample``/``observe`` step is a site whose kernel is the ``_step_<name>``
submodule; a given trace (observations, a guide's draw) is substituted instead of
sampling, so the same pass both samples and scores (as Pyro's ``poutine.condition``
does for a model; Bingham et al., JMLR 2019).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from quivers.core.families import FAMILIES, MIXTURE
from quivers.runtime.checks import data_checks
from quivers.runtime.errors import QvrBuildError, QvrDataError, describe
from quivers.runtime.ir import (
    BinOp,
    Call,
    Components,
    Expr,
    FinSetT,
    Index,
    KernelSource,
    LetStep,
    MarginalizeStep,
    Neg,
    Num,
    ObjT,
    ProductT,
    ProgramDecl,
    RelationRef,
    ReturnStep,
    SampleStep,
    ScoreStep,
    Var,
    VectorLit,
    flat_dim,
)
from quivers.runtime.kernels import InlineFamily, MixtureFamily
from quivers.runtime.node import Node, RunOut, add_lp, pack, reduce_rows, unpack
from quivers.runtime.objects import (
    as_ids,
    check_value,
    factors,
    finite_size,
    join_values,
    lead_shape,
    leaf_factors,
    split_value,
)
from quivers.runtime.trace import Site, Trace

_FUNCS: dict[str, Callable[..., torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "log": torch.log,
    "softplus": F.softplus,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    # reductions keep a width-1 last axis: the value convention of a `Real 1`
    "sum": lambda t: t.sum(-1, keepdim=True),
    "mean": lambda t: t.mean(-1, keepdim=True),
    "ar_filter": lambda phi, e: _ar_filter(phi, e),  # defined below
}
_OPS: dict[str, Callable[[Any, Any], torch.Tensor]] = {
    "+": torch.add,
    "-": torch.sub,
    "*": torch.mul,
    "/": torch.div,
}
HOST_KEY = "_host"  # run-time keyword carrying host data into nested programs


def logit_arguments(family: str, args: tuple[Any, ...], lets: Mapping[str, Any]) -> dict[int, Any]:
    """The probability arguments written as ``sigmoid(e)`` (directly or through lets):
    position -> ``e``.

    In float32, sigmoid(e) rounds to exactly 1 for e > ~17, and a Bernoulli given
    that probability scores the unlikely outcome as log(eps) ~ -16 instead of -e: a
    silently wrong density far out in the tails (logistic regression with separable
    rows). Given ``e`` as logits, torch computes log sigmoid(+-e) exactly.
    """
    params = FAMILIES[family].params
    out: dict[int, Any] = {}
    for i, (param, arg) in enumerate(zip(params, args, strict=False)):
        if param.name != "probs" or param.vector:
            continue
        seen: set[str] = set()
        while isinstance(arg, Var) and arg.name in lets and arg.name not in seen:
            seen.add(arg.name)
            arg = lets[arg.name]
        if isinstance(arg, Call) and arg.fn == "sigmoid" and len(arg.args) == 1:
            out[i] = arg.args[0]
    return out


class ProgramModule(Node):
    """A compiled ``program p : A -> B``; also usable as a kernel (e.g. a scan cell)."""

    value_is_trace = False

    def __init__(self, decl: ProgramDecl, resolve: Callable[[Expr], Node]) -> None:
        super().__init__(decl.dom, decl.cod)
        self.name = decl.name
        self.decl = decl
        self.types: dict[str, ObjT] = {}
        self._flat_params = False
        if decl.params:
            fs = factors(decl.dom) if len(decl.params) > 1 else (decl.dom,)
            if len(fs) != len(decl.params) and len(leaf_factors(decl.dom)) == len(decl.params):
                # `A * B * C` lowered as a nested product: name its leaves
                fs, self._flat_params = leaf_factors(decl.dom), True
            if len(fs) != len(decl.params):
                raise QvrBuildError(
                    f"program '{decl.name}': {len(decl.params)} parameters for {len(fs)} factors"
                )
            self.types.update(zip(decl.params, fs, strict=True))
        self.site_names: list[str] = []
        observed: list[str] = []
        lets: dict[str, Any] = {}  # let name -> its expression, for logit_arguments
        # site -> {argument position: the expression whose sigmoid it is}
        self._logit_args: dict[str, dict[int, Any]] = {}
        self._binary: set[str] = set()  # summed-out Bernoulli latents: 0 or 1 in arithmetic
        self.forward_cell = decl.forward
        self._supports: dict[str, Any] = {}  # of a block's sites, from its last run
        for step in _flat_steps(decl.steps):
            if isinstance(step, SampleStep | MarginalizeStep):
                if isinstance(step.source, KernelSource):
                    node = resolve(step.source.expr)
                elif step.source.family == MIXTURE:
                    is_global = isinstance(step, SampleStep) and step.is_global
                    node = MixtureFamily.of(step.source, step.value_type, is_global)
                else:
                    src = step.source
                    nums = tuple(
                        a.value if isinstance(a, Num) else a.values
                        for a in src.args
                        if isinstance(a, Num | VectorLit)
                    )
                    consts = nums if len(nums) == len(src.args) else None
                    is_global = isinstance(step, SampleStep) and step.is_global
                    logits = logit_arguments(src.family, src.args, lets)
                    if logits:
                        self._logit_args[step.var] = logits
                    node = InlineFamily(
                        src.family,
                        len(src.args),
                        step.value_type,
                        is_global,
                        consts,
                        logits=frozenset(logits),
                    )
                    if isinstance(step, MarginalizeStep) and src.family == "Bernoulli":
                        self._binary.add(step.var)
                self.add_module(f"_step_{step.var}", node)
                if isinstance(step, MarginalizeStep) or step.observes_input:
                    if isinstance(step, MarginalizeStep):
                        self.types[step.var] = step.value_type
                    continue  # not sites: summed out, or the input itself
                self.site_names.append(step.var)
                if step.observed:
                    observed.append(step.var)
                self.types[step.var] = step.value_type
                self.types.update(step.parts)
            elif isinstance(step, LetStep):
                self.types[step.var] = step.value_type
                lets[step.var] = step.value
        for name, expr in _relation_refs(decl).items():  # `rel[ids]`: the relation's matrix
            self.add_module(f"_rel_{name}", resolve(expr))
        if self.forward_cell and any(
            not isinstance(s, LetStep | MarginalizeStep | ReturnStep) for s in decl.steps
        ):
            raise QvrBuildError(
                f"program '{decl.name}': a forward cell may only compute lets around its "
                "marginalize block"
            )
        self.observed_names = frozenset(observed)
        self.latent_names = tuple(n for n in self.site_names if n not in self.observed_names)
        self.host_names = tuple(decl.host_names)
        self._input_free = _input_free(decl)
        # plate sites of one number per element: name -> plate size
        self._plates = {
            s.var: s.plate
            for s in decl.steps
            if isinstance(s, SampleStep) and s.plate is not None and flat_dim(s.value_type) == 1
        }
        self._plate_sizes = frozenset(
            s.plate for s in decl.steps if isinstance(s, SampleStep) and s.plate is not None
        )
        self._id_hosts = self._host_id_sets(decl)
        self.stochastic = bool(self.site_names)
        steps = [s for s in decl.steps if isinstance(s, SampleStep)]
        self.position_batchable = (
            not decl.host_names
            and not any(s.is_global for s in steps)
            and not any(isinstance(s, MarginalizeStep) for s in decl.steps)
            and all(self.step_module(s.var).position_batchable for s in steps)
        )
        self.stochastic = self.stochastic or any(isinstance(s, MarginalizeStep) for s in decl.steps)

    def _host_id_sets(self, decl: ProgramDecl) -> dict[str, FinSetT]:
        """Host data read as ids (``beta[idx]``, ``[via=idx]``), each with the set it
        indexes (the smallest, if it indexes several)."""
        plates = {
            s.var: s.plate
            for s in _flat_steps(decl.steps)
            if isinstance(s, SampleStep) and s.plate is not None
        }
        sizes: dict[str, int] = {}
        for i in _indices(decl):
            if isinstance(i.base, RelationRef):
                size: int | None = finite_size(getattr(self, f"_rel_{i.base.name}").dom)
            else:
                size = plates.get(i.base.name)
            if size is not None and i.index.name in decl.host_names:
                sizes[i.index.name] = min(size, sizes.get(i.index.name, size))
        for s in _flat_steps(decl.steps):
            if isinstance(s, MarginalizeStep) and s.via is not None and s.group is not None:
                sizes[s.via] = min(s.group, sizes.get(s.via, s.group))
        return {name: FinSetT(size) for name, size in sizes.items()}

    def step_module(self, name: str) -> Node:
        return getattr(self, f"_step_{name}")

    # ------------------------------------------------------------- execution
    def _execute(
        self,
        x: torch.Tensor,
        given: dict[str, Any],
        host: dict[str, Any],
        require_all: bool,
        want_lp: bool,
        run: dict[str, Any],
        sites: dict[str, Site] | None = None,
        validate: bool = True,
        unscored: Collection[str] = (),
        only_global: bool = False,
        capture: list[torch.Tensor] | None = None,
    ) -> tuple[list[Any], Any, torch.Tensor | None, torch.Tensor | None]:
        """Run the steps once.

        Returns (site traces in order, return value, per-row log density of the local
        sites and scores, log density of the global sites). Sites are recorded into
        ``sites`` when given. The sites named in ``unscored`` are drawn without their
        log density, which is left out of the totals.
        """
        env: dict[str, Any] = {n: self._ref.new_tensor(v) for n, v in self.decl.constants}
        if self.decl.params and not only_global:
            if len(self.decl.params) == 1:
                parts = [x]
            elif self._flat_params:
                parts = split_value(x, ProductT(leaf_factors(self.decl.dom)))
            else:
                parts = split_value(x, self.decl.dom)
            env.update(zip(self.decl.params, parts, strict=True))
        traces: list[Any] = []
        rows: torch.Tensor | None = None
        glob: torch.Tensor | None = None
        result: Any = None
        run = {**run, HOST_KEY: host}
        for step in self.decl.steps:
            if only_global and not self._is_global_step(step):
                continue
            if isinstance(step, MarginalizeStep):
                block_rows, block_glob = self._marginal(
                    step,
                    x,
                    env,
                    given,
                    host,
                    require_all,
                    want_lp,
                    run,
                    sites,
                    validate,
                    traces,
                    capture,
                )
                rows = add_lp(rows, block_rows)
                glob = add_lp(glob, block_glob)
                continue
            if isinstance(step, SampleStep) and step.forward:
                if given.get(step.var, ()) != ():
                    raise QvrDataError(
                        f"site '{step.var}': a forward scan makes no random choice (its "
                        "states are summed out, its observation is the program input); "
                        f"pass nothing for '{step.var}', or ()"
                    )
                tr, val, lp = self.step_module(step.var).run(x, None, want_lp, **run)
                env[step.var] = val
                traces.append(tr)
                if lp is not None:
                    rows = add_lp(rows, lp)
                    if sites is not None:
                        node = self.step_module(step.var)
                        sites[step.var] = Site(step.var, tr, val, lp, node.support(), True, False)
                continue
            if isinstance(step, SampleStep):
                name = step.var
                node = self.step_module(name)
                where = f"site '{name}'"
                inp = self._site_input(step, node, x, env, host, where)
                t_in = given.get(name)
                if t_in is None and require_all:
                    kind = "observation" if step.observed else "trace"
                    raise QvrDataError(f"{where}: missing {kind}; expected a value for '{name}'")
                scored = want_lp and name not in unscored
                check_input = validate and isinstance(step.source, KernelSource)
                tr, val, lp = _run_site(node, inp, t_in, scored, run, where, validate, check_input)
                if scored and lp is None:
                    lp = self._ref.new_zeros(_batch(inp))
                env[name] = val
                if step.parts:  # `sample (a, b) <- ...`: each name its factor of the draw
                    names = [p for p, _ in step.parts]
                    pieces = split_value(val, ProductT(tuple(t for _, t in step.parts)))
                    env.update(zip(names, pieces, strict=True))
                traces.append(tr)
                if lp is not None:
                    if lp.dim() == 0:
                        glob = add_lp(glob, lp)
                    else:
                        rows = add_lp(rows, lp)
                if sites is not None and lp is not None:
                    support = (
                        node.support_at(inp) if isinstance(node, InlineFamily) else node.support()
                    )
                    sites[name] = Site(name, tr, val, lp, support, step.observed, step.is_global)
            elif isinstance(step, LetStep):
                env[step.var] = self._let(step, env, host)
            elif isinstance(step, ScoreStep):
                if want_lp:
                    s = self._arith(step.value, env, host, f"score '{step.var}'")
                    if s.dim() == 0:
                        glob = add_lp(glob, s)
                    else:
                        rows = add_lp(rows, reduce_rows(s))
            elif isinstance(step, ReturnStep):
                if self.forward_cell:
                    break  # its state is summed out: the scan carries its distribution
                vals = [env[v] for v in step.vars]
                result = (
                    vals[0]
                    if len(vals) == 1
                    else join_values(vals, [self.types[v] for v in step.vars])
                )
        return traces, result, rows, glob

    def _site_input(
        self,
        step: SampleStep | MarginalizeStep,
        node: Node,
        x: Any,
        env: dict[str, Any],
        host: dict[str, Any],
        where: str,
        lead: tuple[int, ...] | None = None,
    ) -> Any:
        """What a site's kernel reads: the program input, the joined argument values,
        or an inline family's arguments broadcast to its draws (``lead`` of them)."""
        if isinstance(step.source, KernelSource):
            args = step.source.args
            if args:
                return join_values([env[a] for a in args], [self.types[a] for a in args])
            return x
        inp = self._family_args(step.source.args, env, host, where, self._logit_args.get(step.var))
        if not isinstance(node, InlineFamily):
            return inp
        inp = node.symmetric(inp)
        if lead is not None:
            return node.per_row(inp, lead, where)
        assert isinstance(step, SampleStep)
        if step.plate is not None:
            try:
                return node.per_row(inp, (step.plate,), where)  # one draw per element
            except QvrDataError as err:
                raise _plate_size_error(step, node.name, inp, where) or err from None
        if step.is_global and node.wide:
            return node.per_row(inp, (), where)  # `: Real 8` gives 8 draws
        if not step.is_global:
            return node.per_row(inp, self._lead(x), where)
        return inp

    def forward_weights(
        self, x_t: Any, join: Callable[[Any, Any], Any], size: int, run: dict[str, Any]
    ) -> torch.Tensor:
        """A forward cell's W(i, j) = log p(h_t = j | h_{t-1} = i, x_t) + its body's log
        density at h_t = j, for every state pair: (batch, size, size). The cell runs
        once on batch * size rows, one per previous state."""
        batch = _rows(x_t)
        repeated = x_t.repeat_interleave(size, dim=0)
        previous = torch.arange(size, device=self._ref.device).repeat(batch)
        host = run.pop(HOST_KEY, {})
        capture: list[torch.Tensor] = []
        self._execute(
            join(repeated, previous), {}, host, False, True, run, validate=False, capture=capture
        )
        run[HOST_KEY] = host
        [w] = capture
        return w.reshape(batch, size, size)

    # ------------------------------------------------------------- marginalisation
    def _marginal(
        self,
        step: MarginalizeStep,
        x: Any,
        env: dict[str, Any],
        given: dict[str, Any],
        host: dict[str, Any],
        require_all: bool,
        want_lp: bool,
        run: dict[str, Any],
        sites: dict[str, Site] | None,
        validate: bool,
        traces: list[Any],
        capture: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Sum ``step.var`` out of its body exactly (docs/language.md, "Marginalisation").

        For each value k of the latent the body runs with the latent bound to k; with
        C(k) = log p(k) + the body's log density at k, the block's log density is
        logsumexp_k C(k), per row (or per element of the ``over`` set, whose rows'
        densities are added first). Returns (per-row part, global part).
        """
        name = step.var
        where = f"marginalize '{name}'"
        prior = self.step_module(name)
        rows_n = _rows(x)
        n = step.group if step.group is not None else rows_n
        inp = self._site_input(step, prior, x, env, host, where, (n,))
        ids = self._group_ids(step, host, rows_n, where) if step.via is not None else None
        sites_in = [s.var for s in step.body if isinstance(s, SampleStep) and not s.observes_input]
        have = [v for v in sites_in if v in given]
        if have and len(have) != len(sites_in):
            raise QvrDataError(
                f"{where}: give values for all of the block's sites ({', '.join(sites_in)}) "
                f"or none of them; given: {', '.join(have)}"
            )
        if require_all and sites_in and not have:
            raise QvrDataError(
                f"site '{sites_in[0]}': missing observation; expected a value for '{sites_in[0]}'"
            )
        values = dict(given)
        if sites_in and not have:
            # generating: the latent from its prior, then the body's sites given it
            drawn, _, _ = prior.run(inp, None, False, **run)
            env_k = {**env, name: drawn[ids] if ids is not None else drawn}
            values.update(self._body(step, x, env_k, {}, host, False, run, False)[1])
        card = step.value_type.size
        columns: list[list[torch.Tensor]] = []  # per k: the prior, then each body term
        last: dict[str, Any] = {}
        kinds = None
        for k in range(card):
            latent = torch.full((n,), k, dtype=torch.long, device=self._ref.device)
            lp_prior = prior.run(inp, latent, True, **run)[2]
            if lp_prior is None:
                raise QvrBuildError(f"{where}: its prior has no log density")
            env_k = {**env, name: latent[ids] if ids is not None else latent}
            terms, _, kinds = self._body(
                step, x, env_k, values, host, True, run, validate and k == 0
            )
            columns.append([lp_prior.expand(n), *(t.expand(rows_n) for t in terms)])
            last = env_k
        for s in step.body:  # what stays in scope: the observed values
            if isinstance(s, SampleStep) and not s.observes_input:
                env[s.var] = last[s.var]
                traces.append(values[s.var])
        if not want_lp:
            return None, None
        prior_k = torch.stack([c[0] for c in columns], dim=-1)  # (n, K)
        body_k = [torch.stack([c[j] for c in columns], dim=-1) for j in range(1, len(columns[0]))]
        if ids is not None:
            assert step.group is not None
            total = prior_k
            for term in body_k:
                total = total.index_add(0, ids, term)
            if capture is not None:
                capture.append(total)
            block = torch.logsumexp(total, dim=-1).sum()
            if sites is not None:
                self._record(step, sites, values, last, kinds, None)
            return None, block
        cumulative, increments = prior_k, []
        for term in body_k:
            following = cumulative + term
            increments.append(torch.logsumexp(following, -1) - torch.logsumexp(cumulative, -1))
            cumulative = following
        if capture is not None:
            capture.append(cumulative)
        if sites is not None:
            self._record(step, sites, values, last, kinds, increments)
        return torch.logsumexp(cumulative, dim=-1), None

    def _record(
        self,
        step: MarginalizeStep,
        sites: dict[str, Site],
        values: dict[str, Any],
        env: dict[str, Any],
        kinds: list[str | None] | None,
        increments: list[torch.Tensor] | None,
    ) -> None:
        """The body's observed sites, each with its share of the block's density: the
        chain rule's log p(y_j | y_<j), the latent summed out (zeros for a grouped
        block, whose density is a global term)."""
        for j, kind in enumerate(kinds or []):
            if kind is None:
                continue
            lp = increments[j] if increments is not None else self._ref.new_zeros(_rows(env[kind]))
            sites[kind] = Site(kind, values[kind], env[kind], lp, self._supports[kind], True, False)

    def _body(
        self,
        step: MarginalizeStep,
        x: Any,
        env: dict[str, Any],
        given: dict[str, Any],
        host: dict[str, Any],
        want_lp: bool,
        run: dict[str, Any],
        validate: bool,
    ) -> tuple[list[torch.Tensor], dict[str, Any], list[str | None]]:
        """Run a block's body once with its latent bound in ``env``: each term's per-row
        log density (sites and scores, in order), the sites' traces, and each term's
        site name (None for a score or an observed input)."""
        terms: list[torch.Tensor] = []
        traced: dict[str, Any] = {}
        kinds: list[str | None] = []
        for s in step.body:
            if isinstance(s, LetStep):
                env[s.var] = self._let(s, env, host)
            elif isinstance(s, ScoreStep):
                v = self._arith(s.value, env, host, f"score '{s.var}'")
                terms.append(reduce_rows(v) if v.dim() > 0 else v)
                kinds.append(None)
            elif isinstance(s, SampleStep):
                node = self.step_module(s.var)
                where = f"site '{s.var}'"
                inp = self._site_input(s, node, x, env, host, where, (len(env[step.var]),))
                t_in = env[s.var] if s.observes_input else given.get(s.var)
                check = validate and not s.observes_input
                tr, val, lp = _run_site(node, inp, t_in, want_lp, run, where, check, False)
                if not s.observes_input:
                    env[s.var] = val
                    traced[s.var] = tr
                    self._supports[s.var] = (
                        node.support_at(inp) if isinstance(node, InlineFamily) else node.support()
                    )
                if want_lp:
                    terms.append(lp if lp is not None else self._ref.new_zeros(()))
                    kinds.append(None if s.observes_input else s.var)
        return terms, traced, kinds

    def _group_ids(
        self, step: MarginalizeStep, host: dict[str, Any], rows: int, where: str
    ) -> torch.Tensor:
        """The ``via`` ids of a grouped block: one id in 0..|G|-1 per row."""
        assert step.via is not None and step.group is not None
        if step.via not in host:
            raise QvrDataError(
                f"{where}: missing host data '{step.via}'; pass it in the observations dict"
            )
        ids = host[step.via]
        if not isinstance(ids, torch.Tensor) or ids.numel() != rows:
            raise QvrDataError(
                f"{where}: via '{step.via}' must be one id per row, shape ({rows},), got "
                f"{describe(ids)}"
            )
        every = torch.arange(step.group, device=self._ref.device)
        return _gather(every, ids.reshape(-1), step.via, where)  # range-checked ids

    def _let(self, step: LetStep, env: dict[str, Any], host: dict[str, Any]) -> torch.Tensor:
        if isinstance(step.value, Var):  # an alias keeps the value as it is (ids stay ids)
            return self._var(step.value, env, host, f"let '{step.var}'")
        return self._arith(step.value, env, host, f"let '{step.var}'")

    def _var(self, var: Var, env: dict[str, Any], host: dict[str, Any], where: str) -> torch.Tensor:
        if not var.host and var.name in env:
            return env[var.name]
        if var.name in host:
            v = host[var.name]
            if not isinstance(v, torch.Tensor):
                if isinstance(v, int | float):
                    return self._ref.new_tensor(float(v))
                raise QvrDataError(f"host data '{var.name}': expected a tensor, got {describe(v)}")
            return v
        if var.host or var.name in self.host_names:
            raise QvrDataError(
                f"{where}: missing host data '{var.name}'; pass it in the observations dict"
            )
        raise QvrBuildError(f"{where}: unbound name '{var.name}'")

    def _arith(self, e: Any, env: dict[str, Any], host: dict[str, Any], where: str) -> torch.Tensor:
        if isinstance(e, Num):
            return self._ref.new_tensor(e.value)
        if isinstance(e, Var):
            v = self._var(e, env, host, where)
            if e.name in self._binary and not e.host:
                v = v.unsqueeze(-1)  # a summed-out Bernoulli latent is the number 0 or 1
            return v if v.is_floating_point() else v.to(self._ref.dtype)
        if isinstance(e, BinOp):
            return _OPS[e.op](
                self._arith(e.left, env, host, where), self._arith(e.right, env, host, where)
            )
        if isinstance(e, Neg):
            return -self._arith(e.operand, env, host, where)
        if isinstance(e, Index):
            ids = self._var(e.index, env, host, where)
            if isinstance(e.base, RelationRef):
                matrix = getattr(self, f"_rel_{e.base.name}").relation()
                return _gather(matrix.to(self._ref.dtype), ids, e.index.name, where)
            base = self._var(e.base, env, host, where)
            return _gather(base, ids, e.index.name, where)
        if isinstance(e, Call):
            try:
                fn = _FUNCS[e.fn]
            except KeyError:
                raise QvrBuildError(f"{where}: unknown function '{e.fn}'") from None
            return fn(*(self._arith(a, env, host, where) for a in e.args))
        raise QvrBuildError(f"{where}: not an arithmetic expression: {e!r}")

    def _family_args(
        self,
        args: tuple[Any, ...],
        env: dict[str, Any],
        host: dict[str, Any],
        where: str,
        logits: Mapping[int, Any] | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """An inline family's argument values; a Mixture's components' arguments follow
        its weights, flattened in order (``MixtureFamily`` knows each one's arity).
        A probability written as ``sigmoid(e)`` is given as the logit ``e``
        (``logit_arguments``)."""
        out: list[torch.Tensor] = []
        for i, a in enumerate(args):
            if logits and i in logits:
                out.append(self._arith(logits[i], env, host, where))
            elif isinstance(a, VectorLit):
                out.append(self._ref.new_tensor(a.values))
            elif isinstance(a, Components):
                for call in a.calls:
                    out.extend(self._family_args(call.args, env, host, where))
            else:
                out.append(self._arith(a, env, host, where))
        return tuple(out)

    def _lead(self, x: Any) -> tuple[int, ...]:
        """The leading (row, and for a batched cell, position) axes of the input."""
        if isinstance(x, torch.Tensor) and x.dim() > 0:
            return lead_shape(x, self.dom)
        return (_rows(x),)

    def _is_global_step(self, step: Any) -> bool:
        return isinstance(step, SampleStep | LetStep) and step.var in self._input_free

    def global_trace(self, **run: Any) -> dict[str, Site] | None:
        """The global sites alone, drawn without any input (None if there are none).

        Global sites read only numbers and other global values, so their shapes do
        not depend on the data; a guide uses this to create its parameters when it
        is built (``docs/dev/model-protocol.md``).
        """
        if not any(isinstance(s, SampleStep) and s.is_global for s in self.decl.steps):
            return None
        sites: dict[str, Site] = {}
        nothing = self._ref.new_zeros(0)  # no input: global steps never read it
        self._execute(nothing, {}, {}, False, True, run, sites, validate=False, only_global=True)
        return sites

    # ------------------------------------------------------------- protocol
    def check_input(self, x: Any, where: str = "input") -> None:
        check_value(x, self.dom, f"program '{self.name}' {where}", min_lead=1)

    def _input(self, x: Any) -> Any:
        """The run's input, checked once (not when the caller validated it:
        ``quivers.runtime.checks``); floats holding ids become int64 (``as_ids``)."""
        x = as_ids(x, self.dom, f"program '{self.name}' input")
        if data_checks():
            self.check_input(x)
        return x

    def _split_obs(self, observations: Mapping[str, Any] | None, x: Any) -> tuple[dict, dict]:
        obs = dict(observations or {})
        given = {k: v for k, v in obs.items() if k in self.site_names}
        rows = _rows(x)
        for name in self.host_names:
            if isinstance(obs.get(name), torch.Tensor):
                if name in self._id_hosts:  # floats holding ids become the ids, once
                    obs[name] = as_ids(obs[name], self._id_hosts[name], f"host data '{name}'")
                obs[name] = _host_rows(name, obs[name], rows, self._plate_sizes)
        for name, size in self._plates.items():
            value = given.get(name)
            if isinstance(value, torch.Tensor) and tuple(value.shape) == (size,):
                given[name] = value.unsqueeze(-1)  # one number per element, as (size, 1)
        return given, obs

    def rsample(
        self, x: torch.Tensor, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> Any:
        """Run the program (observed sites take supplied values) and return its result."""
        x = self._input(x)
        given, host = self._split_obs(observations, x)
        return self._execute(x, given, host, False, False, run)[1]

    forward = rsample

    def trace(
        self, x: torch.Tensor, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> Trace:
        """Every site's trace, value and log density, in program order."""
        return self.traced_run(x, observations, **run)[1]

    def traced_run(
        self, x: torch.Tensor, observations: Mapping[str, Any] | None = None, **run: Any
    ) -> tuple[Any, Trace, torch.Tensor]:
        """One run: (return value, every site, exact total log density incl. scores)."""
        x = self._input(x)
        given, host = self._split_obs(observations, x)
        sites = Trace()
        _, value, rows, glob = self._execute(x, given, host, False, True, run, sites)
        total = self._ref.new_zeros(()) if rows is None else rows.sum()
        return value, sites, total if glob is None else total + glob

    def log_joint(self, x: torch.Tensor, values: Mapping[str, Any], **run: Any) -> torch.Tensor:
        """Exact total log density: local sites and scores summed over rows, globals once."""
        x = self._input(x)
        validate = data_checks()  # the rest of the data too, unless the caller has
        given, host = self._split_obs(values, x)
        _, _, rows, glob = self._execute(x, given, host, True, True, run, validate=validate)
        total = self._ref.new_zeros(()) if rows is None else rows.sum()
        return total if glob is None else total + glob

    def log_joint_rows(
        self, x: torch.Tensor, values: dict[str, Any], **run: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact log density split as (per-row part (batch,), global part 0-d).

        The per-row part holds the local sites and scores of each row, the global part
        the sites drawn once; ``rows.sum() + glob`` is :meth:`log_joint`. A minibatch
        ELBO scales the first by N/B and counts the second once.
        """
        x = self._input(x)
        validate = data_checks()  # the rest of the data too, unless the caller has
        given, host = self._split_obs(values, x)
        _, _, rows, glob = self._execute(x, given, host, True, True, run, validate=validate)
        if rows is None:
            rows = self._ref.new_zeros(_rows(x))
        return rows, (self._ref.new_zeros(()) if glob is None else glob)

    def draw_log_joint_rows(
        self,
        x: torch.Tensor,
        observations: dict[str, Any] | None,
        draw: Collection[str],
        **run: Any,
    ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Draw the sites ``draw`` from the model; score everything else.

        Returns (the drawn sites' traces, per-row log density of every other site and
        score, global log density). With q(z) = p(z | x) for the drawn sites, this is
        the ELBO's integrand computed exactly: log p(z) - log q(z) is zero and is
        never evaluated (the prior guide's objective, at the cost of one forward draw).
        """
        x = self._input(x)
        wanted = frozenset(draw)
        given, host = self._split_obs(observations, x)
        clash = sorted(wanted & set(given))
        if clash:
            raise QvrDataError(f"sites {clash} are to be drawn, but values were given")
        traces, _, rows, glob = self._execute(x, given, host, False, True, run, unscored=wanted)
        drawn = {
            name: tr for name, tr in zip(self.site_names, traces, strict=True) if name in wanted
        }
        if rows is None:
            rows = self._ref.new_zeros(_rows(x))
        return drawn, rows, (self._ref.new_zeros(()) if glob is None else glob)

    # ------------------------------------------------------------- as a kernel
    def run(self, x, trace=None, want_lp=True, **run) -> RunOut:
        given: dict[str, Any] = {}
        if trace is not None:
            given = dict(
                zip(self.site_names, unpack(trace, len(self.site_names), "trace"), strict=True)
            )
        host = run.pop(HOST_KEY, {})
        # inputs were checked where the run started; a cell runs once per step
        traces, value, rows, glob = self._execute(
            x, given, host, False, want_lp, run, validate=False
        )
        lp = add_lp(rows, glob) if want_lp else None
        return pack(traces), value, lp

    def support(self):
        return pack([self.step_module(n).support() for n in self.site_names])

    def trace_spec(self, lead):
        return None  # checked site by site when the program runs


def _run_site(
    node: Node,
    inp: Any,
    given: Any,
    scored: bool,
    run: dict[str, Any],
    where: str,
    validate: bool,
    check_input: bool,
) -> RunOut:
    """Run a site's kernel on its input (a given trace checked first), with any data
    error named after the site."""
    try:
        if check_input:
            node.check_input(inp, "input")
        if given is not None and validate:
            if isinstance(node, InlineFamily):
                node.check_given(inp, given, where)
            else:
                node.check_trace(inp, given, where)
        return node.run(inp, given, scored, **run)
    except QvrDataError as e:
        msg = str(e)
        raise QvrDataError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def _flat_steps(steps: tuple[Any, ...]) -> list[Any]:
    """The steps with each marginalize block followed by its body, in source order."""
    out: list[Any] = []
    for step in steps:
        out.append(step)
        if isinstance(step, MarginalizeStep):
            out.extend(_flat_steps(step.body))
    return out


def _rows(x: Any) -> int:
    """The number of rows of a program input (its leading axis)."""
    if isinstance(x, torch.Tensor) and x.dim() > 0:
        return int(x.shape[0])
    if isinstance(x, tuple | list) and x:
        return _rows(x[0])
    return 1


def _ar_filter(phi: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """z_1 = e_1, z_t = phi z_{t-1} + e_t along a plate value's element axis (-2 of
    ``(..., K, d)``): exact, in order; ``phi`` is one global number (0-d, or ``(..., 1)``
    under leading axes such as vectorised chains)."""
    if e.dim() < 2:
        raise QvrDataError(f"ar_filter: expected a plate value (K, d), got {describe(e)}")
    coef = phi if phi.dim() == 0 else phi.reshape(*phi.shape[: e.dim() - 2], 1)
    z, out = None, []
    for e_t in e.unbind(-2):
        z = e_t if z is None else coef * z + e_t
        out.append(z)
    return torch.stack(out, dim=-2)


def _indices(decl: ProgramDecl) -> list[Index]:
    """Every ``base[ids]`` the program's arithmetic reads, in source order."""
    found: list[Index] = []

    def walk(e: Any) -> None:
        if isinstance(e, Index):
            found.append(e)
        for child in (getattr(e, "left", None), getattr(e, "right", None)):
            if child is not None:
                walk(child)
        if isinstance(e, Neg):
            walk(e.operand)
        if isinstance(e, Call):
            for a in e.args:
                walk(a)

    for step in _flat_steps(decl.steps):
        if isinstance(step, LetStep | ScoreStep):
            walk(step.value)
        elif isinstance(step, SampleStep | MarginalizeStep) and not isinstance(
            step.source, KernelSource
        ):
            for a in step.source.args:
                walk(a)
    return found


def _relation_refs(decl: ProgramDecl) -> dict[str, Expr]:
    """The relations whose rows the program's arithmetic reads (``rel[ids]``), by name."""
    return {i.base.name: i.base.expr for i in _indices(decl) if isinstance(i.base, RelationRef)}


def _input_free(decl: ProgramDecl) -> frozenset[str]:
    """The global sites and lets computable from numbers and each other alone (no
    program input, no host data): what :meth:`ProgramModule.global_trace` runs."""
    known: set[str] = {name for name, _ in decl.constants}

    def free(e: Any) -> bool:
        if isinstance(e, Num | VectorLit):
            return True
        if isinstance(e, Components):
            return all(free(a) for call in e.calls for a in call.args)
        if isinstance(e, Var):
            return not e.host and e.name in known
        if isinstance(e, BinOp):
            return free(e.left) and free(e.right)
        if isinstance(e, Neg):
            return free(e.operand)
        if isinstance(e, Call):
            return all(free(a) for a in e.args)
        if isinstance(e, Index):
            return free(e.base) and free(e.index)
        return False

    for step in decl.steps:
        if isinstance(step, SampleStep) and step.is_global:
            src = step.source
            if isinstance(src, KernelSource):
                ok = src.args is not None and all(a in known for a in src.args)
            else:
                ok = all(free(a) for a in src.args)
            if ok:
                known.add(step.var)
        elif isinstance(step, LetStep) and free(step.value):
            known.add(step.var)
    return frozenset(known)


def _plate_size_error(
    step: SampleStep, family: str, args: tuple[Any, ...], where: str
) -> QvrDataError | None:
    """A plate site whose arguments have another number of rows than its set has
    elements (data of 33 rows for `observe y : Resp` with `Resp : FinSet 63`): one
    error naming the site, the set and both sizes. None when no row count explains it."""
    size = step.plate
    rows = sorted(
        {
            int(a.shape[0])
            for a in args
            if isinstance(a, torch.Tensor) and a.dim() >= 1 and a.shape[0] not in (1, size)
        }
    )
    if len(rows) != 1:
        return None
    plate = step.plate_set or "its finite set"
    shapes = ", ".join(str(tuple(a.shape)) for a in args if isinstance(a, torch.Tensor))
    return QvrDataError(
        f"{where}: a plate over {plate} (FinSet {size}) has one value per element, {size} "
        f"in all, but {family}'s arguments have {rows[0]} rows (shapes {shapes}); pass "
        f"data with {size} rows, or declare `object {plate} : FinSet {rows[0]}`"
    )


def _host_rows(
    name: str, value: torch.Tensor, rows: int, plates: frozenset[int] = frozenset()
) -> torch.Tensor:
    """Host data of a program with ``rows`` rows: a number, one value per row, or a row
    of d values per row. A 1-D vector of length ``rows`` is one value per row (the way a
    data column is usually passed), so it becomes ``(rows, 1)``, like a ``Real 1`` value.
    A program with plates also takes one value per element of a plate (its size).
    """
    sizes = {rows} | set(plates)
    if value.dim() == 0 or (value.dim() == 2 and value.shape[0] in sizes):
        return value
    if value.dim() == 1 and value.shape[0] in sizes:
        return value.unsqueeze(-1)
    shown = " or ".join(f"({n},) or ({n}, d)" for n in sorted(sizes))
    what = "one value per row" + (" or per plate element" if plates else "")
    raise QvrDataError(
        f"host data '{name}': expected a number or {what}, shape {shown}, got {describe(value)}"
    )


def _gather(base: torch.Tensor, ids: torch.Tensor, name: str, where: str) -> torch.Tensor:
    """``base[ids]``: one row of a plate value ``(K, d)`` per id; ids must be in 0..K-1."""
    if ids.is_floating_point():
        if data_checks() and not bool((ids == ids.round()).all()):
            raise QvrDataError(
                f"{where}: index '{name}' must hold integer ids, got {describe(ids)}"
            )
        ids = ids.long()
    if ids.dim() == 2 and ids.shape[-1] == 1:
        ids = ids.squeeze(-1)
    if ids.dim() != 1:
        raise QvrDataError(f"{where}: index '{name}' must be one id per row, got {describe(ids)}")
    size = base.shape[0] if base.dim() > 0 else 0
    if ids.numel() and data_checks() and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise QvrDataError(
            f"{where}: index '{name}' has ids {int(ids.min())}..{int(ids.max())}, outside the "
            f"plate's 0..{size - 1}"
        )
    return base[ids.long()]


def _batch(inp: Any) -> tuple[int, ...]:
    if isinstance(inp, torch.Tensor) and inp.dim() > 0:
        return (inp.shape[0],)
    return ()
