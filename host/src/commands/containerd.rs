//! containerd image verifier (`io.containerd.image-verifier.v1.bindir`, containerd's
//! `docs/image-verification.md`): containerd runs every executable of its `bin_dir` with
//! `-name IMAGE -digest DIGEST -stdin-media-type TYPE` (and `-operation pull|run` in newer
//! releases) and the image's OCI descriptor on stdin. Exit status 0 allows the pull; the
//! first line of stdout is the reason either way. Anything that keeps the component from
//! deciding — a registry that is down, a missing trust policy — denies (fail closed).
//! An image index is allowed only when the manifest of this node's platform (or of
//! `HSM_NOTARY_PLATFORM`, `os/arch[/variant]`) verifies too.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use notary_verifier::{Decision, Outcome};
use serde_json::Value;

use super::verification_time;
use super::verify::{inputs, verify_artifact};
use crate::config::ConfigDir;
use crate::engine::{self, EngineKind};
use crate::oci;
use crate::registry::{ArtifactRef, Options, Registry};

/// The stdin media types containerd sends.
pub const DESCRIPTOR_MEDIA_TYPE: &str = "application/vnd.oci.descriptor.v1+json";
/// containerd's richer input (`{"descriptor": …}` plus CRI annotations).
pub const INPUT_MEDIA_TYPE: &str = "application/vnd.containerd.image-verifier.input.v1+json";
/// Signatures read per image (notation's default for `--max-signatures`).
const MAX_SIGNATURES: usize = 100;
/// The largest stdin document accepted.
const MAX_INPUT: u64 = 1 << 20;

/// containerd's flags, written Go-style with one dash.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `-name`: the image name (`registry/repository[:tag]`).
    pub name: String,
    /// `-digest`: the manifest digest being pulled.
    pub digest: String,
    /// `-stdin-media-type`.
    pub stdin_media_type: String,
    /// `-operation` (`pull` or `run`), when given.
    pub operation: Option<String>,
}

/// Whether these arguments are containerd's (a first argument that is one of its flags).
pub fn is_invocation(args: &[String]) -> bool {
    args.first().is_some_and(|a| {
        let flag = a.split('=').next().unwrap_or_default();
        ["-name", "-digest", "-stdin-media-type", "-operation"].contains(&flag)
    })
}

/// Parse `-flag value` / `-flag=value` (Go's `flag` package also accepts `--flag`).
pub fn parse(args: &[String]) -> Result<Args> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let bare = arg.trim_start_matches('-');
        let (flag, inline) = match bare.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (bare, None),
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .with_context(|| format!("flag -{flag} needs a value"))?,
        };
        match flag {
            "name" => out.name = value,
            "digest" => out.digest = value,
            "stdin-media-type" => out.stdin_media_type = value,
            "operation" => out.operation = Some(value),
            other => bail!("unknown flag -{other}"),
        }
    }
    if out.name.is_empty() || out.digest.is_empty() {
        bail!("-name and -digest are required");
    }
    Ok(out)
}

