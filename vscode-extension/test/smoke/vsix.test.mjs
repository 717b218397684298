// The packaged extension, without VS Code: unzip the VSIX, give it a stub `vscode`
// module, activate it, and check that its code and dependencies resolve inside the
// package and that every contributed command is registered.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { extRoot } from "../helpers/paths.mjs";

const vsix = process.env.QVR_VSIX || path.join(extRoot, "qvr.vsix");

function unpack() {
  assert.ok(fs.existsSync(vsix), `${vsix} exists (run npm run package first)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qvr-vsix-"));
  execFileSync("unzip", ["-q", vsix, "-d", dir]);
  return path.join(dir, "extension");
}

test("the VSIX holds the bundle, the webview assets, the grammar and nothing from the dev tree", () => {
  const ext = unpack();
  const manifest = JSON.parse(fs.readFileSync(path.join(ext, "package.json"), "utf8"));
  for (const rel of [
    manifest.main,
    "dist/media/mermaid.min.js",
    "dist/media/flowchart.js",
    "dist/media/flowchart.css",
    manifest.contributes.grammars[0].path,
    manifest.contributes.languages[0].configuration,
  ]) {
    assert.ok(fs.existsSync(path.join(ext, rel)), `${rel} is packaged`);
  }
  const grammar = JSON.parse(fs.readFileSync(path.join(ext, manifest.contributes.grammars[0].path), "utf8"));
  const source = JSON.parse(fs.readFileSync(path.join(extRoot, "..", "grammars", "qvr.tmLanguage.json"), "utf8"));
  assert.deepEqual(grammar, source, "the packaged grammar is the repository's grammars/qvr.tmLanguage.json");
  assert.ok(!fs.existsSync(path.join(ext, "node_modules")), "dependencies are bundled");
  assert.ok(!fs.existsSync(path.join(ext, "src")), "no sources");
  assert.ok(!fs.existsSync(path.join(ext, "test")), "no tests");
});

test("the packaged extension activates with a stub vscode and registers every contributed command", async () => {
  const ext = unpack();
  const stubDir = path.join(ext, "node_modules", "vscode");
  fs.mkdirSync(stubDir, { recursive: true });
  fs.copyFileSync(path.join(extRoot, "test", "smoke", "vscode-stub.cjs"), path.join(stubDir, "index.js"));
  const manifest = JSON.parse(fs.readFileSync(path.join(ext, "package.json"), "utf8"));
  const req = createRequire(path.join(ext, "package.json"));
  const vscode = req("vscode");
  const stub = vscode.__stub;
  // An interpreter that does not exist: activation must not throw, and must say how to fix it.
  stub.setSettings({ "qvr.pythonPath": path.join(os.tmpdir(), "no-such-python-for-qvr") });

  const entry = req.resolve(path.join(ext, manifest.main));
  const extension = req(entry);
  assert.equal(typeof extension.activate, "function");
  assert.equal(typeof extension.deactivate, "function");

  // vscode-languageclient came from inside the bundle, not from this repository's node_modules.
  const loaded = Object.keys(req.cache).filter((f) => f.includes(`${path.sep}node_modules${path.sep}`) && !f.startsWith(stubDir));
  assert.deepEqual(loaded, [], "nothing outside the package was loaded");
  const bundle = fs.readFileSync(entry, "utf8");
  assert.match(bundle, /qvr\/flowchart/);
  assert.match(bundle, /window\/workDoneProgress\/create|workDoneProgress/, "the language client is bundled");

  const context = { subscriptions: [], extensionUri: vscode.Uri.file(ext), extensionPath: ext, globalState: { get() {}, update: async () => {} } };
  const api = extension.activate(context);
  const contributed = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual([...new Set(stub.registered)].filter((id) => contributed.includes(id)).sort(), contributed);
  for (const id of ["qvr.sample", "qvr.fitSvi", "qvr.runNuts", "qvr.cancelRun"]) {
    assert.ok(!stub.registered.includes(id), `${id} is left to vscode-languageclient`);
  }
  // Activation-time commands declared in menus exist too.
  for (const menu of Object.values(manifest.contributes.menus)) {
    for (const item of menu) {
      assert.ok(contributed.includes(item.command), `${item.command} in a menu is contributed`);
    }
  }
  assert.ok(api && api.server, "activate returns the server manager");
  const started = await api.server.start();
  assert.equal(started, undefined, "no server with a missing interpreter");
  const error = stub.messages.find((m) => m.level === "error");
  assert.ok(error, "the user is told");
  assert.match(error.text, /cannot run the Python interpreter/);
  assert.match(error.text, /qvr\.pythonPath/);
  await extension.deactivate();
  context.subscriptions.forEach((d) => d.dispose());
});
