"""Error recovery: a broken statement is reported once and never hides the others."""

from __future__ import annotations

import pytest

from .helpers import ast, check_spans, codes, parse, parse_one, units

GOOD = "object A : Real 2\nmorphism f : A -> A [role=kernel] ~ Normal\n"


@pytest.mark.parametrize(
    ("broken", "code"),
    [
        ("let a = fan(f, f", "E0001"),  # missing closing bracket
        ("let b = f >> g)", "E0001"),  # stray closing bracket
        ("object B : Real 3 3", "E0001"),  # stray token
        ("object C $ : Real 2", "E0002"),  # garbage character
        ("let d = f \x01 >> g", "E0002"),  # control character
        ("object \u00e9 : Real 1", "E0002"),  # non-ASCII identifier
        ("morphism g : A -> A [role=kernel ~ Normal", "E0001"),  # unclosed options
        ("object D : FinSet", "E0001"),  # missing size
        ("object : Real 2", "E0001"),  # missing name
        ("let = f", "E0001"),
        ("object E : Real 2 @@@", "E0001"),
        ("morphism h : A -> A [role=observed] ~ [[1, 0]", "E0001"),
        ("composition markov as", "E0001"),
        ("frobnicate the widget", "E0001"),  # not a statement at all
    ],
)
def test_broken_line_is_reported_once_and_others_survive(broken: str, code: str):
    text = GOOD + broken + "\nobject Z : FinSet 4\n"
    assert codes(text) == [(code, 2)]
    found = units(text)
    assert len(found) == 4
    assert isinstance(found[0].node, ast.ObjectDecl)
    assert isinstance(found[1].node, ast.MorphismDecl)
    last = found[3].node
    assert isinstance(last, ast.ObjectDecl) and last.name.text == "Z"
    check_spans(text)


def test_missing_closing_bracket_is_inserted():
    node = parse_one("let a = fan(f, g")
    assert isinstance(node, ast.LetDecl) and isinstance(node.expr, ast.Fan)
    assert [p.name.text for p in node.expr.parts] == ["f", "g"]


def test_missing_name_is_inserted_as_a_missing_name():
    node = parse_one("object : Real 2")
    assert isinstance(node, ast.ObjectDecl)
    assert node.name.missing and isinstance(node.type, ast.SpaceType)


def test_stray_token_is_dropped():
    node = parse_one("object B : Real 3 3")
    assert isinstance(node, ast.ObjectDecl) and node.type.dim == 3  # type: ignore[union-attr]


def test_garbage_character_is_skipped():
    node = parse_one("object C $ : Real 2")
    assert isinstance(node, ast.ObjectDecl) and node.name.text == "C"


def test_unreadable_unit_keeps_keyword_and_name():
    node = parse_one("morphism cell : : : : : : : : :")
    assert isinstance(node, ast.ErrorNode)
    assert node.keyword == "morphism"
    assert node.name is not None and node.name.text == "cell"


def test_unreadable_non_keyword_unit_has_no_name():
    text = "frobnicate the widget"
    node = parse_one(text)
    if isinstance(node, ast.ErrorNode):
        assert node.name is None


def test_broken_steps_do_not_hide_other_steps():
    text = (
        "program p : A -> A\n"
        "    sample x <-\n"
        "    sample <- f\n"
        "    bogus x\n"
        "    let y = (x +\n"
        "    observe z : <- f\n"
        "    return x\n"
    )
    file = parse(text)
    [program] = file.items
    assert isinstance(program, ast.Program)
    assert len(program.steps) == 6
    assert isinstance(program.steps[-1].node, ast.ReturnStep)
    assert [line for _, line in codes(text)] == [1, 2, 3, 4, 5]
    check_spans(text)


