"""End-to-end: the server process answers the basic features on the reference program."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .lsp_helpers import REFERENCE, change_doc, doc_id, open_doc, pos


async def test_reference_program_is_clean_and_typed(client: LanguageClient) -> None:
    uri, diagnostics = await open_doc(client, REFERENCE)
    assert diagnostics == []
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=pos(REFERENCE, "cell", 1, 1))
    )
    assert hover is not None
    assert "Embedded * Hidden -> Hidden" in hover.contents.value


async def test_error_is_published_with_version(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    broken = REFERENCE.replace("scan(cell)", "scan(cel)")
    diagnostics = await change_doc(client, uri, broken, 2)
    assert [d.code for d in diagnostics] == ["E0101"]
    assert "did you mean 'cell'?" in diagnostics[0].message


async def test_flowchart_request(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    result = await client.protocol.send_request_async("qvr/flowchart", {"uri": uri})
    assert result.target == "vanilla_rnn_lm"
    assert result.mermaid.startswith("flowchart LR")
    labels = [n.label for n in result.nodes]
    assert "scan(cell)" in labels and "lm_head" in labels


async def test_sample_command_runs_in_worker(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    result = await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="qvr.sample", arguments=[uri, {"n": 3, "seed": 1}])
    )
    assert result["ok"], result
    assert result["samples"]["next_token"]["shape"] == [3]
    assert result["samples"]["h"]["shape"] == [3, 128]
