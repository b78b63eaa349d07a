//! Operating the gateway: `/metrics` moves with the calls it counts, `/readyz` says what is down,
//! and a gateway killed with SIGKILL under a load of writes loses no audit record and applies no
//! write twice when the clients retry with their idempotency keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{Gateway, call, connect, ok, text};

/// The value of one sample of a scrape: `name` with exactly these labels, in any order; 0 when
/// the series does not exist yet.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    for line in scrape.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, mut found): (&str, Vec<String>) = match series.split_once('{') {
            Some((m, rest)) => (
                m,
                rest.trim_end_matches('}')
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            ),
            None => (series, Vec::new()),
        };
        found.sort();
        if metric == name && found == want {
            return value.parse().unwrap();
        }
    }
    0.0
}

async fn scrape(base: &str) -> String {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    response.text().await.unwrap()
}

/// A raw `/mcp` request with this Authorization header; returns the status.
async fn post_mcp(url: &str, authorization: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn metrics_are_exported_and_move_with_the_calls_they_count() {
    let gw = Gateway::start_with(|c| {
        // A burst of two for the free studio: `initialize` and one call; the next is refused.
        c.rate_limit_per_minute.insert("free".into(), 8);
    })
    .await;
    let base = format!("http://{}", gw.running.addr);
    let before = scrape(&base).await;
    let pro = gw.client(&gw.pro_key()).await;
    ok(call(&pro, "whoami", json!({})).await, "whoami");
    ok(call(&pro, "list_classes", json!({})).await, "list_classes");
    ok(call(&pro, "list_classes", json!({})).await, "list_classes");
    let denied = call(
        &pro,
        "create_coupon",
        json!({"code": "BIG", "percent_off": 80}),
    )
    .await;
    assert_eq!(denied.is_error, Some(true), "{}", text(&denied));
    let missing = call(
        &pro,
        "update_program",
        json!({"program_id": "prg_nope", "name": "Nothing"}),
    )
    .await;
    assert_eq!(missing.is_error, Some(true), "{}", text(&missing));
    let unknown = pro
        .call_tool(CallToolRequestParams::new("no_such_tool".to_string()))
        .await;
    assert!(unknown.is_err());
    let free = gw.client(&gw.free_key()).await;
    ok(call(&free, "whoami", json!({})).await, "whoami");
    let limited = call(&free, "whoami", json!({})).await;
    assert!(
        text(&limited).starts_with("Rate limit reached"),
        "{}",
        text(&limited)
    );
    assert_eq!(post_mcp(&gw.url(), "Bearer flow_sk_not_a_key").await, 401);
    assert_eq!(post_mcp(&gw.url(), "Basic dXNlcjpwYXNz").await, 401);

    let after = scrape(&base).await;
    // Every metric is there once it has something to say.
    for name in [
        "flowgate_tool_calls",
        "flowgate_decision_duration_seconds",
        "flowgate_upstream_request_duration_seconds",
        "flowgate_upstream_responses",
        "flowgate_rate_limited",
        "flowgate_cache_requests",
        "flowgate_rejected_credentials",
    ] {
        assert!(
            after.contains(&format!("# HELP {name} ")),
            "{name}:\n{after}"
        );
    }

    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let calls = "flowgate_tool_calls_total";
    assert_eq!(delta(calls, &[("tool", "whoami"), ("outcome", "ok")]), 2.0);
    assert_eq!(
        delta(calls, &[("tool", "list_classes"), ("outcome", "ok")]),
        2.0
    );
    assert_eq!(
        delta(calls, &[("tool", "create_coupon"), ("outcome", "denied")]),
        1.0
    );
    assert_eq!(
        delta(
            calls,
            &[("tool", "update_program"), ("outcome", "upstream_error")]
        ),
        1.0
    );
    assert_eq!(
        delta(calls, &[("tool", "unknown"), ("outcome", "invalid")]),
        1.0
    );
    assert_eq!(
        delta(calls, &[("tool", "whoami"), ("outcome", "rate_limited")]),
        1.0
    );
    // Every call that reached the policy: whoami twice, list_classes twice, the coupon, the program.
    assert_eq!(delta("flowgate_decision_duration_seconds_count", &[]), 6.0);
    // Two studio look-ups (one per studio), two listings, the 404.
    let upstream = "flowgate_upstream_responses_total";
    assert_eq!(delta(upstream, &[("status", "2xx")]), 4.0);
    assert_eq!(delta(upstream, &[("status", "4xx")]), 1.0);
    assert_eq!(
        delta("flowgate_upstream_request_duration_seconds_count", &[]),
        5.0
    );
    assert_eq!(
        delta("flowgate_rate_limited_total", &[("tier", "free")]),
        1.0
    );
    let cache = "flowgate_cache_requests_total";
    assert_eq!(
        delta(cache, &[("cache", "studios"), ("result", "miss")]),
        2.0
    );
    assert_eq!(
        delta(cache, &[("cache", "studios"), ("result", "hit")]),
        8.0
    );
    let rejected = "flowgate_rejected_credentials_total";
    assert_eq!(delta(rejected, &[("reason", "unknown")]), 1.0);
    assert_eq!(delta(rejected, &[("reason", "malformed")]), 1.0);
    // Each stage of a call is timed: 8 calls were admitted or limited (the unknown tool too),
    // 6 reached validation and a decision, 5 upstream requests (two of them the studio's plan),
    // 8 audit records; every request that presented a credential was authenticated.
    let stage = |s: &str| delta("flowgate_stage_duration_seconds_count", &[("stage", s)]);
    assert_eq!(stage("rate_limit"), 8.0);
    assert_eq!(stage("validate"), 6.0);
    assert_eq!(stage("authorize"), 6.0);
    assert_eq!(stage("idempotency"), 0.0);
    assert_eq!(stage("upstream"), 5.0);
    assert_eq!(stage("audit"), 8.0);
    assert!(stage("authenticate") >= 10.0, "{}", stage("authenticate"));

    pro.cancel().await.unwrap();
    free.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn readyz_reports_the_store_and_the_upstream() {
    let gw = Gateway::start().await;
    let base = format!("http://{}", gw.running.addr);
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"store": "ok", "upstream": "ok"}));
    gw.stop().await;

    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = Gateway::start_with(|c| {
        c.upstream_url = Some(format!("http://127.0.0.1:{port}/v1"));
        c.upstream_token = Some("t".into());
        c.upstream_connect_timeout_ms = 500;
    })
    .await;
    let base = format!("http://{}", gw.running.addr);
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the process is up");
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    // Probes come by address (no Host check), so the answer says what is down, not where.
    assert_eq!(body["upstream"], "unreachable");
    gw.stop().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_flowgate");

