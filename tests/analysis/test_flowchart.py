"""Flowcharts: nodes, edges, observed sites, node ranges, targets and errors."""

from __future__ import annotations

import re

import pytest

from quivers.analysis.flowchart import flowchart

from .helpers import REFERENCE, doc, examples, text_of

EXPECTED_EDGES = {
    "eight_schools": {
        "Normal(0.0, 5.0) -> mu : Real 1",
        "HalfCauchy(5.0) -> tau : Positive 1",
        "input : School -> Normal(0.0, 1.0)",
        "Normal(0.0, 1.0) -> eta : Real 1 [School]",
        "mu : Real 1 -> let theta = mu + tau * eta",
        "tau : Positive 1 -> let theta = mu + tau * eta",
        "eta : Real 1 [School] -> let theta = mu + tau * eta",
        "sigma (data) -> let sd = sigma + 0.0",
        "let theta = mu + tau * eta -> Normal(theta, sd)",
        "let sd = sigma + 0.0 -> Normal(theta, sd)",
        "input : School -> Normal(theta, sd)",
        "Normal(theta, sd) -> y : Real 1 [School] (observed)",
        "let theta = mu + tau * eta -> return",
    },
    "eight_schools_centred": {
        "Normal(0.0, 5.0) -> mu : Real 1",
        "HalfCauchy(5.0) -> tau : Positive 1",
        "mu : Real 1 -> Normal(mu, tau)",
        "tau : Positive 1 -> Normal(mu, tau)",
        "input : School -> Normal(mu, tau)",
        "Normal(mu, tau) -> theta : Real 1 [School]",
        "sigma (data) -> let sd = sigma + 0.0",
        "theta : Real 1 [School] -> Normal(theta, sd)",
        "let sd = sigma + 0.0 -> Normal(theta, sd)",
        "input : School -> Normal(theta, sd)",
        "Normal(theta, sd) -> y : Real 1 [School] (observed)",
        "theta : Real 1 [School] -> return",
    },
    "neals_funnel": {
        "Normal(0.0, 3.0) -> v : Real 1",
        "v : Real 1 -> let scale = exp(v / 2.0)",
        "let scale = exp(v / 2.0) -> Normal(0.0, scale)",
        "input : Coordinate -> Normal(0.0, scale)",
        "Normal(0.0, scale) -> x : Real 1 [Coordinate]",
        "x : Real 1 [Coordinate] -> return",
    },
    "breast_cancer_logistic": {
        "Normal(0.0, 2.5) -> alpha : Real 1",
        "Normal(0.0, 1.0) -> beta : Features",
        "alpha : Real 1 -> let eta = alpha + sum(beta * x)",
        "beta : Features -> let eta = alpha + sum(beta * x)",
        "x : Features -> let eta = alpha + sum(beta * x)",
        "let eta = alpha + sum(beta * x) -> let p = sigmoid(eta)",
        "let p = sigmoid(eta) -> Bernoulli(p)",
        "Bernoulli(p) -> y : Diagnosis (observed)",
        "y : Diagnosis (observed) -> return",
    },
    "grouped_beta_regression": {
        "Normal(0.0, 1.0) -> beta : Real 1 [Group]",
        "Normal(0.0, 1.0) -> slope : Real 1",
        "Gamma(4.0, 0.2) -> phi : Positive 1",
        "beta : Real 1 [Group] -> let b = beta[group]",
        "group (data) -> let b = beta[group]",
        "let b = beta[group] -> let m = sigmoid(b + slope * x)",
        "slope : Real 1 -> let m = sigmoid(b + slope * x)",
        "x : Covariate -> let m = sigmoid(b + slope * x)",
        "let m = sigmoid(b + slope * x) -> let a = m * phi",
        "phi : Positive 1 -> let a = m * phi",
        "let m = sigmoid(b + slope * x) -> let c = (1.0 - m) * phi",
        "phi : Positive 1 -> let c = (1.0 - m) * phi",
        "let a = m * phi -> Beta(a, c)",
        "let c = (1.0 - m) * phi -> Beta(a, c)",
        "Beta(a, c) -> y : Share (observed)",
        "y : Share (observed) -> return",
    },
    "ar1": {
        "Normal(0.0, 5.0) -> alpha : Real 1",
        "Uniform(-1.0, 1.0) -> phi : Real 1",
        "HalfCauchy(1.0) -> sigma : Positive 1",
        "alpha : Real 1 -> let mu = alpha + phi * y_prev",
        "phi : Real 1 -> let mu = alpha + phi * y_prev",
        "y_prev (data) -> let mu = alpha + phi * y_prev",
        "let mu = alpha + phi * y_prev -> Normal(mu, sigma)",
        "sigma : Positive 1 -> Normal(mu, sigma)",
        "input : Step -> Normal(mu, sigma)",
        "Normal(mu, sigma) -> y : Real 1 [Step] (observed)",
        "phi : Real 1 -> return",
    },
    "vanilla_rnn_lm": {
        "input : Token -> tok_embed",
        "tok_embed -> scan(cell)",
        "scan(cell) -> h : Hidden",
        "h : Hidden -> lm_head",
        "lm_head -> next_token : Token (observed)",
        "next_token : Token (observed) -> return",
    },
    "gaussian_mixture": {
        "input : Group -> weights",
        "weights -> z : Cluster",
        "z : Cluster -> component",
        "component -> y : Measurement (observed)",
        "y : Measurement (observed) -> return",
    },
    "hmm": {
        "input : Regime -> emission",
        "emission -> today : Reading (observed)",
        "input : Regime -> repeat(transition)",
        "repeat(transition) -> emission",
        "emission -> later : Reading (observed)",
        "today : Reading (observed) -> return",
        "later : Reading (observed) -> return",
    },
    "lstm_lm": {
        "input : Token -> tok_embed",
        "tok_embed -> scan(lstm_cell)",
        "scan(lstm_cell) -> s : State",
        "s : State -> hidden_of",
        "hidden_of -> lm_head",
        "lm_head -> next_token : Token (observed)",
        "next_token : Token (observed) -> return",
    },
    "bayesian_linear_regression": {
        "Normal(0.0, 3.0) -> slope : Real 1",
        "Normal(0.0, 3.0) -> intercept : Real 1",
        "HalfNormal(1.0) -> sigma : Positive 1",
        "x : Covariate -> let mu = slope * x + intercept",
        "slope : Real 1 -> let mu = slope * x + intercept",
        "intercept : Real 1 -> let mu = slope * x + intercept",
        "sigma : Positive 1 -> let sd = sqrt(sigma * sigma + se * se)",
        "se (data) -> let sd = sqrt(sigma * sigma + se * se)",
        "let mu = slope * x + intercept -> Normal(mu, sd)",
        "let sd = sqrt(sigma * sigma + se * se) -> Normal(mu, sd)",
        "Normal(mu, sd) -> y : Response (observed)",
        "y : Response (observed) -> return",
    },
    "transformer_lm": {
        "input : Context -> " + " @ ".join(["tok_embed"] * 8),
        " @ ".join(["tok_embed"] * 8) + " -> in_proj",
        "in_proj -> stack(block, 2)",
        "stack(block, 2) -> z : Stream",
        "z : Stream -> lm_head",
        "lm_head -> next_token : Token (observed)",
        "next_token : Token (observed) -> return",
    },
    "bidirectional_rnn": {
        "input : Token * Token -> forward_rnn @ backward_rnn",
        "forward_rnn @ backward_rnn -> h : Hidden * Hidden",
        "h : Hidden * Hidden -> classifier",
        "classifier -> label : Sentiment (observed)",
        "label : Sentiment (observed) -> return",
    },
    "elman_rnn_lm": {
        "input : Token -> tok_embed",
        "tok_embed -> scan(elman_cell)",
        "scan(elman_cell) -> h : Hidden",
        "h : Hidden -> lm_head",
        "lm_head -> next_token : Token (observed)",
        "next_token : Token (observed) -> return",
    },
    "gru_lm": {
        "input : Token -> tok_embed",
        "tok_embed -> scan(gru_cell)",
        "scan(gru_cell) -> h : Hidden",
        "h : Hidden -> lm_head",
        "lm_head -> next_token : Token (observed)",
        "next_token : Token (observed) -> return",
    },
    "state_space": {
        "input : Obs -> scan(filter_step)",
        "scan(filter_step) -> z : State",
        "z : State -> emit",
        "emit -> y_next : Obs (observed)",
        "y_next : Obs (observed) -> return",
    },
    "vae": {
        "input : Image -> prior",
        "prior -> z : Code",
        "z : Code -> decoder",
        "decoder -> x_rec : Image (observed)",
        "x_rec : Image (observed) -> return",
    },
}

