//! `hsm-notary`: parse, run, map to an exit code (0 success, 1 failure, as notation).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use hsm_notary::cli::{
    BlobCommand, BlobPolicyCommand, CacheCommand, CertCommand, Cli, Command, CrlCacheCommand,
    KeyCommand, PolicyCommand,
};
use hsm_notary::commands::{
    blob, cache, cert, containerd, inspect, key, policy, ratify, sign, verify,
};
use hsm_notary::config::ConfigDir;
use hsm_notary::engine;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    // Admission integrations call the binary in their own conventions: Ratify v1 with
    // no arguments and `RATIFY_VERIFIER_*` variables, containerd with Go-style flags.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.is_empty() && std::env::var_os("RATIFY_VERIFIER_COMMAND").is_some() {
        return ratify::main();
    }
    if containerd::is_invocation(&args) {
        return containerd::main(&args);
    }
    let cli = match Cli::try_parse_from(stdin_layout_reference(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    init_logging(cli.debug, cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "Error: {}",
                hsm_notary::output::escape_controls(&format!("{e:#}"), true)
            );
            ExitCode::FAILURE
        }
    }
}

/// A reader that stops reading (`hsm-notary ls … | head -1`) ends the process quietly with
/// status 141, what a shell reports for a process killed by SIGPIPE (notation, a Go program,
/// ends so), instead of Rust's panic on a failed print. SIGPIPE itself stays ignored, so a
/// credential helper or a peer that closes early is an error, not a silent death.
fn quiet_on_broken_pipe() {
    const EPIPE: &str = "(os error 32)";
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.ends_with(EPIPE) {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// `… --oci-layout -@sha256:…` names a layout archive on standard input; a last argument
/// `-@…`/`-:…` is taken as that reference (an end of flags is put before it), not as a flag.
fn stdin_layout_reference(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let last_is_stdin = args.last().is_some_and(|a| {
        let a = a.to_string_lossy();
        a.starts_with("-@") || a.starts_with("-:")
    });
    let has_end = args.iter().any(|a| a == "--");
    if last_is_stdin && !has_end {
        let at = args.len() - 1;
        args.insert(at, "--".into());
    }
    args
}

/// Usage errors as notation (cobra) words them, exit status 1 as for every notation error;
/// help and version go to stdout with status 0.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let values = |kind: ContextKind| -> Vec<String> {
        match error.get(kind) {
            Some(ContextValue::String(s)) => vec![s.clone()],
            Some(ContextValue::Strings(v)) => v.clone(),
            _ => Vec::new(),
        }
    };
    let message = match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = values(ContextKind::InvalidArg);
            let (positional, flags): (Vec<_>, Vec<_>) =
                missing.iter().partition(|a| a.starts_with('<'));
            if !flags.is_empty() {
                let names: Vec<String> = flags
                    .iter()
                    .map(|f| {
                        let name = f.trim_start_matches('-');
                        let name = name.split([' ', '=']).next().unwrap_or(name);
                        format!("{name:?}")
                    })
                    .collect();
                format!("required flag(s) {} not set", names.join(", "))
            } else {
                let message = format!(
                    "requires {} argument{} but received 0",
                    positional.len(),
                    if positional.len() == 1 { "" } else { "s" }
                );
                // `policy import` says more, as notation's does.
                let words: Vec<String> = std::env::args()
                    .skip(1)
                    .filter(|a| !a.starts_with('-'))
                    .take(2)
                    .collect();
                if words == ["policy", "import"] {
                    format!(
                        "{message}.\nUsage: hsm-notary policy import <path-to-policy.json>\nPlease specify a trust policy file location as the argument"
                    )
                } else {
                    message
                }
            }
        }
        ErrorKind::UnknownArgument => {
            let arg = values(ContextKind::InvalidArg).join(" ");
            if arg.starts_with('-') {
                format!("unknown flag: {arg}")
            } else {
                format!("accepts at most the arguments it documents, received unexpected {arg:?}")
            }
        }
        ErrorKind::InvalidSubcommand => format!(
            "unknown command {:?} for \"hsm-notary\"\nRun 'hsm-notary --help' for usage.",
            values(ContextKind::InvalidSubcommand).join(" ")
        ),
        _ => {
            // clap's own wording, without its "error: " prefix and usage footer.
            let text = error.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        }
    };
    eprintln!("Error: {message}");
    ExitCode::FAILURE
}

