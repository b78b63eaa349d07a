//! Argument validation: strict, complete, and compiled from the very JSON Schema a tool
//! publishes in `tools/list`, so what an assistant is shown is exactly what is enforced.
//!
//! [`Validator::compile`] accepts only the manifest's schema subset (and fails loudly on
//! anything else, which a test runs over the whole catalog). [`Validator::validate`] reports
//! **every** problem with its field path and the rule broken, and normalises integral floats
//! (`12.0` → `12`) so the typed input and Cedar see integers. A problem with a `sensitive` field
//! never quotes its value (the message is stored in the audit log and shown to the operator).

use std::fmt;

use regex::Regex;
use serde_json::{Map, Number, Value};

/// One broken rule, at a field path like `tags[2]` or `applies_to.kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.path, self.message)
        }
    }
}

/// A compiled schema node.
#[derive(Debug, Clone)]
pub struct Validator {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    String {
        min_length: Option<u64>,
        max_length: Option<u64>,
        pattern: Option<(String, Regex)>,
        enum_values: Option<Vec<String>>,
        format: Option<Format>,
        /// A `sensitive` field: problems do not quote the value.
        secret: bool,
    },
    Integer {
        minimum: Option<f64>,
        maximum: Option<f64>,
        secret: bool,
    },
    Number {
        minimum: Option<f64>,
        maximum: Option<f64>,
        secret: bool,
    },
    Boolean,
    Array {
        items: Box<Node>,
        min_items: Option<u64>,
        max_items: Option<u64>,
    },
    Object {
        properties: Vec<(String, Node)>,
        required: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Format {
    DateTime,
    Date,
    Email,
    Uri,
}

impl Validator {
    /// Compiles a published input schema. Errors name the keyword that is not supported.
    /// `sensitive` lists the dotted paths (`[]` for array items) of the fields whose values a
    /// problem must not quote; everything below such a path is sensitive too.
    pub fn compile(schema: &Value, sensitive: &[&str]) -> Result<Self, String> {
        let root = compile(schema, "", sensitive, false)?;
        if !matches!(root, Node::Object { .. }) {
            return Err("an input schema must be an object schema".into());
        }
        Ok(Self { root })
    }

    /// Checks `args` and returns every problem; on success `args` has been normalised.
    pub fn validate(&self, args: &mut Value) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !args.is_object() {
            problems.push(Problem {
                path: String::new(),
                message: format!("the arguments must be a JSON object, got {}", type_of(args)),
            });
            return problems;
        }
        check(&self.root, args, "", &mut problems);
        problems
    }
}

fn compile(schema: &Value, at: &str, sensitive: &[&str], secret: bool) -> Result<Node, String> {
    let secret = secret || sensitive.contains(&at);
    let obj = schema
        .as_object()
        .ok_or_else(|| format!("{at}: a schema must be an object"))?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: `type` is required"))?;
    let known: &[&str] = match ty {
        "string" => &["minLength", "maxLength", "pattern", "enum", "format"],
        "integer" | "number" => &["minimum", "maximum"],
        "boolean" => &[],
        "array" => &["items", "minItems", "maxItems"],
        "object" => &["properties", "required", "additionalProperties"],
        other => return Err(format!("{at}: unsupported type `{other}`")),
    };
    for key in obj.keys() {
        if key != "type" && key != "description" && !known.contains(&key.as_str()) {
            return Err(format!("{at}: unsupported keyword `{key}` for type `{ty}`"));
        }
    }
    let uint = |k: &str| obj.get(k).and_then(Value::as_u64);
    let float = |k: &str| obj.get(k).and_then(Value::as_f64);
    Ok(match ty {
        "string" => Node::String {
            min_length: uint("minLength"),
            max_length: uint("maxLength"),
            pattern: match obj.get("pattern").and_then(Value::as_str) {
                Some(p) => Some((
                    p.to_string(),
                    Regex::new(p).map_err(|e| format!("{at}: bad pattern: {e}"))?,
                )),
                None => None,
            },
            enum_values: obj.get("enum").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            }),
            format: match obj.get("format").and_then(Value::as_str) {
                None => None,
                Some("date-time") => Some(Format::DateTime),
                Some("date") => Some(Format::Date),
                Some("email") => Some(Format::Email),
                Some("uri") => Some(Format::Uri),
                Some(f) => return Err(format!("{at}: unsupported format `{f}`")),
            },
            secret,
        },
        "integer" => Node::Integer {
            minimum: float("minimum"),
            maximum: float("maximum"),
            secret,
        },
        "number" => Node::Number {
            minimum: float("minimum"),
            maximum: float("maximum"),
            secret,
        },
        "boolean" => Node::Boolean,
        "array" => Node::Array {
            items: Box::new(compile(
                obj.get("items")
                    .ok_or_else(|| format!("{at}: an array needs `items`"))?,
                &format!("{at}[]"),
                sensitive,
                secret,
            )?),
            min_items: uint("minItems"),
            max_items: uint("maxItems"),
        },
        _ => {
            if obj.get("additionalProperties") != Some(&Value::Bool(false)) {
                return Err(format!(
                    "{at}: objects must set additionalProperties: false"
                ));
            }
            let mut properties = Vec::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (name, s) in props {
                    properties.push((
                        name.clone(),
                        compile(s, &join(at, name), sensitive, secret)?,
                    ));
                }
            }
            let required = obj
                .get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            Node::Object {
                properties,
                required,
            }
        }
    })
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(expected: &str, got: &Value) -> String {
    if got.is_null() {
        format!("must be {expected}, got null (leave the field out instead of sending null)")
    } else {
        format!("must be {expected}, got {}", type_of(got))
    }
}

