//! `hsm-notary key generate|csr|add|list|delete|describe` and `cert generate-test`.

use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::write_private;
use crate::certgen;
use crate::config::ConfigDir;
use crate::config::keys::{KeyEntry, KeyList};
use crate::pkcs11::{self, KeyKind, Pkcs11Uri, Token};
use crate::sign::local::LocalKey;

fn token(
    uri: &str,
    module_flag: Option<&Path>,
) -> Result<(Pkcs11Uri, std::sync::Arc<Token>, std::path::PathBuf)> {
    let uri = Pkcs11Uri::parse(uri)?;
    let module = pkcs11::module_path(&uri, module_flag)?;
    let token = Token::open(&uri, &module)?;
    Ok((uri, token, module))
}

fn object(uri: &Pkcs11Uri) -> Result<String> {
    uri.object
        .clone()
        .ok_or_else(|| anyhow!("the PKCS#11 URI must name the key (object=LABEL)"))
}

/// `key generate`.
pub fn generate(uri: &str, kind: KeyKind, module: Option<&Path>) -> Result<ExitCode> {
    let (uri, token, _) = token(uri, module)?;
    let label = object(&uri)?;
    token.generate(kind, &label)?;
    println!(
        "Generated {} key {label:?} in token {:?} (non-extractable)",
        kind.spec().name(),
        token.label()
    );
    Ok(ExitCode::SUCCESS)
}

