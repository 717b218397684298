"""The example gallery stays clean and its pages stay in step with the sources.

Every ``docs/examples/source/*.qvr`` must type-check with no diagnostic at all, and
every page ``docs/examples/<name>.md`` must quote ``source/<name>.qvr`` byte for byte
in its one ```qvr block. A ``qvr fit`` transcript a page records has the NUTS summary
and warning lines the command prints now for the numbers shown.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quivers.semantic import check_text

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SOURCES = sorted((EXAMPLES / "source").glob("*.qvr"))
PAGES = sorted(p for p in EXAMPLES.glob("*.md") if p.name != "README.md")

_FENCE = re.compile(rb"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def fenced_blocks(page: Path, language: str) -> list[bytes]:
    """The bodies of the page's fenced blocks in ``language``, exactly as stored."""
    return [body for lang, body in _FENCE.findall(page.read_bytes()) if lang == language.encode()]


def test_the_gallery_is_there() -> None:
    assert len(SOURCES) >= 10
    assert {p.stem for p in PAGES} == {s.stem for s in SOURCES}, "one page per example"
    index = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"({page.name})" in index, f"README.md does not link {page.name}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_example_checks_clean(source: Path) -> None:
    analysis = check_text(source.read_text(encoding="utf-8"))
    shown = [d.render(str(source)) for d in analysis.diagnostics]
    assert shown == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_quotes_its_source(page: Path) -> None:
    blocks = fenced_blocks(page, "qvr")
    assert len(blocks) == 1, f"{page.name}: expected one qvr block, found {len(blocks)}"
    source = EXAMPLES / "source" / f"{page.stem}.qvr"
    assert blocks[0] == source.read_bytes(), f"{page.name} differs from {source.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_has_a_flowchart(page: Path) -> None:
    charts = fenced_blocks(page, "mermaid")
    assert len(charts) == 1 and charts[0].startswith(b"flowchart LR\n")


_NUTS_SUMMARY = re.compile(
    r"acceptance per chain: (?P<acc>[^;]*); divergences: (?P<kept>\d+) "
    r"\(warmup: (?P<warmup>\d+)\); step size: (?P<steps>.*)"
)


def _recorded_nuts_summaries() -> list[tuple[str, list[str], int]]:
    """Every ``acceptance per chain:`` line a page records from ``qvr fit``: (page,
    the lines of its transcript, the line's index)."""
    found = []
    for page in PAGES:
        for block in fenced_blocks(page, "text"):
            lines = block.decode("utf-8").splitlines()
            found += [
                (page.name, lines, i)
                for i, line in enumerate(lines)
                if line.startswith("acceptance per chain:")
            ]
    return found


def test_recorded_fit_transcripts_are_what_qvr_fit_prints_now() -> None:
    """A page's ``qvr fit`` transcript has the summary and warning lines the CLI gives
    for the numbers it shows (so a page recorded before a format change is caught)."""
    from quivers.commands.fit import _nuts_lines
    from quivers.jobs.protocol import RunResult

    summaries = _recorded_nuts_summaries()
    assert len({page for page, _, _ in summaries}) >= 3, summaries
    for page, lines, i in summaries:
        match = _NUTS_SUMMARY.fullmatch(lines[i])
        assert match is not None, f"{page}: not the current format: {lines[i]!r}"
        diagnostics = {
            "acceptance": [float(a) for a in match["acc"].split(", ")],
            "divergences": [int(match["kept"])],
            "warmup_divergences": [int(match["warmup"])],
            "step_size": [float(s) for s in match["steps"].split(", ")],
        }
        want = _nuts_lines(RunResult("nuts", page, diagnostics=diagnostics))
        assert lines[i : i + len(want)] == want, f"{page}: {lines[i : i + 2]} != {want}"
        if len(want) == 1:  # no divergence at all: no warning line either
            assert i + 1 == len(lines) or not lines[i + 1].startswith("warning:"), page
