//! The verifier as a WebAssembly component that imports its public-key arithmetic
//! (`wit/verifier.wit`, world `verifier-component-host-crypto`, interface `crypto`).
//!
//! The same export glue as the default build (`../component/src/glue.rs`, included);
//! the only difference is [`enter`], which installs the imported arithmetic before any
//! export runs, so the RSA public operation and the ECDSA check are the host's native
//! code while everything around them stays the component's. The default
//! `verifier-component`, which imports nothing, is what runs everywhere; this build is
//! for hosts that offer the import (hsm-notary's `--engine wasm-host-crypto`).

#![deny(unsafe_code)]

#[allow(unsafe_code, missing_docs, reason = "wit-bindgen generated ABI glue")]
mod bindings {
    wit_bindgen::generate!({
        world: "verifier-component-host-crypto",
        path: "../../wit",
    });
}

#[path = "../../component/src/glue.rs"]
mod glue;

use bindings::notary::verifier::crypto;
use notary_verifier::signature::Curve;
use notary_verifier::signature::arithmetic::{self, Arithmetic};

/// The host's `crypto` interface as the verifier's [`Arithmetic`].
struct Imported;

impl Arithmetic for Imported {
    fn rsa_public_operation(
        &self,
        modulus: &[u8],
        exponent: &[u8],
        signature: &[u8],
    ) -> Option<Vec<u8>> {
        crypto::rsa_public_operation(modulus, exponent, signature)
    }

    fn ecdsa_verify_prehash(
        &self,
        curve: Curve,
        public_key: &[u8],
        prehash: &[u8],
        signature: &[u8],
    ) -> bool {
        let curve = match curve {
            Curve::P256 => crypto::Curve::P256,
            Curve::P384 => crypto::Curve::P384,
            Curve::P521 => crypto::Curve::P521,
        };
        crypto::ecdsa_verify_prehash(curve, public_key, prehash, signature)
    }
}

static IMPORTED: Imported = Imported;

/// Called first by every export: from here on, public-key operations are the host's.
fn enter() {
    // `false` only when already installed by an earlier export of this instance.
    let _ = arithmetic::install(&IMPORTED);
}
