"""The QVR syntax tree.

A file is parsed one *unit* at a time (a declaration, a program header, or one
program step; see ``layout``). Node spans are relative to their unit: lines count
from the unit's first line and offsets from its first character, while columns are
absolute (a unit's text starts at column 0 of its first line). A unit that did not
change keeps its nodes across edits even when lines above it are inserted, which is
what makes re-parsing and re-checking incremental. ``Unit.absolute`` turns a node's
span into a file position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields

from quivers.core.diagnostics import Diagnostic, Range


@dataclass(frozen=True, slots=True)
class Span:
    """A node's extent, relative to its unit (see the module docstring)."""

    line: int
    col: int
    end_line: int
    end_col: int
    offset: int
    end_offset: int


NO_SPAN = Span(0, 0, 0, 0, 0, 0)


@dataclass(slots=True, eq=False)
class Node:
    span: Span


@dataclass(slots=True, eq=False)
class Name(Node):
    text: str  # "" when inserted by error recovery

    @property
    def missing(self) -> bool:
        return not self.text


# ------------------------------------------------------------------------- types


@dataclass(slots=True, eq=False)
class FinSetType(Node):
    size: int
    bare: bool = False  # written `200`, the oldest spelling (the checker reports it)


@dataclass(slots=True, eq=False)
class EnumType(Node):
    elements: list[Name]


@dataclass(slots=True, eq=False)
class SpaceType(Node):
    kind: str  # a key of quivers.core.vocabulary.SPACE_KINDS
    dim: int


@dataclass(slots=True, eq=False)
class TypeRef(Node):
    name: Name


@dataclass(slots=True, eq=False)
class ProductType(Node):
    factors: list[TypeExpr]


TypeExpr = FinSetType | EnumType | SpaceType | TypeRef | ProductType

# ------------------------------------------------------------------- expressions


@dataclass(slots=True, eq=False)
class NumberLit(Node):
    value: float
    text: str


@dataclass(slots=True, eq=False)
class Ref(Node):
    name: Name


@dataclass(slots=True, eq=False)
class Compose(Node):
    first: Expr
    second: Expr


@dataclass(slots=True, eq=False)
class TensorExpr(Node):
    left: Expr
    right: Expr


@dataclass(slots=True, eq=False)
class Fan(Node):
    parts: list[Expr]


@dataclass(slots=True, eq=False)
class Repeat(Node):
    body: Expr
    count: NumberLit | None


@dataclass(slots=True, eq=False)
class Stack(Node):
    body: Expr
    count: NumberLit


@dataclass(slots=True, eq=False)
class Scan(Node):
    cell: Expr
    reverse: bool = False  # `rscan(cell)`: reads the sequence right to left


@dataclass(slots=True, eq=False)
class IdentityExpr(Node):
    type: TypeExpr


@dataclass(slots=True, eq=False)
class Apply(Node):
    """``callee(a, b)``: a morphism applied to bound values, or an inline family."""

    callee: Expr
    args: list[Name | NumberLit | ListArg | Apply]  # a nested call only inside a family's


@dataclass(slots=True, eq=False)
class ListArg(Node):
    """``[0.3, 0.7]`` or ``[Normal(0.0, 1.0), ...]``: a family argument that is a list
    of numbers (a vector), names, or family calls (a ``Mixture``'s components)."""

    items: list[Name | NumberLit | Apply]


Expr = Ref | Compose | TensorExpr | Fan | Repeat | Stack | Scan | IdentityExpr | Apply


def argument_names(args: list[Name | NumberLit | ListArg | Apply]) -> Iterator[Name]:
    """The names among a call's arguments, inside lists and nested calls too."""
    for arg in args:
        if isinstance(arg, Name):
            yield arg
        elif isinstance(arg, Apply):
            yield from argument_names(arg.args)
        elif isinstance(arg, ListArg):
            for item in arg.items:
                if isinstance(item, Name):
                    yield item
                elif isinstance(item, Apply):
                    yield from argument_names(item.args)


# ---------------------------------------------------------------------- options


