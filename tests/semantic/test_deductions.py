"""The checker on deduction blocks: each problem on the right token, with both uses
named for an arity mismatch; a clean grammar has no diagnostics."""

from __future__ import annotations

from .helpers import analyse, diagnose, messages

HEAD = "object Term : FinSet 16\n"
GOOD = HEAD + (
    "deduction G : Term -> Term [semiring=Viterbi, start=S, depth=2]\n"
    "    atoms S, NP, VP, span, john, runs\n"
    "    rule s : span(I, K, NP), span(K, J, VP) ⊢ span(I, J, S) #[learnable]\n"
    "    lexicon\n"
    '        "john" : NP = john #[learnable]\n'
    '        "runs" : VP = runs\n'
)


def _col(text: str, line: int, needle: str) -> int:
    return text.splitlines()[line - 1].index(needle)


def test_a_clean_grammar_checks_and_declares_a_deduction() -> None:
    a = analyse(GOOD)
    assert a.diagnostics == []
    assert a.symbols["G"].kind == "deduction"


def test_an_unbound_conclusion_variable_is_reported_on_its_token() -> None:
    text = GOOD.replace("span(I, J, S) #", "span(I, J, Fwd(S, T)) #").replace(
        "atoms S,", "atoms Fwd, S,"
    )
    [d] = messages(text)
    assert d.code == "E0802" and "'T'" in d.message and "rule 's'" in d.message
    assert (d.range.line, d.range.col) == (3, _col(text, 4, "T))"))


def test_an_unknown_atom_is_reported_with_a_suggestion() -> None:
    text = GOOD.replace("span(K, J, VP) ⊢", "span(K, J, vp) ⊢")
    [d] = messages(text)
    assert d.code == "E0801" and d.suggestion == "did you mean 'VP'?"
    assert (d.range.line, d.range.col) == (3, _col(text, 4, "vp"))


def test_an_arity_mismatch_names_both_uses() -> None:
    text = GOOD.replace('"runs" : VP = runs', '"runs" : VP = span(runs)')
    [d] = messages(text)
    assert d.code == "E0803"
    assert d.message == "'span' takes 1 argument in the lexicon entry \"runs\" but 3 in rule 's'"


def test_the_unreachable_start_symbol_is_reported_on_the_option() -> None:
    assert diagnose(GOOD.replace('"john" : NP', '"john" : VP')) == [("E0804", 2)]
    text = GOOD.replace("⊢ span(I, J, S)", "⊢ span(I, J, VP)")  # no rule concludes S
    [d] = messages(text)
    assert d.code == "E0804" and "'S'" in d.message
    assert (d.range.line, d.range.col) == (1, _col(text, 2, "S, depth"))


def test_options_are_checked() -> None:
    text = GOOD.replace("semiring=Viterbi", "semring=Viterbi").replace("depth=2", "depth=x")
    codes = [(d.code, d.message.split(" (")[0]) for d in messages(text)]
    assert codes == [
        ("E0805", "unknown deduction option 'semring'"),
        ("E0805", "depth must be a non-negative integer"),
    ]
