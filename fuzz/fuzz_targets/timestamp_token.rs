//! RFC 3161 timestamp tokens: `timestamp::parse_signed_token` (BER→DER, CMS SignedData,
//! token certificates), `SignedToken::info` (TSTInfo) and `TstInfo::validate`,
//! `SignedToken::verify` against the fixture TSA root, and the public countersignature
//! check `timestamp_token` / `timestamp_token_needs` over the fixture envelope's signature
//! value and signing chain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::signature::HashAlgorithm;
use notary_verifier::timestamp::{TstInfo, parse_signed_token};
use notary_verifier::{timestamp_token, timestamp_token_needs};

use hsm_notary_fuzz::{TIMESTAMP, verification_time};

fuzz_target!(|data: &[u8]| {
    let fixture = &*TIMESTAMP;
    let now = verification_time();
    if let Ok(token) = parse_signed_token(data) {
        let _ = token.certificates.len();
        let gen_time = match token.info() {
            Ok(info) => {
                let _ = info.validate(&fixture.signature_value);
                // The imprint of a fuzzed token rarely matches a fixed message: give the
                // decoded TSTInfo an imprint that does, so the accuracy / range arithmetic
                // runs on fuzzed genTime and accuracy values too.
                if let Some(hash) = HashAlgorithm::from_oid(&info.hash_algorithm) {
                    let message: &[u8] = b"hsm-notary fuzz";
                    let matching = TstInfo {
                        hashed_message: hash.digest(message),
                        ..info.clone()
                    };
                    if let Ok(timestamp) = matching.validate(message) {
                        let _ = timestamp.lower();
                        let _ = timestamp.upper();
                        let _ = timestamp.format_rfc3339();
                        let _ = timestamp.bounded_before(now);
                        let _ = timestamp.bounded_after(now);
                    }
                }
                Some(info.gen_time)
            }
            Err(_) => None,
        };
        let _ = token.verify(&fixture.tsa_roots, gen_time.unwrap_or(now));
    }
    let _ = timestamp_token(
        &fixture.request,
        data,
        &fixture.signature_value,
        &fixture.signing_chain,
    );
    let _ = timestamp_token_needs(
        &fixture.request_without_evidence,
        data,
        &fixture.signature_value,
        &fixture.signing_chain,
    );
});
