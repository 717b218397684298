"""Human-readable descriptions of symbols, locals and types, shared by hover,
completion details, inlay hints and signature help."""

from __future__ import annotations

from quivers.core.families import FAMILIES, MIXTURE, Family
from quivers.core.vocabulary import (
    ALGEBRAS,
    ARITH_FUNCTIONS,
    COMBINATORS,
    FINSET,
    KEYWORD_DOCS,
    MARGINAL_REDUCTIONS,
    OPTIONS,
    RECURRENCES,
    REDUCTIONS,
    ROLES,
    SPACE_KINDS,
    STEP_OPTIONS,
    TEMPLATE_KINDS,
)
from quivers.semantic import types as T
from quivers.semantic.model import Local, Symbol


def value_shape(t: T.Type, per_row: bool = True) -> str:
    plate = T.plate_of(t)
    if plate is not None:  # one row per element of the plate's set
        return f"({_size(plate)}, {T.width(t) if T.width(t) is not None else '?'}) float"
    lead = "batch, " if per_row else ""
    if isinstance(t, T.FinSet):
        return f"({lead.rstrip(', ')},) int64" if per_row else "() int64"
    width = T.width(t)
    shown = "?" if width is None else str(width)
    return f"({lead}{shown}) float"


def _size(t: T.FinSet) -> str:
    size = T.size_of(t)
    return "?" if size is None else str(size)


def type_line(t: T.Type) -> str:
    if isinstance(t, T.FinSet) and t.symbolic:
        return "finite set whose size is given when the template is instantiated"
    if isinstance(t, T.FinSet):
        if t.elements is not None:
            return (
                f"finite set {{{', '.join(t.elements)}}}: values are int64 indices 0..{t.size - 1}"
            )
        return f"finite set of {t.size} elements: values are int64 indices 0..{t.size - 1}"
    if isinstance(t, T.Space):
        dim = "?" if t.dim is None else t.dim
        kind = SPACE_KINDS.get(t.kind)
        return f"{kind.doc if kind else t.kind} of dimension {dim}"
    if isinstance(t, T.Product):
        return f"product of {len(t.factors)} factors; continuous parts concatenate"
    return "type not known"


def symbol_signature(symbol: Symbol) -> str:
    info = symbol.info
    if info.kind == "object":
        assert not isinstance(info.type, T.Arrow)
        return f"object {symbol.name} : {info.type.structure()}"
    assert isinstance(info.type, T.Arrow)
    arrow = info.type.show()
    if info.kind == "morphism":
        opts = ", ".join(f"{k}={v}" for k, v in info.options)
        text = f"morphism {symbol.name} : {arrow}"
        if opts:
            text += f" [{opts}]"
        if info.family:
            text += f" ~ {info.family}"
        return text
    name = symbol.name
    if info.template:  # `program gmm(alpha : Real, K : FinSet) : ...`
        name += "(" + ", ".join(f"{n} : {k}" for n, k in info.template) + ")"
    if info.returns is not None:  # a plate program returning another value
        return f"{info.kind} {name} : {arrow} (returns {T.show(info.returns)})"
    return f"{info.kind} {name} : {arrow}"


def symbol_markdown(symbol: Symbol) -> str:
    info = symbol.info
    parts = [f"```qvr\n{symbol_signature(symbol)}\n```"]
    if info.kind == "object":
        assert not isinstance(info.type, T.Arrow)
        parts.append(type_line(info.type))
    else:
        assert isinstance(info.type, T.Arrow)
        dom, cod = info.type.dom, info.type.cod
        rows = [f"domain: `{T.describe(dom)}` · codomain: `{T.describe(cod)}`"]
        if info.kind == "morphism":
            role = info.role or "?"
            detail = f"role: `{role}`"
            if info.family:
                detail += f" · family: `{FAMILIES[info.family].signature()}`"
            if info.replicate:
                detail += f" · {info.replicate} replicas"
            rows.append(detail)
        rows.append(f"per row: input {value_shape(dom)} → output {value_shape(cod)}")
        parts.append("\n\n".join(rows))
    if symbol.doc:
        parts.append(symbol.doc)
    return "\n\n---\n\n".join(parts)


_LOCAL_WORDS = {
    "param": "parameter",
    "sample": "sample site",
    "observe": "observed site",
    "let": "value",
    "score": "score factor",
    "host": "host data (from the observations dict)",
    "template": "template parameter",
    "forward": "observed site: the forward pass of a chain whose states are summed out "
    "(its value is a draw of the last state from its filtering distribution)",
}


