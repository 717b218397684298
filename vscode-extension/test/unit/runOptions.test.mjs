import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { extRoot, pure } from "../helpers/paths.mjs";

const { runOptions, OPTION_KEYS } = pure("runOptions");

test("each run gets only the options it reads, plus the target", () => {
  const settings = { seed: 3, steps: 500, lr: 0.01, warmup: 20, samples: 30, chains: 2, n: 8 };
  assert.deepEqual(runOptions("svi", settings, "m").options, { target: "m", seed: 3, steps: 500, lr: 0.01, n: 8 });
  assert.deepEqual(runOptions("nuts", settings).options, { seed: 3, warmup: 20, samples: 30, chains: 2, n: 8 });
  assert.deepEqual(runOptions("sample", settings).options, { seed: 3, n: 8 });
  assert.deepEqual(runOptions("sample", undefined, "p").options, { target: "p" });
  assert.deepEqual(runOptions("sample", [1, 2]).options, {});
});

test("bad values are ignored with a reason; data is resolved against the workspace", () => {
  const { options, ignored } = runOptions("svi", { steps: 0, lr: -1, seed: 1.5, data: "data/x.pt", colour: "red" }, undefined, "/ws");
  assert.deepEqual(options, { data: path.join("/ws", "data/x.pt") });
  assert.deepEqual(ignored.sort(), [
    "colour: not a run option",
    "lr: must be a positive number",
    "seed: must be a non-negative integer",
    "steps: must be a positive integer",
  ]);
  assert.equal(runOptions("sample", { data: "/abs/d.json" }, undefined, "/ws").options.data, "/abs/d.json");
});

test("the qvr.run.options schema lists exactly the protocol's options", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(extRoot, "package.json"), "utf8"));
  const schema = manifest.contributes.configuration.properties["qvr.run.options"];
  const all = new Set(Object.values(OPTION_KEYS).flat());
  assert.deepEqual(Object.keys(schema.properties).sort(), [...all].sort());
});
