//! Fixtures shared by the fuzz targets: a trust policy, trust stores and a verification
//! time under which the conformance corpus' envelopes reach the deep checks (chain,
//! trusted identity, authentic timestamp, revocation), a real timestamp token with the
//! signature value it covers, and a certificate chain that names OCSP and CRL locations.
//!
//! Everything is compiled in (`include_bytes!`), so a target binary reproduces a crash
//! from its input file alone. Fixture problems panic at the first input with a message
//! that names the fixture: they are not findings.

use std::sync::LazyLock;

use notary_verifier::envelope::{Envelope, MEDIA_TYPE_JWS};
use notary_verifier::revocation::Status;
use notary_verifier::trustpolicy::{self, ValidatedDocument};
use notary_verifier::x509::Cert;
use notary_verifier::{
    Descriptor, DocumentKind, Evidence, Instant, NamedStore, PolicyInput, SignatureInput,
    StoreFile, StoreType, Target, TrustStores, VerifyRequest,
};

/// Bytes of a file under `tests/conformance/cases/`.
macro_rules! conformance {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/conformance/cases/",
            $path
        ))
        .as_slice()
    };
}

/// Bytes of a file under `fuzz/fixtures/`.
macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/", $path)).as_slice()
    };
}

/// 2025-06-01T00:00:00Z: inside the validity of the conformance signing and TSA chains
/// (except the deliberately expired / not-yet-valid ones) and of the revocation fixtures.
pub const VERIFICATION_TIME: i64 = 1_748_736_000;

/// [`VERIFICATION_TIME`] as an instant.
pub fn verification_time() -> Instant {
    Instant::from_unix(VERIFICATION_TIME, 0)
}

/// The one statement every envelope is verified under: level `audit`, so that a failed
/// authenticity, expiry or timestamp check is logged and the later checks still run;
/// `verifyTimestamp: always`; every conformance trust store; x509.subject identities of
/// the conformance signers (so the DN match runs, not the `*` short cut).
pub const POLICY: &str = r#"{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "fuzz",
      "registryScopes": ["*"],
      "signatureVerification": { "level": "audit", "verifyTimestamp": "always" },
      "trustStores": [
        "ca:valid-trust-store",
        "ca:e2e",
        "signingAuthority:valid-trust-store",
        "tsa:test-timestamp"
      ],
      "trustedIdentities": [
        "x509.subject:C=US,ST=WA,L=Seattle,O=Notary,CN=e2e",
        "x509.subject:C=US,ST=WA,L=Seattle,O=Notary,CN=alpine",
        "x509.subject:C=US,ST=WA,L=Seattle,O=Notary,CN=wabbit-networks.io",
        "x509.subject:C=US,ST=WA,L=Seattle,O=Notary,CN=Notation Test Root"
      ]
    }
  ]
}"#;

/// The artifact the OCI conformance cases sign (`localhost:5000/e2e`, tag `v1`), so that a
/// seed envelope that verifies also passes the payload match.
pub const REFERENCE: &str =
    "localhost:5000/e2e@sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// The descriptor of [`REFERENCE`].
pub fn target_descriptor() -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        digest: "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
            .to_owned(),
        size: 517,
        artifact_type: None,
        annotations: Default::default(),
    }
}

fn file(name: &str, content: &[u8]) -> StoreFile {
    StoreFile {
        name: name.to_owned(),
        content: content.to_vec(),
    }
}

