"""The grammar ships in the wheel: an installed copy parses without the source tree.

Builds the wheel, installs it with ``pip install --no-deps --target``, and in a
subprocess whose only view of quivers is that target (``PYTHONPATH``, cwd elsewhere)
checks that ``grammar_path()`` lies inside it and that the reference program parses
and checks cleanly. Marked ``wheel``; it is in the default selection (CI runs it).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "examples" / "source" / "vanilla_rnn_lm.qvr"


def _build_wheel(out: Path) -> Path:
    if importlib.util.find_spec("build") and importlib.util.find_spec("hatchling"):
        cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)]
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [wheel] = out.glob("quivers-*.whl")
    return wheel


@pytest.mark.wheel
def test_installed_wheel_carries_the_grammar(tmp_path: Path):
    wheel = _build_wheel(tmp_path / "dist")
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import quivers
        from quivers.syntax import grammar, parse
        from quivers.semantic import check_text

        site = Path(sys.argv[1]).resolve()
        assert Path(quivers.__file__).resolve().is_relative_to(site), quivers.__file__
        path = grammar.grammar_path().resolve()
        assert path.is_relative_to(site), path
        assert path.name == "qvr.lark" and path.is_file()
        text = Path(sys.argv[2]).read_text(encoding="utf-8")
        file = parse(text)
        assert file.diagnostics == [], file.diagnostics
        assert len(file.items) == 9, len(file.items)
        analysis = check_text(text)
        assert analysis.diagnostics == [], analysis.diagnostics
        assert analysis.symbols["vanilla_rnn_lm"].kind == "program"
        print("grammar at", path)
        """
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(site), str(REFERENCE)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(site.resolve()) in proc.stdout
