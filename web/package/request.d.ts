// Types of request.js (hand-written: request.js is plain JS shared with the page).
import type {
  Check,
  Descriptor,
  Instant,
  Outcome,
  PolicyKind,
  Target,
  TrustStoreType,
  VerifyRequest,
} from './interfaces/notary-verifier-types.js';

/** Text (encoded as UTF-8) or bytes. */
export type Bytes = string | Uint8Array;

/** Bytes of a string (UTF-8) or of a Uint8Array as is. */
export function bytes(value: Bytes): Uint8Array;

/** WIT `trust-store-type` of notation's directory names (`x509/<type>/<name>`). */
export const STORE_TYPES: {
  readonly ca: 'ca';
  readonly signingAuthority: 'signing-authority';
  readonly tsa: 'tsa';
};

/** An OCI descriptor as JSON (`mediaType`, `digest`, `size`, ...). */
export interface DescriptorJson {
  mediaType?: string;
  digest?: string;
  size?: number | bigint | string;
  artifactType?: string;
  annotations?: Record<string, unknown>;
}

/** The WIT `descriptor` of an OCI descriptor JSON object. */
export function descriptorOf(json: DescriptorJson): Descriptor;

/** Envelope media type from its bytes: a JWS JSON serialization starts with `{`. */
export function guessMediaType(envelope: Bytes): 'application/jose+json' | 'application/cose';

/** Plain inputs of `verifyRequest`. */
export interface VerifyInputs {
  /** The trust policy document (notation's `trustpolicy.json` or `trustpolicy.blob.json`). */
  policy: { kind: PolicyKind; content: Bytes };
  /** Named trust stores, each with its certificate files (PEM or DER). */
  stores: Array<{ storeType: TrustStoreType; name: string; files: Array<{ name: string; content: Bytes }> }>;
  target: Target;
  /** Candidate signatures in discovery order. */
  signatures: Array<{ mediaType: string; envelope: Bytes; manifestDigest?: string }>;
  /** Key/value pairs the verified payload must carry. */
  userMetadata?: Array<[string, string]>;
  /** The verification time: a Date, or Unix seconds. */
  time: Date | number;
  /** At most this many signatures are tried (default 100). */
  maxSignatures?: number;
}

/** A WIT `verify-request` for `verifier.verify`. */
export function verifyRequest(inputs: VerifyInputs): VerifyRequest;

/** What failed, in the conformance corpus' vocabulary. */
export type FailedValidation =
  | Check
  | 'trust-policy'
  | 'signature-retrieval'
  | 'user-metadata'
  | 'invalid-input';

/** The validation that failed (`null` when the outcome is not a failure). */
export function failedValidation(outcome: Outcome): FailedValidation | null;

/** An `instant` as an ISO string (UTC); empty for `undefined`. */
export function isoOf(instant: Instant | undefined): string;
