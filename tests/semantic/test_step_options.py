"""Step options `[over=K, iid_over=L, via=idx, reduction=r]`: what the checker makes of
them (types, plates, sites) and one diagnostic per mistake, naming the types."""

from __future__ import annotations

import pytest

from tests.semantic.helpers import analyse, one, program_locals

PRELUDE = """\
object Component : FinSet 3
object K : FinSet 4
object D : FinSet 2
object X : Real 2
object Rows : FinSet 5
"""


def _prog(*steps: str, ret: str = "v") -> str:
    body = "".join(f"    {s}\n" for s in steps)
    return f"{PRELUDE}program p : Rows -> Rows\n{body}    return {ret}\nexport p\n"


def _types(*steps: str, ret: str = "v") -> dict[str, str]:
    text = _prog(*steps, ret=ret)
    errors = [d for d in analyse(text).diagnostics if d.severity.value == "error"]
    assert not errors, [d.render("t") for d in errors]
    return program_locals(text, "p")


# ------------------------------------------------------------------- meanings


def test_over_is_the_event_axis_of_the_draw():
    types = _types(
        "sample v <- Dirichlet(1.0) [over=Component]",
        "sample z <- Normal(0.0, 1.0) [over=D]",
        "sample s : Simplex 3 <- Dirichlet(2.0)",
    )
    assert types["v"] == "Simplex 3"
    assert types["z"] == "Real 2"
    assert types["s"] == "Simplex 3"


def test_iid_over_is_the_plate_spelling():
    by_option = _types("sample v <- Normal(0.0, 1.0) [iid_over=K]")
    by_annotation = _types("sample v : K <- Normal(0.0, 1.0)")
    assert by_option["v"] == by_annotation["v"] == "Real 1 [K]"


def test_over_and_iid_over_together_make_a_plate_of_vectors():
    types = _types(
        "sample v : K <- Dirichlet(0.5) [over=Component, iid_over=K]",
        "sample w <- Normal(0.0, 1.0) [over=D, iid_over=K]",
        "let r = w[g]",
    )
    assert types["v"] == "Simplex 3 [K]"
    assert types["w"] == "Real 2 [K]"
    assert types["r"] == "Real 2"


def test_the_annotation_may_name_the_event_set():
    # the gallery's `sample initial_row : State <- Dirichlet(1.0) [over=State]`
    assert _types("sample v : Component <- Dirichlet(1.0) [over=Component]")["v"] == "Simplex 3"


def test_via_reads_plate_arguments_per_row():
    types = _types(
        "sample mu : K <- Normal(0.0, 1.0)",
        "sample sd <- HalfNormal(1.0)",
        "observe v <- Normal(mu, sd) [via=group]",
    )
    assert types["v"] == "Real 1"
    assert types["group"] == "K"  # host data: ids of K
    analysis = analyse(
        _prog(
            "sample mu : K <- Normal(0.0, 1.0)",
            "observe v <- Normal(mu, 1.0) [via=group]",
        )
    )
    program = next(r for item, r in analysis.results if r.locals)
    assert program.locals["group"].kind == "host"
    assert not program.locals["v"].is_global


def test_via_takes_a_bound_finite_set_value_of_the_plate():
    types = _types(
        "sample mu : K <- Normal(0.0, 1.0)",
        "sample w <- Dirichlet(1.0) [over=K]",
        "sample k : K <- Categorical(w)",
        "observe v <- Normal(mu, 1.0) [via=k]",
    )
    assert types["k"] == "K" and types["v"] == "Real 1"


# ---------------------------------------------------------------- diagnostics


@pytest.mark.parametrize(
    ("step", "code", "words"),
    [
        ("sample v <- Normal(0.0, 1.0) [ovr=K]", "E0303", "did you mean 'over'"),
        ("sample v <- Normal(0.0, 1.0) [iid_ovr=K]", "E0303", "did you mean 'iid_over'"),
        ("sample v <- Normal(0.0, 1.0) [over=K, over=D]", "E0312", "given twice"),
        ("sample v <- Normal(0.0, 1.0) [reduction=logsumexp]", "E0304", "marginalize"),
        ("sample v <- Normal(0.0, 1.0) [over=3]", "E0305", "the number 3"),
        ("sample v <- Normal(0.0, 1.0) [over=X]", "E0305", "X (Real 2)"),
        ("sample v <- Normal(0.0, 1.0) [over=[K, D]]", "E0305", "one finite set"),
        ("sample v <- Normal(0.0, 1.0) [over=Nowhere]", "E0101", "unknown object"),
        ("sample v <- Categorical(w) [over=K]", "E0304", "Categorical draws ids"),
        ("sample v <- Normal(0.0, 1.0) [via=g]", "E0304", "no argument of Normal is a plate"),
        ("sample v <- Dirichlet(1.0)", "E0504", "width must be given"),
        ("sample v : Simplex 4 <- Dirichlet(1.0) [over=Component]", "E0505", "width 3"),
        ("sample v : D <- Normal(0.0, 1.0) [iid_over=K]", "E0505", "options name K"),
    ],
)
def test_each_mistake_is_one_diagnostic(step: str, code: str, words: str):
    steps = [step]
    if "Categorical(w)" in step:
        steps = ["sample w <- Dirichlet(1.0) [over=Component]", step]
    diag = one(_prog(*steps), code)
    assert words in diag.message or words in (diag.suggestion or ""), diag.render("t")


def test_an_unknown_option_suggests_the_right_spelling_as_a_quick_fix():
    diag = one(_prog("sample v <- Normal(0.0, 1.0) [ovr=K]"), "E0303")
    assert diag.fix and diag.fix[0].new_text == "over"


def test_a_bad_reduction_is_reported_for_marginalize_only_steps():
    # `reduction` belongs to marginalize; on a draw it is not read (E0304), whatever its value
    diag = one(_prog("sample v <- Normal(0.0, 1.0) [reduction=logsumexpp]"), "E0304")
    assert "reduction" in diag.message


def test_options_on_a_morphism_source_are_not_read():
    text = PRELUDE + (
        "morphism f : X -> X ~ Normal\n"
        "program q(x) : X -> X\n"
        "    sample v <- f(x) [over=K]\n"
        "    return v\n"
        "export q\n"
    )
    diag = one(text, "E0304")
    assert "inline family" in diag.message


def test_a_variable_as_a_set_names_its_type():
    diag = one(
        _prog("sample s <- Normal(0.0, 1.0)", "sample v <- Normal(0.0, 1.0) [over=s]"),
        "E0305",
    )
    assert "variable of type Real 1" in diag.message


def test_via_with_ids_of_another_set():
    diag = one(
        _prog(
            "sample mu : K <- Normal(0.0, 1.0)",
            "sample w <- Dirichlet(1.0) [over=D]",
            "sample c <- Categorical(w)",
            "observe v <- Normal(mu, 1.0) [via=c]",
        ),
        "E0517",
    )
    assert "ids of K" in diag.message


def test_via_and_iid_over_exclude_each_other():
    diag = one(
        _prog(
            "sample mu : K <- Normal(0.0, 1.0)",
            "sample v <- Normal(mu, 1.0) [via=g, iid_over=K]",
        ),
        "E0304",
    )
    assert "one draw per row" in diag.message


def test_option_width_clash_with_an_argument():
    diag = one(
        _prog("sample m : Real 4 <- Normal(0.0, 1.0)", "sample v <- Normal(m, 1.0) [over=D]"),
        "E0505",
    )
    assert "width 2" in diag.message and "Real 4" in diag.message
