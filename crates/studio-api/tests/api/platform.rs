//! Credential, error format, pagination, idempotency, persistence and the OpenAPI document.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Api, FREE, PRO};

#[tokio::test]
async fn every_request_needs_the_service_credential() {
    let api = Api::start().await;
    for path in [
        "/studio",
        "/healthz",
        "/openapi.json",
        "/directory/studios",
        "/no/such/route",
    ] {
        let missing = api.studio(PRO).token(None).get(path).await;
        missing.assert_error(401, "unauthorized", None);
        assert_eq!(
            missing.message(),
            "missing service credential: send `Authorization: Bearer <token>`"
        );
        let wrong = api.studio(PRO).token(Some("not-the-token")).get(path).await;
        wrong.assert_error(401, "unauthorized", None);
        assert_eq!(wrong.message(), "wrong service credential");
    }
    // A write without the credential is refused before it is counted or executed.
    let before = api.server.write_count();
    api.studio(PRO)
        .token(None)
        .post("/programs", json!({"name": "Nope"}))
        .await
        .assert_error(401, "unauthorized", None);
    assert_eq!(api.server.write_count(), before);
    let programs = api.studio(PRO).get("/programs?q=nope").await.ok(200);
    assert_eq!(programs["data"].as_array().unwrap().len(), 0);
    // The token is 32 random bytes, base64url.
    assert_eq!(api.server.service_token().len(), 43);
}

#[tokio::test]
async fn health_studio_and_unknown_routes() {
    let api = Api::start().await;
    assert_eq!(
        api.anon().get("/healthz").await.ok(200),
        json!({"status": "ok"})
    );
    let studio = api.studio(PRO).get("/studio").await.ok(200);
    assert_eq!(studio["id"], PRO);
    assert_eq!(studio["name"], "Lotus Flow Yoga");
    assert_eq!(studio["tier"], "pro");
    let free = api.studio(FREE).get("/studio").await.ok(200);
    assert_eq!(
        (free["name"].as_str(), free["tier"].as_str()),
        (Some("Free Spirit Pilates"), Some("free"))
    );
    api.anon()
        .get("/studio")
        .await
        .assert_error(400, "invalid_request", Some("X-Flow-Studio"));
    let unknown = api.studio("std_nope").get("/studio").await;
    unknown.assert_error(404, "not_found", None);
    assert_eq!(unknown.message(), "studio `std_nope` not found");
    api.studio(PRO)
        .get("/nope")
        .await
        .assert_error(404, "route_not_found", None);
    api.studio(PRO)
        .send(Method::PUT, "/classes", None)
        .await
        .assert_error(405, "method_not_allowed", None);
    assert!(api.server.base_url().starts_with("http://127.0.0.1:"));
    assert!(api.server.base_url().ends_with("/v1"));
}

#[tokio::test]
async fn bad_input_is_400_with_the_field_never_500() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let malformed = c
        .send(Method::POST, "/programs", Some("{\"name\": ".into()))
        .await;
    malformed.assert_error(400, "invalid_request", None);
    assert!(
        malformed.message().starts_with("malformed JSON body"),
        "{}",
        malformed.message()
    );
    let wrong_type = c.post("/programs", json!({"name": 42})).await;
    wrong_type.assert_error(400, "invalid_request", Some("name"));
    assert_eq!(
        wrong_type.message(),
        "invalid type: integer `42`, expected a string"
    );
    let unknown = c
        .post(
            "/programs",
            json!({"name": "Yoga Nidra", "colour": "#ffffff"}),
        )
        .await;
    unknown.assert_error(400, "invalid_request", Some("colour"));
    assert!(
        unknown.message().starts_with("unknown field `colour`"),
        "{}",
        unknown.message()
    );
    let missing = c.post("/programs", json!({})).await;
    missing.assert_error(400, "invalid_request", None);
    assert_eq!(missing.message(), "missing field `name`");
    c.post("/expenses", json!({"description": "x", "category": "rent", "amount_cents": "12", "incurred_on": "2026-01-01"}))
        .await
        .assert_error(400, "invalid_request", Some("amount_cents"));
    c.get("/classes?colour=red")
        .await
        .assert_error(400, "invalid_request", Some("colour"));
    c.get("/schedule?from=tomorrow")
        .await
        .assert_error(400, "invalid_request", Some("from"));
    c.get("/classes?status=paused")
        .await
        .assert_error(400, "invalid_request", Some("status"));
    let nested = c.post("/locations", json!({"name": "L", "address": "A", "city": "C", "rooms": [{"name": "R", "capacity": "big"}]})).await;
    nested.assert_error(400, "invalid_request", Some("rooms[0].capacity"));
}