# Deductions: rules as nodes, the categories they pass on as edges.
EXPECTED_EDGES |= {
    "pcfg": {
        "lexicon -> np_det_n",
        "lexicon -> n_adj_n",
        "n_adj_n -> n_adj_n",
        "n_adj_n -> np_det_n",
        "np_det_n -> s_np_vp",
        "np_det_n -> vp_v_np",
        "vp_v -> s_np_vp",
        "vp_v_np -> s_np_vp",
        "lexicon -> vp_v",
        "lexicon -> vp_v_np",
        "s_np_vp -> start S",
    },
    "mcfg": {
        "lexicon -> p_base",
        "lexicon -> p_grow",
        "p_base -> p_grow",
        "p_grow -> p_grow",
        "p_base -> s_join",
        "p_grow -> s_join",
        "s_join -> start S",
    },
}
# the pages with Try-it snippets (tests/examples/test_page_snippets.py)
EXPECTED_EDGES |= {
    "logistic_regression": {
        "Bernoulli(p) -> y : Outcome (observed)",
        "Normal(0.0, 2.5) -> a : Real 1",
        "Normal(0.0, 2.5) -> b : Real 1",
        "a : Real 1 -> let p = sigmoid(a + b * x)",
        "b : Real 1 -> let p = sigmoid(a + b * x)",
        "let p = sigmoid(a + b * x) -> Bernoulli(p)",
        "x : X -> let p = sigmoid(a + b * x)",
        "y : Outcome (observed) -> return",
    },
    "poisson_regression": {
        "Normal(0.0, 1.0) -> a : Real 1",
        "Normal(0.0, 1.0) -> b : Real 1",
        "Poisson(rate) -> y : Count (observed)",
        "a : Real 1 -> let rate = exp(log(exposure) + a + b * x)",
        "b : Real 1 -> let rate = exp(log(exposure) + a + b * x)",
        "exposure (data) -> let rate = exp(log(exposure) + a + b * x)",
        "let rate = exp(log(exposure) + a + b * x) -> Poisson(rate)",
        "x : X -> let rate = exp(log(exposure) + a + b * x)",
        "y : Count (observed) -> return",
    },
    "gamma_regression": {
        "Gamma(k, rate) -> y : Cost (observed)",
        "HalfCauchy(5.0) -> k : Positive 1",
        "Normal(0.0, 2.0) -> a : Real 1",
        "Normal(0.0, 2.0) -> b : Real 1",
        "a : Real 1 -> let mean = exp(a + b * x)",
        "b : Real 1 -> let mean = exp(a + b * x)",
        "k : Positive 1 -> Gamma(k, rate)",
        "k : Positive 1 -> let rate = k / mean",
        "let mean = exp(a + b * x) -> let rate = k / mean",
        "let rate = k / mean -> Gamma(k, rate)",
        "x : X -> let mean = exp(a + b * x)",
        "y : Cost (observed) -> return",
    },
    "negbin_regression": {
        "HalfCauchy(5.0) -> r : Positive 1",
        "NegativeBinomial(r, p) -> y : Count (observed)",
        "Normal(0.0, 2.0) -> a : Real 1",
        "Normal(0.0, 2.0) -> b : Real 1",
        "a : Real 1 -> let mean = exp(a + b * x)",
        "b : Real 1 -> let mean = exp(a + b * x)",
        "let mean = exp(a + b * x) -> let p = mean / (mean + r)",
        "let p = mean / (mean + r) -> NegativeBinomial(r, p)",
        "r : Positive 1 -> NegativeBinomial(r, p)",
        "r : Positive 1 -> let p = mean / (mean + r)",
        "x : X -> let mean = exp(a + b * x)",
        "y : Count (observed) -> return",
    },
    "robust_regression": {
        "HalfCauchy(2.0) -> sigma : Positive 1",
        "Normal(0.0, 10.0) -> a : Real 1",
        "Normal(0.0, 10.0) -> b : Real 1",
        "StudentT(4.0, mu, sigma) -> y : Y (observed)",
        "a : Real 1 -> let mu = a + b * x",
        "b : Real 1 -> let mu = a + b * x",
        "let mu = a + b * x -> StudentT(4.0, mu, sigma)",
        "sigma : Positive 1 -> StudentT(4.0, mu, sigma)",
        "x : X -> let mu = a + b * x",
        "y : Y (observed) -> return",
    },
    "hierarchical_regression": {
        "HalfCauchy(1.0) -> sigma_a : Positive 1",
        "HalfCauchy(1.0) -> sigma_y : Positive 1",
        "Normal(0.0, 1.0) -> z : Real 1 [County]",
        "Normal(0.0, 5.0) -> b : Real 1",
        "Normal(0.0, 5.0) -> mu_a : Real 1",
        "Normal(mu, sigma_y) -> y : Y (observed)",
        "b : Real 1 -> let mu = intercept + b * x",
        "group (data) -> let intercept = mu_a + sigma_a * z[group]",
        "let intercept = mu_a + sigma_a * z[group] -> let mu = intercept + b * x",
        "let mu = intercept + b * x -> Normal(mu, sigma_y)",
        "mu_a : Real 1 -> let intercept = mu_a + sigma_a * z[group]",
        "sigma_a : Positive 1 -> let intercept = mu_a + sigma_a * z[group]",
        "sigma_y : Positive 1 -> Normal(mu, sigma_y)",
        "x : X -> let mu = intercept + b * x",
        "y : Y (observed) -> return",
        "z : Real 1 [County] -> let intercept = mu_a + sigma_a * z[group]",
    },
    "ar2": {
        "HalfCauchy(1.0) -> sigma : Positive 1",
        "Normal(0.0, 2.0) -> alpha : Real 1",
        "Normal(mu, sigma) -> y : Real 1 [Step] (observed)",
        "Uniform(-1.0, 1.0) -> phi1 : Real 1",
        "Uniform(-1.0, 1.0) -> phi2 : Real 1",
        "alpha : Real 1 -> let mu = alpha + phi1 * lag1 + phi2 * lag2",
        "input : Step -> Normal(mu, sigma)",
        "lag1 (data) -> let mu = alpha + phi1 * lag1 + phi2 * lag2",
        "lag2 (data) -> let mu = alpha + phi1 * lag1 + phi2 * lag2",
        "let mu = alpha + phi1 * lag1 + phi2 * lag2 -> Normal(mu, sigma)",
        "phi1 : Real 1 -> let mu = alpha + phi1 * lag1 + phi2 * lag2",
        "phi1 : Real 1 -> return",
        "phi2 : Real 1 -> let mu = alpha + phi1 * lag1 + phi2 * lag2",
        "sigma : Positive 1 -> Normal(mu, sigma)",
    },
    "changepoint": {
        "Exponential(0.5) -> early : Positive 1",
        "Exponential(0.5) -> late : Positive 1",
        "Poisson(rate) -> y : Real 1 [Year] (observed)",
        "Uniform(0.0, 40.0) -> s : Real 1",
        "early : Positive 1 -> let rate = early + (late - early) * switch",
        "input : Year -> Poisson(rate)",
        "late : Positive 1 -> let rate = early + (late - early) * switch",
        "let rate = early + (late - early) * switch -> Poisson(rate)",
        "let switch = sigmoid((t - s) * 2.0) -> let rate = early + (late - early) * switch",
        "s : Real 1 -> let switch = sigmoid((t - s) * 2.0)",
        "s : Real 1 -> return",
        "t (data) -> let switch = sigmoid((t - s) * 2.0)",
    },
    "markov_chain": {
        "input : Weather -> repeat(step)",
        "repeat(step) -> output : Weather",
    },
    "ppca": {
        "W -> output : Feature",
        "Z -> W",
        "input : Item -> Z",
    },
}
EXPECTED_EDGES |= {
    "mixture_model": {
        "Categorical(w) -> c : Component (summed out)",
        "Dirichlet(2.0) -> w : Simplex 2",
        "HalfCauchy(1.0) -> sigma : Positive 1",
        "Normal(0.0, 5.0) -> mu : Real 1 [Component]",
        "Normal(m, sigma) -> y : Y (observed)",
        "c : Component (summed out) -> let m = mu[c]",
        "let m = mu[c] -> Normal(m, sigma)",
        "mu : Real 1 [Component] -> let m = mu[c]",
        "sigma : Positive 1 -> Normal(m, sigma)",
        "w : Simplex 2 -> Categorical(w)",
        "y : Y (observed) -> return",
    },
    "zero_inflated_poisson": {
        "Bernoulli(pi) -> zero : FinSet 2 (summed out)",
        "Beta(2.0, 2.0) -> pi : UnitInterval 1",
        "Normal(0.0, 2.0) -> a : Real 1",
        "Normal(0.0, 2.0) -> b : Real 1",
        "Poisson(lam) -> y : Count (observed)",
        "a : Real 1 -> let rate = exp(a + b * x)",
        "b : Real 1 -> let rate = exp(a + b * x)",
        "let lam = rate * (1.0 - zero) -> Poisson(lam)",
        "let rate = exp(a + b * x) -> let lam = rate * (1.0 - zero)",
        "pi : UnitInterval 1 -> Bernoulli(pi)",
        "x : X -> let rate = exp(a + b * x)",
        "y : Count (observed) -> return",
        "zero : FinSet 2 (summed out) -> let lam = rate * (1.0 - zero)",
    },
}
DEDUCTION_EXAMPLES = {"pcfg", "ccg", "type_logical", "mcfg"}
# programs that never read their input (its rows are the data points)
UNREAD_INPUT = {"mixture_model"}
# examples whose first export is a morphism expression (a `let`), by its name: the
# chart is the expression's, from an input node to an output node, with no return
EXPRESSION_EXPORTS = {"markov_chain": "forecast", "ppca": "ppca"}

