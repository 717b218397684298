// The reference program's flowchart: from the language server when it answers
// `qvr/flowchart`, else the committed fixture (test/fixtures/reference-flowchart.json).
import fs from "node:fs";
import path from "node:path";
import { extRoot, referenceProgram, repoRoot } from "./paths.mjs";
import { LspClient } from "./lsp-client.mjs";

export const fixturePath = path.join(extRoot, "test", "fixtures", "reference-flowchart.json");

export function fixture() {
  return JSON.parse(fs.readFileSync(fixturePath, "utf8"));
}

/** Returns { result, source: "server" | "fixture", note }. */
export async function referenceFlowchart() {
  if (process.env.QVR_FLOWCHART_SOURCE === "fixture") {
    return { result: fixture(), source: "fixture", note: "QVR_FLOWCHART_SOURCE=fixture" };
  }
  let client;
  try {
    client = await LspClient.start(process.env.QVR_PYTHON || "python3", ["-m", "quivers_lsp"], { cwd: repoRoot });
    const uri = `file://${referenceProgram}`;
    client.notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "qvr", version: 1, text: fs.readFileSync(referenceProgram, "utf8") },
    });
    const result = await client.request("qvr/flowchart", { uri }, 20000);
    if (!result || typeof result.mermaid !== "string") {
      throw new Error(`unexpected qvr/flowchart result: ${JSON.stringify(result)}`);
    }
    return { result, source: "server", note: "python -m quivers_lsp" };
  } catch (e) {
    return { result: fixture(), source: "fixture", note: `server unavailable: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    await client?.close();
  }
}
