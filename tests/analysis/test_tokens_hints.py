"""Semantic tokens, inlay hints, code actions and code lenses."""

from __future__ import annotations

from quivers.analysis.hints import code_actions, code_lenses, inlay_hints
from quivers.analysis.tokens import TOKEN_MODIFIERS, TOKEN_TYPES, semantic_tokens
from quivers.core.diagnostics import Range

from .helpers import REFERENCE, doc, examples, where, with_broken_neighbours


def token_map(text: str, start: int = 0, end: int | None = None) -> dict[str, set]:
    d = doc(text)
    out: dict[str, set] = {}
    for t in semantic_tokens(d, start, end):
        word = d.lines[t.line][t.col : t.col + t.length]
        out.setdefault(word, set()).add((t.type, t.modifiers))
    return out


def test_names_are_classified_by_what_they_resolve_to() -> None:
    m = token_map(REFERENCE)
    assert ("type", ("declaration",)) in m["Token"] and ("type", ()) in m["Token"]
    assert ("function", ("declaration",)) in m["cell"] and ("function", ()) in m["cell"]
    assert ("function", ("declaration",)) in m["backbone"]
    assert ("macro", ("declaration",)) in m["vanilla_rnn_lm"]
    assert ("variable", ("declaration",)) in m["h"] and ("variable", ()) in m["h"]


def test_keywords_families_roles_options_numbers_operators() -> None:
    m = token_map(REFERENCE)
    for kw in ("object", "morphism", "let", "program", "sample", "observe", "return", "export"):
        assert m[kw] == {("keyword", ())}, kw
    assert m["FinSet"] == {("keyword", ())} and m["scan"] == {("keyword", ())}
    assert m["Normal"] == {("class", ("defaultLibrary",))}
    assert m["kernel"] == {("enumMember", ())}
    assert m["role"] == {("property", ())} and m["scale"] == {("property", ())}
    assert m["256"] == {("number", ())} and m["0.1"] == {("number", ())}
    assert ("operator", ()) in m[">>"] and ("operator", ()) in m["<-"]


def test_parameters_host_data_and_functions() -> None:
    text = (
        "object R : Real 1\nprogram p(x) : R -> R\n    sample s <- Normal(0.0, 1.0)\n"
        "    let m = sqrt(s * x + se)\n    observe y : R <- Normal(m, 1.0)\n    return y\nexport p\n"
    )
    m = token_map(text)
    assert ("parameter", ("declaration",)) in m["x"] and ("parameter", ()) in m["x"]
    assert all(cls == "variable" and "readonly" in mods for cls, mods in m["se"])
    assert m["sqrt"] == {("function", ("defaultLibrary",))}


def test_comments_and_doc_comments() -> None:
    text = "# plain\n#! documented\nobject A : FinSet 2  # trailing\n#{ block\nstill }#\n"
    d = doc(text)
    comments = [
        (t.line, t.col, t.length, t.modifiers) for t in semantic_tokens(d) if t.type == "comment"
    ]
    assert comments == [
        (0, 0, 7, ()),
        (1, 0, 13, ("documentation",)),
        (2, 21, 10, ()),
        (3, 0, 8, ()),
        (4, 0, 8, ()),
    ]
    # words inside comments are not tokens of their own
    assert not any(t.type == "keyword" and t.line in (0, 1, 3, 4) for t in semantic_tokens(d))


def test_tokens_are_sorted_within_lines_and_use_the_legend() -> None:
    for text in examples().values():
        toks = semantic_tokens(doc(text))
        keys = [(t.line, t.col) for t in toks]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        for a, b in zip(toks, toks[1:], strict=False):
            assert a.line < b.line or a.col + a.length <= b.col
        assert all(t.type in TOKEN_TYPES for t in toks)
        assert all(m in TOKEN_MODIFIERS for t in toks for m in t.modifiers)


def test_range_request_is_the_slice_of_full() -> None:
    d = doc(REFERENCE)
    full = semantic_tokens(d)
    part = semantic_tokens(d, 4, 6)
    assert part == [t for t in full if 4 <= t.line <= 6]


def test_tokens_survive_broken_neighbours() -> None:
    m = token_map(with_broken_neighbours(REFERENCE))
    assert ("function", ("declaration",)) in m["cell"]
    assert ("variable", ("declaration",)) in m["h"]


# ---------------------------------------------------------------- inlay hints


def test_inlay_hints_for_lets_and_unannotated_sites() -> None:
    d = doc(REFERENCE)
    hints = [(h.line, h.col, h.label, h.tooltip) for h in inlay_hints(d)]
    assert hints == [(6, 12, ": Token -> Hidden", ""), (8, 12, ": Hidden", "per row")]


def test_inlay_hints_mark_global_sites_and_respect_the_range() -> None:
    text = (
        "object R : Real 1\nprogram p(x) : R -> R\n    sample s <- Normal(0.0, 1.0)\n"
        "    let m = s * x\n    observe y : R <- Normal(m, 1.0)\n    return y\nexport p\n"
    )
    d = doc(text)
    hints = [(h.line, h.label, h.tooltip) for h in inlay_hints(d)]
    assert hints == [(2, ": Real 1", "global"), (3, ": Real 1", "per row")]
    assert [h.line for h in inlay_hints(d, 3, 6)] == [3]


def test_inlay_hints_survive_broken_neighbours() -> None:
    text = with_broken_neighbours(REFERENCE)
    labels = {h.label for h in inlay_hints(doc(text))}
    assert labels == {": Token -> Hidden", ": Hidden"}  # no ': ? -> ?' on the broken lets


