import { test } from "node:test";
import assert from "node:assert/strict";
import { pure } from "../helpers/paths.mjs";

const { lossCurveSvg, downsample, ticks, formatNumber, posteriorTable, samplesTable, renderResultsBody, summarize, statusOf } =
  pure("results");

function polyline(svg) {
  const m = /<polyline class="curve" data-points="(\d+)" data-scale="(?:log|linear)" points="([^"]*)"/.exec(svg);
  assert.ok(m, "the SVG has a curve");
  const pts = m[2].split(" ").map((p) => p.split(",").map(Number));
  assert.equal(pts.length, Number(m[1]));
  return pts;
}

test("loss curve: one vertex per step, inside the plot, higher loss drawn higher up", () => {
  const losses = [10738.4, 10210.9, 9800, 9900, 9500.5];
  const svg = lossCurveSvg(losses, { width: 640, height: 260 });
  assert.match(svg, /^<svg class="loss" xmlns="http:\/\/www.w3.org\/2000\/svg" width="640" height="260"/);
  const pts = polyline(svg);
  assert.equal(pts.length, 5);
  for (const [x, y] of pts) {
    assert.ok(x >= 64 && x <= 624, `x=${x} inside`);
    assert.ok(y >= 16 && y <= 224, `y=${y} inside`);
  }
  for (let i = 1; i < pts.length; i++) {
    assert.ok(pts[i][0] > pts[i - 1][0], "steps go left to right");
  }
  assert.equal(pts[0][1], 16, "the largest loss is at the top");
  assert.equal(pts[4][1], 224, "the smallest loss is at the bottom");
  assert.ok(pts[3][1] < pts[2][1], "9900 is above 9800");
  assert.match(svg, /<title>Loss \(negative ELBO\) per step<\/title>/);
});

test("loss curve: long runs are downsampled, non-finite values dropped, flat and empty handled", () => {
  const long = Array.from({ length: 5000 }, (_, i) => 1000 / (i + 1));
  const pts = polyline(lossCurveSvg(long));
  assert.equal(pts.length, 600);
  const kept = downsample([1, NaN, Infinity, 3]);
  assert.deepEqual(kept, [
    { step: 1, value: 1 },
    { step: 4, value: 3 },
  ]);
  const flat = polyline(lossCurveSvg([5, 5, 5]));
  assert.ok(flat.every(([, y]) => Number.isFinite(y)));
  assert.match(lossCurveSvg([]), /No loss values/);
  assert.match(lossCurveSvg([NaN]), /No loss values/);
  assert.match(lossCurveSvg([42]), /<circle/);
});

test("ticks are round numbers inside the range", () => {
  assert.deepEqual(ticks(0, 10), [0, 5, 10]);
  assert.deepEqual(ticks(9500, 10738), [9500, 10000, 10500]);
  assert.deepEqual(ticks(3, 3), [3]);
});

test("numbers: 4 significant digits, integers as is, missing as a dash", () => {
  assert.equal(formatNumber(0.012345), "0.01235");
  assert.equal(formatNumber(120.5), "120.5");
  assert.equal(formatNumber(10738.4), "10740");
  assert.equal(formatNumber(3), "3");
  assert.equal(formatNumber(0.00001234), "1.23e-5");
  assert.equal(formatNumber(null), "—");
  assert.equal(formatNumber(undefined), "—");
  // non-finite numbers come as strings (issue 14, item 6) and are shown as such
  assert.equal(formatNumber("NaN"), "NaN");
  assert.equal(formatNumber("Infinity"), "∞");
  assert.equal(formatNumber("-Infinity"), "−∞");
  assert.equal(formatNumber(NaN), "NaN");
  assert.equal(formatNumber("nan"), "—");
});

test("posterior table: mean, sd, r_hat, ess; a high r_hat is flagged", () => {
  const html = posteriorTable([
    { name: "h", mean: 0.01, sd: 0.3, r_hat: null, ess: null },
    { name: "w<1>", mean: -1.5, sd: 0.2, r_hat: 1.2, ess: 35.4 },
  ]);
  assert.match(html, /<th>name<\/th><th>mean<\/th><th>sd<\/th><th>r_hat<\/th><th>ess<\/th>/);
  assert.match(html, /<td>h<\/td><td>0.01<\/td><td>0.3<\/td><td>—<\/td><td>—<\/td>/);
  assert.match(html, /<td>w&lt;1&gt;<\/td>/);
  assert.match(html, /class="warn"[^>]*>1.2<\/td><td>35.4<\/td>/);
});

