// The manifest, the language configuration and the grammar agree with the language.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { extRoot, repoRoot, pure } from "../helpers/paths.mjs";

const manifest = JSON.parse(fs.readFileSync(path.join(extRoot, "package.json"), "utf8"));
const grammar = JSON.parse(fs.readFileSync(path.join(repoRoot, "grammars", "qvr.tmLanguage.json"), "utf8"));
const lark = fs.readFileSync(path.join(repoRoot, "grammars", "qvr.lark"), "utf8");
const { CLIENT_COMMANDS, SERVER_COMMANDS } = pure("protocol");

/** The word literals of the lark grammar: "..." strings made of letters, outside comments. */
export function larkKeywords(text) {
  const words = new Set();
  for (const line of text.split("\n")) {
    const code = line.replace(/\/\/.*$/, "");
    for (const m of code.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(m[1])) {
        words.add(m[1]);
      }
    }
  }
  return words;
}

/** The words of the TextMate grammar's reserved-word rules (`keywords`, `combinators`, `space-kinds`). */
function tmKeywords(g) {
  const words = new Set();
  for (const key of ["keywords", "combinators", "space-kinds"]) {
    for (const p of g.repository[key].patterns) {
      const m = /^\\b\(\?:([A-Za-z0-9_|]+)\)\\b$/.exec(p.match);
      assert.ok(m, `${key}: ${p.match} is a plain word list`);
      m[1].split("|").forEach((w) => words.add(w));
    }
  }
  return words;
}

test("the TextMate keyword list equals the lark grammar's keywords", () => {
  const fromLark = [...larkKeywords(lark)].sort();
  const fromTm = [...tmKeywords(grammar)].sort();
  assert.ok(fromLark.includes("program") && fromLark.includes("FinSet"), "extraction found keywords");
  assert.deepEqual(fromTm, fromLark);
});

test("the lark extraction agrees with quivers.syntax.grammar.keywords() when Python has quivers", (t) => {
  let out;
  try {
    out = execFileSync(process.env.QVR_PYTHON || "python3", ["-c", "import json; from quivers.syntax.grammar import keywords; print(json.dumps(sorted(keywords())))"], {
      cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    t.skip("quivers is not importable here");
    return;
  }
  assert.deepEqual(JSON.parse(out), [...larkKeywords(lark)].sort());
});

test("the grammar's families, roles and algebras match quivers' vocabulary when Python has quivers", (t) => {
  let vocab;
  try {
    vocab = JSON.parse(execFileSync(process.env.QVR_PYTHON || "python3", ["-c",
      "import json; from quivers.core.families import FAMILIES; from quivers.core.vocabulary import ROLES, ALGEBRAS, ARITH_FUNCTIONS, OPTIONS;" +
      "print(json.dumps({'families': sorted(FAMILIES), 'roles': sorted(ROLES), 'algebras': sorted(ALGEBRAS), 'arith': sorted(ARITH_FUNCTIONS)}))"],
      { cwd: repoRoot, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  } catch {
    t.skip("quivers is not importable here");
    return;
  }
  const words = (re) => /\(\?:([^)]*)\)/.exec(re)[1].split("|").sort();
  assert.deepEqual(words(grammar.repository.families.patterns[0].match), vocab.families);
  const roleRule = grammar.repository.options.patterns.find((p) => p.name === "constant.language.role.qvr");
  assert.deepEqual(words(roleRule.match), vocab.roles);
  const algebra = grammar.repository["composition-decl"].captures["2"].patterns[0];
  assert.deepEqual(words(algebra.match), vocab.algebras);
  const arith = grammar.repository.expression.patterns.find((p) => p.name === "support.function.arithmetic.qvr");
  assert.deepEqual(words(arith.match), vocab.arith);
});

test("manifest: language, grammar, settings and client-side commands", () => {
  const c = manifest.contributes;
  assert.deepEqual(c.languages[0].extensions, [".qvr"]);
  assert.equal(c.languages[0].id, "qvr");
  assert.equal(c.grammars[0].scopeName, grammar.scopeName);
  assert.equal(c.grammars[0].path, "./syntaxes/qvr.tmLanguage.json");
  for (const key of ["qvr.pythonPath", "qvr.server.args", "qvr.trace.server", "qvr.run.options"]) {
    assert.ok(c.configuration.properties[key], key);
  }
  const ids = c.commands.map((x) => x.command).sort();
  assert.deepEqual(ids, Object.values(CLIENT_COMMANDS).sort());
  for (const id of Object.values(SERVER_COMMANDS)) {
    assert.ok(!ids.includes(id), `${id} is the server's: vscode-languageclient registers it`);
  }
  const src = fs.readFileSync(path.join(extRoot, "src", "extension.ts"), "utf8");
  assert.doesNotMatch(src, /registerCommand\(\s*["']qvr\.(sample|fitSvi|runNuts|cancelRun)["']/);
});

test("manifest: pinned versions; @types/vscode is not newer than engines.vscode", () => {
  for (const [name, version] of Object.entries({ ...manifest.dependencies, ...manifest.devDependencies })) {
    assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is pinned`);
  }
  const engine = manifest.engines.vscode.replace(/^\^/, "").split(".").map(Number);
  const types = manifest.devDependencies["@types/vscode"].split(".").map(Number);
  assert.ok(types[0] < engine[0] || (types[0] === engine[0] && types[1] <= engine[1]), "types <= engine");
  assert.match(manifest.dependencies["vscode-languageclient"], /^(9|10)\./);
});

test("language configuration: comments, block comments, brackets, indentation after program", () => {
  const conf = JSON.parse(fs.readFileSync(path.join(extRoot, "language-configuration.json"), "utf8"));
  assert.equal(conf.comments.lineComment, "#");
  assert.deepEqual(conf.comments.blockComment, ["#{", "}#"]);
  assert.deepEqual(conf.brackets, [["(", ")"], ["[", "]"], ["{", "}"]]);
  const increase = new RegExp(conf.indentationRules.increaseIndentPattern);
  assert.ok(increase.test("program vanilla_rnn_lm : Token -> Token"));
  assert.ok(!increase.test("    sample h <- backbone"));
  assert.ok(!increase.test("object Token : FinSet 256"));
  const decrease = new RegExp(conf.indentationRules.decreaseIndentPattern);
  assert.ok(decrease.test("    object Foo : FinSet 2"), "a declaration typed in a body goes back to column 0");
  assert.ok(!decrease.test("    let mu = slope * x"), "`let` is also a step: it stays in the body");
  assert.ok(!decrease.test("    sample h <- backbone"));
  const onEnter = new RegExp(conf.onEnterRules[0].beforeText);
  assert.ok(onEnter.test("program p(x, h) : A * H -> H"));
  assert.ok(conf.autoClosingPairs.some((p) => p.open === "#{" && p.close === "}#"));
});
