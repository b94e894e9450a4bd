//! The JSON bundle a client POSTs, read into a WIT `verify-request`.
//!
//! ```json
//! {
//!   "policy": { "version": "1.0", "trustPolicies": [ ... ] },
//!   "trustStores": [ { "type": "ca", "name": "acme", "certificates": ["-----BEGIN CERTIFICATE-----..."] } ],
//!   "artifact": { "reference": "registry.example/app@sha256:...", "descriptor": { "mediaType": "...", "digest": "sha256:...", "size": 1234 } },
//!   "signatures": [ { "mediaType": "application/jose+json", "envelope": "<base64>" } ],
//!   "userMetadata": { "buildId": "42" },
//!   "verificationTime": "2026-11-23T12:00:00Z",
//!   "revocation": [ { "ocsp": "<base64 DER>", "url": "http://ocsp.example/" },
//!                   { "crl": "<base64 DER or PEM>", "url": "http://crl.example/ca.crl" } ]
//! }
//! ```
//!
//! `revocation` is the OCSP responses and CRLs the client fetched (each with the URL a
//! certificate names for it); a certificate that names locations without evidence here
//! has an unknown revocation status.
//!
//! `policy` is the trust policy document itself, or a string holding it; its bytes reach
//! the verifier exactly as sent, so duplicate keys are judged by the verifier, not lost
//! here. `blob` (`{digest, size, mediaType?, policyName?}`) replaces `artifact` for a blob
//! signature, and then the policy is a blob trust policy unless `policyKind` says otherwise.
//! Certificates are PEM text or base64 DER. Unknown fields and keys given twice are errors,
//! so a misspelt or repeated field is not silently ignored.

use base64ct::{Base64, Encoding};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::bindings::notary::verifier::types as wit;

/// notation's default for `--max-signatures`.
const DEFAULT_MAX_SIGNATURES: u32 = 100;
/// The verifier refuses more signatures than this, and more certificates per store than
/// [`MAX_STORE_CERTIFICATES`]; refusing them here keeps a small bundle from growing into
/// hundreds of megabytes of WIT values first.
const MAX_SIGNATURES: usize = 1024;
const MAX_STORE_CERTIFICATES: usize = 1000;

/// A JSON object read as key/value pairs in order, refusing a key given twice: a required
/// user-metadata pair must not vanish because a later duplicate replaced it.
fn unique_pairs<'de, D>(deserializer: D) -> Result<Vec<(String, String)>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut pairs: Vec<(String, String)> = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if pairs.iter().any(|(k, _)| *k == key) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                pairs.push((key, value));
            }
            Ok(pairs)
        }
    }
    deserializer.deserialize_map(Pairs)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Bundle {
    policy: Box<RawValue>,
    #[serde(default)]
    policy_kind: Option<Kind>,
    trust_stores: Vec<Store>,
    #[serde(default)]
    artifact: Option<Artifact>,
    #[serde(default)]
    blob: Option<Blob>,
    signatures: Vec<Signature>,
    #[serde(default, deserialize_with = "unique_pairs")]
    user_metadata: Vec<(String, String)>,
    #[serde(default)]
    verification_time: Option<String>,
    #[serde(default)]
    max_signatures: Option<u32>,
    #[serde(default)]
    revocation: Vec<Revocation>,
}

/// Most revocation items a bundle may carry: a few per certificate of a few chains.
const MAX_REVOCATION_ITEMS: usize = 256;

