"""Lowering (lark trees to AST nodes): every grammar rule has its method, and a
lowering bug surfaces as an exception instead of a syntax error."""

from __future__ import annotations

import pytest
from lark import Tree

from quivers.syntax import grammar
from quivers.syntax.lower import Lowering, LoweringError, lower

from .helpers import ast, parse, parse_one


def _tree_names() -> set[str]:
    """Every ``Tree.data`` the parser can build: a rule's alias, or the rule's own name
    unless it is an inlined (``?``) rule whose alternative keeps exactly one child."""
    names: set[str] = set()
    for rule in grammar.parser().rules:
        if rule.alias is not None:
            names.add(str(rule.alias))
            continue
        origin = str(rule.origin.name)
        if origin.startswith("_"):
            continue  # lark inlines these into their parent
        kept = [s for s in rule.expansion if not (s.is_term and s.filter_out)]
        if not rule.options.expand1 or len(kept) != 1:
            names.add(origin)
    return names


def _methods() -> set[str]:
    return {
        n
        for n, v in vars(Lowering).items()
        if callable(v) and not n.startswith("_") and not n.isupper()
    }


def test_every_grammar_rule_has_a_lowering_method():
    missing = _tree_names() - _methods()
    assert not missing, f"rules without a method in quivers.syntax.lower.Lowering: {missing}"


def test_no_lowering_method_is_stale():
    stale = _methods() - _tree_names()
    assert not stale, f"Lowering methods for rules the grammar no longer has: {stale}"


def test_tree_names_cover_the_known_rules():
    # The enumeration itself must see inlined rules' own trees and aliases.
    names = _tree_names()
    assert {"expr", "tensor_expr", "type_expr", "sample_step", "call_value", "neg"} <= names
    assert not {"declaration", "step", "primary", "atom", "type_atom"} & names


def test_a_tree_without_a_method_is_a_bug_not_a_syntax_error():
    with pytest.raises(LoweringError, match="no_such_rule"):
        lower(Tree("no_such_rule", []))


def test_a_lowering_bug_fails_loudly(monkeypatch: pytest.MonkeyPatch):
    def broken(*args: object) -> None:
        raise ValueError("bug in lowering")

    monkeypatch.setattr(Lowering, "scan", broken)
    with pytest.raises(ValueError, match="bug in lowering"):
        parse("let unique_lowering_bug = scan(f)\n")


def test_lowering_builds_the_nodes_the_rules_describe():
    node = parse_one(
        # not role=kernel: on a kernel the call's numbers become options (a later
        # spelling, tests/syntax/test_spellings.py)
        "morphism f : A * B -> C [role=latent, param_source=mlp(8, 4)] ~ Normal(0.0, -1)"
    )
    assert isinstance(node, ast.MorphismDecl)
    assert isinstance(node.dom, ast.ProductType) and len(node.dom.factors) == 2
    assert [o.name.text for o in node.options] == ["role", "param_source"]
    source = node.options[1].value
    assert isinstance(source, ast.CallOpt) and [a.value for a in source.args] == [8.0, 4.0]
    assert isinstance(node.family, ast.FamilyRef)
    assert [(a.value, a.text) for a in node.family.args or []] == [(0.0, "0.0"), (-1.0, "-1")]
    expr = parse_one("let g = a >> b @ c >> repeat(d, 3)")
    assert isinstance(expr, ast.LetDecl) and isinstance(expr.expr, ast.Compose)
    assert isinstance(expr.expr.first, ast.Compose)
    assert isinstance(expr.expr.first.second, ast.TensorExpr)
    assert isinstance(expr.expr.second, ast.Repeat) and expr.expr.second.count is not None
    assert expr.expr.second.count.value == 3.0
