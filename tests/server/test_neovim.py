"""A real editor client nobody here wrote: headless Neovim's built-in LSP client
(0.7 API, driven by tests/server/nvim/client.lua) opens a copy of the reference program,
gets diagnostics for an introduced error, a hover type and a definition. Skips only
when nvim is absent (CI installs it: scripts/ci-deps.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .lsp_helpers import EXAMPLES, alive

NVIM = shutil.which("nvim")
SCRIPT = Path(__file__).parent / "nvim" / "client.lua"

pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim is not installed")


def test_neovim_lsp_client(tmp_path: Path) -> None:
    source = tmp_path / "vanilla_rnn_lm.qvr"
    shutil.copy(EXAMPLES / "vanilla_rnn_lm.qvr", source)
    out = tmp_path / "out.json"
    env = {**os.environ, "QVR_PYTHON": sys.executable, "QVR_FILE": str(source), "QVR_OUT": str(out)}
    proc = subprocess.run(
        [str(NVIM), "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {SCRIPT}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), proc.stdout + proc.stderr
    seen = json.loads(out.read_text())
    assert seen.get("error") is None, seen
    assert seen["initialized"] and seen["hover_provider"]
    assert seen["clean_published"] and seen["clean"] == 0
    assert seen["got_error"]
    (diagnostic,) = seen["diagnostics"]
    assert diagnostic["lnum"] == 6 and diagnostic["col"] == 33 and diagnostic["end_col"] == 36
    assert diagnostic["message"] == "unknown morphism 'cel'; did you mean 'cell'?"
    assert diagnostic["severity"] == 1
    assert "morphism lm_head : Hidden -> Token" in seen["hover"]
    assert "domain: `Hidden (Real 128)`" in seen["hover"]
    assert seen["definition"] == {"uri": source.as_uri(), "line": 6, "character": 4}
    assert seen["stopped"]
    # neither the server nor its run worker outlives the editor's client
    pids = [seen["server_pid"], *map(int, seen["children"])]
    assert len(pids) >= 2
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)]
