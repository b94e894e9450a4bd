// The npm package @hsm-notary/verifier as a user gets it: `npm pack` of dist/verifier/,
// installed into an empty project, imported by name from plain JS (decisions of a valid, a
// tampered and an untrusted conformance sample) and type-checked from TypeScript, where
// wrong calls must be type errors (so the declarations are real types, not `any`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readCase, sampleOf } from '../lib/cases.mjs';

const web = resolve(fileURLToPath(import.meta.url), '../..');
const cases = join(web, '..', 'tests/conformance/cases');
const SAMPLES = {
  valid: 'sig-x509-valid-strict',
  tampered: 'sig-sa-corrupt-signature-strict',
  untrusted: 'sig-x509-untrusted-root-strict',
};
let project;

function run(command, args, cwd) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '' };
}

before(() => {
  project = mkdtempSync(join(tmpdir(), 'hsm-notary-package-'));
  const packed = run('npm', ['pack', join(web, 'dist/verifier'), '--pack-destination', project, '--json'], project);
  assert.ok(packed.ok, `npm pack: ${packed.out}`);
  const [{ filename, files }] = JSON.parse(packed.stdout);
  const paths = files.map((f) => f.path);
  for (const p of ['package.json', 'verifier.js', 'verifier.d.ts', 'verifier.core.wasm', 'request.js', 'request.d.ts', 'README.md']) {
    assert.ok(paths.includes(p), `${p} not in the package: ${paths.join(', ')}`);
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // A local tarball with no dependencies: nothing to download.
  const installed = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', `./${filename}`], project);
  assert.ok(installed.ok, `npm install: ${installed.out}`);
});

after(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

test('the package is the component the build transpiled, with the workspace version', () => {
  const meta = JSON.parse(readFileSync(join(project, 'node_modules/@hsm-notary/verifier/package.json'), 'utf8'));
  const cargo = readFileSync(join(web, '..', 'Cargo.toml'), 'utf8');
  assert.equal(meta.version, /^version\s*=\s*"([^"]+)"/m.exec(cargo)[1]);
  assert.equal(meta.type, 'module');
  assert.deepEqual(
    readFileSync(join(project, 'node_modules/@hsm-notary/verifier/verifier.core.wasm')),
    readFileSync(join(web, 'dist/verifier/verifier.core.wasm')),
  );
});

test('imported by name from JS, it decides the samples as the reference did', () => {
  const inputs = Object.fromEntries(Object.entries(SAMPLES).map(([name, caseName]) => {
    const dir = join(cases, caseName);
    const c = readCase(dir);
    return [name, { ...sampleOf(dir), time: c.verification_time ?? new Date().toISOString(), expected: c.expected }];
  }));
  writeFileSync(join(project, 'inputs.json'), JSON.stringify(inputs));
  writeFileSync(join(project, 'consumer.mjs'), `
import { readFileSync } from 'node:fs';
import { verifier } from '@hsm-notary/verifier';
import { descriptorOf, failedValidation, verifyRequest } from '@hsm-notary/verifier/request';

const out = {};
for (const [name, s] of Object.entries(JSON.parse(readFileSync('inputs.json', 'utf8')))) {
  const outcome = verifier.verify(verifyRequest({
    policy: { kind: 'oci', content: s.policy },
    stores: s.stores.map((st) => ({ storeType: st.storeType, name: st.name, files: [{ name: 'certs.pem', content: st.pem }] })),
    target: { tag: 'oci', val: { reference: s.reference, descriptor: descriptorOf(s.descriptor) } },
    signatures: [{ mediaType: s.envelopeMediaType, envelope: s.envelope }],
    time: new Date(s.time),
  }));
  out[name] = { decision: outcome.decision, failed: failedValidation(outcome) };
}
console.log(JSON.stringify(out));
`);
  const r = run(process.execPath, ['consumer.mjs'], project);
  assert.ok(r.ok, r.out);
  const got = JSON.parse(r.stdout);
  for (const [name, s] of Object.entries(inputs)) {
    assert.equal(got[name].decision === 'verified' ? 'success' : 'failure', s.expected.outcome, name);
    assert.equal(got[name].failed, s.expected.failed_validation ?? null, name);
  }
  assert.equal(got.valid.decision, 'verified');
  assert.equal(got.tampered.failed, 'integrity');
  assert.equal(got.untrusted.failed, 'authenticity');
});

test('its TypeScript declarations type a correct use and reject wrong ones', () => {
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022'], types: [] },
    files: ['consumer.ts'],
  }));
  writeFileSync(join(project, 'consumer.ts'), `
import { verifier, types } from '@hsm-notary/verifier';
import { descriptorOf, failedValidation, verifyRequest, type FailedValidation } from '@hsm-notary/verifier/request';

const request: types.VerifyRequest = verifyRequest({
  policy: { kind: 'oci', content: '{"version":"1.0","trustPolicies":[]}' },
  stores: [{ storeType: 'ca', name: 'acme', files: [{ name: 'root.pem', content: new Uint8Array() }] }],
  target: { tag: 'oci', val: { reference: 'r/a@sha256:00', descriptor: descriptorOf({ mediaType: 'm', digest: 'sha256:00', size: 1 }) } },
  signatures: [{ mediaType: 'application/jose+json', envelope: '{}' }],
  time: 1_700_000_000,
});
const outcome: types.Outcome = verifier.verify(request);
const decision: 'verified' | 'skipped' | 'failed' = outcome.decision;
const failed: FailedValidation | null = failedValidation(outcome);
const levels: string[] = verifier.checkPolicy(request.policy).map((p) => p.level);
export { decision, failed, levels };

// @ts-expect-error: a verify-request is not an empty object
verifier.verify({});
// @ts-expect-error: no such trust store type
verifyRequest({ policy: { kind: 'oci', content: '' }, stores: [{ storeType: 'root', name: 'x', files: [] }], target: request.target, signatures: [], time: 0 });
// @ts-expect-error: sizes are bigints in the WIT records
const size: number = request.target.tag === 'oci' ? request.target.val.descriptor.size : 0;
// @ts-expect-error: decisions are a closed set
const never: 'maybe' = outcome.decision;
export { size, never };
`);
  const tsc = join(web, 'node_modules/typescript/bin/tsc');
  const r = run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
  assert.ok(r.ok, `tsc:\n${r.out}`);
  // And the same file with a real mistake fails, naming it.
  writeFileSync(join(project, 'consumer.ts'), `
import { verifier } from '@hsm-notary/verifier';
verifier.verify({ maxSignatures: 'ten' });
`);
  const bad = run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
  assert.ok(!bad.ok, 'tsc accepted a wrong call');
  assert.match(bad.out, /consumer\.ts\(3,/);
});
