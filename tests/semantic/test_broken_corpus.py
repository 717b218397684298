"""The broken-program corpus, ``tests/data/broken/*.qvr``, run through ``qvr check``.

Each file states what it must produce in comments of the form
``# expect: E0401 line 8`` (one-based line; one comment per diagnostic). The check
must report exactly those (code, line) pairs, exit 1 when any is an error and 0
when all are warnings, and never crash. Every code of ``quivers.semantic.codes``
must be expected by at least one file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quivers.cli import main
from quivers.semantic.codes import CODES

CORPUS = Path(__file__).resolve().parents[1] / "data" / "broken"
FILES = sorted(CORPUS.glob("*.qvr"))
_EXPECT = re.compile(r"#\s*expect:\s*([EW]\d{4})\s+line\s+(\d+)")


def expectations(path: Path) -> list[tuple[str, int]]:
    return sorted((code, int(line)) for code, line in _EXPECT.findall(path.read_text("utf-8")))


def test_corpus_is_large_enough():
    assert len(FILES) >= 40
    for path in FILES:
        assert expectations(path), f"{path.name} states no expectation"


def test_every_code_is_covered():
    covered = {code for path in FILES for code, _ in expectations(path)}
    assert set(CODES) - covered == set(), "codes with no broken program"
    assert covered - set(CODES) == set(), "expectations of codes that do not exist"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_qvr_check_reports_the_expected_diagnostics(path: Path, capsys: pytest.CaptureFixture[str]):
    status = main(["check", str(path), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    found = sorted((d["code"], d["range"]["start"]["line"] + 1) for d in out["diagnostics"])
    assert found == expectations(path)
    errors = [d for d in out["diagnostics"] if d["severity"] == "error"]
    assert status == (1 if errors else 0)
    for d in out["diagnostics"]:
        assert d["message"] and "\n" not in d["message"]


def test_text_output_names_file_line_and_code(capsys: pytest.CaptureFixture[str]):
    path = CORPUS / "e0401_compose_mismatch.qvr"
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    [(code, line)] = expectations(path)
    assert f"{path}:{line}:" in out and f"error[{code}]:" in out


def test_whole_corpus_through_the_installed_command():
    """One subprocess over every file: the real entry point, and no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "quivers", "check", "--format", "json", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    by_file: dict[str, list[tuple[str, int]]] = {str(p): [] for p in FILES}
    for d in report["diagnostics"]:
        by_file[d["file"]].append((d["code"], d["range"]["start"]["line"] + 1))
    for path in FILES:
        assert sorted(by_file[str(path)]) == expectations(path), path.name


@pytest.mark.parametrize("name", ["w0601_no_export", "w0603_exported_twice"])
def test_warning_only_file_exits_zero_in_a_subprocess(name: str):
    proc = subprocess.run(
        [sys.executable, "-m", "quivers", "check", str(CORPUS / f"{name}.qvr")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning[W06" in proc.stdout
