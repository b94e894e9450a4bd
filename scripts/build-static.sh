#!/usr/bin/env bash
# Builds the statically linked hsm-notary (musl; no dynamic loader, no libc needed) for
# distroless images such as Ratify's, whose external verifier plugins must be static.
# It verifies as the default build does, with the same embedded component; it cannot load
# PKCS#11 modules (there is no dynamic loader), so signing with an HSM needs the default
# build. scripts/setup.sh installs the rustup target and musl-tools (musl-gcc, for ring).
set -euo pipefail
cd "$(dirname "$0")/.."
triple="$(uname -m)-unknown-linux-musl"
cargo build --release --locked --target "$triple" -p hsm-notary --bin hsm-notary
echo "static binary: target/$triple/release/hsm-notary"
