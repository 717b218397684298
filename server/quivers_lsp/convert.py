"""The one place where analysis data becomes lsprotocol types and back.

The analysis layer counts columns in code points; LSP clients count UTF-16 code
units by default. Conversion is exact for every line and free for ASCII lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types as lsp

from quivers.analysis.completion import CompletionItem, Signature
from quivers.analysis.flowchart import Flowchart
from quivers.analysis.hints import CodeAction, CodeLens, InlayHint
from quivers.analysis.hover import Hover
from quivers.analysis.outline import OutlineSymbol
from quivers.analysis.tokens import TOKEN_MODIFIERS, TOKEN_TYPES, RawToken, SemanticToken
from quivers.core.diagnostics import Diagnostic, Range, Severity, TextEdit

Lines = Sequence[str]


# ------------------------------------------------------------------ positions


def _utf16_col(lines: Lines, line: int, col: int) -> int:
    if line >= len(lines):
        return col
    text = lines[line]
    if text.isascii():
        return col
    # surrogatepass: a lone surrogate (pasted from a broken file) counts as one unit
    return len(text[:col].encode("utf-16-le", "surrogatepass")) // 2


def _codepoint_col(lines: Lines, line: int, units: int) -> int:
    if line >= len(lines):
        return units
    return codepoint_col(lines[line], units)


def codepoint_col(text: str, units: int) -> int:
    """The code-point column of UTF-16 column ``units`` in ``text`` (clamped to it)."""
    if text.isascii():
        return min(units, len(text))
    count = 0
    for i, ch in enumerate(text):
        if count >= units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def position_in(lines: Lines, pos: lsp.Position) -> tuple[int, int]:
    return pos.line, _codepoint_col(lines, pos.line, pos.character)


def range_in(lines: Lines, rng: lsp.Range) -> Range:
    a = position_in(lines, rng.start)
    b = position_in(lines, rng.end)
    return Range(a[0], a[1], b[0], b[1])


def to_range(lines: Lines, rng: Range) -> lsp.Range:
    return lsp.Range(
        start=lsp.Position(line=rng.line, character=_utf16_col(lines, rng.line, rng.col)),
        end=lsp.Position(line=rng.end_line, character=_utf16_col(lines, rng.end_line, rng.end_col)),
    )


# ---------------------------------------------------------------- diagnostics

_SEVERITY = {
    Severity.ERROR: lsp.DiagnosticSeverity.Error,
    Severity.WARNING: lsp.DiagnosticSeverity.Warning,
    Severity.INFO: lsp.DiagnosticSeverity.Information,
}


def diagnostic(lines: Lines, d: Diagnostic) -> lsp.Diagnostic:
    message = d.message + (f"; {d.suggestion}" if d.suggestion else "")
    return lsp.Diagnostic(
        range=to_range(lines, d.range),
        message=message,
        severity=_SEVERITY[d.severity],
        code=d.code,
        source="qvr",
    )


def text_edit(lines: Lines, e: TextEdit) -> lsp.TextEdit:
    return lsp.TextEdit(range=to_range(lines, e.range), new_text=e.new_text)


# ------------------------------------------------------------------- symbols

_SYMBOL_KINDS = {
    "object": lsp.SymbolKind.Class,
    "morphism": lsp.SymbolKind.Function,
    "let": lsp.SymbolKind.Function,
    "program": lsp.SymbolKind.Module,
    "export": lsp.SymbolKind.Package,
    "composition": lsp.SymbolKind.Enum,
    "deduction": lsp.SymbolKind.Struct,
    "rule": lsp.SymbolKind.Method,
    "entry": lsp.SymbolKind.String,
    "sample": lsp.SymbolKind.Variable,
    "observe": lsp.SymbolKind.Event,
    "score": lsp.SymbolKind.Variable,
    "return": lsp.SymbolKind.Key,
    "marginalize": lsp.SymbolKind.Namespace,  # a block holding the steps it sums over
}


def symbol_kind(kind: str) -> lsp.SymbolKind:
    return _SYMBOL_KINDS.get(kind, lsp.SymbolKind.Variable)


def document_symbol(lines: Lines, s: OutlineSymbol) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(
        name=s.name,
        kind=symbol_kind(s.kind),
        detail=s.detail or None,
        range=to_range(lines, s.range),
        selection_range=to_range(lines, s.selection),
        children=[document_symbol(lines, c) for c in s.children],
    )


# ---------------------------------------------------------------- completion

_COMPLETION_KINDS = {
    "keyword": lsp.CompletionItemKind.Keyword,
    "object": lsp.CompletionItemKind.Class,
    "morphism": lsp.CompletionItemKind.Function,
    "let": lsp.CompletionItemKind.Function,
    "program": lsp.CompletionItemKind.Module,
    "variable": lsp.CompletionItemKind.Variable,
    "family": lsp.CompletionItemKind.Struct,
    "role": lsp.CompletionItemKind.EnumMember,
    "option": lsp.CompletionItemKind.Property,
    "algebra": lsp.CompletionItemKind.EnumMember,
    "function": lsp.CompletionItemKind.Function,
    "type": lsp.CompletionItemKind.TypeParameter,
    "value": lsp.CompletionItemKind.Value,
}


def completion_item(
    item: CompletionItem, snippets: bool, markdown: bool = True
) -> lsp.CompletionItem:
    """``markdown``: whether the client renders Markdown documentation (else plain text)."""
    insert = item.insert_text
    fmt = lsp.InsertTextFormat.PlainText
    if item.snippet:
        if snippets:
            fmt = lsp.InsertTextFormat.Snippet
        else:
            insert = item.label
    return lsp.CompletionItem(
        label=item.label,
        kind=_COMPLETION_KINDS.get(item.kind, lsp.CompletionItemKind.Text),
        detail=item.detail or None,
        documentation=(
            None
            if not item.documentation
            else lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=item.documentation)
            if markdown
            else item.documentation
        ),
        insert_text=insert,
        insert_text_format=fmt,
    )


def signature(sig: Signature) -> lsp.SignatureHelp:
    active = min(sig.active, max(len(sig.parameters) - 1, 0))
    return lsp.SignatureHelp(
        signatures=[
            lsp.SignatureInformation(
                label=sig.label,
                documentation=sig.documentation or None,
                parameters=[lsp.ParameterInformation(label=p) for p in sig.parameters],
            )
        ],
        active_signature=0,
        active_parameter=active,
    )


# ------------------------------------------------------------ semantic tokens

SEMANTIC_LEGEND = lsp.SemanticTokensLegend(
    token_types=list(TOKEN_TYPES), token_modifiers=list(TOKEN_MODIFIERS)
)


def hover(lines: Lines, found: Hover, markdown: bool = True) -> lsp.Hover:
    """``markdown``: whether the client renders Markdown hovers (else plain text)."""
    kind = lsp.MarkupKind.Markdown if markdown else lsp.MarkupKind.PlainText
    return lsp.Hover(
        contents=lsp.MarkupContent(kind=kind, value=found.markdown),
        range=to_range(lines, found.range),
    )


def semantic_tokens_raw(lines: Lines, tokens: list[RawToken]) -> lsp.SemanticTokens:
    """Relative encoding of raw (line, col, length, type, bits) tokens, in UTF-16 units."""
    data: list[int] = []
    push = data.extend
    prev_line = prev_col = 0
    ascii_line = -1  # the last line known to be ASCII (columns need no conversion)
    for line, col, length, kind, bits in tokens:
        if line != ascii_line:
            if line < len(lines) and not lines[line].isascii():
                end = _utf16_col(lines, line, col + length)
                col = _utf16_col(lines, line, col)
                length = end - col
            else:
                ascii_line = line
        if line == prev_line:
            push((0, col - prev_col, length, kind, bits))
        else:
            push((line - prev_line, col, length, kind, bits))
        prev_line, prev_col = line, col
    return lsp.SemanticTokens(data=data)


def tokens_edits(old: Sequence[int], new: Sequence[int]) -> list[lsp.SemanticTokensEdit]:
    """One edit turning ``old`` into ``new`` (common prefix and suffix kept), or none."""
    if old == new:
        return []
    size = min(len(old), len(new))
    start = 0
    chunk = 512
    while start + chunk <= size and old[start : start + chunk] == new[start : start + chunk]:
        start += chunk
    while start < size and old[start] == new[start]:
        start += 1
    end = 0  # length of the common suffix, not overlapping the prefix
    limit = size - start
    while (
        end + chunk <= limit
        and old[len(old) - end - chunk : len(old) - end]
        == new[len(new) - end - chunk : len(new) - end]
    ):
        end += chunk
    while end < limit and old[len(old) - end - 1] == new[len(new) - end - 1]:
        end += 1
    return [
        lsp.SemanticTokensEdit(
            start=start,
            delete_count=len(old) - end - start,
            data=list(new[start : len(new) - end]),
        )
    ]


def semantic_tokens(lines: Lines, tokens: list[SemanticToken]) -> lsp.SemanticTokens:
    data: list[int] = []
    prev_line = prev_col = 0
    for t in tokens:
        col = _utf16_col(lines, t.line, t.col)
        length = _utf16_col(lines, t.line, t.col + t.length) - col
        delta_line = t.line - prev_line
        delta_col = col - prev_col if delta_line == 0 else col
        bits = 0
        for m in t.modifiers:
            bits |= 1 << TOKEN_MODIFIERS.index(m)
        data.extend((delta_line, delta_col, length, TOKEN_TYPES.index(t.type), bits))
        prev_line, prev_col = t.line, col
    return lsp.SemanticTokens(data=data)


# --------------------------------------------------------- hints, actions, lenses


def inlay_hint(lines: Lines, h: InlayHint) -> lsp.InlayHint:
    return lsp.InlayHint(
        position=lsp.Position(line=h.line, character=_utf16_col(lines, h.line, h.col)),
        label=h.label,
        kind=lsp.InlayHintKind.Type,
        tooltip=h.tooltip or None,
        padding_left=False,
    )


def code_action(lines: Lines, uri: str, a: CodeAction) -> lsp.CodeAction:
    diagnostics = [diagnostic(lines, a.diagnostic)] if a.diagnostic is not None else None
    return lsp.CodeAction(
        title=a.title,
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=diagnostics,
        is_preferred=a.preferred or None,
        edit=lsp.WorkspaceEdit(changes={uri: [text_edit(lines, e) for e in a.edits]}),
    )


def code_lens(lines: Lines, uri: str, lens: CodeLens) -> lsp.CodeLens:
    return lsp.CodeLens(
        range=to_range(lines, lens.range),
        command=lsp.Command(title=lens.title, command=lens.command, arguments=[uri, lens.target]),
    )


def flowchart(lines: Lines, chart: Flowchart) -> dict[str, object]:
    def rng(r: Range | None) -> dict[str, object] | None:
        if r is None:
            return None
        lr = to_range(lines, r)
        return {
            "start": {"line": lr.start.line, "character": lr.start.character},
            "end": {"line": lr.end.line, "character": lr.end.character},
        }

    return {
        "target": chart.target,
        "mermaid": chart.mermaid,
        "nodes": [
            {"id": n.id, "label": n.label, "kind": n.kind, "range": rng(n.range)}
            for n in chart.nodes
        ],
        "targets": chart.targets,
        "error": chart.error,
        "groups": [{"title": title, "nodes": ids} for title, ids in chart.groups],
    }
