// The webview pages in headless Chromium: the flowchart page renders the reference
// program's chart (one SVG node per flowchart node) under the same CSP as in VS Code,
// shows the error state, reports clicks; the results page draws the loss curve.
// Screenshots go to artifacts/ (gitignored).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { artifactsDir, extRoot, pure } from "../helpers/paths.mjs";
import { haveChromium, launch, serve } from "../helpers/browser.mjs";
import { referenceFlowchart } from "../helpers/flowchart-source.mjs";

const { flowchartHtml, resultsHtml, makeNonce } = pure("html");
const { renderResultsBody } = pure("results");

const skip = haveChromium() ? false : "no /usr/bin/chromium (apt-get install -y chromium)";
let browser;
let site;
let chart;
const pages = {};

before(async () => {
  if (skip) {
    return;
  }
  fs.mkdirSync(artifactsDir, { recursive: true });
  chart = await referenceFlowchart();
  console.log(`flowchart from ${chart.source} (${chart.note})`);
  const media = path.join(extRoot, "dist", "media");
  assert.ok(fs.existsSync(path.join(media, "mermaid.min.js")), "dist/media is built (npm run build)");
  // The loopback server's origin stands for webview.cspSource.
  pages["/favicon.ico"] = "";
  site = await serve(media, pages);
  const nonce = makeNonce();
  pages["/flowchart.html"] = flowchartHtml({
    cspSource: site.origin,
    nonce,
    mermaidUri: `${site.origin}/mermaid.min.js`,
    scriptUri: `${site.origin}/flowchart.js`,
    styleUri: `${site.origin}/flowchart.css`,
    initial: { file: "vanilla_rnn_lm.qvr", result: chart.result, error: null },
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await site?.close();
});

async function openFlowchart() {
  const page = await browser.newPage({ viewport: { width: 1100, height: 420 } });
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" || /Content Security Policy|Refused/.test(m.text())) {
      problems.push(m.text());
    }
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("request", (r) => {
    if (!r.url().startsWith(site.origin) && !r.url().startsWith("data:")) {
      problems.push(`network request outside the extension: ${r.url()}`);
    }
  });
  // What VS Code's webview provides: the message channel back to the extension.
  await page.addInitScript(() => {
    window.__posted = [];
    window.acquireVsCodeApi = () => ({
      postMessage: (m) => window.__posted.push(m),
      getState: () => undefined,
      setState: () => undefined,
    });
  });
  await page.goto(`${site.origin}/flowchart.html`);
  await page.waitForSelector('body[data-state="ok"]', { state: "attached", timeout: 30000 });
  return { page, problems };
}

test("the flowchart page draws one SVG node per flowchart node, under the webview CSP", { skip }, async () => {
  const { page, problems } = await openFlowchart();
  const nodes = chart.result.nodes;
  const drawn = await page.$$eval("#chart svg g.node", (els) => els.map((e) => e.dataset.qvrNode ?? null));
  assert.equal(drawn.length, nodes.length, "one SVG node per flowchart node");
  assert.deepEqual([...drawn].sort(), nodes.map((n) => n.id).sort(), "each SVG node maps back to its id");
  const labels = await page.$eval("#chart svg", (svg) => svg.textContent);
  for (const n of nodes) {
    assert.ok(labels.includes(n.label), `label ${n.label} drawn`);
  }
  assert.equal(await page.$eval("#error", (e) => e.hidden), true);
  fs.writeFileSync(path.join(artifactsDir, "flowchart-reference.svg"), await page.$eval("#chart svg", (s) => s.outerHTML));
  await page.screenshot({ path: path.join(artifactsDir, "flowchart-reference.png"), fullPage: true });
  assert.deepEqual(problems, [], "no CSP violations, page errors or outside requests");
  await page.close();
});

test("a click on a node asks to reveal it; Save SVG and Save .mmd post to the extension", { skip }, async () => {
  const { page } = await openFlowchart();
  const target = chart.result.nodes.find((n) => n.label === "lm_head") ?? chart.result.nodes[1];
  await page.click(`#chart g.node[data-qvr-node="${target.id}"]`);
  await page.click("#save-svg");
  await page.click("#save-mmd");
  const posted = await page.evaluate(() => window.__posted);
  assert.deepEqual(posted[0], { type: "ready" });
  assert.deepEqual(posted.find((m) => m.type === "reveal"), { type: "reveal", id: target.id });
  const svg = posted.find((m) => m.type === "save" && m.format === "svg");
  assert.ok(svg && svg.svg.startsWith("<svg") && svg.svg.includes('xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(!svg.svg.includes("click to reveal"), "tooltips are not saved");
  assert.ok(posted.some((m) => m.type === "save" && m.format === "mmd"));
  await page.close();
});

test("while the file does not check, the error shows over the dimmed last chart", { skip }, async () => {
  const { page, problems } = await openFlowchart();
  const error = "line 9: unknown morphism 'lm_hed'; did you mean 'lm_head'?";
  await page.evaluate(
    ([result, message]) =>
      window.postMessage({ type: "update", state: { file: "vanilla_rnn_lm.qvr", result: { ...result, mermaid: null, error: message }, error: message } }, "*"),
    [chart.result, error],
  );
  await page.waitForSelector('body[data-state="error"]', { state: "attached" });
  assert.equal(await page.$eval("#error", (e) => e.textContent), error);
  assert.equal(await page.$eval("#error", (e) => e.hidden), false);
  assert.equal(await page.$eval("#chart", (e) => e.classList.contains("stale")), true);
  assert.equal(await page.$$eval("#chart svg g.node", (els) => els.length), chart.result.nodes.length, "the last chart stays");
  await page.screenshot({ path: path.join(artifactsDir, "flowchart-error.png"), fullPage: true });
  // Fixed again: back to a fresh chart.
  await page.evaluate((result) => window.postMessage({ type: "update", state: { file: "vanilla_rnn_lm.qvr", result, error: null } }, "*"), chart.result);
  await page.waitForSelector('body[data-state="ok"]', { state: "attached" });
  assert.equal(await page.$eval("#chart", (e) => e.classList.contains("stale")), false);
  assert.deepEqual(problems, []);
  await page.close();
});

test("with several programs a drop-down picks the target", { skip }, async () => {
  const { page } = await openFlowchart();
  assert.equal(await page.$eval("#target", (e) => e.hidden), true, "hidden with one target");
  const two = { ...chart.result, targets: [chart.result.target, "other_program"] };
  await page.evaluate((result) => window.postMessage({ type: "update", state: { file: "f.qvr", result, error: null } }, "*"), two);
  await page.waitForSelector("#target:not([hidden])", { state: "attached" });
  assert.deepEqual(await page.$$eval("#target option", (os) => os.map((o) => o.value)), two.targets);
  await page.selectOption("#target", "other_program");
  const posted = await page.evaluate(() => window.__posted);
  assert.deepEqual(posted.at(-1), { type: "target", target: "other_program" });
  await page.close();
});

test("the results page draws the loss curve and the tables", { skip }, async () => {
  const losses = Array.from({ length: 200 }, (_, i) => 10738.4 * Math.exp(-i / 60) + 900 + 40 * Math.sin(i / 3));
  const result = {
    ok: true, kind: "svi", target: "vanilla_rnn_lm", cancelled: false, error: null, elapsed: 3.2, losses,
    posterior: [
      { name: "h", mean: 0.01, sd: 0.3, r_hat: null, ess: null },
      { name: "cell.loc", mean: -0.12, sd: 0.05, r_hat: null, ess: null },
    ],
    samples: { next_token: { shape: [4], dtype: "int64", mean: 120.5, sd: 70.1, min: 3, max: 250 } },
  };
  const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
  const problems = [];
  page.on("console", (m) => /Content Security Policy|Refused/.test(m.text()) && problems.push(m.text()));
  await page.setContent(resultsHtml({ nonce: makeNonce(), body: renderResultsBody(result, "vanilla_rnn_lm.qvr") }));
  const curve = await page.$eval("svg.loss polyline.curve", (p) => {
    const box = p.getBoundingClientRect();
    return { points: p.points.numberOfItems, width: box.width, height: box.height, stroke: getComputedStyle(p).stroke };
  });
  assert.equal(curve.points, 200);
  assert.ok(curve.width > 400 && curve.height > 100, `curve spans the plot (${curve.width}x${curve.height})`);
  assert.notEqual(curve.stroke, "none", "the style applied under the CSP");
  assert.equal(await page.$$eval("table.posterior tbody tr", (r) => r.length), 2);
  assert.equal(await page.$$eval("table.samples tbody tr", (r) => r.length), 1);
  await page.screenshot({ path: path.join(artifactsDir, "results-svi.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("a stopped corpus fit's page shows its figures, the held-out curve and the kept checkpoint", { skip }, async () => {
  const losses = Array.from({ length: 120 }, (_, i) => 22000 * Math.exp(-i / 80) + 9000);
  const held = Array.from({ length: 12 }, (_, i) => [10 * (i + 1), 7.4 - 2.8 * (1 - Math.exp(-i / 4))]);
  const result = {
    ok: true, kind: "svi", target: "vanilla_rnn_lm", cancelled: true, error: null, elapsed: 41.2, losses,
    checkpoint: "/ws/vanilla_rnn_lm.state.pt",
    corpus: {
      steps: 120, total_steps: 1250, epochs_done: 0, epochs: 10, tokens_per_s: 21554.2,
      held_out_bits_per_token: held.at(-1)[1], unigram_bits_per_token: 4.644, held_out_bits: held,
      train_rows: 3982, held_out_rows: 442, seq_len: 16, batch_size: 32, guide: "prior", device: "cpu",
      path: "/ws/corpus.txt", bytes: 70797, resumed_from: null,
    },
  };
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  await page.setContent(resultsHtml({ nonce: makeNonce(), body: renderResultsBody(result, "vanilla_rnn_lm.qvr") }));
  const curves = await page.$$eval("svg.loss", (svgs) => svgs.map((s) => [s.querySelector("title").textContent, s.querySelector("polyline").points.numberOfItems]));
  assert.deepEqual(curves, [["Held-out bits per token", 12], ["Loss (negative ELBO) per step", 120]]);
  const rows = await page.$$eval("table.corpus tr", (trs) => Object.fromEntries(trs.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent])));
  assert.equal(rows["tokens per second"], "21,554");
  assert.equal(rows["checkpoint"], "/ws/vanilla_rnn_lm.state.pt");
  assert.ok(await page.isVisible("text=Stopped; the checkpoint is kept"));
  await page.screenshot({ path: path.join(artifactsDir, "results-corpus.png"), fullPage: true });
  await page.close();
});
