"""Kinds in type comparisons, nested supports and the gallery's families (issue 11)."""

from __future__ import annotations

import pytest

from quivers.core.families import FAMILIES

from .helpers import diagnose, messages, one, program_locals

HEAD = """\
object K : FinSet 3
object X : Real 1
object H : Real 4
object U : UnitInterval 4
"""


def prog(*steps: str, header: str = "program p : X -> X") -> str:
    return HEAD + header + "\n" + "".join(f"    {s}\n" for s in steps) + "export p\n"


def test_a_continuous_draw_never_becomes_a_finite_set_value():
    # annotated with a finite set, a continuous family is a plate: one real per element
    text = prog("sample z : K <- Normal(0.0, 1.0)", "return z", header="program p : X -> K")
    d = one(text, "E0508")
    assert "K (FinSet 3)" in d.message and "Real 1 [K]" in d.message
    assert program_locals(text, "p")["z"] == "Real 1 [K]"


def test_a_plate_draw_does_not_flow_into_a_finite_set_argument():
    text = HEAD + (
        "morphism head : K -> X [role=kernel] ~ Normal\n"
        "program p : X -> X\n"
        "    sample z : K <- Normal(0.0, 1.0)\n"
        "    sample w <- head(z)\n"
        "    return w\n"
        "export p\n"
    )
    d = one(text, "E0503")
    assert "Real 1 [K]" in d.message and "K (FinSet 3)" in d.message


@pytest.mark.parametrize(
    ("step", "shown"),
    [
        ("sample z : K <- Gamma(2.0, 1.0)", "Positive 1 [K]"),
        ("sample z : K <- Beta(2.0, 2.0)", "UnitInterval 1 [K]"),
        ("sample z : K <- Poisson(3.0)", "Real 1 [K]"),
    ],
)
def test_other_non_finite_families_into_a_finite_set_are_plates(step, shown):
    text = prog(step, "return z", header="program p : X -> K")
    assert one(text, "E0508")
    assert program_locals(text, "p")["z"] == shown


def test_bernoulli_into_a_larger_finite_set_is_an_error():
    d = one(
        prog("sample z : K <- Bernoulli(0.3)", "return z", header="program p : X -> K"), "E0505"
    )
    assert "K (FinSet 3)" in d.message and "Bernoulli" in d.message


def test_discrete_families_into_finite_sets_stay_clean():
    text = """\
object Coin : FinSet 2
object X : Real 1
program p : X -> Coin
    sample c : Coin <- Bernoulli(0.3)
    return c
export p
"""
    assert diagnose(text) == []


@pytest.mark.parametrize(
    ("family", "cod"), [("LogitNormal", "H"), ("Exponential", "X"), ("Beta", "H"), ("Gamma", "H")]
)
def test_a_support_inside_the_codomain_is_accepted(family, cod):
    text = HEAD + f"morphism g : X -> {cod} [role=kernel] ~ {family}\nexport g\n"
    assert diagnose(text) == []


def test_the_converse_stays_an_error_and_hints_only_fitting_families():
    text = HEAD + "morphism g : X -> U [role=kernel] ~ Normal\nexport g\n"
    d = one(text, "E0308")
    assert "UnitInterval" in d.message
    hint = d.suggestion or ""
    assert "Beta" in hint and "Normal" not in hint.split(": ")[1].split(", ")


def test_families_for_real_do_not_list_discrete_ones():
    text = HEAD + "morphism g : X -> H [role=kernel] ~ Categorical\nexport g\n"
    d = one(text, "E0308")
    assert d.suggestion is not None and "families for Real" in d.suggestion
    for name, fam in FAMILIES.items():
        if fam.discrete:
            assert name not in d.suggestion.split(":")[1].split(", "), name


def test_inline_draw_into_a_wider_space_keeps_its_own_support():
    text = prog("sample s : X <- Exponential(1.0)", "return s")
    assert diagnose(text) == []
    assert program_locals(text, "p")["s"] == "X"


def test_unknown_inline_family_is_one_diagnostic_with_a_suggestion():
    d = one(prog("sample s <- HalfCauchi(1.0)", "return s"), "E0306")
    assert d.message == "unknown family 'HalfCauchi'"
    assert d.suggestion == "did you mean 'HalfCauchy'?"


