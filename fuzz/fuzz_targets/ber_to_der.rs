//! The BER→DER length normalisation timestamp tokens go through
//! (`timestamp::ber::to_der`). Property: its output is DER, so converting it again changes
//! nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::timestamp::ber::to_der;

fuzz_target!(|data: &[u8]| {
    if let Ok(der) = to_der(data) {
        match to_der(&der) {
            Ok(again) => assert_eq!(again, der, "to_der is not idempotent"),
            Err(e) => panic!("to_der rejects its own output: {e}"),
        }
    }
});
