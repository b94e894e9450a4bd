//! A test PKI for revocation checking, made with the `openssl` CLI in a temp directory, and
//! the loopback servers that publish its revocation data:
//!
//! - [`Pki`]: root CA → intermediate CA → code-signing leaf (EC P-256, PKCS#8 PEM keys),
//!   each below the root naming the OCSP and CRL locations [`PkiOptions`] gives; a
//!   delegated OCSP responder certificate (`OCSPSigning`, `id-pkix-ocsp-nocheck`) issued by
//!   the intermediate; an unrelated CA for "signed by another CA" cases.
//! - [`TsaPki`]: a TSA root → TSA intermediate → TSA leaf (`timeStamping`, critical), with
//!   [`TsaPki::ts_config`] for `openssl ts -reply` and [`TsaServer`] answering RFC 3161
//!   requests with it.
//! - [`Ca`]: an `openssl ca` database per CA: revoke (any reason, hold, compromise time),
//!   un-revoke, forget (OCSP then answers "unknown"), CRLs by `openssl ca -gencrl` and, for
//!   what `openssl ca` cannot make (delta CRLs, FreshestCRL, removeFromCRL entries, another
//!   signing key, a corrupted signature), by `tests/support/make_crl.py` (Python
//!   `cryptography`).
//! - [`RevocationServer`]: `tests/support/revocation_server.py` serving CRL files from a
//!   directory, with failure modes switched per path while it runs and a request log;
//!   [`OcspResponder`]: the same server answering OCSP through `openssl ocsp -reqin` for one
//!   CA's index (read afresh per request, so revocations show at once).
//!
//! Everything listens on 127.0.0.1 only and is stopped by PID when dropped; every wait is
//! bounded.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::services::{FakeRegistry, Response, free_port};

/// The root's subject, as notation prints it (Go's `pkix.Name.String()`).
pub const ROOT_SUBJECT: &str = "CN=revocation-root,O=hsm-notary tests,C=US";
/// The intermediate's subject.
pub const INTERMEDIATE_SUBJECT: &str = "CN=revocation-intermediate,O=hsm-notary tests,C=US";
/// The code-signing leaf's subject.
pub const LEAF_SUBJECT: &str = "CN=revocation-leaf,O=hsm-notary tests,C=US";
/// The intermediate's delegated OCSP responder's subject.
pub const OCSP_SIGNER_SUBJECT: &str = "CN=revocation-ocsp-responder,O=hsm-notary tests,C=US";
/// The unrelated CA's subject.
pub const OTHER_CA_SUBJECT: &str = "CN=revocation-other-ca,O=hsm-notary tests,C=US";
/// The TSA root's subject.
pub const TSA_ROOT_SUBJECT: &str = "CN=revocation-tsa-root,O=hsm-notary tests,C=US";
/// The TSA intermediate's subject.
pub const TSA_INTERMEDIATE_SUBJECT: &str = "CN=revocation-tsa-intermediate,O=hsm-notary tests,C=US";
/// The TSA leaf's subject.
pub const TSA_LEAF_SUBJECT: &str = "CN=revocation-tsa,O=hsm-notary tests,C=US";

/// How long below-root certificates are back-dated, so that no clock rounding makes a
/// fresh certificate "not yet valid".
const BACKDATE: i64 = 3600;

