"""``compile=True``: the potential and its gradient as one ``torch.compile``d graph.

Eager torch pays a Python dispatch per operation of the model, of the bijections and
of autograd's backward; a leapfrog step of a small model is mostly that overhead (the
100-d Gaussian benchmark: 0.38 ms eager, 0.08 ms compiled, most of it the two
triangular solves). :class:`CompiledValueAndGrad` traces
``torch.func.grad_and_value(U)`` (vmapped over rows for a batch of chains) with
``fullgraph=True``, so that the forward pass, the backward pass and the finiteness
checks of the result are one graph, compiled by TorchInductor (which needs a C++
compiler on CPU).

A model that cannot be captured whole (a data-dependent Python branch, a call dynamo
does not trace) or a machine without a compiler makes the first call fail: the
caller is then told (one :class:`CompileFallbackWarning` naming the error) and every
later call returns None, so the potential runs eagerly as with ``compile=False``.
The compiled value may differ from the eager one in the last float bits (a
different order of reductions), so compiled and eager chains agree to float
tolerance, not bit for bit.

:class:`TracedOnce` is the other way in, for the NUTS transition's graph (with
loops): traced once with ``make_fx`` and compiled by TorchInductor, then called
without dynamo, with the checks dynamo's guards made (the arguments' signature, the
data the trace holds) done by the class itself.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from typing import Any

import torch

from quivers.inference import inductor


class CompileFallbackWarning(UserWarning):
    """``compile=True`` could not compile the potential; it runs eagerly instead."""


def _own_code(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a code object of its own. Dynamo keeps its compiled graphs per code
    object, guarded on the closure: every instance of a ``_make`` closure (one per
    potential, per chunk size of the tree step) would be a recompilation of the same
    code, and past ``torch._dynamo.config.recompile_limit`` (8) dynamo silently runs
    the function eagerly. A copy of the code keeps each instance's graph apart."""
    own = types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    own.__kwdefaults__ = fn.__kwdefaults__
    own.__qualname__ = fn.__qualname__
    return own


class _Compiled:
    """A function compiled on its first call; None from every call once compiling
    failed (warned once), so that the caller runs its eager path."""

    # What the fallback warning says could not be compiled, and by what.
    what = "this model's potential"
    compiler = "torch.compile"

    def __init__(self) -> None:
        self.error: str | None = None  # why compilation failed, once it has
        self._fn: Callable[..., Any] | None = None

    def _make(self) -> Callable[..., Any]:
        raise NotImplementedError

    def __call__(self, *args: torch.Tensor) -> Any:
        if self.error is not None:
            return None
        try:
            if self._fn is None:
                self._fn = torch.compile(
                    _own_code(self._make()), fullgraph=True, backend=inductor.backend
                )
                with warnings.catch_warnings():
                    inductor.ignore_torch_deprecations()
                    return self._fn(*args)
            return self._fn(*args)
        except Exception as err:  # noqa: BLE001 - any failure to compile means "run eagerly"
            self.fail(err)
            return None

    def fail(self, err: BaseException) -> None:
        """Give up compiling (warns once); later calls return None."""
        first = (str(err).strip().splitlines() or [""])[0]
        self.error = f"{type(err).__name__}: {first[:300]}"
        warnings.warn(
            f"compile=True: {self.compiler} could not compile {self.what} "
            f"({self.error}); running it eagerly",
            CompileFallbackWarning,
            stacklevel=3,
        )


Signature = tuple[object, ...]

_WHILE_LOOP = "while_loop"


