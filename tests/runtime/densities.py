"""Hand-written log densities of the gallery's models (docs/examples/source/*.qvr).

Each ``<example>(P, x, host, traces, run)`` recomputes, from the compiled model's own
parameters and plain torch arithmetic (no runtime kernel, and none of its ``log_prob``,
``trace`` or ``run`` methods), the exact log density of every site given its trace, as
qvr-spec sections 3-6 define it: a ``(batch,)`` tensor for a local site, a 0-d one for a
global site. The densities are written out as formulas so that a mistake in the
runtime's families cannot cancel one here. Parameters are read by name through
:class:`Params`, which checks their shapes and that every learnable parameter of the
model is used (a stray learned scale, an unshared copy of a shared table or a missing
replica would each show up there).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ------------------------------------------------------------------ densities


def normal(v: Tensor, loc: Tensor | float, scale: Tensor | float) -> Tensor:
    """Elementwise log N(v; loc, scale)."""
    scale = torch.as_tensor(scale, dtype=v.dtype)
    return -((v - loc) ** 2) / (2 * scale**2) - torch.log(scale) - HALF_LOG_2PI


def half_normal(v: Tensor, scale: float) -> Tensor:
    """log density of |N(0, scale)| at v >= 0."""
    return math.log(2.0) + normal(v, 0.0, scale)


def logit_normal(v: Tensor, loc: Tensor, scale: float) -> Tensor:
    """v = sigmoid(u), u ~ N(loc, scale): N(logit v) times |du/dv| = 1 / (v (1 - v))."""
    log_v, log_1mv = torch.log(v), torch.log1p(-v)
    return normal(log_v - log_1mv, loc, scale) - log_v - log_1mv


def categorical(y: Tensor, logits: Tensor) -> Tensor:
    """log softmax(logits)[y] per row."""
    return (logits - torch.logsumexp(logits, -1, keepdim=True)).gather(-1, y[..., None])[..., 0]


def half_cauchy(v: Tensor, scale: float) -> Tensor:
    """log density of |Cauchy(0, scale)| at v >= 0: 2 / (pi scale (1 + (v/scale)^2))."""
    return math.log(2.0 / (math.pi * scale)) - torch.log1p((v / scale) ** 2)


def gamma(v: Tensor, shape: float, rate: float) -> Tensor:
    """log Gamma(v; shape, rate) = shape log rate - lgamma(shape) + (shape-1) log v - rate v."""
    return shape * math.log(rate) - math.lgamma(shape) + (shape - 1) * torch.log(v) - rate * v


def beta_density(v: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """log Beta(v; a, b) = (a-1) log v + (b-1) log(1-v) - log B(a, b)."""
    log_b = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    return (a - 1) * torch.log(v) + (b - 1) * torch.log1p(-v) - log_b


def student_t(v: Tensor, df: float, loc: Tensor, scale: Tensor) -> Tensor:
    """log StudentT(v; df, loc, scale): the t density of (v - loc) / scale, over scale."""
    z = (v - loc) / scale
    norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return norm - torch.log(scale) - (df + 1) / 2 * torch.log1p(z * z / df)


def poisson(k: Tensor, rate: Tensor) -> Tensor:
    """log Poisson(k; rate) = k log rate - rate - log k!."""
    return k * torch.log(rate) - rate - torch.lgamma(k + 1)


def gamma_t(v: Tensor, shape: Tensor, rate: Tensor) -> Tensor:
    """log Gamma(v; shape, rate) with tensor parameters."""
    return shape * torch.log(rate) - torch.lgamma(shape) + (shape - 1) * torch.log(v) - rate * v


def negative_binomial(k: Tensor, r: Tensor, p: Tensor) -> Tensor:
    """torch's NegativeBinomial(r, p): C(k + r - 1, k) p^k (1 - p)^r (mean r p / (1 - p))."""
    log_c = torch.lgamma(k + r) - torch.lgamma(r) - torch.lgamma(k + 1)
    return log_c + k * torch.log(p) + r * torch.log1p(-p)


def bernoulli(y: Tensor, p: Tensor) -> Tensor:
    """log p for y = 1, log (1 - p) for y = 0."""
    y = y.to(p.dtype)
    return y * torch.log(p) + (1 - y) * torch.log1p(-p)


def rows(lp: Tensor) -> Tensor:
    """Sum over every axis but the first (the rows)."""
    return lp.reshape(lp.shape[0], -1).sum(1)


