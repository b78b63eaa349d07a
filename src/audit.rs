//! The audit log: one durable record per `tools/call` and per rejected credential, appended to
//! the gateway's store **before** the response is sent, with `sensitive` arguments redacted.
//!
//! What is stored stays honest and small whatever a caller sends: [`redact`] replaces the
//! `sensitive` arguments, [`scrub`] removes their values from any message that quotes them, and
//! [`Audit::append`] caps every stored text ([`MAX_ARGUMENTS_BYTES`], [`MAX_MESSAGE_BYTES`],
//! [`MAX_NAME_BYTES`]) so a huge refused call costs a few KB of log, not its body.

use serde::Serialize;
use serde_json::Value;

use crate::store::audit::{AuditQuery, AuditRow, DayCount};
use crate::store::{Store, StoreError, Timestamp};

/// How a call ended, as recorded and as filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
    Invalid,
    RateLimited,
    UpstreamError,
    Unauthenticated,
    Error,
}

impl Outcome {
    /// Every outcome, in the order pages list them.
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::Denied,
        Outcome::Invalid,
        Outcome::RateLimited,
        Outcome::UpstreamError,
        Outcome::Unauthenticated,
        Outcome::Error,
    ];

    /// The outcome stored as `text`.
    pub fn parse(text: &str) -> Option<Outcome> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
            Outcome::RateLimited => "rate_limited",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Error => "error",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub seq: i64,
    pub at: Timestamp,
    pub request_id: String,
    pub studio: Option<String>,
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub principal_name: Option<String>,
    pub tool: Option<String>,
    /// The arguments, `sensitive` fields replaced by `"[redacted]"`.
    pub arguments: Option<Value>,
    /// `allow` or `deny`, when a decision was made.
    pub decision: Option<String>,
    /// The deciding policy ids.
    pub policies: Vec<String>,
    pub outcome: String,
    pub message: Option<String>,
    pub upstream_status: Option<i64>,
    pub duration_ms: i64,
    /// The client's address (no port), for rejected credentials and OAuth security events
    /// (`oauth.*` tools, written by `crate::oauth`).
    pub client_addr: Option<String>,
}

/// Filters for reading the log; all optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub studio: Option<String>,
    pub principal: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    /// Inclusive.
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
    /// Records with a `seq` below this (pagination, newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

impl Filter {
    fn as_query(&self) -> AuditQuery<'_> {
        AuditQuery {
            studio: self.studio.as_deref(),
            principal: self.principal.as_deref(),
            tool: self.tool.as_deref(),
            outcome: self.outcome.as_deref(),
            since: self.since,
            until: self.until,
            before_seq: self.before_seq,
            limit: self.limit,
        }
    }
}

