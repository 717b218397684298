// The server's Mermaid text is valid for the bundled mermaid (11.12.0), checked under
// Node with jsdom (26.1.0) as the DOM.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import { referenceFlowchart } from "../helpers/flowchart-source.mjs";

let mermaid;
let chart;

before(async () => {
  const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>", { pretendToBeVisual: true });
  globalThis.window = dom.window;
  globalThis.document = dom.window.document;
  for (const key of ["DOMParser", "Element", "HTMLElement", "SVGElement", "Node", "navigator"]) {
    if (!(key in globalThis)) {
      globalThis[key] = dom.window[key];
    }
  }
  mermaid = (await import("mermaid")).default;
  chart = await referenceFlowchart();
  console.log(`flowchart from ${chart.source} (${chart.note})`);
});

test("the reference program's flowchart parses as a Mermaid flowchart", async () => {
  const parsed = await mermaid.parse(chart.result.mermaid);
  assert.ok(parsed, "mermaid.parse accepts it");
  assert.equal(parsed.diagramType, "flowchart-v2");
});

test("every node the server lists is declared in the Mermaid text, and the reference chart has them all", () => {
  const { mermaid: text, nodes } = chart.result;
  assert.ok(nodes.length >= 6, `${nodes.length} nodes`);
  for (const node of nodes) {
    assert.match(text, new RegExp(`^\\s*${node.id}\\b`, "m"), `${node.id} declared`);
    assert.ok(["input", "morphism", "combinator", "site", "observed", "value", "return"].includes(node.kind), node.kind);
  }
  const labels = nodes.map((n) => n.label).join(" | ");
  for (const expected of ["tok_embed", "scan(cell)", "lm_head", "next_token"]) {
    assert.ok(labels.includes(expected), `${expected} in ${labels}`);
  }
});

test("broken Mermaid is rejected (the check is real)", async () => {
  await assert.rejects(() => mermaid.parse("flowchart LR\n  n0[\"a\"] --> \n  n1((\"b\"\n"));
});
