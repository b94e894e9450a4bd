#![allow(clippy::unwrap_used, reason = "tests fail loudly on setup errors")]
//! Revocation checking (OCSP and CRL) of signing and timestamping chains, driven through
//! the `hsm-notary` binary as a user would: a PKI made by `openssl`
//! ([`hsm_notary_suite::pki`]), OCSP answered by `openssl ocsp`, base and delta CRLs from a
//! loopback server that also fails on demand, notation's CRL cache and `cache crl`.
//!
//! Every verification ([`World::verify`]) runs three times: text output (what the
//! assertions read), then `-o json` on the wasm and on the native engine, whose stdout
//! must be identical and whose exit status must match the text run's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use hsm_notary_suite::pki::{
    CrlEntry, CrlSpec, INTERMEDIATE_SUBJECT, LEAF_SUBJECT, Locations, OcspResponder, Pki,
    PkiOptions, Reason, RevocationServer, TSA_INTERMEDIATE_SUBJECT, TsaPki, TsaPkiOptions,
    TsaServer, crl_cache_file, ocsp_url, unix_now,
};
use hsm_notary_suite::services::free_port;
use hsm_notary_suite::text;
use hsm_notary_suite::{binary, root};
use serde_json::Value;

/// The leaf's CRL (issued by the intermediate).
const LEAF_CRL: &str = "leaf.crl";
/// The delta CRL a leaf base CRL names in `freshestCRL`.
const LEAF_DELTA_CRL: &str = "leaf-delta.crl";
/// The intermediate's CRL (issued by the root).
const INTERMEDIATE_CRL: &str = "intermediate.crl";
/// The TSA intermediate's CRL (issued by the TSA root).
const TSA_INTERMEDIATE_CRL: &str = "tsa-intermediate.crl";
/// The TSA leaf's CRL (issued by the TSA intermediate).
const TSA_LEAF_CRL: &str = "tsa-leaf.crl";
/// What every unknown status says.
const UNKNOWN: &str = "revocation status is unknown";
/// The flags that keep tests against silent servers short.
const SHORT_TIMEOUTS: [&str; 4] = ["--ocsp-timeout", "500ms", "--crl-timeout", "1s"];

/// notation's message for a revoked certificate of the signing chain.
fn revoked(subject: &str) -> String {
    format!("signing certificate with subject {subject:?} is revoked")
}

/// notation's message for a certificate of the signing chain whose status is unknown.
fn unknown(subject: &str) -> String {
    format!("signing certificate with subject {subject:?} revocation status is unknown")
}

/// Which locations the signing chain's leaf and intermediate name.
#[derive(Clone, Copy, Debug)]
struct Setup {
    ocsp: bool,
    crl: bool,
}

const OCSP_AND_CRL: Setup = Setup {
    ocsp: true,
    crl: true,
};
const CRL_ONLY: Setup = Setup {
    ocsp: false,
    crl: true,
};
const OCSP_ONLY: Setup = Setup {
    ocsp: true,
    crl: false,
};
/// Non-revokable leaf and intermediate (for the TSA cases).
const NO_LOCATIONS: Setup = Setup {
    ocsp: false,
    crl: false,
};

/// Two distinct free ports on 127.0.0.1.
fn two_ports() -> (u16, u16) {
    for _ in 0..20 {
        let (a, b) = (free_port().unwrap(), free_port().unwrap());
        if a != b {
            return (a, b);
        }
    }
    panic!("no two distinct free ports");
}

/// A signing PKI whose revocation data is served on loopback, a configuration directory
/// with its key and root, a per-test `HSM_NOTARY_CACHE`, and an OCI layout to sign.
struct World {
    crl: Option<RevocationServer>,
    leaf_ocsp: Option<OcspResponder>,
    intermediate_ocsp: Option<OcspResponder>,
    crl_port: u16,
    pki: Pki,
    layout: PathBuf,
    digest: String,
    tsa_store: bool,
    work: tempfile::TempDir,
}

impl World {
    /// Certificates naming what `setup` says, fresh CRLs published, OCSP responders
    /// started, the key added and the root trusted; nothing signed yet.
    fn new(setup: Setup) -> Self {
        let work = tempfile::tempdir().unwrap();
        let crl = RevocationServer::start(&work.path().join("crl-server")).unwrap();
        let (leaf_ocsp_port, intermediate_ocsp_port) = two_ports();
        let locations = |ocsp_port: u16, crl_name: &str| Locations {
            ocsp: setup.ocsp.then(|| ocsp_url(ocsp_port)),
            crl: setup.crl.then(|| crl.url(crl_name)),
        };
        let pki = Pki::build(&PkiOptions {
            leaf: locations(leaf_ocsp_port, LEAF_CRL),
            intermediate: locations(intermediate_ocsp_port, INTERMEDIATE_CRL),
        })
        .unwrap();
        let (leaf_ocsp, intermediate_ocsp) = if setup.ocsp {
            (
                Some(OcspResponder::start(&pki.intermediate, leaf_ocsp_port).unwrap()),
                Some(OcspResponder::start(&pki.root, intermediate_ocsp_port).unwrap()),
            )
        } else {
            (None, None)
        };
        let layout = work.path().join("layout");
        copy_dir(
            &root().join("tests/conformance/cases/no-signature/oci-layout"),
            &layout,
        );
        let digest = tagged_digest(&layout, "v1");
        let world = Self {
            crl_port: crl.port(),
            crl: Some(crl),
            leaf_ocsp,
            intermediate_ocsp,
            pki,
            layout,
            digest,
            tsa_store: false,
            work,
        };
        world.publish_crls();
        std::fs::create_dir_all(world.cache()).unwrap();
        let key = world.pki.leaf_key().display().to_string();
        let chain = world.pki.chain.display().to_string();
        world.ok(&["key", "add", "rev", "--key-file", &key, "--cert", &chain]);
        let store = world.config().join("truststore/x509/ca/rev");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::copy(world.pki.root_cert(), store.join("root.pem")).unwrap();
        world
    }

