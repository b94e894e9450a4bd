//! The command tree, mirroring notation's commands and flags. Declarations only; the
//! commands live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::EngineKind;

/// Sign with HSM-held keys and verify Notary Project signatures.
#[derive(Debug, Parser)]
#[command(name = "hsm-notary", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration directory (default: $HSM_NOTARY_CONFIG, else $XDG_CONFIG_HOME/hsm-notary).
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Debug log on stderr: each verification step, registry, OCSP and CRL request (never
    /// a PIN, password or token).
    #[arg(short = 'd', long, global = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub debug: bool,
    /// Verbose log on stderr.
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub verbose: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign an artifact and store the signature beside it.
    Sign(SignArgs),
    /// Verify the signatures of an artifact.
    Verify(VerifyArgs),
    /// Inspect the signatures of an artifact.
    Inspect(InspectArgs),
    /// List the signatures of an artifact.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Manage the OCI trust policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage trust store certificates.
    #[command(subcommand, alias = "certificate")]
    Cert(CertCommand),
    /// Manage signing keys (HSM over PKCS#11, or local files).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sign and verify arbitrary blobs with detached signatures.
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Show the version and the SHA-256 of the embedded verifier component (every
    /// embedding — CLI, Node, browser — can be checked to decide with the same build).
    Version,
    /// Serve verification over HTTPS for Gatekeeper (external data) and Kyverno.
    Serve(ServeArgs),
    /// Write an embedded WebAssembly component to a file, for jco, wasmtime or another host.
    Component(ComponentArgs),
    /// Manage cached revocation evidence.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Manage notation plugins (`plugins/NAME/notation-NAME`).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage the signatures of an artifact in a registry.
    #[command(subcommand)]
    Signature(SignatureCommand),
    /// The multi-party approval signing service (`signer serve`) and its audit log.
    #[command(subcommand)]
    Signer(SignerCommand),
    /// Review, approve or reject signing requests held by a signing service.
    #[command(subcommand)]
    Approval(ApprovalCommand),
}

/// How to reach a signing service (`signer serve`): its URL and this client's TLS
/// identity.
#[derive(Debug, Args, Clone, Default)]
pub struct SignerArgs {
    /// The signing service, `https://HOST:PORT`.
    #[arg(
        id = "signer_url",
        long = "signer",
        env = "HSM_NOTARY_SIGNER",
        value_name = "URL"
    )]
    pub url: Option<String>,
    /// This client's TLS certificate (PEM).
    #[arg(
        id = "signer_cert",
        long = "signer-cert",
        env = "HSM_NOTARY_SIGNER_CERT",
        value_name = "PATH"
    )]
    pub cert: Option<PathBuf>,
    /// This client's TLS private key (PEM).
    #[arg(
        id = "signer_key",
        long = "signer-key",
        env = "HSM_NOTARY_SIGNER_KEY",
        value_name = "PATH"
    )]
    pub key: Option<PathBuf>,
    /// The CA certificates the service's TLS certificate must chain to (PEM).
    #[arg(
        id = "signer_ca",
        long = "signer-ca",
        env = "HSM_NOTARY_SIGNER_CA",
        value_name = "PATH"
    )]
    pub ca: Option<PathBuf>,
}

/// `signer`
#[derive(Debug, Subcommand)]
pub enum SignerCommand {
    /// Run the signing service: it holds the HSM session and signs a request once its
    /// key's approval policy is met.
    Serve {
        /// The service configuration (JSON: listen, tls, database, keys).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `signer audit`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the audit log as JSON lines, from the database or from a running service.
    Export {
        /// The service's database (read directly; the service is not asked).
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
        /// Or the service.
        #[command(flatten)]
        service: SignerArgs,
    },
    /// Check an audit log's hash chain (a file of JSON lines, or the database).
    Verify {
        /// An exported log.
        #[arg(required_unless_present = "database")]
        file: Option<PathBuf>,
        /// The service's database.
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        database: Option<PathBuf>,
    },
}

/// `approval`
#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// List requests (pending ones by default).
    #[command(alias = "ls")]
    List {
        /// `pending`, `approved`, `signed`, `rejected`, `expired` or `all`.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: VerifyOutput,
        /// The service.
        #[command(flatten)]
        service: SignerArgs,
    },
    /// Show one request: what is to be signed, by whom, and who approved.
    Show {
        /// The request id.
        id: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: VerifyOutput,
        /// The service.
        #[command(flatten)]
        service: SignerArgs,
    },
    /// Approve a request: sign it with your approver key.
    Approve(ApprovalDecideArgs),
    /// Reject a request: signed with your approver key, it ends the request.
    Reject(ApprovalDecideArgs),
}

