//! The Audit log page: what every key, app and person did in the signed-in user's studio.
//!
//! Contract:
//! - `GET /settings/audit-log` (roles that may `ViewAuditLog`; nothing on it changes anything):
//!   the studio's records, newest first, [`PAGE_SIZE`] a page; "Older" pages by `before` (the
//!   last `seq` shown), "Newest" back to the top, both keeping the filters. Each row opens
//!   (`<details>`, no script) on the redacted arguments, decision and deciding policies,
//!   message, upstream status, duration, request id and client address.
//! - Filters, in a GET form: `tool`, `principal` (a key's or grant's id), `outcome` (an
//!   [`Outcome`]), `from` and `to` (UTC days, `YYYY-MM-DD`, both inclusive). Empty means any.
//!   A value that is not valid is said on the page (400), never a 500; nothing is queried then.
//! - Every read is scoped to the session's studio in the store query: [`Filters::within`] is the
//!   only way this module builds an [`audit::Filter`], and it always sets the studio.
//! - Above the records, a chart of calls per UTC day by outcome ([`super::chart`]) over the
//!   filtered range: the last [`CHART_DAYS`] days when no range is given, at most
//!   [`CHART_MAX_DAYS`] (the range's last ones) — one aggregate query.
//! - `export.csv` and `export.json`: the filtered records (same filters, same studio; `before`
//!   ignored), newest first, at most [`EXPORT_CAP`]. The number of records and whether the cap
//!   cut the export are known before the first byte (a bounded count that also fixes the newest
//!   record, so records appended meanwhile do not shift it) and said in the
//!   `X-Flowgate-Export-Rows` and `X-Flowgate-Export-Capped` headers. The body is streamed a
//!   store page ([`EXPORT_PAGE`] records) at a time, so memory stays bounded; a store error
//!   mid-way aborts the response rather than end it as if complete. CSV is RFC 4180 (CRLF,
//!   quoted when needed) and a cell that a spreadsheet would read as a formula (starting with
//!   `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate, Utc};
use hyper::body::Frame;

use super::chart::{self, Chart, Class, Key};
use super::{AUDIT_LOG, Head, Session, html};
use crate::app::App;
use crate::audit::{self, Audit, MAX_NAME_BYTES, Outcome, Record};
use crate::oauth;
use crate::roles::SettingsAction;
use crate::store::{StoreError, Timestamp, Within};

/// Records per page.
pub const PAGE_SIZE: i64 = 50;
/// Records in an export, at most.
pub const EXPORT_CAP: i64 = 10_000;
/// Records read from the store at a time while exporting (the most `audit_rows` returns).
pub const EXPORT_PAGE: i64 = 1_000;
/// The chart's days when no range is given.
pub const CHART_DAYS: u64 = 14;
/// The chart's days at most.
pub const CHART_MAX_DAYS: u64 = 92;
/// Tools offered in the tool filter, at most.
const MAX_TOOLS: i64 = 500;

// === filters ===

/// The filters as sent, to fill the form in again.
#[derive(Debug, Default, Clone)]
struct Sent {
    tool: String,
    principal: String,
    outcome: String,
    from: String,
    to: String,
    before: String,
}

impl Sent {
    /// The first value of each filter in a query string (others ignored).
    fn of(query: Option<&str>) -> Self {
        let mut sent = Sent::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if !seen.insert(k.clone()) {
                continue;
            }
            let slot = match &*k {
                "tool" => &mut sent.tool,
                "principal" => &mut sent.principal,
                "outcome" => &mut sent.outcome,
                "from" => &mut sent.from,
                "to" => &mut sent.to,
                "before" => &mut sent.before,
                _ => continue,
            };
            *slot = v.trim().to_string();
        }
        sent
    }
}

/// Valid filters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters {
    pub tool: Option<String>,
    pub principal: Option<String>,
    pub outcome: Option<Outcome>,
    /// Inclusive UTC days.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Records older than this `seq` (a page).
    pub before: Option<i64>,
}

/// Parses a date filter; `what` names it in the message.
fn date(text: &str, what: &str) -> Result<Option<NaiveDate>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| (1970..=9999).contains(&chrono::Datelike::year(d)))
        .map(Some)
        .ok_or_else(|| {
            format!("The {what} date \u{201c}{text}\u{201d} is not a date. Use the form YYYY-MM-DD, for example 2026-12-02.")
        })
}

