//! Keys in a hardware security module over PKCS#11 (`cryptoki`).
//!
//! Keys are addressed by RFC 7512 URIs (`pkcs11:token=…;object=…?module-path=…&pin-source=…`);
//! tokens are found by label, not slot number. One context per module per process (the
//! module is initialized once), a small pool of logged-in sessions so that concurrent
//! signing uses several sessions, and `CKR_USER_ALREADY_LOGGED_IN` treated as success.
//! The PIN is a `SecretString`: never printed, never in an error, zeroized on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::{Decode, Encode};
use notary_verifier::signature::{Curve, HashAlgorithm, KeySpec, SignatureAlgorithm};
use secrecy::{ExposeSecret, SecretString};

/// A parsed `pkcs11:` URI (RFC 7512), with the attributes hsm-notary uses.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=` (token label).
    pub token: Option<String>,
    /// `object=` (key label).
    pub object: Option<String>,
    /// `id=` (key id bytes).
    pub id: Option<Vec<u8>>,
    /// `module-path=` query attribute.
    pub module_path: Option<PathBuf>,
    /// `pin-source=` query attribute (`file:PATH` or a path).
    pub pin_source: Option<String>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pin-value is never kept; pin-source is a location, not a secret.
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("object", &self.object)
            .field("id", &self.id)
            .field("module_path", &self.module_path)
            .field("pin_source", &self.pin_source)
            .finish()
    }
}

