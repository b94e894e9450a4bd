//! Every user-visible rendering of verifier results: notation's wording for `verify`,
//! notation's tree and JSON for `inspect`. Renderers return text; commands print it.

use std::collections::BTreeMap;

use notary_verifier::{
    Action, CertificateSummary, Decision, EnvelopeInfo, Outcome, TimestampInfo, ValidationStatus,
};
use serde_json::{Map, Value, json};

/// What a command prints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether the command succeeds.
    pub success: bool,
}

const ALL_FAILED: &str = "signature verification failed for all the signatures associated with ";

/// The trust store hint notation adds when a store is missing.
pub const CERT_ADD_HINT: &str =
    "Use command 'hsm-notary cert add' to create and add trusted certificates to the trust store";

/// notation's `verify` output. Failure reasons of every signature tried are printed too
/// (notation shows them only with `-d`), in notation's log wording.
pub fn verify(outcome: &Outcome, reference: &str) -> Rendered {
    let mut out = Rendered::default();
    match outcome.decision {
        Decision::Skipped => {
            out.stdout = format!(
                "Trust policy is configured to skip signature verification for {reference}\n"
            );
            out.success = true;
        }
        Decision::Verified => {
            let verified = outcome.verified_signature();
            let mut warned = false;
            if let Some(signature) = verified {
                for result in signature.logged_failures() {
                    out.stderr.push_str(&format!(
                        "Warning: {} was set to \"log\" and failed with error: {}\n",
                        result.check.policy_name(),
                        result.message.as_deref().unwrap_or_default()
                    ));
                    warned = true;
                }
                // Passed, with something to say (a certificate no revocation method
                // covers): notation logs these; here they are always on stderr.
                for warning in signature.results.iter().flat_map(|r| &r.warnings) {
                    out.stderr
                        .push_str(&format!("Warning: {}\n", escape_controls(warning, false)));
                    warned = true;
                }
            }
            if warned {
                out.stdout.push('\n');
            }
            out.stdout.push_str(&format!(
                "Successfully verified signature for {reference}\n"
            ));
            if let Some(envelope) = verified.and_then(|s| s.envelope.as_ref())
                && !envelope.payload.annotations.is_empty()
            {
                out.stdout
                    .push_str("\nThe artifact was signed with the following user metadata.\n\n");
                out.stdout
                    .push_str(&metadata_table(&envelope.payload.annotations));
            }
            out.success = true;
        }
        Decision::Failed => {
            for signature in &outcome.signatures {
                let name = signature
                    .manifest_digest
                    .clone()
                    .unwrap_or_else(|| format!("#{}", signature.index + 1));
                for result in &signature.results {
                    if result.status != ValidationStatus::Failed {
                        continue;
                    }
                    let reason = result.message.as_deref().unwrap_or_default();
                    let line = if result.action == Action::Log {
                        format!(
                            "{} validation failed with validation action set to \"logged\". Failure reason: {reason}",
                            result.check.policy_name()
                        )
                    } else {
                        format!(
                            "{} validation failed. Failure reason: {reason}",
                            result.check.policy_name()
                        )
                    };
                    out.stderr.push_str(&format!("signature {name}: {line}\n"));
                }
                if let Some(failure) = &signature.failure {
                    let recorded = signature
                        .results
                        .iter()
                        .any(|r| r.message.as_deref() == Some(failure.message.as_str()));
                    if !recorded {
                        out.stderr
                            .push_str(&format!("signature {name}: {}\n", failure.message));
                    }
                }
            }
            let failure = outcome.failure.as_ref();
            let message = failure.map(|f| f.message.clone()).unwrap_or_default();
            let text = match failure.map(|f| f.kind) {
                Some(notary_verifier::FailureKind::TrustPolicy) => message,
                Some(notary_verifier::FailureKind::TrustStore) => {
                    if message.contains("does not exist")
                        || message.contains("no x509 certificates were found")
                    {
                        format!("{message}. {CERT_ADD_HINT}")
                    } else {
                        message
                    }
                }
                Some(notary_verifier::FailureKind::NoApplicablePolicy)
                | Some(notary_verifier::FailureKind::SignatureRetrieval)
                | Some(notary_verifier::FailureKind::InvalidInput) => {
                    format!("signature verification failed: {message}")
                }
                _ => match message.strip_prefix(ALL_FAILED) {
                    // Name the artifact as the user typed it, not the policy scope.
                    Some(rest) => {
                        let tail = rest
                            .split_once(' ')
                            .map(|(_, t)| format!(" {t}"))
                            .unwrap_or_default();
                        format!("{ALL_FAILED}{reference}{tail}")
                    }
                    None => message,
                },
            };
            out.stderr.push_str(&format!("Error: {text}\n"));
            out.success = false;
        }
    }
    out
}

