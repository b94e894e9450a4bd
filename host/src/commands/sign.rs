//! `hsm-notary sign`: sign an artifact by digest and store the signature manifest beside
//! it — in a registry (referrers API, or the referrers tag schema) or an OCI layout.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use notary_verifier::sign::Format;
use notary_verifier::{Descriptor, Instant};

use super::{parse_metadata, verification_time};
use crate::cli::{SignArgs, SignatureFormat, SigningArgs};
use crate::config::ConfigDir;
use crate::config::keys::KeyList;
use crate::layout::{self, Layout, LayoutRef};
use crate::oci;
use crate::registry::{ArtifactRef, Registry};
use crate::sign::timestamp::Timestamper;
use crate::sign::{SignedEnvelope, parse_duration, sign_descriptor};

/// The signature manifest for `envelope` over `subject` (`signature-specification.md`
/// §OCI Signatures, current form with `artifactType`).
pub fn signature_manifest(subject: &oci::Descriptor, signed: &SignedEnvelope) -> Manifest {
    // An envelope plugin's annotations first, so that these two are always hsm-notary's.
    let mut annotations = signed.annotations.clone();
    annotations.insert(
        oci::ANNOTATION_THUMBPRINTS.to_owned(),
        serde_json::to_string(&signed.thumbprints).unwrap_or_default(),
    );
    annotations.insert(
        oci::ANNOTATION_CREATED.to_owned(),
        signed.signing_time.utc().rfc3339(),
    );
    oci::Manifest {
        schema_version: 2,
        media_type: oci::MEDIA_TYPE_IMAGE_MANIFEST.to_owned(),
        artifact_type: Some(oci::ARTIFACT_TYPE_NOTARY.to_owned()),
        config: oci::Descriptor {
            media_type: oci::MEDIA_TYPE_EMPTY.to_owned(),
            digest: oci::EMPTY_JSON_DIGEST.to_owned(),
            size: 2,
            data: Some("e30=".to_owned()),
            ..oci::Descriptor::default()
        },
        layers: vec![oci::Descriptor {
            media_type: signed.media_type.to_owned(),
            digest: oci::sha256_digest(&signed.envelope),
            size: signed.envelope.len() as u64,
            ..oci::Descriptor::default()
        }],
        subject: Some(oci::Descriptor {
            media_type: subject.media_type.clone(),
            digest: subject.digest.clone(),
            size: subject.size,
            ..oci::Descriptor::default()
        }),
        annotations,
    }
}

use crate::oci::Manifest;

/// `subject` with the user metadata as its annotations (the payload's `targetArtifact`);
/// notation's reserved prefix is refused.
pub fn target_with_metadata(
    subject: &oci::Descriptor,
    metadata: &[(String, String)],
) -> Result<Descriptor> {
    let mut annotations = BTreeMap::new();
    for (k, v) in metadata {
        if k.starts_with("io.cncf.notary") {
            bail!(
                "error adding user metadata: metadata key {k} has reserved prefix io.cncf.notary"
            );
        }
        annotations.insert(k.clone(), v.clone());
    }
    Ok(Descriptor {
        media_type: subject.media_type.clone(),
        digest: subject.digest.clone(),
        size: subject.size,
        artifact_type: None,
        annotations,
    })
}

/// The TSA of `--timestamp-url` and `--timestamp-root-cert` (both or neither), with the
/// engine that checks its root now and each token before it is used.
pub fn timestamper(
    url: Option<&str>,
    root: Option<&Path>,
    revocation: &crate::cli::RevocationArgs,
) -> Result<Option<(Timestamper, Box<dyn crate::engine::Verifier + Send + Sync>)>> {
    Ok(match (url, root) {
        (None, None) => None,
        (Some(url), Some(root)) => {
            let engine = crate::engine::engine(crate::engine::EngineKind::Wasm)?;
            let revocation = crate::revocation::Fetcher::new(revocation.options()?);
            Some((Timestamper::new(url, root, &*engine, revocation)?, engine))
        }
        (Some(_), None) => bail!(
            "if any flags in the group [timestamp-url timestamp-root-cert] are set they must all be set; missing [timestamp-root-cert]"
        ),
        (None, Some(_)) => bail!(
            "if any flags in the group [timestamp-url timestamp-root-cert] are set they must all be set; missing [timestamp-url]"
        ),
    })
}

/// Everything [`SigningArgs`] names, opened: the key, the format, the expiry, the user
/// metadata and the TSA (`sign` and `blob sign` both start here).
pub struct Signer {
    /// The key and its chain.
    pub key: crate::sign::SigningKey,
    /// The envelope format.
    pub format: Format,
    /// `--expiry`.
    pub expiry: std::time::Duration,
    /// `-m` pairs.
    pub metadata: Vec<(String, String)>,
    /// The TSA and the engine that checks its tokens.
    pub timestamper: Option<(Timestamper, Box<dyn crate::engine::Verifier + Send + Sync>)>,
}

