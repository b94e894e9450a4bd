#!/usr/bin/env bash
# Installs what building and testing hsm-notary needs on a fresh Debian machine that has
# Rust (rustup), Node, Python and apt: the wasm targets, the Debian packages the tests use
# as real parts (SoftHSM2, CNCF distribution), and the Python packages of the independent
# envelope checks (jwcrypto, cbor2, cryptography).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> rust targets (wasm32-unknown-unknown for the component; wasm32-wasip2 ships wasm-component-ld)"
rustup target add wasm32-unknown-unknown wasm32-wasip2 >/dev/null

APT_PACKAGES=(softhsm2 docker-registry apache2-utils)
need_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "==> apt packages: ${need_apt[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian starts docker-registry as a service where systemd runs; the tests start their
# own on free ports, so a system one is harmless.

if ! python3 -c "import jwcrypto, cbor2, cryptography" 2>/dev/null; then
  echo "==> python packages: jwcrypto cbor2 cryptography"
  python3 -m pip install --quiet --user jwcrypto cbor2 cryptography 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages jwcrypto cbor2 cryptography
fi
