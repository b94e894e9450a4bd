//! The verifier component embedded with wasmtime.
//!
//! The component is compiled once per process and pre-instantiated. Each call runs in an
//! instance with a memory limit and a time limit, so a hostile input can neither exhaust
//! memory nor spin. An instance whose call succeeded serves later calls ([`Warm`]): what
//! survives in it is the verifier's memos, which hold only facts that are pure functions
//! of bytes (this certificate's signature verifies under that one's key; these bytes parse
//! to this certificate), so a signer's chain is verified once, not once per image. An
//! instance whose call failed, trapped or ran out of time is dropped, as is one that grew
//! large or has served many calls. The time limit is
//! an epoch deadline rather than fuel: fuel metering instruments every basic block and cost
//! about a fifth of an RSA verification, epoch checks cost next to nothing. The embedded
//! component's native code is compiled at build time and embedded too ([`PRECOMPILED`]):
//! loading it takes under a millisecond where Cranelift takes about half a second, and no
//! compiled code is ever read from disk, where anyone who can write a cache directory
//! could have put their own (wasmtime runs deserialized code as it is). Any other
//! component is compiled in memory.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use notary_verifier as nv;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};

use super::Verifier;

#[allow(
    unsafe_code,
    missing_docs,
    clippy::all,
    reason = "wasmtime bindgen output"
)]
mod bindings {
    // The host-crypto world is the default world plus one import, so its bindings serve
    // both components: a linker that also defines `crypto` instantiates the import-free
    // one as well.
    wasmtime::component::bindgen!({
        world: "verifier-component-host-crypto",
        path: "../wit",
    });
}

use bindings::VerifierComponentHostCryptoPre as VerifierComponentPre;
use bindings::exports::notary::verifier::types as wit;
use bindings::notary::verifier::crypto;
use nv::signature::arithmetic::{Arithmetic, Native};
use std::sync::Arc;

/// The component this binary was built with.
pub static COMPONENT: &[u8] = include_bytes!(env!("HSM_NOTARY_COMPONENT_WASM"));

/// [`COMPONENT`] compiled for this binary's target by `build.rs`, with the runtime's
/// configuration ([`super::wasmtime_config`]); empty where it could not be (cross builds).
/// Page-aligned, so that its code runs where the binary's own mapping holds it
/// ([`super::code_memory`]).
static PRECOMPILED: &PageAligned<[u8]> =
    &PageAligned(*include_bytes!(env!("HSM_NOTARY_COMPONENT_CWASM")));

/// Bytes placed at a page boundary (the compiled code's text section starts a page
/// into it).
#[repr(C, align(4096))]
pub(super) struct PageAligned<T: ?Sized>(pub(super) T);

/// Where [`PRECOMPILED`] lies, for the code memory's bookkeeping.
pub(super) fn precompiled_bytes() -> &'static [u8] {
    &PRECOMPILED.0
}

/// The wasi:http build (world `verifier-http`): an HTTP adapter composed with
/// [`COMPONENT`], which it nests unchanged. This binary does not run it; `hsm-notary
/// component --world http` writes it out for `wasmtime serve` and other wasi:http hosts.
pub const HTTP_COMPONENT: &[u8] = include_bytes!(env!("HSM_NOTARY_HTTP_COMPONENT_WASM"));

/// The optional build that imports its public-key arithmetic (world
/// `verifier-component-host-crypto`): `--engine wasm-host-crypto`, and `hsm-notary
/// component --world host-crypto` writes it out. Compiled when chosen, not at build time.
pub const HOST_CRYPTO_COMPONENT: &[u8] =
    include_bytes!(env!("HSM_NOTARY_HOST_CRYPTO_COMPONENT_WASM"));

/// Linear memory one verification may use.
const MEMORY_LIMIT: usize = 512 * 1024 * 1024;
/// How often the engine's epoch advances.
const EPOCH_TICK: Duration = Duration::from_millis(100);
/// How long one call may run by default. A verification takes milliseconds, a request
/// with notation's default 100 RSA signatures that all fail about a second.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Calls one instance serves before it is replaced (its memos are bounded anyway; this
/// bounds what any other state could accumulate).
const WARM_CALLS: u32 = 1024;
/// An instance whose linear memory grew past this is not kept: a hostile input's large
/// memory is given back with its instance.
const WARM_MEMORY: usize = 32 * 1024 * 1024;
/// Idle instances kept per engine (one per concurrent caller is what helps).
const WARM_INSTANCES: usize = 16;

