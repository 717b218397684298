// The editor protocol (docs/dev/editor-protocol.md) as this client relies on it, checked
// against the real server (`python -m quivers_lsp`) over stdio. Skipped when the
// interpreter cannot import quivers_lsp.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { extRoot, pure, referenceProgram, repoRoot } from "../helpers/paths.mjs";
import { LspClient } from "../helpers/lsp-client.mjs";

const python = process.env.QVR_PYTHON || "python3";
let skip = false;
try {
  execFileSync(python, ["-c", "import quivers_lsp"], { cwd: repoRoot, stdio: "ignore" });
} catch {
  skip = `${python} cannot import quivers_lsp`;
}

const { renderResultsBody } = pure("results");
const manifest = JSON.parse(fs.readFileSync(path.join(extRoot, "package.json"), "utf8"));
const contributed = manifest.contributes.commands.map((c) => c.command);
const text = fs.readFileSync(referenceProgram, "utf8");
const uri = `file://${referenceProgram}`;
let client;
let init;
let version = 1;

before(async () => {
  if (skip) {
    return;
  }
  client = await LspClient.start(python, ["-m", "quivers_lsp"], { cwd: repoRoot });
  init = client.initializeResult;
  client.notify("textDocument/didOpen", { textDocument: { uri, languageId: "qvr", version, text } });
});

after(async () => {
  await client?.close();
});

function change(newText) {
  version += 1;
  client.notify("textDocument/didChange", {
    textDocument: { uri, version },
    contentChanges: [{ text: newText }],
  });
  return version;
}

/** Waits for the first `step N/M` report of the next run begun after notification index `from`. */
async function firstReport(from, titleMatch) {
  const begin = await client.waitForNotification(
    (n) =>
      client.notifications.indexOf(n) >= from &&
      n.method === "$/progress" &&
      n.params.value.kind === "begin" &&
      titleMatch.test(n.params.value.title),
    120000,
  );
  const token = begin.params.token;
  await client.waitForNotification(
    (n) =>
      n.method === "$/progress" &&
      n.params.token === token &&
      n.params.value.kind === "report" &&
      /step \d+/.test(n.params.value.message ?? ""),
    120000,
  );
  return token;
}

const execute = (command, args, timeout = 180000) =>
  client.request("workspace/executeCommand", { command, arguments: args }, timeout);

test("the server serves the run commands; the client contributes only qvr.client.* ids", { skip }, () => {
  const served = init.capabilities.executeCommandProvider?.commands ?? [];
  for (const id of ["qvr.sample", "qvr.fitSvi", "qvr.runNuts", "qvr.cancelRun"]) {
    assert.ok(served.includes(id), `${id} served`);
  }
  for (const id of contributed) {
    assert.ok(!served.includes(id), `${id} is not a server command`);
  }
});

test("code lenses use the client-side command ids the extension registers, with [uri, target]", { skip }, async () => {
  const lenses = await client.request("textDocument/codeLens", { textDocument: { uri } });
  assert.ok(lenses.length >= 4);
  const ids = new Set(lenses.map((l) => l.command.command));
  assert.deepEqual([...ids].sort(), ["qvr.client.fitSvi", "qvr.client.runNuts", "qvr.client.sample", "qvr.client.showFlowchart"]);
  for (const id of ids) {
    assert.ok(contributed.includes(id), `${id} is registered by the extension`);
  }
  for (const lens of lenses) {
    assert.equal(lens.command.arguments[0], uri);
    assert.equal(lens.command.arguments[1], "vanilla_rnn_lm");
  }
});

test("hover on `cell` gives its type", { skip }, async () => {
  const hover = await client.request("textDocument/hover", { textDocument: { uri }, position: { line: 4, character: 11 } });
  const value = typeof hover.contents === "string" ? hover.contents : hover.contents.value;
  assert.match(value, /Embedded \* Hidden/);
  assert.match(value, /Hidden/);
});

