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
