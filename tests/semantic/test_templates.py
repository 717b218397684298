"""Template programs, `program gmm(alpha : Real, K : FinSet) : ...`: checked without
their values (a FinSet parameter's size is unknown, so checks that need it wait),
and checked again with them when instantiated."""

from __future__ import annotations

from pathlib import Path

from quivers.semantic import check_text
from quivers.syntax.cache import FrontendCache
from tests.semantic.helpers import analyse, one, program_locals

GMM = (Path(__file__).resolve().parents[1] / "data" / "templates" / "gmm.qvr").read_text(
    encoding="utf-8"
)


def _errors(text: str, values: dict | None = None) -> list[str]:
    analysis = check_text(text, FrontendCache(), values)
    return [d.render("t") for d in analysis.diagnostics if d.severity.value == "error"]


def test_a_template_checks_without_its_values():
    assert _errors(GMM) == []
    types = program_locals(GMM, "gmm")
    assert types["alpha"] == "Positive 1"
    assert types["K"] == "K"
    assert types["mu"] == "Real 1 [K]"
    assert types["probs"] == "Simplex ?"  # its width is |K|, known at instantiation
    symbol = analyse(GMM).symbols["gmm"]
    assert symbol.info.template == (("alpha", "Positive"), ("K", "FinSet"))


def test_with_values_the_sizes_are_known():
    analysis = check_text(GMM, FrontendCache(), {"gmm": {"alpha": 1.5, "K": 3}})
    result = next(r for _, r in analysis.results if r.declares == "gmm")
    assert result.locals["probs"].type.structure() == "Simplex 3"
    assert result.locals["mu"].type.structure() == "Real 1 [K]"


def test_a_size_dependent_mistake_is_reported_at_instantiation():
    text = GMM.replace(
        "sample probs <- Dirichlet(alpha) [over=K]",
        "sample probs : Simplex 3 <- Dirichlet(alpha) [over=K]",
    )
    assert _errors(text) == []  # fits some size
    assert _errors(text, {"gmm": {"alpha": 1.0, "K": 3}}) == []
    [error] = _errors(text, {"gmm": {"alpha": 1.0, "K": 4}})
    assert "E0505" in error and "width 4" in error


def test_a_value_outside_a_familys_domain_is_reported_at_instantiation():
    text = GMM.replace("alpha : Positive", "alpha : Real")
    assert _errors(text) == []
    [error] = _errors(text, {"gmm": {"alpha": -1.0, "K": 3}})
    assert "E0313" in error and "parameter 'alpha'" in error and "must be > 0" in error


def test_a_template_used_as_a_morphism_is_one_diagnostic():
    text = GMM + "let copy = gmm\n"
    diag = one(text, "E0519")
    assert "alpha : Positive, K : FinSet" in diag.message


def test_template_and_factor_parameters_together():
    text = """\
object X : Real 2
program scaled(x, s : Real) : X -> X
    let y = s * x
    return y
export scaled
"""
    assert _errors(text) == []
    types = program_locals(text, "scaled")
    assert types["x"] == "X" and types["s"] == "Real 1" and types["y"] == "Real 2"


def test_calling_a_template_from_a_step_is_one_diagnostic():
    # the gallery's `sample theta <- school_effects(0.6, School)`: not supported yet
    text = """\
object School : FinSet 8
object Effect : Real 1
program school_effects(spread : Real, K : FinSet) : K -> K
    sample z : K <- Normal(0.0, 1.0)
    let effect = spread * z
    return effect
program pooled : School -> School
    sample theta <- school_effects(0.6, School)
    return theta
export pooled
"""
    diag = one(text, "E0519")
    assert "school_effects" in diag.message and "spread : Real, K : FinSet" in diag.message


SHADOWS = """\
object K : FinSet 3
object Rows : FinSet 4
program gmm(alpha : Positive, K : FinSet) : Rows -> Rows
    sample mu : K <- Normal(0.0, 5.0)
    return mu
export gmm
"""


def test_a_template_parameter_named_like_an_object_is_a_warning_on_the_parameter():
    found = one(SHADOWS, "W0106")
    assert found.severity.value == "warning"
    line, col = 2, SHADOWS.splitlines()[2].index("K : FinSet")
    assert (found.range.line, found.range.col, found.range.end_col) == (line, col, col + 1)
    assert found.message == (
        "template parameter 'K : FinSet' shadows the top-level object K (FinSet 3) inside "
        "program 'gmm': every 'K' there is the parameter"
    )
    assert found.suggestion == "rename the parameter (or the object) if they are meant to differ"
    # inside the program K is still the parameter: mu is a plate over it, of unknown size
    assert program_locals(SHADOWS, "gmm")["mu"] == "Real 1 [K]"


def test_a_number_parameter_named_like_a_morphism_names_its_type():
    text = SHADOWS.replace("object K : FinSet 3", "object H : Real 2\n"
                           "morphism alpha : H -> H [role=kernel] ~ Normal")  # fmt: skip
    text = text.replace("K : FinSet) : Rows", "J : FinSet) : Rows").replace("mu : K", "mu : J")
    found = one(text, "W0106")
    assert "'alpha : Positive' shadows the top-level morphism 'alpha' (H -> H)" in found.message


def test_renaming_the_object_clears_the_warning_although_the_program_is_cached():
    cache = FrontendCache()
    assert [d.code for d in analyse(SHADOWS, cache).diagnostics] == ["W0106"]
    renamed = SHADOWS.replace("object K : FinSet 3", "object L : FinSet 3")
    assert analyse(renamed, cache).diagnostics == []
    assert [d.code for d in analyse(SHADOWS, cache).diagnostics] == ["W0106"]