/// Seconds since the UNIX epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `YYYYMMDDHHMMSSZ` (ASN.1 GeneralizedTime, what `openssl ca` takes) for a UNIX time.
pub fn generalized_time(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `CN=a,O=b,C=US` (Go's order, most specific first) → `/C=US/O=b/CN=a` (openssl's, in
/// ASN.1 order), so that the certificate renders back as the Go form.
fn openssl_dn(subject: &str) -> String {
    subject
        .split(',')
        .rev()
        .map(|rdn| format!("/{rdn}"))
        .collect()
}

/// Run `openssl ARGS` in `dir`; its stdout, or an error with its stderr.
pub fn openssl(dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (install it: scripts/setup.sh)")?;
    if !output.status.success() {
        bail!(
            "openssl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// Write `bytes` to `path` through a temporary file and a rename, so that a server never
/// serves half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
}

/// A fresh EC P-256 key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as hsm-notary's local
/// keys are.
fn generate_key(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &path_arg(path),
        ],
    )?;
    Ok(())
}

/// Where a certificate says its revocation status is published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locations {
    /// The OCSP responder (`authorityInfoAccess` `OCSP;URI:`), e.g. `http://127.0.0.1:P/`.
    pub ocsp: Option<String>,
    /// The CRL distribution point (`crlDistributionPoints` `URI:`).
    pub crl: Option<String>,
}

impl Locations {
    /// No location: the certificate is "non-revokable".
    pub fn none() -> Self {
        Self::default()
    }

    /// Both an OCSP responder and a CRL.
    pub fn both(ocsp: impl Into<String>, crl: impl Into<String>) -> Self {
        Self {
            ocsp: Some(ocsp.into()),
            crl: Some(crl.into()),
        }
    }

    /// Only a CRL.
    pub fn crl(crl: impl Into<String>) -> Self {
        Self {
            ocsp: None,
            crl: Some(crl.into()),
        }
    }

    /// Only an OCSP responder.
    pub fn ocsp(ocsp: impl Into<String>) -> Self {
        Self {
            ocsp: Some(ocsp.into()),
            crl: None,
        }
    }

    fn extension_lines(&self) -> String {
        let mut out = String::new();
        if let Some(url) = &self.ocsp {
            out.push_str(&format!("authorityInfoAccess = OCSP;URI:{url}\n"));
        }
        if let Some(url) = &self.crl {
            out.push_str(&format!("crlDistributionPoints = URI:{url}\n"));
        }
        out
    }
}

/// What a certificate is for: its extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// A CA: `basicConstraints` critical `CA:true` (with this `pathlen`), `keyUsage`
    /// critical `keyCertSign, cRLSign`.
    Ca {
        /// `pathlen`, if any.
        path_len: Option<u8>,
    },
    /// A code-signing leaf: `basicConstraints` `CA:false`, `keyUsage` critical
    /// `digitalSignature`, `extendedKeyUsage` `codeSigning`.
    CodeSigning,
    /// A TSA: `basicConstraints` critical `CA:false`, `keyUsage` critical
    /// `digitalSignature`, `extendedKeyUsage` critical `timeStamping`.
    Timestamping,
    /// A delegated OCSP responder: `extendedKeyUsage` critical `OCSPSigning` and
    /// `id-pkix-ocsp-nocheck`.
    OcspSigning,
    /// [`Profile::CodeSigning`] plus these `openssl x509v3_config` lines.
    CodeSigningWith(&'static str),
    /// [`Profile::Ca`] (`pathlen:0`) plus these lines.
    CaWith(&'static str),
    /// A TLS server for `127.0.0.1` / `localhost` (`serverAuth`).
    TlsServer,
    /// A TLS client (`clientAuth`).
    TlsClient,
}

impl Profile {
    fn extension_lines(self) -> String {
        match self {
            Self::Ca { path_len } => format!(
                "basicConstraints = critical,CA:true{}\nkeyUsage = critical,keyCertSign,cRLSign\n",
                path_len.map(|n| format!(",pathlen:{n}")).unwrap_or_default()
            ),
            Self::CodeSigning => "basicConstraints = CA:false\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = codeSigning\n".to_owned(),
            Self::Timestamping => "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = critical,timeStamping\n".to_owned(),
            Self::OcspSigning => "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = critical,OCSPSigning\nnoCheck = ignored\n".to_owned(),
            Self::CodeSigningWith(extra) => {
                format!("{}{extra}\n", Self::CodeSigning.extension_lines())
            }
            Self::TlsServer => "basicConstraints = CA:false\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n".to_owned(),
            Self::TlsClient => "basicConstraints = CA:false\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n".to_owned(),
            Self::CaWith(extra) => format!(
                "{}{extra}\n",
                Self::Ca { path_len: Some(0) }.extension_lines()
            ),
        }
    }
}

/// A certificate request to a [`Ca`].
#[derive(Clone, Debug)]
pub struct IssueSpec {
    /// Directory name under the PKI directory (`key.pem`, `cert.pem` go there).
    pub name: String,
    /// Subject in Go's form, e.g. [`LEAF_SUBJECT`].
    pub subject: String,
    /// Extensions.
    pub profile: Profile,
    /// OCSP / CRL locations it names.
    pub locations: Locations,
    /// Validity from now (it starts an hour ago).
    pub days: u32,
}

/// A certificate with its key, in `<pki>/<name>/{cert.pem,key.pem}`.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Its directory name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Subject, Go's form.
    pub subject: String,
    /// Serial number, upper-case hex as `openssl x509 -serial` prints it.
    pub serial: String,
}

impl Issued {
    /// The certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The key (PKCS#8 PEM).
    pub fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The certificate as PEM text.
    pub fn pem(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.cert())?)
    }

    fn read_serial(dir: &Path) -> Result<String> {
        let out = openssl(dir, &["x509", "-in", "cert.pem", "-noout", "-serial"])?;
        Ok(out
            .trim()
            .strip_prefix("serial=")
            .context("openssl x509 -serial printed no serial")?
            .to_owned())
    }
}

/// Why a certificate is revoked (`openssl ca -revoke` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `-crl_reason unspecified`.
    Unspecified,
    /// `-crl_reason keyCompromise`.
    KeyCompromise,
    /// `-crl_compromise TIME`: keyCompromise with an invalidity date (UNIX time).
    KeyCompromiseSince(i64),
    /// `-crl_reason CACompromise`.
    CaCompromise,
    /// `-crl_reason superseded`.
    Superseded,
    /// `-crl_reason cessationOfOperation`.
    CessationOfOperation,
    /// `-crl_hold holdInstructionReject` (certificateHold).
    CertificateHold,
    /// `-crl_reason removeFromCRL`.
    RemoveFromCrl,
}

