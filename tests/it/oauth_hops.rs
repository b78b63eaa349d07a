//! One-click sign-in across replicas: two gateways share one store (one SQLite file, or one
//! PostgreSQL database) and one public URL, as replicas behind a load balancer that does not stick
//! a browser to a replica. Every step of a sign-in lands on the other replica; a consent form and
//! a code are single use whichever replica they reach; failed sign-ins of an account count on
//! every replica.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Gateway;
use crate::oauth::{REDIRECT, VERIFIER, browser, challenge, hidden};

/// The name the load balancer answers for: both replicas' `public_url`.
pub const PUBLIC: &str = "http://flowgate.test";
pub const OWNER: (&str, &str) = ("owner@lotusflow.example", "lotus-owner-demo");

/// SQLite (a data directory both share) always; PostgreSQL when available.
async fn backends() -> Vec<Option<String>> {
    let mut out = vec![None];
    if let Some(url) = crate::postgres::database().await {
        out.push(Some(url));
    }
    out
}

/// Two replicas on one store. `a` runs the embedded Management API; `b` uses it as its upstream
/// (the replicas share their upstream as they share their store).
async fn replicas(database_url: Option<String>) -> (Gateway, Gateway) {
    let url = database_url.clone();
    let a = Gateway::start_with(move |c| {
        c.public_url = Some(PUBLIC.into());
        c.database_url = url;
    })
    .await;
    let api = a.running.studio_api.as_ref().unwrap();
    let (upstream, token) = (api.base_url(), api.service_token().to_string());
    let data_dir = a.running.app.config.data_dir.clone();
    let b = Gateway::start_with(move |c| {
        c.public_url = Some(PUBLIC.into());
        c.database_url = database_url;
        c.data_dir = data_dir;
        c.upstream_url = Some(upstream);
        c.upstream_token = Some(token);
    })
    .await;
    (a, b)
}

/// A replica a browser can reach: an in-process gateway here, a `flowgate serve` process in
/// `replicas.rs`.
pub trait Replica {
    /// Where it really listens (the public URL names the load balancer).
    fn base(&self) -> String;
}

impl Replica for Gateway {
    fn base(&self) -> String {
        format!("http://{}", self.running.addr)
    }
}

fn at(on: &impl Replica) -> String {
    on.base()
}

/// One browser (cookies shared by both replicas, as both answer for one host name).
pub struct Browser {
    http: reqwest::Client,
    client_id: String,
}