    /// [`World::new`], then the layout signed with the leaf.
    fn signed(setup: Setup) -> Self {
        let world = Self::new(setup);
        let out = world.sign(&[]);
        assert!(out.status.success(), "sign failed:\n{}", text(&out));
        assert!(text(&out).contains("Successfully signed"), "{}", text(&out));
        world
    }

    fn config(&self) -> PathBuf {
        self.work.path().join("config")
    }

    /// `HSM_NOTARY_CACHE`: the compiled component and `crl/`.
    fn cache(&self) -> PathBuf {
        self.work.path().join("cache")
    }

    /// The CRL distribution point (panics once stopped).
    fn crl(&self) -> &RevocationServer {
        self.crl.as_ref().expect("the CRL server was stopped")
    }

    /// The URL certificates name for CRL `name` (also once the server is stopped).
    fn crl_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.crl_port)
    }

    fn leaf_ocsp(&self) -> &OcspResponder {
        self.leaf_ocsp.as_ref().expect("no leaf OCSP responder")
    }

    fn intermediate_ocsp(&self) -> &OcspResponder {
        self.intermediate_ocsp
            .as_ref()
            .expect("no intermediate OCSP responder")
    }

    /// CRLs from the current `openssl ca` indexes: the intermediate's as `leaf.crl`, the
    /// root's as `intermediate.crl`.
    fn publish_crls(&self) {
        let crl = self.crl();
        crl.publish(LEAF_CRL, &self.pki.intermediate.gencrl(24).unwrap())
            .unwrap();
        crl.publish(INTERMEDIATE_CRL, &self.pki.root.gencrl(24).unwrap())
            .unwrap();
    }

    /// Serve `bytes` as the leaf's CRL.
    fn publish_leaf_crl(&self, bytes: &[u8]) {
        self.crl().publish(LEAF_CRL, bytes).unwrap();
    }

    /// What is served at `name`.
    fn published(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.crl().dir().join(name)).unwrap()
    }

    /// Stop both OCSP responders: their ports refuse connections.
    fn stop_ocsp(&mut self) {
        self.leaf_ocsp = None;
        self.intermediate_ocsp = None;
    }

    /// Stop the CRL server: its port refuses connections.
    fn stop_crl(&mut self) {
        self.crl = None;
    }

    /// Remove the CRL cache, as on a machine that never fetched them.
    fn forget_cached_crls(&self) {
        match std::fs::remove_dir_all(self.cache().join("crl")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
            _ => {}
        }
    }

    /// Trust `root` as the `tsa:tsa-root` store; policies then name it.
    fn trust_tsa(&mut self, root: &Path) {
        let store = self.config().join("truststore/x509/tsa/tsa-root");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::copy(root, store.join("tsa-root.pem")).unwrap();
        self.tsa_store = true;
    }

    /// `hsm-notary --config-dir CONFIG ARGS` with this world's cache.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(binary())
            .arg("--config-dir")
            .arg(self.config())
            .args(args)
            .env("HSM_NOTARY_CACHE", self.cache())
            .output()
            .unwrap()
    }

    /// [`World::run`], which must succeed; its output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed:\n{}", text(&out));
        text(&out)
    }

    /// `sign --oci-layout -k rev EXTRA LAYOUT:v1`.
    fn sign(&self, extra: &[&str]) -> Output {
        let reference = format!("{}:v1", self.layout.display());
        let mut args = vec!["sign", "--oci-layout", "-k", "rev"];
        args.extend_from_slice(extra);
        args.push(&reference);
        self.run(&args)
    }

    /// The trust policy: one statement for `local/app` at `level`, trusting `ca:rev` (and
    /// `tsa:tsa-root` once trusted, with `verifyTimestamp: always`).
    fn write_policy(&self, level: &str) {
        let mut stores = vec!["ca:rev"];
        let mut verification = serde_json::json!({ "level": level });
        if self.tsa_store {
            stores.push("tsa:tsa-root");
            verification["verifyTimestamp"] = "always".into();
        }
        let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": "revocation",
            "registryScopes": ["local/app"],
            "signatureVerification": verification,
            "trustStores": stores,
            "trustedIdentities": ["*"],
        }]});
        std::fs::create_dir_all(self.config()).unwrap();
        std::fs::write(
            self.config().join("trustpolicy.oci.json"),
            serde_json::to_string_pretty(&policy).unwrap(),
        )
        .unwrap();
    }

    /// One `verify --oci-layout --scope local/app EXTRA LAYOUT@DIGEST` at `level`.
    fn verify_once(&self, level: &str, extra: &[&str]) -> Output {
        self.write_policy(level);
        let reference = format!("{}@{}", self.layout.display(), self.digest);
        let mut args = vec!["verify", "--oci-layout", "--scope", "local/app"];
        args.extend_from_slice(extra);
        args.push(&reference);
        self.run(&args)
    }

    /// [`World::verify_once`] with `-o json --engine ENGINE`.
    fn verify_json(&self, level: &str, engine: &str, extra: &[&str]) -> Output {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["-o", "json", "--engine", engine]);
        self.verify_once(level, &args)
    }

    /// Verify in text, then as JSON on both engines (which must agree byte for byte).
    fn verify(&self, level: &str, extra: &[&str]) -> Verdict {
        let shown = self.verify_once(level, extra);
        let wasm = self.verify_json(level, "wasm", extra);
        let native = self.verify_json(level, "native", extra);
        assert_eq!(
            String::from_utf8_lossy(&wasm.stdout),
            String::from_utf8_lossy(&native.stdout),
            "the wasm and native engines disagree (stderr: {} / {})",
            String::from_utf8_lossy(&wasm.stderr),
            String::from_utf8_lossy(&native.stderr)
        );
        for (name, json_run) in [("wasm", &wasm), ("native", &native)] {
            assert_eq!(
                json_run.status.success(),
                shown.status.success(),
                "-o json on {name} exited otherwise than the text run:\n{}\n---\n{}",
                text(json_run),
                text(&shown)
            );
        }
        let json: Value = serde_json::from_slice(&wasm.stdout)
            .unwrap_or_else(|e| panic!("-o json printed no JSON ({e}):\n{}", text(&wasm)));
        assert_eq!(
            json["decision"] != "failed",
            shown.status.success(),
            "decision {} but exit {:?}",
            json["decision"],
            shown.status
        );
        Verdict {
            success: shown.status.success(),
            stdout: String::from_utf8_lossy(&shown.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&shown.stderr).into_owned(),
            json,
        }
    }
}

