"""Spans (relative to units, placed by ``Unit.absolute``), the unit cache, doc comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from quivers.syntax.cache import FrontendCache

from .helpers import ast, cache_stats, check_range, check_spans, parse, parse_one, units, walk

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples" / "source").glob("*.qvr"))

EVERYTHING = """\
#! The token set.
object Token : FinSet 256
object Color : {red, green, blue}
object Pair : Real 2 * (Positive 3 * UnitInterval 1)
object S : Simplex 4
composition markov as algebra
morphism f : Token -> Pair [role=embed, init=0.02]
morphism g : Pair -> Pair [role=kernel, param_source=mlp(32, 16), scale=0.5] ~ Normal
morphism rel : Color -> Color [role=observed] ~ [[1, 0, 0], [0, 1, 0], [0, -0.5, 1e-3]]
morphism c : Pair -> Token [role=kernel, init="xavier"] ~ Categorical
let chain = f >> repeat(g, 3) >> stack(g, 2) >> repeat(g) >> c
let wide = fan(g, g) >> (g @ g)
let ident = identity(Pair * S)
program p(x, h) : Token * Pair -> Pair
\tsample a <- scan(g)
    sample b : Pair <- g(a, h)
    sample s <- Normal(0.0, 1.5)
    let y = -a * (2.0 + sum(b)) / exp(s) - 1e-3
    score lp = log(y)
    observe o : Token <- c(b)
    return (a, b)