/// `approval approve|reject`
#[derive(Debug, Args)]
pub struct ApprovalDecideArgs {
    /// The request id.
    pub id: String,
    /// Your approver key (a `signingkeys.json` name: local, PKCS#11 or PIV).
    #[arg(short = 'k', long)]
    pub key: Option<String>,
    /// PKCS#11 module, when the key's entry names none.
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// The service.
    #[command(flatten)]
    pub service: SignerArgs,
}

/// `signature`
#[derive(Debug, Subcommand)]
pub enum SignatureCommand {
    /// Delete a signature (`REGISTRY/REPOSITORY@SIGNATURE_MANIFEST_DIGEST`), or with
    /// `--all` every Notary Project signature of an artifact (`…@ARTIFACT_DIGEST`).
    #[command(aliases = ["rm", "remove"])]
    Delete(SignatureDeleteArgs),
}

/// `signature delete`
#[derive(Debug, Args)]
pub struct SignatureDeleteArgs {
    /// The signature manifest, or with --all the signed artifact, by digest (with
    /// `--oci-layout`: `PATH@DIGEST`; with --all also `PATH:TAG`).
    pub reference: String,
    /// The reference is an OCI image layout on disk (a directory).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub oci_layout: bool,
    /// Delete every signature of the artifact.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub all: bool,
    /// Do not ask.
    #[arg(short = 'y', long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub yes: bool,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `component`
#[derive(Debug, Args)]
pub struct ComponentArgs {
    /// Which build: the import-free verifier, the wasi:http endpoint that nests it, or the
    /// verifier that imports its public-key arithmetic.
    #[arg(long, value_enum, default_value = "verifier")]
    pub world: ComponentWorld,
    /// Where to write it (`-`: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// The component worlds this binary carries.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ComponentWorld {
    /// `notary:verifier/verifier-component`: imports nothing.
    Verifier,
    /// `notary:verifier/verifier-http`: exports `wasi:http/incoming-handler`.
    Http,
    /// `notary:verifier/verifier-component-host-crypto`: imports `crypto` (RSA public
    /// operation, ECDSA check) from its host.
    HostCrypto,
}

/// `serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6001")]
    pub listen: std::net::SocketAddr,
    /// Server certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,
    /// Require client certificates issued by this CA (PEM).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// How long a verified result is reused (Go duration; 0s disables the cache).
    #[arg(long, default_value = "5m")]
    pub cache_ttl: String,
    /// A cache shared by replicas, `redis://[:PASSWORD@]HOST:PORT[/DB]`: verified results,
    /// resolved tags and revocation evidence. A Redis that is down leaves the local cache.
    #[arg(long = "cache", value_name = "URL", requires = "cache_secret_file")]
    pub shared_cache: Option<String>,
    /// The secret (32 bytes or more) the shared cache's entries are authenticated with; the
    /// same file for every replica.
    #[arg(long, value_name = "FILE", requires = "shared_cache")]
    pub cache_secret_file: Option<PathBuf>,
    /// How long a resolved tag is kept in the shared cache (tags move: keep it short).
    #[arg(long, default_value = "10s", requires = "shared_cache")]
    pub tag_ttl: String,
    /// Deadline for one request in milliseconds (Gatekeeper's webhook budget is 3 s).
    #[arg(long, default_value_t = 2500)]
    pub deadline_ms: u64,
    /// Images verified at once.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// The nodes' platform (`os/arch[/variant]`): for an image index, the manifest of
    /// this platform must verify too (it is what the node runs).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// A registry (`host[:port]`) whose images may be admitted (repeatable). None: any
    /// registry, with a warning at start-up. Plain HTTP only to listed `localhost:<port>`
    /// registries.
    #[arg(long = "allow-registry", value_name = "HOST")]
    pub allow_registry: Vec<String>,
    /// Refuse tag references: only `@sha256:` digests are admitted (a tag can move between
    /// the check and the pull).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub require_digest: bool,
    /// Decide with the component's host-crypto build (world
    /// `verifier-component-host-crypto`): its RSA and ECDSA arithmetic runs natively in
    /// this process, with signers' keys kept across images; every rule stays the
    /// component's. The default is the import-free component.
    #[arg(long)]
    pub host_crypto: bool,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Revocation checking.
    #[command(flatten)]
    pub revocation: RevocationArgs,
}

