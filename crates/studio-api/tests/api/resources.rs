//! Members, content, plans, instructors, locations and rooms, coupons, programs, expenses,
//! messages and the financial summary.

use serde_json::json;

use crate::harness::{Api, FREE, PRO, at};

#[tokio::test]
async fn members_invitations_roles_and_memberships() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let invited = c.post("/members/invitations", json!({"email": "New.Person@Example.com", "name": "New Person", "plan_id": "pln_lotus_unlimited", "message": "Welcome!"})).await.ok(201);
    let id = invited["id"].as_str().unwrap();
    assert!(id.starts_with("mem_"));
    assert_eq!(
        (
            invited["email"].as_str(),
            invited["status"].as_str(),
            invited["role"].as_str()
        ),
        (
            Some("new.person@example.com"),
            Some("invited"),
            Some("member")
        )
    );
    assert_eq!(
        (
            invited["membership"]["plan_id"].as_str(),
            invited["membership"]["status"].as_str()
        ),
        (Some("pln_lotus_unlimited"), Some("active"))
    );
    let dup = c
        .post(
            "/members/invitations",
            json!({"email": "new.person@example.com", "name": "Again"}),
        )
        .await;
    dup.assert_error(409, "email_taken", None);
    assert_eq!(
        dup.message(),
        "a member with e-mail new.person@example.com already exists"
    );
    // The same e-mail in another studio is a different member.
    api.studio(FREE)
        .post(
            "/members/invitations",
            json!({"email": "new.person@example.com", "name": "New Person"}),
        )
        .await
        .ok(201);
    let archived = c
        .post(
            "/members/invitations",
            json!({"email": "a@example.com", "name": "A", "plan_id": "pln_lotus_founders"}),
        )
        .await;
    archived.assert_error(409, "plan_archived", None);
    assert_eq!(
        archived.message(),
        "plan Founders Rate is archived and cannot be sold"
    );
    c.post(
        "/members/invitations",
        json!({"email": "a@example.com", "name": "A", "plan_id": "pln_lotus_pack10"}),
    )
    .await
    .assert_error(409, "not_a_membership", None);
    c.post(
        "/members/invitations",
        json!({"email": "a@example.com", "name": "A", "role": "owner"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("role"));
    c.post(
        "/members/invitations",
        json!({"email": "not-an-email", "name": "A"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("email"));

    let vip = c
        .patch(
            &format!("/members/{id}"),
            json!({"role": "vip", "phone": "+1 555 0100"}),
        )
        .await
        .ok(200);
    assert_eq!(
        (
            vip["role"].as_str(),
            vip["phone"].as_str(),
            vip["name"].as_str()
        ),
        (Some("vip"), Some("+1 555 0100"), Some("New Person"))
    );
    let bad = c
        .patch(&format!("/members/{id}"), json!({"role": "admin"}))
        .await;
    bad.assert_error(400, "invalid_request", Some("role"));
    assert_eq!(
        bad.message(),
        "must be one of guest, member, vip, staff (got `admin`)"
    );
    assert_eq!(c.get(&format!("/members/{id}")).await.body["role"], "vip");

    let cancelled = c
        .post(
            &format!("/members/{id}/membership/cancel"),
            json!({"reason": "Moving away"}),
        )
        .await
        .ok(200);
    assert_eq!(cancelled["membership"]["status"], "cancelled");
    assert!(cancelled["membership"]["cancelled_at"].is_string());
    let again = c
        .post(&format!("/members/{id}/membership/cancel"), json!({}))
        .await;
    again.assert_error(409, "no_active_membership", None);
    assert_eq!(
        again.message(),
        "New Person has no active membership to cancel"
    );
    c.post("/members/mem_lotus_02/membership/cancel", json!({}))
        .await
        .assert_error(409, "no_active_membership", None);
    c.get("/members/mem_nope")
        .await
        .assert_error(404, "not_found", None);

    assert_eq!(c.get("/members?status=invited").await.data().len(), 3);
    assert_eq!(c.get("/members?role=staff").await.data().len(), 1);
    let q = c.get("/members?q=olivia").await;
    assert_eq!(q.data().len(), 1);
    assert_eq!(q.data()[0]["membership"]["plan_id"], "pln_lotus_unlimited");
    c.get("/members?role=owner")
        .await
        .assert_error(400, "invalid_request", Some("role"));
}

#[tokio::test]
async fn content_visibility_and_details() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    assert_eq!(c.get("/content").await.data().len(), 6);
    assert_eq!(c.get("/content?visibility=public").await.data().len(), 2);
    let updated = c
        .patch(
            "/content/cnt_lotus_crow",
            json!({"visibility": "public", "tags": ["arm balances", "crow"], "level": "advanced"}),
        )
        .await
        .ok(200);
    assert_eq!(updated["visibility"], "public");
    assert_eq!(updated["tags"], json!(["arm balances", "crow"]));
    assert_eq!(updated["title"], "Crow Pose Breakdown");
    assert_eq!(c.get("/content?visibility=public").await.data().len(), 3);
    assert_eq!(c.get("/content?q=crow").await.data().len(), 1);
    c.patch("/content/cnt_lotus_crow", json!({"visibility": "secret"}))
        .await
        .assert_error(400, "invalid_request", Some("visibility"));
    c.patch("/content/cnt_lotus_crow", json!({"duration_seconds": 1}))
        .await
        .assert_error(400, "invalid_request", Some("duration_seconds"));
    c.patch("/content/cnt_nope", json!({"title": "X"}))
        .await
        .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn plans_kinds_and_archiving() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    assert_eq!(c.get("/plans?status=active").await.data().len(), 4);
    assert_eq!(c.get("/plans?status=archived").await.data().len(), 1);
    let pack = c.post("/plans", json!({"name": "5-Class Pack", "kind": "class_pack", "price_cents": 9500, "class_credits": 5})).await.ok(201);
    assert_eq!(
        (
            pack["currency"].as_str(),
            pack["interval"].as_str(),
            pack["status"].as_str()
        ),
        (Some("USD"), None, Some("active"))
    );
    let monthly = c
        .post(
            "/plans",
            json!({"name": "Student", "kind": "membership", "price_cents": 7900}),
        )
        .await
        .ok(201);
    assert_eq!(monthly["interval"], "month");
    c.post(
        "/plans",
        json!({"name": "X", "kind": "class_pack", "price_cents": 1}),
    )
    .await
    .assert_error(400, "invalid_request", Some("class_credits"));
    c.post(
        "/plans",
        json!({"name": "X", "kind": "drop_in", "price_cents": 1, "interval": "month"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("interval"));
    c.post(
        "/plans",
        json!({"name": "X", "kind": "subscription", "price_cents": 1}),
    )
    .await
    .assert_error(400, "invalid_request", Some("kind"));
    c.post(
        "/plans",
        json!({"name": "X", "kind": "drop_in", "price_cents": -5}),
    )
    .await
    .assert_error(400, "invalid_request", Some("price_cents"));
    let id = pack["id"].as_str().unwrap();
    let changed = c
        .patch(
            &format!("/plans/{id}"),
            json!({"price_cents": 9000, "class_credits": 6}),
        )
        .await
        .ok(200);
    assert_eq!(
        (
            changed["price_cents"].as_i64(),
            changed["class_credits"].as_i64()
        ),
        (Some(9000), Some(6))
    );
    let archived = c
        .post(&format!("/plans/{id}/archive"), json!({}))
        .await
        .ok(200);
    assert_eq!(archived["status"], "archived");
    let again = c.post(&format!("/plans/{id}/archive"), json!({})).await;
    again.assert_error(409, "already_archived", None);
    assert_eq!(again.message(), "plan 5-Class Pack is already archived");
    assert_eq!(c.get("/plans?status=archived").await.data().len(), 2);
}

#[tokio::test]
async fn instructors_and_programs() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    assert_eq!(c.get("/instructors").await.data().len(), 4);
    assert_eq!(
        c.get("/instructors?active=false").await.data()[0]["name"],
        "Tom Reyes"
    );
    let new = c
        .post(
            "/instructors",
            json!({"name": "Zoe Park", "email": "zoe@example.com", "specialties": ["ashtanga"]}),
        )
        .await
        .ok(201);
    assert_eq!(
        (new["active"].as_bool(), new["specialties"].clone()),
        (Some(true), json!(["ashtanga"]))
    );
    let id = new["id"].as_str().unwrap();
    let off = c
        .patch(
            &format!("/instructors/{id}"),
            json!({"active": false, "bio": "On sabbatical"}),
        )
        .await
        .ok(200);
    assert_eq!(
        (
            off["active"].as_bool(),
            off["bio"].as_str(),
            off["email"].as_str()
        ),
        (Some(false), Some("On sabbatical"), Some("zoe@example.com"))
    );
    assert_eq!(c.get("/instructors?active=false").await.data().len(), 2);
    c.post("/instructors", json!({"name": "Y", "email": "nope"}))
        .await
        .assert_error(400, "invalid_request", Some("email"));
    c.patch(&format!("/instructors/{id}"), json!({"active": "no"}))
        .await
        .assert_error(400, "invalid_request", Some("active"));

    let prg = c
        .post("/programs", json!({"name": "Ashtanga", "color": "#aabbcc"}))
        .await
        .ok(201);
    assert_eq!(
        prg,
        json!({"id": prg["id"], "name": "Ashtanga", "description": null, "color": "#aabbcc"})
    );
    let changed = c
        .patch(
            &format!("/programs/{}", prg["id"].as_str().unwrap()),
            json!({"description": "Mysore style"}),
        )
        .await
        .ok(200);
    assert_eq!(
        (changed["description"].as_str(), changed["color"].as_str()),
        (Some("Mysore style"), Some("#aabbcc"))
    );
    c.post("/programs", json!({"name": "X", "color": "red"}))
        .await
        .assert_error(400, "invalid_request", Some("color"));
    assert_eq!(c.get("/programs").await.data().len(), 5);
}

#[tokio::test]
async fn locations_and_rooms_rules() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let locations = c.get("/locations").await;
    assert_eq!(locations.data().len(), 2);
    assert_eq!(locations.data()[0]["name"], "Alberta Arts");
    assert_eq!(locations.data()[1]["rooms"].as_array().unwrap().len(), 2);

    let created = c.post("/locations", json!({"name": "Sellwood", "address": "1 SE Tacoma St", "city": "Portland", "timezone": "America/Los_Angeles", "rooms": [{"name": "Loft", "capacity": 30}]})).await.ok(201);
    let loc = created["id"].as_str().unwrap();
    assert_eq!(created["rooms"][0]["name"], "Loft");
    let dup = c
        .post(
            &format!("/locations/{loc}/rooms"),
            json!({"name": "loft", "capacity": 10}),
        )
        .await;
    dup.assert_error(409, "room_name_taken", None);
    assert_eq!(dup.message(), "this location already has a room named loft");
    // The same name in another location is fine.
    c.post(
        "/locations/loc_lotus_alberta/rooms",
        json!({"name": "Loft", "capacity": 10}),
    )
    .await
    .ok(201);
    c.post(
        &format!("/locations/{loc}/rooms"),
        json!({"name": "Big", "capacity": 501}),
    )
    .await
    .assert_error(400, "invalid_request", Some("capacity"));
    c.post(
        &format!("/locations/{loc}/rooms"),
        json!({"name": "Zero", "capacity": 0}),
    )
    .await
    .assert_error(400, "invalid_request", Some("capacity"));
    let cellar = c
        .post(
            &format!("/locations/{loc}/rooms"),
            json!({"name": "Cellar", "capacity": 8}),
        )
        .await
        .ok(201);
    let cellar_id = cellar["id"].as_str().unwrap();
    c.patch(
        &format!("/locations/{loc}/rooms/{cellar_id}"),
        json!({"name": "LOFT"}),
    )
    .await
    .assert_error(409, "room_name_taken", None);
    let renamed = c
        .patch(
            &format!("/locations/{loc}/rooms/{cellar_id}"),
            json!({"name": "Studio B", "capacity": 9}),
        )
        .await
        .ok(200);
    assert_eq!(
        (renamed["name"].as_str(), renamed["capacity"].as_i64()),
        (Some("Studio B"), Some(9))
    );
    c.post("/locations", json!({"name": "X", "address": "A", "city": "C", "rooms": [{"name": "R", "capacity": 5}, {"name": "r", "capacity": 5}]})).await.assert_error(409, "room_name_taken", None);
    assert_eq!(
        c.get("/locations").await.data().len(),
        3,
        "the refused location was not created"
    );
    let patched = c
        .patch(
            &format!("/locations/{loc}"),
            json!({"address": "2 SE Tacoma St"}),
        )
        .await
        .ok(200);
    assert_eq!(
        (patched["address"].as_str(), patched["name"].as_str()),
        (Some("2 SE Tacoma St"), Some("Sellwood"))
    );

    // Deleting with upcoming occurrences is 409; without, it works.
    let busy = c.delete("/locations/loc_lotus_pearl").await;
    busy.assert_error(409, "in_use", None);
    assert!(
        busy.message().starts_with("location Pearl District has "),
        "{}",
        busy.message()
    );
    c.delete("/locations/loc_lotus_pearl/rooms/rm_lotus_sun")
        .await
        .assert_error(409, "in_use", None);
    assert_eq!(
        c.get("/locations")
            .await
            .data()
            .iter()
            .filter(|l| l["id"] == "loc_lotus_pearl")
            .count(),
        1
    );
    assert_eq!(
        c.delete(&format!("/locations/{loc}/rooms/{cellar_id}"))
            .await
            .ok(200),
        json!({"id": cellar_id, "deleted": true})
    );
    c.delete(&format!("/locations/{loc}/rooms/{cellar_id}"))
        .await
        .assert_error(404, "not_found", None);
    // A room reached through the wrong location is 404.
    c.delete("/locations/loc_lotus_alberta/rooms/rm_lotus_sun")
        .await
        .assert_error(404, "not_found", None);
    c.delete(&format!("/locations/{loc}")).await.ok(200);
    assert_eq!(c.get("/locations").await.data().len(), 2);
    c.post(
        "/locations",
        json!({"name": "X", "address": "A", "city": "C", "timezone": "Mars Time"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("timezone"));
}

#[tokio::test]
async fn coupon_rules() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let pct = c.post("/coupons", json!({"code": "SPRING20", "percent_off": 20, "expires_at": "2027-03-31T23:59:59-07:00"})).await.ok(201);
    assert_eq!(
        (
            pct["status"].as_str(),
            pct["times_redeemed"].as_i64(),
            pct["expires_at"].as_str()
        ),
        (Some("active"), Some(0), Some("2027-04-01T06:59:59Z"))
    );
    let amt = c
        .post(
            "/coupons",
            json!({"code": "TENOFF", "amount_off_cents": 1000, "currency": "USD"}),
        )
        .await
        .ok(201);
    assert_eq!(amt["amount_off_cents"], 1000);
    c.post("/coupons", json!({"code": "SPRING20", "percent_off": 5}))
        .await
        .assert_error(409, "code_taken", None);
    c.post("/coupons", json!({"code": "ZERO", "percent_off": 0}))
        .await
        .assert_error(400, "invalid_request", Some("percent_off"));
    c.post("/coupons", json!({"code": "MORE", "percent_off": 101}))
        .await
        .assert_error(400, "invalid_request", Some("percent_off"));
    let no_cur = c
        .post(
            "/coupons",
            json!({"code": "NOCUR", "amount_off_cents": 500}),
        )
        .await;
    no_cur.assert_error(400, "invalid_request", Some("currency"));
    assert_eq!(no_cur.message(), "an amount coupon needs a currency");
    c.post(
        "/coupons",
        json!({"code": "NEG", "amount_off_cents": 0, "currency": "USD"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("amount_off_cents"));
    c.post(
        "/coupons",
        json!({"code": "BOTH", "percent_off": 5, "amount_off_cents": 5, "currency": "USD"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("amount_off_cents"));
    c.post("/coupons", json!({"code": "NONE"}))
        .await
        .assert_error(400, "invalid_request", Some("percent_off"));
    c.post("/coupons", json!({"code": "lower", "percent_off": 5}))
        .await
        .assert_error(400, "invalid_request", Some("code"));
    c.post("/coupons", json!({"code": "AB", "percent_off": 5}))
        .await
        .assert_error(400, "invalid_request", Some("code"));
    let archived = c
        .post(
            &format!("/coupons/{}/archive", pct["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(archived["status"], "archived");
    c.post(
        &format!("/coupons/{}/archive", pct["id"].as_str().unwrap()),
        json!({}),
    )
    .await
    .assert_error(409, "already_archived", None);
    assert_eq!(c.get("/coupons?status=active").await.data().len(), 3);
    assert_eq!(c.get("/coupons?status=archived").await.data().len(), 2);
}

#[tokio::test]
async fn expenses_rules_and_listing() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let zero = c.post("/expenses", json!({"description": "Mats", "category": "equipment", "amount_cents": 0, "incurred_on": "2026-10-01"})).await;
    zero.assert_error(400, "invalid_request", Some("amount_cents"));
    assert_eq!(zero.message(), "must be greater than 0 (got 0)");
    c.post("/expenses", json!({"description": "Mats", "category": "equipment", "amount_cents": -10, "incurred_on": "2026-10-01"})).await.assert_error(400, "invalid_request", Some("amount_cents"));
    c.post("/expenses", json!({"description": "Mats", "category": "food", "amount_cents": 10, "incurred_on": "2026-10-01"})).await.assert_error(400, "invalid_request", Some("category"));
    c.post("/expenses", json!({"description": "Mats", "category": "equipment", "amount_cents": 10, "incurred_on": "01/10/2026"})).await.assert_error(400, "invalid_request", Some("incurred_on"));
    let e = c.post("/expenses", json!({"description": "Mats", "category": "equipment", "amount_cents": 12_345, "incurred_on": "2020-10-01", "vendor": "Manduka"})).await.ok(201);
    let id = e["id"].as_str().unwrap();
    assert_eq!(e["currency"], "USD");
    let changed = c
        .patch(&format!("/expenses/{id}"), json!({"amount_cents": 20_000}))
        .await
        .ok(200);
    assert_eq!(
        (changed["amount_cents"].as_i64(), changed["vendor"].as_str()),
        (Some(20_000), Some("Manduka"))
    );
    c.patch(&format!("/expenses/{id}"), json!({"amount_cents": 0}))
        .await
        .assert_error(400, "invalid_request", Some("amount_cents"));
    let old = c.get("/expenses?from=2020-01-01&to=2020-12-31").await;
    assert_eq!(old.data().len(), 1);
    assert_eq!(old.data()[0]["amount_cents"], 20_000);
    let all = c.get("/expenses?limit=100").await;
    let dates: Vec<&str> = all
        .data()
        .iter()
        .map(|e| e["incurred_on"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(*dates.last().unwrap(), "2020-10-01");
    let rent = c.get("/expenses?category=rent&limit=100").await;
    assert!(rent.data().len() >= 4 && rent.data().iter().all(|e| e["category"] == "rent"));
    assert_eq!(
        c.delete(&format!("/expenses/{id}")).await.ok(200),
        json!({"id": id, "deleted": true})
    );
    c.delete(&format!("/expenses/{id}"))
        .await
        .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn messages_go_only_to_members_of_the_studio() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let inbox = c.get("/messages").await;
    assert_eq!(inbox.data().len(), 5);
    let sent_at: Vec<&str> = inbox
        .data()
        .iter()
        .map(|m| m["sent_at"].as_str().unwrap())
        .collect();
    assert!(sent_at.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(inbox.data().iter().all(|m| m["direction"] == "received"));
    assert_eq!(inbox.data()[0]["subject"], "Can I freeze my membership?");

    let sent = c.post("/messages", json!({"member_ids": ["mem_lotus_01", "mem_lotus_02", "mem_lotus_01"], "subject": "Holiday hours", "body": "Closed on the 25th."})).await.ok(201);
    assert_eq!(
        (sent["direction"].as_str(), sent["member_ids"].clone()),
        (Some("sent"), json!(["mem_lotus_01", "mem_lotus_02"]))
    );
    let unknown = c
        .post(
            "/messages",
            json!({"member_ids": ["mem_lotus_01", "mem_nope"], "subject": "S", "body": "B"}),
        )
        .await;
    unknown.assert_error(404, "not_found", Some("member_ids"));
    assert_eq!(unknown.message(), "member `mem_nope` not found");
    c.post(
        "/messages",
        json!({"member_ids": [], "subject": "S", "body": "B"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("member_ids"));
    let many: Vec<String> = (0..51).map(|i| format!("mem_{i}")).collect();
    c.post(
        "/messages",
        json!({"member_ids": many, "subject": "S", "body": "B"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("member_ids"));
    c.post(
        "/messages",
        json!({"member_ids": ["mem_lotus_01"], "subject": "", "body": "B"}),
    )
    .await
    .assert_error(400, "invalid_request", Some("subject"));
    assert_eq!(
        c.get("/messages").await.data().len(),
        5,
        "sent messages are not in the inbox"
    );
}

#[tokio::test]
async fn financial_summary_adds_up() {
    let api = Api::start().await;
    let c = api.studio(PRO);
    let month = c.get("/financials/summary").await.ok(200);
    let periods = month["data"].as_array().unwrap();
    assert_eq!(periods.len(), 6, "six calendar months by default");
    assert_eq!(
        (month["group_by"].as_str(), month["currency"].as_str()),
        (Some("month"), Some("USD"))
    );
    let with_revenue = periods
        .iter()
        .filter(|p| p["revenue_cents"].as_i64() > Some(0))
        .count();
    assert!(
        with_revenue >= 2,
        "more than one month earned something: {month}"
    );
    for p in periods {
        assert_eq!(
            p["net_cents"].as_i64().unwrap(),
            p["revenue_cents"].as_i64().unwrap() - p["expenses_cents"].as_i64().unwrap()
        );
    }
    let best = periods
        .iter()
        .max_by_key(|p| p["net_cents"].as_i64())
        .unwrap();
    assert!(best["period"].as_str().unwrap().len() == 7);

    // Totals match the bookings and expenses lists over the same range.
    let (from, to) = (
        month["from"].as_str().unwrap().to_owned(),
        month["to"].as_str().unwrap().to_owned(),
    );
    let (mut revenue, mut bookings, mut cursor) = (0i64, 0i64, String::new());
    loop {
        let page = c
            .get(&format!("/bookings?from={from}&to={to}&limit=100{cursor}"))
            .await
            .ok(200);
        for b in page["data"].as_array().unwrap() {
            revenue += b["price_cents"].as_i64().unwrap() - b["refund_cents"].as_i64().unwrap();
            bookings += i64::from(b["status"] != "cancelled");
        }
        match page["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    let expenses: i64 = c
        .get(&format!("/expenses?from={from}&to={to}&limit=100"))
        .await
        .data()
        .iter()
        .map(|e| e["amount_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(month["totals"]["revenue_cents"].as_i64().unwrap(), revenue);
    assert_eq!(month["totals"]["bookings"].as_i64().unwrap(), bookings);
    assert_eq!(
        month["totals"]["expenses_cents"].as_i64().unwrap(),
        expenses
    );
    assert!(revenue > 0 && expenses > 0);

    // A new expense shows up in its period.
    let today = at(0, 0, 0)[..10].to_owned();
    c.post("/expenses", json!({"description": "Plants", "category": "other", "amount_cents": 777, "incurred_on": today})).await.ok(201);
    let after = c.get("/financials/summary").await.ok(200);
    assert_eq!(
        after["totals"]["expenses_cents"].as_i64().unwrap(),
        expenses + 777
    );

    let week = c
        .get(&format!(
            "/financials/summary?group_by=week&from={}&to={}",
            &at(-28, 0, 0)[..10],
            &at(1, 0, 0)[..10]
        ))
        .await
        .ok(200);
    let weeks = week["data"].as_array().unwrap();
    assert!((5..=6).contains(&weeks.len()));
    let day = c
        .get("/financials/summary?group_by=day&from=2026-01-01&to=2026-01-08")
        .await
        .ok(200);
    assert_eq!(day["data"].as_array().unwrap().len(), 7);
    assert_eq!(day["data"][0]["period"], "2026-01-01");
    c.get("/financials/summary?group_by=year")
        .await
        .assert_error(400, "invalid_request", Some("group_by"));
    c.get("/financials/summary?from=2026-02-01&to=2026-01-01")
        .await
        .assert_error(400, "invalid_request", Some("to"));
    c.get("/financials/summary?group_by=day&from=2000-01-01&to=2026-01-01")
        .await
        .assert_error(400, "invalid_request", Some("from"));
}
