// Starts, stops and restarts the language server with vscode-languageclient.

import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { LanguageClient, type LanguageClientOptions, type ServerOptions, TransportKind } from "vscode-languageclient/node";
import { ServerProgress } from "./progress";
import {
  describeSource,
  isQuiversPyproject,
  probeFailureMessage,
  probeInterpreter,
  resolveInterpreter,
  type ResolvedInterpreter,
  serverArgs,
} from "./pure/interpreter";

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
    resolveEnvironment?(env: { path: string } | string): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
  };
  settings?: {
    getExecutionDetails?(resource?: vscode.Uri): { execCommand?: string[] | undefined };
  };
}

/** The Python extension's active interpreter, when that extension is installed. */
async function pythonExtensionInterpreter(resource: vscode.Uri | undefined, log: vscode.OutputChannel): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (!ext) {
    return undefined;
  }
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const envs = api?.environments;
    if (envs) {
      const active = envs.getActiveEnvironmentPath(resource);
      if (active?.path) {
        const resolved = envs.resolveEnvironment ? await envs.resolveEnvironment(active) : undefined;
        return resolved?.executable?.uri?.fsPath ?? active.path;
      }
    }
    const cmd = api?.settings?.getExecutionDetails?.(resource)?.execCommand;
    return cmd && cmd.length ? cmd[0] : undefined;
  } catch (e) {
    log.appendLine(`Could not ask the Python extension for its interpreter: ${String(e)}`);
    return undefined;
  }
}

function workspaceFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

function inQuiversSourceTree(folder: string | undefined): boolean {
  if (!folder) {
    return false;
  }
  try {
    return isQuiversPyproject(fs.readFileSync(path.join(folder, "pyproject.toml"), "utf8"));
  } catch {
    return false;
  }
}

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  /** Set when the last start failed: ensure() then does not retry (and re-notify) on every edit. */
  private startFailed = false;
  private readonly changed = new vscode.EventEmitter<LanguageClient | undefined>();
  /** Progress of the server's runs, shown as cancellable notifications. */
  readonly progress = new ServerProgress();
  /** Fires with the new client after a (re)start, or undefined after a stop. */
  readonly onDidChangeClient = this.changed.event;

  constructor(private readonly log: vscode.OutputChannel) {}

  get current(): LanguageClient | undefined {
    return this.client?.isRunning() ? this.client : undefined;
  }

  /** The running client, starting it if needed (undefined when it cannot start). */
  async ensure(): Promise<LanguageClient | undefined> {
    if (this.current) {
      return this.current;
    }
    if (this.startFailed && !this.starting) {
      return undefined;
    }
    return this.start();
  }

  /** True after a failed start, until the next restart. */
  get failed(): boolean {
    return this.startFailed;
  }

  start(): Promise<LanguageClient | undefined> {
    if (!this.starting) {
      this.starting = this.doStart()
        .then((client) => {
          this.startFailed = client === undefined;
          return client;
        })
        .finally(() => {
          this.starting = undefined;
        });
    }
    return this.starting;
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    const config = vscode.workspace.getConfiguration("qvr");
    const folder = workspaceFolder();
    const interpreter: ResolvedInterpreter = resolveInterpreter({
      configured: config.get<string>("pythonPath") ?? "",
      pythonExtension: config.get<string>("pythonPath")
        ? undefined
        : await pythonExtensionInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri, this.log),
      workspaceFolder: folder,
    });
    const extra = config.get<string[]>("server.args") ?? [];
    const args = serverArgs(Array.isArray(extra) ? extra : []);
    this.log.appendLine(`Interpreter: ${interpreter.command} (${describeSource(interpreter)})`);

    const probe = await probeInterpreter(interpreter.command, folder);
    if (!probe.ok) {
      const message = probeFailureMessage(interpreter, probe, inQuiversSourceTree(folder));
      this.log.appendLine(message);
      void vscode.window.showErrorMessage(message, "Open Settings", "Show Output").then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "qvr.pythonPath");
        } else if (choice === "Show Output") {
          this.log.show(true);
        }
      });
      return undefined;
    }

    const serverOptions: ServerOptions = {
      command: interpreter.command,
      args,
      transport: TransportKind.stdio,
      options: { cwd: folder, env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        { scheme: "file", language: "qvr" },
        { scheme: "untitled", language: "qvr" },
      ],
      outputChannel: this.log,
    };
    this.log.appendLine(`Starting: ${interpreter.command} ${args.join(" ")}`);
    const client = new LanguageClient("qvr", "QVR Language Server", serverOptions, clientOptions);
    this.client = client;
    try {
      await client.start();
    } catch (e) {
      this.log.appendLine(`The language server failed to start: ${String(e)}`);
      void vscode.window.showErrorMessage(`QVR: the language server failed to start: ${String(e)}`, "Show Output").then(
        (choice) => choice && this.log.show(true),
      );
      this.client = undefined;
      return undefined;
    }
    this.progress.attach(client);
    this.changed.fire(client);
    return client;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop();
      } catch (e) {
        this.log.appendLine(`Stopping the language server: ${String(e)}`);
      }
      this.changed.fire(undefined);
    }
  }

  async restart(): Promise<LanguageClient | undefined> {
    if (this.starting) {
      await this.starting;
    }
    await this.stop();
    return this.start();
  }

  dispose(): void {
    void this.stop();
    this.changed.dispose();
    this.progress.dispose();
  }
}
