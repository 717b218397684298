"""The custom request ``qvr/flowchart`` (see docs/dev/editor-protocol.md)."""

from __future__ import annotations

from typing import Any

from pygls.lsp.server import LanguageServer

from quivers.analysis.flowchart import flowchart
from quivers_lsp import convert
from quivers_lsp.state import State

FLOWCHART = "qvr/flowchart"


def register(server: LanguageServer, state: State) -> None:
    @server.feature(FLOWCHART)
    def chart(ls: LanguageServer, params: Any) -> dict[str, object]:
        uri = getattr(params, "uri", None) or (
            params.get("uri") if isinstance(params, dict) else None
        )
        target = getattr(params, "target", None)
        doc = state.document(ls, uri)
        return convert.flowchart(doc.lines, flowchart(doc, target))


def _field(params: Any, name: str) -> Any:
    """Custom request params arrive as a dict or an attribute-access object."""
    if isinstance(params, dict):
        return params.get(name)
    return getattr(params, name, None)