impl Reason {
    fn args(self) -> Vec<String> {
        let reason = |r: &str| vec!["-crl_reason".to_owned(), r.to_owned()];
        match self {
            Self::Unspecified => reason("unspecified"),
            Self::KeyCompromise => reason("keyCompromise"),
            Self::KeyCompromiseSince(t) => {
                vec!["-crl_compromise".to_owned(), generalized_time(t)]
            }
            Self::CaCompromise => reason("CACompromise"),
            Self::Superseded => reason("superseded"),
            Self::CessationOfOperation => reason("cessationOfOperation"),
            Self::CertificateHold => {
                vec!["-crl_hold".to_owned(), "holdInstructionReject".to_owned()]
            }
            Self::RemoveFromCrl => reason("removeFromCRL"),
        }
    }
}

/// One revoked entry of a CRL made by [`Ca::crl`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// Serial, hex.
    pub serial: String,
    /// RFC 5280 reason name (`keyCompromise`, `certificateHold`, `removeFromCRL`, ...) or
    /// `none` (no reason code extension).
    pub reason: String,
    /// Revocation date, seconds from now (negative = past).
    pub revoked: i64,
    /// Invalidity date, seconds from now.
    pub invalidity: Option<i64>,
}

impl CrlEntry {
    /// `cert` revoked 30 s ago for `reason`.
    pub fn of(cert: &Issued, reason: &str) -> Self {
        Self {
            serial: cert.serial.clone(),
            reason: reason.to_owned(),
            revoked: -30,
            invalidity: None,
        }
    }

    /// The same entry, revoked `seconds` from now.
    pub fn at(mut self, seconds: i64) -> Self {
        self.revoked = seconds;
        self
    }
}

/// A CRL made by `tests/support/make_crl.py` (see [`Ca::crl`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSpec {
    /// `cRLNumber`.
    pub number: u64,
    /// List the revoked entries of the CA's `openssl ca` index too.
    pub from_index: bool,
    /// Further entries.
    pub entries: Vec<CrlEntry>,
    /// Make a delta CRL of this base CRL number (`deltaCRLIndicator`, critical).
    pub delta_of: Option<u64>,
    /// `freshestCRL` URLs (where a base CRL's delta is).
    pub freshest: Vec<String>,
    /// `thisUpdate`, seconds from now.
    pub this_update: i64,
    /// `nextUpdate`, seconds from now (negative: an expired CRL).
    pub next_update: i64,
    /// Sign with this key instead of the CA's (the CRL still names the CA as issuer).
    pub signed_by: Option<PathBuf>,
    /// Flip the last byte of the signature.
    pub corrupt_signature: bool,
}

impl Default for CrlSpec {
    fn default() -> Self {
        Self {
            number: 1,
            from_index: true,
            entries: Vec::new(),
            delta_of: None,
            freshest: Vec::new(),
            this_update: -60,
            next_update: 3600,
            signed_by: None,
            corrupt_signature: false,
        }
    }
}

/// A certificate authority with an `openssl ca` database in its directory (`ca.cnf`,
/// `index.txt`, `crlnumber`, `newcerts/`).
#[derive(Clone, Debug)]
pub struct Ca {
    /// The CA's own certificate and key.
    pub identity: Issued,
    /// Who signs OCSP responses about the certificates it issued; `None`: the CA itself.
    pub ocsp_signer: Option<Issued>,
    /// The PKI directory, where certificates it issues get their directories.
    pki_dir: PathBuf,
}

