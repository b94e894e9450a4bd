#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain (fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default: 10 seconds for every target. Builds fuzz/ (libfuzzer-sys) with the
# sanitizer-coverage instrumentation cargo-fuzz uses with `--sanitizer none` (stable
# `-C` flags only), replays fuzz/regressions/<target>/ first, seeds
# target/fuzz/seeds/<target>/ from tests/conformance (fuzz/seed_corpus.py) and
# fuzz/seeds/<target>/, then runs each target; new inputs accumulate in
# target/fuzz/corpus/<target>/, findings land in target/fuzz/artifacts/<target>/, each
# run's output in target/fuzz/logs/<target>.log. Exits 1 if any target crashed, ran out
# of memory or time on one input, or failed to run.
#
# Environment:
#   FUZZ_JOBS=N   libFuzzer -jobs=N -workers=N (N parallel runs of SECONDS each; default 1)
#   FUZZ_HOST=0|1 build the `host` feature (oci_layout, and the host half of
#                 artifact_reference; pulls wasmtime and builds the wasm component first).
#                 Default: 1 when a selected target uses it. With 0, host-only targets are
#                 skipped.
#   FUZZ_ARGS     extra libFuzzer flags for every run (e.g. "-max_len=65536").
#   FUZZ_CPU=1    SECONDS is CPU time, not wall time: the run is stopped (SIGINT, which
#                 libFuzzer answers with its final stats) once the fuzzing process has used
#                 that much CPU, so a run at `nice 19` beside other work still gets its
#                 budget. One job only. The CPU seconds used are written to the log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ALL_TARGETS=(
  envelope_jws envelope_cose timestamp_token dn trust_policy certificate_chain
  ber_to_der revocation payload http_bundle artifact_reference oci_manifest oci_layout
  rsa_encoding ecdsa_vartime
)
HOST_ONLY=(oci_layout)
USES_HOST=(oci_layout artifact_reference)

SECS=10
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  SECS=$1
  shift
