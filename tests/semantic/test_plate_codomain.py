"""A program over a finite set returning a plate whose elements lie in its codomain:
the published gamma-regression page's ``program gamma_regression : Resp -> Val`` with
``return beta_1`` (``beta_1 : Real 1 [Cat]``, ``Val : Real 1``); docs/language.md 10.7."""

from __future__ import annotations

import pytest

from quivers.semantic import types as T

from .helpers import analyse, diagnose, one

HEAD = """\
object Cat : FinSet 3
object Resp : FinSet 63
object Val : Real 1
object Wide : Real 2
object X : Real 1
"""


def prog(header: str, ret: str = "beta_1") -> str:
    return HEAD + (
        f"{header}\n"
        "    sample beta_0 : Cat <- Normal(0.0, 2.0)\n"
        "    sample beta_1 : Cat <- Normal(0.0, 2.0)\n"
        "    let b0 = beta_0[cat_idx]\n"
        "    let b1 = beta_1[cat_idx]\n"
        "    let alpha = exp(b0 + b1 * x)\n"
        "    observe tally : Resp <- Gamma(alpha, 1.0)\n"
        f"    return {ret}\n"
        "export gamma_regression\n"
    )


GAMMA = prog("program gamma_regression : Resp -> Val")


def test_a_plate_of_codomain_values_is_returned_from_a_program_over_a_finite_set():
    assert diagnose(GAMMA) == []
    symbol = analyse(GAMMA).symbols["gamma_regression"]
    assert symbol.info.returns is not None and T.show(symbol.info.returns) == "Real 1 [Cat]"
    arrow = symbol.info.arrow()
    assert arrow is not None and T.show(arrow.cod) == "Real 1 [Cat]"


@pytest.mark.parametrize("ret", ["alpha", "b1"])
def test_a_per_row_value_of_the_codomain_needs_no_plate_rule(ret):
    text = prog("program gamma_regression : Resp -> Val", ret)
    assert diagnose(text) == []
    assert analyse(text).symbols["gamma_regression"].info.returns is None


def test_a_plate_whose_elements_are_not_in_the_codomain_is_e0508_with_the_fix():
    d = one(prog("program gamma_regression : Resp -> Wide"), "E0508")
    assert "Real 1 [Cat]" in d.message and "Wide (Real 2)" in d.message
    assert d.suggestion is not None and "declare the codomain Real 1" in d.suggestion
    assert (d.range.line, d.range.col) == (12, 4)  # the return step


def test_a_plate_from_a_program_over_rows_of_a_space_is_e0508_with_the_fix():
    d = one(prog("program gamma_regression(x) : X -> Val"), "E0508")
    assert "Real 1 [Cat]" in d.message and "Val (Real 1)" in d.message
    assert d.suggestion is not None
    assert "`K -> Real 1`" in d.suggestion and "`beta_1[ids]`" in d.suggestion


def test_a_finite_set_codomain_other_than_the_domain_stays_e0508():
    text = HEAD.replace("object Val : Real 1\n", "") + prog(
        "program gamma_regression : Resp -> Cat"
    ).removeprefix(HEAD)
    d = one(text, "E0508")
    assert "Cat (FinSet 3)" in d.message
