//! Classes and the timetable: references, validation, cancellation cascade, delete guard,
//! weekly series, overlaps and rescheduling.

use serde_json::json;

use crate::harness::{Api, PRO, at, class_with_session};

#[tokio::test]
async fn create_class_checks_references_and_fields() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let created = c
        .post("/classes", json!({
            "name": "  Evening Flow ", "program_id": "prg_lotus_vinyasa", "instructor_id": "ins_lotus_maya",
            "room_id": "rm_lotus_moon", "duration_minutes": 45, "capacity": 12, "price_cents": 1800, "level": "beginner",
        }))
        .await
        .ok(201);
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("cls_"));
    assert_eq!(
        created,
        json!({
            "id": id, "name": "Evening Flow", "description": null, "program_id": "prg_lotus_vinyasa",
            "instructor_id": "ins_lotus_maya", "location_id": "loc_lotus_pearl", "room_id": "rm_lotus_moon",
            "duration_minutes": 45, "capacity": 12, "price_cents": 1800, "currency": "USD", "level": "beginner",
            "status": "active",
        }),
        "location taken from the room, currency from the studio"
    );
    let read = c.get(&format!("/classes/{id}")).await.ok(200);
    assert_eq!(read["name"], "Evening Flow");
    assert_eq!(read["upcoming"], json!([]));

    let base = json!({"name": "X", "duration_minutes": 60, "capacity": 10, "price_cents": 0});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let mismatch = c
        .post(
            "/classes",
            with("location_id", json!("loc_lotus_alberta"))
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("room_id".into(), json!("rm_lotus_sun"));
                    serde_json::Value::Object(o)
                })
                .unwrap(),
        )
        .await;
    mismatch.assert_error(400, "invalid_request", Some("room_id"));
    assert_eq!(
        mismatch.message(),
        "room rm_lotus_sun is not in location loc_lotus_alberta"
    );
    c.post("/classes", with("program_id", json!("prg_nope")))
        .await
        .assert_error(404, "not_found", Some("program_id"));
    c.post("/classes", with("duration_minutes", json!(4)))
        .await
        .assert_error(400, "invalid_request", Some("duration_minutes"));
    c.post("/classes", with("duration_minutes", json!(481)))
        .await
        .assert_error(400, "invalid_request", Some("duration_minutes"));
    let cap = c.post("/classes", with("capacity", json!(501))).await;
    cap.assert_error(400, "invalid_request", Some("capacity"));
    assert_eq!(cap.message(), "must be between 1 and 500 (got 501)");
    c.post("/classes", with("capacity", json!(0)))
        .await
        .assert_error(400, "invalid_request", Some("capacity"));
    c.post("/classes", with("price_cents", json!(-1)))
        .await
        .assert_error(400, "invalid_request", Some("price_cents"));
    c.post("/classes", with("currency", json!("usd")))
        .await
        .assert_error(400, "invalid_request", Some("currency"));
    c.post("/classes", with("level", json!("expert")))
        .await
        .assert_error(400, "invalid_request", Some("level"));
    c.post("/classes", with("name", json!("   ")))
        .await
        .assert_error(400, "invalid_request", Some("name"));
    c.post(
        "/classes",
        json!({"name": "X", "duration_minutes": 60, "capacity": 10}),
    )
    .await
    .assert_error(400, "invalid_request", None);

    // Listing and filters.
    let active = c.get("/classes?status=active&limit=100").await;
    assert_eq!(active.data().len(), 8, "7 seeded active + 1 new");
    assert_eq!(c.get("/classes?status=cancelled").await.data().len(), 1);
    assert_eq!(
        c.get("/classes?program_id=prg_lotus_yin")
            .await
            .data()
            .len(),
        2
    );
    assert_eq!(
        c.get("/classes?instructor_id=ins_lotus_maya")
            .await
            .data()
            .len(),
        4
    );
    let q = c.get("/classes?q=VINYASA").await;
    assert_eq!(q.data().len(), 1);
    assert_eq!(q.data()[0]["id"], "cls_lotus_vinyasa");
}

