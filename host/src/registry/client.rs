//! The OCI distribution API over HTTP, as a hostile registry must meet it.
//!
//! Written against reqwest rather than through oci-client because a verifier cannot let a
//! registry decide how much it reads or where credentials go, and oci-client reads every
//! body whole and sends Basic credentials to whatever token realm a registry names:
//! - every body is counted while it streams and abandoned at its limit (4 MiB manifests and
//!   indexes, the descriptor's size for blobs, 1 MiB token and error bodies), and every
//!   exchange, body included, has a deadline;
//! - credentials go only to the registry they are for: never across a redirect or an
//!   upload location on another origin, and to a token realm only when the realm is this
//!   registry (over HTTPS, or plain HTTP where the registry itself is plain HTTP) or a host
//!   configured for it;
//! - error bodies are reduced to the distribution error code and a short, escaped message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url, header};
use secrecy::{ExposeSecret, SecretString};

/// The most a token response or an error body may be.
pub const MAX_SMALL_BODY: u64 = 1 << 20;
/// The most a referrers list is followed through `Link` pages.
pub const MAX_REFERRER_PAGES: usize = 64;
/// The most redirects one exchange follows.
const MAX_REDIRECTS: usize = 5;
/// How much of a registry's error message is kept.
const MAX_ERROR_MESSAGE: usize = 200;

/// Token realms that are not the registry's own host but are its documented issuer.
const KNOWN_REALMS: &[(&str, &str)] = &[
    ("registry-1.docker.io", "auth.docker.io"),
    ("index.docker.io", "auth.docker.io"),
];

/// What went wrong in one exchange.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry answered with an error status. Only the status and the distribution
    /// error code are shown: a registry's own words are not passed on to callers (`serve`
    /// answers admission requests with these errors); they are in the debug log.
    #[error("{status}{}", code.as_deref().map(|c| format!(": {c}")).unwrap_or_default())]
    Status {
        /// The status.
        status: StatusCode,
        /// The distribution error code, if the body held one.
        code: Option<String>,
        /// Its message, shortened and escaped.
        message: Option<String>,
    },
    /// A body was longer than allowed for what it is.
    #[error("the body is over the limit of {limit} bytes{}", declared.map(|d| format!(" (it declares {d})")).unwrap_or_default())]
    TooLarge {
        /// The limit.
        limit: u64,
        /// The `Content-Length` the registry sent, if any.
        declared: Option<u64>,
    },
    /// A token realm the credentials may not go to.
    #[error("token realm {realm:?} refused: {why}")]
    Realm {
        /// The realm as the registry named it.
        realm: String,
        /// Why.
        why: String,
    },
    /// The registry's answer is not what the protocol says.
    #[error("{0}")]
    Protocol(String),
    /// Connecting, TLS, a timeout, a reset.
    #[error("{0}")]
    Transport(String),
}

impl Error {
    /// Whether the registry said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

fn transport(e: &reqwest::Error) -> Error {
    let mut text = if e.is_timeout() {
        "the registry did not answer in time".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Transport(text)
}

/// Username and password for one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user.
    pub username: String,
    /// The password or identity token.
    pub password: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// How to reach one registry.
pub struct Settings {
    /// `host[:port]` as the reference names it.
    pub host: String,
    /// Plain HTTP.
    pub http: bool,
    /// Credentials for this registry only.
    pub credentials: Option<Credentials>,
    /// Other hosts that may issue tokens for it.
    pub token_realms: Vec<String>,
    /// PEM bundles of extra CAs.
    pub ca_pems: Vec<Vec<u8>>,
    /// Each exchange, body included.
    pub timeout: Duration,
    /// `User-Agent`.
    pub user_agent: String,
}

/// Access a request needs, as a token scope's action list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `pull`.
    Pull,
    /// `pull,push`.
    Push,
    /// `delete` (with pull, which registries check first).
    Delete,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "pull,push",
            Self::Delete => "pull,delete",
        }
    }
}

#[derive(Default)]
struct AuthState {
    /// The registry asked for Basic: send it from the start.
    basic: bool,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
}

/// A client for one registry.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    settings: Settings,
    state: Mutex<AuthState>,
}

