"""The lowered, fully resolved form of a checked QVR module.

The compiler turns the checked AST into these plain dataclasses (every name resolved,
every type known, no source spans), and :func:`quivers.runtime.build.build_module`
turns them into ``torch.nn.Module``s. Keeping this boundary plain data means the
runtime can be driven from Python without the front end, and the front end can be
tested without torch. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------- objects (types)


@dataclass(frozen=True)
class FinSetT:
    """The finite set {0, ..., size-1}; values are int64 indices."""

    size: int
    elements: tuple[str, ...] | None = None  # named elements, in index order
    name: str | None = None


@dataclass(frozen=True)
class SpaceT:
    """A continuous space of dimension ``dim``; ``kind`` is its support."""

    kind: str  # the Domain value of a quivers.core.vocabulary.SPACE_KINDS entry
    dim: int
    name: str | None = None


@dataclass(frozen=True)
class ProductT:
    """A product; continuous values concatenate along the last axis."""

    factors: tuple[ObjT, ...]
    name: str | None = None


ObjT = FinSetT | SpaceT | ProductT


def flat_dim(t: ObjT) -> int:
    """Width of a continuous value of type ``t`` along its last axis."""
    if isinstance(t, SpaceT):
        return t.dim
    if isinstance(t, FinSetT):
        return 1
    return sum(flat_dim(f) for f in t.factors)


# ------------------------------------------------------------------ morphisms


@dataclass(frozen=True)
class ParamSource:
    """How a kernel on a continuous domain computes its family's parameters."""

    kind: str  # "linear" | "mlp"
    hidden: tuple[int, ...] = ()


@dataclass(frozen=True)
class MorphismDecl:
    """A declared learnable (or fixed) arrow ``dom -> cod``.

    ``fixed`` maps family parameter names to constants (``scale=0.1``).
    ``observed_family``/``observed_args``/``observed_matrix`` describe the fixed
    relation of ``role=observed``.
    """

    name: str
    dom: ObjT
    cod: ObjT
    role: str  # embed | kernel | latent | observed
    family: str | None = None
    fixed: tuple[tuple[str, float], ...] = ()
    param_source: ParamSource = ParamSource("mlp", (64,))
    replicate: int | None = None
    init: float | str | None = None
    observed_family: str | None = None
    observed_args: tuple[float, ...] = ()
    observed_matrix: tuple[tuple[float, ...], ...] | None = None


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Ref:
    """A declared morphism, a named ``let`` expression, or a program, by name."""

    name: str
    dom: ObjT
    cod: ObjT


@dataclass(frozen=True)
class Compose:
    first: Expr
    second: Expr


@dataclass(frozen=True)
class Tensor:
    """``left @ right``: side by side on the split input."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Fan:
    """Same input to each part; outputs form a product.

    ``replicated`` is set for ``fan(name)`` of a morphism with ``replicate=N``.
    """

    parts: tuple[Expr, ...]
    replicated: str | None = None


@dataclass(frozen=True)
class Repeat:
    body: Expr
    count: int | None  # None: given at call time as n_steps


@dataclass(frozen=True)
class Stack:
    body: Expr
    count: int


@dataclass(frozen=True)
class Scan:
    cell: Expr
    input_type: ObjT
    state_type: ObjT
    reverse: bool = False  # `rscan`: right to left


@dataclass(frozen=True)
class Identity:
    obj: ObjT


Expr = Ref | Compose | Tensor | Fan | Repeat | Stack | Scan | Identity

# ----------------------------------------------------------- program steps


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Var:
    """A program variable, a parameter, or (when ``host``) host data."""

    name: str
    host: bool = False


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * /
    left: Arith
    right: Arith


@dataclass(frozen=True)
class Neg:
    operand: Arith


@dataclass(frozen=True)
class Call:
    fn: str  # one of quivers.core.vocabulary.ARITH_FUNCTIONS
    args: tuple[Arith, ...]


@dataclass(frozen=True)
class RelationRef:
    """A relation between finite sets read as its matrix, in ``rel[ids]``."""

    name: str
    expr: Ref


@dataclass(frozen=True)
class Index:
    """``base[index]``: rows of a plate value, or of a relation's matrix, at integer ids
    (host data or ids)."""

    base: Var | RelationRef
    index: Var


Arith = Num | Var | BinOp | Neg | Call | Index


@dataclass(frozen=True)
class KernelSource:
    """``m`` or ``m(a, b)``: a morphism expression applied to the program input
    (``args`` is None) or to the concatenation of the named values."""

    expr: Expr
    args: tuple[str, ...] | None


@dataclass(frozen=True)
class VectorLit:
    """``[0.3, 0.7]``: a list of numbers given as one vector argument."""

    values: tuple[float, ...]


@dataclass(frozen=True)
class FamilySource:
    """``Family(arg, ...)``: an inline family; arguments are names or numbers, a list
    of numbers for a vector parameter, and a ``Mixture``'s components."""

    family: str
    # each a Num or a Var (an Index for a plate argument read at per-row ids,
    # `[via=idx]`), a VectorLit for a list of numbers, Components for a Mixture's
    args: tuple[Arith | VectorLit | Components, ...]


