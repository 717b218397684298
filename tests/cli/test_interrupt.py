"""Ctrl-C during ``qvr fit``: a clean stop that keeps the last good state (exit 130)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import torch

from .helpers import REFERENCE, qvr, qvr_executable

FIRST_LINE_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


def test_sigint_stops_the_fit_and_saves_the_state(tmp_path: Path) -> None:
    plot, state = tmp_path / "fit.png", tmp_path / "fit.state.pt"
    proc = subprocess.Popen(
        [*qvr_executable(), "fit", str(REFERENCE), "--steps", "1000000", "--progress", "plain",
         "--plot", str(plot), "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
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
        while True:  # wait for the first progress line: the fit is running
            line = lines.get(timeout=FIRST_LINE_TIMEOUT)
            assert line is not None, "".join(err)
            if line.startswith("fit svi ") and "step 1/1000000" in line:
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
    stderr = "".join(err)
    assert proc.returncode == 130, (out, stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "stopping after the current step" in stderr
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
    assert f"({'svi'}, {done} steps)" in again.out