/// What one verification showed.
struct Verdict {
    success: bool,
    stdout: String,
    stderr: String,
    json: Value,
}

impl Verdict {
    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Exit 0 and notation's success line.
    fn verified(&self) -> &Self {
        assert!(
            self.success && self.stdout.contains("Successfully verified signature for"),
            "expected a verified signature:\n{}",
            self.text()
        );
        self
    }

    /// A non-zero exit and notation's error.
    fn failed(&self) -> &Self {
        assert!(
            !self.success && self.stderr.contains("signature verification failed"),
            "expected a failed verification:\n{}",
            self.text()
        );
        self
    }

    /// The output contains `needle`.
    fn says(&self, needle: &str) -> &Self {
        assert!(
            self.text().contains(needle),
            "expected {needle:?} in:\n{}",
            self.text()
        );
        self
    }

    /// stderr has notation's warning for a logged revocation failure, saying `needle`.
    fn warns_logged(&self, needle: &str) -> &Self {
        let warning = self
            .stderr
            .lines()
            .find(|l| l.starts_with("Warning") && l.contains("revocation") && l.contains("log"));
        assert!(
            warning.is_some_and(|w| w.contains(needle)),
            "expected a logged revocation warning saying {needle:?} in:\n{}",
            self.text()
        );
        self
    }

    /// stderr has a warning mentioning `word` (case-insensitive).
    fn warns_about(&self, word: &str) -> &Self {
        let found = self.stderr.lines().any(|l| {
            let l = l.to_lowercase();
            l.contains("warning") && l.contains(&word.to_lowercase())
        });
        assert!(
            found,
            "expected a warning about {word:?} in:\n{}",
            self.text()
        );
        self
    }

    /// The revocation validation of the first signature in the JSON outcome.
    fn revocation(&self) -> &Value {
        self.json["signatures"][0]["results"]
            .as_array()
            .and_then(|results| results.iter().find(|r| r["check"] == "revocation"))
            .unwrap_or_else(|| panic!("no revocation result in {}", self.json))
    }

    /// The revocation validation passed.
    fn revocation_passed(&self) -> &Self {
        assert_eq!(
            self.revocation()["status"],
            "passed",
            "{}",
            self.revocation()
        );
        self
    }

