//! The gateway's Prometheus metrics, registered once per [`crate::app::App`] and served as text
//! at `/metrics`. Labels take values from small, fixed sets (tool names from the catalog, outcomes,
//! tiers, status classes), never from what a caller sends.

use std::time::Duration;

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::upstream::UpstreamError;

type Labels1 = [(&'static str, &'static str); 1];

/// The stages of a call, as timed in `flowgate_stage_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The bearer credential checked (remembered, or looked up in the store).
    Authenticate,
    /// The studio's plan learnt and the rate limit checked.
    RateLimit,
    /// The arguments checked against the tool's schema and decoded.
    Validate,
    /// The Cedar decision.
    Authorize,
    /// The idempotency claim of a write with a key.
    Idempotency,
    /// The Management API call.
    Upstream,
    /// The audit record committed.
    Audit,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Authenticate,
        Stage::RateLimit,
        Stage::Validate,
        Stage::Authorize,
        Stage::Idempotency,
        Stage::Upstream,
        Stage::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Authenticate => "authenticate",
            Stage::RateLimit => "rate_limit",
            Stage::Validate => "validate",
            Stage::Authorize => "authorize",
            Stage::Idempotency => "idempotency",
            Stage::Upstream => "upstream",
            Stage::Audit => "audit",
        }
    }
}

fn stage_histogram() -> Histogram {
    // 1 µs .. ~16 s: from a remembered credential to the longest upstream timeout.
    Histogram::new(exponential_buckets(0.000_001, 4.0, 13))
}
type Labels2 = [(&'static str, &'static str); 2];

/// Every metric the gateway exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    calls: Family<Labels2, Counter>,
    decision: Histogram,
    upstream_latency: Histogram,
    upstream_responses: Family<Labels1, Counter>,
    rate_limited: Family<Labels1, Counter>,
    cache: Family<Labels2, Counter>,
    rejected_credentials: Family<Labels1, Counter>,
    /// One histogram per stage, in [`Stage::ALL`] order, created at start-up so that timing a
    /// stage on the call path is an index, not a label look-up.
    stages: [Histogram; 7],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("flowgate");
        let calls = Family::default();
        registry.register(
            "tool_calls",
            "tools/call requests by tool and outcome (unknown tools count as tool=\"unknown\")",
            calls.clone(),
        );
        // 10 µs .. ~160 ms: a Cedar decision takes microseconds.
        let decision = Histogram::new(exponential_buckets(0.000_01, 4.0, 9));
        registry.register(
            "decision_duration_seconds",
            "Time taken by one Cedar authorization decision",
            decision.clone(),
        );
        // 1 ms .. ~33 s: covers the longest upstream timeout.
        let upstream_latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "upstream_request_duration_seconds",
            "Time taken by one Management API request, answered or not",
            upstream_latency.clone(),
        );
        let upstream_responses = Family::default();
        registry.register(
            "upstream_responses",
            "Management API requests by result: status class (2xx, 3xx, 4xx, 5xx), timeout, unreachable or bad_response",
            upstream_responses.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Calls refused by the rate limit, by studio tier",
            rate_limited.clone(),
        );
        let cache = Family::default();
        registry.register(
            "cache_requests",
            "Cache look-ups by cache and result (hit or miss)",
            cache.clone(),
        );
        let rejected_credentials = Family::default();
        registry.register(
            "rejected_credentials",
            "Requests to /mcp refused for a presented credential, by reason (malformed, unknown, revoked, expired)",
            rejected_credentials.clone(),
        );
        let family: Family<Labels1, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(stage_histogram as fn() -> Histogram);
        registry.register(
            "stage_duration_seconds",
            "Time taken by each stage of a call: authenticate, rate_limit, validate, authorize, idempotency, upstream, audit",
            family.clone(),
        );
        // A family's series share their metric with the family: observing the clone is
        // observing the series.
        let stages = Stage::ALL.map(|s| family.get_or_create(&[("stage", s.as_str())]).clone());
        Self {
            registry,
            stages,
            calls,
            decision,
            upstream_latency,
            upstream_responses,
            rate_limited,
            cache,
            rejected_credentials,
        }
    }

    /// One finished `tools/call`.
    pub fn call(&self, tool: &'static str, outcome: &'static str) {
        self.calls
            .get_or_create(&[("tool", tool), ("outcome", outcome)])
            .inc();
    }

    /// One stage of one call.
    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages[stage as usize].observe(took.as_secs_f64());
    }

    pub fn decision(&self, took: Duration) {
        self.decision.observe(took.as_secs_f64());
    }

    /// One upstream request and how it ended.
    pub fn upstream<T>(&self, took: Duration, result: &Result<T, UpstreamError>) {
        self.upstream_latency.observe(took.as_secs_f64());
        let class = match result {
            Ok(_) => "2xx",
            Err(e) => match e.status() {
                Some(s) if s < 300 => "2xx",
                Some(s) if s < 400 => "3xx",
                Some(s) if s < 500 => "4xx",
                Some(_) => "5xx",
                None => match e {
                    UpstreamError::Timeout(_) => "timeout",
                    UpstreamError::Unreachable(_) => "unreachable",
                    UpstreamError::Certificate(_) => "tls",
                    UpstreamError::TooLarge { .. } => "too_large",
                    _ => "bad_response",
                },
            },
        };
        self.upstream_responses
            .get_or_create(&[("status", class)])
            .inc();
    }

    pub fn rate_limited(&self, tier: &str) {
        let tier = match tier {
            "free" => "free",
            "pro" => "pro",
            _ => "other",
        };
        self.rate_limited.get_or_create(&[("tier", tier)]).inc();
    }

    pub fn cache(&self, cache: &'static str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .get_or_create(&[("cache", cache), ("result", result)])
            .inc();
    }

    pub fn rejected_credential(&self, reason: &'static str) {
        self.rejected_credentials
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// The text exposition (OpenMetrics, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}
