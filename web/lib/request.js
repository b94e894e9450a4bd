// Builds the WIT `verify-request` (jco's JS shape) from plain inputs, and reads verdicts
// back out of an `outcome`. Shared by the Node test and the page, so it uses no Node APIs.
//
// jco's mapping: records are objects with camelCase fields, enums are kebab-case strings,
// variants are `{ tag, val }`, `option<T>` is `T | undefined`, `list<u8>` is a Uint8Array,
// 64-bit integers are BigInts.

const utf8 = new TextEncoder();

/** Bytes of a string (UTF-8) or of a Uint8Array as is. */
export function bytes(value) {
  return typeof value === 'string' ? utf8.encode(value) : value;
}

/** WIT `trust-store-type` of notation's directory names (`x509/<type>/<name>`). */
export const STORE_TYPES = { ca: 'ca', signingAuthority: 'signing-authority', tsa: 'tsa' };

/** The WIT `descriptor` of an OCI descriptor JSON object. */
export function descriptorOf(json) {
  return {
    mediaType: String(json.mediaType ?? ''),
    digest: String(json.digest ?? ''),
    size: BigInt(json.size ?? 0),
    artifactType: json.artifactType ?? undefined,
    annotations: Object.entries(json.annotations ?? {}).map(([k, v]) => [k, String(v)]),
  };
}

/** Envelope media type from its bytes: a JWS JSON serialization starts with `{`. */
export function guessMediaType(envelope) {
  const b = bytes(envelope);
  let i = 0;
  while (i < b.length && ' \t\r\n'.includes(String.fromCharCode(b[i]))) i++;
  return b[i] === 0x7b ? 'application/jose+json' : 'application/cose';
}

/**
 * A `verify-request`.
 * - policy: `{ kind: 'oci'|'blob', content }` (string or bytes)
 * - stores: `[{ storeType: 'ca'|'signing-authority'|'tsa', name, files: [{ name, content }] }]`
 * - target: `{ tag: 'oci', val: { reference, descriptor } }` or `{ tag: 'blob', val: {...} }`
 * - signatures: `[{ mediaType, envelope, manifestDigest?, priorFailure? }]` (priorFailure:
 *   `{ kind, message }` for a signature the caller could not read)
 * - time: Date or unix seconds
 */
export function verifyRequest({ policy, stores, target, signatures, userMetadata = [], time, maxSignatures = 100 }) {
  const ms = time instanceof Date ? time.getTime() : Number(time) * 1000;
  return {
    policy: { kind: policy.kind, content: bytes(policy.content) },
    trustStores: stores.map((s) => ({
      storeType: s.storeType,
      name: s.name,
      files: s.files.map((f) => ({ name: f.name, content: bytes(f.content) })),
    })),
    target,
    signatures: signatures.map((s) => ({
      mediaType: s.mediaType,
      envelope: bytes(s.envelope),
      manifestDigest: s.manifestDigest ?? undefined,
      priorFailure: s.priorFailure ?? undefined,
    })),
    userMetadata,
    verificationTime: {
      seconds: BigInt(Math.floor(ms / 1000)),
      nanoseconds: (((ms % 1000) + 1000) % 1000) * 1e6,
      utcOffsetSeconds: 0,
    },
    revocationEvidence: [],
    maxSignatures,
    // Verification plugins are executables: a browser or Node embedding has none to ask,
    // so a signature that names one fails as the component reports.
    pluginEvidence: [],
  };
}

const CHECK_ORDER = ['integrity', 'authenticity', 'authentic-timestamp', 'expiry', 'revocation'];

/**
 * The validation that failed, in the conformance corpus' vocabulary (null on success):
 * mirrors `failed_validation` in tests/support/lib.rs.
 */
export function failedValidation(outcome) {
  const failure = outcome.failure;
  if (!failure) return null;
  switch (failure.kind) {
    case 'trust-policy':
    case 'no-applicable-policy':
      return 'trust-policy';
    case 'signature-retrieval':
    case 'user-metadata':
    case 'invalid-input':
      return failure.kind;
  }
  // The deepest enforced failure among the signatures tried.
  let deepest = -1;
  for (const s of outcome.signatures) {
    for (const r of s.results) {
      if (r.status === 'failed' && r.action === 'enforce') deepest = Math.max(deepest, CHECK_ORDER.indexOf(r.check));
    }
  }
  if (deepest >= 0) return CHECK_ORDER[deepest];
  const last = [...outcome.signatures].reverse().find((s) => s.failure)?.failure;
  return (last ?? failure).kind === 'user-metadata' ? 'user-metadata' : 'integrity';
}

/** An `instant` as an ISO string (UTC). */
export function isoOf(instant) {
  if (!instant) return '';
  return new Date(Number(instant.seconds) * 1000).toISOString().replace('.000Z', 'Z');
}
