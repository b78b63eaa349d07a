//! The audit log stays honest and small: no `sensitive` value in a stored record (arguments or
//! message), a few KB per record whatever the caller sends, and private files on disk.

use serde_json::{Value, json};

use flowgate::tool::args::Validator;

use crate::harness::{Gateway, call, ok, text};

/// The same rules on a plain and on a `sensitive` field: only the plain one quotes the value.
#[test]
fn problems_of_sensitive_fields_do_not_quote_the_value() {
    let field = serde_json::json!({
        "type": "object", "additionalProperties": false,
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]+$"},
            "level": {"type": "string", "enum": ["low", "high"]},
            "email": {"type": "string", "format": "email"},
            "pin": {"type": "integer", "maximum": 9999},
        },
    });
    let mut args = serde_json::json!({
        "code": "hidden-1", "level": "hidden-2", "email": "hidden-3", "pin": 123456,
    });
    let plain: Vec<String> = Validator::compile(&field, &[])
        .unwrap()
        .validate(&mut args.clone())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        plain,
        [
            r#"`code`: must match the pattern ^[A-Z]+$, got "hidden-1""#,
            r#"`level`: must be one of `low`, `high`, got "hidden-2""#,
            r#"`email`: must be an email address, got "hidden-3""#,
            "`pin`: must be at most 9999, got 123456",
        ]
    );
    let secret: Vec<String> = Validator::compile(&field, &["code", "level", "email", "pin"])
        .unwrap()
        .validate(&mut args)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        secret,
        [
            "`code`: must match the pattern ^[A-Z]+$",
            "`level`: must be one of `low`, `high`",
            "`email`: must be an email address",
            "`pin`: must be at most 9999",
        ]
    );
}