impl Ca {
    /// Its certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.identity.cert()
    }

    /// Its key.
    pub fn key(&self) -> PathBuf {
        self.identity.key()
    }

    /// Its subject, Go's form.
    pub fn subject(&self) -> &str {
        &self.identity.subject
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.identity.dir
    }

    /// Its `openssl ca` index (what `openssl ocsp -index` reads).
    pub fn index(&self) -> PathBuf {
        self.dir().join("index.txt")
    }

    /// The OCSP signer's certificate and key: the delegated responder's, or the CA's own.
    pub fn ocsp_signing(&self) -> (PathBuf, PathBuf) {
        match &self.ocsp_signer {
            Some(signer) => (signer.cert(), signer.key()),
            None => (self.cert(), self.key()),
        }
    }

    /// A self-signed root CA named `name` under `pki_dir`; roots name no OCSP/CRL location.
    pub fn root(pki_dir: &Path, name: &str, subject: &str) -> Result<Self> {
        let dir = pki_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        generate_key(&dir.join("key.pem"))?;
        std::fs::write(
            dir.join("req.cnf"),
            "[ req ]\ndistinguished_name = dn\n[ dn ]\n[ v3_root ]\n\
             basicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
        )?;
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-new",
                "-config",
                "req.cnf",
                "-extensions",
                "v3_root",
                "-key",
                "key.pem",
                "-subj",
                &openssl_dn(subject),
                "-days",
                "3650",
                "-out",
                "cert.pem",
            ],
        )?;
        let identity = Issued {
            name: name.to_owned(),
            serial: Issued::read_serial(&dir)?,
            dir,
            subject: subject.to_owned(),
        };
        let ca = Self {
            identity,
            ocsp_signer: None,
            pki_dir: pki_dir.to_owned(),
        };
        ca.init_database()?;
        Ok(ca)
    }

    fn init_database(&self) -> Result<()> {
        let dir = self.dir();
        std::fs::create_dir_all(dir.join("newcerts"))?;
        std::fs::write(dir.join("index.txt"), "")?;
        std::fs::write(dir.join("index.txt.attr"), "unique_subject = no\n")?;
        std::fs::write(dir.join("crlnumber"), "1000\n")?;
        // Unused (`-rand_serial`), but `openssl ca` looks the setting up.
        std::fs::write(dir.join("serial"), "1000\n")?;
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ ca ]\ndefault_ca = CA_default\n\
                 [ CA_default ]\ndir = {}\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/newcerts\n\
                 certificate = $dir/cert.pem\nprivate_key = $dir/key.pem\nserial = $dir/serial\ncrlnumber = $dir/crlnumber\n\
                 default_md = sha256\ndefault_days = 365\ndefault_crl_days = 1\npolicy = policy_any\n\
                 unique_subject = no\ncopy_extensions = none\nemail_in_dn = no\npreserve = yes\n\
                 crl_extensions = crl_ext\n\
                 [ policy_any ]\ncountryName = optional\norganizationName = optional\ncommonName = supplied\n\
                 [ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n\
                 [ req ]\ndistinguished_name = dn\n[ dn ]\n",
                dir.display()
            ),
        )?;
        Ok(())
    }

    fn ca_args(&self) -> Vec<String> {
        vec!["-config".to_owned(), path_arg(&self.dir().join("ca.cnf"))]
    }

    /// Issue a certificate (key generated, EC P-256), recorded in this CA's index.
    pub fn issue(&self, spec: &IssueSpec) -> Result<Issued> {
        let dir = self.pki_dir.join(&spec.name);
        std::fs::create_dir_all(&dir)?;
        generate_key(&dir.join("key.pem"))?;
        let config = path_arg(&self.dir().join("ca.cnf"));
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-config",
                &config,
                "-key",
                "key.pem",
                "-subj",
                &openssl_dn(&spec.subject),
                "-out",
                "req.csr",
            ],
        )?;
        std::fs::write(
            dir.join("ext.cnf"),
            format!(
                "[ ext ]\n{}subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n{}",
                spec.profile.extension_lines(),
                spec.locations.extension_lines()
            ),
        )?;
        let start = generalized_time(unix_now() - BACKDATE);
        let days = spec.days.to_string();
        let mut args: Vec<String> = vec!["ca".into(), "-batch".into()];
        args.extend(self.ca_args());
        args.extend(
            [
                "-rand_serial",
                "-notext",
                "-preserveDN",
                "-startdate",
                start.as_str(),
                "-days",
                days.as_str(),
                "-in",
                "req.csr",
                "-out",
                "cert.pem",
                "-extfile",
                "ext.cnf",
                "-extensions",
                "ext",
            ]
            .map(str::to_owned),
        );
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(&dir, &refs)?;
        Ok(Issued {
            name: spec.name.clone(),
            serial: Issued::read_serial(&dir)?,
            dir,
            subject: spec.subject.clone(),
        })
    }

    /// Issue a subordinate CA (profile [`Profile::Ca`] with `pathlen:0`) with a database of
    /// its own.
    pub fn issue_ca(&self, name: &str, subject: &str, locations: Locations) -> Result<Ca> {
        self.issue_ca_as(name, subject, locations, Profile::Ca { path_len: Some(0) })
    }

    /// [`Ca::issue_ca`] with another CA profile ([`Profile::CaWith`]).
    pub fn issue_ca_as(
        &self,
        name: &str,
        subject: &str,
        locations: Locations,
        profile: Profile,
    ) -> Result<Ca> {
        let identity = self.issue(&IssueSpec {
            name: name.to_owned(),
            subject: subject.to_owned(),
            profile,
            locations,
            days: 1825,
        })?;
        let ca = Ca {
            identity,
            ocsp_signer: None,
            pki_dir: self.pki_dir.clone(),
        };
        ca.init_database()?;
        Ok(ca)
    }

    /// Issue a delegated OCSP responder certificate and answer OCSP with it from now on.
    pub fn delegate_ocsp(&mut self, name: &str, subject: &str) -> Result<()> {
        self.ocsp_signer = Some(self.issue(&IssueSpec {
            name: name.to_owned(),
            subject: subject.to_owned(),
            profile: Profile::OcspSigning,
            locations: Locations::none(),
            days: 365,
        })?);
        Ok(())
    }

    /// `openssl ca -revoke CERT` with `reason`: the index (and so OCSP) says revoked at
    /// once; CRLs made afterwards list it.
    pub fn revoke(&self, cert: &Issued, reason: Reason) -> Result<()> {
        let mut args: Vec<String> = vec!["ca".into()];
        args.extend(self.ca_args());
        args.push("-revoke".into());
        args.push(path_arg(&cert.cert()));
        args.extend(reason.args());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(self.dir(), &refs)?;
        Ok(())
    }

    fn rewrite_index(&self, edit: impl Fn(&[&str]) -> Option<String>, serial: &str) -> Result<()> {
        let index = std::fs::read_to_string(self.index())?;
        let mut found = false;
        let mut out = String::new();
        for line in index.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields
                .get(3)
                .is_some_and(|s| s.eq_ignore_ascii_case(serial))
            {
                found = true;
                if let Some(replacement) = edit(fields.as_slice()) {
                    out.push_str(&replacement);
                    out.push('\n');
                }
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        if !found {
            bail!("serial {serial} is not in {}", self.index().display());
        }
        write_atomically(&self.index(), out.as_bytes())
    }

    /// Mark `cert` valid again in the index (after a hold): OCSP says good at once, CRLs
    /// made afterwards no longer list it.
    pub fn unrevoke(&self, cert: &Issued) -> Result<()> {
        self.rewrite_index(
            |fields| {
                let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
                fields[0] = "V".to_owned();
                fields[2] = String::new();
                Some(fields.join("\t"))
            },
            &cert.serial,
        )
    }

    /// Remove `cert` from the index: `openssl ocsp` answers "unknown" for it, and CRLs made
    /// from the index do not list it.
    pub fn forget(&self, cert: &Issued) -> Result<()> {
        self.rewrite_index(|_| None, &cert.serial)
    }

    /// `openssl ca -gencrl` valid for `hours`, from the index; DER (what CRL distribution
    /// points serve).
    pub fn gencrl(&self, hours: u32) -> Result<Vec<u8>> {
        self.gencrl_with(&["-crlhours".to_owned(), hours.to_string()])
    }

    /// `openssl ca -gencrl -crl_lastupdate -crl_nextupdate` at these UNIX times (both in the
    /// past: an expired CRL); DER.
    pub fn gencrl_between(&self, last_update: i64, next_update: i64) -> Result<Vec<u8>> {
        self.gencrl_with(&[
            "-crl_lastupdate".to_owned(),
            generalized_time(last_update),
            "-crl_nextupdate".to_owned(),
            generalized_time(next_update),
        ])
    }

    fn gencrl_with(&self, extra: &[String]) -> Result<Vec<u8>> {
        let pem = self.dir().join("crl.pem");
        let der = self.dir().join("crl.der");
        let mut args: Vec<String> = vec!["ca".into()];
        args.extend(self.ca_args());
        args.push("-gencrl".into());
        args.extend(extra.iter().cloned());
        args.push("-out".into());
        args.push(path_arg(&pem));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(self.dir(), &refs)?;
        openssl(
            self.dir(),
            &[
                "crl",
                "-in",
                &path_arg(&pem),
                "-outform",
                "DER",
                "-out",
                &path_arg(&der),
            ],
        )?;
        Ok(std::fs::read(der)?)
    }

    /// A CRL as `spec` says, by `tests/support/make_crl.py`; DER.
    pub fn crl(&self, spec: &CrlSpec) -> Result<Vec<u8>> {
        let script = crate::root().join("tests/support/make_crl.py");
        let out = self.dir().join(format!("made-{}.crl", spec.number));
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .arg("--ca-cert")
            .arg(self.cert())
            .arg("--ca-key")
            .arg(self.key())
            .arg("--out")
            .arg(&out)
            .arg("--number")
            .arg(spec.number.to_string())
            .arg(format!("--this-update={}", spec.this_update))
            .arg(format!("--next-update={}", spec.next_update));
        if spec.from_index {
            command.arg("--index").arg(self.index());
        }
        for entry in &spec.entries {
            let mut text = format!("{}:{}:{}", entry.serial, entry.reason, entry.revoked);
            if let Some(invalidity) = entry.invalidity {
                text.push_str(&format!(":{invalidity}"));
            }
            // `=` so that a negative offset is not read as an option.
            command.arg(format!("--entry={text}"));
        }
        if let Some(base) = spec.delta_of {
            command.arg("--delta-of").arg(base.to_string());
        }
        for url in &spec.freshest {
            command.arg("--freshest").arg(url);
        }
        if let Some(key) = &spec.signed_by {
            command.arg("--sign-key").arg(key);
        }
        if spec.corrupt_signature {
            command.arg("--corrupt-signature");
        }
        let output = command
            .stdin(Stdio::null())
            .output()
            .context("running python3 make_crl.py (cryptography: scripts/setup.sh)")?;
        if !output.status.success() {
            bail!(
                "make_crl.py failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(std::fs::read(out)?)
    }
}

/// Which revocation locations the code-signing chain's certificates name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PkiOptions {
    /// The leaf's (the intermediate's OCSP responder, the intermediate's CRL).
    pub leaf: Locations,
    /// The intermediate's (the root's OCSP responder, the root's CRL).
    pub intermediate: Locations,
}

/// Root CA → intermediate CA → code-signing leaf, plus an unrelated CA, in a temp directory.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The self-signed root (for the trust store); names no OCSP/CRL location.
    pub root: Ca,
    /// The intermediate, issued by the root; OCSP about what it issued is signed by a
    /// delegated responder certificate.
    pub intermediate: Ca,
    /// The code-signing leaf, issued by the intermediate.
    pub leaf: Issued,
    /// A root CA unrelated to the chain (for CRLs "signed by another CA").
    pub other: Ca,
    /// The leaf, the intermediate and the root, one PEM file (`key add --cert`).
    pub chain: PathBuf,
}

