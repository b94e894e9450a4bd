//! Process-wide counters and latencies, exposed by `serve` on `GET /metrics` in the
//! Prometheus text format. Recording is a few atomic operations, so the CLI records too
//! (registry latency is measured in the one place every registry request passes) and
//! simply never exposes them.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

/// Buckets for registry requests and verifications, in seconds (1 ms to 10 s).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics of this process.
pub struct Metrics {
    registry: Registry,
    /// `serve` requests by endpoint.
    pub requests: IntCounterVec,
    /// Images answered, by decision (`admitted`, `denied`).
    pub decisions: IntCounterVec,
    /// Verified-result lookups by outcome (`hit`, `miss`, `coalesced`: joined a
    /// verification of the same digest already running).
    pub cache: IntCounterVec,
    /// Verifications run (what a hit or a coalesced request saved).
    pub verifications: IntCounter,
    /// Registry requests, time to the response head, by method.
    pub registry_latency: HistogramVec,
    /// One image's verification (registry fetches and component calls), cache misses only.
    pub verification_latency: Histogram,
}

/// This process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        // Constant names, labels and buckets: these fail only if an edit here broke one,
        // which the unit test below catches.
        let defined = "constant metric definitions are valid";
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("hsm_notary_requests_total", "Requests served, by endpoint."),
            &["endpoint"],
        )
        .expect(defined);
        let decisions = IntCounterVec::new(
            Opts::new(
                "hsm_notary_decisions_total",
                "Images answered, by decision (admitted, denied).",
            ),
            &["decision"],
        )
        .expect(defined);
        let cache = IntCounterVec::new(
            Opts::new(
                "hsm_notary_cache_lookups_total",
                "Verified-result lookups: hit, miss, coalesced with a verification in flight, shared_hit / shared_tag_hit (from the replicas' shared cache), rejected (a shared entry that is not authentic or does not fit).",
            ),
            &["result"],
        )
        .expect(defined);
        let verifications = IntCounter::new(
            "hsm_notary_verifications_total",
            "Image verifications run (cache misses that did not join one in flight).",
        )
        .expect(defined);
        let registry_latency = HistogramVec::new(
            HistogramOpts::new(
                "hsm_notary_registry_request_duration_seconds",
                "Registry requests, time to the response head.",
            )
            .buckets(BUCKETS.to_vec()),
            &["method"],
        )
        .expect(defined);
        let verification_latency = Histogram::with_opts(
            HistogramOpts::new(
                "hsm_notary_verification_duration_seconds",
                "One image's verification: registry fetches and component calls.",
            )
            .buckets(BUCKETS.to_vec()),
        )
        .expect(defined);
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(decisions.clone()),
            Box::new(cache.clone()),
            Box::new(verifications.clone()),
            Box::new(registry_latency.clone()),
            Box::new(verification_latency.clone()),
        ] {
            registry.register(collector).expect(defined);
        }
        Self {
            registry,
            requests,
            decisions,
            cache,
            verifications,
            registry_latency,
            verification_latency,
        }
    }

    /// Everything, in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail for valid names.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Record one registry request.
    pub fn registry_request(&self, method: &str, took: Duration) {
        self.registry_latency
            .with_label_values(&[method])
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_defined_and_exposed_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.requests.with_label_values(&["metrics"]).inc();
        metrics.cache.with_label_values(&["hit"]).inc();
        metrics.registry_request("GET", Duration::from_millis(3));
        let text = metrics.render();
        for line in [
            "# TYPE hsm_notary_requests_total counter",
            "hsm_notary_requests_total{endpoint=\"metrics\"} 1",
            "hsm_notary_cache_lookups_total{result=\"hit\"} 1",
            "hsm_notary_verifications_total 0",
            "# TYPE hsm_notary_registry_request_duration_seconds histogram",
            "hsm_notary_registry_request_duration_seconds_bucket{method=\"GET\",le=\"0.005\"} 1",
            "hsm_notary_verification_duration_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
