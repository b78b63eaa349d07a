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

/// Why validated arguments failed to decode into the typed input or the upstream request.
/// After validation against the published schema (and the path-segment check) this cannot
/// happen; it is still an error, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the arguments do not fit the typed input: {0}")]
    Json(#[from] serde_json::Error),
    /// A path parameter that would change the upstream path's shape (`..`, `.`, empty).
    #[error("`{field}`: {message}")]
    Segment {
        field: &'static str,
        message: &'static str,
    },
    /// The built path does not survive URL normalisation unchanged.
    #[error("the upstream path {path:?} would be normalised to {normalised:?}")]
    PathShape { path: String, normalised: String },
}

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

/// The typed input of a built-in handler, decoded by the generated code like any tool's.
#[derive(Debug, Clone, PartialEq)]
pub enum BuiltinInput {
    Whoami(super::catalog::WhoamiInput),
    AuditLog(super::catalog::ListAuditLogInput),
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
    /// The JSON Schema of a successful call's `structuredContent`: published in `tools/list` as
    /// `outputSchema`, checked against the reference API's real answers by the tests.
    pub output_schema: &'static str,
    /// Dotted paths of `sensitive` inputs (`[]` marks array items), redacted in the audit log.
    pub sensitive: &'static [&'static str],
    /// The inputs that fill upstream path segments (`{param}`): each must be one segment.
    pub path_params: &'static [&'static str],
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
    /// The typed input serialised back to JSON (field order fixed, numbers in their typed form,
    /// the idempotency key left out), when there is an idempotency key: what a retry is compared
    /// by. `60`, `60.0` and `6e1` are the same call.
    pub canonical: Option<Value>,
    /// A built-in tool's typed input (`None` for upstream tools).
    pub builtin: Option<BuiltinInput>,
}

pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, DecodeError> {
    Ok(serde_json::from_value(v)?)
}

/// The canonical form of a typed input for idempotency: its serialisation without the key.
pub fn canonical<T: serde::Serialize>(input: &T) -> Value {
    let mut v = json(input);
    if let Some(o) = v.as_object_mut() {
        o.remove("idempotency_key");
    }
    v
}

/// A JSON value for the upstream body.
pub fn json<T: serde::Serialize>(v: &T) -> Value {
    // Plain data (strings, numbers, vectors, generated structs) always serializes.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A path segment, percent-encoded so an id can never change the path's shape.
///
/// Percent-encoding alone is not enough: URL parsers (the WHATWG parser reqwest uses, and many
/// servers) treat `.`, `..`, `%2e` and `.%2E` as dot segments and remove them, so `..` in an id
/// would turn `/schedule/{id}/bookings` into `/bookings`. Validation refuses such values
/// ([`segment_problem`]); this refuses them again, as an error rather than a panic, so the
/// request builder can never produce another path even if validation were bypassed.
pub fn encode_segment(field: &'static str, s: &str) -> Result<String, DecodeError> {
    if let Some(message) = segment_problem(s) {
        return Err(DecodeError::Segment { field, message });
    }
    Ok(percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
}

/// Why a value cannot be one path segment: empty, `.` or `..`, or a value that percent-decodes
/// (once or repeatedly, as layered servers may) to one of those. `None`: it can.
pub fn segment_problem(s: &str) -> Option<&'static str> {
    const MESSAGE: &str =
        "must be an id, not empty, `.` or `..` (nor an encoding of them like %2e%2e)";
    let mut current = std::borrow::Cow::Borrowed(s);
    // Each decoding that changes the value makes it shorter, so this ends; the bound is a guard.
    for _ in 0..=s.len() {
        if matches!(current.as_ref(), "" | "." | "..") {
            return Some(MESSAGE);
        }
        let decoded = percent_encoding::percent_decode_str(&current).decode_utf8_lossy();
        if decoded == current {
            return None;
        }
        current = std::borrow::Cow::Owned(decoded.into_owned());
    }
    None
}

/// Checks that a built path is what a URL parser keeps: no segment normalised away.
pub fn checked_path(path: String) -> Result<String, DecodeError> {
    let normalised = reqwest::Url::parse("http://upstream.invalid")
        .and_then(|base| base.join(&path))
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    if normalised == path {
        Ok(path)
    } else {
        Err(DecodeError::PathShape { path, normalised })
    }
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

#[cfg(test)]
mod tests {
    use super::{checked_path, encode_segment, segment_problem};

    #[test]
    fn dot_segments_and_their_encodings_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2e",
            ".%2E",
            "%2E.",
            "%252e%252e",
            "%25252E.",
        ] {
            assert!(segment_problem(bad).is_some(), "{bad:?}");
            assert!(encode_segment("id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn other_ids_are_percent_encoded_as_one_segment() {
        for (id, encoded) in [
            ("cls_1", "cls_1"),
            ("..a", "..a"),
            ("a/../b", "a%2F..%2Fb"),
            ("%2f", "%252f"),
            ("a b", "a%20b"),
            ("...", "..."),
        ] {
            assert_eq!(segment_problem(id), None, "{id:?}");
            assert_eq!(encode_segment("id", id).unwrap(), encoded);
            let path = format!("/v1/classes/{encoded}/sessions");
            assert_eq!(checked_path(path.clone()).unwrap(), path);
        }
    }

    #[test]
    fn a_path_a_url_parser_would_reshape_is_refused() {
        for path in ["/v1/schedule/../bookings", "/v1/x/%2e%2e/y", "/v1/x/./y"] {
            assert!(checked_path(path.to_string()).is_err(), "{path}");
        }
    }
}
