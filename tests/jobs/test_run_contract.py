"""The run contract (quivers/jobs/protocol.py): option parsing and validation, the
exported key lists, and the wire form of a result."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from quivers.jobs.protocol import (
    CONTRACT_FILE,
    RULES,
    RUN_KINDS,
    OptionError,
    RunOptions,
    RunResult,
    cli_default,
    contract,
    contract_json,
    keys_of,
)


def test_no_options_are_the_defaults() -> None:
    assert RunOptions.parse(None) == (RunOptions(), ())
    assert RunOptions.parse({}, "svi") == (RunOptions(), ())
    opts, ignored = RunOptions.parse({"steps": None, "seed": 3}, "svi")  # None: unset
    assert opts == RunOptions(seed=3) and ignored == ()


def test_unknown_keys_and_keys_of_other_runs_are_reported() -> None:
    raw = {"steps": 7, "colour": "red", "warmup": 3, "n": 2}
    opts, ignored = RunOptions.parse(raw, "svi")
    assert opts.steps == 7 and opts.warmup == RunOptions().warmup and opts.n == RunOptions().n
    assert ignored == ("colour", "warmup", "n")
    opts, ignored = RunOptions.parse(raw)  # no kind: only unknown keys are ignored
    assert (opts.steps, opts.warmup, opts.n) == (7, 3, 2) and ignored == ("colour",)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("steps", "10", "must be an integer"),
        ("steps", 2.5, "must be an integer"),
        ("steps", 0, "must be at least 1"),
        ("steps", True, "must be an integer"),
        ("seed", -1, "must be at least 0"),
        ("lr", 0, "must be positive"),
        ("lr", "0.1", "must be a number"),
        ("lr", math.nan, "must be a finite number"),
        ("step_size", math.inf, "must be a finite number"),
        ("max_tree_depth", 0, "must be at least 1"),
        ("warmup", -1, "must be at least 0"),
        ("data", 3, "must be a non-empty string"),
        ("data", "", "must be a non-empty string"),
        ("target", ["p"], "must be a non-empty string"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_key(key: str, value: object, reason: str) -> None:
    with pytest.raises(OptionError) as caught:
        RunOptions.parse({key: value})
    assert caught.value.key == key and caught.value.reason == reason
    assert str(caught.value) == f"run option '{key}' {reason}, got {value!r}"


def test_values_are_normalised_to_their_types() -> None:
    opts, _ = RunOptions.parse({"steps": 10.0, "lr": 1, "warmup": 0, "data": "d.pt"})
    assert opts.steps == 10 and type(opts.steps) is int
    assert opts.lr == 1.0 and type(opts.lr) is float
    assert opts.warmup == 0 and opts.data == "d.pt"


def test_options_must_be_an_object() -> None:
    with pytest.raises(OptionError, match="run option 'options' must be an object"):
        RunOptions.parse([1, 2])  # type: ignore[arg-type]


def test_every_option_has_one_rule_and_every_run_reads_its_keys() -> None:
    assert list(RULES) == [f.name for f in dataclasses.fields(RunOptions)]
    for kind in RUN_KINDS:
        assert {"target", "seed", "data", "length"} <= set(keys_of(kind))
    assert keys_of("sample", settings_only=True) == ("seed", "data", "n", "length")
    # the command line starts longer fits; everything else is shared
    differs = {k for k in RULES if cli_default(k) != getattr(RunOptions(), k)}
    assert differs == {"steps", "lr", "warmup", "samples", "chains"}


def test_the_exported_contract_is_current() -> None:
    """run-options.json is what the extension's tests read: regenerate it with
    `python -m quivers.jobs.protocol > quivers/jobs/run-options.json`."""
    assert CONTRACT_FILE.read_text(encoding="utf-8") == contract_json()
    data = contract()
    assert data["kinds"]["nuts"] == list(keys_of("nuts"))
    assert data["options"]["lr"]["exclusiveMinimum"] == 0
    assert data["options"]["steps"] == {
        "type": "integer",
        "default": 200,
        "cliDefault": 300,
        "kinds": ["svi"],
        "setting": True,
        "description": "SVI steps.",
        "minimum": 1,
        "corpus": False,
    }


def test_a_failure_result_on_the_wire() -> None:
    wire = RunResult.failure("svi", "no document given").to_wire()
    assert wire == {
        "kind": "svi",
        "target": None,
        "ok": False,
        "cancelled": False,
        "error": "no document given",
        "elapsed": None,
        "ignored_options": [],
    }


def test_the_wire_form_is_strict_json_without_in_process_fields() -> None:
    result = RunResult(
        "sample",
        "p",
        elapsed=0.5,
        samples={"h": {"mean": math.nan, "min": -math.inf, "max": math.inf, "shape": (2, 3)}},
        posterior=[{"name": "w", "r_hat": math.nan, "ess": 12.5}],
        losses=[1.0, math.inf],
        ignored_options=("colour",),
        draws={"x": object()},
        state={"w": object()},
        mcmc=object(),
    )
    wire = result.to_wire()
    text = json.dumps(wire, allow_nan=False)  # raises on a bare NaN or Infinity
    assert not {"draws", "state", "mcmc"} & set(wire)
    assert wire["samples"]["h"] == {
        "mean": "NaN",
        "min": "-Infinity",
        "max": "Infinity",
        "shape": [2, 3],
    }
    assert wire["posterior"][0]["r_hat"] == "NaN" and wire["posterior"][0]["ess"] == 12.5
    assert wire["losses"] == [1.0, "Infinity"] and wire["ignored_options"] == ["colour"]
    assert json.loads(text) == wire
    assert "returned" not in wire and "diagnostics" not in wire  # unset fields stay off


def test_a_value_that_is_not_json_names_the_field() -> None:
    with pytest.raises(TypeError, match=r"samples\.h: object is not JSON data"):
        RunResult("sample", samples={"h": object()}).to_wire()


def test_the_cli_flags_are_the_contract_s_options_at_its_cli_defaults() -> None:
    from quivers.cli import build_parser
    from quivers.commands import run_options

    parser = build_parser()
    sample = parser.parse_args(["sample", "f.qvr"])
    assert {k: getattr(sample, k) for k in keys_of("sample")} == {
        k: cli_default(k) for k in keys_of("sample")
    }
    assert run_options(sample, "sample") == RunOptions(n=cli_default("n"))
    fit = parser.parse_args(["fit", "f.qvr"])
    for kind in ("svi", "nuts"):
        assert {k: getattr(fit, k) for k in keys_of(kind)} == {
            k: cli_default(k) for k in keys_of(kind)
        }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "f.qvr", "--steps", "0"], "--steps must be at least 1"),
        (["fit", "f.qvr", "--lr", "0"], "--lr must be positive"),
        (
            ["fit", "f.qvr", "--method", "nuts", "--max-tree-depth", "0"],
            "--max-tree-depth must be at least 1",
        ),
        (["fit", "f.qvr", "--method", "nuts", "--step-size", "-1"], "--step-size must be positive"),
        (["sample", "f.qvr", "--n", "0"], "--n must be at least 1"),
    ],
)
def test_a_bad_flag_is_an_error_naming_the_flag(argv: list[str], message: str) -> None:
    from quivers.cli import build_parser
    from quivers.commands import CliError, run_options

    args = build_parser().parse_args(argv)
    with pytest.raises(CliError) as caught:
        run_options(args, getattr(args, "method", "sample"))
    assert str(caught.value) == message


def test_an_svi_run_reads_the_corpus_keys_only_with_a_text_corpus() -> None:
    raw = {"data": "corpus.txt", "seq_len": 8, "epochs": 2, "steps": 5, "batch": 3, "length": 4}
    opts, ignored = RunOptions.parse(raw, "svi")
    assert opts.corpus and (opts.seq_len, opts.epochs) == (8, 2)
    assert ignored == ("steps", "batch", "length")  # synthetic-data keys
    assert (opts.steps, opts.batch, opts.length) == (200, 4, 8)
    assert opts.lr == 0.002  # a corpus fit's own Adam step when lr is unset
    assert RunOptions.parse({**raw, "lr": 0.01}, "svi")[0].lr == 0.01
    tensors, ignored = RunOptions.parse({"data": "d.pt", "seq_len": 8, "steps": 5}, "svi")
    assert not tensors.corpus and tensors.steps == 5 and tensors.seq_len == 16
    assert ignored == ("seq_len",) and tensors.lr == 0.05
    assert RunOptions.parse({"seq_len": 8}, "nuts")[1] == ("seq_len",)  # not a NUTS key
    assert RunOptions.parse({"data": "d.NPZ"}, "svi")[0].corpus is False


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("val_fraction", 1, "must be below 1"),
        ("val_fraction", -0.1, "must be at least 0"),
        ("guide", "mean-field", "must be one of prior, amortized"),
        ("chain_method", "threads", "must be one of vectorized, sequential, parallel"),
        ("device", "tpu", "must be one of cpu, cuda, mps, auto (or cuda:N)"),
        ("device", "cuda:", "must be one of cpu, cuda, mps, auto (or cuda:N)"),
        ("epochs", 0, "must be at least 1"),
        ("checkpoint_every", 0, "must be at least 1"),
        ("clip_norm", -1, "must be at least 0"),
        ("resume", 3, "must be a non-empty string"),
    ],
)
def test_the_corpus_device_and_chain_keys_are_validated(
    key: str, value: object, reason: str
) -> None:
    with pytest.raises(OptionError) as caught:
        RunOptions.parse({key: value})
    assert caught.value.key == key and caught.value.reason == reason


def test_compile_is_a_boolean_nuts_option_and_the_fit_s_flag() -> None:
    assert RunOptions().compile is False and cli_default("compile") is False
    assert RunOptions.parse({"compile": True}, "nuts") == (RunOptions(compile=True), ())
    # SVI has no compiled path: the key is not one of its options
    assert RunOptions.parse({"compile": True}, "svi") == (RunOptions(), ("compile",))
    for value in (1, 0, "true", 1.0):
        with pytest.raises(OptionError) as caught:
            RunOptions.parse({"compile": value}, "nuts")
        assert caught.value.key == "compile" and caught.value.reason == "must be true or false"
    entry = contract()["options"]["compile"]
    assert entry["type"] == "boolean" and entry["default"] is False and entry["setting"]
    assert entry["kinds"] == ["nuts"]

    from quivers.cli import build_parser
    from quivers.commands import run_options

    parser = build_parser()
    given = parser.parse_args(["fit", "f.qvr", "--method", "nuts", "--compile"])
    assert given.compile is True and given.compile_given
    assert run_options(given, "nuts").compile is True
    plain = parser.parse_args(["fit", "f.qvr", "--method", "nuts"])
    assert plain.compile is False and not getattr(plain, "compile_given", False)


def test_device_and_chain_method_accept_their_values() -> None:
    for device in ("cpu", "cuda", "cuda:1", "mps", "auto"):
        assert RunOptions.parse({"device": device}, "svi")[0].device == device
    assert RunOptions.parse({"chain_method": "parallel"}, "nuts")[0].chain_method == "parallel"
    options = contract()["options"]
    assert options["device"]["pattern"] == "^(cpu|cuda|cuda:[0-9]+|mps|auto)$"
    assert options["chain_method"]["enum"] == ["vectorized", "sequential", "parallel"]
    assert options["val_fraction"]["exclusiveMaximum"] == 1
    assert {k for k, o in options.items() if o.get("path")} == {"data", "state", "resume"}
    assert {"device", "chain_method", "seq_len", "resume"} <= set(
        keys_of("svi", settings_only=True) + keys_of("nuts", settings_only=True)
    )
