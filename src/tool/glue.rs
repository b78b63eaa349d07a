//! The hand-written support the generated catalog calls (imported there as `rt`).
//!
//! Generated code is data plus thin glue: the tool definitions, typed inputs, and one-line calls
//! into the helpers here. Keeping the helpers hand-written keeps the generated file short and
//! readable, and every behaviour in one place.

use cedar_policy::RestrictedExpression;

pub use crate::upstream::{Method, UpstreamRequest};
pub use serde_json::Value;

/// A Cedar value.
pub type Expr = RestrictedExpression;

/// Why validated arguments failed to decode into the typed input. After validation against the
/// published schema this cannot happen; it is still an error, never a panic.
pub type DecodeError = serde_json::Error;

/// Read or write, from the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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

/// Handlers the gateway answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Whoami,
    AuditLog,
}

/// What a tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One Management API call; `path` is the manifest's template, e.g. `/classes/{class_id}`.
    Upstream {
        method: &'static str,
        path: &'static str,
    },
    Builtin(Builtin),
}

/// A tier of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierDef {
    pub name: &'static str,
    pub title: &'static str,
}

/// A scope of the manifest, with the sentence the consent page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeDef {
    pub name: &'static str,
    pub description: &'static str,
}

/// One tool, as declared in the manifest.
#[derive(Debug, Clone, Copy)]
pub struct ToolDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// `None`: any valid connection may call it.
    pub scope: Option<&'static str>,
    /// The lowest tier allowed to call it.
    pub tier: &'static str,
    pub access: Access,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
    /// Reads the public cross-studio directory.
    pub public: bool,
    pub paginated: bool,
    /// The Cedar action id.
    pub action: &'static str,
    /// The JSON Schema of the arguments: published in `tools/list` and enforced.
    pub input_schema: &'static str,
    /// Dotted paths of `sensitive` inputs (`[]` marks array items), redacted in the audit log.
    pub sensitive: &'static [&'static str],
    pub target: Target,
    /// `{"input": …, "request": …}`: a documented call, checked by the tests.
    pub example: &'static str,
    /// Validated arguments → Cedar context, upstream request and idempotency key.
    pub decode: fn(Value) -> Result<Decoded, DecodeError>,
    /// The schema `schemars` derives from the typed input struct; a test checks it has exactly
    /// the published schema's fields.
    pub typed_schema: fn() -> schemars::Schema,
}

/// What one call's validated arguments turn into.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The `input` record of the Cedar context.
    pub context: Expr,
    /// `None` for built-in tools.
    pub upstream: Option<UpstreamRequest>,
    pub idempotency_key: Option<String>,
}

pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, DecodeError> {
    serde_json::from_value(v)
}

/// A JSON value for the upstream body.
pub fn json<T: serde::Serialize>(v: &T) -> Value {
    // Plain data (strings, numbers, vectors, generated structs) always serializes.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A path segment, percent-encoded so an id can never change the path's shape.
pub fn encode_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Everything but RFC 3986 unreserved characters is encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Scalars as they appear in a query string.
pub trait QueryValue {
    fn query_value(&self) -> String;
}

impl QueryValue for String {
    fn query_value(&self) -> String {
        self.clone()
    }
}

impl QueryValue for i64 {
    fn query_value(&self) -> String {
        self.to_string()
    }
}

impl QueryValue for f64 {
    fn query_value(&self) -> String {
        self.to_string()
    }
}

impl QueryValue for bool {
    fn query_value(&self) -> String {
        self.to_string()
    }
}

pub fn query_value<T: QueryValue>(v: &T) -> String {
    v.query_value()
}

// === Cedar values ===

pub fn cedar_string(v: &str) -> Expr {
    Expr::new_string(v.to_string())
}

pub fn cedar_long(v: i64) -> Expr {
    Expr::new_long(v)
}

pub fn cedar_bool(v: bool) -> Expr {
    Expr::new_bool(v)
}

pub fn cedar_set(items: impl Iterator<Item = Expr>) -> Expr {
    Expr::new_set(items)
}

/// A Cedar `datetime`. Cedar's parser is stricter than RFC 3339 (no `+01:00` offsets, exactly
/// three fraction digits), so date-times are normalised to UTC `YYYY-MM-DDThh:mm:ss.sssZ`;
/// dates (`YYYY-MM-DD`) pass as they are. A value that is neither is passed through and makes
/// the Cedar evaluation fail, which denies the call (fail closed).
pub fn cedar_datetime(v: &str) -> Expr {
    let normalised = match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        Err(_) => v.to_string(),
    };
    Expr::new_datetime(normalised)
}

/// A Cedar record. Generated field names are unique, so construction cannot fail; if it ever
/// did, an empty record makes the policy evaluation fail closed.
pub fn cedar_record(fields: Vec<(&'static str, Expr)>) -> Expr {
    Expr::new_record(fields.into_iter().map(|(k, v)| (k.to_string(), v)))
        .unwrap_or_else(|_| Expr::new_set(std::iter::empty()))
}
