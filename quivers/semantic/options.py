"""Checking step options, ``sample v <- Family(...) [over=K, iid_over=L, via=idx]``.

The options and what each reads are the table ``quivers.core.vocabulary.STEP_OPTIONS``;
this module checks a step's option list against it once and hands back the values,
resolved (``StepOptions``). What an option *means* is the step's to decide
(``quivers.semantic.programs`` for draws; a ``marginalize`` block reads ``over`` and
``reduction``). An unknown option is one E0303 with a did-you-mean, an option the
step does not read E0304, a value of the wrong kind E0305 naming what was given and
what is wanted, a repeated one E0312.
"""

from __future__ import annotations

from dataclasses import dataclass

from quivers.core.vocabulary import MARGINAL_REDUCTIONS, STEP_OPTIONS
from quivers.semantic import types as T
from quivers.semantic.context import Ctx
from quivers.semantic.decls import did_you_mean, option_text
from quivers.semantic.model import SymbolInfo
from quivers.syntax import ast


@dataclass(frozen=True, slots=True)
class SetOption:
    """A finite set named by an option value, and where it was written."""

    type: T.FinSet
    name: ast.Name


@dataclass(frozen=True, slots=True)
class StepOptions:
    """A step's options, checked: only the well-formed ones are present.

    ``over`` and ``via`` may hold several entries (``[over=[A, B]]``); a step that
    takes one reports a list itself. ``spans`` maps each option given to its span.
    """

    over: tuple[SetOption, ...] | None = None
    iid_over: tuple[SetOption, ...] | None = None
    via: tuple[ast.Name, ...] | None = None
    reduction: str | None = None
    spans: tuple[tuple[str, ast.Span], ...] = ()
    # some option could not be read (reported): a step leaves out the diagnostics that
    # the option, had it been right, would have prevented
    broken: bool = False

    def given(self, key: str) -> bool:
        return any(k == key for k, _ in self.spans)

    def span(self, key: str) -> ast.Span | None:
        return next((s for k, s in self.spans if k == key), None)


NO_OPTIONS = StepOptions()


def check_step_options(ctx: Ctx, options: list[ast.Option], step: str) -> StepOptions:
    """Check ``options`` of a step of kind ``step`` (``sample``, ``observe``,
    ``marginalize``) against ``STEP_OPTIONS``; report every problem once."""
    if not options:
        return NO_OPTIONS
    values: dict[str, object] = {}
    spans: list[tuple[str, ast.Span]] = []
    broken = False
    for option in options:
        key = option.name.text
        if option.name.missing:
            broken = True
            continue
        spec = STEP_OPTIONS.get(key)
        if spec is None:
            readable = [n for n, s in STEP_OPTIONS.items() if step in s.steps]
            guess = did_you_mean(key, readable) or did_you_mean(key, STEP_OPTIONS)
            ctx.error(
                "E0303",
                f"unknown step option '{key}'",
                option.name.span,
                suggestion=f"did you mean '{guess}'?"
                if guess
                else f"a {step} step takes {_listing(readable)}",
                replacement=guess,
            )
            broken = True
            continue
        if any(k == key for k, _ in spans):
            ctx.error("E0312", f"option '{key}' is given twice", option.name.span)
            continue
        spans.append((key, option.span))
        if step not in spec.steps:
            readers = " or ".join(sorted(spec.steps))
            ctx.error(
                "E0304",
                f"option '{key}' is not read by a {step} step",
                option.name.span,
                suggestion=f"'{key}' is read by {readers}",
            )
            continue
        value = _value(ctx, key, spec.value, option.value)
        if value is not None:
            values[key] = value
        else:
            broken = True
    return StepOptions(
        over=values.get("over"),  # type: ignore[arg-type]
        iid_over=values.get("iid_over"),  # type: ignore[arg-type]
        via=values.get("via"),  # type: ignore[arg-type]
        reduction=values.get("reduction"),  # type: ignore[arg-type]
        spans=tuple(spans),
        broken=broken,
    )


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "no options"


def _names(value: ast.OptionValue) -> list[ast.Name] | None:
    if isinstance(value, ast.NameOpt):
        return [value.name]
    if isinstance(value, ast.ListOpt):
        return list(value.names)
    return None


def _value(ctx: Ctx, key: str, kind: str, value: ast.OptionValue) -> object | None:
    if kind == "reduction":
        return _reduction(ctx, value)
    names = _names(value)
    if names is None:
        wanted = "a finite set (an object)" if kind == "finset" else "integer ids"
        ctx.error(
            "E0305",
            f"{key}={option_text(value)}: {key} takes {wanted}, not {_what(value)}",
            value.span,
        )
        return None
    if kind == "finset":
        sets = [_finite_set(ctx, key, name) for name in names]
        if any(s is None for s in sets):
            return None
        return tuple(s for s in sets if s is not None)
    return tuple(names)  # ids: their type is the step's to check (it knows the plate)


def _what(value: ast.OptionValue) -> str:
    if isinstance(value, ast.NumberOpt):
        return f"the number {value.value.text}"
    if isinstance(value, ast.StringOpt):
        return "a string"
    return option_text(value)


def _finite_set(ctx: Ctx, key: str, name: ast.Name) -> SetOption | None:
    """The finite set ``name`` declares; E0305 naming the type when it is no finite set."""
    if name.missing:
        return None
    local = ctx.locals.get(name.text)
    if local is not None and local.kind != "host" and name.text not in ctx.sets:
        ctx.ref(name, name.text, "local")
        ctx.error(
            "E0305",
            f"{key}={name.text}: '{name.text}' is a variable of type {T.describe(local.type)}, "
            f"but {key} takes a finite set (an object declared FinSet n or {{a, b, ...}})",
            name.span,
        )
        return None
    found = ctx.resolve(name, ("object",), "object")
    if found is None:
        return None
    assert isinstance(found, SymbolInfo)
    t = found.type
    if isinstance(t, T.Unknown):
        return None
    if not isinstance(t, T.FinSet):
        shown = T.describe(t) if not isinstance(t, T.Arrow) else t.show()
        ctx.error(
            "E0305",
            f"{key}={name.text}: '{name.text}' is {shown}, but {key} takes a finite set "
            "(FinSet n or {a, b, ...})",
            name.span,
        )
        return None
    return SetOption(t, name)


def _reduction(ctx: Ctx, value: ast.OptionValue) -> str | None:
    if isinstance(value, ast.NameOpt) and value.name.text in MARGINAL_REDUCTIONS:
        return value.name.text
    shown = option_text(value)
    guess = did_you_mean(shown, MARGINAL_REDUCTIONS)
    ctx.error(
        "E0305",
        f"unknown reduction '{shown}'",
        value.span,
        suggestion=f"did you mean '{guess}'?"
        if guess
        else f"reductions are {', '.join(MARGINAL_REDUCTIONS)}",
        replacement=guess,
    )
    return None
