"""The runs of quivers/jobs/run.py called in process: sample cancellation, the
summary of a NUTS run (the program's sites, not the lifted weights) and the client
entry point that parses options."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from quivers.jobs.protocol import RunOptions
from quivers.jobs.run import execute, run_nuts, run_sample, run_svi

# One learnable kernel (its weights are lifted by NUTS) and one continuous latent.
LEARNABLE = """
object X : Real 1
object Y : Real 1
morphism f : X -> Y [role=kernel] ~ Normal
program p : X -> Y
    sample h <- f
    observe y : Y <- Normal(h, 1.0)
    return y
export p
"""


def stop_after(polls: int) -> tuple[Callable[[], bool], list[int]]:
    """A should_stop that answers True from its ``polls + 1``-th call on."""
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > polls

    return should_stop, calls


def test_a_sample_run_stopped_before_it_starts_draws_nothing() -> None:
    should_stop, calls = stop_after(0)
    result = run_sample(LEARNABLE, "p.qvr", RunOptions(n=3), should_stop=should_stop)
    assert result.ok and result.cancelled and calls == [1]
    assert result.samples is None and result.draws is None
    assert json.loads(json.dumps(result.to_wire(), allow_nan=False))["cancelled"] is True


def test_a_sample_run_stopped_after_its_inputs_reports_them_and_draws_nothing() -> None:
    should_stop, calls = stop_after(1)
    messages: list[str] = []
    result = run_sample(
        LEARNABLE,
        "p.qvr",
        RunOptions(n=3),
        progress=lambda _, m: messages.append(m),
        should_stop=should_stop,
    )
    assert result.cancelled and result.target == "p" and len(calls) == 2
    assert result.data == "x (3, 1) float32" and result.samples is None
    assert messages == []  # stopped before the draw


def test_a_sample_run_that_is_not_stopped_polls_and_finishes() -> None:
    should_stop, calls = stop_after(10)
    result = run_sample(LEARNABLE, "p.qvr", RunOptions(n=3), should_stop=should_stop)
    assert result.ok and not result.cancelled and len(calls) == 2
    assert set(result.samples or {}) == {"h", "y"} and result.observed == ["y"]


def test_nuts_summarises_the_program_sites_not_the_lifted_weights() -> None:
    opts = RunOptions(warmup=3, samples=3, batch=3, seed=1)
    result = run_nuts(LEARNABLE, "p.qvr", opts)
    assert result.ok, result.error
    assert set(result.samples or {}) == {"h"}
    rows = {row["name"] for row in result.posterior or []}
    assert "h" in rows and any(name.startswith("_step_h.") for name in rows)  # weights kept


def test_a_cancelled_svi_run_keeps_its_losses() -> None:
    should_stop, _ = stop_after(2)
    result = run_svi(LEARNABLE, "p.qvr", RunOptions(steps=100, batch=3), should_stop=should_stop)
    assert result.cancelled and result.ok and len(result.losses or []) == 2


def test_execute_reports_ignored_keys_and_rejects_bad_values() -> None:
    result = execute("sample", LEARNABLE, "p.qvr", {"n": 2, "colour": 1, "steps": 3})
    assert result.ok and result.ignored_options == ("colour", "steps")
    assert result.to_wire()["ignored_options"] == ["colour", "steps"]
    bad = execute("svi", LEARNABLE, "p.qvr", {"steps": "10"})
    assert not bad.ok and bad.kind == "svi"
    assert bad.error == "run option 'steps' must be an integer, got '10'"


@pytest.mark.parametrize("kind", ["sample", "svi", "nuts"])
def test_every_kind_puts_strict_json_on_the_wire(kind: str) -> None:
    options = {"n": 2, "steps": 2, "warmup": 2, "samples": 2, "batch": 2}
    result = execute(kind, LEARNABLE, "p.qvr", options)  # type: ignore[arg-type]
    assert result.ok, result.error
    wire = json.loads(json.dumps(result.to_wire(), allow_nan=False))
    assert wire["kind"] == kind and wire["ok"] is True and "state" not in wire
