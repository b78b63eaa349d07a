//! Studio A can never read or change studio B's rows: tried on every resource type.

use serde_json::{Value, json};

use crate::harness::{Api, FREE, PRO, open_session};

#[tokio::test]
async fn another_studios_rows_are_404_on_every_resource() {
    let api = Api::start().await;
    let pro = api.studio(PRO);
    let free = api.studio(FREE);
    let fs_occ = open_session(&free).await["id"].as_str().unwrap().to_owned();
    let lotus_occ = open_session(&pro).await["id"].as_str().unwrap().to_owned();
    let fs_booking = free.get("/bookings?limit=1").await.data()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let soon = (chrono::Utc::now() + chrono::Duration::days(70)).to_rfc3339();
    let fresh = pro
        .post(
            "/members/invitations",
            json!({"email": "fresh@example.com", "name": "Fresh Face"}),
        )
        .await
        .ok(201);
    let fresh = fresh["id"].as_str().unwrap();
    let writes_before = api.server.write_count();

    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/classes/cls_fs_reformer".into(), None),
        (
            "PATCH",
            "/classes/cls_fs_reformer".into(),
            Some(json!({"name": "Hijacked"})),
        ),
        (
            "POST",
            "/classes/cls_fs_reformer/cancel".into(),
            Some(json!({})),
        ),
        ("DELETE", "/classes/cls_fs_reformer".into(), None),
        (
            "POST",
            "/classes/cls_fs_reformer/occurrences".into(),
            Some(json!({"starts_at": soon})),
        ),
        (
            "POST",
            format!("/schedule/{fs_occ}/reschedule"),
            Some(json!({"starts_at": soon})),
        ),
        ("GET", format!("/schedule/{fs_occ}/bookings"), None),
        ("GET", "/members/mem_fs_01".into(), None),
        (
            "PATCH",
            "/members/mem_fs_01".into(),
            Some(json!({"role": "vip"})),
        ),
        (
            "POST",
            "/members/mem_fs_01/membership/cancel".into(),
            Some(json!({})),
        ),
        (
            "PATCH",
            "/content/cnt_fs_core".into(),
            Some(json!({"visibility": "hidden"})),
        ),
        (
            "PATCH",
            "/plans/pln_fs_monthly".into(),
            Some(json!({"price_cents": 1})),
        ),
        (
            "POST",
            "/plans/pln_fs_monthly/archive".into(),
            Some(json!({})),
        ),
        (
            "PATCH",
            "/instructors/ins_fs_jo".into(),
            Some(json!({"active": false})),
        ),
        (
            "PATCH",
            "/locations/loc_fs_main".into(),
            Some(json!({"name": "Hijacked"})),
        ),
        ("DELETE", "/locations/loc_fs_main".into(), None),
        (
            "POST",
            "/locations/loc_fs_main/rooms".into(),
            Some(json!({"name": "Annex", "capacity": 5})),
        ),
        (
            "PATCH",
            "/locations/loc_fs_main/rooms/rm_fs_mat".into(),
            Some(json!({"capacity": 1})),
        ),
        (
            "DELETE",
            "/locations/loc_fs_main/rooms/rm_fs_mat".into(),
            None,
        ),
        (
            "PATCH",
            "/locations/loc_lotus_pearl/rooms/rm_fs_mat".into(),
            Some(json!({"capacity": 1})),
        ),
        (
            "DELETE",
            "/locations/loc_lotus_pearl/rooms/rm_fs_mat".into(),
            None,
        ),
        (
            "POST",
            "/coupons/cpn_fs_first/archive".into(),
            Some(json!({})),
        ),
        (
            "PATCH",
            "/programs/prg_fs_mat".into(),
            Some(json!({"name": "Hijacked"})),
        ),
        (
            "POST",
            format!("/bookings/{fs_booking}/cancel"),
            Some(json!({"refund": true})),
        ),
        (
            "PATCH",
            "/expenses/exp_fs_001".into(),
            Some(json!({"amount_cents": 1})),
        ),
        ("DELETE", "/expenses/exp_fs_001".into(), None),
    ];
    let n = attempts.len();
    for (method, path, body) in attempts {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = pro.send(m, &path, body.map(|b| b.to_string())).await;
        res.assert_error(404, "not_found", None);
        assert!(
            res.message().ends_with("` not found"),
            "{method} {path}: {}",
            res.message()
        );
    }

    // References to another studio's rows in a body are 404 naming the field.
    let reschedule_path = format!("/schedule/{lotus_occ}/reschedule");
    let refs: Vec<(&str, Value, &str)> = vec![
        (
            "/classes",
            json!({"name": "X", "duration_minutes": 60, "capacity": 10, "price_cents": 0, "program_id": "prg_fs_mat"}),
            "program_id",
        ),
        (
            "/classes",
            json!({"name": "X", "duration_minutes": 60, "capacity": 10, "price_cents": 0, "instructor_id": "ins_fs_jo"}),
            "instructor_id",
        ),
        (
            "/classes",
            json!({"name": "X", "duration_minutes": 60, "capacity": 10, "price_cents": 0, "location_id": "loc_fs_main"}),
            "location_id",
        ),
        (
            "/classes",
            json!({"name": "X", "duration_minutes": 60, "capacity": 10, "price_cents": 0, "room_id": "rm_fs_mat"}),
            "room_id",
        ),
        (
            "/classes/cls_lotus_vinyasa/occurrences",
            json!({"starts_at": soon, "room_id": "rm_fs_mat"}),
            "room_id",
        ),
        (
            "/classes/cls_lotus_vinyasa/occurrences",
            json!({"starts_at": soon, "instructor_id": "ins_fs_jo"}),
            "instructor_id",
        ),
        (
            reschedule_path.as_str(),
            json!({"starts_at": soon, "room_id": "rm_fs_mat"}),
            "room_id",
        ),
        (
            "/bookings",
            json!({"occurrence_id": fs_occ, "member_id": "mem_lotus_01"}),
            "occurrence_id",
        ),
        (
            "/bookings",
            json!({"occurrence_id": lotus_occ, "member_id": "mem_fs_01"}),
            "member_id",
        ),
        (
            "/bookings",
            json!({"occurrence_id": lotus_occ, "member_id": fresh, "plan_id": "pln_fs_monthly"}),
            "plan_id",
        ),
        (
            "/bookings",
            json!({"occurrence_id": lotus_occ, "member_id": fresh, "coupon_code": "FIRST50"}),
            "coupon_code",
        ),
        (
            "/members/invitations",
            json!({"email": "new@example.com", "name": "New", "plan_id": "pln_fs_monthly"}),
            "plan_id",
        ),
        (
            "/messages",
            json!({"member_ids": ["mem_lotus_01", "mem_fs_01"], "subject": "Hi", "body": "Hello"}),
            "member_ids",
        ),
    ];
    for (path, body, field) in &refs {
        pro.post(path, body.clone())
            .await
            .assert_error(404, "not_found", Some(field));
    }
    assert_eq!(
        api.server.write_count(),
        writes_before + (n - 3) as u64 + refs.len() as u64,
        "every write reached the API"
    );

    // Lists never show another studio's rows, and filters on its ids find nothing.
    for path in [
        "/classes",
        "/schedule",
        "/members",
        "/content",
        "/plans",
        "/instructors",
        "/locations",
        "/coupons",
        "/programs",
        "/bookings",
        "/expenses",
        "/messages",
    ] {
        let mut cursor: Option<String> = None;
        let mut rows = 0;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit=100&cursor={c}"),
                None => format!("{path}?limit=100"),
            };
            let page = pro.get(&url).await.ok(200);
            for row in page["data"].as_array().unwrap() {
                rows += 1;
                let text = row.to_string();
                assert!(!text.contains("_fs_"), "{path} leaked {text}");
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert!(rows > 0, "{path} has seeded rows");
    }
    assert_eq!(
        pro.get("/schedule?class_id=cls_fs_reformer")
            .await
            .data()
            .len(),
        0
    );
    assert_eq!(
        pro.get("/bookings?member_id=mem_fs_01").await.data().len(),
        0
    );

    // Nothing of studio B changed.
    let class = free.get("/classes/cls_fs_reformer").await.ok(200);
    assert_eq!(
        (class["name"].as_str(), class["status"].as_str()),
        (Some("Reformer Basics"), Some("active"))
    );
    let member = free.get("/members/mem_fs_01").await.ok(200);
    assert_eq!(member["role"], "member");
    assert_eq!(member["membership"]["status"], "active");
    let locations = free.get("/locations").await.ok(200);
    assert_eq!(locations["data"][0]["name"], "Free Spirit Studio");
    assert_eq!(locations["data"][0]["rooms"].as_array().unwrap().len(), 2);
    assert_eq!(free.get("/plans?status=active").await.data().len(), 2);
    assert_eq!(free.get("/coupons?status=active").await.data().len(), 1);
    assert_eq!(free.get("/instructors?active=true").await.data().len(), 2);
    let programs = free.get("/programs").await;
    assert!(programs.data().iter().any(|p| p["name"] == "Mat"));
    assert!(
        free.get("/expenses?limit=100")
            .await
            .data()
            .iter()
            .any(|e| e["id"] == "exp_fs_001")
    );
    let booking = free.get("/bookings?limit=1").await;
    assert_eq!(booking.data()[0]["id"], fs_booking.as_str());
    assert_eq!(
        booking.data()[0]["status"],
        free.get("/bookings?limit=1").await.data()[0]["status"]
    );
    let content = free.get("/content?q=core").await;
    assert_eq!(content.data()[0]["visibility"], "public");
    let occ = free
        .get(&format!("/schedule/{fs_occ}/bookings"))
        .await
        .ok(200);
    assert!(occ["data"].as_array().is_some());
}

