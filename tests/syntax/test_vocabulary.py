"""The vocabulary tables of ``quivers.core`` agree with the lark grammar and the
TextMate grammar: a word added to one and not the others fails here, naming the file
to edit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lark.lexer import PatternStr

from quivers.core.families import FAMILIES
from quivers.core.vocabulary import (
    ALGEBRAS,
    ARITH_FUNCTIONS,
    COMBINATORS,
    DECLARATION_KEYWORDS,
    DEDUCTION_KEYWORDS,
    FINSET,
    INIT_SCHEMES,
    KEYWORD_DOCS,
    MARGINAL_REDUCTIONS,
    NAMED_DECLARATIONS,
    PARAM_SOURCES,
    REDUCTIONS,
    ROLES,
    SPACE_KINDS,
    STEP_KEYWORDS,
    STEP_OPTIONS,
    TYPE_KEYWORDS,
)
from quivers.syntax import grammar

TM_PATH = Path(__file__).resolve().parents[2] / "grammars" / "qvr.tmLanguage.json"
TM_FIX = "update grammars/qvr.tmLanguage.json"
LARK_FIX = "update grammars/qvr.lark"


# ------------------------------------------------------------- the lark grammar


def _literal(symbol: Any) -> str | None:
    """The text of a terminal that is a fixed string (a keyword or punctuation)."""
    if not symbol.is_term:
        return None
    pattern = grammar.parser().get_terminal(symbol.name).pattern
    return pattern.value if isinstance(pattern, PatternStr) else None


def _alternatives(origin: str) -> list[list[Any]]:
    return [list(r.expansion) for r in grammar.parser().rules if r.origin.name == origin]


def _first_words(origin: str) -> set[str]:
    """The leading keyword of each alternative of a rule, through inlined rules."""
    words: set[str] = set()
    for expansion in _alternatives(origin):
        head = expansion[0]
        if head.is_term:
            word = _literal(head)
            if word is not None and word[:1].isalpha():
                words.add(word)
        else:
            words |= _first_words(head.name)
    return words


def _words_of(origin: str) -> set[str]:
    """Every keyword literal in a rule's alternatives (not through other rules)."""
    return {
        w
        for expansion in _alternatives(origin)
        for s in expansion
        if (w := _literal(s)) is not None and w[:1].isalpha()
    }


def test_declaration_keywords_are_the_grammars():
    lark = _first_words("declaration") | _first_words("program_header")
    assert set(DECLARATION_KEYWORDS) == lark, LARK_FIX


def test_deduction_keywords_are_the_grammars():
    assert set(DEDUCTION_KEYWORDS) == _first_words("deduction_part"), LARK_FIX


def test_step_keywords_are_the_grammars():
    assert set(STEP_KEYWORDS) == _first_words("step"), LARK_FIX


def test_named_declarations_are_declarations():
    assert set(NAMED_DECLARATIONS) <= set(DECLARATION_KEYWORDS)


def test_space_kinds_are_the_grammars():
    assert set(SPACE_KINDS) == _words_of("space_kind"), LARK_FIX
    assert FINSET in _words_of("type_atom"), LARK_FIX


def test_combinators_are_the_grammars():
    assert set(COMBINATORS) == _first_words("primary"), LARK_FIX


def test_every_keyword_has_hover_text():
    documented = (
        set(DECLARATION_KEYWORDS) | set(STEP_KEYWORDS) | set(COMBINATORS) | set(DEDUCTION_KEYWORDS)
    )
    assert documented == set(KEYWORD_DOCS)
    assert set(KEYWORD_DOCS) <= grammar.keywords()


def test_table_words_are_not_keywords():
    # Family, role, option and function names are ordinary names to the parser.
    tables = [FAMILIES, ROLES, ALGEBRAS, ARITH_FUNCTIONS, PARAM_SOURCES, INIT_SCHEMES]
    tables += [STEP_OPTIONS, MARGINAL_REDUCTIONS]
    for table in tables:
        assert not set(table) & grammar.keywords(), table


def test_reductions_are_functions():
    assert set(REDUCTIONS) <= set(ARITH_FUNCTIONS)


# ---------------------------------------------------------- the TextMate grammar


def _tm_patterns(node: Any) -> Iterator[tuple[str, str]]:
    """Every (scope name, match) pair of the TextMate grammar, at any depth."""
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and isinstance(node.get("match"), str):
            yield node["name"], node["match"]
        for value in node.values():
            yield from _tm_patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tm_patterns(value)


_WORD_LIST = re.compile(r"\\b\(\?:([A-Za-z0-9_|]+)\)\\b")


def _tm_words(scope: str) -> set[str]:
    grammar_json = json.loads(TM_PATH.read_text(encoding="utf-8"))
    found = [m for name, m in _tm_patterns(grammar_json) if name == scope]
    assert found, f"no '{scope}' pattern in {TM_PATH.name}"
    words: set[str] = set()
    for match in found:
        lists = _WORD_LIST.findall(match)
        assert lists, f"{scope}: {match} is not a plain word list"
        for listed in lists:
            words |= set(listed.split("|"))
    return words


def test_textmate_declaration_and_step_keywords():
    # `let` is both; the TextMate grammar lists it once, with the declarations.
    assert _tm_words("keyword.control.step.qvr") == set(STEP_KEYWORDS) - set(
        DECLARATION_KEYWORDS
    ), TM_FIX
    others = {w for d in ("composition_decl",) for w in _words_of(d)}
    assert _tm_words("keyword.declaration.qvr") == set(DECLARATION_KEYWORDS) | others, TM_FIX


def test_textmate_deduction_keywords_and_tokens():
    assert _tm_words("keyword.other.deduction.qvr") == set(DEDUCTION_KEYWORDS), TM_FIX
    grammar_json = json.loads(TM_PATH.read_text(encoding="utf-8"))
    matches = dict(_tm_patterns(grammar_json))
    assert re.fullmatch(matches["keyword.operator.turnstile.qvr"], "|-"), TM_FIX
    assert re.fullmatch(matches["keyword.operator.turnstile.qvr"], "⊢"), TM_FIX
    assert re.fullmatch(matches["storage.modifier.annotation.qvr"], "#[learnable]"), TM_FIX


def test_textmate_types_combinators_and_tables():
    assert _tm_words("support.type.builtin.qvr") == set(TYPE_KEYWORDS), TM_FIX
    assert _tm_words("support.function.combinator.qvr") == set(COMBINATORS), TM_FIX
    assert _tm_words("support.class.family.qvr") == set(FAMILIES), TM_FIX
    assert _tm_words("constant.language.role.qvr") == set(ROLES), TM_FIX
    assert _tm_words("support.function.param-source.qvr") == set(PARAM_SOURCES), TM_FIX
    assert _tm_words("constant.language.init.qvr") == set(INIT_SCHEMES), TM_FIX
    assert _tm_words("constant.language.algebra.qvr") == set(ALGEBRAS), TM_FIX
    assert _tm_words("support.function.arithmetic.qvr") == set(ARITH_FUNCTIONS), TM_FIX


def test_textmate_step_options_and_reductions():
    assert _tm_words("variable.parameter.step-option.qvr") == set(STEP_OPTIONS), TM_FIX
    assert _tm_words("constant.language.reduction.qvr") == set(MARGINAL_REDUCTIONS), TM_FIX