fn name(text: &str, what: &str) -> Result<Option<String>, String> {
    if text.len() > MAX_NAME_BYTES {
        return Err(format!(
            "The {what} is too long ({} bytes; at most {MAX_NAME_BYTES}).",
            text.len()
        ));
    }
    Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
}

impl Filters {
    fn parse(sent: &Sent) -> Result<Self, String> {
        let outcome = match sent.outcome.as_str() {
            "" => None,
            o => Some(Outcome::parse(o).ok_or_else(|| {
                let known: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                format!(
                    "\u{201c}{o}\u{201d} is not an outcome. Choose one of: {}.",
                    known.join(", ")
                )
            })?),
        };
        let from = date(&sent.from, "start")?;
        let to = date(&sent.to, "end")?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(format!(
                "The start date ({f}) is after the end date ({t}). Pick a start on or before the end."
            ));
        }
        let before = match sent.before.as_str() {
            "" => None,
            b => Some(b.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
                format!(
                    "\u{201c}{b}\u{201d} is not a page of the log. Go back to the newest records."
                )
            })?),
        };
        Ok(Self {
            tool: name(&sent.tool, "tool name")?,
            principal: name(&sent.principal, "key or app id")?,
            outcome,
            from,
            to,
            before,
        })
    }

    /// Whether any filter (not the page) is set.
    fn any(&self) -> bool {
        self.tool.is_some()
            || self.principal.is_some()
            || self.outcome.is_some()
            || self.from.is_some()
            || self.to.is_some()
    }

    /// The store's filter of these filters over `studio`'s records only, `limit` records a
    /// query. Every read of this page goes through here.
    pub fn within(&self, studio: &str, limit: i64) -> audit::Filter {
        audit::Filter {
            studio: Some(studio.to_string()),
            principal: self.principal.clone(),
            tool: self.tool.clone(),
            outcome: self.outcome.map(|o| o.as_str().to_string()),
            since: self.from.map(midnight),
            until: self
                .to
                .and_then(|t| t.checked_add_days(Days::new(1)))
                .map(midnight),
            before_seq: self.before,
            limit,
        }
    }

    /// `path` with these filters (and page `before`) as its query.
    fn href(&self, path: &str, before: Option<i64>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        let pairs = [
            ("tool", self.tool.clone()),
            ("principal", self.principal.clone()),
            ("outcome", self.outcome.map(|o| o.as_str().to_string())),
            ("from", self.from.map(|d| d.to_string())),
            ("to", self.to.map(|d| d.to_string())),
            ("before", before.map(|b| b.to_string())),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                q.append_pair(k, &v);
            }
        }
        let q = q.finish();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    }

    /// The chart's days: the filtered range (today when it has no end; the last
    /// [`CHART_DAYS`] when it has no start), its last [`CHART_MAX_DAYS`] at most; and whether
    /// it was cut.
    fn chart_days(&self, today: NaiveDate) -> (NaiveDate, NaiveDate, bool) {
        let to = self
            .to
            .unwrap_or_else(|| self.from.map_or(today, |f| f.max(today)));
        let back = |days: u64| to.checked_sub_days(Days::new(days - 1)).unwrap_or(to);
        let from = self.from.unwrap_or_else(|| back(CHART_DAYS));
        let earliest = back(CHART_MAX_DAYS);
        if from < earliest {
            (earliest, to, true)
        } else {
            (from, to, false)
        }
    }
}

/// The first instant of a UTC day.
fn midnight(d: NaiveDate) -> Timestamp {
    Timestamp(d.and_time(chrono::NaiveTime::MIN).and_utc())
}

// === the page ===

#[derive(Template)]
#[template(path = "settings/audit_log.html")]
struct AuditPage {
    head: Head,
    sent: Sent,
    tools: Vec<Choice>,
    principals: Vec<Group>,
    outcomes: Vec<Choice>,
    error: Option<String>,
    filtered: bool,
    chart: Option<ChartView>,
    rows: Vec<RowView>,
    newest: Option<String>,
    older: Option<String>,
    export_csv: Option<String>,
    export_json: Option<String>,
    export_cap: String,
}

/// An option of a select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct Group {
    label: &'static str,
    choices: Vec<Choice>,
}

struct ChartView {
    range: String,
    /// From [`chart::calls_per_day`]: numbers and escaped labels only.
    svg: String,
    summary: String,
    legend: Vec<Key>,
    note: Option<String>,
}

