// Entry point: a thin client. Language knowledge lives in the server (quivers_lsp).

import * as vscode from "vscode";
import { FlowchartPanel } from "./flowchartPanel";
import { CLIENT_COMMANDS, SERVER_COMMANDS } from "./pure/protocol";
import { type RunCommand, RunController } from "./runs";
import { ServerManager } from "./server";

let manager: ServerManager | undefined;

/** The document a command applies to: its argument (a URI or URI string), else the active QVR editor. */
function targetDocument(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) {
    return arg;
  }
  if (typeof arg === "string" && arg.length > 0) {
    return vscode.Uri.parse(arg);
  }
  const editor = vscode.window.activeTextEditor;
  if (editor && editor.document.languageId === "qvr") {
    return editor.document.uri;
  }
  const visible = vscode.window.visibleTextEditors.find((e) => e.document.languageId === "qvr");
  return visible?.document.uri;
}

function noDocument(): void {
  void vscode.window.showWarningMessage("QVR: open a .qvr file first.");
}

export function activate(context: vscode.ExtensionContext): { server: ServerManager } {
  const log = vscode.window.createOutputChannel("QVR");
  const server = new ServerManager(log);
  manager = server;
  const flowchart = new FlowchartPanel(context.extensionUri, server, log);
  const runs = new RunController(server, log);
  context.subscriptions.push(log, server, flowchart, runs);

  const runCommand = (command: RunCommand) => async (uriArg?: unknown, target?: unknown) => {
    const uri = targetDocument(uriArg);
    if (!uri) {
      return noDocument();
    }
    await runs.run(command, uri, typeof target === "string" ? target : undefined);
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(CLIENT_COMMANDS.restartServer, async () => {
      log.appendLine("Restarting the language server.");
      await server.restart();
    }),
    vscode.commands.registerCommand(CLIENT_COMMANDS.sample, runCommand(SERVER_COMMANDS.sample)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.fitSvi, runCommand(SERVER_COMMANDS.fitSvi)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.runNuts, runCommand(SERVER_COMMANDS.runNuts)),
    vscode.commands.registerCommand(CLIENT_COMMANDS.cancelRun, () => runs.cancel()),
    vscode.commands.registerCommand(CLIENT_COMMANDS.showFlowchart, async (uriArg?: unknown, target?: unknown) => {
      const uri = targetDocument(uriArg);
      if (!uri) {
        return noDocument();
      }
      await flowchart.show(uri, typeof target === "string" ? target : undefined);
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("qvr.pythonPath") || e.affectsConfiguration("qvr.server.args")) {
        log.appendLine("Settings changed: restarting the language server.");
        void server.restart();
      }
    }),
  );

  void server.start();
  return { server };
}

export async function deactivate(): Promise<void> {
  await manager?.stop();
  manager = undefined;
}
