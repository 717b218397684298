"""``load`` builds every deduction block, export or not; bad sentences are one error."""

from __future__ import annotations

import pytest
import torch

from quivers.dsl import loads
from quivers.runtime.deduction.module import Deduction
from quivers.runtime.errors import QvrDataError

SOURCE = """object Term : FinSet 16
deduction PCFG : Term -> Term [semiring=LogProb, start=S, depth=4]
    atoms S, NP, VP, Det, N, V, span, the, cat, sleeps
    rule s_np_vp : span(I, K, NP), span(K, J, VP) |- span(I, J, S) #[learnable]
    rule np_det_n : span(I, K, Det), span(K, J, N) |- span(I, J, NP) #[learnable]
    rule vp_v : span(I, J, V) |- span(I, J, VP) #[learnable]
    lexicon
        "the" : Det = the #[learnable]
        "cat" : N = cat #[learnable]
        "sleeps" : V = sleeps #[learnable]
"""


def test_deductions_are_built_without_an_export() -> None:
    prog = loads(SOURCE)
    ded = prog.deductions["PCFG"]
    assert isinstance(ded, Deduction)
    assert ded.system.start == "S" and ded.system.depth == 4 and ded.engine == "cky"
    assert [n for n, _ in ded.named_parameters()] == ["weights"]
    assert ded.weight_names == (
        "s_np_vp",
        "np_det_n",
        "vp_v",
        '"the" : Det',
        '"cat" : N',
        '"sleeps" : V',
    )
    # every group has one member: the only sentence has probability 1
    assert ded.log_prob(["the", "cat", "sleeps"]).item() == pytest.approx(0.0, abs=1e-6)
    assert str(ded.parse(["the", "cat", "sleeps"])) == "(S (NP (Det the) (N cat)) (VP (V sleeps)))"
    assert ded.parse(["the", "cat", "sleeps"]).rules() == ["s_np_vp", "np_det_n", "vp_v"]
    # the module root holds it too (so .double() converts it with everything else)
    assert prog.module.root["deduction__PCFG"] is ded


def test_unknown_words_and_empty_sentences_are_one_clear_error() -> None:
    ded = loads(SOURCE).deductions["PCFG"]
    with pytest.raises(QvrDataError, match="'dog' is not in the lexicon"):
        ded.log_prob(["the", "dog", "sleeps"])
    with pytest.raises(QvrDataError, match="empty"):
        ded.log_prob([])
    assert ded.log_prob(torch.tensor([0, 1, 2])).item() == pytest.approx(0.0, abs=1e-6)


def test_a_grammar_without_an_export_says_where_its_deductions_are() -> None:
    prog = loads(SOURCE)
    with pytest.raises(AttributeError, match=r"deduction blocks \(PCFG\).*adam_fit_deduction"):
        _ = prog.morphism
    with pytest.raises(AttributeError, match="exports nothing: add `export <program>`"):
        _ = loads("object A : Real 1\n").morphism
