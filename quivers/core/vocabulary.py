"""The fixed vocabulary of QVR: one table per concept.

Keywords, space kinds, roles, options and their values, algebras, arithmetic
functions and combinators. Plain data shared by the checker, the compiler, the
runtime, the formatter and the editor features (completion, hover and highlighting
list these). Nothing here imports torch. Where a word is also syntax, the lark
grammar (``grammars/qvr.lark``) and the TextMate grammar
(``grammars/qvr.tmLanguage.json``) spell it too, and ``tests/syntax/test_vocabulary.py``
fails when they disagree with these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from quivers.core.families import Domain, fits

# The first word of each top-level statement and of each program step.
DECLARATION_KEYWORDS = (
    "object",
    "morphism",
    "let",
    "define",  # a later spelling of a top-level `let`
    "export",
    "composition",
    "program",
    "deduction",
)
# The parts of a `deduction` block.
DEDUCTION_KEYWORDS = ("atoms", "rule", "lexicon")
STEP_KEYWORDS = ("sample", "observe", "let", "score", "return", "marginalize")
# The first words of the published quivers' effect system (`effect`, `instance` and
# `handler` declarations), which QVR does not support yet: such a statement is one
# E0005, not a cascade of syntax errors.
UNSUPPORTED_DECLARATIONS = {
    "effect": "the effect/handler system",
    "instance": "the effect/handler system",
    "handler": "the effect/handler system",
    # the indexed families and constructors its typed functions take
    "index": "indexed families, used by the effect/handler system",
    "family": "indexed families, used by the effect/handler system",
}
# The same system inside other statements: `perform op.name(...)`, a `handle x with h
# in` step, an effect row `!{...}` or an `[effects=...]` option, `construct C(...)`,
# and typed functions `define f(x : T) : T = ...`. Each is one E0005 for its statement.
UNSUPPORTED_FORMS = {
    "perform": "'perform'",
    "handle": "'handle ... with'",
    "effect_row": "an effect row '!{...}'",
    "effects_option": "the 'effects' option",
    "construct": "'construct' of an indexed family",
    "function": "a function with parameters ('define f(x : T) : T = ...')",
}
# Keywords of the later spellings (docs/language.md section 17): accepted, highlighted
# and hovered, but completion offers only our spelling.
LATER_SPELLING_KEYWORDS = frozenset({"define"})
# Declarations whose name stays visible when the statement does not parse.
NAMED_DECLARATIONS = ("object", "morphism", "let")

# Hover text of the keywords (statements, steps and combinators).
KEYWORD_DOCS: dict[str, str] = {
    "object": "Declares an object: a finite set or a continuous space.",
    "morphism": "Declares a learnable (or fixed) arrow between objects.",
    "let": "Names a morphism expression, or (in a program) an arithmetic value; "
    "`let x <- src` in a program is a later spelling of `sample x <- src`.",
    "define": "A later spelling of a top-level `let`: names a morphism expression.",
    "program": "A probabilistic program; itself a morphism from its domain to its codomain.",
    "export": "The first export is the loaded program's `morphism`.",
    "composition": "Selects the algebra finite-set morphisms compose under.",
    "deduction": "A weighted deduction system over chart items: atoms, rules and a lexicon.",
    "atoms": "The constants of a deduction's terms (other capitalised names are variables).",
    "rule": "rule name : premise, ... |- conclusion, weighted when #[learnable].",
    "lexicon": 'The entries "word" : Category = form that seed the chart at each word.',
    "sample": "A latent site: draws a value from a kernel or an inline family.",
    "observe": "An observed site: conditions on the value supplied for it.",
    "score": "Adds an arithmetic value to the log density (a factor).",
    "return": "The program's value: one variable or a tuple.",
    "marginalize": "marginalize c : K <- Categorical(p) with an indented body: sums the "
    "discrete latent c out of the body's sites exactly, per row, in log space.",
    "fan": "fan(f1, ..., fn): the same input to each part; outputs form a product.",
    "repeat": "repeat(f, n): n-fold composition with shared weights; without n, n_steps at run time.",
    "stack": "stack(f, n): n independent copies composed.",
    "scan": "scan(cell): threads a state across a sequence; cell : A * H -> H gives A -> H.",
    "rscan": "rscan(cell): scan(cell) reading the sequence right to left; its value is the "
    "state after the first position.",
    "identity": "identity(A) : A -> A.",
}


@dataclass(frozen=True)
class SpaceKind:
    """A continuous space ``Kind d``: vectors of dimension d whose entries lie in
    ``domain`` (which is also the runtime's name for the kind)."""

    name: str
    domain: Domain
    doc: str
    # Family supports whose draws a space of this kind can hold (besides its own).
    also_holds: frozenset[Domain] = frozenset()

    def holds(self, support: Domain) -> bool:
        # supports nest (issue 11): a (0, 1) draw is a positive and a real one
        return fits(support, self.domain) or support in self.also_holds


FINSET = "FinSet"  # the finite-set type keyword: `FinSet n`

SPACE_KINDS: dict[str, SpaceKind] = {
    k.name: k
    for k in (
        SpaceKind("Real", Domain.REAL, "real vectors", frozenset({Domain.COUNT})),
        SpaceKind(
            "Positive", Domain.POSITIVE, "vectors of positive reals", frozenset({Domain.COUNT})
        ),
        SpaceKind("UnitInterval", Domain.UNIT, "vectors in (0, 1)"),
        SpaceKind("Simplex", Domain.SIMPLEX, "probability vectors (entries > 0, summing to 1)"),
    )
}
TYPE_KEYWORDS = (FINSET, *SPACE_KINDS)
SPACE_BY_DOMAIN: dict[Domain, str] = {k.domain: k.name for k in SPACE_KINDS.values()}


@cache
def spaces_holding(support: Domain) -> tuple[str, ...]:
    """The space kinds a draw with this support fits, in table order."""
    return tuple(k.name for k in SPACE_KINDS.values() if k.holds(support))


def space_of(support: Domain) -> str | None:
    """The space kind a draw with this support is given when nothing says otherwise:
    the kind of that domain, else the first kind that holds it."""
    if support in SPACE_BY_DOMAIN:
        return SPACE_BY_DOMAIN[support]
    holding = spaces_holding(support)
    return holding[0] if holding else None


ROLES: dict[str, str] = {
    "embed": "deterministic lookup table from a finite set into a continuous space",
    "kernel": "conditional distribution p(y | x); with no family between finite sets, "
    "a learnable row-stochastic matrix",
    "latent": "learnable relation between finite sets with values in (0, 1), "
    "composed by the active algebra",
    "observed": "fixed relation given after '~'",
}
DEFAULT_ROLE = "kernel"  # a morphism without `role` (the later spelling)


@dataclass(frozen=True)
class OptionSpec:
    name: str
    doc: str
    roles: frozenset[str]  # roles that read this option


INIT_SCHEMES = ("zeros", "normal", "xavier")
DEFAULT_MLP_WIDTH = 64


@dataclass(frozen=True)
class ParamSourceKind:
    """A value of the ``param_source`` option."""

    name: str
    doc: str
    widths: bool  # written `name(h1, h2, ...)` with hidden-layer widths


PARAM_SOURCES: dict[str, ParamSourceKind] = {
    p.name: p
    for p in (
        ParamSourceKind("linear", "one affine map", widths=False),
        ParamSourceKind("mlp", "tanh hidden layers", widths=True),
    )
}
DEFAULT_PARAM_SOURCE = ("mlp", (DEFAULT_MLP_WIDTH,))  # kind and hidden widths


def param_source_forms() -> str:
    """How the values of ``param_source`` are written: ``linear or mlp(h1, h2, ...)``."""
    forms = [f"{p.name}(h1, h2, ...)" if p.widths else p.name for p in PARAM_SOURCES.values()]
    return " or ".join(forms)


_ALL = frozenset(ROLES)

OPTIONS: dict[str, OptionSpec] = {
    o.name: o
    for o in (
        OptionSpec("role", "what the morphism is (embed, kernel, latent, observed)", _ALL),
        OptionSpec(
            "replicate",
            "N independent copies, used side by side with fan(name)",
            frozenset({"embed", "kernel", "latent"}),
        ),
        OptionSpec(
            "param_source",
            "how a kernel computes its family's parameters from a continuous input: "
            f"{param_source_forms()}; default mlp({DEFAULT_MLP_WIDTH})",
            frozenset({"kernel"}),
        ),
        OptionSpec(
            "init",
            "standard deviation of the normal initialiser of the parameters, "
            "or one of zeros, normal, xavier",
            frozenset({"embed", "kernel", "latent"}),
        ),
    )
}


@dataclass(frozen=True)
class TemplateKind:
    """What a template parameter ``name : Kind`` of a program takes: a number in
    ``domain``, or (``FinSet``) a finite set given by its size."""

    name: str
    doc: str
    domain: Domain | None  # None: a finite set


TEMPLATE_KINDS: dict[str, TemplateKind] = {
    k.name: k
    for k in (
        TemplateKind("Real", "a number", Domain.REAL),
        TemplateKind("Positive", "a number > 0", Domain.POSITIVE),
        TemplateKind("UnitInterval", "a number in (0, 1)", Domain.UNIT),
        TemplateKind("FinSet", "a finite set, given by its size (a positive integer)", None),
    )
}


@dataclass(frozen=True)
class StepOptionSpec:
    """An option of a program step, ``sample v <- Family(...) [name=value]``.

    ``value`` says what the value must be: ``"finset"`` (a declared finite set, or a
    list of them), ``"ids"`` (integer ids: host data or a finite-set value, or a list
    of them) or ``"reduction"`` (a name of ``MARGINAL_REDUCTIONS``). ``steps`` are the
    step kinds that read it.
    """

    name: str
    doc: str
    value: str
    steps: frozenset[str]


_DRAWS = frozenset({"sample", "observe"})

# The one table of step options: the checker, hover, completion and the formatter's
# tests read it; `marginalize` blocks read `over` and `reduction` too.
STEP_OPTIONS: dict[str, StepOptionSpec] = {
    o.name: o
    for o in (
        StepOptionSpec(
            "over",
            "the event axis of an inline draw: one value of width |K| "
            "(`Dirichlet(1.0) [over=K]` is a simplex over K, `Normal(0.0, 1.0) [over=K]` "
            "|K| independent numbers); on `marginalize`, one latent per element of K",
            "finset",
            _DRAWS | {"marginalize"},
        ),
        StepOptionSpec(
            "iid_over",
            "a plate: one independent draw per element of K, as the annotation "
            "`sample v : K <- ...` gives",
            "finset",
            _DRAWS,
        ),
        StepOptionSpec(
            "via",
            "a per-row lookup: the draw's plate arguments are read at the integer ids "
            "`idx` (host data, or a finite-set value), as `beta[idx]` reads them; on "
            "`marginalize` with over=K, host data naming each row's element of K",
            "ids",
            _DRAWS | {"marginalize"},
        ),
        StepOptionSpec(
            "reduction",
            "how a `marginalize` block reduces over the values it sums out: logsumexp, "
            "the exact log marginal (the default; sum and mean are spelled but rejected "
            "by the block, E0543, as they are not a marginal)",
            "reduction",
            frozenset({"marginalize"}),
        ),
    )
}
# What `[reduction=...]` of a `marginalize` block may be: aggregate of the block's
# log weights over the enumerated values.
MARGINAL_REDUCTIONS: dict[str, str] = {
    "logsumexp": "log of the sum of the weights: the exact log marginal (the default)",
    "sum": "sum of the weights",
    "mean": "mean of the weights",
}
DEFAULT_MARGINAL_REDUCTION = "logsumexp"


@dataclass(frozen=True)
class Algebra:
    name: str
    doc: str


ALGEBRAS: dict[str, Algebra] = {
    a.name: a
    for a in (
        Algebra("product_fuzzy", "noisy-or of products: 1 - prod(1 - a*b) (the default)"),
        Algebra("markov", "sum of products: ordinary probability"),
        Algebra("log_prob", "logsumexp of sums: probabilities in log space"),
        Algebra("tropical", "min of sums: shortest paths"),
        Algebra("max_plus", "max of sums: Viterbi"),
        Algebra("boolean", "or of ands"),
        Algebra("godel", "max of mins"),
        Algebra("lukasiewicz", "max of max(a + b - 1, 0)"),
        Algebra("real", "sum of products over unbounded reals: the plain matrix product"),
    )
}
DEFAULT_ALGEBRA = "product_fuzzy"

# Functions callable in `let` and `score` arithmetic, with their arity.
# `sum` and `mean` reduce over the last axis.
ARITH_FUNCTIONS: dict[str, int] = {
    "sigmoid": 1,
    "tanh": 1,
    "exp": 1,
    "log": 1,
    "softplus": 1,
    "sqrt": 1,
    "abs": 1,
    "sum": 1,
    "mean": 1,
    "ar_filter": 2,
}
REDUCTIONS = frozenset({"sum", "mean"})
# `ar_filter(phi, e)`: the first-order recursion z_1 = e_1, z_t = phi z_{t-1} + e_t over
# the elements of a plate, in order (an AR(1) series from its innovations)
RECURRENCES = frozenset({"ar_filter"})

COMBINATORS = ("fan", "repeat", "stack", "scan", "rscan", "identity")