impl Signer {
    /// Check the flags, then open the TSA and the key (flags first: a typo costs no PIN).
    pub fn open(args: &SigningArgs, config: &ConfigDir, for_blob: bool) -> Result<Self> {
        let metadata = parse_metadata(&args.user_metadata, "user-metadata")?;
        let flag_config = parse_metadata(&args.plugin_config, "plugin-config")?;
        let plugin_timeout = crate::sign::parse_go_duration(&args.plugin_timeout)?;
        let expiry = parse_duration(&args.expiry)?;
        let format = match config.signature_format(args.signature_format)? {
            SignatureFormat::Jws => Format::Jws,
            SignatureFormat::Cose => Format::Cose,
        };
        let timestamper = timestamper(
            args.timestamp_url.as_deref(),
            args.timestamp_root_cert.as_deref(),
            &args.revocation,
        )?;
        let plugin_key = |name: &str, id: &str, mut plugin_config: BTreeMap<String, String>| {
            // --plugin-config wins over the key's stored configuration, as in notation.
            plugin_config.extend(flag_config.iter().cloned());
            let key = crate::plugin::signer::PluginKey::open(
                &crate::plugin::plugin_root(config.root()),
                name,
                id,
                plugin_config,
                plugin_timeout,
                for_blob,
            )?;
            Ok::<_, anyhow::Error>(crate::sign::SigningKey {
                source: crate::sign::KeySource::Plugin(Box::new(key)),
                chain: Vec::new(),
            })
        };
        let key = match (&args.plugin, &args.id) {
            (Some(plugin), Some(id)) => plugin_key(plugin, id, BTreeMap::new())?,
            _ => {
                let keys = KeyList::load(config.root())?;
                let entry = keys.get(args.key.as_deref())?;
                match (&entry.plugin_name, &entry.id, &entry.key_path) {
                    (Some(plugin), Some(id), None) => {
                        plugin_key(plugin, id, entry.plugin_config.clone())?
                    }
                    (Some(_), None, None) => bail!("missing key id for key {:?}", entry.name),
                    _ => {
                        if !flag_config.is_empty() {
                            bail!(
                                "--plugin-config is only for plugin keys; key {:?} is not one",
                                entry.name
                            );
                        }
                        entry.open(args.pkcs11_module.as_deref())?
                    }
                }
            }
        };
        Ok(Self {
            key,
            format,
            expiry,
            metadata,
            timestamper,
        })
    }

    /// The TSA for [`sign_descriptor`].
    pub fn tsa(&self) -> Option<(&Timestamper, &dyn crate::engine::Verifier)> {
        self.timestamper
            .as_ref()
            .map(|(tsa, engine)| (tsa, &**engine as &dyn crate::engine::Verifier))
    }
}

