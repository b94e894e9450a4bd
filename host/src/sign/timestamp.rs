//! RFC 3161 timestamping at signing time (notation's `--timestamp-url` and
//! `--timestamp-root-cert`): a `TimeStampReq` over the signature value is sent to the TSA,
//! and the token it answers with is checked by the verifier — countersignature, TSA
//! certificate requirements, chain to the given root, range within the signing chain —
//! before it goes into the envelope's unsigned `io.cncf.notary.timestampSignature`.
//!
//! The request and response are encoded here with `der` (RFC 3161 §2.4), not with
//! `x509-tsp`, which is built on `der` 0.7 while everything else here is on 0.8. The token
//! itself is never interpreted by the host: it is handed to the verifier as bytes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use der::asn1::{BitString, OctetString, Uint};
use der::{Any, Decode, Encode, Sequence};
use notary_verifier::signature::HashAlgorithm;
use notary_verifier::truststore::{NamedStore, StoreFile, StoreType, TrustStores};
use notary_verifier::verify::{PolicyInput, SignatureInput, Target, VerifyRequest};
use notary_verifier::{Descriptor, DocumentKind, Instant};
use spki::AlgorithmIdentifierOwned;

use crate::engine::Verifier;

/// notation's TSA request timeout.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A timestamp response is a signed token with a few certificates: far below this.
const MAX_RESPONSE: usize = 1024 * 1024;

/// `MessageImprint` (RFC 3161 §2.4.1).
#[derive(Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

/// `TimeStampReq` (RFC 3161 §2.4.1), without `reqPolicy` and extensions.
#[derive(Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    nonce: Option<Uint>,
    #[asn1(optional = "true")]
    cert_req: Option<bool>,
}

/// `PKIStatusInfo` (RFC 3161 §2.4.2).
#[derive(Sequence)]
struct PkiStatusInfo {
    status: u32,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// `TimeStampResp` (RFC 3161 §2.4.2).
#[derive(Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<Any>,
}

/// A TSA and the root its tokens must chain to.
pub struct Timestamper {
    url: reqwest::Url,
    root_path: PathBuf,
    root: Vec<u8>,
}