def _tensor_constants(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [
        n
        for n in gm.graph.nodes
        if n.op == "get_attr" and isinstance(getattr(gm, n.target), torch.Tensor)
    ]


def _hop_name(node: torch.fx.Node) -> str | None:
    """The name of the higher-order operator ``node`` calls, if it calls one."""
    target = node.target
    if node.op != "call_function" or not isinstance(target, torch._ops.HigherOrderOperator):
        return None
    return str(target._name)


def _is_while_loop(node: torch.fx.Node) -> bool:
    return _hop_name(node) == _WHILE_LOOP


def _constant(gm: torch.fx.GraphModule, node: torch.fx.Node) -> torch.Tensor:
    assert isinstance(node.target, str)
    t = getattr(gm, node.target)
    assert isinstance(t, torch.Tensor)
    return t


def _submodule(gm: torch.fx.GraphModule, node: object) -> torch.fx.GraphModule:
    assert isinstance(node, torch.fx.Node) and isinstance(node.target, str)
    sub = getattr(gm, node.target)
    assert isinstance(sub, torch.fx.GraphModule)
    return sub


def _add_placeholders(gm: torch.fx.GraphModule, count: int) -> list[torch.fx.Node]:
    """``count`` new inputs of ``gm``, after its others."""
    last = [n for n in gm.graph.nodes if n.op == "placeholder"][-1]
    taken = {n.name for n in gm.graph.nodes}
    added: list[torch.fx.Node] = []
    for _ in range(count):
        name = next(f"lifted_{k}" for k in range(len(taken) + 1) if f"lifted_{k}" not in taken)
        taken.add(name)
        with gm.graph.inserting_after(last):
            last = gm.graph.placeholder(name)
        added.append(last)
    return added


def _storage(t: torch.Tensor) -> tuple[int, torch.device]:
    return t.untyped_storage().data_ptr(), t.device


def _constants_of(gm: torch.fx.GraphModule) -> list[torch.Tensor]:
    """``gm``'s tensor constants, each once, after the loops inside it have been
    given theirs as inputs (constants of ``gm`` passed to the loop). Two different
    tensors on one block of memory are refused: as inputs of a loop they would
    alias, which TorchInductor cannot functionalize."""
    for node in list(gm.graph.nodes):
        name = _hop_name(node)
        if name is None:
            continue
        if name != _WHILE_LOOP:
            subgraphs = [
                _submodule(gm, a)
                for a in node.args
                if isinstance(a, torch.fx.Node) and a.op == "get_attr"
            ]
            if any(_has_constants(m) for m in subgraphs):
                raise NotImplementedError(f"a tensor constant inside {name} cannot be lifted")
            continue
        cond_fn, body_fn, carried, additional = node.args
        assert isinstance(carried, tuple) and isinstance(additional, tuple)
        cond_gm, body_gm = _submodule(gm, cond_fn), _submodule(gm, body_fn)
        union: dict[int, torch.Tensor] = {}
        for t in (*_constants_of(cond_gm), *_constants_of(body_gm)):
            union.setdefault(id(t), t)
        bases = list(union.values())
        _bind(cond_gm, bases)  # both subgraphs take the same inputs
        _bind(body_gm, bases)
        extra: list[torch.fx.Node] = []
        with gm.graph.inserting_before(node):
            for base in bases:
                name = f"_lifted_constant_{len(extra)}"
                while hasattr(gm, name):
                    name += "_"
                gm.register_buffer(name, base)
                extra.append(gm.graph.get_attr(name))
        node.args = (cond_fn, body_fn, carried, (*additional, *extra))
    found: dict[int, torch.Tensor] = {}
    memory: dict[tuple[int, torch.device], int] = {}
    for node in _tensor_constants(gm):
        t = _constant(gm, node)
        found.setdefault(id(t), t)
        if memory.setdefault(_storage(t), id(t)) != id(t):
            # two inputs of a loop that alias cannot be functionalized
            raise NotImplementedError("two different tensors of the model share memory")
    return list(found.values())


def _bind(gm: torch.fx.GraphModule, constants: list[torch.Tensor]) -> None:
    """Make ``constants`` trailing inputs of ``gm``, in place of its get_attr nodes."""
    inputs = dict(
        zip([id(t) for t in constants], _add_placeholders(gm, len(constants)), strict=True)
    )
    for node in _tensor_constants(gm):
        node.replace_all_uses_with(inputs[id(_constant(gm, node))])
        gm.graph.erase_node(node)
    gm.recompile()


def lift_constants(gm: torch.fx.GraphModule) -> list[torch.Tensor]:
    """Make the tensors a traced graph holds as constants (the model's data, read by
    ``make_fx``) inputs of it, each once, and return them: the graph is called with
    them appended to its arguments (the same tensors: data changed in place between
    calls is read where it is).

    TorchInductor cannot functionalize a constant inside a ``while_loop``'s subgraphs
    (the loops of :mod:`quivers.inference.nuts_graph`), so the constants of each
    loop's condition and body are lifted first, recursively: they become extra inputs
    of both subgraphs (which must take the same ones) and extra ``additional_inputs``
    of the loop, constants of the graph around it. Any other higher-order operation with a constant inside is
    refused (the caller runs eagerly after a :class:`CompileFallbackWarning`)."""
    constants = _constants_of(gm)
    _bind(gm, constants)
    return [t.detach() for t in constants]


def _has_constants(gm: torch.fx.GraphModule) -> bool:
    return bool(_tensor_constants(gm)) or any(
        _has_constants(m) for m in gm.children() if isinstance(m, torch.fx.GraphModule)
    )


def inline_sizes(gm: torch.fx.GraphModule) -> None:
    """Put the sizes a ``while_loop`` receives as operands back into its subgraphs.

    Traced with symbolic sizes, a loop's subgraphs take the sizes as extra integer
    operands, which TorchInductor then cannot compile (its fake-tensor updater finds
    no value for an integer input). In a graph traced with static shapes each such
    operand is a literal int, so every use of that input in the subgraphs is
    replaced by the int and the operand dropped, recursively."""
    from torch.utils import _pytree as pytree

    for node in gm.graph.nodes:
        if not _is_while_loop(node):
            continue
        cond_fn, body_fn, carried, additional = node.args
        assert isinstance(carried, tuple) and isinstance(additional, tuple)
        if any(not isinstance(a, torch.fx.Node) for a in carried):
            raise NotImplementedError("a while_loop carrying a Python number")
        sizes = {len(carried) + k: a for k, a in enumerate(additional) if isinstance(a, int)}
        for sub in (_submodule(gm, cond_fn), _submodule(gm, body_fn)):
            inputs = [n for n in sub.graph.nodes if n.op == "placeholder"]
            for index, value in sizes.items():
                placeholder = inputs[index]
                for user in list(placeholder.users):

                    def put(a: object, p: torch.fx.Node = placeholder, v: int = value) -> object:
                        return v if a is p else a

                    user.args = pytree.tree_map(put, user.args)
                    user.kwargs = pytree.tree_map(put, user.kwargs)
                sub.graph.erase_node(placeholder)
            sub.recompile()
            inline_sizes(sub)
        kept = tuple(a for a in additional if not isinstance(a, int))
        node.args = (cond_fn, body_fn, carried, kept)
    gm.recompile()


def signature(args: tuple[torch.Tensor, ...]) -> Signature:
    """What a graph traced on ``args`` assumes of them: shapes, strides (its kernels
    index by them), dtypes, devices, whether they require gradients, and which
    arguments are one tensor (the trace follows a tensor by identity: traced on
    ``f(t, t)`` it reads the second argument for both, a wrong graph for two
    different tensors)."""
    ids = [id(a) for a in args]
    same = None if len(set(ids)) == len(ids) else tuple(ids.index(i) for i in ids)
    return (same, *((a.shape, a.stride(), a.dtype, a.device, a.requires_grad) for a in args))


class TracedOnce(_Compiled):
    """A pure function of tensors, traced to aten operations (``make_fx``) on its
    first call and compiled by TorchInductor, then called without dynamo.

    For the graphs a sampler calls tens of thousands of times with tensors of fixed
    shapes (:mod:`quivers.inference.nuts_graph`'s transition): dynamo checked some
    230 guards on every call of the (then chunked) tree step (the model, the
    closure, ``vmap``'s internals), about 60 us, most of a leaf's arithmetic. What those guards protect is
    checked here instead: the arguments' :func:`signature` (one graph per signature,
    at most :attr:`max_graphs`), and :meth:`baked`, the state of whatever else the
    trace read (the model's data, which the trace holds as constants), compared by
    identity: when it changes, the graphs are traced again. The function must not
    branch on what it closes over in any other way that can change between calls.
    Failures (tracing a data-dependent branch, compiling, too many signatures) warn
    once and make every later call return None, as for :class:`_Compiled`."""

    max_graphs = 16
    compiler = "TorchInductor"  # the trace is make_fx's, not torch.compile's

    def __init__(self) -> None:
        super().__init__()
        self._graphs: dict[Signature, Callable[..., Any]] = {}
        self._baked_state: object = None

    def baked(self) -> object:
        """What the trace holds besides its arguments, as an object that is replaced
        whenever that changes (None: nothing)."""
        return None

    def _trace(self, args: tuple[torch.Tensor, ...]) -> Callable[..., Any]:
        from torch.fx.experimental.proxy_tensor import make_fx

        fn = self._make()

        def unannotated(*args: torch.Tensor) -> Any:
            # make_fx keeps the function's annotations in the graph's code, as strings
            # here (postponed annotations), which TorchInductor's cache cannot key on
            return fn(*args)

        unannotated.__annotations__ = {}
        with warnings.catch_warnings():
            inductor.ignore_torch_deprecations()
            gm = make_fx(unannotated, tracing_mode="fake", _allow_non_fake_inputs=True)(*args)
            inline_sizes(gm)
            constants = tuple(lift_constants(gm))
            # make_fx's example values belong to its own fake mode; TorchInductor
            # traces the graph again in one of its own
            for module in gm.modules():
                if isinstance(module, torch.fx.GraphModule):
                    for node in module.graph.nodes:
                        node.meta.clear()
            compiled = inductor.compile_traced(gm, (*args, *constants))

        def call(*args: torch.Tensor) -> Any:
            return compiled(*args, *constants)

        return call

    def __call__(self, *args: torch.Tensor) -> Any:
        if self.error is not None:
            return None
        try:
            state = self.baked()
            if state is not self._baked_state:
                self._graphs.clear()
                self._baked_state = state
            key = signature(args)
            graph = self._graphs.get(key)
            if graph is None:
                if len(self._graphs) >= self.max_graphs:
                    raise RuntimeError(f"called with more than {self.max_graphs} signatures")
                graph = self._graphs[key] = self._trace(args)
            return graph(*args)
        except Exception as err:  # noqa: BLE001 - any failure to compile means "run eagerly"
            self.fail(err)
            return None


class CompiledValueAndGrad(_Compiled):
    """``energy_fn(u) -> U`` as a compiled ``u -> (U, dU/du, gradient finite)``.

    With ``batched`` the function takes (C, D) rows and returns (C,) energies, (C, D)
    gradients and (C,) flags (each row its own chain). Call it with ``u``; None means
    compilation failed (now or before) and the caller evaluates eagerly.
    """

    def __init__(self, energy_fn: Callable[[torch.Tensor], torch.Tensor], batched: bool) -> None:
        super().__init__()
        self.energy_fn = energy_fn
        self.batched = batched

    def _make(self) -> Callable[..., Any]:
        grad_and_value = torch.func.grad_and_value(self.energy_fn)
        if self.batched:
            grad_and_value = torch.func.vmap(grad_and_value, randomness="error")

        def value_grad_ok(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            grad, energy = grad_and_value(u.detach())
            return energy, grad, torch.isfinite(grad).all(-1)

        return value_grad_ok


class CompiledLeapfrog(_Compiled):
    """One leapfrog step of C chains with the potential inside the same graph.

    Called with the chains' trajectory ends ``start`` (C, 4, D: position, gradient,
    momentum, sharp momentum, as :mod:`quivers.inference.nuts_batched` keeps them),
    signed step sizes (C, 1) and inverse metrics (C, D); returns the new ends
    (C, 4, D) and a (3, C) stack of potential energies, kinetic energies and
    gradient-finite flags, so that the host reads one tensor per step.
    """

    def __init__(self, energy_fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.energy_fn = energy_fn

    def _make(self) -> Callable[..., Any]:
        grad_and_value = torch.func.vmap(
            torch.func.grad_and_value(self.energy_fn), randomness="error"
        )

        def step(
            start: torch.Tensor, steps: torch.Tensor, inv_mass: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            q, g, p = start[:, 0], start[:, 1], start[:, 2]
            half = 0.5 * steps
            p_half = p - half * g
            q1 = q + steps * (inv_mass * p_half)
            g1, u1 = grad_and_value(q1)
            p1 = p_half - half * g1
            ps1 = inv_mass * p1
            kinetic = (p1 * ps1).sum(-1)
            ok = torch.isfinite(g1).all(-1)
            scalars = torch.stack([u1.double(), kinetic.double(), ok.double()])
            return torch.stack([q1, g1, p1, ps1], 1), scalars

        return step