impl Pki {
    /// Make the certificates (about 15 `openssl` runs).
    pub fn build(options: &PkiOptions) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let root = Ca::root(d, "root", ROOT_SUBJECT)?;
        let mut intermediate = root.issue_ca(
            "intermediate",
            INTERMEDIATE_SUBJECT,
            options.intermediate.clone(),
        )?;
        intermediate.delegate_ocsp("ocsp-signer", OCSP_SIGNER_SUBJECT)?;
        let leaf = intermediate.issue(&IssueSpec {
            name: "leaf".to_owned(),
            subject: LEAF_SUBJECT.to_owned(),
            profile: Profile::CodeSigning,
            locations: options.leaf.clone(),
            days: 365,
        })?;
        let other = Ca::root(d, "other", OTHER_CA_SUBJECT)?;
        let chain = d.join("chain.pem");
        std::fs::write(
            &chain,
            format!(
                "{}{}{}",
                leaf.pem()?,
                intermediate.identity.pem()?,
                root.identity.pem()?
            ),
        )?;
        Ok(Self {
            dir,
            root,
            intermediate,
            leaf,
            other,
            chain,
        })
    }

    /// The PKI directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The leaf's key (PKCS#8 PEM): `key add --key-file`.
    pub fn leaf_key(&self) -> PathBuf {
        self.leaf.key()
    }

    /// The root certificate (PEM): the `ca` trust store's content.
    pub fn root_cert(&self) -> PathBuf {
        self.root.cert()
    }

    /// Another code-signing leaf from the same intermediate, and its chain file.
    pub fn issue_leaf(
        &self,
        name: &str,
        subject: &str,
        locations: Locations,
    ) -> Result<(Issued, PathBuf)> {
        let leaf = self.intermediate.issue(&IssueSpec {
            name: name.to_owned(),
            subject: subject.to_owned(),
            profile: Profile::CodeSigning,
            locations,
            days: 365,
        })?;
        let chain = self.dir().join(format!("{name}-chain.pem"));
        std::fs::write(
            &chain,
            format!(
                "{}{}{}",
                leaf.pem()?,
                self.intermediate.identity.pem()?,
                self.root.identity.pem()?
            ),
        )?;
        Ok((leaf, chain))
    }
}

