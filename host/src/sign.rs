//! Signing: a key (in an HSM over PKCS#11, or a local PEM file for development) with its
//! certificate chain, and the workflow payload → envelope → self-verification. Nothing is
//! published until the envelope verifies against the leaf certificate's key.

pub mod local;
pub mod timestamp;

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use notary_verifier::envelope::{Envelope, EnvelopeContent, ExtendedAttribute};
use notary_verifier::sign::{
    CheckedChain, Format, SignRequest, SignedAttributes, assemble, check_signing_chain,
    check_signing_chain_untimed, prepare,
};
use notary_verifier::signature::SignatureAlgorithm;
use notary_verifier::{Descriptor, Instant};

use crate::pkcs11::HsmKey;

/// The signing agent written into envelopes.
pub const SIGNING_AGENT: &str = concat!("hsm-notary/", env!("CARGO_PKG_VERSION"));

/// Where the private key is.
pub enum KeySource {
    /// In a PKCS#11 token.
    Pkcs11(Arc<HsmKey>),
    /// A local PEM file (development and tests).
    Local(Box<local::LocalKey>),
    /// A notation plugin (its chain comes with each signature).
    Plugin(Box<crate::plugin::signer::PluginKey>),
}

/// A key and its certificate chain (DER, leaf first; empty for a plugin key, whose
/// chain comes with each signature).
pub struct SigningKey {
    /// The private key.
    pub source: KeySource,
    /// The chain.
    pub chain: Vec<Vec<u8>>,
}

impl SigningKey {
    /// Sign `message` with the key's algorithm.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match &self.source {
            KeySource::Pkcs11(key) => key.sign(message),
            KeySource::Local(key) => key.sign(message),
            KeySource::Plugin(_) => bail!("a plugin key signs with its chain: use sign_with_chain"),
        }
    }

    /// The algorithm the key signs with, its chain checked at `signing_time` (a plugin's
    /// chain is checked when it arrives).
    pub fn algorithm(&self, signing_time: Instant) -> Result<SignatureAlgorithm> {
        match &self.source {
            KeySource::Plugin(key) => key
                .raw_algorithm()
                .ok_or_else(|| anyhow!("an envelope plugin has no raw algorithm")),
            _ => checked_algorithm(&self.chain, signing_time)
                .map_err(|e| anyhow!("the signing certificate chain cannot be used: {e}")),
        }
    }

    /// Sign `message`: the signature and the chain that goes into the envelope.
    fn sign_with_chain(
        &self,
        message: &[u8],
        signing_time: Instant,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
        match &self.source {
            KeySource::Plugin(key) => key.sign_raw(message, signing_time),
            _ => Ok((self.sign(message)?, self.chain.clone())),
        }
    }

    fn signing_agent(&self) -> String {
        match &self.source {
            KeySource::Plugin(key) => key.signing_agent(),
            _ => SIGNING_AGENT.to_owned(),
        }
    }
}

