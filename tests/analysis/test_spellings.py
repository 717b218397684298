"""The editor features on the later spellings (docs/language.md section 17): the
outline, hover, flowchart and completion see the same module as in our spelling;
the quick fix of E0203 and the single E0005 of an effect declaration."""

from __future__ import annotations

from quivers.analysis.completion import complete
from quivers.analysis.flowchart import flowchart
from quivers.analysis.hover import hover
from quivers.analysis.outline import document_symbols
from quivers.semantic import check_text

from .helpers import at, doc

LATER = "object A, B : Real 4\nmorphism f, g : A -> A ~ Normal\ndefine h = f >> g\nexport h\n"
OURS = (
    "object A : Real 4\n"
    "object B : Real 4\n"
    "morphism f : A -> A [role=kernel] ~ Normal\n"
    "morphism g : A -> A [role=kernel] ~ Normal\n"
    "let h = f >> g\n"
    "export h\n"
)


def test_outline_lists_every_name_of_a_group():
    later = [(s.name, s.kind) for s in document_symbols(doc(LATER))]
    assert later == [(s.name, s.kind) for s in document_symbols(doc(OURS))]
    assert later[:4] == [("A", "object"), ("B", "object"), ("f", "morphism"), ("g", "morphism")]


def test_hover_on_the_second_name_of_a_group():
    d, line, col = at(LATER.replace("A, B", "A, |B"))
    md = hover(d, line, col)
    assert md is not None and "Real 4" in md.markdown and "B" in md.markdown
    d, line, col = at(LATER.replace("f, g", "f, |g"))
    md = hover(d, line, col)
    assert md is not None and "kernel" in md.markdown and "Normal" in md.markdown


def test_flowchart_of_both_spellings_is_the_same():
    assert flowchart(doc(LATER)).mermaid == flowchart(doc(OURS)).mermaid


def test_completion_offers_our_spelling_only():
    d, line, col = at(LATER + "|")
    words = {item.label for item in complete(d, line, col)}
    assert "let" in words and "define" not in words


def test_a_bare_size_has_a_quick_fix_to_finset():
    text = "object T : 200\nexport identity(T)\n"
    (diag,) = check_text(text).diagnostics
    assert diag.code == "E0203" and "FinSet 200" in (diag.suggestion or "")
    (edit,) = diag.fix
    fixed = text[: edit.range.offset] + edit.new_text + text[edit.range.end_offset :]
    assert fixed == "object T : FinSet 200\nexport identity(T)\n"
    assert check_text(fixed).diagnostics == []


def test_an_effect_declaration_is_one_clear_diagnostic():
    text = (
        "object S : FinSet 3\n"
        "effect Counter[S]\n"
        "    tick : S -> S\n"
        "    reset : S -> S\n"
        "export identity(S)\n"
    )
    diags = check_text(text).diagnostics
    assert [(d.code, d.range.line) for d in diags] == [("E0005", 1)]
    assert "not supported yet" in diags[0].message and "effect" in diags[0].message


def test_keyword_arguments_chart_and_hover_like_positional_ones():
    program = (
        "object X : Real 1\n"
        "program p(x) : X -> X\n"
        "    observe y : X <- Normal({})\n"
        "    return y\n"
        "export p\n"
    )
    later, ours = program.format("loc=x, scale=0.5"), program.format("x, 0.5")
    # the same chart; a node is labelled with the source as the user wrote it
    chart = flowchart(doc(later)).mermaid
    assert '"Normal(loc=x, scale=0.5)"' in chart
    assert chart.replace("loc=x, scale=0.5", "x, 0.5") == flowchart(doc(ours)).mermaid
    assert [s.name for s in document_symbols(doc(later))] == [
        s.name for s in document_symbols(doc(ours))
    ]
    for text in (later, ours):
        d, line, col = at(text.replace("observe y", "observe |y"))
        md = hover(d, line, col)
        assert md is not None and "observed site" in md.markdown and "Real 1" in md.markdown


TUPLE = (
    "object X : Real 1\n"
    "object A : Real 2\n"
    "morphism k : X -> A * X ~ Normal(0.0, 1.0)\n"
    "program p(x) : X -> X\n"
    "    sample (a, b) <- k(x)\n"
    "    observe y : X <- Normal(b, 1.0)\n"
    "    return y\n"
    "export p\n"
)


def test_hover_on_each_name_of_a_tuple_draw_shows_its_factor():
    for marked, want in (("(|a, b)", "a : A"), ("(a, |b)", "b : X")):
        d, line, col = at(TUPLE.replace("(a, b)", marked))
        md = hover(d, line, col)
        assert md is not None and want in md.markdown and "`a_b`" in md.markdown
    d, line, col = at(TUPLE.replace("Normal(b,", "Normal(|b,"))
    md = hover(d, line, col)
    assert md is not None and "b : X" in md.markdown and "tuple draw" in md.markdown


def test_outline_flowchart_and_completion_of_a_tuple_draw():
    (program,) = [s for s in document_symbols(doc(TUPLE)) if s.kind == "program"]
    assert [(c.name, c.detail) for c in program.children][0] == ("(a, b)", "sample : A * X")
    chart = flowchart(doc(TUPLE)).mermaid
    assert '"(a, b) : A * X"' in chart
    # the observe step reads b: an edge from the tuple's site into its family
    site = next(line.split("(")[0].strip() for line in chart.split("\n") if "(a, b)" in line)
    family = next(line.split("[")[0].strip() for line in chart.split("\n") if "Normal(b" in line)
    assert f"{site} --> {family}" in chart
    d, line, col = at(TUPLE.replace("Normal(b, 1.0)", "Normal(|"))
    words = {item.label for item in complete(d, line, col)}
    assert {"a", "b"} <= words
