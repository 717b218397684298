"""Deduction values against brute-force enumeration of every derivation, for every
sentence up to length 6 over small vocabularies (tests/runtime/grammars.py)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch

from grammars import (
    LEXICON,
    bwd,
    ccg_system,
    cfg_system,
    cyk_recognises,
    enumerate_ccg,
    enumerate_cfg,
    fwd,
    logsumexp,
    normalised_cfg,
)
from quivers.runtime.deduction.module import Deduction

VOCAB = sorted({w for w, _ in LEXICON})


# small tensors: intra-op threads only add synchronisation (conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def sentences(vocab, longest):
    for n in range(1, longest + 1):
        yield from (list(s) for s in itertools.product(vocab, repeat=n))


@pytest.fixture(scope="module")
def pcfg():
    torch.manual_seed(1)
    ded = Deduction(cfg_system()).double()
    with torch.no_grad():
        ded.weights.normal_()
    table = normalised_cfg(ded.weights.tolist())
    return ded, table


def test_log_prob_equals_the_sum_over_enumerated_derivations(pcfg) -> None:
    ded, table = pcfg
    corpus = list(sentences(VOCAB, 6))
    got = ded.log_prob(corpus)
    parsed = 0
    for s, value in zip(corpus, got.tolist(), strict=True):
        expected = logsumexp([lp for lp, _ in enumerate_cfg(s, table)])
        if expected == -math.inf:
            assert value == -math.inf, s
        else:
            parsed += 1
            assert value == pytest.approx(expected, abs=1e-6), s
    assert parsed > 50  # the grammar is not vacuous on this vocabulary


def test_the_hypergraph_engine_agrees_with_dense_cky(pcfg) -> None:
    ded, _ = pcfg
    general = Deduction(ded.system, engine="hypergraph").double()
    general.load_state_dict(ded.state_dict())
    assert ded.engine == "cky" and general.engine == "hypergraph"
    corpus = list(sentences(VOCAB, 4))
    for semiring in ("LogProb", "Viterbi", "Real", "Counting", "Boolean"):
        a, b = ded.inside(corpus, semiring=semiring), general.inside(corpus, semiring=semiring)
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9, msg=semiring)


def test_viterbi_parse_is_the_enumerated_best_derivation(pcfg) -> None:
    ded, table = pcfg
    checked = 0
    for s in sentences(VOCAB, 6):
        derivs = enumerate_cfg(s, table)
        if not derivs:
            continue
        best_lp, best_tree = max(derivs)
        tree = ded.parse(s)
        assert tree.score == pytest.approx(best_lp, abs=1e-9)
        assert ded.inside([s], semiring="Viterbi")[0].item() == pytest.approx(best_lp, abs=1e-9)
        if sum(1 for lp, _ in derivs if abs(lp - best_lp) < 1e-9) == 1:  # unique best
            assert str(tree) == best_tree
        assert tree.words() == s
        checked += 1
    assert checked > 50


def test_k_best_lists_the_enumerated_derivations_in_order(pcfg) -> None:
    ded, table = pcfg
    s = ["the", "dog", "saw", "the", "dog", "with", "the", "dog"]
    derivs = sorted(enumerate_cfg(s, table), reverse=True)
    assert len(derivs) >= 2
    got = ded.parse(s, k=len(derivs) + 3)
    assert [d.score for d in got] == pytest.approx([lp for lp, _ in derivs], abs=1e-9)
    assert sorted(str(d) for d in got) == sorted(t for _, t in derivs)


def test_counting_counts_the_enumerated_derivations() -> None:
    ded = Deduction(cfg_system(semiring="Counting")).double()
    corpus = list(sentences(VOCAB, 5))
    counts = ded.inside(corpus).tolist()
    for s, c in zip(corpus, counts, strict=True):
        assert c == len(enumerate_cfg(s, normalised_cfg([0.0] * 13))), s


def test_boolean_recognition_agrees_with_a_cyk_recogniser() -> None:
    ded = Deduction(cfg_system(semiring="Boolean"))
    corpus = list(sentences(VOCAB, 6))
    got = ded.inside(corpus).tolist()
    assert {0.0, 1.0} == set(got)
    for s, v in zip(corpus, got, strict=True):
        assert v == float(cyk_recognises(s)), s


def test_real_semiring_is_the_probability(pcfg) -> None:
    ded, _ = pcfg
    corpus = list(sentences(VOCAB, 3))
    torch.testing.assert_close(
        ded.inside(corpus, semiring="Real"), ded.log_prob(corpus).exp(), atol=1e-12, rtol=1e-9
    )


# A categorial lexicon with type ambiguity, so that composition gives spurious
# ambiguity that the enumerator must count exactly.
CCG_LEX = [
    ("the", fwd("NP", "N")),
    ("dog", "N"),
    ("cat", "N"),
    ("saw", bwd(fwd("S", "NP"), "NP")),
    ("saw", fwd(bwd("S", "NP"), "NP")),
    ("often", fwd(bwd("S", "NP"), bwd("S", "NP"))),
    ("john", "NP"),
]


@pytest.mark.parametrize("engine", ["cky", "hypergraph"])
def test_ccg_derivation_counts_equal_enumeration(engine) -> None:
    ded = Deduction(ccg_system(CCG_LEX, depth=3), engine=engine).double()
    vocab = ["the", "dog", "saw", "often", "john"]
    corpus = list(sentences(vocab, 5 if engine == "cky" else 4))
    got = ded.inside(corpus).tolist()
    nonzero = 0
    for s, c in zip(corpus, got, strict=True):
        expected = enumerate_ccg(s, CCG_LEX, depth=3)
        assert c == expected, s
        nonzero += expected > 0
    assert nonzero > 5


def test_ccg_log_prob_agrees_across_engines() -> None:
    system = ccg_system(CCG_LEX, semiring="LogProb", depth=3, learnable=True)
    a, b = Deduction(system).double(), Deduction(system, engine="hypergraph").double()
    with torch.no_grad():
        a.weights.normal_()
    b.load_state_dict(a.state_dict())
    corpus = list(sentences(["the", "dog", "saw", "often", "john"], 4))
    torch.testing.assert_close(a.log_prob(corpus), b.log_prob(corpus), atol=1e-9, rtol=0)
    s = ["john", "often", "saw", "the", "dog"]
    assert a.parse(s).score == pytest.approx(b.parse(s).score)


def test_gradients_flow_to_every_used_weight(pcfg) -> None:
    ded, _ = pcfg
    ded.zero_grad()
    ded.log_prob([["the", "dog", "saw", "the", "dog", "with", "the", "dog"]]).sum().backward()
    grad = ded.weights.grad
    assert grad is not None and bool(torch.isfinite(grad).all())
    assert int((grad != 0).sum()) >= 8


def test_forms_do_not_change_the_weights_of_the_syntax() -> None:
    """A grammar with logical forms (span(I, J, Type, Form)) gives every sentence the
    log probability of the same grammar without forms: weights live on syntactic
    expansions, and each derivation is counted once either way."""
    from pathlib import Path

    from quivers.core.deduction.system import LexEntry, Rule
    from quivers.dsl import load

    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "source"
    with_forms = load(path / "type_logical.qvr").deductions["Lambek"].double()

    def strip(t):
        if isinstance(t, tuple):
            args = t[1:4] if t[0] == "span" and len(t) == 5 else t[1:]
            return (t[0], *(strip(a) for a in args))
        return t

    s = with_forms.system
    plain = Deduction(
        replace(
            s,
            rules=tuple(
                Rule(r.name, tuple(strip(p) for p in r.premises), strip(r.conclusion), r.learnable)
                for r in s.rules
            ),
            lexicon=tuple(LexEntry(e.word, e.category, e.form, e.learnable) for e in s.lexicon),
        )
    ).double()
    assert plain.system.span_arity == 3 and s.span_arity == 4
    with torch.no_grad():
        with_forms.weights.normal_()
        plain.weights.copy_(with_forms.weights)
    corpus = list(sentences(["every", "dog", "barks", "sees", "cat"], 4))
    a, b = with_forms.log_prob(corpus), plain.log_prob(corpus)
    torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    assert int(torch.isfinite(a).sum()) >= 2  # every dog barks, every cat barks