/// Which revocation locations the TSA chain's certificates name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TsaPkiOptions {
    /// The TSA intermediate's (its issuer is the TSA root).
    pub intermediate: Locations,
    /// The TSA leaf's (its issuer is the TSA intermediate).
    pub leaf: Locations,
}

/// TSA root → TSA intermediate → TSA leaf (`extendedKeyUsage` critical `timeStamping`).
pub struct TsaPki {
    dir: tempfile::TempDir,
    /// The TSA root (`--timestamp-root-cert`, the `tsa` trust store).
    pub root: Ca,
    /// The TSA intermediate.
    pub intermediate: Ca,
    /// The TSA's signing certificate.
    pub leaf: Issued,
}

impl TsaPki {
    /// Make the certificates.
    pub fn build(options: &TsaPkiOptions) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = Ca::root(dir.path(), "tsa-root", TSA_ROOT_SUBJECT)?;
        let intermediate = root.issue_ca(
            "tsa-intermediate",
            TSA_INTERMEDIATE_SUBJECT,
            options.intermediate.clone(),
        )?;
        let leaf = intermediate.issue(&IssueSpec {
            name: "tsa".to_owned(),
            subject: TSA_LEAF_SUBJECT.to_owned(),
            profile: Profile::Timestamping,
            locations: options.leaf.clone(),
            days: 365,
        })?;
        Ok(Self {
            dir,
            root,
            intermediate,
            leaf,
        })
    }

    /// The PKI directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The TSA root certificate (PEM).
    pub fn root_cert(&self) -> PathBuf {
        self.root.cert()
    }

    /// Write an `openssl ts -reply -config FILE` configuration (default section
    /// `tsa_config`): signs with the TSA leaf's key, embeds the leaf (as the signer) and
    /// the intermediate (`certs`) when a request asks for certificates, SHA-256, no
    /// accuracy, whole seconds. Returns its path.
    pub fn ts_config(&self) -> Result<PathBuf> {
        let d = self.dir();
        std::fs::write(d.join("tsaserial"), "01\n")?;
        let certs = d.join("tsa-certs.pem");
        std::fs::write(&certs, self.intermediate.identity.pem()?)?;
        let path = d.join("tsa.cnf");
        std::fs::write(
            &path,
            format!(
                "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\ndir = {}\nserial = $dir/tsaserial\n\
                 crypto_device = builtin\nsigner_cert = {}\ncerts = {}\nsigner_key = {}\n\
                 signer_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\n\
                 clock_precision_digits = 0\nordering = yes\ntsa_name = yes\n\
                 ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                d.display(),
                self.leaf.cert().display(),
                certs.display(),
                self.leaf.key().display(),
            ),
        )?;
        Ok(path)
    }
}

