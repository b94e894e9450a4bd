#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Multi-party approval with real parts: the signing service (`signer serve`) holds a key
//! in a SoftHSM2 token and signs only after 2 of 3 approvers approved; the approvers are
//! alice and bob (file keys from an approvers CA) and carol (a key in a second SoftHSM2
//! token); the signatures go to Debian's `docker-registry`. TLS 1.3 with client
//! certificates between everyone and the service (tests/support/approval.rs).

use std::process::{Command, Stdio};

use hsm_notary_suite::approval::{ALICE, BOB, CAROL, World, s};
use hsm_notary_suite::{binary, component_cache, text};

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

/// Approvers' certificates that name a CRL are checked against it (the verifier's
/// revocation checking, the service fetching): a revoked approver is refused, a good one
/// from the same CA counts.
#[test]
fn a_revoked_approver_is_refused_and_a_good_one_from_the_same_ca_counts() {
    use hsm_notary_suite::pki::{Locations, Pki, Reason, RevocationServer};
    let world = World::new();
    let published = tempfile::tempdir().unwrap();
    let crls = RevocationServer::start(published.path()).unwrap();
    let pki = Pki::with_served_crls(&crls).unwrap();
    let (erin, erin_chain) = pki
        .issue_leaf(
            "erin",
            "CN=erin,O=hsm-notary tests,ST=WA,C=US",
            Locations::crl(crls.url("leaf.crl")),
        )
        .unwrap();
    pki.intermediate
        .revoke(&pki.leaf, Reason::KeyCompromise)
        .unwrap();
    crls.publish("leaf.crl", &pki.intermediate.gencrl(24).unwrap())
        .unwrap();
    let dave_key = s(&pki.leaf_key());
    let dave_chain = s(&pki.chain);
    world.ok(
        "verifier",
        &[
            "key",
            "add",
            "dave",
            "--key-file",
            &dave_key,
            "--cert",
            &dave_chain,
        ],
    );
    world.ok(
        "verifier",
        &[
            "key",
            "add",
            "erin",
            "--key-file",
            &s(&erin.key()),
            "--cert",
            &s(&erin_chain),
        ],
    );
    let root = s(&pki.root_cert());
    world.ok(
        "signer",
        &["cert", "add", "--type", "ca", "--store", "revocable", &root],
    );
    let config = std::fs::read_to_string(world.path("signer.json")).unwrap();
    std::fs::write(
        world.path("signer.json"),
        config.replacen(
            "\"keys\":{",
            r#""keys":{"revocable":{"signingKey":"release","required":1,"approversStore":"revocable","trustedIdentities":["*"]},"#,
            1,
        ),
    )
    .unwrap();
    let _service = world.serve();
    let image = world.image("revocable release");
    let id = world.request("revocable", &image);
    world.fails(
        "verifier",
        &["approval", "approve", &id, "--key", "dave"],
        "revoked",
    );
    assert_eq!(world.status(&id)["approvals"].as_array().unwrap().len(), 0);
    let approved = world.ok("verifier", &["approval", "approve", &id, "--key", "erin"]);
    assert!(approved.contains("it is now signed"), "{approved}");
}
