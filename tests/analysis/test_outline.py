"""Document symbols (nested), workspace symbols and folding ranges."""

from __future__ import annotations

from quivers.analysis.outline import document_symbols, folding_ranges, workspace_symbols

from .helpers import REFERENCE, doc, examples, text_of, with_broken_neighbours


def test_document_symbols_nest_program_steps() -> None:
    d = doc(REFERENCE)
    syms = document_symbols(d)
    assert [(s.name, s.kind) for s in syms] == [
        ("Token", "object"),
        ("Embedded", "object"),
        ("Hidden", "object"),
        ("tok_embed", "morphism"),
        ("cell", "morphism"),
        ("lm_head", "morphism"),
        ("backbone", "let"),
        ("vanilla_rnn_lm", "program"),
        ("vanilla_rnn_lm", "export"),
    ]
    program = syms[7]
    assert [(c.name, c.kind, c.detail) for c in program.children] == [
        ("h", "sample", "sample : Hidden"),
        ("next_token", "observe", "observe : Token"),
        ("return next_token", "return", ""),
    ]
    assert (program.range.line, program.range.end_line) == (7, 10)
    assert program.detail == "program vanilla_rnn_lm : Token -> Token"
    assert syms[4].detail.startswith("morphism cell : Embedded * Hidden -> Hidden")


def test_selection_ranges_cover_the_name_inside_the_range() -> None:
    d = doc(REFERENCE)
    for s in document_symbols(d):
        if s.kind != "export":
            assert text_of(d, s.selection) == s.name
        assert (s.range.line, s.range.col) <= (s.selection.line, s.selection.col)
        assert (s.selection.end_line, s.selection.end_col) <= (s.range.end_line, s.range.end_col)
        for c in s.children:
            assert s.range.line <= c.range.line <= s.range.end_line


def test_symbols_of_let_and_score_steps() -> None:
    text = (
        "object R : Real 1\nprogram p(x) : R -> R\n    sample s <- Normal(0.0, 1.0)\n"
        "    let m = s * x\n    score pen = -m\n    observe y : R <- Normal(m, 1.0)\n"
        "    return y\nexport p\n"
    )
    program = document_symbols(doc(text))[1]
    assert [(c.name, c.kind) for c in program.children] == [
        ("s", "sample"),
        ("m", "let"),
        ("pen", "score"),
        ("y", "observe"),
        ("return y", "return"),
    ]


# examples whose export is a morphism expression (a let), not a program or a grammar
EXPRESSION_EXPORTS = {"markov_chain": "forecast", "ppca": "ppca"}


def test_every_example_has_a_program_symbol() -> None:
    for name, text in examples().items():
        syms = document_symbols(doc(text))
        if name in EXPRESSION_EXPORTS:
            assert any(s.name == EXPRESSION_EXPORTS[name] and s.kind == "let" for s in syms)
            assert not any(s.kind in ("program", "deduction") for s in syms), name
            continue
        assert any(s.kind in ("program", "deduction") and s.children for s in syms), name


def test_symbols_survive_broken_neighbours() -> None:
    syms = document_symbols(doc(with_broken_neighbours(REFERENCE)))
    names = [s.name for s in syms]
    for expected in ("Token", "Embedded", "Hidden", "tok_embed", "cell", "lm_head", "backbone"):
        assert expected in names
    # broken declarations that keep their keyword and name still show up
    assert "Broken0" in names
    program = next(s for s in syms if s.kind == "program")
    assert [c.name for c in program.children] == ["h", "next_token", "return next_token"]


def test_workspace_symbols_match_subsequences_across_documents() -> None:
    docs = [doc(t) for t in examples().values()]
    for i, d in enumerate(docs):
        d.uri = f"file:///ex{i}.qvr"
    found = workspace_symbols(docs, "tokem")
    assert {s.name for _, s in found} == {"tok_embed"}
    assert len({uri for uri, _ in found}) >= 5
    assert {s.name for _, s in workspace_symbols(docs, "RNN")} >= {"vanilla_rnn_lm", "forward_rnn"}
    assert len(workspace_symbols(docs, "")) > 50


def test_folding_programs_multiline_statements_and_comment_runs() -> None:
    text = (
        "# header line one\n# header line two\n# header line three\nobject A : Real 2\n"
        "#{ a block\ncomment }#\nmorphism f : A -> A [role=kernel,\n    scale=0.1] ~ Normal\n"
        "program p : A -> A\n    sample h <- f\n\n    return h\nexport p\n"
    )
    assert folding_ranges(doc(text)) == [
        (0, 2, "comment"),
        (4, 5, "comment"),
        (6, 7, "region"),
        (8, 11, "region"),
    ]


def test_folding_survives_broken_neighbours() -> None:
    ranges = folding_ranges(doc(with_broken_neighbours(REFERENCE)))
    assert any(kind == "region" and end - start == 3 for start, end, kind in ranges)


def test_no_symbol_has_a_blank_name() -> None:
    text = "object A : Real 2\nexport\nprogram p : A -> A\n    sample  <- A\n    return\nlet = A\n"
    syms = document_symbols(doc(text))
    names = [s.name for s in syms] + [c.name for s in syms for c in s.children]
    assert names and all(n.strip() for n in names)
    assert workspace_symbols([doc(text)], "") and all(
        s.name.strip() for _, s in workspace_symbols([doc(text)], "")
    )