/// A signed envelope ready to publish.
pub struct SignedEnvelope {
    /// The envelope bytes.
    pub envelope: Vec<u8>,
    /// Its media type.
    pub media_type: &'static str,
    /// The signing time.
    pub signing_time: Instant,
    /// SHA-256 thumbprints of the chain, lower-case hex, leaf first.
    pub thumbprints: Vec<String>,
    /// Extra signature manifest annotations (from an envelope plugin).
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Sign `target` (user metadata already in its annotations), with an RFC 3161 timestamp
/// over the signature when a TSA is given (its token checked by `engine` first).
pub fn sign_descriptor(
    key: &SigningKey,
    format: Format,
    target: &Descriptor,
    expiry: Option<std::time::Duration>,
    now: Instant,
    timestamping: Option<(&timestamp::Timestamper, &dyn crate::engine::Verifier)>,
) -> Result<SignedEnvelope> {
    sign_descriptor_with(key, format, target, expiry, now, timestamping, Vec::new())
}

/// [`sign_descriptor`] with extended signed attributes (the signing service's approval
/// record); a plugin that makes whole envelopes cannot carry them.
pub fn sign_descriptor_with(
    key: &SigningKey,
    format: Format,
    target: &Descriptor,
    expiry: Option<std::time::Duration>,
    now: Instant,
    timestamping: Option<(&timestamp::Timestamper, &dyn crate::engine::Verifier)>,
    extended: Vec<ExtendedAttribute>,
) -> Result<SignedEnvelope> {
    let signing_time = Instant::from_unix(now.seconds, 0);
    if let KeySource::Plugin(plugin) = &key.source
        && plugin.raw_algorithm().is_none()
    {
        if !extended.is_empty() {
            bail!(
                "plugin {} makes whole envelopes, so they cannot carry extended attributes",
                plugin.metadata().name
            );
        }
        if timestamping.is_some() {
            eprintln!(
                "Warning: --timestamp-url is not used with plugin {}: it makes the whole envelope, timestamp included",
                plugin.metadata().name
            );
        }
        let (envelope, info, annotations) =
            plugin.generate_envelope(format, target, expiry.filter(|d| !d.is_zero()))?;
        return Ok(SignedEnvelope {
            envelope,
            media_type: format.media_type(),
            signing_time: info
                .signing_time
                .or(info.authentic_signing_time)
                .unwrap_or(signing_time),
            // The component's SHA-256 fingerprints of the chain, leaf first.
            thumbprints: info.certificates.iter().map(|c| c.sha256.clone()).collect(),
            annotations,
        });
    }
    let algorithm: SignatureAlgorithm = key.algorithm(signing_time)?;
    let payload = notary_verifier::payload::build(target);
    let expiry = expiry
        .filter(|d| !d.is_zero())
        .map(|d| Instant::from_unix(signing_time.seconds.saturating_add(d.as_secs() as i64), 0));
    let mut request = SignRequest {
        format,
        attributes: SignedAttributes {
            algorithm,
            content_type: notary_verifier::sign::payload_content_type().to_owned(),
            signing_time,
            expiry,
            extended,
        },
        payload: &payload,
        certificate_chain: Vec::new(),
        signing_agent: key.signing_agent(),
        timestamp_token: None,
    };
    let prepared = prepare(&request);
    let (signature, chain) = key.sign_with_chain(&prepared.to_sign, signing_time)?;
    request.certificate_chain = chain;
    // Check the HSM's work before anything leaves this process, the TSA request included.
    let envelope = assemble(&request, &prepared, &signature);
    let mut checked = check_own_envelope(format, &envelope, &payload)?;
    let envelope = match timestamping {
        None => envelope,
        Some((tsa, engine)) => {
            let envelope = tsa.timestamped_envelope(
                engine,
                format.media_type(),
                &signature,
                algorithm.hash(),
                &request.certificate_chain.clone(),
                now,
                &mut |token| {
                    request.timestamp_token = Some(token);
                    assemble(&request, &prepared, &signature)
                },
            )?;
            checked = check_own_envelope(format, &envelope, &payload)?;
            envelope
        }
    };
    Ok(SignedEnvelope {
        envelope,
        media_type: format.media_type(),
        signing_time,
        thumbprints: thumbprints(&checked),
        annotations: Default::default(),
    })
}

/// Chains checked in this process, by their certificates' bytes (compared, which is
/// cheaper than hashing them): a signer that signs many artifacts with one chain (a
/// batch, a signing service) verifies the chain's signatures once, and only its validity
/// window at each signing time.
type CheckedChains = Vec<(Vec<Vec<u8>>, CheckedChain)>;
static CHECKED_CHAINS: std::sync::Mutex<CheckedChains> = std::sync::Mutex::new(Vec::new());
/// Chains remembered at once (a process rarely signs with more than one or two).
const MAX_CHECKED_CHAINS: usize = 16;

/// [`check_signing_chain`], its time-independent part remembered per chain: the same
/// answer at every signing time (a refusal is the full check's, so it always says why).
fn checked_algorithm(
    chain: &[Vec<u8>],
    signing_time: Instant,
) -> Result<SignatureAlgorithm, String> {
    let lock = || {
        CHECKED_CHAINS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let cached = lock()
        .iter()
        .find(|(k, _)| k.as_slice() == chain)
        .map(|(_, c)| c.clone());
    if let Some(checked) = cached
        && checked.covers(signing_time)
    {
        return Ok(checked.algorithm);
    }
    match check_signing_chain_untimed(chain) {
        Ok(checked) => {
            let covered = checked.covers(signing_time).then_some(checked.algorithm);
            let mut chains = lock();
            chains.retain(|(k, _)| k.as_slice() != chain);
            if chains.len() >= MAX_CHECKED_CHAINS {
                chains.remove(0);
            }
            chains.push((chain.to_vec(), checked));
            drop(chains);
            // Outside its window: the full check says which certificate, and when.
            covered.map_or_else(|| check_signing_chain(chain, signing_time), Ok)
        }
        // The full check's own words for a chain that fails a requirement.
        Err(_) => check_signing_chain(chain, signing_time),
    }
}

/// The SHA-256 thumbprints of a checked envelope's chain, lower-case hex, in chain order.
fn thumbprints(checked: &EnvelopeContent) -> Vec<String> {
    checked
        .signer_info
        .certificate_chain
        .iter()
        .map(|c| c.sha256.clone())
        .collect()
}

/// An envelope made elsewhere (a signing service), checked as [`check_own_envelope`]
/// checks ours, ready to publish.
pub fn received_envelope(
    format: Format,
    envelope: Vec<u8>,
    payload: &[u8],
) -> Result<SignedEnvelope> {
    let content = check_own_envelope(format, &envelope, payload)?;
    Ok(SignedEnvelope {
        media_type: format.media_type(),
        signing_time: content.signer_info.signing_time,
        thumbprints: thumbprints(&content),
        annotations: Default::default(),
        envelope,
    })
}

/// The envelope verifies against its leaf certificate's key and carries `payload`; its
/// verified content.
pub fn check_own_envelope(
    format: Format,
    envelope: &[u8],
    payload: &[u8],
) -> Result<EnvelopeContent> {
    let content = Envelope::parse(format.media_type(), envelope)
        .and_then(|e| e.verify())
        .map_err(|e| {
            anyhow!("the signature made by the key does not verify against its certificate: {e}")
        })?;
    if content.payload.content != payload {
        bail!("the signed envelope does not carry the payload that was signed");
    }
    Ok(content)
}

/// Parse `--expiry` like Go's `time.Duration` (`24h`, `30m`, `1h30m`, `90s`), whole seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration> {
    if text.starts_with('-') {
        bail!("expiry duration cannot be a negative value");
    }
    let duration = parse_go_duration(text)?;
    if duration.subsec_nanos() != 0 {
        bail!("expiry duration supports minimum granularity of seconds");
    }
    Ok(duration)
}

/// Parse a Go `time.Duration` (`2s`, `500ms`, `1m30s`, `0`); negative ones are refused.
pub fn parse_go_duration(text: &str) -> Result<std::time::Duration> {
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if text.starts_with('-') {
        bail!("invalid duration {text:?}: cannot be negative");
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let value: f64 = number
            .parse()
            .map_err(|_| anyhow!("invalid duration {text:?} (examples: 24h, 30m, 1h30m, 500ms)"))?;
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                _ => bail!("invalid duration {text:?}: unknown unit {unit:?} (use h, m, s, ms)"),
            };
    }
    if !number.is_empty() {
        bail!("invalid duration {text:?}: missing unit (examples: 24h, 30m, 1h30m, 500ms)");
    }
    std::time::Duration::try_from_secs_f64(total)
        .map_err(|_| anyhow!("invalid duration {text:?}: out of range"))
}