struct State {
    limits: StoreLimits,
    arithmetic: Arc<Native>,
    /// The most linear memory the instance has asked for.
    memory: usize,
}

/// The store's limits ([`MEMORY_LIMIT`]), noting how large the memory grew.
impl wasmtime::ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory = self.memory.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// An instance kept for later calls, with its store.
struct Warm {
    store: Store<State>,
    instance: bindings::VerifierComponentHostCrypto,
    calls: u32,
}

/// The `crypto` import: the verifier crate's own arithmetic, natively, with keys kept
/// across calls (only the host-crypto component imports it).
impl crypto::Host for State {
    fn rsa_public_operation(
        &mut self,
        modulus: Vec<u8>,
        exponent: Vec<u8>,
        signature: Vec<u8>,
    ) -> Option<Vec<u8>> {
        self.arithmetic
            .rsa_public_operation(&modulus, &exponent, &signature)
    }

    fn ecdsa_verify_prehash(
        &mut self,
        curve: crypto::Curve,
        public_key: Vec<u8>,
        prehash: Vec<u8>,
        signature: Vec<u8>,
    ) -> bool {
        let curve = match curve {
            crypto::Curve::P256 => nv::signature::Curve::P256,
            crypto::Curve::P384 => nv::signature::Curve::P384,
            crypto::Curve::P521 => nv::signature::Curve::P521,
        };
        self.arithmetic
            .ecdsa_verify_prehash(curve, &public_key, &prehash, &signature)
    }
}

/// Calls made into the component (see [`ComponentEngine::calls`]).
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The embedded component, compiled and pre-instantiated. Clones share the compiled
/// component and the kept instances (a clone costs reference counts), so each request can
/// carry its own deadline ([`ComponentEngine::until`]).
#[derive(Clone)]
pub struct ComponentEngine {
    engine: Engine,
    pre: VerifierComponentPre<State>,
    /// The component's bytes, and their SHA-256 once asked for (hashing 2 MB costs a
    /// whole process about a millisecond it seldom needs).
    wasm: &'static [u8],
    wasm_sha256: Arc<std::sync::OnceLock<String>>,
    /// Whether the build-time native code was loaded (not compiled at start-up).
    pub precompiled: bool,
    time_limit: Duration,
    deadline: Option<Instant>,
    /// What the `crypto` import answers with, shared by every call and clone.
    arithmetic: Arc<Native>,
    /// Idle instances, shared by clones; `None`: a fresh instance for every call.
    warm: Option<Arc<std::sync::Mutex<Vec<Warm>>>>,
}

impl ComponentEngine {
    /// The component built into this binary, from its build-time native code.
    pub fn load_default() -> Result<Self> {
        Self::new(COMPONENT)
    }

    /// The embedded component under the runtime's configuration, loaded once per process
    /// and shared by every engine made for it (its code runs in place once: see
    /// `code_memory`).
    fn shared_default() -> Result<Self> {
        static SHARED: std::sync::Mutex<Option<ComponentEngine>> = std::sync::Mutex::new(None);
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(engine) = shared.as_ref() {
            return Ok(engine.fresh_state());
        }
        let engine = Self::with_config(COMPONENT, &super::wasmtime_config::config(), true)?;
        *shared = Some(engine.clone());
        Ok(engine)
    }