/// One record as the page shows it.
struct RowView {
    seq: i64,
    at: String,
    at_exact: String,
    tool: String,
    principal: String,
    kind: &'static str,
    principal_id: String,
    outcome: String,
    class: &'static str,
    upstream: String,
    duration: String,
    arguments: Option<String>,
    decision: String,
    policies: Vec<String>,
    message: String,
    request_id: String,
    client_addr: String,
}

/// A principal kind as a person reads it.
fn kind_label(kind: Option<&str>) -> &'static str {
    match kind {
        Some("key") => "key",
        Some("grant") => "app",
        Some("client") => "app (unapproved)",
        Some("user") => "person",
        Some(_) => "other",
        None => "unknown",
    }
}

impl RowView {
    fn of(r: &Record) -> Self {
        Self {
            seq: r.seq,
            at: r.at.datetime().format("%Y-%m-%d %H:%M:%S").to_string(),
            at_exact: r.at.rfc3339(),
            tool: r.tool.clone().unwrap_or_else(|| "(none)".into()),
            principal: r
                .principal_name
                .clone()
                .or_else(|| r.principal_id.clone())
                .unwrap_or_else(|| "unknown".into()),
            kind: kind_label(r.principal_kind.as_deref()),
            principal_id: r.principal_id.clone().unwrap_or_else(|| "none".into()),
            outcome: r.outcome.replace('_', " "),
            class: Class::of(&r.outcome).css(),
            upstream: r
                .upstream_status
                .map_or_else(|| "\u{2014}".into(), |s| s.to_string()),
            duration: format!("{} ms", r.duration_ms),
            arguments: r
                .arguments
                .as_ref()
                .map(|a| serde_json::to_string_pretty(a).unwrap_or_else(|_| a.to_string())),
            decision: match r.decision.as_deref() {
                Some("allow") => "allowed".into(),
                Some("deny") => "denied".into(),
                Some(d) => d.to_string(),
                None => "no policy decision (not reached)".into(),
            },
            policies: r.policies.clone(),
            message: r.message.clone().unwrap_or_else(|| "none".into()),
            request_id: r.request_id.clone(),
            client_addr: r
                .client_addr
                .clone()
                .unwrap_or_else(|| "not recorded".into()),
        }
    }
}

/// The choices of the tool filter: the tools in the studio's log (and the one asked for).
fn tool_choices(tools: Vec<String>, current: &str) -> Vec<Choice> {
    let mut tools = tools;
    if !current.is_empty() && !tools.iter().any(|t| t == current) {
        tools.push(current.to_string());
        tools.sort();
    }
    tools
        .into_iter()
        .map(|t| Choice {
            selected: t == current,
            label: t.clone(),
            value: t,
        })
        .collect()
}

/// The choices of the principal filter: the studio's keys and connected apps.
async fn principal_choices(app: &App, studio: &str, current: &str) -> Result<Vec<Group>, Response> {
    let keys = app
        .keys
        .list(Within::Studio(studio))
        .await
        .map_err(|e| oauth::page_internal(&e))?;
    let grants = app
        .oauth
        .grants
        .list(Within::Studio(studio))
        .await
        .map_err(|e| oauth::page_internal(&e))?;
    let choice = |value: &str, label: String| Choice {
        selected: value == current,
        value: value.to_string(),
        label,
    };
    let mut groups = vec![
        Group {
            label: "Keys",
            choices: keys
                .iter()
                .map(|k| {
                    let gone = if k.revoked_at.is_some() {
                        ", revoked"
                    } else {
                        ""
                    };
                    choice(&k.id, format!("{} ({}\u{2026}{gone})", k.name, k.hint))
                })
                .collect(),
        },
        Group {
            label: "Connected apps",
            choices: grants
                .iter()
                .map(|g| {
                    let gone = if g.revoked_at.is_some() {
                        ", disconnected"
                    } else {
                        ""
                    };
                    choice(
                        &g.id,
                        format!("{} (approved by {}{gone})", g.client_name, g.user_email),
                    )
                })
                .collect(),
        },
    ];
    let known = groups.iter().flat_map(|g| &g.choices).any(|c| c.selected);
    if !current.is_empty() && !known {
        groups.push(Group {
            label: "Other",
            choices: vec![choice(current, current.to_string())],
        });
    }
    groups.retain(|g| !g.choices.is_empty());
    Ok(groups)
}

fn outcome_choices(current: &str) -> Vec<Choice> {
    Outcome::ALL
        .iter()
        .map(|o| Choice {
            value: o.as_str().into(),
            label: o.as_str().replace('_', " "),
            selected: o.as_str() == current,
        })
        .collect()
}