/// `flowgate serve` as a separate process, its banner read up to a line containing `until`.
struct Served {
    child: tokio::process::Child,
    url: String,
}

async fn serve(data_dir: &Path, until: &str) -> Served {
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("FLOWGATE_LISTEN")
        // A claim left pending by the killed process is taken over after 2 × 2 s + 5 s.
        .env("FLOWGATE_UPSTREAM_TIMEOUT_MS", "2000")
        .env("FLOWGATE_RATE_LIMIT_PER_MINUTE", "free=100000,pro=100000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(u) = line.strip_prefix("flowgate is serving MCP at ") {
                url = Some(u.trim().to_string());
            }
            if line.contains(until) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("serve printed its banner");
    // Keep draining stdout so the process never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served {
        child,
        url: url.expect("the banner names the MCP URL"),
    }
}

/// Per idempotency key: the call's arguments and its answer, if one arrived.
type Calls = BTreeMap<String, (Value, Option<CallToolResult>)>;

fn program_args(worker: usize, i: usize) -> (String, Value) {
    let key = format!("crash-{worker}-{i}");
    let args = json!({
        "name": format!("Crash {worker}-{i}"),
        "description": "Written during the crash test.",
        "idempotency_key": key,
    });
    (key, args)
}

async fn create(client: &crate::harness::Client, args: &Value) -> Option<CallToolResult> {
    let params = CallToolRequestParams::new("create_program".to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    match tokio::time::timeout(Duration::from_secs(10), client.call_tool(params)).await {
        Ok(Ok(result)) => Some(result),
        _ => None,
    }
}

/// Every program of the demo Pro studio, all pages.
async fn all_programs(client: &crate::harness::Client) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut args = json!({"limit": 100});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let page = ok(call(client, "list_programs", args).await, "list_programs");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("list_programs did not end within 100 pages");
}

