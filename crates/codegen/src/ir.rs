//! The validated intermediate model of the manifest.
//!
//! Everything the emitters need, and nothing they have to check again: names are unique and
//! valid, scopes and tiers are declared, path parameters are required strings, and every input
//! is routed to exactly one place upstream. Tools are sorted by name so output is deterministic.

/// The whole manifest after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Prefix of every upstream path, e.g. `/v1`.
    pub base_path: String,
    /// Tiers, lowest first.
    pub tiers: Vec<Tier>,
    /// Declared scopes, sorted by name.
    pub scopes: Vec<Scope>,
    /// Tools, sorted by name.
    pub tools: Vec<Tool>,
}

impl Manifest {
    /// The position of a tier in the order (0 = lowest).
    pub fn tier_rank(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == name)
    }

    /// Scopes that at least one tool requires, sorted.
    pub fn used_scopes(&self) -> Vec<&Scope> {
        self.scopes
            .iter()
            .filter(|s| {
                self.tools
                    .iter()
                    .any(|t| t.scope.as_deref() == Some(&s.name))
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub name: String,
    /// Display name, e.g. `Pro`.
    pub title: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub name: String,
    /// The sentence shown on the consent page.
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub title: String,
    pub description: String,
    /// `None`: any valid connection may call it.
    pub scope: Option<String>,
    pub tier: String,
    pub access: Access,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
    /// Reads the public cross-studio directory.
    pub public: bool,
    pub paginated: bool,
    /// The arguments, including the inputs the generator adds.
    pub input: Object,
    /// The result (`structuredContent`), published as `outputSchema`: declared shapes already
    /// inlined, the list envelope (`data`, `next_cursor`) already added to paginated tools.
    pub output: Object,
    pub target: Target,
    pub example: Example,
    /// The manifest file that declared the tool, for messages.
    pub file: String,
}

impl Tool {
    /// Dotted paths of the inputs marked `sensitive` (`[]` marks array items).
    pub fn sensitive_paths(&self) -> Vec<String> {
        fn walk(obj: &Object, prefix: &str, out: &mut Vec<String>) {
            for p in &obj.properties {
                let path = if prefix.is_empty() {
                    p.name.clone()
                } else {
                    format!("{prefix}.{}", p.name)
                };
                visit(&p.schema, &path, out);
            }
        }
        fn visit(schema: &Schema, path: &str, out: &mut Vec<String>) {
            if schema.sensitive {
                out.push(path.to_string());
                return;
            }
            match &schema.kind {
                Kind::Object(o) => walk(o, path, out),
                Kind::Array { items, .. } => visit(items, &format!("{path}[]"), out),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.input, "", &mut out);
        out
    }
}

/// What a tool calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Upstream(Upstream),
    /// A handler inside the gateway (`whoami`, `audit_log`).
    Builtin(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub method: String,
    /// The path after the base path, split into literal and parameter segments.
    pub path: Vec<Segment>,
    /// The path as written in the manifest, e.g. `/classes/{class_id}`.
    pub path_template: String,
    /// Inputs sent as query parameters, in declaration order.
    pub query: Vec<String>,
    /// Inputs sent in the JSON body, in declaration order.
    pub body: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    Param(String),
}

/// An object schema: ordered properties. In inputs unknown fields are always rejected; in
/// results they are allowed (see [`crate::json_schema::output_schema`]), and an object with no
/// properties is any object (e.g. the audit log's recorded arguments).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    pub properties: Vec<Property>,
}

impl Object {
    pub fn get(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub required: bool,
    pub schema: Schema,
    /// Set for the inputs the generator adds to every write or paginated tool.
    pub added: Option<Added>,
}

/// Inputs the generator adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Used for safe retries; forwarded as the `Idempotency-Key` header, never in query or body.
    IdempotencyKey,
    /// Pagination, sent as query parameters.
    Cursor,
    Limit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub description: String,
    pub sensitive: bool,
    /// May be `null` as well (results only; inputs are never nullable).
    pub nullable: bool,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String {
        min_length: Option<u64>,
        max_length: Option<u64>,
        pattern: Option<String>,
        enum_values: Option<Vec<String>>,
        format: Option<Format>,
    },
    Integer {
        minimum: Option<i64>,
        maximum: Option<i64>,
    },
    Number {
        minimum: Option<f64>,
        maximum: Option<f64>,
    },
    Boolean,
    Array {
        items: Box<Schema>,
        min_items: Option<u64>,
        max_items: Option<u64>,
    },
    Object(Object),
}

impl Kind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::String { .. } => "string",
            Kind::Integer { .. } => "integer",
            Kind::Number { .. } => "number",
            Kind::Boolean => "boolean",
            Kind::Array { .. } => "array",
            Kind::Object(_) => "object",
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self, Kind::Array { .. } | Kind::Object(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DateTime,
    Date,
    Email,
    Uri,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::DateTime, Format::Date, Format::Email, Format::Uri];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::DateTime => "date-time",
            Format::Date => "date",
            Format::Email => "email",
            Format::Uri => "uri",
        }
    }
}

/// A documented call of the tool: a valid input and the upstream request it must produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub input: serde_json::Value,
    /// `None` for built-in tools.
    pub request: Option<serde_json::Value>,
}
