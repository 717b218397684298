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
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, Literal

RunKind = Literal["sample", "svi", "nuts"]
RUN_KINDS: Final[tuple[RunKind, ...]] = ("sample", "svi", "nuts")
OptionType = Literal["integer", "number", "string", "boolean"]
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
    compile: bool = False  # NUTS: the potential and its gradient through torch.compile
    # a fit to a text corpus (``data`` a UTF-8 text file; docs/dev/scaling.md)
    seq_len: int = 16
    batch_size: int = 128
    epochs: int = 1
    val_fraction: float = 0.1
    guide: str = "prior"
    clip_norm: float = 5.0
    eval_every: int | None = None
    checkpoint_every: int | None = None
    state: str | None = None
    resume: str | None = None

    @classmethod
    def parse(
        cls, raw: Mapping[str, Any] | None, kind: RunKind | None = None
    ) -> tuple[RunOptions, tuple[str, ...]]:
        """Validate a client's options: ``(options, ignored keys)``.

        A key that is not an option, or (with ``kind``) one that this kind of run does
        not read, is ignored and returned; so is, for an SVI run, a key that only a fit
        to a text corpus reads when ``data`` is not one, and a key for synthetic data
        (``steps``, ``batch``, ``length``) when it is. ``None`` means "unset" (the
        default); an unset ``lr`` of a corpus fit is :data:`CORPUS_LR`. A value of the
        wrong type or out of bounds raises :class:`OptionError` naming the key.
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
        if kind == "svi":
            corpus = is_text_corpus(values.get("data"))
            for key in [k for k in values if RULES[k].corpus not in (None, corpus)]:
                del values[key]
                ignored.append(key)
            if corpus and "lr" not in values:
                values["lr"] = CORPUS_LR
        return cls(**values), tuple(ignored)

    @property
    def corpus(self) -> bool:
        """Whether ``data`` names a text corpus (a fit to it is minibatch SVI)."""
        return is_text_corpus(self.data)


#: data files of tensors; any other ``data`` file is a UTF-8 text corpus
TENSOR_SUFFIXES: Final = (".pt", ".npz", ".json")
#: Adam's step for a corpus fit: at 0.005 the reference program's fit on the standard
#: library's sources reached 3.2 bits per byte in two epochs and then fell back to the
#: unigram baseline's 4.6 and beyond; at 0.002 it kept improving
#: (docs/examples/vanilla_rnn_lm.md)
CORPUS_LR: Final = 0.002


def is_text_corpus(path: str | None) -> bool:
    """Whether a ``data`` path names a text corpus (anything but a tensor file)."""
    return bool(path) and Path(str(path)).suffix.lower() not in TENSOR_SUFFIXES


def output_stem(program: str | Path, target: str | None) -> str:
    """The name a fit's default outputs start with: the program file's stem, and the
    target's name when one is given (``model.other``), so that fitting two exports of
    one file does not write both to the same state file (``model.other.state.pt``,
    ``model.other.loss.png``)."""
    stem = Path(program).stem
    return f"{stem}.{target}" if target else stem


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
    pattern: str | None = None  # a regular expression a string option matches in full
    maximum: int | float | None = None
    exclusive_maximum: bool = False  # the value must be below ``maximum``
    path: bool = False  # a file path (clients resolve it against the workspace folder)
    corpus: bool | None = None  # read only by a corpus fit (True), never by one (False)

    def check(self, key: str, value: Any) -> Any:
        """The value, validated (an integral float becomes an int), or OptionError."""
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise OptionError(key, value, "must be true or false")
            return value
        if self.type == "string":
            if not isinstance(value, str) or not value:
                raise OptionError(key, value, "must be a non-empty string")
            if self.choices is not None and value not in self.choices:
                raise OptionError(key, value, f"must be one of {', '.join(self.choices)}")
            if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
                raise OptionError(key, value, f"must be {self.description_of_pattern()}")
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
        if self.maximum is not None:
            if self.exclusive_maximum and not value < self.maximum:
                raise OptionError(key, value, f"must be below {self.maximum}")
            if not self.exclusive_maximum and value > self.maximum:
                raise OptionError(key, value, f"must be at most {self.maximum}")
        return float(value) if self.type == "number" else value

    def description_of_pattern(self) -> str:
        return DEVICE_WORDS if self.pattern == DEVICE_PATTERN else f"of the form {self.pattern}"


_A = {"integer": "an integer", "number": "a number"}
DEVICE_PATTERN: Final = "cpu|cuda|cuda:[0-9]+|mps|auto"
DEVICE_WORDS: Final = "one of cpu, cuda, mps, auto (or cuda:N)"


def _above(minimum: float) -> str:
    return "must be positive" if minimum == 0 else f"must be greater than {minimum}"


ALL: Final[tuple[RunKind, ...]] = RUN_KINDS
FITS: Final[tuple[RunKind, ...]] = ("svi", "nuts")
SVI: Final[tuple[RunKind, ...]] = ("svi",)

#: One rule per field of :class:`RunOptions`, in the same order.
RULES: Final[dict[str, Rule]] = {
    "target": Rule(
        "string", ALL, "Program or export to run (default: the first export).", setting=False
    ),
    "seed": Rule("integer", ALL, "Random seed.", minimum=0),
    "data": Rule(
        "string",
        ALL,
        "A .pt, .npz or .json file of tensors, or (Fit with SVI) a UTF-8 text corpus: "
        "any other file, fitted in minibatches of byte sequences (relative to the "
        "workspace folder). Default: synthetic data generated from the model.",
        path=True,
    ),
    "n": Rule("integer", ("sample",), "Number of draws (Sample).", minimum=1),
    "steps": Rule("integer", ("svi",), "SVI steps.", minimum=1, cli_default=300, corpus=False),
    "lr": Rule(
        "number",
        ("svi",),
        f"SVI learning rate (Adam; {CORPUS_LR} for a text corpus when unset).",
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
    "batch": Rule("integer", FITS, "Rows of synthetic data.", minimum=1, corpus=False),
    "length": Rule("integer", ALL, "Sequence length of synthetic data.", minimum=1, corpus=False),
    "chain_method": Rule(
        "string",
        ("nuts",),
        "How NUTS runs its chains: vectorized (one batch; the default for several "
        "chains), sequential, or parallel (worker processes).",
        choices=("vectorized", "sequential", "parallel"),
    ),
    "device": Rule(
        "string",
        FITS,
        "Torch device of the model and the fit: cpu, cuda (or cuda:N), mps, or auto "
        "(an accelerator when torch sees one).",
        pattern=DEVICE_PATTERN,
    ),
    "compile": Rule(
        "boolean",
        ("nuts",),
        "NUTS: run the potential and its gradient through torch.compile (the first "
        "transitions compile the tree's graphs, which takes tens of seconds to a minute; "
        "a model that cannot be compiled runs eagerly and the result says why). SVI has no compiled path.",
    ),
    "seq_len": Rule(
        "integer", SVI, "Text corpus: bytes per row (the model's input).", minimum=1, corpus=True
    ),
    "batch_size": Rule("integer", SVI, "Text corpus: rows per minibatch.", minimum=1, corpus=True),
    "epochs": Rule("integer", SVI, "Text corpus: passes over the rows.", minimum=1, corpus=True),
    "val_fraction": Rule(
        "number",
        SVI,
        "Text corpus: share of the rows held out and scored in bits per token.",
        minimum=0,
        maximum=1,
        exclusive_maximum=True,
        corpus=True,
    ),
    "guide": Rule(
        "string",
        SVI,
        "Text corpus: guide of the local sites, prior (drawn from the model) or "
        "amortized (an encoder).",
        choices=("prior", "amortized"),
        corpus=True,
    ),
    "clip_norm": Rule(
        "number",
        SVI,
        "Text corpus: clip the gradient norm per row at this value (0: no clipping).",
        minimum=0,
        corpus=True,
    ),
    "eval_every": Rule(
        "integer",
        SVI,
        "Text corpus: score the held-out rows every N steps (always at the end of an epoch).",
        minimum=1,
        corpus=True,
    ),
    "checkpoint_every": Rule(
        "integer",
        SVI,
        "Text corpus: write the checkpoint every N steps (it is always written at the "
        "end and when the fit is stopped).",
        minimum=1,
        corpus=True,
    ),
    "state": Rule(
        "string",
        SVI,
        "Text corpus: the checkpoint (state file) the fit writes (relative to the "
        "workspace folder). Default: <program>.state.pt next to the program "
        "(<program>.<target>.state.pt when a target is given).",
        path=True,
        corpus=True,
    ),
    "resume": Rule(
        "string",
        SVI,
        "Text corpus: a checkpoint to continue (same program, corpus and seq_len).",
        path=True,
        corpus=True,
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
        if rule.maximum is not None:
            entry["exclusiveMaximum" if rule.exclusive_maximum else "maximum"] = rule.maximum
        if rule.choices is not None:
            entry["enum"] = list(rule.choices)
        if rule.pattern is not None:
            entry["pattern"] = f"^({rule.pattern})$"
        if rule.path:
            entry["path"] = True
        if rule.corpus is not None:
            entry["corpus"] = rule.corpus
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
    NUTS; ``diverged`` when an SVI loss became non-finite; ``corpus`` (the figures:
    tokens per second, held-out and unigram bits per token, steps, rows) and
    ``checkpoint`` (the path of the checkpoint written) for a fit to a text corpus;
    ``compiled`` for NUTS (whether the potential ran through ``torch.compile``: false
    when it was not asked for or fell back) and ``compile_fallback`` (the
    :class:`~quivers.inference.CompileFallbackWarning` texts) when it fell back. ``draws``, ``state`` and
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
    corpus: dict[str, Any] | None = None
    checkpoint: str | None = None
    compiled: bool | None = None
    compile_fallback: list[str] | None = None
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
