// Parses Mermaid files with the real mermaid library under a jsdom window.
// Usage: node check.mjs FILE...   Prints one JSON line {file, ok, error} per file and
// exits 1 if any file does not parse.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>", { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ["DOMParser", "Element", "HTMLElement", "Node", "navigator"]) {
  if (!(name in globalThis)) {
    Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true });
  }
}

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  try {
    const result = await mermaid.parse(text);
    if (!result || result.diagramType !== "flowchart-v2") {
      throw new Error(`not a flowchart: ${JSON.stringify(result)}`);
    }
    console.log(JSON.stringify({ file, ok: true, error: null }));
  } catch (err) {
    failed += 1;
    console.log(JSON.stringify({ file, ok: false, error: String(err && err.message ? err.message : err).split("\n")[0] }));
  }
}
process.exit(failed ? 1 : 0);
