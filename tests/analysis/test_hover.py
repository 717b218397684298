"""Hover: objects, morphisms, combinator expressions, program variables, doc comments."""

from __future__ import annotations

import pytest

from quivers.analysis.hover import hover

from .helpers import REFERENCE, at, doc, text_of, where, with_broken_neighbours


def hover_text(text: str) -> str:
    d, line, col = at(text)
    found = hover(d, line, col)
    assert found is not None, text
    return found.markdown


def test_object_shows_kind_and_size() -> None:
    md = hover_text("object To|ken : FinSet 256\n")
    assert "object Token : FinSet 256" in md
    assert "finite set of 256 elements" in md


def test_continuous_object_shows_dimension() -> None:
    md = hover_text("object Hid|den : Real 128\n")
    assert "Real 128" in md and "dimension 128" in md


def test_named_elements() -> None:
    md = hover_text("object Mo|od : {sad, happy}\n")
    assert "{sad, happy}" in md and "indices 0..1" in md


def test_named_element_shows_its_index() -> None:
    md = hover_text("object Mood : {sad, ha|ppy}\nobject X : Real 2\n")
    assert "happy : Mood" in md and "element 1 of {sad, happy}" in md


def test_morphism_shows_domain_codomain_role_family() -> None:
    text = REFERENCE.replace("morphism cell", "morphism ce|ll")
    md = hover_text(text)
    assert "Embedded * Hidden -> Hidden" in md
    assert "domain: `Embedded * Hidden`" in md
    assert "codomain: `Hidden (Real 128)`" in md
    assert "role: `kernel`" in md
    assert "family: `Normal(loc, scale)`" in md


def test_use_of_a_morphism_hovers_like_its_declaration() -> None:
    text = REFERENCE.replace("scan(cell)", "scan(c|ell)")
    md = hover_text(text)
    assert "morphism cell : Embedded * Hidden -> Hidden" in md


def test_combinator_expression_shows_computed_type() -> None:
    text = REFERENCE.replace("scan(cell)", "sc|an(cell)")
    d, line, col = at(text)
    found = hover(d, line, col)
    assert found is not None
    assert "scan(cell) : Embedded -> Hidden" in found.markdown
    assert text_of(d, found.range) == "scan(cell)"


def test_composition_shows_computed_type() -> None:
    text = REFERENCE.replace("tok_embed >> scan", "tok_embed >|> scan")
    md = hover_text(text)
    assert "tok_embed >> scan(cell) : Token -> Hidden" in md


def test_let_shows_its_arrow() -> None:
    md = hover_text(REFERENCE.replace("let backbone", "let back|bone"))
    assert "let backbone : Token -> Hidden" in md


def test_program_variable_shows_type_and_shape() -> None:
    md = hover_text(REFERENCE.replace("sample h", "sample |h"))
    assert "h : Hidden" in md
    assert "(batch, 128) float" in md
    assert "trajectory" in md  # bound by a scan: the trace is the whole trajectory


def test_observed_variable_and_use() -> None:
    md = hover_text(REFERENCE.replace("return next_token", "return next_t|oken"))
    assert "next_token : Token" in md and "observed" in md
    assert "(batch,) int64" in md


def test_program_parameter() -> None:
    text = (
        "object A : FinSet 3\nobject H : Real 4\n"
        "morphism f : A * H -> H [role=kernel] ~ Normal\n"
        "program p(x, h) : A * H -> H\n    sample z <- f(x, |h)\n    return z\n"
    )
    md = hover_text(text)
    assert "h : H" in md and "parameter" in md and "(batch, 4) float" in md


def test_global_site_is_marked_global() -> None:
    text = (
        "object R : Real 1\nprogram p(x) : R -> R\n    sample sl|ope <- Normal(0.0, 3.0)\n"
        "    let mu = slope * x\n    observe y : R <- Normal(mu, 1.0)\n    return y\n"
    )
    md = hover_text(text)
    assert "slope" in md and "global" in md


def test_doc_comment_is_shown() -> None:
    md = hover_text("#! The token alphabet.\nobject Tok|en : FinSet 3\n")
    assert "The token alphabet." in md
    text = (
        "#! Mixing weights.\nobject A : FinSet 2\nmorphism w : A -> A [role=kernel] ~ Categorical\n"
    )
    assert "Mixing weights." in hover_text(text.replace("object A", "object |A"))
    # a doc comment attaches to the next declaration only
    assert "Mixing weights." not in hover_text(text.replace("morphism w", "morphism |w"))


def test_family_keyword_role_and_option_words() -> None:
    assert "loc" in hover_text(REFERENCE.replace("~ Normal", "~ Nor|mal"))
    assert "kernel" in hover_text(REFERENCE.replace("[role=kernel, scale", "[role=ker|nel, scale"))
    assert "role" in hover_text(REFERENCE.replace("[role=embed]", "[ro|le=embed]"))


def test_nothing_on_blank_or_comment() -> None:
    d, line, col = at("object A : FinSet 2\n|\n")
    assert hover(d, line, col) is None


@pytest.mark.parametrize(
    ("needle", "offset", "expect"),
    [
        ("morphism cell", 10, "Embedded * Hidden -> Hidden"),
        ("scan(cell)", 1, "scan(cell) : Embedded -> Hidden"),
        ("sample h", 7, "h : Hidden"),
        ("object Hidden", 8, "Real 128"),
    ],
)
def test_hover_survives_broken_neighbours(needle: str, offset: int, expect: str) -> None:
    text = with_broken_neighbours(REFERENCE)
    d = doc(text)
    assert any(x.code == "E0001" for x in d.analysis.diagnostics)
    line, col = where(text, needle, offset=offset)
    found = hover(d, line, col)
    assert found is not None and expect in found.markdown
