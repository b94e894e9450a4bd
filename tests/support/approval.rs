//! The world of the multi-party approval tests and bench: a signing service (`signer
//! serve`) with its key in a SoftHSM2 token, a 2-of-3 approval policy, approvers alice and
//! bob (file keys from an approvers CA) and carol (a key in a second SoftHSM2 token), a
//! requester `ci`, a `verifier`, mallory (a key from another CA), Debian's
//! `docker-registry`, and a TLS PKI with a client certificate for each of them.

#![allow(
    clippy::unwrap_used,
    clippy::new_without_default,
    missing_docs,
    reason = "test support fails loudly; a World starts processes, so it is no Default"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::pki::{Ca, IssueSpec, Issued, Locations, Profile};
use crate::services::{DistributionRegistry, SOFTHSM_MODULE, SoftHsm, free_port, push_image};
use crate::{binary, component_cache, text};

pub const PIN: &str = "approval-test-pin-2718";
pub const ALICE: &str = "CN=alice,O=Acme,ST=WA,C=US";
pub const BOB: &str = "CN=bob,O=Acme,ST=WA,C=US";
pub const CAROL: &str = "CN=carol,O=Notary,L=Seattle,ST=WA,C=US";

/// Everyone's files: the TLS PKI, the approvers' PKI, the config directories.
pub struct World {
    pub dir: tempfile::TempDir,
    pub signer_hsm: SoftHsm,
    pub carol_hsm: SoftHsm,
    pub tls_ca: Ca,
    pub approvers_ca: Ca,
    pub other_ca: Ca,
    pub registry: DistributionRegistry,
    pub port: u16,
}

/// A running `signer serve`.
pub struct Service {
    pub child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let tls_ca = Ca::root(d, "tls-ca", "CN=signer TLS CA,O=Acme").unwrap();
        let approvers_ca = Ca::root(d, "approvers-ca", "CN=Approvers CA,O=Acme").unwrap();
        let other_ca = Ca::root(d, "other-ca", "CN=Someone Else CA,O=Elsewhere").unwrap();
        let world = Self {
            signer_hsm: SoftHsm::new("signer", PIN).unwrap(),
            carol_hsm: SoftHsm::new("carol", PIN).unwrap(),
            registry: DistributionRegistry::start().unwrap(),
            port: free_port().unwrap(),
            dir,
            tls_ca,
            approvers_ca,
            other_ca,
        };
        world.setup();
        world
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn issue(ca: &Ca, name: &str, subject: &str, profile: Profile) -> Issued {
        ca.issue(&IssueSpec {
            name: name.to_owned(),
            subject: subject.to_owned(),
            profile,
            locations: Locations::none(),
            days: 30,
        })
        .unwrap()
    }

    /// Run hsm-notary as `who` (a config directory under the world, its own HSM), with
    /// the signing service configured (`HSM_NOTARY_SIGNER*`).
    pub fn run(&self, who: &str, args: &[&str]) -> Output {
        self.command(who, args).output().unwrap()
    }

    pub fn command(&self, who: &str, args: &[&str]) -> Command {
        let hsm = if who == "carol" {
            &self.carol_hsm
        } else {
            &self.signer_hsm
        };
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("HSM_NOTARY_CONFIG", self.path(who))
            .env("HSM_NOTARY_CACHE", component_cache())
            .env("SOFTHSM2_CONF", hsm.conf())
            .env("HSM_NOTARY_PKCS11_MODULE", SOFTHSM_MODULE)
            .env("HSM_NOTARY_PKCS11_PIN", PIN)
            .env(
                "HSM_NOTARY_SIGNER",
                format!("https://127.0.0.1:{}", self.port),
            )
            .env(
                "HSM_NOTARY_SIGNER_CERT",
                self.path(&format!("{who}-tls/cert.pem")),
            )
            .env(
                "HSM_NOTARY_SIGNER_KEY",
                self.path(&format!("{who}-tls/key.pem")),
            )
            .env("HSM_NOTARY_SIGNER_CA", self.path("tls-ca/cert.pem"));
        command
    }

