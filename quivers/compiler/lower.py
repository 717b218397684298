"""Lowering a checked module to the runtime IR (``quivers.runtime.ir``).

The checker has already resolved every name and typed every expression; this pass
only reads its results and rewrites them as plain IR dataclasses. It never runs on
a module with errors.
"""

from __future__ import annotations

from quivers.core.deduction.system import DeductionSystem
from quivers.core.vocabulary import DEFAULT_PARAM_SOURCE, FINSET, PARAM_SOURCES, SPACE_KINDS
from quivers.runtime import ir
from quivers.semantic import types as T
from quivers.semantic.deductions import system_of
from quivers.semantic.model import Analysis, UnitResult
from quivers.syntax import ast

_UNKNOWN_DIM = 0  # a host-data width known only at run time


def obj(t: T.Type) -> ir.ObjT:
    if isinstance(t, T.FinSet):
        return ir.FinSetT(t.size, t.elements, t.name)
    if isinstance(t, T.Space):
        dim = t.dim if t.dim is not None else _UNKNOWN_DIM
        return ir.SpaceT(SPACE_KINDS[t.kind].domain.value, dim, t.name)
    if isinstance(t, T.Product):
        return ir.ProductT(tuple(obj(f) for f in t.factors), t.name)
    raise ValueError("cannot lower a type that was not worked out")


