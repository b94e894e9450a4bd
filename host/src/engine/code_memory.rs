//! Where the embedded component's native code runs from.
//!
//! wasmtime's `deserialize` copies compiled code into fresh memory before it makes it
//! executable. For the 4.4 MB embedded component that copy was most of a `verify`
//! process's time: every page of it faulted in and was written, though a verification
//! runs a small part of it. On x86-64 Linux the code instead runs where the kernel
//! already maps it, inside this binary's read-only data: the text section is made
//! read+execute in place, its pages come from the page cache as they are first run, and
//! nothing is ever writable. The pages never were writable, so this keeps W^X, and no
//! code is read from anywhere but the binary itself.
//!
//! Elsewhere (other architectures need an instruction-cache flush; other systems other
//! calls) the code is copied as wasmtime does by default.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};
use wasmtime::Engine;
use wasmtime::component::Component;

/// `config` with this module's code memory where it is used (x86-64 Linux).
pub fn configure(mut config: wasmtime::Config) -> wasmtime::Config {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    config.with_custom_code_memory(Some(std::sync::Arc::new(in_place::InPlace)));
    config
}

/// Whether the embedded code has been asked to load in place: wasmtime registers each code
/// range once per process (a second registration panics), so only the first ask does it.
/// The shared default engine is the one that asks, once.
static LOADED_IN_PLACE: AtomicBool = AtomicBool::new(false);

/// The embedded component's build-time native code, run in place when `in_place` (once
/// per process, where that is used; the shared default engine asks), copied otherwise; an
/// error if it does not fit `engine` (another CPU's features, other settings).
pub fn load_precompiled(engine: &Engine, in_place: bool) -> Result<Component> {
    let code = super::component::precompiled_bytes();
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    let _ = in_place;
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if in_place && !LOADED_IN_PLACE.swap(true, Ordering::SeqCst) {
        // SAFETY: the bytes are part of this binary, compiled by build.rs from the
        // embedded component with this engine's configuration, so they are as trusted as
        // the binary's own code (wasmtime checks the configuration and refuses code for
        // another). They are a `static`, so they live as long as the component and are
        // never written. The engine publishes them with `InPlace` (see `configure`).
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_raw(engine, std::ptr::NonNull::from(code)) };
        return loaded.map_err(|e| anyhow!("loading the build-time native code in place: {e:#}"));
    }
    // SAFETY: as above; wasmtime copies the bytes.
    #[allow(unsafe_code)]
    unsafe { Component::deserialize(engine, code) }
        .map_err(|e| anyhow!("loading the build-time native code: {e:#}"))
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod in_place {
    use rustix::mm::{MprotectFlags, mprotect};

    /// x86-64 Linux pages; its instruction cache needs no flush after code is written.
    const PAGE: usize = 4096;

    /// Makes text sections executable with `mprotect`, as wasmtime's own code memory
    /// does, and also where the memory is not wasmtime's own mapping: the embedded code
    /// in this binary's read-only data.
    pub struct InPlace;

    impl InPlace {
        fn protect(ptr: *const u8, len: usize, flags: MprotectFlags) -> wasmtime::Result<()> {
            if !(ptr as usize).is_multiple_of(PAGE) {
                wasmtime::bail!("code at {ptr:p} does not start a page");
            }
            // SAFETY: wasmtime hands over the text section of code memory it holds
            // (its own mapping, or the embedded `static` it was given whole), page-aligned
            // and no longer written. Changing the protection of those pages invalidates
            // no reference: every page stays readable.
            #[allow(unsafe_code)]
            unsafe { mprotect(ptr.cast_mut().cast(), len, flags) }
                .map_err(|e| wasmtime::format_err!("mprotect of code at {ptr:p}: {e}"))
        }
    }

    impl wasmtime::CustomCodeMemory for InPlace {
        fn required_alignment(&self) -> usize {
            PAGE
        }

        fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
            Self::protect(ptr, len, MprotectFlags::READ | MprotectFlags::EXEC)
        }

        fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
            // wasmtime's own mappings go back to read+write as it expects; the binary's
            // read-only data goes back to read-only.
            let embedded = super::super::component::precompiled_bytes().as_ptr_range();
            let flags = if embedded.contains(&ptr) {
                MprotectFlags::READ
            } else {
                MprotectFlags::READ | MprotectFlags::WRITE
            };
            Self::protect(ptr, len, flags)
        }
    }
}