/// `-d` (debug) and `-v` (info) logs to stderr, from hsm-notary's own code only: the
/// libraries below it (HTTP, TLS, oci-client) are not let in, so no header, token or
/// password they might trace can reach the log.
fn init_logging(debug: bool, verbose: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match (debug, verbose) {
        (true, _) => tracing::Level::DEBUG,
        (false, true) => tracing::Level::INFO,
        (false, false) => return,
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(tracing_subscriber::filter::Targets::new().with_target("hsm_notary", level))
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = ConfigDir::resolve(cli.config_dir.as_deref())?;
    match cli.command {
        Command::Sign(args) => sign::run(&args, &config),
        Command::Verify(args) => verify::run(&args, &config),
        Command::Inspect(args) => {
            let engine = engine::engine(args.engine.engine)?;
            inspect::inspect(
                engine.as_ref(),
                &args.reference,
                args.oci_layout,
                args.output,
                args.max_signatures,
                &args.registry.options_in(&config)?,
            )
        }
        Command::List(args) => inspect::list(
            &args.reference,
            args.oci_layout,
            args.max_signatures,
            args.output,
            &args.registry.options_in(&config)?,
        ),
        Command::Policy(PolicyCommand::Import {
            file,
            force,
            engine,
        }) => {
            let engine = engine::engine(engine.engine)?;
            policy::import(engine.as_ref(), &config, &file, force)
        }
        Command::Policy(PolicyCommand::Show { engine }) => {
            let engine = engine::engine(engine.engine)?;
            policy::show(engine.as_ref(), &config)
        }
        Command::Cert(CertCommand::Add {
            store_type,
            store,
            files,
            engine,
        }) => {
            let engine = engine::engine(engine.engine)?;
            cert::add(engine.as_ref(), &config, store_type.into(), &store, &files)
        }
        Command::Cert(CertCommand::List {
            store_type,
            store,
            output,
        }) => cert::list(
            &config,
            store_type.map(Into::into),
            store.as_deref(),
            output,
        ),
        Command::Cert(CertCommand::Show {
            store_type,
            store,
            file,
            engine,
        }) => {
            let engine = engine::engine(engine.engine)?;
            cert::show(engine.as_ref(), &config, store_type.into(), &store, &file)
        }
        Command::Cert(CertCommand::CleanupTest { name, yes }) => {
            key::cleanup_test(&config, &name, yes)
        }
        Command::Cert(CertCommand::Delete {
            store_type,
            store,
            file,
            all,
            yes,
        }) => cert::delete(
            &config,
            store_type.into(),
            &store,
            file.as_deref(),
            all,
            yes,
        ),
        Command::Cert(CertCommand::GenerateTest {
            name,
            key_type,
            bits,
            pkcs11,
            pkcs11_module,
            default,
            days,
        }) => key::generate_test(
            &config,
            &name,
            key::test_key_kind(key_type, bits, pkcs11.is_some())?,
            pkcs11.as_deref(),
            pkcs11_module.as_deref(),
            default,
            days,
        ),
        Command::Key(KeyCommand::Generate {
            pkcs11,
            key_type,
            pkcs11_module,
        }) => key::generate(&pkcs11, key_type, pkcs11_module.as_deref()),
        Command::Key(KeyCommand::Csr {
            pkcs11,
            subject,
            output,
            pkcs11_module,
        }) => key::csr(&pkcs11, &subject, &output, pkcs11_module.as_deref()),
        Command::Key(KeyCommand::ImportCert {
            pkcs11,
            cert,
            pkcs11_module,
        }) => key::import_cert(&pkcs11, &cert, pkcs11_module.as_deref()),
        Command::Key(KeyCommand::Add(args)) => key::add(&config, &args),
        Command::Key(KeyCommand::List { output }) => key::list(&config, output),
        Command::Key(KeyCommand::Delete { names }) => key::delete(&config, &names),
        Command::Key(KeyCommand::Describe {
            name,
            pkcs11_module,
        }) => key::describe(&config, &name, pkcs11_module.as_deref()),
        Command::Blob(BlobCommand::Verify {
            blob,
            signature,
            media_type,
            policy_name,
            trust_policy,
            trust_store,
            certificate,
            trusted_identities,
            user_metadata,
            verify_at,
            output,
            engine,
            revocation,
            plugins,
        }) => {
            let engine = engine::engine(engine.engine)?;
            let revocation = hsm_notary::revocation::Fetcher::new(revocation.options()?);
            let stateless = certificate
                .as_deref()
                .map(|c| (c, trusted_identities.as_slice()));
            blob::verify(
                &revocation
                    .unbounded()
                    .with_plugins(plugins.plugins(&config)?),
                engine.as_ref(),
                &config,
                &blob,
                &signature,
                media_type,
                policy_name,
                trust_policy.as_deref(),
                trust_store.as_deref(),
                &user_metadata,
                verify_at.as_deref(),
                output,
                stateless,
            )
        }
        Command::Blob(BlobCommand::Sign(args)) => blob::sign(&config, &args),
        Command::Blob(BlobCommand::Policy(command)) => {
            let engine = engine::engine(engine::EngineKind::Wasm)?;
            match command {
                BlobPolicyCommand::Import { file, force } => {
                    blob::policy_import(engine.as_ref(), &config, &file, force)
                }
                BlobPolicyCommand::Show => blob::policy_show(engine.as_ref(), &config),
                BlobPolicyCommand::Init {
                    name,
                    trust_stores,
                    trusted_identities,
                    global,
                    force,
                } => blob::policy_init(
                    engine.as_ref(),
                    &config,
                    &name,
                    &trust_stores,
                    &trusted_identities,
                    global,
                    force,
                ),
            }
        }
        Command::Blob(BlobCommand::Inspect {
            signature,
            output,
            engine,
        }) => {
            let engine = engine::engine(engine.engine)?;
            blob::inspect(engine.as_ref(), &signature, output)
        }
        Command::Serve(args) => {
            let settings = hsm_notary::serve::Settings {
                listen: args.listen,
                tls_cert: args.tls_cert,
                tls_key: args.tls_key,
                client_ca: args.client_ca,
                cache_ttl: hsm_notary::sign::parse_duration(&args.cache_ttl)?,
                shared_cache: match (&args.shared_cache, &args.cache_secret_file) {
                    (Some(url), Some(file)) => {
                        let secret = hsm_notary::files::read_regular(file, 4096)
                            .with_context(|| format!("--cache-secret-file {}", file.display()))?;
                        Some(std::sync::Arc::new(
                            hsm_notary::shared_cache::SharedCache::new(url, secret)?,
                        ))
                    }
                    _ => None,
                },
                tag_ttl: hsm_notary::sign::parse_duration(&args.tag_ttl)?,
                deadline: std::time::Duration::from_millis(args.deadline_ms),
                workers: args.workers,
                registry: args.registry.options_in(&config)?,
                revocation: args.revocation.options()?,
                platform: args.platform,
                allow_registries: args.allow_registry,
                require_digest: args.require_digest,
                host_crypto: args.host_crypto,
            };
            hsm_notary::serve::run(settings, &config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(command) => hsm_notary::commands::plugin::run(&command, &config),
        Command::Signer(hsm_notary::cli::SignerCommand::Serve { config: file }) => {
            let settings = hsm_notary::signer::ServiceConfig::load(&file)?;
            hsm_notary::signer::service::run(settings, &config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Signer(hsm_notary::cli::SignerCommand::Audit(command)) => match command {
            hsm_notary::cli::AuditCommand::Export { database, service } => {
                hsm_notary::commands::approval::audit_export(database.as_deref(), &service)
            }
            hsm_notary::cli::AuditCommand::Verify { file, database } => {
                hsm_notary::commands::approval::audit_verify(file.as_deref(), database.as_deref())
            }
        },
        Command::Approval(command) => {
            use hsm_notary::approval::Decision;
            use hsm_notary::cli::ApprovalCommand;
            use hsm_notary::commands::approval;
            match command {
                ApprovalCommand::List {
                    status,
                    output,
                    service,
                } => approval::list(&service, &status, output),
                ApprovalCommand::Show {
                    id,
                    output,
                    service,
                } => approval::show(&service, &id, output),
                ApprovalCommand::Approve(args) => {
                    approval::decide(&config, &args, Decision::Approve)
                }
                ApprovalCommand::Reject(args) => approval::decide(&config, &args, Decision::Reject),
            }
        }
        Command::Signature(hsm_notary::cli::SignatureCommand::Delete(args)) => {
            hsm_notary::commands::signature::delete(&args, &config)
        }
        Command::Cache(CacheCommand::Crl(CrlCacheCommand::List)) => cache::list(),
        Command::Cache(CacheCommand::Crl(CrlCacheCommand::Purge)) => cache::purge(),
        Command::Cache(CacheCommand::Crl(CrlCacheCommand::Import { file, url })) => {
            cache::import(&file, &url)
        }
        Command::Version => {
            let sha256 = |bytes: &[u8]| {
                use sha2::Digest;
                sha2::Sha256::digest(bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            };
            println!("hsm-notary: {}", env!("CARGO_PKG_VERSION"));
            println!(
                "verifier component: sha256:{} (notary:verifier@0.1.0)",
                sha256(engine::component::COMPONENT)
            );
            println!(
                "wasi:http component: sha256:{} (notary:verifier/verifier-http, nests the verifier component)",
                sha256(engine::component::HTTP_COMPONENT)
            );
            println!(
                "host-crypto component: sha256:{} (notary:verifier/verifier-component-host-crypto, imports crypto)",
                sha256(engine::component::HOST_CRYPTO_COMPONENT)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Component(args) => {
            let bytes = match args.world {
                hsm_notary::cli::ComponentWorld::Verifier => engine::component::COMPONENT,
                hsm_notary::cli::ComponentWorld::Http => engine::component::HTTP_COMPONENT,
                hsm_notary::cli::ComponentWorld::HostCrypto => {
                    engine::component::HOST_CRYPTO_COMPONENT
                }
            };
            if args.output.as_os_str() == "-" {
                hsm_notary::commands::write_stdout(bytes)
                    .context("writing the component to stdout")?;
            } else {
                hsm_notary::commands::write_atomically(&args.output, bytes, 0o644, 0o755)
                    .with_context(|| format!("writing {}", args.output.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
