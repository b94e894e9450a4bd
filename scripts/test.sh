#!/usr/bin/env bash
# Runs every test of hsm-notary. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p target
# Licences, bans and sources of every dependency (deny.toml). Advisories are not checked:
# the RustSec database is on GitHub, which the build machine cannot reach (README).
if ! command -v cargo-deny >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-deny" ]; then
  echo "==> cargo-deny 0.20.2 (cargo install)"
  cargo install --quiet --locked --no-default-features cargo-deny@0.20.2
fi
cargo deny check licenses bans sources
# One build, in release: Cranelift compiles the component in about half a second there
# (tens of seconds in a debug build), and the same artifacts serve every test.
# The CLI tests run the `hsm-notary` binary, which `cargo test` builds only for its own
# package's tests: build it first. `--workspace --tests` resolves features exactly as
# `cargo test --workspace` does (dev-dependencies included), so nothing is built twice.
cargo build --release --locked --workspace --bins --tests
# The statically linked binary for distroless images (tests/admission.rs runs it).
scripts/build-static.sh
cargo test --release --locked --workspace -- --nocapture 2>&1 | tee target/test-output.log
# The hand-written ECDSA arithmetic on the 32-bit field the wasm build uses, natively
# (its own target directory, so the main build's artifacts stay as they are).
CARGO_TARGET_DIR=target/fiat32 cargo test --release --locked -p notary-verifier \
  --features fiat-32 --lib signature::ecdsa_vartime 2>&1 | tee -a target/test-output.log
# The same component in Node and in headless Chromium (jco).
scripts/test-web.sh 2>&1 | tee target/test-web-output.log
# Every fuzz target (but the layout one, which needs an instrumented host build) for a few
# seconds on the stable toolchain, so the harnesses stay buildable and the regressions
# replay (fuzz/README.md).
FUZZ_HOST=0 scripts/fuzz.sh 3 2>&1 | tee target/fuzz-output.log
echo "all tests passed (log: target/test-output.log)"
