//! The OpenAPI 3.1 document: the one formal description of the API, built in code.
//!
//! Contract: every route of the router is listed with its method, path parameters, query
//! parameters, request body schema (unknown fields rejected) and response. Tests check that every
//! listed operation is routed and that every upstream call in the tool manifest is listed.

use serde_json::{Map, Value, json};

use crate::input::LEVELS;
use crate::pagination::{DEFAULT_LIMIT, MAX_LIMIT};

/// What a query parameter holds.
#[derive(Clone, Copy)]
enum Q {
    Text,
    Time,
    Date,
    Enum(&'static [&'static str]),
}

/// What a successful call returns.
#[derive(Clone, Copy)]
enum Out {
    One(&'static str),
    List(&'static str),
    Raw(fn() -> Value),
}

struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    /// Needs `X-Flow-Studio`.
    tenant: bool,
    paginated: bool,
    query: &'static [(&'static str, Q, &'static str)],
    body: Option<fn() -> Value>,
    status: u16,
    out: Out,
}

const CLASS_STATUS: &[&str] = &["active", "cancelled"];
const OCC_STATUS: &[&str] = &["scheduled", "cancelled"];
const ROLES: &[&str] = &["guest", "member", "vip", "staff"];
const MEMBER_STATUS: &[&str] = &["invited", "active"];
const VISIBILITY: &[&str] = &["public", "members", "hidden"];
const PLAN_KINDS: &[&str] = &["membership", "class_pack", "drop_in"];
const ACTIVE_ARCHIVED: &[&str] = &["active", "archived"];
const BOOKING_STATUS: &[&str] = &["booked", "cancelled", "attended"];
const GROUP_BY: &[&str] = &["day", "week", "month"];
const CATEGORIES: &[&str] = &[
    "rent",
    "payroll",
    "marketing",
    "equipment",
    "utilities",
    "software",
    "other",
];
const BOOL: &[&str] = &["true", "false"];

fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Op {
    Op {
        method,
        path,
        id,
        tag,
        summary,
        tenant: true,
        paginated: false,
        query: &[],
        body: None,
        status: if method == "post" { 201 } else { 200 },
        out: Out::One("Deleted"),
    }
}

impl Op {
    fn list(mut self, out: &'static str, query: &'static [(&'static str, Q, &'static str)]) -> Op {
        self.paginated = true;
        self.query = query;
        self.out = Out::List(out);
        self
    }
    fn out(mut self, out: &'static str) -> Op {
        self.out = Out::One(out);
        self
    }
    fn raw(mut self, out: fn() -> Value) -> Op {
        self.out = Out::Raw(out);
        self
    }
    fn body(mut self, body: fn() -> Value) -> Op {
        self.body = Some(body);
        self
    }
    fn status(mut self, status: u16) -> Op {
        self.status = status;
        self
    }
    fn public(mut self) -> Op {
        self.tenant = false;
        self
    }
    fn query(mut self, query: &'static [(&'static str, Q, &'static str)]) -> Op {
        self.query = query;
        self
    }
}

// === schema pieces ===

fn s(desc: &str) -> Value {
    json!({"type": "string", "description": desc})
}
fn int(desc: &str, min: Option<i64>, max: Option<i64>) -> Value {
    let mut v = json!({"type": "integer", "description": desc});
    if let Some(m) = min {
        v["minimum"] = json!(m);
    }
    if let Some(m) = max {
        v["maximum"] = json!(m);
    }
    v
}
fn en(values: &[&str], desc: &str) -> Value {
    json!({"type": "string", "enum": values, "description": desc})
}
fn time(desc: &str) -> Value {
    json!({"type": "string", "format": "date-time", "description": desc})
}
fn date(desc: &str) -> Value {
    json!({"type": "string", "format": "date", "description": desc})
}
fn strings(desc: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": desc})
}
fn currency() -> Value {
    json!({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code; defaults to the studio's currency"})
}
fn nullable(v: Value) -> Value {
    let mut v = v;
    if let Some(t) = v.get("type").cloned() {
        v["type"] = json!([t, "null"]);
    }
    v
}
fn obj(required: &[&str], props: Vec<(&str, Value)>) -> Value {
    let props: Map<String, Value> = props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": props})
}
fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

// === request bodies ===

fn class_fields(required: bool) -> Value {
    obj(
        if required {
            &["name", "duration_minutes", "capacity", "price_cents"]
        } else {
            &[]
        },
        vec![
            ("name", s("Class name")),
            ("description", s("What the class is")),
            ("program_id", s("Program of the studio")),
            ("instructor_id", s("Default instructor")),
            (
                "location_id",
                s("Location; taken from the room when omitted"),
            ),
            ("room_id", s("Room; must belong to the location")),
            (
                "duration_minutes",
                int("Length of one session", Some(5), Some(480)),
            ),
            ("capacity", int("Places per session", Some(1), Some(500))),
            (
                "price_cents",
                int("Drop-in price in minor units", Some(0), None),
            ),
            ("currency", currency()),
            ("level", en(LEVELS, "Level")),
        ],
    )
}
fn new_class() -> Value {
    class_fields(true)
}
fn class_patch() -> Value {
    class_fields(false)
}
fn reason() -> Value {
    obj(&[], vec![("reason", s("Why, for the record"))])
}
fn new_occurrences() -> Value {
    obj(
        &["starts_at"],
        vec![
            (
                "starts_at",
                time("Start of the (first) session, RFC 3339 with offset"),
            ),
            ("instructor_id", s("Instructor; default the class's")),
            ("room_id", s("Room; default the class's")),
            (
                "repeat_weeks",
                int(
                    "Number of weekly sessions to add, starting at starts_at",
                    Some(1),
                    Some(52),
                ),
            ),
        ],
    )
}
fn reschedule() -> Value {
    obj(
        &["starts_at"],
        vec![
            ("starts_at", time("New start, RFC 3339 with offset")),
            ("room_id", s("New room")),
        ],
    )
}
fn invitation() -> Value {
    obj(
        &["email", "name"],
        vec![
            (
                "email",
                json!({"type": "string", "format": "email", "description": "E-mail, unique in the studio"}),
            ),
            ("name", s("Full name")),
            ("role", en(ROLES, "Role; default member")),
            ("plan_id", s("Active membership plan to start")),
            ("message", s("Personal note for the invitation")),
        ],
    )
}
fn member_patch() -> Value {
    obj(
        &[],
        vec![
            ("role", en(ROLES, "Role")),
            ("name", s("Full name")),
            ("phone", s("Phone number")),
        ],
    )
}
fn content_patch() -> Value {
    obj(
        &[],
        vec![
            ("title", s("Title")),
            ("description", s("Description")),
            ("visibility", en(VISIBILITY, "Who can watch")),
            ("level", en(LEVELS, "Level")),
            ("tags", strings("Tags (replaces the list)")),
        ],
    )
}
fn plan_fields(new: bool) -> Value {
    let mut props = vec![
        ("name", s("Plan name")),
        ("description", s("Description")),
        ("price_cents", int("Price in minor units", Some(0), None)),
        ("currency", currency()),
        (
            "interval",
            en(
                &["month", "year"],
                "Billing interval (membership only; default month)",
            ),
        ),
        (
            "class_credits",
            int(
                "Classes included (class_pack only, required there)",
                Some(1),
                Some(1000),
            ),
        ),
    ];
    if new {
        props.push(("kind", en(PLAN_KINDS, "What is sold")));
    }
    obj(
        if new {
            &["name", "kind", "price_cents"]
        } else {
            &[]
        },
        props,
    )
}
fn new_plan() -> Value {
    plan_fields(true)
}
fn plan_patch() -> Value {
    plan_fields(false)
}
fn instructor_fields(new: bool) -> Value {
    let mut props = vec![
        ("name", s("Full name")),
        (
            "email",
            json!({"type": "string", "format": "email", "description": "E-mail"}),
        ),
        ("bio", s("Short biography")),
        ("specialties", strings("Specialties")),
    ];
    if !new {
        props.push((
            "active",
            json!({"type": "boolean", "description": "Still teaching"}),
        ));
    }
    obj(if new { &["name"] } else { &[] }, props)
}
fn new_instructor() -> Value {
    instructor_fields(true)
}
fn instructor_patch() -> Value {
    instructor_fields(false)
}
fn room_fields(new: bool) -> Value {
    obj(
        if new { &["name", "capacity"] } else { &[] },
        vec![
            ("name", s("Room name, unique within the location")),
            ("capacity", int("Places", Some(1), Some(500))),
        ],
    )
}
fn new_room() -> Value {
    room_fields(true)
}
fn room_patch() -> Value {
    room_fields(false)
}
fn location_fields(new: bool) -> Value {
    let mut props = vec![
        ("name", s("Location name")),
        ("address", s("Street address")),
        ("city", s("City")),
        ("timezone", s("IANA time zone, e.g. America/Denver")),
    ];
    if new {
        props.push((
            "rooms",
            json!({"type": "array", "items": new_room(), "description": "Rooms to create with it"}),
        ));
    }
    obj(
        if new {
            &["name", "address", "city"]
        } else {
            &[]
        },
        props,
    )
}
fn new_location() -> Value {
    location_fields(true)
}
fn location_patch() -> Value {
    location_fields(false)
}
fn new_coupon() -> Value {
    obj(
        &["code"],
        vec![
            (
                "code",
                json!({"type": "string", "pattern": "^[A-Z0-9_-]{3,32}$", "description": "Code members type, unique in the studio"}),
            ),
            ("description", s("Description")),
            (
                "percent_off",
                int(
                    "Percent off (exactly one of percent_off, amount_off_cents)",
                    Some(1),
                    Some(100),
                ),
            ),
            (
                "amount_off_cents",
                int("Amount off in minor units (needs currency)", Some(1), None),
            ),
            (
                "currency",
                json!({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code of amount_off_cents"}),
            ),
            (
                "max_redemptions",
                int("How many times it can be used", Some(1), None),
            ),
            ("expires_at", time("When it stops working")),
        ],
    )
}
fn program_fields(new: bool) -> Value {
    obj(
        if new { &["name"] } else { &[] },
        vec![
            ("name", s("Program name")),
            ("description", s("Description")),
            (
                "color",
                json!({"type": "string", "pattern": "^#[0-9a-fA-F]{6}$", "description": "Hex colour"}),
            ),
        ],
    )
}
fn new_program() -> Value {
    program_fields(true)
}
fn program_patch() -> Value {
    program_fields(false)
}
fn new_booking() -> Value {
    obj(
        &["occurrence_id", "member_id"],
        vec![
            ("occurrence_id", s("Session to book")),
            ("member_id", s("Member to book")),
            ("plan_id", s("Active plan paying for it")),
            ("coupon_code", s("Coupon code to apply")),
        ],
    )
}
fn cancel_booking() -> Value {
    obj(
        &[],
        vec![
            (
                "refund",
                json!({"type": "boolean", "description": "Refund the price paid"}),
            ),
            ("reason", s("Why, for the record")),
        ],
    )
}
fn expense_fields(new: bool) -> Value {
    obj(
        if new {
            &["description", "category", "amount_cents", "incurred_on"]
        } else {
            &[]
        },
        vec![
            ("description", s("What it was")),
            ("category", en(CATEGORIES, "Category")),
            ("amount_cents", int("Amount in minor units", Some(1), None)),
            ("currency", currency()),
            ("incurred_on", date("Date of the expense")),
            ("vendor", s("Who was paid")),
        ],
    )
}
fn new_expense() -> Value {
    expense_fields(true)
}
fn expense_patch() -> Value {
    expense_fields(false)
}
fn new_message() -> Value {
    obj(
        &["member_ids", "subject", "body"],
        vec![
            (
                "member_ids",
                json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 50, "description": "Recipients, members of the studio"}),
            ),
            ("subject", s("Subject")),
            ("body", s("Text")),
        ],
    )
}
fn sign_in() -> Value {
    obj(
        &["email", "password"],
        vec![
            ("email", s("Studio user's e-mail")),
            (
                "password",
                json!({"type": "string", "format": "password", "description": "Password"}),
            ),
        ],
    )
}

// === responses ===

fn class_detail() -> Value {
    json!({"allOf": [reference("Class"), {"type": "object", "properties": {"upcoming": {"type": "array", "items": reference("Occurrence")}}}]})
}
fn class_cancelled() -> Value {
    json!({"type": "object", "properties": {
        "class": reference("Class"),
        "cancelled_occurrences": {"type": "integer"},
        "cancelled_bookings": {"type": "integer"},
    }})
}
fn occurrences() -> Value {
    json!({"type": "object", "properties": {"data": {"type": "array", "items": reference("Occurrence")}}})
}
fn signed_in() -> Value {
    json!({"type": "object", "properties": {
        "user_id": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string"},
        "role": {"type": "string", "enum": ["owner", "admin", "staff"]},
        "studio": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "tier": {"type": "string", "enum": ["free", "pro"]}}},
    }})
}
fn summary() -> Value {
    let period = json!({"type": "object", "properties": {
        "period": {"type": "string", "description": "YYYY-MM for months, else the first day"},
        "starts_on": {"type": "string", "format": "date"},
        "revenue_cents": {"type": "integer"}, "expenses_cents": {"type": "integer"},
        "net_cents": {"type": "integer"}, "bookings": {"type": "integer"},
    }});
    json!({"type": "object", "properties": {
        "currency": {"type": "string"}, "group_by": {"type": "string"},
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "data": {"type": "array", "items": period}, "totals": period,
    }})
}
fn health() -> Value {
    json!({"type": "object", "properties": {"status": {"type": "string"}}})
}
fn document() -> Value {
    json!({"type": "object", "description": "This OpenAPI document"})
}

fn components() -> Value {
    let n = |v: Value| nullable(v);
    let id = || json!({"type": "string"});
    let t = || json!({"type": "string"});
    let i = || json!({"type": "integer"});
    let schemas = json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
        "Deleted": {"type": "object", "properties": {"id": id(), "deleted": {"type": "boolean"}}},
        "Studio": {"type": "object", "properties": {"id": id(), "name": t(), "slug": t(), "tier": en(&["free", "pro"], "Tier"),
            "timezone": t(), "currency": t(), "city": t(), "country": t(), "description": t()}},
        "PublicStudio": {"type": "object", "properties": {"id": id(), "name": t(), "slug": t(), "timezone": t(), "city": t(), "country": t(), "description": t()}},
        "PublicClass": {"type": "object", "properties": {"id": id(), "class_id": id(), "class_name": t(), "description": n(t()), "level": n(t()),
            "starts_at": t(), "ends_at": t(), "price_cents": i(), "currency": t(), "spots_left": i(),
            "studio": {"type": "object", "properties": {"id": id(), "name": t(), "city": t()}},
            "location": {"type": "object", "properties": {"name": n(t()), "address": n(t())}}}},
        "Program": {"type": "object", "properties": {"id": id(), "name": t(), "description": n(t()), "color": n(t())}},
        "Instructor": {"type": "object", "properties": {"id": id(), "name": t(), "email": n(t()), "bio": n(t()), "specialties": strings("Specialties"), "active": {"type": "boolean"}}},
        "Room": {"type": "object", "properties": {"id": id(), "location_id": id(), "name": t(), "capacity": i()}},
        "Location": {"type": "object", "properties": {"id": id(), "name": t(), "address": t(), "city": t(), "timezone": n(t()), "rooms": {"type": "array", "items": reference("Room")}}},
        "Class": {"type": "object", "properties": {"id": id(), "name": t(), "description": n(t()), "program_id": n(t()), "instructor_id": n(t()),
            "location_id": n(t()), "room_id": n(t()), "duration_minutes": i(), "capacity": i(), "price_cents": i(), "currency": t(),
            "level": n(t()), "status": en(CLASS_STATUS, "Status")}},
        "Occurrence": {"type": "object", "properties": {"id": id(), "class_id": id(), "class_name": t(), "starts_at": t(), "ends_at": t(),
            "instructor_id": n(t()), "room_id": n(t()), "location_id": n(t()), "status": en(OCC_STATUS, "Status"), "capacity": i(), "booked_count": i()}},
        "Member": {"type": "object", "properties": {"id": id(), "name": t(), "email": t(), "phone": n(t()), "role": en(ROLES, "Role"),
            "status": en(MEMBER_STATUS, "Status"), "membership": {"type": ["object", "null"], "properties": {"plan_id": id(),
            "status": en(&["active", "cancelled"], "Status"), "started_at": t(), "cancelled_at": n(t())}}}},
        "Plan": {"type": "object", "properties": {"id": id(), "name": t(), "description": n(t()), "kind": en(PLAN_KINDS, "Kind"), "price_cents": i(),
            "currency": t(), "interval": n(t()), "class_credits": n(i()), "status": en(ACTIVE_ARCHIVED, "Status")}},
        "Coupon": {"type": "object", "properties": {"id": id(), "code": t(), "description": n(t()), "percent_off": n(i()), "amount_off_cents": n(i()),
            "currency": n(t()), "max_redemptions": n(i()), "expires_at": n(t()), "status": en(ACTIVE_ARCHIVED, "Status"), "times_redeemed": i()}},
        "Content": {"type": "object", "properties": {"id": id(), "title": t(), "description": n(t()), "duration_seconds": i(), "instructor_id": n(t()),
            "level": n(t()), "visibility": en(VISIBILITY, "Visibility"), "tags": strings("Tags")}},
        "Booking": {"type": "object", "properties": {"id": id(), "occurrence_id": id(), "member_id": id(), "status": en(BOOKING_STATUS, "Status"),
            "price_cents": i(), "currency": t(), "plan_id": n(t()), "coupon_id": n(t()), "refund_cents": i(), "created_at": t(),
            "cancelled_at": n(t()), "starts_at": t()}},
        "Expense": {"type": "object", "properties": {"id": id(), "description": t(), "category": en(CATEGORIES, "Category"), "amount_cents": i(),
            "currency": t(), "incurred_on": t(), "vendor": n(t())}},
        "Message": {"type": "object", "properties": {"id": id(), "direction": en(&["received", "sent"], "Direction"), "member_ids": strings("Members"),
            "subject": t(), "body": t(), "sent_at": t()}},
    });
    json!({
        "schemas": schemas,
        "securitySchemes": {"service": {"type": "http", "scheme": "bearer", "description": "The service credential handed to the gateway at start"}},
    })
}

