//! The studio owner's settings pages (`/settings/*`) over HTTP, on SQLite and on PostgreSQL:
//! sign-in and sessions, the attacks a page must resist (another studio's ids, missing or wrong
//! CSRF tokens, a foreign origin, an ended session, a staff member posting the owner's forms),
//! auditing, and the security headers. The same pages in a real browser are in
//! `settings_browser.rs`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::Gateway;
use crate::oauth::{Flow, browser, hidden, status_with};

pub(crate) const OWNER: (&str, &str) = ("owner@lotusflow.example", "lotus-owner-demo");
pub(crate) const ADMIN: (&str, &str) = ("admin@lotusflow.example", "lotus-admin-demo");
pub(crate) const STAFF: (&str, &str) = ("staff@lotusflow.example", "lotus-staff-demo");
/// The owner of the other demo studio (Free).
pub(crate) const OTHER_OWNER: (&str, &str) = ("owner@freespirit.example", "spirit-owner-demo");

/// SQLite always; PostgreSQL when one can be started (always in CI).
async fn backends() -> Vec<Option<String>> {
    let mut out = vec![None];
    if let Some(url) = crate::postgres::database().await {
        out.push(Some(url));
    }
    out
}

async fn start(database_url: Option<String>) -> Gateway {
    Gateway::start_with(move |c| c.database_url = database_url).await
}

/// A browser signed in to the settings pages.
pub(crate) struct Pages {
    pub http: reqwest::Client,
    pub base: String,
}

impl Pages {
    /// Signs in as `who` through the sign-in form, as a browser does.
    pub async fn sign_in(base: &str, who: (&str, &str)) -> Self {
        let pages = Self {
            http: browser(),
            base: base.to_string(),
        };
        let r = pages.sign_in_answer(who, "/settings/developer").await;
        assert_eq!(r.status(), 303, "{:?}", r.text().await);
        pages
    }

