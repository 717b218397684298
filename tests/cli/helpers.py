"""The one helper of the command-line tests: run ``qvr`` and capture what it did.

``qvr(*args)`` calls ``quivers.cli.main`` in this process (fast: torch is imported
once per test session) and returns its exit code, stdout and stderr. ``installed``
runs the real ``qvr`` executable in a subprocess, for what only a process can show
(the installed entry point, signals).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "source"
REFERENCE = EXAMPLES / "vanilla_rnn_lm.qvr"

# A straight line with inline priors; `se` (the known noise of each point) is host data.
REGRESSION = """\
# y = slope * x + intercept, with known per-point noise `se` (host data)
object Covariate : Real 1
object Response : Real 1

program regression(x) : Covariate -> Response
    sample slope <- Normal(0.0, 5.0)
    sample intercept <- Normal(0.0, 5.0)
    let mu = slope * x + intercept
    let sd = se
    observe y : Response <- Normal(mu, sd)
    return y

export regression
"""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def qvr(*args: str | Path) -> Result:
    from quivers.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


def qvr_executable() -> list[str]:
    found = shutil.which("qvr")
    return [found] if found else [sys.executable, "-m", "quivers"]


def installed(*args: str | Path, timeout: float = 120) -> Result:
    proc = subprocess.run(
        [*qvr_executable(), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def one_clear_error(result: Result, *needles: str) -> str:
    """The run failed with exit 1 and one error line (no traceback) holding ``needles``.

    Progress lines (``fit svi ...``/``fit nuts ...``: the data used, steps done) may
    come before it.
    """
    assert result.code == 1, result
    assert "Traceback" not in result.err, result.err
    lines = [
        ln for ln in result.err_lines if not ln.startswith(("fit svi", "fit nuts", "fit corpus"))
    ]
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def regression_data(path: Path, slope: float, intercept: float, n: int = 60, seed: int = 0) -> None:
    """Points on a known line with known noise, as a ``.pt`` data file."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(-2.0, 2.0, n).unsqueeze(-1)
    se = torch.full((n, 1), 0.3)
    y = slope * x + intercept + se * torch.randn(n, 1, generator=gen)
    torch.save({"x": x, "y": y, "se": se}, path)
