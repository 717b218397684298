// The webview pages as strings. Pure: the extension and the headless-browser test
// both build the pages from here, so what the test renders is what VS Code shows.

import type { FlowchartViewState } from "./protocol";

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** A nonce for the Content-Security-Policy; `random` is injectable for tests. */
export function makeNonce(random: () => number = Math.random): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let out = "";
  for (let i = 0; i < 32; i++) {
    out += chars.charAt(Math.floor(random() * chars.length));
  }
  return out;
}

/** JSON that is safe inside a <script type="application/json"> element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

export interface FlowchartPageOptions {
  /** `webview.cspSource`, or the origin the test serves files from. */
  cspSource: string;
  nonce: string;
  mermaidUri: string;
  scriptUri: string;
  styleUri: string;
  initial?: FlowchartViewState | null;
}

/** The flowchart CSP: scripts only by nonce, no network, no eval. */
export function flowchartCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    // mermaid writes <style> into the SVG it renders, and sets inline styles.
    `style-src ${cspSource} 'unsafe-inline'`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join("; ");
}

export function flowchartHtml(o: FlowchartPageOptions): string {
  const initial = o.initial ? `<script type="application/json" id="qvr-initial">${jsonForScript(o.initial)}</script>` : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(flowchartCsp(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(o.styleUri)}">
<title>QVR flowchart</title>
</head>
<body data-state="loading">
<header id="toolbar">
  <span id="title">QVR flowchart</span>
  <select id="target" title="Program or export to chart" hidden></select>
  <span class="spacer"></span>
  <button id="fit" type="button" title="Fit the chart to the panel's width" aria-pressed="false">Fit</button>
  <button id="save-mmd" type="button" title="Save the Mermaid source (.mmd)" disabled>Save .mmd</button>
  <button id="save-svg" type="button" title="Save the rendered chart (.svg)" disabled>Save SVG</button>
</header>
<div id="error" role="alert" hidden></div>
<main id="chart" aria-live="polite"><p class="placeholder">Waiting for the language server…</p></main>
${initial}
<script nonce="${o.nonce}" src="${escapeHtml(o.mermaidUri)}"></script>
<script nonce="${o.nonce}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>
`;
}

export interface ResultsPageOptions {
  nonce: string;
  body: string;
}

/** The results page: static HTML and inline SVG, no script at all. */
export function resultsHtml(o: ResultsPageOptions): string {
  const csp = ["default-src 'none'", `style-src 'nonce-${o.nonce}'`, "img-src data:"].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>QVR run results</title>
<style nonce="${o.nonce}">${RESULTS_CSS}</style>
</head>
<body>
${o.body}
</body>
</html>
`;
}

const RESULTS_CSS = `
body { font-family: var(--vscode-font-family, sans-serif); font-size: var(--vscode-font-size, 13px);
  color: var(--vscode-foreground, #222); background: var(--vscode-editor-background, #fff); padding: 0 16px 16px; }
h1 { font-size: 1.3em; margin: 12px 0 4px; }
h2 { font-size: 1.1em; margin: 18px 0 6px; border-bottom: 1px solid var(--vscode-panel-border, #ccc); padding-bottom: 2px; }
.meta { opacity: 0.8; margin: 0 0 8px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 8px; font-weight: 600; }
.status.ok { background: rgba(40,160,80,0.2); }
.status.cancelled { background: rgba(200,150,0,0.25); }
.status.failed { background: rgba(220,50,50,0.25); }
.error { white-space: pre-wrap; border-left: 3px solid var(--vscode-errorForeground, #c00); padding: 6px 10px;
  background: var(--vscode-inputValidation-errorBackground, rgba(220,50,50,0.08)); }
table { border-collapse: collapse; margin: 4px 0; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid var(--vscode-panel-border, #ddd);
  font-variant-numeric: tabular-nums; }
th:first-child, td:first-child { text-align: left; }
th { font-weight: 600; }
td.warn { color: var(--vscode-editorWarning-foreground, #b80); font-weight: 600; }
svg.loss { max-width: 100%; height: auto; }
svg.loss .axis { stroke: currentColor; stroke-opacity: 0.5; stroke-width: 1; }
svg.loss .grid { stroke: currentColor; stroke-opacity: 0.12; stroke-width: 1; }
svg.loss .curve { fill: none; stroke: var(--vscode-charts-blue, #1a73e8); stroke-width: 1.8; stroke-linejoin: round; }
svg.loss text { fill: currentColor; font-size: 11px; }
svg.loss text.scale { font-style: italic; opacity: 0.7; }
.empty { opacity: 0.7; font-style: italic; }
`;

/** The state the flowchart page starts in when opened from a test (no VS Code). */
export function standaloneState(file: string, result: FlowchartViewState["result"]): FlowchartViewState {
  return { file, result, error: result?.error ?? null };
}