/// notation's user metadata table (tabwriter, three spaces of padding).
/// `text` with control characters written as escapes (`\u{1b}`), so attacker-chosen
/// strings (signed attributes, subjects, registry messages) cannot move the cursor, recolour
/// or rewrite the terminal. Newlines and tabs are kept when `keep_lines`.
pub fn escape_controls(text: &str, keep_lines: bool) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && !(keep_lines && (c == '\n' || c == '\t')))
    {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !(keep_lines && (c == '\n' || c == '\t')) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn metadata_table(annotations: &BTreeMap<String, String>) -> String {
    let annotations: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (escape_controls(k, false), escape_controls(v, false)))
        .collect();
    let key_width = annotations
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(3);
    let value_width = annotations
        .values()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!(
        "{:<kw$}   {:<vw$}   \n",
        "KEY",
        "VALUE",
        kw = key_width,
        vw = value_width
    );
    for (k, v) in &annotations {
        out.push_str(&format!("{k:<key_width$}   {v:<value_width$}   \n"));
    }
    out
}

/// A node of notation's tree output.
#[derive(Clone, Debug)]
pub struct Tree {
    text: String,
    children: Vec<Tree>,
}

impl Tree {
    /// A node. Its text comes from signatures and certificates: control characters
    /// (a newline included, which would forge tree lines) are escaped.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: escape_controls(&text.into(), false),
            children: Vec::new(),
        }
    }

    /// Add a child and return it for chaining.
    pub fn child(&mut self, node: Tree) -> &mut Tree {
        self.children.push(node);
        self.children
            .last_mut()
            .unwrap_or_else(|| unreachable!("just pushed"))
    }

    /// Add a leaf `key: value`.
    pub fn pair(&mut self, key: &str, value: impl AsRef<str>) {
        self.children
            .push(Tree::new(format!("{key}: {}", value.as_ref())));
    }

    /// Render with `├── `, `└── `, `│   `, `    `.
    pub fn render(&self) -> String {
        let mut out = format!("{}\n", self.text);
        render_children(&self.children, "", &mut out);
        out
    }
}

fn render_children(children: &[Tree], prefix: &str, out: &mut String) {
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        out.push_str(prefix);
        out.push_str(if last { "└── " } else { "├── " });
        out.push_str(&child.text);
        out.push('\n');
        let next = format!("{prefix}{}", if last { "    " } else { "│   " });
        render_children(&child.children, &next, out);
    }
}

fn certificate_node(cert: &CertificateSummary) -> Tree {
    let mut node = Tree::new(format!("SHA256 fingerprint: {}", cert.sha256));
    node.pair("issued to", &cert.subject);
    node.pair("issued by", &cert.issuer);
    node.pair("expiry", cert.not_after.ansic());
    node
}

/// The tree of one signature (`inspect`, `blob inspect`), under a root line.
pub fn inspect_tree(root: &str, info: &EnvelopeInfo) -> Tree {
    let mut tree = Tree::new(root);
    tree.pair("signature algorithm", &info.signature_algorithm);
    tree.pair("signature envelope type", &info.media_type);
    let signed = tree.child(Tree::new("signed attributes"));
    signed.pair("content type", &info.content_type);
    signed.pair("signing scheme", &info.signing_scheme);
    if let Some(t) = info.signing_time {
        signed.pair("signing time", t.ansic());
    }
    if let Some(t) = info.authentic_signing_time {
        signed.pair("authentic signing time", t.ansic());
    }
    if let Some(t) = info.expiry {
        signed.pair("expiry", t.ansic());
    }
    for (key, value, _) in &info.extended_attributes {
        match crate::approval::Record::parse(value) {
            // The approval record (hsm-notary's signing service): who approved, not base64.
            Ok(record) if key == crate::approval::ATTRIBUTE => {
                let approvals = signed.child(Tree::new(key.clone()));
                for approval in &record.approvals {
                    approvals.pair(
                        "approved by",
                        format!(
                            "{} (certificate {})",
                            approval.approver, approval.certificate
                        ),
                    );
                }
            }
            _ => signed.pair(key, value),
        }
    }
    let user = tree.child(Tree::new("user defined attributes"));
    if info.payload.annotations.is_empty() {
        user.child(Tree::new("(empty)"));
    } else {
        for (k, v) in &info.payload.annotations {
            user.pair(k, v);
        }
    }
    let unsigned = tree.child(Tree::new("unsigned attributes"));
    if let Some(agent) = &info.signing_agent {
        unsigned.pair("signing agent", agent);
    }
    if let Some(timestamp) = &info.timestamp {
        let node = unsigned.child(Tree::new("timestamp signature"));
        match timestamp {
            TimestampInfo::Range(range) => {
                node.pair(
                    "timestamp",
                    format!("[{}, {}]", range.lower.ansic(), range.upper.ansic()),
                );
                let certs = node.child(Tree::new("certificates"));
                for cert in &range.certificates {
                    certs.child(certificate_node(cert));
                }
            }
            TimestampInfo::Error(e) => node.pair("error", e),
        }
    }
    let certs = tree.child(Tree::new("certificates"));
    for cert in &info.certificates {
        certs.child(certificate_node(cert));
    }
    let artifact = tree.child(Tree::new("signed artifact"));
    artifact.pair("media type", &info.payload.media_type);
    artifact.pair("digest", &info.payload.digest);
    artifact.pair("size", info.payload.size.to_string());
    tree
}

