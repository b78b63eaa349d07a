//! Several `flowgate serve` replicas on one PostgreSQL, behind no sticky load balancer: a client
//! that alternates replicas on every request sees every guarantee of SPEC §4 hold.
//!
//! Real processes throughout: one standalone reference API (`flowgate studio-api`), a real
//! PostgreSQL (`postgres.rs`), two or three `flowgate serve` replicas that share nothing but
//! `database_url`, the upstream settings and the public URL a load balancer would give them.

use std::process::Stdio;
use std::time::{Duration, Instant};

use flowgate::store::{Location, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::postgres;

const BIN: &str = env!("CARGO_BIN_EXE_flowgate");
/// The address clients would use (a load balancer's); tokens are issued for its `/mcp`.
const PUBLIC_URL: &str = crate::oauth_hops::PUBLIC;

/// The reference API, the database and the replicas of one test.
pub struct Cluster {
    pub db: String,
    api_url: String,
    api_token: String,
    _api: tokio::process::Child,
    pub replicas: Vec<Replica>,
    dir: tempfile::TempDir,
}

/// One `flowgate serve` process.
pub struct Replica {
    pub child: tokio::process::Child,
    /// Its own `/mcp` (the client talks to it directly, as a load balancer would).
    pub mcp: String,
}

impl crate::oauth_hops::Replica for Replica {
    fn base(&self) -> String {
        self.mcp.trim_end_matches("/mcp").to_string()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads `child`'s stdout until a line starting with `prefix`; returns the rest of that line
/// and the lines after it up to the next empty one. Keeps draining afterwards.
async fn banner(child: &mut tokio::process::Child, prefix: &str) -> Vec<String> {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if !found.is_empty() || line.starts_with(prefix) {
                if line.trim().is_empty() {
                    break;
                }
                found.push(line);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .unwrap_or_else(|_| panic!("no line starting with {prefix:?} within 60 s"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}

impl Cluster {
    /// A fresh database, the reference API and `n` replicas; `None` without PostgreSQL.
    pub async fn start(n: usize) -> Option<Self> {
        let db = postgres::database().await?;
        let dir = tempfile::tempdir().unwrap();
        let api_port = free_port();
        let mut api = tokio::process::Command::new(BIN)
            .args(["studio-api", "--listen", &format!("127.0.0.1:{api_port}")])
            .arg("--data-dir")
            .arg(dir.path().join("api"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = banner(&mut api, "The reference Management API is serving at").await;
        let api_url = lines[0].rsplit(' ').next().unwrap().to_string();
        let api_token = lines
            .iter()
            .find_map(|l| l.strip_prefix("Service credential: "))
            .expect("the banner shows the service credential")
            .to_string();
        let mut cluster = Cluster {
            db,
            api_url,
            api_token,
            _api: api,
            replicas: Vec::new(),
            dir,
        };
        for i in 0..n {
            let r = cluster.replica(i).await;
            cluster.replicas.push(r);
        }
        Some(cluster)
    }

    /// Starts replica `i` (its own data directory: nothing on disk is shared).
    pub async fn replica(&self, i: usize) -> Replica {
        let port = free_port();
        let mut child = tokio::process::Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("replica-{i}")))
            .env("FLOWGATE_DATABASE_URL", &self.db)
            .env("FLOWGATE_UPSTREAM_URL", &self.api_url)
            .env("FLOWGATE_UPSTREAM_TOKEN", &self.api_token)
            .env("FLOWGATE_PUBLIC_URL", PUBLIC_URL)
            .env("FLOWGATE_UPSTREAM_TIMEOUT_MS", "2000")
            .env_remove("FLOWGATE_LISTEN")
            .env_remove("FLOWGATE_RATE_LIMIT_PER_MINUTE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        banner(&mut child, "flowgate is serving MCP at").await;
        Replica {
            child,
            mcp: format!("http://127.0.0.1:{port}/mcp"),
        }
    }

    /// A handle on the shared store, as the operator's tools would open it.
    pub async fn store(&self) -> Store {
        Store::open(&Location::Postgres(self.db.clone()))
            .await
            .unwrap()
    }

    /// `flowgate …` against the shared database (the CLI honours `--database-url`).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new(BIN)
            .args(args)
            .arg("--database-url")
            .arg(&self.db)
            .arg("--data-dir")
            .arg(self.dir.path().join("cli"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "flowgate {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// What one `tools/call` over HTTP came to.
#[derive(Debug)]
pub enum Answer {
    /// The HTTP status, when it was not 200 (401 for a refused credential).
    Http(u16),
    /// A JSON-RPC error.
    Error(Value),
    /// The tool's result.
    Result(Value),
}

impl Answer {
    pub fn ok(&self) -> Option<&Value> {
        match self {
            Answer::Result(r) if r["isError"] != true => Some(&r["structuredContent"]),
            _ => None,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Answer::Result(r) => r["content"][0]["text"].as_str().unwrap_or("").to_string(),
            Answer::Error(e) => format!("JSON-RPC error: {e}"),
            Answer::Http(status) => format!("HTTP {status}"),
        }
    }
}

/// One stateless (2026-07-28) `tools/call`: the request alone says everything, so any replica
/// can answer it.
pub async fn call(
    http: &reqwest::Client,
    mcp: &str,
    token: &str,
    tool: &str,
    args: Value,
) -> Answer {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": args,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "replica-test", "version": "0"}
            }
        }
    });
    let response = match http
        .post(mcp)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", tool)
        .json(&body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
    {
        Ok(response) => response,
        // The replica is gone (killed): no answer at all.
        Err(_) => return Answer::Http(0),
    };
    let status = response.status().as_u16();
    if status != 200 {
        return Answer::Http(status);
    }
    let Ok(text) = response.text().await else {
        return Answer::Http(0);
    };
    // JSON, or SSE whose data lines carry the message.
    let message: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC answer in {text:?}"))
    });
    match message.get("error") {
        Some(e) => Answer::Error(e.clone()),
        None => Answer::Result(message["result"].clone()),
    }
}

/// A key of a demo studio with every scope, made in the shared store.
async fn key(store: &Store, studio: &str) -> flowgate::identity::keys::NewKey {
    flowgate::identity::keys::Keys::new(store.clone())
        .create(
            studio,
            "replica test",
            &flowgate::identity::keys::parse_scopes("all").unwrap(),
            None,
        )
        .await
        .unwrap()
}

/// Revocation, idempotency, rate limits and the audit log, with every request on the other
/// replica than the one before.
#[tokio::test]
async fn every_guarantee_holds_when_requests_alternate_replicas() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let started = Instant::now();
    let http = reqwest::Client::new();
    let store = cluster.store().await;
    let [a, b] = [&cluster.replicas[0].mcp, &cluster.replicas[1].mcp];
    let pro = key(&store, flowgate_studio_api::DEMO_PRO_STUDIO).await;

    // Any replica serves any request.
    for (i, mcp) in [a, b, a, b].into_iter().enumerate() {
        let answer = call(&http, mcp, &pro.secret, "list_classes", json!({"limit": 2})).await;
        assert!(answer.ok().is_some(), "request {i}: {}", answer.text());
    }

    // Idempotency: 8 concurrent duplicates of one write, split across the replicas, reach the
    // upstream once and all get the first answer.
    let args = json!({
        "name": "Replica retreat",
        "description": "Created eight times at once, applied once.",
        "idempotency_key": "replica-dup-1",
    });
    let dups = (0..8).map(|i| {
        let (http, args, secret) = (&http, args.clone(), &pro.secret);
        let mcp = if i % 2 == 0 { a } else { b };
        async move { call(http, mcp, secret, "create_program", args).await }
    });
    let answers = futures::future::join_all(dups).await;
    let ids: Vec<&Value> = answers
        .iter()
        .map(|a| &a.ok().unwrap_or_else(|| panic!("{}", a.text()))["id"])
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0] && id.is_string()),
        "{ids:?}"
    );
    let programs = call(
        &http,
        b,
        &pro.secret,
        "list_programs",
        json!({"limit": 100}),
    )
    .await;
    let named = programs.ok().unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "Replica retreat")
        .count();
    assert_eq!(named, 1, "the write was applied once");
    // The audit log says the same: one record went upstream, seven were replayed.
    let rows = flowgate::audit::Audit::new(store.clone())
        .query(&flowgate::audit::Filter {
            tool: Some("create_program".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(
        rows.iter().filter(|r| r.upstream_status.is_some()).count(),
        1,
        "{rows:?}"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.message.as_deref() == Some("replayed from the idempotency store"))
            .count(),
        7
    );

    // Revocation: both replicas remember the key; it is revoked from the CLI; the very next
    // request on either is refused.
    let doomed = key(&store, flowgate_studio_api::DEMO_PRO_STUDIO).await;
    for mcp in [a, b, a, b] {
        assert!(
            call(&http, mcp, &doomed.secret, "whoami", json!({}))
                .await
                .ok()
                .is_some()
        );
    }
    cluster.cli(&["keys", "revoke", &doomed.info.id]);
    assert!(matches!(
        call(&http, b, &doomed.secret, "whoami", json!({})).await,
        Answer::Http(401)
    ));
    assert!(matches!(
        call(&http, a, &doomed.secret, "whoami", json!({})).await,
        Answer::Http(401)
    ));

    // An OAuth grant revoked by its client (RFC 7009) on one replica is refused on the other.
    let grants = flowgate::oauth::grants::Grants::new(store.clone(), 3600);
    let access = grant_token(&grants).await;
    for mcp in [a, b] {
        assert!(
            call(&http, mcp, &access, "whoami", json!({}))
                .await
                .ok()
                .is_some()
        );
    }
    let revoked = http
        .post(a.replace("/mcp", "/oauth/revoke"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(matches!(
        call(&http, b, &access, "whoami", json!({})).await,
        Answer::Http(401)
    ));

    // Rate limits: a Free studio's key may make 60 calls a minute with a burst of 15. Hammered
    // on both replicas, the pair admits no more than one replica would.
    let free = key(&store, flowgate_studio_api::DEMO_FREE_STUDIO).await;
    let burst_started = Instant::now();
    let mut admitted = 0;
    let mut limited = 0;
    for i in 0..40 {
        let mcp = if i % 2 == 0 { a } else { b };
        match call(
            &http,
            mcp,
            &free.secret,
            "list_classes",
            json!({"limit": 1}),
        )
        .await
        {
            answer if answer.ok().is_some() => admitted += 1,
            answer if answer.text().contains("Rate limit") => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    let drained = (burst_started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(
        (13..=15 + drained).contains(&admitted),
        "admitted {admitted} of 40 (limited {limited}) in {:?}",
        burst_started.elapsed()
    );

    // One audit log: what both replicas did, read on one replica and from the CLI.
    let on_a = call(
        &http,
        a,
        &pro.secret,
        "list_audit_log",
        json!({"tool": "create_program", "limit": 20}),
    )
    .await;
    assert_eq!(on_a.ok().unwrap()["data"].as_array().unwrap().len(), 8);
    let cli = cluster.cli(&["audit", "--tool", "create_program", "--json"]);
    assert_eq!(String::from_utf8_lossy(&cli.stdout).lines().count(), 8);
    let revoked_rows = flowgate::audit::Audit::new(store.clone())
        .query(&flowgate::audit::Filter {
            principal: Some(doomed.info.id.clone()),
            outcome: Some("unauthenticated".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        revoked_rows.len(),
        2,
        "each refusal audited where it happened"
    );
    eprintln!("replica guarantees checked in {:?}", started.elapsed());
    store.close().await.unwrap();
}

/// An access token of a grant approved in the shared store, for the public URL's `/mcp`.
async fn grant_token(grants: &flowgate::oauth::grants::Grants) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = "v".repeat(43);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let scopes = flowgate::identity::keys::parse_scopes("read").unwrap();
    let client = grants
        .register_client("Replica client", &["http://127.0.0.1:9/cb".to_string()])
        .await
        .unwrap();
    let (_, code) = grants
        .approve(&flowgate::oauth::grants::NewGrant {
            studio: flowgate_studio_api::DEMO_PRO_STUDIO,
            user_id: "usr_owner",
            user_email: "owner@example.com",
            client_id: &client.client_id,
            client_name: &client.client_name,
            scopes: &scopes,
            resource: &format!("{PUBLIC_URL}/mcp"),
            redirect_uri: "http://127.0.0.1:9/cb",
            code_challenge: &challenge,
        })
        .await
        .unwrap();
    grants
        .exchange_code(
            &code,
            &client.client_id,
            "http://127.0.0.1:9/cb",
            &verifier,
            None,
        )
        .await
        .unwrap()
        .result
        .unwrap()
        .access_token
}

/// SIGKILL one replica in the middle of a write load: the other keeps serving, no answered call
/// lacks its audit record, and no write is applied twice (clients retry on the other replica with
/// the same idempotency key, as they would behind a load balancer).
#[tokio::test]
async fn a_replica_killed_under_load_loses_nothing_and_the_other_keeps_serving() {
    const WORKERS: usize = 6;
    const PER_WORKER: usize = 30;
    const KILL_AFTER_ANSWERS: usize = 50;
    let Some(mut cluster) = Cluster::start(2).await else {
        return;
    };
    let started = Instant::now();
    let http = reqwest::Client::new();
    let store = cluster.store().await;
    let pro = key(&store, flowgate_studio_api::DEMO_PRO_STUDIO).await;
    let (a, b) = (
        cluster.replicas[0].mcp.clone(),
        cluster.replicas[1].mcp.clone(),
    );
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let workers = (0..WORKERS).map(|w| {
        let (http, secret, a, b) = (http.clone(), pro.secret.clone(), a.clone(), b.clone());
        let (answered, killed) = (answered.clone(), killed.clone());
        tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0..PER_WORKER {
                let key = format!("kill-{w}-{i}");
                let args = json!({"name": format!("Kill {w}-{i}"), "idempotency_key": key});
                // Alternate replicas; retry (same key) until answered, bounded in time.
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut attempt = 0;
                let result = loop {
                    let mcp = if (i + attempt) % 2 == 0 { &a } else { &b };
                    let answer = call(&http, mcp, &secret, "create_program", args.clone()).await;
                    if let Some(ok) = answer.ok() {
                        break Some((
                            ok["id"].clone(),
                            killed.load(std::sync::atomic::Ordering::SeqCst),
                            mcp == &b,
                        ));
                    }
                    attempt += 1;
                    if Instant::now() > deadline {
                        break None;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                done.push((key, result));
            }
            done
        })
    });
    let workers: Vec<_> = workers.collect();
    // Kill replica A once the load is well under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(std::sync::atomic::Ordering::SeqCst) < KILL_AFTER_ANSWERS {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.replicas[0].child.start_kill().unwrap();
    cluster.replicas[0].child.wait().await.unwrap();
    killed.store(true, std::sync::atomic::Ordering::SeqCst);

    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.unwrap());
    }
    let unanswered: Vec<_> = results
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(k, _)| k)
        .collect();
    assert!(unanswered.is_empty(), "never answered: {unanswered:?}");
    let after_kill = results
        .iter()
        .filter(|(_, r)| r.as_ref().is_some_and(|(_, killed, on_b)| *killed && *on_b))
        .count();
    assert!(
        after_kill > 0,
        "replica B answered nothing after A was killed"
    );

    // No write applied twice, and every answered one is there.
    let mut programs = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let mut args = json!({"limit": 100});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        // A read is retried, bounded in time: the writes and their retries may have spent the
        // key's burst, and on a loaded machine the upstream (2 s timeout here) may be slow. Only
        // the writes' exactly-once is this test's to check; a read that keeps failing shows why.
        let deadline = Instant::now() + Duration::from_secs(15);
        let page = loop {
            let answer = call(&http, &b, &pro.secret, "list_programs", args.clone()).await;
            if let Some(page) = answer.ok() {
                break page.clone();
            }
            assert!(Instant::now() < deadline, "list_programs on B: {answer:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        programs.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    for (key, result) in &results {
        let name = format!("Kill {}", key.trim_start_matches("kill-"));
        let same: Vec<_> = programs.iter().filter(|p| p["name"] == name).collect();
        assert_eq!(same.len(), 1, "{name}: applied {} times", same.len());
        let (id, _, _) = result.as_ref().unwrap();
        assert_eq!(
            &same[0]["id"], id,
            "{name}: the answer names the program that exists"
        );
    }

    // Every answered call has its audit record (written before the answer left the replica).
    let rows = flowgate::audit::Audit::new(store.clone())
        .query(&flowgate::audit::Filter {
            tool: Some("create_program".into()),
            outcome: Some("ok".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    for (key, _) in &results {
        assert!(
            rows.iter().any(|r| r
                .arguments
                .as_ref()
                .is_some_and(|a| a["idempotency_key"] == *key)),
            "{key}: answered without an audit record"
        );
    }
    eprintln!(
        "{} writes, {after_kill} answered by B after A was killed, in {:?}",
        results.len(),
        started.elapsed()
    );
    store.close().await.unwrap();
}

/// One-click sign-in across replica processes: authorize on A, sign in on B, consent on A, token
/// on B; the token then works on both, and the consent form replayed on B is refused.
#[tokio::test]
async fn a_sign_in_hops_between_replica_processes() {
    use crate::oauth_hops::{Browser, OWNER, code_of};
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let (a, b) = (&cluster.replicas[0], &cluster.replicas[1]);
    let browser = Browser::register(a).await;
    let form = browser.authorize(a).await;
    let (status, html) = browser.sign_in(b, &form, OWNER).await;
    assert_eq!(status, 200, "{html}");
    let approved = browser.approve(a, &form).await;
    assert!(approved.status().is_redirection(), "{}", approved.status());
    let code = code_of(&approved);
    assert_eq!(browser.approve(b, &form).await.status(), 403);
    let (status, tokens) = browser.exchange(b, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    for replica in [a, b] {
        let answer = call(
            &http,
            &replica.mcp,
            access,
            "list_classes",
            json!({"limit": 1}),
        )
        .await;
        assert!(answer.ok().is_some(), "{}", answer.text());
    }
    // The code again, on A: refused, and the reuse revokes the grant on both replicas.
    let (status, _) = browser.exchange(a, &code).await;
    assert_eq!(status, 400);
    for replica in [a, b] {
        let answer = call(&http, &replica.mcp, access, "whoami", json!({})).await;
        assert!(matches!(answer, Answer::Http(401)), "{answer:?}");
    }
}