/// Run `sign`.
pub fn run(args: &SignArgs, config: &ConfigDir) -> Result<ExitCode> {
    if args.via.service.url.is_some() {
        if args.recursive {
            bail!("--recursive is not supported with --signer yet");
        }
        return super::approval::sign_with_service(args, config);
    }
    if args.oci_layout {
        let (path, _) = layout::parse_reference(&args.reference)?;
        if !path.is_dir() {
            bail!(
                "{}: signing writes into the OCI layout, so it must be a directory (archives and standard input are read only)",
                path.display()
            );
        }
    }
    let signer = Signer::open(&args.signing, config, false)?;
    let now: Instant = verification_time(None)?;
    let tag_warning = |tag: &str| {
        eprintln!(
            "Warning: Always sign the artifact using digest(@sha256:...) rather than a tag(:{tag}) because tags are mutable and a tag reference can point to a different artifact than the one signed."
        );
    };
    // The envelope over the subject (with user metadata), and its signature manifest.
    let sign = |subject: &oci::Descriptor| -> Result<_> {
        let signed = sign_descriptor(
            &signer.key,
            signer.format,
            &target_with_metadata(subject, &signer.metadata)?,
            Some(signer.expiry),
            now,
            signer.tsa(),
        )?;
        let manifest = signature_manifest(subject, &signed);
        Ok((signed, manifest))
    };
    if args.oci_layout {
        let (path, reference) = layout::parse_reference(&args.reference)?;
        let layout = Layout::open(&path)?;
        let subject = layout.resolve(&reference)?;
        if let LayoutRef::Tag(tag) = &reference {
            tag_warning(tag);
        }
        let subjects = with_platforms(args.recursive, subject, &path.display().to_string(), |i| {
            layout.index_manifests(i)
        })?;
        // All signed, then all written into index.json at once: a failure leaves the
        // layout as it was.
        let signed = subjects.iter().map(&sign).collect::<Result<Vec<_>>>()?;
        let entries: Vec<(&Manifest, &[u8])> = signed
            .iter()
            .map(|(signed, manifest)| (manifest, signed.envelope.as_slice()))
            .collect();
        let digests = write_all_to_layout(&layout, &entries)?;
        for (subject, digest) in subjects.iter().zip(digests) {
            println!("Successfully signed {}@{}", path.display(), subject.digest);
            println!("Pushed the signature to {}@{digest}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let artifact = ArtifactRef::parse(&args.reference)?;
    let registry = Registry::connect(&artifact, &args.registry.options_in(config)?)?;
    let wanted = artifact
        .digest
        .clone()
        .or_else(|| artifact.tag.clone())
        .unwrap_or_default();
    let (_, subject) = registry.manifest(&wanted, None)?;
    if let Some(tag) = &artifact.tag {
        tag_warning(tag);
    }
    let subjects = with_platforms(args.recursive, subject, &artifact.name(), |i| {
        registry.index_manifests(i)
    })?;
    // Everything is signed before anything is pushed: a key or TSA that fails on the
    // third platform leaves the registry as it was.
    let signed = subjects.iter().map(&sign).collect::<Result<Vec<_>>>()?;
    let mut published = Vec::new();
    for (subject, (signed, manifest)) in subjects.iter().zip(&signed) {
        let (result, pushed) =
            registry.push_signature(manifest, &signed.envelope, args.force_referrers_tag);
        match result {
            Ok(digest) => {
                println!("Successfully signed {}@{}", artifact.name(), subject.digest);
                println!("Pushed the signature to {}@{digest}", artifact.name());
                published.push(format!("the signature {digest} of {}", subject.digest));
            }
            Err(e) => {
                let mut done: Vec<String> = published.clone();
                done.extend(pushed);
                let done = if done.is_empty() {
                    "nothing was pushed".to_owned()
                } else {
                    format!("pushed before the failure: {}", done.join(", "))
                };
                return Err(anyhow!(
                    "failed to push signature to registry with error: {e:#}\n({done}; the signature is not discoverable until its manifest and index are pushed)"
                ));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `subject`, preceded with `--recursive` by the platform manifests of the image index it
/// is (not attestations, `unknown/unknown`, nor nested indexes): the index last, so that
/// its signature appears once its platforms' have.
fn with_platforms(
    recursive: bool,
    subject: oci::Descriptor,
    name: &str,
    children: impl Fn(&oci::Descriptor) -> Result<Vec<oci::Descriptor>>,
) -> Result<Vec<oci::Descriptor>> {
    let mut subjects = Vec::new();
    if recursive {
        if subject.media_type == oci::MEDIA_TYPE_IMAGE_INDEX {
            subjects.extend(children(&subject)?.into_iter().filter(|child| {
                child.media_type == oci::MEDIA_TYPE_IMAGE_MANIFEST
                    && child.platform.as_ref().is_some_and(|p| p.os != "unknown")
            }));
        } else {
            eprintln!(
                "Warning: --recursive: {name}@{} is not an image index; only it is signed",
                subject.digest
            );
        }
    }
    subjects.push(subject);
    Ok(subjects)
}

/// Add the signature to an OCI layout: blobs first, then `index.json` replaced atomically;
/// on failure the blobs this call created are removed again.
pub fn write_to_layout(layout: &Layout, manifest: &Manifest, envelope: &[u8]) -> Result<String> {
    let mut digests = write_all_to_layout(layout, &[(manifest, envelope)])?;
    digests.pop().context("no signature was written")
}

/// [`write_to_layout`] for several signatures, all in one `index.json` replacement.
pub fn write_all_to_layout(
    layout: &Layout,
    signatures: &[(&Manifest, &[u8])],
) -> Result<Vec<String>> {
    let mut created = Vec::new();
    let mut digests = Vec::new();
    let result = (|| -> Result<()> {
        let mut index = layout.index().clone();
        for (manifest, envelope) in signatures {
            let manifest_bytes = serde_json::to_vec(manifest)?;
            let manifest_digest = oci::sha256_digest(&manifest_bytes);
            for bytes in [envelope, oci::EMPTY_JSON, manifest_bytes.as_slice()] {
                let digest = oci::sha256_digest(bytes);
                let path = layout
                    .root()
                    .join("blobs/sha256")
                    .join(digest.trim_start_matches("sha256:"));
                if !path.exists() {
                    write_new(&path, bytes)?;
                    created.push(path);
                }
            }
            index.manifests.push(oci::Descriptor {
                media_type: oci::MEDIA_TYPE_IMAGE_MANIFEST.to_owned(),
                digest: manifest_digest.clone(),
                size: manifest_bytes.len() as u64,
                artifact_type: Some(oci::ARTIFACT_TYPE_NOTARY.to_owned()),
                ..oci::Descriptor::default()
            });
            digests.push(manifest_digest);
        }
        layout.replace_index(&index)
    })();
    if let Err(e) = result {
        for path in created {
            let _ = std::fs::remove_file(path);
        }
        return Err(e.context(format!(
            "writing the signature into the OCI layout {} (nothing was left behind)",
            layout.root().display()
        )));
    }
    Ok(digests)
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