/// The chart of the filtered range.
async fn chart_of(app: &App, studio: &str, f: &Filters) -> Result<ChartView, StoreError> {
    let (from, to, cut) = f.chart_days(Utc::now().date_naive());
    let range = Filters {
        from: Some(from),
        to: Some(to),
        before: None,
        ..f.clone()
    };
    // At most one group per day and outcome (a few more for outcomes this version lacks).
    let groups = (CHART_MAX_DAYS as i64) * (Outcome::ALL.len() as i64 + 4);
    let counts = app
        .audit
        .day_counts(&range.within(studio, 1), groups)
        .await?;
    let parsed: Vec<(NaiveDate, &str, i64)> = counts
        .iter()
        .filter_map(|c| {
            let day = NaiveDate::parse_from_str(&c.day, "%Y-%m-%d").ok()?;
            Some((day, c.outcome.as_str(), c.calls))
        })
        .collect();
    let Chart {
        svg,
        summary,
        legend,
        ..
    } = chart::calls_per_day(from, to, &parsed);
    Ok(ChartView {
        range: if from == to {
            from.to_string()
        } else {
            format!("{from} to {to}")
        },
        svg,
        summary,
        legend,
        note: cut.then(|| {
            format!("The chart shows the last {CHART_MAX_DAYS} days of the range; the records below and the exports cover all of it.")
        }),
    })
}

/// `GET /settings/audit-log`.
pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::ViewAuditLog, AUDIT_LOG) {
        return r;
    }
    let studio = session.user.studio_id.as_str();
    let sent = Sent::of(query.as_deref());
    let tools = match app.audit.tools(studio, MAX_TOOLS).await {
        Ok(t) => tool_choices(t, &sent.tool),
        Err(e) => return oauth::page_internal(&e),
    };
    let principals = match principal_choices(&app, studio, &sent.principal).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut view = AuditPage {
        head: session.head(&app, AUDIT_LOG),
        tools,
        principals,
        outcomes: outcome_choices(&sent.outcome),
        error: None,
        filtered: false,
        chart: None,
        rows: Vec::new(),
        newest: None,
        older: None,
        export_csv: None,
        export_json: None,
        export_cap: thousands(EXPORT_CAP),
        sent,
    };
    let filters = match Filters::parse(&view.sent) {
        Ok(f) => f,
        Err(message) => {
            view.error = Some(message);
            return html(StatusCode::BAD_REQUEST, &view);
        }
    };
    // One more than a page, to know whether there is an older one.
    let records = match app
        .audit
        .query(&filters.within(studio, PAGE_SIZE + 1))
        .await
    {
        Ok(r) => r,
        Err(e) => return oauth::page_internal(&e),
    };
    let more = records.len() as i64 > PAGE_SIZE;
    view.rows = records
        .iter()
        .take(PAGE_SIZE as usize)
        .map(RowView::of)
        .collect();
    if more && let Some(last) = view.rows.last() {
        view.older = Some(filters.href(AUDIT_LOG, Some(last.seq)));
    }
    if filters.before.is_some() {
        view.newest = Some(filters.href(AUDIT_LOG, None));
    }
    view.chart = match chart_of(&app, studio, &filters).await {
        Ok(c) => Some(c),
        Err(e) => return oauth::page_internal(&e),
    };
    view.filtered = filters.any();
    view.export_csv = Some(filters.href(&format!("{AUDIT_LOG}/export.csv"), None));
    view.export_json = Some(filters.href(&format!("{AUDIT_LOG}/export.json"), None));
    html(StatusCode::OK, &view)
}

/// `10000` as `10,000`.
fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// === exports ===

/// The formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// The CSV columns, in order (see [`csv_row`]).
pub const CSV_COLUMNS: [&str; 16] = [
    "seq",
    "time",
    "studio",
    "tool",
    "principal_kind",
    "principal_id",
    "principal_name",
    "outcome",
    "decision",
    "policies",
    "upstream_status",
    "duration_ms",
    "request_id",
    "client_addr",
    "message",
    "arguments",
];

/// One CSV cell: guarded against formula injection, then quoted per RFC 4180 when needed.
pub fn csv_cell(text: &str, out: &mut String) {
    let guarded = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = text.contains([',', '"', '\r', '\n']);
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    if quoted {
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// One CSV line (CRLF-terminated).
fn csv_line<'a>(cells: impl IntoIterator<Item = &'a str>, out: &mut String) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(cell, out);
    }
    out.push_str("\r\n");
}

