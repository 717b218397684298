import { test } from "node:test";
import assert from "node:assert/strict";
import { pure } from "../helpers/paths.mjs";

const { flowchartHtml, flowchartCsp, resultsHtml, makeNonce, escapeHtml, jsonForScript } = pure("html");

const page = () =>
  flowchartHtml({
    cspSource: "vscode-webview://abc",
    nonce: "N0nce",
    mermaidUri: "vscode-webview://abc/dist/media/mermaid.min.js",
    scriptUri: "vscode-webview://abc/dist/media/flowchart.js",
    styleUri: "vscode-webview://abc/dist/media/flowchart.css",
  });

function csp(html) {
  const m = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html);
  assert.ok(m, "the page has a CSP meta tag");
  return m[1].replace(/&#39;/g, "'");
}

test("flowchart page: strict CSP, scripts by nonce only, no network, no eval", () => {
  const policy = csp(page());
  assert.match(policy, /default-src 'none'/);
  assert.match(policy, /script-src 'nonce-N0nce'(;|$)/);
  assert.doesNotMatch(policy, /unsafe-eval/);
  assert.doesNotMatch(policy, /https?:/);
  assert.doesNotMatch(policy, /connect-src/);
  assert.equal(policy, flowchartCsp("vscode-webview://abc", "N0nce"));
});

test("flowchart page: both scripts carry the nonce and come from the extension", () => {
  const html = page();
  const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 2);
  for (const attrs of scripts) {
    assert.match(attrs, /nonce="N0nce"/);
    assert.match(attrs, /src="vscode-webview:\/\/abc\/dist\/media\//);
  }
  assert.match(html, /id="save-mmd"/);
  assert.match(html, /id="save-svg"/);
  assert.match(html, /id="error"/);
});

test("an embedded initial state cannot close its script element", () => {
  const html = flowchartHtml({
    cspSource: "x", nonce: "n", mermaidUri: "m.js", scriptUri: "s.js", styleUri: "s.css",
    initial: { file: "a.qvr", result: null, error: "</script><script>alert(1)</script>" },
  });
  const m = /<script type="application\/json" id="qvr-initial">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m);
  assert.equal(JSON.parse(m[1]).error, "</script><script>alert(1)</script>");
  assert.equal(jsonForScript("<&>").includes("<"), false);
});

test("results page: no script at all, styles by nonce", () => {
  const html = resultsHtml({ nonce: "abc", body: "<p>x</p>" });
  assert.doesNotMatch(html, /<script/);
  const policy = csp(html);
  assert.match(policy, /default-src 'none'/);
  assert.match(policy, /style-src 'nonce-abc'/);
  assert.doesNotMatch(policy, /script-src/);
});

test("nonces are 32 alphanumerics; escaping covers the HTML specials", () => {
  const n = makeNonce();
  assert.match(n, /^[A-Za-z0-9]{32}$/);
  assert.notEqual(makeNonce(), n);
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
});
