//! Verification plugins, run for the component: it says what a plugin must be asked
//! (`plugin-needs`), this asks it, and the answers go back as evidence. The component
//! wrote the `verify-signature` request; the only thing added here is `pluginConfig`
//! (`verify --plugin-config`).

use std::path::PathBuf;
use std::time::Duration;

use notary_verifier::plugin::{PluginEvidence, PluginInfo, PluginNeed};

use super::process::Plugin;
use super::protocol::{self, Metadata, MetadataRequest, PluginConfig};

/// The installed plugins a verification may ask.
#[derive(Clone, Debug)]
pub struct Plugins {
    root: PathBuf,
    config: PluginConfig,
    timeout: Duration,
}

impl Plugins {
    /// Plugins under `root` (`plugins/`), sent `config`, each command within `timeout`.
    pub fn new(root: PathBuf, config: PluginConfig, timeout: Duration) -> Self {
        Self {
            root,
            config,
            timeout,
        }
    }

    /// The plugins installed for `config`, with no configuration and the default timeout
    /// (`serve`, Ratify and containerd modes).
    pub fn installed(config: &crate::config::ConfigDir) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::new(
            super::plugin_root(config.root()),
            PluginConfig::new(),
            super::process::DEFAULT_TIMEOUT,
        ))
    }

    /// These plugins, each command ending by `deadline` at the latest.
    pub fn until(&self, deadline: std::time::Instant) -> Self {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        Self {
            timeout: self.timeout.min(left),
            ..self.clone()
        }
    }

    fn plugin(&self, name: &str) -> Result<Plugin, String> {
        let path = super::locate(&self.root, name).map_err(|e| format!("{e:#}"))?;
        let mut plugin = Plugin::new(name, &path);
        plugin.timeout = self.timeout;
        Ok(plugin)
    }

    /// Ask what `need` says.
    pub fn answer(&self, need: &PluginNeed) -> PluginEvidence {
        match need {
            PluginNeed::Metadata(name) => {
                let metadata = self.plugin(name).and_then(|plugin| {
                    let metadata: Metadata = plugin
                        .call(
                            protocol::GET_PLUGIN_METADATA,
                            &MetadataRequest {
                                plugin_config: self.config.clone(),
                            },
                        )
                        .map_err(|e| e.to_string())?;
                    metadata.validate()?;
                    if metadata.name != *name {
                        return Err(format!(
                            "plugin executable file name must be \"notation-{}\" instead of \"notation-{name}\"",
                            metadata.name
                        ));
                    }
                    Ok(metadata)
                });
                match metadata {
                    Ok(m) => PluginEvidence::Metadata(PluginInfo {
                        name: m.name,
                        version: m.version,
                        capabilities: m.capabilities,
                    }),
                    Err(reason) => PluginEvidence::Missing {
                        name: name.clone(),
                        reason,
                    },
                }
            }
            PluginNeed::VerifySignature { name, request } => {
                let response = self.plugin(name).and_then(|plugin| {
                    let mut body: serde_json::Value =
                        serde_json::from_slice(request).map_err(|e| e.to_string())?;
                    if !self.config.is_empty() {
                        body["pluginConfig"] = serde_json::json!(self.config);
                    }
                    plugin
                        .call::<_, serde_json::Value>(protocol::VERIFY_SIGNATURE, &body)
                        .map_err(|e| e.to_string())
                        .and_then(|v| serde_json::to_vec(&v).map_err(|e| e.to_string()))
                });
                match response {
                    Ok(response) => PluginEvidence::Answer {
                        name: name.clone(),
                        request: request.clone(),
                        response,
                    },
                    Err(reason) => PluginEvidence::Failed {
                        name: name.clone(),
                        request: request.clone(),
                        reason,
                    },
                }
            }
        }
    }
}
