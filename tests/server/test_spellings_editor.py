"""End to end, through the real server process: the editor features on a file written
in the later spellings (docs/language.md section 17) and on the same file in ours
(``tests/data/spellings/``): both check clean; hover, completion, the outline, the
flowchart and semantic tokens see the same module; formatting keeps each spelling;
the integer object's quick fix and the effect system's single E0005 arrive as the
editor shows them."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from quivers.analysis.tokens import TOKEN_TYPES

from .lsp_helpers import change_doc, doc_id, open_doc, pos

DATA = Path(__file__).resolve().parents[1] / "data" / "spellings"
LATER = (DATA / "later.qvr").read_text()
OURS = (DATA / "ours.qvr").read_text()
BOTH = pytest.mark.parametrize("text", [LATER, OURS], ids=["later", "ours"])


async def _hover(client: LanguageClient, uri: str, text: str, needle: str, offset: int = 0) -> str:
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=pos(text, needle, offset=offset))
    )
    assert hover is not None, needle
    return hover.contents.value


@BOTH
async def test_both_spellings_check_clean(client: LanguageClient, text: str) -> None:
    _, diagnostics = await open_doc(client, text)
    assert diagnostics == []


# (what to hover, where in it) in each spelling
NEEDLES = {
    "a": (("(a, b)", 1), ("(a, b)", 1)),
    "b": (("Normal(loc=b", 11), ("Normal(b", 7)),
    "Y": (("X, Y", 3), ("object Y", 7)),
    "k": (("morphism k", 9), ("morphism k", 9)),
    "g": (("f, g", 3), ("morphism g", 9)),
    "h": (("h(x)", 0), ("h(x)", 0)),
    "Mixture": (("Mixture", 0), ("Mixture", 0)),
    "z": (("sample z", 7), ("sample z", 7)),
}


@BOTH
async def test_hover_is_the_same_on_both(client: LanguageClient, text: str) -> None:
    uri, _ = await open_doc(client, text)
    which = 0 if text is LATER else 1
    shown = {}
    for name, needles in NEEDLES.items():
        needle, offset = needles[which]
        shown[name] = await _hover(client, uri, text, needle, offset)
    assert "a : A" in shown["a"] and "`a_b`" in shown["a"] and "tuple draw" in shown["a"]
    assert "b : X" in shown["b"]
    assert "object Y : Real 1" in shown["Y"]
    assert "kernel" in shown["k"] and "Normal" in shown["k"]
    assert "g : X -> X" in shown["g"] and "kernel" in shown["g"]
    assert "h : X -> X" in shown["h"]
    assert "Mixture(weights, components)" in shown["Mixture"]
    assert "components'" in shown["Mixture"]
    assert "z : Real 1" in shown["z"] and "sample site" in shown["z"]
    return None


@BOTH
async def test_outline_is_the_same_on_both(client: LanguageClient, text: str) -> None:
    uri, _ = await open_doc(client, text)
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=doc_id(uri))
    )
    assert symbols is not None
    top = [s.name for s in symbols]
    assert top[:10] == ["markov", "X", "Y", "A", "S", "k", "f", "g", "t", "h"], top
    (program,) = [s for s in symbols if s.name == "p" and s.children]
    assert [(c.name, c.detail) for c in program.children] == [
        ("(a, b)", "sample : A * X"),
        ("m", "sample : X"),
        ("w", "sample : Simplex 2"),
        ("z", "sample : Real 1"),
        ("y", "observe : Y"),
        ("return y", None),
    ]


@BOTH
async def test_completion_in_a_mixture_and_after_a_tuple(client: LanguageClient, text: str) -> None:
    line = next(x for x in text.split("\n") if "Mixture" in x)
    typing = text.replace(line, "    sample z <- Mixture(w, [Normal(0.0, 1.0), Stud")
    uri, _ = await open_doc(client, text)
    await change_doc(client, uri, typing, 2)
    items = await client.text_document_completion_async(
        lsp.CompletionParams(text_document=doc_id(uri), position=pos(typing, "Stud", offset=4))
    )
    assert items is not None
    labels = {i.label for i in (items.items if isinstance(items, lsp.CompletionList) else items)}
    assert "StudentT" in labels, sorted(labels)
    bound = text.replace(line, "    sample z <- Normal(")
    await change_doc(client, uri, bound, 3)
    items = await client.text_document_completion_async(
        lsp.CompletionParams(
            text_document=doc_id(uri), position=pos(bound, "z <- Normal(", offset=12)
        )
    )
    assert items is not None
    labels = {i.label for i in (items.items if isinstance(items, lsp.CompletionList) else items)}
    assert {"a", "b", "m", "w"} <= labels, sorted(labels)


async def test_flowcharts_of_both_spellings_have_the_same_shape(client: LanguageClient) -> None:
    charts = []
    for text in (LATER, OURS):
        uri, _ = await open_doc(client, text)
        chart = await client.protocol.send_request_async(
            "qvr/flowchart", {"uri": uri, "target": "p"}
        )
        assert chart.error is None and chart.mermaid.startswith("flowchart LR")
        charts.append(chart)
    later, ours = charts
    assert [n.kind for n in later.nodes] == [n.kind for n in ours.nodes]
    arrows = [line.split('"')[0] for line in later.mermaid.split("\n") if "-->" in line]
    assert arrows == [line for line in ours.mermaid.split("\n") if "-->" in line]
    labels = {n.label for n in later.nodes}
    assert {"(a, b) : A * X", "m : X", "z : Real 1", "y : Y (observed)"} <= labels, labels
    assert "Mixture(w, [Normal(loc=b, scale=1.0), StudentT(4.0, m, 2.0)])" in labels
    assert {"(a, b) : A * X", "m : X", "z : Real 1"} <= {n.label for n in ours.nodes}


async def test_semantic_tokens_and_formatting_keep_the_later_spelling(
    client: LanguageClient,
) -> None:
    uri, _ = await open_doc(client, LATER)
    full = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=doc_id(uri))
    )
    lines = LATER.split("\n")
    data = full.data
    named = set()
    line = col = 0
    for i in range(0, len(data), 5):
        line += data[i]
        col = col + data[i + 1] if data[i] == 0 else data[i + 1]
        named.add((lines[line][col : col + data[i + 2]], TOKEN_TYPES[data[i + 3]]))
    assert {("define", "keyword"), ("Mixture", "class"), ("StudentT", "class")} <= named, named
    assert ("a", "variable") in named and ("b", "variable") in named
    options = lsp.FormattingOptions(tab_size=4, insert_spaces=True)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc_id(uri), options=options)
    )
    assert list(edits or []) == []  # already canonical, in its own spelling
    messy = LATER.replace("(a, b)", "( a ,b )").replace("[1.0, 1.0]", "[ 1.0,1.0 ]")
    await change_doc(client, uri, messy, 2)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(text_document=doc_id(uri), options=options)
    )
    assert len(edits) == 1 and edits[0].new_text == LATER


async def test_integer_object_quick_fix_and_the_effect_system(client: LanguageClient) -> None:
    text = "object T : 200\nexport identity(T)\n"
    uri, diagnostics = await open_doc(client, text)
    assert [d.code for d in diagnostics] == ["E0203"]
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=doc_id(uri),
            range=diagnostics[0].range,
            context=lsp.CodeActionContext(diagnostics=diagnostics),
        )
    )
    (fix,) = [a for a in actions if a.edit is not None]
    (edit,) = fix.edit.changes[uri]
    assert edit.new_text.strip() in ("FinSet 200", "FinSet")
    effects = (
        "effect Robust\n    shrink : Real -> Real\n"
        "object X : Real 1\n"
        "program p(x) : X -> X [effects=robust]\n"
        "    observe y : X <- Normal(x, 1.0)\n"
        "    return y\n"
        "export p\n"
    )
    _, diagnostics = await open_doc(client, effects)
    assert [(d.code, d.range.start.line) for d in diagnostics] == [("E0005", 0), ("E0005", 3)]
    assert all("not supported yet" in d.message for d in diagnostics)
