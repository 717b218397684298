"""Typing of declarations and morphism expressions (spec sections 3-5)."""

from __future__ import annotations

import pytest

from .helpers import diagnose, messages, one, types_of

HEAD = """\
object A : Real 2
object B : Real 3
object C : FinSet 4
object D : FinSet 5
object H : Real 8
morphism f : A -> B [role=kernel] ~ Normal
morphism g : B -> C [role=kernel] ~ Categorical
morphism e : A -> A [role=kernel] ~ Normal
morphism k : C -> D [role=kernel]
morphism cell : A * H -> H [role=kernel, scale=0.1] ~ Normal
morphism r : A -> B [role=kernel, replicate=3] ~ Normal
"""


def typed(expr: str) -> str:
    text = HEAD + f"let t = {expr}\n"
    assert [c for c, _ in diagnose(text) if c != "W0601"] == [], messages(text)
    return types_of(text)["t"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("f", "A -> B"),
        ("f >> g", "A -> C"),
        ("f >> g >> k", "A -> D"),
        ("f @ k", "A * C -> B * D"),
        ("f @ k @ e", "A * C * A -> B * D * A"),
        ("(f @ e) >> (g @ f)", "A * A -> C * B"),
        ("fan(f, e)", "A -> B * A"),
        ("fan(f, e, f >> g)", "A -> B * A * C"),
        ("fan(r)", "A -> B * B * B"),
        ("repeat(e, 3)", "A -> A"),
        ("repeat(e)", "A -> A"),
        ("stack(e, 2)", "A -> A"),
        ("scan(cell)", "A -> H"),
        ("identity(A)", "A -> A"),
        ("identity(A * C)", "A * C -> A * C"),
        ("identity(Real 3)", "Real 3 -> Real 3"),
        ("e >> identity(A) >> f", "A -> B"),
    ],
)
def test_expression_types(expr: str, expected: str):
    assert typed(expr) == expected


def test_objects_and_products():
    text = "object X : Real 2 * (FinSet 3 * Positive 1)\nobject E : {a, b}\nobject U : UnitInterval 2\nobject S : Simplex 3\n"
    assert types_of(text) == {
        "X": "Real 2 * FinSet 3 * Positive 1",
        "E": "{a, b}",
        "U": "UnitInterval 2",
        "S": "Simplex 3",
    }
    assert diagnose(text) == []


def test_compose_mismatch_names_both_types():
    d = one(HEAD + "let t = f >> k\n", "E0401")
    assert "'f': A -> B" in d.message and "'k': C -> D" in d.message
    assert "B (Real 3)" in d.message and "C (FinSet 4)" in d.message
    assert d.range.line == HEAD.count("\n")


def test_named_objects_are_nominal():
    text = "object A : Real 2\nobject A2 : Real 2\nmorphism f : A -> A [role=kernel] ~ Normal\nmorphism g : A2 -> A2 [role=kernel] ~ Normal\nlet t = f >> g\n"
    d = one(text, "E0401")
    assert "A (Real 2)" in d.message and "A2 (Real 2)" in d.message


def test_anonymous_types_are_structural():
    text = "object A : Real 2\nmorphism f : A -> Real 3 [role=kernel] ~ Normal\nmorphism g : Real 3 -> A [role=kernel] ~ Normal\nlet t = f >> g\n"
    assert types_of(text)["t"] == "A -> A"
    assert [c for c, _ in diagnose(text)] == ["W0601"]


def test_fan_parts_must_share_a_domain():
    d = one(HEAD + "let t = fan(f, k)\n", "E0402")
    assert "'f' takes A (Real 2)" in d.message and "'k' takes C (FinSet 4)" in d.message


def test_fan_of_one_needs_replicate():
    d = one(HEAD + "let t = fan(f)\n", "E0406")
    assert "'f'" in d.message


@pytest.mark.parametrize("word", ["repeat(f, 2)", "repeat(f)", "stack(f, 2)"])
def test_repeat_and_stack_need_an_endomorphism(word: str):
    d = one(HEAD + f"let t = {word}\n", "E0403")
    assert "A -> B" in d.message and "A (Real 2)" in d.message and "B (Real 3)" in d.message


@pytest.mark.parametrize("count", ["0", "repeat(e, 0)", "stack(e, 0)"])
def test_count_must_be_positive(count: str):
    expr = count if count != "0" else "repeat(e, 0)"
    d = one(HEAD + f"let t = {expr}\n", "E0405")
    assert "not 0" in d.message


