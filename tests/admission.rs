#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! The admission integrations, driven exactly as their callers drive them, against a real
//! registry: Ratify v1's external verifier protocol (environment + stdin JSON → stdout
//! JSON) and containerd's image verifier (Go-style flags + descriptor on stdin → exit
//! status). Both decide through the component the CLI embeds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hsm_notary::oci::{Descriptor, Manifest};
use hsm_notary::registry::{ArtifactRef, Options, Registry};
use hsm_notary_suite::services::DistributionRegistry;
use hsm_notary_suite::text;
use hsm_notary_suite::{binary, component_cache, static_binary};
use serde_json::{Value, json};

struct Setup {
    config: tempfile::TempDir,
    registry: DistributionRegistry,
    remote: Registry,
    /// The binary the callers run, and whether it runs as in a distroless image: with
    /// nothing in its environment but what the test sets.
    binary: PathBuf,
    distroless: bool,
}

impl Setup {
    /// A registry, a trust policy for every artifact trusting the `signer` test CA,
    /// and a second test CA (`other`) that the policy does not trust.
    fn new() -> Self {
        let config = tempfile::tempdir().unwrap();
        let registry = DistributionRegistry::start().unwrap();
        let artifact = ArtifactRef::parse(&format!("{}/app:v1", registry.host())).unwrap();
        let remote = Registry::connect(&artifact, &Options::default()).unwrap();
        let setup = Self {
            config,
            registry,
            remote,
            binary: binary(),
            distroless: false,
        };
        hsm_notary_suite::signer_config(setup.config.path(), "app").unwrap();
        setup
    }