test("qvr/flowchart: the chart, then the error state while the file does not check", { skip }, async () => {
  const ok = await client.request("qvr/flowchart", { uri });
  assert.equal(ok.target, "vanilla_rnn_lm");
  assert.match(ok.mermaid, /^flowchart /);
  assert.deepEqual(ok.targets, ["vanilla_rnn_lm"]);
  assert.equal(ok.error, null);
  for (const node of ok.nodes) {
    assert.ok(node.id && node.label && node.kind);
    assert.ok(node.range && Number.isInteger(node.range.start.line));
  }
  const broken = text.replace("lm_head(h)", "lm_hed(h)");
  const v = change(broken);
  const diagnostics = await client.waitForNotification(
    (n) => n.method === "textDocument/publishDiagnostics" && n.params.uri === uri && n.params.diagnostics.length > 0,
  );
  assert.ok(diagnostics.params.version === undefined || diagnostics.params.version === v);
  assert.match(diagnostics.params.diagnostics[0].message, /lm_hed/);
  const bad = await client.request("qvr/flowchart", { uri });
  assert.equal(bad.mermaid, null);
  assert.match(bad.error, /lm_hed/);
  assert.match(bad.error, /line \d+/);
  change(text);
  const again = await client.request("qvr/flowchart", { uri });
  assert.equal(again.mermaid, ok.mermaid);
});

test("qvr.fitSvi: cancellable progress, losses per step, a result the results page renders", { skip }, async () => {
  const before = client.notifications.length;
  const result = await execute("qvr.fitSvi", [uri, { steps: 12, seed: 0 }]);
  assert.equal(result.ok, true, result.error);
  assert.equal(result.kind, "svi");
  assert.equal(result.cancelled, false);
  assert.equal(result.losses.length, 12);
  assert.ok(Array.isArray(result.posterior) && result.posterior.length > 0);
  for (const key of ["name", "mean", "sd"]) {
    assert.ok(key in result.posterior[0], key);
  }
  const progress = client.notifications.slice(before).filter((n) => n.method === "$/progress");
  const begin = progress.find((n) => n.params.value.kind === "begin");
  assert.ok(begin, "work-done progress began");
  assert.equal(begin.params.value.cancellable, true);
  assert.ok(progress.some((n) => n.params.value.kind === "report" && /step \d+\/12/.test(n.params.value.message)));
  assert.ok(progress.some((n) => n.params.value.kind === "end"));
  const html = renderResultsBody(result, "vanilla_rnn_lm.qvr");
  assert.match(html, /<polyline class="curve" data-points="12"/);
  assert.match(html, /<table class="posterior">/);
});

test("qvr.runNuts: posterior with r_hat and ess, diagnostics per chain", { skip }, async () => {
  const result = await execute("qvr.runNuts", [uri, { warmup: 3, samples: 4, chains: 2, seed: 0, batch: 2, length: 3 }]);
  assert.equal(result.ok, true, result.error);
  assert.equal(result.kind, "nuts");
  assert.ok(result.posterior.length > 0);
  for (const key of ["name", "mean", "sd", "r_hat", "ess"]) {
    assert.ok(key in result.posterior[0], key);
  }
  assert.equal(result.diagnostics.acceptance.length, 2);
  assert.equal(result.diagnostics.divergences.length, 2);
  const html = renderResultsBody(result);
  assert.match(html, /<th>r_hat<\/th><th>ess<\/th>/);
  assert.match(html, /<td>acceptance<\/td>/);
});

test("qvr.cancelRun stops a run; the command returns cancelled with what it has", { skip }, async () => {
  const before = client.notifications.length;
  const running = execute("qvr.fitSvi", [uri, { steps: 100000, seed: 0 }]);
  await firstReport(before, /SVI/);
  const cancel = await execute("qvr.cancelRun", []);
  assert.equal(cancel.cancelled, true);
  const result = await running;
  assert.equal(result.cancelled, true);
  assert.equal(result.ok, true);
  assert.ok(Array.isArray(result.losses) && result.losses.length >= 1 && result.losses.length < 100000, JSON.stringify({ ...result, losses: result.losses?.length, progress: client.notifications.filter((n) => n.method === "$/progress").slice(-4) }).slice(0, 1500));
  assert.match(renderResultsBody(result), /class="status cancelled"/);
});

test("cancelling the progress (the notification's Cancel button) stops a run too", { skip }, async () => {
  const before = client.notifications.length;
  const running = execute("qvr.fitSvi", [uri, { steps: 100000, seed: 1 }]);
  const token = await firstReport(before, /SVI/);
  client.notify("window/workDoneProgress/cancel", { token });
  const result = await running;
  assert.equal(result.cancelled, true);
});

test("a failing run answers ok=false with an error, and the server keeps serving", { skip }, async () => {
  const result = await execute("qvr.sample", [uri, { data: path.join(repoRoot, "no-such-data.json") }]);
  assert.equal(result.ok, false);
  assert.ok(result.error && result.error.length > 0);
  assert.match(renderResultsBody(result), /class="error"/);
  const hover = await client.request("textDocument/hover", { textDocument: { uri }, position: { line: 4, character: 11 } });
  assert.ok(hover);
});