@pytest.mark.parametrize("cell", ["f", "e", "k"])
def test_scan_needs_a_cell(cell: str):
    d = one(HEAD + f"let t = scan({cell})\n", "E0404")
    assert "A * H -> H" in d.message and f"'{cell}'" in d.message


def test_application_outside_a_program():
    one(HEAD + "let t = f(x)\n", "E0407")


def test_errors_do_not_cascade():
    # An unknown name is reported once; the composite's type is unknown, not a second error.
    text = HEAD + "let t = nope >> f >> g\nlet u = t >> k\n"
    assert [c for c, _ in diagnose(text) if c != "W0601"] == ["E0101"]
    assert types_of(text)["t"] == "? -> ?"


# ------------------------------------------------------------------- names


def test_unknown_name_suggests_a_close_one():
    d = one(HEAD + "let t = cel\n", "E0101")
    assert "'cel'" in d.message and d.suggestion == "did you mean 'cell'?"
    assert d.fix and d.fix[0].new_text == "cell"


def test_unknown_object_offers_a_declaration():
    d = one("morphism f : Zed -> Real 1 [role=kernel] ~ Normal\nexport f\n", "E0101")
    assert d.fix and d.fix[0].new_text.startswith("object Zed")


def test_use_before_declaration_names_the_later_line():
    text = "let t = f\nobject A : Real 1\nmorphism f : A -> A [role=kernel] ~ Normal\n"
    d = one(text, "E0102")
    assert "'f'" in d.message and "line 3" in d.message


def test_declared_twice():
    text = "object A : Real 1\nobject B : Real 1\nobject A : Real 2\n"
    d = one(text, "E0103")
    assert d.range.line == 2 and "line 1" in d.message


def test_wrong_kind_of_name():
    d = one(
        "object A : Real 1\nmorphism f : A -> A [role=kernel] ~ Normal\nobject X : f\n", "E0104"
    )
    assert "'f' is a morphism, not an object" in d.message
    d = one("object A : Real 1\nlet t = A\n", "E0104")
    assert "'A' is an object" in d.message


def test_family_name_cannot_be_declared():
    one("object Normal : Real 1\n", "E0105")


# ----------------------------------------------------------------- objects


@pytest.mark.parametrize("text", ["object A : FinSet 0\n", "object A : Real 0\n"])
def test_sizes_are_positive(text: str):
    one(text, "E0201")


def test_enum_elements_are_distinct():
    d = one("object A : {x, y, x}\n", "E0202")
    assert "'x'" in d.message


# --------------------------------------------------------- morphisms, options


M = "object A : Real 2\nobject C : FinSet 3\nobject P : Positive 2\n"


@pytest.mark.parametrize(
    ("decl", "code", "words"),
    [
        ("morphism f : A -> A ~ Categorical", "E0308", ["Categorical"]),  # no role: a kernel
        ("morphism f : A -> A [role=kernal] ~ Normal", "E0302", ["kernal"]),
        ("morphism f : A -> A [role=kernel, scael=0.1] ~ Normal", "E0303", ["scael"]),
        (
            "morphism f : C -> A [role=embed, param_source=linear]",
            "E0304",
            ["param_source", "embed"],
        ),
        ("morphism f : A -> A [role=kernel, rate=1.0] ~ Normal", "E0304", ["rate", "Normal"]),
        ("morphism f : A -> A [role=kernel, replicate=0] ~ Normal", "E0305", ["replicate"]),
        ("morphism f : A -> A [role=kernel, param_source=cubic] ~ Normal", "E0305", ["cubic"]),
        ("morphism f : A -> A [role=kernel, param_source=mlp(0)] ~ Normal", "E0305", ["mlp"]),
        ("morphism f : A -> A [role=kernel, init=-1] ~ Normal", "E0305", ["init"]),
        ("morphism f : A -> A [role=kernel, scale=big] ~ Normal", "E0305", ["scale"]),
        ("morphism f : A -> A [role=kernel] ~ Normall", "E0306", ["Normall"]),
        ("morphism f : C -> A [role=embed] ~ Normal", "E0307", ["embed", "Normal"]),
        # one number per parameter fixes them (a later spelling); fewer is still E0307
        ("morphism f : A -> A [role=kernel] ~ Normal(0.0)", "E0307", ["options"]),
        ("morphism f : C -> C [role=kernel] ~ [[1, 0, 0]]", "E0307", ["observed"]),
        ("morphism f : A -> A [role=kernel] ~ [[1, 0], [0, 1]]", "E0307", ["observed"]),
        ("morphism f : A -> C [role=kernel] ~ Normal", "E0308", ["Normal", "C (FinSet 3)"]),
        ("morphism f : A -> A [role=kernel] ~ Categorical", "E0308", ["Categorical", "A (Real 2)"]),
        # supports nest (issue 11): Exponential into Real 2 is fine, Normal into Positive not
        ("morphism f : A -> P [role=kernel] ~ Normal", "E0308", ["Normal", "P (Positive 2)"]),
        ("morphism f : A -> A [role=embed]", "E0309", ["embedding", "A (Real 2) -> A (Real 2)"]),
        ("morphism f : A -> C [role=latent]", "E0309", ["latent", "A (Real 2) -> C (FinSet 3)"]),
        ("morphism f : A -> A [role=kernel]", "E0310", ["A (Real 2) -> A (Real 2)"]),
        ("morphism f : C -> C [role=observed]", "E0311", ["'f'"]),
        ("morphism f : A -> A [role=kernel, role=kernel] ~ Normal", "E0312", ["role"]),
        ("morphism f : A -> A [role=kernel, scale=0] ~ Normal", "E0313", ["scale", "> 0"]),
        ("morphism f : A -> C [role=observed] ~ [[1, 0, 0]]", "E0314", ["A -> C", "finite sets"]),
        ("morphism f : C -> C [role=observed] ~ [[1, 0, 0]]", "E0314", ["1 x 3", "3 x 3"]),
        (
            "morphism f : A -> A [role=observed] ~ Normal(0.0)",
            "E0504",
            ["Normal(loc, scale)", "1 given"],
        ),
    ],
)
def test_morphism_rules(decl: str, code: str, words: list[str]):
    d = one(M + decl + "\nexport f\n", code)
    for word in words:
        assert word in d.message, d.message
    assert d.range.line == 3


