"""Data checks that the caller has already made: skipped on repeated calls, never lost.

Every public entry of a compiled model (``log_joint``, ``trace``, ...) validates its
data: the input's ids are in range, the observations and host data have the dtypes
and shapes of their sites. That costs host work on every call, and its
data-dependent branches (``int(ids.min())``) keep ``torch.compile`` from capturing
the model in one graph. A caller that evaluates one model on the same data many
times (a potential energy: thousands of leapfrog steps; SVI: thousands of gradient
steps) validates them on its first call and makes the later calls inside
:func:`validated_data`, where the runtime skips those checks.

The caller vouches that the data of every call in the block are the data it
validated (and that the other values it passes, such as latents, were made by it
with the shapes the model gave them): MCMC's potential and SVI keep the data tensors
they validated and their versions (``quivers.inference.validated.DataRecord``), and
validate again when a tensor was replaced or modified in place. The flag is per
thread. ``torch.compile`` guards on it, so a graph traced inside the block (without
the checks) is never reused outside it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_state = threading.local()


def data_checks() -> bool:
    """Whether the runtime validates the data of this call (False in
    :func:`validated_data`)."""
    return not getattr(_state, "validated", False)


@contextlib.contextmanager
def validated_data() -> Iterator[None]:
    """A block whose model calls take data the caller has already validated."""
    previous = getattr(_state, "validated", False)
    _state.validated = True
    try:
        yield
    finally:
        _state.validated = previous
