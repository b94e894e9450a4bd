//! Real parts for tests: a SoftHSM2 token in a temp directory, Debian's `docker-registry`
//! (CNCF distribution) on 127.0.0.1 with a temp storage directory, an RFC 3161 TSA
//! (OpenSSL's `openssl ts -reply`), and a scripted HTTP server for registry failure modes.
//! Each is stopped by PID when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The SoftHSM2 PKCS#11 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token of its own.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    /// Token label.
    pub label: String,
    /// User PIN.
    pub pin: String,
}

impl SoftHsm {
    /// Create a token labelled `label` with user PIN `pin`.
    pub fn new(label: &str, pin: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("tokens"))?;
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )?;
        let hsm = Self {
            dir,
            label: label.to_owned(),
            pin: pin.to_owned(),
        };
        let status = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                "so-pin-1",
            ])
            .env("SOFTHSM2_CONF", hsm.conf())
            .stdout(Stdio::null())
            .status()
            .context("running softhsm2-util (install softhsm2: scripts/setup.sh)")?;
        if !status.success() {
            bail!("softhsm2-util --init-token failed");
        }
        Ok(hsm)
    }

    /// `SOFTHSM2_CONF` for processes using this token.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// A file holding the PIN (for `pin-source=file:`).
    pub fn pin_file(&self) -> Result<PathBuf> {
        let path = self.dir.path().join("pin");
        std::fs::write(&path, format!("{}\n", self.pin))?;
        Ok(path)
    }

    /// The URI of key `object` in this token.
    pub fn uri(&self, object: &str) -> String {
        format!("pkcs11:token={};object={object}", self.label)
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for(port: u16, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited early: {status}");
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the server did not listen on 127.0.0.1:{port} within 20 s")
}

/// Debian's `redis-server` on a loopback port, nothing persisted.
pub struct RedisServer {
    child: Child,
    _dir: tempfile::TempDir,
    /// The port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Start one.
    pub fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (install it: scripts/setup.sh)")?;
        wait_for(port, &mut child)?;
        Ok(Self {
            child,
            _dir: dir,
            port,
        })
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Run `redis-cli ARGS…` against it, `stdin` as the last argument when given (`-x`);
    /// the raw reply.
    pub fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"]);
        if stdin.is_some() {
            command.arg("-x");
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("redis-cli (redis-tools, with redis-server)")?;
        let mut input = child.stdin.take().context("stdin")?;
        if let Some(bytes) = stdin {
            input.write_all(bytes)?;
        }
        drop(input);
        let output = child.wait_with_output()?;
        anyhow::ensure!(output.status.success(), "redis-cli {args:?} failed");
        Ok(output.stdout)
    }

    /// Stop it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Debian's `docker-registry` (distribution 2.8: no referrers API).
pub struct DistributionRegistry {
    child: Child,
    storage: tempfile::TempDir,
    /// The port on 127.0.0.1.
    pub port: u16,
}

impl DistributionRegistry {
    /// Start one with deletes enabled (so superseded referrers indexes can be removed).
    pub fn start() -> Result<Self> {
        Self::start_with(true)
    }

    /// Start one that refuses `DELETE` (distribution's default: 405 Unsupported).
    pub fn start_without_delete() -> Result<Self> {
        Self::start_with(false)
    }

    fn start_with(delete: bool) -> Result<Self> {
        let storage = tempfile::tempdir()?;
        let port = free_port()?;
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {delete}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.path().join("data").display()
            ),
        )?;
        Self::serve(storage, port, &config)
    }

    /// Run `docker-registry serve CONFIG` and wait until it listens on `port`.
    fn serve(storage: tempfile::TempDir, port: u16, config: &Path) -> Result<Self> {
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (install it: scripts/setup.sh)")?;
        wait_for(port, &mut child)?;
        Ok(Self {
            child,
            storage,
            port,
        })
    }

    /// Stop it (the storage stays): the registry is down until [`Self::restart`].
    pub fn stop(&mut self) -> Result<()> {
        let _ = self.child.kill();
        self.child.wait()?;
        Ok(())
    }

    /// Start it again on the same port and storage.
    pub fn restart(&mut self) -> Result<()> {
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.storage.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        wait_for(self.port, &mut child)?;
        self.child = child;
        Ok(())
    }

    /// `localhost:<port>`, which clients reach over plain HTTP.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// Where a blob is stored on disk (filesystem driver layout), for tampering tests.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for DistributionRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scripted response.
#[derive(Clone)]
pub struct Response {
    /// Status line code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// How a hostile registry sends a body (a `Response` header the server acts on and does
/// not send).
const STREAM: &str = "X-Fake-Stream";

impl Response {
    /// 200 with bytes that never end (no `Content-Length`; the server stops after 1 GiB or
    /// when the client leaves).
    pub fn endless(content_type: &str) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                (STREAM.into(), "endless".into()),
            ],
            body: Vec::new(),
        }
    }

    /// 200 with `body`, one byte per second (`Content-Length` sent).
    pub fn slow(content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("Content-Type".into(), content_type.into()),
                (STREAM.into(), "slow".into()),
            ],
            body,
        }
    }
}

