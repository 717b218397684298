"""Finite-set morphisms as matrices under the nine algebras.

Expected values come from ``algebra_oracle``: each algebra's carrier, times, plus and
unit written out in plain Python from its row in docs/language.md section 9, so a
wrong ``plus`` or ``times`` in the runtime cannot agree with itself.
"""

import itertools
import math

import algebra_oracle as oracle
import pytest
import torch
from irkit import fin, module, morph, ref

from quivers.core.vocabulary import ALGEBRAS
from quivers.runtime.algebras import get_algebra
from quivers.runtime.ir import Compose, Fan, Identity, LetDecl, Ref, Repeat, Stack, Tensor


def _chain(algebra, role="latent", sizes=(3, 4, 2)):
    a, b, c = (fin(n) for n in sizes)
    f = morph("f", a, b, role)
    g = morph("g", b, c, role)
    built = module(f, g, lets=[LetDecl("fg", Compose(ref(f), ref(g)))], algebra=algebra)
    return built, built.morphisms["f"], built.morphisms["g"], built.lets["fg"]


def _probs(built, name):
    """The latent relation's values p = sigmoid(logit), computed in Python."""
    logits = built.morphisms[name].logits.detach().tolist()
    return [[oracle.sigmoid(v) for v in row] for row in logits]


def _matrix(t):
    return t.detach().double().tolist()


def test_the_oracle_has_every_algebra():
    assert set(oracle.ORACLE) == set(ALGEBRAS)


def test_noisy_or_differs_from_max():
    """The oracle itself tells the algebras apart on a small case."""
    a, b = [[0.5, 0.5]], [[0.5], [0.5]]
    assert oracle.compose("product_fuzzy", a, b) == [[0.4375]]  # 1 - (1 - 1/4)^2
    assert oracle.compose("godel", a, b) == [[0.5]]
    assert oracle.compose("lukasiewicz", [[0.5, 0.75]], [[0.75], [0.5]]) == [[0.25]]


def test_markov_composition_is_matrix_product():
    _, f, g, fg = _chain("markov", role="kernel")
    rf, rg = f.relation(), g.relation()
    assert torch.allclose(rf.sum(-1), torch.ones(3))  # row-stochastic
    assert torch.allclose(fg.relation(), rf @ rg)


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
def test_carrier_of_a_latent_relation(name):
    built, f, _, _ = _chain(name)
    want = oracle.carrier(name, _probs(built, "f"))
    assert oracle.close(_matrix(f.relation()), want)


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
def test_composition_matches_the_oracle(name):
    built, f, g, fg = _chain(name)
    want = oracle.compose(
        name, oracle.carrier(name, _probs(built, "f")), oracle.carrier(name, _probs(built, "g"))
    )
    assert oracle.close(_matrix(fg.relation()), want)


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
def test_tensor_and_fan_combine_entries_with_times(name):
    a, b, c, d = fin(2), fin(3), fin(2), fin(2)
    f, g, h = morph("f", a, b, "latent"), morph("g", c, d, "latent"), morph("h", a, d, "latent")
    built = module(
        f,
        g,
        h,
        lets=[LetDecl("t", Tensor(ref(f), ref(g))), LetDecl("fan", Fan((ref(f), ref(h))))],
        algebra=name,
    )
    pf, pg, ph = (oracle.carrier(name, _probs(built, n)) for n in "fgh")
    assert oracle.close(_matrix(built.lets["t"].relation()), oracle.tensor(name, pf, pg))
    assert oracle.close(_matrix(built.lets["fan"].relation()), oracle.fan(name, pf, ph))


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
def test_identity_is_a_unit(name):
    a, b = fin(3), fin(4)
    f = morph("f", a, b, "latent")
    e = Compose(Identity(a), ref(f))
    right = Compose(ref(f), Identity(b))
    built = module(
        f, lets=[LetDecl("e", e), LetDecl("i", Identity(a)), LetDecl("r", right)], algebra=name
    )
    assert torch.allclose(built.lets["e"].relation(), built.morphisms["f"].relation())
    assert oracle.close(_matrix(built.lets["i"].relation()), oracle.unit(name, 3))
    want = oracle.carrier(name, _probs(built, "f"))
    assert oracle.close(_matrix(built.lets["e"].relation()), want)
    assert oracle.close(_matrix(built.lets["r"].relation()), want)


def test_carriers():
    p = torch.tensor([[0.2, 0.7]])
    assert torch.allclose(get_algebra("markov").from_prob(p), p)
    assert torch.allclose(get_algebra("max_plus").from_prob(p), p.log())
    assert torch.allclose(get_algebra("log_prob").from_prob(p), p.log())
    assert torch.allclose(get_algebra("tropical").from_prob(p), -p.log())
    assert torch.equal(get_algebra("boolean").from_prob(p), torch.tensor([[0.0, 1.0]]))


