//! Sign-in and registration cannot be abused: per-account and per-address back-off that never
//! reaches the upstream, a bound on concurrent password checks, per-address registration
//! limits, expiry of unused registrations, client names that cannot spoof the consent page, and
//! the audit rows each of these leaves.
//!
//! Different client addresses are real connections from other 127.0.0.0/8 addresses.

use flowgate::audit::{Filter, Record};
use serde_json::{Value, json};

use crate::harness::{Gateway, retry_after};
use crate::oauth::{Flow, REDIRECT, authorize_url_for, browser, browser_from, serve_metadata};

const OWNER: (&str, &str) = ("owner@lotusflow.example", "lotus-owner-demo");

/// Audit rows matching `filter` (at most 1000 unless it says fewer), newest first.
pub(crate) async fn audit_log(gw: &Gateway, filter: Filter) -> Vec<Record> {
    let limit = if filter.limit == 0 {
        1000
    } else {
        filter.limit
    };
    gw.running
        .app
        .audit
        .query(&Filter { limit, ..filter })
        .await
        .unwrap()
}

/// Audit rows of one `oauth.*` tool, newest first.
pub(crate) async fn rows(gw: &Gateway, tool: &str) -> Vec<Record> {
    let tool = Some(tool.to_string());
    audit_log(
        gw,
        Filter {
            tool,
            ..Filter::default()
        },
    )
    .await
}

fn sign_ins_upstream(gw: &Gateway) -> u64 {
    gw.running.studio_api.as_ref().unwrap().sign_in_count()
}

#[tokio::test]
async fn failed_sign_ins_back_off_per_account_without_reaching_the_upstream() {
    let gw = Gateway::start().await;
    let flow = Flow::register(&gw).await;
    let form = flow.sign_in_page(&gw).await;
    let before = sign_ins_upstream(&gw);
    for _ in 0..5 {
        let r = flow.sign_in(&form, OWNER.0, "wrong-password").await;
        assert_eq!(r.status(), 401);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("That e-mail and password do not match a studio account.")
        );
    }
    assert_eq!(sign_ins_upstream(&gw), before + 5);
    // The sixth attempt waits, even with the right password (and in another letter case).
    for _ in 0..2 {
        let r = flow
            .sign_in(&form, "Owner@LotusFlow.example", OWNER.1)
            .await;
        assert_eq!(r.status(), 429);
        let wait = retry_after(&r);
        assert!((1..=5).contains(&wait), "{wait}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!(
                "Too many failed sign-ins from this account. Try again in {wait} second"
            )),
            "{html}"
        );
    }
    assert_eq!(
        sign_ins_upstream(&gw),
        before + 5,
        "refused attempts never reach the upstream"
    );

    // Another account from the same address is not affected.
    let r = flow
        .sign_in(&form, "admin@lotusflow.example", "lotus-admin-demo")
        .await;
    assert_eq!(r.status(), 200);

    let log = rows(&gw, "oauth.sign_in").await;
    let failed: Vec<_> = log
        .iter()
        .filter(|r| r.outcome == "unauthenticated")
        .collect();
    assert_eq!(failed.len(), 5);
    for r in &failed {
        assert_eq!(r.principal_kind.as_deref(), Some("user"));
        assert_eq!(r.principal_name.as_deref(), Some(OWNER.0));
        assert_eq!(r.client_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            r.message.as_deref(),
            Some("sign-in failed: wrong e-mail or password")
        );
    }
    // Two refusals, one row: refusals are recorded once per back-off period.
    let limited: Vec<_> = log.iter().filter(|r| r.outcome == "rate_limited").collect();
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert!(
        limited[0]
            .message
            .as_deref()
            .unwrap()
            .contains("too many failed sign-ins from this account")
    );
    let ok: Vec<_> = log.iter().filter(|r| r.outcome == "ok").collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].principal_id.as_deref(), Some("usr_lotus_admin"));
    assert_eq!(ok[0].studio.as_deref(), Some("std_lotus"));
    assert_eq!(ok[0].client_addr.as_deref(), Some("127.0.0.1"));
    // Never the password.
    let all = serde_json::to_string(&log).unwrap();
    assert!(!all.contains("wrong-password") && !all.contains(OWNER.1));
    gw.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_back_off_per_address() {
    let gw = Gateway::start().await;
    let flow = Flow::register_with(&gw, browser_from("127.0.0.2")).await;
    let form = flow.sign_in_page(&gw).await;
    let before = sign_ins_upstream(&gw);
    // 20 failures, each on a different account (so no account limit applies).
    for i in 0..20 {
        let r = flow
            .sign_in(&form, &format!("guess{i}@example.com"), "wrong")
            .await;
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = flow.sign_in(&form, OWNER.0, OWNER.1).await;
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) <= 5);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins from your network.")
    );
    assert_eq!(sign_ins_upstream(&gw), before + 20);

    // Another address signs in to the same account.
    let other = Flow::register_with(&gw, browser_from("127.0.0.3")).await;
    let form = other.sign_in_page(&gw).await;
    assert_eq!(other.sign_in(&form, OWNER.0, OWNER.1).await.status(), 200);
    assert_eq!(sign_ins_upstream(&gw), before + 21);

    let log = rows(&gw, "oauth.sign_in").await;
    let from = |addr: &str, outcome: &str| {
        log.iter()
            .filter(|r| r.client_addr.as_deref() == Some(addr) && r.outcome == outcome)
            .count()
    };
    assert_eq!(from("127.0.0.2", "unauthenticated"), 20);
    assert_eq!(from("127.0.0.2", "rate_limited"), 1);
    assert_eq!(from("127.0.0.3", "ok"), 1);
    gw.stop().await;
}

