#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! The notation plugin protocol both ways, with real processes: `notation-hsm-notary`
//! (this project's PKCS#11 signer as a plugin, over a SoftHSM2 token) installed with
//! `plugin install` and used by `sign`, `key add` and `blob sign`; hostile plugins
//! (shell scripts) whose answers must be refused before anything is written; and
//! install sources that try to escape the plugin directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hsm_notary_suite::services::{
    DistributionRegistry, SOFTHSM_MODULE, SoftHsm, fetch_envelope, independent_verify, path_str,
    push_image,
};
use hsm_notary_suite::text;
use hsm_notary_suite::{binary, component_cache, copy_dir, plugin_binary, tree};

const PIN: &str = "plugin-test-pin-27182";

struct Env {
    config: tempfile::TempDir,
    work: tempfile::TempDir,
    hsm: SoftHsm,
}

impl Env {
    fn new() -> Self {
        Self {
            config: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
            hsm: SoftHsm::new("plugin-token", PIN).unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("HSM_NOTARY_CONFIG", self.config.path())
            .env("HSM_NOTARY_CACHE", component_cache())
            .env("SOFTHSM2_CONF", self.hsm.conf())
            .env("HSM_NOTARY_PKCS11_MODULE", SOFTHSM_MODULE)
            // The plugin gets SoftHSM's configuration only because it is listed here.
            .env("HSM_NOTARY_PLUGIN_ENV", "SOFTHSM2_CONF")
            .env_remove("HSM_NOTARY_PKCS11_PIN")
            .env_remove("HSM_NOTARY_LIBEXEC")
            .env_remove("NOTATION_LIBEXEC")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed:\n{}",
            text(&output)
        );
        text(&output)
    }

    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}:\n{}",
            text(&output)
        );
        text(&output)
    }

    fn plugins(&self) -> PathBuf {
        self.config.path().join("plugins")
    }

    /// A key `name` in the token with a test certificate chain, and the chain's path.
    fn hsm_key(&self, name: &str, key_type: &str) -> (String, PathBuf) {
        let uri = self.hsm.uri(name);
        let mut command = self.command(&[
            "cert",
            "generate-test",
            name,
            "--key-type",
            key_type,
            "--pkcs11",
            &uri,
        ]);
        let output = command.env("HSM_NOTARY_PKCS11_PIN", PIN).output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
        (
            uri,
            self.config.path().join(format!("localkeys/{name}.crt")),
        )
    }

    /// `--plugin-config` flags for the token and `chain`.
    fn plugin_config(&self, chain: &Path) -> Vec<String> {
        vec![
            format!("module-path={SOFTHSM_MODULE}"),
            format!("pin-source=file:{}", self.hsm.pin_file().unwrap().display()),
            format!("certificate-chain={}", chain.display()),
        ]
    }

    /// An unsigned OCI layout; its `PATH:v1`.
    fn layout(&self, name: &str) -> String {
        let source =
            hsm_notary_suite::root().join("tests/conformance/cases/no-signature/oci-layout");
        let layout = self.work.path().join(name);
        copy_dir(&source, &layout).unwrap();
        format!("{}:v1", layout.display())
    }

    /// A policy trusting `ca:{store}` for `local/app`.
    fn policy(&self, store: &str) -> String {
        let path = self.work.path().join(format!("policy-{store}.json"));
        std::fs::write(
            &path,
            serde_json::json!({"version": "1.0", "trustPolicies": [{
                "name": "plugin", "registryScopes": ["local/app"],
                "signatureVerification": {"level": "strict"},
                "trustStores": [format!("ca:{store}")], "trustedIdentities": ["*"]}]})
            .to_string(),
        )
        .unwrap();
        path_str(&path)
    }

    fn verify(&self, reference: &str, store: &str) -> String {
        let policy = self.policy(store);
        self.ok(&[
            "verify",
            "--oci-layout",
            "--scope",
            "local/app",
            "--trust-policy",
            &policy,
            reference,
        ])
    }

    fn install_own_plugin(&self) {
        let plugin = path_str(&plugin_binary());
        let installed = self.ok(&["plugin", "install", "--file", &plugin]);
        assert!(
            installed.contains(&format!(
                "Successfully installed plugin hsm-notary, version {}",
                env!("CARGO_PKG_VERSION")
            )),
            "{installed}"
        );
    }
}

fn with_flags<'a>(args: &[&'a str], flag: &'a str, values: &'a [String]) -> Vec<&'a str> {
    let mut out = args.to_vec();
    for value in values {
        out.push(flag);
        out.push(value);
    }
    out
}

fn script_plugin(dir: &Path, name: &str, version: &str, capabilities: &str, body: &str) -> PathBuf {
    hsm_notary_suite::script_plugin(dir, name, version, capabilities, body).unwrap()
}

