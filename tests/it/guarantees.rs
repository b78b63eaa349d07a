//! The guarantees: safe retries (exactly one upstream write for concurrent duplicates), rate
//! limits, and an audit record for every outcome with sensitive arguments redacted.

use serde_json::{Value, json};

use crate::harness::{Gateway, call, ok, text};

#[tokio::test]
async fn concurrent_duplicates_reach_the_upstream_exactly_once() {
    let gw = Gateway::start().await;
    let api = gw.running.studio_api.as_ref().unwrap();
    let clients = futures_join(&gw, 8).await;
    let before = api.write_count();
    let args = json!({"name": "Ashtanga Mysore", "description": "Self-paced practice.", "idempotency_key": "dup-1"});
    let calls = clients
        .iter()
        .map(|c| call(c, "create_program", args.clone()));
    let results: Vec<Value> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| ok(r, "create_program"))
        .collect();
    assert_eq!(api.write_count() - before, 1, "upstream writes");
    let first = &results[0];
    assert!(first["id"].is_string());
    for r in &results {
        assert_eq!(r, first, "every duplicate gets the first answer");
    }
    // A later retry is answered from the store: still one write.
    let again = ok(
        call(&clients[0], "create_program", args.clone()).await,
        "create_program",
    );
    assert_eq!(&again, first);
    assert_eq!(api.write_count() - before, 1);
    // The same key with other arguments is refused, and nothing is sent.
    let other = call(
        &clients[0],
        "create_program",
        json!({"name": "Something else", "idempotency_key": "dup-1"}),
    )
    .await;
    assert_eq!(other.is_error, Some(true));
    assert!(
        text(&other).starts_with("This idempotency_key was already used for a different create_program call, so nothing was changed."),
        "{}",
        text(&other)
    );
    assert_eq!(api.write_count() - before, 1);
    // The key is scoped to the tool: the same key on another tool is a new call.
    ok(
        call(
            &clients[0],
            "create_instructor",
            json!({"name": "Ana Costa", "idempotency_key": "dup-1"}),
        )
        .await,
        "create_instructor",
    );
    assert_eq!(api.write_count() - before, 2);
    for c in clients {
        c.cancel().await.unwrap();
    }
    gw.stop().await;
}

async fn futures_join(gw: &Gateway, n: usize) -> Vec<crate::harness::Client> {
    let key = gw.pro_key();
    futures::future::join_all((0..n).map(|_| gw.client(&key))).await
}

