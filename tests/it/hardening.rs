//! Hardening: an `https` upstream behind a private CA, a refused certificate, slow and greedy
//! clients (header and body deadlines, the connection cap, sessions, rate limits
//! on `initialize` and `tools/list`), Host checks on every route, upstream faults, an audit log
//! that cannot be written, and graceful shutdown of the real binary on SIGTERM.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowgate::audit::Filter;
use flowgate_studio_api::{DEMO_PRO_STUDIO, StudioApi};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use crate::harness::{Gateway, call, ok, post_mcp, text};

// === TLS upstream ===

/// A CA and a certificate it signed for `localhost` and `127.0.0.1`.
struct Pki {
    ca_pem: String,
    leaf: rustls::pki_types::CertificateDer<'static>,
    leaf_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "flowgate test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// A TLS front for `backend`: a real TLS server on loopback, forwarding the decrypted bytes.
async fn tls_front(pki: &Pki, backend: SocketAddr) -> SocketAddr {
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_https_upstream_behind_a_private_ca_is_reached_and_an_untrusted_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let api = StudioApi::start(flowgate_studio_api::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .await
    .unwrap();
    let backend: SocketAddr = api
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .parse()
        .unwrap();
    let pki = pki();
    let front = tls_front(&pki, backend).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let https = format!("https://localhost:{}/v1", front.port());

    // With the CA trusted: the reference API answers over TLS.
    let token = api.service_token().to_string();
    let gw = Gateway::start_with(|c| {
        c.upstream_url = Some(https.clone());
        c.upstream_token = Some(token.clone());
        c.upstream_ca_file = Some(ca_file.clone());
    })
    .await;
    let key = gw.key(DEMO_PRO_STUDIO, &["classes:read"]).await;
    let client = gw.client(&key.secret).await;
    let classes = ok(
        call(&client, "list_classes", json!({})).await,
        "list_classes",
    );
    assert!(!classes["data"].as_array().unwrap().is_empty(), "{classes}");
    client.cancel().await.unwrap();
    gw.stop().await;

    // Without it: the certificate is refused, said as a certificate problem, never retried
    // over http.
    let gw = Gateway::start_with(|c| {
        c.upstream_url = Some(https.clone());
        c.upstream_token = Some(token.clone());
    })
    .await;
    let err = gw
        .running
        .app
        .upstream
        .call(
            &flowgate::upstream::UpstreamRequest::new(
                flowgate::upstream::Method::GET,
                "/v1/studio".into(),
            ),
            &flowgate::upstream::CallHeaders {
                studio: DEMO_PRO_STUDIO,
                actor: "test",
                request_id: "r",
                idempotency_key: None,
                traceparent: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, flowgate::upstream::UpstreamError::Certificate(_)),
        "{err:?}"
    );
    let key = gw.key(DEMO_PRO_STUDIO, &["classes:read"]).await;
    let client = gw.client(&key.secret).await;
    let result = call(&client, "list_classes", json!({})).await;
    let message = text(&result);
    assert_eq!(result.is_error, Some(true));
    assert!(
        message.contains("could not look up this studio's plan"),
        "{message}"
    );
    assert!(message.contains("not valid for this server"), "{message}");
    client.cancel().await.unwrap();
    gw.stop().await;

    // A CA file that holds no certificate stops the start with a message naming the key.
    let bad = dir.path().join("empty.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let config = flowgate::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("gw"),
        upstream_url: Some(https.clone()),
        upstream_token: Some(token.clone()),
        upstream_ca_file: Some(bad),
        ..Default::default()
    };
    let err = flowgate::serve::start(config).await.err().unwrap();
    assert!(format!("{err:#}").contains("upstream_ca_file"), "{err:#}");
    api.shutdown().await;
}

// === A Management API that fails on demand ===

/// How the scripted upstream answers the next tool call (`GET /v1/studio` always works).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// `200` with a coupon.
    None,
    /// Answers `200` after this long.
    Slow(Duration),
    Status(u16),
    /// Sends the headers and half the body, then closes the connection.
    CutOff,
    /// `200` with a body that is not JSON.
    Garbage,
    /// `200` with this many bytes of JSON, without a Content-Length.
    Huge(usize),
}

/// A Management API double for faults the real one cannot be made to have. Counts the tool
/// calls it receives.
struct Faulty {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    calls: Arc<AtomicUsize>,
}

impl Faulty {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fault = Arc::new(Mutex::new(Fault::None));
        let calls = Arc::new(AtomicUsize::new(0));
        let (f, c) = (fault.clone(), calls.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(answer(tcp, f.clone(), c.clone()));
            }
        });
        Self { addr, fault, calls }
    }

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and Content-Length body) and answers it, then closes.
async fn answer(mut tcp: TcpStream, fault: Arc<Mutex<Fault>>, calls: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let reply = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if path == "/v1/studio" {
        let body = json!({"id": DEMO_PRO_STUDIO, "name": "Lotus Flow Yoga", "tier": "pro"});
        let _ = tcp
            .write_all(reply("200 OK", &body.to_string()).as_bytes())
            .await;
        return;
    }
    calls.fetch_add(1, Ordering::SeqCst);
    let fault = *fault.lock().unwrap();
    let coupon = json!({"id": "cpn_spring20", "archived": true}).to_string();
    let out = match fault {
        Fault::None => reply("200 OK", &coupon),
        Fault::Slow(d) => {
            tokio::time::sleep(d).await;
            reply("200 OK", &coupon)
        }
        Fault::Status(s) => reply(
            &format!("{s} Failure"),
            r#"{"error":{"code":"internal","message":"boom"}}"#,
        ),
        Fault::CutOff => {
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"id\":"
                .to_string()
        }
        Fault::Garbage => reply("200 OK", "<html>upstream proxy error</html>"),
        Fault::Huge(n) => {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"pad\":\"")
                .await;
            let pad = vec![b'x'; 16 * 1024];
            let mut sent = 0;
            while sent < n {
                if tcp.write_all(&pad).await.is_err() {
                    return;
                }
                sent += pad.len();
            }
            "\"}".to_string()
        }
    };
    let _ = tcp.write_all(out.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// A gateway in front of `upstream` and a key that may archive coupons.
async fn behind(
    upstream: &Faulty,
    configure: impl FnOnce(&mut flowgate::config::Config),
) -> (Gateway, String) {
    let url = upstream.url();
    let gw = Gateway::start_with(|c| {
        c.upstream_url = Some(url);
        c.upstream_token = Some("service".into());
        c.upstream_timeout_ms = 800;
        c.upstream_max_response_bytes = 64 * 1024;
        configure(c);
    })
    .await;
    let key = gw
        .key(DEMO_PRO_STUDIO, &["coupons:read", "coupons:write"])
        .await;
    (gw, key.secret)
}

#[tokio::test]
async fn each_upstream_fault_gets_its_wording_an_audit_row_and_releases_the_idempotency_key() {
    let upstream = Faulty::start().await;
    let (gw, key) = behind(&upstream, |_| {}).await;
    let client = gw.client(&key).await;
    let cases = [
        (
            Fault::Slow(Duration::from_secs(3)),
            "did not answer within 0.8 s",
        ),
        (Fault::Status(503), "failed (HTTP 503)"),
        (Fault::CutOff, "sent an answer flowgate cannot read"),
        (Fault::Garbage, "sent an answer flowgate cannot read"),
        (Fault::Huge(1024 * 1024), "larger than the 65536 bytes"),
    ];
    for (n, (fault, wording)) in cases.into_iter().enumerate() {
        upstream.set(fault);
        let idempotency_key = format!("fault-{n}");
        let args = json!({"coupon_id": "cpn_spring20", "idempotency_key": idempotency_key});
        let before = upstream.calls();
        let started = Instant::now();
        let result = call(&client, "archive_coupon", args.clone()).await;
        let elapsed = started.elapsed();
        let message = text(&result);
        assert_eq!(result.is_error, Some(true), "{fault:?}: {message}");
        assert!(message.contains(wording), "{fault:?}: {message}");
        assert!(
            message.contains("cannot tell whether archive_coupon was applied")
                && message.contains("same idempotency_key is safe"),
            "{fault:?}: {message}"
        );
        assert!(
            elapsed < Duration::from_secs(3),
            "{fault:?} took {elapsed:?}"
        );
        assert_eq!(upstream.calls(), before + 1, "{fault:?}");

        let rows = gw
            .running
            .app
            .audit
            .query(&Filter {
                tool: Some("archive_coupon".into()),
                limit: 1,
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(rows[0].outcome, "upstream_error", "{fault:?}");
        assert!(
            rows[0]
                .message
                .as_deref()
                .unwrap_or_default()
                .contains(wording),
            "{fault:?}: {:?}",
            rows[0].message
        );

        // The key is not stuck: the retry reaches the upstream again and gets its answer.
        upstream.set(Fault::None);
        let retried = ok(
            call(&client, "archive_coupon", args).await,
            "archive_coupon",
        );
        assert_eq!(retried["archived"], true, "{fault:?}");
        assert_eq!(upstream.calls(), before + 2, "{fault:?}");
    }
    // A read that fails says that nothing was changed.
    upstream.set(Fault::Status(500));
    let result = call(&client, "list_coupons", json!({})).await;
    assert!(
        text(&result).contains("list_coupons only reads, so nothing was changed"),
        "{}",
        text(&result)
    );
    client.cancel().await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn an_audit_log_that_cannot_be_written_fails_calls_closed() {
    let upstream = Faulty::start().await;
    let (gw, key) = behind(&upstream, |_| {}).await;
    let client = gw.client(&key).await;
    let pool = gw.sqlite().await;
    sqlx::query(
        "CREATE TRIGGER disk_full BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    let args = json!({"coupon_id": "cpn_spring20"});

    // The first call cannot know in advance: its answer is withheld, and it says so.
    let first = call(&client, "archive_coupon", args.clone()).await;
    assert_eq!(first.is_error, Some(true));
    assert!(
        text(&first).contains("could not write its audit record"),
        "{}",
        text(&first)
    );
    assert_eq!(upstream.calls(), 1);
    // From then on nothing reaches the upstream until a record can be written again.
    for _ in 0..3 {
        let refused = call(&client, "archive_coupon", args.clone()).await;
        assert!(
            text(&refused).contains("cannot write its audit log right now")
                && text(&refused).contains("nothing was changed"),
            "{}",
            text(&refused)
        );
    }
    assert_eq!(
        upstream.calls(),
        1,
        "no call went upstream without its audit record"
    );

    sqlx::query("DROP TRIGGER disk_full")
        .execute(&pool)
        .await
        .unwrap();
    // The next refused call's record is written, and calls go through again.
    let probe = call(&client, "archive_coupon", args.clone()).await;
    assert!(text(&probe).contains("cannot write its audit log right now"));
    ok(
        call(&client, "archive_coupon", args).await,
        "archive_coupon",
    );
    assert_eq!(upstream.calls(), 2);
    client.cancel().await.unwrap();
    gw.stop().await;
}

// === Slow and greedy clients ===

/// Reads until the server closes the connection (or `limit` passes); returns what it sent.
async fn read_to_close(tcp: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let done = tokio::time::timeout(limit, tcp.read_to_end(&mut out)).await;
    done.ok()
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn a_client_that_sends_half_a_request_is_cut_off() {
    let gw = Gateway::start_with(|c| {
        c.header_read_timeout_ms = 300;
        c.body_read_timeout_ms = 300;
    })
    .await;
    let addr = gw.running.addr;

    // Half the headers, then nothing: closed by the server.
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let closed = read_to_close(&mut tcp, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the connection was held open");
    assert!(started.elapsed() < Duration::from_secs(3));

    // An idle kept-alive connection is closed too.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    assert!(
        read_to_close(&mut tcp, Duration::from_secs(5))
            .await
            .is_some()
    );

    // Full headers, a tenth of the body, then nothing: 408 with a sentence.
    let key = gw.pro_key();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             Content-Length: 100\r\n\r\n{{\"jsonrpc\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let reply = read_to_close(&mut tcp, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("did not arrive within 0.3 s"), "{reply}");
    gw.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_at_once_and_served_again_when_one_closes() {
    let gw = Gateway::start_with(|c| c.max_connections = 3).await;
    let addr = gw.running.addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Give the listener a moment to take the three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let reply = read_to_close(&mut extra, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("retry-after: 1"), "{reply}");
    assert!(reply.contains("as many connections as it can"), "{reply}");

    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    gw.stop().await;
}

/// `initialize` with a key; returns the session id.
async fn open_session(url: &str, key: &str) -> String {
    let r = post_mcp(
        url,
        key,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.headers()["mcp-session-id"].to_str().unwrap().to_string()
}

/// A `ping` on a session: its HTTP status.
async fn ping(url: &str, key: &str, session: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", session)
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Sessions hold no memory in the gateway (a signed id, `http::sessions`), so there is no cap
/// to enforce: every session a principal opened keeps working. Ending one is for its owner.
#[tokio::test]
async fn a_principal_may_hold_many_sessions_and_only_its_owner_ends_one() {
    let gw = Gateway::start().await;
    let url = gw.url();
    let (pro, free) = (gw.pro_key(), gw.free_key());
    let first = open_session(&url, &pro).await;
    let other = open_session(&url, &free).await;
    let mut more = Vec::new();
    for _ in 0..40 {
        more.push(open_session(&url, &pro).await);
    }
    assert_eq!(
        ping(&url, &pro, &first).await,
        200,
        "the oldest still works"
    );
    for session in &more {
        assert_eq!(ping(&url, &pro, session).await, 200);
    }
    assert_eq!(ping(&url, &free, &other).await, 200);
    assert_eq!(
        ping(&url, &free, &first).await,
        404,
        "not the free key's session"
    );

    // Ending a session: 204 for its owner; 404 for another principal and for an unknown id.
    let second = more[0].clone();
    let delete = |key: &str, session: &str| {
        reqwest::Client::new()
            .delete(&url)
            .bearer_auth(key)
            .header("Mcp-Session-Id", session)
            .header("MCP-Protocol-Version", "2025-11-25")
            .send()
    };
    assert_eq!(delete(&free, &second).await.unwrap().status(), 404);
    assert_eq!(delete(&pro, "no-such-session").await.unwrap().status(), 404);
    assert_eq!(delete(&pro, &second).await.unwrap().status(), 204);
    assert_eq!(ping(&url, &pro, &second).await, 404);
    assert_eq!(
        delete(&pro, &second).await.unwrap().status(),
        404,
        "ended once"
    );
    assert_eq!(ping(&url, &pro, &more[1]).await, 200, "the others go on");
    gw.stop().await;
}

#[tokio::test]
async fn initialize_and_tools_list_count_against_the_rate_limit() {
    // 8 a minute: a burst of 2.
    let gw = Gateway::start_with(|c| {
        c.rate_limit_per_minute = [("free".to_string(), 8), ("pro".to_string(), 8)].into();
        c.mcp_mode = flowgate::config::McpMode::Stateless;
    })
    .await;
    let url = gw.url();
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let mut answers = Vec::new();
    for _ in 0..4 {
        let r: Value = post_mcp(&url, &gw.pro_key(), &list)
            .await
            .json()
            .await
            .unwrap();
        answers.push(r);
    }
    assert!(answers[0]["result"]["tools"].is_array(), "{}", answers[0]);
    let limited = answers
        .iter()
        .find(|a| a["error"]["code"] == flowgate::call::RATE_LIMITED)
        .unwrap_or_else(|| panic!("tools/list was never limited: {answers:?}"));
    assert!(
        limited["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit reached: this connection may make 8 requests per minute"),
        "{limited}"
    );
    // The same budget: initialize is refused now too, for this key only.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}});
    let r: Value = post_mcp(&url, &gw.pro_key(), &init)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["error"]["code"], flowgate::call::RATE_LIMITED, "{r}");
    let r: Value = post_mcp(&url, &gw.free_key(), &init)
        .await
        .json()
        .await
        .unwrap();
    assert!(r["result"]["serverInfo"].is_object(), "{r}");
    gw.stop().await;
}

#[tokio::test]
async fn every_route_that_reveals_anything_checks_the_host() {
    let gw = Gateway::start().await;
    let base = format!("http://{}", gw.running.addr);
    let http = reqwest::Client::new();
    for path in [
        "/metrics",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/mcp",
        "/oauth/authorize?client_id=x",
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .header("Host", "attacker.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert!(r.text().await.unwrap().contains("allowed_hosts"), "{path}");
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_ne!(r.status(), 403, "{path} with our own Host");
    }
    let r = http
        .post(format!("{base}/oauth/register"))
        .header("Host", "attacker.example:80")
        .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Probes come by address.
    let r = http
        .get(format!("{base}/healthz"))
        .header("Host", "10.1.2.3:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

// === Graceful shutdown of the real binary ===

#[tokio::test]
async fn sigterm_finishes_the_call_in_flight_records_it_and_exits_zero() {
    let upstream = Faulty::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_flowgate");
    let data = dir.path().to_str().unwrap();
    let created = std::process::Command::new(bin)
        .args([
            "keys",
            "create",
            "--studio",
            DEMO_PRO_STUDIO,
            "--scopes",
            "coupons:write",
        ])
        .args(["--name", "shutdown test", "--data-dir", data])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let secret = String::from_utf8_lossy(&created.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("flow_sk_"))
        .unwrap()
        .to_string();

    let mut child = tokio::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data])
        .args(["--upstream", &upstream.url()])
        .env("FLOWGATE_UPSTREAM_TOKEN", "service")
        .env("FLOWGATE_SHUTDOWN_GRACE_MS", "5000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line)
        .await
        .unwrap();
    let Some(url) = line.trim().strip_prefix("flowgate is serving MCP at ") else {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err).await;
        panic!("unexpected banner {line:?}; stderr: {err}");
    };
    let url = url.to_string();

    upstream.set(Fault::Slow(Duration::from_millis(1500)));
    let client = crate::harness::connect(&url, &secret).await;
    let in_flight = tokio::spawn(async move {
        let r = call(
            &client,
            "archive_coupon",
            json!({"coupon_id": "cpn_spring20"}),
        )
        .await;
        (r, client)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let (result, _client) = in_flight.await.unwrap();
    let archived = ok(result, "archive_coupon");
    assert_eq!(archived["archived"], true);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the gateway did not exit")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");

    // The call answered during shutdown has its committed audit record.
    let audit = std::process::Command::new(bin)
        .args([
            "audit",
            "--json",
            "--tool",
            "archive_coupon",
            "--data-dir",
            data,
        ])
        .output()
        .unwrap();
    assert!(audit.status.success(), "{audit:?}");
    let rows: Vec<Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["outcome"], "ok", "{rows:?}");
}
