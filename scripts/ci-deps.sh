#!/usr/bin/env bash
# Tools the editor tests use beyond Python (run by .ci/run before scripts/test):
# - Neovim (Debian's 0.7): a real LSP client for tests/server/test_neovim.py;
# - mermaid 11.12.0 + jsdom 26.1.0 (tests/mermaid, lock file committed): parses every
#   example's flowchart in tests/analysis/test_mermaid.py;
# - a C++ compiler: TorchInductor builds MCMC(compile=True)'s kernels with it on CPU
#   (tests/inference/test_compile.py checks the compiled path when one is present).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if ! command -v g++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq g++
fi

if ! command -v nvim >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq neovim
fi

if command -v npm >/dev/null 2>&1; then
    npm ci --prefix tests/mermaid --no-audit --no-fund --loglevel=error
else
    echo "ci-deps: npm not found; the mermaid check will be skipped" >&2
fi