/// `ca:valid-trust-store`, `ca:e2e`, `signingAuthority:valid-trust-store` and
/// `tsa:test-timestamp`, as the conformance cases hold them.
pub static TRUST_STORES: LazyLock<TrustStores> = LazyLock::new(|| {
    let valid = vec![
        file(
            "GlobalSign.der",
            conformance!(
                "ts-jws-valid-timestamp/truststore/x509/ca/valid-trust-store/GlobalSign.der"
            ),
        ),
        file(
            "GlobalSignRootCA.crt",
            conformance!(
                "ts-jws-valid-timestamp/truststore/x509/ca/valid-trust-store/GlobalSignRootCA.crt"
            ),
        ),
        file(
            "NotationTestRoot.pem",
            conformance!(
                "ts-jws-valid-timestamp/truststore/x509/ca/valid-trust-store/NotationTestRoot.pem"
            ),
        ),
        file(
            "TestTimestamp.crt",
            conformance!(
                "ts-jws-valid-timestamp/truststore/x509/ca/valid-trust-store/TestTimestamp.crt"
            ),
        ),
        file(
            "TestTimestampNotYetValid.crt",
            conformance!(
                "ts-jws-valid-timestamp/truststore/x509/ca/valid-trust-store/TestTimestampNotYetValid.crt"
            ),
        ),
        file(
            "wabbit-networks.io.crt",
            conformance!(
                "ts-jws-valid-timestamp/truststore/x509/ca/valid-trust-store/wabbit-networks.io.crt"
            ),
        ),
    ];
    let signing_authority = vec![
        file(
            "GlobalSign.der",
            conformance!(
                "sig-sa-valid-audit/truststore/x509/signingAuthority/valid-trust-store/GlobalSign.der"
            ),
        ),
        file(
            "GlobalSignRootCA.crt",
            conformance!(
                "sig-sa-valid-audit/truststore/x509/signingAuthority/valid-trust-store/GlobalSignRootCA.crt"
            ),
        ),
        file(
            "NotationTestRoot.pem",
            conformance!(
                "sig-sa-valid-audit/truststore/x509/signingAuthority/valid-trust-store/NotationTestRoot.pem"
            ),
        ),
    ];
    TrustStores {
        stores: vec![
            NamedStore {
                store_type: StoreType::Ca,
                name: "valid-trust-store".to_owned(),
                files: valid,
            },
            NamedStore {
                store_type: StoreType::Ca,
                name: "e2e".to_owned(),
                files: vec![file(
                    "e2e.crt",
                    conformance!("vl-strict-invalid-integrity/truststore/x509/ca/e2e/e2e.crt"),
                )],
            },
            NamedStore {
                store_type: StoreType::SigningAuthority,
                name: "valid-trust-store".to_owned(),
                files: signing_authority,
            },
            NamedStore {
                store_type: StoreType::Tsa,
                name: "test-timestamp".to_owned(),
                files: vec![file(
                    "globalsignRoot.cer",
                    conformance!(
                        "ts-jws-valid-timestamp/truststore/x509/tsa/test-timestamp/globalsignRoot.cer"
                    ),
                )],
            },
        ],
    }
});

/// Every certificate of [`TRUST_STORES`], as loaded (path-building roots).
pub static FIXTURE_ROOTS: LazyLock<Vec<Cert>> = LazyLock::new(|| {
    TRUST_STORES
        .stores
        .iter()
        .flat_map(|store| {
            TRUST_STORES
                .load(store.store_type, &store.name)
                .expect("fixture: every trust store loads")
        })
        .collect()
});

/// One candidate signature.
pub fn signature_input(media_type: &str, envelope: &[u8]) -> SignatureInput {
    SignatureInput {
        media_type: media_type.to_owned(),
        envelope: envelope.to_vec(),
        manifest_digest: None,
        prior_failure: None,
    }
}

/// A request over [`REFERENCE`] under [`POLICY`] and [`TRUST_STORES`] at
/// [`VERIFICATION_TIME`], with `signatures` and `evidence`.
pub fn request_with(signatures: Vec<SignatureInput>, evidence: Vec<Evidence>) -> VerifyRequest {
    VerifyRequest {
        policy: PolicyInput {
            kind: DocumentKind::Oci,
            content: POLICY.as_bytes().to_vec(),
        },
        trust_stores: TRUST_STORES.clone(),
        target: Target::Oci {
            reference: REFERENCE.to_owned(),
            descriptor: target_descriptor(),
        },
        signatures,
        user_metadata: Vec::new(),
        verification_time: verification_time(),
        revocation_evidence: evidence,
        max_signatures: 1,
        plugin_evidence: Vec::new(),
    }
}

/// A request with one signature and no revocation evidence (so `verify_or_ask` also
/// builds the OCSP requests / CRL needs of the chains it reaches).
pub fn request(media_type: &str, envelope: &[u8]) -> VerifyRequest {
    request_with(vec![signature_input(media_type, envelope)], Vec::new())
}

/// Everything the public envelope API does with `data` as an envelope of `media_type`:
/// parse, check, verify, inspect, and the full verification workflow.
pub fn envelope(media_type: &str, data: &[u8]) {
    if let Ok(envelope) = Envelope::parse(media_type, data) {
        let _ = envelope.media_type();
        if let Ok(content) = envelope.content() {
            let si = &content.signer_info;
            let _ = si.authentic_signing_time();
            let _ = notary_verifier::certificate::key_spec(si.leaf());
            let _ = notary_verifier::payload::parse(&content.payload.content);
            let _ = notary_verifier::plugin::required(si);
            let _ = notary_verifier::plugin::plugin_attributes(si).count();
            let _ = notary_verifier::inspect::envelope_info(media_type, &content);
        }
        let _ = envelope.verify();
        if let Envelope::Cose(cose) = &envelope {
            // Whatever coset writes back must be readable again (no assertion: coset may
            // normalise what it re-encodes).
            if let Some(bytes) = notary_verifier::envelope::cose::reencode(cose) {
                let _ = Envelope::parse(media_type, &bytes);
            }
        }
    }
    let request = request(media_type, data);
    let input = &request.signatures[0];
    let _ = notary_verifier::inspect(input);
    let _ = notary_verifier::check_generated(input, &target_descriptor());
    let (outcome, needs) = notary_verifier::verify_or_ask(&request);
    let _ = serde_json::to_vec(&outcome);
    let _ = needs.len();
    let _ = notary_verifier::plugin_needs(&request);
    let _ = notary_verifier::authentic_timestamp(&request);
}