#[tokio::test]
async fn pagination_is_keyset_with_stable_opaque_cursors() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let all = c.get("/members?limit=100").await.ok(200);
    let all: Vec<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 24);
    let default = c.get("/members").await;
    assert_eq!(default.data().len(), 24, "default limit 25 holds all 24");
    assert_eq!(default.body["next_cursor"], json!(null));

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/members?limit=10&cursor={c}"),
            None => "/members?limit=10".to_owned(),
        };
        let page = c.get(&path).await.ok(200);
        pages += 1;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        if pages == 1 {
            // Stable: a member added after the first page, sorting before the cursor, does not
            // shift the next page; the same cursor gives the same page twice.
            c.post(
                "/members/invitations",
                json!({"email": "aaron@example.com", "name": "Aaron Aardvark"}),
            )
            .await
            .ok(201);
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                let again = c
                    .get(&format!("/members?limit=10&cursor={next}"))
                    .await
                    .ok(200);
                let twice = c
                    .get(&format!("/members?limit=10&cursor={next}"))
                    .await
                    .ok(200);
                assert_eq!(again, twice);
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all, "every member exactly once, in order");

    c.get("/members?limit=0")
        .await
        .assert_error(400, "invalid_request", Some("limit"));
    c.get("/members?limit=101")
        .await
        .assert_error(400, "invalid_request", Some("limit"));
    c.get("/members?limit=ten")
        .await
        .assert_error(400, "invalid_request", Some("limit"));
    assert_eq!(c.get("/members?limit=100").await.data().len(), 25);
    assert_eq!(c.get("/members?limit=1").await.data().len(), 1);
    c.get("/members?cursor=garbage!")
        .await
        .assert_error(400, "invalid_request", Some("cursor"));
    // A cursor of one list is refused by another.
    let classes = c.get("/classes?limit=1").await.ok(200);
    let class_cursor = classes["next_cursor"].as_str().unwrap();
    c.get(&format!("/members?cursor={class_cursor}"))
        .await
        .assert_error(400, "invalid_request", Some("cursor"));
}

#[tokio::test]
async fn idempotent_replay_and_mismatch() {
    let api = Api::start().await;
    let c = api.studio(PRO).key("key-1");
    let body = json!({"name": "Yoga Nidra", "color": "#336699"});
    let writes = api.server.write_count();
    let first = c.post("/programs", body.clone()).await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = c.post("/programs", body.clone()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "same stored body, same id");
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(api.server.write_count(), writes + 2);
    assert_eq!(api.server.replay_count(), 1);
    let found = api.studio(PRO).get("/programs?q=nidra").await;
    assert_eq!(found.data().len(), 1, "executed once");

    let other_body = c.post("/programs", json!({"name": "Other"})).await;
    other_body.assert_error(422, "idempotency_key_reused", None);
    assert_eq!(
        other_body.message(),
        "this Idempotency-Key was already used with a different method, path or body"
    );
    c.post("/instructors", body.clone())
        .await
        .assert_error(422, "idempotency_key_reused", None);

    // Errors are stored too (Stripe semantics): the replay of a 409 is the same 409.
    let archive = api
        .studio(PRO)
        .key("arch")
        .post("/plans/pln_lotus_founders/archive", json!({}))
        .await;
    archive.assert_error(409, "already_archived", None);
    let replay = api
        .studio(PRO)
        .key("arch")
        .post("/plans/pln_lotus_founders/archive", json!({}))
        .await;
    assert_eq!(replay.body, archive.body);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");

    // Keys are per studio: the same key in another studio is a new request.
    let fs = api
        .studio(FREE)
        .key("key-1")
        .post("/programs", body.clone())
        .await
        .ok(201);
    assert_ne!(fs["id"], first.body["id"]);
    // A bad key is a 400 on the header.
    api.studio(PRO)
        .key(&"x".repeat(256))
        .post("/programs", body)
        .await
        .assert_error(400, "invalid_request", Some("Idempotency-Key"));
}