OBSERVED = {
    "vanilla_rnn_lm": ["next_token"],
    "hmm": ["today", "later"],
    "bayesian_linear_regression": ["y"],
    "bidirectional_rnn": ["label"],
    "vae": ["x_rec"],
}


def edges(chart) -> set[str]:  # type: ignore[no-untyped-def]
    label = {n.id: n.label for n in chart.nodes}
    return {f"{label[a]} -> {label[b]}" for a, b in chart.edges}


def test_every_example_has_expected_edges() -> None:
    # the categorial grammars' rules all feed each other (any category may be X)
    assert set(EXPECTED_EDGES) | {"ccg", "type_logical"} == set(examples())


@pytest.mark.parametrize("name", sorted(EXPECTED_EDGES))
def test_expected_edges(name: str) -> None:
    chart = flowchart(doc(examples()[name]))
    assert chart.error is None and chart.target is not None
    want = EXPRESSION_EXPORTS.get(name, name)
    assert chart.target == want or chart.target.lower() == want  # deductions: PCFG, MCFG
    assert edges(chart) == EXPECTED_EDGES[name]


@pytest.mark.parametrize("name", sorted(examples()))
def test_every_example_charts_with_consistent_nodes(name: str) -> None:
    d = doc(examples()[name])
    chart = flowchart(d)
    assert chart.error is None and chart.mermaid is not None
    ids = [n.id for n in chart.nodes]
    assert len(set(ids)) == len(ids)
    assert all(a in ids and b in ids for a, b in chart.edges)
    if name in DEDUCTION_EXAMPLES:
        assert {x for e in chart.edges for x in e} == set(ids)
        for a, b in chart.edges:
            assert re.search(rf'^    {a} -->\|"[^"]+"\| {b}$', chart.mermaid, re.M)
        return
    kinds = [n.kind for n in chart.nodes]
    if name in EXPRESSION_EXPORTS:
        assert kinds[0] == "input" and kinds[-1] == "value" and "return" not in kinds
        assert {x for e in chart.edges for x in e} == set(ids)
        return
    assert kinds.count("return") == 1 and "input" in kinds
    assert any(k in ("site", "observed") for k in kinds)
    # every node but the return is connected, and the mermaid text names each node once
    connected = {x for e in chart.edges for x in e}
    if name in UNREAD_INPUT:  # the input only gives the number of rows
        lonely = {n.id for n in chart.nodes if n.id not in connected}
        assert [n.kind for n in chart.nodes if n.id in lonely] == ["input"]
        connected |= lonely
    assert set(ids) <= connected
    for n in chart.nodes:
        assert len(re.findall(rf"^    {n.id}[\[\(\{{]", chart.mermaid, re.M)) == 1
    for a, b in chart.edges:
        assert f"    {a} --> {b}" in chart.mermaid