/// `, got <value>` to end a problem, or nothing for a `sensitive` field.
fn got(secret: bool, value: impl fmt::Display) -> String {
    if secret {
        String::new()
    } else {
        format!(", got {value}")
    }
}

fn check(node: &Node, v: &mut Value, at: &str, out: &mut Vec<Problem>) {
    let mut problem = |message: String| {
        out.push(Problem {
            path: at.to_string(),
            message,
        });
    };
    match node {
        Node::String {
            min_length,
            max_length,
            pattern,
            enum_values,
            format,
            secret,
        } => {
            let Some(s) = v.as_str() else {
                return problem(wrong_type("a string", v));
            };
            let len = s.chars().count() as u64;
            if let Some(min) = min_length
                && len < *min
            {
                problem(if *min == 1 {
                    "must not be empty".into()
                } else {
                    format!("must be at least {min} characters long, got {len}")
                });
            }
            if let Some(max) = max_length
                && len > *max
            {
                problem(format!("must be at most {max} characters long, got {len}"));
            }
            if let Some(values) = enum_values
                && !values.iter().any(|x| x == s)
            {
                problem(format!(
                    "must be one of {}{}",
                    values
                        .iter()
                        .map(|x| format!("`{x}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    got(*secret, format_args!("{s:?}"))
                ));
            }
            if let Some((src, re)) = pattern
                && !re.is_match(s)
            {
                problem(format!(
                    "must match the pattern {src}{}",
                    got(*secret, format_args!("{s:?}"))
                ));
            }
            if let Some(f) = format
                && let Err(msg) = check_format(*f, s)
            {
                // The format rules quote the value as `, got "<value>"`.
                problem(if *secret {
                    msg.replace(&format!(", got {s:?}"), "")
                } else {
                    msg
                });
            }
        }
        Node::Integer {
            minimum,
            maximum,
            secret,
        } => {
            let Some(n) = v.as_number() else {
                return problem(wrong_type("a whole number", v));
            };
            let f = n.as_f64().unwrap_or(f64::NAN);
            if !(n.is_i64() || n.is_u64()) {
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    // JSON Schema counts 12.0 as an integer; hand the rest of flowgate an integer.
                    *v = Value::Number(Number::from(f as i64));
                } else {
                    return problem(format!("must be a whole number{}", got(*secret, n)));
                }
            } else if n.as_i64().is_none() {
                return problem(format!("is too large{}", got(*secret, n)));
            }
            bounds(f, *minimum, *maximum, *secret, &mut problem);
        }
        Node::Number {
            minimum,
            maximum,
            secret,
        } => {
            let Some(f) = v.as_f64() else {
                return problem(wrong_type("a number", v));
            };
            bounds(f, *minimum, *maximum, *secret, &mut problem);
        }
        Node::Boolean => {
            if !v.is_boolean() {
                problem(wrong_type("true or false", v));
            }
        }
        Node::Array {
            items,
            min_items,
            max_items,
        } => {
            let Some(arr) = v.as_array_mut() else {
                return problem(wrong_type("an array", v));
            };
            let n = arr.len() as u64;
            if let Some(min) = min_items
                && n < *min
            {
                problem(format!(
                    "must have at least {min} item{}, got {n}",
                    if *min == 1 { "" } else { "s" }
                ));
            }
            if let Some(max) = max_items
                && n > *max
            {
                problem(format!("must have at most {max} items, got {n}"));
            }
            for (i, item) in arr.iter_mut().enumerate() {
                check(items, item, &format!("{at}[{i}]"), out);
            }
        }
        Node::Object {
            properties,
            required,
        } => {
            let Some(map) = v.as_object_mut() else {
                return problem(wrong_type("an object", v));
            };
            check_object(properties, required, map, at, out);
        }
    }
}

fn check_object(
    properties: &[(String, Node)],
    required: &[String],
    map: &mut Map<String, Value>,
    at: &str,
    out: &mut Vec<Problem>,
) {
    for r in required {
        if !map.contains_key(r) {
            out.push(Problem {
                path: join(at, r),
                message: "is required".into(),
            });
        }
    }
    let mut unknown: Vec<String> = map
        .keys()
        .filter(|k| !properties.iter().any(|(n, _)| n == *k))
        .cloned()
        .collect();
    unknown.sort();
    for k in unknown {
        let known: Vec<String> = properties.iter().map(|(n, _)| format!("`{n}`")).collect();
        out.push(Problem {
            path: join(at, &k),
            message: if known.is_empty() {
                "is not an accepted field (this takes no arguments)".into()
            } else {
                format!("is not an accepted field (accepted: {})", known.join(", "))
            },
        });
    }
    for (name, node) in properties {
        if let Some(value) = map.get_mut(name) {
            check(node, value, &join(at, name), out);
        }
    }
}

fn bounds(
    f: f64,
    min: Option<f64>,
    max: Option<f64>,
    secret: bool,
    problem: &mut impl FnMut(String),
) {
    if let Some(min) = min
        && f < min
    {
        problem(format!("must be at least {min}{}", got(secret, f)));
    }
    if let Some(max) = max
        && f > max
    {
        problem(format!("must be at most {max}{}", got(secret, f)));
    }
}

/// The largest UTC offset in use anywhere (UTC+14:00, Kiribati; UTC-12:00 is the smallest).
const MAX_OFFSET_SECONDS: i32 = 14 * 3600;

/// An RFC 3339 date-time that Cedar and the Management API both take: RFC 3339 also allows a
/// leap second (`23:59:60`) and offsets up to ±23:59, which either would refuse or misread, so
/// those get a field error that says what is accepted.
fn check_date_time(s: &str) -> Result<(), String> {
    use chrono::Timelike;
    let wrong = || {
        format!(
            "must be an RFC 3339 date-time with a UTC offset, like 2026-12-01T19:00:00-05:00, got {s:?}"
        )
    };
    // chrono also takes a space between date and time; RFC 3339 and JSON Schema want `T`.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(wrong());
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| wrong())?;
    if t.nanosecond() >= 1_000_000_000 {
        return Err(format!(
            "must be a time between 00:00:00 and 23:59:59 (a leap second :60 is not accepted), got {s:?}"
        ));
    }
    if t.offset().local_minus_utc().abs() > MAX_OFFSET_SECONDS {
        return Err(format!(
            "must have a UTC offset between -14:00 and +14:00, like 2026-12-01T19:00:00-05:00, got {s:?}"
        ));
    }
    Ok(())
}

