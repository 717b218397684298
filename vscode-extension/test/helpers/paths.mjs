// Paths shared by the tests.
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const extRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const repoRoot = path.resolve(extRoot, "..");
export const referenceProgram = path.join(repoRoot, "docs", "examples", "source", "vanilla_rnn_lm.qvr");
export const artifactsDir = path.join(extRoot, "artifacts");
const require = createRequire(import.meta.url);

/** Loads a compiled pure module (tsc emits src/ into out/). */
export function pure(name) {
  return require(path.join(extRoot, "out", "pure", `${name}.js`));
}
