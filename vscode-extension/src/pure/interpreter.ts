// Which Python runs the language server, and what to tell the user when it cannot.
// Pure: no `vscode` import, so node's test runner can load it directly.

import { execFile } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";

export type InterpreterSource = "setting" | "python-extension" | "default";

export interface InterpreterInputs {
  /** The `qvr.pythonPath` setting (empty or undefined when unset). */
  configured?: string;
  /** The Python extension's active interpreter for this workspace, when it has one. */
  pythonExtension?: string;
  /** First workspace folder, for `${workspaceFolder}` in the setting. */
  workspaceFolder?: string;
  /** Home directory, for `~` in the setting. */
  home?: string;
  platform?: NodeJS.Platform;
}

export interface ResolvedInterpreter {
  command: string;
  source: InterpreterSource;
}

/** Expands `${workspaceFolder}`, `${userHome}` and a leading `~` in a configured path. */
export function expandPath(value: string, workspaceFolder?: string, home: string = os.homedir()): string {
  let out = value.trim();
  if (workspaceFolder !== undefined) {
    out = out.split("${workspaceFolder}").join(workspaceFolder);
  }
  out = out.split("${userHome}").join(home);
  if (out === "~") {
    out = home;
  } else if (out.startsWith("~/") || out.startsWith("~\\")) {
    out = path.join(home, out.slice(2));
  }
  return out;
}

/** The setting wins, then the Python extension's interpreter, then `python3` (`python` on Windows). */
export function resolveInterpreter(inputs: InterpreterInputs): ResolvedInterpreter {
  const configured = inputs.configured?.trim();
  if (configured) {
    return { command: expandPath(configured, inputs.workspaceFolder, inputs.home), source: "setting" };
  }
  const fromExtension = inputs.pythonExtension?.trim();
  if (fromExtension) {
    return { command: fromExtension, source: "python-extension" };
  }
  return { command: (inputs.platform ?? process.platform) === "win32" ? "python" : "python3", source: "default" };
}

/** The server's command line after the interpreter. */
export function serverArgs(extra: readonly string[] = []): string[] {
  return ["-m", "quivers_lsp", ...extra.filter((a) => typeof a === "string" && a.length > 0)];
}

/** Arguments that check the interpreter can import the server before starting it. */
export const PROBE_ARGS: readonly string[] = ["-c", "import quivers_lsp"];

export type ProbeResult =
  | { ok: true }
  | { ok: false; reason: "not-found" | "missing-package" | "failed"; detail: string };

/** Runs `python -c "import quivers_lsp"`; never rejects. */
export function probeInterpreter(command: string, cwd?: string, timeoutMs = 20000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(command, [...PROBE_ARGS], { cwd, timeout: timeoutMs, windowsHide: true }, (error, _stdout, stderr) => {
      if (!error) {
        resolve({ ok: true });
        return;
      }
      const err = error as NodeJS.ErrnoException & { killed?: boolean };
      const text = String(stderr ?? "").trim();
      if (err.code === "ENOENT" || err.code === "EACCES") {
        resolve({ ok: false, reason: "not-found", detail: err.message });
      } else if (/ModuleNotFoundError|No module named/.test(text)) {
        resolve({ ok: false, reason: "missing-package", detail: lastLine(text) });
      } else {
        resolve({ ok: false, reason: "failed", detail: lastLine(text) || err.message });
      }
    });
  });
}

function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  return lines.length ? lines[lines.length - 1].trim() : "";
}

/**
 * The message shown when the server cannot start, with the fix. `inSourceTree` is true
 * when the workspace is a checkout of Quivers itself (its pyproject names the package).
 */
export function probeFailureMessage(
  interpreter: ResolvedInterpreter,
  result: Exclude<ProbeResult, { ok: true }>,
  inSourceTree: boolean,
): string {
  const where = describeSource(interpreter);
  if (result.reason === "not-found") {
    return (
      `QVR: cannot run the Python interpreter '${interpreter.command}' (${where}). ` +
      `Set "qvr.pythonPath" to a Python 3.11+ interpreter that has Quivers installed.`
    );
  }
  const install = inSourceTree ? "pip install -e ." : "pip install quivers";
  if (result.reason === "missing-package") {
    return (
      `QVR: the language server is not installed for '${interpreter.command}' (${where}). ` +
      `Fix: run \`${interpreter.command} -m ${install}\`` +
      (inSourceTree ? " in the Quivers checkout" : "") +
      `, or set "qvr.pythonPath" to an interpreter that has it.`
    );
  }
  return (
    `QVR: '${interpreter.command} -c "import quivers_lsp"' failed (${where}): ${result.detail}. ` +
    `Reinstall with \`${interpreter.command} -m ${install}\` or set "qvr.pythonPath".`
  );
}

export function describeSource(interpreter: ResolvedInterpreter): string {
  switch (interpreter.source) {
    case "setting":
      return "from the qvr.pythonPath setting";
    case "python-extension":
      return "the Python extension's active interpreter";
    default:
      return "the default interpreter";
  }
}

/** True when a pyproject.toml text declares the `quivers` project. */
export function isQuiversPyproject(text: string): boolean {
  return /^\s*name\s*=\s*["']quivers["']/m.test(text);
}
