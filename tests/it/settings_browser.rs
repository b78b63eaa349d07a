//! The settings pages in a real browser (Debian's chromium driven by playwright-core, one step
//! at a time by `tests/browser/settings.mjs`), with a real MCP client (rmcp's) using what the
//! pages made, on SQLite and on PostgreSQL. Screenshots of every page land in
//! `target/tmp/settings-<backend>/` (the README's come from there).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::harness::{Gateway, call, connect, ok};
use crate::oauth::{Flow, status_with};
use crate::settings::{OWNER, STAFF};

/// The browser, waiting for its next step.
struct Driver {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
    /// `None` when chromium or playwright-core is missing outside CI.
    async fn start(base: &str, shots: &Path) -> Option<Self> {
        let root = crate::harness::crate_dir().join("tests/browser");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !(root.join("node_modules/playwright-core").exists() && Path::new(&chromium).exists()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the browser tests: install chromium and run `npm ci --prefix tests/browser` (.ci/run does)"
            );
            eprintln!(
                "skipped: no chromium or playwright-core (run `npm ci --prefix tests/browser`)"
            );
            return None;
        }
        let _ = std::fs::remove_dir_all(shots);
        std::fs::create_dir_all(shots).unwrap();
        let mut child = tokio::process::Command::new("node")
            .arg(root.join("settings.mjs"))
            .arg(base)
            .arg(shots)
            .env("CHROMIUM", &chromium)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Some(Self {
            _child: child,
            stdin,
            lines,
        })
    }

    /// Runs one step; its answer, which must be a success without a script error or a
    /// Content-Security-Policy violation on the page.
    async fn step(&mut self, command: &str) -> Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let line = tokio::time::timeout(Duration::from_secs(90), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("`{command}` did not finish within 90 s"))
            .unwrap()
            .unwrap_or_else(|| panic!("the browser exited during `{command}`"));
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["ok"], true, "`{command}`: {answer}");
        assert_eq!(answer["problems"], json!([]), "`{command}`: {answer}");
        answer
    }

    /// Checks the open page with axe-core (WCAG 2.1 A and AA): no violation.
    async fn accessible(&mut self) {
        let a = self.step("a11y").await;
        assert_eq!(a["violations"], json!([]), "{}: {a}", a["path"]);
    }

    async fn quit(mut self) {
        let _ = self.stdin.write_all(b"quit\n").await;
    }
}

fn shots(backend: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("settings-{backend}"))
}

/// Whether a tool call was refused (a JSON-RPC error or an error result).
async fn refused(client: &crate::harness::Client, tool: &str) -> bool {
    match client
        .call_tool(CallToolRequestParams::new(tool.to_string()))
        .await
    {
        Err(_) => true,
        Ok(r) => r.is_error == Some(true),
    }
}

