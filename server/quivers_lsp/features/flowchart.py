"""The custom request ``qvr/flowchart`` (see docs/dev/editor-protocol.md)."""

from __future__ import annotations

from typing import Any

from pygls.lsp.server import LanguageServer

from quivers.analysis.flowchart import flowchart
from quivers_lsp import convert
from quivers_lsp.state import State, off_loop

FLOWCHART = "qvr/flowchart"


def register(server: LanguageServer, state: State) -> None:
    @server.feature(FLOWCHART)
    async def chart(ls: LanguageServer, params: Any) -> dict[str, object]:
        uri = _field(params, "uri")
        target = _field(params, "target")
        if not isinstance(uri, str):
            return {
                "target": None,
                "mermaid": None,
                "nodes": [],
                "targets": [],
                "error": "qvr/flowchart needs a document uri",
            }
        doc = await state.document(ls, uri)
        return await off_loop(lambda: convert.flowchart(doc.lines, flowchart(doc, target)))


def _field(params: Any, name: str) -> Any:
    """Custom request params arrive as a dict or an attribute-access object."""
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)
