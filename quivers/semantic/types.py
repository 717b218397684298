"""Semantic types of QVR: objects (finite sets, spaces, products) and arrows.

Named objects are nominal: two objects declared with the same structure are
different types, which catches an `Obs` passed where a `Latent` is expected.
Anonymous type expressions (``Real 3``, ``A * B``) are structural and match any
type of the same shape. ``UNKNOWN`` stands for a type that could not be worked out
(an error was already reported) and matches everything, so one mistake is
reported once.
"""

from __future__ import annotations

from dataclasses import dataclass

from quivers.core.families import Domain
from quivers.core.vocabulary import SPACE_BY_DOMAIN


@dataclass(frozen=True, slots=True)
class FinSet:
    size: int
    elements: tuple[str, ...] | None = None
    name: str | None = None
    # a template's `K : FinSet` before its size is given: `size` means nothing, and
    # every check that needs it is left to the instantiation (docs/language.md 10.1.1)
    symbolic: bool = False

    def structure(self) -> str:
        if self.elements is not None:
            return "{" + ", ".join(self.elements) + "}"
        return "FinSet ?" if self.symbolic else f"FinSet {self.size}"


@dataclass(frozen=True, slots=True)
class Space:
    kind: str  # a key of quivers.core.vocabulary.SPACE_KINDS
    dim: int | None  # None: not known until run time (host data)
    name: str | None = None
    # a plate value: one value of this space per element of the finite set
    # (`sample beta : K <- Normal(0.0, 5.0)`), shown `Real 1 [K]`
    plate: FinSet | None = None

    def structure(self) -> str:
        text = f"{self.kind} {self.dim if self.dim is not None else '?'}"
        return f"{text} [{show(self.plate)}]" if self.plate is not None else text


def real(dim: int | None) -> Space:
    """``Real dim``: the type of arithmetic values and scores."""
    return Space(SPACE_BY_DOMAIN[Domain.REAL], dim)


@dataclass(frozen=True, slots=True)
class Product:
    factors: tuple[Type, ...]
    name: str | None = None

    def structure(self) -> str:
        return " * ".join(_factor(f) for f in self.factors)


@dataclass(frozen=True, slots=True)
class Unknown:
    name: str | None = None

    def structure(self) -> str:
        return "?"


Type = FinSet | Space | Product | Unknown
UNKNOWN = Unknown()


@dataclass(frozen=True, slots=True)
class Arrow:
    dom: Type
    cod: Type

    def show(self) -> str:
        return f"{show(self.dom)} -> {show(self.cod)}"


def _factor(t: Type) -> str:
    text = show(t)
    return f"({text})" if isinstance(t, Product) and t.name is None else text


def show(t: Type) -> str:
    """How a type is written in source: its name if it has one."""
    return t.name if t.name else t.structure()


def describe(t: Type) -> str:
    """For messages: the name and, for a named type, its structure; a plate its set."""
    if isinstance(t, Space) and t.plate is not None:
        return f"{t.structure()} (one value per element of {describe(t.plate)})"
    if t.name and not isinstance(t, Unknown):
        return f"{t.name} ({t.structure()})"
    return show(t)


def plate_of(t: Type) -> FinSet | None:
    return t.plate if isinstance(t, Space) else None


def with_plate(t: Type, plate: FinSet | None) -> Type:
    """``t`` as a plate over ``plate`` (anonymous: a plate value has no declared name)."""
    if isinstance(t, Space):
        return Space(t.kind, t.dim, None, plate)
    return t


def renamed(t: Type, name: str) -> Type:
    if isinstance(t, FinSet):
        return FinSet(t.size, t.elements, name, t.symbolic)
    if isinstance(t, Space):
        return Space(t.kind, t.dim, name, t.plate)
    if isinstance(t, Product):
        return Product(t.factors, name)
    return t


def product(factors: list[Type]) -> Type:
    """An anonymous product; anonymous products nested in it are flattened."""
    flat: list[Type] = []
    for f in factors:
        if isinstance(f, Product) and f.name is None:
            flat.extend(f.factors)
        else:
            flat.append(f)
    return flat[0] if len(flat) == 1 else Product(tuple(flat))


def factors(t: Type) -> tuple[Type, ...]:
    return t.factors if isinstance(t, Product) else (t,)


def same(a: Type, b: Type) -> bool:
    """Type equality: nominal between named types, structural otherwise."""
    if isinstance(a, Unknown) or isinstance(b, Unknown):
        return True
    if a.name and b.name:
        return a.name == b.name
    if isinstance(a, FinSet) and isinstance(b, FinSet):
        if a.symbolic or b.symbolic:
            return True  # a size not given yet: the instantiation checks it
        return a.size == b.size and (
            a.elements is None or b.elements is None or a.elements == b.elements
        )
    if isinstance(a, Space) and isinstance(b, Space):
        return (
            a.kind == b.kind
            and (a.dim is None or b.dim is None or a.dim == b.dim)
            and _same_plate(a.plate, b.plate)
        )
    if isinstance(a, Product) or isinstance(b, Product):
        # Products compare by their leaves: `E * State` and `E * Cell * Hidden`
        # (with `State : Cell * Hidden`) have the same values.
        xs, ys = leaves(a), leaves(b)
        return len(xs) == len(ys) and all(same(x, y) for x, y in zip(xs, ys, strict=True))
    return False