class _Lowerer:
    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    def types(self, result: UnitResult, node: ast.Node) -> T.Arrow:
        t = result.types.get(id(node))
        if not isinstance(t, T.Arrow):
            raise ValueError("expression was not typed")
        return t

    # ----------------------------------------------------------- expressions

    def expr(self, result: UnitResult, node: ast.Expr) -> ir.Expr:
        if isinstance(node, ast.Ref):
            arrow = self.types(result, node)
            return ir.Ref(node.name.text, obj(arrow.dom), obj(arrow.cod))
        if isinstance(node, ast.Compose):
            return ir.Compose(self.expr(result, node.first), self.expr(result, node.second))
        if isinstance(node, ast.TensorExpr):
            return ir.Tensor(self.expr(result, node.left), self.expr(result, node.right))
        if isinstance(node, ast.Fan):
            parts = tuple(self.expr(result, p) for p in node.parts)
            replicated = None
            if len(node.parts) == 1 and isinstance(node.parts[0], ast.Ref):
                replicated = node.parts[0].name.text
            return ir.Fan(parts, replicated)
        if isinstance(node, ast.Repeat):
            count = int(node.count.value) if node.count is not None else None
            return ir.Repeat(self.expr(result, node.body), count)
        if isinstance(node, ast.Stack):
            return ir.Stack(self.expr(result, node.body), int(node.count.value))
        if isinstance(node, ast.Scan):
            cell = self.types(result, node.cell)
            split = T.scan_split(cell.dom, cell.cod)
            assert split is not None, "the checker accepted this scan"
            cell_ir = self.expr(result, node.cell)
            return ir.Scan(cell_ir, obj(split[0]), obj(split[1]), node.reverse)
        if isinstance(node, ast.IdentityExpr):
            arrow = self.types(result, node)
            return ir.Identity(obj(arrow.dom))
        raise ValueError(f"cannot lower {type(node).__name__}")

    # ------------------------------------------------------------- morphisms

    def morphism(self, node: ast.MorphismDecl, result: UnitResult) -> ir.MorphismDecl:
        info = result.symbol
        assert info is not None and isinstance(info.type, T.Arrow)
        fixed: list[tuple[str, float]] = []
        source = ir.ParamSource(*DEFAULT_PARAM_SOURCE)
        replicate: int | None = None
        init: float | str | None = None
        for option in node.options:
            key, value = option.name.text, option.value
            if key == "replicate" and isinstance(value, ast.NumberOpt):
                replicate = int(value.value.value)
            elif key == "param_source":
                # The checker accepted it: a known name, or a call of one that takes widths.
                if isinstance(value, ast.NameOpt) and not PARAM_SOURCES[value.name.text].widths:
                    source = ir.ParamSource(value.name.text, ())
                elif isinstance(value, ast.CallOpt):
                    widths = tuple(int(a.value) for a in value.args)
                    source = ir.ParamSource(value.fn.text, widths)
            elif key == "init":
                if isinstance(value, ast.NumberOpt):
                    init = value.value.value
                elif isinstance(value, ast.NameOpt):
                    init = value.name.text
            elif key != "role" and isinstance(value, ast.NumberOpt):
                fixed.append((key, value.value.value))
        observed_family = None
        observed_args: tuple[float, ...] = ()
        matrix = None
        family = info.family
        if info.role == "observed":
            family = None
            clause = node.family
            if isinstance(clause, ast.MatrixLit):
                matrix = tuple(tuple(c.value for c in row) for row in clause.rows)
            elif isinstance(clause, ast.FamilyRef):
                observed_family = clause.name.text
                observed_args = tuple(a.value for a in clause.args or [])
        return ir.MorphismDecl(
            name=node.name.text,
            dom=obj(info.type.dom),
            cod=obj(info.type.cod),
            role=info.role or "kernel",
            family=family,
            fixed=tuple(fixed),
            param_source=source,
            replicate=replicate,
            init=init,
            observed_family=observed_family,
            observed_args=observed_args,
            observed_matrix=matrix,
        )

    # -------------------------------------------------------------- programs

    def program(
        self, item: ast.Program, result: UnitResult, values: dict[str, float | int]
    ) -> ir.ProgramDecl:
        header = item.header.node
        assert isinstance(header, ast.ProgramHeader)
        info = result.symbol
        assert info is not None and isinstance(info.type, T.Arrow)
        locals_ = result.locals
        steps: list[ir.Step] = []
        # the open marginalize blocks: (depth, header, its body so far)
        blocks: list[tuple[int, ast.MarginalizeStep, list[ir.Step]]] = []

        def close() -> None:
            depth, header, body = blocks.pop()
            local = locals_[header.var.text]
            assert isinstance(local.type, T.FinSet), "the checker typed the latent"
            group = via = None
            for option in header.options:
                value = option.value
                name = value.names[0] if isinstance(value, ast.ListOpt) else value
                name = name.name if isinstance(name, ast.NameOpt) else name
                assert isinstance(name, ast.Name), "the checker read the options"
                if option.name.text == "over":
                    over = self.analysis.symbols[name.text].info.type
                    assert isinstance(over, T.FinSet)
                    group = over.size
                elif option.name.text == "via":
                    via = name.text
            value_type = obj(local.type)
            assert isinstance(value_type, ir.FinSetT)
            block = ir.MarginalizeStep(
                header.var.text,
                self.source(result, header.source),
                value_type,
                tuple(body),
                group,
                via,
            )
            (blocks[-1][2] if blocks else steps).append(block)

        for unit in item.steps:
            node = unit.node
            while blocks and blocks[-1][0] >= unit.depth:
                close()
            out = blocks[-1][2] if blocks else steps
            if isinstance(node, ast.MarginalizeStep):
                blocks.append((unit.depth, node, []))
            elif isinstance(node, ast.SampleStep):
                local = locals_[node.var.text]
                plate = T.plate_of(local.type)
                out.append(
                    ir.SampleStep(
                        node.var.text,
                        self.source(result, node.source, _via(node)),
                        obj(local.type),
                        node.observed,
                        local.is_global,
                        plate.size if plate is not None else None,
                        tuple((p.text, obj(locals_[p.text].type)) for p in node.parts),
                        observes_input=local.kind == "param",
                        forward=local.kind == "forward",
                        plate_set=T.show(plate) if plate is not None else None,
                    )
                )
            elif isinstance(node, ast.LetStep):
                local = locals_[node.var.text]
                out.append(
                    ir.LetStep(node.var.text, self.arith(result, node.value), obj(local.type))
                )
            elif isinstance(node, ast.ScoreStep):
                out.append(ir.ScoreStep(node.var.text, self.arith(result, node.value)))
            elif isinstance(node, ast.ReturnStep):
                steps.append(ir.ReturnStep(tuple(n.text for n in node.vars)))
                break
        while blocks:
            close()
        hosts = tuple(name for name, v in locals_.items() if v.kind == "host")
        params = tuple(p.text for p in header.params) if header.params else ()
        constants = tuple(
            (name, float(values[name])) for name, kind in info.template if kind != FINSET
        )
        return ir.ProgramDecl(
            header.name.text,
            obj(info.type.dom),
            obj(info.returns if info.returns is not None else info.type.cod),
            params,
            tuple(steps),
            hosts,
            constants,
            forward=info.forward,
        )

    def source(
        self, result: UnitResult, node: ast.Expr, via: str | None = None
    ) -> ir.KernelSource | ir.FamilySource:
        if isinstance(node, ast.Apply):
            callee = node.callee
            if isinstance(callee, ast.Ref) and not isinstance(
                result.types.get(id(callee)), T.Arrow
            ):
                return self.family_source(result, callee.name.text, node.args, via)
            names = tuple(a.text for a in node.args if isinstance(a, ast.Name))
            return ir.KernelSource(self.expr(result, callee), names)
        return ir.KernelSource(self.expr(result, node), None)

    def family_arg(
        self, result: UnitResult, arg: ast.Name | ast.NumberLit, via: str | None
    ) -> ir.Arith:
        """An inline family's argument; under ``[via=idx]`` a plate argument is read at
        the row's id, exactly as ``arg[idx]`` is (``ir.Index``)."""
        if isinstance(arg, ast.NumberLit):
            return ir.Num(arg.value)
        local = result.locals.get(arg.text)
        if via is not None and local is not None and T.plate_of(local.type) is not None:
            ids = result.locals.get(via)
            return ir.Index(
                ir.Var(arg.text), ir.Var(via, host=ids is not None and ids.kind == "host")
            )
        return ir.Var(arg.text)

    def family_source(
        self,
        result: UnitResult,
        family: str,
        args: list[ast.Name | ast.NumberLit | ast.ListArg | ast.Apply],
        via: str | None = None,
    ) -> ir.FamilySource:
        """An inline family's arguments: numbers and bound names, a list of numbers as
        one vector, a Mixture's list of family calls as its components."""
        out: list[ir.Arith | ir.VectorLit | ir.Components] = []
        for a in args:
            if isinstance(a, ast.NumberLit | ast.Name):
                out.append(self.family_arg(result, a, via))
            elif isinstance(a, ast.Apply):  # the checker reports a call outside a list
                raise AssertionError(f"a family call as an argument of {family}")
            elif all(isinstance(i, ast.NumberLit) for i in a.items):
                out.append(ir.VectorLit(tuple(i.value for i in a.items)))  # type: ignore[union-attr]
            else:
                calls = []
                for item in a.items:
                    assert isinstance(item, ast.Apply) and isinstance(item.callee, ast.Ref)
                    name = item.callee.name.text
                    calls.append(self.family_source(result, name, item.args, via))
                out.append(ir.Components(tuple(calls)))
        return ir.FamilySource(family, tuple(out))

    def arith(self, result: UnitResult, node: ast.Arith) -> ir.Arith:
        if isinstance(node, ast.Num):
            return ir.Num(node.value)
        if isinstance(node, ast.Var):
            local = result.locals.get(node.name.text)
            return ir.Var(node.name.text, host=local is not None and local.kind == "host")
        if isinstance(node, ast.BinOp):
            return ir.BinOp(node.op, self.arith(result, node.left), self.arith(result, node.right))
        if isinstance(node, ast.Neg):
            return ir.Neg(self.arith(result, node.operand))
        if isinstance(node, ast.Index):
            ids = result.locals.get(node.index.text)
            arrow = result.types.get(id(node.base))
            base: ir.Var | ir.RelationRef = ir.Var(node.base.text)
            if node.base.text not in result.locals and isinstance(arrow, T.Arrow):
                name = node.base.text  # a relation's rows
                base = ir.RelationRef(name, ir.Ref(name, obj(arrow.dom), obj(arrow.cod)))
            return ir.Index(
                base, ir.Var(node.index.text, host=ids is not None and ids.kind == "host")
            )
        return ir.Call(node.fn.text, tuple(self.arith(result, a) for a in node.args))


