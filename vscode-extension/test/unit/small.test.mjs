import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { extRoot, pure } from "../helpers/paths.mjs";

const { debounce } = pure("debounce");
const { nodeIdFromSvgId, CLIENT_COMMANDS, SERVER_COMMANDS } = pure("protocol");

function fakeTimers() {
  const pending = new Map();
  let next = 1;
  return {
    api: {
      set: (fn) => {
        const id = next++;
        pending.set(id, fn);
        return id;
      },
      clear: (id) => pending.delete(id),
    },
    fire() {
      const fns = [...pending.values()];
      pending.clear();
      fns.forEach((f) => f());
    },
    get size() {
      return pending.size;
    },
  };
}

test("debounce: a burst of edits makes one request", () => {
  const timers = fakeTimers();
  let calls = 0;
  const d = debounce(() => calls++, 300, timers.api);
  d.trigger();
  d.trigger();
  d.trigger();
  assert.equal(timers.size, 1);
  assert.equal(d.pending, true);
  timers.fire();
  assert.equal(calls, 1);
  assert.equal(d.pending, false);
  d.trigger();
  d.flush();
  assert.equal(calls, 2);
  d.trigger();
  d.cancel();
  timers.fire();
  assert.equal(calls, 2);
});

test("mermaid's SVG ids map back to flowchart node ids", () => {
  const known = ["n0", "n1", "n12", "my-node"];
  assert.equal(nodeIdFromSvgId("flowchart-n1-3", known), "n1");
  assert.equal(nodeIdFromSvgId("flowchart-n12-0", known), "n12");
  assert.equal(nodeIdFromSvgId("flowchart-my-node-10", known), "my-node");
  assert.equal(nodeIdFromSvgId("qvr-chart-1-flowchart-n0-4", known), "n0");
  assert.equal(nodeIdFromSvgId("flowchart-zz-1", known), null);
});

test("client command ids never collide with the server's", () => {
  for (const id of Object.values(CLIENT_COMMANDS)) {
    assert.match(id, /^qvr\.client\./);
  }
  for (const id of Object.values(SERVER_COMMANDS)) {
    assert.doesNotMatch(id, /^qvr\.client\./);
  }
});

test("pure modules import no vscode", () => {
  const dir = path.join(extRoot, "out", "pure");
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".js"));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), "utf8");
    assert.doesNotMatch(text, /require\(["']vscode["']\)/, f);
  }
});
