"""Kleisli composition, @, fan, repeat, stack, identity and scan on kernels."""

import pytest
import torch
from irkit import fin, module, morph, prod, real, ref
from irkit import sample as step

from quivers.runtime.errors import QvrDataError
from quivers.runtime.ir import (
    BinOp,
    Call,
    Compose,
    Fan,
    Identity,
    LetDecl,
    LetStep,
    Num,
    ProgramDecl,
    Ref,
    Repeat,
    ReturnStep,
    Scan,
    Stack,
    Tensor,
    Var,
)


def _normal(name, dom, cod, **kw):
    return morph(name, dom, cod, "kernel", "Normal", **kw)


def test_kleisli_trace_is_the_tuple_of_stochastic_parts():
    f, g = _normal("f", real(2), real(3)), _normal("g", real(3), real(1))
    built = module(f, g, lets=[LetDecl("fg", Compose(ref(f), ref(g)))])
    fg, kf, kg = built.lets["fg"], built.morphisms["f"], built.morphisms["g"]
    x = torch.randn(5, 2)
    (tf, tg), value, lp = fg.sample_with_log_prob(x)
    assert tf.shape == (5, 3) and tg.shape == (5, 1) and torch.equal(value, tg)
    assert torch.allclose(lp, kf.log_prob(x, tf) + kg.log_prob(tf, tg))
    assert torch.allclose(fg.log_prob(x, (tf, tg)), lp)
    assert torch.equal(fg.value(x, (tf, tg)), tg)


def test_kleisli_with_one_stochastic_part_has_a_single_trace():
    e = morph("e", fin(4), real(2), "embed")
    k = _normal("k", real(2), real(3))
    built = module(e, k, lets=[LetDecl("ek", Compose(ref(e), ref(k)))])
    tr = built.lets["ek"].rsample(torch.tensor([0, 3]))
    assert isinstance(tr, torch.Tensor) and tr.shape == (2, 3)


def test_embed_acts_per_position():
    e = morph("e", fin(4), real(2), "embed")
    emb = module(e).morphisms["e"]
    ids = torch.tensor([[0, 1, 2], [3, 3, 0]])
    assert torch.equal(emb(ids), emb.weight[ids])


def test_tensor_splits_its_input():
    f, g = _normal("f", real(2), real(3)), _normal("g", fin(4), real(1))
    built = module(f, g, lets=[LetDecl("t", Tensor(ref(f), ref(g)))])
    t, kf, kg = built.lets["t"], built.morphisms["f"], built.morphisms["g"]
    xf, xg = torch.randn(6, 2), torch.randint(0, 4, (6,))
    x = torch.cat([xf, xg[:, None].float()], -1)
    (tf, tg), value, lp = t.sample_with_log_prob(x)
    assert value.shape == (6, 4) and torch.equal(value, torch.cat([tf, tg], -1))
    assert torch.allclose(lp, kf.log_prob(xf, tf) + kg.log_prob(xg, tg))


def test_fan_shares_its_input():
    f, g = _normal("f", real(2), real(3)), _normal("g", real(2), real(1))
    built = module(f, g, lets=[LetDecl("fan", Fan((ref(f), ref(g))))])
    fan, kf, kg = built.lets["fan"], built.morphisms["f"], built.morphisms["g"]
    x = torch.randn(6, 2)
    (tf, tg), value, lp = fan.sample_with_log_prob(x)
    assert value.shape == (6, 4)
    assert torch.allclose(lp, kf.log_prob(x, tf) + kg.log_prob(x, tg))


def test_fan_of_a_replicated_morphism():
    f = _normal("f", real(2), real(1), replicate=3)
    built = module(f, lets=[LetDecl("fan", Fan((ref(f),), replicated="f"))])
    copies = built.replicas["f"]
    assert len(copies) == 3
    w = [c.source.net.layers[0].weight for c in copies]
    assert not torch.equal(w[0], w[1])
    tr, value, _ = built.lets["fan"].sample_with_log_prob(torch.randn(4, 2))
    assert len(tr) == 3 and value.shape == (4, 3)


