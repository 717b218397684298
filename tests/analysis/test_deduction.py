"""Editor features on deduction blocks: outline, hover, definitions, semantic tokens
and the flowchart (rules as nodes, categories as edges)."""

from __future__ import annotations

from quivers.analysis.flowchart import flowchart, targets
from quivers.analysis.hover import hover
from quivers.analysis.navigation import definition
from quivers.analysis.outline import document_symbols
from quivers.analysis.tokens import semantic_tokens

from .helpers import EXAMPLES, at, doc

PCFG = (EXAMPLES / "pcfg.qvr").read_text()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def test_outline_lists_the_deduction_with_its_rules_and_entries() -> None:
    symbols = {s.name: s for s in document_symbols(doc(PCFG))}
    pcfg = symbols["PCFG"]
    assert pcfg.kind == "deduction"
    assert pcfg.detail == "deduction PCFG : Term -> Term"
    rules = [c for c in pcfg.children if c.kind == "rule"]
    assert [r.name for r in rules] == ["s_np_vp", "np_det_n", "n_adj_n", "vp_v", "vp_v_np"]
    assert rules[0].detail == "span(I, K, NP), span(K, J, VP) |- span(I, J, S) #[learnable]"
    assert rules[0].selection.line == _line_of(PCFG, "rule s_np_vp")
    entries = [c for c in pcfg.children if c.kind == "entry"]
    assert [e.name for e in entries][:2] == ['"the"', '"a"'] and entries[0].detail == "Det"


def test_hover_on_a_rule_shows_its_premises_and_conclusion() -> None:
    text = PCFG.replace("rule s_np_vp", "rule s_n$0p_vp")
    d, line, col = at(text)
    h = hover(d, line, col)
    assert h is not None
    assert "rule s_np_vp : span(I, K, NP), span(K, J, VP) |- span(I, J, S)" in h.markdown
    assert "- `span(I, K, NP)`\n- `span(K, J, VP)`" in h.markdown
    assert "conclusion: `span(I, J, S)`" in h.markdown


def test_hover_on_an_atom_and_on_a_lexicon_entry() -> None:
    d, line, col = at(PCFG.replace("span(K, J, VP) |-", "span(K, J, V$0P) |-"))
    h = hover(d, line, col)
    assert h is not None and "atom VP" in h.markdown and "deduction `PCFG`" in h.markdown
    d, line, col = at(PCFG.replace('"sees" : V', '"se$0es" : V'))
    h = hover(d, line, col)
    assert h is not None and "span(i, i+1, V)" in h.markdown


def test_go_to_definition_of_an_atom_is_its_atoms_entry() -> None:
    d, line, col = at(PCFG.replace("span(I, J, VP) #[", "span(I, J, V$0P) #["))
    found = definition(d, line, col)
    atoms_line = _line_of(PCFG, "atoms S, NP")
    assert len(found) == 1 and found[0].line == atoms_line
    col0 = PCFG.splitlines()[atoms_line].index(" VP,") + 1
    assert found[0].col == col0


def test_semantic_tokens_classify_the_new_words() -> None:
    d = doc(PCFG)
    toks = {(t.line, t.col): t for t in semantic_tokens(d)}
    line = _line_of(PCFG, "rule s_np_vp")
    text = PCFG.splitlines()[line]
    assert toks[(line, text.index("rule"))].type == "keyword"
    assert toks[(line, text.index("NP"))].type == "enumMember"
    assert toks[(line, text.index("|-"))].type == "operator"
    assert toks[(line, text.index("#[learnable]"))].type == "macro"
    lex = _line_of(PCFG, "    lexicon")
    assert toks[(lex, 4)].type == "keyword"
    ded = _line_of(PCFG, "deduction PCFG")
    assert toks[(ded, 0)].type == "keyword"


def test_flowchart_has_rules_as_nodes_and_categories_as_edges() -> None:
    d = doc(PCFG)
    assert "PCFG" in targets(d)
    chart = flowchart(d, "PCFG")
    assert chart.error is None and chart.mermaid is not None
    label = {n.id: n.label for n in chart.nodes}
    edges = {(label[a], label[b]) for a, b in chart.edges}
    assert ("np_det_n", "s_np_vp") in edges  # NP feeds S -> NP VP
    assert ("lexicon", "np_det_n") in edges  # Det and N come from the lexicon
    assert ("n_adj_n", "n_adj_n") in edges  # N -> Adj N is recursive
    assert ("s_np_vp", "start S") in edges
    assert ("vp_v", "np_det_n") not in edges  # a VP is never an N
    assert '-->|"NP"|' in chart.mermaid
