//! The upstream stage: one Management API call per tool call.
//!
//! [`UpstreamRequest`] is the description the generated code builds from validated input:
//! method, percent-encoded path (base path included), query and JSON body.

use serde_json::{Map, Value};

/// The HTTP methods the manifest allows.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
        }
    }

    /// Whether requests with this method carry a JSON body.
    pub fn has_body(self) -> bool {
        matches!(self, Method::POST | Method::PUT | Method::PATCH)
    }
}

/// One upstream call, described before it is made.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub method: Method,
    /// Base path included, every parameter percent-encoded.
    pub path: String,
    /// Query parameters in manifest order.
    pub query: Vec<(&'static str, String)>,
    /// The JSON body; an empty object for body methods with no body inputs, `None` otherwise.
    pub body: Option<Map<String, Value>>,
}

impl UpstreamRequest {
    pub fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            body: method.has_body().then(Map::new),
        }
    }

    pub fn query(&mut self, name: &'static str, value: String) {
        self.query.push((name, value));
    }

    pub fn body(&mut self, name: &'static str, value: Value) {
        self.body
            .get_or_insert_with(Map::new)
            .insert(name.to_string(), value);
    }
}