    /// The same, with `binary` run as in a distroless image.
    fn distroless(binary: PathBuf) -> Self {
        Self {
            binary,
            distroless: true,
            ..Self::new()
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        if self.distroless {
            command.env_clear();
        }
        command
            .env("HSM_NOTARY_CONFIG", self.config.path())
            .env("HSM_NOTARY_CACHE", component_cache())
            .env("DOCKER_CONFIG", self.config.path())
            .env_remove("RATIFY_VERIFIER_COMMAND");
        command
    }

    fn cli(&self, args: &[&str]) -> String {
        hsm_notary_suite::hsm_notary(self.config.path(), args).unwrap()
    }

    /// Push an image; its manifest descriptor.
    fn push(&self, content: &str) -> Descriptor {
        self.remote
            .push_image(br#"{"os":"linux"}"#, &[content.as_bytes()], "v1")
            .unwrap()
    }

    fn reference(&self, image: &Descriptor) -> String {
        format!("{}/app@{}", self.registry.host(), image.digest)
    }

    /// Sign with `key`; the signature manifest's descriptor (as Ratify would pass it).
    fn sign(&self, image: &Descriptor, key: &str) -> Descriptor {
        let out = self.cli(&["sign", "--key", key, &self.reference(image)]);
        let digest = hsm_notary_suite::pushed_signature_digest(&out);
        let (bytes, mut descriptor) = self.remote.manifest(&digest, None).unwrap();
        descriptor.artifact_type = serde_json::from_slice::<Manifest>(&bytes)
            .unwrap()
            .artifact_type;
        descriptor
    }

    fn envelope_blob(&self, signature: &Descriptor) -> std::path::PathBuf {
        let (bytes, _) = self.remote.manifest(&signature.digest, None).unwrap();
        let manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
        self.registry.blob_path(&manifest.layers[0].digest)
    }

    /// Run the binary as Ratify's executor does: no arguments, `RATIFY_VERIFIER_*`, stdin.
    fn ratify(&self, env: &[(&str, &str)], stdin: &str) -> (Output, Value) {
        let mut command = self.command();
        for (key, value) in env {
            command.env(key, value);
        }
        let output = run(command, stdin.as_bytes());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {stdout}"));
        (output, value)
    }

    fn ratify_verify(&self, subject: &str, signature: &Descriptor) -> (Output, Value) {
        self.ratify(
            &ratify_env(subject),
            &ratify_input(signature, self.config.path()).to_string(),
        )
    }

    /// Run the binary as containerd's bindir verifier does.
    fn containerd(&self, name: &str, image: &Descriptor) -> Output {
        let mut command = self.command();
        command.args([
            "-name",
            name,
            "-digest",
            &image.digest,
            "-stdin-media-type",
            "application/vnd.oci.descriptor.v1+json",
        ]);
        run(command, serde_json::to_string(image).unwrap().as_bytes())
    }
}

fn run(mut command: Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ratify_env(subject: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("RATIFY_VERIFIER_COMMAND", "VERIFY"),
        ("RATIFY_VERIFIER_SUBJECT", subject),
        ("RATIFY_VERIFIER_VERSION", "1.0.0"),
        ("RATIFY_VERIFIER_ARGS", ""),
    ]
}

/// Ratify's `PluginInputConfig`: the verifier config, the store config, the referrer.
fn ratify_input(signature: &Descriptor, config_dir: &Path) -> Value {
    json!({
        "config": {
            "name": "hsm-notary",
            "type": "hsm-notary",
            "artifactTypes": "application/vnd.cncf.notary.signature",
            "configDir": config_dir,
        },
        "storeConfig": {
            "version": "1.0.0",
            "pluginBinDirs": [],
            "store": {"name": "oras", "useHttp": true},
        },
        "referenceDesc": signature,
    })
}

fn embedded_component() -> String {
    hsm_notary::oci::sha256_digest(hsm_notary::engine::component::COMPONENT)
}

#[test]
fn ratify_plugin_passes_a_trusted_signature_and_fails_the_others() {
    let setup = Setup::new();
    let image = setup.push("ratify layer");
    let subject = setup.reference(&image);

    let good = setup.sign(&image, "signer");
    let (output, result) = setup.ratify_verify(&subject, &good);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(result["isSuccess"], true, "{result}");
    assert_eq!(result["name"], "hsm-notary");
    assert_eq!(result["type"], "hsm-notary");
    assert_eq!(result["message"], "signature verification success");
    assert!(
        result["extensions"]["SN"]
            .as_str()
            .unwrap()
            .contains("CN=signer")
    );
    assert_eq!(result["extensions"]["policy"], "app");
    assert_eq!(result["extensions"]["component"], embedded_component());
    assert_eq!(
        result["extensions"]["results"][0]["validation"],
        "integrity"
    );

    // Signed by a CA the policy does not trust: a result, not a plugin error.
    let untrusted = setup.sign(&image, "other");
    let (output, result) = setup.ratify_verify(&subject, &untrusted);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(result["isSuccess"], false, "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(
        message.starts_with("signature verification failed"),
        "{message}"
    );
    assert!(message.contains("trusted certificate"), "{message}");

    // A signature of another image is not a signature of this subject.
    let other_image = setup.push("another ratify layer");
    let (_, result) = setup.ratify_verify(&setup.reference(&other_image), &good);
    assert_eq!(result["isSuccess"], false, "{result}");
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("no signature is associated"),
        "{result}"
    );

    // A tampered envelope in the registry is caught by its digest: fail closed.
    let blob = setup.envelope_blob(&good);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let (output, error) = setup.ratify_verify(&subject, &good);
    assert!(!output.status.success());
    assert_eq!(error["code"], 8, "{error}");
    let details = error["details"].as_str().unwrap();
    assert!(
        details.contains("Invalid digest") || details.contains("does not match its digest"),
        "{details}"
    );
}

#[test]
fn ratify_protocol_errors_carry_ratify_error_codes() {
    let setup = Setup::new();
    let image = setup.push("protocol layer");
    let subject = setup.reference(&image);
    let signature = setup.sign(&image, "signer");
    let input = ratify_input(&signature, setup.config.path()).to_string();

    let mut unknown = ratify_env(&subject);
    unknown[0].1 = "ADD";
    let mut old_version = ratify_env(&subject);
    old_version[2].1 = "9.9.9";
    let mut no_name = ratify_input(&signature, setup.config.path());
    no_name["config"]
        .as_object_mut()
        .unwrap()
        .remove("name")
        .unwrap();
    for (env, stdin, code) in [
        (unknown, input.clone(), 3),
        (old_version, input.clone(), 6),
        (ratify_env(&subject), "{not json".to_owned(), 1),
        (ratify_env(&subject), no_name.to_string(), 2),
    ] {
        let (output, error) = setup.ratify(&env, &stdin);
        assert!(!output.status.success(), "{error}");
        assert_eq!(error["code"], code, "{error}");
        assert!(!error["msg"].as_str().unwrap().is_empty());
    }
    // A missing variable (Ratify always sets them; a hand-run plugin may not).
    let mut command = setup.command();
    command
        .env("RATIFY_VERIFIER_COMMAND", "VERIFY")
        .env("RATIFY_VERIFIER_VERSION", "1.0.0")
        .env_remove("RATIFY_VERIFIER_SUBJECT");
    let output = run(command, input.as_bytes());
    let error: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(error["code"], 4, "{error}");
    assert!(
        error["msg"]
            .as_str()
            .unwrap()
            .contains("RATIFY_VERIFIER_SUBJECT")
    );
}

#[test]
fn containerd_verifier_allows_only_trusted_signed_images_and_fails_closed() {
    let setup = Setup::new();
    let name = format!("{}/app:v1", setup.registry.host());

    let signed = setup.push("containerd layer");
    setup.sign(&signed, "signer");
    let allowed = setup.containerd(&name, &signed);
    assert!(allowed.status.success(), "{}", text(&allowed));
    assert!(text(&allowed).contains("verified the Notary Project signature"));

    let unsigned = setup.push("unsigned containerd layer");
    let denied = setup.containerd(&name, &unsigned);
    assert!(!denied.status.success());
    assert!(
        text(&denied).contains("no signature is associated"),
        "{}",
        text(&denied)
    );

    let untrusted = setup.push("untrusted containerd layer");
    setup.sign(&untrusted, "other");
    let denied = setup.containerd(&name, &untrusted);
    assert!(!denied.status.success());
    assert!(
        text(&denied).starts_with("hsm-notary: denied"),
        "{}",
        text(&denied)
    );

    let tampered = setup.push("tampered containerd layer");
    let signature = setup.sign(&tampered, "signer");
    let blob = setup.envelope_blob(&signature);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let denied = setup.containerd(&name, &tampered);
    assert!(!denied.status.success());
    assert!(text(&denied).contains("denied"), "{}", text(&denied));

    // The descriptor on stdin must be the one named by -digest.
    let mut mismatched = signed.clone();
    mismatched.digest = unsigned.digest.clone();
    let mut command = setup.command();
    command.args([
        "-name",
        &name,
        "-digest",
        &signed.digest,
        "-stdin-media-type",
        "application/vnd.oci.descriptor.v1+json",
    ]);
    let denied = run(
        command,
        serde_json::to_string(&mismatched).unwrap().as_bytes(),
    );
    assert!(!denied.status.success());
    assert!(text(&denied).contains("-digest is"), "{}", text(&denied));

    // A registry that is down denies the pull, naming the registry.
    let closed = hsm_notary_suite::services::free_port().unwrap();
    let down = setup.containerd(&format!("localhost:{closed}/app:v1"), &signed);
    assert!(!down.status.success());
    assert!(
        text(&down).contains(&format!("registry localhost:{closed}")),
        "{}",
        text(&down)
    );
}

/// Whether the ELF file at `path` names a program interpreter (`PT_INTERP`): the dynamic
/// loader a distroless image does not have.
fn asks_for_a_loader(path: &Path) -> bool {
    let elf = std::fs::read(path).unwrap();
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([elf[at], elf[at + 1]]));
    let phoff = usize::try_from(u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap())).unwrap();
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

