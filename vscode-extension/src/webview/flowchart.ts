// The flowchart page's script (runs inside the webview, or in a plain browser in tests).
// Renders the server's Mermaid text with the bundled mermaid library, keeps the last
// good chart visible (dimmed) while the file has errors, and reports clicks on nodes.

import type { FlowchartToHost, FlowchartToWebview, FlowchartViewState } from "../pure/protocol";
import { nodeIdFromSvgId } from "../pure/protocol";

interface MermaidApi {
  initialize(config: Record<string, unknown>): void;
  render(id: string, text: string): Promise<{ svg: string }>;
}

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare const mermaid: MermaidApi;
declare function acquireVsCodeApi(): VsCodeApi;

const vscode: VsCodeApi | undefined = typeof acquireVsCodeApi === "function" ? acquireVsCodeApi() : undefined;

const chart = document.getElementById("chart") as HTMLElement;
const errorBox = document.getElementById("error") as HTMLElement;
const title = document.getElementById("title") as HTMLElement;
const targetSelect = document.getElementById("target") as HTMLSelectElement;
const saveMmd = document.getElementById("save-mmd") as HTMLButtonElement;
const saveSvg = document.getElementById("save-svg") as HTMLButtonElement;
const fit = document.getElementById("fit") as HTMLButtonElement;

let renderSeq = 0;
/** The user's Fit choice; until they press the button, fit when it costs little legibility. */
let fitChoice: boolean | null = null;
let lastMermaid: string | null = null;
let current: FlowchartViewState | null = null;

function post(message: FlowchartToHost): void {
  vscode?.postMessage(message);
}

function isDark(): boolean {
  const cls = document.body.classList;
  return cls.contains("vscode-dark") || cls.contains("vscode-high-contrast");
}

mermaid.initialize({
  startOnLoad: false,
  securityLevel: "strict",
  theme: isDark() ? "dark" : "default",
  htmlLabels: false,
  flowchart: { htmlLabels: false, useMaxWidth: false },
});

function showError(message: string | null): void {
  if (message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    document.body.classList.add("has-error");
  } else {
    errorBox.textContent = "";
    errorBox.hidden = true;
    document.body.classList.remove("has-error");
  }
}

function updateTargets(state: FlowchartViewState): void {
  const targets = state.result?.targets ?? [];
  const selected = state.result?.target ?? "";
  targetSelect.hidden = targets.length < 2;
  const same =
    targetSelect.options.length === targets.length && targets.every((t, i) => targetSelect.options[i].value === t);
  if (!same) {
    targetSelect.replaceChildren(
      ...targets.map((t) => {
        const opt = document.createElement("option");
        opt.value = t;
        opt.textContent = t;
        return opt;
      }),
    );
  }
  if (selected) {
    targetSelect.value = selected;
  }
}

function wireNodes(state: FlowchartViewState): number {
  const known = (state.result?.nodes ?? []).map((n) => n.id);
  const byId = new Map((state.result?.nodes ?? []).map((n) => [n.id, n]));
  let count = 0;
  chart.querySelectorAll<SVGGElement>("g.node").forEach((el) => {
    const id = nodeIdFromSvgId(el.id, known);
    if (!id) {
      return;
    }
    count++;
    el.dataset.qvrNode = id;
    const node = byId.get(id);
    if (node?.range) {
      el.classList.add("qvr-clickable");
      el.setAttribute("tabindex", "0");
      el.setAttribute("role", "button");
      const line = node.range.start.line + 1;
      const tip = document.createElementNS("http://www.w3.org/2000/svg", "title");
      tip.textContent = `${node.label} (${node.kind}) · line ${line} · click to reveal`;
      el.appendChild(tip);
    }
  });
  return count;
}

chart.addEventListener("click", (event) => {
  const target = (event.target as Element | null)?.closest<SVGGElement>("g.node");
  const id = target?.dataset.qvrNode;
  if (id) {
    post({ type: "reveal", id });
  }
});

