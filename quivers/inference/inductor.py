"""The TorchInductor backend behind ``compile=True``.

A sampler's compiled graph is small and called tens of thousands of times, so what
costs is not the arithmetic but the work around it. Two changes to TorchInductor's
defaults, both exact (the same operations, in a different order of calls):

- **C++ wrapper** (``cpp_wrapper``): the generated code that allocates buffers and
  calls the kernels is compiled C++ instead of Python, which on the 100-d Gaussian
  benchmark's tree step removes about a third of each call. An operation with no C
  shim runs through a slower proxy; if the C++ wrapper cannot be built at all, the
  graph is built again with the Python wrapper.
- **Triangular solves with one shared matrix**: under ``vmap`` over chains, a
  ``MultivariateNormal``'s solve ``L x = b`` sees a batch of right-hand sides against
  one unbatched ``L``, and ``linalg_solve_triangular`` broadcasts by copying ``L``
  once per chain (and again into column-major order). :func:`solve_triangular`
  instead solves one 2-D system with the chains as extra columns (each column of a
  triangular solve is independent of the others). A 2-D ``linalg_solve_triangular``
  reads a row-major ``L`` as it is (a transposed solve of its column-major view),
  where the older ``aten.triangular_solve`` copies it on every call; on the 100-d
  Gaussian benchmark that copy was a tenth of a leapfrog step. The result may differ
  from the broadcast solve in the last float bits (BLAS blocks several columns), as
  every compiled value may.

The decomposition table is handed over as :class:`_DecompositionTable`, which pickles
as a reference to :func:`decomposition_table` and a digest of this file: TorchInductor
hashes its compile arguments for its on-disk graph cache, and a plain dict of
decompositions holds functions it cannot pickle, which made it bypass that cache, so
every run of every model compiled from scratch. The AOT autograd cache in front of it
keys a graph without its decompositions: it served graphs decomposed by an earlier
version of this file (the older triangular solve, seen on 2026-12-04 as that op's
deprecation notice from a graph that no longer had it), so the backend turns it off.
The graph cache proper still serves the compiled code; what runs again is
AOTAutograd's tracing, a fraction of a second per graph.

Both go through TorchInductor's ``compile_fx`` entry point (not public API, stable
since torch 2.0): if a torch lacks it, compiling fails and the sampler runs eagerly
after its :class:`~quivers.inference.compile.CompileFallbackWarning`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

aten = torch.ops.aten


def solve_triangular(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    upper: bool,
    left: bool = True,
    unitriangular: bool = False,
) -> Any:
    """``aten.linalg_solve_triangular`` as one 2-D solve when ``a`` has no batch (its
    batch dimensions all of size one): the batch of ``b`` folded into its columns.
    NotImplemented (the op as it is) for a right-side solve, a batched ``a``, or
    operands that are 2-D already."""
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if not left or math.prod(batch_a) != 1 or (a.dim() == 2 and b.dim() == 2):
        return NotImplemented
    n, k = b.shape[-2], b.shape[-1]
    b2 = b.movedim(-2, 0).reshape(n, -1)  # (n, batch * k): the batch as columns
    x2 = aten.linalg_solve_triangular.default(
        a.reshape(n, n), b2, upper=upper, left=True, unitriangular=unitriangular
    )
    x = x2.reshape(n, *batch_b, k).movedim(0, -2)
    # a's batch is all ones: broadcasting only prepends its extra unit dimensions
    extra = len(batch_a) - len(batch_b)
    return x.reshape(*([1] * extra), *x.shape) if extra > 0 else x


#: changes whenever this file does, so that a cached graph never outlives the code
#: that decomposed it
_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


class _DecompositionTable(dict[Any, Any]):
    """TorchInductor's decompositions with :func:`solve_triangular`, pickled (for
    TorchInductor's cache key) as a call of :func:`decomposition_table` with this
    file's digest instead of its entries, many of which cannot be pickled."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return decomposition_table, (_SOURCE_DIGEST,)


def decomposition_table(digest: str = _SOURCE_DIGEST) -> _DecompositionTable:
    """TorchInductor's default decompositions, with ``linalg_solve_triangular``
    replaced by :func:`solve_triangular` (``digest`` only keys the cache)."""
    from torch._inductor.decomposition import select_decomp_table

    table = _DecompositionTable(select_decomp_table())
    table[aten.linalg_solve_triangular.default] = solve_triangular
    return table


class _QuietShims(logging.Filter):
    """Drops TorchInductor's note that an operation has no C shim (it then runs
    through a proxy, correctly): a user cannot act on it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "missing a c-shim" not in record.getMessage()


def ignore_torch_deprecations() -> None:
    """Inside ``warnings.catch_warnings()``: TorchInductor's first compilation imports
    torch.utils.mkldnn, which warns about torch's own use of a deprecated torch.jit
    API; its lowering of aten.diagonal (a MultivariateNormal's log density) calls its
    own deprecated torch._prims_common.check. Neither is the user's to act on."""
    warnings.filterwarnings("ignore", "`torch.jit.script_method` is deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "`torch._prims_common.check` is deprecated", FutureWarning)


def backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Any:
    """``torch.compile``'s backend: TorchInductor with the C++ wrapper (the Python one
    when the C++ one cannot be built) and :func:`solve_triangular`, without the AOT
    autograd cache (see the module docstring)."""
    quiet = _QuietShims()
    ir_log = logging.getLogger("torch._inductor.ir")
    ir_log.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            ignore_torch_deprecations()
            # imported here: TorchInductor's import warns, and costs, and only
            # compiling needs it
            import torch._functorch.config as functorch_config
            from torch._inductor.compile_fx import compile_fx

            table = decomposition_table()
            with functorch_config.patch(enable_autograd_cache=False):
                try:
                    return compile_fx(
                        gm,
                        example_inputs,
                        decompositions=table,
                        config_patches={"cpp_wrapper": True},
                    )
                except Exception:  # noqa: BLE001 - no C++ wrapper: the Python one
                    return compile_fx(gm, example_inputs, decompositions=table)
    finally:
        ir_log.removeFilter(quiet)


def compile_traced(
    gm: torch.fx.GraphModule, example_inputs: Sequence[torch.Tensor]
) -> Callable[..., Any]:
    """:func:`backend` on a graph traced without dynamo (``make_fx``, see
    :class:`~quivers.inference.compile.TracedOnce`), called as ``fn(*inputs)``. Dynamo
    would have opened a tracing context with a shape environment; TorchInductor's
    graph cache needs one to key a graph on, and bypasses the cache without it, so
    this opens an empty one (every shape is static)."""
    from torch._guards import TracingContext, tracing
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with tracing(TracingContext(FakeTensorMode(shape_env=ShapeEnv()))):
        compiled: Callable[..., Any] = backend(gm, example_inputs)
    return compiled