fn check_format(f: Format, s: &str) -> Result<(), String> {
    match f {
        Format::DateTime => check_date_time(s),
        Format::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            // Exactly `YYYY-MM-DD`: chrono also takes signs (`-001-01-01`) and short fields.
            .filter(|_| {
                s.len() == 10
                    && s.bytes().enumerate().all(|(i, b)| match i {
                        4 | 7 => b == b'-',
                        _ => b.is_ascii_digit(),
                    })
            })
            .map(|_| ())
            .ok_or_else(|| format!("must be a date like 2026-12-01, got {s:?}")),
        Format::Email => {
            if is_email(s) {
                Ok(())
            } else {
                Err(format!("must be an email address, got {s:?}"))
            }
        }
        Format::Uri => {
            if is_web_uri(s) {
                Ok(())
            } else {
                Err(format!(
                    "must be an absolute URI like https://example.com/page, got {s:?}"
                ))
            }
        }
    }
}

// === formats, by their RFCs (the differential test in tests/it/fuzz.rs holds them to the
// `jsonschema` crate; where flowgate is stricter on purpose, that test says why) ===

/// `local@domain`: an RFC 5321 dot-atom local part (no quoted strings) of at most 64 ASCII
/// characters, and a host name with at least two labels (no address literals): the addresses
/// mail is delivered to in practice.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    local.len() <= 64
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(atext))
        && domain.contains('.')
        && is_host_name(domain)
}

