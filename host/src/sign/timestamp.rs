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
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use der::asn1::{BitString, OctetString, Uint};
use der::{Any, Decode, Encode, Sequence};
use notary_verifier::outcome::{TimestampInfo, ValidationStatus};
use notary_verifier::revocation::Evidence;
use notary_verifier::signature::HashAlgorithm;
use notary_verifier::truststore::{NamedStore, StoreFile, StoreType, TrustStores};
use notary_verifier::verify::{PolicyInput, SignatureInput, Target, VerifyRequest};
use notary_verifier::{Descriptor, DocumentKind, Instant};
use spki::AlgorithmIdentifierOwned;

use crate::engine::Verifier;
use crate::revocation::Fetcher;

/// notation's TSA request timeout.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The longest wait for a token whose accuracy reaches back before the signing time.
const MAX_ACCURACY_WAIT: Duration = Duration::from_secs(10);
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
    revocation: Arc<Fetcher>,
}

impl Timestamper {
    /// From `--timestamp-url` and `--timestamp-root-cert`, with notation's checks: the file
    /// holds exactly one certificate, and the verifier admits it as a `tsa` root.
    pub fn new(
        url: &str,
        root_path: &Path,
        engine: &dyn Verifier,
        revocation: Arc<Fetcher>,
    ) -> Result<Self> {
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
            revocation,
        })
    }

    /// The envelope `assemble` makes with a token over `signature` from the TSA, once the
    /// verifier has checked the token against the root and the signing chain, and the
    /// finished envelope passes the authentic-timestamp validation at `now`.
    ///
    /// Two things a verifier would hold against a good TSA are handled here rather than
    /// failed: a token whose range (`genTime - accuracy`) starts before the envelope's
    /// whole-second signing time is asked for again once that moment has passed. The TSA
    /// chain's revocation is checked with OCSP and CRLs fetched now.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; each is a distinct input"
    )]
    pub fn timestamped_envelope(
        &self,
        engine: &dyn Verifier,
        media_type: &str,
        signature: &[u8],
        hash: HashAlgorithm,
        chain: &[Vec<u8>],
        now: Instant,
        assemble: &mut dyn FnMut(Vec<u8>) -> Vec<u8>,
    ) -> Result<Vec<u8>> {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let token = self.token(signature, hash)?;
            let envelope = assemble(token.clone());
            let input = SignatureInput {
                media_type: media_type.to_owned(),
                envelope: envelope.clone(),
                manifest_digest: None,
                prior_failure: None,
            };
            let info = engine
                .inspect(&input)?
                .map_err(|f| anyhow!("the timestamped envelope cannot be read: {}", f.message))?;
            let range = match &info.timestamp {
                Some(TimestampInfo::Range(range)) => range,
                Some(TimestampInfo::Error(e)) => {
                    bail!("the timestamp from {} cannot be read: {e}", self.url)
                }
                None => bail!("the timestamped envelope carries no timestamp"),
            };
            if let Some(signing_time) = info.signing_time
                && range.lower < signing_time
                && attempt < ATTEMPTS
            {
                let wait = Duration::from_secs(
                    u64::try_from(signing_time.seconds - range.lower.seconds).unwrap_or(0) + 1,
                );
                if wait > MAX_ACCURACY_WAIT {
                    bail!(
                        "the timestamp from {} is accurate only to [{}, {}], which starts more than {} s before the signing time {}",
                        self.url,
                        range.lower.rfc3339(),
                        range.upper.rfc3339(),
                        MAX_ACCURACY_WAIT.as_secs(),
                        signing_time.rfc3339()
                    );
                }
                eprintln!(
                    "Warning: the timestamp from {} starts at {}, before the signing time {} (its accuracy); asking again in {} s",
                    self.url,
                    range.lower.rfc3339(),
                    signing_time.rfc3339(),
                    wait.as_secs()
                );
                std::thread::sleep(wait);
                continue;
            }
            let evidence = self.tsa_revocation_evidence(engine, &token, signature, chain, now)?;
            self.check(engine, &token, signature, chain, &input, now, evidence)?;
            return Ok(envelope);
        }
        unreachable!("the last attempt returns or fails")
    }

    /// The TSA chain's revocation evidence, fetched as the verifier asks for it
    /// (CVE-2024-56138: a revoked TSA must not timestamp a signature). Nothing is
    /// written before the checks that read it pass.
    fn tsa_revocation_evidence(
        &self,
        engine: &dyn Verifier,
        token: &[u8],
        signature: &[u8],
        chain: &[Vec<u8>],
        now: Instant,
    ) -> Result<Vec<Evidence>> {
        let mut request = check_request(&self.root, now);
        let mut evidence = Vec::new();
        self.revocation
            .unbounded()
            .gather_with(now, &mut evidence, |so_far| {
                request.revocation_evidence = so_far.to_vec();
                engine.timestamp_token_needs(&request, token, signature, chain)
            })?;
        Ok(evidence)
    }

    /// The verifier's checks: the bare token against the root and the signing chain, then
    /// the authentic-timestamp validation of the finished envelope.
    #[allow(
        clippy::too_many_arguments,
        reason = "private; each is a distinct input"
    )]
    fn check(
        &self,
        engine: &dyn Verifier,
        token: &[u8],
        signature: &[u8],
        chain: &[Vec<u8>],
        envelope: &SignatureInput,
        now: Instant,
        evidence: Vec<Evidence>,
    ) -> Result<()> {
        let mut request = check_request(&self.root, now);
        request.revocation_evidence = evidence;
        let result = engine.check_timestamp_token(&request, token, signature, chain)?;
        if result.status != ValidationStatus::Passed {
            bail!(
                "the timestamp from {} does not verify against {}: {}",
                self.url,
                self.root_path.display(),
                result.message.unwrap_or_default()
            );
        }
        request.signatures = vec![envelope.clone()];
        let result = engine.check_authentic_timestamp(&request)?;
        if result.status != ValidationStatus::Passed {
            bail!(
                "the timestamped envelope fails the authentic-timestamp validation with {} as the tsa root: {}",
                self.root_path.display(),
                result.message.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// A token over `signature` from the TSA (not yet checked).
    fn token(&self, signature: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>> {
        let (request, nonce) = request(signature, hash)?;
        let response = self.post(&request)?;
        let token =
            token_of(&response).with_context(|| format!("timestamping with {}", self.url))?;
        check_nonce(&token, &nonce).with_context(|| format!("timestamping with {}", self.url))?;
        Ok(token)
    }

    fn post(&self, body: &[u8]) -> Result<Vec<u8>> {
        crate::registry::install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let url = &self.url;
        runtime.block_on(async {
            // No redirects, as notation's TSA client: a 3xx is reported, not followed.
            let client = reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(crate::sign::SIGNING_AGENT)
                .build()?;
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
        plugin_evidence: Vec::new(),
    }
}

/// A DER `TimeStampReq` over `signature` with a random nonce, asking for the TSA's
/// certificate in the token; and the nonce as the request encodes it (the INTEGER's
/// content octets, which the token must repeat).
fn request(signature: &[u8], hash: HashAlgorithm) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| anyhow!("no randomness for the nonce: {e}"))?;
    let nonce = Uint::new(&random)?;
    let request = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            // Explicit NULL parameters, as notation's TSA client sends them.
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: hash.oid(),
                parameters: Some(Any::null()),
            },
            hashed_message: OctetString::new(hash.digest(signature))?,
        },
        nonce: Some(nonce.clone()),
        cert_req: Some(true),
    };
    Ok((request.to_der()?, integer_content(&nonce)?))
}