@pytest.mark.parametrize("name", sorted(OBSERVED))
def test_observed_nodes_are_marked(name: str) -> None:
    chart = flowchart(doc(examples()[name]))
    observed = [n for n in chart.nodes if n.kind == "observed"]
    assert [n.label.split(" :")[0] for n in observed] == OBSERVED[name]
    assert f"class {','.join(n.id for n in observed)} observed" in chart.mermaid
    for n in observed:
        assert f'{n.id}[/"' in chart.mermaid  # drawn as a parallelogram


@pytest.mark.parametrize("name", sorted(examples()))
def test_node_ranges_point_at_their_source(name: str) -> None:
    d = doc(examples()[name])
    for n in flowchart(d).nodes:
        if name in DEDUCTION_EXAMPLES:  # rules point at their names
            assert n.range is not None
            if n.kind == "morphism":
                assert text_of(d, n.range) == n.label
            continue
        if n.range is None:
            if name in EXPRESSION_EXPORTS:  # an expression's input and output nodes
                assert n.kind in ("input", "value"), n
                continue
            assert n.kind == "input" and n.label.endswith("(data)")
            continue
        text = " ".join(text_of(d, n.range).split())
        if n.kind in ("morphism", "combinator", "value"):
            assert text == n.label
        elif n.kind in ("site", "observed"):
            assert n.label.startswith(f"{text} : ")
        elif n.kind == "input":
            assert n.label == f"input : {text}" or n.label.startswith(f"{text} : ")
        elif n.kind == "return":
            assert text.startswith("return")


