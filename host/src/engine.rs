//! The verifier, behind one trait with two back ends: the WebAssembly component embedded
//! with wasmtime (the default, sandboxed) and the same crate linked natively (for
//! comparison and benches). Both return the verifier crate's own types.

mod code_memory;
pub mod component;
pub mod native;
pub mod wasmtime_config;

use anyhow::Result;
use notary_verifier::{
    AppliedPolicy, CertificateSummary, EnvelopeInfo, Failure, Outcome, PolicyInput, Selector,
    SignatureInput, StoreType, TrustStores, ValidationResult, VerifyRequest,
};

pub use component::ComponentEngine;
pub use native::NativeEngine;

/// Verification decisions. The outer `Result` is an engine fault (a trap, a resource
/// limit), never a verification failure.
pub trait Verifier {
    /// The whole workflow.
    fn verify(&self, request: &VerifyRequest) -> Result<Outcome>;
    /// `verify`, and the revocation evidence it would read that `request` lacks: with no
    /// needs the outcome is final, otherwise provisional.
    fn verify_or_ask(
        &self,
        request: &VerifyRequest,
    ) -> Result<(Outcome, Vec<notary_verifier::revocation::Need>)>;
    /// The revocation evidence `verify` would read that `request` lacks.
    fn revocation_needs(
        &self,
        request: &VerifyRequest,
    ) -> Result<Vec<notary_verifier::revocation::Need>>;
    /// What the verification plugins that signatures name must be asked.
    fn plugin_needs(
        &self,
        request: &VerifyRequest,
    ) -> Result<Vec<notary_verifier::plugin::PluginNeed>>;
    /// The revocation evidence `check_timestamp_token` would read that `request` lacks.
    fn timestamp_token_needs(
        &self,
        request: &VerifyRequest,
        token: &[u8],
        signature_value: &[u8],
        signing_chain: &[Vec<u8>],
    ) -> Result<Vec<notary_verifier::revocation::Need>>;
    /// Validate a policy document.
    fn check_policy(&self, policy: &PolicyInput) -> Result<Result<Vec<AppliedPolicy>, Failure>>;
    /// Select the applicable statement.
    fn select_policy(
        &self,
        policy: &PolicyInput,
        selector: &Selector,
    ) -> Result<Result<AppliedPolicy, Failure>>;
    /// Load one named trust store.
    fn load_trust_store(
        &self,
        stores: &TrustStores,
        store_type: StoreType,
        name: &str,
    ) -> Result<Result<Vec<CertificateSummary>, Failure>>;
    /// Check an envelope a signer did not assemble (an envelope plugin's) before it is
    /// published: integrity, the payload names `target`, certificate requirements.
    fn check_generated_envelope(
        &self,
        signature: &SignatureInput,
        target: &notary_verifier::Descriptor,
    ) -> Result<Result<EnvelopeInfo, Failure>>;
    /// Describe an envelope.
    fn inspect(&self, signature: &SignatureInput) -> Result<Result<EnvelopeInfo, Failure>>;
    /// Only the authentic-timestamp validation.
    fn check_authentic_timestamp(&self, request: &VerifyRequest) -> Result<ValidationResult>;
    /// A bare timestamp token.
    fn check_timestamp_token(
        &self,
        request: &VerifyRequest,
        token: &[u8],
        signature_value: &[u8],
        signing_chain: &[Vec<u8>],
    ) -> Result<ValidationResult>;
}

/// Which back end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// The embedded WebAssembly component (sandboxed; default).
    Wasm,
    /// The verifier crate linked into this binary.
    Native,
    /// The component's optional build that imports its public-key arithmetic from this
    /// host (RSA public operation, ECDSA check: native code, keys kept across calls);
    /// compiled at start-up.
    WasmHostCrypto,
}

/// Build the selected engine.
pub fn engine(kind: EngineKind) -> Result<Box<dyn Verifier + Send + Sync>> {
    Ok(match kind {
        EngineKind::Wasm => Box::new(ComponentEngine::load_default()?),
        EngineKind::Native => Box::new(NativeEngine),
        EngineKind::WasmHostCrypto => Box::new(ComponentEngine::load_host_crypto()?),
    })
}