def test_max_plus_hmm_chain_scores_the_viterbi_path():
    """trans^steps >> emit under max_plus is the best path's log score (Viterbi)."""
    n, m, steps = 3, 2, 4
    trans = morph("trans", fin(n), fin(n), "kernel")  # row-stochastic transitions
    emit = morph("emit", fin(n), fin(m), "kernel")  # row-stochastic emissions
    built = module(
        trans,
        emit,
        lets=[LetDecl("chain", Compose(Repeat(ref(trans), steps), ref(emit)))],
        algebra="max_plus",
    )
    chain = built.lets["chain"].relation().detach()
    p = torch.softmax(built.morphisms["trans"].logits.detach(), -1)
    q = torch.softmax(built.morphisms["emit"].logits.detach(), -1)
    for i, o in itertools.product(range(n), range(m)):
        best = max(
            sum(math.log(p[s, t]) for s, t in itertools.pairwise((i, *path)))
            + math.log(q[path[-1], o])
            for path in itertools.product(range(n), repeat=steps)
        )
        assert math.isclose(float(chain[i, o]), best, rel_tol=1e-5)


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
@pytest.mark.parametrize("n_steps", [0, 1, 2, 5, 8])
def test_repeat_at_run_time_is_n_fold_composition(name, n_steps):
    f = morph("f", fin(4), fin(4), "latent")
    built = module(f, lets=[LetDecl("r", Repeat(ref(f), None))], algebra=name)
    alg, rf = get_algebra(name), built.morphisms["f"].relation()
    want = alg.unit(4, rf)
    for _ in range(n_steps):
        want = alg.compose(want, rf)
    assert torch.allclose(built.lets["r"].relation(n_steps=n_steps), want, atol=1e-6)
    expected = oracle.power(name, oracle.carrier(name, _probs(built, "f")), n_steps)
    assert oracle.close(_matrix(built.lets["r"].relation(n_steps=n_steps)), expected)


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
def test_repeat_equals_the_chain_written_out(name):
    """Also under product_fuzzy, whose composition is not associative."""
    f = morph("f", fin(4), fin(4), "latent")
    chain = Compose(Compose(Compose(Compose(ref(f), ref(f)), ref(f)), ref(f)), ref(f))
    built = module(f, lets=[LetDecl("r", Repeat(ref(f), 5)), LetDecl("c", chain)], algebra=name)
    assert torch.allclose(built.lets["r"].relation(), built.lets["c"].relation(), atol=1e-6)


def test_product_fuzzy_composition_is_not_associative():
    """Why repeat is taken left to right there: the two bracketings differ."""
    a = [[0.9, 0.8], [0.3, 0.7]]
    left = oracle.compose("product_fuzzy", oracle.compose("product_fuzzy", a, a), a)
    right = oracle.compose("product_fuzzy", a, oracle.compose("product_fuzzy", a, a))
    assert not oracle.close(left, right)


def test_stack_has_independent_copies():
    f = morph("f", fin(3), fin(3), "latent")
    built = module(f, lets=[LetDecl("s", Stack(ref(f), 3))], algebra="markov")
    s = built.lets["s"]
    ws = [p.logits for p in s.parts]
    assert len({id(w) for w in ws}) == 3 and not torch.equal(ws[0], ws[1])
    want = ws[0].sigmoid() @ ws[1].sigmoid() @ ws[2].sigmoid()
    assert torch.allclose(s.relation(), want)


def test_relation_as_a_kernel_samples_its_rows():
    f = morph("f", fin(2), fin(3), "kernel")
    built = module(f, algebra="markov")
    rel = built.morphisms["f"]
    x = torch.zeros(20000, dtype=torch.long)
    y = rel.rsample(x)
    freq = torch.bincount(y, minlength=3).float() / len(y)
    assert torch.allclose(freq, rel.relation()[0].detach(), atol=0.02)
    lp = rel.log_prob(x[:5], y[:5])
    assert torch.allclose(lp, rel.relation()[0, y[:5]].log())


def test_ref_to_a_relation_let():
    f = morph("f", fin(2), fin(2), "latent")
    built = module(
        f,
        lets=[
            LetDecl("a", Compose(ref(f), ref(f))),
            LetDecl("b", Compose(Ref("a", fin(2), fin(2)), ref(f))),
        ],
        algebra="markov",
    )
    r = built.morphisms["f"].relation()
    assert torch.allclose(built.lets["b"].relation(), r @ r @ r)


@pytest.mark.parametrize("name", ["product_fuzzy", "markov"])
def test_a_zero_weight_is_an_impossible_successor(name):
    # log 0 is -inf, not log(tiny) = -87 in float32: an impossible step never scores as
    # merely unlikely; the possible entries keep finite gradients
    rows = torch.tensor([[0.0, 0.25, 0.75], [0.0, 0.0, 0.0]], requires_grad=True)
    logits = get_algebra(name).row_logits(rows)
    logp = torch.log_softmax(logits, dim=-1)
    assert logp[0, 0].item() == -math.inf
    assert logp[0, 1].item() == pytest.approx(math.log(0.25))
    assert logp[0, 2].item() == pytest.approx(math.log(0.75))
    logp[0, 1:].sum().backward()
    assert rows.grad is not None and torch.isfinite(rows.grad).all()
    # a row with no successor has no distribution: it stays finite (uniform), never NaN
    assert torch.isfinite(logp[1]).all()
