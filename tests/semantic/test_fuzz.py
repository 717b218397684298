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


def _fingerprint(text: str) -> list[tuple[object, ...]]:
    analysis = check_text(text)
    out: list[tuple[object, ...]] = [
        (d.code, d.message, d.range, d.suggestion, d.fix) for d in analysis.diagnostics
    ]
    out += [(n, s.info, s.line, s.doc) for n, s in sorted(analysis.symbols.items())]
    return out


@settings(FUZZ, max_examples=60)
@given(st.one_of(char_edits(), line_edits()))
def test_cached_results_equal_fresh_results(text: str):
    """After any edit, the incremental answer (warm caches) is the from-scratch answer."""
    from quivers.semantic import checker
    from quivers.syntax import layout, parser

    for seed in TEXTS[:3]:
        check_text(seed)  # warm the caches with related text
    warm = _fingerprint(text)
    parser._cache.clear()
    checker._cache.clear()
    layout._LINE_CACHE.clear()
    assert _fingerprint(text) == warm
