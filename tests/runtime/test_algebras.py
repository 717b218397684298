"""Finite-set morphisms as matrices under the eight algebras."""

import itertools
import math

import pytest
import torch
from irkit import fin, module, morph, ref

from quivers.core.vocabulary import ALGEBRAS
from quivers.runtime.algebras import get_algebra
from quivers.runtime.ir import Compose, Identity, LetDecl, Ref, Repeat, Stack


def _chain(algebra, role="latent", sizes=(3, 4, 2)):
    a, b, c = (fin(n) for n in sizes)
    f = morph("f", a, b, role)
    g = morph("g", b, c, role)
    built = module(f, g, lets=[LetDecl("fg", Compose(ref(f), ref(g)))], algebra=algebra)
    return built, built.morphisms["f"], built.morphisms["g"], built.lets["fg"]


def _naive(alg, a, b):
    """Contraction written out entry by entry."""
    out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype)
    for i in range(a.shape[0]):
        for k in range(b.shape[1]):
            out[i, k] = alg.plus(alg.times(a[i, :], b[:, k]), dim=0)
    return out


def test_markov_composition_is_matrix_product():
    _, f, g, fg = _chain("markov", role="kernel")
    rf, rg = f.relation(), g.relation()
    assert torch.allclose(rf.sum(-1), torch.ones(3))  # row-stochastic
    assert torch.allclose(fg.relation(), rf @ rg)


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
def test_composition_matches_naive_contraction(name):
    _, f, g, fg = _chain(name)
    alg = get_algebra(name)
    assert torch.allclose(fg.relation(), _naive(alg, f.relation(), g.relation()))


@pytest.mark.parametrize("name", sorted(ALGEBRAS))
def test_identity_is_a_unit(name):
    a, b = fin(3), fin(4)
    f = morph("f", a, b, "latent")
    e = Compose(Identity(a), ref(f))
    built = module(f, lets=[LetDecl("e", e)], algebra=name)
    assert torch.allclose(built.lets["e"].relation(), built.morphisms["f"].relation())


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


@pytest.mark.parametrize("name", ["markov", "max_plus", "tropical", "godel"])
@pytest.mark.parametrize("n_steps", [0, 1, 5, 8])
def test_repeat_at_run_time_is_n_fold_composition(name, n_steps):
    f = morph("f", fin(4), fin(4), "latent")
    built = module(f, lets=[LetDecl("r", Repeat(ref(f), None))], algebra=name)
    alg, rf = get_algebra(name), built.morphisms["f"].relation()
    want = alg.unit(4, rf)
    for _ in range(n_steps):
        want = alg.compose(want, rf)
    assert torch.allclose(built.lets["r"].relation(n_steps=n_steps), want, atol=1e-6)


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
