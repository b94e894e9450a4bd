// Reads conformance cases (tests/conformance/cases/<case>/case.json) into verify requests,
// the way tests/support/lib.rs `request_of` does for the Rust engines.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { STORE_TYPES, descriptorOf, verifyRequest } from './request.js';

/** The conformance case whose OCI layout is the page's layout sample (and the browser test's). */
export const LAYOUT_SAMPLE = 'scope-oci-layout-local-scope';

export function readCase(dir) {
  return JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
}

/** notation's trust store layout `x509/{ca,signingAuthority,tsa}/<name>/<files>`, sorted by name. */
export function readTrustStores(root) {
  const stores = [];
  for (const [dirName, storeType] of Object.entries(STORE_TYPES)) {
    const typeDir = join(root, 'x509', dirName);
    if (!existsSync(typeDir)) continue;
    for (const name of readdirSync(typeDir).sort()) {
      const storeDir = join(typeDir, name);
      if (!statSync(storeDir).isDirectory()) continue;
      const files = readdirSync(storeDir).sort()
        // Sub-directories of a named store are ignored, as the Rust host does.
        .filter((f) => statSync(join(storeDir, f)).isFile())
        .map((f) => ({ name: f, content: new Uint8Array(readFileSync(join(storeDir, f))) }));
      stores.push({ storeType, name, files });
    }
  }
  return stores;
}

/** Policy document kind of a case (`verify-blob` cases use a blob policy). */
export function policyKindOf(c) {
  if (c.document_type === 'blob' || c.kind === 'verify-blob') return 'blob';
  return 'oci';
}

/** The WIT `verify-request` of a `verify` or `verify-blob` case. */
export function requestOf(dir, c = readCase(dir)) {
  let target;
  if (c.kind === 'verify-blob') {
    const d = c.blob_descriptor;
    target = { tag: 'blob', val: {
      policyName: c.policy_name ?? undefined,
      mediaType: d.mediaType ?? undefined,
      digest: d.digest ?? '',
      size: BigInt(d.size ?? 0),
    } };
  } else {
    target = { tag: 'oci', val: {
      reference: c.artifact_reference ?? 'localhost:5000/e2e@sha256:00',
      descriptor: descriptorOf(c.artifact.descriptor),
    } };
  }
  return verifyRequest({
    policy: { kind: policyKindOf(c), content: new Uint8Array(readFileSync(join(dir, c.trust_policy))) },
    stores: c.trust_store ? readTrustStores(join(dir, c.trust_store)) : [],
    target,
    // The case lists the signatures a layout holds (discovered by `subject`), in order.
    signatures: (c.signatures ?? []).map((s) => ({
      mediaType: s.envelope_media_type ?? '',
      envelope: new Uint8Array(readFileSync(join(dir, s.envelope_path))),
      manifestDigest: s.manifest_digest,
    })),
    userMetadata: Object.entries(c.user_metadata ?? {}).map(([k, v]) => [k, String(v)]),
    time: c.verification_time ?? new Date(),
    maxSignatures: c.max_signature_attempts ?? 100,
  });
}

function pemOf(der) {
  const b64 = Buffer.from(der).toString('base64').match(/.{1,64}/g).join('\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * A sample for the page: the inputs of a single-envelope `verify` case as text fields.
 * DER store files become PEM so that each store fits one text box.
 */
export function sampleOf(dir) {
  const c = readCase(dir);
  const s = c.signatures[0];
  return {
    case: c.name,
    description: c.description,
    source: c.source,
    reference: c.artifact_reference,
    descriptor: c.artifact.descriptor,
    envelope: readFileSync(join(dir, s.envelope_path), 'utf8'),
    envelopeMediaType: s.envelope_media_type,
    policy: readFileSync(join(dir, c.trust_policy), 'utf8'),
    stores: readTrustStores(join(dir, c.trust_store)).map((st) => ({
      storeType: st.storeType,
      name: st.name,
      pem: st.files.map((f) => {
        const text = Buffer.from(f.content).toString('latin1');
        return text.includes('-----BEGIN') ? text.trimEnd() + '\n' : pemOf(f.content);
      }).join(''),
    })),
  };
}