#[tokio::test]
async fn the_directory_is_public_and_shows_both_studios_without_private_fields() {
    let api = Api::start().await;
    let c = api.anon();
    let studios = c.get("/directory/studios").await.ok(200);
    let names: Vec<&str> = studios["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Free Spirit Pilates", "Lotus Flow Yoga"]);
    assert!(
        studios["data"][0].get("tier").is_none(),
        "the tier is not public"
    );
    assert_eq!(
        c.get("/directory/studios?city=denver").await.data().len(),
        1
    );
    assert_eq!(
        c.get("/directory/studios?q=yoga").await.data()[0]["id"],
        PRO
    );

    let classes = c.get("/directory/classes?limit=100").await.ok(200);
    let rows = classes["data"].as_array().unwrap();
    let mut upcoming = 0;
    for studio in [PRO, FREE] {
        let from = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let schedule = api
            .studio(studio)
            .get(&format!("/schedule?status=scheduled&limit=100&from={from}"))
            .await;
        upcoming += schedule
            .data()
            .iter()
            .filter(|o| o["class_name"] != "Aerial Basics")
            .count();
    }
    assert_eq!(rows.len(), upcoming);
    let now = chrono::Utc::now().to_rfc3339();
    let mut last = String::new();
    let mut studios_seen = std::collections::BTreeSet::new();
    for r in rows {
        let st = r["starts_at"].as_str().unwrap().to_owned();
        assert!(
            st.as_str() >= now.as_str() || st[..19] >= now[..19],
            "upcoming only"
        );
        assert!(st >= last, "ordered by start");
        last = st;
        studios_seen.insert(r["studio"]["id"].as_str().unwrap().to_owned());
        assert!(r.get("booked_count").is_none());
        assert_ne!(
            r["class_name"], "Aerial Basics",
            "cancelled classes are not listed"
        );
    }
    assert_eq!(studios_seen.len(), 2);
    let denver = c.get("/directory/classes?city=Denver&limit=100").await;
    assert!(!denver.data().is_empty());
    assert!(denver.data().iter().all(|r| r["studio"]["id"] == FREE));
    let reformer = c.get("/directory/classes?q=reformer&limit=100").await;
    let names: std::collections::BTreeSet<&str> = reformer
        .data()
        .iter()
        .map(|r| r["class_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["Reformer Basics", "Reformer Workshop"]
    );
}
