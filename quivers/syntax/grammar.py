"""Loading the lark grammar and building the LALR parser once per process.

The grammar ships inside the wheel as ``quivers/syntax/qvr.lark``; in a source
checkout (or an editable install) it is read from ``grammars/qvr.lark``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

from lark import Lark

START_RULES = ("declaration", "program_header", "step")
_SOURCE_TREE_GRAMMAR = Path(__file__).resolve().parents[2] / "grammars" / "qvr.lark"


def grammar_path() -> Path:
    """Where the grammar is read from: the installed package first."""
    packaged = resources.files("quivers.syntax") / "qvr.lark"
    if packaged.is_file():
        return Path(str(packaged))
    return _SOURCE_TREE_GRAMMAR


@cache
def grammar_text() -> str:
    return grammar_path().read_text(encoding="utf-8")


@cache
def parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=list(START_RULES),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=False,
    )


@cache
def keywords() -> frozenset[str]:
    """Every word-like literal of the grammar: these may not be used as names."""
    body = re.sub(r"//[^\n]*", "", grammar_text())
    return frozenset(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', body))