    async fn sign_in_answer(&self, who: (&str, &str), next: &str) -> reqwest::Response {
        let form = self.get("/settings/sign-in").await.text().await.unwrap();
        self.http
            .post(format!("{}/settings/sign-in", self.base))
            .form(&[
                ("csrf", hidden(&form, "csrf").as_str()),
                ("next", next),
                ("email", who.0),
                ("password", who.1),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// The session's CSRF token, as every signed-in page carries it.
    pub async fn csrf(&self) -> String {
        let html = self
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        hidden(&html, "csrf")
    }

    /// Posts `form` (with this session's CSRF token) to `path`.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf().await;
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post_raw(path, &fields).await
    }

    /// Posts `form` as it is.
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Creates a key on the Developer page; returns its secret and id.
    pub async fn create_key(&self, name: &str, access: &[(&str, &str)]) -> (String, String) {
        let fields: Vec<(String, String)> = access
            .iter()
            .map(|(r, a)| (format!("access.{r}"), a.to_string()))
            .collect();
        let mut form: Vec<(&str, &str)> = vec![("name", name), ("expires", "30")];
        form.extend(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let r = self.post("/settings/developer/keys", &form).await;
        assert_eq!(r.status(), 201);
        let html = r.text().await.unwrap();
        let secret = between(&html, "<code id=\"secret\" class=\"secret\">", "</code>");
        let list = self.get("/settings/developer").await.text().await.unwrap();
        let id = between(&list, "<tr id=\"key-", "\"");
        (secret, id)
    }
}

/// The text between `start` and the next `end`.
fn between(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    html[from..][..html[from..].find(end).unwrap()].to_string()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

/// What the Lotus owner made: a key (on the Developer page) and a connected app (one-click
/// sign-in), with their secrets.
struct Owned {
    key_id: String,
    secret: String,
    grant_id: String,
    token: String,
}

async fn owned(gw: &Gateway, key_name: &str) -> Owned {
    let owner = Pages::sign_in(&gw.running.app.base_url, OWNER).await;
    let (secret, key_id) = owner.create_key(key_name, &[("classes", "read")]).await;
    let token = Flow::register(gw).await.connect(gw).await;
    Owned {
        key_id,
        secret,
        grant_id: lotus_grant(gw).await,
        token,
    }
}

/// The id of the Lotus studio's newest OAuth grant.
async fn lotus_grant(gw: &Gateway) -> String {
    gw.running
        .app
        .oauth
        .grants
        .list(flowgate::store::Within::Studio("std_lotus"))
        .await
        .unwrap()[0]
        .id
        .clone()
}

/// Audit rows of the Lotus studio with `tool`.
async fn audited(gw: &Gateway, tool: &str) -> Vec<flowgate::audit::Record> {
    gw.running
        .app
        .audit
        .query(&flowgate::audit::Filter {
            studio: Some("std_lotus".into()),
            tool: Some(tool.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_out_browser_signs_in_and_comes_back_to_the_page_it_asked_for() {
    for db in backends().await {
        let gw = start(db).await;
        let base = gw.running.app.base_url.clone();
        let pages = Pages {
            http: browser(),
            base: base.clone(),
        };
        let r = pages.get("/settings/audit-log").await;
        assert_eq!(r.status(), 303);
        assert_eq!(
            location(&r),
            "/settings/sign-in?next=%2Fsettings%2Faudit-log"
        );

        // A wrong password: the form again, 401, nothing opened.
        let r = pages
            .sign_in_answer((OWNER.0, "not-the-password"), "/settings/audit-log")
            .await;
        assert_eq!(r.status(), 401);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("do not match a studio account")
        );
        assert_eq!(pages.get("/settings/developer").await.status(), 303);

        let r = pages.sign_in_answer(OWNER, "/settings/audit-log").await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/settings/audit-log");
        let cookie = r
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("flowgate_settings="))
            .unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        // A redirect never leaves the pages.
        let r = pages.sign_in_answer(OWNER, "https://evil.example/").await;
        assert_eq!(location(&r), "/settings");

        let html = pages.get("/settings/developer").await.text().await.unwrap();
        for shown in [
            "Lotus Flow Yoga",
            "Maya Chen",
            "Owner",
            "Developer",
            "Connected apps",
            "Audit log",
            "Sign out",
        ] {
            assert!(html.contains(shown), "{shown} missing from the header");
        }
        let sign_ins = audited(&gw, "settings.sign_in").await;
        assert_eq!(sign_ins.len(), 2);
        assert_eq!(sign_ins[0].principal_kind.as_deref(), Some("user"));
        assert_eq!(sign_ins[0].principal_name.as_deref(), Some(OWNER.0));
        gw.stop().await;
    }
}

/// The pages' sign-in is the OAuth sign-in's check, with the same limits: failures on the
/// settings pages count for the account everywhere, and a refused attempt says when to come back.
#[tokio::test]
async fn failed_sign_ins_on_the_pages_back_off_like_the_oauth_sign_in() {
    let gw = Gateway::start().await;
    let base = gw.running.app.base_url.clone();
    let pages = Pages {
        http: browser(),
        base: base.clone(),
    };
    for _ in 0..5 {
        let r = pages
            .sign_in_answer((OWNER.0, "wrong-password"), "/settings/developer")
            .await;
        assert_eq!(r.status(), 401);
    }
    // The sixth waits, even with the right password, on the pages and in the OAuth sign-in.
    let r = pages.sign_in_answer(OWNER, "/settings/developer").await;
    assert_eq!(r.status(), 429);
    let wait = crate::harness::retry_after(&r);
    assert!((1..=5).contains(&wait), "{wait}");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins from this account. Try again in")
    );
    let flow = Flow::register(&gw).await;
    let form = flow.sign_in_page(&gw).await;
    assert_eq!(flow.sign_in(&form, OWNER.0, OWNER.1).await.status(), 429);
    let failed = gw
        .running
        .app
        .audit
        .query(&flowgate::audit::Filter {
            tool: Some("oauth.sign_in".into()),
            outcome: Some("unauthenticated".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 5, "every failure on the pages is audited");
    gw.stop().await;
}

#[tokio::test]
async fn the_pages_forbid_framing_inline_script_and_caching() {
    let gw = Gateway::start().await;
    let pages = Pages::sign_in(&gw.running.app.base_url, OWNER).await;
    for path in [
        "/settings/sign-in",
        "/settings/developer",
        "/settings/connected-apps",
        "/settings/audit-log",
    ] {
        let r = pages.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" style=\""),
            "{path}: inline script or style"
        );
    }
    gw.stop().await;
}

/// Behind https, the session cookie is `Secure` and `__Host-` (bound to the exact host).
#[tokio::test]
async fn behind_https_the_cookie_is_secure_and_host_bound() {
    let gw = Gateway::start_with(|c| {
        c.public_url = Some("https://studio-gateway.example".into());
        c.allowed_origins = vec!["https://studio-gateway.example".into()];
    })
    .await;
    let base = format!("http://{}", gw.running.addr);
    let http = browser();
    let host = |rb: reqwest::RequestBuilder| rb.header("host", "studio-gateway.example");
    let form = host(http.get(format!("{base}/settings/sign-in")))
        .send()
        .await
        .unwrap();
    let sign_in_cookie = form.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(sign_in_cookie.contains("; Secure"), "{sign_in_cookie}");
    let csrf = hidden(&form.text().await.unwrap(), "csrf");
    let cookie = sign_in_cookie.split(';').next().unwrap().to_string();
    let r = host(http.post(format!("{base}/settings/sign-in")))
        .header("cookie", cookie)
        .header("origin", "https://studio-gateway.example")
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", OWNER.0),
            ("password", OWNER.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.contains("flowgate_settings="))
        .unwrap();
    assert!(
        session.starts_with("__Host-flowgate_settings="),
        "{session}"
    );
    assert!(
        session.contains("; Secure") && session.contains("Path=/;"),
        "{session}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_form_without_its_token_or_from_another_origin_changes_nothing() {
    for db in backends().await {
        let gw = start(db).await;
        let base = gw.running.app.base_url.clone();
        let pages = Pages::sign_in(&base, OWNER).await;
        let (secret, id) = pages.create_key("kept", &[("classes", "read")]).await;
        let keys_before = gw
            .running
            .app
            .keys
            .list(flowgate::store::Within::AllStudios)
            .await
            .unwrap()
            .len();
        let create = [
            ("name", "sneaky"),
            ("expires", "never"),
            ("access.members", "write"),
        ];
        let revoke = format!("/settings/developer/keys/{id}/revoke");

        // No token, a wrong token, the right token from another origin: refused, nothing done.
        for form in [
            create.to_vec(),
            [&[("csrf", "forged")][..], &create[..]].concat(),
        ] {
            let r = pages.post_raw("/settings/developer/keys", &form).await;
            assert_eq!(r.status(), 403);
            assert!(r.text().await.unwrap().contains("nothing was changed"));
        }
        assert_eq!(pages.post_raw(&revoke, &[]).await.status(), 403);
        assert_eq!(
            pages
                .post_raw("/settings/sign-out", &[("csrf", "forged")])
                .await
                .status(),
            403
        );
        let csrf = pages.csrf().await;
        let r = pages
            .http
            .post(format!("{base}{revoke}"))
            .header("origin", "https://evil.example")
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // A sign-in form without its cookie's token (login CSRF) opens nothing.
        let r = browser()
            .post(format!("{base}/settings/sign-in"))
            .form(&[("csrf", "x"), ("email", OWNER.0), ("password", OWNER.1)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(
            r.headers()
                .get_all("set-cookie")
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with("flowgate_settings="))
        );

        let keys_after = gw
            .running
            .app
            .keys
            .list(flowgate::store::Within::AllStudios)
            .await
            .unwrap()
            .len();
        assert_eq!(keys_after, keys_before, "a refused form created a key");
        assert_eq!(
            status_with(&gw, &secret).await,
            200,
            "a refused form revoked the key"
        );
        // With its token, the same form works.
        assert_eq!(pages.post(&revoke, &[]).await.status(), 303);
        assert_eq!(status_with(&gw, &secret).await, 401);
        gw.stop().await;
    }
}

#[tokio::test]
async fn another_studios_ids_are_not_found_and_change_nothing() {
    for db in backends().await {
        let gw = start(db).await;
        let base = gw.running.app.base_url.clone();
        let Owned {
            key_id,
            secret,
            grant_id,
            token,
        } = owned(&gw, "lotus key").await;

        let other = Pages::sign_in(&base, OTHER_OWNER).await;
        for path in [
            format!("/settings/developer/keys/{key_id}/revoke"),
            format!("/settings/developer/keys/{key_id}/rotate"),
            format!("/settings/connected-apps/{grant_id}/disconnect"),
        ] {
            let r = other.get(&path).await;
            assert_eq!(r.status(), 404, "GET {path}");
            let r = other.post(&path, &[]).await;
            assert_eq!(r.status(), 404, "POST {path}");
            let html = r.text().await.unwrap();
            assert!(
                html.contains("not found") || html.contains("no such"),
                "{html}"
            );
        }
        let html = other.get("/settings/developer").await.text().await.unwrap();
        assert!(!html.contains(&key_id) && !html.contains("lotus key"));
        let html = other
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(!html.contains(&grant_id));
        assert_eq!(status_with(&gw, &secret).await, 200);
        assert_eq!(status_with(&gw, &token).await, 200);
        gw.stop().await;
    }
}

#[tokio::test]
async fn an_ended_session_changes_nothing_and_asks_to_sign_in_again() {
    for db in backends().await {
        let url = db.clone();
        let gw = Gateway::start_with(move |c| {
            c.database_url = url;
            c.settings_idle_secs = 1;
        })
        .await;
        let base = gw.running.app.base_url.clone();
        let pages = Pages::sign_in(&base, OWNER).await;
        let csrf = pages.csrf().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let r = pages
            .post_raw(
                "/settings/developer/keys",
                &[
                    ("csrf", &csrf),
                    ("name", "late"),
                    ("expires", "never"),
                    ("access.classes", "read"),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(
            location(&r),
            "/settings/sign-in?next=%2Fsettings%2Fdeveloper&ended=1"
        );
        let keys = gw
            .running
            .app
            .keys
            .list(flowgate::store::Within::Studio("std_lotus"))
            .await
            .unwrap();
        assert!(keys.iter().all(|k| k.name != "late"));
        gw.stop().await;

        // Signed out: the same cookie, replayed, opens nothing.
        let gw = start(db).await;
        let base = gw.running.app.base_url.clone();
        let pages = Pages::sign_in(&base, OWNER).await;
        let token = pages.csrf().await;
        let r = pages.post("/settings/sign-out", &[]).await;
        assert_eq!(location(&r), "/settings/sign-in?signed_out=1");
        let r = pages
            .post_raw(
                "/settings/developer/keys",
                &[("csrf", &token), ("name", "x"), ("access.classes", "read")],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/settings/sign-in"));
        assert_eq!(audited(&gw, "settings.sign_out").await.len(), 1);
        gw.stop().await;
    }
}

/// Two gateways on one PostgreSQL: a session opened on one works on the other, and signing out
/// on one ends it on both.
#[tokio::test]
async fn a_session_works_on_every_replica_and_sign_out_ends_it_everywhere() {
    let Some(url) = crate::postgres::database().await else {
        return;
    };
    let u = url.clone();
    let a = Gateway::start_with(move |c| c.database_url = Some(u)).await;
    let b = Gateway::start_with(move |c| c.database_url = Some(url)).await;
    let on_a = Pages::sign_in(&a.running.app.base_url, OWNER).await;
    // The same browser (its cookie) on the other replica.
    let on_b = Pages {
        http: on_a.http.clone(),
        base: b.running.app.base_url.clone(),
    };
    assert_eq!(on_b.get("/settings/developer").await.status(), 200);
    let (secret, id) = on_b.create_key("made on b", &[("classes", "read")]).await;
    assert_eq!(
        on_a.post(&format!("/settings/developer/keys/{id}/revoke"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(status_with(&b, &secret).await, 401);
    assert_eq!(on_b.post("/settings/sign-out", &[]).await.status(), 303);
    let r = on_a.get("/settings/developer").await;
    assert_eq!(r.status(), 303, "signed out on b, still signed in on a");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn staff_cannot_manage_keys_or_disconnect_apps_even_by_posting_the_forms() {
    for db in backends().await {
        let gw = start(db).await;
        let base = gw.running.app.base_url.clone();
        let Owned {
            key_id,
            secret,
            grant_id,
            token,
        } = owned(&gw, "owner's").await;

        let staff = Pages::sign_in(&base, STAFF).await;
        let r = staff.get("/settings").await;
        assert_eq!(
            location(&r),
            "/settings/connected-apps",
            "staff land on the first page they may see"
        );
        let r = staff.get("/settings/developer").await;
        assert_eq!(r.status(), 403);
        let html = r.text().await.unwrap();
        assert!(html.contains("Not available for your role"), "{html}");
        assert!(!html.contains(&key_id));
        let html = staff
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("Claude Desktop") && !html.contains("/disconnect\""),
            "{html}"
        );

        let posts = [
            (
                "/settings/developer/keys".to_string(),
                vec![
                    ("name", "mine"),
                    ("expires", "never"),
                    ("access.bookings", "write"),
                ],
            ),
            (format!("/settings/developer/keys/{key_id}/rotate"), vec![]),
            (format!("/settings/developer/keys/{key_id}/revoke"), vec![]),
            (
                format!("/settings/connected-apps/{grant_id}/disconnect"),
                vec![],
            ),
        ];
        for (path, form) in &posts {
            let r = staff.post(path, form).await;
            assert_eq!(r.status(), 403, "{path}");
        }
        assert_eq!(status_with(&gw, &secret).await, 200);
        assert_eq!(status_with(&gw, &token).await, 200);
        let keys = gw
            .running
            .app
            .keys
            .list(flowgate::store::Within::Studio("std_lotus"))
            .await
            .unwrap();
        assert!(keys.iter().all(|k| k.name != "mine"));
        let refused = audited(&gw, "settings.refused").await;
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(
            refused
                .iter()
                .all(|r| r.outcome == "denied" && r.principal_name.as_deref() == Some(STAFF.0))
        );
        gw.stop().await;
    }
}

/// An admin may manage keys, but not give one the owner's money scopes, even by posting them.
#[tokio::test]
async fn a_key_above_the_role_is_refused_whole() {
    let gw = Gateway::start().await;
    let admin = Pages::sign_in(&gw.running.app.base_url, ADMIN).await;
    let html = admin.get("/settings/developer").await.text().await.unwrap();
    assert!(
        html.contains(
            r#"id="access-financials-read" name="access.financials" value="read" disabled"#
        ),
        "the page offers financials to an admin"
    );
    let r = admin
        .post(
            "/settings/developer/keys",
            &[
                ("name", "books"),
                ("expires", "never"),
                ("access.classes", "read"),
                ("access.financials", "read"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Your role cannot give a key financials:read. Nothing was created.")
    );
    let keys = gw
        .running
        .app
        .keys
        .list(flowgate::store::Within::Studio("std_lotus"))
        .await
        .unwrap();
    assert!(keys.iter().all(|k| k.name != "books"));
    // Within the role, the same form works.
    let (secret, _) = admin.create_key("books", &[("classes", "read")]).await;
    assert_eq!(status_with(&gw, &secret).await, 200);
    gw.stop().await;
}

/// Bad input on the create form: a clear message, the form kept, nothing created.
#[tokio::test]
async fn a_bad_create_form_says_what_is_wrong_and_keeps_what_was_chosen() {
    let gw = Gateway::start().await;
    let owner = Pages::sign_in(&gw.running.app.base_url, OWNER).await;
    let long = "n".repeat(81);
    for (form, says) in [
        (
            vec![("name", ""), ("access.classes", "read")],
            "Give the key a name",
        ),
        (
            vec![("name", long.as_str()), ("access.classes", "read")],
            "Give the key a name",
        ),
        (
            vec![("name", "a\u{202e}b"), ("access.classes", "read")],
            "text-direction",
        ),
        (
            vec![
                ("name", "x"),
                ("expires", "1000"),
                ("access.classes", "read"),
            ],
            "expiries offered",
        ),
        (
            vec![("name", "x"), ("expires", "never")],
            "at least one resource",
        ),
        (
            vec![("name", "x"), ("access.classes", "all")],
            "not one flowgate offers",
        ),
    ] {
        let r = owner.post("/settings/developer/keys", &form).await;
        assert_eq!(r.status(), 400, "{form:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "{says}: {html}");
    }
    let keys = gw
        .running
        .app
        .keys
        .list(flowgate::store::Within::Studio("std_lotus"))
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "only the demo key");
    // A change a key does not have.
    let path = format!("/settings/developer/keys/{}/explode", keys[0].id);
    assert_eq!(owner.get(&path).await.status(), 404);
    assert_eq!(owner.post(&path, &[]).await.status(), 404);
    assert_eq!(status_with(&gw, &gw.pro_key()).await, 200);
    gw.stop().await;
}

/// Every change made on a page is audited with the studio user as the actor.
#[tokio::test]
async fn every_change_on_a_page_is_audited_with_the_user_as_actor() {
    for db in backends().await {
        let gw = start(db).await;
        let owner = Pages::sign_in(&gw.running.app.base_url, OWNER).await;
        let (_, id) = owner
            .create_key("audited", &[("classes", "read"), ("bookings", "write")])
            .await;
        let r = owner
            .post(&format!("/settings/developer/keys/{id}/rotate"), &[])
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            owner
                .post(&format!("/settings/developer/keys/{id}/revoke"), &[])
                .await
                .status(),
            303
        );
        Flow::register(&gw).await.connect(&gw).await;
        let grant = lotus_grant(&gw).await;
        let r = owner
            .post(&format!("/settings/connected-apps/{grant}/disconnect"), &[])
            .await;
        assert_eq!(
            location(&r),
            format!("/settings/connected-apps?disconnected={grant}")
        );
        let user_id = audited(&gw, "settings.sign_in").await[0]
            .principal_id
            .clone();
        for (tool, argument) in [
            (
                "settings.key_create",
                json!({"key_id": id, "name": "audited", "scopes": ["bookings:read", "bookings:write", "classes:read"]}),
            ),
            (
                "settings.key_rotate",
                json!({"key_id": id, "name": "audited"}),
            ),
            (
                "settings.key_revoke",
                json!({"key_id": id, "name": "audited"}),
            ),
            ("settings.app_disconnect", json!({"grant_id": grant})),
        ] {
            let rows = audited(&gw, tool).await;
            assert_eq!(rows.len(), 1, "{tool}");
            let row = &rows[0];
            assert_eq!(row.outcome, "ok");
            assert_eq!(row.principal_kind.as_deref(), Some("user"));
            assert_eq!(row.principal_id, user_id);
            assert_eq!(row.principal_name.as_deref(), Some(OWNER.0));
            let args = row.arguments.clone().unwrap();
            for (k, v) in argument.as_object().unwrap() {
                assert_eq!(&args[k], v, "{tool}.{k}");
            }
        }
        // No secret reaches the log.
        let all: Vec<Value> = gw
            .running
            .app
            .audit
            .query(&flowgate::audit::Filter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        assert!(
            !serde_json::to_string(&all).unwrap().contains("flow_sk_"),
            "a secret in the audit log"
        );
        gw.stop().await;
    }
}
