// Sample / Fit with SVI / Run NUTS: forwards to the server's commands, shows a
// status-bar item while a run is going, and the result in a results webview.
// Progress with a cancel button comes from the server's work-done progress, which
// vscode-languageclient shows in the editor's progress UI.

import * as path from "node:path";
import * as vscode from "vscode";
import { ExecuteCommandRequest } from "vscode-languageclient/node";
import { makeNonce, resultsHtml } from "./pure/html";
import { CLIENT_COMMANDS, type RunResult, SERVER_COMMANDS } from "./pure/protocol";
import { kindTitle, renderResultsBody, summarize } from "./pure/results";
import { runOptions } from "./pure/runOptions";
import type { ServerManager } from "./server";

export type RunCommand = typeof SERVER_COMMANDS.sample | typeof SERVER_COMMANDS.fitSvi | typeof SERVER_COMMANDS.runNuts;

const LABELS: Record<RunCommand, string> = {
  "qvr.sample": "sampling",
  "qvr.fitSvi": "fitting with SVI",
  "qvr.runNuts": "running NUTS",
};

export class RunController implements vscode.Disposable {
  private readonly status: vscode.StatusBarItem;
  private running: { command: RunCommand; uri: vscode.Uri } | undefined;
  private results: vscode.WebviewPanel | undefined;

  constructor(
    private readonly server: ServerManager,
    private readonly log: vscode.OutputChannel,
  ) {
    this.status = vscode.window.createStatusBarItem("qvr.run", vscode.StatusBarAlignment.Left, 100);
    this.status.name = "QVR run";
    this.status.command = CLIENT_COMMANDS.cancelRun;
    // Show the latest progress message (`step 40/200 · loss 1234.5`) in the status bar.
    this.progressListener = server.progress.onDidReport((e) => {
      if (this.running && !e.done && e.message) {
        this.status.text = `$(loading~spin) QVR: ${e.message}`;
      }
    });
  }

  private readonly progressListener: vscode.Disposable;

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  async run(command: RunCommand, uri: vscode.Uri, target?: string): Promise<RunResult | undefined> {
    if (this.running) {
      const choice = await vscode.window.showWarningMessage(
        `QVR: a run is already ${LABELS[this.running.command]}. Cancel it first.`,
        "Cancel run",
      );
      if (choice) {
        await this.cancel();
      }
      return undefined;
    }
    const client = await this.server.ensure();
    if (!client) {
      void vscode.window.showErrorMessage("QVR: the language server is not running (see the QVR output).");
      return undefined;
    }
    const folder = vscode.workspace.getWorkspaceFolder(uri)?.uri.fsPath ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const { options, ignored } = runOptions(
      kindOf(command),
      vscode.workspace.getConfiguration("qvr", uri).get("run.options"),
      target,
      folder,
    );
    for (const why of ignored) {
      this.log.appendLine(`qvr.run.options ignored: ${why}`);
    }
    const file = path.basename(uri.path);
    this.running = { command, uri };
    this.status.text = `$(loading~spin) QVR: ${LABELS[command]} ${file}`;
    this.status.tooltip = "A QVR run is in progress. Click to cancel it.";
    this.status.show();
    this.log.appendLine(`${command} ${uri.toString()} ${JSON.stringify(options)}`);
    let result: RunResult | undefined;
    try {
      result = (await client.sendRequest(ExecuteCommandRequest.type, {
        command,
        arguments: [uri.toString(), options],
      })) as RunResult | undefined;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.log.appendLine(`${command} failed: ${message}`);
      result = { ok: false, kind: kindOf(command), target: target ?? null, error: message };
    } finally {
      this.running = undefined;
      this.status.hide();
    }
    if (!result || typeof result !== "object") {
      result = { ok: false, kind: kindOf(command), error: "The server returned no result." };
    }
    for (const key of result.ignored_options ?? []) {
      this.log.appendLine(`the server ignored run option '${key}'`);
    }
    this.log.appendLine(summarize(result));
    this.showResults(result, file);
    if (!result.ok) {
      void vscode.window.showErrorMessage(`QVR: ${summarize(result)}`);
    }
    return result;
  }

  async cancel(): Promise<void> {
    const client = this.server.current;
    if (!client) {
      return;
    }
    try {
      await client.sendRequest(ExecuteCommandRequest.type, { command: SERVER_COMMANDS.cancelRun, arguments: [] });
      if (this.running) {
        this.status.text = `$(loading~spin) QVR: cancelling…`;
      }
    } catch (e) {
      this.log.appendLine(`qvr.cancelRun failed: ${String(e)}`);
    }
  }

  showResults(result: RunResult, file?: string): void {
    if (!this.results) {
      this.results = vscode.window.createWebviewPanel(
        "qvr.results",
        "QVR Results",
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: false, localResourceRoots: [] },
      );
      this.results.onDidDispose(() => {
        this.results = undefined;
      });
    } else {
      this.results.reveal(undefined, true);
    }
    this.results.title = `QVR: ${kindTitle(result.kind)}`;
    this.results.webview.html = resultsHtml({ nonce: makeNonce(), body: renderResultsBody(result, file) });
  }

  dispose(): void {
    this.progressListener.dispose();
    this.status.dispose();
    this.results?.dispose();
  }
}

function kindOf(command: RunCommand): "sample" | "svi" | "nuts" {
  return command === "qvr.sample" ? "sample" : command === "qvr.fitSvi" ? "svi" : "nuts";
}