def test_no_inlay_hint_for_an_unknown_type() -> None:
    text = "object A : Real 2\nlet e = nope >> nope\nlet w = A\n"
    assert inlay_hints(doc(text)) == []


# ---------------------------------------------------------------- code actions

ACTIONS = (
    "object A : Real 2\nmorphism cell : A -> A [role=kernel] ~ Normal\nlet e = cel >> cell\n"
    "morphism g : A -> Bee [role=kernel] ~ Normal\n"
    "morphism h : A -> A [role=kernel, scael=0.1] ~ Normal\nexport e\n"
)


def apply(text: str, edits) -> str:  # type: ignore[no-untyped-def]
    for e in sorted(edits, key=lambda e: e.range.offset, reverse=True):
        text = text[: e.range.offset] + e.new_text + text[e.range.end_offset :]
    return text


def actions_on(text: str, line: int):  # type: ignore[no-untyped-def]
    return code_actions(doc(text), Range(line, 0, line, 80))


def test_did_you_mean_replacement() -> None:
    (action,) = actions_on(ACTIONS, 2)
    assert action.title == "Replace with 'cell'" and action.preferred
    assert action.diagnostic is not None and action.diagnostic.code == "E0101"
    fixed = apply(ACTIONS, action.edits)
    assert "let e = cell >> cell" in fixed
    assert not [x for x in doc(fixed).analysis.diagnostics if x.range.line == 2]


def test_misspelt_option_replacement() -> None:
    (action,) = actions_on(ACTIONS, 4)
    assert action.title == "Replace with 'scale'"
    assert "[role=kernel, scale=0.1]" in apply(ACTIONS, action.edits)


def test_declare_missing_object() -> None:
    (action,) = actions_on(ACTIONS, 3)
    assert action.title == "Declare object 'Bee'" and not action.preferred
    fixed = apply(ACTIONS, action.edits)
    assert "object Bee :" in fixed
    assert not any("Bee" in x.message for x in doc(fixed).analysis.diagnostics)


def test_no_actions_on_clean_lines() -> None:
    assert actions_on(ACTIONS, 0) == [] and actions_on(ACTIONS, 1) == []


def test_actions_survive_broken_neighbours() -> None:
    text = with_broken_neighbours(ACTIONS)
    line = where(text, "cel >>")[0]
    assert [a.title for a in actions_on(text, line)] == ["Replace with 'cell'"]


# ---------------------------------------------------------------- code lenses


def test_code_lenses_above_programs_and_exports() -> None:
    lenses = code_lenses(doc(REFERENCE))
    assert [(x.range.line, x.title, x.command, x.target) for x in lenses] == [
        (7, "Sample", "qvr.client.sample", "vanilla_rnn_lm"),
        (7, "Fit", "qvr.client.fitSvi", "vanilla_rnn_lm"),
        (7, "Run NUTS", "qvr.client.runNuts", "vanilla_rnn_lm"),
        (7, "Flowchart", "qvr.client.showFlowchart", "vanilla_rnn_lm"),
        (11, "Sample", "qvr.client.sample", "vanilla_rnn_lm"),
        (11, "Fit", "qvr.client.fitSvi", "vanilla_rnn_lm"),
        (11, "Run NUTS", "qvr.client.runNuts", "vanilla_rnn_lm"),
        (11, "Flowchart", "qvr.client.showFlowchart", "vanilla_rnn_lm"),
    ]


def test_code_lenses_survive_broken_neighbours() -> None:
    lenses = code_lenses(doc(with_broken_neighbours(REFERENCE)))
    assert {x.target for x in lenses} == {"vanilla_rnn_lm"} and len(lenses) == 8


def test_cached_tokens_equal_fresh_tokens_across_edits() -> None:
    """Tokens of unchanged statements are reused across edits (a per-statement cache);
    moving lines, re-indenting and editing must give what a cold computation gives."""
    import random

    from quivers.analysis import Document
    from quivers.syntax.cache import FrontendCache

    cache = FrontendCache()
    rng = random.Random(5)
    text = with_broken_neighbours(REFERENCE) + "\n" + REFERENCE.replace("export", "#export")
    edits = ["\n", "  ", "x", "# c", "#! d\n", "", "    sample q <- cell\n", "\t"]
    for _ in range(120):
        a = rng.randrange(len(text) + 1)
        b = min(len(text), a + rng.choice([0, 0, 1, 5]))
        text = text[:a] + rng.choice(edits) + text[b:]
        warm = semantic_tokens(Document(text, "file:///test.qvr", 1, cache))
        assert warm == semantic_tokens(Document(text, "file:///test.qvr", 1, FrontendCache()))


def test_template_parameters_and_step_options() -> None:
    text = (
        "object Rows : FinSet 6\n"
        "program gmm(alpha : Positive, K : FinSet) : Rows -> Rows\n"
        "    sample probs <- Dirichlet(alpha) [over=K]\n"
        "    sample mu : K <- Normal(0.0, 5.0)\n"
        "    return probs\n"
        "export gmm\n"
    )
    m = token_map(text)
    # `alpha : Positive` is a fixed parameter, `K : FinSet` a type, wherever they stand
    assert m["alpha"] == {("parameter", ("declaration", "readonly")), ("parameter", ("readonly",))}
    assert m["K"] == {("type", ("declaration", "readonly")), ("type", ("readonly",))}
    assert m["over"] == {("property", ())}
