import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pure, repoRoot } from "../helpers/paths.mjs";

const {
  resolveInterpreter, expandPath, serverArgs, probeInterpreter, probeFailureMessage, isQuiversPyproject, PROBE_ARGS,
} = pure("interpreter");

test("the setting wins over the Python extension and the default", () => {
  assert.deepEqual(resolveInterpreter({ configured: "/opt/py/bin/python", pythonExtension: "/venv/bin/python" }), {
    command: "/opt/py/bin/python",
    source: "setting",
  });
});

test("without a setting the Python extension's interpreter is used", () => {
  assert.deepEqual(resolveInterpreter({ configured: "  ", pythonExtension: "/venv/bin/python" }), {
    command: "/venv/bin/python",
    source: "python-extension",
  });
});

test("without either, python3 (python on Windows)", () => {
  assert.deepEqual(resolveInterpreter({ platform: "linux" }), { command: "python3", source: "default" });
  assert.deepEqual(resolveInterpreter({ configured: "", pythonExtension: "", platform: "win32" }), {
    command: "python",
    source: "default",
  });
});

test("${workspaceFolder}, ${userHome} and ~ are expanded in the setting", () => {
  assert.equal(expandPath("${workspaceFolder}/.venv/bin/python", "/w", "/h"), "/w/.venv/bin/python");
  assert.equal(expandPath("~/venv/bin/python", undefined, "/h"), path.join("/h", "venv/bin/python"));
  assert.equal(expandPath("${userHome}/py", undefined, "/h"), "/h/py");
  assert.equal(
    resolveInterpreter({ configured: "${workspaceFolder}/py", workspaceFolder: "/ws" }).command,
    "/ws/py",
  );
});

test("server command line: -m quivers_lsp then the extra arguments", () => {
  assert.deepEqual(serverArgs(), ["-m", "quivers_lsp"]);
  assert.deepEqual(serverArgs(["--log-level", "debug", ""]), ["-m", "quivers_lsp", "--log-level", "debug"]);
  assert.deepEqual([...PROBE_ARGS], ["-c", "import quivers_lsp"]);
});

function fakePython(body) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qvr-fakepy-"));
  const file = path.join(dir, "python");
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

test("probe: an interpreter that imports the package is ok", async () => {
  const py = fakePython('[ "$1" = "-c" ] && [ "$2" = "import quivers_lsp" ] && exit 0; exit 3');
  assert.deepEqual(await probeInterpreter(py), { ok: true });
});

test("probe: a missing package is reported as such", async () => {
  const py = fakePython(
    "echo 'Traceback (most recent call last):' >&2; echo \"ModuleNotFoundError: No module named 'quivers_lsp'\" >&2; exit 1",
  );
  const result = await probeInterpreter(py);
  assert.equal(result.ok, false);
  assert.equal(result.reason, "missing-package");
  assert.match(result.detail, /No module named 'quivers_lsp'/);
});

test("probe: a missing interpreter is not-found, another failure is failed", async () => {
  const missing = await probeInterpreter(path.join(os.tmpdir(), "no-such-python-qvr"));
  assert.equal(missing.ok, false);
  assert.equal(missing.reason, "not-found");
  const broken = await probeInterpreter(fakePython("echo 'ImportError: torch is broken' >&2; exit 1"));
  assert.equal(broken.reason, "failed");
  assert.match(broken.detail, /torch is broken/);
});

test("the failure message names the interpreter and the fix", () => {
  const interp = { command: "/venv/bin/python", source: "setting" };
  const missing = { ok: false, reason: "missing-package", detail: "No module named 'quivers_lsp'" };
  const inTree = probeFailureMessage(interp, missing, true);
  assert.match(inTree, /\/venv\/bin\/python -m pip install -e \./);
  assert.match(inTree, /qvr\.pythonPath/);
  const outside = probeFailureMessage(interp, missing, false);
  assert.match(outside, /pip install quivers/);
  assert.doesNotMatch(outside, /install -e/);
  const notFound = probeFailureMessage({ command: "python3", source: "default" }, { ok: false, reason: "not-found", detail: "ENOENT" }, false);
  assert.match(notFound, /cannot run the Python interpreter 'python3'/);
  assert.match(notFound, /qvr\.pythonPath/);
});

test("a Quivers checkout is recognised by its pyproject", () => {
  assert.equal(isQuiversPyproject(fs.readFileSync(path.join(repoRoot, "pyproject.toml"), "utf8")), true);
  assert.equal(isQuiversPyproject('[project]\nname = "other"\n'), false);
});
