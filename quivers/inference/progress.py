"""Progress reporting and cooperative cancellation for long-running inference loops.

Every loop that can run for a while (``SVI.run``, MCMC warmup and sampling) takes two
optional callables:

- ``progress(info: ProgressInfo) -> None``: called after each iteration;
- ``should_stop() -> bool``: polled before each iteration; when it returns True the
  loop stops *between* iterations (never half way through an update, so parameters
  and optimiser state stay consistent) and raises :class:`InferenceCancelled`, whose
  ``partial`` attribute carries whatever was finished (SVI losses so far, or an
  :class:`~quivers.inference.mcmc.MCMCResult` of the completed chains).

The command line and the language server use these to show progress and stop a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProgressInfo:
    """One progress report.

    ``phase`` is ``"svi"``, ``"warmup"`` or ``"sampling"``; ``iteration`` counts from 1
    within the phase (and chain) up to ``total``; ``stats`` holds phase-specific
    numbers (``loss``; ``accept_prob``, ``step_size``, ``diverging``, ``tree_depth``).
    """

    phase: str
    iteration: int
    total: int
    chain: int = 0
    num_chains: int = 1
    stats: dict[str, float] = field(default_factory=dict)


ProgressFn = Callable[[ProgressInfo], None]
StopFn = Callable[[], bool]


class InferenceCancelled(RuntimeError):
    """Raised when ``should_stop()`` asked a running loop to stop.

    ``partial`` holds the work completed before the stop (or None).
    """

    def __init__(self, message: str, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial
