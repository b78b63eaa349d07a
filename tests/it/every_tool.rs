//! Every tool of the catalog, end to end, as an MCP client uses it: the real gateway, the real
//! embedded Management API, rmcp's client. One scripted studio day with the Pro demo key (every
//! write read back through the gateway), and the tenant boundary tried on every id-taking tool.
//!
//! Every successful answer here is checked against its tool's published `outputSchema`, closed
//! (`additionalProperties: false` on every declared object) and with formats asserted, so a field
//! the Management API sends but the manifest does not declare fails as surely as a declared field
//! it does not send: the manifest cannot drift from the API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::{Duration, NaiveDate, Utc};
use flowgate::tool::Registry;
use serde_json::{Value, json};

use crate::harness::{self, Client, Gateway, call, text};

/// Every tool's published result schema, closed, compiled once.
static OUTPUTS: LazyLock<BTreeMap<String, jsonschema::Validator>> = LazyLock::new(|| {
    Registry::new()
        .unwrap()
        .iter()
        .map(|t| {
            let schema = closed(&Value::Object(t.output_schema_object()));
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{}: output schema does not compile: {e}", t.def.name));
            (t.def.name.to_string(), validator)
        })
        .collect()
});

/// A result schema with `additionalProperties: false` on every object that declares properties
/// (an object declared without properties, like the audit log's recorded arguments, stays open).
fn closed(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => {
            let mut out: serde_json::Map<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), closed(v))).collect();
            if m.get("properties")
                .is_some_and(|p| p.as_object().is_some_and(|p| !p.is_empty()))
            {
                out.insert("additionalProperties".into(), json!(false));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(closed).collect()),
        other => other.clone(),
    }
}

/// Panics unless `value` is what `tool` publishes as its `outputSchema`, naming every mismatch.
fn conforms(tool: &str, value: &Value) {
    let validator = OUTPUTS
        .get(tool)
        .unwrap_or_else(|| panic!("{tool} is not in the catalog"));
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{tool}'s answer does not match its outputSchema:\n  {}\nanswer: {value}",
        problems.join("\n  ")
    );
}

/// The structured content of a successful result, checked against the tool's `outputSchema`.
fn ok(result: rmcp::model::CallToolResult, tool: &str) -> Value {
    let value = harness::ok(result, tool);
    assert!(
        value.is_object(),
        "{tool}: structuredContent is not an object: {value}"
    );
    conforms(tool, &value);
    value
}

/// An MCP connection that remembers which tools answered successfully.
struct Mcp {
    client: Client,
    called: BTreeSet<String>,
}

impl Mcp {
    /// Calls `tool`, which must succeed, and returns its structured content.
    async fn ok(&mut self, tool: &str, args: Value) -> Value {
        let value = ok(call(&self.client, tool, args).await, tool);
        self.called.insert(tool.to_string());
        value
    }

    /// Calls `tool`, which must fail as a tool error, and returns the error text.
    async fn refused(&self, tool: &str, args: Value) -> String {
        refused(&self.client, tool, args).await
    }
}

/// Calls `tool`, which must fail as a tool error (not a protocol error), and returns the text.
async fn refused(client: &Client, tool: &str, args: Value) -> String {
    let result = call(client, tool, args).await;
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool} should have failed but answered {:?}",
        result.structured_content
    );
    assert_eq!(result.structured_content, None, "{tool}");
    text(&result)
}

/// The rows of a list answer.
fn rows(list: &Value) -> &Vec<Value> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
}

/// The row with this id in a list answer.
fn row<'a>(list: &'a Value, id: &str) -> &'a Value {
    rows(list)
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {list}"))
}

/// The ids of a list answer, in order.
fn ids(list: &Value) -> Vec<String> {
    rows(list)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A list, sorted.
fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// One field of every row, in order.
fn column(list: &Value, field: &str) -> Vec<Value> {
    rows(list).iter().map(|r| r[field].clone()).collect()
}

/// The string at `v[key]`.
fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
        .to_string()
}

/// The text the gateway shows for the upstream's 404 on a row of another studio.
fn not_found(what: &str, id: &str, write: bool) -> String {
    // Write tools add that nothing was changed, as a sentence of its own.
    if write {
        format!("{what} `{id}` not found. Nothing was changed.")
    } else {
        format!("{what} `{id}` not found")
    }
}

/// The Lotus studio's winter offset (Pacific, -08:00).
fn pacific_offset() -> chrono::FixedOffset {
    chrono::FixedOffset::west_opt(8 * 3600).unwrap()
}

/// A local wall-clock time in the Lotus studio's winter offset (Pacific, -08:00).
fn pacific(day: NaiveDate, hm: &str) -> String {
    format!("{day}T{hm}:00-08:00")
}

// === 1. Every tool with the Pro demo key ===

