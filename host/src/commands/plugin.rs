//! `hsm-notary plugin install|list|uninstall`, with notation's flags and messages.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::PluginCommand;
use crate::config::ConfigDir;
use crate::plugin::install::{self, Source};

/// Run a `plugin` command.
pub fn run(command: &PluginCommand, config: &ConfigDir) -> Result<ExitCode> {
    let root = crate::plugin::plugin_root(config.root());
    match command {
        PluginCommand::Install {
            source,
            file,
            url,
            sha256sum,
            force,
        } => {
            let kind = match (file, url) {
                (true, true) => bail!(
                    "if any flags in the group [file url] are set none of the others can be; [file url] were all set"
                ),
                (false, false) => {
                    bail!("at least one of the flags in the group [file url] is required")
                }
                (true, false) => "file",
                (false, true) => "URL",
            };
            let location = match source.as_slice() {
                [] if kind == "file" => bail!("missing plugin file path"),
                [] => bail!("missing plugin URL"),
                [one] => one.clone(),
                many => bail!("can only install one plugin at a time, but got {many:?}"),
            };
            let source = if *url {
                Source::Url(location)
            } else {
                Source::File(location.into())
            };
            let installed = install::install(&root, &source, sha256sum.as_deref(), *force)?;
            println!("{installed}");
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::List => {
            let mut rows = vec![
                ["NAME", "DESCRIPTION", "VERSION", "CAPABILITIES", "ERROR"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for row in install::list(&root)? {
                rows.push(match row.metadata {
                    Ok(m) => vec![
                        row.name,
                        m.description,
                        m.version,
                        format!("[{}]", m.capabilities.join(" ")),
                        "<nil>".to_owned(),
                    ],
                    Err(e) => vec![row.name, String::new(), String::new(), "[]".to_owned(), e],
                });
            }
            print!("{}", crate::output::table(&rows));
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Uninstall { name, yes } => {
            if !install::exists(&root, name) {
                bail!(
                    "unable to find plugin {name}.\nTo view a list of installed plugins, use `hsm-notary plugin list`"
                );
            }
            if !yes
                && !super::confirm(&format!(
                    "Are you sure you want to uninstall plugin \"{name}\"?"
                ))
            {
                return Ok(ExitCode::SUCCESS);
            }
            install::uninstall(&root, name)?;
            println!("Successfully uninstalled plugin {name}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