#[tokio::test]
async fn data_survives_a_restart_and_is_not_seeded_twice() {
    let api = Api::start().await;
    let token = api.server.service_token().to_owned();
    let created = api
        .studio(PRO)
        .post("/programs", json!({"name": "Kept Across Restarts"}))
        .await
        .ok(201);
    api.studio(PRO).key("restart-key").post("/expenses", json!({"description": "Mats", "category": "equipment", "amount_cents": 5000, "incurred_on": "2026-01-05"})).await.ok(201);
    api.studio(PRO)
        .delete("/expenses/exp_lotus_001")
        .await
        .ok(200);
    assert!(
        api.dir
            .path()
            .join(flowgate_studio_api::DATABASE_FILE)
            .exists()
    );

    let api = api.restart().await;
    assert_ne!(
        api.server.service_token(),
        token,
        "a new credential per start"
    );
    let found = api.studio(PRO).get("/programs?q=kept").await;
    assert_eq!(found.data().len(), 1);
    assert_eq!(found.data()[0]["id"], created["id"]);
    assert_eq!(
        api.studio(PRO).get("/programs").await.data().len(),
        5,
        "4 seeded + 1, not re-seeded"
    );
    api.studio(PRO)
        .get("/expenses/exp_lotus_001")
        .await
        .assert_error(405, "method_not_allowed", None);
    let expenses = api.studio(PRO).get("/expenses?limit=100").await;
    assert!(
        expenses.data().iter().all(|e| e["id"] != "exp_lotus_001"),
        "the delete survived"
    );
    // The idempotency store survives too.
    let replay = api.studio(PRO).key("restart-key").post("/expenses", json!({"description": "Mats", "category": "equipment", "amount_cents": 5000, "incurred_on": "2026-01-05"})).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    api.server.shutdown().await;
}

#[tokio::test]
async fn start_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let err = flowgate_studio_api::StudioApi::start(flowgate_studio_api::Config {
        data_dir: dir.path().to_owned(),
        listen: "0.0.0.0:0".parse().unwrap(),
        service_token: None,
        seed: true,
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(
        err.to_string(),
        "studio-api must listen on a loopback address, not 0.0.0.0:0"
    );
}

#[tokio::test]
async fn a_given_token_is_used_and_seed_false_leaves_the_database_empty() {
    let dir = tempfile::tempdir().unwrap();
    let api = flowgate_studio_api::StudioApi::start(flowgate_studio_api::Config {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        service_token: Some("s3cret-token".into()),
        seed: false,
    })
    .await
    .unwrap();
    assert_eq!(api.service_token(), "s3cret-token");
    let res = reqwest::Client::new()
        .get(format!("{}/directory/studios", api.base_url()))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, json!({"data": [], "next_cursor": null}));
    api.shutdown().await;
}

#[tokio::test]
async fn sign_in_checks_the_demo_passwords() {
    let api = Api::start().await;
    let c = api.anon();
    let user = flowgate_studio_api::DEMO_USERS[0];
    let ok = c
        .post(
            "/auth/sign-in",
            json!({"email": user.email, "password": user.password}),
        )
        .await
        .ok(200);
    assert_eq!(
        ok,
        json!({
            "user_id": "usr_lotus_owner", "name": "Maya Chen", "email": "owner@lotusflow.example", "role": "owner",
            "studio": {"id": PRO, "name": "Lotus Flow Yoga", "tier": "pro"},
        })
    );
    let staff = c
        .post(
            "/auth/sign-in",
            json!({"email": "STAFF@freespirit.example", "password": "spirit-staff-demo"}),
        )
        .await
        .ok(200);
    assert_eq!(
        (staff["role"].as_str(), staff["studio"]["id"].as_str()),
        (Some("staff"), Some(FREE))
    );
    let wrong = c
        .post(
            "/auth/sign-in",
            json!({"email": user.email, "password": "lotus-admin-demo"}),
        )
        .await;
    wrong.assert_error(401, "invalid_credentials", None);
    assert_eq!(wrong.message(), "wrong e-mail or password");
    c.post(
        "/auth/sign-in",
        json!({"email": "nobody@example.com", "password": "x"}),
    )
    .await
    .assert_error(401, "invalid_credentials", None);
    c.post("/auth/sign-in", json!({"email": user.email}))
        .await
        .assert_error(400, "invalid_request", None);
}

