// The wasi:http build of the verifier (`hsm-notary component --world http`) under a second
// wasi:http host, jco's `serve` on Node (preview2-shim), besides wasmtime in
// tests/wasi_http.rs: bundles from the conformance corpus POSTed over loopback get their
// cases' expected decisions. scripts/test-web.sh writes dist/verifier-http.wasm first.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readCase, readTrustStores } from '../lib/cases.mjs';

const web = resolve(fileURLToPath(import.meta.url), '../..');
const root = resolve(web, '..');
const wasm = join(web, 'dist/verifier-http.wasm');
const skip = existsSync(wasm) ? false : 'dist/verifier-http.wasm not written (scripts/test-web.sh writes it)';

const STORE_NAMES = { ca: 'ca', 'signing-authority': 'signingAuthority', tsa: 'tsa' };

/** A conformance case as the endpoint's JSON bundle. */
function bundleOf(name) {
  const dir = join(root, 'tests/conformance/cases', name);
  const c = readCase(dir);
  const descriptor = c.artifact.descriptor;
  const repository = (c.artifact_reference ?? 'localhost:5000/e2e@').split('@')[0];
  return {
    case: c,
    bundle: {
      policy: readFileSync(join(dir, c.trust_policy), 'utf8'),
      trustStores: readTrustStores(join(dir, c.trust_store)).map((s) => ({
        type: STORE_NAMES[s.storeType],
        name: s.name,
        certificates: s.files.map((f) => {
          const text = Buffer.from(f.content).toString('utf8');
          return text.includes('-----BEGIN') ? text : Buffer.from(f.content).toString('base64');
        }),
      })),
      artifact: { reference: `${repository}@${descriptor.digest}`, descriptor },
      signatures: c.signatures.map((s) => ({
        mediaType: s.envelope_media_type,
        envelope: readFileSync(join(dir, s.envelope_path)).toString('base64'),
      })),
      ...(c.verification_time ? { verificationTime: new Date(c.verification_time * 1000).toISOString() } : {}),
    },
  };
}

let server;
let base;

before(async () => {
  if (skip) return;
  const port = await new Promise((ok) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address();
      probe.close(() => ok(p));
    });
  });
  const jco = join(web, 'node_modules/@bytecodealliance/jco/src/jco.js');
  // Its own process group: jco serve runs the server in a child process, and the whole
  // group is stopped at the end.
  server = spawn(process.execPath, [jco, 'serve', '--host', '127.0.0.1', '--port', String(port), wasm], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`jco serve did not start: ${output}`)), 90_000);
    const listen = (chunk) => {
      output += chunk;
      if (output.includes('Server listening')) { clearTimeout(timer); ok(); }
    };
    server.stdout.on('data', listen);
    server.stderr.on('data', listen);
    server.on('exit', (code) => { clearTimeout(timer); fail(new Error(`jco serve exited ${code}: ${output}`)); });
  });
  base = `http://127.0.0.1:${port}`;
});

after(() => {
  if (!server) return;
  try { process.kill(-server.pid, 'SIGTERM'); } catch { /* already gone */ }
  server.stdout.destroy();
  server.stderr.destroy();
  server.unref();
});

async function post(bundle) {
  const response = await fetch(`${base}/verify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(bundle),
  });
  return { status: response.status, decision: response.headers.get('notary-decision'), body: await response.json() };
}

for (const [label, name] of [
  ['a valid signature', 'sig-x509-valid-strict'],
  ['a tampered signature', 'sig-sa-corrupt-signature-strict'],
  ['an untrusted signer', 'sig-x509-untrusted-root-strict'],
]) {
  test(`jco serve: ${label} (${name}) gets the case's expected decision`, { skip }, async () => {
    const { case: c, bundle } = bundleOf(name);
    const reply = await post(bundle);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const want = c.expected.outcome === 'success' ? 'verified' : 'failed';
    assert.equal(reply.body.decision, want, JSON.stringify(reply.body));
    assert.equal(reply.decision, want);
    if (c.expected.failed_validation) assert.equal(reply.body.failure.kind, c.expected.failed_validation);
  });
}

test('jco serve: an unsigned artifact fails signature retrieval, a bad bundle is a 400', { skip }, async () => {
  const { bundle } = bundleOf('sig-x509-valid-strict');
  const unsigned = await post({ ...bundle, signatures: [] });
  assert.equal(unsigned.body.failure.kind, 'signature-retrieval');
  const bad = await post({ ...bundle, signatures: [{ envelope: 'not base64!' }] });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /^signatures\[0\]\.envelope/);
});
