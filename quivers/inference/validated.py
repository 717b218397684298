"""Data validated once per identity: the record of validated data, and the block that
trusts them.

A caller that evaluates one model on the same data many times (MCMC's potential:
thousands of leapfrog steps; SVI: thousands of gradient steps) validates them on its
first evaluation and makes the later ones in :func:`trusted_data`: no runtime data checks
(:func:`quivers.runtime.checks.validated_data`) and no argument validation of
``torch.distributions``. It keeps a :class:`DataRecord` of the data it validated and
compares it with the data of every later evaluation: data replaced or modified in
place since are validated again, so a bad value still raises the
:class:`~quivers.runtime.errors.QvrDataError` that names its site and shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from torch.distributions import Distribution

from quivers.runtime.checks import validated_data


@contextlib.contextmanager
def validation(on: bool) -> Iterator[None]:
    """Switch ``torch.distributions``' default argument validation for a block."""
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(on)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(previous)


@contextlib.contextmanager
def trusted_data() -> Iterator[None]:
    """Evaluations on data that an earlier evaluation validated (the caller checks
    that with :meth:`DataRecord.same`): no runtime data checks and no argument
    validation of ``torch.distributions``."""
    with validation(False), validated_data():
        yield


def _data_leaves(value: Any) -> Iterator[Any]:
    """The leaves (tensors, numbers) of a model's input, observations or run options."""
    if isinstance(value, Mapping):
        for key, v in value.items():
            yield key
            yield from _data_leaves(v)
    elif isinstance(value, tuple | list):
        yield len(value)
        for v in value:
            yield from _data_leaves(v)
    else:
        yield value


class DataRecord:
    """The data objects of one validated evaluation and the versions of their tensors.

    Equal to a later record when every leaf is the same object and no tensor was
    modified in place since (``Tensor._version`` counts in-place writes, and a view
    shares its base's counter); the record holds the objects, so an id cannot be
    reused by a new tensor meanwhile.
    """

    def __init__(self, *data: Any) -> None:
        self.leaves = [leaf for d in data for leaf in _data_leaves(d)]
        self.versions = [getattr(leaf, "_version", None) for leaf in self.leaves]

    def same(self, other: DataRecord) -> bool:
        return len(self.leaves) == len(other.leaves) and all(
            (a is b or (isinstance(a, str | int | float) and type(a) is type(b) and a == b))
            and va == vb
            for a, b, va, vb in zip(
                self.leaves, other.leaves, self.versions, other.versions, strict=True
            )
        )


def covers(validated: DataRecord | None, data: DataRecord) -> bool:
    """Whether ``data`` are the data of the validated record (None: nothing validated)."""
    return validated is not None and validated.same(data)