/// Run `notation-hsm-notary COMMAND` as notation-go's plugin client does: the request on
/// stdin, a clean environment but for SoftHSM's configuration.
fn call_plugin(env: &Env, command: &str, request: &serde_json::Value) -> Output {
    use std::io::Write;
    let mut child = Command::new(plugin_binary())
        .arg(command)
        .env_clear()
        .env("SOFTHSM2_CONF", env.hsm.conf())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Run python3 `code` (archive fixtures are made with Python's zipfile and tarfile).
fn python(code: &str) {
    let status = Command::new("python3").args(["-c", code]).status().unwrap();
    assert!(status.success(), "python3 failed: {code}");
}

#[test]
fn the_plugin_installs_lists_updates_and_uninstalls_as_notation_expects() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["plugin", "list"]),
        "NAME   DESCRIPTION   VERSION   CAPABILITIES   ERROR   \n"
    );
    env.install_own_plugin();
    assert!(
        env.plugins()
            .join("hsm-notary/notation-hsm-notary")
            .is_file()
    );
    let listed = env.ok(&["plugin", "ls"]);
    let row = listed.lines().nth(1).unwrap();
    assert!(row.starts_with("hsm-notary "), "{listed}");
    assert!(row.contains("[SIGNATURE_GENERATOR.RAW]"), "{listed}");
    assert!(row.trim_end().ends_with("<nil>"), "{listed}");

    let plugin = path_str(&plugin_binary());
    let again = env.fails(&["plugin", "install", "--file", &plugin]);
    assert!(
        again.contains(&format!(
            "plugin installation failed: plugin hsm-notary with version {} already exists",
            env!("CARGO_PKG_VERSION")
        )),
        "{again}"
    );
    let forced = env.ok(&["plugin", "install", "--file", &plugin, "--force"]);
    assert!(
        forced.contains("Successfully updated plugin hsm-notary"),
        "{forced}"
    );

    // A newer version updates; an older one needs --force.
    let staging = env.work.path().join("staging");
    script_plugin(
        &staging.join("v2"),
        "demo",
        "1.2.0",
        "\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\"",
        "",
    );
    script_plugin(
        &staging.join("v1"),
        "demo",
        "1.1.0",
        "\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\"",
        "",
    );
    let v2 = path_str(&staging.join("v2/notation-demo"));
    let v1 = path_str(&staging.join("v1/notation-demo"));
    assert!(
        env.ok(&["plugin", "install", "--file", &v1])
            .contains("Successfully installed plugin demo, version 1.1.0")
    );
    assert!(
        env.ok(&["plugin", "install", "--file", &v2])
            .contains("Successfully updated plugin demo from version 1.1.0 to 1.2.0")
    );
    let older = env.fails(&["plugin", "install", "--file", &v1]);
    assert!(
        older.contains(
            "The installing plugin version 1.1.0 is lower than the existing plugin version 1.2.0"
        ),
        "{older}"
    );
    // Archives: the same executable in a .zip and a .tar.gz (beside a LICENSE).
    let zip = env.work.path().join("demo.zip");
    let tgz = env.work.path().join("demo.tar.gz");
    python(&format!(
        "import zipfile, tarfile\nz = zipfile.ZipFile({zip:?}, 'w', zipfile.ZIP_DEFLATED)\ni = zipfile.ZipInfo('notation-demo'); i.external_attr = 0o100755 << 16\nz.writestr(i, open({v2:?}, 'rb').read()); z.writestr('LICENSE', 'Apache-2.0'); z.close()\nt = tarfile.open({tgz:?}, 'w:gz'); t.add({v2:?}, 'notation-demo'); t.close()",
        zip = path_str(&zip),
        tgz = path_str(&tgz),
    ));
    for archive in [&tgz, &zip] {
        let installed = env.ok(&["plugin", "install", "--file", &path_str(archive), "--force"]);
        assert!(installed.contains("plugin demo"), "{installed}");
    }
    // The whole directory is replaced: the zip's LICENSE is there.
    assert!(env.plugins().join("demo/LICENSE").is_file());

    // Checksums are compared when given, case-insensitively.
    let wrong = env.fails(&[
        "plugin",
        "install",
        "--file",
        &v2,
        "--force",
        "--sha256sum",
        &"0".repeat(64),
    ]);
    assert!(
        wrong.contains("plugin SHA-256 checksum does not match user input"),
        "{wrong}"
    );

    // A broken plugin is listed with its error, not hidden.
    std::fs::create_dir_all(env.plugins().join("empty")).unwrap();
    let listed = env.ok(&["plugin", "list"]);
    assert!(
        listed.contains("plugin executable file `notation-empty` not found"),
        "{listed}"
    );

    assert_eq!(
        env.ok(&["plugin", "uninstall", "hsm-notary", "-y"]).trim(),
        "Successfully uninstalled plugin hsm-notary"
    );
    assert!(!env.plugins().join("hsm-notary").exists());
    // A declined prompt (EOF) removes nothing and exits 0.
    assert!(env.run(&["plugin", "uninstall", "demo"]).status.success());
    assert!(env.plugins().join("demo").exists());
    let unknown = env.fails(&["plugin", "uninstall", "hsm-notary", "-y"]);
    assert!(
        unknown.contains("unable to find plugin hsm-notary"),
        "{unknown}"
    );
}

