"""``distributed.exit_worker``: a data-parallel CLI worker leaves with ``os._exit``,
which drops buffered output unless it is flushed first; the summary rank 0 prints
just before must reach a pipe, and the fit's exit code must survive.  The child runs
without ``PYTHONUNBUFFERED``, so its output is block-buffered as under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = (
    "from quivers.inference.distributed import exit_worker\n"
    "print('summary line')\n"
    "print('warning line', file=__import__('sys').stderr)\n"
    "exit_worker({code})\n"
    "print('never')\n"
)


@pytest.mark.parametrize("code", [0, 130])
def test_exit_worker_flushes_output_and_keeps_the_exit_code(code: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(code=code)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == "summary line\n"
    assert proc.stderr == "warning line\n"