#[tokio::test]
async fn a_gateway_killed_under_load_loses_no_audit_record_and_applies_no_write_twice() {
    const WORKERS: usize = 6;
    const PER_WORKER: usize = 50;
    const KILL_AFTER_ANSWERS: usize = 60;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), "--method tools/list").await;
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo-keys.json")).unwrap())
            .unwrap();
    let pro = keys["pro"].as_str().unwrap().to_string();

    // The load: each worker creates programs one after another, each with its own key, until the
    // gateway dies under it.
    let answered = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Calls>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let client = connect(&served.url, &pro).await;
        let (answered, killed, log) = (answered.clone(), killed.clone(), log.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..PER_WORKER {
                if killed.load(Ordering::SeqCst) {
                    break;
                }
                let (key, args) = program_args(w, i);
                log.lock()
                    .unwrap()
                    .insert(key.clone(), (args.clone(), None));
                let Some(result) = create(&client, &args).await else {
                    break; // the gateway is gone: this call's fate is unknown
                };
                log.lock().unwrap().get_mut(&key).unwrap().1 = Some(result);
                answered.fetch_add(1, Ordering::SeqCst);
            }
            drop(client);
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < KILL_AFTER_ANSWERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    killed.store(true, Ordering::SeqCst);
    served.child.start_kill().unwrap(); // SIGKILL
    served.child.wait().await.unwrap();
    for w in workers {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("every worker stops within the bound")
            .unwrap();
    }
    let log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    let made = log.len();
    let before_kill = log.values().filter(|(_, r)| r.is_some()).count();
    for (key, (_, result)) in &log {
        if let Some(r) = result {
            assert_ne!(r.is_error, Some(true), "{key}: {}", text(r));
        }
    }

    // Restart on the same data directory and retry every call whose answer never came.
    let mut served = serve(dir.path(), "demo keys are in").await;
    let client = connect(&served.url, &pro).await;
    let mut retried: BTreeMap<String, CallToolResult> = BTreeMap::new();
    let retry_deadline = Instant::now() + Duration::from_secs(60);
    for (key, (args, _)) in log.iter().filter(|(_, (_, r))| r.is_none()) {
        loop {
            let result = create(&client, args).await;
            // A claim the killed process left pending is refused as "still in progress" until it
            // is stale; retry it with the same key, as the message says.
            let again = match &result {
                None => true,
                Some(r) => text(r).contains("still in progress"),
            };
            if !again || Instant::now() > retry_deadline {
                if let Some(r) = result {
                    retried.insert(key.clone(), r);
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let unanswered = made - before_kill;
    let retried_ok = retried
        .values()
        .filter(|r| r.is_error != Some(true))
        .count();

    // Count the rows upstream: one per key at most, and exactly one per answered success.
    let programs = all_programs(&client).await;
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &programs {
        let name = p["name"].as_str().unwrap_or_default();
        if let Some(suffix) = name.strip_prefix("Crash ") {
            rows.entry(format!("crash-{suffix}"))
                .or_default()
                .push(p["id"].as_str().unwrap_or_default().to_string());
        }
    }
    let retry_errors: Vec<String> = retried
        .iter()
        .filter(|(_, r)| r.is_error == Some(true))
        .map(|(k, r)| {
            let applied = if rows.contains_key(k) {
                "applied"
            } else {
                "not applied"
            };
            format!("{k} ({applied}): {}", text(r))
        })
        .collect();
    // A refusal that says nothing was changed must be true: no row for its key.
    for (key, r) in &retried {
        if r.is_error == Some(true) && text(r).contains("Nothing was changed") {
            assert!(
                !rows.contains_key(key),
                "{key} was applied, yet: {}",
                text(r)
            );
        }
    }
    client.cancel().await.unwrap();
    served.child.start_kill().unwrap();
    served.child.wait().await.unwrap();

    // The audit log, read with the CLI as an operator would.
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "audit",
            "--tool",
            "create_program",
            "--limit",
            "100000",
            "--json",
        ])
        .env_remove("FLOWGATE_LISTEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let audited = |key: &str, outcome: &str| {
        records
            .iter()
            .any(|r| r["arguments"]["idempotency_key"] == key && r["outcome"] == outcome)
    };

    let mut answers_with_record = 0;
    let mut missing_records = Vec::new();
    let answers = log
        .iter()
        .filter_map(|(k, (_, r))| r.as_ref().map(|r| (k, r)))
        .chain(retried.iter());
    for (key, result) in answers {
        let outcome = if result.is_error == Some(true) {
            "upstream_error"
        } else {
            "ok"
        };
        if audited(key, outcome) {
            answers_with_record += 1;
        } else {
            missing_records.push(key.clone());
        }
        if result.is_error != Some(true) {
            let id = result.structured_content.as_ref().unwrap()["id"].clone();
            assert_eq!(
                rows.get(key).map(|ids| ids.as_slice()),
                Some([id.as_str().unwrap().to_string()].as_slice()),
                "{key}: the answer's program is the one row written for it"
            );
        }
    }
    let duplicates: Vec<(&String, &Vec<String>)> =
        rows.iter().filter(|(_, ids)| ids.len() > 1).collect();
    let unknown_rows: BTreeSet<&String> = rows.keys().filter(|k| !log.contains_key(*k)).collect();

    println!(
        "crash test: {made} calls made by {WORKERS} clients, {before_kill} answered before SIGKILL, \
         {unanswered} retried after restart ({retried_ok} succeeded, {} refused: {retry_errors:?}); \
         {} audit records for create_program, {answers_with_record} of {} answers have theirs; \
         {} programs written for {} keys, {} duplicates; {:.1} s",
        retry_errors.len(),
        records.len(),
        before_kill + retried.len(),
        rows.values().map(Vec::len).sum::<usize>(),
        rows.len(),
        duplicates.len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        before_kill >= KILL_AFTER_ANSWERS,
        "the kill came under load"
    );
    assert!(
        missing_records.is_empty(),
        "answers without a record: {missing_records:?}"
    );
    assert!(duplicates.is_empty(), "applied twice: {duplicates:?}");
    assert!(
        unknown_rows.is_empty(),
        "rows no call made: {unknown_rows:?}"
    );
    assert_eq!(
        retried.len(),
        unanswered,
        "every unanswered call was retried to an answer"
    );
}

/// Traces go to an OTLP/HTTP collector (a small one on loopback here): one span per call with a
/// child per stage, the caller's trace continued, the upstream request carrying the trace
/// context, and neither arguments nor secrets in anything exported.
#[tokio::test]
async fn call_traces_reach_an_otlp_collector_with_their_stages_and_no_arguments() {
    // The collector.
    let exported: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = exported.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.0);
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    // The reference API, behind a forwarder that records the trace context it is sent.
    let dir = tempfile::tempdir().unwrap();
    let api = flowgate_studio_api::StudioApi::start(flowgate_studio_api::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .await
    .unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (seen_by_forwarder, api_base) = (
        seen.clone(),
        api.base_url().trim_end_matches("/v1").to_string(),
    );
    let forwarder = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (seen, base) = (seen_by_forwarder.clone(), api_base.clone());
        async move {
            let (parts, body) = req.into_parts();
            if let Some(tp) = parts.headers.get("traceparent") {
                seen.lock().unwrap().push(tp.to_str().unwrap().to_string());
            }
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut out = reqwest::Client::new()
                .request(parts.method, format!("{base}{}", parts.uri))
                .body(body);
            for (k, v) in &parts.headers {
                if k != "host" && k != "content-length" {
                    out = out.header(k, v);
                }
            }
            let r = out.send().await.unwrap();
            let status = r.status().as_u16();
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                r.bytes().await.unwrap(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, forwarder).await });

    let token = api.service_token().to_string();
    let gw = Gateway::start_with(|c| {
        c.upstream_url = Some(upstream);
        c.upstream_token = Some(token);
        c.otel_endpoint = Some(collector_url);
        c.mcp_mode = flowgate::config::McpMode::Stateless;
    })
    .await;
    let key = gw
        .key(flowgate_studio_api::DEMO_PRO_STUDIO, &["classes:write"])
        .await;
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let answer: Value = reqwest::Client::new()
        .post(gw.url())
        .bearer_auth(&key.secret)
        .header("Accept", "application/json, text/event-stream")
        .header("traceparent", caller)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "create_class",
            "arguments": {"name": "MARKER-ARGUMENT-7731", "duration_minutes": 30, "capacity": 5, "price_cents": 900,
                          "idempotency_key": "trace-1"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["result"]["structuredContent"]["name"], "MARKER-ARGUMENT-7731",
        "{answer}"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let spans: Vec<Value> = loop {
        let spans: Vec<Value> = exported
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| {
                b["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        if spans.iter().any(|s| s["name"] == "tools/call create_class") {
            break spans;
        }
        assert!(std::time::Instant::now() < deadline, "no spans exported");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let everything = serde_json::to_string(&*exported.lock().unwrap()).unwrap();
    assert!(
        !everything.contains("MARKER-ARGUMENT-7731"),
        "an argument was exported"
    );
    assert!(!everything.contains(&key.secret), "a secret was exported");

    let root = spans
        .iter()
        .find(|s| s["name"] == "tools/call create_class")
        .unwrap();
    assert_eq!(
        root["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace continues"
    );
    assert_eq!(root["parentSpanId"], "00f067aa0ba902b7");
    let attrs: std::collections::BTreeMap<String, String> = root["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["key"].as_str().unwrap().to_string(),
                a["value"]["stringValue"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(attrs["tool"], "create_class");
    assert_eq!(attrs["studio"], flowgate_studio_api::DEMO_PRO_STUDIO);
    assert_eq!(attrs["principal"], key.info.id);
    assert_eq!(attrs["outcome"], "ok");
    let mut stages: Vec<&str> = spans
        .iter()
        .filter(|s| s["parentSpanId"] == root["spanId"])
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    stages.sort_unstable();
    assert_eq!(
        stages,
        [
            "audit",
            "authenticate",
            "authorize",
            "idempotency",
            "rate_limit",
            "upstream",
            "validate"
        ]
    );
    // The upstream request carried the trace, naming the upstream span as its parent.
    let upstream_span = spans.iter().find(|s| s["name"] == "upstream").unwrap();
    let expected = format!(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
        upstream_span["spanId"].as_str().unwrap()
    );
    assert!(
        seen.lock().unwrap().contains(&expected),
        "{:?}",
        seen.lock().unwrap()
    );
    gw.stop().await;
    api.shutdown().await;
}