/// Everything a studio owner does on the pages, in Chromium: sign in; create a key with two
/// resources' scopes and copy its secret; a real MCP client uses it (and is refused what it was
/// not given); the call is on the audit log page; rotate (the old secret is refused at once);
/// revoke (the connected client's next request is refused); disconnect an OAuth app (its token is
/// refused); sign out. Then a staff member: key management refused, the pages they may see.
/// Every page passes axe-core's WCAG 2.1 A and AA checks, and keyboard focus is visible.
#[tokio::test]
async fn the_settings_pages_work_in_a_real_browser() {
    let mut backends = vec![("sqlite", None)];
    if let Some(url) = crate::postgres::database().await {
        backends.push(("postgres", Some(url)));
    }
    for (backend, db) in backends {
        let gw = Gateway::start_with(move |c| c.database_url = db).await;
        let base = gw.running.app.base_url.clone();
        let mcp = gw.url();
        let oauth_token = Flow::register(&gw).await.connect(&gw).await;
        let shots = shots(backend);
        let Some(mut browser) = Driver::start(&base, &shots).await else {
            return;
        };

        let s = browser
            .step(&format!(
                "sign-in {} {} /settings/developer",
                OWNER.0, OWNER.1
            ))
            .await;
        assert_eq!(s["form"], "/settings/sign-in", "{s}");
        assert_eq!(s["landed"], "/settings/developer", "{s}");
        browser.accessible().await;
        // Keyboard order: the header's links come first, and focus is visible.
        let focused = browser.step("tab 1").await;
        assert_eq!(
            (focused["tag"].as_str(), focused["text"].as_str()),
            (Some("a"), Some("Developer")),
            "{focused}"
        );
        assert_eq!(focused["outline"], true, "no visible focus: {focused}");

        // A key for two resources: classes (view) and bookings (view & change).
        let made = browser
            .step("create Nightly-report classes=read bookings=write")
            .await;
        let secret = made["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("flow_sk_"), "{made}");
        assert_eq!(made["copied"], secret, "the copy button copies the secret");
        assert!(
            made["warning"]
                .as_str()
                .unwrap()
                .contains("shown only once")
        );
        assert_eq!(made["a11y"], json!([]), "the secret page: {made}");
        let key_id = made["row"]["id"].as_str().unwrap().to_string();
        let cells = made["row"]["cells"].to_string();
        for shown in [
            "Nightly-report",
            "Bookings: view & change",
            "Classes: view",
            "Active",
        ] {
            assert!(cells.contains(shown), "{shown} not in {cells}");
        }
        assert!(!cells.contains(&secret), "the list shows the secret");
        let keys = gw
            .running
            .app
            .keys
            .list(flowgate::store::Within::Studio("std_lotus"))
            .await
            .unwrap();
        let key = keys.iter().find(|k| k.id == key_id).unwrap();
        assert_eq!(
            key.scopes,
            ["bookings:read", "bookings:write", "classes:read"]
        );

        // A real MCP client with the key: what it was given works, the rest is refused.
        let client = connect(&mcp, &secret).await;
        ok(
            call(&client, "list_classes", json!({})).await,
            "list_classes",
        );
        assert!(refused(&client, "list_members").await);
        client.cancel().await.unwrap();

        // Its calls on the audit log page, found with the page's filters.
        let found = browser.step(&format!("filter principal={key_id}")).await;
        let rows = found["rows"].to_string();
        assert!(
            rows.contains("list_classes") && rows.contains("list_members"),
            "{found}"
        );
        assert!(
            !rows.contains("Claude Desktop") && !rows.contains("settings."),
            "the key filter let others through: {found}"
        );
        assert!(
            found["summary"].as_str().unwrap().starts_with("2 calls"),
            "{found}"
        );
        let found = browser
            .step(&format!("filter principal={key_id} outcome=denied"))
            .await;
        let rows = found["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{found}");
        assert!(
            rows[0].as_str().unwrap().contains("list_members"),
            "{found}"
        );
        let opened = found["opened"].as_str().unwrap();
        assert!(
            opened.contains("Decision") && opened.contains("scope.members:read"),
            "{opened}"
        );
        let found = browser.step("filter tool=settings.key_create").await;
        let rows = found["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{found}");
        assert!(
            rows[0].as_str().unwrap().contains("Maya Chen")
                || rows[0].as_str().unwrap().contains(OWNER.0),
            "{found}"
        );
        assert!(
            found["opened"].as_str().unwrap().contains("Nightly-report"),
            "{found}"
        );

        // Rotate: a new secret, shown once; the old one is refused at once.
        let rotated = browser.step(&format!("rotate {key_id}")).await;
        assert_eq!(
            rotated["question"],
            "Rotate \u{201c}Nightly-report\u{201d}?"
        );
        let new_secret = rotated["secret"].as_str().unwrap().to_string();
        assert_ne!(new_secret, secret);
        assert_eq!(status_with(&gw, &secret).await, 401);
        let client = connect(&mcp, &new_secret).await;
        ok(
            call(&client, "list_classes", json!({})).await,
            "list_classes",
        );

        // Revoke: the connected client's next request is refused.
        browser
            .step(&format!("visit /settings/developer/keys/{key_id}/revoke"))
            .await;
        browser.accessible().await;
        let revoked = browser.step(&format!("revoke {key_id}")).await;
        assert_eq!(revoked["state"], "Revoked", "{revoked}");
        assert!(
            revoked["notice"]
                .as_str()
                .unwrap()
                .contains("next request is refused")
        );
        assert!(
            refused(&client, "list_classes").await,
            "a revoked key still works"
        );
        assert_eq!(status_with(&gw, &new_secret).await, 401);

        // Disconnect the OAuth app: its token is refused.
        assert_eq!(status_with(&gw, &oauth_token).await, 200);
        let gone = browser.step("disconnect Claude Desktop").await;
        assert!(
            gone["before"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("unverified"),
            "{gone}"
        );
        assert!(
            gone["after"].as_str().unwrap().contains("Disconnected"),
            "{gone}"
        );
        assert_eq!(status_with(&gw, &oauth_token).await, 401);

        let developer = browser
            .step("visit /settings/developer developer-after")
            .await;
        assert!(developer["text"].as_str().unwrap().contains("Revoked"));
        browser.accessible().await;
        browser
            .step("visit /settings/connected-apps connected-apps-after")
            .await;
        browser.accessible().await;
        browser.step("audit  audit-log").await;
        browser.accessible().await;
        let out = browser.step("sign-out").await;
        assert_eq!(out["landed"], "/settings/sign-in");
        assert_eq!(out["notice"], "You are signed out.");
        let after = browser.step("visit /settings/developer").await;
        assert_eq!(after["path"], "/settings/sign-in", "signed out, still in");
        browser.accessible().await;

        // Staff: the pages they may see, key management refused.
        let s = browser
            .step(&format!("sign-in {} {} /settings", STAFF.0, STAFF.1))
            .await;
        assert_eq!(s["landed"], "/settings/connected-apps", "{s}");
        let page = browser
            .step("visit /settings/developer developer-staff")
            .await;
        assert_eq!(page["status"], 403);
        assert_eq!(page["heading"], "Not available for your role");
        assert_eq!(page["links"], json!(["Connected apps", "Audit log"]));
        browser.accessible().await;
        let apps = browser.step("visit /settings/connected-apps").await;
        assert!(
            !apps["text"].as_str().unwrap().contains("Disconnect\n"),
            "{apps}"
        );
        browser.quit().await;

        // The screenshots are real renderings.
        for name in [
            "sign-in",
            "developer",
            "key-secret",
            "connected-apps",
            "audit-log",
            "developer-staff",
        ] {
            let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}");
            assert!(png.len() > 10_000, "{name}.png is suspiciously small");
        }
        gw.stop().await;
    }
}
