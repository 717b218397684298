// The flowchart preview: a webview beside the editor showing the server's Mermaid chart.

import * as path from "node:path";
import * as vscode from "vscode";
import { debounce, type Debounced } from "./pure/debounce";
import { flowchartHtml, makeNonce } from "./pure/html";
import {
  FLOWCHART_REQUEST,
  type FlowchartResult,
  type FlowchartToHost,
  type FlowchartToWebview,
  type FlowchartViewState,
} from "./pure/protocol";
import type { ServerManager } from "./server";

const VIEW_TYPE = "qvr.flowchart";
const EDIT_DEBOUNCE_MS = 300;

export class FlowchartPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private uri: vscode.Uri | undefined;
  private target: string | undefined;
  private last: FlowchartResult | null = null;
  /** The error of the latest answer (null when it charted). */
  private lastError: string | null = null;
  private requestSeq = 0;
  private readonly refresh: Debounced;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly server: ServerManager,
    private readonly log: vscode.OutputChannel,
  ) {
    this.refresh = debounce(() => void this.update(), EDIT_DEBOUNCE_MS);
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (this.panel && this.uri && e.document.uri.toString() === this.uri.toString()) {
          this.post({ pending: true });
          this.refresh.trigger();
        }
      }),
      // The server publishes diagnostics after it re-analyses: ask again then, so the
      // chart converges on the latest analysis even when an edit outran it.
      vscode.languages.onDidChangeDiagnostics((e) => {
        if (this.panel && this.uri && e.uris.some((u) => u.toString() === this.uri?.toString())) {
          this.refresh.trigger();
        }
      }),
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (this.panel && editor && editor.document.languageId === "qvr" && editor.document.uri.toString() !== this.uri?.toString()) {
          this.uri = editor.document.uri;
          this.target = undefined;
          this.last = null;
          this.lastError = null;
          this.refresh.cancel();
          void this.update();
        }
      }),
      server.onDidChangeClient(() => {
        if (this.panel) {
          void this.update();
        }
      }),
    );
  }

  /** Opens (or reveals) the preview for `uri`, optionally charting `target`. */
  async show(uri: vscode.Uri, target?: string): Promise<void> {
    if (this.uri?.toString() !== uri.toString()) {
      this.last = null;
      this.lastError = null;
    }
    this.uri = uri;
    this.target = target;
    if (!this.panel) {
      this.panel = this.createPanel();
    } else {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    await this.update();
  }

  private createPanel(): vscode.WebviewPanel {
    const media = vscode.Uri.joinPath(this.extensionUri, "dist", "media");
    const panel = vscode.window.createWebviewPanel(
      VIEW_TYPE,
      "QVR Flowchart",
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, localResourceRoots: [media], retainContextWhenHidden: true },
    );
    const webview = panel.webview;
    webview.html = flowchartHtml({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      mermaidUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "mermaid.min.js")).toString(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "flowchart.js")).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, "flowchart.css")).toString(),
    });
    webview.onDidReceiveMessage((m: FlowchartToHost) => void this.onMessage(m), undefined, this.disposables);
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.refresh.cancel();
    });
    return panel;
  }

  private fileName(): string {
    return this.uri ? path.basename(this.uri.path) : "";
  }

  private post(partial: Partial<FlowchartViewState>): void {
    if (!this.panel) {
      return;
    }
    const state: FlowchartViewState = { file: this.fileName(), result: this.chartedResult(), error: this.lastError, ...partial };
    const message: FlowchartToWebview = { type: "update", state };
    void this.panel.webview.postMessage(message);
  }

  /** The last good chart, marked as not current while the file has errors (the page dims it). */
  private chartedResult(): FlowchartResult | null {
    if (!this.last) {
      return null;
    }
    return this.lastError ? { ...this.last, mermaid: null, error: this.lastError } : this.last;
  }

  /** Requests the chart for the current document and sends it to the page. */
  async update(): Promise<void> {
    if (!this.panel || !this.uri) {
      return;
    }
    this.panel.title = `Flowchart: ${this.fileName()}`;
    const client = this.server.current ?? (await this.server.ensure());
    if (!client) {
      this.lastError = "The QVR language server is not running (see the QVR output; QVR: Restart Language Server retries).";
      this.post({ pending: false });
      return;
    }
    const seq = ++this.requestSeq;
    try {
      const params: { uri: string; target?: string } = { uri: this.uri.toString() };
      if (this.target) {
        params.target = this.target;
      }
      const result = await client.sendRequest<FlowchartResult | null>(FLOWCHART_REQUEST, params);
      if (seq !== this.requestSeq) {
        return;
      }
      if (result?.mermaid) {
        this.last = result;
        this.lastError = null;
      } else {
        // Keep the last good chart (for the page to dim, for saving and reveals) and say why it is stale.
        this.lastError = result?.error ?? "The server has no flowchart for this file.";
        if (this.last && result?.targets) {
          this.last = { ...this.last, targets: result.targets };
        }
      }
      this.post({ pending: false });
    } catch (e) {
      if (seq !== this.requestSeq) {
        return;
      }
      this.log.appendLine(`qvr/flowchart failed: ${String(e)}`);
      this.lastError = `The flowchart request failed: ${e instanceof Error ? e.message : String(e)}`;
      this.post({ pending: false });
    }
  }

  private async onMessage(message: FlowchartToHost): Promise<void> {
    switch (message.type) {
      case "ready":
        if (this.last || this.lastError) {
          this.post({});
        }
        return;
      case "reveal":
        return this.reveal(message.id);
      case "target":
        this.target = message.target;
        return this.update();
      case "save":
        return this.save(message.format, message.svg);
    }
  }

  private async reveal(id: string): Promise<void> {
    const node = this.last?.nodes.find((n) => n.id === id);
    if (!node?.range || !this.uri) {
      return;
    }
    const { start, end } = node.range;
    const range = new vscode.Range(start.line, start.character, end.line, end.character);
    const visible = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === this.uri?.toString());
    const document = visible?.document ?? (await vscode.workspace.openTextDocument(this.uri));
    const editor = await vscode.window.showTextDocument(document, {
      viewColumn: visible?.viewColumn ?? vscode.ViewColumn.One,
      selection: range,
      preserveFocus: false,
    });
    editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  private async save(format: "mmd" | "svg", svg?: string): Promise<void> {
    if (!this.uri || !this.last?.mermaid) {
      return;
    }
    const base = path.basename(this.uri.path).replace(/\.qvr$/i, "");
    const name = `${base}${this.last.target && this.last.target !== base ? `.${this.last.target}` : ""}.${format}`;
    const defaultUri = vscode.Uri.joinPath(this.uri, "..", name);
    const dest = await vscode.window.showSaveDialog({
      defaultUri,
      filters: format === "mmd" ? { Mermaid: ["mmd"] } : { SVG: ["svg"] },
      saveLabel: format === "mmd" ? "Save Mermaid" : "Save SVG",
    });
    if (!dest) {
      return;
    }
    const text = format === "mmd" ? this.last.mermaid : svg;
    if (!text) {
      return;
    }
    await vscode.workspace.fs.writeFile(dest, Buffer.from(format === "svg" ? `<?xml version="1.0" encoding="UTF-8"?>\n${text}\n` : `${text}\n`, "utf8"));
    void vscode.window.showInformationMessage(`Saved ${path.basename(dest.path)}`);
  }

  dispose(): void {
    this.refresh.cancel();
    this.panel?.dispose();
    vscode.Disposable.from(...this.disposables).dispose();
  }
}
