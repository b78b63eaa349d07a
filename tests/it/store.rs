//! The store's own tests, run against **both** backends: SQLite in a temporary directory and a
//! fresh database on a real PostgreSQL (`postgres.rs`). What the gateway relies on: one
//! committed answer per group-committed write, studio-scoped operations, single-use codes and
//! refresh tokens, one winner among concurrent idempotency claims, time filters, and a revocation
//! mark that changes whichever process revokes.

use std::time::Duration;

use flowgate::audit::{Audit, Filter, Record};
use flowgate::idempotency::{Claim, Idempotency, Stored};
use flowgate::identity::Rejection;
use flowgate::identity::keys::{KeyError, Keys, parse_scopes};
use flowgate::oauth::grants::{Grants, NewGrant, TokenError};
use flowgate::store::writer::{Bind, Write};
use flowgate::store::{Location, Store, Timestamp, Within};
use serde_json::json;

use crate::postgres;

/// A store on each backend: SQLite always, PostgreSQL when installed (always in CI).
async fn backends() -> Vec<(&'static str, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&Location::Sqlite(dir.path().join("gateway.sqlite")))
        .await
        .unwrap();
    let mut out = vec![("sqlite", sqlite, Some(dir))];
    if let Some(url) = postgres::database().await {
        let pg = Store::open(&Location::Postgres(url)).await.unwrap();
        out.push(("postgres", pg, None));
    }
    out
}

fn record(n: usize, at: Timestamp) -> Record {
    Record {
        seq: 0,
        at,
        request_id: format!("req-{n}"),
        studio: Some(
            if n.is_multiple_of(2) {
                "std_a"
            } else {
                "std_b"
            }
            .into(),
        ),
        principal_kind: Some("key".into()),
        principal_id: Some("key_1".into()),
        principal_name: Some("k".into()),
        tool: Some("get_class".into()),
        arguments: Some(json!({ "n": n })),
        decision: Some("allow".into()),
        policies: vec!["p".into()],
        outcome: "ok".into(),
        message: None,
        upstream_status: Some(200),
        duration_ms: 1,
        client_addr: None,
    }
}

