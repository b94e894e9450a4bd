//! The memos of verified certificate and CRL signatures (`notary_verifier::signature::memo`)
//! and of parsed certificates (under the same switch) never change a decision: the
//! conformance corpus decides identically with them off, cold and warm, and a remembered
//! signature vouches for nothing but the exact certificate or CRL and issuer it was
//! computed for.
//!
//! One test per file section, run in order in one test function where they share the
//! process-wide memo (the switch is process-wide).

#![allow(clippy::unwrap_used, reason = "test code")]

use hsm_notary::engine::{NativeEngine, Verifier};
use hsm_notary_suite::pki::{Ca, IssueSpec, Locations, Profile};
use hsm_notary_suite::{cases, run};
use notary_verifier::revocation::crl::Crl;
use notary_verifier::signature::memo;
use notary_verifier::x509::{Cert, parse_certificates};

fn observations(
    order: impl Iterator<Item = usize>,
    corpus: &[hsm_notary_suite::Case],
) -> Vec<(usize, String)> {
    let mut seen: Vec<(usize, String)> = order
        .map(|i| {
            let case = &corpus[i];
            let observed = run(case, &NativeEngine as &dyn Verifier)
                .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
            (i, observed.observation)
        })
        .collect();
    seen.sort();
    seen
}

fn one(pem: &[u8]) -> Cert {
    parse_certificates(pem).unwrap().remove(0)
}

#[test]
fn remembered_signatures_decide_exactly_as_computed_ones() {
    // Property: over every case of the corpus (real notation signatures, good and bad),
    // the outcome with the memo off equals the outcome with it on, whether the memo starts
    // empty or holds every pair the corpus verified, and in either order of cases.
    let corpus = cases().unwrap();
    memo::set_enabled(false);
    let before = memo::hits();
    let computed = observations(0..corpus.len(), &corpus);
    assert_eq!(memo::hits(), before, "the memo answered while off");

    memo::set_enabled(true);
    let cold = observations(0..corpus.len(), &corpus);
    let after_cold = memo::hits();
    let warm = observations((0..corpus.len()).rev(), &corpus);
    assert!(
        memo::hits() > after_cold && after_cold > before,
        "the corpus repeats chains, so the memo must have answered"
    );
    for ((i, off), ((_, c), (_, w))) in computed.iter().zip(cold.iter().zip(&warm)) {
        assert_eq!(
            off, c,
            "{}: memo cold differs from no memo",
            corpus[*i].name
        );
        assert_eq!(
            off, w,
            "{}: memo warm differs from no memo",
            corpus[*i].name
        );
    }

    // A remembered pair vouches for that pair only: a root with the same name but another
    // key, or the same leaf with one bit of its signature changed, is checked afresh.
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root(dir.path(), "root", "CN=Root,O=Memo").unwrap();
    let twin = Ca::root(dir.path(), "twin", "CN=Root,O=Memo").unwrap();
    let leaf = root
        .issue(&IssueSpec {
            name: "leaf".to_owned(),
            subject: "CN=Leaf,O=Memo".to_owned(),
            profile: Profile::CodeSigning,
            locations: Locations::none(),
            days: 30,
        })
        .unwrap();
    let root_cert = one(&std::fs::read(root.cert()).unwrap());
    let twin_cert = one(&std::fs::read(twin.cert()).unwrap());
    let leaf_pem = std::fs::read(leaf.cert()).unwrap();
    let leaf_cert = one(&leaf_pem);
    assert_eq!(leaf_cert.issuer, twin_cert.subject);
    leaf_cert.check_signature_from(&root_cert).unwrap();
    let hits = memo::hits();
    leaf_cert.check_signature_from(&root_cert).unwrap();
    assert_eq!(memo::hits(), hits + 1, "the second check is remembered");
    assert!(leaf_cert.check_signature_from(&twin_cert).is_err());

    let mut der = leaf_cert.der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 1;
    let forged = Cert::from_der(&der).unwrap();
    assert!(
        forged.check_signature_from(&root_cert).is_err(),
        "a changed signature verifies because its twin was remembered"
    );

    // A CRL's signature likewise: remembered for that CRL and that issuer only.
    let crl_der = root.gencrl(24).unwrap();
    let crl = Crl::parse(&crl_der).unwrap();
    crl.check_issuer(&root_cert).unwrap();
    let hits = memo::hits();
    crl.check_issuer(&root_cert).unwrap();
    assert_eq!(memo::hits(), hits + 1, "the second CRL check is remembered");
    assert!(
        crl.check_issuer(&twin_cert).is_err(),
        "a CRL verifies under a same-named issuer with another key"
    );
    let mut der = crl_der.clone();
    let last = der.len() - 1;
    der[last] ^= 1;
    assert!(
        Crl::parse(&der).unwrap().check_issuer(&root_cert).is_err(),
        "a CRL with a changed signature verifies because its twin was remembered"
    );
}