chart.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" && event.key !== " ") {
    return;
  }
  const id = (event.target as Element | null)?.closest<SVGGElement>("g.node")?.dataset.qvrNode;
  if (id) {
    event.preventDefault();
    post({ type: "reveal", id });
  }
});

async function render(state: FlowchartViewState): Promise<void> {
  current = state;
  vscode?.setState(state);
  title.textContent = state.result?.target ? `${state.file} · ${state.result.target}` : state.file || "QVR flowchart";
  updateTargets(state);
  const text = state.result?.mermaid ?? null;
  const error = state.error ?? state.result?.error ?? null;
  document.body.classList.toggle("pending", !!state.pending);

  if (!text) {
    showError(error ?? "No flowchart for this file.");
    document.body.dataset.state = "error";
    chart.classList.toggle("stale", lastMermaid !== null);
    if (lastMermaid === null) {
      chart.replaceChildren();
    }
    saveSvg.disabled = lastMermaid === null;
    saveMmd.disabled = lastMermaid === null;
    return;
  }
  if (text === lastMermaid && chart.querySelector("svg")) {
    showError(error);
    chart.classList.remove("stale");
    document.body.dataset.state = error ? "error" : "ok";
    return;
  }
  const seq = ++renderSeq;
  try {
    const { svg } = await mermaid.render(`qvr-chart-${seq}`, text);
    if (seq !== renderSeq) {
      return; // a newer update arrived meanwhile
    }
    chart.innerHTML = svg;
    chart.classList.remove("stale");
    applyFit();
    lastMermaid = text;
    const count = wireNodes(state);
    document.body.dataset.nodes = String(count);
    showError(error);
    document.body.dataset.state = error ? "error" : "ok";
    saveSvg.disabled = false;
    saveMmd.disabled = false;
  } catch (e) {
    if (seq !== renderSeq) {
      return;
    }
    // Mermaid leaves an error element behind on failure; remove it.
    document.getElementById(`dqvr-chart-${seq}`)?.remove();
    showError(`The flowchart could not be drawn: ${e instanceof Error ? e.message : String(e)}`);
    chart.classList.toggle("stale", lastMermaid !== null);
    document.body.dataset.state = "error";
  }
}

saveMmd.addEventListener("click", () => post({ type: "save", format: "mmd" }));
saveSvg.addEventListener("click", () => {
  const svg = chart.querySelector("svg");
  if (svg) {
    const copy = svg.cloneNode(true) as SVGSVGElement;
    copy.querySelectorAll("g.node > title").forEach((t) => t.remove());
    copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
    post({ type: "save", format: "svg", svg: new XMLSerializer().serializeToString(copy) });
  }
});
/** Fits the chart to the panel's width when the user chose so, or by default when that shrinks it by at most 40%. */
function applyFit(): void {
  const svg = chart.querySelector("svg");
  let on = fitChoice;
  if (on === null) {
    const natural = svg ? Number(svg.getAttribute("width")) || svg.getBoundingClientRect().width : 0;
    const available = chart.clientWidth - 24;
    on = natural > available && available / natural >= 0.6;
  }
  chart.classList.toggle("fit", on);
  fit.setAttribute("aria-pressed", String(on));
}

fit.addEventListener("click", () => {
  fitChoice = !chart.classList.contains("fit");
  applyFit();
});
window.addEventListener("resize", () => applyFit());
targetSelect.addEventListener("change", () => post({ type: "target", target: targetSelect.value }));

window.addEventListener("message", (event: MessageEvent<FlowchartToWebview>) => {
  const message = event.data;
  if (message && message.type === "update") {
    void render(message.state);
  }
});

// Start: a state embedded in the page (tests), else the one VS Code kept, then ask for fresh data.
const embedded = document.getElementById("qvr-initial");
const restored = (vscode?.getState() as FlowchartViewState | undefined) ?? undefined;
if (embedded?.textContent) {
  void render(JSON.parse(embedded.textContent) as FlowchartViewState);
} else if (restored && !current) {
  void render(restored);
}
post({ type: "ready" });