def layer_norm(x: Tensor) -> Tensor:
    """(x - mean) / sqrt(var + 1e-5) over the last axis (biased variance, no gain)."""
    xc = x - x.mean(-1, keepdim=True)
    return xc / torch.sqrt((xc * xc).mean(-1, keepdim=True) + 1e-5)


# ------------------------------------------------------------------ parameters


class Params:
    """A model's parameters by name, recording which ones the hand computation reads."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.p = dict(model.named_parameters())
        self.used: set[str] = set()

    def get(self, name: str, shape: tuple[int, ...]) -> Tensor:
        assert name in self.p, f"no parameter {name!r}; the model has {sorted(self.p)}"
        t = self.p[name]
        assert tuple(t.shape) == shape, f"{name}: shape {tuple(t.shape)}, expected {shape}"
        self.used.add(name)
        return t

    def only(self, prefix: str, shape: tuple[int, ...]) -> Tensor:
        """The one parameter under ``prefix`` (e.g. a table shared by every ``@`` copy)."""
        names = [n for n in self.p if n.startswith(prefix)]
        assert len(names) == 1, f"parameters under {prefix!r}: {names}"
        return self.get(names[0], shape)

    def net(self, prefix: str, widths: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
        """Affine layers ``prefix.layers.k`` of widths ``(n_in, h1, ..., n_out)``, tanh
        between them: ``linear`` has no hidden width, ``mlp(64)`` one of 64."""
        layers = [
            (
                self.get(f"{prefix}.layers.{k}.weight", (b, a)),
                self.get(f"{prefix}.layers.{k}.bias", (b,)),
            )
            for k, (a, b) in enumerate(zip(widths, widths[1:], strict=False))
        ]
        extra = f"{prefix}.layers.{len(layers)}.weight"
        assert extra not in self.p, f"{prefix}: more layers than widths {widths}"

        def apply(x: Tensor) -> Tensor:
            for k, (w, b) in enumerate(layers):
                x = x @ w.T + b
                if k < len(layers) - 1:
                    x = torch.tanh(x)
            return x

        return apply

    def unused(self) -> list[str]:
        return sorted(set(self.p) - self.used)


Sites = dict[str, Tensor]


# ------------------------------------------------------------------ examples


def vanilla_rnn_lm(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """h_t ~ N(mlp64([E x_t; h_{t-1}]), 0.1), h_0 = 0; next_token ~ Cat(mlp64(h_T))."""
    emb = P.get("_step_h.parts.0.weight", (256, 64))
    cell = P.net("_step_h.parts.1.cell.source.net", (64 + 128, 64, 128))
    head = P.net("_step_next_token.source.net", (128, 64, 256))
    traj = tr["h"]
    h = traj.new_zeros(x.shape[0], 128)
    lp_h = traj.new_zeros(x.shape[0])
    for t in range(x.shape[1]):
        lp_h = lp_h + rows(normal(traj[:, t], cell(torch.cat([emb[x[:, t]], h], -1)), 0.1))
        h = traj[:, t]  # the traced state, not the mean
    return {"h": lp_h, "next_token": categorical(tr["next_token"], head(h))}


def elman_rnn_lm(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """a_t ~ N(W [E x_t; h_{t-1}] + b, 0.05), h_t = tanh(a_t); the trace is a_1..a_T."""
    emb = P.get("_step_h.parts.0.weight", (128, 32))
    recur = P.net("_step_h.parts.1.cell._step_a.source.net", (32 + 64, 64))
    head = P.net("_step_next_token.source.net", (64, 64, 128))
    pre = tr["h"]
    h = pre.new_zeros(x.shape[0], 64)
    lp_h = pre.new_zeros(x.shape[0])
    for t in range(x.shape[1]):
        lp_h = lp_h + rows(normal(pre[:, t], recur(torch.cat([emb[x[:, t]], h], -1)), 0.05))
        h = torch.tanh(pre[:, t])
    return {"h": lp_h, "next_token": categorical(tr["next_token"], head(h))}


def gru_lm(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """Per step: z, r ~ LogitNormal(W [x; h], 0.05); c ~ N(W [x; r * h], 0.05);
    h <- (1 - z) * h + z * tanh(c). The trace is the (z, r, c) trajectories."""
    emb = P.get("_step_h.parts.0.weight", (128, 32))
    cell = "_step_h.parts.1.cell._step_"
    upd = P.net(cell + "z.source.net", (96, 64))
    rst = P.net(cell + "r.source.net", (96, 64))
    cand = P.net(cell + "c.source.net", (96, 64))
    head = P.net("_step_next_token.source.net", (64, 64, 128))
    zs, rs, cs = tr["h"]
    h = zs.new_zeros(x.shape[0], 64)
    lp_h = zs.new_zeros(x.shape[0])
    for t in range(x.shape[1]):
        e, z, r, c = emb[x[:, t]], zs[:, t], rs[:, t], cs[:, t]
        xh = torch.cat([e, h], -1)
        lp_h = lp_h + rows(logit_normal(z, upd(xh), 0.05))
        lp_h = lp_h + rows(logit_normal(r, rst(xh), 0.05))
        lp_h = lp_h + rows(normal(c, cand(torch.cat([e, r * h], -1)), 0.05))
        h = (1 - z) * h + z * torch.tanh(c)
    return {"h": lp_h, "next_token": categorical(tr["next_token"], head(h))}


def lstm_lm(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """Per step: f, i, o ~ LogitNormal(W [x; h], 0.05), g ~ N(W [x; h], 0.05);
    c <- f * c + i * tanh(g), h <- o * tanh(c); state (c, h), (0, 0) at the start;
    the head reads h_T only."""
    emb = P.get("_step_s.parts.0.weight", (128, 32))
    step = "_step_s.parts.1.cell.parts.1._step_"
    gate_f = P.net(step + "f.source.net", (96, 64))
    gate_i = P.net(step + "i.source.net", (96, 64))
    gate_o = P.net(step + "o.source.net", (96, 64))
    cand = P.net(step + "g.source.net", (96, 64))
    head = P.net("_step_next_token.parts.1.source.net", (64, 64, 128))
    fs, is_, os_, gs = tr["s"]
    c = fs.new_zeros(x.shape[0], 64)
    h = fs.new_zeros(x.shape[0], 64)
    lp_s = fs.new_zeros(x.shape[0])
    for t in range(x.shape[1]):
        xh = torch.cat([emb[x[:, t]], h], -1)
        f, i, o, g = fs[:, t], is_[:, t], os_[:, t], gs[:, t]
        lp_s = lp_s + rows(logit_normal(f, gate_f(xh), 0.05))
        lp_s = lp_s + rows(logit_normal(i, gate_i(xh), 0.05))
        lp_s = lp_s + rows(logit_normal(o, gate_o(xh), 0.05))
        lp_s = lp_s + rows(normal(g, cand(xh), 0.05))
        c = f * c + i * torch.tanh(g)
        h = o * torch.tanh(c)
    return {"s": lp_s, "next_token": categorical(tr["next_token"], head(h))}


def bidirectional_rnn(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """Two vanilla RNNs (own cells, one shared embedding), the forward one on column 0
    and the backward one on column 1; label ~ Cat(mlp64([h_T^fwd; h_T^bwd]))."""
    emb = P.get("_step_h.parts.0.parts.0.weight", (128, 32))
    cells = [P.net(f"_step_h.parts.{k}.parts.1.cell.source.net", (32 + 64, 64, 64)) for k in (0, 1)]
    head = P.net("_step_label.source.net", (128, 64, 3))
    lp_h = x.new_zeros(x.shape[0], dtype=emb.dtype)
    finals = []
    for col, (cell, traj) in enumerate(zip(cells, tr["h"], strict=True)):
        h = traj.new_zeros(x.shape[0], 64)
        for t in range(x.shape[1]):
            inp = torch.cat([emb[x[:, t, col]], h], -1)
            lp_h = lp_h + rows(normal(traj[:, t], cell(inp), 0.1))
            h = traj[:, t]
        finals.append(h)
    return {"h": lp_h, "label": categorical(tr["label"], head(torch.cat(finals, -1)))}


def transformer_lm(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """Window of 8 embeddings -> in_proj ~ N(linear, 0.01) -> two pre-norm blocks with
    their own weights (4 heads ~ N(mlp64(ln x), 0.01) side by side, attended ~
    N(linear(heads), 0.01), mid = x + attended, update ~ N(mlp256(ln mid), 0.01),
    out = mid + update) -> next_token ~ Cat(mlp64(out))."""
    emb = P.only("_step_z.parts.0.", (128, 16))  # one table for all 8 slots
    in_proj = P.net("_step_z.parts.1.source.net", (128, 128))
    head = P.net("_step_next_token.source.net", (128, 64, 128))
    z0, blocks = tr["z"]
    assert len(blocks) == 2
    s = emb[x].reshape(x.shape[0], 8 * 16)  # slot 0 first
    lp_z = rows(normal(z0, in_proj(s), 0.01))
    s = z0
    for k, (heads, attended, update) in enumerate(blocks):
        pre = f"_step_z.parts.2.parts.{k}._step_"
        head_nets = [P.net(f"{pre}heads.parts.{j}.source.net", (128, 64, 32)) for j in range(4)]
        out_proj = P.net(pre + "attended.source.net", (128, 128))
        ff = P.net(pre + "update.source.net", (128, 256, 128))
        xn = layer_norm(s)
        assert len(heads) == 4
        for net, draw in zip(head_nets, heads, strict=True):
            lp_z = lp_z + rows(normal(draw, net(xn), 0.01))
        lp_z = lp_z + rows(normal(attended, out_proj(torch.cat(heads, -1)), 0.01))
        mid = s + attended
        lp_z = lp_z + rows(normal(update, ff(layer_norm(mid)), 0.01))
        s = mid + update
    return {"z": lp_z, "next_token": categorical(tr["next_token"], head(s))}


def state_space(P: Params, y: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """Per step: y_hat ~ N(C z + b, 0.01), z' ~ N(W [y_t - y_hat; z] + b, 0.05), z_0 = 0;
    y_next ~ N(loc, softplus(raw)) with (loc, raw) = linear(z_T)."""
    predict = P.net("_step_z.cell._step_y_hat.source.net", (4, 2))
    update = P.net("_step_z.cell._step_z_next.source.net", (2 + 4, 4))
    emit = P.net("_step_y_next.source.net", (4, 2 + 2))
    y_hats, states = tr["z"]
    z = y.new_zeros(y.shape[0], 4)
    lp_z = y.new_zeros(y.shape[0])
    for t in range(y.shape[1]):
        y_hat = y_hats[:, t]
        lp_z = lp_z + rows(normal(y_hat, predict(z), 0.01))
        innovation = y[:, t] - y_hat
        lp_z = lp_z + rows(normal(states[:, t], update(torch.cat([innovation, z], -1)), 0.05))
        z = states[:, t]
    raw = emit(z)
    lp_y = rows(normal(tr["y_next"], raw[:, :2], F.softplus(raw[:, 2:])))
    return {"z": lp_z, "y_next": lp_y}


def gaussian_mixture(P: Params, g: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """z ~ Cat(softmax(W_z[g])); y ~ N(W_y[z, :2], softplus(W_y[z, 2:]))."""
    w_z = P.get("_step_z.source.weight", (4, 3))
    w_y = P.get("_step_y.source.weight", (3, 4))
    z, y = tr["z"], tr["y"]
    lp_y = rows(normal(y, w_y[z, :2], F.softplus(w_y[z, 2:])))
    return {"z": categorical(z, w_z[g]), "y": lp_y}


def hmm(P: Params, regime: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """today ~ E[regime]; later ~ (P^n E)[regime], the product of n transition matrices
    (a plain loop, not repeated squaring) under the markov algebra; rows of P and E are
    softmaxes of their logits, and the one emission matrix serves both sites."""
    trans = torch.softmax(P.get("_step_later.parts.0.body.logits", (3, 3)), -1)
    emit = torch.softmax(P.get("_step_today.logits", (3, 16)), -1)
    forecast = torch.eye(3, dtype=trans.dtype)
    for _ in range(run["n_steps"]):
        forecast = forecast @ trans
    forecast = forecast @ emit
    return {
        "today": torch.log(emit[regime, tr["today"]]),
        "later": torch.log(forecast[regime, tr["later"]]),
    }


def bayesian_linear_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """Global slope, intercept ~ N(0, 3), sigma ~ HalfNormal(1), each counted once;
    y_i ~ N(slope x_i + intercept, sqrt(sigma^2 + se_i^2)) per row."""
    slope, intercept, sigma = tr["slope"], tr["intercept"], tr["sigma"]
    sd = torch.sqrt(sigma**2 + host["se"] ** 2)
    return {
        "slope": normal(slope, 0.0, 3.0),
        "intercept": normal(intercept, 0.0, 3.0),
        "sigma": half_normal(sigma, 1.0),
        "y": rows(normal(tr["y"], slope * x + intercept, sd)),
    }


def vae(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """z ~ N(0, 1)^8 per row; x_rec ~ N(loc, softplus(raw)) with (loc, raw) = mlp128(z)."""
    decoder = P.net("_step_x_rec.source.net", (8, 128, 64 + 64))
    raw = decoder(tr["z"])
    return {
        "z": rows(normal(tr["z"], 0.0, 1.0)),
        "x_rec": rows(normal(tr["x_rec"], raw[:, :64], F.softplus(raw[:, 64:]))),
    }


def vae_encoder(P: Params, x: Tensor, z: Tensor) -> Tensor:
    """The exported recognition model q(z | x) = N(loc, softplus(raw)), (loc, raw) = mlp128(x)."""
    raw = P.net("source.net", (64, 128, 8 + 8))(x)
    return rows(normal(z, raw[:, :8], F.softplus(raw[:, 8:])))


def eight_schools(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """mu ~ N(0, 5), tau ~ HalfCauchy(5), eta_j ~ N(0, 1) (a plate: one sum, counted
    once); y_j ~ N(mu + tau eta_j, sigma_j), one per school, also counted once."""
    mu, tau, eta = tr["mu"], tr["tau"], tr["eta"]
    sigma = host["sigma"].reshape(8, 1)
    return {
        "mu": normal(mu, 0.0, 5.0),
        "tau": half_cauchy(tau, 5.0),
        "eta": normal(eta, 0.0, 1.0).sum(),
        "y": normal(tr["y"].reshape(8, 1), mu + tau * eta, sigma).sum(),
    }


def grouped_beta_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """beta_g ~ N(0, 1) per group (a plate), slope ~ N(0, 1), phi ~ Gamma(4, 0.2);
    m_i = sigmoid(beta[group_i] + slope x_i), y_i ~ Beta(m_i phi, (1 - m_i) phi) per row."""
    beta, slope, phi = tr["beta"], tr["slope"], tr["phi"]
    m = torch.sigmoid(beta[host["group"].long()] + slope * x)
    return {
        "beta": normal(beta, 0.0, 1.0).sum(),
        "slope": normal(slope, 0.0, 1.0),
        "phi": gamma(phi, 4.0, 0.2),
        "y": rows(beta_density(tr["y"], m * phi, (1 - m) * phi)),
    }


def ar1(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """alpha ~ N(0, 5), phi ~ Uniform(-1, 1) (density 1/2 inside), sigma ~ HalfCauchy(1);
    y_t ~ N(alpha + phi y_{t-1}, sigma), one per step of the plate, counted once."""
    alpha, phi, sigma = tr["alpha"], tr["phi"], tr["sigma"]
    mu = alpha + phi * host["y_prev"].reshape(-1, 1)
    return {
        "alpha": normal(alpha, 0.0, 5.0),
        "phi": torch.full_like(phi, -math.log(2.0)),
        "sigma": half_cauchy(sigma, 1.0),
        "y": normal(tr["y"], mu, sigma).sum(),
    }


def logistic_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """a, b ~ N(0, 2.5), global; y_i ~ Bernoulli(sigmoid(a + b x_i)) per row."""
    a, b = tr["a"], tr["b"]
    p = torch.sigmoid(a + b * x)[:, 0]
    return {"a": normal(a, 0.0, 2.5), "b": normal(b, 0.0, 2.5), "y": bernoulli(tr["y"], p)}


def poisson_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """a, b ~ N(0, 1); y_i ~ Poisson(exposure_i exp(a + b x_i)) per row."""
    a, b = tr["a"], tr["b"]
    rate = host["exposure"].reshape(-1, 1) * torch.exp(a + b * x)
    return {
        "a": normal(a, 0.0, 1.0),
        "b": normal(b, 0.0, 1.0),
        "y": rows(poisson(tr["y"], rate)),
    }


def gamma_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """a, b ~ N(0, 2), k ~ HalfCauchy(5); y_i ~ Gamma(k, k / exp(a + b x_i)) per row."""
    a, b, k = tr["a"], tr["b"], tr["k"]
    rate = k / torch.exp(a + b * x)
    return {
        "a": normal(a, 0.0, 2.0),
        "b": normal(b, 0.0, 2.0),
        "k": half_cauchy(k, 5.0),
        "y": rows(gamma_t(tr["y"], k.expand_as(rate), rate)),
    }


def robust_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """a, b ~ N(0, 10), sigma ~ HalfCauchy(2); y_i ~ StudentT(4, a + b x_i, sigma)."""
    a, b, sigma = tr["a"], tr["b"], tr["sigma"]
    return {
        "a": normal(a, 0.0, 10.0),
        "b": normal(b, 0.0, 10.0),
        "sigma": half_cauchy(sigma, 2.0),
        "y": rows(student_t(tr["y"], 4.0, a + b * x, sigma)),
    }


def hierarchical_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """mu_a ~ N(0, 5), sigma_a ~ HalfCauchy(1), z_g ~ N(0, 1) per county (a plate),
    b ~ N(0, 5), sigma_y ~ HalfCauchy(1); y_i ~ N(mu_a + sigma_a z[g_i] + b x_i, sigma_y)."""
    mu_a, sigma_a, z, b, sigma_y = (tr[n] for n in ("mu_a", "sigma_a", "z", "b", "sigma_y"))
    mu = mu_a + sigma_a * z[host["group"].long()] + b * x
    return {
        "mu_a": normal(mu_a, 0.0, 5.0),
        "sigma_a": half_cauchy(sigma_a, 1.0),
        "z": normal(z, 0.0, 1.0).sum(),
        "b": normal(b, 0.0, 5.0),
        "sigma_y": half_cauchy(sigma_y, 1.0),
        "y": rows(normal(tr["y"], mu, sigma_y)),
    }


def changepoint(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """early, late ~ Exponential(0.5), s ~ Uniform(0, 40) (density 1/40 inside);
    y_t ~ Poisson(early + (late - early) sigmoid(2 (t - s))), one per year, counted once."""
    early, late, s = tr["early"], tr["late"], tr["s"]
    t = host["t"].reshape(-1, 1)
    rate = early + (late - early) * torch.sigmoid((t - s) * 2.0)
    return {
        "early": math.log(0.5) - 0.5 * early,
        "late": math.log(0.5) - 0.5 * late,
        "s": torch.full_like(s, -math.log(40.0)),
        "y": poisson(tr["y"].reshape(-1, 1), rate).sum(),
    }


def ar2(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """alpha ~ N(0, 2), phi1, phi2 ~ Uniform(-1, 1), sigma ~ HalfCauchy(1);
    y_t ~ N(alpha + phi1 y_{t-1} + phi2 y_{t-2}, sigma), one per step, counted once."""
    alpha, phi1, phi2, sigma = (tr[n] for n in ("alpha", "phi1", "phi2", "sigma"))
    mu = alpha + phi1 * host["lag1"].reshape(-1, 1) + phi2 * host["lag2"].reshape(-1, 1)
    return {
        "alpha": normal(alpha, 0.0, 2.0),
        "phi1": torch.full_like(phi1, -math.log(2.0)),
        "phi2": torch.full_like(phi2, -math.log(2.0)),
        "sigma": half_cauchy(sigma, 1.0),
        "y": normal(tr["y"].reshape(-1, 1), mu, sigma).sum(),
    }


def negbin_regression(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """a, b ~ N(0, 2), r ~ HalfCauchy(5); y_i ~ NB(r, m_i / (m_i + r)), m_i = exp(a + b x_i)."""
    a, b, r = tr["a"], tr["b"], tr["r"]
    mean = torch.exp(a + b * x)
    return {
        "a": normal(a, 0.0, 2.0),
        "b": normal(b, 0.0, 2.0),
        "r": half_cauchy(r, 5.0),
        "y": rows(negative_binomial(tr["y"], r.expand_as(mean), mean / (mean + r))),
    }


def markov_chain(P: Params, today: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """forecast ~ (P^n)[today], P = softmax(logits) by row, the n-fold matrix product."""
    step = torch.softmax(P.only("_step_forecast.", (3, 3)), -1)
    power = torch.eye(3, dtype=step.dtype)
    for _ in range(run["n_steps"]):
        power = power @ step
    return {"forecast": torch.log(power[today, tr["forecast"]])}


def ppca(P: Params) -> Tensor:
    """Under the real algebra a latent relation is its raw weights and `Z >> W` is the
    matrix product: the (40, 4) mean of the items' features."""
    return P.only("_step_ppca.parts.0.", (40, 2)) @ P.only("_step_ppca.parts.1.", (2, 4))


