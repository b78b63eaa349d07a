//! OpenTelemetry traces of tool calls, exported over OTLP/HTTP (JSON encoding) when
//! `otel_endpoint` is set; nothing is recorded otherwise.
//!
//! A `tools/call` is one span (`tools/call <tool>`, kind server) with a child span per stage:
//! authenticate, rate_limit, validate, authorize, idempotency, upstream (kind client), audit.
//! Attributes are `tool`, `studio`, `principal`, `outcome` and the request id: never a
//! secret, a token or an argument. An incoming W3C `traceparent` is continued, and the upstream
//! request carries one naming its own span, so the Management API's spans join the trace.
//!
//! Finished calls are queued (at most [`QUEUE`]; past that they are dropped, never waited
//! for) and a background task posts them in batches to `{otel_endpoint}/v1/traces`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::metrics::Stage;

/// Finished calls waiting to be exported.
pub const QUEUE: usize = 4096;
/// Calls per export request at most.
const BATCH: usize = 256;

/// A W3C trace context (`traceparent`), parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; anything else (or all-zero ids) is ignored.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || flags.len() != 2 {
            return None;
        }
        let trace_id: [u8; 16] = hex_decode(trace)?;
        let span_id: [u8; 8] = hex_decode(span)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, span_id })
    }

    /// The header value for a request made from `span`.
    pub fn header(trace_id: &[u8; 16], span: &[u8; 8]) -> String {
        format!("00-{}-{}-01", hex(trace_id), hex(span))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// When and how long the HTTP layer took to authenticate the request a call came in.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub authenticated_at: SystemTime,
    pub authenticate_took: Duration,
    /// The caller's `traceparent`, if it sent a valid one.
    pub parent: Option<TraceParent>,
}

struct Span {
    id: [u8; 8],
    stage: Stage,
    start: u64,
    end: u64,
}

/// The trace of one call, recorded as it runs.
pub struct Trace {
    trace_id: [u8; 16],
    root: [u8; 8],
    parent: Option<[u8; 8]>,
    /// Wall clock and monotonic clock at the call's start: stage times are offsets.
    wall: u64,
    start: Instant,
    spans: Vec<Span>,
    /// The upstream span's id, chosen before the request is sent (for its `traceparent`).
    upstream: [u8; 8],
}

impl Trace {
    fn begin(arrival: Option<&Arrival>) -> Self {
        let parent = arrival.and_then(|a| a.parent);
        let mut trace = Self {
            trace_id: parent.map_or_else(rand::random, |p| p.trace_id),
            root: rand::random(),
            parent: parent.map(|p| p.span_id),
            wall: unix_nanos(SystemTime::now()),
            start: Instant::now(),
            spans: Vec::with_capacity(8),
            upstream: rand::random(),
        };
        if let Some(a) = arrival {
            let start = unix_nanos(a.authenticated_at);
            let end = start + u64::try_from(a.authenticate_took.as_nanos()).unwrap_or(0);
            trace.wall = trace.wall.min(start);
            trace.spans.push(Span {
                id: rand::random(),
                stage: Stage::Authenticate,
                start,
                end,
            });
        }
        trace
    }

    fn at(&self, t: Instant) -> u64 {
        self.wall + u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(0)
    }

    /// Records one stage that ran from `started` until now.
    pub fn stage(&mut self, stage: Stage, started: Instant) {
        let id = if stage == Stage::Upstream {
            self.upstream
        } else {
            rand::random()
        };
        let span = Span {
            id,
            stage,
            start: self.at(started),
            end: self.at(Instant::now()),
        };
        self.spans.push(span);
    }

    /// The `traceparent` to send with the upstream request.
    pub fn upstream_parent(&self) -> String {
        TraceParent::header(&self.trace_id, &self.upstream)
    }

    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }
}

/// What a finished call is known by.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub tool: &'a str,
    pub studio: &'a str,
    pub principal: &'a str,
    pub outcome: &'a str,
    pub request_id: &'a str,
}

/// The exporter, when tracing is on.
#[derive(Debug, Clone)]
pub struct Telemetry {
    queue: Option<mpsc::Sender<Value>>,
}

impl Telemetry {
    /// Off.
    pub fn off() -> Self {
        Self { queue: None }
    }

    /// Exports to `{endpoint}/v1/traces` from a background task (started here, inside the
    /// runtime).
    pub fn start(endpoint: &str, service: &str, http: reqwest::Client) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        tokio::spawn(export(rx, url, service.to_string(), http));
        Self { queue: Some(tx) }
    }

    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// A trace for a call about to start, if tracing is on.
    pub fn begin(&self, arrival: Option<&Arrival>) -> Option<Trace> {
        self.queue.as_ref().map(|_| Trace::begin(arrival))
    }

    /// Queues a finished call's spans (dropped if the queue is full).
    pub fn finish(&self, trace: &Trace, call: &Finished<'_>) {
        let Some(queue) = &self.queue else { return };
        let end = trace.at(Instant::now());
        let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
        let ok = call.outcome == "ok";
        let mut spans = Vec::with_capacity(trace.spans.len() + 1);
        spans.push(json!({
            "traceId": hex(&trace.trace_id),
            "spanId": hex(&trace.root),
            "parentSpanId": trace.parent.map(|p| hex(&p)).unwrap_or_default(),
            "name": format!("tools/call {}", call.tool),
            "kind": 2,
            "startTimeUnixNano": trace.wall.to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": [
                attr("tool", call.tool),
                attr("studio", call.studio),
                attr("principal", call.principal),
                attr("outcome", call.outcome),
                attr("request_id", call.request_id),
            ],
            "status": {"code": if ok { 1 } else { 2 }},
        }));
        for s in &trace.spans {
            spans.push(json!({
                "traceId": hex(&trace.trace_id),
                "spanId": hex(&s.id),
                "parentSpanId": hex(&trace.root),
                "name": s.stage.as_str(),
                "kind": if s.stage == Stage::Upstream { 3 } else { 1 },
                "startTimeUnixNano": s.start.to_string(),
                "endTimeUnixNano": s.end.max(s.start).to_string(),
            }));
        }
        if queue.try_send(Value::Array(spans)).is_err() {
            tracing::debug!("the trace export queue is full; a call's spans were dropped");
        }
    }
}

/// Posts queued calls in batches: whatever is queued, at most every second.
async fn export(
    mut rx: mpsc::Receiver<Value>,
    url: String,
    service: String,
    http: reqwest::Client,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let spans: Vec<Value> = batch
            .drain(..)
            .flat_map(|call| match call {
                Value::Array(spans) => spans,
                other => vec![other],
            })
            .collect();
        let body = json!({"resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": service}},
                {"key": "service.version", "value": {"stringValue": env!("CARGO_PKG_VERSION")}},
            ]},
            "scopeSpans": [{"scope": {"name": "flowgate"}, "spans": spans}],
        }]});
        match http
            .post(&url)
            .timeout(Duration::from_secs(5))
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "the trace collector refused spans"),
            Err(e) => tracing::warn!(error = %e, "cannot reach the trace collector"),
        }
        if spans_sent_was_full(&rx) {
            continue;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// More calls are already queued than one batch takes: export again at once.
fn spans_sent_was_full(rx: &mpsc::Receiver<Value>) -> bool {
    rx.len() >= BATCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly_and_written_back() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            TraceParent::header(&tp.trace_id, &tp.span_id),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7ff-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}
