"""The runtime's exceptions.

Bad data (wrong dtype, wrong shape, out-of-range ids, a missing observation or host
value) raises :class:`QvrDataError`, always before any computation that could touch
parameters, with a message naming the site or input, the expected and the given
shape/dtype. A malformed IR raises :class:`QvrBuildError` when the module is built.
"""

from __future__ import annotations


class QvrDataError(ValueError):
    """Data given to a compiled model does not fit its types."""


class QvrBuildError(ValueError):
    """The IR cannot be turned into torch modules (a compiler bug or hand-built IR)."""


def describe(t: object) -> str:
    """A short 'dtype of shape (..)' description of a value, for error messages."""
    shape = getattr(t, "shape", None)
    dtype = getattr(t, "dtype", None)
    if shape is None:
        return type(t).__name__
    return f"{str(dtype).replace('torch.', '')} of shape {tuple(shape)}"