def test_reference_ranges_exactly() -> None:
    d = doc(REFERENCE)
    got = {n.label: (n.range.line, n.range.col) for n in flowchart(d).nodes if n.range}
    assert got["scan(cell)"] == (6, 28)
    assert got["tok_embed"] == (6, 15)
    assert got["h : Hidden"] == (8, 11)
    assert got["lm_head"] == (9, 34)


def test_targets_and_choosing_one() -> None:
    d = doc(examples()["elman_rnn_lm"])
    chart = flowchart(d)
    assert chart.targets == ["elman_rnn_lm", "elman_cell"]
    cell = flowchart(d, "elman_cell")
    assert cell.target == "elman_cell" and cell.error is None
    assert {n.label for n in cell.nodes if n.kind == "input"} == {
        "x : Embedded",
        "h : Hidden",
    }
    assert "a : Hidden -> let h_next = tanh(a)" in edges(cell)


def test_exported_morphism_expression() -> None:
    d = doc(examples()["vae"])
    chart = flowchart(d, "encoder")
    assert chart.error is None
    assert edges(chart) == {"input : Image -> encoder", "encoder -> output : Code"}


def test_errors_stop_the_chart_with_a_one_line_message() -> None:
    d = doc(REFERENCE.replace("scan(cell)", "scan(cel)"))
    chart = flowchart(d)
    assert chart.mermaid is None and chart.nodes == []
    assert chart.error is not None and chart.error.startswith("line 7: ")
    assert "\n" not in chart.error and "cel" in chart.error
    assert chart.targets == ["vanilla_rnn_lm"]


