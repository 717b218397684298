// Builds the extension: copies the one TextMate grammar from the repository's
// grammars/ folder, bundles the extension (with vscode-languageclient) into
// dist/extension.js, and the flowchart page's script, style and mermaid into dist/media.
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const production = process.argv.includes("--production");
const r = (...p) => path.join(root, ...p);

fs.mkdirSync(r("syntaxes"), { recursive: true });
fs.copyFileSync(r("..", "grammars", "qvr.tmLanguage.json"), r("syntaxes", "qvr.tmLanguage.json"));

fs.rmSync(r("dist"), { recursive: true, force: true });
fs.mkdirSync(r("dist", "media"), { recursive: true });

await esbuild.build({
  entryPoints: [r("src", "extension.ts")],
  outfile: r("dist", "extension.js"),
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node18",
  external: ["vscode"],
  minify: production,
  sourcemap: production ? false : "linked",
  logLevel: "warning",
});

await esbuild.build({
  entryPoints: [r("src", "webview", "flowchart.ts")],
  outfile: r("dist", "media", "flowchart.js"),
  bundle: true,
  platform: "browser",
  format: "iife",
  target: "es2020",
  minify: production,
  logLevel: "warning",
});

fs.copyFileSync(r("src", "webview", "flowchart.css"), r("dist", "media", "flowchart.css"));
fs.copyFileSync(r("node_modules", "mermaid", "dist", "mermaid.min.js"), r("dist", "media", "mermaid.min.js"));
console.log(`built ${production ? "(production) " : ""}dist/extension.js, dist/media/{flowchart.js,flowchart.css,mermaid.min.js}, syntaxes/qvr.tmLanguage.json`);