/// One piece of revocation evidence.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Revocation {
    url: String,
    #[serde(default)]
    ocsp: Option<String>,
    #[serde(default)]
    crl: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Oci,
    Blob,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum StoreType {
    Ca,
    SigningAuthority,
    Tsa,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Store {
    #[serde(rename = "type")]
    store_type: StoreType,
    name: String,
    certificates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Artifact {
    reference: String,
    descriptor: Descriptor,
}

/// An OCI descriptor; fields the verifier does not use (`urls`, `platform`, ...) are
/// allowed so that a descriptor can be pasted as a registry returns it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default, deserialize_with = "unique_pairs")]
    annotations: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Blob {
    digest: String,
    size: u64,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    policy_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Signature {
    #[serde(default)]
    media_type: Option<String>,
    envelope: String,
    #[serde(default)]
    manifest_digest: Option<String>,
}

/// Reads a bundle. `now` supplies the verification time when the bundle has none. Errors
/// name the field that is wrong.
pub fn parse(
    body: &[u8],
    now: impl FnOnce() -> wit::Instant,
) -> Result<wit::VerifyRequest, String> {
    let bundle: Bundle =
        serde_json::from_slice(body).map_err(|error| format!("bundle: {error}"))?;
    if bundle.signatures.len() > MAX_SIGNATURES {
        return Err(format!(
            "signatures: {} given, at most {MAX_SIGNATURES}",
            bundle.signatures.len()
        ));
    }
    let (target, default_kind) = match (bundle.artifact, bundle.blob) {
        (Some(artifact), None) => {
            // The reference selects the trust policy statement; when it names a digest, that
            // must be the artifact being verified.
            if let Some((_, digest)) = artifact.reference.rsplit_once('@')
                && digest != artifact.descriptor.digest
            {
                return Err(format!(
                    "artifact.reference names {digest} but artifact.descriptor.digest is {}",
                    artifact.descriptor.digest
                ));
            }
            (
                wit::Target::Oci(wit::OciTarget {
                    reference: artifact.reference,
                    descriptor: descriptor(artifact.descriptor),
                }),
                Kind::Oci,
            )
        }
        (None, Some(blob)) => (
            wit::Target::Blob(wit::BlobTarget {
                policy_name: blob.policy_name,
                media_type: blob.media_type,
                digest: blob.digest,
                size: blob.size,
            }),
            Kind::Blob,
        ),
        _ => return Err("bundle: give exactly one of `artifact` and `blob`".to_owned()),
    };
    let kind = match bundle.policy_kind.unwrap_or(default_kind) {
        Kind::Oci => wit::PolicyKind::Oci,
        Kind::Blob => wit::PolicyKind::Blob,
    };
    let verification_time = match bundle.verification_time {
        Some(text) => instant(&text)?,
        None => now(),
    };
    Ok(wit::VerifyRequest {
        policy: wit::PolicyDocument {
            kind,
            content: policy_bytes(&bundle.policy)?,
        },
        trust_stores: bundle
            .trust_stores
            .into_iter()
            .enumerate()
            .map(|(index, store)| trust_store(index, store))
            .collect::<Result<_, _>>()?,
        target,
        signatures: bundle
            .signatures
            .into_iter()
            .enumerate()
            .map(|(index, signature)| signature_in(index, signature))
            .collect::<Result<_, _>>()?,
        user_metadata: bundle.user_metadata,
        verification_time,
        revocation_evidence: revocation(bundle.revocation)?,
        max_signatures: bundle.max_signatures.unwrap_or(DEFAULT_MAX_SIGNATURES),
        plugin_evidence: Vec::new(),
    })
}

fn revocation(items: Vec<Revocation>) -> Result<Vec<wit::RevocationEvidence>, String> {
    if items.len() > MAX_REVOCATION_ITEMS {
        return Err(format!(
            "revocation: {} items given, at most {MAX_REVOCATION_ITEMS}",
            items.len()
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let bytes = |text: &str| {
                pem_crl(text)
                    .unwrap_or_else(|| Base64::decode_vec(text.trim()))
                    .map_err(|error| format!("revocation[{index}]: not base64 DER: {error}"))
            };
            let content = |bytes| wit::FetchedEvidence {
                url: item.url.clone(),
                content: bytes,
            };
            match (&item.ocsp, &item.crl) {
                (Some(ocsp), None) => {
                    Ok(wit::RevocationEvidence::OcspResponse(content(bytes(ocsp)?)))
                }
                (None, Some(crl)) => Ok(wit::RevocationEvidence::Crl(content(bytes(crl)?))),
                _ => Err(format!(
                    "revocation[{index}]: give exactly one of `ocsp` and `crl`"
                )),
            }
        })
        .collect()
}

/// The DER of a PEM `X509 CRL` block.
fn pem_crl(text: &str) -> Option<Result<Vec<u8>, base64ct::Error>> {
    let start = text.find("-----BEGIN X509 CRL-----")? + 24;
    let end = text.find("-----END X509 CRL-----")?;
    let body: String = text
        .get(start..end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some(Base64::decode_vec(&body))
}

/// The policy document's bytes: the JSON text as sent, or the content of a JSON string.
fn policy_bytes(raw: &RawValue) -> Result<Vec<u8>, String> {
    let text = raw.get();
    if text.starts_with('"') {
        let inner: String =
            serde_json::from_str(text).map_err(|error| format!("policy: {error}"))?;
        Ok(inner.into_bytes())
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

fn descriptor(d: Descriptor) -> wit::Descriptor {
    wit::Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        artifact_type: d.artifact_type,
        annotations: d.annotations,
    }
}

fn trust_store(index: usize, store: Store) -> Result<wit::TrustStore, String> {
    if store.certificates.len() > MAX_STORE_CERTIFICATES {
        return Err(format!(
            "trustStores[{index}] ({:?}): {} certificates, at most {MAX_STORE_CERTIFICATES}",
            store.name,
            store.certificates.len()
        ));
    }
    let files = store
        .certificates
        .iter()
        .enumerate()
        .map(|(n, text)| {
            let content = if text.contains("-----BEGIN") {
                text.as_bytes().to_vec()
            } else {
                Base64::decode_vec(text.trim()).map_err(|error| {
                    format!(
                        "trustStores[{index}] ({:?}) certificates[{n}]: neither PEM nor base64 DER: {error}",
                        store.name
                    )
                })?
            };
            Ok(wit::TrustStoreFile { name: format!("certificate-{n}"), content })
        })
        .collect::<Result<_, String>>()?;
    Ok(wit::TrustStore {
        store_type: match store.store_type {
            StoreType::Ca => wit::TrustStoreType::Ca,
            StoreType::SigningAuthority => wit::TrustStoreType::SigningAuthority,
            StoreType::Tsa => wit::TrustStoreType::Tsa,
        },
        name: store.name,
        files,
    })
}

fn signature_in(index: usize, signature: Signature) -> Result<wit::Signature, String> {
    let envelope = Base64::decode_vec(signature.envelope.trim())
        .map_err(|error| format!("signatures[{index}].envelope: not base64: {error}"))?;
    let media_type = signature.media_type.unwrap_or_else(|| {
        // A JWS JSON serialization is an object; anything else is taken for COSE.
        let first = envelope.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            "application/jose+json"
        } else {
            "application/cose"
        }
        .to_owned()
    });
    Ok(wit::Signature {
        media_type,
        envelope,
        manifest_digest: signature.manifest_digest,
        prior_failure: None,
    })
}

fn instant(text: &str) -> Result<wit::Instant, String> {
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|error| format!("verificationTime {text:?}: not RFC 3339: {error}"))?;
    Ok(wit::Instant {
        seconds: at.unix_timestamp(),
        nanoseconds: at.nanosecond(),
        // The WIT asks for 0 on inputs: the offset is for display only.
        utc_offset_seconds: 0,
    })
}
