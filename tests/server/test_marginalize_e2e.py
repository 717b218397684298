"""End-to-end through the real server process: a `marginalize` block checks, its
latent's hover says it is summed out, the outline nests its body, the flowchart
boxes it, and a broken block gets its diagnostic."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .lsp_helpers import change_doc, doc_id, open_doc, pos

MIXTURE = (Path(__file__).resolve().parents[1] / "data" / "marginalize" / "mixture.qvr").read_text()


async def test_marginalize_block_through_the_server(client: LanguageClient) -> None:
    uri, diagnostics = await open_doc(client, MIXTURE)
    assert diagnostics == []
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=pos(MIXTURE, "[c]", offset=1))
    )
    assert hover is not None and hover.contents.kind == lsp.MarkupKind.Markdown
    assert "summed out (marginalized) · one per row · not a site" in hover.contents.value
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc_id(uri))
    )
    program = next(s for s in symbols if s.kind == lsp.SymbolKind.Module)
    block = next(c for c in program.children if c.name == "c")
    assert block.kind == lsp.SymbolKind.Namespace
    assert [c.name for c in block.children] == ["m", "y"]
    chart = await client.protocol.send_request_async("qvr/flowchart", {"uri": uri})
    assert chart.error is None and 'subgraph m0["marginalize c : K (logsumexp)"]' in chart.mermaid
    assert [n.kind for n in chart.nodes if n.label.startswith("c :")] == ["marginal"]
    assert chart.groups[0].title == "marginalize c : K (logsumexp)"
    broken = MIXTURE.replace("Categorical(w)", "Normal(0.0, 1.0)")
    diagnostics = await change_doc(client, uri, broken, 2)
    assert [(d.code, d.range.start.line) for d in diagnostics] == [("E0540", 6)]
