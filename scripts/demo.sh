#!/usr/bin/env bash
# The main job, end to end, on the embedded default engine (the wasm component):
# import a trust policy, add a CA certificate, verify a signed OCI layout produced by the
# reference notation CLI, then show that a tampered copy fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p hsm-notary
BIN="$PWD/target/release/hsm-notary"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export HSM_NOTARY_CONFIG="$WORK/config"
SAMPLE=tests/conformance/cases/ti-valid-x509-subject
DIGEST=sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "import the trust policy (validated by the verifier component first)"
"$BIN" policy import "$SAMPLE/trustpolicy.json"
step "add the signer's CA certificate to trust store ca:e2e"
"$BIN" cert add --type ca --store e2e "$SAMPLE/truststore/x509/ca/e2e/e2e.crt"
step "list the signatures of the sample OCI layout"
cp -r "$SAMPLE/oci-layout" "$WORK/layout"
"$BIN" ls --oci-layout "$WORK/layout@$DIGEST"
step "verify it (strict level, scope localhost:5000/e2e)"
"$BIN" verify --oci-layout --scope localhost:5000/e2e "$WORK/layout@$DIGEST"
step "tamper with the signature envelope and verify again (must fail)"
ENVELOPE=$(python3 -c "import json;print(json.load(open('$SAMPLE/case.json'))['signatures'][0]['envelope_path'].split('/')[-1])")
printf '{}' > "$WORK/layout/blobs/sha256/$ENVELOPE"
if "$BIN" verify --oci-layout --scope localhost:5000/e2e "$WORK/layout@$DIGEST"; then
  echo "tampered layout verified: this is a bug" >&2
  exit 1
fi
step "done: the genuine signature verified and the tampered one was refused"
