//! The one wasmtime configuration the verifier component runs under. `build.rs` includes
//! this file to precompile the embedded component, and the runtime loads that code with
//! the same configuration, so the two cannot drift apart.

/// Epoch interruption (the time limit) on; everything else wasmtime's defaults.
pub fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config
}