@dataclass(frozen=True)
class Components:
    """A ``Mixture``'s components: one family call each, in the weights' order."""

    calls: tuple[FamilySource, ...]


@dataclass(frozen=True)
class SampleStep:
    var: str
    source: KernelSource | FamilySource
    value_type: ObjT
    observed: bool  # True for `observe`
    is_global: bool  # reads neither the program input nor any local value
    # a plate: one draw per element of a finite set of this size (a global site of
    # shape (plate, d)); value_type is then the element's type
    plate: int | None = None
    # `sample (a, b) <- ...`: the names bound to the draw's factors, with their types
    parts: tuple[tuple[str, ObjT], ...] = ()
    # inside a marginalize body: `observe x <- m(z)` with x a program parameter scores
    # the input's value (not a site of its own; its density joins the block's)
    observes_input: bool = False
    # `observe v <- scan(cell)` of a forward cell: the forward algorithm's site
    forward: bool = False
    # the plate's finite set as declared (`Resp`), for messages about its size
    plate_set: str | None = None


@dataclass(frozen=True)
class LetStep:
    var: str
    value: Arith
    value_type: ObjT


@dataclass(frozen=True)
class ScoreStep:
    var: str
    value: Arith


@dataclass(frozen=True)
class ReturnStep:
    vars: tuple[str, ...]  # one name, or several for a tuple


@dataclass(frozen=True)
class MarginalizeStep:
    """``marginalize var : K <- prior`` and its body: ``var`` is summed out of the
    body's log density exactly, one latent per row (or per element of a set of size
    ``group``, each row's element given by the host ids ``via``)."""

    var: str
    source: KernelSource | FamilySource
    value_type: FinSetT
    body: tuple[Step, ...]
    group: int | None = None
    via: str | None = None


Step = SampleStep | LetStep | ScoreStep | ReturnStep | MarginalizeStep


@dataclass(frozen=True)
class ProgramDecl:
    name: str
    dom: ObjT
    cod: ObjT
    params: tuple[str, ...]  # names of the domain's factors; () when unnamed
    steps: tuple[Step, ...]
    host_names: tuple[str, ...] = ()  # free names read from the observations dict
    # a template's number parameters and their given values (`alpha : Real`)
    constants: tuple[tuple[str, float], ...] = ()
    # returns the state its last marginalize block sums out: a scan's forward cell
    forward: bool = False


@dataclass(frozen=True)
class LetDecl:
    name: str
    expr: Expr


# ------------------------------------------------------------------ a module


@dataclass(frozen=True)
class ModuleIR:
    """Declarations in source order, the active algebra, and the exports.

    ``exports`` lists exported expressions; the first is the loaded program's
    ``morphism``; later ones that are bare names become attributes.
    """

    morphisms: tuple[MorphismDecl, ...] = ()
    lets: tuple[LetDecl, ...] = ()
    programs: tuple[ProgramDecl, ...] = ()
    exports: tuple[tuple[str | None, Expr], ...] = ()
    algebra: str = "product_fuzzy"
    source_name: str = "<qvr>"
    objects: dict[str, ObjT] = field(default_factory=dict)
    # `deduction` blocks, as quivers.core.deduction.system.DeductionSystem values
    deductions: tuple[Any, ...] = ()
