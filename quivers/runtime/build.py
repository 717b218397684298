"""``build_module``: a :class:`~quivers.runtime.ir.ModuleIR` to ``torch.nn.Module``s.

Names resolve lazily (a ``let`` or program is built on first use, once), so the
declaration tuples may come in any order; shared references share one module, hence
one set of parameters.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from torch import nn

from quivers.runtime.algebras import Algebra, get_algebra
from quivers.runtime.combinators import (
    Chain,
    Parallel,
    Passthrough,
    RelChain,
    RelIdentity,
    RelParallel,
    RelRepeat,
    RepeatChain,
    Scan,
    is_relation,
)
from quivers.runtime.deduction.module import Deduction
from quivers.runtime.errors import QvrBuildError
from quivers.runtime.export import as_model
from quivers.runtime.ir import (
    Compose,
    Expr,
    Fan,
    Identity,
    ModuleIR,
    MorphismDecl,
    Ref,
    Repeat,
    Stack,
    Tensor,
)
from quivers.runtime.ir import Scan as ScanE
from quivers.runtime.kernels import build_leaf
from quivers.runtime.node import Node
from quivers.runtime.objects import is_finite
from quivers.runtime.program import ProgramModule


@dataclass
class BuiltModule:
    """Every built morphism, let and program, and the exports in order.

    ``root`` holds them all (so ``root.to(torch.float64)`` converts everything);
    ``replicas[name]`` lists the copies of a morphism declared with ``replicate=N``.
    """

    morphisms: dict[str, Node]
    lets: dict[str, Node]
    programs: dict[str, ProgramModule]
    exports: list[tuple[str | None, Node]]
    algebra: Algebra
    replicas: dict[str, list[Node]] = field(default_factory=dict)
    root: nn.ModuleDict = field(default_factory=nn.ModuleDict)
    deductions: dict[str, Deduction] = field(default_factory=dict)

    @property
    def main(self) -> Node:
        """The first export (the loaded program's ``morphism``)."""
        return self.exports[0][1]


def reinitialise(module: nn.Module) -> None:
    """Fresh draws for every parameter (``stack``/``replicate`` copies are independent)."""
    for m in module.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()


class _Builder:
    def __init__(self, ir: ModuleIR) -> None:
        self.ir = ir
        self.algebra = get_algebra(ir.algebra)
        self.decls = {m.name: m for m in ir.morphisms}
        self.let_decls = {d.name: d for d in ir.lets}
        self.prog_decls = {p.name: p for p in ir.programs}
        self.morphisms: dict[str, Node] = {}
        self.replicas: dict[str, list[Node]] = {}
        self.lets: dict[str, Node] = {}
        self.programs: dict[str, ProgramModule] = {}
        self._building: set[str] = set()

    def morphism(self, decl: MorphismDecl) -> Node:
        if decl.name not in self.morphisms:
            first = build_leaf(decl, self.algebra)
            self.morphisms[decl.name] = first
            if decl.replicate:
                copies = [first]
                for _ in range(decl.replicate - 1):
                    c = copy.deepcopy(first)
                    reinitialise(c)
                    copies.append(c)
                self.replicas[decl.name] = copies
        return self.morphisms[decl.name]

    def ref(self, name: str) -> Node:
        if name in self.decls:
            return self.morphism(self.decls[name])
        if name in self.lets:
            return self.lets[name]
        if name in self.programs:
            return self.programs[name]
        if name in self._building:
            raise QvrBuildError(f"'{name}' refers to itself")
        self._building.add(name)
        try:
            if name in self.let_decls:
                self.lets[name] = self.expr(self.let_decls[name].expr)
                return self.lets[name]
            if name in self.prog_decls:
                self.programs[name] = ProgramModule(self.prog_decls[name], self.expr)
                return self.programs[name]
        finally:
            self._building.discard(name)
        raise QvrBuildError(f"unknown name '{name}'")

    def expr(self, e: Expr) -> Node:
        if isinstance(e, Ref):
            return self.ref(e.name)
        if isinstance(e, Compose):
            parts = [self.expr(p) for p in _flatten_compose(e)]
            if all(is_relation(p) for p in parts):
                return RelChain(parts, self.algebra)  # type: ignore[arg-type]
            return Chain(parts)
        if isinstance(e, Tensor | Fan):
            split = isinstance(e, Tensor)
            if isinstance(e, Tensor):
                parts = [self.expr(e.left), self.expr(e.right)]
            elif e.replicated is not None:
                self.ref(e.replicated)
                parts = self.replicas.get(e.replicated) or [self.ref(e.replicated)]
            else:
                parts = [self.expr(p) for p in e.parts]
            if all(is_relation(p) for p in parts):
                return RelParallel(parts, split, self.algebra)  # type: ignore[arg-type]
            return Parallel(parts, split)
        if isinstance(e, Repeat):
            body = self.expr(e.body)
            if is_relation(body):
                return RelRepeat(body, e.count, self.algebra)  # type: ignore[arg-type]
            return RepeatChain(body, e.count)
        if isinstance(e, Stack):
            copies = []
            for _ in range(e.count):
                c = copy.deepcopy(self.expr(e.body))
                reinitialise(c)
                copies.append(c)
            if all(is_relation(p) for p in copies):
                return RelChain(copies, self.algebra)  # type: ignore[arg-type]
            return Chain(copies)
        if isinstance(e, ScanE):
            return Scan(self.expr(e.cell), e.input_type, e.state_type, e.reverse)
        if isinstance(e, Identity):
            return RelIdentity(e.obj, self.algebra) if is_finite(e.obj) else Passthrough(e.obj)
        raise QvrBuildError(f"not a morphism expression: {e!r}")


def _flatten_compose(e: Expr) -> list[Expr]:
    if isinstance(e, Compose):
        return _flatten_compose(e.first) + _flatten_compose(e.second)
    return [e]


def build_module(ir: ModuleIR) -> BuiltModule:
    """Build every morphism, let and program of ``ir`` and its exports."""
    b = _Builder(ir)
    for decl in ir.morphisms:
        b.morphism(decl)
    for let in ir.lets:
        b.ref(let.name)
    for prog in ir.programs:
        b.ref(prog.name)
    exports = [(name, as_model(name, b.expr(e))) for name, e in ir.exports]
    root = nn.ModuleDict()
    for kind, table in (("morphism", b.morphisms), ("let", b.lets), ("program", b.programs)):
        for name, mod in table.items():
            root[f"{kind}__{name}"] = mod
    for i, (_, mod) in enumerate(exports):
        root[f"export__{i}"] = mod
    for name, copies in b.replicas.items():
        root[f"replicas__{name}"] = nn.ModuleList(copies)
    deductions = {system.name: Deduction(system) for system in ir.deductions}
    for name, ded in deductions.items():
        root[f"deduction__{name}"] = ded
    return BuiltModule(
        b.morphisms, b.lets, b.programs, exports, b.algebra, b.replicas, root, deductions
    )
