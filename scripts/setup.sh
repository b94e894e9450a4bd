#!/usr/bin/env bash
# Installs what building and testing hsm-notary needs on a fresh Debian machine that has
# Rust (rustup), Node and apt: the wasm targets, and the Debian packages the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> rust targets (wasm32-unknown-unknown for the component; wasm32-wasip2 ships wasm-component-ld)"
rustup target add wasm32-unknown-unknown wasm32-wasip2 >/dev/null

need_apt=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "==> apt packages: ${need_apt[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