#[test]
fn plugin_install_flags_read_as_notation_s() {
    let env = Env::new();
    for (args, message) in [
        (
            vec!["plugin", "install", "x"],
            "at least one of the flags in the group [file url] is required",
        ),
        (
            vec!["plugin", "install", "--file"],
            "missing plugin file path",
        ),
        (vec!["plugin", "install", "--url"], "missing plugin URL"),
        (
            vec!["plugin", "install", "--file", "a", "b"],
            "can only install one plugin at a time",
        ),
        (
            vec!["plugin", "install", "--file", "--url", "a"],
            "[file url] were all set",
        ),
        (
            vec![
                "plugin",
                "install",
                "--url",
                "https://127.0.0.1:1/notation-x",
            ],
            "installing from URL requires non-empty SHA256 checksum of the plugin source",
        ),
        (
            vec![
                "plugin",
                "install",
                "--url",
                "http://127.0.0.1:1/notation-x",
                "--sha256sum",
                "00",
            ],
            "only the HTTPS scheme is supported, but got http",
        ),
    ] {
        let out = env.fails(&args);
        assert!(out.contains(message), "{args:?}: {out}");
    }
    assert!(!env.plugins().join("x").exists());
}

#[test]
fn hostile_install_sources_leave_the_plugin_directory_unchanged() {
    let env = Env::new();
    let work = env.work.path();
    let good = script_plugin(
        &work.join("good"),
        "good",
        "1.0.0",
        "\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\"",
        "",
    );
    env.ok(&["plugin", "install", "--file", &path_str(&good)]);
    let exe = path_str(&good);
    let evil = work.join("evil");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "zip-slip.zip",
            format!("z = zipfile.ZipFile(OUT, 'w'); z.writestr('../evil', 'x'); z.writestr('notation-good', open({exe:?}).read()); z.close()"),
            "file name in zip cannot contain '..'",
        ),
        (
            "slip.tar.gz",
            format!("t = tarfile.open(OUT, 'w:gz'); t.add({exe:?}, '../../evil'); t.close()"),
            "file name in tar.gz cannot contain '..'",
        ),
        (
            "link.tar.gz",
            "t = tarfile.open(OUT, 'w:gz'); i = tarfile.TarInfo('notation-good'); i.type = tarfile.SYMTYPE; i.linkname = '/bin/sh'; t.addfile(i); t.close()".to_owned(),
            "links are not installed",
        ),
        (
            "link.zip",
            "z = zipfile.ZipFile(OUT, 'w'); i = zipfile.ZipInfo('notation-good'); i.external_attr = 0o120777 << 16; z.writestr(i, '/bin/sh'); z.close()".to_owned(),
            "symbolic link",
        ),
        (
            "bomb.zip",
            format!("z = zipfile.ZipFile(OUT, 'w', zipfile.ZIP_DEFLATED); z.writestr('notation-good', open({exe:?}).read()); z.writestr('padding', b'\\0' * (257 << 20)); z.close()"),
            "total file size reached the 256 MiB size limit",
        ),
        (
            "two.tar.gz",
            format!("t = tarfile.open(OUT, 'w:gz'); t.add({exe:?}, 'notation-good'); t.add({exe:?}, 'notation-other'); t.close()"),
            "found more than one plugin executable files",
        ),
        (
            "none.zip",
            "z = zipfile.ZipFile(OUT, 'w'); z.writestr('README', 'x'); z.close()".to_owned(),
            "no plugin executable file was found",
        ),
    ];
    for (name, code, message) in cases {
        let path = work.join(name);
        python(&format!(
            "import zipfile, tarfile\nOUT = {:?}\n{code}",
            path_str(&path)
        ));
        let before = tree(env.config.path()).unwrap();
        let out = env.fails(&["plugin", "install", "--file", &path_str(&path), "--force"]);
        assert!(out.contains(message), "{name}: {out}");
        assert_eq!(
            tree(env.config.path()).unwrap(),
            before,
            "{name} changed the configuration directory"
        );
        assert!(
            !evil.exists() && !env.config.path().join("evil").exists(),
            "{name} wrote outside"
        );
    }
    // A plugin whose metadata names another plugin is refused too.
    let liar = script_plugin(
        &work.join("liar"),
        "other",
        "1.0.0",
        "\"SIGNATURE_GENERATOR.RAW\"",
        "",
    );
    std::fs::rename(&liar, work.join("liar/notation-good")).unwrap();
    let before = tree(env.config.path()).unwrap();
    let out = env.fails(&[
        "plugin",
        "install",
        "--file",
        &path_str(&work.join("liar/notation-good")),
        "--force",
    ]);
    assert!(
        out.contains("plugin executable file name must be \"notation-other\""),
        "{out}"
    );
    assert_eq!(tree(env.config.path()).unwrap(), before);
    // Not executable, or not named notation-*.
    let plain = work.join("notation-plain");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    assert!(
        env.fails(&["plugin", "install", "--file", &path_str(&plain)])
            .contains("is not executable")
    );
    assert!(
        env.fails(&["plugin", "install", "--file", "/bin/true"])
            .contains("Plugin file name requires format notation-{plugin-name}, but got true")
    );
}

