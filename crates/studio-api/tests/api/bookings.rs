//! Booking rules: capacity, duplicates, cancelled and started sessions, plans, coupons, refunds.

use serde_json::json;

use crate::harness::{Api, PRO, class_with_session};

#[tokio::test]
async fn a_full_session_is_409_with_a_clear_message() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let (_, occ) = class_with_session(&c, "Tiny Class", 2, 50).await;
    let first = c
        .post(
            "/bookings",
            json!({"occurrence_id": occ, "member_id": "mem_lotus_02"}),
        )
        .await
        .ok(201);
    assert!(first["id"].as_str().unwrap().starts_with("bkg_"));
    assert_eq!(
        (
            first["status"].as_str(),
            first["price_cents"].as_i64(),
            first["currency"].as_str()
        ),
        (Some("booked"), Some(2000), Some("USD"))
    );
    assert_eq!(
        (
            first["refund_cents"].as_i64(),
            first["plan_id"].as_str(),
            first["coupon_id"].as_str()
        ),
        (Some(0), None, None)
    );
    c.post(
        "/bookings",
        json!({"occurrence_id": occ, "member_id": "mem_lotus_03"}),
    )
    .await
    .ok(201);
    let full = c
        .post(
            "/bookings",
            json!({"occurrence_id": occ, "member_id": "mem_lotus_05"}),
        )
        .await;
    full.assert_error(409, "session_full", None);
    let starts = crate::harness::at(50, 6, 0);
    assert_eq!(
        full.message(),
        format!("Tiny Class on {starts} is full (2 of 2 booked)")
    );
    assert_eq!(
        c.get(&format!("/schedule/{occ}/bookings"))
            .await
            .data()
            .len(),
        2
    );

    // A cancellation frees the spot.
    let cancelled = c
        .post(
            &format!("/bookings/{}/cancel", first["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(
        (
            cancelled["status"].as_str(),
            cancelled["refund_cents"].as_i64()
        ),
        (Some("cancelled"), Some(0))
    );
    c.post(
        "/bookings",
        json!({"occurrence_id": occ, "member_id": "mem_lotus_05"}),
    )
    .await
    .ok(201);
    let sched = c
        .get(&format!(
            "/schedule?from={starts}&to={}",
            crate::harness::at(50, 6, 1)
        ))
        .await;
    let row = sched
        .data()
        .iter()
        .find(|o| o["id"] == occ.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (row["booked_count"].as_i64(), row["capacity"].as_i64()),
        (Some(2), Some(2))
    );
}

#[tokio::test]
async fn the_seeded_full_session_is_refused() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let prenatal = c
        .get(&format!(
            "/schedule?class_id=cls_lotus_prenatal&from={now}&limit=1"
        ))
        .await;
    let occ = &prenatal.data()[0];
    assert_eq!(
        occ["booked_count"], occ["capacity"],
        "the next Prenatal Flow is full"
    );
    let res = c
        .post(
            "/bookings",
            json!({"occurrence_id": occ["id"], "member_id": "mem_lotus_24"}),
        )
        .await;
    res.assert_error(409, "session_full", None);
    assert_eq!(
        res.message(),
        format!(
            "Prenatal Flow on {} is full (10 of 10 booked)",
            occ["starts_at"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn duplicates_cancelled_and_started_sessions_are_409() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let (_, occ) = class_with_session(&c, "Dup Class", 5, 51).await;
    c.post(
        "/bookings",
        json!({"occurrence_id": occ, "member_id": "mem_lotus_02"}),
    )
    .await
    .ok(201);
    let dup = c
        .post(
            "/bookings",
            json!({"occurrence_id": occ, "member_id": "mem_lotus_02"}),
        )
        .await;
    dup.assert_error(409, "already_booked", None);
    assert_eq!(
        dup.message(),
        format!(
            "Liam Carter is already booked into Dup Class on {}",
            crate::harness::at(51, 6, 0)
        )
    );

    let aerial = c
        .get("/schedule?class_id=cls_lotus_aerial&status=cancelled&limit=1")
        .await;
    let cancelled = aerial.data()[0]["id"].as_str().unwrap();
    let res = c
        .post(
            "/bookings",
            json!({"occurrence_id": cancelled, "member_id": "mem_lotus_02"}),
        )
        .await;
    res.assert_error(409, "occurrence_cancelled", None);
    assert!(res.message().ends_with(" is cancelled"));

    let past = c.get("/schedule?class_id=cls_lotus_vinyasa&limit=1").await;
    let res = c
        .post(
            "/bookings",
            json!({"occurrence_id": past.data()[0]["id"], "member_id": "mem_lotus_02"}),
        )
        .await;
    res.assert_error(409, "occurrence_started", None);

    c.post(
        "/bookings",
        json!({"occurrence_id": "occ_nope", "member_id": "mem_lotus_02"}),
    )
    .await
    .assert_error(404, "not_found", Some("occurrence_id"));
    c.post(
        "/bookings",
        json!({"occurrence_id": occ, "member_id": "mem_nope"}),
    )
    .await
    .assert_error(404, "not_found", Some("member_id"));
    c.post("/bookings", json!({"occurrence_id": occ}))
        .await
        .assert_error(400, "invalid_request", None);
}

#[tokio::test]
async fn plans_and_coupons_price_a_booking_and_archived_ones_cannot_be_used() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let (_, occ) = class_with_session(&c, "Priced Class", 20, 52).await;
    let book = |member: &str, extra: serde_json::Value| {
        let mut body = json!({"occurrence_id": occ, "member_id": member});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let archived = c
        .post(
            "/bookings",
            book("mem_lotus_02", json!({"plan_id": "pln_lotus_founders"})),
        )
        .await;
    archived.assert_error(409, "plan_archived", None);
    assert_eq!(
        archived.message(),
        "plan Founders Rate is archived and cannot be used for new bookings"
    );
    c.post(
        "/bookings",
        book("mem_lotus_02", json!({"plan_id": "pln_nope"})),
    )
    .await
    .assert_error(404, "not_found", Some("plan_id"));
    let summer = c
        .post(
            "/bookings",
            book("mem_lotus_02", json!({"coupon_code": "SUMMER25"})),
        )
        .await;
    summer.assert_error(409, "coupon_archived", None);
    assert_eq!(
        summer.message(),
        "coupon SUMMER25 is archived and cannot be used"
    );
    c.post(
        "/bookings",
        book("mem_lotus_02", json!({"coupon_code": "NOPE"})),
    )
    .await
    .assert_error(404, "not_found", Some("coupon_code"));
    assert_eq!(
        c.get(&format!("/schedule/{occ}/bookings"))
            .await
            .data()
            .len(),
        0,
        "refused bookings left nothing"
    );

    let member = c
        .post(
            "/bookings",
            book("mem_lotus_02", json!({"plan_id": "pln_lotus_unlimited"})),
        )
        .await
        .ok(201);
    assert_eq!(
        (member["price_cents"].as_i64(), member["plan_id"].as_str()),
        (Some(0), Some("pln_lotus_unlimited"))
    );
    let drop_in = c
        .post(
            "/bookings",
            book("mem_lotus_03", json!({"plan_id": "pln_lotus_dropin"})),
        )
        .await
        .ok(201);
    assert_eq!(drop_in["price_cents"], 2200);
    let welcome_before = c
        .get("/coupons?status=active")
        .await
        .data()
        .iter()
        .find(|x| x["code"] == "WELCOME10")
        .unwrap()["times_redeemed"]
        .as_i64()
        .unwrap();
    let pct = c
        .post(
            "/bookings",
            book("mem_lotus_05", json!({"coupon_code": "welcome10"})),
        )
        .await
        .ok(201);
    assert_eq!(
        (pct["price_cents"].as_i64(), pct["coupon_id"].as_str()),
        (Some(1800), Some("cpn_lotus_welcome"))
    );
    let amount = c
        .post(
            "/bookings",
            book("mem_lotus_06", json!({"coupon_code": "FRIEND15"})),
        )
        .await
        .ok(201);
    assert_eq!(amount["price_cents"], 500);
    let coupons = c.get("/coupons").await;
    let welcome = coupons
        .data()
        .iter()
        .find(|x| x["code"] == "WELCOME10")
        .unwrap();
    assert_eq!(
        welcome["times_redeemed"].as_i64().unwrap(),
        welcome_before + 1
    );
    let friend = coupons
        .data()
        .iter()
        .find(|x| x["code"] == "FRIEND15")
        .unwrap();
    assert_eq!(friend["times_redeemed"], 1);

    // Archiving through the API makes them unusable too.
    c.post("/plans/pln_lotus_dropin/archive", json!({}))
        .await
        .ok(200);
    c.post(
        "/bookings",
        book("mem_lotus_08", json!({"plan_id": "pln_lotus_dropin"})),
    )
    .await
    .assert_error(409, "plan_archived", None);
    c.post("/coupons/cpn_lotus_friend/archive", json!({}))
        .await
        .ok(200);
    c.post(
        "/bookings",
        book("mem_lotus_08", json!({"coupon_code": "FRIEND15"})),
    )
    .await
    .assert_error(409, "coupon_archived", None);
    // A coupon at its redemption limit is used up.
    let once = c
        .post(
            "/coupons",
            json!({"code": "ONCE", "percent_off": 50, "max_redemptions": 1}),
        )
        .await
        .ok(201);
    assert_eq!(once["times_redeemed"], 0);
    c.post(
        "/bookings",
        book("mem_lotus_08", json!({"coupon_code": "ONCE"})),
    )
    .await
    .ok(201);
    let used = c
        .post(
            "/bookings",
            book("mem_lotus_09", json!({"coupon_code": "ONCE"})),
        )
        .await;
    used.assert_error(409, "coupon_used_up", None);
    assert_eq!(
        used.message(),
        "coupon ONCE is used up (1 of 1 redemptions)"
    );
    // An expired coupon, and an amount coupon in another currency, are refused.
    c.post(
        "/coupons",
        json!({"code": "OLD", "percent_off": 10, "expires_at": "2020-01-01T00:00:00Z"}),
    )
    .await
    .ok(201);
    let expired = c
        .post(
            "/bookings",
            book("mem_lotus_09", json!({"coupon_code": "OLD"})),
        )
        .await;
    expired.assert_error(409, "coupon_expired", None);
    assert_eq!(expired.message(), "coupon OLD has expired");
    c.post(
        "/coupons",
        json!({"code": "EUROS", "amount_off_cents": 500, "currency": "EUR"}),
    )
    .await
    .ok(201);
    let euros = c
        .post(
            "/bookings",
            book("mem_lotus_09", json!({"coupon_code": "EUROS"})),
        )
        .await;
    euros.assert_error(409, "currency_mismatch", None);
    assert_eq!(
        euros.message(),
        "coupon EUROS is in another currency than the class (USD)"
    );
    assert_eq!(
        c.get(&format!("/schedule/{occ}/bookings"))
            .await
            .data()
            .len(),
        5,
        "member, drop-in, two coupons, ONCE"
    );
}

#[tokio::test]
async fn cancelling_a_booking_refunds_on_request() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let (_, occ) = class_with_session(&c, "Refund Class", 10, 53).await;
    let a = c
        .post(
            "/bookings",
            json!({"occurrence_id": occ, "member_id": "mem_lotus_02"}),
        )
        .await
        .ok(201);
    let b = c
        .post(
            "/bookings",
            json!({"occurrence_id": occ, "member_id": "mem_lotus_03"}),
        )
        .await
        .ok(201);
    let refunded = c
        .post(
            &format!("/bookings/{}/cancel", a["id"].as_str().unwrap()),
            json!({"refund": true, "reason": "Sick"}),
        )
        .await
        .ok(200);
    assert_eq!(
        (
            refunded["status"].as_str(),
            refunded["refund_cents"].as_i64()
        ),
        (Some("cancelled"), Some(2000))
    );
    assert!(refunded["cancelled_at"].is_string());
    let kept = c
        .post(
            &format!("/bookings/{}/cancel", b["id"].as_str().unwrap()),
            json!({"refund": false}),
        )
        .await
        .ok(200);
    assert_eq!(kept["refund_cents"], 0);
    let again = c
        .post(
            &format!("/bookings/{}/cancel", a["id"].as_str().unwrap()),
            json!({"refund": true}),
        )
        .await;
    again.assert_error(409, "booking_not_active", None);
    assert_eq!(
        again.message(),
        format!(
            "booking {} is cancelled and cannot be cancelled",
            a["id"].as_str().unwrap()
        )
    );
    let attended = c.get("/bookings?status=attended&limit=1").await;
    let res = c
        .post(
            &format!(
                "/bookings/{}/cancel",
                attended.data()[0]["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    res.assert_error(409, "booking_not_active", None);
    c.post("/bookings/bkg_nope/cancel", json!({}))
        .await
        .assert_error(404, "not_found", None);
    c.post(
        &format!("/bookings/{}/cancel", b["id"].as_str().unwrap()),
        json!({"refund": "yes"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("refund"));
}

#[tokio::test]
async fn listing_bookings_filters_on_session_start_status_and_member() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = c.get(&format!("/bookings?limit=100{cursor}")).await.ok(200);
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert!(all.len() > 200, "a busy seeded studio: {}", all.len());
    let starts: Vec<&str> = all
        .iter()
        .map(|b| b["starts_at"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "ordered by session start"
    );
    let (from, to) = (crate::harness::at(-7, 0, 0), crate::harness::at(0, 0, 0));
    let week = c
        .get(&format!("/bookings?from={from}&to={to}&limit=100"))
        .await;
    let expected = all
        .iter()
        .filter(|b| {
            let s = b["starts_at"].as_str().unwrap();
            s >= from.as_str() && s < to.as_str()
        })
        .count();
    assert_eq!(week.data().len(), expected);
    let member = c.get("/bookings?member_id=mem_lotus_01&limit=100").await;
    assert_eq!(
        member.data().len(),
        all.iter()
            .filter(|b| b["member_id"] == "mem_lotus_01")
            .count()
    );
    for status in ["booked", "cancelled", "attended"] {
        let n = all.iter().filter(|b| b["status"] == status).count();
        assert!(n > 0, "seed has {status} bookings");
        let mut got = 0;
        let mut cursor = String::new();
        loop {
            let page = c
                .get(&format!("/bookings?status={status}&limit=100{cursor}"))
                .await
                .ok(200);
            got += page["data"].as_array().unwrap().len();
            match page["next_cursor"].as_str() {
                Some(n) => cursor = format!("&cursor={n}"),
                None => break,
            }
        }
        assert_eq!(got, n, "{status}");
    }
    let refunded = all
        .iter()
        .filter(|b| b["status"] == "cancelled" && b["refund_cents"].as_i64() > Some(0))
        .count();
    assert!(refunded > 0, "some cancelled bookings were refunded");
    c.get("/bookings?status=gone")
        .await
        .assert_error(400, "invalid_request", Some("status"));
}

#[tokio::test]
async fn concurrent_bookings_never_overfill_a_session() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let (_, occ) = class_with_session(&c, "Rush Class", 3, 54).await;
    let url = format!("{}/bookings", api.server.base_url());
    let token = api.server.service_token().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=10 {
        let (url, token, occ) = (url.clone(), token.clone(), occ.clone());
        tasks.spawn(async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("X-Flow-Studio", PRO)
                .json(&json!({"occurrence_id": occ, "member_id": format!("mem_lotus_{i:02}")}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body)
        });
    }
    let (mut created, mut full) = (0, 0);
    while let Some(res) = tasks.join_next().await {
        let (status, body) = res.unwrap();
        match status {
            201 => created += 1,
            409 => {
                assert_eq!(body["error"]["code"], "session_full");
                full += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, full), (3, 7));
    assert_eq!(
        c.get(&format!("/schedule/{occ}/bookings"))
            .await
            .data()
            .len(),
        3
    );
}
