//! The distinguished-name parser of `x509.subject:` trusted identities
//! (`trustpolicy::identity::parse_distinguished_name`), the subset match between two DNs
//! (`is_subset`), and the identity-list rules (`trustpolicy::validate::trusted_identities`:
//! wildcard, prefix, empty value, overlap) with each input line as one identity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::trustpolicy::identity::{is_subset, parse_distinguished_name};
use notary_verifier::trustpolicy::validate::trusted_identities;

fuzz_target!(|data: &[u8]| {
    let Some(text) = hsm_notary_fuzz::text(data) else {
        return;
    };
    let _ = parse_distinguished_name(text);
    // First line and the rest as two DNs.
    if let Some((first, second)) = text.split_once('\n') {
        if let (Ok(a), Ok(b)) = (
            parse_distinguished_name(first),
            parse_distinguished_name(second),
        ) {
            let _ = is_subset(&a, &b);
            let _ = is_subset(&b, &a);
        }
    }
    // Every line as an identity, as written in a trust policy (with or without the
    // `x509.subject:` prefix: a line without a prefix exercises the separator rule).
    let identities: Vec<String> = text.lines().map(str::to_owned).collect();
    let _ = trusted_identities("fuzz", &identities);
    let _ = trusted_identities("fuzz", &[format!("x509.subject:{text}")]);
});