/// Read a PEM chain file (leaf first) into DER certificates.
pub fn read_chain(path: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading certificate chain {}", path.display()))?;
    let certs = notary_verifier::x509::parse_certificates(&bytes)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate found", path.display());
    }
    Ok(certs.iter().map(|c| c.der().to_vec()).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
mod tests {
    use super::{checked_algorithm, parse_duration};
    use notary_verifier::Instant;
    use notary_verifier::sign::check_signing_chain;

    /// The remembered check answers as the full one at every signing time: before,
    /// inside and after the chain's window, a chain that fails a requirement, and the
    /// same chain asked again after it was cached.
    #[test]
    fn a_remembered_chain_check_decides_as_the_full_check_at_every_time() {
        let (root_key, root) =
            crate::certgen::root("cache", std::time::Duration::from_secs(3600)).unwrap();
        let leaf_key =
            p256::ecdsa::SigningKey::from(p256::SecretKey::from_slice(&[7; 32]).unwrap());
        let spki = spki::EncodePublicKey::to_public_key_der(leaf_key.verifying_key()).unwrap();
        let leaf = crate::certgen::leaf(
            "cache leaf",
            spki.as_bytes(),
            &root_key,
            &root,
            std::time::Duration::from_secs(1800),
        )
        .unwrap();
        let good = vec![leaf.clone(), root.clone()];
        let reversed = vec![root, leaf];
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let now = Instant::from_unix(unix, 0);
        let times: Vec<Instant> = [-7200i64, -600, -1, 0, 1, 600, 1700, 1790, 2000, 3700, 9000]
            .iter()
            .map(|d| Instant::from_unix(now.seconds + d, 0))
            .collect();
        for chain in [&good, &reversed] {
            for round in 0..2 {
                for &t in &times {
                    assert_eq!(
                        checked_algorithm(chain, t),
                        check_signing_chain(chain, t),
                        "round {round} at {t:?}"
                    );
                }
            }
        }
        assert!(checked_algorithm(&good, now).is_ok());
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("24h").expect("ok").as_secs(), 86_400);
        assert_eq!(parse_duration("1h30m").expect("ok").as_secs(), 5_400);
        assert_eq!(parse_duration("0").expect("ok").as_secs(), 0);
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("1500ms").is_err());
    }
}
