"""The corpus fit as a run (quivers/jobs/corpus_job.py, what the editor's
``qvr.fitSvi`` does with a text corpus) called in process: a stop keeps the
checkpoint, a resumed run ends where an uninterrupted one does, and the device
placement of model, guide and batches (on an accelerator when the machine has one)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from quivers.inference import ELBO, SVI
from quivers.inference.minibatch import MinibatchFit, RowDataset
from quivers.jobs.corpus import setup_corpus_fit
from quivers.jobs.run import execute

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (ROOT / "docs" / "examples" / "source" / "vanilla_rnn_lm.qvr").read_text()
SMALL = {"seq_len": 8, "batch_size": 16, "val_fraction": 0.1, "seed": 3}

ACCELERATORS = [
    name
    for name, available in (
        ("cuda", torch.cuda.is_available()),
        ("mps", torch.backends.mps.is_available()),
    )
    if available
]
NO_ACCELERATOR = pytest.mark.skip(
    reason="no CUDA or MPS device on this machine: the accelerator placement checks did not run"
)


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    """One intra-op thread, as the worker and `qvr fit` run (small ops on 2 busy cores
    are many times slower with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    text = (ROOT / "docs" / "language.md").read_bytes()[:2000]
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.decode("utf-8", errors="ignore").encode("utf-8"))
    return path


def stop_after(steps: int):  # type: ignore[no-untyped-def]
    """A should_stop for a corpus fit: polled once before each step."""
    polls = [0]

    def should_stop() -> bool:
        polls[0] += 1
        return polls[0] > steps

    return should_stop


def test_a_stopped_corpus_run_keeps_a_checkpoint_that_resumes_exactly(
    tmp_path: Path, corpus: Path
) -> None:
    program = str(tmp_path / "lm.qvr")
    whole = execute(
        "svi", REFERENCE, program, {**SMALL, "data": str(corpus), "state": str(tmp_path / "w.pt")}
    )
    assert whole.ok and not whole.cancelled and whole.corpus is not None, whole.error
    steps = whole.corpus["total_steps"]
    assert whole.corpus["steps"] == steps > 5 and whole.checkpoint == str(tmp_path / "w.pt")

    part = execute("svi", REFERENCE, program, {**SMALL, "data": str(corpus)}, None, stop_after(5))
    assert part.ok and part.cancelled and part.corpus is not None
    assert part.corpus["steps"] == 5 and part.checkpoint == str(tmp_path / "lm.state.pt")
    saved = torch.load(part.checkpoint, weights_only=True)
    assert saved["cancelled"] is True and saved["fit"]["loop"]["step"] == 5

    # resumed without repeating the corpus options: they come from the checkpoint
    resumed = execute("svi", REFERENCE, program, {"data": str(corpus), "resume": part.checkpoint})
    assert resumed.ok and resumed.corpus is not None, resumed.error
    assert resumed.corpus["steps"] == steps and resumed.corpus["resumed_from"] == part.checkpoint
    assert resumed.losses == whole.losses
    assert resumed.state is not None and whole.state is not None
    for name, value in whole.state.items():
        assert torch.equal(resumed.state[name], value), name


def test_resuming_with_a_contradicting_option_fails_naming_it(tmp_path: Path, corpus: Path) -> None:
    program = str(tmp_path / "lm.qvr")
    part = execute("svi", REFERENCE, program, {**SMALL, "data": str(corpus)}, None, stop_after(2))
    assert part.checkpoint is not None
    bad = execute(
        "svi",
        REFERENCE,
        program,
        {"data": str(corpus), "resume": part.checkpoint, "seq_len": 16},
    )
    assert not bad.ok and bad.error == (
        f"{part.checkpoint}: the checkpoint was fitted with seq_len 8, not 16 "
        "(leave seq_len out to continue it)"
    )


def test_batches_are_moved_to_the_fit_s_device() -> None:
    """The rows stay in host memory; each fetched batch goes to ``device`` (checked with
    PyTorch's meta device, which every machine has)."""
    rows = RowDataset(torch.arange(12).reshape(6, 2), {"y": torch.arange(6)})
    svi = SVI(lambda x: x, lambda x: x, torch.optim.Adam, ELBO())  # type: ignore[arg-type]
    fit = MinibatchFit(svi, rows, batch_size=2, device="meta")
    x, obs = fit._fetch(rows, fit.epoch_batches(0)[0])
    assert x.device.type == "meta" and obs["y"].device.type == "meta"
    assert tuple(x.shape) == (2, 2) and rows.x.device.type == "cpu"


@pytest.mark.parametrize("device", ACCELERATORS or [pytest.param("cuda", marks=NO_ACCELERATOR)])
@pytest.mark.parametrize("guide", ["prior", "amortized"])
def test_a_corpus_fit_runs_on_an_accelerator(
    device: str, guide: str, tmp_path: Path, corpus: Path
) -> None:
    setup = setup_corpus_fit(
        REFERENCE,
        str(tmp_path / "lm.qvr"),
        str(corpus),
        target=None,
        seed=0,
        seq_len=8,
        batch_size=16,
        epochs=1,
        val_fraction=0.1,
        lr=0.002,
        guide=guide,
        device=torch.device(device),
    )
    assert {p.device.type for p in setup.model.parameters()} == {device}
    assert {p.device.type for p in setup.guide.parameters()} <= {device}
    result = execute(
        "svi",
        REFERENCE,
        str(tmp_path / "lm.qvr"),
        {**SMALL, "data": str(corpus), "device": device, "guide": guide},
        None,
        stop_after(3),
    )
    assert result.ok and result.corpus is not None, result.error
    assert result.corpus["device"].startswith(device) and result.corpus["steps"] == 3
    assert all(torch.isfinite(torch.tensor(result.losses)))
    saved = torch.load(str(result.checkpoint), weights_only=True)  # host tensors
    assert {v.device.type for v in saved["state_dict"].values()} == {"cpu"}


def test_a_corpus_fit_of_a_named_target_has_its_own_default_checkpoint() -> None:
    from quivers.jobs.corpus_job import checkpoint_path
    from quivers.jobs.protocol import RunOptions

    assert checkpoint_path("/ws/lm.qvr", RunOptions()) == Path("/ws/lm.state.pt")
    named = RunOptions(target="gru_lm")
    assert checkpoint_path("/ws/lm.qvr", named) == Path("/ws/lm.gru_lm.state.pt")
    given = RunOptions(target="gru_lm", state="/elsewhere/s.pt")
    assert checkpoint_path("/ws/lm.qvr", given) == Path("/elsewhere/s.pt")
