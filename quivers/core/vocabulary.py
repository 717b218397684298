"""The fixed vocabulary of QVR: roles, options, algebras, arithmetic functions.

Plain data shared by the checker, the runtime, the formatter and the editor
features (completion lists these). Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES: dict[str, str] = {
    "embed": "deterministic lookup table from a finite set into a continuous space",
    "kernel": "conditional distribution p(y | x); with no family between finite sets, "
    "a learnable row-stochastic matrix",
    "latent": "learnable relation between finite sets with values in (0, 1), "
    "composed by the active algebra",
    "observed": "fixed relation given after '~'",
}


@dataclass(frozen=True)
class OptionSpec:
    name: str
    doc: str
    roles: frozenset[str]  # roles that read this option


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
            "linear or mlp(h1, h2, ...); default mlp(64)",
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

INIT_SCHEMES = ("zeros", "normal", "xavier")
DEFAULT_MLP_WIDTH = 64


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
}
REDUCTIONS = frozenset({"sum", "mean"})

COMBINATORS = ("fan", "repeat", "stack", "scan", "identity")
SPACE_KINDS = ("Real", "Positive", "UnitInterval", "Simplex")