/// RFC 3161 §2.4.2: a nonce sent must come back unchanged, or the answer belongs to another
/// request (replayed, or crossed with another client's). The message imprint alone would
/// not tell: it is over this signature, and a replay of an earlier answer for the same
/// signature value would carry the same one.
fn check_nonce(token: &[u8], sent: &[u8]) -> Result<()> {
    let info = notary_verifier::timestamp::parse_signed_token(token)
        .and_then(|t| t.info())
        .map_err(|e| anyhow!("the timestamp token cannot be read: {e}"))?;
    // Compared as encoded, as Go's tspclient compares the integers: DER allows one encoding
    // of a value, so other octets (a sign flipped, a zero prepended) are another nonce.
    match info.nonce {
        None => bail!("the timestamp token carries no nonce; the request sent one"),
        Some(got) if got != sent => {
            bail!("the timestamp token's nonce is not the one sent: it answers another request")
        }
        Some(_) => Ok(()),
    }
}

/// The content octets of `value` encoded as a DER INTEGER.
fn integer_content(value: &Uint) -> Result<Vec<u8>> {
    let der = value.to_der()?;
    let len = usize::try_from(der::EncodeValue::value_len(value)?)?;
    der.get(der.len().saturating_sub(len)..)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| anyhow!("an INTEGER shorter than its content"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_compared_as_the_request_encodes_it() {
        // High bit set: DER prepends a zero octet, which the token must repeat.
        let high = Uint::new(&[0x9a, 0x42]).expect("uint");
        assert_eq!(integer_content(&high).expect("encodes"), [0x00, 0x9a, 0x42]);
        // Leading zeros of the random bytes are not part of the value.
        let low = Uint::new(&[0x00, 0x00, 0x42]).expect("uint");
        assert_eq!(integer_content(&low).expect("encodes"), [0x42]);
    }
}
