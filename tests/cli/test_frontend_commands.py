"""qvr check, fmt, graph and the top-level usage: exit codes and output formats."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .helpers import EXAMPLES, REFERENCE, installed, one_clear_error, qvr

ALL_EXAMPLES = sorted(EXAMPLES.glob("*.qvr"))
# a program in every later spelling, and in ours: `qvr fmt` keeps each spelling
SPELLINGS = sorted((Path(__file__).resolve().parents[1] / "data" / "spellings").glob("*.qvr"))
BROKEN = REFERENCE.read_text().replace("scan(cell)", "scan(cel)")


def test_examples_exist() -> None:
    assert len(ALL_EXAMPLES) >= 10


def test_usage_errors_exit_2() -> None:
    assert qvr().code == 2
    bad = qvr("fit", str(REFERENCE), "--method", "mcmc")
    assert bad.code == 2 and "invalid choice" in bad.err
    assert qvr("--help").code == 0


def test_installed_entry_point_checks_the_examples() -> None:
    result = installed("check", *ALL_EXAMPLES)
    assert result.code == 0, result.err
    assert result.out.strip().endswith(
        f"checked {len(ALL_EXAMPLES)} files: 0 error(s), 0 warning(s)"
    )


# ---------------------------------------------------------------------- check


def test_check_reports_errors_as_file_line_col(tmp_path: Path) -> None:
    bad = tmp_path / "bad.qvr"
    bad.write_text(BROKEN)
    result = qvr("check", bad)
    assert result.code == 1
    first = result.out.splitlines()[0]
    assert first.startswith(f"{bad}:7:34: error[E0101]: unknown morphism 'cel'")
    assert "did you mean 'cell'?" in first
    data = json.loads(qvr("check", bad, "--format", "json").out)
    assert data["summary"] == {"files": 1, "errors": 1, "warnings": 0}


def test_check_unreadable_file_is_one_line(tmp_path: Path) -> None:
    result = qvr("check", tmp_path / "missing.qvr")
    assert result.code == 1 and "no such file" in result.err and "Traceback" not in result.err


# ------------------------------------------------------------------------ fmt


def _copy(tmp_path: Path, source: Path) -> Path:
    target = tmp_path / source.name
    shutil.copy(source, target)
    return target


@pytest.mark.parametrize("example", ALL_EXAMPLES + SPELLINGS, ids=lambda p: p.stem)
def test_fmt_is_idempotent_and_keeps_comments(tmp_path: Path, example: Path) -> None:
    original = example.read_text()
    # the same program laid out badly: extra spaces, tight operators, trailing blanks
    # (on statement lines without comments, so no comment or string text changes)
    statement = ("object ", "morphism ", "let ", "program ", "export ", "sample ", "observe ")
    messy = "\n".join(
        line.replace(" : ", "  :   ").replace(" >> ", ">>").replace(", ", " ,") + "   "
        if line.lstrip().startswith(statement) and "#" not in line and '"' not in line
        else line
        for line in original.splitlines()
    )
    path = tmp_path / example.name
    path.write_text(messy + "\n\n\n")
    first = qvr("fmt", path)
    assert first.code == 0, first.err
    assert first.out == f"reformatted {path}\n"
    once = path.read_text()
    second = qvr("fmt", path)
    assert second.code == 0 and second.out == ""
    assert path.read_text() == once  # idempotent
    assert qvr("fmt", "--check", path).code == 0
    comments = [line.strip() for line in original.splitlines() if line.strip().startswith("#")]
    assert [line.strip() for line in once.splitlines() if line.strip().startswith("#")] == comments
    assert once == original  # the examples are in canonical form


def test_fmt_check_lists_files_and_writes_nothing(tmp_path: Path) -> None:
    clean = _copy(tmp_path, REFERENCE)
    messy = tmp_path / "messy.qvr"
    messy.write_text(REFERENCE.read_text().replace("tok_embed >> scan", "tok_embed>>scan"))
    before = messy.read_text()
    result = qvr("fmt", "--check", clean, messy)
    assert result.code == 1
    assert result.out.splitlines() == [f"would reformat {messy}"]
    assert messy.read_text() == before
    fixed = qvr("fmt", clean, messy)
    assert fixed.code == 0 and fixed.out.splitlines() == [f"reformatted {messy}"]
    assert messy.read_text() == REFERENCE.read_text()
    assert qvr("fmt", "--check", clean, messy).code == 0


def test_fmt_refuses_syntax_errors_with_a_clear_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.qvr"
    text = REFERENCE.read_text().replace("morphism cell : Embedded * Hidden", "morphism cell : : (")
    broken.write_text(text)
    result = qvr("fmt", broken)
    assert result.code == 1
    line = [ln for ln in result.err_lines if str(broken) in ln][0]
    assert line.startswith(f"{broken}:5:") and "not formatted: fix the syntax first" in line
    assert "Traceback" not in result.err
    assert broken.read_text() == text
    assert qvr("fmt", "--check", broken).code == 1


def test_fmt_missing_file(tmp_path: Path) -> None:
    result = qvr("fmt", tmp_path / "nope.qvr")
    assert result.code == 1 and "no such file" in result.err


# ---------------------------------------------------------------------- graph


def test_graph_prints_mermaid() -> None:
    result = qvr("graph", REFERENCE)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "flowchart LR"
    assert any('"scan(cell)"' in line for line in lines)
    assert any("-->" in line for line in lines)


@pytest.mark.parametrize("example", ALL_EXAMPLES, ids=lambda p: p.stem)
def test_graph_svg_is_well_formed_with_every_node(tmp_path: Path, example: Path) -> None:
    out = tmp_path / "chart.svg"
    result = qvr("graph", example, "--out", out)  # the format follows the suffix
    assert result.code == 0, result.err
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    mermaid = qvr("graph", example, "--format", "mermaid").out
    # node declarations (a marginalize box's subgraph lists its members again: not nodes)
    declared = [ln for ln in mermaid.splitlines() if re.match(r"^    n\d+[\[\(\{/]", ln)]
    nodes = [g for g in root.iter(f"{ns}g") if "node" in g.get("class", "").split()]
    assert len(nodes) == len(declared)
    edges = [ln for ln in mermaid.splitlines() if "-->" in ln]
    assert len(list(root.iter(f"{ns}path"))) == len(edges) + 1  # + the arrow head
    xs = [float(r.get("x", 0)) for r in root.iter(f"{ns}text")]
    assert max(xs) < float(root.get("width", 0))


def test_graph_svg_to_stdout_and_target() -> None:
    result = qvr("graph", REFERENCE, "--format", "svg", "--target", "vanilla_rnn_lm")
    assert result.code == 0 and result.out.startswith("<?xml")
    assert "scan(cell)" in result.out


def test_graph_errors_are_one_line(tmp_path: Path) -> None:
    one_clear_error(
        qvr("graph", REFERENCE, "--target", "nope"), "no program or export named 'nope'"
    )
    bad = tmp_path / "bad.qvr"
    bad.write_text(BROKEN)
    one_clear_error(qvr("graph", bad), "unknown morphism 'cel'")
    one_clear_error(qvr("graph", tmp_path / "none.qvr"), "no such file")


def test_check_fmt_and_graph_never_import_torch_or_matplotlib() -> None:
    script = (
        "import sys\n"
        "from quivers.cli import main\n"
        f"main(['check', {str(REFERENCE)!r}])\n"
        f"main(['fmt', '--check', {str(REFERENCE)!r}])\n"
        f"main(['graph', {str(REFERENCE)!r}, '--format', 'svg'])\n"
        "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_graph_svg_shortens_long_labels_and_keeps_them_as_tooltips() -> None:
    svg = qvr("graph", EXAMPLES / "transformer_lm.qvr", "--format", "svg").out
    root = ET.fromstring(svg.split("\n", 1)[1])
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text or "" for t in root.iter(f"{ns}title")]
    texts = [t.text or "" for t in root.iter(f"{ns}text")]
    assert any(len(t) > 40 for t in titles)  # the full label
    assert all(len(t) <= 40 for t in texts)  # what is drawn