    /// The revocation validation failed with `action`, its message saying `needle`.
    fn revocation_failed(&self, action: &str, needle: &str) -> &Self {
        let result = self.revocation();
        assert_eq!(result["status"], "failed", "{result}");
        assert_eq!(result["action"], action, "{result}");
        assert!(
            result["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle)),
            "expected {needle:?} in {result}"
        );
        self
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The digest `index.json` of the layout at `dir` gives tag `tag`.
fn tagged_digest(dir: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("no tag {tag} in {}", dir.display()))
        .to_owned()
}

// ---- OCSP ------------------------------------------------------------------------------

/// A leaf and intermediate that their OCSP responders call good verify under strict, and
/// no CRL is fetched.
#[test]
fn a_good_leaf_verifies_under_strict_via_ocsp() {
    let world = World::signed(OCSP_AND_CRL);
    world.verify("strict", &[]).verified().revocation_passed();
    assert!(
        !world.leaf_ocsp().requests().is_empty(),
        "the leaf's responder was not asked"
    );
    assert!(
        !world.intermediate_ocsp().requests().is_empty(),
        "the intermediate's responder was not asked"
    );
    assert_eq!(
        world.crl().requests(),
        Vec::<String>::new(),
        "a CRL was fetched though OCSP answered"
    );
}

/// notation's warning (notation-go#479) for a certificate below the root that names no
/// revocation location.
fn non_revokable(position: usize, subject: &str) -> String {
    format!(
        "Certificate #{position} in the chain with subject {subject:?} neither has an OCSP nor a CRL revocation method."
    )
}

/// A chain whose leaf and intermediate name neither OCSP nor CRL passes revocation even
/// under strict, as notation's does, but never silently (Quarkslab INFO-9): a warning on
/// stderr and in the JSON outcome names each such certificate, not the root.
#[test]
fn a_chain_without_revocation_locations_verifies_under_strict_with_a_warning_per_certificate() {
    let world = World::signed(NO_LOCATIONS);
    let verdict = world.verify("strict", &[]);
    verdict.verified().revocation_passed();
    for (position, subject) in [(1, LEAF_SUBJECT), (2, INTERMEDIATE_SUBJECT)] {
        let warning = format!("Warning: {}", non_revokable(position, subject));
        assert!(
            verdict.stderr.lines().any(|l| l == warning),
            "expected {warning:?} on stderr:\n{}",
            verdict.text()
        );
    }
    assert!(
        !verdict.stderr.contains("Certificate #3"),
        "the root is never revocation-checked, so never warned about:\n{}",
        verdict.text()
    );
    assert_eq!(
        verdict.revocation()["warnings"],
        serde_json::json!([
            non_revokable(1, LEAF_SUBJECT),
            non_revokable(2, INTERMEDIATE_SUBJECT)
        ]),
        "{}",
        verdict.json
    );
}

/// A chain whose certificates all name a location has nothing to warn about.
#[test]
fn a_chain_with_revocation_locations_has_no_non_revokable_warning() {
    let world = World::signed(OCSP_AND_CRL);
    let verdict = world.verify("strict", &[]);
    verdict.verified().revocation_passed();
    assert!(
        !verdict.stderr.contains("neither has an OCSP nor a CRL"),
        "{}",
        verdict.text()
    );
    assert!(
        verdict.revocation().get("warnings").is_none(),
        "{}",
        verdict.json
    );
}

/// A leaf its OCSP responder calls revoked fails strict, without the CRL (which still
/// lists nothing) being consulted.
#[test]
fn a_leaf_revoked_at_its_ocsp_responder_fails_strict() {
    let world = World::signed(OCSP_AND_CRL);
    world
        .pki
        .intermediate
        .revoke(&world.pki.leaf, Reason::KeyCompromise)
        .unwrap();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT))
        .revocation_failed("enforce", &revoked(LEAF_SUBJECT));
    assert_eq!(world.crl().fetches(LEAF_CRL), 0);
}

/// An intermediate the root's OCSP responder calls revoked fails strict, naming the
/// intermediate.
#[test]
fn a_revoked_intermediate_fails_strict_via_ocsp() {
    let world = World::signed(OCSP_AND_CRL);
    world
        .pki
        .root
        .revoke(&world.pki.intermediate.identity, Reason::CaCompromise)
        .unwrap();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(INTERMEDIATE_SUBJECT));
}

/// A certificate on hold at the OCSP responder is revoked; released, it verifies again
/// (OCSP answers are not cached).
#[test]
fn a_leaf_on_hold_at_its_ocsp_responder_is_revoked_until_released() {
    let world = World::signed(OCSP_AND_CRL);
    let (ca, leaf) = (&world.pki.intermediate, &world.pki.leaf);
    ca.revoke(leaf, Reason::CertificateHold).unwrap();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT));
    ca.unrevoke(leaf).unwrap();
    world.verify("strict", &[]).verified();
}

/// An OCSP "unknown" (the leaf is not in the responder's index) falls back to the CRL,
/// which decides: good, then revoked.
#[test]
fn an_ocsp_unknown_leaf_falls_back_to_the_crl() {
    let world = World::signed(OCSP_AND_CRL);
    world.pki.intermediate.forget(&world.pki.leaf).unwrap();
    world.publish_crls();
    world.verify("strict", &[]).verified().revocation_passed();
    assert!(
        world.crl().fetches(LEAF_CRL) >= 1,
        "the CRL was not fetched"
    );

    world.forget_cached_crls();
    let listed = world
        .pki
        .intermediate
        .crl(&CrlSpec {
            entries: vec![CrlEntry::of(&world.pki.leaf, "keyCompromise")],
            ..CrlSpec::default()
        })
        .unwrap();
    world.publish_leaf_crl(&listed);
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT));
}

/// An OCSP "unknown" with no CRL to fall back to is unknown: strict fails, permissive
/// logs it.
#[test]
fn an_ocsp_unknown_leaf_without_a_crl_is_unknown() {
    let world = World::signed(OCSP_ONLY);
    world.pki.intermediate.forget(&world.pki.leaf).unwrap();
    world
        .verify("strict", &[])
        .failed()
        .says(&unknown(LEAF_SUBJECT))
        .revocation_failed("enforce", UNKNOWN);
    world
        .verify("permissive", &[])
        .verified()
        .warns_logged(UNKNOWN)
        .revocation_failed("log", UNKNOWN);
}

// ---- CRL -------------------------------------------------------------------------------

/// With the OCSP responders down, good CRLs decide and the signature verifies.
#[test]
fn with_the_ocsp_responders_down_a_good_crl_verifies() {
    let mut world = World::signed(OCSP_AND_CRL);
    world.stop_ocsp();
    world.verify("strict", &[]).verified().revocation_passed();
    assert!(world.crl().fetches(LEAF_CRL) >= 1);
    assert!(world.crl().fetches(INTERMEDIATE_CRL) >= 1);
}