    pub fn ok(&self, who: &str, args: &[&str]) -> String {
        let output = self.run(who, args);
        assert!(
            output.status.success(),
            "{who}: {args:?} failed:\n{}",
            text(&output)
        );
        text(&output)
    }

    pub fn fails(&self, who: &str, args: &[&str], needle: &str) -> String {
        let output = self.run(who, args);
        let out = text(&output);
        assert!(
            !output.status.success(),
            "{who}: {args:?} succeeded:\n{out}"
        );
        assert!(
            out.contains(needle),
            "{who}: {args:?}: wanted {needle:?} in:\n{out}"
        );
        out
    }

    fn setup(&self) {
        let tls_ca = &self.tls_ca;
        Self::issue(tls_ca, "service-tls", "CN=localhost", Profile::TlsServer);
        for (who, subject) in [
            ("ci", "CN=ci,O=Acme"),
            ("alice", ALICE),
            ("bob", BOB),
            ("carol", "CN=carol-tls,O=Acme"),
            ("mallory", "CN=mallory,O=Elsewhere"),
            ("verifier", "CN=verifier,O=Acme"),
        ] {
            Self::issue(tls_ca, &format!("{who}-tls"), subject, Profile::TlsClient);
            std::fs::create_dir_all(self.path(who)).unwrap();
        }
        // The service's signing key, in its HSM, with a test certificate.
        let uri = self.signer_hsm.uri("release");
        self.ok(
            "signer",
            &["key", "generate", "--pkcs11", &uri, "--type", "ec-p256"],
        );
        self.ok(
            "signer",
            &["cert", "generate-test", "release", "--pkcs11", &uri],
        );
        // Approvers: alice and bob from the approvers CA, carol's key in her own token.
        for (who, subject) in [("alice", ALICE), ("bob", BOB)] {
            let issued = Self::issue(&self.approvers_ca, who, subject, Profile::CodeSigning);
            let chain = self.path(&format!("{who}-chain.pem"));
            std::fs::write(
                &chain,
                format!(
                    "{}{}",
                    issued.pem().unwrap(),
                    self.approvers_ca.identity.pem().unwrap()
                ),
            )
            .unwrap();
            self.ok(
                who,
                &[
                    "key",
                    "add",
                    who,
                    "--key-file",
                    &s(&issued.key()),
                    "--cert",
                    &s(&chain),
                ],
            );
        }
        let carol_uri = self.carol_hsm.uri("carol");
        self.ok(
            "carol",
            &[
                "key", "generate", "--pkcs11", &carol_uri, "--type", "ec-p256",
            ],
        );
        self.ok(
            "carol",
            &["cert", "generate-test", "carol", "--pkcs11", &carol_uri],
        );
        let mallory = Self::issue(
            &self.other_ca,
            "mallory",
            "CN=mallory,O=Elsewhere",
            Profile::CodeSigning,
        );
        let chain = self.path("mallory-chain.pem");
        std::fs::write(
            &chain,
            format!(
                "{}{}",
                mallory.pem().unwrap(),
                self.other_ca.identity.pem().unwrap()
            ),
        )
        .unwrap();
        self.ok(
            "mallory",
            &[
                "key",
                "add",
                "mallory",
                "--key-file",
                &s(&mallory.key()),
                "--cert",
                &s(&chain),
            ],
        );
        // The approvers store, in the service's and the verifier's trust stores.
        let carol_cert = self.path("carol/truststore/x509/ca/carol/carol.crt");
        let release_cert = self.path("signer/truststore/x509/ca/release/release.crt");
        for who in ["signer", "verifier"] {
            for cert in [self.approvers_ca.cert(), carol_cert.clone()] {
                self.ok(
                    who,
                    &[
                        "cert",
                        "add",
                        "--type",
                        "ca",
                        "--store",
                        "approvers",
                        &s(&cert),
                    ],
                );
            }
        }
        self.ok(
            "verifier",
            &[
                "cert",
                "add",
                "--type",
                "ca",
                "--store",
                "release",
                &s(&release_cert),
            ],
        );
        std::fs::write(
            self.path("verifier/trustpolicy.oci.json"),
            r#"{"version":"1.0","trustPolicies":[{"name":"release","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:release"],"trustedIdentities":["*"]}]}"#,
        )
        .unwrap();
        let identities =
            format!(r#"["x509.subject: {ALICE}","x509.subject: {BOB}","x509.subject: {CAROL}"]"#);
        std::fs::write(
            self.path("signer.json"),
            format!(
                r#"{{"listen":"127.0.0.1:{port}","tls":{{"certificate":"service-tls/cert.pem","key":"service-tls/key.pem","clientCa":"tls-ca/cert.pem"}},"database":"signer.db","keys":{{
                    "release":{{"required":2,"approversStore":"approvers","trustedIdentities":{identities}}},
                    "short":{{"signingKey":"release","required":2,"approversStore":"approvers","trustedIdentities":{identities},"requestLifetime":"2s"}},
                    "self-approval":{{"signingKey":"release","required":1,"approversStore":"approvers","trustedIdentities":{identities}}}
                }}}}"#,
                port = self.port
            ),
        )
        .unwrap();
    }

    /// Start `signer serve` and wait until it listens.
    pub fn serve(&self) -> Service {
        let mut child = Command::new(binary())
            .args(["signer", "serve", "--config", &s(&self.path("signer.json"))])
            .env("HSM_NOTARY_CONFIG", self.path("signer"))
            .env("HSM_NOTARY_CACHE", component_cache())
            .env("SOFTHSM2_CONF", self.signer_hsm.conf())
            .env("HSM_NOTARY_PKCS11_MODULE", SOFTHSM_MODULE)
            .env("HSM_NOTARY_PKCS11_PIN", PIN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("listening on") => break,
                Some(Ok(line)) => log.push_str(&format!("{line}\n")),
                _ => panic!("signer serve exited: {:?}\n{log}", child.wait()),
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Service { child }
    }

    pub fn image(&self, content: &str) -> String {
        push_image(&self.registry, "app", content)
    }

    /// `sign --signer` as ci: the new request's id.
    pub fn request(&self, key: &str, reference: &str) -> String {
        let out = self.ok("ci", &["sign", "--key", key, reference]);
        let id = out
            .split("request ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no request id in:\n{out}"));
        id.to_owned()
    }

    pub fn status(&self, id: &str) -> serde_json::Value {
        let out = self.ok("verifier", &["approval", "show", id, "-o", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    pub fn approve(&self, who: &str, id: &str) -> String {
        self.ok(who, &["approval", "approve", id, "--key", who])
    }

    pub fn verify(&self, reference: &str, required: &str) -> Output {
        self.run(
            "verifier",
            &[
                "verify",
                "--require-approvals",
                required,
                "--approvers-store",
                "approvers",
                reference,
            ],
        )
    }

    /// POST a raw decision body with `who`'s TLS identity, as any client could.
    pub fn post_decision(&self, who: &str, id: &str, envelope: &[u8]) -> String {
        let body = self.path(&format!("{who}-{id}-body.json"));
        std::fs::write(
            &body,
            serde_json::json!({
                "mediaType": "application/jose+json",
                "envelope": hsm_notary::approval::to_base64(envelope),
            })
            .to_string(),
        )
        .unwrap();
        let out = Command::new("curl")
            .args(["-s", "--cacert", &s(&self.path("tls-ca/cert.pem"))])
            .args(["--cert", &s(&self.path(&format!("{who}-tls/cert.pem")))])
            .args(["--key", &s(&self.path(&format!("{who}-tls/key.pem")))])
            .args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", s(&body)))
            .arg(format!(
                "https://127.0.0.1:{}/v1/requests/{id}/decisions",
                self.port
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn get(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-s", "--cacert", &s(&self.path("tls-ca/cert.pem"))])
            .args(["--cert", &s(&self.path("verifier-tls/cert.pem"))])
            .args(["--key", &s(&self.path("verifier-tls/key.pem"))])
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A path as an argument.
pub fn s(path: &Path) -> String {
    path.display().to_string()
}