/// Every record of the gateway, newest first.
async fn records(gw: &Gateway) -> Vec<flowgate::audit::Record> {
    gw.running
        .app
        .audit
        .query(&flowgate::audit::Filter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sensitive_value_reaches_neither_the_stored_arguments_nor_the_stored_message() {
    let gw = Gateway::start().await;
    let pro = gw.client(&gw.pro_key()).await;
    let email = "Quinn.Hidden-Address@Example.com";
    let note = "Your door code is 4711-8812";
    let invite = json!({"email": email, "name": "Quinn Hidden", "message": note});
    ok(
        call(&pro, "invite_member", invite.clone()).await,
        "invite_member",
    );
    // The Management API refuses the second invitation with a message that quotes the address
    // (lower-cased): the caller, who sent it, sees it ...
    let again = call(&pro, "invite_member", invite).await;
    assert_eq!(again.is_error, Some(true));
    assert!(
        text(&again)
            .contains("a member with e-mail quinn.hidden-address@example.com already exists"),
        "{}",
        text(&again)
    );
    // ... and a value that fails validation is not quoted at all.
    let invalid = call(
        &pro,
        "invite_member",
        json!({"email": "quinn-at-example-dot-com", "name": "Quinn Hidden"}),
    )
    .await;
    assert_eq!(
        text(&invalid),
        "The arguments for invite_member are not valid, so nothing was changed. Fix this:\n- `email`: must be an email address"
    );

    let all = records(&gw).await;
    let invites: Vec<_> = all
        .iter()
        .filter(|r| r.tool.as_deref() == Some("invite_member"))
        .collect();
    assert_eq!(invites.len(), 3, "{all:#?}");
    let refused = invites
        .iter()
        .find(|r| r.outcome == "upstream_error")
        .unwrap();
    let message = refused.message.as_deref().unwrap();
    assert!(
        message.contains("a member with e-mail [redacted] already exists"),
        "{message}"
    );
    assert_eq!(refused.upstream_status, Some(409));
    for r in &invites {
        let stored = serde_json::to_string(r).unwrap().to_lowercase();
        for secret in [email, note, "quinn-at-example-dot-com"] {
            assert!(
                !stored.contains(&secret.to_lowercase()),
                "{secret} is in {stored}"
            );
        }
        let args = r.arguments.as_ref().unwrap();
        assert_eq!(args["email"], "[redacted]");
        assert_eq!(args["name"], "Quinn Hidden", "other fields are kept");
    }
    pro.cancel().await.unwrap();
    gw.stop().await;
}

/// The stored size of one record, as SQLite counts it.
async fn stored_bytes(gw: &Gateway, seq: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT length(CAST(request_id AS BLOB)) + length(CAST(coalesce(tool, '') AS BLOB))
              + length(CAST(coalesce(arguments, '') AS BLOB))
              + length(CAST(coalesce(message, '') AS BLOB))
              + length(CAST(coalesce(principal_name, '') AS BLOB))
         FROM audit_log WHERE seq = ?",
    )
    .bind(seq)
    .fetch_one(&gw.sqlite().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_refused_call_with_a_huge_body_costs_a_few_kb_of_audit() {
    let gw = Gateway::start().await;
    let pro = gw.client(&gw.pro_key()).await;
    let free = gw.client(&gw.free_key()).await;
    // About 900 KB, under the 1 MiB body limit; the pattern error quotes it back to the caller.
    let huge = "Ä".repeat(450_000);
    let invalid = call(
        &pro,
        "create_coupon",
        json!({"code": huge, "percent_off": 10}),
    )
    .await;
    assert_eq!(invalid.is_error, Some(true));
    assert!(text(&invalid).len() > 900_000, "the caller sees its value");
    let denied = call(
        &free,
        "create_program",
        json!({"name": "Big", "description": huge}),
    )
    .await;
    assert!(
        text(&denied).ends_with("Nothing was changed."),
        "{}",
        text(&denied)
    );

    let all = records(&gw).await;
    for (tool, outcome) in [("create_coupon", "invalid"), ("create_program", "denied")] {
        let r = all
            .iter()
            .find(|r| r.tool.as_deref() == Some(tool) && r.outcome == outcome)
            .unwrap_or_else(|| panic!("no {outcome} record for {tool}"));
        let bytes = stored_bytes(&gw, r.seq).await;
        assert!(bytes < 6 * 1024, "{tool}: {bytes} bytes stored");
        // The arguments are still JSON, and say what was cut.
        let args: &Value = r.arguments.as_ref().unwrap();
        assert_eq!(args["[truncated]"], true, "{args}");
        assert!(args["bytes"].as_u64().unwrap() > 900_000, "{args}");
        assert!(
            args["preview"].as_str().unwrap().starts_with("{\""),
            "{args}"
        );
        let message = r.message.as_deref().unwrap();
        assert!(
            message.len() <= flowgate::audit::MAX_MESSAGE_BYTES,
            "{message}"
        );
        if outcome == "invalid" {
            assert!(message.starts_with("The arguments for create_coupon are not valid"));
            assert!(message.ends_with("… [truncated]"), "{message}");
        }
    }
    pro.cancel().await.unwrap();
    free.cancel().await.unwrap();
    gw.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_every_store_file_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let gw = Gateway::start_with(|c| c.data_dir = c.data_dir.join("fresh")).await;
    let dir = gw.running.app.config.data_dir.clone();
    // A write, so both databases have their -wal and -shm.
    let pro = gw.client(&gw.pro_key()).await;
    ok(
        call(&pro, "create_program", json!({"name": "Private Practice"})).await,
        "create_program",
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(mode(&path), 0o600, "{name}");
        seen.push(name);
    }
    seen.sort();
    for expected in [
        "demo-keys.json",
        "gateway.sqlite",
        "gateway.sqlite-revocations",
        "gateway.sqlite-shm",
        "gateway.sqlite-wal",
        "studio-api.sqlite",
        "studio-api.sqlite-shm",
        "studio-api.sqlite-wal",
    ] {
        assert!(seen.iter().any(|s| s == expected), "{expected} in {seen:?}");
    }
    pro.cancel().await.unwrap();
    gw.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn store_files_left_readable_by_others_are_made_private_at_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let open = std::fs::Permissions::from_mode(0o644);
    for name in ["gateway.sqlite", "studio-api.sqlite", "demo-keys.json"] {
        std::fs::write(dir.join(name), b"").unwrap();
        std::fs::set_permissions(dir.join(name), open.clone()).unwrap();
    }
    let gw = Gateway::start_with(|c| c.data_dir = dir.clone()).await;
    for name in ["gateway.sqlite", "studio-api.sqlite", "demo-keys.json"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    gw.stop().await;
}