#[tokio::test]
async fn every_tool_works_with_the_pro_demo_key() {
    let gw = Gateway::start().await;
    let mut c = Mcp {
        client: gw.client(&gw.pro_key()).await,
        called: BTreeSet::new(),
    };
    // Sessions are scheduled nine weeks out, far past the seeded timetable (next 3 weeks), so
    // every number read back below is ours alone.
    let day = Utc::now().date_naive() + Duration::days(63);
    let next_day = day + Duration::days(1);
    let week2 = day + Duration::days(7);
    let week3 = day + Duration::days(14);
    let started = Utc::now() - Duration::seconds(1);

    // --- Who am I ---
    let me = c.ok("whoami", json!({})).await;
    assert_eq!(me["studio"]["id"], "std_lotus");
    assert_eq!(me["studio"]["tier"], "pro");
    assert_eq!(me["principal"]["kind"], "key");
    let ours = c
        .ok(
            "list_schedule",
            json!({"from": pacific(day, "00:00"), "to": pacific(week3 + Duration::days(1), "00:00")}),
        )
        .await;
    assert_eq!(
        rows(&ours).len(),
        0,
        "the seeded timetable reaches our weeks"
    );

    // --- Programs ---
    let programs = c.ok("list_programs", json!({"limit": 100})).await;
    let seeded_programs = ids(&programs);
    assert!(!seeded_programs.is_empty());
    let program = c
        .ok(
            "create_program",
            json!({"name": "Aerial", "description": "Yoga in the hammock.", "color": "#123ABC",
                   "idempotency_key": "every-tool-create-program"}),
        )
        .await;
    let program_id = s(&program, "id");
    assert!(program_id.starts_with("prg_"), "{program}");
    let programs = c.ok("list_programs", json!({"limit": 100})).await;
    assert_eq!(rows(&programs).len(), seeded_programs.len() + 1);
    assert_eq!(row(&programs, &program_id)["name"], "Aerial");
    let updated = c
        .ok(
            "update_program",
            json!({"program_id": program_id, "name": "Aerial Arts", "color": "#1B998B",
                   "idempotency_key": "every-tool-update-program"}),
        )
        .await;
    assert_eq!(updated["name"], "Aerial Arts");
    let programs = c.ok("list_programs", json!({"limit": 100})).await;
    let p = row(&programs, &program_id);
    assert_eq!(p["name"], "Aerial Arts");
    assert_eq!(p["color"], "#1B998B");
    assert_eq!(p["description"], "Yoga in the hammock.");

    // --- Instructors ---
    let instructors = c.ok("list_instructors", json!({"limit": 100})).await;
    let seeded_instructors = ids(&instructors).len();
    let instructor = c
        .ok(
            "create_instructor",
            json!({"name": "Rosa Lindgren", "email": "rosa@lotusflow.example",
                   "bio": "Aerial teacher.", "specialties": ["aerial"],
                   "idempotency_key": "every-tool-create-instructor"}),
        )
        .await;
    let instructor_id = s(&instructor, "id");
    c.ok(
        "update_instructor",
        json!({"instructor_id": instructor_id, "bio": "Aerial and hammock teacher since 2015.",
               "specialties": ["aerial", "hammock"],
               "idempotency_key": "every-tool-update-instructor-1"}),
    )
    .await;
    let instructors = c.ok("list_instructors", json!({"limit": 100})).await;
    assert_eq!(rows(&instructors).len(), seeded_instructors + 1);
    let i = row(&instructors, &instructor_id);
    assert_eq!(i["name"], "Rosa Lindgren");
    assert_eq!(i["email"], "rosa@lotusflow.example");
    assert_eq!(i["bio"], "Aerial and hammock teacher since 2015.");
    assert_eq!(i["specialties"], json!(["aerial", "hammock"]));
    assert_eq!(i["active"], true);

    // --- Locations and rooms ---
    let locations = c.ok("list_locations", json!({"limit": 100})).await;
    let seeded_locations = ids(&locations);
    assert!(!seeded_locations.is_empty());
    let location = c
        .ok(
            "create_location",
            json!({"name": "Hammock Loft", "address": "3901 N Mississippi Ave", "city": "Portland",
                   "timezone": "America/Los_Angeles",
                   "rooms": [{"name": "Studio A", "capacity": 10}],
                   "idempotency_key": "every-tool-create-location"}),
        )
        .await;
    let location_id = s(&location, "id");
    assert_eq!(location["rooms"].as_array().unwrap().len(), 1);
    let room_a = s(&location["rooms"][0], "id");
    c.ok(
        "update_location",
        json!({"location_id": location_id, "name": "Hammock Loft Mississippi",
               "address": "3939 N Mississippi Ave", "idempotency_key": "every-tool-update-location"}),
    )
    .await;
    let room = c
        .ok(
            "create_room",
            json!({"location_id": location_id, "name": "Studio B", "capacity": 6,
                   "idempotency_key": "every-tool-create-room"}),
        )
        .await;
    let room_b = s(&room, "id");
    assert_eq!(room["location_id"], location_id.as_str());
    c.ok(
        "update_room",
        json!({"location_id": location_id, "room_id": room_b, "name": "Studio B (small)",
               "capacity": 5, "idempotency_key": "every-tool-update-room"}),
    )
    .await;
    let locations = c.ok("list_locations", json!({"limit": 100})).await;
    assert_eq!(rows(&locations).len(), seeded_locations.len() + 1);
    let l = row(&locations, &location_id);
    assert_eq!(l["name"], "Hammock Loft Mississippi");
    assert_eq!(l["address"], "3939 N Mississippi Ave");
    assert_eq!(l["city"], "Portland");
    assert_eq!(l["timezone"], "America/Los_Angeles");
    assert_eq!(
        l["rooms"],
        json!([
            {"id": room_a, "location_id": location_id, "name": "Studio A", "capacity": 10},
            {"id": room_b, "location_id": location_id, "name": "Studio B (small)", "capacity": 5},
        ])
    );

    // --- A class, its sessions ---
    let class = c
        .ok(
            "create_class",
            json!({"name": "Hammock Flow & Float", "description": "Low hammock, big smiles.",
                   "program_id": program_id, "instructor_id": instructor_id,
                   "location_id": location_id, "room_id": room_a, "duration_minutes": 60,
                   "capacity": 2, "price_cents": 3000, "currency": "USD", "level": "beginner",
                   "idempotency_key": "every-tool-create-class"}),
        )
        .await;
    let class_id = s(&class, "id");
    let got = c.ok("get_class", json!({"class_id": class_id})).await;
    assert_eq!(got["name"], "Hammock Flow & Float");
    assert_eq!(got["status"], "active");
    assert_eq!(got["capacity"], 2);
    assert_eq!(got["price_cents"], 3000);
    assert_eq!(got["room_id"], room_a.as_str());
    assert_eq!(got["upcoming"], json!([]));

    let added = c
        .ok(
            "add_class_schedule",
            json!({"class_id": class_id, "starts_at": pacific(day, "09:00"), "repeat_weeks": 3,
                   "idempotency_key": "every-tool-add-class-schedule"}),
        )
        .await;
    let occ = ids(&added);
    assert_eq!(occ.len(), 3, "{added}");
    assert_eq!(
        column(&added, "starts_at"),
        [
            json!(format!("{day}T17:00:00Z")),
            json!(format!("{week2}T17:00:00Z")),
            json!(format!("{week3}T17:00:00Z")),
        ]
    );
    // A new capacity and price apply to the future sessions already on the timetable.
    c.ok(
        "update_class",
        json!({"class_id": class_id, "capacity": 3, "price_cents": 3200,
               "description": "Low hammock, big smiles. Mats provided.",
               "idempotency_key": "every-tool-update-class"}),
    )
    .await;
    let got = c.ok("get_class", json!({"class_id": class_id})).await;
    assert_eq!(got["capacity"], 3);
    assert_eq!(got["price_cents"], 3200);
    assert_eq!(
        got["description"],
        "Low hammock, big smiles. Mats provided."
    );
    assert_eq!(ids(&json!({"data": got["upcoming"]})), occ);
    let listed = c
        .ok(
            "list_classes",
            json!({"program_id": program_id, "limit": 100}),
        )
        .await;
    assert_eq!(ids(&listed), [class_id.as_str()]);
    assert_eq!(rows(&listed)[0]["price_cents"], 3200);

    let moved = c
        .ok(
            "reschedule_occurrence",
            json!({"occurrence_id": occ[2], "starts_at": pacific(week3, "10:30"),
                   "room_id": room_b, "idempotency_key": "every-tool-reschedule"}),
        )
        .await;
    assert_eq!(moved["id"], occ[2].as_str());
    let schedule = c
        .ok("list_schedule", json!({"class_id": class_id, "limit": 100}))
        .await;
    assert_eq!(ids(&schedule), occ);
    assert_eq!(
        column(&schedule, "capacity"),
        [json!(3), json!(3), json!(3)]
    );
    let last = row(&schedule, &occ[2]);
    assert_eq!(last["starts_at"], format!("{week3}T18:30:00Z"));
    assert_eq!(last["ends_at"], format!("{week3}T19:30:00Z"));
    assert_eq!(last["room_id"], room_b.as_str());
    assert_eq!(last["location_id"], location_id.as_str());
    assert_eq!(row(&schedule, &occ[0])["room_id"], room_a.as_str());
    // A window given with a `+` offset (an assistant in India) reaches the upstream intact.
    let window = c
        .ok(
            "list_schedule",
            json!({"class_id": class_id, "from": format!("{day}T05:30:00+05:30"),
                   "to": format!("{next_day}T05:30:00+05:30")}),
        )
        .await;
    assert_eq!(ids(&window), [occ[0].clone()]);
    // So does search text with `&`.
    let found = c.ok("list_classes", json!({"q": "flow & float"})).await;
    assert_eq!(ids(&found), [class_id.as_str()]);

    // --- Members ---
    let plans = c
        .ok("list_plans", json!({"status": "active", "limit": 100}))
        .await;
    let seeded_active_plans = ids(&plans);
    let membership_plan = rows(&plans)
        .iter()
        .find(|p| p["kind"] == "membership")
        .map(|p| s(p, "id"))
        .expect("an active membership plan");
    let members = c.ok("list_members", json!({"limit": 100})).await;
    let seeded_members = rows(&members).len();
    // Two active members who pay for their classes (no active membership).
    let active = c
        .ok("list_members", json!({"status": "active", "limit": 100}))
        .await;
    let payers: Vec<String> = rows(&active)
        .iter()
        .filter(|m| m["membership"]["status"] != "active")
        .take(2)
        .map(|m| s(m, "id"))
        .collect();
    let (liam, emma) = (payers[0].clone(), payers[1].clone());
    let got = c.ok("get_member", json!({"member_id": liam})).await;
    assert_eq!(got["id"], liam.as_str());
    assert_eq!(got["status"], "active");
    assert_ne!(got["membership"]["status"], "active");
    let nadia = c
        .ok(
            "invite_member",
            json!({"email": "Nadia.Rahman@Example.com", "name": "Nadia Rahman", "role": "vip",
                   "plan_id": membership_plan, "message": "Welcome to Lotus Flow!",
                   "idempotency_key": "every-tool-invite-member"}),
        )
        .await;
    let nadia_id = s(&nadia, "id");
    c.ok(
        "update_member",
        json!({"member_id": nadia_id, "role": "member", "phone": "+1-503-555-0199",
               "name": "Nadia Rahman-Cole", "idempotency_key": "every-tool-update-member"}),
    )
    .await;
    let got = c.ok("get_member", json!({"member_id": nadia_id})).await;
    assert_eq!(got["name"], "Nadia Rahman-Cole");
    assert_eq!(got["email"], "nadia.rahman@example.com");
    assert_eq!(got["phone"], "+1-503-555-0199");
    assert_eq!(got["role"], "member");
    assert_eq!(got["status"], "invited");
    assert_eq!(got["membership"]["plan_id"], membership_plan.as_str());
    assert_eq!(got["membership"]["status"], "active");
    assert_eq!(got["membership"]["cancelled_at"], Value::Null);
    let members = c.ok("list_members", json!({"limit": 100})).await;
    assert_eq!(rows(&members).len(), seeded_members + 1);

    // --- Plans and coupons ---
    let archived_plans = c
        .ok("list_plans", json!({"status": "archived", "limit": 100}))
        .await;
    let archived_plans = ids(&archived_plans);
    let plan = c
        .ok(
            "create_plan",
            json!({"name": "Hammock 5-Pack", "description": "Five hammock classes.",
                   "kind": "class_pack", "price_cents": 9000, "class_credits": 5,
                   "idempotency_key": "every-tool-create-plan"}),
        )
        .await;
    let plan_id = s(&plan, "id");
    c.ok(
        "update_plan",
        json!({"plan_id": plan_id, "price_cents": 9500, "class_credits": 6,
               "idempotency_key": "every-tool-update-plan"}),
    )
    .await;
    let plans = c
        .ok("list_plans", json!({"status": "active", "limit": 100}))
        .await;
    assert_eq!(rows(&plans).len(), seeded_active_plans.len() + 1);
    let p = row(&plans, &plan_id);
    assert_eq!(p["price_cents"], 9500);
    assert_eq!(p["class_credits"], 6);
    assert_eq!(p["kind"], "class_pack");
    assert_eq!(p["currency"], "USD");

    let archived_coupons = c
        .ok("list_coupons", json!({"status": "archived", "limit": 100}))
        .await;
    let archived_coupons = ids(&archived_coupons);
    let coupon = c
        .ok(
            "create_coupon",
            json!({"code": "HAMMOCK30", "description": "Launch offer", "percent_off": 30,
                   "max_redemptions": 5, "idempotency_key": "every-tool-create-coupon"}),
        )
        .await;
    let coupon_id = s(&coupon, "id");
    let coupons = c
        .ok("list_coupons", json!({"status": "active", "limit": 100}))
        .await;
    let cp = row(&coupons, &coupon_id);
    assert_eq!(cp["code"], "HAMMOCK30");
    assert_eq!(cp["percent_off"], 30);
    assert_eq!(cp["times_redeemed"], 0);

    // --- Bookings: a coupon, a membership, a refund ---
    let booked = c
        .ok(
            "book_class",
            json!({"occurrence_id": occ[0], "member_id": liam,
                   "coupon_code": "HAMMOCK30", "idempotency_key": "every-tool-book-liam"}),
        )
        .await;
    let liam_booking = s(&booked, "id");
    assert_eq!(booked["price_cents"], 2240, "3200 less 30%");
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["coupon_id"], coupon_id.as_str());
    // A retry with the same idempotency key answers the first booking and books nobody twice
    // (list_class_bookings below holds one booking per member).
    let again = c
        .ok(
            "book_class",
            json!({"occurrence_id": occ[0], "member_id": liam,
                   "coupon_code": "HAMMOCK30", "idempotency_key": "every-tool-book-liam"}),
        )
        .await;
    assert_eq!(again["id"], liam_booking.as_str());
    let nadia_booked = c
        .ok(
            "book_class",
            json!({"occurrence_id": occ[0], "member_id": nadia_id,
                   "plan_id": membership_plan, "idempotency_key": "every-tool-book-nadia"}),
        )
        .await;
    let nadia_booking = s(&nadia_booked, "id");
    assert_eq!(nadia_booked["price_cents"], 0, "covered by the membership");
    assert_eq!(nadia_booked["plan_id"], membership_plan.as_str());
    let session = c
        .ok(
            "list_class_bookings",
            json!({"occurrence_id": occ[0], "limit": 100}),
        )
        .await;
    // Bookings made in the same second come in id order (created_at has whole seconds).
    assert_eq!(
        sorted(ids(&session)),
        sorted(vec![liam_booking.clone(), nadia_booking.clone()])
    );
    let coupons = c
        .ok("list_coupons", json!({"status": "active", "limit": 100}))
        .await;
    assert_eq!(row(&coupons, &coupon_id)["times_redeemed"], 1);

    let cancelled = c
        .ok(
            "cancel_booking",
            json!({"booking_id": liam_booking, "refund": true, "reason": "Member is travelling",
                   "idempotency_key": "every-tool-cancel-booking"}),
        )
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refund_cents"], 2240);
    let emma_booked = c
        .ok(
            "book_class",
            json!({"occurrence_id": occ[0], "member_id": emma,
                   "idempotency_key": "every-tool-book-emma"}),
        )
        .await;
    let emma_booking = s(&emma_booked, "id");
    assert_eq!(emma_booked["price_cents"], 3200);
    let history = c
        .ok(
            "list_bookings",
            json!({"member_id": liam, "from": pacific(day, "00:00"),
                   "to": pacific(next_day, "00:00"), "limit": 100}),
        )
        .await;
    assert_eq!(ids(&history), [liam_booking.as_str()]);
    let b = &rows(&history)[0];
    assert_eq!(b["status"], "cancelled");
    assert_eq!(b["price_cents"], 2240);
    assert_eq!(b["refund_cents"], 2240);
    assert_eq!(b["occurrence_id"], occ[0].as_str());
    let live = c
        .ok(
            "list_bookings",
            json!({"status": "booked", "from": pacific(day, "00:00"),
                   "to": pacific(next_day, "00:00"), "limit": 100}),
        )
        .await;
    assert_eq!(
        sorted(ids(&live)),
        sorted(vec![nadia_booking.clone(), emma_booking.clone()])
    );
    let schedule = c
        .ok("list_schedule", json!({"class_id": class_id, "limit": 100}))
        .await;
    assert_eq!(row(&schedule, &occ[0])["booked_count"], 2);

    // --- The public directory ---
    let studios = c.ok("search_studios", json!({"q": "lotus"})).await;
    assert_eq!(ids(&studios), ["std_lotus"]);
    assert_eq!(rows(&studios)[0]["city"], "Portland");
    assert_eq!(rows(&studios)[0].get("tier"), None, "public fields only");
    let studios = c.ok("search_studios", json!({"city": "Denver"})).await;
    assert_eq!(ids(&studios), ["std_freespirit"]);
    let found = c
        .ok(
            "search_classes",
            json!({"q": "hammock flow", "from": pacific(day - Duration::days(1), "00:00"),
                   "to": pacific(next_day, "00:00")}),
        )
        .await;
    assert_eq!(ids(&found), [occ[0].clone()]);
    let f = &rows(&found)[0];
    assert_eq!(f["class_id"], class_id.as_str());
    assert_eq!(f["spots_left"], 1, "3 places, 2 live bookings");
    assert_eq!(f["price_cents"], 3200);
    assert_eq!(
        f["studio"],
        json!({"id": "std_lotus", "name": "Lotus Flow Yoga", "city": "Portland"})
    );
    assert_eq!(
        f["location"],
        json!({"name": "Hammock Loft Mississippi", "address": "3939 N Mississippi Ave"})
    );

    // --- Money ---
    let expense = c
        .ok(
            "create_expense",
            json!({"description": "Hammock rigging inspection", "category": "equipment",
                   "amount_cents": 12500, "incurred_on": day.to_string(), "vendor": "SkyRig",
                   "idempotency_key": "every-tool-create-expense"}),
        )
        .await;
    let expense_id = s(&expense, "id");
    c.ok(
        "update_expense",
        json!({"expense_id": expense_id, "amount_cents": 15000, "vendor": "SkyRig Inc.",
               "idempotency_key": "every-tool-update-expense"}),
    )
    .await;
    let expenses = c
        .ok(
            "list_expenses",
            json!({"from": day.to_string(), "to": next_day.to_string(), "limit": 100}),
        )
        .await;
    assert_eq!(ids(&expenses), [expense_id.as_str()]);
    let e = &rows(&expenses)[0];
    assert_eq!(e["amount_cents"], 15000);
    assert_eq!(e["vendor"], "SkyRig Inc.");
    assert_eq!(e["category"], "equipment");
    assert_eq!(e["description"], "Hammock rigging inspection");
    let summary_args =
        json!({"from": day.to_string(), "to": next_day.to_string(), "group_by": "day"});
    let summary = c.ok("financials_summary", summary_args.clone()).await;
    let totals = json!({"revenue_cents": 3200, "expenses_cents": 15000, "net_cents": -11800,
                        "bookings": 2});
    assert_eq!(summary["currency"], "USD");
    assert_eq!(summary["group_by"], "day");
    assert_eq!(summary["totals"], totals);
    let mut period = totals.clone();
    period["period"] = json!(day.to_string());
    period["starts_on"] = json!(day.to_string());
    assert_eq!(summary["data"], json!([period]));

    // --- On-demand content ---
    let public = c
        .ok(
            "list_content",
            json!({"visibility": "public", "limit": 100}),
        )
        .await;
    let seeded_public = ids(&public);
    let members_only = c
        .ok(
            "list_content",
            json!({"visibility": "members", "limit": 100}),
        )
        .await;
    let video = s(&rows(&members_only)[0], "id");
    let title = s(&rows(&members_only)[0], "title");
    let found = c.ok("list_content", json!({"q": title})).await;
    assert!(ids(&found).contains(&video), "{found}");
    c.ok(
        "update_content",
        json!({"content_id": video, "title": "Yin for Tight Hips (Extended)",
               "visibility": "public", "level": "all_levels", "tags": ["yin", "hips", "extended"],
               "idempotency_key": "every-tool-update-content"}),
    )
    .await;
    let public = c
        .ok(
            "list_content",
            json!({"visibility": "public", "limit": 100}),
        )
        .await;
    assert_eq!(rows(&public).len(), seeded_public.len() + 1);
    let h = row(&public, &video);
    assert_eq!(h["title"], "Yin for Tight Hips (Extended)");
    assert_eq!(h["level"], "all_levels");
    assert_eq!(h["tags"], json!(["yin", "hips", "extended"]));

    // --- Messages ---
    let inbox = c.ok("list_messages", json!({"limit": 100})).await;
    let received = rows(&inbox).len();
    assert!(received > 0);
    let times = column(&inbox, "sent_at");
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.as_str().cmp(&a.as_str()));
    assert_eq!(times, newest_first, "newest first");
    for m in rows(&inbox) {
        assert_eq!(m["direction"], "received", "{m}");
    }
    let message_args = json!({"member_ids": [liam, emma, liam],
                              "subject": "Hammock Flow: new time in week 3",
                              "body": "Your third session moves to 10:30 in Studio B.",
                              "idempotency_key": "every-tool-send-message"});
    let sent = c.ok("send_message", message_args.clone()).await;
    assert!(s(&sent, "id").starts_with("msg_"), "{sent}");
    assert_eq!(sent["direction"], "sent");
    assert_eq!(sent["member_ids"], json!([liam, emma]));
    assert_eq!(sent["subject"], "Hammock Flow: new time in week 3");
    // No tool reads sent messages (list_messages is the studio's inbox), so the message is
    // read back from its idempotency record: the retry answers the stored message, unsent again.
    let again = c.ok("send_message", message_args).await;
    assert_eq!(again, sent);
    let inbox = c.ok("list_messages", json!({"limit": 100})).await;
    assert_eq!(
        rows(&inbox).len(),
        received,
        "the inbox holds received messages only"
    );
    // ... and the audit log has both calls, with the body redacted.
    let audit = c
        .ok(
            "list_audit_log",
            json!({"tool": "send_message", "outcome": "ok", "limit": 10}),
        )
        .await;
    assert_eq!(rows(&audit).len(), 2, "{audit}");
    for r in rows(&audit) {
        assert_eq!(r["studio"], "std_lotus");
        assert_eq!(r["principal_kind"], "key");
        assert_eq!(r["decision"], "allow");
        assert_eq!(r["arguments"]["body"], "[redacted]");
        assert_eq!(
            r["arguments"]["subject"],
            "Hammock Flow: new time in week 3"
        );
    }

    // The reason of a cancellation is "kept on record": the upstream does not store it, the
    // audit log does. Time bounds in the studio's offset select this test's calls.
    let audit = c
        .ok(
            "list_audit_log",
            json!({"tool": "cancel_booking",
                   "since": started.with_timezone(&pacific_offset()).to_rfc3339(),
                   "until": (Utc::now() + Duration::hours(1)).with_timezone(&pacific_offset()).to_rfc3339()}),
        )
        .await;
    assert_eq!(rows(&audit).len(), 1, "{audit}");
    assert_eq!(
        rows(&audit)[0]["arguments"],
        json!({"booking_id": liam_booking, "refund": true, "reason": "Member is travelling",
               "idempotency_key": "every-tool-cancel-booking"})
    );
    assert_eq!(rows(&audit)[0]["outcome"], "ok");
    let audit = c
        .ok(
            "list_audit_log",
            json!({"tool": "cancel_booking",
                   "until": started.with_timezone(&pacific_offset()).to_rfc3339()}),
        )
        .await;
    assert_eq!(rows(&audit).len(), 0, "{audit}");

    // --- Winding down: memberships, offers, the class ---
    let ended = c
        .ok(
            "cancel_membership",
            json!({"member_id": nadia_id, "reason": "Moving away",
                   "idempotency_key": "every-tool-cancel-membership"}),
        )
        .await;
    assert_eq!(ended["membership"]["status"], "cancelled");
    let got = c.ok("get_member", json!({"member_id": nadia_id})).await;
    assert_eq!(got["membership"]["status"], "cancelled");
    assert!(got["membership"]["cancelled_at"].is_string(), "{got}");

    c.ok(
        "archive_coupon",
        json!({"coupon_id": coupon_id, "idempotency_key": "every-tool-archive-coupon"}),
    )
    .await;
    let archived = c
        .ok("list_coupons", json!({"status": "archived", "limit": 100}))
        .await;
    assert_eq!(rows(&archived).len(), archived_coupons.len() + 1);
    assert_eq!(row(&archived, &coupon_id)["status"], "archived");
    c.ok(
        "archive_plan",
        json!({"plan_id": plan_id, "idempotency_key": "every-tool-archive-plan"}),
    )
    .await;
    let archived = c
        .ok("list_plans", json!({"status": "archived", "limit": 100}))
        .await;
    assert_eq!(rows(&archived).len(), archived_plans.len() + 1);
    assert_eq!(row(&archived, &plan_id)["status"], "archived");
    let plans = c
        .ok("list_plans", json!({"status": "active", "limit": 100}))
        .await;
    assert_eq!(ids(&plans), seeded_active_plans);

    let outcome = c
        .ok(
            "cancel_class",
            json!({"class_id": class_id, "reason": "Rigging failed inspection",
                   "idempotency_key": "every-tool-cancel-class"}),
        )
        .await;
    assert_eq!(outcome["class"]["status"], "cancelled");
    assert_eq!(outcome["cancelled_occurrences"], 3);
    assert_eq!(outcome["cancelled_bookings"], 2);
    let got = c.ok("get_class", json!({"class_id": class_id})).await;
    assert_eq!(got["status"], "cancelled");
    assert_eq!(got["upcoming"], json!([]));
    let schedule = c
        .ok(
            "list_schedule",
            json!({"class_id": class_id, "status": "cancelled", "limit": 100}),
        )
        .await;
    assert_eq!(ids(&schedule), occ);
    let session = c
        .ok(
            "list_class_bookings",
            json!({"occurrence_id": occ[0], "limit": 100}),
        )
        .await;
    assert_eq!(rows(&session).len(), 3);
    // The cascade cancels the live bookings and refunds what was paid.
    for (booking, paid, refunded) in [
        (&liam_booking, 2240, 2240),
        (&nadia_booking, 0, 0),
        (&emma_booking, 3200, 3200),
    ] {
        let b = row(&session, booking);
        assert_eq!(b["status"], "cancelled", "{b}");
        assert_eq!(b["price_cents"], paid, "{b}");
        assert_eq!(b["refund_cents"], refunded, "{b}");
    }
    let summary = c.ok("financials_summary", summary_args.clone()).await;
    assert_eq!(
        summary["totals"],
        json!({"revenue_cents": 0, "expenses_cents": 15000, "net_cents": -15000, "bookings": 0})
    );
    // A class with bookings on record cannot be deleted.
    let t = c
        .refused(
            "delete_class",
            json!({"class_id": class_id, "idempotency_key": "every-tool-delete-class-refused"}),
        )
        .await;
    assert_eq!(
        t,
        "class Hammock Flow & Float has 3 booking(s) on record and cannot be deleted; cancel it instead. Nothing was changed."
    );
    // A class that never had bookings can.
    let taster = c
        .ok(
            "create_class",
            json!({"name": "Hammock Taster (pop-up)", "duration_minutes": 30, "capacity": 8,
                   "price_cents": 0, "idempotency_key": "every-tool-create-class-2"}),
        )
        .await;
    let taster_id = s(&taster, "id");
    let deleted = c
        .ok(
            "delete_class",
            json!({"class_id": taster_id, "idempotency_key": "every-tool-delete-class"}),
        )
        .await;
    assert_eq!(deleted, json!({"id": taster_id, "deleted": true}));
    let t = c.refused("get_class", json!({"class_id": taster_id})).await;
    assert_eq!(t, not_found("class", &taster_id, false));
    let listed = c
        .ok("list_classes", json!({"q": "taster", "limit": 100}))
        .await;
    assert_eq!(rows(&listed).len(), 0);

    let deleted = c
        .ok(
            "delete_expense",
            json!({"expense_id": expense_id, "idempotency_key": "every-tool-delete-expense"}),
        )
        .await;
    assert_eq!(deleted, json!({"id": expense_id, "deleted": true}));
    let expenses = c
        .ok(
            "list_expenses",
            json!({"from": day.to_string(), "to": next_day.to_string()}),
        )
        .await;
    assert_eq!(rows(&expenses).len(), 0);

    // The rooms and the location are free now that their sessions are cancelled.
    let deleted = c
        .ok(
            "delete_room",
            json!({"location_id": location_id, "room_id": room_b,
                   "idempotency_key": "every-tool-delete-room"}),
        )
        .await;
    assert_eq!(deleted, json!({"id": room_b, "deleted": true}));
    let locations = c.ok("list_locations", json!({"limit": 100})).await;
    assert_eq!(
        ids(&json!({"data": row(&locations, &location_id)["rooms"]})),
        [room_a.as_str()]
    );
    let deleted = c
        .ok(
            "delete_location",
            json!({"location_id": location_id, "idempotency_key": "every-tool-delete-location"}),
        )
        .await;
    assert_eq!(deleted, json!({"id": location_id, "deleted": true}));
    let locations = c.ok("list_locations", json!({"limit": 100})).await;
    assert_eq!(ids(&locations), seeded_locations);
    let got = c.ok("get_class", json!({"class_id": class_id})).await;
    assert_eq!(got["location_id"], Value::Null);
    assert_eq!(got["room_id"], Value::Null);

    c.ok(
        "update_instructor",
        json!({"instructor_id": instructor_id, "active": false,
               "idempotency_key": "every-tool-update-instructor-2"}),
    )
    .await;
    let instructors = c.ok("list_instructors", json!({"limit": 100})).await;
    assert_eq!(row(&instructors, &instructor_id)["active"], false);
    assert_eq!(
        row(&instructors, &instructor_id)["bio"],
        "Aerial and hammock teacher since 2015."
    );

    // --- The audit log saw every successful call ---
    let audit = c
        .ok(
            "list_audit_log",
            json!({"tool": "create_program", "outcome": "ok"}),
        )
        .await;
    assert_eq!(rows(&audit).len(), 1);
    assert_eq!(rows(&audit)[0]["arguments"]["name"], "Aerial");

    // Every tool of the catalog was called, and succeeded, at least once, and each answer matched
    // the outputSchema the client was shown, which is the registry's.
    let tools = c.client.list_all_tools().await.unwrap();
    let registry = Registry::new().unwrap();
    for t in &tools {
        let published = t
            .output_schema
            .as_deref()
            .unwrap_or_else(|| panic!("{} publishes no outputSchema", t.name));
        assert_eq!(published["type"], "object", "{}", t.name);
        assert_eq!(
            published,
            &registry.get(&t.name).unwrap().output_schema_object(),
            "{}",
            t.name
        );
    }
    let listed: BTreeSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(listed.len(), 51);
    let missing: Vec<&String> = listed.difference(&c.called).collect();
    assert!(
        missing.is_empty(),
        "tools never called successfully: {missing:?}"
    );
    assert_eq!(c.called, listed);

    c.client.cancel().await.unwrap();
    gw.stop().await;
}

