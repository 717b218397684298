"""``quivers.inference.inductor``: the ``compile=True`` backend's rewrite of triangular
solves (checked against ``torch.linalg.solve_triangular`` itself, eagerly, on every
broadcasting case), its fallback to the Python wrapper, and one compiled vmapped
multivariate normal against the eager one."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from inference_models import correlated_2d
from test_compile import _have_cxx

from quivers.inference import CompileFallbackWarning, inductor
from quivers.inference.batched import BatchedPotential
from quivers.inference.potential import Potential


def _triangular(n: int, batch: tuple[int, ...], upper: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(*batch, n, n, generator=g, dtype=torch.float64)
    a = a.triu() if upper else a.tril()
    # a well-conditioned diagonal, so that the comparison tests the solve, not rounding
    return a + torch.diag_embed(3.0 + torch.rand(*batch, n, generator=g, dtype=torch.float64))


# (a's batch, b's shape, whether the solve is rewritten into one 2-D solve)
SHAPES = [
    ((), (4, 2), False),  # no batch at all: the op as it is
    ((1,), (5, 1, 4, 1), True),  # vmap's case: one matrix, a batch of right-hand sides
    ((), (6, 4, 3), True),  # one matrix, a batch of several columns each
    ((1, 1), (3, 4, 2), True),  # the matrix has more (unit) batch dimensions
    ((1,), (4, 2), True),  # unit batches only: one 2-D solve, the unit batch kept
    ((3,), (3, 4, 2), False),  # one matrix per right-hand side: the op as it is
    ((2, 1), (1, 5, 4, 1), False),  # both batched, broadcast against each other
]


@pytest.mark.parametrize("batch_a, b_shape, rewritten", SHAPES)
@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("unitriangular", [False, True])
def test_the_rewritten_solve_is_linalg_solve_triangular(
    batch_a, b_shape, rewritten, upper, unitriangular
):
    a = _triangular(4, batch_a, upper, seed=len(b_shape))
    b = torch.randn(*b_shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = torch.linalg.solve_triangular(a, b, upper=upper, unitriangular=unitriangular)
    got = inductor.solve_triangular(a, b, upper=upper, unitriangular=unitriangular)
    if not rewritten:
        assert got is NotImplemented
        return
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_a_right_side_solve_is_left_to_the_op():
    a, b = _triangular(3, (), False, 0), torch.randn(2, 3, dtype=torch.float64)
    assert inductor.solve_triangular(a, b, upper=False, left=False) is NotImplemented


def test_the_python_wrapper_builds_the_graph_when_the_cpp_one_cannot(monkeypatch):
    with warnings.catch_warnings():
        # TorchInductor's import warns about torch's own use of a deprecated jit API
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch._inductor.compile_fx as cfx

    calls: list[dict | None] = []

    def fake_compile_fx(gm, example_inputs, decompositions=None, config_patches=None):
        calls.append(config_patches)
        assert decompositions[torch.ops.aten.linalg_solve_triangular.default] is (
            inductor.solve_triangular
        )
        # TorchInductor's graph cache hashes the table: it must pickle, as a reference
        pickle.dumps(decompositions)
        if config_patches and config_patches.get("cpp_wrapper"):
            raise RuntimeError("CppCompileError: the C++ wrapper does not build")
        return gm.forward

    monkeypatch.setattr(cfx, "compile_fx", fake_compile_fx)
    gm = torch.fx.symbolic_trace(lambda x: x * 2.0)
    fn = inductor.backend(gm, [torch.ones(3)])
    assert calls == [{"cpp_wrapper": True}, None]
    assert torch.equal(fn(torch.ones(3)), torch.full((3,), 2.0))


@pytest.mark.slow  # about 10 s: a first compilation of the C++ wrapper
@pytest.mark.skipif(not _have_cxx(), reason="TorchInductor needs a C++ compiler on CPU")
def test_vmapped_chains_of_a_multivariate_normal_compile_to_the_eager_values():
    """The rewrite's real use: several chains' positions against one Cholesky factor."""
    model = correlated_2d()

    def batched(compile: bool) -> BatchedPotential:
        return BatchedPotential(Potential(model, None, {}, model.trace(None, {}), compile=compile))

    u = torch.randn(3, 2, generator=torch.Generator().manual_seed(4)) * 2
    eager, compiled = batched(False), batched(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e1, g1 = compiled.value_and_grad(u)
    assert not [w for w in caught if issubclass(w.category, CompileFallbackWarning)]
    assert compiled.compiled is not None and compiled.compiled.error is None
    e0, g0 = eager.value_and_grad(u)
    assert e1 == pytest.approx(e0, rel=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-6)


def test_only_the_missing_c_shim_notice_is_dropped_from_inductors_log():
    import logging

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("torch._inductor.ir", logging.WARNING, "ir.py", 1, msg, (), None)

    quiet = inductor._QuietShims()
    shim = "aten.foo.default is missing a c-shim implementation, using proxy executor as fallback"
    assert not quiet.filter(record(shim))
    assert quiet.filter(record("a real TorchInductor warning"))


def test_the_decomposition_table_pickles_as_a_reference_to_its_code():
    # a dict of TorchInductor's decompositions holds functions pickle cannot take, and
    # TorchInductor then bypasses its graph cache: every run compiled from scratch
    table = inductor.decomposition_table()
    blob = pickle.dumps(table)
    assert blob == pickle.dumps(inductor.decomposition_table())  # a stable cache key
    assert len(blob) < 300 and b"decomposition_table" in blob
    again = pickle.loads(blob)
    assert again[torch.ops.aten.linalg_solve_triangular.default] is inductor.solve_triangular
    assert len(again) == len(table) > 100


@pytest.mark.skipif(not _have_cxx(), reason="TorchInductor needs a C++ compiler on CPU")
def test_a_second_compilation_of_the_same_graph_comes_from_the_cache(tmp_path, monkeypatch):
    from torch._dynamo.utils import counters

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    a = torch.eye(3) * 2.0 + torch.ones(3, 3).tril(-1)

    def solve(b: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve_triangular(a, b, upper=False).square().sum(0)

    b = torch.randn(5, 3, 2)
    found = []
    for _ in range(2):
        torch._dynamo.reset()
        counters.clear()
        got = torch.compile(solve, backend=inductor.backend, fullgraph=True)(b)
        found.append(dict(counters["inductor"]))
        torch.testing.assert_close(got, solve(b))
    assert found[0].get("fxgraph_cache_bypass", 0) == 0, found
    assert found[0].get("fxgraph_cache_miss", 0) >= 1, found
    assert found[1].get("fxgraph_cache_hit", 0) >= 1, found


@pytest.mark.skipif(not _have_cxx(), reason="TorchInductor needs a C++ compiler on CPU")
def test_a_changed_backend_never_runs_a_graph_the_old_one_compiled(tmp_path, monkeypatch):
    """The next version of inductor.py (another digest, another rewrite of the solve)
    compiles the same function in the same cache directory: its graph is its own.
    TorchInductor's AOT autograd cache keys a graph without its decompositions, so
    with that cache on, the second compilation ran the first one's graph."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    a = torch.eye(3) * 2.0 + torch.ones(3, 3).tril(-1)

    def solve(b: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve_triangular(a, b, upper=False).square().sum(0)

    b = torch.randn(5, 3, 2)
    torch._dynamo.reset()
    first = torch.compile(solve, backend=inductor.backend, fullgraph=True)(b)
    torch.testing.assert_close(first, solve(b))
    rewrite = inductor.solve_triangular

    def doubled(*args, **kwargs):
        x = rewrite(*args, **kwargs)
        return x if x is NotImplemented else 2.0 * x

    monkeypatch.setattr(inductor, "_SOURCE_DIGEST", "the next version")
    monkeypatch.setattr(inductor, "solve_triangular", doubled)
    torch._dynamo.reset()
    second = torch.compile(solve, backend=inductor.backend, fullgraph=True)(b)
    torch.testing.assert_close(second, 4.0 * first)
