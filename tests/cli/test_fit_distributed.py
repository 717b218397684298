"""``torchrun --nproc-per-node=2 -m quivers fit FILE --data corpus.txt --distributed``.

Two gloo workers on loopback fit the reference program; the result must equal one
process taking the same global steps: for each step, the gradient of rank r's shard
computed from rank r's random stream (rank 0 the stream of a 1-process fit, rank 1
its own seed), averaged over the ranks, then
one Adam update. That is the data-parallel step written out by hand, with no
process group, so the test checks the sharding, the all-reduce and that only rank 0
writes. A second test resumes a data-parallel fit and compares it with an
uninterrupted one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quivers.inference.distributed import worker_seed
from quivers.inference.minibatch import fetch
from quivers.jobs.corpus import setup_corpus_fit

from .helpers import REFERENCE, ROOT

OPTIONS = {"seq_len": 16, "batch_size": 8, "epochs": 1, "val_fraction": 0.1}


def torchrun(tmp_path: Path, corpus: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "quivers", "fit", str(REFERENCE), "--data", str(corpus), "--distributed",
        "--seq-len", "16", "--batch-size", "8", "--progress", "none",
        "--plot", str(tmp_path / "dist.png"), *args,
    ]  # fmt: skip
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, _ends(proc.stderr)
    return proc


def _ends(stderr: str) -> str:
    """Both ends of a failed run's stderr: the worker's own error comes first, the
    launcher's summary (which hides it) last."""
    return stderr if len(stderr) < 6000 else f"{stderr[:3000]}\n[...]\n{stderr[-3000:]}"


@pytest.mark.slow  # three data-parallel fits
def test_a_resumed_data_parallel_fit_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    """The checkpoint keeps every worker's random stream, so each resumes its own."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes((ROOT / "docs" / "language.md").read_bytes()[:2400])
    whole, part = tmp_path / "whole.pt", tmp_path / "part.pt"
    torchrun(tmp_path, corpus, "--epochs", "2", "--state", str(whole))
    torchrun(tmp_path, corpus, "--epochs", "1", "--state", str(part))
    first = torch.load(part, weights_only=True)
    assert len(first["fit"]["rng_of_ranks"]) == 2
    assert not torch.equal(*first["fit"]["rng_of_ranks"])  # each worker has its own
    torchrun(tmp_path, corpus, "--epochs", "2", "--resume", str(part), "--state", str(part))
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (whole, part))
    for name, value in a.items():
        assert torch.equal(value, b[name]), name


@pytest.mark.slow  # two worker processes and a rendezvous: about a minute on 2 busy cores
def test_two_workers_equal_one_process_on_the_same_global_batches(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes((ROOT / "docs" / "language.md").read_bytes()[:2400])
    state = tmp_path / "dist.state.pt"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "quivers", "fit", str(REFERENCE), "--data", str(corpus), "--distributed",
        "--seq-len", "16", "--batch-size", "8", "--lr", "0.005", "--clip-norm", "0",
        "--progress", "none",
        "--state", str(state), "--plot", str(tmp_path / "dist.png"),
    ]  # fmt: skip
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, _ends(proc.stderr)
    assert proc.stdout.count("SVI on a text corpus") == 1  # rank 0 alone reports
    assert "2 workers" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "corpus.txt", "dist.png", "dist.state.pt",
    ]  # fmt: skip
    together = torch.load(state, weights_only=True)

    torch.set_num_threads(1)
    setup = setup_corpus_fit(
        REFERENCE.read_text(), str(REFERENCE), str(corpus), target=None, seed=0, lr=0.005,
        guide="prior", num_replicas=2, rank=0, **OPTIONS,
    )  # fmt: skip
    fit, svi = setup.fit, setup.fit.svi
    shards = []
    for rank in (0, 1):
        fit.rank = rank
        shards.append(fit.epoch_batches(0))
    streams = [torch.get_rng_state()]  # rank 0 keeps the stream of setting up
    torch.manual_seed(worker_seed(0, 1))  # rank 1 has its own
    streams.append(torch.get_rng_state())
    params = svi.parameters()
    for step in range(len(shards[0])):
        total = [torch.zeros_like(p) for p in params]
        for rank in (0, 1):
            torch.set_rng_state(streams[rank])
            x, obs = fetch(fit.train, shards[rank][step])
            svi.loss_and_grads(x, obs, fit.num_rows)
            streams[rank] = torch.get_rng_state()
            for t, p in zip(total, params, strict=True):
                t += p.grad
        for t, p in zip(total, params, strict=True):
            p.grad = t / 2
        svi.apply_grads()
    assert together["fit"]["loop"]["step"] == len(shards[0]) > 3
    for name, value in setup.model.state_dict().items():
        torch.testing.assert_close(together["state_dict"][name], value, rtol=1e-4, atol=1e-5)