/// An RFC 3161 TSA on 127.0.0.1 answering with `openssl ts -reply` and a [`TsaPki`]'s
/// configuration (the HTTP front is [`FakeRegistry`], as for `services::Tsa`).
pub struct TsaServer {
    /// `http://127.0.0.1:<port>/`.
    pub url: String,
    _server: FakeRegistry,
    _work: tempfile::TempDir,
}

impl TsaServer {
    /// Start answering for `pki`.
    pub fn start(pki: &TsaPki) -> Result<Self> {
        let config = pki.ts_config()?;
        let work = tempfile::tempdir()?;
        let dir = work.path().to_owned();
        let counter = std::sync::atomic::AtomicU64::new(0);
        let server = FakeRegistry::start_with_body(move |method, _, body| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let query = dir.join(format!("q{n}.tsq"));
            let reply = dir.join(format!("r{n}.tsr"));
            let answered = method == "POST"
                && std::fs::write(&query, body).is_ok()
                && Command::new("openssl")
                    .args(["ts", "-reply", "-config"])
                    .arg(&config)
                    .arg("-queryfile")
                    .arg(&query)
                    .arg("-out")
                    .arg(&reply)
                    .stdin(Stdio::null())
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
            _server: server,
            _work: work,
        })
    }
}

/// `tests/support/revocation_server.py` as a child process on 127.0.0.1.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    fn spawn(port: u16, dir: &Path, extra: &[String]) -> Result<Self> {
        let script = crate::root().join("tests/support/revocation_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting python3 revocation_server.py")?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("revocation_server.py exited early ({status}); is port {port} taken?");
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(Self { child, port });
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("revocation_server.py did not listen on {address} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_requests(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("requests.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_behaviour(dir: &Path, name: &str, behaviour: &str) -> Result<()> {
    let name = name.trim_start_matches('/');
    write_atomically(
        &dir.join(format!("{name}.status")),
        format!("{behaviour}\n").as_bytes(),
    )
}

fn clear_behaviour_file(dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(format!("{}.status", name.trim_start_matches('/')));
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// A CRL distribution point on 127.0.0.1 serving the files of a directory.
///
/// Behaviours (`set_behaviour(name, b)`): `404`, `500` (any code), `301 URL`, `hang`,
/// `close`, `huge` (40 MiB), `endless`, `slow` (1 byte/s), `garbage`, `empty`, `ok`.
pub struct RevocationServer {
    process: ServerProcess,
    dir: PathBuf,
}

impl RevocationServer {
    /// Serve `dir` (created if missing) on a free port.
    pub fn start(dir: &Path) -> Result<Self> {
        Self::start_on(dir, free_port()?)
    }

    /// Serve `dir` on `port` (e.g. again on the port certificates already name).
    pub fn start_on(dir: &Path, port: u16) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            process: ServerProcess::spawn(port, dir, &[])?,
            dir: dir.to_owned(),
        })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.process.port,
            path.trim_start_matches('/')
        )
    }

    /// The directory it serves.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Serve `bytes` at `/<name>` from now on.
    pub fn publish(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomically(&self.dir.join(name.trim_start_matches('/')), bytes)
    }

    /// Stop serving `/<name>` (404).
    pub fn unpublish(&self, name: &str) -> Result<()> {
        match std::fs::remove_file(self.dir.join(name.trim_start_matches('/'))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Answer `/<name>` as `behaviour` says from the next request on.
    pub fn set_behaviour(&self, name: &str, behaviour: &str) -> Result<()> {
        write_behaviour(&self.dir, name, behaviour)
    }

    /// Answer every path as `behaviour` says (unless the path has its own).
    pub fn set_behaviour_all(&self, behaviour: &str) -> Result<()> {
        write_behaviour(&self.dir, "_all", behaviour)
    }

    /// Answer `/<name>` normally again.
    pub fn clear_behaviour(&self, name: &str) -> Result<()> {
        clear_behaviour_file(&self.dir, name)
    }

    /// Every request so far, `METHOD PATH`, in order.
    pub fn requests(&self) -> Vec<String> {
        read_requests(&self.dir)
    }

    /// How many requests named `/<name>`.
    pub fn fetches(&self, name: &str) -> usize {
        let path = format!("/{}", name.trim_start_matches('/'));
        self.requests()
            .iter()
            .filter(|line| line.split_whitespace().nth(1) == Some(path.as_str()))
            .count()
    }
}

/// An OCSP responder on 127.0.0.1 for the certificates one [`Ca`] issued: each request is
/// answered by `openssl ocsp -index -CA -rsigner -rkey -reqin -respout -ndays 1`, signed by
/// the CA's delegated responder (or the CA itself). A serial missing from the index is
/// answered "unknown". Stopped when dropped (its port then refuses connections).
///
/// `openssl ocsp -port` is not used: in OpenSSL 3.0 it takes a port number only, so it
/// cannot be bound to 127.0.0.1; this front binds 127.0.0.1, runs `openssl ocsp` per
/// request (so the index is always current), logs requests and takes the same behaviours
/// as [`RevocationServer`].
pub struct OcspResponder {
    process: ServerProcess,
    dir: tempfile::TempDir,
}

impl OcspResponder {
    /// Answer for `ca` on `port` (the port its certificates name); waits until it listens.
    pub fn start(ca: &Ca, port: u16) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let (signer, key) = ca.ocsp_signing();
        let extra = vec![
            "--ocsp-index".to_owned(),
            path_arg(&ca.index()),
            "--ocsp-ca".to_owned(),
            path_arg(&ca.cert()),
            "--ocsp-rsigner".to_owned(),
            path_arg(&signer),
            "--ocsp-rkey".to_owned(),
            path_arg(&key),
            "--ocsp-ndays".to_owned(),
            "1".to_owned(),
        ];
        let process = ServerProcess::spawn(port, dir.path(), &extra)?;
        Ok(Self { process, dir })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// `http://127.0.0.1:<port>/`, as certificates name it.
    pub fn url(&self) -> String {
        ocsp_url(self.process.port)
    }

    /// Answer every request as `behaviour` says (see [`RevocationServer`]).
    pub fn set_behaviour(&self, behaviour: &str) -> Result<()> {
        write_behaviour(self.dir.path(), "_all", behaviour)
    }

    /// Answer normally again.
    pub fn clear_behaviour(&self) -> Result<()> {
        clear_behaviour_file(self.dir.path(), "_all")
    }

    /// Every request so far, `METHOD PATH` (a GET's path is the base64 request).
    pub fn requests(&self) -> Vec<String> {
        read_requests(self.dir.path())
    }
}

/// The OCSP URL certificates name for a responder on `port`: `http://127.0.0.1:<port>/`.
pub fn ocsp_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// The CRL cache file hsm-notary keeps for `url` under `cache` (`$HSM_NOTARY_CACHE`):
/// `crl/<hex SHA-256 of the URL>`, as notation names its cache files.
pub fn crl_cache_file(cache: &Path, url: &str) -> PathBuf {
    let digest = hsm_notary::oci::sha256_digest(url.as_bytes());
    cache.join("crl").join(digest.trim_start_matches("sha256:"))
}

/// A cache file's content as notation writes it: `{"baseCRL": "<base64 DER>", "deltaCRL":
/// "<base64 DER>"}` (no `deltaCRL` without a delta).
pub fn crl_cache_content(base: &[u8], delta: Option<&[u8]>) -> String {
    let mut value = serde_json::json!({
        "baseCRL": notary_verifier::encoding::encode_base64(base),
    });
    if let Some(delta) = delta {
        value["deltaCRL"] =
            serde_json::Value::String(notary_verifier::encoding::encode_base64(delta));
    }
    value.to_string()
}

/// The DER of a PEM CRL (`openssl crl -outform DER`).
pub fn crl_pem_to_der(pem: &[u8]) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("crl.pem"), pem)?;
    openssl(
        dir.path(),
        &[
            "crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der",
        ],
    )?;
    Ok(std::fs::read(dir.path().join("crl.der"))?)
}