#[tokio::test]
async fn query_times_take_any_offset_and_come_back_in_utc() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let utc = c
        .get("/schedule?from=2030-01-01T08:00:00Z&limit=1")
        .await
        .ok(200);
    let encoded = c
        .get("/schedule?from=2030-01-01T09:00:00%2B01:00&limit=1")
        .await
        .ok(200);
    let unencoded = c
        .get("/schedule?from=2030-01-01T09:00:00+01:00&limit=1")
        .await
        .ok(200);
    let date = c.get("/schedule?from=2030-01-01&limit=1").await.ok(200);
    assert_eq!(utc, encoded);
    assert_eq!(utc, unencoded);
    assert_eq!(utc, json!({"data": [], "next_cursor": null}));
    assert_eq!(date, utc);
    let week = c
        .get(&format!(
            "/schedule?from={}&to={}&limit=100",
            crate::harness::at(0, 0, 0),
            crate::harness::at(7, 0, 0)
        ))
        .await;
    assert!(!week.data().is_empty(), "something is on this week");
    for o in week.data() {
        assert!(o["starts_at"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn concurrent_requests_with_one_key_execute_once() {
    let api = Api::start().await;
    let url = format!("{}/programs", api.server.base_url());
    let token = api.server.service_token().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (url, token) = (url.clone(), token.clone());
        tasks.spawn(async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("X-Flow-Studio", PRO)
                .header("Idempotency-Key", "race-1")
                .json(&json!({"name": "Raced"}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body)
        });
    }
    let mut bodies = Vec::new();
    while let Some(res) = tasks.join_next().await {
        let (status, body) = res.unwrap();
        // The duplicates wait for the first one's commit and replay it: none is refused.
        assert_eq!(status, 201, "{body}");
        bodies.push(body);
    }
    assert_eq!(bodies.len(), 8);
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every duplicate gets the same stored response"
    );
    assert_eq!(
        api.studio(PRO).get("/programs?q=raced").await.data().len(),
        1,
        "executed once"
    );
    assert_eq!(api.server.write_count(), 8);
    assert_eq!(api.server.replay_count(), 7);
}

#[tokio::test]
async fn seeding_is_deterministic_apart_from_now() {
    let (a, b) = (Api::start().await, Api::start().await);
    for studio in [PRO, FREE] {
        for path in [
            "/classes?limit=100",
            "/plans",
            "/coupons",
            "/programs",
            "/instructors",
            "/locations",
            "/content",
            "/studio",
        ] {
            let (x, y) = (
                a.studio(studio).get(path).await.ok(200),
                b.studio(studio).get(path).await.ok(200),
            );
            assert_eq!(x, y, "{studio} {path}");
        }
        let ids = |v: serde_json::Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{} {} {}", r["id"], r["name"], r["role"]))
                .collect()
        };
        let (x, y) = (
            a.studio(studio).get("/members?limit=100").await.ok(200),
            b.studio(studio).get("/members?limit=100").await.ok(200),
        );
        assert_eq!(ids(x), ids(y));
        let statuses = |v: serde_json::Value| -> Vec<String> {
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r["id"], r["member_id"], r["status"], r["price_cents"]
                    )
                })
                .collect()
        };
        let (x, y) = (
            a.studio(studio).get("/bookings?limit=100").await.ok(200),
            b.studio(studio).get("/bookings?limit=100").await.ok(200),
        );
        assert_eq!(statuses(x), statuses(y));
    }
}

#[test]
fn config_debug_never_shows_the_token() {
    let config = flowgate_studio_api::Config {
        service_token: Some("very-secret".into()),
        ..flowgate_studio_api::Config::default()
    };
    let text = format!("{config:?}");
    assert!(!text.contains("very-secret"), "{text}");
    assert!(text.contains("[redacted]"));
}