/// `n` wrong-password sign-ins at once, each from its own address (127.0.1.x) on the e-mail
/// `email(i)`: their status, whether they carry `Retry-After`, and their page.
async fn at_once(
    gw: &Gateway,
    n: usize,
    email: impl Fn(usize) -> String,
) -> Vec<(u16, bool, String)> {
    let flow = Flow::register(gw).await;
    let (flow_id, csrf) = flow.sign_in_page(gw).await;
    let url = format!("{}/oauth/authorize/sign-in", flow.base);
    let attempts = (0..n).map(|i| {
        let (url, flow_id, csrf, email) = (url.clone(), flow_id.clone(), csrf.clone(), email(i));
        async move {
            let http = reqwest::Client::builder()
                .local_address(
                    format!("127.0.1.{}", i + 1)
                        .parse::<std::net::IpAddr>()
                        .unwrap(),
                )
                .build()
                .unwrap();
            let r = http
                .post(url)
                .header("Cookie", format!("flowgate_csrf={csrf}"))
                .form(&[
                    ("flow", flow_id.as_str()),
                    ("csrf", csrf.as_str()),
                    ("email", &email),
                    ("password", "wrong"),
                ])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            (status, retry, r.text().await.unwrap())
        }
    });
    futures::future::join_all(attempts).await
}

/// Forty sign-ins at once from forty addresses: the upstream never sees more than the bound
/// at the same moment; those that cannot start in time are told to retry.
#[tokio::test]
async fn password_checks_run_a_bounded_number_at_once() {
    let gw = Gateway::start().await;
    let before = sign_ins_upstream(&gw);
    let answers = at_once(&gw, 40, |i| format!("someone{i}@example.com")).await;
    let checked = answers.iter().filter(|(s, _, _)| *s == 401).count() as u64;
    for (status, retry, html) in &answers {
        match status {
            401 => {}
            429 => {
                assert!(retry);
                assert!(
                    html.contains("Many sign-ins are being checked right now. Try again in"),
                    "{html}"
                );
            }
            other => panic!("unexpected {other}: {html}"),
        }
    }
    let api = gw.running.studio_api.as_ref().unwrap();
    assert_eq!(api.sign_in_count(), before + checked);
    let peak = api.max_concurrent_sign_ins();
    assert!(
        (1..=4).contains(&peak),
        "{peak} sign-ins reached the upstream at once (the bound is 4)"
    );
    gw.stop().await;
}