def test_one_error_per_unit():
    # Several problems in one statement: the first is reported, the rest are echoes.
    text = "morphism f : : A -> -> B [[ role = = kernel\n"
    assert len(codes(text)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "(((((((((((",
        ")))))]]]]}}}}",
        "object A : " + "(" * 200,
        "let f = " + " >> ".join(["g"] * 500),
        "program p : A -> A\n" + "    sample x <- f\n" * 50,
        "\x00\x01\x02",
        "\ufeffobject A : Real 1",
        "object A : Real 99999999999999999999999",
        'morphism f : A -> B [role=kernel, init="unterminated]\n',
        "#{ #{ nested }# }#\nobject A : Real 1",
        "}#",
        "program",
        "program p(x, : A -> A",
        "    return",
    ],
)
def test_pathological_input_never_raises(text: str):
    file = parse(text)
    for d in file.diagnostics:
        assert d.code in {"E0001", "E0002", "E0003", "E0004"}
    check_spans(text)


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        ("let y = (x +", ast.LetStep),  # a name and a ')'
        ("let z = sum(exp(x", ast.LetStep),  # two ')'
        ("return (x,", ast.ReturnStep),  # a name and a ')'
        ("sample h <- fan(f, (g", ast.SampleStep),  # two ')'
    ],
)
def test_several_missing_tokens_at_the_end_are_inserted(step: str, kind: type):
    text = f"program p : A -> A\n    {step}\n    return x\n"
    program = parse(text).items[0]
    assert isinstance(program, ast.Program)
    node = program.steps[0].node
    assert isinstance(node, kind), node
    assert codes(text) == [("E0001", 1)]
    check_spans(text)


def test_unclosed_declaration_keeps_its_parts():
    node = parse_one("let q = fan(f, (g >> h")
    assert isinstance(node, ast.LetDecl) and isinstance(node.expr, ast.Fan)
    assert isinstance(node.expr.parts[1], ast.Compose)


DEEP_HEAD = "object A : Real 1\nmorphism f : A -> A [role=kernel] ~ Normal\n"


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "let g = " + " >> ".join(["f"] * n),
        lambda n: "let g = " + " @ ".join(["f"] * n),
        lambda n: "let g = " + "repeat(" * n + "f" + ")" * n,
        lambda n: "program p : A -> A\n    let y = " + "-" * n + "1.0\n    return y",
        lambda n: "program p : A -> A\n    let y = " + " + ".join(["1.0"] * n) + "\n    return y",
        lambda n: (
            "program p : A -> A\n    let y = " + "exp(" * n + "1.0" + ")" * n + "\n    return y"
        ),
    ],
    ids=["compose", "tensor", "repeat", "negation", "sum", "calls"],
)
def test_deep_nesting_is_an_error_not_a_crash(make):
    from quivers.semantic import check_text

    for n in (90, 500, 3000):
        text = DEEP_HEAD + make(n) + "\n"
        analysis = check_text(text)  # must not raise RecursionError
        deep = [d for d in analysis.diagnostics if "levels deep" in d.message]
        if n == 90:
            assert deep == []
        else:
            lines = text.split("\n")
            longest = max(range(len(lines)), key=lambda i: len(lines[i]))
            assert [(d.code, d.range.line) for d in deep] == [("E0001", longest)]


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("object A :", "expected a name, 'FinSet'"),
        ("let g =", "expected a name, 'fan'"),
        ("program p : A -> A\n    let z =", "expected a name, a number, '('"),
    ],
)
def test_expected_lists_names_first_and_is_not_cut_short(text: str, starts: str):
    [d] = parse(text + "\n").diagnostics
    assert starts in d.message
    assert "..." not in d.message
    if text.startswith("object"):
        assert "'('" in d.message and "'{'" in d.message


@pytest.mark.parametrize("parts", [99, 240])
def test_a_flat_chain_is_one_level_of_nesting(parts: int):
    # issue 14, item 10: 99 parts of `f >> ... >> f` were refused as "101 levels deep"
    for op in (">>", "@"):
        text = DEEP_HEAD + "let g = " + f" {op} ".join(["f"] * parts) + "\n"
        assert [d.message for d in parse(text).diagnostics] == []


def test_nesting_counts_brackets():
    # ... while 10,000 nested parentheses passed: they nest, whatever the tree says
    text = DEEP_HEAD + "let g = " + "(" * 10_000 + "f" + ")" * 10_000 + "\n"
    (d,) = parse(text).diagnostics
    assert d.code == "E0001" and "nests 10000 levels deep; at most 100" in d.message
    fine = DEEP_HEAD + "let g = " + "(" * 100 + "f" + ")" * 100 + "\n"
    assert parse(fine).diagnostics == []
    text = DEEP_HEAD + "let g = " + "repeat(" * 101 + "f" + ", 2)" * 101 + "\n"
    (d,) = parse(text).diagnostics  # each repeat( adds a level, as in the tree
    assert d.code == "E0001" and "levels deep; at most 100 are supported" in d.message