/// The audit log in the gateway's store.
///
/// Appends go through the store's group-commit writer ([`crate::store::writer`]): a caller gets
/// its answer only once its record is committed, but under load one commit serves many calls.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
    /// False from a failed append until the next append succeeds.
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Is `c` a character that changes how what follows it is shown (on a terminal, on the consent
/// page): a C0 or C1 control (escape, carriage return, line feed, DEL…) or a bidirectional
/// override, embedding, isolate or mark? Text a caller chose is checked or escaped with this.
pub fn disguises(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The placeholder for redacted values.
pub const REDACTED: &str = "[redacted]";

/// Largest stored `arguments` (as JSON text). Larger ones are stored as
/// `{"[truncated]": true, "bytes": N, "preview": "<the first KiB of the JSON>"}`, still JSON.
pub const MAX_ARGUMENTS_BYTES: usize = 4096;
/// Bytes of the arguments' JSON kept in the preview of truncated arguments.
const PREVIEW_BYTES: usize = 1024;
/// Largest stored message; longer ones are cut on a character boundary and end with [`TRUNCATED`].
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Largest stored studio, principal or tool name (a caller can send any tool name).
pub const MAX_NAME_BYTES: usize = 256;
/// Ends a text that was cut to fit its cap.
pub const TRUNCATED: &str = "… [truncated]";
/// Sensitive values shorter than this (in characters) are not searched for in messages: a value
/// of one to three characters would redact unrelated words and numbers, and says little on its
/// own. Such a value is still redacted from the stored arguments.
pub const MIN_SCRUBBED_CHARS: usize = 4;

/// The arguments as stored: their JSON text, or a truncated stand-in (still JSON) when it is
/// longer than [`MAX_ARGUMENTS_BYTES`].
pub fn stored_arguments(args: &Value) -> String {
    let text = args.to_string();
    if text.len() <= MAX_ARGUMENTS_BYTES {
        return text;
    }
    serde_json::json!({
        "[truncated]": true,
        "bytes": text.len(),
        "preview": cut(&text, PREVIEW_BYTES),
    })
    .to_string()
}

/// `text` cut to at most `max` bytes on a character boundary, ending with [`TRUNCATED`] when cut.
pub fn capped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!(
        "{}{TRUNCATED}",
        cut(text, max.saturating_sub(TRUNCATED.len()))
    )
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Every string value at the `sensitive` paths of `args` (dotted, `[]` for array items; strings
/// nested below a sensitive object or array included): what [`scrub`] removes from messages.
pub fn sensitive_values(args: &Value, paths: &[&str]) -> Vec<String> {
    fn collect(v: &Value, parts: &[&str], out: &mut Vec<String>) {
        let Some((first, rest)) = parts.split_first() else {
            return all_strings(v, out);
        };
        let (name, each) = match first.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (*first, false),
        };
        let Some(child) = v.as_object().and_then(|o| o.get(name)) else {
            return;
        };
        match child.as_array() {
            Some(items) if each => items.iter().for_each(|i| collect(i, rest, out)),
            _ if each => all_strings(child, out),
            _ => collect(child, rest, out),
        }
    }
    fn all_strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|i| all_strings(i, out)),
            Value::Object(o) => o.values().for_each(|i| all_strings(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for path in paths {
        let parts: Vec<&str> = path.split('.').collect();
        collect(args, &parts, &mut out);
    }
    out
}

/// `message` with every occurrence of the `secrets` replaced by [`REDACTED`]: each value as sent,
/// trimmed, and in its JSON- and Rust-escaped forms (as error messages quote it), matched without
/// regard to ASCII case (an API may answer with the e-mail address it lower-cased). Values shorter
/// than [`MIN_SCRUBBED_CHARS`] are left alone.
pub fn scrub(message: &str, secrets: &[String]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets {
        for value in [secret.as_str(), secret.trim()] {
            let json = Value::from(value).to_string();
            let debug = format!("{value:?}");
            for form in [value, unquote(&json), unquote(&debug)] {
                if form.chars().count() >= MIN_SCRUBBED_CHARS && !forms.iter().any(|f| f == form) {
                    forms.push(form.to_string());
                }
            }
        }
    }
    // Longest first, so a value that contains another is redacted whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = message.to_string();
    for form in &forms {
        out = replace_ascii_case_insensitive(&out, form, REDACTED);
    }
    out
}

/// A quoted string's contents.
fn unquote(quoted: &str) -> &str {
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(quoted)
}

/// Replaces every match of `needle` (ASCII letters in any case) in `haystack`. Lower-casing ASCII
/// keeps every byte offset, and a UTF-8 match always starts and ends on character boundaries.
fn replace_ascii_case_insensitive(haystack: &str, needle: &str, with: &str) -> String {
    let lower = haystack.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(haystack.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(&needle) {
        out.push_str(&haystack[at..at + found]);
        out.push_str(with);
        at += found + needle.len();
    }
    out.push_str(&haystack[at..]);
    out
}

/// Replaces the values at `paths` (dotted, `[]` for array items) with [`REDACTED`].
pub fn redact(args: &Value, paths: &[&str]) -> Value {
    let mut out = args.clone();
    for path in paths {
        let parts: Vec<&str> = path.split('.').collect();
        redact_at(&mut out, &parts);
    }
    out
}

fn redact_at(v: &mut Value, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else {
        *v = Value::String(REDACTED.into());
        return;
    };
    let (name, each) = match first.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*first, false),
    };
    let Some(child) = v.as_object_mut().and_then(|o| o.get_mut(name)) else {
        return;
    };
    if each {
        if let Some(items) = child.as_array_mut() {
            for item in items {
                redact_at(item, rest);
            }
        } else {
            *child = Value::String(REDACTED.into());
        }
    } else {
        redact_at(child, rest);
    }
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            healthy: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Whether the last append succeeded (calls are refused while it did not).
    pub fn healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends one record and returns its sequence number. Awaited before the response goes
    /// out, so every answer a client received has its committed record. Every text is stored
    /// within its cap (the record itself is not changed).
    pub async fn append(&self, r: &Record) -> Result<i64, StoreError> {
        let text = |t: &Option<String>| t.as_deref().map(|t| capped(t, MAX_NAME_BYTES));
        let row = AuditRow {
            seq: 0,
            at: r.at,
            request_id: capped(&r.request_id, MAX_NAME_BYTES),
            studio: text(&r.studio),
            principal_kind: text(&r.principal_kind),
            principal_id: text(&r.principal_id),
            principal_name: text(&r.principal_name),
            tool: text(&r.tool),
            arguments: r.arguments.as_ref().map(stored_arguments),
            decision: text(&r.decision),
            policies: Some(serde_json::to_string(&r.policies).unwrap_or_else(|_| "[]".into())),
            outcome: r.outcome.clone(),
            message: r.message.as_deref().map(|m| capped(m, MAX_MESSAGE_BYTES)),
            upstream_status: r.upstream_status,
            duration_ms: r.duration_ms,
            client_addr: text(&r.client_addr),
        };
        let written = self.store.append_audit(row).await;
        self.healthy
            .store(written.is_ok(), std::sync::atomic::Ordering::Relaxed);
        written
    }

    /// Deletes records older than `days` days (0 keeps everything); returns how many.
    pub async fn prune(&self, days: u64) -> Result<u64, StoreError> {
        if days == 0 {
            return Ok(0);
        }
        let age = chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
        self.store.prune_audit(Timestamp::now() - age).await
    }

    /// Records matching the filter (its `limit` ignored) per UTC day and outcome, by day then
    /// outcome; at most `groups` of them.
    pub async fn day_counts(&self, f: &Filter, groups: i64) -> Result<Vec<DayCount>, StoreError> {
        self.store.audit_day_counts(&f.as_query(), groups).await
    }

    /// How many records match the filter, counting no further than `upto`, and the newest
    /// one's `seq` (see [`Store::audit_count_upto`]).
    pub async fn count_upto(
        &self,
        f: &Filter,
        upto: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        self.store.audit_count_upto(&f.as_query(), upto).await
    }

    /// The tools in a studio's records, by name (at most `max`).
    pub async fn tools(&self, studio: &str, max: i64) -> Result<Vec<String>, StoreError> {
        self.store.audit_tools(studio, max).await
    }

    /// Records matching the filter, newest first.
    pub async fn query(&self, f: &Filter) -> Result<Vec<Record>, StoreError> {
        let rows = self.store.audit_rows(&f.as_query()).await?;
        Ok(rows
            .into_iter()
            .map(|row| Record {
                seq: row.seq,
                at: row.at,
                request_id: row.request_id,
                studio: row.studio,
                principal_kind: row.principal_kind,
                principal_id: row.principal_id,
                principal_name: row.principal_name,
                tool: row.tool,
                arguments: row.arguments.and_then(|a| serde_json::from_str(&a).ok()),
                decision: row.decision,
                policies: row
                    .policies
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
                outcome: row.outcome,
                message: row.message,
                upstream_status: row.upstream_status,
                duration_ms: row.duration_ms,
                client_addr: row.client_addr,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_every_form_of_a_sensitive_value() {
        let secrets = vec![
            "Ana.Souza@Example.com".to_string(),
            "say \"hi\"\n".to_string(),
            "abc".to_string(),
        ];
        assert_eq!(
            scrub(
                "a member with e-mail ana.souza@example.com already exists",
                &secrets
            ),
            "a member with e-mail [redacted] already exists"
        );
        // As JSON and Rust quote it; a value under four characters is left alone.
        assert_eq!(
            scrub(r#"got "say \"hi\"\n" and say \"hi\" near abc"#, &secrets),
            r#"got "[redacted]" and [redacted] near abc"#
        );
        assert_eq!(scrub("nothing to hide", &[]), "nothing to hide");
    }

    #[test]
    fn sensitive_values_are_found_at_their_paths() {
        let args = serde_json::json!({
            "email": "a@b.example", "name": "Ana",
            "contacts": [{"phone": "+1 503"}, {"phone": "+1 504"}],
            "note": {"text": "private", "n": 3},
        });
        assert_eq!(
            sensitive_values(
                &args,
                &["email", "contacts[].phone", "note", "missing.path"]
            ),
            ["a@b.example", "+1 503", "+1 504", "private"]
        );
    }

    #[test]
    fn stored_texts_are_capped_on_character_boundaries_and_stay_json() {
        let long = "é".repeat(3000);
        let capped = capped(&long, MAX_MESSAGE_BYTES);
        assert!(capped.len() <= MAX_MESSAGE_BYTES);
        assert!(capped.ends_with(TRUNCATED));
        assert_eq!(super::capped("x", 10), "x");
        let args = serde_json::json!({ "description": long });
        let stored: Value = serde_json::from_str(&stored_arguments(&args)).unwrap();
        assert_eq!(stored["[truncated]"], true);
        assert_eq!(stored["bytes"], args.to_string().len());
        assert!(stored.to_string().len() < MAX_ARGUMENTS_BYTES);
        let small = serde_json::json!({ "name": "Ana" });
        assert_eq!(stored_arguments(&small), small.to_string());
    }
}