@dataclass(slots=True, eq=False)
class NumberOpt(Node):
    value: NumberLit


@dataclass(slots=True, eq=False)
class NameOpt(Node):
    name: Name


@dataclass(slots=True, eq=False)
class CallOpt(Node):
    fn: Name
    args: list[NumberLit]


@dataclass(slots=True, eq=False)
class StringOpt(Node):
    text: str


@dataclass(slots=True, eq=False)
class ListOpt(Node):
    """``[A, B]``: several names as one option value (``[over=[School, Subject]]``)."""

    names: list[Name]


OptionValue = NumberOpt | NameOpt | CallOpt | StringOpt | ListOpt


@dataclass(slots=True, eq=False)
class Option(Node):
    name: Name
    value: OptionValue


@dataclass(slots=True, eq=False)
class FamilyRef(Node):
    """``~ Normal`` or ``~ Normal(0.0, 1.0)`` (``args`` is None without parentheses)."""

    name: Name
    args: list[NumberLit] | None


@dataclass(slots=True, eq=False)
class MatrixLit(Node):
    rows: list[list[NumberLit]]


FamilyClause = FamilyRef | MatrixLit

# ------------------------------------------------------------------ declarations


@dataclass(slots=True, eq=False)
class ObjectDecl(Node):
    name: Name
    type: TypeExpr


@dataclass(slots=True, eq=False)
class MorphismDecl(Node):
    name: Name
    dom: TypeExpr
    cod: TypeExpr
    options: list[Option]
    options_span: Span | None
    family: FamilyClause | None


@dataclass(slots=True, eq=False)
class DTerm(Node):
    """A term of a deduction rule: an atom or variable (no args) or ``f(t1, ...)``."""

    head: Name
    args: list[DTerm]


@dataclass(slots=True, eq=False)
class AtomsPart(Node):
    names: list[Name]


@dataclass(slots=True, eq=False)
class RulePart(Node):
    name: Name
    premises: list[DTerm]
    conclusion: DTerm
    learnable: Span | None  # the `#[learnable]` annotation


@dataclass(slots=True, eq=False)
class LexEntry(Node):
    word: Name  # the string's text and span, without the quotes
    category: DTerm
    form: DTerm
    learnable: Span | None


@dataclass(slots=True, eq=False)
class LexiconPart(Node):
    entries: list[LexEntry]


DeductionPart = AtomsPart | RulePart | LexiconPart


@dataclass(slots=True, eq=False)
class DeductionDecl(Node):
    name: Name
    dom: TypeExpr
    cod: TypeExpr
    options: list[Option]
    options_span: Span | None
    parts: list[DeductionPart]


@dataclass(slots=True, eq=False)
class LetDecl(Node):
    name: Name
    expr: Expr


@dataclass(slots=True, eq=False)
class ExportDecl(Node):
    expr: Expr


@dataclass(slots=True, eq=False)
class CompositionDecl(Node):
    algebra: Name
    # `composition N [level=...]` (a later spelling): the options other than the one
    # `level=algebra` that means our spelling, for the checker to reject
    options: list[Option] = field(default_factory=list)
    # `composition LABEL as ALGEBRA`: the label the user gave the composition (shown in
    # hover and the outline; it declares no name)
    label: Name | None = None


@dataclass(slots=True, eq=False)
class TemplateParam(Node):
    """``alpha : Real`` in a program header: a value given at load or call time.
    ``kind`` is a key of ``quivers.core.vocabulary.TEMPLATE_KINDS``."""

    name: Name
    kind: Name


@dataclass(slots=True, eq=False)
class ProgramHeader(Node):
    name: Name
    params: list[Name] | None  # the domain's factors, named; None when unnamed
    dom: TypeExpr
    cod: TypeExpr
    # typed parameters `(alpha : Real, K : FinSet)`: the program is a template
    template: list[TemplateParam] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class ErrorNode(Node):
    """A unit that did not parse: what could still be read of it."""

    keyword: str | None
    name: Name | None


