//! COSE_Sign1 envelopes (`application/cose`): as `envelope_jws`, plus a coset re-encoding
//! of every envelope that parses, parsed again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::envelope::MEDIA_TYPE_COSE;

fuzz_target!(|data: &[u8]| {
    hsm_notary_fuzz::envelope(MEDIA_TYPE_COSE, data);
});