test("sample statistics table", () => {
  const html = samplesTable({ next_token: { shape: [4], dtype: "int64", mean: 120.5, sd: 70.1, min: 3, max: 250 } });
  assert.match(html, /<td>next_token<\/td><td>\(4,\)<\/td><td>int64<\/td><td>120.5<\/td><td>70.1<\/td><td>3<\/td><td>250<\/td>/);
  // draws near 1e38 overflow float32 in their mean and sd: the server sends strings
  const big = samplesTable({ y: { shape: [50, 1], dtype: "float32", mean: "NaN", sd: "Infinity", min: -2.26e38, max: 1.7e38 } });
  assert.match(big, /<td>y<\/td><td>\(50, 1\)<\/td><td>float32<\/td><td>NaN<\/td><td>∞<\/td><td>-2.26e\+38<\/td><td>1.70e\+38<\/td>/);
});

const svi = {
  ok: true, kind: "svi", target: "vanilla_rnn_lm", cancelled: false, error: null, elapsed: 3.2,
  losses: [10738.4, 10210.9],
  posterior: [{ name: "h", mean: 0.01, sd: 0.3, r_hat: null, ess: null }],
  samples: { next_token: { shape: [4], dtype: "int64", mean: 120.5, sd: 70.1, min: 3, max: 250 } },
};

