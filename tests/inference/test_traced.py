"""``quivers.inference.compile.TracedOnce``: a function traced once to aten
operations and compiled by TorchInductor, then called without dynamo. Dynamo's guards
are not there to notice a call the graph does not fit, so ``TracedOnce`` checks what
they would have; each test below is one of those checks, against the function run
eagerly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from test_compile import _have_cxx

from quivers.inference import CompileFallbackWarning
from quivers.inference.compile import TracedOnce

pytestmark = pytest.mark.skipif(not _have_cxx(), reason="TorchInductor needs a C++ compiler")


class _Traced(TracedOnce):
    def __init__(self, fn: Callable[..., Any], baked: Callable[[], object]) -> None:
        super().__init__()
        self.fn, self.state = fn, baked

    def _make(self) -> Callable[..., Any]:
        return self.fn

    def baked(self) -> object:
        return self.state()


def traced(fn: Callable[..., Any], baked: Callable[[], object] = lambda: None) -> _Traced:
    return _Traced(fn, baked)


def test_one_tensor_passed_twice_is_not_taken_for_two_tensors_later():
    # the trace follows tensors by identity: traced on f(x, x), its graph reads one
    # input for both arguments, which is wrong for f(x, y)
    t = traced(lambda a, b: (a - b,))
    x, y = torch.randn(5), torch.randn(5)
    assert torch.equal(t(x, x)[0], torch.zeros(5))
    torch.testing.assert_close(t(x, y)[0], x - y)
    torch.testing.assert_close(t(y, x)[0], y - x)
    assert len(t._graphs) == 2


def test_each_shape_and_stride_gets_its_own_graph():
    t = traced(lambda a: (a.cumsum(0) * 2.0,))
    a = torch.randn(4, 3)
    for arg in (a, a.T, torch.randn(6, 3), a[:, 1], a.double()):
        torch.testing.assert_close(t(arg)[0], arg.cumsum(0) * 2.0)
    assert len(t._graphs) == 5
    t(torch.randn(4, 3))  # a known signature: no new graph
    assert len(t._graphs) == 5
    t(torch.randn(4, 3, requires_grad=True))  # one that requires gradients: its own
    assert len(t._graphs) == 6


def test_a_new_baked_state_traces_again():
    # the trace holds the tensors it closes over as constants; ``baked`` is how a
    # caller says they changed
    box = {"w": torch.tensor([1.0, 2.0, 3.0]), "record": object()}
    t = traced(lambda a: (a * box["w"],), baked=lambda: box["record"])
    ones = torch.ones(3)
    assert torch.equal(t(ones)[0], torch.tensor([1.0, 2.0, 3.0]))
    box["w"], box["record"] = torch.tensor([5.0, 6.0, 7.0]), object()
    assert torch.equal(t(ones)[0], torch.tensor([5.0, 6.0, 7.0]))
    assert len(t._graphs) == 1  # the stale graph is gone


def test_a_branch_on_a_tensors_value_fails_to_trace_and_runs_eagerly():
    # the trace cannot read a value of the tensors it follows, so the branch cannot
    # be taken: tracing fails, and the caller runs its eager path (as when dynamo
    # cannot capture a graph whole)
    def branchy(a: torch.Tensor) -> tuple[torch.Tensor]:
        return (a + 1.0,) if float(a.sum()) > 0 else (a - 1.0,)

    t = traced(branchy)
    with pytest.warns(CompileFallbackWarning, match="TorchInductor could not compile"):
        assert t(torch.ones(3)) is None
    assert t.error is not None
    assert t(-torch.ones(3)) is None  # once failed, always eager (warned once)


def test_more_signatures_than_the_limit_run_eagerly():
    t = traced(lambda a: (a + 1.0,))
    t.max_graphs = 2
    assert t(torch.ones(1)) is not None and t(torch.ones(2)) is not None
    with pytest.warns(CompileFallbackWarning, match="more than 2 signatures"):
        assert t(torch.ones(3)) is None


def test_compiling_and_calling_do_not_go_through_dynamo(monkeypatch):
    # what the tracing is for: no guard evaluation on every call
    def no_dynamo(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("torch.compile called")

    monkeypatch.setattr(torch, "compile", no_dynamo)
    t = traced(lambda a, b: (a @ b, (a * b.T).sum(-1)))
    a, b = torch.randn(3, 4), torch.randn(4, 3)
    for _ in range(2):
        got = t(a, b)
        torch.testing.assert_close(got[0], a @ b)
        torch.testing.assert_close(got[1], (a * b.T).sum(-1))
    assert t.error is None


# ------------------------------------------------------- loops (nuts_graph's shape)


def _loops(scale: torch.Tensor, shift: torch.Tensor) -> Callable[..., torch.Tensor]:
    """n times: x <- x * scale**2 + 2 * shift, the squaring a nested loop, ``scale``
    and ``shift`` the kind of tensors a model holds (constants of the trace)."""
    from quivers.inference.nuts_graph import loop

    def twice(i: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (i < 2).all()

    def times_scale(i: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return i + 1, z * scale

    def more(k: torch.Tensor, y: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return (k < n).all()

    def step(k: torch.Tensor, y: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, z = loop(twice, times_scale, (torch.zeros_like(k), y), ())
        return k + 1, z + shift + shift  # one tensor read twice: one input

    def f(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return loop(more, step, (torch.zeros_like(n), x), (n,))[1]

    return f


def _by_hand(x: torch.Tensor, n: int, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    for _ in range(n):
        x = x * scale * scale + 2 * shift
    return x


def test_loops_read_the_models_tensors_where_they_are():
    """The tensors the loops' bodies read become inputs (lifted out of nested loops),
    passed by reference: a tensor changed in place is read as it is now."""
    scale, shift = torch.tensor([0.5, 1.5, -1.0]), torch.tensor([1.0, -2.0, 0.25])
    fn = traced(_loops(scale, shift))
    x = torch.tensor([1.0, 2.0, 3.0])
    for n in (0, 1, 4):
        got = fn(x, torch.tensor([n]))
        assert got is not None and fn.error is None
        assert torch.allclose(got, _by_hand(x, n, scale, shift))
    scale.mul_(-2.0)
    shift.add_(1.0)
    assert torch.allclose(fn(x, torch.tensor([3])), _by_hand(x, 3, scale, shift))
    assert len(fn._graphs) == 1  # one trace for all of it


def test_two_tensors_on_one_block_of_memory_inside_a_loop_fall_back():
    """Two operands of a loop that alias cannot be functionalized: refused with the
    fallback warning, not compiled into something that reads the wrong memory."""
    memory = torch.tensor([0.5, 1.5, -1.0, 2.0])
    fn = traced(_loops(memory[:3], memory[1:]))
    with pytest.warns(CompileFallbackWarning, match="share memory"):
        assert fn(torch.ones(3), torch.tensor([2])) is None
