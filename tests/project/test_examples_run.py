"""Every example compiles, samples, and scores its own draw with a finite density."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from quivers.dsl import load
from quivers.jobs.data import random_input, run_arguments, uses_sequences

from .gallery_corpus import setup
from .helpers import EXAMPLES

# relations under the real algebra: matrices, which nothing can sample
REAL = [p for p in EXAMPLES if "composition real as algebra" in p.read_text()]
PROGRAMS = [p for p in EXAMPLES if "\ndeduction " not in p.read_text() and p not in REAL]
DEDUCTIONS = [p for p in EXAMPLES if "\ndeduction " in p.read_text()]


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_real_algebra_example_is_a_finite_matrix(path: Path) -> None:
    model = load(path).morphism
    matrix = model.tensor
    assert matrix.dim() == 2 and bool(torch.isfinite(matrix).all())


@pytest.mark.parametrize("path", DEDUCTIONS, ids=lambda p: p.stem)
def test_deduction_example_samples_parses_and_scores(path: Path) -> None:
    """A grammar example: its sentences parse, score finitely and agree with parse."""
    prog = load(path)
    assert prog.deductions, f"{path.name} declares no deduction"
    for ded in prog.deductions.values():
        draws = ded.sample(n=4, seed=0, max_length=8)
        scores = ded.log_prob(draws)
        assert bool(torch.isfinite(scores).all())
        for sentence, score in zip(draws, scores.tolist(), strict=True):
            best = ded.parse(sentence)
            assert best.words() == sentence and best.score <= score + 1e-5


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_example_compiles_samples_and_scores(path: Path) -> None:
    torch.manual_seed(0)
    model = load(path).morphism
    steps = model.decl.steps if hasattr(model, "decl") else ()  # an exported let has none
    run = run_arguments(model, 5)
    x = random_input(model.dom, 3, 5, uses_sequences(model))
    hosts = {name: torch.randn(3, 1) for name in model.host_names}
    if "# host:" in path.read_text("utf-8") or "# rows:" in path.read_text("utf-8"):
        model, x, hosts = setup(path)  # the file says how to feed it (plates, ids)
    with torch.no_grad():
        trace = model.trace(x, dict(hosts), **run)
        values = {**hosts, **{name: site.trace for name, site in trace.items()}}
        total = model.log_joint(x, values, **run)
        returned = model.rsample(x, dict(hosts), **run)
    assert total.dim() == 0 and torch.isfinite(total)
    by_site = sum(
        (site.log_prob if site.is_global else site.log_prob.sum()) for site in trace.values()
    )
    # log_joint adds `score` factors on top of the sites; without them the two agree.
    if not any(type(s).__name__ == "ScoreStep" for s in steps):
        assert torch.allclose(total, by_site, rtol=1e-5, atol=1e-4)
    assert returned is not None
