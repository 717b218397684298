"""Mermaid flowcharts of a program's (or an exported expression's) data flow.

Nodes are the inputs, each morphism or combinator a value passes through (named
expressions are expanded so the chart shows the real pipeline), each site (observed
sites drawn differently), `let`/`score` values and the return. Every node keeps the
source range it came from, so an editor can jump from the chart to the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quivers.analysis import deduction
from quivers.analysis.document import Document
from quivers.core.diagnostics import Range, Severity
from quivers.semantic import types as T
from quivers.syntax import ast

_MAX_EXPANSION = 8


@dataclass(frozen=True, slots=True)
class FlowNode:
    id: str
    label: str
    kind: str  # input | morphism | combinator | site | observed | marginal | value | return
    range: Range | None


@dataclass(slots=True)
class Flowchart:
    target: str | None
    mermaid: str | None
    nodes: list[FlowNode] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    error: str | None = None
    # marginalize blocks, drawn as boxes: (title, the ids of the nodes inside)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)


def targets(doc: Document) -> list[str]:
    """Exported names first, then the other programs, without repeats."""
    names: list[str] = []
    for name in doc.analysis.exports:
        if name is not None and name in doc.symbols and name not in names:
            names.append(name)
    for kind in ("program", "deduction"):
        for name, symbol in doc.symbols.items():
            if symbol.kind == kind and name not in names:
                names.append(name)
    return names


def flowchart(doc: Document, target: str | None = None) -> Flowchart:
    choices = targets(doc)
    name = target or (choices[0] if choices else None)
    if name is None:
        return Flowchart(
            None, None, targets=choices, error="nothing to chart: no export or program"
        )
    symbol = doc.symbols.get(name)
    if symbol is None or symbol.kind == "object":
        return Flowchart(
            name, None, targets=choices, error=f"'{name}' is not a program or morphism"
        )
    errors = [d for d in doc.analysis.diagnostics if d.severity == Severity.ERROR]
    if errors:
        first = errors[0]
        return Flowchart(
            name,
            None,
            targets=choices,
            error=f"line {first.range.line + 1}: {first.message}",
        )
    builder = _Builder(doc)
    item = next((it for it in doc.file.items if _item_name(it) == name), None)
    if isinstance(item, ast.Unit) and isinstance(item.node, ast.DeductionDecl):
        builder.deduction(item, item.node)
    elif isinstance(item, ast.Program):
        builder.program(item)
    else:
        builder.expression(name)
    chart = Flowchart(
        name, builder.mermaid(), builder.nodes, builder.edges, choices, groups=builder.groups
    )
    return chart


def _item_name(item: ast.Item) -> str | None:
    node = item.header.node if isinstance(item, ast.Program) else item.node
    name = getattr(node, "name", None)
    return name.text if isinstance(name, ast.Name) else None


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.nodes: list[FlowNode] = []
        self.edges: list[tuple[str, str]] = []
        self.producers: dict[str, str] = {}  # program variable -> node id
        self.labels: dict[tuple[str, str], list[str]] = {}  # edge -> categories (deductions)
        self._dom: T.Type | None = None  # the domain of the program being drawn
        self.groups: list[tuple[str, list[str]]] = []  # marginalize blocks

    def add(self, label: str, kind: str, rng: Range | None) -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append(FlowNode(node_id, label, kind, rng))
        return node_id

    def edge(self, a: str, b: str) -> None:
        if (a, b) not in self.edges:
            self.edges.append((a, b))

    # ----------------------------------------------------------- deductions

    def deduction(self, unit: ast.Unit, node: ast.DeductionDecl) -> None:
        nodes, edges = deduction.flow(node)
        ranges = deduction.rule_ranges(unit, node)
        ids = {key: self.add(label, kind, ranges.get(key)) for key, label, kind in nodes}
        for a, b, category in edges:
            self.edge(ids[a], ids[b])
            self.labels[(ids[a], ids[b])] = self.labels.get((ids[a], ids[b]), []) + [category]

    # ------------------------------------------------------------- programs

    def program(self, item: ast.Program) -> None:
        header = item.header.node
        assert isinstance(header, ast.ProgramHeader)
        result = self.doc.result_of(item)
        dom = result.symbol.type.dom if result and isinstance(result.symbol.type, T.Arrow) else None  # type: ignore[union-attr]
        dom_range = item.header.absolute(header.dom.span)
        self._dom = dom
        input_id: str | None = None
        if header.params:
            factors = T.factors(dom) if dom is not None else ()
            for i, p in enumerate(header.params):
                t = T.show(factors[i]) if i < len(factors) else "?"
                self.producers[p.text] = self.add(
                    f"{p.text} : {t}", "input", item.header.absolute(p.span)
                )
        else:
            shown = T.show(dom) if dom is not None else "input"
            input_id = self.add(f"input : {shown}", "input", dom_range)
        locals_ = result.locals if result is not None else {}
        open_blocks: list[tuple[int, int]] = []  # (depth, index into groups)
        for unit in item.steps:
            node = unit.node
            while open_blocks and open_blocks[-1][0] >= unit.depth:
                open_blocks.pop()
            first = len(self.nodes)
            if isinstance(node, ast.MarginalizeStep):
                self._marginal(unit, node, input_id, locals_)
                open_blocks.append((unit.depth, len(self.groups) - 1))
            elif isinstance(node, ast.SampleStep):
                self._site(unit, node, input_id, locals_)
            elif isinstance(node, ast.LetStep | ast.ScoreStep):
                word = "let" if isinstance(node, ast.LetStep) else "score"
                text = self._source_text(unit, node.value.span)
                rng = unit.absolute(node.span)
                nid = self.add(f"{word} {node.var.text} = {text}", "value", rng)
                for used in _arith_vars(node.value):
                    self.edge(self._producer(used, locals_, unit), nid)
                self.producers[node.var.text] = nid
            elif isinstance(node, ast.ReturnStep):
                nid = self.add("return", "return", unit.absolute(node.span))
                for name in node.vars:
                    if name.text in self.producers:
                        self.edge(self.producers[name.text], nid)
            if open_blocks and not isinstance(node, ast.MarginalizeStep):
                # what a body step draws is inside its block's box
                self.groups[open_blocks[-1][1]][1].extend(n.id for n in self.nodes[first:])

    def _site(
        self, unit: ast.Unit, node: ast.SampleStep, input_id: str | None, locals_: dict
    ) -> None:
        source = node.source
        local = locals_.get(node.var.text)
        shown = T.show(local.type) if local is not None else "?"
        kind = "observed" if node.observed else "site"
        bound = "(" + ", ".join(p.text for p in node.parts) + ")" if node.parts else node.var.text
        label = f"{bound} : {shown}" + (" (observed)" if node.observed else "")
        if isinstance(source, ast.Apply):
            callee = source.callee
            if isinstance(callee, ast.Ref) and not isinstance(
                self._type_of(callee), T.Arrow
            ):  # an inline family
                text = self._source_text(unit, source.span)
                chain = [self.add(text, "morphism", unit.absolute(source.span))]
            else:
                chain = self._chain(callee, unit, 0)
            feeds = [
                self.producers[a.text]
                for a in ast.argument_names(source.args)  # a Mixture's components' too
                if a.text in self.producers
            ]
            plate = T.plate_of(local.type) if local is not None else None
            if input_id is not None and plate is not None and self._plate_input(plate):
                feeds.append(input_id)  # a plate over the program's domain: one per element
        else:
            chain = self._chain(source, unit, 0)
            feeds = [input_id] if input_id is not None else list(self._param_ids())
        for a, b in zip(chain, chain[1:], strict=False):
            self.edge(a, b)
        for f in feeds:
            if chain:
                self.edge(f, chain[0])
        site = self.add(label, kind, unit.absolute(node.var_span))
        if chain:
            self.edge(chain[-1], site)
        self.producers[node.var.text] = site
        for part in node.parts:
            self.producers[part.text] = site

    def _marginal(
        self, unit: ast.Unit, node: ast.MarginalizeStep, input_id: str | None, locals_: dict
    ) -> None:
        """The prior feeds the summed-out latent; the block's box holds the latent and
        its body (filled in as the body's steps are drawn)."""
        as_site = ast.SampleStep(node.span, node.var, node.annotation, node.source, False)
        self._site(unit, as_site, input_id, locals_)
        latent = self.producers[node.var.text]
        local = locals_.get(node.var.text)
        shown = T.show(local.type) if local is not None else "?"
        index = next(i for i, n in enumerate(self.nodes) if n.id == latent)
        self.nodes[index] = FlowNode(
            latent, f"{node.var.text} : {shown} (summed out)", "marginal", self.nodes[index].range
        )
        self.groups.append((f"marginalize {node.var.text} : {shown} (logsumexp)", [latent]))

    def _plate_input(self, plate: T.FinSet) -> bool:
        dom = self._dom
        return isinstance(dom, T.FinSet) and T.same(dom, plate)

    def _param_ids(self) -> list[str]:
        return [n.id for n in self.nodes if n.kind == "input"]

    def _producer(self, var: str, locals_: dict, unit: ast.Unit) -> str:
        if var not in self.producers:
            local = locals_.get(var)
            label = f"{var} (data)" if local is not None and local.kind == "host" else var
            self.producers[var] = self.add(label, "input", None)
        return self.producers[var]

    def _type_of(self, node: ast.Node) -> object:
        for _, result in self.doc.analysis.results:
            t = result.types.get(id(node))
            if t is not None:
                return t
        return None

    # ---------------------------------------------------------- expressions

    def expression(self, name: str) -> None:
        symbol = self.doc.symbols[name]
        arrow = symbol.info.type
        assert isinstance(arrow, T.Arrow)
        first = self.add(f"input : {T.show(arrow.dom)}", "input", None)
        node = symbol.unit.node
        if isinstance(node, ast.LetDecl):
            chain = self._chain(node.expr, symbol.unit, 0)
        else:
            chain = [self.add(name, "morphism", symbol.unit.absolute(symbol.name_span))]
        last = self.add(f"output : {T.show(arrow.cod)}", "value", None)
        path = [first, *chain, last]
        for a, b in zip(path, path[1:], strict=False):
            self.edge(a, b)

    def _chain(self, expr: ast.Expr, unit: ast.Unit, depth: int) -> list[str]:
        if isinstance(expr, ast.Compose):
            return self._chain(expr.first, unit, depth) + self._chain(expr.second, unit, depth)
        if isinstance(expr, ast.Ref):
            symbol = self.doc.symbols.get(expr.name.text)
            if (
                symbol is not None
                and isinstance(symbol.unit.node, ast.LetDecl)
                and depth < _MAX_EXPANSION
            ):
                return self._chain(symbol.unit.node.expr, symbol.unit, depth + 1)
            return [self.add(expr.name.text, "morphism", unit.absolute(expr.name.span))]
        text = self._source_text(unit, expr.span)
        return [self.add(text, "combinator", unit.absolute(expr.span))]

    def _source_text(self, unit: ast.Unit, span: ast.Span) -> str:
        rng = unit.absolute(span)
        return " ".join(self.doc.text[rng.offset : rng.end_offset].split())

    # --------------------------------------------------------------- output

    def mermaid(self) -> str:
        lines = ["flowchart LR"]
        for n in self.nodes:
            label = _escape(n.label)
            shape = {
                "input": f'(["{label}"])',
                "site": f'(("{label}"))',
                "observed": f'[/"{label}"/]',
                "return": f'{{{{"{label}"}}}}',
                "marginal": f'[["{label}"]]',
            }.get(n.kind, f'["{label}"]')
            lines.append(f"    {n.id}{shape}")
        for i, (title, members) in enumerate(self.groups):
            lines.append(f'    subgraph m{i}["{_escape(title)}"]')
            lines.extend(f"        {member}" for member in members)
            lines.append("    end")
        for a, b in self.edges:
            label = ", ".join(dict.fromkeys(self.labels.get((a, b), [])))
            if label:
                lines.append(f'    {a} -->|"{_escape(label)}"| {b}')
            else:
                lines.append(f"    {a} --> {b}")
        observed = [n.id for n in self.nodes if n.kind == "observed"]
        lines.append("    classDef observed fill:#fde7c8,stroke:#b8660b,stroke-width:2px")
        lines.append("    classDef site fill:#dbeafe,stroke:#1d4ed8")
        if observed:
            lines.append(f"    class {','.join(observed)} observed")
        sites = [n.id for n in self.nodes if n.kind == "site"]
        if sites:
            lines.append(f"    class {','.join(sites)} site")
        return "\n".join(lines) + "\n"


def _escape(label: str) -> str:
    return label.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _arith_vars(node: ast.Arith) -> list[str]:
    if isinstance(node, ast.Var):
        return [node.name.text]
    if isinstance(node, ast.BinOp):
        return _arith_vars(node.left) + _arith_vars(node.right)
    if isinstance(node, ast.Neg):
        return _arith_vars(node.operand)
    if isinstance(node, ast.Call):
        return [v for a in node.args for v in _arith_vars(a)]
    if isinstance(node, ast.Index):
        return [node.base.text, node.index.text]  # the plate and its ids both flow in
    return []
