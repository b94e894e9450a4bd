//! Talking to a signing service: HTTPS with this client's certificate, the service's CA
//! pinned, bodies bounded, and the service's `{"error": …}` answers turned into errors.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// Answers larger than this are cut off while read (an envelope with its approvals).
const MAX_ANSWER: u64 = 64 << 20;

/// A connection to the signing service.
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// Connect as `cert`/`key` to `url`, trusting only `ca` for the service's certificate
    /// (the system roots otherwise).
    pub fn new(args: &crate::cli::SignerArgs) -> Result<Self> {
        crate::registry::install_crypto_provider();
        let url = args
            .url
            .as_deref()
            .context("no signing service: give --signer https://HOST:PORT")?;
        let base = reqwest::Url::parse(url).with_context(|| format!("--signer {url:?}"))?;
        if base.scheme() != "https" {
            bail!("--signer {url}: the signing service is spoken to over https only");
        }
        let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
            bail!(
                "the signing service requires a client certificate: give --signer-cert and --signer-key"
            );
        };
        let mut identity = crate::files::read_regular(cert, 1 << 20)?;
        identity.push(b'\n');
        identity.extend(crate::files::read_regular(key, 1 << 20)?);
        let identity = reqwest::Identity::from_pem(&identity).map_err(|e| {
            anyhow!(
                "--signer-cert {} / --signer-key {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
        let mut builder = reqwest::Client::builder()
            .identity(identity)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(crate::sign::SIGNING_AGENT);
        if let Some(ca) = &args.ca {
            let pem = crate::files::read_regular(ca, 4 << 20)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow!("--signer-ca {}: {e}", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().context("the signing service client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            http,
            base,
            runtime,
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Value> {
        let url = self.base.join(path)?;
        self.send(self.http.get(url))
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = self.base.join(path)?;
        self.send(
            self.http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body)?),
        )
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| anyhow!("the signing service {}: {e}", self.base))?;
            let status = response.status();
            let body = crate::registry::client::read_bounded(response, MAX_ANSWER)
                .await
                .map_err(|e| anyhow!("reading the signing service's answer: {e}"))?;
            let value: Value = serde_json::from_slice(&body).map_err(|e| {
                anyhow!("the signing service answered {status} with something not JSON: {e}")
            })?;
            if !status.is_success() {
                let message = value["error"].as_str().unwrap_or("no reason given");
                bail!("the signing service refused ({status}): {message}");
            }
            Ok(value)
        })
    }
}