/// A record as a CSV line, in the order of [`CSV_COLUMNS`].
pub fn csv_row(r: &Record, out: &mut String) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        r.seq.to_string(),
        r.at.rfc3339(),
        opt(&r.studio),
        opt(&r.tool),
        opt(&r.principal_kind),
        opt(&r.principal_id),
        opt(&r.principal_name),
        r.outcome.clone(),
        opt(&r.decision),
        r.policies.join(" "),
        r.upstream_status.map(|s| s.to_string()).unwrap_or_default(),
        r.duration_ms.to_string(),
        r.request_id.clone(),
        opt(&r.client_addr),
        opt(&r.message),
        r.arguments
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    ];
    csv_line(cells.iter().map(String::as_str), out);
}

type Page = Pin<Box<dyn Future<Output = Result<Vec<Record>, StoreError>> + Send>>;

/// The body of an export: the records, read a store page at a time as the client takes them.
struct Export {
    audit: Audit,
    /// The filters; `before_seq` moves down a page at a time.
    filter: audit::Filter,
    format: Format,
    /// Records still to send.
    left: i64,
    /// The opening (CSV header line, `[`) is sent.
    opened: bool,
    /// A JSON record was sent (the next one needs a comma).
    wrote: bool,
    /// The page being read.
    reading: Option<Page>,
    /// No more records to read.
    drained: bool,
    done: bool,
}

impl Export {
    fn encode(&mut self, records: &[Record]) -> String {
        let mut out = String::new();
        for r in records {
            match self.format {
                Format::Csv => csv_row(r, &mut out),
                Format::Json => {
                    out.push_str(if self.wrote { ",\n" } else { "\n" });
                    // A Record always serializes (strings, numbers, JSON values).
                    out.push_str(&serde_json::to_string(r).unwrap_or_else(|_| "null".into()));
                    self.wrote = true;
                }
            }
        }
        out
    }
}

fn data(text: String) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
    Poll::Ready(Some(Ok(Frame::data(Bytes::from(text)))))
}

impl hyper::body::Body for Export {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if !this.opened {
                this.opened = true;
                let mut head = String::new();
                match this.format {
                    Format::Csv => csv_line(CSV_COLUMNS, &mut head),
                    Format::Json => head.push('['),
                }
                return data(head);
            }
            if this.drained || this.left <= 0 {
                this.done = true;
                return match this.format {
                    Format::Csv => Poll::Ready(None),
                    Format::Json => data("\n]\n".into()),
                };
            }
            let reading = this.reading.get_or_insert_with(|| {
                let audit = this.audit.clone();
                let filter = audit::Filter {
                    limit: this.left.min(EXPORT_PAGE),
                    ..this.filter.clone()
                };
                Box::pin(async move { audit.query(&filter).await })
            });
            let records = match reading.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    tracing::error!(error = %e, "an audit log export failed");
                    this.done = true;
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "the audit log could not be read",
                    ))));
                }
                Poll::Ready(Ok(records)) => records,
            };
            this.reading = None;
            let asked = this.left.min(EXPORT_PAGE);
            this.drained = (records.len() as i64) < asked;
            this.left -= records.len() as i64;
            if let Some(last) = records.last() {
                this.filter.before_seq = Some(last.seq);
            }
            let text = this.encode(&records);
            if !text.is_empty() {
                return data(text);
            }
        }
    }
}

/// A name for a file: the characters of `text` that are safe in one.
fn file_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn export(
    app: Arc<App>,
    session: Session,
    query: Option<String>,
    format: Format,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::ViewAuditLog, AUDIT_LOG) {
        return r;
    }
    let studio = session.user.studio_id.clone();
    let filters = match Filters::parse(&Sent::of(query.as_deref())) {
        Ok(f) => Filters { before: None, ..f },
        Err(message) => {
            return session.problem(
                &app,
                AUDIT_LOG,
                StatusCode::BAD_REQUEST,
                "This export could not be made",
                &message,
            );
        }
    };
    let mut filter = filters.within(&studio, EXPORT_PAGE);
    // How many records the export holds, and its newest: fixed before the first byte.
    let (matching, newest) = match app.audit.count_upto(&filter, EXPORT_CAP + 1).await {
        Ok(c) => c,
        Err(e) => return oauth::page_internal(&e),
    };
    let capped = matching > EXPORT_CAP;
    let rows = matching.min(EXPORT_CAP);
    filter.before_seq = newest.map(|n| n + 1);
    let body = Export {
        audit: app.audit.clone(),
        filter,
        format,
        left: rows,
        opened: false,
        wrote: false,
        reading: None,
        drained: rows == 0,
        done: false,
    };
    let file = format!(
        "audit-log-{}-{}.{}",
        file_part(&studio),
        Utc::now().format("%Y-%m-%d"),
        format.extension()
    );
    let mut r = Body::new(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-flowgate-export-rows", HeaderValue::from(rows));
    h.insert(
        "x-flowgate-export-capped",
        HeaderValue::from_static(if capped { "true" } else { "false" }),
    );
    r
}