// === 2. The tenant boundary on every id-taking tool ===

/// A snapshot of everything the free studio can read, to compare before and after.
async fn free_studio_snapshot(free: &Client, gw: &Gateway) -> BTreeMap<String, Value> {
    let mut snap = BTreeMap::new();
    for tool in [
        "list_bookings",
        "list_classes",
        "list_content",
        "list_coupons",
        "list_instructors",
        "list_locations",
        "list_members",
        "list_messages",
        "list_plans",
        "list_programs",
        "list_schedule",
    ] {
        snap.insert(
            tool.to_string(),
            Value::Array(all(free, tool, json!({})).await),
        );
    }
    let classes = snap["list_classes"].as_array().unwrap().clone();
    for class in classes {
        let id = s(&class, "id");
        let mut got = ok(
            call(free, "get_class", json!({"class_id": id})).await,
            "get_class",
        );
        // `upcoming` moves with the clock; the sessions themselves are in list_schedule.
        got.as_object_mut().unwrap().remove("upcoming");
        snap.insert(format!("get_class {id}"), got);
    }
    let members = snap["list_members"].as_array().unwrap().clone();
    for member in members {
        let id = s(&member, "id");
        let got = ok(
            call(free, "get_member", json!({"member_id": id})).await,
            "get_member",
        );
        snap.insert(format!("get_member {id}"), got);
    }
    for occurrence in snap["list_schedule"].as_array().unwrap().clone() {
        let id = s(&occurrence, "id");
        let got = all(free, "list_class_bookings", json!({"occurrence_id": id})).await;
        snap.insert(format!("list_class_bookings {id}"), Value::Array(got));
    }
    snap.insert("expenses (upstream)".into(), free_expenses(gw).await);
    snap
}