/// One request: what to send, and how much of the answer may be read.
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// Under `/v2/`, or an absolute URL the registry gave (an upload location).
    pub url: Url,
    /// For the token scope.
    pub repository: &'a str,
    /// The scope's actions.
    pub access: Access,
    /// `Accept`.
    pub accept: Option<&'a str>,
    /// The body and its `Content-Type`.
    pub body: Option<(Vec<u8>, &'a str)>,
}

impl Client {
    /// A client for `settings.host`.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        let endpoint = match settings.host.as_str() {
            // Docker Hub's API lives on another name than its references use.
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        let scheme = if settings.http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{endpoint}/"))
            .map_err(|e| Error::Protocol(format!("registry {:?}: {e}", settings.host)))?;
        // Redirects (blob storage) are followed a few times, never from HTTPS to plain
        // HTTP; reqwest drops `Authorization` when a redirect leaves the origin.
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if attempt.url().scheme() != "https"
                && attempt.previous().iter().any(|u| u.scheme() == "https")
            {
                attempt.error("a redirect from HTTPS to plain HTTP")
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .redirect(policy)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(settings.timeout)
            .user_agent(settings.user_agent.clone());
        for pem in &settings.ca_pems {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Protocol(format!("a --ca-file is not PEM: {e}")))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| transport(&e))?;
        Ok(Self {
            http,
            base,
            settings,
            state: Mutex::new(AuthState::default()),
        })
    }

    /// `<base>/v2/<path>`.
    pub fn url(&self, path: &str) -> Result<Url, Error> {
        self.base
            .join(&format!("v2/{path}"))
            .map_err(|e| Error::Protocol(format!("{path:?}: {e}")))
    }

    /// An upload `Location`, resolved against the registry.
    pub fn location(&self, location: &str) -> Result<Url, Error> {
        self.base
            .join(location)
            .map_err(|e| Error::Protocol(format!("upload location {location:?}: {e}")))
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// Send `request`, answering one authentication challenge. Error statuses are
    /// returned as [`Error::Status`] (their bodies read bounded).
    pub async fn send(&self, request: Request<'_>) -> Result<reqwest::Response, Error> {
        let scope = format!(
            "repository:{}:{}",
            request.repository,
            request.access.actions()
        );
        let response = self.attempt(&request, &scope).await?;
        let response = if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(Challenge::parse);
            match challenge {
                Some(Challenge::Bearer { realm, service }) => {
                    let token = self.token(&realm, service.as_deref(), &scope).await?;
                    self.lock().tokens.insert(scope.clone(), token);
                    self.attempt(&request, &scope).await?
                }
                Some(Challenge::Basic) if self.settings.credentials.is_some() => {
                    let already = std::mem::replace(&mut self.lock().basic, true);
                    if already {
                        response
                    } else {
                        self.attempt(&request, &scope).await?
                    }
                }
                _ => response,
            }
        } else {
            response
        };
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        Ok(response)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // The state is a cache: one poisoned by a panic elsewhere is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn attempt(
        &self,
        request: &Request<'_>,
        scope: &str,
    ) -> Result<reqwest::Response, Error> {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone())
            .timeout(self.settings.timeout);
        if let Some(accept) = request.accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        if let Some((body, content_type)) = &request.body {
            builder = builder
                .header(header::CONTENT_TYPE, *content_type)
                .body(body.clone());
        } else if request.method == Method::PUT || request.method == Method::POST {
            builder = builder.header(header::CONTENT_LENGTH, 0);
        }
        // Credentials only to this registry's own origin.
        if self.same_origin(&request.url) {
            let (token, basic) = {
                let state = self.lock();
                (state.tokens.get(scope).cloned(), state.basic)
            };
            if let Some(token) = token {
                builder = builder.bearer_auth(token);
            } else if basic && let Some(credentials) = &self.settings.credentials {
                builder = builder.basic_auth(
                    &credentials.username,
                    Some(credentials.password.expose_secret()),
                );
            }
        }
        let started = std::time::Instant::now();
        let response = builder.send().await.map_err(|e| transport(&e));
        crate::metrics::METRICS.registry_request(request.method.as_str(), started.elapsed());
        if let Ok(r) = &response {
            // HTTP/2 where the registry offers it (ALPN), on one pooled connection.
            tracing::debug!("Response: {} {:?}", r.status(), r.version());
        }
        response
    }

    /// Whether credentials may go to `realm`, and over what.
    fn check_realm(&self, realm: &Url) -> Result<(), Error> {
        let refuse = |why: String| Error::Realm {
            realm: realm.to_string(),
            why,
        };
        let Some(host) = realm.host_str() else {
            return Err(refuse("it names no host".to_owned()));
        };
        let authority = match realm.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let own = realm.host_str() == self.base.host_str()
            && realm.port_or_known_default() == self.base.port_or_known_default();
        if own {
            // Plain HTTP to the registry's own host only where the registry is plain HTTP.
            if realm.scheme() == "https" || (realm.scheme() == "http" && self.settings.http) {
                return Ok(());
            }
            return Err(refuse(format!(
                "scheme {:?} where the registry is {}",
                realm.scheme(),
                self.base.scheme()
            )));
        }
        let endpoint = self.base.host_str().unwrap_or_default();
        let configured = self
            .settings
            .token_realms
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&authority) || r.eq_ignore_ascii_case(host))
            || KNOWN_REALMS
                .iter()
                .any(|(registry, issuer)| *registry == endpoint && *issuer == authority);
        if !configured {
            return Err(refuse(format!(
                "{authority} is not the registry {}; name it in HSM_NOTARY_TOKEN_REALMS to allow it",
                self.settings.host
            )));
        }
        if realm.scheme() != "https" {
            return Err(refuse(
                "a token realm on another host must use HTTPS".to_owned(),
            ));
        }
        Ok(())
    }

    /// A bearer token for `scope` from `realm` (distribution's token authentication).
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, Error> {
        let mut url = Url::parse(realm).map_err(|e| Error::Realm {
            realm: realm.to_owned(),
            why: e.to_string(),
        })?;
        self.check_realm(&url)?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let mut builder = self.http.get(url).timeout(self.settings.timeout);
        if let Some(credentials) = &self.settings.credentials {
            builder = builder.basic_auth(
                &credentials.username,
                Some(credentials.password.expose_secret()),
            );
        }
        let response = builder.send().await.map_err(|e| transport(&e))?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        let body = read_bounded(response, MAX_SMALL_BODY).await?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: Token = serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("the token response is not JSON: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Protocol("the token response holds no token".to_owned()))
    }

    /// GET `url` and read at most `limit` bytes of the answer.
    pub async fn get(
        &self,
        url: Url,
        repository: &str,
        accept: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), Error> {
        let response = self
            .send(Request {
                method: Method::GET,
                url,
                repository,
                access: Access::Pull,
                accept,
                body: None,
            })
            .await?;
        let headers = response.headers().clone();
        Ok((read_bounded(response, limit).await?, headers))
    }
}