/// Output formats of `verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyOutput {
    /// notation's text.
    Text,
    /// The full outcome as JSON.
    Json,
}

/// Output formats of `inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InspectOutput {
    /// notation's tree.
    Tree,
    /// notation's JSON.
    Json,
}

/// How to reach a registry.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Use plain HTTP (only `localhost:<port>` uses it without this flag).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub insecure_registry: bool,
    /// Registry user name (default: $HSM_NOTARY_USERNAME, else the docker config).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub password_stdin: bool,
    /// Extra CA certificate (PEM) to trust for the registry's TLS (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,
    /// The registry (`host[:port]`) that --username/--password-stdin and
    /// $HSM_NOTARY_USERNAME/$HSM_NOTARY_PASSWORD are for; no other registry gets them
    /// (default: the reference's registry; `serve` sends them nowhere without it).
    #[arg(long, value_name = "HOST")]
    pub registry_host: Option<String>,
}

impl RegistryArgs {
    /// The registry options these flags describe.
    pub fn options(&self) -> anyhow::Result<crate::registry::Options> {
        let password = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Some(secrecy::SecretString::from(
                line.trim_end_matches(['\r', '\n']).to_owned(),
            ))
        } else {
            None
        };
        Ok(crate::registry::Options {
            insecure: self.insecure_registry,
            username: self.username.clone(),
            password,
            binding: match &self.registry_host {
                Some(host) => crate::registry::Binding::Host(host.clone()),
                None => crate::registry::Binding::Reference,
            },
            ca_files: self.ca_file.clone(),
            insecure_registries: Vec::new(),
            no_localhost_http: false,
        })
    }

    /// [`Self::options`] with `config.json`'s `insecureRegistries`.
    pub fn options_in(
        &self,
        config: &crate::config::ConfigDir,
    ) -> anyhow::Result<crate::registry::Options> {
        let mut options = self.options()?;
        options.insecure_registries = config.settings()?.insecure_registries;
        Ok(options)
    }
}

/// How revocation evidence is fetched (OCSP first, then CRLs).
#[derive(Debug, Args, Clone)]
pub struct RevocationArgs {
    /// Timeout of each OCSP request (Go duration, e.g. `2s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub ocsp_timeout: String,
    /// Timeout of each CRL download (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub crl_timeout: String,
}

impl RevocationArgs {
    /// The fetcher's options, with the default on-disk CRL cache.
    pub fn options(&self) -> anyhow::Result<crate::revocation::Options> {
        let timeout = |flag: &str, text: &str| -> anyhow::Result<std::time::Duration> {
            let d = crate::sign::parse_go_duration(text)
                .map_err(|e| anyhow::anyhow!("--{flag} {text:?}: {e}"))?;
            if d.is_zero() {
                anyhow::bail!("--{flag} must be greater than zero");
            }
            Ok(d)
        };
        Ok(crate::revocation::Options {
            ocsp_timeout: timeout("ocsp-timeout", &self.ocsp_timeout)?,
            crl_timeout: timeout("crl-timeout", &self.crl_timeout)?,
            ..Default::default()
        })
    }
}

