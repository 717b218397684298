"""Checking ``Mixture(weights, [F1(...), ...])`` and list arguments: which families may
be components (one number per coordinate, a support fixed by the family, all the
same), the weights (on the simplex, one per component), and the draw's type."""

from __future__ import annotations

import pytest

from quivers.semantic import check_text

PROGRAM = (
    "object X : Real 1\n"
    "object K : FinSet 4\n"
    "program p(x) : X -> X\n"
    "    sample v : Simplex 2 <- Dirichlet([1.0, 1.0])\n"
    "    sample z{} <- {}\n"
    "    observe y : X <- Normal(x, 1.0)\n"
    "    return y\n"
    "export p\n"
)


def check(source: str, annotation: str = ""):
    return check_text(PROGRAM.format(annotation, source))


def z_type(source: str, annotation: str = "") -> str:
    found = check(source, annotation)
    assert found.diagnostics == [], found.diagnostics
    (result,) = [r for _, r in found.results if "z" in r.locals]
    local = result.locals["z"]
    return f"{local.type.structure()} {'global' if local.is_global else 'per row'}"


@pytest.mark.parametrize(
    ("source", "annotation", "want"),
    [
        ("Mixture([0.3, 0.7], [Normal(0.0, 1.0), Normal(3.0, 0.5)])", "", "Real 1 global"),
        ("Mixture(v, [Normal(x, 1.0), Cauchy(0.0, 2.0)])", "", "Real 1 per row"),
        ("Mixture([0.5, 0.5], [Gamma(2.0, 1.0), LogNormal(0.0, 1.0)])", "", "Positive 1 global"),
        (
            "Mixture([0.5, 0.5], [Beta(2.0, 1.0), Kumaraswamy(1.0, 2.0)])",
            "",
            "UnitInterval 1 global",
        ),
        ("Mixture([0.2, 0.8], [Poisson(1.0), NegativeBinomial(3.0, 0.5)])", "", "Real 1 global"),
        ("Mixture([0.3, 0.7], [Normal(0.0, 1.0), Normal(3.0, 0.5)])", " : Real 5", "Real 5 global"),
        ("Mixture([0.3, 0.7], [Normal(0.0, 1.0), Normal(3.0, 0.5)])", " : K", "Real 1 [K] global"),
        ("Mixture([0.5, 0.5], [Gamma(2.0, 1.0), Exponential(1.0)])", " : Real 1", "Real 1 global"),
    ],
)
def test_mixtures_of_components_of_one_support(source, annotation, want):
    got = z_type(source, annotation)
    assert (
        got == want or got.replace(" [K]", "") + " [K]" == want.replace(" global", "") + " global"
    )


@pytest.mark.parametrize(
    ("source", "code", "words"),
    [
        (
            "Mixture([0.3, 0.7], [Normal(0.0, 1.0), Gamma(2.0, 1.0)])",
            "E0532",
            ["share one support", "Normal draws Real d", "Gamma draws Positive d"],
        ),
        (
            "Mixture([0.5, 0.5], [Normal(0.0, 1.0), Dirichlet([1.0, 1.0])])",
            "E0532",
            ["Dirichlet", "whole vector"],
        ),
        (
            "Mixture([0.5, 0.5], [Normal(0.0, 1.0), MultivariateNormal(x, x)])",
            "E0532",
            ["MultivariateNormal"],
        ),
        (
            "Mixture([0.5, 0.5], [Normal(0.0, 1.0), Uniform(0.0, 1.0)])",
            "E0532",
            ["Uniform's support depends"],
        ),
        ("Mixture([1.0], [Mixture([1.0], [Normal(1.0, 1.0)])])", "E0532", ["do not nest"]),
        (
            "Mixture([0.3, 0.6], [Normal(0.0, 1.0), Normal(1.0, 1.0)])",
            "E0313",
            ["sum to 1", "[0.3, 0.6]"],
        ),
        ("Mixture([1.5, -0.5], [Normal(0.0, 1.0), Normal(1.0, 1.0)])", "E0313", ["non-negative"]),
        (
            "Mixture([0.3, 0.2, 0.5], [Normal(0.0, 1.0), Normal(1.0, 1.0)])",
            "E0531",
            ["3 weights for 2 components"],
        ),
        ("Mixture(0.5, [Normal(0.0, 1.0), Normal(1.0, 1.0)])", "E0531", ["not the number 0.5"]),
        (
            "Mixture(x, [Normal(0.0, 1.0), Normal(1.0, 1.0)])",
            "E0531",
            ["'x' is X (Real 1)", "simplex"],
        ),
        ("Mixture([0.5, 0.5], [Normal(0.0, 1.0), x])", "E0531", ["family call"]),
        ("Mixture([0.5, 0.5], Normal(0.0, 1.0))", "E0531", ["list of family calls"]),
        (
            "Mixture([0.5, 0.5], [Normal(0.0, 1.0), Normel(1.0, 1.0)])",
            "E0306",
            ["'Normel'", "'Normal'"],
        ),
        (
            "Mixture([0.5, 0.5], [Normal(0.0, -1.0), Normal(1.0, 1.0)])",
            "E0313",
            ["scale must be > 0"],
        ),
        ("Mixture([0.5, 0.5], [Normal(0.0, 1.0), Normal(1.0)])", "E0504", ["Normal(loc, scale)"]),
        ("Mixture([1.0])", "E0504", ["takes 2 arguments"]),
        ("Normal([0.5, 0.5], 1.0)", "E0531", ["Normal's loc is one number per coordinate"]),
        ("Dirichlet([1.0, x])", "E0531", ["numbers only"]),
        ("Dirichlet([1.0, -2.0])", "E0313", ["must be > 0", "-2.0"]),
        (
            "Mixture(weights=[0.5, 0.5], comps=[Normal(0.0, 1.0)])",
            "E0006",
            ["'comps'", "'components'"],
        ),
    ],
)
def test_what_a_mixture_rejects_names_the_families_and_types(source, code, words):
    diags = check(source).diagnostics
    assert [d.code for d in diags] == [code], diags
    text = diags[0].message + " " + (diags[0].suggestion or "")
    for word in words:
        assert word in text, text


def test_a_mixture_is_not_a_kernel_family():
    text = "object X : Real 1\nmorphism f : X -> X ~ Mixture\nexport f\n"
    assert [d.code for d in check_text(text).diagnostics] == ["E0307"]


def test_keyword_arguments_of_a_mixture_are_its_positional_call():
    by_keyword = (
        "Mixture(components=[Normal(loc=0.0, scale=1.0), Normal(3.0, 0.5)], weights=[0.3, 0.7])"
    )
    assert z_type(by_keyword) == z_type("Mixture([0.3, 0.7], [Normal(0.0, 1.0), Normal(3.0, 0.5)])")
