"""The minibatch driver: epochs visit every training row once, in a seeded order;
held-out rows stay out; a fit resumed from its state ends where an uninterrupted one
does; K workers' shards make up the global batches."""

from __future__ import annotations

import copy

import pytest
import torch
from inference_models import HierarchicalNormal

from quivers.inference import ELBO, SVI, InferenceCancelled
from quivers.inference.local_guides import AmortizedGuide
from quivers.inference.minibatch import MinibatchFit, RowDataset, fetch


def data(n: int = 60) -> RowDataset:
    gen = torch.Generator().manual_seed(0)
    y = 1.0 + 1.2 * torch.randn(n, generator=gen)
    return RowDataset(torch.arange(n).float(), {"y": y})


def make_fit(train: RowDataset, held: RowDataset | None = None, **kw) -> MinibatchFit:
    torch.manual_seed(0)
    model = HierarchicalNormal()
    guide = AmortizedGuide(model, global_guide="normal", hidden=8)
    svi = SVI(model, guide, lambda ps: torch.optim.Adam(ps, lr=0.01), ELBO())
    fit = MinibatchFit(svi, train, held, **{"batch_size": 8, "epochs": 3, "seed": 4, **kw})
    fit.prepare()
    return fit


def test_each_epoch_visits_every_training_row_once_in_a_new_order() -> None:
    train, held = data().split(0.2, seed=1)
    assert len(train) == 48 and len(held) == 12
    assert not set(train.x.tolist()) & set(held.x.tolist())
    fit = make_fit(train, held)
    orders = []
    for epoch in range(2):
        rows = [int(v) for b in fit.epoch_batches(epoch) for v in fetch(train, b)[0]]
        assert sorted(rows) == sorted(int(v) for v in train.x)
        orders.append(rows)
    assert orders[0] != orders[1]
    assert fit.epoch_batches(0) == make_fit(train, held).epoch_batches(0)  # seeded


def test_fit_records_losses_and_held_out_scores_per_epoch() -> None:
    train, held = data().split(0.2, seed=1)
    fit = make_fit(train, held)
    state = fit.fit()
    assert state.step == 3 * 6 and state.epoch == 3 and len(state.losses) == 18
    assert [s for s, _ in state.held_out] == [6, 12, 18]
    assert state.held_out[-1][1] < state.held_out[0][1]  # it learns
    # the held-out figure is reproducible and leaves the fit's random stream alone
    rng = torch.get_rng_state()
    first = fit.evaluate(held)
    assert torch.equal(rng, torch.get_rng_state())
    assert fit.evaluate(held) == first


def test_resumed_fit_ends_with_the_weights_of_an_uninterrupted_one() -> None:
    train, held = data().split(0.2, seed=1)
    whole = make_fit(train, held)
    whole.fit()

    first = make_fit(train, held)
    with pytest.raises(InferenceCancelled):
        first.fit(should_stop=lambda: first.state.step >= 7)  # mid-epoch 2
    saved = copy.deepcopy(first.state_dict())

    resumed = make_fit(train, held)
    resumed.load_state_dict(saved)
    assert resumed.state.step == 7 and resumed.state.epoch == 1 and resumed.state.batch == 1
    resumed.fit()
    for (name, a), b in zip(
        whole.svi.guide.state_dict().items(), resumed.svi.guide.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert whole.state.losses == resumed.state.losses
    assert whole.state.held_out == resumed.state.held_out


def test_a_state_of_another_batch_size_is_refused() -> None:
    train = data()
    saved = make_fit(train).state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        make_fit(train, batch_size=4).load_state_dict(saved)


def test_worker_shards_make_up_the_global_batches() -> None:
    train = data(64)
    one = make_fit(train, batch_size=16, num_replicas=1)
    shards = [make_fit(train, batch_size=8, num_replicas=2, rank=r) for r in (0, 1)]
    a, b = (s.epoch_batches(0) for s in shards)
    assert len(a) == len(b) == 4
    rows = sorted(i for batch in a + b for i in batch)
    assert rows == list(range(64))
    assert not set(i for bt in a for i in bt) & set(i for bt in b for i in bt)
    assert one.steps_per_epoch() == 4