#[test]
fn the_plugin_answers_the_contract_directly() {
    let env = Env::new();
    let (uri, chain) = env.hsm_key("direct", "ec-p256");
    let pin_file = path_str(&env.hsm.pin_file().unwrap());
    let call =
        |command: &str, request: serde_json::Value| -> (Option<i32>, serde_json::Value, String) {
            let output = call_plugin(&env, command, &request);
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            let stdout: serde_json::Value = if output.status.success() {
                serde_json::from_slice(&output.stdout).unwrap()
            } else {
                assert!(output.stdout.is_empty(), "a failure wrote to stdout");
                serde_json::from_str(&stderr).unwrap_or(serde_json::Value::Null)
            };
            (output.status.code(), stdout, stderr)
        };
    let config = serde_json::json!({
        "module-path": SOFTHSM_MODULE,
        "pin-source": format!("file:{pin_file}"),
        "certificate-chain": path_str(&chain),
    });

    let (code, metadata, _) = call("get-plugin-metadata", serde_json::json!({}));
    assert_eq!(code, Some(0));
    assert_eq!(metadata["name"], "hsm-notary");
    assert_eq!(
        metadata["supportedContractVersions"],
        serde_json::json!(["1.0"])
    );
    assert_eq!(
        metadata["capabilities"],
        serde_json::json!(["SIGNATURE_GENERATOR.RAW"])
    );
    let (_, metadata, _) = call(
        "get-plugin-metadata",
        serde_json::json!({"pluginConfig": {"capability": "envelope"}}),
    );
    assert_eq!(
        metadata["capabilities"],
        serde_json::json!(["SIGNATURE_GENERATOR.ENVELOPE"])
    );

    let (code, described, _) = call(
        "describe-key",
        serde_json::json!({"contractVersion": "1.0", "keyId": uri, "pluginConfig": config}),
    );
    assert_eq!(code, Some(0), "{described}");
    assert_eq!(
        described,
        serde_json::json!({"keyId": uri, "keySpec": "EC-256"})
    );

    let sign_request = |overrides: serde_json::Value| {
        let mut request = serde_json::json!({"contractVersion": "1.0", "keyId": uri, "keySpec": "EC-256",
            "hashAlgorithm": "SHA-256", "payload": "aGVsbG8=", "pluginConfig": config});
        for (k, v) in overrides.as_object().unwrap() {
            request[k] = v.clone();
        }
        request
    };
    let (code, signed, _) = call("generate-signature", sign_request(serde_json::json!({})));
    assert_eq!(code, Some(0), "{signed}");
    assert_eq!(signed["keyId"], uri);
    assert_eq!(signed["signingAlgorithm"], "ECDSA-SHA-256");
    assert_eq!(signed["certificateChain"].as_array().unwrap().len(), 2);
    // The signature is ECDSA P-256 over SHA-256("hello") by the leaf's key, as r || s.
    {
        use base64ct::{Base64, Encoding};
        use p256::ecdsa::signature::Verifier;
        let leaf = Base64::decode_vec(signed["certificateChain"][0].as_str().unwrap()).unwrap();
        let leaf = <x509_cert::Certificate as der::Decode>::from_der(&leaf).unwrap();
        let spki = der::Encode::to_der(leaf.tbs_certificate().subject_public_key_info()).unwrap();
        let key =
            <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(&spki)
                .unwrap();
        let signature = p256::ecdsa::Signature::from_slice(
            &Base64::decode_vec(signed["signature"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        key.verify(b"hello", &signature).unwrap();
    }

    // The chain kept on the token instead of in a file (`key import-cert`).
    let no_file = serde_json::json!({"module-path": SOFTHSM_MODULE, "pin-source": format!("file:{pin_file}")});
    let (code, error, _) = call(
        "generate-signature",
        sign_request(serde_json::json!({"pluginConfig": no_file})),
    );
    assert_eq!(code, Some(1));
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("no certificate for key"),
        "{error}"
    );
    let mut import = env.command(&[
        "key",
        "import-cert",
        "--pkcs11",
        &uri,
        "--cert",
        &path_str(&chain),
    ]);
    let out = import.env("HSM_NOTARY_PKCS11_PIN", PIN).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (code, from_token, _) = call(
        "generate-signature",
        sign_request(serde_json::json!({"pluginConfig": no_file})),
    );
    assert_eq!(code, Some(0), "{from_token}");
    assert_eq!(from_token["certificateChain"], signed["certificateChain"]);

    let wrong_pin = env.work.path().join("wrong-pin");
    std::fs::write(&wrong_pin, "not-the-pin-9999").unwrap();
    for (command, request, code_expected, needle) in [
        (
            "describe-key",
            serde_json::json!({"contractVersion": "2.0", "keyId": uri, "pluginConfig": config}),
            "UNSUPPORTED_CONTRACT_VERSION",
            "contract version",
        ),
        (
            "generate-signature",
            sign_request(serde_json::json!({"hashAlgorithm": "SHA-384"})),
            "VALIDATION_ERROR",
            "hashAlgorithm",
        ),
        (
            "generate-signature",
            sign_request(serde_json::json!({"keySpec": "RSA-2048"})),
            "VALIDATION_ERROR",
            "keySpec",
        ),
        (
            "generate-signature",
            sign_request(serde_json::json!({"keyId": env.hsm.uri("missing")})),
            "VALIDATION_ERROR",
            "no private key labelled",
        ),
        (
            "generate-signature",
            sign_request(
                serde_json::json!({"pluginConfig": {"module-path": SOFTHSM_MODULE, "pin-source": format!("file:{}", path_str(&wrong_pin)), "certificate-chain": path_str(&chain)}}),
            ),
            "ACCESS_DENIED",
            "incorrect PIN",
        ),
        (
            "generate-signature",
            sign_request(
                serde_json::json!({"pluginConfig": {"module-path": SOFTHSM_MODULE, "pin": "not-the-pin-9999"}}),
            ),
            "VALIDATION_ERROR",
            "does not belong in configuration",
        ),
        (
            "generate-signature",
            sign_request(serde_json::json!({"pluginConfig": {"module-path": SOFTHSM_MODULE}})),
            "ACCESS_DENIED",
            "no PIN",
        ),
        (
            "generate-signature",
            serde_json::json!("not an object"),
            "VALIDATION_ERROR",
            "Input is not a valid JSON",
        ),
        (
            "delete-everything",
            serde_json::json!({}),
            "VALIDATION_ERROR",
            "Invalid command",
        ),
    ] {
        let (code, error, stderr) = call(command, request);
        assert_eq!(code, Some(1), "{command}: {stderr}");
        assert_eq!(error["errorCode"], code_expected, "{command}: {stderr}");
        assert!(
            error["errorMessage"].as_str().unwrap().contains(needle),
            "{command}: {stderr}"
        );
        assert!(
            !stderr.contains("not-the-pin-9999") && !stderr.contains(PIN),
            "a PIN was echoed: {stderr}"
        );
    }
}

#[test]
fn hsm_notary_signs_through_its_own_plugin_raw_and_envelope() {
    let env = Env::new();
    env.install_own_plugin();
    let (uri, chain) = env.hsm_key("release", "ec-p384");
    let config = env.plugin_config(&chain);

    // On demand: --plugin --id, JWS, with the debug log on (it must not carry the PIN).
    let reference = env.layout("raw");
    let args = [
        "-d",
        "sign",
        "--oci-layout",
        "--plugin",
        "hsm-notary",
        "--id",
        &uri,
        &reference,
    ];
    let signed = env.ok(&with_flags(&args, "--plugin-config", &config));
    assert!(signed.contains("Successfully signed"), "{signed}");
    assert!(
        signed.contains("Plugin generate-signature request:"),
        "{signed}"
    );
    assert!(!signed.contains(PIN), "the debug log carries the PIN");
    assert!(
        env.verify(&reference, "release")
            .contains("Successfully verified")
    );
    let inspected = env.ok(&["inspect", "--oci-layout", "-o", "json", &reference]);
    let agent = format!("hsm-notary/{0} hsm-notary/{0}", env!("CARGO_PKG_VERSION"));
    assert!(inspected.contains(&agent), "{inspected}");

    // Registered: key add --plugin, then sign -k, COSE.
    let args = [
        "key",
        "add",
        "release-key",
        "--plugin",
        "hsm-notary",
        "--id",
        &uri,
    ];
    env.ok(&with_flags(&args, "--plugin-config", &config));
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.config.path().join("signingkeys.json")).unwrap())
            .unwrap();
    let entry = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "release-key")
        .unwrap();
    assert_eq!(entry["pluginName"], "hsm-notary");
    assert_eq!(entry["id"], uri);
    let reference = env.layout("registered");
    env.ok(&[
        "sign",
        "--oci-layout",
        "-k",
        "release-key",
        "--signature-format",
        "cose",
        &reference,
    ]);
    assert!(
        env.verify(&reference, "release")
            .contains("Successfully verified")
    );

    // The plugin as an envelope generator: the envelope is checked by the component.
    let reference = env.layout("envelope");
    env.ok(&[
        "sign",
        "--oci-layout",
        "-k",
        "release-key",
        "--plugin-config",
        "capability=envelope",
        "-m",
        "team=release",
        &reference,
    ]);
    assert!(
        env.verify(&reference, "release")
            .contains("Successfully verified")
    );

    // Blobs, through the RAW capability; the digest follows the key (EC-384: sha384).
    let blob = env.work.path().join("artifact.bin");
    std::fs::write(&blob, b"a blob to sign").unwrap();
    let dir = env.work.path().join("sigs");
    std::fs::create_dir_all(&dir).unwrap();
    env.ok(&[
        "blob",
        "sign",
        "-k",
        "release-key",
        "--signature-directory",
        &path_str(&dir),
        &path_str(&blob),
    ]);
    let signature = dir.join("artifact.bin.jws.sig");
    let inspected = env.ok(&["blob", "inspect", "-o", "json", &path_str(&signature)]);
    assert!(inspected.contains("sha384:"), "{inspected}");
    let root = env
        .config
        .path()
        .join("truststore/x509/ca/release/release.crt");
    let verified = env.ok(&[
        "blob",
        "verify",
        "--signature",
        &path_str(&signature),
        "--certificate",
        &path_str(&root),
        "--trusted-identity",
        "*",
        &path_str(&blob),
    ]);
    assert!(verified.contains("Successfully verified"), "{verified}");

    // The plugin's environment is cleaned: without SOFTHSM2_CONF listed, SoftHSM cannot
    // find the token (the host's own variable does not leak through).
    let reference = env.layout("no-env");
    let out = env
        .command(&["sign", "--oci-layout", "-k", "release-key", &reference])
        .env("HSM_NOTARY_PLUGIN_ENV", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn hostile_plugin_answers_are_refused_before_anything_is_written() {
    let env = Env::new();
    // A real chain (its key is in the token) for the plugins to send back.
    let (_, chain) = env.hsm_key("victim", "ec-p256");
    let chain_b64: Vec<String> = {
        use base64ct::{Base64, Encoding};
        let pem = std::fs::read_to_string(&chain).unwrap();
        pem.split("-----END CERTIFICATE-----")
            .filter_map(|block| block.split("-----BEGIN CERTIFICATE-----").nth(1))
            .map(|b64| {
                Base64::encode_string(&Base64::decode_vec(&b64.replace(['\n', '\r'], "")).unwrap())
            })
            .collect()
    };
    let chain_json = serde_json::to_string(&chain_b64).unwrap();
    let describe = "describe-key) printf '%s' '{\"keyId\":\"k1\",\"keySpec\":\"EC-256\"}';;";
    let env_dump = env.work.path().join("plugin-env.txt");
    let plugins = env.plugins();
    let envelope_for_other = {
        // A genuine envelope for another artifact (a blob), signed by a local test key.
        env.ok(&["cert", "generate-test", "other", "--default"]);
        let blob = env.work.path().join("other.bin");
        std::fs::write(&blob, b"another artifact").unwrap();
        env.ok(&["blob", "sign", &path_str(&blob)]);
        use base64ct::{Base64, Encoding};
        Base64::encode_string(&std::fs::read(env.work.path().join("other.bin.jws.sig")).unwrap())
    };
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "wrong-id",
            "\"SIGNATURE_GENERATOR.RAW\"",
            "describe-key) printf '%s' '{\"keyId\":\"k2\",\"keySpec\":\"EC-256\"}';;".to_owned(),
            "keyID in describeKey response \"k2\" does not match request \"k1\"",
        ),
        (
            "bad-signature",
            "\"SIGNATURE_GENERATOR.RAW\"",
            format!(
                "{describe}\ngenerate-signature) printf '%s' '{{\"keyId\":\"k1\",\"signature\":\"{}\",\"signingAlgorithm\":\"ECDSA-SHA-256\",\"certificateChain\":{chain_json}}}';;",
                "A".repeat(88)
            ),
            "does not verify against its certificate",
        ),
        (
            "wrong-algorithm",
            "\"SIGNATURE_GENERATOR.RAW\"",
            format!(
                "{describe}\ngenerate-signature) printf '%s' '{{\"keyId\":\"k1\",\"signature\":\"AAAA\",\"signingAlgorithm\":\"RSASSA-PSS-SHA-256\",\"certificateChain\":{chain_json}}}';;"
            ),
            "requires ECDSA-SHA-256",
        ),
        (
            "no-chain",
            "\"SIGNATURE_GENERATOR.RAW\"",
            format!(
                "{describe}\ngenerate-signature) printf '%s' '{{\"keyId\":\"k1\",\"signature\":\"AAAA\",\"signingAlgorithm\":\"ECDSA-SHA-256\",\"certificateChain\":[]}}';;"
            ),
            "returned no certificate chain",
        ),
        (
            "slow",
            "\"SIGNATURE_GENERATOR.RAW\"",
            format!("{describe}\ngenerate-signature) sleep 30;;"),
            "timed out after 1s",
        ),
        (
            "endless",
            "\"SIGNATURE_GENERATOR.RAW\"",
            format!("{describe}\ngenerate-signature) cat /dev/zero;;"),
            "wrote more than 67108864 bytes on stdout",
        ),
        (
            "garbage",
            "\"SIGNATURE_GENERATOR.RAW\"",
            format!("{describe}\ngenerate-signature) echo 'this is not JSON' >&2; exit 3;;"),
            "returned a malformed error response",
        ),
        (
            "other-artifact",
            "\"SIGNATURE_GENERATOR.ENVELOPE\"",
            format!(
                "generate-envelope) printf '%s' '{{\"signatureEnvelope\":\"{envelope_for_other}\",\"signatureEnvelopeType\":\"application/jose+json\"}}';;"
            ),
            "that was asked to be signed",
        ),
        (
            "wrong-type",
            "\"SIGNATURE_GENERATOR.ENVELOPE\"",
            format!(
                "generate-envelope) printf '%s' '{{\"signatureEnvelope\":\"{envelope_for_other}\",\"signatureEnvelopeType\":\"application/cose\"}}';;"
            ),
            "does not match request \"application/jose+json\"",
        ),
        (
            "env-dump",
            "\"SIGNATURE_GENERATOR.RAW\"",
            format!(
                "describe-key) env > {}; printf '%s' '{{\"errorCode\":\"ACCESS_DENIED\",\"errorMessage\":\"denied after looking around\"}}' >&2; exit 1;;",
                path_str(&env_dump)
            ),
            "denied after looking around",
        ),
    ];
    for (name, capabilities, body, message) in cases {
        script_plugin(&plugins.join(name), name, "1.0.0", capabilities, &body);
        let reference = env.layout(&format!("layout-{name}"));
        let dir = PathBuf::from(reference.trim_end_matches(":v1"));
        let before = tree(&dir).unwrap();
        let started = std::time::Instant::now();
        let out = env
            .command(&[
                "sign",
                "--oci-layout",
                "--plugin",
                name,
                "--id",
                "k1",
                "--plugin-timeout",
                "1s",
                &reference,
            ])
            .env("HSM_NOTARY_PASSWORD", "registry-secret-4711")
            .env("NOTATION_PASSWORD", "registry-secret-4711")
            .env("HSM_NOTARY_PLUGIN_ENV", "SOFTHSM2_CONF,HSM_NOTARY_PASSWORD")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(text(&out).contains(message), "{name}: {}", text(&out));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name} took {:?}",
            started.elapsed()
        );
        assert_eq!(tree(&dir).unwrap(), before, "{name}: the layout changed");
    }
    let seen = std::fs::read_to_string(&env_dump).unwrap();
    assert!(seen.contains("SOFTHSM2_CONF="), "{seen}");
    assert!(
        !seen.contains("registry-secret-4711"),
        "credentials reached the plugin:\n{seen}"
    );
}

