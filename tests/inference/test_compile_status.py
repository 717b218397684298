"""Whether a ``compile=True`` run really ran compiled: the recorder of
``CompileFallbackWarning`` (what ``qvr fit`` and the editor's runs report) and the
parallel chains' workers, whose fallbacks reach the parent."""

from __future__ import annotations

import warnings

import pytest
from inference_models import NormalNormal, normal_normal_data

from quivers.inference import MCMC, CompileFallbackWarning, NUTSKernel
from quivers.inference.compile_status import recording_compile_fallbacks


def test_the_recorder_keeps_fallbacks_and_passes_other_warnings_on() -> None:
    with (
        pytest.warns(UserWarning, match="unrelated") as shown,
        recording_compile_fallbacks() as fallbacks,
    ):
        warnings.warn("cannot compile: A", CompileFallbackWarning, stacklevel=1)
        warnings.warn("unrelated", UserWarning, stacklevel=1)
        warnings.warn("cannot compile: B", CompileFallbackWarning, stacklevel=1)
        warnings.warn("cannot compile: A", CompileFallbackWarning, stacklevel=1)
    assert fallbacks == ["cannot compile: A", "cannot compile: B"]  # in order, each once
    assert [str(w.message) for w in shown] == ["unrelated"]  # the fallbacks were not shown
    # outside the block the warning is shown (here: raised, as the suite's filter says)
    with pytest.raises(CompileFallbackWarning):
        warnings.warn("cannot compile: C", CompileFallbackWarning, stacklevel=1)


def test_a_filter_that_ignores_fallbacks_does_not_hide_them_from_the_record() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompileFallbackWarning)
        with recording_compile_fallbacks() as fallbacks:
            warnings.warn("cannot compile", CompileFallbackWarning, stacklevel=1)
    assert fallbacks == ["cannot compile"]


class BranchingNormal(NormalNormal):
    """NormalNormal with a Python branch on mu's value in its log density: dynamo
    cannot capture it in one graph, so compile=True falls back (picklable, for the
    parallel chains' worker processes)."""

    def log_joint(self, x, values, **run):
        lp = super().log_joint(x, values, **run)
        if float(values["mu"].detach().sum()) > 1e6:  # never true; a graph break
            return lp - 1.0
        return lp


@pytest.mark.slow  # a worker process imports torch and traces the model (~8 s)
def test_parallel_chains_report_their_workers_fallbacks_in_the_parent() -> None:
    """A worker process's warning would go to its stderr; the parent warns instead."""
    x, obs = normal_normal_data()
    mcmc = MCMC(
        NUTSKernel(), num_warmup=3, num_samples=3, num_chains=1, seed=1,
        chain_method="parallel", compile=True,
    )  # fmt: skip
    with recording_compile_fallbacks() as fallbacks:
        result = mcmc.run(BranchingNormal(), x, obs)
    assert result.complete and result.samples["mu"].shape == (1, 3)
    (reason,) = fallbacks
    assert "could not compile" in reason and "running it eagerly" in reason