@dataclass(slots=True, eq=False)
class ArgumentError(Node):
    """Keyword arguments that do not bind to a family's parameters (E0006). Only the
    lowering makes these; the parser reports the unit and makes it an ErrorNode."""

    message: str
    suggestion: str | None


@dataclass(slots=True, eq=False)
class DeclGroup(Node):
    """``object A, B : T`` (a later spelling): one declaration per name. Only the
    lowering makes these; the parser turns each into one unit per declaration."""

    decls: list[ObjectDecl] | list[MorphismDecl]


Declaration = ObjectDecl | MorphismDecl | LetDecl | ExportDecl | CompositionDecl

# ------------------------------------------------------------------------- steps


@dataclass(slots=True, eq=False)
class Num(Node):
    value: float


@dataclass(slots=True, eq=False)
class Var(Node):
    name: Name


@dataclass(slots=True, eq=False)
class BinOp(Node):
    op: str
    left: Arith
    right: Arith


@dataclass(slots=True, eq=False)
class Neg(Node):
    operand: Arith


@dataclass(slots=True, eq=False)
class Call(Node):
    fn: Name
    args: list[Arith]


@dataclass(slots=True, eq=False)
class Index(Node):
    """``beta[idx]``: the entries of the plate value ``base`` at the ids ``index``."""

    base: Name
    index: Name


Arith = Num | Var | BinOp | Neg | Call | Index


@dataclass(slots=True, eq=False)
class SampleStep(Node):
    var: Name  # the site's name (for a tuple, its parts' names joined by '_', no span)
    annotation: TypeExpr | None
    source: Expr
    observed: bool  # `observe` rather than `sample`
    # step options, `[over=K, via=idx]` (quivers.core.vocabulary.STEP_OPTIONS)
    options: list[Option] = field(default_factory=list)
    options_span: Span | None = None
    # `sample (a, b) <- k(x)`: the names bound to the factors of the one draw
    parts: list[Name] = field(default_factory=list)

    @property
    def var_span(self) -> Span:
        """Where the bound name or names are written."""
        if not self.parts:
            return self.var.span
        first, last = self.parts[0].span, self.parts[-1].span
        return Span(
            first.line, first.col, last.end_line, last.end_col, first.offset, last.end_offset
        )


@dataclass(slots=True, eq=False)
class LetStep(Node):
    var: Name
    value: Arith


@dataclass(slots=True, eq=False)
class ScoreStep(Node):
    var: Name
    value: Arith


@dataclass(slots=True, eq=False)
class ReturnStep(Node):
    vars: list[Name]
    is_tuple: bool


@dataclass(slots=True, eq=False)
class MarginalizeStep(Node):
    """``marginalize c : K <- Categorical(p) [options]``: the header of a block whose
    body is the deeper-indented steps after it (``Program.body_of``); ``c`` is summed
    out of them exactly."""

    var: Name
    annotation: TypeExpr | None
    source: Expr
    options: list[Option]
    options_span: Span | None


Step = SampleStep | LetStep | ScoreStep | ReturnStep | MarginalizeStep

# ---------------------------------------------------------------- units and files


@dataclass(slots=True, eq=False)
class Unit:
    """One parsed statement of a file, placed at its absolute position.

    ``node`` and ``diagnostics`` (relative spans) may be shared with an earlier parse
    of the same text; ``line``/``offset`` say where the unit is in this file.
    """

    kind: str  # "declaration" | "program_header" | "step"
    node: Node
    line: int
    offset: int
    text: str
    doc: str | None = None
    syntax_errors: tuple[RelDiagnostic, ...] = ()
    depth: int = 0  # how many `marginalize` blocks a step is inside

    def absolute(self, span: Span) -> Range:
        return Range(
            self.line + span.line,
            span.col,
            self.line + span.end_line,
            span.end_col,
            self.offset + span.offset,
            self.offset + span.end_offset,
        )

    @property
    def end_line(self) -> int:
        return self.line + self.text.count("\n")

    @property
    def ok(self) -> bool:
        return not isinstance(self.node, ErrorNode)


