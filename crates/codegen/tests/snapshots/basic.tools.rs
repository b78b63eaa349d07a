// @generated from manifest/ by build.rs — do not edit.

use crate::tool::glue as rt;
/// Cedar action ids, one per tool: use these, never string literals.
pub mod actions {
    /// Cedar action `Flow::Action::"create_coupon"`: Create a coupon.
    pub const CREATE_COUPON: &str = "create_coupon";
    /// Cedar action `Flow::Action::"list_classes"`: List classes.
    pub const LIST_CLASSES: &str = "list_classes";
    /// Cedar action `Flow::Action::"search_studios"`: Search studios.
    pub const SEARCH_STUDIOS: &str = "search_studios";
    /// Cedar action `Flow::Action::"update_class"`: Update a class.
    pub const UPDATE_CLASS: &str = "update_class";
    /// Cedar action `Flow::Action::"whoami"`: Who am I.
    pub const WHOAMI: &str = "whoami";
}
/// Prefix of every upstream path.
pub const BASE_PATH: &str = "/v1";
/// Tiers, lowest first.
pub static TIERS: &[rt::TierDef] = &[
    rt::TierDef {
        name: "free",
        title: "Free",
    },
    rt::TierDef {
        name: "pro",
        title: "Pro",
    },
];
/// Declared scopes, sorted by name, with the sentence the consent page shows.
pub static SCOPES: &[rt::ScopeDef] = &[
    rt::ScopeDef {
        name: "classes:read",
        description: "See your classes.",
    },
    rt::ScopeDef {
        name: "classes:write",
        description: "Change your classes.",
    },
    rt::ScopeDef {
        name: "coupons:write",
        description: "Create coupons.",
    },
    rt::ScopeDef {
        name: "directory:read",
        description: "Search the public directory.",
    },
];
/// Arguments of `create_coupon` (Create a coupon).
///
/// Creates a coupon.
#[derive(
    Debug,
    Clone,
    PartialEq,
    ::serde::Deserialize,
    ::serde::Serialize,
    ::schemars::JsonSchema
)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponInput {
    /// The code.
    pub code: String,
    /// Percent off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<i64>,
    /// Fixed amount off, in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_off_cents: Option<i64>,
    /// Any unique string (for example a UUID) that makes retrying this call safe: the same key with the same arguments within 24 hours returns the first result without repeating the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}
impl CreateCouponInput {
    /// This value as a Cedar record (numbers and the idempotency key left out).
    pub fn to_cedar(&self) -> rt::Expr {
        let mut fields: Vec<(&'static str, rt::Expr)> = Vec::with_capacity(3usize);
        {
            let v = &self.code;
            fields.push(("code", rt::cedar_string(v)));
        }
        if let Some(v) = &self.percent_off {
            fields.push(("percent_off", rt::cedar_long(*v)));
        }
        if let Some(v) = &self.amount_off_cents {
            fields.push(("amount_off_cents", rt::cedar_long(*v)));
        }
        rt::cedar_record(fields)
    }
}
impl CreateCouponInput {
    /// The upstream call: `POST /v1/coupons`.
    pub fn to_upstream(&self) -> Result<rt::UpstreamRequest, rt::DecodeError> {
        let mut req = rt::UpstreamRequest::new(
            rt::Method::POST,
            String::from("/v1/coupons"),
        );
        {
            let v = &self.code;
            req.body("code", rt::json(v));
        }
        if let Some(v) = &self.percent_off {
            req.body("percent_off", rt::json(v));
        }
        if let Some(v) = &self.amount_off_cents {
            req.body("amount_off_cents", rt::json(v));
        }
        Ok(req)
    }
}
/// Decodes validated arguments of `create_coupon` into its Cedar context and upstream request (or its built-in handler's typed input).
fn decode_create_coupon(args: rt::Value) -> Result<rt::Decoded, rt::DecodeError> {
    let input: CreateCouponInput = rt::from_value(args)?;
    Ok(rt::Decoded {
        context: input.to_cedar(),
        upstream: Some(input.to_upstream()?),
        canonical: input.idempotency_key.is_some().then(|| rt::canonical(&input)),
        idempotency_key: input.idempotency_key,
        builtin: None,
    })
}
/// Arguments of `list_classes` (List classes).
///
/// Lists classes.
#[derive(
    Debug,
    Clone,
    PartialEq,
    ::serde::Deserialize,
    ::serde::Serialize,
    ::schemars::JsonSchema
)]
#[serde(deny_unknown_fields)]
pub struct ListClassesInput {
    /// Only classes with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only classes starting after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Opaque cursor from the `next_cursor` of a previous page; omit it for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// How many items to return, 1 to 100 (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}
impl ListClassesInput {
    /// This value as a Cedar record (numbers and the idempotency key left out).
    pub fn to_cedar(&self) -> rt::Expr {
        let mut fields: Vec<(&'static str, rt::Expr)> = Vec::with_capacity(4usize);
        if let Some(v) = &self.status {
            fields.push(("status", rt::cedar_string(v)));
        }
        if let Some(v) = &self.from {
            fields.push(("from", rt::cedar_datetime(v)));
        }
        if let Some(v) = &self.cursor {
            fields.push(("cursor", rt::cedar_string(v)));
        }
        if let Some(v) = &self.limit {
            fields.push(("limit", rt::cedar_long(*v)));
        }
        rt::cedar_record(fields)
    }
}
impl ListClassesInput {
    /// The upstream call: `GET /v1/classes`.
    pub fn to_upstream(&self) -> Result<rt::UpstreamRequest, rt::DecodeError> {
        let mut req = rt::UpstreamRequest::new(
            rt::Method::GET,
            String::from("/v1/classes"),
        );
        if let Some(v) = &self.status {
            req.query("status", rt::query_value(v));
        }
        if let Some(v) = &self.from {
            req.query("from", rt::query_value(v));
        }
        if let Some(v) = &self.cursor {
            req.query("cursor", rt::query_value(v));
        }
        if let Some(v) = &self.limit {
            req.query("limit", rt::query_value(v));
        }
        Ok(req)
    }
}
/// Decodes validated arguments of `list_classes` into its Cedar context and upstream request (or its built-in handler's typed input).
fn decode_list_classes(args: rt::Value) -> Result<rt::Decoded, rt::DecodeError> {
    let input: ListClassesInput = rt::from_value(args)?;
    Ok(rt::Decoded {
        context: input.to_cedar(),
        upstream: Some(input.to_upstream()?),
        canonical: None,
        idempotency_key: None,
        builtin: None,
    })
}
/// Arguments of `search_studios` (Search studios).
///
/// Searches the public directory.
#[derive(
    Debug,
    Clone,
    PartialEq,
    ::serde::Deserialize,
    ::serde::Serialize,
    ::schemars::JsonSchema
)]
#[serde(deny_unknown_fields)]
pub struct SearchStudiosInput {
    /// Words to look for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}
impl SearchStudiosInput {
    /// This value as a Cedar record (numbers and the idempotency key left out).
    pub fn to_cedar(&self) -> rt::Expr {
        let mut fields: Vec<(&'static str, rt::Expr)> = Vec::with_capacity(1usize);
        if let Some(v) = &self.q {
            fields.push(("q", rt::cedar_string(v)));
        }
        rt::cedar_record(fields)
    }
}
impl SearchStudiosInput {
    /// The upstream call: `GET /v1/directory/studios`.
    pub fn to_upstream(&self) -> Result<rt::UpstreamRequest, rt::DecodeError> {
        let mut req = rt::UpstreamRequest::new(
            rt::Method::GET,
            String::from("/v1/directory/studios"),
        );
        if let Some(v) = &self.q {
            req.query("q", rt::query_value(v));
        }
        Ok(req)
    }
}
/// Decodes validated arguments of `search_studios` into its Cedar context and upstream request (or its built-in handler's typed input).
fn decode_search_studios(args: rt::Value) -> Result<rt::Decoded, rt::DecodeError> {
    let input: SearchStudiosInput = rt::from_value(args)?;
    Ok(rt::Decoded {
        context: input.to_cedar(),
        upstream: Some(input.to_upstream()?),
        canonical: None,
        idempotency_key: None,
        builtin: None,
    })
}
/// When it runs.
#[derive(
    Debug,
    Clone,
    PartialEq,
    ::serde::Deserialize,
    ::serde::Serialize,
    ::schemars::JsonSchema
)]
#[serde(deny_unknown_fields)]
pub struct UpdateClassInputSchedule {
    /// First session.
    pub starts_at: String,
    /// Private notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}
impl UpdateClassInputSchedule {
    /// This value as a Cedar record (numbers and the idempotency key left out).
    pub fn to_cedar(&self) -> rt::Expr {
        let mut fields: Vec<(&'static str, rt::Expr)> = Vec::with_capacity(2usize);
        {
            let v = &self.starts_at;
            fields.push(("starts_at", rt::cedar_datetime(v)));
        }
        if let Some(v) = &self.notes {
            fields.push(("notes", rt::cedar_string(v)));
        }
        rt::cedar_record(fields)
    }
}
/// Arguments of `update_class` (Update a class).
///
/// Changes a class.
#[derive(
    Debug,
    Clone,
    PartialEq,
    ::serde::Deserialize,
    ::serde::Serialize,
    ::schemars::JsonSchema
)]
#[serde(deny_unknown_fields)]
pub struct UpdateClassInput {
    /// The class to change.
    pub class_id: String,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// A number no policy may compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// When it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<UpdateClassInputSchedule>,
    /// Any unique string (for example a UUID) that makes retrying this call safe: the same key with the same arguments within 24 hours returns the first result without repeating the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}
impl UpdateClassInput {
    /// This value as a Cedar record (numbers and the idempotency key left out).
    pub fn to_cedar(&self) -> rt::Expr {
        let mut fields: Vec<(&'static str, rt::Expr)> = Vec::with_capacity(4usize);
        {
            let v = &self.class_id;
            fields.push(("class_id", rt::cedar_string(v)));
        }
        if let Some(v) = &self.name {
            fields.push(("name", rt::cedar_string(v)));
        }
        if let Some(v) = &self.tags {
            fields.push(("tags", rt::cedar_set(v.iter().map(|x| rt::cedar_string(x)))));
        }
        if let Some(v) = &self.schedule {
            fields.push(("schedule", v.to_cedar()));
        }
        rt::cedar_record(fields)
    }
}
impl UpdateClassInput {
    /// The upstream call: `PATCH /v1/classes/{class_id}`.
    pub fn to_upstream(&self) -> Result<rt::UpstreamRequest, rt::DecodeError> {
        let mut req = rt::UpstreamRequest::new(
            rt::Method::PATCH,
            rt::checked_path(
                format!(
                    "/v1/classes/{}", rt::encode_segment("class_id", & self.class_id) ?
                ),
            )?,
        );
        if let Some(v) = &self.name {
            req.body("name", rt::json(v));
        }
        if let Some(v) = &self.tags {
            req.body("tags", rt::json(v));
        }
        if let Some(v) = &self.price {
            req.body("price", rt::json(v));
        }
        if let Some(v) = &self.schedule {
            req.body("schedule", rt::json(v));
        }
        Ok(req)
    }
}
/// Decodes validated arguments of `update_class` into its Cedar context and upstream request (or its built-in handler's typed input).
fn decode_update_class(args: rt::Value) -> Result<rt::Decoded, rt::DecodeError> {
    let input: UpdateClassInput = rt::from_value(args)?;
    Ok(rt::Decoded {
        context: input.to_cedar(),
        upstream: Some(input.to_upstream()?),
        canonical: input.idempotency_key.is_some().then(|| rt::canonical(&input)),
        idempotency_key: input.idempotency_key,
        builtin: None,
    })
}
/// Arguments of `whoami` (Who am I).
///
/// Tells who this connection is.
#[derive(
    Debug,
    Clone,
    PartialEq,
    ::serde::Deserialize,
    ::serde::Serialize,
    ::schemars::JsonSchema
)]
#[serde(deny_unknown_fields)]
pub struct WhoamiInput {}
impl WhoamiInput {
    /// This value as a Cedar record (numbers and the idempotency key left out).
    pub fn to_cedar(&self) -> rt::Expr {
        let fields: Vec<(&'static str, rt::Expr)> = Vec::new();
        rt::cedar_record(fields)
    }
}
impl WhoamiInput {}
/// Decodes validated arguments of `whoami` into its Cedar context and upstream request (or its built-in handler's typed input).
fn decode_whoami(args: rt::Value) -> Result<rt::Decoded, rt::DecodeError> {
    let input: WhoamiInput = rt::from_value(args)?;
    Ok(rt::Decoded {
        context: input.to_cedar(),
        upstream: None,
        canonical: None,
        idempotency_key: None,
        builtin: Some(rt::BuiltinInput::Whoami(input)),
    })
}
/// Every tool of the manifest, sorted by name.
pub static TOOLS: &[rt::ToolDef] = &[
    rt::ToolDef {
        name: "create_coupon",
        title: "Create a coupon",
        description: "Creates a coupon.",
        scope: Some("coupons:write"),
        tier: "pro",
        access: rt::Access::Write,
        destructive: false,
        idempotent: false,
        open_world: false,
        public: false,
        paginated: false,
        action: actions::CREATE_COUPON,
        input_schema: "{\"type\":\"object\",\"properties\":{\"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z0-9]{3,12}$\",\"description\":\"The code.\"},\"percent_off\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"description\":\"Percent off.\"},\"amount_off_cents\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"Fixed amount off, in minor units.\"},\"idempotency_key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255,\"description\":\"Any unique string (for example a UUID) that makes retrying this call safe: the same key with the same arguments within 24 hours returns the first result without repeating the change.\"}},\"required\":[\"code\"],\"additionalProperties\":false}",
        output_schema: "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"percent_off\":{\"type\":[\"integer\",\"null\"]},\"extra\":{\"type\":\"object\",\"properties\":{},\"description\":\"Anything else the API says.\"}},\"required\":[\"id\",\"percent_off\",\"extra\"]}",
        sensitive: &[],
        path_params: &[],
        target: rt::Target::Upstream {
            method: "POST",
            path: "/coupons",
        },
        example: "{\"input\":{\"code\":\"SPRING\",\"percent_off\":20},\"request\":{\"method\":\"POST\",\"path\":\"/v1/coupons\",\"body\":{\"code\":\"SPRING\",\"percent_off\":20}}}",
        decode: decode_create_coupon,
        typed_schema: || ::schemars::schema_for!(CreateCouponInput),
    },
    rt::ToolDef {
        name: "list_classes",
        title: "List classes",
        description: "Lists classes.",
        scope: Some("classes:read"),
        tier: "free",
        access: rt::Access::Read,
        destructive: false,
        idempotent: true,
        open_world: false,
        public: false,
        paginated: true,
        action: actions::LIST_CLASSES,
        input_schema: "{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"string\",\"enum\":[\"active\",\"cancelled\"],\"description\":\"Only classes with this status.\"},\"from\":{\"type\":\"string\",\"format\":\"date-time\",\"description\":\"Only classes starting after this time.\"},\"cursor\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":512,\"description\":\"Opaque cursor from the `next_cursor` of a previous page; omit it for the first page.\"},\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"description\":\"How many items to return, 1 to 100 (default 25).\"}},\"additionalProperties\":false}",
        output_schema: "{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"description\":\"The class id.\"},\"name\":{\"type\":\"string\"},\"starts_at\":{\"type\":[\"string\",\"null\"],\"format\":\"date-time\"},\"level\":{\"type\":[\"string\",\"null\"],\"enum\":[\"beginner\",\"advanced\",null]},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"room\":{\"type\":[\"object\",\"null\"],\"properties\":{\"id\":{\"type\":\"string\"},\"capacity\":{\"type\":\"integer\"}},\"required\":[\"id\",\"capacity\"],\"description\":\"A room.\"},\"note\":{\"type\":\"string\",\"description\":\"Present only for staff.\"}},\"required\":[\"id\",\"name\",\"starts_at\",\"level\",\"tags\",\"room\"],\"description\":\"A class of the studio.\"},\"description\":\"The items of this page, in order.\"},\"next_cursor\":{\"type\":[\"string\",\"null\"],\"description\":\"Pass it back as `cursor` for the next page; null on the last page.\"}},\"required\":[\"data\",\"next_cursor\"]}",
        sensitive: &[],
        path_params: &[],
        target: rt::Target::Upstream {
            method: "GET",
            path: "/classes",
        },
        example: "{\"input\":{\"status\":\"active\",\"limit\":10},\"request\":{\"method\":\"GET\",\"path\":\"/v1/classes\",\"query\":{\"limit\":\"10\",\"status\":\"active\"}}}",
        decode: decode_list_classes,
        typed_schema: || ::schemars::schema_for!(ListClassesInput),
    },
    rt::ToolDef {
        name: "search_studios",
        title: "Search studios",
        description: "Searches the public directory.",
        scope: Some("directory:read"),
        tier: "free",
        access: rt::Access::Read,
        destructive: false,
        idempotent: true,
        open_world: false,
        public: true,
        paginated: false,
        action: actions::SEARCH_STUDIOS,
        input_schema: "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\",\"description\":\"Words to look for.\"}},\"additionalProperties\":false}",
        output_schema: "{\"type\":\"object\",\"properties\":{}}",
        sensitive: &[],
        path_params: &[],
        target: rt::Target::Upstream {
            method: "GET",
            path: "/directory/studios",
        },
        example: "{\"input\":{\"q\":\"yoga\"},\"request\":{\"method\":\"GET\",\"path\":\"/v1/directory/studios\",\"query\":{\"q\":\"yoga\"}}}",
        decode: decode_search_studios,
        typed_schema: || ::schemars::schema_for!(SearchStudiosInput),
    },
    rt::ToolDef {
        name: "update_class",
        title: "Update a class",
        description: "Changes a class.",
        scope: Some("classes:write"),
        tier: "pro",
        access: rt::Access::Write,
        destructive: false,
        idempotent: true,
        open_world: false,
        public: false,
        paginated: false,
        action: actions::UPDATE_CLASS,
        input_schema: "{\"type\":\"object\",\"properties\":{\"class_id\":{\"type\":\"string\",\"minLength\":1,\"description\":\"The class to change.\"},\"name\":{\"type\":\"string\",\"maxLength\":80,\"description\":\"New name.\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"description\":\"A label.\"},\"maxItems\":5,\"description\":\"Labels.\"},\"price\":{\"type\":\"number\",\"description\":\"A number no policy may compare.\"},\"schedule\":{\"type\":\"object\",\"properties\":{\"starts_at\":{\"type\":\"string\",\"format\":\"date-time\",\"description\":\"First session.\"},\"notes\":{\"type\":\"string\",\"description\":\"Private notes.\"}},\"required\":[\"starts_at\"],\"additionalProperties\":false,\"description\":\"When it runs.\"},\"idempotency_key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255,\"description\":\"Any unique string (for example a UUID) that makes retrying this call safe: the same key with the same arguments within 24 hours returns the first result without repeating the change.\"}},\"required\":[\"class_id\"],\"additionalProperties\":false}",
        output_schema: "{\"type\":\"object\",\"properties\":{\"class\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"description\":\"The class id.\"},\"name\":{\"type\":\"string\"},\"starts_at\":{\"type\":[\"string\",\"null\"],\"format\":\"date-time\"},\"level\":{\"type\":[\"string\",\"null\"],\"enum\":[\"beginner\",\"advanced\",null]},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"room\":{\"type\":[\"object\",\"null\"],\"properties\":{\"id\":{\"type\":\"string\"},\"capacity\":{\"type\":\"integer\"}},\"required\":[\"id\",\"capacity\"],\"description\":\"A room.\"},\"note\":{\"type\":\"string\",\"description\":\"Present only for staff.\"}},\"required\":[\"id\",\"name\",\"starts_at\",\"level\",\"tags\",\"room\"],\"description\":\"The class as changed.\"},\"changed\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":\"The fields that changed.\"}},\"required\":[\"class\",\"changed\"]}",
        sensitive: &["schedule.notes"],
        path_params: &["class_id"],
        target: rt::Target::Upstream {
            method: "PATCH",
            path: "/classes/{class_id}",
        },
        example: "{\"input\":{\"class_id\":\"cls 1\",\"name\":\"Flow\",\"idempotency_key\":\"k1\"},\"request\":{\"method\":\"PATCH\",\"path\":\"/v1/classes/cls%201\",\"body\":{\"name\":\"Flow\"}}}",
        decode: decode_update_class,
        typed_schema: || ::schemars::schema_for!(UpdateClassInput),
    },
    rt::ToolDef {
        name: "whoami",
        title: "Who am I",
        description: "Tells who this connection is.",
        scope: None,
        tier: "free",
        access: rt::Access::Read,
        destructive: false,
        idempotent: true,
        open_world: false,
        public: false,
        paginated: false,
        action: actions::WHOAMI,
        input_schema: "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
        output_schema: "{\"type\":\"object\",\"properties\":{\"studio\":{\"type\":\"string\",\"description\":\"The studio id.\"},\"scopes\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},\"required\":[\"studio\",\"scopes\"]}",
        sensitive: &[],
        path_params: &[],
        target: rt::Target::Builtin(rt::Builtin::Whoami),
        example: "{\"input\":{},\"request\":null}",
        decode: decode_whoami,
        typed_schema: || ::schemars::schema_for!(WhoamiInput),
    },
];
