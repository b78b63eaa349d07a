//! The audit log: one durable record per `tools/call` and per rejected credential, appended to
//! the gateway's store **before** the response is sent, with `sensitive` arguments redacted.
//!
//! What is stored stays honest and small whatever a caller sends: [`redact`] replaces the
//! `sensitive` arguments, [`scrub`] removes their values from any message that quotes them, and
//! [`Audit::append`] caps every stored text ([`MAX_ARGUMENTS_BYTES`], [`MAX_MESSAGE_BYTES`],
//! [`MAX_NAME_BYTES`]) so a huge refused call costs a few KB of log, not its body.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::store::writer::{Bind, Write};
use crate::store::{Store, StoreError};

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
    pub at: String,
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
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// Records with a `seq` below this (pagination, newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
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

/// The insert of one record, for the writer to batch.
const INSERT: &str = "INSERT INTO audit_log (at, request_id, studio, principal_kind, principal_id,
    principal_name, tool, arguments, decision, policies, outcome, message, upstream_status,
    duration_ms, client_addr) VALUES ";

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
        let text = |t: &Option<String>| Bind::Text(t.as_deref().map(|t| capped(t, MAX_NAME_BYTES)));
        let row = vec![
            Bind::Text(Some(r.at.clone())),
            text(&Some(r.request_id.clone())),
            text(&r.studio),
            text(&r.principal_kind),
            text(&r.principal_id),
            text(&r.principal_name),
            text(&r.tool),
            Bind::Text(r.arguments.as_ref().map(stored_arguments)),
            text(&r.decision),
            Bind::Text(Some(
                serde_json::to_string(&r.policies).unwrap_or_else(|_| "[]".into()),
            )),
            Bind::Text(Some(r.outcome.clone())),
            Bind::Text(r.message.as_deref().map(|m| capped(m, MAX_MESSAGE_BYTES))),
            Bind::Int(r.upstream_status),
            Bind::Int(Some(r.duration_ms)),
            text(&r.client_addr),
        ];
        let written = self.store.write(Write::Insert { into: INSERT, row }).await;
        self.healthy
            .store(written.is_ok(), std::sync::atomic::Ordering::Relaxed);
        written
    }

    /// Deletes records older than `days` days (0 keeps everything); returns how many.
    pub async fn prune(&self, days: u64) -> Result<u64, StoreError> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = chrono::Utc::now()
            - chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
        let done = sqlx::query("DELETE FROM audit_log WHERE at < ?")
            .bind(cutoff.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Records matching the filter, newest first.
    pub async fn query(&self, f: &Filter) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log
             WHERE (?1 IS NULL OR studio = ?1)
               AND (?2 IS NULL OR principal_id = ?2)
               AND (?3 IS NULL OR tool = ?3)
               AND (?4 IS NULL OR outcome = ?4)
               AND (?5 IS NULL OR at >= ?5)
               AND (?6 IS NULL OR at < ?6)
               AND (?7 IS NULL OR seq < ?7)
             ORDER BY seq DESC LIMIT ?8",
        )
        .bind(&f.studio)
        .bind(&f.principal)
        .bind(&f.tool)
        .bind(&f.outcome)
        .bind(f.since.as_deref().map(normalise_time))
        .bind(f.until.as_deref().map(normalise_time))
        .bind(f.before_seq)
        .bind(f.limit.clamp(1, 1000))
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| Record {
                seq: row.get("seq"),
                at: row.get("at"),
                request_id: row.get("request_id"),
                studio: row.get("studio"),
                principal_kind: row.get("principal_kind"),
                principal_id: row.get("principal_id"),
                principal_name: row.get("principal_name"),
                tool: row.get("tool"),
                arguments: row
                    .get::<Option<String>, _>("arguments")
                    .and_then(|a| serde_json::from_str(&a).ok()),
                decision: row.get("decision"),
                policies: row
                    .get::<Option<String>, _>("policies")
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
                outcome: row.get("outcome"),
                message: row.get("message"),
                upstream_status: row.get("upstream_status"),
                duration_ms: row.get("duration_ms"),
                client_addr: row.get("client_addr"),
            })
            .collect())
    }
}

/// Times are stored as UTC `YYYY-MM-DDThh:mm:ss.sssZ`, so filters compare as text once normalised.
fn normalise_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_string())
}

/// The current time in the stored format.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> Record {
        Record {
            seq: 0,
            at: now(),
            request_id: format!("req-{n}"),
            studio: Some("std_a".into()),
            principal_kind: Some("key".into()),
            principal_id: Some("key_1".into()),
            principal_name: Some("k".into()),
            tool: Some("get_class".into()),
            arguments: Some(serde_json::json!({ "n": n })),
            decision: Some("allow".into()),
            policies: vec!["p".into()],
            outcome: "ok".into(),
            message: None,
            upstream_status: Some(200),
            duration_ms: 1,
            client_addr: None,
        }
    }

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

    /// Appends made at the same moment are committed together, and each caller gets the
    /// sequence number of its own record.
    #[tokio::test]
    async fn concurrent_appends_are_committed_with_their_own_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.sqlite")).await.unwrap();
        let audit = Audit::new(store);
        let seqs = futures::future::join_all((0..300).map(|n| {
            let audit = audit.clone();
            async move { (n, audit.append(&record(n)).await.unwrap()) }
        }))
        .await;
        let stored = audit
            .query(&Filter {
                limit: 1000,
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(stored.len(), 300);
        for (n, seq) in seqs {
            let r = stored.iter().find(|r| r.seq == seq).unwrap();
            assert_eq!(r.request_id, format!("req-{n}"));
            assert_eq!(r.arguments, Some(serde_json::json!({ "n": n })));
        }
    }

    /// An append that fails is reported to its caller, and the writer goes on with the next one.
    #[tokio::test]
    async fn a_failed_batch_is_reported_to_each_caller() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.sqlite")).await.unwrap();
        let audit = Audit::new(store.clone());
        audit.append(&record(0)).await.unwrap();
        sqlx::query("CREATE TRIGGER no_more BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'full'); END")
            .execute(store.pool())
            .await
            .unwrap();
        let err = audit.append(&record(1)).await.unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        sqlx::query("DROP TRIGGER no_more")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(audit.append(&record(2)).await.unwrap() > 1);
    }
}