/// Every row of a list tool, following `next_cursor`.
async fn all(client: &Client, tool: &str, args: Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut args = args;
    args["limit"] = json!(100);
    loop {
        let page = ok(call(client, tool, args.clone()).await, tool);
        out.extend(rows(&page).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => args["cursor"] = json!(cursor),
            None => return out,
        }
    }
}

/// The free studio's expenses, read from the Management API itself: list_expenses is a Pro
/// tool, so the free key cannot read them through the gateway.
async fn free_expenses(gw: &Gateway) -> Value {
    let api = gw.running.studio_api.as_ref().unwrap();
    let page: Value = reqwest::Client::new()
        .get(format!("{}/expenses?limit=100", api.base_url()))
        .bearer_auth(api.service_token())
        .header("X-Flow-Studio", "std_freespirit")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["next_cursor"], Value::Null);
    page["data"].clone()
}

/// The first row's id of a list answer.
fn first_id(list: &[Value]) -> String {
    s(list.first().expect("an empty list"), "id")
}

#[tokio::test]
async fn a_pro_key_never_reaches_the_free_studios_rows() {
    let gw = Gateway::start().await;
    let free = gw.client(&gw.free_key()).await;
    let pro = gw.client(&gw.pro_key()).await;

    // The free studio's ids, as its own key reads them.
    let before = free_studio_snapshot(&free, &gw).await;
    let list = |tool: &str| before[tool].as_array().unwrap().clone();
    let f_class = first_id(&list("list_classes"));
    let f_occ = first_id(&list("list_schedule"));
    let f_booking = first_id(&list("list_bookings"));
    let f_member = first_id(&list("list_members"));
    let f_plan = first_id(&list("list_plans"));
    let f_coupon = first_id(&list("list_coupons"));
    let f_content = first_id(&list("list_content"));
    let f_instructor = first_id(&list("list_instructors"));
    let f_program = first_id(&list("list_programs"));
    let f_locations = list("list_locations");
    let f_location = first_id(&f_locations);
    let f_room = s(&f_locations[0]["rooms"][0], "id");
    let f_expense = first_id(before["expenses (upstream)"].as_array().unwrap());
    // The snapshot holds the whole free studio, not an empty shell.
    for (key, at_least) in [
        ("list_classes", 3),
        ("list_members", 10),
        ("list_plans", 2),
        ("list_coupons", 2),
        ("list_content", 2),
        ("list_messages", 2),
        ("list_schedule", 20),
        ("list_bookings", 100),
        ("expenses (upstream)", 8),
    ] {
        let n = before[key].as_array().unwrap().len();
        assert!(n >= at_least, "{key}: {n} rows");
    }
    for id in [
        &f_class,
        &f_occ,
        &f_booking,
        &f_member,
        &f_plan,
        &f_coupon,
        &f_content,
        &f_instructor,
        &f_program,
        &f_location,
        &f_room,
        &f_expense,
    ] {
        assert!(id.contains("_fs_"), "{id} is not a Free Spirit id");
    }
    // The free key cannot read expenses through the gateway (a Pro tool).
    let t = refused(&free, "list_expenses", json!({})).await;
    assert_eq!(
        t,
        "list_expenses needs the Pro plan; this studio is on Free. Nothing was changed."
    );

    // The Pro studio's own ids, for the other arguments of each call.
    let active = ok(
        call(
            &pro,
            "list_classes",
            json!({"status": "active", "limit": 1}),
        )
        .await,
        "list_classes",
    );
    let p_class = first_id(rows(&active));
    let now = Utc::now();
    let upcoming = ok(
        call(
            &pro,
            "list_schedule",
            json!({"status": "scheduled", "limit": 1,
                   "from": (now + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
        )
        .await,
        "list_schedule",
    );
    let p_occ = first_id(rows(&upcoming));
    let invited = ok(
        call(
            &pro,
            "list_members",
            json!({"status": "invited", "limit": 1}),
        )
        .await,
        "list_members",
    );
    let p_member = first_id(rows(&invited));
    let p_locations = ok(
        call(&pro, "list_locations", json!({"limit": 100})).await,
        "list_locations",
    );
    let p_location = rows(&p_locations)
        .iter()
        .find(|l| !l["rooms"].as_array().unwrap().is_empty())
        .expect("a Pro location with rooms");
    let p_room = s(&p_location["rooms"][0], "id");
    let p_location = s(p_location, "id");
    for id in [&p_class, &p_occ, &p_member, &p_location, &p_room] {
        assert!(id.contains("_lotus_"), "{id} is not a Lotus id");
    }
    let later = pacific(now.date_naive() + Duration::days(200), "06:00");

    // (tool, id argument, arguments, what the upstream names, the foreign id).
    let class_body = json!({"name": "Borrowed", "duration_minutes": 60, "capacity": 10,
                            "price_cents": 1000});
    let with = |base: &Value, extra: Value| {
        let mut v = base.clone();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "list_class_bookings",
            "occurrence_id",
            json!({"occurrence_id": f_occ}),
            "occurrence",
            &f_occ,
        ),
        (
            "book_class",
            "occurrence_id",
            json!({"occurrence_id": f_occ, "member_id": p_member}),
            "occurrence",
            &f_occ,
        ),
        (
            "book_class",
            "member_id",
            json!({"occurrence_id": p_occ, "member_id": f_member}),
            "member",
            &f_member,
        ),
        (
            "book_class",
            "plan_id",
            json!({"occurrence_id": p_occ, "member_id": p_member, "plan_id": f_plan}),
            "plan",
            &f_plan,
        ),
        (
            "cancel_booking",
            "booking_id",
            json!({"booking_id": f_booking, "refund": true}),
            "booking",
            &f_booking,
        ),
        (
            "get_class",
            "class_id",
            json!({"class_id": f_class}),
            "class",
            &f_class,
        ),
        (
            "create_class",
            "program_id",
            with(&class_body, json!({"program_id": f_program})),
            "program",
            &f_program,
        ),
        (
            "create_class",
            "instructor_id",
            with(&class_body, json!({"instructor_id": f_instructor})),
            "instructor",
            &f_instructor,
        ),
        (
            "create_class",
            "location_id",
            with(&class_body, json!({"location_id": f_location})),
            "location",
            &f_location,
        ),
        (
            "create_class",
            "room_id",
            with(&class_body, json!({"room_id": f_room})),
            "room",
            &f_room,
        ),
        (
            "update_class",
            "class_id",
            json!({"class_id": f_class, "price_cents": 1}),
            "class",
            &f_class,
        ),
        (
            "update_class",
            "program_id",
            json!({"class_id": p_class, "program_id": f_program}),
            "program",
            &f_program,
        ),
        (
            "update_class",
            "instructor_id",
            json!({"class_id": p_class, "instructor_id": f_instructor}),
            "instructor",
            &f_instructor,
        ),
        (
            "update_class",
            "location_id",
            json!({"class_id": p_class, "location_id": f_location}),
            "location",
            &f_location,
        ),
        (
            "update_class",
            "room_id",
            json!({"class_id": p_class, "room_id": f_room}),
            "room",
            &f_room,
        ),
        (
            "cancel_class",
            "class_id",
            json!({"class_id": f_class}),
            "class",
            &f_class,
        ),
        (
            "delete_class",
            "class_id",
            json!({"class_id": f_class}),
            "class",
            &f_class,
        ),
        (
            "update_content",
            "content_id",
            json!({"content_id": f_content, "visibility": "hidden"}),
            "content",
            &f_content,
        ),
        (
            "archive_coupon",
            "coupon_id",
            json!({"coupon_id": f_coupon}),
            "coupon",
            &f_coupon,
        ),
        (
            "update_expense",
            "expense_id",
            json!({"expense_id": f_expense, "amount_cents": 1}),
            "expense",
            &f_expense,
        ),
        (
            "delete_expense",
            "expense_id",
            json!({"expense_id": f_expense}),
            "expense",
            &f_expense,
        ),
        (
            "update_instructor",
            "instructor_id",
            json!({"instructor_id": f_instructor, "active": false}),
            "instructor",
            &f_instructor,
        ),
        (
            "update_location",
            "location_id",
            json!({"location_id": f_location, "name": "Taken"}),
            "location",
            &f_location,
        ),
        (
            "delete_location",
            "location_id",
            json!({"location_id": f_location}),
            "location",
            &f_location,
        ),
        (
            "create_room",
            "location_id",
            json!({"location_id": f_location, "name": "Annex", "capacity": 5}),
            "location",
            &f_location,
        ),
        (
            "update_room",
            "location_id",
            json!({"location_id": f_location, "room_id": p_room, "capacity": 1}),
            "location",
            &f_location,
        ),
        (
            "update_room",
            "room_id",
            json!({"location_id": p_location, "room_id": f_room, "capacity": 1}),
            "room",
            &f_room,
        ),
        (
            "delete_room",
            "location_id",
            json!({"location_id": f_location, "room_id": p_room}),
            "location",
            &f_location,
        ),
        (
            "delete_room",
            "room_id",
            json!({"location_id": p_location, "room_id": f_room}),
            "room",
            &f_room,
        ),
        (
            "get_member",
            "member_id",
            json!({"member_id": f_member}),
            "member",
            &f_member,
        ),
        (
            "update_member",
            "member_id",
            json!({"member_id": f_member, "role": "staff"}),
            "member",
            &f_member,
        ),
        (
            "cancel_membership",
            "member_id",
            json!({"member_id": f_member}),
            "member",
            &f_member,
        ),
        (
            "invite_member",
            "plan_id",
            json!({"email": "newcomer@example.com", "name": "Newcomer", "plan_id": f_plan}),
            "plan",
            &f_plan,
        ),
        (
            "send_message",
            "member_ids",
            json!({"member_ids": [p_member, f_member], "subject": "Hi", "body": "Hello"}),
            "member",
            &f_member,
        ),
        (
            "update_plan",
            "plan_id",
            json!({"plan_id": f_plan, "price_cents": 1}),
            "plan",
            &f_plan,
        ),
        (
            "archive_plan",
            "plan_id",
            json!({"plan_id": f_plan}),
            "plan",
            &f_plan,
        ),
        (
            "update_program",
            "program_id",
            json!({"program_id": f_program, "name": "Taken"}),
            "program",
            &f_program,
        ),
        (
            "add_class_schedule",
            "class_id",
            json!({"class_id": f_class, "starts_at": later}),
            "class",
            &f_class,
        ),
        (
            "add_class_schedule",
            "instructor_id",
            json!({"class_id": p_class, "starts_at": later, "instructor_id": f_instructor}),
            "instructor",
            &f_instructor,
        ),
        (
            "add_class_schedule",
            "room_id",
            json!({"class_id": p_class, "starts_at": later, "room_id": f_room}),
            "room",
            &f_room,
        ),
        (
            "reschedule_occurrence",
            "occurrence_id",
            json!({"occurrence_id": f_occ, "starts_at": later}),
            "occurrence",
            &f_occ,
        ),
        (
            "reschedule_occurrence",
            "room_id",
            json!({"occurrence_id": p_occ, "starts_at": later, "room_id": f_room}),
            "room",
            &f_room,
        ),
    ];
    // Filters of list tools: a foreign id matches no row of the caller's studio, so the answer is
    // an empty list rather than a 404.
    let filters: Vec<(&str, &str, Value)> = vec![
        ("list_bookings", "member_id", json!({"member_id": f_member})),
        (
            "list_classes",
            "program_id",
            json!({"program_id": f_program}),
        ),
        (
            "list_classes",
            "instructor_id",
            json!({"instructor_id": f_instructor}),
        ),
        ("list_schedule", "class_id", json!({"class_id": f_class})),
        (
            "list_schedule",
            "instructor_id",
            json!({"instructor_id": f_instructor}),
        ),
        (
            "list_schedule",
            "location_id",
            json!({"location_id": f_location}),
        ),
    ];

    // Every id-taking (tool, argument) of the catalog has exactly one case.
    let registry = Registry::new().unwrap();
    let mut needed = BTreeSet::new();
    for tool in registry.iter() {
        let schema = tool.input_schema_object();
        let props = schema["properties"].as_object().unwrap();
        for name in props.keys() {
            if name.ends_with("_id") || name == "member_ids" {
                needed.insert((tool.def.name.to_string(), name.clone()));
            }
        }
    }
    let mut covered = BTreeSet::new();
    for (tool, field, ..) in &cases {
        assert!(
            covered.insert((tool.to_string(), field.to_string())),
            "{tool}.{field} twice"
        );
    }
    for (tool, field, _) in &filters {
        assert!(
            covered.insert((tool.to_string(), field.to_string())),
            "{tool}.{field} twice"
        );
    }
    let uncovered: Vec<_> = needed.difference(&covered).collect();
    assert!(
        uncovered.is_empty(),
        "id arguments without a tenancy case: {uncovered:?}"
    );
    assert_eq!(covered, needed);

    for (tool, field, args, what, id) in &cases {
        let write = registry.get(tool).unwrap().def.access == flowgate::tool::Access::Write;
        let mut args = args.clone();
        if write {
            args["idempotency_key"] = json!(format!("tenancy-{tool}-{field}"));
        }
        let t = refused(&pro, tool, args).await;
        assert_eq!(t, not_found(what, id, write), "{tool}.{field}");
    }
    for (tool, field, args) in &filters {
        let mut args = args.clone();
        args["limit"] = json!(100);
        let page = ok(call(&pro, tool, args).await, tool);
        assert_eq!(
            page,
            json!({"data": [], "next_cursor": null}),
            "{tool}.{field}"
        );
    }
    // Each refused call reached the upstream and was recorded as its refusal.
    let audit = ok(
        call(
            &pro,
            "list_audit_log",
            json!({"outcome": "upstream_error", "limit": 100}),
        )
        .await,
        "list_audit_log",
    );
    assert_eq!(rows(&audit).len(), cases.len());

    // Nothing of the free studio changed.
    let after = free_studio_snapshot(&free, &gw).await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (key, value) in &before {
        assert_eq!(value, &after[key], "{key} changed");
    }

    free.cancel().await.unwrap();
    pro.cancel().await.unwrap();
    gw.stop().await;
}

// === 3. The output check itself ===

#[test]
fn the_output_check_refuses_undeclared_missing_and_mistyped_fields() {
    let fails = |tool: &str, value: Value| {
        std::panic::catch_unwind(|| conforms(tool, &value))
            .expect_err(&format!("{tool} accepted {value}"));
    };
    conforms("delete_expense", &json!({"id": "exp_1", "deleted": true}));
    fails(
        "delete_expense",
        json!({"id": "exp_1", "deleted": true, "undo_token": "t"}),
    );
    fails("delete_expense", json!({"id": "exp_1"}));
    fails("delete_expense", json!({"id": "exp_1", "deleted": "yes"}));
    // Nested shapes are closed too, and `null` only where the manifest says `nullable`.
    let room = json!({"id": "rm_1", "location_id": "loc_1", "name": "A", "capacity": 4});
    let location = json!({"id": "loc_1", "name": "Loft", "address": "1 Main St", "city": "Portland",
                          "timezone": null, "rooms": [room]});
    conforms("update_location", &location);
    let mut extra = location.clone();
    extra["rooms"][0]["floor"] = json!(2);
    fails("update_location", extra);
    let mut null_name = location.clone();
    null_name["name"] = Value::Null;
    fails("update_location", null_name);
    // A page needs both halves of the envelope; formats are asserted.
    fails("list_locations", json!({"data": [location]}));
    conforms(
        "list_locations",
        &json!({"data": [location], "next_cursor": null}),
    );
    let expense = json!({"id": "exp_1", "description": "Rent", "category": "rent",
                         "amount_cents": 100, "currency": "USD", "incurred_on": "2026-11-31",
                         "vendor": null});
    fails("update_expense", expense);
}