fn percent_decode(text: &str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    anyhow!(
                        "invalid percent-encoding in PKCS#11 URI near {:?}",
                        &text[i..]
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_text(text: &str) -> Result<String> {
    String::from_utf8(percent_decode(text)?).context("PKCS#11 URI attribute is not UTF-8")
}

impl Pkcs11Uri {
    /// Parse `pkcs11:path-attributes[?query-attributes]`.
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = uri.strip_prefix("pkcs11:").ok_or_else(|| {
            anyhow!("{uri:?} is not a PKCS#11 URI (it must start with \"pkcs11:\")")
        })?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parsed = Self::default();
        for attribute in path.split(';').filter(|a| !a.is_empty()) {
            let (key, value) = attribute
                .split_once('=')
                .ok_or_else(|| anyhow!("PKCS#11 URI attribute {attribute:?} has no '='"))?;
            match key {
                "token" => parsed.token = Some(decode_text(value)?),
                "object" => parsed.object = Some(decode_text(value)?),
                "id" => parsed.id = Some(percent_decode(value)?),
                "type"
                | "manufacturer"
                | "model"
                | "serial"
                | "library-description"
                | "library-manufacturer"
                | "library-version"
                | "slot-description"
                | "slot-id"
                | "slot-manufacturer" => {}
                other => bail!("unsupported PKCS#11 URI path attribute {other:?}"),
            }
        }
        for attribute in query.split('&').filter(|a| !a.is_empty()) {
            let (key, value) = attribute
                .split_once('=')
                .ok_or_else(|| anyhow!("PKCS#11 URI query attribute {attribute:?} has no '='"))?;
            match key {
                "module-path" => parsed.module_path = Some(PathBuf::from(decode_text(value)?)),
                "pin-source" => parsed.pin_source = Some(decode_text(value)?),
                "pin-value" => bail!(
                    "pin-value in a PKCS#11 URI is refused: put the PIN in a file (pin-source=file:PATH) or in HSM_NOTARY_PKCS11_PIN"
                ),
                "module-name" => {}
                other => bail!("unsupported PKCS#11 URI query attribute {other:?}"),
            }
        }
        if parsed.token.is_none() {
            bail!("PKCS#11 URI {uri:?} must name the token (token=LABEL)");
        }
        Ok(parsed)
    }

    /// The URI text (without the PIN source).
    pub fn key_uri(&self) -> String {
        let mut out = format!(
            "pkcs11:token={}",
            encode(self.token.as_deref().unwrap_or_default())
        );
        if let Some(object) = &self.object {
            out.push_str(&format!(";object={}", encode(object)));
        }
        out
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Where the module comes from: the URI, `--pkcs11-module`, `HSM_NOTARY_PKCS11_MODULE`.
pub fn module_path(uri: &Pkcs11Uri, flag: Option<&Path>) -> Result<PathBuf> {
    uri.module_path
        .clone()
        .or_else(|| flag.map(Path::to_path_buf))
        .or_else(|| std::env::var_os("HSM_NOTARY_PKCS11_MODULE").map(PathBuf::from))
        .ok_or_else(|| anyhow!("no PKCS#11 module: give module-path= in the URI, --pkcs11-module, or HSM_NOTARY_PKCS11_MODULE"))
}

/// The user PIN: `pin-source=file:PATH`, `HSM_NOTARY_PKCS11_PIN`, or a terminal prompt.
pub fn read_pin(uri: &Pkcs11Uri) -> Result<SecretString> {
    if let Some(source) = &uri.pin_source {
        let path = source.strip_prefix("file:").unwrap_or(source);
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read the PIN from pin-source {path}: {}", e.kind()))?;
        return Ok(SecretString::from(
            text.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    if let Ok(pin) = std::env::var("HSM_NOTARY_PKCS11_PIN") {
        return Ok(SecretString::from(pin));
    }
    prompt_pin(uri.token.as_deref().unwrap_or_default())
}

fn prompt_pin(token: &str) -> Result<SecretString> {
    use std::io::{BufRead, IsTerminal, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty");
    let Ok(tty) = tty else {
        bail!(
            "no PIN for token {token:?}: set pin-source=file:PATH in the URI or HSM_NOTARY_PKCS11_PIN"
        );
    };
    if !tty.is_terminal() {
        bail!("no PIN for token {token:?} and no terminal to ask on");
    }
    let mut writer = &tty;
    write!(writer, "PIN for token {token:?}: ")?;
    writer.flush()?;
    // Turn echo off while the PIN is typed.
    let _ = std::process::Command::new("stty")
        .arg("-echo")
        .stdin(tty.try_clone()?)
        .status();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = std::process::Command::new("stty")
        .arg("echo")
        .stdin(tty.try_clone()?)
        .status();
    writeln!(writer)?;
    read?;
    Ok(SecretString::from(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// Key types `key generate` creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// NIST P-256.
    #[value(name = "ec-p256")]
    EcP256,
    /// NIST P-384.
    #[value(name = "ec-p384")]
    EcP384,
    /// NIST P-521.
    #[value(name = "ec-p521")]
    EcP521,
    /// RSA 2048.
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA 3072.
    #[value(name = "rsa-3072")]
    Rsa3072,
    /// RSA 4096.
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl KeyKind {
    /// The key spec.
    pub fn spec(self) -> KeySpec {
        match self {
            Self::EcP256 => KeySpec::Ec(Curve::P256),
            Self::EcP384 => KeySpec::Ec(Curve::P384),
            Self::EcP521 => KeySpec::Ec(Curve::P521),
            Self::Rsa2048 => KeySpec::Rsa(2048),
            Self::Rsa3072 => KeySpec::Rsa(3072),
            Self::Rsa4096 => KeySpec::Rsa(4096),
        }
    }
}

fn curve_oid(curve: Curve) -> const_oid::ObjectIdentifier {
    match curve {
        Curve::P256 => const_oid::db::rfc5912::SECP_256_R_1,
        Curve::P384 => const_oid::db::rfc5912::SECP_384_R_1,
        Curve::P521 => const_oid::db::rfc5912::SECP_521_R_1,
    }
}

/// One initialized module per path, shared by the whole process.
fn context(module: &Path) -> Result<Pkcs11> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let contexts = CONTEXTS.get_or_init(Default::default);
    let mut map = contexts
        .lock()
        .map_err(|_| anyhow!("PKCS#11 context lock poisoned"))?;
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module)
        .map_err(|e| {
            // The static musl build (for Ratify's and other distroless images) has no
            // dynamic loader, so no PKCS#11 module can be loaded into it.
            let hint = if cfg!(target_env = "musl") {
                "; this is the statically linked build, which verifies but cannot load PKCS#11 modules: sign with the dynamically linked build"
            } else {
                ""
            };
            anyhow!("cannot load PKCS#11 module {}: {e}{hint}", module.display())
        })?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .or_else(|e| match e {
            CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _) => Ok(()),
            e => Err(e),
        })
        .map_err(|e| anyhow!("cannot initialize PKCS#11 module {}: {e}", module.display()))?;
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A token, logged in, with a pool of sessions.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    pin: SecretString,
    pool: Mutex<Vec<Session>>,
}

/// Sessions kept open for reuse.
const POOL_SIZE: usize = 8;

impl Token {
    /// Open the token the URI names (by label) with the module from `module`.
    pub fn open(uri: &Pkcs11Uri, module: &Path) -> Result<Arc<Self>> {
        let ctx = context(module)?;
        let label = uri.token.clone().unwrap_or_default();
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| anyhow!("listing PKCS#11 slots: {e}"))?;
        let slot = slots
            .into_iter()
            .find(|slot| {
                ctx.get_token_info(*slot)
                    .map(|info| info.label().trim_end() == label)
                    .unwrap_or(false)
            })
            .ok_or_else(|| {
                anyhow!(
                    "no PKCS#11 token labelled {label:?} in {}",
                    module.display()
                )
            })?;
        let pin = read_pin(uri)?;
        let token = Arc::new(Self {
            ctx,
            slot,
            label,
            pin,
            pool: Mutex::new(Vec::new()),
        });
        // Log in now, so that a wrong PIN is reported before any work.
        let session = token.take_session()?;
        token.put_session(session);
        Ok(token)
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn take_session(&self) -> Result<Session> {
        if let Some(session) = self
            .pool
            .lock()
            .map_err(|_| anyhow!("session pool poisoned"))?
            .pop()
        {
            return Ok(session);
        }
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| anyhow!("opening a session on token {:?}: {e}", self.label))?;
        let pin = AuthPin::from(self.pin.expose_secret().to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                bail!("login to token {:?} failed: incorrect PIN", self.label)
            }
            Err(e) => bail!(
                "login to token {:?} failed: {}",
                self.label,
                redact(&e.to_string(), &self.pin)
            ),
        }
    }

    fn put_session(&self, session: Session) {
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL_SIZE
        {
            pool.push(session);
        }
    }

    /// Run `f` with a pooled session.
    pub fn with_session<R>(&self, f: impl FnOnce(&Session) -> Result<R>) -> Result<R> {
        let session = self.take_session()?;
        let result = f(&session);
        self.put_session(session);
        result
    }

    /// Generate a non-extractable, sensitive key pair labelled `label`.
    pub fn generate(&self, kind: KeyKind, label: &str) -> Result<()> {
        self.with_session(|session| {
            if !find(session, ObjectClass::PRIVATE_KEY, label)?.is_empty() {
                bail!(
                    "a key labelled {label:?} already exists on token {:?}",
                    self.label
                );
            }
            let id = label.as_bytes().to_vec();
            let common = |class: ObjectClass| {
                vec![
                    Attribute::Class(class),
                    Attribute::Token(true),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Id(id.clone()),
                ]
            };
            let mut public = common(ObjectClass::PUBLIC_KEY);
            public.push(Attribute::Verify(true));
            let mut private = common(ObjectClass::PRIVATE_KEY);
            private.extend([
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
            ]);
            let mechanism = match kind.spec() {
                KeySpec::Ec(curve) => {
                    public.push(Attribute::EcParams(curve_oid(curve).to_der()?));
                    Mechanism::EccKeyPairGen
                }
                KeySpec::Rsa(bits) => {
                    public.push(Attribute::ModulusBits(u64::from(bits).into()));
                    public.push(Attribute::PublicExponent(vec![1, 0, 1]));
                    Mechanism::RsaPkcsKeyPairGen
                }
            };
            session
                .generate_key_pair(&mechanism, &public, &private)
                .map_err(|e| anyhow!("generating a {kind:?} key on token {:?}: {e}", self.label))?;
            Ok(())
        })
    }

    /// The key pair labelled `label`.
    pub fn key(self: &Arc<Self>, label: &str) -> Result<HsmKey> {
        self.with_session(|session| {
            let private = find(session, ObjectClass::PRIVATE_KEY, label)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    anyhow!(
                        "no private key labelled {label:?} on token {:?}",
                        self.label
                    )
                })?;
            let public = find(session, ObjectClass::PUBLIC_KEY, label)?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    anyhow!("no public key labelled {label:?} on token {:?}", self.label)
                })?;
            let spki = public_key_info(session, public)?;
            let key = notary_verifier::signature::PublicKey::from_spki(&spki)
                .map_err(|e| anyhow!("key {label:?}: {e}"))?;
            Ok(HsmKey {
                token: Arc::clone(self),
                label: label.to_owned(),
                private,
                spki,
                spec: key.spec(),
            })
        })
    }

    /// Store X.509 certificates (DER) on the token as certificate objects: the first
    /// labelled `label` with the key's id (beside the key, where PKCS#11 tools look), the
    /// others `{label}-ca-{n}`. Existing objects of those labels are refused.
    pub fn import_certificates(&self, label: &str, chain: &[Vec<u8>]) -> Result<()> {
        self.with_session(|session| {
            for (i, der) in chain.iter().enumerate() {
                let object_label = if i == 0 {
                    label.to_owned()
                } else {
                    format!("{label}-ca-{i}")
                };
                if !find(session, ObjectClass::CERTIFICATE, &object_label)?.is_empty() {
                    bail!(
                        "a certificate labelled {object_label:?} already exists on token {:?}",
                        self.label
                    );
                }
                let cert = x509_cert::Certificate::from_der(der)
                    .map_err(|e| anyhow!("certificate {i} of the chain: {e}"))?;
                let subject = cert.tbs_certificate().subject().to_der()?;
                session
                    .create_object(&[
                        Attribute::Class(ObjectClass::CERTIFICATE),
                        Attribute::CertificateType(CertificateType::X_509),
                        Attribute::Token(true),
                        Attribute::Label(object_label.as_bytes().to_vec()),
                        Attribute::Id(object_label.as_bytes().to_vec()),
                        Attribute::Subject(subject),
                        Attribute::Value(der.clone()),
                    ])
                    .map_err(|e| anyhow!("storing certificate {object_label:?}: {e}"))?;
            }
            Ok(())
        })
    }

    /// Every X.509 certificate object on the token (DER), at most 256.
    pub fn certificates(&self) -> Result<Vec<Vec<u8>>> {
        self.with_session(|session| {
            let handles = session
                .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
                .map_err(|e| anyhow!("listing certificates: {e}"))?;
            let mut out = Vec::new();
            for handle in handles.into_iter().take(256) {
                for attribute in session.get_attributes(handle, &[AttributeType::Value])? {
                    if let Attribute::Value(der) = attribute {
                        out.push(der);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Labels of the private keys on the token.
    pub fn key_labels(&self) -> Result<Vec<String>> {
        self.with_session(|session| {
            let handles = session
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
                .map_err(|e| anyhow!("listing keys: {e}"))?;
            let mut labels = Vec::new();
            for handle in handles {
                for attribute in session.get_attributes(handle, &[AttributeType::Label])? {
                    if let Attribute::Label(bytes) = attribute {
                        labels.push(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
            Ok(labels)
        })
    }
}

fn redact(text: &str, pin: &SecretString) -> String {
    let secret = pin.expose_secret();
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "*****")
    }
}

fn find(session: &Session, class: ObjectClass, label: &str) -> Result<Vec<ObjectHandle>> {
    session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| anyhow!("searching for {label:?}: {e}"))
}

fn public_key_info(
    session: &Session,
    handle: ObjectHandle,
) -> Result<spki::SubjectPublicKeyInfoOwned> {
    let attributes = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let mut key_type = None;
    let (mut params, mut point, mut modulus, mut exponent) = (None, None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    match key_type {
        Some(KeyType::EC) => {
            let params = params.context("EC key without CKA_EC_PARAMS")?;
            let point = point.context("EC key without CKA_EC_POINT")?;
            // CKA_EC_POINT is a DER OCTET STRING around the SEC1 point.
            let point = der::asn1::OctetString::from_der(&point)
                .map(|o| o.as_bytes().to_vec())
                .unwrap_or(point);
            let curve: const_oid::ObjectIdentifier =
                const_oid::ObjectIdentifier::from_der(&params)?;
            Ok(spki::SubjectPublicKeyInfoOwned {
                algorithm: spki::AlgorithmIdentifierOwned {
                    oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                    parameters: Some(der::Any::encode_from(&curve)?),
                },
                subject_public_key: der::asn1::BitString::from_bytes(&point)?,
            })
        }
        Some(KeyType::RSA) => {
            let n = modulus.context("RSA key without CKA_MODULUS")?;
            let e = exponent.context("RSA key without CKA_PUBLIC_EXPONENT")?;
            let key = rsa::pkcs1::RsaPublicKey {
                modulus: der::asn1::UintRef::new(&n)?,
                public_exponent: der::asn1::UintRef::new(&e)?,
            };
            Ok(spki::SubjectPublicKeyInfoOwned {
                algorithm: spki::AlgorithmIdentifierOwned {
                    oid: const_oid::db::rfc5912::RSA_ENCRYPTION,
                    parameters: Some(der::asn1::Null.into()),
                },
                subject_public_key: der::asn1::BitString::from_bytes(&key.to_der()?)?,
            })
        }
        other => bail!("unsupported key type {other:?}"),
    }
}

/// A private key in the token.
pub struct HsmKey {
    token: Arc<Token>,
    label: String,
    private: ObjectHandle,
    /// The public key.
    pub spki: spki::SubjectPublicKeyInfoOwned,
    /// Its type and size.
    pub spec: KeySpec,
}

impl HsmKey {
    /// The token the key is on.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The key label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The algorithm the specification pairs with this key.
    pub fn algorithm(&self) -> Result<SignatureAlgorithm> {
        self.spec.signature_algorithm().ok_or_else(|| {
            anyhow!(
                "{} keys cannot make Notary Project signatures",
                self.spec.name()
            )
        })
    }

    /// Sign `message` (hashed here, signed in the token): ECDSA as raw `r || s`,
    /// RSASSA-PSS with MGF1 and salt = hash length.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let algorithm = self.algorithm()?;
        let hash = algorithm.hash();
        let digest = hash.digest(message);
        let mechanism = match algorithm {
            SignatureAlgorithm::EcdsaSha256
            | SignatureAlgorithm::EcdsaSha384
            | SignatureAlgorithm::EcdsaSha512 => Mechanism::Ecdsa,
            _ => pss_mechanism(hash),
        };
        self.token.with_session(|session| {
            session
                .sign(&mechanism, self.private, &digest)
                .map_err(|e| {
                    anyhow!(
                        "signing with key {:?} on token {:?}: {e}",
                        self.label,
                        self.token.label
                    )
                })
        })
    }

    /// PKCS #1 v1.5 with SHA-256 (hashed in the token), for certificate requests.
    pub fn sign_pkcs1_sha256(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.token.with_session(|session| {
            session
                .sign(&Mechanism::Sha256RsaPkcs, self.private, message)
                .map_err(|e| anyhow!("signing with key {:?}: {e}", self.label))
        })
    }

    /// Raw `C_Sign` over a precomputed digest (for the throughput bench).
    pub fn sign_digest_raw(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let mechanism = match self.spec {
            KeySpec::Ec(_) => Mechanism::Ecdsa,
            KeySpec::Rsa(_) => pss_mechanism(self.algorithm()?.hash()),
        };
        self.token
            .with_session(|session| Ok(session.sign(&mechanism, self.private, digest)?))
    }
}

/// RSASSA-PSS over a precomputed digest: MGF1 with the same hash, salt = hash length
/// (the specification's parameters).
fn pss_mechanism(hash: HashAlgorithm) -> Mechanism<'static> {
    let (hash_alg, mgf) = match hash {
        HashAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    Mechanism::RsaPkcsPss(PkcsPssParams {
        hash_alg,
        mgf,
        s_len: (hash.size() as u64).into(),
    })
}
