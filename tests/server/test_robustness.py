"""Robustness: hundreds of seeded random edits streamed to the server as incremental
changes (insertions, deletions, deleting everything, pasted binary garbage, random
unicode with astral characters) never crash it; every request (hover, completion,
symbols, semantic tokens, formatting, flowchart, and the navigation, hint, action and
folding requests) at a random position gets a well-formed answer; and at checkpoints the server's diagnostics equal a local analysis
of the client's text (so the server applied every edit where the client meant it)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient
from quivers_lsp import convert

from quivers.analysis import Document
from quivers.analysis.tokens import TOKEN_TYPES

from .lsp_helpers import EXAMPLES, REFERENCE, diagnostics_for, doc_id, edit_doc, inbox, open_doc

EDITS = 300
CHECK_EVERY = 25
SEEDS = (20261128, 7, 99)
ALPHABET = (
    "abcxyz_ ():->~@*[]=,.0123456789\n\n    #!{}"
    "objectmorphismprogramsamplereturnlet"
    "é漢字😀𝔘🙂\x00\x07\x0c\x85\u2028\t"
)


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def lsp_position(text: str, offset: int) -> lsp.Position:
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return lsp.Position(line=line, character=utf16_len(text[start:offset]))


def random_text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.15:  # binary garbage
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))).decode("latin-1")
    if kind < 0.3:  # random unicode, astral planes included
        return "".join(
            chr(rng.choice([rng.randrange(0x20, 0xD800), rng.randrange(0x10000, 0x10FFFF)]))
            for _ in range(rng.randint(1, 12))
        )
    if kind < 0.45:  # a piece of a real program
        example = rng.choice(sorted(EXAMPLES.glob("*.qvr"))).read_text()
        a = rng.randrange(len(example))
        return example[a : a + rng.randint(1, 200)]
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 8)))


def random_edit(rng: random.Random, text: str) -> tuple[int, int, str]:
    """(start, end, new text) in code points."""
    roll = rng.random()
    if roll < 0.03:
        return 0, len(text), ""  # delete everything
    if roll < 0.05:
        return 0, len(text), REFERENCE  # paste a whole program back
    a = rng.randint(0, len(text))
    if roll < 0.45:
        return a, a, random_text(rng)
    b = min(len(text), a + rng.randint(1, 30))
    return a, b, "" if roll < 0.75 else random_text(rng)


def in_document(text: str, rng_: lsp.Range) -> bool:
    lines = text.split("\n")
    for p in (rng_.start, rng_.end):
        if p.line >= len(lines) or p.character > utf16_len(lines[p.line]):
            return False
    return (rng_.start.line, rng_.start.character) <= (rng_.end.line, rng_.end.character)


def contains(outer: lsp.Range, inner: lsp.Range) -> bool:
    def key(p: lsp.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(outer.start) <= key(inner.start) and key(inner.end) <= key(outer.end)


async def random_requests(client: LanguageClient, uri: str, text: str, rng: random.Random) -> None:
    lines = text.split("\n")
    line = rng.randrange(len(lines) + 2)  # sometimes past the end
    col = rng.randint(0, utf16_len(lines[line]) + 2) if line < len(lines) else rng.randint(0, 5)
    position = lsp.Position(line=line, character=col)
    ident = doc_id(uri)

    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=ident, position=position)
    )
    if hover is not None:
        assert isinstance(hover.contents, lsp.MarkupContent) and hover.contents.value
        assert hover.range is None or in_document(text, hover.range)

    completion = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=ident, position=position)
    )
    assert completion is not None
    assert all(isinstance(i.label, str) and i.label for i in completion.items)

    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=ident)
    )
    for s in symbols:
        assert isinstance(s, lsp.DocumentSymbol) and s.name
        assert in_document(text, s.range) and in_document(text, s.selection_range)
        assert contains(s.range, s.selection_range)  # VS Code rejects the symbol otherwise
        for c in s.children or ():
            assert in_document(text, c.range) and contains(c.range, c.selection_range)
            assert contains(s.range, c.range)

    tokens = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=ident)
    )
    data = list(tokens.data)
    assert len(data) % 5 == 0
    at_line = at_col = 0
    for i in range(0, len(data), 5):
        dl, dc, length, kind, _ = data[i : i + 5]
        at_line += dl
        at_col = at_col + dc if dl == 0 else dc
        assert at_line < len(lines) and length > 0
        assert at_col + length <= utf16_len(lines[at_line])
        assert kind < len(TOKEN_TYPES)

    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            text_document=ident, options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)
        )
    )
    assert edits is None or all(in_document(text, e.range) for e in edits)

    for locations in (
        await client.text_document_definition_async(
            lsp.DefinitionParams(text_document=ident, position=position)
        ),
        await client.text_document_references_async(
            lsp.ReferenceParams(
                text_document=ident,
                position=position,
                context=lsp.ReferenceContext(include_declaration=True),
            )
        ),
    ):
        assert all(loc.uri == uri and in_document(text, loc.range) for loc in locations or ())
    prepared = await client.text_document_prepare_rename_async(
        lsp.PrepareRenameParams(text_document=ident, position=position)
    )
    if prepared is not None:
        assert in_document(text, prepared.range) and prepared.placeholder
    await client.text_document_signature_help_async(
        lsp.SignatureHelpParams(text_document=ident, position=position)
    )
    whole = lsp.Range(
        start=lsp.Position(line=0, character=0),
        end=lsp.Position(line=len(lines) - 1, character=utf16_len(lines[-1])),
    )
    hints = await client.text_document_inlay_hint_async(
        lsp.InlayHintParams(text_document=ident, range=whole)
    )
    for hint in hints or ():
        assert in_document(text, lsp.Range(start=hint.position, end=hint.position))
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=ident,
            range=lsp.Range(start=position, end=position),
            context=lsp.CodeActionContext(diagnostics=[]),
        )
    )
    for action in actions or ():
        assert all(in_document(text, e.range) for e in action.edit.changes[uri])
    folds = await client.text_document_folding_range_async(
        lsp.FoldingRangeParams(text_document=ident)
    )
    assert all(0 <= f.start_line <= f.end_line < len(lines) for f in folds or ())

    chart: Any = await client.protocol.send_request_async("qvr/flowchart", {"uri": uri})
    # exactly one of a chart or the reason there is none
    assert (chart.mermaid is None) != (chart.error is None), chart
    if chart.mermaid is None:
        assert isinstance(chart.error, str) and "\n" not in chart.error
    else:
        assert chart.mermaid.startswith("flowchart LR")


def expected_diagnostics(text: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    doc = Document(text)
    out = []
    for d in doc.analysis.diagnostics:
        r = convert.to_range(doc.lines, d.range)
        out.append((d.code, (r.start.line, r.start.character, r.end.line, r.end.character)))
    return out


def published(diagnostics: list[lsp.Diagnostic]) -> list[tuple[str, tuple[int, int, int, int]]]:
    return [
        (
            str(d.code),
            (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character),
        )
        for d in diagnostics
    ]


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_edits_never_break_the_server(client: LanguageClient, seed: int) -> None:
    rng = random.Random(seed)
    text = REFERENCE
    uri, _ = await open_doc(client, text)
    version = 1
    for step in range(1, EDITS + 1):
        a, b, new = random_edit(rng, text)
        change = lsp.TextDocumentContentChangePartial(
            range=lsp.Range(start=lsp_position(text, a), end=lsp_position(text, b)), text=new
        )
        text = text[:a] + new + text[b:]
        version += 1
        checkpoint = step % CHECK_EVERY == 0
        start = inbox(client).mark()
        await edit_doc(client, uri, version, [change], wait=False)
        if rng.random() < 0.5 or checkpoint:
            await random_requests(client, uri, text, rng)
        if checkpoint:
            diagnostics = await diagnostics_for(client, uri, version, start)
            assert published(diagnostics) == expected_diagnostics(text), f"edit {step}"
    # the server is still fully working on a clean program
    version += 1
    end = lsp_position(text, len(text))
    clean = await edit_doc(
        client,
        uri,
        version,
        [
            lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=lsp.Position(line=0, character=0), end=end), text=REFERENCE
            )
        ],
    )
    assert clean == []
