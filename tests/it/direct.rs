//! The direct path of `/mcp` (`flowgate::mcp::direct`) answers exactly what rmcp answers: the
//! same request is sent once as the direct path takes it and once with an empty `_meta` (which
//! the direct path leaves to rmcp, and which changes nothing in rmcp's answer), and the two
//! answers must be the same bytes, status and content type, in both modes.

use flowgate::config::McpMode;
use serde_json::{Value, json};

use crate::harness::Gateway;

/// One POST; status, content type and body.
async fn post(url: &str, key: &str, session: Option<&str>, body: &Value) -> (u16, String, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(body);
    if let Some(s) = session {
        req = req.header("Mcp-Session-Id", s);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

/// `body` with `params._meta: {}` added (rmcp serves it).
fn via_rmcp(body: &Value) -> Value {
    let mut b = body.clone();
    match b.get_mut("params") {
        Some(Value::Object(p)) => {
            p.insert("_meta".into(), json!({}));
        }
        _ => b["params"] = json!({"_meta": {}}),
    }
    b
}

/// Requests of every kind the direct path answers, successes and failures.
fn requests() -> Vec<Value> {
    vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": "s-2", "method": "tools/list", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": "5"}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"cursor": "nope"}}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
               "params": {"name": "get_class", "arguments": {"class_id": "cls_lotus_vinyasa"}}}),
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
               "params": {"name": "get_class", "arguments": {"class_id": "cls_nope"}}}),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "get_class", "arguments": {"class_id": 42}}}),
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
               "params": {"name": "no_such_tool", "arguments": {}}}),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
               "params": {"name": "list_classes", "arguments": null}}),
    ]
}

/// In stateless mode the pages are short (so `nextCursor` is compared) and the key is the Free
/// studio's (so are the tier notes of Pro tools' descriptions).
async fn same_answers(mode: McpMode) {
    let gw = Gateway::start_with(|c| {
        c.mcp_mode = mode;
        if mode == McpMode::Stateless {
            c.tools_page_size = 20;
        }
    })
    .await;
    let url = gw.url();
    let key = match mode {
        McpMode::Stateless => gw.free_key(),
        McpMode::Stateful => gw.pro_key(),
    };
    let session = match mode {
        McpMode::Stateless => None,
        McpMode::Stateful => {
            let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"}}});
            let r = reqwest::Client::new()
                .post(&url)
                .bearer_auth(&key)
                .header("Accept", "application/json, text/event-stream")
                .json(&init)
                .send()
                .await
                .unwrap();
            let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
            Some(sid)
        }
    };
    let mut listed = String::new();
    for body in requests() {
        let direct = post(&url, &key, session.as_deref(), &body).await;
        let rmcp = post(&url, &key, session.as_deref(), &via_rmcp(&body)).await;
        assert_eq!(direct, rmcp, "{mode:?}: {body}");
        if body["method"] == "tools/list" {
            listed.push_str(&direct.2);
        }
        assert_eq!(direct.0, 200, "{body}: {direct:?}");
        let expected = match mode {
            McpMode::Stateless => "application/json",
            McpMode::Stateful => "text/event-stream",
        };
        assert_eq!(direct.1, expected);
    }
    if mode == McpMode::Stateless {
        // The cases the comparison is meant to cover did occur.
        assert!(listed.contains(r#""nextCursor":"20""#), "{listed}");
        assert!(listed.contains(r#""nextCursor":"25""#), "{listed}");
        assert!(listed.contains(" (Pro plan)"), "{listed}");
    }
    // What the direct path said is what the calls did: the audit log has both calls of each
    // pair (the same outcome twice).
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT tool, outcome FROM audit_log WHERE tool IS NOT NULL ORDER BY seq")
            .fetch_all(&gw.sqlite().await)
            .await
            .unwrap();
    assert!(rows.len() >= 8 && rows.len().is_multiple_of(2), "{rows:?}");
    for pair in rows.chunks(2) {
        assert_eq!(pair[0], pair[1], "{rows:?}");
    }
}

#[tokio::test]
async fn the_direct_path_answers_what_rmcp_answers_stateless() {
    same_answers(McpMode::Stateless).await;
}

#[tokio::test]
async fn the_direct_path_answers_what_rmcp_answers_stateful() {
    same_answers(McpMode::Stateful).await;
}