/// Appends made at the same moment are committed together, each caller gets the sequence
/// number of its own record, and a statement that fails in a batch fails alone.
#[tokio::test]
async fn group_commit_answers_each_write_and_fails_only_the_bad_one() {
    for (backend, store, _dir) in backends().await {
        let audit = Audit::new(store.clone());
        let appends = (0..40).map(|n| {
            let audit = audit.clone();
            async move { (n, audit.append(&record(n, Timestamp::now())).await.unwrap()) }
        });
        let seqs = futures::future::join_all(appends).await;
        let all = audit
            .query(&Filter {
                limit: 100,
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 40, "{backend}");
        for (n, seq) in seqs {
            let r = all.iter().find(|r| r.seq == seq).unwrap();
            assert_eq!(r.request_id, format!("req-{n}"), "{backend}: seq {seq}");
            assert_eq!(r.arguments, Some(json!({ "n": n })), "{backend}");
        }
        // A bad statement beside good writes, in one batch.
        let bad = store.write(Write::Execute {
            sql: "INSERT INTO missing_table (x) VALUES ($1)",
            binds: vec![Bind::Int(Some(1))],
        });
        let (r100, r101) = (record(100, Timestamp::now()), record(101, Timestamp::now()));
        let (bad, good, also) = tokio::join!(bad, audit.append(&r100), audit.append(&r101));
        assert!(
            bad.unwrap_err().to_string().contains("missing_table"),
            "{backend}"
        );
        assert!(good.unwrap() > 0 && also.unwrap() > 0, "{backend}");
        assert!(audit.healthy(), "{backend}");
        store.close().await.unwrap();
    }
}

/// Time filters compare instants, whatever offset the filter is written in; the stored time
/// keeps the millisecond.
#[tokio::test]
async fn audit_time_filters_compare_instants() {
    for (backend, store, _dir) in backends().await {
        let audit = Audit::new(store.clone());
        let t = |s: &str| Timestamp::parse(s).unwrap();
        for (n, at) in [
            "2026-11-01T06:59:59.999Z",
            "2026-11-01T07:00:00.000Z",
            "2026-11-02T12:30:00.250Z",
        ]
        .iter()
        .enumerate()
        {
            audit.append(&record(n, t(at))).await.unwrap();
        }
        // Midnight in Los Angeles (UTC-7) is 07:00 UTC.
        let found = audit
            .query(&Filter {
                since: Some(t("2026-11-01T00:00:00-07:00")),
                until: Some(t("2026-11-02T12:30:00.250Z")),
                limit: 10,
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{backend}: {found:?}");
        assert_eq!(found[0].at, t("2026-11-01T07:00:00Z"), "{backend}");
        let studio_b = audit
            .query(&Filter {
                studio: Some("std_b".into()),
                limit: 10,
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(studio_b.len(), 1, "{backend}");
        store.close().await.unwrap();
    }
}

/// Keys: a studio-scoped operation cannot reach another studio's key; revoke and rotate change
/// the revocation mark; a revoked or rotated-away secret is refused.
#[tokio::test]
async fn keys_are_studio_scoped_and_revocation_changes_the_mark() {
    for (backend, store, _dir) in backends().await {
        let keys = Keys::new(store.clone());
        let scopes = parse_scopes("classes:read").unwrap();
        let a = keys
            .create("std_a", "front desk", &scopes, None)
            .await
            .unwrap();
        keys.create("std_b", "other", &scopes, None).await.unwrap();
        assert_eq!(
            keys.list(Within::Studio("std_a")).await.unwrap().len(),
            1,
            "{backend}"
        );
        assert_eq!(
            keys.list(Within::AllStudios).await.unwrap().len(),
            2,
            "{backend}"
        );

        // Studio B cannot see, rotate or revoke A's key, even with its id.
        let id = a.info.id.as_str();
        assert!(
            matches!(
                keys.get(Within::Studio("std_b"), id).await,
                Err(KeyError::NotFound(_))
            ),
            "{backend}"
        );
        assert!(
            matches!(
                keys.rotate(Within::Studio("std_b"), id).await,
                Err(KeyError::NotFound(_))
            ),
            "{backend}"
        );
        assert!(
            matches!(
                keys.revoke(Within::Studio("std_b"), id).await,
                Err(KeyError::NotFound(_))
            ),
            "{backend}"
        );
        let who = keys.authenticate(&a.secret).await.unwrap().unwrap();
        assert_eq!(who.principal.studio, "std_a", "{backend}");

        let mark = wait_for_mark(&store).await;
        let rotated = keys.rotate(Within::Studio("std_a"), id).await.unwrap();
        let after_rotate = wait_for_mark(&store).await;
        assert_ne!(mark, after_rotate, "{backend}: rotating changes the mark");
        assert_eq!(
            keys.authenticate(&a.secret).await.unwrap().err(),
            Some(Rejection::Unknown),
            "{backend}"
        );
        assert!(
            keys.authenticate(&rotated.secret).await.unwrap().is_ok(),
            "{backend}"
        );

        let revoked = keys.revoke(Within::Studio("std_a"), id).await.unwrap();
        assert!(revoked.revoked_at.is_some(), "{backend}");
        assert_ne!(
            after_rotate,
            wait_for_mark(&store).await,
            "{backend}: revoking changes the mark"
        );
        assert_eq!(
            keys.authenticate(&rotated.secret).await.unwrap().err(),
            Some(Rejection::Revoked),
            "{backend}"
        );
        assert!(
            matches!(
                keys.revoke(Within::AllStudios, id).await,
                Err(KeyError::Revoked(_))
            ),
            "{backend}"
        );

        // An expiry in the past is refused.
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        let old = keys
            .create("std_a", "old", &scopes, Some(past))
            .await
            .unwrap();
        assert_eq!(
            keys.authenticate(&old.secret).await.unwrap().err(),
            Some(Rejection::Expired),
            "{backend}"
        );
        store.close().await.unwrap();
    }
}

/// The revocation mark, once this process knows it (PostgreSQL: once its listener is up).
async fn wait_for_mark(store: &Store) -> u128 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(mark) = store.revocations().mark() {
            return mark;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no revocation mark after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A revocation made through one store handle (another replica, or the CLI) changes the mark a
/// second handle on the same database sees, without it reading anything but the mark.
#[tokio::test]
async fn a_revocation_by_another_process_changes_this_ones_mark() {
    let dir = tempfile::tempdir().unwrap();
    let mut locations = vec![("sqlite", Location::Sqlite(dir.path().join("g.sqlite")))];
    if let Some(url) = postgres::database().await {
        locations.push(("postgres", Location::Postgres(url)));
    }
    for (backend, location) in locations {
        let here = Store::open(&location).await.unwrap();
        let there = Store::open(&location).await.unwrap();
        let keys = Keys::new(there.clone());
        let k = keys
            .create("std_a", "k", &parse_scopes("read").unwrap(), None)
            .await
            .unwrap();
        let before = wait_for_mark(&here).await;
        keys.revoke(Within::AllStudios, &k.info.id).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match here.revocations().mark() {
                Some(m) if m != before => break,
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: the mark never changed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        here.close().await.unwrap();
        there.close().await.unwrap();
    }
}

fn grant<'a>(scopes: &'a std::collections::BTreeSet<String>, challenge: &'a str) -> NewGrant<'a> {
    NewGrant {
        studio: "std_a",
        user_id: "usr_1",
        user_email: "owner@example.com",
        client_id: "fgc_test",
        client_name: "Test client",
        scopes,
        resource: "http://127.0.0.1:1/mcp",
        redirect_uri: "http://127.0.0.1:9/cb",
        code_challenge: challenge,
    }
}

/// Codes and refresh tokens are single-use even when two exchanges race; reuse revokes the
/// grant; another studio cannot revoke it.
#[tokio::test]
async fn codes_and_refresh_tokens_are_single_use_under_races() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = "a".repeat(43);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    for (backend, store, _dir) in backends().await {
        let grants = Grants::new(store.clone(), 3600);
        let scopes = parse_scopes("classes:read").unwrap();
        let (grant_id, code) = grants.approve(&grant(&scopes, &challenge)).await.unwrap();
        let exchange =
            || grants.exchange_code(&code, "fgc_test", "http://127.0.0.1:9/cb", &verifier, None);
        let (one, two) = tokio::join!(exchange(), exchange());
        let results = [one.unwrap().result, two.unwrap().result];
        let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(
            won.len(),
            1,
            "{backend}: exactly one exchange wins: {results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(TokenError::Reused(_)))),
            "{backend}"
        );
        // The reuse revoked the grant, and with it the winner's tokens.
        let tokens = results.into_iter().find_map(Result::ok).unwrap();
        let resource = "http://127.0.0.1:1/mcp";
        assert_eq!(
            grants
                .authenticate(&tokens.access_token, resource)
                .await
                .unwrap()
                .err(),
            Some(Rejection::Revoked),
            "{backend}"
        );

        // Refresh: rotate once, and a race on one refresh token has one winner.
        let (_, code) = grants.approve(&grant(&scopes, &challenge)).await.unwrap();
        let first = grants
            .exchange_code(&code, "fgc_test", "http://127.0.0.1:9/cb", &verifier, None)
            .await
            .unwrap()
            .result
            .unwrap();
        let refresh = || grants.refresh(&first.refresh_token, "fgc_test", None);
        let (a, b) = tokio::join!(refresh(), refresh());
        let results = [a.unwrap().result, b.unwrap().result];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{backend}: {results:?}"
        );

        // Another studio cannot revoke std_a's grant.
        let (other, _) = grants.approve(&grant(&scopes, &challenge)).await.unwrap();
        assert!(
            !grants
                .revoke_grant(Within::Studio("std_b"), &other, "x")
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            grants
                .revoke_grant(Within::Studio("std_a"), &other, "x")
                .await
                .unwrap(),
            "{backend}"
        );
        assert_eq!(
            grants.list(Within::Studio("std_b")).await.unwrap().len(),
            0,
            "{backend}"
        );
        assert!(
            grants
                .list(Within::Studio("std_a"))
                .await
                .unwrap()
                .iter()
                .any(|g| g.id == grant_id)
        );
        store.close().await.unwrap();
    }
}

/// Of concurrent claims of one key, exactly one is fresh; the others wait for and replay its
/// answer; other arguments are refused.
#[tokio::test]
async fn concurrent_idempotency_claims_have_one_winner() {
    for (backend, store, _dir) in backends().await {
        let idem = Idempotency::new(
            store.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(5),
            Duration::from_secs(60),
        );
        let claims = (0..8).map(|_| {
            let idem = idem.clone();
            async move {
                let claim = idem
                    .claim("std_a", "create_class", "k1", "h1")
                    .await
                    .unwrap();
                if claim == Claim::Fresh {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    idem.complete(
                        "std_a",
                        "create_class",
                        "k1",
                        &Stored::Ok(json!({"id": "cls_1"})),
                    )
                    .await
                    .unwrap();
                }
                claim
            }
        });
        let claims = futures::future::join_all(claims).await;
        assert_eq!(
            claims.iter().filter(|c| **c == Claim::Fresh).count(),
            1,
            "{backend}: {claims:?}"
        );
        assert_eq!(
            claims
                .iter()
                .filter(|c| **c == Claim::Replay(Stored::Ok(json!({"id": "cls_1"}))))
                .count(),
            7,
            "{backend}: {claims:?}"
        );
        assert_eq!(
            idem.claim("std_a", "create_class", "k1", "other")
                .await
                .unwrap(),
            Claim::Mismatch,
            "{backend}"
        );
        // Another studio's key of the same name is its own.
        assert_eq!(
            idem.claim("std_b", "create_class", "k1", "h1")
                .await
                .unwrap(),
            Claim::Fresh,
            "{backend}"
        );
        store.close().await.unwrap();
    }
}

/// Replicas starting together against one new database all migrate it without error.
#[tokio::test]
async fn replicas_opening_a_new_database_together_migrate_it_once() {
    let Some(url) = postgres::database().await else {
        return;
    };
    let location = Location::Postgres(url);
    let opens = (0..4).map(|_| Store::open(&location));
    for store in futures::future::join_all(opens).await {
        let store = store.unwrap();
        store.ping().await.unwrap();
        store.close().await.unwrap();
    }
}

/// A shared secret is created once, and every handle on the store (every replica) reads the
/// same one, even when they ask at the same moment.
#[tokio::test]
async fn a_shared_secret_is_the_same_for_every_replica() {
    for (backend, store, _dir) in backends().await {
        let asks = (0..6).map(|_| {
            let store = store.clone();
            async move { store.shared_secret("session-key").await.unwrap() }
        });
        let secrets = futures::future::join_all(asks).await;
        assert!(
            secrets.iter().all(|s| s == &secrets[0]),
            "{backend}: {secrets:?}"
        );
        assert_eq!(secrets[0].len(), 43, "{backend}: 32 bytes, base64url");
        assert_ne!(
            store.shared_secret("other").await.unwrap(),
            secrets[0],
            "{backend}"
        );
        store.close().await.unwrap();
    }
}

/// Of takers racing on one rate-limit bucket, together they get exactly what it holds, never
/// more; then it is empty until it drains.
#[tokio::test]
async fn a_rate_bucket_is_never_granted_twice() {
    for (backend, store, _dir) in backends().await {
        let now = chrono::Utc::now().timestamp_micros();
        let second = 1_000_000;
        let takes = (0..16).map(|_| {
            let store = store.clone();
            async move {
                store
                    .take_rate_budget("pro|key:k1", now, second, 20 * second, 3)
                    .await
                    .unwrap()
                    .granted
            }
        });
        let granted: i64 = futures::future::join_all(takes).await.into_iter().sum();
        assert_eq!(granted, 20, "{backend}: the burst, exactly");
        let empty = store
            .take_rate_budget("pro|key:k1", now, second, 20 * second, 3)
            .await
            .unwrap();
        assert_eq!(empty.granted, 0, "{backend}");
        assert_eq!(empty.tat_us, now + 20 * second, "{backend}");
        // Two seconds later, two calls have drained.
        let later = store
            .take_rate_budget("pro|key:k1", now + 2 * second, second, 20 * second, 3)
            .await
            .unwrap();
        assert_eq!(later.granted, 2, "{backend}");
        // Another principal's bucket is its own.
        let other = store
            .take_rate_budget("pro|key:k2", now, second, 20 * second, 3)
            .await
            .unwrap();
        assert_eq!(other.granted, 3, "{backend}");
        store.close().await.unwrap();
    }
}

/// Two replicas sharing a PostgreSQL store do not double a principal's limit: hammered from both
/// at once, they admit no more than the burst plus what drains meanwhile, and no less than the
/// burst minus one lease per replica (the tolerance `limit.rs` states).
#[tokio::test]
async fn two_replicas_share_one_rate_limit() {
    let Some(url) = postgres::database().await else {
        return;
    };
    let location = Location::Postgres(url);
    let (a, b) = (
        Store::open(&location).await.unwrap(),
        Store::open(&location).await.unwrap(),
    );
    // 600 a minute: a burst of 150, leases of 10, 10 calls drain per second.
    let per_minute = std::collections::BTreeMap::from([("pro".to_string(), 600)]);
    let replicas = [
        flowgate::limit::Limits::new(&per_minute, Some(a.clone())),
        flowgate::limit::Limits::new(&per_minute, Some(b.clone())),
    ];
    let started = std::time::Instant::now();
    let calls = (0..400).map(|i| {
        let limits = &replicas[i % 2];
        async move { limits.check("pro", "key:shared").await.is_ok() }
    });
    let admitted = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    let drained = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    assert!(
        admitted <= 150 + drained,
        "two replicas admitted {admitted}: more than the burst (150) + {drained} drained"
    );
    assert!(
        admitted >= 150 - 2 * 10,
        "two replicas admitted only {admitted}"
    );
    // One replica alone, with its own in-memory limiter, would have admitted 150 itself: the
    // shared bucket is what holds the pair to the limit.
    let refused = replicas[1].check("pro", "key:shared").await.unwrap_err();
    assert_eq!(refused.per_minute, 600);
    assert!(
        refused.retry_after <= Duration::from_millis(200),
        "{refused:?}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Sign-in flows: found by their hash only until they expire; the consent step takes one once,
/// whichever of many concurrent callers asks; starting one removes the expired and refuses past
/// the cap. Failed sign-ins: every failure made at once is counted, the first refusal is told
/// once per failure, the count starts over after the memory, and success or pruning forgets it.
#[tokio::test]
async fn sign_in_flows_are_taken_once_and_failures_count_every_attempt() {
    use flowgate::store::flows::{FlowRow, FlowUser};
    let minutes = chrono::Duration::minutes;
    for (backend, store, _dir) in backends().await {
        let now = Timestamp::now();
        let flow = |expires_at| FlowRow {
            csrf: "csrf-1".into(),
            client_id: "fgc_1".into(),
            client_name: "Claude Desktop".into(),
            redirect_uri: "http://127.0.0.1:3/cb".into(),
            state: Some("st".into()),
            code_challenge: "challenge".into(),
            requested: "classes:read classes:write".into(),
            user_id: None,
            user_email: None,
            user_name: None,
            studio_id: None,
            studio_name: None,
            user_role: None,
            expires_at,
        };
        assert!(
            store
                .insert_flow("h1", &flow(now + minutes(10)), now, 3)
                .await
                .unwrap()
        );
        let found = store.flow("h1", now).await.unwrap().unwrap();
        assert_eq!(found.csrf, "csrf-1", "{backend}");
        assert_eq!(found.state.as_deref(), Some("st"), "{backend}");
        assert_eq!(found.user_id, None, "{backend}");
        assert!(store.flow("h2", now).await.unwrap().is_none(), "{backend}");

        // An expired flow is refused, then removed when the next one starts.
        assert!(
            store
                .insert_flow("old", &flow(now - minutes(1)), now, 3)
                .await
                .unwrap()
        );
        assert!(store.flow("old", now).await.unwrap().is_none(), "{backend}");
        assert!(
            store.take_flow("old", now).await.unwrap().is_none(),
            "{backend}"
        );
        assert!(
            store
                .insert_flow("h2", &flow(now + minutes(10)), now, 3)
                .await
                .unwrap()
        );
        assert_eq!(
            store.prune_flows(now).await.unwrap(),
            0,
            "{backend}: pruned on insert"
        );
        // The cap: three live flows, the fourth is refused (and not stored).
        assert!(
            store
                .insert_flow("h3", &flow(now + minutes(10)), now, 3)
                .await
                .unwrap()
        );
        assert!(
            !store
                .insert_flow("h4", &flow(now + minutes(10)), now, 3)
                .await
                .unwrap()
        );
        assert!(store.flow("h4", now).await.unwrap().is_none(), "{backend}");

        let user = FlowUser {
            user_id: "usr_1",
            email: "owner@example.com",
            name: "Owner",
            studio_id: "std_1",
            studio_name: "Studio",
            role: Some("staff"),
        };
        let later = now + minutes(20);
        assert!(store.flow_signed_in("h1", &user, now, later).await.unwrap());
        assert!(
            !store
                .flow_signed_in("nope", &user, now, later)
                .await
                .unwrap()
        );
        let signed = store.flow("h1", now + minutes(15)).await.unwrap().unwrap();
        assert_eq!(signed.user_id.as_deref(), Some("usr_1"), "{backend}");
        assert_eq!(signed.studio_name.as_deref(), Some("Studio"), "{backend}");
        assert_eq!(signed.user_role.as_deref(), Some("staff"), "{backend}");
        assert_eq!(signed.expires_at.rfc3339(), later.rfc3339(), "{backend}");

        // Eight takes at once: one gets the flow.
        let takes = (0..8).map(|_| {
            let store = store.clone();
            async move { store.take_flow("h1", now).await.unwrap() }
        });
        let taken: Vec<_> = futures::future::join_all(takes)
            .await
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(taken.len(), 1, "{backend}");
        assert_eq!(taken[0].user_email.as_deref(), Some("owner@example.com"));
        assert_eq!(taken[0].user_role.as_deref(), Some("staff"), "{backend}");
        assert!(store.flow("h1", now).await.unwrap().is_none(), "{backend}");
        // Past its time a flow cannot be taken either.
        assert!(
            store
                .take_flow("h2", now + minutes(11))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.prune_flows(now + minutes(11)).await.unwrap(),
            2,
            "{backend}"
        );

        // Failed sign-ins.
        let since = now - minutes(60);
        assert!(
            store
                .sign_in_failures("acct", since)
                .await
                .unwrap()
                .is_none()
        );
        let fails = (0..8).map(|_| {
            let store = store.clone();
            async move { store.sign_in_failed("acct", now, since).await.unwrap() }
        });
        let mut counts = futures::future::join_all(fails).await;
        counts.sort_unstable();
        assert_eq!(counts, (1..=8).collect::<Vec<i64>>(), "{backend}");
        let row = store
            .sign_in_failures("acct", since)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.failures, row.refusal_seen), (8, false), "{backend}");
        let refusals = (0..4).map(|_| {
            let store = store.clone();
            async move { store.first_sign_in_refusal("acct").await.unwrap() }
        });
        let firsts = futures::future::join_all(refusals).await;
        assert_eq!(firsts.iter().filter(|f| **f).count(), 1, "{backend}");
        assert!(
            store
                .sign_in_failures("acct", since)
                .await
                .unwrap()
                .unwrap()
                .refusal_seen
        );
        // Another failure: counted, and the next refusal is a first again.
        assert_eq!(store.sign_in_failed("acct", now, since).await.unwrap(), 9);
        assert!(
            store.first_sign_in_refusal("acct").await.unwrap(),
            "{backend}"
        );
        // An hour after the last failure it is forgotten, and counting starts over.
        let hour_later = now + minutes(61);
        assert!(
            store
                .sign_in_failures("acct", hour_later - minutes(60))
                .await
                .unwrap()
                .is_none()
        );
        let again = store
            .sign_in_failed("acct", hour_later, hour_later - minutes(60))
            .await
            .unwrap();
        assert_eq!(again, 1, "{backend}");
        store.clear_sign_in_failures("acct").await.unwrap();
        assert!(
            store
                .sign_in_failures("acct", since)
                .await
                .unwrap()
                .is_none()
        );
        store
            .sign_in_failed("stale", since - minutes(1), since)
            .await
            .unwrap();
        store.sign_in_failed("fresh", now, since).await.unwrap();
        assert_eq!(
            store.prune_sign_in_failures(since).await.unwrap(),
            1,
            "{backend}"
        );
        assert!(
            store
                .sign_in_failures("fresh", since)
                .await
                .unwrap()
                .is_some()
        );
        store.close().await.unwrap();
    }
}

/// An MCP session ended through one handle on the store (one replica) is known as ended by
/// another: on SQLite at its next check, on PostgreSQL once the notification arrives. Ending it
/// twice is refused, and ends whose ids have expired are pruned.
#[tokio::test]
async fn an_ended_session_is_ended_for_every_replica() {
    for (backend, store, _dir) in backends().await {
        let other = Store::open(store.location()).await.unwrap();
        let later = Timestamp::now() + chrono::Duration::hours(1);
        // Each process has looked (PostgreSQL: its listener is up) before the end.
        assert!(!store.session_ended("n1").await.unwrap(), "{backend}");
        assert!(!other.session_ended("n1").await.unwrap(), "{backend}");
        assert!(store.end_session("n1", later).await.unwrap(), "{backend}");
        assert!(
            !store.end_session("n1", later).await.unwrap(),
            "{backend}: once"
        );
        assert!(store.session_ended("n1").await.unwrap(), "{backend}");
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !other.session_ended("n1").await.unwrap() {
            assert!(
                backend == "postgres" && std::time::Instant::now() < deadline,
                "{backend}: the other replica does not know"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!other.session_ended("n2").await.unwrap(), "{backend}");
        // An end whose id has expired is pruned (and no longer held).
        let past = Timestamp::now() - chrono::Duration::seconds(1);
        assert!(other.end_session("n2", past).await.unwrap(), "{backend}");
        assert_eq!(store.prune_ended_sessions().await.unwrap(), 1, "{backend}");
        assert!(store.session_ended("n1").await.unwrap(), "{backend}");
        other.close().await.unwrap();
        store.close().await.unwrap();
    }
}

/// The audit log page's reads: calls per UTC day and outcome with the table's filters (a day
/// ends at midnight UTC, whatever offset a time was written with), the bounded count an export
/// starts with, and the tools of one studio.
#[tokio::test]
async fn audit_day_counts_are_per_utc_day_and_share_the_tables_filters() {
    for (backend, store, _dir) in backends().await {
        let audit = Audit::new(store.clone());
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let rows = [
            // (at, studio, tool, outcome)
            ("2026-11-01T23:59:59.999Z", "std_a", "get_class", "ok"),
            ("2026-11-02T00:00:00.000Z", "std_a", "get_class", "ok"),
            (
                "2026-11-01T18:30:00-08:00",
                "std_a",
                "create_coupon",
                "denied",
            ), // 11-02 02:30Z
            ("2026-11-02T09:00:00Z", "std_a", "get_class", "denied"),
            ("2026-11-03T12:00:00Z", "std_a", "get_class", "rate_limited"),
            ("2026-11-02T10:00:00Z", "std_b", "list_members", "ok"),
        ];
        for (n, (at, studio, tool, outcome)) in rows.iter().enumerate() {
            let r = Record {
                studio: Some(studio.to_string()),
                tool: Some(tool.to_string()),
                outcome: outcome.to_string(),
                ..record(n, t(at))
            };
            audit.append(&r).await.unwrap();
        }
        let counts = |f: Filter| {
            let audit = audit.clone();
            async move {
                audit
                    .day_counts(&f, 100)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|c| (c.day, c.outcome, c.calls))
                    .collect::<Vec<_>>()
            }
        };
        let a = || Filter {
            studio: Some("std_a".into()),
            ..Filter::default()
        };
        let c = |d: &str, o: &str, n: i64| (d.to_string(), o.to_string(), n);
        assert_eq!(
            counts(a()).await,
            [
                c("2026-11-01", "ok", 1),
                c("2026-11-02", "denied", 2),
                c("2026-11-02", "ok", 1),
                c("2026-11-03", "rate_limited", 1),
            ],
            "{backend}"
        );
        // The table's filters: tool, outcome and a range of days.
        let filtered = Filter {
            tool: Some("get_class".into()),
            outcome: Some("denied".into()),
            since: Some(t("2026-11-02T00:00:00Z")),
            until: Some(t("2026-11-03T00:00:00Z")),
            ..a()
        };
        assert_eq!(
            counts(filtered).await,
            [c("2026-11-02", "denied", 1)],
            "{backend}"
        );
        // An export's count stops at its cap and names the newest record.
        let all_a = audit.query(&Filter { limit: 100, ..a() }).await.unwrap();
        let (n, newest) = audit.count_upto(&a(), 100).await.unwrap();
        assert_eq!((n, newest), (5, Some(all_a[0].seq)), "{backend}");
        assert_eq!(audit.count_upto(&a(), 3).await.unwrap().0, 3, "{backend}");
        let none = Filter {
            tool: Some("nothing".into()),
            ..a()
        };
        assert_eq!(audit.count_upto(&none, 100).await.unwrap(), (0, None));
        assert_eq!(
            audit.tools("std_a", 10).await.unwrap(),
            ["create_coupon", "get_class"],
            "{backend}"
        );
        store.close().await.unwrap();
    }
}