/// A real RFC 3161 token (the GlobalSign countersignature of the
/// `ts-jws-valid-timestamp` conformance envelope), the signature value it covers, and
/// that envelope's signing chain.
pub struct TimestampFixture {
    /// The envelope's signature value (what the token's messageImprint covers).
    pub signature_value: Vec<u8>,
    /// The token (DER).
    pub token: Vec<u8>,
    /// The signing chain (DER, leaf first).
    pub signing_chain: Vec<Vec<u8>>,
    /// `tsa:test-timestamp`.
    pub tsa_roots: Vec<Cert>,
    /// A request whose evidence asserts the token's certificates not revoked, so that a
    /// token that verifies reaches the end of `timestamp_token`.
    pub request: VerifyRequest,
    /// The same request without evidence (for `timestamp_token_needs`).
    pub request_without_evidence: VerifyRequest,
}

/// See [`TimestampFixture`].
pub static TIMESTAMP: LazyLock<TimestampFixture> = LazyLock::new(|| {
    let envelope = Envelope::parse(
        MEDIA_TYPE_JWS,
        conformance!("ts-jws-valid-timestamp/signature.sig"),
    )
    .expect("fixture: ts-jws-valid-timestamp/signature.sig parses");
    let content = envelope
        .content()
        .expect("fixture: ts-jws-valid-timestamp/signature.sig has valid content");
    let si = content.signer_info;
    let token = si
        .timestamp_signature
        .clone()
        .expect("fixture: ts-jws-valid-timestamp/signature.sig is timestamped");
    let tsa_roots = TRUST_STORES
        .load(StoreType::Tsa, "test-timestamp")
        .expect("fixture: tsa:test-timestamp loads");
    let evidence = notary_verifier::timestamp::parse_signed_token(&token)
        .expect("fixture: the countersignature parses")
        .certificates
        .iter()
        .map(|cert| Evidence::Asserted {
            certificate_sha256: cert.sha256.clone(),
            status: Status::Good,
            source: "fuzz fixture".to_owned(),
        })
        .collect();
    TimestampFixture {
        signature_value: si.signature.clone(),
        token,
        signing_chain: si
            .certificate_chain
            .iter()
            .map(|c| c.der().to_vec())
            .collect(),
        tsa_roots,
        request: request_with(Vec::new(), evidence),
        request_without_evidence: request_with(Vec::new(), Vec::new()),
    }
});

/// `fuzz/fixtures/revocation/` (made by `make_fixtures.py` there): a root, a leaf it
/// issued that names an OCSP responder and a CRL distribution point, and a base CRL of
/// that root that names a delta CRL location.
pub struct RevocationFixture {
    /// The leaf.
    pub leaf: Cert,
    /// Its issuer, a self-signed root.
    pub issuer: Cert,
    /// A base CRL (number 1) with a freshestCRL location.
    pub base_crl: Vec<u8>,
}

/// See [`RevocationFixture`].
pub static REVOCATION: LazyLock<RevocationFixture> = LazyLock::new(|| RevocationFixture {
    leaf: Cert::from_der(fixture!("revocation/leaf.der")).expect("fixture: revocation/leaf.der"),
    issuer: Cert::from_der(fixture!("revocation/ca.der")).expect("fixture: revocation/ca.der"),
    base_crl: fixture!("revocation/base.crl").to_vec(),
});

/// An OCI document whose statements select by exact scope and by the `*` wildcard.
pub const SELECTION_POLICY_OCI: &str = r#"{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "exact",
      "registryScopes": [
        "localhost:5000/e2e",
        "registry.example.com/team/app",
        "registry.acme-rockets.io/software/net-monitor",
        "local/e2e"
      ],
      "signatureVerification": { "level": "skip" }
    },
    { "name": "any", "registryScopes": ["*"], "signatureVerification": { "level": "skip" } }
  ]
}"#;

/// A blob document with a named and a global statement.
pub const SELECTION_POLICY_BLOB: &str = r#"{
  "version": "1.0",
  "trustPolicies": [
    { "name": "named", "signatureVerification": { "level": "skip" } },
    { "name": "global", "globalPolicy": true, "signatureVerification": { "level": "skip" } }
  ]
}"#;

/// [`SELECTION_POLICY_OCI`], validated.
pub static SELECTION_OCI: LazyLock<ValidatedDocument> = LazyLock::new(|| {
    trustpolicy::load(DocumentKind::Oci, SELECTION_POLICY_OCI.as_bytes())
        .expect("fixture: SELECTION_POLICY_OCI is valid")
});

/// [`SELECTION_POLICY_BLOB`], validated.
pub static SELECTION_BLOB: LazyLock<ValidatedDocument> = LazyLock::new(|| {
    trustpolicy::load(DocumentKind::Blob, SELECTION_POLICY_BLOB.as_bytes())
        .expect("fixture: SELECTION_POLICY_BLOB is valid")
});

/// `data` as text, when it is UTF-8.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
