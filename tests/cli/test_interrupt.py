"""Ctrl-C during ``qvr fit``: a clean stop that keeps the last good state (exit 130).

The fit runs as the installed ``qvr`` in a subprocess; SIGINT is sent once a given
progress line has arrived on stderr (waiting on output, never on sleeps).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from .helpers import REFERENCE, REGRESSION, qvr, qvr_executable, regression_data

LINE_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


def interrupted_fit(args: list[str], when: Callable[[str], bool]) -> tuple[int, str, str]:
    """Run ``qvr fit ARGS``, send SIGINT after the first stderr line ``when`` accepts."""
    proc = subprocess.Popen(
        [*qvr_executable(), "fit", *args, "--progress", "plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    err: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append(line)
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while True:
            line = lines.get(timeout=LINE_TIMEOUT)
            assert line is not None, "the fit ended before the awaited line:\n" + "".join(err)
            if when(line):
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=STOP_TIMEOUT)
        assert proc.stdout is not None
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    stderr = "".join(err)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "stopping after the current step" in stderr
    return proc.returncode, out, stderr


def test_sigint_stops_the_fit_and_saves_the_state(tmp_path: Path) -> None:
    plot, state = tmp_path / "fit.png", tmp_path / "fit.state.pt"
    code, out, _ = interrupted_fit(
        [str(REFERENCE), "--steps", "1000000", "--plot", str(plot), "--state", str(state)],
        lambda line: line.startswith("fit svi ") and "step 1/1000000" in line,
    )
    assert code == 130, out
    stopped = next(ln for ln in out.splitlines() if ln.startswith("stopped by Ctrl-C after "))
    done = int(stopped.split("after ")[1].split()[0])
    assert 1 <= done < 1_000_000
    assert out.splitlines()[0].startswith(f"vanilla_rnn_lm: SVI, {done}/1000000 steps")
    assert "loss (negative ELBO): " in out
    saved = torch.load(state, weights_only=True)
    assert saved["cancelled"] is True and saved["steps_done"] == done
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values())
    assert plot.is_file()
    # the kept state is usable
    again = qvr("sample", REFERENCE, "--from", state)
    assert again.code == 0, again.err
    assert f"(svi, {done} steps)" in again.out


@pytest.mark.slow
def test_sigint_during_nuts_keeps_the_completed_chains(tmp_path: Path) -> None:
    program, data = tmp_path / "regression.qvr", tmp_path / "line.pt"
    program.write_text(REGRESSION)
    regression_data(data, slope=1.5, intercept=-0.7, n=30)
    state = tmp_path / "s.pt"
    # 2000 draws: each chain runs for seconds, so chain 2 is still sampling when the
    # signal (sent as soon as its first progress line arrives) lands
    code, out, _ = interrupted_fit(
        [str(program), "--method", "nuts", "--data", str(data), "--warmup", "20",
         "--samples", "2000", "--chains", "3", "--chain-method", "sequential",
         "--plot", str(tmp_path / "p.png"),
         "--state", str(state)],
        lambda line: line.startswith("fit nuts ") and "chain 2" in line,
    )  # fmt: skip
    assert code == 130, out
    assert "stopped by Ctrl-C after 1 of 3 chain(s)" in out
    saved = torch.load(state, weights_only=True)
    assert saved["method"] == "nuts" and saved["cancelled"] is True
    assert saved["steps_done"] == 2000  # the draws of the completed chain
    slope = next(ln.split() for ln in out.splitlines() if ln.split()[:1] == ["slope"])
    assert abs(float(slope[2]) - 1.5) < 0.2
