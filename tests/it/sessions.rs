//! MCP sessions across replicas: two gateways sharing one store (the same SQLite file, or the
//! same PostgreSQL database) behind a load balancer that does not stick. A session opened on one
//! is served by the other; ending it on one ends it on both; a session id is refused with
//! another principal's credential and when it was tampered with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::harness::{Gateway, call, connect, ok};

/// Two gateways on one store: SQLite in the first one's data directory, or `database_url`.
async fn pair(database_url: Option<String>) -> (Gateway, Gateway) {
    let url = database_url.clone();
    let a = Gateway::start_with(move |c| c.database_url = url).await;
    let dir = a.running.app.config.data_dir.clone();
    let b = Gateway::start_with(move |c| {
        // The same data directory: the same SQLite store and the same demo keys.
        c.data_dir = dir;
        c.database_url = database_url;
    })
    .await;
    assert_eq!(a.pro_key(), b.pro_key());
    (a, b)
}

/// One raw JSON-RPC POST; the status, the headers and the message (from JSON or from SSE).
async fn rpc(
    url: &str,
    key: &str,
    session: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .json(body);
    if let Some(sid) = session {
        req = req
            .header("Mcp-Session-Id", sid)
            .header("MCP-Protocol-Version", "2025-11-25");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let message = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .unwrap_or(text.as_str());
    let value = serde_json::from_str(message).unwrap_or(Value::Null);
    (status, headers, value, text)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}})
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
}

async fn delete(url: &str, key: &str, session: &str) -> u16 {
    reqwest::Client::new()
        .delete(url)
        .bearer_auth(key)
        .header("Mcp-Session-Id", session)
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The scenario on one backend. `exact`: an end is seen by the other gateway on its very next
/// request (SQLite's marker file); otherwise within the time a notification takes (PostgreSQL).
async fn a_session_moves_between_gateways(a: &Gateway, b: &Gateway, exact: bool) {
    let (pro, free) = (a.pro_key(), a.free_key());
    // Opened on A: an SSE answer with a priming event (id and retry) first, as rmcp's were.
    let (status, headers, answer, text) = rpc(&a.url(), &pro, None, &initialize()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(text.starts_with("data: \nid: 0\nretry: 3000\n\n"), "{text}");
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25");
    let sid = headers["mcp-session-id"].to_str().unwrap().to_string();
    assert!(sid.starts_with("fs1."), "{sid}");

    // Served on B: the notification, the list, a call.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(rpc(&b.url(), &pro, Some(&sid), &note).await.0, 202);
    let (status, _, answer, _) = rpc(&b.url(), &pro, Some(&sid), &list()).await;
    assert_eq!(status, 200);
    assert!(answer["result"]["tools"].as_array().unwrap().len() > 10);
    let whoami = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}});
    let (status, _, answer, _) = rpc(&b.url(), &pro, Some(&sid), &whoami).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["result"]["structuredContent"]["studio"]["id"],
        "std_lotus"
    );

    // Another principal's credential, a tampered id, an id from another gateway's key, no id.
    assert_eq!(rpc(&b.url(), &free, Some(&sid), &list()).await.0, 404);
    let (signed, tag) = sid.rsplit_once('.').unwrap();
    let flipped = if tag.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{signed}.{flipped}{}", &tag[1..]);
    assert_eq!(rpc(&a.url(), &pro, Some(&tampered), &list()).await.0, 404);
    let mut payload = signed.to_string();
    payload.push('x');
    assert_eq!(
        rpc(&a.url(), &pro, Some(&format!("{payload}.{tag}")), &list())
            .await
            .0,
        404
    );
    let (status, _, _, text) = rpc(&a.url(), &pro, None, &list()).await;
    assert_eq!(
        (status, text.trim_end()),
        (400, "Bad Request: Session ID is required")
    );
    // The owner's id still works after all that.
    assert_eq!(rpc(&a.url(), &pro, Some(&sid), &list()).await.0, 200);

    // Ended on B: refused on B at once, and on A.
    assert_eq!(
        delete(&b.url(), &free, &sid).await,
        404,
        "not free's to end"
    );
    assert_eq!(delete(&b.url(), &pro, &sid).await, 204);
    assert_eq!(rpc(&b.url(), &pro, Some(&sid), &list()).await.0, 404);
    let ended = Instant::now();
    let mut served = 0;
    loop {
        let status = rpc(&a.url(), &pro, Some(&sid), &list()).await.0;
        if status == 404 {
            break;
        }
        served += 1;
        assert_eq!(status, 200);
        assert!(
            !exact && ended.elapsed() < Duration::from_secs(2),
            "A still serves a session ended on B {:?} later",
            ended.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "an end on B was refused on A after {:?} ({served} requests served meanwhile)",
        ended.elapsed()
    );
    assert_eq!(delete(&a.url(), &pro, &sid).await, 404, "already ended");
}

#[tokio::test]
async fn a_session_opened_on_one_gateway_is_served_and_ended_on_another_sqlite() {
    let (a, b) = pair(None).await;
    a_session_moves_between_gateways(&a, &b, true).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_session_opened_on_one_gateway_is_served_and_ended_on_another_postgres() {
    let Some(url) = crate::postgres::database().await else {
        return;
    };
    let (a, b) = pair(Some(url)).await;
    a_session_moves_between_gateways(&a, &b, false).await;
    b.stop().await;
    a.stop().await;
}

// === A real client behind a load balancer that does not stick ===

/// Sends each request to the next gateway in turn.
#[derive(Clone)]
struct RoundRobin {
    http: reqwest::Client,
    targets: Vec<SocketAddr>,
    next: Arc<AtomicUsize>,
    /// Requests per gateway.
    served: Arc<Vec<AtomicUsize>>,
}

async fn forward(State(lb): State<RoundRobin>, req: Request) -> Response {
    let i = lb.next.fetch_add(1, Ordering::SeqCst) % lb.targets.len();
    lb.served[i].fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut out = lb
        .http
        .request(
            parts.method,
            format!("http://{}{}", lb.targets[i], parts.uri),
        )
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    match out.send().await {
        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        Ok(r) => {
            let mut resp = Response::builder().status(r.status().as_u16());
            for (name, value) in r.headers() {
                resp = resp.header(name.as_str(), value.as_bytes());
            }
            resp.body(Body::from_stream(r.bytes_stream())).unwrap()
        }
    }
}

#[tokio::test]
async fn a_real_client_keeps_its_session_when_every_request_lands_elsewhere() {
    let (a, b) = pair(None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lb = RoundRobin {
        http: reqwest::Client::new(),
        targets: vec![a.running.addr, b.running.addr],
        next: Arc::new(AtomicUsize::new(0)),
        served: Arc::new(vec![AtomicUsize::new(0), AtomicUsize::new(0)]),
    };
    let app = axum::Router::new().fallback(forward).with_state(lb.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    // rmcp's own client: initialize, initialized, then calls, each on the next gateway.
    let client = connect(&format!("http://{addr}/mcp"), &a.pro_key()).await;
    for _ in 0..3 {
        let me = ok(call(&client, "whoami", json!({})).await, "whoami");
        assert_eq!(me["studio"]["id"], "std_lotus");
    }
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), flowgate::tool::catalog::TOOLS.len());
    client.cancel().await.unwrap();
    let served: Vec<usize> = lb.served.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert!(served.iter().all(|n| *n >= 3), "{served:?}");
    b.stop().await;
    a.stop().await;
}