fn operations() -> Vec<Op> {
    use Q::*;
    vec![
        op("get", "/healthz", "healthz", "meta", "Liveness")
            .public()
            .raw(health),
        op("get", "/openapi.json", "openapi", "meta", "This document")
            .public()
            .raw(document),
        op(
            "get",
            "/studio",
            "get_studio",
            "studio",
            "The acting studio with its tier",
        )
        .out("Studio"),
        op(
            "post",
            "/auth/sign-in",
            "sign_in",
            "studio",
            "Check a studio user's e-mail and password",
        )
        .public()
        .body(sign_in)
        .status(200)
        .raw(signed_in),
        op("get", "/classes", "list_classes", "classes", "List classes").list(
            "Class",
            &[
                ("status", Enum(CLASS_STATUS), "Filter by status"),
                ("program_id", Text, "Filter by program"),
                ("instructor_id", Text, "Filter by instructor"),
                ("q", Text, "Search name and description"),
            ],
        ),
        op(
            "post",
            "/classes",
            "create_class",
            "classes",
            "Create a class",
        )
        .body(new_class)
        .out("Class"),
        op(
            "get",
            "/classes/{class_id}",
            "get_class",
            "classes",
            "A class with its next 10 scheduled occurrences",
        )
        .raw(class_detail),
        op(
            "patch",
            "/classes/{class_id}",
            "update_class",
            "classes",
            "Change a class",
        )
        .body(class_patch)
        .out("Class"),
        op(
            "delete",
            "/classes/{class_id}",
            "delete_class",
            "classes",
            "Delete a class that never had bookings",
        ),
        op(
            "post",
            "/classes/{class_id}/cancel",
            "cancel_class",
            "classes",
            "Cancel a class, its future occurrences and their bookings",
        )
        .body(reason)
        .status(200)
        .raw(class_cancelled),
        op(
            "post",
            "/classes/{class_id}/occurrences",
            "add_class_schedule",
            "schedule",
            "Add one occurrence or a weekly series",
        )
        .body(new_occurrences)
        .raw(occurrences),
        op(
            "get",
            "/schedule",
            "list_schedule",
            "schedule",
            "Occurrences ordered by start",
        )
        .list(
            "Occurrence",
            &[
                ("from", Time, "Start at or after"),
                ("to", Time, "Start before"),
                ("class_id", Text, "Filter by class"),
                ("instructor_id", Text, "Filter by instructor"),
                ("location_id", Text, "Filter by location"),
                ("status", Enum(OCC_STATUS), "Filter by status"),
            ],
        ),
        op(
            "post",
            "/schedule/{occurrence_id}/reschedule",
            "reschedule_occurrence",
            "schedule",
            "Move an occurrence, keeping its bookings",
        )
        .body(reschedule)
        .status(200)
        .out("Occurrence"),
        op(
            "get",
            "/schedule/{occurrence_id}/bookings",
            "list_class_bookings",
            "bookings",
            "Bookings of one occurrence",
        )
        .list(
            "Booking",
            &[("status", Enum(BOOKING_STATUS), "Filter by status")],
        ),
        op("get", "/members", "list_members", "members", "List members").list(
            "Member",
            &[
                ("q", Text, "Search name and e-mail"),
                ("role", Enum(ROLES), "Filter by role"),
                ("status", Enum(MEMBER_STATUS), "Filter by status"),
            ],
        ),
        op(
            "get",
            "/members/{member_id}",
            "get_member",
            "members",
            "One member",
        )
        .out("Member"),
        op(
            "post",
            "/members/invitations",
            "invite_member",
            "members",
            "Invite a new member",
        )
        .body(invitation)
        .out("Member"),
        op(
            "patch",
            "/members/{member_id}",
            "update_member",
            "members",
            "Change a member's role, name or phone",
        )
        .body(member_patch)
        .out("Member"),
        op(
            "post",
            "/members/{member_id}/membership/cancel",
            "cancel_membership",
            "members",
            "Cancel a member's active membership",
        )
        .body(reason)
        .status(200)
        .out("Member"),
        op(
            "get",
            "/content",
            "list_content",
            "content",
            "List on-demand videos",
        )
        .list(
            "Content",
            &[
                ("q", Text, "Search title, description and tags"),
                ("visibility", Enum(VISIBILITY), "Filter by visibility"),
            ],
        ),
        op(
            "patch",
            "/content/{content_id}",
            "update_content",
            "content",
            "Change a video's details or visibility",
        )
        .body(content_patch)
        .out("Content"),
        op("get", "/plans", "list_plans", "plans", "List plans").list(
            "Plan",
            &[
                ("status", Enum(ACTIVE_ARCHIVED), "Filter by status"),
                ("kind", Enum(PLAN_KINDS), "Filter by kind"),
            ],
        ),
        op("post", "/plans", "create_plan", "plans", "Create a plan")
            .body(new_plan)
            .out("Plan"),
        op(
            "patch",
            "/plans/{plan_id}",
            "update_plan",
            "plans",
            "Change a plan",
        )
        .body(plan_patch)
        .out("Plan"),
        op(
            "post",
            "/plans/{plan_id}/archive",
            "archive_plan",
            "plans",
            "Archive a plan (no new sales)",
        )
        .status(200)
        .out("Plan"),
        op(
            "get",
            "/instructors",
            "list_instructors",
            "instructors",
            "List instructors",
        )
        .list(
            "Instructor",
            &[
                ("q", Text, "Search name and specialties"),
                ("active", Enum(BOOL), "Filter by active"),
            ],
        ),
        op(
            "post",
            "/instructors",
            "create_instructor",
            "instructors",
            "Add an instructor",
        )
        .body(new_instructor)
        .out("Instructor"),
        op(
            "patch",
            "/instructors/{instructor_id}",
            "update_instructor",
            "instructors",
            "Change an instructor",
        )
        .body(instructor_patch)
        .out("Instructor"),
        op(
            "get",
            "/locations",
            "list_locations",
            "locations",
            "List locations with their rooms",
        )
        .list(
            "Location",
            &[
                ("q", Text, "Search name and address"),
                ("city", Text, "Filter by city"),
            ],
        ),
        op(
            "post",
            "/locations",
            "create_location",
            "locations",
            "Add a location, optionally with rooms",
        )
        .body(new_location)
        .out("Location"),
        op(
            "patch",
            "/locations/{location_id}",
            "update_location",
            "locations",
            "Change a location",
        )
        .body(location_patch)
        .out("Location"),
        op(
            "delete",
            "/locations/{location_id}",
            "delete_location",
            "locations",
            "Delete a location without upcoming occurrences",
        ),
        op(
            "post",
            "/locations/{location_id}/rooms",
            "create_room",
            "locations",
            "Add a room",
        )
        .body(new_room)
        .out("Room"),
        op(
            "patch",
            "/locations/{location_id}/rooms/{room_id}",
            "update_room",
            "locations",
            "Change a room",
        )
        .body(room_patch)
        .out("Room"),
        op(
            "delete",
            "/locations/{location_id}/rooms/{room_id}",
            "delete_room",
            "locations",
            "Delete a room without upcoming occurrences",
        ),
        op("get", "/coupons", "list_coupons", "coupons", "List coupons").list(
            "Coupon",
            &[("status", Enum(ACTIVE_ARCHIVED), "Filter by status")],
        ),
        op(
            "post",
            "/coupons",
            "create_coupon",
            "coupons",
            "Create a coupon",
        )
        .body(new_coupon)
        .out("Coupon"),
        op(
            "post",
            "/coupons/{coupon_id}/archive",
            "archive_coupon",
            "coupons",
            "Archive a coupon (no new redemptions)",
        )
        .status(200)
        .out("Coupon"),
        op(
            "get",
            "/programs",
            "list_programs",
            "programs",
            "List programs",
        )
        .list("Program", &[("q", Text, "Search name")]),
        op(
            "post",
            "/programs",
            "create_program",
            "programs",
            "Create a program",
        )
        .body(new_program)
        .out("Program"),
        op(
            "patch",
            "/programs/{program_id}",
            "update_program",
            "programs",
            "Change a program",
        )
        .body(program_patch)
        .out("Program"),
        op(
            "get",
            "/bookings",
            "list_bookings",
            "bookings",
            "List bookings by session start",
        )
        .list(
            "Booking",
            &[
                ("from", Time, "Session starts at or after"),
                ("to", Time, "Session starts before"),
                ("status", Enum(BOOKING_STATUS), "Filter by status"),
                ("member_id", Text, "Filter by member"),
            ],
        ),
        op(
            "post",
            "/bookings",
            "book_class",
            "bookings",
            "Book a member into a session",
        )
        .body(new_booking)
        .out("Booking"),
        op(
            "post",
            "/bookings/{booking_id}/cancel",
            "cancel_booking",
            "bookings",
            "Cancel a booking, optionally refunding it",
        )
        .body(cancel_booking)
        .status(200)
        .out("Booking"),
        op(
            "get",
            "/financials/summary",
            "financials_summary",
            "financials",
            "Revenue, expenses and net per period",
        )
        .query(&[
            (
                "from",
                Date,
                "First day (inclusive); default six months back",
            ),
            ("to", Date, "Last day (exclusive); default tomorrow"),
            ("group_by", Enum(GROUP_BY), "Period; default month"),
        ])
        .raw(summary),
        op(
            "get",
            "/expenses",
            "list_expenses",
            "expenses",
            "List expenses, newest first",
        )
        .list(
            "Expense",
            &[
                ("from", Date, "Incurred on or after"),
                ("to", Date, "Incurred before"),
                ("category", Enum(CATEGORIES), "Filter by category"),
            ],
        ),
        op(
            "post",
            "/expenses",
            "create_expense",
            "expenses",
            "Record an expense",
        )
        .body(new_expense)
        .out("Expense"),
        op(
            "patch",
            "/expenses/{expense_id}",
            "update_expense",
            "expenses",
            "Change an expense",
        )
        .body(expense_patch)
        .out("Expense"),
        op(
            "delete",
            "/expenses/{expense_id}",
            "delete_expense",
            "expenses",
            "Delete an expense",
        ),
        op(
            "get",
            "/messages",
            "list_messages",
            "messages",
            "Messages the studio received, newest first",
        )
        .list("Message", &[]),
        op(
            "post",
            "/messages",
            "send_message",
            "messages",
            "Send a message to members",
        )
        .body(new_message)
        .out("Message"),
        op(
            "get",
            "/directory/studios",
            "search_studios",
            "directory",
            "Public listing of all studios",
        )
        .public()
        .list(
            "PublicStudio",
            &[
                ("q", Text, "Search name and description"),
                ("city", Text, "Filter by city"),
            ],
        ),
        op(
            "get",
            "/directory/classes",
            "search_classes",
            "directory",
            "Upcoming public sessions of all studios",
        )
        .public()
        .list(
            "PublicClass",
            &[
                (
                    "q",
                    Text,
                    "Search class names, descriptions and studio names",
                ),
                ("city", Text, "Filter by city"),
                ("from", Time, "Start at or after (default now)"),
                ("to", Time, "Start before"),
            ],
        ),
    ]
}

