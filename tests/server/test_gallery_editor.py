"""End-to-end, through the real server process: the editor features on issue 11's
constructs (plates, indexing, the gallery's families, plate programs' returns, the
`composition NAME as real` spelling and a relation's rows). Hover on a plate site shows
its set and size; completion offers the new families; semantic tokens and the outline
cover every construct; the flowchart renders."""

from __future__ import annotations

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from quivers.analysis.tokens import TOKEN_TYPES

from .lsp_helpers import change_doc, doc_id, open_doc, pos

GALLERY = """\
composition ppca as real
object School : FinSet 8
object Group : FinSet 3
object Code : FinSet 2
object X : Real 1
object Y : Real 1
morphism Z : Group -> Code [role=latent]
morphism W : Code -> Group [role=latent]
let loadings = Z >> W

program eight_schools : School -> School
    sample mu <- Normal(0.0, 5.0)
    sample tau <- HalfCauchy(5.0)
    sample eta : School <- Normal(0.0, 1.0)
    let theta = mu + tau * eta
    let sd = sigma + 0.0
    observe y : School <- StudentT(4.0, theta, sd)
    return theta

program grouped(x) : X -> Y
    sample beta : Group <- Laplace(0.0, 5.0)
    sample scale <- InverseGamma(2.0, 1.0)
    let b = beta[group]
    let shift = loadings[group]
    let mu = b * x + sum(shift)
    observe y : Y <- Normal(mu, scale)
    return y

export eight_schools
export grouped
"""


def _decode(data) -> list[tuple[int, int, int, int, int]]:  # type: ignore[no-untyped-def]
    out = []
    line = col = 0
    for i in range(0, len(data), 5):
        dl, dc, length, kind, mods = data[i : i + 5]
        line += dl
        col = col + dc if dl == 0 else dc
        out.append((line, col, length, kind, mods))
    return out


async def _hover(client: LanguageClient, uri: str, needle: str, occurrence: int = 0) -> str:
    hover = await client.text_document_hover_async(
        lsp.HoverParams(
            text_document=doc_id(uri), position=pos(GALLERY, needle, occurrence, offset=1)
        )
    )
    assert hover is not None, needle
    return hover.contents.value


async def test_the_gallery_document_checks_clean(client: LanguageClient) -> None:
    _, diagnostics = await open_doc(client, GALLERY)
    assert diagnostics == []


async def test_hover_on_plates_indexing_and_returns(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, GALLERY)
    eta = await _hover(client, uri, "eta :")
    assert "eta : Real 1 [School]" in eta and "plate over School (8 elements)" in eta
    assert "(8, 1)" in eta
    beta = await _hover(client, uri, "beta :")
    assert "plate over Group (3 elements)" in beta
    assert "group : Group" in await _hover(client, uri, "group]")
    assert "HalfCauchy(scale)" in await _hover(client, uri, "HalfCauchy")
    header = await _hover(client, uri, "eight_schools :")
    assert "returns Real 1 [School]" in header, header
    label = await _hover(client, uri, "ppca")
    assert "composition **ppca** under the **real** algebra" in label
    assert "let loadings : Group -> Group" in await _hover(client, uri, "loadings[")


async def test_completion_offers_the_new_families(client: LanguageClient) -> None:
    typing = GALLERY.replace("sample scale <- InverseGamma(2.0, 1.0)", "sample scale <- Half")
    uri, _ = await open_doc(client, GALLERY)
    await change_doc(client, uri, typing, 2)
    point = pos(typing, "<- Half", offset=7)
    items = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc_id(uri), position=point)
    )
    assert items is not None
    labels = {i.label for i in (items.items if isinstance(items, lsp.CompletionList) else items)}
    assert {"HalfCauchy", "HalfStudentT", "HalfNormal"} <= labels, sorted(labels)


async def test_semantic_tokens_cover_every_construct(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, GALLERY)
    full = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=doc_id(uri))
    )
    lines = GALLERY.split("\n")
    named = {(lines[t[0]][t[1] : t[1] + t[2]], TOKEN_TYPES[t[3]]) for t in _decode(full.data)}
    assert {
        ("ppca", "variable"),  # the composition's label
        ("real", "enumMember"),  # the algebra
        ("HalfCauchy", "class"),
        ("InverseGamma", "class"),
        ("Laplace", "class"),
        ("StudentT", "class"),
        ("beta", "variable"),
        ("group", "variable"),  # host ids
        ("loadings", "function"),  # a relation read by rows
        ("sum", "function"),
        ("School", "type"),
    } <= named, sorted(named)


async def test_outline_covers_plates_and_the_labelled_composition(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, GALLERY)
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc_id(uri))
    )
    assert symbols is not None
    by_name = {s.name: s for s in symbols if s.detail != "export"}
    assert by_name["ppca"].detail == "real algebra"
    details = {c.name: c.detail for c in by_name["eight_schools"].children}
    assert details["eta"] == "sample : Real 1 [School]"
    assert details["y"] == "observe : Real 1 [School]"
    grouped = {c.name: c.detail for c in by_name["grouped"].children}
    assert grouped["beta"] == "sample : Real 1 [Group]" and grouped["b"] == "let : Real 1"
    assert grouped["shift"] == "let : Real 3"


async def test_flowchart_renders_plates_and_indexing(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, GALLERY)
    chart = await client.protocol.send_request_async(
        "qvr/flowchart", {"uri": uri, "target": "grouped"}
    )
    assert chart.error is None and chart.mermaid.startswith("flowchart LR")
    labels = {n.label for n in chart.nodes}
    assert {"beta : Real 1 [Group]", "group (data)", "let b = beta[group]"} <= labels
    assert {"loadings", "let shift = loadings[group]"} <= labels
    plates = await client.protocol.send_request_async(
        "qvr/flowchart", {"uri": uri, "target": "eight_schools"}
    )
    assert plates.error is None
    assert "eta : Real 1 [School]" in {n.label for n in plates.nodes}
    assert list(plates.targets) == ["eight_schools", "grouped"]