def test_repeat_shares_weights_and_stack_does_not():
    f = _normal("f", real(2), real(2))
    built = module(
        f,
        lets=[
            LetDecl("r", Repeat(ref(f), 3)),
            LetDecl("rn", Repeat(ref(f), None)),
            LetDecl("s", Stack(ref(f), 3)),
        ],
    )
    kf, r, rn, s = built.morphisms["f"], built.lets["r"], built.lets["rn"], built.lets["s"]
    x = torch.randn(4, 2)
    tr, value, lp = r.sample_with_log_prob(x)
    assert len(tr) == 3 and torch.equal(value, tr[-1])
    want = kf.log_prob(x, tr[0]) + kf.log_prob(tr[0], tr[1]) + kf.log_prob(tr[1], tr[2])
    assert torch.allclose(lp, want)
    assert len(rn.rsample(x, n_steps=5)) == 5
    with pytest.raises(QvrDataError, match="n_steps"):
        rn.rsample(x)
    assert sum(1 for _ in r.parameters()) == sum(1 for _ in kf.parameters())
    assert sum(1 for _ in s.parameters()) == 3 * sum(1 for _ in kf.parameters())
    w = [p.source.net.layers[0].weight for p in s.parts]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[0], kf.source.net.layers[0].weight)


def test_identity_on_a_continuous_object():
    f = _normal("f", real(2), real(2))
    built = module(f, lets=[LetDecl("i", Compose(Identity(real(2)), ref(f)))])
    x = torch.randn(3, 2)
    tr = built.lets["i"].rsample(x)
    assert tr.shape == (3, 2)
    assert torch.allclose(built.lets["i"].log_prob(x, tr), built.morphisms["f"].log_prob(x, tr))


def test_scan_of_a_kernel_loops_and_scores_exactly():
    cell = _normal("cell", prod(real(2), real(3)), real(3), fixed={"scale": 0.5})
    built = module(cell, lets=[LetDecl("s", Scan(ref(cell), real(2), real(3)))])
    s, k = built.lets["s"], built.morphisms["cell"]
    x = torch.randn(4, 6, 2)
    traj, h_t, lp = s.sample_with_log_prob(x)
    assert traj.shape == (4, 6, 3) and torch.equal(h_t, traj[:, -1])
    h, want = torch.zeros(4, 3), torch.zeros(4)
    for t in range(6):
        want = want + k.log_prob(torch.cat([x[:, t], h], -1), traj[:, t])
        h = traj[:, t]
    assert torch.allclose(lp, want, rtol=1e-5)
    assert torch.allclose(s.log_prob(x, traj), want, rtol=1e-5)


def test_scan_over_token_ids():
    cell = _normal("cell", prod(fin(5), real(3)), real(3))
    built = module(cell, lets=[LetDecl("s", Scan(ref(cell), fin(5), real(3)))])
    ids = torch.randint(0, 5, (2, 7))
    traj = built.lets["s"].rsample(ids)
    assert traj.shape == (2, 7, 3)


def _gru_cell_module():
    """A GRU-like cell written as a program with let arithmetic (Cho et al., 2014)."""
    x_t, h_t = real(2, "X"), real(3, "H")
    xh = prod(x_t, h_t)
    gate = _normal("gate", xh, h_t, fixed={"scale": 0.2})
    cand = _normal("cand", xh, h_t, fixed={"scale": 0.2})
    gru = ProgramDecl(
        "gru",
        xh,
        h_t,
        ("x", "h"),
        (
            step("z", ref(gate), h_t, args=("x", "h")),
            LetStep("u", Call("sigmoid", (Var("z"),)), h_t),
            step("c", ref(cand), h_t, args=("x", "h")),
            LetStep(
                "hn",
                BinOp(
                    "+",
                    BinOp("*", Var("u"), Var("h")),
                    BinOp("*", BinOp("-", Num(1.0), Var("u")), Call("tanh", (Var("c"),))),
                ),
                h_t,
            ),
            ReturnStep(("hn",)),
        ),
    )
    scan = Scan(Ref("gru", xh, h_t), x_t, h_t)
    return module(gate, cand, programs=[gru], lets=[LetDecl("rnn", scan)])


