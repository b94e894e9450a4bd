// OCI image layouts as the page reads them (lib/layout.js): tars written by GNU tar in the
// formats `docker save` and `skopeo` use, a layout notation signed (from the conformance
// corpus), its signatures found by subject and verified through the transpiled component,
// and layouts that were tampered with or are not layouts at all refused with a reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifier } from '../dist/verifier/verifier.js';
import { openLayout, readTar } from '../lib/layout.js';
import { LAYOUT_SAMPLE, readCase, readTrustStores } from '../lib/cases.mjs';
import { descriptorOf, verifyRequest } from '../lib/request.js';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const caseDir = join(root, 'tests/conformance/cases', LAYOUT_SAMPLE);
const theCase = readCase(caseDir);
const layoutDir = join(caseDir, theCase.artifact.oci_layout);
const scratch = mkdtempSync(join(tmpdir(), 'hsm-notary-layout-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function tarOf(dir, format, name = `layout-${format}.tar`) {
  const out = join(scratch, name);
  const run = spawnSync('tar', ['-C', dir, '-cf', out, `--format=${format}`, '.']);
  assert.equal(run.status, 0, String(run.stderr));
  return new Uint8Array(readFileSync(out));
}

function requestFor(signatures, descriptor) {
  return verifyRequest({
    policy: { kind: 'oci', content: readFileSync(join(caseDir, theCase.trust_policy)) },
    stores: readTrustStores(join(caseDir, theCase.trust_store)),
    target: { tag: 'oci', val: { reference: theCase.artifact_reference, descriptor: descriptorOf(descriptor) } },
    signatures,
    time: new Date(),
  });
}

for (const format of ['ustar', 'pax', 'gnu']) {
  test(`a ${format} tar of a notation-signed layout yields its artifact, signature and verdict`, async () => {
    const layout = await openLayout(readTar(tarOf(layoutDir, format)), `layout.tar`);
    assert.equal(layout.targets.length, 1, JSON.stringify(layout.targets));
    const [target] = layout.targets;
    assert.equal(target.tag, theCase.artifact.tag);
    assert.deepEqual(target.descriptor, theCase.artifact.descriptor);

    const signatures = await layout.signatures(target.descriptor.digest);
    assert.equal(signatures.length, 1);
    assert.equal(signatures[0].manifestDigest, theCase.signatures[0].manifest_digest);
    assert.equal(signatures[0].mediaType, theCase.signatures[0].envelope_media_type);
    assert.deepEqual(signatures[0].envelope, new Uint8Array(readFileSync(join(caseDir, theCase.signatures[0].envelope_path))));

    const outcome = verifier.verify(requestFor(signatures, target.descriptor));
    assert.equal(outcome.decision, theCase.expected.outcome === 'success' ? 'verified' : 'failed');
  });
}

test('long member names (pax and GNU) are read whole', () => {
  const dir = join(scratch, 'long');
  const deep = join(dir, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'file.txt'), 'hello');
  for (const format of ['pax', 'gnu']) {
    const files = readTar(tarOf(dir, format, `long-${format}.tar`));
    const name = `${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(60)}/file.txt`;
    assert.deepEqual([...files.keys()], [name], format);
    assert.equal(new TextDecoder().decode(files.get(name)), 'hello');
  }
});

test('a layout inside a folder of the tar is found', async () => {
  const dir = join(scratch, 'nested');
  cpSync(layoutDir, join(dir, 'my-image'), { recursive: true });
  const layout = await openLayout(readTar(tarOf(dir, 'ustar', 'nested.tar')), 'nested.tar');
  assert.equal(layout.targets.length, 1);
});

test('an envelope blob that does not match its digest is refused, naming the blob', async () => {
  const dir = join(scratch, 'tampered');
  cpSync(layoutDir, dir, { recursive: true });
  const blob = join(dir, theCase.signatures[0].envelope_path.replace(`${theCase.artifact.oci_layout}/`, ''));
  chmodSync(blob, 0o644);
  const bytes = readFileSync(blob);
  bytes[bytes.length >> 1] ^= 1;
  writeFileSync(blob, bytes);
  const layout = await openLayout(readTar(tarOf(dir, 'ustar', 'tampered.tar')), 'tampered.tar');
  await assert.rejects(layout.signatures(layout.targets[0].descriptor.digest),
    /tampered\.tar: signature envelope blobs\/sha256\/[0-9a-f]{64} does not match its digest/);
});

test('a truncated tar and an archive that is not an OCI layout say so', async () => {
  const tar = tarOf(layoutDir, 'ustar', 'whole.tar');
  assert.throws(() => readTar(tar.subarray(0, 1024 + 100)), /tar: .*truncated/);
  const dockerSave = new Map([['manifest.json', new TextEncoder().encode('[]')]]);
  await assert.rejects(openLayout(dockerSave, 'old.tar'), /old\.tar: not an OCI image layout.*docker save/);
});
