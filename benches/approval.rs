//! The multi-party approval workflow, measured with real parts (the world of
//! tests/support/approval.rs: `signer serve` with its key in SoftHSM2, 2-of-3 approvers,
//! docker-registry, TLS 1.3 with client certificates):
//!
//! - **end to end, as a team runs it**: `sign --signer` (request) → `approval approve` ×2
//!   → `sign --request` (push), each a whole CLI process, per step and in total;
//! - **the service alone**, one keep-alive TLS connection per client: requests made per
//!   second, requests read per second, the same with 4 clients at once, and approvals
//!   decided per second (each checked by the verifier component; every second one
//!   completes a quorum, so the HSM signs).
//!
//! `cargo bench --bench approval`. Reports to stdout and `target/approval-bench.txt`.
//! Wall-clock figures on a shared machine: read them as ratios within one run.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use hsm_notary::approval::{self, Decision};
use hsm_notary::cli::SignerArgs;
use hsm_notary::signer::client::Client;
use hsm_notary_suite::approval::World;
use serde_json::{Value, json};

const ROUNDS: usize = 5;
const CALLS: usize = 200;
const DECIDED: usize = 20;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn client(world: &World, who: &str) -> Client {
    Client::new(&SignerArgs {
        url: Some(format!("https://127.0.0.1:{}", world.port)),
        cert: Some(world.path(&format!("{who}-tls/cert.pem"))),
        key: Some(world.path(&format!("{who}-tls/key.pem"))),
        ca: Some(world.path("tls-ca/cert.pem")),
    })
    .unwrap()
}

fn new_request(client: &Client, n: usize) -> Value {
    let digest = hsm_notary::oci::sha256_digest(format!("artifact {n}").as_bytes());
    client
        .post(
            "v1/requests",
            &json!({
                "key": "release",
                "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 100},
                "format": "jws",
            }),
        )
        .unwrap()
}

fn main() {
    let world = World::new();
    let _service = world.serve();
    let mut report = String::new();
    let mut line = |text: String| {
        println!("{text}");
        report.push_str(&text);
        report.push('\n');
    };

    // End to end, whole processes.
    let mut steps: [Vec<Duration>; 4] = Default::default();
    let mut totals = Vec::new();
    for round in 0..ROUNDS {
        let image = world.image(&format!("bench release {round}"));
        let start = Instant::now();
        let id = world.request("release", &image);
        let requested = Instant::now();
        world.approve("alice", &id);
        let first = Instant::now();
        world.approve("bob", &id);
        let second = Instant::now();
        world.ok("ci", &["sign", "--request", &id, &image]);
        let pushed = Instant::now();
        steps[0].push(requested - start);
        steps[1].push(first - requested);
        steps[2].push(second - first);
        steps[3].push(pushed - second);
        totals.push(pushed - start);
    }
    line(format!(
        "approval workflow end to end (median of {ROUNDS}, whole CLI processes): {}",
        ms(median(totals))
    ));
    for (name, samples) in [
        "request (sign --signer)",
        "first approval (approval approve)",
        "second approval, HSM signs (approval approve)",
        "push (sign --request)",
    ]
    .iter()
    .zip(steps)
    {
        line(format!("  {name}: {}", ms(median(samples))));
    }

    // The service alone.
    let ci = client(&world, "ci");
    let start = Instant::now();
    let ids: Vec<String> = (0..CALLS)
        .map(|n| new_request(&ci, n)["id"].as_str().unwrap().to_owned())
        .collect();
    let made = start.elapsed();
    let start = Instant::now();
    for id in &ids {
        ci.get(&format!("v1/requests/{id}")).unwrap();
    }
    let read = start.elapsed();
    let per_second = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    line(format!(
        "service: {:.0} requests made/s, {:.0} requests read/s (one client, {CALLS} calls each)",
        per_second(CALLS, made),
        per_second(CALLS, read)
    ));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let world = &world;
            scope.spawn(move || {
                let client = client(world, "ci");
                for n in 0..CALLS / 4 {
                    new_request(&client, 10_000 + t * 1000 + n);
                }
            });
        }
    });
    let concurrent = start.elapsed();
    line(format!(
        "service: {:.0} requests made/s with 4 clients at once ({CALLS} in all)",
        per_second(CALLS, concurrent)
    ));

    // Decisions: approvals made in this process (alice's and bob's file keys), posted.
    let keys = |who: &str| {
        hsm_notary::config::keys::KeyList::load(&world.path(who))
            .unwrap()
            .get(Some(who))
            .unwrap()
            .open(None)
            .unwrap()
    };
    let (alice, bob) = (keys("alice"), keys("bob"));
    let now = notary_verifier::Instant::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        0,
    );
    let sign = |key: &hsm_notary::sign::SigningKey, bytes: &[u8]| {
        let target = approval::approval_target(bytes, Decision::Approve, "sha256").unwrap();
        let signed = hsm_notary::sign::sign_descriptor(
            key,
            notary_verifier::sign::Format::Jws,
            &target,
            None,
            now,
            None,
        )
        .unwrap();
        json!({"mediaType": signed.media_type, "envelope": approval::to_base64(&signed.envelope)})
    };
    let pending: Vec<(String, Value, Value)> = ids[..DECIDED]
        .iter()
        .map(|id| {
            let request = ci.get(&format!("v1/requests/{id}")).unwrap();
            let bytes = approval::from_base64(request["request"].as_str().unwrap()).unwrap();
            (id.clone(), sign(&alice, &bytes), sign(&bob, &bytes))
        })
        .collect();
    let approver = client(&world, "verifier");
    let mut first = Vec::new();
    let mut quorum = Vec::new();
    let start = Instant::now();
    for (id, a, b) in &pending {
        let t = Instant::now();
        approver
            .post(&format!("v1/requests/{id}/decisions"), a)
            .unwrap();
        first.push(t.elapsed());
        let t = Instant::now();
        let answer = approver
            .post(&format!("v1/requests/{id}/decisions"), b)
            .unwrap();
        assert_eq!(answer["status"], "signed", "{answer}");
        quorum.push(t.elapsed());
    }
    let decided = start.elapsed();
    line(format!(
        "service: {:.1} approvals decided/s ({} approvals, {DECIDED} signatures by the HSM); one approval checked {}, the quorum's approval checked and signed {}",
        per_second(2 * DECIDED, decided),
        2 * DECIDED,
        ms(median(first)),
        ms(median(quorum))
    ));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/approval-bench.txt");
    std::fs::write(path, report).unwrap();
}
