"""SVI validates a program's data once per data identity, and never loses a check.

The first step on a set of data runs the runtime's checks (counted here by spies on
``data_checks``, the switch every input, host-data and trace check is behind, and on
the observations' check); later
steps on the same data run none (``quivers.inference.validated.trusted_data``), and
give the losses of steps that validate every time. Data modified in place or
replaced, and every new minibatch, are validated again, with the same
``QvrDataError`` naming the site and the shape.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from quivers.dsl import load
from quivers.inference import ELBO, SVI, AutoNormalGuide
from quivers.inference.minibatch import MinibatchFit, RowDataset
from quivers.runtime.checks import data_checks
from quivers.runtime.errors import QvrDataError
from quivers.runtime.kernels import InlineFamily

PROGRAM = Path(__file__).resolve().parents[2] / "docs/examples/source/hierarchical_regression.qvr"
ROWS, GROUPS = 40, 8  # the program's County has 8 elements: ids 0..7
BAD_GROUP = r"let 'intercept': index 'group' has ids 0\.\.8, outside the plate's 0\.\.7"


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The runtime's data checks as they run: ``"data"`` for each call of
    ``data_checks()`` that lets a check run (every input, host-data, id-range and
    trace check is behind one), and the place of each observation's check."""
    calls: list[str] = []

    def gate() -> bool:
        on = data_checks()
        if on:
            calls.append("data")
        return on

    for name, module in list(sys.modules.items()):
        if (
            name.startswith("quivers.runtime")
            and getattr(module, "data_checks", None) is data_checks
        ):
            monkeypatch.setattr(module, "data_checks", gate)
    check_given = InlineFamily.check_given

    def given(self: InlineFamily, args: Any, trace: Any, where: str) -> None:
        calls.append(where)
        check_given(self, args, trace, where)

    monkeypatch.setattr(InlineFamily, "check_given", given)
    return calls


def regression() -> tuple[SVI, torch.Tensor, dict[str, torch.Tensor]]:
    """hierarchical_regression on 40 rows (group ids 0..7), AutoNormalGuide, Adam."""
    model = load(PROGRAM).morphism
    g = torch.Generator().manual_seed(3)
    x = torch.randn(ROWS, 1, generator=g)
    obs = {"group": torch.arange(ROWS) % GROUPS, "y": torch.randn(ROWS, 1, generator=g)}
    guide = AutoNormalGuide(model, observed_names={"y"})
    svi = SVI(model, guide, lambda p: torch.optim.Adam(p, lr=0.01), ELBO())
    return svi, x, obs


def undeclared(*args: Any, **kwargs: Any) -> torch.Tensor:
    """The ELBO as an objective that does not declare ``validates_once``."""
    return ELBO()(*args, **kwargs)


def test_the_data_are_checked_on_the_first_step_only(checks: list[str]) -> None:
    svi, x, obs = regression()
    svi.step(x, obs)
    first = list(checks)
    assert "data" in first and "site 'y'" in first
    svi.run(x, {**obs}, num_steps=20)  # a new dict of the same tensors: the same data
    svi.evaluate_loss(x, obs)
    assert checks == first


def test_validated_once_gives_the_losses_of_validating_every_step(checks: list[str]) -> None:
    """An objective that does not declare ``validates_once`` is checked on every step
    (the spy sees each one); both give the same losses under the same seed."""
    losses = {}
    for name in ("once", "every step"):
        torch.manual_seed(7)
        svi, x, obs = regression()
        if name == "every step":
            svi = SVI(svi.model, svi.guide, lambda p: torch.optim.Adam(p, lr=0.01), undeclared)
            assert not svi._validates_once
        checks.clear()
        losses[name] = svi.run(x, obs, num_steps=6)
        per_step = checks.count("site 'y'")
        assert per_step == (1 if name == "once" else 6)
    assert losses["once"] == losses["every step"]


def test_data_modified_in_place_between_steps_are_checked_again(checks: list[str]) -> None:
    svi, x, obs = regression()
    svi.run(x, obs, num_steps=3)
    obs["group"][3] = GROUPS  # in place: the same tensor object, a new version
    with pytest.raises(QvrDataError, match=BAD_GROUP):
        svi.step(x, obs)
    with pytest.raises(QvrDataError, match=BAD_GROUP):  # still bad: still checked
        svi.step(x, obs)
    obs["group"][3] = 3
    before = len(checks)
    svi.step(x, obs)  # valid again: checked once more, then trusted
    svi.step(x, obs)
    assert checks[before:].count("site 'y'") == 1


def test_data_replaced_between_steps_are_checked_again() -> None:
    svi, x, obs = regression()
    svi.run(x, obs, num_steps=3)
    with pytest.raises(QvrDataError, match=r"site 'y'.*\(40, 1\).*\(5, 1\)"):
        svi.step(x, {**obs, "y": torch.zeros(5, 1)})
    with pytest.raises(QvrDataError, match=r"program 'hierarchical_regression' input"):
        svi.step(torch.zeros(ROWS, 2), obs)
    svi.step(x, obs)  # the validated data are still good


def test_a_new_minibatch_with_a_bad_id_is_caught_naming_the_site(checks: list[str]) -> None:
    svi, x, obs = regression()
    obs["group"][2 * 8 + 5] = GROUPS  # a row of the third batch (8 rows each, in order)
    fit = MinibatchFit(svi, RowDataset(x, obs), batch_size=8, epochs=1, shuffle=False)
    with pytest.raises(QvrDataError, match=BAD_GROUP):
        fit.fit()
    assert fit.state.step == 2  # the first two batches were taken
    # the first two batches validated (the third stopped at its ids, before 'y')
    assert checks.count("site 'y'") == 2
