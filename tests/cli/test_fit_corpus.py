"""``qvr fit FILE --data corpus.txt``: text corpora, checkpoints, resuming, bad data,
and ``qvr sample --prompt``.

The corpus is the head of docs/language.md (real English and QVR text). A fit
killed with SIGKILL while writing a checkpoint is stopped at an exact point: the
test seam ``QVR_TEST_PAUSE_STATE_WRITE`` makes the write stop half-way and say so on
a FIFO, and the test kills the process when that line arrives (no sleeps).
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from .helpers import (
    REFERENCE,
    REGRESSION,
    ROOT,
    one_clear_error,
    qvr,
    qvr_executable,
    regression_data,
)

CORPUS_BYTES = 6000
SMALL = ("--seq-len", "16", "--batch-size", "16", "--progress", "plain")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    text = (ROOT / "docs" / "language.md").read_bytes()[:CORPUS_BYTES]
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.decode("utf-8", errors="ignore").encode("utf-8"))
    return path


def fit(tmp_path: Path, corpus: Path, *args: str, state: str = "s.state.pt"):
    return qvr(
        "fit",
        REFERENCE,
        "--data",
        corpus,
        *SMALL,
        "--plot",
        tmp_path / "s.loss.png",
        "--state",
        tmp_path / state,
        *args,
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_corpus_fit_reports_speed_bits_and_baseline(tmp_path: Path, corpus: Path) -> None:
    r = fit(tmp_path, corpus, "--epochs", "2")
    assert r.code == 0, r.err
    assert "tok/s" in r.err and "bits/token" in r.err
    assert "training rows of 16 bytes" in r.err
    assert "held-out:" in r.out and "unigram baseline" in r.out
    saved = torch.load(tmp_path / "s.state.pt", weights_only=True)
    assert saved["corpus"]["bytes"] == len(corpus.read_bytes())
    assert saved["fit"]["loop"]["epoch"] == 2
    assert saved["options"]["seq_len"] == 16
    assert (tmp_path / "s.loss.png").is_file()
    rows = (len(corpus.read_bytes()) - 1) // 16
    assert saved["fit"]["loop"]["num_rows"] == rows - round(rows * 0.1)


def test_sample_prompt_generates_text_after_the_prompt(tmp_path: Path, corpus: Path) -> None:
    assert fit(tmp_path, corpus).code == 0
    r = qvr(
        "sample",
        REFERENCE,
        "--from",
        tmp_path / "s.state.pt",
        "--prompt",
        "The language",
        "--tokens",
        "30",
    )
    assert r.code == 0, r.err
    assert r.out.startswith("The language")
    assert len(r.out.rstrip("\n").encode("utf-8", errors="replace")) >= len("The language") + 10
    assert "given the last 16 bytes" in r.err


def test_resume_from_an_epoch_boundary_matches_an_uninterrupted_fit(
    tmp_path: Path, corpus: Path
) -> None:
    assert fit(tmp_path, corpus, "--epochs", "2", state="whole.pt").code == 0
    assert fit(tmp_path, corpus, "--epochs", "1", state="part.pt").code == 0
    r = fit(tmp_path, corpus, "--epochs", "2", "--resume", tmp_path / "part.pt", state="part.pt")
    assert r.code == 0, r.err
    assert "resuming at step" in r.err
    whole, resumed = weights(tmp_path / "whole.pt"), weights(tmp_path / "part.pt")
    for name, value in whole.items():
        assert torch.equal(value, resumed[name]), name


def test_resume_refuses_a_different_seq_len(tmp_path: Path, corpus: Path) -> None:
    assert fit(tmp_path, corpus).code == 0
    before = (tmp_path / "s.state.pt").read_bytes()
    r = qvr(
        "fit",
        REFERENCE,
        "--data",
        corpus,
        "--seq-len",
        "8",
        "--resume",
        tmp_path / "s.state.pt",
        "--state",
        tmp_path / "s.state.pt",
    )
    one_clear_error(r, "--seq-len 16", "not 8")
    assert (tmp_path / "s.state.pt").read_bytes() == before


# ------------------------------------------------------------------ bad data


def _existing_outputs(tmp_path: Path) -> dict[Path, bytes]:
    outputs = {tmp_path / "s.state.pt": b"earlier state", tmp_path / "s.loss.png": b"earlier plot"}
    for path, content in outputs.items():
        path.write_bytes(content)
    return outputs


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "the corpus is empty"),
        (b"text\x00\x01\x02binary", "a binary file (a NUL byte at offset 4)"),
        (b"caf\xe9 au lait", "not UTF-8 text (byte 0xe9 at offset 3)"),
        (b"short text", "--seq-len 16 is longer than the corpus (10 bytes)"),
    ],
)
def test_bad_corpus_is_one_clear_line_and_overwrites_nothing(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    outputs = _existing_outputs(tmp_path)
    line = one_clear_error(fit(tmp_path, bad), needle)
    assert str(bad) in line
    for path, before in outputs.items():
        assert path.read_bytes() == before


def test_resume_from_another_programs_state_is_refused(tmp_path: Path, corpus: Path) -> None:
    program = tmp_path / "regression.qvr"
    program.write_text(REGRESSION)
    regression_data(tmp_path / "line.pt", 2.0, -1.0)
    other = tmp_path / "other.state.pt"
    r = qvr("fit", program, "--data", tmp_path / "line.pt", "--steps", "3", "--state", other)
    assert r.code == 0, r.err
    outputs = _existing_outputs(tmp_path)
    one_clear_error(fit(tmp_path, corpus, "--resume", other), str(other), "checkpoint")
    # a corpus checkpoint of another byte model (a narrower hidden state): refused too
    narrow = tmp_path / "narrow.qvr"
    narrow.write_text(REFERENCE.read_text().replace("Real 128", "Real 16"))
    small = qvr(
        "fit",
        narrow,
        "--data",
        corpus,
        *SMALL,
        "--state",
        tmp_path / "narrow.pt",
        "--plot",
        tmp_path / "narrow.png",
    )
    assert small.code == 0, small.err
    one_clear_error(fit(tmp_path, corpus, "--resume", tmp_path / "narrow.pt"), "shape")
    for path, before in outputs.items():
        assert path.read_bytes() == before


def test_corpus_options_need_a_text_corpus(tmp_path: Path) -> None:
    one_clear_error(qvr("fit", REFERENCE, "--seq-len", "8", "--steps", "1"), "--seq-len")


def test_a_corpus_fit_checks_its_device_and_option_values(tmp_path: Path, corpus: Path) -> None:
    one_clear_error(fit(tmp_path, corpus, "--device", "tpu"), "--device must be one of cpu")
    one_clear_error(fit(tmp_path, corpus, "--val-fraction", "1"), "--val-fraction must be below 1")
    one_clear_error(fit(tmp_path, corpus, "--epochs", "0"), "--epochs must be at least 1")
    if not torch.cuda.is_available():  # asked for, absent: one line, nothing written
        one_clear_error(fit(tmp_path, corpus, "--device", "cuda"), "torch sees no CUDA device")
    assert not list(tmp_path.glob("s.*"))


# --------------------------------------------------------------- crash safety

LINE_TIMEOUT = 180.0


def test_sigkill_mid_write_keeps_the_previous_checkpoint_which_resumes_exactly(
    tmp_path: Path, corpus: Path
) -> None:
    state = tmp_path / "k.state.pt"
    fifo = tmp_path / "pause.fifo"
    os.mkfifo(fifo)
    common = [
        "fit",
        str(REFERENCE),
        "--data",
        str(corpus),
        *SMALL,
        "--plot",
        str(tmp_path / "k.png"),
    ]
    log = tmp_path / "killed.err"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*qvr_executable(), *common, "--state", str(state), "--checkpoint-every", "3"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "QVR_TEST_PAUSE_STATE_WRITE": str(fifo)},
        )
    said: queue.Queue[str] = queue.Queue()

    def listen() -> None:
        with open(fifo) as pipe:  # opens when the fit reaches the pause
            said.put(pipe.readline())

    threading.Thread(target=listen, daemon=True).start()
    try:
        line = said.get(timeout=LINE_TIMEOUT)  # the second checkpoint is half written
        assert line.startswith("partial "), log.read_text()
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    tmp = Path(line.split(" ", 1)[1].strip())
    assert tmp.is_file() and tmp.stat().st_size > 0  # the torn file is there ...
    with pytest.raises(Exception):  # noqa: B017 - and it is not loadable
        torch.load(tmp, weights_only=True)
    kept = torch.load(state, weights_only=True)  # ... but the previous checkpoint is whole
    assert kept["steps_done"] == 3 and kept["fit"]["loop"]["step"] == 3

    r = qvr(*common[:-2], "--plot", tmp_path / "k.png", "--state", state, "--resume", state)
    assert r.code == 0, r.err
    whole = tmp_path / "whole.pt"
    assert qvr(*common, "--state", whole).code == 0
    for name, value in weights(whole).items():
        assert torch.equal(value, weights(state)[name]), name


def test_amortized_guide_fits_a_corpus_with_a_fixed_size(tmp_path: Path, corpus: Path) -> None:
    r = fit(tmp_path, corpus, "--guide", "amortized")
    assert r.code == 0, r.err
    assert "amortized guide" in r.out
    size = int(r.out.split("guide ")[-1].split()[0].replace(",", ""))
    assert size > 0  # an encoder, the same size for any corpus
    saved = torch.load(tmp_path / "s.state.pt", weights_only=True)
    assert saved["options"]["guide"] == "amortized"
    assert sum(v.numel() for v in saved["fit"]["guide"].values()) == size
