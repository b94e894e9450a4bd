//! JWS JSON envelopes (`application/jose+json`): `Envelope::parse` / `content` / `verify`,
//! `inspect`, `check_generated`, and the whole verification workflow (`verify_or_ask`,
//! `plugin_needs`, `authentic_timestamp`) under the fixture policy and trust stores, so a
//! seed whose signature still verifies (mutations of the unprotected header: x5c
//! intermediates, the timestamp token) reaches chain, identity, timestamp and revocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::envelope::MEDIA_TYPE_JWS;

fuzz_target!(|data: &[u8]| {
    hsm_notary_fuzz::envelope(MEDIA_TYPE_JWS, data);
});
