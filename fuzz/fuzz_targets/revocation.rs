//! OCSP responses and CRLs, as a host hands them in: `revocation::ocsp::evaluate` and
//! `ocsp::next_update`; `revocation::crl::Crl::parse` and its checks (`check_issuer`,
//! `check_time`, `check_scope`, `status`, `check_delta`, as a base CRL and as the delta of
//! the fixture base CRL); and `revocation::check_chain` over the fixture chain (a leaf
//! naming an OCSP responder and a CRL distribution point) with the input as the OCSP
//! answer, as the CRL, and as the delta CRL, with and without collecting needs. Every
//! input goes to both parsers: each rejects the other's structure within a few bytes.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use notary_verifier::Evidence;
use notary_verifier::revocation::crl::{Crl, number_string};
use notary_verifier::revocation::{ChainPurpose, Inputs, check_chain, ocsp};

use hsm_notary_fuzz::{REVOCATION, verification_time};

fuzz_target!(|data: &[u8]| {
    let fixture = &*REVOCATION;
    let (leaf, issuer) = (&fixture.leaf, &fixture.issuer);
    let now = verification_time();

    // OCSP, directly.
    let _ = ocsp::evaluate(data, leaf, issuer, now);
    let _ = ocsp::evaluate(data, issuer, issuer, now);
    let _ = ocsp::next_update(data);

    // CRL, directly.
    if let Ok(crl) = Crl::parse(data) {
        let _ = crl.is_delta();
        let _ = crl.issuer();
        let _ = crl.check_issuer(issuer);
        let _ = crl.check_time(now);
        let _ = crl.check_scope(leaf);
        let _ = crl.check_scope(issuer);
        let _ = crl.status(leaf, None, None);
        let _ = crl.status(leaf, None, Some(now));
        let _ = crl.check_delta(&crl);
        if let Some(number) = &crl.number {
            let _ = number_string(number);
        }
        if let Ok(base) = Crl::parse(&fixture.base_crl) {
            let _ = base.check_delta(&crl);
            let _ = base.status(leaf, Some(&crl), Some(now));
        }
    }

    // Through the chain evaluation, as the verifier reaches it.
    let chain = [leaf.clone(), issuer.clone()];
    let ocsp_url = leaf.ocsp_urls.first().cloned().unwrap_or_default();
    let crl_url = leaf.crl_urls.first().cloned().unwrap_or_default();
    let unavailable = Evidence::Unavailable {
        url: ocsp_url.clone(),
        reason: "fuzz: no OCSP answer".to_owned(),
    };
    let delta_urls = Crl::parse(&fixture.base_crl)
        .map(|base| base.freshest_urls)
        .unwrap_or_default();
    let as_ocsp = vec![Evidence::Ocsp {
        url: ocsp_url,
        response: data.to_vec(),
    }];
    let as_crl = vec![
        unavailable.clone(),
        Evidence::Crl {
            url: crl_url.clone(),
            crl: data.to_vec(),
        },
    ];
    let mut as_delta = vec![
        unavailable,
        Evidence::Crl {
            url: crl_url,
            crl: fixture.base_crl.clone(),
        },
    ];
    as_delta.extend(delta_urls.into_iter().map(|url| Evidence::Crl {
        url,
        crl: data.to_vec(),
    }));
    for evidence in [&as_ocsp, &as_crl, &as_delta] {
        for signing_time in [None, Some(now)] {
            let inputs = Inputs {
                evidence,
                time: now,
                signing_time,
                needs: None,
            };
            let _ = check_chain(&chain, ChainPurpose::CodeSigning, &inputs);
        }
        let needs = RefCell::new(Vec::new());
        let inputs = Inputs {
            evidence,
            time: now,
            signing_time: None,
            needs: Some(&needs),
        };
        let _ = check_chain(&chain, ChainPurpose::Timestamping, &inputs);
    }
});