impl Pki {
    /// A verification request for a COSE signature by this PKI's leaf over a fixed
    /// descriptor, under a strict statement trusting the root as `ca:rev`, at now; no
    /// revocation evidence yet.
    pub fn signed_request(&self) -> Result<notary_verifier::VerifyRequest> {
        use hsm_notary::sign::local::LocalKey;
        use hsm_notary::sign::{KeySource, SigningKey};
        let key = LocalKey::from_pem(&std::fs::read_to_string(self.leaf_key())?)?;
        let chain = hsm_notary::sign::read_chain(&self.chain)?;
        let root = chain.last().cloned().unwrap_or_default();
        let signing = SigningKey {
            source: KeySource::Local(Box::new(key)),
            chain,
        };
        crate::request_signed_by(
            &signing,
            root,
            notary_verifier::sign::Format::Cose,
            "revocation",
            "rev",
        )
    }
}

impl Pki {
    /// A PKI whose leaf and intermediate name CRLs on `server` (`leaf.crl`,
    /// `intermediate.crl`), published there and saying good (valid 24 h).
    pub fn with_served_crls(server: &RevocationServer) -> Result<Self> {
        let pki = Self::build(&PkiOptions {
            leaf: Locations::crl(server.url("leaf.crl")),
            intermediate: Locations::crl(server.url("intermediate.crl")),
        })?;
        server.publish("leaf.crl", &pki.intermediate.gencrl(24)?)?;
        server.publish("intermediate.crl", &pki.root.gencrl(24)?)?;
        Ok(pki)
    }
}