#[tokio::test]
async fn get_class_shows_the_next_ten_scheduled_occurrences() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let class = c.get("/classes/cls_lotus_vinyasa").await.ok(200);
    let upcoming = class["upcoming"].as_array().unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let future = c
        .get(&format!(
            "/schedule?class_id=cls_lotus_vinyasa&status=scheduled&from={now}"
        ))
        .await;
    assert!(
        (8..=9).contains(&future.data().len()),
        "three a week for three weeks"
    );
    assert_eq!(upcoming.len(), future.data().len());
    assert_eq!(upcoming, future.data());
    let mut last = String::new();
    for o in upcoming {
        let st = o["starts_at"].as_str().unwrap().to_owned();
        assert!(st > now && st > last);
        assert_eq!(
            (o["status"].as_str(), o["class_id"].as_str()),
            (Some("scheduled"), Some("cls_lotus_vinyasa"))
        );
        last = st;
    }
    let added = c
        .post(
            "/classes/cls_lotus_vinyasa/occurrences",
            json!({"starts_at": at(40, 6, 0), "repeat_weeks": 4}),
        )
        .await
        .ok(201);
    assert_eq!(added["data"].as_array().unwrap().len(), 4);
    assert_eq!(
        c.get("/classes/cls_lotus_vinyasa").await.body["upcoming"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
}

#[tokio::test]
async fn cancelling_a_class_cancels_future_occurrences_and_their_bookings() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let all = c.get("/schedule?class_id=cls_lotus_power&limit=100").await;
    let (past, future): (Vec<_>, Vec<_>) = all
        .data()
        .iter()
        .partition(|o| o["starts_at"].as_str().unwrap() <= now.as_str());
    assert!(!past.is_empty() && !future.is_empty());
    let mut live = Vec::new();
    let mut past_statuses = Vec::new();
    for o in &future {
        let b = c
            .get(&format!(
                "/schedule/{}/bookings?status=booked&limit=100",
                o["id"].as_str().unwrap()
            ))
            .await;
        live.extend(
            b.data()
                .iter()
                .map(|b| b["id"].as_str().unwrap().to_owned()),
        );
    }
    let live_future_bookings = live.len();
    for o in &past {
        let b = c
            .get(&format!(
                "/schedule/{}/bookings?limit=100",
                o["id"].as_str().unwrap()
            ))
            .await;
        past_statuses.push(b.body.clone());
    }
    assert!(live_future_bookings > 0);

    let res = c
        .post(
            "/classes/cls_lotus_power/cancel",
            json!({"reason": "Instructor on leave"}),
        )
        .await
        .ok(200);
    assert_eq!(res["class"]["status"], "cancelled");
    assert_eq!(res["class"]["id"], "cls_lotus_power");
    assert_eq!(res["cancelled_occurrences"], future.len());
    assert_eq!(res["cancelled_bookings"], live_future_bookings);

    for o in &future {
        let id = o["id"].as_str().unwrap();
        let bookings = c.get(&format!("/schedule/{id}/bookings?limit=100")).await;
        for b in bookings.data() {
            assert_eq!(b["status"], "cancelled");
            if live.iter().any(|l| b["id"] == l.as_str()) {
                assert_eq!(
                    b["refund_cents"], b["price_cents"],
                    "studio cancellations are refunded"
                );
                assert!(b["cancelled_at"].as_str().unwrap() >= now.as_str());
            }
        }
    }
    let after = c.get("/schedule?class_id=cls_lotus_power&limit=100").await;
    for o in after.data() {
        let is_past = o["starts_at"].as_str().unwrap() <= now.as_str();
        assert_eq!(o["status"], if is_past { "scheduled" } else { "cancelled" });
    }
    for (o, before) in past.iter().zip(&past_statuses) {
        let b = c
            .get(&format!(
                "/schedule/{}/bookings?limit=100",
                o["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(&b.body, before, "past sessions are kept as they were");
    }
    let again = c.post("/classes/cls_lotus_power/cancel", json!({})).await;
    again.assert_error(409, "already_cancelled", None);
    assert_eq!(again.message(), "class Power Hour is already cancelled");
    let add = c
        .post(
            "/classes/cls_lotus_power/occurrences",
            json!({"starts_at": at(50, 6, 0)}),
        )
        .await;
    add.assert_error(409, "class_cancelled", None);
    c.post("/classes/cls_nope/cancel", json!({}))
        .await
        .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn a_class_that_had_bookings_cannot_be_deleted() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let res = c.delete("/classes/cls_lotus_yin").await;
    res.assert_error(409, "class_has_bookings", None);
    assert!(
        res.message().starts_with("class Yin & Candlelight has "),
        "{}",
        res.message()
    );
    assert!(
        res.message()
            .ends_with(" booking(s) on record and cannot be deleted; cancel it instead")
    );
    assert_eq!(c.get("/classes/cls_lotus_yin").await.status, 200);

    let (id, occ) = class_with_session(&c, "Pop-up Flow", 5, 45).await;
    assert_eq!(
        c.delete(&format!("/classes/{id}")).await.ok(200),
        json!({"id": id, "deleted": true})
    );
    c.get(&format!("/classes/{id}"))
        .await
        .assert_error(404, "not_found", None);
    c.get(&format!("/schedule/{occ}/bookings"))
        .await
        .assert_error(404, "not_found", None);
    c.delete(&format!("/classes/{id}"))
        .await
        .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn weekly_series_overlaps_and_rescheduling() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let (id, _) = class_with_session(&c, "Series", 10, 60).await;
    let series = c
        .post(
            &format!("/classes/{id}/occurrences"),
            json!({"starts_at": at(30, 8, 0).replace('Z', "+02:00"), "repeat_weeks": 3}),
        )
        .await
        .ok(201);
    let rows = series["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (i, o) in rows.iter().enumerate() {
        assert_eq!(
            o["starts_at"],
            at(30 + 7 * i as i64, 6, 0),
            "returned in UTC, a week apart"
        );
        assert_eq!(o["ends_at"], at(30 + 7 * i as i64, 7, 0));
        assert_eq!(
            (o["room_id"].as_str(), o["location_id"].as_str()),
            (Some("rm_lotus_sun"), Some("loc_lotus_pearl"))
        );
        assert_eq!(
            (
                o["status"].as_str(),
                o["booked_count"].as_i64(),
                o["capacity"].as_i64()
            ),
            (Some("scheduled"), Some(0), Some(10))
        );
        assert_eq!(o["class_name"], "Series");
    }
    // A series with one clash is refused whole.
    let before = c
        .get(&format!("/schedule?class_id={id}&limit=100"))
        .await
        .data()
        .len();
    let clash = c
        .post(
            &format!("/classes/{id}/occurrences"),
            json!({"starts_at": at(23, 6, 30), "repeat_weeks": 2}),
        )
        .await;
    clash.assert_error(409, "room_overlap", None);
    assert_eq!(
        clash.message(),
        format!(
            "room rm_lotus_sun is already booked from {} to {} by Series",
            at(30, 6, 0),
            at(30, 7, 0)
        )
    );
    assert_eq!(
        c.get(&format!("/schedule?class_id={id}&limit=100"))
            .await
            .data()
            .len(),
        before
    );
    // Another room at the same time is fine; back-to-back in the same room too.
    c.post(
        &format!("/classes/{id}/occurrences"),
        json!({"starts_at": at(30, 6, 0), "room_id": "rm_lotus_moon"}),
    )
    .await
    .ok(201);
    c.post(
        &format!("/classes/{id}/occurrences"),
        json!({"starts_at": at(30, 7, 0)}),
    )
    .await
    .ok(201);
    c.post(
        &format!("/classes/{id}/occurrences"),
        json!({"starts_at": at(90, 7, 0), "repeat_weeks": 0}),
    )
    .await
    .assert_error(400, "invalid_request", Some("repeat_weeks"));
    c.post(
        &format!("/classes/{id}/occurrences"),
        json!({"starts_at": at(90, 7, 0), "repeat_weeks": 53}),
    )
    .await
    .assert_error(400, "invalid_request", Some("repeat_weeks"));
    c.post(
        &format!("/classes/{id}/occurrences"),
        json!({"starts_at": "2026-12-01 19:00"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("starts_at"));
    c.post(
        &format!("/classes/{id}/occurrences"),
        json!({"starts_at": at(90, 7, 0), "room_id": "rm_nope"}),
    )
    .await
    .assert_error(404, "not_found", Some("room_id"));

    // Rescheduling keeps bookings.
    let occ = rows[0]["id"].as_str().unwrap();
    let b1 = c
        .post(
            "/bookings",
            json!({"occurrence_id": occ, "member_id": "mem_lotus_02"}),
        )
        .await
        .ok(201);
    c.post(
        "/bookings",
        json!({"occurrence_id": occ, "member_id": "mem_lotus_03"}),
    )
    .await
    .ok(201);
    let moved = c
        .post(
            &format!("/schedule/{occ}/reschedule"),
            json!({"starts_at": at(31, 9, 15)}),
        )
        .await
        .ok(200);
    assert_eq!(
        (moved["starts_at"].as_str(), moved["ends_at"].as_str()),
        (Some(at(31, 9, 15).as_str()), Some(at(31, 10, 15).as_str()))
    );
    assert_eq!(moved["booked_count"], 2);
    let bookings = c.get(&format!("/schedule/{occ}/bookings")).await;
    assert_eq!(bookings.data().len(), 2);
    assert!(bookings.data().iter().any(|b| b["id"] == b1["id"]));
    assert!(
        bookings
            .data()
            .iter()
            .all(|b| b["starts_at"] == at(31, 9, 15).as_str() && b["status"] == "booked")
    );
    // Into a clash: 409; to another room: its location follows.
    let second = rows[1]["id"].as_str().unwrap();
    let clash = c
        .post(
            &format!("/schedule/{second}/reschedule"),
            json!({"starts_at": at(31, 9, 45)}),
        )
        .await;
    clash.assert_error(409, "room_overlap", None);
    let elsewhere = c
        .post(
            &format!("/schedule/{second}/reschedule"),
            json!({"starts_at": at(31, 9, 45), "room_id": "rm_lotus_garden"}),
        )
        .await
        .ok(200);
    assert_eq!(elsewhere["location_id"], "loc_lotus_alberta");
    // Moving onto itself is not a clash.
    c.post(
        &format!("/schedule/{occ}/reschedule"),
        json!({"starts_at": at(31, 9, 30)}),
    )
    .await
    .ok(200);
    // A cancelled occurrence cannot be moved.
    let aerial = c
        .get("/schedule?class_id=cls_lotus_aerial&status=cancelled")
        .await;
    let cancelled = aerial.data()[0]["id"].as_str().unwrap();
    let res = c
        .post(
            &format!("/schedule/{cancelled}/reschedule"),
            json!({"starts_at": at(80, 5, 0)}),
        )
        .await;
    res.assert_error(409, "occurrence_cancelled", None);
    assert_eq!(
        res.message(),
        format!("occurrence {cancelled} is cancelled; it cannot be rescheduled")
    );
    c.post(
        "/schedule/occ_nope/reschedule",
        json!({"starts_at": at(80, 5, 0)}),
    )
    .await
    .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn updating_a_class_checks_rules_and_moves_future_capacity() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let updated = c
        .patch(
            "/classes/cls_lotus_prenatal",
            json!({"capacity": 14, "price_cents": 2700, "room_id": "rm_lotus_moon"}),
        )
        .await
        .ok(200);
    assert_eq!(
        (
            updated["capacity"].as_i64(),
            updated["price_cents"].as_i64()
        ),
        (Some(14), Some(2700))
    );
    assert_eq!(
        (updated["room_id"].as_str(), updated["location_id"].as_str()),
        (Some("rm_lotus_moon"), Some("loc_lotus_pearl"))
    );
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let schedule = c
        .get("/schedule?class_id=cls_lotus_prenatal&limit=100")
        .await;
    for o in schedule.data() {
        let future = o["starts_at"].as_str().unwrap() > now.as_str();
        assert_eq!(o["capacity"], if future { 14 } else { 10 });
    }
    c.patch(
        "/classes/cls_lotus_prenatal",
        json!({"location_id": "loc_lotus_alberta", "room_id": "rm_lotus_sun"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("room_id"));
    c.patch(
        "/classes/cls_lotus_prenatal",
        json!({"instructor_id": "ins_nope"}),
    )
    .await
    .assert_error(404, "not_found", Some("instructor_id"));
    c.patch(
        "/classes/cls_lotus_prenatal",
        json!({"status": "cancelled"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("status"));
    c.patch("/classes/cls_lotus_prenatal", json!({"capacity": 0}))
        .await
        .assert_error(400, "invalid_request", Some("capacity"));
    let read = c.get("/classes/cls_lotus_prenatal").await.ok(200);
    assert_eq!(
        (read["capacity"].as_i64(), read["room_id"].as_str()),
        (Some(14), Some("rm_lotus_moon")),
        "failed patches changed nothing"
    );
}
