"""End-to-end: every standard feature of docs/dev/editor-protocol.md, through the real
server process, plus the custom `qvr/flowchart` request."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from quivers.analysis.tokens import TOKEN_TYPES

from .lsp_helpers import (
    REFERENCE,
    WORKSPACE,
    change_doc,
    close_doc,
    diagnostics_for,
    doc_id,
    edit_doc,
    inbox,
    open_doc,
    pos,
)

UNICODE = (
    "#! Emoji 😀 and accents é in a doc comment.\n"
    "object Tok : #{ 😀𝔘 }# FinSet 4  # 𝔘nicode 😀😀 here\n"
    "morphism f : Tok -> #{😀}# Tok [role=kernel]\n"
    "morphism g : Tok -> #{😀}# Nope [role=kernel]\n"
    "program p : Tok -> Tok  # 😀\n"
    "    sample h <- f\n"
    "    return h\n"
    "export p\n"
)


def utf16(text: str, needle: str, offset: int = 0) -> lsp.Position:
    """The LSP position (UTF-16 columns) of ``needle`` in ``text``."""
    point = at(text, needle, offset=offset)
    line = text.split("\n")[point.line]
    return lsp.Position(
        line=point.line, character=len(line[: point.character].encode("utf-16-le")) // 2
    )


def at(text: str, needle: str, occurrence: int = 0, offset: int = 0) -> lsp.Position:
    return pos(text, needle, occurrence, offset)


async def test_diagnostics_pushed_with_version_after_edits(client: LanguageClient) -> None:
    uri, diagnostics = await open_doc(client, REFERENCE)
    assert diagnostics == []
    broken = REFERENCE.replace("scan(cell)", "scan(cel)")
    diagnostics = await change_doc(client, uri, broken, 2)
    assert [(d.code, d.range.start.line) for d in diagnostics] == [("E0101", 6)]
    assert "did you mean 'cell'?" in diagnostics[0].message
    assert (
        diagnostics[0].severity == lsp.DiagnosticSeverity.Error and diagnostics[0].source == "qvr"
    )
    # a ranged (incremental) edit that fixes it again: version 3 comes back clean
    fix = lsp.TextDocumentContentChangePartial(
        range=lsp.Range(start=at(broken, "cel)", offset=3), end=at(broken, "cel)", offset=3)),
        text="l",
    )
    assert await edit_doc(client, uri, 3, [fix]) == []


async def test_a_shadowing_template_parameter_is_a_warning_on_it(client: LanguageClient) -> None:
    text = (
        "object K : FinSet 3\n"
        "object Rows : FinSet 4\n"
        "program gmm(alpha : Positive, K : FinSet) : Rows -> Rows\n"
        "    sample mu : K <- Normal(0.0, 5.0)\n"
        "    return mu\n"
        "export gmm\n"
    )
    _, diagnostics = await open_doc(client, text)
    assert [(d.code, d.severity) for d in diagnostics] == [
        ("W0106", lsp.DiagnosticSeverity.Warning)
    ]
    start = at(text, "K : FinSet)")
    assert diagnostics[0].range == lsp.Range(
        start=start, end=lsp.Position(line=start.line, character=start.character + 1)
    )
    assert "shadows the top-level object K (FinSet 3)" in diagnostics[0].message
    assert "rename the parameter" in diagnostics[0].message  # the suggestion is shown


async def test_rapid_edits_publish_the_last_version(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    start = inbox(client).mark()
    text = REFERENCE
    for version in range(2, 12):
        text = text.replace("return next_token", f"return next_token{version}", 1)
        await edit_doc(
            client, uri, version, [lsp.TextDocumentContentChangeWholeDocument(text=text)], False
        )
        text = text.replace(f"next_token{version}", "next_token")
    final = REFERENCE.replace("return next_token", "return nope")
    await edit_doc(client, uri, 12, [lsp.TextDocumentContentChangeWholeDocument(text=final)], False)
    diagnostics = await diagnostics_for(client, uri, 12, start)
    # only the last version is published for the burst, and it describes that text
    assert [d.code for d in diagnostics] == ["E0502"] and "'nope'" in diagnostics[0].message
    versions = [
        p.version
        for name, p in inbox(client).items[start:]
        if name == lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS and p.uri == uri
    ]
    assert versions == sorted(versions) and versions[-1] == 12


async def test_pull_diagnostics(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, "object A : FinSet\n")
    report = await client.text_document_diagnostic_async(
        lsp.DocumentDiagnosticParams(text_document=doc_id(uri))
    )
    assert report.kind == "full"
    assert [d.code for d in report.items] == ["E0001"]


async def test_close_clears_diagnostics(client: LanguageClient) -> None:
    uri, diagnostics = await open_doc(client, "object A : FinSet\n")
    assert diagnostics
    start = inbox(client).mark()
    close_doc(client, uri)
    params = await inbox(client).wait_for(
        lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, lambda p: p.uri == uri, start
    )
    assert list(params.diagnostics) == []


async def test_hover(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=at(REFERENCE, "scan(cell)", offset=1))
    )
    assert hover is not None and hover.contents.kind == lsp.MarkupKind.Markdown
    assert "scan(cell) : Embedded -> Hidden" in hover.contents.value
    assert hover.range == lsp.Range(
        start=lsp.Position(line=6, character=28), end=lsp.Position(line=6, character=38)
    )
    nothing = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=lsp.Position(line=40, character=0))
    )
    assert nothing is None


async def test_utf16_positions(client: LanguageClient) -> None:
    uri, diagnostics = await open_doc(client, UNICODE)
    # the unknown object after an astral character: its range is in UTF-16 units
    (d,) = diagnostics
    assert d.code == "E0101"
    assert d.range.start == utf16(UNICODE, "Nope") and d.range.end == utf16(
        UNICODE, "Nope", offset=4
    )
    assert d.range.start.character == 27  # 26 code points before it, one of them astral
    # hover on the second 'Tok' of line 2 (after '#{😀}#'), asked in UTF-16 columns
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=utf16(UNICODE, "Tok [role", offset=1))
    )
    assert hover is not None and "FinSet 4" in hover.contents.value
    assert hover.range.start == utf16(UNICODE, "Tok [role")
    # the trailing comment with astral characters: start and length in UTF-16 units
    tokens = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=doc_id(uri))
    )
    decoded = _decode(tokens.data)
    comments = [t for t in decoded if t[0] == 1 and TOKEN_TYPES[t[3]] == "comment"]
    trailing = comments[-1]
    assert trailing[1] == utf16(UNICODE, "# 𝔘nicode").character
    assert trailing[2] == len("# 𝔘nicode 😀😀 here".encode("utf-16-le")) // 2
    # FinSet after the block comment on line 1
    finset = [t for t in decoded if t[0] == 1 and TOKEN_TYPES[t[3]] == "keyword"][1]
    assert finset[1] == utf16(UNICODE, "FinSet").character
    # a code action's edit and a definition in UTF-16 too
    locations = await client.text_document_definition_async(
        lsp.DefinitionParams(
            text_document=doc_id(uri), position=utf16(UNICODE, "Tok [role=kernel]\nmorphism g")
        )
    )
    assert locations[0].range.start == lsp.Position(line=1, character=7)


def _decode(data) -> list[tuple[int, int, int, int, int]]:  # type: ignore[no-untyped-def]
    out = []
    line = col = 0
    for i in range(0, len(data), 5):
        dl, dc, length, kind, mods = data[i : i + 5]
        line += dl
        col = col + dc if dl == 0 else dc
        out.append((line, col, length, kind, mods))
    return out


async def test_definition_references_highlight(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    use = at(REFERENCE, "scan(cell)", offset=6)
    locations = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc_id(uri), position=use)
    )
    assert [(loc.uri, loc.range.start.line, loc.range.start.character) for loc in locations] == [
        (uri, 4, 9)
    ]
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=doc_id(uri),
            position=use,
            context=lsp.ReferenceContext(include_declaration=True),
        )
    )
    assert sorted(r.range.start.line for r in refs) == [4, 6]
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=doc_id(uri),
            position=use,
            context=lsp.ReferenceContext(include_declaration=False),
        )
    )
    assert [r.range.start.line for r in refs] == [6]
    highlights = await client.text_document_document_highlight_async(
        lsp.DocumentHighlightParams(
            text_document=doc_id(uri), position=at(REFERENCE, "lm_head(h)", offset=8)
        )
    )
    assert [(h.range.start.line, h.kind) for h in highlights] == [
        (8, lsp.DocumentHighlightKind.Write),
        (9, lsp.DocumentHighlightKind.Read),
    ]


async def test_prepare_rename_and_rename(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    position = at(REFERENCE, "morphism cell", offset=10)
    prepared = await client.text_document_prepare_rename_async(
        lsp.PrepareRenameParams(text_document=doc_id(uri), position=position)
    )
    assert prepared is not None and prepared.placeholder == "cell"
    assert prepared.range.start == lsp.Position(line=4, character=9)
    edit = await client.text_document_rename_async(
        lsp.RenameParams(text_document=doc_id(uri), position=position, new_name="rnn_cell")
    )
    assert edit is not None
    assert sorted((e.range.start.line, e.new_text) for e in edit.changes[uri]) == [
        (4, "rnn_cell"),
        (6, "rnn_cell"),
    ]
    nothing = await client.text_document_prepare_rename_async(
        lsp.PrepareRenameParams(
            text_document=doc_id(uri), position=lsp.Position(line=0, character=2)
        )
    )
    assert nothing is None


@pytest.mark.parametrize("bad", ["program", "Hidden", "1x"])
async def test_rename_refusal_is_an_error_response(client: LanguageClient, bad: str) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    with pytest.raises(Exception, match="reserved|already used|not a valid name"):
        await client.text_document_rename_async(
            lsp.RenameParams(
                text_document=doc_id(uri),
                position=at(REFERENCE, "morphism cell", offset=10),
                new_name=bad,
            )
        )
    # and the server keeps serving
    assert await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=at(REFERENCE, "cell", offset=1))
    )


async def test_document_symbols(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc_id(uri))
    )
    assert [s.name for s in symbols][:3] == ["Token", "Embedded", "Hidden"]
    program = next(s for s in symbols if s.kind == lsp.SymbolKind.Module)
    assert program.name == "vanilla_rnn_lm"
    assert [c.name for c in program.children] == ["h", "next_token", "return next_token"]
    assert program.range.start.line == 7 and program.range.end.line == 10


async def test_workspace_symbols_over_open_and_disk_files(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE.replace("backbone", "openbackbone"))
    found = await client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="openback"))
    assert [(s.name, s.location.uri) for s in found] == [("openbackbone", uri)]
    found = await client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="DiskOnly"))
    assert [(s.name, s.location.uri) for s in found] == [
        ("DiskOnlyObject", (WORKSPACE / "on_disk.qvr").as_uri())
    ]
    assert found[0].location.range.start == lsp.Position(line=0, character=7)
    found = await client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="nestedth"))
    assert [s.location.uri for s in found] == [(WORKSPACE / "nested" / "deeper.qvr").as_uri()]
    everything = await client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query=""))
    assert {"disk_kernel", "NestedThing", "openbackbone"} <= {s.name for s in everything}


async def test_folding(client: LanguageClient) -> None:
    text = "# one\n# two\n" + REFERENCE
    uri, _ = await open_doc(client, text)
    folds = await client.text_document_folding_range_async(
        lsp.FoldingRangeParams(text_document=doc_id(uri))
    )
    assert [(f.start_line, f.end_line, f.kind) for f in folds] == [
        (0, 1, lsp.FoldingRangeKind.Comment),
        (9, 12, lsp.FoldingRangeKind.Region),
    ]


async def test_completion(client: LanguageClient) -> None:
    text = REFERENCE.replace("    return next_token", "    sample z <- \n    return next_token")
    uri, _ = await open_doc(client, text)
    result = await client.text_document_completion_async(
        lsp.CompletionParams(
            text_document=doc_id(uri), position=at(text, "sample z <- ", offset=12)
        )
    )
    items = {i.label: i for i in result.items}
    assert {"backbone", "lm_head", "h", "next_token", "Normal"} <= set(items)
    assert items["Normal"].insert_text == "Normal(${1:loc}, ${2:scale})"
    assert items["Normal"].insert_text_format == lsp.InsertTextFormat.Snippet
    assert items["h"].kind == lsp.CompletionItemKind.Variable
    assert items["Normal"].documentation.kind == lsp.MarkupKind.Markdown
    assert "z" not in items
    roles = await client.text_document_completion_async(
        lsp.CompletionParams(
            text_document=doc_id(uri), position=at(text, "[role=kernel]", offset=6)
        )
    )
    assert [i.label for i in roles.items] == ["embed", "kernel", "latent", "observed"]


async def test_signature_help(client: LanguageClient) -> None:
    text = REFERENCE.replace("lm_head(h)", "lm_head(h, ")

    async def signature(source: str, needle: str, offset: int) -> lsp.SignatureHelp:
        uri, _ = await open_doc(client, source)
        sig = await client.text_document_signature_help_async(
            lsp.SignatureHelpParams(
                text_document=doc_id(uri), position=at(source, needle, offset=offset)
            )
        )
        assert sig is not None
        assert sig.signatures[0].label == "lm_head(x1: Hidden) -> Token"
        return sig

    sig = await signature(REFERENCE, "lm_head(h)", 8)  # the cursor on h
    assert sig.active_parameter == 0
    assert text  # the incomplete call is covered by the unit tests
    # and sent here too: the call as it is while being typed, cursor after "h, "
    typing = await signature(text, "lm_head(h, ", 11)
    assert typing.active_parameter == 0  # past the only parameter: clamped to it


async def test_semantic_tokens_full_and_range(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    full = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=doc_id(uri))
    )
    tokens = _decode(full.data)
    lines = REFERENCE.split("\n")
    named = {(lines[t[0]][t[1] : t[1] + t[2]], TOKEN_TYPES[t[3]]) for t in tokens}
    assert {
        ("object", "keyword"),
        ("Token", "type"),
        ("cell", "function"),
        ("h", "variable"),
    } <= named
    assert ("Normal", "class") in named and ("vanilla_rnn_lm", "macro") in named
    part = await client.text_document_semantic_tokens_range_async(
        lsp.SemanticTokensRangeParams(
            text_document=doc_id(uri),
            range=lsp.Range(
                start=lsp.Position(line=4, character=0), end=lsp.Position(line=6, character=0)
            ),
        )
    )
    ranged = _decode(part.data)
    assert ranged and {t[0] for t in ranged} <= {4, 5, 6}
    assert [t for t in tokens if 4 <= t[0] <= 6][: len(ranged)] == ranged[: len(ranged)]


async def test_inlay_hints(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    hints = await client.text_document_inlay_hint_async(
        lsp.InlayHintParams(
            text_document=doc_id(uri),
            range=lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=12, character=0)
            ),
        )
    )
    assert [(h.position.line, h.position.character, h.label) for h in hints] == [
        (6, 12, ": Token -> Hidden"),
        (8, 12, ": Hidden"),
    ]


async def test_code_actions(client: LanguageClient) -> None:
    text = REFERENCE.replace("scan(cell)", "scan(cel)")
    uri, diagnostics = await open_doc(client, text)
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=doc_id(uri),
            range=diagnostics[0].range,
            context=lsp.CodeActionContext(diagnostics=diagnostics),
        )
    )
    assert [a.title for a in actions] == ["Replace with 'cell'"]
    (edit,) = actions[0].edit.changes[uri]
    assert edit.new_text == "cell" and edit.range == diagnostics[0].range
    assert actions[0].is_preferred and actions[0].kind == lsp.CodeActionKind.QuickFix


async def test_formatting(client: LanguageClient) -> None:
    messy = REFERENCE.replace("object Token : FinSet 256", "object   Token:FinSet 256").replace(
        "    sample h <- backbone", "    sample h<-backbone"
    )
    uri, _ = await open_doc(client, messy)
    options = lsp.FormattingOptions(tab_size=4, insert_spaces=True)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc_id(uri), options=options)
    )
    assert len(edits) == 1 and edits[0].new_text == REFERENCE
    assert edits[0].range.start == lsp.Position(line=0, character=0)
    clean, _ = await open_doc(client, REFERENCE)
    assert (
        list(
            await client.text_document_formatting_async(
                lsp.DocumentFormattingParams(text_document=doc_id(clean), options=options)
            )
        )
        == []
    )
    broken, _ = await open_doc(client, "object A : FinSet\n")
    assert (
        await client.text_document_formatting_async(
            lsp.DocumentFormattingParams(text_document=doc_id(broken), options=options)
        )
        is None
    )


async def test_code_lenses(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    lenses = await client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=doc_id(uri))
    )
    assert [(x.range.start.line, x.command.title, x.command.command) for x in lenses[:4]] == [
        (7, "Sample", "qvr.client.sample"),
        (7, "Fit", "qvr.client.fitSvi"),
        (7, "Run NUTS", "qvr.client.runNuts"),
        (7, "Flowchart", "qvr.client.showFlowchart"),
    ]
    assert all(list(x.command.arguments) == [uri, "vanilla_rnn_lm"] for x in lenses)


async def test_flowchart_request(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    result = await client.protocol.send_request_async("qvr/flowchart", {"uri": uri})
    assert result.target == "vanilla_rnn_lm" and result.error is None
    assert result.mermaid.startswith("flowchart LR")
    scan = next(n for n in result.nodes if n.label == "scan(cell)")
    assert scan.kind == "combinator"
    assert (scan.range.start.line, scan.range.start.character) == (6, 28)
    assert (scan.range.end.line, scan.range.end.character) == (6, 38)
    assert [n.kind for n in result.nodes if "next_token" in n.label] == ["observed"]
    assert list(result.targets) == ["vanilla_rnn_lm"]


async def test_flowchart_target_and_error(client: LanguageClient) -> None:
    text = REFERENCE.replace("scan(cell)", "scan(cel)")
    uri, _ = await open_doc(client, text)
    result = await client.protocol.send_request_async("qvr/flowchart", {"uri": uri})
    assert result.mermaid is None and result.error.startswith("line 7:")
    uri2, _ = await open_doc(client, REFERENCE)
    result = await client.protocol.send_request_async(
        "qvr/flowchart", {"uri": uri2, "target": "backbone"}
    )
    assert result.target == "backbone" and result.error is None
    assert [n.label for n in result.nodes] == [
        "input : Token",
        "tok_embed",
        "scan(cell)",
        "output : Hidden",
    ]


async def test_features_on_a_document_with_errors_elsewhere(client: LanguageClient) -> None:
    text = REFERENCE.replace(
        "object Hidden : Real 128", "object Hidden : Real 128\nobject Oops : FinSet\nlet bad = ) >>"
    )
    uri, diagnostics = await open_doc(client, text)
    assert {d.code for d in diagnostics} == {"E0001"}
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=at(text, "scan(cell)", offset=6))
    )
    assert hover is not None and "Embedded * Hidden -> Hidden" in hover.contents.value
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc_id(uri))
    )
    assert {"cell", "backbone", "vanilla_rnn_lm"} <= {s.name for s in symbols}
    result = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc_id(uri), position=at(text, "lm_head(h)", offset=8))
    )
    assert "h" in {i.label for i in result.items}


async def test_incremental_edit_after_a_form_feed_lands_on_the_right_line(
    client: LanguageClient,
) -> None:
    # '\x0c' and '\u2028' do not end lines (LSP, analysis); str.splitlines thinks they do
    text = "object A : Real 2  # page\x0c break \u2028 here\nobject B : Real 3\n"
    uri, diagnostics = await open_doc(client, text)
    assert list(diagnostics) == []
    edit = lsp.TextDocumentContentChangePartial(
        range=lsp.Range(
            start=lsp.Position(line=1, character=7), end=lsp.Position(line=1, character=8)
        ),
        text="Nope : FinSet",
    )
    after = await edit_doc(client, uri, 2, [edit])
    # 'object Nope : FinSet : Real 3' is a syntax error on line 1; line 0 is untouched
    assert [(d.code, d.range.start.line, d.range.start.character) for d in after] == [
        ("E0001", 1, 21)
    ]


async def test_flowchart_without_a_uri_is_an_answer_not_a_crash(client: LanguageClient) -> None:
    result = await client.protocol.send_request_async("qvr/flowchart", {"target": "x"})
    assert result.mermaid is None and "uri" in result.error


async def test_semantic_tokens_delta(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    ident = doc_id(uri)
    first = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=ident)
    )
    assert first.result_id
    edited = REFERENCE.replace("let backbone", "#! The encoder.\nlet backbone")
    await change_doc(client, uri, edited, 2)
    delta = await client.text_document_semantic_tokens_full_delta_async(
        lsp.SemanticTokensDeltaParams(text_document=ident, previous_result_id=first.result_id)
    )
    assert isinstance(delta, lsp.SemanticTokensDelta) and delta.result_id != first.result_id
    (edit,) = delta.edits
    assert len(edit.data or ()) < len(first.data) // 2  # only around the change
    patched = list(first.data)
    patched[edit.start : edit.start + edit.delete_count] = edit.data or []
    fresh = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=ident)
    )
    assert patched == list(fresh.data)
    # an unknown previous result gets every token
    again = await client.text_document_semantic_tokens_full_delta_async(
        lsp.SemanticTokensDeltaParams(text_document=ident, previous_result_id="stale")
    )
    assert isinstance(again, lsp.SemanticTokens) and list(again.data) == list(fresh.data)


async def test_save_republishes_and_pull_follows_edits(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    broken = REFERENCE.replace("FinSet 256", "FinSet")
    await change_doc(client, uri, broken, 2)
    start = inbox(client).mark()
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(text_document=doc_id(uri)))
    saved = await diagnostics_for(client, uri, 2, start)
    assert [d.code for d in saved] == ["E0001"]
    report = await client.text_document_diagnostic_async(
        lsp.DocumentDiagnosticParams(text_document=doc_id(uri))
    )
    assert [(d.code, d.range.start.line) for d in report.items] == [("E0001", 0)]


DEDUCTION = (
    "object Term : FinSet 16\n"
    "deduction PCFG : Term -> Term [semiring=LogProb, start=S]\n"
    "    atoms S, NP, VP, span, john, runs\n"
    "    rule s : span(I, K, NP), span(K, J, VP) |- span(I, J, S) #[learnable]\n"
    "    lexicon\n"
    '        "john" : NP = john #[learnable]\n'
    '        "runs" : VP = runs\n'
)


async def test_a_deduction_through_the_server(client: LanguageClient) -> None:
    uri, diagnostics = await open_doc(client, DEDUCTION)
    assert diagnostics == []
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=at(DEDUCTION, "rule s", offset=5))
    )
    assert hover is not None
    assert "premises:\n- `span(I, K, NP)`\n- `span(K, J, VP)`" in hover.contents.value
    found = await client.text_document_definition_async(
        lsp.DefinitionParams(text_document=doc_id(uri), position=at(DEDUCTION, "VP) |-"))
    )
    assert isinstance(found, list) and found[0].range.start == at(DEDUCTION, "VP, span")
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc_id(uri))
    )
    pcfg = next(s for s in symbols if s.name == "PCFG")
    assert pcfg.kind == lsp.SymbolKind.Struct
    assert [(c.name, c.kind) for c in pcfg.children or []] == [
        ("s", lsp.SymbolKind.Method),
        ('"john"', lsp.SymbolKind.String),
        ('"runs"', lsp.SymbolKind.String),
    ]
    chart = await client.protocol.send_request_async("qvr/flowchart", {"uri": uri})
    assert chart.target == "PCFG" and '-->|"NP, VP"|' in chart.mermaid
    broken = DEDUCTION.replace("span(K, J, VP) |-", "span(K, J, vp) |-")
    diagnostics = await change_doc(client, uri, broken, 2)
    assert [(d.code, d.range.start) for d in diagnostics] == [("E0801", at(broken, "vp) |-"))]


TEMPLATE = (
    "object Rows : FinSet 6\n"
    "program gmm(alpha : Positive, K : FinSet) : Rows -> Rows\n"
    "    sample probs <- Dirichlet(alpha) [over=K]\n"
    "    return probs\n"
    "export gmm\n"
)


async def test_hover_on_a_template_parameter_and_a_step_option(client: LanguageClient) -> None:
    uri, diagnostics = await open_doc(client, TEMPLATE)
    assert diagnostics == []
    param = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=at(TEMPLATE, "alpha", 1, offset=2))
    )
    assert param is not None and "alpha : Positive" in param.contents.value
    assert "template parameter: a number > 0" in param.contents.value
    assert param.range.start == at(TEMPLATE, "alpha", 1)
    option = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=at(TEMPLATE, "over=", offset=1))
    )
    assert option is not None and "**over** (step option" in option.contents.value
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc_id(uri))
    )
    assert symbols is not None
    details = [s.detail for s in symbols if isinstance(s, lsp.DocumentSymbol) and s.name == "gmm"]
    assert any(
        d and d.startswith("program gmm(alpha : Positive, K : FinSet) : Rows -> Rows")
        for d in details
    ), details
