//! The component's world imports nothing: no filesystem, sockets, clocks or randomness —
//! nothing at all — so the same `.wasm` runs in wasmtime, Node and browsers.

use hsm_notary::engine::component::COMPONENT;

#[test]
fn the_component_imports_nothing() {
    let engine = hsm_notary_suite::component_engine();
    assert_eq!(engine.imports(), Vec::<String>::new());
    let exports = engine.exports();
    assert!(
        exports.contains(&"notary:verifier/verifier@0.1.0".to_owned()),
        "{exports:?}"
    );
    assert!(
        exports.contains(&"notary:verifier/types@0.1.0".to_owned()),
        "{exports:?}"
    );
}

#[test]
fn the_binary_embeds_a_component_not_a_core_module() {
    // Component binaries carry layer 1 in the preamble (`\0asm` 0d 00 01 00).
    assert_eq!(&COMPONENT[..4], b"\0asm");
    assert_eq!(&COMPONENT[4..8], &[0x0d, 0x00, 0x01, 0x00]);
}