def test_program_as_a_scan_cell():
    built = _gru_cell_module()
    rnn, gate, cand = built.lets["rnn"], built.morphisms["gate"], built.morphisms["cand"]
    x = torch.randn(4, 5, 2)
    (z, c), h_T, lp = rnn.sample_with_log_prob(x)
    assert z.shape == c.shape == (4, 5, 3)
    h, want = torch.zeros(4, 3), torch.zeros(4)
    for t in range(5):
        xh = torch.cat([x[:, t], h], -1)
        want = want + gate.log_prob(xh, z[:, t]) + cand.log_prob(xh, c[:, t])
        u = torch.sigmoid(z[:, t])
        h = u * h + (1 - u) * torch.tanh(c[:, t])
    assert torch.allclose(h_T, h, atol=1e-6)
    assert torch.allclose(lp, want, rtol=1e-5)
    assert torch.allclose(rnn.log_prob(x, (z, c)), want, rtol=1e-5)
    assert torch.allclose(rnn.value(x, (z, c)), h, atol=1e-6)


def test_scan_fast_sampling_path_draws_what_the_cell_draws():
    cell = _normal("cell", prod(real(2), real(3)), real(3), fixed={"scale": 0.5})
    gam = morph("g", prod(real(2), real(3)), real(3), "kernel", "Gamma")
    built = module(
        cell,
        gam,
        lets=[
            LetDecl("s", Scan(ref(cell), real(2), real(3))),
            LetDecl("sg", Scan(ref(gam), real(2), real(3))),
        ],
    )
    x = torch.randn(4, 6, 2)
    for name, k in (("s", built.morphisms["cell"]), ("sg", built.morphisms["g"])):
        torch.manual_seed(3)
        traj = built.lets[name].rsample(x)
        torch.manual_seed(3)
        h, hs = torch.zeros(4, 3), []
        for t in range(6):
            h = k.run(torch.cat([x[:, t], h], -1), None, False)[0]
            hs.append(h)
        assert torch.allclose(traj, torch.stack(hs, 1))


def test_program_cell_batched_scoring_equals_the_step_loop():
    built = _gru_cell_module()
    rnn = built.lets["rnn"]
    x = torch.randn(3, 6, 2)
    tr = rnn.rsample(x)
    batched = rnn.log_prob(x, tr)
    value = rnn.value(x, tr)
    rnn.cell.position_batchable = False  # force the general per-step loop
    assert torch.allclose(batched, rnn.log_prob(x, tr), rtol=1e-6)
    assert torch.allclose(value, rnn.value(x, tr))


def test_finite_identity_adds_no_trace():
    k = morph("k", fin(3), real(2), "kernel", "Normal")
    built = module(k, lets=[LetDecl("ik", Compose(Identity(fin(3)), ref(k)))], algebra="markov")
    ids = torch.tensor([0, 2])
    tr = built.lets["ik"].rsample(ids)
    assert isinstance(tr, torch.Tensor) and tr.shape == (2, 2)
    assert torch.allclose(
        built.lets["ik"].log_prob(ids, tr), built.morphisms["k"].log_prob(ids, tr)
    )


def test_scan_with_a_finite_state_relation_cell():
    obs, state = fin(4), fin(3)
    cell = morph("cell", prod(obs, state), state, "kernel")  # row-stochastic (obs, state) -> state
    built = module(cell, lets=[LetDecl("s", Scan(ref(cell), obs, state))], algebra="markov")
    s, rel = built.lets["s"], built.morphisms["cell"].relation()
    ids = torch.randint(0, 4, (5, 7))
    traj, h_T, lp = s.sample_with_log_prob(ids)
    assert traj.shape == (5, 7) and traj.dtype == torch.int64 and torch.equal(h_T, traj[:, -1])
    h, want = torch.zeros(5, dtype=torch.long), torch.zeros(5)
    for t in range(7):
        want = want + rel[ids[:, t] * 3 + h, traj[:, t]].log()
        h = traj[:, t]
    assert torch.allclose(lp, want, rtol=1e-5)
