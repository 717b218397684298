"""Property-based: no edit of a real program crashes the front end, and every range it
reports lies inside the document with lines, columns and offsets that agree.

The seeds are every ``docs/examples/source/*.qvr`` (globbed: the set grows) and the
broken corpus. Hypothesis runs derandomized with a bounded number of examples, so a
run is deterministic and takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from syntax.helpers import check_spans

from quivers.core.diagnostics import Range
from quivers.semantic import check_text
from quivers.syntax import parse
from quivers.syntax.cache import DEFAULT_CACHE, FrontendCache

ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted((ROOT / "docs" / "examples" / "source").glob("*.qvr")) + sorted(
    (ROOT / "tests" / "data" / "broken").glob("*.qvr")
)
TEXTS = [p.read_text(encoding="utf-8") for p in SEEDS]

# Characters that matter to the lexer and the layout, and a few that do not belong.
ALPHABET = list("abzAZ_09 \t\n()[]{},:;=<->>@*~#!\"'.+/\\$^") + [
    "\u00e9",
    "\x00",
    "\r",
    "#{",
    "}#",
    "<-",
    "->",
    ">>",
]

FUZZ = settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def assert_inside(text: str, r: Range) -> None:
    """0 <= line < number of lines (the position just past the end allowed), columns
    within their line, offsets consistent with line/col."""
    lines = text.split("\n")  # a final newline gives an empty last line: just past the end
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    assert 0 <= r.line <= r.end_line < len(lines), (r, len(lines))
    assert 0 <= r.col <= len(lines[r.line]), r
    assert 0 <= r.end_col <= len(lines[r.end_line]), r
    assert (r.line, r.col) <= (r.end_line, r.end_col), r
    assert starts[r.line] + r.col == r.offset, r
    assert starts[r.end_line] + r.end_col == r.end_offset, r
    assert 0 <= r.offset <= r.end_offset <= len(text), r


def check_everything(text: str) -> None:
    analysis = check_text(text)  # must not raise
    for d in analysis.diagnostics:
        assert d.code and d.message, d
        assert_inside(text, d.range)
        for edit in d.fix:
            assert_inside(text, edit.range)
    for symbol in analysis.symbols.values():
        assert_inside(text, symbol.unit.absolute(symbol.name_span))
    check_spans(text)


@st.composite
def char_edits(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        op = draw(st.sampled_from(["delete", "insert", "swap", "delete_run"]))
        i = draw(st.integers(0, max(n - 1, 0)))
        if op == "delete" and n:
            text = text[:i] + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(ALPHABET)) + text[i:]
        elif op == "swap" and n > 1:
            j = min(i + 1, n - 1)
            text = text[:i] + text[j] + text[i] + text[j + 1 :] if j > i else text
        elif op == "delete_run" and n:
            k = draw(st.integers(1, 12))
            text = text[:i] + text[i + k :]
    return text


@st.composite
def line_edits(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(TEXTS)).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        n = len(lines)
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "move", "indent", "dedent"]))
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(0, n - 1))
        if op == "delete" and n > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(j, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "move":
            lines.insert(j, lines.pop(i))
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["    ", "\t", "  ", "        "])) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
    return "\n".join(lines)


def test_seeds_exist():
    assert TEXTS and any("docs" in str(p) for p in SEEDS)


@FUZZ
@given(char_edits())
def test_character_edits_never_crash(text: str):
    check_everything(text)


@FUZZ
@given(line_edits())
def test_line_edits_never_crash(text: str):
    check_everything(text)


WORDS = ALPHABET + [
    "object ",
    "morphism ",
    "let ",
    "program ",
    "    sample ",
    "    return ",
    "export ",
    " : ",
    "Real 2",
    "FinSet 3",
    "[role=kernel]",
    "~ Normal",
    "scan(",
    "x",
]


@settings(FUZZ, max_examples=100)
@given(st.lists(st.sampled_from(WORDS), max_size=60).map("".join))
def test_random_text_never_crashes(text: str):
    check_everything(text)


def test_every_seed_is_consistent():
    for text in TEXTS:
        check_everything(text)
        parse(text)


def _fingerprint(text: str, cache: FrontendCache = DEFAULT_CACHE) -> list[tuple[object, ...]]:
    analysis = check_text(text, cache)
    out: list[tuple[object, ...]] = [
        (d.code, d.message, d.range, d.suggestion, d.fix) for d in analysis.diagnostics
    ]
    out += [(n, s.info, s.line, s.doc) for n, s in sorted(analysis.symbols.items())]
    return out


@settings(FUZZ, max_examples=60)
@given(st.one_of(char_edits(), line_edits()))
def test_cached_results_equal_fresh_results(text: str):
    """After any edit, the incremental answer (warm caches) is the from-scratch answer."""
    for seed in TEXTS[:3]:
        check_text(seed)  # warm the caches with related text
    warm = _fingerprint(text)
    assert _fingerprint(text, FrontendCache()) == warm


# ------------------------------------------------- structured random programs
# Character edits rarely produce a well-formed program with a new combination of
# types; these pieces (good and bad) make statements that parse and exercise the
# checker's rules in random combinations.

G_NAMES = ["A", "B", "C", "D", "f", "g", "h", "p", "x", "y", "Normal", "Categorical"]
G_TYPES = [
    "FinSet 3",
    "FinSet 2",
    "FinSet 0",
    "Real 2",
    "Real 1",
    "Positive 2",
    "UnitInterval 1",
    "Simplex 3",
    "{a, b}",
    "{a, a}",
    "A",
    "B",
    "A * B",
    "(A * C)",
    "Real 2 * FinSet 3",
    "f",
]
G_FAMS = [
    "Normal",
    "LogNormal",
    "HalfNormal",
    "Exponential",
    "Gamma",
    "Beta",
    "LogitNormal",
    "Bernoulli",
    "Categorical",
    "Poisson",
    "Dirichlet",
    "StudentT",
    "Normal(0.0, 1.0)",
    "Normal(1.0)",
    "Bernoulli(0.5)",
    "Bernoulli(2.0)",
    "[[1, 0], [0, 1]]",
    "[[0.5, -1]]",
    "Nope",
]
G_OPTS = [
    "role=kernel",
    "role=embed",
    "role=latent",
    "role=observed",
    "role=bogus",
    "scale=0.1",
    "scale=-1",
    "scale=x",
    "replicate=3",
    "replicate=0",
    "replicate=1.5",
    "param_source=linear",
    "param_source=mlp(8, 4)",
    "param_source=mlp()",
    "param_source=mlp(0)",
    "init=0.02",
    "init=xavier",
    'init="s"',
    "rate=2.0",
    "loc=0.0",
    "df=3",
    "probs=0.3",
    "concentration=1.0",
    "bogus=1",
]
G_EXPRS = [
    "f",
    "g",
    "h",
    "f >> g",
    "f @ g",
    "fan(f, g)",
    "fan(f)",
    "repeat(f, 2)",
    "repeat(f)",
    "stack(f, 0)",
    "scan(f)",
    "identity(A)",
    "identity(A * B)",
    "f(x)",
    "(f >> g) @ h",
    "A",
    "p",
]
G_ARITH = [
    "x",
    "y",
    "1.0",
    "-x",
    "x + y",
    "x * 2.0",
    "sum(x)",
    "mean(y)",
    "exp(x, y)",
    "nope(x)",
    "f",
    "data",
    "x / (y - 1.0)",
    "tanh(data) * x",
]


@st.composite
def programs(draw):
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(
            st.sampled_from(["object", "morphism", "let", "program", "export", "composition"])
        )
        name = draw(st.sampled_from(G_NAMES))
        if kind == "object":
            lines.append(f"object {name} : {draw(st.sampled_from(G_TYPES))}")
        elif kind == "morphism":
            opts = draw(st.lists(st.sampled_from(G_OPTS), max_size=4))
            fam = draw(st.one_of(st.none(), st.sampled_from(G_FAMS)))
            text = f"morphism {name} : {draw(st.sampled_from(G_TYPES))} -> {draw(st.sampled_from(G_TYPES))}"
            if opts or draw(st.booleans()):
                text += " [" + ", ".join(opts) + "]"
            if fam:
                text += f" ~ {fam}"
            lines.append(text)
        elif kind == "let":
            lines.append(f"let {name} = {draw(st.sampled_from(G_EXPRS))}")
        elif kind == "export":
            lines.append(f"export {draw(st.sampled_from(G_EXPRS))}")
        elif kind == "composition":
            lines.append(
                f"composition {draw(st.sampled_from(['markov', 'tropical', 'bogus']))} as algebra"
            )
        else:
            params = draw(st.sampled_from(["", "(x)", "(x, y)", "(x, y, z)"]))
            lines.append(
                f"program {name}{params} : {draw(st.sampled_from(G_TYPES))} -> {draw(st.sampled_from(G_TYPES))}"
            )
            for _ in range(draw(st.integers(0, 6))):
                v = draw(st.sampled_from(["x", "y", "z", "w"]))
                step = draw(
                    st.sampled_from(["sample", "observe", "let", "score", "return", "returns"])
                )
                ann = draw(st.sampled_from(["", " : A", " : Real 2", " : FinSet 3"]))
                src = draw(
                    st.sampled_from(
                        G_EXPRS
                        + [
                            "Normal(x, 1.0)",
                            "Normal(0.0, 3.0)",
                            "Categorical(x)",
                            "Dirichlet(y)",
                            "Bernoulli(x)",
                            "Normal",
                            "x",
                            "f(x, y)",
                            "f(1.0)",
                        ]
                    )
                )
                if step in ("sample", "observe"):
                    lines.append(f"    {step} {v}{ann} <- {src}")
                elif step in ("let", "score"):
                    lines.append(f"    {step} {v} = {draw(st.sampled_from(G_ARITH))}")
                elif step == "return":
                    lines.append(f"    return {v}")
                else:
                    lines.append("    return (x, y)")
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=200)
@given(programs())
def test_random_programs_never_crash(text: str):
    check_everything(text)


@settings(FUZZ, max_examples=60)
@given(programs(), st.data())
def test_random_programs_incremental_equals_fresh(text: str, data: st.DataObject):
    """A sequence of line edits, each checked warm (after the previous text) and cold."""
    lines = text.split("\n")
    check_text(text)
    for _ in range(3):
        i = data.draw(st.integers(0, len(lines) - 1))
        j = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["delete", "duplicate", "swap"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(j, lines[i])
        else:
            lines[i], lines[j] = lines[j], lines[i]
        new = "\n".join(lines)
        warm = _fingerprint(new)
        assert _fingerprint(new, FrontendCache()) == warm
