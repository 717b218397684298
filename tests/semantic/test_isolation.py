"""In a file where one statement is broken, every other statement still resolves and
type-checks.

For every example program (``docs/examples/source/*.qvr``, globbed) and every unit of
it (declaration, program header, program step), the unit is broken in three ways that
keep every line in place: its middle non-blank character is deleted, garbage is
appended to its last line, and a stray ``)`` is put in its middle. Then:

1. Every top-level name of the clean file that is not *affected* is still in
   ``analysis.symbols`` with the same type.
2. Every diagnostic that is new (its (code, line) is not in the clean file's list)
   lies on the broken unit or on a unit that *depends* on the break.

*Affected* names: the name the broken unit declares in the clean file, the name it
declares once broken (if different), the variable a broken step binds, and,
transitively, every top-level name whose declaration mentions an affected name.
Variables bound by other steps are not affected transitively: a broken step's
variable has an unknown type, which must not produce errors two steps further on. A
unit *depends* on the break when its text mentions an affected name (as a whole
word), or when it is a step of a program whose header is broken (the header gives
the steps their input type and names their parameters). Two file-level results
also depend on it: W0601 "no export" (on the first line) when the broken unit is an
``export`` or an export depends on it, and E0507 "never returns" (on the header) when it is a ``return``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .helpers import analyse, show

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples" / "source").glob("*.qvr"))
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _units(text: str) -> list[tuple[int, int, str, str | None]]:
    """(first line, last line, first word, declared or bound name) of each unit."""
    out = []
    for unit in analyse(text).file.units():
        node = unit.node
        name = getattr(node, "name", None) or getattr(node, "var", None)
        words = _WORD.findall(unit.text)
        out.append(
            (
                unit.line,
                unit.end_line,
                words[0] if words else "",
                name.text if name is not None and hasattr(name, "text") else None,
            )
        )
    return out


def _breaks(lines: list[str], first: int, last: int) -> list[tuple[str, list[str]]]:
    """Three ways to break the unit on lines first..last, keeping every line in place."""
    line = lines[first]
    body = [i for i, c in enumerate(line) if not c.isspace()]
    mid = body[len(body) // 2]
    deleted = lines[:]
    deleted[first] = line[:mid] + line[mid + 1 :]
    garbage = lines[:]
    garbage[last] = lines[last] + " $ ) ~~"
    paren = lines[:]
    paren[first] = line[:mid] + ")" + line[mid:]
    return [("delete-middle", deleted), ("append-garbage", garbage), ("stray-paren", paren)]


def _mentions(text: str, names: set[str]) -> bool:
    return any(w in names for w in _WORD.findall(text))


def _allowed(
    line: int,
    code: str,
    where: tuple[int, int, str],
    units: list,
    affected: set[str],
    program_units: list[int],
    export_hit: bool,
) -> bool:
    """Whether a new diagnostic on ``line`` is explained by the break (module docstring)."""
    first, last, keyword = where
    if first <= line <= last:
        return True
    for j, u in enumerate(units):
        if not (u.line <= line <= u.end_line):
            continue
        if _mentions(u.text, affected):
            return True
        if keyword == "program" and j in program_units:
            return True
    if code == "W0601" and (keyword == "export" or export_hit):
        return True
    return code == "E0507" and keyword == "return"


def _cases() -> list[tuple[Path, int]]:
    cases = []
    for path in EXAMPLES:
        count = len(analyse(path.read_text(encoding="utf-8")).file.units())
        cases.extend((path, i) for i in range(count))
    return cases


def test_examples_exist():
    assert EXAMPLES, "no docs/examples/source/*.qvr"


@pytest.mark.parametrize(
    ("path", "index"), _cases(), ids=lambda v: v.stem if isinstance(v, Path) else str(v)
)
def test_breaking_one_statement_leaves_the_others_intact(path: Path, index: int):
    text = path.read_text(encoding="utf-8")
    clean = analyse(text)
    clean_types = {n: show(s.info.type) for n, s in clean.symbols.items()}
    clean_diags = {(d.code, d.range.line) for d in clean.diagnostics}
    units = clean.file.units()
    target = units[index]
    info = _units(text)
    first, last, keyword, own_name = info[index]
    lines = text.split("\n")
    # The program a step or header belongs to, as a range of unit indexes.
    program_units: list[int] = []
    for item in clean.file.items:
        members = clean.item_units(item)
        if any(u is target for u in members):
            program_units = [units.index(u) for u in members]

    for how, broken_lines in _breaks(lines, first, last):
        broken_text = "\n".join(broken_lines)
        broken = analyse(broken_text)
        # What the broken unit declares or binds now.
        now = {
            u_name
            for (u_first, _l, _k, u_name) in _units(broken_text)
            if u_first == first and u_name
        }
        affected = {n for n in (own_name, *now) if n}
        changed = True
        while changed:  # transitively: declarations that mention an affected name
            changed = False
            for j, (_f, _l, _k, name) in enumerate(info):
                if j == index or name is None or name in affected:
                    continue
                if _mentions(units[j].text, affected) and units[j].kind != "step":
                    affected.add(name)
                    changed = True

        export_hit = any(
            k == "export" and _mentions(units[j].text, affected)
            for j, (_f, _l, k, _n) in enumerate(info)
        )

        # 1. Unaffected names keep their types.
        for name, shown in clean_types.items():
            if name in affected:
                continue
            assert name in broken.symbols, f"{how}: '{name}' lost"
            assert show(broken.symbols[name].info.type) == shown, f"{how}: '{name}' retyped"

        # 2. New diagnostics only on the broken unit and its dependents.
        for d in broken.diagnostics:
            if (d.code, d.range.line) in clean_diags:
                continue
            ok = _allowed(
                d.range.line,
                d.code,
                (first, last, keyword),
                broken.file.units(),
                affected,
                program_units,
                export_hit,
            )
            assert ok, (
                f"{how} of line {first + 1} ({lines[first].strip()!r}) caused {d.render(path.name)}"
            )
        # The break itself is reported on the broken unit (garbage is always an error).
        if how != "delete-middle":
            assert any(first <= d.range.line <= last for d in broken.diagnostics), how
