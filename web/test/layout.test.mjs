// OCI image layouts as the page reads them (lib/layout.js): tars written by GNU tar in its
// formats, a layout notation signed (from the conformance corpus), its signatures found by
// subject the way the CLI finds them and verified through the transpiled component, and
// layouts that were tampered with or are not layouts at all refused with a reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const envelopeBlob = theCase.signatures[0].envelope_path.replace(`${theCase.artifact.oci_layout}/`, '');
const scratch = mkdtempSync(join(tmpdir(), 'hsm-notary-layout-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let tars = 0;
function tarOf(dir, ...options) {
  const out = join(scratch, `t${tars++}.tar`);
  const run = spawnSync('tar', ['-C', dir, '-cf', out, ...options, '.']);
  assert.equal(run.status, 0, String(run.stderr));
  return new Uint8Array(readFileSync(out));
}

/** A writable copy of the sample layout. */
function copyOfLayout(name) {
  const dir = join(scratch, name);
  cpSync(layoutDir, dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const sub of ['blobs', 'blobs/sha256']) chmodSync(join(dir, sub), 0o755);
  return dir;
}

function flipMiddleBit(path) {
  chmodSync(path, 0o644);
  const bytes = readFileSync(path);
  bytes[bytes.length >> 1] ^= 1;
  writeFileSync(path, bytes);
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
    const layout = await openLayout(await readTar(tarOf(layoutDir, `--format=${format}`)), 'layout.tar');
    assert.equal(layout.targets.length, 1, JSON.stringify(layout.targets));
    const [target] = layout.targets;
    assert.equal(target.tag, theCase.artifact.tag);
    assert.deepEqual(target.descriptor, theCase.artifact.descriptor);

    const { signatures, more } = await layout.signatures(target.descriptor.digest);
    assert.equal(more, false);
    assert.equal(signatures.length, 1);
    assert.equal(signatures[0].manifestDigest, theCase.signatures[0].manifest_digest);
    assert.equal(signatures[0].mediaType, theCase.signatures[0].envelope_media_type);
    assert.deepEqual(signatures[0].envelope, new Uint8Array(readFileSync(join(layoutDir, envelopeBlob))));

    const outcome = verifier.verify(requestFor(signatures, target.descriptor));
    assert.equal(outcome.decision, theCase.expected.outcome === 'success' ? 'verified' : 'failed');
  });
}

test('a tar given as a Blob is read lazily to the same members', async () => {
  const bytes = tarOf(layoutDir);
  const eager = await readTar(bytes);
  const lazy = await readTar(new Blob([bytes]));
  assert.deepEqual([...lazy.keys()], [...eager.keys()]);
  for (const [path, blob] of lazy) assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), eager.get(path), path);
});

test('long member names (pax, GNU), GNU incremental headers and hard links are read whole', async () => {
  const dir = join(scratch, 'long');
  const deep = join(dir, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'file.txt'), 'hello');
  linkSync(join(deep, 'file.txt'), join(dir, 'link.txt'));
  const name = `${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(60)}/file.txt`;
  for (const options of [['--format=pax'], ['--format=gnu'], ['--format=gnu', '--incremental']]) {
    const files = await readTar(tarOf(dir, ...options));
    assert.deepEqual([...files.keys()].sort(), [name, 'link.txt'].sort(), options.join(' '));
    assert.equal(new TextDecoder().decode(files.get(name)), 'hello');
    assert.equal(new TextDecoder().decode(files.get('link.txt')), 'hello', `hard link, ${options.join(' ')}`);
  }
});

test('a layout inside a folder of the tar is found', async () => {
  const dir = join(scratch, 'nested');
  cpSync(layoutDir, join(dir, 'my-image'), { recursive: true });
  const layout = await openLayout(await readTar(tarOf(dir)), 'nested.tar');
  assert.equal(layout.targets.length, 1);
});

test('a signature listed only in the referrers tag index is found through it', async () => {
  const dir = copyOfLayout('tag-index-only');
  const indexPath = join(dir, 'index.json');
  chmodSync(indexPath, 0o644);
  const index = JSON.parse(readFileSync(indexPath, 'utf8'));
  index.manifests = index.manifests.filter((d) => d.digest !== theCase.signatures[0].manifest_digest);
  writeFileSync(indexPath, JSON.stringify(index));
  const layout = await openLayout(await readTar(tarOf(dir)), 'tag-index-only.tar');
  const { signatures } = await layout.signatures(layout.targets[0].descriptor.digest);
  assert.deepEqual(signatures.map((s) => s.manifestDigest), [theCase.signatures[0].manifest_digest]);
});

test('at most max signatures are read, and more says so', async () => {
  const layout = await openLayout(await readTar(tarOf(layoutDir)), 'layout.tar');
  const { signatures, more } = await layout.signatures(layout.targets[0].descriptor.digest, 0);
  assert.equal(signatures.length, 0);
  assert.equal(more, true);
});

test('an envelope or manifest that does not match its digest is refused, naming the blob', async () => {
  const dir = copyOfLayout('tampered');
  flipMiddleBit(join(dir, envelopeBlob));
  let layout = await openLayout(await readTar(tarOf(dir)), 'tampered.tar');
  await assert.rejects(layout.signatures(layout.targets[0].descriptor.digest),
    /tampered\.tar: signature envelope blobs\/sha256\/[0-9a-f]{64} does not match its digest/);

  const manifestDir = copyOfLayout('tampered-manifest');
  flipMiddleBit(join(manifestDir, 'blobs/sha256', theCase.signatures[0].manifest_digest.slice('sha256:'.length)));
  layout = await openLayout(await readTar(tarOf(manifestDir)), 'tampered-manifest.tar');
  await assert.rejects(layout.signatures(layout.targets[0].descriptor.digest),
    /manifest blobs\/sha256\/[0-9a-f]{64} does not match its digest/);
});

test('a truncated tar, a compressed one and an archive that is not an OCI layout say so', async () => {
  const tar = tarOf(layoutDir);
  await assert.rejects(readTar(tar.subarray(0, 1024 + 100)), /tar: .*truncated/);
  const gzip = spawnSync('gzip', ['-c'], { input: tar });
  await assert.rejects(readTar(new Uint8Array(gzip.stdout)), /bad header checksum.*\.tar\.gz/);
  // A pre-Docker-25 `docker save` archive: manifest.json and layer folders, no oci-layout.
  const old = join(scratch, 'docker-save');
  mkdirSync(join(old, 'abc123'), { recursive: true });
  writeFileSync(join(old, 'manifest.json'), '[{"Config":"abc.json","RepoTags":["app:1"],"Layers":["abc123/layer.tar"]}]');
  writeFileSync(join(old, 'abc123/layer.tar'), '');
  await assert.rejects(openLayout(await readTar(tarOf(old)), 'old.tar'), /old\.tar: not an OCI image layout.*docker save/);
});