def _via(node: ast.SampleStep) -> str | None:
    """The ids of a draw's ``[via=idx]`` option (the checker accepted it)."""
    for option in node.options:
        if option.name.text == "via" and isinstance(option.value, ast.NameOpt):
            return option.value.name.text
    return None


def lower(
    analysis: Analysis,
    source_name: str = "<qvr>",
    values: dict[str, dict[str, float | int]] | None = None,
) -> ir.ModuleIR:
    """The IR of a module that checked without errors. A template program is lowered
    only with the values of its parameters (``values``, checked with them); without,
    it and its export are left out: it is built when it is called."""
    values = values or {}
    lo = _Lowerer(analysis)
    morphisms: list[ir.MorphismDecl] = []
    lets: list[ir.LetDecl] = []
    programs: list[ir.ProgramDecl] = []
    exports: list[tuple[str | None, ir.Expr]] = []
    objects: dict[str, ir.ObjT] = {}
    deductions: list[DeductionSystem] = []
    for item, result in analysis.results:
        if isinstance(item, ast.Program):
            info = result.symbol
            if info is not None and info.template:
                if info.template and result.declares not in values:
                    continue  # a template without its values: built when called
                assert result.declares is not None
                programs.append(lo.program(item, result, values[result.declares]))
                continue
            programs.append(lo.program(item, result, {}))
            continue
        node = item.node
        if isinstance(node, ast.ObjectDecl) and result.symbol is not None:
            assert not isinstance(result.symbol.type, T.Arrow)
            objects[node.name.text] = obj(result.symbol.type)
        elif isinstance(node, ast.MorphismDecl):
            morphisms.append(lo.morphism(node, result))
        elif isinstance(node, ast.LetDecl):
            lets.append(ir.LetDecl(node.name.text, lo.expr(result, node.expr)))
        elif isinstance(node, ast.DeductionDecl):
            deductions.append(system_of(node))
        elif isinstance(node, ast.ExportDecl):
            bare = node.expr.name.text if isinstance(node.expr, ast.Ref) else None
            symbol = analysis.symbols.get(bare) if bare is not None else None
            if symbol is not None and symbol.info.template and bare not in values:
                continue  # an uncompiled template (see above)
            exports.append((bare, lo.expr(result, node.expr)))
    return ir.ModuleIR(
        tuple(morphisms),
        tuple(lets),
        tuple(programs),
        tuple(exports),
        analysis.algebra,
        source_name,
        objects,
        tuple(deductions),
    )