    /// A clone with its own instances, limits and host arithmetic, sharing only the
    /// compiled component.
    fn fresh_state(&self) -> Self {
        Self {
            time_limit: DEFAULT_TIME_LIMIT,
            deadline: None,
            arithmetic: Arc::default(),
            warm: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// The host-crypto build of the component ([`HOST_CRYPTO_COMPONENT`]), compiled now.
    pub fn load_host_crypto() -> Result<Self> {
        Self::new(HOST_CRYPTO_COMPONENT)
    }

    /// Public-key operations the component has asked of this host (zero for the
    /// import-free component).
    pub fn host_crypto_calls(&self) -> u64 {
        self.arithmetic.calls()
    }

    /// Load `wasm` (the embedded component from its precompiled code, any other compiled
    /// now, in memory) and pre-instantiate it.
    pub fn new(wasm: &'static [u8]) -> Result<Self> {
        if is_embedded(wasm) {
            return Self::shared_default();
        }
        Self::with_config(wasm, &super::wasmtime_config::config(), false)
    }

    /// [`ComponentEngine::new`] under `config`: one the build-time code was not compiled
    /// for (another CPU's features, other settings) compiles the component instead.
    /// The embedded code runs in place only for the one shared engine (`in_place`); any
    /// other engine copies it, so no two loads of it can race for the place.
    fn with_config(wasm: &'static [u8], config: &wasmtime::Config, in_place: bool) -> Result<Self> {
        let engine = Engine::new(&super::code_memory::configure(config.clone()))?;
        start_epoch_ticker(&engine)?;
        let (component, precompiled) = load_component(&engine, wasm, in_place)?;
        let mut linker = Linker::<State>::new(&engine);
        crypto::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut linker, |s| s)?;
        let pre = VerifierComponentPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            engine,
            pre,
            wasm,
            wasm_sha256: Arc::default(),
            precompiled,
            time_limit: DEFAULT_TIME_LIMIT,
            deadline: None,
            arithmetic: Arc::default(),
            warm: Some(Arc::default()),
        })
    }

    /// SHA-256 of the component's bytes, in hex.
    pub fn component_sha256(&self) -> &str {
        self.wasm_sha256
            .get_or_init(|| hex(&Sha256::digest(self.wasm)))
    }

    /// This engine with a fresh instance for every call: nothing is remembered from one
    /// call to the next (benches measure a chain never seen before with it; tests compare).
    pub fn fresh_instances(&self) -> Self {
        Self {
            warm: None,
            ..self.clone()
        }
    }

    /// Instances kept for later calls right now.
    pub fn warm_instances(&self) -> usize {
        self.warm.as_ref().map_or(0, |warm| {
            warm.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len()
        })
    }

    /// Stop each call once it has run for `limit` (or up to two 100 ms ticks more; zero
    /// stops a call at once).
    pub fn set_time_limit(&mut self, limit: Duration) {
        self.time_limit = limit;
    }

    /// This engine with every call also stopped at `deadline`: a request's several calls
    /// share one budget, counted from when the request came, not from each call.
    pub fn until(&self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// The names the component imports (none for the default component; the
    /// host-crypto build imports `crypto`).
    pub fn imports(&self) -> Vec<String> {
        self.pre
            .instance_pre()
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The names the component exports.
    pub fn exports(&self) -> Vec<String> {
        self.pre
            .instance_pre()
            .component()
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// Component calls made by this process, for benches.
    pub fn calls() -> u64 {
        CALLS.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn call<R>(
        &self,
        f: impl FnOnce(&bindings::VerifierComponentHostCrypto, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Which bound applies, the request's deadline or the per-call limit, decides what
        // a stopped call is reported as.
        let left = self
            .deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
            .filter(|left| *left < self.time_limit);
        let stopped = |e: wasmtime::Error| {
            if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                self.over_time(left.is_some())
            } else {
                anyhow!("verifier component failed: {e:?}")
            }
        };
        let ticks = epoch_ticks(left.unwrap_or(self.time_limit));
        let mut warm = match self.take_warm() {
            Some(warm) => warm,
            None => self.instantiate(ticks).map_err(stopped)?,
        };
        warm.store.set_epoch_deadline(ticks);
        // A failed call's instance is dropped with it, whatever state it was left in.
        let result = f(&warm.instance, &mut warm.store).map_err(stopped)?;
        warm.calls += 1;
        self.keep_warm(warm);
        Ok(result)
    }

    fn instantiate(&self, ticks: u64) -> wasmtime::Result<Warm> {
        let mut store = Store::new(
            &self.engine,
            State {
                limits: StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build(),
                arithmetic: self.arithmetic.clone(),
                memory: 0,
            },
        );
        store.limiter(|state| state);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let instance = self.pre.instantiate(&mut store)?;
        Ok(Warm {
            store,
            instance,
            calls: 0,
        })
    }

    fn take_warm(&self) -> Option<Warm> {
        self.warm
            .as_ref()?
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn keep_warm(&self, warm: Warm) {
        let Some(pool) = &self.warm else { return };
        if warm.calls >= WARM_CALLS || warm.store.data().memory > WARM_MEMORY {
            return;
        }
        let mut pool = pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < WARM_INSTANCES {
            pool.push(warm);
        }
    }

    fn over_time(&self, at_deadline: bool) -> anyhow::Error {
        if at_deadline {
            anyhow!("verifier component stopped: its request's deadline passed")
        } else {
            anyhow!(
                "verifier component stopped: over its time limit of {:?}",
                self.time_limit
            )
        }
    }
}

/// Epoch ticks for a store to run at least `limit` (none for zero: the first check stops
/// it). The ticker runs freely, so the first tick may come at once: one more than `limit`
/// rounds up to. Bounded well below the epoch counter's range, which wasmtime adds the
/// deadline to.
fn epoch_ticks(limit: Duration) -> u64 {
    if limit.is_zero() {
        return 0;
    }
    let ticks = limit.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) + 1;
    u64::try_from(ticks).unwrap_or(u64::MAX).min(u64::MAX / 4)
}

/// Advance `engine`'s epoch every [`EPOCH_TICK`] from a thread that ends with the engine.
fn start_epoch_ticker(engine: &Engine) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("hsm-notary-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map_err(|e| anyhow!("starting the verifier's epoch thread: {e}"))?;
    Ok(())
}

/// Whether `wasm` is [`COMPONENT`] (the pointer test spares comparing 2 MB).
fn is_embedded(wasm: &[u8]) -> bool {
    std::ptr::eq(wasm, COMPONENT) || wasm == COMPONENT
}

fn load_component(engine: &Engine, wasm: &[u8], in_place: bool) -> Result<(Component, bool)> {
    if is_embedded(wasm) && !PRECOMPILED.0.is_empty() {
        match super::code_memory::load_precompiled(engine, in_place) {
            Ok(component) => return Ok((component, true)),
            Err(e) => tracing::debug!("compiling the verifier component at start-up: {e:#}"),
        }
    }
    Component::new(engine, wasm)
        .map(|c| (c, false))
        .map_err(|e| anyhow!("compiling the verifier component: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Verifier for ComponentEngine {
    fn verify(&self, request: &nv::VerifyRequest) -> Result<nv::Outcome> {
        let request = convert::request(request);
        let outcome = self.call(|i, s| i.notary_verifier_verifier().call_verify(s, &request))?;
        Ok(convert::outcome(outcome))
    }

    fn verify_or_ask(
        &self,
        request: &nv::VerifyRequest,
    ) -> Result<(nv::Outcome, Vec<nv::revocation::Need>)> {
        let request = convert::request(request);
        let (outcome, needs) =
            self.call(|i, s| i.notary_verifier_verifier().call_verify_or_ask(s, &request))?;
        Ok((
            convert::outcome(outcome),
            needs.into_iter().map(convert::need).collect(),
        ))
    }

    fn revocation_needs(&self, request: &nv::VerifyRequest) -> Result<Vec<nv::revocation::Need>> {
        let request = convert::request(request);
        let needs = self.call(|i, s| {
            i.notary_verifier_verifier()
                .call_revocation_needs(s, &request)
        })?;
        Ok(needs.into_iter().map(convert::need).collect())
    }

    fn plugin_needs(&self, request: &nv::VerifyRequest) -> Result<Vec<nv::plugin::PluginNeed>> {
        let request = convert::request(request);
        let needs =
            self.call(|i, s| i.notary_verifier_verifier().call_plugin_needs(s, &request))?;
        Ok(needs.into_iter().map(convert::plugin_need).collect())
    }

    fn timestamp_token_needs(
        &self,
        request: &nv::VerifyRequest,
        token: &[u8],
        signature_value: &[u8],
        signing_chain: &[Vec<u8>],
    ) -> Result<Vec<nv::revocation::Need>> {
        let request = convert::request(request);
        let needs = self.call(|i, s| {
            i.notary_verifier_verifier()
                .call_timestamp_token_revocation_needs(
                    s,
                    &request,
                    token,
                    signature_value,
                    signing_chain,
                )
        })?;
        Ok(needs.into_iter().map(convert::need).collect())
    }

    fn check_policy(
        &self,
        policy: &nv::PolicyInput,
    ) -> Result<Result<Vec<nv::AppliedPolicy>, nv::Failure>> {
        let policy = convert::policy(policy);
        let result =
            self.call(|i, s| i.notary_verifier_verifier().call_check_policy(s, &policy))?;
        Ok(result
            .map(|list| list.into_iter().map(convert::applied).collect())
            .map_err(convert::failure))
    }

    fn select_policy(
        &self,
        policy: &nv::PolicyInput,
        selector: &nv::Selector,
    ) -> Result<Result<nv::AppliedPolicy, nv::Failure>> {
        let policy = convert::policy(policy);
        let selector = match selector {
            nv::Selector::OciReference(r) => wit::PolicySelector::OciReference(r.clone()),
            nv::Selector::BlobPolicyName(n) => wit::PolicySelector::BlobPolicyName(n.clone()),
        };
        let result = self.call(|i, s| {
            i.notary_verifier_verifier()
                .call_select_policy(s, &policy, &selector)
        })?;
        Ok(result.map(convert::applied).map_err(convert::failure))
    }

    fn load_trust_store(
        &self,
        stores: &nv::TrustStores,
        store_type: nv::StoreType,
        name: &str,
    ) -> Result<Result<Vec<nv::CertificateSummary>, nv::Failure>> {
        let stores = convert::stores(stores);
        let store_type = convert::store_type(store_type);
        let result = self.call(|i, s| {
            i.notary_verifier_verifier()
                .call_load_trust_store(s, &stores, store_type, name)
        })?;
        Ok(result
            .map(|list| list.into_iter().map(convert::certificate).collect())
            .map_err(convert::failure))
    }

    fn check_generated_envelope(
        &self,
        signature: &nv::SignatureInput,
        target: &nv::Descriptor,
    ) -> Result<Result<nv::EnvelopeInfo, nv::Failure>> {
        let signature = convert::signature(signature);
        let target = convert::descriptor_in(target);
        let result = self.call(|i, s| {
            i.notary_verifier_verifier()
                .call_check_generated_envelope(s, &signature, &target)
        })?;
        Ok(result.map(convert::envelope).map_err(convert::failure))
    }

    fn inspect(
        &self,
        signature: &nv::SignatureInput,
    ) -> Result<Result<nv::EnvelopeInfo, nv::Failure>> {
        let signature = convert::signature(signature);
        let result = self.call(|i, s| i.notary_verifier_verifier().call_inspect(s, &signature))?;
        Ok(result.map(convert::envelope).map_err(convert::failure))
    }

    fn check_authentic_timestamp(
        &self,
        request: &nv::VerifyRequest,
    ) -> Result<nv::ValidationResult> {
        let request = convert::request(request);
        let result = self.call(|i, s| {
            i.notary_verifier_verifier()
                .call_check_authentic_timestamp(s, &request)
        })?;
        Ok(convert::result(result))
    }

    fn check_timestamp_token(
        &self,
        request: &nv::VerifyRequest,
        token: &[u8],
        signature_value: &[u8],
        signing_chain: &[Vec<u8>],
    ) -> Result<nv::ValidationResult> {
        let request = convert::request(request);
        let result = self.call(|i, s| {
            i.notary_verifier_verifier().call_check_timestamp_token(
                s,
                &request,
                token,
                signature_value,
                signing_chain,
            )
        })?;
        Ok(convert::result(result))
    }
}

/// Crate types ↔ WIT types. The mirror of `verifier-component/component`.
mod convert {
    use notary_verifier as nv;
    use nv::outcome as o;

    use super::wit;

    fn instant_in(i: nv::Instant) -> wit::Instant {
        wit::Instant {
            seconds: i.seconds,
            nanoseconds: i.nanos,
            utc_offset_seconds: i.offset_seconds,
        }
    }

    fn instant_out(i: wit::Instant) -> nv::Instant {
        nv::Instant {
            offset_seconds: i.utc_offset_seconds,
            ..nv::Instant::from_unix(i.seconds, i.nanoseconds)
        }
    }

    pub fn descriptor_in(d: &nv::Descriptor) -> wit::Descriptor {
        wit::Descriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
            artifact_type: d.artifact_type.clone(),
            annotations: d.annotations.clone().into_iter().collect(),
        }
    }

    fn descriptor_out(d: wit::Descriptor) -> nv::Descriptor {
        nv::Descriptor {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            artifact_type: d.artifact_type,
            annotations: d.annotations.into_iter().collect(),
        }
    }

    pub fn store_type(t: nv::StoreType) -> wit::TrustStoreType {
        match t {
            nv::StoreType::Ca => wit::TrustStoreType::Ca,
            nv::StoreType::SigningAuthority => wit::TrustStoreType::SigningAuthority,
            nv::StoreType::Tsa => wit::TrustStoreType::Tsa,
        }
    }

    pub fn stores(stores: &nv::TrustStores) -> Vec<wit::TrustStore> {
        stores
            .stores
            .iter()
            .map(|s| wit::TrustStore {
                store_type: store_type(s.store_type),
                name: s.name.clone(),
                files: s
                    .files
                    .iter()
                    .map(|f| wit::TrustStoreFile {
                        name: f.name.clone(),
                        content: f.content.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    pub fn policy(p: &nv::PolicyInput) -> wit::PolicyDocument {
        wit::PolicyDocument {
            kind: match p.kind {
                nv::DocumentKind::Oci => wit::PolicyKind::Oci,
                nv::DocumentKind::Blob => wit::PolicyKind::Blob,
            },
            content: p.content.clone(),
        }
    }

    pub fn signature(s: &nv::SignatureInput) -> wit::Signature {
        wit::Signature {
            media_type: s.media_type.clone(),
            envelope: s.envelope.clone(),
            manifest_digest: s.manifest_digest.clone(),
            prior_failure: s.prior_failure.as_ref().map(failure_in),
        }
    }

    fn failure_in(f: &o::Failure) -> wit::Failure {
        use nv::FailureKind as K;
        wit::Failure {
            kind: match f.kind {
                K::TrustPolicy => wit::FailureKind::TrustPolicy,
                K::NoApplicablePolicy => wit::FailureKind::NoApplicablePolicy,
                K::TrustStore => wit::FailureKind::TrustStore,
                K::SignatureRetrieval => wit::FailureKind::SignatureRetrieval,
                K::Integrity => wit::FailureKind::Integrity,
                K::Authenticity => wit::FailureKind::Authenticity,
                K::AuthenticTimestamp => wit::FailureKind::AuthenticTimestamp,
                K::Expiry => wit::FailureKind::Expiry,
                K::Revocation => wit::FailureKind::Revocation,
                K::UserMetadata => wit::FailureKind::UserMetadata,
                K::InvalidInput => wit::FailureKind::InvalidInput,
            },
            message: f.message.clone(),
        }
    }

    pub fn request(r: &nv::VerifyRequest) -> wit::VerifyRequest {
        wit::VerifyRequest {
            policy: policy(&r.policy),
            trust_stores: stores(&r.trust_stores),
            target: match &r.target {
                nv::Target::Oci {
                    reference,
                    descriptor,
                } => wit::Target::Oci(wit::OciTarget {
                    reference: reference.clone(),
                    descriptor: descriptor_in(descriptor),
                }),
                nv::Target::Blob {
                    policy_name,
                    media_type,
                    digest,
                    size,
                } => wit::Target::Blob(wit::BlobTarget {
                    policy_name: policy_name.clone(),
                    media_type: media_type.clone(),
                    digest: digest.clone(),
                    size: *size,
                }),
            },
            signatures: r.signatures.iter().map(signature).collect(),
            user_metadata: r.user_metadata.clone(),
            verification_time: instant_in(r.verification_time),
            revocation_evidence: r
                .revocation_evidence
                .iter()
                .map(|e| match e {
                    nv::Evidence::Ocsp { url, response } => {
                        wit::RevocationEvidence::OcspResponse(wit::FetchedEvidence {
                            url: url.clone(),
                            content: response.clone(),
                        })
                    }
                    nv::Evidence::Crl { url, crl } => {
                        wit::RevocationEvidence::Crl(wit::FetchedEvidence {
                            url: url.clone(),
                            content: crl.clone(),
                        })
                    }
                    nv::Evidence::Unavailable { url, reason } => {
                        wit::RevocationEvidence::Unavailable(wit::UnavailableEvidence {
                            url: url.clone(),
                            reason: reason.clone(),
                        })
                    }
                    nv::Evidence::Asserted {
                        certificate_sha256,
                        status,
                        source,
                    } => wit::RevocationEvidence::Asserted(wit::AssertedRevocation {
                        certificate_sha256: certificate_sha256.clone(),
                        status: match status {
                            nv::revocation::Status::Good => wit::RevocationStatus::Good,
                            nv::revocation::Status::Revoked => wit::RevocationStatus::Revoked,
                            nv::revocation::Status::Unknown => wit::RevocationStatus::Unknown,
                        },
                        source: source.clone(),
                    }),
                })
                .collect(),
            max_signatures: r.max_signatures,
            plugin_evidence: r.plugin_evidence.iter().map(plugin_evidence).collect(),
        }
    }

    fn plugin_evidence(e: &nv::plugin::PluginEvidence) -> wit::PluginEvidence {
        use nv::plugin::PluginEvidence as E;
        match e {
            E::Metadata(m) => wit::PluginEvidence::Metadata(wit::PluginInfo {
                name: m.name.clone(),
                version: m.version.clone(),
                capabilities: m.capabilities.clone(),
            }),
            E::Missing { name, reason } => wit::PluginEvidence::Missing(wit::PluginMissing {
                name: name.clone(),
                reason: reason.clone(),
            }),
            E::Answer {
                name,
                request,
                response,
            } => wit::PluginEvidence::Answer(wit::PluginAnswer {
                name: name.clone(),
                request: request.clone(),
                response: response.clone(),
            }),
            E::Failed {
                name,
                request,
                reason,
            } => wit::PluginEvidence::Failed(wit::PluginFailure {
                name: name.clone(),
                request: request.clone(),
                reason: reason.clone(),
            }),
        }
    }

    pub fn plugin_need(n: wit::PluginNeed) -> nv::plugin::PluginNeed {
        match n {
            wit::PluginNeed::Metadata(name) => nv::plugin::PluginNeed::Metadata(name),
            wit::PluginNeed::VerifySignature(call) => nv::plugin::PluginNeed::VerifySignature {
                name: call.name,
                request: call.request,
            },
        }
    }

    pub fn need(n: wit::RevocationNeed) -> nv::revocation::Need {
        nv::revocation::Need {
            certificate_sha256: n.certificate_sha256,
            subject: n.subject,
            method: match n.method {
                wit::RevocationMethod::Ocsp => nv::revocation::Method::Ocsp,
                wit::RevocationMethod::Crl => nv::revocation::Method::Crl,
                wit::RevocationMethod::DeltaCrl => nv::revocation::Method::DeltaCrl,
            },
            urls: n.urls,
            ocsp_request: n.ocsp_request,
        }
    }

    fn level(l: wit::Level) -> nv::Level {
        match l {
            wit::Level::Strict => nv::Level::Strict,
            wit::Level::Permissive => nv::Level::Permissive,
            wit::Level::Audit => nv::Level::Audit,
            wit::Level::Skip => nv::Level::Skip,
        }
    }

    fn action(a: wit::Action) -> nv::Action {
        match a {
            wit::Action::Enforce => nv::Action::Enforce,
            wit::Action::Log => nv::Action::Log,
            wit::Action::Skip => nv::Action::Skip,
        }
    }

    fn check(c: wit::Check) -> nv::Check {
        match c {
            wit::Check::Integrity => nv::Check::Integrity,
            wit::Check::Authenticity => nv::Check::Authenticity,
            wit::Check::AuthenticTimestamp => nv::Check::AuthenticTimestamp,
            wit::Check::Expiry => nv::Check::Expiry,
            wit::Check::Revocation => nv::Check::Revocation,
        }
    }

    pub fn applied(p: wit::AppliedPolicy) -> o::AppliedPolicy {
        o::AppliedPolicy {
            statement: p.statement,
            level: level(p.level),
            actions: nv::Actions {
                integrity: action(p.actions.integrity),
                authenticity: action(p.actions.authenticity),
                authentic_timestamp: action(p.actions.authentic_timestamp),
                expiry: action(p.actions.expiry),
                revocation: action(p.actions.revocation),
            },
            verify_timestamp: match p.verify_timestamp {
                wit::VerifyTimestamp::Always => nv::VerifyTimestamp::Always,
                wit::VerifyTimestamp::AfterCertExpiry => nv::VerifyTimestamp::AfterCertExpiry,
            },
            trust_stores: p.trust_stores,
            trusted_identities: p.trusted_identities,
            registry_scopes: p.registry_scopes,
            global_policy: p.global_policy,
        }
    }

    pub fn failure(f: wit::Failure) -> o::Failure {
        use nv::FailureKind as K;
        o::Failure {
            kind: match f.kind {
                wit::FailureKind::TrustPolicy => K::TrustPolicy,
                wit::FailureKind::NoApplicablePolicy => K::NoApplicablePolicy,
                wit::FailureKind::TrustStore => K::TrustStore,
                wit::FailureKind::SignatureRetrieval => K::SignatureRetrieval,
                wit::FailureKind::Integrity => K::Integrity,
                wit::FailureKind::Authenticity => K::Authenticity,
                wit::FailureKind::AuthenticTimestamp => K::AuthenticTimestamp,
                wit::FailureKind::Expiry => K::Expiry,
                wit::FailureKind::Revocation => K::Revocation,
                wit::FailureKind::UserMetadata => K::UserMetadata,
                wit::FailureKind::InvalidInput => K::InvalidInput,
            },
            message: f.message,
        }
    }

    pub fn result(r: wit::ValidationResult) -> o::ValidationResult {
        o::ValidationResult {
            check: check(r.check),
            action: action(r.action),
            status: match r.status {
                wit::ValidationStatus::Passed => nv::ValidationStatus::Passed,
                wit::ValidationStatus::Failed => nv::ValidationStatus::Failed,
                wit::ValidationStatus::Skipped => nv::ValidationStatus::Skipped,
            },
            message: r.message,
            warnings: r.warnings,
        }
    }

    pub fn certificate(c: wit::CertificateSummary) -> o::CertificateSummary {
        o::CertificateSummary {
            subject: c.subject,
            issuer: c.issuer,
            sha256: c.sha256,
            not_before: instant_out(c.not_before),
            not_after: instant_out(c.not_after),
            is_ca: c.is_ca,
            key: c.key,
            ocsp_urls: c.ocsp_urls,
            crl_urls: c.crl_urls,
        }
    }

    pub fn envelope(e: wit::EnvelopeInfo) -> o::EnvelopeInfo {
        o::EnvelopeInfo {
            media_type: e.media_type,
            signature_algorithm: e.signature_algorithm,
            content_type: e.content_type,
            signing_scheme: e.signing_scheme,
            signing_time: e.signing_time.map(instant_out),
            authentic_signing_time: e.authentic_signing_time.map(instant_out),
            expiry: e.expiry.map(instant_out),
            extended_attributes: e.extended_attributes,
            signing_agent: e.signing_agent,
            timestamp: e.timestamp.map(|t| match t {
                wit::TimestampInfo::Range(r) => o::TimestampInfo::Range(o::TimestampRange {
                    lower: instant_out(r.lower),
                    upper: instant_out(r.upper),
                    certificates: r.certificates.into_iter().map(certificate).collect(),
                }),
                wit::TimestampInfo::Error(e) => o::TimestampInfo::Error(e),
            }),
            certificates: e.certificates.into_iter().map(certificate).collect(),
            payload: descriptor_out(e.payload),
            digest_algorithm: e.digest_algorithm,
        }
    }

    pub fn outcome(o: wit::Outcome) -> o::Outcome {
        o::Outcome {
            decision: match o.decision {
                wit::Decision::Verified => nv::Decision::Verified,
                wit::Decision::Skipped => nv::Decision::Skipped,
                wit::Decision::Failed => nv::Decision::Failed,
            },
            policy: o.policy.map(applied),
            failure: o.failure.map(failure),
            signatures: o
                .signatures
                .into_iter()
                .map(|s| o::SignatureOutcome {
                    index: s.index,
                    media_type: s.media_type,
                    manifest_digest: s.manifest_digest,
                    results: s.results.into_iter().map(result).collect(),
                    failure: s.failure.map(failure),
                    envelope: s.envelope.map(envelope),
                })
                .collect(),
            verified_index: o.verified_index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wasmtime refuses native code compiled for another engine — other CPU features, or,
    /// as here, other memory tunables — and the component is then compiled at start-up and
    /// decides as the precompiled one does.
    #[test]
    fn an_engine_the_build_time_code_does_not_fit_compiles_the_component_and_works() {
        let mut config = super::super::wasmtime_config::config();
        config.memory_guard_size(1 << 20);
        let fallback = ComponentEngine::with_config(COMPONENT, &config, false).expect("compiles");
        assert!(!fallback.precompiled, "code for another engine was loaded");
        let default = ComponentEngine::load_default().expect("loads");
        let envelope = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/conformance/cases/multi-sig-one-trusted/oci-layout/blobs/sha256/",
            "a54333638acfa773a6b25429ee409b558d39c6f3c45dd14f714d72452bc36481"
        ))
        .expect("the conformance envelope");
        let signature = nv::SignatureInput {
            media_type: "application/jose+json".to_owned(),
            envelope,
            manifest_digest: None,
            prior_failure: None,
        };
        let described = fallback.inspect(&signature).expect("runs");
        assert!(described.is_ok(), "{described:?}");
        assert_eq!(
            format!("{described:?}"),
            format!("{:?}", default.inspect(&signature).expect("runs"))
        );
    }

    #[test]
    fn the_embedded_component_runs_from_its_build_time_native_code() {
        let engine = ComponentEngine::load_default().expect("loads");
        assert!(
            engine.precompiled,
            "the precompiled component did not fit the runtime's engine (see debug log)"
        );
    }

    /// On x86-64 Linux the code is not copied: it runs from the binary's own read-only
    /// data (see `code_memory`). Every test that verifies through the embedded component
    /// runs it there.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn the_build_time_code_runs_where_the_binary_holds_it() {
        let engine = ComponentEngine::load_default().expect("loads");
        let image = engine.pre.instance_pre().component().image_range();
        assert_eq!(
            image.start,
            precompiled_bytes().as_ptr(),
            "the code was copied"
        );
    }
}
