#!/usr/bin/env bash
# Everything CI checks for the VS Code extension, except the code-server end-to-end
# test (scripts/e2e.sh): install from the lockfile and Chromium, then `npm test` (the
# package.json script every extension has): build, type check, lint, grammar tests,
# package the VSIX, then the unit, VSIX smoke, headless-Chromium page and server
# contract tests.
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

step "npm test: build, type check (tsc), lint (eslint), grammar tests, package (vsce), then node --test"
# The contract and page tests talk to the real server when \$QVR_PYTHON (default python3)
# can import quivers_lsp; the contract tests skip, and the pages use the committed
# flowchart fixture, when it cannot.
npm test

step "done"
echo "artifacts: $(ls artifacts | tr '\n' ' ')"
