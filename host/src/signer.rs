//! `hsm-notary signer serve`: a signing service that alone holds the HSM session and PIN,
//! and signs a request only once M of N approvers have approved it (hsm-notary's
//! multi-party approval; the format is in [`crate::approval`]).
//!
//! Requesters and approvers speak HTTPS (TLS 1.3, client certificates required) to it;
//! its state is an SQLite database ([`store`]), so a pending request survives a restart and
//! a signed one is never signed again.

pub mod client;
pub mod config;
pub mod service;
pub mod store;

pub use config::ServiceConfig;
