#!/usr/bin/env bash
# Builds web/ from the component the Rust build produced and runs the Node conformance test
# and the browser test. Run scripts/setup-web.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
user_component="${HSM_NOTARY_COMPONENT:-}"

component="${HSM_NOTARY_COMPONENT:-$root/target/component/wasm32-unknown-unknown/release/notary_verifier_component.wasm}"
if [ ! -f "$component" ]; then
    echo "error: verifier component not found at $component" >&2
    echo "Build it with the Rust build first (scripts/test.sh builds it), or set HSM_NOTARY_COMPONENT." >&2
    exit 1
fi
export HSM_NOTARY_COMPONENT="$component"
if [ ! -d web/node_modules ] || [ ! -x /usr/bin/chromium ]; then
    echo "error: web/node_modules or /usr/bin/chromium missing: run scripts/setup-web.sh" >&2
    exit 1
fi

cd web
echo "== npm run build"
npm run build --silent
# Node and the browser must decide with the very component the CLI embeds.
cli="$root/target/release/hsm-notary"
if [ -x "$cli" ] && [ -z "$user_component" ]; then
    embedded="$("$cli" version | sed -n 's/^verifier component: \(sha256:[0-9a-f]*\).*/\1/p')"
    transpiled="$(cat dist/component.sha256)"
    if [ "$embedded" != "$transpiled" ]; then
        echo "error: hsm-notary embeds $embedded but web/ transpiled $transpiled" >&2
        exit 1
    fi
    echo "== same component as the CLI: $embedded"
    # The wasi:http build, for the jco serve test (test/wasi-http.test.mjs).
    "$cli" component --world http -o dist/verifier-http.wasm
fi
echo "== node --test (conformance corpus through the transpiled component)"
node --test --test-reporter=spec test/
echo "== browser test (Chromium, headless)"
node scripts/browser-test.mjs
