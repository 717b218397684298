"""Bad data raises QvrDataError naming the site, expected and given; parameters stay put."""

import pytest
import torch
from irkit import reference_model

from quivers.runtime.errors import QvrDataError


@pytest.fixture
def model():
    return reference_model(embed=8, hidden=6, vocab=16)


def _snapshot(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _unchanged(m, before):
    return all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def _attempt(model, fn):
    """Run ``fn`` as one optimisation step would, so a late failure could corrupt state."""
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    opt.zero_grad()
    (-fn()).backward()
    opt.step()


CASES = {
    "float ids that are not whole numbers": (  # whole-number floats are ids (below)
        lambda m, x, y, h: m.rsample(x.float() + 0.5),
        r"input.*int64.*float32 of shape \(3, 5\) holding \d+\.5, not an id",
    ),
    "float ids out of range": (
        lambda m, x, y, h: m.rsample(torch.full((3, 5), 16.0)),
        r"id 16 out of range.*0\.\.15.*given float32 of shape \(3, 5\)",
    ),
    "id out of range": (
        lambda m, x, y, h: m.rsample(torch.full((3, 5), 16)),
        r"id 16 out of range.*0\.\.15",
    ),
    "wrong sequence rank": (
        lambda m, x, y, h: m.rsample(x[:, 0]),
        r"site 'h': input: scan needs a sequence \(batch, T\) of Token.*shape \(3,\)",
    ),
    "missing observation": (
        lambda m, x, y, h: m.log_joint(x, {"h": h}),
        r"site 'next_token': missing observation",
    ),
    "missing latent trace": (
        lambda m, x, y, h: m.log_joint(x, {"next_token": y}),
        r"site 'h': missing trace",
    ),
    "observation of floats": (
        lambda m, x, y, h: m.log_joint(x, {"h": h, "next_token": y.float()}),
        r"site 'next_token'.*int64.*float32 of shape \(3,\)",
    ),
    "observation out of range": (
        lambda m, x, y, h: m.log_joint(x, {"h": h, "next_token": y + 16}),
        r"site 'next_token'.*out of range",
    ),
    "trajectory of the wrong length": (
        lambda m, x, y, h: m.log_joint(x, {"h": h[:, :-1], "next_token": y}),
        r"site 'h'.*shape \(3, 5, 6\).*shape \(3, 4, 6\)",
    ),
    "observation of the wrong shape": (
        lambda m, x, y, h: m.log_joint(x, {"h": h, "next_token": y[:2]}),
        r"site 'next_token'.*shape \(3,\).*shape \(2,\)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_raises_one_clear_error(model, case):
    fn, pattern = CASES[case]
    x = torch.randint(0, 16, (3, 5))
    h = model._step_h.rsample(x).detach()
    y = model.rsample(x).detach()
    before = _snapshot(model)
    with pytest.raises(QvrDataError, match=pattern):
        _attempt(model, lambda: fn(model, x, y, h))
    assert _unchanged(model, before)
    # and the model still works afterwards
    assert torch.isfinite(model.log_joint(x, {"h": h, "next_token": y}))


def test_error_is_a_value_error():
    assert issubclass(QvrDataError, ValueError)


def test_kernel_entry_points_validate(model):
    with pytest.raises(QvrDataError, match="floats of shape"):
        model._step_next_token.log_prob(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long))
    with pytest.raises(QvrDataError, match=r"scan needs a sequence \(batch, T, 8\)"):
        model._step_h.parts[1].rsample(torch.zeros(3, 8))


def test_int32_ids_are_accepted(model):
    x = torch.randint(0, 16, (3, 5))
    h = model._step_h.rsample(x)
    y = model.rsample(x)
    a = model.log_joint(x, {"h": h, "next_token": y})
    b = model.log_joint(x.int(), {"h": h, "next_token": y.int()})
    assert torch.allclose(a, b)


def test_floats_holding_ids_are_the_ids(model):
    """The gallery passes ids as floats (``torch.zeros(N, 1)``); whole numbers are ids."""
    x = torch.randint(0, 16, (3, 5))
    h = model._step_h.rsample(x)
    y = model.rsample(x)
    a = model.log_joint(x, {"h": h, "next_token": y})
    b = model.log_joint(x.float(), {"h": h, "next_token": y})
    assert torch.equal(a, b)