/// `cache ...`
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// The CRL cache (`crl/` in the cache directory).
    #[command(subcommand)]
    Crl(CrlCacheCommand),
}

/// `cache crl ...`
#[derive(Debug, Subcommand)]
pub enum CrlCacheCommand {
    /// List cached CRLs: URL, issuer, number, this and next update.
    List,
    /// Remove every cached CRL.
    Purge,
    /// Pre-seed the cache with a CRL file (DER or PEM) for a distribution point URL, for
    /// sites that cannot reach it.
    Import {
        /// The CRL file.
        file: PathBuf,
        /// The distribution point (or freshest-CRL) URL it serves, as certificates name it.
        #[arg(long)]
        url: String,
    },
}

/// Flags shared by commands that verify.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Which verifier runs the decision.
    #[arg(long, value_enum, default_value = "wasm")]
    pub engine: EngineKind,
}

/// `verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// `REGISTRY/REPOSITORY@DIGEST`, or with `--oci-layout` `PATH@DIGEST` / `PATH:TAG`
    /// (`PATH` a layout directory, a `.tar`/`.tar.gz` of one, or `-` for standard input).
    pub reference: String,
    /// The reference is an OCI image layout on disk.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub oci_layout: bool,
    /// Trust policy scope to use for an OCI layout (e.g. `local/myapp`); required with --oci-layout.
    #[arg(long, requires = "oci_layout")]
    pub scope: Option<String>,
    /// Use this trust policy file instead of the configuration's.
    #[arg(long, value_name = "FILE")]
    pub trust_policy: Option<PathBuf>,
    /// Use this trust store directory (containing `x509/`) instead of the configuration's.
    #[arg(long, value_name = "DIR")]
    pub trust_store: Option<PathBuf>,
    /// User metadata that the signature must carry (`key=value`, repeatable).
    #[arg(short = 'm', long = "user-metadata", value_name = "KEY=VALUE")]
    pub user_metadata: Vec<String>,
    /// Maximum number of signatures to evaluate.
    #[arg(long, default_value_t = 100)]
    pub max_signatures: i64,
    /// Evaluate at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    pub verify_at: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: VerifyOutput,
    /// For an image index: also verify the manifest of this platform (`os/arch[/variant]`).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// hsm-notary's check on top of the trust policy: the verified signature records at
    /// least this many distinct approvers (`signer serve`), each verified against
    /// --approvers-store.
    #[arg(long, value_name = "M", requires = "approvers_store")]
    pub require_approvals: Option<usize>,
    /// The `ca` trust store the approvers' certificates chain to.
    #[arg(long, value_name = "NAME", requires = "require_approvals")]
    pub approvers_store: Option<String>,
    /// Engine.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Revocation checking.
    #[command(flatten)]
    pub revocation: RevocationArgs,
    /// Verification plugins.
    #[command(flatten)]
    pub plugins: VerificationPluginArgs,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Verification plugins, for signatures that name one (`io.cncf.notary.verificationPlugin`).
#[derive(Debug, Args)]
pub struct VerificationPluginArgs {
    /// Configuration sent to verification plugins, `KEY=VALUE` (repeatable).
    #[arg(long = "plugin-config", value_name = "KEY=VALUE")]
    pub plugin_config: Vec<String>,
    /// How long a plugin command may take (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub plugin_timeout: String,
}

impl VerificationPluginArgs {
    /// The installed plugins of `config`, with this configuration.
    pub fn plugins(
        &self,
        config: &crate::config::ConfigDir,
    ) -> anyhow::Result<std::sync::Arc<crate::plugin::verifier::Plugins>> {
        let pairs = crate::commands::parse_metadata(&self.plugin_config, "plugin-config")?;
        Ok(std::sync::Arc::new(crate::plugin::verifier::Plugins::new(
            crate::plugin::plugin_root(config.root()),
            pairs.into_iter().collect(),
            crate::sign::parse_go_duration(&self.plugin_timeout)?,
        )))
    }
}