/// Read a body, at most `limit` bytes, counting while it streams: a registry that sends
/// more (or an endless body) is cut off at the limit, not after.
pub async fn read_bounded(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, Error> {
    let declared = response.content_length();
    if let Some(length) = declared
        && length > limit
    {
        return Err(Error::TooLarge {
            limit,
            declared: Some(length),
        });
    }
    let initial = usize::try_from(declared.unwrap_or(0).min(1 << 20)).unwrap_or(0);
    let mut out = Vec::with_capacity(initial);
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(Error::TooLarge {
                limit,
                declared: None,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An error status, with the distribution error code and a short escaped message from a
/// bounded read of its body (a registry's text is not passed on as it is).
async fn status_error(response: reqwest::Response) -> Error {
    let status = response.status();
    let body = read_bounded(response, MAX_SMALL_BODY)
        .await
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let first = serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next());
    let (code, message) = match first {
        Some(entry) => (
            entry.code.map(|c| shorten(&c)),
            entry.message.map(|m| shorten(&m)),
        ),
        None => (None, None),
    };
    if let Some(message) = &message {
        tracing::debug!("the registry answered {status}: {message}");
    }
    Error::Status {
        status,
        code,
        message,
    }
}

/// At most [`MAX_ERROR_MESSAGE`] characters, control characters escaped (a registry must
/// not be able to write terminal escapes into our output).
pub fn shorten(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(MAX_ERROR_MESSAGE) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > MAX_ERROR_MESSAGE {
        out.push('…');
    }
    out
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Other,
}

impl Challenge {
    fn parse(value: &str) -> Self {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Self::Basic;
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Self::Other;
        }
        let params = parse_params(rest);
        match params.get("realm") {
            Some(realm) => Self::Bearer {
                realm: realm.clone(),
                service: params.get("service").cloned(),
            },
            None => Self::Other,
        }
    }
}

/// `key="value", key=value` (RFC 7235 auth-params; quoted strings with `\` escapes).
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() || chars.next() != Some('=') {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        out.insert(key, value);
    }
}

/// The `rel="next"` target of a `Link` header, resolved against `base`.
pub fn next_link(headers: &reqwest::header::HeaderMap, base: &Url) -> Option<Url> {
    let value = headers.get(header::LINK)?.to_str().ok()?;
    for link in value.split(',') {
        let (target, params) = link.split_once(';').unwrap_or((link, ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        if params.split(';').any(|p| {
            p.trim()
                .replace(' ', "")
                .eq_ignore_ascii_case("rel=\"next\"")
        }) {
            return base.join(target).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read_with_quoted_parameters() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
            ),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            }
        );
        assert_eq!(Challenge::parse(r#"Basic realm="x""#), Challenge::Basic);
        assert_eq!(Challenge::parse("Bearer service=x"), Challenge::Other);
        assert_eq!(
            Challenge::parse(r#"bearer realm="a\"b", service=s"#),
            Challenge::Bearer {
                realm: "a\"b".into(),
                service: Some("s".into())
            }
        );
    }

    fn client(host: &str, http: bool, realms: &[&str]) -> Client {
        super::super::install_crypto_provider();
        Client::new(Settings {
            host: host.into(),
            http,
            credentials: None,
            token_realms: realms.iter().map(|s| (*s).to_owned()).collect(),
            ca_pems: Vec::new(),
            timeout: Duration::from_secs(5),
            user_agent: "test".into(),
        })
        .expect("client")
    }

    #[test]
    fn token_realms_must_be_the_registry_or_configured_and_https() {
        let check = |c: &Client, realm: &str| c.check_realm(&Url::parse(realm).expect(realm));
        let registry = client("registry.example", false, &[]);
        assert!(check(&registry, "https://registry.example/token").is_ok());
        assert!(check(&registry, "http://registry.example/token").is_err());
        assert!(check(&registry, "https://registry.example:444/token").is_err());
        assert!(check(&registry, "https://evil.example/token").is_err());
        let local = client("localhost:5000", true, &[]);
        assert!(check(&local, "http://localhost:5000/token").is_ok());
        assert!(check(&local, "http://localhost:5001/token").is_err());
        assert!(check(&local, "http://127.0.0.1:5000/token").is_err());
        let configured = client("registry.example", false, &["auth.example"]);
        assert!(check(&configured, "https://auth.example/token").is_ok());
        assert!(check(&configured, "http://auth.example/token").is_err());
        let hub = client("docker.io", false, &[]);
        assert!(check(&hub, "https://auth.docker.io/token").is_ok());
    }

    #[test]
    fn registry_error_text_is_short_and_escaped() {
        assert_eq!(shorten("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert!(shorten(&"x".repeat(1000)).chars().count() <= MAX_ERROR_MESSAGE + 1);
    }

    #[test]
    fn the_next_referrers_page_is_the_rel_next_link() {
        let base = Url::parse("https://r.example/v2/a/referrers/sha256:x").expect("url");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            header::LINK,
            r#"</v2/a/referrers/sha256:x?n=2&last=b>; rel="next""#
                .parse()
                .expect("header"),
        );
        assert_eq!(
            next_link(&headers, &base).map(|u| u.to_string()),
            Some("https://r.example/v2/a/referrers/sha256:x?n=2&last=b".to_owned())
        );
    }
}
