"""The example gallery stays clean and its pages stay in step with the sources.

Every ``docs/examples/source/*.qvr`` must type-check with no diagnostic at all, and
every page ``docs/examples/<name>.md`` must quote ``source/<name>.qvr`` byte for byte
in its one ```qvr block.
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
