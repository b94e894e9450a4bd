//! A wasi:http host for the `verifier-http` component, built the way `wasmtime serve` runs
//! one: `wasmtime-wasi-http` with a fresh instance per request, behind hyper on 127.0.0.1
//! (for the tests) or called directly (for the bench).

use std::net::SocketAddr;

use anyhow::{Context, Result};
use base64ct::{Base64, Encoding};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use notary_verifier::truststore::StoreType;
use notary_verifier::verify::{Target, VerifyRequest};
use serde_json::{Value, json};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Per-request state, as `wasmtime serve` keeps it.
pub struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// The component compiled and pre-instantiated against the WASI and wasi:http imports.
#[derive(Clone)]
pub struct HttpComponent {
    pre: ProxyPre<RequestState>,
}

impl HttpComponent {
    /// Compile `wasm`.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        let engine = Engine::new(&Config::new())?;
        let component = Component::new(&engine, wasm)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self { pre })
    }

    /// Serve on a free loopback port from a thread of its own (for the life of the process).
    pub fn serve_in_background(self) -> Result<SocketAddr> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(self.serve(tx));
        });
        rx.recv().context("the wasi:http server did not start")
    }

    async fn serve(self, ready: std::sync::mpsc::Sender<SocketAddr>) {
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            return;
        };
        let Ok(addr) = listener.local_addr() else {
            return;
        };
        let _ = ready.send(addr);
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let this = this.clone();
                    async move { this.handle(request).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(wasmtime_wasi_http::io::TokioIo::new(client), service)
                    .await;
            });
        }
    }

    /// One request through a fresh instance.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>>
    where
        B: hyper::body::Body<Data = Bytes, Error = hyper::Error> + Send + 'static,
    {
        let mut store = Store::new(
            self.pre.engine(),
            RequestState {
                wasi: WasiCtx::builder().inherit_stderr().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
            },
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, request, out)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => match task.await {
                Ok(Ok(())) => wasmtime::bail!("the component never set a response"),
                Ok(Err(error)) => Err(error),
                Err(error) => Err(error.into()),
            },
        }
    }

    /// `POST /verify` with `body`, without a socket: status and response body.
    pub async fn post(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>)> {
        let request = hyper::Request::post("http://localhost/verify")
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never: std::convert::Infallible| -> hyper::Error { match never {} }),
            )?;
        let response = self.handle(request).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the response: {e:?}"))?
            .to_bytes();
        Ok((status, body.to_vec()))
    }
}

/// A request as the documented bundle: certificates as PEM text or base64 DER, envelopes
/// as base64, the time as RFC 3339.
pub fn bundle_of(request: &VerifyRequest) -> Value {
    let mut bundle = json!({
        // A JSON string holds text: a policy that is not UTF-8 arrives with U+FFFD in place
        // of its bad bytes (and is still not a valid policy).
        "policy": String::from_utf8_lossy(&request.policy.content),
        "policyKind": match request.policy.kind {
            notary_verifier::trustpolicy::DocumentKind::Oci => "oci",
            notary_verifier::trustpolicy::DocumentKind::Blob => "blob",
        },
        "trustStores": request.trust_stores.stores.iter().map(|store| json!({
            "type": match store.store_type {
                StoreType::Ca => "ca",
                StoreType::SigningAuthority => "signingAuthority",
                StoreType::Tsa => "tsa",
            },
            "name": store.name,
            "certificates": store.files.iter().map(|file| {
                match std::str::from_utf8(&file.content) {
                    Ok(text) if text.contains("-----BEGIN") => text.to_owned(),
                    _ => Base64::encode_string(&file.content),
                }
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "signatures": request.signatures.iter().map(|s| json!({
            "mediaType": s.media_type,
            "envelope": Base64::encode_string(&s.envelope),
            "manifestDigest": s.manifest_digest,
        })).collect::<Vec<_>>(),
        "userMetadata": request.user_metadata.iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect::<serde_json::Map<_, _>>(),
        "verificationTime": request.verification_time.rfc3339_nano(),
        "maxSignatures": request.max_signatures,
        "revocation": request.revocation_evidence.iter().filter_map(|e| match e {
            notary_verifier::revocation::Evidence::Ocsp { url, response } => {
                Some(json!({"url": url, "ocsp": Base64::encode_string(response)}))
            }
            notary_verifier::revocation::Evidence::Crl { url, crl } => {
                Some(json!({"url": url, "crl": Base64::encode_string(crl)}))
            }
            _ => None,
        }).collect::<Vec<_>>(),
    });
    match &request.target {
        Target::Oci {
            reference,
            descriptor,
        } => {
            // Some cases name a placeholder digest (`@sha256:00`); the endpoint wants the
            // reference's digest to be the descriptor's. Scope selection reads only the
            // `registry/repository` part, so the decision is the same.
            let repository = reference
                .rsplit_once('@')
                .map_or(reference.as_str(), |(r, _)| r);
            bundle["artifact"] = json!({
                "reference": format!("{repository}@{}", descriptor.digest),
                "descriptor": descriptor,
            });
        }
        Target::Blob {
            policy_name,
            media_type,
            digest,
            size,
        } => {
            bundle["blob"] = json!({
                "digest": digest, "size": size, "mediaType": media_type, "policyName": policy_name,
            })
        }
    }
    bundle
}
