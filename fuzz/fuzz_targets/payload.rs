//! The signed payload (`application/vnd.cncf.notary.payload.v1+json`), decoded as notation
//! does (`payload::parse`: Go's case-insensitive fields, type errors). In an envelope it is
//! only read after the signature verified, so the envelope targets cannot mutate it; here
//! it is fuzzed directly. Property: a decoded descriptor written back by `payload::build`
//! (what signers embed) decodes to the same descriptor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notary_verifier::payload::{build, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(descriptor) = parse(data) else {
        return;
    };
    let _ = descriptor.same_content(&hsm_notary_fuzz::target_descriptor());
    let built = build(&descriptor);
    match parse(&built) {
        Ok(again) => assert_eq!(again, descriptor, "payload::build does not round-trip"),
        Err(e) => panic!("payload::build wrote what payload::parse refuses: {e}"),
    }
});
