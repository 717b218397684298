"""Editor features on `marginalize` blocks: hover says what is summed out, the
outline nests the body, folding covers the block, the flowchart boxes it."""

from __future__ import annotations

import re
from pathlib import Path

from quivers.analysis.flowchart import flowchart
from quivers.analysis.hover import hover
from quivers.analysis.outline import document_symbols, folding_ranges
from tests.analysis.helpers import doc, where

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "marginalize"
MIXTURE = (DATA / "mixture.qvr").read_text()


def test_hover_on_the_latent_says_it_is_summed_out_of_the_body_sites():
    d = doc(MIXTURE)
    for needle, occurrence in (("c :", 0), ("[c]", 0)):
        line, col = where(MIXTURE, needle, occurrence, offset=1 if needle == "[c]" else 0)
        found = hover(d, line, col)
        assert found is not None
        assert "c : K" in found.markdown
        assert "summed out (marginalized) · one per row · not a site" in found.markdown
        assert "logsumexp over its 3 values" in found.markdown and "(`y`)" in found.markdown
    line, col = where(MIXTURE, "marginalize")
    keyword = hover(d, line, col + 2)
    assert keyword is not None and keyword.markdown.startswith("**marginalize**")


def test_outline_nests_the_body_under_the_block_and_folding_covers_it():
    d = doc(MIXTURE)
    [program] = [s for s in document_symbols(d) if s.kind == "program"]
    assert [c.name for c in program.children] == ["a", "w", "mu", "c", "z", "return z"]
    block = program.children[3]
    assert block.kind == "marginalize" and block.detail == "marginalize : K (summed out)"
    assert [c.name for c in block.children] == ["m", "y"]
    assert (block.range.line, block.range.end_line) == (6, 8)
    assert (6, 8, "region") in folding_ranges(d)


def test_flowchart_draws_the_block_as_a_box_around_its_body():
    chart = flowchart(doc(MIXTURE))
    assert chart.error is None and chart.mermaid is not None
    labels = {n.id: n.label for n in chart.nodes}
    [latent] = [n for n in chart.nodes if n.kind == "marginal"]
    assert latent.label == "c : K (summed out)"
    [(title, members)] = chart.groups
    assert title == "marginalize c : K (logsumexp)"
    assert [labels[m] for m in members] == [
        "c : K (summed out)",
        "let m = mu[c]",
        "Normal(m, 1.0)",
        "y : Y (observed)",
    ]
    # outside the box: the prior and everything after the block
    assert "let z = y + 1.0" not in [labels[m] for m in members]
    box = re.search(
        r'subgraph m0\["marginalize c : K \(logsumexp\)"\]\n(.*?)\n    end', chart.mermaid, re.S
    )
    assert box is not None
    assert box.group(1).split() == members
    assert f'    {latent.id}[["c : K (summed out)"]]' in chart.mermaid


def test_flowchart_of_a_forward_cell_boxes_its_emission():
    text = (DATA / "hmm.qvr").read_text()
    chart = flowchart(doc(text), "forward")
    assert chart.error is None
    labels = {n.id: n.label for n in chart.nodes}
    [(title, members)] = chart.groups
    assert title == "marginalize next : State (logsumexp)"
    assert [labels[m] for m in members] == [
        "next : State (summed out)",
        "emission",
        "y : Obs (observed)",
    ]
    outer = flowchart(doc(text), "hmm")
    assert outer.groups == [] and "scan(forward)" in outer.mermaid


def test_the_boxed_charts_parse_with_the_real_mermaid(tmp_path):
    from tests.analysis.test_mermaid import NODE, run_checker

    if NODE is None:
        import pytest

        pytest.skip("node is not installed")
    chart = flowchart(doc(MIXTURE)).mermaid
    assert chart is not None and "subgraph" in chart
    (tmp_path / "mixture.mmd").write_text(chart)
    results = run_checker([tmp_path / "mixture.mmd"])
    assert results["mixture.mmd"]["ok"], results
