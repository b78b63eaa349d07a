//! The Audit log settings page over HTTP, as a browser without JavaScript uses it: sign in to
//! the pages, make calls with real MCP clients, then read the page, its filters, its pages, its
//! chart and its exports. Every read is the signed-in user's studio only.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use flowgate::audit::{Filter, Record};
use flowgate::settings::audit_log::{CSV_COLUMNS, EXPORT_CAP};
use flowgate::store::Timestamp;

use crate::harness::{Gateway, call, ok};
use crate::oauth::{browser, hidden};

const PAGE: &str = "/settings/audit-log";
const PRO: &str = "std_lotus";
const FREE: &str = "std_freespirit";
const PRO_OWNER: (&str, &str) = ("owner@lotusflow.example", "lotus-owner-demo");
const PRO_STAFF: (&str, &str) = ("staff@lotusflow.example", "lotus-staff-demo");
const FREE_OWNER: (&str, &str) = ("owner@freespirit.example", "spirit-owner-demo");

/// A browser signed in to the settings pages.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    async fn sign_in(gw: &Gateway, (email, password): (&str, &str)) -> Self {
        let http = browser();
        let base = gw.running.app.base_url.clone();
        let form = http
            .get(format!("{base}/settings/sign-in?next={PAGE}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden(&form, "csrf");
        let r = http
            .post(format!("{base}/settings/sign-in"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf", csrf.as_str()),
                ("next", PAGE),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {email}");
        assert_eq!(r.headers()["location"], PAGE);
        Self { http, base }
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    /// The page (200) at `query`.
    async fn page(&self, query: &str) -> String {
        let (status, _, body) = self.get(&format!("{PAGE}{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        body
    }
}

/// The records a page lists, by `seq`, in its order.
fn listed(html: &str) -> Vec<i64> {
    html.split("id=\"record-")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The `href` of the pager's link that reads `label`, unescaped.
fn pager_link(html: &str, label: &str) -> Option<String> {
    let nav = &html[html.find("<nav class=\"pager\"")?..];
    let nav = &nav[..nav.find("</nav>").unwrap()];
    nav.split("<a ")
        .skip(1)
        .find(|a| a.contains(label))
        .map(|a| {
            let start = a.find("href=\"").unwrap() + 6;
            unescape(&a[start..start + a[start..].find('"').unwrap()])
        })
}

/// HTML text as a browser reads it (askama escapes `&"'<>` as numeric references).
fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// A studio's records as the store has them, newest first.
async fn records_of(gw: &Gateway, studio: &str) -> Vec<Record> {
    gw.running
        .app
        .audit
        .query(&Filter {
            studio: Some(studio.into()),
            limit: 1000,
            ..Filter::default()
        })
        .await
        .unwrap()
}

fn seqs<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<i64> {
    records.into_iter().map(|r| r.seq).collect()
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

/// RFC 4180 as a spreadsheet reads it: quoted fields with doubled quotes, CRLF lines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a line ends with CRLF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "the last line ends with CRLF"
    );
    rows
}

/// Calls of the Pro studio (its demo key, and a key that may only read classes and is denied a
/// coupon) and of the Free studio (its demo key, denied a Pro tool). Returns the limited key's id.
async fn some_calls(gw: &Gateway) -> String {
    let pro = gw.client(&gw.pro_key()).await;
    for _ in 0..3 {
        ok(call(&pro, "list_classes", json!({})).await, "list_classes");
    }
    let limited = gw.key(PRO, &["classes:read"]).await;
    let lim = gw.client(&limited.secret).await;
    ok(call(&lim, "list_classes", json!({})).await, "list_classes");
    let refused = call(
        &lim,
        "create_coupon",
        json!({"code": "SPRING20", "percent_off": 20}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    let free = gw.client(&gw.free_key()).await;
    ok(call(&free, "list_classes", json!({})).await, "list_classes");
    let denied = call(&free, "create_program", json!({"name": "Big"})).await;
    assert_eq!(denied.is_error, Some(true));
    for c in [pro, lim, free] {
        c.cancel().await.unwrap();
    }
    limited.info.id
}

#[tokio::test]
async fn the_page_lists_the_studios_records_and_each_filter_narrows_them() {
    let gw = Gateway::start().await;
    let limited = some_calls(&gw).await;
    let owner = Browser::sign_in(&gw, PRO_OWNER).await;
    let lotus = records_of(&gw, PRO).await;
    let free = records_of(&gw, FREE).await;
    // The calls, and the owner's sign-in to the pages.
    assert_eq!(lotus.len(), 6, "{lotus:#?}");
    assert_eq!(free.len(), 2, "{free:#?}");

    let page = owner.page("").await;
    assert_eq!(
        listed(&page),
        seqs(&lotus),
        "every record of the studio, newest first"
    );
    for r in &lotus {
        assert!(
            page.contains(&r.request_id),
            "{} is shown when opened",
            r.request_id
        );
    }
    for r in &free {
        assert!(
            !page.contains(&r.request_id),
            "another studio's record {r:?}"
        );
    }
    assert!(!page.contains("Free Spirit"), "another studio's key");
    // The tools of the studio's log, its keys and apps, and the outcomes are the choices.
    assert!(page.contains("<option value=\"create_coupon\">create_coupon</option>"));
    assert!(page.contains("<option value=\"settings.sign_in\">"));
    assert!(
        !page.contains("create_program"),
        "a tool only the other studio called"
    );
    assert!(page.contains(&format!("<option value=\"{limited}\">test key (")));
    assert!(page.contains("<option value=\"rate_limited\">rate limited</option>"));
    // A row opens on what was decided, by which policy, and the redacted arguments.
    let coupon = lotus
        .iter()
        .find(|r| r.tool.as_deref() == Some("create_coupon"))
        .unwrap();
    assert_eq!(coupon.outcome, "denied");
    let row = &page[page.find(&format!("id=\"record-{}\"", coupon.seq)).unwrap()..];
    let row = &row[..row.find("</details>").unwrap()];
    assert!(
        row.contains("<span class=\"badge c-refused\">denied</span>"),
        "{row}"
    );
    assert!(row.contains("<dt>Decision</dt><dd>denied</dd>"), "{row}");
    for policy in &coupon.policies {
        assert!(row.contains(&format!("<code>{policy}</code>")), "{row}");
    }
    assert!(
        row.contains("{\n  &#34;code&#34;: &#34;SPRING20&#34;,\n  &#34;percent_off&#34;: 20\n}"),
        "pretty, escaped JSON: {row}"
    );

    // Each filter narrows to exactly the records it names.
    let expect = |keep: &dyn Fn(&Record) -> bool| seqs(lotus.iter().filter(|r| keep(r)));
    let cases: Vec<(String, Vec<i64>)> = vec![
        ("?tool=create_coupon".into(), vec![coupon.seq]),
        (
            "?tool=list_classes".into(),
            expect(&|r| r.tool.as_deref() == Some("list_classes")),
        ),
        (
            format!("?principal={limited}"),
            expect(&|r| r.principal_id.as_deref() == Some(limited.as_str())),
        ),
        ("?outcome=denied".into(), vec![coupon.seq]),
        (
            format!("?tool=list_classes&principal={limited}"),
            expect(&|r| {
                r.tool.as_deref() == Some("list_classes")
                    && r.principal_id.as_deref() == Some(limited.as_str())
            }),
        ),
        (format!("?from={}&to={}", today(), today()), seqs(&lotus)),
        (format!("?from={}", today()), seqs(&lotus)),
        ("?to=2020-01-01".into(), vec![]),
        ("?from=2099-01-01".into(), vec![]),
        // Another studio's key is no key of this one: nothing.
        (
            format!("?principal={}", free[0].principal_id.as_deref().unwrap()),
            vec![],
        ),
        ("?outcome=&tool=&from=&to=".into(), seqs(&lotus)),
    ];
    assert_eq!(cases[2].1.len(), 2);
    assert_eq!(cases[4].1.len(), 1);
    for (query, want) in &cases {
        let page = owner.page(query).await;
        assert_eq!(&listed(&page), want, "{query}");
        if want.is_empty() {
            assert!(page.contains("No records match these filters."), "{query}");
        }
    }
    // The form keeps what was chosen.
    let page = owner
        .page(&format!("?principal={limited}&outcome=denied"))
        .await;
    assert!(page.contains(&format!("<option value=\"{limited}\" selected>")));
    assert!(page.contains("<option value=\"denied\" selected>"));

    // Filters that are not valid are explained, not a 500, and nothing is listed.
    for (query, says) in [
        (
            "?outcome=bogus",
            "\u{201c}bogus\u{201d} is not an outcome. Choose one of: ok, denied,",
        ),
        (
            "?from=2026-13-01",
            "The start date \u{201c}2026-13-01\u{201d} is not a date.",
        ),
        (
            "?to=soon",
            "The end date \u{201c}soon\u{201d} is not a date.",
        ),
        ("?from=2026-12-02&to=2026-12-01", "is after the end date"),
        (
            "?before=abc",
            "\u{201c}abc\u{201d} is not a page of the log.",
        ),
        ("?before=-3", "is not a page of the log."),
    ] {
        let (status, _, body) = owner.get(&format!("{PAGE}{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body.contains(says), "{query}: {body}");
        assert!(body.contains("role=\"alert\""), "{query}");
        assert!(listed(&body).is_empty(), "{query}");
    }

    // The Free studio's owner sees the Free studio's records only.
    let spirit = Browser::sign_in(&gw, FREE_OWNER).await;
    let free = records_of(&gw, FREE).await;
    let page = spirit.page("").await;
    assert_eq!(listed(&page), seqs(&free));
    assert_eq!(free.len(), 3, "two calls and a sign-in");
    for r in &lotus {
        assert!(
            !page.contains(&r.request_id),
            "another studio's record {r:?}"
        );
    }
    assert!(listed(&spirit.page(&format!("?principal={limited}")).await).is_empty());

    // Staff read the log too (there is nothing to change on it).
    let staff = Browser::sign_in(&gw, PRO_STAFF).await;
    let page = staff.page("").await;
    assert_eq!(listed(&page), seqs(&records_of(&gw, PRO).await));
    gw.stop().await;
}

#[tokio::test]
async fn pages_of_fifty_go_older_and_back_keeping_the_filters_and_the_chart_counts_the_range() {
    let gw = Gateway::start().await;
    let pro = gw.client(&gw.pro_key()).await;
    for _ in 0..60 {
        ok(call(&pro, "list_classes", json!({})).await, "list_classes");
    }
    pro.cancel().await.unwrap();
    some_calls(&gw).await;
    let owner = Browser::sign_in(&gw, PRO_OWNER).await;
    let lotus = records_of(&gw, PRO).await;
    assert_eq!(lotus.len(), 66);

    let first = owner.page("").await;
    assert_eq!(listed(&first), seqs(&lotus[..50]));
    assert_eq!(pager_link(&first, "Newest"), None);
    let older = pager_link(&first, "Older").unwrap();
    assert_eq!(older, format!("{PAGE}?before={}", lotus[49].seq));
    let second = owner.page(&older[PAGE.len()..]).await;
    assert_eq!(listed(&second), seqs(&lotus[50..]));
    assert_eq!(pager_link(&second, "Older"), None, "the last page");
    assert_eq!(pager_link(&second, "Newest").as_deref(), Some(PAGE));

    // With a filter, every link keeps it.
    let calls: Vec<&Record> = lotus
        .iter()
        .filter(|r| r.tool.as_deref() == Some("list_classes"))
        .collect();
    assert_eq!(calls.len(), 64);
    let first = owner.page("?tool=list_classes&outcome=ok").await;
    assert_eq!(listed(&first), seqs(calls[..50].iter().copied()));
    let older = pager_link(&first, "Older").unwrap();
    assert_eq!(
        older,
        format!(
            "{PAGE}?tool=list_classes&outcome=ok&before={}",
            calls[49].seq
        )
    );
    let second = owner.page(&older[PAGE.len()..]).await;
    assert_eq!(listed(&second), seqs(calls[50..].iter().copied()));
    assert_eq!(
        pager_link(&second, "Newest").unwrap(),
        format!("{PAGE}?tool=list_classes&outcome=ok")
    );
    assert!(second.contains(&format!(
        "href=\"{PAGE}/export.csv?tool=list_classes&#38;outcome=ok\""
    )));

    // The chart: the last 14 days by default, every record of today in one stacked bar.
    let ok_calls = lotus.iter().filter(|r| r.outcome == "ok").count();
    assert_eq!(ok_calls, 65);
    let page = owner.page("").await;
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    assert!(page.contains("role=\"img\" aria-labelledby=\"chart-title chart-desc\""));
    let summary = "66 calls in 14 days: 65 ok, 1 denied";
    assert!(
        page.contains(&format!("<desc id=\"chart-desc\">{summary}</desc>")),
        "{page}"
    );
    assert!(page.contains(&format!("<p class=\"chart-summary\">{summary}")));
    let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    assert_eq!(
        svg.matches("<rect ").count(),
        2,
        "ok and denied, today: {svg}"
    );
    assert_eq!(svg.matches("<g class=\"day\">").count(), 14);
    assert!(svg.contains("class=\"c-ok\"") && svg.contains("class=\"c-refused\""));
    // Filtered, over a range.
    let day = today();
    let page = owner
        .page(&format!("?outcome=denied&from={day}&to={day}"))
        .await;
    assert!(
        page.contains("<p class=\"chart-summary\">1 call in 1 day: 1 denied"),
        "{page}"
    );
    let page = owner.page("?from=2020-01-01&to=2020-03-31").await;
    assert!(page.contains("No calls in 91 days."), "{page}");
    let page = owner.page("?from=2020-01-01").await;
    assert!(page.contains("The chart shows the last 92 days of the range"));
    assert!(page.contains(&format!("calls in 92 days: {ok_calls} ok, 1 denied")));
    gw.stop().await;
}

#[tokio::test]
async fn exports_hold_exactly_the_filtered_records_quoted_and_guarded() {
    let gw = Gateway::start().await;
    some_calls(&gw).await;
    // A key whose name a spreadsheet would run as a formula.
    let name = "=HYPERLINK(\"http://evil.example/?q=1\",\"click\")";
    let scopes = ["classes:read".to_string()].into();
    let sly = gw
        .running
        .app
        .keys
        .create(PRO, name, &scopes, None)
        .await
        .unwrap();
    let client = gw.client(&sly.secret).await;
    ok(
        call(&client, "list_classes", json!({})).await,
        "list_classes",
    );
    let refused = call(
        &client,
        "create_coupon",
        json!({"code": "-SPRING", "percent_off": 5}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    client.cancel().await.unwrap();
    let owner = Browser::sign_in(&gw, PRO_OWNER).await;
    let lotus = records_of(&gw, PRO).await;
    let theirs: Vec<&Record> = lotus
        .iter()
        .filter(|r| r.principal_id.as_deref() == Some(sly.info.id.as_str()))
        .collect();
    assert_eq!(theirs.len(), 2);

    // The page links to the exports with its filters.
    let query = format!("?principal={}", sly.info.id);
    let page = owner.page(&query).await;
    assert!(
        page.contains(&format!("href=\"{PAGE}/export.csv{query}\"")),
        "{page}"
    );
    assert!(page.contains(&format!("href=\"{PAGE}/export.json{query}\"")));

    let (status, headers, csv) = owner.get(&format!("{PAGE}/export.csv{query}")).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"audit-log-{PRO}-{}.csv\"", today()).as_str()
    );
    assert_eq!(headers["x-flowgate-export-rows"], "2");
    assert_eq!(headers["x-flowgate-export-capped"], "false");
    // Quoted with doubled quotes, and a leading ' so it stays text.
    assert!(
        csv.contains(",\"'=HYPERLINK(\"\"http://evil.example/?q=1\"\",\"\"click\"\")\","),
        "{csv}"
    );
    let rows = parse_csv(&csv);
    assert_eq!(rows[0], CSV_COLUMNS);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let col = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    for (row, r) in rows[1..].iter().zip(&theirs) {
        assert_eq!(row.len(), CSV_COLUMNS.len());
        assert_eq!(row[col("seq")], r.seq.to_string());
        assert_eq!(row[col("request_id")], r.request_id);
        assert_eq!(row[col("principal_name")], format!("'{name}"));
        assert_eq!(row[col("outcome")], r.outcome);
        assert_eq!(row[col("time")], r.at.rfc3339());
        assert_eq!(row[col("policies")], r.policies.join(" "));
    }
    let coupon = &rows[1];
    assert_eq!(coupon[col("tool")], "create_coupon");
    let args: Value = serde_json::from_str(&coupon[col("arguments")]).unwrap();
    assert_eq!(args, json!({"code": "-SPRING", "percent_off": 5}));

    let (status, headers, body) = owner.get(&format!("{PAGE}/export.json{query}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"audit-log-{PRO}-{}.json\"", today()).as_str()
    );
    let json: Vec<Value> = serde_json::from_str(&body).unwrap();
    let want: Vec<Value> = theirs
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    assert_eq!(json, want, "the records as the store has them");
    assert_eq!(
        json[0]["principal_name"], name,
        "JSON keeps the text as it is"
    );

    // Other filters, the whole log, and nothing; never another studio's records.
    let free = records_of(&gw, FREE).await;
    for (query, want) in [
        (
            "?outcome=denied".to_string(),
            seqs(lotus.iter().filter(|r| r.outcome == "denied")),
        ),
        (String::new(), seqs(&lotus)),
        (
            format!("?principal={}", free[0].principal_id.as_deref().unwrap()),
            vec![],
        ),
        ("?from=2020-01-01&to=2020-01-02".into(), vec![]),
    ] {
        let (status, headers, body) = owner.get(&format!("{PAGE}/export.json{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let got: Vec<i64> = serde_json::from_str::<Vec<Value>>(&body)
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(got, want, "{query}");
        assert_eq!(
            headers["x-flowgate-export-rows"],
            want.len().to_string().as_str()
        );
        let (_, _, csv) = owner.get(&format!("{PAGE}/export.csv{query}")).await;
        let rows = parse_csv(&csv);
        let got: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
        assert_eq!(got, want, "csv {query}");
    }
    assert!(seqs(&lotus).len() > 2);

    // A filter that is not valid: said, no file.
    let (status, headers, body) = owner.get(&format!("{PAGE}/export.csv?outcome=nope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.get("content-disposition").is_none());
    assert!(body.contains("is not an outcome"), "{body}");

    // Signed out, an export is a way to the sign-in form.
    let (status, headers, _) = Browser {
        http: browser(),
        base: owner.base.clone(),
    }
    .get(&format!("{PAGE}/export.csv"))
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/settings/sign-in?next=%2Fsettings%2Faudit-log")
    );
    gw.stop().await;
}

/// More records than an export holds: the newest 10,000, read a store page at a time, and the
/// headers say the export was cut.
#[tokio::test]
async fn an_export_stops_at_ten_thousand_records_and_says_so() {
    let gw = Gateway::start().await;
    let audit = gw.running.app.audit.clone();
    let total = EXPORT_CAP as usize + 30;
    let record = |n: usize| Record {
        seq: 0,
        at: Timestamp::now(),
        request_id: format!("bulk-{n}"),
        studio: Some(PRO.into()),
        principal_kind: Some("key".into()),
        principal_id: Some("key_bulk".into()),
        principal_name: Some("bulk".into()),
        tool: Some(
            if n.is_multiple_of(2) {
                "list_classes"
            } else {
                "get_class"
            }
            .into(),
        ),
        arguments: Some(json!({ "n": n })),
        decision: Some("allow".into()),
        policies: vec!["tenant.own-studio".into()],
        outcome: "ok".into(),
        message: None,
        upstream_status: Some(200),
        duration_ms: 3,
        client_addr: None,
    };
    for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
        let appends = chunk.iter().map(|n| {
            let audit = audit.clone();
            let r = record(*n);
            async move { audit.append(&r).await.unwrap() }
        });
        futures::future::join_all(appends).await;
    }
    let owner = Browser::sign_in(&gw, PRO_OWNER).await;
    let newest = records_of(&gw, PRO).await[0].seq;

    let (status, headers, csv) = owner.get(&format!("{PAGE}/export.csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-flowgate-export-rows"], "10000");
    assert_eq!(headers["x-flowgate-export-capped"], "true");
    let rows = parse_csv(&csv);
    assert_eq!(rows.len(), 1 + 10_000);
    let got: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(got[0], newest, "the newest first");
    assert!(
        got.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats across store pages"
    );
    // The sign-in and the bulk records: the oldest 31 are the ones left out.
    let left_out = gw
        .running
        .app
        .audit
        .query(&Filter {
            studio: Some(PRO.into()),
            before_seq: got.last().copied(),
            limit: 1000,
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(left_out.len(), total + 1 - 10_000);
    assert!(rows[1..].iter().all(|r| r[col_of("studio")] == PRO));

    // Under the cap: all of them, not cut.
    let (_, headers, body) = owner
        .get(&format!("{PAGE}/export.json?tool=get_class"))
        .await;
    assert_eq!(headers["x-flowgate-export-capped"], "false");
    let json: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(json.len(), total / 2);
    assert_eq!(
        headers["x-flowgate-export-rows"],
        (total / 2).to_string().as_str()
    );
    gw.stop().await;
}

fn col_of(name: &str) -> usize {
    CSV_COLUMNS.iter().position(|c| *c == name).unwrap()
}
