"""The reference program of spec section 1, built from hand-written IR."""

import math

import pytest
import torch
import torch.nn.functional as F
from irkit import reference_model
from torch.distributions import constraints


@pytest.fixture
def model():
    m = reference_model()
    for _, p in m.named_parameters():  # as the seed snippets do
        p.data.copy_(torch.randn_like(p) * 0.3)
    return m


def test_generate_data_shapes(model):
    prompts = torch.randint(0, 256, (4, 8))
    targets = model.rsample(prompts)
    assert targets.shape == (4,) and targets.dtype == torch.int64
    assert int(targets.min()) >= 0 and int(targets.max()) < 256
    assert model._step_h.rsample(prompts).shape == (4, 8, 128)
    assert model(prompts).shape == (4,)  # forward = rsample


def test_protocol_members(model):
    assert model.observed_names == frozenset({"next_token"})
    assert model.latent_names == ("h",)
    names = [n for n, _ in model.named_parameters()]
    assert all(n.startswith(("_step_h.", "_step_next_token.")) for n in names)
    assert len(names) == len(set(names)) == 9


def test_trace_sites(model):
    prompts = torch.randint(0, 256, (4, 8))
    sites = model.trace(prompts)
    assert list(sites) == ["h", "next_token"]
    h, y = sites["h"], sites["next_token"]
    assert h.trace.shape == (4, 8, 128) and torch.equal(h.value, h.trace[:, -1])
    assert h.log_prob.shape == (4,) and not h.observed and not h.is_global
    assert h.support is constraints.real
    assert y.trace.shape == (4,) and y.observed
    assert isinstance(y.support, constraints.integer_interval)
    total = model.log_joint(prompts, {"h": h.trace, "next_token": y.trace})
    assert torch.allclose(total, h.log_prob.sum() + y.log_prob.sum(), rtol=1e-5)


def test_observation_substitution(model):
    prompts = torch.randint(0, 256, (4, 8))
    y = torch.tensor([1, 2, 3, 4])
    assert torch.equal(model.rsample(prompts, {"next_token": y}), y)
    traj = model._step_h.rsample(prompts)
    sites = model.trace(prompts, {"h": traj})
    assert sites["h"].trace is traj


def _hand_log_joint(model, tokens, traj, y):
    p = dict(model.named_parameters())
    emb = p["_step_h.parts.0.weight"]
    c = "_step_h.parts.1.cell.source.net.layers."
    hd = "_step_next_token.source.net.layers."
    total = torch.zeros((), dtype=traj.dtype)
    h = torch.zeros(tokens.shape[0], 128, dtype=traj.dtype)
    for t in range(tokens.shape[1]):
        inp = torch.cat([emb[tokens[:, t]], h], -1)
        hid = torch.tanh(inp @ p[c + "0.weight"].T + p[c + "0.bias"])
        loc = hid @ p[c + "1.weight"].T + p[c + "1.bias"]
        h_t = traj[:, t]
        total = (
            total
            + (
                -((h_t - loc) ** 2) / (2 * 0.1**2) - math.log(0.1) - 0.5 * math.log(2 * math.pi)
            ).sum()
        )
        h = h_t
    logits = torch.tanh(h @ p[hd + "0.weight"].T + p[hd + "0.bias"]) @ p[hd + "1.weight"].T
    logits = logits + p[hd + "1.bias"]
    return total + F.log_softmax(logits, -1).gather(-1, y[:, None]).sum()


def test_log_joint_is_exact(model):
    tokens = torch.randint(0, 256, (4, 8))
    traj = model._step_h.rsample(tokens)
    y = torch.randint(0, 256, (4,))
    got = model.log_joint(tokens, {"h": traj, "next_token": y})
    want = _hand_log_joint(model, tokens, traj.detach(), y)
    assert got.dim() == 0
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5 * abs(float(want.detach())))
    # and the per-site densities agree with it
    lp_h = model._step_h.log_prob(tokens, traj)
    lp_y = model._step_next_token.log_prob(traj[:, -1], y)
    assert torch.allclose(lp_h.sum() + lp_y.sum(), got, rtol=1e-5)


def test_gradients_flow(model):
    tokens = torch.randint(0, 256, (2, 5))
    traj = model._step_h.rsample(tokens).detach()
    model.log_joint(tokens, {"h": traj, "next_token": torch.tensor([3, 4])}).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_float64(model):
    model = model.to(torch.float64)
    tokens = torch.randint(0, 256, (3, 6))
    traj = model._step_h.rsample(tokens)
    assert traj.dtype == torch.float64
    y = model.rsample(tokens)
    lj = model.log_joint(tokens, {"h": traj, "next_token": y})
    assert lj.dtype == torch.float64
    want = _hand_log_joint(model, tokens, traj, y)
    assert torch.allclose(lj, want, rtol=1e-10)