/// Envelope formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignatureFormat {
    /// JWS JSON (`application/jose+json`).
    Jws,
    /// COSE_Sign1 (`application/cose`).
    Cose,
}

/// What signing takes, shared by `sign` and `blob sign`.
#[derive(Debug, Args)]
pub struct SigningArgs {
    /// The key to sign with (default: the default key).
    #[arg(short = 'k', long)]
    pub key: Option<String>,
    /// Envelope format (default: `signatureFormat` of `config.json`, else jws).
    #[arg(long, value_enum)]
    pub signature_format: Option<SignatureFormat>,
    /// Signature expiry, e.g. `24h`, `30m` (0 = none).
    #[arg(short = 'e', long, default_value = "0")]
    pub expiry: String,
    /// User metadata to sign into the payload (`key=value`, repeatable).
    #[arg(short = 'm', long = "user-metadata", value_name = "KEY=VALUE")]
    pub user_metadata: Vec<String>,
    /// RFC 3161 Timestamping Authority (TSA) server URL (requires --timestamp-root-cert).
    #[arg(long, value_name = "URL")]
    pub timestamp_url: Option<String>,
    /// The TSA's root certificate: one self-signed certificate, PEM or DER.
    #[arg(long, value_name = "PATH")]
    pub timestamp_root_cert: Option<PathBuf>,
    /// PKCS#11 module, when neither the key's URI nor HSM_NOTARY_PKCS11_MODULE names it.
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// Sign with the key `--id` of this plugin, without registering it.
    #[arg(long, requires = "id", conflicts_with = "key")]
    pub plugin: Option<String>,
    /// The plugin's key id (with --plugin).
    #[arg(long, requires = "plugin")]
    pub id: Option<String>,
    /// Plugin configuration, `KEY=VALUE` (repeatable), over the key's own.
    #[arg(long = "plugin-config", value_name = "KEY=VALUE")]
    pub plugin_config: Vec<String>,
    /// How long a plugin command may take (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub plugin_timeout: String,
    /// Revocation checking of the TSA's chain.
    #[command(flatten)]
    pub revocation: RevocationArgs,
}

/// `sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// `REGISTRY/REPOSITORY@DIGEST` (or `:TAG`), or with `--oci-layout` `PATH@DIGEST` / `PATH:TAG`.
    pub reference: String,
    /// The reference is an OCI image layout on disk.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub oci_layout: bool,
    /// Always use the referrers tag schema, even on registries with a referrers API.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub force_referrers_tag: bool,
    /// For an image index: sign the index and each platform manifest it lists (all
    /// signed before any is pushed).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub recursive: bool,
    /// Key, format, expiry, metadata, timestamping.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Or ask a signing service to sign.
    #[command(flatten)]
    pub via: ServiceRequestArgs,
}

/// Signing through a signing service (`signer serve`): it signs once the request is
/// approved; `--key` names the service's key.
#[derive(Debug, Args, Clone, Default)]
pub struct ServiceRequestArgs {
    /// The service and this client's TLS identity.
    #[command(flatten)]
    pub service: SignerArgs,
    /// With --signer: wait this long for the approvals (e.g. `30m`), then finish.
    #[arg(long, value_name = "DURATION", requires = "signer_url")]
    pub wait: Option<String>,
    /// With --signer: finish an earlier request (no new request is made).
    #[arg(long, value_name = "ID", requires = "signer_url")]
    pub request: Option<String>,
}

