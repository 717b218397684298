"""The nine composition algebras written out from docs/language.md section 9.

An independent oracle for the runtime's ``quivers.runtime.algebras``: plain Python
floats and nested lists, nothing shared with the code under test. Each algebra is
its table row: how a value p in (0, 1) enters the carrier, times(a, b), plus over
the paths of a composition, and the identity matrix's diagonal and off-diagonal
entries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Matrix = list[list[float]]


def _logsumexp(ts: Sequence[float]) -> float:
    m = max(ts)
    if m == -math.inf:
        return -math.inf
    return m + math.log(sum(math.exp(t - m) for t in ts))


def _noisy_or(ts: Sequence[float]) -> float:
    return 1.0 - math.prod(1.0 - t for t in ts)


@dataclass(frozen=True)
class OracleAlgebra:
    carrier: Callable[[float], float]  # p in (0, 1) -> carrier value
    times: Callable[[float, float], float]
    plus: Callable[[Sequence[float]], float]  # over the paths j of a composition
    one: float  # identity matrix diagonal
    zero: float  # identity matrix off the diagonal


ORACLE: dict[str, OracleAlgebra] = {
    "product_fuzzy": OracleAlgebra(lambda p: p, lambda a, b: a * b, _noisy_or, 1.0, 0.0),
    "markov": OracleAlgebra(lambda p: p, lambda a, b: a * b, math.fsum, 1.0, 0.0),
    "log_prob": OracleAlgebra(math.log, lambda a, b: a + b, _logsumexp, 0.0, -math.inf),
    "max_plus": OracleAlgebra(math.log, lambda a, b: a + b, max, 0.0, -math.inf),
    "tropical": OracleAlgebra(lambda p: -math.log(p), lambda a, b: a + b, min, 0.0, math.inf),
    "boolean": OracleAlgebra(
        lambda p: 1.0 if p > 0.5 else 0.0, lambda a, b: float(a and b), max, 1.0, 0.0
    ),
    "godel": OracleAlgebra(lambda p: p, min, max, 1.0, 0.0),
    "lukasiewicz": OracleAlgebra(lambda p: p, lambda a, b: max(a + b - 1.0, 0.0), max, 1.0, 0.0),
    # a latent relation's entry is its raw weight: the logit of p
    "real": OracleAlgebra(
        lambda p: math.log(p / (1.0 - p)), lambda a, b: a * b, math.fsum, 1.0, 0.0
    ),
}


def carrier(name: str, probs: Matrix) -> Matrix:
    c = ORACLE[name].carrier
    return [[c(p) for p in row] for row in probs]


def compose(name: str, a: Matrix, b: Matrix) -> Matrix:
    """Entry (i, k) is plus over j of times(a[i][j], b[j][k])."""
    alg = ORACLE[name]
    inner = range(len(b))
    return [
        [alg.plus([alg.times(row[j], b[j][k]) for j in inner]) for k in range(len(b[0]))]
        for row in a
    ]


def unit(name: str, n: int) -> Matrix:
    alg = ORACLE[name]
    return [[alg.one if i == j else alg.zero for j in range(n)] for i in range(n)]


def power(name: str, a: Matrix, n: int) -> Matrix:
    """n-fold composition, one factor at a time (n = 0 gives the unit)."""
    out = unit(name, len(a))
    for _ in range(n):
        out = compose(name, out, a)
    return out


def tensor(name: str, a: Matrix, b: Matrix) -> Matrix:
    """``a @ b``: entry ((i, k), (j, l)) is times(a[i][j], b[k][l]), pairs row-major."""
    times = ORACLE[name].times
    return [
        [times(ai[j], bk[ll]) for j in range(len(ai)) for ll in range(len(bk))]
        for ai in a
        for bk in b
    ]


def fan(name: str, a: Matrix, b: Matrix) -> Matrix:
    """``fan(a, b)``: entry (i, (j, l)) is times(a[i][j], b[i][l])."""
    times = ORACLE[name].times
    return [[times(x, y) for x in ai for y in bi] for ai, bi in zip(a, b, strict=True)]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def close(got: Matrix, want: Matrix, rel: float = 1e-5, abs_: float = 1e-6) -> bool:
    """Entry-wise closeness; infinities must match exactly."""
    if len(got) != len(want):
        return False
    for g_row, w_row in zip(got, want, strict=False):
        if len(g_row) != len(w_row):
            return False
        for g, w in zip(g_row, w_row, strict=True):
            if math.isinf(w) or math.isinf(g):
                if g != w:
                    return False
            elif not math.isclose(g, w, rel_tol=rel, abs_tol=abs_):
                return False
    return True