#[test]
fn plugin_signatures_round_trip_a_registry_and_pass_independent_checks() {
    let env = Env::new();
    env.install_own_plugin();
    let registry = DistributionRegistry::start().unwrap();
    for (name, key_type, format, capability) in [
        ("ec256", "ec-p256", "jws", "raw"),
        ("rsa3072", "rsa-3072", "cose", "raw"),
        ("ec384", "ec-p384", "cose", "envelope"),
        ("rsa2048", "rsa-2048", "jws", "envelope"),
    ] {
        let (uri, chain) = env.hsm_key(name, key_type);
        let mut config = env.plugin_config(&chain);
        config.push(format!("capability={capability}"));
        let reference = push_image(&registry, name, &format!("layer of {name}"));
        let args = [
            "sign",
            "--plugin",
            "hsm-notary",
            "--id",
            &uri,
            "--signature-format",
            format,
            &reference,
        ];
        let signed = env.ok(&with_flags(&args, "--plugin-config", &config));
        let manifest_digest = hsm_notary_suite::pushed_signature_digest(&signed);
        let (media_type, envelope, _) = fetch_envelope(&reference, &manifest_digest);
        // jwcrypto, or cbor2 + cryptography, over the envelope as the registry holds it.
        let digest = reference.rsplit_once('@').unwrap().1;
        independent_verify(&media_type, &envelope, digest).unwrap();
        let policy = env.work.path().join(format!("{name}.json"));
        std::fs::write(
            &policy,
            serde_json::json!({"version": "1.0", "trustPolicies": [{
                "name": name, "registryScopes": [reference.rsplit_once('@').unwrap().0],
                "signatureVerification": {"level": "strict"},
                "trustStores": [format!("ca:{name}")], "trustedIdentities": ["*"]}]})
            .to_string(),
        )
        .unwrap();
        let verified = env.ok(&["verify", "--trust-policy", &path_str(&policy), &reference]);
        assert!(
            verified.contains("Successfully verified"),
            "{name}: {verified}"
        );
    }
}

