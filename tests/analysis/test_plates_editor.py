"""Editor queries on plates and indexing (issue 11): hover shows the plate's set and
size, the outline its type, the flowchart the index's data flow, tokens every name."""

from __future__ import annotations

from quivers.analysis.completion import complete
from quivers.analysis.flowchart import flowchart
from quivers.analysis.hover import hover
from quivers.analysis.outline import document_symbols
from quivers.analysis.tokens import raw_tokens

from .helpers import at, doc, where

TEXT = """\
object Group : FinSet 3
object X : Real 1
object Y : Real 1
program grouped(x) : X -> Y
    sample beta : Group <- Normal(0.0, 5.0)
    sample sigma <- HalfCauchy(1.0)
    let b = beta[group]
    let mu = b * x
    observe y : Y <- Normal(mu, sigma)
    return y
export grouped
"""


def test_hover_on_a_plate_shows_its_set_and_size():
    line, col = where(TEXT, "beta", 0)
    h = hover(doc(TEXT), line, col + 1)
    assert h is not None
    assert "beta : Real 1 [Group]" in h.markdown
    assert "plate over Group (3 elements)" in h.markdown and "(3, 1)" in h.markdown


def test_hover_on_the_index_shows_ids_of_the_plate():
    line, col = where(TEXT, "group]")
    h = hover(doc(TEXT), line, col + 1)
    assert h is not None and "group : Group" in h.markdown and "host data" in h.markdown


def test_hover_on_a_gallery_family():
    line, col = where(TEXT, "HalfCauchy")
    h = hover(doc(TEXT), line, col + 2)
    assert h is not None and "HalfCauchy(scale)" in h.markdown


def test_outline_shows_the_plate_type():
    [_, _, _, program, _] = document_symbols(doc(TEXT))
    details = {c.name: c.detail for c in program.children}
    assert details["beta"] == "sample : Real 1 [Group]"
    assert details["b"] == "let : Real 1"


def test_tokens_cover_both_names_of_an_index():
    line, base = where(TEXT, "beta[")
    toks = {(t[0], t[1], t[2]) for t in raw_tokens(doc(TEXT), line, line + 1)}
    assert (line, base, 4) in toks and (line, base + 5, 5) in toks


def test_flowchart_draws_the_plate_and_its_ids_into_the_let():
    chart = flowchart(doc(TEXT), "grouped")
    assert chart.error is None
    by_label = {n.label: n.id for n in chart.nodes}
    let = by_label["let b = beta[group]"]
    assert (by_label["beta : Real 1 [Group]"], let) in chart.edges
    assert (by_label["group (data)"], let) in chart.edges


def test_completion_offers_the_gallery_families_in_a_step():
    text = TEXT.replace("sample sigma <- HalfCauchy(1.0)", "sample sigma <- HalfC|")
    d, line, col = at(text)
    labels = [i.label for i in complete(d, line, col)]
    assert "HalfCauchy" in labels


def test_completion_in_an_index_offers_bound_values():
    text = TEXT.replace("let b = beta[group]", "let b = be|")
    d, line, col = at(text)
    assert "beta" in [i.label for i in complete(d, line, col)]


PPCA = """\
composition ppca as real
object Item : FinSet 6
object Code : FinSet 2
object Feature : FinSet 4
morphism Z : Item -> Code [role=latent]
morphism W : Code -> Feature [role=latent]
let loadings = Z >> W
program ppca(i) : Item -> Real 4
    let mu = loadings[i]
    observe y : Real 4 <- Normal(mu, 1.0)
    return y
export ppca
"""


def test_hover_and_outline_show_a_labelled_composition_and_its_algebra():
    h = hover(doc(PPCA), 0, 13)
    assert h is not None and "composition **ppca** under the **real** algebra" in h.markdown
    assert (h.range.col, h.range.end_col) == (12, 16)
    first = document_symbols(doc(PPCA))[0]
    assert (first.name, first.kind, first.detail) == ("ppca", "composition", "real algebra")


def test_completion_after_as_offers_the_algebras():
    d, line, col = at(PPCA.replace("composition ppca as real", "composition ppca as |"))
    labels = [i.label for i in complete(d, line, col)]
    assert "real" in labels and "markov" in labels and "algebra" in labels


def test_a_relation_row_has_hover_tokens_and_a_flowchart_edge():
    line, col = where(PPCA, "loadings[")
    h = hover(doc(PPCA), line, col + 1)
    assert h is not None and "let loadings : Item -> Feature" in h.markdown
    toks = {(t[0], t[1], t[2]) for t in raw_tokens(doc(PPCA), line, line + 1)}
    assert (line, col, 8) in toks and (line, col + 9, 1) in toks
    chart = flowchart(doc(PPCA), "ppca")
    assert chart.error is None
    by_label = {n.label: n.id for n in chart.nodes}
    let = by_label["let mu = loadings[i]"]
    assert (by_label["loadings"], let) in chart.edges and (by_label["i : Item"], let) in chart.edges


def test_hover_on_a_program_returning_a_plate_of_its_codomain():
    text = (
        "object Cat : FinSet 3\nobject Resp : FinSet 63\nobject Val : Real 1\n"
        "program totals : Resp -> Val\n"
        "    sample beta_1 : Cat <- Normal(0.0, 2.0)\n"
        "    let b1 = beta_1[cat_idx]\n"
        "    observe tally : Resp <- Gamma(exp(b1), 1.0)\n"
        "    return beta_1\nexport totals\n"
    )
    line, col = where(text, "totals")
    h = hover(doc(text), line, col + 1)
    assert h is not None and "totals : Resp -> Val (returns Real 1 [Cat])" in h.markdown
