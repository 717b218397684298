"""Bad input to a deduction gives one clear error; runaway rules terminate."""

from __future__ import annotations

import pytest
import torch

from grammars import I, J, K, X, Y, cfg_system, fwd, span
from quivers.core.deduction.chart import DeductionError, saturate
from quivers.core.deduction.system import DeductionSystem, LexEntry, Rule
from quivers.runtime.deduction.module import Deduction
from quivers.runtime.errors import QvrBuildError, QvrDataError

# small tensors: intra-op threads only add synchronisation (conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ded() -> Deduction:
    return Deduction(cfg_system())


def test_an_unknown_word_is_named(ded) -> None:
    with pytest.raises(
        QvrDataError, match=r"sentence 1, word 2: 'dgo' is not in the lexicon; did you mean 'dog'\?"
    ):
        ded.log_prob([["the", "dog"], ["the", "dog", "dgo"]])


def test_an_empty_sentence_is_an_error(ded) -> None:
    with pytest.raises(QvrDataError, match="the sentence is empty"):
        ded.log_prob([])
    with pytest.raises(QvrDataError, match="sentence 1 is empty"):
        ded.log_prob([["dog"], []])


def test_token_ids_are_checked(ded) -> None:
    v = len(ded.vocabulary)
    with pytest.raises(QvrDataError, match=f"token id {v} is outside the vocabulary of {v} words"):
        ded.log_prob(torch.tensor([[0, v]]))
    with pytest.raises(QvrDataError, match="expected integer token ids, got torch.float32"):
        ded.log_prob(torch.tensor([0.0, 1.0]))
    ids = torch.tensor([ded.vocabulary.index(w) for w in ["the", "dog", "saw", "the", "dog"]])
    assert ded.log_prob(ids).item() == pytest.approx(
        ded.log_prob(["the", "dog", "saw", "the", "dog"]).item()
    )


def test_a_string_is_not_a_sentence(ded) -> None:
    with pytest.raises(QvrDataError, match="a sentence is a list of words"):
        ded.log_prob("the dog")


def test_a_sentence_without_a_parse_has_log_prob_minus_inf_and_parse_says_so(ded) -> None:
    assert ded.log_prob(["the", "the"]).item() == float("-inf")
    with pytest.raises(QvrDataError, match="no derivation of S spans the sentence 'the the'"):
        ded.parse(["the", "the"])


def test_an_unreachable_start_symbol_is_a_build_error() -> None:
    with pytest.raises(QvrBuildError, match="no sentence derives the start symbol 'Top'"):
        Deduction(cfg_system(start="Top"))


def test_a_unary_cycle_is_a_build_error() -> None:
    with pytest.raises(QvrBuildError, match="unary rules form a cycle"):
        Deduction(cfg_system(unary=[("VP", "V"), ("NP", "N"), ("N", "NP")]))


def test_a_cycle_in_a_general_chart_is_an_error_naming_the_rules() -> None:
    rules = (
        Rule("up", (("pair", I, J, "A"),), ("pair", I, J, "B")),
        Rule("down", (("pair", I, J, "B"),), ("pair", I, J, "A")),
        Rule("lift", (span(I, J, "A"),), ("pair", I, J, "A")),
        Rule("s", (("pair", I, J, "B"),), span(I, J, "S")),
    )
    system = DeductionSystem("Loop", (), rules, (LexEntry("a", "A", "a"),), "LogProb", "S")
    ded = Deduction(system)
    assert ded.engine == "hypergraph"
    with pytest.raises(QvrDataError, match=r"derive each other \(rules 'up', 'down'\)"):
        ded.log_prob(["a"])


def type_raising(depth: int) -> DeductionSystem:
    """Unbounded type raising: X |- S/(S\\X) applies to its own output forever."""
    raise_ = Rule("raise", (span(I, J, X),), span(I, J, fwd("S", ("Bwd", "S", X))))
    app = Rule("app", (span(I, K, fwd(X, Y)), span(K, J, Y)), span(I, J, X))
    lex = (LexEntry("john", "NP", "john"), LexEntry("runs", ("Bwd", "S", "NP"), "runs"))
    return DeductionSystem("TR", (), (raise_, app), lex, "Counting", "S", depth)


@pytest.mark.parametrize("depth", [2, 4, 6])
def test_the_depth_bound_stops_runaway_type_raising(depth) -> None:
    system = type_raising(depth)
    seeds = [(system.seed(e, i, i + 1), k) for i, (k, e) in enumerate(enumerate(system.lexicon))]
    chart = saturate(system, seeds)
    # each raise adds two levels of nesting; nothing past the bound is built
    from quivers.core.deduction.terms import item_size

    assert max(item_size(it) for it in chart.items) <= depth
    assert len(chart.items) < 20
    ded = Deduction(system)
    assert ded.inside(["john", "runs"]).item() >= 1.0


def test_the_chart_size_guard_turns_an_explosion_into_an_error() -> None:
    system = type_raising(6)
    seeds = [(system.seed(system.lexicon[0], 0, 1), 0)]
    with pytest.raises(DeductionError, match="the chart grew past 2 items"):
        saturate(system, seeds, max_items=2)