/// An RFC 1123 host name: at most 253 characters, labels of 1 to 63 letters, digits and inner
/// hyphens; `--` in the third and fourth place only in an IDNA `xn--` label.
fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            (1..=63).contains(&b.len())
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
                && (b.get(2..4) != Some(b"--") || label.to_ascii_lowercase().starts_with("xn--"))
        })
}

/// An absolute URI with a host (`scheme://host[:port][/path][?query][#fragment]`) by RFC 3986's
/// grammar: only its characters, percent-encodings of two hex digits, IPv6 literals in brackets.
fn is_web_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let mut sc = scheme.bytes();
    if !sc.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !sc.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return false;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) if uri_chars(userinfo, b":") => host_port,
        Some(_) => return false,
        None => authority,
    };
    let (host_ok, port) = match host_port.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((ip, port)) => (ip.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (host, port) = host_port.split_at(host_port.find(':').unwrap_or(host_port.len()));
            (!host.is_empty() && uri_chars(host, b""), port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    let (path_query, fragment) = tail.split_once('#').unwrap_or((tail, ""));
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    host_ok
        && port_ok
        && uri_chars(path, b":@/")
        && uri_chars(query, b":@/?")
        && uri_chars(fragment, b":@/?")
}

/// Whether `s` holds only RFC 3986 unreserved and sub-delim characters, the `extra` ones, and
/// percent-encodings (`%` and two hex digits).
fn uri_chars(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&c) || extra.contains(&c)
        {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{Format, check_format};

    #[test]
    fn date_times_cedar_and_the_upstream_cannot_take_are_refused_clearly() {
        for ok in [
            "2026-12-01T19:00:00-05:00",
            "2026-12-01T23:59:59.999Z",
            "2026-12-01T19:00:00+14:00",
            "2026-12-01T19:00:00-14:00",
        ] {
            assert_eq!(check_format(Format::DateTime, ok), Ok(()), "{ok}");
        }
        let leap = check_format(Format::DateTime, "2026-06-30T23:59:60Z").unwrap_err();
        assert!(
            leap.starts_with("must be a time between 00:00:00 and 23:59:59"),
            "{leap}"
        );
        for offset in ["-23:59", "+14:01", "-14:30", "+23:00"] {
            let at = format!("2026-12-01T19:00:00{offset}");
            let e = check_format(Format::DateTime, &at).unwrap_err();
            assert!(
                e.starts_with("must have a UTC offset between -14:00 and +14:00"),
                "{e}"
            );
        }
        let e = check_format(Format::DateTime, "2026-12-01 19:00").unwrap_err();
        assert!(e.starts_with("must be an RFC 3339 date-time"), "{e}");
    }
}
