"""End-to-end: a fit to a text corpus from the editor (``qvr.fitSvi`` with a text file
as ``data``) through the real server and its worker: progress with tokens per second
and held-out bits per token, a stop that keeps the checkpoint, and that checkpoint
resumed by ``qvr fit --resume``. Waits are on progress notifications, never sleeps."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .lsp_helpers import EXAMPLES, REFERENCE, ROOT, inbox, open_doc, run_command

CANCEL_DEADLINE = 30.0  # seconds from the cancel to the answer (the checkpoint is written)
SMALL = {"seq_len": 8, "batch_size": 16, "val_fraction": 0.1}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """About 20 KB of real English and QVR text (the head of docs/language.md)."""
    text = (ROOT / "docs" / "language.md").read_bytes()[:20_000]
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.decode("utf-8", errors="ignore").encode("utf-8"))
    return path


async def progress_message(client: LanguageClient, start: int, *needles: str) -> tuple[str, str]:
    """(token, message) of the first progress report from ``start`` holding ``needles``."""
    params = await inbox(client).wait_for(
        lsp.PROGRESS,
        lambda p: (
            isinstance(p.value, dict)
            and p.value.get("kind") == "report"
            and all(n in str(p.value.get("message", "")) for n in needles)
        ),
        start,
        timeout=120.0,
    )
    return params.token, params.value["message"]


async def test_a_corpus_fit_reports_speed_and_bits_and_stops_keeping_its_checkpoint(
    client: LanguageClient, tmp_path: Path, corpus: Path
) -> None:
    program = tmp_path / "lm.qvr"
    uri, _ = await open_doc(client, REFERENCE, program.as_uri())  # never saved: the buffer runs
    start = inbox(client).mark()
    options = {**SMALL, "data": str(corpus), "epochs": 1000, "eval_every": 2, "steps": 5}
    run = asyncio.ensure_future(run_command(client, "qvr.fitSvi", uri, options, timeout=300))
    token, first = await progress_message(client, start, "data: corpus.txt")
    assert "training rows of 8 bytes" in first and "cpu" in first, first
    _, speed = await progress_message(client, start, "tok/s", "held-out", "bits/token")
    assert speed.startswith("epoch 1/1000 · step "), speed
    tokens_per_s = float(speed.split(" tok/s")[0].rsplit(" · ", 1)[1].replace(",", ""))
    assert tokens_per_s > 0, speed
    assert await run_command(client, "qvr.cancelRun", timeout=CANCEL_DEADLINE) == {
        "cancelled": True
    }
    result = await asyncio.wait_for(run, CANCEL_DEADLINE)
    assert result["ok"] and result["cancelled"] is True, result
    assert result["ignored_options"] == ["steps"]  # a corpus fit runs epochs, not steps
    figures = result["corpus"]
    assert 2 <= figures["steps"] < figures["total_steps"] and figures["epochs_done"] == 0
    assert figures["tokens_per_s"] > 0 and len(result["losses"]) == figures["steps"]
    assert figures["held_out_bits_per_token"] > 0 and figures["unigram_bits_per_token"] > 0
    assert figures["held_out_bits"][-1][1] == figures["held_out_bits_per_token"]
    assert figures["device"] == "cpu" and figures["guide"] == "prior"
    assert client.progress_reports[token][-1].message == "cancelled"

    # the default checkpoint is next to the program, and it is the stopped fit's state
    checkpoint = Path(result["checkpoint"])
    assert checkpoint == tmp_path / "lm.state.pt" and checkpoint.is_file()
    assert not checkpoint.with_name("lm.state.pt.tmp").exists()
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["cancelled"] is True and saved["steps_done"] == figures["steps"]
    assert saved["fit"]["loop"]["step"] == figures["steps"]

    # ... and `qvr fit --resume` continues it (to the end of the first epoch)
    (program).write_text(REFERENCE)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "quivers",
        "fit",
        str(program),
        "--data",
        str(corpus),
        "--resume",
        str(checkpoint),
        "--epochs",
        "1",
        "--progress",
        "none",
        "--format",
        "json",
        "--state",
        str(tmp_path / "resumed.pt"),
        "--plot",
        str(tmp_path / "resumed.png"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, err.decode()
    resumed = json.loads(out)
    assert resumed["steps"] == figures["total_steps"] // 1000  # one epoch's steps
    assert resumed["steps_this_run"] == resumed["steps"] - figures["steps"]
    assert resumed["losses"][: figures["steps"]] == result["losses"]


async def test_corpus_keys_are_ignored_without_a_corpus_and_checked_with_one(
    client: LanguageClient, tmp_path: Path, corpus: Path
) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    plain = {"steps": 2, "batch": 2, "length": 3, "seq_len": 8, "epochs": 2, "device": "cpu"}
    result = await run_command(client, "qvr.fitSvi", uri, {**plain, "compile": True})
    assert result["ok"] and len(result["losses"]) == 2, result
    # compile is NUTS's: SVI has no compiled path, and says it did not read the key
    assert result["ignored_options"] == ["compile", "seq_len", "epochs"]
    assert "corpus" not in result and "compiled" not in result
    bad = await run_command(client, "qvr.fitSvi", uri, {"data": str(corpus), "guide": "mean"})
    assert not bad["ok"]
    assert bad["error"] == "run option 'guide' must be one of prior, amortized, got 'mean'"
    missing = await run_command(
        client, "qvr.fitSvi", uri, {"data": str(corpus), "resume": str(tmp_path / "no.pt")}
    )
    assert not missing["ok"] and missing["error"] == f"{tmp_path / 'no.pt'}: no such state file"
    short = await run_command(client, "qvr.fitSvi", uri, {"data": str(corpus), "seq_len": 10**6})
    assert not short["ok"] and "is longer than the corpus" in short["error"], short


async def test_nuts_takes_its_chain_method_device_and_compile(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, (EXAMPLES / "bayesian_linear_regression.qvr").read_text())
    options = {"warmup": 2, "samples": 3, "chains": 2, "batch": 4, "seed": 1}
    chosen = {"chain_method": "sequential", "device": "cpu", "compile": False}
    result = await run_command(client, "qvr.runNuts", uri, {**options, **chosen})
    assert result["ok"] and result["ignored_options"] == [], result
    assert len(result["diagnostics"]["acceptance"]) == 2
    # eager, as asked: the result says so (a compiled run is the CLI tests' and
    # tests/inference's, where torch.compile can be watched and made to fail)
    assert result["compiled"] is False and "compile_fallback" not in result
    bad = await run_command(client, "qvr.runNuts", uri, {**options, "chain_method": "threads"})
    assert not bad["ok"] and "run option 'chain_method' must be one of" in bad["error"]
    yes = await run_command(client, "qvr.runNuts", uri, {**options, "compile": "yes"})
    assert not yes["ok"] and yes["error"] == "run option 'compile' must be true or false, got 'yes'"
    if not torch.cuda.is_available():  # the machine's answer, whatever it is, is one line
        nocuda = await run_command(client, "qvr.runNuts", uri, {**options, "device": "cuda"})
        assert not nocuda["ok"] and nocuda["error"] == (
            "device 'cuda' asked for, but torch sees no CUDA device"
        )