# Which space kinds lie inside which (as the family supports of quivers.core.families)
_INSIDE: dict[str, frozenset[str]] = {
    "Real": frozenset({"Real"}),
    "Positive": frozenset({"Positive", "Real"}),
    "UnitInterval": frozenset({"UnitInterval", "Positive", "Real"}),
    "Simplex": frozenset({"Simplex", "UnitInterval", "Positive", "Real"}),
}


def kind_inside(given: str, expected: str) -> bool:
    """Whether every value of space kind ``given`` is a value of kind ``expected``."""
    return expected in _INSIDE.get(given, frozenset({given}))


def assignable(given: Type, expected: Type) -> bool:
    """Whether a value of type ``given`` may flow where ``expected`` is wanted.

    Equal types, and two relaxations that change no value: a space whose kind lies
    inside the expected one (a `Positive 1` draw where a `Real 1` is read), and a
    product of continuous spaces where a space of the same total width is expected
    (or the converse), because the values are the same concatenation on the last
    axis. Distinct named spaces stay distinct (nominal).
    """
    if same(given, expected):
        return True
    if isinstance(given, Space) and isinstance(expected, Space):
        if given.name and expected.name:
            return False
        dims = given.dim is None or expected.dim is None or given.dim == expected.dim
        plates = _same_plate(given.plate, expected.plate)
        return dims and plates and kind_inside(given.kind, expected.kind)
    if isinstance(given, Product) or isinstance(expected, Product):
        xs, ys = leaves(given), leaves(expected)
        if len(xs) == len(ys) and all(assignable(x, y) for x, y in zip(xs, ys, strict=True)):
            return True
        # a product against one space of the same total width; two products of
        # different factors (`H * X` for `X * H`) stay different
        if isinstance(given, Product) == isinstance(expected, Product):
            return False
        if not (is_continuous(given) and is_continuous(expected)):
            return False
        wx, wy = width(given), width(expected)
        kinds_fit = all(
            isinstance(x, Space) and isinstance(y, Space) and kind_inside(x.kind, y.kind)
            for x in xs
            for y in ys
        )
        return kinds_fit and (wx is None or wy is None or wx == wy)
    return False


def _same_plate(a: FinSet | None, b: FinSet | None) -> bool:
    if a is None or b is None:
        return a is b
    return same(a, b)


def leaves(t: Type) -> tuple[Type, ...]:
    """The non-product factors of ``t``, nested products flattened, in order."""
    if isinstance(t, Product):
        return tuple(leaf for f in t.factors for leaf in leaves(f))
    return (t,)


def named_parts(t: Type, count: int) -> tuple[Type, ...] | None:
    """The parts that ``count`` names bind in a value of ``t``: its factors, or its
    leaves when there are that many (program parameters, tuple draws); else None."""
    if count == len(factors(t)):
        return factors(t)
    if count == len(leaves(t)):
        return leaves(t)
    return None


def scan_split(dom: Type, cod: Type) -> tuple[Type, Type] | None:
    """For a cell ``dom -> cod`` of the form ``A * H -> H``: (A, H), else None.

    The state may be one factor of ``dom`` (kept with its name) or the trailing
    leaves of ``dom`` when the state is itself a product.
    """
    top = factors(dom)
    if len(top) >= 2 and same(top[-1], cod):
        return product(list(top[:-1])), cod
    xs, hs = leaves(dom), leaves(cod)
    if len(xs) > len(hs) and all(same(x, h) for x, h in zip(xs[-len(hs) :], hs, strict=True)):
        return product(list(xs[: -len(hs)])), cod
    return None


def is_finite(t: Type) -> bool:
    return isinstance(t, FinSet)


def is_continuous(t: Type) -> bool:
    if isinstance(t, Space):
        return True
    if isinstance(t, Product):
        return all(is_continuous(f) for f in t.factors)
    return False


def size_of(t: FinSet) -> int | None:
    """The number of elements; None for a template's set whose size is not given yet."""
    return None if t.symbolic else t.size


def width(t: Type) -> int | None:
    """Length of the last axis of a continuous value of this type."""
    if isinstance(t, Space):
        return t.dim
    if isinstance(t, FinSet):
        return 1
    if isinstance(t, Product):
        total = 0
        for f in t.factors:
            w = width(f)
            if w is None:
                return None
            total += w
        return total
    return None