#[test]
fn the_plugin_s_rsa_signatures_verify_with_python_cryptography() {
    let env = Env::new();
    let (uri, chain) = env.hsm_key("rsa", "rsa-3072");
    let request = serde_json::json!({"contractVersion": "1.0", "keyId": uri, "keySpec": "RSA-3072",
        "hashAlgorithm": "SHA-384", "payload": "aGVsbG8=", "pluginConfig": {
            "module-path": SOFTHSM_MODULE,
            "pin-source": format!("file:{}", env.hsm.pin_file().unwrap().display()),
            "certificate-chain": path_str(&chain)}});
    let output = call_plugin(&env, "generate-signature", &request);
    assert!(output.status.success(), "{}", text(&output));
    let response = env.work.path().join("response.json");
    std::fs::write(&response, &output.stdout).unwrap();
    // RSASSA-PSS, SHA-384, MGF1-SHA-384, salt = 48 bytes, by the leaf's key.
    python(&format!(
        "import json, base64\nfrom cryptography import x509\nfrom cryptography.hazmat.primitives import hashes\nfrom cryptography.hazmat.primitives.asymmetric import padding\nr = json.load(open({:?}))\nassert r['signingAlgorithm'] == 'RSASSA-PSS-SHA-384'\nleaf = x509.load_der_x509_certificate(base64.b64decode(r['certificateChain'][0]))\nleaf.public_key().verify(base64.b64decode(r['signature']), b'hello', padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())",
        path_str(&response)
    ));
}

