"""The run contract: the options a run takes and the result it gives back.

One definition for every party: ``qvr sample``/``qvr fit`` (``quivers.commands``), the
language server's run commands and its worker process (``server/quivers_lsp``), and,
through the exported JSON (``run-options.json`` next to this file, regenerated with
``python -m quivers.jobs.protocol``), the VS Code extension, whose unit tests compare
``src/pure/runOptions.ts`` and the ``qvr.run.options`` schema against it.
``docs/dev/editor-protocol.md`` describes the same contract in prose.

- :class:`RunOptions` holds every option with its default; :meth:`RunOptions.parse`
  validates a client's raw mapping, naming the key of a bad value
  (:class:`OptionError`) and returning the keys it ignored (unknown, or not read by
  the run kind).
- :data:`RULES` says, per option, its JSON type and bounds, which runs read it, and
  where the command line deliberately uses another default (``cli_default``).
- :class:`RunResult` is what every run returns, built only here
  (:meth:`RunResult.failure` for a run that could not finish); :meth:`RunResult.to_wire`
  is its JSON form, with non-finite numbers spelled ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"`` because JSON has no such numbers (vscode-jsonrpc rejects a bare
  ``NaN``).

This module imports neither torch nor the front end: the server process uses it.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, Literal

RunKind = Literal["sample", "svi", "nuts"]
RUN_KINDS: Final[tuple[RunKind, ...]] = ("sample", "svi", "nuts")
OptionType = Literal["integer", "number", "string"]
CONTRACT_FILE: Final = Path(__file__).with_name("run-options.json")


@dataclass(frozen=True)
class RunOptions:
    """Every run option, at the editor's (and the server's) defaults.

    ``qvr fit`` starts from other defaults for a few keys (:data:`RULES`,
    ``cli_default``): the editor's runs are previews on the buffer being edited and
    should finish in seconds; ``qvr fit`` is the batch fit whose defaults reproduce the
    reference page (300 Adam steps at lr 0.005; two NUTS chains so that r_hat means
    something).
    """

    target: str | None = None
    seed: int = 0
    data: str | None = None
    n: int = 4
    steps: int = 200
    lr: float = 0.05
    warmup: int = 50
    samples: int = 50
    chains: int = 1
    step_size: float = 0.01
    max_tree_depth: int = 5
    batch: int = 4
    length: int = 8
    chain_method: str | None = None  # NUTS: vectorized when chains > 1, else sequential
    device: str = "cpu"

    @classmethod
    def parse(
        cls, raw: Mapping[str, Any] | None, kind: RunKind | None = None
    ) -> tuple[RunOptions, tuple[str, ...]]:
        """Validate a client's options: ``(options, ignored keys)``.

        A key that is not an option, or (with ``kind``) one that this kind of run does
        not read, is ignored and returned; ``None`` means "unset" (the default). A
        value of the wrong type or out of bounds raises :class:`OptionError` naming
        the key.
        """
        if raw is None:
            return cls(), ()
        if not isinstance(raw, Mapping):
            raise OptionError("options", raw, "must be an object of run options")
        values: dict[str, Any] = {}
        ignored: list[str] = []
        for key, value in raw.items():
            rule = RULES.get(key) if isinstance(key, str) else None
            if rule is None or (kind is not None and kind not in rule.kinds):
                ignored.append(str(key))
            elif value is not None:
                values[key] = rule.check(key, value)
        return cls(**values), tuple(ignored)


class OptionError(ValueError):
    """A run option with a bad value; ``key`` names it, ``reason`` says what it must be."""

    def __init__(self, key: str, value: Any, reason: str) -> None:
        self.key, self.value, self.reason = key, value, reason
        super().__init__(f"run option '{key}' {reason}, got {value!r}")


@dataclass(frozen=True)
class Rule:
    """What one option accepts and which runs read it."""

    type: OptionType
    kinds: tuple[RunKind, ...]
    description: str
    minimum: int | float | None = None
    exclusive_minimum: bool = False  # the value must exceed ``minimum``
    setting: bool = True  # a key of the editor's ``qvr.run.options`` setting
    cli_default: int | float | None = None  # where ``qvr`` deliberately starts elsewhere
    choices: tuple[str, ...] | None = None  # the values a string option accepts

    def check(self, key: str, value: Any) -> Any:
        """The value, validated (an integral float becomes an int), or OptionError."""
        if self.type == "string":
            if not isinstance(value, str) or not value:
                raise OptionError(key, value, "must be a non-empty string")
            if (
                self.choices is not None
                and value not in self.choices
                and not (key == "device" and value.startswith("cuda:") and value[5:].isdigit())
            ):
                raise OptionError(key, value, f"must be one of {', '.join(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(key, value, f"must be {_A[self.type]}")
        if not math.isfinite(value):
            raise OptionError(key, value, "must be a finite number")
        if self.type == "integer":
            if isinstance(value, float) and not value.is_integer():
                raise OptionError(key, value, "must be an integer")
            value = int(value)
        if self.minimum is not None:
            if self.exclusive_minimum and not value > self.minimum:
                raise OptionError(key, value, _above(self.minimum))
            if not self.exclusive_minimum and value < self.minimum:
                raise OptionError(key, value, f"must be at least {self.minimum}")
        return float(value) if self.type == "number" else value


_A = {"integer": "an integer", "number": "a number"}


def _above(minimum: float) -> str:
    return "must be positive" if minimum == 0 else f"must be greater than {minimum}"


ALL: Final[tuple[RunKind, ...]] = RUN_KINDS
FITS: Final[tuple[RunKind, ...]] = ("svi", "nuts")

#: One rule per field of :class:`RunOptions`, in the same order.
RULES: Final[dict[str, Rule]] = {
    "target": Rule(
        "string", ALL, "Program or export to run (default: the first export).", setting=False
    ),
    "seed": Rule("integer", ALL, "Random seed.", minimum=0),
    "data": Rule(
        "string",
        ALL,
        "A .pt, .npz or .json file of tensors (relative to the "
        "workspace folder). Default: synthetic data generated from the model.",
    ),
    "n": Rule("integer", ("sample",), "Number of draws (Sample).", minimum=1),
    "steps": Rule("integer", ("svi",), "SVI steps.", minimum=1, cli_default=300),
    "lr": Rule(
        "number",
        ("svi",),
        "SVI learning rate (Adam).",
        minimum=0,
        exclusive_minimum=True,
        cli_default=0.005,
    ),
    "warmup": Rule(
        "integer",
        ("nuts",),
        "NUTS warmup iterations (0: no adaptation).",
        minimum=0,
        cli_default=100,
    ),
    "samples": Rule("integer", ("nuts",), "NUTS samples per chain.", minimum=1, cli_default=100),
    "chains": Rule("integer", ("nuts",), "NUTS chains.", minimum=1, cli_default=2),
    "step_size": Rule(
        "number",
        ("nuts",),
        "NUTS initial step size (adapted during warmup).",
        minimum=0,
        exclusive_minimum=True,
    ),
    "max_tree_depth": Rule(
        "integer",
        ("nuts",),
        "NUTS maximum tree depth (at most 2^depth leapfrog steps per draw).",
        minimum=1,
    ),
    "batch": Rule("integer", FITS, "Rows of synthetic data.", minimum=1),
    "length": Rule("integer", ALL, "Sequence length of synthetic data.", minimum=1),
    "chain_method": Rule(
        "string",
        ("nuts",),
        "How NUTS runs its chains: vectorized (one batch; the default for several "
        "chains), sequential, or parallel (worker processes).",
        setting=False,
        choices=("vectorized", "sequential", "parallel"),
    ),
    "device": Rule(
        "string",
        FITS,
        "Torch device of the model and the fit: cpu, cuda (or cuda:N), mps, or auto "
        "(an accelerator when torch sees one).",
        setting=False,
        choices=("cpu", "cuda", "mps", "auto"),
    ),
}

_DEFAULTS: Final[dict[str, Any]] = {f.name: f.default for f in fields(RunOptions)}


def cli_default(key: str) -> Any:
    """The default ``qvr sample``/``qvr fit`` use for ``key``."""
    rule = RULES[key]
    return _DEFAULTS[key] if rule.cli_default is None else rule.cli_default


def keys_of(kind: RunKind, settings_only: bool = False) -> tuple[str, ...]:
    """The options a run of ``kind`` reads, in :class:`RunOptions` order."""
    return tuple(
        k for k, r in RULES.items() if kind in r.kinds and (r.setting or not settings_only)
    )


def contract() -> dict[str, Any]:
    """The options as JSON data: per kind the keys it reads, per key its rule and
    defaults (what ``run-options.json`` holds)."""
    options: dict[str, Any] = {}
    for key, rule in RULES.items():
        entry: dict[str, Any] = {
            "type": rule.type,
            "default": _DEFAULTS[key],
            "cliDefault": cli_default(key),
            "kinds": list(rule.kinds),
            "setting": rule.setting,
            "description": rule.description,
        }
        if rule.minimum is not None:
            entry["exclusiveMinimum" if rule.exclusive_minimum else "minimum"] = rule.minimum
        if rule.choices is not None:
            entry["enum"] = list(rule.choices)
        options[key] = entry
    return {"kinds": {kind: list(keys_of(kind)) for kind in RUN_KINDS}, "options": options}


def contract_json() -> str:
    return json.dumps(contract(), indent=2) + "\n"


# ----------------------------------------------------------------------- results


@dataclass(frozen=True)
class RunResult:
    """What a run gives back (the JSON form is in ``docs/dev/editor-protocol.md``).

    ``samples`` for every kind; ``returned``, ``log_density`` and ``observed`` for
    sampling; ``losses`` for SVI; ``posterior`` for SVI and NUTS; ``diagnostics`` for
    NUTS; ``diverged`` when an SVI loss became non-finite. ``draws``, ``state`` and
    ``mcmc`` hold tensors and objects for in-process callers (the CLI writes them to
    files) and never go on the wire.
    """

    kind: RunKind | None
    target: str | None = None
    ok: bool = True
    cancelled: bool = False
    error: str | None = None
    elapsed: float | None = None
    data: str | None = None
    samples: dict[str, Any] | None = None
    returned: dict[str, Any] | None = None
    log_density: dict[str, Any] | None = None
    observed: list[str] | None = None
    losses: list[float] | None = None
    posterior: list[dict[str, Any]] | None = None
    diagnostics: dict[str, Any] | None = None
    diverged: str | None = None
    ignored_options: tuple[str, ...] = ()
    # in-process only
    draws: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    mcmc: Any = None

    @classmethod
    def failure(
        cls,
        kind: RunKind | None,
        error: str,
        *,
        cancelled: bool = False,
        target: str | None = None,
        ignored_options: tuple[str, ...] = (),
    ) -> RunResult:
        """A run that failed or never started: ``ok`` false, ``error`` says why."""
        return cls(
            kind,
            target,
            ok=False,
            cancelled=cancelled,
            error=error,
            ignored_options=ignored_options,
        )

    def to_wire(self) -> dict[str, Any]:
        """The JSON object clients get: the fields that are set, nothing in-process,
        every number finite or spelled as a string."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _IN_PROCESS:
                continue
            value = getattr(self, f.name)
            if value is None and f.name not in _ALWAYS:
                continue
            out[f.name] = _json_value(value, f.name)
        return out


def posterior_row(
    name: str,
    shape: Sequence[int],
    mean: float,
    sd: float,
    r_hat: float | None = None,
    ess: float | None = None,
) -> dict[str, Any]:
    """One row of ``RunResult.posterior``: a site or weight block's mean and sd over its
    entries, its worst r_hat and lowest ess (MCMC only), and its shape."""
    return {"name": name, "mean": mean, "sd": sd, "r_hat": r_hat, "ess": ess, "shape": list(shape)}


_IN_PROCESS: Final = frozenset({"draws", "state", "mcmc"})
_ALWAYS: Final = frozenset({"kind", "target", "ok", "cancelled", "error", "elapsed"})


def _json_value(value: Any, where: str) -> Any:
    """``value`` as JSON data; non-finite floats become ``"NaN"``/``"Infinity"``/
    ``"-Infinity"`` (what JavaScript's ``Number()`` reads back)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"run result field {where}: {type(value).__name__} is not JSON data")


if __name__ == "__main__":  # python -m quivers.jobs.protocol > quivers/jobs/run-options.json
    sys.stdout.write(contract_json())