def local_markdown(local: Local, scan_trace: bool = False) -> str:
    if local.kind == "template":
        return template_markdown(local)
    head = f"```qvr\n{local.name} : {T.show(local.type)}\n```"
    what = _LOCAL_WORDS.get(local.kind, local.kind)
    if local.site is not None:
        what = f"one factor of the {what} `{local.site}` (a tuple draw)"
    scope = "global: drawn once, shared by every row" if local.is_global else "per row"
    plate = T.plate_of(local.type)
    if plate is not None:
        scope = (
            f"plate over {T.show(plate)} ({_size(plate)} elements): one value per element, "
            "drawn once"
        )
    shape = value_shape(local.type, per_row=not local.is_global)
    lines = [f"{what} · {scope}", f"`{T.describe(local.type)}` · value {shape}"]
    if scan_trace:
        width = T.width(local.type)
        lines.append(
            f"trace: the whole state trajectory (batch, T, {width}); the value is the last state"
        )
    return head + "\n\n" + "\n\n".join(lines)


def template_markdown(local: Local) -> str:
    """A template program's typed parameter: what it takes and when it is given."""
    t = local.type
    if isinstance(t, T.FinSet):
        kind = FINSET
        size = T.size_of(t)
        now = f"here {size} elements" if size is not None else "its size is not given yet"
    else:
        kind = t.kind if isinstance(t, T.Space) else "Real"
        now = "a number, the same for every row"
    spec = TEMPLATE_KINDS.get(kind)
    takes = spec.doc if spec is not None else kind
    return (
        f"```qvr\n{local.name} : {kind}\n```\n\ntemplate parameter: {takes}, given when the "
        f"program is loaded (`load(path, {local.name}=...)`) or called "
        f"(`prog.<program>({local.name}=...)`) · {now}"
    )


def step_option_markdown(word: str) -> str | None:
    spec = STEP_OPTIONS.get(word)
    if spec is not None:
        steps = ", ".join(sorted(spec.steps))
        return f"**{word}** (step option, read by {steps}): {spec.doc}"
    if word in MARGINAL_REDUCTIONS:
        return f"**reduction={word}**: {MARGINAL_REDUCTIONS[word]}"
    return None


def marginal_markdown(local: Local, summed_from: list[str], grouped: str | None) -> str:
    """A ``marginalize`` latent: what it ranges over and which sites it is summed out of."""
    head = f"```qvr\n{local.name} : {T.show(local.type)}\n```"
    size = T.size_of(local.type) if isinstance(local.type, T.FinSet) else None
    values = f"its {size} values" if size is not None else "its values"
    per = f"one per element of {grouped}" if grouped else "one per row"
    out = ", ".join(f"`{n}`" for n in summed_from) or "nothing yet"
    lines = [
        f"summed out (marginalized) · {per} · not a site",
        f"log density: logsumexp over {values} of its prior plus the block's body ({out})",
        "in scope only inside its block",
    ]
    return head + "\n\n" + "\n\n".join(lines)


def family_markdown(family: Family) -> str:
    params = ", ".join(f"{p.name}: {p.domain.value}" for p in family.params)
    support = family.support.value
    if family.name == MIXTURE:
        params, support = "weights: simplex, components: a list of family calls", "its components'"
    return (
        f"```qvr\n{family.signature()}\n```\n\n{family.doc}\n\n"
        f"parameters: {params} · support: {support}"
    )


def word_markdown(word: str) -> str | None:
    """Docs for a keyword, role, option, algebra, function or combinator."""
    if word in KEYWORD_DOCS:
        return f"**{word}**: {KEYWORD_DOCS[word]}"
    if word in ROLES:
        return f"**role={word}**: {ROLES[word]}"
    if word in OPTIONS:
        return f"**{word}**: {OPTIONS[word].doc}"
    if word in ALGEBRAS:
        return f"**{word}** algebra: {ALGEBRAS[word].doc}"
    if word in RECURRENCES:
        return (
            f"**{word}**(phi, e): z_1 = e_1, z_t = phi z_(t-1) + e_t over the elements of the "
            "plate e, in order (phi a number or a global value): an AR(1) series from its "
            "innovations"
        )
    if word in ARITH_FUNCTIONS:
        reduces = " (reduces the last axis)" if word in REDUCTIONS else ""
        return f"**{word}**(x): elementwise{reduces}"
    if word in SPACE_KINDS:
        return f"**{word} d**: {SPACE_KINDS[word].doc} of dimension d"
    if word == FINSET:
        return "**FinSet n**: the finite set {0, ..., n-1}; values are int64 indices"
    if word in COMBINATORS:
        return KEYWORD_DOCS.get(word)
    return step_option_markdown(word)
