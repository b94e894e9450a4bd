//! Verification plugins (`plugin-extensibility.md` §Verification extensibility), as
//! evidence: the verifier runs no plugin. A signature whose critical
//! `io.cncf.notary.verificationPlugin` names a plugin makes the verifier ask the host for
//! that plugin's metadata, and later — once integrity, authenticity against the trust
//! store, expiry, the timestamp and (unless the plugin checks it) revocation have passed
//! — for its answer to a `verify-signature` request the verifier wrote itself. The host
//! runs the plugin and hands back the answer with the request it answers, and the
//! verifier weighs it under the trust policy's levels, as the spec orders it.

use serde::{Deserialize, Serialize};

use crate::envelope::{SignerInfo, SigningScheme, attr};
use crate::outcome::FailureKind;
use crate::quote::Q;

/// Capability: the plugin verifies the trusted identity.
pub const TRUSTED_IDENTITY: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY";
/// Capability: the plugin checks revocation.
pub const REVOCATION_CHECK: &str = "SIGNATURE_VERIFIER.REVOCATION_CHECK";

/// What the host learned about a plugin or got from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginEvidence {
    /// `get-plugin-metadata` of an installed plugin.
    Metadata(PluginInfo),
    /// The plugin is not installed or did not answer its metadata.
    Missing {
        /// Plugin name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The plugin's `verify-signature` response to `request`.
    Answer {
        /// Plugin name.
        name: String,
        /// The request bytes, as [`PluginNeed::VerifySignature`] gave them.
        request: Vec<u8>,
        /// The response bytes (stdout).
        response: Vec<u8>,
    },
    /// `verify-signature` failed (error response, timeout, size).
    Failed {
        /// Plugin name.
        name: String,
        /// The request bytes.
        request: Vec<u8>,
        /// Why.
        reason: String,
    },
}

/// A plugin's metadata, as far as verification reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Name.
    pub name: String,
    /// Version (SemVer).
    pub version: String,
    /// Capabilities.
    pub capabilities: Vec<String>,
}

/// What the verifier needs the host to ask a plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginNeed {
    /// `get-plugin-metadata` of the plugin named.
    Metadata(String),
    /// `verify-signature` with these request bytes (the host adds `pluginConfig`).
    VerifySignature {
        /// Plugin name.
        name: String,
        /// The request JSON.
        request: Vec<u8>,
    },
}

/// The plugin a signature requires, with its minimum version.
pub struct Required {
    /// `io.cncf.notary.verificationPlugin`.
    pub name: String,
    /// `io.cncf.notary.verificationPluginMinVersion`.
    pub min_version: Option<String>,
}

/// The plugin `si` requires, if any.
pub fn required(si: &SignerInfo) -> Option<Required> {
    let name = si
        .extended_attributes
        .iter()
        .find(|a| a.key == attr::VERIFICATION_PLUGIN)?
        .value
        .clone();
    let min_version = si
        .extended_attributes
        .iter()
        .find(|a| a.key == attr::VERIFICATION_PLUGIN_MIN_VERSION)
        .map(|a| a.value.clone());
    Some(Required { name, min_version })
}

/// The critical extended attributes other than the two plugin headers: the ones this
/// verifier does not know, which a plugin must process.
pub fn plugin_attributes(
    si: &SignerInfo,
) -> impl Iterator<Item = &crate::envelope::ExtendedAttribute> {
    si.extended_attributes.iter().filter(|a| {
        a.critical
            && a.key != attr::VERIFICATION_PLUGIN
            && a.key != attr::VERIFICATION_PLUGIN_MIN_VERSION
    })
}

/// The installed plugin's metadata checked against the signature's requirement: found,
/// new enough, a verifier. `Ok(None)`: not known yet (ask for it).
pub fn resolve<'e>(
    required: &Required,
    evidence: &'e [PluginEvidence],
) -> Result<Option<&'e PluginInfo>, (FailureKind, String)> {
    let mut found = None;
    for item in evidence {
        match item {
            PluginEvidence::Metadata(info) if info.name == required.name => found = Some(info),
            PluginEvidence::Missing { name, reason } if *name == required.name => {
                return Err((
                    FailureKind::Integrity,
                    format!(
                        "error while locating the verification plugin {}, make sure the plugin is installed successfully before verifying the signature. error: {reason}",
                        Q(name)
                    ),
                ));
            }
            _ => {}
        }
    }
    let Some(info) = found else {
        return Ok(None);
    };
    if let Some(min) = &required.min_version {
        let (Some(have), Some(want)) = (semver(&info.version), semver(min)) else {
            return Err((
                FailureKind::Integrity,
                format!(
                    "plugin {} version {} or the signature's minimum version {} is not SemVer",
                    Q(&info.name),
                    Q(&info.version),
                    Q(min)
                ),
            ));
        };
        if have < want {
            return Err((
                FailureKind::Integrity,
                format!(
                    "found plugin {} with version {} but signature verification needs plugin version greater than or equal to {min}",
                    info.name, info.version
                ),
            ));
        }
    }
    if !info
        .capabilities
        .iter()
        .any(|c| c == TRUSTED_IDENTITY || c == REVOCATION_CHECK)
    {
        return Err((
            FailureKind::Integrity,
            format!(
                "digital signature requires plugin {} with signature verification capabilities (SIGNATURE_VERIFIER.TRUSTED_IDENTITY and/or SIGNATURE_VERIFIER.REVOCATION_CHECK) installed",
                Q(&info.name)
            ),
        ));
    }
    Ok(Some(info))
}

/// SemVer 2.0 (strict, no `v`), ordered as SemVer orders versions: build metadata is
/// ignored, a pre-release sorts before its release.
fn semver(text: &str) -> Option<(u64, u64, u64, semver::Prerelease)> {
    let v = semver::Version::parse(text).ok()?;
    Some((v.major, v.minor, v.patch, v.pre))
}

