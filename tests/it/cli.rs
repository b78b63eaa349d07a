//! The `flowgate` binary as a newcomer runs it: `serve` prints demo keys and serves `/mcp`;
//! `keys`, `policy` and `audit` work from the command line.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{call, connect, ok};

const BIN: &str = env!("CARGO_BIN_EXE_flowgate");

fn flowgate(data_dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("FLOWGATE_LISTEN")
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Starts `flowgate serve` and reads its banner up to the last line we need.
async fn serve(data_dir: &Path, until: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.contains(until) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("serve printed its banner");
    // Keep reading: a closed pipe would make the rest of the banner fail to print and end serve.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, banner)
}

fn url_of(banner: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.strip_prefix("flowgate is serving MCP at "))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test]
async fn serve_prints_demo_keys_once_and_serves_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, banner) = serve(dir.path(), "--method tools/list").await;
    let url = url_of(&banner);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{banner}"
    );
    let pro = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("Lotus Flow Yoga (Pro):"))
        .unwrap()
        .trim()
        .to_string();
    assert!(pro.starts_with("flow_sk_"), "{banner}");
    assert!(banner.contains("\"mcp-remote\""), "{banner}");
    // The Claude Desktop snippet is valid JSON, with the secret in `env`, never in `args`.
    let snippet = banner
        .split_once("claude_desktop_config.json, then restart Claude Desktop):")
        .and_then(|(_, rest)| rest.split_once("MCP Inspector:"))
        .map(|(json, _)| json.trim())
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(snippet).unwrap();
    let server = &config["mcpServers"]["flowgate"];
    assert!(
        server["args"].as_array().unwrap().iter().all(|a| !a
            .as_str()
            .unwrap()
            .contains("flow_sk_")
            && !a.as_str().unwrap().contains(' ')),
        "{snippet}"
    );
    assert_eq!(server["env"]["AUTH_HEADER"], format!("Bearer {pro}"));
    let client = connect(&url, &pro).await;
    let me = ok(call(&client, "whoami", json!({})).await, "whoami");
    assert_eq!(me["studio"]["name"], "Lotus Flow Yoga");
    client.cancel().await.unwrap();
    child.kill().await.unwrap();

    // The demo keys stay retrievable (only their hashes are in the store) ...
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo-keys.json")).unwrap())
            .unwrap();
    assert_eq!(saved["pro"], pro.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("demo-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // ... and a second start says where they are instead of printing them again, and they work.
    let (mut child, banner) = serve(dir.path(), "demo keys are in").await;
    assert!(!banner.contains(&pro), "{banner}");
    let client = connect(&url_of(&banner), &pro).await;
    ok(call(&client, "whoami", json!({})).await, "whoami");
    client.cancel().await.unwrap();
    child.kill().await.unwrap();
}

#[test]
fn keys_are_created_listed_rotated_and_revoked_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = flowgate(
        dir.path(),
        &[
            "keys",
            "create",
            "--studio",
            "std_lotus",
            "--scopes",
            "classes:read,coupons:write",
            "--name",
            "Front desk",
            "--expires-in",
            "30d",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let id = text
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    assert!(id.starts_with("key_"), "{text}");
    assert!(text.contains("flow_sk_"), "{text}");
    assert!(
        text.contains("Scopes: classes:read, coupons:write"),
        "{text}"
    );

    let list = stdout(&flowgate(dir.path(), &["keys", "list", "--json"]));
    let row: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!(row["id"], id.as_str());
    assert_eq!(row["name"], "Front desk");
    assert!(row["expires_at"].is_string());
    assert!(
        !list.contains("flow_sk_") || !list.contains(&text[text.find("flow_sk_").unwrap()..][..40])
    );

    let rotated = flowgate(dir.path(), &["keys", "rotate", &id]);
    assert!(rotated.status.success());
    assert!(stdout(&rotated).contains("the old secret no longer works"));

    let revoked = flowgate(dir.path(), &["keys", "revoke", &id]);
    assert!(revoked.status.success());
    let again = flowgate(dir.path(), &["keys", "revoke", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is already revoked"));

    let bad = flowgate(
        dir.path(),
        &[
            "keys",
            "create",
            "--studio",
            "std_lotus",
            "--scopes",
            "clases:read",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope `clases:read`"));
}

/// `keys create --count`: keys for a fleet, all or none, each with its own working secret.
#[tokio::test]
async fn keys_are_created_in_bulk_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let create = |count: &str| {
        flowgate(
            dir.path(),
            &[
                "keys",
                "create",
                "--studio",
                "std_lotus",
                "--scopes",
                "read",
                "--name",
                "kiosk",
                "--expires-in",
                "30d",
                "--count",
                count,
                "--json",
            ],
        )
    };
    for refused in ["0", "10001", "many"] {
        let out = create(refused);
        assert!(!out.status.success(), "--count {refused}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--count"), "{err}");
    }
    let out = create("3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(made.len(), 3, "{}", stdout(&out));

    let store = flowgate::store::Store::open(&flowgate::store::Location::Sqlite(
        dir.path().join("gateway.sqlite"),
    ))
    .await
    .unwrap();
    let keys = flowgate::identity::keys::Keys::new(store.clone());
    let listed = keys
        .list(flowgate::store::Within::AllStudios)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "nothing but the three keys");
    let read = flowgate::identity::keys::parse_scopes("read").unwrap();
    for (i, k) in made.iter().enumerate() {
        assert_eq!(k["name"], format!("kiosk-{}", i + 1));
        assert_eq!(k["studio"], "std_lotus");
        assert!(k["expires_at"].is_string(), "{k}");
        let secret = k["secret"].as_str().unwrap();
        let a = keys.authenticate(secret).await.unwrap().unwrap();
        assert_eq!(a.principal.id, k["id"].as_str().unwrap());
        assert_eq!(a.principal.scopes, read);
        assert!(a.expires_at.is_some());
    }
    store.close().await.unwrap();
}

#[test]
fn policy_check_accepts_the_shipped_set_and_names_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let ok = flowgate(dir.path(), &["policy", "check"]);
    assert!(ok.status.success());
    assert!(
        stdout(&ok).starts_with("The policy set is valid:"),
        "{}",
        stdout(&ok)
    );

    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("broken.cedar"),
        "@id(\"bad\")\n@reason(\"no\")\nforbid (principal, action == Flow::Action::\"refund_order\", resource);\n",
    )
    .unwrap();
    let bad = flowgate(
        dir.path(),
        &["policy", "check", policies.path().to_str().unwrap()],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unrecognized action `Flow::Action::\"refund_order\"`"),
        "{err}"
    );
}

#[test]
fn policy_explain_prints_the_decision_and_the_deciding_policy() {
    let dir = tempfile::tempdir().unwrap();
    let out = flowgate(
        dir.path(),
        &[
            "keys",
            "create",
            "--studio",
            "std_lotus",
            "--scopes",
            "coupons:write",
        ],
    );
    let id = stdout(&out)
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    let deny = flowgate(
        dir.path(),
        &[
            "policy",
            "explain",
            "--key",
            &id,
            "--tool",
            "create_coupon",
            "--tier",
            "pro",
            "--args",
            r#"{"code":"BIG","percent_off":80}"#,
        ],
    );
    assert!(
        deny.status.success(),
        "{}",
        String::from_utf8_lossy(&deny.stderr)
    );
    let text = stdout(&deny);
    assert!(
        text.contains("DENY, decided by: coupons.max-50-percent"),
        "{text}"
    );
    let allow = flowgate(
        dir.path(),
        &[
            "policy",
            "explain",
            "--key",
            &id,
            "--tool",
            "create_coupon",
            "--tier",
            "pro",
            "--args",
            r#"{"code":"SMALL","percent_off":20}"#,
        ],
    );
    assert!(
        stdout(&allow).contains("ALLOW, permitted by: tenant.own-studio"),
        "{}",
        stdout(&allow)
    );
}

/// The gateway remembers accepted credentials; `flowgate keys rotate` and `keys revoke`, run in
/// another process against the same data directory, still take effect on the very next request.
#[tokio::test]
async fn a_key_rotated_or_revoked_by_another_process_is_refused_on_its_next_request() {
    let gw = crate::harness::Gateway::start().await;
    let data_dir = gw.running.app.config.data_dir.clone();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "revocation test", "version": "1"}}});
    let status = |secret: String| {
        let (url, body) = (gw.url(), initialize.clone());
        async move {
            crate::harness::post_mcp(&url, &secret, &body)
                .await
                .status()
        }
    };

    for (verb, then) in [("rotate", "rotated"), ("revoke", "revoked")] {
        let key = gw.key("std_lotus", &["classes:read"]).await;
        // Used twice: the second request is answered from memory.
        assert_eq!(status(key.secret.clone()).await, 200);
        assert_eq!(status(key.secret.clone()).await, 200);
        let out = tokio::task::spawn_blocking({
            let (dir, id) = (data_dir.clone(), key.info.id.clone());
            move || flowgate(&dir, &["keys", verb, &id])
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            status(key.secret.clone()).await,
            401,
            "a key {then} by another process was still accepted"
        );
    }
    let hits = gw.running.app.metrics.encode();
    assert!(
        hits.contains(r#"flowgate_cache_requests_total{cache="credentials",result="hit"}"#),
        "{hits}"
    );
    gw.stop().await;
}

/// Raw terminal controls in CLI output: escape, carriage return, DEL, C1 controls, and the
/// bidirectional overrides and isolates.
fn assert_no_terminal_controls(out: &str) {
    let bad: Vec<char> = out
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(bad.is_empty(), "raw controls {bad:?} in {out:?}");
}

#[tokio::test]
async fn caller_controlled_text_cannot_drive_the_operators_terminal() {
    // A key name that would clear the screen, forge a second row and reverse the line.
    let evil = "Front desk\x1b[2J\nkey_forged std_lotus\r\u{9b}31m\u{202e}gnp.exe";
    let gw = crate::harness::Gateway::start().await;
    let dir = gw.running.app.config.data_dir.clone();
    let created = flowgate(
        &dir,
        &[
            "keys",
            "create",
            "--studio",
            "std_lotus",
            "--scopes",
            "read",
            "--name",
            evil,
        ],
    );
    assert!(created.status.success());
    let table = stdout(&flowgate(&dir, &["keys", "list", "--studio", "std_lotus"]));
    assert_no_terminal_controls(&table);
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("Front desk")).collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(
        rows[0]
            .contains(r"Front desk\u{1b}[2J\u{a}key_forged std_lotus\u{d}\u{9b}31m\u{202e}gnp.exe"),
        "{table}"
    );
    assert!(!table.contains("\nkey_forged"), "{table}");
    let json = stdout(&flowgate(
        &dir,
        &["keys", "list", "--studio", "std_lotus", "--json"],
    ));
    assert_no_terminal_controls(&json);
    let names: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].clone())
        .collect();
    assert!(
        names.contains(&json!(evil)),
        "the JSON still holds the name: {json}"
    );

    // A tool name is the caller's too: it reaches the audit log as it was sent.
    let client = gw.client(&gw.pro_key()).await;
    let unknown = client
        .call_tool(rmcp::model::CallToolRequestParams::new(
            "whoami\x1b[2J\n2026-01-01T00:00:00.000Z std_lotus key_forged create_coupon ok",
        ))
        .await;
    assert!(unknown.is_err(), "an unknown tool is a JSON-RPC error");
    let audit = stdout(&flowgate(&dir, &["audit", "--studio", "std_lotus"]));
    assert_no_terminal_controls(&audit);
    assert_eq!(
        audit.lines().count(),
        2,
        "the header and one record: {audit}"
    );
    assert!(
        audit.contains(r"whoami\u{1b}[2J\u{a}2026-01-01T00:00:00.000Z"),
        "{audit}"
    );
    let audit_json = stdout(&flowgate(&dir, &["audit", "--json"]));
    assert_no_terminal_controls(&audit_json);
    let record: serde_json::Value = serde_json::from_str(audit_json.trim()).unwrap();
    assert!(
        record["tool"]
            .as_str()
            .unwrap()
            .starts_with("whoami\x1b[2J\n")
    );

    // A client registered before names were checked at registration is still shown safely.
    sqlx::query(
        "INSERT INTO oauth_clients (client_id, client_name, redirect_uris, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind("fgc_legacy")
    .bind(evil)
    .bind(r#"["http://127.0.0.1:9/cb\u001b[2J"]"#)
    .bind("2026-01-01T00:00:00.000Z")
    .execute(&gw.sqlite().await)
    .await
    .unwrap();
    let clients = stdout(&flowgate(&dir, &["clients", "list"]));
    assert_no_terminal_controls(&clients);
    assert!(
        clients.contains(r"Front desk\u{1b}[2J\u{a}key_forged"),
        "{clients}"
    );
    assert_eq!(
        clients.lines().count(),
        2,
        "the header and one client: {clients}"
    );
    let clients_json = stdout(&flowgate(&dir, &["clients", "list", "--json"]));
    assert_no_terminal_controls(&clients_json);
    client.cancel().await.unwrap();
    gw.stop().await;
}