/// `plugin install --url` from an https server (Python's, with a test CA the process
/// trusts through `SSL_CERT_FILE`): downloaded, checked against `--sha256sum`, installed;
/// a wrong checksum and an untrusted server certificate install nothing.
#[test]
fn plugin_install_url_downloads_over_https_and_checks_the_checksum() {
    use sha2::Digest;
    let env = Env::new();
    let staging = env.work.path().join("https");
    script_plugin(
        &staging,
        "webdemo",
        "1.0.0",
        "\"SIGNATURE_VERIFIER.TRUSTED_IDENTITY\"",
        "",
    );
    let tgz = staging.join("webdemo.tar.gz");
    python(&format!(
        "import tarfile\nt = tarfile.open({tgz:?}, 'w:gz'); t.add({exe:?}, 'notation-webdemo'); t.close()",
        tgz = path_str(&tgz),
        exe = path_str(&staging.join("notation-webdemo")),
    ));
    let sum: String = sha2::Sha256::digest(std::fs::read(&tgz).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tls = env.work.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let (ca, cert, key) = hsm_notary_suite::services::tls_files(&tls).unwrap();
    let port = hsm_notary_suite::services::free_port().unwrap();
    let code = format!(
        "import http.server, ssl, functools\nh = functools.partial(http.server.SimpleHTTPRequestHandler, directory={dir:?})\ns = http.server.HTTPServer(('127.0.0.1', {port}), h)\nc = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain({cert:?}, {key:?})\ns.socket = c.wrap_socket(s.socket, server_side=True)\ns.serve_forever()",
        dir = path_str(&staging),
        cert = path_str(&cert),
        key = path_str(&key),
    );
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Server(
        Command::new("python3")
            .args(["-c", &code])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the https server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}/webdemo.tar.gz");
    let install = |sum: &str, trusted: bool| {
        let mut command = env.command(&["plugin", "install", "--url", &url, "--sha256sum", sum]);
        if trusted {
            command.env("SSL_CERT_FILE", &ca);
        } else {
            command.env("SSL_CERT_FILE", &cert);
        }
        command.output().unwrap()
    };
    let untrusted = install(&sum, false);
    assert!(!untrusted.status.success());
    assert!(
        text(&untrusted).contains("failed to download plugin from URL"),
        "{}",
        text(&untrusted)
    );
    let wrong = install(&"0".repeat(64), true);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("plugin SHA-256 checksum does not match user input"),
        "{}",
        text(&wrong)
    );
    assert!(!env.plugins().join("webdemo").exists());
    let installed = install(&sum.to_uppercase(), true);
    assert!(installed.status.success(), "{}", text(&installed));
    let out = text(&installed);
    assert!(out.contains("Downloading plugin from"), "{out}");
    assert!(
        out.contains("Successfully installed plugin webdemo, version 1.0.0"),
        "{out}"
    );
    assert!(env.plugins().join("webdemo/notation-webdemo").is_file());
}
