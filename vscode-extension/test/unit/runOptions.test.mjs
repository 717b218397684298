import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { extRoot, repoRoot, pure } from "../helpers/paths.mjs";

const { runOptions, OPTION_KEYS, OPTION_RULES } = pure("runOptions");
// The run contract, exported by quivers/jobs/protocol.py (its test keeps the file current).
const contract = JSON.parse(fs.readFileSync(path.join(repoRoot, "quivers", "jobs", "run-options.json"), "utf8"));
const manifest = JSON.parse(fs.readFileSync(path.join(extRoot, "package.json"), "utf8"));
const schema = manifest.contributes.configuration.properties["qvr.run.options"];
const settingKeys = (kind) => contract.kinds[kind].filter((k) => contract.options[k].setting);

test("each run gets only the options it reads, plus the target", () => {
  const settings = { seed: 3, steps: 500, lr: 0.01, warmup: 20, samples: 30, chains: 2, n: 8 };
  // `n` is read by sampling only (SVI and NUTS never read it: the run contract's lists)
  assert.deepEqual(runOptions("svi", settings, "m").options, { target: "m", seed: 3, steps: 500, lr: 0.01 });
  assert.deepEqual(runOptions("nuts", settings).options, { seed: 3, warmup: 20, samples: 30, chains: 2 });
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
  const all = new Set(Object.values(OPTION_KEYS).flat());
  assert.deepEqual(Object.keys(schema.properties).sort(), [...all].sort());
});

test("each run's keys are the Python run contract's", () => {
  assert.deepEqual(Object.keys(OPTION_KEYS).sort(), Object.keys(contract.kinds).sort());
  for (const kind of Object.keys(contract.kinds)) {
    assert.deepEqual(OPTION_KEYS[kind], settingKeys(kind), kind);
  }
  assert.ok(OPTION_KEYS.nuts.includes("max_tree_depth") && !OPTION_KEYS.svi.includes("n"));
});

test("the rules and the schema are the contract's: types, bounds, choices, defaults", () => {
  const settings = Object.entries(contract.options).filter(([, o]) => o.setting);
  assert.deepEqual(Object.keys(OPTION_RULES).sort(), settings.map(([k]) => k).sort());
  assert.deepEqual(Object.keys(schema.properties).sort(), settings.map(([k]) => k).sort());
  const checks = ["minimum", "exclusiveMinimum", "exclusiveMaximum", "enum", "pattern"];
  const pick = (o) => JSON.parse(JSON.stringify(Object.fromEntries([["type", o.type], ...checks.map((c) => [c, o[c]])])));
  for (const [key, o] of settings) {
    assert.deepEqual(OPTION_RULES[key], JSON.parse(JSON.stringify({ ...pick(o), path: o.path })), key);
    const p = schema.properties[key];
    assert.deepEqual(pick(p), pick(o), key);
    const shown = o.default === null ? o.description : `${o.description} Default: ${o.default}.`;
    assert.equal(p.description, shown, `${key}: the settings UI states the contract's default`);
  }
});

test("values at the contract's bounds pass, values past them are ignored with a reason", () => {
  for (const [key, rule] of Object.entries(OPTION_RULES)) {
    const kind = Object.keys(OPTION_KEYS).find((k) => OPTION_KEYS[k].includes(key));
    if (rule.type === "boolean") {
      for (const good of [true, false]) {
        assert.equal(runOptions(kind, { [key]: good }).options[key], good, `${key} = ${good}`);
      }
      for (const bad of [1, "true"]) {
        assert.deepEqual(runOptions(kind, { [key]: bad }).ignored, [`${key}: must be true or false`]);
      }
      continue;
    }
    if (rule.type === "string") {
      assert.deepEqual(runOptions(kind, { [key]: 3 }).ignored, [`${key}: must be ${rule.path ? "a path" : "a string"}`]);
      const good = rule.enum ? rule.enum[rule.enum.length - 1] : "cuda:1";
      assert.equal(runOptions(kind, { [key]: good }).options[key], good, key);
      if (rule.enum || rule.pattern) {
        assert.equal(runOptions(kind, { [key]: "cuda:" }).ignored.length, 1, `${key}: not a choice`);
      }
      continue;
    }
    const edge = rule.minimum ?? rule.exclusiveMinimum;
    const valid = rule.minimum !== undefined ? edge : edge + 0.5;
    assert.equal(runOptions(kind, { [key]: valid }).options[key], valid, `${key} = ${valid}`);
    assert.equal(runOptions(kind, { [key]: rule.minimum !== undefined ? edge - 1 : edge }).ignored.length, 1, key);
    assert.equal(runOptions(kind, { [key]: "10" }).ignored.length, 1, `${key}: a string`);
    if (rule.exclusiveMaximum !== undefined) {
      assert.deepEqual(runOptions(kind, { [key]: rule.exclusiveMaximum }).ignored, [`${key}: must be a non-negative number below 1`]);
    }
  }
});

test("a corpus fit's options: paths resolved, choices checked, device and chain method passed on", () => {
  const settings = { data: "corpus.txt", state: "fit/state.pt", resume: "/abs/old.pt", seq_len: 32, guide: "amortized", device: "auto", chain_method: "sequential" };
  const { options, ignored } = runOptions("svi", settings, "lm", "/ws");
  assert.deepEqual(options, {
    target: "lm",
    data: path.join("/ws", "corpus.txt"),
    state: path.join("/ws", "fit/state.pt"),
    resume: "/abs/old.pt",
    seq_len: 32,
    guide: "amortized",
    device: "auto",
  });
  assert.deepEqual(ignored, []); // chain_method is another run's (NUTS) option
  assert.deepEqual(runOptions("nuts", settings).options, { data: "corpus.txt", chain_method: "sequential", device: "auto" });
  assert.deepEqual(runOptions("nuts", { chain_method: "threads", device: "tpu" }).ignored, [
    "chain_method: must be one of vectorized, sequential, parallel",
    "device: must match ^(cpu|cuda|cuda:[0-9]+|mps|auto)$",
  ]);
});

test("compile is NUTS's on/off option: sent to NUTS runs only, checked as a boolean", () => {
  assert.equal(OPTION_RULES.compile.type, "boolean");
  assert.deepEqual(runOptions("nuts", { compile: true, samples: 20 }).options, { compile: true, samples: 20 });
  // SVI has no compiled path: the shared setting's key is not sent to it
  assert.deepEqual(runOptions("svi", { compile: true, steps: 5 }), { options: { steps: 5 }, ignored: [] });
  assert.equal(schema.properties.compile.type, "boolean");
});