impl Timestamper {
    /// From `--timestamp-url` and `--timestamp-root-cert`, with notation's checks: the file
    /// holds exactly one certificate, and the verifier admits it as a `tsa` root.
    pub fn new(url: &str, root_path: &Path, engine: &dyn Verifier) -> Result<Self> {
        if url.is_empty() {
            bail!("timestamping: tsa url cannot be empty");
        }
        if root_path.as_os_str().is_empty() {
            bail!("timestamping: tsa root certificate path cannot be empty");
        }
        let url = reqwest::Url::parse(url)
            .with_context(|| format!("timestamping: tsa url {url:?} is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("timestamping: tsa url {url} must be http or https");
        }
        let shown = root_path.display();
        let root = std::fs::read(root_path).with_context(|| format!("reading {shown}"))?;
        let certificates: Vec<Vec<u8>> = notary_verifier::x509::parse_certificates(&root)
            .map(|certs| certs.iter().map(|c| c.der().to_vec()).collect())
            .unwrap_or_default();
        let expecting = "Expecting single x509 root certificate in PEM or DER format from the file";
        match certificates.len() {
            0 => bail!("cannot find any certificate from {shown:?}. {expecting}"),
            1 => {}
            _ => bail!("found more than one certificates from {shown:?}. {expecting}"),
        }
        let root = certificates.into_iter().next().unwrap_or_default();
        let stores = root_store(&root);
        if let Err(failure) = engine.load_trust_store(&stores, StoreType::Tsa, ROOT_STORE)? {
            bail!(
                "certificate from {shown:?} is not a root certificate. {expecting}: {}",
                failure.message
            );
        }
        Ok(Self {
            url,
            root_path: root_path.to_owned(),
            root,
        })
    }

    /// A token over `signature` from the TSA, checked by `engine` against the root and the
    /// signing chain at `now`.
    pub fn timestamp(
        &self,
        engine: &dyn Verifier,
        signature: &[u8],
        hash: HashAlgorithm,
        chain: &[Vec<u8>],
        now: Instant,
    ) -> Result<Vec<u8>> {
        let request = request(signature, hash)?;
        let response = self.post(&request)?;
        let token =
            token_of(&response).with_context(|| format!("timestamping with {}", self.url))?;
        let result = engine.check_timestamp_token(
            &check_request(&self.root, now),
            &token,
            signature,
            chain,
        )?;
        if result.status != notary_verifier::outcome::ValidationStatus::Passed {
            bail!(
                "the timestamp from {} does not verify against {}: {}",
                self.url,
                self.root_path.display(),
                result.message.unwrap_or_default()
            );
        }
        Ok(token)
    }

    /// The authentic-timestamp validation of the finished envelope, as a verifier trusting
    /// the root will run it: besides the token, the timestamp must come after the envelope's
    /// signing time (a TSA whose `accuracy` reaches back before it fails here, not later).
    pub fn check_envelope(
        &self,
        engine: &dyn Verifier,
        media_type: &str,
        envelope: &[u8],
        now: Instant,
    ) -> Result<()> {
        let mut request = check_request(&self.root, now);
        request.signatures = vec![SignatureInput {
            media_type: media_type.to_owned(),
            envelope: envelope.to_vec(),
            manifest_digest: None,
        }];
        let result = engine.check_authentic_timestamp(&request)?;
        if result.status != notary_verifier::outcome::ValidationStatus::Passed {
            bail!(
                "the timestamped envelope fails the authentic-timestamp validation with {} as the tsa root: {}",
                self.root_path.display(),
                result.message.unwrap_or_default()
            );
        }
        Ok(())
    }

    fn post(&self, body: &[u8]) -> Result<Vec<u8>> {
        crate::registry::install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let url = &self.url;
        runtime.block_on(async {
            let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
            let response = client
                .post(url.clone())
                .header("content-type", "application/timestamp-query")
                .body(body.to_vec())
                .send()
                .await
                .map_err(|e| anyhow!("timestamping: cannot reach {url}: {e:#}"))?;
            let status = response.status();
            if !status.is_success() {
                bail!("timestamping: {url} answered {status}");
            }
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if content_type != "application/timestamp-reply" {
                bail!(
                    "timestamping: {url} answered with content type {content_type:?}, not application/timestamp-reply"
                );
            }
            let mut response = response;
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| anyhow!("timestamping: reading the answer of {url}: {e:#}"))?
            {
                if bytes.len() + chunk.len() > MAX_RESPONSE {
                    bail!("timestamping: the answer of {url} is over {MAX_RESPONSE} bytes");
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        })
    }
}

/// The one store the root goes in for the verifier's checks.
const ROOT_STORE: &str = "timestamp-root";

fn root_store(root: &[u8]) -> TrustStores {
    TrustStores {
        stores: vec![NamedStore {
            store_type: StoreType::Tsa,
            name: ROOT_STORE.to_owned(),
            files: vec![StoreFile {
                name: "root.der".to_owned(),
                content: root.to_vec(),
            }],
        }],
    }
}

/// A request whose only use is `check-timestamp-token`: one statement trusting the root
/// as the `tsa` store, at `now`.
fn check_request(root: &[u8], now: Instant) -> VerifyRequest {
    let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
        "name": "timestamp-at-signing",
        "registryScopes": ["*"],
        "signatureVerification": {"level": "strict", "verifyTimestamp": "always"},
        "trustStores": [format!("tsa:{ROOT_STORE}")],
        "trustedIdentities": ["*"],
    }]});
    VerifyRequest {
        policy: PolicyInput {
            kind: DocumentKind::Oci,
            content: policy.to_string().into_bytes(),
        },
        trust_stores: root_store(root),
        target: Target::Oci {
            reference: "timestamp/at-signing@sha256:0".to_owned(),
            descriptor: Descriptor::default(),
        },
        signatures: Vec::new(),
        user_metadata: Vec::new(),
        verification_time: now,
        revocation_evidence: Vec::new(),
        max_signatures: 1,
    }
}

/// A DER `TimeStampReq` over `signature` with a random nonce, asking for the TSA's
/// certificate in the token.
fn request(signature: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| anyhow!("no randomness for the nonce: {e}"))?;
    let request = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: hash.oid(),
                parameters: None,
            },
            hashed_message: OctetString::new(hash.digest(signature))?,
        },
        nonce: Some(Uint::new(&nonce)?),
        cert_req: Some(true),
    };
    Ok(request.to_der()?)
}

/// The token of a granted response, or the TSA's reason for refusing.
fn token_of(response: &[u8]) -> Result<Vec<u8>> {
    let response = TimeStampResp::from_der(response)
        .map_err(|e| anyhow!("the answer is not a DER TimeStampResp: {e}"))?;
    // granted (0) or grantedWithMods (1)
    if response.status.status > 1 {
        let text = response.status.status_string.unwrap_or_default().join("; ");
        bail!(
            "the TSA refused the request: status {}{}",
            response.status.status,
            if text.is_empty() {
                String::new()
            } else {
                format!(" ({text})")
            }
        );
    }
    let token = response
        .time_stamp_token
        .ok_or_else(|| anyhow!("the TSA granted the request but sent no token"))?;
    Ok(token.to_der()?)
}
