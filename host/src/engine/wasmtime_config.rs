//! The one wasmtime configuration the verifier component runs under. `build.rs` includes
//! this file to precompile the embedded component, and the runtime loads that code with
//! the same configuration, so the two cannot drift apart.

/// Epoch interruption (the time limit) on, no native-to-wasm address map; everything else
/// wasmtime's defaults.
pub fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    // The map only adds wasm offsets to trap backtraces (function names stay). Without it
    // the embedded native code is 4.4 MB instead of 5.0, which a process copies in at
    // start-up: 170 fewer page faults, a whole `verify --oci-layout` 7.9 -> 7.5 ms
    // (hyperfine, 40 runs each, one sitting).
    config.generate_address_map(false);
    config
}
