"""Whether a ``compile=True`` run really ran compiled: the fallbacks it met, as data.

A compiled potential that cannot be compiled says so once, as a
:class:`~quivers.inference.compile.CompileFallbackWarning`, and runs eagerly
(:mod:`quivers.inference.compile`). A caller that reports the run (``qvr fit``, the
language server, a worker process of parallel chains) must not tell its user
"compiled" when it was not, and a warning on stderr is easy to miss or lost with a
worker process: :func:`recording_compile_fallbacks` collects those warnings' texts
while leaving every other warning to the filters and display in force.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from quivers.inference.compile import CompileFallbackWarning


@contextlib.contextmanager
def recording_compile_fallbacks() -> Iterator[list[str]]:
    """Collect the text of every :class:`CompileFallbackWarning` issued in the block
    (in order, each distinct text once) instead of showing it; other warnings pass
    through unchanged. Not thread-safe (it swaps :func:`warnings.showwarning`, as
    :class:`warnings.catch_warnings` does)."""
    fallbacks: list[str] = []
    with warnings.catch_warnings():
        # "always": the record must not depend on whether this text was shown before,
        # nor on a filter that ignores or raises it (the run's result says it instead)
        warnings.simplefilter("always", CompileFallbackWarning)
        show = warnings.showwarning

        def record(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, CompileFallbackWarning):
                if str(message) not in fallbacks:
                    fallbacks.append(str(message))
            else:
                show(message, category, *args, **kwargs)

        warnings.showwarning = record
        yield fallbacks
