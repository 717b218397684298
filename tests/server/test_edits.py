"""Smaller defects of issue 14, item 10, through the real server: a reversed edit
range is applied normalised (not dropped), and formatting keeps CRLF line ends."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .lsp_helpers import REFERENCE, doc_id, edit_doc, open_doc, pos


async def test_a_reversed_edit_range_is_applied_normalised(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    start = pos(REFERENCE, "scan(cell)", offset=5)
    end = pos(REFERENCE, "scan(cell)", offset=9)
    # end before start: 'cell' replaced by 'cel' all the same
    diagnostics = await edit_doc(
        client,
        uri,
        2,
        [lsp.TextDocumentContentChangePartial(range=lsp.Range(start=end, end=start), text="cel")],
    )
    assert [d.code for d in diagnostics] == ["E0101"]
    assert "unknown morphism 'cel'" in diagnostics[0].message
    assert diagnostics[0].range.start == start


async def test_formatting_keeps_crlf_line_ends(client: LanguageClient) -> None:
    messy = REFERENCE.replace("object Token : FinSet 256", "object   Token:FinSet 256")
    uri, _ = await open_doc(client, messy.replace("\n", "\r\n"))
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            text_document=doc_id(uri), options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)
        )
    )
    (edit,) = edits
    assert edit.new_text == REFERENCE.replace("\n", "\r\n")
    clean, _ = await open_doc(client, REFERENCE.replace("\n", "\r\n"))
    same = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            text_document=doc_id(clean),
            options=lsp.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )
    assert list(same) == []