/// One request as the fake registry received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers every request with what `answer`
/// returns for its path — a registry that misbehaves on purpose. Every request is kept
/// ([`FakeRegistry::requests`]).
pub struct FakeRegistry {
    /// The port.
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRegistry {
    /// Start it.
    pub fn start(answer: impl Fn(&str, &str) -> Response + Send + Sync + 'static) -> Result<Self> {
        Self::start_with_request(move |r| answer(&r.method, &r.path))
    }

    /// Start it, with each request's body passed to `answer` too.
    pub fn start_with_body(
        answer: impl Fn(&str, &str, &[u8]) -> Response + Send + Sync + 'static,
    ) -> Result<Self> {
        Self::start_with_request(move |r| answer(&r.method, &r.path, &r.body))
    }

    /// Start it, with the whole request (headers included) passed to `answer`. Each
    /// connection is served on its own thread, so a slow answer holds up no other.
    pub fn start_with_request(
        answer: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let answer = std::sync::Arc::new(answer);
        let (flag, log) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (answer, log, flag) = (answer.clone(), log.clone(), flag.clone());
                        std::thread::spawn(move || {
                            let _ = serve(stream, &*answer, &log, &flag);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Self {
            port,
            stop,
            seen,
            thread: Some(thread),
        })
    }

    /// `localhost:<port>`.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn serve(
    stream: TcpStream,
    answer: &dyn Fn(&Request) -> Response,
    log: &std::sync::Mutex<Vec<Request>>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
            }
            if let Some(v) = header.to_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let request = Request {
            method,
            path,
            headers,
            body,
        };
        if let Ok(mut log) = log.lock() {
            log.push(request.clone());
        }
        let response = answer(&request);
        let stream_mode = response
            .headers
            .iter()
            .find(|(k, _)| k == STREAM)
            .map(|(_, v)| v.clone());
        let mut out = format!("HTTP/1.1 {} X\r\n", response.status);
        if stream_mode.as_deref() != Some("endless") {
            out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
        } else {
            out.push_str("Connection: close\r\n");
        }
        for (k, v) in response.headers.iter().filter(|(k, _)| k != STREAM) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut writer = stream.try_clone()?;
        writer.write_all(out.as_bytes())?;
        match stream_mode.as_deref() {
            Some("endless") => {
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..(1 << 14) {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    writer.write_all(&chunk)?;
                }
                return Ok(());
            }
            Some("slow") => {
                for byte in &response.body {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return Ok(());
                    }
                    writer.write_all(&[*byte])?;
                    writer.flush()?;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            _ => writer.write_all(&response.body)?,
        }
        writer.flush()?;
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A Time-Stamping Authority on 127.0.0.1: OpenSSL's RFC 3161 implementation (`openssl ts
/// -reply`) behind a small HTTP front, with a test root CA and a TSA certificate it issued
/// (`extendedKeyUsage` critical `timeStamping`, `keyUsage` critical `digitalSignature`).
pub struct Tsa {
    /// `http://127.0.0.1:<port>/`.
    pub url: String,
    /// The root CA certificate (PEM).
    pub root: PathBuf,
    _server: FakeRegistry,
    _dir: tempfile::TempDir,
}

/// How the test TSA is set up.
#[derive(Default)]
pub struct TsaOptions {
    /// The TSTInfo `accuracy` it reports (OpenSSL syntax, e.g. `secs:1`).
    pub accuracy: Option<&'static str>,
    /// An OCSP location in the TSA certificate (never answered: nothing listens there).
    pub ocsp_url: Option<String>,
    /// What it changes in a request before answering it.
    pub rewrite: QueryRewrite,
}

/// What the test TSA changes in a request before answering it: each makes an answer to
/// another request than the one sent.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub enum QueryRewrite {
    /// Nothing: the request as sent (RFC 3161).
    #[default]
    AsSent,
    /// The nonce's last byte: another client's answer.
    NonceChanged,
    /// The nonce is dropped.
    NonceOmitted,
    /// The hashed message's last byte, the nonce kept: a token over other bytes.
    ImprintChanged,
}

/// `query`, a DER `TimeStampReq` as hsm-notary sends it (`SEQUENCE` of short length ending
/// `hashedMessage OCTET STRING` (in `messageImprint`), `nonce INTEGER`, `certReq TRUE`),
/// rewritten as `rewrite` says; `None` if it is not that shape.
fn rewrite_query(query: &[u8], rewrite: QueryRewrite) -> Option<Vec<u8>> {
    let body = query.get(2..)?;
    if query.first() != Some(&0x30) || usize::from(*query.get(1)?) != body.len() {
        return None;
    }
    // Walk the fields in order (version, messageImprint, nonce, certReq; all short-form
    // lengths at this size): the nonce is the second INTEGER, whatever its bytes hold.
    let mut fields = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let len = usize::from(*body.get(at + 1)?);
        if len >= 0x80 || at + 2 + len > body.len() {
            return None;
        }
        fields.push((body[at], at, at + 2 + len));
        at += 2 + len;
    }
    let tags: Vec<u8> = fields.iter().map(|f| f.0).collect();
    if tags != [0x02, 0x30, 0x02, 0x01] {
        return None;
    }
    let (_, start, end) = fields[2];
    let mut out = query.to_vec();
    match rewrite {
        QueryRewrite::AsSent => {}
        QueryRewrite::NonceChanged => out[2 + end - 1] ^= 0x01,
        // The byte before the nonce ends the hashed message, the last field of the imprint.
        QueryRewrite::ImprintChanged => out[2 + start - 1] ^= 0x01,
        QueryRewrite::NonceOmitted => {
            out.drain(2 + start..2 + end);
            out[1] = u8::try_from(out.len() - 2).ok()?;
        }
    }
    Some(out)
}

impl Tsa {
    /// Make the certificates and start answering.
    pub fn start() -> Result<Self> {
        Self::start_with(TsaOptions::default())
    }