/// Run as containerd's image verifier.
pub fn main(args: &[String]) -> ExitCode {
    let mut stdin = Vec::new();
    let decision = std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut stdin)
        .context("reading stdin")
        .and_then(|_| parse(args))
        .and_then(|args| decide(&args, &stdin));
    match decision {
        Ok((true, reason)) => {
            println!("{reason}");
            ExitCode::SUCCESS
        }
        Ok((false, reason)) => {
            println!("{reason}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("hsm-notary: denied: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The descriptor containerd sent, checked against `-digest`.
pub fn descriptor(args: &Args, stdin: &[u8]) -> Result<oci::Descriptor> {
    if stdin.len() as u64 > MAX_INPUT {
        bail!("stdin is over the limit of {MAX_INPUT} bytes");
    }
    let value: Value = serde_json::from_slice(stdin)
        .with_context(|| format!("stdin is not JSON ({})", args.stdin_media_type))?;
    let descriptor = match args.stdin_media_type.as_str() {
        DESCRIPTOR_MEDIA_TYPE | "" => value,
        INPUT_MEDIA_TYPE => value
            .get("descriptor")
            .cloned()
            .context("stdin has no \"descriptor\"")?,
        other => bail!("unsupported -stdin-media-type {other}"),
    };
    let descriptor: oci::Descriptor =
        serde_json::from_value(descriptor).context("stdin is not an OCI descriptor")?;
    if descriptor.digest != args.digest {
        bail!(
            "the descriptor on stdin is {} but -digest is {}",
            descriptor.digest,
            args.digest
        );
    }
    Ok(descriptor)
}

fn decide(args: &Args, stdin: &[u8]) -> Result<(bool, String)> {
    let target = descriptor(args, stdin)?;
    let named =
        ArtifactRef::parse_image(&args.name).with_context(|| format!("-name {}", args.name))?;
    let artifact = ArtifactRef::parse(&format!("{}@{}", named.name(), target.digest))?;
    let config = ConfigDir::resolve(None)?;
    let inputs = inputs(&config, None, None, notary_verifier::DocumentKind::Oci)?;
    let registry = Registry::connect(&artifact, &Options::default())?;
    let reference = format!("{}@{}", artifact.name(), target.digest);
    let engine = engine::engine(EngineKind::Wasm)?;
    // The disk CRL cache, shared by every image containerd asks about.
    let revocation = crate::revocation::Fetcher::new(Default::default())
        .unbounded()
        .with_plugins(crate::plugin::verifier::Plugins::installed(&config));
    let time = verification_time(None)?;
    let verify = |target: &oci::Descriptor, reference: &str| {
        verify_artifact(
            engine.as_ref(),
            &registry,
            &inputs,
            target,
            reference,
            Vec::new(),
            time,
            MAX_SIGNATURES,
            &revocation,
        )
    };
    let outcome = verify(&target, &reference)?;
    let allowed = reason(&outcome, &reference);
    if !allowed.0 || target.media_type != oci::MEDIA_TYPE_IMAGE_INDEX {
        return Ok(allowed);
    }
    // containerd names the index it pulls; this node runs its own platform's manifest,
    // which the index's signature does not vouch for.
    let platform = std::env::var("HSM_NOTARY_PLATFORM").unwrap_or_else(|_| oci::Platform::here());
    let Some(child) = oci::platform_manifest(registry.index_manifests(&target)?, &platform) else {
        return Ok((
            false,
            format!(
                "hsm-notary: denied {reference}: the index has no manifest for platform {platform}"
            ),
        ));
    };
    let child_reference = format!("{}@{}", artifact.name(), child.digest);
    let child_outcome = verify(&child, &child_reference)?;
    Ok(if child_outcome.decision == Decision::Failed {
        let why = crate::output::failure_reasons(&child_outcome);
        (
            false,
            format!(
                "hsm-notary: denied {reference}: its {platform} manifest {child_reference}: {why}"
            ),
        )
    } else {
        (
            true,
            format!(
                "{} and its {platform} manifest {child_reference}",
                allowed.1
            ),
        )
    })
}

fn reason(outcome: &Outcome, reference: &str) -> (bool, String) {
    match outcome.decision {
        Decision::Verified => (
            true,
            format!("hsm-notary: verified the Notary Project signature of {reference}"),
        ),
        Decision::Skipped => (
            true,
            format!("hsm-notary: the trust policy skips verification of {reference}"),
        ),
        Decision::Failed => {
            let why = crate::output::failure_reasons(outcome);
            (false, format!("hsm-notary: denied {reference}: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn containerd_flags_are_recognised_in_both_go_forms() {
        let args = strings(&[
            "-name",
            "localhost:5000/app:v1",
            "-digest=sha256:ab",
            "--stdin-media-type",
            DESCRIPTOR_MEDIA_TYPE,
        ]);
        assert!(is_invocation(&args));
        let parsed = parse(&args).expect("valid flags");
        assert_eq!(parsed.name, "localhost:5000/app:v1");
        assert_eq!(parsed.digest, "sha256:ab");
        assert_eq!(parsed.stdin_media_type, DESCRIPTOR_MEDIA_TYPE);
        assert!(!is_invocation(&strings(&["verify", "-name"])));
        assert!(parse(&strings(&["-name"])).is_err());
        assert!(parse(&strings(&["-bogus", "x"])).is_err());
    }

    #[test]
    fn a_descriptor_for_another_digest_is_refused() {
        let args = Args {
            name: "localhost:5000/app".into(),
            digest: "sha256:aa".into(),
            stdin_media_type: DESCRIPTOR_MEDIA_TYPE.into(),
            operation: None,
        };
        let stdin = br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1}"#;
        let e = descriptor(&args, stdin).expect_err("digest mismatch");
        assert!(e.to_string().contains("-digest is sha256:aa"), "{e}");
    }
}
