"""scripts/mutants.py's verdicts: only a failing test kills a mutant."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("mutants", ROOT / "scripts" / "mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("code", "verdict"),
    [(0, "SURVIVED"), (1, "killed"), (4, "ERROR(4)"), (5, "ERROR(5)")],
    ids=["tests-passed", "a-test-failed", "usage-error", "nothing-collected"],
)
def test_a_mutant_is_killed_only_by_a_failing_test(tmp_path, monkeypatch, code, verdict):
    """pytest's exit status 4 (a test id that no longer exists) or 5 (nothing
    collected) says nothing about the mutant; counting it as a kill would hide a
    mutant whose test was renamed. The mutated file is restored either way."""
    mutants = load_script()
    (tmp_path / "m.py").write_text("x = 1\n")
    seen = []

    def fake_pytest(copy, tests, workers=0):
        seen.append((copy / "m.py").read_text())
        return code, "last line"

    monkeypatch.setattr(mutants, "pytest", fake_pytest)
    m = mutants.Mutant("one", "m.py", "x = 1\n", "x = 2\n", ("t.py::test",), "why")
    name, got, _, summary = mutants.run_mutant(tmp_path, m)
    assert (name, got, summary) == ("one", verdict, "last line")
    assert seen == ["x = 2\n"]  # the tests ran on the mutated file
    assert (tmp_path / "m.py").read_text() == "x = 1\n"
