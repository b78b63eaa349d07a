//! Idempotency keys are claimed in the write's own transaction: a write cut off before its commit
//! leaves no key behind, and concurrent duplicates all get the one answer.

use std::time::Duration;

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::harness::{Api, PRO};

/// A second connection to the API's database, as an operator's tool would open one.
async fn database(api: &Api) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(api.dir.path().join(flowgate_studio_api::DATABASE_FILE))
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

/// Runs one statement on that connection.
async fn run(db: &sqlx::SqlitePool, sql: &str) {
    sqlx::query(sql).execute(db).await.unwrap();
}

#[tokio::test]
async fn a_write_cut_off_before_its_commit_leaves_no_pending_key() {
    let api = Api::start().await;
    let db = database(&api).await;
    // Every program insert now takes about a second, so the request is cut off while its
    // transaction (key claimed, program being written) is open.
    run(
        &db,
        "CREATE TRIGGER slow_programs BEFORE INSERT ON programs BEGIN
           SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
             WHERE x < 3000000) SELECT x FROM c);
         END",
    )
    .await;
    let url = format!("{}/programs", api.server.base_url());
    let body = json!({"name": "Cut Off Flow"});
    let cut = reqwest::Client::new()
        .post(&url)
        .bearer_auth(api.server.service_token())
        .header("X-Flow-Studio", PRO)
        .header("Idempotency-Key", "cut-1")
        .json(&body)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(
        cut.as_ref().is_err_and(reqwest::Error::is_timeout),
        "the first attempt is cut off: {cut:?}"
    );
    // Waits for the cut-off transaction to end, then restores normal inserts.
    run(&db, "DROP TRIGGER slow_programs").await;
    let pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys WHERE key = 'cut-1'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(pending, 0, "no key survives the cut-off write");

    // The retry with the same key runs (it is not a 409 "in progress", nor a replay) …
    let retry = api
        .studio(PRO)
        .key("cut-1")
        .post("/programs", body.clone())
        .await;
    assert!(retry.headers.get("idempotent-replayed").is_none());
    let created = retry.ok(201);
    // … and its answer is the one stored for the key.
    let again = api.studio(PRO).key("cut-1").post("/programs", body).await;
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.ok(201), created);
    let found = api.studio(PRO).get("/programs?q=cut%20off").await;
    assert_eq!(found.data().len(), 1, "the program exists once");
    assert_eq!(found.data()[0]["id"], created["id"]);
}

#[tokio::test]
async fn a_write_that_fails_in_the_database_leaves_no_key_and_no_row() {
    let api = Api::start().await;
    let db = database(&api).await;
    run(
        &db,
        "CREATE TRIGGER failing_coupons AFTER INSERT ON coupons BEGIN
           SELECT RAISE(ABORT, 'disk full');
         END",
    )
    .await;
    let c = api.studio(PRO).key("fail-1");
    let body = json!({"code": "ONCEONLY", "percent_off": 10});
    c.post("/coupons", body.clone())
        .await
        .assert_error(500, "internal", None);
    run(&db, "DROP TRIGGER failing_coupons").await;
    let retry = c.post("/coupons", body).await;
    assert!(retry.headers.get("idempotent-replayed").is_none());
    let created = retry.ok(201);
    let coupons = api.studio(PRO).get("/coupons?limit=100").await;
    let once: Vec<_> = coupons
        .data()
        .iter()
        .filter(|c| c["code"] == "ONCEONLY")
        .collect();
    assert_eq!(once.len(), 1);
    assert_eq!(once[0]["id"], created["id"]);
}