test("an SVI result shows loss curve, posterior and samples", () => {
  const body = renderResultsBody(svi, "vanilla_rnn_lm.qvr");
  assert.match(body, /<h1>SVI fit · vanilla_rnn_lm<\/h1>/);
  assert.match(body, /class="status ok">ok</);
  assert.match(body, /3.2 s/);
  assert.match(body, /<svg class="loss"/);
  assert.match(body, /<table class="posterior">/);
  assert.match(body, /<table class="samples">/);
  assert.match(summarize(svi), /SVI fit finished \(final loss 10210, 3.2 s\)|SVI fit finished \(final loss 1.021e\+4/);
});

test("a NUTS result shows diagnostics per chain; a failure shows its error", () => {
  const nuts = {
    ok: true, kind: "nuts", cancelled: true, posterior: [{ name: "slope", mean: 1, sd: 0.1, r_hat: 1.01, ess: 200 }],
    samples: {}, diagnostics: { acceptance: [0.83, 0.79], divergences: [0, 1], warmup_divergences: [4, 2] },
  };
  const body = renderResultsBody(nuts);
  assert.match(body, /NUTS posterior/);
  assert.match(body, /class="status cancelled"/);
  assert.match(body, /<td>acceptance<\/td><td>0.83, 0.79<\/td>/);
  assert.match(body, /<td>warmup_divergences<\/td><td>4, 2<\/td>/);
  assert.match(summarize(nuts), /NUTS posterior cancelled \(divergences 1 \(warmup 6\)\)/);
  assert.doesNotMatch(body + summarize(nuts), /compile/); // not asked: nothing said
  const compiled = { ...nuts, cancelled: false, compiled: true };
  assert.match(summarize(compiled), /NUTS posterior finished \(divergences 1 \(warmup 6\), compiled\)/);
  assert.match(renderResultsBody(compiled), /ran through torch.compile/);
  const why = "compile=True: torch.compile could not compile this model's potential (RuntimeError: no <g++>); running it eagerly";
  const eager = { ...nuts, cancelled: false, compiled: false, compile_fallback: [why] };
  assert.match(summarize(eager), /, not compiled: compile=True: torch.compile could not compile/);
  assert.match(renderResultsBody(eager), /Not compiled: the run fell back to eager evaluation: .*no &lt;g\+\+&gt;/);
  assert.doesNotMatch(body, /<svg/);
  assert.equal(statusOf(nuts), "cancelled");

  const failed = { ok: false, kind: "sample", error: "site 'next_token': expected shape (4,), given (3,)" };
  const html = renderResultsBody(failed);
  assert.match(html, /class="status failed"/);
  assert.match(html, /<div class="error">site &#39;next_token&#39;: expected shape \(4,\), given \(3,\)<\/div>/);
  assert.match(summarize(failed), /^Samples failed: site 'next_token'/);
});

test("posterior rows with a shape get a shape column; a sample's return value is shown", () => {
  const html = posteriorTable([{ name: "_step_h.weight", mean: 0.1, sd: 0.6, r_hat: 3.75, ess: 0, shape: [256, 64] }]);
  assert.match(html, /<th>name<\/th><th>shape<\/th><th>mean<\/th>/);
  assert.match(html, /<td>_step_h.weight<\/td><td>\(256, 64\)<\/td><td>0.1<\/td>/);
  const body = renderResultsBody({ ok: true, kind: "sample", samples: {}, returned: { shape: [4], dtype: "int64", mean: 44.75, sd: 1, min: 1, max: 90 } });
  assert.match(body, /<h2>Returned value<\/h2>/);
  assert.match(body, /<td>return<\/td><td>\(4,\)<\/td><td>int64<\/td><td>44.75<\/td>/);
});

test("losses spanning decades get a log axis with decade ticks; a linear axis otherwise", () => {
  const losses = [423569, 252444, 10391, 5000, 2451, 1743];
  const svg = lossCurveSvg(losses);
  assert.match(svg, /data-scale="log"/);
  assert.match(svg, />log scale</);
  assert.match(svg, />10000</);
  assert.match(svg, />100000</);
  const pts = polyline(svg);
  assert.equal(pts[0][1], 16, "largest on top");
  assert.equal(pts[5][1], 224, "smallest at the bottom");
  // On a log axis 10391 sits near the middle, not squashed at the bottom as on a linear one.
  assert.ok(pts[2][1] < 180, `y=${pts[2][1]}`);
  assert.ok(polyline(lossCurveSvg(losses, { scale: "linear" }))[2][1] > 215, "linear squashes it");
  assert.match(lossCurveSvg(losses, { scale: "linear" }), /data-scale="linear"/);
  assert.match(lossCurveSvg([-5, 1000]), /data-scale="linear"/, "negative losses stay linear");
  assert.match(lossCurveSvg([10738.4, 10210.9]), /data-scale="linear"/);
});

test("a corpus fit shows tokens per second, held-out and unigram bits, and a stopped fit its kept checkpoint", () => {
  const result = {
    ok: true,
    kind: "svi",
    target: "vanilla_rnn_lm",
    cancelled: true,
    elapsed: 12.5,
    losses: [21940.1, 21338.0, 20250.2],
    checkpoint: "/ws/lm.state.pt",
    corpus: {
      steps: 3, total_steps: 125, epochs_done: 0, epochs: 1, tokens_per_s: 21554.2,
      held_out_bits_per_token: 6.5776, unigram_bits_per_token: 4.644, held_out_bits: [[2, 7.438], [3, 6.5776]],
      train_rows: 3982, held_out_rows: 442, seq_len: 16, batch_size: 32, guide: "prior", device: "cpu",
      path: "/ws/corpus.txt", bytes: 70797, resumed_from: null,
    },
  };
  const body = renderResultsBody(result, "lm.qvr");
  assert.match(body, /<h2>Corpus fit<\/h2>/);
  assert.match(body, /<tr><td>tokens per second<\/td><td>21,554<\/td><\/tr>/);
  assert.match(body, /<tr><td>held-out bits per token<\/td><td>6\.578<\/td><\/tr>/);
  assert.match(body, /<tr><td>unigram baseline, bits per token<\/td><td>4\.644<\/td><\/tr>/);
  assert.match(body, /<tr><td>steps<\/td><td>3 of 125 \(epochs done: 0 of 1\)<\/td><\/tr>/);
  assert.match(body, /<tr><td>checkpoint<\/td><td>\/ws\/lm\.state\.pt<\/td><\/tr>/);
  assert.match(body, /Stopped; the checkpoint is kept/);
  assert.match(body, /<span class="status cancelled">cancelled<\/span>/);
  // the held-out curve is drawn at the steps the rows were scored, on a linear axis
  const held = /<svg class="loss"[^]*?<title>Held-out bits per token<\/title>[^]*?<\/svg>/.exec(body);
  assert.ok(held, "a held-out curve");
  assert.equal(polyline(held[0]).length, 2);
  assert.match(held[0], /data-scale="linear"/);
  assert.equal(
    summarize(result),
    "SVI fit cancelled (21,554 tokens/s, held-out 6.578 bits/token (unigram 4.644), final loss 20250, 12.5 s, checkpoint kept: /ws/lm.state.pt)",
  );
  const done = renderResultsBody({ ...result, cancelled: false, corpus: { ...result.corpus, held_out_bits: [] } });
  assert.doesNotMatch(done, /Stopped/);
  assert.doesNotMatch(done, /Held-out bits per token<\/title>/);
  assert.doesNotMatch(renderResultsBody({ ok: true, kind: "svi", losses: [1, 2] }), /Corpus fit/);
});