export p
export chain
"""


def test_every_node_span_is_consistent_with_the_text():
    assert check_spans(EVERYTHING) > 150


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_spans(path: Path):
    check_spans(path.read_text(encoding="utf-8"))


def test_spans_are_relative_to_their_unit():
    text = "object A : Real 2\n\n\nobject B : Real 3\n"
    first, second = units(text)
    assert isinstance(first.node, ast.ObjectDecl) and isinstance(second.node, ast.ObjectDecl)
    # Same relative position inside each unit...
    assert first.node.name.span.line == second.node.name.span.line == 0
    assert first.node.name.span.offset == second.node.name.span.offset == 7
    # ...placed at different file positions.
    r = second.absolute(second.node.name.span)
    assert (r.line, r.col, r.offset) == (3, 7, text.index("B :"))


def test_multiline_unit_spans():
    text = "object X : Real 1\nmorphism f : X ->\n    X [role=kernel]\n  ~ Normal\n"
    check_spans(text)
    unit = units(text)[1]
    assert isinstance(unit.node, ast.MorphismDecl)
    r = unit.absolute(unit.node.family.span)  # type: ignore[union-attr]
    assert (r.line, r.col) == (3, 4)
    assert text[r.offset : r.end_offset] == "Normal"


def test_tab_columns_are_characters():
    text = "program p : A -> A\n\tsample x <- f\n\treturn x\n"
    check_spans(text)
    step = units(text)[1]
    assert isinstance(step.node, ast.SampleStep)
    r = step.absolute(step.node.var.span)
    assert (r.line, r.col) == (1, 8)  # "\tsample " is eight characters


def test_diagnostic_ranges_are_inside_the_document():
    text = "object A : Real 2 $\nlet f = fan(g,\nprogram\n    return (x,\n#{ open"
    file = parse(text)
    assert file.diagnostics
    for d in file.diagnostics:
        check_range(text, file.line_starts, d.range)


def test_node_kinds_of_the_full_program():
    kinds = {type(n).__name__ for u in units(EVERYTHING) for n in walk(u.node)}
    assert {
        "FinSetType", "EnumType", "SpaceType", "TypeRef", "ProductType", "Ref", "Compose",
        "TensorExpr", "Fan", "Repeat", "Stack", "Scan", "IdentityExpr", "Apply", "NumberOpt",
        "NameOpt", "CallOpt", "StringOpt", "Option", "FamilyRef", "MatrixLit", "ObjectDecl",
        "MorphismDecl", "LetDecl", "ExportDecl", "CompositionDecl", "ProgramHeader",
        "Num", "Var", "BinOp", "Neg", "Call", "SampleStep", "LetStep", "ScoreStep",
        "ReturnStep", "NumberLit", "Name",
    } <= kinds  # fmt: skip
    assert all(u.ok for u in units(EVERYTHING))
    assert parse(EVERYTHING).diagnostics == []


def test_operator_precedence_and_associativity():
    node = parse_one("let e = a >> b @ c >> d")
    assert isinstance(node, ast.LetDecl)
    e = node.expr
    # (a >> (b @ c)) >> d
    assert isinstance(e, ast.Compose) and isinstance(e.first, ast.Compose)
    assert isinstance(e.first.second, ast.TensorExpr)
    step = units("program p : A -> A\n    let y = a - b - c * d\n")[1].node
    assert isinstance(step, ast.LetStep) and isinstance(step.value, ast.BinOp)
    assert step.value.op == "-" and isinstance(step.value.left, ast.BinOp)
    assert step.value.left.op == "-" and step.value.right.op == "*"  # type: ignore[union-attr]


def test_numbers():
    node = parse_one("morphism f : A -> A [role=observed] ~ [[0.1, 1e-3, 2.5e+2, -4, .5]]")
    assert isinstance(node, ast.MorphismDecl) and isinstance(node.family, ast.MatrixLit)
    assert [c.value for c in node.family.rows[0]] == [0.1, 1e-3, 250.0, -4.0, 0.5]
    assert [c.text for c in node.family.rows[0]] == ["0.1", "1e-3", "2.5e+2", "-4", ".5"]


@pytest.mark.parametrize(
    "text",
    [
        "object {w} : Real 1",
        "let {w} = f",
        "morphism {w} : A -> A [role=kernel] ~ Normal",
        "object E : {{a, {w}}}",
        "program p({w}) : A -> A",
    ],
)
@pytest.mark.parametrize("word", ["object", "program", "sample", "scan", "FinSet", "Real", "as"])
def test_keywords_are_not_names(text: str, word: str):
    source = text.format(w=word) + "\n"
    file = parse(source)
    assert [(d.code, d.range.line) for d in file.diagnostics] == [("E0001", 0)]
    d = file.diagnostics[0]
    assert f"'{word}' is a keyword" in d.message
    assert source[d.range.offset : d.range.end_offset] == word


# ------------------------------------------------------------------- caching


def test_unchanged_units_are_not_reparsed():
    lines = [
        f"object Unique{i}_{id(test_unchanged_units_are_not_reparsed)} : Real {i + 1}"
        for i in range(40)
    ]
    text = "\n".join(lines) + "\n"
    cache = FrontendCache()
    before = cache_stats(cache)
    first = parse(text, cache)
    mid = cache_stats(cache)
    assert mid["parsed"] - before["parsed"] == 40
    edited = lines[:]
    edited[20] = edited[20].replace("Real", "Positive")
    edited.insert(5, "object Inserted : Real 9")
    second = parse("\n".join(edited) + "\n", cache)
    after = cache_stats(cache)
    assert after["parsed"] - mid["parsed"] == 2  # the changed line and the new one
    assert after["reused"] - mid["reused"] == 39
    # Reused units share their nodes; only their placement changes.
    old, new = first.units(), second.units()
    assert new[6].node is old[5].node
    assert new[6].line == old[5].line + 1
    assert new[21].node is not old[20].node


def test_cache_is_keyed_on_kind_and_text():
    text = "    return q_unique_cache_key"
    cache = FrontendCache()
    as_step = parse("program p : A -> A\n" + text + "\n", cache).units()[1]
    orphan = parse(text + "\n", cache).units()[0]
    assert as_step.kind == orphan.kind == "step"
    assert as_step.node is orphan.node  # same kind and text: same cached node


# ------------------------------------------------------------------ doc comments


def test_doc_comments_attach_to_the_next_unit():
    text = (
        "#! first line\n"
        "#! second line\n"
        "object A : Real 1\n"
        "#! not attached: a blank line follows\n"
        "\n"
        "object B : Real 1\n"
        "# plain comment\n"
        "object C : Real 1\n"
        "#! the program\n"
        "program p : A -> A\n"
        "    #! the step\n"
        "    return x\n"
        "object D : Real 1  #! trailing, not a doc\n"
        "object E : Real 1\n"
    )
    docs = [u.doc for u in units(text)]
    assert docs == ["first line\nsecond line", None, None, "the program", "the step", None, None]


def test_doc_reaches_the_symbol():
    from quivers.semantic import check_text

    analysis = check_text("#! A hidden state.\nobject H : Real 8\n")
    assert analysis.symbols["H"].doc == "A hidden state."


def test_caches_do_not_keep_every_version_of_a_huge_unit():
    from quivers.syntax import layout

    cache = FrontendCache(max_chars=1_000_000)
    unit = "let huge = " + " @ ".join(f"part{i}" for i in range(20)) + " " * 200_000
    for k in range(12):
        parse(unit + "x" * k + "\n", cache)
        assert cache.chars <= 1_000_000
    assert all(len(line) <= layout.LINE_CACHE_MAX_LENGTH for line in cache.lines)