/// Thirty guesses at one account at once, from thirty addresses: attempts that waited for a
/// check are limited again once they may start, so only the free failures and those already
/// running reach the upstream.
#[tokio::test]
async fn concurrent_guesses_at_one_account_stop_at_its_back_off() {
    let gw = Gateway::start().await;
    let before = sign_ins_upstream(&gw);
    let answers = at_once(&gw, 30, |_| OWNER.0.to_string()).await;
    let checked = sign_ins_upstream(&gw) - before;
    assert_eq!(
        checked,
        answers.iter().filter(|(s, _, _)| *s == 401).count() as u64
    );
    // 5 free failures, plus at most the 3 others running while the fifth was counted.
    assert!((5..=8).contains(&checked), "{checked} guesses were checked");
    for (status, retry, html) in &answers {
        assert!(
            *status == 401 || (*status == 429 && *retry),
            "{status}: {html}"
        );
    }
    gw.stop().await;
}

async fn register(http: &reqwest::Client, base: &str, name: &str) -> reqwest::Response {
    http.post(format!("{base}/oauth/register"))
        .json(&json!({"client_name": name, "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn registration_is_limited_per_address() {
    let gw = Gateway::start().await;
    let busy = browser_from("127.0.0.2");
    for i in 0..10 {
        assert_eq!(
            register(&busy, &gw.running.app.base_url, &format!("app {i}"))
                .await
                .status(),
            201
        );
    }
    for _ in 0..2 {
        let r = register(&busy, &gw.running.app.base_url, "one more").await;
        assert_eq!(r.status(), 429);
        assert!(retry_after(&r) >= 1);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("too many registrations from your address; try again in"),
            "{body}"
        );
    }
    // Everyone else still registers.
    assert_eq!(
        register(
            &browser_from("127.0.0.3"),
            &gw.running.app.base_url,
            "Claude"
        )
        .await
        .status(),
        201
    );
    let log = rows(&gw, "oauth.register").await;
    let count = |addr: &str, outcome: &str| {
        log.iter()
            .filter(|r| r.client_addr.as_deref() == Some(addr) && r.outcome == outcome)
            .count()
    };
    assert_eq!(count("127.0.0.2", "ok"), 10);
    assert_eq!(
        count("127.0.0.2", "rate_limited"),
        1,
        "refusals are coalesced"
    );
    assert_eq!(count("127.0.0.3", "ok"), 1);
    let claude = log
        .iter()
        .find(|r| r.principal_name.as_deref() == Some("Claude"))
        .unwrap();
    assert_eq!(claude.principal_kind.as_deref(), Some("client"));
    assert!(claude.principal_id.as_deref().unwrap().starts_with("fgc_"));
    gw.stop().await;
}

#[tokio::test]
async fn unused_registrations_expire_and_free_the_cap() {
    let gw = Gateway::start_with(|c| c.oauth_max_clients = 2).await;
    let grants = &gw.running.app.oauth.grants;
    // A: used (a grant was approved). B: never used.
    let used = Flow::register(&gw).await;
    used.approve(&gw, "classes:read", &["classes:read"]).await;
    assert_eq!(
        register(&browser(), &gw.running.app.base_url, "B")
            .await
            .status(),
        201
    );
    let full = register(&browser(), &gw.running.app.base_url, "C").await;
    assert_eq!(full.status(), 503);
    let refused = rows(&gw, "oauth.register").await;
    assert_eq!(refused[0].outcome, "denied");

    // A day later, B no longer counts against the cap…
    sqlx::query("UPDATE oauth_clients SET created_at = '2020-01-01T00:00:00.000Z'")
        .execute(&gw.sqlite().await)
        .await
        .unwrap();
    assert_eq!(grants.live_client_count().await.unwrap(), 1);
    assert_eq!(
        register(&browser(), &gw.running.app.base_url, "C")
            .await
            .status(),
        201
    );
    // …and housekeeping removes it; the used client stays.
    assert_eq!(grants.expire_unused_clients().await.unwrap(), 1);
    let names: Vec<String> = grants
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_name)
        .collect();
    assert_eq!(names, ["C", "Claude Desktop"]);
    assert_eq!(
        register(&browser(), &gw.running.app.base_url, "D")
            .await
            .status(),
        503
    );
    gw.stop().await;
}

#[tokio::test]
async fn client_names_that_could_spoof_the_consent_page_are_refused() {
    let gw = Gateway::start().await;
    let http = browser();
    for (name, code) in [
        ("Claude\u{202E}potkseD", "U+202E"),
        ("Claude\u{2066}x\u{2069}", "U+2066"),
        ("Claude\u{200F}", "U+200F"),
        ("Claude\u{061C}", "U+061C"),
        ("Claude\u{0007}", "U+0007"),
        ("Claude\nDesktop", "U+000A"),
    ] {
        let r = register(&http, &gw.running.app.base_url, name).await;
        assert_eq!(r.status(), 400, "{name:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata");
        assert_eq!(
            body["error_description"],
            format!(
                "client_name contains {code}: control characters and bidirectional formatting characters are not allowed, because they could disguise the name shown on the consent page"
            )
        );
    }
    assert_eq!(
        register(&http, &gw.running.app.base_url, "Zoë's Café — Планировщик")
            .await
            .status(),
        201
    );
    let invalid = rows(&gw, "oauth.register").await;
    assert_eq!(invalid.iter().filter(|r| r.outcome == "invalid").count(), 6);
    gw.stop().await;

    // The same rule for client metadata documents.
    let (client_id, server) = serve_metadata("Cursor\u{202E}").await;
    let gw = Gateway::start_with(|c| c.oauth_allow_private_client_metadata = true).await;
    let url = authorize_url_for(&gw.running.app.base_url, &client_id);
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("invalid_client_metadata: the document&#39;s client_name contains U+202E"),
        "{html}"
    );
    gw.stop().await;
    server.abort();
}

