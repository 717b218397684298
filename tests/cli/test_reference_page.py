"""``qvr sample`` and ``qvr fit`` reproduce the reference page's recipe exactly: seed 0
before loading, weights N(0, 0.3^2), random prompts, the draw; the refit from fresh
weights under seed 1 (the page's snippets are re-run here, in process, to compare)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from quivers.dsl import load
from quivers.inference import ELBO, SVI, AutoNormalGuide

from .helpers import REFERENCE, qvr


def _page_corpus() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = load(REFERENCE).morphism
    for _, p in model.named_parameters():
        p.data.copy_(torch.randn_like(p) * 0.3)
    prompts = torch.randint(0, 256, (4, 8))
    targets = model.rsample(prompts)
    return model, prompts, targets


def test_sample_draws_the_pages_corpus(tmp_path: Path) -> None:
    _, prompts, targets = _page_corpus()
    out = tmp_path / "corpus.pt"
    assert qvr("sample", REFERENCE, "--out", out).code == 0
    drawn = torch.load(out, weights_only=True)
    assert torch.equal(drawn["x"], prompts)
    assert torch.equal(drawn["next_token"], targets)


def test_fit_follows_the_pages_svi_snippet(tmp_path: Path) -> None:
    model, prompts, targets = _page_corpus()
    torch.manual_seed(1)
    for _, p in model.named_parameters():
        p.data.copy_(torch.randn_like(p) * 0.3)
    guide = AutoNormalGuide(model, observed_names={"next_token"})
    guide.setup(prompts, {"next_token": targets})
    optim = torch.optim.Adam(list(model.parameters()) + list(guide.parameters()), lr=5e-2)
    svi = SVI(model, guide, optim, ELBO(num_particles=1))
    losses = [svi.step(prompts, {"next_token": targets}) for _ in range(31)]
    result = qvr(
        "fit", REFERENCE, "--steps", "31", "--lr", "0.05", "--format", "json", "--progress",
        "none", "--plot", tmp_path / "loss.png",
    )  # fmt: skip
    assert result.code == 0, result.err
    fitted = json.loads(result.out)["losses"]
    assert fitted == [round(v, 4) for v in losses]