fi
if [[ $# -gt 0 ]]; then
  TARGETS=("$@")
else
  TARGETS=("${ALL_TARGETS[@]}")
fi

contains() {
  local needle=$1
  shift
  local item
  for item in "$@"; do
    [[ $item == "$needle" ]] && return 0
  done
  return 1
}

for t in "${TARGETS[@]}"; do
  if ! contains "$t" "${ALL_TARGETS[@]}"; then
    echo "fuzz.sh: unknown target '$t' (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

want_host=0
for t in "${TARGETS[@]}"; do
  if contains "$t" "${USES_HOST[@]}"; then want_host=1; fi
done
HOST=${FUZZ_HOST:-$want_host}
FEATURES=()
if [[ $HOST == 1 ]]; then
  FEATURES=(--features host)
else
  kept=()
  for t in "${TARGETS[@]}"; do
    if contains "$t" "${HOST_ONLY[@]}"; then
      echo "fuzz.sh: skipping $t (needs FUZZ_HOST=1)" >&2
    else
      kept+=("$t")
    fi
  done
  TARGETS=("${kept[@]}")
fi
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  echo "fuzz.sh: no target to run" >&2
  exit 2
fi

JOBS=${FUZZ_JOBS:-1}
if ! [[ $JOBS =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: FUZZ_JOBS must be a positive integer, not '$JOBS'" >&2
  exit 2
fi
CPU_MODE=${FUZZ_CPU:-0}
if [[ $CPU_MODE == 1 && $JOBS -gt 1 ]]; then
  echo "fuzz.sh: FUZZ_CPU=1 measures one process: use FUZZ_JOBS=1" >&2
  exit 2
fi
CLK_TCK=$(getconf CLK_TCK)

# CPU seconds (user + system) used so far by process $1, or nothing once it is gone.
cpu_seconds() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  # Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
  stat=${stat##*) }
  read -r -a fields <<<"$stat"
  echo $(((fields[11] + fields[12]) / CLK_TCK))
}

# What `cargo fuzz build --sanitizer none` passes, minus its nightly-only -Z flags.
FUZZ_RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"

OUT=$ROOT/target/fuzz
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros: instrumented,
# they would not link (the coverage callbacks live in libFuzzer, linked only into the
# fuzz binaries).
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR=$OUT/$TRIPLE/release

# A first build starts from the main workspace's lockfile, so the fuzzed crates are the
# versions the tests run; cargo drops what the fuzz package does not use.
if [[ ! -f fuzz/Cargo.lock && -f Cargo.lock ]]; then
  cp Cargo.lock fuzz/Cargo.lock
fi

BIN_ARGS=()
for t in "${TARGETS[@]}"; do BIN_ARGS+=(--bin "$t"); done
echo "fuzz.sh: building ${TARGETS[*]} (${FEATURES[*]:-no host feature})" >&2
env -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u CARGO_BUILD_TARGET \
  RUSTFLAGS="$FUZZ_RUSTFLAGS" \
  cargo build --release --manifest-path fuzz/Cargo.toml "${FEATURES[@]}" \
  --target "$TRIPLE" --target-dir "$OUT" "${BIN_ARGS[@]}"

# Seeds: the selected targets' are rebuilt every run (the corpus, which the fuzzer grows,
# is kept); another run's targets are left alone, so two runs can go side by side.
mkdir -p "$OUT/seeds" "$OUT/corpus" "$OUT/artifacts" "$OUT/logs" "$OUT/work"
for t in "${TARGETS[@]}"; do rm -rf "${OUT:?}/seeds/$t"; done
if command -v python3 >/dev/null; then
  python3 fuzz/seed_corpus.py --out "$OUT/seeds" "${TARGETS[@]}"
else
  echo "fuzz.sh: python3 not found: seeding only from fuzz/seeds/" >&2
fi
for t in "${TARGETS[@]}"; do
  mkdir -p "$OUT/seeds/$t"
  if [[ -d fuzz/seeds/$t ]]; then
    find "fuzz/seeds/$t" -maxdepth 1 -type f -exec cp {} "$OUT/seeds/$t/" \;
  fi
done

read -r -a EXTRA <<<"${FUZZ_ARGS:-}"
COMMON=(-rss_limit_mb=2048 -timeout=10 "${EXTRA[@]}")
failures=()

for t in "${TARGETS[@]}"; do
  bin=$BIN_DIR/$t
  log=$OUT/logs/$t.log
  corpus=$OUT/corpus/$t
  artifacts=$OUT/artifacts/$t
  work=$OUT/work/$t
  mkdir -p "$corpus" "$artifacts" "$work"
  : >"$log"

  # Known crashes first: each must pass now.
  regressions=()
  if [[ -d fuzz/regressions/$t ]]; then
    while IFS= read -r -d '' f; do regressions+=("$f"); done \
      < <(find "fuzz/regressions/$t" -maxdepth 1 -type f ! -name '.*' -print0 | sort -z)
  fi
  if [[ ${#regressions[@]} -gt 0 ]]; then
    echo "== $t: replaying ${#regressions[@]} regression input(s)" | tee -a "$log" >&2
    if ! "$bin" "${COMMON[@]}" "${regressions[@]}" >>"$log" 2>&1; then
      last=$(grep '^Running: ' "$log" | tail -n 1 | sed 's/^Running: //')
      echo "FAIL $t: regression input ${last:-?} crashes again (log: $log)" >&2
      failures+=("$t: regression ${last:-?}")
      continue
    fi
  fi

  echo "== $t: fuzzing for ${SECS}s$([[ $CPU_MODE == 1 ]] && echo " of CPU time") (jobs: $JOBS)" | tee -a "$log" >&2
  marker=$work/.started
  : >"$marker"
  if [[ $CPU_MODE == 1 ]]; then
    # Wall time is only a backstop (a process starved for a whole day stops anyway).
    wall=$((SECS * 48))
  else
    wall=$SECS
  fi
  run=("$bin" "${COMMON[@]}" -max_total_time="$wall" -print_final_stats=1
    -artifact_prefix="$artifacts/")
  if [[ $JOBS -gt 1 ]]; then
    run+=(-jobs="$JOBS" -workers="$JOBS")
  fi
  run+=("$corpus" "$OUT/seeds/$t")
  status=0
  # From its own directory: with -jobs, libFuzzer writes fuzz-<n>.log to the cwd.
  rm -f "$work"/fuzz-*.log
  if [[ $CPU_MODE == 1 ]]; then
    (cd "$work" && exec "${run[@]}") >>"$log" 2>&1 &
    pid=$!
    started=$SECONDS
    stopped=0
    used=0
    while kill -0 "$pid" 2>/dev/null; do
      used=$(cpu_seconds "$pid")
      if [[ -n $used && $used -ge $SECS ]]; then
        kill -INT "$pid" 2>/dev/null || true
        stopped=1
        break
      fi
      sleep 2
    done
    wait "$pid" || status=$?
    # libFuzzer exits 72 (-interrupted_exit_code) when it is interrupted.
    if [[ $stopped == 1 && $status == 72 ]]; then status=0; fi
    echo "fuzz.sh: $t used ${used:-?} CPU seconds in $((SECONDS - started)) s wall" | tee -a "$log" >&2
  else
    (cd "$work" && "${run[@]}") >>"$log" 2>&1 || status=$?
  fi
  for job_log in "$work"/fuzz-*.log; do
    [[ -f $job_log ]] || continue
    { echo "---- $(basename "$job_log")"; cat "$job_log"; } >>"$log"
  done

  found=()
  while IFS= read -r -d '' f; do found+=("$f"); done < <(
    find "$artifacts" -maxdepth 1 -type f -newer "$marker" \
      \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) -print0
  )
  if [[ ${#found[@]} -gt 0 ]]; then
    for f in "${found[@]}"; do
      echo "FAIL $t: $f (log: $log)" >&2
      failures+=("$t: $f")
    done
  elif [[ $status -ne 0 ]]; then
    echo "FAIL $t: exited with status $status and no artifact (log: $log)" >&2
    failures+=("$t: exit status $status")
  else
    stats=$(grep -E '^(stat::number_of_executed_units|#[0-9]+.*DONE)' "$log" | tail -n 1 || true)
    echo "ok   $t ${stats:+($stats)}" >&2
  fi
done

if [[ ${#failures[@]} -gt 0 ]]; then
  echo >&2
  echo "fuzz.sh: ${#failures[@]} finding(s):" >&2
  printf '  %s\n' "${failures[@]}" >&2
  echo "Reproduce: $BIN_DIR/<target> <file>; keep it: copy it to fuzz/regressions/<target>/ (fuzz/README.md)." >&2
  exit 1
fi
echo "fuzz.sh: ${#TARGETS[@]} target(s), no finding" >&2
