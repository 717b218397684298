"""Hand-lowered IR of the gallery's constructs (docs/examples/source), smaller sizes."""

import torch
from irkit import fin, module, morph, prod, real, ref
from irkit import sample as step
from torch import distributions as D

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
    SpaceT,
    Stack,
    Tensor,
    Var,
)


def test_hmm_forecast_with_run_time_horizon():
    regime, reading = fin(3, "Regime"), fin(5, "Reading")
    trans = morph("transition", regime, regime, "kernel")
    emit = morph("emission", regime, reading, "kernel")
    forecast = Compose(Repeat(ref(trans), None), ref(emit))
    prog = ProgramDecl(
        "hmm",
        regime,
        prod(reading, reading),
        (),
        (
            step("today", ref(emit), reading, observed=True),
            step("later", Ref("forecast", regime, reading), reading, observed=True),
            ReturnStep(("today", "later")),
        ),
    )
    built = module(
        trans, emit, lets=[LetDecl("forecast", forecast)], programs=[prog], algebra="markov"
    )
    hmm = built.programs["hmm"]
    x = torch.tensor([0, 1, 2, 2])
    out = hmm.rsample(x, n_steps=3)
    assert out.shape == (4, 2) and out.dtype == torch.int64
    p = built.morphisms["transition"].relation()
    e = built.morphisms["emission"].relation()
    want = torch.linalg.matrix_power(p, 3) @ e
    assert torch.allclose(built.lets["forecast"].relation(n_steps=3), want, atol=1e-6)
    lj = hmm.log_joint(x, {"today": out[:, 0], "later": out[:, 1]}, n_steps=3)
    ref_lp = e[x, out[:, 0]].log().sum() + want[x, out[:, 1]].log().sum()
    assert torch.allclose(lj, ref_lp, rtol=1e-5)


def test_vae_observed_prior_and_exported_encoder():
    image, code = real(6, "Image"), real(2, "Code")
    prior = morph(
        "prior", image, code, "observed", observed_family="Normal", observed_args=(0.0, 1.0)
    )
    enc = morph("encoder", image, code, "kernel", "Normal")
    dec = morph("decoder", code, image, "kernel", "Normal")
    prog = ProgramDecl(
        "vae",
        image,
        image,
        (),
        (
            step("z", ref(prior), code),
            step("x_rec", ref(dec), image, args=("z",), observed=True),
            ReturnStep(("x_rec",)),
        ),
    )
    built = module(prior, enc, dec, programs=[prog])
    vae, encoder = built.programs["vae"], built.morphisms["encoder"]
    assert [n.split(".")[0] for n, _ in vae.named_parameters()] == ["_step_x_rec"] * 4
    x = torch.randn(5, 6)
    z = encoder.rsample(x)
    assert z.shape == (5, 2)
    lj = vae.log_joint(x, {"z": z, "x_rec": x})
    want = D.Normal(0.0, 1.0).log_prob(z).sum() + built.morphisms["decoder"].log_prob(z, x).sum()
    assert torch.allclose(lj, want, rtol=1e-5)
    assert vae.trace(x)["z"].trace.shape == (5, 2)
    assert vae.to(torch.float64).trace(x.double())["z"].trace.dtype == torch.float64


def test_lstm_cell_from_identity_tensor_program_in_scan():
    emb, cell, hid = real(3, "Embedded"), real(4, "Cell"), real(4, "Hidden")
    gate, state = SpaceT("unit", 4, "Gate"), prod(cell, hid)
    tok = fin(7, "Token")
    tok_embed = morph("tok_embed", tok, emb, "embed")
    gates = [
        morph(n, prod(emb, hid), gate, "kernel", "LogitNormal", fixed={"scale": 0.05})
        for n in ("forget_gate", "input_gate", "output_gate")
    ]
    cand = morph("candidate", prod(emb, hid), cell, "kernel", "Normal", fixed={"scale": 0.05})
    split_state = ProgramDecl(
        "split_state", state, prod(cell, hid), ("c", "h"), (ReturnStep(("c", "h")),)
    )
    # the checker may lower `Embedded * Cell * Hidden` nested; parameters name its leaves
    step_dom = prod(prod(emb, cell), hid)
    tanh = lambda v: Call("tanh", (v,))  # noqa: E731
    lstm_step = ProgramDecl(
        "lstm_step",
        step_dom,
        state,
        ("x", "c", "h"),
        (
            step("f", ref(gates[0]), gate, args=("x", "h")),
            step("i", ref(gates[1]), gate, args=("x", "h")),
            step("o", ref(gates[2]), gate, args=("x", "h")),
            step("g", ref(cand), cell, args=("x", "h")),
            LetStep(
                "c_next",
                BinOp("+", BinOp("*", Var("f"), Var("c")), BinOp("*", Var("i"), tanh(Var("g")))),
                cell,
            ),
            LetStep("h_next", BinOp("*", Var("o"), tanh(Var("c_next"))), hid),
            ReturnStep(("c_next", "h_next")),
        ),
    )
    lstm_cell = Compose(
        Tensor(Identity(emb), Ref("split_state", state, prod(cell, hid))),
        Ref("lstm_step", step_dom, state),
    )
    encoder = Compose(ref(tok_embed), Scan(Ref("lstm_cell", prod(emb, state), state), emb, state))
    built = module(
        tok_embed,
        *gates,
        cand,
        programs=[split_state, lstm_step],
        lets=[LetDecl("lstm_cell", lstm_cell), LetDecl("encoder", encoder)],
    )
    enc = built.lets["encoder"]
    ids = torch.randint(0, 7, (2, 5))
    tr, s_T, lp = enc.sample_with_log_prob(ids)
    assert len(tr) == 4 and all(t.shape == (2, 5, 4) for t in tr)
    assert s_T.shape == (2, 8) and lp.shape == (2,)
    assert bool(((tr[0] > 0) & (tr[0] < 1)).all())
    assert torch.allclose(enc.log_prob(ids, tr), lp, rtol=1e-5)
    assert torch.allclose(enc.value(ids, tr), s_T, atol=1e-6)


