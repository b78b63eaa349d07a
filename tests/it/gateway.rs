//! The gateway end to end: real server, real embedded Management API, rmcp's MCP client.

use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::harness::{Gateway, call, connect, ok, text};

#[tokio::test]
async fn whoami_answers_from_the_gateway() {
    let gw = Gateway::start().await;
    let client = gw.client(&gw.pro_key()).await;
    let me = ok(call(&client, "whoami", json!({})).await, "whoami");
    assert_eq!(me["studio"]["id"], "std_lotus");
    assert_eq!(me["studio"]["tier"], "pro");
    assert_eq!(me["studio"]["name"], "Lotus Flow Yoga");
    assert_eq!(me["principal"]["kind"], "key");
    assert!(me["scopes"].as_array().unwrap().len() >= 27);
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn tools_list_is_filtered_by_scope_and_notes_the_pro_plan() {
    let gw = Gateway::start_with(|c| c.tools_page_size = 10).await;
    // The Pro key sees every tool, paginated, in a deterministic order.
    let client = gw.client(&gw.pro_key()).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names.len(), 51);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let create = tools.iter().find(|t| t.name == "create_class").unwrap();
    let ann = create.annotations.as_ref().unwrap();
    assert_eq!(ann.read_only_hint, Some(false));
    assert!(
        !create
            .description
            .as_deref()
            .unwrap()
            .ends_with("(Pro plan)")
    );
    let delete = tools.iter().find(|t| t.name == "delete_class").unwrap();
    assert_eq!(
        delete.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
    client.cancel().await.unwrap();

    // The free studio sees Pro tools with the plan noted.
    let client = gw.client(&gw.free_key()).await;
    let tools = client.list_all_tools().await.unwrap();
    let create = tools.iter().find(|t| t.name == "create_class").unwrap();
    assert!(
        create
            .description
            .as_deref()
            .unwrap()
            .ends_with(" (Pro plan)")
    );
    let list = tools.iter().find(|t| t.name == "list_classes").unwrap();
    assert!(!list.description.as_deref().unwrap().contains("Pro plan"));
    client.cancel().await.unwrap();

    // A key with two scopes sees their tools and whoami only.
    let key = gw
        .key("std_lotus", &["classes:read", "coupons:write"])
        .await;
    let client = gw.client(&key.secret).await;
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "archive_coupon",
            "create_coupon",
            "get_class",
            "list_classes",
            "whoami"
        ]
    );
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn a_free_studio_gets_the_pro_message_and_nothing_changes() {
    let gw = Gateway::start().await;
    let api = gw.running.studio_api.as_ref().unwrap();
    let before = api.write_count();
    let client = gw.client(&gw.free_key()).await;
    let result = call(
        &client,
        "create_class",
        json!({"name": "Sunrise flow", "duration_minutes": 60, "capacity": 12, "price_cents": 1500}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        text(&result),
        "create_class needs the Pro plan; this studio is on Free. Nothing was changed."
    );
    assert_eq!(api.write_count(), before, "the upstream saw a write");
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn a_missing_scope_is_named_and_the_upstream_sees_no_call() {
    let gw = Gateway::start().await;
    let key = gw.key("std_lotus", &["classes:read"]).await;
    let api = gw.running.studio_api.as_ref().unwrap();
    let before = api.write_count();
    let client = gw.client(&key.secret).await;
    // Even with wrong arguments, the caller is told it may not call the tool at all.
    let result = call(&client, "create_coupon", json!({"code": "x"})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        text(&result),
        "create_coupon needs the `coupons:write` scope, which this connection was not granted. Nothing was changed."
    );
    assert_eq!(api.write_count(), before);
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn invalid_arguments_list_every_problem() {
    let gw = Gateway::start().await;
    let client = gw.client(&gw.pro_key()).await;
    let result = call(
        &client,
        "create_coupon",
        json!({"code": "bad code", "percent_off": 400, "colour": "red"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    let t = text(&result);
    assert!(
        t.starts_with(
            "The arguments for create_coupon are not valid, so nothing was changed. Fix these:"
        ),
        "{t}"
    );
    assert!(
        t.contains("- `percent_off`: must be at most 100, got 400"),
        "{t}"
    );
    assert!(t.contains("- `code`: must match the pattern"), "{t}");
    assert!(t.contains("- `colour`: is not an accepted field"), "{t}");
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn unknown_tools_are_a_protocol_error() {
    let gw = Gateway::start().await;
    let client = gw.client(&gw.pro_key()).await;
    let err = client
        .call_tool(CallToolRequestParams::new("drop_all_tables"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("Unknown tool: drop_all_tables"),
        "{err:?}"
    );
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn a_write_really_changes_upstream_data() {
    let gw = Gateway::start().await;
    let client = gw.client(&gw.pro_key()).await;
    let created = ok(
        call(
            &client,
            "create_program",
            json!({"name": "Yin & Restore", "description": "Slow, long holds.", "idempotency_key": "k-prog-1"}),
        )
        .await,
        "create_program",
    );
    let id = created["id"].as_str().unwrap().to_string();
    let listed = ok(
        call(&client, "list_programs", json!({"limit": 100})).await,
        "list_programs",
    );
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id.as_str()),
        "{listed}"
    );
    // The same idempotency key replays the first answer instead of creating a second program.
    let again = ok(
        call(
            &client,
            "create_program",
            json!({"name": "Yin & Restore", "description": "Slow, long holds.", "idempotency_key": "k-prog-1"}),
        )
        .await,
        "create_program",
    );
    assert_eq!(again["id"], created["id"]);
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn a_key_of_one_studio_never_reaches_another() {
    let gw = Gateway::start().await;
    // The free studio's class ids, as the free key sees them.
    let free = gw.client(&gw.free_key()).await;
    let classes = ok(
        call(&free, "list_classes", json!({"limit": 5})).await,
        "list_classes",
    );
    let foreign = classes["data"][0]["id"].as_str().unwrap().to_string();
    free.cancel().await.unwrap();
    // The Pro key asking for it gets the upstream's 404: it does not exist in its studio.
    let pro = gw.client(&gw.pro_key()).await;
    let result = call(&pro, "get_class", json!({"class_id": foreign})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).to_lowercase().contains("not found"),
        "{}",
        text(&result)
    );
    pro.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn missing_and_bad_credentials_get_401_with_the_metadata_challenge() {
    let gw = Gateway::start().await;
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    for auth in [None, Some("Bearer flow_sk_nope"), Some("Basic abc")] {
        let mut req = http
            .post(gw.url())
            .header("Accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with(&format!(
                "Bearer resource_metadata=\"{}\"",
                gw.running.app.resource_metadata_url()
            )),
            "{challenge}"
        );
    }
    let meta: serde_json::Value = http
        .get(gw.running.app.resource_metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], gw.url());
    gw.stop().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_its_next_request() {
    let gw = Gateway::start().await;
    let key = gw.key("std_lotus", &["classes:read"]).await;
    let client = gw.client(&key.secret).await;
    ok(
        call(&client, "list_classes", json!({})).await,
        "list_classes",
    );
    gw.running
        .app
        .keys
        .revoke(flowgate::store::Within::AllStudios, &key.info.id)
        .await
        .unwrap();
    let err = client
        .call_tool(CallToolRequestParams::new("list_classes"))
        .await
        .unwrap_err();
    let err = format!("{err:?}");
    assert!(
        err.contains("AuthRequired") && err.contains("the token was revoked"),
        "{err}"
    );
    // And a new connection is refused outright.
    let resp = crate::harness::post_mcp(
        &gw.url(),
        &key.secret,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let gw = Gateway::start().await;
    let key = gw
        .running
        .app
        .keys
        .create(
            "std_lotus",
            "expired",
            &["classes:read".to_string()].into(),
            Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    let resp = crate::harness::post_mcp(
        &gw.url(),
        &key.secret,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("the token has expired"), "{challenge}");
    gw.stop().await;
}

#[tokio::test]
async fn a_session_cannot_be_used_with_another_key() {
    let gw = Gateway::start().await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let resp = http
        .post(gw.url())
        .bearer_auth(gw.pro_key())
        .header("Accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let resp = http
        .post(gw.url())
        .bearer_auth(gw.free_key())
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", &sid)
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn the_stateless_mode_serves_json() {
    let gw = Gateway::start_with(|c| c.mcp_mode = flowgate::config::McpMode::Stateless).await;
    let client = connect(&gw.url(), &gw.pro_key()).await;
    let me = ok(call(&client, "whoami", json!({})).await, "whoami");
    assert_eq!(me["studio"]["id"], "std_lotus");
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn an_unreachable_upstream_says_nothing_was_changed() {
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
    let key = gw.key("std_lotus", &["classes:read"]).await;
    let client = gw.client(&key.secret).await;
    let result = call(&client, "list_classes", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("so list_classes was not run and nothing was changed"),
        "{}",
        text(&result)
    );
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn a_slow_upstream_times_out_within_the_configured_time() {
    // An upstream that accepts connections and answers GET /studio, then never answers writes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let slow = axum::Router::new()
        .route(
            "/v1/studio",
            axum::routing::get(|| async {
                axum::Json(json!({"id": "std_slow", "name": "Slow", "tier": "pro"}))
            }),
        )
        .fallback(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        });
    let server = tokio::spawn(async move { axum::serve(listener, slow).await.unwrap() });
    let gw = Gateway::start_with(|c| {
        c.upstream_url = Some(format!("http://{addr}/v1"));
        c.upstream_token = Some("t".into());
        c.upstream_timeout_ms = 700;
    })
    .await;
    let key = gw.key("std_slow", &["programs:write"]).await;
    let client = gw.client(&key.secret).await;
    let started = Instant::now();
    let result = call(
        &client,
        "create_program",
        json!({"name": "Late", "idempotency_key": "abc"}),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(result.is_error, Some(true));
    let t = text(&result);
    assert!(t.contains("did not answer within 0.7 s"), "{t}");
    assert!(
        t.contains("Retrying with the same idempotency_key is safe"),
        "{t}"
    );
    client.cancel().await.unwrap();
    gw.stop().await;
    server.abort();
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused_and_oversize_bodies_rejected() {
    let gw = Gateway::start_with(|c| c.max_body_bytes = 4096).await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let post = || {
        http.post(gw.url())
            .bearer_auth(gw.pro_key())
            .header("Accept", "application/json, text/event-stream")
    };
    // A browser page on another site (DNS rebinding) is refused.
    let resp = post()
        .header("Origin", "http://evil.example")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(
        resp.text().await.unwrap().contains("allowed_origins"),
        "the refusal says what to do"
    );
    // A page served by the gateway itself (its own origin, by any loopback name) is not foreign.
    let port = gw.running.addr.port();
    for own in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let resp = post()
            .header("Origin", &own)
            .json(&init)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{own}");
    }
    let resp = post()
        .header("Origin", format!("http://127.0.0.1:{}", port + 1))
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "another port is another origin");
    // So is a request for a host name the gateway does not serve.
    let resp = post()
        .header("Host", "evil.example")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // A body over the limit is refused before it is parsed.
    let big =
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping", "params": {"pad": "x".repeat(8192)}});
    let resp = post().json(&big).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    // Malformed JSON-RPC gets a JSON-RPC error, not a crash.
    let resp = post()
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    // The server still answers normally afterwards.
    let client = gw.client(&gw.pro_key()).await;
    ok(call(&client, "whoami", json!({})).await, "whoami");
    client.cancel().await.unwrap();
    gw.stop().await;
}

// === JSON-RPC errors for malformed requests ===

/// One raw POST to `/mcp` (text body, so it can be broken JSON); the status and the JSON-RPC
/// message in the answer (a JSON body, or the first `data:` event of an SSE stream).
async fn raw_rpc(gw: &Gateway, session: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(gw.url())
        .bearer_auth(gw.pro_key())
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(sid) = session {
        req = req
            .header("Mcp-Session-Id", sid)
            .header("MCP-Protocol-Version", "2025-11-25");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .unwrap_or(text.as_str());
    let value =
        serde_json::from_str(json).unwrap_or_else(|_| serde_json::Value::String(text.clone()));
    (status, value)
}

/// An initialised stateful session, as a client opens it.
async fn raw_session(gw: &Gateway) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let resp = crate::harness::post_mcp(&gw.url(), &gw.pro_key(), &init).await;
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, _) = raw_rpc(
        gw,
        Some(&sid),
        r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#,
    )
    .await;
    assert_eq!(status, 202);
    sid
}

#[tokio::test]
async fn malformed_requests_get_the_json_rpc_error_codes_in_both_modes() {
    for mode in [
        flowgate::config::McpMode::Stateful,
        flowgate::config::McpMode::Stateless,
    ] {
        let gw = Gateway::start_with(|c| c.mcp_mode = mode).await;
        let session = match mode {
            flowgate::config::McpMode::Stateful => Some(raw_session(&gw).await),
            flowgate::config::McpMode::Stateless => None,
        };
        let sid = session.as_deref();
        let call = r#"{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": "#;
        let cases = [
            (
                "\"x\"}",
                "Invalid params: tools/call params must be an object with `name` (the tool, a string) and optional `arguments` (an object), got a string",
            ),
            (
                "{\"name\": 5}}",
                "Invalid params: tools/call `name` must be a string, got a number",
            ),
            (
                "{\"arguments\": {}}}",
                "Invalid params: tools/call params need `name`, the tool to call (a string)",
            ),
            (
                "{\"name\": \"whoami\", \"arguments\": []}}",
                "Invalid params: tools/call `arguments` must be an object, got an array",
            ),
        ];
        for (params, message) in cases {
            let (status, answer) = raw_rpc(&gw, sid, &format!("{call}{params}")).await;
            // Refused before dispatch (400) or answered in-band (200): -32602 either way.
            assert!(
                status == 200 || status == 400,
                "{mode:?} {params}: {status}"
            );
            assert_eq!(
                answer,
                json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": message}}),
                "{mode:?} {params}"
            );
        }
        for body in [
            "{not json",
            "",
            "[1,",
            r#"{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "whoami""#,
        ] {
            let (status, answer) = raw_rpc(&gw, sid, body).await;
            assert_eq!(status, 400, "{mode:?} {body:?}");
            assert_eq!(answer["id"], serde_json::Value::Null, "{mode:?} {body:?}");
            assert_eq!(
                answer["error"]["code"], -32700,
                "{mode:?} {body:?}: {answer}"
            );
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("Parse error: the request body is not valid JSON"),
                "{message}"
            );
        }
        // JSON, but not a JSON-RPC message.
        for body in ["[1, 2]", r#"{"id": 3, "hello": "world"}"#] {
            let (status, answer) = raw_rpc(&gw, sid, body).await;
            assert_eq!(status, 400, "{mode:?} {body}");
            assert_eq!(answer["error"]["code"], -32600, "{mode:?} {body}: {answer}");
        }
        // An unknown method is still "method not found", and a good call still works.
        let (_, answer) = raw_rpc(
            &gw,
            sid,
            r#"{"jsonrpc": "2.0", "id": 8, "method": "tools/frobnicate", "params": {}}"#,
        )
        .await;
        assert_eq!(answer["error"]["code"], -32601, "{mode:?}: {answer}");
        assert_eq!(
            answer["error"]["message"],
            "The method \"tools/frobnicate\" is not one this server offers: flowgate serves tools (initialize, ping, tools/list and tools/call).",
            "{mode:?}"
        );
        // So are the methods of capabilities flowgate does not advertise.
        for method in ["resources/list", "prompts/get", "completion/complete"] {
            let body = json!({"jsonrpc": "2.0", "id": 8, "method": method, "params": {"name": "x", "level": "info"}});
            let (_, answer) = raw_rpc(&gw, sid, &body.to_string()).await;
            assert_eq!(
                answer["error"]["code"], -32601,
                "{mode:?} {method}: {answer}"
            );
            assert_eq!(
                answer["error"]["message"],
                format!(
                    "The method \"{method}\" is not one this server offers: flowgate serves tools (initialize, ping, tools/list and tools/call)."
                ),
                "{mode:?}"
            );
        }
        if mode == flowgate::config::McpMode::Stateful {
            let (status, answer) = raw_rpc(
                &gw,
                sid,
                r#"{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}"#,
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(
                answer["result"]["structuredContent"]["studio"]["id"], "std_lotus",
                "{answer}"
            );
        }
        gw.stop().await;
    }
}
