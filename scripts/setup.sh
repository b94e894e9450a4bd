#!/usr/bin/env bash
# Installs what building and testing hsm-notary needs on a fresh Debian machine that has
# Rust (rustup), Node and apt: the wasm and musl targets, the Debian packages the tests use
# as real parts (SoftHSM2, CNCF distribution, htpasswd, OpenSSL as an RFC 3161 TSA),
# musl-tools (the static build), ferro-oci-server (a registry with the referrers API), the
# Python packages of the independent envelope checks (jwcrypto, cbor2, cryptography), and
# web/'s npm packages and Debian's Chromium (setup-web.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> rust targets (wasm32-unknown-unknown for the component; wasm32-wasip2 ships wasm-component-ld; musl for the static build)"
rustup target add wasm32-unknown-unknown wasm32-wasip2 "$(uname -m)-unknown-linux-musl" >/dev/null

APT_PACKAGES=(softhsm2 docker-registry redis-server apache2-utils python3-pip curl openssl musl-tools)
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
  python3 -m pip install --quiet --user "jwcrypto>=1.5,<2" "cbor2>=5.6,<7" "cryptography>=42" 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages "jwcrypto>=1.5,<2" "cbor2>=5.6,<7" "cryptography>=42"
fi

ferro="${CARGO_HOME:-$HOME/.cargo}/bin/ferro-oci-server"
if ! command -v ferro-oci-server >/dev/null 2>&1 && [ ! -x "$ferro" ]; then
  echo "==> ferro-oci-server 1.0.0 (cargo install; a registry with the referrers API)"
  cargo install --quiet --locked ferro-oci-server@1.0.0
fi

# The main job (scripts/demo.sh) needs no browser: it passes --no-web.
if [ "${1:-}" != "--no-web" ]; then
  scripts/setup-web.sh
fi
