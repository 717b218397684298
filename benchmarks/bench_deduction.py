"""Deduction speed: inside scores of a PCFG, forward and backward, against
hand-written vectorised torch CKY of the same grammar in the same process.

The grammar has 20 nonterminals, every binary rule A -> B C (8,000 rules, each
``#[learnable]``) and 200 lexicon entries (10 words per nonterminal, 100 words); its
weights are the per-left-hand-side softmax of one logit per rule, as the deduction
runtime normalises them. One iteration = ``inside`` of 64 sentences of length 20
(LogProb) + ``backward`` to the logits. Two baselines on the same logits:

- ``lse``: the textbook formulation: per width, logsumexp over split points of the
  outer sum of the two sub-spans, then logsumexp over (B, C) of that plus the rule
  log-probabilities (materialising the (batch, start, B*C, A) tensor);
- ``scaled``: the same sums in linear space after subtracting per-cell maxima (an
  einsum over split points, then a matmul with the rule probabilities), the fastest
  formulation we know in plain torch.

The implementations alternate every repetition; best of the repetitions, CPU time.
Run: ``python benchmarks/bench_deduction.py [--reps 10 --threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from quivers.core.deduction.system import DeductionSystem, LexEntry, Rule
from quivers.core.deduction.terms import Var
from quivers.runtime.deduction.module import Deduction

N_NT, WORDS_PER_NT, BATCH, LENGTH = 20, 10, 64, 20


def grammar() -> tuple[DeductionSystem, list[str]]:
    i, j, k = Var("I"), Var("J"), Var("K")
    nts = ["S"] + [f"N{a}" for a in range(1, N_NT)]
    rules = tuple(
        Rule(f"r_{a}_{b}_{c}", (("span", i, k, b), ("span", k, j, c)), ("span", i, j, a), True)
        for a in nts
        for b in nts
        for c in nts
    )
    lex = []
    for n, a in enumerate(nts):
        for w in range(WORDS_PER_NT):
            word = f"w{(n * WORDS_PER_NT // 2 + w) % (N_NT * WORDS_PER_NT // 2)}"
            lex.append(LexEntry(word, a, word, True))
    return DeductionSystem("Bench", (), rules, tuple(lex), "LogProb", "S", 4), nts


class HandCKY:
    """Plain-torch CKY over the same logits (rules first, then lexicon entries)."""

    def __init__(self, ded: Deduction, nts: list[str], scaled: bool) -> None:
        self.scaled = scaled
        c = len(nts)
        nt = {a: n for n, a in enumerate(nts)}
        vocab = {w: n for n, w in enumerate(ded.vocabulary)}
        self.c, self.v = c, len(vocab)
        # column of every logit in a (C, C*C + V) table of per-LHS alternatives
        cols, rows = [], []
        for r in ded.system.rules:
            a, b, cc = (p[3] for p in (r.conclusion, *r.premises))
            rows.append(nt[a])
            cols.append(nt[b] * c + nt[cc])
        for e in ded.system.lexicon:
            rows.append(nt[e.category])
            cols.append(c * c + vocab[e.word])
        self.rows, self.cols = torch.tensor(rows), torch.tensor(cols)

    def inside(self, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        c, v = self.c, self.v
        table = torch.full((c, c * c + v), float("-inf"), dtype=logits.dtype)
        table = table.index_put((self.rows, self.cols), logits)
        table = torch.log_softmax(table, dim=1)
        rule = table[:, : c * c].T  # (B*C, A)
        emit = table[:, c * c :].T  # (V, A)
        batch, n = ids.shape
        chart = {1: emit[ids]}  # (batch, n, A)
        prob = rule.exp()
        for width in range(2, n + 1):
            m = n - width + 1
            left = torch.stack([chart[k][:, :m] for k in range(1, width)], dim=2)
            right = torch.stack([chart[width - k][:, k : k + m] for k in range(1, width)], dim=2)
            if self.scaled:
                ml = left.detach().amax(-1, keepdim=True)
                mr = right.detach().amax(-1, keepdim=True)
                top = (ml + mr).amax(2, keepdim=True)
                lw = torch.exp(left - ml + (ml + mr - top))
                pairs = torch.einsum("bnkx,bnky->bnxy", lw, torch.exp(right - mr))
                cells = torch.log(pairs.reshape(batch, m, c * c) @ prob) + top.reshape(batch, m, 1)
            else:
                pairs = torch.logsumexp(left.unsqueeze(-1) + right.unsqueeze(-2), dim=2)
                cells = torch.logsumexp(pairs.reshape(batch, m, c * c, 1) + rule, dim=2)
            chart[width] = cells
        return chart[n][:, 0, 0]  # S is nonterminal 0


def cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    system, nts = grammar()
    ded = Deduction(system)
    build = time.perf_counter() - t0
    with torch.no_grad():
        ded.weights.normal_()
    ids = torch.randint(0, len(ded.vocabulary), (BATCH, LENGTH))
    hands = {name: HandCKY(ded, nts, scaled) for name, scaled in (("lse", False), ("scaled", True))}
    logits = ded.weights.detach().clone().requires_grad_(True)

    def ours() -> None:
        ded.zero_grad()
        (-ded.inside(ids).sum()).backward()

    def hand(name: str):
        def run() -> None:
            logits.grad = None
            (-hands[name].inside(logits, ids).sum()).backward()

        return run

    # the three agree (same grammar, same normalisation)
    with torch.no_grad():
        a = ded.inside(ids)
        for h in hands.values():
            torch.testing.assert_close(a, h.inside(ded.weights, ids), atol=1e-3, rtol=1e-4)
    runs = {"ours": ours, "lse": hand("lse"), "scaled": hand("scaled")}
    for fn in runs.values():
        fn()  # warm up
    best = {k: float("inf") for k in runs}
    for _ in range(args.reps):
        for k, fn in runs.items():
            best[k] = min(best[k], cpu_time(fn))
    print(f"python {platform.python_version()}, torch {torch.__version__}, threads {args.threads}")
    print(f"load average {os.getloadavg()}")
    print(
        f"grammar: {N_NT} nonterminals, {len(system.rules)} binary rules, "
        f"{len(system.lexicon)} entries; build {build:.2f} s; engine {ded.engine}"
    )
    print(f"batch {BATCH}, length {LENGTH}, forward + backward, best of {args.reps} (CPU time)")
    for k in ("scaled", "lse", "ours"):
        print(
            f"  {k:7s} {best[k] * 1e3:8.1f} ms  {best[k] / best['scaled']:.2f}x of scaled, "
            f"{best[k] / best['lse']:.2f}x of lse"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