/// With the OCSP responders down, a CRL listing the leaf fails strict.
#[test]
fn with_the_ocsp_responders_down_a_crl_listing_the_leaf_fails_strict() {
    let mut world = World::signed(OCSP_AND_CRL);
    world.stop_ocsp();
    world
        .pki
        .intermediate
        .revoke(&world.pki.leaf, Reason::KeyCompromise)
        .unwrap();
    world.publish_crls();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT));
}

/// In a CRL-only chain a listed leaf fails strict, and permissive only logs it.
#[test]
fn a_leaf_revoked_in_a_crl_only_chain_fails_strict_and_is_logged_under_permissive() {
    let world = World::signed(CRL_ONLY);
    world
        .pki
        .intermediate
        .revoke(&world.pki.leaf, Reason::KeyCompromise)
        .unwrap();
    world.publish_crls();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT))
        .revocation_failed("enforce", &revoked(LEAF_SUBJECT));
    world
        .verify("permissive", &[])
        .verified()
        .warns_logged(&revoked(LEAF_SUBJECT))
        .revocation_failed("log", &revoked(LEAF_SUBJECT));
}

/// An intermediate listed in the root's CRL fails strict, naming the intermediate.
#[test]
fn a_revoked_intermediate_fails_strict_via_crl() {
    let world = World::signed(CRL_ONLY);
    world
        .pki
        .root
        .revoke(&world.pki.intermediate.identity, Reason::KeyCompromise)
        .unwrap();
    world.publish_crls();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(INTERMEDIATE_SUBJECT));
}

/// For the `notary.x509` scheme the signing time is not authentic, so a revocation whose
/// invalidity date is after the signing still counts (as in notation).
#[test]
fn a_revocation_dated_after_the_signing_still_counts_for_notary_x509() {
    let world = World::signed(CRL_ONLY);
    world
        .pki
        .intermediate
        .revoke(
            &world.pki.leaf,
            Reason::KeyCompromiseSince(unix_now() + 3600),
        )
        .unwrap();
    world.publish_crls();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT));
}

/// A CRL past its nextUpdate is no evidence: the status is unknown.
#[test]
fn a_crl_past_its_next_update_leaves_the_status_unknown() {
    let world = World::signed(CRL_ONLY);
    let now = unix_now();
    let expired = world
        .pki
        .intermediate
        .gencrl_between(now - 7200, now - 3600)
        .unwrap();
    world.publish_leaf_crl(&expired);
    world
        .verify("strict", &[])
        .failed()
        .says(&unknown(LEAF_SUBJECT));
}

/// A CRL issued by another CA, or naming the intermediate but signed with another key, is
/// no evidence: the status is unknown.
#[test]
fn a_crl_signed_by_another_ca_leaves_the_status_unknown() {
    let world = World::signed(CRL_ONLY);
    world.publish_leaf_crl(&world.pki.other.gencrl(24).unwrap());
    world
        .verify("strict", &[])
        .failed()
        .says(&unknown(LEAF_SUBJECT));

    world.forget_cached_crls();
    let impostor = world
        .pki
        .intermediate
        .crl(&CrlSpec {
            signed_by: Some(world.pki.other.key()),
            ..CrlSpec::default()
        })
        .unwrap();
    world.publish_leaf_crl(&impostor);
    world
        .verify("strict", &[])
        .failed()
        .says(&unknown(LEAF_SUBJECT));
}

/// A CRL whose signature was altered is no evidence: the status is unknown.
#[test]
fn a_crl_with_a_corrupted_signature_leaves_the_status_unknown() {
    let world = World::signed(CRL_ONLY);
    let corrupted = world
        .pki
        .intermediate
        .crl(&CrlSpec {
            corrupt_signature: true,
            ..CrlSpec::default()
        })
        .unwrap();
    world.publish_leaf_crl(&corrupted);
    world
        .verify("strict", &[])
        .failed()
        .says(&unknown(LEAF_SUBJECT));
}

/// A delta CRL (named by the base's freshestCRL) revoking a leaf its base does not list
/// fails strict; with an empty delta the leaf verifies.
#[test]
fn a_delta_crl_revokes_a_leaf_its_base_does_not_list() {
    let world = World::signed(CRL_ONLY);
    let ca = &world.pki.intermediate;
    let base = ca
        .crl(&CrlSpec {
            number: 10,
            freshest: vec![world.crl_url(LEAF_DELTA_CRL)],
            ..CrlSpec::default()
        })
        .unwrap();
    let delta = |number: u64, entries: Vec<CrlEntry>| {
        ca.crl(&CrlSpec {
            number,
            delta_of: Some(10),
            from_index: false,
            entries,
            ..CrlSpec::default()
        })
        .unwrap()
    };
    world.publish_leaf_crl(&base);
    world
        .crl()
        .publish(LEAF_DELTA_CRL, &delta(11, Vec::new()))
        .unwrap();
    world.verify("strict", &[]).verified();
    assert!(
        world.crl().fetches(LEAF_DELTA_CRL) >= 1,
        "the delta CRL was not fetched"
    );

    world.forget_cached_crls();
    let revoking = delta(12, vec![CrlEntry::of(&world.pki.leaf, "keyCompromise")]);
    world.crl().publish(LEAF_DELTA_CRL, &revoking).unwrap();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT));
}