def test_unknown_target_and_empty_file() -> None:
    d = doc(REFERENCE)
    assert flowchart(d, "Token").error == "'Token' is not a program or morphism"
    assert flowchart(d, "nope").mermaid is None
    empty = flowchart(doc("object A : Real 2\n"))
    assert empty.target is None and empty.error is not None


def test_labels_with_quotes_and_angles_are_escaped() -> None:
    text = (
        "object R : Real 1\nprogram p(x) : R -> R\n    let m = x\n"
        "    observe y : R <- Normal(m, 1.0)\n    return y\nexport p\n"
    )
    chart = flowchart(doc(text))
    assert chart.mermaid is not None
    for line in chart.mermaid.splitlines()[1:]:
        inner = re.findall(r'"([^"]*)"', line)
        assert all("<" not in s and ">" not in s for s in inner)


def test_a_cell_program_shows_its_data_flow() -> None:
    chart = flowchart(doc(examples()["gru_lm"]), "gru_cell")
    h_next = "let h_next = (1 - z) * h + z * tanh(c)"
    assert edges(chart) == {
        "x : Embedded -> update_gate",
        "h : Hidden -> update_gate",
        "update_gate -> z : Gate",
        "x : Embedded -> reset_gate",
        "h : Hidden -> reset_gate",
        "reset_gate -> r : Gate",
        "r : Gate -> let h_reset = r * h",
        "h : Hidden -> let h_reset = r * h",
        "x : Embedded -> candidate",
        "let h_reset = r * h -> candidate",
        "candidate -> c : Hidden",
        f"z : Gate -> {h_next}",
        f"h : Hidden -> {h_next}",
        f"c : Hidden -> {h_next}",
        f"{h_next} -> return",
    }
