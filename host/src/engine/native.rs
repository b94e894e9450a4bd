//! The verifier crate linked natively.

use anyhow::Result;
use notary_verifier::{
    AppliedPolicy, CertificateSummary, EnvelopeInfo, Failure, Outcome, PolicyInput, Selector,
    SignatureInput, StoreType, TrustStores, ValidationResult, VerifyRequest,
};

use notary_verifier::revocation::Need;

use super::Verifier;

/// Calls the library directly.
#[derive(Clone, Copy, Debug, Default)]
pub struct NativeEngine;

impl Verifier for NativeEngine {
    fn verify(&self, request: &VerifyRequest) -> Result<Outcome> {
        Ok(notary_verifier::verify(request))
    }

    fn verify_or_ask(&self, request: &VerifyRequest) -> Result<(Outcome, Vec<Need>)> {
        Ok(notary_verifier::verify_or_ask(request))
    }

    fn revocation_needs(&self, request: &VerifyRequest) -> Result<Vec<Need>> {
        Ok(notary_verifier::revocation_needs(request))
    }

    fn plugin_needs(
        &self,
        request: &VerifyRequest,
    ) -> Result<Vec<notary_verifier::plugin::PluginNeed>> {
        Ok(notary_verifier::plugin_needs(request))
    }

    fn timestamp_token_needs(
        &self,
        request: &VerifyRequest,
        token: &[u8],
        signature_value: &[u8],
        signing_chain: &[Vec<u8>],
    ) -> Result<Vec<Need>> {
        Ok(notary_verifier::timestamp_token_needs(
            request,
            token,
            signature_value,
            signing_chain,
        ))
    }

    fn check_policy(&self, policy: &PolicyInput) -> Result<Result<Vec<AppliedPolicy>, Failure>> {
        Ok(notary_verifier::check_policy(policy))
    }

    fn select_policy(
        &self,
        policy: &PolicyInput,
        selector: &Selector,
    ) -> Result<Result<AppliedPolicy, Failure>> {
        Ok(notary_verifier::select_policy(policy, selector))
    }

    fn load_trust_store(
        &self,
        stores: &TrustStores,
        store_type: StoreType,
        name: &str,
    ) -> Result<Result<Vec<CertificateSummary>, Failure>> {
        Ok(notary_verifier::load_trust_store(stores, store_type, name))
    }

    fn check_generated_envelope(
        &self,
        signature: &SignatureInput,
        target: &notary_verifier::Descriptor,
    ) -> Result<Result<EnvelopeInfo, Failure>> {
        Ok(notary_verifier::check_generated(signature, target))
    }

    fn inspect(&self, signature: &SignatureInput) -> Result<Result<EnvelopeInfo, Failure>> {
        Ok(notary_verifier::inspect(signature))
    }

    fn check_authentic_timestamp(&self, request: &VerifyRequest) -> Result<ValidationResult> {
        Ok(notary_verifier::authentic_timestamp(request))
    }

    fn check_timestamp_token(
        &self,
        request: &VerifyRequest,
        token: &[u8],
        signature_value: &[u8],
        signing_chain: &[Vec<u8>],
    ) -> Result<ValidationResult> {
        Ok(notary_verifier::timestamp_token(
            request,
            token,
            signature_value,
            signing_chain,
        ))
    }
}