/// `key csr`.
pub fn csr(uri: &str, subject: &str, output: &Path, module: Option<&Path>) -> Result<ExitCode> {
    let (uri, token, _) = token(uri, module)?;
    let key = token.key(&object(&uri)?)?;
    let name = x509_cert::name::Name::from_str(subject)
        .map_err(|e| anyhow!("invalid subject {subject:?}: {e}"))?;
    let der = certgen::csr(&name, &key.spki, key.spec, |info| match key.spec {
        notary_verifier::signature::KeySpec::Ec(_) => key.sign(info),
        notary_verifier::signature::KeySpec::Rsa(_) => key.sign_pkcs1_sha256(info),
    })?;
    std::fs::write(output, certgen::pem("CERTIFICATE REQUEST", &der))
        .with_context(|| format!("writing {}", output.display()))?;
    println!(
        "Wrote a certificate signing request for {} to {}",
        uri.key_uri(),
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `key import-cert`: the chain stored on the token, its leaf checked to hold the key.
pub fn import_cert(uri: &str, cert: &Path, module: Option<&Path>) -> Result<ExitCode> {
    let (uri, token, _) = token(uri, module)?;
    let label = object(&uri)?;
    let key = token.key(&label)?;
    let chain = crate::sign::read_chain(cert)?;
    let leaf =
        notary_verifier::x509::Cert::from_der(&chain[0]).map_err(|e| anyhow::anyhow!("{e}"))?;
    if der::Encode::to_der(leaf.parsed().tbs_certificate().subject_public_key_info())?
        != der::Encode::to_der(&key.spki)?
    {
        bail!(
            "the leaf certificate of {} does not hold the key {label:?}",
            cert.display()
        );
    }
    token.import_certificates(&label, &chain)?;
    println!(
        "Stored {} certificate(s) beside key {label:?} on token {:?}",
        chain.len(),
        token.label()
    );
    Ok(ExitCode::SUCCESS)
}

/// `key add`.
pub fn add(config: &ConfigDir, args: &crate::cli::KeyAddArgs) -> Result<ExitCode> {
    let absolute = |p: &Path| {
        std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))
    };
    let entry = if let Some(plugin) = &args.plugin {
        // As notation: the plugin must be installed (not run), and the key needs an id.
        let id = args
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| anyhow::anyhow!("missing key id"))?;
        crate::plugin::locate(&crate::plugin::plugin_root(config.root()), plugin)?;
        KeyEntry {
            name: args.name.clone(),
            id: Some(id),
            plugin_name: Some(plugin.clone()),
            plugin_config: super::parse_metadata(&args.plugin_config, "plugin-config")?
                .into_iter()
                .collect(),
            ..KeyEntry::default()
        }
    } else {
        let cert = args
            .cert
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("give the certificate chain as --cert FILE"))?;
        let entry = KeyEntry {
            name: args.name.clone(),
            key_path: args.key_file.as_deref().map(absolute).transpose()?,
            cert_path: Some(absolute(cert)?),
            pkcs11_uri: args.pkcs11.clone(),
            pkcs11_module: args.pkcs11_module.as_deref().map(absolute).transpose()?,
            ..KeyEntry::default()
        };
        if entry.key_path.is_none() && entry.pkcs11_uri.is_none() {
            bail!("give the key as --pkcs11 URI, --key-file FILE or --plugin NAME --id KEY_ID");
        }
        // Refuse a key that does not belong to its certificate, or a chain that cannot sign.
        entry.open(None)?;
        entry
    };
    let mut list = KeyList::load(config.root())?;
    list.add(entry, args.default)?;
    list.save(config.root())?;
    if args.default {
        println!("{}: marked as default", args.name);
    } else {
        println!("{}", args.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `key list`.
pub fn list(config: &ConfigDir, format: crate::cli::ListOutput) -> Result<ExitCode> {
    let list = KeyList::load(config.root())?;
    if format == crate::cli::ListOutput::Json {
        let keys: Vec<serde_json::Value> = list
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "name": k.name,
                    "default": list.default.as_deref() == Some(k.name.as_str()),
                    "keyPath": k.key_path,
                    "certPath": k.cert_path,
                    "pkcs11Uri": k.pkcs11_uri,
                })
            })
            .collect();
        print!(
            "{}",
            crate::output::json_text(&serde_json::Value::Array(keys))
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("NAME   KEY   CERTIFICATE PATH");
    for key in &list.keys {
        let marker = if list.default.as_deref() == Some(&key.name) {
            "* "
        } else {
            ""
        };
        let location = key
            .pkcs11_uri
            .clone()
            .or_else(|| key.key_path.as_ref().map(|p| p.display().to_string()))
            .unwrap_or_default();
        let cert = key
            .cert_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        println!("{marker}{}   {location}   {cert}", key.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `key delete`.
pub fn delete(config: &ConfigDir, names: &[String]) -> Result<ExitCode> {
    let mut list = KeyList::load(config.root())?;
    for name in names {
        if !list.keys.iter().any(|k| &k.name == name) {
            bail!("signing key {name} not found");
        }
    }
    list.keys.retain(|k| !names.contains(&k.name));
    if list.default.as_ref().is_some_and(|d| names.contains(d)) {
        list.default = None;
    }
    list.save(config.root())?;
    for name in names {
        println!("Removed {name} from the signing key list. The source key still exists.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `key describe`.
pub fn describe(config: &ConfigDir, name: &str, module: Option<&Path>) -> Result<ExitCode> {
    let list = KeyList::load(config.root())?;
    let entry = list.get(Some(name))?;
    let key = entry.open(module)?;
    println!("Name: {name}");
    match (&entry.pkcs11_uri, &entry.key_path) {
        (Some(uri), _) => println!("Location: PKCS#11 {uri}"),
        (None, Some(path)) => println!("Location: file {}", path.display()),
        _ => {}
    }
    for (i, der) in key.chain.iter().enumerate() {
        let cert = notary_verifier::x509::Cert::from_der(der).map_err(|e| anyhow!("{e}"))?;
        let kind = cert
            .public_key
            .as_ref()
            .map(|k| k.spec().name())
            .unwrap_or_else(Clone::clone);
        println!(
            "Certificate {i}: {}\n  issuer: {}\n  key: {kind}\n  valid: {} .. {}\n  SHA256 fingerprint: {}",
            cert.subject,
            cert.issuer,
            cert.not_before.rfc3339(),
            cert.not_after.rfc3339(),
            cert.sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The key `cert generate-test` makes: `--bits` RSA, or `--key-type`, else notation's
/// RSA 2048 for a local key and P-256 in a token.
pub fn test_key_kind(kind: Option<KeyKind>, bits: Option<u32>, pkcs11: bool) -> Result<KeyKind> {
    Ok(match (kind, bits) {
        (Some(kind), _) => kind,
        (None, Some(2048)) => KeyKind::Rsa2048,
        (None, Some(3072)) => KeyKind::Rsa3072,
        (None, Some(4096)) => KeyKind::Rsa4096,
        (None, Some(bits)) => {
            bail!(
                "RSA key size {bits} is not supported: the Notary Project allows 2048, 3072 and 4096 bits"
            )
        }
        (None, None) if pkcs11 => KeyKind::EcP256,
        (None, None) => KeyKind::Rsa2048,
    })
}

/// notation's line for the key it is about to generate.
fn generating(kind: KeyKind) -> String {
    let spec = kind.spec();
    match spec.name().split_once('-') {
        Some(("RSA", bits)) => format!("generating RSA Key with {bits} bits"),
        _ => format!("generating {} key", spec.name()),
    }
}

/// `cert generate-test`: notation's lines, in its order.
pub fn generate_test(
    config: &ConfigDir,
    name: &str,
    kind: KeyKind,
    pkcs11_uri: Option<&str>,
    module: Option<&Path>,
    default: bool,
    days: u32,
) -> Result<ExitCode> {
    if !notary_verifier::trustpolicy::is_valid_store_name(name) {
        bail!("name needs to follow [a-zA-Z0-9_.-]+ format");
    }
    let validity = Duration::from_secs(u64::from(days) * 86_400);
    let (root_key, root_der) = certgen::root(name, validity)?;
    let keys_dir = config.root().join("localkeys");
    let (entry, leaf_public, key_pem) = match pkcs11_uri {
        Some(uri_text) => {
            let (uri, token, module_path) = token(uri_text, module)?;
            let label = object(&uri)?;
            if token.key(&label).is_err() {
                token.generate(kind, &label)?;
                println!(
                    "generated {} key {label:?} in token {:?}",
                    kind.spec().name(),
                    token.label()
                );
            }
            let key = token.key(&label)?;
            let entry = KeyEntry {
                name: name.to_owned(),
                pkcs11_uri: Some(uri_text.to_owned()),
                pkcs11_module: module.map(|_| module_path),
                ..KeyEntry::default()
            };
            (entry, der::Encode::to_der(&key.spki)?, None)
        }
        None => {
            println!("{}", generating(kind));
            let key = LocalKey::generate(kind.spec())?;
            let key_path = keys_dir.join(format!("{name}.key"));
            let entry = KeyEntry {
                name: name.to_owned(),
                key_path: Some(key_path),
                ..KeyEntry::default()
            };
            (entry, key.public_key_der()?, Some(key.to_pem()?))
        }
    };
    let leaf_der = certgen::leaf(name, &leaf_public, &root_key, &root_der, validity)?;
    let expiry = <x509_cert::Certificate as der::Decode>::from_der(&leaf_der)?
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration();
    let expiry = notary_verifier::Instant::from_unix(
        i64::try_from(expiry.as_secs()).context("certificate expiry")?,
        0,
    );
    println!("generated certificate expiring on {}", expiry.rfc3339());
    if let (Some(pem), Some(key_path)) = (key_pem, &entry.key_path) {
        if key_path.symlink_metadata().is_ok() {
            bail!(
                "failed to write key file: open {}: file exists",
                key_path.display()
            );
        }
        write_private(key_path, pem.as_bytes())?;
        println!("wrote key: {}", key_path.display());
    }
    let chain_path = keys_dir.join(format!("{name}.crt"));
    let chain_pem = format!(
        "{}{}",
        certgen::pem("CERTIFICATE", &leaf_der),
        certgen::pem("CERTIFICATE", &root_der)
    );
    write_private(&chain_path, chain_pem.as_bytes())?;
    println!("wrote certificate: {}", chain_path.display());
    let store = config
        .trust_store_dir()
        .join("x509/ca")
        .join(name)
        .join(format!("{name}.crt"));
    write_private(&store, certgen::pem("CERTIFICATE", &root_der).as_bytes())?;
    println!("Successfully added {name}.crt to named store {name} of type ca");
    let mut entry = entry;
    entry.cert_path = Some(chain_path);
    entry.open(module)?;
    let mut list = KeyList::load(config.root())?;
    list.add(entry, default)?;
    list.save(config.root())?;
    println!("{name}: added to the key list");
    if default {
        println!("{name}: marked as default signing key");
    }
    Ok(ExitCode::SUCCESS)
}

/// `cert cleanup-test NAME`: undo `generate-test NAME`, step by step as notation does;
/// a step whose object is already gone says so and the cleanup goes on.
pub fn cleanup_test(config: &ConfigDir, name: &str, yes: bool) -> Result<ExitCode> {
    if name.is_empty() {
        bail!("missing certificate common name");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        bail!("certificate common name must follow [a-zA-Z0-9_.-]+ format");
    }
    let mut list = KeyList::load(config.root())?;
    let entry = list.keys.iter().find(|k| k.name == name).cloned();
    let keys_dir = config.root().join("localkeys");
    let key_path = entry
        .as_ref()
        .and_then(|e| e.key_path.clone())
        .unwrap_or_else(|| keys_dir.join(format!("{name}.key")));
    let cert_path = entry
        .as_ref()
        .and_then(|e| e.cert_path.clone())
        .unwrap_or_else(|| keys_dir.join(format!("{name}.crt")));
    let store_dir = config.trust_store_dir().join("x509/ca").join(name);
    let store_cert = store_dir.join(format!("{name}.crt"));
    if !yes {
        let prompt = format!(
            "The test key {name} and its corresponding certificate will be cleaned up with the following changes:\n- Delete certificate {name}.crt from trust store {name} of type ca\n- Remove key {name} from the key list\n- Delete key file: {}\n- Delete certificate file: {}\n\nAre you sure you want to continue?",
            key_path.display(),
            cert_path.display()
        );
        if !super::confirm(&prompt) {
            println!("Operation cancelled.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    match std::fs::remove_file(&store_cert) {
        Ok(()) => {
            println!("Successfully deleted {name}.crt from trust store {name} of type ca");
            // The store generate-test made holds only this certificate.
            if std::fs::read_dir(&store_dir).is_ok_and(|mut d| d.next().is_none()) {
                let _ = std::fs::remove_dir(&store_dir);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("Certificate {name}.crt does not exist in trust store {name} of type ca");
        }
        Err(e) => {
            bail!("failed to delete certificate {name}.crt from trust store {name} of type ca: {e}")
        }
    }
    if entry.is_some() {
        list.keys.retain(|k| k.name != name);
        if list.default.as_deref() == Some(name) {
            list.default = None;
        }
        list.save(config.root())
            .map_err(|e| anyhow::anyhow!("failed to remove key {name} from the key list: {e:#}"))?;
        println!("Successfully removed key {name} from the key list");
    } else {
        println!("Key {name} does not exist in the key list");
    }
    for (what, path) in [("key file", &key_path), ("certificate file", &cert_path)] {
        match std::fs::remove_file(path) {
            Ok(()) => println!("Successfully deleted {what}: {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let noun = if what == "key file" {
                    "Key file"
                } else {
                    "Certificate file"
                };
                println!("{noun} {} does not exist", path.display());
            }
            Err(e) => bail!("failed to delete {what} {}: {e}", path.display()),
        }
    }
    println!("Cleanup completed successfully");
    Ok(ExitCode::SUCCESS)
}