def test_transformer_block_fan_replicate_stack_and_mean():
    stream, head_out, tok = real(8, "Stream"), real(2, "HeadOut"), fin(11, "Token")
    emb = real(4, "Embedded")
    tok_embed = morph("tok_embed", tok, emb, "embed")
    in_proj = morph(
        "in_proj", prod(emb, emb, emb), stream, "kernel", "Normal", fixed={"scale": 0.01}
    )
    head = morph("head", stream, head_out, "kernel", "Normal", fixed={"scale": 0.01}, replicate=4)
    out_proj = morph(
        "out_proj", prod(*[head_out] * 4), stream, "kernel", "Normal", fixed={"scale": 0.01}
    )
    lm_head = morph("lm_head", stream, tok, "kernel", "Categorical")
    mean = lambda v: Call("mean", (v,))  # noqa: E731
    block = ProgramDecl(
        "block",
        stream,
        stream,
        ("x",),
        (
            LetStep("mu", mean(Var("x")), real(1)),
            LetStep("xc", BinOp("-", Var("x"), Var("mu")), stream),
            LetStep("var", mean(BinOp("*", Var("xc"), Var("xc"))), real(1)),
            LetStep(
                "xn",
                BinOp("/", Var("xc"), Call("sqrt", (BinOp("+", Var("var"), Num(1e-5)),))),
                stream,
            ),
            step(
                "heads", Fan((ref(head),), replicated="head"), prod(*[head_out] * 4), args=("xn",)
            ),
            step("attended", ref(out_proj), stream, args=("heads",)),
            LetStep("out", BinOp("+", Var("x"), Var("attended")), stream),
            ReturnStep(("out",)),
        ),
    )
    window = Tensor(Tensor(ref(tok_embed), ref(tok_embed)), ref(tok_embed))
    encoder = Compose(Compose(window, ref(in_proj)), Stack(Ref("block", stream, stream), 2))
    ctx = prod(tok, tok, tok)
    prog = ProgramDecl(
        "lm",
        ctx,
        tok,
        (),
        (
            step("z", Ref("encoder", ctx, stream), stream),
            step("y", ref(lm_head), tok, args=("z",), observed=True),
            ReturnStep(("y",)),
        ),
    )
    built = module(
        tok_embed,
        in_proj,
        head,
        out_proj,
        lm_head,
        programs=[block, prog],
        lets=[LetDecl("encoder", encoder)],
    )
    lm = built.programs["lm"]
    ids = torch.randint(0, 11, (5, 3))
    sites = lm.trace(ids)
    z = sites["z"].trace
    # (in_proj, stack) with stack = two blocks, each (heads: 4 traces, attended)
    assert z[0].shape == (5, 8) and len(z) == 2 and len(z[1]) == 2
    assert len(z[1][0]) == 2 and len(z[1][0][0]) == 4 and z[1][0][1].shape == (5, 8)
    blocks = built.lets["encoder"].parts[-1].parts
    w = [b._step_attended.source.net.layers[0].weight for b in blocks]
    assert not torch.equal(w[0], w[1])  # stack: independent copies
    total = lm.log_joint(ids, {"z": z, "y": sites["y"].trace})
    assert torch.allclose(total, sites["z"].log_prob.sum() + sites["y"].log_prob.sum(), rtol=1e-5)


def test_bidirectional_encoder_splits_id_columns():
    tok, emb, hid = fin(9, "Token"), real(3, "Embedded"), real(4, "Hidden")
    tok_embed = morph("tok_embed", tok, emb, "embed")
    fwd = morph("fwd", prod(emb, hid), hid, "kernel", "Normal", fixed={"scale": 0.1})
    bwd = morph("bwd", prod(emb, hid), hid, "kernel", "Normal", fixed={"scale": 0.1})
    enc = Tensor(
        Compose(ref(tok_embed), Scan(ref(fwd), emb, hid)),
        Compose(ref(tok_embed), Scan(ref(bwd), emb, hid)),
    )
    built = module(tok_embed, fwd, bwd, lets=[LetDecl("enc", enc)])
    ids = torch.randint(0, 9, (2, 6))
    x = torch.stack([ids, ids.flip(1)], -1)
    (tf, tb), h, lp = built.lets["enc"].sample_with_log_prob(x)
    assert tf.shape == tb.shape == (2, 6, 4) and h.shape == (2, 8)
    assert torch.equal(h, torch.cat([tf[:, -1], tb[:, -1]], -1))


def test_gaussian_mixture_table_kernels():
    group, cluster, meas = fin(4), fin(3), real(2)
    weights = morph("weights", group, cluster, "kernel", "Categorical")
    comp = morph("component", cluster, meas, "kernel", "Normal")
    prog = ProgramDecl(
        "gm",
        group,
        meas,
        (),
        (
            step("z", ref(weights), cluster),
            step("y", ref(comp), meas, args=("z",), observed=True),
            ReturnStep(("y",)),
        ),
    )
    built = module(weights, comp, programs=[prog])
    gm = built.programs["gm"]
    g = torch.randint(0, 4, (10,))
    sites = gm.trace(g)
    z, y = sites["z"].trace, sites["y"].trace
    assert z.dtype == torch.int64 and y.shape == (10, 2)
    w = torch.log_softmax(built.morphisms["weights"].source.weight, -1)
    assert torch.allclose(sites["z"].log_prob, w[g, z])
