"""Definition, references, highlights and rename: globals, program locals, scoping."""

from __future__ import annotations

import pytest

from quivers.analysis import navigation as nav

from .helpers import REFERENCE, at, doc, text_of, where, with_broken_neighbours

TWO_PROGRAMS = """object A : Real 2
morphism f : A -> A [role=kernel] ~ Normal
program p : A -> A
    sample h <- f
    sample k <- f(h)
    return k
program q : A -> A
    sample h <- f
    return h
export p
"""


def lines_of(d, ranges) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(r.line, text_of(d, r)) for r in ranges]


def test_definition_of_a_global() -> None:
    d, line, col = at(REFERENCE.replace("scan(cell)", "scan(ce|ll)"))
    assert lines_of(d, nav.definition(d, line, col)) == [(4, "cell")]


def test_definition_on_the_declaration_is_itself() -> None:
    d, line, col = at(REFERENCE.replace("morphism cell", "morphism ce|ll"))
    assert lines_of(d, nav.definition(d, line, col)) == [(4, "cell")]


def test_definition_of_a_program_local() -> None:
    d, line, col = at(REFERENCE.replace("lm_head(h)", "lm_head(|h)"))
    assert lines_of(d, nav.definition(d, line, col)) == [(8, "h")]


def test_definition_of_an_object_in_a_type() -> None:
    d, line, col = at(REFERENCE.replace("next_token : Token", "next_token : To|ken"))
    assert lines_of(d, nav.definition(d, line, col)) == [(0, "Token")]


def test_nothing_on_keywords_and_blank() -> None:
    d, line, col = at(REFERENCE.replace("let backbone", "l|et backbone"))
    assert nav.definition(d, line, col) == []
    assert nav.references(d, line, col) == []
    assert nav.prepare_rename(d, line, col) is None
    with pytest.raises(nav.RenameError):
        nav.rename(d, line, col, "x")


def test_references_of_an_object() -> None:
    d, line, col = at(REFERENCE.replace("object Hidden", "object Hid|den"))
    refs = lines_of(d, nav.references(d, line, col))
    assert refs == [(2, "Hidden"), (4, "Hidden"), (4, "Hidden"), (5, "Hidden")]
    without = nav.references(d, line, col, include_declaration=False)
    assert len(without) == 3


def test_highlight_marks_declaration_as_write() -> None:
    d, line, col = at(REFERENCE.replace("return next_token", "return next_to|ken"))
    found = [(r.line, write) for r, write in nav.highlights(d, line, col)]
    assert found == [(9, True), (10, False)]


def test_locals_are_scoped_to_their_program() -> None:
    d = doc(TWO_PROGRAMS)
    line, col = where(TWO_PROGRAMS, "f(h)", offset=2)
    assert [r.line for r in nav.references(d, line, col)] == [3, 4]
    line, col = where(TWO_PROGRAMS, "return h", offset=7)
    assert [r.line for r in nav.references(d, line, col)] == [7, 8]
    # a global is shared by both programs
    line, col = where(TWO_PROGRAMS, "morphism f", offset=9)
    assert [r.line for r in nav.references(d, line, col)] == [1, 3, 4, 7]


def test_rename_a_global_everywhere() -> None:
    d, line, col = at(REFERENCE.replace("morphism cell", "morphism ce|ll"))
    edits = nav.rename(d, line, col, "rnn_cell")
    assert [(e.range.line, text_of(d, e.range), e.new_text) for e in edits] == [
        (4, "cell", "rnn_cell"),
        (6, "cell", "rnn_cell"),
    ]


def test_rename_a_local_only_in_its_program() -> None:
    d = doc(TWO_PROGRAMS)
    line, col = where(TWO_PROGRAMS, "sample h", offset=7)
    assert nav.prepare_rename(d, line, col) is not None
    edits = nav.rename(d, line, col, "state")
    assert sorted(e.range.line for e in edits) == [3, 4]


def test_prepare_rename_gives_range_and_name() -> None:
    d, line, col = at(REFERENCE.replace("lm_head(h)", "lm_h|ead(h)"))
    found = nav.prepare_rename(d, line, col)
    assert found is not None
    rng, name = found
    assert name == "lm_head" and text_of(d, rng) == "lm_head"


@pytest.mark.parametrize(
    ("new_name", "message"),
    [
        ("2cell", "not a valid name"),
        ("my cell", "not a valid name"),
        ("", "not a valid name"),
        ("program", "reserved"),
        ("scan", "reserved"),
        ("Normal", "reserved"),
        ("Hidden", "already used"),
        ("lm_head", "already used"),
    ],
)
def test_rename_refuses_bad_names(new_name: str, message: str) -> None:
    d, line, col = at(REFERENCE.replace("morphism cell", "morphism ce|ll"))
    with pytest.raises(nav.RenameError, match=message):
        nav.rename(d, line, col, new_name)


def test_rename_local_refuses_a_clash_with_another_local() -> None:
    d, line, col = at(REFERENCE.replace("sample h", "sample |h"))
    with pytest.raises(nav.RenameError, match="already used"):
        nav.rename(d, line, col, "next_token")


def test_navigation_survives_broken_neighbours() -> None:
    text = with_broken_neighbours(REFERENCE)
    d = doc(text)
    line, col = where(text, "scan(cell)", offset=6)
    assert lines_of(d, nav.definition(d, line, col)) == [(where(text, "morphism cell")[0], "cell")]
    line, col = where(text, "lm_head(h)", offset=8)
    assert [text_of(d, r) for r in nav.references(d, line, col)] == ["h", "h"]
    line, col = where(text, "morphism cell", offset=9)
    assert len(nav.rename(d, line, col, "c2")) == 2
