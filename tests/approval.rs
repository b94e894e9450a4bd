#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Multi-party approval with real parts: the signing service (`signer serve`) holds a key
//! in a SoftHSM2 token and signs only after 2 of 3 approvers approved; the approvers are
//! alice and bob (file keys from an approvers CA) and carol (a key in a second SoftHSM2
//! token); the signatures go to Debian's `docker-registry`. TLS 1.3 with client
//! certificates between everyone and the service.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use hsm_notary_suite::pki::{Ca, IssueSpec, Issued, Locations, Profile};
use hsm_notary_suite::services::{
    DistributionRegistry, SOFTHSM_MODULE, SoftHsm, free_port, push_image,
};
use hsm_notary_suite::{binary, component_cache, text};

const PIN: &str = "approval-test-pin-2718";
const ALICE: &str = "CN=alice,O=Acme,ST=WA,C=US";
const BOB: &str = "CN=bob,O=Acme,ST=WA,C=US";
const CAROL: &str = "CN=carol,O=Notary,L=Seattle,ST=WA,C=US";

/// Everyone's files: the TLS PKI, the approvers' PKI, the config directories.
struct World {
    dir: tempfile::TempDir,
    signer_hsm: SoftHsm,
    carol_hsm: SoftHsm,
    tls_ca: Ca,
    approvers_ca: Ca,
    other_ca: Ca,
    registry: DistributionRegistry,
    port: u16,
}