#[tokio::test]
async fn the_rate_limit_refuses_past_the_burst_and_says_when_to_retry() {
    // Free: 8 calls a minute, a burst of 2.
    let gw = Gateway::start_with(|c| {
        c.rate_limit_per_minute = [("free".to_string(), 8), ("pro".to_string(), 600)].into();
    })
    .await;
    // Connecting (`initialize`) counts against the same budget as the calls.
    let free = gw.client(&gw.free_key()).await;
    ok(call(&free, "whoami", json!({})).await, "whoami");
    let limited = call(&free, "list_classes", json!({})).await;
    assert_eq!(limited.is_error, Some(true));
    let t = text(&limited);
    assert!(
        t.starts_with(
            "Rate limit reached: this connection may make 8 calls per minute. Try again in "
        ),
        "{t}"
    );
    assert!(t.ends_with("; nothing was changed."), "{t}");
    // The limit is per principal: the Pro key is unaffected.
    let pro = gw.client(&gw.pro_key()).await;
    ok(call(&pro, "whoami", json!({})).await, "whoami");
    let log = gw
        .running
        .app
        .audit
        .query(&flowgate::audit::Filter {
            outcome: Some("rate_limited".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].studio.as_deref(), Some("std_freespirit"));
    free.cancel().await.unwrap();
    pro.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn every_outcome_is_audited_with_sensitive_fields_redacted() {
    let gw = Gateway::start_with(|c| {
        c.rate_limit_per_minute = [("free".to_string(), 8), ("pro".to_string(), 100_000)].into();
    })
    .await;
    let pro = gw.client(&gw.pro_key()).await;
    // ok, with a sensitive field
    ok(
        call(
            &pro,
            "invite_member",
            json!({"email": "sam.rivera@example.com", "name": "Sam Rivera", "idempotency_key": "inv-1"}),
        )
        .await,
        "invite_member",
    );
    // invalid
    call(&pro, "create_coupon", json!({"code": "lower case"})).await;
    // upstream error (404)
    call(&pro, "get_class", json!({"class_id": "cls_nope"})).await;
    // denied (free tier)
    let free = gw.client(&gw.free_key()).await;
    call(&free, "create_program", json!({"name": "Reformer basics"})).await;
    // rate limited (free: a burst of 2, taken by initialize and the denied call)
    call(&free, "whoami", json!({})).await;
    // a rejected credential
    let resp = crate::harness::post_mcp(
        &gw.url(),
        "flow_sk_not_a_real_key",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(resp.status(), 401);

    let all = gw
        .running
        .app
        .audit
        .query(&flowgate::audit::Filter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let find = |outcome: &str, tool: Option<&str>| {
        all.iter()
            .find(|r| r.outcome == outcome && r.tool.as_deref() == tool)
            .unwrap_or_else(|| panic!("no {outcome} record for {tool:?}: {all:#?}"))
    };
    let invited = find("ok", Some("invite_member"));
    assert_eq!(invited.arguments.as_ref().unwrap()["email"], "[redacted]");
    assert_eq!(invited.arguments.as_ref().unwrap()["name"], "Sam Rivera");
    assert_eq!(invited.decision.as_deref(), Some("allow"));
    assert_eq!(invited.policies, ["tenant.own-studio"]);
    assert_eq!(invited.upstream_status, Some(200));
    assert_eq!(invited.principal_kind.as_deref(), Some("key"));
    assert_eq!(invited.studio.as_deref(), Some("std_lotus"));

    let invalid = find("invalid", Some("create_coupon"));
    assert!(
        invalid
            .message
            .as_deref()
            .unwrap()
            .contains("`code`: must match the pattern")
    );

    let upstream = find("upstream_error", Some("get_class"));
    assert_eq!(upstream.upstream_status, Some(404));

    let denied = find("denied", Some("create_program"));
    assert_eq!(denied.decision.as_deref(), Some("deny"));
    assert_eq!(denied.policies, ["tier.pro-gate", "tier.free-read-only"]);
    assert_eq!(denied.studio.as_deref(), Some("std_freespirit"));

    find("rate_limited", Some("whoami"));
    let bad = find("unauthenticated", None);
    assert_eq!(bad.message.as_deref(), Some("the token is not valid"));

    // list_audit_log shows this studio's records only.
    let page = ok(
        call(&pro, "list_audit_log", json!({"limit": 100})).await,
        "list_audit_log",
    );
    let rows = page["data"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["studio"] == "std_lotus"), "{page}");
    let filtered = ok(
        call(&pro, "list_audit_log", json!({"outcome": "upstream_error"})).await,
        "list_audit_log",
    );
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["data"][0]["tool"], "get_class");
    pro.cancel().await.unwrap();
    free.cancel().await.unwrap();
    gw.stop().await;
}

// === Arguments can never reshape the upstream call ===

/// Values that are, or decode to, a dot segment or nothing: each would change the path's shape.
const BAD_SEGMENTS: &[&str] = &["..", ".", "%2e%2e", ".%2E", "%2E.", "%2e", "%252e%252e", ""];

/// Unusual ids that are one segment each: accepted, and percent-encoded in place.
const ODD_SEGMENTS: &[&str] = &["a/../b", "..a", "a..", "%2f", "a b", "~x.y_z-1", "..%2fx"];

/// For every tool with a path parameter, in the whole catalog: the bad values are a field error
/// naming the parameter; the request builder refuses them too when validation is bypassed; odd
/// but valid ids keep the path's shape (the template's segment count, the id in its place).
#[test]
fn no_path_parameter_of_any_tool_can_change_the_upstream_path() {
    use flowgate::tool::{ArgsError, Registry, Target};
    let registry = Registry::new().unwrap();
    let mut checked = 0;
    for tool in registry.iter() {
        let Target::Upstream { path: template, .. } = tool.def.target else {
            continue;
        };
        let example: Value = serde_json::from_str(tool.def.example).unwrap();
        let template = format!("{}{template}", flowgate::tool::catalog::BASE_PATH);
        let segments: Vec<&str> = template.split('/').collect();
        for &param in tool.def.path_params {
            assert!(
                template.contains(&format!("{{{param}}}")),
                "{}: {param} is not in {template}",
                tool.def.name
            );
            let place = segments
                .iter()
                .position(|s| *s == format!("{{{param}}}"))
                .unwrap();
            for bad in BAD_SEGMENTS {
                let mut args = example["input"].clone();
                args[param] = json!(bad);
                match tool.prepare(Some(args.clone())) {
                    Err(ArgsError::Invalid(problems)) => assert!(
                        problems.iter().any(|p| p.path == param),
                        "{}: {param}={bad:?}: {problems:?}",
                        tool.def.name
                    ),
                    other => panic!("{}: {param}={bad:?} accepted: {other:?}", tool.def.name),
                }
                // Defence in depth: the decoder refuses it without validation too.
                let decoded = (tool.def.decode)(args);
                assert!(
                    decoded.is_err(),
                    "{}: {param}={bad:?} decoded to {:?}",
                    tool.def.name,
                    decoded.map(|d| d.upstream)
                );
            }
            for odd in ODD_SEGMENTS {
                let mut args = example["input"].clone();
                args[param] = json!(odd);
                let decoded = tool
                    .prepare(Some(args))
                    .unwrap_or_else(|e| panic!("{}: {param}={odd:?}: {e:?}", tool.def.name));
                let path = decoded.upstream.unwrap().path;
                let got: Vec<&str> = path.split('/').collect();
                assert_eq!(got.len(), segments.len(), "{}: {path}", tool.def.name);
                let encoded = got[place];
                assert_eq!(
                    percent_encoding::percent_decode_str(encoded).decode_utf8_lossy(),
                    *odd,
                    "{}: {path}",
                    tool.def.name
                );
                assert!(!encoded.contains('/'), "{path}");
                for (i, s) in segments.iter().enumerate() {
                    if !s.starts_with('{') {
                        assert_eq!(got[i], *s, "{}: {path}", tool.def.name);
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} path parameters in the catalog"
    );
}

/// A recording proxy in front of the real Management API: every request's method and path.
async fn recording_proxy(target: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (log, http) = (log.clone(), http.clone());
        async move {
            let (parts, body) = req.into_parts();
            let pq = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            log.lock()
                .unwrap()
                .push(format!("{} {}", parts.method, parts.uri.path()));
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut upstream = http.request(parts.method.clone(), format!("http://{target}{pq}"));
            for (name, value) in &parts.headers {
                if name != "host" && name != "content-length" {
                    upstream = upstream.header(name, value);
                }
            }
            let resp = upstream.body(body).send().await.unwrap();
            let status = resp.status();
            let bytes = resp.bytes().await.unwrap();
            (status, [("content-type", "application/json")], bytes)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

use std::sync::{Arc, Mutex};

#[tokio::test]
async fn a_dot_segment_id_is_a_field_error_audited_as_invalid_and_never_reaches_another_path() {
    let data = tempfile::tempdir().unwrap();
    let api = flowgate_studio_api::StudioApi::start(flowgate_studio_api::Config {
        data_dir: data.path().to_path_buf(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (url, seen) = recording_proxy(api.local_addr()).await;
    let token = api.service_token().to_string();
    let gw = Gateway::start_with(|c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some(token);
    })
    .await;
    let key = gw
        .key("std_lotus", &["schedule:read", "bookings:read"])
        .await;
    let client = gw.client(&key.secret).await;
    let schedule = ok(
        call(&client, "list_schedule", json!({"limit": 1})).await,
        "list_schedule",
    );
    let occurrence = schedule["data"][0]["id"].as_str().unwrap().to_string();
    seen.lock().unwrap().clear();

    for bad in ["..", "%2e%2e", ".", ".%2E"] {
        let result = call(
            &client,
            "list_class_bookings",
            json!({"occurrence_id": bad}),
        )
        .await;
        assert_eq!(result.is_error, Some(true), "{bad}");
        assert_eq!(
            text(&result),
            "The arguments for list_class_bookings are not valid, so nothing was changed. Fix this:\n- `occurrence_id`: must be an id, not empty, `.` or `..` (nor an encoding of them like %2e%2e)",
            "{bad}"
        );
    }
    // Refused before any upstream call: not /v1/bookings, not anything.
    assert_eq!(*seen.lock().unwrap(), Vec::<String>::new());
    let log = gw
        .running
        .app
        .audit
        .query(&flowgate::audit::Filter {
            tool: Some("list_class_bookings".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.len(), 4);
    for r in &log {
        assert_eq!(r.outcome, "invalid");
        assert_eq!(r.upstream_status, None);
        assert!(
            r.message
                .as_deref()
                .unwrap()
                .contains("`occurrence_id`: must be an id"),
            "{r:?}"
        );
    }

    // The intended path, and only it, for a real id.
    ok(
        call(
            &client,
            "list_class_bookings",
            json!({"occurrence_id": occurrence}),
        )
        .await,
        "list_class_bookings",
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [format!("GET /v1/schedule/{occurrence}/bookings")]
    );
    client.cancel().await.unwrap();
    gw.stop().await;
    api.shutdown().await;
}

#[tokio::test]
async fn a_retry_with_the_same_numbers_spelt_differently_is_replayed_not_refused() {
    let gw = Gateway::start().await;
    let api = gw.running.studio_api.as_ref().unwrap();
    let client = gw.client(&gw.pro_key()).await;
    let before = api.write_count();
    let first = ok(
        call(
            &client,
            "create_class",
            json!({"name": "Slow Flow", "duration_minutes": 60, "capacity": 12, "price_cents": 2000, "idempotency_key": "num-1"}),
        )
        .await,
        "create_class",
    );
    assert_eq!(api.write_count() - before, 1);
    // 60.0 and 6e1 for 60, other key order: the same call.
    for retry in [
        r#"{"idempotency_key": "num-1", "price_cents": 2000.0, "capacity": 12, "duration_minutes": 60.0, "name": "Slow Flow"}"#,
        r#"{"capacity": 1.2e1, "name": "Slow Flow", "duration_minutes": 6e1, "price_cents": 2e3, "idempotency_key": "num-1"}"#,
    ] {
        let args: Value = serde_json::from_str(retry).unwrap();
        let again = ok(call(&client, "create_class", args).await, "create_class");
        assert_eq!(again, first, "{retry}");
    }
    assert_eq!(api.write_count() - before, 1, "upstream writes");
    // The audit log tells a replay from a call that reached the Management API.
    let rows = gw
        .running
        .app
        .audit
        .query(&flowgate::audit::Filter {
            tool: Some("create_class".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let messages: Vec<Option<&str>> = rows.iter().rev().map(|r| r.message.as_deref()).collect();
    let replayed = Some("replayed from the idempotency store");
    assert_eq!(messages, [None, replayed, replayed]);
    // Strings stay exact: another spelling of the name is another call.
    let other = call(
        &client,
        "create_class",
        json!({"name": "Slow flow", "duration_minutes": 60, "capacity": 12, "price_cents": 2000, "idempotency_key": "num-1"}),
    )
    .await;
    assert!(
        text(&other)
            .starts_with("This idempotency_key was already used for a different create_class call"),
        "{}",
        text(&other)
    );
    assert_eq!(api.write_count() - before, 1);
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn unusual_but_valid_rfc3339_times_get_a_clear_field_error() {
    let gw = Gateway::start().await;
    let api = gw.running.studio_api.as_ref().unwrap();
    let client = gw.client(&gw.pro_key()).await;
    let before = api.write_count();
    let cases = [
        (
            "2026-06-30T23:59:60Z",
            "must be a time between 00:00:00 and 23:59:59 (a leap second :60 is not accepted), got \"2026-06-30T23:59:60Z\"",
        ),
        (
            "2027-04-30T23:59:59-23:59",
            "must have a UTC offset between -14:00 and +14:00, like 2026-12-01T19:00:00-05:00, got \"2027-04-30T23:59:59-23:59\"",
        ),
        (
            "2027-04-30T23:59:59+14:01",
            "must have a UTC offset between -14:00 and +14:00, like 2026-12-01T19:00:00-05:00, got \"2027-04-30T23:59:59+14:01\"",
        ),
    ];
    for (at, message) in cases {
        let result = call(
            &client,
            "create_coupon",
            json!({"code": "ODDTIME", "percent_off": 10, "expires_at": at}),
        )
        .await;
        assert_eq!(result.is_error, Some(true), "{at}");
        assert_eq!(
            text(&result),
            format!(
                "The arguments for create_coupon are not valid, so nothing was changed. Fix this:\n- `expires_at`: {message}"
            )
        );
    }
    assert_eq!(api.write_count() - before, 0);
    // The extremes that are in use are accepted.
    for (code, at) in [
        ("KIRIBATI", "2027-04-30T23:59:59+14:00"),
        ("BAKER", "2027-04-30T23:59:59-12:00"),
        ("LASTSEC", "2027-04-30T23:59:59.999Z"),
    ] {
        ok(
            call(
                &client,
                "create_coupon",
                json!({"code": code, "percent_off": 10, "expires_at": at}),
            )
            .await,
            "create_coupon",
        );
    }
    assert_eq!(api.write_count() - before, 3);
    client.cancel().await.unwrap();
    gw.stop().await;
}
