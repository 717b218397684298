// End to end in code-server (a real VS Code) with the packaged extension: open the
// reference program, see it highlighted, break it and see the error in Problems, hover
// `cell` for its type, open the flowchart preview. Every wait polls for UI state.
// Run by scripts/e2e.sh, which starts code-server and sets QVR_E2E_URL.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { artifactsDir } from "../helpers/paths.mjs";
import { launch } from "../helpers/browser.mjs";

const url = process.env.QVR_E2E_URL;
const workspace = process.env.QVR_E2E_WORKSPACE;
const skip = url && workspace ? false : "run through scripts/e2e.sh (QVR_E2E_URL, QVR_E2E_WORKSPACE)";
const MOD = "Control";
let browser;
let page;

const shot = (name) => page.screenshot({ path: path.join(artifactsDir, `e2e-${name}.png`) });

/** Polls `fn` until it returns a truthy value; fails with `what` after `timeout` ms. */
async function until(what, fn, timeout = 60000, interval = 250) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) {
        return last;
      }
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

async function runCommand(title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible" });
  await input.fill(`>${title}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
  await row.waitFor({ state: "visible", timeout: 20000 });
  await input.press("Enter");
  await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
}

/** The token span with exactly `text` on the first editor line containing `lineText`. */
function token(lineText, text) {
  return page
    .locator(".monaco-editor .view-lines .view-line", { hasText: lineText })
    .first()
    .locator("span > span", { hasText: new RegExp(`^${text.replace(/[()]/g, "\\$&")}$`) })
    .first();
}

before(async () => {
  if (skip) {
    return;
  }
  fs.mkdirSync(artifactsDir, { recursive: true });
  browser = await launch();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${url}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 120000 });
});

after(async () => {
  if (page) {
    await shot("final").catch(() => {});
  }
  await browser?.close();
});

test("the reference program opens as QVR and is highlighted", { skip }, async () => {
  await until("the explorer to list the file", () => page.locator(".explorer-folders-view .monaco-list-row", { hasText: "vanilla_rnn_lm.qvr" }).count());
  await page.locator(".explorer-folders-view .monaco-list-row", { hasText: "vanilla_rnn_lm.qvr" }).first().click();
  await until("the editor to show the program", () => token("program vanilla_rnn_lm", "program").count());
  await until("the language mode to be QVR", async () =>
    ((await page.locator("#status\\.editor\\.mode").textContent().catch(() => "")) ?? "").includes("QVR"),
  );
  // Keywords, types, families and plain names get different token colours.
  const color = async (line, text) => token(line, text).evaluate((e) => getComputedStyle(e).color);
  const colors = await until("token colours", async () => {
    const c = {
      keyword: await color("morphism cell", "morphism"),
      family: await color("morphism cell", "Normal"),
      builtin: await color("object Token", "FinSet"),
      operator: await color("let backbone", ">>"),
      plain: await color("export vanilla_rnn_lm", "vanilla_rnn_lm"),
    };
    return new Set(Object.values(c)).size >= 3 ? c : false;
  });
  assert.notEqual(colors.keyword, colors.plain);
  await shot("highlighted");
});

// Hovers `cell` until the server answers with its type (it may still be starting);
// each try waits for the hover widget to show. Returns the hover locator.
async function hoverCell(label) {
  const cell = token("morphism cell", "cell");
  const hover = page.locator(".monaco-hover", { hasText: "codomain" });
  await until(label, async () => {
    await page.mouse.move(5, 5);
    await cell.hover();
    try {
      await hover.first().waitFor({ state: "visible", timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  }, 90000, 100);
  return hover;
}

test("hovering `cell` shows its type", { skip }, async () => {
  const hover = await hoverCell("the hover with cell's type");
  const text = await hover.first().innerText();
  assert.match(text, /Embedded \* Hidden/);
  assert.match(text, /Hidden/);
  await shot("hover");
  await page.keyboard.press("Escape");
});

test("an error shows in the Problems panel, and goes away when fixed", { skip }, async () => {
  // Go to `scan(cell)` on line 7 and make it `scan(cel)`.
  await token("let backbone", "cell").click();
  await page.keyboard.press("End");
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("Backspace");
  await until("the edit", () => page.locator(".view-line", { hasText: "scan(cel)" }).count());
  await page.keyboard.press(`${MOD}+Shift+M`);
  const problem = page.locator(".markers-panel .monaco-list-row", { hasText: "cel" });
  await until("the error in Problems", () => problem.count());
  const text = await problem.first().innerText();
  assert.match(text, /cel/);
  await shot("problems");
  await page.keyboard.press(`${MOD}+Z`);
  await until("the error to clear", async () => (await problem.count()) === 0);
});

async function chartFrame() {
  return until("the flowchart page", async () => {
    for (const f of page.frames()) {
      if ((await f.locator("#chart").count().catch(() => 0)) > 0) {
        return f;
      }
    }
    return false;
  });
}

test("the flowchart preview opens beside the editor and draws the chart", { skip }, async () => {
  await token("program vanilla_rnn_lm", "program").click();
  await runCommand("QVR: Show Flowchart");
  const frame = await chartFrame();
  await until("the chart's nodes", async () => (await frame.locator("#chart svg g.node").count()) >= 6, 60000);
  const labels = await frame.locator("#chart svg").innerText().catch(async () => frame.locator("#chart svg").textContent());
  for (const label of ["tok_embed", "scan(cell)", "lm_head"]) {
    assert.ok(labels.includes(label), `${label} in the chart`);
  }
  await shot("flowchart");
  // A click on a node reveals its source.
  await frame.locator("#chart g.node", { hasText: "lm_head" }).first().click();
  await until("the editor selection on lm_head", async () =>
    (await page.locator(".monaco-editor .selected-text").count()) > 0,
  );
  // The preview follows edits: replacing the selected `lm_head` breaks the file.
  await page.keyboard.type("lm_hed");
  await until("the preview's error state", async () =>
    (await frame.locator('body[data-state="error"]').count()) > 0 && (await frame.locator("#error").isVisible()),
  );
  const error = await frame.locator("#error").innerText();
  assert.match(error, /lm_hed/);
  assert.equal(await frame.locator("#chart.stale svg g.node").count() >= 6, true, "the last chart stays, dimmed");
  await shot("flowchart-error");
  await page.keyboard.press(`${MOD}+Z`);
  await until("the preview to recover", async () => (await frame.locator('body[data-state="ok"]').count()) > 0);
});

async function pageWith(selector) {
  return until(`a webview with ${selector}`, async () => {
    for (const f of page.frames()) {
      if ((await f.locator(selector).count().catch(() => 0)) > 0) {
        return f;
      }
    }
    return false;
  }, 120000);
}

test("QVR: Sample runs in the server and shows the results panel", { skip }, async () => {
  await token("program vanilla_rnn_lm", "program").click();
  await runCommand("QVR: Sample");
  const frame = await pageWith("table.samples");
  const heading = await frame.locator("h1").innerText();
  assert.match(heading, /Samples · vanilla_rnn_lm/);
  assert.ok((await frame.locator("table.samples tbody tr", { hasText: "next_token" }).count()) === 1);
  await shot("sample-results");
});

test("Fit with SVI shows cancellable progress; Cancel stops it and the results say so", { skip }, async () => {
  await token("program vanilla_rnn_lm", "program").click();
  await runCommand("QVR: Fit with SVI");
  const toast = page.locator(".notification-toast", { hasText: "fitting with SVI" });
  await until("the progress notification with a step, and the status-bar item", async () =>
    /step \d+/.test((await toast.first().innerText().catch(() => "")) ?? "") &&
    (await page.locator(".statusbar-item", { hasText: "QVR: step" }).count()) > 0,
  120000);
  await shot("svi-progress");
  // The toast re-renders on every progress report, so click without waiting for it to be stable.
  await until("a click on Cancel", async () => {
    await toast.first().locator(".monaco-button", { hasText: "Cancel" }).click({ force: true, timeout: 2000 });
    return true;
  }, 20000, 100);
  const frame = await pageWith("h1:has-text('SVI fit') ~ p .status.cancelled");
  assert.ok((await frame.locator("svg.loss polyline.curve").count()) === 1, "the loss so far is drawn");
  await until("the status-bar item to go", async () => (await page.locator(".statusbar-item", { hasText: "QVR: step" }).count()) === 0);
  await shot("svi-cancelled");
});

test("a corpus fit shows tokens per second in its progress; Cancel keeps its checkpoint", { skip }, async () => {
  // The workspace's settings make `data` a text corpus (scripts/e2e.sh copies one in).
  const settingsDir = path.join(workspace, ".vscode");
  const settingsFile = path.join(settingsDir, "settings.json");
  fs.mkdirSync(settingsDir, { recursive: true });
  fs.writeFileSync(
    settingsFile,
    JSON.stringify({ "qvr.run.options": { data: "corpus.txt", seq_len: 16, batch_size: 32, epochs: 1000, eval_every: 5 } }, null, 2),
  );
  const checkpoint = path.join(workspace, "vanilla_rnn_lm.state.pt");
  try {
    await token("program vanilla_rnn_lm", "program").click();
    const toast = page.locator(".notification-toast", { hasText: "fitting with SVI" });
    // the settings file is read when the run starts; retry until VS Code has seen it
    await until("a corpus fit's progress with tokens/s and held-out bits", async () => {
      if ((await toast.count()) === 0) {
        await runCommand("QVR: Fit with SVI");
      }
      const text = (await toast.first().innerText({ timeout: 2000 }).catch(() => "")) ?? "";
      if (/step \d+\/\d+ · loss/.test(text) && !/tok\/s/.test(text)) {
        await runCommand("QVR: Cancel Run"); // an ordinary fit: the settings were not read yet
        return false;
      }
      return /tok\/s · held-out [\d.]+ bits\/token/.test(text);
    }, 180000, 500);
    await shot("corpus-progress");
    await runCommand("QVR: Cancel Run");
    const frame = await pageWith("table.corpus");
    assert.ok((await frame.locator(".status.cancelled").count()) === 1, "marked as stopped");
    const row = await frame.locator("table.corpus tr", { hasText: "checkpoint" }).innerText();
    assert.ok(row.includes(checkpoint), row);
    assert.ok(fs.existsSync(checkpoint), "the checkpoint is on disk");
    assert.match(await frame.locator("table.corpus tr", { hasText: "tokens per second" }).innerText(), /\d/);
    assert.ok((await frame.locator("svg.loss title", { hasText: "Held-out bits per token" }).count()) === 1);
    await shot("corpus-stopped");
  } finally {
    fs.rmSync(settingsDir, { recursive: true, force: true });
    // VS Code sees the deletion a moment later, as it saw the file: until an ordinary
    // fit starts again, the next test's run would still read the corpus as its data.
    const toast = page.locator(".notification-toast", { hasText: "fitting with SVI" });
    await until("an ordinary fit (the corpus settings gone)", async () => {
      if ((await toast.count()) === 0) {
        await runCommand("QVR: Fit with SVI");
        return false;
      }
      const text = (await toast.first().innerText({ timeout: 2000 }).catch(() => "")) ?? "";
      if (!/step \d+\/\d+ · loss/.test(text)) {
        return false;
      }
      await runCommand("QVR: Cancel Run");
      return !/tok\/s/.test(text);
    }, 180000, 500);
    await until("the fit to stop", async () => (await toast.count()) === 0, 60000);
  }
});

test("QVR: Cancel Run stops a NUTS run", { skip }, async () => {
  await token("program vanilla_rnn_lm", "program").click();
  await runCommand("QVR: Run NUTS");
  const toast = page.locator(".notification-toast", { hasText: "NUTS" });
  await until("the NUTS progress", () => toast.count(), 120000);
  await runCommand("QVR: Cancel Run");
  await pageWith("h1:has-text('NUTS posterior') ~ p .status.cancelled");
  await shot("nuts-cancelled");
});

test("changing qvr.pythonPath restarts the server; an interpreter without quivers gets the fix", { skip }, async () => {
  const settingsFile = process.env.QVR_E2E_SETTINGS;
  const empty = process.env.QVR_E2E_EMPTY_PYTHON;
  assert.ok(settingsFile && empty, "QVR_E2E_SETTINGS and QVR_E2E_EMPTY_PYTHON are set");
  const original = fs.readFileSync(settingsFile, "utf8");
  const settings = JSON.parse(original);
  try {
    fs.writeFileSync(settingsFile, JSON.stringify({ ...settings, "qvr.pythonPath": empty }, null, 2));
    const toast = page.locator(".notification-toast", { hasText: "the language server is not installed" });
    await until("the missing-package message", () => toast.count(), 60000);
    const text = await toast.first().innerText();
    assert.ok(text.includes(empty), "names the interpreter");
    assert.match(text, /pip install quivers/);
    assert.match(text, /qvr\.pythonPath/);
    assert.ok((await toast.first().locator(".monaco-button", { hasText: "Open Settings" }).count()) === 1);
    await shot("missing-package");
  } finally {
    fs.writeFileSync(settingsFile, original);
  }
  // Back on the configured interpreter, the server answers again (hover works).
  await page.keyboard.press("Escape");
  await hoverCell("the hover after the restart");
});
