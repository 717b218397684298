"""``quivers.runtime.checks``: data checks are skipped only inside the caller's
``validated_data`` block, on that thread, and are back after it."""

from __future__ import annotations

import threading

import pytest
import torch
from irkit import reference_model

from quivers.runtime.checks import data_checks, validated_data
from quivers.runtime.errors import QvrDataError


def test_the_block_skips_the_checks_and_restores_them():
    model = reference_model(embed=8, hidden=6, vocab=16)
    bad = torch.full((3, 5), 16)  # ids of a 16-token vocabulary are 0..15
    good = torch.randint(0, 16, (3, 5))
    with torch.no_grad():
        trace = model.trace(good, {})
    values = {n: s.trace for n, s in trace.items()}
    with pytest.raises(QvrDataError, match=r"id 16 out of range"):
        model.log_joint(bad, values)
    assert data_checks()
    with validated_data():
        assert not data_checks()
        with validated_data():  # nested blocks restore the outer state
            pass
        assert not data_checks()
        # the caller vouches for the data: the same call is not checked here
        assert torch.isfinite(model.log_joint(good, values))
    assert data_checks()
    with pytest.raises(QvrDataError, match=r"id 16 out of range"):
        model.log_joint(bad, values)


def test_the_block_is_per_thread():
    seen: list[bool] = []
    with validated_data():
        worker = threading.Thread(target=lambda: seen.append(data_checks()))
        worker.start()
        worker.join()
        assert not data_checks()
    assert seen == [True]  # another thread's model calls still validate
