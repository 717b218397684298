// The `options` object of a run command, from the `qvr.run.options` setting: only the
// keys the run kind reads (editor-protocol.md), with valid types; `data` resolved
// against the workspace folder.

import * as path from "node:path";

export type RunKindName = "sample" | "svi" | "nuts";

const COMMON = ["seed", "data", "batch", "length"] as const;
export const OPTION_KEYS: Record<RunKindName, readonly string[]> = {
  sample: [...COMMON, "n"],
  svi: [...COMMON, "n", "steps", "lr"],
  nuts: [...COMMON, "n", "warmup", "samples", "chains"],
};

const INTEGER_KEYS = new Set(["seed", "batch", "length", "n", "steps", "warmup", "samples", "chains"]);

export interface RunOptionsResult {
  options: Record<string, unknown>;
  /** Settings that were ignored, with why (shown in the output channel). */
  ignored: string[];
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
    if (!keys.includes(key)) {
      if (!Object.values(OPTION_KEYS).some((k) => k.includes(key))) {
        ignored.push(`${key}: not a run option`);
      }
      continue;
    }
    if (key === "data") {
      if (typeof value !== "string") {
        ignored.push("data: must be a path");
        continue;
      }
      options.data = workspaceFolder && !path.isAbsolute(value) ? path.join(workspaceFolder, value) : value;
    } else if (INTEGER_KEYS.has(key)) {
      if (typeof value !== "number" || !Number.isInteger(value) || value < (key === "seed" ? 0 : 1)) {
        ignored.push(`${key}: must be ${key === "seed" ? "a non-negative" : "a positive"} integer`);
        continue;
      }
      options[key] = value;
    } else {
      if (typeof value !== "number" || !(value > 0)) {
        ignored.push(`${key}: must be a positive number`);
        continue;
      }
      options[key] = value;
    }
  }
  return { options, ignored };
}