/// `inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Artifact reference (with `--oci-layout`: `PATH@DIGEST` / `PATH:TAG`; `PATH` may be
    /// a `.tar`/`.tar.gz` or `-` for standard input).
    pub reference: String,
    /// The reference is an OCI image layout on disk.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub oci_layout: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "tree")]
    pub output: InspectOutput,
    /// Maximum number of signatures to show.
    #[arg(long, default_value_t = 100)]
    pub max_signatures: i64,
    /// Engine.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Artifact reference (with `--oci-layout`: `PATH@DIGEST` / `PATH:TAG`; `PATH` may be
    /// a `.tar`/`.tar.gz` or `-` for standard input).
    pub reference: String,
    /// The reference is an OCI image layout on disk.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub oci_layout: bool,
    /// Maximum number of signatures to list.
    #[arg(long, default_value_t = 100)]
    pub max_signatures: i64,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: ListOutput,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Output formats of the listing commands (`ls`, `cert list`, `key list`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListOutput {
    /// notation's table or tree.
    Text,
    /// JSON.
    Json,
}

/// `policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Import an OCI trust policy file after validating it.
    Import {
        /// The trust policy JSON file.
        file: PathBuf,
        /// Overwrite an existing policy without asking.
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        force: bool,
        /// Engine.
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Print the OCI trust policy.
    Show {
        /// Engine.
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// Trust store types as typed on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreTypeArg {
    /// `ca`
    #[value(name = "ca")]
    Ca,
    /// `signingAuthority`
    #[value(name = "signingAuthority")]
    SigningAuthority,
    /// `tsa`
    #[value(name = "tsa")]
    Tsa,
}

impl From<StoreTypeArg> for notary_verifier::StoreType {
    fn from(value: StoreTypeArg) -> Self {
        match value {
            StoreTypeArg::Ca => Self::Ca,
            StoreTypeArg::SigningAuthority => Self::SigningAuthority,
            StoreTypeArg::Tsa => Self::Tsa,
        }
    }
}

/// `cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Add certificates to a named trust store.
    Add {
        /// Store type.
        #[arg(short = 't', long = "type", value_enum)]
        store_type: StoreTypeArg,
        /// Store name.
        #[arg(short = 's', long)]
        store: String,
        /// Certificate files (PEM or DER).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Engine.
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// List trust store certificates.
    #[command(alias = "ls")]
    List {
        /// Only this type.
        #[arg(short = 't', long = "type", value_enum)]
        store_type: Option<StoreTypeArg>,
        /// Only this store.
        #[arg(short = 's', long)]
        store: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: ListOutput,
    },
    /// Show a certificate file of a store.
    Show {
        /// Store type.
        #[arg(short = 't', long = "type", value_enum)]
        store_type: StoreTypeArg,
        /// Store name.
        #[arg(short = 's', long)]
        store: String,
        /// File name within the store.
        file: String,
        /// Engine.
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Make a test root CA and a code-signing leaf (key local, or in the HSM with --pkcs11),
    /// trust the root in `ca:NAME` and add the key as NAME.
    GenerateTest {
        /// Common name (and key / store name).
        name: String,
        /// Leaf key type (default: RSA 2048 as notation's, EC P-256 with --pkcs11).
        #[arg(long, value_enum, conflicts_with = "bits")]
        key_type: Option<crate::pkcs11::KeyKind>,
        /// An RSA key of this many bits (2048, 3072 or 4096), as notation's `-b/--bits`.
        #[arg(short = 'b', long)]
        bits: Option<u32>,
        /// Put the leaf key in this PKCS#11 token (created if the object does not exist).
        #[arg(long)]
        pkcs11: Option<String>,
        /// PKCS#11 module.
        #[arg(long, value_name = "PATH")]
        pkcs11_module: Option<PathBuf>,
        /// Make it the default key.
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        default: bool,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Remove what `generate-test NAME` made: the root in `ca:NAME`, the key entry, the
    /// key and certificate files.
    CleanupTest {
        /// The common name given to `generate-test`.
        name: String,
        /// Do not ask.
        #[arg(short = 'y', long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        yes: bool,
    },
    /// Delete a certificate file, or a whole store with --all.
    Delete {
        /// Store type.
        #[arg(short = 't', long = "type", value_enum)]
        store_type: StoreTypeArg,
        /// Store name.
        #[arg(short = 's', long)]
        store: String,
        /// File name within the store.
        file: Option<String>,
        /// Delete the whole store.
        #[arg(short = 'a', long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        all: bool,
        /// Do not ask.
        #[arg(short = 'y', long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        yes: bool,
    },
}

/// `key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a non-extractable key pair in a PKCS#11 token.
    Generate {
        /// `pkcs11:token=LABEL;object=KEYLABEL[?module-path=...&pin-source=file:...]`
        #[arg(long)]
        pkcs11: String,
        /// Key type.
        #[arg(long = "type", value_enum)]
        key_type: crate::pkcs11::KeyKind,
        /// PKCS#11 module.
        #[arg(long, value_name = "PATH")]
        pkcs11_module: Option<PathBuf>,
    },
    /// Write a PKCS#10 certificate signing request signed by an HSM key.
    Csr {
        /// The key's PKCS#11 URI.
        #[arg(long)]
        pkcs11: String,
        /// Subject DN, e.g. `CN=release,O=Acme,ST=WA,C=US`.
        #[arg(long)]
        subject: String,
        /// Output file (PEM).
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// PKCS#11 module.
        #[arg(long, value_name = "PATH")]
        pkcs11_module: Option<PathBuf>,
    },
    /// Store a certificate chain on the token beside a key (certificate objects), where
    /// `notation-hsm-notary` finds it without a chain file.
    ImportCert {
        /// The key's PKCS#11 URI.
        #[arg(long)]
        pkcs11: String,
        /// The chain (PEM, leaf first); the leaf must hold the key.
        #[arg(long)]
        cert: PathBuf,
        /// PKCS#11 module.
        #[arg(long, value_name = "PATH")]
        pkcs11_module: Option<PathBuf>,
    },
    /// Register a key under a name: a PKCS#11 key or a local key file with its
    /// certificate chain, or a key a notation plugin holds (`--plugin P --id KEY_ID`).
    Add(KeyAddArgs),
    /// List keys.
    #[command(alias = "ls")]
    List {
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: ListOutput,
    },
    /// Remove keys from the list (the keys themselves stay where they are).
    Delete {
        /// Key names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a key: where it is, its type, its certificate chain.
    Describe {
        /// Key name.
        name: String,
        /// PKCS#11 module.
        #[arg(long, value_name = "PATH")]
        pkcs11_module: Option<PathBuf>,
    },
}

/// `key add`
#[derive(Debug, Args)]
pub struct KeyAddArgs {
    /// Key name.
    pub name: String,
    /// The key's PKCS#11 URI.
    #[arg(long, conflicts_with_all = ["key_file", "plugin"])]
    pub pkcs11: Option<String>,
    /// A local PKCS#8 PEM key file (development).
    #[arg(long, conflicts_with = "plugin")]
    pub key_file: Option<PathBuf>,
    /// Certificate chain (PEM, leaf first); not for plugin keys, whose plugin gives it.
    #[arg(long, conflicts_with = "plugin")]
    pub cert: Option<PathBuf>,
    /// PKCS#11 module to remember for this key.
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// The plugin that holds the key (installed with `plugin install`).
    #[arg(long)]
    pub plugin: Option<String>,
    /// The key id the plugin knows the key by.
    #[arg(long, requires = "plugin")]
    pub id: Option<String>,
    /// Plugin configuration, `KEY=VALUE` (repeatable), stored with the key.
    #[arg(long = "plugin-config", value_name = "KEY=VALUE", requires = "plugin")]
    pub plugin_config: Vec<String>,
    /// Make it the default key.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub default: bool,
}

/// `plugin`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Install a plugin: an executable `notation-NAME`, or a `.zip` / `.tar.gz` holding one.
    #[command(alias = "add")]
    Install {
        /// The file or `https` URL.
        source: Vec<String>,
        /// The source is a file.
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        file: bool,
        /// The source is an `https` URL (needs --sha256sum).
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        url: bool,
        /// SHA-256 of the source, hex.
        #[arg(long)]
        sha256sum: Option<String>,
        /// Replace an installed plugin whatever its version.
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        force: bool,
    },
    /// List installed plugins, with what each says of itself.
    #[command(alias = "ls")]
    List,
    /// Remove a plugin.
    #[command(aliases = ["remove", "rm"])]
    Uninstall {
        /// Plugin name.
        name: String,
        /// Do not ask.
        #[arg(short = 'y', long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        yes: bool,
    },
}

/// `blob sign`
#[derive(Debug, Args)]
pub struct BlobSignArgs {
    /// The blob to sign.
    pub blob: PathBuf,
    /// The blob's media type, signed into the payload.
    #[arg(long, default_value = "application/octet-stream")]
    pub media_type: String,
    /// Where the signature file is written (default: the blob's directory).
    #[arg(long, value_name = "DIR")]
    pub signature_directory: Option<String>,
    /// Overwrite an existing signature file without asking.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub force: bool,
    /// Key, format, expiry, metadata, timestamping.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Or ask a signing service to sign.
    #[command(flatten)]
    pub via: ServiceRequestArgs,
}

/// `blob policy ...`
#[derive(Debug, Subcommand)]
pub enum BlobPolicyCommand {
    /// Import a blob trust policy file after validating it.
    Import {
        /// The blob trust policy JSON file.
        file: PathBuf,
        /// Overwrite an existing policy without asking.
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        force: bool,
    },
    /// Print the blob trust policy as stored.
    Show,
    /// Write a blob trust policy with one strict statement.
    Init {
        /// The statement's name.
        #[arg(short = 'n', long, required = true)]
        name: String,
        /// Trust stores, `{type}:{name}` (repeatable).
        #[arg(long = "trust-store", required = true)]
        trust_stores: Vec<String>,
        /// Trusted identities, `x509.subject: …` or `*` (repeatable).
        #[arg(long = "trusted-identity", required = true)]
        trusted_identities: Vec<String>,
        /// Make it the global statement (used when no `--policy-name` is given).
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        global: bool,
        /// Overwrite an existing policy without asking.
        #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
        force: bool,
    },
}

/// `blob ...`
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing the flags would buy nothing"
)]
pub enum BlobCommand {
    /// Sign a blob: a detached signature `{blob}.{jws|cose}.sig`.
    Sign(BlobSignArgs),
    /// Manage the blob trust policy (`trustpolicy.blob.json`).
    #[command(subcommand)]
    Policy(BlobPolicyCommand),
    /// Verify a blob against its detached signature.
    Verify {
        /// The blob.
        blob: PathBuf,
        /// The signature file (`.jws.sig` or `.cose.sig`).
        #[arg(short = 's', long)]
        signature: PathBuf,
        /// The blob's media type, if it must match.
        #[arg(long)]
        media_type: Option<String>,
        /// The blob trust policy statement to use (default: the global one).
        #[arg(long)]
        policy_name: Option<String>,
        /// Use this blob trust policy file.
        #[arg(long, value_name = "FILE", conflicts_with = "certificate")]
        trust_policy: Option<PathBuf>,
        /// Stateless: trust this root (PEM or DER) with no configuration directory, under
        /// one strict statement for `--trusted-identity`.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["trust_store", "policy_name"])]
        certificate: Option<PathBuf>,
        /// With `--certificate`: an identity to trust, `x509.subject: …` or `*`
        /// (repeatable).
        #[arg(long = "trusted-identity", value_name = "ID", requires = "certificate")]
        trusted_identities: Vec<String>,
        /// Use this trust store directory.
        #[arg(long, value_name = "DIR")]
        trust_store: Option<PathBuf>,
        /// Required user metadata (`key=value`).
        #[arg(short = 'm', long = "user-metadata", value_name = "KEY=VALUE")]
        user_metadata: Vec<String>,
        /// Evaluate at this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        verify_at: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: VerifyOutput,
        /// Engine.
        #[command(flatten)]
        engine: EngineArgs,
        /// Revocation checking.
        #[command(flatten)]
        revocation: RevocationArgs,
        /// Verification plugins.
        #[command(flatten)]
        plugins: VerificationPluginArgs,
    },
    /// Inspect a detached signature file.
    Inspect {
        /// The signature file.
        signature: PathBuf,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "tree")]
        output: InspectOutput,
        /// Engine.
        #[command(flatten)]
        engine: EngineArgs,
    },
}
