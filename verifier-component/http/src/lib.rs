//! The verifier behind a wasi:http endpoint (`wit/http.wit`, world `verifier-http`).
//!
//! This component holds no verification rule. It reads a JSON bundle from the request
//! body, turns it into a `verify-request`, and calls the *imported* `notary:verifier`
//! interface; the host's build composes it with the unchanged `verifier-component` build
//! (the same bytes the CLI, Node and the browser run), so the decision is made there.
//!
//! Routes: `POST /verify` (or `POST /`) with a bundle; `GET /healthz`. A completed
//! verification answers 200 whatever its decision (the body and the `notary-decision`
//! header carry it); a bundle that cannot be read answers 400 naming the field.

#![deny(unsafe_code)]

#[allow(unsafe_code, missing_docs, reason = "wit-bindgen generated ABI glue")]
mod bindings {
    wit_bindgen::generate!({
        world: "verifier-http",
        path: "../../wit",
        generate_all,
    });
}

mod bundle;
mod report;

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use bindings::wasi::io::streams::StreamError;

/// Bundles larger than this are refused (413), so that an edge host never buffers without
/// bound. It holds envelopes of up to about 6 MiB (base64); the verifier itself takes up to
/// 32 MiB, which needs the CLI or the import-free component.
const MAX_BUNDLE_BYTES: usize = 8 * 1024 * 1024;

struct Endpoint;

#[allow(unsafe_code, reason = "the export macro emits the ABI entry points")]
mod export {
    use super::Endpoint;
    super::bindings::export!(Endpoint with_types_in super::bindings);
}

/// A response before it is written: status, extra headers and a JSON body.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &serde_json::Value) -> Self {
        // Serializing a `Value` cannot fail (its map keys are strings).
        let body = serde_json::to_vec_pretty(value).unwrap_or_default();
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, &serde_json::json!({ "error": message.into() }))
    }
}

impl Guest for Endpoint {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = route(&request);
        drop(request);
        send(reply, response_out);
    }
}

fn route(request: &IncomingRequest) -> Reply {
    let path = request.path_with_query().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    match (path, request.method()) {
        ("/verify" | "/", Method::Post) => match read_body(request) {
            Ok(body) => verify(&body),
            Err(reply) => reply,
        },
        ("/healthz", Method::Get) => Reply::json(200, &serde_json::json!({ "status": "ok" })),
        ("/verify" | "/", _) => {
            let mut reply = Reply::error(405, "use POST with a JSON bundle");
            reply.headers.push(("allow", "POST".to_owned()));
            reply
        }
        ("/healthz", _) => {
            let mut reply = Reply::error(405, "use GET");
            reply.headers.push(("allow", "GET".to_owned()));
            reply
        }
        (other, _) => Reply::error(
            404,
            format!("no route {other:?}: POST /verify or GET /healthz"),
        ),
    }
}

fn verify(body: &[u8]) -> Reply {
    let request = match bundle::parse(body, now) {
        Ok(request) => request,
        Err(message) => return Reply::error(400, message),
    };
    let outcome = bindings::notary::verifier::verifier::verify(&request);
    let decision = report::decision_name(outcome.decision);
    let mut reply = Reply::json(200, &report::outcome(&outcome, &request));
    reply.headers.push(("notary-decision", decision.to_owned()));
    reply
}

/// The verification time when the bundle gives none: the host's wall clock.
fn now() -> bindings::notary::verifier::types::Instant {
    let now = bindings::wasi::clocks::wall_clock::now();
    bindings::notary::verifier::types::Instant {
        seconds: i64::try_from(now.seconds).unwrap_or(i64::MAX),
        nanoseconds: now.nanoseconds,
        utc_offset_seconds: 0,
    }
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Reply> {
    let body = request
        .consume()
        .map_err(|()| Reply::error(400, "the request body was already consumed"))?;
    let stream = body
        .stream()
        .map_err(|()| Reply::error(500, "the request body stream is unavailable"))?;
    let mut bytes = Vec::new();
    let outcome = loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > MAX_BUNDLE_BYTES {
                    break Err(Reply::error(
                        413,
                        format!("the bundle is larger than {MAX_BUNDLE_BYTES} bytes"),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break Ok(bytes),
            Err(StreamError::LastOperationFailed(error)) => {
                break Err(Reply::error(
                    400,
                    format!(
                        "reading the request body failed: {}",
                        error.to_debug_string()
                    ),
                ));
            }
        }
    };
    // The stream is a child of the body: drop it first.
    drop(stream);
    drop(body);
    outcome
}

fn send(reply: Reply, response_out: ResponseOutparam) {
    let mut headers: Vec<(String, Vec<u8>)> =
        vec![("content-type".to_owned(), b"application/json".to_vec())];
    headers.extend(
        reply
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into_bytes())),
    );
    let fields = match Fields::from_list(&headers) {
        Ok(fields) => fields,
        Err(_) => Fields::new(),
    };
    let response = OutgoingResponse::new(fields);
    // Every status used here is a valid one.
    let _ = response.set_status_code(reply.status);
    let Ok(body) = response.body() else {
        ResponseOutparam::set(response_out, Ok(response));
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(out) = body.write() {
        // `blocking-write-and-flush` takes at most 4096 bytes at a time.
        for chunk in reply.body.chunks(4096) {
            if out.blocking_write_and_flush(chunk).is_err() {
                // The client went away; nothing more to say to it.
                break;
            }
        }
        drop(out);
    }
    let _ = OutgoingBody::finish(body, None);
}