/// `GET /settings/audit-log/export.csv`.
pub async fn export_csv(
    State(app): State<Arc<App>>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    export(app, session, query, Format::Csv).await
}

/// `GET /settings/audit-log/export.json`: an array of records.
pub async fn export_json(
    State(app): State<Arc<App>>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    export(app, session, query, Format::Json).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(text: &str) -> String {
        let mut out = String::new();
        csv_cell(text, &mut out);
        out
    }

    #[test]
    fn csv_cells_are_quoted_and_guarded() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell(""), "");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("\rx"), "\"'\rx\"");
        assert_eq!(cell("a=b"), "a=b");
    }

    fn sent(pairs: &str) -> Sent {
        Sent::of(Some(pairs))
    }

    #[test]
    fn filters_parse_or_say_what_is_wrong() {
        let f = Filters::parse(&sent(
            "tool=list_classes&principal=key_1&outcome=denied&from=2026-11-01&to=2026-11-30&before=77&tool=other",
        ))
        .unwrap();
        assert_eq!(
            f.tool.as_deref(),
            Some("list_classes"),
            "the first value counts"
        );
        assert_eq!(f.outcome, Some(Outcome::Denied));
        assert_eq!(f.before, Some(77));
        let q = f.within("std_a", 50);
        assert_eq!(q.studio.as_deref(), Some("std_a"));
        assert_eq!(q.since.unwrap().rfc3339(), "2026-11-01T00:00:00.000Z");
        // `to` is inclusive: up to the next day's midnight.
        assert_eq!(q.until.unwrap().rfc3339(), "2026-12-01T00:00:00.000Z");
        assert_eq!(
            f.href(AUDIT_LOG, Some(5)),
            "/settings/audit-log?tool=list_classes&principal=key_1&outcome=denied&from=2026-11-01&to=2026-11-30&before=5"
        );
        assert_eq!(
            Filters::parse(&sent("tool=&outcome=")).unwrap(),
            Filters::default()
        );

        for (query, says) in [
            ("outcome=fine", "\u{201c}fine\u{201d} is not an outcome"),
            (
                "from=yesterday",
                "The start date \u{201c}yesterday\u{201d} is not a date",
            ),
            (
                "to=2026-02-30",
                "The end date \u{201c}2026-02-30\u{201d} is not a date",
            ),
            ("to=+262143-01-01", "is not a date"),
            (
                "from=2026-12-02&to=2026-12-01",
                "The start date (2026-12-02) is after the end date (2026-12-01)",
            ),
            ("before=-1", "is not a page of the log"),
            ("before=99999999999999999999", "is not a page of the log"),
        ] {
            let e = Filters::parse(&sent(query)).unwrap_err();
            assert!(e.contains(says), "{query}: {e}");
        }
        let long = format!("tool={}", "x".repeat(300));
        assert!(
            Filters::parse(&sent(&long))
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn the_chart_covers_the_range_or_the_last_two_weeks() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = d("2026-12-02");
        let none = Filters::default();
        assert_eq!(none.chart_days(today), (d("2026-11-19"), today, false));
        let range = Filters {
            from: Some(d("2026-10-01")),
            to: Some(d("2026-10-03")),
            ..Filters::default()
        };
        assert_eq!(
            range.chart_days(today),
            (d("2026-10-01"), d("2026-10-03"), false)
        );
        let from = Filters {
            from: Some(d("2026-11-30")),
            ..Filters::default()
        };
        assert_eq!(from.chart_days(today), (d("2026-11-30"), today, false));
        let long = Filters {
            from: Some(d("2025-01-01")),
            ..Filters::default()
        };
        let (start, end, cut) = long.chart_days(today);
        assert_eq!((end, cut), (today, true));
        assert_eq!((end - start).num_days() + 1, CHART_MAX_DAYS as i64);
    }

    #[test]
    fn numbers_read_with_thousands() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
