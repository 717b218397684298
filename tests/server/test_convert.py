"""The conversion layer on its own: UTF-16 columns and capability-dependent shapes."""

from __future__ import annotations

from lsprotocol import types as lsp
from quivers_lsp import convert

from quivers.analysis.completion import CompletionItem
from quivers.core.diagnostics import Range


def test_utf16_round_trip_with_astral_characters() -> None:
    lines = ["a😀b𝔘c", "plain"]
    for col in range(len(lines[0]) + 1):
        pos = convert.to_range(lines, Range(0, col, 0, col)).start
        assert convert.position_in(lines, pos) == (0, col)
    assert convert.to_range(lines, Range(0, 2, 0, 3)).start.character == 3
    # a position inside a surrogate pair or past the end clamps to a real column
    assert convert.position_in(lines, lsp.Position(line=0, character=2)) == (0, 2)
    assert convert.position_in(lines, lsp.Position(line=0, character=99)) == (0, 5)
    assert convert.position_in(lines, lsp.Position(line=1, character=99)) == (1, 5)


def test_completion_documentation_follows_the_client_formats() -> None:
    item = CompletionItem("Normal", "family", "Normal(loc, scale)", documentation="**Normal**")
    rich = convert.completion_item(item, snippets=True, markdown=True)
    assert isinstance(rich.documentation, lsp.MarkupContent)
    plain = convert.completion_item(item, snippets=True, markdown=False)
    assert plain.documentation == "**Normal**"


def test_snippets_fall_back_to_the_label() -> None:
    item = CompletionItem("scan", "keyword", "combinator", "scan(${1:cell})", snippet=True)
    assert convert.completion_item(item, snippets=False).insert_text == "scan"
    with_snippets = convert.completion_item(item, snippets=True)
    assert with_snippets.insert_text_format == lsp.InsertTextFormat.Snippet


def test_raw_token_encoding_equals_the_dataclass_encoding() -> None:
    from quivers.analysis import Document
    from quivers.analysis.tokens import raw_tokens, semantic_tokens

    text = (
        "#! doc 😀\nobject Tok : #{ 😀𝔘 }# FinSet 4  # 𝔘 😀 here\n"
        "morphism f : Tok -> #{😀}# Tok [role=kernel]\nexport f\n"
    )
    doc = Document(text)
    lines = doc.lines
    assert (
        convert.semantic_tokens_raw(lines, raw_tokens(doc)).data
        == convert.semantic_tokens(lines, semantic_tokens(doc)).data
    )
    assert (
        convert.semantic_tokens_raw(lines, raw_tokens(doc, 1, 1)).data
        == convert.semantic_tokens(lines, semantic_tokens(doc, 1, 1)).data
    )


def test_token_edits_turn_old_into_new() -> None:
    import random

    rng = random.Random(3)
    for _ in range(300):
        old = [rng.randrange(4) for _ in range(rng.randrange(0, 3000))]
        new = list(old)
        for _ in range(rng.randrange(0, 3)):
            a = rng.randrange(len(new) + 1)
            b = min(len(new), a + rng.randrange(0, 40))
            new[a:b] = [rng.randrange(4) for _ in range(rng.randrange(0, 40))]
        edits = convert.tokens_edits(old, new)
        patched = list(old)
        for e in edits:
            patched[e.start : e.start + e.delete_count] = e.data or []
        assert patched == new
        assert (edits == []) == (old == new)


def test_hover_content_kind_follows_the_client() -> None:
    from quivers.analysis.hover import Hover

    found = Hover("```qvr\nobject A : Real 2\n```", Range(0, 7, 0, 8))
    assert convert.hover(["object A : Real 2"], found).contents.kind == lsp.MarkupKind.Markdown
    plain = convert.hover(["object A : Real 2"], found, markdown=False)
    assert plain.contents.kind == lsp.MarkupKind.PlainText
    assert plain.range.start.character == 7