fn query_schema(q: Q) -> Value {
    match q {
        Q::Text => json!({"type": "string"}),
        Q::Time => json!({"type": "string", "format": "date-time"}),
        Q::Date => json!({"type": "string", "format": "date"}),
        Q::Enum(values) => json!({"type": "string", "enum": values}),
    }
}

fn error_response(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": reference("Error")}}})
}

fn operation(o: &Op) -> Value {
    let mut params = Vec::new();
    for seg in o.path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            params.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
    }
    for (name, q, desc) in o.query {
        params.push(json!({"name": name, "in": "query", "required": false, "description": desc, "schema": query_schema(*q)}));
    }
    if o.paginated {
        params.push(json!({"name": "cursor", "in": "query", "required": false, "description": "`next_cursor` of the previous page", "schema": {"type": "string"}}));
        params.push(json!({"name": "limit", "in": "query", "required": false, "description": "Page size", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}}));
    }
    if o.tenant {
        params.push(json!({"name": "X-Flow-Studio", "in": "header", "required": true, "description": "Acting studio id", "schema": {"type": "string"}}));
    }
    if o.method != "get" {
        params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "description": "Replays the stored response of an earlier request with the same key", "schema": {"type": "string", "minLength": 1, "maxLength": 255}}));
    }
    let schema = match o.out {
        Out::One(name) => reference(name),
        Out::List(name) => {
            json!({"type": "object", "required": ["data", "next_cursor"], "properties": {
            "data": {"type": "array", "items": reference(name)},
            "next_cursor": {"type": ["string", "null"]}}})
        }
        Out::Raw(f) => f(),
    };
    let mut success =
        json!({"description": "Success", "content": {"application/json": {"schema": schema}}});
    if o.method != "get" {
        success["headers"] = json!({"Idempotent-Replayed": {
            "description": "`true` when this is the stored response of an earlier request with the same Idempotency-Key",
            "schema": {"type": "string", "enum": ["true"]},
        }});
    }
    let mut responses = Map::new();
    responses.insert(o.status.to_string(), success);
    responses.insert(
        "400".into(),
        error_response("Invalid input (`field` names it)"),
    );
    responses.insert("401".into(), error_response("Missing or wrong credential"));
    if o.tenant || o.path.contains('{') {
        responses.insert(
            "404".into(),
            error_response("Not found in the acting studio"),
        );
    }
    if o.method != "get" {
        responses.insert("409".into(), error_response("A business rule forbids it"));
        responses.insert(
            "422".into(),
            error_response("Idempotency-Key reused with a different request"),
        );
    }
    let mut v = json!({
        "operationId": o.id,
        "summary": o.summary,
        "tags": [o.tag],
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = o.body {
        v["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": body()}}});
    }
    v
}

/// The OpenAPI 3.1 document of the API (served at `/v1/openapi.json`).
pub fn openapi() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for o in operations() {
        let item = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        item[o.method] = operation(&o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "flowgate studio Management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The embedded reference Management API for studios. Errors are {\"error\": {\"code\", \"message\", \"field\"?}}; lists are {\"data\", \"next_cursor\"}.",
        },
        "servers": [{"url": "/v1"}],
        "security": [{"service": []}],
        "paths": paths,
        "components": components(),
    })
}
