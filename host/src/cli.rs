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
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Sign and verify arbitrary blobs with detached signatures.
    #[command(subcommand)]
    Blob(BlobCommand),
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
    /// `REGISTRY/REPOSITORY@DIGEST`, or with `--oci-layout` `PATH@DIGEST` / `PATH:TAG`.
    pub reference: String,
    /// The reference is an OCI image layout on disk.
    #[arg(long)]
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
    /// Engine.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Artifact reference (with `--oci-layout`: `PATH@DIGEST` / `PATH:TAG`).
    pub reference: String,
    /// The reference is an OCI image layout on disk.
    #[arg(long)]
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
}

/// `list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Artifact reference (with `--oci-layout`: `PATH@DIGEST` / `PATH:TAG`).
    pub reference: String,
    /// The reference is an OCI image layout on disk.
    #[arg(long)]
    pub oci_layout: bool,
    /// Maximum number of signatures to list.
    #[arg(long, default_value_t = 100)]
    pub max_signatures: i64,
}

/// `policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Import an OCI trust policy file after validating it.
    Import {
        /// The trust policy JSON file.
        file: PathBuf,
        /// Overwrite an existing policy without asking.
        #[arg(long)]
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
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not ask.
        #[arg(short = 'y', long)]
        yes: bool,
    },
}

/// `blob ...`
#[derive(Debug, Subcommand)]
pub enum BlobCommand {
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
        #[arg(long, value_name = "FILE")]
        trust_policy: Option<PathBuf>,
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
