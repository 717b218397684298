// The `options` object of a run command, from the `qvr.run.options` setting: only the
// keys the run kind reads, with valid types; paths (`data`, `state`, `resume`)
// resolved against the workspace folder. The key lists and rules are the run
// contract's (quivers/jobs/protocol.py, exported as quivers/jobs/run-options.json);
// the unit tests check they agree.

import * as path from "node:path";

export type RunKindName = "sample" | "svi" | "nuts";

/** The setting keys each run reads (`target` comes from the command, not the setting).
 * An SVI fit whose `data` is a text corpus reads the corpus keys and not `steps`,
 * `batch`, `length`; the server reports the keys it ignored (`ignored_options`). */
export const OPTION_KEYS: Record<RunKindName, readonly string[]> = {
  sample: ["seed", "data", "n", "length"],
  svi: [
    "seed", "data", "steps", "lr", "batch", "length", "device",
    "seq_len", "batch_size", "epochs", "val_fraction", "guide", "clip_norm",
    "eval_every", "checkpoint_every", "state", "resume",
  ],
  nuts: ["seed", "data", "warmup", "samples", "chains", "step_size", "max_tree_depth", "batch", "length", "chain_method", "device", "compile"],
};

export interface OptionRule {
  type: "integer" | "number" | "string" | "boolean";
  minimum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  /** The values a string option accepts. */
  enum?: readonly string[];
  /** A regular expression a string option matches. */
  pattern?: string;
  /** A file path: resolved against the workspace folder. */
  path?: boolean;
}

export const OPTION_RULES: Record<string, OptionRule> = {
  seed: { type: "integer", minimum: 0 },
  data: { type: "string", path: true },
  n: { type: "integer", minimum: 1 },
  steps: { type: "integer", minimum: 1 },
  lr: { type: "number", exclusiveMinimum: 0 },
  warmup: { type: "integer", minimum: 0 },
  samples: { type: "integer", minimum: 1 },
  chains: { type: "integer", minimum: 1 },
  step_size: { type: "number", exclusiveMinimum: 0 },
  max_tree_depth: { type: "integer", minimum: 1 },
  batch: { type: "integer", minimum: 1 },
  length: { type: "integer", minimum: 1 },
  chain_method: { type: "string", enum: ["vectorized", "sequential", "parallel"] },
  device: { type: "string", pattern: "^(cpu|cuda|cuda:[0-9]+|mps|auto)$" },
  compile: { type: "boolean" },
  seq_len: { type: "integer", minimum: 1 },
  batch_size: { type: "integer", minimum: 1 },
  epochs: { type: "integer", minimum: 1 },
  val_fraction: { type: "number", minimum: 0, exclusiveMaximum: 1 },
  guide: { type: "string", enum: ["prior", "amortized"] },
  clip_norm: { type: "number", minimum: 0 },
  eval_every: { type: "integer", minimum: 1 },
  checkpoint_every: { type: "integer", minimum: 1 },
  state: { type: "string", path: true },
  resume: { type: "string", path: true },
};

export interface RunOptionsResult {
  options: Record<string, unknown>;
  /** Settings that were ignored, with why (shown in the output channel). */
  ignored: string[];
}

/** Why `value` breaks `rule`, or undefined when it is valid. */
function violation(rule: OptionRule, value: unknown): string | undefined {
  if (rule.type === "boolean") {
    return typeof value === "boolean" ? undefined : "must be true or false";
  }
  if (rule.type === "string") {
    if (typeof value !== "string") {
      return rule.path ? "must be a path" : "must be a string";
    }
    if (rule.enum && !rule.enum.includes(value)) {
      return `must be one of ${rule.enum.join(", ")}`;
    }
    if (rule.pattern && !new RegExp(rule.pattern).test(value)) {
      return `must match ${rule.pattern}`;
    }
    return undefined;
  }
  const integer = rule.type === "integer";
  const ok =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (rule.minimum === undefined || value >= rule.minimum) &&
    (rule.exclusiveMinimum === undefined || value > rule.exclusiveMinimum) &&
    (rule.exclusiveMaximum === undefined || value < rule.exclusiveMaximum);
  if (ok) {
    return undefined;
  }
  const sign = rule.minimum === 0 ? "a non-negative" : "a positive";
  const below = rule.exclusiveMaximum === undefined ? "" : ` below ${rule.exclusiveMaximum}`;
  return `must be ${sign} ${integer ? "integer" : "number"}${below}`;
}

export function runOptions(
  kind: RunKindName,
  settings: unknown,
  target?: string,
  workspaceFolder?: string,
): RunOptionsResult {
  const options: Record<string, unknown> = {};
  const ignored: string[] = [];
  if (target) {
    options.target = target;
  }
  if (!settings || typeof settings !== "object" || Array.isArray(settings)) {
    return { options, ignored };
  }
  const keys = OPTION_KEYS[kind];
  for (const [key, value] of Object.entries(settings as Record<string, unknown>)) {
    if (value === null || value === undefined || value === "") {
      continue;
    }
    const rule = OPTION_RULES[key];
    if (!rule) {
      ignored.push(`${key}: not a run option`);
      continue;
    }
    if (!keys.includes(key)) {
      continue; // another kind's option: the setting is shared by every run
    }
    const why = violation(rule, value);
    if (why) {
      ignored.push(`${key}: ${why}`);
      continue;
    }
    options[key] =
      rule.path && workspaceFolder && !path.isAbsolute(value as string)
        ? path.join(workspaceFolder, value as string)
        : value;
  }
  return { options, ignored };
}
