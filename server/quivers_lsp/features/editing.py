"""Completion, signature help, semantic tokens, inlay hints, code actions,
formatting and code lenses."""

from __future__ import annotations

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from quivers.analysis.completion import complete_limited, signature_help
from quivers.analysis.hints import code_actions, code_lenses, inlay_hints
from quivers.analysis.tokens import raw_tokens
from quivers.syntax.formatter import format_source
from quivers_lsp import convert
from quivers_lsp.state import State, off_loop

COMPLETION_TRIGGERS = ["=", "~", "(", "[", ",", " ", ":", "<"]


def register(server: LanguageServer, state: State) -> None:
    def completion_support(ls: LanguageServer) -> tuple[bool, bool]:
        """(snippets, Markdown documentation) as the client declared them."""
        caps = ls.client_capabilities.text_document
        item = caps.completion.completion_item if caps and caps.completion else None
        if item is None:
            return False, False
        formats = item.documentation_format or []
        return bool(item.snippet_support), lsp.MarkupKind.Markdown in formats

    @server.feature(
        lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=COMPLETION_TRIGGERS)
    )
    async def completion(ls: LanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = await state.document(ls, params.text_document.uri)
        line, col = convert.position_in(doc.lines, params.position)
        snippets, markdown = completion_support(ls)
        found, cut = complete_limited(doc, line, col)
        items = [convert.completion_item(i, snippets, markdown) for i in found]
        return lsp.CompletionList(is_incomplete=cut, items=items)

    @server.feature(
        lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
        lsp.SignatureHelpOptions(trigger_characters=["(", ","]),
    )
    async def signature(
        ls: LanguageServer, params: lsp.SignatureHelpParams
    ) -> lsp.SignatureHelp | None:
        doc = await state.document(ls, params.text_document.uri)
        line, col = convert.position_in(doc.lines, params.position)
        sig = signature_help(doc, line, col)
        return convert.signature(sig) if sig is not None else None

    async def full_tokens(ls: LanguageServer, uri: str) -> lsp.SemanticTokens:
        doc = await state.document(ls, uri)
        tokens = await off_loop(lambda: convert.semantic_tokens_raw(doc.lines, raw_tokens(doc)))
        tokens.result_id = state.remember_tokens(uri, tokens.data)
        return tokens

    @server.feature(
        lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
        lsp.SemanticTokensRegistrationOptions(
            legend=convert.SEMANTIC_LEGEND,
            full=lsp.SemanticTokensFullDelta(delta=True),
            range=True,
        ),
    )
    async def tokens_full(
        ls: LanguageServer, params: lsp.SemanticTokensParams
    ) -> lsp.SemanticTokens:
        return await full_tokens(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL_DELTA)
    async def tokens_delta(
        ls: LanguageServer, params: lsp.SemanticTokensDeltaParams
    ) -> lsp.SemanticTokens | lsp.SemanticTokensDelta:
        """Only what changed since the client's last result (a few numbers after a
        keystroke instead of ~150,000 for a 5,000-line file); all of them when the
        previous result is not the one the server remembers."""
        uri = params.text_document.uri
        previous = state.tokens.get(uri)
        tokens = await full_tokens(ls, uri)
        if previous is None or previous[0] != params.previous_result_id:
            return tokens
        assert tokens.result_id is not None
        return lsp.SemanticTokensDelta(
            result_id=tokens.result_id, edits=convert.tokens_edits(previous[1], tokens.data)
        )

    @server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_RANGE)
    async def tokens_range(
        ls: LanguageServer, params: lsp.SemanticTokensRangeParams
    ) -> lsp.SemanticTokens:
        doc = await state.document(ls, params.text_document.uri)
        rng = convert.range_in(doc.lines, params.range)
        return await off_loop(
            lambda: convert.semantic_tokens_raw(doc.lines, raw_tokens(doc, rng.line, rng.end_line))
        )

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    async def hints(ls: LanguageServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        doc = await state.document(ls, params.text_document.uri)
        rng = convert.range_in(doc.lines, params.range)
        return await off_loop(
            lambda: [
                convert.inlay_hint(doc.lines, h) for h in inlay_hints(doc, rng.line, rng.end_line)
            ]
        )

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]),
    )
    async def actions(ls: LanguageServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        doc = await state.document(ls, params.text_document.uri)
        rng = convert.range_in(doc.lines, params.range)
        return [convert.code_action(doc.lines, doc.uri, a) for a in code_actions(doc, rng)]

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    async def formatting(
        ls: LanguageServer, params: lsp.DocumentFormattingParams
    ) -> list[lsp.TextEdit] | None:
        doc = await state.document(ls, params.text_document.uri)
        # the formatter writes '\n'; a document with '\r\n' line ends keeps them
        crlf = "\r\n" in doc.text
        formatted = await off_loop(
            format_source, doc.text.replace("\r\n", "\n") if crlf else doc.text
        )
        if formatted is not None and crlf:
            formatted = formatted.replace("\n", "\r\n")
        if formatted is None or formatted == doc.text:
            return None if formatted is None else []
        end_line = len(doc.lines) - 1
        whole = lsp.Range(
            start=lsp.Position(line=0, character=0),
            end=lsp.Position(
                line=end_line,
                character=convert._utf16_col(doc.lines, end_line, len(doc.lines[end_line])),
            ),
        )
        return [lsp.TextEdit(range=whole, new_text=formatted)]

    @server.feature(lsp.TEXT_DOCUMENT_CODE_LENS, lsp.CodeLensOptions(resolve_provider=False))
    async def lenses(ls: LanguageServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        doc = await state.document(ls, params.text_document.uri)
        return await off_loop(
            lambda: [convert.code_lens(doc.lines, doc.uri, lens) for lens in code_lenses(doc)]
        )
