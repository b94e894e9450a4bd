#!/usr/bin/env bash
# Installs what web/ needs on a fresh Debian machine that has Rust, Node and apt:
# Chromium from Debian (the browser test never downloads a browser of its own) and the
# pinned npm packages of web/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x /usr/bin/chromium ]; then
    echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo unknown))"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi

cd web
npm ci --no-audit --no-fund
