"""The later spellings accepted next to ours: each parses to the same syntax tree as
our spelling of the same program (spans aside), checks the same, and ``qvr fmt``
keeps the user's spelling."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from quivers.semantic import check_text
from quivers.syntax import ast, parse
from quivers.syntax.formatter import format_source

from .helpers import check_spans

HEAD = "object A : Real 4\nobject B : Real 4\nobject S : FinSet 3\n"

PROGRAM = (
    "object P : Positive 1\nprogram p(x) : P -> P\n    sample m : P <- {}\n    return m\nexport p\n"
)

TUPLE = (
    "object X : Real 1\nobject A : Real 2\nmorphism k : X -> A * X ~ Normal(0.0, 1.0)\n"
    "program p(x) : X -> X\n    {} (a, b) <- k(x)\n    observe y : X <- Normal(b, 1.0)\n"
    "    return y\nexport p\n"
)

# (name, later spelling, our spelling); both sides written in the canonical layout
PAIRS = [
    (
        "let with a bind arrow for a tuple draw",
        TUPLE.format("let"),
        TUPLE.format("sample"),
    ),
    (
        "define for a top-level let",
        HEAD + "morphism f : A -> A [role=kernel] ~ Normal\ndefine g = f >> f\nexport g\n",
        HEAD + "morphism f : A -> A [role=kernel] ~ Normal\nlet g = f >> f\nexport g\n",
    ),
    (
        "keyword family arguments",
        # LogNormal: a Normal draw is not a value of P : Positive 1 (supports nest, issue 11)
        PROGRAM.format("LogNormal(loc=x, scale=0.5)"),
        PROGRAM.format("LogNormal(x, 0.5)"),
    ),
    (
        "keyword family arguments in another order",
        PROGRAM.format("Gamma(rate=2.0, concentration=x)"),
        PROGRAM.format("Gamma(x, 2.0)"),
    ),
    (
        "let with a bind arrow for a draw",
        PROGRAM.format("Gamma(x, 2.0)").replace("sample m : P", "let m : P"),
        PROGRAM.format("Gamma(x, 2.0)"),
    ),
    (
        "a kernel's family call fixes its parameters",
        HEAD + "morphism f : A -> A [role=kernel] ~ Normal(0.0, 0.5)\nexport f\n",
        HEAD + "morphism f : A -> A [role=kernel, loc=0.0, scale=0.5] ~ Normal\nexport f\n",
    ),
    (
        "a kernel's family call by keyword, without a role",
        HEAD + "morphism f : A -> A ~ Normal(scale=0.5, loc=0.0)\nexport f\n",
        HEAD + "morphism f : A -> A [loc=0.0, scale=0.5] ~ Normal\nexport f\n",
    ),
    (
        "composition with a level option",
        "composition markov [level=algebra]\n" + HEAD + "export identity(S)\n",
        "composition markov as algebra\n" + HEAD + "export identity(S)\n",
    ),
    (
        "a morphism without a role is a kernel",
        HEAD + "morphism f : A -> A ~ Normal\nexport f\n",
        HEAD + "morphism f : A -> A [role=kernel] ~ Normal\nexport f\n",
    ),
    (
        "a morphism without a role, with options",
        HEAD + "morphism f : A -> A [scale=0.5] ~ Normal\nexport f\n",
        HEAD + "morphism f : A -> A [role=kernel, scale=0.5] ~ Normal\nexport f\n",
    ),
    (
        "a finite kernel without a role or a family",
        HEAD + "morphism t : S -> S\nexport t\n",
        HEAD + "morphism t : S -> S [role=kernel]\nexport t\n",
    ),
    (
        "a kernel's family call without a role",
        HEAD + "morphism f : A -> A ~ Normal(0.0, 0.5)\nexport f\n",
        HEAD + "morphism f : A -> A [role=kernel, loc=0.0, scale=0.5] ~ Normal\nexport f\n",
    ),
    (
        "let with a bind arrow for a morphism's draw",
        HEAD
        + "morphism f : A -> A ~ Normal\nprogram p(x) : A -> A\n    let m <- f(x)\n"
        + "    return m\nexport p\n",
        HEAD
        + "morphism f : A -> A ~ Normal\nprogram p(x) : A -> A\n    sample m <- f(x)\n"
        + "    return m\nexport p\n",
    ),
    (
        "a Mixture by keyword, its components too",
        PROGRAM.format(
            "Mixture(components=[LogNormal(scale=0.5, loc=x), Gamma(rate=x, concentration=2.0)], "
            "weights=[0.3, 0.7])"
        ),
        PROGRAM.format("Mixture([0.3, 0.7], [LogNormal(x, 0.5), Gamma(2.0, x)])"),
    ),
    (
        "several morphisms without a role in one declaration",
        HEAD + "morphism f, g : A -> A ~ Normal\nexport f >> g\n",
        HEAD
        + "morphism f : A -> A [role=kernel] ~ Normal\n"
        + "morphism g : A -> A [role=kernel] ~ Normal\n"
        + "export f >> g\n",
    ),
    (
        "several objects in one declaration",
        "object A, B : Real 4\nobject S : FinSet 3\nexport identity(A)\n",
        HEAD + "export identity(A)\n",
    ),
    (
        "several morphisms in one declaration",
        HEAD + "morphism f, g : A -> A [role=kernel, scale=0.5] ~ Normal\nexport f >> g\n",
        HEAD
        + "morphism f : A -> A [role=kernel, scale=0.5] ~ Normal\n"
        + "morphism g : A -> A [role=kernel, scale=0.5] ~ Normal\n"
        + "export f >> g\n",
    ),
]


# a whole program in every later spelling at once, and the same program in ours (also
# what tests/server/test_spellings_editor.py opens in the real server)
SPELLINGS = Path(__file__).resolve().parents[1] / "data" / "spellings"
PAIRS.append(
    (
        "a whole program in the later spellings",
        (SPELLINGS / "later.qvr").read_text(),
        (SPELLINGS / "ours.qvr").read_text(),
    )
)


def shape(node: Any) -> Any:
    """A node as nested tuples of its fields, without spans (what 'the same AST' means)."""
    if isinstance(node, ast.Name):
        return node.text
    if isinstance(node, ast.Node):
        fields = [
            (f.name, shape(getattr(node, f.name)))
            for f in dataclasses.fields(node)
            if f.name not in ("span", "options_span")
        ]
        return (type(node).__name__, tuple(fields))
    if isinstance(node, list | tuple):
        return tuple(shape(n) for n in node)
    return node


def tree(text: str) -> Any:
    file = parse(text)
    assert file.diagnostics == []
    return tuple(shape(u.node) for u in file.units())


@pytest.mark.parametrize(("name", "later", "ours"), PAIRS, ids=[p[0] for p in PAIRS])
def test_a_later_spelling_parses_to_our_tree(name, later, ours):
    assert tree(later) == tree(ours)


@pytest.mark.parametrize(("name", "later", "ours"), PAIRS, ids=[p[0] for p in PAIRS])
def test_a_later_spelling_checks_like_ours(name, later, ours):
    got, want = check_text(later), check_text(ours)
    assert [d.code for d in got.diagnostics] == [d.code for d in want.diagnostics] == []
    assert set(got.symbols) == set(want.symbols)
    for symbol in want.symbols:
        assert got.symbols[symbol].info.type == want.symbols[symbol].info.type


@pytest.mark.parametrize(("name", "later", "ours"), PAIRS, ids=[p[0] for p in PAIRS])
def test_the_formatter_keeps_the_users_spelling(name, later, ours):
    assert format_source(later) == later
    messy = later.replace(" = ", "=").replace(", ", " ,  ").replace(" : ", ":")
    assert format_source(messy) == later


def test_a_morphism_without_a_role_is_a_kernel():
    with_role = check_text(HEAD + "morphism f : A -> B [role=kernel] ~ Normal\nexport f\n")
    without = check_text(HEAD + "morphism f : A -> B ~ Normal\nexport f\n")
    assert without.diagnostics == [] == with_role.diagnostics
    assert without.symbols["f"].info.role == "kernel"
    assert without.symbols["f"].info.type == with_role.symbols["f"].info.type
    # between finite sets with no family: the learnable row-stochastic matrix
    matrix = check_text(HEAD + "morphism t : S -> S\nexport t\n")
    assert matrix.diagnostics == [] and matrix.symbols["t"].info.role == "kernel"


def test_a_composition_level_other_than_algebra_is_rejected():
    def diags(options):
        found = check_text(f"composition markov [{options}]\n" + HEAD + "export identity(S)\n")
        return [(d.code, d.message) for d in found.diagnostics]

    ((code, message),) = diags("level=semigroupoid")
    assert code == "E0305" and "semigroupoid" in message and "algebra" in message
    ((code, message),) = diags("depth=2")
    assert code == "E0303" and "'depth'" in message
    ((code, message),) = diags("kind=algebra")
    assert code == "E0303" and "'kind'" in message
    assert diags("level=algebra") == []


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("Normal(x, scale=0.5)", ["positional and keyword", "'scale'"]),
        ("Normal(loc=x, scael=0.5)", ["no parameter 'scael'", "did you mean 'scale'?"]),
        ("Normal(loc=x, loc=x)", ["'loc'", "twice"]),
        ("Normal(loc=x)", ["'scale'", "not given"]),
        ("q(loc=x)", ["'q' is not a family"]),
    ],
)
def test_keyword_arguments_that_do_not_bind_name_the_parameter(call, words):
    found = check_text(PROGRAM.format(call).replace("Positive", "Real"))
    ((code, text),) = [(d.code, d.message + " " + (d.suggestion or "")) for d in found.diagnostics]
    assert code == "E0006"
    for word in words:
        assert word in text


def test_keyword_arguments_of_a_fixed_family_clause():
    later = "object S : FinSet 2\nmorphism r : S -> S [role=latent] ~ Beta(concentration0=2.0, concentration1=1.0)\n"
    ours = "object S : FinSet 2\nmorphism r : S -> S [role=latent] ~ Beta(1.0, 2.0)\n"
    assert tuple(shape(u.node) for u in parse(later).units()) == tuple(
        shape(u.node) for u in parse(ours).units()
    )
    assert format_source(later) == later


def test_each_name_of_a_group_is_its_own_declaration():
    file = parse("object A, B : Real 4\n")
    a, b = file.units()
    assert (a.node.name.text, b.node.name.text) == ("A", "B")
    assert a.node.type is not b.node.type  # no node shared between declarations
    assert (a.node.name.span.col, b.node.name.span.col) == (7, 10)
    twice = check_text("object A, A : Real 4\n")
    assert [d.code for d in twice.diagnostics] == ["E0103"]


def test_a_kernel_with_a_fixed_family_draws_from_exactly_those_parameters():
    import torch

    from quivers.dsl import loads

    torch.manual_seed(0)
    prog = loads("object A : Real 1\nmorphism f : A -> A ~ Normal(1.5, 0.25)\nexport f\n")
    x = torch.randn(4, 1)
    y = torch.tensor([[1.0], [2.0], [1.5], [0.0]])
    want = torch.distributions.Normal(1.5, 0.25).log_prob(y).sum(-1)
    torch.testing.assert_close(prog.morphism.log_prob(x, y), want)
    # on another role the call is a prior, not fixed options: left to the checker
    latent = check_text(
        "object S : FinSet 2\nmorphism r : S -> S [role=latent] ~ Beta(1.0, 2.0)\nexport r\n"
    )
    assert [d.code for d in latent.diagnostics] == ["E0307"]


# ----------------------------------------------------------- the effect system

EFFECT_PROGRAM = (
    "object X : Real 1\n"
    "program p(x) : X -> X\n"
    "    sample m <- Normal(x, 1.0)\n"
    "{}\n"
    "    observe y : X <- Normal(m, 1.0)\n"
    "    return y\n"
    "export p\n"
)


@pytest.mark.parametrize(
    ("text", "line", "word"),
    [
        ("effect Robust\n    shrink : Real -> Real\nobject X : Real 1\n", 0, "effect"),
        ("instance robust : Robust\nobject X : Real 1\n", 0, "instance"),
        (
            "handler h for Robust : Real -> Real [coverage=total]\n"
            "    return x =>\n        return x\n    shrink(x : Real) resumes 1 =>\n"
            "        resume(0.5 * x)\nobject X : Real 1\n",
            0,
            "handler",
        ),
        ("index Status = Observed | Missing\nobject X : Real 1\n", 0, "index"),
        (
            "family M(s : Status) : Type\n    constructor Absent : M(Missing)\nobject X : Real 1\n",
            0,
            "family",
        ),
        (
            "define f(x : Real) : Real !{robust} =\n"
            "    let a <- perform robust.shrink(x)\n    return a\nobject X : Real 1\n",
            0,
            "define",
        ),
        (EFFECT_PROGRAM.format("    let z <- perform random.sample[Real](m)"), 3, "perform"),
        (EFFECT_PROGRAM.format("    perform score.add(m)"), 3, "perform"),
        (
            EFFECT_PROGRAM.format("    handle robust with h in\n        let b <- perform r.s(m)"),
            3,
            "handle",
        ),
        (
            EFFECT_PROGRAM.format("    let c <- f(construct Present(2.0) as M(Observed))"),
            3,
            "construct",
        ),
        (EFFECT_PROGRAM.replace("X -> X", "X -> X [effects=robust]").format(""), 1, "effects"),
        (EFFECT_PROGRAM.format("").replace("X -> X", "X -> X !{robust}"), 1, "!"),
    ],
)
def test_the_effect_system_is_one_diagnostic_per_statement(text, line, word):
    """Each statement of the effect system is one E0005 on its first such word, saying
    it is not supported yet; nothing follows from it (its body, its names)."""
    diags = check_text(text).diagnostics
    assert [(d.code, d.range.line) for d in diags] == [("E0005", line)], diags
    (diag,) = diags
    assert "not supported yet" in diag.message and "effect/handler system" in diag.message
    assert text.split("\n")[line][diag.range.col : diag.range.end_col] == word
    assert format_source(text) is None  # never formatted: it has a syntax-level error


def test_a_program_with_an_effects_option_still_checks_its_steps():
    text = EFFECT_PROGRAM.replace("X -> X", "X -> X [effects=robust]").format(
        "    sample w <- Normal(mm, 1.0)"
    )
    assert [d.code for d in check_text(text).diagnostics] == ["E0005", "E0502"]


def test_effect_words_in_strings_and_names_are_not_the_effect_system():
    text = (
        "object X : Real 1\n"
        "program p(handle) : X -> X\n"
        "    let perform = handle + 1.0\n"
        "    observe y : X <- Normal(perform, 1.0)\n"
        "    return y\n"
        "export p\n"
    )
    assert check_text(text).diagnostics == []


# ------------------------------------------------------------------ tuple draws


def test_a_tuple_draw_binds_each_name_to_its_factor():
    text = TUPLE.format("sample")
    (step,) = [u.node for u in parse(text).units() if getattr(u.node, "parts", None)]
    assert [p.text for p in step.parts] == ["a", "b"] and step.var.text == "a_b"
    assert step.var.span == ast.NO_SPAN  # the site's name is not written anywhere
    assert check_spans(text) > 0
    found = check_text(text)
    assert found.diagnostics == []
    (program,) = [r for _, r in found.results if "a" in r.locals]
    a, b, site = program.locals["a"], program.locals["b"], program.locals["a_b"]
    assert (a.type.name, b.type.name, a.site) == ("A", "X", "a_b")
    assert site.type.structure() == "A * X" and not site.is_global
    assert format_source(text.replace("(a, b)", "( a ,b )")) == text


@pytest.mark.parametrize(
    ("names", "codomain", "words"),
    [
        ("(a, b, c)", "A * X", ["3 names (a, b, c)", "A * X", "2 factor(s)"]),
        ("(a, b)", "X", ["2 names (a, b)", "X (Real 1)", "1 factor(s)"]),
    ],
)
def test_a_tuple_that_does_not_match_the_draw_names_the_types(names, codomain, words):
    text = TUPLE.format("sample").replace("(a, b)", names).replace("A * X ~", codomain + " ~")
    diags = check_text(text).diagnostics
    assert [d.code for d in diags] == ["E0530"]
    for word in words:
        assert word in diags[0].message
    line = text.split("\n")[diags[0].range.line]
    assert line[diags[0].range.col : diags[0].range.end_col] == names[1:-1]


def test_a_tuple_draw_of_leaves_and_of_a_plate():
    leaves = (
        TUPLE.format("sample").replace("(a, b)", "(a, b, c)").replace("A * X ~", "A * (X * X) ~")
    )
    assert check_text(leaves).diagnostics == []  # a nested product names its leaves
    plate = (
        "object K : FinSet 3\nprogram p : K -> K\n    sample (u, v) : K <- Normal(0.0, 1.0)\n"
        "    return u\nexport p\n"
    )
    assert [d.code for d in check_text(plate).diagnostics] == ["E0530"]
    twice = TUPLE.format("sample").replace("    observe y", "    sample a_b <- k(x)\n    observe y")
    assert [d.code for d in check_text(twice).diagnostics] == ["E0506"]