    /// `start`, set up as `options` say.
    pub fn start_with(options: TsaOptions) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let openssl = |args: &[&str]| -> Result<()> {
            let output = Command::new("openssl").args(args).current_dir(d).output()?;
            if !output.status.success() {
                bail!(
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok(())
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=Test TSA Root/O=hsm-notary tests",
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "tsa.key",
            "-out",
            "tsa.csr",
            "-subj",
            "/CN=Test TSA/O=hsm-notary tests",
        ])?;
        let mut extensions = "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n".to_owned();
        if let Some(url) = &options.ocsp_url {
            extensions.push_str(&format!("authorityInfoAccess=OCSP;URI:{url}\n"));
        }
        std::fs::write(d.join("tsa.ext"), extensions)?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "tsa.pem",
            "-days",
            "3000",
            "-extfile",
            "tsa.ext",
        ])?;
        std::fs::write(d.join("tsaserial"), "01\n")?;
        // With an `accuracy`, `genTime - accuracy` can fall before a signing time of the same
        // second, which notation's rule (the timestamp bounded after the signing time)
        // refuses; `sign` then asks again.
        let accuracy = options
            .accuracy
            .map(|a| format!("accuracy = {a}\n"))
            .unwrap_or_default();
        std::fs::write(
            d.join("tsa.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\ndir = {}\nserial = $dir/tsaserial\n\
                 crypto_device = builtin\nsigner_cert = $dir/tsa.pem\ncerts = $dir/tsa.pem\n\
                 signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
                 digests = sha256, sha384, sha512\n{accuracy}clock_precision_digits = 0\n\
                 ordering = yes\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                d.display()
            ),
        )?;
        let work = d.to_owned();
        let counter = std::sync::atomic::AtomicU64::new(0);
        let server = FakeRegistry::start_with_body(move |method, _, body| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let query = work.join(format!("q{n}.tsq"));
            let reply = work.join(format!("r{n}.tsr"));
            let answered = method == "POST"
                && rewrite_query(body, options.rewrite)
                    .is_some_and(|body| std::fs::write(&query, body).is_ok())
                && Command::new("openssl")
                    .args(["ts", "-reply", "-config", "tsa.cnf", "-queryfile"])
                    .arg(&query)
                    .arg("-out")
                    .arg(&reply)
                    .current_dir(&work)
                    .output()
                    .is_ok_and(|o| o.status.success());
            match std::fs::read(&reply) {
                Ok(bytes) if answered => Response {
                    status: 200,
                    headers: vec![(
                        "Content-Type".to_owned(),
                        "application/timestamp-reply".to_owned(),
                    )],
                    body: bytes,
                },
                _ => Response {
                    status: 500,
                    headers: Vec::new(),
                    body: b"openssl ts -reply failed".to_vec(),
                },
            }
        })?;
        Ok(Self {
            url: format!("http://127.0.0.1:{}/", server.port),
            root: d.join("root.pem"),
            _server: server,
            _dir: dir,
        })
    }

    /// This TSA's DER response to a query over `data` made by `openssl ts -query` with
    /// `digest` (`-sha256`, `-sha1`, ...): a token for other bytes, or a refusal.
    pub fn reply_for(&self, data: &[u8], digest: &str) -> Result<Vec<u8>> {
        let d = self._dir.path();
        std::fs::write(d.join("other.data"), data)?;
        for args in [
            vec![
                "ts",
                "-query",
                "-data",
                "other.data",
                digest,
                "-cert",
                "-out",
                "other.tsq",
            ],
            vec![
                "ts",
                "-reply",
                "-config",
                "tsa.cnf",
                "-queryfile",
                "other.tsq",
                "-out",
                "other.tsr",
            ],
        ] {
            let output = Command::new("openssl")
                .args(&args)
                .current_dir(d)
                .output()?;
            if !output.status.success() {
                bail!(
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        Ok(std::fs::read(d.join("other.tsr"))?)
    }
}

/// Whether `program` runs.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run the independent Python verifier on an envelope; `Ok(stdout)` if it verified.
pub fn independent_verify(media_type: &str, envelope: &[u8], digest: &str) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("envelope");
    std::fs::write(&path, envelope)?;
    let script = crate::root().join("tests/independent/verify_envelope.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["--media-type", media_type, "--envelope"])
        .arg(&path)
        .args(["--expect-payload-digest", digest])
        .output()?;
    if !output.status.success() {
        bail!(
            "independent verification failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Path helper: `dir/name` as a `&str`-friendly `String`.
pub fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// A test CA and a TLS server certificate for `127.0.0.1` / `localhost` (also good for
/// client authentication), as PEM files in `dir`: (ca.pem, server.pem, server.key).
pub fn tls_files(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    use der::{Decode, Encode};
    use p256::pkcs8::EncodePrivateKey;
    use x509_cert::builder::profile::BuilderProfile;
    use x509_cert::builder::{Builder, CertificateBuilder};
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::{
        BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    };
    use x509_cert::ext::{Extension, ToExtension};
    use x509_cert::name::Name;

    struct Tls {
        subject: Name,
        issuer: Name,
        ca: bool,
    }
    impl BuilderProfile for Tls {
        fn get_issuer(&self, _: &Name) -> Name {
            self.issuer.clone()
        }
        fn get_subject(&self) -> Name {
            self.subject.clone()
        }
        fn build_extensions(
            &self,
            _: spki::SubjectPublicKeyInfoRef<'_>,
            _: spki::SubjectPublicKeyInfoRef<'_>,
            tbs: &x509_cert::TbsCertificate,
        ) -> x509_cert::builder::Result<Vec<Extension>> {
            let subject = tbs.subject();
            let mut out: Vec<Extension> = Vec::new();
            out.push(
                (&BasicConstraints {
                    ca: self.ca,
                    path_len_constraint: None,
                })
                    .to_extension(subject, &out)?,
            );
            if self.ca {
                out.push((&KeyUsage(KeyUsages::KeyCertSign.into())).to_extension(subject, &out)?);
            } else {
                out.push(
                    (&KeyUsage(KeyUsages::DigitalSignature.into())).to_extension(subject, &out)?,
                );
                out.push(
                    (&ExtendedKeyUsage(vec![
                        const_oid::db::rfc5280::ID_KP_SERVER_AUTH,
                        // So that the same pair serves as a client certificate too.
                        const_oid::db::rfc5280::ID_KP_CLIENT_AUTH,
                    ]))
                        .to_extension(subject, &out)?,
                );
                let names = SubjectAltName(vec![
                    GeneralName::DnsName(der::asn1::Ia5String::new("localhost")?),
                    GeneralName::IpAddress(der::asn1::OctetString::new(vec![127, 0, 0, 1])?),
                ]);
                out.push((&names).to_extension(subject, &out)?);
            }
            Ok(out)
        }
    }
    fn key() -> p256::ecdsa::SigningKey {
        use p256::elliptic_curve::Generate;
        p256::ecdsa::SigningKey::from(p256::SecretKey::try_generate().expect("randomness"))
    }
    let validity = x509_cert::time::Validity::from_now(Duration::from_secs(86_400))?;
    let ca_key = key();
    let ca_name: Name = "CN=hsm-notary test TLS CA".parse()?;
    let ca = CertificateBuilder::new(
        Tls {
            subject: ca_name.clone(),
            issuer: ca_name.clone(),
            ca: true,
        },
        x509_cert::serial_number::SerialNumber::from(1u32),
        validity,
        spki::SubjectPublicKeyInfoOwned::from_key(ca_key.verifying_key())?,
    )?
    .build::<_, p256::ecdsa::DerSignature>(&ca_key)?;
    let server_key = key();
    let server = CertificateBuilder::new(
        Tls {
            subject: "CN=localhost".parse()?,
            issuer: ca_name,
            ca: false,
        },
        x509_cert::serial_number::SerialNumber::from(2u32),
        validity,
        spki::SubjectPublicKeyInfoOwned::from_key(server_key.verifying_key())?,
    )?
    .build::<_, p256::ecdsa::DerSignature>(&ca_key)?;
    let pem = |label: &str, der: &[u8]| {
        let body = notary_verifier::encoding::encode_base64(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let _ = x509_cert::Certificate::from_der(&ca.to_der()?)?;
    let ca_path = dir.join("ca.pem");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    std::fs::write(&ca_path, pem("CERTIFICATE", &ca.to_der()?))?;
    std::fs::write(&cert_path, pem("CERTIFICATE", &server.to_der()?))?;
    std::fs::write(
        &key_path,
        server_key
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)?
            .as_bytes(),
    )?;
    Ok((ca_path, cert_path, key_path))
}

impl DistributionRegistry {
    /// Start one on 127.0.0.1 with TLS (certificate and key files) and htpasswd basic auth
    /// for `user`/`password` (hashed with `htpasswd -B`).
    pub fn start_tls_auth(cert: &Path, key: &Path, user: &str, password: &str) -> Result<Self> {
        let storage = tempfile::tempdir()?;
        let port = free_port()?;
        let htpasswd = storage.path().join("htpasswd");
        let output = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .context("running htpasswd (apache2-utils: scripts/setup.sh)")?;
        if !output.status.success() {
            bail!("htpasswd failed");
        }
        std::fs::write(&htpasswd, &output.stdout)?;
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nauth:\n  htpasswd:\n    realm: hsm-notary-test\n    path: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
                storage.path().join("data").display(),
                htpasswd.display(),
                cert.display(),
                key.display()
            ),
        )?;
        Self::serve(storage, port, &config)
    }
}

/// `ferro-oci-server` (OCI distribution 1.1, with the referrers API), installed by
/// `scripts/setup.sh` with `cargo install --locked ferro-oci-server@1.0.0`.
pub struct ReferrersRegistry {
    child: Child,
    _storage: tempfile::TempDir,
    /// The port on 127.0.0.1.
    pub port: u16,
}

impl ReferrersRegistry {
    /// Start one on 127.0.0.1 with a temp blob directory.
    pub fn start() -> Result<Self> {
        let storage = tempfile::tempdir()?;
        let port = free_port()?;
        let mut child = Command::new(ferro_binary())
            .env("FERRO_OCI_LISTEN", format!("127.0.0.1:{port}"))
            .env("FERRO_OCI_STORAGE_DIR", storage.path())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ferro-oci-server (install it: scripts/setup.sh)")?;
        wait_for(port, &mut child)?;
        Ok(Self {
            child,
            _storage: storage,
            port,
        })
    }

    /// `localhost:<port>`, which clients reach over plain HTTP.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }
}

impl Drop for ReferrersRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ferro-oci-server` on `PATH`, else in cargo's install directory.
fn ferro_binary() -> PathBuf {
    let name = "ferro-oci-server";
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if on_path {
        return PathBuf::from(name);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    cargo_home.join("bin").join(name)
}

/// Push a one-layer image to `repository` of `registry`; its `HOST/REPOSITORY@DIGEST`.
pub fn push_image(registry: &DistributionRegistry, repository: &str, content: &str) -> String {
    use hsm_notary::registry::{ArtifactRef, Options, Registry};
    let reference = format!("{}/{repository}:v1", registry.host());
    let artifact = ArtifactRef::parse(&reference).expect("reference");
    let remote = Registry::connect(&artifact, &Options::default()).expect("registry");
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let descriptor = remote
        .push_image(config, &[content.as_bytes()], "v1")
        .expect("push");
    format!("{}/{repository}@{}", registry.host(), descriptor.digest)
}

/// The envelope of the signature manifest `manifest_digest`, straight from the registry,
/// with its media type and digest; the manifest checked to be a Notary Project signature
/// manifest with hsm-notary's annotations.
pub fn fetch_envelope(reference: &str, manifest_digest: &str) -> (String, Vec<u8>, String) {
    use hsm_notary::registry::{ArtifactRef, Options, Registry};
    let artifact = ArtifactRef::parse(reference).expect("reference");
    let remote = Registry::connect(&artifact, &Options::default()).expect("registry");
    let (bytes, _) = remote.manifest(manifest_digest, None).expect("manifest");
    let manifest: hsm_notary::oci::Manifest = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(
        manifest.artifact_type.as_deref(),
        Some("application/vnd.cncf.notary.signature")
    );
    assert_eq!(
        manifest.config.media_type,
        "application/vnd.oci.empty.v1+json"
    );
    for annotation in [
        "io.cncf.notary.x509chain.thumbprint#S256",
        "org.opencontainers.image.created",
    ] {
        assert!(
            manifest.annotations.contains_key(annotation),
            "{annotation}"
        );
    }
    let layer = &manifest.layers[0];
    let envelope = remote.blob(layer, 1 << 25, "envelope").expect("envelope");
    (layer.media_type.clone(), envelope, layer.digest.clone())
}
