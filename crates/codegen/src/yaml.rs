//! YAML reading shared by the manifest, the gateway's config file and the policy tests.
//!
//! Contract: [`from_str`] never panics, whatever the text (the parser is pure Rust with
//! `forbid(unsafe_code)` and bounded alias expansion); a problem comes back as a [`YamlError`]
//! with the path of the field (`tiers[0].title`, when known) and one line a person reads, ending
//! "at line N, column M": no source snippet (the caller names the file) and no advice meant for
//! the programmer of the parser. Duplicate keys are refused.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_saphyr::{Error, MessageFormatter, SnippetMode, UserMessageFormatter};

/// Why a YAML text could not be read into the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The field where it went wrong (`tools[2].input`); `None` at the top or when unknown.
    pub path: Option<String>,
    /// One line, e.g. "unknown field `titel`, expected one of `name`, `title` at line 3, column 5".
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "field `{path}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for YamlError {}

/// Parses one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let mut path = None;
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = field_path(e.path());
            e.into_inner()
        })
    })
    .map_err(|e| YamlError {
        path,
        message: message(&e),
    })
}

/// The field path serde_path_to_error tracked, without its placeholders for unknown keys.
pub fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    let path = path.to_string();
    let path = path.trim_end_matches(".?").trim_end_matches('?');
    (path != "." && !path.is_empty()).then(|| path.to_string())
}

fn message(e: &Error) -> String {
    let text = e.render_with_options(serde_saphyr::render_options! {
        formatter: &Messages,
        snippets: SnippetMode::Off,
    });
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parser's wording for people, with serde's usual backticks around expected field names
/// (the same words as the errors of fields checked after parsing).
struct Messages;

impl MessageFormatter for Messages {
    fn format_message<'a>(&self, err: &'a Error) -> Cow<'a, str> {
        match err {
            Error::SerdeUnknownField {
                field, expected, ..
            } => {
                let expected: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
                if expected.is_empty() {
                    Cow::Owned(format!("unknown field `{field}`, there are no fields"))
                } else {
                    Cow::Owned(format!(
                        "unknown field `{field}`, expected one of {}",
                        expected.join(", ")
                    ))
                }
            }
            Error::InvalidScalar { ty, .. } => Cow::Borrowed(match *ty {
                "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
                    "expected a whole number, 0 or more"
                }
                "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "expected a whole number",
                "f32" | "f64" | "floating point" => "expected a number",
                "boolean" => "expected true or false",
                _ => return UserMessageFormatter.format_message(err),
            }),
            Error::Unexpected {
                expected: "sequence start",
                ..
            } => Cow::Borrowed("expected a list"),
            Error::Unexpected {
                expected: "mapping start",
                ..
            } => Cow::Borrowed("expected a mapping (`key: value` lines)"),
            other => UserMessageFormatter.format_message(other),
        }
    }
}