GALLERY = [
    "sample a <- Uniform(-1.0, 1.0)",
    "sample a <- HalfCauchy(1.0)",
    "sample a <- Cauchy(0.0, 1.0)",
    "sample a <- HalfStudentT(3.0, 1.0)",
    "sample a <- InverseGamma(2.0, 1.0)",
    "sample a <- Weibull(1.0, 1.5)",
    "sample a <- Laplace(0.0, 1.0)",
    "sample a <- Logistic(0.0, 1.0)",
    "sample a <- Gumbel(0.0, 1.0)",
    "sample a <- Pareto(1.0, 2.0)",
    "sample a <- GeneralizedPareto(0.0, 1.0, 0.2)",
    "sample a <- Kumaraswamy(2.0, 3.0)",
    "sample a <- Chi(3.0)",
    "sample a <- FisherSnedecor(3.0, 5.0)",
    "sample a <- TruncatedNormal(0.0, 1.0, -1.0, 2.0)",
    "sample a <- NegativeBinomial(3.0, 0.4)",
    "sample a <- BetaBinomial(2.0, 3.0, 10.0)",
    "sample a <- Binomial(10.0, 0.3)",
    "sample a <- ContinuousBernoulli(0.3)",
    "sample a <- RelaxedBernoulli(0.5, 0.3)",
]


@pytest.mark.parametrize("step", GALLERY)
def test_gallery_families_check_inline(step):
    assert diagnose(prog(step, "return a")) == []


def test_multivariate_families_take_their_width_from_the_arguments():
    text = """\
object Dim : Real 3
object X : Real 1
program p(x) : X -> Dim
    sample eta <- HalfNormal(2.0)
    sample L : Dim <- LKJCholesky(eta)
    let m = mu + 0.0
    observe y : Dim <- MultivariateNormal(m, L)
    return y
export p
"""
    assert diagnose(text) == []
    assert program_locals(text, "p")["L"] == "Dim"


def test_lkj_needs_an_annotation_for_its_dimension():
    d = one(prog("sample L <- LKJCholesky(2.0)", "return L"), "E0504")
    assert "dimension" in d.message


def test_a_kernel_must_fix_what_it_cannot_learn():
    text = HEAD + "morphism g : X -> H [role=kernel] ~ Binomial\nexport g\n"
    d = one(text, "E0315")
    assert "total_count" in d.message and d.suggestion and "[total_count=" in d.suggestion
    fixed = HEAD + "morphism g : X -> H [role=kernel, total_count=5] ~ Binomial\nexport g\n"
    assert diagnose(fixed) == []


def test_matrix_families_are_inline_only():
    text = HEAD + "morphism g : X -> H [role=kernel] ~ LKJCholesky\nexport g\n"
    assert "inline" in one(text, "E0307").message


def test_messages_name_the_family_support():
    text = prog("sample z : U <- Normal(0.0, 1.0)", "return z", header="program p : X -> U")
    [d] = messages(text)
    assert d.code == "E0505" and "Normal" in d.message and "U (UnitInterval 4)" in d.message


PLATE = """\
object Group : FinSet 3
object Other : FinSet 4
object X : Real 1
object Y : Real 1
program p(x) : X -> Y
    sample beta : Group <- Normal(0.0, 5.0)
    sample s <- HalfNormal(1.0)
    STEP
    observe y : Y <- Normal(b, s)
    return y
export p
"""


def test_indexing_a_plate_by_host_ids_is_per_row():
    text = PLATE.replace("STEP", "let b = beta[group]")
    assert diagnose(text) == []
    assert program_locals(text, "p")["b"] == "Real 1"
    assert program_locals(text, "p")["beta"] == "Real 1 [Group]"


def test_indexing_a_value_that_is_no_plate_is_one_diagnostic():
    text = PLATE.replace("STEP", "let b = s[group]")
    d = one(text, "E0517")
    assert "'s'" in d.message and "not a plate" in d.message


def test_indexing_with_ids_of_another_set_is_one_diagnostic():
    text = PLATE.replace("program p(x) : X -> Y", "program p(g) : Other -> Y").replace(
        "STEP", "let b = beta[g]"
    )
    d = one(text, "E0517")
    assert "Other (FinSet 4)" in d.message and "Group (FinSet 3)" in d.message