/// A running `signer serve`.
struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl World {
    fn new() -> Self {
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

    fn path(&self, name: &str) -> PathBuf {
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
    fn run(&self, who: &str, args: &[&str]) -> Output {
        self.command(who, args).output().unwrap()
    }

    fn command(&self, who: &str, args: &[&str]) -> Command {
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

    fn ok(&self, who: &str, args: &[&str]) -> String {
        let output = self.run(who, args);
        assert!(
            output.status.success(),
            "{who}: {args:?} failed:\n{}",
            text(&output)
        );
        text(&output)
    }

    fn fails(&self, who: &str, args: &[&str], needle: &str) -> String {
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
    fn serve(&self) -> Service {
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

    fn image(&self, content: &str) -> String {
        push_image(&self.registry, "app", content)
    }

    /// `sign --signer` as ci: the new request's id.
    fn request(&self, key: &str, reference: &str) -> String {
        let out = self.ok("ci", &["sign", "--key", key, reference]);
        let id = out
            .split("request ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no request id in:\n{out}"));
        id.to_owned()
    }

    fn status(&self, id: &str) -> serde_json::Value {
        let out = self.ok("verifier", &["approval", "show", id, "-o", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    fn approve(&self, who: &str, id: &str) -> String {
        self.ok(who, &["approval", "approve", id, "--key", who])
    }

    fn verify(&self, reference: &str, required: &str) -> Output {
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
    fn post_decision(&self, who: &str, id: &str, envelope: &[u8]) -> String {
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

    fn get(&self, path: &str) -> String {
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

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// An approval made with `blob sign`, as `notation blob sign` would make it: a blob
/// signature over the request's bytes.
fn blob_approval(world: &World, who: &str, id: &str) -> Vec<u8> {
    let request = world.status(id);
    let bytes = hsm_notary::approval::from_base64(request["request"].as_str().unwrap()).unwrap();
    let file = world.path(&format!("{who}-{id}.json"));
    std::fs::write(&file, bytes).unwrap();
    // A local signature, not through the service.
    let mut command = world.command(
        who,
        &[
            "blob",
            "sign",
            "--key",
            who,
            "--force",
            "--media-type",
            hsm_notary::approval::REQUEST_MEDIA_TYPE,
            "-m",
            "io.hsm-notary.decision=approve",
            &s(&file),
        ],
    );
    let output = command.env_remove("HSM_NOTARY_SIGNER").output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    std::fs::read(world.path(&format!("{who}-{id}.json.jws.sig"))).unwrap()
}

#[test]
fn an_hsm_key_signs_only_after_two_of_three_approvers_approved() {
    let mut world = World::new();
    let mut service = world.serve();

    // One approval: no signature; the same approver twice still counts once.
    let image = world.image("release 1");
    let id = world.request("release", &image);
    assert_eq!(world.status(&id)["status"], "pending");
    let listed = world.ok("alice", &["approval", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("approvals 0/2"),
        "{listed}"
    );
    world.approve("alice", &id);
    // The same envelope again (same second, deterministic ECDSA) is a retry; a new one a
    // second later is a second approval by the same approver. Neither counts twice.
    world.approve("alice", &id);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    world.approve("alice", &id);
    let status = world.status(&id);
    assert_eq!(status["status"], "pending");
    assert_eq!(status["approvals"].as_array().unwrap().len(), 1, "{status}");
    let waiting = world.ok("ci", &["sign", "--request", &id, &image]);
    assert!(waiting.contains("waiting for approvals"), "{waiting}");
    world.fails(
        "verifier",
        &["verify", &image],
        "no signature is associated",
    );

    // Refused approvals: an unknown key, one over another request's bytes, a replay.
    world.fails(
        "mallory",
        &["approval", "approve", &id, "--key", "mallory"],
        "not trusted",
    );
    let other_image = world.image("release 2");
    let other = world.request("release", &other_image);
    let alice_for_other = blob_approval(&world, "alice", &other);
    let answer = world.post_decision("alice", &id, &alice_for_other);
    assert!(answer.contains("another request"), "{answer}");
    // The same envelope at the request it is for: accepted; sent there again it is a
    // retry that changes nothing; replayed at another request it is refused.
    let answer = world.post_decision("alice", &other, &alice_for_other);
    assert!(answer.contains("\"pending\""), "{answer}");
    let answer = world.post_decision("alice", &other, &alice_for_other);
    let again: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(again["approvals"].as_array().unwrap().len(), 1, "{answer}");
    let answer = world.post_decision("alice", &id, &alice_for_other);
    assert!(answer.contains("submitted before"), "{answer}");

    // The second approver: signed by the HSM key, pushed by the requester, verified with
    // the approvals checked against the approvers store.
    let approved = world.approve("bob", &id);
    assert!(approved.contains("it is now signed"), "{approved}");
    let pushed = world.ok("ci", &["sign", "--request", &id, &image]);
    assert!(pushed.contains("Pushed the signature to"), "{pushed}");
    let verified = world.verify(&image, "2");
    assert!(verified.status.success(), "{}", text(&verified));
    let out = text(&verified);
    assert!(out.contains("Successfully verified"), "{out}");
    assert!(
        out.contains("Approvals verified: 2") && out.contains(ALICE) && out.contains(BOB),
        "{out}"
    );
    let more = world.verify(&image, "3");
    assert!(!more.status.success());
    assert!(
        text(&more).contains("2 distinct trusted approver(s), 3 required"),
        "{}",
        text(&more)
    );
    let inspected = world.ok("verifier", &["inspect", "-o", "json", &image]);
    assert!(inspected.contains("io.hsm-notary.approvals"), "{inspected}");
    let tree = world.ok("verifier", &["inspect", &image]);
    assert!(tree.contains(&format!("approved by: {ALICE}")), "{tree}");
    // notation ignores the non-critical attribute: plain verification passes too.
    world.ok("verifier", &["verify", &image]);

    // carol approves with the key in her own HSM token; alice's earlier approval makes two.
    let approved = world.approve("carol", &other);
    assert!(approved.contains("it is now signed"), "{approved}");
    world.ok("ci", &["sign", "--request", &other, &other_image]);
    let verified = world.verify(&other_image, "2");
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains(CAROL), "{}", text(&verified));

    // A blob goes the same way: `blob sign --signer`, approved, the signature file
    // written by the requester and verified with `blob verify`.
    let blob = world.path("ci/release.tar");
    std::fs::write(&blob, "release tarball").unwrap();
    let out = world.ok("ci", &["blob", "sign", "--key", "release", &s(&blob)]);
    let blob_id = out
        .split("request ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    world.approve("bob", &blob_id);
    world.approve("carol", &blob_id);
    let written = world.ok("ci", &["blob", "sign", "--request", &blob_id, &s(&blob)]);
    assert!(written.contains("Signature file written to"), "{written}");
    std::fs::write(
        world.path("verifier/trustpolicy.blob.json"),
        r#"{"version":"1.0","trustPolicies":[{"name":"release","signatureVerification":{"level":"strict"},"trustStores":["ca:release"],"trustedIdentities":["*"],"globalPolicy":true}]}"#,
    )
    .unwrap();
    let signature = world.path("ci/release.tar.jws.sig");
    let verified = world.ok(
        "verifier",
        &["blob", "verify", "-s", &s(&signature), &s(&blob)],
    );
    assert!(verified.contains("Successfully verified"), "{verified}");

    // Rejected, expired, and a requester approving its own request.
    let rejected_image = world.image("release 3");
    let rejected = world.request("release", &rejected_image);
    world.ok("bob", &["approval", "reject", &rejected, "--key", "bob"]);
    assert_eq!(world.status(&rejected)["status"], "rejected");
    world.fails(
        "ci",
        &["sign", "--request", &rejected, &rejected_image],
        "rejected by CN=bob",
    );
    world.fails(
        "alice",
        &["approval", "approve", &rejected, "--key", "alice"],
        "not pending",
    );

    let short = world.request("short", &rejected_image);
    std::thread::sleep(std::time::Duration::from_secs(3));
    world.fails(
        "alice",
        &["approval", "approve", &short, "--key", "alice"],
        "expired",
    );
    assert_eq!(world.status(&short)["status"], "expired");

    let own = world.ok(
        "alice",
        &["sign", "--key", "self-approval", &rejected_image],
    );
    let own = own
        .split("request ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    world.fails(
        "alice",
        &["approval", "approve", &own, "--key", "alice"],
        "may not also approve",
    );

    // The service killed and restarted between the approvals: the request survives.
    let restart_image = world.image("release 4");
    let survivor = world.request("release", &restart_image);
    world.approve("alice", &survivor);
    drop(service);
    service = world.serve();
    let status = world.status(&survivor);
    assert_eq!(status["status"], "pending");
    assert_eq!(status["approvals"][0]["approver"], ALICE);
    world.approve("bob", &survivor);
    assert_eq!(world.status(&survivor)["status"], "signed");

    // A registry that is down when signing completes: the requester's push fails, the
    // service keeps the signature, and pushing again does not sign again.
    let down_image = world.image("release 5");
    let waiting = Command::new(binary())
        .args(["sign", "--key", "release", "--wait", "60s", &down_image])
        .env("HSM_NOTARY_CONFIG", world.path("ci"))
        .env("HSM_NOTARY_CACHE", component_cache())
        .env(
            "HSM_NOTARY_SIGNER",
            format!("https://127.0.0.1:{}", world.port),
        )
        .env("HSM_NOTARY_SIGNER_CERT", world.path("ci-tls/cert.pem"))
        .env("HSM_NOTARY_SIGNER_KEY", world.path("ci-tls/key.pem"))
        .env("HSM_NOTARY_SIGNER_CA", world.path("tls-ca/cert.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pending = loop {
        let list = world.ok("verifier", &["approval", "list", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        let found = list["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["subject"]["digest"] == down_image.rsplit_once('@').unwrap().1);
        if let Some(r) = found {
            break r["id"].as_str().unwrap().to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    world.registry.stop().unwrap();
    world.approve("alice", &pending);
    world.approve("bob", &pending);
    let failed = waiting.wait_with_output().unwrap();
    assert!(!failed.status.success());
    let out = text(&failed);
    assert!(
        out.contains("failed to push signature") && out.contains(&format!("--request {pending}")),
        "{out}"
    );
    world.registry.restart().unwrap();
    world.ok("ci", &["sign", "--request", &pending, &down_image]);
    assert!(world.verify(&down_image, "2").status.success());
    let log = world.ok("verifier", &["signer", "audit", "export"]);
    let signed_events = log
        .lines()
        .filter(|l| l.contains("\"event\":\"signed\"") && l.contains(&pending))
        .count();
    assert_eq!(signed_events, 1, "{log}");

    // Everything is observable: metrics by status, and an audit log that verifies.
    let metrics = world.get("/metrics");
    assert!(
        metrics.contains("hsm_notary_signer_requests{status=\"signed\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hsm_notary_signer_requests{status=\"rejected\"} 1"),
        "{metrics}"
    );
    drop(service);
    let database = s(&world.path("signer.db"));
    let verified = world.ok(
        "verifier",
        &["signer", "audit", "verify", "--database", &database],
    );
    assert!(verified.contains("The audit log verifies"), "{verified}");
    let exported = world.ok(
        "verifier",
        &["signer", "audit", "export", "--database", &database],
    );
    let file = world.path("audit.jsonl");
    let tampered = exported.replacen(
        "\"actor\":\"CN=bob,O=Acme,ST=WA,C=US\"",
        "\"actor\":\"CN=eve,O=Acme\"",
        1,
    );
    assert_ne!(tampered, exported);
    std::fs::write(&file, tampered).unwrap();
    world.fails(
        "verifier",
        &["signer", "audit", "verify", &s(&file)],
        "the entry was changed",
    );
}

#[test]
fn an_approval_policy_that_cannot_be_met_stops_the_service_at_start() {
    let world = World::new();
    let config = std::fs::read_to_string(world.path("signer.json")).unwrap();
    std::fs::write(
        world.path("signer.json"),
        config.replacen("\"required\":2", "\"required\":4", 1),
    )
    .unwrap();
    let output = Command::new(binary())
        .args([
            "signer",
            "serve",
            "--config",
            &s(&world.path("signer.json")),
        ])
        .env("HSM_NOTARY_CONFIG", world.path("signer"))
        .env("HSM_NOTARY_CACHE", component_cache())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let out = text(&output);
    assert!(
        out.contains("keys.release.required: 4 approvals required but only 3"),
        "{out}"
    );
}
