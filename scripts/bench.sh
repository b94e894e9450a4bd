#!/usr/bin/env bash
# Every performance goal of the project as a ratio against its floor, measured in one run:
#
#   scripts/bench.sh            # criterion benches + serve bench + openssl speed + CLI runs
#   BENCH_QUICK=1 scripts/bench.sh   # shorter criterion runs (noisier)
#
# Runs `cargo bench --bench verify` (criterion), `cargo bench --bench serve` and
# `--bench approval`, `openssl speed`
# for the same public-key operations, and times whole `hsm-notary verify --oci-layout`
# processes; then prints one table (also written to target/bench-report.txt). Wall-clock
# figures on a shared machine: compare the ratios within one run, not across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/target
mkdir -p "$OUT"

CRITERION_ARGS=()
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  CRITERION_ARGS=(--warm-up-time 1 --measurement-time 2)
fi

echo "bench.sh: building" >&2
cargo build --release --locked --workspace --bins --benches >&2

echo "bench.sh: criterion benches (benches/verify.rs)" >&2
cargo bench --locked --bench verify -- "${CRITERION_ARGS[@]}" >"$OUT/bench-verify.log" 2>&1 || {
  tail -n 40 "$OUT/bench-verify.log" >&2
  exit 1
}

echo "bench.sh: serve bench (benches/serve.rs)" >&2
cargo bench --locked --bench serve >"$OUT/bench-serve.log" 2>&1 || {
  tail -n 40 "$OUT/bench-serve.log" >&2
  exit 1
}

echo "bench.sh: approval bench (benches/approval.rs)" >&2
cargo bench --locked --bench approval >"$OUT/bench-approval.log" 2>&1 || {
  tail -n 40 "$OUT/bench-approval.log" >&2
  exit 1
}

echo "bench.sh: openssl speed (the floor for the signature arithmetic)" >&2
# -mr: machine-readable `+F2:` (RSA) and `+F4:` (ECDSA) lines, operations per second.
openssl speed -mr -seconds 3 rsa3072 ecdsap256 >"$OUT/bench-openssl.log" 2>/dev/null

echo "bench.sh: whole verify processes" >&2
python3 "$ROOT/scripts/bench_report.py" --time-cli "$ROOT" >"$OUT/bench-cli.log"

python3 "$ROOT/scripts/bench_report.py" "$OUT" | tee "$OUT/bench-report.txt"
{
  echo
  echo "Multi-party approval (benches/approval.rs; no goal is set for it):"
  cat "$OUT/approval-bench.txt"
} | tee -a "$OUT/bench-report.txt"