@dataclass(frozen=True, slots=True)
class RelDiagnostic:
    """A syntax diagnostic relative to its unit (so it can be cached with it)."""

    code: str
    message: str
    span: Span
    suggestion: str | None = None


@dataclass(slots=True, eq=False)
class Program:
    """A program: its header unit and one unit per step."""

    header: Unit
    steps: list[Unit]

    @property
    def node(self) -> ProgramHeader | ErrorNode:
        return self.header.node  # type: ignore[return-value]

    def body_of(self, index: int) -> list[Unit]:
        """The steps of the block opened by ``steps[index]`` (a ``marginalize``): the
        steps after it that are deeper than it, up to the first that is not."""
        depth = self.steps[index].depth
        body: list[Unit] = []
        for unit in self.steps[index + 1 :]:
            if unit.depth <= depth:
                break
            body.append(unit)
        return body


Item = Unit | Program


@dataclass(frozen=True, slots=True)
class Comment:
    kind: str  # "line" | "doc" | "block"
    text: str
    line: int
    col: int
    offset: int
    end_offset: int


@dataclass(eq=False)
class SourceFile:
    """A parsed file: its top-level items in source order, comments and syntax errors."""

    text: str
    items: list[Item]
    comments: list[Comment]
    diagnostics: list[Diagnostic]
    line_starts: list[int] = field(default_factory=list)

    def units(self) -> list[Unit]:
        out: list[Unit] = []
        for item in self.items:
            if isinstance(item, Program):
                out.append(item.header)
                out.extend(item.steps)
            else:
                out.append(item)
        return out


# ------------------------------------------------------------------ tree walks
# The one generic walk over nodes: the parser's depth limit, the editor's
# nodes-at-a-position and the tests all use it, so a new node type is walked
# correctly everywhere as soon as its fields are declared.

_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
# Fields of these declared types never hold a node (the annotations are strings here).
_LEAF_TYPES = frozenset({"str", "int", "float", "bool", "str | None", "Span", "Span | None"})


def _child_fields(cls: type) -> tuple[str, ...]:
    names = tuple(
        f.name for f in fields(cls) if f.name != "span" and str(f.type) not in _LEAF_TYPES
    )
    _CHILD_FIELDS[cls] = names
    return names


def children(node: Node) -> list[Node]:
    """The nodes directly under ``node``, in field order (lists of lists flattened)."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = _child_fields(type(node))
    out: list[Node] = []
    for name in names:
        value = getattr(node, name)
        if isinstance(value, Node):
            out.append(value)
        elif isinstance(value, list):
            for element in value:
                if isinstance(element, Node):
                    out.append(element)
                elif isinstance(element, list):  # a matrix's rows
                    out.extend(e for e in element if isinstance(e, Node))
    return out


def walk(node: Node) -> Iterator[Node]:
    """Every node under ``node`` (itself included), parents before children, in
    source order. Iterative, so any tree the parser accepts can be walked."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        below = children(current)
        below.reverse()
        stack.extend(below)


def nesting(node: Node) -> int:
    """How deeply the constructs under ``node`` nest, a chain of one operator
    (``f >> g >> h``, ``F @ G @ H``, ``a + b + c``) counting as one level however long
    it is: the quantity the parser's nesting limit bounds (docs/language.md)."""
    return _deepest(node, _continues_chain)


def _continues_chain(parent: Node, child: Node) -> bool:
    if type(child) is not type(parent) or not isinstance(parent, (Compose, TensorExpr, BinOp)):
        return False
    return not isinstance(parent, BinOp) or child.op == parent.op  # type: ignore[attr-defined]


def depth(node: Node) -> int:
    """How many nodes deep the tree under ``node`` is (a leaf is 1)."""
    return _deepest(node, lambda parent, child: False)


def _deepest(node: Node, same_level: Callable[[Node, Node], bool]) -> int:
    """The most levels on a path down from ``node``; a child for which
    ``same_level(parent, child)`` holds stays on its parent's level. Iterative."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, d = stack.pop()
        if d > deepest:
            deepest = d
        for child in children(current):
            stack.append((child, d if same_level(current, child) else d + 1))
    return deepest
