"""Every example's flowchart is valid Mermaid, parsed by the real mermaid library
(tests/mermaid/check.mjs under Node with jsdom). Skips only when node is absent;
CI installs the packages with `npm ci --prefix tests/mermaid` (scripts/ci-deps.sh)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from quivers.analysis.flowchart import flowchart, targets

from .helpers import ROOT, doc, examples

CHECKER = ROOT / "tests" / "mermaid"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def run_checker(files: list[Path]) -> dict[str, dict]:
    assert (CHECKER / "node_modules" / "mermaid").is_dir(), (
        "mermaid is not installed: run `npm ci --prefix tests/mermaid`"
    )
    proc = subprocess.run(
        [str(NODE), str(CHECKER / "check.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            results[Path(entry["file"]).name] = entry
    assert len(results) == len(files), proc.stdout + proc.stderr
    return results


def test_every_example_chart_parses(tmp_path: Path) -> None:
    files = []
    for name, text in examples().items():
        d = doc(text)
        for target in targets(d):
            chart = flowchart(d, target)
            assert chart.mermaid is not None, (name, target, chart.error)
            path = tmp_path / f"{name}.{target}.mmd"
            path.write_text(chart.mermaid)
            files.append(path)
    results = run_checker(files)
    bad = {k: v["error"] for k, v in results.items() if not v["ok"]}
    assert bad == {}
    assert len(files) >= len(examples())


def test_every_gallery_corpus_chart_parses(tmp_path: Path) -> None:
    """Issue 11's constructs (plates, indexing, relation rows, the new families)."""
    files = []
    for source in sorted((ROOT / "tests" / "data" / "gallery").glob("*.qvr")):
        d = doc(source.read_text("utf-8"))
        for target in targets(d):
            chart = flowchart(d, target)
            assert chart.mermaid is not None, (source.stem, target, chart.error)
            path = tmp_path / f"{source.stem}.{target}.mmd"
            path.write_text(chart.mermaid)
            files.append(path)
    results = run_checker(files)
    assert {k: v["error"] for k, v in results.items() if not v["ok"]} == {}
    assert len(files) >= 25


def test_the_checker_rejects_broken_mermaid(tmp_path: Path) -> None:
    good = flowchart(doc(examples()["vanilla_rnn_lm"])).mermaid
    assert good is not None
    (tmp_path / "good.mmd").write_text(good)
    (tmp_path / "bad.mmd").write_text(good.replace('(["input', '(["input" --> '))
    results = run_checker([tmp_path / "good.mmd", tmp_path / "bad.mmd"])
    assert results["good.mmd"]["ok"] and not results["bad.mmd"]["ok"]
