//! The `hsm-notary` host: gathers bytes (trust policies, trust stores, OCI layouts,
//! signature envelopes), asks the verifier component to decide, and reports. The host
//! never re-implements a verification rule.

pub mod approval;
pub mod certgen;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod files;
pub mod layout;
pub mod metrics;
pub mod oci;
pub mod output;
pub mod pkcs11;
pub mod plugin;
pub mod registry;
pub mod revocation;
pub mod serve;
pub mod shared_cache;
pub mod sign;
pub mod signer;