/// The `verify-signature` request for `si`, asking for `capabilities`.
pub fn request(
    si: &SignerInfo,
    required: &Required,
    unprocessed: &[String],
    trusted_identities: &[String],
    capabilities: &[String],
) -> Vec<u8> {
    use base64ct::{Base64, Encoding};
    let mut critical = serde_json::Map::new();
    critical.insert(
        "contentType".into(),
        crate::envelope::PAYLOAD_CONTENT_TYPE.into(),
    );
    critical.insert(
        "signingScheme".into(),
        match si.signing_scheme {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
        }
        .into(),
    );
    // notation always sends an expiry: the zero time when the signature has none.
    critical.insert(
        "expiry".into(),
        si.expiry
            .map(|e| e.utc().rfc3339())
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned())
            .into(),
    );
    if let Some(time) = si.authentic_signing_time() {
        critical.insert("authenticSigningTime".into(), time.utc().rfc3339().into());
    }
    critical.insert("verificationPlugin".into(), required.name.clone().into());
    if let Some(min) = &required.min_version {
        critical.insert("verificationPluginMinVersion".into(), min.clone().into());
    }
    let extended: serde_json::Map<String, serde_json::Value> = plugin_attributes(si)
        .map(|a| (a.key.clone(), a.value.clone().into()))
        .collect();
    critical.insert("extendedAttributes".into(), extended.into());
    let chain: Vec<serde_json::Value> = si
        .certificate_chain
        .iter()
        .map(|c| Base64::encode_string(c.der()).into())
        .collect();
    let request = serde_json::json!({
        "contractVersion": "1.0",
        "signature": {
            "criticalAttributes": critical,
            "unprocessedAttributes": unprocessed,
            "certificateChain": chain,
        },
        "trustPolicy": {
            "trustedIdentities": trusted_identities,
            "signatureVerification": capabilities,
        },
    });
    serde_json::to_vec(&request).unwrap_or_default()
}

/// The answer to `request`, if the host has one: `Ok(Err(reason))` when the plugin
/// failed.
pub fn answer<'e>(
    name: &str,
    request: &[u8],
    evidence: &'e [PluginEvidence],
) -> Option<Result<&'e [u8], &'e str>> {
    evidence.iter().find_map(|item| match item {
        PluginEvidence::Answer {
            name: n,
            request: r,
            response,
        } if n == name && r == request => Some(Ok(response.as_slice())),
        PluginEvidence::Failed {
            name: n,
            request: r,
            reason,
        } if n == name && r == request => Some(Err(reason.as_str())),
        _ => None,
    })
}

/// One capability's result in a `verify-signature` response.
#[derive(Debug, Deserialize)]
struct CheckResult {
    success: bool,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    verification_results: std::collections::BTreeMap<String, CheckResult>,
    #[serde(default)]
    processed_attributes: Option<Vec<String>>,
}

/// A plugin's verdict on one capability: passed, or failed with notation's message.
pub struct Verdict {
    /// The capability.
    pub capability: String,
    /// `Err` carries the failure kind and message.
    pub result: Result<(), (FailureKind, String)>,
}

/// Read a `verify-signature` response: one result per requested capability, every
/// unprocessed critical attribute processed. `Err` fails the signature outright.
pub fn verdicts(
    name: &str,
    response: &[u8],
    capabilities: &[String],
    unprocessed: &[String],
) -> Result<Vec<Verdict>, (FailureKind, String)> {
    let response: Response = serde_json::from_slice(response).map_err(|e| {
        (
            FailureKind::Integrity,
            format!(
                "verification plugin {} returned a malformed response: {e}",
                Q(name)
            ),
        )
    })?;
    for key in response.verification_results.keys() {
        if !capabilities.contains(key) {
            return Err((
                FailureKind::Integrity,
                format!(
                    "verification plugin {} returned a result for {} that was not asked for",
                    Q(name),
                    Q(key)
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for capability in capabilities {
        let Some(result) = response.verification_results.get(capability) else {
            return Err((
                FailureKind::Integrity,
                format!(
                    "verification plugin {} failed to verify {}",
                    Q(name),
                    Q(capability)
                ),
            ));
        };
        let result = if result.success {
            Ok(())
        } else if capability == TRUSTED_IDENTITY {
            Err((
                FailureKind::Authenticity,
                format!(
                    "trusted identify verification by plugin {} failed with reason {}",
                    Q(name),
                    Q(&result.reason)
                ),
            ))
        } else {
            Err((
                FailureKind::Revocation,
                format!(
                    "revocation check by verification plugin {} failed with reason {}",
                    Q(name),
                    Q(&result.reason)
                ),
            ))
        };
        out.push(Verdict {
            capability: capability.clone(),
            result,
        });
    }
    let processed = response.processed_attributes.unwrap_or_default();
    if let Some(left) = unprocessed.iter().find(|a| !processed.contains(a)) {
        return Err((
            FailureKind::Integrity,
            format!(
                "verification plugin {} did not process the critical attribute {}",
                Q(name),
                Q(left)
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::semver;

    #[test]
    fn versions_order_as_semver() {
        assert!(semver("1.0.11") > semver("1.0.2"));
        assert!(semver("1.0.0-rc.1") < semver("1.0.0"));
        assert!(semver("1.0.0-alpha") < semver("1.0.0-alpha.1"));
        assert!(semver("1.0.0+build") == semver("1.0.0"));
        assert!(semver("v1.0.0").is_none());
        assert!(semver("1.0").is_none());
        assert!(semver("01.0.0").is_none());
    }
}