/// The gateway's figures while flooded, printed for the README.
fn vm(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// A flood of anonymous sign-ins with wrong passwords, from 300 connections on 300 addresses
/// for 15 s (up to 40 s on a busy machine, until three MCP calls were made during it), against
/// the real `flowgate serve` with the embedded API: the process's peak memory stays under
/// 400 MB and every MCP call made with the demo key during the flood is answered.
///
/// `cargo test --test it abuse::a_sign_in_flood -- --nocapture` prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_flood_keeps_memory_bounded_and_mcp_served() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncBufReadExt, BufReader};

    const CONNECTIONS: usize = 300;
    const FLOOD: Duration = Duration::from_secs(15);
    /// On a machine busy with other tests the flood goes on until 3 MCP calls were made in it,
    /// but never longer than this.
    const LONGEST: Duration = Duration::from_secs(40);
    const MAX_PER_CONNECTION: usize = 2_000;

    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_flowgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("FLOWGATE_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mcp_url = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("serve printed its URL");
            if let Some(url) = line.strip_prefix("flowgate is serving MCP at ") {
                return url.trim().to_string();
            }
        }
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let base = mcp_url.trim_end_matches("/mcp").to_string();
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo-keys.json")).unwrap())
            .unwrap();
    let pro = keys["pro"].as_str().unwrap().to_string();
    let rss_before = vm(pid, "VmRSS");

    // Sign-in forms to flood: a registered client and a few authorizations in progress.
    let http = browser();
    let reg: Value = register(&http, &base, "flood").await.json().await.unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_string();
    let mut forms = Vec::new();
    for _ in 0..8 {
        let url = authorize_url_for(&base, &client_id);
        let html = http.get(url).send().await.unwrap().text().await.unwrap();
        forms.push((
            crate::oauth::hidden(&html, "flow"),
            crate::oauth::hidden(&html, "csrf"),
        ));
    }

    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = (0..CONNECTIONS).map(|i| {
        let stop = stop.clone();
        let (flow, csrf) = forms[i % forms.len()].clone();
        let url = format!("{base}/oauth/authorize/sign-in");
        tokio::spawn(async move {
            let ip = format!("127.2.{}.{}", i / 200, i % 200 + 1);
            let http = reqwest::Client::builder()
                .local_address(ip.parse::<std::net::IpAddr>().unwrap())
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            for n in 0..MAX_PER_CONNECTION {
                if stop.load(std::sync::atomic::Ordering::Relaxed) || started.elapsed() >= LONGEST {
                    break;
                }
                let r = http
                    .post(&url)
                    .header("Cookie", format!("flowgate_csrf={csrf}"))
                    .form(&[
                        ("flow", flow.as_str()),
                        ("csrf", csrf.as_str()),
                        ("email", &format!("attacker{i}-{n}@example.com")),
                        ("password", "not-the-password"),
                    ])
                    .send()
                    .await;
                let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                *statuses.entry(status).or_default() += 1;
            }
            statuses
        })
    });
    let flood: Vec<_> = flood.collect();

    // Meanwhile, an assistant works with the demo key, and memory is sampled.
    let client = crate::harness::connect(&mcp_url, &pro).await;
    let mut latencies = Vec::new();
    while (started.elapsed() < FLOOD || latencies.len() < 3) && started.elapsed() < LONGEST {
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            crate::harness::call(&client, "list_classes", json!({"limit": 5})),
        )
        .await
        .expect("an MCP call was answered within 10 s during the flood");
        crate::harness::ok(r, "list_classes");
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let flooded = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        latencies.len() >= 3,
        "only {} MCP calls were served in {LONGEST:?} of flood",
        latencies.len()
    );
    latencies.sort();
    let (calls, median, slowest) = (
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for task in flood {
        for (s, n) in task.await.unwrap() {
            *statuses.entry(s).or_default() += n;
        }
    }
    let hwm = vm(pid, "VmHWM");
    println!(
        "sign-in flood: {CONNECTIONS} connections for {flooded:.1?}: answers by status \
         {statuses:?}; \
         {calls} MCP calls served during it (median {median:?}, slowest {slowest:?}); gateway \
         RSS {} MB before, peak (VmHWM) {} MB",
        rss_before / 1024,
        hwm / 1024
    );
    assert!(hwm < 400 * 1024, "peak RSS {} MB", hwm / 1024);
    // Every call made during the flood succeeded (each was checked above), and at once after
    // it the gateway answers at its usual speed.
    let t = Instant::now();
    let r = crate::harness::call(&client, "list_classes", json!({"limit": 5})).await;
    crate::harness::ok(r, "list_classes");
    println!("first MCP call after the flood: {:?}", t.elapsed());
    client.cancel().await.unwrap();
    assert!(
        statuses.keys().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
    child.kill().await.unwrap();
}

/// A flood of bad credentials from one address is answered every time, but recorded only up to
/// a rate: then one row says recording stopped, so the audit log cannot be grown at will.
#[tokio::test]
async fn refused_credentials_are_recorded_only_up_to_a_rate_per_address() {
    let gw = Gateway::start().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for (n, token) in (0..40).map(|n| (n, format!("flow_sk_guess{n:04}"))) {
        let r = browser_from("127.0.2.1")
            .post(gw.url())
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .json(&ping)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {n}");
    }
    let r = browser_from("127.0.2.2")
        .post(gw.url())
        .bearer_auth("flow_sk_elsewhere")
        .header("Accept", "application/json, text/event-stream")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let log = audit_log(&gw, Filter::default()).await;
    let from = |addr: &str, outcome: &str| {
        log.iter()
            .filter(|r| r.client_addr.as_deref() == Some(addr) && r.outcome == outcome)
            .count()
    };
    assert_eq!(
        from("127.0.2.1", "unauthenticated"),
        flowgate::oauth::REJECTED_AUDIT_BURST as usize
    );
    assert_eq!(from("127.0.2.1", "rate_limited"), 1);
    let stopped = log
        .iter()
        .find(|r| r.client_addr.as_deref() == Some("127.0.2.1") && r.outcome == "rate_limited")
        .unwrap();
    assert!(
        stopped
            .message
            .as_deref()
            .unwrap()
            .starts_with("more refused credentials from this address than are recorded"),
        "{stopped:?}"
    );
    assert_eq!(
        from("127.0.2.2", "unauthenticated"),
        1,
        "another address is recorded"
    );
    gw.stop().await;
}

/// Sign-in flows are held in a bounded cache for ten minutes: one address may start only so
/// many, so it cannot push other people's sign-ins in progress out.
#[tokio::test]
async fn sign_in_flows_started_from_one_address_are_limited() {
    let gw = Gateway::start().await;
    let flow = Flow::register_with(&gw, browser_from("127.0.2.3")).await;
    let url = crate::oauth::authorize_url_for(&flow.base, &flow.client_id);
    let burst = flowgate::oauth::FLOW_BURST as usize;
    for n in 0..burst {
        let r = browser_from("127.0.2.3")
            .get(url.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "flow {n}");
    }
    let r = browser_from("127.0.2.3")
        .get(url.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=10).contains(&wait), "{wait}");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Too many sign-ins were started from your network"),
    );
    let r = browser_from("127.0.2.4").get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "another address still starts a sign-in");
    gw.stop().await;
}