/// A hold in the base CRL revokes; a later removeFromCRL entry in the delta lifts it.
#[test]
fn a_certificate_hold_lifted_by_remove_from_crl_in_a_delta_verifies() {
    let world = World::signed(CRL_ONLY);
    let ca = &world.pki.intermediate;
    let leaf = &world.pki.leaf;
    let base = ca
        .crl(&CrlSpec {
            number: 20,
            freshest: vec![world.crl_url(LEAF_DELTA_CRL)],
            entries: vec![CrlEntry::of(leaf, "certificateHold").at(-120)],
            ..CrlSpec::default()
        })
        .unwrap();
    let delta = |number: u64, entries: Vec<CrlEntry>| {
        ca.crl(&CrlSpec {
            number,
            delta_of: Some(20),
            from_index: false,
            entries,
            ..CrlSpec::default()
        })
        .unwrap()
    };
    world.publish_leaf_crl(&base);
    world
        .crl()
        .publish(LEAF_DELTA_CRL, &delta(21, Vec::new()))
        .unwrap();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT));

    world.forget_cached_crls();
    let lifted = delta(22, vec![CrlEntry::of(leaf, "removeFromCRL").at(-10)]);
    world.crl().publish(LEAF_DELTA_CRL, &lifted).unwrap();
    world.verify("strict", &[]).verified();
}

// ---- failing servers -------------------------------------------------------------------

/// A distribution point answering 404, 500, a redirect to nowhere, bytes that are not a
/// CRL, or nothing leaves the status unknown under strict.
#[test]
fn crl_servers_that_fail_or_answer_garbage_leave_the_status_unknown() {
    let world = World::signed(CRL_ONLY);
    let redirect = format!("301 {}", world.crl_url("moved-away.crl"));
    for behaviour in ["404", "500", redirect.as_str(), "garbage", "empty"] {
        world.forget_cached_crls();
        world.crl().set_behaviour(LEAF_CRL, behaviour).unwrap();
        let verdict = world.verify("strict", &[]);
        assert!(
            !verdict.success,
            "{behaviour}: verified:\n{}",
            verdict.text()
        );
        verdict.failed().says(&unknown(LEAF_SUBJECT));
    }
}

/// Quarkslab INFO-10: only a 200 answer is a CRL; the real CRL sent with another 2xx is
/// not used.
#[test]
fn a_crl_answered_with_a_2xx_other_than_200_is_not_used() {
    let world = World::signed(CRL_ONLY);
    for behaviour in ["203 real", "206 real"] {
        world.forget_cached_crls();
        world.crl().set_behaviour(LEAF_CRL, behaviour).unwrap();
        world
            .verify("strict", &[])
            .failed()
            .says(&unknown(LEAF_SUBJECT));
    }
    // The same CRL with 200 is used: the refusal is the status, not the body.
    world.forget_cached_crls();
    world.crl().set_behaviour(LEAF_CRL, "ok").unwrap();
    world.verify("strict", &[]).verified();
}

/// An oversized CRL (40 MiB, or a body without end) is refused in bounded time: unknown.
#[test]
fn an_oversized_crl_leaves_the_status_unknown() {
    let world = World::signed(CRL_ONLY);
    for behaviour in ["huge", "endless"] {
        world.forget_cached_crls();
        world.crl().set_behaviour(LEAF_CRL, behaviour).unwrap();
        let started = Instant::now();
        let once = world.verify_once("strict", &["--crl-timeout", "5s"]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{behaviour}: took {:?}",
            started.elapsed()
        );
        assert!(!once.status.success(), "{behaviour}: verified");
        world
            .verify("strict", &["--crl-timeout", "5s"])
            .failed()
            .says(&unknown(LEAF_SUBJECT));
    }
}

/// OCSP responders and distribution points that never answer (or trickle) time out as
/// `--ocsp-timeout` / `--crl-timeout` say: unknown, quickly.
#[test]
fn servers_that_never_answer_time_out_and_leave_the_status_unknown() {
    let world = World::signed(OCSP_AND_CRL);
    world.leaf_ocsp().set_behaviour("hang").unwrap();
    world.intermediate_ocsp().set_behaviour("hang").unwrap();
    for behaviour in ["hang", "slow"] {
        world.forget_cached_crls();
        world.crl().set_behaviour_all(behaviour).unwrap();
        let started = Instant::now();
        let once = world.verify_once("strict", &SHORT_TIMEOUTS);
        // Two certificates, each at most 0.5 s of OCSP and 1 s of CRL, even one after the
        // other (3 s); the default timeouts would take 14 s. A bound on hanging, not a
        // performance figure.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{behaviour}: took {:?}:\n{}",
            started.elapsed(),
            text(&once)
        );
        assert!(!once.status.success(), "{behaviour}: verified");
        world
            .verify("strict", &SHORT_TIMEOUTS)
            .failed()
            .says(UNKNOWN);
    }
}

/// With every OCSP responder and the CRL server unreachable, strict fails and permissive
/// verifies with a logged warning.
#[test]
fn with_ocsp_and_crl_unreachable_strict_fails_and_permissive_warns() {
    let mut world = World::signed(OCSP_AND_CRL);
    world.stop_ocsp();
    world.stop_crl();
    world
        .verify("strict", &[])
        .failed()
        .says(&unknown(LEAF_SUBJECT))
        .revocation_failed("enforce", UNKNOWN);
    world
        .verify("permissive", &[])
        .verified()
        .warns_logged(UNKNOWN)
        .revocation_failed("log", UNKNOWN);
}