#[test]
fn the_static_build_is_a_ratify_plugin_and_containerd_verifier_for_distroless_images() {
    // Ratify v1 ships a distroless image: its plugins must need no loader and no libc.
    let dynamic = binary();
    assert!(
        asks_for_a_loader(&dynamic),
        "the check sees a loader where there is one"
    );
    let binary = static_binary();
    assert!(
        !asks_for_a_loader(&binary),
        "{} is dynamically linked",
        binary.display()
    );

    let setup = Setup::distroless(binary);
    let version = setup.command().arg("version").output().unwrap();
    assert!(version.status.success(), "{}", text(&version));
    assert!(
        text(&version).contains(&format!("verifier component: {}", embedded_component())),
        "{}",
        text(&version)
    );

    let image = setup.push("static ratify layer");
    let subject = setup.reference(&image);
    let good = setup.sign(&image, "signer");
    let (output, result) = setup.ratify_verify(&subject, &good);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(result["isSuccess"], true, "{result}");
    assert_eq!(result["extensions"]["component"], embedded_component());
    let untrusted = setup.sign(&image, "other");
    let (_, result) = setup.ratify_verify(&subject, &untrusted);
    assert_eq!(result["isSuccess"], false, "{result}");

    let name = format!("{}/app:v1", setup.registry.host());
    let allowed = setup.containerd(&name, &image);
    assert!(allowed.status.success(), "{}", text(&allowed));
    let unsigned = setup.push("unsigned static layer");
    let denied = setup.containerd(&name, &unsigned);
    assert!(!denied.status.success(), "{}", text(&denied));

    // It verifies, but loads no PKCS#11 module, and says so.
    let key = setup
        .command()
        .env("HSM_NOTARY_PKCS11_PIN", "1234")
        .args(["key", "generate", "--type", "ec-p256", "--pkcs11"])
        .arg(format!(
            "pkcs11:token=t;object=k?module-path={}",
            hsm_notary_suite::services::SOFTHSM_MODULE
        ))
        .output()
        .unwrap();
    assert!(!key.status.success());
    assert!(
        text(&key).contains("statically linked build"),
        "{}",
        text(&key)
    );
}