def eight_schools_centred(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """mu ~ N(0, 5), tau ~ HalfCauchy(5), theta_j ~ N(mu, tau) (a plate: one sum,
    counted once); y_j ~ N(theta_j, sigma_j), one per school, also counted once."""
    mu, tau, theta = tr["mu"], tr["tau"], tr["theta"]
    sigma = host["sigma"].reshape(8, 1)
    return {
        "mu": normal(mu, 0.0, 5.0),
        "tau": half_cauchy(tau, 5.0),
        "theta": normal(theta, mu, tau).sum(),
        "y": normal(tr["y"].reshape(8, 1), theta, sigma).sum(),
    }


def neals_funnel(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """v ~ N(0, 3); x_k ~ N(0, exp(v / 2)) for the nine coordinates (a plate)."""
    v = tr["v"]
    return {"v": normal(v, 0.0, 3.0), "x": normal(tr["x"], 0.0, torch.exp(v / 2)).sum()}


def breast_cancer_logistic(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """alpha ~ N(0, 2.5), beta_k ~ N(0, 1) (global, counted once); y_i ~
    Bernoulli(sigmoid(eta_i)), eta_i = alpha + x_i . beta: log p = y eta - log(1 + e^eta)."""
    alpha, beta = tr["alpha"], tr["beta"]
    eta = alpha + x @ beta
    y = tr["y"].to(eta.dtype)
    return {
        "alpha": normal(alpha, 0.0, 2.5),
        "beta": normal(beta, 0.0, 1.0).sum(),
        "y": y * eta - F.softplus(eta),
    }


def mixture_model(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """w ~ Dirichlet(2, 2), mu_k ~ N(0, 5) (a plate), sigma ~ HalfCauchy(1); the label
    summed out per row: y_i ~ log sum_k w_k N(y_i; mu_k, sigma)."""
    w, mu, sigma = tr["w"], tr["mu"], tr["sigma"]
    log_w = torch.log(w).reshape(1, 2)
    components = log_w + normal(tr["y"].reshape(-1, 1), mu.reshape(1, 2), sigma)
    return {
        "w": math.lgamma(4.0) - 2 * math.lgamma(2.0) + torch.log(w).sum(),
        "mu": normal(mu, 0.0, 5.0).sum(),
        "sigma": half_cauchy(sigma, 1.0),
        "y": torch.logsumexp(components, -1),
    }


def zero_inflated_poisson(P: Params, x: Tensor, host: dict, tr: dict, run: dict) -> Sites:
    """a, b ~ N(0, 2), pi ~ Beta(2, 2); the indicator summed out per row:
    p(y) = pi 1{y = 0} + (1 - pi) Poisson(y; exp(a + b x))."""
    a, b, pi = tr["a"], tr["b"], tr["pi"]
    y = tr["y"].reshape(-1)
    rate = torch.exp(a + b * x).reshape(-1)
    on = torch.log1p(-pi) + poisson(y, rate)
    off = torch.where(y == 0, torch.log(pi), torch.full_like(on, -math.inf))
    return {
        "a": normal(a, 0.0, 2.0),
        "b": normal(b, 0.0, 2.0),
        "pi": beta_density(pi, torch.tensor(2.0), torch.tensor(2.0)),
        "y": torch.logsumexp(torch.stack([on, off]), 0),
    }


DENSITIES: dict[str, Callable[..., Sites]] = {
    f.__name__: f
    for f in (
        vanilla_rnn_lm,
        elman_rnn_lm,
        gru_lm,
        lstm_lm,
        bidirectional_rnn,
        transformer_lm,
        state_space,
        gaussian_mixture,
        hmm,
        bayesian_linear_regression,
        vae,
        eight_schools,
        grouped_beta_regression,
        ar1,
        logistic_regression,
        poisson_regression,
        gamma_regression,
        robust_regression,
        hierarchical_regression,
        changepoint,
        ar2,
        negbin_regression,
        markov_chain,
        eight_schools_centred,
        neals_funnel,
        breast_cancer_logistic,
        mixture_model,
        zero_inflated_poisson,
    )
}
