#!/usr/bin/env bash
# Everything CI checks for the VS Code extension, except the code-server end-to-end
# test (scripts/e2e.sh): install from the lockfile, build, type check, lint, grammar
# tests, package the VSIX, then the unit, VSIX smoke and headless-Chromium page tests.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '\n== %s (%ss)\n' "$1" "$((SECONDS - start))"; }

step "npm ci"
npm ci --no-audit --no-fund

if ! command -v chromium >/dev/null 2>&1; then
  step "apt-get install chromium (for the page tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

step "build (esbuild; copies ../grammars/qvr.tmLanguage.json)"
npm run --silent build

step "type check (tsc: extension + webview script)"
npx tsc -p .
npx tsc -p src/webview

step "lint (eslint)"
npx eslint .

step "grammar tests (vscode-tmgrammar-test)"
npx vscode-tmgrammar-test -g ../grammars/qvr.tmLanguage.json "test/grammar/*.qvr"

step "package (vsce)"
rm -f qvr.vsix
npx vsce package --no-dependencies --allow-missing-repository --out qvr.vsix </dev/null

step "tests: unit, VSIX smoke, pages in headless Chromium, server contract (node --test)"
# The contract and page tests talk to the real server when \$QVR_PYTHON (default python3)
# can import quivers_lsp; the contract tests skip, and the pages use the committed
# flowchart fixture, when it cannot.
mkdir -p artifacts
node --test --test-concurrency=1 test/unit/ test/smoke/ test/render/ test/contract/

step "done"
echo "artifacts: $(ls artifacts | tr '\n' ' ')"