impl Browser {
    pub async fn register(on: &impl Replica) -> Self {
        let http = browser();
        let reg: Value = http
            .post(format!("{}/oauth/register", at(on)))
            .json(&json!({"client_name": "Claude Desktop", "redirect_uris": [REDIRECT]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let client_id = reg["client_id"].as_str().unwrap().to_string();
        Self { http, client_id }
    }

    /// `/oauth/authorize` on `on`: the sign-in form's flow and CSRF token.
    pub async fn authorize(&self, on: &impl Replica) -> (String, String) {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/oauth/authorize", at(on)),
            &[
                ("response_type", "code"),
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", REDIRECT),
                ("state", "st-hop"),
                ("resource", &format!("{PUBLIC}/mcp")),
                ("scope", "classes:read classes:write"),
                ("code_challenge", &challenge(VERIFIER)),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap();
        let page = self.http.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        (hidden(&html, "flow"), hidden(&html, "csrf"))
    }

    pub async fn sign_in(
        &self,
        on: &impl Replica,
        (flow, csrf): &(String, String),
        (email, password): (&str, &str),
    ) -> (StatusCode, String) {
        let r = self
            .http
            .post(format!("{}/oauth/authorize/sign-in", at(on)))
            .form(&[
                ("flow", flow.as_str()),
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Approves `classes:read` only: the answer (a redirect with the code, or a page).
    pub async fn approve(
        &self,
        on: &impl Replica,
        (flow, csrf): &(String, String),
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/oauth/authorize/consent", at(on)))
            .form(&[
                ("flow", flow.as_str()),
                ("csrf", csrf.as_str()),
                ("action", "approve"),
                ("scope", "classes:read"),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn exchange(&self, on: &impl Replica, code: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/oauth/token", at(on)))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("client_id", &self.client_id),
                ("code_verifier", VERIFIER),
                ("resource", &format!("{PUBLIC}/mcp")),
            ])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Authorize on `a`, sign in on `b`, approve on `a`: the code.
    pub async fn code(&self, a: &impl Replica, b: &impl Replica) -> String {
        let form = self.authorize(a).await;
        let (status, html) = self.sign_in(b, &form, OWNER).await;
        assert_eq!(status, 200, "{html}");
        let r = self.approve(a, &form).await;
        assert!(r.status().is_redirection(), "{}", r.status());
        code_of(&r)
    }
}

pub fn code_of(r: &reqwest::Response) -> String {
    let location = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("st-hop"));
    assert_eq!(param("iss").as_deref(), Some(PUBLIC));
    param("code").unwrap()
}

/// `initialize` on `gw` with `token`: the HTTP status.
async fn status_on(gw: &Gateway, token: &str) -> u16 {
    crate::harness::post_mcp(&format!("{}/mcp", at(gw)), token, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})).await
        .status()
        .as_u16()
}

/// Authorize on A, sign in on B, consent on A, token on B: the tokens work on both. The consent
/// form replayed on B is refused (the flow was used up on A); a code exchanged on both at once
/// gives one token set and revokes the grant.
#[tokio::test]
async fn a_sign_in_hops_between_replicas_at_every_step() {
    for database_url in backends().await {
        let backend = if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        let (a, b) = replicas(database_url).await;
        let browser = Browser::register(&a).await;

        // Authorize on A; the form (and its cookie) is good on B.
        let form = browser.authorize(&a).await;
        let (status, html) = browser.sign_in(&b, &form, OWNER).await;
        assert_eq!(status, 200, "{backend}: {html}");
        assert!(
            html.contains("Allow Claude Desktop to use your studio?"),
            "{backend}: {html}"
        );
        assert!(html.contains("Lotus Flow Yoga"), "{backend}: {html}");
        // Consent on A knows who signed in on B.
        let approved = browser.approve(&a, &form).await;
        assert!(
            approved.status().is_redirection(),
            "{backend}: {}",
            approved.status()
        );
        let code = code_of(&approved);
        // The same form again, on B: the flow is gone, no second code.
        let replay = browser.approve(&b, &form).await;
        assert_eq!(replay.status(), 403, "{backend}");
        let page = replay.text().await.unwrap();
        assert!(
            page.contains("This sign-in has expired"),
            "{backend}: {page}"
        );

        // Token on B; the access token works on both.
        let (status, tokens) = browser.exchange(&b, &code).await;
        assert_eq!(status, 200, "{backend}: {tokens}");
        assert_eq!(tokens["scope"], "classes:read", "{backend}");
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(status_on(&a, access).await, 200, "{backend}: on A");
        assert_eq!(status_on(&b, access).await, 200, "{backend}: on B");

        // The same consent POST sent to both replicas at once: one code.
        let form = browser.authorize(&b).await;
        assert_eq!(browser.sign_in(&a, &form, OWNER).await.0, 200, "{backend}");
        let (on_a, on_b) = tokio::join!(browser.approve(&a, &form), browser.approve(&b, &form));
        let mut statuses = [on_a.status().as_u16(), on_b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [303, 403], "{backend}");

        // A code exchanged on both replicas at once: one token set, and the grant is revoked.
        let code = browser.code(&b, &a).await;
        let (on_a, on_b) = tokio::join!(browser.exchange(&a, &code), browser.exchange(&b, &code));
        let (won, lost) = match (on_a.0, on_b.0) {
            (200, 400) => (on_a.1, on_b.1),
            (400, 200) => (on_b.1, on_a.1),
            other => panic!("{backend}: {other:?} {on_a:?} {on_b:?}"),
        };
        assert_eq!(lost["error"], "invalid_grant", "{backend}: {lost}");
        let access = won["access_token"].as_str().unwrap();
        assert_eq!(status_on(&a, access).await, 401, "{backend}: revoked on A");
        assert_eq!(status_on(&b, access).await, 401, "{backend}: revoked on B");
        let grants = a
            .running
            .app
            .oauth
            .grants
            .list(flowgate::store::Within::AllStudios)
            .await
            .unwrap();
        // One grant per flow: the form sent to both replicas made one.
        assert_eq!(grants.len(), 3, "{backend}");
        assert_eq!(
            grants.iter().filter(|g| g.revoked_at.is_some()).count(),
            1,
            "{backend}"
        );

        b.stop().await;
        a.stop().await;
    }
}

/// Wrong passwords for one account, alternating replicas, count together: after five, the
/// sixth attempt is refused on either replica (even with the right password), and the refusal
/// is recorded once, not once per replica.
#[tokio::test]
async fn failed_sign_ins_of_an_account_count_on_every_replica() {
    for database_url in backends().await {
        let backend = if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        let (a, b) = replicas(database_url).await;
        let browser = Browser::register(&a).await;
        let form = browser.authorize(&a).await;
        for n in 0..5 {
            let on = if n % 2 == 0 { &a } else { &b };
            let (status, html) = browser.sign_in(on, &form, (OWNER.0, "wrong")).await;
            assert_eq!(status, 401, "{backend}: attempt {n}: {html}");
        }
        for on in [&b, &a] {
            let (status, html) = browser.sign_in(on, &form, OWNER).await;
            assert_eq!(status, 429, "{backend}: {html}");
            assert!(
                html.contains("Too many failed sign-ins from this account."),
                "{backend}: {html}"
            );
        }
        let log = a
            .running
            .app
            .audit
            .query(&flowgate::audit::Filter {
                tool: Some("oauth.sign_in".into()),
                limit: 100,
                ..flowgate::audit::Filter::default()
            })
            .await
            .unwrap();
        let count = |outcome: &str| log.iter().filter(|r| r.outcome == outcome).count();
        assert_eq!(count("unauthenticated"), 5, "{backend}");
        assert_eq!(count("rate_limited"), 1, "{backend}: {log:?}");
        assert_eq!(count("ok"), 0, "{backend}");
        b.stop().await;
        a.stop().await;
    }
}
