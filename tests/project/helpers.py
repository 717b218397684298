"""The one helper for whole-project tests: paths and a subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _shared() -> Path:
    """The project's ``shared`` folder beside the checkout (``../shared``), or beside
    a folder above it, as for a git worktree under ``wt/NAME``."""
    for base in ROOT.parents:
        if (base / "shared" / "seed-snippets").is_dir():
            return base / "shared"
    return ROOT.parent / "shared"


SHARED = _shared()
SNIPPETS = SHARED / "seed-snippets"
EXAMPLES = sorted((ROOT / "docs" / "examples" / "source").glob("*.qvr"))


def run_python(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run Python from the repository root, as a user following the docs would."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def imported_modules(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    code = f"{statement}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = run_python(["-c", code], timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())
