"""Corpus-fit throughput (figures recorded in docs/benchmarks.md, "Corpus fit").

1. Tokens per second of the corpus fit (``qvr fit FILE --data corpus.txt``: minibatch
   SVI of the reference program ``vanilla_rnn_lm`` with the prior guide, Adam) against
   a hand-written torch training loop of the same model and objective at the same
   batch size in the same process: embedding, the noisy recurrent cell
   ``h_t = mlp([x_t; h_{t-1}]) + 0.1 eps``, the Categorical head on ``h_T``, the loss
   ``-(N/B) sum_i log p(y_i | h_T)`` (the prior guide's ELBO: log p(h) - log q(h) is
   zero) and Adam with the same learning rate, starting from the same weights. The
   two alternate, block by block, on the same batches; target: the corpus fit takes
   at most 1.2x the hand loop's CPU time per token.
2. Data-parallel throughput: ``torchrun --standalone --nproc-per-node=2 -m quivers fit
   ... --distributed`` against one process, each worker with the same batch size
   (so 2 processes take global batches twice as large); the tokens per second that
   each run reports (input bytes of every worker's steps over the time in steps) and
   the scaling efficiency tokens_2 / (2 tokens_1).

The corpus is the standard library's sources (``stdlib_corpus.py``). Run from the
repository root: ``python benchmarks/bench_fit.py [--quick]``. Part 1 runs on one
intra-op thread and times CPU seconds of this process (``time.process_time``), so the
ratio stays meaningful on a shared machine; the machine's load is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from stdlib_corpus import stdlib_corpus  # noqa: E402

from quivers.inference.minibatch import fetch  # noqa: E402
from quivers.jobs.corpus import setup_corpus_fit  # noqa: E402

REFERENCE = ROOT / "docs" / "examples" / "source" / "vanilla_rnn_lm.qvr"


class HandRNN(nn.Module):
    """The reference program written directly in torch (same shapes, same math)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, 64)
        self.cell = nn.Sequential(nn.Linear(64 + 128, 64), nn.Tanh(), nn.Linear(64, 128))
        self.head = nn.Sequential(nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 256))

    def loss(self, x: torch.Tensor, y: torch.Tensor, num_rows: int) -> torch.Tensor:
        e = self.embed(x)
        h = e.new_zeros(x.shape[0], 128)
        for t in range(x.shape[1]):
            loc = self.cell(torch.cat((e[:, t], h), dim=-1))
            h = loc + 0.1 * torch.randn_like(loc)
        log_lik = -F.cross_entropy(self.head(h), y, reduction="sum")
        return -(num_rows / x.shape[0]) * log_lik


def copy_weights(hand: HandRNN, model: nn.Module) -> None:
    """The compiled model's weights into the hand-written one (matched by shape, in order)."""
    mine = [p for p in hand.parameters()]
    theirs = [p for _, p in model.named_parameters()]
    assert [tuple(p.shape) for p in mine] == [tuple(p.shape) for p in theirs], (
        [tuple(p.shape) for p in mine],
        [tuple(p.shape) for p in theirs],
    )
    with torch.no_grad():
        for a, b in zip(mine, theirs, strict=True):
            a.copy_(b)


def bench_single(corpus: Path, seq_len: int, batch: int, blocks: int, steps: int) -> dict:
    torch.set_num_threads(1)
    setup = setup_corpus_fit(
        REFERENCE.read_text(),
        str(REFERENCE),
        str(corpus),
        target=None,
        seed=0,
        seq_len=seq_len,
        batch_size=batch,
        epochs=1,
        val_fraction=0.1,
        lr=0.005,
        guide="prior",
    )
    fit, svi = setup.fit, setup.fit.svi
    hand = HandRNN()
    copy_weights(hand, setup.model)
    optim = torch.optim.Adam(hand.parameters(), lr=0.005)
    batches = fit.epoch_batches(0)
    site = next(iter(fit.train.observations))  # type: ignore[attr-defined]
    x, obs = fetch(fit.train, batches[0])  # the same objective: equal losses, same noise
    torch.manual_seed(123)
    ours_loss = svi.evaluate_loss(x, obs, fit.num_rows)
    torch.manual_seed(123)
    with torch.no_grad():
        hand_loss = float(hand.loss(x, obs[site], fit.num_rows))
    mismatch = abs(ours_loss - hand_loss) / abs(hand_loss)
    assert mismatch < 1e-5, (ours_loss, hand_loss)
    ours: list[float] = []
    theirs: list[float] = []
    i = 0
    for _ in range(blocks):
        for kind in ("ours", "hand"):
            start = time.process_time()
            for k in range(steps):
                x, obs = fetch(fit.train, batches[(i + k) % len(batches)])
                if kind == "ours":
                    svi.step(x, obs, fit.num_rows)
                else:
                    optim.zero_grad(set_to_none=True)
                    hand.loss(x, obs[site], fit.num_rows).backward()
                    optim.step()
            (ours if kind == "ours" else theirs).append(time.process_time() - start)
        i += steps
    tokens = steps * batch * seq_len
    t_ours, t_hand = statistics.median(ours), statistics.median(theirs)
    return {
        "tokens_per_s": tokens / t_ours,
        "hand_tokens_per_s": tokens / t_hand,
        "ratio": t_ours / t_hand,
        "loss_mismatch": mismatch,
    }


def run_fit(corpus: Path, workers: int, seq_len: int, batch: int, out: Path) -> float:
    args = [
        "-m", "quivers", "fit", str(REFERENCE), "--data", str(corpus), "--seq-len", str(seq_len),
        "--batch-size", str(batch), "--progress", "none", "--format", "json",
        "--state", str(out / f"w{workers}.pt"), "--plot", str(out / f"w{workers}.png"),
        "--val-fraction", "0.05",
    ]  # fmt: skip
    if workers > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={workers}", *args, "--distributed"]  # fmt: skip
    else:
        cmd = [sys.executable, *args]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return float(json.loads(proc.stdout)["tokens_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}; cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        corpus = out / "stdlib.txt"
        corpus.write_bytes(stdlib_corpus(300_000 if args.quick else 1_200_000))
        blocks, steps = (3, 5) if args.quick else (7, 10)
        single = bench_single(corpus, args.seq_len, args.batch_size, blocks, steps)
        print(
            f"1. corpus fit, batch {args.batch_size} x {args.seq_len} bytes: "
            f"{single['tokens_per_s']:,.0f} tokens/s (CPU); hand-written torch loop "
            f"{single['hand_tokens_per_s']:,.0f} tokens/s; time per token "
            f"{single['ratio']:.2f}x the hand loop (target <= 1.2x); first losses agree to "
            f"{single['loss_mismatch']:.1e} relative"
        )
        small = out / "small.txt"
        small.write_bytes(stdlib_corpus(100_000 if args.quick else 400_000))
        one = run_fit(small, 1, args.seq_len, args.batch_size, out)
        two = run_fit(small, 2, args.seq_len, args.batch_size, out)
        print(
            f"2. data-parallel, {args.batch_size} rows per worker: 1 process {one:,.0f} "
            f"tokens/s, 2 processes (torchrun, gloo) {two:,.0f} tokens/s; scaling "
            f"efficiency {two / (2 * one):.2f}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