// ---- the CRL cache ---------------------------------------------------------------------

/// A fetched CRL is cached in notation's format, reused without a fetch, listed by `cache
/// crl list` and removed by `cache crl purge`.
#[test]
fn a_cached_crl_is_reused_without_a_fetch_then_listed_and_purged() {
    let world = World::signed(CRL_ONLY);
    let first = world.verify_once("strict", &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(world.crl().fetches(LEAF_CRL), 1);
    assert_eq!(world.crl().fetches(INTERMEDIATE_CRL), 1);

    // notation's cache file: crl/<hex sha256(url)> = {"baseCRL": "<base64 DER>"}.
    let leaf_url = world.crl_url(LEAF_CRL);
    let intermediate_url = world.crl_url(INTERMEDIATE_CRL);
    let file = crl_cache_file(&world.cache(), &leaf_url);
    let content: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let base = Base64::decode_vec(content["baseCRL"].as_str().unwrap()).unwrap();
    assert_eq!(base, world.published(LEAF_CRL));
    assert!(crl_cache_file(&world.cache(), &intermediate_url).exists());

    let requests = world.crl().requests();
    let second = world.verify_once("strict", &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(
        world.crl().requests(),
        requests,
        "a cached CRL was fetched again"
    );

    let listed = world.ok(&["cache", "crl", "list"]);
    assert!(
        listed.contains(&leaf_url) && listed.contains(&intermediate_url),
        "{listed}"
    );
    world.ok(&["cache", "crl", "purge"]);
    assert!(!file.exists(), "purge left {}", file.display());
    let listed = world.ok(&["cache", "crl", "list"]);
    assert!(!listed.contains(&leaf_url), "{listed}");

    let third = world.verify_once("strict", &[]);
    assert!(third.status.success(), "{}", text(&third));
    assert_eq!(world.crl().fetches(LEAF_CRL), 2);
    world.verify("strict", &[]).verified();
}

/// A cache file holding garbage is ignored with a warning, the CRL fetched again and the
/// file rewritten.
#[test]
fn a_corrupted_cache_file_is_refetched_with_a_warning() {
    let world = World::signed(CRL_ONLY);
    let first = world.verify_once("strict", &[]);
    assert!(first.status.success(), "{}", text(&first));
    let file = crl_cache_file(&world.cache(), &world.crl_url(LEAF_CRL));
    assert!(file.exists(), "no cache file {}", file.display());
    std::fs::write(&file, b"\x00{not json").unwrap();

    let fetched = world.crl().fetches(LEAF_CRL);
    let verdict = world.verify("strict", &[]);
    verdict.verified().warns_about("cache");
    assert!(
        world.crl().fetches(LEAF_CRL) > fetched,
        "the CRL was not fetched again"
    );
    let content: Value = serde_json::from_slice(&std::fs::read(&file).unwrap())
        .expect("the cache file was not rewritten");
    assert!(content["baseCRL"].is_string(), "{content}");
}

/// A cache directory that cannot be created (`$HSM_NOTARY_CACHE/crl` is a file; the
/// tests run as root, so permissions would not stop it) only warns: fetched CRLs decide.
#[test]
fn an_unwritable_cache_directory_only_warns() {
    let world = World::signed(CRL_ONLY);
    world.forget_cached_crls();
    std::fs::write(world.cache().join("crl"), b"not a directory").unwrap();
    world
        .verify("strict", &[])
        .verified()
        .warns_about("cache")
        .revocation_passed();
    assert!(
        world.crl().fetches(LEAF_CRL) >= 3,
        "three runs with nowhere to cache should fetch three times: {:?}",
        world.crl().requests()
    );
}

/// `cache crl import` fills the cache, so verification succeeds with the distribution
/// point down; a file that is not a CRL is refused.
#[test]
fn an_imported_crl_lets_verify_succeed_with_the_distribution_point_down() {
    let mut world = World::signed(CRL_ONLY);
    let files = world.work.path().join("crls");
    std::fs::create_dir_all(&files).unwrap();
    let mut imports = Vec::new();
    for name in [LEAF_CRL, INTERMEDIATE_CRL] {
        let path = files.join(name);
        std::fs::write(&path, world.published(name)).unwrap();
        imports.push((path.display().to_string(), world.crl_url(name)));
    }
    world.stop_crl();
    world
        .verify("strict", &[])
        .failed()
        .says(&unknown(LEAF_SUBJECT));

    for (path, url) in &imports {
        world.ok(&["cache", "crl", "import", path, "--url", url]);
    }
    world.verify("strict", &[]).verified().revocation_passed();
    let listed = world.ok(&["cache", "crl", "list"]);
    assert!(
        imports.iter().all(|(_, url)| listed.contains(url.as_str())),
        "{listed}"
    );

    let garbage = files.join("garbage.crl");
    std::fs::write(&garbage, b"not a CRL").unwrap();
    let refused = world.run(&[
        "cache",
        "crl",
        "import",
        &garbage.display().to_string(),
        "--url",
        &world.crl_url("garbage.crl"),
    ]);
    assert!(
        !refused.status.success(),
        "a file that is not a CRL was imported"
    );
}

// ---- timestamping chains ---------------------------------------------------------------

/// A world whose signing chain names no locations, a TSA chain whose intermediate and
/// leaf name CRLs on the world's server (published, good), the TSA root trusted, and the
/// TSA answering.
fn tsa_world() -> (World, TsaPki, TsaServer) {
    tsa_world_with(NO_LOCATIONS)
}

/// [`tsa_world`] with a signing chain set up as `setup` says.
fn tsa_world_with(setup: Setup) -> (World, TsaPki, TsaServer) {
    let mut world = World::new(setup);
    let tsa = TsaPki::build(&TsaPkiOptions {
        intermediate: Locations::crl(world.crl_url(TSA_INTERMEDIATE_CRL)),
        leaf: Locations::crl(world.crl_url(TSA_LEAF_CRL)),
    })
    .unwrap();
    world
        .crl()
        .publish(TSA_INTERMEDIATE_CRL, &tsa.root.gencrl(24).unwrap())
        .unwrap();
    world
        .crl()
        .publish(TSA_LEAF_CRL, &tsa.intermediate.gencrl(24).unwrap())
        .unwrap();
    world.trust_tsa(&tsa.root_cert());
    let server = TsaServer::start(&tsa).unwrap();
    (world, tsa, server)
}

fn sign_timestamped(world: &World, tsa: &TsaPki, server: &TsaServer) -> Output {
    let root = tsa.root_cert().display().to_string();
    world.sign(&[
        "--timestamp-url",
        &server.url,
        "--timestamp-root-cert",
        &root,
    ])
}

/// notation's message for a revoked certificate of a timestamping chain.
fn timestamping_revoked(subject: &str) -> String {
    format!("timestamping certificate with subject {subject:?} is revoked")
}

/// A timestamp from a TSA whose chain's CRLs say good signs and verifies under strict.
#[test]
fn a_timestamp_from_a_tsa_with_good_crls_verifies_under_strict() {
    let (world, tsa, server) = tsa_world();
    let signed = sign_timestamped(&world, &tsa, &server);
    assert!(signed.status.success(), "{}", text(&signed));
    world.verify("strict", &[]).verified();
    assert!(
        world.crl().fetches(TSA_INTERMEDIATE_CRL) >= 1,
        "the TSA intermediate's CRL was never fetched"
    );
}

/// A timestamp whose TSA intermediate was revoked after signing fails verification,
/// naming the TSA intermediate.
#[test]
fn a_timestamp_whose_tsa_intermediate_was_revoked_fails_verification() {
    let (world, tsa, server) = tsa_world();
    let signed = sign_timestamped(&world, &tsa, &server);
    assert!(signed.status.success(), "{}", text(&signed));
    tsa.root
        .revoke(&tsa.intermediate.identity, Reason::KeyCompromise)
        .unwrap();
    world
        .crl()
        .publish(TSA_INTERMEDIATE_CRL, &tsa.root.gencrl(24).unwrap())
        .unwrap();
    // `sign` may have cached the CRL that still said good.
    world.forget_cached_crls();
    world
        .verify("strict", &[])
        .failed()
        .says(&timestamping_revoked(TSA_INTERMEDIATE_SUBJECT));
}

/// Signing with a TSA whose intermediate is revoked is refused and writes nothing.
#[test]
fn signing_with_a_revoked_tsa_intermediate_is_refused() {
    let (world, tsa, server) = tsa_world();
    tsa.root
        .revoke(&tsa.intermediate.identity, Reason::KeyCompromise)
        .unwrap();
    world
        .crl()
        .publish(TSA_INTERMEDIATE_CRL, &tsa.root.gencrl(24).unwrap())
        .unwrap();
    let index = std::fs::read(world.layout.join("index.json")).unwrap();
    let signed = sign_timestamped(&world, &tsa, &server);
    assert!(!signed.status.success(), "signed:\n{}", text(&signed));
    assert!(
        text(&signed).contains(&timestamping_revoked(TSA_INTERMEDIATE_SUBJECT)),
        "{}",
        text(&signed)
    );
    assert_eq!(
        std::fs::read(world.layout.join("index.json")).unwrap(),
        index,
        "a refused sign changed the layout"
    );
}

/// A leaf revoked with an `invalidityDate` after its timestamped signature was made still
/// verifies: the timestamp proves the signature came first (§Revocation Checking with
/// CRL). One invalid since before the signature is revoked.
#[test]
fn a_revocation_after_a_timestamped_signature_does_not_count_against_it() {
    let (world, tsa, server) = tsa_world_with(CRL_ONLY);
    world.publish_crls();
    let signed = sign_timestamped(&world, &tsa, &server);
    assert!(signed.status.success(), "{}", text(&signed));
    world
        .pki
        .intermediate
        .revoke(
            &world.pki.leaf,
            Reason::KeyCompromiseSince(unix_now() + 3600),
        )
        .unwrap();
    world.publish_crls();
    world.forget_cached_crls();
    world.verify("strict", &[]).verified();
}

/// The same leaf, invalid since before the timestamp, is revoked.
#[test]
fn a_revocation_before_a_timestamped_signature_counts_against_it() {
    let (world, tsa, server) = tsa_world_with(CRL_ONLY);
    world.publish_crls();
    let signed = sign_timestamped(&world, &tsa, &server);
    assert!(signed.status.success(), "{}", text(&signed));
    world
        .pki
        .intermediate
        .revoke(
            &world.pki.leaf,
            Reason::KeyCompromiseSince(unix_now() - 3600),
        )
        .unwrap();
    world.publish_crls();
    world.forget_cached_crls();
    world
        .verify("strict", &[])
        .failed()
        .says(&revoked(LEAF_SUBJECT));
}