fn certificate_json(cert: &CertificateSummary) -> Value {
    json!({
        "SHA256Fingerprint": cert.sha256,
        "issuedTo": cert.subject,
        "issuedBy": cert.issuer,
        "expiry": cert.not_after.rfc3339(),
    })
}

fn sorted(map: BTreeMap<String, Value>) -> Value {
    Value::Object(map.into_iter().collect::<Map<String, Value>>())
}

/// notation's JSON for one signature; `digest` is the signature manifest digest (OCI) or
/// `None` (blob).
pub fn inspect_json(info: &EnvelopeInfo, digest: Option<&str>) -> Value {
    let mut signed: BTreeMap<String, Value> = BTreeMap::new();
    signed.insert("contentType".into(), json!(info.content_type));
    signed.insert("signingScheme".into(), json!(info.signing_scheme));
    if let Some(t) = info.signing_time {
        signed.insert("signingTime".into(), json!(t.rfc3339()));
    }
    if let Some(t) = info.authentic_signing_time {
        signed.insert("authenticSigningTime".into(), json!(t.rfc3339()));
    }
    if let Some(t) = info.expiry {
        signed.insert("expiry".into(), json!(t.rfc3339()));
    }
    for (key, value, _) in &info.extended_attributes {
        signed.insert(key.clone(), json!(value));
    }
    let user = if info.payload.annotations.is_empty() {
        Value::Null
    } else {
        sorted(
            info.payload
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect(),
        )
    };
    let mut unsigned: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(agent) = &info.signing_agent {
        unsigned.insert("signingAgent".into(), json!(agent));
    }
    if let Some(timestamp) = &info.timestamp {
        let value = match timestamp {
            TimestampInfo::Range(range) => {
                let mut m = Map::new();
                m.insert(
                    "timestamp".into(),
                    json!(format!(
                        "[{}, {}]",
                        range.lower.rfc3339_nano(),
                        range.upper.rfc3339_nano()
                    )),
                );
                m.insert(
                    "certificates".into(),
                    Value::Array(range.certificates.iter().map(certificate_json).collect()),
                );
                Value::Object(m)
            }
            TimestampInfo::Error(e) => json!({ "error": e }),
        };
        unsigned.insert("timestampSignature".into(), value);
    }
    let mut object = Map::new();
    if let Some(digest) = digest {
        object.insert("digest".into(), json!(digest));
    }
    object.insert("signatureAlgorithm".into(), json!(info.signature_algorithm));
    object.insert("signatureEnvelopeType".into(), json!(info.media_type));
    object.insert("signedAttributes".into(), sorted(signed));
    object.insert("userDefinedAttributes".into(), user);
    object.insert("unsignedAttributes".into(), sorted(unsigned));
    object.insert(
        "certificates".into(),
        Value::Array(info.certificates.iter().map(certificate_json).collect()),
    );
    let mut artifact = Map::new();
    artifact.insert("mediaType".into(), json!(info.payload.media_type));
    artifact.insert("digest".into(), json!(info.payload.digest));
    artifact.insert("size".into(), json!(info.payload.size));
    object.insert("signedArtifact".into(), Value::Object(artifact));
    Value::Object(object)
}

/// Pretty JSON with two-space indent and a trailing newline, as notation writes it.
pub fn json_text(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Why an outcome failed, in one line: the overall failure, then each signature's.
pub fn failure_reasons(outcome: &Outcome) -> String {
    outcome
        .failure
        .iter()
        .chain(outcome.signatures.iter().filter_map(|s| s.failure.as_ref()))
        .map(|f| f.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rows as Go's `tabwriter` (padding 3) lays out tab-terminated cells: each cell padded
/// to its column's width plus three spaces, as notation's tables are.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (cell, width) in row.iter().zip(&widths) {
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 3));
        }
        out.push('\n');
    }
    out
}