def test_good_morphisms():
    text = M + (
        "morphism a : C -> A [role=embed, init=0.02]\n"
        "morphism b : A -> P [role=kernel, param_source=mlp(32, 16)] ~ LogNormal\n"
        "morphism c : C -> C [role=kernel]\n"
        "morphism d : C -> C [role=latent, replicate=2]\n"
        "morphism o : C -> C [role=observed] ~ [[1, 0, 0], [0, 1, 0], [0, 0, 1]]\n"
        "morphism n : A -> A [role=observed] ~ Normal(0.0, 1.0)\n"
        "morphism s : A -> C [role=kernel, init=xavier] ~ Categorical\n"
        "morphism t : A -> A [role=kernel, param_source=linear, df=3.0] ~ StudentT\n"
        "export a\n"
    )
    assert diagnose(text) == []


def test_option_misspelling_is_suggested():
    d = one(M + "morphism f : A -> A [role=kernel, scael=0.1] ~ Normal\nexport f\n", "E0303")
    assert d.suggestion == "did you mean 'scale'?"


def test_role_misspelling_is_suggested():
    d = one(M + "morphism f : A -> A [role=kernal] ~ Normal\nexport f\n", "E0302")
    assert d.suggestion == "did you mean 'kernel'?"


# --------------------------------------------------------- exports, algebra


def test_export_rules():
    assert [c for c, _ in diagnose("object A : Real 1\nexport A\n")] == ["E0602"]
    text = "object A : Real 1\nmorphism f : A -> A [role=kernel] ~ Normal\n"
    assert diagnose(text) == [("W0601", 1)]
    assert diagnose(text + "export f\nexport f\n") == [("W0603", 4)]
    assert diagnose(text + "export f >> f\n") == []


def test_algebra_rules():
    assert diagnose("composition markov as algebra\n") == []
    d = one("composition markv as algebra\n", "E0701")
    assert d.suggestion == "did you mean 'markov'?"
    assert diagnose("composition markov as algebra\ncomposition godel as algebra\n") == [
        ("E0702", 2)
    ]


def test_rscan_types_like_scan_and_rejects_the_same_cells():
    head = (
        "object T : FinSet 5\nobject E : Real 2\nobject H : Real 3\n"
        "morphism emb : T -> E [role=embed]\n"
        "morphism cell : E * H -> H [role=kernel] ~ Normal\n"
        "morphism bad : E -> H [role=kernel] ~ Normal\n"
    )
    text = head + "let fwd = emb >> scan(cell)\nlet bwd = emb >> rscan(cell)\nexport bwd\n"
    assert diagnose(text) == []
    types = types_of(text)
    assert types["fwd"] == types["bwd"] == "T -> H"
    assert [c for c, _ in diagnose(head + "let b = rscan(bad)\nexport b\n")] == ["E0404"]
